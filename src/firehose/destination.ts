// The Destination boundary of the embedded Firehose: the deliverer hands one buffered batch of a
// delivery stream to its destination adapter (extended S3, Redshift, HTTP endpoint) and gets one
// outcome back. Adapters never retry on their own: the deliverer owns backoff, the retry window
// (RetryOptions) and checkpoints, and calls `abandon` when the window has run out.

import type { ObjectBuilder } from './build.js';
import type { Clock } from '../clock.js';
import type { ObjectStore } from './objects/object-store.js';
import type { ConversionSchema } from './schema.js';

/** One record as PutRecord(Batch) accepted it (or as read from a Kinesis source). */
export interface FirehoseRecord {
  data: Buffer;
  /** Approximate arrival time (ms): drives object-key timestamps and error documents. */
  arrivalMs: number;
  /** The RecordId handed to the producer. */
  recordId: string;
}

export interface StreamInfo {
  name: string;
  arn: string;
  /** VersionId: 1, then +1 per UpdateDestination; part of S3 object names. */
  version: number;
}

export interface DeliveryBatch {
  /** Random UUID, stable across every retry of this batch (HTTP request id, object-name uuid). */
  id: string;
  stream: StreamInfo;
  records: FirehoseRecord[];
  /** Arrival time of the oldest record: the instant `!{timestamp:…}` and `YYYY/MM/dd/HH/` use. */
  firstArrivalMs: number;
  /** Dynamic partitioning: the partition keys this batch was grouped by (`!{partitionKeyFromQuery:k}`). */
  partitionKeys?: Record<string, string>;
  /** 1 on the first attempt. */
  attempt: number;
}

export type DeliveryOutcome = { ok: true } | { ok: false; error: string };

export type PartitionResult = { ok: true; key: string; keys: Record<string, string> } | { ok: false; error: string };

export interface BufferingHints {
  sizeBytes: number;
  intervalMs: number;
}

export interface FirehoseDestination {
  readonly kind: 'ExtendedS3' | 'Redshift' | 'HttpEndpoint';
  /** BufferingHints of the configuration, defaults filled in. */
  readonly buffering: BufferingHints;
  /** RetryOptions.DurationInSeconds in ms; Infinity where Firehose retries until delivered (S3). */
  readonly retryDurationMs: number;
  /**
   * Dynamic partitioning only: the partition of one record (a string key grouping buffers, and
   * the key→value map for the prefix). `ok:false` sends the record to the error output.
   */
  partition?(record: FirehoseRecord): PartitionResult;
  /** Writes the batch. Must not throw: failures are outcomes, and the deliverer retries them. */
  deliver(batch: DeliveryBatch): Promise<DeliveryOutcome>;
  /**
   * The retry window ran out: keep the batch where a person can recover it (S3 backup, error
   * prefix, `errors/` manifest). `ok:false` keeps the deliverer retrying this call.
   */
  abandon(batch: DeliveryBatch, lastError: string): Promise<DeliveryOutcome>;
  /** Records that could never be delivered (partitioning failed): written to the error output. */
  rejectRecords?(stream: StreamInfo, records: FirehoseRecord[], errorCode: string, errorMessage: string): Promise<DeliveryOutcome>;
  close(): Promise<void>;
}

/** A configuration an adapter cannot run with; the API answers it as InvalidArgumentException. */
export class DestinationConfigError extends Error {
  readonly code = 'InvalidArgumentException';
}

/** What adapters get from the server: the clock, and object stores resolved per bucket. */
export interface DestinationContext {
  clock: Clock;
  /**
   * The store behind an S3 bucket ARN (`arn:aws:s3:::name`), a local folder or an S3-compatible
   * endpoint, as seen by `roleArn`: the role of the S3 configuration naming the bucket, which
   * every read and write is authorized as.
   */
  objects(bucketArn: string, roleArn: string | undefined): ObjectStore;
  /**
   * The columns of the Data Catalog table a SchemaConfiguration names, read as its RoleARN
   * (glue:GetTable on the table); throws SchemaError saying why it cannot be used. Absent where
   * there is no catalog: format conversion is then refused. Asynchronous where the catalog lives
   * on another thread (the Firehose thread asks the main thread, once per batch); validating
   * (on the main thread only) it answers synchronously.
   */
  schema?(schemaConfiguration: Record<string, unknown>): ConversionSchema | Promise<ConversionSchema>;
  /**
   * The stream is being created or updated: what could only fail later (a table that does not
   * exist, a role that may not read it) is refused now. Unset when stored streams reopen at a
   * restart, where the same problems are delivery errors reported in health.
   */
  validating?: boolean;
  /** Where object bodies are compressed and converted (default: on the caller's thread). */
  build?: ObjectBuilder;
}
