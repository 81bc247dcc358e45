// The ObjectStore boundary: what an S3 bucket is to Firehose's writers. Two adapters, shaped
// alike: a local folder (default; one directory per bucket) and any S3-compatible endpoint through
// @aws-sdk/client-s3 (s3rver, MinIO, real S3).

import type { Readable } from 'node:stream';

export interface ObjectStore {
  /** `file:///abs/dir/` or `s3://bucket/` (with the endpoint in messages): where keys land. */
  readonly location: string;
  /** Writes the whole object atomically (readers never see half an object). */
  put(key: string, body: Buffer, contentType?: string): Promise<void>;
  get(key: string): Promise<Buffer>;
  /**
   * The object's bytes from `start` on, as a stream (import jobs read objects of any size in
   * bounded memory; a resumed job starts where it stopped). NoSuchKeyError when it is missing.
   */
  stream(key: string, start?: number): Promise<Readable>;
  /** Keys under a prefix, sorted. */
  list(prefix: string): Promise<string[]>;
  close(): void;
}
