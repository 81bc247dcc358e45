// The invariants every answer must meet, per protocol: no 5xx (nothing is injected here, so any
// is a bug), and every error in the shape that protocol's AWS SDKs parse:
//  - restJson1 (Pinpoint): status + x-amzn-ErrorType + a JSON object with "Message" (or "message");
//  - awsJson 1.1 (Kinesis, Firehose, Cognito Identity): {"__type", "message"} in the request's wire format (CBOR when the request was
//    application/x-amz-cbor-1.1, JSON otherwise), with that content type; UnknownOperationException
//    has no message, as AWS sends it;
//  - the front door (no service's operation): AWS's answers, {"__type":"UnknownOperationException"}
//    for a POST in an awsJson content type, else x-amzn-ErrorType + `<Type>…</Type>` XML;
//  - Query (IAM, STS): an XML <ErrorResponse><Error><Code/><Message/></Error></ErrorResponse>
//    that the SDK's XML parser reads and that holds only characters XML 1.0 allows (botocore's
//    expat parser rejects the whole answer otherwise).
// Which protocol answers is decided the way the server's one port decides it (src/http/dispatch.ts):
// a POST with a known X-Amz-Target prefix, else a /v1/ path, else a form POST, else the front door.

import { decode as cborDecode } from 'cborg';
import { parseXML } from '@aws-sdk/xml-builder';
import { CBOR_CT, JSON_CT, type WireRequest, type WireResponse } from './wire.js';
import { AWS_JSON_TARGET_PREFIXES } from './models.js';

export type Answering = 'rest' | 'json' | 'cbor' | 'query' | 'front';

const TARGET_PREFIXES = AWS_JSON_TARGET_PREFIXES;

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** Which protocol the server's dispatcher gives this request to. */
export function answering(r: WireRequest): Answering {
  let target = header(r.headers, 'x-amz-target');
  // HTTP/2 forbids whitespace around a field value; such a field does not reach the server.
  if (r.h2 && target !== undefined && /^\s|\s$/.test(target)) target = undefined;
  const path = r.target.split('?')[0];
  // awsJson is POST only (dispatch.ts): another method with a target reaches the front door.
  if (target !== undefined && r.method.toUpperCase() === 'POST') {
    const dot = target.indexOf('.');
    // Mirrors dispatch.ts: the text before the first dot (slice(0, -1) when there is none).
    const prefix = target.slice(0, dot);
    if (TARGET_PREFIXES.includes(prefix)) {
      const ct = contentTypeSeen(r);
      return ct.startsWith(CBOR_CT) ? 'cbor' : 'json';
    }
  }
  if (path.startsWith('/v1/')) return 'rest';
  if (r.method === 'POST' && target === undefined && contentTypeSeen(r).startsWith('application/x-www-form-urlencoded')) return 'query';
  return 'front';
}

/** Node keeps the first of repeated Content-Type headers. */
function contentTypeSeen(r: WireRequest): string {
  const v = r.headers['content-type'];
  return (Array.isArray(v) ? v[0] : v) ?? '';
}

export interface Violation {
  kind: '5xx' | 'shape' | 'no-answer';
  detail: string;
}

/** Checks one answer; returns what is wrong with it, or undefined. */
export function checkAnswer(r: WireRequest, res: WireResponse): Violation | undefined {
  const proto = answering(r);
  if (res.status >= 500) return { kind: '5xx', detail: `${res.status} ${describe(res)}` };
  // Node's own HTTP parser refuses some malformed requests (bad request line, 16 KiB of headers)
  // with a bare 400/431 before any protocol sees them; only requests built to be invalid HTTP may get that.
  if (r.httpInvalid && (res.status === 400 || res.status === 431) && res.headers['x-amzn-requestid'] === undefined) return undefined;
  if (res.status < 400) return checkSuccess(proto, r, res);
  if (res.partial) return undefined; // cut at the read cap: nothing to parse
  if (r.method === 'HEAD') {
    // No body on HEAD; the error type must still be there for REST answers.
    return proto === 'rest' && !header(res.headers, 'x-amzn-errortype') ? { kind: 'shape', detail: `HEAD error without x-amzn-ErrorType: ${res.status}` } : undefined;
  }
  const problem = errorProblem(proto, r, res);
  return problem ? { kind: 'shape', detail: `${proto} error ${res.status}: ${problem}; ${describe(res)}` } : undefined;
}

function errorProblem(proto: Answering, r: WireRequest, res: WireResponse): string | undefined {
  const ct = header(res.headers, 'content-type') ?? '';
  switch (proto) {
    case 'front': {
      if (r.target.startsWith('/console')) return undefined; // static files: plain 404s
      if (ct === JSON_CT || ct === CBOR_CT) {
        // awsJson names the error in the body only.
        const body = ct === CBOR_CT ? parseCbor(res.body) : parseJson(res.body);
        return isObject(body) && body.__type === 'UnknownOperationException' ? undefined : 'awsJson answer is not UnknownOperationException';
      }
      const type = header(res.headers, 'x-amzn-errortype');
      if (!type || !/^[A-Za-z][A-Za-z0-9]*$/.test(type)) return `x-amzn-ErrorType is ${JSON.stringify(type)}`;
      if (ct.startsWith('application/json')) {
        // Operator routes (/metrics without its token) answer in JSON with a message.
        const body = parseJson(res.body);
        return isObject(body) && (typeof body.message === 'string' || typeof body.Message === 'string') ? undefined : 'no message';
      }
      const text = res.body.toString('utf8');
      return text.startsWith(`<${type}>`) || text.startsWith(`<${type}/>`) ? undefined : `XML body does not name ${type}`;
    }
    case 'rest': {
      const type = header(res.headers, 'x-amzn-errortype');
      if (!type || !/^[A-Za-z][A-Za-z0-9]*(:.*)?$/.test(type)) return `x-amzn-ErrorType is ${JSON.stringify(type)}`;
      if (!ct.startsWith('application/json')) return `content-type ${ct}`;
      const body = parseJson(res.body);
      if (!isObject(body)) return 'body is not a JSON object';
      if (typeof body.Message !== 'string' && typeof body.message !== 'string') return 'no Message';
      return undefined;
    }
    case 'json':
    case 'cbor': {
      const want = proto === 'cbor' ? CBOR_CT : JSON_CT;
      if (ct !== want) return `content-type ${ct}, expected ${want}`;
      const body = proto === 'cbor' ? parseCbor(res.body) : parseJson(res.body);
      if (!isObject(body)) return `body is not a ${proto.toUpperCase()} map`;
      if (typeof body.__type !== 'string' || body.__type === '') return '__type missing';
      if (body.__type === 'UnknownOperationException' && body.message === undefined) return undefined;
      if (typeof body.message !== 'string' && typeof body.Message !== 'string') return 'message missing';
      return undefined;
    }
    case 'query': {
      if (!ct.startsWith('text/xml')) return `content-type ${ct}`;
      const text = res.body.toString('utf8');
      const bad = xmlProblem(res.body);
      if (bad) return bad;
      let doc: any;
      try {
        doc = parseXML(text);
      } catch (e) {
        return `XML does not parse: ${(e as Error).message}`;
      }
      const err = doc?.ErrorResponse?.Error;
      if (!err || typeof err.Code !== 'string' || err.Code === '') return 'no ErrorResponse/Error/Code';
      if (typeof err.Message !== 'string') return 'no ErrorResponse/Error/Message';
      return undefined;
    }
  }
}

function checkSuccess(proto: Answering, r: WireRequest, res: WireResponse): Violation | undefined {
  if (res.partial || r.method === 'HEAD' || res.body.length === 0) return undefined;
  const ct = header(res.headers, 'content-type') ?? '';
  const fail = (detail: string): Violation => ({ kind: 'shape', detail: `${proto} success ${res.status}: ${detail}; ${describe(res)}` });
  if ((proto === 'rest' || proto === 'front') && ct.startsWith('application/json') && parseJson(res.body) === undefined) return fail('body is not JSON');
  if (proto === 'json' && parseJson(res.body) === undefined) return fail('body is not JSON');
  if (proto === 'cbor' && parseCbor(res.body) === undefined) return fail('body is not CBOR');
  if (proto === 'query') {
    const bad = xmlProblem(res.body);
    if (bad) return fail(bad);
    try {
      parseXML(res.body.toString('utf8'));
    } catch (e) {
      return fail(`XML does not parse: ${(e as Error).message}`);
    }
  }
  return undefined;
}

/**
 * What a strict XML 1.0 parser would refuse that the SDK's lenient one lets through: bytes that
 * are not UTF-8, characters outside XML's Char production, '&' not starting an entity, '<' in text.
 */
export function xmlProblem(body: Buffer): string | undefined {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    return 'XML is not UTF-8';
  }
  const illegal = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u.exec(text);
  if (illegal) return `XML holds character U+${illegal[0].charCodeAt(0).toString(16).padStart(4, '0')}, which XML 1.0 does not allow`;
  const amp = /&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.exec(text);
  if (amp) return `XML has a bare '&' at ${amp.index}`;
  return undefined;
}

function parseJson(b: Buffer): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b));
  } catch {
    return undefined;
  }
}

function parseCbor(b: Buffer): unknown {
  try {
    return cborDecode(b, { useMaps: false });
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function describe(res: WireResponse): string {
  const type = header(res.headers, 'x-amzn-errortype');
  const body = res.body.subarray(0, 300);
  const printable = /^[\t\n\r\x20-\x7e]*$/.test(body.toString('latin1'));
  return `${type ? `x-amzn-ErrorType: ${type}; ` : ''}content-type: ${header(res.headers, 'content-type') ?? '(none)'}; body: ${printable ? body.toString('latin1') : `hex:${body.toString('hex')}`}${res.body.length > 300 ? '…' : ''}`;
}

/** The AWS error type of an answer, whatever its protocol (for reports and implemented-operation probing). */
export function errorType(r: WireRequest, res: WireResponse): string | undefined {
  if (res.status < 400) return undefined;
  const proto = answering(r);
  if (proto === 'json') return (parseJson(res.body) as any)?.__type;
  if (proto === 'cbor') return (parseCbor(res.body) as any)?.__type;
  if (proto === 'query') {
    try {
      return (parseXML(res.body.toString('utf8')) as any)?.ErrorResponse?.Error?.Code;
    } catch {
      return undefined;
    }
  }
  return header(res.headers, 'x-amzn-errortype');
}
