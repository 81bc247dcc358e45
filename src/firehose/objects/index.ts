// Resolves the S3 bucket a Firehose configuration names (`arn:aws:s3:::bucket`) to an ObjectStore:
// the first PINSTREAM_BUCKETS route matching the bucket name (a local folder or an S3-compatible
// endpoint), else a folder `<dataDir>/buckets/<bucket>`. One store per bucket, shared by streams.

import { resolve } from 'node:path';
import type { BucketRoute } from '../../config/config.js';
import { wildcardMatch } from '../../iam/policy.js';
import type { ObjectStore } from './object-store.js';
import { FolderStore } from './folder.js';
import { S3Store, type S3StoreOptions } from './s3.js';

/** The bucket name of an S3 bucket ARN (`arn:<partition>:s3:::name`). */
export function bucketName(bucketArn: string): string {
  const m = /^arn:[^:]*:s3:::([\w.-]{1,255})$/.exec(bucketArn);
  if (!m) throw new Error(`not an S3 bucket ARN: ${bucketArn}`);
  return m[1];
}

/** Where a bucket lives: a local folder, or an S3-compatible endpoint. */
export type BucketLocation = { dir: string } | (S3StoreOptions & { endpoint: string });

/** The first route matching the bucket name, else the folder `<dataDir>/buckets/<bucket>`. */
export function bucketLocation(bucket: string, dataDir: string, routes: readonly BucketRoute[]): BucketLocation {
  const route = routes.find((r) => wildcardMatch(r.bucket, bucket, false));
  if (route?.endpoint !== undefined) {
    const credentials = route.accessKeyId ? { accessKeyId: route.accessKeyId, secretAccessKey: route.secretAccessKey! } : undefined;
    return { bucket, endpoint: route.endpoint, region: route.region, credentials };
  }
  return { dir: route?.dir ?? resolve(dataDir, 'buckets', bucket) };
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
