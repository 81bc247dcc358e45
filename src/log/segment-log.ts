// The embedded durable log behind the Log interface: a directory of segment files, group commit
// (one writev + one datasync per round of queued appends), torn-tail recovery at open, sparse
// per-segment indexes for offset and timestamp lookups, and whole-segment retention.

import { mkdir, open, readdir, readFile, rm, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock, type Clock } from '../clock.js';
import type { AppendResult, Log, LogRecord, Payload, ReadOptions, ReadResult } from './log.js';
import {
  DEFAULT_SEGMENT_BYTES,
  MAX_RECORD_BYTES,
  SparseIndex,
  decodeIndexFile,
  encodeIndexFile,
  frameBatch,
  scanRecords,
  type RecordVisitor,
  type SegmentSummary,
} from './format.js';

export { DEFAULT_SEGMENT_BYTES, HEADER_BYTES, MAX_RECORD_BYTES } from './format.js';

export interface SegmentLogOptions {
  /** A segment is rolled once it holds at least this many bytes (default 64 MiB). */
  segmentBytes?: number;
  /** fdatasync before acknowledging appends (default true). */
  fsync?: boolean;
  clock?: Clock;
}

export interface SegmentLogStats {
  /** Write rounds (one writev + datasync each); concurrent appends share a round. */
  syncs: number;
  /** Acknowledged append calls. */
  appends: number;
  /** Bytes written to segment files, framing included. */
  bytes: number;
}

const DEFAULT_MAX_RECORDS = 10_000;
const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout fires at once beyond this
const SEGMENT_RE = /^(\d{20})\.log$/;

/** Committed state only: `end`/`size` move when a write round is durable, never before. */
interface Segment extends SegmentSummary {
  path: string;
  /** Only the active segment keeps its handle; closed ones open per read, bounding open files. */
  fh: Promise<FileHandle> | undefined;
  active: boolean;
  /** Reads in progress: the handle of a closed or retired segment is closed when the last ends. */
  users: number;
  retired: boolean;
}

interface PendingAppend {
  buf: Buffer;
  marks: number[];
  firstOffset: number;
  count: number;
  timestamp: number;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

interface Waiter {
  offset: number;
  resolve: (ok: boolean) => void;
  timer: NodeJS.Timeout;
}

const segmentName = (base: number): string => `${String(base).padStart(20, '0')}.log`;
const indexPath = (segPath: string): string => segPath.replace(/\.log$/, '.idx');

export class SegmentLog implements Log {
  private queue: PendingAppend[] = [];
  private flushing: Promise<void> | undefined;
  private failure: { error: unknown } | undefined;
  private closing: Promise<void> | undefined;
  private nextOffset: number;
  private lastTs: number;
  private readonly waiters = new Set<Waiter>();
  private readonly counters: SegmentLogStats = { syncs: 0, appends: 0, bytes: 0 };

  private constructor(
    readonly dir: string,
    private readonly segments: Segment[],
    private readonly segmentBytes: number,
    private readonly fsync: boolean,
    private readonly clock: Clock,
  ) {
    this.nextOffset = this.active().end;
    this.lastTs = Math.max(-Infinity, ...segments.map((s) => s.lastTs).filter(Number.isFinite));
  }

  static async open(dir: string, options: SegmentLogOptions = {}): Promise<SegmentLog> {
    const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    if (!(segmentBytes > 0)) throw new RangeError('segmentBytes must be positive');
    const fsync = options.fsync ?? true;
    await mkdir(dir, { recursive: true });
    const names = await readdir(dir);
    const bases = names.flatMap((n) => SEGMENT_RE.exec(n)?.[1] ?? []).map(Number).sort((a, b) => a - b);
    // An index outliving its segment (retention raced a roll, or a crash mid-delete) is stale.
    for (const n of names) {
      if (n.endsWith('.idx') && !names.includes(n.replace(/\.idx$/, '.log'))) await unlink(join(dir, n));
    }
    const segments: Segment[] = [];
    try {
      for (let i = 0; i < bases.length; i++) {
        const seg = await loadSegment(dir, bases[i], i === bases.length - 1, fsync);
        segments.push(seg);
        const prev = segments[segments.length - 2];
        if (prev && prev.end !== seg.base) {
          throw new Error(`segment log ${dir}: ${seg.path} starts at ${seg.base}, expected ${prev.end}`);
        }
      }
      if (segments.length === 0) segments.push(await createSegment(dir, 0, fsync));
    } catch (err) {
      await Promise.all(segments.map(closeHandle));
      throw err;
    }
    return new SegmentLog(dir, segments, segmentBytes, fsync, options.clock ?? systemClock);
  }

  startOffset(): number {
    return this.segments[0].base;
  }

  endOffset(): number {
    return this.active().end;
  }

  stats(): SegmentLogStats {
    return { ...this.counters };
  }

  async append(payloads: ReadonlyArray<Payload>): Promise<AppendResult> {
    if (this.closing) throw new Error('segment log is closed');
    if (this.failure) {
      throw new Error('segment log stopped after a write failure; reopen it', { cause: this.failure.error });
    }
    // Stamps never go backwards, so per-segment timestamp ranges stay binary-searchable.
    const timestamp = Math.max(this.clock.now(), this.lastTs);
    this.lastTs = timestamp;
    const firstOffset = this.nextOffset;
    if (payloads.length === 0) return { firstOffset, timestamp };
    // Framing validates the payloads; offsets are taken only once it succeeded.
    const { buf, marks } = frameBatch(payloads, firstOffset, timestamp, MAX_RECORD_BYTES);
    this.nextOffset += payloads.length;
    return new Promise<AppendResult>((resolve, reject) => {
      this.queue.push({ buf, marks, firstOffset, count: payloads.length, timestamp, resolve, reject });
      this.flushing ??= this.flushLoop().finally(() => (this.flushing = undefined));
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.queue.length > 0) {
      const round = this.queue;
      this.queue = [];
      let done = 0;
      try {
        while (done < round.length) {
          let seg = this.active();
          if (seg.size >= this.segmentBytes) seg = await this.roll();
          // A batch never straddles segments: take batches while the segment still has room.
          let bytes = 0;
          let n = done;
          do bytes += round[n++].buf.length;
          while (n < round.length && seg.size + bytes < this.segmentBytes);
          const chunk = round.slice(done, n);
          await this.writeChunk(seg, chunk, bytes);
          done = n;
          for (const a of chunk) a.resolve({ firstOffset: a.firstOffset, timestamp: a.timestamp });
        }
      } catch (err) {
        // The file tail is now unknown: refuse everything until a reopen rescans it.
        this.failure = { error: err };
        for (const a of [...round.slice(done), ...this.queue]) a.reject(err);
        this.queue = [];
        return;
      }
    }
  }

  private async writeChunk(seg: Segment, chunk: PendingAppend[], bytes: number): Promise<void> {
    const fh = await seg.fh!;
    const { bytesWritten } = await fh.writev(
      chunk.map((a) => a.buf),
      seg.size,
    );
    if (bytesWritten !== bytes) throw new Error(`short write to ${seg.path}: ${bytesWritten} of ${bytes} bytes`);
    if (this.fsync) await fh.datasync();
    this.counters.syncs++;
    this.counters.appends += chunk.length;
    this.counters.bytes += bytes;
    for (const a of chunk) {
      for (let i = 0; i < a.marks.length; i += 2) seg.index.maybeAdd(a.marks[i + 1], seg.size + a.marks[i], a.timestamp);
      if (seg.end === seg.base) seg.firstTs = a.timestamp;
      seg.lastTs = a.timestamp;
      seg.end = a.firstOffset + a.count;
      seg.size += a.buf.length;
    }
    this.wake();
  }

  /** Starts a new active segment; the old one is already durable, so only its index is left. */
  private async roll(): Promise<Segment> {
    const old = this.active();
    try {
      await writeFile(indexPath(old.path), encodeIndexFile(old));
    } catch (err) {
      process.stderr.write(`segment-log: could not write index for ${old.path}: ${String(err)}\n`);
    }
    const seg = await createSegment(this.dir, old.end, this.fsync);
    this.segments.push(seg);
    old.active = false;
    if (old.users === 0) await closeHandle(old);
    return seg;
  }

  private wake(): void {
    const end = this.endOffset();
    for (const w of this.waiters) {
      if (w.offset < end) this.settleWaiter(w, true);
    }
  }

  private settleWaiter(w: Waiter, ok: boolean): void {
    clearTimeout(w.timer);
    this.waiters.delete(w);
    w.resolve(ok);
  }

  waitFor(offset: number, timeoutMs: number): Promise<boolean> {
    if (this.endOffset() > offset) return Promise.resolve(true);
    if (this.closing) return Promise.resolve(false);
    return new Promise((resolve) => {
      const w: Waiter = { offset, resolve, timer: setTimeout(() => this.settleWaiter(w, false), Math.min(timeoutMs, MAX_TIMER_MS)) };
      this.waiters.add(w);
    });
  }

  async read(offset: number, options: ReadOptions = {}): Promise<ReadResult> {
    if (this.closing) throw new Error('segment log is closed');
    if (!Number.isSafeInteger(offset)) throw new RangeError(`invalid offset ${offset}`);
    const maxRecords = Math.max(1, options.maxRecords ?? DEFAULT_MAX_RECORDS);
    const maxBytes = options.maxBytes ?? Infinity;
    let next = Math.max(offset, this.startOffset());
    const records: LogRecord[] = [];
    let bytes = 0;
    let full = false;
    // Retention may drop the segment we are about to enter; the caller's next read re-clamps.
    while (!full && records.length < maxRecords && next < this.endOffset() && next >= this.startOffset()) {
      const seg = this.segments[this.segmentIndexFor(next)];
      const before = records.length;
      const scanned = await this.scanFrom(seg, next, (off, timestamp, payload) => {
        if (off < next) return true;
        if (records.length >= maxRecords || (records.length > 0 && bytes + payload.length > maxBytes)) {
          full = true;
          return false;
        }
        bytes += payload.length;
        records.push({ offset: off, timestamp, payload: Buffer.from(payload) });
        return true;
      });
      next += records.length - before;
      if (!scanned) break;
    }
    return { records, nextOffset: next };
  }

  async offsetForTimestamp(ts: number): Promise<number> {
    const seg = this.segments.find((s) => s.end > s.base && s.lastTs >= ts);
    if (!seg) return this.endOffset();
    if (seg.firstTs >= ts) return seg.base;
    const i = seg.index.lastBefore(ts);
    let found = seg.end;
    await this.scanFrom(seg, seg.index.offsets[i] ?? seg.base, (off, t) => {
      if (t < ts) return true;
      found = off;
      return false;
    });
    return found;
  }

  /**
   * Scans committed records of `seg`, starting at the index entry at or below `offset`.
   * Returns false when the segment was deleted under us before it could be opened.
   */
  private async scanFrom(seg: Segment, offset: number, visit: RecordVisitor): Promise<boolean> {
    const i = seg.index.floorOffset(offset);
    const [pos, off] = i >= 0 ? [seg.index.positions[i], seg.index.offsets[i]] : [0, seg.base];
    const endPos = seg.size;
    seg.users++;
    try {
      let fh: FileHandle;
      try {
        fh = await (seg.fh ??= open(seg.path, 'r'));
      } catch (err) {
        seg.fh = undefined;
        if (seg.retired) return false;
        throw err;
      }
      const r = await scanRecords(fh, pos, off, endPos, visit);
      if (r.stop === 'torn') throw new Error(`segment log: corrupt record in ${seg.path} at position ${r.position}`);
      return true;
    } finally {
      seg.users--;
      if (seg.users === 0 && (seg.retired || !seg.active)) await closeHandle(seg);
    }
  }

  private segmentIndexFor(offset: number): number {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.segments[mid].base <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  async deleteOlderThan(cutoffMs: number): Promise<number> {
    let n = 0;
    // The last segment is the active one (or the one being rolled away from): never touched.
    while (n < this.segments.length - 1 && this.segments[n].lastTs < cutoffMs) n++;
    const gone = this.segments.splice(0, n);
    let removed = 0;
    for (const seg of gone) {
      removed += seg.end - seg.base;
      seg.retired = true;
      // Unlinking while a reader holds the handle is fine on POSIX; space is freed at close.
      await rm(seg.path, { force: true });
      await rm(indexPath(seg.path), { force: true });
      if (seg.users === 0) await closeHandle(seg);
    }
    return removed;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.flushing;
      for (const w of this.waiters) this.settleWaiter(w, false);
      for (const seg of this.segments) {
        seg.retired = true;
        if (seg.users === 0) await closeHandle(seg);
      }
    })();
    return this.closing;
  }

  async destroy(): Promise<void> {
    await this.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  private active(): Segment {
    return this.segments[this.segments.length - 1];
  }
}

async function closeHandle(seg: Segment): Promise<void> {
  const fh = seg.fh;
  seg.fh = undefined;
  await (await fh?.catch(() => undefined))?.close();
}

async function createSegment(dir: string, base: number, fsync: boolean): Promise<Segment> {
  const path = join(dir, segmentName(base));
  const fh = await open(path, 'w+');
  // The new name must survive a power loss too, or acknowledged records could vanish with it.
  if (fsync) await syncDir(dir);
  return { ...emptySummary(base), path, fh: Promise.resolve(fh), active: true, users: 0, retired: false };
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

function emptySummary(base: number): SegmentSummary {
  return { base, end: base, size: 0, firstTs: NaN, lastTs: -Infinity, index: new SparseIndex() };
}

/**
 * Closed segments come from their index file when it is intact; the last one (and any without a
 * usable index) is rescanned. Only the last segment may have a torn tail, which is cut off;
 * elsewhere damage means lost acknowledged data, so opening fails loudly instead.
 */
async function loadSegment(dir: string, base: number, isLast: boolean, fsync: boolean): Promise<Segment> {
  const path = join(dir, segmentName(base));
  const fh = await open(path, isLast ? 'r+' : 'r');
  try {
    const fileSize = (await fh.stat()).size;
    const fromIndex = isLast ? undefined : await readIndex(path, base, fileSize);
    const summary = fromIndex ?? emptySummary(base);
    if (!fromIndex) {
      const r = await scanRecords(fh, 0, base, fileSize, (offset, ts, _p, position) => {
        summary.index.maybeAdd(offset, position, ts);
        if (offset === base) summary.firstTs = ts;
        summary.lastTs = ts;
        return true;
      });
      summary.end = r.offset;
      summary.size = r.position;
      if (r.position < fileSize) {
        if (!isLast) throw new Error(`segment log: corrupt record in closed segment ${path} at position ${r.position}`);
        process.stderr.write(
          `segment-log: truncated ${fileSize - r.position} bytes of torn tail from ${path} (log ends at offset ${r.offset})\n`,
        );
        await fh.truncate(r.position);
        if (fsync) await fh.datasync();
      }
      if (!isLast) await writeFile(indexPath(path), encodeIndexFile(summary)).catch(() => undefined);
    }
    if (!isLast) await fh.close();
    return { ...summary, path, fh: isLast ? Promise.resolve(fh) : undefined, active: isLast, users: 0, retired: false };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

async function readIndex(segPath: string, base: number, fileSize: number): Promise<SegmentSummary | undefined> {
  try {
    return decodeIndexFile(await readFile(indexPath(segPath)), base, fileSize);
  } catch {
    return undefined;
  }
}
