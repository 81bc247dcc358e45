// The Presto/Trino dialect Athena speaks, rewritten to DuckDB SQL: a focused token-level rewriter
// for the functions and forms queries over Pinpoint data use (no maintained npm transpiler goes
// from Presto to DuckDB: sqlglot is Python, node-sql-parser has no DuckDB output). It owns:
//   - tokenizing (strings, "quoted" and `backquoted` identifiers, comments kept as written),
//   - the function table below (PRESTO_FUNCTIONS: name → rewrite) and CAST / JSON literals,
//   - catalog table references (FROM / JOIN positions, `awsdatacatalog.db.t`, `db.t`, `t`)
//     rewritten to `"db"."t"` and reported, so the engine can define them; CTE names are not tables,
//   - `CROSS JOIN UNNEST(m) AS t(k, v)` over a map, current_date / now() from the caller's clock,
//   - the top-level WHERE's conjuncts on plain columns (for partition pruning).
// What DuckDB already spells the same (date_trunc, date_diff, map_concat, `m['k']`, `a[1]`,
// `CROSS JOIN UNNEST(a) AS t(x)`, INTERVAL '1' DAY, ||, LIKE, …) passes through unchanged.
// Presto divides integers as integers: the engine sets DuckDB's integer_division for that.

export class SqlError extends Error {
  override name = 'SqlError';
}

/** Athena's limit on a query string, in bytes. */
export const MAX_QUERY_STRING_BYTES = 262_144;
/** Deepest parenthesis nesting accepted (the rewriter recurses per level). */
export const MAX_SQL_NESTING = 200;
/** The catalog name Athena gives the Glue Data Catalog in three-part names. */
export const DEFAULT_CATALOG = 'awsdatacatalog';

type Kind = 'ws' | 'word' | 'qident' | 'string' | 'number' | 'punct';
interface Tok {
  kind: Kind;
  text: string;
}

export function tokenize(sql: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i];
    const start = i;
    if (/\s/.test(c)) {
      while (i < n && /\s/.test(sql[i])) i++;
      out.push({ kind: 'ws', text: sql.slice(start, i) });
    } else if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
      out.push({ kind: 'ws', text: sql.slice(start, i) });
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      if (end < 0) throw new SqlError('unterminated /* comment');
      i = end + 2;
      out.push({ kind: 'ws', text: sql.slice(start, i) });
    } else if (c === "'") {
      i++;
      for (;;) {
        if (i >= n) throw new SqlError('unterminated string literal');
        if (sql[i] === "'") {
          if (sql[i + 1] === "'") i += 2;
          else break;
        } else i++;
      }
      i++;
      out.push({ kind: 'string', text: sql.slice(start, i) });
    } else if (c === '"' || c === '`') {
      i++;
      for (;;) {
        if (i >= n) throw new SqlError(`unterminated ${c}quoted${c} identifier`);
        if (sql[i] === c) {
          if (sql[i + 1] === c) i += 2;
          else break;
        } else i++;
      }
      i++;
      const inner = sql.slice(start + 1, i - 1).split(c + c).join(c);
      out.push({ kind: 'qident', text: quoteIdent(inner) });
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(sql[i + 1] ?? ''))) {
      while (i < n && /[0-9.eE]/.test(sql[i])) {
        if ((sql[i] === 'e' || sql[i] === 'E') && (sql[i + 1] === '-' || sql[i + 1] === '+')) i++;
        i++;
      }
      out.push({ kind: 'number', text: sql.slice(start, i) });
    } else if (/[A-Za-z_]/.test(c)) {
      while (i < n && /[A-Za-z0-9_$]/.test(sql[i])) i++;
      out.push({ kind: 'word', text: sql.slice(start, i) });
    } else {
      const two = sql.slice(i, i + 2);
      if (['<=', '>=', '<>', '!=', '||', '->', '::', '=>'].includes(two)) i += 2;
      else i++;
      out.push({ kind: 'punct', text: sql.slice(start, i) });
    }
  }
  return out;
}

/** A DuckDB quoted identifier. */
export const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;
const unquote = (t: Tok) => (t.kind === 'qident' ? t.text.slice(1, -1).replace(/""/g, '"') : t.text);
const lc = (t: Tok | undefined) => (t && t.kind === 'word' ? t.text.toLowerCase() : '');
/** A string literal's value. */
export const stringValue = (t: string) => t.slice(1, -1).replace(/''/g, "'");
const sqlString = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** A table the statement reads: a catalog table or view (database and name folded to lower case). */
export interface TableRef {
  database: string;
  name: string;
}

export interface TranslateOptions {
  /** The database of unqualified table names (Athena's QueryExecutionContext.Database). */
  database: string;
  /** Query start time (current_date, now(), current_timestamp): the caller's clock, in UTC. */
  now: Date;
}

export interface Translated {
  sql: string;
  tables: TableRef[];
}

// Words after which an identifier is an alias or keyword, not the start of a table reference.
const NOT_TABLE = new Set(['select', 'unnest', 'lateral', 'values', 'table']);
const CLAUSE_END = new Set(['where', 'group', 'order', 'having', 'limit', 'union', 'intersect', 'except', 'window', 'on', 'using', 'offset', 'fetch', 'qualify']);

/** Rewrites one Presto statement to DuckDB and lists the catalog tables it names. */
export function translate(sql: string, o: TranslateOptions): Translated {
  if (Buffer.byteLength(sql) > MAX_QUERY_STRING_BYTES) throw new SqlError(`the query string is longer than ${MAX_QUERY_STRING_BYTES} bytes`);
  const toks = tokenize(sql);
  const ctes = cteNames(toks);
  const tables: TableRef[] = [];
  const w = new Rewriter(toks, o, ctes, tables);
  const out = w.run(0, toks.length, 0);
  return { sql: out, tables: dedupe(tables) };
}

function dedupe(t: TableRef[]): TableRef[] {
  const seen = new Set<string>();
  return t.filter((r) => {
    const k = `${r.database}.${r.name}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Names defined by WITH (`name [(cols)] AS (`): they are not catalog tables. */
function cteNames(toks: Tok[]): Set<string> {
  const sig = toks.filter((t) => t.kind !== 'ws');
  const names = new Set<string>();
  for (let i = 1; i < sig.length; i++) {
    const prev = sig[i - 1];
    if (!(lc(prev) === 'with' || lc(prev) === 'recursive' || prev.text === ',')) continue;
    if (sig[i].kind !== 'word' && sig[i].kind !== 'qident') continue;
    let j = i + 1;
    if (sig[j]?.text === '(') {
      while (j < sig.length && sig[j].text !== ')') j++;
      j++;
    }
    if (lc(sig[j]) === 'as' && sig[j + 1]?.text === '(') names.add(unquote(sig[i]).toLowerCase());
  }
  return names;
}

class Rewriter {
  constructor(
    private toks: Tok[],
    private o: TranslateOptions,
    private ctes: Set<string>,
    private tables: TableRef[],
  ) {}

  /** Index of the next significant token at or after i (< end), or end. */
  private next(i: number, end: number): number {
    while (i < end && this.toks[i].kind === 'ws') i++;
    return i;
  }

  /** The index just past the parenthesis closing the one at `open`. */
  private close(open: number, end: number): number {
    let depth = 0;
    for (let i = open; i < end; i++) {
      const t = this.toks[i];
      if (t.kind !== 'punct') continue;
      if (t.text === '(' || t.text === '[') depth++;
      else if (t.text === ')' || t.text === ']') {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
    throw new SqlError('unbalanced parentheses');
  }

  /** Splits toks[start, end) on top-level commas. */
  private args(start: number, end: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    let depth = 0;
    let from = start;
    for (let i = start; i < end; i++) {
      const t = this.toks[i];
      if (t.kind !== 'punct') continue;
      if (t.text === '(' || t.text === '[') depth++;
      else if (t.text === ')' || t.text === ']') depth--;
      else if (t.text === ',' && depth === 0) {
        out.push([from, i]);
        from = i + 1;
      }
    }
    if (this.next(from, end) < end || out.length > 0) out.push([from, end]);
    return out;
  }

  run(start: number, end: number, depth: number): string {
    if (depth > MAX_SQL_NESTING) throw new SqlError(`the query nests parentheses deeper than ${MAX_SQL_NESTING}`);
    const toks = this.toks;
    let out = '';
    // Whether a comma at this level separates FROM items (so the next identifier is a table).
    let inFrom = false;
    let expectTable = false;
    for (let i = start; i < end; ) {
      const t = toks[i];
      if (t.kind === 'ws') {
        out += t.text;
        i++;
        continue;
      }
      const word = lc(t);
      if (word === 'from' || word === 'join') {
        out += t.text;
        inFrom = true;
        expectTable = true;
        i++;
        continue;
      }
      if (CLAUSE_END.has(word) || word === 'select') inFrom = false;
      if (t.text === ',' && inFrom) {
        out += t.text;
        expectTable = true;
        i++;
        continue;
      }
      if (expectTable) {
        expectTable = false;
        if ((t.kind === 'word' && !NOT_TABLE.has(word)) || t.kind === 'qident') {
          const ref = this.tableRef(i, end);
          if (ref) {
            out += ref.sql;
            i = ref.end;
            continue;
          }
        }
      }
      // CROSS JOIN UNNEST(m) AS t(k, v): Presto unnests a map into key and value columns.
      if (word === 'unnest') {
        const u = this.unnest(i, end, depth);
        if (u) {
          out += u.sql;
          i = u.end;
          continue;
        }
      }
      if (word === 'json' && toks[this.next(i + 1, end)]?.kind === 'string') {
        const s = this.next(i + 1, end);
        out += `CAST(${toks[s].text} AS JSON)`;
        i = s + 1;
        continue;
      }
      if ((word === 'current_date' || word === 'current_timestamp' || word === 'localtimestamp') && toks[this.next(i + 1, end)]?.text !== '(') {
        out += word === 'current_date' ? `DATE '${this.o.now.toISOString().slice(0, 10)}'` : this.nowLiteral();
        i++;
        continue;
      }
      if (t.kind === 'word') {
        const p = this.next(i + 1, end);
        if (toks[p]?.text === '(' && lc(toks[this.prevSig(i, start)]) !== 'as' && toks[this.prevSig(i, start)]?.text !== '.') {
          const close = this.close(p, end);
          out += this.call(t.text, p + 1, close - 1, depth);
          i = close;
          continue;
        }
      }
      if (t.text === '(') {
        const close = this.close(i, end);
        out += '(' + this.run(i + 1, close - 1, depth + 1) + ')';
        i = close;
        continue;
      }
      out += t.text;
      i++;
    }
    return out;
  }

  private prevSig(i: number, start: number): number {
    let j = i - 1;
    while (j >= start && this.toks[j].kind === 'ws') j--;
    return j;
  }

  private nowLiteral(): string {
    return `TIMESTAMP '${this.o.now.toISOString().replace('T', ' ').replace('Z', '')}'`;
  }

  /** A table reference at i: `a`, `a.b` or `cat.a.b`, not followed by `(`. */
  private tableRef(i: number, end: number): { sql: string; end: number } | undefined {
    const parts: string[] = [];
    let j = i;
    for (;;) {
      const t = this.toks[j];
      if (!t || (t.kind !== 'word' && t.kind !== 'qident')) return undefined;
      parts.push(unquote(t).toLowerCase());
      const k = this.next(j + 1, end);
      if (this.toks[k]?.text === '.') {
        j = this.next(k + 1, end);
        continue;
      }
      if (this.toks[k]?.text === '(') return undefined;
      j = j + 1;
      break;
    }
    if (parts.length === 1 && this.ctes.has(parts[0])) return undefined;
    if (parts.length > 3) throw new SqlError(`${parts.join('.')} is not a table name: use [catalog.]database.table`);
    if (parts.length === 3 && parts[0] !== DEFAULT_CATALOG) throw new SqlError(`catalog ${parts[0]} does not exist: the only catalog is ${DEFAULT_CATALOG}`);
    const name = parts[parts.length - 1];
    const database = parts.length >= 2 ? parts[parts.length - 2] : this.o.database.toLowerCase();
    this.tables.push({ database, name });
    return { sql: `${quoteIdent(database)}.${quoteIdent(name)}`, end: j };
  }

  private unnest(i: number, end: number, depth: number): { sql: string; end: number } | undefined {
    const p = this.next(i + 1, end);
    if (this.toks[p]?.text !== '(') return undefined;
    const close = this.close(p, end);
    let k = this.next(close, end);
    let ordinality = false;
    if (lc(this.toks[k]) === 'with' && lc(this.toks[this.next(k + 1, end)]) === 'ordinality') {
      ordinality = true;
      k = this.next(this.next(k + 1, end) + 1, end);
    }
    if (lc(this.toks[k]) === 'as') k = this.next(k + 1, end);
    const alias = this.toks[k];
    if (!alias || (alias.kind !== 'word' && alias.kind !== 'qident')) return undefined;
    const cp = this.next(k + 1, end);
    if (this.toks[cp]?.text !== '(') return undefined;
    const cclose = this.close(cp, end);
    const cols = this.args(cp + 1, cclose - 1).map(([a, b]) => this.toks.slice(a, b).map((t) => t.text).join('').trim());
    const exprs = this.args(p + 1, close - 1).map(([a, b]) => this.run(a, b, depth + 1).trim());
    const want = exprs.length + (ordinality ? 1 : 0);
    const items: string[] = [];
    if (exprs.length === 1 && cols.length === want + 1) {
      // One argument and two names: a map's keys and values.
      items.push(`unnest(map_keys(${exprs[0]})) AS ${cols[0]}`, `unnest(map_values(${exprs[0]})) AS ${cols[1]}`);
    } else if (cols.length === want) {
      exprs.forEach((e, x) => items.push(`unnest(${e}) AS ${cols[x]}`));
    } else {
      throw new SqlError(`UNNEST with ${exprs.length} argument(s) names ${cols.length} column(s): give one per array (two for a map)`);
    }
    if (ordinality) {
      if (items.length !== exprs.length) throw new SqlError('UNNEST of a map WITH ORDINALITY is not supported');
      items.push(`generate_subscripts(${exprs[0]}, 1) AS ${cols[cols.length - 1]}`);
    }
    return { sql: `(SELECT ${items.join(', ')}) AS ${alias.text}`, end: cclose };
  }

  private call(name: string, start: number, end: number, depth: number): string {
    const fn = name.toLowerCase();
    if (fn === 'cast' || fn === 'try_cast') return this.cast(fn, start, end, depth);
    const rewrite = PRESTO_FUNCTIONS[fn];
    if (LEFT_OUT.has(fn)) throw new SqlError(`${fn}() is not supported by pinstream query (see the README's list of Presto functions)`);
    // Anything else (DuckDB's own functions, IN (…), OVER (…), subqueries) keeps its text as rewritten.
    if (!rewrite) return `${name}(${this.run(start, end, depth + 1)})`;
    const ranges = this.args(start, end);
    const raw = ranges.map(([a, b]) => this.toks.slice(a, b).filter((t) => t.kind !== 'ws'));
    const args = ranges.map(([a, b]) => this.run(a, b, depth + 1).trim());
    return rewrite(args, { raw, now: () => this.nowLiteral(), name });
  }

  private cast(fn: string, start: number, end: number, depth: number): string {
    // CAST(expr AS type): find the top-level AS.
    let asAt = -1;
    let d = 0;
    for (let i = start; i < end; i++) {
      const t = this.toks[i];
      if (t.text === '(' || t.text === '[') d++;
      else if (t.text === ')' || t.text === ']') d--;
      else if (d === 0 && lc(t) === 'as') asAt = i;
    }
    if (asAt < 0) throw new SqlError(`${fn.toUpperCase()} needs AS type`);
    const expr = this.run(start, asAt, depth + 1).trim();
    const typeText = this.toks.slice(asAt + 1, end).map((t) => t.text).join('').trim();
    const type = prestoType(typeText);
    const duck = fn === 'try_cast' ? 'TRY_CAST' : 'CAST';
    if (type === 'JSON') return `to_json(${expr})`;
    if (/^(MAP|STRUCT)\(|\[\]$/.test(type)) {
      // Presto casts JSON (or a value through JSON) to maps, arrays and rows leniently.
      return `from_json(to_json(${expr}), ${sqlString(JSON.stringify(type))})`;
    }
    return `${duck}(${expr} AS ${type})`;
  }
}

/** A Presto type name as DuckDB spells it: ARRAY(T) → T[], ROW(a T) → STRUCT(a T), varchar(n) → VARCHAR. */
export function prestoType(text: string): string {
  const toks = tokenize(text).filter((t) => t.kind !== 'ws');
  let i = 0;
  const type = (): string => {
    const t = toks[i++];
    if (!t) throw new SqlError(`"${text}" is not a type`);
    const w = unquote(t).toLowerCase();
    const open = () => {
      if (toks[i]?.text !== '(') throw new SqlError(`${w} needs (…) in "${text}"`);
      i++;
    };
    const shut = () => {
      if (toks[i]?.text !== ')') throw new SqlError(`expected ) in "${text}"`);
      i++;
    };
    switch (w) {
      case 'array': {
        open();
        const e = type();
        shut();
        return `${e}[]`;
      }
      case 'map': {
        open();
        const k = type();
        if (toks[i++]?.text !== ',') throw new SqlError(`map needs two types in "${text}"`);
        const v = type();
        shut();
        return `MAP(${k}, ${v})`;
      }
      case 'row': {
        open();
        const fields: string[] = [];
        for (;;) {
          const n = toks[i++];
          if (!n) throw new SqlError(`"${text}" is not a type`);
          fields.push(`${quoteIdent(unquote(n))} ${type()}`);
          if (toks[i]?.text === ',') i++;
          else break;
        }
        shut();
        return `STRUCT(${fields.join(', ')})`;
      }
      case 'varchar':
      case 'char':
      case 'string':
        if (toks[i]?.text === '(') {
          i++;
          i++;
          shut();
        }
        return 'VARCHAR';
      case 'decimal':
        if (toks[i]?.text === '(') {
          const p = toks[i + 1]?.text;
          const s = toks[i + 2]?.text === ',' ? toks[i + 3]?.text : '0';
          i += toks[i + 2]?.text === ',' ? 4 : 2;
          shut();
          return `DECIMAL(${p}, ${s})`;
        }
        return 'DECIMAL(38, 0)';
      case 'timestamp':
        if (lc(toks[i]) === 'with') {
          i += 3;
          return 'TIMESTAMPTZ';
        }
        return 'TIMESTAMP';
      case 'real':
        return 'FLOAT';
      case 'json':
        return 'JSON';
      case 'varbinary':
        return 'BLOB';
      case 'bigint':
      case 'integer':
      case 'int':
      case 'smallint':
      case 'tinyint':
      case 'double':
      case 'boolean':
      case 'date':
      case 'float':
        return w.toUpperCase();
      default:
        throw new SqlError(`type ${w} is not supported`);
    }
  };
  const out = type();
  if (i !== toks.length) throw new SqlError(`"${text}" is not a type`);
  return out;
}

interface CallContext {
  /** Each argument's significant tokens as written (for literal-only arguments). */
  raw: Tok[][];
  now: () => string;
  name: string;
}

const literalArg = (c: CallContext, n: number, what: string): string => {
  const r = c.raw[n];
  if (!r || r.length !== 1 || r[0].kind !== 'string') throw new SqlError(`${c.name}(): the ${what} must be a string literal`);
  return stringValue(r[0].text);
};
const arity = (c: CallContext, a: string[], min: number, max = min) => {
  if (a.length < min || a.length > max) throw new SqlError(`${c.name}() takes ${min === max ? min : `${min} to ${max}`} argument(s), got ${a.length}`);
};

/** MySQL date format specifiers (date_parse / date_format) to DuckDB strftime / strptime. */
export function mysqlFormat(f: string, parsing: boolean): string {
  const map: Record<string, string> = {
    Y: '%Y', y: '%y', m: '%m', c: parsing ? '%m' : '%-m', d: '%d', e: parsing ? '%d' : '%-d', H: '%H', k: parsing ? '%H' : '%-H',
    h: '%I', I: '%I', l: parsing ? '%I' : '%-I', i: '%M', s: '%S', S: '%S', f: '%f', p: '%p', T: '%H:%M:%S', r: '%I:%M:%S %p',
    M: '%B', b: '%b', W: '%A', a: '%a', j: '%j', v: '%V', '%': '%%',
  };
  let out = '';
  for (let i = 0; i < f.length; i++) {
    if (f[i] !== '%') {
      out += f[i];
      continue;
    }
    const s = f[++i];
    const m = s === undefined ? undefined : map[s];
    if (!m) throw new SqlError(`date format specifier %${s ?? ''} is not supported`);
    out += m;
  }
  return out;
}

/** Joda/Java date patterns (format_datetime, parse_datetime, partition projection) to strftime. */
export function jodaFormat(f: string): string {
  const map: Record<string, string> = {
    yyyy: '%Y', yy: '%y', MMMM: '%B', MMM: '%b', MM: '%m', M: '%-m', dd: '%d', d: '%-d', HH: '%H', H: '%-H', hh: '%I', h: '%-I',
    mm: '%M', m: '%-M', ss: '%S', s: '%-S', SSS: '%g', SSSSSS: '%f', a: '%p', EEEE: '%A', EEE: '%a', Z: '%z', ZZ: '%z', DDD: '%j',
  };
  let out = '';
  for (let i = 0; i < f.length; ) {
    const c = f[i];
    if (c === "'") {
      const e = f.indexOf("'", i + 1);
      if (e < 0) throw new SqlError(`unterminated quote in date pattern ${f}`);
      out += e === i + 1 ? "'" : f.slice(i + 1, e).replace(/%/g, '%%');
      i = e + 1;
      continue;
    }
    if (/[A-Za-z]/.test(c)) {
      let j = i;
      while (f[j] === c) j++;
      const run = f.slice(i, j);
      const m = map[run] ?? (c === 'y' ? '%Y' : undefined);
      if (!m) throw new SqlError(`date pattern letters ${run} are not supported`);
      out += m;
      i = j;
      continue;
    }
    out += c === '%' ? '%%' : c;
    i++;
  }
  return out;
}

type Rewrite = (args: string[], c: CallContext) => string;

/** Presto functions rewritten for DuckDB. Names missing here pass through as DuckDB spells them. */
export const PRESTO_FUNCTIONS: Record<string, Rewrite> = {
  from_unixtime: (a, c) => {
    arity(c, a, 1);
    return `make_timestamp(CAST(round(CAST(${a[0]} AS DOUBLE) * 1000000) AS BIGINT))`;
  },
  to_unixtime: (a, c) => (arity(c, a, 1), `epoch(${a[0]})`),
  date_parse: (a, c) => (arity(c, a, 2), `strptime(${a[0]}, ${sqlString(mysqlFormat(literalArg(c, 1, 'format'), true))})`),
  date_format: (a, c) => (arity(c, a, 2), `strftime(${a[0]}, ${sqlString(mysqlFormat(literalArg(c, 1, 'format'), false))})`),
  format_datetime: (a, c) => (arity(c, a, 2), `strftime(${a[0]}, ${sqlString(jodaFormat(literalArg(c, 1, 'format')))})`),
  parse_datetime: (a, c) => (arity(c, a, 2), `strptime(${a[0]}, ${sqlString(jodaFormat(literalArg(c, 1, 'format')))})`),
  from_iso8601_timestamp: (a, c) => (arity(c, a, 1), `CAST(${a[0]} AS TIMESTAMPTZ)`),
  from_iso8601_date: (a, c) => (arity(c, a, 1), `CAST(${a[0]} AS DATE)`),
  json_extract_scalar: (a, c) => {
    arity(c, a, 2);
    // Presto answers NULL when the path names an object or array; DuckDB would give its text.
    return `(CASE WHEN json_type(json_extract(${a[0]}, ${a[1]})) IN ('OBJECT', 'ARRAY') THEN NULL ELSE json_extract_string(${a[0]}, ${a[1]}) END)`;
  },
  json_extract: (a, c) => (arity(c, a, 2), `json_extract(${a[0]}, ${a[1]})`),
  json_parse: (a, c) => (arity(c, a, 1), `json(${a[0]})`),
  json_format: (a, c) => (arity(c, a, 1), `CAST(${a[0]} AS VARCHAR)`),
  json_array_length: (a, c) => (arity(c, a, 1), `json_array_length(${a[0]})`),
  element_at: (a, c) => (arity(c, a, 2), `(${a[0]})[${a[1]}]`),
  approx_distinct: (a, c) => {
    arity(c, a, 1, 2);
    // Exact: within any error bound approx_distinct promises, and the same answer on every run.
    return `count(DISTINCT ${a[0]})`;
  },
  regexp_like: (a, c) => (arity(c, a, 2), `regexp_matches(${a[0]}, ${a[1]})`),
  now: (a, c) => (arity(c, a, 0), c.now()),
  current_timestamp: (a, c) => (arity(c, a, 0), c.now()),
  date_add: (a, c) => {
    arity(c, a, 3);
    const unit = literalArg(c, 0, 'unit').toLowerCase();
    if (!['millisecond', 'second', 'minute', 'hour', 'day', 'week', 'month', 'quarter', 'year'].includes(unit)) throw new SqlError(`date_add(): unit ${unit} is not supported`);
    return `(${a[2]} + (${a[1]}) * INTERVAL 1 ${unit === 'quarter' ? 'MONTH' : unit.toUpperCase()}${unit === 'quarter' ? ' * 3' : ''})`;
  },
  day_of_week: (a, c) => (arity(c, a, 1), `isodow(${a[0]})`),
  dow: (a, c) => (arity(c, a, 1), `isodow(${a[0]})`),
  day_of_year: (a, c) => (arity(c, a, 1), `dayofyear(${a[0]})`),
  doy: (a, c) => (arity(c, a, 1), `dayofyear(${a[0]})`),
  arbitrary: (a, c) => (arity(c, a, 1), `any_value(${a[0]})`),
  split: (a, c) => (arity(c, a, 2), `string_split(${a[0]}, ${a[1]})`),
  contains: (a, c) => (arity(c, a, 2), `list_contains(${a[0]}, ${a[1]})`),
  array_join: (a, c) => (arity(c, a, 2), `array_to_string(${a[0]}, ${a[1]})`),
  typeof: (a, c) => (arity(c, a, 1), `lower(typeof(${a[0]}))`),
  date: (a, c) => (arity(c, a, 1), `CAST(${a[0]} AS DATE)`),
};

/** Presto functions known to differ in DuckDB and not rewritten: refused rather than answered wrongly. */
export const LEFT_OUT = new Set([
  'try', 'cardinality', 'url_extract_host', 'url_extract_path', 'url_extract_parameter', 'to_iso8601', 'at_timezone', 'with_timezone',
  'from_unixtime_nanos', 'map_agg', 'histogram', 'approx_percentile', 'json_size', 'json_array_contains', 'transform', 'reduce', 'zip',
  'regexp_split', 'from_base64', 'to_base64', 'sequence',
]);

/** A conjunct of a WHERE clause comparing a column with literals (what partition pruning evaluates). */
export interface Predicate {
  column: string;
  op: '=' | '<>' | '<' | '<=' | '>' | '>=' | 'in' | 'between';
  values: string[];
}

/**
 * The conjuncts of the statement's outermost WHERE (AND at the top level) of the forms
 * `col op 'literal'`, `col IN ('a', …)`, `col BETWEEN 'a' AND 'b'` (col plain or `alias.col`,
 * literals strings or numbers). Anything else is left out: pruning only ever keeps more.
 */
export function wherePredicates(sql: string): Predicate[] {
  const toks = tokenize(sql).filter((t) => t.kind !== 'ws');
  let depth = 0;
  let start = -1;
  let stop = toks.length;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i];
    if (t.text === '(') depth++;
    else if (t.text === ')') depth--;
    else if (depth === 0 && start < 0 && lc(t) === 'where') start = i + 1;
    else if (depth === 0 && start >= 0 && ['group', 'order', 'having', 'limit', 'union', 'intersect', 'except', 'window', 'offset'].includes(lc(t))) {
      stop = i;
      break;
    }
  }
  if (start < 0) return [];
  // Split on top-level AND, minding BETWEEN … AND ….
  const parts: Tok[][] = [];
  let cur: Tok[] = [];
  depth = 0;
  let between = false;
  for (let i = start; i < stop; i++) {
    const t = toks[i];
    if (t.text === '(') depth++;
    else if (t.text === ')') depth--;
    if (depth === 0 && lc(t) === 'or') return parts.length === 0 && i < stop ? [] : collect(parts);
    if (depth === 0 && lc(t) === 'between') between = true;
    if (depth === 0 && lc(t) === 'and') {
      if (between) between = false;
      else {
        parts.push(cur);
        cur = [];
        continue;
      }
    }
    cur.push(t);
  }
  parts.push(cur);
  return collect(parts);

  function collect(ps: Tok[][]): Predicate[] {
    // A top-level OR anywhere makes the conjunct list meaningless: nothing is pruned.
    if (toks.slice(start, stop).some((t, i, a) => lc(t) === 'or' && depthAt(a, i) === 0)) return [];
    const out: Predicate[] = [];
    for (const p of ps) {
      const pred = predicate(p);
      if (pred) out.push(pred);
    }
    return out;
  }
}

function depthAt(a: Tok[], i: number): number {
  let d = 0;
  for (let j = 0; j < i; j++) {
    if (a[j].text === '(') d++;
    else if (a[j].text === ')') d--;
  }
  return d;
}

function predicate(p: Tok[]): Predicate | undefined {
  let i = 0;
  const ident = (t: Tok | undefined) => t && (t.kind === 'word' || t.kind === 'qident');
  if (!ident(p[0])) return undefined;
  let column = unquote(p[0]).toLowerCase();
  i = 1;
  while (p[i]?.text === '.' && ident(p[i + 1])) {
    column = unquote(p[i + 1]).toLowerCase();
    i += 2;
  }
  const lit = (t: Tok | undefined) => (t?.kind === 'string' ? stringValue(t.text) : t?.kind === 'number' ? t.text : undefined);
  const op = p[i]?.text.toLowerCase();
  if (op && ['=', '<>', '!=', '<', '<=', '>', '>='].includes(op) && p.length === i + 2) {
    const v = lit(p[i + 1]);
    return v === undefined ? undefined : { column, op: (op === '!=' ? '<>' : op) as Predicate['op'], values: [v] };
  }
  if (op === 'between' && p.length === i + 4 && lc(p[i + 2]) === 'and') {
    const a = lit(p[i + 1]);
    const b = lit(p[i + 3]);
    return a === undefined || b === undefined ? undefined : { column, op: 'between', values: [a, b] };
  }
  if (op === 'in' && p[i + 1]?.text === '(' && p[p.length - 1]?.text === ')') {
    const values: string[] = [];
    for (let j = i + 2; j < p.length - 1; j++) {
      if (p[j].text === ',') continue;
      const v = lit(p[j]);
      if (v === undefined) return undefined;
      values.push(v);
    }
    return { column, op: 'in', values };
  }
  return undefined;
}

/** Whether a partition value satisfies every predicate on its column (numbers compared as numbers). */
export function satisfies(value: string, preds: Predicate[], numeric: boolean): boolean {
  const cmp = (a: string, b: string) => (numeric ? Number(a) - Number(b) : a < b ? -1 : a > b ? 1 : 0);
  return preds.every((p) => {
    switch (p.op) {
      case '=':
        return cmp(value, p.values[0]) === 0;
      case '<>':
        return cmp(value, p.values[0]) !== 0;
      case '<':
        return cmp(value, p.values[0]) < 0;
      case '<=':
        return cmp(value, p.values[0]) <= 0;
      case '>':
        return cmp(value, p.values[0]) > 0;
      case '>=':
        return cmp(value, p.values[0]) >= 0;
      case 'in':
        return p.values.some((v) => cmp(value, v) === 0);
      case 'between':
        return cmp(value, p.values[0]) >= 0 && cmp(value, p.values[1]) <= 0;
    }
  });
}
