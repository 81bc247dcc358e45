// Schema-driven record conversion (DataFormatConversionConfiguration with a Data Catalog table):
// owns the mapping of a table's Hive column types to the Parquet file's types, and turning one JSON
// record into one row of exactly those columns, as Firehose's deserializers (OpenX JSON SerDe,
// Hive JSON SerDe) do. The row is written as a canonical NDJSON line that DuckDB reads with the
// declared types (parquet.ts), so every value check happens here, per record: a record whose value
// cannot become its column's type fails alone (format-conversion-failed), the others are written.
//
// Firehose's rules, as its developer guide gives them: fields not in the schema are dropped,
// missing ones are null; a number (or boolean) where the column is a string becomes its text;
// several JSON documents in one record (`{"a":1}{"a":2}`) are several rows. Where AWS is silent:
// an object or array in a string column becomes its JSON text; a string holding a number converts
// to a numeric column; a number with a fraction does not convert to an integer column; binary
// takes base64 text; dates take `yyyy-MM-dd`.
//
// Timestamps. OpenX: `yyyy-MM-dd'T'HH:mm:ss[.S…]Z` (or ±hh:mm), `yyyy-[M]M-[d]d HH:mm:ss[.S…]`,
// epoch seconds, epoch milliseconds (a whole number of at least EPOCH_MILLIS_THRESHOLD) and
// fractional epoch seconds. Hive JSON SerDe: its TimestampFormats in order (`millis`, or Joda
// patterns built from yyyy MM M dd d HH H mm ss S… Z ZZ and quoted literals), else
// java.sql.Timestamp.valueOf's `yyyy-[m]m-[d]d hh:mm:ss[.f…]`. Times without a zone are UTC.
//
// Numbers are read by this module's own JSON reader, which keeps each number's text: a bigint
// beyond 2^53 keeps every digit (JSON.parse would round it).

import type { HiveType } from '../catalog/hive-types.js';
import type { CatalogColumn } from '../catalog/catalog.js';
import { MAX_RECORD_NESTING_DEPTH } from '../nesting.js';

/** lastErrorCode of a record that is not JSON, or whose values do not fit the table's types. */
export const MALFORMED_DATA = 'DataFormatConversion.MalformedData';
/** A whole number timestamp at least this large is epoch milliseconds, smaller is epoch seconds (OpenX). */
export const EPOCH_MILLIS_THRESHOLD = 100_000_000_000;
/** Most JSON documents one record may hold (`{"a":1}{"a":2}`): each becomes a row. */
export const MAX_DOCUMENTS_PER_RECORD = 10_000;
/** Most TimestampFormats honoured; longer lists are refused when the stream is saved. */
export const MAX_TIMESTAMP_FORMATS = 32;

export class SchemaError extends Error {
  override name = 'SchemaError';
}

// --- types ---------------------------------------------------------------------------------------

const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

/** The DuckDB type a Hive type is written as (and so the Parquet type). */
export function duckType(t: HiveType): string {
  switch (t.kind) {
    case 'primitive':
      return {
        string: 'VARCHAR',
        bigint: 'BIGINT',
        int: 'INTEGER',
        smallint: 'SMALLINT',
        tinyint: 'TINYINT',
        double: 'DOUBLE',
        float: 'FLOAT',
        boolean: 'BOOLEAN',
        timestamp: 'TIMESTAMP',
        date: 'DATE',
        binary: 'BLOB',
      }[t.name];
    case 'decimal':
      return `DECIMAL(${t.precision},${t.scale})`;
    case 'varchar':
    case 'char':
      return 'VARCHAR';
    case 'array':
      return `${duckType(t.element)}[]`;
    case 'map':
      return `MAP(${duckType(t.key)}, ${duckType(t.value)})`;
    case 'struct':
      return `STRUCT(${t.fields.map((f) => `${quoteIdent(f.name)} ${duckType(f.type)}`).join(', ')})`;
  }
}

export interface ConversionSchema {
  /** `database.table`, for messages. */
  table: string;
  columns: Array<{ name: string; hive: HiveType }>;
}

/** The table's columns as a conversion schema; SchemaError when they cannot make a file. */
export function conversionSchema(table: string, columns: CatalogColumn[]): ConversionSchema {
  if (columns.length === 0) throw new SchemaError(`table ${table} has no columns`);
  const seen = new Set<string>();
  for (const c of columns) {
    const k = c.name.toLowerCase();
    if (seen.has(k)) throw new SchemaError(`table ${table} has two columns named ${c.name}`);
    seen.add(k);
  }
  return { table, columns: columns.map((c) => ({ name: c.name, hive: c.hive })) };
}

// --- deserializer options ------------------------------------------------------------------------

export interface DeserializerOptions {
  serde: 'openx' | 'hive';
  /** OpenX CaseInsensitive (default true): keys, map keys included, are lower-cased. */
  caseInsensitive: boolean;
  dotsToUnderscores: boolean;
  /** JSON key → column name (ColumnToJsonKeyMappings inverted), top level only. */
  renames: Map<string, string>;
  /** Hive JSON SerDe TimestampFormats, compiled. */
  timestampFormats: TimestampFormat[];
}

const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/** The InputFormatConfiguration's options; SchemaError when they cannot be honoured. */
export function deserializerOptions(input: unknown): DeserializerOptions {
  const d = obj(obj(input).Deserializer);
  if (d.OpenXJsonSerDe !== undefined && d.HiveJsonSerDe !== undefined) throw new SchemaError('give one Deserializer: OpenXJsonSerDe or HiveJsonSerDe');
  if (d.HiveJsonSerDe !== undefined) {
    const formats = obj(d.HiveJsonSerDe).TimestampFormats;
    const list = Array.isArray(formats) ? formats.map(String) : [];
    if (list.length > MAX_TIMESTAMP_FORMATS) throw new SchemaError(`HiveJsonSerDe.TimestampFormats has ${list.length} formats; at most ${MAX_TIMESTAMP_FORMATS} are supported`);
    return { serde: 'hive', caseInsensitive: true, dotsToUnderscores: false, renames: new Map(), timestampFormats: list.map(compileTimestampFormat) };
  }
  const openx = obj(d.OpenXJsonSerDe);
  const renames = new Map<string, string>();
  for (const [column, key] of Object.entries(obj(openx.ColumnToJsonKeyMappings))) if (typeof key === 'string') renames.set(key, column.toLowerCase());
  return {
    serde: 'openx',
    caseInsensitive: openx.CaseInsensitive !== false,
    dotsToUnderscores: openx.ConvertDotsInJsonKeysToUnderscores === true,
    renames,
    timestampFormats: [],
  };
}

// --- JSON reading (numbers keep their text) ------------------------------------------------------

/** A JSON number as written. */
class Num {
  constructor(readonly text: string) {}
}
type JsonValue = null | boolean | string | Num | JsonValue[] | Map<string, JsonValue>;

class JsonReader {
  pos = 0;
  constructor(private s: string) {}
  fail(why: string): never {
    throw new ConvertError(`not valid JSON: ${why} at position ${this.pos}`);
  }
  ws(): void {
    while (this.pos < this.s.length && ' \t\n\r'.includes(this.s[this.pos])) this.pos++;
  }
  done(): boolean {
    this.ws();
    return this.pos >= this.s.length;
  }
  value(depth: number): JsonValue {
    if (depth > MAX_RECORD_NESTING_DEPTH) {
      throw new ConvertError(`the record nests objects and arrays more than ${MAX_RECORD_NESTING_DEPTH} levels deep; the maximum is ${MAX_RECORD_NESTING_DEPTH}`);
    }
    this.ws();
    const c = this.s[this.pos];
    if (c === '{') {
      this.pos++;
      const m = new Map<string, JsonValue>();
      this.ws();
      if (this.s[this.pos] === '}') {
        this.pos++;
        return m;
      }
      for (;;) {
        this.ws();
        if (this.s[this.pos] !== '"') this.fail('expected a key');
        const k = this.string();
        this.ws();
        if (this.s[this.pos++] !== ':') this.fail("expected ':'");
        // A repeated key: the later one wins, as in JSON.parse.
        m.set(k, this.value(depth + 1));
        this.ws();
        const n = this.s[this.pos++];
        if (n === '}') return m;
        if (n !== ',') this.fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      this.pos++;
      const a: JsonValue[] = [];
      this.ws();
      if (this.s[this.pos] === ']') {
        this.pos++;
        return a;
      }
      for (;;) {
        a.push(this.value(depth + 1));
        this.ws();
        const n = this.s[this.pos++];
        if (n === ']') return a;
        if (n !== ',') this.fail("expected ',' or ']'");
      }
    }
    if (c === '"') return this.string();
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(this.s.slice(this.pos, this.pos + 400));
    if (!m) this.fail(this.pos >= this.s.length ? 'unexpected end' : `unexpected '${c}'`);
    this.pos += m[0].length;
    return m[0] === 'true' ? true : m[0] === 'false' ? false : m[0] === 'null' ? null : new Num(m[0]);
  }
  string(): string {
    const start = this.pos;
    this.pos++;
    for (;;) {
      const i = this.s.indexOf('"', this.pos);
      if (i < 0) this.fail('unterminated string');
      let back = 0;
      while (this.s[i - 1 - back] === '\\') back++;
      this.pos = i + 1;
      if (back % 2 === 0) break;
    }
    try {
      return JSON.parse(this.s.slice(start, this.pos)) as string;
    } catch {
      this.pos = start;
      return this.fail('bad string');
    }
  }
}

// --- conversion ----------------------------------------------------------------------------------

class ConvertError extends Error {}

export type RowResult = { ok: true; lines: string[] } | { ok: false; error: string };

/**
 * The record as NDJSON lines, one per JSON document it holds, each with every column of the
 * schema in order; or why it cannot convert (the message names the column).
 */
export function convertRecord(text: string, schema: ConversionSchema, o: DeserializerOptions): RowResult {
  try {
    const r = new JsonReader(text);
    const lines: string[] = [];
    while (!r.done()) {
      if (lines.length >= MAX_DOCUMENTS_PER_RECORD) throw new ConvertError(`the record holds more than ${MAX_DOCUMENTS_PER_RECORD} JSON documents`);
      const doc = r.value(0);
      if (!(doc instanceof Map)) throw new ConvertError(`a record must hold JSON objects, got ${describe(doc)}`);
      lines.push(row(doc, schema, o));
    }
    if (lines.length === 0) throw new ConvertError('the record is empty');
    return { ok: true, lines };
  } catch (e) {
    if (e instanceof ConvertError) return { ok: false, error: e.message };
    throw e;
  }
}

function describe(v: JsonValue): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Map) return 'an object';
  if (v instanceof Num) return `the number ${v.text.length > 40 ? v.text.slice(0, 40) + '…' : v.text}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  return String(v);
}

/** Keys as the deserializer sees them. */
function keyOf(k: string, o: DeserializerOptions, top: boolean): string {
  if (top && o.renames.has(k)) return o.renames.get(k)!;
  let n = o.dotsToUnderscores ? k.replace(/\./g, '_') : k;
  if (o.caseInsensitive) n = n.toLowerCase();
  return n;
}

/** The object's fields by deserialized key; the later of two equal keys wins. */
function fields(m: Map<string, JsonValue>, o: DeserializerOptions, top: boolean): Map<string, JsonValue> {
  const out = new Map<string, JsonValue>();
  for (const [k, v] of m) out.set(keyOf(k, o, top), v);
  return out;
}

function row(doc: Map<string, JsonValue>, schema: ConversionSchema, o: DeserializerOptions): string {
  const f = fields(doc, o, true);
  const parts = schema.columns.map((c) => {
    const v = lookup(f, c.name, o);
    return `${JSON.stringify(c.name)}:${convert(v, c.hive, o, c.name)}`;
  });
  return `{${parts.join(',')}}`;
}

function lookup(f: Map<string, JsonValue>, name: string, o: DeserializerOptions): JsonValue | undefined {
  return o.caseInsensitive ? f.get(name.toLowerCase()) : f.get(name);
}

const INTEGER_RANGES: Record<string, [bigint, bigint]> = {
  tinyint: [-128n, 127n],
  smallint: [-32768n, 32767n],
  int: [-2147483648n, 2147483647n],
  bigint: [-9223372036854775808n, 9223372036854775807n],
};

/** The value as canonical JSON text of type `t`; ConvertError naming `path` when it cannot be. */
function convert(v: JsonValue | undefined, t: HiveType, o: DeserializerOptions, path: string): string {
  if (v === undefined || v === null) return 'null';
  const fail = (why = `cannot be converted to ${typeText(t)}`): never => {
    throw new ConvertError(`column ${path}: ${describe(v)} ${why}`);
  };
  switch (t.kind) {
    case 'primitive':
      switch (t.name) {
        case 'string':
          return JSON.stringify(asText(v));
        case 'boolean':
          if (typeof v === 'boolean') return String(v);
          if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase();
          return fail();
        case 'tinyint':
        case 'smallint':
        case 'int':
        case 'bigint': {
          const text = v instanceof Num ? v.text : typeof v === 'string' ? v.trim() : undefined;
          const n = text !== undefined ? integerOf(text) : undefined;
          if (n === undefined) return fail();
          const [lo, hi] = INTEGER_RANGES[t.name];
          if (n < lo || n > hi) return fail(`is out of range for ${t.name} (${lo} to ${hi})`);
          return n.toString();
        }
        case 'double':
        case 'float': {
          const text = v instanceof Num ? v.text : typeof v === 'string' ? v.trim() : undefined;
          if (text === undefined || !/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(text)) return fail();
          const x = Number(text);
          if (!Number.isFinite(x) || (t.name === 'float' && Math.abs(x) > 3.4028234663852886e38)) return fail(`is out of range for ${t.name}`);
          return v instanceof Num ? text : String(x);
        }
        case 'timestamp': {
          const micros = timestampMicros(v, o);
          if (micros === undefined) return fail('is not a timestamp in a format the deserializer reads');
          return JSON.stringify(formatMicros(micros));
        }
        case 'date': {
          if (typeof v !== 'string') return fail();
          const m = /^(\d{4})-(\d{1,2})-(\d{1,2})$/.exec(v.trim());
          if (!m || !validDate(+m[1], +m[2], +m[3])) return fail('is not a date (yyyy-MM-dd)');
          return JSON.stringify(`${m[1]}-${m[2].padStart(2, '0')}-${m[3].padStart(2, '0')}`);
        }
        case 'binary': {
          if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 === 1) return fail('is not base64 text');
          // Carried as canonical base64 and decoded by DuckDB (selectList).
          return JSON.stringify(Buffer.from(v, 'base64').toString('base64'));
        }
      }
      break;
    case 'decimal': {
      const text = v instanceof Num ? v.text : typeof v === 'string' ? v.trim() : undefined;
      const d = text === undefined ? undefined : plainDecimal(text);
      if (d === undefined) return fail();
      const intDigits = d.replace(/^-/, '').split('.')[0].replace(/^0+/, '').length;
      if (intDigits > t.precision - t.scale) return fail(`has more than ${t.precision - t.scale} digits before the point`);
      return JSON.stringify(d);
    }
    case 'varchar':
    case 'char': {
      // Hive truncates to the declared length.
      const s = asText(v);
      return JSON.stringify([...s].slice(0, t.length).join(''));
    }
    case 'array':
      if (!Array.isArray(v)) return fail();
      return `[${v.map((x, i) => convert(x, t.element, o, `${path}[${i}]`)).join(',')}]`;
    case 'map': {
      if (!(v instanceof Map)) return fail();
      // Two keys equal once read (case folded, "07" and "7"): the later wins, as in JSON.parse.
      const entries = new Map<string, string>();
      for (const [k, x] of v) {
        const key = o.serde === 'openx' ? keyOf(k, o, false) : k;
        // Keys are object keys, read as the key type ("7" for map<int,…>); DuckDB casts them back.
        const keyJson = convert(key, t.key, o, `${path} key`);
        const keyText = keyJson.startsWith('"') ? (JSON.parse(keyJson) as string) : keyJson;
        entries.set(keyText, `${JSON.stringify(keyText)}:${convert(x, t.value, o, `${path}[${JSON.stringify(key)}]`)}`);
      }
      return `{${[...entries.values()].join(',')}}`;
    }
    case 'struct': {
      if (!(v instanceof Map)) return fail();
      const f = fields(v, o, false);
      return `{${t.fields.map((field) => `${JSON.stringify(field.name)}:${convert(lookup(f, field.name, o), field.type, o, `${path}.${field.name}`)}`).join(',')}}`;
    }
  }
  return fail();
}

function typeText(t: HiveType): string {
  return t.kind === 'primitive' ? t.name : t.kind === 'decimal' ? `decimal(${t.precision},${t.scale})` : t.kind;
}

function asText(v: JsonValue): string {
  if (typeof v === 'string') return v;
  if (v instanceof Num) return v.text;
  if (typeof v === 'boolean') return String(v);
  return JSON.stringify(toPlain(v));
}

function toPlain(v: JsonValue): unknown {
  if (v instanceof Num) return Number(v.text);
  if (Array.isArray(v)) return v.map(toPlain);
  if (v instanceof Map) {
    const out: Record<string, unknown> = Object.create(null);
    for (const [k, x] of v) out[k] = toPlain(x);
    return out;
  }
  return v;
}

/** A whole number from JSON number text (1e3 is 1000); undefined when it has a fraction. */
function integerOf(text: string): bigint | undefined {
  const d = plainDecimal(text);
  if (d === undefined) return undefined;
  const [i, f] = d.split('.');
  if (f !== undefined && !/^0*$/.test(f)) return undefined;
  return BigInt(i);
}

/** Number text without an exponent ("1.5e2" → "150"); undefined when it is not a number. */
function plainDecimal(text: string): string | undefined {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) return undefined;
  const exp = Number(m[4] ?? 0);
  if (Math.abs(exp) > 400) return undefined;
  let digits = m[2] + (m[3] ?? '');
  let point = m[2].length + exp;
  if (point < 0) {
    digits = '0'.repeat(-point) + digits;
    point = 0;
  }
  if (point > digits.length) digits += '0'.repeat(point - digits.length);
  const int = digits.slice(0, point).replace(/^0+(?=\d)/, '') || '0';
  const frac = digits.slice(point);
  return `${m[1]}${int}${frac ? '.' + frac : ''}`;
}

// --- timestamps ----------------------------------------------------------------------------------

function validDate(y: number, mo: number, d: number): boolean {
  if (mo < 1 || mo > 12 || d < 1) return false;
  return d <= new Date(Date.UTC(y, mo, 0)).getUTCDate();
}

interface TimeParts {
  y: number;
  mo: number;
  d: number;
  h: number;
  mi: number;
  s: number;
  /** Fraction digits as written (up to 9). */
  frac: string;
  /** Offset east of UTC in minutes. */
  offset: number;
}

function partsMicros(p: TimeParts): bigint | undefined {
  if (!validDate(p.y, p.mo, p.d) || p.h > 23 || p.mi > 59 || p.s > 59 || p.frac.length > 9) return undefined;
  const ms = Date.UTC(p.y, p.mo - 1, p.d, p.h, p.mi, p.s) - p.offset * 60_000;
  return BigInt(ms) * 1000n + BigInt((p.frac + '000000').slice(0, 6));
}

const offsetMinutes = (z: string | undefined): number => {
  if (!z || z === 'Z') return 0;
  const m = /^([+-])(\d{2}):?(\d{2})$/.exec(z)!;
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
};

const SQL_TIMESTAMP = /^(\d{4})-(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$/;
const ISO_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})$/;

function fromMatch(m: RegExpExecArray, zone?: string): bigint | undefined {
  return partsMicros({ y: +m[1], mo: +m[2], d: +m[3], h: +m[4], mi: +m[5], s: +m[6], frac: m[7] ?? '', offset: offsetMinutes(zone) });
}

/** Microseconds since the epoch (UTC) of a timestamp value, as the deserializer reads it. */
function timestampMicros(v: JsonValue, o: DeserializerOptions): bigint | undefined {
  const text = v instanceof Num ? v.text : typeof v === 'string' ? v.trim() : undefined;
  if (text === undefined) return undefined;
  if (o.serde === 'hive') {
    for (const f of o.timestampFormats) {
      const r = f(text);
      if (r !== undefined) return r;
    }
    const m = SQL_TIMESTAMP.exec(text);
    return m ? fromMatch(m) : undefined;
  }
  const sql = SQL_TIMESTAMP.exec(text);
  if (sql) return fromMatch(sql);
  const iso = ISO_TIMESTAMP.exec(text);
  if (iso) return fromMatch(iso, iso[8]);
  const d = /^-?\d+(\.\d+)?$/.test(text) ? plainDecimal(text) : undefined;
  if (d === undefined) return undefined;
  const [i, f = ''] = d.split('.');
  const whole = BigInt(i);
  const abs = whole < 0n ? -whole : whole;
  if (f === '' && abs >= BigInt(EPOCH_MILLIS_THRESHOLD)) return whole * 1000n;
  const fracMicros = BigInt((f + '000000').slice(0, 6));
  return whole * 1_000_000n + (whole < 0n || i.startsWith('-') ? -fracMicros : fracMicros);
}

type TimestampFormat = (text: string) => bigint | undefined;

/** A HiveJsonSerDe TimestampFormat: `millis` or a Joda pattern of the supported letters. */
export function compileTimestampFormat(format: string): TimestampFormat {
  if (format === 'millis') {
    return (text) => (/^-?\d{1,18}$/.test(text) ? BigInt(text) * 1000n : undefined);
  }
  let re = '';
  const groups: string[] = [];
  for (let i = 0; i < format.length; ) {
    const c = format[i];
    if (c === "'") {
      const j = format.indexOf("'", i + 1);
      if (j < 0) throw new SchemaError(`TimestampFormat '${format}': unterminated quote`);
      re += j === i + 1 ? "'" : escapeRe(format.slice(i + 1, j));
      i = j + 1;
      continue;
    }
    if (/[A-Za-z]/.test(c)) {
      let j = i;
      while (format[j] === c) j++;
      const run = format.slice(i, j);
      const spec: Record<string, [string, string] | undefined> = {
        yyyy: ['y', '(\\d{4})'],
        MM: ['mo', '(\\d{2})'],
        M: ['mo', '(\\d{1,2})'],
        dd: ['d', '(\\d{2})'],
        d: ['d', '(\\d{1,2})'],
        HH: ['h', '(\\d{2})'],
        H: ['h', '(\\d{1,2})'],
        mm: ['mi', '(\\d{2})'],
        ss: ['s', '(\\d{2})'],
        Z: ['z', '(Z|[+-]\\d{4})'],
        ZZ: ['z', '(Z|[+-]\\d{2}:\\d{2})'],
      };
      const s = c === 'S' ? (['frac', `(\\d{${run.length}})`] as [string, string]) : spec[run];
      if (!s) throw new SchemaError(`TimestampFormat '${format}': '${run}' is not supported (supported: yyyy MM M dd d HH H mm ss S… Z ZZ, quoted literals, or millis)`);
      groups.push(s[0]);
      re += s[1];
      i = j;
      continue;
    }
    re += escapeRe(c);
    i++;
  }
  for (const need of ['y', 'mo', 'd']) if (!groups.includes(need)) throw new SchemaError(`TimestampFormat '${format}' has no ${need === 'y' ? 'year (yyyy)' : need === 'mo' ? 'month (MM)' : 'day (dd)'}`);
  const rx = new RegExp(`^${re}$`);
  return (text) => {
    const m = rx.exec(text);
    if (!m) return undefined;
    const g = (name: string) => {
      const i = groups.indexOf(name);
      return i < 0 ? undefined : m[i + 1];
    };
    return partsMicros({ y: +g('y')!, mo: +g('mo')!, d: +g('d')!, h: +(g('h') ?? 0), mi: +(g('mi') ?? 0), s: +(g('s') ?? 0), frac: g('frac') ?? '', offset: offsetMinutes(g('z')) });
  };
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `yyyy-MM-dd HH:mm:ss.ffffff` (UTC) for DuckDB's TIMESTAMP. */
function formatMicros(us: bigint): string {
  const ms = us / 1000n - (us % 1000n < 0n ? 1n : 0n);
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) throw new ConvertError('the timestamp is out of range');
  const micro = ((us % 1_000_000n) + 1_000_000n) % 1_000_000n;
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const y = d.getUTCFullYear();
  if (y < 1 || y > 9999) throw new ConvertError('the timestamp is out of range (years 1 to 9999)');
  return `${p(y, 4)}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${micro.toString().padStart(6, '0')}`;
}

/** Whether a binary type is anywhere in `t`. */
function hasBinary(t: HiveType): boolean {
  if (t.kind === 'primitive') return t.name === 'binary';
  if (t.kind === 'array') return hasBinary(t.element);
  if (t.kind === 'map') return hasBinary(t.key) || hasBinary(t.value);
  if (t.kind === 'struct') return t.fields.some((f) => hasBinary(f.type));
  return false;
}

/** `t` with binary read as VARCHAR: rows carry binary as base64 text, decoded by selectList. */
function readType(t: HiveType): string {
  if (!hasBinary(t)) return duckType(t);
  switch (t.kind) {
    case 'array':
      return `${readType(t.element)}[]`;
    case 'map':
      return `MAP(${readType(t.key)}, ${readType(t.value)})`;
    case 'struct':
      return `STRUCT(${t.fields.map((f) => `${quoteIdent(f.name)} ${readType(f.type)}`).join(', ')})`;
    default:
      return 'VARCHAR';
  }
}

/** SQL turning `e` (read as readType(t)) into duckType(t): base64 text becomes BLOB at any depth. */
function decodeExpr(e: string, t: HiveType, depth = 0): string {
  if (!hasBinary(t)) return e;
  const v = `x${depth}`;
  switch (t.kind) {
    case 'array':
      return `list_transform(${e}, ${v} -> ${decodeExpr(v, t.element, depth + 1)})`;
    case 'map':
      return `map_from_entries(list_transform(map_entries(${e}), ${v} -> {'key': ${decodeExpr(`${v}.key`, t.key, depth + 1)}, 'value': ${decodeExpr(`${v}.value`, t.value, depth + 1)}}))`;
    case 'struct':
      return `CASE WHEN ${e} IS NULL THEN NULL ELSE struct_pack(${t.fields.map((f) => `${quoteIdent(f.name)} := ${decodeExpr(`${e}.${quoteIdent(f.name)}`, f.type, depth + 1)}`).join(', ')}) END`;
    default:
      return `from_base64(${e})`;
  }
}

/** The `columns = {…}` argument of read_json for the schema's rows. */
export function readJsonColumns(schema: ConversionSchema): string {
  return `{${schema.columns.map((c) => `'${c.name.replace(/'/g, "''")}': '${readType(c.hive).replace(/'/g, "''")}'`).join(', ')}}`;
}

/** The SELECT list giving the table's columns, in order, from those rows. */
export function selectList(schema: ConversionSchema): string {
  return schema.columns.map((c) => `${decodeExpr(quoteIdent(c.name), c.hive)} AS ${quoteIdent(c.name)}`).join(', ');
}
