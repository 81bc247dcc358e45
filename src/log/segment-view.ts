// A read-only view of a segment log for another thread (the consumers thread reads the ingest log
// through it, so reads cost the thread that answers requests nothing). The writer (SegmentLog, on
// the main thread) stays the only one that appends, rolls, repairs and deletes; it publishes its
// committed state into a SharedArrayBuffer — start and end offsets, the active segment's base and
// committed size, a layout generation bumped on every roll, deletion and repair — under a
// sequence lock, and notifies waiters with Atomics. The view reads segment files directly, never
// past the committed size and end the writer published (so never bytes of a write round that is
// not durable yet), learns the segment list from the directory when the generation moves, keeps
// its own sparse index of positions it has seen (seeded from a closed segment's index file), and
// copes with retention deleting a segment under it (the open fails or the file stays readable
// until closed; either way the read re-clamps to the new start). It never repairs nor reports
// damage: a frame that does not check out is read through `fallback` — the writer's own read,
// which repairs, reports and counts the damage once.

import { join } from 'node:path';
import { nodeFs, type LogFile, type LogFs } from './fs.js';
import type { LogRecord, OffsetGap, ReadOptions, ReadResult } from './log.js';
import { decodeIndexFile, readSegmentHeader, segmentIndexFor, scanRecords, SparseIndex, V1_FORMAT, type SegmentFormat } from './format.js';

/** What a reader thread needs to open a view: the log's directory and the writer's shared state. */
export interface LogShare {
  dir: string;
  state: SharedArrayBuffer;
}

/** Slots of the shared state (BigInt64): a sequence lock around the committed state. */
const SEQ = 0;
const GEN = 1;
const START = 2;
const END = 3;
const ACTIVE_BASE = 4;
const ACTIVE_SIZE = 5;
const CLOSED = 6;
const SLOTS = 7;

/** The writer's committed state, as published. */
export interface PublishedState {
  gen: number;
  start: number;
  end: number;
  activeBase: number;
  activeSize: number;
  closed: boolean;
}

/** The writer's side: publishes committed state and wakes the views waiting for records. */
export class LogPublisher {
  readonly state = new SharedArrayBuffer(SLOTS * 8);
  private readonly a = new BigInt64Array(this.state);
  private gen = 0;

  /** Publishes `s`; `layout` bumps the generation (segments rolled, deleted or repaired). */
  publish(s: Omit<PublishedState, 'gen'>, layout = false): void {
    if (layout) this.gen++;
    const a = this.a;
    Atomics.add(a, SEQ, 1n); // odd: being written
    Atomics.store(a, GEN, BigInt(this.gen));
    Atomics.store(a, START, BigInt(s.start));
    Atomics.store(a, END, BigInt(s.end));
    Atomics.store(a, ACTIVE_BASE, BigInt(s.activeBase));
    Atomics.store(a, ACTIVE_SIZE, BigInt(s.activeSize));
    Atomics.store(a, CLOSED, s.closed ? 1n : 0n);
    Atomics.add(a, SEQ, 1n); // even: consistent
    Atomics.notify(a, SEQ);
  }
}

/** Reads the published state consistently (retries while the writer is in the middle of a publish). */
function readState(a: BigInt64Array): { seq: bigint; s: PublishedState } {
  for (;;) {
    const seq = Atomics.load(a, SEQ);
    if (seq % 2n === 1n) continue;
    const s: PublishedState = {
      gen: Number(Atomics.load(a, GEN)),
      start: Number(Atomics.load(a, START)),
      end: Number(Atomics.load(a, END)),
      activeBase: Number(Atomics.load(a, ACTIVE_BASE)),
      activeSize: Number(Atomics.load(a, ACTIVE_SIZE)),
      closed: Atomics.load(a, CLOSED) === 1n,
    };
    if (Atomics.load(a, SEQ) === seq) return { seq, s };
  }
}

/** What the view cannot do itself and asks the writer for. */
export interface ViewFallback {
  /** The writer's read (repairs and reports damage the view found). */
  read(offset: number, options: ReadOptions): Promise<ReadResult>;
  checkConsumer(consumer: string, checkpoint: number): Promise<OffsetGap | undefined>;
}

interface ViewSegment {
  base: number;
  path: string;
  fh?: Promise<LogFile>;
  fmt?: SegmentFormat;
  /** Size of a closed segment's file (final once it is closed). */
  closedSize?: number;
  index: SparseIndex;
}

const SEGMENT_RE = /^(\d{20})\.log$/;
const DEFAULT_MAX_RECORDS = 10_000;
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Atomics.waitAsync (Node 16+; typed from ES2024 on, past this project's target). */
const waitAsync = (Atomics as unknown as {
  waitAsync(a: BigInt64Array, index: number, value: bigint, timeoutMs: number): { async: boolean; value: Promise<string> | string };
}).waitAsync;

/** Reads a segment log another thread writes; see the module header. Implements the reading half of Log. */
export class SegmentLogView {
  private readonly a: BigInt64Array;
  private segments: ViewSegment[] = [];
  private gen = -1;
  private closed = false;
  /** Reads handed to the writer because the view found a frame it could not use (tests, health). */
  fallbackReads = 0;

  constructor(
    private readonly share: LogShare,
    private readonly fallback: ViewFallback,
    private readonly fs: LogFs = nodeFs,
  ) {
    this.a = new BigInt64Array(share.state);
  }

  startOffset(): number {
    return readState(this.a).s.start;
  }

  endOffset(): number {
    return readState(this.a).s.end;
  }

  checkConsumer(consumer: string, checkpoint: number): Promise<OffsetGap | undefined> {
    return this.fallback.checkConsumer(consumer, checkpoint);
  }

  /** Resolves when the writer has committed a record at `offset`, or after timeoutMs (false). */
  async waitFor(offset: number, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + Math.min(timeoutMs, MAX_TIMER_MS);
    for (;;) {
      const { seq, s } = readState(this.a);
      if (s.end > offset) return true;
      if (s.closed || this.closed) return false;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      const w = waitAsync(this.a, SEQ, seq, left);
      if (!w.async) continue;
      // A pending waitAsync does not keep the event loop alive; this timer does, for its length.
      const keep = setTimeout(() => {}, left);
      try {
        await w.value;
      } finally {
        clearTimeout(keep);
      }
    }
  }

  async read(offset: number, options: ReadOptions = {}): Promise<ReadResult> {
    if (this.closed) throw new Error('segment log view is closed');
    if (!Number.isSafeInteger(offset)) throw new RangeError(`invalid offset ${offset}`);
    const maxRecords = Math.max(1, options.maxRecords ?? DEFAULT_MAX_RECORDS);
    const maxBytes = options.maxBytes ?? Infinity;
    let st = readState(this.a).s;
    if (st.closed) throw new Error('segment log is closed');
    if (st.gen !== this.gen) await this.refresh(st);
    let next = Math.max(offset, st.start);
    const records: LogRecord[] = [];
    let bytes = 0;
    let full = false;
    for (let guard = 0; !full && records.length < maxRecords && next < st.end; guard++) {
      if (guard > 1000) throw new Error(`segment log view of ${this.share.dir}: no progress reading offset ${next}`);
      const i = segmentIndexFor(this.segments, next);
      const seg = this.segments[i];
      const active = seg?.base === st.activeBase;
      const nextBase = this.segments[i + 1]?.base;
      let fh: LogFile;
      try {
        if (!seg || seg.base > next || (!active && nextBase === undefined)) throw Object.assign(new Error('segment list is stale'), { code: 'ESTALE' });
        fh = await this.open(seg, active ? st.activeSize : undefined);
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (code !== 'ENOENT' && code !== 'ESTALE') throw e;
        // Retention deleted the segment, or the writer rolled one the list does not know yet.
        const before = st.gen;
        st = readState(this.a).s;
        if (st.gen === before && code === 'ENOENT' && next >= st.start) throw e;
        await this.refresh(st);
        next = Math.max(next, st.start);
        continue;
      }
      const endPos = active ? st.activeSize : seg.closedSize!;
      const endOff = active ? st.end : nextBase!;
      if (!seg.fmt || endPos <= seg.fmt.dataStart) {
        // A segment just created (header not yet written when the view opened it): nothing committed.
        if (!active) throw new Error(`segment log view of ${this.share.dir}: ${seg.path} has no readable header`);
        break;
      }
      const from = next;
      const before = records.length;
      const hint = seg.index.floorOffset(from);
      const [pos, off] = hint >= 0 ? [seg.index.positions[hint], seg.index.offsets[hint]] : [seg.fmt.dataStart, seg.base];
      const r = await scanRecords(
        fh,
        seg.fmt,
        pos,
        off,
        endPos,
        (o, timestamp, payload, position) => {
          seg.index.maybeAdd(o, position, timestamp);
          if (o < from) return true;
          if (records.length >= maxRecords || (records.length > 0 && bytes + payload.length > maxBytes)) {
            full = true;
            return false;
          }
          bytes += payload.length;
          records.push({ offset: o, timestamp, payload });
          return true;
        },
        endOff,
        true,
      );
      if (records.length > before) next = records[records.length - 1].offset + 1;
      if (r.stop === 'bad') {
        // Damage, or a frame the writer is repairing: the writer reads it (and repairs and reports
        // it once). Positions seen in this segment may point into what the repair moves aside.
        seg.index = new SparseIndex();
        this.fallbackReads++;
        const rest = await this.fallback.read(next, { maxRecords: maxRecords - records.length, maxBytes: Math.max(1, maxBytes - bytes) });
        // The writer's first record may pass the byte bound by one record (it always returns one).
        return { records: records.concat(rest.records), nextOffset: Math.max(next, rest.nextOffset) };
      }
      if (r.stop === 'end') next = Math.max(next, endOff);
    }
    return { records, nextOffset: next };
  }

  /** Closes the view's file handles (the log itself is the writer's). */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.segments) await closeHandle(s);
    this.segments = [];
  }

  /** Learns the segment list from the directory: new segments are added, deleted ones dropped. */
  private async refresh(st: PublishedState): Promise<void> {
    const names = await this.fs.readdir(this.share.dir);
    const bases = new Set(names.flatMap((n) => SEGMENT_RE.exec(n)?.[1] ?? []).map(Number));
    const keep: ViewSegment[] = [];
    for (const s of this.segments) {
      if (bases.has(s.base) && s.base >= st.start) {
        keep.push(s);
        bases.delete(s.base);
      } else await closeHandle(s);
    }
    for (const base of bases) {
      if (base < st.start || base > st.activeBase) continue;
      keep.push({ base, path: join(this.share.dir, `${String(base).padStart(20, '0')}.log`), index: new SparseIndex() });
    }
    keep.sort((x, y) => x.base - y.base);
    // A segment that was active when its handle was opened is closed now: learn its final size.
    for (const s of keep) if (s.base !== st.activeBase && s.closedSize === undefined && s.fmt) await this.learnClosed(s, keep);
    this.segments = keep;
    this.gen = st.gen;
  }

  /** Opens a segment's file once; reads its format and, for a closed one, its size and index. */
  private async open(seg: ViewSegment, activeSize: number | undefined): Promise<LogFile> {
    const opening = (seg.fh ??= this.fs.open(seg.path, 'r'));
    let fh: LogFile;
    try {
      fh = await opening;
    } catch (e) {
      if (seg.fh === opening) seg.fh = undefined;
      throw e;
    }
    if (!seg.fmt) {
      const size = activeSize ?? (await fh.stat()).size;
      const header = await readSegmentHeader(fh, size);
      if (header.kind === 'v2') seg.fmt = header.fmt;
      else if (header.kind === 'v1') seg.fmt = V1_FORMAT;
    }
    if (activeSize === undefined && seg.closedSize === undefined && seg.fmt) await this.learnClosed(seg, this.segments);
    return fh;
  }

  private async learnClosed(seg: ViewSegment, list: ViewSegment[]): Promise<void> {
    const fh = await (seg.fh ??= this.fs.open(seg.path, 'r'));
    seg.closedSize = (await fh.stat()).size;
    const nextBase = list[list.indexOf(seg) + 1]?.base;
    if (nextBase === undefined || !seg.fmt) return;
    const idx = await this.fs.readFile(seg.path.replace(/\.log$/, '.idx')).catch(() => undefined);
    const summary = idx && decodeIndexFile(idx, seg.base, seg.closedSize, nextBase, seg.fmt.dataStart);
    if (summary && summary.index.offsets.length > seg.index.offsets.length) seg.index = summary.index;
  }

}

async function closeHandle(seg: ViewSegment): Promise<void> {
  const fh = seg.fh;
  seg.fh = undefined;
  await (await fh?.catch(() => undefined))?.close();
}
