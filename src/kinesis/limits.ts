// Kinesis Data Streams quotas and constants (reference/kinesis-firehose.md §2), one name each.
// Where AWS's service model states a range, it is read from the generated model tables.

import { model } from '../models/generated/kinesis.js';

export const MAX_RECORD_BYTES = 1024 * 1024; // Data (decoded) + partition key, default MaxRecordSizeInKiB
export const MAX_PUT_RECORDS_COUNT = 500;
export const MAX_PUT_RECORDS_BYTES = 5 * 1024 * 1024;
export const MAX_PARTITION_KEY_LENGTH = 256;
/**
 * The longest request body: a PutRecord of the largest record a stream may be set to take
 * (MAX_RECORD_SIZE_KIB, 10 MiB) in JSON: 13.34 MiB once base64 (4/3), plus a partition key of up
 * to 256 characters at up to 6 bytes each as JSON escapes, an ExplicitHashKey and the member
 * names: well under 14 MiB. A full PutRecords (5 MiB of data and keys, 7.1 MiB as JSON) is
 * smaller. Anything longer cannot be a valid request.
 */
export const MAX_JSON_REQUEST_BYTES = 14 * 1024 * 1024;
export const MAX_GET_RECORDS_COUNT = 10_000;
export const MAX_GET_RECORDS_BYTES = 10 * 1024 * 1024;
export const ITERATOR_TTL_MS = 5 * 60 * 1000;
export const LIST_SHARDS_TOKEN_TTL_MS = 5 * 60 * 1000;
export const MIN_RETENTION_HOURS = 24;
export const MAX_RETENTION_HOURS = 8760;
export const DEFAULT_RETENTION_HOURS = 24;
export const MAX_STREAM_NAME_LENGTH = 128;
export const MAX_SHARDS_PER_ACCOUNT = 20_000;
export const ON_DEMAND_SHARDS = 4;
export const DEFAULT_DESCRIBE_SHARDS = 100;
export const DEFAULT_LIST_SHARDS = 1000;
export const MAX_LIST_SHARDS = 10_000;
export const DEFAULT_LIST_STREAMS = 100;
export const MAX_TAGS_PER_STREAM = 50;
export const MAX_TAGS_PER_CALL = 200;
export const MAX_TAG_KEY_LENGTH = 128;
export const MAX_TAG_VALUE_LENGTH = 256;
export const MAX_LIST_TAGS = 50;
export const MAX_CONSUMERS_PER_STREAM = 20;
// Per-shard throughput, enforced only when PINSTREAM_KINESIS_SHARD_LIMITS is on.
export const SHARD_WRITE_BYTES_PER_SEC = 1024 * 1024;
export const SHARD_WRITE_RECORDS_PER_SEC = 1000;
export const SHARD_READ_BYTES_PER_SEC = 2 * 1024 * 1024;
export const SHARD_READ_CALLS_PER_SEC = 5;

/** MaxRecordSizeInKiB's range (CreateStream, UpdateMaxRecordSize), from the model: 1024..10240. */
export const MIN_RECORD_SIZE_KIB = model.shapes.MaxRecordSizeInKiB.min!;
export const MAX_RECORD_SIZE_KIB = model.shapes.MaxRecordSizeInKiB.max!;
/** A stream's MaxRecordSizeInKiB when none was set: the classic 1 MiB. */
export const DEFAULT_RECORD_SIZE_KIB = MAX_RECORD_BYTES / 1024;
/** AWS's default quota of ON_DEMAND streams per account (DescribeLimits' OnDemandStreamCountLimit). */
export const MAX_ON_DEMAND_STREAMS = 50;
/** A stream may switch between PROVISIONED and ON_DEMAND twice in a rolling 24 hours (AWS's rule). */
export const MAX_MODE_SWITCHES_PER_DAY = 2;
/** The longest resource-based policy document PutResourcePolicy stores, in bytes of UTF-8. */
export const MAX_RESOURCE_POLICY_BYTES = 20 * 1024;
/** A minimum throughput billing commitment cannot end sooner than this after it started. */
export const MIN_BILLING_COMMITMENT_MS = 24 * 3600_000;
