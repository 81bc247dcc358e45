// How a client-sent value is shown inside AWS's error messages (Java's toString), shared by the
// model validator and the handlers' own business-rule messages; no protocol knowledge.

/**
 * A client-sent value as AWS's validation messages show it (Java's toString: `[a, b]`, `{k=v}`,
 * a blob as its buffer), cut at `max` characters. It never throws and recurses no deeper than the
 * text it writes, so a list nested 100,000 deep, an object with its own `toString`, or a CBOR
 * integer past 2^53 (a BigInt) is just text in the message.
 */
export function shownValue(v: unknown, max = 100): string {
  let out = '';
  const write = (x: unknown): boolean => {
    if (x === null || x === undefined) out += 'null';
    else if (typeof x === 'string') out += x.length > max ? x.slice(0, max) : x;
    else if (typeof x === 'number' || typeof x === 'boolean' || typeof x === 'bigint') out += String(x);
    else if (x instanceof Uint8Array) out += `java.nio.HeapByteBuffer[pos=0 lim=${x.length} cap=${x.length}]`;
    else if (x instanceof Date) out += String(x.getTime());
    else if (Array.isArray(x)) {
      out += '[';
      for (let i = 0; i < x.length; i++) {
        if (i > 0) out += ', ';
        if (out.length >= max || !write(x[i])) return false;
      }
      out += ']';
    } else if (typeof x === 'object') {
      out += '{';
      let first = true;
      for (const k in x) {
        if (!Object.hasOwn(x, k)) continue;
        out += `${first ? '' : ', '}${k}=`;
        first = false;
        if (out.length >= max || !write((x as Record<string, unknown>)[k])) return false;
      }
      out += '}';
    } else out += typeof x;
    return out.length < max;
  };
  write(v);
  return out.length > max ? out.slice(0, max) : out;
}
