// Event-stream delivery to the server's own embedded Kinesis, in process (local-kinesis-destination):
// through the real server, its DeliveryManager, an IAM role made through the IAM API, and records
// read back with GetRecords. Covers: large batches deliver every record of the app exactly once,
// keyed and in order per endpoint, nothing of other apps; a stop mid-delivery leaves the checkpoint
// only past records in the stream and the restart redelivers from there (at least once, first
// occurrences in order); per-record throttling (shard limits on) resends only the refused records
// and still keeps each endpoint's order; a role without kinesis:PutRecords is refused as over HTTP.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { CreateStreamCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { CreateAppCommand, PutEventStreamCommand } from '@aws-sdk/client-pinpoint';
import { LOCAL_MAX_BATCH_RECORDS } from '../src/delivery/local-kinesis-destination.js';
import { kinesisPartitionKey } from '../src/delivery/kinesis-destination.js';
import { MAX_PUT_RECORDS_COUNT } from '../src/kinesis/limits.js';
import { encodeIngestEntry } from '../src/pinpoint/ingest-record.js';
import type { Config } from '../src/config/config.js';
import { createPinpointRole } from './helpers/eventstream.js';
import { kinesisClient, readLineage } from './helpers/kinesis.js';
import { signedFetch } from './helpers/signed.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const ACCOUNT = '000000000000';
const REGION = 'us-east-1';
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Setup {
  t: TestServer;
  k: KinesisClient;
  iam: IAMClient;
  app: string;
  other: string;
  stream: string;
}

async function setUp(name: string, config: Partial<Config> = {}): Promise<Setup> {
  const t = await startTestServer({ config });
  const k = kinesisClient(t.server);
  const iam = new IAMClient({ endpoint: t.server.url, region: REGION, credentials: t.server.admin, maxAttempts: 1 });
  cleanups.push(async () => {
    k.destroy();
    iam.destroy();
    await t.close();
  });
  await k.send(new CreateStreamCommand({ StreamName: name, ShardCount: 4 }));
  const arn = `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/${name}`;
  await createPinpointRole(iam, `${name}-role`, { resource: arn });
  const app = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: `${name}-a` } }))).ApplicationResponse!.Id!;
  const other = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: `${name}-b` } }))).ApplicationResponse!.Id!;
  await t.pinpoint.send(
    new PutEventStreamCommand({ ApplicationId: app, WriteEventStream: { DestinationStreamArn: arn, RoleArn: `arn:aws:iam::${ACCOUNT}:role/${name}-role` } }),
  );
  return { t, k, iam, app, other, stream: name };
}

/** Appends `n` entries to the server's ingest log: two of every three for `app`, over `endpoints` endpoints. */
async function fill(s: Setup, from: number, n: number, endpoints: number): Promise<Array<{ endpoint: string; seq: number }>> {
  const mine: Array<{ endpoint: string; seq: number }> = [];
  const batch: string[] = [];
  for (let i = from; i < from + n; i++) {
    const forApp = i % 3 !== 2;
    const endpoint = `ep-${i % endpoints}`;
    batch.push(encodeIngestEntry(forApp ? s.app : s.other, endpoint, `ev-${i}`, `{"seq":${i},"app":"${forApp ? 'a' : 'b'}","pad":"${'x'.repeat(200)}"}`));
    if (forApp) mine.push({ endpoint, seq: i });
    if (batch.length === 1000) await s.t.server.ingestLog.append(batch.splice(0));
  }
  if (batch.length > 0) await s.t.server.ingestLog.append(batch);
  return mine;
}

async function until<T>(f: () => T | undefined | false, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Reads the stream and checks it against what was sent: nothing of the other app, partition key =
 * endpoint, every record there, and per endpoint the first occurrences in the order sent. Returns
 * the sequence numbers read more than once.
 */
async function check(s: Setup, sent: Array<{ endpoint: string; seq: number }>): Promise<number[]> {
  const { byShard } = await readLineage(s.k, s.stream);
  const endpointOf = new Map(sent.map((x) => [x.seq, x.endpoint]));
  const seen = new Set<number>();
  const dups: number[] = [];
  const firstOrder = new Map<string, number[]>();
  for (const records of byShard.values()) {
    for (const r of records) {
      const json = JSON.parse(r.data.toString('utf8'));
      assert.equal(json.app, 'a', 'only the event stream’s app');
      assert.equal(r.partitionKey, endpointOf.get(json.seq), 'partition key = endpoint id');
      if (seen.has(json.seq)) {
        dups.push(json.seq);
        continue;
      }
      seen.add(json.seq);
      const list = firstOrder.get(r.partitionKey) ?? [];
      list.push(json.seq);
      firstOrder.set(r.partitionKey, list);
    }
  }
  const missing = sent.filter((x) => !seen.has(x.seq));
  assert.equal(missing.length, 0, `${missing.length} records missing, first ${JSON.stringify(missing.slice(0, 3))}`);
  for (const [endpoint, got] of firstOrder) {
    assert.deepEqual(got, sent.filter((x) => x.endpoint === endpoint).map((x) => x.seq), `records of ${endpoint} in order`);
  }
  return dups;
}

test('large in-process batches: every record of the app once, keyed and ordered per endpoint', { timeout: 60_000 }, async () => {
  assert.ok(LOCAL_MAX_BATCH_RECORDS > MAX_PUT_RECORDS_COUNT, 'in-process batches are not held to the wire API’s 500 records');
  // On the main thread (consumerThreads 0), the path for one core; the thread's own tests follow below.
  const s = await setUp('local-bulk', { consumerThreads: 0 });
  await s.t.server.delivery.stop(s.app);
  const sent = await fill(s, 0, 15_000, 20);
  await s.t.server.delivery.restart(s.app);
  const h = await until(() => {
    const x = s.t.server.delivery.health(s.app);
    return x && x.recordsBehind === 0 && x;
  }, 'delivery of the backlog');
  assert.equal(h.delivered, sent.length);
  assert.equal(h.retries, 0);
  assert.deepEqual(await check(s, sent), [], 'no duplicates without failures');
});

test('a stop mid-delivery: the checkpoint is only past records in the stream; the restart redelivers from it', { timeout: 60_000 }, async () => {
  const s = await setUp('local-stop');
  await s.t.server.delivery.stop(s.app);
  const sent = await fill(s, 0, 30_000, 20);
  await s.t.server.delivery.restart(s.app);
  await until(() => (s.t.server.delivery.health(s.app)?.delivered ?? 0) > 0, 'some records delivered');
  await s.t.server.delivery.stop(s.app);
  const stoppedAt = await statusCheckpoint(s);
  const { byShard } = await readLineage(s.k, s.stream);
  const inStream = new Set([...byShard.values()].flat().map((r) => JSON.parse(r.data.toString('utf8')).seq as number));
  // Offsets are the entries' seq (one entry per offset from 0): everything below the checkpoint is in.
  const below = sent.filter((x) => x.seq < stoppedAt);
  assert.ok(below.every((x) => inStream.has(x.seq)), 'every record below the saved checkpoint is in the stream');
  assert.ok(stoppedAt < 30_000, `stopped before the end (checkpoint ${stoppedAt})`);

  await s.t.server.delivery.restart(s.app);
  await until(() => s.t.server.delivery.health(s.app)?.recordsBehind === 0, 'delivery after the restart');
  const dups = await check(s, sent);
  assert.ok(dups.every((seq) => seq >= stoppedAt), 'only records at or past the checkpoint are delivered twice');
});

/** The checkpoint the server persisted for the app, as GET /v1/eventstreams/status shows it. */
async function statusCheckpoint(s: Setup): Promise<number> {
  const res = await signedFetch(s.t.server.url, { method: 'GET', path: '/v1/eventstreams/status', credentials: s.t.server.admin });
  assert.equal(res.status, 200);
  const item = res.json.Item.find((i: { ApplicationId: string }) => i.ApplicationId === s.app);
  assert.equal(typeof item?.Checkpoint, 'number');
  return item.Checkpoint;
}

test('throttled records (shard limits on) are resent alone, and each endpoint stays in order', { timeout: 60_000 }, async () => {
  const s = await setUp('local-throttle', { kinesisShardLimits: true });
  await s.t.server.delivery.stop(s.app);
  // 6,000 records of the app on 4 shards of 1,000 records/s each: calls are refused in part.
  const sent = await fill(s, 0, 9_000, 20);
  await s.t.server.delivery.restart(s.app);
  const h = await until(() => {
    const x = s.t.server.delivery.health(s.app);
    return x && x.recordsBehind === 0 && x;
  }, 'delivery under throttling', 40_000);
  assert.ok(h.retries > 0, 'some records were refused and resent');
  assert.equal(h.delivered, sent.length, 'each record accepted once');
  assert.deepEqual(await check(s, sent), [], 'accepted records are not resent');
});

test('a role denied kinesis:PutRecords is refused as the Kinesis API would refuse it; nothing delivered', { timeout: 30_000 }, async () => {
  const s = await setUp('local-denied');
  // After PutEventStream (which checks the role), the role's own policy now denies the put.
  await s.iam.send(
    new PutRolePolicyCommand({
      RoleName: 'local-denied-role',
      PolicyName: 'deny-put',
      PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: 'kinesis:PutRecords', Resource: '*' }] }),
    }),
  );
  await fill(s, 0, 30, 5);
  const h = await until(() => s.t.server.delivery.health(s.app)?.lastError && s.t.server.delivery.health(s.app), 'the refusal');
  assert.match(h.lastError!.message, /AccessDeniedException: User: arn:aws:sts::000000000000:assumed-role\/local-denied-role\/pinpoint is not authorized to perform: kinesis:PutRecords/);
  assert.equal(h.delivered, 0);
  assert.ok(h.recordsBehind > 0 && h.millisBehind > 0);
});

test('endpoint ids that need JSON escapes, non-ASCII or hashing keep their own partition key', { timeout: 30_000 }, async () => {
  const s = await setUp('local-keys');
  const ids = ['plain-id', 'quote"back\\slash', 'ünïcödé-端点', 'x'.repeat(300)];
  await s.t.server.ingestLog.append(ids.map((id, i) => encodeIngestEntry(s.app, id, `ev-${i}`, `{"seq":${i},"app":"a"}`)));
  await until(() => s.t.server.delivery.health(s.app)?.delivered === ids.length, 'the four records');
  const { byShard } = await readLineage(s.k, s.stream);
  const keys = new Map([...byShard.values()].flat().map((r) => [JSON.parse(r.data.toString('utf8')).seq as number, r.partitionKey]));
  assert.deepEqual([0, 1, 2].map((i) => keys.get(i)), ids.slice(0, 3));
  // Over Kinesis's 256 characters: its SHA-256, still one key per endpoint.
  assert.equal(keys.get(3), kinesisPartitionKey(ids[3]));
  assert.equal(keys.get(3)!.length, 64);
});

test('delivery runs in a consumers thread, not the one answering requests; each endpoint stays in order', { timeout: 60_000 }, async () => {
  const s = await setUp('thread-order', { consumerThreads: 1 });
  const sent = await fill(s, 0, 6_000, 7);
  const h = await until(() => {
    const x = s.t.server.delivery.health(s.app);
    return x && x.recordsBehind === 0 && x;
  }, 'delivery through the thread');
  const ids = s.t.server.delivery.threadIds();
  assert.equal(ids.length, 1);
  assert.ok(ids[0] > 0, 'a worker thread (the main thread is 0)');
  assert.equal(h.delivered, sent.length);
  assert.equal(h.millisBehind, 0);
  assert.deepEqual(await check(s, sent), []);
});

test('consumers thread killed mid-delivery: restarted, nothing lost, order per endpoint kept, the checkpoint never past an undelivered record', { timeout: 90_000 }, async () => {
  const s = await setUp('thread-crash', { consumerThreads: 1 });
  await s.t.server.delivery.stop(s.app);
  const thread = s.t.server.delivery.consumersThreadOf(s.app)!;
  const firstId = thread.threadId;
  // The second batch put after the restart below is held in flight until the thread was killed
  // (the first is accepted, so the checkpoint has moved).
  let entered!: () => void;
  const inFlight = new Promise<void>((r) => (entered = r));
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let puts = 0;
  thread.beforePut = async () => {
    if (++puts < 2) return;
    thread.beforePut = undefined;
    entered();
    await gate;
  };
  const sent = await fill(s, 0, 24_000, 11);
  await s.t.server.delivery.restart(s.app);
  await inFlight;
  const atCrash = s.t.server.delivery.health(s.app)!;
  const { byShard } = await readLineage(s.k, s.stream);
  const inStream = new Set<number>();
  for (const records of byShard.values()) for (const r of records) inStream.add(JSON.parse(r.data.toString('utf8')).seq);
  await thread.crash();
  release();
  // Every record of the app below the checkpoint at the moment of the crash was in the stream.
  const below = sent.filter((x) => x.seq < atCrash.checkpoint);
  assert.ok(below.length > 0, 'the first batch was accepted and the checkpoint moved past it');
  assert.ok(below.every((x) => inStream.has(x.seq)), 'the checkpoint had passed only delivered records');
  assert.ok(sent.some((x) => !inStream.has(x.seq)), 'the thread died with records still to deliver');
  const after = await until(() => {
    const x = s.t.server.delivery.health(s.app);
    return x && x.recordsBehind === 0 && thread.threadId !== firstId && x;
  }, 'delivery after the thread was restarted', 60_000);
  assert.equal(after.state, 'running');
  // Every record there, per endpoint in the order sent (the held batch is sent again by the new thread).
  await check(s, sent);
});

test('consumers thread: a role whose policy denies kinesis:PutRecords still gets AccessDeniedException', { timeout: 30_000 }, async () => {
  const s = await setUp('thread-denied', { consumerThreads: 1 });
  await s.iam.send(
    new PutRolePolicyCommand({
      RoleName: 'thread-denied-role',
      PolicyName: 'deny-put',
      PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: 'kinesis:PutRecords', Resource: '*' }] }),
    }),
  );
  await fill(s, 0, 30, 5);
  const h = await until(() => s.t.server.delivery.health(s.app)?.lastError && s.t.server.delivery.health(s.app), 'the refusal');
  assert.match(h.lastError!.message, /AccessDeniedException: User: arn:aws:sts::000000000000:assumed-role\/thread-denied-role\/pinpoint is not authorized to perform: kinesis:PutRecords/);
  assert.equal(h.delivered, 0);
  assert.ok(h.recordsBehind > 0 && h.millisBehind > 0);
  assert.ok(s.t.server.delivery.threadIds()[0] > 0);
});
