// The S3-compatible ObjectStore (real S3, MinIO, s3rver) through @aws-sdk/client-s3, path-style
// so any host name works. A PutObject is atomic by S3's own semantics.
//
// Listing pages with ListObjects (v1) and Marker rather than ListObjectsV2: s3rver 3.7.1 builds V2
// continuation tokens with DES, which Node 20's OpenSSL 3 no longer has, so any truncated V2 page
// is a 500 there; v1 paging works on s3rver, MinIO and AWS alike.

import { GetObjectCommand, ListObjectsCommand, PutObjectCommand, S3Client, type ListObjectsCommandOutput } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import type { ObjectStore } from './object-store.js';
import { NoSuchKeyError } from './folder.js';

export interface S3StoreOptions {
  bucket: string;
  /** Absent: AWS's own endpoint for the region. */
  endpoint?: string;
  region?: string;
  /** Absent: the SDK's default provider chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Keys per list request (S3's maximum and default is 1,000). */
  listPageSize?: number;
}

export const LIST_PAGE_SIZE = 1000;

export class S3Store implements ObjectStore {
  readonly location: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly pageSize: number;

  constructor(opts: S3StoreOptions) {
    this.bucket = opts.bucket;
    this.pageSize = opts.listPageSize ?? LIST_PAGE_SIZE;
    this.location = `s3://${opts.bucket}/${opts.endpoint ? ` (${opts.endpoint})` : ''}`;
    this.client = new S3Client({
      endpoint: opts.endpoint,
      region: opts.region ?? 'us-east-1',
      credentials: opts.credentials,
      forcePathStyle: true,
    });
  }

  async put(key: string, body: Buffer, contentType?: string): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType ?? 'application/octet-stream', ContentLength: body.length }));
  }

  async get(key: string): Promise<Buffer> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return Buffer.from(await out.Body!.transformToByteArray());
    } catch (e) {
      if ((e as Error).name === 'NoSuchKey') throw new NoSuchKeyError(`${this.location}${key}: no such object`);
      throw e;
    }
  }

  async stream(key: string, start = 0): Promise<Readable> {
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: start > 0 ? `bytes=${start}-` : undefined }));
      return out.Body as Readable;
    } catch (e) {
      if ((e as Error).name === 'NoSuchKey') throw new NoSuchKeyError(`${this.location}${key}: no such object`);
      // A range starting at the object's end: nothing is left to read.
      if ((e as Error).name === 'InvalidRange') return Readable.from([]);
      throw e;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let marker: string | undefined;
    do {
      const page: ListObjectsCommandOutput = await this.client.send(new ListObjectsCommand({ Bucket: this.bucket, Prefix: prefix, Marker: marker, MaxKeys: this.pageSize }));
      const contents = page.Contents ?? [];
      for (const o of contents) if (o.Key !== undefined) keys.push(o.Key);
      // Without a delimiter S3 sends no NextMarker: the last key is where the next page starts.
      marker = page.IsTruncated && contents.length > 0 ? (page.NextMarker ?? contents[contents.length - 1].Key) : undefined;
    } while (marker);
    return keys.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }

  close(): void {
    this.client.destroy();
  }
}
