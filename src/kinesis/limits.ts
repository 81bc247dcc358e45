// Kinesis Data Streams quotas and constants (reference/kinesis-firehose.md §2), one name each.

export const MAX_RECORD_BYTES = 1024 * 1024; // Data (decoded) + partition key, default MaxRecordSizeInKiB
export const MAX_PUT_RECORDS_COUNT = 500;
export const MAX_PUT_RECORDS_BYTES = 5 * 1024 * 1024;
export const MAX_PARTITION_KEY_LENGTH = 256;
/**
 * The longest request body: a full PutRecords in JSON. Its 5 MiB of data and keys are 6.67 MiB
 * once the data is base64 (4/3), plus 500 records' JSON around them (member names, an
 * ExplicitHashKey of up to 39 digits, partition keys of up to 256 characters at up to 3 bytes in
 * UTF-8): 6.67 MiB + 500 × ~900 bytes ≈ 7.1 MiB. Anything longer cannot be a valid request.
 */
export const MAX_JSON_REQUEST_BYTES = 8 * 1024 * 1024;
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
