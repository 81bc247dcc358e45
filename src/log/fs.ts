// The file operations the segment log uses, behind one seam, so tests can inject the faults a disk
// produces (ENOSPC, EIO on fdatasync, short writes) without mocking the rest of the log. The
// default is node:fs/promises itself: its FileHandle already is a LogFile (with the two
// synchronous writes added), so the hot path calls the real handle with no wrapper in between.

import { writeSync, writevSync } from 'node:fs';
import * as fsp from 'node:fs/promises';

/** The part of a FileHandle the log uses. */
export interface LogFile {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  write(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  writev(buffers: Buffer[], position: number): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
  sync(): Promise<void>;
  truncate(len: number): Promise<void>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
  /**
   * Synchronous positional writes, for small write rounds: a few KiB into the page cache cost
   * microseconds, while each asynchronous call waits for a thread-pool turn and then for the
   * event loop again, which on a busy machine is most of a single PutRecord's latency. Optional:
   * without them the log writes asynchronously.
   */
  writevSync?(buffers: Buffer[], position: number): number;
  writeSync?(buffer: Buffer, offset: number, length: number, position: number): number;
}

export interface LogFs {
  open(path: string, flags: 'r' | 'r+' | 'w+' | 'wx'): Promise<LogFile>;
  mkdir(path: string): Promise<void>;
  readdir(path: string): Promise<string[]>;
  readFile(path: string): Promise<Buffer>;
  writeFile(path: string, data: Buffer): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Removes a file or a whole directory; absent is fine. */
  rm(path: string): Promise<void>;
  exists(path: string): Promise<boolean>;
}

/** A FileHandle with the synchronous writes on its descriptor (valid until it is closed). */
async function openFile(path: string, flags: string): Promise<LogFile> {
  const fh = await fsp.open(path, flags);
  return Object.assign(fh, {
    writevSync: (buffers: Buffer[], position: number) => writevSync(fh.fd, buffers, position),
    writeSync: (buffer: Buffer, offset: number, length: number, position: number) => writeSync(fh.fd, buffer, offset, length, position),
  });
}

export const nodeFs: LogFs = {
  open: (path, flags) => openFile(path, flags),
  mkdir: async (path) => {
    await fsp.mkdir(path, { recursive: true });
  },
  readdir: (path) => fsp.readdir(path),
  readFile: (path) => fsp.readFile(path),
  writeFile: (path, data) => fsp.writeFile(path, data),
  rename: (from, to) => fsp.rename(from, to),
  unlink: (path) => fsp.unlink(path),
  rm: (path) => fsp.rm(path, { recursive: true, force: true }),
  exists: (path) =>
    fsp.access(path).then(
      () => true,
      () => false,
    ),
};
