// awsJson1.1 RPC protocol (Kinesis, Firehose): `POST /` with `X-Amz-Target: <Prefix>.<Operation>`,
// JSON bodies with base64 blobs, or CBOR 1.1 bodies with raw byte strings (the Java SDK's and
// KCL's default for Kinesis). The answer is in the request's content type. Errors are
// {"__type","message"} (400 for client errors, 500 for InternalFailure), mapped here only.
// Every request is checked against the service's model before anyone sees it, in AWS's order:
// decode, deserialize into the model's types (SerializationException), the model's constraints
// (one ValidationException listing them all), then authorization, then the handler (resource
// existence, then business rules), which receives the validated, typed input.

import { decode as cborDecode, encode as cborEncode } from 'cborg';
import type { Protocol } from './dispatch.js';
import { ApiError, AuthError } from './errors.js';
import { DepthLimitedTokenizer } from './cbor-depth.js';
import { nestingExceeds, nestingMessage } from '../nesting.js';
import type { ApiRequest, ApiResponse } from './request.js';
import type { Json } from './shape.js';
import type { ServiceModel } from '../models/types.js';
import { ModelValidator, type ShapeOverride } from '../models/validate.js';
import { parseJsonBytes } from './json-bytes.js';

export const JSON_CONTENT_TYPE = 'application/x-amz-json-1.1';
export const CBOR_CONTENT_TYPE = 'application/x-amz-cbor-1.1';

/**
 * An operation over its validated input: only the model's members, blobs as Buffers, timestamps as
 * Dates (`I` is the generated input type, src/models/generated/<service>-inputs.ts).
 */
export type Operation<I = Json> = (input: I, req: ApiRequest) => Promise<unknown> | unknown;
/** A streaming operation answers with its own response (SubscribeToShard's event stream). */
export type RawOperation<I = Json> = (input: I, req: ApiRequest, format: WireFormat) => Promise<ApiResponse>;
/** An operation table typed per operation by a generated `Inputs` map. */
export type Operations<M> = { [K in keyof M]?: Operation<M[K]> };
export type RawOperations<M> = { [K in keyof M]?: RawOperation<M[K]> };

export type WireFormat = 'json' | 'cbor';

export interface JsonRpcService {
  targetPrefix: string;
  signingServices: readonly string[];
  /** The longest request body the service accepts: its largest legal request, blobs in base64. */
  maxRequestBytes: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  operations: Record<string, Operation<any> | undefined>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  rawOperations?: Record<string, RawOperation<any> | undefined>;
  /** The service's generated model: every operation's input is validated against it. */
  model?: ServiceModel;
  /** Deliberate deviations from the model, by shape name (each documented where it is given). */
  modelOverrides?: Record<string, ShapeOverride>;
  /** Operations answered without a signature (the model's noAuth); they run without a caller. */
  unsignedOperations?: readonly string[];
  /** Runs after validation, before every operation; throws AccessDeniedException when the caller may not act. */
  authorize?: (operation: string, input: Json, req: ApiRequest) => void;
}

/** A client error with the service's own type name (400). */
export class ServiceError extends ApiError {
  constructor(code: string, message: string, status = 400) {
    super(code, status, message);
  }
}

/** AWS sends UnknownOperationException with no message: `{"__type":"UnknownOperationException"}`. */
const unknownOperationError = () => new ServiceError('UnknownOperationException', '');

/**
 * AWS's answer to a POST in an awsJson 1.1 content type that names no service here (no
 * X-Amz-Target, or an unknown prefix): 400 UnknownOperationException in the request's format.
 * Undefined for other content types, which AWS does not read as awsJson at all.
 */
export function awsJsonUnknownOperation(req: ApiRequest): ApiResponse | undefined {
  const ct = String(req.headers['content-type'] ?? '');
  if (!ct.startsWith(JSON_CONTENT_TYPE) && !ct.startsWith(CBOR_CONTENT_TYPE)) return undefined;
  return encodeBody({ __type: unknownOperationError().code }, formatOf(req), 400);
}

export function awsJsonProtocol(service: JsonRpcService): Protocol {
  // The operation name comes from the client: Maps of the tables' own entries, so `constructor` or
  // `__proto__` find nothing inherited.
  const operations = new Map(Object.entries(service.operations).filter(([, f]) => f !== undefined));
  const rawOperations = new Map(Object.entries(service.rawOperations ?? {}).filter(([, f]) => f !== undefined));
  const validator = service.model ? new ModelValidator(service.model, service.modelOverrides) : undefined;
  const prefix = `${service.targetPrefix}.`;
  const model = service.model;
  const modelled = new Set(Object.keys(model?.operations ?? {}));
  const unsigned = new Set(service.unsignedOperations ?? []);
  const operationOf = (req: ApiRequest) => {
    const target = String(req.headers['x-amz-target'] ?? '');
    return target.startsWith(prefix) ? target.slice(prefix.length) : '';
  };
  return {
    signingServices: service.signingServices,
    unsigned: unsigned.size > 0 ? { head: (req) => unsigned.has(operationOf(req)) } : undefined,
    maxBodyBytes: () => service.maxRequestBytes,
    unknownOperation(req) {
      const target = String(req.headers['x-amz-target'] ?? '');
      const op = target.startsWith(prefix) ? target.slice(prefix.length) : '';
      if (operations.has(op) || rawOperations.has(op)) return undefined;
      // An operation of AWS's model that Pinstream lacks is named, so it is not taken for a typo.
      if (modelled.has(op)) return new ServiceError('UnknownOperationException', `Pinstream does not support the ${model!.metadata.serviceId} operation ${op}`);
      return unknownOperationError();
    },
    async handle(req) {
      const target = String(req.headers['x-amz-target'] ?? '');
      const op = target.startsWith(prefix) ? target.slice(prefix.length) : '';
      const fn = operations.get(op);
      const raw = rawOperations.get(op);
      if (!fn && !raw) throw new ServiceError('UnknownOperationException', `Unknown operation ${target}`);
      const format = formatOf(req);
      const body = decodeBody(req, format);
      let input = body as Json;
      if (validator) {
        const r = validator.validate<Json>(op, body);
        if (!r.ok) throw new ServiceError(r.error.code, r.error.message);
        input = r.value;
      } else if (!isStructure(body)) {
        throw new ServiceError('SerializationException', 'Request body must be an object');
      }
      service.authorize?.(op, input, req);
      if (raw) return raw(input, req, format);
      const out = await fn!(input, req);
      return encodeBody(out, format, 200);
    },
    error(err, req) {
      const format = formatOf(req);
      // JSON-RPC services answer authentication failures (MissingAuthenticationTokenException,
      // UnrecognizedClientException, Invalid/IncompleteSignatureException) and
      // AccessDeniedException with 400, like every other client error. An error AWS sends
      // without a message (UnknownOperationException) has none here either.
      const status = err instanceof AuthError || err.code === 'AccessDeniedException' ? 400 : err.status;
      if (err.message === '') return encodeBody({ __type: err.code }, format, status);
      // Coral writes a SerializationException's text as `Message` (kinesalite recorded it); SDKs read either.
      const text = err.code === 'SerializationException' ? { Message: err.message } : { message: err.message };
      return encodeBody({ __type: err.code, ...text }, format, status);
    },
  };
}

function formatOf(req: ApiRequest): WireFormat {
  const ct = String(req.headers['content-type'] ?? '');
  return ct.startsWith(CBOR_CONTENT_TYPE) ? 'cbor' : 'json';
}

const isStructure = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

/** The decoded body (any JSON/CBOR value: the model validator says what is wrong with it). */
function decodeBody(req: ApiRequest, format: WireFormat): unknown {
  if (req.body.length === 0) return {};
  let v: unknown;
  try {
    v =
      format === 'cbor'
        ? cborDecode(req.body, { tags: CBOR_TAGS, tokenizer: new DepthLimitedTokenizer(new Uint8Array(req.body.buffer, req.body.byteOffset, req.body.length)) })
        : parseJsonBytes(req.body);
  } catch (e) {
    throw new ServiceError('SerializationException', `Request body is not valid ${format === 'cbor' ? 'CBOR' : 'JSON'}: ${(e as Error).message}`);
  }
  if (nestingExceeds(v)) throw new ServiceError('SerializationException', nestingMessage('Request body'));
  return v;
}

/** Undefined output (operations without a result) is an empty body, as AWS answers. */
export function encodeBody(out: unknown, format: WireFormat, status: number): ApiResponse {
  const contentType = format === 'cbor' ? CBOR_CONTENT_TYPE : JSON_CONTENT_TYPE;
  if (out === undefined) return { status, headers: { 'content-type': contentType }, body: '' };
  const body =
    format === 'cbor'
      ? Buffer.from(cborEncode(withoutUndefined(out)))
      : typeof out === 'object' && out !== null && AWS_JSON_BYTES in out
        ? (out as HasAwsJsonBytes)[AWS_JSON_BYTES]()
        : JSON.stringify(blobsToBase64(out));
  return { status, headers: { 'content-type': contentType }, body };
}

/** CBOR tag 1 (epoch time): Java SDKs write epoch milliseconds in it, the CBOR spec seconds. */
const CBOR_TAGS: Array<(decode: () => unknown) => unknown> = [];
CBOR_TAGS[1] = (decode) => {
  const v = decode();
  return typeof v === 'number' ? new Date(v > 1e11 ? v : v * 1000) : v;
};

/** CBOR has no "absent": optional members that are undefined are left out, as in JSON; dates become epoch ms. */
function withoutUndefined(v: unknown): unknown {
  if (v instanceof Uint8Array || v === null || typeof v !== 'object') return v;
  if (v instanceof Date) return v.getTime();
  if (Array.isArray(v)) return v.map(withoutUndefined);
  const out: Json = {};
  for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = withoutUndefined(x);
  return out;
}

/**
 * A value that writes its own awsJson form (blobs already base64, timestamps epoch seconds): the
 * JSON encoder takes that instead of walking it. GetRecords pages of 10,000 records spend most of
 * their encoding time in the generic walk's per-member copies; a record class answers in one step.
 */
export const AWS_JSON_FORM: unique symbol = Symbol('awsJsonForm');
export interface HasAwsJsonForm {
  [AWS_JSON_FORM](): Json;
}

/**
 * An answer that writes its whole JSON body itself, as bytes: a GetRecords page of 10,000 records
 * through JSON.stringify is a 14 MB string scanned for escapes, then scanned again for its UTF-8
 * length and encoded on the socket; written straight into one buffer it costs a third of that.
 * The symbol is not an own enumerable key, so the CBOR encoder and JSON.stringify never see it.
 */
export const AWS_JSON_BYTES: unique symbol = Symbol('awsJsonBytes');
export interface HasAwsJsonBytes {
  [AWS_JSON_BYTES](): Buffer;
}

/** JSON carries blobs as base64; done in a walk because Buffer.toJSON would make number arrays. */
export function blobsToBase64(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if (Buffer.isBuffer(v)) return v.toString('base64');
  if (v instanceof Date) return v.getTime() / 1000;
  if (Array.isArray(v)) {
    const out = new Array<unknown>(v.length);
    for (let i = 0; i < v.length; i++) out[i] = blobsToBase64(v[i]);
    return out;
  }
  if (AWS_JSON_FORM in v) return (v as HasAwsJsonForm)[AWS_JSON_FORM]();
  const out: Json = {};
  const o = v as Record<string, unknown>;
  for (const k in o) {
    if (!Object.hasOwn(o, k)) continue;
    const x = o[k];
    if (x !== undefined) out[k] = blobsToBase64(x);
  }
  return out;
}

/** A blob member: base64 text in JSON, bytes in CBOR. */
export function blobInput(v: unknown, field: string): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (typeof v === 'string') {
    // Node's decoder skips characters outside the alphabet, so a decoded length short of what the
    // text's length implies means there were some; it also takes base64url's - and _, which the
    // length cannot reveal. Cheaper than a regex over every (up to 1 MiB) blob.
    const out = Buffer.from(v, 'base64');
    const pad = v.endsWith('==') ? 2 : v.endsWith('=') ? 1 : 0;
    if (v.length % 4 === 1 || out.length !== Math.floor((v.length * 3) / 4) - pad || v.includes('-') || v.includes('_')) {
      throw new ServiceError('SerializationException', `${field} is not valid base64`);
    }
    return out;
  }
  throw new ServiceError('SerializationException', `${field} must be a blob (base64 string)`);
}

/** A timestamp member: epoch seconds (JSON) or a CBOR date / epoch value. Returns ms. */
export function timestampInput(v: unknown, field: string): number {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'number' && Number.isFinite(v)) return Math.round(v * 1000);
  if (typeof v === 'string' && v !== '') {
    const n = Number(v);
    if (Number.isFinite(n)) return Math.round(n * 1000);
    const ms = Date.parse(v);
    if (!Number.isNaN(ms)) return ms;
  }
  throw new ServiceError('SerializationException', `${field} must be a timestamp (epoch seconds)`);
}

/**
 * A timestamp member of an answer. Operations hand out Dates; the encoder writes them the way
 * each wire format's SDKs parse them: epoch seconds with a millisecond fraction in JSON, integer
 * epoch milliseconds in CBOR (what the Java SDKs, and so KCL, read).
 */
export const timestampOut = (ms: number) => new Date(ms);
