// The Destination boundary of event-stream delivery: one batch of records in, one outcome per
// record out. Adapters (Kinesis PutRecords, Firehose PutRecordBatch) are shaped alike and use the
// AWS SDK clients, so the same code reaches the embedded services, real AWS, or any
// Kinesis/Firehose-compatible server depending only on the client's endpoint and credentials.

export interface DeliveryRecord {
  /** The Pinpoint event-stream record (JSON bytes). */
  data: Buffer;
  /** Kinesis partition key: the endpoint id, so each device's events stay in order. */
  partitionKey: string;
  /**
   * MD5 of the Kinesis partition key as 32 hex digits (the shard it routes to), when computed
   * ahead: the consumers thread does, so the main thread's put does not hash every record.
   */
  routeHex?: string;
}

export type RecordOutcome = { ok: true } | { ok: false; error: string };

export interface Destination {
  readonly kind: 'kinesis' | 'firehose';
  readonly arn: string;
  /** Per-call limits of the destination API. */
  readonly maxRecords: number;
  readonly maxBatchBytes: number;
  readonly maxRecordBytes: number;
  /** Bytes a record counts for against the limits (Kinesis: data + key; Firehose: data + newline). */
  recordSize(r: DeliveryRecord): number;
  /**
   * Sends one batch within the limits. Resolves with one outcome per record, in order (records the
   * destination refused individually, e.g. throttled); rejects when the call as a whole failed
   * (network, 5xx, access denied, stream missing) — then nothing of the batch is known accepted.
   */
  send(records: DeliveryRecord[]): Promise<RecordOutcome[]>;
  /** Checks the destination exists and accepts writes (DescribeStreamSummary / DescribeDeliveryStream). */
  describe(): Promise<{ active: boolean; status: string }>;
  close(): void;
}
