// Writes fuzz values as JSON text, CBOR and form-encoded Query parameters, byte for byte, including
// what the standard encoders refuse to write: raw invalid UTF-8 inside strings, numbers such as
// 1e400 or -0, duplicate and prototype-ish keys, nesting far past any recursion limit. CBOR is
// written by hand for that reason (cborg checks its input); the suite decodes answers with cborg.

import { BadText, Blob, Deep, Huge, JsonText, Obj, RawNumber, Ref, Timestamp, type Value } from './values.js';

export type Resolve = (r: Ref) => string;

/** Longest text a label, header or Query key made from a Deep/Huge marker gets. */
const MAX_INLINE = 20_000;

/** A Huge marker's text: about `size` bytes as written (UTF-8, or escaped JSON when `unitBytes` says so). */
export function hugeText(h: Huge, unitBytes = Buffer.byteLength(h.unit, 'utf8')): string {
  return h.unit.repeat(Math.ceil(h.size / unitBytes));
}

// ---- JSON ---------------------------------------------------------------------------------

export function toJson(v: Value, resolve: Resolve): Buffer {
  const out: Array<string | Buffer> = [];
  const write = (x: Value): void => {
    if (x === null || typeof x === 'boolean' || typeof x === 'number') out.push(JSON.stringify(x) ?? 'null');
    else if (typeof x === 'string') out.push(JSON.stringify(x));
    else if (Array.isArray(x)) {
      out.push('[');
      x.forEach((y, i) => {
        if (i > 0) out.push(',');
        write(y);
      });
      out.push(']');
    } else if (x instanceof Obj) {
      out.push('{');
      x.entries.forEach(([k, y], i) => {
        if (i > 0) out.push(',');
        out.push(JSON.stringify(k), ':');
        write(y);
      });
      out.push('}');
    } else if (x instanceof Blob) out.push(JSON.stringify(Buffer.from(x.bytes).toString('base64')));
    else if (x instanceof Timestamp) out.push(String(x.ms / 1000));
    else if (x instanceof Ref) out.push(JSON.stringify(resolve(x)));
    else if (x instanceof RawNumber) out.push(x.text);
    else if (x instanceof Deep) {
      const [open, close] = x.kind === 'array' ? ['[', ']'] : ['{"a":', '}'];
      out.push(open.repeat(x.depth), '0', close.repeat(x.depth));
    } else if (x instanceof Huge) out.push(JSON.stringify(hugeText(x, Buffer.byteLength(JSON.stringify(x.unit)) - 2)));
    else if (x instanceof BadText) out.push(JSON.stringify(x.prefix).slice(0, -1), Buffer.from(x.bytes), '"');
    else if (x instanceof JsonText) out.push(JSON.stringify(toJson(x.value, resolve).toString('utf8')));
  };
  write(v);
  return Buffer.concat(out.map((c) => (typeof c === 'string' ? Buffer.from(c, 'utf8') : c)));
}

// ---- CBOR (RFC 8949) ------------------------------------------------------------------------

export function cborHead(major: number, n: number | bigint): Buffer {
  const m = major << 5;
  const big = BigInt(n);
  if (big < 24n) return Buffer.from([m | Number(big)]);
  if (big < 0x100n) return Buffer.from([m | 24, Number(big)]);
  if (big < 0x10000n) {
    const b = Buffer.alloc(3);
    b[0] = m | 25;
    b.writeUInt16BE(Number(big), 1);
    return b;
  }
  if (big < 0x100000000n) {
    const b = Buffer.alloc(5);
    b[0] = m | 26;
    b.writeUInt32BE(Number(big), 1);
    return b;
  }
  const b = Buffer.alloc(9);
  b[0] = m | 27;
  b.writeBigUInt64BE(big, 1);
  return b;
}

function cborNumber(n: number): Buffer {
  if (Number.isSafeInteger(n) && !Object.is(n, -0)) return n >= 0 ? cborHead(0, n) : cborHead(1, -1 - n);
  const b = Buffer.alloc(9);
  b[0] = 0xfb;
  b.writeDoubleBE(n, 1);
  return b;
}

function cborText(s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8');
  return Buffer.concat([cborHead(3, bytes.length), bytes]);
}

export function toCbor(v: Value, resolve: Resolve): Buffer {
  const out: Buffer[] = [];
  const write = (x: Value): void => {
    if (x === null) out.push(Buffer.from([0xf6]));
    else if (typeof x === 'boolean') out.push(Buffer.from([x ? 0xf5 : 0xf4]));
    else if (typeof x === 'number') out.push(cborNumber(x));
    else if (typeof x === 'string') out.push(cborText(x));
    else if (Array.isArray(x)) {
      out.push(cborHead(4, x.length));
      x.forEach(write);
    } else if (x instanceof Obj) {
      out.push(cborHead(5, x.entries.length));
      for (const [k, y] of x.entries) {
        out.push(cborText(k));
        write(y);
      }
    } else if (x instanceof Blob) out.push(cborHead(2, x.bytes.length), Buffer.from(x.bytes));
    else if (x instanceof Timestamp) out.push(cborHead(6, 1), cborNumber(x.ms / 1000));
    else if (x instanceof Ref) out.push(cborText(resolve(x)));
    else if (x instanceof RawNumber) {
      const n = /^-?\d+$/.test(x.text) ? BigInt(x.text) : undefined;
      if (n !== undefined && n >= 0n && n < 1n << 64n) out.push(cborHead(0, n)); // past 2^53: decoders hand out a BigInt
      else if (n !== undefined && n < 0n && n >= -(1n << 64n)) out.push(cborHead(1, -1n - n));
      else if (n !== undefined) {
        // Past 64 bits: a bignum (tag 2 positive, tag 3 negative), as CBOR writes them.
        const hex = (n < 0n ? -1n - n : n).toString(16);
        const bytes = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
        out.push(cborHead(6, n < 0n ? 3 : 2), cborHead(2, bytes.length), bytes);
      } else out.push(cborNumber(Number(x.text)));
    } else if (x instanceof Deep) {
      const level = x.kind === 'array' ? Buffer.from([0x81]) : Buffer.from([0xa1, 0x61, 0x61]);
      out.push(Buffer.concat(Array(x.depth).fill(level)), Buffer.from([0x00]));
    } else if (x instanceof Huge) out.push(cborText(hugeText(x)));
    else if (x instanceof BadText) {
      const bytes = Buffer.concat([Buffer.from(x.prefix, 'utf8'), Buffer.from(x.bytes)]);
      out.push(cborHead(3, bytes.length), bytes);
    } else if (x instanceof JsonText) {
      const bytes = toJson(x.value, resolve);
      out.push(cborHead(3, bytes.length), bytes);
    }
  };
  write(v);
  return Buffer.concat(out);
}

// ---- Form encoding (Query protocol, REST query strings and labels) --------------------------

/** Each byte's RFC 3986 encoding: itself when unreserved, %XX otherwise. */
const PERCENT = Array.from({ length: 256 }, (_, b) => {
  const c = String.fromCharCode(b);
  return /[A-Za-z0-9\-_.~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
});

/** RFC 3986 percent-encoding of bytes, as SigV4 canonicalises them (so signatures match). */
export function percentEncode(bytes: Buffer): string {
  const parts = new Array<string>(bytes.length);
  for (let i = 0; i < bytes.length; i++) parts[i] = PERCENT[bytes[i]];
  return parts.join('');
}

/**
 * A scalar's text for a form value, URI label, query parameter or header; bytes because BadText is
 * not a string. In a URL or header (`inUrl`) Huge and Deep stop at 20 KB: past Node's 16 KiB of
 * request head nothing but the HTTP parser sees them, and a 16 MB URL only slows the signer.
 */
export function scalarBytes(x: Value, resolve: Resolve, inUrl = false): Buffer {
  if (inUrl && x instanceof Huge) return Buffer.from(hugeText(new Huge(Math.min(x.size, MAX_INLINE), x.unit)), 'utf8');
  if (x === null) return Buffer.alloc(0);
  if (typeof x === 'string') return Buffer.from(x, 'utf8');
  if (typeof x === 'number' || typeof x === 'boolean') return Buffer.from(String(x));
  if (x instanceof Ref) return Buffer.from(resolve(x));
  if (x instanceof RawNumber) return Buffer.from(x.text);
  if (x instanceof Timestamp) return Buffer.from(Number.isNaN(new Date(x.ms).getTime()) ? String(x.ms) : new Date(x.ms).toISOString());
  if (x instanceof JsonText) return toJson(x.value, resolve);
  if (x instanceof Blob) return Buffer.from(Buffer.from(x.bytes).toString('base64'));
  if (x instanceof Huge) return Buffer.from(hugeText(x), 'utf8');
  if (x instanceof BadText) return Buffer.concat([Buffer.from(x.prefix, 'utf8'), Buffer.from(x.bytes)]);
  // Structures where a scalar belongs: their JSON text, capped.
  return toJson(x, resolve).subarray(0, MAX_INLINE);
}

/**
 * Query-protocol parameters as botocore's serializer names them: structures `A.B`, lists
 * `A.member.N`, maps `A.entry.N.key` / `A.entry.N.value`. Wrong-typed values are written the
 * same way wherever they are, so a list where a string belongs becomes `Name.member.1=…`.
 */
export function flattenQuery(v: Value, resolve: Resolve, prefix = ''): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  const name = (k: string) => (prefix ? `${prefix}.${k}` : k);
  if (v instanceof Obj) {
    if (v.map) {
      v.entries.forEach(([k, x], i) => {
        out.push([name(`entry.${i + 1}.key`), Buffer.from(k, 'utf8')]);
        for (const p of flattenQuery(x, resolve, name(`entry.${i + 1}.value`))) out.push(p);
      });
    } else for (const [k, x] of v.entries) for (const p of flattenQuery(x, resolve, name(k))) out.push(p);
  } else if (Array.isArray(v)) {
    if (v.length === 0) out.push([prefix, Buffer.alloc(0)]);
    v.forEach((x, i) => {
      for (const p of flattenQuery(x, resolve, name(`member.${i + 1}`))) out.push(p);
    });
  } else if (v instanceof Deep) {
    out.push([`${prefix}${'.member.1'.repeat(Math.min(v.depth, MAX_INLINE / 9))}`, Buffer.from('0')]);
  } else {
    out.push([prefix || 'Value', scalarBytes(v, resolve)]);
  }
  return out;
}

export function formEncode(params: Array<[string, Buffer]>): string {
  return params.map(([k, v]) => `${percentEncode(Buffer.from(k, 'utf8'))}=${percentEncode(v)}`).join('&');
}
