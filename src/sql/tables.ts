// How a catalog table becomes something DuckDB can read: its partitions (from the catalog, or
// projected from the object keys by Athena's partition projection TBLPROPERTIES), pruned by the
// query's WHERE on partition keys, the objects under each kept partition's location, and the SQL
// of a relation with the table's columns and Hive types (JSON lines read through the OpenX JSON
// SerDe's rules: top-level keys case-insensitive, `mapping.col` SERDEPROPERTIES; Parquet columns
// cast to the table's types, missing ones null) plus the partition columns.
// Projection supported: projection.enabled, projection.KEY.type = date (format, range with NOW
// and NOW±N UNITS), enum, integer, injected; storage.location.template. Projected partitions are
// found by listing the keys under the template's literal prefix (so only partitions that exist are
// read), never by enumerating the range.

import type { CatalogColumn, CatalogTable } from '../catalog/catalog.js';
import { OPENX_JSON_SERDE, HIVE_JSON_SERDE } from '../catalog/catalog.js';
import type { HiveType } from '../catalog/hive-types.js';
import { jodaFormat, quoteIdent, satisfies, SqlError, type Predicate } from './presto.js';

/** Objects one query may read (Athena has no such limit; a server does). */
export const MAX_QUERY_OBJECTS = 100_000;
/** Partitions one query may consider after pruning. */
export const MAX_QUERY_PARTITIONS = 100_000;

export interface TablePartition {
  values: string[];
  /** Where its objects are: s3://bucket/prefix/. */
  location: string;
  /** Keys already known (projection lists them); otherwise listed under location. */
  keys?: string[];
}

const sqlString = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** The DuckDB type of a Hive type. */
export function duckType(h: HiveType): string {
  switch (h.kind) {
    case 'primitive':
      return { string: 'VARCHAR', bigint: 'BIGINT', int: 'INTEGER', smallint: 'SMALLINT', tinyint: 'TINYINT', double: 'DOUBLE', float: 'FLOAT', boolean: 'BOOLEAN', timestamp: 'TIMESTAMP', date: 'DATE', binary: 'BLOB' }[h.name];
    case 'decimal':
      return `DECIMAL(${h.precision}, ${h.scale})`;
    case 'varchar':
    case 'char':
      return 'VARCHAR';
    case 'array':
      return `${duckType(h.element)}[]`;
    case 'map':
      return `MAP(${duckType(h.key)}, ${duckType(h.value)})`;
    case 'struct':
      return `STRUCT(${h.fields.map((f) => `${quoteIdent(f.name)} ${duckType(f.type)}`).join(', ')})`;
  }
}

const isNumeric = (h: HiveType) => h.kind === 'decimal' || (h.kind === 'primitive' && ['bigint', 'int', 'smallint', 'tinyint', 'double', 'float'].includes(h.name));

/** s3://bucket/prefix → { bucket, prefix } (prefix without a leading slash). */
export function parseS3(location: string): { bucket: string; prefix: string } {
  const m = /^s3a?n?:\/\/([^/]+)\/?(.*)$/.exec(location);
  if (!m) throw new SqlError(`location ${location} is not s3://bucket/prefix`);
  return { bucket: m[1], prefix: m[2] };
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A regular expression for values written with a Joda pattern (yyyy/MM/dd/HH → \d{4}/\d{2}/…). */
function jodaRegex(f: string): string {
  let out = '';
  for (let i = 0; i < f.length; ) {
    const c = f[i];
    if (/[A-Za-z]/.test(c)) {
      let j = i;
      while (f[j] === c) j++;
      const n = j - i;
      out += c === 'y' ? `\\d{${n === 2 ? 2 : 4}}` : /[MdHhmsS]/.test(c) ? (n >= 2 ? `\\d{${n}}` : '\\d{1,2}') : '[^/]+?';
      i = j;
    } else if (c === "'") {
      const e = f.indexOf("'", i + 1);
      out += escapeRe(f.slice(i + 1, e));
      i = e + 1;
    } else {
      out += escapeRe(c);
      i++;
    }
  }
  return out;
}

/** Milliseconds of a date written with a Joda pattern (the subset jodaRegex reads), UTC. */
export function parseJodaDate(value: string, f: string): number | undefined {
  const fields: Record<string, number> = { y: 1970, M: 1, d: 1, H: 0, m: 0, s: 0, S: 0 };
  let v = 0;
  for (let i = 0; i < f.length; ) {
    const c = f[i];
    if (/[A-Za-z]/.test(c)) {
      let j = i;
      while (f[j] === c) j++;
      const n = j - i;
      const m = new RegExp(`^\\d{${n >= 2 ? n : '1,2'}}`).exec(value.slice(v));
      if (!m) return undefined;
      if (c in fields) fields[c] = Number(m[0]);
      v += m[0].length;
      i = j;
    } else if (c === "'") {
      const e = f.indexOf("'", i + 1);
      const lit = f.slice(i + 1, e);
      if (!value.startsWith(lit, v)) return undefined;
      v += lit.length;
      i = e + 1;
    } else {
      if (value[v] !== c) return undefined;
      v++;
      i++;
    }
  }
  if (v !== value.length) return undefined;
  const t = Date.UTC(fields.y, fields.M - 1, fields.d, fields.H, fields.m, fields.s, fields.S);
  const d = new Date(t);
  return d.getUTCMonth() === fields.M - 1 && d.getUTCDate() === fields.d ? t : undefined;
}

const UNIT_MS: Record<string, number> = { SECONDS: 1000, MINUTES: 60_000, HOURS: 3_600_000, DAYS: 86_400_000, WEEKS: 604_800_000 };

/** A range bound of a date projection: a date in the format, NOW, or NOW±N UNIT(S). */
function rangeBound(s: string, format: string, now: number): number {
  const t = s.trim();
  const m = /^NOW\s*(?:([+-])\s*(\d+)\s*(SECOND|MINUTE|HOUR|DAY|WEEK|MONTH|YEAR)S?)?$/i.exec(t);
  if (m) {
    if (!m[1]) return now;
    const n = Number(m[2]) * (m[1] === '-' ? -1 : 1);
    const unit = m[3].toUpperCase();
    if (unit === 'MONTH' || unit === 'YEAR') {
      const d = new Date(now);
      if (unit === 'MONTH') d.setUTCMonth(d.getUTCMonth() + n);
      else d.setUTCFullYear(d.getUTCFullYear() + n);
      return d.getTime();
    }
    return now + n * UNIT_MS[`${unit}S`];
  }
  const v = parseJodaDate(t, format);
  if (v === undefined) throw new SqlError(`projection range bound "${s}" does not match the format ${format}`);
  return v;
}

/** Whether the table's partitions are projected (TBLPROPERTIES projection.enabled = true). */
export const projected = (t: CatalogTable) => (t.parameters['projection.enabled'] ?? '').toLowerCase() === 'true';

export interface ProjectionPlan {
  bucket: string;
  /** List the keys under this prefix … */
  listPrefix: string;
  /** … and keep those this matches; group i+1 is partition key i's value. */
  pattern: RegExp;
  /** Whether a key's values are in their projected range. */
  accept(values: string[]): boolean;
}

/** How to find a projected table's partitions among the objects. */
export function projectionPlan(t: CatalogTable, now: number): ProjectionPlan {
  const keys = t.partitionKeys.map((k) => k.name.toLowerCase());
  const template = t.parameters['storage.location.template'] ?? `${(t.location ?? '').replace(/\/?$/, '/')}${keys.map((k) => `${k}=\${${k}}`).join('/')}/`;
  const { bucket, prefix } = parseS3(template);
  const firstVar = prefix.indexOf('${');
  const listPrefix = firstVar < 0 ? prefix : prefix.slice(0, firstVar);
  const order: string[] = [];
  let re = '^';
  let rest = prefix;
  for (;;) {
    const m = /\$\{([^}]+)\}/.exec(rest);
    if (!m) {
      re += escapeRe(rest);
      break;
    }
    re += escapeRe(rest.slice(0, m.index));
    const key = m[1].toLowerCase();
    if (!keys.includes(key)) throw new SqlError(`storage.location.template names \${${m[1]}}, which is not a partition key of ${t.database}.${t.name}`);
    order.push(key);
    re += `(${valueRegex(t, key)})`;
    rest = rest.slice(m.index + m[0].length);
  }
  if (!re.endsWith('/')) re += '/';
  for (const k of keys) if (!order.includes(k)) throw new SqlError(`storage.location.template does not place the partition key ${k} of ${t.database}.${t.name}`);
  const pattern = new RegExp(re);
  const checks = keys.map((k) => valueCheck(t, k, now));
  return {
    bucket,
    listPrefix,
    pattern: {
      // Groups come in template order; callers want them in key order.
      exec: (s: string) => {
        const m = pattern.exec(s);
        if (!m) return null;
        const byKey = keys.map((k) => m[order.indexOf(k) + 1]);
        return Object.assign([m[0], ...byKey], { index: 0, input: s }) as RegExpExecArray;
      },
    } as RegExp,
    accept: (values) => values.every((v, i) => checks[i](v)),
  };
}

function prop(t: CatalogTable, key: string, name: string): string | undefined {
  const want = `projection.${key}.${name}`;
  for (const [k, v] of Object.entries(t.parameters)) if (k.toLowerCase() === want) return v;
  return undefined;
}

function valueRegex(t: CatalogTable, key: string): string {
  const type = (prop(t, key, 'type') ?? '').toLowerCase();
  switch (type) {
    case 'date':
      return jodaRegex(prop(t, key, 'format') ?? "yyyy-MM-dd");
    case 'integer':
      return '-?\\d+';
    case 'enum':
      return (prop(t, key, 'values') ?? '').split(',').map((v) => escapeRe(v.trim())).join('|');
    case 'injected':
      return '[^/]+';
    default:
      throw new SqlError(`partition projection type "${type}" of key ${key} in ${t.database}.${t.name} is not supported (date, integer, enum, injected are)`);
  }
}

function valueCheck(t: CatalogTable, key: string, now: number): (v: string) => boolean {
  const type = (prop(t, key, 'type') ?? '').toLowerCase();
  if (type === 'date') {
    const format = prop(t, key, 'format') ?? 'yyyy-MM-dd';
    const range = prop(t, key, 'range');
    if (!range) throw new SqlError(`projection.${key}.range is required for a date projection`);
    const [a, b] = range.split(',');
    if (b === undefined) throw new SqlError(`projection.${key}.range must be START,END`);
    const lo = rangeBound(a, format, now);
    const hi = rangeBound(b, format, now);
    return (v) => {
      const ms = parseJodaDate(v, format);
      return ms !== undefined && ms >= lo && ms <= hi;
    };
  }
  if (type === 'integer') {
    const range = prop(t, key, 'range');
    const [lo, hi] = (range ?? '').split(',').map(Number);
    return (v) => range === undefined || (Number(v) >= lo && Number(v) <= hi);
  }
  return () => true;
}

/** Partitions kept by the predicates on partition keys. */
export function prune(t: CatalogTable, parts: Iterable<TablePartition>, preds: Predicate[]): TablePartition[] {
  const keys = t.partitionKeys;
  const per = keys.map((k) => preds.filter((p) => p.column === k.name.toLowerCase()));
  const out: TablePartition[] = [];
  for (const p of parts) {
    if (keys.every((k, i) => per[i].length === 0 || satisfies(p.values[i], per[i], isNumeric(k.hive)))) {
      out.push(p);
      if (out.length > MAX_QUERY_PARTITIONS) throw new SqlError(`the query reads more than ${MAX_QUERY_PARTITIONS} partitions of ${t.database}.${t.name}: add a WHERE on its partition keys`);
    }
  }
  return out;
}

/** A key Hive and Athena skip: folder markers and files starting with _ or . (e.g. _SUCCESS). */
export function skippedKey(key: string): boolean {
  const base = key.slice(key.lastIndexOf('/') + 1);
  return key.endsWith('/') || base === '' || base.startsWith('_') || base.startsWith('.');
}

export type TableFormat = 'json' | 'parquet';

/** How the table's objects are read; SqlError for what cannot be. */
export function tableFormat(t: CatalogTable): TableFormat {
  if (t.storedAs === 'PARQUET') return 'parquet';
  const serde = t.serde.library ?? '';
  if (serde === OPENX_JSON_SERDE || serde === HIVE_JSON_SERDE) return 'json';
  if (t.storedAs === 'ORC') throw new SqlError(`${t.database}.${t.name} is stored as ORC, which pinstream query does not read`);
  throw new SqlError(`${t.database}.${t.name} uses the SerDe ${serde || '(none)'}: pinstream query reads Parquet tables and JSON tables (${OPENX_JSON_SERDE} or ${HIVE_JSON_SERDE})`);
}

/** A JSON top-level key's value, matched as the OpenX SerDe matches (mapping first, then case-insensitively). */
function jsonColumn(t: CatalogTable, c: CatalogColumn): string {
  const name = c.name.toLowerCase();
  const mapped = Object.entries(t.serde.parameters).find(([k]) => k.toLowerCase() === `mapping.${name}`)?.[1];
  const key = mapped ?? name;
  const exact = `json_extract(r.json, ${sqlString(`$.${JSON.stringify(key)}`)})`;
  const folded = `json_extract(r.json, '$.' || to_json(list_filter(json_keys(r.json), k -> lower(k) = ${sqlString(key.toLowerCase())})[1]))`;
  return `from_json(COALESCE(${exact}, ${folded}), ${sqlString(JSON.stringify(duckType(c.hive)))}) AS ${quoteIdent(name)}`;
}

/**
 * The relation of the table over local files (each with its partition's values): table columns,
 * then partition keys. `parquetColumns` are the (lower-cased) columns the Parquet files have.
 */
export function relationSql(t: CatalogTable, format: TableFormat, files: Array<{ path: string; values: string[] }>, partsTable: string, parquetColumns: Set<string>): string {
  const keyCols = t.partitionKeys.map((k) => `CAST(p.${quoteIdent(k.name.toLowerCase())} AS ${duckType(k.hive)}) AS ${quoteIdent(k.name.toLowerCase())}`);
  if (files.length === 0) {
    const nulls = [...t.columns, ...t.partitionKeys].map((c) => `CAST(NULL AS ${duckType(c.hive)}) AS ${quoteIdent(c.name.toLowerCase())}`);
    return `SELECT ${nulls.join(', ')} WHERE false`;
  }
  const paths = `[${files.map((f) => sqlString(f.path)).join(', ')}]`;
  if (format === 'json') {
    const cols = t.columns.map((c) => jsonColumn(t, c));
    return `SELECT ${[...cols, ...keyCols].join(', ')} FROM read_json_objects(${paths}, format = 'newline_delimited', compression = 'auto_detect', filename = true) r JOIN ${partsTable} p ON p.filename = r.filename`;
  }
  const cols = t.columns.map((c) => {
    const n = c.name.toLowerCase();
    return parquetColumns.has(n) ? `CAST(r.${quoteIdent(n)} AS ${duckType(c.hive)}) AS ${quoteIdent(n)}` : `CAST(NULL AS ${duckType(c.hive)}) AS ${quoteIdent(n)}`;
  });
  return `SELECT ${[...cols, ...keyCols].join(', ')} FROM read_parquet(${paths}, union_by_name = true, filename = true) r JOIN ${partsTable} p ON p.filename = r.filename`;
}
