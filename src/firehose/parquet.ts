// Record format conversion (reference/kinesis-firehose.md §3.7): a buffered batch of JSON records
// becomes one Parquet file with the columns and types of the Data Catalog table the stream's
// SchemaConfiguration names (schema.ts turns each record into a row of exactly those columns), written
// by DuckDB from a temporary newline-delimited JSON file read with those declared types.
//
// Serializer options (ParquetSerDe): Compression (SNAPPY default, GZIP, UNCOMPRESSED) and
// WriterVersion (V1 default, V2) are honoured; BlockSizeBytes, PageSizeBytes, MaxPaddingBytes and
// EnableDictionaryCompression are accepted and left to DuckDB's defaults. OrcSerDe is refused when
// the stream is saved: DuckDB has no ORC writer, and writing Parquet instead would be a lie.
//
// Also the read_json of delivered JSON objects that `pinstream query` uses (readJsonSql), with the
// Pinpoint event-stream column types where they fit.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { FirehoseRecord } from './destination.js';
import { sqlString, withDuckDB } from './duckdb.js';
import { convertRecord, deserializerOptions, readJsonColumns, selectList, SchemaError, type ConversionSchema, type DeserializerOptions } from './schema.js';

export { MALFORMED_DATA } from './schema.js';
/** lastErrorCode when DuckDB could not write a record that is valid JSON. */
export const CONVERSION_FAILED = 'DataFormatConversion.ConversionFailed';

/**
 * DuckDB's read_json maximum_object_size: one line of the temporary file. Records are at most
 * 1,000 KiB (PutRecord's limit); re-serializing can grow one (key renaming), hence the headroom.
 */
export const JSON_MAX_OBJECT_BYTES = 4 * 1000 * 1024;

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
    // Column names come from the records: own keys only (a column `constructor` has no fixed type).
    const fixed = Object.hasOwn(PINPOINT_SCHEMA, name.toLowerCase()) ? PINPOINT_SCHEMA[name.toLowerCase()] : undefined;
    const t = fixed !== undefined && fixed !== type && fits(fixed, type) ? fixed : type;
    if (t !== type) changed = true;
    return `${sqlString(name)}: ${sqlString(t)}`;
  });
  return changed ? `read_json(${files}, ${args}, columns = {${columns.join(', ')}})` : auto;
}

export interface ParquetOptions {
  compression: ParquetCompression;
  writerVersion: 'V1' | 'V2';
  deserializer: DeserializerOptions;
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
  if (serializer.OrcSerDe !== undefined) {
    return { ok: false, error: 'OutputFormatConfiguration.Serializer.OrcSerDe is not supported: this server writes Parquet only (its DuckDB has no ORC writer); use ParquetSerDe' };
  }
  const parquet = obj(serializer.ParquetSerDe);
  const compression = (parquet.Compression ?? 'SNAPPY') as string;
  if (!(PARQUET_COMPRESSIONS as readonly string[]).includes(compression)) {
    return { ok: false, error: `ParquetSerDe.Compression must be one of ${PARQUET_COMPRESSIONS.join(', ')}, got ${compression}` };
  }
  const writerVersion = (parquet.WriterVersion ?? 'V1') as string;
  if (writerVersion !== 'V1' && writerVersion !== 'V2') return { ok: false, error: `ParquetSerDe.WriterVersion must be V1 or V2, got ${writerVersion}` };
  let deserializer: DeserializerOptions;
  try {
    deserializer = deserializerOptions(conf.InputFormatConfiguration);
  } catch (e) {
    if (e instanceof SchemaError) return { ok: false, error: `InputFormatConfiguration: ${e.message}` };
    throw e;
  }
  return { ok: true, options: { compression: compression as ParquetCompression, writerVersion, deserializer } };
}

/**
 * Converts a batch to one Parquet file of the schema's columns. Records that cannot convert are
 * reported in `failed` (for the format-conversion-failed error output) and the file holds the others.
 */
export async function toParquet(records: FirehoseRecord[], o: ParquetOptions, schema: ConversionSchema): Promise<ConversionResult> {
  const failed: Array<{ index: number; error: string }> = [];
  const lines: Array<{ index: number; line: string }> = [];
  records.forEach((r, index) => {
    const p = convertRecord(r.data.toString('utf8'), schema, o.deserializer);
    if (p.ok) for (const line of p.lines) lines.push({ index, line });
    else failed.push({ index, error: `${MALFORMED}: ${p.error}` });
  });
  if (lines.length === 0) return { ok: false, failed };

  const dir = await mkdtemp(join(tmpdir(), 'pinstream-parquet-'));
  try {
    let body: Buffer | undefined;
    const attempt = await convert(dir, lines, o, schema);
    if (attempt.ok) body = attempt.body;
    else {
      // Rows are checked against the types before DuckDB sees them, so this is unexpected: find
      // the records DuckDB refuses on their own and write the rest. Only this path pays one
      // conversion per record.
      const byRecord = new Map<number, Array<{ index: number; line: string }>>();
      for (const l of lines) byRecord.set(l.index, [...(byRecord.get(l.index) ?? []), l]);
      const good: typeof lines = [];
      for (const [index, ls] of byRecord) {
        const alone = await convert(dir, ls, o, schema);
        if (alone.ok) good.push(...ls);
        else failed.push({ index, error: `${CONVERSION_FAILED}: ${alone.error}` });
      }
      if (good.length > 0) {
        const rest = await convert(dir, good, o, schema);
        if (rest.ok) body = rest.body;
        else for (const index of new Set(good.map((l) => l.index))) failed.push({ index, error: `${CONVERSION_FAILED}: ${rest.error}` });
      }
    }
    if (failed.length === 0 && body) return { ok: true, body };
    failed.sort((a, b) => a.index - b.index);
    return body ? { ok: false, failed, body } : { ok: false, failed };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const MALFORMED = 'DataFormatConversion.MalformedData';

async function convert(
  dir: string,
  lines: Array<{ line: string }>,
  o: ParquetOptions,
  schema: ConversionSchema,
): Promise<{ ok: true; body: Buffer } | { ok: false; error: string }> {
  const input = join(dir, 'records.ndjson');
  const output = join(dir, 'records.parquet');
  await writeFile(input, lines.map((l) => l.line).join('\n') + '\n');
  try {
    await withDuckDB(async (c) => {
      const source = `read_json(${sqlString(input)}, format = 'newline_delimited', maximum_object_size = ${JSON_MAX_OBJECT_BYTES}, columns = ${readJsonColumns(schema)})`;
      await c.run(
        `COPY (SELECT ${selectList(schema)} FROM ${source}) TO ${sqlString(output)} (FORMAT PARQUET, COMPRESSION ${o.compression}, PARQUET_VERSION ${o.writerVersion})`,
      );
    });
    return { ok: true, body: await readFile(output) };
  } catch (e) {
    return { ok: false, error: (e as Error).message.split('\n')[0] };
  } finally {
    await rm(output, { force: true });
  }
}
