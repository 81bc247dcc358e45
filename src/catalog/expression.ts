// The two filter languages of the catalog API, evaluated without handing caller text to a regex
// engine or SQL:
//   - GetTables' / GetDatabases'-style name patterns: AWS calls them regular expressions, and
//     what tools send is `*` or `.*` for "anything", `.` for one character and `|` between
//     alternatives (`events|sessions`, `pinpoint_*`). That subset is matched here in linear
//     passes (no backtracking a hostile pattern could blow up), whole-name and case-insensitive
//     (names are stored lower-case). Other regex syntax (`[...]`, `+`, `?`, `^$`, `\`) is refused
//     with InvalidInputException rather than matched differently from AWS.
//   - GetPartitions' Expression: a SQL-like predicate over partition keys. The subset here:
//     comparisons `=`, `<>`, `!=`, `<`, `<=`, `>`, `>=` of a key with a literal ('quoted' string,
//     '' inside for a quote, or a number), `key [NOT] IN (lit, …)`, `key BETWEEN lit AND lit`,
//     `key [NOT] LIKE 'pattern'` (% and _), combined with AND, OR, NOT and parentheses. Keys are
//     compared as numbers when their column type is an integer type (tinyint … bigint), else as
//     strings, as Glue compares them. Anything else is an InvalidInputException naming where.

export class ExpressionError extends Error {
  override name = 'ExpressionError';
}

// --- name patterns --------------------------------------------------------------------------------

type PatternToken = { any: true } | { one: true } | { lit: string };

/** Compiles a name pattern to alternatives of tokens; ExpressionError for syntax outside the subset. */
export function compileNamePattern(pattern: string): (name: string) => boolean {
  const alternatives = pattern.split('|').map((alt) => {
    const out: PatternToken[] = [];
    for (let i = 0; i < alt.length; i++) {
      const c = alt[i];
      if (c === '.' && alt[i + 1] === '*') {
        out.push({ any: true });
        i++;
      } else if (c === '*') out.push({ any: true });
      else if (c === '.') out.push({ one: true });
      else if ('[]()+?^$\\{}'.includes(c)) throw new ExpressionError(`the table name pattern '${pattern}' uses '${c}'; Pinstream matches only '*', '.*', '.' and '|'`);
      else out.push({ lit: c.toLowerCase() });
    }
    return out;
  });
  return (name: string) => alternatives.some((t) => matchTokens(t, name.toLowerCase()));
}

/** Wildcard matching with one backtrack point (the last `*`): O(pattern × name) at worst. */
function matchTokens(tokens: PatternToken[], s: string): boolean {
  let ti = 0;
  let si = 0;
  let star = -1;
  let mark = 0;
  while (si < s.length) {
    const t = tokens[ti];
    if (t && !('any' in t) && ('one' in t || t.lit === s[si])) {
      ti++;
      si++;
    } else if (t && 'any' in t) {
      star = ti++;
      mark = si;
    } else if (star >= 0) {
      ti = star + 1;
      si = ++mark;
    } else return false;
  }
  while (ti < tokens.length && 'any' in tokens[ti]) ti++;
  return ti === tokens.length;
}

// --- partition expressions -------------------------------------------------------------------------

export interface PartitionKey {
  name: string;
  type: string;
}

type Lit = { kind: 'string'; value: string } | { kind: 'number'; value: string };
type Node =
  | { op: 'and' | 'or'; left: Node; right: Node }
  | { op: 'not'; node: Node }
  | { op: 'cmp'; key: number; cmp: string; lit: Lit }
  | { op: 'in'; key: number; lits: Lit[] }
  | { op: 'between'; key: number; low: Lit; high: Lit }
  | { op: 'like'; key: number; match: (v: string) => boolean };

/** A compiled partition predicate over a partition's Values (in partition-key order). */
export type PartitionFilter = (values: readonly string[]) => boolean;

const INTEGER_TYPES = /^(tinyint|smallint|int|integer|bigint)$/i;

export function compilePartitionExpression(text: string, keys: readonly PartitionKey[]): PartitionFilter {
  const tokens = tokenize(text);
  let i = 0;
  const peek = () => tokens[i];
  const isWord = (w: string) => peek()?.kind === 'word' && peek()!.text.toUpperCase() === w;
  const fail = (why: string): never => {
    const t = peek();
    throw new ExpressionError(`${why} ${t ? `at '${t.text}' (position ${t.pos})` : 'at the end'} of the expression '${text}'`);
  };
  const keyIndex = (): number => {
    const t = peek();
    if (!t || (t.kind !== 'word' && t.kind !== 'quoted-name')) return fail('expected a partition key');
    const idx = keys.findIndex((k) => k.name.toLowerCase() === t.text.toLowerCase());
    if (idx < 0) return fail(`unknown partition key '${t.text}' (the table's keys are ${keys.map((k) => k.name).join(', ') || 'none'})`);
    i++;
    return idx;
  };
  const literal = (): Lit => {
    const t = peek();
    if (t?.kind === 'string') {
      i++;
      return { kind: 'string', value: t.text };
    }
    if (t?.kind === 'number') {
      i++;
      return { kind: 'number', value: t.text };
    }
    return fail('expected a literal');
  };
  const punct = (p: string) => {
    if (peek()?.kind !== 'punct' || peek()!.text !== p) fail(`expected '${p}'`);
    i++;
  };
  const primary = (depth: number): Node => {
    if (depth > 100) fail('the expression nests too deeply');
    if (isWord('NOT')) {
      i++;
      return { op: 'not', node: primary(depth + 1) };
    }
    if (peek()?.kind === 'punct' && peek()!.text === '(') {
      i++;
      const n = or(depth + 1);
      punct(')');
      return n;
    }
    const key = keyIndex();
    const t = peek();
    if (t?.kind === 'cmp') {
      i++;
      return { op: 'cmp', key, cmp: t.text === '!=' ? '<>' : t.text, lit: literal() };
    }
    let negate = false;
    if (isWord('NOT')) {
      negate = true;
      i++;
    }
    let node: Node;
    if (isWord('IN')) {
      i++;
      punct('(');
      const lits = [literal()];
      while (peek()?.kind === 'punct' && peek()!.text === ',') {
        i++;
        lits.push(literal());
      }
      punct(')');
      node = { op: 'in', key, lits };
    } else if (isWord('BETWEEN')) {
      i++;
      const low = literal();
      if (!isWord('AND')) fail("expected 'AND'");
      i++;
      node = { op: 'between', key, low, high: literal() };
    } else if (isWord('LIKE')) {
      i++;
      const lit = literal();
      node = { op: 'like', key, match: likeMatcher(lit.value) };
    } else return fail("expected a comparison, IN, BETWEEN or LIKE");
    return negate ? { op: 'not', node } : node;
  };
  const and = (depth: number): Node => {
    let left = primary(depth);
    while (isWord('AND')) {
      i++;
      left = { op: 'and', left, right: primary(depth) };
    }
    return left;
  };
  const or = (depth: number): Node => {
    let left = and(depth);
    while (isWord('OR')) {
      i++;
      left = { op: 'or', left, right: and(depth) };
    }
    return left;
  };
  if (tokens.length === 0) return () => true;
  const root = or(0);
  if (i < tokens.length) fail('unexpected text');
  const numeric = keys.map((k) => INTEGER_TYPES.test(k.type.trim()));
  const compare = (key: number, v: string, lit: Lit): number => {
    if (numeric[key]) {
      const a = toBigInt(v);
      const b = toBigInt(lit.value);
      if (a === undefined || b === undefined) return v < lit.value ? -1 : v > lit.value ? 1 : 0;
      return a < b ? -1 : a > b ? 1 : 0;
    }
    return v < lit.value ? -1 : v > lit.value ? 1 : 0;
  };
  const evalNode = (n: Node, values: readonly string[]): boolean => {
    switch (n.op) {
      case 'and':
        return evalNode(n.left, values) && evalNode(n.right, values);
      case 'or':
        return evalNode(n.left, values) || evalNode(n.right, values);
      case 'not':
        return !evalNode(n.node, values);
      case 'cmp': {
        const c = compare(n.key, values[n.key] ?? '', n.lit);
        return n.cmp === '=' ? c === 0 : n.cmp === '<>' ? c !== 0 : n.cmp === '<' ? c < 0 : n.cmp === '<=' ? c <= 0 : n.cmp === '>' ? c > 0 : c >= 0;
      }
      case 'in':
        return n.lits.some((l) => compare(n.key, values[n.key] ?? '', l) === 0);
      case 'between':
        return compare(n.key, values[n.key] ?? '', n.low) >= 0 && compare(n.key, values[n.key] ?? '', n.high) <= 0;
      case 'like':
        return n.match(values[n.key] ?? '');
    }
  };
  return (values) => evalNode(root, values);
}

function toBigInt(s: string): bigint | undefined {
  return /^[+-]?\d{1,40}$/.test(s.trim()) ? BigInt(s.trim()) : undefined;
}

/** SQL LIKE (% any run, _ one character) by the same linear wildcard matcher as name patterns. */
function likeMatcher(pattern: string): (v: string) => boolean {
  const tokens: PatternToken[] = [...pattern].map((c) => (c === '%' ? { any: true } : c === '_' ? { one: true } : { lit: c }));
  return (v) => matchTokens(tokens, v);
}

interface Token {
  kind: 'word' | 'quoted-name' | 'string' | 'number' | 'cmp' | 'punct';
  text: string;
  pos: number;
}

function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const pos = i;
    if (c === "'") {
      let v = '';
      i++;
      for (;;) {
        if (i >= s.length) throw new ExpressionError(`unterminated string starting at position ${pos} of the expression '${s}'`);
        if (s[i] === "'") {
          if (s[i + 1] === "'") {
            v += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        v += s[i++];
      }
      out.push({ kind: 'string', text: v, pos });
    } else if (c === '`') {
      const end = s.indexOf('`', i + 1);
      if (end < 0) throw new ExpressionError(`unterminated \`name\` at position ${pos} of the expression '${s}'`);
      out.push({ kind: 'quoted-name', text: s.slice(i + 1, end), pos });
      i = end + 1;
    } else if (/[0-9-]/.test(c)) {
      const m = /^-?\d+(\.\d+)?/.exec(s.slice(i));
      if (!m) throw new ExpressionError(`unexpected '${c}' at position ${pos} of the expression '${s}'`);
      out.push({ kind: 'number', text: m[0], pos });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i))!;
      out.push({ kind: 'word', text: m[0], pos });
      i += m[0].length;
    } else if ('<>=!'.includes(c)) {
      const two = s.slice(i, i + 2);
      const op = ['<=', '>=', '<>', '!='].includes(two) ? two : c;
      if (op === '!') throw new ExpressionError(`unexpected '!' at position ${pos} of the expression '${s}'`);
      out.push({ kind: 'cmp', text: op, pos });
      i += op.length;
    } else if ('(),'.includes(c)) {
      out.push({ kind: 'punct', text: c, pos });
      i++;
    } else throw new ExpressionError(`unexpected '${c}' at position ${pos} of the expression '${s}'`);
  }
  return out;
}
