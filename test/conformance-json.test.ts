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
// Valid values, constraint cases and Coral's messages come from helpers/conformance.ts; this file
// owns the awsJson/CBOR wire and Coral's serialization texts.

import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import { KinesisClient, PutRecordsCommand, CreateStreamCommand } from '@aws-sdk/client-kinesis';
import { signedRequest } from './helpers/signed.js';
import { kinesisClient } from './helpers/kinesis.js';
import { model as kinesisModel } from '../src/models/generated/kinesis.js';
import { model as firehoseModel } from '../src/models/generated/firehose.js';
import { model as cognitoModel } from '../src/models/generated/cognito-identity.js';
import type { ServiceModel, Shape } from '../src/models/types.js';
import { compilePattern, MAX_REPORTED_VALIDATION_ERRORS } from '../src/models/validate.js';
import { FIREHOSE_MODEL_OVERRIDES } from '../src/firehose/api.js';
import { assertEveryCase, coralCases, hiddenShape, jsonBody, memberSites, NUMBER_NAMES, shapeMap, suiteServer, userWithoutRights, validValue, withValueAt } from './helpers/conformance.js';

const JSON_CT = 'application/x-amz-json-1.1';
const CBOR_CT = 'application/x-amz-cbor-1.1';

const t = suiteServer();

interface Svc {
  name: string;
  signing: string;
  prefix: string;
  model: ServiceModel;
  shapes: Map<string, Shape>;
  /** Kinds of violation the model gives no reachable member to (no enum outside RoleMappings' map values). */
  absentKinds: string[];
}
const service = (name: string, signing: string, model: ServiceModel, overrides: Record<string, Partial<Shape>> = {}, absentKinds: string[] = []): Svc => ({
  name,
  signing,
  prefix: model.metadata.targetPrefix!,
  model,
  shapes: shapeMap(model, overrides),
  absentKinds,
});
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

/** A decoded value as an SDK writes it in awsJson (CBOR carries the same tree): timestamps as epoch seconds. */
const jsonWire = (v: unknown) => jsonBody(v, (d) => d.getTime() / 1000);

// --- violations ----------------------------------------------------------------------------

const TRUNCATING = 'class com.amazon.coral.value.json.numbers.TruncatingBigNumber';

/** One wrong JSON type per shape type, with Coral's text (kinesalite's recordings). */
function typeCase(s: Shape): { title: string; wire: unknown; serialization: string } {
  switch (s.type) {
    case 'string':
      return { title: 'a number for a string', wire: 23, serialization: `${TRUNCATING} can not be converted to an String` };
    case 'integer':
    case 'long':
    case 'float':
    case 'double':
      return { title: 'a string for a number', wire: '23', serialization: `class java.lang.String can not be converted to an ${NUMBER_NAMES[s.type]}` };
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

interface Generated {
  op: string;
  path: string;
  title: string;
  body: unknown;
  /** The member's shape is sensitive (or holds one): its value must not be in the message. */
  hidden: boolean;
  expected: { __type: string; Message?: string; message?: string };
}

/** Every case of every operation: each member of each required structure reached from the input, depth-first. */
function generate(svc: Svc): { cases: Generated[]; unbuildable: string[] } {
  const cases: Generated[] = [];
  const unbuildable: string[] = [];
  for (const [op, o] of Object.entries(svc.model.operations)) {
    if (!o.input) continue;
    const base = validValue(svc.shapes, o.input.shape);
    if (base === undefined) {
      unbuildable.push(op);
      continue;
    }
    const wireBase = jsonWire(base);
    for (const site of memberSites(svc.shapes, o.input.shape)) {
      const hidden = hiddenShape(svc.shapes, site.shape);
      const tc = typeCase(svc.shapes.get(site.shape)!);
      cases.push({ op, path: site.at, title: tc.title, body: withValueAt(wireBase, site.names, tc.wire), hidden, expected: { __type: 'SerializationException', Message: tc.serialization } });
      for (const c of coralCases(svc.shapes, site)) {
        const body = withValueAt(wireBase, site.names, jsonWire(c.value), c.remove);
        cases.push({ op, path: site.at, title: c.title, body, hidden, expected: { __type: 'ValidationException', message: c.message } });
      }
    }
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
        assert.ok(cases.some((c) => c.title.startsWith(kind)), `${svc.name} has a "${kind}" case`);
      }
      // Cognito's login tokens are sensitive: the suite includes constraints broken on them.
      if (svc.name === 'cognito-identity') assert.ok(cases.some((c) => c.hidden && c.expected.__type === 'ValidationException' && c.title !== 'missing'), 'cases on a sensitive member');
    });

    test(`JSON: every violation (${all.length} over all operations) answered 400 with the exact type and message`, async (tc) => {
      tc.diagnostic(`${svc.name}: ${cases.length} JSON cases on implemented operations`);
      await assertEveryCase(cases, async (g) => {
        const r = await send(svc, g.op, g.body);
        if (r.status === 400 && isDeepStrictEqual(r.body, g.expected)) return undefined;
        return `${g.op} ${g.path} (${g.title}): got ${r.status} ${JSON.stringify(r.body).slice(0, 300)}; want ${JSON.stringify(g.expected).slice(0, 300)}`;
      });
    });

    test('CBOR: a sample of the same violations (no blobs), answered in CBOR with the same type and message', async (tc) => {
      const sample = cases.filter((g, i) => i % 7 === 0 && !JSON.stringify(g.body).includes('AQEB') && g.title !== 'bad base64 for a blob');
      tc.diagnostic(`${svc.name}: ${sample.length} CBOR cases`);
      assert.ok(sample.length > 10);
      for (const g of sample) {
        const r = await send(svc, g.op, g.body, 'cbor');
        assert.equal(r.status, 400, `${g.op} ${g.path}`);
        assert.deepEqual(r.body, g.expected, `${g.op} ${g.path} (${g.title})`);
      }
    });
  });
}

// --- hand-written cases --------------------------------------------------------------------

describe('precedence and multi-error messages (Kinesis)', () => {
  const kinesis = SERVICES[0];
  let noRights: { accessKeyId: string; secretAccessKey: string };
  before(async () => {
    noRights = await userWithoutRights(t, 'conformance-nobody');
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
