// JetStream-only behaviour of the logs, beyond the shared contract: a server of the 3-node cluster
// killed between appends (acknowledged records stay readable, appends go on), servers that stop
// answering with connections open (a read fails within its bound, never as an empty range), a NATS outage
// (appends fail with LogWriteError and reads with LogUnavailableError, which callers answer as
// retryable — GetRecords through the SDK gets a 503 —, health says so, and writes recover by
// themselves), another node's appends seen by this node's endOffset/waitFor, stream names NATS
// accepts for every valid log name, and a bounded start-up against an unreachable NATS.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { systemClock } from '../src/clock.js';
import { LogUnavailableError, LogWriteError } from '../src/log/errors.js';
import { JetStreamLogProvider, NatsUnavailableError } from '../src/log/jetstream/provider.js';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { END_REFRESH_MS } from '../src/log/jetstream/log.js';
import { MAX_STREAM_NAME, streamNames } from '../src/log/jetstream/names.js';
import { SINGLE_NATS, fileCluster, freePort, singleNatsSkip } from './helpers/nats-cluster.js';
import { readAll } from './helpers/log-contract.js';
import { CreateStreamCommand, DescribeStreamSummaryCommand, GetRecordsCommand, GetShardIteratorCommand, PutRecordCommand } from '@aws-sdk/client-kinesis';
import { startTestServer } from './helpers/server.js';
import { kinesisClient } from './helpers/kinesis.js';

/**
 * Retries a failure that clients retry (an append's LogWriteError, a read's timeout while the cluster
 * elects new leaders) until the call succeeds or 60 s passed, as a client would.
 */
async function retrying<T>(call: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await call();
    } catch (e) {
      assert.ok(e instanceof LogWriteError || e instanceof LogUnavailableError, `failed with ${String(e)}`);
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
const untilStored = retrying;

const prefix = () => `T${randomUUID().replaceAll('-', '').slice(0, 12)}`;

const shared = fileCluster();

test('stream and subject names: one-to-one, within NATS limits, for every valid log name', () => {
  const seen = new Map<string, string>();
  const names = ['.', '..', 'a.b', 'a_b', 'a-b', 'a_2Eb', 'a__b', 'A', 'a', 'x'.repeat(255), 'y'.repeat(254) + '.'];
  for (const kind of ['ingest', 'kinesis', 'firehose'] as const) {
    for (const n of names) {
      for (const path of [[n], ['s', n], [n, 's']]) {
        const { stream, subject } = streamNames('PINSTREAM', kind, path);
        assert.match(stream, /^[A-Za-z0-9_]+$/);
        assert.ok(stream.length <= MAX_STREAM_NAME);
        assert.match(subject, /^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+$/);
        for (const key of [stream, subject]) {
          const id = JSON.stringify([kind, path]);
          assert.equal(seen.get(key) ?? id, id, `${key} taken by two logs`);
          seen.set(key, id);
        }
      }
    }
  }
  assert.throws(() => streamNames('PINSTREAM', 'kinesis', ['a/b']), /invalid log name/);
});

test('an unreachable NATS stops start-up within the timeout, naming NATS', async () => {
  const port = await freePort();
  await assert.rejects(
    JetStreamLogProvider.connect({ servers: [`nats://127.0.0.1:${port}`], clock: systemClock, connectTimeoutMs: 2000 }),
    (e: unknown) => e instanceof NatsUnavailableError && /NATS at nats:\/\/127\.0\.0\.1:\d+ is unreachable/.test((e as Error).message),
  );
});

test("another node's appends move this node's end and wake its waiters", { timeout: 60_000 }, async (t) => {
  const why = await singleNatsSkip();
  if (why) return t.skip(why);
  const p = prefix();
  const a = await JetStreamLogProvider.connect({ servers: [SINGLE_NATS], clock: systemClock, prefix: p });
  const b = await JetStreamLogProvider.connect({ servers: [SINGLE_NATS], clock: systemClock, prefix: p });
  try {
    const la = await a.open('kinesis', 'shared', 'shardId-000000000000');
    const lb = await b.open('kinesis', 'shared', 'shardId-000000000000');
    const woke = lb.waitFor(1, 30_000);
    await la.append(['one', 'two']);
    assert.equal(await woke, true);
    assert.equal(lb.endOffset(), 2);
    assert.deepEqual((await lb.read(0)).records.map((r) => r.payload.toString()), ['one', 'two']);
    // Both nodes' batches interleave only between whole batches of one node when not concurrent.
    const r = await lb.append(['three']);
    assert.equal(r.firstOffset, 2);
  } finally {
    await a.removeAll();
    await a.close();
    await b.close();
  }
});

test(`a node whose end-follower stalled still learns of another node's appends within END_REFRESH_MS (${END_REFRESH_MS} ms) while waited on`, { timeout: 60_000 }, async (t) => {
  const why = await singleNatsSkip();
  if (why) return t.skip(why);
  const p = prefix();
  const a = await JetStreamLogProvider.connect({ servers: [SINGLE_NATS], clock: systemClock, prefix: p });
  const b = await JetStreamLogProvider.connect({ servers: [SINGLE_NATS], clock: systemClock, prefix: p });
  try {
    const la = await a.open('kinesis', 'stalled', 'shardId-000000000000');
    const lb = await b.open('kinesis', 'stalled', 'shardId-000000000000');
    // Stall b's watcher for good: its consumer ends and is never made again (as a consumer that
    // stopped getting messages after a reconnect would leave it).
    const watcher = lb as unknown as { startWatch: () => Promise<void>; watch: { messages?: { close(): Promise<void> } } };
    // The watcher starts in the background: wait until its consumer runs (bounded), then end it.
    for (const deadline = Date.now() + 10_000; !watcher.watch.messages; ) {
      assert.ok(Date.now() < deadline, 'the watcher started');
      await new Promise((r) => setTimeout(r, 10));
    }
    watcher.startWatch = async () => undefined;
    await watcher.watch.messages.close();
    const woke = lb.waitFor(0, 3 * END_REFRESH_MS);
    await la.append(['from a']);
    assert.equal(await woke, true, "b's periodic refresh found a's append");
    assert.equal(lb.endOffset(), 1);
  } finally {
    await a.removeAll();
    await a.close();
    await b.close();
  }
});

test('a log whose subject a stream of another name already captures is refused with that conflict, not opened; two nodes opening one new log at once both succeed', { timeout: 60_000 }, async (t) => {
  const why = await singleNatsSkip();
  if (why) return t.skip(why);
  const p = prefix();
  const { subject } = streamNames(p, 'kinesis', ['taken', 'shardId-000000000000']);
  const nc = await connect({ servers: SINGLE_NATS, timeout: 5000 });
  const jsm = await jetstreamManager(nc);
  const nodes = [
    await JetStreamLogProvider.connect({ servers: [SINGLE_NATS], clock: systemClock, prefix: p }),
    await JetStreamLogProvider.connect({ servers: [SINGLE_NATS], clock: systemClock, prefix: p }),
  ];
  try {
    // Not Pinstream's: the "subjects overlap" answer here is a real conflict and must surface.
    await jsm.streams.add({ name: `${p}_foreign`, subjects: [subject] });
    await assert.rejects(nodes[0].open('kinesis', 'taken', 'shardId-000000000000'), (e: Error & { code?: number }) => e.code === 10065 && /overlap/.test(e.message));
    // The race the overlap answer also comes from (two nodes adding the same stream): both open it.
    for (let i = 0; i < 10; i++) {
      const logs = await Promise.all(nodes.map((n) => n.open('kinesis', `race${i}`, 'shardId-000000000000')));
      await logs[0].append([`r${i}`]);
      assert.ok(await logs[1].waitFor(0, 10_000), 'the other node sees the append');
      assert.equal((await readAll(logs[1], 0, 10)).length, 1);
    }
  } finally {
    await jsm.streams.delete(`${p}_foreign`).catch(() => undefined);
    await nodes[0].removeAll();
    await Promise.all(nodes.map((n) => n.close()));
    await nc.close();
  }
});

test("two nodes appending at once: every payload is where its append result says", { timeout: 60_000 }, async (t) => {
  const why = await singleNatsSkip();
  if (why) return t.skip(why);
  const p = prefix();
  const nodes = [
    await JetStreamLogProvider.connect({ servers: [SINGLE_NATS], clock: systemClock, prefix: p }),
    await JetStreamLogProvider.connect({ servers: [SINGLE_NATS], clock: systemClock, prefix: p }),
  ];
  try {
    const logs = await Promise.all(nodes.map((n) => n.open('kinesis', 'busy', 'shardId-000000000000')));
    const calls = Array.from({ length: 60 }, (_, c) => ({ node: c % 2, payloads: Array.from({ length: 5 }, (_, i) => `node ${c % 2} call ${c} record ${i}`) }));
    const results = await Promise.all(calls.map((c) => logs[c.node].append(c.payloads)));
    const stored = await readAll(logs[0], 0, 1000);
    assert.equal(stored.length, 300);
    let interleaved = 0;
    results.forEach((r, c) => {
      if (r.offsets) interleaved++;
      calls[c].payloads.forEach((want, i) => assert.equal(stored[r.offsets?.[i] ?? r.firstOffset + i].payload.toString(), want));
    });
    t.diagnostic(`appends whose records another node's records split: ${interleaved} of ${calls.length}`);
  } finally {
    await nodes[0].removeAll();
    await Promise.all(nodes.map((n) => n.close()));
  }
});

test('one of three servers killed between appends: acknowledged records stay readable and appends go on', { timeout: 180_000 }, async (t) => {
  const why = shared.skip();
  if (why) return t.skip(why);
  const c = shared.get();
  const logs = await JetStreamLogProvider.connect({ servers: c.servers, clock: systemClock, replicas: 3, prefix: prefix(), report: () => undefined });
  try {
    const log = await logs.open('ingest', 'ingest');
    const acked: string[] = [];
    const put = async (tag: string, n: number) => {
      const batch = Array.from({ length: n }, (_, i) => `${tag}-${i}`);
      await log.append(batch);
      acked.push(...batch);
    };
    for (let i = 0; i < 10; i++) await put(`before${i}`, 5);
    // The server this client is connected to may be the one killed: the client fails over.
    await c.kill(0);
    // Appends go on once JetStream has re-elected the stream's leader (bounded retries of a retryable error).
    for (let i = 0; i < 10; i++) await untilStored(() => put(`after${i}`, 5));
    const stored = (await retrying(() => readAll(log, 0, 500))).map((r) => r.payload.toString());
    // Every acknowledged record is there, once each in the order acknowledged (a failed append may have left a partial batch).
    const ackedSet = new Set(acked);
    assert.deepEqual(stored.filter((s, i) => ackedSet.has(s) && stored.indexOf(s) === i), acked);
    await c.restart(0);
    await untilStored(() => put('restarted', 3));
    assert.ok((await retrying(() => readAll(log, 0, 500))).length >= acked.length);
    await log.close();
  } finally {
    await logs.removeAll().catch(() => undefined);
    await logs.close();
  }
});

test('a NATS outage fails appends with LogWriteError, shows in health, and writes recover by themselves', { timeout: 180_000 }, async (t) => {
  const why = shared.skip();
  if (why) return t.skip(why);
  const c = shared.get();
  const logs = await JetStreamLogProvider.connect({ servers: c.servers, clock: systemClock, replicas: 3, prefix: prefix(), requestTimeoutMs: 2000, report: () => undefined });
  try {
    const log = await logs.open('kinesis', 'outage', 'shardId-000000000000');
    await log.append(['before']);
    for (let i = 0; i < 3; i++) await c.kill(i);
    const err = await log.append(['during']).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof LogWriteError, `expected a LogWriteError, got ${String(err)}`);
    assert.match(err.code ?? '', /^NATS_|^JS_/);
    assert.equal(err.diskFull, false);
    // A read meanwhile: tried again within its bound, then LogUnavailableError (protocols answer 503).
    const readErr = await log.read(0).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(readErr instanceof LogUnavailableError, `expected a LogUnavailableError, got ${String(readErr)}`);
    const h = logs.health().kinesis;
    assert.equal(h.failingLogs, 1);
    assert.ok(h.writeFailures >= 1);
    for (let i = 0; i < 3; i++) c.revive(i);
    await c.waitReady();
    await untilStored(() => log.append(['after']));
    assert.equal(log.health().failing, undefined, 'writes succeed again');
    assert.equal(logs.health().kinesis.failingLogs, 0);
    const stored = (await readAll(log)).map((r) => r.payload.toString());
    assert.equal(stored[0], 'before');
    assert.equal(stored[stored.length - 1], 'after');
    await log.close();
  } finally {
    await logs.removeAll().catch(() => undefined);
    await logs.close();
  }
});

test('servers that stop answering (SIGSTOP, connections open): a read or a time search fails within its bound as LogUnavailableError, never as an empty range, and reads the same records once they answer again', { timeout: 180_000 }, async (t) => {
  const why = shared.skip();
  if (why) return t.skip(why);
  const c = shared.get();
  const timeoutMs = 3000;
  const logs = await JetStreamLogProvider.connect({ servers: c.servers, clock: systemClock, replicas: 3, prefix: prefix(), requestTimeoutMs: timeoutMs, report: () => undefined });
  let paused = false;
  try {
    const log = await logs.open('ingest', 'ingest');
    await log.append(['a', 'b', 'c', 'd', 'e']);
    // A first read leaves the sequential reader at offset 2, as a consumer following the log does.
    assert.deepEqual((await log.read(0, { maxRecords: 2 })).records.map((r) => r.payload.toString()), ['a', 'b']);
    paused = true;
    for (let i = 0; i < 3; i++) await c.pause(i);
    // Before: the ordered consumer's fetch waited forever; an empty fetch was answered as an empty
    // range, which a consumer steps over as a hole.
    const outcome = await Promise.race([
      log.read(2).then(
        (r) => `resolved with ${r.records.length} records, next offset ${r.nextOffset}`,
        (e: unknown) => e,
      ),
      new Promise((resolve) => setTimeout(() => resolve('still waiting after 5x the bound'), 5 * timeoutMs).unref()),
    ]);
    assert.ok(outcome instanceof LogUnavailableError, `expected a LogUnavailableError, got ${String(outcome)}`);
    // Finding a time's offset (Kinesis AT_TIMESTAMP, retention) is a search of requests: one bound, the same error.
    const search = await log.offsetForTimestamp(Date.now() + 1).then(
      (o) => `resolved with offset ${o}`,
      (e: unknown) => e,
    );
    assert.ok(search instanceof LogUnavailableError, `expected a LogUnavailableError, got ${String(search)}`);
    for (let i = 0; i < 3; i++) c.resume(i);
    paused = false;
    assert.deepEqual((await retrying(() => log.read(2))).records.map((r) => r.payload.toString()), ['c', 'd', 'e']);
    await log.close();
  } finally {
    if (paused) for (let i = 0; i < 3; i++) c.resume(i);
    await logs.removeAll().catch(() => undefined);
    await logs.close();
  }
});

test('a read the NATS cluster cannot serve: GetRecords through the SDK gets a retryable 503 ServiceUnavailableException, not an internal error', { timeout: 180_000 }, async (t) => {
  const why = shared.skip();
  if (why) return t.skip(why);
  const c = shared.get();
  const p = prefix();
  const ts = await startTestServer({ config: { natsUrl: c.servers, natsReplicas: 3 }, deps: { natsPrefix: p } });
  const k = kinesisClient(ts.server);
  let killed = false;
  try {
    await k.send(new CreateStreamCommand({ StreamName: 'outage', ShardCount: 1 }));
    const deadline = Date.now() + 10_000;
    while ((await k.send(new DescribeStreamSummaryCommand({ StreamName: 'outage' }))).StreamDescriptionSummary!.StreamStatus !== 'ACTIVE') {
      assert.ok(Date.now() < deadline, 'stream ACTIVE within 10 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    await k.send(new PutRecordCommand({ StreamName: 'outage', PartitionKey: 'k', Data: Buffer.from('before') }));
    const it = (await k.send(new GetShardIteratorCommand({ StreamName: 'outage', ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
    killed = true;
    for (let i = 0; i < 3; i++) await c.kill(i);
    const e = await k.send(new GetRecordsCommand({ ShardIterator: it })).then(
      () => undefined,
      (err: { name?: string; $metadata?: { httpStatusCode?: number } }) => err,
    );
    assert.ok(e, 'GetRecords failed while no NATS server answered');
    assert.equal(e.$metadata?.httpStatusCode, 503);
    assert.equal(e.name, 'ServiceUnavailableException');
  } finally {
    if (killed) {
      for (let i = 0; i < 3; i++) c.revive(i);
      await c.waitReady();
    }
    k.destroy();
    await ts.close();
    const cleanup = await JetStreamLogProvider.connect({ servers: c.servers, clock: systemClock, prefix: p });
    await cleanup.removeAll().catch(() => undefined);
    await cleanup.close();
  }
});
