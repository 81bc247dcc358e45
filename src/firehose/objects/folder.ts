// The local-folder ObjectStore: a bucket is a directory and `/` in a key makes subfolders. Writes
// are atomic and durable — temp file in the same directory, fsync, rename, fsync of the directory —
// so a crash leaves either the whole object or none, and an acknowledged object survives power loss.

import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { dirname, join, resolve, sep } from 'node:path';
import type { ObjectStore } from './object-store.js';

/** Temp files carry this name start; listings skip them (a crash can leave one behind). */
export const TEMP_PREFIX = '.pinstream-tmp-';
/** S3's key length limit, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;
/** A file name's limit (NAME_MAX) on Linux file systems: no `/`-separated segment may be longer. */
export const MAX_SEGMENT_BYTES = 255;

export class InvalidKeyError extends Error {
  override name = 'InvalidKeyError';
}

export class NoSuchKeyError extends Error {
  override name = 'NoSuchKeyError';
}

export class FolderStore implements ObjectStore {
  readonly location: string;
  private readonly root: string;

  constructor(dir: string) {
    this.root = resolve(dir);
    this.location = `file://${this.root}/`;
  }

  /** The file behind a key; refuses keys a folder cannot hold faithfully or that would leave the root. */
  private path(key: string): string {
    if (key === '' || Buffer.byteLength(key) > MAX_KEY_BYTES) throw new InvalidKeyError(`object key must be 1-${MAX_KEY_BYTES} bytes: "${key}"`);
    const segments = key.split('/');
    if (segments.some((s) => s === '' || s === '.' || s === '..' || s.startsWith(TEMP_PREFIX) || s.includes('\0') || s.includes(sep))) {
      throw new InvalidKeyError(`object key "${key}" cannot be stored in a folder (empty, ".", ".." or reserved path segment)`);
    }
    if (segments.some((s) => Buffer.byteLength(s) > MAX_SEGMENT_BYTES)) {
      throw new InvalidKeyError(`object key "${key}" has a path segment over ${MAX_SEGMENT_BYTES} bytes, which a folder cannot hold`);
    }
    const file = join(this.root, ...segments);
    // Defence in depth: whatever the checks above missed, no write lands outside the bucket's root.
    if (!file.startsWith(this.root + sep)) throw new InvalidKeyError(`object key "${key}" would leave the bucket's folder ${this.root}`);
    return file;
  }

  async put(key: string, body: Buffer): Promise<void> {
    const file = this.path(key);
    const dir = dirname(file);
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `${TEMP_PREFIX}${randomUUID()}`);
    try {
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(body);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, file);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    // The rename is durable only once the directory entry is on disk.
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await readFile(this.path(key));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'EISDIR') {
        throw new NoSuchKeyError(`${this.location}${key}: no such object`);
      }
      throw e;
    }
  }

  async stream(key: string, start = 0): Promise<Readable> {
    const file = this.path(key);
    // Opened before returning, so a missing object is NoSuchKeyError here rather than a stream error later.
    let fh;
    try {
      fh = await open(file, 'r');
      if ((await fh.stat()).isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    } catch (e) {
      await fh?.close();
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EISDIR') throw new NoSuchKeyError(`${this.location}${key}: no such object`);
      throw e;
    }
    return createReadStream('', { fd: fh, start, autoClose: true });
  }

  async list(prefix: string): Promise<string[]> {
    // Walk only below the deepest folder the prefix names.
    const slash = prefix.lastIndexOf('/');
    const base = slash < 0 ? '' : prefix.slice(0, slash + 1);
    const keys: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(join(this.root, ...rel.split('/').filter(Boolean)), { withFileTypes: true });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw e;
      }
      for (const e of entries) {
        if (e.name.startsWith(TEMP_PREFIX)) continue;
        const key = rel + e.name;
        if (e.isDirectory()) {
          if ((key + '/').startsWith(prefix) || prefix.startsWith(key + '/')) await walk(key + '/');
        } else if (key.startsWith(prefix)) keys.push(key);
      }
    };
    await walk(base);
    // S3 lists keys in UTF-8 byte order.
    return keys.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }

  close(): void {}
}
