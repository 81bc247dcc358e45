// On-disk formats of the segment log: the segment header, record and hole framing (format 2, and
// reading format 1 of earlier releases), the per-segment sparse index (in memory and as a file),
// the sequential scanner shared by recovery, reads and timestamp lookups, and the analysis of a
// damaged region (where the next valid frame is, whether it is a torn tail, whether only header
// fields were hit and the record can be restored). Kept apart from segment-log.ts so the byte
// layout lives in one place.
//
// Format 2 (segments created by this version):
//   segment header, 48 bytes: two identical 16-byte copies of
//     [u32 SEGMENT_MAGIC][u16 version=2][u16 header bytes=48][u32 salt][u32 crc32c(first 12 bytes)]
//   then the end mark [f64 end offset][u32 crc32c(end offset, salt)][u32 0], rewritten with every
//   write round (same file, before its fdatasync): the offset the segment's records had reached,
//   so a segment cut short later is told apart from a torn write, and no offset is reused.
//   record: [u32 FRAME_MAGIC][u32 crc][u32 payload length][f64 offset][f64 timestamp ms][payload]
//     crc = crc32c(length..end of payload) seeded with the log's salt
//   hole:   [u32 HOLE_MAGIC][u32 crc][u32 bytes covered, header included][u32 0][f64 next offset]
//     crc = crc32c(bytes 8..24) seeded with the salt. A hole stands where damaged bytes were (they
//     were copied to `<segment>.damaged-<position>` first), or marks offsets skipped so that none is
//     handed out twice; the scanner jumps over it and continues at `next offset`.
// The magics let recovery resynchronise on the next frame after damage; the salt (random per log,
// never sent anywhere) means bytes a client put into a payload can never pass for a frame.
//
// Format 1 (earlier releases; read, repaired, never appended to): no segment header, records
//   [u32 payload length][u32 crc32c(offset..payload)][f64 offset][f64 timestamp ms][payload];
//   holes as in format 2 with salt 0 (HOLE_MAGIC is above any valid length, so it cannot be
//   mistaken for one). A data directory of an earlier release opens as it is: its last segment is
//   recovered and closed, and new records go to a format-2 segment (no migration step).

import { crc32c } from '@node-rs/crc32';
import type { LogFile } from './fs.js';

/** Guards reads of a corrupt length field against huge allocations, and callers against abuse. */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** One sparse index entry per this many segment bytes bounds the scan behind any lookup. */
export const INDEX_INTERVAL_BYTES = 4096;
export const READ_CHUNK_BYTES = 256 * 1024;

export const FORMAT_VERSION = 2;
export const SEGMENT_HEADER_BYTES = 48;
/** Where the end mark sits in a format-2 segment, and its size. */
export const END_MARK_POSITION = 32;
export const END_MARK_BYTES = 16;
/** Record header of format 2. */
export const HEADER_BYTES = 28;
export const V1_HEADER_BYTES = 24;
export const HOLE_BYTES = 24;
/** The smallest thing that can stand at a frame position (a hole, or an empty format-1 record). */
const MIN_FRAME_BYTES = 24;

// As little-endian u32s all three are above MAX_RECORD_BYTES, so none reads as a format-1 length.
const SEGMENT_MAGIC = 0x324c5350; // "PSL2"
const FRAME_MAGIC = 0xa5f0c3e9;
const HOLE_MAGIC = 0xa5f0c3d1;
const HEADER_COPY = 16;
const FRAME_MAGIC_BYTES = u32le(FRAME_MAGIC);
const HOLE_MAGIC_BYTES = u32le(HOLE_MAGIC);

function u32le(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v, 0);
  return b;
}

export interface SegmentFormat {
  version: 1 | 2;
  /** Seed of every CRC in the segment (0 in format 1). */
  salt: number;
  /** File position of the first frame. */
  dataStart: number;
  /** Record header bytes. */
  headerBytes: number;
}

export const V1_FORMAT: SegmentFormat = Object.freeze({ version: 1, salt: 0, dataStart: 0, headerBytes: V1_HEADER_BYTES });

export function v2Format(salt: number): SegmentFormat {
  return { version: 2, salt: salt >>> 0, dataStart: SEGMENT_HEADER_BYTES, headerBytes: HEADER_BYTES };
}

export function encodeSegmentHeader(salt: number, end: number): Buffer {
  const buf = Buffer.alloc(SEGMENT_HEADER_BYTES);
  encodeEndMark(end, salt).copy(buf, END_MARK_POSITION);
  for (const at of [0, HEADER_COPY]) {
    buf.writeUInt32LE(SEGMENT_MAGIC, at);
    buf.writeUInt16LE(FORMAT_VERSION, at + 4);
    buf.writeUInt16LE(SEGMENT_HEADER_BYTES, at + 6);
    buf.writeUInt32LE(salt >>> 0, at + 8);
    buf.writeUInt32LE(crc32c(buf.subarray(at, at + 12)), at + 12);
  }
  return buf;
}

function headerCopySalt(buf: Buffer, at: number): number | undefined {
  if (buf.length < at + HEADER_COPY) return undefined;
  if (buf.readUInt32LE(at) !== SEGMENT_MAGIC || buf.readUInt16LE(at + 4) !== FORMAT_VERSION) return undefined;
  if (buf.readUInt16LE(at + 6) !== SEGMENT_HEADER_BYTES) return undefined;
  if (crc32c(buf.subarray(at, at + 12)) !== buf.readUInt32LE(at + 12)) return undefined;
  return buf.readUInt32LE(at + 8);
}

/** The end mark: the offset the segment's records reached by the last write round. */
export function encodeEndMark(end: number, salt: number): Buffer {
  const buf = Buffer.alloc(END_MARK_BYTES);
  buf.writeDoubleLE(end, 0);
  buf.writeUInt32LE(crc32c(buf.subarray(0, 8), salt), 8);
  return buf;
}

function readEndMark(head: Buffer, salt: number): number | undefined {
  if (head.length < END_MARK_POSITION + END_MARK_BYTES) return undefined;
  const m = head.subarray(END_MARK_POSITION, END_MARK_POSITION + END_MARK_BYTES);
  if (crc32c(m.subarray(0, 8), salt) !== m.readUInt32LE(8)) return undefined;
  const end = m.readDoubleLE(0);
  return Number.isSafeInteger(end) && end >= 0 ? end : undefined;
}

export type HeaderState =
  | {
      kind: 'v2';
      fmt: SegmentFormat;
      /** The end mark, when intact. */
      mark?: number;
      /** A damaged copy: overwrite the two copies (not the mark) with these 32 bytes at position 0. */
      rewrite?: Buffer;
      recovered?: boolean;
    }
  | { kind: 'v1' }
  /** Nothing, or only part of a header, was written when the segment was created. */
  | { kind: 'unwritten' };

/** Reads which format a segment file is in, repairing what one damaged header copy can tell. */
export async function readSegmentHeader(fh: LogFile, size: number): Promise<HeaderState> {
  if (size === 0) return { kind: 'unwritten' };
  const head = Buffer.alloc(Math.min(size, SEGMENT_HEADER_BYTES + HEADER_BYTES));
  await readFully(fh, head, 0);
  const a = headerCopySalt(head, 0);
  const b = headerCopySalt(head, HEADER_COPY);
  const v2 = (salt: number, rewrite: boolean, recovered = false): HeaderState => {
    const mark = readEndMark(head, salt);
    return {
      kind: 'v2',
      fmt: v2Format(salt),
      ...(mark !== undefined ? { mark } : {}),
      ...(rewrite ? { rewrite: encodeSegmentHeader(salt, 0).subarray(0, END_MARK_POSITION), recovered } : {}),
    };
  };
  if (a !== undefined && b !== undefined && a === b) return v2(a, false);
  if (a !== undefined || b !== undefined) return v2((a ?? b)!, true);
  const first = head.length >= 4 ? head.readUInt32LE(0) : 0;
  if (head.length >= 4 && (first <= MAX_RECORD_BYTES || first === HOLE_MAGIC)) return { kind: 'v1' };
  if (size < SEGMENT_HEADER_BYTES && isHeaderPrefix(head)) return { kind: 'unwritten' };
  // Both copies are damaged: the salt can still be recovered from the first record's CRC.
  const salt = size >= SEGMENT_HEADER_BYTES + HEADER_BYTES ? await recoverSalt(fh, size) : undefined;
  if (salt !== undefined) return v2(salt, true, true);
  if (size < SEGMENT_HEADER_BYTES + HEADER_BYTES) return { kind: 'unwritten' };
  // Not recognisable: scanned as format 1, so every byte of it ends up reported and moved aside.
  return { kind: 'v1' };
}

function isHeaderPrefix(head: Buffer): boolean {
  const want = encodeSegmentHeader(0, 0);
  for (let i = 0; i < Math.min(head.length, END_MARK_POSITION); i++) {
    // Only the salt and CRC bytes may differ from a header written with salt 0.
    const inVarying = (i % HEADER_COPY >= 8 && i % HEADER_COPY < 16) || head[i] === 0;
    if (!inVarying && head[i] !== want[i]) return false;
  }
  return true;
}

/**
 * Solves crc32c(data, salt) = stored for the salt: CRC32C is affine in its initial state over
 * GF(2), so 33 CRCs and a 32x32 elimination give the one salt that explains the first record.
 * Checked against the second record when there is one.
 */
async function recoverSalt(fh: LogFile, size: number): Promise<number | undefined> {
  const frames = await firstFrames(fh, size, 2);
  if (frames.length === 0) return undefined;
  const { data, crc } = frames[0];
  const f0 = crc32c(data, 0) >>> 0;
  // Echelon basis of the map salt -> crc32c(data, salt) ^ crc32c(data, 0), one unit salt at a time.
  const basis: Array<{ image: number; salt: number } | undefined> = new Array(32);
  for (let i = 0; i < 32; i++) {
    let image = (crc32c(data, (1 << i) >>> 0) ^ f0) >>> 0;
    let salt = (1 << i) >>> 0;
    for (let bit = 31; bit >= 0 && image !== 0; bit--) {
      if (((image >>> bit) & 1) === 0) continue;
      const b = basis[bit];
      if (!b) {
        basis[bit] = { image, salt };
        break;
      }
      image = (image ^ b.image) >>> 0;
      salt = (salt ^ b.salt) >>> 0;
    }
  }
  let target = (crc ^ f0) >>> 0;
  let salt = 0;
  for (let bit = 31; bit >= 0; bit--) {
    if (((target >>> bit) & 1) === 0) continue;
    const b = basis[bit];
    if (!b) return undefined;
    target = (target ^ b.image) >>> 0;
    salt = (salt ^ b.salt) >>> 0;
  }
  if (target !== 0 || (crc32c(data, salt) >>> 0) !== crc) return undefined;
  if (frames[1] && (crc32c(frames[1].data, salt) >>> 0) !== frames[1].crc) return undefined;
  return salt;
}

async function firstFrames(fh: LogFile, size: number, max: number): Promise<Array<{ data: Buffer; crc: number }>> {
  const out: Array<{ data: Buffer; crc: number }> = [];
  let pos = SEGMENT_HEADER_BYTES;
  while (out.length < max && pos + HEADER_BYTES <= size) {
    const h = Buffer.alloc(HEADER_BYTES);
    await readFully(fh, h, pos);
    if (h.readUInt32LE(0) !== FRAME_MAGIC) break;
    const len = h.readUInt32LE(8);
    if (len > MAX_RECORD_BYTES || pos + HEADER_BYTES + len > size) break;
    const data = Buffer.alloc(HEADER_BYTES - 8 + len);
    await readFully(fh, data, pos + 8);
    out.push({ data, crc: h.readUInt32LE(4) });
    pos += HEADER_BYTES + len;
  }
  return out;
}

/**
 * Frames a batch (format 2) into one buffer; returns the in-batch positions that deserve an index
 * entry. String payloads are encoded straight into the batch buffer (no intermediate Buffer).
 */
export function frameBatch(
  payloads: ReadonlyArray<Buffer | string>,
  firstOffset: number,
  timestamp: number,
  maxRecordBytes: number,
  salt: number,
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
    buf.writeUInt32LE(FRAME_MAGIC, pos);
    buf.writeUInt32LE(len, pos + 8);
    buf.writeDoubleLE(firstOffset + i, pos + 12);
    buf.writeDoubleLE(timestamp, pos + 20);
    if (typeof p === 'string') buf.write(p, pos + HEADER_BYTES, len, 'utf8');
    else buf.set(p, pos + HEADER_BYTES);
    // Length, header tail and payload are contiguous: one native call per record.
    buf.writeUInt32LE(crc32c(buf.subarray(pos + 8, pos + HEADER_BYTES + len), salt), pos + 4);
    pos += HEADER_BYTES + len;
  }
  return { buf, marks };
}

/** A hole frame covering `bytes` bytes (its own header included) after which offsets go on at `next`. */
export function encodeHole(bytes: number, next: number, salt: number): Buffer {
  if (bytes < HOLE_BYTES || bytes > 0xffffffff) throw new RangeError(`a hole covers ${HOLE_BYTES} to 2^32-1 bytes, not ${bytes}`);
  const buf = Buffer.alloc(HOLE_BYTES);
  buf.writeUInt32LE(HOLE_MAGIC, 0);
  buf.writeUInt32LE(bytes, 8);
  buf.writeDoubleLE(next, 16);
  buf.writeUInt32LE(crc32c(buf.subarray(8, HOLE_BYTES), salt), 4);
  return buf;
}

/** The hole at buf[p..p+24), or undefined when those bytes are not a valid one. */
function readHole(buf: Buffer, p: number, salt: number): { bytes: number; next: number } | undefined {
  if (buf.readUInt32LE(p) !== HOLE_MAGIC) return undefined;
  if (crc32c(buf.subarray(p + 8, p + HOLE_BYTES), salt) !== buf.readUInt32LE(p + 4)) return undefined;
  const bytes = buf.readUInt32LE(p + 8);
  const next = buf.readDoubleLE(p + 16);
  if (bytes < HOLE_BYTES || !Number.isSafeInteger(next) || next < 0) return undefined;
  return { bytes, next };
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

  /** Drops the entries whose position lies strictly inside (from, to): they point into a hole now. */
  dropInside(from: number, to: number): void {
    const keep = this.positions.map((p) => p <= from || p >= to);
    this.offsets = this.offsets.filter((_, i) => keep[i]);
    this.positions = this.positions.filter((_, i) => keep[i]);
    this.timestamps = this.timestamps.filter((_, i) => keep[i]);
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

/**
 * Returns undefined for anything that is not an intact, self-consistent index of this very segment
 * file ending at `end`: the CRC only proves the file is as written, so every entry is checked too
 * (and a read that finds an entry pointing at the wrong record rebuilds the index anyway).
 */
export function decodeIndexFile(buf: Buffer, base: number, fileSize: number, end: number, dataStart: number): SegmentSummary | undefined {
  if (buf.length < INDEX_HEAD + 4) return undefined;
  if (buf.readUInt32LE(0) !== INDEX_MAGIC || buf.readUInt32LE(4) !== INDEX_VERSION) return undefined;
  if (crc32c(buf.subarray(0, buf.length - 4)) !== buf.readUInt32LE(buf.length - 4)) return undefined;
  const [b, e, size, firstTs, lastTs] = [0, 1, 2, 3, 4].map((i) => buf.readDoubleLE(8 + i * 8));
  const n = buf.readUInt32LE(48);
  if (b !== base || size !== fileSize || e !== end || buf.length !== INDEX_HEAD + n * 24 + 4) return undefined;
  const index = new SparseIndex();
  let prev = { offset: base - 1, position: dataStart - 1, ts: -Infinity };
  for (let i = 0; i < n; i++) {
    const p = INDEX_HEAD + i * 24;
    const offset = buf.readDoubleLE(p);
    const position = buf.readDoubleLE(p + 8);
    const ts = buf.readDoubleLE(p + 16);
    const sane =
      Number.isSafeInteger(offset) && offset > prev.offset && offset < end &&
      Number.isSafeInteger(position) && position > prev.position && position < size &&
      Number.isFinite(ts) && ts >= prev.ts;
    if (!sane) return undefined;
    index.offsets.push(offset);
    index.positions.push(position);
    index.timestamps.push(ts);
    prev = { offset, position, ts };
  }
  return { base, end, size, firstTs, lastTs, index };
}

/**
 * Called per valid record; `payload` is a view into a reused buffer (unless the scan keeps its
 * chunks: then the view stays valid). Return false to stop there.
 */
export type RecordVisitor = (offset: number, timestamp: number, payload: Buffer, position: number) => boolean;

export interface ScanResult {
  /** File position and expected offset of the first frame not consumed. */
  position: number;
  offset: number;
  /**
   * 'end': reached `endPos` (or `endOffset`) cleanly; 'bad': the frame at `position` is invalid or
   * incomplete; 'visitor': the visitor stopped.
   */
  stop: 'end' | 'bad' | 'visitor';
}

/**
 * Walks the frames of a segment from `position` (which must start a frame, the next record being
 * `offset`) up to `endPos`, validating magic, length, CRC and offset contiguity, with positional
 * reads into one buffer. Holes move the expected offset to their `next`. Stops at the first record
 * whose offset reaches `endOffset`. `keepChunks` reads each chunk into a new buffer instead, so the
 * payload views handed to the visitor stay valid and a reader needs no copy per record.
 */
export async function scanRecords(
  fh: LogFile,
  fmt: SegmentFormat,
  position: number,
  offset: number,
  endPos: number,
  visit: RecordVisitor,
  endOffset = Infinity,
  keepChunks = false,
): Promise<ScanResult> {
  let buf = Buffer.allocUnsafe(Math.max(HEADER_BYTES, Math.min(READ_CHUNK_BYTES, endPos - position)));
  let bufPos = position; // file position of buf[0]
  let filled = 0;
  let p = 0;
  const { salt, headerBytes: H } = fmt;
  const v2 = fmt.version === 2;
  const stop = (why: ScanResult['stop']): ScanResult => ({ position: bufPos + p, offset, stop: why });
  /** Makes buf hold at least `n` bytes from the current position; false when the file ends first. */
  const refill = async (n: number): Promise<boolean> => {
    if (bufPos + p + n > endPos) return false;
    bufPos += p;
    p = 0;
    // Chunk-sized, not pooled: a kept chunk holds nothing but records of this scan.
    if (keepChunks) buf = Buffer.allocUnsafeSlow(Math.max(n, Math.min(READ_CHUNK_BYTES, endPos - bufPos)));
    else if (buf.length < n) buf = Buffer.allocUnsafe(n);
    const want = Math.min(buf.length, endPos - bufPos);
    filled = 0;
    while (filled < want) {
      const { bytesRead } = await fh.read(buf, filled, want - filled, bufPos + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled >= n;
  };
  for (;;) {
    if (bufPos + p >= endPos || offset >= endOffset) return stop('end');
    if (filled - p < MIN_FRAME_BYTES && !(await refill(Math.min(MIN_FRAME_BYTES, endPos - bufPos - p)))) return stop('bad');
    if (filled - p < MIN_FRAME_BYTES) return stop('bad');
    const first = buf.readUInt32LE(p);
    if (first === HOLE_MAGIC) {
      const hole = readHole(buf, p, salt);
      if (!hole || hole.next < offset || bufPos + p + hole.bytes > endPos) return stop('bad');
      offset = hole.next;
      if (p + hole.bytes <= filled) p += hole.bytes;
      else {
        bufPos += p + hole.bytes;
        p = 0;
        filled = 0;
      }
      continue;
    }
    if (filled - p < H && !(await refill(H))) return stop('bad');
    let len: number;
    if (v2) {
      if (first !== FRAME_MAGIC) return stop('bad');
      len = buf.readUInt32LE(p + 8);
    } else {
      len = first;
    }
    if (len > MAX_RECORD_BYTES) return stop('bad');
    const need = H + len;
    if (filled - p < need && !(await refill(need))) return stop('bad');
    const crc = v2 ? crc32c(buf.subarray(p + 8, p + need), salt) : crc32c(buf.subarray(p + 8, p + need));
    const off = buf.readDoubleLE(p + H - 16);
    const ts = buf.readDoubleLE(p + H - 8);
    if (crc !== buf.readUInt32LE(p + 4) || off !== offset || !Number.isFinite(ts)) return stop('bad');
    if (!visit(offset, ts, buf.subarray(p + H, p + need), bufPos + p)) return stop('visitor');
    p += need;
    offset++;
  }
}

/** What is known about an invalid frame at `start`, found by looking at the bytes after it. */
export interface BadFrame {
  start: number;
  /** The next valid frame after the damage, or undefined when none comes before `endPos`. */
  resync?: { position: number; kind: 'record'; offset: number } | { position: number; kind: 'hole'; bytes: number; next: number };
  /** The damaged frame restored: only its magic, length or offset field was hit (a header to write at `start`). */
  fixed?: Buffer;
  /** Fewer bytes than a frame's header remain, or the frame's length runs past `endPos`: what a torn write leaves. */
  incomplete: boolean;
  /** Only zero bytes from `start` to `endPos` (what some file systems leave after a crash). */
  zeros: boolean;
  /** How many frames seem to start in the damaged region: the offsets it may have held (at least 1). */
  framesSeen: number;
}

/**
 * Looks at an invalid frame at `start` (where offset `expected` should begin) and the bytes up to
 * `endPos`: tries to restore it from its CRC, and looks for the next valid frame to resynchronise on.
 */
export async function inspectBadFrame(fh: LogFile, fmt: SegmentFormat, start: number, expected: number, endPos: number): Promise<BadFrame> {
  const region = await readRegionHead(fh, start, endPos);
  const incompleteHeader = endPos - start < fmt.headerBytes && !(endPos - start >= HOLE_BYTES && region.readUInt32LE(0) === HOLE_MAGIC);
  const resync = await findNextFrame(fh, fmt, start, expected, endPos);
  const regionEnd = resync?.position ?? endPos;
  let incomplete = incompleteHeader;
  if (!incompleteHeader) {
    const len = fmt.version === 2 ? region.readUInt32LE(8) : region.readUInt32LE(0);
    const magicOk = fmt.version === 1 || region.readUInt32LE(0) === FRAME_MAGIC;
    incomplete = magicOk && len <= MAX_RECORD_BYTES && start + fmt.headerBytes + len > endPos;
  }
  const fixed = incompleteHeader ? undefined : await tryFixHeader(fh, fmt, start, expected, region, regionEnd);
  return {
    start,
    ...(resync ? { resync } : {}),
    ...(fixed ? { fixed } : {}),
    incomplete,
    zeros: !resync && (await allZero(fh, start, endPos)),
    framesSeen: Math.max(1, await countFrames(fh, fmt, start, regionEnd)),
  };
}

async function readRegionHead(fh: LogFile, start: number, endPos: number): Promise<Buffer> {
  const head = Buffer.alloc(Math.max(0, Math.min(HEADER_BYTES, endPos - start)));
  await readFully(fh, head, start);
  return head;
}

/** Restores a frame whose damage is confined to header fields the CRC can vouch for once guessed. */
async function tryFixHeader(fh: LogFile, fmt: SegmentFormat, start: number, expected: number, head: Buffer, regionEnd: number): Promise<Buffer | undefined> {
  const H = fmt.headerBytes;
  if (head.length < H) return undefined;
  const v2 = fmt.version === 2;
  const storedLen = v2 ? head.readUInt32LE(8) : head.readUInt32LE(0);
  const ts = head.readDoubleLE(H - 8);
  if (!Number.isFinite(ts)) return undefined;
  // Lengths worth a CRC: the stored one, and those ending where the next valid frame (or the data
  // ends) or where a later frame's magic begins (that frame may be damaged too).
  const ends = new Set<number>([regionEnd]);
  if (v2 && regionEnd - start <= 64 * READ_CHUNK_BYTES) {
    const region = Buffer.alloc(regionEnd - start);
    await readFully(fh, region, start);
    for (let i = region.indexOf(FRAME_MAGIC_BYTES, H); i >= 0 && ends.size < 64; i = region.indexOf(FRAME_MAGIC_BYTES, i + 1)) ends.add(start + i);
  }
  const candidates = new Set<number>([storedLen, ...[...ends].map((e) => e - start - H)]);
  for (const len of candidates) {
    if (len < 0 || len > MAX_RECORD_BYTES || start + H + len > regionEnd) continue;
    const fixed = Buffer.from(head.subarray(0, H));
    if (v2) {
      fixed.writeUInt32LE(FRAME_MAGIC, 0);
      fixed.writeUInt32LE(len, 8);
    } else {
      fixed.writeUInt32LE(len, 0);
    }
    fixed.writeDoubleLE(expected, H - 16);
    const payload = Buffer.alloc(len);
    await readFully(fh, payload, start + H);
    const crc = crc32c(payload, crc32c(fixed.subarray(8, H), fmt.salt));
    if (crc === fixed.readUInt32LE(4) && !fixed.equals(head.subarray(0, H))) return fixed;
  }
  return undefined;
}

/** The first valid frame strictly after `start` (at least MIN_FRAME_BYTES on) whose offset fits after `expected`. */
async function findNextFrame(fh: LogFile, fmt: SegmentFormat, start: number, expected: number, endPos: number): Promise<BadFrame['resync']> {
  const from = start + MIN_FRAME_BYTES;
  if (from >= endPos) return undefined;
  const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, endPos - from));
  for (let at = from; at < endPos; ) {
    const n = Math.min(chunk.length, endPos - at);
    const view = chunk.subarray(0, n);
    await readFully(fh, view, at);
    const hit = fmt.version === 2 ? await scanChunkV2(fh, fmt, view, at, expected, endPos) : await scanChunkV1(fh, view, at, start, expected, endPos);
    if (hit) return hit;
    // Chunks overlap by a header, so a frame straddling two of them is still seen.
    if (at + n >= endPos) break;
    at += n > HEADER_BYTES ? n - HEADER_BYTES : n;
  }
  return undefined;
}

async function scanChunkV2(fh: LogFile, fmt: SegmentFormat, view: Buffer, at: number, expected: number, endPos: number): Promise<BadFrame['resync']> {
  let i = 0;
  for (;;) {
    const f = view.indexOf(FRAME_MAGIC_BYTES, i);
    const h = view.indexOf(HOLE_MAGIC_BYTES, i);
    const next = f < 0 ? h : h < 0 ? f : Math.min(f, h);
    if (next < 0) return undefined;
    const hit = await validFrameAt(fh, fmt, at + next, expected, endPos);
    if (hit) return hit;
    i = next + 1;
  }
}

async function scanChunkV1(fh: LogFile, view: Buffer, at: number, start: number, expected: number, endPos: number): Promise<BadFrame['resync']> {
  // No magic in format 1: a candidate needs a sane length, an offset in the range the skipped bytes
  // could have held (each record takes at least a header), a finite time, and then its CRC.
  for (let i = 0; i + 4 <= view.length; i++) {
    const pos = at + i;
    const first = view.readUInt32LE(i);
    if (first === HOLE_MAGIC) {
      const hit = await validFrameAt(fh, V1_FORMAT, pos, expected, endPos);
      if (hit) return hit;
      continue;
    }
    if (first > MAX_RECORD_BYTES || pos + V1_HEADER_BYTES + first > endPos || i + 24 > view.length) continue;
    const off = view.readDoubleLE(i + 8);
    if (!Number.isSafeInteger(off) || off < expected || off > expected + Math.ceil((pos - start) / V1_HEADER_BYTES) + 1) continue;
    if (!Number.isFinite(view.readDoubleLE(i + 16))) continue;
    const hit = await validFrameAt(fh, V1_FORMAT, pos, expected, endPos);
    if (hit) return hit;
  }
  return undefined;
}

async function validFrameAt(fh: LogFile, fmt: SegmentFormat, pos: number, expected: number, endPos: number): Promise<BadFrame['resync']> {
  const head = await readRegionHead(fh, pos, endPos);
  if (head.length >= HOLE_BYTES && head.readUInt32LE(0) === HOLE_MAGIC) {
    const hole = readHole(head, 0, fmt.salt);
    if (!hole || hole.next < expected || pos + hole.bytes > endPos) return undefined;
    return { position: pos, kind: 'hole', bytes: hole.bytes, next: hole.next };
  }
  const H = fmt.headerBytes;
  if (head.length < H) return undefined;
  if (fmt.version === 2 && head.readUInt32LE(0) !== FRAME_MAGIC) return undefined;
  const len = fmt.version === 2 ? head.readUInt32LE(8) : head.readUInt32LE(0);
  if (len > MAX_RECORD_BYTES || pos + H + len > endPos) return undefined;
  const off = head.readDoubleLE(H - 16);
  if (!Number.isSafeInteger(off) || off < expected || !Number.isFinite(head.readDoubleLE(H - 8))) return undefined;
  const rest = Buffer.alloc(len);
  await readFully(fh, rest, pos + H);
  if (crc32c(rest, crc32c(head.subarray(8, H), fmt.salt)) !== head.readUInt32LE(4)) return undefined;
  return { position: pos, kind: 'record', offset: off };
}

/** Frames that seem to start in [start, end): by magic in format 2, by walking lengths in format 1. */
async function countFrames(fh: LogFile, fmt: SegmentFormat, start: number, end: number): Promise<number> {
  if (end - start <= 0) return 0;
  if (end - start > 64 * READ_CHUNK_BYTES) return 1; // a huge unreadable region: no guess worth the reads
  const buf = Buffer.alloc(end - start);
  await readFully(fh, buf, start);
  let n = 0;
  if (fmt.version === 2) {
    for (let i = buf.indexOf(FRAME_MAGIC_BYTES); i >= 0; i = buf.indexOf(FRAME_MAGIC_BYTES, i + 1)) n++;
    return n;
  }
  for (let p = 0; p + V1_HEADER_BYTES <= buf.length; n++) {
    const len = buf.readUInt32LE(p);
    if (len > MAX_RECORD_BYTES) return n + 1;
    p += V1_HEADER_BYTES + len;
  }
  return n;
}

async function allZero(fh: LogFile, start: number, end: number): Promise<boolean> {
  const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, Math.max(1, end - start)));
  for (let at = start; at < end; ) {
    const n = Math.min(chunk.length, end - at);
    const view = chunk.subarray(0, n);
    await readFully(fh, view, at);
    for (let i = 0; i < n; i++) if (view[i] !== 0) return false;
    at += n;
  }
  return true;
}

/** Reads buf.length bytes at `position`; what lies past the end of the file stays zero. */
export async function readFully(fh: LogFile, buf: Buffer, position: number): Promise<number> {
  let filled = 0;
  while (filled < buf.length) {
    const { bytesRead } = await fh.read(buf, filled, buf.length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  if (filled < buf.length) buf.fill(0, filled);
  return filled;
}

/** Index of the last segment whose base is <= offset (the first when none is): segments sorted by base. */
export function segmentIndexFor(segments: ReadonlyArray<{ base: number }>, offset: number): number {
  let lo = 0;
  let hi = segments.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (segments[mid].base <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
