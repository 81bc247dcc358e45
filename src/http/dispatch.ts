// Request routing: picks the protocol a request speaks (restJson1 paths for Pinpoint, X-Amz-Target
// JSON 1.1 for Kinesis/Firehose, ...), authenticates it with SigV4 for that protocol's signing
// service, runs it, and turns every error into that protocol's wire shape. CORS is answered here
// as AWS answers it, so browser SDK clients work against any service. A request that reaches no
// protocol (no or an unknown X-Amz-Target, a path of no service) gets AWS's answer for it (see
// noOperation), after the operator routes and the console's pages had their turn.
//
// It works in two steps (server.ts reads the body in between): from the head alone it routes,
// checks everything about the signature that needs no body (form, scope, clock, key, session
// token) and names the longest body the operation accepts, so a request that cannot succeed is
// refused before its body is read; with the body it verifies the signature and runs the operation.

import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.js';
import { checkSigV4Head, verifySigV4, type Credentials } from '../iam/sigv4.js';
import { ApiError, authError, internalError, payloadTooLarge } from './errors.js';
import { awsJsonUnknownOperation } from './awsjson.js';
import { LogUnavailableError, isDiskFull } from '../log/errors.js';
import type { ApiRequest, ApiResponse } from './request.js';
import type { Admission, BodyRefusal, FrontDoor, RequestHead } from './server.js';

/** One wire protocol family (restJson1, awsJson1.1, awsQuery), with its own error shape. */
export interface Protocol {
  /** Signing names accepted in the SigV4 credential scope. */
  readonly signingServices: readonly string[];
  /** The longest body this request may have, judged from its method, path and headers alone. */
  maxBodyBytes(req: ApiRequest): number;
  handle(req: ApiRequest): Promise<ApiResponse>;
  error(err: ApiError, req: ApiRequest): ApiResponse;
  /**
   * The error for a request that names no operation of this protocol, found from its head before
   * authentication, as AWS's RPC front ends do (awsJson: UnknownOperationException, signed or not).
   */
  unknownOperation?(req: ApiRequest): ApiError | undefined;
  /**
   * Operations AWS answers without a signature (its models' noAuth: Cognito's GetId,
   * GetCredentialsForIdentity, ...; STS AssumeRoleWithWebIdentity). `head` says from the head
   * whether a request without any signature may be one (exact for X-Amz-Target; the Query protocol
   * names its action in the body, so there `body` decides once it is read). Such a request runs
   * without a caller; anything else without a signature is refused as before.
   */
  unsigned?: { head(req: ApiRequest): boolean; body?(req: ApiRequest): boolean };
}

export interface DispatcherOptions {
  clock: Clock;
  lookupKey: (accessKeyId: string) => Credentials | undefined;
  /**
   * For a key `lookupKey` does not know: undefined when that answer is final, else a promise that
   * settles once the key was looked up in a shared store (temporary credentials minted on another
   * node; iam/store.ts resolveKey). The request then waits for it, its body read meanwhile, and is
   * verified after. A rejection answers 503 (retryable).
   */
  resolveKey?: (accessKeyId: string) => Promise<void> | undefined;
  /** restJson1 services by path prefix (e.g. '/v1/' → Pinpoint). */
  restJson: Array<{ prefix: string; protocol: Protocol }>;
  /** awsJson1.1 services by X-Amz-Target prefix (e.g. 'Kinesis_20131202'). */
  jsonTargets?: Map<string, Protocol>;
  /** The Query protocol (IAM, STS): form-encoded POSTs without X-Amz-Target. */
  query?: Protocol;
  /** Unauthenticated routes (console assets). */
  open?: (req: ApiRequest) => Promise<ApiResponse | undefined> | ApiResponse | undefined;
  /** Operator routes (/health, /metrics): answered first, also when the server is at its connection limit. */
  operator?: (req: ApiRequest) => ApiResponse | undefined;
  /** Routes outside SigV4 that authenticate from the head themselves (Firehose HTTP endpoint receivers), by exact path. */
  receivers?: Map<string, Receiver>;
}

/**
 * A route with its own authentication and wire shape: `admit` judges the head (a refusal, or the
 * longest body accepted) before any body byte is read, `handle` runs with the body, and `refuse`
 * answers when the server gives up on the body. Errors `handle` throws become a plain 500.
 */
export interface Receiver {
  admit(req: ApiRequest): { maxBodyBytes: number } | ApiResponse;
  handle(req: ApiRequest): Promise<ApiResponse>;
  refuse(req: ApiRequest, r: BodyRefusal): ApiResponse;
}

/**
 * AWS's CORS answer (as recorded by kinesalite against Kinesis): only to a request with an Origin,
 * any origin allowed, these headers readable by the page, and a preflight that grants exactly the
 * method and headers asked for, cached CORS_MAX_AGE_SECONDS.
 */
export const CORS_EXPOSE_HEADERS = 'x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date';
export const CORS_MAX_AGE_SECONDS = 172_800;

/** AWS's text when a request names no service and operation it could authorize. */
export const NO_OPERATION_MESSAGE = 'Unable to determine service/operation name to be authorized';

/** What checkSigV4Head answers for a request that carries no signature at all. */
const MISSING_SIGNATURE = 'MissingAuthenticationTokenException';

/** Retryable: every AWS SDK retries a 503, whatever the error type. */
export const serviceUnavailable = (message: string) => new ApiError('ServiceUnavailableException', 503, message);
/** The JS SDK retries RequestTimeoutException; others retry the 408. */
export const requestTimeout = (message: string) => new ApiError('RequestTimeoutException', 408, message);

export function createDispatcher(opts: DispatcherOptions): FrontDoor {
  return (head: RequestHead): Admission => {
    const req = toApiRequest(head);
    const origin = req.headers.origin !== undefined;
    const decorate = (res: ApiResponse): ApiResponse => {
      res.headers = {
        ...res.headers,
        ...(origin ? { 'access-control-allow-origin': '*', 'access-control-expose-headers': CORS_EXPOSE_HEADERS } : {}),
        'x-amzn-requestid': req.requestId,
      };
      return res;
    };
    const answer = (res: ApiResponse | Promise<ApiResponse | undefined> | undefined, closeConnection = false): Admission => ({
      response: Promise.resolve(res).then((r) => decorate(r ?? noOperation(req))),
      closeConnection,
      maxBodyBytes: 0,
      finish: () => Promise.reject(new Error('finish after an answer')),
      refuse: () => decorate(noOperation(req)),
    });

    // A preflight carries an Origin; Pinpoint's paths answer OPTIONS without one too (API Gateway).
    if (req.method === 'OPTIONS' && (origin || opts.restJson.some((r) => req.rawPath.startsWith(r.prefix)))) return answer(preflight(req));
    const operator = opts.operator?.(req);
    if (operator) return answer(operator);
    const receiver = opts.receivers?.get(req.rawPath);
    if (receiver) {
      if (head.overloaded) return answer(receiver.refuse(req, { reason: 'busy', budget: 0 }), true);
      const admitted = receiver.admit(req);
      if ('status' in admitted) return answer(admitted);
      return {
        maxBodyBytes: admitted.maxBodyBytes,
        refuse: (r) => decorate(receiver.refuse(req, r)),
        async finish(body, verified) {
          // The key was checked from the head: the body is the caller's, not an unverified one.
          verified();
          req.body = body;
          try {
            return decorate(await receiver.handle(req));
          } catch (e) {
            console.error(`pinstream: internal error (request ${req.requestId})`, e);
            return decorate({ status: 500, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ errorMessage: `Internal server error (request ${req.requestId})` }) });
          }
        },
      };
    }
    const protocol = selectProtocol(req, opts);
    if (!protocol) {
      if (head.overloaded) return answer(overloadedPlain(req), true);
      // Nothing here needs a body; a short one is read and dropped by the server.
      return answer(opts.open?.(req));
    }

    const fail = (e: unknown) => decorate(errorResponse(protocol, e, req));
    let maxBodyBytes: number;
    let unsigned = false;
    /** A lookup of the signing key in the shared store, when it was not known here. */
    let resolving: Promise<void> | undefined;
    try {
      if (head.overloaded) throw serviceUnavailable('The server is at its connection limit; retry with backoff');
      const unknown = protocol.unknownOperation?.(req);
      if (unknown) throw unknown;
      let missed: string | undefined;
      const lookup = opts.resolveKey
        ? (id: string) => {
            const c = opts.lookupKey(id);
            if (!c) missed = id;
            return c;
          }
        : opts.lookupKey;
      const auth = checkSigV4Head(req, { lookup, now: opts.clock.now(), services: protocol.signingServices });
      if (!auth.ok) {
        if (missed !== undefined) resolving = opts.resolveKey!(missed);
        if (!resolving) {
          if (auth.code !== MISSING_SIGNATURE || !protocol.unsigned?.head(req)) throw authError(auth.code, auth.message);
          unsigned = true;
        }
      }
      maxBodyBytes = protocol.maxBodyBytes(req);
    } catch (e) {
      return answer(fail(e), head.overloaded);
    }
    // Settled or not, a failed lookup must not be an unhandled rejection while the body arrives.
    resolving?.catch(() => {});
    if (unsigned) {
      return {
        maxBodyBytes,
        refuse: (r) => fail(refusalError(r)),
        async finish(body, verified) {
          req.body = body;
          try {
            if (protocol.unsigned!.body && !protocol.unsigned!.body(req)) throw authError(MISSING_SIGNATURE, 'Missing Authentication Token');
            verified();
            const res = await protocol.handle(req);
            if (!isResponse(res)) throw new Error(`the ${req.method} ${req.rawPath} handler answered ${String(res)}`);
            return decorate(res);
          } catch (e) {
            return fail(e);
          }
        },
      };
    }
    return {
      maxBodyBytes,
      refuse: (r) => fail(refusalError(r)),
      async finish(body, verified) {
        req.body = body;
        try {
          if (resolving) {
            await resolving.catch((e: unknown) => {
              throw serviceUnavailable(`Could not look up the access key now (${(e as Error)?.message ?? String(e)}); retry with backoff`);
            });
          }
          const auth = verifySigV4(
            { method: req.method, rawPath: req.rawPath, rawQuery: req.rawQuery, headers: req.headers, body },
            { lookup: opts.lookupKey, now: opts.clock.now(), services: protocol.signingServices },
          );
          if (!auth.ok) throw authError(auth.code, auth.message);
          verified();
          req.caller = { accessKeyId: auth.accessKeyId, region: auth.region };
          const res = await protocol.handle(req);
          if (!isResponse(res)) throw new Error(`the ${req.method} ${req.rawPath} handler answered ${String(res)}`);
          return decorate(res);
        } catch (e) {
          return fail(e);
        }
      },
    };
  };
}

function refusalError(r: BodyRefusal): ApiError {
  switch (r.reason) {
    case 'too-large':
      return payloadTooLarge(
        r.declared !== undefined
          ? `Request body is ${r.declared} bytes; the maximum is ${r.limit} bytes`
          : `Request body exceeds the maximum of ${r.limit} bytes`,
      );
    case 'busy':
      return serviceUnavailable('The server is receiving too many request bodies at once; retry with backoff');
    case 'timeout':
      return requestTimeout(`The request body did not arrive within ${r.timeoutMs} ms`);
  }
}

function errorResponse(protocol: Protocol, e: unknown, req: ApiRequest): ApiResponse {
  if (e instanceof ApiError) return protocol.error(e, req);
  // Storage that will be back (a NATS stream electing its leader): retryable, and no stack trace.
  if (e instanceof LogUnavailableError) {
    console.error(`pinstream: request ${req.requestId}: ${e.message}`);
    return protocol.error(serviceUnavailable(`The log storage is unavailable for the moment; retry with backoff (request ${req.requestId})`), req);
  }
  console.error(`pinstream: internal error (request ${req.requestId})`, e);
  // The metadata store (SQLite) out of space: still a retryable 500, but one that says so.
  if (isDiskFull(e)) return protocol.error(internalError(`The request could not be completed: the server's disk is full (request ${req.requestId})`), req);
  return protocol.error(internalError(`Internal server error (request ${req.requestId})`), req);
}

function isResponse(v: unknown): v is ApiResponse {
  return typeof v === 'object' && v !== null && Number.isInteger((v as ApiResponse).status);
}

function selectProtocol(req: ApiRequest, opts: DispatcherOptions): Protocol | undefined {
  const target = req.headers['x-amz-target'];
  // awsJson is POST only; another method with a target is answered as AWS does (noOperation).
  if (typeof target === 'string' && opts.jsonTargets && req.method === 'POST') {
    const prefix = target.slice(0, target.indexOf('.'));
    const p = opts.jsonTargets.get(prefix);
    if (p) return p;
  }
  for (const r of opts.restJson) if (req.rawPath.startsWith(r.prefix)) return r.protocol;
  const ct = String(req.headers['content-type'] ?? '');
  if (opts.query && req.method === 'POST' && target === undefined && ct.startsWith('application/x-www-form-urlencoded')) return opts.query;
  return undefined;
}

function toApiRequest(head: RequestHead): ApiRequest {
  const q = head.url.indexOf('?');
  const rawPath = q < 0 ? head.url : head.url.slice(0, q);
  const rawQuery = q < 0 ? '' : head.url.slice(q + 1);
  return {
    method: head.method.toUpperCase(),
    rawPath,
    rawQuery,
    query: new URLSearchParams(rawQuery),
    headers: head.headers,
    body: Buffer.alloc(0),
    requestId: randomUUID(),
  };
}

/** Grants what the preflight asks for, no more (a header or method not asked for is not named). */
function preflight(req: ApiRequest): ApiResponse {
  const headers = req.headers['access-control-request-headers'];
  const method = req.headers['access-control-request-method'];
  return {
    status: 200,
    headers: {
      ...(typeof headers === 'string' && headers ? { 'access-control-allow-headers': headers } : {}),
      ...(typeof method === 'string' && method ? { 'access-control-allow-methods': method } : {}),
      'access-control-max-age': String(CORS_MAX_AGE_SECONDS),
    },
    body: '',
  };
}

/**
 * AWS's answer to a request that reaches no service's operation (kinesalite's recording of
 * Kinesis): a POST in an awsJson 1.1 content type (JSON or CBOR), with no X-Amz-Target or one no
 * service here has, is 400 UnknownOperationException in that format, signed or not; anything else
 * (another method, another content type, a path of no service) is a 403 in AWS's legacy XML shape,
 * MissingAuthenticationTokenException when unsigned, else AccessDeniedException; a POST naming a
 * Service.Operation in another content type is a 404 <UnknownOperationException/>.
 */
function noOperation(req: ApiRequest): ApiResponse {
  const target = req.headers['x-amz-target'];
  if (req.method === 'POST') {
    const unknown = awsJsonUnknownOperation(req);
    if (unknown) return unknown;
    if (typeof target === 'string' && /^[^.]+\.[^.]/.test(target)) return legacyXml(404, 'UnknownOperationException');
  }
  const signed = req.headers.authorization !== undefined || req.query.has('X-Amz-Algorithm');
  return signed
    ? legacyXml(403, 'AccessDeniedException', NO_OPERATION_MESSAGE)
    : legacyXml(403, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
}

/**
 * `<Type>\n  <Message>…</Message>\n</Type>\n` (or `<Type/>\n` without a message), no content type,
 * as AWS's RPC front ends answer; x-amzn-ErrorType is added so SDKs that read it name the error.
 */
function legacyXml(status: number, type: string, message?: string): ApiResponse {
  return {
    status,
    headers: { 'x-amzn-errortype': type },
    body: message === undefined ? `<${type}/>\n` : `<${type}>\n  <Message>${message}</Message>\n</${type}>\n`,
  };
}

function overloadedPlain(req: ApiRequest): ApiResponse {
  return {
    status: 503,
    headers: { 'content-type': 'application/json', 'x-amzn-errortype': 'ServiceUnavailableException' },
    body: JSON.stringify({ Message: 'The server is at its connection limit; retry with backoff', RequestID: req.requestId }),
  };
}
