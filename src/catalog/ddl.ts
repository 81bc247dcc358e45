// Athena-style DDL for the catalog: a focused hand parser for exactly the statements `pinstream
// query` runs against the Glue API (no npm library parses Hive DDL without pulling in a whole SQL
// engine's grammar). Statements, keywords case-insensitive, identifiers plain or `backquoted`
// (folded to lower case as Glue folds them):
//   CREATE DATABASE|SCHEMA [IF NOT EXISTS] db [COMMENT '…'] [LOCATION '…'] [WITH DBPROPERTIES ('k'='v', …)]
//   CREATE EXTERNAL TABLE [IF NOT EXISTS] [db.]t (col type [COMMENT '…'], …) [COMMENT '…']
//     [PARTITIONED BY (col type [COMMENT '…'], …)]
//     [ROW FORMAT SERDE '…' [WITH SERDEPROPERTIES ('k'='v', …)] | ROW FORMAT DELIMITED [FIELDS TERMINATED BY '…']]
//     [STORED AS PARQUET|ORC|TEXTFILE] LOCATION '…' [TBLPROPERTIES ('k'='v', …)]
//   DROP TABLE [IF EXISTS] [db.]t          DROP DATABASE|SCHEMA [IF EXISTS] db [CASCADE]
//   ALTER TABLE [db.]t ADD [IF NOT EXISTS] PARTITION (k='v', …) [LOCATION '…'] [PARTITION (…) [LOCATION '…']]…
//   SHOW TABLES [IN db] ['pattern']         SHOW DATABASES|SCHEMAS
//   DESCRIBE|DESC [db.]t
// Column types go through the Hive type parser (src/catalog/hive-types.ts) and are stored in its
// canonical form; a statement that is none of these is a DdlError saying what was expected where.
// The result is what to send to Glue (TableInput as Athena writes it), not the sending itself.

import { formatHiveType, HiveTypeError, parseHiveType } from './hive-types.js';
import { STORAGE_FORMATS } from './catalog.js';

export class DdlError extends Error {
  override name = 'DdlError';
}

export interface DdlColumn {
  Name: string;
  Type: string;
  Comment?: string;
}

export type DdlStatement =
  | { kind: 'create-database'; ifNotExists: boolean; input: { Name: string; Description?: string; LocationUri?: string; Parameters?: Record<string, string> } }
  | { kind: 'create-table'; ifNotExists: boolean; database?: string; input: TableInputDdl }
  | { kind: 'drop-table'; ifExists: boolean; database?: string; name: string }
  | { kind: 'drop-database'; ifExists: boolean; name: string; cascade: boolean }
  | { kind: 'add-partitions'; ifNotExists: boolean; database?: string; table: string; partitions: Array<{ spec: Array<[string, string]>; location?: string }> }
  | { kind: 'show-tables'; database?: string; pattern?: string }
  | { kind: 'show-databases' }
  | { kind: 'describe'; database?: string; table: string };

export interface TableInputDdl {
  Name: string;
  Description?: string;
  TableType: 'EXTERNAL_TABLE';
  Parameters: Record<string, string>;
  PartitionKeys: DdlColumn[];
  StorageDescriptor: {
    Columns: DdlColumn[];
    Location: string;
    InputFormat: string;
    OutputFormat: string;
    Compressed: boolean;
    NumberOfBuckets: number;
    SerdeInfo: { SerializationLibrary: string; Parameters: Record<string, string> };
    StoredAsSubDirectories: boolean;
  };
}

/** Whether `sql` is one statement of the DDL above (what `pinstream query` sends to the catalog). */
export function isCatalogStatement(sql: string): boolean {
  const s = stripComments(sql).trim().replace(/;\s*$/, '');
  if (s.includes(';')) return false;
  return /^(create\s+(external\s+table|database|schema)|drop\s+(table|database|schema)|alter\s+table\s+\S+\s+add\b|show\s+(tables|databases|schemas)|desc(ribe)?\s)/i.test(s);
}

function stripComments(sql: string): string {
  return sql.replace(/^\s*(--[^\n]*\n\s*)+/, '');
}

type Tok = { kind: 'word' | 'ident' | 'string' | 'number' | 'punct'; text: string; pos: number };

function tokenize(s: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '-' && s[i + 1] === '-') {
      while (i < s.length && s[i] !== '\n') i++;
    } else if (c === "'" || c === '"') {
      const pos = i;
      let v = '';
      i++;
      for (;;) {
        if (i >= s.length) throw new DdlError(`unterminated string starting at position ${pos}`);
        if (s[i] === '\\' && i + 1 < s.length) {
          v += s[i + 1];
          i += 2;
        } else if (s[i] === c) {
          if (s[i + 1] === c) {
            v += c;
            i += 2;
            continue;
          }
          i++;
          break;
        } else v += s[i++];
      }
      // Athena quotes identifiers with backticks and strings with either quote.
      out.push({ kind: 'string', text: v, pos });
    } else if (c === '`') {
      const end = s.indexOf('`', i + 1);
      if (end < 0) throw new DdlError(`unterminated \`identifier\` at position ${i}`);
      out.push({ kind: 'ident', text: s.slice(i + 1, end), pos: i });
      i = end + 1;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i, i + 1024))!;
      out.push({ kind: 'word', text: m[0], pos: i });
      i += m[0].length;
    } else if (/[0-9]/.test(c)) {
      const m = /^\d+/.exec(s.slice(i, i + 64))!;
      out.push({ kind: 'number', text: m[0], pos: i });
      i += m[0].length;
    } else if ('(),.=;<>:'.includes(c)) {
      out.push({ kind: 'punct', text: c, pos: i });
      i++;
    } else throw new DdlError(`unexpected '${c}' at position ${i}`);
  }
  return out;
}

/** Parses one DDL statement. */
export function parseDdl(sql: string): DdlStatement {
  return new DdlParser(sql).statement();
}

class DdlParser {
  private t: Tok[];
  private i = 0;
  constructor(private sql: string) {
    this.t = tokenize(sql);
  }

  private peek(): Tok | undefined {
    return this.t[this.i];
  }
  private fail(why: string): never {
    const t = this.peek();
    throw new DdlError(`${why}, found ${t ? `'${t.text}' at position ${t.pos}` : 'the end of the statement'}`);
  }
  private is(word: string): boolean {
    const t = this.peek();
    return t?.kind === 'word' && t.text.toUpperCase() === word;
  }
  private accept(...words: string[]): boolean {
    const save = this.i;
    for (const w of words) {
      if (!this.is(w)) {
        this.i = save;
        return false;
      }
      this.i++;
    }
    return true;
  }
  private expect(...words: string[]): void {
    if (!this.accept(...words)) this.fail(`expected ${words.join(' ')}`);
  }
  private isPunct(p: string): boolean {
    const t = this.peek();
    return t?.kind === 'punct' && t.text === p;
  }
  private punct(p: string): void {
    if (!this.isPunct(p)) this.fail(`expected '${p}'`);
    this.i++;
  }
  private ident(what: string): string {
    const t = this.peek();
    if (!t || (t.kind !== 'word' && t.kind !== 'ident')) return this.fail(`expected ${what}`);
    this.i++;
    return t.text.toLowerCase();
  }
  private string(what: string): string {
    const t = this.peek();
    if (t?.kind !== 'string') return this.fail(`expected ${what} (a quoted string)`);
    this.i++;
    return t.text;
  }
  /** `[db.]name` */
  private qualified(what: string): { database?: string; name: string } {
    const first = this.ident(what);
    if (this.isPunct('.')) {
      this.i++;
      return { database: first, name: this.ident(what) };
    }
    return { name: first };
  }
  private properties(): Record<string, string> {
    this.punct('(');
    const out: Record<string, string> = {};
    for (;;) {
      const k = this.string('a property name');
      this.punct('=');
      out[k] = this.string('a property value');
      if (this.isPunct(',')) {
        this.i++;
        continue;
      }
      this.punct(')');
      return out;
    }
  }
  private end(): void {
    if (this.isPunct(';')) this.i++;
    if (this.i < this.t.length) this.fail('expected the end of the statement');
  }

  /** A column type: the tokens up to the next top-level ',' or ')' or COMMENT, as the Hive parser reads them. */
  private columnType(column: string): string {
    const start = this.peek();
    if (!start) return this.fail(`expected the type of column ${column}`);
    let depth = 0;
    let endPos = start.pos;
    while (this.i < this.t.length) {
      const t = this.t[this.i];
      if (depth === 0 && ((t.kind === 'punct' && (t.text === ',' || t.text === ')')) || (t.kind === 'word' && t.text.toUpperCase() === 'COMMENT'))) break;
      if (t.kind === 'punct' && (t.text === '<' || t.text === '(')) depth++;
      if (t.kind === 'punct' && (t.text === '>' || t.text === ')')) depth--;
      endPos = t.pos + (t.kind === 'ident' ? t.text.length + 2 : t.text.length);
      this.i++;
    }
    const text = this.sql.slice(start.pos, endPos);
    try {
      return formatHiveType(parseHiveType(text));
    } catch (e) {
      if (e instanceof HiveTypeError) throw new DdlError(`column ${column}: ${e.message}`);
      throw e;
    }
  }
  private columns(): DdlColumn[] {
    this.punct('(');
    const out: DdlColumn[] = [];
    const seen = new Set<string>();
    for (;;) {
      const name = this.ident('a column name');
      if (seen.has(name)) this.fail(`column ${name} is declared twice`);
      seen.add(name);
      const col: DdlColumn = { Name: name, Type: this.columnType(name) };
      if (this.accept('COMMENT')) col.Comment = this.string('a comment');
      out.push(col);
      if (this.isPunct(',')) {
        this.i++;
        continue;
      }
      this.punct(')');
      return out;
    }
  }

  statement(): DdlStatement {
    if (this.accept('CREATE')) {
      if (this.accept('DATABASE') || this.accept('SCHEMA')) return this.createDatabase();
      this.expect('EXTERNAL', 'TABLE');
      return this.createTable();
    }
    if (this.accept('DROP')) {
      if (this.accept('TABLE')) {
        const ifExists = this.accept('IF', 'EXISTS');
        const q = this.qualified('a table name');
        this.end();
        return { kind: 'drop-table', ifExists, database: q.database, name: q.name };
      }
      if (!this.accept('DATABASE') && !this.accept('SCHEMA')) this.fail('expected TABLE or DATABASE');
      const ifExists = this.accept('IF', 'EXISTS');
      const name = this.ident('a database name');
      const cascade = this.accept('CASCADE');
      if (!cascade) this.accept('RESTRICT');
      this.end();
      return { kind: 'drop-database', ifExists, name, cascade };
    }
    if (this.accept('ALTER', 'TABLE')) return this.addPartitions();
    if (this.accept('SHOW')) {
      if (this.accept('DATABASES') || this.accept('SCHEMAS')) {
        this.end();
        return { kind: 'show-databases' };
      }
      this.expect('TABLES');
      let database: string | undefined;
      if (this.accept('IN') || this.accept('FROM')) database = this.ident('a database name');
      const pattern = this.peek()?.kind === 'string' ? this.string('a pattern') : undefined;
      this.end();
      return { kind: 'show-tables', database, pattern };
    }
    if (this.accept('DESCRIBE') || this.accept('DESC')) {
      const q = this.qualified('a table name');
      this.end();
      return { kind: 'describe', database: q.database, table: q.name };
    }
    return this.fail('expected CREATE, DROP, ALTER TABLE, SHOW or DESCRIBE');
  }

  private createDatabase(): DdlStatement {
    const ifNotExists = this.accept('IF', 'NOT', 'EXISTS');
    const input: { Name: string; Description?: string; LocationUri?: string; Parameters?: Record<string, string> } = { Name: this.ident('a database name') };
    for (;;) {
      if (this.accept('COMMENT')) input.Description = this.string('a comment');
      else if (this.accept('LOCATION')) input.LocationUri = this.string('a location');
      else if (this.accept('WITH', 'DBPROPERTIES')) input.Parameters = this.properties();
      else break;
    }
    this.end();
    return { kind: 'create-database', ifNotExists, input };
  }

  private createTable(): DdlStatement {
    const ifNotExists = this.accept('IF', 'NOT', 'EXISTS');
    const q = this.qualified('a table name');
    const columns = this.columns();
    let description: string | undefined;
    let partitionKeys: DdlColumn[] = [];
    let serde: string | undefined;
    let serdeParameters: Record<string, string> = {};
    let stored: keyof typeof STORAGE_FORMATS | undefined;
    let location: string | undefined;
    let properties: Record<string, string> = {};
    for (;;) {
      if (this.accept('COMMENT')) description = this.string('a comment');
      else if (this.accept('PARTITIONED', 'BY')) {
        partitionKeys = this.columns();
        const clash = partitionKeys.find((k) => columns.some((c) => c.Name === k.Name));
        if (clash) throw new DdlError(`partition key ${clash.Name} is also a column: a partition key is not repeated among the columns`);
      } else if (this.accept('ROW', 'FORMAT')) {
        if (this.accept('SERDE')) {
          serde = this.string('a SerDe class');
          if (this.accept('WITH', 'SERDEPROPERTIES')) serdeParameters = this.properties();
        } else {
          this.expect('DELIMITED');
          serde = STORAGE_FORMATS.TEXTFILE.serde;
          if (this.accept('FIELDS', 'TERMINATED', 'BY')) {
            const d = this.string('a delimiter');
            serdeParameters = { 'field.delim': d, 'serialization.format': d };
          }
        }
      } else if (this.accept('STORED', 'AS')) {
        const f = this.ident('PARQUET, ORC or TEXTFILE').toUpperCase();
        if (!Object.hasOwn(STORAGE_FORMATS, f)) {
          this.i--;
          this.fail('expected PARQUET, ORC or TEXTFILE');
        }
        stored = f as keyof typeof STORAGE_FORMATS;
      } else if (this.accept('LOCATION')) location = this.string('a location');
      else if (this.accept('TBLPROPERTIES')) properties = this.properties();
      else break;
    }
    this.end();
    if (location === undefined) throw new DdlError('an external table needs LOCATION \'s3://bucket/prefix/\'');
    const format = STORAGE_FORMATS[stored ?? 'TEXTFILE'];
    const serdeLibrary = serde ?? format.serde;
    return {
      kind: 'create-table',
      ifNotExists,
      database: q.database,
      input: {
        Name: q.name,
        ...(description !== undefined ? { Description: description } : {}),
        TableType: 'EXTERNAL_TABLE',
        Parameters: { EXTERNAL: 'TRUE', ...(stored === 'PARQUET' || stored === 'ORC' ? { classification: stored.toLowerCase() } : {}), ...properties },
        PartitionKeys: partitionKeys,
        StorageDescriptor: {
          Columns: columns,
          Location: location,
          InputFormat: format.inputFormat,
          OutputFormat: format.outputFormat,
          Compressed: false,
          NumberOfBuckets: -1,
          SerdeInfo: { SerializationLibrary: serdeLibrary, Parameters: { 'serialization.format': '1', ...serdeParameters } },
          StoredAsSubDirectories: false,
        },
      },
    };
  }

  private addPartitions(): DdlStatement {
    const q = this.qualified('a table name');
    this.expect('ADD');
    const ifNotExists = this.accept('IF', 'NOT', 'EXISTS');
    const partitions: Array<{ spec: Array<[string, string]>; location?: string }> = [];
    while (this.accept('PARTITION')) {
      this.punct('(');
      const spec: Array<[string, string]> = [];
      for (;;) {
        const k = this.ident('a partition key');
        this.punct('=');
        const t = this.peek();
        if (t?.kind === 'number') {
          this.i++;
          spec.push([k, t.text]);
        } else spec.push([k, this.string('a partition value')]);
        if (this.isPunct(',')) {
          this.i++;
          continue;
        }
        this.punct(')');
        break;
      }
      const location = this.accept('LOCATION') ? this.string('a location') : undefined;
      partitions.push({ spec, location });
    }
    if (partitions.length === 0) this.fail('expected PARTITION (key = \'value\', …)');
    this.end();
    return { kind: 'add-partitions', ifNotExists, database: q.database, table: q.name, partitions };
  }
}
