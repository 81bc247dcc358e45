// Delivery lag in health is truthful (issue 16): millisBehind is the age of the oldest undelivered
// record of the app, never 0 while records are behind, 0 when none are; exact (now minus its
// append time) once that record has been read, an upper bound while it is unread. An injected
// clock stamps the ingest log and drives the worker, so the ages are asserted exactly, without
// sleeps; the destination is a real Pinstream's embedded Kinesis over HTTP, or a closed port.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateStreamCommand } from '@aws-sdk/client-kinesis';
import { ManualClock } from '../src/clock.js';
import { MemoryCheckpoint } from '../src/consumer/checkpoint.js';
import { destinationFor } from '../src/delivery/kinesis-destination.js';
import { DeliveryWorker, type DeliveryHealth } from '../src/delivery/worker.js';
import { renderMetrics } from '../src/delivery/metrics.js';
import { SegmentLog } from '../src/log/segment-log.js';
import { encodeIngestEntry } from '../src/pinpoint/ingest-record.js';
import { kinesisClient } from './helpers/kinesis.js';
import { startTestServer } from './helpers/server.js';

const A = 'appA0000000000000000000000000000';
const B = 'appB0000000000000000000000000000';
const REGION = 'us-east-1';
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** Health, checked for the invariant on every look: lag in ms is 0 exactly when no record is behind. */
function healthOf(w: DeliveryWorker): DeliveryHealth {
  const h = w.health();
  assert.equal(h.millisBehind > 0, h.recordsBehind > 0, `millisBehind ${h.millisBehind} with recordsBehind ${h.recordsBehind}`);
  return h;
}

/** Polls a condition on health (real time only bounds the wait; nothing is asserted about timing). */
async function until(w: DeliveryWorker, cond: (h: DeliveryHealth) => boolean, what: string): Promise<DeliveryHealth> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const h = healthOf(w);
    if (cond(h)) return h;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}: ${JSON.stringify(h)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const entries = (app: string, from: number, n: number) =>
  Array.from({ length: n }, (_, i) => encodeIngestEntry(app, `ep-${(from + i) % 3}`, `ev-${from + i}`, `{"seq":${from + i}}`));

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function openLog(clock: ManualClock): Promise<SegmentLog> {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-lag-'));
  const log = await SegmentLog.open(dir, { fsync: false, clock });
  cleanups.push(async () => {
    await log.close();
    await rm(dir, { recursive: true, force: true });
  });
  return log;
}

test('millisBehind is the exact age of the oldest undelivered record once read, at least 1 ms while behind, 0 when caught up', async () => {
  const clock = new ManualClock(1_800_000_000_000);
  const log = await openLog(clock);
  const t0 = clock.now();
  await log.append(entries(A, 0, 10));
  // A destination that refuses every call (nothing listens), and a backoff that never ends: the
  // worker holds the read records in hand until stopped.
  const destination = destinationFor(`arn:aws:kinesis:${REGION}:000000000000:stream/never`, {
    endpoint: `http://127.0.0.1:${await closedPort()}`,
    region: REGION,
    credentials: { accessKeyId: 'AKIDLAG', secretAccessKey: 'unused' },
  });
  const w = new DeliveryWorker({
    appId: A,
    log,
    destination,
    checkpoint: new MemoryCheckpoint(),
    clock,
    sleep: () => new Promise(() => {}),
    onRejected: () => {},
  });
  cleanups.push(async () => {
    await w.stop();
    destination.close();
  });
  w.start();
  // Same millisecond as the append: the age rounds to 0 ms, but records are behind, so 1.
  let h = await until(w, (x) => x.state === 'retrying', 'the first refused call');
  assert.deepEqual([h.recordsBehind, h.millisBehind, h.millisBehindExact, h.delivered], [10, 1, true, 0]);

  clock.advance(7_000);
  h = healthOf(w);
  assert.deepEqual([h.recordsBehind, h.millisBehind, h.millisBehindExact], [10, 7_000, true]);
  // Later records do not change the age: the oldest undelivered one is still the first.
  clock.advance(500);
  await log.append(entries(A, 10, 5));
  h = healthOf(w);
  assert.deepEqual([h.recordsBehind, h.millisBehind], [15, clock.now() - t0]);
  // The same figure in /metrics.
  assert.match(renderMetrics([{ appId: A, destinationArn: destination.arn, health: h }]), new RegExp(`^pinstream_delivery_millis_behind\\{app_id="${A}",[^}]*\\} 7500$`, 'm'));
});

test('while nothing of the app is in hand, millisBehind bounds the age of unread records from above; 0 once delivered', async () => {
  const clock = new ManualClock(1_800_000_000_000);
  const log = await openLog(clock);
  const t = await startTestServer();
  const k = kinesisClient(t.server);
  cleanups.push(async () => {
    k.destroy();
    await t.close();
  });
  await k.send(new CreateStreamCommand({ StreamName: 'lag', ShardCount: 2 }));
  const destination = destinationFor(`arn:aws:kinesis:${REGION}:000000000000:stream/lag`, { endpoint: t.server.url, region: REGION, credentials: t.server.admin });
  const w = new DeliveryWorker({ appId: A, log, destination, checkpoint: new MemoryCheckpoint(), clock, onRejected: () => {} });
  cleanups.push(async () => {
    await w.stop();
    destination.close();
  });

  await log.append(entries(A, 0, 20));
  w.start();
  let h = await until(w, (x) => x.recordsBehind === 0, 'the first records delivered');
  assert.deepEqual([h.delivered, h.millisBehind, h.millisBehindExact], [20, 0, true]);
  const caughtUpAt = clock.now();

  // Another app's records appended 1 s later, observed 1.5 s later: while they are unread the
  // worker cannot know they are not this app's, and says at most 1.5 s (true age: 0.5 s); once
  // read (only B's), nothing of A is behind any more.
  clock.advance(1_000);
  await log.append(entries(B, 20, 30));
  clock.advance(500);
  h = healthOf(w);
  if (h.recordsBehind > 0) {
    assert.ok(h.millisBehind >= 500 && h.millisBehind <= clock.now() - caughtUpAt, `millisBehind ${h.millisBehind} outside [500, 1500]`);
  }
  h = await until(w, (x) => x.recordsBehind === 0, 'the other app’s records passed');
  assert.deepEqual([h.delivered, h.millisBehind], [20, 0]);
});
