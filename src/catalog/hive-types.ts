// Hive column types as the Glue Data Catalog stores them (a Column's `Type` string): the parser
// every reader of the catalog shares (Firehose's schema-driven conversion, the SQL engine), so a
// type means the same thing everywhere. Grammar (case-insensitive keywords, spaces allowed between
// tokens, as Athena and Glue crawlers write them):
//   type      := primitive | decimal | char | array | map | struct
//   primitive := string | bigint | int | integer | smallint | tinyint | double | float | boolean
//              | timestamp | date | binary
//   decimal   := decimal [ '(' p [',' s] ')' ]       (Hive: decimal alone is decimal(10,0))
//   char      := (varchar | char) '(' n ')'
//   array     := array '<' type '>'
//   map       := map '<' primitive-ish type ',' type '>'
//   struct    := struct '<' name ':' type (',' name ':' type)* '>'   (names may be `quoted`)
// Nesting is bounded (MAX_HIVE_TYPE_DEPTH) and so is the text (MAX_HIVE_TYPE_LENGTH): a type
// comes from any caller of CreateTable.

/** Glue's ColumnTypeString allows 131,072 characters; that is also the longest type parsed here. */
export const MAX_HIVE_TYPE_LENGTH = 131_072;
/** Deepest nesting of array/map/struct accepted (Hive's own parser stops well before stack limits). */
export const MAX_HIVE_TYPE_DEPTH = 64;
/** Hive's limits on decimal precision and char lengths. */
export const MAX_DECIMAL_PRECISION = 38;
export const MAX_VARCHAR_LENGTH = 65_535;
export const MAX_CHAR_LENGTH = 255;

export type HivePrimitiveName = 'string' | 'bigint' | 'int' | 'smallint' | 'tinyint' | 'double' | 'float' | 'boolean' | 'timestamp' | 'date' | 'binary';

export type HiveType =
  | { kind: 'primitive'; name: HivePrimitiveName }
  | { kind: 'decimal'; precision: number; scale: number }
  | { kind: 'varchar' | 'char'; length: number }
  | { kind: 'array'; element: HiveType }
  | { kind: 'map'; key: HiveType; value: HiveType }
  | { kind: 'struct'; fields: Array<{ name: string; type: HiveType }> };

export class HiveTypeError extends Error {
  override name = 'HiveTypeError';
}

const PRIMITIVES: Record<string, HivePrimitiveName> = {
  string: 'string',
  bigint: 'bigint',
  int: 'int',
  integer: 'int',
  smallint: 'smallint',
  tinyint: 'tinyint',
  double: 'double',
  float: 'float',
  boolean: 'boolean',
  timestamp: 'timestamp',
  date: 'date',
  binary: 'binary',
};

/** Parses a Hive type; HiveTypeError says where and why it is not one. */
export function parseHiveType(text: string): HiveType {
  if (text.length > MAX_HIVE_TYPE_LENGTH) throw new HiveTypeError(`type is longer than ${MAX_HIVE_TYPE_LENGTH} characters`);
  const p = new Parser(text);
  const t = p.type(0);
  p.space();
  if (p.pos < text.length) p.fail(`unexpected '${text[p.pos]}'`);
  return t;
}

/** The canonical text of a type (lower-case keywords, no spaces), as Glue crawlers write it. */
export function formatHiveType(t: HiveType): string {
  switch (t.kind) {
    case 'primitive':
      return t.name;
    case 'decimal':
      return `decimal(${t.precision},${t.scale})`;
    case 'varchar':
    case 'char':
      return `${t.kind}(${t.length})`;
    case 'array':
      return `array<${formatHiveType(t.element)}>`;
    case 'map':
      return `map<${formatHiveType(t.key)},${formatHiveType(t.value)}>`;
    case 'struct':
      return `struct<${t.fields.map((f) => `${/^[A-Za-z_][A-Za-z0-9_]*$/.test(f.name) ? f.name : `\`${f.name.replace(/`/g, '``')}\``}:${formatHiveType(f.type)}`).join(',')}>`;
  }
}

class Parser {
  pos = 0;
  constructor(private s: string) {}

  fail(why: string): never {
    throw new HiveTypeError(`${why} at position ${this.pos} of '${this.s.length > 200 ? this.s.slice(0, 200) + '…' : this.s}'`);
  }

  space(): void {
    while (this.pos < this.s.length && /\s/.test(this.s[this.pos])) this.pos++;
  }

  expect(c: string): void {
    this.space();
    if (this.s[this.pos] !== c) this.fail(this.pos >= this.s.length ? `expected '${c}', found the end` : `expected '${c}'`);
    this.pos++;
  }

  peek(): string | undefined {
    this.space();
    return this.s[this.pos];
  }

  word(): string {
    this.space();
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.s.slice(this.pos, this.pos + 256));
    if (!m) this.fail(this.pos >= this.s.length ? 'expected a type, found the end' : 'expected a type name');
    this.pos += m[0].length;
    return m[0];
  }

  int(): number {
    this.space();
    const m = /^\d{1,9}/.exec(this.s.slice(this.pos, this.pos + 10));
    if (!m) this.fail('expected a number');
    this.pos += m[0].length;
    return Number(m[0]);
  }

  fieldName(): string {
    this.space();
    if (this.s[this.pos] === '`') {
      let out = '';
      this.pos++;
      for (;;) {
        const i = this.s.indexOf('`', this.pos);
        if (i < 0) this.fail('unterminated `quoted` field name');
        out += this.s.slice(this.pos, i);
        this.pos = i + 1;
        if (this.s[this.pos] === '`') {
          out += '`';
          this.pos++;
          continue;
        }
        break;
      }
      if (out === '') this.fail('empty field name');
      return out;
    }
    // Crawlers write field names as found in the data: anything up to the ':' but separators.
    const m = /^[^\s:,<>`]+/.exec(this.s.slice(this.pos, this.pos + 1025));
    if (!m) this.fail('expected a field name');
    this.pos += m[0].length;
    return m[0];
  }

  type(depth: number): HiveType {
    if (depth > MAX_HIVE_TYPE_DEPTH) this.fail(`types nest deeper than ${MAX_HIVE_TYPE_DEPTH} levels`);
    const start = this.pos;
    const w = this.word().toLowerCase();
    if (Object.hasOwn(PRIMITIVES, w)) return { kind: 'primitive', name: PRIMITIVES[w] };
    switch (w) {
      case 'decimal': {
        if (this.peek() !== '(') return { kind: 'decimal', precision: 10, scale: 0 };
        this.expect('(');
        const precision = this.int();
        let scale = 0;
        if (this.peek() === ',') {
          this.expect(',');
          scale = this.int();
        }
        this.expect(')');
        if (precision < 1 || precision > MAX_DECIMAL_PRECISION) this.fail(`decimal precision must be 1 to ${MAX_DECIMAL_PRECISION}`);
        if (scale > precision) this.fail('decimal scale must not exceed its precision');
        return { kind: 'decimal', precision, scale };
      }
      case 'varchar':
      case 'char': {
        this.expect('(');
        const length = this.int();
        this.expect(')');
        const max = w === 'char' ? MAX_CHAR_LENGTH : MAX_VARCHAR_LENGTH;
        if (length < 1 || length > max) this.fail(`${w} length must be 1 to ${max}`);
        return { kind: w, length };
      }
      case 'array': {
        this.expect('<');
        const element = this.type(depth + 1);
        this.expect('>');
        return { kind: 'array', element };
      }
      case 'map': {
        this.expect('<');
        const key = this.type(depth + 1);
        if (key.kind === 'array' || key.kind === 'map' || key.kind === 'struct') {
          this.pos = start;
          this.fail('a map key must be a primitive type');
        }
        this.expect(',');
        const value = this.type(depth + 1);
        this.expect('>');
        return { kind: 'map', key, value };
      }
      case 'struct': {
        this.expect('<');
        const fields: Array<{ name: string; type: HiveType }> = [];
        const seen = new Set<string>();
        if (this.peek() === '>') this.fail('a struct needs at least one field');
        for (;;) {
          const name = this.fieldName();
          if (seen.has(name.toLowerCase())) this.fail(`duplicate struct field '${name}'`);
          seen.add(name.toLowerCase());
          this.expect(':');
          fields.push({ name, type: this.type(depth + 1) });
          if (this.peek() === ',') {
            this.expect(',');
            continue;
          }
          this.expect('>');
          return { kind: 'struct', fields };
        }
      }
      default:
        this.pos = start;
        this.space();
        return this.fail(`unknown type '${w}'`);
    }
  }
}
