// Request routing: picks the protocol a request speaks (restJson1 paths for Pinpoint, X-Amz-Target
// JSON 1.1 for Kinesis/Firehose, ...), authenticates it with SigV4 for that protocol's signing
// service, runs it, and turns every error into that protocol's wire shape. CORS is answered here
// so browser SDK clients work against any service.

import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.js';
import { verifySigV4, type Credentials } from '../iam/sigv4.js';
import { ApiError, authError, internalError, payloadTooLarge } from './errors.js';
import { isDiskFull } from '../log/errors.js';
import type { ApiRequest, ApiResponse } from './request.js';
import type { RawRequest } from './server.js';
import { MAX_BODY_BYTES } from './server.js';

/** One wire protocol family (restJson1, awsJson1.1, awsQuery), with its own error shape. */
export interface Protocol {
  /** Signing names accepted in the SigV4 credential scope. */
  readonly signingServices: readonly string[];
  handle(req: ApiRequest): Promise<ApiResponse>;
  error(err: ApiError, req: ApiRequest): ApiResponse;
}

export interface DispatcherOptions {
  clock: Clock;
  lookupKey: (accessKeyId: string) => Credentials | undefined;
  /** restJson1 services by path prefix (e.g. '/v1/' → Pinpoint). */
  restJson: Array<{ prefix: string; protocol: Protocol }>;
  /** awsJson1.1 services by X-Amz-Target prefix (e.g. 'Kinesis_20131202'). */
  jsonTargets?: Map<string, Protocol>;
  /** The Query protocol (IAM, STS): form-encoded POSTs without X-Amz-Target. */
  query?: Protocol;
  /** Unauthenticated routes (health, console assets). */
  open?: (req: ApiRequest) => Promise<ApiResponse | undefined>;
}

const CORS_HEADERS: Record<string, string> = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': 'x-amzn-RequestId,x-amzn-ErrorType,x-amzn-ErrorMessage,x-amz-apigw-id,Date',
};

export function createDispatcher(opts: DispatcherOptions): (raw: RawRequest) => Promise<ApiResponse> {
  return async (raw) => {
    const req = toApiRequest(raw);
    const res = await route(req, raw.tooLarge, opts);
    res.headers = { ...res.headers, ...CORS_HEADERS, 'x-amzn-requestid': req.requestId };
    return res;
  };
}

async function route(req: ApiRequest, tooLarge: boolean, opts: DispatcherOptions): Promise<ApiResponse> {
  if (req.method === 'OPTIONS') return preflight(req);
  const protocol = selectProtocol(req, opts);
  if (!protocol) {
    const open = opts.open ? await opts.open(req) : undefined;
    return open ?? notFoundPlain(req);
  }
  try {
    if (tooLarge) throw payloadTooLarge(`Request body exceeds the maximum of ${MAX_BODY_BYTES} bytes`);
    const auth = verifySigV4(
      { method: req.method, rawPath: req.rawPath, rawQuery: req.rawQuery, headers: req.headers, body: req.body },
      { lookup: opts.lookupKey, now: opts.clock.now(), services: protocol.signingServices },
    );
    if (!auth.ok) throw authError(auth.code, auth.message);
    req.caller = { accessKeyId: auth.accessKeyId, region: auth.region };
    return await protocol.handle(req);
  } catch (e) {
    if (e instanceof ApiError) return protocol.error(e, req);
    console.error(`pinstream: internal error (request ${req.requestId})`, e);
    // The metadata store (SQLite) out of space: still a retryable 500, but one that says so.
    if (isDiskFull(e)) return protocol.error(internalError(`The request could not be completed: the server's disk is full (request ${req.requestId})`), req);
    return protocol.error(internalError(`Internal server error (request ${req.requestId})`), req);
  }
}

function selectProtocol(req: ApiRequest, opts: DispatcherOptions): Protocol | undefined {
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string' && opts.jsonTargets) {
    const prefix = target.slice(0, target.indexOf('.'));
    const p = opts.jsonTargets.get(prefix);
    if (p) return p;
  }
  for (const r of opts.restJson) if (req.rawPath.startsWith(r.prefix)) return r.protocol;
  const ct = String(req.headers['content-type'] ?? '');
  if (opts.query && req.method === 'POST' && target === undefined && ct.startsWith('application/x-www-form-urlencoded')) return opts.query;
  return undefined;
}

function toApiRequest(raw: RawRequest): ApiRequest {
  const q = raw.url.indexOf('?');
  const rawPath = q < 0 ? raw.url : raw.url.slice(0, q);
  const rawQuery = q < 0 ? '' : raw.url.slice(q + 1);
  return {
    method: raw.method.toUpperCase(),
    rawPath,
    rawQuery,
    query: new URLSearchParams(rawQuery),
    headers: raw.headers,
    body: raw.body,
    requestId: randomUUID(),
  };
}

function preflight(req: ApiRequest): ApiResponse {
  const asked = req.headers['access-control-request-headers'];
  return {
    status: 200,
    headers: {
      'access-control-allow-methods': 'GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS',
      'access-control-allow-headers': typeof asked === 'string' && asked ? asked : '*',
      'access-control-max-age': '86400',
    },
  };
}

function notFoundPlain(req: ApiRequest): ApiResponse {
  return {
    status: 404,
    headers: { 'content-type': 'application/json', 'x-amzn-errortype': 'NotFoundException' },
    body: JSON.stringify({ Message: `No service answers ${req.method} ${req.rawPath}`, RequestID: req.requestId }),
  };
}
