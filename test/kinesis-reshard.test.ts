// Resharding of the embedded Kinesis: SplitShard, MergeShards and UpdateShardCount while writers
// keep writing. Reading every shard in lineage order (a child only after its parents ended, as the
// KCL does) must return every acknowledged record exactly once, and each partition key's records
// in the order they were put. Also the shard lineage shape (EndingSequenceNumber, parents,
// ChildShards), the argument and limit errors, and the races between a write and a reshard.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateStreamCommand,
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  MergeShardsCommand,
  PutRecordCommand,
  PutRecordsCommand,
  SplitShardCommand,
  UpdateShardCountCommand,
  type Shard,
} from '@aws-sdk/client-kinesis';
import { ManualClock } from '../src/clock.js';
import { openDb, type Db } from '../src/store/db.js';
import { sqliteMetadata } from '../src/store/metadata.js';
import { SecretBox } from '../src/iam/secrets.js';
import { StreamRegistry } from '../src/kinesis/streams.js';
import { KinesisData } from '../src/kinesis/records.js';
import { TokenSigner } from '../src/kinesis/iterators.js';
import { kinesisService } from '../src/kinesis/api.js';
import { toHex } from '../src/kinesis/keys.js';
import { assertError, kinesisServer, readLineage, type LineageRead } from './helpers/kinesis.js';

const ACCOUNT = '000000000000';
const MAX_HASH = (1n << 128n) - 1n;
const HALF = 1n << 127n;
const sid = (i: number) => 'shardId-' + String(i).padStart(12, '0');
const range = (s: Shard): [bigint, bigint] => [BigInt(s.HashKeyRange!.StartingHashKey!), BigInt(s.HashKeyRange!.EndingHashKey!)];

interface Acked {
  key: string;
  data: string;
  shardId: string;
  seq: string;
}

/** Writers that each own a set of partition keys and put them one request at a time, so every key has a put order. */
class Writers {
  acked: Acked[] = [];
  private n = 0;
  constructor(
    private k: KinesisClient,
    private stream: string,
    private keys: string[],
  ) {}

  /** `writers` concurrent writers, `requests` requests each (PutRecords of up to 10, or a PutRecord). */
  async write(writers: number, requests: number): Promise<void> {
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        const mine = this.keys.filter((_, i) => i % writers === w);
        for (let r = 0; r < requests; r++) {
          if (r % 4 === 3) {
            const key = mine[r % mine.length];
            const data = `${key}#${this.n++}`;
            const res = await this.k.send(new PutRecordCommand({ StreamName: this.stream, PartitionKey: key, Data: Buffer.from(data) }));
            this.acked.push({ key, data, shardId: res.ShardId!, seq: res.SequenceNumber! });
          } else {
            const batch = Array.from({ length: 10 }, (_, i) => {
              const key = mine[(r * 10 + i) % mine.length];
              return { key, data: `${key}#${this.n++}` };
            });
            const res = await this.k.send(
              new PutRecordsCommand({ StreamName: this.stream, Records: batch.map((b) => ({ PartitionKey: b.key, Data: Buffer.from(b.data) })) }),
            );
            assert.equal(res.FailedRecordCount, 0);
            res.Records!.forEach((x, i) => this.acked.push({ ...batch[i], shardId: x.ShardId!, seq: x.SequenceNumber! }));
          }
        }
      }),
    );
  }

  /** Every acknowledged record read exactly once, nothing else, and each key's records in put order. */
  check(read: LineageRead): void {
    const all = read.order.flatMap((id) => read.byShard.get(id)!);
    const seen = new Map<string, number>();
    for (const r of all) seen.set(`${r.shardId}/${r.sequenceNumber}`, (seen.get(`${r.shardId}/${r.sequenceNumber}`) ?? 0) + 1);
    const dup = [...seen].filter(([, n]) => n > 1);
    assert.deepEqual(dup, [], 'no record is read twice');
    const bySeq = new Map(all.map((r) => [`${r.shardId}/${r.sequenceNumber}`, r]));
    const missing = this.acked.filter((a) => bySeq.get(`${a.shardId}/${a.seq}`)?.data.toString() !== a.data);
    assert.deepEqual(missing.slice(0, 5), [], `${missing.length} acknowledged records missing or different`);
    assert.equal(all.length, this.acked.length, 'nothing but the acknowledged records');
    // Put order per key is the order of acknowledgement within each writer (one request at a time).
    const putOrder = new Map<string, string[]>();
    for (const a of [...this.acked].sort((x, y) => Number(x.data.split('#')[1]) - Number(y.data.split('#')[1]))) {
      putOrder.set(a.key, [...(putOrder.get(a.key) ?? []), a.data]);
    }
    const readOrder = new Map<string, string[]>();
    for (const r of all) readOrder.set(r.partitionKey, [...(readOrder.get(r.partitionKey) ?? []), r.data.toString()]);
    for (const [key, expected] of putOrder) assert.deepEqual(readOrder.get(key), expected, `order of key ${key}`);
  }
}

/**
 * Lineage shape: every child's hash range lies within its parents' ranges, every closed shard's
 * range is covered by the shards that name it as parent, and GetRecords at the end of a closed
 * shard names exactly those children.
 */
function checkLineage(shards: Shard[], read?: LineageRead): void {
  const byId = new Map(shards.map((s) => [s.ShardId!, s]));
  const covered = (target: [bigint, bigint], parts: Array<[bigint, bigint]>) => {
    let next = target[0];
    for (const [a, b] of [...parts].sort((x, y) => (x[0] < y[0] ? -1 : 1))) {
      if (a <= next && b >= next) next = b + 1n;
    }
    return next > target[1];
  };
  for (const s of shards) {
    const parents = [s.ParentShardId, s.AdjacentParentShardId].filter((p): p is string => !!p && byId.has(p));
    if (parents.length > 0) {
      assert.ok(covered(range(s), parents.map((p) => range(byId.get(p)!))), `${s.ShardId} lies within its parents ${parents.join(', ')}`);
    }
    const children = shards.filter((c) => c.ParentShardId === s.ShardId || c.AdjacentParentShardId === s.ShardId);
    if (s.SequenceNumberRange!.EndingSequenceNumber !== undefined) {
      assert.ok(children.length > 0, `closed ${s.ShardId} has children`);
      assert.ok(covered(range(s), children.map(range)), `closed ${s.ShardId} is covered by its children ${children.map((c) => c.ShardId).join(', ')}`);
      if (read) assert.deepEqual([...read.children.get(s.ShardId!)!].sort(), children.map((c) => c.ShardId!).sort(), `ChildShards of ${s.ShardId}`);
    } else {
      assert.deepEqual(children, [], `open ${s.ShardId} has no children`);
    }
  }
  // The open shards partition the whole key space.
  const open = shards.filter((s) => s.SequenceNumberRange!.EndingSequenceNumber === undefined).map(range).sort((x, y) => (x[0] < y[0] ? -1 : 1));
  assert.equal(open[0][0], 0n);
  for (let i = 1; i < open.length; i++) assert.equal(open[i][0], open[i - 1][1] + 1n, 'open shards are contiguous');
  assert.equal(open[open.length - 1][1], MAX_HASH);
}

describe('resharding through the SDK', () => {
  const srv = kinesisServer();
  const shards = async (name: string) => (await srv.k.send(new ListShardsCommand({ StreamName: name }))).Shards!;
  const scale = (name: string, n: number) => srv.k.send(new UpdateShardCountCommand({ StreamName: name, TargetShardCount: n, ScalingType: 'UNIFORM_SCALING' }));

  test('split, merge and UpdateShardCount 1→2→4→3 while writing: every record read once, in order per key', async () => {
    await srv.k.send(new CreateStreamCommand({ StreamName: 'rs', ShardCount: 1 }));
    const keys = Array.from({ length: 50 }, (_, i) => `key-${i}`);
    const w = new Writers(srv.k, 'rs', keys);
    await w.write(5, 8);
    // Each reshard runs while the writers are busy.
    await Promise.all([w.write(5, 8), srv.k.send(new SplitShardCommand({ StreamName: 'rs', ShardToSplit: sid(0), NewStartingHashKey: HALF.toString() }))]);
    await w.write(5, 4);
    await Promise.all([w.write(5, 8), srv.k.send(new MergeShardsCommand({ StreamName: 'rs', ShardToMerge: sid(2), AdjacentShardToMerge: sid(1) }))]);
    await w.write(5, 4);
    let r = await Promise.all([w.write(5, 8), scale('rs', 2)]);
    assert.deepEqual([r[1].CurrentShardCount, r[1].TargetShardCount, r[1].StreamName], [1, 2, 'rs']);
    await w.write(5, 4);
    r = await Promise.all([w.write(5, 8), scale('rs', 4)]);
    assert.deepEqual([r[1].CurrentShardCount, r[1].TargetShardCount], [2, 4]);
    await w.write(5, 4);
    r = await Promise.all([w.write(5, 8), scale('rs', 3)]);
    assert.deepEqual([r[1].CurrentShardCount, r[1].TargetShardCount], [4, 3]);
    await w.write(5, 8);

    const all = await shards('rs');
    assert.deepEqual(
      all.map((s) => [s.ShardId, s.ParentShardId ?? null, s.AdjacentParentShardId ?? null, s.SequenceNumberRange!.EndingSequenceNumber !== undefined]),
      [
        [sid(0), null, null, true],
        [sid(1), sid(0), null, true],
        [sid(2), sid(0), null, true],
        [sid(3), sid(2), sid(1), true],
        [sid(4), sid(3), null, true],
        [sid(5), sid(3), null, true],
        [sid(6), sid(4), null, true],
        [sid(7), sid(4), null, true],
        [sid(8), sid(5), null, true],
        [sid(9), sid(5), null, true],
        [sid(10), sid(6), sid(7), false],
        [sid(11), sid(7), sid(8), false],
        [sid(12), sid(8), sid(9), false],
      ],
    );
    // Split keeps the parent's range in two pieces; merge unions them back.
    assert.deepEqual(range(all[1]), [0n, HALF - 1n]);
    assert.deepEqual(range(all[2]), [HALF, MAX_HASH]);
    assert.deepEqual(range(all[3]), [0n, MAX_HASH]);
    for (const s of all) {
      const { StartingSequenceNumber: start, EndingSequenceNumber: end } = s.SequenceNumberRange!;
      assert.match(start!, /^\d{56}$/);
      if (end !== undefined) assert.ok(BigInt(end) >= BigInt(start!), `${s.ShardId} ends after it starts`);
    }
    const read = await readLineage(srv.k, 'rs');
    checkLineage(all, read);
    w.check(read);
    assert.ok(w.acked.length > 1000);
    // Every shard took some writes (the writers overlapped every reshard).
    for (const id of read.order) assert.ok(read.byShard.get(id)!.length > 0, `${id} has records`);
    // A closed shard's EndingSequenceNumber is at or after its last record.
    for (const s of all.filter((x) => x.SequenceNumberRange!.EndingSequenceNumber)) {
      const recs = read.byShard.get(s.ShardId!)!;
      assert.ok(BigInt(s.SequenceNumberRange!.EndingSequenceNumber!) >= BigInt(recs[recs.length - 1].sequenceNumber));
    }
  });

  test('GetRecords at the end of a closed shard returns ChildShards and no NextShardIterator', async () => {
    await srv.k.send(new CreateStreamCommand({ StreamName: 'ends', ShardCount: 2 }));
    await srv.k.send(new PutRecordCommand({ StreamName: 'ends', PartitionKey: 'a', Data: Buffer.from('before'), ExplicitHashKey: '7' }));
    await srv.k.send(new SplitShardCommand({ StreamName: 'ends', ShardToSplit: sid(0), NewStartingHashKey: '1000' }));
    await srv.k.send(new PutRecordCommand({ StreamName: 'ends', PartitionKey: 'a', Data: Buffer.from('after'), ExplicitHashKey: '7' }));
    const children = [
      { ShardId: sid(2), ParentShards: [sid(0)], HashKeyRange: { StartingHashKey: '0', EndingHashKey: '999' } },
      { ShardId: sid(3), ParentShards: [sid(0)], HashKeyRange: { StartingHashKey: '1000', EndingHashKey: (HALF - 1n).toString() } },
    ];
    const it = (await srv.k.send(new GetShardIteratorCommand({ StreamName: 'ends', ShardId: sid(0), ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
    const r1 = await srv.k.send(new GetRecordsCommand({ ShardIterator: it }));
    // The last record and the end may come in one answer or two; follow until the end.
    const got = r1.Records!.map((x) => Buffer.from(x.Data!).toString());
    let end = r1;
    for (let i = 0; end.NextShardIterator && i < 5; i++) {
      end = await srv.k.send(new GetRecordsCommand({ ShardIterator: end.NextShardIterator }));
      got.push(...end.Records!.map((x) => Buffer.from(x.Data!).toString()));
    }
    assert.deepEqual(got, ['before']);
    assert.equal(end.NextShardIterator, undefined);
    assert.deepEqual(end.ChildShards, children);
    assert.equal(end.MillisBehindLatest, 0);
    // LATEST on a closed shard is its end.
    const latest = (await srv.k.send(new GetShardIteratorCommand({ StreamName: 'ends', ShardId: sid(0), ShardIteratorType: 'LATEST' }))).ShardIterator!;
    const atEnd = await srv.k.send(new GetRecordsCommand({ ShardIterator: latest }));
    assert.deepEqual(atEnd.Records, []);
    assert.equal(atEnd.NextShardIterator, undefined);
    assert.deepEqual(atEnd.ChildShards, children);
    // The child has the new record; the closed parent shows its end, the open sibling none.
    const d = (await srv.k.send(new DescribeStreamCommand({ StreamName: 'ends' }))).StreamDescription!.Shards!;
    assert.ok(d[0].SequenceNumberRange!.EndingSequenceNumber);
    assert.equal(d[1].SequenceNumberRange!.EndingSequenceNumber, undefined);
    assert.equal(d[2].ParentShardId, sid(0));
    const child = (await srv.k.send(new GetShardIteratorCommand({ StreamName: 'ends', ShardId: sid(2), ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
    assert.deepEqual((await srv.k.send(new GetRecordsCommand({ ShardIterator: child }))).Records!.map((x) => Buffer.from(x.Data!).toString()), ['after']);
    // AT_SEQUENCE_NUMBER with the parent's EndingSequenceNumber is also at the end.
    const atSeq = (
      await srv.k.send(
        new GetShardIteratorCommand({
          StreamName: 'ends',
          ShardId: sid(0),
          ShardIteratorType: 'AFTER_SEQUENCE_NUMBER',
          StartingSequenceNumber: d[0].SequenceNumberRange!.EndingSequenceNumber,
        }),
      )
    ).ShardIterator!;
    const r = await srv.k.send(new GetRecordsCommand({ ShardIterator: atSeq }));
    assert.deepEqual(r.Records, []);
    assert.equal(r.NextShardIterator, undefined);
  });

  test('UpdateShardCount from uneven shards keeps a well-formed lineage (a new shard overlapping three old ones)', async () => {
    await srv.k.send(new CreateStreamCommand({ StreamName: 'uneven', ShardCount: 1 }));
    const keys = Array.from({ length: 50 }, (_, i) => `u-${i}`);
    const w = new Writers(srv.k, 'uneven', keys);
    await w.write(5, 4);
    await srv.k.send(new SplitShardCommand({ StreamName: 'uneven', ShardToSplit: sid(0), NewStartingHashKey: '10' }));
    await w.write(5, 4);
    await srv.k.send(new SplitShardCommand({ StreamName: 'uneven', ShardToSplit: sid(2), NewStartingHashKey: '20' }));
    await w.write(5, 4);
    // Open now: [0,9], [10,19], [20,max]. The new lower half [0, 2^127-1] overlaps all three.
    await Promise.all([w.write(5, 8), scale('uneven', 2)]);
    await w.write(5, 4);
    const all = await shards('uneven');
    const open = all.filter((s) => !s.SequenceNumberRange!.EndingSequenceNumber);
    assert.deepEqual(open.map(range), [
      [0n, HALF - 1n],
      [HALF, MAX_HASH],
    ]);
    // The lower half needs an intermediate merge shard (closed at once, empty) to name three parents.
    assert.deepEqual(
      all.map((s) => [s.ShardId, s.ParentShardId ?? null, s.AdjacentParentShardId ?? null, s.SequenceNumberRange!.EndingSequenceNumber !== undefined]),
      [
        [sid(0), null, null, true],
        [sid(1), sid(0), null, true],
        [sid(2), sid(0), null, true],
        [sid(3), sid(2), null, true],
        [sid(4), sid(2), null, true],
        [sid(5), sid(1), sid(3), true],
        [sid(6), sid(5), sid(4), false],
        [sid(7), sid(4), null, false],
      ],
    );
    assert.deepEqual(range(all[5]), [0n, 19n]);
    const read = await readLineage(srv.k, 'uneven');
    assert.deepEqual(read.byShard.get(sid(5)), []);
    assert.deepEqual(read.children.get(sid(5)), [sid(6)]);
    checkLineage(all, read);
    w.check(read);
    // Records with explicit hash keys in the thin shards land in the new lower half now.
    const put = await srv.k.send(new PutRecordCommand({ StreamName: 'uneven', PartitionKey: 'x', Data: Buffer.from('x'), ExplicitHashKey: '15' }));
    assert.equal(put.ShardId, open[0].ShardId);
  });

  test('UpdateShardCount leaves a shard open when its range is already one of the new ones', async () => {
    await srv.k.send(new CreateStreamCommand({ StreamName: 'keep', ShardCount: 2 }));
    const q3 = 3n << 126n;
    await srv.k.send(new SplitShardCommand({ StreamName: 'keep', ShardToSplit: sid(1), NewStartingHashKey: q3.toString() }));
    await srv.k.send(new PutRecordCommand({ StreamName: 'keep', PartitionKey: 'a', Data: Buffer.from('low'), ExplicitHashKey: '1' }));
    const r = await scale('keep', 2);
    assert.deepEqual([r.CurrentShardCount, r.TargetShardCount], [3, 2]);
    const all = await shards('keep');
    assert.deepEqual(
      all.map((s) => [s.ShardId, s.ParentShardId ?? null, s.AdjacentParentShardId ?? null, s.SequenceNumberRange!.EndingSequenceNumber !== undefined]),
      [
        [sid(0), null, null, false],
        [sid(1), null, null, true],
        [sid(2), sid(1), null, true],
        [sid(3), sid(1), null, true],
        [sid(4), sid(2), sid(3), false],
      ],
    );
    assert.deepEqual(range(all[4]), [HALF, MAX_HASH]);
    checkLineage(all, await readLineage(srv.k, 'keep'));
    const put = await srv.k.send(new PutRecordCommand({ StreamName: 'keep', PartitionKey: 'a', Data: Buffer.from('low2'), ExplicitHashKey: '1' }));
    assert.equal(put.ShardId, sid(0));
  });

  test('split and merge argument errors', async () => {
    await srv.k.send(new CreateStreamCommand({ StreamName: 'args', ShardCount: 3 }));
    const s = await shards('args');
    const [s0, s1] = s.map(range);
    const split = (shard: string, key: string) => srv.k.send(new SplitShardCommand({ StreamName: 'args', ShardToSplit: shard, NewStartingHashKey: key }));
    const outside = (key: bigint, shard: number, [a, b]: [bigint, bigint]) =>
      `NewStartingHashKey ${key} used in SplitShard() on shard ${sid(shard)} in stream args under account ${ACCOUNT} ` +
      `is not both greater than one plus the shard's StartingHashKey ${a} and less than the shard's EndingHashKey ${b}.`;
    await assertError(split(sid(0), (s1[0] + 5n).toString()), 'InvalidArgumentException', outside(s1[0] + 5n, 0, s0));
    await assertError(split(sid(1), '5'), 'InvalidArgumentException', outside(5n, 1, s1));
    await assertError(split(sid(0), '0'), 'InvalidArgumentException', outside(0n, 0, s0)); // a child may not be empty
    await assertError(split(sid(0), MAX_HASH.toString() + '0'), 'ValidationException', /newStartingHashKey/);
    await assertError(split(sid(0), '-3'), 'ValidationException', /newStartingHashKey/);
    await assertError(split(sid(9), '5'), 'ResourceNotFoundException', `Could not find shard ${sid(9)} in stream args under account ${ACCOUNT}.`);
    await assertError(split('nonsense!', '5'), 'ValidationException', /shardToSplit/);
    const merge = (a: string, b: string) => srv.k.send(new MergeShardsCommand({ StreamName: 'args', ShardToMerge: a, AdjacentShardToMerge: b }));
    const notAdjacent = (a: string, b: string) =>
      `Shards ${a} and ${b} in stream args under account ${ACCOUNT} are not an adjacent pair of shards eligible for merging`;
    await assertError(merge(sid(0), sid(2)), 'InvalidArgumentException', notAdjacent(sid(0), sid(2)));
    await assertError(merge(sid(2), sid(0)), 'InvalidArgumentException', notAdjacent(sid(2), sid(0)));
    await assertError(merge(sid(1), sid(1)), 'InvalidArgumentException', notAdjacent(sid(1), sid(1)));
    await assertError(merge(sid(1), sid(7)), 'ResourceNotFoundException', `Could not find shard ${sid(7)} in stream args under account ${ACCOUNT}.`);
    // The smallest legal split: the first child holds exactly one hash key.
    await split(sid(0), '1');
    const after = await shards('args');
    assert.deepEqual(range(after[3]), [0n, 0n]);
    assert.deepEqual(range(after[4]), [1n, s0[1]]);
    // Closed shards cannot be split or merged again.
    const closed = `Shard ${sid(0)} in stream args under account ${ACCOUNT} has already been merged or split, and thus is not eligible for merging or splitting.`;
    await assertError(split(sid(0), '5'), 'ResourceInUseException', closed);
    await assertError(merge(sid(0), sid(1)), 'ResourceInUseException', closed);
    // The pieces of a split merge back to the parent's range.
    await merge(sid(4), sid(3));
    const merged = (await shards('args'))[5];
    assert.deepEqual(range(merged), s0);
    assert.deepEqual([merged.ParentShardId, merged.AdjacentParentShardId], [sid(4), sid(3)]);
  });

  test('ON_DEMAND streams cannot be resharded (ValidationException)', async () => {
    await srv.k.send(new CreateStreamCommand({ StreamName: 'od', StreamModeDetails: { StreamMode: 'ON_DEMAND' } }));
    await assertError(srv.k.send(new SplitShardCommand({ StreamName: 'od', ShardToSplit: sid(0), NewStartingHashKey: '5' })), 'ValidationException', /ON_DEMAND/);
    await assertError(srv.k.send(new MergeShardsCommand({ StreamName: 'od', ShardToMerge: sid(0), AdjacentShardToMerge: sid(1) })), 'ValidationException', /ON_DEMAND/);
    await assertError(scale('od', 8), 'ValidationException', /ON_DEMAND/);
    assert.equal((await shards('od')).length, 4);
  });

  test('UpdateShardCount limits: between half and double, and 10 scalings per 24 hours', async () => {
    await srv.k.send(new CreateStreamCommand({ StreamName: 'lim', ShardCount: 3 }));
    await assertError(scale('lim', 7), 'InvalidArgumentException', /from 3 to 7/);
    await assertError(scale('lim', 1), 'InvalidArgumentException', /from 3 to 1/);
    await assertError(scale('lim', 0), 'ValidationException', /targetShardCount/);
    await assertError(
      srv.k.send(new UpdateShardCountCommand({ StreamName: 'lim', TargetShardCount: 4, ScalingType: 'OTHER' as any })),
      'ValidationException',
      /scalingType/,
    );
    const counts = [6, 3, 2, 4, 8, 4, 2, 1, 2, 1];
    let current = 3;
    for (const n of counts) {
      const r = await scale('lim', n);
      assert.deepEqual([r.CurrentShardCount, r.TargetShardCount], [current, n]);
      current = n;
    }
    assert.equal((await shards('lim')).filter((s) => !s.SequenceNumberRange!.EndingSequenceNumber).length, 1);
    await assertError(scale('lim', 2), 'LimitExceededException', `Stream lim under account ${ACCOUNT} has already been scaled 10 times in the last 24 hours.`);
    checkLineage(await shards('lim'));
    // Split and merge are not scalings.
    await srv.k.send(new SplitShardCommand({ StreamName: 'lim', ShardToSplit: (await shards('lim')).at(-1)!.ShardId, NewStartingHashKey: HALF.toString() }));
  });
});

describe('the account shard quota (20,000 open shards) covers resharding too', () => {
  const srv = kinesisServer();

  test('SplitShard and UpdateShardCount past the quota are LimitExceededException; staying within it works', async () => {
    await srv.k.send(new CreateStreamCommand({ StreamName: 'huge', ShardCount: 19_997 }));
    await srv.k.send(new CreateStreamCommand({ StreamName: 'small', ShardCount: 2 }));
    const quota = (current: number, extra: number) =>
      `This request would exceed the shard limit for the account ${ACCOUNT} in us-east-1. Current shard count for the account: ${current}. ` +
      `Limit: 20000. Number of additional shards that would have resulted from this request: ${extra}.`;
    await assertError(
      srv.k.send(new UpdateShardCountCommand({ StreamName: 'small', TargetShardCount: 4, ScalingType: 'UNIFORM_SCALING' })),
      'LimitExceededException',
      quota(19_999, 2),
    );
    await srv.k.send(new SplitShardCommand({ StreamName: 'small', ShardToSplit: sid(0), NewStartingHashKey: '100' })); // 20,000 now
    await assertError(
      srv.k.send(new SplitShardCommand({ StreamName: 'small', ShardToSplit: sid(1), NewStartingHashKey: (HALF + 1n).toString() })),
      'LimitExceededException',
      quota(20_000, 1),
    );
    await assertError(srv.k.send(new CreateStreamCommand({ StreamName: 'one-more', ShardCount: 1 })), 'LimitExceededException', quota(20_000, 1));
    // Scaling down frees shards.
    await srv.k.send(new UpdateShardCountCommand({ StreamName: 'small', TargetShardCount: 2, ScalingType: 'UNIFORM_SCALING' }));
    await srv.k.send(new CreateStreamCommand({ StreamName: 'one-more', ShardCount: 1 }));
  });
});

describe('resharding races and the rolling scaling window (registry level, ManualClock)', () => {
  let dir: string;
  let db: Db;
  let clock: ManualClock;
  let registry: StreamRegistry;
  let data: KinesisData;
  let signer: TokenSigner;
  const open = async () => {
    db = openDb(dir);
    const meta = sqliteMetadata(db);
    registry = await StreamRegistry.open(meta, clock, { dataDir: dir, region: 'us-east-1', accountId: ACCOUNT, transitionMs: 0, fsync: false }, db);
    signer = await TokenSigner.open(meta, 'kinesis-iterators', new SecretBox(dir));
    data = new KinesisData(registry, signer, clock, false);
  };
  const close = async () => {
    await registry.close();
    db.close();
  };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pinstream-reshard-'));
    clock = new ManualClock(Date.UTC(2026, 0, 1));
    await open();
  });
  after(async () => {
    await close();
    await rm(dir, { recursive: true, force: true });
  });
  const halves = (parent: number) => [
    { parent, startHex: toHex(0n), endHex: toHex(HALF - 1n) },
    { parent, startHex: toHex(HALF), endHex: toHex(MAX_HASH) },
  ];

  test('a write routed to a shard whose log is still opening is not lost when the shard closes', async () => {
    const s = await registry.create('race', 1, 'PROVISIONED', {});
    const parent = s.shards[0];
    // The put routes to shard 0 and waits for its log to open; the split closes shard 0 meanwhile.
    const put = data.put(s, [{ data: Buffer.from('in flight'), partitionKey: 'k', hashHex: toHex(5n) }]);
    const split = registry.reshard(s, [parent], halves(0));
    const [res] = await put;
    await split;
    assert.ok('SequenceNumber' in res, 'the put was acknowledged');
    assert.equal(res.ShardId, sid(0));
    assert.equal(parent.endOffset, 1, 'the closed shard ends after the acknowledged record');
    const r = await data.read(s, parent, 0, 10);
    assert.deepEqual(r.records.map((x) => [x.SequenceNumber, x.Data.toString()]), [[res.SequenceNumber, 'in flight']]);
    assert.equal(r.ended, true);
  });

  test('a crash between closing shards and learning their end offsets leaves a readable, ending parent', async () => {
    const s = await registry.create('crashy', 1, 'PROVISIONED', {});
    const [before] = await data.put(s, [{ data: Buffer.from('before'), partitionKey: 'k', hashHex: toHex(5n) }]);
    assert.ok('SequenceNumber' in before);
    const parent = s.shards[0];
    const split = registry.reshard(s, [parent], halves(0));
    // What is on disk at this instant is what a crash now would leave: the split must already be there.
    const saved = (db.prepare('SELECT data FROM kinesis_streams WHERE name = ?').get('crashy') as { data: string }).data;
    await split;
    const [child] = await data.put(s, [{ data: Buffer.from('after'), partitionKey: 'k', hashHex: toHex(5n) }]);
    assert.ok('SequenceNumber' in child);
    assert.equal(child.ShardId, sid(1), 'the new write went to the child');
    const state = JSON.parse(saved);
    assert.equal(state.shards.length, 3, 'the children are persisted together with the closing of the parent');
    assert.ok(state.shards[0].closedMs !== undefined);
    // "Crash": restart from the state as it was saved mid-reshard.
    await close();
    const raw = openDb(dir);
    raw.prepare('UPDATE kinesis_streams SET data = ? WHERE name = ?').run(saved, 'crashy');
    raw.close();
    await open();
    const s2 = registry.get('crashy');
    const p2 = registry.shard(s2, 0)!;
    const r = await data.read(s2, p2, 0, 10);
    assert.deepEqual(r.records.map((x) => x.Data.toString()), ['before']);
    assert.equal(r.ended, true, 'the parent ends after restart, so readers move on to the children');
    assert.deepEqual(data.childShards(s2, p2).map((c) => c.ShardId), [sid(1), sid(2)]);
    const c = await data.read(s2, registry.shard(s2, 1)!, 0, 10);
    assert.deepEqual(c.records.map((x) => x.Data.toString()), ['after']);
  });

  test('retention drops closed shards past the retention period, and touches no shard that never stored a record', async () => {
    const s = await registry.create('aging', 40, 'PROVISIONED', {});
    const dirOf = join(dir, 'kinesis', `aging-${s.createdMs}`);
    const [put] = await data.put(s, [{ data: Buffer.from('old'), partitionKey: 'k', hashHex: toHex(5n) }]);
    assert.ok('SequenceNumber' in put);
    await registry.reshard(s, [s.shards[0]], [
      { parent: 0, startHex: toHex(0n), endHex: toHex(9n) },
      { parent: 0, startHex: toHex(10n), endHex: s.shards[0].endHex },
    ]);
    assert.equal(s.shards[0].endOffset, 1);
    assert.equal(s.shards[1].endOffset, undefined);
    // Closing a shard that never stored anything needs no log.
    await registry.reshard(s, [s.shards[1]], [
      { parent: 1, startHex: s.shards[1].startHex, endHex: toHex(BigInt('0x' + s.shards[1].startHex) + 5n) },
      { parent: 1, startHex: toHex(BigInt('0x' + s.shards[1].startHex) + 6n), endHex: s.shards[1].endHex },
    ]);
    assert.equal(s.shards[1].endOffset, 0);
    await registry.applyRetention();
    assert.deepEqual(await readdir(dirOf), [sid(0)], 'only the shard that stored a record has files');
    assert.equal(s.shards.length, 44);
    clock.advance(24 * 3600_000 - 1);
    await registry.applyRetention();
    assert.equal(s.shards.length, 44, 'closed shards stay for the retention period');
    clock.advance(2);
    await registry.applyRetention();
    assert.deepEqual(
      registry.get('aging').shards.map((x) => x.index).slice(0, 3),
      [2, 3, 4],
    );
    assert.deepEqual(await readdir(dirOf), [], "the expired shard's files are gone");
    // A restart sees the same.
    await close();
    await open();
    assert.equal(registry.get('aging').shards.length, 42);
  });

  test('the 10-per-24-hours scaling limit is a rolling window', async () => {
    const svc = kinesisService({ registry, data, signer: signer, clock });
    await registry.create('window', 1, 'PROVISIONED', {});
    const scale = (n: number) => svc.operations.UpdateShardCount!({ StreamName: 'window', TargetShardCount: n, ScalingType: 'UNIFORM_SCALING' }, {} as any);
    const start = clock.now();
    for (let i = 0; i < 10; i++) {
      await scale(i % 2 === 0 ? 2 : 1);
      clock.advance(3600_000);
    }
    await assert.rejects(scale(2) as Promise<unknown>, (e: any) => e.code === 'LimitExceededException');
    clock.set(start + 24 * 3600_000 - 1);
    await assert.rejects(scale(2) as Promise<unknown>, (e: any) => e.code === 'LimitExceededException');
    clock.set(start + 24 * 3600_000);
    const r = (await scale(2)) as any;
    assert.deepEqual([r.CurrentShardCount, r.TargetShardCount], [1, 2]);
    // The next slot frees an hour later.
    await assert.rejects(scale(1) as Promise<unknown>, (e: any) => e.code === 'LimitExceededException');
    clock.advance(3600_000);
    await scale(1);
  });
});
