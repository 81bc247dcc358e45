// s3rver (a real S3 API server on the file system) on a free loopback port with its own temporary
// directory, for tests that need an S3-compatible endpoint, plus an S3 client set up to talk to it.
//
// s3rver 3.7.1 with client-s3 v3 (checked here): PutObject/GetObject/CreateBucket work with the
// SDK's default checksum settings; a truncated ListObjectsV2 page fails with a 500, because s3rver
// encrypts V2 continuation tokens with DES, which Node 20's OpenSSL 3 lacks. List with v1
// (ListObjects + Marker), as S3Store does, when more than one page is possible.

import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

// s3rver ships no type declarations; this is the part of its API used here.
interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
const S3rver = createRequire(import.meta.url)('s3rver') as new (opts: Record<string, unknown>) => S3rverInstance;

/** s3rver accepts any credentials with these names (it checks signatures against them). */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface S3rverHandle {
  endpoint: string;
  dir: string;
  close(): Promise<void>;
}

export async function startS3rver(): Promise<S3rverHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir });
  const addr = await server.run();
  return {
    endpoint: `http://127.0.0.1:${addr.port}`,
    dir,
    async close() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function s3rverClient(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    credentials: S3RVER_CREDENTIALS,
    forcePathStyle: true,
    maxAttempts: 1,
  });
}

export async function createBucket(endpoint: string, bucket: string): Promise<void> {
  const c = s3rverClient(endpoint);
  try {
    await c.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    c.destroy();
  }
}
