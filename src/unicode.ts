// Strings that are not valid Unicode. JSON can carry an unpaired UTF-16 surrogate as an escape
// ("\ud800": typically half of an emoji cut off by a client truncating to a length limit); UTF-8
// cannot encode one at all. Stored as it came, such a string breaks every consumer that is strict
// about Unicode: DuckDB's JSON functions refused the whole column ("no low surrogate in string"),
// PostgreSQL's json type refuses the escape, Python's and Java's UTF-8 encoders fail. Requests are
// made well-formed where they are read (each unpaired surrogate becomes U+FFFD, the replacement
// character, which is what every UTF-8 encoder of the WHATWG Encoding standard, Node's Buffer
// included, writes for one); JSON text written before that is repaired where it is read back.

interface Es2024String {
  isWellFormed(): boolean;
  toWellFormed(): string;
}

/** True when the string holds no unpaired surrogate. */
export function isWellFormed(s: string): boolean {
  return (s as unknown as Es2024String).isWellFormed();
}

/**
 * `v` with every string (values and object keys, at any depth) made well-formed: each unpaired
 * surrogate becomes U+FFFD. Returns `v` itself when nothing needed repair. Callers pass values
 * whose nesting is already bounded (src/nesting.ts).
 */
export function wellFormed<T>(v: T): T {
  return repair(v) as T;
}

function repair(v: unknown): unknown {
  if (typeof v === 'string') return isWellFormed(v) ? v : (v as unknown as Es2024String).toWellFormed();
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const x = repair(v[i]);
      if (x !== v[i]) (out ??= v.slice())[i] = x;
    }
    return out ?? v;
  }
  const src = v as Record<string, unknown>;
  let changed = false;
  const entries: Array<[string, unknown]> = [];
  for (const k of Object.keys(src)) {
    const key = isWellFormed(k) ? k : (k as unknown as Es2024String).toWellFormed();
    const x = repair(src[k]);
    if (key !== k || x !== src[k]) changed = true;
    entries.push([key, x]);
  }
  if (!changed) return v;
  const out: Record<string, unknown> = {};
  // defineProperty: a client's "__proto__" key stays an own key, as JSON.parse made it.
  for (const [k, x] of entries) Object.defineProperty(out, k, { value: x, enumerable: true, writable: true, configurable: true });
  return out;
}

/** Cheap test for JSON text that may hold an escaped surrogate (then repairJsonText decides exactly). */
export function mayHaveSurrogateEscape(json: string): boolean {
  return json.includes('\\ud') || json.includes('\\uD');
}

/**
 * JSON text with every unpaired surrogate escape replaced by \ufffd. Escapes are read left to
 * right (so an escaped backslash followed by "ud800" is text, not an escape), and a high surrogate
 * escape followed by a low one is a valid pair that stays.
 */
export function repairJsonText(json: string): string {
  if (!mayHaveSurrogateEscape(json)) return json;
  return json.replace(ESCAPE, (m, high: string | undefined, low: string | undefined, loneLow: string | undefined) => {
    if (high !== undefined) return low !== undefined ? m : '\\ufffd';
    if (loneLow !== undefined) return '\\ufffd';
    return m;
  });
}

const ESCAPE = /\\(?:u([dD][89abAB][0-9a-fA-F]{2})(?:\\u([dD][c-fC-F][0-9a-fA-F]{2}))?|u([dD][c-fC-F][0-9a-fA-F]{2})|[^])/g;
