// Amazon Data Firehose quotas and defaults (reference/kinesis-firehose.md §3, the service model's
// min/max), one name each, so every check and its test refer to the same number.

/** PutRecord / PutRecordBatch: one record's Data, before base64. */
export const MAX_RECORD_BYTES = 1_024_000;
/** PutRecordBatch: records per call. */
export const MAX_BATCH_RECORDS = 500;
/** PutRecordBatch: decoded Data of all records of one call. */
export const MAX_BATCH_BYTES = 4 * 1024 * 1024;
/**
 * The longest request body: a full PutRecordBatch in JSON, 4 MiB of data in base64 (5.33 MiB) plus
 * 500 records' `{"Data":""}` and the stream name. Configurations (CreateDeliveryStream) are far smaller.
 */
export const MAX_JSON_REQUEST_BYTES = 6 * 1024 * 1024;

export const MAX_STREAM_NAME_LENGTH = 64;
export const STREAM_NAME_PATTERN = /^[a-zA-Z0-9_.-]+$/;
/** Delivery streams per account and region (AWS's default quota). */
export const MAX_DELIVERY_STREAMS = 5_000;
/** ListDeliveryStreams answers at most this many names per call (AWS: 10,000 for Limit, pages of 10,000). */
export const MAX_LIST_LIMIT = 10_000;
export const DEFAULT_LIST_LIMIT = 10;

export const MAX_TAGS_PER_STREAM = 50;
export const MAX_TAG_KEY_LENGTH = 128;
export const MAX_TAG_VALUE_LENGTH = 256;
export const MAX_LIST_TAGS = 50;

/** Prefix and ErrorOutputPrefix of S3 configurations. */
export const MAX_PREFIX_LENGTH = 1024;

/** BufferingHints defaults (all destinations). */
export const DEFAULT_BUFFER_SIZE_MB = 5;
export const DEFAULT_BUFFER_INTERVAL_S = 300;
/** Buffer size ranges per destination kind (MB); the interval is 0–900 s everywhere. */
export const S3_BUFFER_SIZE_MB = { min: 1, max: 128 } as const;
export const HTTP_BUFFER_SIZE_MB = { min: 1, max: 64 } as const;
export const BUFFER_INTERVAL_S = { min: 0, max: 900 } as const;

/** RetryOptions.DurationInSeconds range, and the defaults of the destinations that have one. */
export const RETRY_DURATION_S = { min: 0, max: 7200 } as const;
export const DEFAULT_REDSHIFT_RETRY_S = 3600;
/** HTTP endpoints: the model states no default; 300 s is the console's (not verified from an AWS document). */
export const DEFAULT_HTTP_RETRY_S = 300;
export const DEFAULT_DYNAMIC_PARTITIONING_RETRY_S = 300;

/**
 * A destination's BufferingHints with the defaults filled in. Ranges are checked once, at the API
 * (validate.ts), before any adapter sees a configuration.
 */
export function bufferingOf(hints: { SizeInMBs?: unknown; IntervalInSeconds?: unknown } | undefined): { sizeBytes: number; intervalMs: number } {
  const size = typeof hints?.SizeInMBs === 'number' ? hints.SizeInMBs : DEFAULT_BUFFER_SIZE_MB;
  const interval = typeof hints?.IntervalInSeconds === 'number' ? hints.IntervalInSeconds : DEFAULT_BUFFER_INTERVAL_S;
  return { sizeBytes: size * 1024 * 1024, intervalMs: interval * 1000 };
}

/** RetryOptions.DurationInSeconds in ms, or the destination's default. */
export function retryDurationMsOf(retry: { DurationInSeconds?: unknown } | undefined, defaultSeconds: number): number {
  return (typeof retry?.DurationInSeconds === 'number' ? retry.DurationInSeconds : defaultSeconds) * 1000;
}

/** Compressions COPY cannot read, so the model forbids them on a Redshift intermediate bucket. */
export const REDSHIFT_FORBIDDEN_COMPRESSIONS: readonly string[] = ['Snappy', 'ZIP', 'HADOOP_SNAPPY'];

/** Dynamic partitioning: buffers (distinct partition keys) alive at once per delivery stream. */
export const MAX_ACTIVE_PARTITIONS = 500;

/** The one destination a delivery stream has, as every DescribeDeliveryStream shows it. */
export const DESTINATION_ID = 'destinationId-000000000001';

/** How often a deliverer looks at its buffers' age against the (injected) clock. */
export const BUFFER_CHECK_MS = 200;
/** Records a deliverer reads from its log per chunk. */
export const READ_CHUNK_RECORDS = 2_000;
export const READ_CHUNK_BYTES = 16 * 1024 * 1024;
/** close() gives delivering what is buffered at most this long; the rest stays in the log. */
export const CLOSE_FLUSH_TIMEOUT_MS = 10_000;
/** A Kinesis source waits this long between polls of a caught-up shard. */
export const KINESIS_SOURCE_POLL_MS = 500;
/** The longest pause of a Kinesis source between failed attempts (reads, or appends to a full disk). */
export const KINESIS_SOURCE_MAX_BACKOFF_MS = 10_000;
/** GetRecords Limit of a Kinesis source. */
export const KINESIS_SOURCE_READ_LIMIT = 1_000;
