// Shared by the client subcommands that call Pinstream's own REST routes (`streams status`,
// `streams replay`): the caller's credentials, and a request signed with SigV4 like any Pinpoint call.

import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { DEFAULT_PORT } from '../config/config.js';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** The server URL subcommands talk to unless --endpoint says otherwise. */
export function defaultEndpoint(env: NodeJS.ProcessEnv): string {
  return `http://127.0.0.1:${env.PINSTREAM_PORT || DEFAULT_PORT}`;
}

/**
 * PINSTREAM_ADMIN_ACCESS_KEY_ID/SECRET when both are set, else the AWS SDK's chain (resolved by an
 * SDK client exactly as `aws` and other tools would). Throws when none is found.
 */
export async function resolveCredentials(env: NodeJS.ProcessEnv): Promise<Credentials> {
  const id = env.PINSTREAM_ADMIN_ACCESS_KEY_ID;
  const secret = env.PINSTREAM_ADMIN_SECRET_ACCESS_KEY;
  const probe = new KinesisClient({ region: 'us-east-1', ...(id && secret ? { credentials: { accessKeyId: id, secretAccessKey: secret } } : {}) });
  try {
    return await probe.config.credentials();
  } finally {
    probe.destroy();
  }
}

/** Sends a request to `endpoint` + `path` signed for mobiletargeting; a JSON body when given. */
export async function signedCall(
  endpoint: string,
  credentials: Credentials,
  env: NodeJS.ProcessEnv,
  o: { method: string; path: string; body?: unknown },
): Promise<Response> {
  const url = new URL(o.path, endpoint);
  const body = o.body === undefined ? undefined : JSON.stringify(o.body);
  const signer = new SignatureV4({ service: 'mobiletargeting', region: env.PINSTREAM_REGION || 'us-east-1', credentials, sha256: Sha256 });
  const signed = await signer.sign({
    method: o.method,
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port) || undefined,
    path: url.pathname,
    query: {},
    headers: { host: url.host, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body,
  });
  const headers = { ...(signed.headers as Record<string, string>) };
  delete headers.host;
  return fetch(url, { method: o.method, headers, body });
}
