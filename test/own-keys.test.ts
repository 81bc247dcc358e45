// Issue 12, defect 1: every table keyed by a client-sent name is looked up by own keys only.
// Names that Object.prototype carries (constructor, __proto__, toString, ...) are sent as an
// X-Amz-Target operation (JSON and CBOR), a Query Action, a REST route segment, a KPI name, a
// dashboard name, a policy condition operator and key, and a configuration file key; each gets
// its protocol's AWS-shaped 4xx, and the server still accepts PutEvents afterwards.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import { CreateAppCommand, PutEventsCommand, GetAppsCommand } from '@aws-sdk/client-pinpoint';
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { DuckDBInstance } from '@duckdb/node-api';
import { startTestServer, pinpointClient, type TestServer } from './helpers/server.js';
import { signedRequest } from './helpers/signed.js';
import { createDeliveryRole, firehoseClient, s3Destination } from './helpers/firehose.js';
import { CreateDeliveryStreamCommand, ListTagsForDeliveryStreamCommand, TagDeliveryStreamCommand } from '@aws-sdk/client-firehose';
import { rejection } from './helpers/rejection.js';
import { ConfigError, loadConfig } from '../src/config/config.js';
import { CampaignBatch, CAMPAIGN_COUNTS } from '../src/analytics/campaign-rollup.js';
import { readJsonSql } from '../src/firehose/parquet.js';
import { conversionSchema, convertRecord, deserializerOptions } from '../src/firehose/schema.js';
import { parseHiveType } from '../src/catalog/hive-types.js';

/** Every name an object literal inherits that a client could send, and `prototype`. */
export const INHERITED_NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'isPrototypeOf', 'prototype'];

/** A bounded wait: before the fix some of these requests were never answered (the process died). */
const TIMEOUT_MS = 10_000;

interface Answer {
  status: number;
  headers: Headers;
  raw: Buffer;
}

async function send(url: string, init: Parameters<typeof signedRequest>[1]): Promise<Answer> {
  const res = await Promise.race([
    signedRequest(url, init),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${TIMEOUT_MS} ms`)), TIMEOUT_MS).unref()),
  ]);
  return { status: res.status, headers: res.headers, raw: Buffer.from(await res.arrayBuffer()) };
}

function assertJsonError(a: Answer, type: string, status = 400) {
  assert.equal(a.status, status, a.raw.toString());
  assert.match(a.headers.get('content-type') ?? '', /^application\/x-amz-json-1\.1/);
  const body = JSON.parse(a.raw.toString('utf8'));
  assert.equal(body.__type, type);
  // AWS sends UnknownOperationException without a message.
  if (type === 'UnknownOperationException') assert.deepEqual(body, { __type: type });
  else assert.equal(typeof body.message, 'string');
}

function assertRestError(a: Answer, type: string, status: number) {
  assert.equal(a.status, status, a.raw.toString());
  assert.equal(a.headers.get('x-amzn-errortype'), type);
  const body = JSON.parse(a.raw.toString('utf8'));
  assert.equal(typeof body.Message, 'string');
  assert.equal(body.RequestID, a.headers.get('x-amzn-requestid'));
}

describe('names Object.prototype carries are unknown names, over every protocol', () => {
  let t: TestServer;
  let app: string;
  before(async () => {
    t = await startTestServer();
    app = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'own-keys' } }))).ApplicationResponse!.Id!;
  });
  after(async () => {
    // Whatever was sent above, the server still takes events.
    const out = await t.pinpoint.send(
      new PutEventsCommand({
        ApplicationId: app,
        EventsRequest: { BatchItem: { e1: { Endpoint: {}, Events: { a: { EventType: 'after', Timestamp: new Date().toISOString() } } } } },
      }),
    );
    assert.equal(out.EventsResponse!.Results!.e1.EventsItemResponse!.a.StatusCode, 202);
    await t.close();
  });

  for (const name of INHERITED_NAMES) {
    describe(name, () => {
      for (const [service, prefix] of [
        ['kinesis', 'Kinesis_20131202'],
        ['firehose', 'Firehose_20150804'],
      ] as const) {
        test(`X-Amz-Target ${prefix}.${name} (JSON 1.1) is 400 UnknownOperationException`, async () => {
          const a = await send(t.server.url, {
            path: '/',
            service,
            headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${prefix}.${name}` },
            body: '{}',
            credentials: t.server.admin,
          });
          assertJsonError(a, 'UnknownOperationException');
        });
      }

      test(`X-Amz-Target Kinesis_20131202.${name} (CBOR 1.1) is 400 UnknownOperationException in CBOR`, async () => {
        const a = await send(t.server.url, {
          path: '/',
          service: 'kinesis',
          headers: { 'content-type': 'application/x-amz-cbor-1.1', 'x-amz-target': `Kinesis_20131202.${name}` },
          body: Buffer.from(cborEncode({})),
          credentials: t.server.admin,
        });
        assert.equal(a.status, 400);
        assert.match(a.headers.get('content-type') ?? '', /^application\/x-amz-cbor-1\.1/);
        assert.equal((cborDecode(a.raw) as { __type: string }).__type, 'UnknownOperationException');
      });

      test(`X-Amz-Target ${name}.ListStreams (an unknown service prefix) is 400 UnknownOperationException`, async () => {
        const a = await send(t.server.url, {
          path: '/',
          service: 'kinesis',
          headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${name}.ListStreams` },
          body: '{}',
          credentials: t.server.admin,
        });
        assertJsonError(a, 'UnknownOperationException');
      });

      for (const [service, version] of [
        ['iam', '2010-05-08'],
        ['sts', '2011-06-15'],
      ] as const) {
        test(`Query Action=${name} (${service}) is 400 InvalidAction`, async () => {
          const a = await send(t.server.url, {
            path: '/',
            service,
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: `Action=${encodeURIComponent(name)}&Version=${version}`,
            credentials: t.server.admin,
          });
          assert.equal(a.status, 400, a.raw.toString());
          assert.match(a.raw.toString(), /<ErrorResponse xmlns="[^"]+"><Error><Type>Sender<\/Type><Code>InvalidAction<\/Code>/);
        });
      }

      test(`REST: /v1/${name}, /v1/apps/${name}, /v1/apps/APP/endpoints/${name} are 404 NotFoundException`, async () => {
        for (const path of [`/v1/${name}`, `/v1/apps/${name}`, `/v1/apps/${app}/endpoints/${name}`, `/v1/apps/${app}/${name}`]) {
          assertRestError(await send(t.server.url, { method: 'GET', path, credentials: t.server.admin }), 'NotFoundException', 404);
        }
        // As a method too: a known path with an inherited name as its method.
        assertRestError(await send(t.server.url, { method: 'GET', path: `/v1/apps/${app}/eventstream/${name}`, credentials: t.server.admin }), 'NotFoundException', 404);
      });

      test(`KPI name ${name} is a 400 (not a kpi-name) or 404 (no such KPI)`, async () => {
        for (const path of [
          `/v1/apps/${app}/kpis/daterange/${name}`,
          `/v1/apps/${app}/campaigns/c1/kpis/daterange/${name}`,
          `/v1/apps/${app}/journeys/j1/kpis/daterange/${name}`,
          `/v1/apps/${app}/kpis/daterange/${name}-rate`,
        ]) {
          const a = await send(t.server.url, { method: 'GET', path, credentials: t.server.admin });
          assert.ok(a.status === 400 || a.status === 404, `${path}: ${a.status} ${a.raw}`);
          assertRestError(a, a.status === 400 ? 'BadRequestException' : 'NotFoundException', a.status);
        }
      });

      test(`dashboard ${name} (and ${name}.csv) is 404 NotFoundException`, async () => {
        for (const d of [name, `${name}.csv`]) {
          assertRestError(await send(t.server.url, { method: 'GET', path: `/v1/apps/${app}/dashboards/${d}`, credentials: t.server.admin }), 'NotFoundException', 404);
        }
      });

      test(`a policy condition operator ${name} is MalformedPolicyDocument; a condition key ${name} is only a key`, async () => {
        const iam = new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 });
        try {
          const user = `own-keys-${randomUUID().slice(0, 8)}`;
          await iam.send(new CreateUserCommand({ UserName: user }));
          const policy = (Condition: object) =>
            JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'mobiletargeting:*', Resource: '*', Condition }] });
          const err = await rejection(() =>
            iam.send(new PutUserPolicyCommand({ UserName: user, PolicyName: 'p', PolicyDocument: policy({ [name]: { 'aws:username': user } }) })),
          );
          assert.equal(err.name, 'MalformedPolicyDocumentException');
          assert.equal(err.$metadata.httpStatusCode, 400);

          // As a condition key, under an operator that calls string methods on the value: the key is
          // simply absent from the request context, so the Allow does not apply (403, not 500).
          await iam.send(new PutUserPolicyCommand({ UserName: user, PolicyName: 'p', PolicyDocument: policy({ StringEqualsIgnoreCase: { [name]: 'x' } }) }));
          const key = (await iam.send(new CreateAccessKeyCommand({ UserName: user }))).AccessKey!;
          const as = pinpointClient({ url: t.server.url, admin: { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! } });
          try {
            const denied = await rejection(() => as.send(new GetAppsCommand({})));
            assert.equal(denied.$metadata.httpStatusCode, 403, denied.message);
          } finally {
            as.destroy();
          }
        } finally {
          iam.destroy();
        }
      });
    });
  }
});

describe('own keys outside the request path', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pinstream-own-keys-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const name of INHERITED_NAMES) {
    test(`a configuration file key ${name} is an unknown setting`, async () => {
      const file = join(dir, `${randomUUID()}.json`);
      await writeFile(file, `{"${name}": {"metricsToken": "inherited-token-0123456789"}}`);
      assert.throws(() => loadConfig({ PINSTREAM_CONFIG: file }), (e: unknown) => e instanceof ConfigError && e.message.includes(`unknown setting "${name}"`));
    });
  }

  test('a campaign event whose type is an inherited name counts as an event of no kind', () => {
    const batch = new CampaignBatch();
    for (const name of INHERITED_NAMES) {
      batch.add({ appId: 'a', campaignId: 'c', eventType: name } as Parameters<CampaignBatch['add']>[0], 20000, 1, 0);
    }
    const row = [...batch.rows.values()][0];
    assert.deepEqual(Object.keys(row.counts).sort(), [...CAMPAIGN_COUNTS].sort());
    assert.equal(row.counts.events, INHERITED_NAMES.length);
    for (const k of CAMPAIGN_COUNTS) assert.ok(Number.isFinite(row.counts[k]), k);
  });

  test('Firehose record keys named like inherited members survive the OpenX JSON key options', () => {
    const record = Object.fromEntries(INHERITED_NAMES.map((n, i) => [n, i]));
    const columns = INHERITED_NAMES.map((n) => ({ name: n.toLowerCase(), type: 'bigint', hive: parseHiveType('bigint'), parameters: {} }));
    const out = convertRecord(JSON.stringify(record), conversionSchema('db.t', columns), deserializerOptions({ Deserializer: { OpenXJsonSerDe: {} } }));
    assert.ok(out.ok, !out.ok ? out.error : '');
    const parsed = JSON.parse(out.lines[0]);
    for (const [i, n] of INHERITED_NAMES.entries()) {
      assert.ok(Object.hasOwn(parsed, n.toLowerCase()), `${n} kept`);
      assert.equal(parsed[n.toLowerCase()], i);
    }
  });

  test('Parquet conversion reads columns named like inherited members', async () => {
    const file = join(dir, 'records.json');
    await writeFile(file, INHERITED_NAMES.filter((n) => n !== '__proto__').map((n) => JSON.stringify({ [n]: 'v', event_type: 't' })).join('\n') + '\n');
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    try {
      const sql = await readJsonSql(c, [file], 'uncompressed');
      const rows = (await c.runAndReadAll(`SELECT count(*) FROM ${sql}`)).getRows();
      assert.equal(Number(rows[0][0]), INHERITED_NAMES.length - 1);
    } finally {
      c.closeSync();
      db.closeSync();
    }
  });
});

describe('names Object.prototype carries, sent as data keys, are kept as keys', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.close();
  });

  test('PutEvents: an endpoint id and an event id "__proto__" get their own results; endpoint attributes named so are stored', async () => {
    const app = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'proto-keys' } }))).ApplicationResponse!.Id!;
    // Raw JSON: an SDK object literal with a "__proto__" key would set its prototype instead.
    const body =
      '{"BatchItem":{"__proto__":{"Endpoint":{"Attributes":{"__proto__":["a"],"constructor":["b"]}},' +
      `"Events":{"__proto__":{"EventType":"t","Timestamp":"${new Date().toISOString()}"},"toString":{"EventType":"t","Timestamp":"${new Date().toISOString()}"}}}}}`;
    const res = await send(t.server.url, { method: 'POST', path: `/v1/apps/${app}/events`, body, credentials: t.server.admin });
    assert.equal(res.status, 202, res.raw.toString());
    const results = JSON.parse(res.raw.toString('utf8')).Results;
    assert.deepEqual(Object.keys(results), ['__proto__']);
    assert.deepEqual(Object.keys(results['__proto__'].EventsItemResponse).sort(), ['__proto__', 'toString']);
    for (const r of Object.values(results['__proto__'].EventsItemResponse) as Array<{ StatusCode: number }>) assert.equal(r.StatusCode, 202);
    const got = await send(t.server.url, { method: 'GET', path: `/v1/apps/${app}/endpoints/__proto__`, credentials: t.server.admin });
    assert.equal(got.status, 200, got.raw.toString());
    const attributes = JSON.parse(got.raw.toString('utf8')).Attributes;
    assert.deepEqual(Object.keys(attributes).sort(), ['__proto__', 'constructor']);
  });

  test('Firehose: a tag key "__proto__" is stored and listed', async () => {
    await createDeliveryRole(t.server);
    const fh = firehoseClient(t.server);
    try {
      await fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'proto-tags', ExtendedS3DestinationConfiguration: s3Destination('proto-tags') }));
      await fh.send(new TagDeliveryStreamCommand({ DeliveryStreamName: 'proto-tags', Tags: [{ Key: '__proto__', Value: 'p' }, { Key: 'constructor', Value: 'c' }] }));
      const listed = await fh.send(new ListTagsForDeliveryStreamCommand({ DeliveryStreamName: 'proto-tags' }));
      assert.deepEqual(listed.Tags!.map((x) => `${x.Key}=${x.Value}`).sort(), ['__proto__=p', 'constructor=c']);
    } finally {
      fh.destroy();
    }
  });
});
