// Conformance of the awsJson 1.1 / CBOR request layer (Kinesis, Firehose, Cognito Identity) with AWS's Coral
// validation, generated from the same model tables the server uses: for every operation, every
// member of its input (nested structures included) gets each of its constraints broken once, with
// every other required member valid, and the exact answer is computed here from the model: a wrong
// JSON type is a SerializationException with Coral's text; a missing required member, a length,
// range, pattern or enum outside the model is "1 validation error detected: Value '…' at
// 'memberPath' failed to satisfy constraint: …" ("Value at …", no value, for a sensitive shape
// such as Cognito's login tokens). Sent raw to a real server, signed (the model's noAuth
// operations unsigned, as devices send them), in JSON and a sample in CBOR. Then hand-written cases: AWS's precedence (serialization, validation,
// authorization, resource existence), multi-error messages, and the official SDK seeing them.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import { KinesisClient, PutRecordsCommand, CreateStreamCommand } from '@aws-sdk/client-kinesis';
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient } from '@aws-sdk/client-iam';
import { startTestServer, type TestServer } from './helpers/server.js';
import { signedRequest } from './helpers/signed.js';
import { kinesisClient } from './helpers/kinesis.js';
import { model as kinesisModel } from '../src/models/generated/kinesis.js';
import { model as firehoseModel } from '../src/models/generated/firehose.js';
import { model as cognitoModel } from '../src/models/generated/cognito-identity.js';
import type { ServiceModel, Shape } from '../src/models/types.js';
import { compilePattern, MAX_REPORTED_VALIDATION_ERRORS } from '../src/models/validate.js';
import { FIREHOSE_MODEL_OVERRIDES } from '../src/firehose/api.js';
import { shownValue } from '../src/models/shown.js';
import { hiddenShape, valuePrefix } from './helpers/sensitive.js';

const JSON_CT = 'application/x-amz-json-1.1';
const CBOR_CT = 'application/x-amz-cbor-1.1';
/** Longer strings, lists or blobs than this are not built (a 10 MiB blob, a 1 MiB token). */
const MAX_BUILT = 2048;

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t.close();
});

interface Svc {
  name: string;
  signing: string;
  prefix: string;
  model: ServiceModel;
  shapes: Map<string, Shape>;
  /** Kinds of violation the model gives no reachable member to (no enum outside RoleMappings' map values). */
  absentKinds: string[];
}
const service = (name: string, signing: string, model: ServiceModel, overrides: Record<string, Partial<Shape>> = {}, absentKinds: string[] = []): Svc => {
  const shapes = new Map(Object.entries(model.shapes));
  for (const [k, o] of Object.entries(overrides)) shapes.set(k, { ...shapes.get(k)!, ...o });
  return { name, signing, prefix: model.metadata.targetPrefix!, model, shapes, absentKinds };
};
const SERVICES = [
  service('kinesis', 'kinesis', kinesisModel),
  service('firehose', 'firehose', firehoseModel, FIREHOSE_MODEL_OVERRIDES),
  service('cognito-identity', cognitoModel.metadata.signingName ?? cognitoModel.metadata.endpointPrefix, cognitoModel, {}, ['outside the enum']),
];

/** Signed by `credentials`, except the model's noAuth operations, which go unsigned as a device sends them. */
async function send(svc: Svc, op: string, body: unknown, format: 'json' | 'cbor' = 'json', credentials = t.server.admin) {
  const headers = { 'content-type': format === 'json' ? JSON_CT : CBOR_CT, 'x-amz-target': `${svc.prefix}.${op}` };
  const payload = format === 'json' ? JSON.stringify(body) : Buffer.from(cborEncode(body));
  const res = svc.model.operations[op]?.unsigned
    ? await fetch(t.server.url, { method: 'POST', headers, body: payload })
    : await signedRequest(t.server.url, { path: '/', service: svc.signing, headers, body: payload, credentials });
  const raw = Buffer.from(await res.arrayBuffer());
  const answer = raw.length === 0 ? {} : format === 'json' ? JSON.parse(raw.toString('utf8')) : cborDecode(raw);
  return { status: res.status, body: answer as Record<string, unknown> };
}

const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

// --- valid values --------------------------------------------------------------------------

/** Candidates for strings with a pattern: the first one the pattern and length admit is used. */
const CANDIDATES = [
  'a',
  'abc',
  '0',
  '1',
  'arn:aws:kinesis:us-east-1:000000000000:stream/s',
  'arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:1',
  'arn:aws:iam::000000000000:role/r',
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

/** A valid wire value of a shape and what the server makes of it (blobs as Buffers, model order). */
interface Built {
  wire: unknown;
  typed: unknown;
}

function valid(svc: Svc, shapeName: string, depth = 0): Built | undefined {
  const s = svc.shapes.get(shapeName)!;
  switch (s.type) {
    case 'string': {
      if (s.enum) return { wire: s.enum[0], typed: s.enum[0] };
      const min = s.min ?? 0;
      const re = s.pattern === undefined ? undefined : compilePattern(s.pattern);
      for (const c of CANDIDATES) {
        const v = c.length < min ? c + 'a'.repeat(min - c.length) : c;
        if ((s.max === undefined || v.length <= s.max) && (!re || re.test(v))) return { wire: v, typed: v };
      }
      return undefined;
    }
    case 'integer':
    case 'long':
    case 'float':
    case 'double': {
      const n = s.min ?? 1;
      return { wire: n, typed: n };
    }
    case 'boolean':
      return { wire: true, typed: true };
    case 'timestamp':
      return { wire: 1_700_000_000, typed: new Date(1_700_000_000_000) };
    case 'blob': {
      const b = Buffer.alloc(Math.max(s.min ?? 0, 3), 1);
      return { wire: b.toString('base64'), typed: b };
    }
    case 'list': {
      const n = s.min ?? 0;
      if (n > MAX_BUILT) return undefined;
      const item = n > 0 ? valid(svc, s.member!.shape, depth + 1) : undefined;
      if (n > 0 && !item) return undefined;
      return { wire: Array.from({ length: n }, () => item!.wire), typed: Array.from({ length: n }, () => item!.typed) };
    }
    case 'map': {
      const n = s.min ?? 0;
      if (n > MAX_BUILT) return undefined;
      const k = valid(svc, s.key!.shape);
      const v = n > 0 ? valid(svc, s.value!.shape, depth + 1) : undefined;
      if (n > 0 && (!k || !v)) return undefined;
      const keys = Array.from({ length: n }, (_, i) => `${k!.wire as string}${i || ''}`);
      return { wire: Object.fromEntries(keys.map((x) => [x, v!.wire])), typed: Object.fromEntries(keys.map((x) => [x, v!.typed])) };
    }
    case 'structure': {
      if (depth > 8) return undefined;
      const wire: Record<string, unknown> = {};
      const typed: Record<string, unknown> = {};
      for (const name of Object.keys(s.members ?? {})) {
        if (!(s.required ?? []).includes(name)) continue;
        const m = valid(svc, s.members![name].shape, depth + 1);
        if (!m) return undefined;
        wire[name] = m.wire;
        typed[name] = m.typed;
      }
      return { wire, typed };
    }
  }
}

// --- violations ----------------------------------------------------------------------------

interface Case {
  title: string;
  wire: unknown;
  /** The member's value as the server holds it, shown in the message (undefined: a null). */
  typed?: unknown;
  /** SerializationException text, or the constraint texts in the validator's order. */
  serialization?: string;
  constraints?: string[];
}

const numberName: Record<string, string> = { integer: 'Integer', long: 'Long', float: 'Float', double: 'Double' };
const TRUNCATING = 'class com.amazon.coral.value.json.numbers.TruncatingBigNumber';

/** One wrong JSON type per shape type, with Coral's text (kinesalite's recordings). */
function typeCase(s: Shape): Case {
  switch (s.type) {
    case 'string':
      return { title: 'a number for a string', wire: 23, serialization: `${TRUNCATING} can not be converted to an String` };
    case 'integer':
    case 'long':
    case 'float':
    case 'double':
      return { title: 'a string for a number', wire: '23', serialization: `class java.lang.String can not be converted to an ${numberName[s.type]}` };
    case 'boolean':
      return { title: 'a number for a boolean', wire: 23, serialization: `${TRUNCATING} can not be converted to an Boolean` };
    case 'timestamp':
      return { title: 'a boolean for a timestamp', wire: true, serialization: 'class java.lang.Boolean can not be converted to milliseconds since epoch' };
    case 'blob':
      return { title: 'bad base64 for a blob', wire: '23456', serialization: "'23456' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5" };
    case 'list':
      return { title: 'an object for a list', wire: {}, serialization: 'Start of structure or map found where not expected.' };
    case 'map':
      return { title: 'a list for a map', wire: [], serialization: 'Start of list found where not expected' };
    case 'structure':
      return { title: 'a list for a structure', wire: [], serialization: 'Start of list found where not expected' };
  }
}

/** The constraint texts a string value breaks, in the validator's order (enum, pattern, lengths). */
function stringViolations(s: Shape, v: string): string[] {
  const out: string[] = [];
  if (s.enum && !s.enum.includes(v)) out.push(`Member must satisfy enum value set: [${s.enum.join(', ')}]`);
  const re = s.pattern === undefined ? null : compilePattern(s.pattern);
  if (re && !re.test(v)) out.push(`Member must satisfy regular expression pattern: ${s.pattern}`);
  if (s.min !== undefined && v.length < s.min) out.push(`Member must have length greater than or equal to ${s.min}`);
  if (s.max !== undefined && v.length > s.max) out.push(`Member must have length less than or equal to ${s.max}`);
  return out;
}

function constraintCases(svc: Svc, s: Shape): Case[] {
  const out: Case[] = [];
  if (s.type === 'string') {
    if (s.enum) out.push({ title: 'outside the enum', wire: 'NOT_IN_THE_ENUM', typed: 'NOT_IN_THE_ENUM', constraints: stringViolations(s, 'NOT_IN_THE_ENUM') });
    if (s.min !== undefined && s.min > 0) {
      const v = 'a'.repeat(s.min - 1);
      out.push({ title: `shorter than ${s.min}`, wire: v, typed: v, constraints: stringViolations(s, v) });
    }
    if (s.max !== undefined && s.max < MAX_BUILT) {
      const base = valid(svc, nameOf(svc, s))?.wire as string | undefined;
      const v = (base ?? 'a').padEnd(s.max + 1, 'a');
      out.push({ title: `longer than ${s.max}`, wire: v, typed: v, constraints: stringViolations(s, v) });
    }
    if (s.pattern !== undefined && compilePattern(s.pattern)) {
      for (const c of ['!', ' ', '\n', '#%']) {
        const v = c.repeat(Math.max(1, s.min ?? 1));
        const broken = stringViolations(s, v);
        if (broken.length === 1 && broken[0].includes('regular expression')) {
          out.push({ title: 'outside the pattern', wire: v, typed: v, constraints: broken });
          break;
        }
      }
    }
  } else if (s.type === 'integer' || s.type === 'long') {
    if (s.min !== undefined) out.push({ title: `below ${s.min}`, wire: s.min - 1, typed: s.min - 1, constraints: [`Member must have value greater than or equal to ${s.min}`] });
    if (s.max !== undefined) out.push({ title: `above ${s.max}`, wire: s.max + 1, typed: s.max + 1, constraints: [`Member must have value less than or equal to ${s.max}`] });
  } else if (s.type === 'list' || s.type === 'map') {
    const one = s.type === 'list' ? valid(svc, s.member!.shape) : valid(svc, s.value!.shape);
    const key = s.type === 'map' ? (valid(svc, s.key!.shape)?.wire as string | undefined) : '';
    const build = (n: number): Built => {
      if (s.type === 'list') return { wire: Array.from({ length: n }, () => one!.wire), typed: Array.from({ length: n }, () => one!.typed) };
      const keys = Array.from({ length: n }, (_, i) => `${key}${i}`);
      return { wire: Object.fromEntries(keys.map((k) => [k, one!.wire])), typed: Object.fromEntries(keys.map((k) => [k, one!.typed])) };
    };
    if (s.min !== undefined && s.min > 0) {
      const b = build(s.min - 1);
      out.push({ title: `fewer than ${s.min} entries`, ...b, constraints: [`Member must have length greater than or equal to ${s.min}`] });
    }
    // Numbered keys must stay valid keys (RolesMap's two role types leave no third one to add).
    const keysValid = s.type === 'list' || (key !== undefined && Array.from({ length: (s.max ?? 0) + 1 }, (_, i) => stringViolations(svc.shapes.get(s.key!.shape)!, `${key}${i}`)).every((v) => v.length === 0));
    if (s.max !== undefined && s.max < MAX_BUILT && one && keysValid) {
      const b = build(s.max + 1);
      out.push({ title: `more than ${s.max} entries`, ...b, constraints: [`Member must have length less than or equal to ${s.max}`] });
    }
  } else if (s.type === 'blob' && s.min !== undefined && s.min > 0) {
    const b = Buffer.alloc(s.min - 1);
    out.push({ title: `fewer than ${s.min} bytes`, wire: b.toString('base64'), typed: b, constraints: [`Member must have length greater than or equal to ${s.min}`] });
  }
  return out;
}

function nameOf(svc: Svc, s: Shape): string {
  for (const [k, v] of svc.shapes) if (v === s) return k;
  throw new Error('shape not in model');
}

interface Generated {
  op: string;
  path: string;
  c: Case;
  body: unknown;
  /** The member's shape is sensitive (or holds one): its value must not be in the message. */
  hidden: boolean;
  expected: { __type: string; Message?: string; message?: string };
}

/** Every case of every operation: each member of each structure reached from the input, depth-first. */
function generate(svc: Svc): { cases: Generated[]; unbuildable: string[] } {
  const cases: Generated[] = [];
  const unbuildable: string[] = [];
  for (const [op, o] of Object.entries(svc.model.operations)) {
    if (!o.input) continue;
    const base = valid(svc, o.input.shape);
    if (!base) {
      unbuildable.push(op);
      continue;
    }
    const walk = (shapeName: string, wirePath: string[], path: string, depth: number) => {
      const s = svc.shapes.get(shapeName)!;
      for (const [member, ref] of Object.entries(s.members ?? {})) {
        const ms = svc.shapes.get(ref.shape)!;
        const at = path === '' ? lowerFirst(member) : `${path}.${lowerFirst(member)}`;
        const put = (value: unknown, remove = false) => {
          const body = structuredClone(base.wire) as Record<string, unknown>;
          let o2 = body;
          for (const p of wirePath) o2 = o2[p] as Record<string, unknown>;
          if (remove) delete o2[member];
          else o2[member] = value;
          return body;
        };
        const hidden = hiddenShape(svc.shapes, ref.shape);
        const tc = typeCase(ms);
        cases.push({ op, path: at, c: tc, body: put(tc.wire), hidden, expected: { __type: 'SerializationException', Message: tc.serialization } });
        if ((s.required ?? []).includes(member)) {
          cases.push({
            op,
            path: at,
            c: { title: 'missing' , wire: undefined },
            body: put(undefined, true),
            hidden,
            expected: { __type: 'ValidationException', message: `1 validation error detected: ${valuePrefix(svc.shapes, ref.shape, null)}at '${at}' failed to satisfy constraint: Member must not be null` },
          });
        }
        for (const c of constraintCases(svc, ms)) {
          const n = c.constraints!.length;
          const shown = valuePrefix(svc.shapes, ref.shape, c.typed);
          cases.push({
            op,
            path: at,
            c,
            body: put(c.wire),
            hidden,
            expected: {
              __type: 'ValidationException',
              message: `${n} validation error${n > 1 ? 's' : ''} detected: ${c.constraints!.map((x) => `${shown}at '${at}' failed to satisfy constraint: ${x}`).join('; ')}`,
            },
          });
        }
        // Into nested structures that are required (present in the base body) or buildable.
        if (ms.type === 'structure' && depth < 4) {
          const inner = valid(svc, ref.shape, depth + 1);
          if (inner && (s.required ?? []).includes(member)) walk(ref.shape, [...wirePath, member], at, depth + 1);
        }
      }
    };
    walk(o.input.shape, [], '', 0);
  }
  return { cases, unbuildable };
}

for (const svc of SERVICES) {
  describe(`${svc.name}: every constraint of every operation's input, from the model`, () => {
    const { cases: all, unbuildable } = generate(svc);
    let cases: Generated[] = [];
    const implemented = new Set<string>();
    before(async () => {
      // Operations Pinstream does not implement answer UnknownOperationException before any check.
      for (const op of Object.keys(svc.model.operations)) {
        const r = await send(svc, op, {});
        if (r.body.__type !== 'UnknownOperationException') implemented.add(op);
      }
      cases = all.filter((g) => implemented.has(g.op));
    });

    test('the generated suite covers every implemented operation and each kind of violation', () => {
      assert.deepEqual(unbuildable, [], 'every operation has a valid base request');
      assert.ok(implemented.size >= 10, `${implemented.size} operations implemented`);
      // Operations whose input has no members (DescribeLimits) have nothing to violate.
      const hasMembers = (op: string) => Object.keys(svc.model.shapes[svc.model.operations[op].input?.shape ?? '']?.members ?? {}).length > 0;
      assert.deepEqual(new Set(cases.map((c) => c.op)), new Set([...implemented].filter(hasMembers)));
      for (const kind of ['missing', 'shorter than', 'longer than', 'below', 'outside the enum', 'outside the pattern', 'fewer than', 'a number for a string'].filter((k) => !svc.absentKinds.includes(k))) {
        assert.ok(cases.some((c) => c.c.title.startsWith(kind)), `${svc.name} has a "${kind}" case`);
      }
      // Cognito's login tokens are sensitive: the suite includes constraints broken on them.
      if (svc.name === 'cognito-identity') assert.ok(cases.some((c) => c.hidden && c.expected.__type === 'ValidationException' && c.c.title !== 'missing'), 'cases on a sensitive member');
    });

    test(`JSON: every violation (${all.length} over all operations) answered 400 with the exact type and message`, async () => {
      const failures: string[] = [];
      for (const g of cases) {
        const r = await send(svc, g.op, g.body);
        try {
          assert.equal(r.status, 400);
          assert.deepEqual(r.body, g.expected);
        } catch {
          failures.push(`${g.op} ${g.path} (${g.c.title}): got ${r.status} ${JSON.stringify(r.body).slice(0, 300)}; want ${JSON.stringify(g.expected).slice(0, 300)}`);
        }
      }
      assert.deepEqual(failures.slice(0, 10), [], `${failures.length} of ${cases.length} cases differ`);
    });

    test('CBOR: a sample of the same violations (no blobs), answered in CBOR with the same type and message', async () => {
      const sample = cases.filter((g, i) => i % 7 === 0 && !JSON.stringify(g.body).includes('AQEB') && g.c.title !== 'bad base64 for a blob');
      assert.ok(sample.length > 10);
      for (const g of sample) {
        const r = await send(svc, g.op, g.body, 'cbor');
        assert.equal(r.status, 400, `${g.op} ${g.path}`);
        assert.deepEqual(r.body, g.expected, `${g.op} ${g.path} (${g.c.title})`);
      }
    });
  });
}

// --- hand-written cases --------------------------------------------------------------------

describe('precedence and multi-error messages (Kinesis)', () => {
  const kinesis = SERVICES[0];
  let noRights: { accessKeyId: string; secretAccessKey: string };
  before(async () => {
    const iam = new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin });
    await iam.send(new CreateUserCommand({ UserName: 'conformance-nobody' }));
    const key = (await iam.send(new CreateAccessKeyCommand({ UserName: 'conformance-nobody' }))).AccessKey!;
    noRights = { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! };
    iam.destroy();
  });

  test('serialization before validation: a wrong type anywhere wins over missing members', async () => {
    const r = await send(kinesis, 'PutRecord', { StreamName: '', Data: 5 });
    assert.deepEqual(r.body, { __type: 'SerializationException', Message: `${TRUNCATING} can not be converted to a Blob` });
  });

  test('every constraint violation in one message, in model member order, nested paths with 1-based list indexes', async () => {
    const r = await send(kinesis, 'PutRecords', { StreamName: 'bad name', Records: [{ Data: 'AAAA', PartitionKey: 'k' }, { Data: 'AAAA', PartitionKey: '', ExplicitHashKey: 'x' }] });
    assert.equal(r.status, 400);
    assert.deepEqual(r.body, {
      __type: 'ValidationException',
      message:
        '3 validation errors detected: ' +
        "Value 'x' at 'records.2.member.explicitHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38}); " +
        "Value '' at 'records.2.member.partitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1; " +
        "Value 'bad name' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
    });
  });

  test('an empty stream name breaks the pattern and the length: two errors, as kinesalite recorded', async () => {
    const r = await send(kinesis, 'CreateStream', { StreamName: '', ShardCount: 0 });
    assert.deepEqual(r.body, {
      __type: 'ValidationException',
      message:
        '3 validation errors detected: ' +
        "Value '' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; " +
        "Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1; " +
        "Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1",
    });
  });

  test(`at most ${MAX_REPORTED_VALIDATION_ERRORS} violations are reported`, async () => {
    const Records = Array.from({ length: 20 }, () => ({ Data: 'AAAA', PartitionKey: '' }));
    const r = await send(kinesis, 'PutRecords', { StreamName: 's', Records });
    assert.equal(r.body.__type, 'ValidationException');
    assert.match(r.body.message as string, new RegExp(`^${MAX_REPORTED_VALIDATION_ERRORS} validation errors detected: `));
    assert.equal((r.body.message as string).split('; ').length, MAX_REPORTED_VALIDATION_ERRORS);
    assert.match(r.body.message as string, /records\.10\.member\.partitionKey/);
    assert.doesNotMatch(r.body.message as string, /records\.11\./);
  });

  test('map values and keys are reported at the map, with the member constraints listed', async () => {
    const r = await send(kinesis, 'AddTagsToStream', { StreamName: 's', Tags: { a: 'v'.repeat(257) } });
    assert.deepEqual(r.body, {
      __type: 'ValidationException',
      message: `1 validation error detected: Value '{a=${'v'.repeat(257)}}' at 'tags' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 256, Member must have length greater than or equal to 0]`,
    });
  });

  test('unknown members are ignored; null is absent', async () => {
    const r = await send(kinesis, 'DescribeStreamSummary', { StreamName: 'missing-stream', Bogus: { x: [1] }, StreamARN: null });
    assert.equal(r.body.__type, 'ResourceNotFoundException');
  });

  test('validation before authorization, authorization before existence', async () => {
    const invalid = await send(kinesis, 'DescribeStreamSummary', { StreamName: '!' }, 'json', noRights);
    assert.equal(invalid.body.__type, 'ValidationException');
    const bad = await send(kinesis, 'DescribeStreamSummary', { StreamName: 7 }, 'json', noRights);
    assert.equal(bad.body.__type, 'SerializationException');
    const denied = await send(kinesis, 'DescribeStreamSummary', { StreamName: 'missing-stream' }, 'json', noRights);
    assert.equal(denied.status, 400);
    assert.equal(denied.body.__type, 'AccessDeniedException');
    const missing = await send(kinesis, 'DescribeStreamSummary', { StreamName: 'missing-stream' });
    assert.equal(missing.body.__type, 'ResourceNotFoundException');
  });

  test('business rules after existence: a retention below 24 hours on a missing stream is not found; on a stream, InvalidArgumentException', async () => {
    const missing = await send(kinesis, 'IncreaseStreamRetentionPeriod', { StreamName: 'missing-stream', RetentionPeriodHours: 1 });
    assert.equal(missing.body.__type, 'ResourceNotFoundException');
    await send(kinesis, 'CreateStream', { StreamName: 'conf-ret', ShardCount: 1 });
    const short = await send(kinesis, 'IncreaseStreamRetentionPeriod', { StreamName: 'conf-ret', RetentionPeriodHours: 1 });
    assert.deepEqual(short.body, { __type: 'InvalidArgumentException', message: 'Minimum allowed retention period is 24 hours. Requested retention period (1 hours) is too short.' });
  });

  test('the official SDK surfaces the ValidationException with its exact message and status', async () => {
    const k: KinesisClient = kinesisClient(t.server);
    try {
      await assert.rejects(k.send(new CreateStreamCommand({ StreamName: 'x'.repeat(129), ShardCount: 1 })), (e: Error & { name: string; $metadata: { httpStatusCode?: number } }) => {
        assert.equal(e.name, 'ValidationException');
        assert.equal(e.$metadata.httpStatusCode, 400);
        assert.equal(e.message, `1 validation error detected: Value '${'x'.repeat(129)}' at 'streamName' failed to satisfy constraint: Member must have length less than or equal to 128`);
        return true;
      });
      await assert.rejects(k.send(new PutRecordsCommand({ StreamName: 's', Records: [] })), (e: Error & { name: string }) => {
        assert.equal(e.name, 'ValidationException');
        assert.equal(e.message, "1 validation error detected: Value '[]' at 'records' failed to satisfy constraint: Member must have length greater than or equal to 1");
        return true;
      });
    } finally {
      k.destroy();
    }
  });
});

describe('model patterns', () => {
  test('every pattern of the awsJson models (Kinesis, Firehose, Cognito Identity) compiles in JavaScript, anchored like Java matches()', () => {
    for (const svc of SERVICES) {
      for (const [name, s] of svc.shapes) if (s.pattern !== undefined) assert.ok(compilePattern(s.pattern), `${svc.name} ${name}: ${s.pattern}`);
    }
    const re = compilePattern('0|([1-9]\\d{0,38})')!;
    assert.ok(re.test('0') && re.test('12'));
    assert.ok(!re.test('012') && !re.test('1x'), 'the whole string must match, alternation included');
  });

  test('a pattern JavaScript cannot compile is skipped, not a crash', () => {
    assert.equal(compilePattern('[a-z&&[^b]]++(?<'), null);
  });
});

describe('Cognito Identity: login tokens (a sensitive shape) are never echoed', () => {
  const cognito = SERVICES.find((s) => s.name === 'cognito-identity')!;
  const POOL = 'us-east-1:00000000-0000-0000-0000-000000000000';
  const SECRET = 'eyJhbGciOiJSUzI1NiJ9.secret-token';
  const tokenShape = cognito.shapes.get(cognito.shapes.get('LoginsMap')!.value!.shape)!;

  test('the shapes are what the model says: LoginsMap values are sensitive, their map is not', () => {
    assert.equal(tokenShape.sensitive, true);
    assert.notEqual(cognito.shapes.get('LoginsMap')!.sensitive, true);
  });

  test('an empty or too long token: "Value at \'logins\'", the constraints, no value (unsigned GetId)', async () => {
    const describe = `[Member must have length less than or equal to ${tokenShape.max}, Member must have length greater than or equal to ${tokenShape.min}]`;
    for (const token of ['', SECRET + 'x'.repeat(tokenShape.max!)]) {
      const r = await send(cognito, 'GetId', { IdentityPoolId: POOL, Logins: { 'login.example': token } });
      assert.equal(r.status, 400);
      assert.deepEqual(r.body, { __type: 'ValidationException', message: `1 validation error detected: Value at 'logins' failed to satisfy constraint: Map value must satisfy constraint: ${describe}` });
    }
  });

  test('too many logins: the map is not shown, the member beside it is', async () => {
    const Logins = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`p${i}.example`, `${SECRET}${i}`]));
    const r = await send(cognito, 'GetCredentialsForIdentity', { IdentityId: 'bad id!', Logins });
    assert.deepEqual(r.body, {
      __type: 'ValidationException',
      message:
        "2 validation errors detected: Value 'bad id!' at 'identityId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w-]+:[0-9a-f-]+; " +
        "Value at 'logins' failed to satisfy constraint: Member must have length less than or equal to 10",
    });
  });

  test('a missing required Logins (UnlinkIdentity) says "Value at" too; a non-sensitive member still says "Value null at"', async () => {
    const r = await send(cognito, 'UnlinkIdentity', { IdentityId: POOL, LoginsToRemove: ['p'] });
    assert.deepEqual(r.body, { __type: 'ValidationException', message: "1 validation error detected: Value at 'logins' failed to satisfy constraint: Member must not be null" });
    const n = await send(cognito, 'UnlinkIdentity', { IdentityId: POOL, Logins: { p: SECRET } });
    assert.deepEqual(n.body, { __type: 'ValidationException', message: "1 validation error detected: Value null at 'loginsToRemove' failed to satisfy constraint: Member must not be null" });
  });

  test('the official SDK surfaces the message without the token', async () => {
    const { CognitoIdentityClient, GetIdCommand } = await import('@aws-sdk/client-cognito-identity');
    const c = new CognitoIdentityClient({ endpoint: t.server.url, region: 'us-east-1', maxAttempts: 1, credentials: t.server.admin });
    try {
      await assert.rejects(c.send(new GetIdCommand({ IdentityPoolId: POOL, Logins: { 'login.example': '' } })), (e: Error & { name: string }) => {
        assert.equal(e.name, 'ValidationException');
        assert.match(e.message, /^1 validation error detected: Value at 'logins' failed to satisfy constraint: Map value must satisfy constraint: \[/);
        return true;
      });
      const long = SECRET.padEnd(tokenShape.max! + 1, 's');
      await assert.rejects(c.send(new GetIdCommand({ IdentityPoolId: POOL, Logins: { 'login.example': long } })), (e: Error) => {
        assert.ok(!e.message.includes(SECRET), e.message.slice(0, 200));
        return true;
      });
    } finally {
      c.destroy();
    }
  });
});
