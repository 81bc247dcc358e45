// Event streams end to end with the official SDKs: PutEventStream validation (ARN, destination,
// role) with actionable messages, then PutEvents through @aws-sdk/client-pinpoint and the records
// read back with @aws-sdk/client-kinesis, field by field; two projects sharing one stream;
// DeleteEventStream; delivery health and metrics.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  CreateAppCommand,
  DeleteEventStreamCommand,
  GetEventStreamCommand,
  PutEventsCommand,
  PutEventStreamCommand,
} from '@aws-sdk/client-pinpoint';
import {
  CreateStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
} from '@aws-sdk/client-kinesis';
import { IAMClient } from '@aws-sdk/client-iam';
import { createPinpointRole, type RoleOptions } from './helpers/eventstream.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { signedFetch } from './helpers/signed.js';
import { execFile } from 'node:child_process';
import { CLI } from './helpers/process.js';

const ACCOUNT = '000000000000';
/** /metrics names apps and destinations, so it takes the operator's bearer token. */
const METRICS_TOKEN = 'eventstream-test-metrics-token';
let t: TestServer;
let kinesis: KinesisClient;
let iam: IAMClient;

before(async () => {
  t = await startTestServer({ config: { metricsToken: METRICS_TOKEN } });
  kinesis = new KinesisClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 });
  iam = new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 });
});
after(async () => {
  kinesis.destroy();
  iam.destroy();
  await t.close();
});

const streamArn = (name: string) => `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${name}`;
const roleArn = (name: string) => `arn:aws:iam::${ACCOUNT}:role/${name}`;

async function newApp(name: string): Promise<string> {
  return (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: name } }))).ApplicationResponse!.Id!;
}

async function newStream(name: string, shards = 2): Promise<void> {
  await kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
}

const newRole = (name: string, opts: RoleOptions) => createPinpointRole(iam, name, opts);

const putStream = (ApplicationId: string, DestinationStreamArn: string, RoleArn: string) =>
  t.pinpoint.send(new PutEventStreamCommand({ ApplicationId, WriteEventStream: { DestinationStreamArn, RoleArn } }));

async function rejected(p: Promise<unknown>, pattern: RegExp) {
  await assert.rejects(p, (e: any) => {
    assert.equal(e.name, 'BadRequestException', e.message);
    assert.equal(e.$metadata.httpStatusCode, 400);
    assert.match(e.message, pattern);
    return true;
  });
}

/** Reads every record of the stream until `count` arrived (bounded). */
async function readStream(name: string, count: number, timeoutMs = 15_000): Promise<Array<{ pk: string; json: any; raw: string }>> {
  const shards = (await kinesis.send(new ListShardsCommand({ StreamName: name }))).Shards!;
  const iters = new Map<string, string>();
  for (const s of shards) {
    iters.set(s.ShardId!, (await kinesis.send(new GetShardIteratorCommand({ StreamName: name, ShardId: s.ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!);
  }
  const out: Array<{ pk: string; json: any; raw: string }> = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count && Date.now() < deadline) {
    for (const [id, it] of iters) {
      const r = await kinesis.send(new GetRecordsCommand({ ShardIterator: it }));
      iters.set(id, r.NextShardIterator!);
      for (const rec of r.Records!) {
        const raw = Buffer.from(rec.Data!).toString('utf8');
        out.push({ pk: rec.PartitionKey!, json: JSON.parse(raw), raw });
      }
    }
    if (out.length < count) await new Promise((r) => setTimeout(r, 50));
  }
  return out;
}

describe('PutEventStream validation', () => {
  test('a malformed destination ARN is a 400 naming both accepted forms', async () => {
    const app = await newApp('v1');
    await rejected(putStream(app, 'arn:aws:sqs:us-east-1:000000000000:queue', roleArn('x')), /must be a Kinesis data stream ARN.*or a Firehose delivery stream ARN/);
  });

  test('a destination that does not exist fails validation, naming it', async () => {
    const app = await newApp('v2');
    await newRole('role-v2', { resource: streamArn('missing-stream') });
    await rejected(putStream(app, streamArn('missing-stream'), roleArn('role-v2')), /Destination stream validation failed: .*missing-stream/);
  });

  test('role problems are spelled out: missing role, wrong principal, missing actions', async () => {
    const app = await newApp('v3');
    await newStream('v3-stream', 1);
    const dest = streamArn('v3-stream');
    await rejected(putStream(app, dest, roleArn('no-such-role')), /Role no-such-role \(arn:aws:iam::000000000000:role\/no-such-role\) does not exist; create it with a trust policy for pinpoint\.amazonaws\.com/);
    await newRole('role-firehose-principal', { trustService: 'firehose.amazonaws.com', resource: dest });
    await rejected(putStream(app, dest, roleArn('role-firehose-principal')), /pinpoint\.amazonaws\.com/);
    await newRole('role-no-put', { actions: ['kinesis:DescribeStream'], resource: dest });
    await rejected(putStream(app, dest, roleArn('role-no-put')), /does not allow kinesis:PutRecords on arn:aws:kinesis:us-east-1:000000000000:stream\/v3-stream/);
    await newRole('role-other-stream', { resource: streamArn('elsewhere') });
    await rejected(putStream(app, dest, roleArn('role-other-stream')), /kinesis:PutRecords.*kinesis:DescribeStream|kinesis:PutRecords/);
  });

  test('GetEventStream of an app without one is a 404 NotFoundException', async () => {
    const app = await newApp('v4');
    await assert.rejects(t.pinpoint.send(new GetEventStreamCommand({ ApplicationId: app })), (e: any) => e.name === 'NotFoundException' && e.$metadata.httpStatusCode === 404);
  });
});

describe('delivery to the embedded Kinesis', () => {
  test('events sent with PutEvents arrive in the stream as Pinpoint event-stream records', async () => {
    const app = await newApp('deliver');
    await newStream('deliver-stream');
    await newRole('role-deliver', { resource: streamArn('deliver-stream') });
    const before = Date.now();
    const put = await putStream(app, streamArn('deliver-stream'), roleArn('role-deliver'));
    assert.deepEqual(
      { ...put.EventStream, LastModifiedDate: undefined },
      {
        ApplicationId: app,
        DestinationStreamArn: streamArn('deliver-stream'),
        RoleArn: roleArn('role-deliver'),
        LastModifiedDate: undefined,
        LastUpdatedBy: `arn:aws:iam::${ACCOUNT}:user/admin`,
      },
    );
    assert.ok(Date.parse(put.EventStream!.LastModifiedDate!) >= before - 1000);
    const got = await t.pinpoint.send(new GetEventStreamCommand({ ApplicationId: app }));
    assert.deepEqual(got.EventStream, put.EventStream);

    const endpointId = randomUUID();
    const r = await t.pinpoint.send(
      new PutEventsCommand({
        ApplicationId: app,
        EventsRequest: {
          BatchItem: {
            [endpointId]: {
              Endpoint: { Demographic: { Platform: 'android', Make: 'Google' } },
              Events: {
                e1: { EventType: '_session.start', Timestamp: '2026-11-26T10:00:00.000Z', Session: { Id: 's1', StartTimestamp: '2026-11-26T10:00:00.000Z' } },
                e2: { EventType: 'purchase', Timestamp: '2026-11-26T10:00:01.500Z', Attributes: { sku: 'abc' }, Metrics: { price: 9.99 } },
              },
            },
          },
        },
      }),
    );
    assert.equal(r.EventsResponse!.Results![endpointId].EventsItemResponse!.e2.Message, 'Accepted');
    const records = await readStream('deliver-stream', 2);
    assert.equal(records.length, 2);
    for (const rec of records) assert.equal(rec.pk, endpointId, 'partition key is the endpoint id');
    const [start, purchase] = records.sort((a, b) => a.json.event_timestamp - b.json.event_timestamp).map((x) => x.json);
    assert.equal(start.event_type, '_session.start');
    assert.equal(start.event_timestamp, Date.parse('2026-11-26T10:00:00.000Z'));
    assert.equal(typeof start.arrival_timestamp, 'number');
    assert.equal(start.event_version, '3.1');
    assert.deepEqual(start.session, { session_id: 's1', start_timestamp: Date.parse('2026-11-26T10:00:00.000Z') });
    assert.deepEqual(start.application, { app_id: app, sdk: {} });
    assert.deepEqual(start.client, { client_id: endpointId });
    assert.deepEqual(start.device, { make: 'Google', platform: { name: 'android' } });
    assert.equal(start.awsAccountId, ACCOUNT);
    assert.equal(start.endpoint.Id, endpointId);
    assert.deepEqual(purchase.attributes, { sku: 'abc' });
    assert.deepEqual(purchase.metrics, { price: 9.99 });
    assert.equal(typeof purchase.metrics.price, 'number');
  });

  test('two projects can share one stream; each record names its project', async () => {
    const a = await newApp('share-a');
    const b = await newApp('share-b');
    await newStream('shared-stream');
    await newRole('role-shared', { resource: streamArn('shared-stream') });
    await putStream(a, streamArn('shared-stream'), roleArn('role-shared'));
    await putStream(b, streamArn('shared-stream'), roleArn('role-shared'));
    for (const app of [a, b]) {
      const events: Record<string, { EventType: string; Timestamp: string }> = {};
      for (let i = 0; i < 5; i++) events[`${app}-${i}`] = { EventType: 'shared', Timestamp: new Date().toISOString() };
      await t.pinpoint.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: { [randomUUID()]: { Endpoint: {}, Events: events } } } }));
    }
    const records = await readStream('shared-stream', 10);
    assert.equal(records.length, 10);
    assert.equal(records.filter((r) => r.json.application.app_id === a).length, 5);
    assert.equal(records.filter((r) => r.json.application.app_id === b).length, 5);
  });

  test('status API and /metrics report delivery; DeleteEventStream stops it and returns the settings', async () => {
    const app = await newApp('status');
    await newStream('status-stream', 1);
    await newRole('role-status', { resource: streamArn('status-stream') });
    await putStream(app, streamArn('status-stream'), roleArn('role-status'));
    await t.pinpoint.send(
      new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: { [randomUUID()]: { Endpoint: {}, Events: { x: { EventType: 'x', Timestamp: new Date().toISOString() } } } } } }),
    );
    await readStream('status-stream', 1);
    const status = await signedFetch(t.server.url, { method: 'GET', path: '/v1/eventstreams/status', credentials: t.server.admin });
    assert.equal(status.status, 200);
    const item = status.json.Item.find((i: any) => i.ApplicationId === app);
    assert.equal(item.DestinationStreamArn, streamArn('status-stream'));
    assert.ok(item.Health.delivered >= 1, JSON.stringify(item.Health));
    const metrics = await (await fetch(`${t.server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    assert.match(metrics, new RegExp(`pinstream_delivery_delivered_total\\{app_id="${app}",destination="${streamArn('status-stream')}"\\} [1-9]`));
    assert.match(metrics, /# TYPE pinstream_delivery_records_behind gauge/);

    const cli = await new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(
        process.execPath,
        [CLI, 'streams', 'status', '--endpoint', t.server.url],
        { env: { ...process.env, PINSTREAM_ADMIN_ACCESS_KEY_ID: t.server.admin.accessKeyId, PINSTREAM_ADMIN_SECRET_ACCESS_KEY: t.server.admin.secretAccessKey }, timeout: 20_000 },
        (err, stdout) => resolve({ code: err ? Number((err as any).code ?? 1) : 0, stdout }),
      ),
    );
    assert.equal(cli.code, 0);
    assert.match(cli.stdout, /^application\s+destination\s+state\s+delivered/m);
    assert.match(cli.stdout, new RegExp(`^${app}\\s+${streamArn('status-stream')}\\s+(running|retrying)\\s+[1-9]`, 'm'));

    const del = await t.pinpoint.send(new DeleteEventStreamCommand({ ApplicationId: app }));
    assert.equal(del.EventStream!.DestinationStreamArn, streamArn('status-stream'));
    await assert.rejects(t.pinpoint.send(new GetEventStreamCommand({ ApplicationId: app })), (e: any) => e.name === 'NotFoundException');
    assert.equal(t.server.delivery.health(app), undefined, 'the worker stopped');
  });
});
