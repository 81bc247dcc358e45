// Crash tests of the embedded Kinesis shard logs. (a) Clients put records into a real
// `pinstream start` process, which is killed with SIGKILL mid-load: after a restart on the same
// data directory every acknowledged record must read back at its sequence number with identical
// bytes, nothing may be duplicated or corrupt, and writes must continue. (b) A torn tail (a
// segment cut mid-record, or garbage after the last record) is cut off at the next start: reads
// stop cleanly before it and new records follow the last intact one.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, readdir, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  PutRecordCommand,
  PutRecordsCommand,
  UpdateShardCountCommand,
  type KinesisClient,
} from '@aws-sdk/client-kinesis';
import { startTestServer } from './helpers/server.js';
import { spawnServer, waitForExit } from './helpers/process.js';
import { kinesisClient, readLineage } from './helpers/kinesis.js';
import { HEADER_BYTES } from '../src/log/format.js';

const CLIENTS = 6;
const RECORDS_PER_REQUEST = 100;
const KILL_AFTER_ACKED = 5_000;
const MAX_LOAD_MS = 20_000;
const sid = (i: number) => 'shardId-' + String(i).padStart(12, '0');

test('kill -9 during PutRecords: every acknowledged record reads back at its sequence number after restart', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-kcrash-'));
  try {
    const first = await spawnServer({ PINSTREAM_DATA_DIR: dataDir });
    const admin = { accessKeyId: first.accessKeyId, secretAccessKey: first.secretAccessKey! };
    const setup = kinesisClient({ url: first.url, admin });
    await setup.send(new CreateStreamCommand({ StreamName: 'crash', ShardCount: 4 }));
    setup.destroy();

    const sent = new Set<string>();
    const acked = new Map<string, { shardId: string; seq: string; data: string }>(); // by data
    let failedRequests = 0;
    let killed = false;
    const started = Date.now();
    const clients: KinesisClient[] = [];
    const loop = async (c: number) => {
      const k = kinesisClient({ url: first.url, admin });
      clients.push(k);
      for (let req = 0; !killed && Date.now() - started < MAX_LOAD_MS; req++) {
        const records = Array.from({ length: RECORDS_PER_REQUEST }, (_, i) => {
          const data = `c${c}-q${req}-r${i}-${randomBytes(4 + ((req * 7 + i) % 120)).toString('hex')}`;
          sent.add(data);
          return { Data: Buffer.from(data), PartitionKey: randomBytes(6).toString('hex') };
        });
        try {
          const r = await k.send(new PutRecordsCommand({ StreamName: 'crash', Records: records }));
          assert.equal(r.FailedRecordCount, 0);
          r.Records!.forEach((x, i) => {
            const data = records[i].Data.toString();
            acked.set(data, { shardId: x.ShardId!, seq: x.SequenceNumber!, data });
          });
        } catch (e) {
          if (!killed) throw e;
          failedRequests++;
          return;
        }
        if (!killed && acked.size >= KILL_AFTER_ACKED) {
          killed = true;
          first.child.kill('SIGKILL');
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, c) => loop(c)));
    if (!killed) {
      killed = true;
      first.child.kill('SIGKILL');
    }
    const exit = await waitForExit(first.child);
    for (const k of clients) k.destroy();
    assert.equal(exit.signal, 'SIGKILL');
    assert.ok(acked.size >= KILL_AFTER_ACKED, `${acked.size} records acknowledged before the kill`);

    const second = await spawnServer({ PINSTREAM_DATA_DIR: dataDir });
    const k = kinesisClient({ url: second.url, admin });
    try {
      assert.equal(second.accessKeyId, admin.accessKeyId);
      const read = await readLineage(k, 'crash');
      assert.deepEqual(read.order, [sid(0), sid(1), sid(2), sid(3)]);
      const byPosition = new Map<string, string>();
      const seen = new Set<string>();
      for (const id of read.order) {
        let prev = -1n;
        for (const r of read.byShard.get(id)!) {
          const data = r.data.toString('utf8');
          assert.ok(sent.has(data), `record ${r.sequenceNumber} of ${id} is one that was sent (not corrupt): ${data.slice(0, 40)}`);
          assert.ok(!seen.has(data), `record ${data.slice(0, 30)} is stored once`);
          seen.add(data);
          const seq = BigInt(r.sequenceNumber);
          assert.ok(seq > prev, `${id}: sequence numbers increase`);
          prev = seq;
          byPosition.set(`${id}/${r.sequenceNumber}`, data);
        }
      }
      const missing = [...acked.values()].filter((a) => byPosition.get(`${a.shardId}/${a.seq}`) !== a.data);
      assert.deepEqual(missing.slice(0, 3), [], `${missing.length} of ${acked.size} acknowledged records missing or different`);
      console.log(
        `kinesis crash test: ${sent.size} records sent, ${acked.size} acknowledged, ${seen.size} stored ` +
          `(${seen.size - acked.size} stored but unacknowledged), ${failedRequests} requests cut by the kill`,
      );

      // Writes continue after the restart, after everything that survived.
      const lastSeq = new Map(read.order.map((id) => [id, read.byShard.get(id)!.at(-1)?.sequenceNumber ?? '0']));
      const more = await k.send(
        new PutRecordsCommand({
          StreamName: 'crash',
          Records: Array.from({ length: 20 }, (_, i) => ({ Data: Buffer.from(`after-${i}`), PartitionKey: `after-${i}` })),
        }),
      );
      assert.equal(more.FailedRecordCount, 0);
      for (const [i, x] of more.Records!.entries()) {
        assert.ok(BigInt(x.SequenceNumber!) > BigInt(lastSeq.get(x.ShardId!)!), 'new sequence numbers follow the old ones');
        const it = (
          await k.send(
            new GetShardIteratorCommand({ StreamName: 'crash', ShardId: x.ShardId, ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: x.SequenceNumber }),
          )
        ).ShardIterator;
        const got = await k.send(new GetRecordsCommand({ ShardIterator: it, Limit: 1 }));
        assert.equal(Buffer.from(got.Records![0].Data!).toString(), `after-${i}`);
      }
    } finally {
      k.destroy();
      second.child.kill('SIGTERM');
      const { code } = await waitForExit(second.child);
      assert.equal(code, 0, 'SIGTERM shuts down cleanly');
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('kill -9 while resharding under load: after restart the lineage is whole and every acknowledged record is read once', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-kcrash-reshard-'));
  try {
    const first = await spawnServer({ PINSTREAM_DATA_DIR: dataDir });
    const admin = { accessKeyId: first.accessKeyId, secretAccessKey: first.secretAccessKey! };
    const control = kinesisClient({ url: first.url, admin });
    await control.send(new CreateStreamCommand({ StreamName: 'rcrash', ShardCount: 2 }));

    const acked = new Map<string, { shardId: string; seq: string }>();
    let killed = false;
    let reshards = 0;
    const started = Date.now();
    const clients: KinesisClient[] = [control];
    const writer = async (c: number) => {
      const k = kinesisClient({ url: first.url, admin });
      clients.push(k);
      for (let req = 0; !killed && Date.now() - started < MAX_LOAD_MS; req++) {
        const records = Array.from({ length: 50 }, (_, i) => ({ Data: Buffer.from(`w${c}-q${req}-r${i}`), PartitionKey: randomBytes(6).toString('hex') }));
        try {
          const r = await k.send(new PutRecordsCommand({ StreamName: 'rcrash', Records: records }));
          r.Records!.forEach((x, i) => acked.set(records[i].Data.toString(), { shardId: x.ShardId!, seq: x.SequenceNumber! }));
        } catch (e) {
          if (!killed) throw e;
          return;
        }
      }
    };
    // Alternates 2 → 4 → 2 shards until the kill, which lands after the 6th reshard has been sent.
    const resharder = async () => {
      for (let n = 0; !killed && Date.now() - started < MAX_LOAD_MS; n++) {
        const send = control.send(new UpdateShardCountCommand({ StreamName: 'rcrash', TargetShardCount: n % 2 === 0 ? 4 : 2, ScalingType: 'UNIFORM_SCALING' }));
        if (n === 5) {
          // Kill while this one is in flight.
          killed = true;
          first.child.kill('SIGKILL');
        }
        try {
          await send;
          reshards++;
        } catch (e) {
          if (!killed) throw e;
          return;
        }
      }
    };
    await Promise.all([...Array.from({ length: 4 }, (_, c) => writer(c)), resharder()]);
    if (!killed) {
      killed = true;
      first.child.kill('SIGKILL');
    }
    assert.equal((await waitForExit(first.child)).signal, 'SIGKILL');
    for (const k of clients) k.destroy();
    assert.ok(acked.size > 0);

    const second = await spawnServer({ PINSTREAM_DATA_DIR: dataDir });
    const k = kinesisClient({ url: second.url, admin });
    try {
      const read = await readLineage(k, 'rcrash');
      const stored = new Map<string, string>();
      for (const id of read.order) {
        for (const r of read.byShard.get(id)!) {
          const data = r.data.toString();
          assert.ok(!stored.has(data), `${data} is stored once`);
          stored.set(data, `${id}/${r.sequenceNumber}`);
        }
      }
      const missing = [...acked].filter(([data, a]) => stored.get(data) !== `${a.shardId}/${a.seq}`);
      assert.deepEqual(missing.slice(0, 3), [], `${missing.length} of ${acked.size} acknowledged records missing or moved`);
      // Every closed shard ends (GetRecords stops giving iterators), so a reader reaches the open ones.
      for (const [id, children] of read.children) assert.ok(children.length > 0, `${id} ends with ChildShards`);
      console.log(`kinesis reshard crash test: ${reshards} reshards completed before the kill, ${acked.size} records acknowledged, ${stored.size} stored`);
      // The stream is usable: it can be resharded again and written to.
      const status = (await k.send(new DescribeStreamSummaryCommand({ StreamName: 'rcrash' }))).StreamDescriptionSummary!;
      assert.equal(status.StreamStatus, 'ACTIVE');
      await k.send(new UpdateShardCountCommand({ StreamName: 'rcrash', TargetShardCount: status.OpenShardCount! * 2, ScalingType: 'UNIFORM_SCALING' }));
      const put = await k.send(new PutRecordCommand({ StreamName: 'rcrash', PartitionKey: 'after', Data: Buffer.from('after') }));
      assert.match(put.SequenceNumber!, /^\d{56}$/);
    } finally {
      k.destroy();
      second.child.kill('SIGTERM');
      assert.equal((await waitForExit(second.child)).code, 0);
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('torn shard log tails are cut at restart: reads stop before them and writes continue', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-ktorn-'));
  try {
    let t = await startTestServer({ dataDir });
    let k = kinesisClient(t.server);
    const stop = async () => {
      k.destroy();
      await t.close();
    };
    const third = (1n << 128n) / 3n;
    const hashOf = [1n, third + 1n, 2n * third + 1n].map(String); // one key inside each of the three shards
    const put = async (shard: number, data: string) =>
      (await k.send(new PutRecordCommand({ StreamName: 'torn', PartitionKey: 'k', Data: Buffer.from(data), ExplicitHashKey: hashOf[shard] }))).SequenceNumber!;
    const seqs: string[][] = [[], [], []];
    const read = async (shard: number) => {
      const it = (await k.send(new GetShardIteratorCommand({ StreamName: 'torn', ShardId: sid(shard), ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
      const r = await k.send(new GetRecordsCommand({ ShardIterator: it }));
      return r.Records!.map((x) => [x.SequenceNumber!, Buffer.from(x.Data!).toString()]);
    };
    const expected = (shard: number, n: number) => Array.from({ length: n }, (_, i) => [seqs[shard][i], `s${shard}-${i}-${'x'.repeat(50 + i)}`]);
    try {
      await k.send(new CreateStreamCommand({ StreamName: 'torn', ShardCount: 3 }));
      for (let shard = 0; shard < 3; shard++) for (let i = 0; i < 20; i++) seqs[shard].push(await put(shard, `s${shard}-${i}-${'x'.repeat(50 + i)}`));
      for (let shard = 0; shard < 3; shard++) assert.deepEqual(await read(shard), expected(shard, 20));
    } finally {
      await stop();
    }

    // Damage the last segment of each shard, each differently, with the server stopped.
    const streamDirs = (await readdir(join(dataDir, 'kinesis'))).filter((d) => d.startsWith('torn-'));
    assert.equal(streamDirs.length, 1);
    const lastSegment = async (shard: number) => {
      const dir = join(dataDir, 'kinesis', streamDirs[0], sid(shard));
      const logs = (await readdir(dir)).filter((f) => f.endsWith('.log')).sort();
      return join(dir, logs[logs.length - 1]);
    };
    const lastFrame = HEADER_BYTES + 2 + 1 + `s0-19-${'x'.repeat(69)}`.length; // header, key length, key 'k', data
    const seg0 = await lastSegment(0);
    await truncate(seg0, (await stat(seg0)).size - 3); // mid-payload of record 19
    const seg1 = await lastSegment(1);
    await truncate(seg1, (await stat(seg1)).size - lastFrame + 10); // only 10 header bytes of record 19 left
    const seg2 = await lastSegment(2);
    await appendFile(seg2, Buffer.alloc(100)); // zeros after the last record (a preallocated, unwritten tail)

    t = await startTestServer({ dataDir });
    k = kinesisClient(t.server);
    try {
      assert.deepEqual(await read(0), expected(0, 19), 'shard 0 stops cleanly before the torn record');
      assert.deepEqual(await read(1), expected(1, 19), 'shard 1 stops cleanly before the torn header');
      assert.deepEqual(await read(2), expected(2, 20), 'shard 2 keeps every record; the garbage is gone');
      for (let shard = 0; shard < 3; shard++) {
        const seq = await put(shard, `after-${shard}`);
        const intact = shard === 2 ? 20 : 19;
        assert.ok(BigInt(seq) > BigInt(seqs[shard][intact - 1]), 'the new record follows the last intact one');
        const got = await read(shard);
        assert.equal(got.length, intact + 1);
        assert.deepEqual(got[intact], [seq, `after-${shard}`]);
        assert.deepEqual(got.slice(0, intact), expected(shard, intact));
      }
    } finally {
      await stop();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
