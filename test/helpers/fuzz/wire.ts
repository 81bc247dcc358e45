// From a fuzz case to bytes on a socket: the request each protocol's SDK would send for the
// (mutated) input, then the wire-level mutations (truncated or re-tagged bodies, odd targets,
// paths, query strings, headers), then SigV4 as the case says (admin, a restricted user,
// presigned, or unsigned / badly signed), sent over HTTP/1.1 or HTTP/2.

import http from 'node:http';
import http2 from 'node:http2';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import fc from 'fast-check';
import { cborHead, flattenQuery, formEncode, percentEncode, scalarBytes, toCbor, toJson, type Resolve } from './encode.js';
import type { Operation } from './models.js';
import { applyMutations, BAD_UTF8, mutationsArb, PROTO_KEYS, type Mutation } from './mutate.js';
import { Obj, type Value } from './values.js';

/** SHA-256 for the SigV4 signer from node:crypto: the JS implementation takes seconds over a 17 MB body. */
class Sha256 {
  private h: Hash | Hmac;
  private secret?: Uint8Array;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    if (secret !== undefined) this.secret = bytesOf(secret);
    this.h = this.fresh();
  }
  private fresh(): Hash | Hmac {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', this.secret);
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.h.update(bytesOf(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {
    this.h = this.fresh();
  }
}

function bytesOf(d: string | ArrayBuffer | ArrayBufferView): Uint8Array {
  if (typeof d === 'string') return Buffer.from(d, 'utf8');
  if (ArrayBuffer.isView(d)) return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  return new Uint8Array(d);
}

export const JSON_CT = 'application/x-amz-json-1.1';
export const CBOR_CT = 'application/x-amz-cbor-1.1';
export const FORM_CT = 'application/x-www-form-urlencoded; charset=utf-8';

export type Format = 'json' | 'cbor' | 'rest' | 'query';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface Target {
  url: string;
  admin: Credentials;
  restricted: Credentials;
  resolve: Resolve;
}

export type SignMode =
  | 'admin'
  | 'restricted'
  | 'presigned'
  | 'unsigned'
  | 'badSignature'
  | 'unknownKey'
  | 'garbageAuth'
  | 'expired'
  | 'future'
  | 'wrongService'
  | 'madeUpToken';

export const signModeArb: fc.Arbitrary<SignMode> = fc.oneof(
  { weight: 45, arbitrary: fc.constant('admin' as const) },
  { weight: 18, arbitrary: fc.constant('restricted' as const) },
  { weight: 5, arbitrary: fc.constant('presigned' as const) },
  { weight: 8, arbitrary: fc.constant('unsigned' as const) },
  { weight: 6, arbitrary: fc.constant('badSignature' as const) },
  { weight: 4, arbitrary: fc.constant('unknownKey' as const) },
  { weight: 5, arbitrary: fc.constant('garbageAuth' as const) },
  { weight: 3, arbitrary: fc.constant('expired' as const) },
  { weight: 2, arbitrary: fc.constant('future' as const) },
  { weight: 2, arbitrary: fc.constant('wrongService' as const) },
  { weight: 2, arbitrary: fc.constant('madeUpToken' as const) },
);

/** Body-level mutations; `i` indexes the list of variants of its kind. */
export type BodyMutation =
  | { k: 'none' }
  | { k: 'truncate'; frac: number }
  | { k: 'garbage'; i: number }
  | { k: 'bom' }
  | { k: 'empty' }
  | { k: 'literal'; i: number }
  | { k: 'splice'; frac: number; i: number }
  | { k: 'otherFormat' }
  | { k: 'cbor'; i: number };

const GARBAGE = ['}', ']', 'x', '\u0000', '{"a":1}', ' \n\t', '\u00ff', ',', '"'];
const LITERALS = ['null', 'true', '0', '-1', '"text"', '[]', '[{}]', '{', '}', '{"a":}', 'NaN', '1e400', '{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"polluted":1}}}', '\u0000', ' '];
/** CBOR oddities applied to the encoded body: tags, indefinite lengths, lies about lengths, stray bytes. */
export const CBOR_ODDITIES = [
  'tag55799',
  'tag1',
  'tag0',
  'tag2',
  'tag999999',
  'tag1OnString',
  'indefiniteMap',
  'hugeLength',
  'break',
  'undefined',
  'intKeys',
  'halfNaN',
  'simple99',
  'twoItems',
  'byteStringKeys',
  'nestedTags',
] as const;

export const bodyMutationArb: (format: Format) => fc.Arbitrary<BodyMutation> = (format) =>
  fc.oneof(
    { weight: 24, arbitrary: fc.constant({ k: 'none' as const }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('truncate' as const), frac: fc.double({ min: 0, max: 1, noNaN: true }) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('garbage' as const), i: fc.nat({ max: GARBAGE.length - 1 }) }) },
    { weight: 1, arbitrary: fc.constant({ k: 'bom' as const }) },
    { weight: 1, arbitrary: fc.constant({ k: 'empty' as const }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('literal' as const), i: fc.nat({ max: LITERALS.length - 1 }) }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('splice' as const), frac: fc.double({ min: 0, max: 1, noNaN: true }), i: fc.nat({ max: BAD_UTF8.length - 1 }) }) },
    { weight: 1, arbitrary: fc.constant({ k: 'otherFormat' as const }) },
    { weight: format === 'cbor' ? 8 : 0, arbitrary: fc.record({ k: fc.constant('cbor' as const), i: fc.nat({ max: CBOR_ODDITIES.length - 1 }) }) },
  );

/** Protocol-level mutations: the target, the Query parameters, the REST path and query, the method. */
export type WireMutation = { k: 'none' } | { k: 'target'; i: number } | { k: 'query'; i: number } | { k: 'path'; i: number; label: number } | { k: 'restQuery'; i: number } | { k: 'method'; i: number };

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'PROPFIND', 'FUZZ'];
const TARGET_VARIANTS = 18;
export const QUERY_VARIANTS = [
  'dupAction',
  'dropAction',
  'dropVersion',
  'wrongVersion',
  'actionInUrl',
  'protoAction',
  'lowercaseAction',
  'badPercent',
  'plusSpaces',
  'manyParams',
  'emptyKey',
  'bareKey',
  'semicolons',
  'invalidUtf8Action',
  'loneSurrogateValue',
  'hugeKey',
  'ampersands',
  'emptyAction',
  'nulInValue',
] as const;
export const PATH_VARIANTS = [
  'rawLabel',
  'doubleEncode',
  'dotSegment',
  'dotDot',
  'doubleSlash',
  'trailingSlash',
  'pct00',
  'pct2F',
  'pctZZ',
  'pctFF',
  'pctSurrogate',
  'longLabel',
  'protoLabel',
  'upperPrefix',
  'emptyLabel',
  'encodedDots',
  'backslash',
  'matrixParam',
  'unicodeLabel',
  'plusLabel',
] as const;
const REST_QUERY_VARIANTS = ['repeat', 'protoParam', 'oddRaw', 'manyTagKeys', 'pageSizeOdd', 'hugeValue', 'fragment'] as const;

export const wireMutationArb: (format: Format) => fc.Arbitrary<WireMutation> = (format) => {
  const none = { weight: 12, arbitrary: fc.constant({ k: 'none' as const }) };
  const method = { weight: 1, arbitrary: fc.record({ k: fc.constant('method' as const), i: fc.nat({ max: METHODS.length - 1 }) }) };
  if (format === 'json' || format === 'cbor') return fc.oneof(none, { weight: 4, arbitrary: fc.record({ k: fc.constant('target' as const), i: fc.nat({ max: TARGET_VARIANTS - 1 }) }) }, method);
  if (format === 'query') return fc.oneof(none, { weight: 6, arbitrary: fc.record({ k: fc.constant('query' as const), i: fc.nat({ max: QUERY_VARIANTS.length - 1 }) }) }, method);
  return fc.oneof(
    none,
    { weight: 6, arbitrary: fc.record({ k: fc.constant('path' as const), i: fc.nat({ max: PATH_VARIANTS.length - 1 }), label: fc.nat() }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('restQuery' as const), i: fc.nat({ max: REST_QUERY_VARIANTS.length - 1 }) }) },
    { weight: 2, arbitrary: method.arbitrary },
  );
};

export type HeaderMutation =
  | { k: 'none' }
  | { k: 'contentType'; i: number }
  | { k: 'duplicate' }
  | { k: 'contentEncoding'; i: number }
  | { k: 'chunked' }
  | { k: 'big'; size: number }
  | { k: 'many'; n: number }
  | { k: 'sha256'; i: number }
  | { k: 'expect' }
  | { k: 'accept'; i: number };

export const CONTENT_TYPES = [
  '',
  'text/plain',
  'application/json',
  'application/x-amz-json-1.0',
  JSON_CT,
  CBOR_CT,
  'application/x-www-form-urlencoded',
  'application/x-www-form-urlencoded; charset=utf-16',
  'multipart/form-data; boundary=x',
  `${JSON_CT}; charset=latin1`,
  `${CBOR_CT}; x=y`,
  'APPLICATION/JSON',
  'application/xml',
  'application/cbor',
];
const ENCODINGS = ['gzip', 'br', 'deflate', 'identity', 'aws-chunked', 'x-fuzz'];
const SHA256_HEADERS = ['UNSIGNED-PAYLOAD', '0'.repeat(64), 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD', 'zz'];
const ACCEPTS = [CBOR_CT, JSON_CT, 'text/xml', '*/*;q=0', 'x'];

export const headerMutationArb: fc.Arbitrary<HeaderMutation> = fc.oneof(
  { weight: 20, arbitrary: fc.constant({ k: 'none' as const }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('contentType' as const), i: fc.nat({ max: CONTENT_TYPES.length - 1 }) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'duplicate' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('contentEncoding' as const), i: fc.nat({ max: ENCODINGS.length - 1 }) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'chunked' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('big' as const), size: fc.constantFrom(4_000, 12_000, 20_000, 70_000) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('many' as const), n: fc.constantFrom(100, 300) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('sha256' as const), i: fc.nat({ max: SHA256_HEADERS.length - 1 }) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'expect' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('accept' as const), i: fc.nat({ max: ACCEPTS.length - 1 }) }) },
);

export interface FuzzCase {
  op: number;
  input: Value;
  muts: Mutation[];
  body: BodyMutation;
  wire: WireMutation;
  headers: HeaderMutation;
  sign: SignMode;
  h2: boolean;
}

export interface Group {
  name: string;
  format: Format;
  ops: Operation[];
}

/**
 * Cases for a group: an operation (implemented ones ~85% of the time), a valid-ish input for it,
 * and the mutations. `implemented` is the operations' indexes Pinstream answered as known.
 */
export function caseArbitrary(group: Group, implemented: number[], inputArb: (op: Operation) => fc.Arbitrary<Value>): fc.Arbitrary<FuzzCase> {
  const others = group.ops.map((_, i) => i).filter((i) => !implemented.includes(i));
  // Deleting the fixtures every few cases would leave the other operations little to work on.
  const destructive = (i: number) => /^(Delete|Deregister)/.test(group.ops[i].name);
  const keep = implemented.filter((i) => !destructive(i));
  const drop = implemented.filter(destructive);
  const implementedArb =
    drop.length === 0 || keep.length === 0
      ? fc.constantFrom(...implemented)
      : fc.oneof({ weight: 6 * keep.length, arbitrary: fc.constantFrom(...keep) }, { weight: drop.length, arbitrary: fc.constantFrom(...drop) });
  const opArb =
    implemented.length === 0 || others.length === 0
      ? implemented.length === 0
        ? fc.nat({ max: group.ops.length - 1 })
        : implementedArb
      : fc.oneof({ weight: 85, arbitrary: implementedArb }, { weight: 15, arbitrary: fc.constantFrom(...others) });
  const h2 = fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });
  const none = { body: fc.constant<BodyMutation>({ k: 'none' }), wire: fc.constant<WireMutation>({ k: 'none' }), headers: fc.constant<HeaderMutation>({ k: 'none' }) };
  const signed = fc.oneof({ weight: 3, arbitrary: fc.constant<SignMode>('admin') }, { weight: 1, arbitrary: fc.constant<SignMode>('restricted') });
  // The model's noAuth operations (Cognito's GetId, GetCredentialsForIdentity…) are mostly sent
  // as devices send them: without a signature.
  const devices = fc.oneof({ weight: 3, arbitrary: fc.constant<SignMode>('unsigned') }, { weight: 1, arbitrary: fc.constant<SignMode>('admin') });
  const signedFor = (op: number) => (group.ops[op].unsigned ? devices : signed);
  // Three kinds of case, so that each layer is exercised on its own as well as all at once:
  // well-formed and properly signed (reaches the handlers' semantics), only the input mutated
  // (reaches their validation), and everything mutated (the protocol and HTTP layers).
  return opArb.chain((op) => {
    const input = inputArb(group.ops[op]);
    const clean = fc.record({ op: fc.constant(op), input, muts: fc.constant<Mutation[]>([]), ...none, sign: signedFor(op), h2 });
    const valueOnly = fc.record({ op: fc.constant(op), input, muts: mutationsArb, ...none, sign: signedFor(op), h2 });
    const full = fc.record({
      op: fc.constant(op),
      input,
      muts: mutationsArb,
      body: bodyMutationArb(group.format),
      wire: wireMutationArb(group.format),
      headers: headerMutationArb,
      sign: signModeArb,
      h2,
    });
    return fc.oneof({ weight: 3, arbitrary: clean }, { weight: 4, arbitrary: valueOnly }, { weight: 3, arbitrary: full });
  });
}

/** The request as it goes on the wire. `httpInvalid`: not valid HTTP, so the HTTP parser may refuse it before any protocol sees it. */
export interface WireRequest {
  method: string;
  /** Raw request target: path and query, percent-encoded (or deliberately not). */
  target: string;
  headers: Record<string, string | string[]>;
  body: Buffer;
  h2: boolean;
  httpInvalid: boolean;
}

interface Draft {
  method: string;
  path: string;
  /** Decoded query parameters (what a signer sees); raw values are their percent-encoding. */
  query: Array<[string, Buffer]>;
  /** Appended to the query string after signing (text no signer could have produced). */
  rawQuerySuffix: string;
  headers: Record<string, string | string[]>;
  body: Buffer;
  httpInvalid: boolean;
}

export async function buildRequest(group: Group, c: FuzzCase, t: Target): Promise<WireRequest> {
  const op = group.ops[c.op];
  const value = applyMutations(c.input, c.muts);
  const d = draft(group, op, value, c, t.resolve);
  applyHeaderMutation(d, c.headers, group.format);
  return sign(d, c, op, t);
}

function draft(group: Group, op: Operation, value: Value, c: FuzzCase, resolve: Resolve): Draft {
  const d: Draft = { method: 'POST', path: '/', query: [], rawQuerySuffix: '', headers: {}, body: Buffer.alloc(0), httpInvalid: false };
  if (group.format === 'json' || group.format === 'cbor') {
    const cbor = group.format === 'cbor';
    d.headers['content-type'] = cbor ? CBOR_CT : JSON_CT;
    d.headers['x-amz-target'] = `${op.targetPrefix}.${op.name}`;
    d.body = mutateBody(cbor ? toCbor(value, resolve) : toJson(value, resolve), c.body, group.format, value, resolve);
    if (c.wire.k === 'target') d.headers['x-amz-target'] = targetVariant(op, c.wire.i);
  } else if (group.format === 'query') {
    d.headers['content-type'] = FORM_CT;
    const params: Array<[string, Buffer]> = [
      ['Action', Buffer.from(op.name)],
      ['Version', Buffer.from(op.apiVersion)],
      ...(value instanceof Obj ? flattenQuery(value, resolve) : [['Value', scalarBytes(value, resolve)] as [string, Buffer]]),
    ];
    let form = formEncode(params);
    if (c.wire.k === 'query') form = queryVariant(d, op, form, params, c.wire.i);
    d.body = mutateBody(Buffer.from(form), c.body, 'query', value, resolve);
  } else {
    restDraft(d, op, value, c, resolve);
  }
  if (c.wire.k === 'method') {
    d.method = METHODS[c.wire.i];
    if (!['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'].includes(d.method)) d.httpInvalid = true;
  }
  return d;
}

function targetVariant(op: Operation, i: number): string {
  const p = op.targetPrefix!;
  const other = p.startsWith('Kinesis') ? 'Firehose_20150804' : 'Kinesis_20131202';
  const variants = [
    `${p}.constructor`,
    `${p}.__proto__`,
    `${p}.toString`,
    `${p}.hasOwnProperty`,
    `${p}.valueOf`,
    `${p}.`,
    p,
    `${p}X`,
    `${p}.${op.name}.x`,
    `${p}.${op.name.toLowerCase()}`,
    `${other}.${op.name}`,
    `${p}.${op.name} `,
    `${p}..${op.name}`,
    `${p}.${op.name}\u00e9`,
    `${p.toLowerCase()}.${op.name}`,
    '',
    `${p}.__defineGetter__`,
    `.${op.name}`,
  ];
  return variants[i % variants.length];
}

function queryVariant(d: Draft, op: Operation, form: string, params: Array<[string, Buffer]>, i: number): string {
  const v = QUERY_VARIANTS[i];
  const without = (name: string) => formEncode(params.filter(([k]) => k !== name));
  switch (v) {
    case 'dupAction':
      return `${form}&Action=${op.name === 'GetUser' ? 'ListUsers' : 'GetUser'}`;
    case 'dropAction':
      return without('Action');
    case 'dropVersion':
      return without('Version');
    case 'wrongVersion':
      return form.replace(/Version=[^&]*/, `Version=${op.apiVersion === '2010-05-08' ? '2011-06-15' : '2010-05-08'}`);
    case 'actionInUrl':
      d.query.push(['Action', Buffer.from('GetCallerIdentity')], ['Version', Buffer.from('2011-06-15')]);
      return without('Action');
    case 'protoAction':
      return form.replace(/Action=[^&]*/, `Action=${PROTO_KEYS[form.length % PROTO_KEYS.length]}`);
    case 'lowercaseAction':
      return form.replace(/Action=[^&]*/, `Action=${op.name.toLowerCase()}`);
    case 'badPercent':
      return `${form}&%zz=%&x=%e0%80&y=%`;
    case 'plusSpaces':
      return form.replace(/%20/g, '+') + '&UserName=a+b+c';
    case 'manyParams':
      return form + Array.from({ length: 10_000 }, (_, n) => `&Tags.member.${n + 1}.Key=k${n}`).join('');
    case 'emptyKey':
      return `${form}&=x&=`;
    case 'bareKey':
      return `${form}&Action&Version`;
    case 'semicolons':
      return form.replace(/&/g, ';');
    case 'invalidUtf8Action':
      return form.replace(/Action=[^&]*/, 'Action=%FF%FE');
    case 'loneSurrogateValue':
      return `${form}&UserName=%ED%A0%80&RoleName=%ED%BF%BF`;
    case 'hugeKey':
      return `${form}&${'K'.repeat(100_000)}=1`;
    case 'ampersands':
      return `&&&${form}&&&`;
    case 'emptyAction':
      return form.replace(/Action=[^&]*/, 'Action=');
    case 'nulInValue':
      return `${form}&UserName=a%00b&PolicyName=%00`;
  }
}

function restDraft(d: Draft, op: Operation, value: Value, c: FuzzCase, resolve: Resolve): void {
  d.method = op.method;
  const shape = op.input ? op.shapes[op.input] : undefined;
  const members = shape?.members ?? {};
  const labels = new Map<string, Buffer>();
  const bodyEntries: Array<[string, Value]> = [];
  let payload: Value | undefined;
  const top = value instanceof Obj ? value.entries : [];
  for (const [k, v] of top) {
    const m = Object.hasOwn(members, k) ? members[k] : undefined;
    if (m?.location === 'uri') labels.set(m.locationName ?? k, scalarBytes(v, resolve, true));
    else if (m?.location === 'querystring') {
      const name = m.locationName ?? k;
      if (Array.isArray(v)) for (const x of v) d.query.push([name, scalarBytes(x, resolve, true)]);
      else if (v instanceof Obj && v.map) for (const [mk, mv] of v.entries) d.query.push([mk, scalarBytes(mv, resolve, true)]);
      else d.query.push([name, scalarBytes(v, resolve, true)]);
    } else if (m?.location === 'header') {
      d.headers[(m.locationName ?? k).toLowerCase()] = headerSafe(scalarBytes(v, resolve, true).toString('latin1'));
    } else if (shape?.payload === k) payload = v;
    else bodyEntries.push([k, v]);
  }
  const json =
    payload !== undefined
      ? toJson(payload, resolve)
      : bodyEntries.length > 0 || !(value instanceof Obj)
        ? toJson(value instanceof Obj ? new Obj(bodyEntries) : value, resolve)
        : d.method === 'POST' || d.method === 'PUT'
          ? Buffer.from('{}')
          : Buffer.alloc(0);
  if (json.length > 0) d.headers['content-type'] = 'application/json';
  d.body = mutateBody(json, c.body, 'rest', payload ?? value, resolve);

  const wire = c.wire;
  const labelNames = [...op.requestUri.matchAll(/\{([^}+]+)\+?\}/g)].map((m) => m[1]);
  const target = wire.k === 'path' && labelNames.length > 0 ? labelNames[wire.label % labelNames.length] : undefined;
  let path = op.requestUri.replace(/\{([^}+]+)(\+?)\}/g, (_, name: string, greedy: string) => {
    const raw = labels.get(name) ?? Buffer.alloc(0);
    const encoded = greedy ? percentEncode(raw).replace(/%2F/g, '/') : percentEncode(raw);
    return name === target && wire.k === 'path' ? labelVariant(d, PATH_VARIANTS[wire.i], raw, encoded) : encoded;
  });
  if (wire.k === 'path') path = pathVariant(d, PATH_VARIANTS[wire.i], path);
  d.path = path;
  if (wire.k === 'restQuery') restQueryVariant(d, REST_QUERY_VARIANTS[wire.i]);
}

function labelVariant(d: Draft, v: (typeof PATH_VARIANTS)[number], raw: Buffer, encoded: string): string {
  switch (v) {
    case 'rawLabel':
      d.httpInvalid = true;
      // Bytes as they are (only what Node lets onto a request line: no space, no control bytes).
      return [...raw].map((b) => (b > 0x20 && b !== 0x7f && b !== 0x3f && b !== 0x23 ? String.fromCharCode(b) : '_')).join('') || '_';
    case 'doubleEncode':
      return percentEncode(Buffer.from(encoded));
    case 'pct00':
      return `${encoded}%00`;
    case 'pct2F':
      return `${encoded}%2F..%2F..%2Fx`;
    case 'pctZZ':
      return `${encoded}%zz%`;
    case 'pctFF':
      return `${encoded}%FF%FE`;
    case 'pctSurrogate':
      return `${encoded}%ED%A0%80`;
    case 'longLabel':
      return 'L'.repeat(8_192);
    case 'protoLabel':
      return PROTO_KEYS[raw.length % PROTO_KEYS.length];
    case 'emptyLabel':
      return '';
    case 'encodedDots':
      return '%2e%2e';
    case 'unicodeLabel':
      return percentEncode(Buffer.from('ⓟⓘⓝ😀\ufeff', 'utf8'));
    case 'plusLabel':
      return `${encoded}+x+`;
    default:
      return encoded;
  }
}

function pathVariant(d: Draft, v: (typeof PATH_VARIANTS)[number], path: string): string {
  const i = path.lastIndexOf('/');
  switch (v) {
    case 'dotSegment':
      return `${path.slice(0, i)}/.${path.slice(i)}`;
    case 'dotDot':
      return `${path.slice(0, i)}/x/..${path.slice(i)}`;
    case 'doubleSlash':
      return path.replace('/v1/', '/v1//');
    case 'trailingSlash':
      return `${path}/`;
    case 'upperPrefix':
      return path.replace('/v1/', '/V1/');
    case 'backslash':
      d.httpInvalid = true;
      return path.replace(/\//g, (s, at: number) => (at > 3 ? '\\' : s));
    case 'matrixParam':
      return `${path};x=1`;
    default:
      return path;
  }
}

function restQueryVariant(d: Draft, v: (typeof REST_QUERY_VARIANTS)[number]): void {
  switch (v) {
    case 'repeat':
      d.query = d.query.flatMap(([k, x]) => [[k, x], [k, Buffer.from('other')]] as Array<[string, Buffer]>);
      if (d.query.length === 0) d.query.push(['page-size', Buffer.from('1')], ['page-size', Buffer.from('2')]);
      break;
    case 'protoParam':
      d.query.push(['__proto__', Buffer.from('1')], ['constructor', Buffer.from('x')], ['tagKeys', Buffer.from('__proto__')]);
      break;
    case 'oddRaw':
      d.rawQuerySuffix = '&&=&a==b&%zz&%&x=%E0%80';
      break;
    case 'manyTagKeys':
      for (let n = 0; n < 1000; n++) d.query.push(['tagKeys', Buffer.from(`k${n}`)]);
      break;
    case 'pageSizeOdd':
      d.query.push(['page-size', Buffer.from(['-1', '0', '1e3', '1.5', '9999999999999999999', 'NaN', ' 5', '0x10'][d.body.length % 8])]);
      d.query.push(['token', Buffer.from(['', '__proto__', 'AAAA', '%', '😀'][d.body.length % 5])]);
      break;
    case 'hugeValue':
      d.query.push(['start-time', Buffer.from('9'.repeat(20_000))]);
      break;
    case 'fragment':
      d.rawQuerySuffix = '#frag';
      break;
  }
}

function mutateBody(body: Buffer, m: BodyMutation, format: Format, value: Value, resolve: Resolve): Buffer {
  switch (m.k) {
    case 'none':
      return body;
    case 'truncate':
      return body.subarray(0, Math.floor(body.length * m.frac));
    case 'garbage':
      return Buffer.concat([body, Buffer.from(GARBAGE[m.i], 'latin1')]);
    case 'bom':
      return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]);
    case 'empty':
      return Buffer.alloc(0);
    case 'literal':
      return Buffer.from(LITERALS[m.i], 'utf8');
    case 'splice': {
      const at = Math.floor(body.length * m.frac);
      return Buffer.concat([body.subarray(0, at), Buffer.from(BAD_UTF8[m.i]), body.subarray(at)]);
    }
    case 'otherFormat':
      return format === 'cbor' ? toJson(value, resolve) : toCbor(value, resolve);
    case 'cbor':
      return cborOddity(body, CBOR_ODDITIES[m.i]);
  }
}

function cborOddity(body: Buffer, v: (typeof CBOR_ODDITIES)[number]): Buffer {
  const tag = (n: number, inner: Buffer) => Buffer.concat([cborHead(6, n), inner]);
  switch (v) {
    case 'tag55799':
      return tag(55799, body);
    case 'tag1':
      return tag(1, body);
    case 'tag0':
      return tag(0, body);
    case 'tag2':
      return tag(2, body);
    case 'tag999999':
      return tag(999_999, body);
    case 'tag1OnString':
      return replaceFirstText(body, (text) => tag(1, text));
    case 'indefiniteMap': {
      if (body.length === 0 || body[0] >> 5 !== 5) return Buffer.concat([Buffer.from([0xbf]), body, Buffer.from([0xff])]);
      return Buffer.concat([Buffer.from([0xbf]), body.subarray(headLength(body[0])), Buffer.from([0xff])]);
    }
    case 'hugeLength':
      return Buffer.concat([Buffer.from([0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), body.subarray(body.length > 0 ? headLength(body[0]) : 0)]);
    case 'break':
      return Buffer.concat([body, Buffer.from([0xff])]);
    case 'undefined':
      return Buffer.from([0xf7]);
    case 'intKeys':
      return Buffer.from([0xa2, 0x01, 0x61, 0x78, 0x20, 0xf6]);
    case 'halfNaN':
      return replaceFirstNumber(body, Buffer.from([0xf9, 0x7e, 0x00]));
    case 'simple99':
      return replaceFirstNumber(body, Buffer.from([0xf8, 99]));
    case 'twoItems':
      return Buffer.concat([body, body]);
    case 'byteStringKeys':
      return Buffer.from([0xa1, 0x4a, ...Buffer.from('StreamName'), 0x61, 0x78]);
    case 'nestedTags':
      return Buffer.concat([Buffer.concat(Array(5_000).fill(Buffer.from([0xc1]))), body]);
  }
}

function headLength(initial: number): number {
  const info = initial & 0x1f;
  return info < 24 ? 1 : info === 24 ? 2 : info === 25 ? 3 : info === 26 ? 5 : info === 27 ? 9 : 1;
}

/** Wraps the first text string after the root map head (a key) in `f`. */
function replaceFirstText(body: Buffer, f: (text: Buffer) => Buffer): Buffer {
  if (body.length < 2 || body[0] >> 5 !== 5) return body;
  const at = headLength(body[0]);
  if (body[at] >> 5 !== 3) return body;
  const len = body[at] & 0x1f;
  if (len >= 24) return body;
  return Buffer.concat([body.subarray(0, at), f(body.subarray(at, at + 1 + len)), body.subarray(at + 1 + len)]);
}

/** Replaces the first small unsigned integer byte after the root head; else appends nothing. */
function replaceFirstNumber(body: Buffer, with_: Buffer): Buffer {
  for (let i = 1; i < body.length; i++) {
    if (body[i] >> 5 === 0 && (body[i] & 0x1f) < 24 && body[i - 1] >> 5 === 3) return Buffer.concat([body.subarray(0, i), with_, body.subarray(i + 1)]);
  }
  return body;
}

function applyHeaderMutation(d: Draft, m: HeaderMutation, format: Format): void {
  switch (m.k) {
    case 'none':
      return;
    case 'contentType': {
      const ct = CONTENT_TYPES[m.i];
      if (ct === '') delete d.headers['content-type'];
      else d.headers['content-type'] = ct;
      return;
    }
    case 'duplicate': {
      const name = format === 'json' || format === 'cbor' ? 'x-amz-target' : 'content-type';
      const cur = d.headers[name];
      d.headers[name] = [typeof cur === 'string' ? cur : 'x', name === 'x-amz-target' ? 'Kinesis_20131202.constructor' : 'text/plain'];
      return;
    }
    case 'contentEncoding':
      d.headers['content-encoding'] = ENCODINGS[m.i];
      return;
    case 'chunked':
      d.headers['transfer-encoding'] = 'chunked';
      return;
    case 'big':
      d.headers['x-fuzz-big'] = 'b'.repeat(m.size);
      // Node's parser refuses more than 16 KiB of headers before any protocol sees them.
      if (m.size > 16_000) d.httpInvalid = true;
      return;
    case 'many':
      for (let i = 0; i < m.n; i++) d.headers[`x-fuzz-${i}`] = String(i);
      return;
    case 'sha256':
      d.headers['x-amz-content-sha256'] = SHA256_HEADERS[m.i];
      return;
    case 'expect':
      d.headers.expect = '100-continue';
      return;
    case 'accept':
      d.headers.accept = ACCEPTS[m.i];
      return;
  }
}

/** Header values Node will put on the wire: latin1 without control characters. */
function headerSafe(s: string): string {
  return s.replace(/[^\t\x20-\x7e\x80-\xff]/g, '?').slice(0, 8_000);
}

const GARBAGE_AUTH = [
  'AWS4-HMAC-SHA256',
  'AWS4-HMAC-SHA256 ',
  'AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=',
  'AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=zz',
  'AWS4-HMAC-SHA256 Credential=PSAKX/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=' + '0'.repeat(64),
  'AWS4-HMAC-SHA256 Credential=__proto__/20260101/us-east-1/mobiletargeting/aws4_request, SignedHeaders=host, Signature=' + 'a'.repeat(64),
  'AWS4-HMAC-SHA256 Credential=constructor/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=' + 'a'.repeat(64),
  'Bearer abc',
  'Basic YWRtaW46YWRtaW4=',
  'AWS AKIA:sig',
  ',,,,',
  'AWS4-HMAC-SHA256 Credential=x' + '/'.repeat(5000),
];

async function sign(d: Draft, c: FuzzCase, op: Operation, t: Target): Promise<WireRequest> {
  const url = new URL(t.url);
  const host = url.host;
  const service = signingName(op);
  const encodedQuery = () => d.query.map(([k, v]) => `${percentEncode(Buffer.from(k, 'utf8'))}=${percentEncode(v)}`);
  const finish = (headers: Record<string, string | string[]>, queryParts: string[]): WireRequest => {
    const qs = [...queryParts].join('&') + d.rawQuerySuffix;
    const out: Record<string, string | string[]> = { ...headers };
    delete out.host;
    if (out['transfer-encoding'] === undefined) out['content-length'] = String(d.body.length);
    const target = d.path + (qs ? `?${qs.replace(/^&/, '')}` : '');
    // Past Node's 16 KiB of request line and headers (or HTTP/2's 128 header fields) the HTTP layer
    // refuses the request (431, or a reset stream) before any protocol sees it.
    const headerBytes = Object.entries(out).reduce((a, [k, v]) => a + k.length + String(v).length + 4, target.length);
    const invalid = d.httpInvalid || headerBytes > 16_000 || (c.h2 && Object.keys(out).length > 120);
    return { method: d.method, target, headers: out, body: d.body, h2: c.h2, httpInvalid: invalid };
  };
  const headersForSigning: Record<string, string> = { host };
  for (const [k, v] of Object.entries(d.headers)) {
    // What the server will see: Node keeps the first Content-Type and joins other repeats with ", ".
    headersForSigning[k] = Array.isArray(v) ? (k === 'content-type' ? v[0] : v.join(', ')) : v;
  }
  const request = {
    method: d.method,
    protocol: 'http:',
    hostname: url.hostname,
    port: Number(url.port),
    path: d.path,
    query: queryObject(d.query),
    headers: headersForSigning,
    body: d.body,
  };
  const signer = (creds: Credentials & { sessionToken?: string }, svc = service) =>
    new SignatureV4({ service: svc, region: 'us-east-1', credentials: creds, sha256: Sha256, uriEscapePath: true });
  const signed = async (creds: Credentials & { sessionToken?: string }, opts: { svc?: string; date?: Date } = {}) => {
    const s = await signer(creds, opts.svc).sign(request, { signingDate: opts.date });
    const h = { ...(s.headers as Record<string, string>) };
    // Repeated headers go out repeated; the signature covered their joined value.
    for (const [k, v] of Object.entries(d.headers)) if (Array.isArray(v)) h[k] = v as unknown as string;
    return finish(h, encodedQuery());
  };
  // The SDK signer copies its query object once per key (quadratic): 10,000 parameters take a
  // minute to sign. Such a URL is far past the 16 KiB Node accepts anyway, so it goes unsigned.
  const mode = d.query.length > 1_000 ? 'unsigned' : c.sign;
  switch (mode) {
    case 'admin':
      return signed(t.admin);
    case 'restricted':
      return signed(t.restricted);
    case 'presigned': {
      const p = await signer(t.admin).presign(request, { expiresIn: 300, unhoistableHeaders: new Set(['x-amz-target', 'x-amz-content-sha256']) });
      const q: string[] = [];
      for (const [k, v] of Object.entries(p.query ?? {})) {
        for (const x of [v ?? ''].flat()) q.push(`${percentEncode(Buffer.from(k, 'utf8'))}=${percentEncode(Buffer.from(String(x), 'utf8'))}`);
      }
      const h = { ...(p.headers as Record<string, string>) };
      for (const [k, v] of Object.entries(d.headers)) if (Array.isArray(v)) h[k] = v as unknown as string;
      return finish(h, q);
    }
    case 'unsigned':
      return finish({ ...d.headers, host }, encodedQuery());
    case 'badSignature':
      return signed({ accessKeyId: t.admin.accessKeyId, secretAccessKey: 'not-the-secret-0123456789abcdef' });
    case 'unknownKey':
      return signed({ accessKeyId: 'PSAKFUZZUNKNOWN00000', secretAccessKey: 'made-up-secret-0123456789' });
    case 'garbageAuth':
      return finish({ ...d.headers, host, authorization: GARBAGE_AUTH[d.body.length % GARBAGE_AUTH.length], 'x-amz-date': ['20260101T000000Z', 'yesterday', ''][d.body.length % 3] }, encodedQuery());
    case 'expired':
      return signed(t.admin, { date: new Date(Date.now() - 20 * 60_000) });
    case 'future':
      return signed(t.admin, { date: new Date(Date.now() + 20 * 60_000) });
    case 'wrongService':
      return signed(t.admin, { svc: service === 'kinesis' ? 'firehose' : 'kinesis' });
    case 'madeUpToken':
      return signed({ ...t.admin, sessionToken: 'FwoGZXIvYXdzEJr//////////wEaDMadeUpToken0000' });
  }
}

function signingName(op: Operation): string {
  switch (op.service) {
    case 'pinpoint':
      return 'mobiletargeting';
    case 'sts':
      return 'sts';
    default:
      return op.service;
  }
}

function queryObject(pairs: Array<[string, Buffer]>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  for (const [k, v] of pairs) {
    const s = v.toString('utf8');
    const cur = out[k];
    if (cur === undefined) out[k] = s;
    else if (Array.isArray(cur)) cur.push(s);
    else out[k] = [cur, s];
  }
  return out;
}

// ---- Transport -----------------------------------------------------------------------------

export interface WireResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The body was cut short on purpose (an event stream, or past the read cap). */
  partial: boolean;
}

export type Outcome = { ok: true; res: WireResponse } | { ok: false; error: string };

/** Largest response body kept; enough for any answer the fuzzer provokes. */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
export const REQUEST_TIMEOUT_MS = 30_000;
const EVENT_STREAM = 'application/vnd.amazon.eventstream';

export class Transport {
  private agent: http.Agent;
  private session?: http2.ClientHttp2Session;
  /** `sockets` > 1 lets concurrent sends go out at once (bursts); HTTP/2 then shares no session. */
  constructor(
    private url: string,
    sockets = 1,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: sockets });
  }

  send(r: WireRequest): Promise<Outcome> {
    return r.h2 ? this.sendH2(r) : this.sendH1(r);
  }

  private sendH1(r: WireRequest): Promise<Outcome> {
    const u = new URL(this.url);
    return new Promise((resolve) => {
      let done = false;
      const finish = (o: Outcome) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(o);
      };
      let req: http.ClientRequest;
      try {
        req = http.request({ host: u.hostname, port: u.port, method: r.method, path: r.target, headers: r.headers, agent: this.agent, setHost: true });
      } catch (e) {
        // Node refused to send it (a request line or header it considers invalid): nothing reached the server.
        return resolve({ ok: false, error: `client refused: ${(e as Error).message}` });
      }
      const timer = setTimeout(() => {
        req.destroy(new Error('timeout'));
        finish({ ok: false, error: `no answer within ${REQUEST_TIMEOUT_MS} ms` });
      }, REQUEST_TIMEOUT_MS);
      req.on('response', (res) => {
        collect(res, res.statusCode ?? 0, res.headers, () => req.destroy()).then((x) => finish({ ok: true, res: x }));
      });
      req.on('error', (e) => finish({ ok: false, error: (e as NodeJS.ErrnoException).code ?? e.message }));
      req.end(r.body);
    });
  }

  private sendH2(r: WireRequest): Promise<Outcome> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (o: Outcome) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(o);
      };
      const timer = setTimeout(() => finish({ ok: false, error: `no answer within ${REQUEST_TIMEOUT_MS} ms (h2)` }), REQUEST_TIMEOUT_MS);
      try {
        // A session of its own per request: a request the server refuses at the HTTP/2 layer
        // (GOAWAY) must not take the next one down with it.
        const session = http2.connect(this.url);
        session.on('error', () => {});
        this.session = session;
        const headers: http2.OutgoingHttpHeaders = { ':method': r.method, ':path': r.target };
        for (const [k, v] of Object.entries(r.headers)) {
          if (['connection', 'transfer-encoding', 'host', 'keep-alive', 'expect'].includes(k)) continue;
          headers[k] = v;
        }
        const stream = session.request(headers, { endStream: false });
        stream.on('close', () => session.destroy());
        stream.on('response', (h) => {
          const status = Number(h[':status']);
          collect(stream, status, h as Record<string, string>, () => stream.close(http2.constants.NGHTTP2_CANCEL)).then((x) => finish({ ok: true, res: x }));
        });
        stream.on('error', (e) => finish({ ok: false, error: `h2: ${(e as NodeJS.ErrnoException).code ?? e.message}` }));
        stream.end(r.body);
      } catch (e) {
        finish({ ok: false, error: `client refused: ${(e as Error).message}` });
      }
    });
  }

  close(): void {
    this.agent.destroy();
    this.session?.destroy();
  }
}

function collect(
  res: NodeJS.ReadableStream,
  status: number,
  headers: Record<string, string | string[] | undefined>,
  abort: () => void,
): Promise<WireResponse> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const streaming = String(headers['content-type'] ?? '').startsWith(EVENT_STREAM);
    let ended = false;
    const end = (partial: boolean) => {
      if (ended) return;
      ended = true;
      resolve({ status, headers, body: Buffer.concat(chunks), partial });
    };
    res.on('data', (c: Buffer) => {
      chunks.push(c);
      size += c.length;
      if (streaming || size > MAX_RESPONSE_BYTES) {
        end(true);
        abort();
      }
    });
    res.on('end', () => end(false));
    res.on('error', () => end(true));
    res.on('close', () => end(true));
    // An event stream that sends nothing at first is still a good answer: stop after a moment.
    if (streaming) setTimeout(() => (end(true), abort()), 1_000).unref();
  });
}

/** The request as readable text for reports: request line, headers, and the body's first bytes. */
export function dumpRequest(r: WireRequest, maxBody = 600): string {
  const head = [`${r.method} ${r.target.length > 300 ? `${r.target.slice(0, 300)}…(${r.target.length} chars)` : r.target} ${r.h2 ? 'HTTP/2' : 'HTTP/1.1'}`];
  const entries = Object.entries(r.headers);
  for (const [k, v] of entries.filter(([k]) => !/^x-fuzz-\d+$/.test(k))) {
    for (const x of [v].flat()) head.push(`${k}: ${x.length > 120 ? `${x.slice(0, 120)}…(${x.length} chars)` : x}`);
  }
  const filler = entries.length - entries.filter(([k]) => !/^x-fuzz-\d+$/.test(k)).length;
  if (filler > 0) head.push(`x-fuzz-0 … x-fuzz-${filler - 1}: (${filler} headers "x-fuzz-N: N")`);
  const body = r.body.subarray(0, maxBody);
  const printable = /^[\t\n\r\x20-\x7e]*$/.test(body.toString('latin1'));
  const text = printable ? body.toString('latin1') : `hex:${body.toString('hex')}`;
  return `${head.join('\n')}\n\n${text}${r.body.length > maxBody ? `…(${r.body.length} bytes)` : ''}`;
}
