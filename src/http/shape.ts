// Small checks for JSON input shapes. Each failure is a BadRequestException naming the field path,
// so a client sees exactly which member was wrong.

import { badRequest } from './errors.js';

export type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function optObject(v: unknown, field: string): Json | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw badRequest(`${field} must be an object`);
  return v;
}

export function optString(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw badRequest(`${field} must be a string`);
  return v;
}

export function reqString(v: unknown, field: string): string {
  const s = optString(v, field);
  if (s === undefined || s === '') throw badRequest(`${field} is required`);
  return s;
}

export function optNumber(v: unknown, field: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badRequest(`${field} must be a number`);
  return v;
}

export function optEnum<T extends string>(v: unknown, field: string, values: readonly T[]): T | undefined {
  const s = optString(v, field);
  if (s !== undefined && !values.includes(s as T)) throw badRequest(`${field} must be one of ${values.join(', ')}; got "${s}"`);
  return s as T | undefined;
}

/** ISO-8601 date-time (what the SDKs send in Timestamp fields); returns epoch ms. */
export function parseIsoTimestamp(s: string): number | undefined {
  if (!ISO_8601.test(s)) return undefined;
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? undefined : ms;
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * A client-sent value as AWS's validation messages show it (Java's toString: `[a, b]`, `{k=v}`,
 * a blob as its buffer), cut at `max` characters. It never throws and recurses no deeper than the
 * text it writes, so a list nested 100,000 deep, an object with its own `toString`, or a CBOR
 * integer past 2^53 (a BigInt) is just text in the message.
 */
export function shownValue(v: unknown, max = 100): string {
  let out = '';
  const write = (x: unknown): boolean => {
    if (x === null || x === undefined) out += 'null';
    else if (typeof x === 'string') out += x.length > max ? x.slice(0, max) : x;
    else if (typeof x === 'number' || typeof x === 'boolean' || typeof x === 'bigint') out += String(x);
    else if (x instanceof Uint8Array) out += `java.nio.HeapByteBuffer[pos=0 lim=${x.length} cap=${x.length}]`;
    else if (x instanceof Date) out += String(x.getTime());
    else if (Array.isArray(x)) {
      out += '[';
      for (let i = 0; i < x.length; i++) {
        if (i > 0) out += ', ';
        if (out.length >= max || !write(x[i])) return false;
      }
      out += ']';
    } else if (typeof x === 'object') {
      out += '{';
      let first = true;
      for (const k in x) {
        if (!Object.hasOwn(x, k)) continue;
        out += `${first ? '' : ', '}${k}=`;
        first = false;
        if (out.length >= max || !write((x as Record<string, unknown>)[k])) return false;
      }
      out += '}';
    } else out += typeof x;
    return out.length < max;
  };
  write(v);
  return out.length > max ? out.slice(0, max) : out;
}
