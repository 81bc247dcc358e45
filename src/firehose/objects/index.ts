// Resolves the S3 bucket a Firehose configuration names (`arn:aws:s3:::bucket`) to an ObjectStore:
// the first PINSTREAM_BUCKETS route matching the bucket name (a local folder or an S3-compatible
// endpoint), else a folder `<dataDir>/buckets/<bucket>`. One store per bucket, shared by streams.
// Bucket names must follow S3's naming rules (bucketNameProblem), which is also what keeps a
// bucket's folder a single directory below `<dataDir>/buckets` (no `..`, no `/`).

import { dirname, resolve } from 'node:path';
import type { BucketRoute } from '../../config/config.js';
import { wildcardMatch } from '../../iam/policy.js';
import type { ObjectStore } from './object-store.js';
import { FolderStore } from './folder.js';
import { S3Store, type S3StoreOptions } from './s3.js';

/** S3's general purpose bucket name length, in characters. */
export const MIN_BUCKET_NAME_LENGTH = 3;
export const MAX_BUCKET_NAME_LENGTH = 63;
/** Prefixes and suffixes S3 reserves (access point aliases, Multi-Region Access Points, directory and table buckets). */
export const RESERVED_BUCKET_PREFIXES = ['xn--', 'sthree-', 'amzn-s3-demo-'] as const;
export const RESERVED_BUCKET_SUFFIXES = ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3'] as const;

/** What is wrong with a bucket name by S3's naming rules for general purpose buckets, or undefined. */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < MIN_BUCKET_NAME_LENGTH || name.length > MAX_BUCKET_NAME_LENGTH) {
    return `bucket names must be between ${MIN_BUCKET_NAME_LENGTH} and ${MAX_BUCKET_NAME_LENGTH} characters long`;
  }
  if (!/^[a-z0-9.-]+$/.test(name)) return 'bucket names can consist only of lowercase letters, numbers, dots (.) and hyphens (-)';
  if (!/^[a-z0-9]/.test(name) || !/[a-z0-9]$/.test(name)) return 'bucket names must begin and end with a letter or number';
  if (name.includes('..')) return 'bucket names must not contain two adjacent periods';
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return 'bucket names must not be formatted as an IP address';
  const prefix = RESERVED_BUCKET_PREFIXES.find((p) => name.startsWith(p));
  if (prefix) return `bucket names must not start with the reserved prefix ${prefix}`;
  const suffix = RESERVED_BUCKET_SUFFIXES.find((x) => name.endsWith(x));
  if (suffix) return `bucket names must not end with the reserved suffix ${suffix}`;
  return undefined;
}

/** The bucket name of an S3 bucket ARN (`arn:aws:s3:::name`); throws when the ARN or the name is invalid. */
export function bucketName(bucketArn: string): string {
  const m = /^arn:aws:s3:::([^:/]*)$/.exec(bucketArn);
  if (!m) throw new Error(`not an S3 bucket ARN of partition aws (arn:aws:s3:::BUCKET): ${bucketArn}`);
  const problem = bucketNameProblem(m[1]);
  if (problem) throw new Error(`"${m[1]}" is not a valid bucket name: ${problem}`);
  return m[1];
}

/** The canonical ARN of an object (what s3:PutObject and s3:GetObject are authorized on). */
export const objectArn = (bucket: string, key: string) => `arn:aws:s3:::${bucket}/${key}`;

/** Where a bucket lives: a local folder, or an S3-compatible endpoint. */
export type BucketLocation = { dir: string } | (S3StoreOptions & { endpoint: string });

/** The first route matching the bucket name, else the folder `<dataDir>/buckets/<bucket>`. */
export function bucketLocation(bucket: string, dataDir: string, routes: readonly BucketRoute[]): BucketLocation {
  const route = routes.find((r) => wildcardMatch(r.bucket, bucket, false));
  if (route?.endpoint !== undefined) {
    const credentials = route.accessKeyId ? { accessKeyId: route.accessKeyId, secretAccessKey: route.secretAccessKey! } : undefined;
    return { bucket, endpoint: route.endpoint, region: route.region, credentials };
  }
  if (route?.dir !== undefined) return { dir: route.dir };
  const root = resolve(dataDir, 'buckets');
  const dir = resolve(root, bucket);
  // Defence in depth: a valid bucket name is one path segment; anything else never leaves the folder.
  if (dirname(dir) !== root || bucketNameProblem(bucket) !== undefined) throw new Error(`bucket "${bucket}" does not name a folder inside ${root}`);
  return { dir };
}

export class ObjectStores {
  private stores = new Map<string, ObjectStore>();

  constructor(
    private readonly dataDir: string,
    private readonly routes: BucketRoute[],
  ) {}

  resolve(bucketArn: string): ObjectStore {
    const bucket = bucketName(bucketArn);
    let store = this.stores.get(bucket);
    if (!store) {
      const loc = bucketLocation(bucket, this.dataDir, this.routes);
      store = 'dir' in loc ? new FolderStore(loc.dir) : new S3Store(loc);
      this.stores.set(bucket, store);
    }
    return store;
  }

  close(): void {
    for (const s of this.stores.values()) s.close();
    this.stores.clear();
  }
}
