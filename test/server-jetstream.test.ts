// A server with PINSTREAM_NATS_URL: every log is a JetStream stream on the NATS at 127.0.0.1:4222
// (skipped when it is not there). PutEvents through the AWS SDK Pinpoint client reaches the embedded
// Kinesis stream through the event stream and is read back with the AWS SDK Kinesis client; Kinesis
// PutRecords/GetRecords with every iterator type keep their AWS semantics on JetStream offsets; and
// an unreachable NATS stops the start with a message naming it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { CreateAppCommand, PutEventsCommand, PutEventStreamCommand, type Event, type EventsBatch } from '@aws-sdk/client-pinpoint';
import { CreateStreamCommand, DescribeStreamSummaryCommand, GetRecordsCommand, GetShardIteratorCommand, PutRecordsCommand, type GetRecordsCommandOutput, type KinesisClient } from '@aws-sdk/client-kinesis';
import { IAMClient } from '@aws-sdk/client-iam';
import { systemClock } from '../src/clock.js';
import { ConfigError } from '../src/config/config.js';
import { JetStreamLogProvider } from '../src/log/jetstream/provider.js';
import { startTestServer } from './helpers/server.js';
import { kinesisClient } from './helpers/kinesis.js';
import { createPinpointRole } from './helpers/eventstream.js';
import { SINGLE_NATS, freePort, singleNatsSkip } from './helpers/nats-cluster.js';
import { runCli } from './helpers/process.js';
import { readAll as readAllLog } from './helpers/log-contract.js';
import { decodeIngestEntry } from '../src/pinpoint/ingest-record.js';

const ACCOUNT = '000000000000';

async function waitActive(k: KinesisClient, StreamName: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await k.send(new DescribeStreamSummaryCommand({ StreamName }))).StreamDescriptionSummary!.StreamStatus !== 'ACTIVE') {
    if (Date.now() > deadline) throw new Error(`${StreamName} not ACTIVE`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** GetRecords from `iterator` on until `want` records came or 30 s passed; returns the records' data as text. */
async function readFrom(k: KinesisClient, iterator: string, want: number): Promise<Array<{ data: string; seq: string }>> {
  const out: Array<{ data: string; seq: string }> = [];
  const deadline = Date.now() + 30_000;
  let it: string | undefined = iterator;
  while (it && out.length < want && Date.now() < deadline) {
    const r: GetRecordsCommandOutput = await k.send(new GetRecordsCommand({ ShardIterator: it, Limit: 1000 }));
    out.push(...r.Records!.map((x) => ({ data: Buffer.from(x.Data!).toString('utf8'), seq: x.SequenceNumber! })));
    it = r.NextShardIterator;
    if (r.Records!.length === 0) await new Promise((res) => setTimeout(res, 100));
  }
  return out;
}

test('with PINSTREAM_NATS_URL: PutEvents → event stream → embedded Kinesis on JetStream, and Kinesis iterators', { timeout: 120_000 }, async (t) => {
  const why = await singleNatsSkip();
  if (why) return t.skip(why);
  const prefix = `T${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const ts = await startTestServer({ config: { natsUrl: [SINGLE_NATS], natsReplicas: 1 }, deps: { natsPrefix: prefix } });
  const k = kinesisClient(ts.server);
  const iam = new IAMClient({ endpoint: ts.server.url, region: 'us-east-1', credentials: ts.server.admin, maxAttempts: 1 });
  t.after(async () => {
    k.destroy();
    iam.destroy();
    await ts.close();
    const cleanup = await JetStreamLogProvider.connect({ servers: [SINGLE_NATS], clock: systemClock, prefix });
    await cleanup.removeAll();
    await cleanup.close();
  });
  // A second node on the same NATS and prefix (its own data directory): it shares the logs.
  const node2 = await startTestServer({ config: { natsUrl: [SINGLE_NATS], natsReplicas: 1 }, deps: { natsPrefix: prefix } });
  t.after(() => node2.close());
  // The logs are streams, not segment folders in the data directory.
  await assert.rejects(access(join(ts.dataDir, 'log')));
  assert.ok(await ts.server.logs.exists('ingest', 'ingest'));

  const app = (await ts.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'on-jetstream' } }))).ApplicationResponse!.Id!;
  const stream = 'events-on-jetstream';
  await k.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 1 }));
  await waitActive(k, stream);
  const arn = `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${stream}`;
  await createPinpointRole(iam, 'js-events', { resource: arn });
  await ts.pinpoint.send(new PutEventStreamCommand({ ApplicationId: app, WriteEventStream: { DestinationStreamArn: arn, RoleArn: `arn:aws:iam::${ACCOUNT}:role/js-events` } }));

  const expected = new Set<string>();
  const BatchItem: Record<string, EventsBatch> = {};
  for (let e = 0; e < 4; e++) {
    const Events: Record<string, Event> = {};
    for (let i = 0; i < 5; i++) {
      Events[randomUUID()] = { EventType: 'level.up', Timestamp: new Date().toISOString(), Attributes: { seq: `${e}-${i}` } };
      expected.add(`${e}-${i}`);
    }
    BatchItem[randomUUID()] = { Endpoint: {}, Events };
  }
  const r = await ts.pinpoint.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem } }));
  for (const item of Object.values(r.EventsResponse!.Results!)) for (const res of Object.values(item.EventsItemResponse!)) assert.equal(res.Message, 'Accepted');
  assert.ok(ts.server.ingestLog.endOffset() >= expected.size, 'the events are in the ingest stream');

  const it = await k.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }));
  const delivered = await readFrom(k, it.ShardIterator!, expected.size);
  const seqs = new Set(delivered.map((d) => JSON.parse(d.data).attributes.seq as string));
  assert.deepEqual([...seqs].sort(), [...expected].sort());

  // A retry that reaches another node, whose own dedup window never saw the events, is stored once:
  // the event keys are JetStream message ids.
  const record = delivered[0].data;
  const items = ['retried-1', 'retried-2'].map((eventId) => ({ appId: app, endpointId: 'node-hop', eventId, record }));
  assert.equal(await ts.server.ingest.appendRecords(items), 2);
  assert.equal(await node2.server.ingest.appendRecords(items), 2, "node 2's own window did not know them");
  const hop = (await readAllLog(ts.server.ingestLog)).filter((r) => decodeIngestEntry(r.payload).endpointId === 'node-hop');
  assert.deepEqual(hop.map((r) => decodeIngestEntry(r.payload).eventId), ['retried-1', 'retried-2']);

  // Kinesis PutRecords / GetRecords with every iterator type, on a stream of its own.
  const s2 = 'iterators-on-jetstream';
  await k.send(new CreateStreamCommand({ StreamName: s2, ShardCount: 1 }));
  await waitActive(k, s2);
  const put = await k.send(new PutRecordsCommand({ StreamName: s2, Records: ['r0', 'r1', 'r2', 'r3'].map((d) => ({ Data: Buffer.from(d), PartitionKey: 'pk' })) }));
  assert.equal(put.FailedRecordCount, 0);
  const numbers = put.Records!.map((x) => x.SequenceNumber!);
  assert.equal(new Set(numbers).size, 4);
  const shard = { StreamName: s2, ShardId: 'shardId-000000000000' };
  const iter = async (ShardIteratorType: 'TRIM_HORIZON' | 'LATEST' | 'AT_SEQUENCE_NUMBER' | 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber?: string) =>
    (await k.send(new GetShardIteratorCommand({ ...shard, ShardIteratorType, StartingSequenceNumber }))).ShardIterator!;
  const all = await readFrom(k, await iter('TRIM_HORIZON'), 4);
  assert.deepEqual(all.map((x) => x.data), ['r0', 'r1', 'r2', 'r3']);
  assert.deepEqual(all.map((x) => x.seq), numbers, 'GetRecords returns the sequence numbers PutRecords answered');
  assert.deepEqual((await readFrom(k, await iter('AT_SEQUENCE_NUMBER', numbers[1]), 3)).map((x) => x.data), ['r1', 'r2', 'r3']);
  assert.deepEqual((await readFrom(k, await iter('AFTER_SEQUENCE_NUMBER', numbers[1]), 2)).map((x) => x.data), ['r2', 'r3']);
  const latest = await iter('LATEST');
  const empty = await k.send(new GetRecordsCommand({ ShardIterator: latest }));
  assert.deepEqual(empty.Records, []);
  await k.send(new PutRecordsCommand({ StreamName: s2, Records: [{ Data: Buffer.from('r4'), PartitionKey: 'pk' }] }));
  assert.deepEqual((await readFrom(k, empty.NextShardIterator!, 1)).map((x) => x.data), ['r4']);
  assert.equal(ts.server.logs.health().kinesis.failingLogs, 0);
});

test('an unreachable NATS stops the start with a message naming it', { timeout: 60_000 }, async () => {
  const url = `nats://127.0.0.1:${await freePort()}`;
  await assert.rejects(
    startTestServer({ config: { natsUrl: [url] }, deps: { natsConnectTimeoutMs: 2000 } }),
    (e: unknown) => e instanceof ConfigError && e.message.startsWith(`PINSTREAM_NATS_URL: NATS at ${url} is unreachable`),
  );
  // As an operator sees it: `pinstream start` exits 2 with one line naming NATS.
  const r = await runCli(['start'], { PINSTREAM_NATS_URL: url, PINSTREAM_PORT: '0', PINSTREAM_DATA_DIR: join(tmpdir(), `pinstream-never-created-${randomUUID()}`) });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`pinstream: configuration error: PINSTREAM_NATS_URL: NATS at ${url.replaceAll('.', '\\.')} is unreachable`));
});
