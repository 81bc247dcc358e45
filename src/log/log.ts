// The Log boundary: an append-only, durable sequence of opaque records addressed by offset.
// The ingest log (PutEvents), Kinesis shards and Firehose buffers all sit on this interface, so the
// embedded segment log can later be swapped for a distributed engine without touching callers.

export interface LogRecord {
  /** Position of the record in the log: dense, starting at 0, increasing by one per record. */
  offset: number;
  /** Milliseconds since the epoch at which the record was appended (the log's clock). */
  timestamp: number;
  payload: Buffer;
}

/** A record's bytes; a string is stored as its UTF-8 encoding (saves callers a copy). */
export type Payload = Buffer | string;

export interface AppendResult {
  /** Offset given to the first payload of the batch; the rest follow contiguously. */
  firstOffset: number;
  /** Append time stamped on every record of the batch. */
  timestamp: number;
}

export interface ReadOptions {
  /** Stop after this many records (default 10,000). */
  maxRecords?: number;
  /** Stop once this many payload bytes were gathered; at least one record is always returned. */
  maxBytes?: number;
}

export interface ReadResult {
  records: LogRecord[];
  /** Offset to pass to the next read. */
  nextOffset: number;
}

export interface Log {
  /**
   * Appends a batch. The promise resolves only once every record of the batch is on disk
   * (fdatasync done when the log is configured durable); concurrent appends share one sync.
   */
  append(payloads: ReadonlyArray<Payload>): Promise<AppendResult>;
  /** Reads committed records from `offset` on. Offsets below the start (trimmed) read from the start. */
  read(offset: number, options?: ReadOptions): Promise<ReadResult>;
  /** First offset still stored (after retention). */
  startOffset(): number;
  /** Offset the next appended record will get; everything below it is committed. */
  endOffset(): number;
  /** First offset whose timestamp is >= ts (endOffset() when none). */
  offsetForTimestamp(ts: number): Promise<number>;
  /** Resolves when endOffset() > offset, or after timeoutMs; returns whether data is there. */
  waitFor(offset: number, timeoutMs: number): Promise<boolean>;
  /** Deletes whole segments whose every record is older than cutoffMs. Returns records removed. */
  deleteOlderThan(cutoffMs: number): Promise<number>;
  /** Removes all files of the log (stream deletion). */
  destroy(): Promise<void>;
  close(): Promise<void>;
}
