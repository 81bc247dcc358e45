// Firehose delivery off the request thread: with consumers threads (the default where there are
// two cores) every delivery stream's deliverer runs in the Firehose thread over a read-only view
// of its segment log — the thread reports from a thread id other than the main thread's, health
// stays truthful from its snapshots (lag and buffer counts, buffer intervals on the test's
// ManualClock), a thread killed with a batch in flight is restarted and every record is still
// delivered (at least once, in order within each object), the checkpoint never having passed an
// undelivered record; a damaged record the thread's log view finds is read through the main thread
// (which repairs and reports it) and costs that record only; one that keeps dying is restarted FIREHOSE_THREAD_MAX_RESTARTS times and then
// health says so; with consumerThreads 0 the same loop runs on the main thread.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { open, readdir, readFile } from 'node:fs/promises';
import { threadId as mainThreadId } from 'node:worker_threads';
import { CreateDeliveryStreamCommand, PutRecordBatchCommand, type FirehoseClient } from '@aws-sdk/client-firehose';
import { ManualClock } from '../src/clock.js';
import type { Config } from '../src/config/config.js';
import { FIREHOSE_THREAD_MAX_RESTARTS } from '../src/firehose/firehose-thread.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { createDeliveryRole, firehoseClient, folderKeys, s3Destination, until } from './helpers/firehose.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function server(config: Partial<Config>, clock?: ManualClock): Promise<{ t: TestServer; fh: FirehoseClient }> {
  const t = await startTestServer({ config, ...(clock ? { clock } : {}) });
  await createDeliveryRole(t.server);
  const fh = firehoseClient(t.server);
  cleanups.push(async () => {
    fh.destroy();
    await t.close();
  });
  return { t, fh };
}

const health = (t: TestServer, name: string) => t.server.firehose.health(name)?.delivery;

/** Every object's records (JSON lines with a seq), by object key. */
async function objectsOf(dir: string): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (const key of await folderKeys(dir)) {
    const text = await readFile(join(dir, key), 'utf8');
    out.set(
      key,
      text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l).seq as number),
    );
  }
  return out;
}

test('the deliverer runs in the Firehose thread; health from its snapshots is truthful; buffer intervals follow the test clock', { timeout: 60_000 }, async () => {
  const clock = new ManualClock();
  const { t, fh } = await server({ consumerThreads: 1 }, clock);
  await fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'off-main', ExtendedS3DestinationConfiguration: s3Destination('fh-off-main', { BufferingHints: { SizeInMBs: 5, IntervalInSeconds: 60 } }) }));
  const appended = clock.now();
  await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'off-main', Records: [0, 1, 2].map((seq) => ({ Data: Buffer.from(JSON.stringify({ seq }) + '\n') })) }));
  const buffered = await until(() => {
    const h = health(t, 'off-main');
    return h?.bufferedRecords === 3 ? h : undefined;
  }, 'three buffered records');
  // Lag from the thread's snapshot, against the log's end and the clock of now.
  assert.deepEqual([buffered.recordsBehind, buffered.checkpoint, buffered.logEnd, buffered.millisBehindExact], [3, 0, 3, true]);
  clock.advance(30_000);
  assert.equal(health(t, 'off-main')!.millisBehind, clock.now() - appended);

  const thread = t.server.firehose.deliveryThreadId();
  assert.ok(thread > 0 && thread !== mainThreadId, `a worker thread (the main thread is ${mainThreadId}), got ${thread}`);
  assert.equal(t.server.firehose.deliveryThread()!.reportedFrom('off-main'), thread, 'the deliverer reports from the Firehose thread');

  // Nothing is cut before the interval on the shared ManualClock, everything at it.
  const dir = join(t.dataDir, 'buckets', 'fh-off-main');
  const checks = health(t, 'off-main')!.checks;
  await until(() => health(t, 'off-main')!.checks >= checks + 2, 'two more buffer checks in the thread');
  assert.deepEqual(await folderKeys(dir), []);
  clock.advance(30_000);
  await until(() => health(t, 'off-main')!.recordsBehind === 0, 'the batch delivered');
  const objects = await objectsOf(dir);
  assert.deepEqual([...objects.values()], [[0, 1, 2]]);
  const h = health(t, 'off-main')!;
  assert.deepEqual([h.deliveredRecords, h.deliveredBatches, h.checkpoint, h.millisBehind, h.state, h.lastDeliveryAt], [3, 1, 3, 0, 'running', clock.now()]);
});

test('Firehose thread killed with a batch in flight: restarted, every record delivered at least once, in order per object, the checkpoint never past an undelivered record', { timeout: 120_000 }, async () => {
  const { t, fh } = await server({ consumerThreads: 1 });
  // 1 MiB objects of ~100 records of 10 KiB; the interval only flushes the tail.
  await fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'crash', ExtendedS3DestinationConfiguration: s3Destination('fh-crash', { BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 1 } }) }));
  const firehose = t.server.firehose;
  const thread = await until(() => firehose.deliveryThread(), 'the Firehose thread');
  const firstId = thread.threadId;
  // The second object's role check is held until the thread was killed (the first is written, so
  // the checkpoint has moved past its records).
  let entered!: () => void;
  const inFlight = new Promise<void>((r) => (entered = r));
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let checks = 0;
  thread.beforeRoleCheck = async () => {
    if (++checks < 2) return;
    thread.beforeRoleCheck = undefined;
    entered();
    await gate;
  };
  const pad = 'x'.repeat(10_000);
  const total = 600;
  for (let from = 0; from < total; from += 200) {
    const records = Array.from({ length: 200 }, (_, i) => ({ Data: Buffer.from(JSON.stringify({ seq: from + i, pad }) + '\n') }));
    const out = await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'crash', Records: records }));
    assert.equal(out.FailedPutCount, 0);
  }
  await inFlight;
  const atCrash = health(t, 'crash')!;
  const dir = join(t.dataDir, 'buckets', 'fh-crash');
  const before = new Set([...(await objectsOf(dir)).values()].flat());
  await thread.crash();
  release();
  assert.ok(atCrash.checkpoint > 0, 'the first object was written and the checkpoint moved past it');
  for (let seq = 0; seq < atCrash.checkpoint; seq++) assert.ok(before.has(seq), `record ${seq} below the checkpoint was in an object`);
  assert.ok(before.size < total, 'the thread died with records still to deliver');

  const done = await until(
    () => {
      const h = health(t, 'crash');
      return h && h.recordsBehind === 0 && thread.threadId !== firstId ? h : undefined;
    },
    'delivery after the thread was restarted',
    60_000,
  );
  assert.equal(done.state, 'running');
  assert.equal(done.checkpoint, total);
  assert.equal(thread.reportedFrom('crash'), thread.threadId);
  const objects = await objectsOf(dir);
  const seen = new Set<number>();
  for (const [key, seqs] of objects) {
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `records in order within ${key}`);
    for (const s of seqs) seen.add(s);
  }
  for (let seq = 0; seq < total; seq++) assert.ok(seen.has(seq), `record ${seq} delivered`);
});

test('a damaged record the view finds is read through the main thread, which repairs and reports it; every other record is delivered', { timeout: 60_000 }, async () => {
  const { t, fh } = await server({ consumerThreads: 1 });
  await fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'damaged', ExtendedS3DestinationConfiguration: s3Destination('fh-damaged', { BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 1 } }) }));
  const thread = t.server.firehose.deliveryThread()!;
  // The first object is held at its role check: the deliverer reads nothing more until it is written.
  let entered!: () => void;
  const inFlight = new Promise<void>((r) => (entered = r));
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  thread.beforeRoleCheck = async () => {
    thread.beforeRoleCheck = undefined;
    entered();
    await gate;
  };
  const put = (from: number, n: number) =>
    fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'damaged', Records: Array.from({ length: n }, (_, i) => ({ Data: Buffer.from(JSON.stringify({ seq: from + i, mark: `rec-${String(from + i).padStart(4, '0')}|` }) + '\n') })) }));
  await put(0, 10);
  await inFlight;
  await put(10, 20);
  // One byte of record 20 flipped on disk, under the writer (which committed it) and before the view reads it.
  const dir = join(t.dataDir, 'firehose', 'damaged');
  const [seg] = (await readdir(dir)).filter((n) => n.endsWith('.log')).map((n) => join(dir, n));
  const at = (await readFile(seg)).indexOf('rec-0020|');
  assert.ok(at > 0);
  const fd = await open(seg, 'r+');
  const b = Buffer.alloc(1);
  await fd.read(b, 0, 1, at + 1);
  b[0] ^= 0xff;
  await fd.write(b, 0, 1, at + 1);
  await fd.close();
  release();
  await until(() => health(t, 'damaged')?.recordsBehind === 0, 'every record past the damage delivered');
  const seen = [...(await objectsOf(join(t.dataDir, 'buckets', 'fh-damaged'))).values()].flat().sort((x, y) => x - y);
  assert.deepEqual(seen, Array.from({ length: 30 }, (_, i) => i).filter((i) => i !== 20));
  // The view never repairs nor reports: the loss counted by the writer shows the read went to the main thread.
  const logs = (await (await fetch(`${t.server.url}/health`)).json()).logs;
  assert.equal(logs.firehose.recordsLost, 1);
});

test(`a Firehose thread that keeps dying is restarted ${FIREHOSE_THREAD_MAX_RESTARTS} times, then health says it is not`, { timeout: 60_000 }, async () => {
  const { t, fh } = await server({ consumerThreads: 1 });
  await fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'mortal', ExtendedS3DestinationConfiguration: s3Destination('fh-mortal') }));
  const thread = t.server.firehose.deliveryThread()!;
  for (let death = 1; death <= FIREHOSE_THREAD_MAX_RESTARTS; death++) {
    const id = thread.threadId;
    await thread.crash();
    // The deliverer is running again once it reports from the new thread.
    await until(() => thread.threadId !== id && thread.reportedFrom('mortal') === thread.threadId, `the deliverer back after death ${death}`);
  }
  await thread.crash();
  const h = await until(() => {
    const x = health(t, 'mortal');
    return x?.lastError?.message.includes('not restarted') ? x : undefined;
  }, 'the thread given up');
  assert.equal(h.state, 'stopped');
  assert.match(h.lastError!.message, new RegExp(`died ${FIREHOSE_THREAD_MAX_RESTARTS + 1} times`));
});

test('consumerThreads 0: the same deliverer runs on the main thread', { timeout: 30_000 }, async () => {
  const { t, fh } = await server({ consumerThreads: 0 });
  await fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'in-process', ExtendedS3DestinationConfiguration: s3Destination('fh-in-process', { BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 1 } }) }));
  await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'in-process', Records: [0, 1].map((seq) => ({ Data: Buffer.from(JSON.stringify({ seq }) + '\n') })) }));
  await until(() => health(t, 'in-process')?.recordsBehind === 0 && health(t, 'in-process')!.deliveredRecords === 2, 'the batch delivered');
  assert.deepEqual([...(await objectsOf(join(t.dataDir, 'buckets', 'fh-in-process'))).values()], [[0, 1]]);
  assert.equal(t.server.firehose.deliveryThreadId(), -1, 'no Firehose thread was started');
  assert.equal(t.server.firehose.deliveryThread(), undefined);
});
