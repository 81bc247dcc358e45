// The protocol-neutral request/response pair every handler sees, whatever HTTP version carried it.

import type { IncomingHttpHeaders } from 'node:http';

export interface ApiRequest {
  method: string;
  /** Path as sent on the wire, still percent-encoded, without the query. */
  rawPath: string;
  rawQuery: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
  requestId: string;
  /** Set once SigV4 verification succeeded. */
  caller?: Caller;
}

export interface Caller {
  accessKeyId: string;
  region: string;
}

export interface ApiResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export function json(status: number, value: unknown, contentType = 'application/json'): ApiResponse {
  return { status, headers: { 'content-type': contentType }, body: JSON.stringify(value) };
}
