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

/** The frames of an intact format-2 segment file. */
export function framesOf(file: Buffer): Frame[] {
  const out: Frame[] = [];
  let p = SEGMENT_HEADER_BYTES;
  while (p + HOLE_BYTES <= file.length) {
    const magic = file.readUInt32LE(p);
    if (magic === HOLE_MAGIC) {
      const bytes = file.readUInt32LE(p + 8);
      out.push({ start: p, end: p + bytes });
      p += bytes;
    } else if (magic === FRAME_MAGIC) {
      const len = file.readUInt32LE(p + 8);
      const end = p + HEADER_BYTES + len;
      if (end > file.length) break;
      out.push({ start: p, end, offset: file.readDoubleLE(p + 12), payload: file.subarray(p + HEADER_BYTES, end) });
      p = end;
    } else {
      throw new Error(`not an intact segment: unknown frame at ${p}`);
    }
  }
  return out;
}

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
