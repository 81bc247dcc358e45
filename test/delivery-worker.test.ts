// Delivery worker against real parts: a real Pinstream server (its embedded Kinesis, over HTTP with
// the SDK client destinationFor builds), a SegmentLog ingest log in a temp dir filled with entries
// made by encodeIngestEntry for two interleaved apps, and records read back with GetRecords.
// Covers: complete, byte-identical, per-endpoint-ordered delivery of one app only; the oversize
// error log; a destination outage (server closed, then restarted on the same port and data dir);
// stop()/restart redelivering at most the unacknowledged batch; batching within the PutRecords
// limits; per-record throttling failures (shard limits on) resent until accepted.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateStreamCommand, DescribeStreamSummaryCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { ManualClock, systemClock, type Clock } from '../src/clock.js';
import { loadConfig } from '../src/config/config.js';
import { backoffDelay } from '../src/consumer/backoff.js';
import { MemoryCheckpoint } from '../src/consumer/checkpoint.js';
import type { DeliveryRecord, Destination, RecordOutcome } from '../src/delivery/destination.js';
import { destinationFor } from '../src/delivery/kinesis-destination.js';
import { DeliveryWorker, type DeliveryWorkerOptions, type RejectedEntry } from '../src/delivery/worker.js';
import { SegmentLog } from '../src/log/segment-log.js';
import { encodeIngestEntry } from '../src/pinpoint/ingest-record.js';
import { startPinstream } from '../src/server.js';
import { kinesisClient, readLineage, type KinesisTarget } from './helpers/kinesis.js';
import { startTestServer } from './helpers/server.js';
import { freePort } from './helpers/ports.js';

const A = 'appA0000000000000000000000000000';
const B = 'appB0000000000000000000000000000';
const REGION = 'us-east-1';
const FAST_BACKOFF = { baseMs: 10, maxMs: 100 };

interface Sent {
  app: string;
  endpointId: string;
  eventId: string;
  json: string;
}

/** A record JSON with a sequence number, padded to `bytes` when given. */
function recordJson(app: string, endpointId: string, seq: number, bytes?: number): string {
  const head = `{"event_type":"_custom.test","application":{"app_id":"${app}"},"client":{"client_id":"${endpointId}"},"seq":${seq},"pad":"`;
  const tail = '"}';
  const pad = bytes === undefined ? 0 : bytes - head.length - tail.length;
  assert.ok(pad >= 0);
  return head + 'x'.repeat(pad) + tail;
}

/** Appends entries and remembers them in order. */
async function append(log: SegmentLog, sent: Sent[], items: Array<Omit<Sent, 'json'> & { json?: string; seq?: number }>): Promise<void> {
  const rows = items.map((it, i) => ({ ...it, json: it.json ?? recordJson(it.app, it.endpointId, it.seq ?? sent.length + i) }));
  await log.append(rows.map((r) => encodeIngestEntry(r.app, r.endpointId, r.eventId, r.json)));
  sent.push(...rows);
}

/** `count` entries alternating A, A, B over `endpoints` endpoints, with event ids from `start`. */
function interleaved(start: number, count: number, endpoints = 5): Array<Omit<Sent, 'json'> & { seq: number }> {
  return Array.from({ length: count }, (_, k) => {
    const i = start + k;
    return { app: i % 3 === 2 ? B : A, endpointId: `ep-${i % endpoints}`, eventId: `ev-${i}`, seq: i };
  });
}

async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

async function createStream(k: KinesisClient, name: string, shards = 2): Promise<string> {
  await k.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
  const d = await k.send(new DescribeStreamSummaryCommand({ StreamName: name }));
  assert.equal(d.StreamDescriptionSummary!.StreamStatus, 'ACTIVE');
  return d.StreamDescriptionSummary!.StreamARN!;
}

async function waitUntil(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function caughtUp(w: DeliveryWorker, log: SegmentLog): () => boolean {
  return () => w.health().checkpoint === log.endOffset();
}

interface Received {
  partitionKey: string;
  data: string;
}

/** Every record of the stream, shard by shard, each shard in sequence order. */
async function readStream(k: KinesisClient, name: string): Promise<Received[][]> {
  const { byShard } = await readLineage(k, name);
  return [...byShard.values()].map((rs) => rs.map((r) => ({ partitionKey: r.partitionKey, data: r.data.toString('utf8') })));
}

/**
 * Checks what arrived against what app A sent: every record present byte-identical, partition key =
 * endpoint id, nothing of other apps, each endpoint's records in order (duplicates, if any, only
 * repeat records already seen). Returns the number of duplicates.
 */
function checkDelivered(shards: Received[][], sent: Sent[], opts: { maxDuplicates?: number } = {}): number {
  const expected = sent.filter((s) => s.app === A);
  const byData = new Map(expected.map((s) => [s.json, s]));
  const seenPerEndpoint = new Map<string, string[]>();
  let total = 0;
  const seen = new Set<string>();
  for (const shard of shards) {
    for (const r of shard) {
      total++;
      const s = byData.get(r.data);
      assert.ok(s, `unexpected record in the stream (another app's, or altered): ${r.data.slice(0, 120)}`);
      assert.equal(r.partitionKey, s.endpointId, 'partition key is the endpoint id');
      if (seen.has(r.data)) continue;
      seen.add(r.data);
      const list = seenPerEndpoint.get(s.endpointId) ?? [];
      list.push(r.data);
      seenPerEndpoint.set(s.endpointId, list);
    }
  }
  assert.equal(seen.size, expected.length, `${expected.length - seen.size} records of app A missing`);
  for (const [endpointId, got] of seenPerEndpoint) {
    const want = expected.filter((s) => s.endpointId === endpointId).map((s) => s.json);
    assert.deepEqual(got, want, `records of endpoint ${endpointId} in order`);
  }
  const duplicates = total - seen.size;
  if (opts.maxDuplicates !== undefined) assert.ok(duplicates <= opts.maxDuplicates, `${duplicates} duplicates > ${opts.maxDuplicates}`);
  return duplicates;
}

/** Every worker made here, stopped at the end even when a test failed before stopping its own. */
const workers: DeliveryWorker[] = [];
after(() => Promise.all(workers.map((w) => w.stop())));

function worker(o: Partial<DeliveryWorkerOptions> & Pick<DeliveryWorkerOptions, 'log' | 'destination'>, rejected: RejectedEntry[] = []) {
  const w = new DeliveryWorker({
    appId: A,
    checkpoint: new MemoryCheckpoint(),
    clock: systemClock,
    backoff: FAST_BACKOFF,
    onRejected: (e) => rejected.push(e),
    ...o,
  });
  workers.push(w);
  return w;
}

/** Delegates to a real adapter; counts calls and their sizes; can hold one call at a gate. */
class CountingDestination implements Destination {
  readonly kind;
  readonly arn;
  readonly maxRecords: number;
  readonly maxBatchBytes: number;
  readonly maxRecordBytes: number;
  calls: Array<{ records: number; bytes: number; failed?: number }> = [];
  gate: { call: number; opened: Promise<void>; open: () => void; sent?: Promise<unknown>; records?: DeliveryRecord[] } | undefined;

  constructor(private inner: Destination, limits: { maxRecords?: number } = {}) {
    this.kind = inner.kind;
    this.arn = inner.arn;
    this.maxRecords = limits.maxRecords ?? inner.maxRecords;
    this.maxBatchBytes = inner.maxBatchBytes;
    this.maxRecordBytes = inner.maxRecordBytes;
  }
  holdCall(n: number): void {
    let open!: () => void;
    const opened = new Promise<void>((r) => (open = r));
    this.gate = { call: n, opened, open };
  }
  recordSize(r: DeliveryRecord): number {
    return this.inner.recordSize(r);
  }
  async send(records: DeliveryRecord[]): Promise<RecordOutcome[]> {
    const call: { records: number; bytes: number; failed?: number } = { records: records.length, bytes: records.reduce((n, r) => n + this.recordSize(r), 0) };
    this.calls.push(call);
    if (this.gate && this.calls.length === this.gate.call) {
      const g = this.gate;
      g.records = records;
      // The call goes through once the gate opens, but its answer reaches nobody who still waits.
      g.sent = g.opened.then(() => this.inner.send(records));
      return (await g.sent) as RecordOutcome[];
    }
    const outcomes = await this.inner.send(records);
    call.failed = outcomes.filter((o) => !o.ok).length;
    return outcomes;
  }
  describe() {
    return this.inner.describe();
  }
  close(): void {
    this.inner.close();
  }
}

function kinesisDestination(server: KinesisTarget, arn: string): Destination {
  return destinationFor(arn, { endpoint: server.url, region: REGION, credentials: server.admin });
}


test('backoff: full jitter within min(max, base * 2^attempt)', () => {
  const o = { baseMs: 200, maxMs: 30_000 };
  assert.equal(backoffDelay(0, o, () => 0), 0);
  assert.equal(backoffDelay(0, o, () => 0.5), 100);
  assert.equal(backoffDelay(3, o, () => 0.5), 800);
  assert.equal(backoffDelay(20, o, () => 0.5), 15_000);
  assert.equal(backoffDelay(5000, o, () => 0.5), 15_000);
  assert.ok(backoffDelay(7, o, () => 0.999999) < 25_600);
});

test('destinationFor picks the adapter from the ARN', () => {
  const creds = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' };
  const k = destinationFor('arn:aws:kinesis:us-east-1:123456789012:stream/s1', { region: REGION, credentials: creds });
  const f = destinationFor('arn:aws:firehose:us-east-1:123456789012:deliverystream/f1', { region: REGION, credentials: creds });
  assert.deepEqual([k.kind, k.maxRecords, k.maxBatchBytes, k.maxRecordBytes], ['kinesis', 500, 5 * 1024 * 1024, 1024 * 1024]);
  assert.deepEqual([f.kind, f.maxRecords, f.maxBatchBytes, f.maxRecordBytes], ['firehose', 500, 4 * 1024 * 1024, 1_024_000]);
  assert.equal(k.recordSize({ data: Buffer.alloc(10), partitionKey: 'abc' }), 13);
  assert.equal(f.recordSize({ data: Buffer.alloc(10), partitionKey: 'abc' }), 11);
  // Endpoint ids past Kinesis's 256-character key limit are sent as their SHA-256 (64 hex chars).
  assert.equal(k.recordSize({ data: Buffer.alloc(10), partitionKey: 'e'.repeat(300) }), 74);
  assert.throws(() => destinationFor('arn:aws:sqs:us-east-1:123456789012:q', { region: REGION, credentials: creds }), /not a Kinesis stream or Firehose/);
  k.close();
  f.close();
});

test('Kinesis worker: embedded Kinesis gets every app-A record, byte-identical, keyed and ordered per endpoint; rejects oversize; batches within limits', { timeout: 25_000 }, async (t) => {
  const srv = await startTestServer({ config: { logFsync: false } });
  const k = kinesisClient(srv.server);
  const dirs: string[] = [];
  const openLog = async () => {
    const dir = await tempDir('pinstream-dlog-');
    dirs.push(dir);
    return SegmentLog.open(dir, { fsync: false });
  };
  t.after(async () => {
    k.destroy();
    await srv.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  await t.test('(a) all of app A, none of app B, checkpoint at the log end', async () => {
    const arn = await createStream(k, 'a-stream');
    const log = await openLog();
    const sent: Sent[] = [];
    await append(log, sent, interleaved(0, 150));
    await append(log, sent, interleaved(150, 150));
    // A tail of app B only, longer than a read chunk: the checkpoint must still reach the end.
    await append(log, sent, Array.from({ length: 120 }, (_, i) => ({ app: B, endpointId: 'b-ep', eventId: `b-${i}` })));
    const dest = kinesisDestination(srv.server, arn);
    const checkpoint = new MemoryCheckpoint();
    const w = worker({ log, destination: dest, checkpoint, readBatch: 50 });
    w.start();
    await waitUntil(caughtUp(w, log), 'the worker to catch up');
    const h = w.health();
    await w.stop();
    dest.close();
    assert.equal(checkpoint.offset, log.endOffset());
    assert.equal(h.delivered, sent.filter((s) => s.app === A).length);
    assert.deepEqual([h.state, h.recordsBehind, h.millisBehind, h.retries, h.rejected, h.lastError], ['running', 0, 0, 0, 0, undefined]);
    assert.equal(w.health().state, 'stopped');
    const dups = checkDelivered(await readStream(k, 'a-stream'), sent, { maxDuplicates: 0 });
    assert.equal(dups, 0);
    await log.close();
  });

  await t.test('(b) a record over 1 MiB goes to onRejected naming the limit; later records still arrive', async () => {
    const arn = await createStream(k, 'b-stream', 1);
    const log = await openLog();
    const sent: Sent[] = [];
    const rejected: RejectedEntry[] = [];
    await append(log, sent, interleaved(0, 6));
    const bigOffset = log.endOffset();
    // One byte over (data + partition key), then one exactly at the limit, which must go through.
    const key = 'ep-big';
    await log.append([encodeIngestEntry(A, key, 'ev-big', recordJson(A, key, 1000, 1024 * 1024 - key.length + 1))]);
    const atLimit = recordJson(A, key, 1001, 1024 * 1024 - key.length);
    await append(log, sent, [{ app: A, endpointId: key, eventId: 'ev-limit', json: atLimit }]);
    await append(log, sent, interleaved(6, 9));
    const dest = kinesisDestination(srv.server, arn);
    const w = worker({ log, destination: dest }, rejected);
    w.start();
    await waitUntil(caughtUp(w, log), 'the worker to catch up');
    const h = w.health();
    await w.stop();
    dest.close();
    assert.equal(rejected.length, 1);
    assert.equal(rejected[0].offset, bigOffset);
    assert.equal(rejected[0].eventId, 'ev-big');
    assert.equal(rejected[0].endpointId, key);
    assert.match(rejected[0].reason, /1048577 bytes.*1048576-byte per-record Kinesis PutRecords limit/);
    assert.equal(h.rejected, 1);
    assert.equal(h.retries, 0, 'the oversize record never reached the destination');
    checkDelivered(await readStream(k, 'b-stream'), sent, { maxDuplicates: 0 });
    await log.close();
  });

  await t.test('(e) batches stay within 500 records and 5 MiB per PutRecords call', async () => {
    const arn = await createStream(k, 'e-stream', 2);
    const log = await openLog();
    const sent: Sent[] = [];
    await append(log, sent, Array.from({ length: 1200 }, (_, i) => ({ app: A, endpointId: `ep-${i % 7}`, eventId: `s-${i}`, seq: i })));
    const dest = new CountingDestination(kinesisDestination(srv.server, arn));
    const w = worker({ log, destination: dest });
    w.start();
    await waitUntil(caughtUp(w, log), 'the small records');
    assert.ok(dest.calls.length >= 3, `${dest.calls.length} PutRecords calls for 1,200 records`);
    assert.ok(dest.calls.every((c) => c.records <= 500));
    const smallCalls = dest.calls.length;
    // 40 records of 300,000 bytes = 12 MB: the 5 MiB cap (17 per call) binds before the count.
    for (let i = 0; i < 40; i++) {
      const ep = `ep-${i % 3}`;
      await append(log, sent, [{ app: A, endpointId: ep, eventId: `l-${i}`, json: recordJson(A, ep, 2000 + i, 300_000) }]);
    }
    await waitUntil(caughtUp(w, log), 'the large records');
    const h = w.health();
    await w.stop();
    dest.close();
    const large = dest.calls.slice(smallCalls);
    assert.ok(large.length >= 3, `${large.length} calls for 12 MB`);
    assert.ok(dest.calls.every((c) => c.bytes <= 5 * 1024 * 1024), 'every call within 5 MiB');
    assert.equal(h.retries, 0, 'the server accepted every call as packed');
    t.diagnostic(`PutRecords calls: ${dest.calls.map((c) => `${c.records}/${c.bytes}B`).join(', ')}`);
    checkDelivered(await readStream(k, 'e-stream'), sent, { maxDuplicates: 0 });
    await log.close();
  });

  await t.test('(d) stop() during an unacknowledged call; a restart from the saved checkpoint resends at most that batch', async () => {
    const arn = await createStream(k, 'd-stream', 2);
    const log = await openLog();
    const sent: Sent[] = [];
    await append(log, sent, interleaved(0, 450)); // 300 of app A
    const checkpoint = new MemoryCheckpoint();
    const dest = new CountingDestination(kinesisDestination(srv.server, arn), { maxRecords: 50 });
    dest.holdCall(3);
    const w1 = worker({ log, destination: dest, checkpoint });
    w1.start();
    await waitUntil(() => dest.calls.length === 3, 'the third call');
    const before = w1.health();
    assert.equal(before.delivered, 100);
    const t0 = Date.now();
    await w1.stop();
    assert.ok(Date.now() - t0 < 1000, 'stop() does not wait for the call in flight');
    assert.equal(w1.health().state, 'stopped');
    // Checkpoint: just past the 100 acknowledged records, i.e. at the first record of the held batch.
    const firstHeld = sent.findIndex((s) => s.json === dest.gate!.records![0].data.toString());
    assert.equal(checkpoint.offset, firstHeld);
    // The held call now lands in the stream: delivered, but its acknowledgement was lost.
    dest.gate!.open();
    await dest.gate!.sent;
    const held = dest.gate!.records!.length;

    const w2 = worker({ log, destination: dest, checkpoint });
    w2.start();
    await waitUntil(caughtUp(w2, log), 'the restarted worker to catch up');
    await w2.stop();
    dest.close();
    const dups = checkDelivered(await readStream(k, 'd-stream'), sent, { maxDuplicates: held });
    assert.equal(dups, held, 'exactly the unacknowledged batch was sent twice');
    t.diagnostic(`duplicates after stop/restart: ${dups} (held batch of ${held})`);
    await log.close();
  });
});

test('(c) destination outage: retries with backoff, nothing lost, per-endpoint order kept after the server returns', { timeout: 25_000 }, async (t) => {
  const dataDir = await tempDir('pinstream-outage-');
  const logDir = await tempDir('pinstream-dlog-');
  const port = await freePort();
  const config = loadConfig({}, { port, dataDir, logFsync: false });
  let server = await startPinstream(config);
  const clock = new ManualClock();
  const log = await SegmentLog.open(logDir, { fsync: false, clock });
  const setup = kinesisClient(server);
  let dest: Destination | undefined;
  let w: DeliveryWorker | undefined;
  t.after(async () => {
    await w?.stop();
    dest?.close();
    setup.destroy();
    await server.close();
    await log.close();
    await rm(dataDir, { recursive: true, force: true });
    await rm(logDir, { recursive: true, force: true });
  });

  const arn = await createStream(setup, 'outage', 2);
  const sent: Sent[] = [];
  await append(log, sent, interleaved(0, 150));
  dest = kinesisDestination(server, arn);
  const checkpoint = new MemoryCheckpoint();
  w = worker({ log, destination: dest, checkpoint, clock: clock as Clock });
  w.start();
  await waitUntil(caughtUp(w, log), 'delivery before the outage');
  const deliveredBefore = w.health().delivered;
  assert.equal(deliveredBefore, 100);

  await server.close();
  for (let i = 150; i < 450; i += 50) await append(log, sent, interleaved(i, 50));
  clock.advance(5_000);
  await waitUntil(() => {
    const h = w!.health();
    return h.retries >= 3 && h.state === 'retrying' && h.lastError !== undefined;
  }, 'retries against the closed server');
  const down = w.health();
  assert.equal(down.delivered, deliveredBefore, 'nothing delivered while the server is down');
  assert.equal(down.checkpoint, checkpoint.offset);
  assert.ok(down.checkpoint < down.logEnd);
  assert.equal(down.recordsBehind, down.logEnd - down.checkpoint);
  assert.ok(down.millisBehind >= 5_000, `millisBehind ${down.millisBehind}`);
  assert.match(down.lastError!.message, /^kinesis arn:aws:kinesis:us-east-1:000000000000:stream\/outage: /);
  t.diagnostic(`while down: retries=${down.retries} lastError=${down.lastError!.message}`);

  // Same port, same data dir: the stream, its records and the admin key are all still there.
  server = await startPinstream(config);
  await waitUntil(caughtUp(w, log), 'delivery after the server returned', 15_000);
  const h = w.health();
  assert.equal(h.state, 'running');
  assert.equal(checkpoint.offset, log.endOffset());
  const dups = checkDelivered(await readStream(setup, 'outage'), sent);
  assert.equal(h.delivered, sent.filter((s) => s.app === A).length, 'every record acknowledged once by the worker');
  t.diagnostic(`after the outage: retries=${h.retries}, duplicates in the stream=${dups}`);
});

test('(f) per-record throttling (shard limits on): only the refused records are resent, until all are in', { timeout: 25_000 }, async (t) => {
  // The server's clock stands still, so its 1,000 records/s shard budget runs out after exactly
  // 1,000 records and refills only when the test moves time on.
  const serverClock = new ManualClock(Math.floor(Date.now() / 1000) * 1000 + 100);
  const srv = await startTestServer({ clock: serverClock, config: { logFsync: false, kinesisShardLimits: true } });
  const k = kinesisClient(srv.server);
  const dir = await tempDir('pinstream-dlog-');
  const log = await SegmentLog.open(dir, { fsync: false });
  t.after(async () => {
    k.destroy();
    await log.close();
    await srv.close();
    await rm(dir, { recursive: true, force: true });
  });
  const arn = await createStream(k, 'throttled', 1);
  const sent: Sent[] = [];
  // One endpoint: the throttled shard refuses the tail of a batch, so resending only that tail
  // keeps the endpoint's order.
  await append(log, sent, Array.from({ length: 1500 }, (_, i) => ({ app: A, endpointId: 'ep-1', eventId: `t-${i}`, seq: i })));
  // Batches of 300: 300, 300, 300 in; the 4th gets 100 in and 200 refused; the 5th waits.
  const dest = new CountingDestination(kinesisDestination(srv.server, arn), { maxRecords: 300 });
  // All 1,500 in one read, so the batches are cut as described above whatever the default chunk.
  const w = worker({ log, destination: dest, readBatch: 2000 });
  t.after(() => w.stop());
  w.start();
  await waitUntil(() => w.health().retries >= 3, 'retries of the throttled records');
  const throttled = w.health();
  assert.equal(throttled.state, 'retrying');
  assert.equal(throttled.delivered, 1000);
  assert.equal(throttled.checkpoint, 1000, 'checkpoint at the first refused record');
  assert.match(throttled.lastError!.message, /200 of 200 records refused \(ProvisionedThroughputExceededException: Rate exceeded for shard/);
  assert.deepEqual(dest.calls.slice(0, 5).map((c) => [c.records, c.failed]), [[300, 0], [300, 0], [300, 0], [300, 200], [200, 200]]);
  serverClock.advance(1000);
  await waitUntil(caughtUp(w, log), 'throttled delivery after the budget refilled');
  const h = w.health();
  await w.stop();
  dest.close();
  dest.calls.forEach((c, i) => {
    if (c.failed! > 0) assert.equal(dest.calls[i + 1]?.records, c.failed, `call ${i + 1} resends exactly the ${c.failed} refused records`);
  });
  assert.equal(h.state, 'running');
  t.diagnostic(`throttled: ${dest.calls.length} calls (${dest.calls.map((c) => `${c.records}-${c.failed}`).join(' ')}), retries=${h.retries}`);
  checkDelivered(await readStream(k, 'throttled'), sent, { maxDuplicates: 0 });
});

test('a closed ingest log does not make the idle loop spin; stop() still ends it', { timeout: 10_000 }, async () => {
  const dir = await tempDir('pinstream-dlog-');
  const log = await SegmentLog.open(dir, { fsync: false });
  // A destination that is never called: the log stays empty.
  const dest = destinationFor('arn:aws:kinesis:us-east-1:123456789012:stream/unused', {
    endpoint: 'http://127.0.0.1:9',
    region: REGION,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
  });
  const w = worker({ log, destination: dest });
  w.start();
  await log.close();
  // If the loop spun on waitFor's immediate `false`, this timer would never fire.
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(Date.now() - t0 < 1000);
  await w.stop();
  assert.equal(w.health().state, 'stopped');
  dest.close();
  await rm(dir, { recursive: true, force: true });
});
