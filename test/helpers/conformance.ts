// The protocol-neutral half of the generated conformance suites (conformance-json, -query, -rest):
// a server per test file, a model-driven builder of valid values, the constraint cases each
// member's shape admits, and the oracle for Coral's validation messages. The oracle is computed
// here from the model, independently of src/models/validate.ts (a suite that took its expectation
// from the code's own tables could not catch a wrong one); only the Java-regex translation
// (compilePattern) is shared, and the suites test it directly.
// What stays in each suite is its protocol: how a value goes on the wire (JSON/CBOR body, Query
// parameters, REST body), its type-error texts and the spelling of its member paths.

import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient } from '@aws-sdk/client-iam';
import { startTestServer, type TestServer } from './server.js';
import { shownValue } from '../../src/models/shown.js';
import { compilePattern } from '../../src/models/validate.js';
import type { ServiceModel, Shape } from '../../src/models/types.js';

/** Longer strings, lists, maps or blobs than this are not built (a 10 MiB blob, a 128 KiB policy). */
const MAX_BUILT = 2048;
/** Structures nested deeper than this are not built (recursive shapes end here). */
const MAX_BUILT_DEPTH = 8;
/** Required nested structures are walked this deep for member cases. */
const MAX_WALK_DEPTH = 4;
/** A suite's failure lists this many differing cases (and counts them all). */
const SHOWN_FAILURES = 10;
/** Values are shown in Coral messages up to this many characters, as AWS cuts them. */
const SHOWN_VALUE_CHARS = 4096;

type Shapes = ReadonlyMap<string, Shape>;

// --- setup -----------------------------------------------------------------------------------

/**
 * A real server for the whole test file: started before its first test, closed after its last.
 * The returned object reads through to it, so suites keep writing `t.server.url`.
 */
export function suiteServer(): TestServer {
  let t: TestServer | undefined;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t?.close();
  });
  const started = (): TestServer => {
    if (!t) throw new Error('the suite server is used outside a test or hook');
    return t;
  };
  return {
    get server() {
      return started().server;
    },
    get dataDir() {
      return started().dataDir;
    },
    get config() {
      return started().config;
    },
    get pinpoint() {
      return started().pinpoint;
    },
    close: () => started().close(),
  };
}

/** An IAM user with an access key and no policy: every signed call of theirs is authorized against nothing. */
export async function userWithoutRights(t: TestServer, userName: string): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  const iam = new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin });
  try {
    await iam.send(new CreateUserCommand({ UserName: userName }));
    const key = (await iam.send(new CreateAccessKeyCommand({ UserName: userName }))).AccessKey!;
    return { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! };
  } finally {
    iam.destroy();
  }
}

/** A model's shapes by name, with a service's deliberate deviations (its model overrides) applied. */
export function shapeMap(model: ServiceModel, overrides: Record<string, Partial<Shape>> = {}): Map<string, Shape> {
  const shapes = new Map(Object.entries(model.shapes));
  for (const [k, o] of Object.entries(overrides)) {
    const s = shapes.get(k);
    if (!s) throw new Error(`override for unknown shape ${k}`);
    shapes.set(k, { ...s, ...o });
  }
  return shapes;
}

/** `StreamName` → `streamName`, as Coral spells member paths. */
const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

/** The Java class names Coral uses for the model's number types. */
export const NUMBER_NAMES: Readonly<Record<string, string>> = { integer: 'Integer', long: 'Long', float: 'Float', double: 'Double' };

/** Checks every case, then fails once, listing the first differing ones and how many differ. */
export async function assertEveryCase<C>(cases: readonly C[], differs: (c: C) => Promise<string | undefined>): Promise<void> {
  const failures: string[] = [];
  for (const c of cases) {
    const d = await differs(c);
    if (d !== undefined) failures.push(d);
  }
  assert.deepEqual(failures.slice(0, SHOWN_FAILURES), [], `${failures.length} of ${cases.length} cases differ`);
}

// --- valid values ----------------------------------------------------------------------------

/** Candidates for strings with a pattern: the first one the pattern and length admit is used. */
const CANDIDATES = [
  'a',
  'abc',
  '/',
  'v1',
  '0',
  '1',
  'arn:aws:kinesis:us-east-1:000000000000:stream/s',
  'arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:1',
  'arn:aws:iam::000000000000:role/r',
  'arn:aws:iam::000000000000:policy/p',
  'arn:aws:s3:::bucket',
  'arn:aws:kms:us-east-1:000000000000:key/k',
  'arn:aws:firehose:us-east-1:000000000000:deliverystream/d',
  'arn:aws:secretsmanager:us-east-1:000000000000:secret:s',
  'arn:aws:glue:us-east-1:000000000000:catalog',
  'arn:aws:es:us-east-1:000000000000:domain/abc',
  'arn:aws:x',
  'https://example.com',
  'jdbc:redshift://host.redshift.amazonaws.com:5439/db',
  'aaaaaaaaaaaaaaaaaaaa-aaa',
  's3://bucket/key',
  'a.b.vpce.x.vpce-svc-aaaaaaaaaaaaaaaaa',
  'x.snowflakecomputing.com',
  '.gz',
  'AAAA',
  'us-east-1:00000000-0000-0000-0000-000000000000',
  'authenticated',
];

/**
 * A valid value of a shape as the server holds it after decoding (blobs as Buffers, timestamps as
 * Dates, structures with their required members only, in model order); each protocol puts it on
 * its wire. Undefined when the model admits nothing buildable (a list of at least MAX_BUILT items).
 */
export function validValue(shapes: Shapes, shapeName: string, depth = 0): unknown {
  const s = shapes.get(shapeName)!;
  switch (s.type) {
    case 'string': {
      if (s.enum) return s.enum[0];
      const min = s.min ?? 0;
      const re = s.pattern === undefined ? undefined : compilePattern(s.pattern);
      for (const c of CANDIDATES) {
        const v = c.length < min ? c + 'a'.repeat(min - c.length) : c;
        if ((s.max === undefined || v.length <= s.max) && (!re || re.test(v))) return v;
      }
      return undefined;
    }
    case 'integer':
    case 'long':
    case 'float':
    case 'double':
      return s.min ?? 1;
    case 'boolean':
      return true;
    case 'timestamp':
      return new Date(1_700_000_000_000);
    case 'blob':
      return Buffer.alloc(Math.max(s.min ?? 0, 3), 1);
    case 'list': {
      const n = s.min ?? 0;
      if (n > MAX_BUILT) return undefined;
      const item = n > 0 ? validValue(shapes, s.member!.shape, depth + 1) : undefined;
      if (n > 0 && item === undefined) return undefined;
      return Array.from({ length: n }, () => item);
    }
    case 'map': {
      const n = s.min ?? 0;
      if (n > MAX_BUILT) return undefined;
      const k = validValue(shapes, s.key!.shape);
      const v = n > 0 ? validValue(shapes, s.value!.shape, depth + 1) : undefined;
      if (n > 0 && (k === undefined || v === undefined)) return undefined;
      return Object.fromEntries(Array.from({ length: n }, (_, i) => [`${k as string}${i || ''}`, v]));
    }
    case 'structure': {
      if (depth > MAX_BUILT_DEPTH) return undefined;
      const out: Record<string, unknown> = {};
      for (const name of Object.keys(s.members ?? {})) {
        if (!(s.required ?? []).includes(name)) continue;
        const m = validValue(shapes, s.members![name].shape, depth + 1);
        if (m === undefined) return undefined;
        out[name] = m;
      }
      return out;
    }
  }
}

/**
 * A copy of `base` with the value at `path` (member names, list indexes) set, or removed with
 * `remove`; only the containers along the path are copied, so Buffers and Dates stay themselves.
 */
export function withValueAt(base: unknown, path: ReadonlyArray<string | number>, value: unknown, remove = false): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  const copy = (Array.isArray(base) ? [...(base as unknown[])] : { ...(base as object) }) as Record<string | number, unknown>;
  if (remove && rest.length === 0) delete copy[head];
  else copy[head] = withValueAt(copy[head], rest, value, remove);
  return copy;
}

/**
 * A decoded value written back as a JSON body: blobs as base64, timestamps as the protocol writes
 * them (awsJson: epoch seconds; restJson: ISO 8601). CBOR bodies carry the same tree.
 */
export function jsonBody(v: unknown, timestamp: (d: Date) => unknown): unknown {
  if (v instanceof Date) return timestamp(v);
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (Array.isArray(v)) return v.map((x) => jsonBody(x, timestamp));
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonBody(x, timestamp)]));
  return v;
}

// --- the oracle: constraint cases and Coral's messages ---------------------------------------

/** The constraint texts a string value breaks, in Coral's order (enum, pattern, lengths). */
function stringViolations(s: Shape, v: string): string[] {
  const out: string[] = [];
  if (s.enum && !s.enum.includes(v)) out.push(`Member must satisfy enum value set: [${s.enum.join(', ')}]`);
  const re = s.pattern === undefined ? null : compilePattern(s.pattern);
  if (re && !re.test(v)) out.push(`Member must satisfy regular expression pattern: ${s.pattern}`);
  if (s.min !== undefined && v.length < s.min) out.push(`Member must have length greater than or equal to ${s.min}`);
  if (s.max !== undefined && v.length > s.max) out.push(`Member must have length less than or equal to ${s.max}`);
  return out;
}

/** Text that breaks a pattern, tried in order until one breaks nothing else: ASCII first, then past Latin-1, past the BMP, a control character. */
const PATTERN_BREAKERS = ['!', ' ', '#%', '\u0101', '\u{1F600}', '\n'];

/** One constraint of a member broken: the value (as the server holds it) and the texts Coral lists, in order. */
interface ConstraintCase {
  title: string;
  value: unknown;
  constraints: string[];
}

/**
 * Each constraint of a shape broken once, the value otherwise valid. `encodable` says whether a
 * protocol can carry a list or map item at all (Query writes nothing for an empty structure).
 */
function constraintCases(shapes: Shapes, shapeName: string, encodable: (shape: string, value: unknown) => boolean = () => true): ConstraintCase[] {
  const s = shapes.get(shapeName)!;
  const out: ConstraintCase[] = [];
  if (s.type === 'string') {
    if (s.enum) out.push({ title: 'outside the enum', value: 'NOT_IN_THE_ENUM', constraints: stringViolations(s, 'NOT_IN_THE_ENUM') });
    if (s.min !== undefined && s.min > 0) {
      const v = 'a'.repeat(s.min - 1);
      out.push({ title: `shorter than ${s.min}`, value: v, constraints: stringViolations(s, v) });
    }
    if (s.max !== undefined && s.max < MAX_BUILT) {
      const base = validValue(shapes, shapeName) as string | undefined;
      const v = (base ?? 'a').padEnd(s.max + 1, 'a');
      out.push({ title: `longer than ${s.max}`, value: v, constraints: stringViolations(s, v) });
    }
    if (s.pattern !== undefined && compilePattern(s.pattern)) {
      for (const c of PATTERN_BREAKERS) {
        const v = c.repeat(Math.max(1, s.min ?? 1));
        const broken = stringViolations(s, v);
        if (broken.length === 1 && broken[0].includes('regular expression')) {
          out.push({ title: 'outside the pattern', value: v, constraints: broken });
          break;
        }
      }
    }
  } else if (s.type === 'integer' || s.type === 'long') {
    if (s.min !== undefined) out.push({ title: `below ${s.min}`, value: s.min - 1, constraints: [`Member must have value greater than or equal to ${s.min}`] });
    if (s.max !== undefined) out.push({ title: `above ${s.max}`, value: s.max + 1, constraints: [`Member must have value less than or equal to ${s.max}`] });
  } else if (s.type === 'list' || s.type === 'map') {
    const itemShape = s.type === 'list' ? s.member!.shape : s.value!.shape;
    const one = validValue(shapes, itemShape);
    const usable = one !== undefined && encodable(itemShape, one);
    const key = s.type === 'map' ? (validValue(shapes, s.key!.shape) as string | undefined) : '';
    const build = (n: number): unknown =>
      s.type === 'list' ? Array.from({ length: n }, () => one) : Object.fromEntries(Array.from({ length: n }, (_, i) => [`${key}${i}`, one]));
    if (s.min !== undefined && s.min > 0 && usable) {
      out.push({ title: `fewer than ${s.min} entries`, value: build(s.min - 1), constraints: [`Member must have length greater than or equal to ${s.min}`] });
    }
    // Numbered keys must stay valid keys (Cognito's RolesMap has two role types, no third to add).
    const keysValid = s.type === 'list' || (key !== undefined && Array.from({ length: (s.max ?? 0) + 1 }, (_, i) => stringViolations(shapes.get(s.key!.shape)!, `${key}${i}`)).every((v) => v.length === 0));
    if (s.max !== undefined && s.max < MAX_BUILT && usable && keysValid) {
      out.push({ title: `more than ${s.max} entries`, value: build(s.max + 1), constraints: [`Member must have length less than or equal to ${s.max}`] });
    }
  } else if (s.type === 'blob' && s.min !== undefined && s.min > 0) {
    out.push({ title: `fewer than ${s.min} bytes`, value: Buffer.alloc(s.min - 1), constraints: [`Member must have length greater than or equal to ${s.min}`] });
  }
  return out;
}

/** Whether a shape's values stay out of messages: sensitive, or a list, map or structure holding one (a cycle counts as not). */
export function hiddenShape(shapes: Shapes, name: string, seen = new Set<string>()): boolean {
  if (seen.has(name)) return false;
  seen.add(name);
  const s = shapes.get(name);
  if (!s) throw new Error(`no shape ${name}`);
  if (s.sensitive) return true;
  const refs = [s.member, s.key, s.value, ...Object.values(s.members ?? {})];
  return refs.some((r) => r !== undefined && hiddenShape(shapes, r.shape, seen));
}

/** "Value 'x' " / "Value null " / "Value " (a hidden shape: no value at all), as Coral starts a violation. */
function valuePrefix(shapes: Shapes, shape: string, value: unknown): string {
  if (hiddenShape(shapes, shape)) return 'Value ';
  return value === undefined || value === null ? 'Value null ' : `Value '${shownValue(value, SHOWN_VALUE_CHARS)}' `;
}

/** Coral's message for `constraints` broken by one member: "N validation error(s) detected: Value '…' at 'path' failed to satisfy constraint: …; …". */
function coralMessage(shapes: Shapes, shape: string, at: string, value: unknown, constraints: readonly string[]): string {
  const shown = valuePrefix(shapes, shape, value);
  const n = constraints.length;
  return `${n} validation error${n > 1 ? 's' : ''} detected: ${constraints.map((x) => `${shown}at '${at}' failed to satisfy constraint: ${x}`).join('; ')}`;
}

/** A member of an operation's input, reached from the root through required structures. */
export interface MemberSite {
  /** Member names from the input's root. */
  names: string[];
  /** Coral's path: `streamName`, `s3Configuration.roleARN`. */
  at: string;
  shape: string;
  required: boolean;
}

/** Every member of an input, depth-first in model order, entering nested structures that are required (present in a valid value). */
export function memberSites(shapes: Shapes, inputShape: string, maxDepth = MAX_WALK_DEPTH): MemberSite[] {
  const out: MemberSite[] = [];
  const walk = (shapeName: string, names: string[], path: string, depth: number) => {
    const s = shapes.get(shapeName)!;
    for (const [member, ref] of Object.entries(s.members ?? {})) {
      const at = path === '' ? lowerFirst(member) : `${path}.${lowerFirst(member)}`;
      const required = (s.required ?? []).includes(member);
      out.push({ names: [...names, member], at, shape: ref.shape, required });
      if (required && depth < maxDepth && shapes.get(ref.shape)!.type === 'structure' && validValue(shapes, ref.shape, depth + 1) !== undefined) {
        walk(ref.shape, [...names, member], at, depth + 1);
      }
    }
  };
  walk(inputShape, [], '', 0);
  return out;
}

/** A Coral validation case of one member: the value to put there (or remove it) and the exact message. */
export interface CoralCase {
  title: string;
  value?: unknown;
  remove?: true;
  message: string;
}

/** The Coral validation cases of a member: missing (when required), then each broken constraint. */
export function coralCases(shapes: Shapes, site: MemberSite, encodable?: (shape: string, value: unknown) => boolean): CoralCase[] {
  const out: CoralCase[] = [];
  if (site.required) out.push({ title: 'missing', remove: true, message: coralMessage(shapes, site.shape, site.at, null, ['Member must not be null']) });
  for (const c of constraintCases(shapes, site.shape, encodable)) out.push({ title: c.title, value: c.value, message: coralMessage(shapes, site.shape, site.at, c.value, c.constraints) });
  return out;
}
