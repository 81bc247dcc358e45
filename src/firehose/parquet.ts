// Record format conversion (reference/kinesis-firehose.md §3.7): a buffered batch of JSON records
// becomes one Parquet file, written by DuckDB from a temporary newline-delimited JSON file.
//
// Schema. AWS takes the columns from a Glue table (SchemaConfiguration); there is no Glue here and
// the API model admits no extra field to carry columns, so SchemaConfiguration is accepted and
// ignored, and the schema is inferred from the batch's records by DuckDB's read_json (reading every
// line): nested objects become STRUCTs, arrays LISTs, mixed scalar types VARCHAR. Inference alone
// gives each file its own schema, and Pinpoint records defeat it: `"session":{}` or `"sdk":{}`
// (server-generated events) infer as MAP in one batch and STRUCT in the next, which no reader can
// union, and `attributes`/`metrics` keys vary per record. So the Pinpoint event-stream columns
// (pinpoint.md §3, PINPOINT_SCHEMA) have fixed types, our stand-in for the Glue table AWS's own
// Pinpoint solution uses: STRUCTs for application/client/device/session, MAP(VARCHAR, VARCHAR) and
// MAP(VARCHAR, DOUBLE) for attributes/metrics, JSON for the free-form endpoint/client_context/
// facets. A fixed type replaces the inferred one only where it fits (an object where a STRUCT is
// fixed, flat numbers for metrics, ...), so other data with such column names is inferred as usual.
// Other data's files still get per-batch schemas (read them with read_parquet(union_by_name=true)).
//
// Deserializer options (OpenXJsonSerDe): CaseInsensitive (default true) lowercases every JSON key,
// as AWS documents it, map keys included; ConvertDotsInJsonKeysToUnderscores replaces dots in
// every key; ColumnToJsonKeyMappings renames top-level keys. When none of them changes a record
// and it is one line, its bytes are written as they came, so integers beyond 2^53 keep every digit
// (re-serialized records go through JSON.parse and lose them). HiveJsonSerDe.TimestampFormats is
// not applied: timestamps stay as the JSON has them (numbers or strings).
// Serializer options (ParquetSerDe): Compression (SNAPPY default, GZIP, UNCOMPRESSED) and
// WriterVersion (V1 default, V2) are honoured; BlockSizeBytes, PageSizeBytes, MaxPaddingBytes and
// EnableDictionaryCompression are accepted and left to DuckDB's defaults. OrcSerDe is refused.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { FirehoseRecord } from './destination.js';
import { sqlString, withDuckDB } from './duckdb.js';

/** lastErrorCode of a record that is not one JSON object (format-conversion-failed documents). */
export const MALFORMED_DATA = 'DataFormatConversion.MalformedData';
/** lastErrorCode when DuckDB could not write a record that is valid JSON. */
export const CONVERSION_FAILED = 'DataFormatConversion.ConversionFailed';
/** lastErrorCode for a configuration this converter cannot produce (ORC). */
export const UNSUPPORTED_FORMAT = 'DataFormatConversion.UnsupportedFormat';

/**
 * DuckDB's read_json maximum_object_size: one line of the temporary file. Records are at most
 * 1,000 KiB (PutRecord's limit); re-serializing can grow one (key renaming), hence the headroom.
 */
export const JSON_MAX_OBJECT_BYTES = 4 * 1000 * 1024;

/**
 * Deepest nesting of objects and arrays in a record the deserializer reads (Jackson's default
 * maxNestingDepth, under the OpenX JSON SerDe); a deeper record fails alone as MalformedData.
 */
export const MAX_RECORD_NESTING = 1000;

export const PARQUET_COMPRESSIONS = ['SNAPPY', 'GZIP', 'UNCOMPRESSED'] as const;
export type ParquetCompression = (typeof PARQUET_COMPRESSIONS)[number];

/**
 * Types of the Pinpoint event-stream record's columns (pinpoint.md §3.1–3.8), by lower-case
 * column name. Struct fields absent from a record are NULL; fields not listed here are dropped
 * (the free-form parts are JSON for that reason).
 */
export const PINPOINT_SCHEMA: Readonly<Record<string, string>> = {
  event_type: 'VARCHAR',
  event_timestamp: 'BIGINT',
  arrival_timestamp: 'BIGINT',
  event_version: 'VARCHAR',
  application:
    'STRUCT(app_id VARCHAR, cognito_identity_pool_id VARCHAR, package_name VARCHAR, sdk STRUCT("name" VARCHAR, "version" VARCHAR), title VARCHAR, version_name VARCHAR, version_code VARCHAR)',
  client: 'STRUCT(client_id VARCHAR, cognito_id VARCHAR)',
  device: 'STRUCT(locale STRUCT(code VARCHAR, country VARCHAR, "language" VARCHAR), make VARCHAR, model VARCHAR, platform STRUCT("name" VARCHAR, "version" VARCHAR))',
  session: 'STRUCT(session_id VARCHAR, start_timestamp BIGINT, stop_timestamp BIGINT)',
  attributes: 'MAP(VARCHAR, VARCHAR)',
  metrics: 'MAP(VARCHAR, DOUBLE)',
  awsaccountid: 'VARCHAR',
  endpoint: 'JSON',
  client_context: 'JSON',
  facets: 'JSON',
};

const NUMERIC = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|DOUBLE|JSON|"NULL")$/;

/** The value types of a flat STRUCT or MAP type; undefined when it is neither or nests further. */
function flatValueTypes(type: string): string[] | undefined {
  const m = /^(STRUCT|MAP)\((.*)\)$/.exec(type);
  if (!m || /STRUCT\(|MAP\(|\[\]|UNION\(/.test(m[2])) return undefined;
  if (m[1] === 'MAP') return [m[2].slice(m[2].indexOf(',') + 1).trim()];
  return m[2] === '' ? [] : m[2].split(', ').map((f) => f.slice(f.lastIndexOf(' ') + 1));
}

/** Whether data read_json inferred as `inferred` (over all records) can be read as `fixed`. */
function fits(fixed: string, inferred: string): boolean {
  if (fixed === 'JSON') return true;
  if (fixed === 'VARCHAR') return inferred === 'VARCHAR';
  if (fixed === 'BIGINT') return /^U?(TINYINT|SMALLINT|INTEGER|BIGINT)$/.test(inferred);
  if (fixed.startsWith('STRUCT(')) return /^(STRUCT|MAP)\(/.test(inferred);
  const values = flatValueTypes(inferred);
  if (fixed === 'MAP(VARCHAR, DOUBLE)') return values !== undefined && values.every((v) => NUMERIC.test(v));
  return values !== undefined;
}

/**
 * read_json over newline-delimited JSON files, with the PINPOINT_SCHEMA types for the columns they
 * fit. Shared by the Parquet writer and `pinstream query`'s view, so JSON and Parquet objects of one
 * stream read alike. Inference reads every line (sample_size -1): a key first seen late still gets
 * its column, and the fixed types are only applied where all records fit them.
 */
export async function readJsonSql(c: DuckDBConnection, paths: string[], compression: 'uncompressed' | 'gzip'): Promise<string> {
  const files = `[${paths.map(sqlString).join(', ')}]`;
  const args = `format = 'newline_delimited', compression = '${compression}', maximum_object_size = ${JSON_MAX_OBJECT_BYTES}, sample_size = -1`;
  const auto = `read_json(${files}, ${args})`;
  const inferred = (await c.runAndReadAll(`DESCRIBE SELECT * FROM ${auto}`)).getRows().map(([n, t]) => [String(n), String(t)]);
  let changed = false;
  const columns = inferred.map(([name, type]) => {
    const fixed = PINPOINT_SCHEMA[name.toLowerCase()];
    const t = fixed !== undefined && fixed !== type && fits(fixed, type) ? fixed : type;
    if (t !== type) changed = true;
    return `${sqlString(name)}: ${sqlString(t)}`;
  });
  return changed ? `read_json(${files}, ${args}, columns = {${columns.join(', ')}})` : auto;
}

export interface ParquetOptions {
  compression: ParquetCompression;
  writerVersion: 'V1' | 'V2';
  caseInsensitive: boolean;
  dotsToUnderscores: boolean;
  /** JSON key → column name (ColumnToJsonKeyMappings inverted). */
  renames: Map<string, string>;
}

export type ConversionResult =
  | { ok: true; body: Buffer }
  | { ok: false; failed: Array<{ index: number; error: string }>; body?: Buffer };

/**
 * The options of a DataFormatConversionConfiguration, or why this converter cannot honour it
 * (so CreateDeliveryStream can refuse it up front).
 */
export function parquetOptions(conf: Record<string, unknown>): { ok: true; options: ParquetOptions } | { ok: false; error: string } {
  const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
  const serializer = obj(obj(conf.OutputFormatConfiguration).Serializer);
  if (serializer.OrcSerDe !== undefined) return { ok: false, error: 'OrcSerDe is not supported: use ParquetSerDe' };
  const parquet = obj(serializer.ParquetSerDe);
  const compression = (parquet.Compression ?? 'SNAPPY') as string;
  if (!(PARQUET_COMPRESSIONS as readonly string[]).includes(compression)) {
    return { ok: false, error: `ParquetSerDe.Compression must be one of ${PARQUET_COMPRESSIONS.join(', ')}, got ${compression}` };
  }
  const writerVersion = (parquet.WriterVersion ?? 'V1') as string;
  if (writerVersion !== 'V1' && writerVersion !== 'V2') return { ok: false, error: `ParquetSerDe.WriterVersion must be V1 or V2, got ${writerVersion}` };
  const openx = obj(obj(obj(conf.InputFormatConfiguration).Deserializer).OpenXJsonSerDe);
  const renames = new Map<string, string>();
  for (const [column, key] of Object.entries(obj(openx.ColumnToJsonKeyMappings))) if (typeof key === 'string') renames.set(key, column);
  return {
    ok: true,
    options: {
      compression: compression as ParquetCompression,
      writerVersion,
      caseInsensitive: openx.CaseInsensitive !== false,
      dotsToUnderscores: openx.ConvertDotsInJsonKeysToUnderscores === true,
      renames,
    },
  };
}

/**
 * Converts a batch to one Parquet file. Records that are not a JSON object are reported in
 * `failed` (for the format-conversion-failed error output) and the file holds the others.
 */
export async function toParquet(records: FirehoseRecord[], conf: Record<string, unknown>): Promise<ConversionResult> {
  const parsed = parquetOptions(conf);
  if (!parsed.ok) return { ok: false, failed: records.map((_, index) => ({ index, error: `${UNSUPPORTED_FORMAT}: ${parsed.error}` })) };
  const o = parsed.options;
  const failed: Array<{ index: number; error: string }> = [];
  const lines: Array<{ index: number; line: string }> = [];
  records.forEach((r, index) => {
    const p = normalizeRecord(r.data.toString('utf8'), o);
    if (p.ok) lines.push({ index, line: p.line });
    else failed.push({ index, error: `${MALFORMED_DATA}: ${p.error}` });
  });
  if (lines.length === 0) return { ok: false, failed };

  const dir = await mkdtemp(join(tmpdir(), 'pinstream-parquet-'));
  try {
    let body: Buffer | undefined;
    const attempt = await convert(dir, lines, o);
    if (attempt.ok) body = attempt.body;
    else {
      // DuckDB refused the batch as a whole: find the records it refuses on their own, write the
      // rest. Only this rare path pays one conversion per record.
      const good: typeof lines = [];
      for (const l of lines) {
        const alone = await convert(dir, [l], o);
        if (alone.ok) good.push(l);
        else failed.push({ index: l.index, error: `${CONVERSION_FAILED}: ${alone.error}` });
      }
      if (good.length > 0) {
        const rest = await convert(dir, good, o);
        if (rest.ok) body = rest.body;
        else for (const l of good) failed.push({ index: l.index, error: `${CONVERSION_FAILED}: ${rest.error}` });
      }
    }
    if (failed.length === 0 && body) return { ok: true, body };
    failed.sort((a, b) => a.index - b.index);
    return body ? { ok: false, failed, body } : { ok: false, failed };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

type Normalized = { ok: true; line: string } | { ok: false; error: string };

/** Parses one record and applies the deserializer's key options; one NDJSON line out. */
export function normalizeRecord(text: string, o: ParquetOptions): Normalized {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, error: `not valid JSON (${(e as Error).message})` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, error: `a record must be one JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}` };
  }
  let changed = false;
  const rename = (k: string, top: boolean): string => {
    let n = top && o.renames.has(k) ? o.renames.get(k)! : k;
    if (o.dotsToUnderscores) n = n.replace(/\./g, '_');
    if (o.caseInsensitive && !(top && o.renames.has(k))) n = n.toLowerCase();
    if (n !== k) changed = true;
    return n;
  };
  const tooDeep = new Error('too deep');
  const walk = (v: unknown, top: boolean, depth: number): unknown => {
    if (v === null || typeof v !== 'object') return v;
    if (depth > MAX_RECORD_NESTING) throw tooDeep;
    if (Array.isArray(v)) return v.map((x) => walk(x, false, depth + 1));
    // A record's key "__proto__" is a key like any other: no prototype for it to set.
    const out: Record<string, unknown> = Object.create(null);
    for (const [k, x] of Object.entries(v)) {
      const n = rename(k, top);
      // Two keys equal after renaming: the later one wins, as it would in JSON.parse.
      if (Object.hasOwn(out, n)) changed = true;
      out[n] = walk(x, false, depth + 1);
    }
    return out;
  };
  let out: Record<string, unknown>;
  try {
    out = walk(value, true, 1) as Record<string, unknown>;
  } catch (e) {
    if (e !== tooDeep) throw e;
    return { ok: false, error: `nested deeper than ${MAX_RECORD_NESTING} levels` };
  }
  const trimmed = text.trim();
  const line = changed || /[\r\n]/.test(trimmed) ? JSON.stringify(out) : trimmed;
  return { ok: true, line };
}

async function convert(
  dir: string,
  lines: Array<{ line: string }>,
  o: ParquetOptions,
): Promise<{ ok: true; body: Buffer } | { ok: false; error: string }> {
  const input = join(dir, 'records.ndjson');
  const output = join(dir, 'records.parquet');
  await writeFile(input, lines.map((l) => l.line).join('\n') + '\n');
  try {
    await withDuckDB(async (c) => {
      const source = await readJsonSql(c, [input], 'uncompressed');
      await c.run(
        `COPY (SELECT * FROM ${source}) TO ${sqlString(output)} (FORMAT PARQUET, COMPRESSION ${o.compression}, PARQUET_VERSION ${o.writerVersion})`,
      );
    });
    return { ok: true, body: await readFile(output) };
  } catch (e) {
    return { ok: false, error: (e as Error).message.split('\n')[0] };
  } finally {
    await rm(output, { force: true });
  }
}
