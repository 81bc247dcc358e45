import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../src/clock.js';
import { MAX_RECORD_BYTES, SegmentLog } from '../src/log/segment-log.js';
import { assertRecords, fill, readAll } from './helpers/log-contract.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-log-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function segmentFiles(dir: string, ext = '.log'): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith(ext)).sort();
}

test('round trip across batches and segments, reopen, index files rebuilt', async (t) => {
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

  // Reads across segment boundaries from an index entry's middle (limits: the contract suite).
  assertRecords((await log.read(333, { maxRecords: 100 })).records, 333, 433);

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
  // Contiguity is in the contract suite; here: group commit (one sync for many appends) while rolling.
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

// Adapter-neutral behaviour (reads, limits, timestamps, waitFor, offsetForTimestamp, retention's
// visible effect, checkConsumer, reopen, concurrency) is in the contract suite (log-contract.test.ts).

test('oversized records are rejected without taking offsets, and destroy removes the files', async (t) => {
  const dir = join(await tempDir(t), 'nested', 'log');
  const log = await SegmentLog.open(dir, { fsync: false });
  await assert.rejects(log.append([Buffer.alloc(MAX_RECORD_BYTES + 1)]), RangeError);
  await assert.rejects(log.append(['x'.repeat(MAX_RECORD_BYTES + 1)]), RangeError);
  assert.equal(log.endOffset(), 0);
  await log.append([Buffer.from('x')]);
  await log.destroy();
  await assert.rejects(access(dir));
});

