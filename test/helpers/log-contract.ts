// The Log / LogProvider contract: every behaviour the callers (ingest, Kinesis shards, Firehose
// buffers, delivery workers) rely on, written once and run against each adapter (the segment log,
// JetStream on one server, JetStream on a 3-node cluster). Adapter-specific behaviour (segment
// damage and crash recovery, whole-segment retention granularity) stays in its own test files.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ManualClock, type Clock } from '../../src/clock.js';
import type { Log, LogRecord } from '../../src/log/log.js';
import type { LogProvider } from '../../src/log/provider.js';

export interface LogAdapter {
  name: string;
  /** Why the adapter cannot run here (its service is unreachable), else undefined. */
  skip(): Promise<string | undefined>;
  /**
   * A fresh provider with its own namespace, using `clock`; `t.after` cleans up what it stored.
   * `small` asks for small storage units (segments) so that retention has something to delete.
   */
  provider(t: TestContext, clock: Clock): Promise<LogProvider>;
  /** The adapter stores a payload whose dedup id it stored recently only once. */
  dedupsIds: boolean;
}

/** Distinct, varied-length (including empty) and partly binary payload for record number `n`. */
export function payloadFor(n: number): Buffer {
  const len = (n * 7919) % 300;
  const buf = Buffer.alloc(len + 8);
  buf.writeDoubleLE(n, 0);
  for (let i = 0; i < len; i++) buf[8 + i] = (n + i * 31) & 0xff;
  return n % 13 === 0 ? Buffer.alloc(0) : buf;
}

export async function readAll(log: Log, from = 0, maxRecords = 37): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  let next = from;
  for (let rounds = 0; rounds < 100_000; rounds++) {
    const r = await log.read(next, { maxRecords });
    if (r.records.length === 0) return out;
    out.push(...r.records);
    next = r.nextOffset;
  }
  throw new Error('readAll did not reach the end');
}

/** Appends `batches` batches of varying size, record n carrying payloadFor(n); returns the end. */
export async function fill(log: Log, batches: number): Promise<number> {
  let n = log.endOffset();
  for (let b = 0; b < batches; b++) {
    const size = 1 + ((b * 5) % 11);
    const r = await log.append(Array.from({ length: size }, (_, i) => payloadFor(n + i)));
    assert.equal(r.firstOffset, n);
    assert.equal(r.offsets, undefined, 'a single writer gets contiguous offsets');
    n += size;
  }
  return n;
}

export function assertRecords(records: { offset: number; payload: Buffer }[], from: number, to: number): void {
  assert.equal(records.length, to - from);
  records.forEach((r, i) => {
    assert.equal(r.offset, from + i);
    assert.ok(r.payload.equals(payloadFor(from + i)), `payload of record ${from + i}`);
  });
}

const uniq = (): string => `l-${randomUUID().slice(0, 8)}`;

/** Registers the contract's tests for one adapter. */
export function logContract(a: LogAdapter): void {
  const t0 = 1_800_000_000_000;
  const each = (title: string, fn: (t: TestContext, logs: LogProvider, clock: ManualClock) => Promise<void>) =>
    test(`${a.name}: ${title}`, { timeout: 120_000 }, async (t) => {
      const why = await a.skip();
      if (why) return t.skip(why);
      const clock = new ManualClock(t0);
      const logs = await a.provider(t, clock);
      await fn(t, logs, clock);
    });

  each('append and read: offsets, limits, payloads owned by the caller', async (_t, logs) => {
    const log = await logs.open('kinesis', uniq(), 'shardId-000000000000');
    assert.equal(log.startOffset(), 0);
    assert.equal(log.endOffset(), 0);
    assert.equal((await log.append([])).firstOffset, 0, 'an empty batch takes no offsets');
    const end = await fill(log, 30);
    assert.equal(log.endOffset(), end);
    assertRecords(await readAll(log), 0, end);
    assertRecords(await readAll(log, 0, 10_000), 0, end);
    assertRecords(await readAll(log, 33), 33, end);

    const some = await log.read(5, { maxRecords: 7 });
    assertRecords(some.records, 5, 12);
    assert.equal(some.nextOffset, 12);
    // Not the continuation of the last read: a reader must not assume sequential use.
    assertRecords((await log.read(2, { maxRecords: 2 })).records, 2, 4);

    const byBytes = await log.read(40, { maxBytes: 1000 });
    const total = byBytes.records.reduce((s, r) => s + r.payload.length, 0);
    assert.ok(total <= 1000);
    assert.ok(total + payloadFor(byBytes.nextOffset).length > 1000, 'stopped early');
    assertRecords(byBytes.records, 40, byBytes.nextOffset);
    assertRecords((await log.read(41, { maxBytes: 1 })).records, 41, 42);

    assert.deepEqual(await log.read(end), { records: [], nextOffset: end });
    assert.deepEqual(await log.read(end + 50), { records: [], nextOffset: end + 50 });
    await assert.rejects(log.read(Number.NaN), RangeError);

    const first = await log.read(1, { maxRecords: 1 });
    first.records[0].payload.fill(0xee);
    assertRecords((await log.read(1, { maxRecords: 1 })).records, 1, 2);

    const texts = ['plain', 'ünïcødé ✓ 𝄞', '', '{"json":true}\n'];
    const r = await log.append([...texts, Buffer.from([0, 255, 1])]);
    assert.equal(r.firstOffset, end);
    assert.deepEqual(
      (await log.read(end)).records.map((x) => x.payload),
      [...texts.map((s) => Buffer.from(s, 'utf8')), Buffer.from([0, 255, 1])],
    );
    await log.close();
    await assert.rejects(log.append(['y']), /closed/);
    await assert.rejects(log.read(0), /closed/);
  });

  each('reads of large records stop at maxBytes and still return one record past it', async (_t, logs) => {
    const log = await logs.open('firehose', uniq());
    const big = (i: number) => Buffer.alloc(100_000, i);
    for (let b = 0; b < 4; b++) await log.append(Array.from({ length: 10 }, (_, i) => big(b * 10 + i)));
    const r = await log.read(0, { maxBytes: 1_000_000 });
    assert.equal(r.records.length, 10);
    r.records.forEach((x, i) => assert.ok(x.payload.equals(big(i))));
    const one = await log.read(r.nextOffset, { maxBytes: 10 });
    assert.deepEqual([one.records.length, one.records[0].offset, one.nextOffset], [1, 10, 11]);
    const rest = await readAll(log, 11, 10_000);
    assert.deepEqual(rest.map((x) => x.offset), Array.from({ length: 29 }, (_, i) => 11 + i));
    await log.close();
  });

  each('timestamps come from the log clock, never go backwards, and match the append result', async (_t, logs, clock) => {
    const log = await logs.open('ingest', uniq());
    const a = await log.append(['a', 'b']);
    assert.equal(a.timestamp, t0);
    clock.advance(1500);
    const b = await log.append(['c']);
    assert.equal(b.timestamp, t0 + 1500);
    clock.set(t0 - 60_000); // a clock going backwards
    const c = await log.append(['d']);
    assert.equal(c.timestamp, t0 + 1500);
    const all = await readAll(log);
    assert.deepEqual(all.map((r) => r.timestamp), [t0, t0, t0 + 1500, t0 + 1500]);
    await log.close();
  });

  each('offsetForTimestamp matches a brute-force scan', async (_t, logs, clock) => {
    const log = await logs.open('kinesis', uniq(), 'shardId-000000000001');
    assert.equal(await log.offsetForTimestamp(0), 0);
    for (let b = 0; b < 40; b++) {
      clock.advance(b % 4 === 0 ? 0 : 10);
      await log.append(Array.from({ length: 1 + (b % 7) }, (_, i) => payloadFor(b * 100 + i)));
    }
    const all = await readAll(log);
    const expect = (ts: number) => all.find((r) => r.timestamp >= ts)?.offset ?? log.endOffset();
    const stamps = [0, t0, t0 + 1, ...all.filter((_, i) => i % 17 === 0).map((r) => r.timestamp)];
    for (const ts of [...stamps, ...stamps.map((s) => s + 5), all[all.length - 1].timestamp + 1]) {
      assert.equal(await log.offsetForTimestamp(ts), expect(ts), `ts ${ts}`);
    }
    await log.close();
  });

  each('waitFor resolves on append, times out, and answers false once closed', async (_t, logs) => {
    const log = await logs.open('firehose', uniq());
    assert.equal(await log.waitFor(0, 50), false);
    const waiting = log.waitFor(0, 60_000);
    const later = log.waitFor(1, 60_000);
    await log.append(['a']);
    assert.equal(await waiting, true);
    assert.equal(await log.waitFor(0, 50), true);
    const pending = log.waitFor(5, 60_000);
    await log.close();
    assert.equal(await later, false);
    assert.equal(await pending, false);
  });

  each('deleteOlderThan removes old records only, reads from trimmed offsets start at the start', async (_t, logs, clock) => {
    const log = await logs.open('kinesis', uniq(), 'shardId-000000000002');
    const firstOfMinute: number[] = [];
    for (let m = 0; m < 5; m++) {
      clock.set(t0 + m * 60_000);
      firstOfMinute.push(log.endOffset());
      for (let b = 0; b < 3; b++) await log.append([Buffer.alloc(200, m), Buffer.alloc(200, m)]);
    }
    const end = log.endOffset();
    assert.equal(await log.deleteOlderThan(t0), 0);
    assert.equal(log.startOffset(), 0);
    const removed = await log.deleteOlderThan(t0 + 90_000);
    // Minutes 0 and 1 are older than +90s; an adapter may keep some of them (whole segments), never newer ones.
    assert.ok(removed > 0 && removed <= firstOfMinute[2], `removed ${removed}`);
    assert.equal(log.startOffset(), removed);
    const rest = await readAll(log, 0);
    assert.equal(rest[0].offset, removed, 'a read below the start reads from the start');
    assert.equal(rest.length, end - removed);
    assert.ok(rest.filter((r) => r.timestamp >= t0 + 90_000).length === end - firstOfMinute[2]);
    assert.ok((await log.offsetForTimestamp(0)) >= removed);
    const after = await log.append(['after retention']);
    assert.equal(after.firstOffset, end);
    assert.equal(log.endOffset(), end + 1);
    await log.close();
  });

  each('checkConsumer reports a checkpoint beyond the end and never hands its offsets out again', async (_t, logs) => {
    const log = await logs.open('ingest', uniq());
    await log.append(['a', 'b', 'c']);
    assert.equal(await log.checkConsumer('worker A', 2), undefined);
    assert.equal(await log.checkConsumer('worker A', 3), undefined);
    const gap = await log.checkConsumer('worker B', 10);
    assert.ok(gap);
    assert.deepEqual([gap.consumer, gap.checkpoint, gap.logEnd, gap.records], ['worker B', 10, 3, 7]);
    assert.match(gap.message, /beyond the end/);
    assert.equal(await log.checkConsumer('worker B', 10), gap, 'reported again to the same consumer');
    assert.equal(log.endOffset(), 10);
    assert.equal((await log.append(['d'])).firstOffset, 10);
    assert.equal(log.health().checkpointGaps, 1);
    assert.equal(logs.health().ingest.checkpointGaps, 1);
    await log.close();
  });

  each('exists, remove and destroy, by log and by group; names with . - _ never collide', async (_t, logs) => {
    const group = uniq();
    assert.equal(await logs.exists('kinesis', group), false);
    const names = ['.', '..', 'a.b', 'a_b', 'a-b', 'a_2Eb', 'A.B'];
    for (const [i, n] of names.entries()) {
      const log = await logs.open('kinesis', group, n);
      await log.append([`record of ${i}`]);
      await log.close();
    }
    // The same names under another kind are other logs.
    const other = await logs.open('firehose', group, 'a.b');
    assert.equal(other.endOffset(), 0);
    await other.destroy();
    assert.equal(await logs.exists('firehose', group, 'a.b'), false);
    for (const [i, n] of names.entries()) {
      assert.equal(await logs.exists('kinesis', group, n), true);
      const log = await logs.open('kinesis', group, n);
      assert.deepEqual((await log.read(0)).records.map((r) => r.payload.toString()), [`record of ${i}`]);
      await log.close();
    }
    assert.equal(await logs.exists('kinesis', group), true, 'a group exists while one of its logs does');
    await logs.remove('kinesis', group, 'a.b');
    assert.equal(await logs.exists('kinesis', group, 'a.b'), false);
    assert.equal(await logs.exists('kinesis', group, 'a_b'), true);
    await logs.remove('kinesis', group);
    assert.equal(await logs.exists('kinesis', group), false);
    assert.equal(await logs.exists('kinesis', group, '..'), false);
    const fresh = await logs.open('kinesis', group, 'a.b');
    assert.equal(fresh.endOffset(), 0, 'a removed log opens empty');
    await fresh.destroy();
    await assert.rejects(fresh.append(['y']), /closed/);
    for (const bad of ['a/b', '', '../x', 'a b']) await assert.rejects(logs.open('kinesis', bad), /invalid log name/);
  });

  each('a log reopened after close keeps its records, start and end', async (_t, logs, clock) => {
    const name = uniq();
    let log = await logs.open('firehose', name);
    const end = await fill(log, 20);
    await log.close();
    log = await logs.open('firehose', name);
    assert.equal(log.endOffset(), end);
    assert.equal(log.startOffset(), 0);
    assertRecords(await readAll(log), 0, end);
    clock.advance(1000);
    const end2 = await fill(log, 5);
    assertRecords(await readAll(log, end - 3), end - 3, end2);
    await log.close();
  });

  each('concurrent appends get contiguous ranges per batch', async (_t, logs) => {
    const log = await logs.open('kinesis', uniq(), 'shardId-000000000003');
    const sizes = Array.from({ length: 100 }, (_, i) => 1 + (i % 3));
    const tag = (call: number, i: number) => Buffer.from(`call ${call} record ${i}`);
    const results = await Promise.all(sizes.map((n, call) => log.append(Array.from({ length: n }, (_, i) => tag(call, i)))));
    const total = sizes.reduce((x, y) => x + y, 0);
    results.forEach((r) => assert.equal(r.offsets, undefined));
    const ranges = results.map((r, call) => [r.firstOffset, r.firstOffset + sizes[call]]).sort((x, y) => x[0] - y[0]);
    assert.equal(ranges[0][0], 0);
    for (let i = 1; i < ranges.length; i++) assert.equal(ranges[i][0], ranges[i - 1][1]);
    assert.equal(log.endOffset(), total);
    const all = await readAll(log, 0, 1000);
    assert.equal(all.length, total);
    results.forEach((r, call) => {
      for (let i = 0; i < sizes[call]; i++) assert.ok(all[r.firstOffset + i].payload.equals(tag(call, i)));
    });
    await log.close();
  });

  each('health: open logs counted by kind, no failures on a healthy store', async (_t, logs) => {
    const a = await logs.open('ingest', uniq());
    const b = await logs.open('kinesis', uniq(), 'shardId-000000000000');
    await a.append(['x']);
    const h = logs.health();
    assert.equal(h.ingest.open, 1);
    assert.equal(h.kinesis.open, 1);
    assert.equal(h.firehose.open, 0);
    for (const k of [h.ingest, h.kinesis]) {
      assert.equal(k.writeFailures, 0);
      assert.equal(k.failingLogs, 0);
      assert.equal(k.recordsLost, 0);
    }
    assert.equal(a.health().failing, undefined);
    await a.close();
    await b.close();
    assert.equal(logs.health().ingest.open, 0);
    assert.equal(logs.health().kinesis.open, 0);
  });

  each(`dedup ids: ${a.dedupsIds ? 'a payload whose id was stored is stored once' : 'accepted and ignored'}`, async (_t, logs) => {
    const log = await logs.open('ingest', uniq());
    const first = await log.append(['e1', 'e2'], { ids: ['app/ep/1', 'app/ep/2'] });
    assert.equal(first.firstOffset, 0);
    const retry = await log.append(['e3', 'e2'], { ids: [undefined, 'app/ep/2'] });
    const all = (await readAll(log)).map((r) => r.payload.toString());
    if (a.dedupsIds) {
      assert.deepEqual(all, ['e1', 'e2', 'e3']);
      assert.deepEqual([retry.firstOffset, retry.offsets], [2, [2, 1]], 'the duplicate keeps the offset of the record stored first');
    } else {
      assert.deepEqual(all, ['e1', 'e2', 'e3', 'e2']);
      assert.deepEqual([retry.firstOffset, retry.offsets], [2, undefined]);
    }
    await log.close();
  });
}
