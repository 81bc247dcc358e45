// Fault injection for the segment log's file seam (src/log/fs.ts): wraps the real file system and
// lets a test fail chosen operations the way a disk does (ENOSPC after a partial write, EIO from
// fdatasync, a failing truncate), plus a seeded random generator for the fault-injection suites.

import { open } from 'node:fs/promises';
import { nodeFs, type LogFile, type LogFs } from '../../src/log/fs.js';

export interface FaultHooks {
  /**
   * Before a write of `bytes` bytes to `path`: an Error to throw instead, or a prefix length to
   * write first (a partial write, as a filling disk does) and the error to throw after it.
   */
  write?: (path: string, bytes: number) => Error | { prefix: number; error: Error } | undefined;
  datasync?: (path: string) => Error | undefined;
  truncate?: (path: string) => Error | undefined;
  open?: (path: string, flags: string) => Error | undefined;
}

export const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28 });
export const eio = (what = 'i/o error') => Object.assign(new Error(`EIO: ${what}`), { code: 'EIO', errno: -5 });

export function faultyFs(hooks: FaultHooks, base: LogFs = nodeFs): LogFs {
  return {
    ...base,
    async open(path, flags) {
      const e = hooks.open?.(path, flags);
      if (e) throw e;
      return wrap(path, await base.open(path, flags), hooks);
    },
  };
}

function wrap(path: string, f: LogFile, hooks: FaultHooks): LogFile {
  /** The injected fault for this write, and the prefix pieces a short write puts on disk first. */
  const faultFor = (buffers: Buffer[], position: number) => {
    const bytes = buffers.reduce((n, b) => n + b.length, 0);
    const fault = hooks.write?.(path, bytes);
    if (!fault) return undefined;
    if (fault instanceof Error) return { error: fault, pieces: [] };
    const pieces: Array<{ b: Buffer; n: number; at: number }> = [];
    let left = Math.min(fault.prefix, bytes);
    let at = position;
    for (const b of buffers) {
      if (left <= 0) break;
      const n = Math.min(left, b.length);
      pieces.push({ b, n, at });
      at += n;
      left -= n;
    }
    return { error: fault.error, pieces };
  };
  const beforeWrite = async (buffers: Buffer[], position: number): Promise<void> => {
    const fault = faultFor(buffers, position);
    if (!fault) return;
    for (const p of fault.pieces) await f.write(p.b, 0, p.n, p.at);
    throw fault.error;
  };
  // The same faults on the synchronous writes the log uses for small rounds.
  const beforeWriteSync = (buffers: Buffer[], position: number): void => {
    const fault = faultFor(buffers, position);
    if (!fault) return;
    for (const p of fault.pieces) f.writeSync!(p.b, 0, p.n, p.at);
    throw fault.error;
  };
  const sync =
    f.writevSync && f.writeSync
      ? {
          writevSync(buffers: Buffer[], position: number) {
            beforeWriteSync(buffers, position);
            return f.writevSync!(buffers, position);
          },
          writeSync(buffer: Buffer, offset: number, length: number, position: number) {
            beforeWriteSync([buffer.subarray(offset, offset + length)], position);
            return f.writeSync!(buffer, offset, length, position);
          },
        }
      : {};
  return {
    ...sync,
    read: (buffer, offset, length, position) => f.read(buffer, offset, length, position),
    async write(buffer, offset, length, position) {
      await beforeWrite([buffer.subarray(offset, offset + length)], position);
      return f.write(buffer, offset, length, position);
    },
    async writev(buffers, position) {
      await beforeWrite(buffers, position);
      return f.writev(buffers, position);
    },
    async datasync() {
      const e = hooks.datasync?.(path);
      if (e) throw e;
      return f.datasync();
    },
    sync: () => f.sync(),
    async truncate(len) {
      const e = hooks.truncate?.(path);
      if (e) throw e;
      return f.truncate(len);
    },
    stat: () => f.stat(),
    close: () => f.close(),
  };
}

export { seeded, suiteSeed } from './random.js';

/** Damage at rest: XORs one byte of a file with `mask` (a flipped bit when it is a power of two). */
export async function flipByte(path: string, position: number, mask: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, position);
    b[0] ^= mask;
    await fh.write(b, 0, 1, position);
  } finally {
    await fh.close();
  }
}
