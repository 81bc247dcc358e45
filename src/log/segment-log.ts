// The embedded durable log behind the Log interface: a directory of segment files, group commit
// (one writev + one datasync per round of queued appends), recovery at open (a torn tail is cut;
// damage anywhere else costs only the damaged records: their bytes are moved aside, a hole frame
// takes their place and the loss is reported), repair of damage found later by reads, sparse
// per-segment indexes that are checked rather than trusted, whole-segment retention, writes that
// recover by themselves after a failure (disk full, failed fdatasync), and the guarantee that no
// offset is handed out twice (a lazily persisted high-water mark, and consumers' checkpoints).

import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import { systemClock, type Clock } from '../clock.js';
import { LogWriteError, errorCode, isDiskFull } from './errors.js';
import { nodeFs, type LogFile, type LogFs } from './fs.js';
import type { AppendResult, Log, LogHealth, LogRecord, OffsetGap, Payload, ReadOptions, ReadResult } from './log.js';
import { offsetGap } from './log.js';
import {
  DEFAULT_SEGMENT_BYTES,
  HOLE_BYTES,
  MAX_RECORD_BYTES,
  READ_CHUNK_BYTES,
  SEGMENT_HEADER_BYTES,
  SparseIndex,
  V1_FORMAT,
  END_MARK_POSITION,
  decodeIndexFile,
  encodeEndMark,
  encodeHole,
  encodeIndexFile,
  encodeSegmentHeader,
  frameBatch,
  inspectBadFrame,
  readFully,
  readSegmentHeader,
  scanRecords,
  segmentIndexFor,
  v2Format,
  type BadFrame,
  type RecordVisitor,
  type SegmentFormat,
  type SegmentSummary,
} from './format.js';
import { crc32c } from '@node-rs/crc32';
import { LogPublisher, type LogShare } from './segment-view.js';

export { DEFAULT_SEGMENT_BYTES, HEADER_BYTES, MAX_RECORD_BYTES } from './format.js';

export interface SegmentLogOptions {
  /** A segment is rolled once it holds at least this many bytes (default 64 MiB). */
  segmentBytes?: number;
  /** fdatasync before acknowledging appends (default true). */
  fsync?: boolean;
  clock?: Clock;
  /** File operations (default node:fs/promises); tests inject faults here. */
  fs?: LogFs;
  /** Where damage, recovery and write-failure lines go (default: stderr). */
  report?: (line: string) => void;
  /** Called once when the log is closed or destroyed (the provider keeps its counts). */
  onClose?: (log: SegmentLog) => void;
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
/**
 * Write rounds up to this size are written synchronously (LogFile.writevSync), then synced
 * asynchronously: one thread-pool round trip instead of three for a single PutRecord. Larger
 * rounds stay asynchronous, so copying megabytes never blocks the request thread.
 */
export const SYNC_WRITE_MAX_BYTES = 64 * 1024;
const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout fires at once beyond this
const SEGMENT_RE = /^(\d{20})\.log$/;
const DAMAGED_RE = /^\d{20}\.log\.damaged-\d+(?:-\d+)?$/;
/** The high-water mark file: the end offset the log had reached, written at most this often. */
const HWM_FILE = 'log.hwm';
export const HWM_INTERVAL_MS = 1000;
const HWM_MAGIC = 0x4d574850; // "PHWM"
/** Bounds the repairs one scan may make, so a pathological file cannot keep a read busy forever. */
const MAX_REPAIRS_PER_SCAN = 10_000;

/** Committed state only: `end`/`size` move when a write round is durable, never before. */
interface Segment extends SegmentSummary {
  path: string;
  fmt: SegmentFormat;
  /** Only the active segment keeps its handle; closed ones open per read, bounding open files. */
  fh: Promise<LogFile> | undefined;
  active: boolean;
  /** Reads in progress: the handle of a closed or retired segment is closed when the last ends. */
  users: number;
  retired: boolean;
}

interface PendingAppend {
  buf: Buffer;
  marks: number[];
  firstOffset: number;
  /** The offset after this append: firstOffset + count for records, the target of a skip. */
  end: number;
  timestamp: number;
  /** A hole frame that only moves the offsets on (no record, no timestamp, no index entry). */
  hole: boolean;
  /** Kept for the next round when its write fails: a skip must land before any later record. */
  retain: boolean;
  done: (err?: unknown) => void;
}

interface Waiter {
  offset: number;
  resolve: (ok: boolean) => void;
  timer: NodeJS.Timeout;
}

const segmentName = (base: number): string => `${String(base).padStart(20, '0')}.log`;
const indexPath = (segPath: string): string => segPath.replace(/\.log$/, '.idx');
const randomSalt = (): number => randomBytes(4).readUInt32LE(0);

/** All counters of a log's health at zero (the provider sums these by log kind). */
export function emptyHealth(): LogHealth {
  return {
    recordsLost: 0,
    bytesLost: 0,
    damagedRegions: 0,
    recordsRepaired: 0,
    tornBytes: 0,
    indexRebuilds: 0,
    checkpointGaps: 0,
    damagedFiles: 0,
    writeFailures: 0,
  };
}

export class SegmentLog implements Log {
  private segments: Segment[] = [];
  private queue: PendingAppend[] = [];
  /** Retained skips whose write failed: written first in the next round. */
  private deferred: PendingAppend[] = [];
  private flushing: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private destroying = false;
  private nextOffset = 0;
  private lastTs = -Infinity;
  /** CRC seed of the format-2 segments of this log (all share it). */
  private salt: number | undefined;
  /** A write failed: the active segment may hold bytes past its committed size. */
  private tailDirty = false;
  private repairs: Promise<unknown> = Promise.resolve();
  private readonly gaps = new Map<string, OffsetGap>();
  /** The end mark of the last segment found at open. */
  private lastMark: number | undefined;
  /**
   * Until the first record is appended after opening, the end the log was found with: consumers
   * checked before then all compare with it, so each one that had passed lost records is told, even
   * after another one's check moved the log on.
   */
  private auditBase: number | undefined;
  private readonly hwm: { written: number; lastAt: number; timer?: NodeJS.Timeout; writing?: Promise<void> } = { written: 0, lastAt: -Infinity };
  private readonly waiters = new Set<Waiter>();
  private readonly counters: SegmentLogStats = { syncs: 0, appends: 0, bytes: 0 };
  private readonly h: LogHealth = emptyHealth();
  private readonly fs: LogFs;
  private readonly report: (line: string) => void;
  /** Set once a read-only view was asked for (share()): committed state is published to it. */
  private publisher: LogPublisher | undefined;

  private constructor(
    readonly dir: string,
    private readonly segmentBytes: number,
    private readonly fsync: boolean,
    private readonly clock: Clock,
    private readonly options: SegmentLogOptions,
  ) {
    this.fs = options.fs ?? nodeFs;
    const report = options.report ?? ((line: string) => process.stderr.write(`${line}\n`));
    this.report = (line) => report(`segment-log: ${line}`);
  }

  static async open(dir: string, options: SegmentLogOptions = {}): Promise<SegmentLog> {
    const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    if (!(segmentBytes > 0)) throw new RangeError('segmentBytes must be positive');
    const log = new SegmentLog(dir, segmentBytes, options.fsync ?? true, options.clock ?? systemClock, options);
    try {
      await log.recover();
    } catch (err) {
      await Promise.all(log.segments.map(closeHandle));
      throw err;
    }
    return log;
  }

  startOffset(): number {
    return this.segments[0].base;
  }

  endOffset(): number {
    return this.active().end;
  }

  /**
   * Lets another thread read this log through a SegmentLogView (src/log/segment-view.ts): from now
   * on every durable write round, roll, deletion, repair and the close are published to it.
   */
  share(): LogShare {
    if (!this.publisher) {
      this.publisher = new LogPublisher();
      this.publish(true);
    }
    return { dir: this.dir, state: this.publisher.state };
  }

  /** Publishes the committed state to views (`layout`: the segment list or their bytes changed). */
  private publish(layout = false): void {
    const p = this.publisher;
    if (!p) return;
    const a = this.active();
    p.publish({ start: this.startOffset(), end: a.end, activeBase: a.base, activeSize: a.size, closed: this.closing !== undefined }, layout);
  }

  stats(): SegmentLogStats {
    return { ...this.counters };
  }

  health(): LogHealth {
    return { ...this.h, ...(this.h.failing ? { failing: { ...this.h.failing } } : {}) };
  }

  // ---------------------------------------------------------------------------------------------
  // Opening and recovery

  private async recover(): Promise<void> {
    const { fs, dir } = this;
    await fs.mkdir(dir);
    const names = await fs.readdir(dir);
    const bases = names.flatMap((n) => SEGMENT_RE.exec(n)?.[1] ?? []).map(Number).sort((a, b) => a - b);
    for (const n of names) {
      // An index outliving its segment (retention raced a roll, or a crash mid-delete) is stale.
      if (n.endsWith('.idx') && !names.includes(n.replace(/\.idx$/, '.log'))) await fs.unlink(join(dir, n));
      if (n.endsWith('.tmp')) await fs.unlink(join(dir, n)).catch(() => undefined);
    }
    this.h.damagedFiles = names.filter((n) => DAMAGED_RE.test(n)).length;
    const hwmFile = await this.readHwm();
    for (let i = 0; i < bases.length; i++) this.segments.push(await this.loadSegment(bases[i], bases[i + 1]));
    // The furthest end known to have been reached: the last segment's end mark, or the lazily written file.
    const hwm = this.lastMark === undefined ? hwmFile : Math.max(this.lastMark, hwmFile ?? 0);
    if (this.segments.length === 0) {
      if (hwm !== undefined && hwm > 0) {
        this.h.damagedRegions++;
        this.report(`${dir}: no segment files, but offsets up to ${hwm - 1} were handed out before: the log's records are gone; it continues at ${hwm}`);
      }
      this.segments.push(await this.createSegment(hwm ?? 0));
    }
    if (this.active().fmt.version === 2) this.salt = this.active().fmt.salt;
    this.nextOffset = this.active().end;
    this.lastTs = Math.max(-Infinity, ...this.segments.map((s) => s.lastTs).filter(Number.isFinite));
    // A segment of an earlier release's format is never appended to: new records go to a new one.
    if (this.active().fmt.version === 1) await this.roll();
    this.hwm.written = this.endOffset();
    if (hwm !== undefined && hwm > this.endOffset()) {
      const end = this.endOffset();
      this.h.damagedRegions++;
      this.h.recordsLost += hwm - end;
      this.report(
        `${dir}: the log ends at offset ${end} but offsets up to ${hwm - 1} were handed out: ${hwm - end} acknowledged records ` +
          `are gone (the last segment was cut short); the log continues at ${hwm} so none of those offsets is reused`,
      );
      await this.skipTo(hwm);
    }
    this.auditBase = this.nextOffset;
  }

  private saltForNew(): number {
    return (this.salt ??= randomSalt());
  }

  /** Opens one segment: from its index file when it is a closed one with an intact index, else by a scan that repairs. */
  private async loadSegment(base: number, nextBase: number | undefined): Promise<Segment> {
    const isLast = nextBase === undefined;
    const path = join(this.dir, segmentName(base));
    const fh = await this.fs.open(path, 'r+');
    try {
      let size = (await fh.stat()).size;
      const header = await readSegmentHeader(fh, size);
      let fmt: SegmentFormat;
      if (header.kind === 'unwritten') {
        // Created but its header never fully written: nothing was ever appended to it.
        if (size > 0) {
          this.h.tornBytes += size;
          this.report(`${path}: segment header incomplete (the segment was being created); written again`);
        }
        fmt = v2Format(this.saltForNew());
        await fh.truncate(0);
        await writeAll(fh, encodeSegmentHeader(fmt.salt, base), 0);
        await this.sync(fh);
        size = SEGMENT_HEADER_BYTES;
      } else if (header.kind === 'v1') {
        fmt = V1_FORMAT;
      } else {
        fmt = header.fmt;
        this.salt ??= fmt.salt;
        if (isLast) this.lastMark = header.mark;
        if (header.rewrite) {
          await writeAll(fh, header.rewrite, 0);
          await this.sync(fh);
          this.h.damagedRegions++;
          this.report(`${path}: damaged segment header restored ${header.recovered ? 'from the CRC of its first records' : 'from its second copy'}; nothing lost`);
        }
      }
      const seg: Segment = { ...emptySummary(base, fmt), path, fmt, fh: undefined, active: isLast, users: 0, retired: false };
      const fromIndex = isLast ? undefined : await this.readIndex(seg, size, nextBase);
      if (fromIndex) Object.assign(seg, fromIndex);
      else {
        Object.assign(seg, (await this.scanAndRepair(seg, fh, size, isLast ? 'last' : 'closed', nextBase ?? Infinity)).summary);
        if (!isLast) await this.writeIndex(seg);
      }
      if (isLast) seg.fh = Promise.resolve(fh);
      else await fh.close();
      return seg;
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  private async readIndex(seg: Segment, size: number, end: number): Promise<SegmentSummary | undefined> {
    let buf: Buffer;
    try {
      buf = await this.fs.readFile(indexPath(seg.path));
    } catch {
      return undefined; // none yet (a crash right after a roll): built by the scan
    }
    const s = decodeIndexFile(buf, seg.base, size, end, seg.fmt.dataStart);
    if (!s) {
      this.h.indexRebuilds++;
      this.report(`${indexPath(seg.path)}: index file damaged or inconsistent with its segment; rebuilt from the segment`);
    }
    return s;
  }

  private async writeIndex(seg: Segment): Promise<void> {
    try {
      await this.fs.writeFile(indexPath(seg.path), encodeIndexFile(seg));
    } catch (err) {
      // Only costs a scan at the next open.
      this.report(`${seg.path}: could not write its index: ${String(err)}`);
    }
  }

  /**
   * Scans a segment from its start, repairing what it finds. Modes: 'last' (at open; an incomplete
   * last write is a torn tail and is cut), 'closed' (at open; offsets must reach `knownEnd`, the
   * next segment's base), 'committed' (a read found damage; `size` and `knownEnd` are the committed
   * state, nothing is truncated).
   */
  private async scanAndRepair(
    seg: Segment,
    fh: LogFile,
    size: number,
    mode: 'last' | 'closed' | 'committed',
    knownEnd: number,
  ): Promise<{ summary: SegmentSummary; regions: Array<[number, number]> }> {
    const summary = emptySummary(seg.base, seg.fmt);
    const regions: Array<[number, number]> = [];
    if (size < seg.fmt.dataStart) {
      // Cut inside its header (the header itself was read or restored): frames start after it.
      await fh.truncate(seg.fmt.dataStart);
      size = seg.fmt.dataStart;
    }
    const visit: RecordVisitor = (offset, ts, _payload, position) => {
      summary.index.maybeAdd(offset, position, ts);
      if (Number.isNaN(summary.firstTs)) summary.firstTs = ts;
      summary.lastTs = ts;
      return true;
    };
    let pos = seg.fmt.dataStart;
    let off = seg.base;
    for (let repairs = 0; ; repairs++) {
      if (repairs > MAX_REPAIRS_PER_SCAN) throw new Error(`segment log: ${seg.path} has more than ${MAX_REPAIRS_PER_SCAN} damaged places`);
      const r = await scanRecords(fh, seg.fmt, pos, off, size, visit, mode === 'last' ? Infinity : knownEnd);
      off = r.offset;
      if (r.stop === 'end') break;
      const bad = await inspectBadFrame(fh, seg.fmt, r.position, r.offset, size);
      // A torn tail is an incomplete last write, which was never acknowledged: the end mark (the
      // offset the last acknowledged round reached) is not beyond it. Anything else is damage.
      const acknowledged = (this.lastMark ?? 0) > r.offset;
      if (mode === 'last' && !bad.resync && !bad.fixed && (bad.incomplete || bad.zeros) && !acknowledged) {
        const cut = size - r.position;
        this.h.tornBytes += cut;
        this.report(
          `${seg.path}: cut ${cut} bytes of torn tail at position ${r.position} (an incomplete last write, never acknowledged); the log ends at offset ${r.offset}`,
        );
        await fh.truncate(r.position);
        await this.sync(fh);
        size = r.position;
        break;
      }
      const repaired = await this.repairRegion(seg, fh, bad, r.offset, size, mode === 'last' ? undefined : knownEnd, mode !== 'committed');
      size = repaired.size;
      regions.push([bad.start, repaired.regionEnd]);
      pos = r.position; // scanned again: now a restored record or a hole
    }
    if (mode === 'closed' && off < knownEnd) {
      // The segment ends before the next one begins: its last records were cut off.
      const hole = encodeHole(HOLE_BYTES, knownEnd, seg.fmt.salt);
      await writeAll(fh, hole, size);
      await this.sync(fh);
      size += HOLE_BYTES;
      this.h.damagedRegions++;
      this.h.recordsLost += knownEnd - off;
      this.report(`${seg.path}: ends at offset ${off} but the next segment starts at ${knownEnd}: offsets ${off}..${knownEnd - 1} (${knownEnd - off} records) are lost`);
      off = knownEnd;
    } else if (mode === 'closed' && off > knownEnd) {
      this.h.damagedRegions++;
      this.report(`${seg.path}: holds offsets up to ${off - 1} although the next segment starts at ${knownEnd}; reads use the next segment for those`);
      off = knownEnd;
    }
    summary.end = mode === 'committed' ? knownEnd : off;
    summary.size = size;
    return { summary, regions };
  }

  /**
   * Deals with one invalid frame: restores it when only header fields were hit, otherwise copies
   * the damaged bytes to `<segment>.damaged-<position>` and writes a hole over them whose `next`
   * is the offset of the next valid record (or `knownEnd`; for the last segment at open, past every
   * frame the region seems to hold, so that none of their offsets is reused).
   */
  private async repairRegion(
    seg: Segment,
    fh: LogFile,
    bad: BadFrame,
    expected: number,
    size: number,
    knownEnd: number | undefined,
    mayTruncate: boolean,
  ): Promise<{ size: number; regionEnd: number }> {
    if (bad.fixed) {
      await writeAll(fh, bad.fixed, bad.start);
      await this.sync(fh);
      this.h.damagedRegions++;
      this.h.recordsRepaired++;
      this.report(`${seg.path}: damaged header of the record at offset ${expected} (position ${bad.start}) restored from its CRC; nothing lost`);
      return { size, regionEnd: bad.start };
    }
    let regionEnd: number;
    let next: number;
    if (bad.resync?.kind === 'record') {
      regionEnd = bad.resync.position;
      next = bad.resync.offset;
    } else if (bad.resync?.kind === 'hole') {
      // Damage right before an older hole: one hole covers both.
      regionEnd = bad.resync.position + bad.resync.bytes;
      next = bad.resync.next;
    } else {
      regionEnd = size;
      // The last segment at open: past every frame the region seems to hold and past the end mark.
      next = knownEnd ?? Math.max(expected + bad.framesSeen, this.lastMark ?? 0);
    }
    const bytes = regionEnd - bad.start;
    const tail = regionEnd === size && mayTruncate;
    if (!tail && bytes < HOLE_BYTES) throw new Error(`segment log: ${seg.path}: damaged region of ${bytes} bytes at ${bad.start} is too small for a hole`);
    const aside = await this.moveAside(seg, fh, bad.start, regionEnd);
    await writeAll(fh, encodeHole(tail ? HOLE_BYTES : bytes, next, seg.fmt.salt), bad.start);
    if (tail) await fh.truncate(bad.start + HOLE_BYTES);
    await this.sync(fh);
    const lost = next - expected;
    this.h.damagedRegions++;
    this.h.recordsLost += lost;
    this.h.bytesLost += bytes;
    this.report(
      `${seg.path}: ${bytes} damaged bytes at position ${bad.start} moved aside to ${aside}; ` +
        (lost > 0 ? `offsets ${expected}..${next - 1} (${lost} records) are lost` : 'no record lost') +
        `, reading goes on at offset ${next}`,
    );
    return { size: tail ? bad.start + HOLE_BYTES : size, regionEnd };
  }

  /** Copies [from, to) of the segment into a new `<segment>.damaged-<from>` file, durably. */
  private async moveAside(seg: Segment, fh: LogFile, from: number, to: number): Promise<string> {
    const names = new Set(await this.fs.readdir(this.dir));
    let name = `${basename(seg.path)}.damaged-${from}`;
    for (let i = 1; names.has(name); i++) name = `${basename(seg.path)}.damaged-${from}-${i}`;
    const out = await this.fs.open(join(this.dir, name), 'wx');
    try {
      const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, Math.max(1, to - from)));
      for (let at = from; at < to; ) {
        const view = chunk.subarray(0, Math.min(chunk.length, to - at));
        await readFully(fh, view, at);
        await writeAll(out, view, at - from);
        at += view.length;
      }
      if (this.fsync) await out.sync();
    } finally {
      await out.close();
    }
    if (this.fsync) await this.syncDir();
    this.h.damagedFiles++;
    return name;
  }

  // ---------------------------------------------------------------------------------------------
  // Appending

  async append(payloads: ReadonlyArray<Payload>): Promise<AppendResult> {
    if (this.closing) throw new Error('segment log is closed');
    // Stamps never go backwards, so per-segment timestamp ranges stay binary-searchable.
    const timestamp = Math.max(this.clock.now(), this.lastTs);
    this.lastTs = timestamp;
    const firstOffset = this.nextOffset;
    if (payloads.length === 0) return { firstOffset, timestamp };
    this.auditBase = undefined;
    // Framing validates the payloads; offsets are taken only once it succeeded.
    const { buf, marks } = frameBatch(payloads, firstOffset, timestamp, MAX_RECORD_BYTES, this.saltForNew());
    this.nextOffset += payloads.length;
    return new Promise<AppendResult>((resolve, reject) => {
      this.enqueue({
        buf,
        marks,
        firstOffset,
        end: firstOffset + payloads.length,
        timestamp,
        hole: false,
        retain: false,
        done: (err) => (err === undefined ? resolve({ firstOffset, timestamp }) : reject(err)),
      });
    });
  }

  private enqueue(a: PendingAppend): void {
    if (this.deferred.length > 0) {
      this.queue.push(...this.deferred);
      this.deferred = [];
    }
    this.queue.push(a);
    this.flushing ??= this.flushLoop().finally(() => (this.flushing = undefined));
  }

  /**
   * Durably moves the offsets on to `target` with a hole frame, so that no offset below it is handed
   * out (again). Resolves true once written; false if that write failed (it is retried first in the
   * next round, before any later record, while appends already get offsets from `target` on).
   */
  private skipTo(target: number): Promise<boolean> {
    if (target <= this.nextOffset) return Promise.resolve(true);
    const firstOffset = this.nextOffset;
    this.nextOffset = target;
    return new Promise<boolean>((resolve) => {
      let settled = false;
      this.enqueue({
        buf: encodeHole(HOLE_BYTES, target, this.saltForNew()),
        marks: [],
        firstOffset,
        end: target,
        timestamp: this.lastTs,
        hole: true,
        retain: true,
        done: (err) => {
          if (settled) return;
          settled = true;
          resolve(err === undefined);
        },
      });
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.queue.length > 0) {
      const round = this.queue;
      this.queue = [];
      let done = 0;
      try {
        if (this.tailDirty) await this.restoreTail();
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
          for (const a of chunk) a.done();
        }
        if (this.h.failing) {
          this.report(`${this.dir}: writes succeed again (they had failed with ${this.h.failing.code} since ${new Date(this.h.failing.since).toISOString()})`);
          delete this.h.failing;
        }
        this.noteCommitted();
      } catch (err) {
        const failure = this.writeFailed(err);
        const rest = [...round.slice(done), ...this.queue];
        this.queue = [];
        for (const a of rest) {
          if (a.retain) this.deferred.push(a);
          a.done(failure);
        }
        // None of the failed appends was acknowledged, so their offsets are free again.
        this.nextOffset = Math.max(this.active().end, ...this.deferred.map((a) => a.end));
        this.tailDirty = true;
        // Frees what the failed write left behind; if this fails too, it is tried again before the next write.
        await this.restoreTail().catch(() => undefined);
      }
    }
  }

  private async writeChunk(seg: Segment, chunk: PendingAppend[], bytes: number): Promise<void> {
    const fh = await seg.fh!;
    const buffers = chunk.map((a) => a.buf);
    const inline = bytes <= SYNC_WRITE_MAX_BYTES && fh.writevSync !== undefined && fh.writeSync !== undefined;
    const bytesWritten = inline ? fh.writevSync!(buffers, seg.size) : (await fh.writev(buffers, seg.size)).bytesWritten;
    // A short write is what a filling disk does first; writing the rest gets its error (ENOSPC).
    if (bytesWritten !== bytes) await this.writeRest(fh, chunk, bytesWritten, seg.size);
    // The end mark goes with the records (one small write to the same file, synced with them): a
    // later open tells a segment cut short from a torn write, so no acknowledged offset is reused.
    const mark = encodeEndMark(chunk[chunk.length - 1].end, seg.fmt.salt);
    if (inline) writeAllSync(fh, mark, END_MARK_POSITION);
    else await writeAll(fh, mark, END_MARK_POSITION);
    if (this.fsync) await fh.datasync();
    this.counters.syncs++;
    this.counters.appends += chunk.length;
    this.counters.bytes += bytes;
    for (const a of chunk) {
      if (!a.hole) {
        for (let i = 0; i < a.marks.length; i += 2) seg.index.maybeAdd(a.marks[i + 1], seg.size + a.marks[i], a.timestamp);
        if (Number.isNaN(seg.firstTs)) seg.firstTs = a.timestamp;
        seg.lastTs = a.timestamp;
      }
      seg.end = a.end;
      seg.size += a.buf.length;
    }
    this.publish();
    this.wake();
  }

  private async writeRest(fh: LogFile, chunk: PendingAppend[], written: number, at: number): Promise<void> {
    let skip = written;
    for (const a of chunk) {
      if (skip >= a.buf.length) {
        skip -= a.buf.length;
        continue;
      }
      await writeAll(fh, a.buf.subarray(skip), at + written);
      written += a.buf.length - skip;
      skip = 0;
    }
  }

  /** After a failed write: the committed size is known, so cut whatever the failed write left. */
  private async restoreTail(): Promise<void> {
    const seg = this.active();
    const fh = await seg.fh!;
    await fh.truncate(seg.size);
    // The failed round may have moved the end mark already: back to what is committed.
    await writeAll(fh, encodeEndMark(seg.end, seg.fmt.salt), END_MARK_POSITION);
    if (this.fsync) await fh.datasync();
    this.tailDirty = false;
  }

  private writeFailed(err: unknown): LogWriteError {
    const code = errorCode(err) ?? 'EIO';
    const diskFull = isDiskFull(err);
    this.h.writeFailures++;
    if (!this.h.failing || this.h.failing.code !== code) {
      this.report(
        `${this.dir}: ${diskFull ? 'the disk is full' : 'a write failed'} (${code}: ${err instanceof Error ? err.message : String(err)}); ` +
          'appends are refused and retried with every new append until a write succeeds',
      );
    }
    this.h.failing = { since: this.h.failing?.since ?? this.clock.now(), code, diskFull };
    return new LogWriteError(
      code,
      diskFull,
      diskFull ? `the disk is full (${code}); the records were not stored` : `writing the log failed (${code}); the records were not stored`,
      { cause: err },
    );
  }

  /** Starts a new active segment; the old one is already durable, so only its index is left. */
  private async roll(): Promise<Segment> {
    const old = this.active();
    await this.writeIndex(old);
    const seg = await this.createSegment(old.end);
    this.segments.push(seg);
    old.active = false;
    this.publish(true);
    if (old.users === 0) await closeHandle(old);
    return seg;
  }

  private async createSegment(base: number): Promise<Segment> {
    const path = join(this.dir, segmentName(base));
    const fmt = v2Format(this.saltForNew());
    const fh = await this.fs.open(path, 'w+');
    try {
      await writeAll(fh, encodeSegmentHeader(fmt.salt, base), 0);
      if (this.fsync) {
        await fh.datasync();
        // The new name must survive a power loss too, or acknowledged records could vanish with it.
        await this.syncDir();
      }
    } catch (err) {
      await fh.close().catch(() => undefined);
      await this.fs.unlink(path).catch(() => undefined);
      throw err;
    }
    return { ...emptySummary(base, fmt), path, fmt, fh: Promise.resolve(fh), active: true, users: 0, retired: false };
  }

  private async sync(fh: LogFile): Promise<void> {
    if (this.fsync) await fh.datasync();
  }

  private async syncDir(): Promise<void> {
    const d = await this.fs.open(this.dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Offsets are never handed out twice

  private async readHwm(): Promise<number | undefined> {
    let buf: Buffer;
    try {
      buf = await this.fs.readFile(join(this.dir, HWM_FILE));
    } catch {
      return undefined;
    }
    if (buf.length !== 16 || buf.readUInt32LE(0) !== HWM_MAGIC || crc32c(buf.subarray(0, 12)) !== buf.readUInt32LE(12)) {
      this.report(`${join(this.dir, HWM_FILE)}: damaged; ignored (it is rewritten as the log grows)`);
      return undefined;
    }
    const v = buf.readDoubleLE(4);
    return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  }

  /** After a write round: remember the end reached, at most once per HWM_INTERVAL_MS, off the append path. */
  private noteCommitted(): void {
    if (this.hwm.timer || this.hwm.writing || this.endOffset() <= this.hwm.written || this.closing) return;
    const wait = Math.max(0, this.hwm.lastAt + HWM_INTERVAL_MS - performance.now());
    this.hwm.timer = setTimeout(() => {
      this.hwm.timer = undefined;
      void this.writeHwm(false);
    }, wait);
    this.hwm.timer.unref();
  }

  /**
   * Writes the high-water mark (tmp file + rename). Lazily it survives a process crash; at close it
   * is synced. It only ever lags the committed end, so at open an end below it means lost records.
   */
  private async writeHwm(durable: boolean): Promise<void> {
    while (this.hwm.writing) await this.hwm.writing;
    const end = this.endOffset();
    if (end <= this.hwm.written && !durable) return;
    this.hwm.writing = (async () => {
      const buf = Buffer.alloc(16);
      buf.writeUInt32LE(HWM_MAGIC, 0);
      buf.writeDoubleLE(end, 4);
      buf.writeUInt32LE(crc32c(buf.subarray(0, 12)), 12);
      const tmp = join(this.dir, `${HWM_FILE}.tmp`);
      const f = await this.fs.open(tmp, 'w+');
      try {
        await writeAll(f, buf, 0);
        if (durable && this.fsync) await f.sync();
      } finally {
        await f.close();
      }
      await this.fs.rename(tmp, join(this.dir, HWM_FILE));
      this.hwm.written = Math.max(this.hwm.written, end);
      this.hwm.lastAt = performance.now();
    })()
      .catch(() => undefined) // only a hint: a full disk must not fail anything else
      .finally(() => (this.hwm.writing = undefined));
    await this.hwm.writing;
  }

  async checkConsumer(consumer: string, checkpoint: number): Promise<OffsetGap | undefined> {
    const prior = this.gaps.get(consumer);
    if (prior && checkpoint <= prior.checkpoint) return prior;
    if (!Number.isSafeInteger(checkpoint) || checkpoint <= (this.auditBase ?? this.endOffset())) return undefined;
    await this.flushing; // appends in flight may reach it
    const end = this.auditBase ?? this.endOffset();
    if (checkpoint <= end || this.closing) return undefined;
    const gap = offsetGap(consumer, checkpoint, end, 'damage');
    this.gaps.set(consumer, gap);
    this.h.checkpointGaps++;
    this.report(`${this.dir}: ${consumer}: ${gap.message}`);
    await this.skipTo(checkpoint);
    return gap;
  }

  // ---------------------------------------------------------------------------------------------
  // Reading

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
      const seg = this.segments[segmentIndexFor(this.segments, next)];
      const from = next;
      const before = records.length;
      const scanned = await this.scanFrom(seg, from, (off, timestamp, payload) => {
        if (off < from) return true;
        if (records.length >= maxRecords || (records.length > 0 && bytes + payload.length > maxBytes)) {
          full = true;
          return false;
        }
        bytes += payload.length;
        // A view into the scan's own chunk (kept, not reused): no copy per record.
        records.push({ offset: off, timestamp, payload });
        return true;
      }, true);
      if (scanned.stop === 'gone') break;
      if (records.length > before) next = records[records.length - 1].offset + 1;
      // The segment was read to its end: step over any hole at its tail.
      if (scanned.stop === 'end') next = Math.max(next, scanned.end);
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
   * Scans committed records of `seg`, starting at the index entry at or below `offset`. Damage
   * found on the way is repaired (once, under a lock) and the scan goes on after it. Returns
   * 'gone' when the segment was deleted under us before it could be opened, and the segment's
   * committed end as of the start of the scan.
   */
  private async scanFrom(seg: Segment, offset: number, visit: RecordVisitor, keepChunks = false): Promise<{ stop: 'end' | 'visitor' | 'gone'; end: number }> {
    const endPos = seg.size;
    const endOff = seg.end;
    seg.users++;
    try {
      let fh: LogFile;
      try {
        fh = await (seg.fh ??= this.fs.open(seg.path, 'r'));
      } catch (err) {
        seg.fh = undefined;
        if (seg.retired) return { stop: 'gone', end: endOff };
        throw err;
      }
      let i = seg.index.floorOffset(offset);
      let [pos, off] = i >= 0 ? [seg.index.positions[i], seg.index.offsets[i]] : [seg.fmt.dataStart, seg.base];
      let trusting = i >= 0;
      for (let repairs = 0; ; repairs++) {
        const r = await scanRecords(fh, seg.fmt, pos, off, endPos, visit, endOff, keepChunks);
        if (r.stop !== 'bad') return { stop: r.stop, end: endOff };
        if (seg.retired) return { stop: 'gone', end: endOff };
        if (repairs >= MAX_REPAIRS_PER_SCAN) throw new Error(`segment log: ${seg.path} has more than ${MAX_REPAIRS_PER_SCAN} damaged places`);
        if (trusting && r.position === pos) {
          // The index entry does not lead to its record: a wrong index, or damage right there. A
          // scan from the segment's start tells which, repairs the one and rebuilds the other.
          await this.locked(() => this.rebuildIndex(seg, endPos, endOff));
          i = seg.index.floorOffset(offset);
          [pos, off] = i >= 0 ? [seg.index.positions[i], seg.index.offsets[i]] : [seg.fmt.dataStart, seg.base];
          trusting = false;
          continue;
        }
        await this.locked(() => this.repairAt(seg, r.position, r.offset, endPos, endOff));
        [pos, off] = [r.position, r.offset];
        trusting = false;
      }
    } finally {
      seg.users--;
      if (seg.users === 0 && (seg.retired || !seg.active)) await closeHandle(seg);
    }
  }

  /** Runs repairs one at a time, so two readers finding the same damage repair it once. */
  private locked<T>(f: () => Promise<T>): Promise<T> {
    const run = this.repairs.then(f);
    this.repairs = run.catch(() => undefined);
    return run;
  }

  private async repairAt(seg: Segment, position: number, expected: number, endPos: number, endOff: number): Promise<void> {
    if (seg.retired) return;
    const fh = await this.fs.open(seg.path, 'r+');
    try {
      // Another reader may have repaired it while this one waited for the lock.
      const again = await scanRecords(fh, seg.fmt, position, expected, endPos, () => false, endOff);
      if (again.stop !== 'bad' || again.position !== position) return;
      const bad = await inspectBadFrame(fh, seg.fmt, position, expected, endPos);
      const { regionEnd } = await this.repairRegion(seg, fh, bad, expected, endPos, endOff, false);
      seg.index.dropInside(position, regionEnd);
      this.publish(true);
      if (!seg.active) await this.writeIndex(seg);
    } finally {
      await fh.close();
    }
  }

  private async rebuildIndex(seg: Segment, endPos: number, endOff: number): Promise<void> {
    if (seg.retired) return;
    const fh = await this.fs.open(seg.path, 'r+');
    try {
      const { summary } = await this.scanAndRepair(seg, fh, endPos, 'committed', endOff);
      // Entries of the active segment's records appended since this scan began are kept.
      const old = seg.index;
      for (let k = 0; k < old.positions.length; k++) {
        if (old.positions[k] >= endPos) summary.index.maybeAdd(old.offsets[k], old.positions[k], old.timestamps[k]);
      }
      seg.index = summary.index;
      this.publish(true);
      this.h.indexRebuilds++;
      this.report(`${seg.path}: its index did not match the segment; rebuilt`);
      if (!seg.active) await this.writeIndex(seg);
    } finally {
      await fh.close();
    }
  }


  // ---------------------------------------------------------------------------------------------
  // Retention, closing

  async deleteOlderThan(cutoffMs: number): Promise<number> {
    let n = 0;
    // The last segment is the active one (or the one being rolled away from): never touched.
    while (n < this.segments.length - 1 && this.segments[n].lastTs < cutoffMs) n++;
    const gone = this.segments.splice(0, n);
    // Views learn the new start before the files go (they re-clamp reads to it).
    if (gone.length > 0) this.publish(true);
    let removed = 0;
    const names = gone.length > 0 && this.h.damagedFiles > 0 ? await this.fs.readdir(this.dir).catch(() => [] as string[]) : [];
    for (const seg of gone) {
      removed += seg.end - seg.base;
      seg.retired = true;
      // Unlinking while a reader holds the handle is fine on POSIX; space is freed at close.
      await this.fs.rm(seg.path);
      await this.fs.rm(indexPath(seg.path));
      // Damaged bytes kept aside go with their segment: they are past retention too.
      for (const name of names.filter((x) => x.startsWith(`${basename(seg.path)}.damaged-`))) {
        await this.fs.rm(join(this.dir, name));
        this.h.damagedFiles = Math.max(0, this.h.damagedFiles - 1);
      }
      if (seg.users === 0) await closeHandle(seg);
    }
    return removed;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.flushing;
      clearTimeout(this.hwm.timer);
      this.hwm.timer = undefined;
      // Only when it moved: a shutdown of thousands of idle shard logs costs no syncs.
      if (!this.destroying && this.endOffset() > this.hwm.written) await this.writeHwm(true);
      for (const w of this.waiters) this.settleWaiter(w, false);
      this.publish(true);
      for (const seg of this.segments) {
        seg.retired = true;
        if (seg.users === 0) await closeHandle(seg);
      }
      this.options.onClose?.(this);
    })();
    return this.closing;
  }

  async destroy(): Promise<void> {
    this.destroying = true;
    await this.close();
    await this.fs.rm(this.dir);
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

async function writeAll(fh: LogFile, buf: Buffer, position: number): Promise<void> {
  for (let done = 0; done < buf.length; ) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    done += bytesWritten;
  }
}

function writeAllSync(fh: LogFile, buf: Buffer, position: number): void {
  for (let done = 0; done < buf.length; ) {
    const n = fh.writeSync!(buf, done, buf.length - done, position + done);
    if (n <= 0) throw new Error('write made no progress');
    done += n;
  }
}

function emptySummary(base: number, fmt: SegmentFormat): SegmentSummary {
  return { base, end: base, size: fmt.dataStart, firstTs: NaN, lastTs: -Infinity, index: new SparseIndex() };
}
