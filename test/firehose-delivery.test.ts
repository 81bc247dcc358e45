// Embedded Firehose delivery end to end, with the real S3 destination writing into folder buckets:
// buffering by interval (ManualClock: nothing before the interval, everything at it) and by size,
// flush on shutdown, a kill -9 of a `pinstream start` process with records still buffered (all
// delivered after restart), retries then the S3 backup for a failing HTTP endpoint (same request
// id on every retry), KinesisStreamAsSource reading an embedded Kinesis stream as its role (and a
// role without read permissions failing visibly), and a Pinpoint event stream into a delivery stream.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import {
  CreateDeliveryStreamCommand,
  DescribeDeliveryStreamCommand,
  PutRecordBatchCommand,
  PutRecordCommand,
  UpdateDestinationCommand,
  type FirehoseClient,
} from '@aws-sdk/client-firehose';
import { CreateStreamCommand, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { IAMClient } from '@aws-sdk/client-iam';
import { CreateAppCommand, PutEventsCommand, PutEventStreamCommand } from '@aws-sdk/client-pinpoint';
import { ManualClock } from '../src/clock.js';
import { MAX_ACTIVE_PARTITIONS } from '../src/firehose/limits.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { ACCOUNT, createDeliveryRole, firehoseClient, folderContents, folderKeys, s3Destination, until } from './helpers/firehose.js';
import { assertError, kinesisClient } from './helpers/kinesis.js';
import { createPinpointRole } from './helpers/eventstream.js';
import { spawnServer, waitForExit } from './helpers/process.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function server(opts: { clock?: ManualClock; dataDir?: string } = {}): Promise<{ t: TestServer; fh: FirehoseClient; close: () => Promise<void> }> {
  const t = await startTestServer(opts);
  await createDeliveryRole(t.server);
  const fh = firehoseClient(t.server);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    fh.destroy();
    await t.close();
  };
  cleanups.push(close);
  return { t, fh, close };
}

const bucketDir = (t: TestServer, bucket: string) => join(t.dataDir, 'buckets', bucket);
const health = (t: TestServer, name: string) => t.server.firehose.health(name)!;
/** Waits until the deliverer has looked at its buffers `n` more times (so a flush would have happened). */
async function checksPass(t: TestServer, name: string, n = 2): Promise<void> {
  const start = health(t, name).delivery.checks;
  await until(() => health(t, name).delivery.checks >= start + n, `${n} buffer checks of ${name}`);
}
const pad = (n: number, w = 2) => String(n).padStart(w, '0');

test('records are delivered when the buffer interval has passed, not before; contents and key exact', async () => {
  const clock = new ManualClock();
  const { t, fh } = await server({ clock });
  await fh.send(
    new CreateDeliveryStreamCommand({
      DeliveryStreamName: 'by-interval',
      ExtendedS3DestinationConfiguration: s3Destination('fh-interval', { Prefix: 'data/', BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 60 } }),
    }),
  );
  const arrival = clock.now();
  await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'by-interval', Records: [{ Data: Buffer.from('a\n') }, { Data: Buffer.from('b\n') }] }));
  await fh.send(new PutRecordCommand({ DeliveryStreamName: 'by-interval', Record: { Data: Buffer.from('c\n') } }));
  const dir = bucketDir(t, 'fh-interval');
  await until(() => health(t, 'by-interval').delivery.bufferedRecords === 3, 'three buffered records');
  await checksPass(t, 'by-interval');
  assert.deepEqual(await folderKeys(dir), [], 'nothing delivered before the interval');
  clock.advance(59_999);
  await checksPass(t, 'by-interval');
  assert.deepEqual(await folderKeys(dir), [], 'nothing delivered 1 ms before the interval');
  clock.advance(1);
  const keys = await until(async () => ((await folderKeys(dir)).length > 0 ? folderKeys(dir) : undefined), 'the object');
  assert.equal(keys.length, 1);
  const d = new Date(arrival);
  const day = `${d.getUTCFullYear()}/${pad(d.getUTCMonth() + 1)}/${pad(d.getUTCDate())}/${pad(d.getUTCHours())}`;
  const stamp = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}-${pad(d.getUTCHours())}-${pad(d.getUTCMinutes())}-${pad(d.getUTCSeconds())}`;
  assert.match(keys[0], new RegExp(`^data/${day}/by-interval-1-${stamp}-[0-9a-f-]{36}$`));
  assert.equal(await folderContents(dir), 'a\nb\nc\n');
  await until(() => health(t, 'by-interval').delivery.checkpoint === 3, 'the checkpoint past the delivered records');
  const h = health(t, 'by-interval').delivery;
  assert.deepEqual([h.deliveredRecords, h.deliveredBatches, h.recordsBehind, h.bufferedRecords, h.lastDeliveryAt], [3, 1, 0, 0, clock.now()]);
});

test('a buffer that reaches the size hint is delivered at once; the rest waits', async () => {
  const clock = new ManualClock();
  const { t, fh } = await server({ clock });
  await fh.send(
    new CreateDeliveryStreamCommand({
      DeliveryStreamName: 'by-size',
      ExtendedS3DestinationConfiguration: s3Destination('fh-size', { BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 900 } }),
    }),
  );
  const big = (c: string) => ({ Data: Buffer.alloc(600_000, c) });
  await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'by-size', Records: [big('x')] }));
  await until(() => health(t, 'by-size').delivery.bufferedRecords === 1, 'one buffered record');
  await checksPass(t, 'by-size');
  assert.deepEqual(await folderKeys(bucketDir(t, 'fh-size')), [], 'under 1 MiB: nothing yet');
  await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'by-size', Records: [big('y'), { Data: Buffer.from('tail') }] }));
  const dir = bucketDir(t, 'fh-size');
  await until(async () => (await folderKeys(dir)).length === 1, 'the size-triggered object');
  assert.equal(await folderContents(dir), 'x'.repeat(600_000) + 'y'.repeat(600_000));
  await until(() => health(t, 'by-size').delivery.bufferedRecords === 1, 'the tail record buffered');
  await checksPass(t, 'by-size');
  assert.equal((await folderKeys(dir)).length, 1, 'the record after the cut waits for its own interval');
});

test('close() flushes the buffers once; the next start does not deliver them again', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-fh-close-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const first = await server({ dataDir, clock: new ManualClock() });
  await first.fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'flush', ExtendedS3DestinationConfiguration: s3Destination('fh-flush') }));
  await first.fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'flush', Records: ['1\n', '2\n', '3\n'].map((s) => ({ Data: Buffer.from(s) })) }));
  await until(() => health(first.t, 'flush').delivery.bufferedRecords === 3, 'three buffered records');
  assert.deepEqual(await folderKeys(join(dataDir, 'buckets', 'fh-flush')), []);
  await first.close();
  assert.equal(await folderContents(join(dataDir, 'buckets', 'fh-flush')), '1\n2\n3\n');
  const second = await server({ dataDir, clock: new ManualClock() });
  const h = health(second.t, 'flush').delivery;
  assert.deepEqual([h.checkpoint, h.logEnd], [3, 3], 'the flushed records are behind the saved checkpoint');
  await checksPass(second.t, 'flush');
  assert.equal((await folderKeys(join(dataDir, 'buckets', 'fh-flush'))).length, 1);
});

test('kill -9 with records buffered: after a restart on the same data directory every record is delivered', { timeout: 60_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-fh-crash-'));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const child = await spawnServer({ PINSTREAM_DATA_DIR: dataDir });
  cleanups.push(async () => {
    if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill('SIGKILL');
    await waitForExit(child.child);
  });
  const fh = firehoseClient({ url: child.url, admin: { accessKeyId: child.accessKeyId, secretAccessKey: child.secretAccessKey! } });
  await createDeliveryRole({ url: child.url, admin: { accessKeyId: child.accessKeyId, secretAccessKey: child.secretAccessKey! } });
  await fh.send(
    new CreateDeliveryStreamCommand({ DeliveryStreamName: 'crash', ExtendedS3DestinationConfiguration: s3Destination('fh-crash', { BufferingHints: { SizeInMBs: 5, IntervalInSeconds: 900 } }) }),
  );
  const lines = Array.from({ length: 120 }, (_, i) => `record-${i}\n`);
  for (let i = 0; i < lines.length; i += 40) {
    await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'crash', Records: lines.slice(i, i + 40).map((l) => ({ Data: Buffer.from(l) })) }));
  }
  fh.destroy();
  child.child.kill('SIGKILL');
  await waitForExit(child.child);
  const dir = join(dataDir, 'buckets', 'fh-crash');
  assert.deepEqual(await folderKeys(dir), [], 'the killed server delivered nothing (interval not reached)');

  const clock = new ManualClock();
  const { t } = await server({ dataDir, clock });
  await until(() => health(t, 'crash').delivery.bufferedRecords === lines.length, 'every acknowledged record buffered again');
  await checksPass(t, 'crash');
  assert.deepEqual(await folderKeys(dir), []);
  clock.advance(900_000);
  await until(async () => (await folderKeys(dir)).length > 0, 'the object after the interval');
  assert.equal(await folderContents(dir), lines.join(''));
});

test('a failing HTTP endpoint is retried with the same request id, then the batch goes to the S3 backup', async () => {
  const ids: string[] = [];
  let failing = true;
  const endpoint: Server = createServer((req, res) => {
    ids.push(String(req.headers['x-amz-firehose-request-id']));
    req.resume();
    req.on('end', () => {
      res.writeHead(failing ? 503 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ requestId: req.headers['x-amz-firehose-request-id'], timestamp: Date.now(), errorMessage: 'down' }));
    });
  });
  await new Promise<void>((r) => endpoint.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => endpoint.close(r)));
  const port = (endpoint.address() as { port: number }).port;
  const clock = new ManualClock();
  const { t, fh } = await server({ clock });
  await fh.send(
    new CreateDeliveryStreamCommand({
      DeliveryStreamName: 'http-fail',
      HttpEndpointDestinationConfiguration: {
        EndpointConfiguration: { Url: `http://127.0.0.1:${port}/ingest` },
        BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 0 },
        RetryOptions: { DurationInSeconds: 60 },
        S3Configuration: s3Destination('fh-http-backup'),
      },
    }),
  );
  await fh.send(new PutRecordCommand({ DeliveryStreamName: 'http-fail', Record: { Data: Buffer.from('payload') } }));
  await until(() => health(t, 'http-fail').delivery.retries >= 2, 'two retries');
  const h = health(t, 'http-fail').delivery;
  assert.equal(h.state, 'retrying');
  assert.match(h.lastError!.message, /503/);
  assert.deepEqual(await folderKeys(bucketDir(t, 'fh-http-backup')), [], 'still within the retry window');
  clock.advance(60_000);
  await until(() => health(t, 'http-fail').delivery.abandonedBatches === 1, 'the batch abandoned to the backup');
  const keys = await folderKeys(bucketDir(t, 'fh-http-backup'));
  assert.equal(keys.length, 1);
  assert.match(keys[0], /http-endpoint-failed/);
  const doc = JSON.parse((await folderContents(bucketDir(t, 'fh-http-backup'))).split('\n')[0]);
  assert.equal(Buffer.from(doc.rawData, 'base64').toString(), 'payload');
  assert.ok(ids.length >= 3 && new Set(ids).size === 1, `one request id across ${ids.length} attempts`);
  assert.equal(health(t, 'http-fail').delivery.checkpoint, 1);

  failing = false;
  await fh.send(new PutRecordCommand({ DeliveryStreamName: 'http-fail', Record: { Data: Buffer.from('second') } }));
  await until(() => health(t, 'http-fail').delivery.deliveredRecords === 1, 'the next batch delivered');
  assert.notEqual(ids[ids.length - 1], ids[0], 'a new batch has a new id');
});

test('KinesisStreamAsSource reads an embedded Kinesis stream as its role; a role without read permissions fails visibly', { timeout: 60_000 }, async () => {
  const { t, fh } = await server();
  const kinesis = kinesisClient(t.server);
  const iam = new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 });
  cleanups.push(() => kinesis.destroy(), () => iam.destroy());
  await kinesis.send(new CreateStreamCommand({ StreamName: 'fh-source', ShardCount: 2 }));
  const streamArn = `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/fh-source`;
  const reader = { resource: streamArn, trustService: 'firehose.amazonaws.com' };
  await createPinpointRole(iam, 'fh-reader', { ...reader, actions: ['kinesis:DescribeStream', 'kinesis:ListShards', 'kinesis:GetShardIterator', 'kinesis:GetRecords'] });
  await createPinpointRole(iam, 'fh-no-reads', { ...reader, actions: ['kinesis:DescribeStream'] });
  const source = (role: string) => ({
    DeliveryStreamType: 'KinesisStreamAsSource' as const,
    KinesisStreamSourceConfiguration: { KinesisStreamARN: streamArn, RoleARN: `arn:aws:iam::${ACCOUNT}:role/${role}` },
  });
  await fh.send(
    new CreateDeliveryStreamCommand({
      DeliveryStreamName: 'from-kinesis',
      ...source('fh-reader'),
      ExtendedS3DestinationConfiguration: s3Destination('fh-kinesis', { BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 0 } }),
    }),
  );
  await fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'denied', ...source('fh-no-reads'), ExtendedS3DestinationConfiguration: s3Destination('fh-denied') }));
  const d = (await fh.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: 'from-kinesis' }))).DeliveryStreamDescription!;
  assert.equal(d.DeliveryStreamType, 'KinesisStreamAsSource');
  assert.equal(d.Source!.KinesisStreamSourceDescription!.KinesisStreamARN, streamArn);
  assert.ok(d.Source!.KinesisStreamSourceDescription!.DeliveryStartTimestamp instanceof Date);

  const lines = Array.from({ length: 30 }, (_, i) => `k-${i}\n`);
  await kinesis.send(new PutRecordsCommand({ StreamName: 'fh-source', Records: lines.map((l, i) => ({ Data: Buffer.from(l), PartitionKey: `pk-${i}` })) }));
  const dir = bucketDir(t, 'fh-kinesis');
  await until(async () => (await folderContents(dir)).split('\n').length - 1 >= lines.length, 'every Kinesis record in the bucket');
  assert.deepEqual((await folderContents(dir)).split('\n').filter(Boolean).sort(), lines.map((l) => l.trim()).sort());
  assert.equal(health(t, 'from-kinesis').source!.recordsRead, lines.length);

  await assertError(
    fh.send(new PutRecordCommand({ DeliveryStreamName: 'from-kinesis', Record: { Data: Buffer.from('x') } })),
    'InvalidArgumentException',
    /not permitted on KinesisStreamAsSource delivery stream type.*reads its records from the Kinesis stream/,
  );
  const denied = await until(() => health(t, 'denied').source?.lastError, 'the source error of the role without read permissions');
  assert.match(denied.message, /AccessDeniedException.*kinesis:(ListShards|GetShardIterator)/);
  assert.equal((await fh.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: 'denied' }))).DeliveryStreamDescription!.DeliveryStreamStatus, 'ACTIVE');
  assert.deepEqual(await folderKeys(bucketDir(t, 'fh-denied')), []);
});

test('a Pinpoint event stream into an embedded delivery stream lands in the folder bucket', { timeout: 60_000 }, async () => {
  const { t, fh } = await server();
  const iam = new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 });
  cleanups.push(() => iam.destroy());
  await fh.send(
    new CreateDeliveryStreamCommand({
      DeliveryStreamName: 'pinpoint-events',
      ExtendedS3DestinationConfiguration: s3Destination('fh-pinpoint', { BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 0 } }),
    }),
  );
  const streamArn = `arn:aws:firehose:us-east-1:${ACCOUNT}:deliverystream/pinpoint-events`;
  await createPinpointRole(iam, 'pp-to-firehose', { resource: streamArn, actions: ['firehose:PutRecordBatch', 'firehose:DescribeDeliveryStream'] });
  const app = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'fh-e2e' } }))).ApplicationResponse!.Id!;
  await t.pinpoint.send(
    new PutEventStreamCommand({ ApplicationId: app, WriteEventStream: { DestinationStreamArn: streamArn, RoleArn: `arn:aws:iam::${ACCOUNT}:role/pp-to-firehose` } }),
  );
  const endpointId = randomUUID();
  await t.pinpoint.send(
    new PutEventsCommand({
      ApplicationId: app,
      EventsRequest: {
        BatchItem: {
          [endpointId]: {
            Endpoint: {},
            Events: {
              e1: { EventType: 'signup', Timestamp: '2026-11-26T10:00:00.000Z' },
              e2: { EventType: 'purchase', Timestamp: '2026-11-26T10:00:01.000Z', Metrics: { price: 9.5 } },
            },
          },
        },
      },
    }),
  );
  const dir = bucketDir(t, 'fh-pinpoint');
  await until(async () => (await folderContents(dir)).split('\n').filter(Boolean).length >= 2, 'both events in the bucket');
  const events = (await folderContents(dir)).split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.deepEqual(events.map((e) => e.event_type).sort(), ['purchase', 'signup']);
  assert.ok(events.every((e) => e.application.app_id === app && e.client.client_id === endpointId));
  assert.equal(t.server.delivery.health(app)!.lastError, undefined);
});

test(`dynamic partitioning: one buffer per partition key, at most ${MAX_ACTIVE_PARTITIONS}; records beyond go to the error output`, { timeout: 60_000 }, async () => {
  const clock = new ManualClock();
  const { t, fh } = await server({ clock });
  await fh.send(
    new CreateDeliveryStreamCommand({
      DeliveryStreamName: 'partitioned',
      ExtendedS3DestinationConfiguration: s3Destination('fh-parts', {
        Prefix: 'k=!{partitionKeyFromQuery:k}/',
        ErrorOutputPrefix: 'errors/!{firehose:error-output-type}/',
        BufferingHints: { SizeInMBs: 64, IntervalInSeconds: 60 },
        DynamicPartitioningConfiguration: { Enabled: true },
        ProcessingConfiguration: {
          Enabled: true,
          Processors: [
            { Type: 'MetadataExtraction', Parameters: [{ ParameterName: 'MetadataExtractionQuery', ParameterValue: '{k:.k}' }, { ParameterName: 'JsonParsingEngine', ParameterValue: 'JQ-1.6' }] },
          ],
        },
      }),
    }),
  );
  // Partition 0 gets two records; then one record per new key until one key past the limit.
  const keys = [0, ...Array.from({ length: MAX_ACTIVE_PARTITIONS + 1 }, (_, i) => i)];
  const recs = keys.map((k) => ({ Data: Buffer.from(JSON.stringify({ k: `p${k}` }) + '\n') }));
  await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'partitioned', Records: recs.slice(0, 500) }));
  await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'partitioned', Records: recs.slice(500) }));
  await until(() => health(t, 'partitioned').delivery.rejectedRecords === 1, 'the record past the active-partition limit rejected');
  const h = health(t, 'partitioned').delivery;
  assert.deepEqual([h.activePartitions, h.bufferedRecords], [MAX_ACTIVE_PARTITIONS, keys.length - 1]);
  const dir = bucketDir(t, 'fh-parts');
  const errorKeys = await folderKeys(dir);
  assert.equal(errorKeys.length, 1);
  assert.match(errorKeys[0], /^errors\/partitioning-failed\//);
  const doc = JSON.parse((await folderContents(dir)).split('\n')[0]);
  assert.equal(doc.errorCode, 'activePartitionExceeded');
  assert.equal(JSON.parse(Buffer.from(doc.rawData, 'base64').toString()).k, `p${MAX_ACTIVE_PARTITIONS}`);
  clock.advance(60_000);
  await until(async () => (await folderKeys(dir)).length === MAX_ACTIVE_PARTITIONS + 1, 'one object per partition');
  const p0 = (await folderKeys(dir)).filter((k) => k.startsWith('k=p0/'));
  assert.equal(p0.length, 1);
  const { readFile } = await import('node:fs/promises');
  assert.equal(await readFile(join(dir, p0[0]), 'utf8'), '{"k":"p0"}\n{"k":"p0"}\n');
  await until(() => health(t, 'partitioned').delivery.checkpoint === keys.length, 'the checkpoint past every record');
});

test('UpdateDestination applies to records already buffered; objects carry the new version', async () => {
  const clock = new ManualClock();
  const { t, fh } = await server({ clock });
  await fh.send(
    new CreateDeliveryStreamCommand({ DeliveryStreamName: 'reconf', ExtendedS3DestinationConfiguration: s3Destination('fh-reconf', { BufferingHints: { SizeInMBs: 5, IntervalInSeconds: 900 } }) }),
  );
  await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'reconf', Records: [{ Data: Buffer.from('one\n') }, { Data: Buffer.from('two\n') }] }));
  await until(() => health(t, 'reconf').delivery.bufferedRecords === 2, 'two buffered records');
  await fh.send(
    new UpdateDestinationCommand({
      DeliveryStreamName: 'reconf',
      CurrentDeliveryStreamVersionId: '1',
      DestinationId: 'destinationId-000000000001',
      ExtendedS3DestinationUpdate: { Prefix: 'v2/', BufferingHints: { SizeInMBs: 5, IntervalInSeconds: 60 } },
    }),
  );
  await until(() => health(t, 'reconf').delivery.bufferedRecords === 2, 'the records buffered again by the new deliverer');
  const dir = bucketDir(t, 'fh-reconf');
  await checksPass(t, 'reconf');
  assert.deepEqual(await folderKeys(dir), []);
  clock.advance(60_000);
  const keys = await until(async () => ((await folderKeys(dir)).length > 0 ? folderKeys(dir) : undefined), 'the object under the new prefix');
  assert.equal(keys.length, 1);
  assert.match(keys[0], /^v2\/\d{4}\/\d\d\/\d\d\/\d\d\/reconf-2-/);
  assert.equal(await folderContents(dir), 'one\ntwo\n');
});
