// Sends arbitrary (even malformed) requests signed exactly as the AWS SDK signs them, for the
// cases an SDK client refuses to produce: invalid JSON, oversize bodies, raw paths, Kinesis
// operations in a chosen wire format; and checks the REST error answers they get.

import assert from 'node:assert/strict';
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

/** Signs the request as the SDK would and sends it; the response is left unread. */
export async function signedRequest(baseUrl: string, o: SignedFetchOptions): Promise<Response> {
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
  return fetch(`${baseUrl}${o.path}${q ? '?' + q : ''}`, { method: request.method, headers, body: o.body as BodyInit | undefined });
}

/** signedRequest with the answer read: its text, and its JSON when it is JSON. */
export async function signedFetch(baseUrl: string, o: SignedFetchOptions): Promise<{ status: number; headers: Headers; text: string; json: any }> {
  const res = await signedRequest(baseUrl, o);
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** A Kinesis operation (`X-Amz-Target: Kinesis_20131202.<operation>`) POSTed to `/` with this body and content type. */
export function kinesisPost(
  baseUrl: string,
  credentials: SignedFetchOptions['credentials'],
  operation: string,
  contentType: string,
  body: Buffer,
): Promise<Response> {
  return signedRequest(baseUrl, {
    method: 'POST',
    path: '/',
    service: 'kinesis',
    headers: { 'content-type': contentType, 'x-amz-target': `Kinesis_20131202.${operation}` },
    body,
    credentials,
  });
}

/** Asserts a REST (restJson1) error answer: HTTP status, `X-Amzn-ErrorType` and the Message. */
export function assertRestError(res: { status: number; headers: Headers; json: any }, status: number, type: string, message: RegExp): void {
  assert.equal(res.status, status);
  assert.equal(res.headers.get('x-amzn-errortype'), type);
  assert.match(res.json.Message, message);
}
