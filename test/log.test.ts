import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../src/clock.js';
import type { Log, LogRecord } from '../src/log/log.js';
import { MAX_RECORD_BYTES, SegmentLog } from '../src/log/segment-log.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-log-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Distinct, varied-length (including empty) and partly binary payload for record number `n`. */
function payloadFor(n: number): Buffer {
  const len = (n * 7919) % 300;
  const buf = Buffer.alloc(len + 8);
  buf.writeDoubleLE(n, 0);
  for (let i = 0; i < len; i++) buf[8 + i] = (n + i * 31) & 0xff;
  return n % 13 === 0 ? Buffer.alloc(0) : buf;
}

async function readAll(log: Log, from = 0, maxRecords = 37): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  let next = from;
  for (;;) {
    const r = await log.read(next, { maxRecords });
    if (r.records.length === 0) return out;
    out.push(...r.records);
    next = r.nextOffset;
  }
}

async function segmentFiles(dir: string, ext = '.log'): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith(ext)).sort();
}

/** Appends `batches` batches of varying size, record n carrying payloadFor(n). */
async function fill(log: SegmentLog, batches: number): Promise<number> {
  let n = log.endOffset();
  for (let b = 0; b < batches; b++) {
    const size = 1 + ((b * 5) % 11);
    const r = await log.append(Array.from({ length: size }, (_, i) => payloadFor(n + i)));
    assert.equal(r.firstOffset, n);
    n += size;
  }
  return n;
}

function assertRecords(records: { offset: number; payload: Buffer }[], from: number, to: number): void {
  assert.equal(records.length, to - from);
  records.forEach((r, i) => {
    assert.equal(r.offset, from + i);
    assert.ok(r.payload.equals(payloadFor(from + i)), `payload of record ${from + i}`);
  });
}

test('round trip across batches and segments, limits, reopen', async (t) => {
  const dir = await tempDir(t);
  let log = await SegmentLog.open(dir, { segmentBytes: 2048 });
  const end = await fill(log, 120);
  assert.equal(log.startOffset(), 0);
  assert.equal(log.endOffset(), end);
  const segs = await segmentFiles(dir);
  assert.ok(segs.length > 5, `expected several segments, got ${segs.length}`);
  assert.equal(segs[0], '00000000000000000000.log');
  assert.deepEqual(await segmentFiles(dir, '.idx'), segs.slice(0, -1).map((s) => s.replace('.log', '.idx')));

  assertRecords(await readAll(log), 0, end);
  assertRecords(await readAll(log, 0, 10_000), 0, end);
  assertRecords(await readAll(log, 333), 333, end);

  const some = await log.read(5, { maxRecords: 7 });
  assertRecords(some.records, 5, 12);
  assert.equal(some.nextOffset, 12);

  const byBytes = await log.read(100, { maxBytes: 1000 });
  const total = byBytes.records.reduce((s, r) => s + r.payload.length, 0);
  assert.ok(total <= 1000);
  assert.ok(total + payloadFor(byBytes.nextOffset).length > 1000, 'stopped early');
  assertRecords(byBytes.records, 100, byBytes.nextOffset);
  const one = await log.read(101, { maxBytes: 1 });
  assertRecords(one.records, 101, 102);

  assert.deepEqual(await log.read(end), { records: [], nextOffset: end });
  assert.deepEqual(await log.read(end + 50), { records: [], nextOffset: end + 50 });

  // Returned payloads are owned by the caller.
  const first = await log.read(1, { maxRecords: 1 });
  first.records[0].payload.fill(0xee);
  assertRecords((await log.read(1, { maxRecords: 1 })).records, 1, 2);

  await log.close();
  log = await SegmentLog.open(dir, { segmentBytes: 2048 });
  assert.equal(log.endOffset(), end);
  assertRecords(await readAll(log), 0, end);
  const end2 = await fill(log, 10);
  assertRecords(await readAll(log, end - 3), end - 3, end2);
  await log.close();

  // Lost and damaged index files are rebuilt from the segments themselves.
  const idx = await segmentFiles(dir, '.idx');
  await rm(join(dir, idx[0]));
  const damaged = await readFile(join(dir, idx[1]));
  damaged[20] ^= 0xff;
  await writeFile(join(dir, idx[1]), damaged);
  log = await SegmentLog.open(dir, { segmentBytes: 2048 });
  assertRecords(await readAll(log), 0, end2);
  assert.ok(!(await readFile(join(dir, idx[1]))).equals(damaged), 'index rewritten');
  await access(join(dir, idx[0]));
  await log.close();
});

test('concurrent appends share syncs and get contiguous ranges', async (t) => {
  const dir = await tempDir(t);
  const log = await SegmentLog.open(dir, { segmentBytes: 4096 });
  const sizes = Array.from({ length: 200 }, (_, i) => 1 + (i % 3));
  const tag = (call: number, i: number) => Buffer.from(`call ${call} record ${i}`);
  const results = await Promise.all(
    sizes.map((n, call) => log.append(Array.from({ length: n }, (_, i) => tag(call, i)))),
  );
  const total = sizes.reduce((a, b) => a + b, 0);
  const ranges = results.map((r, call) => [r.firstOffset, r.firstOffset + sizes[call]]).sort((a, b) => a[0] - b[0]);
  assert.equal(ranges[0][0], 0);
  for (let i = 1; i < ranges.length; i++) assert.equal(ranges[i][0], ranges[i - 1][1]);
  assert.equal(ranges[ranges.length - 1][1], total);
  assert.equal(log.endOffset(), total);

  const st = log.stats();
  assert.equal(st.appends, 200);
  t.diagnostic(`syncs for 200 concurrent appends: ${st.syncs}`);
  assert.ok(st.syncs < 20, `expected group commit, got ${st.syncs} syncs for 200 appends`);
  assert.ok((await segmentFiles(dir)).length > 1, 'rolled while group committing');

  const all = await readAll(log);
  assert.equal(all.length, total);
  results.forEach((r, call) => {
    for (let i = 0; i < sizes[call]; i++) assert.ok(all[r.firstOffset + i].payload.equals(tag(call, i)));
  });
  await log.close();
});

test('retention deletes whole old segments only', async (t) => {
  const dir = await tempDir(t);
  const clock = new ManualClock(1_000_000);
  const log = await SegmentLog.open(dir, { segmentBytes: 1000, clock });
  const bases: number[] = [];
  for (let s = 0; s < 5; s++) {
    clock.set(1_000_000 + s * 60_000);
    bases.push(log.endOffset());
    // Three 400-byte batches fill one segment (rolled once it reaches 1000 bytes).
    for (let b = 0; b < 3; b++) await log.append([Buffer.alloc(200, s), Buffer.alloc(200, s)]);
  }
  assert.deepEqual(
    await segmentFiles(dir),
    bases.map((b) => `${String(b).padStart(20, '0')}.log`),
  );
  const sizeBefore = (await Promise.all((await segmentFiles(dir)).map((f) => stat(join(dir, f))))).reduce(
    (s, x) => s + x.size,
    0,
  );

  assert.equal(await log.deleteOlderThan(1_000_000), 0);
  // Segments stamped at +0 and +60s are entirely older than +90s; the one at +120s is not.
  assert.equal(await log.deleteOlderThan(1_000_000 + 90_000), bases[2]);
  assert.equal(log.startOffset(), bases[2]);
  assert.deepEqual(await segmentFiles(dir), bases.slice(2).map((b) => `${String(b).padStart(20, '0')}.log`));
  assert.ok(!(await segmentFiles(dir, '.idx')).includes('00000000000000000000.idx'));
  const sizeAfter = (await Promise.all((await segmentFiles(dir)).map((f) => stat(join(dir, f))))).reduce(
    (s, x) => s + x.size,
    0,
  );
  assert.ok(sizeAfter < sizeBefore);

  const fromZero = await log.read(0, { maxRecords: 2 });
  assert.equal(fromZero.records[0].offset, bases[2]);
  assert.ok(fromZero.records[0].payload.equals(Buffer.alloc(200, 2)));

  // Even when everything is old, the active segment stays.
  const end = log.endOffset();
  assert.equal(await log.deleteOlderThan(Number.MAX_SAFE_INTEGER), bases[4] - bases[2]);
  assert.equal(log.startOffset(), bases[4]);
  assert.equal(log.endOffset(), end);
  assert.deepEqual(await segmentFiles(dir), [`${String(bases[4]).padStart(20, '0')}.log`]);
  assert.equal((await readAll(log, 0)).length, end - bases[4]);
  const r = await log.append([Buffer.from('after retention')]);
  assert.equal(r.firstOffset, end);
  await log.close();

  const reopened = await SegmentLog.open(dir, { clock });
  assert.equal(reopened.startOffset(), bases[4]);
  assert.equal(reopened.endOffset(), end + 1);
  await reopened.close();
});

test('offsetForTimestamp matches a brute-force scan', async (t) => {
  const dir = await tempDir(t);
  const clock = new ManualClock(5_000);
  const log = await SegmentLog.open(dir, { segmentBytes: 8 * 1024, clock });
  assert.equal(await log.offsetForTimestamp(0), 0);
  for (let b = 0; b < 150; b++) {
    clock.advance(b % 4 === 0 ? 0 : 10);
    await log.append(Array.from({ length: 1 + (b % 30) }, (_, i) => payloadFor(b * 100 + i)));
  }
  clock.set(1_000); // a clock going backwards must not break ordering
  const back = await log.append([Buffer.from('late')]);
  const all = await readAll(log);
  assert.ok(back.timestamp >= all[all.length - 2].timestamp);
  for (let i = 1; i < all.length; i++) assert.ok(all[i].timestamp >= all[i - 1].timestamp);

  const expect = (ts: number) => all.find((r) => r.timestamp >= ts)?.offset ?? log.endOffset();
  const stamps = [0, 5_000, 5_001, ...all.filter((_, i) => i % 17 === 0).map((r) => r.timestamp)];
  for (const ts of [...stamps, ...stamps.map((s) => s + 5), all[all.length - 1].timestamp + 1]) {
    assert.equal(await log.offsetForTimestamp(ts), expect(ts), `ts ${ts}`);
  }
  await log.close();
});

test('waitFor wakes on commit and times out', async (t) => {
  const dir = await tempDir(t);
  const log = await SegmentLog.open(dir);
  assert.equal(await log.waitFor(0, 50), false);
  const waiting = log.waitFor(0, 60_000);
  const later = log.waitFor(1, 60_000);
  await log.append([Buffer.from('a')]);
  assert.equal(await waiting, true);
  assert.equal(await log.waitFor(0, 50), true);
  const pending = log.waitFor(5, 60_000);
  await log.close();
  assert.equal(await later, false);
  assert.equal(await pending, false);
});

test('misuse is rejected and destroy removes the files', async (t) => {
  const dir = join(await tempDir(t), 'nested', 'log');
  const log = await SegmentLog.open(dir, { fsync: false });
  assert.equal((await log.append([])).firstOffset, 0);
  await assert.rejects(log.append([Buffer.alloc(MAX_RECORD_BYTES + 1)]), RangeError);
  assert.equal(log.endOffset(), 0);
  await log.append([Buffer.from('x')]);
  await assert.rejects(log.read(Number.NaN), RangeError);
  await log.destroy();
  await assert.rejects(access(dir));
  await assert.rejects(log.append([Buffer.from('y')]), /closed/);
  await assert.rejects(log.read(0), /closed/);
});

test('string payloads are stored as their UTF-8 bytes, mixed with Buffers', async (t) => {
  const dir = await tempDir(t);
  const log = await SegmentLog.open(dir, { fsync: false });
  const texts = ['plain', 'ünïcødé ✓ 𝄞', '', '{"json":true}\n'];
  const { firstOffset } = await log.append([...texts, Buffer.from([0, 255, 1])]);
  assert.equal(firstOffset, 0);
  await log.close();
  const reopened = await SegmentLog.open(dir, { fsync: false });
  const { records } = await reopened.read(0);
  assert.deepEqual(
    records.map((r) => r.payload),
    [...texts.map((s) => Buffer.from(s, 'utf8')), Buffer.from([0, 255, 1])],
  );
  await assert.rejects(reopened.append(['x'.repeat(MAX_RECORD_BYTES + 1)]), RangeError);
  assert.equal(reopened.endOffset(), 5, 'a rejected batch takes no offsets');
  await reopened.close();
});
