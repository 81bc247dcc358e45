// Sends arbitrary (even malformed) requests signed exactly as the AWS SDK signs them, for the
// cases an SDK client refuses to produce: invalid JSON, oversize bodies, raw paths.

import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';

export interface SignedFetchOptions {
  method?: string;
  path: string;
  query?: Record<string, string | string[]>;
  headers?: Record<string, string>;
  body?: string | Buffer;
  service?: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  signingDate?: Date;
}

export async function signedFetch(baseUrl: string, o: SignedFetchOptions): Promise<{ status: number; headers: Headers; text: string; json: any }> {
  const url = new URL(baseUrl);
  const signer = new SignatureV4({ service: o.service ?? 'mobiletargeting', region: 'us-east-1', credentials: o.credentials, sha256: Sha256 });
  const request = {
    method: o.method ?? 'POST',
    protocol: 'http:',
    hostname: url.hostname,
    port: Number(url.port),
    path: o.path,
    query: o.query ?? {},
    headers: { host: url.host, 'content-type': 'application/json', ...o.headers },
    body: o.body,
  };
  const signed = await signer.sign(request, { signingDate: o.signingDate });
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(o.query ?? {})) for (const x of [v].flat()) qs.append(k, x);
  const q = qs.toString();
  const headers = { ...(signed.headers as Record<string, string>) };
  delete headers.host;
  const res = await fetch(`${baseUrl}${o.path}${q ? '?' + q : ''}`, { method: request.method, headers, body: o.body as BodyInit | undefined });
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}
