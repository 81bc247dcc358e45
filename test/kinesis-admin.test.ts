// The embedded Kinesis operations infrastructure tools call (src/kinesis/admin.ts) through the
// official SDK (@aws-sdk/client-kinesis) and the AWS CLI: tags by ARN on streams and consumers,
// enhanced monitoring (reported by DescribeStream*, counted on /metrics), UpdateStreamMode,
// DescribeLimits, account settings, resource policies (stored, size-limited, and evaluated for
// other IAM users of the account), UpdateMaxRecordSize; and the Kinesis details of issue 13: shard
// id forms, tag characters, SequenceNumberForOrdering. Time-dependent rules run on a ManualClock
// with the SDK's signing clock pinned to it.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AddTagsToStreamCommand,
  CreateStreamCommand,
  DeleteResourcePolicyCommand,
  DescribeAccountSettingsCommand,
  DescribeLimitsCommand,
  DescribeStreamCommand,
  DescribeStreamSummaryCommand,
  DisableEnhancedMonitoringCommand,
  EnableEnhancedMonitoringCommand,
  GetRecordsCommand,
  GetResourcePolicyCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  ListTagsForResourceCommand,
  ListTagsForStreamCommand,
  PutRecordCommand,
  PutResourcePolicyCommand,
  RegisterStreamConsumerCommand,
  RemoveTagsFromStreamCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateAccountSettingsCommand,
  UpdateMaxRecordSizeCommand,
  UpdateStreamModeCommand,
  type MetricsName,
} from '@aws-sdk/client-kinesis';
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { ManualClock } from '../src/clock.js';
import {
  DEFAULT_RECORD_SIZE_KIB,
  MAX_MODE_SWITCHES_PER_DAY,
  MAX_ON_DEMAND_STREAMS,
  MAX_RECORD_SIZE_KIB,
  MAX_RESOURCE_POLICY_BYTES,
  MAX_SHARDS_PER_ACCOUNT,
  MAX_TAGS_PER_STREAM,
  MIN_BILLING_COMMITMENT_MS,
  MIN_RECORD_SIZE_KIB,
  ON_DEMAND_SHARDS,
} from '../src/kinesis/limits.js';
import { MAX_SHARD_INDEX } from '../src/kinesis/keys.js';
import { SHARD_LEVEL_METRICS } from '../src/kinesis/metrics.js';
import { assertError, kinesisClient, kinesisServer } from './helpers/kinesis.js';
import { metricsFetch } from './helpers/process.js';
import { aws, awsOk, skipUnlessAws } from './helpers/awscli.js';

const ACCOUNT = '000000000000';
const KIB = 1024;
const arnOf = (name: string) => `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${name}`;
const sid = (i: number) => 'shardId-' + String(i).padStart(12, '0');
const bytes = (s: string) => new Uint8Array(Buffer.from(s));
const BAD_CHARACTERS = 'Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @ :.';
const PERCENT = (verb: string, what: string) =>
  `Failed to ${verb} ${what} under account ${ACCOUNT} because some tags contained illegal characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@',':'.`;

/** Signs with the server's ManualClock time, so a clock moved by a day still verifies. */
function pinned<C extends KinesisClient | IAMClient>(client: C, clock: ManualClock): C {
  client.middlewareStack.add(
    (next: any) => (args: any) => {
      client.config.systemClockOffset = clock.now() - Date.now();
      return next(args);
    },
    { step: 'build', name: 'pinToManualClock' },
  );
  return client;
}

async function create(k: KinesisClient, name: string, shards = 1): Promise<void> {
  await k.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
}

describe('tags by ARN (TagResource, UntagResource, ListTagsForResource)', () => {
  const s = kinesisServer();

  test('on a stream ARN: shared with the *TagsForStream operations, sorted, removal of unknown keys is fine', async () => {
    await create(s.k, 'tagged');
    await s.k.send(new TagResourceCommand({ ResourceARN: arnOf('tagged'), Tags: { b: '2', a: '1', 'ü0 _./=+-@:': 'ok' } }));
    await s.k.send(new AddTagsToStreamCommand({ StreamName: 'tagged', Tags: { c: '' } }));
    const list = await s.k.send(new ListTagsForResourceCommand({ ResourceARN: arnOf('tagged') }));
    assert.deepEqual(list.Tags, [
      { Key: 'a', Value: '1' },
      { Key: 'b', Value: '2' },
      { Key: 'c', Value: '' },
      { Key: 'ü0 _./=+-@:', Value: 'ok' },
    ]);
    await s.k.send(new UntagResourceCommand({ ResourceARN: arnOf('tagged'), TagKeys: ['a', 'never-there'] }));
    assert.deepEqual((await s.k.send(new ListTagsForStreamCommand({ StreamName: 'tagged' }))).Tags!.map((t) => t.Key), ['b', 'c', 'ü0 _./=+-@:']);
  });

  test('on a consumer ARN: the consumer has its own tags', async () => {
    await create(s.k, 'with-consumer');
    const c = (await s.k.send(new RegisterStreamConsumerCommand({ StreamARN: arnOf('with-consumer'), ConsumerName: 'app' }))).Consumer!;
    await s.k.send(new TagResourceCommand({ ResourceARN: c.ConsumerARN, Tags: { team: 'x' } }));
    assert.deepEqual((await s.k.send(new ListTagsForResourceCommand({ ResourceARN: c.ConsumerARN }))).Tags, [{ Key: 'team', Value: 'x' }]);
    assert.deepEqual((await s.k.send(new ListTagsForResourceCommand({ ResourceARN: arnOf('with-consumer') }))).Tags, []);
    await s.k.send(new UntagResourceCommand({ ResourceARN: c.ConsumerARN, TagKeys: ['team'] }));
    assert.deepEqual((await s.k.send(new ListTagsForResourceCommand({ ResourceARN: c.ConsumerARN }))).Tags, []);
    const gone = `${arnOf('with-consumer')}/consumer/other:1`;
    await assertError(s.k.send(new ListTagsForResourceCommand({ ResourceARN: gone })), 'ResourceNotFoundException', `Consumer ${gone} under account ${ACCOUNT} not found.`);
  });

  test("AWS's characters: tab, newline, comma and semicolon are refused; % has its own sentence; keys to remove are checked too", async () => {
    await create(s.k, 'chars');
    for (const bad of ['a\tb', 'a\nb', 'a,b', 'a;b']) {
      await assertError(s.k.send(new TagResourceCommand({ ResourceARN: arnOf('chars'), Tags: { [bad]: 'v' } })), 'InvalidArgumentException', BAD_CHARACTERS);
      await assertError(s.k.send(new AddTagsToStreamCommand({ StreamName: 'chars', Tags: { k: bad } })), 'InvalidArgumentException', BAD_CHARACTERS);
    }
    await assertError(
      s.k.send(new AddTagsToStreamCommand({ StreamName: 'chars', Tags: { 'a%b': 'v' } })),
      'InvalidArgumentException',
      PERCENT('add tags to', 'stream chars'),
    );
    await assertError(
      s.k.send(new RemoveTagsFromStreamCommand({ StreamName: 'chars', TagKeys: ['a%b'] })),
      'InvalidArgumentException',
      PERCENT('remove tags from', 'stream chars'),
    );
    await assertError(s.k.send(new CreateStreamCommand({ StreamName: 'chars2', ShardCount: 1, Tags: { 'a,b': '1' } })), 'InvalidArgumentException', BAD_CHARACTERS);
    assert.deepEqual((await s.k.send(new ListTagsForResourceCommand({ ResourceARN: arnOf('chars') }))).Tags, []);
  });

  test(`at most ${MAX_TAGS_PER_STREAM} tags per stream: the one over is InvalidArgumentException, overwriting is fine`, async () => {
    await create(s.k, 'full');
    const tags: Record<string, string> = {};
    for (let i = 0; i < MAX_TAGS_PER_STREAM; i++) tags[`k${i}`] = String(i);
    await s.k.send(new TagResourceCommand({ ResourceARN: arnOf('full'), Tags: tags }));
    await assertError(
      s.k.send(new TagResourceCommand({ ResourceARN: arnOf('full'), Tags: { extra: '1' } })),
      'InvalidArgumentException',
      `Failed to add tags to stream full under account ${ACCOUNT} because a given stream cannot have more than ${MAX_TAGS_PER_STREAM} tags associated with it.`,
    );
    await s.k.send(new TagResourceCommand({ ResourceARN: arnOf('full'), Tags: { k0: 'again' } }));
    assert.equal((await s.k.send(new ListTagsForResourceCommand({ ResourceARN: arnOf('full') }))).Tags!.length, MAX_TAGS_PER_STREAM);
  });

  test('unknown streams, foreign accounts and malformed ARNs', async () => {
    await assertError(s.k.send(new ListTagsForResourceCommand({ ResourceARN: arnOf('nope') })), 'ResourceNotFoundException', `Stream nope under account ${ACCOUNT} not found.`);
    await assertError(
      s.k.send(new TagResourceCommand({ ResourceARN: 'arn:aws:kinesis:us-east-1:111111111111:stream/tagged', Tags: { a: 'b' } })),
      'ResourceNotFoundException',
      `Stream tagged under account ${ACCOUNT} not found.`,
    );
    await assertError(s.k.send(new ListTagsForResourceCommand({ ResourceARN: 'tagged' })), 'ValidationException', /resourceARN.*regular expression pattern/);
    await assertError(s.k.send(new TagResourceCommand({ ResourceARN: arnOf('tagged'), Tags: {} })), 'ValidationException', /tags/);
    await assertError(s.k.send(new UntagResourceCommand({ ResourceARN: arnOf('tagged'), TagKeys: [] })), 'ValidationException', /tagKeys/);
  });

  test('CLI: tag-resource, list-tags-for-resource, untag-resource', async (t) => {
    if (await skipUnlessAws(t)) return;
    await create(s.k, 'cli-tags');
    const target = { credentials: s.t.server.admin, endpoint: s.t.server.url };
    awsOk(await aws(['kinesis', 'tag-resource', '--resource-arn', arnOf('cli-tags'), '--tags', 'env=prod,team=data'], target));
    const listed = awsOk(await aws(['kinesis', 'list-tags-for-resource', '--resource-arn', arnOf('cli-tags')], target));
    assert.deepEqual(listed.json.Tags, [
      { Key: 'env', Value: 'prod' },
      { Key: 'team', Value: 'data' },
    ]);
    awsOk(await aws(['kinesis', 'untag-resource', '--resource-arn', arnOf('cli-tags'), '--tag-keys', 'env'], target));
    assert.deepEqual(awsOk(await aws(['kinesis', 'list-tags-for-resource', '--resource-arn', arnOf('cli-tags')], target)).json.Tags, [{ Key: 'team', Value: 'data' }]);
    const bad = await aws(['kinesis', 'tag-resource', '--resource-arn', arnOf('cli-tags'), '--tags', JSON.stringify({ 'a;b': '1' })], target);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /InvalidArgumentException/);
  });
});

describe('enhanced monitoring', () => {
  const s = kinesisServer();

  test('Enable/Disable answer current and desired metrics; DescribeStream* report them; ALL expands; survives in the stream document', async () => {
    await create(s.k, 'mon', 2);
    const on = await s.k.send(new EnableEnhancedMonitoringCommand({ StreamName: 'mon', ShardLevelMetrics: ['OutgoingBytes', 'IncomingBytes'] }));
    assert.deepEqual(on.CurrentShardLevelMetrics, []);
    assert.deepEqual(on.DesiredShardLevelMetrics, ['IncomingBytes', 'OutgoingBytes']);
    assert.equal(on.StreamARN, arnOf('mon'));
    const d = (await s.k.send(new DescribeStreamCommand({ StreamName: 'mon' }))).StreamDescription!;
    assert.deepEqual(d.EnhancedMonitoring, [{ ShardLevelMetrics: ['IncomingBytes', 'OutgoingBytes'] }]);
    const all = await s.k.send(new EnableEnhancedMonitoringCommand({ StreamARN: arnOf('mon'), ShardLevelMetrics: ['ALL'] }));
    assert.deepEqual(all.DesiredShardLevelMetrics, [...SHARD_LEVEL_METRICS]);
    const off = await s.k.send(new DisableEnhancedMonitoringCommand({ StreamName: 'mon', ShardLevelMetrics: ['IncomingBytes'] }));
    assert.deepEqual(off.CurrentShardLevelMetrics, [...SHARD_LEVEL_METRICS]);
    assert.deepEqual(off.DesiredShardLevelMetrics, SHARD_LEVEL_METRICS.filter((m) => m !== 'IncomingBytes'));
    await s.k.send(new DisableEnhancedMonitoringCommand({ StreamName: 'mon', ShardLevelMetrics: ['ALL'] }));
    const sum = (await s.k.send(new DescribeStreamSummaryCommand({ StreamName: 'mon' }))).StreamDescriptionSummary!;
    assert.deepEqual(sum.EnhancedMonitoring, [{ ShardLevelMetrics: [] }]);
  });

  test('bad metric names and lists are ValidationException; unknown streams ResourceNotFoundException', async () => {
    await assertError(s.k.send(new EnableEnhancedMonitoringCommand({ StreamName: 'mon', ShardLevelMetrics: ['Nope' as MetricsName] })), 'ValidationException', /shardLevelMetrics.*enum/);
    await assertError(s.k.send(new EnableEnhancedMonitoringCommand({ StreamName: 'mon', ShardLevelMetrics: [] })), 'ValidationException', /shardLevelMetrics/);
    await assertError(
      s.k.send(new EnableEnhancedMonitoringCommand({ StreamName: 'nope', ShardLevelMetrics: ['ALL'] })),
      'ResourceNotFoundException',
      `Stream nope under account ${ACCOUNT} not found.`,
    );
  });

  test('/metrics carries exactly the enabled metrics of each open shard, counting puts and reads', async () => {
    await create(s.k, 'counted', 1);
    await create(s.k, 'quiet', 1);
    await s.k.send(new EnableEnhancedMonitoringCommand({ StreamName: 'counted', ShardLevelMetrics: ['IncomingRecords', 'IncomingBytes', 'OutgoingRecords'] }));
    for (const data of ['abc', 'defgh']) await s.k.send(new PutRecordCommand({ StreamName: 'counted', Data: bytes(data), PartitionKey: 'pk' }));
    await s.k.send(new PutRecordCommand({ StreamName: 'quiet', Data: bytes('x'), PartitionKey: 'pk' }));
    const it = (await s.k.send(new GetShardIteratorCommand({ StreamName: 'counted', ShardId: sid(0), ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
    await s.k.send(new GetRecordsCommand({ ShardIterator: it }));
    const text = await (await metricsFetch(s.t.server.url)).text();
    const label = `{stream="counted",shard="${sid(0)}"}`;
    assert.match(text, new RegExp(`pinstream_kinesis_shard_incoming_records_total${escape(label)} 2\\n`));
    assert.match(text, new RegExp(`pinstream_kinesis_shard_incoming_bytes_total${escape(label)} ${3 + 5 + 2 * 2}\\n`)); // data plus partition keys
    assert.match(text, new RegExp(`pinstream_kinesis_shard_outgoing_records_total${escape(label)} 2\\n`));
    assert.doesNotMatch(text, /pinstream_kinesis_shard_outgoing_bytes_total/, 'not enabled anywhere');
    assert.doesNotMatch(text, /stream="quiet"/, 'a stream without enhanced monitoring has no series');
  });
});

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('UpdateStreamMode, DescribeLimits, account settings (ManualClock)', () => {
  const clock = new ManualClock(Date.parse('2025-03-01T00:00:00Z'));
  const s = kinesisServer({ clock });
  let k: KinesisClient;
  const mode = async (name: string) => (await k.send(new DescribeStreamSummaryCommand({ StreamName: name }))).StreamDescriptionSummary!.StreamModeDetails!.StreamMode;
  const switchTo = (name: string, m: 'ON_DEMAND' | 'PROVISIONED') => k.send(new UpdateStreamModeCommand({ StreamARN: arnOf(name), StreamModeDetails: { StreamMode: m } }));

  test(`switches keep the shards; the same mode is refused; at most ${MAX_MODE_SWITCHES_PER_DAY} switches per 24 hours`, async () => {
    k = pinned(kinesisClient(s.t.server), clock);
    await create(k, 'modal', 3);
    await switchTo('modal', 'ON_DEMAND');
    assert.equal(await mode('modal'), 'ON_DEMAND');
    assert.equal((await k.send(new ListShardsCommand({ StreamName: 'modal' }))).Shards!.length, 3);
    await assertError(switchTo('modal', 'ON_DEMAND'), 'InvalidArgumentException', `Stream modal under account ${ACCOUNT} is already in ON_DEMAND mode.`);
    clock.advance(3600_000);
    await switchTo('modal', 'PROVISIONED');
    assert.equal(await mode('modal'), 'PROVISIONED');
    await assertError(switchTo('modal', 'ON_DEMAND'), 'LimitExceededException', /at most 2 switches are allowed in 24 hours/);
    clock.advance(23 * 3600_000); // the first switch is now 24 hours old
    await switchTo('modal', 'ON_DEMAND');
    assert.equal(await mode('modal'), 'ON_DEMAND');
    await assertError(k.send(new UpdateStreamModeCommand({ StreamARN: arnOf('nope'), StreamModeDetails: { StreamMode: 'ON_DEMAND' } })), 'ResourceNotFoundException');
    await assertError(k.send(new UpdateStreamModeCommand({ StreamARN: arnOf('modal'), StreamModeDetails: { StreamMode: 'FAST' as any } })), 'ValidationException', /streamMode/);
  });

  test(`DescribeLimits counts open shards and ON_DEMAND streams; the ${MAX_ON_DEMAND_STREAMS + 1}st ON_DEMAND stream is LimitExceededException`, async () => {
    const limits = await k.send(new DescribeLimitsCommand({}));
    assert.equal(limits.ShardLimit, MAX_SHARDS_PER_ACCOUNT);
    assert.equal(limits.OpenShardCount, 3);
    assert.equal(limits.OnDemandStreamCount, 1);
    assert.equal(limits.OnDemandStreamCountLimit, MAX_ON_DEMAND_STREAMS);
    for (let i = 1; i < MAX_ON_DEMAND_STREAMS; i++) await k.send(new CreateStreamCommand({ StreamName: `od${i}`, StreamModeDetails: { StreamMode: 'ON_DEMAND' } }));
    const full = await k.send(new DescribeLimitsCommand({}));
    assert.equal(full.OnDemandStreamCount, MAX_ON_DEMAND_STREAMS);
    assert.equal(full.OpenShardCount, 3 + (MAX_ON_DEMAND_STREAMS - 1) * ON_DEMAND_SHARDS);
    await assertError(k.send(new CreateStreamCommand({ StreamName: 'one-more', StreamModeDetails: { StreamMode: 'ON_DEMAND' } })), 'LimitExceededException', /on-demand stream count limit.*Limit: 50\./);
    await create(k, 'prov');
    await assertError(switchTo('prov', 'ON_DEMAND'), 'LimitExceededException', /on-demand stream count limit/);
  });

  test('CLI: describe-limits', async (t) => {
    if (await skipUnlessAws(t)) return;
    // The CLI signs with the real time; the server's clock is a day and more ahead, so a second server.
    const { startTestServer } = await import('./helpers/server.js');
    const other = await startTestServer();
    try {
      const r = awsOk(await aws(['kinesis', 'describe-limits'], { credentials: other.server.admin, endpoint: other.server.url }));
      assert.deepEqual(r.json, { ShardLimit: MAX_SHARDS_PER_ACCOUNT, OpenShardCount: 0, OnDemandStreamCount: 0, OnDemandStreamCountLimit: MAX_ON_DEMAND_STREAMS });
    } finally {
      await other.close();
    }
  });

  test('minimum throughput billing commitment: enable, an early disable is pending until the earliest end, re-enable cancels it', async () => {
    const status = async () => (await k.send(new DescribeAccountSettingsCommand({}))).MinimumThroughputBillingCommitment!;
    assert.equal((await status()).Status, 'DISABLED');
    const start = clock.now();
    const on = (await k.send(new UpdateAccountSettingsCommand({ MinimumThroughputBillingCommitment: { Status: 'ENABLED' } }))).MinimumThroughputBillingCommitment!;
    assert.equal(on.Status, 'ENABLED');
    assert.equal(on.StartedAt!.getTime(), start);
    assert.equal(on.EarliestAllowedEndAt!.getTime(), start + MIN_BILLING_COMMITMENT_MS);
    clock.advance(3600_000);
    const early = (await k.send(new UpdateAccountSettingsCommand({ MinimumThroughputBillingCommitment: { Status: 'DISABLED' } }))).MinimumThroughputBillingCommitment!;
    assert.equal(early.Status, 'ENABLED_UNTIL_EARLIEST_ALLOWED_END');
    await k.send(new UpdateAccountSettingsCommand({ MinimumThroughputBillingCommitment: { Status: 'ENABLED' } }));
    assert.equal((await status()).Status, 'ENABLED');
    await k.send(new UpdateAccountSettingsCommand({ MinimumThroughputBillingCommitment: { Status: 'DISABLED' } }));
    clock.set(start + MIN_BILLING_COMMITMENT_MS - 1);
    assert.equal((await status()).Status, 'ENABLED_UNTIL_EARLIEST_ALLOWED_END');
    clock.set(start + MIN_BILLING_COMMITMENT_MS);
    const ended = await status();
    assert.equal(ended.Status, 'DISABLED');
    assert.equal(ended.EndedAt!.getTime(), start + MIN_BILLING_COMMITMENT_MS);
    await assertError(k.send(new UpdateAccountSettingsCommand({ MinimumThroughputBillingCommitment: { Status: 'MAYBE' as any } })), 'ValidationException', /status/);
  });
});

describe('resource-based policies', () => {
  const s = kinesisServer();
  let iam: IAMClient;

  async function user(name: string, statements: object[] = []): Promise<KinesisClient> {
    await iam.send(new CreateUserCommand({ UserName: name }));
    if (statements.length > 0) {
      await iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'p', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: statements }) }));
    }
    const key = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
    return kinesisClient({ url: s.t.server.url, admin: { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! } });
  }
  const userArn = (name: string) => `arn:aws:iam::${ACCOUNT}:user/${name}`;
  const policy = (statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements });
  const put = (k: KinesisClient, name: string) => k.send(new PutRecordCommand({ StreamName: name, Data: bytes('x'), PartitionKey: 'k' }));

  test('Put/Get/Delete on a stream; none is "{}"; invalid and oversize documents are refused', async () => {
    iam = new IAMClient({ endpoint: s.t.server.url, region: 'us-east-1', credentials: s.t.server.admin, maxAttempts: 1 });
    await create(s.k, 'shared');
    assert.equal((await s.k.send(new GetResourcePolicyCommand({ ResourceARN: arnOf('shared') }))).Policy, '{}');
    const doc = policy([{ Effect: 'Allow', Principal: { AWS: userArn('writer') }, Action: 'kinesis:PutRecord', Resource: arnOf('shared') }]);
    await s.k.send(new PutResourcePolicyCommand({ ResourceARN: arnOf('shared'), Policy: doc }));
    assert.equal((await s.k.send(new GetResourcePolicyCommand({ ResourceARN: arnOf('shared') }))).Policy, doc);
    await assertError(s.k.send(new PutResourcePolicyCommand({ ResourceARN: arnOf('shared'), Policy: 'not json' })), 'InvalidArgumentException', /Invalid resource policy/);
    await assertError(
      s.k.send(new PutResourcePolicyCommand({ ResourceARN: arnOf('shared'), Policy: policy([{ Effect: 'Allow', Action: 'kinesis:*', Resource: arnOf('shared') }]) })),
      'InvalidArgumentException',
      /needs a Principal/,
    );
    const padded = (n: number) => JSON.stringify({ Version: '2012-10-17', Id: 'x'.repeat(n), Statement: JSON.parse(doc).Statement });
    const base = padded(0).length;
    await s.k.send(new PutResourcePolicyCommand({ ResourceARN: arnOf('shared'), Policy: padded(MAX_RESOURCE_POLICY_BYTES - base) }));
    await assertError(
      s.k.send(new PutResourcePolicyCommand({ ResourceARN: arnOf('shared'), Policy: padded(MAX_RESOURCE_POLICY_BYTES - base + 1) })),
      'LimitExceededException',
      new RegExp(`maximum size of a resource policy is ${MAX_RESOURCE_POLICY_BYTES} bytes`),
    );
    await s.k.send(new PutResourcePolicyCommand({ ResourceARN: arnOf('shared'), Policy: doc }));
    await assertError(s.k.send(new GetResourcePolicyCommand({ ResourceARN: arnOf('nope') })), 'ResourceNotFoundException', `Stream nope under account ${ACCOUNT} not found.`);
  });

  test('a stream policy grants a user of the account with no identity policy, only what and where it names', async () => {
    const writer = await user('writer');
    await put(writer, 'shared');
    await assertError(
      writer.send(new DescribeStreamSummaryCommand({ StreamName: 'shared' })),
      'AccessDeniedException',
      `User: ${userArn('writer')} is not authorized to perform: kinesis:DescribeStreamSummary on resource: ${arnOf('shared')} because no identity-based policy allows the kinesis:DescribeStreamSummary action`,
    );
    await create(s.k, 'private');
    await assertError(put(writer, 'private'), 'AccessDeniedException');
    await s.k.send(new DeleteResourcePolicyCommand({ ResourceARN: arnOf('shared') }));
    await assertError(put(writer, 'shared'), 'AccessDeniedException');
    writer.destroy();
  });

  test('an explicit Deny in the stream policy overrides an identity Allow; naming the account denies everyone in it', async () => {
    const allowAll = [{ Effect: 'Allow', Action: 'kinesis:*', Resource: '*' }];
    const ops = await user('ops', allowAll);
    const other = await user('other', allowAll);
    await create(s.k, 'guarded');
    await put(ops, 'guarded');
    await s.k.send(
      new PutResourcePolicyCommand({
        ResourceARN: arnOf('guarded'),
        Policy: policy([{ Effect: 'Deny', Principal: { AWS: userArn('ops') }, Action: 'kinesis:PutRecord', Resource: arnOf('guarded') }]),
      }),
    );
    await assertError(
      put(ops, 'guarded'),
      'AccessDeniedException',
      `User: ${userArn('ops')} is not authorized to perform: kinesis:PutRecord on resource: ${arnOf('guarded')} with an explicit deny in a resource-based policy`,
    );
    await put(other, 'guarded');
    await s.k.send(
      new PutResourcePolicyCommand({
        ResourceARN: arnOf('guarded'),
        Policy: policy([{ Effect: 'Deny', Principal: { AWS: ACCOUNT }, Action: 'kinesis:PutRecord', Resource: arnOf('guarded') }]),
      }),
    );
    await assertError(put(other, 'guarded'), 'AccessDeniedException', /explicit deny in a resource-based policy/);
    // An account principal in an Allow only delegates to identity policies: it grants nothing itself.
    const nobody = await user('nobody');
    await s.k.send(
      new PutResourcePolicyCommand({
        ResourceARN: arnOf('guarded'),
        Policy: policy([{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kinesis:PutRecord', Resource: arnOf('guarded') }]),
      }),
    );
    await assertError(put(nobody, 'guarded'), 'AccessDeniedException');
    await put(other, 'guarded');
    for (const c of [ops, other, nobody]) c.destroy();
  });

  test('a consumer has its own policy; a stream deleted and re-created has none', async () => {
    await create(s.k, 'fan');
    const c = (await s.k.send(new RegisterStreamConsumerCommand({ StreamARN: arnOf('fan'), ConsumerName: 'reader' }))).Consumer!;
    const doc = policy([{ Effect: 'Allow', Principal: { AWS: userArn('reader') }, Action: 'kinesis:DescribeStreamConsumer', Resource: c.ConsumerARN }]);
    await s.k.send(new PutResourcePolicyCommand({ ResourceARN: c.ConsumerARN, Policy: doc }));
    assert.equal((await s.k.send(new GetResourcePolicyCommand({ ResourceARN: c.ConsumerARN }))).Policy, doc);
    assert.equal((await s.k.send(new GetResourcePolicyCommand({ ResourceARN: arnOf('fan') }))).Policy, '{}');
    await s.k.send(new PutResourcePolicyCommand({ ResourceARN: arnOf('fan'), Policy: doc.replace(c.ConsumerARN!, arnOf('fan')) }));
    const { DeleteStreamCommand } = await import('@aws-sdk/client-kinesis');
    await s.k.send(new DeleteStreamCommand({ StreamName: 'fan', EnforceConsumerDeletion: true }));
    await create(s.k, 'fan');
    assert.equal((await s.k.send(new GetResourcePolicyCommand({ ResourceARN: arnOf('fan') }))).Policy, '{}');
    iam.destroy();
  });
});

describe('UpdateMaxRecordSize and CreateStream MaxRecordSizeInKiB', () => {
  const s = kinesisServer();
  const record = (name: string, size: number) => s.k.send(new PutRecordCommand({ StreamName: name, Data: new Uint8Array(size - 1), PartitionKey: 'k' }));

  test('PutRecord enforces the stream size: the default refuses 1 byte over, raised it takes the new size exactly', async () => {
    await create(s.k, 'big');
    const summary = async () => (await s.k.send(new DescribeStreamSummaryCommand({ StreamName: 'big' }))).StreamDescriptionSummary!.MaxRecordSizeInKiB;
    assert.equal(await summary(), DEFAULT_RECORD_SIZE_KIB);
    await assertError(record('big', DEFAULT_RECORD_SIZE_KIB * KIB + 1), 'ValidationException', new RegExp(`less than or equal to ${DEFAULT_RECORD_SIZE_KIB * KIB}`));
    await s.k.send(new UpdateMaxRecordSizeCommand({ StreamARN: arnOf('big'), MaxRecordSizeInKiB: MAX_RECORD_SIZE_KIB }));
    assert.equal(await summary(), MAX_RECORD_SIZE_KIB);
    const r = await record('big', MAX_RECORD_SIZE_KIB * KIB);
    await assertError(record('big', MAX_RECORD_SIZE_KIB * KIB + 1), 'ValidationException', new RegExp(`less than or equal to ${MAX_RECORD_SIZE_KIB * KIB}`));
    const it = (await s.k.send(new GetShardIteratorCommand({ StreamName: 'big', ShardId: r.ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
    const got = await s.k.send(new GetRecordsCommand({ ShardIterator: it }));
    assert.equal(got.Records![0].Data!.length, MAX_RECORD_SIZE_KIB * KIB - 1);
  });

  test('the range comes from the model; CreateStream takes it too', async () => {
    for (const bad of [MIN_RECORD_SIZE_KIB - 1, MAX_RECORD_SIZE_KIB + 1]) {
      await assertError(s.k.send(new UpdateMaxRecordSizeCommand({ StreamARN: arnOf('big'), MaxRecordSizeInKiB: bad })), 'ValidationException', /maxRecordSizeInKiB/);
      await assertError(s.k.send(new CreateStreamCommand({ StreamName: 'x', ShardCount: 1, MaxRecordSizeInKiB: bad })), 'ValidationException', /maxRecordSizeInKiB/);
    }
    await s.k.send(new CreateStreamCommand({ StreamName: 'mid', ShardCount: 1, MaxRecordSizeInKiB: 2048 }));
    assert.equal((await s.k.send(new DescribeStreamSummaryCommand({ StreamName: 'mid' }))).StreamDescriptionSummary!.MaxRecordSizeInKiB, 2048);
    await record('mid', 2048 * KIB);
    await assertError(record('mid', 2048 * KIB + 1), 'ValidationException');
    await assertError(s.k.send(new UpdateMaxRecordSizeCommand({ StreamARN: arnOf('nope'), MaxRecordSizeInKiB: 2048 })), 'ResourceNotFoundException');
  });
});

describe('Kinesis details: shard id forms, SequenceNumberForOrdering', () => {
  const s = kinesisServer();

  test("AWS's lenient shard ids: any prefix before '-', or digits alone; errors echo the canonical id", async () => {
    await create(s.k, 'ids', 2);
    for (const id of ['shardId-000000000001', 'shardId-1', '1', 'shard-1', 'anything-01', '-1']) {
      const it = (await s.k.send(new GetShardIteratorCommand({ StreamName: 'ids', ShardId: id, ShardIteratorType: 'LATEST' }))).ShardIterator;
      assert.ok(it, id);
    }
    await assertError(
      s.k.send(new GetShardIteratorCommand({ StreamName: 'ids', ShardId: 'shard-5', ShardIteratorType: 'LATEST' })),
      'ResourceNotFoundException',
      `Shard ${sid(5)} in stream ids under account ${ACCOUNT} does not exist`,
    );
    await assertError(
      s.k.send(new GetShardIteratorCommand({ StreamName: 'ids', ShardId: String(MAX_SHARD_INDEX + 1), ShardIteratorType: 'LATEST' })),
      'ResourceNotFoundException',
      `Could not find shard ${MAX_SHARD_INDEX + 1} in stream ids under account ${ACCOUNT}.`,
    );
    await assertError(
      s.k.send(new GetShardIteratorCommand({ StreamName: 'unknown', ShardId: String(MAX_SHARD_INDEX), ShardIteratorType: 'LATEST' })),
      'ResourceNotFoundException',
      `Shard shardId-${MAX_SHARD_INDEX.toString().padStart(12, '0')} in stream unknown under account ${ACCOUNT} does not exist`,
    );
    const ls = await s.k.send(new ListShardsCommand({ StreamName: 'ids', ExclusiveStartShardId: '0' }));
    assert.deepEqual(ls.Shards!.map((x) => x.ShardId), [sid(1)]);
  });

  test('SequenceNumberForOrdering: the pattern is a ValidationException, a number this stream never issued InvalidArgumentException', async () => {
    const first = await s.k.send(new PutRecordCommand({ StreamName: 'ids', Data: bytes('a'), PartitionKey: 'k' }));
    const second = await s.k.send(new PutRecordCommand({ StreamName: 'ids', Data: bytes('b'), PartitionKey: 'k', SequenceNumberForOrdering: first.SequenceNumber }));
    assert.ok(BigInt(second.SequenceNumber!) > BigInt(first.SequenceNumber!));
    await assertError(
      s.k.send(new PutRecordCommand({ StreamName: 'ids', Data: bytes('c'), PartitionKey: 'k', SequenceNumberForOrdering: 'abc' })),
      'ValidationException',
      /sequenceNumberForOrdering.*pattern/,
    );
    await assertError(
      s.k.send(new PutRecordCommand({ StreamName: 'ids', Data: bytes('c'), PartitionKey: 'k', SequenceNumberForOrdering: '5' })),
      'InvalidArgumentException',
      `ExclusiveMinimumSequenceNumber 5 used in PutRecord on stream ids under account ${ACCOUNT} is invalid.`,
    );
  });
});
