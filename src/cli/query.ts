// `pinstream query [--stream NAME] "SQL"`: SQL with DuckDB over the objects a delivery stream has
// delivered, as one would use Athena over the bucket. With --stream it calls DescribeDeliveryStream
// (the SDK's Firehose client, SigV4-signed like any AWS call) for the bucket, prefix, compression
// and format conversion, finds where the bucket lives from the server's own configuration
// (PINSTREAM_BUCKETS / pinstream.json: a folder, or an S3-compatible endpoint whose objects are
// downloaded to a temporary folder first, because DuckDB's httpfs extension would have to be
// downloaded from the network), and defines the view `records` over the stream's objects:
// newline-delimited JSON (plain or gzip; one record per line, as Pinpoint sends them) and Parquet.
// JSON is read with the Pinpoint column types the Parquet writer uses (firehose/parquet.ts), so
// objects written before and after a format change union in one view. Without --stream the SQL
// runs as it is. ZIP and Snappy objects are refused: DuckDB cannot read them.
//
// Without --stream, one Athena-style catalog statement (CREATE EXTERNAL TABLE, CREATE DATABASE,
// DROP TABLE/DATABASE, ALTER TABLE … ADD PARTITION, SHOW TABLES/DATABASES, DESCRIBE; parsed by
// src/catalog/ddl.ts) runs against the server's Glue Data Catalog through the signed Glue API
// (src/cli/catalog-ddl.ts) instead of DuckDB; tables it names without a database are in
// --database (Athena's `default` unless given).
//
// Which objects are the stream's: under the literal part of its Prefix (up to the first `!{`),
// named `<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>…` (so other streams sharing the bucket
// are left out), and not error output (under ErrorOutputPrefix, or in a folder named after an
// error-output type such as format-conversion-failed).

import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { DescribeDeliveryStreamCommand, FirehoseClient, type DeliveryStreamDescription } from '@aws-sdk/client-firehose';
import type { DuckDBConnection, DuckDBResultReader } from '@duckdb/node-api';
import { ConfigError, DEFAULT_REGION, loadConfig, type Config } from '../config/config.js';
import { openDuckDB, sqlPathList } from '../firehose/duckdb.js';
import { readJsonSql } from '../firehose/parquet.js';
import { bucketLocation as sharedBucketLocation } from '../firehose/objects/index.js';
import { S3Store, type S3StoreOptions } from '../firehose/objects/s3.js';

/** An S3-compatible bucket to read delivered objects from. */
export type S3Location = S3StoreOptions & { endpoint: string; region: string };
import { defaultEndpoint, resolveCredentials } from './signed.js';
import { DdlError, isCatalogStatement } from '../catalog/ddl.js';
import { DEFAULT_DATABASE, GlueCallError, runCatalogStatement } from './catalog-ddl.js';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SqlError, translate } from '../sql/presto.js';
import { QUERY_PATH } from '../sql/routes.js';

/** How long the CLI waits for the server to answer a catalog query (the server's own limit is QUERY_TIMEOUT_MS). */
export const QUERY_CALL_TIMEOUT_MS = 31 * 60_000;

export const QUERY_USAGE = `usage: pinstream query [--stream NAME] [--database DB] [--format table|csv|json] [--output s3://bucket/prefix/] "SQL"

Runs SQL with DuckDB. With --stream, the view \`records\` holds every record the delivery stream
NAME has delivered to S3 (newline-delimited JSON, gzip'd or not, or Parquet); the bucket is the
folder or S3-compatible endpoint PINSTREAM_BUCKETS / pinstream.json maps it to, as for the server
(run it where the server's configuration is). Without --stream, plain DuckDB SQL: read_json(...),
read_parquet(...) over paths of your choice. Times are shown in UTC.

Athena-style queries (without --stream): SQL naming catalog tables ([awsdatacatalog.]db.table, or a
table of --database) runs in the server (POST /v1/query) in Presto's dialect over the tables'
objects, partitions from the catalog or projected (projection.* TBLPROPERTIES), pruned by WHERE on
partition keys; CREATE [OR REPLACE] VIEW and DROP VIEW store views in the catalog as Athena does.
--output writes the result as QUERY_ID.csv under the prefix, like Athena.

Catalog statements (without --stream, one per command) go to the server's Glue Data Catalog:
  CREATE DATABASE [IF NOT EXISTS] db [COMMENT '…'] [LOCATION '…'] [WITH DBPROPERTIES (…)]
  CREATE EXTERNAL TABLE [IF NOT EXISTS] [db.]t (col type, …) [PARTITIONED BY (col type, …)]
    [ROW FORMAT SERDE '…' [WITH SERDEPROPERTIES (…)]] [STORED AS PARQUET|ORC|TEXTFILE]
    LOCATION 's3://…' [TBLPROPERTIES ('k'='v', …)]
  DROP TABLE [IF EXISTS] [db.]t   DROP DATABASE [IF EXISTS] db [CASCADE]
  ALTER TABLE [db.]t ADD [IF NOT EXISTS] PARTITION (k='v', …) [LOCATION '…'] …
  SHOW TABLES [IN db] ['pattern']   SHOW DATABASES   DESCRIBE [db.]t

  pinstream query --stream pinpoint-events "SELECT event_type, date_trunc('day', to_timestamp(event_timestamp/1000)) AS day, count(*) FROM records GROUP BY ALL ORDER BY ALL"

options:
  --stream NAME       query the objects delivered by Firehose delivery stream NAME
  --database DB       the database of catalog statements naming none (default ${DEFAULT_DATABASE})
  --format F          table (default), csv (with a header line) or json (one object per line)
  --output S3URI      with a catalog query: also write the result to S3URI (QUERY_ID.csv)
  --endpoint URL      server URL (default http://127.0.0.1:<PINSTREAM_PORT or 4580>)
  --region R          signing region (default PINSTREAM_REGION, else ${DEFAULT_REGION})

credentials: PINSTREAM_ADMIN_ACCESS_KEY_ID/SECRET when both are set, else the AWS SDK's chain.`;

export const OUTPUT_FORMATS = ['table', 'csv', 'json'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Folders of error output (`!{firehose:error-output-type}` values): never the stream's records. */
export const ERROR_OUTPUT_TYPES = ['processing-failed', 'format-conversion-failed', 'metadata-extraction-failed', 'partitioning-failed', 'http-endpoint-failed'];

/** A failure the user can act on: printed as one line, exit code 1. */
export class QueryError extends Error {
  override name = 'QueryError';
}

/** What the query needs to know of a delivery stream's S3 output. */
export interface DeliveredStream {
  name: string;
  bucket: string;
  prefix: string;
  errorPrefix: string;
  /** CompressionFormat: UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY. */
  compression: string;
  /** Format conversion to Parquet is enabled: objects are Parquet files. */
  parquet: boolean;
}

export interface QueryOptions {
  stream?: string;
  /** The database catalog statements use when they name none. */
  database?: string;
  format: OutputFormat;
  /** s3://bucket/prefix/ for a catalog query's result CSV. */
  output?: string;
  sql: string;
  endpoint: string;
  region: string;
}

export function parseQueryArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): QueryOptions {
  const o: Partial<QueryOptions> = { format: 'table', endpoint: defaultEndpoint(env), region: env.PINSTREAM_REGION || DEFAULT_REGION };
  const value = (flag: string, v: string | undefined): string => {
    if (v === undefined || v === '') throw new QueryUsageError(`${flag} needs a value`);
    return v;
  };
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--stream') o.stream = value(a, argv[++i]);
    else if (a === '--database') o.database = value(a, argv[++i]);
    else if (a === '--output') {
      o.output = value(a, argv[++i]);
      if (!o.output.startsWith('s3://')) throw new QueryUsageError(`--output must be s3://bucket/prefix/, got "${o.output}"`);
    }
    else if (a === '--format') {
      const f = value(a, argv[++i]);
      if (!(OUTPUT_FORMATS as readonly string[]).includes(f)) throw new QueryUsageError(`--format must be one of ${OUTPUT_FORMATS.join(', ')}, got "${f}"`);
      o.format = f as OutputFormat;
    } else if (a === '--endpoint' || a === '--endpoint-url') o.endpoint = value(a, argv[++i]).replace(/\/+$/, '');
    else if (a === '--region') o.region = value(a, argv[++i]);
    else if (a.startsWith('--')) throw new QueryUsageError(`unknown option ${a}`);
    else positional.push(a);
  }
  if (positional.length !== 1) throw new QueryUsageError(positional.length === 0 ? 'SQL is missing' : 'give the SQL as one argument (quote it)');
  return { ...(o as QueryOptions), sql: positional[0] };
}

export class QueryUsageError extends Error {
  override name = 'QueryUsageError';
}

/** The `pinstream query` command: exit 0, 1 (query or server error) or 2 (usage). */
export async function query(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let o: QueryOptions;
  try {
    o = parseQueryArgs(argv, env);
  } catch (e) {
    if (!(e instanceof QueryUsageError)) throw e;
    console.error(`pinstream query: ${e.message}\n\n${QUERY_USAGE}`);
    return 2;
  }
  const cleanup: string[] = [];
  try {
    if (o.stream === undefined && isCatalogStatement(o.sql)) {
      process.stdout.write(await catalogStatement(o, env));
      return 0;
    }
    if (o.stream === undefined && isServerQuery(o)) {
      process.stdout.write(await serverQuery(o, env));
      return 0;
    }
    let source: Source | undefined;
    if (o.stream !== undefined) {
      const stream = await describeStream(o, env);
      source = await streamSource(stream, env, cleanup);
    }
    process.stdout.write(await runQuery(source, o.sql, o.format));
    return 0;
  } catch (e) {
    if (e instanceof QueryError) {
      console.error(`pinstream query: ${e.message}`);
      return 1;
    }
    throw e;
  } finally {
    for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
  }
}

/** Whether the SQL runs in the server: it names catalog tables, makes or drops a view, or --output is given. */
export function isServerQuery(o: Pick<QueryOptions, 'sql' | 'database' | 'output'>): boolean {
  if (o.output !== undefined) return true;
  if (/^\s*(create\s+(or\s+replace\s+)?view|drop\s+view)\b/i.test(o.sql)) return true;
  try {
    return translate(o.sql, { database: o.database ?? DEFAULT_DATABASE, now: new Date() }).tables.length > 0;
  } catch (e) {
    if (e instanceof SqlError) return false;
    throw e;
  }
}

/** POST /v1/query, SigV4-signed like the other Pinstream extensions under /v1 (mobiletargeting); the rows rendered in --format. */
export async function serverQuery(o: QueryOptions, env: NodeJS.ProcessEnv): Promise<string> {
  let credentials;
  try {
    credentials = await resolveCredentials(env);
  } catch (e) {
    throw new QueryError(`no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (${(e as Error).message})`);
  }
  const url = new URL(QUERY_PATH, o.endpoint);
  const body = JSON.stringify({
    QueryString: o.sql,
    QueryExecutionContext: { Database: o.database ?? DEFAULT_DATABASE },
    ...(o.output ? { ResultConfiguration: { OutputLocation: o.output } } : {}),
  });
  const signer = new SignatureV4({ service: 'mobiletargeting', region: o.region, credentials, sha256: Sha256 });
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port) || undefined,
    path: url.pathname,
    query: {},
    headers: { host: url.host, 'content-type': 'application/json' },
    body,
  });
  const headers = { ...(signed.headers as Record<string, string>) };
  delete headers.host;
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(QUERY_CALL_TIMEOUT_MS) });
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    throw new QueryError(`cannot reach ${o.endpoint} (${err.cause?.code ?? err.message}); is the server running there?`);
  }
  const text = await res.text();
  let out: any;
  try {
    out = JSON.parse(text);
  } catch {
    throw new QueryError(`HTTP ${res.status}: ${text.slice(0, 200)}`);
  }
  if (!res.ok) throw new QueryError(`${String(out.__type ?? res.headers.get('x-amzn-errortype') ?? res.status).replace(/[:#].*$/, '')}: ${out.message ?? out.Message ?? text.slice(0, 200)}`);
  const cols = (out.ResultSet?.Columns ?? []) as Array<{ Name: string; Type: string }>;
  const rows = (out.ResultSet?.Rows ?? []) as Array<Array<string | null>>;
  if (out.OutputLocation) console.error(`pinstream query: results written to ${out.OutputLocation}`);
  const numeric = cols.map((c) => INTEGER_TYPES.has(c.Type) || /^(FLOAT|DOUBLE|DECIMAL)/.test(c.Type));
  if (o.format === 'json') {
    return rows
      .map((r) => JSON.stringify(Object.fromEntries(cols.map((c, i) => [c.Name, numeric[i] && r[i] !== null && Number.isFinite(Number(r[i])) && (!INTEGER_TYPES.has(c.Type) || Number.isSafeInteger(Number(r[i]))) ? Number(r[i]) : r[i]]))) + '\n')
      .join('');
  }
  return renderRows(cols.map((c) => c.Name), rows, o.format, numeric);
}

async function catalogStatement(o: QueryOptions, env: NodeJS.ProcessEnv): Promise<string> {
  let credentials;
  try {
    credentials = await resolveCredentials(env);
  } catch (e) {
    throw new QueryError(`no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (${(e as Error).message})`);
  }
  try {
    const r = await runCatalogStatement({ endpoint: o.endpoint, region: o.region, credentials }, o.sql, o.database ?? DEFAULT_DATABASE);
    return renderRows(r.columns, r.rows, o.format);
  } catch (e) {
    if (e instanceof DdlError || e instanceof GlueCallError) throw new QueryError(e.message);
    const err = e as Error & { cause?: { code?: string } };
    if (err.name === 'TypeError' || err.name === 'TimeoutError') throw new QueryError(`cannot reach ${o.endpoint} (${err.cause?.code ?? err.message}); is the server running there?`);
    throw e;
  }
}

async function describeStream(o: QueryOptions, env: NodeJS.ProcessEnv): Promise<DeliveredStream> {
  let credentials;
  try {
    credentials = await resolveCredentials(env);
  } catch (e) {
    throw new QueryError(`no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (${(e as Error).message})`);
  }
  const client = new FirehoseClient({ endpoint: o.endpoint, region: o.region, credentials, maxAttempts: 2 });
  try {
    const out = await client.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: o.stream }));
    return deliveredStream(out.DeliveryStreamDescription!);
  } catch (e) {
    if (e instanceof QueryError) throw e;
    const err = e as Error & { $metadata?: unknown; code?: string };
    if (err.$metadata === undefined || err.code === 'ECONNREFUSED') {
      throw new QueryError(`cannot reach ${o.endpoint} (${err.message}); is the server running there?`);
    }
    throw new QueryError(`${err.name}: ${err.message}`);
  } finally {
    client.destroy();
  }
}

/** The S3 output of a described stream; QueryError when it has none this command can read. */
export function deliveredStream(d: DeliveryStreamDescription): DeliveredStream {
  const dest = d.Destinations?.[0];
  const s3 = dest?.ExtendedS3DestinationDescription ?? dest?.S3DestinationDescription;
  if (!s3?.BucketARN) throw new QueryError(`delivery stream ${d.DeliveryStreamName} does not deliver to S3, so there are no objects to query`);
  const conversion = dest?.ExtendedS3DestinationDescription?.DataFormatConversionConfiguration;
  const converting = !!conversion && conversion.Enabled !== false;
  if (converting && conversion.OutputFormatConfiguration?.Serializer?.OrcSerDe) {
    throw new QueryError(`delivery stream ${d.DeliveryStreamName} converts records to ORC, which this command does not read`);
  }
  return {
    name: d.DeliveryStreamName!,
    bucket: s3.BucketARN.replace(/^arn:[^:]+:s3:::/, ''),
    prefix: s3.Prefix ?? '',
    errorPrefix: dest?.ExtendedS3DestinationDescription?.ErrorOutputPrefix ?? '',
    compression: s3.CompressionFormat ?? 'UNCOMPRESSED',
    parquet: converting,
  };
}

/** A prefix up to its first `!{…}` expression: every key it can evaluate to starts with this. */
export function literalPrefix(prefix: string): string {
  const i = prefix.indexOf('!{');
  return i < 0 ? prefix : prefix.slice(0, i);
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Whether a key holds records the stream delivered (not error output, not another stream's). */
export function isDeliveredObject(key: string, s: DeliveredStream): boolean {
  const data = literalPrefix(s.prefix);
  if (!key.startsWith(data)) return false;
  const errors = literalPrefix(s.errorPrefix);
  if (errors !== '' && !data.startsWith(errors) && key.startsWith(errors)) return false;
  const segments = key.slice(data.length).split('/');
  const base = segments.pop()!;
  if (segments.some((x) => ERROR_OUTPUT_TYPES.includes(x))) return false;
  return new RegExp(`^${escapeRe(s.name)}-\\d+-\\d{4}-\\d{2}-\\d{2}-\\d{2}-\\d{2}-\\d{2}-[0-9a-fA-F-]{36}`).test(base);
}

export type FileKind = 'json' | 'json-gzip' | 'parquet';

/** How to read one object: by its extension, else by the stream's configuration. */
export function fileKind(key: string, s: DeliveredStream): FileKind {
  if (key.endsWith('.parquet')) return 'parquet';
  if (key.endsWith('.gz')) return 'json-gzip';
  const refuse = (what: string) =>
    new QueryError(`${key} is ${what}-compressed, which DuckDB cannot read; deliver UNCOMPRESSED or GZIP (or enable Parquet conversion) to query with pinstream`);
  if (/\.(zip)$/.test(key)) throw refuse('ZIP');
  if (/\.(snappy|hsnappy)$/.test(key)) throw refuse('Snappy');
  if (s.parquet) return 'parquet';
  if (s.compression === 'GZIP') return 'json-gzip';
  if (s.compression === 'ZIP' || s.compression === 'Snappy' || s.compression === 'HADOOP_SNAPPY') throw refuse(s.compression);
  return 'json';
}

/** The delivered files the view reads. */
export interface Source {
  files: Array<{ path: string; kind: FileKind }>;
  /** For messages: where the objects were looked for. */
  location: string;
}

/** Keys (`/`-separated paths) of the files under `root` whose key starts with `prefix`, sorted. */
export async function listFolderKeys(root: string, prefix: string): Promise<string[]> {
  // Start from the deepest folder the prefix names: the rest of the bucket is never read.
  const start = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/') + 1) : '';
  const base = resolve(root);
  let entries;
  try {
    entries = await readdir(join(base, start), { recursive: true, withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name).slice(base.length + 1).split(sep).join('/'))
    .filter((k) => k.startsWith(prefix))
    .sort();
}

/** The stream's delivered files in a local folder bucket. */
export async function folderSource(root: string, s: DeliveredStream): Promise<Source> {
  const keys = (await listFolderKeys(root, literalPrefix(s.prefix))).filter((k) => isDeliveredObject(k, s));
  const base = resolve(root);
  return { files: keys.map((k) => ({ path: join(base, k), kind: fileKind(k, s) })), location: `${base}/${literalPrefix(s.prefix)}` };
}

/** Downloads the stream's delivered objects from an S3-compatible endpoint into `dir`. */
export async function s3Source(loc: S3Location, s: DeliveredStream, dir: string): Promise<Source> {
  // The same store the server writes through, so listing and reads behave alike (see objects/s3.ts).
  const store = new S3Store(loc);
  const prefix = literalPrefix(s.prefix);
  try {
    const keys = (await store.list(prefix)).filter((k) => isDeliveredObject(k, s));
    const files: Source['files'] = [];
    for (const key of keys) {
      const kind = fileKind(key, s);
      // Keys become paths: one with `..` segments could point outside the temporary folder.
      if (key.split('/').some((x) => x === '..' || x === '.') || key.startsWith('/')) throw new QueryError(`object key ${key} cannot be stored as a file`);
      const path = join(dir, key);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, await store.get(key));
      files.push({ path, kind });
    }
    return { files, location: `s3://${loc.bucket}/${prefix} at ${loc.endpoint}` };
  } catch (e) {
    if (e instanceof QueryError) throw e;
    throw new QueryError(`cannot read s3://${loc.bucket}/${prefix} at ${loc.endpoint}: ${(e as Error).name}: ${(e as Error).message}`);
  } finally {
    store.close();
  }
}

/**
 * Where a bucket lives, as the server resolves it (config.buckets, first match): a folder, an
 * S3-compatible endpoint, or `<dataDir>/buckets/<bucket>`.
 */
export function bucketLocation(config: Config, bucket: string): { dir: string } | S3Location {
  const loc = sharedBucketLocation(bucket, config.dataDir, config.buckets);
  return 'dir' in loc ? loc : { ...loc, region: loc.region ?? config.region };
}

async function streamSource(s: DeliveredStream, env: NodeJS.ProcessEnv, cleanup: string[]): Promise<Source> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) throw new QueryError(`configuration error: ${e.message}`);
    throw e;
  }
  const loc = bucketLocation(config, s.bucket);
  if ('dir' in loc) return folderSource(loc.dir, s);
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-query-'));
  cleanup.push(dir);
  return s3Source(loc, s, dir);
}

/**
 * Runs `sql` (with the view `records` over `source` when given) and renders the last statement's
 * result. DuckDB's errors become QueryErrors carrying its message.
 */
export async function runQuery(source: Source | undefined, sql: string, format: OutputFormat): Promise<string> {
  const db = await openDuckDB();
  const c = await db.connect();
  try {
    // Firehose names objects by UTC hour and Athena works in UTC: dates must not shift with the host.
    await c.run(`SET TimeZone = 'UTC'`);
    if (source) {
      if (source.files.length === 0) throw new QueryError(`no delivered objects found in ${source.location}`);
      await c.run(`CREATE VIEW records AS ${await viewSql(c, source)}`);
    }
    let result: DuckDBResultReader;
    try {
      result = await c.runAndReadAll(sql);
    } catch (e) {
      throw new QueryError((e as Error).message);
    }
    return render(result, format);
  } catch (e) {
    if (e instanceof QueryError) throw e;
    throw new QueryError(`cannot read the delivered objects: ${(e as Error).message}`);
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

async function viewSql(c: DuckDBConnection, source: Source): Promise<string> {
  const of = (kind: FileKind) => source.files.filter((f) => f.kind === kind).map((f) => f.path);
  const parts: string[] = [];
  for (const [kind, compression] of [['json', 'uncompressed'], ['json-gzip', 'gzip']] as const) {
    const paths = of(kind);
    if (paths.length > 0) parts.push(`SELECT * FROM ${await readJsonSql(c, paths, compression)}`);
  }
  const parquet = of('parquet');
  if (parquet.length > 0) parts.push(`SELECT * FROM read_parquet(${sqlPathList(parquet)}, union_by_name = true)`);
  return parts.join(' UNION ALL BY NAME ');
}

const INTEGER_TYPES = new Set(['TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT', 'UTINYINT', 'USMALLINT', 'UINTEGER', 'UBIGINT', 'UHUGEINT']);

export function render(r: DuckDBResultReader, format: OutputFormat): string {
  const names = r.columnNames();
  if (names.length === 0) return '';
  if (format === 'json') {
    // DuckDB's JSON conversion gives 64-bit integers as strings; top-level ones that fit a JS
    // number are printed as numbers (counts, epoch milliseconds).
    const ints = r.columnTypes().map((t) => INTEGER_TYPES.has(t.toString()));
    return r
      .getRowObjectsJson()
      .map((row) => {
        names.forEach((n, i) => {
          const v = row[n];
          if (ints[i] && typeof v === 'string' && Number.isSafeInteger(Number(v))) row[n] = Number(v);
        });
        return JSON.stringify(row) + '\n';
      })
      .join('');
  }
  const rows = r.getRows().map((row) => row.map((v) => (v === null ? null : String(v))));
  const numeric = r.columnTypes().map((t) => INTEGER_TYPES.has(t.toString()) || /^(FLOAT|DOUBLE|DECIMAL)/.test(t.toString()));
  return renderRows(names, rows, format, numeric);
}

/** Rows of strings (nulls as NULL / empty) as a table, CSV or one JSON object per line. */
export function renderRows(names: string[], rows: Array<Array<string | null>>, format: OutputFormat, numeric: boolean[] = names.map(() => false)): string {
  if (names.length === 0) return '';
  if (format === 'json') return rows.map((row) => JSON.stringify(Object.fromEntries(names.map((n, i) => [n, row[i]]))) + '\n').join('');
  if (format === 'csv') {
    const cell = (v: string | null) => (v === null ? '' : /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
    return [names, ...rows].map((row) => row.map(cell).join(',') + '\n').join('');
  }
  const shown = rows.map((row) => row.map((v) => v ?? 'NULL'));
  const widths = names.map((n, c) => Math.max(n.length, ...shown.map((row) => row[c].length)));
  const line = (cells: string[]) => cells.map((v, c) => (numeric[c] ? v.padStart(widths[c]) : v.padEnd(widths[c]))).join('  ').trimEnd() + '\n';
  return line(names) + line(widths.map((w) => '-'.repeat(w))) + shown.map(line).join('') + `(${rows.length} row${rows.length === 1 ? '' : 's'})\n`;
}
