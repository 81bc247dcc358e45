// AWS Query protocol input decoding (IAM, STS): builds an operation's input structure from its
// form parameters by walking the model, the inverse of the SDKs' Query serializer (botocore
// serialize.py QuerySerializer, @smithy/aws-protocols awsQuery): nested members `A.B`, lists
// `Name.member.N` (flattened: `Name.N`), maps `Name.entry.N.key` / `.value` (flattened:
// `Name.N.key`), an empty list as `Name=`; scalars as text (integers, `true`/`false`,
// ISO-8601 timestamps, base64 blobs). It owns only that text-to-value step and its failure; the
// constraints are then checked by the same ModelValidator as the JSON protocols, so IAM's
// "Value '…' at 'userName' failed to satisfy constraint: …" comes from one place.

import type { MemberRef } from './types.js';
import { MAX_SHOWN_VALUE_CHARS, type ModelFailure, type ModelValidator, type ValidationResult } from './validate.js';
import { shownValue } from './shown.js';

/** One level of parameter names split at dots; built once per request, walked along the model. */
interface Node {
  value?: string;
  children: Map<string, Node>;
}

const INT_MIN = -2147483648;
const INT_MAX = 2147483647;

/** A scalar's text that does not convert to its type (Coral's deserialization failure). */
export class MalformedValue extends Error {}

/** The parameters as a tree: `PolicyArns.member.1.arn=x` → PolicyArns → member → 1 → arn. Linear in the parameters' length. */
function tree(params: ReadonlyMap<string, string>): Node {
  const root: Node = { children: new Map() };
  for (const [key, value] of params) {
    let n = root;
    for (const part of key.split('.')) {
      let c = n.children.get(part);
      if (!c) {
        c = { children: new Map() };
        n.children.set(part, c);
      }
      n = c;
    }
    n.value = value;
  }
  return root;
}

/** The numbered children of a list or map node, in index order (`.1`, `.2`, …; gaps closed up). */
function numbered(n: Node): Node[] {
  const out: Array<[number, Node]> = [];
  for (const [k, c] of n.children) if (/^[1-9][0-9]{0,9}$/.test(k)) out.push([Number(k), c]);
  return out.sort((a, b) => a[0] - b[0]).map(([, c]) => c);
}

const NUMBER_NAMES: Record<string, string> = { integer: 'Integer', long: 'Long', float: 'Float', double: 'Double' };

export class QueryDecoder {
  constructor(private readonly validator: ModelValidator) {}

  /**
   * The operation's input from its form parameters, validated. A scalar whose text is not of its
   * type fails as SerializationException (the Query layer answers it as AWS's Query services
   * do); constraint violations as one ValidationException, exactly as for JSON.
   */
  decode<T = Record<string, unknown>>(operation: string, params: ReadonlyMap<string, string>): ValidationResult<T> {
    const shapeName = this.validator.inputShape(operation);
    if (shapeName === undefined) return { ok: true, value: {} as T };
    let value: unknown;
    try {
      value = this.structure(shapeName, tree(params), '');
    } catch (e) {
      if (e instanceof MalformedValue) return { ok: false, error: { code: 'SerializationException', message: e.message } satisfies ModelFailure };
      throw e;
    }
    return this.validator.validateShape<T>(shapeName, value ?? {});
  }

  private structure(shapeName: string, n: Node, prefix: string): Record<string, unknown> {
    const s = this.validator.shape(shapeName);
    const out: Record<string, unknown> = {};
    for (const [name, ref] of Object.entries(s.members ?? {})) {
      const wire = ref.locationName ?? name;
      const c = n.children.get(wire);
      if (!c) continue;
      const v = this.member(ref, c, prefix === '' ? wire : `${prefix}.${wire}`);
      if (v !== undefined) out[name] = v;
    }
    return out;
  }

  private member(ref: MemberRef, n: Node, param: string): unknown {
    const s = this.validator.shape(ref.shape);
    switch (s.type) {
      case 'structure':
        return this.structure(ref.shape, n, param);
      case 'list': {
        const m = s.member!;
        // Flattened lists number the items right under the name; others under `member` (or the member's locationName).
        const items = s.flattened || ref.flattened ? n : n.children.get(m.locationName ?? 'member');
        if (!items) return n.value === '' && n.children.size === 0 ? [] : undefined;
        return numbered(items).map((c, i) => this.member(m, c, `${param}.${i + 1}`) ?? null);
      }
      case 'map': {
        const entries = s.flattened || ref.flattened ? n : n.children.get('entry');
        if (!entries) return n.value === '' && n.children.size === 0 ? {} : undefined;
        const keyName = s.key!.locationName ?? 'key';
        const valueName = s.value!.locationName ?? 'value';
        // Client keys stay own data keys ("__proto__" included): fromEntries defines, never sets.
        const pairs: Array<[string, unknown]> = [];
        for (const c of numbered(entries)) {
          const k = c.children.get(keyName)?.value;
          if (k === undefined) continue;
          const v = c.children.get(valueName);
          pairs.push([k, v === undefined ? null : (this.member(s.value!, v, `${param}.${keyName}`) ?? null)]);
        }
        return Object.fromEntries(pairs);
      }
      default:
        return n.value === undefined ? undefined : scalar(s.type, n.value, param);
    }
  }
}

/** A scalar parameter's text as its model type (also a REST URI label, query string or header). */
export function scalar(type: string, text: string, param: string): unknown {
  const bad = (what: string): never => {
    throw new MalformedValue(`Value '${shownValue(text, MAX_SHOWN_VALUE_CHARS)}' for parameter ${param} can not be converted to ${what}`);
  };
  switch (type) {
    case 'string':
    case 'blob': // base64 text: the validator decodes and checks it as for JSON
      return text;
    case 'boolean': {
      const u = text.toLowerCase();
      return u === 'true' ? true : u === 'false' ? false : bad('a Boolean');
    }
    case 'integer':
    case 'long': {
      // Java's parseInt/parseLong: digits with an optional sign, nothing else, within the type's range.
      if (!/^[+-]?[0-9]{1,19}$/.test(text)) return bad(`an ${NUMBER_NAMES[type]}`);
      const n = Number(text);
      const [lo, hi] = type === 'integer' ? [INT_MIN, INT_MAX] : [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
      return n < lo || n > hi ? bad(`an ${NUMBER_NAMES[type]}`) : n;
    }
    case 'float':
    case 'double': {
      const n = text.trim() === '' ? NaN : Number(text);
      return Number.isFinite(n) ? n : bad(`a ${NUMBER_NAMES[type]}`);
    }
    case 'timestamp': {
      // ISO-8601, as every SDK's Query serializer writes timestamps.
      const ms = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/.test(text) ? Date.parse(text) : NaN;
      return Number.isNaN(ms) ? bad('a Timestamp') : new Date(ms);
    }
  }
  return bad(`a ${type}`);
}
