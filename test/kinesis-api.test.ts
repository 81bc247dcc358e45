// The embedded Kinesis Data Streams API through the official SDK (@aws-sdk/client-kinesis, whose
// default handler speaks HTTP/2 cleartext), a subset again over HTTP/1.1, a hand-signed CBOR
// client (as the Java SDK/KCL speak it) and the AWS CLI: every operation, limit and error type
// (reference/kinesis-firehose.md §1–2). Time-dependent behaviour runs on servers with a
// ManualClock, so arrival times, expiries and throttling windows are exact.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AddTagsToStreamCommand,
  CreateStreamCommand,
  DecreaseStreamRetentionPeriodCommand,
  DeleteStreamCommand,
  DescribeStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  IncreaseStreamRetentionPeriodCommand,
  KinesisClient,
  ListShardsCommand,
  ListStreamsCommand,
  ListTagsForStreamCommand,
  MergeShardsCommand,
  PutRecordCommand,
  PutRecordsCommand,
  RegisterStreamConsumerCommand,
  RemoveTagsFromStreamCommand,
  SplitShardCommand,
  UpdateShardCountCommand,
  type PutRecordsRequestEntry,
  type Shard,
  type ShardFilterType,
} from '@aws-sdk/client-kinesis';
import { ManualClock } from '../src/clock.js';
import { startTestServer } from './helpers/server.js';
import { aws, awsOk, skipUnlessAws } from './helpers/awscli.js';
import { assertError, kinesisClient, kinesisServer } from './helpers/kinesis.js';
import { cborCall, cborTimestamp, CBOR_CONTENT_TYPE } from './helpers/cbor.js';
import { kinesisPost } from './helpers/signed.js';
import { MAX_NESTING_DEPTH } from '../src/nesting.js';
import { MAX_RETENTION_HOURS, MIN_RETENTION_HOURS } from '../src/kinesis/limits.js';

const ACCOUNT = '000000000000';
const MAX_HASH = (1n << 128n) - 1n;
const HALF = 170141183460469231731687303715884105728n; // 2^127: the 2-shard boundary
const MIB = 1024 * 1024;
const SEQ = /^\d{56}$/;

const arnOf = (name: string) => `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${name}`;
const notFound = (name: string) => `Stream ${name} under account ${ACCOUNT} not found.`;
const sid = (i: number) => 'shardId-' + String(i).padStart(12, '0');
const md5Key = (pk: string) => BigInt('0x' + createHash('md5').update(pk, 'utf8').digest('hex'));
const bytes = (s: string) => new Uint8Array(Buffer.from(s));
const text = (d: Uint8Array | undefined) => Buffer.from(d!).toString('utf8');

/** Even split of the hash key space into n shards, as CreateStream does it. */
function evenRanges(n: number): Array<[bigint, bigint]> {
  const w = (1n << 128n) / BigInt(n);
  return Array.from({ length: n }, (_, i) => [BigInt(i) * w, i === n - 1 ? MAX_HASH : BigInt(i + 1) * w - 1n]);
}

async function create(k: KinesisClient, name: string, shards: number): Promise<void> {
  await k.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
}

async function shardsOf(k: KinesisClient, name: string): Promise<Shard[]> {
  return (await k.send(new ListShardsCommand({ StreamName: name }))).Shards!;
}

async function iterator(k: KinesisClient, name: string, shard: string, type: 'TRIM_HORIZON' | 'LATEST' = 'TRIM_HORIZON'): Promise<string> {
  return (await k.send(new GetShardIteratorCommand({ StreamName: name, ShardId: shard, ShardIteratorType: type }))).ShardIterator!;
}

/** Reads an open shard from the iterator until it is caught up (bounded). */
async function drain(k: KinesisClient, it: string): Promise<Array<{ seq: string; data: string; pk: string; arrival: Date }>> {
  const out: Array<{ seq: string; data: string; pk: string; arrival: Date }> = [];
  for (let calls = 0; calls < 1000; calls++) {
    const r = await k.send(new GetRecordsCommand({ ShardIterator: it }));
    for (const x of r.Records!) out.push({ seq: x.SequenceNumber!, data: text(x.Data), pk: x.PartitionKey!, arrival: x.ApproximateArrivalTimestamp! });
    if (r.Records!.length === 0 || !r.NextShardIterator) return out;
    it = r.NextShardIterator;
  }
  assert.fail('shard never caught up');
}

describe('Kinesis control plane (SDK, HTTP/2)', () => {
  const s = kinesisServer();

  test('CreateStream PROVISIONED: DescribeStream shape and an even hash split', async () => {
    const before = Date.now();
    await s.k.send(new CreateStreamCommand({ StreamName: 'prov3', ShardCount: 3 }));
    const after = Date.now();
    const d = (await s.k.send(new DescribeStreamCommand({ StreamName: 'prov3' }))).StreamDescription!;
    assert.equal(d.StreamName, 'prov3');
    assert.equal(d.StreamARN, arnOf('prov3'));
    assert.equal(d.StreamStatus, 'ACTIVE');
    assert.deepEqual(d.StreamModeDetails, { StreamMode: 'PROVISIONED' });
    assert.equal(d.RetentionPeriodHours, 24);
    assert.equal(d.HasMoreShards, false);
    assert.equal(d.EncryptionType, 'NONE');
    assert.deepEqual(d.EnhancedMonitoring, [{ ShardLevelMetrics: [] }]);
    assert.ok(d.StreamCreationTimestamp instanceof Date);
    assert.ok(d.StreamCreationTimestamp.getTime() >= before && d.StreamCreationTimestamp.getTime() <= after, 'creation time is the call time');
    const ranges = evenRanges(3);
    assert.deepEqual(
      d.Shards!.map((x) => [x.ShardId, x.HashKeyRange!.StartingHashKey, x.HashKeyRange!.EndingHashKey]),
      ranges.map(([a, b], i) => [sid(i), a.toString(), b.toString()]),
    );
    for (const x of d.Shards!) {
      assert.equal(x.ParentShardId, undefined);
      assert.equal(x.AdjacentParentShardId, undefined);
      assert.match(x.SequenceNumberRange!.StartingSequenceNumber!, SEQ);
      assert.equal(x.SequenceNumberRange!.EndingSequenceNumber, undefined);
    }
  });

  test('CreateStream with 2 shards splits at 2^127 = 170141183460469231731687303715884105728', async () => {
    await create(s.k, 'two', 2);
    const shards = (await s.k.send(new DescribeStreamCommand({ StreamName: 'two' }))).StreamDescription!.Shards!;
    assert.deepEqual(
      shards.map((x) => x.HashKeyRange),
      [
        { StartingHashKey: '0', EndingHashKey: '170141183460469231731687303715884105727' },
        { StartingHashKey: '170141183460469231731687303715884105728', EndingHashKey: '340282366920938463463374607431768211455' },
      ],
    );
    assert.equal(HALF.toString(), shards[1].HashKeyRange!.StartingHashKey);
  });

  test('CreateStream ON_DEMAND has 4 shards; ShardCount with ON_DEMAND is InvalidArgumentException', async () => {
    await s.k.send(new CreateStreamCommand({ StreamName: 'od', StreamModeDetails: { StreamMode: 'ON_DEMAND' } }));
    const sum = (await s.k.send(new DescribeStreamSummaryCommand({ StreamName: 'od' }))).StreamDescriptionSummary!;
    assert.deepEqual(sum.StreamModeDetails, { StreamMode: 'ON_DEMAND' });
    assert.equal(sum.OpenShardCount, 4);
    assert.deepEqual(
      (await shardsOf(s.k, 'od')).map((x) => x.HashKeyRange!.StartingHashKey),
      evenRanges(4).map(([a]) => a.toString()),
    );
    await assertError(
      s.k.send(new CreateStreamCommand({ StreamName: 'od2', ShardCount: 2, StreamModeDetails: { StreamMode: 'ON_DEMAND' } })),
      'InvalidArgumentException',
      /ShardCount/,
    );
    await assertError(s.k.send(new DescribeStreamSummaryCommand({ StreamName: 'od2' })), 'ResourceNotFoundException', notFound('od2'));
  });

  test('CreateStream errors: duplicate name, bad names, bad shard counts', async () => {
    await create(s.k, 'dup', 1);
    await assertError(create(s.k, 'dup', 1), 'ResourceInUseException', `Stream dup under account ${ACCOUNT} already exists.`);
    await assertError(create(s.k, 'bad name!', 1), 'ValidationException', /streamName/);
    await assertError(create(s.k, 'x'.repeat(129), 1), 'ValidationException', /streamName/);
    await assertError(create(s.k, '', 1), 'ValidationException');
    await create(s.k, 'y'.repeat(128), 1); // the longest name is fine
    await assertError(create(s.k, 'zero', 0), 'ValidationException', /shardCount.*greater than or equal to 1/);
    await assertError(s.k.send(new CreateStreamCommand({ StreamName: 'nocount' })), 'ValidationException', /shardCount/);
    await assertError(
      s.k.send(new CreateStreamCommand({ StreamName: 'mode', ShardCount: 1, StreamModeDetails: { StreamMode: 'FAST' as any } })),
      'ValidationException',
      /PROVISIONED, ON_DEMAND/,
    );
    await assertError(create(s.k, 'toomany', 20_001), 'LimitExceededException', /shard limit/);
  });

  test('CreateStream with Tags; MaxRecordSizeInKiB and counts in DescribeStreamSummary', async () => {
    await s.k.send(new CreateStreamCommand({ StreamName: 'tagged', ShardCount: 2, Tags: { team: 'a', env: 'dev' } }));
    const tags = await s.k.send(new ListTagsForStreamCommand({ StreamName: 'tagged' }));
    assert.deepEqual(tags.Tags, [
      { Key: 'env', Value: 'dev' },
      { Key: 'team', Value: 'a' },
    ]);
    const sum = (await s.k.send(new DescribeStreamSummaryCommand({ StreamName: 'tagged' }))).StreamDescriptionSummary!;
    assert.equal(sum.StreamName, 'tagged');
    assert.equal(sum.StreamARN, arnOf('tagged'));
    assert.equal(sum.StreamStatus, 'ACTIVE');
    assert.equal(sum.RetentionPeriodHours, 24);
    assert.equal(sum.OpenShardCount, 2);
    assert.equal(sum.ConsumerCount, 0);
    assert.equal(sum.EncryptionType, 'NONE');
    assert.equal(sum.MaxRecordSizeInKiB, 1024);
    assert.ok(sum.StreamCreationTimestamp instanceof Date);
  });

  test('DeleteStream, then every operation on it is ResourceNotFoundException with AWS wording', async () => {
    await create(s.k, 'gone', 1);
    await s.k.send(new DeleteStreamCommand({ StreamName: 'gone' }));
    const msg = notFound('gone');
    await assertError(s.k.send(new DescribeStreamCommand({ StreamName: 'gone' })), 'ResourceNotFoundException', msg);
    await assertError(s.k.send(new DescribeStreamSummaryCommand({ StreamName: 'gone' })), 'ResourceNotFoundException', msg);
    await assertError(s.k.send(new DeleteStreamCommand({ StreamName: 'gone' })), 'ResourceNotFoundException', msg);
    await assertError(
      s.k.send(new PutRecordCommand({ StreamName: 'gone', Data: bytes('x'), PartitionKey: 'k' })),
      'ResourceNotFoundException',
      msg,
    );
    await assertError(s.k.send(new ListShardsCommand({ StreamName: 'gone' })), 'ResourceNotFoundException', msg);
    // GetShardIterator words an unknown stream as the missing shard, as AWS does (kinesalite's recording).
    await assertError(
      s.k.send(new GetShardIteratorCommand({ StreamName: 'gone', ShardId: sid(0), ShardIteratorType: 'LATEST' })),
      'ResourceNotFoundException',
      `Shard ${sid(0)} in stream gone under account ${ACCOUNT} does not exist`,
    );
    const names = (await s.k.send(new ListStreamsCommand({}))).StreamNames!;
    assert.ok(!names.includes('gone'));
    // The name is free again.
    await create(s.k, 'gone', 2);
    assert.equal((await shardsOf(s.k, 'gone')).length, 2);
  });

  test('DescribeStream pages with Limit and ExclusiveStartShardId; at most 100 shards per call', async () => {
    await create(s.k, 'five', 5);
    const page = async (limit: number, start?: string) => {
      const d = (await s.k.send(new DescribeStreamCommand({ StreamName: 'five', Limit: limit, ExclusiveStartShardId: start }))).StreamDescription!;
      return { ids: d.Shards!.map((x) => x.ShardId), more: d.HasMoreShards };
    };
    assert.deepEqual(await page(2), { ids: [sid(0), sid(1)], more: true });
    assert.deepEqual(await page(2, sid(1)), { ids: [sid(2), sid(3)], more: true });
    assert.deepEqual(await page(2, sid(3)), { ids: [sid(4)], more: false });
    assert.deepEqual(await page(10, sid(4)), { ids: [], more: false });
    await assertError(s.k.send(new DescribeStreamCommand({ StreamName: 'five', Limit: 0 })), 'ValidationException', /limit/);
    await assertError(s.k.send(new DescribeStreamCommand({ StreamName: 'five', Limit: 10_001 })), 'ValidationException', /limit/);

    await create(s.k, 'wide', 101);
    const all = (await s.k.send(new DescribeStreamCommand({ StreamName: 'wide' }))).StreamDescription!;
    assert.equal(all.Shards!.length, 100);
    assert.equal(all.HasMoreShards, true);
    const big = (await s.k.send(new DescribeStreamCommand({ StreamName: 'wide', Limit: 10_000 }))).StreamDescription!;
    assert.equal(big.Shards!.length, 100);
    const rest = (await s.k.send(new DescribeStreamCommand({ StreamName: 'wide', ExclusiveStartShardId: sid(99) }))).StreamDescription!;
    assert.deepEqual(
      rest.Shards!.map((x) => x.ShardId),
      [sid(100)],
    );
    assert.equal(rest.HasMoreShards, false);
  });

  test('ListShards pages with MaxResults and NextToken; NextToken excludes StreamName', async () => {
    const first = await s.k.send(new ListShardsCommand({ StreamName: 'five', MaxResults: 2 }));
    assert.deepEqual(
      first.Shards!.map((x) => x.ShardId),
      [sid(0), sid(1)],
    );
    assert.ok(first.NextToken);
    const second = await s.k.send(new ListShardsCommand({ NextToken: first.NextToken, MaxResults: 2 }));
    assert.deepEqual(
      second.Shards!.map((x) => x.ShardId),
      [sid(2), sid(3)],
    );
    const third = await s.k.send(new ListShardsCommand({ NextToken: second.NextToken, MaxResults: 2 }));
    assert.deepEqual(
      third.Shards!.map((x) => x.ShardId),
      [sid(4)],
    );
    assert.equal(third.NextToken, undefined);
    // Shards carry the same shape as in DescribeStream.
    const described = (await s.k.send(new DescribeStreamCommand({ StreamName: 'five' }))).StreamDescription!.Shards;
    assert.deepEqual([...first.Shards!, ...second.Shards!, ...third.Shards!], described);

    await assertError(
      s.k.send(new ListShardsCommand({ StreamName: 'five', NextToken: first.NextToken })),
      'InvalidArgumentException',
      'NextToken and StreamName cannot be provided together.',
    );
    await assertError(s.k.send(new ListShardsCommand({})), 'InvalidArgumentException', 'Either NextToken or StreamName should be provided.');
    await assertError(s.k.send(new ListShardsCommand({ NextToken: 'bm90IGEgdG9rZW4=' })), 'InvalidArgumentException', /NextToken/);
    const tampered = Buffer.from(first.NextToken!, 'base64');
    tampered[3] ^= 1;
    await assertError(s.k.send(new ListShardsCommand({ NextToken: tampered.toString('base64') })), 'InvalidArgumentException', /NextToken/);
    const after3 = await s.k.send(new ListShardsCommand({ StreamName: 'five', ExclusiveStartShardId: sid(2) }));
    assert.deepEqual(
      after3.Shards!.map((x) => x.ShardId),
      [sid(3), sid(4)],
    );
    await assertError(s.k.send(new ListShardsCommand({ StreamName: 'five', MaxResults: 0 })), 'ValidationException', /maxResults/);
    await assertError(s.k.send(new ListShardsCommand({ StreamName: 'five', MaxResults: 10_001 })), 'ValidationException', /maxResults/);
  });

  test('Increase/DecreaseStreamRetentionPeriod: 24..8760 hours (InvalidArgumentException outside, AWS texts) and direction errors', async () => {
    await create(s.k, 'ret', 1);
    const hours = async () => (await s.k.send(new DescribeStreamSummaryCommand({ StreamName: 'ret' }))).StreamDescriptionSummary!.RetentionPeriodHours;
    await s.k.send(new IncreaseStreamRetentionPeriodCommand({ StreamName: 'ret', RetentionPeriodHours: 48 }));
    assert.equal(await hours(), 48);
    await s.k.send(new IncreaseStreamRetentionPeriodCommand({ StreamName: 'ret', RetentionPeriodHours: 48 })); // same value is fine
    await s.k.send(new IncreaseStreamRetentionPeriodCommand({ StreamName: 'ret', RetentionPeriodHours: 8760 }));
    assert.equal(await hours(), 8760);
    // The current model gives RetentionPeriodHours no range: the bounds are Kinesis's rule, with its text.
    await assertError(
      s.k.send(new IncreaseStreamRetentionPeriodCommand({ StreamName: 'ret', RetentionPeriodHours: MAX_RETENTION_HOURS + 1 })),
      'InvalidArgumentException',
      `Maximum allowed retention period is ${MAX_RETENTION_HOURS} hours. Requested retention period (${MAX_RETENTION_HOURS + 1} hours) is too long.`,
    );
    await assertError(
      s.k.send(new IncreaseStreamRetentionPeriodCommand({ StreamName: 'ret', RetentionPeriodHours: MIN_RETENTION_HOURS - 1 })),
      'InvalidArgumentException',
      `Minimum allowed retention period is ${MIN_RETENTION_HOURS} hours. Requested retention period (${MIN_RETENTION_HOURS - 1} hours) is too short.`,
    );
    await assertError(
      s.k.send(new IncreaseStreamRetentionPeriodCommand({ StreamName: 'ret', RetentionPeriodHours: 100 })),
      'InvalidArgumentException',
      'Requested retention period (100 hours) for stream ret can not be shorter than existing retention period (8760 hours). Use DecreaseRetentionPeriod API.',
    );
    await s.k.send(new DecreaseStreamRetentionPeriodCommand({ StreamName: 'ret', RetentionPeriodHours: 24 }));
    assert.equal(await hours(), 24);
    await assertError(
      s.k.send(new DecreaseStreamRetentionPeriodCommand({ StreamName: 'ret', RetentionPeriodHours: 23 })),
      'InvalidArgumentException',
      'Minimum allowed retention period is 24 hours. Requested retention period (23 hours) is too short.',
    );
    await assertError(
      s.k.send(new DecreaseStreamRetentionPeriodCommand({ StreamName: 'ret', RetentionPeriodHours: -5 })),
      'InvalidArgumentException',
      'Minimum allowed retention period is 24 hours. Requested retention period (-5 hours) is too short.',
    );
    await assertError(
      s.k.send(new DecreaseStreamRetentionPeriodCommand({ StreamName: 'ret', RetentionPeriodHours: 25 })),
      'InvalidArgumentException',
      'Requested retention period (25 hours) for stream ret can not be longer than existing retention period (24 hours). Use IncreaseRetentionPeriod API.',
    );
    await assertError(
      s.k.send(new IncreaseStreamRetentionPeriodCommand({ StreamName: 'nope', RetentionPeriodHours: 48 })),
      'ResourceNotFoundException',
      notFound('nope'),
    );
  });

  test('tags: add, overwrite, list with Limit/ExclusiveStartTagKey paging, remove, 51st tag is InvalidArgumentException', async () => {
    await create(s.k, 'tags', 1);
    await s.k.send(new AddTagsToStreamCommand({ StreamName: 'tags', Tags: { b: '2', a: '1', c: '3' } }));
    await s.k.send(new AddTagsToStreamCommand({ StreamName: 'tags', Tags: { a: 'one', empty: '' } }));
    const all = await s.k.send(new ListTagsForStreamCommand({ StreamName: 'tags' }));
    assert.deepEqual(all, {
      $metadata: all.$metadata,
      Tags: [
        { Key: 'a', Value: 'one' },
        { Key: 'b', Value: '2' },
        { Key: 'c', Value: '3' },
        { Key: 'empty', Value: '' },
      ],
      HasMoreTags: false,
    });
    const p1 = await s.k.send(new ListTagsForStreamCommand({ StreamName: 'tags', Limit: 2 }));
    assert.deepEqual(p1.Tags!.map((x) => x.Key), ['a', 'b']);
    assert.equal(p1.HasMoreTags, true);
    const p2 = await s.k.send(new ListTagsForStreamCommand({ StreamName: 'tags', Limit: 2, ExclusiveStartTagKey: 'b' }));
    assert.deepEqual(p2.Tags!.map((x) => x.Key), ['c', 'empty']);
    assert.equal(p2.HasMoreTags, false);
    await assertError(s.k.send(new ListTagsForStreamCommand({ StreamName: 'tags', Limit: 51 })), 'ValidationException', /limit/);

    await s.k.send(new RemoveTagsFromStreamCommand({ StreamName: 'tags', TagKeys: ['b', 'unknown'] }));
    assert.deepEqual((await s.k.send(new ListTagsForStreamCommand({ StreamName: 'tags' }))).Tags!.map((x) => x.Key), ['a', 'c', 'empty']);
    await assertError(s.k.send(new RemoveTagsFromStreamCommand({ StreamName: 'tags', TagKeys: [] })), 'ValidationException', /tagKeys/);

    const many: Record<string, string> = {};
    for (let i = 0; i < 47; i++) many[`k${String(i).padStart(2, '0')}`] = String(i);
    await s.k.send(new AddTagsToStreamCommand({ StreamName: 'tags', Tags: many })); // 50 tags now
    await assertError(
      s.k.send(new AddTagsToStreamCommand({ StreamName: 'tags', Tags: { one: 'too many' } })),
      'InvalidArgumentException',
      `Failed to add tags to stream tags under account ${ACCOUNT} because a given stream cannot have more than 50 tags associated with it.`,
    );
    // Overwriting an existing key keeps the count at 50 and is fine.
    await s.k.send(new AddTagsToStreamCommand({ StreamName: 'tags', Tags: { a: 'again' } }));
    const listed: string[] = [];
    let start: string | undefined;
    for (;;) {
      const p = await s.k.send(new ListTagsForStreamCommand({ StreamName: 'tags', Limit: 7, ExclusiveStartTagKey: start }));
      listed.push(...p.Tags!.map((x) => x.Key!));
      if (!p.HasMoreTags) break;
      start = listed[listed.length - 1];
    }
    assert.equal(listed.length, 50);
    assert.deepEqual(listed, [...listed].sort());
    await assertError(s.k.send(new AddTagsToStreamCommand({ StreamName: 'tags', Tags: {} })), 'ValidationException', /tags/);
    await assertError(
      s.k.send(new AddTagsToStreamCommand({ StreamName: 'tags', Tags: { ['k'.repeat(129)]: 'v' } })),
      'ValidationException',
      /128/,
    );
    await assertError(s.k.send(new AddTagsToStreamCommand({ StreamName: 'tags', Tags: { v: 'v'.repeat(257) } })), 'ValidationException', /256/);
  });
});

describe('ListStreams (own server, so the set of streams is known)', () => {
  const s = kinesisServer();

  test('lists names and summaries in order, pages by Limit, ExclusiveStartStreamName and NextToken', async () => {
    for (const n of ['s-c', 's-a', 's-e', 's-b', 's-d']) await create(s.k, n, 1);
    await s.k.send(new CreateStreamCommand({ StreamName: 's-f', StreamModeDetails: { StreamMode: 'ON_DEMAND' } }));
    const all = await s.k.send(new ListStreamsCommand({}));
    assert.deepEqual(all.StreamNames, ['s-a', 's-b', 's-c', 's-d', 's-e', 's-f']);
    assert.equal(all.HasMoreStreams, false);
    assert.equal(all.NextToken, undefined);
    assert.deepEqual(
      all.StreamSummaries!.map((x) => [x.StreamName, x.StreamARN, x.StreamStatus, x.StreamModeDetails?.StreamMode]),
      all.StreamNames!.map((n) => [n, arnOf(n), 'ACTIVE', n === 's-f' ? 'ON_DEMAND' : 'PROVISIONED']),
    );
    for (const x of all.StreamSummaries!) assert.ok(x.StreamCreationTimestamp instanceof Date);

    const p1 = await s.k.send(new ListStreamsCommand({ Limit: 2 }));
    assert.deepEqual(p1.StreamNames, ['s-a', 's-b']);
    assert.equal(p1.HasMoreStreams, true);
    assert.ok(p1.NextToken);
    const p2 = await s.k.send(new ListStreamsCommand({ Limit: 2, NextToken: p1.NextToken }));
    assert.deepEqual(p2.StreamNames, ['s-c', 's-d']);
    const p3 = await s.k.send(new ListStreamsCommand({ Limit: 2, NextToken: p2.NextToken }));
    assert.deepEqual(p3.StreamNames, ['s-e', 's-f']);
    assert.equal(p3.HasMoreStreams, false);
    assert.equal(p3.NextToken, undefined);

    const after = await s.k.send(new ListStreamsCommand({ ExclusiveStartStreamName: 's-c' }));
    assert.deepEqual(after.StreamNames, ['s-d', 's-e', 's-f']);
    const limited = await s.k.send(new ListStreamsCommand({ ExclusiveStartStreamName: 's-a', Limit: 1 }));
    assert.deepEqual(limited.StreamNames, ['s-b']);
    assert.equal(limited.HasMoreStreams, true);
    await assertError(s.k.send(new ListStreamsCommand({ NextToken: 'garbage' })), 'InvalidArgumentException', /NextToken/);
    await assertError(s.k.send(new ListStreamsCommand({ Limit: 0 })), 'ValidationException', /limit/);
  });

  test('at most 100 streams per call', async () => {
    const have = (await s.k.send(new ListStreamsCommand({}))).StreamNames!.length;
    for (let i = 0; i < 101 - have; i++) await create(s.k, `bulk-${String(i).padStart(3, '0')}`, 1);
    const page = await s.k.send(new ListStreamsCommand({ Limit: 10_000 }));
    assert.equal(page.StreamNames!.length, 100);
    assert.equal(page.HasMoreStreams, true);
    const rest = await s.k.send(new ListStreamsCommand({ NextToken: page.NextToken }));
    assert.equal(rest.StreamNames!.length, 1);
    assert.equal(rest.HasMoreStreams, false);
  });
});

describe('Kinesis data plane (SDK, HTTP/2)', () => {
  const s = kinesisServer();

  test('PutRecords answers per record in request order; routing by ExplicitHashKey', async () => {
    await create(s.k, 'order', 2);
    const keys = ['0', HALF.toString(), '1', MAX_HASH.toString(), (HALF - 1n).toString(), (HALF + 1n).toString()];
    const r = await s.k.send(
      new PutRecordsCommand({
        StreamName: 'order',
        Records: keys.map((h, i) => ({ Data: bytes(`r${i}`), PartitionKey: `pk${i}`, ExplicitHashKey: h })),
      }),
    );
    assert.equal(r.FailedRecordCount, 0);
    assert.deepEqual(
      r.Records!.map((x) => x.ShardId),
      [sid(0), sid(1), sid(0), sid(1), sid(0), sid(1)],
    );
    for (const x of r.Records!) {
      assert.match(x.SequenceNumber!, SEQ);
      assert.equal(x.ErrorCode, undefined);
    }
    // Within a shard, request order is sequence order.
    for (const shard of [sid(0), sid(1)]) {
      const seqs = r.Records!.filter((x) => x.ShardId === shard).map((x) => BigInt(x.SequenceNumber!));
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1]);
    }
    const got0 = await drain(s.k, await iterator(s.k, 'order', sid(0)));
    assert.deepEqual(
      got0.map((x) => [x.data, x.pk, x.seq]),
      [0, 2, 4].map((i) => [`r${i}`, `pk${i}`, r.Records![i].SequenceNumber]),
    );
    const got1 = await drain(s.k, await iterator(s.k, 'order', sid(1)));
    assert.deepEqual(
      got1.map((x) => x.data),
      ['r1', 'r3', 'r5'],
    );
  });

  test('ExplicitHashKey at both ends of every shard routes to that shard; out of range is InvalidArgumentException', async () => {
    await create(s.k, 'ehk', 4);
    const ranges = evenRanges(4);
    for (let i = 0; i < 4; i++) {
      for (const h of ranges[i]) {
        const r = await s.k.send(new PutRecordCommand({ StreamName: 'ehk', Data: bytes('x'), PartitionKey: 'same', ExplicitHashKey: h.toString() }));
        assert.equal(r.ShardId, sid(i), `hash key ${h}`);
      }
    }
    const over = (1n << 128n).toString();
    await assertError(
      s.k.send(new PutRecordCommand({ StreamName: 'ehk', Data: bytes('x'), PartitionKey: 'k', ExplicitHashKey: over })),
      'InvalidArgumentException',
      `Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was ${over}`,
    );
    await assertError(
      s.k.send(new PutRecordsCommand({ StreamName: 'ehk', Records: [{ Data: bytes('x'), PartitionKey: 'k', ExplicitHashKey: over }] })),
      'InvalidArgumentException',
      /ExplicitHashKey must be in the range/,
    );
    // Not a decimal key at all: the model's pattern, checked before the range (a ValidationException).
    const pattern = (v: string, member: string) =>
      `1 validation error detected: Value '${v}' at '${member}' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})`;
    for (const bad of ['-1', 'abc', '0001', '1'.repeat(40)]) {
      await assertError(
        s.k.send(new PutRecordCommand({ StreamName: 'ehk', Data: bytes('x'), PartitionKey: 'k', ExplicitHashKey: bad })),
        'ValidationException',
        pattern(bad, 'explicitHashKey'),
      );
    }
    await assertError(
      s.k.send(new PutRecordsCommand({ StreamName: 'ehk', Records: [{ Data: bytes('x'), PartitionKey: 'k' }, { Data: bytes('x'), PartitionKey: 'k', ExplicitHashKey: '-1' }] })),
      'ValidationException',
      pattern('-1', 'records.2.member.explicitHashKey'),
    );
  });

  test('partition keys route by MD5: the shard that took each record owns md5(key)', async () => {
    const shards = await shardsOf(s.k, 'ehk');
    const owner = (h: bigint) =>
      shards.find((x) => BigInt(x.HashKeyRange!.StartingHashKey!) <= h && h <= BigInt(x.HashKeyRange!.EndingHashKey!))!.ShardId;
    const keys = Array.from({ length: 60 }, (_, i) => `user-${i}-ключ-🔑`);
    const r = await s.k.send(new PutRecordsCommand({ StreamName: 'ehk', Records: keys.map((pk) => ({ Data: bytes(pk), PartitionKey: pk })) }));
    const used = new Set<string>();
    keys.forEach((pk, i) => {
      assert.equal(r.Records![i].ShardId, owner(md5Key(pk)), pk);
      used.add(r.Records![i].ShardId!);
    });
    assert.equal(used.size, 4, 'sixty keys reach all four shards');
    for (const pk of keys.slice(0, 5)) {
      const one = await s.k.send(new PutRecordCommand({ StreamName: 'ehk', Data: bytes(pk), PartitionKey: pk }));
      assert.equal(one.ShardId, owner(md5Key(pk)));
    }
  });

  test('sequence numbers are 56 digits and strictly increasing per shard', async () => {
    await create(s.k, 'seq', 3);
    const starts = new Map((await shardsOf(s.k, 'seq')).map((x) => [x.ShardId!, BigInt(x.SequenceNumberRange!.StartingSequenceNumber!)]));
    const last = new Map(starts);
    const acked = new Map<string, string[]>();
    const ack = (x: { ShardId?: string; SequenceNumber?: string }) => {
      assert.match(x.SequenceNumber!, SEQ);
      const n = BigInt(x.SequenceNumber!);
      assert.ok(n > last.get(x.ShardId!)!, `${x.ShardId}: ${n} after ${last.get(x.ShardId!)}`);
      last.set(x.ShardId!, n);
      acked.set(x.ShardId!, [...(acked.get(x.ShardId!) ?? []), x.SequenceNumber!]);
    };
    // One request at a time: every acknowledgement is above all earlier ones of its shard.
    for (let round = 0; round < 6; round++) {
      const batch = Array.from({ length: 40 }, (_, i) => ({ Data: bytes(`${round}/${i}`), PartitionKey: `k${i % 13}` }));
      (await s.k.send(new PutRecordsCommand({ StreamName: 'seq', Records: batch }))).Records!.forEach(ack);
      ack(await s.k.send(new PutRecordCommand({ StreamName: 'seq', Data: bytes('single'), PartitionKey: `single${round}` })));
    }
    // Concurrent requests: each batch is increasing in request order; reads return every one, increasing.
    const concurrent = await Promise.all(
      Array.from({ length: 5 }, (_, c) =>
        s.k.send(new PutRecordsCommand({ StreamName: 'seq', Records: Array.from({ length: 30 }, (_, i) => ({ Data: bytes(`c${c}/${i}`), PartitionKey: `k${i}` })) })),
      ),
    );
    for (const r of concurrent) {
      for (const shard of starts.keys()) {
        const seqs = r.Records!.filter((x) => x.ShardId === shard).map((x) => BigInt(x.SequenceNumber!));
        for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1]);
      }
      for (const x of r.Records!) acked.set(x.ShardId!, [...(acked.get(x.ShardId!) ?? []), x.SequenceNumber!]);
    }
    for (const shard of starts.keys()) {
      const got = (await drain(s.k, await iterator(s.k, 'seq', shard))).map((x) => x.seq);
      for (let i = 1; i < got.length; i++) assert.ok(BigInt(got[i]) > BigInt(got[i - 1]), `${shard} read order`);
      assert.deepEqual(got, [...acked.get(shard)!].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)));
      assert.ok(BigInt(got[0]) > starts.get(shard)!, 'after the StartingSequenceNumber');
    }
  });

  test('record size: 1 MiB of data + partition key is accepted, 1 byte more is ValidationException', async () => {
    await create(s.k, 'big', 1);
    const pk = 'key';
    const data = Buffer.alloc(MIB - pk.length);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + 7) & 0xff;
    const ok = await s.k.send(new PutRecordCommand({ StreamName: 'big', Data: data, PartitionKey: pk }));
    const e = await assertError(
      s.k.send(new PutRecordCommand({ StreamName: 'big', Data: Buffer.alloc(MIB - pk.length + 1), PartitionKey: pk })),
      'ValidationException',
    );
    assert.match(e.message, /1048576/);
    assert.match(e.message, /data/);
    await assertError(
      s.k.send(new PutRecordsCommand({ StreamName: 'big', Records: [{ Data: Buffer.alloc(MIB), PartitionKey: 'k' }] })),
      'ValidationException',
      /1048576/,
    );
    const r = await s.k.send(new GetRecordsCommand({ ShardIterator: await iterator(s.k, 'big', sid(0)) }));
    assert.equal(r.Records!.length, 1);
    assert.equal(r.Records![0].SequenceNumber, ok.SequenceNumber);
    assert.ok(Buffer.from(r.Records![0].Data!).equals(data), 'the 1 MiB record reads back byte for byte');
  });

  test('PutRecords: 500 records accepted, 501 and 0 are ValidationException; 5 MiB total accepted, 1 byte more is InvalidArgumentException', async () => {
    await create(s.k, 'batch', 2);
    const recs = (n: number): PutRecordsRequestEntry[] => Array.from({ length: n }, (_, i) => ({ Data: bytes(`d${i}`), PartitionKey: `p${i}` }));
    const five = await s.k.send(new PutRecordsCommand({ StreamName: 'batch', Records: recs(500) }));
    assert.equal(five.Records!.length, 500);
    assert.equal(five.FailedRecordCount, 0);
    await assertError(s.k.send(new PutRecordsCommand({ StreamName: 'batch', Records: recs(501) })), 'ValidationException', /less than or equal to 500/);
    await assertError(s.k.send(new PutRecordsCommand({ StreamName: 'batch', Records: [] })), 'ValidationException', /records/);

    // Six records whose data plus one-byte keys add up to exactly 5 MiB.
    const sizes = [873812, 873812, 873812, 873812, 873812, 873814];
    assert.equal(sizes.reduce((a, b) => a + b + 1, 0), 5 * MIB);
    const exact = await s.k.send(
      new PutRecordsCommand({ StreamName: 'batch', Records: sizes.map((n, i) => ({ Data: Buffer.alloc(n, i), PartitionKey: String(i) })) }),
    );
    assert.equal(exact.FailedRecordCount, 0);
    assert.equal(exact.Records!.length, 6);
    const e = await assertError(
      s.k.send(
        new PutRecordsCommand({
          StreamName: 'batch',
          Records: sizes.map((n, i) => ({ Data: Buffer.alloc(i === 0 ? n + 1 : n, i), PartitionKey: String(i) })),
        }),
      ),
      'InvalidArgumentException',
    );
    assert.match(e.message, /5242881/);
    assert.match(e.message, /5242880/);
  });

  test('partition keys: 256 characters accepted, 257 and empty are ValidationException', async () => {
    const ok = await s.k.send(new PutRecordCommand({ StreamName: 'batch', Data: bytes('x'), PartitionKey: 'p'.repeat(256) }));
    assert.match(ok.SequenceNumber!, SEQ);
    await assertError(
      s.k.send(new PutRecordCommand({ StreamName: 'batch', Data: bytes('x'), PartitionKey: 'p'.repeat(257) })),
      'ValidationException',
      /partitionKey.*less than or equal to 256/,
    );
    await assertError(
      s.k.send(new PutRecordsCommand({ StreamName: 'batch', Records: [{ Data: bytes('x'), PartitionKey: 'p'.repeat(257) }] })),
      'ValidationException',
      /partitionKey/,
    );
    await assertError(s.k.send(new PutRecordCommand({ StreamName: 'batch', Data: bytes('x'), PartitionKey: '' })), 'ValidationException', /partitionKey/);
    // An empty blob is a valid record.
    const empty = await s.k.send(new PutRecordCommand({ StreamName: 'batch', Data: new Uint8Array(0), PartitionKey: 'e' }));
    assert.match(empty.SequenceNumber!, SEQ);
  });

  test('GetShardIterator AT_/AFTER_SEQUENCE_NUMBER, TRIM_HORIZON and LATEST position exactly', async () => {
    await create(s.k, 'pos', 2);
    const put = async (d: string) =>
      (await s.k.send(new PutRecordCommand({ StreamName: 'pos', Data: bytes(d), PartitionKey: 'k', ExplicitHashKey: '5' }))).SequenceNumber!;
    const seqs: string[] = [];
    for (let i = 0; i < 5; i++) seqs.push(await put(`r${i}`));
    const from = async (type: 'AT_SEQUENCE_NUMBER' | 'AFTER_SEQUENCE_NUMBER', seq: string) =>
      (
        await drain(
          s.k,
          (await s.k.send(new GetShardIteratorCommand({ StreamName: 'pos', ShardId: sid(0), ShardIteratorType: type, StartingSequenceNumber: seq })))
            .ShardIterator!,
        )
      ).map((x) => x.data);
    assert.deepEqual(await from('AT_SEQUENCE_NUMBER', seqs[2]), ['r2', 'r3', 'r4']);
    assert.deepEqual(await from('AFTER_SEQUENCE_NUMBER', seqs[2]), ['r3', 'r4']);
    assert.deepEqual(await from('AT_SEQUENCE_NUMBER', seqs[0]), ['r0', 'r1', 'r2', 'r3', 'r4']);
    assert.deepEqual(await from('AFTER_SEQUENCE_NUMBER', seqs[4]), []);
    const start = (await shardsOf(s.k, 'pos'))[0].SequenceNumberRange!.StartingSequenceNumber!;
    assert.deepEqual(await from('AT_SEQUENCE_NUMBER', start), ['r0', 'r1', 'r2', 'r3', 'r4']);
    assert.deepEqual(await from('AFTER_SEQUENCE_NUMBER', start), ['r0', 'r1', 'r2', 'r3', 'r4']);
    assert.deepEqual((await drain(s.k, await iterator(s.k, 'pos', sid(0)))).map((x) => x.data), ['r0', 'r1', 'r2', 'r3', 'r4']);

    const latest = await iterator(s.k, 'pos', sid(0), 'LATEST');
    const empty = await s.k.send(new GetRecordsCommand({ ShardIterator: latest }));
    assert.deepEqual(empty.Records, []);
    assert.equal(empty.MillisBehindLatest, 0);
    await put('r5');
    await put('r6');
    assert.deepEqual((await drain(s.k, empty.NextShardIterator!)).map((x) => x.data), ['r5', 'r6']);
    assert.deepEqual((await drain(s.k, latest)).map((x) => x.data), ['r5', 'r6'], 'a LATEST iterator sees only later records');
  });

  test('GetShardIterator argument errors', async () => {
    const seq = (await s.k.send(new PutRecordCommand({ StreamName: 'pos', Data: bytes('z'), PartitionKey: 'k', ExplicitHashKey: '5' }))).SequenceNumber!;
    const mustEither = /^Must either specify \(1\) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or \(2\) TRIM_HORIZON or LATEST and no StartingSequenceNumber\./;
    await assertError(
      s.k.send(new GetShardIteratorCommand({ StreamName: 'pos', ShardId: sid(0), ShardIteratorType: 'AT_SEQUENCE_NUMBER' })),
      'InvalidArgumentException',
      mustEither,
    );
    await assertError(
      s.k.send(new GetShardIteratorCommand({ StreamName: 'pos', ShardId: sid(0), ShardIteratorType: 'AFTER_SEQUENCE_NUMBER' })),
      'InvalidArgumentException',
      mustEither,
    );
    await assertError(
      s.k.send(new GetShardIteratorCommand({ StreamName: 'pos', ShardId: sid(0), ShardIteratorType: 'TRIM_HORIZON', StartingSequenceNumber: seq })),
      'InvalidArgumentException',
      mustEither,
    );
    await assertError(
      s.k.send(new GetShardIteratorCommand({ StreamName: 'pos', ShardId: sid(0), ShardIteratorType: 'LATEST', StartingSequenceNumber: seq })),
      'InvalidArgumentException',
      mustEither,
    );
    await assertError(
      s.k.send(new GetShardIteratorCommand({ StreamName: 'pos', ShardId: sid(0), ShardIteratorType: 'AT_TIMESTAMP' })),
      'InvalidArgumentException',
      'Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.',
    );
    // A sequence number of shard 0 used on shard 1.
    await assertError(
      s.k.send(
        new GetShardIteratorCommand({ StreamName: 'pos', ShardId: sid(1), ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: seq }),
      ),
      'InvalidArgumentException',
      `StartingSequenceNumber ${seq} used in GetShardIterator on shard ${sid(1)} in stream pos under account ${ACCOUNT} is invalid because it did not come from this stream.`,
    );
    const fromPos = (n: string) =>
      s.k.send(new GetShardIteratorCommand({ StreamName: 'pos', ShardId: sid(0), ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: n }));
    const foreign = (n: string) =>
      `StartingSequenceNumber ${n} used in GetShardIterator on shard ${sid(0)} in stream pos under account ${ACCOUNT} is invalid because it did not come from this stream.`;
    await assertError(fromPos('12345'), 'InvalidArgumentException', foreign('12345'));
    // A well-formed number of this shard whose counter the shard has not reached yet.
    const hex = BigInt(seq).toString(16);
    const ahead = BigInt('0x' + hex.slice(0, 11) + (BigInt('0x' + hex.slice(11, 27)) + 1000n).toString(16).padStart(16, '0') + hex.slice(27)).toString();
    await assertError(fromPos(ahead), 'InvalidArgumentException', foreign(ahead));
    for (const bad of ['abc', '-5', '007']) {
      await assertError(fromPos(bad), 'ValidationException', /startingSequenceNumber.*pattern/);
    }
    // Shard ids: malformed is a ValidationException, well-formed but unknown is ResourceNotFoundException.
    await assertError(
      s.k.send(new GetShardIteratorCommand({ StreamName: 'pos', ShardId: 'bad id!', ShardIteratorType: 'LATEST' })),
      'ValidationException',
      /shardId/,
    );
    await assertError(
      s.k.send(new GetShardIteratorCommand({ StreamName: 'pos', ShardId: 'shard_7', ShardIteratorType: 'LATEST' })),
      'ResourceNotFoundException',
      `Could not find shard shard_7 in stream pos under account ${ACCOUNT}.`,
    );
    await assertError(
      s.k.send(new GetShardIteratorCommand({ StreamName: 'pos', ShardId: sid(7), ShardIteratorType: 'LATEST' })),
      'ResourceNotFoundException',
      `Shard ${sid(7)} in stream pos under account ${ACCOUNT} does not exist`,
    );
    await assertError(
      s.k.send(new GetShardIteratorCommand({ StreamName: 'pos', ShardId: sid(0), ShardIteratorType: 'SOMEWHERE' as any })),
      'ValidationException',
      /shardIteratorType/,
    );
    // The short shard id forms kinesalite and AWS tools accept.
    for (const id of ['shardId-0', '0']) {
      const it = (await s.k.send(new GetShardIteratorCommand({ StreamName: 'pos', ShardId: id, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
      assert.equal((await drain(s.k, it))[0].data, 'r0');
    }
  });

  test('GetRecords: Limit, identical bytes, partition keys, NextShardIterator continues', async () => {
    await create(s.k, 'gr', 1);
    const payloads = Array.from({ length: 25 }, (_, i) => {
      const b = Buffer.alloc(64 + i);
      for (let j = 0; j < b.length; j++) b[j] = (i * 7 + j * 13) & 0xff; // every byte value, not UTF-8
      return b;
    });
    const put = await s.k.send(
      new PutRecordsCommand({ StreamName: 'gr', Records: payloads.map((d, i) => ({ Data: d, PartitionKey: `p-${i}` })) }),
    );
    let it = await iterator(s.k, 'gr', sid(0));
    const got: Array<{ seq: string; data: Buffer; pk: string }> = [];
    const sizes: number[] = [];
    for (let calls = 0; calls < 20; calls++) {
      const r = await s.k.send(new GetRecordsCommand({ ShardIterator: it, Limit: 10 }));
      sizes.push(r.Records!.length);
      for (const x of r.Records!) got.push({ seq: x.SequenceNumber!, data: Buffer.from(x.Data!), pk: x.PartitionKey! });
      assert.ok(r.NextShardIterator, 'an open shard always continues');
      assert.equal(r.ChildShards, undefined);
      it = r.NextShardIterator;
      if (r.Records!.length === 0) break;
    }
    assert.deepEqual(sizes, [10, 10, 5, 0]);
    assert.equal(got.length, 25);
    got.forEach((x, i) => {
      assert.ok(x.data.equals(payloads[i]), `record ${i} bytes`);
      assert.equal(x.pk, `p-${i}`);
      assert.equal(x.seq, put.Records![i].SequenceNumber);
    });
    await assertError(s.k.send(new GetRecordsCommand({ ShardIterator: it, Limit: 0 })), 'ValidationException', /limit/);
    await assertError(s.k.send(new GetRecordsCommand({ ShardIterator: it, Limit: 10_001 })), 'ValidationException', /limit/);
    const max = await s.k.send(new GetRecordsCommand({ ShardIterator: await iterator(s.k, 'gr', sid(0)), Limit: 10_000 }));
    assert.equal(max.Records!.length, 25);
  });

  test('GetRecords returns at most 10 MiB per call and continues where it stopped', async () => {
    await create(s.k, 'tenmib', 1);
    for (let i = 0; i < 12; i++) {
      await s.k.send(new PutRecordCommand({ StreamName: 'tenmib', Data: Buffer.alloc(MIB - 1, i), PartitionKey: 'k' }));
    }
    const first = await s.k.send(new GetRecordsCommand({ ShardIterator: await iterator(s.k, 'tenmib', sid(0)) }));
    const n = first.Records!.length;
    assert.ok(n >= 9 && n <= 10, `${n} records of 1 MiB in the first answer`);
    assert.ok(first.Records!.reduce((a, r) => a + r.Data!.length + r.PartitionKey!.length, 0) <= 10 * MIB);
    assert.ok(first.MillisBehindLatest! >= 0);
    const rest = await drain(s.k, first.NextShardIterator!);
    assert.equal(n + rest.length, 12);
    first.Records!.forEach((r, i) => assert.equal(r.Data![0], i));
  });

  test('GetRecords with a forged or tampered iterator is InvalidArgumentException', async () => {
    const it = await iterator(s.k, 'gr', sid(0));
    const raw = Buffer.from(it, 'base64');
    assert.deepEqual([...raw.subarray(0, 8)], [0, 0, 0, 0, 0, 0, 0, 1], 'iterators start like AWS ones');
    const variants: string[] = [];
    for (const pos of [8, 20, 30, raw.length - 1]) {
      const b = Buffer.from(raw);
      b[pos] ^= 0x40;
      variants.push(b.toString('base64'));
    }
    variants.push(raw.subarray(0, raw.length - 1).toString('base64'));
    variants.push(Buffer.concat([raw, Buffer.from([0])]).toString('base64'));
    variants.push('AAAAAAAAAAE' + 'A'.repeat(100));
    variants.push('not base64 at all!');
    variants.push('x');
    for (const v of variants) {
      await assertError(s.k.send(new GetRecordsCommand({ ShardIterator: v })), 'InvalidArgumentException', 'Invalid ShardIterator.');
    }
    // The genuine one still works.
    assert.equal((await s.k.send(new GetRecordsCommand({ ShardIterator: it, Limit: 1 }))).Records!.length, 1);
  });

  test('StreamARN is accepted instead of StreamName everywhere; a mismatching pair is rejected', async () => {
    await create(s.k, 'byarn', 2);
    const StreamARN = arnOf('byarn');
    assert.equal((await s.k.send(new DescribeStreamCommand({ StreamARN }))).StreamDescription!.StreamName, 'byarn');
    assert.equal((await s.k.send(new DescribeStreamSummaryCommand({ StreamARN }))).StreamDescriptionSummary!.StreamARN, StreamARN);
    assert.equal((await s.k.send(new ListShardsCommand({ StreamARN }))).Shards!.length, 2);
    const put = await s.k.send(new PutRecordCommand({ StreamARN, Data: bytes('by-arn'), PartitionKey: 'k', ExplicitHashKey: '0' }));
    assert.equal(put.ShardId, sid(0));
    const puts = await s.k.send(new PutRecordsCommand({ StreamARN, Records: [{ Data: bytes('by-arn-2'), PartitionKey: 'k', ExplicitHashKey: '0' }] }));
    assert.equal(puts.FailedRecordCount, 0);
    const it = (await s.k.send(new GetShardIteratorCommand({ StreamARN, ShardId: sid(0), ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
    const recs = await s.k.send(new GetRecordsCommand({ StreamARN, ShardIterator: it }));
    assert.deepEqual(
      recs.Records!.map((x) => text(x.Data)),
      ['by-arn', 'by-arn-2'],
    );
    await s.k.send(new AddTagsToStreamCommand({ StreamARN, Tags: { a: '1', b: '2' } }));
    await s.k.send(new RemoveTagsFromStreamCommand({ StreamARN, TagKeys: ['b'] }));
    assert.deepEqual((await s.k.send(new ListTagsForStreamCommand({ StreamARN }))).Tags, [{ Key: 'a', Value: '1' }]);
    await s.k.send(new IncreaseStreamRetentionPeriodCommand({ StreamARN, RetentionPeriodHours: 30 }));
    await s.k.send(new DecreaseStreamRetentionPeriodCommand({ StreamARN, RetentionPeriodHours: 25 }));
    assert.equal((await s.k.send(new DescribeStreamSummaryCommand({ StreamARN }))).StreamDescriptionSummary!.RetentionPeriodHours, 25);
    await s.k.send(new SplitShardCommand({ StreamARN, ShardToSplit: sid(0), NewStartingHashKey: (1n << 126n).toString() }));
    await s.k.send(new MergeShardsCommand({ StreamARN, ShardToMerge: sid(2), AdjacentShardToMerge: sid(3) }));
    const upd = await s.k.send(new UpdateShardCountCommand({ StreamARN, TargetShardCount: 3, ScalingType: 'UNIFORM_SCALING' }));
    assert.deepEqual([upd.StreamName, upd.StreamARN, upd.CurrentShardCount, upd.TargetShardCount], ['byarn', StreamARN, 2, 3]);
    // Name and ARN together must agree.
    await s.k.send(new DescribeStreamSummaryCommand({ StreamName: 'byarn', StreamARN }));
    await create(s.k, 'other', 1);
    await assertError(s.k.send(new DescribeStreamSummaryCommand({ StreamName: 'other', StreamARN })), 'ValidationException', /byarn/);
    await assertError(
      s.k.send(new PutRecordCommand({ StreamName: 'other', StreamARN, Data: bytes('x'), PartitionKey: 'k' })),
      'ValidationException',
      /byarn/,
    );
    // ARNs of another account or region name no stream here; a malformed ARN is a validation error.
    await assertError(
      s.k.send(new DescribeStreamSummaryCommand({ StreamARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/byarn' })),
      'ResourceNotFoundException',
    );
    await assertError(
      s.k.send(new DescribeStreamSummaryCommand({ StreamARN: 'arn:aws:kinesis:eu-west-1:000000000000:stream/byarn' })),
      'ResourceNotFoundException',
    );
    await assertError(s.k.send(new DescribeStreamSummaryCommand({ StreamARN: 'arn:aws:s3:::bucket' })), 'ValidationException', /streamARN/);
    await s.k.send(new DeleteStreamCommand({ StreamARN }));
    await assertError(s.k.send(new DescribeStreamSummaryCommand({ StreamARN })), 'ResourceNotFoundException', notFound('byarn'));
  });

  test('an iterator of a deleted and re-created stream is ResourceNotFoundException', async () => {
    await create(s.k, 'phoenix', 1);
    await s.k.send(new PutRecordCommand({ StreamName: 'phoenix', Data: bytes('old'), PartitionKey: 'k' }));
    const old = await iterator(s.k, 'phoenix', sid(0));
    await s.k.send(new DeleteStreamCommand({ StreamName: 'phoenix' }));
    await assertError(s.k.send(new GetRecordsCommand({ ShardIterator: old })), 'ResourceNotFoundException', notFound('phoenix'));
    await create(s.k, 'phoenix', 1);
    await s.k.send(new PutRecordCommand({ StreamName: 'phoenix', Data: bytes('new'), PartitionKey: 'k' }));
    await assertError(s.k.send(new GetRecordsCommand({ ShardIterator: old })), 'ResourceNotFoundException', notFound('phoenix'));
    assert.deepEqual((await drain(s.k, await iterator(s.k, 'phoenix', sid(0)))).map((x) => x.data), ['new'], 'the new stream starts empty');
  });
});

describe('time-dependent behaviour (ManualClock)', () => {
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
  const s = kinesisServer({ clock });
  let firstPut = 0;

  test('ApproximateArrivalTimestamp is the put time; MillisBehindLatest counts from the last record returned', async () => {
    await create(s.k, 'clocked', 1);
    const t0 = clock.now();
    firstPut = t0;
    const seqs: string[] = [];
    for (let i = 0; i < 5; i++) {
      if (i > 0) clock.advance(1000);
      seqs.push((await s.k.send(new PutRecordCommand({ StreamName: 'clocked', Data: bytes(`r${i}`), PartitionKey: 'k' }))).SequenceNumber!);
    }
    clock.set(t0 + 10_000);
    let it = await iterator(s.k, 'clocked', sid(0));
    const r1 = await s.k.send(new GetRecordsCommand({ ShardIterator: it, Limit: 2 }));
    assert.deepEqual(r1.Records!.map((x) => text(x.Data)), ['r0', 'r1']);
    assert.deepEqual(
      r1.Records!.map((x) => x.ApproximateArrivalTimestamp),
      [new Date(t0), new Date(t0 + 1000)],
    );
    assert.equal(r1.MillisBehindLatest, 9000);
    const r2 = await s.k.send(new GetRecordsCommand({ ShardIterator: r1.NextShardIterator, Limit: 2 }));
    assert.deepEqual(r2.Records!.map((x) => x.ApproximateArrivalTimestamp!.getTime() - t0), [2000, 3000]);
    assert.equal(r2.MillisBehindLatest, 7000);
    const r3 = await s.k.send(new GetRecordsCommand({ ShardIterator: r2.NextShardIterator, Limit: 2 }));
    assert.deepEqual(r3.Records!.map((x) => text(x.Data)), ['r4']);
    assert.equal(r3.MillisBehindLatest, 0, 'caught up');
    const r4 = await s.k.send(new GetRecordsCommand({ ShardIterator: r3.NextShardIterator }));
    assert.deepEqual(r4.Records, []);
    assert.equal(r4.MillisBehindLatest, 0);
    it = r4.NextShardIterator!;
    assert.ok(it);
  });

  test('GetShardIterator AT_TIMESTAMP finds the first record at or after the time', async () => {
    const at = async (ms: number) =>
      (
        await drain(
          s.k,
          (await s.k.send(new GetShardIteratorCommand({ StreamName: 'clocked', ShardId: sid(0), ShardIteratorType: 'AT_TIMESTAMP', Timestamp: new Date(ms) })))
            .ShardIterator!,
        )
      ).map((x) => x.data);
    const base = firstPut;
    assert.deepEqual(await at(base + 2000), ['r2', 'r3', 'r4']);
    assert.deepEqual(await at(base + 1999), ['r2', 'r3', 'r4']);
    assert.deepEqual(await at(base + 2001), ['r3', 'r4']);
    assert.deepEqual(await at(base - 3_600_000), ['r0', 'r1', 'r2', 'r3', 'r4'], 'older than every record: TRIM_HORIZON');
    const future = await s.k.send(
      new GetShardIteratorCommand({ StreamName: 'clocked', ShardId: sid(0), ShardIteratorType: 'AT_TIMESTAMP', Timestamp: new Date(clock.now() + 60_000) }),
    );
    await s.k.send(new PutRecordCommand({ StreamName: 'clocked', Data: bytes('r5'), PartitionKey: 'k' }));
    assert.deepEqual((await drain(s.k, future.ShardIterator!)).map((x) => x.data), ['r5'], 'a future time waits at the tip');
  });

  test('an iterator lives 5 minutes: at 300000 ms it works, 1 ms later it is ExpiredIteratorException', async () => {
    const it = await iterator(s.k, 'clocked', sid(0));
    const it2 = await iterator(s.k, 'clocked', sid(0));
    clock.advance(300_000);
    const r = await s.k.send(new GetRecordsCommand({ ShardIterator: it, Limit: 1 }));
    assert.equal(text(r.Records![0].Data), 'r0');
    clock.advance(1);
    await assertError(s.k.send(new GetRecordsCommand({ ShardIterator: it2 })), 'ExpiredIteratorException', /^Iterator expired\./);
    // The NextShardIterator from the last call was issued 1 ms ago and still works.
    assert.equal(text((await s.k.send(new GetRecordsCommand({ ShardIterator: r.NextShardIterator, Limit: 1 }))).Records![0].Data), 'r1');
    clock.set(clock.now() - 300_001); // back, so later requests stay within the SigV4 skew allowance
  });

  test('ListShards NextToken expires after 5 minutes (ExpiredNextTokenException)', async () => {
    await create(s.k, 'tok', 3);
    const first = await s.k.send(new ListShardsCommand({ StreamName: 'tok', MaxResults: 1 }));
    const second = await s.k.send(new ListShardsCommand({ StreamName: 'tok', MaxResults: 1 }));
    clock.advance(300_000);
    assert.deepEqual((await s.k.send(new ListShardsCommand({ NextToken: first.NextToken }))).Shards!.map((x) => x.ShardId), [sid(1), sid(2)]);
    clock.advance(1);
    await assertError(s.k.send(new ListShardsCommand({ NextToken: second.NextToken })), 'ExpiredNextTokenException', /expired/);
    clock.set(clock.now() - 300_001);
  });

  test('an iterator of a stream deleted and re-created in the same millisecond is ResourceNotFoundException', async () => {
    await create(s.k, 'again', 2);
    await s.k.send(new PutRecordCommand({ StreamName: 'again', Data: bytes('old'), PartitionKey: 'k', ExplicitHashKey: '0' }));
    const old = await iterator(s.k, 'again', sid(0));
    const oldCreated = (await s.k.send(new DescribeStreamSummaryCommand({ StreamName: 'again' }))).StreamDescriptionSummary!.StreamCreationTimestamp!;
    await s.k.send(new DeleteStreamCommand({ StreamName: 'again' }));
    await create(s.k, 'again', 2); // the clock has not moved
    const created = (await s.k.send(new DescribeStreamSummaryCommand({ StreamName: 'again' }))).StreamDescriptionSummary!.StreamCreationTimestamp!;
    assert.notEqual(created.getTime(), oldCreated.getTime(), 'each incarnation has its own creation time');
    await s.k.send(new PutRecordCommand({ StreamName: 'again', Data: bytes('new'), PartitionKey: 'k', ExplicitHashKey: '0' }));
    await assertError(s.k.send(new GetRecordsCommand({ ShardIterator: old })), 'ResourceNotFoundException', notFound('again'));
    assert.deepEqual((await drain(s.k, await iterator(s.k, 'again', sid(0)))).map((x) => x.data), ['new']);
  });

  test('a sequence number of another stream (same shard index, other creation second) is refused', async () => {
    await create(s.k, 'sa', 1);
    const seq = (await s.k.send(new PutRecordCommand({ StreamName: 'sa', Data: bytes('a'), PartitionKey: 'k' }))).SequenceNumber!;
    clock.advance(1000);
    await create(s.k, 'sb', 1);
    await s.k.send(new PutRecordCommand({ StreamName: 'sb', Data: bytes('b'), PartitionKey: 'k' }));
    await s.k.send(new PutRecordCommand({ StreamName: 'sb', Data: bytes('c'), PartitionKey: 'k' }));
    await assertError(
      s.k.send(new GetShardIteratorCommand({ StreamName: 'sb', ShardId: sid(0), ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: seq })),
      'InvalidArgumentException',
      /did not come from this stream/,
    );
    const own = await s.k.send(
      new GetShardIteratorCommand({ StreamName: 'sa', ShardId: sid(0), ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: seq }),
    );
    assert.deepEqual((await drain(s.k, own.ShardIterator!)).map((x) => x.data), ['a']);
  });

  test('ListShards ShardFilter: every type, and the filter carried in NextToken', async () => {
    await create(s.k, 'filters', 2);
    const t0 = clock.now();
    clock.advance(1000);
    const t1 = clock.now();
    await s.k.send(new SplitShardCommand({ StreamName: 'filters', ShardToSplit: sid(0), NewStartingHashKey: (1n << 126n).toString() }));
    clock.advance(1000);
    const list = async (Type: ShardFilterType, extra: { ShardId?: string; Timestamp?: Date } = {}) =>
      (await s.k.send(new ListShardsCommand({ StreamName: 'filters', ShardFilter: { Type, ...extra } }))).Shards!.map((x) => Number(x.ShardId!.slice(8)));
    assert.deepEqual((await shardsOf(s.k, 'filters')).map((x) => x.ShardId), [sid(0), sid(1), sid(2), sid(3)]);
    assert.deepEqual(await list('FROM_TRIM_HORIZON'), [0, 1, 2, 3]);
    assert.deepEqual(await list('AFTER_SHARD_ID', { ShardId: sid(1) }), [2, 3]);
    assert.deepEqual(await list('AT_LATEST'), [1, 2, 3]);
    assert.deepEqual(await list('AT_TRIM_HORIZON'), [0, 1]);
    assert.deepEqual(await list('AT_TIMESTAMP', { Timestamp: new Date(t0 + 500) }), [0, 1]);
    assert.deepEqual(await list('AT_TIMESTAMP', { Timestamp: new Date(t1) }), [1, 2, 3]);
    assert.deepEqual(await list('FROM_TIMESTAMP', { Timestamp: new Date(t1) }), [0, 1, 2, 3]);
    assert.deepEqual(await list('FROM_TIMESTAMP', { Timestamp: new Date(t1 + 1) }), [1, 2, 3]);
    await assertError(list('AFTER_SHARD_ID'), 'InvalidArgumentException', /ShardId/);
    await assertError(list('AT_TIMESTAMP'), 'InvalidArgumentException', /Timestamp/);
    await assertError(list('FROM_TIMESTAMP'), 'InvalidArgumentException', /Timestamp/);
    await assertError(list('SIDEWAYS' as ShardFilterType), 'ValidationException', /shardFilter/);
    const p1 = await s.k.send(new ListShardsCommand({ StreamName: 'filters', MaxResults: 2, ShardFilter: { Type: 'AT_LATEST' } }));
    assert.deepEqual(p1.Shards!.map((x) => x.ShardId), [sid(1), sid(2)]);
    const p2 = await s.k.send(new ListShardsCommand({ NextToken: p1.NextToken }));
    assert.deepEqual(p2.Shards!.map((x) => x.ShardId), [sid(3)]);
    assert.equal(p2.NextToken, undefined);
  });
});

describe('a restart on the same data directory', () => {
  test('keeps streams, shard lineage, tags, retention, records, sequence numbering and issued iterators', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-krestart-'));
    try {
      let t = await startTestServer({ dataDir });
      let k = kinesisClient(t.server);
      let it: string;
      let before: Shard[];
      const seqs: string[] = [];
      try {
        await k.send(new CreateStreamCommand({ StreamName: 'kept', ShardCount: 2, Tags: { team: 'x' } }));
        await k.send(new IncreaseStreamRetentionPeriodCommand({ StreamName: 'kept', RetentionPeriodHours: 72 }));
        for (let i = 0; i < 3; i++) seqs.push((await k.send(new PutRecordCommand({ StreamName: 'kept', Data: bytes(`r${i}`), PartitionKey: 'k', ExplicitHashKey: '1' }))).SequenceNumber!);
        await k.send(new SplitShardCommand({ StreamName: 'kept', ShardToSplit: sid(1), NewStartingHashKey: (HALF + 100n).toString() }));
        it = await iterator(k, 'kept', sid(0));
        before = await shardsOf(k, 'kept');
      } finally {
        k.destroy();
        await t.close();
      }
      t = await startTestServer({ dataDir });
      k = kinesisClient(t.server);
      try {
        assert.deepEqual(await shardsOf(k, 'kept'), before);
        const sum = (await k.send(new DescribeStreamSummaryCommand({ StreamName: 'kept' }))).StreamDescriptionSummary!;
        assert.deepEqual([sum.RetentionPeriodHours, sum.OpenShardCount, sum.StreamStatus], [72, 3, 'ACTIVE']);
        assert.deepEqual((await k.send(new ListTagsForStreamCommand({ StreamName: 'kept' }))).Tags, [{ Key: 'team', Value: 'x' }]);
        const r = await k.send(new GetRecordsCommand({ ShardIterator: it }));
        assert.deepEqual(r.Records!.map((x) => [x.SequenceNumber, text(x.Data)]), seqs.map((q, i) => [q, `r${i}`]), 'an iterator issued before the restart still reads');
        const next = (await k.send(new PutRecordCommand({ StreamName: 'kept', Data: bytes('r3'), PartitionKey: 'k', ExplicitHashKey: '1' }))).SequenceNumber!;
        assert.ok(BigInt(next) > BigInt(seqs[2]));
        assert.deepEqual((await drain(k, r.NextShardIterator!)).map((x) => [x.seq, x.data]), [[next, 'r3']]);
        const closed = await k.send(new GetRecordsCommand({ ShardIterator: await iterator(k, 'kept', sid(1)) }));
        assert.equal(closed.NextShardIterator, undefined);
        assert.deepEqual(closed.ChildShards!.map((c) => c.ShardId), [sid(2), sid(3)]);
      } finally {
        k.destroy();
        await t.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('status transitions (kinesisTransitionMs 1000, ManualClock)', () => {
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
  const s = kinesisServer({ clock, config: { kinesisTransitionMs: 1000 } });
  const status = async (name: string) => (await s.k.send(new DescribeStreamSummaryCommand({ StreamName: name }))).StreamDescriptionSummary!.StreamStatus;
  const put = (name: string) => s.k.send(new PutRecordCommand({ StreamName: name, Data: bytes('x'), PartitionKey: 'k' }));

  test('CREATING → ACTIVE: no writes or shards while CREATING', async () => {
    await create(s.k, 'slow', 2);
    assert.equal(await status('slow'), 'CREATING');
    const d = (await s.k.send(new DescribeStreamCommand({ StreamName: 'slow' }))).StreamDescription!;
    assert.equal(d.StreamStatus, 'CREATING');
    assert.deepEqual(d.Shards, []);
    assert.deepEqual(
      (await s.k.send(new ListStreamsCommand({}))).StreamSummaries!.map((x) => [x.StreamName, x.StreamStatus]),
      [['slow', 'CREATING']],
    );
    await assertError(put('slow'), 'ResourceNotFoundException', notFound('slow'));
    await assertError(
      s.k.send(new GetShardIteratorCommand({ StreamName: 'slow', ShardId: sid(0), ShardIteratorType: 'LATEST' })),
      'ResourceNotFoundException',
    );
    await assertError(create(s.k, 'slow', 1), 'ResourceInUseException', /already exists/);
    clock.advance(999);
    assert.equal(await status('slow'), 'CREATING');
    clock.advance(1);
    assert.equal(await status('slow'), 'ACTIVE');
    assert.match((await put('slow')).SequenceNumber!, SEQ);
    assert.equal((await s.k.send(new DescribeStreamCommand({ StreamName: 'slow' }))).StreamDescription!.Shards!.length, 2);
  });

  test('UPDATING → ACTIVE: resharding needs ACTIVE, data keeps flowing while UPDATING', async () => {
    await s.k.send(new SplitShardCommand({ StreamName: 'slow', ShardToSplit: sid(0), NewStartingHashKey: '1000' }));
    assert.equal(await status('slow'), 'UPDATING');
    const during = await s.k.send(new PutRecordCommand({ StreamName: 'slow', Data: bytes('during'), PartitionKey: 'k', ExplicitHashKey: '5' }));
    assert.equal(during.ShardId, sid(2), 'writes go to the new child at once');
    const busy = `Stream slow under account ${ACCOUNT} not ACTIVE, instead in state UPDATING`;
    await assertError(s.k.send(new SplitShardCommand({ StreamName: 'slow', ShardToSplit: sid(1), NewStartingHashKey: (HALF + 1n).toString() })), 'ResourceInUseException', busy);
    await assertError(s.k.send(new MergeShardsCommand({ StreamName: 'slow', ShardToMerge: sid(2), AdjacentShardToMerge: sid(3) })), 'ResourceInUseException', busy);
    await assertError(
      s.k.send(new UpdateShardCountCommand({ StreamName: 'slow', TargetShardCount: 4, ScalingType: 'UNIFORM_SCALING' })),
      'ResourceInUseException',
      busy,
    );
    clock.advance(1000);
    assert.equal(await status('slow'), 'ACTIVE');
    await s.k.send(new MergeShardsCommand({ StreamName: 'slow', ShardToMerge: sid(2), AdjacentShardToMerge: sid(3) }));
    assert.equal(await status('slow'), 'UPDATING');
    clock.advance(1000);
    assert.equal(await status('slow'), 'ACTIVE');
  });

  test('DELETING → gone: the stream is visible as DELETING, then not found, then the name is free', async () => {
    await s.k.send(new DeleteStreamCommand({ StreamName: 'slow' }));
    assert.equal(await status('slow'), 'DELETING');
    await assertError(put('slow'), 'ResourceNotFoundException', notFound('slow'));
    await assertError(create(s.k, 'slow', 1), 'ResourceInUseException', /already exists/);
    clock.advance(1000);
    await assertError(status('slow'), 'ResourceNotFoundException', notFound('slow'));
    assert.deepEqual((await s.k.send(new ListStreamsCommand({}))).StreamNames, []);
    await create(s.k, 'slow', 1);
    assert.equal(await status('slow'), 'CREATING');
    clock.advance(1000);
    assert.equal(await status('slow'), 'ACTIVE');
    const it = await iterator(s.k, 'slow', sid(0));
    assert.deepEqual((await s.k.send(new GetRecordsCommand({ ShardIterator: it }))).Records, [], 'the re-created stream starts empty');
  });
});

describe('per-shard throughput quotas (kinesisShardLimits, ManualClock)', () => {
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000 + 100);
  const s = kinesisServer({ clock, config: { kinesisShardLimits: true } });
  const rec = (i: number, hash: string) => ({ Data: bytes(`r${i}`), PartitionKey: 'k', ExplicitHashKey: hash });
  const rate = (shard: number) => `Rate exceeded for shard ${sid(shard)} in stream lim under account ${ACCOUNT}.`;

  test('1,000 records per second per shard: the 1,001st gets ProvisionedThroughputExceededException in its result entry', async () => {
    await create(s.k, 'lim', 2);
    for (let b = 0; b < 2; b++) {
      const r = await s.k.send(new PutRecordsCommand({ StreamName: 'lim', Records: Array.from({ length: 500 }, (_, i) => rec(b * 500 + i, '0')) }));
      assert.equal(r.FailedRecordCount, 0);
    }
    const mixed = await s.k.send(new PutRecordsCommand({ StreamName: 'lim', Records: [rec(1000, '0'), rec(1001, HALF.toString()), rec(1002, '1')] }));
    assert.equal(mixed.FailedRecordCount, 2);
    assert.deepEqual(mixed.Records![0], { ErrorCode: 'ProvisionedThroughputExceededException', ErrorMessage: rate(0) });
    assert.equal(mixed.Records![1].ShardId, sid(1));
    assert.match(mixed.Records![1].SequenceNumber!, SEQ);
    assert.deepEqual(mixed.Records![2], { ErrorCode: 'ProvisionedThroughputExceededException', ErrorMessage: rate(0) });
    await assertError(
      s.k.send(new PutRecordCommand({ StreamName: 'lim', Data: bytes('x'), PartitionKey: 'k', ExplicitHashKey: '0' })),
      'ProvisionedThroughputExceededException',
      rate(0),
    );
    clock.advance(1000);
    const next = await s.k.send(new PutRecordsCommand({ StreamName: 'lim', Records: [rec(2000, '0'), rec(2001, '0')] }));
    assert.equal(next.FailedRecordCount, 0, 'the next second has room again');
    // Only the admitted records were written, in order.
    const got = await drain(s.k, await iterator(s.k, 'lim', sid(0)));
    assert.equal(got.length, 1002);
    assert.deepEqual(got.slice(998).map((x) => x.data), ['r998', 'r999', 'r2000', 'r2001']);
  });

  test('1 MiB per second per shard', async () => {
    clock.advance(1000);
    const full = Buffer.alloc(MIB - 1);
    await s.k.send(new PutRecordCommand({ StreamName: 'lim', Data: full, PartitionKey: 'k', ExplicitHashKey: HALF.toString() }));
    await assertError(
      s.k.send(new PutRecordCommand({ StreamName: 'lim', Data: bytes(''), PartitionKey: 'k', ExplicitHashKey: HALF.toString() })),
      'ProvisionedThroughputExceededException',
      rate(1),
    );
    // Shard 0 has its own budget.
    await s.k.send(new PutRecordCommand({ StreamName: 'lim', Data: bytes('x'), PartitionKey: 'k', ExplicitHashKey: '0' }));
    clock.advance(1000);
    await s.k.send(new PutRecordCommand({ StreamName: 'lim', Data: bytes(''), PartitionKey: 'k', ExplicitHashKey: HALF.toString() }));
  });

  test('5 GetRecords calls per second per shard', async () => {
    clock.advance(1000);
    const it = await iterator(s.k, 'lim', sid(1), 'LATEST');
    for (let i = 0; i < 5; i++) await s.k.send(new GetRecordsCommand({ ShardIterator: it }));
    await assertError(s.k.send(new GetRecordsCommand({ ShardIterator: it })), 'ProvisionedThroughputExceededException', rate(1));
    // Another shard is not affected.
    await s.k.send(new GetRecordsCommand({ ShardIterator: await iterator(s.k, 'lim', sid(0), 'LATEST') }));
    clock.advance(1000);
    await s.k.send(new GetRecordsCommand({ ShardIterator: it }));
  });
});

describe('HTTP/1.1 client (NodeHttpHandler): the core operations', () => {
  const s = kinesisServer({ http1: true });

  test('create, describe, put, read, list, errors and delete over HTTP/1.1', async () => {
    await s.k.send(new CreateStreamCommand({ StreamName: 'h1', ShardCount: 2 }));
    const d = (await s.k.send(new DescribeStreamCommand({ StreamName: 'h1' }))).StreamDescription!;
    assert.deepEqual(d.Shards!.map((x) => x.HashKeyRange!.StartingHashKey), ['0', HALF.toString()]);
    const one = await s.k.send(new PutRecordCommand({ StreamName: 'h1', Data: bytes('first'), PartitionKey: 'a', ExplicitHashKey: '1' }));
    assert.equal(one.ShardId, sid(0));
    const many = await s.k.send(
      new PutRecordsCommand({
        StreamName: 'h1',
        Records: [
          { Data: bytes('second'), PartitionKey: 'b', ExplicitHashKey: '2' },
          { Data: bytes('other'), PartitionKey: 'c', ExplicitHashKey: HALF.toString() },
        ],
      }),
    );
    assert.deepEqual(many.Records!.map((x) => x.ShardId), [sid(0), sid(1)]);
    const it = (await s.k.send(new GetShardIteratorCommand({ StreamName: 'h1', ShardId: sid(0), ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: one.SequenceNumber })))
      .ShardIterator!;
    const r = await s.k.send(new GetRecordsCommand({ ShardIterator: it }));
    assert.deepEqual(r.Records!.map((x) => [text(x.Data), x.PartitionKey]), [['first', 'a'], ['second', 'b']]);
    assert.equal(r.MillisBehindLatest, 0);
    assert.deepEqual((await s.k.send(new ListShardsCommand({ StreamName: 'h1' }))).Shards!.map((x) => x.ShardId), [sid(0), sid(1)]);
    assert.deepEqual((await s.k.send(new ListStreamsCommand({}))).StreamNames, ['h1']);
    await s.k.send(new AddTagsToStreamCommand({ StreamName: 'h1', Tags: { k: 'v' } }));
    assert.deepEqual((await s.k.send(new ListTagsForStreamCommand({ StreamName: 'h1' }))).Tags, [{ Key: 'k', Value: 'v' }]);
    await s.k.send(new SplitShardCommand({ StreamName: 'h1', ShardToSplit: sid(1), NewStartingHashKey: (HALF + 10n).toString() }));
    assert.equal((await s.k.send(new DescribeStreamSummaryCommand({ StreamName: 'h1' }))).StreamDescriptionSummary!.OpenShardCount, 3);
    await assertError(s.k.send(new GetRecordsCommand({ ShardIterator: 'AAAAAAAAAAEforged' })), 'InvalidArgumentException', 'Invalid ShardIterator.');
    await assertError(
      s.k.send(new PutRecordsCommand({ StreamName: 'h1', Records: Array.from({ length: 501 }, () => ({ Data: bytes('x'), PartitionKey: 'k' })) })),
      'ValidationException',
    );
    await assertError(create(s.k, 'h1', 1), 'ResourceInUseException');
    await s.k.send(new DeleteStreamCommand({ StreamName: 'h1' }));
    await assertError(s.k.send(new DescribeStreamCommand({ StreamName: 'h1' })), 'ResourceNotFoundException', notFound('h1'));
  });
});

describe('CBOR client (application/x-amz-cbor-1.1, as the Java SDK and KCL speak it)', () => {
  const s = kinesisServer();
  const call = (op: string, input: unknown) => cborCall(s.t.server.url, s.t.server.admin, op, input);

  test('CreateStream, PutRecords, GetShardIterator (tag-1 timestamps in seconds or milliseconds), GetRecords with raw bytes', async () => {
    const created = await call('CreateStream', { StreamName: 'cbor', ShardCount: 1 });
    assert.equal(created.status, 200);
    assert.equal(created.contentType, CBOR_CONTENT_TYPE);
    assert.equal(created.raw.length, 0);

    const before = Date.now() - 60_000;
    const payloads = [Buffer.from([0, 255, 1, 254, 0x80, 0xc3]), Buffer.from('plain text'), Buffer.alloc(0)];
    const put = await call('PutRecords', { StreamName: 'cbor', Records: payloads.map((p, i) => ({ Data: p, PartitionKey: `k${i}` })) });
    assert.equal(put.status, 200);
    assert.equal(put.contentType, CBOR_CONTENT_TYPE);
    assert.equal(put.body.FailedRecordCount, 0);
    assert.equal(put.body.Records.length, 3);
    for (const r of put.body.Records) {
      assert.equal(r.ShardId, sid(0));
      assert.match(r.SequenceNumber, SEQ);
    }

    for (const ts of [cborTimestamp(before, 'seconds'), cborTimestamp(before, 'millis')]) {
      const it = await call('GetShardIterator', { StreamName: 'cbor', ShardId: sid(0), ShardIteratorType: 'AT_TIMESTAMP', Timestamp: ts });
      assert.equal(it.status, 200, JSON.stringify(it.body));
      assert.equal(typeof it.body.ShardIterator, 'string');
      const got = await call('GetRecords', { ShardIterator: it.body.ShardIterator });
      assert.equal(got.status, 200);
      assert.equal(got.contentType, CBOR_CONTENT_TYPE);
      assert.equal(got.body.Records.length, 3, `AT_TIMESTAMP a minute ago (tag 1 in ${ts.value > 1e11 ? 'ms' : 's'}) finds every record`);
      got.body.Records.forEach((r: any, i: number) => {
        assert.ok(r.Data instanceof Uint8Array, 'Data is a CBOR byte string, not base64 text');
        assert.ok(Buffer.from(r.Data).equals(payloads[i]));
        assert.equal(r.PartitionKey, `k${i}`);
        assert.equal(r.SequenceNumber, put.body.Records[i].SequenceNumber);
        assert.equal(typeof r.ApproximateArrivalTimestamp, 'number');
      });
      assert.equal(got.body.MillisBehindLatest, 0);
      assert.equal(typeof got.body.NextShardIterator, 'string');
    }
    // A time in the future (in milliseconds, as Java writes it) finds nothing yet.
    const future = await call('GetShardIterator', {
      StreamName: 'cbor',
      ShardId: sid(0),
      ShardIteratorType: 'AT_TIMESTAMP',
      Timestamp: cborTimestamp(Date.now() + 3_600_000, 'millis'),
    });
    assert.deepEqual((await call('GetRecords', { ShardIterator: future.body.ShardIterator })).body.Records, []);

    const single = await call('PutRecord', { StreamName: 'cbor', Data: Buffer.from([1, 2, 3]), PartitionKey: 'p' });
    assert.equal(single.status, 200);
    assert.equal(single.body.ShardId, sid(0));
    const desc = await call('DescribeStreamSummary', { StreamName: 'cbor' });
    assert.equal(desc.body.StreamDescriptionSummary.StreamStatus, 'ACTIVE');
    assert.equal(desc.body.StreamDescriptionSummary.OpenShardCount, 1);
  });

  // The Java SDKs read CBOR timestamps as integer epoch milliseconds: v2 (AwsCborProtocolFactory,
  // UNIX_TIMESTAMP_MILLIS) with Long.parseLong, so a fractional seconds value fails to unmarshal;
  // v1 with getLongValue(), which truncates it to 1970. Encoding timestamps is the protocol
  // layer's job (src/http/awsjson.ts), which sends epoch seconds in both formats today.
  test('timestamps in CBOR answers are integer epoch milliseconds, as the Java SDKs parse them', async () => {
    const before = Date.now();
    await call('PutRecord', { StreamName: 'cbor', Data: Buffer.from('ts'), PartitionKey: 'ts' });
    const after = Date.now();
    const it = await call('GetShardIterator', { StreamName: 'cbor', ShardId: sid(0), ShardIteratorType: 'AT_TIMESTAMP', Timestamp: cborTimestamp(before, 'millis') });
    const got = await call('GetRecords', { ShardIterator: it.body.ShardIterator });
    const ts = got.body.Records.at(-1).ApproximateArrivalTimestamp;
    assert.ok(Number.isInteger(ts), `ApproximateArrivalTimestamp ${ts} is an integer`);
    assert.ok(ts >= before && ts <= after, `ApproximateArrivalTimestamp ${ts} is in milliseconds`);
    const sum = await call('DescribeStreamSummary', { StreamName: 'cbor' });
    assert.ok(Number.isInteger(sum.body.StreamDescriptionSummary.StreamCreationTimestamp));
    assert.ok(sum.body.StreamDescriptionSummary.StreamCreationTimestamp > 1e12);
  });

  test('errors come back as CBOR {__type, message}', async () => {
    const e = await call('DescribeStreamSummary', { StreamName: 'nope' });
    assert.equal(e.status, 400);
    assert.equal(e.contentType, CBOR_CONTENT_TYPE);
    assert.deepEqual(e.body, { __type: 'ResourceNotFoundException', message: notFound('nope') });
    const bad = await call('GetRecords', { ShardIterator: 'AAAAAAAAAAEforged' });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body, { __type: 'InvalidArgumentException', message: 'Invalid ShardIterator.' });
    const big = await call('PutRecord', { StreamName: 'cbor', Data: Buffer.alloc(MIB), PartitionKey: 'k' });
    assert.equal(big.status, 400);
    assert.equal(big.body.__type, 'ValidationException');
  });
});

describe('hostile member values (the fuzzing suite found the first)', () => {
  const s = kinesisServer();
  const json = async (op: string, body: string) => {
    const res = await kinesisPost(s.t.server.url, s.t.server.admin, op, 'application/x-amz-json-1.1', Buffer.from(body));
    return { status: res.status, body: await res.json() };
  };
  const deep = (n: number) => '['.repeat(n) + '1' + ']'.repeat(n);

  test('an object with its own toString, a long or nested list, a 64-bit CBOR integer: SerializationException (Coral texts) or a saturated integer; nesting past the decode limit: SerializationException; never a 500', async () => {
    // Objects and lists where the model has a scalar fail deserialization, before any constraint.
    const own = await json('CreateStream', '{"StreamName":"hostile","ShardCount":{"toString":1,"valueOf":"x"}}');
    assert.equal(own.status, 400);
    assert.deepEqual(own.body, { __type: 'SerializationException', Message: 'Start of structure or map found where not expected.' });

    const limit = await json('ListStreams', `{"Limit":[${'"xxxxxxxx",'.repeat(5_000)}"x"]}`);
    assert.deepEqual(limit.body, { __type: 'SerializationException', Message: 'Start of list found where not expected' });

    const name = await json('CreateStream', `{"StreamName":${deep(MAX_NESTING_DEPTH - 2)},"ShardCount":1}`);
    assert.deepEqual(name.body, { __type: 'SerializationException', Message: 'Start of list found where not expected' });
    // Deeper than any request of the model can be: refused while decoding, before any member is read.
    const deeper = await json('CreateStream', `{"StreamName":${deep(10_000)},"ShardCount":1}`);
    assert.equal(deeper.status, 400);
    assert.equal(deeper.body.__type, 'SerializationException');
    assert.match(deeper.body.Message, /nests objects and arrays more than 32 levels deep/);

    // Coral saturates an integer member at 2^31-1: a stream that large is over the shard limit.
    const big = await cborCall(s.t.server.url, s.t.server.admin, 'CreateStream', { StreamName: 'hostile', ShardCount: 2n ** 64n - 1n });
    assert.equal(big.status, 400);
    assert.equal(big.body.__type, 'LimitExceededException');
    assert.match(big.body.message, /2147483647/);
  });

  test('RemoveTagsFromStream: a tag key that is not a string is a SerializationException, one not of 1 to 128 characters a ValidationException at the list, not a 500', async () => {
    await create(s.k, 'hostile-tags', 1);
    for (const [key, message] of [
      ['{"toString":1}', 'Start of structure or map found where not expected.'],
      [deep(MAX_NESTING_DEPTH - 3), 'Start of list found where not expected'],
    ]) {
      const r = await json('RemoveTagsFromStream', `{"StreamName":"hostile-tags","TagKeys":["a",${key}]}`);
      assert.equal(r.status, 400);
      assert.deepEqual(r.body, { __type: 'SerializationException', Message: message });
    }
    for (const key of ['k'.repeat(129), '']) {
      const r = await json('RemoveTagsFromStream', JSON.stringify({ StreamName: 'hostile-tags', TagKeys: ['a', key] }));
      assert.equal(r.status, 400, `${key.slice(0, 20)}: ${JSON.stringify(r.body).slice(0, 200)}`);
      assert.deepEqual(r.body, {
        __type: 'ValidationException',
        message:
          `1 validation error detected: Value '[a, ${key}]' at 'tagKeys' failed to satisfy constraint: ` +
          'Member must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]',
      });
    }
  });

  test('a consumer named by ConsumerARN with a StreamARN or ConsumerName that is an object: SerializationException, not a 500', async () => {
    await create(s.k, 'hostile-consumers', 1);
    const reg = await s.k.send(new RegisterStreamConsumerCommand({ StreamARN: arnOf('hostile-consumers'), ConsumerName: 'c' }));
    const arn = reg.Consumer!.ConsumerARN!;
    for (const member of ['StreamARN', 'ConsumerName']) {
      const r = await json('DescribeStreamConsumer', JSON.stringify({ ConsumerARN: arn, [member]: { toString: 1 } }));
      assert.equal(r.status, 400, `${member}: ${JSON.stringify(r.body)}`);
      assert.deepEqual(r.body, { __type: 'SerializationException', Message: 'Start of structure or map found where not expected.' });
    }
  });
});

describe('AWS CLI (botocore, JSON 1.1 over HTTP/1.1)', () => {
  const s = kinesisServer();
  const run = (args: string[]) => aws(['kinesis', ...args], { credentials: s.t.server.admin, endpoint: s.t.server.url });
  const ok = async (...args: string[]) => awsOk(await run(args), `aws kinesis ${args.join(' ')}`).json;

  test('create-stream, describe-stream-summary, put-record, get-shard-iterator, get-records, list-shards, delete-stream', async (c) => {
    if (await skipUnlessAws(c)) return;
    const before = Date.now();
    assert.equal(await ok('create-stream', '--stream-name', 'cli', '--shard-count', '2'), undefined);
    const after = Date.now();
    const sum = (await ok('describe-stream-summary', '--stream-name', 'cli')).StreamDescriptionSummary;
    assert.equal(sum.StreamName, 'cli');
    assert.equal(sum.StreamARN, arnOf('cli'));
    assert.equal(sum.StreamStatus, 'ACTIVE');
    assert.equal(sum.OpenShardCount, 2);
    // CLI v1 prints timestamps as the wire sent them: epoch seconds with a millisecond fraction.
    assert.equal(typeof sum.StreamCreationTimestamp, 'number');
    assert.ok(sum.StreamCreationTimestamp * 1000 >= before && sum.StreamCreationTimestamp * 1000 <= after);
    // CLI v1 takes --data as text and base64-encodes it itself.
    const put = await ok('put-record', '--stream-name', 'cli', '--data', 'hello from the cli', '--partition-key', 'pk-1');
    assert.match(put.SequenceNumber, SEQ);
    assert.equal(put.ShardId, (await s.k.send(new PutRecordCommand({ StreamName: 'cli', Data: bytes('same key'), PartitionKey: 'pk-1' }))).ShardId);
    const it = await ok('get-shard-iterator', '--stream-name', 'cli', '--shard-id', put.ShardId, '--shard-iterator-type', 'AT_SEQUENCE_NUMBER', '--starting-sequence-number', put.SequenceNumber);
    const got = await ok('get-records', '--shard-iterator', it.ShardIterator);
    assert.equal(got.Records.length, 2);
    assert.equal(Buffer.from(got.Records[0].Data, 'base64').toString('utf8'), 'hello from the cli');
    assert.equal(Buffer.from(got.Records[1].Data, 'base64').toString('utf8'), 'same key');
    assert.equal(got.Records[0].PartitionKey, 'pk-1');
    assert.equal(got.Records[0].SequenceNumber, put.SequenceNumber);
    assert.equal(typeof got.NextShardIterator, 'string');
    assert.equal(got.MillisBehindLatest, 0);
    const shards = await ok('list-shards', '--stream-name', 'cli');
    assert.deepEqual(shards.Shards.map((x: any) => x.HashKeyRange.StartingHashKey), ['0', HALF.toString()]);
    assert.equal(await ok('delete-stream', '--stream-name', 'cli'), undefined);
    const missing = await run(['describe-stream-summary', '--stream-name', 'cli']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /ResourceNotFoundException/);
    assert.match(missing.stderr, /Stream cli under account 000000000000 not found\./);
  });
});
