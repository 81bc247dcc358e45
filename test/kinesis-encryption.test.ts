// Kinesis server-side encryption with the SDK: StartStreamEncryption / StopStreamEncryption
// (UPDATING then ACTIVE on the injected clock, KeyId forms, errors, AWS's 25-per-day limits),
// records sealed at rest (the shard-log bytes hold neither data nor partition key) and read back
// with EncryptionType KMS by GetRecords and SubscribeToShard, older and newer plaintext records
// beside them, a restart, a master key that was replaced or lost, and damaged ciphertext.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import {
  CreateStreamCommand,
  DescribeStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  PutRecordCommand,
  PutRecordsCommand,
  RegisterStreamConsumerCommand,
  StartStreamEncryptionCommand,
  StopStreamEncryptionCommand,
  SubscribeToShardCommand,
  KinesisClient,
  type _Record,
} from '@aws-sdk/client-kinesis';
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { CreateDeliveryStreamCommand } from '@aws-sdk/client-firehose';
import { CreateAppCommand, PutEventsCommand, PutEventStreamCommand } from '@aws-sdk/client-pinpoint';
import { ManualClock } from '../src/clock.js';
import { openDb } from '../src/store/db.js';
import { sqliteMetadata } from '../src/store/metadata.js';
import { SecretBox, MasterKeyError } from '../src/iam/secrets.js';
import {
  DataKeys,
  KEY_REFRESH_MIN_MS,
  ENCRYPTED_HEADER_BYTES,
  KINESIS_MANAGED_KEY_ALIAS,
  MAX_ALIAS_NAME_LENGTH,
  MAX_ENCRYPTION_STARTS_PER_DAY,
  MAX_ENCRYPTION_STOPS_PER_DAY,
  RecordDamage,
} from '../src/kinesis/encryption.js';
import { HEADER_BYTES, SEGMENT_HEADER_BYTES } from '../src/log/format.js';
import { model } from '../src/models/generated/kinesis.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { assertError, kinesisClient, kinesisServer } from './helpers/kinesis.js';
import { flipByte } from './helpers/faults.js';
import { ACCOUNT, createDeliveryRole, firehoseClient, folderContents, s3Destination, until } from './helpers/firehose.js';
import { createPinpointRole } from './helpers/eventstream.js';
import { framesOf, logFiles } from './helpers/segments.js';

const SHARD0 = 'shardId-000000000000';
const TRANSITION_MS = 1000;
const KEY_UUID = '1234abcd-12ab-34cd-56ef-1234567890ab';
const ACCEPTED_KEY_IDS = [
  KINESIS_MANAGED_KEY_ALIAS,
  KEY_UUID,
  'mrk-1234abcd12ab34cd56ef1234567890ab',
  `arn:aws:kms:us-east-1:123456789012:key/${KEY_UUID}`,
  'alias/my-stream_key/v2',
  'arn:aws:kms:eu-west-1:210987654321:alias/MyAliasName',
  `arn:aws:kms:us-east-1:123456789012:${KINESIS_MANAGED_KEY_ALIAS}`,
];

/** A value that cannot occur by chance in a shard log. */
const secret = (label: string) => `${label}-${randomBytes(12).toString('hex')}`;

/** Every byte of a stream's shard logs (all incarnations whose directory starts with its name). */
async function shardLogBytes(dataDir: string, stream: string): Promise<Buffer> {
  const root = join(dataDir, 'kinesis');
  const parts: Buffer[] = [];
  for (const inc of (await readdir(root)).filter((d) => d.startsWith(`${stream}-`))) {
    for (const shard of await readdir(join(root, inc))) {
      for (const f of await readdir(join(root, inc, shard))) parts.push(await readFile(join(root, inc, shard, f)));
    }
  }
  assert.ok(parts.length > 0, `no shard-log files of ${stream}`);
  return Buffer.concat(parts);
}

async function shard0Segments(dataDir: string, stream: string): Promise<string[]> {
  const root = join(dataDir, 'kinesis');
  const [inc] = (await readdir(root)).filter((d) => d.startsWith(`${stream}-`));
  return (await logFiles(join(root, inc, SHARD0))).segments;
}

async function readAll(k: KinesisClient, stream: string): Promise<_Record[]> {
  let it = (await k.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: SHARD0, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
  const out: _Record[] = [];
  for (;;) {
    const r = await k.send(new GetRecordsCommand({ ShardIterator: it }));
    out.push(...r.Records!);
    if (r.Records!.length === 0 || !r.NextShardIterator) return out;
    it = r.NextShardIterator;
  }
}

const view = (r: _Record) => ({ key: r.PartitionKey, data: Buffer.from(r.Data!).toString(), enc: r.EncryptionType });

async function put(k: KinesisClient, stream: string, data: string, key: string) {
  return k.send(new PutRecordCommand({ StreamName: stream, PartitionKey: key, Data: Buffer.from(data) }));
}

describe('StartStreamEncryption / StopStreamEncryption (kinesisTransitionMs 1000, ManualClock)', () => {
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000);
  const ctx = kinesisServer({ clock, config: { kinesisTransitionMs: TRANSITION_MS } });
  const settle = () => clock.advance(TRANSITION_MS);
  const summary = async (name: string) => (await ctx.k.send(new DescribeStreamSummaryCommand({ StreamName: name }))).StreamDescriptionSummary!;

  test('records after Start are sealed at rest and read back marked KMS; older and post-Stop records stay plaintext and readable', async () => {
    const { k, t } = ctx;
    await k.send(new CreateStreamCommand({ StreamName: 'enc', ShardCount: 1 }));
    settle();
    const before = { data: secret('before-data'), key: secret('before-key') };
    const sealed = [0, 1, 2].map((n) => ({ data: secret(`sealed-data-${n}`), key: secret(`sealed-key-${n}`) }));
    const afterStop = { data: secret('after-data'), key: secret('after-key') };

    const plainPut = await put(k, 'enc', before.data, before.key);
    assert.equal(plainPut.EncryptionType, undefined);
    let d = (await k.send(new DescribeStreamCommand({ StreamName: 'enc' }))).StreamDescription!;
    assert.equal(d.EncryptionType, 'NONE');
    assert.equal(d.KeyId, undefined);

    await k.send(new StartStreamEncryptionCommand({ StreamName: 'enc', EncryptionType: 'KMS', KeyId: KINESIS_MANAGED_KEY_ALIAS }));
    let s = await summary('enc');
    assert.equal(s.StreamStatus, 'UPDATING');
    assert.equal(s.EncryptionType, 'KMS');
    assert.equal(s.KeyId, KINESIS_MANAGED_KEY_ALIAS);
    // Reads and writes go on while UPDATING, as in AWS.
    const one = await put(k, 'enc', sealed[0].data, sealed[0].key);
    assert.equal(one.EncryptionType, 'KMS');
    settle();
    s = await summary('enc');
    assert.equal(s.StreamStatus, 'ACTIVE');
    const many = await k.send(
      new PutRecordsCommand({ StreamName: 'enc', Records: sealed.slice(1).map((r) => ({ PartitionKey: r.key, Data: Buffer.from(r.data) })) }),
    );
    assert.equal(many.FailedRecordCount, 0);
    assert.equal(many.EncryptionType, 'KMS');
    d = (await k.send(new DescribeStreamCommand({ StreamName: 'enc' }))).StreamDescription!;
    assert.deepEqual([d.EncryptionType, d.KeyId], ['KMS', KINESIS_MANAGED_KEY_ALIAS]);

    let disk = await shardLogBytes(t.dataDir, 'enc');
    assert.ok(disk.includes(before.data) && disk.includes(before.key), 'the record from before Start is stored as it was');
    for (const r of sealed) {
      assert.ok(!disk.includes(r.data), 'sealed data found in the shard log');
      assert.ok(!disk.includes(r.key), 'sealed partition key found in the shard log');
    }
    assert.deepEqual((await readAll(k, 'enc')).map(view), [
      { key: before.key, data: before.data, enc: undefined },
      ...sealed.map((r) => ({ key: r.key, data: r.data, enc: 'KMS' })),
    ]);

    await k.send(new StopStreamEncryptionCommand({ StreamName: 'enc', EncryptionType: 'KMS', KeyId: KINESIS_MANAGED_KEY_ALIAS }));
    s = await summary('enc');
    assert.deepEqual([s.StreamStatus, s.EncryptionType, s.KeyId], ['UPDATING', 'NONE', undefined]);
    settle();
    const stopped = await put(k, 'enc', afterStop.data, afterStop.key);
    assert.equal(stopped.EncryptionType, undefined);
    disk = await shardLogBytes(t.dataDir, 'enc');
    assert.ok(disk.includes(afterStop.data) && disk.includes(afterStop.key), 'records after Stop are plaintext again');
    for (const r of sealed) assert.ok(!disk.includes(r.data));
    const all = (await readAll(k, 'enc')).map(view);
    assert.deepEqual(all.slice(1, 4).map((r) => r.enc), ['KMS', 'KMS', 'KMS']);
    assert.deepEqual(all[4], { key: afterStop.key, data: afterStop.data, enc: undefined });
  });

  test('SubscribeToShard delivers sealed records with EncryptionType KMS', async () => {
    const { k } = ctx;
    await k.send(new CreateStreamCommand({ StreamName: 'enc-efo', ShardCount: 1 }));
    settle();
    const arn = (await summary('enc-efo')).StreamARN!;
    const { Consumer } = await k.send(new RegisterStreamConsumerCommand({ StreamARN: arn, ConsumerName: 'reader' }));
    settle();
    await put(k, 'enc-efo', 'plain', 'p');
    await k.send(new StartStreamEncryptionCommand({ StreamARN: arn, EncryptionType: 'KMS', KeyId: KEY_UUID }));
    settle();
    await put(k, 'enc-efo', 'sealed', 's');
    const abort = new AbortController();
    const res = await k.send(
      new SubscribeToShardCommand({ ConsumerARN: Consumer!.ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'TRIM_HORIZON' } }),
      { abortSignal: abort.signal },
    );
    const got: _Record[] = [];
    try {
      for await (const ev of res.EventStream!) {
        got.push(...(ev.SubscribeToShardEvent?.Records ?? []));
        if (got.length >= 2) break;
      }
    } finally {
      abort.abort();
    }
    assert.deepEqual(got.map(view), [
      { key: 'p', data: 'plain', enc: undefined },
      { key: 's', data: 'sealed', enc: 'KMS' },
    ]);
  });

  test('every KeyId form is accepted and reported as given; a new Start rotates the data key and older records stay readable', async () => {
    const { k, t } = ctx;
    await k.send(new CreateStreamCommand({ StreamName: 'enc-forms', ShardCount: 1 }));
    settle();
    const registry = t.server.kinesis;
    const incarnation = () => {
      const st = registry.get('enc-forms');
      return `${st.name}-${st.createdMs}`;
    };
    for (const [n, keyId] of ACCEPTED_KEY_IDS.entries()) {
      await k.send(new StartStreamEncryptionCommand({ StreamName: 'enc-forms', EncryptionType: 'KMS', KeyId: keyId }));
      settle();
      assert.equal((await summary('enc-forms')).KeyId, keyId);
      await put(k, 'enc-forms', `record-${n}`, `k${n}`);
      assert.equal(registry.keys.count(incarnation()), n + 1, 'each Start takes a fresh data key');
    }
    assert.deepEqual(
      (await readAll(k, 'enc-forms')).map(view),
      ACCEPTED_KEY_IDS.map((_, n) => ({ key: `k${n}`, data: `record-${n}`, enc: 'KMS' })),
    );
  });

  test('errors: shapes from the model, then the stream, then KeyId form and EncryptionType', async () => {
    const { k } = ctx;
    await k.send(new CreateStreamCommand({ StreamName: 'enc-errors', ShardCount: 1 }));
    settle();
    const start = (input: object) => k.send(new StartStreamEncryptionCommand({ StreamName: 'enc-errors', EncryptionType: 'KMS', KeyId: KEY_UUID, ...input } as any));
    const maxKeyId = model.shapes.KeyId.max!;
    await assertError(start({ KeyId: undefined }), 'ValidationException', "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null");
    await assertError(start({ KeyId: 'a'.repeat(maxKeyId + 1) }), 'ValidationException', new RegExp(`Member must have length less than or equal to ${maxKeyId}$`));
    await assertError(start({ EncryptionType: 'AES' }), 'ValidationException', /Member must satisfy enum value set: \[NONE, KMS\]$/);
    await assertError(start({ EncryptionType: undefined }), 'ValidationException', /at 'encryptionType' failed to satisfy constraint: Member must not be null/);
    await assertError(start({ StreamName: 'no-such-stream' }), 'ResourceNotFoundException', /Stream no-such-stream under account \d{12} not found/);
    await assertError(start({ EncryptionType: 'NONE' }), 'InvalidArgumentException', /KMS is the only EncryptionType StartStreamEncryption accepts/);
    for (const bad of ['not a key', '1234abcd-12ab', 'alias/', 'alias/has space', 'arn:aws:kms:us-east-1:123:key/x', `alias/${'a'.repeat(MAX_ALIAS_NAME_LENGTH)}`]) {
      await assertError(start({ KeyId: bad }), 'InvalidArgumentException', /is not a KMS key id, key ARN, alias name/);
    }
    // The longest alias name KMS allows is still a key id.
    await start({ KeyId: `alias/${'a'.repeat(MAX_ALIAS_NAME_LENGTH - 'alias/'.length)}` });
    settle();
    await assertError(start({ KeyId: 'alias/aws/s3' }), 'KMSAccessDeniedException', /AWS managed key of another service/);
    // A second change while the first is still UPDATING, as other updates: ResourceInUseException.
    await start({});
    await assertError(start({}), 'ResourceInUseException', /not ACTIVE, instead in state UPDATING/);
    await assertError(
      k.send(new StopStreamEncryptionCommand({ StreamName: 'enc-errors', EncryptionType: 'KMS', KeyId: KEY_UUID })),
      'ResourceInUseException',
    );
    settle();
    await assertError(
      k.send(new StopStreamEncryptionCommand({ StreamName: 'enc-errors', EncryptionType: 'NONE', KeyId: KEY_UUID })),
      'InvalidArgumentException',
      /KMS is the only EncryptionType StopStreamEncryption accepts/,
    );
  });

  test(`at most ${MAX_ENCRYPTION_STARTS_PER_DAY} Starts and ${MAX_ENCRYPTION_STOPS_PER_DAY} Stops per stream in a rolling 24 hours`, async () => {
    const { k } = ctx;
    await k.send(new CreateStreamCommand({ StreamName: 'enc-limits', ShardCount: 1 }));
    settle();
    const start = () => k.send(new StartStreamEncryptionCommand({ StreamName: 'enc-limits', EncryptionType: 'KMS', KeyId: KEY_UUID }));
    const stop = () => k.send(new StopStreamEncryptionCommand({ StreamName: 'enc-limits', EncryptionType: 'KMS', KeyId: KEY_UUID }));
    const firstAt = clock.now();
    for (let n = 0; n < Math.max(MAX_ENCRYPTION_STARTS_PER_DAY, MAX_ENCRYPTION_STOPS_PER_DAY); n++) {
      if (n < MAX_ENCRYPTION_STARTS_PER_DAY) {
        await start();
        settle();
      }
      if (n < MAX_ENCRYPTION_STOPS_PER_DAY) {
        await stop();
        settle();
      }
    }
    await assertError(start(), 'LimitExceededException', new RegExp(`StartStreamEncryption was already called ${MAX_ENCRYPTION_STARTS_PER_DAY} times`));
    await assertError(stop(), 'LimitExceededException', new RegExp(`StopStreamEncryption was already called ${MAX_ENCRYPTION_STOPS_PER_DAY} times`));
    // The window rolls: 24 hours after the first Start, one more is allowed (and only one).
    clock.set(firstAt + 24 * 3600_000);
    // Signed at the server's (injected) time, or SigV4 refuses the request as expired; a client per
    // call, as the SDK resets its clock offset from each response's Date header.
    const later = async <T>(f: (c: KinesisClient) => Promise<T>): Promise<T> => {
      const c = new KinesisClient({ endpoint: ctx.t.server.url, region: 'us-east-1', credentials: ctx.t.server.admin, maxAttempts: 1, systemClockOffset: clock.now() - Date.now() });
      try {
        return await f(c);
      } finally {
        c.destroy();
      }
    };
    const again = () => later((c) => c.send(new StartStreamEncryptionCommand({ StreamName: 'enc-limits', EncryptionType: 'KMS', KeyId: KEY_UUID })));
    await again();
    settle();
    await assertError(again(), 'LimitExceededException');
    const s = await later((c) => c.send(new DescribeStreamSummaryCommand({ StreamName: 'enc-limits' })));
    assert.equal(s.StreamDescriptionSummary!.EncryptionType, 'KMS');
  });
});

describe('encrypted records across restarts, master keys and damage', () => {
  let dataDir: string;
  let t: TestServer | undefined;
  let k: KinesisClient;
  const records: Array<{ key: string; data: string; enc: string | undefined }> = [];

  const start = async () => {
    t = await startTestServer({ dataDir });
    k = kinesisClient(t.server);
  };
  const stop = async () => {
    k?.destroy();
    await t?.close();
    t = undefined;
  };

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'pinstream-kms-'));
    await start();
  });
  after(async () => {
    await stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  test('a restart keeps plaintext and sealed records readable, and sealed ones sealed', async () => {
    await k.send(new CreateStreamCommand({ StreamName: 'kept', ShardCount: 1 }));
    const add = async (enc: boolean) => {
      const r = { key: secret('k'), data: secret('d'), enc: enc ? 'KMS' : undefined };
      await put(k, 'kept', r.data, r.key);
      records.push(r);
    };
    await add(false);
    await k.send(new StartStreamEncryptionCommand({ StreamName: 'kept', EncryptionType: 'KMS', KeyId: KINESIS_MANAGED_KEY_ALIAS }));
    await add(true);
    await add(true);
    await stop();
    await start();
    assert.deepEqual((await readAll(k, 'kept')).map(view), records);
    // Still encrypted after the restart; the new process seals under a fresh data key.
    await add(true);
    await k.send(new StopStreamEncryptionCommand({ StreamName: 'kept', EncryptionType: 'KMS', KeyId: KINESIS_MANAGED_KEY_ALIAS }));
    await add(false);
    await stop();
    await start();
    assert.deepEqual((await readAll(k, 'kept')).map(view), records);
    const st = t!.server.kinesis.get('kept');
    assert.equal(t!.server.kinesis.keys.count(`${st.name}-${st.createdMs}`), 2);
    const disk = await shardLogBytes(dataDir, 'kept');
    for (const r of records) assert.equal(disk.includes(r.data), r.enc === undefined, `record ${r.data} at rest`);
  });

  test('a replaced or missing master key stops the start with a clear error, and the right one brings everything back', async () => {
    await stop();
    const keyFile = join(dataDir, 'master.key');
    const original = await readFile(keyFile);
    await writeFile(keyFile, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
    await assert.rejects(startTestServer({ dataDir }), (e: Error) => e instanceof MasterKeyError && /does not open with the master key .*master\.key/.test(e.message));
    await unlink(keyFile);
    await assert.rejects(startTestServer({ dataDir }), (e: Error) => e instanceof MasterKeyError && /lost and created afresh/.test(e.message));
    await writeFile(keyFile, original, { mode: 0o600 });
    await start();
    assert.deepEqual((await readAll(k, 'kept')).map(view), records);
  });

  test('a shared key file (PINSTREAM_MASTER_KEY_FILE) replaces the data directory\'s master.key; a wrong one stops the start naming it', async () => {
    await stop();
    const own = join(dataDir, 'master.key');
    const shared = join(await mkdtemp(join(tmpdir(), 'pinstream-key-')), 'cluster.key');
    await writeFile(shared, await readFile(own), { mode: 0o600 });
    await unlink(own);
    const withKey = await startTestServer({ dataDir, config: { masterKeyFile: shared } });
    try {
      const kk = kinesisClient(withKey.server);
      assert.deepEqual((await readAll(kk, 'kept')).map(view), records);
      kk.destroy();
    } finally {
      await withKey.close();
    }
    // The data directory got no key of its own: the shared file is the only one.
    await assert.rejects(readFile(own), { code: 'ENOENT' });
    const wrong = join(dirname(shared), 'other.key');
    await writeFile(wrong, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
    await assert.rejects(startTestServer({ dataDir, config: { masterKeyFile: wrong } }), (e: Error) => e instanceof MasterKeyError && e.message.includes(wrong));
    await writeFile(own, await readFile(shared), { mode: 0o600 });
    await start();
    assert.deepEqual((await readAll(k, 'kept')).map(view), records);
  });

  test('authorized as the other operations: kinesis:StartStreamEncryption / StopStreamEncryption on the stream ARN', async () => {
    const iam = new IAMClient({ endpoint: t!.server.url, region: 'us-east-1', credentials: t!.server.admin, maxAttempts: 1 });
    try {
      const arn = t!.server.kinesis.arn('kept');
      await iam.send(new CreateUserCommand({ UserName: 'stopper' }));
      await iam.send(
        new PutUserPolicyCommand({
          UserName: 'stopper',
          PolicyName: 'stop-only',
          PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['kinesis:StopStreamEncryption', 'kinesis:DescribeStreamSummary'], Resource: arn }] }),
        }),
      );
      const key = (await iam.send(new CreateAccessKeyCommand({ UserName: 'stopper' }))).AccessKey!;
      const user = kinesisClient({ url: t!.server.url, admin: { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! } });
      try {
        const input = { StreamName: 'kept', EncryptionType: 'KMS' as const, KeyId: KEY_UUID };
        await assertError(user.send(new StartStreamEncryptionCommand(input)), 'AccessDeniedException', /kinesis:StartStreamEncryption/);
        await k.send(new StartStreamEncryptionCommand(input));
        await user.send(new StopStreamEncryptionCommand(input));
        assert.equal((await user.send(new DescribeStreamSummaryCommand({ StreamName: 'kept' }))).StreamDescriptionSummary!.EncryptionType, 'NONE');
      } finally {
        user.destroy();
      }
    } finally {
      iam.destroy();
    }
  });

  test('a flipped byte in a sealed record is reported as damage by the log and never returned', async () => {
    await k.send(new CreateStreamCommand({ StreamName: 'flipped', ShardCount: 1 }));
    await k.send(new StartStreamEncryptionCommand({ StreamName: 'flipped', EncryptionType: 'KMS', KeyId: KEY_UUID }));
    for (const n of [0, 1, 2]) await put(k, 'flipped', `record-${n}`, `k${n}`);
    await stop();
    const [segment] = await shard0Segments(dataDir, 'flipped');
    const frames = framesOf(await readFile(segment));
    assert.equal(frames.length, 3);
    // A byte of the middle record's ciphertext.
    await flipByte(segment, frames[1].start + HEADER_BYTES + ENCRYPTED_HEADER_BYTES + 2, 0x10);
    await start();
    assert.deepEqual((await readAll(k, 'flipped')).map((r) => r.PartitionKey), ['k0', 'k2']);
    assert.ok(t!.server.logs.health().kinesis.recordsLost >= 1, 'the log reports the record lost');
  });

  test('ciphertext altered with a matching checksum fails authentication: reported and skipped, not returned', async () => {
    await k.send(new CreateStreamCommand({ StreamName: 'forged', ShardCount: 1 }));
    await k.send(new StartStreamEncryptionCommand({ StreamName: 'forged', EncryptionType: 'KMS', KeyId: KEY_UUID }));
    for (const n of [0, 1, 2]) await put(k, 'forged', `record-${n}`, `k${n}`);
    await stop();
    const [segment] = await shard0Segments(dataDir, 'forged');
    const file = await readFile(segment);
    const salt = file.readUInt32LE(8);
    const f = framesOf(file)[1];
    file[f.start + HEADER_BYTES + ENCRYPTED_HEADER_BYTES] ^= 0x01;
    file.writeUInt32LE(crc32c(file.subarray(f.start + 8, f.end), salt), f.start + 4);
    assert.ok(SEGMENT_HEADER_BYTES <= f.start);
    await writeFile(segment, file);
    await start();
    assert.deepEqual((await readAll(k, 'forged')).map((r) => r.PartitionKey), ['k0', 'k2']);
    assert.equal(t!.server.kinesisData.damagedRecords, 1);
    assert.equal(t!.server.logs.health().kinesis.recordsLost, 0, 'the log itself saw nothing wrong');
  });
});

test('the readers of shard logs go on through encryption: a Pinpoint event stream into an encrypted stream, read by a Firehose Kinesis source into a bucket', { timeout: 60_000 }, async () => {
  const t = await startTestServer();
  const k = kinesisClient(t.server);
  const fh = firehoseClient(t.server);
  const iam = new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 });
  try {
    await k.send(new CreateStreamCommand({ StreamName: 'pp-sealed', ShardCount: 2 }));
    await k.send(new StartStreamEncryptionCommand({ StreamName: 'pp-sealed', EncryptionType: 'KMS', KeyId: KINESIS_MANAGED_KEY_ALIAS }));
    const streamArn = t.server.kinesis.arn('pp-sealed');
    await createDeliveryRole(t.server);
    await createPinpointRole(iam, 'fh-reader', {
      resource: streamArn,
      trustService: 'firehose.amazonaws.com',
      actions: ['kinesis:DescribeStream', 'kinesis:ListShards', 'kinesis:GetShardIterator', 'kinesis:GetRecords'],
    });
    await fh.send(
      new CreateDeliveryStreamCommand({
        DeliveryStreamName: 'from-sealed',
        DeliveryStreamType: 'KinesisStreamAsSource',
        KinesisStreamSourceConfiguration: { KinesisStreamARN: streamArn, RoleARN: `arn:aws:iam::${ACCOUNT}:role/fh-reader` },
        ExtendedS3DestinationConfiguration: s3Destination('fh-sealed', { BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 0 } }),
      }),
    );
    await createPinpointRole(iam, 'pp-to-kinesis', { resource: streamArn, actions: ['kinesis:PutRecords', 'kinesis:DescribeStream'] });
    const app = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'sealed-events' } }))).ApplicationResponse!.Id!;
    await t.pinpoint.send(new PutEventStreamCommand({ ApplicationId: app, WriteEventStream: { DestinationStreamArn: streamArn, RoleArn: `arn:aws:iam::${ACCOUNT}:role/pp-to-kinesis` } }));
    const eventType = secret('signup');
    await t.pinpoint.send(
      new PutEventsCommand({
        ApplicationId: app,
        EventsRequest: { BatchItem: { [randomUUID()]: { Endpoint: {}, Events: { e1: { EventType: eventType, Timestamp: new Date().toISOString() } } } } },
      }),
    );
    const dir = join(t.dataDir, 'buckets', 'fh-sealed');
    await until(async () => (await folderContents(dir)).includes(eventType), 'the event in the bucket, through the encrypted stream');
    const event = JSON.parse((await folderContents(dir)).split('\n').find((l) => l.includes(eventType))!);
    assert.equal(event.event_type, eventType);
    assert.ok(!(await shardLogBytes(t.dataDir, 'pp-sealed')).includes(eventType), 'the event is sealed in the shard log');
  } finally {
    k.destroy();
    fh.destroy();
    iam.destroy();
    await t.close();
  }
});

describe('DataKeys', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pinstream-datakeys-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a fresh data key after each MAX_RECORDS_PER_DATA_KEY records (injected small); every record opens in its shard only', async () => {
    const db = openDb(join(dir, 'a'));
    try {
      const meta = sqliteMetadata(db);
      const keys = await DataKeys.open(meta, new SecretBox(join(dir, 'a')), new ManualClock(), { recordsPerKey: 3, db });
      const frames = Array.from({ length: 7 }, (_, n) => Buffer.from(`frame-${n}`));
      const sync = () => db.pragma('synchronous', { simple: true });
      const before = sync();
      const sealed = await keys.sealAll('s-1', 0, frames);
      assert.equal(sync(), before, 'the store is back to its own synchronous setting after storing a key');
      assert.equal(keys.count('s-1'), 3);
      assert.deepEqual(sealed.map((b) => b.readUInt32BE(1)), [1, 1, 1, 2, 2, 2, 3]);
      assert.equal(new Set(sealed.map((b) => b.subarray(1, 17).toString('hex'))).size, 7, 'no key and nonce pair repeats');
      sealed.forEach((b, n) => assert.deepEqual(keys.open('s-1', 0, b), frames[n]));
      assert.throws(() => keys.open('s-1', 1, sealed[0]), RecordDamage, 'another shard');
      assert.throws(() => keys.open('s-2', 0, sealed[0]), RecordDamage, 'another stream incarnation');
      const marker = Buffer.from(sealed[0]);
      marker[0] = 0x82;
      assert.throws(() => keys.open('s-1', 0, marker), RecordDamage, 'an unknown frame version');
      assert.throws(() => keys.open('s-1', 0, sealed[0].subarray(0, ENCRYPTED_HEADER_BYTES - 1)), RecordDamage, 'a cut frame');
      // Reopened from the store, the keys open what was sealed; pruning drops a dead incarnation's keys.
      const again = await DataKeys.open(sqliteMetadata(db), new SecretBox(join(dir, 'a')), new ManualClock());
      assert.deepEqual(again.open('s-1', 0, sealed[6]), frames[6]);
      await again.prune(new Set());
      assert.equal((await DataKeys.open(sqliteMetadata(db), new SecretBox(join(dir, 'a')), new ManualClock())).count('s-1'), 0);
    } finally {
      db.close();
    }
  });

  test('a record naming a key stored by another writer is opened after one fetch; fetches are at most one per KEY_REFRESH_MIN_MS', async () => {
    const db = openDb(join(dir, 'd'));
    try {
      const box = new SecretBox(join(dir, 'd'));
      // Two caches over one database that do not hear of each other's writes (as two nodes before a notification).
      const writer = await DataKeys.open(sqliteMetadata(db), box, new ManualClock(), { recordsPerKey: 1 });
      const reader = await DataKeys.open(sqliteMetadata(db), box, new ManualClock());
      const [first, second] = await writer.sealAll('s-1', 0, [Buffer.from('one'), Buffer.from('two')]);
      assert.throws(() => reader.open('s-1', 0, first), RecordDamage, 'not known before a fetch');
      await reader.ensure('s-1', [first.readUInt32BE(1), second.readUInt32BE(1)]);
      assert.equal(reader.open('s-1', 0, second).toString(), 'two');
      const [third] = await writer.sealAll('s-1', 0, [Buffer.from('three')]);
      await reader.ensure('s-1', [third.readUInt32BE(1)]);
      assert.throws(() => reader.open('s-1', 0, third), RecordDamage, `no second fetch within ${KEY_REFRESH_MIN_MS} ms`);
      await new Promise((r) => setTimeout(r, KEY_REFRESH_MIN_MS + 20));
      await reader.ensure('s-1', [third.readUInt32BE(1)]);
      assert.equal(reader.open('s-1', 0, third).toString(), 'three');
    } finally {
      db.close();
    }
  });

  test('data keys sealed under one master key do not open under another: MasterKeyError at construction', async () => {
    const db = openDb(join(dir, 'b'));
    try {
      await (await DataKeys.open(sqliteMetadata(db), new SecretBox(join(dir, 'b')), new ManualClock())).sealAll('s-1', 0, [Buffer.from('x')]);
      await mkdir(join(dir, 'c'));
      const other = new SecretBox(join(dir, 'c'));
      await assert.rejects(DataKeys.open(sqliteMetadata(db), other, new ManualClock()), MasterKeyError);
      // A sealed key moved to another incarnation's row does not open either (bound by its context).
      db.prepare("UPDATE kinesis_data_keys SET stream = 's-2'").run();
      await assert.rejects(DataKeys.open(sqliteMetadata(db), new SecretBox(join(dir, 'b')), new ManualClock()), MasterKeyError);
    } finally {
      db.close();
    }
  });
});
