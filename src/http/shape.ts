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

/** Moved to src/models/shown.ts (the model validator uses it without the HTTP layer). */
export { shownValue } from '../models/shown.js';
