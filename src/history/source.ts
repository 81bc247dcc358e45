// Where an archive is read from, and how one object of it is opened. `s3://bucket/prefix/` goes
// through Firehose's bucket routing (src/firehose/objects/: a local folder, or an S3-compatible
// endpoint from PINSTREAM_BUCKETS); `file:///abs/dir/` (or an absolute path) is a folder on the
// server's own disk. Listing keeps the keys under the prefix in Firehose's time layout
// (…/YYYY/MM/dd/HH/object) in key order, which is time order. Objects are read as streams: the
// ObjectStore boundary answers whole Buffers, so reads open the folder file or S3 GetObject body
// directly. A Parquet object from S3 is spooled to a temporary file (DuckDB reads Parquet with
// random access), so memory stays bounded whatever the object's size.

import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { BucketRoute } from '../config/config.js';
import { bucketLocation, bucketNameProblem, objectArn, type BucketLocation } from '../firehose/objects/index.js';
import { FolderStore } from '../firehose/objects/folder.js';
import { S3Store } from '../firehose/objects/s3.js';
import type { ObjectStore } from '../firehose/objects/object-store.js';

/** Objects one import may list (90 days of hourly folders with many objects each fit easily). */
export const MAX_HISTORY_OBJECTS = 1_000_000;
/** A Firehose time-layout key below the prefix: YYYY/MM/dd/HH/ then the object name. */
export const FIREHOSE_LAYOUT = /(^|\/)\d{4}\/\d{2}\/\d{2}\/\d{2}\/[^/]+$/;

export type HistorySource = { kind: 's3'; bucket: string; prefix: string } | { kind: 'folder'; dir: string };

export class SourceError extends Error {
  override name = 'SourceError';
}

/** Parses `s3://bucket/prefix/`, `file:///abs/dir/` or an absolute folder path. */
export function parseSource(url: string): HistorySource {
  if (typeof url !== 'string' || url === '') throw new SourceError('Source is required: s3://bucket/prefix/ or file:///absolute/folder/');
  const s3 = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (s3) {
    const problem = bucketNameProblem(s3[1]);
    if (problem) throw new SourceError(`"${s3[1]}" is not a valid bucket name: ${problem}`);
    return { kind: 's3', bucket: s3[1], prefix: s3[2] };
  }
  let path = url;
  if (url.startsWith('file://')) path = decodeURIComponent(new URL(url).pathname);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) throw new SourceError(`Source must be an s3:// or file:// URL or an absolute folder path, not ${url}`);
  if (!path.startsWith('/') || path.includes('\0')) throw new SourceError(`a local Source must be an absolute folder path: ${url}`);
  return { kind: 'folder', dir: resolve(path) };
}

export function sourceUrl(s: HistorySource): string {
  return s.kind === 's3' ? `s3://${s.bucket}/${s.prefix}` : `file://${s.dir}/`;
}

/** Why the reader may not do `action` on `resource` (a role's policies), or undefined. */
export type ReadCheck = (action: string, resource: string) => string | undefined;

export class ReadDeniedError extends Error {
  override name = 'ReadDeniedError';
}

/** Opens objects of one source for reading. */
export class SourceReader {
  private readonly location: BucketLocation;
  private readonly store: ObjectStore;
  private s3?: S3Client;

  constructor(
    readonly source: HistorySource,
    dataDir: string,
    routes: readonly BucketRoute[],
    private readonly check: ReadCheck = () => undefined,
  ) {
    this.location = source.kind === 'folder' ? { dir: source.dir } : bucketLocation(source.bucket, dataDir, routes);
    this.store = 'dir' in this.location ? new FolderStore(this.location.dir) : new S3Store(this.location);
  }

  private allow(action: string, resource: string): void {
    if (this.source.kind !== 's3') return;
    const why = this.check(action, resource);
    if (why) throw new ReadDeniedError(`AccessDenied: ${action} on ${resource}: ${why}`);
  }

  /** The archive's object keys in Firehose's layout, in key (= time) order. */
  async list(): Promise<string[]> {
    const prefix = this.source.kind === 's3' ? this.source.prefix : '';
    if (this.source.kind === 's3') this.allow('s3:ListBucket', `arn:aws:s3:::${this.source.bucket}`);
    else if (!(await stat(this.source.dir).catch(() => undefined))?.isDirectory()) throw new SourceError(`${this.source.dir} is not a folder`);
    const keys = (await this.store.list(prefix)).filter((k) => FIREHOSE_LAYOUT.test(k.slice(prefix.length)));
    if (keys.length > MAX_HISTORY_OBJECTS) throw new SourceError(`${keys.length} objects under ${sourceUrl(this.source)}: at most ${MAX_HISTORY_OBJECTS} per import; import a narrower prefix`);
    return keys;
  }

  private folderPath(key: string): string {
    const root = resolve((this.location as { dir: string }).dir);
    const file = resolve(root, ...key.split('/'));
    if (!file.startsWith(root + sep)) throw new SourceError(`object key "${key}" would leave the folder ${root}`);
    return file;
  }

  /** The object's bytes as a stream. */
  async open(key: string): Promise<Readable> {
    if (this.source.kind === 's3') this.allow('s3:GetObject', objectArn(this.source.bucket, key));
    if ('dir' in this.location) return createReadStream(this.folderPath(key));
    this.s3 ??= new S3Client({ endpoint: this.location.endpoint, region: this.location.region ?? 'us-east-1', credentials: this.location.credentials, forcePathStyle: true });
    const out = await this.s3.send(new GetObjectCommand({ Bucket: this.location.bucket, Key: key }));
    return out.Body as Readable;
  }

  /**
   * A local file holding the object, for DuckDB: the folder file itself, or a copy spooled under
   * `tmpDir` (removed by the returned release function).
   */
  async localFile(key: string, tmpDir: string, opened: { first: Buffer; rest: Readable }): Promise<{ path: string; release: () => Promise<void> }> {
    if ('dir' in this.location) {
      opened.rest.destroy();
      return { path: this.folderPath(key), release: async () => {} };
    }
    await mkdir(tmpDir, { recursive: true });
    const path = join(tmpDir, `${randomUUID()}.parquet`);
    try {
      const out = createWriteStream(path);
      out.write(opened.first);
      await pipeline(opened.rest, out);
    } catch (e) {
      await rm(path, { force: true });
      throw e;
    }
    return { path, release: () => rm(path, { force: true }) };
  }

  close(): void {
    this.store.close();
    this.s3?.destroy();
  }
}
