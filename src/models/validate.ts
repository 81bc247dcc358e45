// Model-driven request validation: walks a decoded request (JSON or CBOR, before any handler sees
// it) against an operation's input shape from the generated tables, in AWS's (Coral's) two phases:
// first deserialization into the model's types (a failure is SerializationException with Coral's
// text), then every constraint (required, lengths, ranges, patterns, enums) collected into one
// ValidationException. It owns the wording of both and the member-path spelling; it knows nothing
// of HTTP, so each protocol layer maps its failure to its own error answer.
//
// The texts are the ones kinesalite (mhart/kinesalite validations/index.js, test/*.js) recorded
// from Kinesis: "class java.lang.String can not be converted to an Integer", "Start of list found
// where not expected", "Value null at 'streamName' failed to satisfy constraint: Member must not
// be null", a list of simple members reported once at the list ("Member must satisfy constraint:
// [...]"), map keys and values at the map ("Map keys must satisfy constraint: [...]").
// Member paths are Coral's (`records.2.member.partitionKey`) by default; the REST services
// (Pinpoint, API-Gateway-fronted Java rather than Coral) ask for wire names from the body's root
// (`Item[1].ChannelType`, `BatchItem.ep1.Endpoint`), and name the member in type errors too.
// A value of a shape the model marks `sensitive` (a password, a web identity token, Cognito's
// Logins tokens), or a list, map or structure holding one, is never written into a message:
// Coral says "Value at 'password' failed to satisfy constraint: …" (Cognito user pools' and STS's
// recorded answers), and a type error names the type only.

import type { MemberRef, ServiceModel, Shape } from './types.js';
import { shownValue } from './shown.js';

/** Coral reports at most this many constraint violations in one ValidationException. */
export const MAX_REPORTED_VALIDATION_ERRORS = 10;
/** A value is echoed in a message up to this many characters (a 10 MiB blob's base64 is not). */
export const MAX_SHOWN_VALUE_CHARS = 4096;

const INT_MIN = -2147483648;
const INT_MAX = 2147483647;

export interface ModelFailure {
  code: 'SerializationException' | 'ValidationException';
  message: string;
}

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; error: ModelFailure };

/**
 * A deliberate deviation from the model for one shape (e.g. a self-hosted Firehose accepting any
 * PostgreSQL host where AWS admits only Redshift hosts); documented where it is passed. `opaque`
 * passes the value through unchecked, for parts a handler judges item by item (PutEvents' events).
 */
export type ShapeOverride = Partial<Pick<Shape, 'pattern' | 'min' | 'max' | 'required'>> & { opaque?: boolean };

export interface ValidatorOptions {
  /** 'coral' (default): `streamName`, `records.2.member.x`. 'rest': wire names from the payload's root, `Item[1].Id`, `BatchItem.k.Endpoint`. */
  paths?: 'coral' | 'rest';
}

class SerializationFailure extends Error {}

/** `StreamName` → `streamName`, as Coral spells member paths. */
export const lowerFirst = (s: string) => (s.length === 0 ? s : s.charAt(0).toLowerCase() + s.slice(1));

const patternCache = new Map<string, RegExp | null>();
const warned = new Set<string>();

/**
 * A model pattern (a Java regex) as a JS RegExp matching the whole string, as Java's
 * `matches()` does. Tried with the `u` flag first (needed for \p{L}), then without (Java allows
 * identity escapes like `\_` that `u` refuses). A pattern JS cannot compile is logged once and
 * not enforced, rather than failing every request that carries the member.
 */
export function compilePattern(p: string): RegExp | null {
  const hit = patternCache.get(p);
  if (hit !== undefined) return hit;
  let re: RegExp | null = null;
  for (const flags of ['u', '']) {
    try {
      re = new RegExp(`^(?:${p})$`, flags);
      break;
    } catch {
      // next flags
    }
  }
  if (re === null && !warned.has(p)) {
    warned.add(p);
    console.warn(`model pattern not enforced (JavaScript cannot compile it): ${p}`);
  }
  patternCache.set(p, re);
  return re;
}

/** The Java class Coral names for a JSON/CBOR scalar it cannot convert. */
function javaClass(v: unknown): string {
  if (typeof v === 'boolean') return 'java.lang.Boolean';
  if (typeof v === 'number' || typeof v === 'bigint') return 'com.amazon.coral.value.json.numbers.TruncatingBigNumber';
  if (typeof v === 'string') return 'java.lang.String';
  if (v instanceof Uint8Array) return 'java.nio.HeapByteBuffer';
  if (v instanceof Date) return 'java.util.Date';
  return 'java.lang.Object';
}

/** Coral's texts for a JSON array or object where the model wants something else. */
function containerMismatch(v: unknown): string | undefined {
  if (Array.isArray(v)) return 'Start of list found where not expected';
  if (typeof v === 'object' && v !== null && !(v instanceof Uint8Array) && !(v instanceof Date)) return 'Start of structure or map found where not expected.';
  return undefined;
}

const NUMBER_NAMES: Record<string, string> = { integer: 'Integer', long: 'Long', float: 'Float', double: 'Double' };

type ValidatorShape = Shape & { opaque?: boolean };

export class ModelValidator {
  private readonly shapes: Map<string, ValidatorShape>;
  private readonly inputs: Map<string, string>;
  private readonly rest: boolean;
  /** Shapes whose values are not shown in messages (sensitive, or holding a sensitive shape). */
  private readonly secret = new Map<string, boolean>();

  constructor(model: ServiceModel, overrides: Record<string, ShapeOverride> = {}, options: ValidatorOptions = {}) {
    this.rest = options.paths === 'rest';
    this.shapes = new Map(Object.entries(model.shapes));
    for (const [name, o] of Object.entries(overrides)) {
      const s = this.shapes.get(name);
      if (!s) throw new Error(`override for unknown shape ${name}`);
      this.shapes.set(name, { ...s, ...o });
    }
    this.inputs = new Map();
    for (const [name, op] of Object.entries(model.operations)) if (op.input) this.inputs.set(name, op.input.shape);
  }

  shape(name: string): ValidatorShape {
    const s = this.shapes.get(name);
    if (!s) throw new Error(`model has no shape ${name}`);
    return s;
  }

  /** The input shape's name of an operation (undefined: no input, or no such operation). */
  inputShape(operation: string): string | undefined {
    return this.inputs.get(operation);
  }

  /**
   * Deserializes then validates `body` (an operation's whole decoded request) against its input
   * shape. The value returned holds only the model's members (unknown ones are dropped, as AWS
   * ignores them), blobs as Buffers, timestamps as Dates, numbers truncated to their type.
   */
  validate<T = Record<string, unknown>>(operation: string, body: unknown): ValidationResult<T> {
    const shapeName = this.inputs.get(operation);
    if (shapeName === undefined) return { ok: true, value: {} as T };
    return this.validateShape<T>(shapeName, body === undefined ? {} : body);
  }

  validateShape<T>(shapeName: string, body: unknown): ValidationResult<T> {
    let value: unknown;
    try {
      value = this.deserialize(shapeName, body, '');
    } catch (e) {
      if (e instanceof SerializationFailure) return { ok: false, error: { code: 'SerializationException', message: e.message } };
      throw e;
    }
    const errors: string[] = [];
    this.checkStructure(shapeName, (value ?? {}) as Record<string, unknown>, '', errors);
    if (errors.length > 0) {
      const n = errors.length;
      return { ok: false, error: { code: 'ValidationException', message: `${n} validation error${n > 1 ? 's' : ''} detected: ${errors.join('; ')}` } };
    }
    return { ok: true, value: (value ?? {}) as T };
  }

  /**
   * Whether values of a shape stay out of messages: it is sensitive, or a list, map or structure
   * reaching one (a list's text would carry its items). Cycles (recursive shapes) count as not.
   */
  hidden(shapeName: string): boolean {
    const known = this.secret.get(shapeName);
    if (known !== undefined) return known;
    this.secret.set(shapeName, false);
    const s = this.shape(shapeName);
    const refs = [s.member, s.key, s.value, ...Object.values(s.members ?? {})].filter((r): r is MemberRef => r !== undefined);
    const out = s.sensitive === true || refs.some((r) => this.hidden(r.shape));
    this.secret.set(shapeName, out);
    return out;
  }

  /**
   * One constraint violation. Coral: "Value 'x' at 'path' failed to satisfy constraint: Member must …",
   * or "Value at 'path' …" for a hidden shape (null included: no value is written at all).
   * REST: the path leads, "BatchItem.e.Endpoint is required", "ChannelType must satisfy enum value set: […]; got 'x'".
   */
  private push(errors: string[], v: unknown, at: string, constraint: string, hidden: boolean): void {
    if (errors.length >= MAX_REPORTED_VALIDATION_ERRORS) return;
    const shown = v === null || v === undefined ? 'null' : `'${shownValue(v, MAX_SHOWN_VALUE_CHARS)}'`;
    if (!this.rest) errors.push(`Value ${hidden ? '' : `${shown} `}at '${at}' failed to satisfy constraint: ${constraint}`);
    else if (constraint === 'Member must not be null') errors.push(`${at} is required`);
    else errors.push(`${at} ${constraint.replace(/^Member /, '').replace(/^Map /, 'map ')}${hidden ? '' : `; got ${shown}`}`);
  }

  // --- phase 1: deserialization -------------------------------------------------------------

  /** A member's path below `at`, in the validator's spelling. */
  private memberPath(at: string, name: string, ref: MemberRef, payload: boolean): string {
    if (!this.rest) return at === '' ? lowerFirst(name) : `${at}.${lowerFirst(name)}`;
    if (payload) return at; // the payload is the body: its members are named from the root
    const wire = ref.locationName ?? name;
    return at === '' ? wire : `${at}.${wire}`;
  }

  private itemPath(at: string, i: number): string {
    return this.rest ? `${at}[${i}]` : `${at}.${i + 1}.member`;
  }

  private entryPath(at: string, key: string): string {
    return this.rest ? (at === '' ? key : `${at}.${key}`) : `${at}.${key}.member`;
  }

  private deserialize(shapeName: string, v: unknown, at: string): unknown {
    if (v === null || v === undefined) return undefined;
    const s = this.shape(shapeName);
    if (s.opaque) return v;
    const hidden = s.sensitive === true;
    const fail = (m: string): never => {
      throw new SerializationFailure(this.rest ? `${at === '' ? 'The request body' : at} must be ${EXPECTED[s.type]}; got ${jsonKind(v, hidden)}` : m);
    };
    switch (s.type) {
      case 'structure': {
        if (Array.isArray(v)) fail('Start of list found where not expected');
        if (typeof v !== 'object' || v instanceof Uint8Array || v instanceof Date) fail('Expected null');
        const o = v as Record<string, unknown>;
        const out: Record<string, unknown> = {};
        for (const [name, ref] of Object.entries(s.members ?? {})) {
          if (!Object.hasOwn(o, name)) continue;
          const x = this.deserialize(ref.shape, o[name], this.memberPath(at, name, ref, s.payload === name));
          if (x !== undefined) out[name] = x;
        }
        return out;
      }
      case 'list': {
        if (!Array.isArray(v)) {
          if (typeof v === 'object' && !(v instanceof Uint8Array) && !(v instanceof Date)) fail('Start of structure or map found where not expected.');
          fail('Expected list or null');
        }
        return (v as unknown[]).map((x, i) => (x === null ? null : this.deserialize(s.member!.shape, x, this.itemPath(at, i))));
      }
      case 'map': {
        if (Array.isArray(v)) fail('Start of list found where not expected');
        if (typeof v !== 'object' || v instanceof Uint8Array || v instanceof Date) fail('Expected map or null');
        // Client keys stay own data keys ("__proto__" included): fromEntries defines, never sets.
        return Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, x === null ? null : this.deserialize(s.value!.shape, x, this.entryPath(at, k))]));
      }
      case 'string': {
        if (typeof v === 'string') return v;
        fail(containerMismatch(v) ?? `class ${javaClass(v)} can not be converted to an String`);
        break;
      }
      case 'boolean': {
        if (typeof v === 'boolean') return v;
        if (typeof v === 'string') {
          // Coral's Jackson reads the text booleans; any other text is refused, upper-cased.
          const u = v.toUpperCase();
          if (u === 'TRUE' || u === 'FALSE') return u === 'TRUE';
          fail(`${hidden ? 'Value' : `'${shownValue(u, MAX_SHOWN_VALUE_CHARS)}'`} can not be converted to an Boolean`);
        }
        fail(containerMismatch(v) ?? `class ${javaClass(v)} can not be converted to an Boolean`);
        break;
      }
      case 'integer':
      case 'long':
      case 'float':
      case 'double': {
        const name = NUMBER_NAMES[s.type];
        let n: number;
        if (typeof v === 'number') n = v;
        else if (typeof v === 'bigint') n = Number(v); // a CBOR integer past 2^53: saturated below
        else return fail(containerMismatch(v) ?? `class ${javaClass(v)} can not be converted to an ${name}`);
        if (s.type === 'float' || s.type === 'double') return n;
        // Coral truncates a JSON number to the member's type and saturates at its bounds.
        n = Math.trunc(n);
        if (s.type === 'integer') return Math.min(INT_MAX, Math.max(INT_MIN, n));
        return Math.min(Number.MAX_SAFE_INTEGER, Math.max(Number.MIN_SAFE_INTEGER, n));
      }
      case 'timestamp': {
        if (v instanceof Date) return Number.isNaN(v.getTime()) ? fail('class java.util.Date can not be converted to milliseconds since epoch') : v;
        if (typeof v === 'number' && Number.isFinite(v)) return new Date(Math.round(v * 1000));
        if (typeof v === 'bigint') return new Date(Number(v) * 1000);
        fail(containerMismatch(v) ?? `class ${javaClass(v)} can not be converted to milliseconds since epoch`);
        break;
      }
      case 'blob':
        return blob(v, fail, hidden);
    }
    return fail(`Unsupported shape type ${String(s.type)}`);
  }

  // --- phase 2: constraints -----------------------------------------------------------------

  private checkStructure(shapeName: string, o: Record<string, unknown>, path: string, errors: string[]): void {
    const s = this.shape(shapeName);
    if (s.opaque) return;
    const required = new Set(s.required ?? []);
    for (const [name, ref] of Object.entries(s.members ?? {})) {
      if (errors.length >= MAX_REPORTED_VALIDATION_ERRORS) return;
      const at = this.memberPath(path, name, ref, s.payload === name);
      const v = Object.hasOwn(o, name) ? o[name] : undefined;
      if (v === undefined || v === null) {
        if (required.has(name)) this.push(errors, null, at, 'Member must not be null', this.hidden(ref.shape));
        continue;
      }
      this.checkValue(ref, v, at, errors);
    }
  }

  private checkValue(ref: MemberRef, v: unknown, at: string, errors: string[]): void {
    const s = this.shape(ref.shape);
    if (s.opaque) return;
    const hidden = this.hidden(ref.shape);
    for (const c of this.violations(s, v)) this.push(errors, v, at, c, hidden);
    if (s.type === 'structure') this.checkStructure(ref.shape, v as Record<string, unknown>, at, errors);
    else if (s.type === 'list') {
      const items = v as unknown[];
      const m = this.shape(s.member!.shape);
      if (m.opaque) return; // judged item by item by the handler, nulls included
      if (isSimple(m)) {
        // Coral reports a list of simple members once, at the list, with all the member's constraints.
        if (items.some((x) => x === null || x === undefined || this.violations(m, x).length > 0)) {
          this.push(errors, v, at, `Member must satisfy constraint: [${this.describe(m, items.some((x) => x === null || x === undefined))}]`, hidden);
        }
      } else {
        items.forEach((x, i) => {
          const p = this.itemPath(at, i);
          if (x === null || x === undefined) this.push(errors, null, p, 'Member must not be null', this.hidden(s.member!.shape));
          else this.checkValue(s.member!, x, p, errors);
        });
      }
    } else if (s.type === 'map') {
      const entries = Object.entries(v as object);
      const k = this.shape(s.key!.shape);
      const val = this.shape(s.value!.shape);
      if (val.opaque) return;
      if (entries.some(([key]) => this.violations(k, key).length > 0)) this.push(errors, v, at, `Map keys must satisfy constraint: [${this.describe(k, false)}]`, hidden);
      if (isSimple(val)) {
        if (entries.some(([, x]) => x === null || x === undefined || this.violations(val, x).length > 0)) {
          this.push(errors, v, at, `Map value must satisfy constraint: [${this.describe(val, entries.some(([, x]) => x === null || x === undefined))}]`, hidden);
        }
      } else {
        for (const [key, x] of entries) {
          const p = this.entryPath(at, key);
          if (x === null || x === undefined) this.push(errors, null, p, 'Member must not be null', this.hidden(s.value!.shape));
          else this.checkValue(s.value!, x, p, errors);
        }
      }
    }
  }

  /** The constraints of `s` that `v` (already of the shape's type) breaks, in Coral's order. */
  private violations(s: Shape, v: unknown): string[] {
    const out: string[] = [];
    if (s.type === 'string') {
      const str = v as string;
      if (s.enum && !s.enum.includes(str)) out.push(enumText(s.enum));
      if (s.pattern !== undefined) {
        const re = compilePattern(s.pattern);
        if (re && !re.test(str)) out.push(`Member must satisfy regular expression pattern: ${s.pattern}`);
      }
    }
    const len = lengthOf(s, v);
    if (len !== undefined) {
      if (s.min !== undefined && len < s.min) out.push(`Member must have length greater than or equal to ${s.min}`);
      if (s.max !== undefined && len > s.max) out.push(`Member must have length less than or equal to ${s.max}`);
    } else if (typeof v === 'number') {
      if (s.min !== undefined && v < s.min) out.push(`Member must have value greater than or equal to ${s.min}`);
      if (s.max !== undefined && v > s.max) out.push(`Member must have value less than or equal to ${s.max}`);
    }
    return out;
  }

  /** Every constraint of a simple shape, as Coral lists them inside "must satisfy constraint: [...]". */
  private describe(s: Shape, nullSeen: boolean): string {
    const parts: string[] = [];
    if (nullSeen) parts.push('Member must not be null');
    const isLength = s.type === 'string' || s.type === 'blob';
    if (s.max !== undefined) parts.push(`Member must have ${isLength ? 'length' : 'value'} less than or equal to ${s.max}`);
    if (s.min !== undefined) parts.push(`Member must have ${isLength ? 'length' : 'value'} greater than or equal to ${s.min}`);
    if (s.pattern !== undefined) parts.push(`Member must satisfy regular expression pattern: ${s.pattern}`);
    if (s.enum) parts.push(enumText(s.enum));
    return parts.join(', ');
  }
}

const enumText = (values: readonly string[]) => `Member must satisfy enum value set: [${values.join(', ')}]`;

const isSimple = (s: Shape) => s.type !== 'structure' && s.type !== 'list' && s.type !== 'map';

function lengthOf(s: Shape, v: unknown): number | undefined {
  switch (s.type) {
    case 'string':
      return (v as string).length; // UTF-16 units, as Java's String.length()
    case 'blob':
      return (v as Buffer).length;
    case 'list':
      return (v as unknown[]).length;
    case 'map':
      return Object.keys(v as object).length;
    default:
      return undefined;
  }
}

/** What a REST type error says the member must be, by model type. */
const EXPECTED: Record<string, string> = {
  structure: 'an object',
  list: 'a list',
  map: 'an object (a map)',
  string: 'a string',
  integer: 'an integer',
  long: 'an integer',
  float: 'a number',
  double: 'a number',
  boolean: 'a boolean',
  timestamp: 'a timestamp',
  blob: 'base64 text',
};

/** A decoded JSON value's kind, as a REST type error names it. */
function jsonKind(v: unknown, hidden: boolean): string {
  if (Array.isArray(v)) return 'a list';
  if (hidden && (typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint')) return typeof v === 'string' ? 'a string' : 'a number';
  if (typeof v === 'string') return `the string '${shownValue(v, 100)}'`;
  if (typeof v === 'number' || typeof v === 'bigint') return `the number ${String(v)}`;
  if (typeof v === 'boolean') return `the boolean ${String(v)}`;
  return 'an object';
}

/**
 * The bytes of canonical base64 text (length a multiple of 4), else undefined. Cheaper than the
 * alphabet regex and a full re-encode, which took a fifth of a Firehose PutRecordBatch's CPU:
 * Node's decoder skips characters outside the alphabet and stops at '=', so any such character
 * makes the decoded length fall short of what the text's length and padding imply; it also takes
 * base64url's '-' and '_', which are looked for; and only the last group can carry non-canonical
 * trailing bits.
 */
function canonicalBase64(v: string): Buffer | undefined {
  const pad = v.endsWith('==') ? 2 : v.endsWith('=') ? 1 : 0;
  const out = Buffer.from(v, 'base64');
  if (out.length !== (v.length / 4) * 3 - pad || v.includes('-') || v.includes('_')) return undefined;
  if (pad > 0) {
    const last = v.slice(-4);
    if (Buffer.from(last, 'base64').toString('base64') !== last) return undefined;
  }
  return out;
}

/**
 * A blob member: a CBOR byte string as it is; text (JSON's base64) checked as Coral checks it
 * (length a multiple of 4, the alphabet, canonical last character).
 */
function blob(v: unknown, fail: (m: string) => never, hidden: boolean): Buffer {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (typeof v !== 'string') return fail(containerMismatch(v) ?? `class ${javaClass(v)} can not be converted to a Blob`);
  const shown = () => (hidden ? 'Value' : `'${shownValue(v, MAX_SHOWN_VALUE_CHARS)}'`);
  if (v.length % 4 !== 0) fail(`${shown()} can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: ${v.length}`);
  const fast = canonicalBase64(v);
  if (fast) return fast;
  // Something is wrong with it: the checks below say what, in Coral's words.
  const bad = /[^A-Za-z0-9+/=]|=[^=]/.exec(v);
  if (bad) fail(`${shown()} can not be converted to a Blob: Invalid Base64 character: '${bad[0][0]}'`);
  const out = Buffer.from(v, 'base64');
  // Non-canonical trailing bits (e.g. "+/+=") decode to bytes that do not encode back to the text.
  if (out.toString('base64') !== v) fail(`${shown()} can not be converted to a Blob: Invalid last non-pad Base64 character dectected`);
  return out;
}
