// Athena-style queries over the Data Catalog, run in the server: one statement (SELECT / WITH /
// VALUES, CREATE [OR REPLACE] VIEW, DROP VIEW [IF EXISTS]) in Presto's dialect, rewritten to
// DuckDB (presto.ts), with every catalog table it names defined as a DuckDB view over the table's
// objects (tables.ts) and every catalog view expanded from its ViewOriginalText. Authorization is
// Athena's: athena:StartQueryExecution on the workgroup, glue:GetTable on each table and view
// (and glue:GetPartitions where catalog partitions are read), s3:ListBucket on each bucket listed
// and s3:GetObject on each object read; results written with s3:PutObject. DuckDB runs in a fresh
// in-memory database per query with file access limited to exactly the objects read (so SQL
// cannot reach the server's files), the configuration locked, and the query interrupted after
// QUERY_TIMEOUT_MS. Objects in a folder bucket are read in place; objects of an S3-compatible
// bucket are streamed to a temporary folder first (DuckDB's httpfs would need a download).

import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { DuckDBConnection } from '@duckdb/node-api';
import { PARTITION_READ_BATCH, toCatalogTable, type Catalog, type CatalogTable } from '../catalog/catalog.js';
import { CatalogError, type CatalogStore } from '../catalog/store.js';
import { formatHiveType, parseHiveType, type HiveType } from '../catalog/hive-types.js';
import { openDuckDB } from '../firehose/duckdb.js';
import type { ObjectStore } from '../firehose/objects/object-store.js';
import { quoteIdent, SqlError, stringValue, tokenize, translate, wherePredicates } from './presto.js';
import { MAX_QUERY_OBJECTS, MAX_QUERY_PARTITIONS, parseS3, projected, projectionPlan, prune, relationSql, skippedKey, tableFormat, type TablePartition } from './tables.js';

export { SqlError } from './presto.js';

/** Athena's default DML timeout. */
export const QUERY_TIMEOUT_MS = 30 * 60_000;
/** Views expanded inside views, at most (also what stops a view naming itself). */
export const MAX_VIEW_DEPTH = 16;
/** Rows a query answers inline (more: write them with an output location, or add LIMIT). */
export const MAX_RESULT_ROWS = 100_000;
/** DuckDB's memory per query. */
export const QUERY_MEMORY_LIMIT = '1GB';

/** Access decisions: throw (the server's AccessDenied) when the caller may not. */
export interface Access {
  authorize(action: string, resource: string): void;
}

export interface EngineDeps {
  catalog: Catalog;
  store: CatalogStore;
  region: string;
  accountId: string;
  /** The bucket's folder (read in place) or its store. */
  bucket(bucket: string): { dir: string } | { store: ObjectStore };
  now(): number;
  /** Who creates views (Glue's CreatedBy). */
  owner?: string;
}

export interface QueryRequest {
  sql: string;
  database: string;
  /** s3://bucket/prefix/: where the CSV result goes, as Athena writes it. */
  outputLocation?: string;
}

export interface QueryResult {
  queryExecutionId: string;
  columns: Array<{ name: string; type: string }>;
  /** Values as strings (Athena's VarCharValue), null for NULL. */
  rows: Array<Array<string | null>>;
  outputLocation?: string;
  statistics: { objectsRead: number; partitionsRead: number; bytesScanned: number };
}

const glueArns = (d: EngineDeps, db: string, t: string) => [
  `arn:aws:glue:${d.region}:${d.accountId}:catalog`,
  `arn:aws:glue:${d.region}:${d.accountId}:database/${db}`,
  `arn:aws:glue:${d.region}:${d.accountId}:table/${db}/${t}`,
];

/** The statement's kind from its first words. */
function statementKind(sql: string): { kind: 'select' } | { kind: 'create-view'; replace: boolean; name: string[]; body: string } | { kind: 'drop-view'; ifExists: boolean; name: string[] } {
  const toks = tokenize(sql);
  const sig = toks.map((t, i) => ({ ...t, i })).filter((t) => t.kind !== 'ws');
  // One statement: a trailing ; is allowed, another statement is not.
  const semi = sig.findIndex((t) => t.text === ';');
  if (semi >= 0 && semi !== sig.length - 1) throw new SqlError('one statement per query');
  const w = (k: number) => (sig[k]?.kind === 'word' ? sig[k].text.toLowerCase() : '');
  const name = (k: number): { parts: string[]; next: number } => {
    const parts: string[] = [];
    for (;;) {
      const t = sig[k];
      if (!t || (t.kind !== 'word' && t.kind !== 'qident')) throw new SqlError('expected a view name');
      parts.push((t.kind === 'qident' ? t.text.slice(1, -1).replace(/""/g, '"') : t.text).toLowerCase());
      if (sig[k + 1]?.text !== '.') return { parts, next: k + 1 };
      k += 2;
    }
  };
  if (w(0) === 'create') {
    let k = 1;
    let replace = false;
    if (w(1) === 'or' && w(2) === 'replace') {
      replace = true;
      k = 3;
    }
    if (w(k) !== 'view') throw new SqlError('pinstream query runs CREATE VIEW here; CREATE TABLE/DATABASE are catalog statements');
    const n = name(k + 1);
    if (w(n.next) !== 'as') throw new SqlError('CREATE VIEW name AS query');
    const end = semi >= 0 ? sig[semi].i : toks.length;
    const body = toks.slice(sig[n.next].i + 1, end).map((t) => t.text).join('').trim();
    return { kind: 'create-view', replace, name: n.parts, body };
  }
  if (w(0) === 'drop' && w(1) === 'view') {
    const ifExists = w(2) === 'if' && w(3) === 'exists';
    return { kind: 'drop-view', ifExists, name: name(ifExists ? 4 : 2).parts };
  }
  if (['select', 'with', 'values'].includes(w(0)) || sig[0]?.text === '(') return { kind: 'select' };
  throw new SqlError(`pinstream query runs SELECT, WITH, VALUES, CREATE VIEW and DROP VIEW (got ${sig[0]?.text ?? 'nothing'})`);
}

function viewName(parts: string[], database: string): { db: string; name: string } {
  if (parts.length === 3 && parts[0] !== 'awsdatacatalog') throw new SqlError(`catalog ${parts[0]} does not exist`);
  if (parts.length > 3) throw new SqlError(`${parts.join('.')} is not a view name`);
  return { db: parts.length >= 2 ? parts[parts.length - 2] : database.toLowerCase(), name: parts[parts.length - 1] };
}

/** Athena's ViewOriginalText: `/* Presto View: base64(JSON) *\/`. */
export function encodeView(v: { sql: string; schema: string; columns: Array<{ name: string; type: string }> }): string {
  const doc = { originalSql: v.sql, catalog: 'awsdatacatalog', schema: v.schema, columns: v.columns, owner: undefined, runAsInvoker: false, properties: {} };
  return `/* Presto View: ${Buffer.from(JSON.stringify(doc)).toString('base64')} */`;
}

export function decodeView(text: string): { sql: string; schema?: string } {
  const m = /^\/\* Presto View: ([A-Za-z0-9+/=\s]+) \*\/$/.exec(text.trim());
  if (!m) throw new SqlError('the view\'s ViewOriginalText is not a Presto view (/* Presto View: … */)');
  const doc = JSON.parse(Buffer.from(m[1], 'base64').toString('utf8')) as { originalSql?: string; schema?: string };
  if (typeof doc.originalSql !== 'string') throw new SqlError('the view has no originalSql');
  return { sql: doc.originalSql, schema: doc.schema };
}

/** A DuckDB type as Hive writes it (view columns in Glue). */
export function hiveOf(duck: string): string {
  const t = duck.trim();
  const list = /^(.*)\[\]$/.exec(t);
  if (list) return `array<${hiveOf(list[1])}>`;
  const inner = (s: string) => s.slice(s.indexOf('(') + 1, -1);
  const split = (s: string) => {
    const out: string[] = [];
    let d = 0;
    let cur = '';
    for (const c of s) {
      if (c === '(') d++;
      if (c === ')') d--;
      if (c === ',' && d === 0) {
        out.push(cur.trim());
        cur = '';
      } else cur += c;
    }
    out.push(cur.trim());
    return out;
  };
  if (/^MAP\(/i.test(t)) {
    const [k, v] = split(inner(t));
    return `map<${hiveOf(k)},${hiveOf(v)}>`;
  }
  if (/^STRUCT\(/i.test(t)) {
    return `struct<${split(inner(t))
      .map((f) => {
        const m = /^("(?:[^"]|"")*"|\S+)\s+(.*)$/.exec(f)!;
        return `${m[1].replace(/^"|"$/g, '')}:${hiveOf(m[2])}`;
      })
      .join(',')}>`;
  }
  const simple: Record<string, string> = { VARCHAR: 'string', BIGINT: 'bigint', INTEGER: 'int', SMALLINT: 'smallint', TINYINT: 'tinyint', DOUBLE: 'double', FLOAT: 'float', BOOLEAN: 'boolean', TIMESTAMP: 'timestamp', 'TIMESTAMP WITH TIME ZONE': 'timestamp', DATE: 'date', BLOB: 'binary', JSON: 'string', HUGEINT: 'decimal(38,0)', UBIGINT: 'decimal(20,0)', UINTEGER: 'bigint' };
  if (simple[t.toUpperCase()]) return simple[t.toUpperCase()];
  if (/^DECIMAL/i.test(t)) return t.toLowerCase().replace(/\s/g, '');
  return 'string';
}

/** A Hive type as Presto spells it (the view's columns in ViewOriginalText). */
export function prestoOf(h: HiveType): string {
  switch (h.kind) {
    case 'primitive':
      return { string: 'varchar', bigint: 'bigint', int: 'integer', smallint: 'smallint', tinyint: 'tinyint', double: 'double', float: 'real', boolean: 'boolean', timestamp: 'timestamp', date: 'date', binary: 'varbinary' }[h.name];
    case 'decimal':
      return `decimal(${h.precision},${h.scale})`;
    case 'varchar':
    case 'char':
      return 'varchar';
    case 'array':
      return `array(${prestoOf(h.element)})`;
    case 'map':
      return `map(${prestoOf(h.key)},${prestoOf(h.value)})`;
    case 'struct':
      return `row(${h.fields.map((f) => `${f.name} ${prestoOf(f.type)}`).join(',')})`;
  }
}

/** One query: the DuckDB database, the files it may read, and what it has read. */
class Run {
  defined = new Set<string>();
  allowed: string[] = [];
  objectsRead = 0;
  partitionsRead = 0;
  private parts = 0;

  constructor(
    private d: EngineDeps,
    private access: Access,
    private c: DuckDBConnection,
    private tmp: string,
    private readObjects: boolean,
  ) {}

  /** Defines every table and view `sql` names (recursively), then answers the DuckDB SQL. */
  async prepare(sql: string, database: string, depth = 0): Promise<string> {
    if (depth > MAX_VIEW_DEPTH) throw new SqlError(`views nest deeper than ${MAX_VIEW_DEPTH} (does a view name itself?)`);
    const t = translate(sql, { database, now: new Date(this.d.now()) });
    const preds = wherePredicates(sql);
    for (const ref of t.tables) {
      const key = `${ref.database}.${ref.name}`;
      if (this.defined.has(key)) continue;
      for (const arn of glueArns(this.d, ref.database, ref.name)) this.access.authorize('glue:GetTable', arn);
      let table: CatalogTable;
      try {
        table = this.d.catalog.getTable(ref.database, ref.name);
      } catch (e) {
        if (e instanceof CatalogError) throw new SqlError(e.code === 'EntityNotFoundException' ? `Table ${key} does not exist` : e.message);
        throw e;
      }
      await this.c.run(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(ref.database)}`);
      if (table.tableType === 'VIRTUAL_VIEW') {
        const rec = this.d.store.getTable(ref.database, ref.name)!;
        const v = decodeView(String(rec.ViewOriginalText ?? ''));
        const inner = await this.prepare(v.sql, v.schema ?? ref.database, depth + 1);
        await this.c.run(`CREATE VIEW ${quoteIdent(ref.database)}.${quoteIdent(ref.name)} AS ${inner}`);
      } else {
        // Pruning by this statement's WHERE is only sound when it reads one table directly.
        await this.defineTable(table, t.tables.length === 1 ? preds : []);
      }
      this.defined.add(key);
    }
    return t.sql;
  }

  private async defineTable(t: CatalogTable, preds: ReturnType<typeof wherePredicates>): Promise<void> {
    const format = tableFormat(t);
    const files: Array<{ path: string; values: string[] }> = [];
    if (this.readObjects) {
      for (const p of await this.partitions(t, preds)) {
        this.partitionsRead++;
        const { bucket, prefix } = parseS3(p.location);
        const keys = p.keys ?? (await this.list(bucket, prefix.replace(/\/?$/, prefix === '' ? '' : '/')));
        for (const key of keys) {
          if (skippedKey(key)) continue;
          if (++this.objectsRead > MAX_QUERY_OBJECTS) throw new SqlError(`the query reads more than ${MAX_QUERY_OBJECTS} objects: add a WHERE on the partition keys`);
          this.access.authorize('s3:GetObject', `arn:aws:s3:::${bucket}/${key}`);
          files.push({ path: await this.localPath(bucket, key), values: p.values });
        }
      }
    }
    const partsTable = `__parts_${this.parts++}`;
    const keyCols = t.partitionKeys.map((k) => `${quoteIdent(k.name.toLowerCase())} VARCHAR`);
    await this.c.run(`CREATE TEMP TABLE ${partsTable} (filename VARCHAR${keyCols.map((k) => `, ${k}`).join('')})`);
    if (files.length > 0) {
      const app = await this.c.createAppender(partsTable);
      for (const f of files) {
        app.appendVarchar(f.path);
        for (const v of f.values) app.appendVarchar(v);
        app.endRow();
      }
      app.closeSync();
    }
    let parquetColumns = new Set<string>();
    if (format === 'parquet' && files.length > 0) {
      this.allowed.push(...files.map((f) => f.path));
      const r = await this.c.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet([${files.map((f) => `'${f.path.replace(/'/g, "''")}'`).join(', ')}], union_by_name = true)`);
      parquetColumns = new Set(r.getRows().map((row) => String(row[0]).toLowerCase()));
    } else this.allowed.push(...files.map((f) => f.path));
    await this.c.run(`CREATE VIEW ${quoteIdent(t.database)}.${quoteIdent(t.name)} AS ${relationSql(t, format, files, partsTable, parquetColumns)}`);
  }

  /** DuckDB may read exactly the files named so far. */
  async allow(): Promise<void> {
    const list = this.allowed.map((p) => `'${p.replace(/'/g, "''")}'`).join(', ');
    await this.c.run(`SET allowed_paths = [${list}]`);
    // From here DuckDB reads no file but these: user SQL cannot reach the server's files.
    await this.c.run(`SET enable_external_access = false`);
  }

  private async partitions(t: CatalogTable, preds: ReturnType<typeof wherePredicates>): Promise<TablePartition[]> {
    if (t.partitionKeys.length === 0) {
      if (!t.location) throw new SqlError(`${t.database}.${t.name} has no LOCATION`);
      return [{ values: [], location: t.location }];
    }
    if (projected(t)) {
      const plan = projectionPlan(t, this.d.now());
      const groups = new Map<string, TablePartition>();
      for (const key of await this.list(plan.bucket, plan.listPrefix)) {
        const m = plan.pattern.exec(key);
        if (!m) continue;
        const values = m.slice(1);
        if (!plan.accept(values)) continue;
        const id = JSON.stringify(values);
        let g = groups.get(id);
        if (!g) groups.set(id, (g = { values, location: `s3://${plan.bucket}/${m[0]}`, keys: [] }));
        g.keys!.push(key);
      }
      return prune(t, groups.values(), preds);
    }
    for (const arn of glueArns(this.d, t.database, t.name)) this.access.authorize('glue:GetPartitions', arn);
    // Read in pages from the metadata store (async) and pruned a page at a time, so only the
    // partitions kept are held; prune(…, []) applies the partition limit to what was kept.
    const kept: TablePartition[] = [];
    let batch: TablePartition[] = [];
    const flush = () => {
      for (const p of prune(t, batch, preds)) kept.push(p);
      batch = [];
      if (kept.length > MAX_QUERY_PARTITIONS) prune(t, kept, []);
    };
    for await (const p of this.d.catalog.partitions(t.database, t.name)) {
      batch.push({ values: p.values, location: p.location ?? `${(t.location ?? '').replace(/\/?$/, '/')}${t.partitionKeys.map((k, i) => `${k.name}=${p.values[i]}`).join('/')}/` });
      if (batch.length >= PARTITION_READ_BATCH) flush();
    }
    flush();
    return kept;
  }

  private async list(bucket: string, prefix: string): Promise<string[]> {
    this.access.authorize('s3:ListBucket', `arn:aws:s3:::${bucket}`);
    const b = this.d.bucket(bucket);
    if ('store' in b) return b.store.list(prefix);
    const { FolderStore } = await import('../firehose/objects/folder.js');
    const s = new FolderStore(b.dir);
    try {
      return await s.list(prefix);
    } finally {
      s.close();
    }
  }

  private async localPath(bucket: string, key: string): Promise<string> {
    if (key.split('/').some((x) => x === '..' || x === '.') || key.startsWith('/')) throw new SqlError(`object key ${key} cannot be read`);
    const b = this.d.bucket(bucket);
    if ('dir' in b) return resolve(b.dir, key);
    const path = join(this.tmp, bucket, key);
    await mkdir(dirname(path), { recursive: true });
    // Streamed: an object is never held in memory whole.
    await pipeline(await b.store.stream(key), createWriteStream(path));
    return path;
  }
}

/** Runs one statement for a caller; SqlError for anything the caller can fix. */
export async function runStatement(d: EngineDeps, access: Access, q: QueryRequest): Promise<QueryResult> {
  const id = randomUUID();
  const s = statementKind(q.sql);
  const database = q.database.toLowerCase();
  const tmp = await mkdtemp(join(tmpdir(), 'pinstream-sql-'));
  const db = await openDuckDB();
  const c = await db.connect();
  const timer = setTimeout(() => c.interrupt(), QUERY_TIMEOUT_MS);
  try {
    await c.run(`SET TimeZone = 'UTC'`);
    await c.run(`SET integer_division = true`);
    await c.run(`SET memory_limit = '${QUERY_MEMORY_LIMIT}'`);
    await c.run(`SET temp_directory = '${join(tmp, 'spill').replace(/'/g, "''")}'`);
    if (s.kind === 'drop-view') {
      const v = viewName(s.name, database);
      for (const arn of glueArns(d, v.db, v.name)) access.authorize('glue:DeleteTable', arn);
      const rec = d.store.getTable(v.db, v.name);
      if (!rec) {
        if (s.ifExists) return empty(id);
        throw new SqlError(`View ${v.db}.${v.name} does not exist`);
      }
      if (rec.TableType !== 'VIRTUAL_VIEW') throw new SqlError(`${v.db}.${v.name} is a table, not a view: drop it with DROP TABLE`);
      await d.store.deleteTable(v.db, v.name);
      return empty(id);
    }
    const viewRun = s.kind === 'create-view';
    if (!viewRun) access.authorize('athena:StartQueryExecution', `arn:aws:athena:${d.region}:${d.accountId}:workgroup/primary`);
    const run = new Run(d, access, c, tmp, !viewRun);
    const body = s.kind === 'create-view' ? s.body : q.sql.trim().replace(/;\s*$/, '');
    const sql = await run.prepare(body, database);
    await run.allow();
    await c.run('SET lock_configuration = true');
    if (s.kind === 'create-view') {
      const v = viewName(s.name, database);
      const r = await c.runAndReadAll(`DESCRIBE ${sql}`);
      const columns = r.getRows().map((row) => ({ name: String(row[0]).toLowerCase(), hive: hiveOf(String(row[1])) }));
      const exists = d.store.getTable(v.db, v.name);
      if (exists && !s.replace) throw new SqlError(`View ${v.db}.${v.name} already exists`);
      if (exists && exists.TableType !== 'VIRTUAL_VIEW') throw new SqlError(`${v.db}.${v.name} is a table, not a view`);
      for (const arn of glueArns(d, v.db, v.name)) access.authorize(exists ? 'glue:UpdateTable' : 'glue:CreateTable', arn);
      const doc = {
        Name: v.name,
        TableType: 'VIRTUAL_VIEW',
        Parameters: { presto_view: 'true', comment: 'Presto View' },
        PartitionKeys: [],
        ViewOriginalText: encodeView({ sql: s.body, schema: v.db, columns: columns.map((x) => ({ name: x.name, type: prestoOf(parseHiveType(x.hive)) })) }),
        ViewExpandedText: '/* Presto View */',
        StorageDescriptor: { Columns: columns.map((x) => ({ Name: x.name, Type: formatHiveType(parseHiveType(x.hive)) })), SerdeInfo: {}, Location: '', Compressed: false, NumberOfBuckets: 0, StoredAsSubDirectories: false },
        ...(d.owner ? { Owner: d.owner } : {}),
      };
      try {
        if (exists) await d.store.updateTable(v.db, doc);
        else await d.store.createTable(v.db, doc);
      } catch (e) {
        if (e instanceof CatalogError) throw new SqlError(e.message);
        throw e;
      }
      return empty(id);
    }
    let result;
    try {
      result = await c.runAndReadAll(`SELECT * FROM (${sql}) LIMIT ${MAX_RESULT_ROWS + 1}`);
    } catch (e) {
      throw new SqlError((e as Error).message);
    }
    const names = result.columnNames();
    const types = result.columnTypes().map((t) => t.toString());
    const rows = result.getRows().map((row) => row.map((v) => (v === null ? null : String(v))));
    if (rows.length > MAX_RESULT_ROWS) throw new SqlError(`the result has more than ${MAX_RESULT_ROWS} rows: add a LIMIT or aggregate`);
    const out: QueryResult = {
      queryExecutionId: id,
      columns: names.map((n, i) => ({ name: n, type: types[i] })),
      rows,
      statistics: { objectsRead: run.objectsRead, partitionsRead: run.partitionsRead, bytesScanned: 0 },
    };
    if (q.outputLocation) out.outputLocation = await writeResult(d, access, q.outputLocation, id, names, rows);
    return out;
  } catch (e) {
    if (e instanceof SqlError) throw e;
    if (e instanceof Error && /^(Binder|Parser|Catalog|Conversion|Invalid Input|Out of Range|Not implemented|Permission|Interrupt)/.test(e.message)) throw new SqlError(e.message);
    throw e;
  } finally {
    clearTimeout(timer);
    c.closeSync();
    db.closeSync();
    await rm(tmp, { recursive: true, force: true });
  }
}

const empty = (id: string): QueryResult => ({ queryExecutionId: id, columns: [], rows: [], statistics: { objectsRead: 0, partitionsRead: 0, bytesScanned: 0 } });

/** Athena's result CSV: a header, every value double-quoted, NULL as an empty field. */
export function athenaCsv(names: string[], rows: Array<Array<string | null>>): string {
  const q = (v: string) => `"${v.replace(/"/g, '""')}"`;
  return [names.map(q).join(','), ...rows.map((r) => r.map((v) => (v === null ? '' : q(v))).join(','))].join('\n') + '\n';
}

async function writeResult(d: EngineDeps, access: Access, location: string, id: string, names: string[], rows: Array<Array<string | null>>): Promise<string> {
  const { bucket, prefix } = parseS3(location);
  const key = `${prefix.replace(/\/?$/, prefix === '' ? '' : '/')}${id}.csv`;
  access.authorize('s3:PutObject', `arn:aws:s3:::${bucket}/${key}`);
  const b = d.bucket(bucket);
  const body = Buffer.from(athenaCsv(names, rows));
  if ('store' in b) await b.store.put(key, body, 'text/csv');
  else {
    const { FolderStore } = await import('../firehose/objects/folder.js');
    const s = new FolderStore(b.dir);
    try {
      await s.put(key, body);
    } finally {
      s.close();
    }
  }
  return `s3://${bucket}/${key}`;
}

export { stringValue, toCatalogTable };
