// A bucket as a delivery stream's IAM role sees it. Firehose writes to S3 as the role named in the
// S3 configuration, so every call is authorized as that role when it is made (a role whose
// policies or trust change after the stream was created is honoured at once): the role's trust
// policy must let firehose.amazonaws.com assume it for the delivery stream (aws:SourceArn,
// aws:SourceAccount), and its policies must allow the S3 action on the object or bucket ARN.
//
// Which of the actions AWS documents for Firehose's S3 role (s3:AbortMultipartUpload,
// GetBucketLocation, GetObject, ListBucket, ListBucketMultipartUploads, PutObject) are checked:
// s3:PutObject on `arn:aws:s3:::BUCKET/KEY` for every object written (data, S3 backup, error
// output, Redshift staging and manifests, HTTP endpoint backup), s3:GetObject on the object for a
// read and s3:ListBucket on `arn:aws:s3:::BUCKET` for a listing. Pinstream never asks a bucket for
// its location (routes say where buckets are) and never uploads in parts, so GetBucketLocation,
// AbortMultipartUpload and ListBucketMultipartUploads are allowed or not without effect.
//
// A refusal is Firehose's delivery error S3.AccessDenied: the deliverer keeps the batch, retries
// it (S3 destinations retry until delivered) and reports the reason in the stream's health.

import type { Readable } from 'node:stream';
import type { ObjectStore } from './object-store.js';
import { objectArn } from './index.js';

export const S3_ACCESS_DENIED = 'S3.AccessDenied';
/** The message Firehose logs with S3.AccessDenied. */
export const S3_ACCESS_DENIED_MESSAGE =
  'Access was denied. Ensure that the trust policy for the provided IAM role allows Firehose to assume the role, and the access policy allows access to the S3 bucket.';

export class S3AccessDeniedError extends Error {
  override name = 'S3AccessDeniedError';
  readonly code = S3_ACCESS_DENIED;
}

/**
 * Why the role may not do `action` on `resource`, or undefined when it may. Asynchronous where the
 * roles live on another thread (the Firehose thread asks the main thread, once per object).
 */
export type RoleCheck = (action: string, resource: string) => string | undefined | Promise<string | undefined>;

export class RoleScopedStore implements ObjectStore {
  readonly location: string;

  constructor(
    private readonly inner: ObjectStore,
    private readonly bucket: string,
    private readonly roleArn: string | undefined,
    private readonly check: RoleCheck,
  ) {
    this.location = inner.location;
  }

  async put(key: string, body: Buffer, contentType?: string): Promise<void> {
    await this.allow('s3:PutObject', objectArn(this.bucket, key));
    await this.inner.put(key, body, contentType);
  }

  async get(key: string): Promise<Buffer> {
    await this.allow('s3:GetObject', objectArn(this.bucket, key));
    return this.inner.get(key);
  }

  async stream(key: string, start?: number): Promise<Readable> {
    await this.allow('s3:GetObject', objectArn(this.bucket, key));
    return this.inner.stream(key, start);
  }

  async list(prefix: string): Promise<string[]> {
    await this.allow('s3:ListBucket', `arn:aws:s3:::${this.bucket}`);
    return this.inner.list(prefix);
  }

  /** The inner store belongs to the server (one per bucket, shared): nothing of its own to release. */
  close(): void {}

  private async allow(action: string, resource: string): Promise<void> {
    const why = this.roleArn === undefined ? 'no RoleARN is configured for this bucket' : await this.check(action, resource);
    if (why !== undefined) {
      throw new S3AccessDeniedError(`${S3_ACCESS_DENIED}: ${S3_ACCESS_DENIED_MESSAGE} (${action} on ${resource} as ${this.roleArn ?? 'no role'}: ${why})`);
    }
  }
}
