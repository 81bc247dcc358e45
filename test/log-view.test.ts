// The read-only view of a segment log (src/log/segment-view.ts), read in a worker thread while the
// main thread writes: every record read is one the writer acknowledged, byte for byte, in offset
// order, while segments are appended, rolled and deleted by retention under it; bytes of a write
// round that is not durable yet are never returned (an fdatasync held open by the test); damage
// is left to the writer — repaired, reported and counted once by it, never by the view.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ManualClock } from '../src/clock.js';
import { nodeFs, type LogFile, type LogFs } from '../src/log/fs.js';
import { SegmentLog } from '../src/log/segment-log.js';
import { SegmentLogView } from '../src/log/segment-view.js';
import { logFiles, framesOf } from './helpers/segments.js';
import { readFile } from 'node:fs/promises';

/** A temporary directory, removed after the test once everything registered with `closing` is closed. */
async function tmp(t: { after: (f: () => Promise<void>) => void }): Promise<{ dir: string; closing: Array<() => Promise<void>> }> {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-view-'));
  const closing: Array<() => Promise<void>> = [];
  t.after(async () => {
    for (const c of closing.reverse()) await c();
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  });
  return { dir, closing };
}

const payload = (i: number) => `record ${i} ` + 'x'.repeat(i % 97);

/** A view whose fallback is the writer itself (as the consumers thread's is, over its channel). */
function viewOf(log: SegmentLog): SegmentLogView {
  return new SegmentLogView(log.share(), { read: (o, opts) => log.read(o, opts), checkConsumer: (c, cp) => log.checkConsumer(c, cp) });
}

test('a worker thread reads through the view while the writer appends, rolls small segments and retention deletes old ones', async (t) => {
  const { dir, closing } = await tmp(t);
  const clock = new ManualClock(1_000_000);
  const log = await SegmentLog.open(join(dir, 'log'), { fsync: false, clock, segmentBytes: 4096 });
  closing.push(() => log.close());
  const share = log.share();
  const TOTAL = 6000;
  // The reader thread reads from 0 to TOTAL, checking each payload, and reports what it saw.
  const worker = new Worker(
    `
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.view).then(async ({ SegmentLogView }) => {
      const fallbacks = [];
      const view = new SegmentLogView(workerData.share, {
        read: async () => { fallbacks.push('read'); return { records: [], nextOffset: 0 }; },
        checkConsumer: async () => undefined,
      });
      let at = 0, seen = 0, skipped = 0, bad = 0, last = -1;
      while (at < ${TOTAL}) {
        if (!(await view.waitFor(at, 10000))) { bad++; break; }
        const { records, nextOffset } = await view.read(at, { maxRecords: 37, maxBytes: 3000 });
        for (const r of records) {
          if (r.offset <= last) bad++;
          if (r.offset > last + 1) skipped += r.offset - last - 1;
          last = r.offset;
          const want = 'record ' + r.offset + ' ' + 'x'.repeat(r.offset % 97);
          if (r.payload.toString() !== want) bad++;
          seen++;
        }
        if (nextOffset <= at && records.length === 0) { await new Promise((r) => setTimeout(r, 1)); }
        at = Math.max(at, nextOffset);
      }
      parentPort.postMessage({ seen, skipped, bad, last, fallbacks: fallbacks.length, end: view.endOffset() });
      await view.close();
    });
    `,
    { eval: true, workerData: { share, view: new URL('../src/log/segment-view.js', import.meta.url).href } },
  );
  const report = new Promise<{ seen: number; skipped: number; bad: number; last: number; fallbacks: number; end: number }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  let deleted = 0;
  for (let i = 0; i < TOTAL; ) {
    const n = Math.min(1 + (i % 13), TOTAL - i);
    const batch = Array.from({ length: n }, (_, k) => payload(i + k));
    // Several appends in flight at once share write rounds, as PutEvents does.
    await Promise.all([log.append(batch.slice(0, Math.ceil(n / 2))), log.append(batch.slice(Math.ceil(n / 2)))]);
    i += n;
    clock.advance(10);
    // Retention: everything older than 3 s of clock time (about 300 appends) goes, segment by segment.
    if (i % 200 < 13) deleted += await log.deleteOlderThan(clock.now() - 3000);
  }
  const r = await report;
  await worker.terminate();
  assert.ok(deleted > 0, 'retention deleted segments while the view read');
  assert.ok((await logFiles(join(dir, 'log'))).segments.length > 1);
  assert.equal(r.bad, 0, 'every record read was in order and byte-identical to what was appended');
  assert.equal(r.last, TOTAL - 1);
  assert.equal(r.seen + r.skipped, TOTAL, 'records read plus records retention deleted before they were read = all');
  assert.equal(r.fallbacks, 0, 'nothing was damaged, nothing was read through the writer');
  assert.equal(r.end, TOTAL);
});

/** nodeFs with every fdatasync held until the test releases it. */
function heldSyncFs(): { fs: LogFs; release: () => void; held: () => number } {
  let gate: { promise: Promise<void>; open: () => void } | undefined;
  let waiting = 0;
  const arm = () => {
    let open!: () => void;
    const promise = new Promise<void>((r) => (open = r));
    gate = { promise, open };
  };
  arm();
  const fs: LogFs = {
    ...nodeFs,
    async open(path, flags) {
      const f = await nodeFs.open(path, flags);
      const wrapped: LogFile = {
        read: (...a) => f.read(...a),
        write: (...a) => f.write(...a),
        writev: (...a) => f.writev(...a),
        async datasync() {
          waiting++;
          await gate!.promise;
          waiting--;
          return f.datasync();
        },
        sync: () => f.sync(),
        truncate: (n) => f.truncate(n),
        stat: () => f.stat(),
        close: () => f.close(),
      };
      return wrapped;
    },
  };
  return {
    fs,
    held: () => waiting,
    release: () => {
      const g = gate!;
      arm();
      g.open();
    },
  };
}

test('bytes written but not yet durable are never read through the view; they are once the round commits', async (t) => {
  const { dir, closing } = await tmp(t);
  const open0 = await SegmentLog.open(join(dir, 'log'), { fsync: true });
  await open0.append(['first']);
  await open0.close();
  const held = heldSyncFs();
  const log = await SegmentLog.open(join(dir, 'log'), { fsync: true, fs: held.fs });
  closing.push(() => log.close());
  const view = viewOf(log);
  closing.push(() => view.close());
  assert.equal(view.endOffset(), 1);
  const appended = log.append(['second', 'third']);
  while (held.held() === 0) await new Promise((r) => setImmediate(r));
  // The round's bytes are in the file already (written, not synced).
  const [seg] = (await logFiles(join(dir, 'log'))).segments;
  const frames = framesOf(await readFile(seg));
  assert.deepEqual(frames.map((f) => f.payload?.toString()), ['first', 'second', 'third']);
  assert.equal(view.endOffset(), 1);
  const before = await view.read(0);
  assert.deepEqual(before.records.map((r) => r.payload.toString()), ['first']);
  assert.equal(before.nextOffset, 1);
  assert.equal(await view.waitFor(1, 0), false);
  const woke = view.waitFor(1, 60_000);
  held.release();
  await appended;
  assert.equal(await woke, true);
  assert.equal(view.endOffset(), 3);
  assert.deepEqual((await view.read(0)).records.map((r) => [r.offset, r.payload.toString()]), [[0, 'first'], [1, 'second'], [2, 'third']]);
  assert.equal(view.fallbackReads, 0);
});

test('damage in a segment is handed to the writer: repaired, reported and counted once by it; the view reports nothing itself', async (t) => {
  const { dir, closing } = await tmp(t);
  const lines: string[] = [];
  const log = await SegmentLog.open(join(dir, 'log'), { fsync: false, segmentBytes: 2048, report: (l) => lines.push(l) });
  closing.push(() => log.close());
  for (let i = 0; i < 60; i++) await log.append([payload(i)]);
  const view = viewOf(log);
  closing.push(() => view.close());
  // Damage one record's payload in the first (closed) segment.
  const [first] = (await logFiles(join(dir, 'log'))).segments;
  const victim = framesOf(await readFile(first))[3];
  const fh = await open(first, 'r+');
  await fh.write(Buffer.from('#'), 0, 1, victim.end - 1);
  await fh.close();
  const got: number[] = [];
  for (let at = 0; at < log.endOffset(); ) {
    const r = await view.read(at, { maxRecords: 7 });
    for (const rec of r.records) {
      assert.equal(rec.payload.toString(), payload(rec.offset));
      got.push(rec.offset);
    }
    at = r.nextOffset;
  }
  assert.equal(view.fallbackReads, 1, 'the view met the damage once and read it through the writer');
  assert.deepEqual(got, Array.from({ length: 60 }, (_, i) => i).filter((i) => i !== victim.offset), 'only the damaged record is missing');
  const h = log.health();
  assert.equal(h.recordsLost, 1, 'the writer counted the lost record once');
  assert.equal(h.damagedRegions, 1);
  assert.equal(lines.filter((l) => l.includes('lost')).length, 1, 'reported once, by the writer');
  // Read again: the repaired segment reads cleanly through the view.
  const again = await view.read(0, { maxRecords: 100 });
  assert.equal(again.records.length, 59);
  assert.equal(view.fallbackReads, 1);
  assert.equal(log.health().recordsLost, 1);
});
