// The Log boundary: an append-only, durable sequence of opaque records addressed by offset.
// The ingest log (PutEvents), Kinesis shards and Firehose buffers all sit on this interface, so the
// embedded segment log can later be swapped for a distributed engine without touching callers.

export interface LogRecord {
  /**
   * Position of the record in the log: starts at 0 and increases by one per record, except where
   * records were lost to damage (or skipped so that no offset is handed out twice): there the
   * sequence has a hole, which reads step over. An offset is never given to two records.
   */
  offset: number;
  /** Milliseconds since the epoch at which the record was appended (the log's clock). */
  timestamp: number;
  payload: Buffer;
}

/** A record's bytes; a string is stored as its UTF-8 encoding (saves callers a copy). */
export type Payload = Buffer | string;

export interface AppendResult {
  /** Offset given to the first payload of the batch; the rest follow contiguously unless `offsets` is set. */
  firstOffset: number;
  /** Append time stamped on every record of the batch. */
  timestamp: number;
  /**
   * Set only when the batch did not get contiguous offsets: payload i got offsets[i]. A log shared by
   * several processes (JetStream) can interleave another writer's records with a batch, and a
   * payload deduplicated by its id keeps the offset of the record stored first.
   */
  offsets?: number[];
}

export interface AppendOptions {
  /**
   * A deduplication id per payload (undefined: none). A log shared by several processes stores a
   * payload whose id it stored recently only once (JetStream's Nats-Msg-Id), so a retry through
   * another node is not a duplicate; the segment log ignores them (the ingest path's own window
   * covers the single process).
   */
  ids?: ReadonlyArray<string | undefined>;
}

export interface ReadOptions {
  /** Stop after this many records (default 10,000). */
  maxRecords?: number;
  /** Stop once this many payload bytes were gathered; at least one record is always returned. */
  maxBytes?: number;
}

export interface ReadResult {
  records: LogRecord[];
  /** Offset to pass to the next read (past any hole the read stepped over). */
  nextOffset: number;
}

/** A consumer's saved position was beyond the end of the log (see `checkConsumer`). */
export interface OffsetGap {
  consumer: string;
  /** The consumer's checkpoint: the first offset it had not consumed. */
  checkpoint: number;
  /** Where the log ended when the gap was found. */
  logEnd: number;
  /** Offsets the consumer had passed that the log no longer holds (checkpoint - logEnd). */
  records: number;
  /** Operator-facing sentence, free of tenant names. */
  message: string;
}

/** The gap a consumer at `checkpoint` finds when the log ends at `end` (`cause`: why records went). */
export function offsetGap(consumer: string, checkpoint: number, end: number, cause: string): OffsetGap {
  const records = checkpoint - end;
  return {
    consumer,
    checkpoint,
    logEnd: end,
    records,
    message:
      `checkpoint ${checkpoint} is beyond the end of the log (${end}): ${records} records it had passed are gone (${cause}); ` +
      `the log continues at ${checkpoint}, so no offset is handed out twice`,
  };
}

/** Damage, recovery and write trouble of one log since it was opened (counts only, no names). */
export interface LogHealth {
  /** Acknowledged records lost to damage (skipped, their bytes moved aside). */
  recordsLost: number;
  /** Bytes moved aside into `*.damaged-<position>` files. */
  bytesLost: number;
  /** Damaged places found (records lost or not). */
  damagedRegions: number;
  /** Damaged records restored from their CRC (only header fields were hit). */
  recordsRepaired: number;
  /** Bytes of torn tails (an incomplete last write, never acknowledged) cut at open. */
  tornBytes: number;
  /** Index files found damaged or inconsistent and rebuilt from their segment. */
  indexRebuilds: number;
  /** Consumers found with a checkpoint beyond the end of the log. */
  checkpointGaps: number;
  /** `*.damaged-*` files next to the segments (from this start or earlier ones). */
  damagedFiles: number;
  /** Write rounds that failed (each failed every append in it). */
  writeFailures: number;
  /** Set while writes fail: since when, the error code, and whether the disk is full. */
  failing?: { since: number; code: string; diskFull: boolean };
}

export interface Log {
  /** True when append uses AppendOptions.ids (callers skip building them otherwise). */
  readonly usesIds?: boolean;
  /**
   * Appends a batch. The promise resolves only once every record of the batch is on disk
   * (fdatasync done when the log is configured durable); concurrent appends share one sync.
   * A failed write rejects with a LogWriteError (log/errors.ts) and the log retries on the next
   * append, so it recovers by itself once the disk has room again.
   */
  append(payloads: ReadonlyArray<Payload>, options?: AppendOptions): Promise<AppendResult>;
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
  /**
   * A consumer (`consumer` names it in the server's log lines) resumes at `checkpoint`. When that
   * is beyond the end, records it had already passed were lost: the log reports it and durably
   * continues at `checkpoint`, so no offset at or below one a consumer passed is handed out again.
   * Returns the gap (also on later calls for the same consumer), else undefined.
   */
  checkConsumer(consumer: string, checkpoint: number): Promise<OffsetGap | undefined>;
  health(): LogHealth;
  /** Removes all files of the log (stream deletion). */
  destroy(): Promise<void>;
  close(): Promise<void>;
}
