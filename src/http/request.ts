// The protocol-neutral request/response pair every handler sees, whatever HTTP version carried it.

import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';

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
  /**
   * A Readable is a streaming body (event streams): sent as it is produced, without a length, and
   * destroyed when the client goes away, which is how its producer learns to stop.
   */
  body?: string | Buffer | Readable;
}

export function json(status: number, value: unknown, contentType = 'application/json'): ApiResponse {
  return { status, headers: { 'content-type': contentType }, body: JSON.stringify(value) };
}
