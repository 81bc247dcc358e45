// The Redshift destination of the embedded Firehose, loading into any server that speaks the
// PostgreSQL wire protocol. Like Firehose it stages each batch as an object in the intermediate
// bucket (S3Configuration) and writes a COPY manifest under `manifests/`; then, where Redshift
// would run `COPY table (columns) FROM manifest <CopyOptions>`, it parses the same bytes the way
// that COPY would (a supported subset of CopyOptions, refused at construction otherwise) and
// inserts every row of the batch in one transaction: a batch is loaded wholly or not at all. When
// the deliverer's retry window runs out, `abandon` writes a manifest of the skipped object under
// `errors/manifests/` so a person can COPY it later.

import pg from 'pg';
import {
  DestinationConfigError,
  type BufferingHints,
  type DeliveryBatch,
  type DeliveryOutcome,
  type DestinationContext,
  type FirehoseDestination,
  type FirehoseRecord,
  type StreamInfo,
} from '../destination.js';
import type { ObjectStore } from '../objects/object-store.js';
import { bufferingOf, DEFAULT_REDSHIFT_RETRY_S, REDSHIFT_FORBIDDEN_COMPRESSIONS, retryDurationMsOf } from '../limits.js';
import { S3Destination } from './s3.js';
import { MAX_RECORD_NESTING_DEPTH, nestingExceeds } from '../../nesting.js';

/** Ports the JDBC URL implies when it names none. */
export const REDSHIFT_DEFAULT_PORT = 5439;
export const POSTGRESQL_DEFAULT_PORT = 5432;
/** Connections per destination: one load runs at a time, a second serves the column lookup. */
export const REDSHIFT_POOL_MAX = 2;
export const REDSHIFT_CONNECT_TIMEOUT_MS = 10_000;
export const REDSHIFT_IDLE_TIMEOUT_MS = 30_000;
/** Bind parameters per INSERT statement (the protocol's hard limit is 65,535). */
export const REDSHIFT_MAX_PARAMS_PER_INSERT = 32_768;
/** Folders of the intermediate bucket (after its literal Prefix): load manifests and skipped-batch manifests. */
export const REDSHIFT_MANIFEST_FOLDER = 'manifests/';
export const REDSHIFT_ERROR_MANIFEST_FOLDER = 'errors/manifests/';

/**
 * Error codes of failed loads. TableNotFound, ColumnMismatch, AuthenticationFailed and
 * ConnectionFailed follow Firehose's `Redshift.*` CloudWatch codes as remembered (not verified in
 * this pass); LoadFailed (a row COPY would reject) and StagingFailed are ours.
 */
export const RedshiftErrorCode = {
  connection: 'Redshift.ConnectionFailed',
  authentication: 'Redshift.AuthenticationFailed',
  tableNotFound: 'Redshift.TableNotFound',
  columnMismatch: 'Redshift.ColumnMismatch',
  load: 'Redshift.LoadFailed',
  staging: 'Redshift.StagingFailed',
} as const;

/** Data COPY would reject (a bad row, a missing column): the batch fails and is retried. */
class LoadError extends Error {
  constructor(
    readonly errorCode: string,
    message: string,
  ) {
    super(message);
  }
}

interface RedshiftConfig {
  ClusterJDBCURL?: string;
  CopyCommand?: { DataTableName?: string; DataTableColumns?: string; CopyOptions?: string };
  Username?: string;
  Password?: string;
  RetryOptions?: { DurationInSeconds?: number };
  S3Configuration?: S3Config;
  S3BackupMode?: string;
  S3BackupConfiguration?: S3Config;
}

interface S3Config {
  BucketARN?: string;
  Prefix?: string;
  CompressionFormat?: string;
  BufferingHints?: { SizeInMBs?: number; IntervalInSeconds?: number };
  [k: string]: unknown;
}

export interface RedshiftOptions {
  /** Connection timeout; REDSHIFT_CONNECT_TIMEOUT_MS unless a test wants another. */
  connectTimeoutMs?: number;
}

export class RedshiftDestination implements FirehoseDestination {
  readonly kind = 'Redshift' as const;
  readonly buffering: BufferingHints;
  readonly retryDurationMs: number;
  private readonly pool: pg.Pool;
  private readonly staging: S3Destination;
  private readonly backup?: S3Destination;
  private readonly bucket: ObjectStore;
  private readonly bucketName: string;
  private readonly manifestPrefix: string;
  private readonly table: { schema?: string; name: string };
  private readonly columnList?: string[];
  private readonly format: CopyFormat;
  private columns?: ColumnInfo[];
  /** Batch id → key of its staged object: retries load the object already staged, never a second copy. */
  private readonly staged = new Map<string, string>();
  /** Batch ids whose source backup (S3BackupMode Enabled) is written. */
  private readonly backedUp = new Set<string>();

  constructor(config: Record<string, unknown>, stream: () => StreamInfo, ctx: DestinationContext, options: RedshiftOptions = {}) {
    const c = config as RedshiftConfig;
    const target = parseJdbcUrl(c.ClusterJDBCURL ?? '');
    const tableName = c.CopyCommand?.DataTableName;
    if (!tableName) throw new DestinationConfigError('CopyCommand.DataTableName is required');
    this.table = parseTableName(tableName);
    const columns = c.CopyCommand?.DataTableColumns?.trim();
    this.columnList = columns ? parseColumnList(columns) : undefined;
    this.format = parseCopyOptions(c.CopyCommand?.CopyOptions ?? '');
    const s3 = c.S3Configuration;
    if (!s3?.BucketARN) throw new DestinationConfigError('S3Configuration.BucketARN is required');
    if (s3.CompressionFormat && REDSHIFT_FORBIDDEN_COMPRESSIONS.includes(s3.CompressionFormat)) {
      throw new DestinationConfigError(`CompressionFormat ${s3.CompressionFormat} is not allowed in RedshiftDestinationConfiguration.S3Configuration: COPY cannot read it`);
    }
    this.buffering = bufferingOf(s3.BufferingHints);
    this.retryDurationMs = retryDurationMsOf(c.RetryOptions, DEFAULT_REDSHIFT_RETRY_S);

    this.staging = new S3Destination(s3, stream, ctx);
    if (c.S3BackupMode === 'Enabled') {
      if (!c.S3BackupConfiguration) throw new DestinationConfigError('S3BackupMode Enabled needs S3BackupConfiguration');
      this.backup = new S3Destination(c.S3BackupConfiguration, stream, ctx);
    }
    this.bucket = ctx.objects(s3.BucketARN, typeof s3.RoleARN === 'string' ? s3.RoleARN : undefined);
    this.bucketName = s3.BucketARN.replace(/^arn:[^:]+:s3:::/, '');
    // Firehose puts its manifests after a literal Prefix; a prefix with !{…} expressions has no
    // single value to put them under, so they go to the bucket's root folders.
    this.manifestPrefix = s3.Prefix && !s3.Prefix.includes('!{') ? s3.Prefix : '';
    this.pool = new pg.Pool({
      host: target.host,
      port: target.port,
      database: target.database,
      user: c.Username,
      password: c.Password,
      max: REDSHIFT_POOL_MAX,
      connectionTimeoutMillis: options.connectTimeoutMs ?? REDSHIFT_CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: REDSHIFT_IDLE_TIMEOUT_MS,
    });
    // An idle connection dropped by the server (restart, network) must not crash the process:
    // the next load simply opens a new one.
    this.pool.on('error', () => {});
  }

  async deliver(batch: DeliveryBatch): Promise<DeliveryOutcome> {
    const staged = await this.stage(batch);
    if (!staged.ok) return staged;
    if (this.backup && !this.backedUp.has(batch.id)) {
      const b = await this.backup.writeObject(batch.records, batch.firstArrivalMs, batch.id);
      if (!b.ok) return { ok: false, error: `${RedshiftErrorCode.staging}: S3 backup failed: ${b.error}` };
      this.backedUp.add(batch.id);
    }
    // COPY reads the batch through this manifest; it is written before the load like Firehose does.
    const manifest = await this.putManifest(REDSHIFT_MANIFEST_FOLDER, batch, staged.key);
    if (!manifest.ok) return manifest;
    try {
      const rows = this.rowsOf(batch.records, await this.columnInfo());
      await this.insert(rows.columns, rows.values);
    } catch (err) {
      // The table may have changed under us: read its columns again on the next attempt.
      this.columns = undefined;
      return { ok: false, error: describe(err) };
    }
    this.forget(batch.id);
    return { ok: true };
  }

  /** Firehose's errors manifest lists only the skipped objects; the last error is not part of it. */
  async abandon(batch: DeliveryBatch, _lastError: string): Promise<DeliveryOutcome> {
    const staged = await this.stage(batch);
    if (!staged.ok) return staged;
    const manifest = await this.putManifest(REDSHIFT_ERROR_MANIFEST_FOLDER, batch, staged.key);
    if (!manifest.ok) return manifest;
    this.forget(batch.id);
    return { ok: true };
  }

  async close(): Promise<void> {
    await Promise.all([this.pool.end(), this.staging.close(), this.backup?.close()]);
  }

  private async stage(batch: DeliveryBatch): Promise<{ ok: true; key: string } | { ok: false; error: string }> {
    const known = this.staged.get(batch.id);
    if (known !== undefined) return { ok: true, key: known };
    const written = await this.staging.writeObject(batch.records, batch.firstArrivalMs, batch.id);
    if (!written.ok) return { ok: false, error: `${RedshiftErrorCode.staging}: ${written.error}` };
    this.staged.set(batch.id, written.key);
    return written;
  }

  private forget(batchId: string): void {
    this.staged.delete(batchId);
    this.backedUp.delete(batchId);
  }

  private async putManifest(folder: string, batch: DeliveryBatch, key: string): Promise<DeliveryOutcome> {
    const name = manifestKey(this.manifestPrefix + folder, batch.stream, batch.firstArrivalMs, batch.id);
    const body = JSON.stringify({ entries: [{ url: `s3://${this.bucketName}/${key}`, mandatory: true }] });
    try {
      await this.bucket.put(name, Buffer.from(body), 'application/json');
      return { ok: true };
    } catch (err) {
      return { ok: false, error: `${RedshiftErrorCode.staging}: manifest ${name} not written: ${(err as Error).message}` };
    }
  }

  /** The target columns in load order (DataTableColumns, else the table's own order), with their types. */
  private async columnInfo(): Promise<ColumnInfo[]> {
    if (this.columns) return this.columns;
    const { rows } = await this.pool.query<{ column_name: string; data_type: string; is_identity: string; is_generated: string }>(
      `SELECT column_name, data_type, is_identity, is_generated FROM information_schema.columns
        WHERE table_schema = COALESCE($1, current_schema()) AND table_name = $2 ORDER BY ordinal_position`,
      [this.table.schema ?? null, this.table.name],
    );
    const label = this.table.schema ? `${this.table.schema}.${this.table.name}` : this.table.name;
    if (rows.length === 0) throw new LoadError(RedshiftErrorCode.tableNotFound, `table ${label} does not exist`);
    const all = rows.map((r) => ({ name: r.column_name, type: r.data_type, implicit: r.is_identity === 'YES' || r.is_generated === 'ALWAYS' }));
    let chosen: ColumnInfo[];
    if (this.columnList) {
      chosen = this.columnList.map((name) => {
        const col = all.find((c) => c.name === name);
        if (!col) throw new LoadError(RedshiftErrorCode.columnMismatch, `column ${name} of DataTableColumns does not exist in ${label}`);
        return { name: col.name, type: col.type };
      });
    } else {
      chosen = all.filter((c) => !c.implicit).map((c) => ({ name: c.name, type: c.type }));
    }
    this.columns = chosen;
    return chosen;
  }

  private rowsOf(records: FirehoseRecord[], columns: ColumnInfo[]): { columns: ColumnInfo[]; values: unknown[][] } {
    // COPY reads the staged object: the records' bytes concatenated, as Firehose writes them.
    const text = Buffer.concat(records.map((r) => r.data)).toString('utf8');
    const values = this.format.kind === 'json' ? jsonRows(text, columns, this.format) : delimitedRows(text, columns, this.format);
    return { columns, values };
  }

  private async insert(columns: ColumnInfo[], rows: unknown[][]): Promise<void> {
    if (rows.length === 0) return;
    const target = (this.table.schema ? `${pg.escapeIdentifier(this.table.schema)}.` : '') + pg.escapeIdentifier(this.table.name);
    const columnSql = columns.map((c) => pg.escapeIdentifier(c.name)).join(', ');
    const perStatement = Math.max(1, Math.floor(REDSHIFT_MAX_PARAMS_PER_INSERT / columns.length));
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      for (let start = 0; start < rows.length; start += perStatement) {
        const chunk = rows.slice(start, start + perStatement);
        const params: unknown[] = [];
        const tuples = chunk.map((row) => `(${row.map((v) => (params.push(v), `$${params.length}`)).join(', ')})`);
        await client.query(`INSERT INTO ${target} (${columnSql}) VALUES ${tuples.join(', ')}`, params);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw err;
    } finally {
      // A connection whose ROLLBACK failed is in an unknown state: close it instead of reusing it.
      client.release(broken);
    }
  }
}

// ---- configuration parsing ----------------------------------------------------------------------

export interface JdbcTarget {
  host: string;
  port: number;
  database: string;
}

/** `jdbc:redshift://host:port/db` or `jdbc:postgresql://…`; query parameters are ignored. */
export function parseJdbcUrl(url: string): JdbcTarget {
  const m = /^jdbc:(redshift|postgresql):\/\/(\[[^\]]+\]|[^:/?#;]+)(?::(\d{1,5}))?\/([^?;/#]+)/.exec(url);
  if (!m) throw new DestinationConfigError(`ClusterJDBCURL must look like jdbc:redshift://host:port/database: ${url}`);
  const host = m[2].startsWith('[') ? m[2].slice(1, -1) : m[2];
  const port = m[3] ? Number(m[3]) : m[1] === 'redshift' ? REDSHIFT_DEFAULT_PORT : POSTGRESQL_DEFAULT_PORT;
  return { host, port, database: decodeURIComponent(m[4]) };
}

/** An SQL identifier as the catalog stores it: quoted keeps its case, unquoted folds to lower case. */
function identifier(raw: string): string {
  const t = raw.trim();
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) return t.slice(1, -1).replace(/""/g, '"');
  if (!t) throw new DestinationConfigError('empty identifier');
  return t.toLowerCase();
}

/** Splits on a separator outside double quotes. */
function splitOutsideQuotes(text: string, sep: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    if (ch === sep && !quoted) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts;
}

export function parseTableName(name: string): { schema?: string; name: string } {
  const parts = splitOutsideQuotes(name, '.').map(identifier);
  if (parts.length === 1) return { name: parts[0] };
  if (parts.length === 2) return { schema: parts[0], name: parts[1] };
  throw new DestinationConfigError(`CopyCommand.DataTableName must be table or schema.table: ${name}`);
}

export function parseColumnList(text: string): string[] {
  return splitOutsideQuotes(text, ',').map(identifier);
}

export type TimeFormat = 'auto' | 'epochsecs' | 'epochmillisecs';

export type CopyFormat = (
  | { kind: 'json'; ignoreCase: boolean }
  | { kind: 'delimited'; csv: boolean; delimiter: string; quote: string }
) & { timeFormat?: TimeFormat; emptyAsNull: boolean; blanksAsNull: boolean };

/** The options understood; anything else is refused at construction rather than silently ignored. */
export const SUPPORTED_COPY_OPTIONS =
  "JSON 'auto' | JSON 'auto ignorecase' | FORMAT [AS] JSON|CSV | CSV [QUOTE [AS] 'c'] | DELIMITER [AS] 'c' | " +
  "TIMEFORMAT [AS] 'auto'|'epochsecs'|'epochmillisecs' | DATEFORMAT [AS] 'auto' | EMPTYASNULL | BLANKSASNULL | " +
  'GZIP (no-op) | STATUPDATE/COMPUPDATE [ON|OFF] (no-op)';

export function parseCopyOptions(text: string): CopyFormat {
  const tokens = tokenize(text);
  let json: { ignoreCase: boolean } | undefined;
  let csv = false;
  let delimiter: string | undefined;
  let quote: string | undefined;
  let timeFormat: TimeFormat | undefined;
  let emptyAsNull = false;
  let blanksAsNull = false;
  const refuse = (why: string): never => {
    throw new DestinationConfigError(`CopyOptions: ${why} (supported: ${SUPPORTED_COPY_OPTIONS})`);
  };
  let i = 0;
  const word = () => (tokens[i]?.kind === 'word' ? tokens[i].value.toUpperCase() : undefined);
  const skipAs = () => {
    if (word() === 'AS') i++;
  };
  const stringArg = (option: string): string => {
    skipAs();
    const t = tokens[i];
    if (t?.kind !== 'string') return refuse(`${option} needs a quoted value`);
    i++;
    return t.value;
  };
  while (i < tokens.length) {
    const t = tokens[i++];
    if (t.kind === 'semicolon') continue;
    if (t.kind !== 'word') refuse(`unexpected '${t.value}'`);
    const option = t.value.toUpperCase();
    switch (option) {
      case 'FORMAT':
        skipAs();
        break;
      case 'JSON': {
        skipAs();
        let arg = 'auto';
        if (tokens[i]?.kind === 'string') arg = tokens[i++].value.trim().toLowerCase().replace(/\s+/g, ' ');
        if (arg === 'auto') json = { ignoreCase: false };
        else if (arg === 'auto ignorecase') json = { ignoreCase: true };
        else refuse(`JSON '${arg}' (JSONPaths files and 'noshred' are not supported)`);
        break;
      }
      case 'CSV':
        csv = true;
        break;
      case 'QUOTE':
        quote = stringArg('QUOTE');
        if ([...quote].length !== 1) refuse('QUOTE must be one character');
        break;
      case 'DELIMITER':
        delimiter = unescapeDelimiter(stringArg('DELIMITER'));
        if (delimiter.length === 0) refuse('DELIMITER must not be empty');
        break;
      case 'TIMEFORMAT': {
        const f = stringArg('TIMEFORMAT').toLowerCase();
        if (f !== 'auto' && f !== 'epochsecs' && f !== 'epochmillisecs') refuse(`TIMEFORMAT '${f}'`);
        timeFormat = f as TimeFormat;
        break;
      }
      case 'DATEFORMAT': {
        const f = stringArg('DATEFORMAT').toLowerCase();
        if (f !== 'auto') refuse(`DATEFORMAT '${f}'`);
        break;
      }
      case 'EMPTYASNULL':
        emptyAsNull = true;
        break;
      case 'BLANKSASNULL':
        blanksAsNull = true;
        break;
      // Compression of the staged object is decided by S3Configuration; the load reads the records themselves.
      case 'GZIP':
        break;
      // Redshift maintenance knobs with no meaning for a single-node PostgreSQL load.
      case 'STATUPDATE':
      case 'COMPUPDATE':
        if (['ON', 'OFF', 'TRUE', 'FALSE', 'PRESET'].includes(word() ?? '')) i++;
        break;
      default:
        refuse(`unsupported option ${option}`);
    }
  }
  if (json && (csv || delimiter !== undefined || quote !== undefined)) refuse('JSON cannot be combined with CSV, DELIMITER or QUOTE');
  if (quote !== undefined && !csv) refuse('QUOTE needs CSV');
  const common = { timeFormat, emptyAsNull, blanksAsNull };
  if (json) return { kind: 'json', ignoreCase: json.ignoreCase, ...common };
  // Redshift's default input is pipe-delimited text; with CSV the default delimiter is a comma.
  return { kind: 'delimited', csv, delimiter: delimiter ?? (csv ? ',' : '|'), quote: quote ?? '"', ...common };
}

type Token = { kind: 'word' | 'string' | 'semicolon' | 'other'; value: string };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === "'") {
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) throw new DestinationConfigError('CopyOptions: unterminated quoted value');
        if (text[i] === "'" && text[i + 1] === "'") {
          value += "'";
          i += 2;
        } else if (text[i] === "'") {
          i++;
          break;
        } else if (text[i] === '\\' && text[i + 1] === "'") {
          value += "'";
          i += 2;
        } else value += text[i++];
      }
      tokens.push({ kind: 'string', value });
    } else if (ch === ';') {
      tokens.push({ kind: 'semicolon', value: ch });
      i++;
    } else {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
      const value = m ? m[0] : ch;
      tokens.push({ kind: m ? 'word' : 'other', value });
      i += value.length;
    }
  }
  return tokens;
}

/** `'\t'` in DELIMITER means a tab, and `'\ddd'` an octal byte, as in Redshift. */
function unescapeDelimiter(d: string): string {
  return d.replace(/\\t/g, '\t').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

// ---- turning the staged bytes into rows ---------------------------------------------------------

interface ColumnInfo {
  name: string;
  /** information_schema data_type, e.g. `bigint`, `character varying`, `timestamp without time zone`. */
  type: string;
}

const TIME_TYPES = new Set(['timestamp without time zone', 'timestamp with time zone', 'date']);
const TEXT_TYPES = new Set(['character varying', 'character', 'text']);

/**
 * The top-level JSON texts of a stream of JSON values: newline-separated or directly concatenated
 * (`{…}{…}`), the way Firehose concatenates records without delimiters.
 */
export function splitJsonValues(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && /\s/.test(text[i])) i++;
    if (i >= n) break;
    const start = i;
    const open = text[i];
    if (open !== '{' && open !== '[') {
      // A scalar at the top level: take it up to the next whitespace or value start so the parse fails clearly.
      while (i < n && !/[\s{[]/.test(text[i])) i++;
      out.push(text.slice(start, i));
      continue;
    }
    let depth = 0;
    let inString = false;
    for (; i < n; i++) {
      const ch = text[i];
      if (inString) {
        if (ch === '\\') i++;
        else if (ch === '"') inString = false;
      } else if (ch === '"') inString = true;
      else if (ch === '{' || ch === '[') depth++;
      else if (ch === '}' || ch === ']') {
        depth--;
        if (depth === 0) {
          i++;
          break;
        }
      }
    }
    out.push(text.slice(start, i));
  }
  return out;
}

export function jsonRows(text: string, columns: ColumnInfo[], format: CopyFormat & { kind: 'json' }): unknown[][] {
  return splitJsonValues(text).map((raw, index) => {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      throw new LoadError(RedshiftErrorCode.load, `record ${index + 1}: invalid JSON (${(err as Error).message}): ${raw.slice(0, 200)}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new LoadError(RedshiftErrorCode.load, `record ${index + 1}: JSON 'auto' needs an object, got ${raw.slice(0, 200)}`);
    }
    if (nestingExceeds(value, MAX_RECORD_NESTING_DEPTH)) {
      throw new LoadError(RedshiftErrorCode.load, `record ${index + 1}: nests objects and arrays more than ${MAX_RECORD_NESTING_DEPTH} levels deep; the maximum is ${MAX_RECORD_NESTING_DEPTH}`);
    }
    const obj = value as Record<string, unknown>;
    // Redshift's 'auto' matches a key to the column name exactly (its column names are lower
    // case, so keys must be too); only 'auto ignorecase' folds the key's case.
    let lookup: (name: string) => unknown = (name) => (Object.hasOwn(obj, name) ? obj[name] : undefined);
    if (format.ignoreCase) {
      const folded = new Map<string, unknown>();
      for (const [k, v] of Object.entries(obj)) if (!folded.has(k.toLowerCase())) folded.set(k.toLowerCase(), v);
      lookup = (name) => folded.get(name.toLowerCase());
    }
    return columns.map((col) => jsonValue(lookup(col.name), col, format));
  });
}

function jsonValue(v: unknown, col: ColumnInfo, format: CopyFormat): unknown {
  if (v === undefined || v === null) return null;
  if (typeof v === 'object') return JSON.stringify(v);
  if (typeof v === 'number' && TIME_TYPES.has(col.type)) return epochToIso(v, format.timeFormat) ?? v;
  if (typeof v === 'string') return textValue(v, col, format);
  return v;
}

function textValue(v: string, col: ColumnInfo, format: CopyFormat): string | null {
  if (format.blanksAsNull && v.trim() === '' && v !== '') return null;
  if (v === '' && (format.emptyAsNull || !TEXT_TYPES.has(col.type))) return null;
  if (TIME_TYPES.has(col.type) && /^-?\d+(\.\d+)?$/.test(v)) return epochToIso(Number(v), format.timeFormat) ?? v;
  return v;
}

function epochToIso(n: number, timeFormat: TimeFormat | undefined): string | undefined {
  if (timeFormat === 'epochsecs') return new Date(n * 1000).toISOString();
  if (timeFormat === 'epochmillisecs') return new Date(n).toISOString();
  return undefined;
}

function delimitedRows(text: string, columns: ColumnInfo[], format: CopyFormat & { kind: 'delimited' }): unknown[][] {
  const lines = format.csv ? csvLines(text, format.delimiter, format.quote) : plainLines(text, format.delimiter);
  return lines.map((fields, index) => {
    if (fields.length < columns.length) {
      throw new LoadError(RedshiftErrorCode.columnMismatch, `line ${index + 1}: ${fields.length} fields for ${columns.length} columns (delimiter not found)`);
    }
    if (fields.length > columns.length) {
      throw new LoadError(RedshiftErrorCode.columnMismatch, `line ${index + 1}: ${fields.length} fields for ${columns.length} columns (extra column(s) found)`);
    }
    return columns.map((col, k) => {
      const f = fields[k];
      if (f === null) return null;
      return textValue(f, col, format);
    });
  });
}

/** Pipe-style text: one row per line, `\N` is NULL (Redshift's default NULL AS). */
function plainLines(text: string, delimiter: string): (string | null)[][] {
  return text
    .split('\n')
    .map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l))
    .filter((l) => l.length > 0)
    .map((l) => l.split(delimiter).map((f) => (f === '\\N' ? null : f)));
}

/** RFC 4180 CSV with a configurable delimiter and quote; quoted fields may hold newlines. */
function csvLines(text: string, delimiter: string, quote: string): (string | null)[][] {
  const rows: (string | null)[][] = [];
  let row: (string | null)[] = [];
  let field = '';
  let quoted = false;
  let wasQuoted = false;
  let i = 0;
  const endField = () => {
    row.push(field);
    field = '';
    wasQuoted = false;
  };
  const endRow = () => {
    endField();
    if (!(row.length === 1 && row[0] === '')) rows.push(row);
    row = [];
  };
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === quote && text[i + 1] === quote) {
        field += quote;
        i += 2;
      } else if (ch === quote) {
        quoted = false;
        i++;
      } else {
        field += ch;
        i++;
      }
    } else if (ch === quote && field === '') {
      quoted = true;
      wasQuoted = true;
      i++;
    } else if (text.startsWith(delimiter, i)) {
      endField();
      i += delimiter.length;
    } else if (ch === '\n' || (ch === '\r' && text[i + 1] === '\n')) {
      endRow();
      i += ch === '\r' ? 2 : 1;
    } else {
      field += ch;
      i++;
    }
  }
  if (quoted) throw new LoadError(RedshiftErrorCode.load, 'CSV: unterminated quoted field');
  if (field !== '' || row.length > 0 || wasQuoted) endRow();
  return rows;
}

// ---- manifests and errors -----------------------------------------------------------------------

/** `<folder>YYYY/MM/dd/HH/<stream>-<version>-YYYY-MM-dd-HH-mm-ss-<batch id>`, in UTC like the data objects. */
export function manifestKey(folder: string, stream: StreamInfo, atMs: number, batchId: string): string {
  const d = new Date(atMs);
  const p = (n: number) => String(n).padStart(2, '0');
  const [y, mo, da, h, mi, s] = [d.getUTCFullYear(), p(d.getUTCMonth() + 1), p(d.getUTCDate()), p(d.getUTCHours()), p(d.getUTCMinutes()), p(d.getUTCSeconds())];
  return `${folder}${y}/${mo}/${da}/${h}/${stream.name}-${stream.version}-${y}-${mo}-${da}-${h}-${mi}-${s}-${batchId}`;
}

/** One failure as `Code: message`, mapping PostgreSQL SQLSTATEs and socket errors to Firehose-style codes. */
function describe(err: unknown): string {
  if (err instanceof LoadError) return `${err.errorCode}: ${err.message}`;
  const e = err as Error & { code?: string; errors?: Error[] };
  const sqlstate = typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined;
  // AggregateError (every address of a host refused) carries no message of its own.
  const message = e.message || e.errors?.map((x) => x.message).join('; ') || String(err);
  if (sqlstate) {
    if (sqlstate.startsWith('28')) return `${RedshiftErrorCode.authentication}: ${message}`;
    if (sqlstate.startsWith('08') || sqlstate === '3D000' || sqlstate === '57P03') return `${RedshiftErrorCode.connection}: ${message}`;
    if (sqlstate === '42P01' || sqlstate === '3F000') return `${RedshiftErrorCode.tableNotFound}: ${message}`;
    if (sqlstate === '42703') return `${RedshiftErrorCode.columnMismatch}: ${message}`;
    return `${RedshiftErrorCode.load}: ${message} (SQLSTATE ${sqlstate})`;
  }
  return `${RedshiftErrorCode.connection}: ${e.code ? `${e.code} ` : ''}${message}`;
}
