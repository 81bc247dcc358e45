// Damage handling of the segment log at the unit level: legacy (format 1) data directories, header
// fields restored from the CRC, segment headers, index files that lie, consumers' checkpoints
// beyond the end, the high-water mark, and write failures (disk full, failing fsync, failing
// truncate, failing segment creation) injected through the file seam.

import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import type { LogRecord } from '../src/log/log.js';
import { SegmentLog, SYNC_WRITE_MAX_BYTES } from '../src/log/segment-log.js';
import { HEADER_BYTES, SEGMENT_HEADER_BYTES, encodeIndexFile, SparseIndex } from '../src/log/format.js';
import { isDiskFull, LogWriteError, storageFailureText } from '../src/log/errors.js';
import { enospc, eio, faultyFs } from './helpers/faults.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-logdamage-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const payloadFor = (n: number): Buffer => Buffer.from(`record ${n} `.padEnd(30 + (n % 50), '.'));

async function readAll(log: SegmentLog, from = 0, maxRecords = 7): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for (let next = from; next < log.endOffset(); ) {
    const r = await log.read(next, { maxRecords });
    out.push(...r.records);
    assert.ok(r.nextOffset > next, 'reads always move on');
    next = r.nextOffset;
  }
  return out;
}

function assertHolds(records: LogRecord[], offsets: number[]): void {
  assert.deepEqual(
    records.map((r) => r.offset),
    offsets,
  );
  for (const r of records) assert.equal(r.payload.toString(), payloadFor(r.offset).toString(), `payload of ${r.offset}`);
}

const range = (from: number, to: number, except: number[] = []) => Array.from({ length: to - from }, (_, i) => from + i).filter((i) => !except.includes(i));

async function fill(dir: string, n: number, segmentBytes = 1024): Promise<void> {
  const log = await SegmentLog.open(dir, { segmentBytes });
  for (let i = 0; i < n; i += 4) await log.append(range(i, Math.min(n, i + 4)).map(payloadFor));
  await log.close();
}

const segmentsOf = async (dir: string) => (await readdir(dir)).filter((n) => n.endsWith('.log')).sort();
const recordBytes = (n: number) => HEADER_BYTES + payloadFor(n).length;
/** File position of record `n` in a segment starting at `base` written in batches of 4 from 0. */
const positionOf = (base: number, n: number) => SEGMENT_HEADER_BYTES + range(base, n).reduce((s, i) => s + recordBytes(i), 0);

async function flip(path: string, position: number, mask = 0x10): Promise<void> {
  const fh = await open(path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, position);
  b[0] ^= mask;
  await fh.write(b, 0, 1, position);
  await fh.close();
}

function v1Frame(offset: number, ts: number, payload: Buffer): Buffer {
  const buf = Buffer.alloc(24 + payload.length);
  buf.writeUInt32LE(payload.length, 0);
  buf.writeDoubleLE(offset, 8);
  buf.writeDoubleLE(ts, 16);
  payload.copy(buf, 24);
  buf.writeUInt32LE(crc32c(buf.subarray(8)), 4);
  return buf;
}

test('a data directory of format 1 opens: old records read, damage in them is skipped, new ones go to a format-2 segment', async (t) => {
  const dir = await tempDir(t);
  // Two legacy segments (0..9 and 10..19), the first with a legacy index, as an earlier release left them.
  const seg0 = Buffer.concat(range(0, 10).map((i) => v1Frame(i, 1000 + i, payloadFor(i))));
  const seg1 = Buffer.concat(range(10, 20).map((i) => v1Frame(i, 1000 + i, payloadFor(i))));
  await writeFile(join(dir, '00000000000000000000.log'), seg0);
  await writeFile(join(dir, '00000000000000000010.log'), seg1);
  const index = new SparseIndex();
  index.maybeAdd(0, 0, 1000);
  await writeFile(join(dir, '00000000000000000000.idx'), encodeIndexFile({ base: 0, end: 10, size: seg0.length, firstTs: 1000, lastTs: 1009, index }));
  // Damage the payload of record 13 (in the legacy last segment).
  const at13 = range(10, 13).reduce((s, i) => s + 24 + payloadFor(i).length, 0);
  await flip(join(dir, '00000000000000000010.log'), at13 + 24 + 5);

  const lines: string[] = [];
  let log = await SegmentLog.open(dir, { segmentBytes: 1024, report: (l) => lines.push(l) });
  assert.equal(log.endOffset(), 20);
  assertHolds(await readAll(log), range(0, 20, [13]));
  assert.equal(log.health().recordsLost, 1);
  assert.equal((await log.append([payloadFor(20), payloadFor(21)])).firstOffset, 20);
  await log.close();
  assert.deepEqual(await segmentsOf(dir), ['00000000000000000000.log', '00000000000000000010.log', '00000000000000000020.log']);
  const fresh = await readFile(join(dir, '00000000000000000020.log'));
  assert.equal(fresh.toString('latin1', 0, 4), 'PSL2', 'new records are in format 2');

  log = await SegmentLog.open(dir, { segmentBytes: 1024 });
  assertHolds(await readAll(log), range(0, 22, [13]));
  // Damage found by a read in the closed legacy segment that still has its index.
  await flip(join(dir, '00000000000000000000.log'), 24 * 4 + range(0, 4).reduce((s, i) => s + payloadFor(i).length, 0) + 30);
  await log.close();
  log = await SegmentLog.open(dir, { segmentBytes: 1024 });
  assertHolds(await readAll(log), range(0, 22, [4, 13]));
  assert.equal(log.health().recordsLost, 1);
  await log.close();
});

test('damage confined to the magic, length or offset field restores the record; nothing is lost', async (t) => {
  const dir = await tempDir(t);
  await fill(dir, 40);
  const segs = await segmentsOf(dir);
  const last = join(dir, segs[segs.length - 1]);
  const base = Number(segs[segs.length - 1].slice(0, 20));
  const first = join(dir, segs[0]);
  await flip(first, positionOf(0, 1) + 1, 0x01); // magic of record 1
  await flip(first, positionOf(0, 2) + 9, 0x40); // length of record 2
  await flip(first, positionOf(0, 3) + 12 + 6, 0x08); // offset of record 3
  await flip(last, positionOf(base, 39) + 8, 0x20); // length of the very last record (looks torn, is not)
  const lines: string[] = [];
  const log = await SegmentLog.open(dir, { segmentBytes: 1024, report: (l) => lines.push(l) });
  assertHolds(await readAll(log), range(0, 40));
  const h = log.health();
  assert.equal(h.recordsLost, 0);
  assert.equal(h.recordsRepaired, 4, lines.join('\n'));
  assert.equal(h.tornBytes, 0);
  await log.close();
});

test('segment headers: one damaged copy is restored from the other; with both gone the salt comes back from the records', async (t) => {
  const dir = await tempDir(t);
  await fill(dir, 30);
  const segs = await segmentsOf(dir);
  await flip(join(dir, segs[0]), 2); // first copy
  await flip(join(dir, segs[1]), 3);
  await flip(join(dir, segs[1]), 16 + 9); // both copies
  await rm(join(dir, segs[1].replace('.log', '.idx')), { force: true });
  const log = await SegmentLog.open(dir, { segmentBytes: 1024, report: () => {} });
  assertHolds(await readAll(log), range(0, 30));
  assert.equal(log.health().recordsLost, 0);
  await log.close();
  const header = (await readFile(join(dir, segs[1]))).subarray(0, 32);
  assert.ok(header.subarray(0, 16).equals(header.subarray(16, 32)), 'both copies written again');
});

test('index files are checked, not trusted: damaged, stale or lying ones are rebuilt and every record stays readable', async (t) => {
  const dir = await tempDir(t);
  await fill(dir, 200, 4096);
  const idx = (await readdir(dir)).filter((n) => n.endsWith('.idx')).sort();
  assert.ok(idx.length >= 3);
  // 1: a flipped byte (caught by the index's CRC); 2: cut short.
  await flip(join(dir, idx[0]), 30);
  const i1 = join(dir, idx[1]);
  await truncate(i1, (await stat(i1)).size - 5);
  // 3: a well-formed index (valid CRC) whose entry points into the middle of a record.
  const segPath = join(dir, idx[2].replace('.idx', '.log'));
  const base = Number(idx[2].slice(0, 20));
  const next = Number((await segmentsOf(dir))[3].slice(0, 20));
  const size = (await stat(segPath)).size;
  const lying = new SparseIndex();
  lying.maybeAdd(base, SEGMENT_HEADER_BYTES, 0);
  lying.maybeAdd(base + 20, SEGMENT_HEADER_BYTES + 5000, 0);
  await writeFile(join(dir, idx[2]), encodeIndexFile({ base, end: next, size, firstTs: 0, lastTs: 0, index: lying }));
  const lines: string[] = [];
  const log = await SegmentLog.open(dir, { segmentBytes: 4096, report: (l) => lines.push(l) });
  assertHolds(await readAll(log, 0, 13), range(0, 200));
  assertHolds((await log.read(base + 25, { maxRecords: 3 })).records, [base + 25, base + 26, base + 27]);
  const h = log.health();
  assert.equal(h.recordsLost, 0);
  assert.equal(h.indexRebuilds, 3, lines.join('\n'));
  await log.close();
});

test('a consumer checkpoint beyond the end is reported and the log continues after it, durably', async (t) => {
  const dir = await tempDir(t);
  await fill(dir, 10);
  let log = await SegmentLog.open(dir, { report: () => {} });
  assert.equal(await log.checkConsumer('loader', 10), undefined);
  const gap = await log.checkConsumer('loader', 25);
  assert.deepEqual({ ...gap, message: '' }, { consumer: 'loader', checkpoint: 25, logEnd: 10, records: 15, message: '' });
  assert.match(gap!.message, /beyond the end of the log \(10\)/);
  assert.equal(await log.checkConsumer('loader', 25), gap, 'asked again, the same gap');
  assert.equal(log.endOffset(), 25);
  // Another consumer that had passed the same lost records is told too.
  assert.equal((await log.checkConsumer('worker', 20))?.records, 10);
  assert.equal((await log.append([payloadFor(25)])).firstOffset, 25);
  // Once records are appended, a checkpoint up to the end is simply a consumer that read them.
  assert.equal(await log.checkConsumer('late', 26), undefined);
  assert.equal(log.health().checkpointGaps, 2);
  await log.close();
  log = await SegmentLog.open(dir, { report: () => {} });
  assert.equal(log.endOffset(), 26);
  assertHolds(await readAll(log), [...range(0, 10), 25]);
  assertHolds((await log.read(12)).records, [25]);
  assert.equal((await log.read(12)).nextOffset, 26);
  await log.close();
});

test('an active segment cut short after a clean close: the loss is reported and the lost offsets are not reused', async (t) => {
  const dir = await tempDir(t);
  await fill(dir, 30, 1 << 20);
  const [seg] = await segmentsOf(dir);
  await truncate(join(dir, seg), positionOf(0, 20) + 7);
  const lines: string[] = [];
  const log = await SegmentLog.open(dir, { report: (l) => lines.push(l) });
  assert.equal(log.endOffset(), 30);
  assert.equal(log.health().recordsLost, 10);
  assert.match(lines.join('\n'), /offsets 20\.\.29 \(10 records\) are lost/);
  assert.equal((await log.append([payloadFor(30)])).firstOffset, 30);
  assertHolds(await readAll(log), [...range(0, 20), 30]);
  await log.close();
});

test('disk full: the appends fail with a disk-full error, nothing is left behind, and the next append after space returns succeeds', async (t) => {
  const dir = await tempDir(t);
  let full = false;
  let truncateFails = 0;
  const fs = faultyFs({
    write: (path, bytes) => (full && path.endsWith('.log') ? { prefix: Math.floor(bytes / 2), error: enospc() } : undefined),
    truncate: () => (truncateFails > 0 ? (truncateFails--, eio('injected truncate failure')) : undefined),
  });
  const log = await SegmentLog.open(dir, { fs, report: () => {} });
  await log.append([payloadFor(0), payloadFor(1)]);
  const committed = (await stat(join(dir, '00000000000000000000.log'))).size;
  full = true;
  const err = await log.append([payloadFor(2), payloadFor(3)]).then(
    () => assert.fail('must fail'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof LogWriteError && err.diskFull && isDiskFull(err));
  assert.match(storageFailureText(err), /the server's disk is full \(ENOSPC\)/);
  assert.equal(log.health().failing?.diskFull, true);
  assert.equal((await stat(join(dir, '00000000000000000000.log'))).size, committed, 'the partial write was cut off');
  // Still full, and even the cleanup fails once: this append fails, the next one tries again.
  truncateFails = 1;
  await assert.rejects(log.append([payloadFor(2)]), /disk is full|writing the log failed \(EIO\)/);
  full = false;
  assert.equal((await log.append([payloadFor(2), payloadFor(3)])).firstOffset, 2);
  assert.equal(log.health().failing, undefined);
  assert.equal(log.health().writeFailures, 2);
  assertHolds(await readAll(log), range(0, 4));
  await log.close();
  const reopened = await SegmentLog.open(dir);
  assertHolds(await readAll(reopened), range(0, 4));
  assert.equal(reopened.health().tornBytes, 0, 'no garbage was left at the tail');
  await reopened.close();
});

test('disk full in a small round (written synchronously) and in one above SYNC_WRITE_MAX_BYTES (asynchronously): both fail alike and leave nothing behind', async (t) => {
  const dir = await tempDir(t);
  let full = false;
  const sizes: number[] = [];
  const fs = faultyFs({
    write: (path, bytes) => {
      if (!path.endsWith('.log')) return undefined;
      sizes.push(bytes);
      return full ? { prefix: Math.floor(bytes / 2), error: enospc() } : undefined;
    },
  });
  const log = await SegmentLog.open(dir, { fs, report: () => {} });
  const big = Array.from({ length: 4 }, (_, i) => Buffer.alloc(SYNC_WRITE_MAX_BYTES / 2, 97 + i));
  await log.append([payloadFor(0)]);
  await log.append(big);
  assert.ok(sizes.some((b) => b < SYNC_WRITE_MAX_BYTES) && sizes.some((b) => b > SYNC_WRITE_MAX_BYTES), 'both kinds of round were written');
  const committed = (await stat(join(dir, '00000000000000000000.log'))).size;
  full = true;
  for (const batch of [[payloadFor(5)], big]) {
    const err = await log.append(batch).then(
      () => assert.fail('must fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof LogWriteError && err.diskFull);
    assert.equal((await stat(join(dir, '00000000000000000000.log'))).size, committed, 'the partial write was cut off');
  }
  full = false;
  assert.equal((await log.append([payloadFor(5)])).firstOffset, 5);
  assert.equal((await log.append(big)).firstOffset, 6);
  // Offsets 0 and 5 small, 1-4 and 6-9 the big batch: exactly the acknowledged records.
  const expected = [payloadFor(0), ...big, payloadFor(5), ...big];
  const same = (records: LogRecord[]) => {
    assert.deepEqual(records.map((r) => r.offset), range(0, 10));
    for (const r of records) assert.ok(r.payload.equals(expected[r.offset]), `payload of ${r.offset}`);
  };
  same(await readAll(log, 0, 100));
  await log.close();
  const reopened = await SegmentLog.open(dir);
  same(await readAll(reopened, 0, 100));
  assert.equal(reopened.health().tornBytes, 0);
  await reopened.close();
});

test('a segment that cannot be created (disk full at a roll) fails that append only', async (t) => {
  const dir = await tempDir(t);
  let full = false;
  const fs = faultyFs({ open: (path, flags) => (full && flags === 'w+' && path.endsWith('.log') ? enospc() : undefined) });
  const log = await SegmentLog.open(dir, { fs, segmentBytes: 300, report: () => {} });
  let n = 0;
  while ((await segmentsOf(dir)).length < 2) await log.append([payloadFor(n++)]);
  const before = (await segmentsOf(dir)).length;
  // Fill the active segment to its limit, then the next append needs a new one.
  while (true) {
    const size = (await stat(join(dir, (await segmentsOf(dir)).at(-1)!))).size;
    if (size >= 300) break;
    await log.append([payloadFor(n++)]);
  }
  const segments = await segmentsOf(dir);
  assert.ok(segments.length >= before);
  full = true;
  await assert.rejects(log.append([payloadFor(n)]), /disk is full/);
  assert.deepEqual(await segmentsOf(dir), segments, 'no half-made segment is left');
  full = false;
  assert.equal((await log.append([payloadFor(n)])).firstOffset, n);
  assertHolds(await readAll(log), range(0, n + 1));
  await log.close();
});

test('bytes a client put into a payload are never taken for a frame when resynchronising', async (t) => {
  const dir = await tempDir(t);
  const log = await SegmentLog.open(dir, { report: () => {} });
  await log.append([payloadFor(0)]);
  // A payload carrying what looks like a whole frame of offset 1 (unsalted CRC, as a client could make it).
  const forged = Buffer.alloc(HEADER_BYTES + 6);
  forged.writeUInt32LE(0xa5f0c3e9, 0);
  forged.writeUInt32LE(6, 8);
  forged.writeDoubleLE(1, 12);
  forged.writeDoubleLE(Date.now(), 20);
  forged.write('forged', HEADER_BYTES);
  forged.writeUInt32LE(crc32c(forged.subarray(8)), 4);
  await log.append([Buffer.concat([Buffer.from('xxxx'), forged])]);
  await log.append([payloadFor(2)]);
  await log.close();
  const seg = join(dir, '00000000000000000000.log');
  await flip(seg, positionOf(0, 1) + 5); // the CRC of record 1, the carrier
  const reopened = await SegmentLog.open(dir, { report: () => {} });
  assertHolds(await readAll(reopened), [0, 2]);
  assert.equal(reopened.health().recordsLost, 1);
  await reopened.close();
});
