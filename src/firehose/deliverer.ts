// One delivery stream's delivery loop. It owns: reading the stream's log from the saved
// checkpoint, buffering records (one buffer, or one per partition key with dynamic partitioning,
// up to MAX_ACTIVE_PARTITIONS), cutting a buffer into a batch when it reaches the size hint or its
// oldest record the interval hint (measured on the injected clock, looked at every BUFFER_CHECK_MS),
// handing batches to the destination with full-jitter backoff until the destination's retry window
// has passed since the first attempt and then to `abandon` (retried until it succeeds), and moving
// the checkpoint only below every record still buffered or in flight: at least once, and buffers
// survive restarts because they are read again from the log. It does not own the destination, the
// log or where the checkpoint is persisted. One loop, two hosts: FirehoseService runs it on the
// main thread (consumerThreads 0, or a log another process writes: JetStream), the Firehose thread
// (thread.ts) over a read-only view of the stream's segment log; snapshot() is what crosses.

import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { BackoffOptions } from '../consumer/backoff.js';
import type { Checkpoint } from '../consumer/checkpoint.js';
import { computeLag, ConsumerKit, type ConsumerLag, type LagState } from '../consumer/kit.js';
import { describeError, STOPPED, type Stopped } from '../consumer/stop-signal.js';
import type { Log, OffsetGap } from '../log/log.js';
import type { DeliveryBatch, DeliveryOutcome, FirehoseDestination, FirehoseRecord, StreamInfo } from './destination.js';
import { BUFFER_CHECK_MS, CLOSE_FLUSH_TIMEOUT_MS, MAX_ACTIVE_PARTITIONS, READ_CHUNK_BYTES, READ_CHUNK_RECORDS } from './limits.js';
import { METADATA_EXTRACTION_FAILED } from './partition.js';
import { decodeRecord } from './records.js';

/** What a deliverer reads: the stream's log, or a read-only view of it in another thread. */
export type DelivererLog = Pick<Log, 'read' | 'endOffset' | 'waitFor'>;

export interface DelivererOptions {
  stream: () => StreamInfo;
  log: DelivererLog;
  destination: FirehoseDestination;
  checkpoint: Checkpoint;
  clock: Clock;
  checkMs?: number;
  closeTimeoutMs?: number;
  backoff?: BackoffOptions;
  random?: () => number;
  newId?: () => string;
  /** Found at start: the checkpoint was beyond the log's end (records lost to damage); shown in health. */
  gap?: OffsetGap;
}

export interface DelivererHealth extends ConsumerLag {
  state: 'running' | 'retrying' | 'stopped';
  /** First log offset not yet delivered (or abandoned / rejected). */
  checkpoint: number;
  logEnd: number;
  /**
   * Records between the checkpoint and the end of the log: buffered, in flight or not read yet.
   * millisBehind is the age of the oldest of them when it is buffered or pending (exact), else an
   * upper bound (see computeLag in src/consumer/kit.ts).
   */
  recordsBehind: number;
  bufferedRecords: number;
  bufferedBytes: number;
  activePartitions: number;
  deliveredRecords: number;
  deliveredBatches: number;
  /** Destination calls repeated after a failure. */
  retries: number;
  abandonedBatches: number;
  rejectedRecords: number;
  /** Buffer age checks so far (tests wait on it instead of sleeping). */
  checks: number;
  lastError?: { message: string; at: number };
  lastDeliveryAt?: number;
  /** The checkpoint was beyond the end of the log at start: records it had passed were lost. */
  checkpointGap?: { records: number; message: string };
}

/**
 * Health as it crosses a thread: the deliverer's counts, and the lag inputs, so that the side
 * reading it computes records and millis behind against the log's end and the clock of then.
 */
export interface DelivererSnapshot {
  health: DelivererHealth;
  lag: LagState;
}

/** The health a snapshot says at `now`, for a log ending at `logEnd` now. */
export function healthAt(s: DelivererSnapshot, logEnd: number, now: number): DelivererHealth {
  return { ...s.health, logEnd, ...computeLag(s.lag, Math.max(logEnd, s.health.checkpoint), now) };
}

interface Entry {
  offset: number;
  /** When the record entered this stream's log: the buffer interval counts from here. */
  appendedMs: number;
  record: FirehoseRecord;
}

interface Partition {
  keys?: Record<string, string>;
  entries: Entry[];
  bytes: number;
}

interface Pending {
  batch: Omit<DeliveryBatch, 'attempt'>;
  firstOffset: number;
  /** Append time of its oldest record (lag). */
  firstAppendedMs: number;
  attempts: number;
  firstAttemptMs?: number;
}

export const ACTIVE_PARTITION_EXCEEDED = 'activePartitionExceeded';

export class Deliverer {
  /** Checkpoint, loop, backoff, stop signal, state and lag (the consumer kit). */
  private readonly kit: ConsumerKit;
  private readAt: number;
  private partitions = new Map<string, Partition>();
  private pending: Pending[] = [];
  private inflight: { p: Pending; done: Promise<DeliveryOutcome> } | undefined;
  private stats = { deliveredRecords: 0, deliveredBatches: 0, abandonedBatches: 0, rejectedRecords: 0, checks: 0 };
  private lastDeliveryAt: number | undefined;

  constructor(private readonly o: DelivererOptions) {
    this.kit = new ConsumerKit(o);
    this.readAt = this.kit.cursor;
  }

  start(): void {
    this.kit.start(() => this.run());
  }

  /** Ends the loop without flushing: what is buffered stays in the log for the next deliverer. */
  stop(): Promise<void> {
    return this.kit.stop();
  }

  /**
   * Shutdown: stops the loop, then offers every buffer to the destination once, all within the
   * close timeout. What is not accepted stays behind the checkpoint, read again at the next start.
   */
  async close(): Promise<void> {
    await this.stop();
    const deadline = this.o.clock.now() + (this.o.closeTimeoutMs ?? CLOSE_FLUSH_TIMEOUT_MS);
    const timeout = <T>(p: Promise<T>): Promise<T | Stopped> => {
      let timer: NodeJS.Timeout | undefined;
      const t = new Promise<Stopped>((r) => (timer = setTimeout(() => r(STOPPED), Math.max(0, deadline - this.o.clock.now()))));
      return Promise.race([p, t]).finally(() => clearTimeout(timer));
    };
    if (this.inflight) {
      const { p, done } = this.inflight;
      const out = await timeout(done);
      if (out !== STOPPED && out.ok) this.acknowledge(p);
    }
    for (const key of [...this.partitions.keys()]) this.cut(key);
    for (const p of [...this.pending]) {
      const out = await timeout(this.attempt(p));
      if (out !== STOPPED && out.ok) this.acknowledge(p);
    }
    this.advance();
  }

  health(): DelivererHealth {
    return this.snapshot().health;
  }

  snapshot(): DelivererSnapshot {
    const logEnd = this.o.log.endOffset();
    let bufferedRecords = 0;
    let bufferedBytes = 0;
    let oldest: number | undefined;
    for (const p of this.partitions.values()) {
      bufferedRecords += p.entries.length;
      bufferedBytes += p.bytes;
      oldest = Math.min(oldest ?? Infinity, p.entries[0].appendedMs);
    }
    for (const p of this.pending) oldest = Math.min(oldest ?? Infinity, p.firstAppendedMs);
    const { state, checkpoint, retries, lastError } = this.kit.base();
    const health: DelivererHealth = {
      state,
      checkpoint,
      logEnd,
      ...this.kit.lag(logEnd, oldest),
      bufferedRecords,
      bufferedBytes,
      activePartitions: this.partitions.size,
      ...this.stats,
      retries,
      ...(lastError ? { lastError } : {}),
      ...(this.lastDeliveryAt !== undefined ? { lastDeliveryAt: this.lastDeliveryAt } : {}),
      ...(this.o.gap ? { checkpointGap: { records: this.o.gap.records, message: this.o.gap.message } } : {}),
    };
    return { health, lag: this.kit.lagState(oldest) };
  }

  private async run(): Promise<void> {
    await this.kit.runSteps(async () => {
      const read = await this.readChunk();
      this.cutDue();
      while (this.pending.length > 0) {
        if (!(await this.deliver(this.pending[0]))) return;
        this.advance();
      }
      this.advance();
      if (!read) {
        this.kit.caughtUp();
        // New records wake us at once; the timeout is the buffer-age check of the clock.
        await this.kit.waitForLog(this.o.log, this.readAt, this.o.checkMs ?? BUFFER_CHECK_MS);
      }
    }, "reading the delivery stream's log");
  }

  /** Reads one chunk into the buffers; false when there was nothing new. */
  private async readChunk(): Promise<boolean> {
    const { log, destination } = this.o;
    if (this.readAt >= log.endOffset()) return false;
    const { records, nextOffset } = await log.read(this.readAt, { maxRecords: READ_CHUNK_RECORDS, maxBytes: READ_CHUNK_BYTES });
    if (records.length > 0) this.kit.lastReadTs = records[records.length - 1].timestamp;
    const rejects = new Map<string, { message: string; records: FirehoseRecord[] }>();
    const reject = (code: string, message: string, r: FirehoseRecord) => {
      const g = rejects.get(code) ?? { message, records: [] };
      g.records.push(r);
      rejects.set(code, g);
    };
    for (const lr of records) {
      let record: FirehoseRecord;
      try {
        record = decodeRecord(lr.payload);
      } catch (e) {
        this.failed(`log offset ${lr.offset} skipped: ${describeError(e)}`);
        continue;
      }
      let key = '';
      let keys: Record<string, string> | undefined;
      if (destination.partition) {
        const part = destination.partition(record);
        if (!part.ok) {
          reject(METADATA_EXTRACTION_FAILED, part.error, record);
          continue;
        }
        key = part.key;
        keys = part.keys;
        if (!this.partitions.has(key) && this.partitions.size >= MAX_ACTIVE_PARTITIONS) {
          reject(ACTIVE_PARTITION_EXCEEDED, `the delivery stream already has ${MAX_ACTIVE_PARTITIONS} active partitions (limit)`, record);
          continue;
        }
      }
      let p = this.partitions.get(key);
      if (!p) this.partitions.set(key, (p = { keys, entries: [], bytes: 0 }));
      p.entries.push({ offset: lr.offset, appendedMs: lr.timestamp, record });
      p.bytes += record.data.length;
      if (p.bytes >= destination.buffering.sizeBytes) this.cut(key);
    }
    for (const [code, g] of rejects) {
      if (!(await this.rejectRecords(code, g.message, g.records))) return true;
    }
    this.readAt = Math.max(this.readAt, nextOffset);
    return true;
  }

  /** Cuts every buffer whose oldest record has waited the interval (interval 0: at once). */
  private cutDue(): void {
    this.stats.checks++;
    const now = this.o.clock.now();
    const interval = this.o.destination.buffering.intervalMs;
    for (const [key, p] of this.partitions) if (now - p.entries[0].appendedMs >= interval) this.cut(key);
  }

  private cut(key: string): void {
    const p = this.partitions.get(key);
    if (!p) return;
    this.partitions.delete(key);
    const records = p.entries.map((e) => e.record);
    this.pending.push({
      batch: {
        id: this.o.newId?.() ?? randomUUID(),
        stream: this.o.stream(),
        records,
        firstArrivalMs: records.reduce((m, r) => Math.min(m, r.arrivalMs), Infinity),
        ...(p.keys ? { partitionKeys: p.keys } : {}),
      },
      firstOffset: p.entries[0].offset,
      firstAppendedMs: p.entries[0].appendedMs,
      attempts: 0,
    });
  }

  /** Delivers until accepted or abandoned; false when stopped first. */
  private async deliver(p: Pending): Promise<boolean> {
    const { destination, clock } = this.o;
    for (;;) {
      p.firstAttemptMs ??= clock.now();
      const done = this.attempt(p);
      this.inflight = { p, done };
      const out = await this.kit.race(done);
      if (out === STOPPED) return false;
      this.inflight = undefined;
      if (out.ok) {
        this.acknowledge(p);
        return true;
      }
      this.failed(`${destination.kind}: ${out.error}`);
      if (clock.now() - p.firstAttemptMs >= destination.retryDurationMs) return this.abandon(p, out.error);
      if (!(await this.kit.backoff(p.attempts - 1))) return false;
      this.kit.retries++;
    }
  }

  private async abandon(p: Pending, lastError: string): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      const out = await this.kit.race(safe(() => this.o.destination.abandon({ ...p.batch, attempt: p.attempts }, lastError)));
      if (out === STOPPED) return false;
      if (out.ok) {
        this.stats.abandonedBatches++;
        this.pending.splice(this.pending.indexOf(p), 1);
        this.kit.state = 'running';
        return true;
      }
      this.failed(`${this.o.destination.kind}: keeping an undeliverable batch failed: ${out.error}`);
      if (!(await this.kit.backoff(attempt))) return false;
    }
  }

  private async rejectRecords(code: string, message: string, records: FirehoseRecord[]): Promise<boolean> {
    const { destination } = this.o;
    for (let attempt = 0; ; attempt++) {
      const out = destination.rejectRecords
        ? await this.kit.race(safe(() => destination.rejectRecords!(this.o.stream(), records, code, message)))
        : ({ ok: true } as const);
      if (out === STOPPED) return false;
      if (out.ok) {
        this.stats.rejectedRecords += records.length;
        return true;
      }
      this.failed(`${destination.kind}: writing ${records.length} ${code} records to the error output failed: ${out.error}`);
      if (!(await this.kit.backoff(attempt))) return false;
    }
  }

  private attempt(p: Pending): Promise<DeliveryOutcome> {
    p.attempts++;
    return safe(() => this.o.destination.deliver({ ...p.batch, attempt: p.attempts }));
  }

  private acknowledge(p: Pending): void {
    const i = this.pending.indexOf(p);
    if (i >= 0) this.pending.splice(i, 1);
    this.stats.deliveredBatches++;
    this.stats.deliveredRecords += p.batch.records.length;
    this.lastDeliveryAt = this.o.clock.now();
    this.kit.state = 'running';
  }

  /** The checkpoint goes up to the oldest record still buffered or pending, else to what was read. */
  private advance(): void {
    let at = this.readAt;
    for (const p of this.pending) at = Math.min(at, p.firstOffset);
    for (const p of this.partitions.values()) at = Math.min(at, p.entries[0].offset);
    this.kit.advance(at);
  }

  private failed(message: string): void {
    this.kit.failed(message);
  }
}

/** Destinations must not throw, but one that does is a failed attempt, not a dead loop. */
async function safe(f: () => Promise<DeliveryOutcome>): Promise<DeliveryOutcome> {
  try {
    return await f();
  } catch (e) {
    return { ok: false, error: describeError(e) };
  }
}
