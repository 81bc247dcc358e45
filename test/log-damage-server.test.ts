// Regression tests of issue 12 defect 2 through the real server: one damaged byte in a log costs
// the damaged record only, the server starts, the loss is reported, and consumers' checkpoints
// never end up beyond the log so that new records are delivered and loaded (not silently skipped).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateAppCommand, PutEventsCommand, PutEventStreamCommand, type Event } from '@aws-sdk/client-pinpoint';
import { CreateStreamCommand, GetRecordsCommand, GetShardIteratorCommand, PutRecordCommand, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { SegmentLog } from '../src/log/segment-log.js';
import { encodeIngestEntry } from '../src/pinpoint/ingest-record.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { kinesisClient } from './helpers/kinesis.js';
import { createPinpointRole } from './helpers/eventstream.js';
import { until } from './helpers/firehose.js';
import { metricsFetch } from './helpers/process.js';

const ACCOUNT = '000000000000';

async function flipAt(path: string, position: number): Promise<void> {
  const fh = await open(path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, position);
  b[0] ^= 0x20;
  await fh.write(b, 0, 1, position);
  await fh.close();
}

const segments = async (dir: string) => (await readdir(dir)).filter((n) => n.endsWith('.log')).sort().map((n) => join(dir, n));

/** Flips one byte inside the bytes of the (unique) text `marker` in a segment file. */
async function damageText(path: string, marker: string): Promise<void> {
  const at = (await readFile(path)).indexOf(marker);
  assert.ok(at >= 0, `${marker} in ${path}`);
  await flipAt(path, at + 1);
}

async function eventsLoaded(t: TestServer): Promise<Set<string>> {
  await t.server.analytics.catchUp();
  return new Set((await t.server.analytics.query('SELECT event_key FROM events')).map((r) => String(r[0]).split('/')[1]));
}

async function streamEventIds(t: TestServer, StreamName: string): Promise<string[]> {
  const k = kinesisClient(t.server);
  try {
    let it = (await k.send(new GetShardIteratorCommand({ StreamName, ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    const ids: string[] = [];
    for (;;) {
      const r = await k.send(new GetRecordsCommand({ ShardIterator: it }));
      for (const rec of r.Records!) ids.push(JSON.parse(Buffer.from(rec.Data!).toString()).attributes.id);
      if (r.Records!.length === 0) return ids;
      it = r.NextShardIterator;
    }
  } finally {
    k.destroy();
  }
}

async function putEvents(t: TestServer, app: string, ids: string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 100) {
    const Events: Record<string, Event> = {};
    for (const id of ids.slice(i, i + 100)) Events[id] = { EventType: 'damage.test', Timestamp: new Date().toISOString(), Attributes: { id } };
    const r = await t.pinpoint.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: { [`ep-${i}`]: { Endpoint: {}, Events } } } }));
    for (const res of Object.values(r.EventsResponse!.Results![`ep-${i}`].EventsItemResponse!)) assert.equal(res.StatusCode, 202);
  }
}

async function withEventStream(t: TestServer): Promise<string> {
  const app = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'damage' } }))).ApplicationResponse!.Id!;
  const k = kinesisClient(t.server);
  const iam = new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 });
  try {
    await k.send(new CreateStreamCommand({ StreamName: 'es', ShardCount: 1 }));
    const arn = `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/es`;
    await createPinpointRole(iam, 'es-role', { resource: arn });
    await t.pinpoint.send(new PutEventStreamCommand({ ApplicationId: app, WriteEventStream: { DestinationStreamArn: arn, RoleArn: `arn:aws:iam::${ACCOUNT}:role/es-role` } }));
  } finally {
    k.destroy();
    iam.destroy();
  }
  return app;
}

const caughtUp = (t: TestServer, app: string) => until(() => t.server.delivery.health(app)?.recordsBehind === 0, 'delivery to catch up', 30_000);

test('one flipped byte in the middle of the active ingest segment costs one event; new events are still delivered and loaded', { timeout: 120_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-ingest-damage-'));
  try {
    let t = await startTestServer({ dataDir });
    const app = await withEventStream(t);
    const before = Array.from({ length: 2000 }, (_, i) => `old-${i}`);
    try {
      await putEvents(t, app, before);
      await caughtUp(t, app);
      assert.equal((await eventsLoaded(t)).size, 2000);
    } finally {
      await t.close();
    }
    const [seg] = await segments(join(dataDir, 'log', 'ingest'));
    await damageText(seg, '"old-1000"');

    t = await startTestServer({ dataDir });
    try {
      assert.equal(t.server.ingestLog.endOffset(), 2000, 'nothing after the damaged record was cut');
      const health = await (await fetch(`${t.server.url}/health`)).json();
      assert.equal(health.logs.ingest.recordsLost, 1);
      assert.equal(health.logs.ingest.damagedFiles, 1);
      assert.match(await (await metricsFetch(t.server.url)).text(), /^pinstream_log_records_lost_total\{log="ingest"\} 1$/m);
      const after = Array.from({ length: 300 }, (_, i) => `new-${i}`);
      await putEvents(t, app, after);
      await caughtUp(t, app);
      const h = t.server.delivery.health(app)!;
      assert.ok(h.checkpoint <= h.logEnd, `checkpoint ${h.checkpoint} within the log (end ${h.logEnd})`);
      const delivered = new Set(await streamEventIds(t, 'es'));
      for (const id of after) assert.ok(delivered.has(id), `${id} delivered`);
      const loaded = await eventsLoaded(t);
      for (const id of after) assert.ok(loaded.has(id), `${id} loaded`);
      // Every other event is still in the ingest log.
      const inLog = new Set<string>();
      for (let next = 0; next < t.server.ingestLog.endOffset(); ) {
        const r = await t.server.ingestLog.read(next);
        for (const rec of r.records) inLog.add(JSON.parse(rec.payload.toString().split('\n')[0])[2]);
        next = r.nextOffset;
      }
      assert.deepEqual(before.filter((id) => !inLog.has(id)), ['old-1000']);
    } finally {
      await t.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

for (const index of ['with', 'without'] as const) {
  test(`a flipped byte in a closed ingest segment (${index} its index): the server starts and loads every other event`, { timeout: 60_000 }, async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-closed-damage-'));
    try {
      const dir = join(dataDir, 'log', 'ingest');
      const log = await SegmentLog.open(dir, { segmentBytes: 4096 });
      const record = (i: number) => JSON.stringify({ event_type: 'damage.test', event_timestamp: Date.now(), arrival_timestamp: Date.now(), attributes: { id: `ev-${i}` } });
      for (let i = 0; i < 300; i += 10) await log.append(Array.from({ length: 10 }, (_, k) => encodeIngestEntry('app0', 'ep0', `ev-${i + k}`, record(i + k))));
      await log.close();
      const segs = await segments(dir);
      assert.ok(segs.length > 3, 'several segments');
      await damageText(segs[0], '"ev-5"');
      if (index === 'without') await rm(segs[0].replace(/\.log$/, '.idx'));

      const t = await startTestServer({ dataDir });
      try {
        const loaded = await eventsLoaded(t);
        assert.equal(loaded.size, 299);
        assert.ok(!loaded.has('ev-5'));
        assert.equal(t.server.logs.health().ingest.recordsLost, 1);
      } finally {
        await t.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
}

test('a delivery checkpoint beyond the end of the ingest log is reported and new events are still delivered and loaded', { timeout: 120_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-gap-'));
  try {
    let t = await startTestServer({ dataDir });
    const app = await withEventStream(t);
    try {
      await putEvents(t, app, Array.from({ length: 500 }, (_, i) => `old-${i}`));
      await caughtUp(t, app);
      await eventsLoaded(t);
    } finally {
      await t.close();
    }
    // The whole ingest log is gone (an operator removed it, or a disk lost it).
    await rm(join(dataDir, 'log', 'ingest'), { recursive: true });

    t = await startTestServer({ dataDir });
    try {
      const gap = t.server.delivery.health(app)!;
      assert.equal(gap.checkpointGap?.records, 500, JSON.stringify(gap));
      assert.match(gap.checkpointGap!.message, /beyond the end of the log/);
      assert.equal((await t.server.analytics.loaderHealth()).checkpointGap?.records, 500);
      assert.ok(t.server.logs.health().ingest.checkpointGaps >= 1);
      const after = Array.from({ length: 200 }, (_, i) => `new-${i}`);
      await putEvents(t, app, after);
      await caughtUp(t, app);
      const delivered = new Set(await streamEventIds(t, 'es'));
      for (const id of after) assert.ok(delivered.has(id), `${id} delivered`);
      const loaded = await eventsLoaded(t);
      for (const id of after) assert.ok(loaded.has(id), `${id} loaded`);
    } finally {
      await t.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('one flipped byte in the middle of a Kinesis shard log costs one record; sequence numbers are not reused', { timeout: 60_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-shard-damage-'));
  try {
    let t = await startTestServer({ dataDir });
    let k = kinesisClient(t.server);
    const seqs = new Map<string, string>();
    try {
      await k.send(new CreateStreamCommand({ StreamName: 's', ShardCount: 1 }));
      for (let b = 0; b < 20; b++) {
        const data = Array.from({ length: 100 }, (_, i) => `rec-${b * 100 + i}|`);
        const r = await k.send(new PutRecordsCommand({ StreamName: 's', Records: data.map((d) => ({ Data: Buffer.from(d), PartitionKey: d })) }));
        r.Records!.forEach((x, i) => seqs.set(data[i], x.SequenceNumber!));
      }
    } finally {
      k.destroy();
      await t.close();
    }
    const shardDir = join(dataDir, 'kinesis', (await readdir(join(dataDir, 'kinesis')))[0], 'shardId-000000000000');
    const [seg] = await segments(shardDir);
    await damageText(seg, 'rec-1000|');

    t = await startTestServer({ dataDir });
    k = kinesisClient(t.server);
    try {
      let it = (await k.send(new GetShardIteratorCommand({ StreamName: 's', ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
      const got = new Map<string, string>();
      for (;;) {
        const r = await k.send(new GetRecordsCommand({ ShardIterator: it }));
        for (const rec of r.Records!) got.set(Buffer.from(rec.Data!).toString(), rec.SequenceNumber!);
        if (r.Records!.length === 0) break;
        it = r.NextShardIterator;
      }
      assert.deepEqual([...seqs.keys()].filter((d) => got.get(d) !== seqs.get(d)), ['rec-1000|']);
      assert.equal(t.server.logs.health().kinesis.recordsLost, 1);
      const next = await k.send(new PutRecordCommand({ StreamName: 's', Data: Buffer.from('after|'), PartitionKey: 'a' }));
      const max = [...seqs.values()].reduce((m, s) => (BigInt(s) > m ? BigInt(s) : m), 0n);
      assert.ok(BigInt(next.SequenceNumber!) > max, 'a new record gets a sequence number above every earlier one');
    } finally {
      k.destroy();
      await t.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('a Kinesis shard log lost after its readers passed it: a Firehose source and a shard iterator report the gap, and new records are read, not skipped', { timeout: 90_000 }, async () => {
  const { CreateDeliveryStreamCommand } = await import('@aws-sdk/client-firehose');
  const { firehoseClient, folderContents, s3Destination } = await import('./helpers/firehose.js');
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-shard-gap-'));
  try {
    let t = await startTestServer({ dataDir });
    let k = kinesisClient(t.server);
    const fh = firehoseClient(t.server);
    const iam = new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 });
    const arn = `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/src`;
    let iterator: string;
    let lastSeq: string;
    let soloIterator: string;
    let soloLast: string;
    try {
      await k.send(new CreateStreamCommand({ StreamName: 'src', ShardCount: 1 }));
      await createPinpointRole(iam, 'reader', {
        resource: arn,
        trustService: 'firehose.amazonaws.com',
        actions: ['kinesis:DescribeStream', 'kinesis:ListShards', 'kinesis:GetShardIterator', 'kinesis:GetRecords'],
      });
      // Firehose writes the bucket as this role too.
      await iam.send(
        new PutRolePolicyCommand({
          RoleName: 'reader',
          PolicyName: 'bucket',
          PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:PutObject', Resource: 'arn:aws:s3:::gap-bucket/*' }] }),
        }),
      );
      await fh.send(
        new CreateDeliveryStreamCommand({
          DeliveryStreamName: 'from-src',
          DeliveryStreamType: 'KinesisStreamAsSource',
          KinesisStreamSourceConfiguration: { KinesisStreamARN: arn, RoleARN: `arn:aws:iam::${ACCOUNT}:role/reader` },
          ExtendedS3DestinationConfiguration: s3Destination('gap-bucket', { RoleARN: `arn:aws:iam::${ACCOUNT}:role/reader`, BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 0 } }),
        }),
      );
      const r = await k.send(new PutRecordsCommand({ StreamName: 'src', Records: Array.from({ length: 50 }, (_, i) => ({ Data: Buffer.from(`old-${i}\n`), PartitionKey: 'p' })) }));
      lastSeq = r.Records![49].SequenceNumber!;
      await until(() => (t.server.firehose.health('from-src')?.source?.recordsRead ?? 0) >= 50, 'the source to read the records', 30_000);
      // A consumer of our own has read everything too; its iterator points past the last record.
      const it = (await k.send(new GetShardIteratorCommand({ StreamName: 'src', ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
      iterator = (await k.send(new GetRecordsCommand({ ShardIterator: it }))).NextShardIterator!;
      // And a stream only such an iterator reads.
      await k.send(new CreateStreamCommand({ StreamName: 'solo', ShardCount: 1 }));
      const s = await k.send(new PutRecordsCommand({ StreamName: 'solo', Records: Array.from({ length: 20 }, (_, i) => ({ Data: Buffer.from(`solo-${i}`), PartitionKey: 'p' })) }));
      soloLast = s.Records![19].SequenceNumber!;
      const sit = (await k.send(new GetShardIteratorCommand({ StreamName: 'solo', ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
      soloIterator = (await k.send(new GetRecordsCommand({ ShardIterator: sit }))).NextShardIterator!;
    } finally {
      k.destroy();
      fh.destroy();
      iam.destroy();
      await t.close();
    }
    // The shards' whole logs are gone: their segments, end marks and high-water marks.
    for (const d of await readdir(join(dataDir, 'kinesis'))) await rm(join(dataDir, 'kinesis', d, 'shardId-000000000000'), { recursive: true });

    t = await startTestServer({ dataDir });
    k = kinesisClient(t.server);
    try {
      const gaps = t.server.firehose.health('from-src')?.source?.checkpointGaps;
      assert.equal(gaps?.[0]?.records, 50, JSON.stringify(t.server.firehose.health('from-src')));
      // The iterator from before the restart is signed by this server: still served, past the gap.
      const r = await k.send(new GetRecordsCommand({ ShardIterator: iterator }));
      assert.deepEqual(r.Records, []);
      const next = await k.send(new PutRecordCommand({ StreamName: 'src', Data: Buffer.from('new-0\n'), PartitionKey: 'p' }));
      assert.ok(BigInt(next.SequenceNumber!) > BigInt(lastSeq), 'sequence numbers go on above the lost ones');
      const after = await k.send(new GetRecordsCommand({ ShardIterator: r.NextShardIterator! }));
      assert.deepEqual(after.Records!.map((x) => Buffer.from(x.Data!).toString()), ['new-0\n']);
      // The iterator alone: served past the gap, and the log continues after it.
      assert.deepEqual((await k.send(new GetRecordsCommand({ ShardIterator: soloIterator }))).Records, []);
      assert.equal(t.server.logs.health().kinesis.checkpointGaps, 2);
      const solo = await k.send(new PutRecordCommand({ StreamName: 'solo', Data: Buffer.from('solo-new'), PartitionKey: 'p' }));
      assert.ok(BigInt(solo.SequenceNumber!) > BigInt(soloLast));
      const dir = join(dataDir, 'buckets', 'gap-bucket');
      await until(async () => (await folderContents(dir)).includes('new-0'), 'the source to deliver the new record', 30_000);
    } finally {
      k.destroy();
      await t.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
