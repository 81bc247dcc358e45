// On-disk formats of the segment log: record framing, the per-segment sparse index (in memory and
// as a file) and the sequential record scanner shared by recovery, reads and timestamp lookups.
// Kept apart from segment-log.ts so the byte layout lives in one place.

import type { FileHandle } from 'node:fs/promises';
import { crc32c } from '@node-rs/crc32';

/** [u32 payload length][u32 crc32c(rest of header + payload)][f64 offset][f64 timestamp ms]. */
export const HEADER_BYTES = 24;
/** Guards reads of a corrupt length field against huge allocations, and callers against abuse. */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** One sparse index entry per this many segment bytes bounds the scan behind any lookup. */
export const INDEX_INTERVAL_BYTES = 4096;
export const READ_CHUNK_BYTES = 256 * 1024;

const CRC_START = 8;

/**
 * Frames a batch into one buffer; returns the in-batch positions that deserve an index entry.
 * String payloads are encoded straight into the batch buffer (no intermediate Buffer per record).
 */
export function frameBatch(
  payloads: ReadonlyArray<Buffer | string>,
  firstOffset: number,
  timestamp: number,
  maxRecordBytes: number,
): { buf: Buffer; marks: number[] } {
  const lengths = new Array<number>(payloads.length);
  let total = 0;
  for (let i = 0; i < payloads.length; i++) {
    const p = payloads[i];
    let len: number;
    if (typeof p === 'string') len = Buffer.byteLength(p, 'utf8');
    else if (p instanceof Uint8Array) len = p.length;
    else throw new TypeError('payloads must be Buffers or strings');
    if (len > maxRecordBytes) throw new RangeError(`record of ${len} bytes exceeds ${maxRecordBytes}`);
    lengths[i] = len;
    total += HEADER_BYTES + len;
  }
  const buf = Buffer.allocUnsafe(total);
  const marks: number[] = [];
  let pos = 0;
  let lastMark = -Infinity;
  for (let i = 0; i < payloads.length; i++) {
    const p = payloads[i];
    const len = lengths[i];
    // Marks inside a big batch keep lookups bounded; the segment-level filter thins them later.
    if (pos - lastMark >= INDEX_INTERVAL_BYTES) {
      marks.push(pos, firstOffset + i);
      lastMark = pos;
    }
    buf.writeUInt32LE(len, pos);
    buf.writeDoubleLE(firstOffset + i, pos + 8);
    buf.writeDoubleLE(timestamp, pos + 16);
    if (typeof p === 'string') buf.write(p, pos + HEADER_BYTES, len, 'utf8');
    else buf.set(p, pos + HEADER_BYTES);
    // Header tail and payload are contiguous: one native call per record instead of two.
    const crc = crc32c(buf.subarray(pos + CRC_START, pos + HEADER_BYTES + len));
    buf.writeUInt32LE(crc, pos + 4);
    pos += HEADER_BYTES + len;
  }
  return { buf, marks };
}

/** Sparse index of one segment: parallel arrays (packed doubles) sorted by offset and position. */
export class SparseIndex {
  offsets: number[] = [];
  positions: number[] = [];
  timestamps: number[] = [];

  /** Adds an entry unless the previous one is too close to be worth its memory. */
  maybeAdd(offset: number, position: number, timestamp: number): void {
    const n = this.positions.length;
    if (n > 0 && position - this.positions[n - 1] < INDEX_INTERVAL_BYTES) return;
    this.offsets.push(offset);
    this.positions.push(position);
    this.timestamps.push(timestamp);
  }

  /** Entry to start scanning from for `offset`: the last one at or below it (-1 when none). */
  floorOffset(offset: number): number {
    return lastWhere(this.offsets, (v) => v <= offset);
  }

  /** Last entry stamped strictly before `ts`; timestamps are non-decreasing within a log. */
  lastBefore(ts: number): number {
    return lastWhere(this.timestamps, (v) => v < ts);
  }
}

function lastWhere(values: number[], pred: (v: number) => boolean): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (pred(values[mid])) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** What the index file of a closed segment remembers, so opening skips a full scan. */
export interface SegmentSummary {
  base: number;
  end: number;
  size: number;
  firstTs: number;
  lastTs: number;
  index: SparseIndex;
}

const INDEX_MAGIC = 0x58495350; // "PSIX"
const INDEX_VERSION = 1;
const INDEX_HEAD = 4 + 4 + 5 * 8 + 4;

export function encodeIndexFile(s: SegmentSummary): Buffer {
  const n = s.index.offsets.length;
  const buf = Buffer.allocUnsafe(INDEX_HEAD + n * 24 + 4);
  buf.writeUInt32LE(INDEX_MAGIC, 0);
  buf.writeUInt32LE(INDEX_VERSION, 4);
  [s.base, s.end, s.size, s.firstTs, s.lastTs].forEach((v, i) => buf.writeDoubleLE(v, 8 + i * 8));
  buf.writeUInt32LE(n, 48);
  for (let i = 0; i < n; i++) {
    const p = INDEX_HEAD + i * 24;
    buf.writeDoubleLE(s.index.offsets[i], p);
    buf.writeDoubleLE(s.index.positions[i], p + 8);
    buf.writeDoubleLE(s.index.timestamps[i], p + 16);
  }
  buf.writeUInt32LE(crc32c(buf.subarray(0, buf.length - 4)), buf.length - 4);
  return buf;
}

/** Returns undefined for anything that is not an intact index of this very segment file. */
export function decodeIndexFile(buf: Buffer, base: number, fileSize: number): SegmentSummary | undefined {
  if (buf.length < INDEX_HEAD + 4) return undefined;
  if (buf.readUInt32LE(0) !== INDEX_MAGIC || buf.readUInt32LE(4) !== INDEX_VERSION) return undefined;
  if (crc32c(buf.subarray(0, buf.length - 4)) !== buf.readUInt32LE(buf.length - 4)) return undefined;
  const [b, end, size, firstTs, lastTs] = [0, 1, 2, 3, 4].map((i) => buf.readDoubleLE(8 + i * 8));
  const n = buf.readUInt32LE(48);
  if (b !== base || size !== fileSize || end < base || buf.length !== INDEX_HEAD + n * 24 + 4) return undefined;
  const index = new SparseIndex();
  for (let i = 0; i < n; i++) {
    const p = INDEX_HEAD + i * 24;
    index.offsets.push(buf.readDoubleLE(p));
    index.positions.push(buf.readDoubleLE(p + 8));
    index.timestamps.push(buf.readDoubleLE(p + 16));
  }
  return { base, end, size, firstTs, lastTs, index };
}

/** Called per valid record; `payload` is a view into a reused buffer. Return false to stop there. */
export type RecordVisitor = (offset: number, timestamp: number, payload: Buffer, position: number) => boolean;

export interface ScanResult {
  /** File position and offset of the first record not consumed. */
  position: number;
  offset: number;
  /** 'end': reached `endPos` cleanly; 'torn': incomplete or invalid record at `position`. */
  stop: 'end' | 'torn' | 'visitor';
}

/**
 * Walks the records of a segment from `position` (which must start a record with `offset`) up to
 * `endPos`, validating length, CRC and offset contiguity, with positional reads into one buffer.
 */
export async function scanRecords(
  fh: FileHandle,
  position: number,
  offset: number,
  endPos: number,
  visit: RecordVisitor,
): Promise<ScanResult> {
  let buf = Buffer.allocUnsafe(Math.max(HEADER_BYTES, Math.min(READ_CHUNK_BYTES, endPos - position)));
  let bufPos = position; // file position of buf[0]
  let filled = 0;
  let p = 0;
  const stop = (why: ScanResult['stop']): ScanResult => ({ position: bufPos + p, offset, stop: why });
  for (;;) {
    if (bufPos + p >= endPos) return stop('end');
    const avail = filled - p;
    let need = HEADER_BYTES;
    if (avail >= HEADER_BYTES) {
      const len = buf.readUInt32LE(p);
      if (len > MAX_RECORD_BYTES) return stop('torn');
      need = HEADER_BYTES + len;
    }
    if (avail < need) {
      if (bufPos + p + need > endPos) return stop('torn');
      bufPos += p;
      p = 0;
      if (buf.length < need) buf = Buffer.allocUnsafe(need);
      const want = Math.min(buf.length, endPos - bufPos);
      filled = 0;
      while (filled < want) {
        const { bytesRead } = await fh.read(buf, filled, want - filled, bufPos + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      if (filled < need) return stop('torn');
      continue;
    }
    const payload = buf.subarray(p + HEADER_BYTES, p + need);
    const crc = crc32c(buf.subarray(p + CRC_START, p + need));
    const ts = buf.readDoubleLE(p + 16);
    if (crc !== buf.readUInt32LE(p + 4) || buf.readDoubleLE(p + 8) !== offset || !Number.isFinite(ts)) {
      return stop('torn');
    }
    if (!visit(offset, ts, payload, bufPos + p)) return stop('visitor');
    p += need;
    offset++;
  }
}
