// Deeply nested client documents are a clean 400 naming MAX_NESTING_DEPTH, in every protocol:
// Pinpoint's REST JSON (PutEvents, UpdateEndpoint, UpdateEndpointsBatch), Kinesis and Firehose
// JSON 1.1, Kinesis CBOR (refused while decoding) and IAM policy documents. A document exactly at
// the limit is accepted. Before the limit, an Endpoint nested 10,000 deep overflowed the stack and
// answered 500. Sent as signed raw requests: the SDKs would not send unknown nested members.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CreateAppCommand, PutEventsCommand } from '@aws-sdk/client-pinpoint';
import { CreateUserCommand, IAMClient, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { decode } from 'cborg';
import { MAX_NESTING_DEPTH, MAX_RECORD_NESTING_DEPTH, nestingExceeds } from '../src/nesting.js';
import { MALFORMED_DATA } from '../src/firehose/parquet.js';
import { pinpointParquet } from './helpers/pinpoint-table.js';
import { jsonRows, parseCopyOptions } from '../src/firehose/destinations/redshift.js';
import { DepthLimitedTokenizer } from '../src/http/cbor-depth.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { assertRestError, kinesisPost, signedFetch, signedRequest } from './helpers/signed.js';
import { CBOR_CONTENT_TYPE } from './helpers/cbor.js';
import type { ServiceModel } from '../src/models/types.js';
import { model as pinpointModel } from '../src/models/generated/pinpoint.js';
import { model as kinesisModel } from '../src/models/generated/kinesis.js';
import { model as firehoseModel } from '../src/models/generated/firehose.js';
import { model as iamModel } from '../src/models/generated/iam.js';
import { model as stsModel } from '../src/models/generated/sts.js';

/** JSON text of `depth` nested arrays around 1: depth 1 is `[1]`. */
const arrays = (depth: number) => '['.repeat(depth) + '1' + ']'.repeat(depth);
const DEEP = 10_000;

describe('nestingExceeds and the CBOR tokenizer', () => {
  test(`the top-level object is level 1; level ${MAX_NESTING_DEPTH} passes, ${MAX_NESTING_DEPTH + 1} does not, and a deep value does not overflow the check`, () => {
    assert.equal(nestingExceeds({}), false);
    assert.equal(nestingExceeds('text'), false);
    assert.equal(nestingExceeds(JSON.parse(`{"a":${arrays(MAX_NESTING_DEPTH - 1)}}`)), false);
    assert.equal(nestingExceeds(JSON.parse(`{"a":${arrays(MAX_NESTING_DEPTH)}}`)), true);
    assert.equal(nestingExceeds(JSON.parse(`{"a":{"b":[{}, ${arrays(MAX_NESTING_DEPTH)}]}}`)), true);
    assert.equal(nestingExceeds(JSON.parse(arrays(1_000_000))), true);
    assert.equal(nestingExceeds([[1]], 2), false);
    assert.equal(nestingExceeds([[[1]]], 2), true);
  });

  test('CBOR: arrays, maps, indefinite lengths and tags count; decoding stops at the limit', () => {
    const cbor = (...bytes: number[]) => Uint8Array.from(bytes);
    const nested = (depth: number, open: number[], close: number[] = []) =>
      Uint8Array.from([...Array.from({ length: depth }, () => open).flat(), 0x01, ...Array.from({ length: depth }, () => close).flat()]);
    const dec = (b: Uint8Array) => decode(b, { tokenizer: new DepthLimitedTokenizer(b), tags: Object.assign([], { 1: (d: () => unknown) => d() }) });
    assert.deepEqual(dec(cbor(0x82, 0x81, 0x01, 0x81, 0x02)), [[1], [2]], 'siblings do not add depth');
    assert.deepEqual(dec(cbor(0xa2, 0x61, 0x61, 0x80, 0x61, 0x62, 0x81, 0x80)), { a: [], b: [[]] });
    for (const [name, open, close] of [
      ['definite arrays', [0x81], []],
      ['indefinite arrays', [0x9f], [0xff]],
      ['maps', [0xa1, 0x61, 0x6b], []],
      ['tags', [0xc1], []],
    ] as Array<[string, number[], number[]]>) {
      assert.doesNotThrow(() => dec(nested(MAX_NESTING_DEPTH, open, close)), name);
      assert.throws(() => dec(nested(MAX_NESTING_DEPTH + 1, open, close)), /nests objects and arrays more than 32 levels deep/, name);
      assert.throws(() => dec(nested(DEEP, open, close)), /more than 32 levels deep/, name);
    }
  });
});

/** Deepest object/array nesting of a shape's JSON (a structure, list or map is one level); throws on a recursive shape. */
function shapeDepth(m: ServiceModel, name: string, path: string[] = []): number {
  if (path.includes(name)) throw new Error(`recursive shape ${[...path, name].join(' > ')}`);
  const s = m.shapes[name];
  const inner = (ref: { shape: string } | undefined) => (ref ? shapeDepth(m, ref.shape, [...path, name]) : 0);
  if (s.type === 'structure') return 1 + Math.max(0, ...Object.values(s.members ?? {}).filter((r) => r.location === undefined).map(inner));
  if (s.type === 'list') return 1 + inner(s.member);
  if (s.type === 'map') return 1 + inner(s.value);
  return 0;
}

test(`no operation of the Pinpoint, Kinesis, Firehose, IAM or STS models takes input nested anywhere near MAX_NESTING_DEPTH (${MAX_NESTING_DEPTH})`, () => {
  let deepest = { depth: 0, where: '' };
  for (const m of [pinpointModel, kinesisModel, firehoseModel, iamModel, stsModel] as ServiceModel[]) {
    for (const [op, o] of Object.entries(m.operations)) {
      if (!o.input) continue;
      const input = m.shapes[o.input.shape];
      // restJson: a payload member is the whole body.
      const depth = input.payload ? shapeDepth(m, input.members![input.payload].shape) : shapeDepth(m, o.input.shape);
      if (depth > deepest.depth) deepest = { depth, where: `${m.metadata.serviceId} ${op}` };
    }
  }
  assert.ok(deepest.depth > 0 && deepest.depth <= 12, `deepest valid input: ${deepest.where}, ${deepest.depth} levels`);
  assert.ok(MAX_NESTING_DEPTH >= 2 * deepest.depth, 'the limit leaves room for members a client adds and the server ignores');
  // An IAM policy document (a JSON string inside a Query parameter) with a Condition: 6 levels.
  assert.equal(nestingExceeds(JSON.parse('{"Statement":[{"Condition":{"StringEquals":{"aws:SourceArn":["x"]}}}]}'), 5), true);
  assert.equal(nestingExceeds(JSON.parse('{"Statement":[{"Condition":{"StringEquals":{"aws:SourceArn":["x"]}}}]}'), 6), false);
});

describe('deeply nested requests are 400s, in every protocol', () => {
  let t: TestServer;
  let app: string;
  before(async () => {
    t = await startTestServer();
    app = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'nesting' } }))).ApplicationResponse!.Id!;
  });
  after(() => t.close());

  const putEvents = (endpoint: string) =>
    signedFetch(t.server.url, {
      path: `/v1/apps/${app}/events`,
      credentials: t.server.admin,
      body: `{"BatchItem":{"d1":{"Endpoint":${endpoint},"Events":{"e1":{"EventType":"x","Timestamp":"2026-11-26T10:00:00Z"}}}}}`,
    });

  test(`PutEvents: an Endpoint nested ${DEEP} deep is a 400 naming the limit, not a 500; one at the limit is accepted`, async () => {
    assertRestError(await putEvents(`{"Demographic":{"X":${arrays(DEEP)}}}`), 400, 'BadRequestException', /PutEvents request body nests objects and arrays more than 32 levels deep; the maximum is 32/);
    // Body 1, BatchItem 2, item 3, Endpoint 4, Demographic 5, then arrays up to level 32.
    const atLimit = await putEvents(`{"Demographic":{"X":${arrays(MAX_NESTING_DEPTH - 5)}}}`);
    assert.equal(atLimit.status, 202, atLimit.text);
    assertRestError(await putEvents(`{"Demographic":{"X":${arrays(MAX_NESTING_DEPTH - 4)}}}`), 400, 'BadRequestException', /more than 32 levels deep/);
  });

  test('UpdateEndpoint and UpdateEndpointsBatch: a deeply nested endpoint is a 400', async () => {
    const one = await signedFetch(t.server.url, {
      method: 'PUT',
      path: `/v1/apps/${app}/endpoints/deep`,
      credentials: t.server.admin,
      body: `{"Location":{"City":"x","Y":${arrays(DEEP)}}}`,
    });
    assertRestError(one, 400, 'BadRequestException', /Request body nests objects and arrays more than 32 levels deep/);
    const batch = await signedFetch(t.server.url, {
      method: 'PUT',
      path: `/v1/apps/${app}/endpoints`,
      credentials: t.server.admin,
      body: `{"Item":[{"Id":"deep","User":{"UserAttributes":{"a":${arrays(DEEP)}}}}]}`,
    });
    assertRestError(batch, 400, 'BadRequestException', /UpdateEndpointsBatch request nests objects and arrays more than 32 levels deep/);
  });

  test('unknown members of an endpoint are not stored (Pinpoint ignores them), so nothing nested is kept', async () => {
    const res = await signedFetch(t.server.url, {
      method: 'PUT',
      path: `/v1/apps/${app}/endpoints/extra`,
      credentials: t.server.admin,
      body: JSON.stringify({ Demographic: { Make: 'm', Extra: [[1]] }, Location: { City: 'c', Latitude: 1, More: { a: 1 } } }),
    });
    assert.equal(res.status, 202);
    const got = await signedFetch(t.server.url, { method: 'GET', path: `/v1/apps/${app}/endpoints/extra`, credentials: t.server.admin });
    assert.deepEqual(got.json.Demographic, { Make: 'm' });
    assert.deepEqual(got.json.Location, { City: 'c', Latitude: 1 });
  });

  test('Kinesis and Firehose JSON 1.1: a deeply nested body is a 400 SerializationException', async () => {
    for (const [service, target] of [
      ['kinesis', 'Kinesis_20131202.ListStreams'],
      ['firehose', 'Firehose_20150804.ListDeliveryStreams'],
    ]) {
      const res = await signedRequest(t.server.url, {
        path: '/',
        service,
        headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': target },
        body: `{"X":${arrays(DEEP)}}`,
        credentials: t.server.admin,
      });
      assert.equal(res.status, 400, service);
      const body = (await res.json()) as { __type: string; Message: string };
      assert.equal(body.__type, 'SerializationException');
      assert.match(body.Message, /Request body nests objects and arrays more than 32 levels deep/);
    }
  });

  test(`Kinesis CBOR: a body nested ${DEEP} deep is refused while decoding; one at the limit is decoded`, async () => {
    // {"X": [[[…1…]]]}: a map (level 1) holding nested one-element arrays.
    const body = (depth: number) => Buffer.from([0xa1, 0x61, 0x58, ...Array.from({ length: depth - 1 }, () => 0x81), 0x01]);
    const deep = await kinesisPost(t.server.url, t.server.admin, 'ListStreams', CBOR_CONTENT_TYPE, body(DEEP));
    assert.equal(deep.status, 400);
    const answer = decode(Buffer.from(await deep.arrayBuffer())) as { __type: string; Message: string };
    assert.equal(answer.__type, 'SerializationException');
    assert.match(answer.Message, /CBOR body nests objects and arrays more than 32 levels deep/);
    const ok = await kinesisPost(t.server.url, t.server.admin, 'ListStreams', CBOR_CONTENT_TYPE, body(MAX_NESTING_DEPTH));
    assert.equal(ok.status, 200);
  });

  test('IAM: a policy document nested too deep is MalformedPolicyDocument (400)', async () => {
    const iam = new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 });
    try {
      await iam.send(new CreateUserCommand({ UserName: 'deep-policy' }));
      const doc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*","Condition":{"StringEquals":{"aws:SourceAccount":${arrays(DEEP)}}}}]}`;
      await assert.rejects(iam.send(new PutUserPolicyCommand({ UserName: 'deep-policy', PolicyName: 'p', PolicyDocument: doc })), (e: any) => {
        assert.equal(e.name, 'MalformedPolicyDocumentException', e.message);
        assert.equal(e.$metadata.httpStatusCode, 400);
        assert.match(e.message, /Policy document nests objects and arrays more than 32 levels deep/);
        return true;
      });
    } finally {
      iam.destroy();
    }
  });

  test('the server is still up and PutEvents works afterwards', async () => {
    const r = await t.pinpoint.send(
      new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: { d2: { Endpoint: {}, Events: { ok: { EventType: 'x', Timestamp: '2026-11-26T10:00:00Z' } } } } } }),
    );
    assert.equal(r.EventsResponse!.Results!.d2.EventsItemResponse!.ok.StatusCode, 202);
  });
});

describe('Firehose records nested too deep go to the error output instead of overflowing the stack (or crashing DuckDB)', () => {
  const record = (json: string, recordId: string) => ({ data: Buffer.from(json + '\n'), arrivalMs: Date.parse('2026-11-26T10:00:00Z'), recordId });
  const parquetConf = {
    Enabled: true,
    SchemaConfiguration: { DatabaseName: 'db', TableName: 't', RoleARN: 'arn:aws:iam::123456789012:role/r' },
    InputFormatConfiguration: { Deserializer: { OpenXJsonSerDe: {} } },
    OutputFormatConfiguration: { Serializer: { ParquetSerDe: {} } },
  };

  test(`Parquet conversion: a record nested over MAX_RECORD_NESTING_DEPTH (${MAX_RECORD_NESTING_DEPTH}) is malformed; the others convert`, async () => {
    const out = await pinpointParquet(
      [record(`{"a":1,"b":${arrays(DEEP * 5)}}`, 'deep'), record('{"a":2,"b":[1]}', 'fine'), record(`{"a":3,"b":${arrays(MAX_RECORD_NESTING_DEPTH - 1)}}`, 'at-limit')],
      parquetConf,
    );
    assert.equal(out.ok, false);
    if (out.ok) return;
    assert.deepEqual(out.failed.map((f) => f.index), [0]);
    assert.match(out.failed[0].error, new RegExp(`^${MALFORMED_DATA}: the record nests objects and arrays more than ${MAX_RECORD_NESTING_DEPTH} levels deep`));
    assert.ok(out.body, 'the other records are converted');
  });

  test(`Redshift JSON 'auto': a record nested over ${MAX_RECORD_NESTING_DEPTH} levels is a load error naming the record`, () => {
    const columns = [{ name: 'a', type: 'bigint' }, { name: 'b', type: 'character varying' }];
    const format = parseCopyOptions("JSON 'auto'") as Parameters<typeof jsonRows>[2];
    assert.deepEqual(jsonRows('{"a":1,"b":[[2]]}', columns, format), [[1, '[[2]]']]);
    assert.throws(() => jsonRows(`{"a":1}\n{"a":2,"b":${arrays(DEEP * 5)}}`, columns, format), (e: any) => {
      assert.match(e.message, new RegExp(`record 2: nests objects and arrays more than ${MAX_RECORD_NESTING_DEPTH} levels deep`));
      assert.ok(e.errorCode, 'a LoadError with Redshift\'s error code, not a stack overflow');
      return true;
    });
  });
});
