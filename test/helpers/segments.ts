// Reading segment files the way the fault-injection suites need: where each frame of a (format 2)
// segment file starts and ends and which offset it holds, so a fault at a file position can be
// mapped to the records whose bytes it damaged.

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { HEADER_BYTES, HOLE_BYTES, SEGMENT_HEADER_BYTES } from '../../src/log/format.js';

const FRAME_MAGIC = 0xa5f0c3e9;
const HOLE_MAGIC = 0xa5f0c3d1;

export interface Frame {
  start: number;
  end: number;
  /** The record's offset; undefined for a hole. */
  offset?: number;
  payload?: Buffer;
}

/**
 * The frames of a format-2 segment file. Damage a reader has not repaired yet is stepped over the
 * way the log resynchronises: a frame counts only if the next one (or the end of the file) follows it.
 */
export function framesOf(file: Buffer): Frame[] {
  const out: Frame[] = [];
  const isMagic = (q: number) => q + 4 <= file.length && [FRAME_MAGIC, HOLE_MAGIC].includes(file.readUInt32LE(q));
  const fits = (end: number) => end === file.length || isMagic(end);
  let p = SEGMENT_HEADER_BYTES;
  while (p + HOLE_BYTES <= file.length) {
    const magic = file.readUInt32LE(p);
    if (magic === HOLE_MAGIC) {
      const bytes = file.readUInt32LE(p + 8);
      if (bytes >= HOLE_BYTES && fits(p + bytes)) {
        out.push({ start: p, end: p + bytes });
        p += bytes;
        continue;
      }
    } else if (magic === FRAME_MAGIC && p + HEADER_BYTES <= file.length) {
      const end = p + HEADER_BYTES + file.readUInt32LE(p + 8);
      if (end <= file.length && fits(end)) {
        out.push({ start: p, end, offset: file.readDoubleLE(p + 12), payload: file.subarray(p + HEADER_BYTES, end) });
        p = end;
        continue;
      }
    }
    const next = [file.indexOf(FRAME_MAGIC_BYTES, p + 1), file.indexOf(HOLE_MAGIC_BYTES, p + 1)].filter((x) => x >= 0);
    if (next.length === 0) break;
    p = Math.min(...next);
  }
  return out;
}

const u32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
};
const FRAME_MAGIC_BYTES = u32(FRAME_MAGIC);
const HOLE_MAGIC_BYTES = u32(HOLE_MAGIC);

export interface LogFiles {
  /** Segment files, oldest first (absolute paths). */
  segments: string[];
  indexes: string[];
}

export async function logFiles(dir: string): Promise<LogFiles> {
  const names = (await readdir(dir)).sort();
  return {
    segments: names.filter((n) => /^\d{20}\.log$/.test(n)).map((n) => join(dir, n)),
    indexes: names.filter((n) => /^\d{20}\.idx$/.test(n)).map((n) => join(dir, n)),
  };
}

/** Records (by offset, with payload) whose frames a flip at `position` or a cut at `cutAt` damages. */
export async function damagedBy(segment: string, fault: { flipAt?: number; cutAt?: number }): Promise<Frame[]> {
  const frames = framesOf(await readFile(segment));
  return frames.filter(
    (f) =>
      f.offset !== undefined &&
      ((fault.flipAt !== undefined && fault.flipAt >= f.start && fault.flipAt < f.end) || (fault.cutAt !== undefined && f.end > fault.cutAt)),
  );
}
