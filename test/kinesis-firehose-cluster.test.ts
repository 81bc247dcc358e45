// Two in-process Pinstream nodes sharing Kinesis and Firehose (issue 17): one PostgreSQL metadata
// store (a fresh database on 127.0.0.1:5432), one NATS JetStream (127.0.0.1:4222, a prefix of this
// test's own), distinct data directories and one shared master key file. A stream created through
// node 1 serves through node 2; records put through node 1 are read through either node with
// iterators obtained from either; a delivery stream created through node 1 delivers what node 2
// took, exactly once, its deliverer running on one node only, and moving to the other node (from the
// shared checkpoint) when that node stops. Skipped, with the reason, when
// PostgreSQL or NATS is not reachable.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AddTagsToStreamCommand,
  CreateStreamCommand,
  DeleteStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListTagsForStreamCommand,
  PutRecordsCommand,
  SplitShardCommand,
  StartStreamEncryptionCommand,
  type GetRecordsCommandOutput,
  type KinesisClient,
} from '@aws-sdk/client-kinesis';
import { CreateDeliveryStreamCommand, DeleteDeliveryStreamCommand, PutRecordBatchCommand, type FirehoseClient } from '@aws-sdk/client-firehose';
import { systemClock } from '../src/clock.js';
import { JetStreamLogProvider } from '../src/log/jetstream/provider.js';
import { firehoseJobName } from '../src/firehose/service.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { kinesisClient } from './helpers/kinesis.js';
import { createDeliveryRole, firehoseClient, folderContents, s3Destination, until } from './helpers/firehose.js';
import { SINGLE_NATS, singleNatsSkip } from './helpers/nats-cluster.js';
import { postgresTarget, withClient } from './helpers/postgres.js';

/** GetRecords from `iterator` on, through `k`, until `want` records came or 30 s passed. */
async function readFrom(k: KinesisClient, iterator: string, want: number): Promise<string[]> {
  const out: string[] = [];
  const deadline = Date.now() + 30_000;
  let it: string | undefined = iterator;
  while (it && out.length < want && Date.now() < deadline) {
    const r: GetRecordsCommandOutput = await k.send(new GetRecordsCommand({ ShardIterator: it, Limit: 1000 }));
    out.push(...r.Records!.map((x) => Buffer.from(x.Data!).toString('utf8')));
    it = r.NextShardIterator;
    if (r.Records!.length === 0) await new Promise((res) => setTimeout(res, 50));
  }
  return out;
}

/** Retries `check` until it passes, for at most `timeoutMs` (changes travel by notification). */
async function eventually<T>(check: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > end) throw e;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

test('two nodes on PostgreSQL + JetStream share Kinesis streams and Firehose delivery streams', { timeout: 180_000 }, async (t) => {
  const pg = await postgresTarget();
  const why = pg.skip ?? (await singleNatsSkip());
  if (why) return t.skip(why);
  const dbName = `pinstream_kmeta_${process.pid}_${randomBytes(4).toString('hex')}`;
  await withClient(pg.config!, (c) => c.query(`CREATE DATABASE ${dbName}`));
  const postgresUrl = `postgres://${pg.config!.user}@${pg.config!.host}:${pg.config!.port}/${dbName}`;
  const prefix = `T${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const shared = await mkdtemp(join(tmpdir(), 'pinstream-kmeta-shared-'));
  const masterKeyFile = join(shared, 'master.key');
  await writeFile(masterKeyFile, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  const bucketDir = join(shared, 'bucket');
  const config = {
    natsUrl: [SINGLE_NATS],
    natsReplicas: 1,
    postgresUrl,
    masterKeyFile,
    kinesisTransitionMs: 0,
    buckets: [{ bucket: 'cluster-out', dir: bucketDir }],
  };
  const nodes: TestServer[] = [];
  const clients: Array<{ destroy(): void }> = [];
  t.after(async () => {
    for (const c of clients) c.destroy();
    for (const n of nodes) await n.close().catch(() => {});
    const cleanup = await JetStreamLogProvider.connect({ servers: [SINGLE_NATS], clock: systemClock, prefix });
    await cleanup.removeAll();
    await cleanup.close();
    await withClient(pg.config!, (c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`));
    await rm(shared, { recursive: true, force: true });
  });
  // One after the other (the admin's bootstrap key is made by the first; two nodes racing for the
  // iterator key are the store contract's case).
  // Distinct node ids: one host runs both, and placement tells its lease holders apart by id.
  nodes.push(await startTestServer({ config: { ...config, nodeId: 'kmeta-1' }, deps: { natsPrefix: prefix } }));
  nodes.push(await startTestServer({ config: { ...config, nodeId: 'kmeta-2' }, deps: { natsPrefix: prefix } }));
  const [one, two] = nodes;
  assert.equal(two.server.admin.accessKeyId, one.server.admin.accessKeyId);
  const k1 = kinesisClient(one.server);
  const k2 = kinesisClient(two.server);
  clients.push(k1, k2);

  // --- Kinesis: created, tagged, encrypted and resharded through node 1; used through node 2.
  const StreamName = 'shared-stream';
  await k1.send(new CreateStreamCommand({ StreamName, ShardCount: 1 }));
  await k1.send(new AddTagsToStreamCommand({ StreamName, Tags: { team: 'data' } }));
  await k1.send(new StartStreamEncryptionCommand({ StreamName, EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' }));
  const summary = await eventually(async () => {
    const s = (await k2.send(new DescribeStreamSummaryCommand({ StreamName }))).StreamDescriptionSummary!;
    assert.equal(s.EncryptionType, 'KMS');
    return s;
  });
  assert.equal(summary.StreamStatus, 'ACTIVE');
  assert.deepEqual((await k2.send(new ListTagsForStreamCommand({ StreamName }))).Tags, [{ Key: 'team', Value: 'data' }]);

  const put = await k1.send(new PutRecordsCommand({ StreamName, Records: ['a', 'b', 'c'].map((d) => ({ Data: Buffer.from(d), PartitionKey: 'pk' })) }));
  assert.equal(put.FailedRecordCount, 0);
  const ShardId = put.Records![0].ShardId!;
  // Iterators from node 2, read on node 2 and on node 1; and from node 1, read on node 2.
  const it2 = (await k2.send(new GetShardIteratorCommand({ StreamName, ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
  assert.deepEqual(await readFrom(k2, it2, 3), ['a', 'b', 'c'], 'node 2 reads (and opens the data key node 1 made) with its own iterator');
  assert.deepEqual(await readFrom(k1, it2, 3), ['a', 'b', 'c'], "node 1 reads with node 2's iterator");
  const it1 = (await k1.send(new GetShardIteratorCommand({ StreamName, ShardId, ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: put.Records![1].SequenceNumber }))).ShardIterator!;
  assert.deepEqual(await readFrom(k2, it1, 2), ['b', 'c'], "node 2 reads with node 1's iterator");
  // Records put through node 2 (its own data key) read through node 1.
  const put2 = await k2.send(new PutRecordsCommand({ StreamName, Records: [{ Data: Buffer.from('d'), PartitionKey: 'pk' }] }));
  assert.equal(put2.FailedRecordCount, 0);
  assert.deepEqual(await readFrom(k1, it2, 4), ['a', 'b', 'c', 'd']);

  // A reshard through node 1: node 2 routes to the children once it has the change.
  await k1.send(new SplitShardCommand({ StreamName, ShardToSplit: ShardId, NewStartingHashKey: (2n ** 127n).toString() }));
  await eventually(async () => {
    const r = await k2.send(new PutRecordsCommand({ StreamName, Records: [{ Data: Buffer.from('after split'), PartitionKey: 'pk' }] }));
    assert.notEqual(r.Records![0].ShardId, ShardId, 'routed to a child shard');
  });
  // Deleted through node 1: gone on node 2.
  await k1.send(new DeleteStreamCommand({ StreamName }));
  await eventually(async () => {
    const e = await k2.send(new DescribeStreamSummaryCommand({ StreamName })).then(() => undefined, (err: Error) => err);
    assert.equal(e?.name, 'ResourceNotFoundException');
  });

  // --- Firehose: created through node 1, records put through node 2, delivered once.
  await createDeliveryRole(one.server);
  const f1: FirehoseClient = firehoseClient(one.server);
  const f2: FirehoseClient = firehoseClient(two.server);
  clients.push(f1, f2);
  const DeliveryStreamName = 'shared-delivery';
  await f1.send(
    new CreateDeliveryStreamCommand({
      DeliveryStreamName,
      ExtendedS3DestinationConfiguration: s3Destination('cluster-out', { BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 0 } }),
    }),
  );
  const job = firehoseJobName(DeliveryStreamName);
  const runningOn = () => nodes.filter((n) => n.server.placement.states().some((s) => s.name === job && s.running));
  await until(() => runningOn().length === 1, 'the deliverer to start on one node');
  const lines = Array.from({ length: 20 }, (_, i) => `line-${i}\n`);
  await eventually(async () => {
    const r = await f2.send(new PutRecordBatchCommand({ DeliveryStreamName, Records: lines.slice(0, 10).map((l) => ({ Data: Buffer.from(l) })) }));
    assert.equal(r.FailedPutCount, 0);
  });
  const r = await f2.send(new PutRecordBatchCommand({ DeliveryStreamName, Records: lines.slice(10).map((l) => ({ Data: Buffer.from(l) })) }));
  assert.equal(r.FailedPutCount, 0);
  await until(async () => (await folderContents(bucketDir)).split('\n').filter(Boolean).length >= 20, 'the records in the bucket', 30_000);
  // Give a second deliverer, if there were one, time to write its copy.
  await new Promise((res) => setTimeout(res, 1_500));
  const delivered = (await folderContents(bucketDir)).split('\n').filter(Boolean).sort();
  assert.deepEqual(delivered, lines.map((l) => l.trim()).sort(), 'every record delivered exactly once');
  assert.equal(runningOn().length, 1, 'the deliverer runs on one node only');

  // The node running the deliverer stops: the other takes the lease over and resumes at the shared
  // checkpoint (nothing delivered twice, nothing lost).
  const [holder] = runningOn();
  const survivor = holder === one ? two : one;
  const fs = survivor === one ? f1 : f2;
  nodes.splice(nodes.indexOf(holder), 1);
  await holder.close();
  const more = Array.from({ length: 5 }, (_, i) => `more-${i}\n`);
  const r2 = await fs.send(new PutRecordBatchCommand({ DeliveryStreamName, Records: more.map((l) => ({ Data: Buffer.from(l) })) }));
  assert.equal(r2.FailedPutCount, 0);
  await until(() => runningOn().length === 1, 'the deliverer to move to the other node', 30_000);
  await until(async () => (await folderContents(bucketDir)).split('\n').filter(Boolean).length >= 25, 'the later records in the bucket', 30_000);
  await new Promise((res) => setTimeout(res, 1_000));
  assert.deepEqual(
    (await folderContents(bucketDir)).split('\n').filter(Boolean).sort(),
    [...lines, ...more].map((l) => l.trim()).sort(),
    'the new holder started at the checkpoint the old one saved',
  );

  // Deleted: released everywhere.
  await fs.send(new DeleteDeliveryStreamCommand({ DeliveryStreamName }));
  await until(() => nodes.every((n) => !n.server.placement.states().some((s) => s.name === job)), 'the job to be released');
});
