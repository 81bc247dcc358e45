// One project's event-stream delivery loop. It owns: reading the ingest log from the project's
// checkpoint, picking this app's entries by their header line alone (the record JSON is never
// parsed), packing them into batches within the destination's per-call limits, sending them with
// retries (only the failed records; full-jitter exponential backoff, forever while running), sending
// records no destination call can ever take to the error log (onRejected), and moving the
// checkpoint only past records that were accepted or rejected, so after a crash redelivery starts
// where acknowledged delivery ended (at least once). It does not own the destination's client,
// persisting the checkpoint, or deciding which workers run. Everything happens in the worker's own
// async loop: a slow or dead destination delays only this worker, never PutEvents or other workers.

import type { Clock } from '../clock.js';
import type { Log, LogRecord, OffsetGap } from '../log/log.js';
import { decodeIngestEntry } from '../pinpoint/ingest-record.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { describeError, STOPPED, StopSignal } from '../consumer/stop-signal.js';
import type { Checkpoint } from './checkpoints.js';
import type { DeliveryRecord, Destination, RecordOutcome } from './destination.js';

export type { Checkpoint } from './checkpoints.js';

/** A record sent to the error log instead of the destination. */
export interface RejectedEntry {
  offset: number;
  eventId: string;
  endpointId: string;
  reason: string;
  /** Clock time of the rejection (ms since the epoch). */
  at: number;
}

export interface DeliveryWorkerOptions {
  appId: string;
  log: Log;
  destination: Destination;
  checkpoint: Checkpoint;
  clock: Clock;
  /** Backoff sleeps (tests may inject); stop() does not wait for one to end. */
  sleep?: (ms: number) => Promise<void>;
  /** [0, 1) source of the backoff jitter. */
  random?: () => number;
  backoff?: BackoffOptions;
  /** Ingest-log records read per chunk (all apps; default 2,000). */
  readBatch?: number;
  /**
   * A record no call can ever take (over the per-record limit, or an undecodable entry). Called at
   * least once: after a restart from a checkpoint below it, it is reported again.
   */
  onRejected: (entry: RejectedEntry) => void;
}

export type DeliveryState = 'running' | 'retrying' | 'stopped';

export interface DeliveryHealth {
  state: DeliveryState;
  /** First ingest-log offset not yet delivered. */
  checkpoint: number;
  logEnd: number;
  /**
   * Ingest-log records between the checkpoint and the log end, of ALL apps: the log is shared, and
   * counting only this app's would mean parsing the headers of records not yet read.
   */
  recordsBehind: number;
  /** Now minus the append time of the oldest undelivered record of this app when one is in hand, else 0. */
  millisBehind: number;
  delivered: number;
  /** Sends repeated after a failure (whole call or some records). */
  retries: number;
  rejected: number;
  lastError?: { message: string; at: number };
  lastDeliveryAt?: number;
  /** The checkpoint was beyond the end of the ingest log at start: events it had passed were lost. */
  checkpointGap?: { records: number; message: string };
}

/** The consumer name a worker uses with Log.checkConsumer (the manager checks it before the server listens). */
export const deliveryConsumer = (appId: string) => `event-stream delivery of app ${appId}`;

/** The name the delivery manager uses for the same shape. */
export type WorkerHealth = DeliveryHealth;

/** How long one wait for new ingest-log records lasts before the loop looks again. */
export const CAUGHT_UP_WAIT_MS = 1000;
export const DEFAULT_READ_BATCH = 2000;
/** Bounds the memory of one chunk; one record is always read even if larger. */
export const READ_MAX_BYTES = 8 * 1024 * 1024;

interface Item {
  offset: number;
  timestamp: number;
  record: DeliveryRecord;
  size: number;
}


export class DeliveryWorker {
  private state: DeliveryState = 'stopped';
  /** The checkpoint: first offset not yet delivered (or rejected). */
  private cursor: number;
  /** Next offset to read; ahead of the cursor by the records read but not yet acknowledged. */
  private readAt = 0;
  /** This app's records read but held for the next batch (all below readAt, at or above cursor). */
  private carry: Item[] = [];
  private loop: Promise<void> | undefined;
  private stop$ = new StopSignal();
  /** Append time of the oldest record of this app read but not yet acknowledged. */
  private oldestPending: number | undefined;
  private delivered = 0;
  private retries = 0;
  private rejected = 0;
  private lastError: { message: string; at: number } | undefined;
  private lastDeliveryAt: number | undefined;
  private gap: OffsetGap | undefined;
  /** `["appId",` — every entry of this app starts with it (encodeIngestEntry uses JSON.stringify). */
  private readonly headerPrefix: Buffer;

  constructor(private readonly opts: DeliveryWorkerOptions) {
    this.cursor = opts.checkpoint.load();
    this.headerPrefix = Buffer.from(JSON.stringify([opts.appId]).slice(0, -1) + ',');
  }

  /** Starts the loop from the saved checkpoint; returns at once. */
  start(): void {
    if (this.loop) return;
    this.stop$ = new StopSignal();
    this.cursor = this.opts.checkpoint.load();
    this.readAt = this.cursor;
    this.carry = [];
    this.state = 'running';
    this.loop = this.run().finally(() => {
      this.state = 'stopped';
      this.loop = undefined;
    });
  }

  /**
   * Ends the loop without waiting for the current backoff, log wait or destination call (an
   * abandoned call's records stay behind the checkpoint and are sent again on the next start).
   */
  async stop(): Promise<void> {
    if (!this.loop) return;
    this.stop$.stop();
    await this.loop;
  }

  health(): DeliveryHealth {
    const logEnd = this.opts.log.endOffset();
    const now = this.opts.clock.now();
    return {
      state: this.state,
      checkpoint: this.cursor,
      logEnd,
      recordsBehind: Math.max(0, logEnd - this.cursor),
      millisBehind: this.oldestPending === undefined ? 0 : Math.max(0, now - this.oldestPending),
      delivered: this.delivered,
      retries: this.retries,
      rejected: this.rejected,
      ...(this.lastError ? { lastError: { ...this.lastError } } : {}),
      ...(this.lastDeliveryAt !== undefined ? { lastDeliveryAt: this.lastDeliveryAt } : {}),
      ...(this.gap ? { checkpointGap: { records: this.gap.records, message: this.gap.message } } : {}),
    };
  }

  private async run(): Promise<void> {
    let attempt = 0;
    try {
      // A checkpoint beyond the end means events this worker passed were lost since: the log
      // reports it and moves on past it, so new events never get offsets below the checkpoint.
      this.gap = await this.opts.log.checkConsumer(deliveryConsumer(this.opts.appId), this.cursor);
    } catch (e) {
      this.failed(`ingest log: ${describeError(e)}`);
    }
    while (!this.stop$.stopped) {
      try {
        await this.step();
        attempt = 0;
        // A step that ends without stop() delivered all it sent: clears a 'retrying' left by a log error.
        if (!this.stop$.stopped) this.state = 'running';
      } catch (e) {
        // Reading the log failed (I/O error, log closing): the same backoff as a destination failure.
        this.failed(`ingest log: ${describeError(e)}`);
        if (!(await this.pause(backoffDelay(attempt++, this.opts.backoff, this.opts.random)))) return;
      }
    }
  }

  /**
   * One chunk of the ingest log: read from `readAt`, deliver this app's records, move the checkpoint.
   * While more of the log is already there, the last, partly filled batch is carried into the next
   * chunk instead of going out short (chunks are cut by record count and bytes of all apps, so
   * sending every chunk's tail would add a small call per chunk).
   */
  private async step(): Promise<void> {
    const { log } = this.opts;
    if (this.readAt >= log.endOffset()) {
      if (this.carry.length > 0) {
        // Caught up: the carried batch goes now rather than waiting for more records.
        const batch = this.carry;
        this.carry = [];
        this.oldestPending = batch[0].timestamp;
        if (await this.deliver(batch, this.readAt)) this.oldestPending = undefined;
        return;
      }
      this.oldestPending = undefined;
      // The log wakes us on append; the timeout only bounds how long a stop could go unnoticed.
      const since = performance.now();
      const woke = await this.stop$.race(log.waitFor(this.readAt, CAUGHT_UP_WAIT_MS));
      // A closed log answers false at once; without a pause this loop would spin and starve the process.
      if (woke === false && performance.now() - since < CAUGHT_UP_WAIT_MS / 2) await this.pause(CAUGHT_UP_WAIT_MS);
      return;
    }
    const { records, nextOffset } = await log.read(this.readAt, {
      maxRecords: this.opts.readBatch ?? DEFAULT_READ_BATCH,
      maxBytes: READ_MAX_BYTES,
    });
    if (records.length > 0 && records[0].offset > this.readAt) {
      // Retention deleted records this worker had not delivered (or damage did; the log reports
      // that itself): say so, they cannot come back.
      const message = `offsets ${this.readAt}..${records[0].offset - 1} are no longer in the ingest log (retention, or damage reported by the log) and were not delivered`;
      this.lastError = { message, at: this.opts.clock.now() };
    }
    const batches = this.pack(this.carry.concat(this.select(records)));
    this.carry = [];
    this.readAt = Math.max(this.readAt, nextOffset);
    const last = batches[batches.length - 1];
    if (last && last.length < this.opts.destination.maxRecords && this.readAt < log.endOffset()) this.carry = batches.pop()!;
    // Where the checkpoint may go once everything sent from this chunk is in.
    const done = this.carry.length > 0 ? this.carry[0].offset : this.readAt;
    for (let i = 0; i < batches.length; i++) {
      this.oldestPending = batches[i][0].timestamp;
      const next = i + 1 < batches.length ? batches[i + 1][0].offset : done;
      if (!(await this.deliver(batches[i], next))) return;
    }
    this.oldestPending = this.carry[0]?.timestamp;
    // Also when the chunk held nothing of this app: other apps' traffic must not hold us back.
    this.advance(done);
  }

  /** This app's entries, by header prefix first so other apps' entries cost one byte compare. */
  private select(records: LogRecord[]): Item[] {
    const { destination, appId } = this.opts;
    const max = Math.min(destination.maxRecordBytes, destination.maxBatchBytes);
    const items: Item[] = [];
    for (const r of records) {
      const p = r.payload;
      if (p.length < this.headerPrefix.length || this.headerPrefix.compare(p, 0, this.headerPrefix.length) !== 0) continue;
      let entry;
      try {
        entry = decodeIngestEntry(p);
      } catch (e) {
        this.reject(r.offset, '', '', `undecodable ingest entry: ${describeError(e)}`);
        continue;
      }
      if (entry.appId !== appId) continue;
      const record: DeliveryRecord = { data: entry.record, partitionKey: entry.endpointId };
      const size = destination.recordSize(record);
      if (size > max) {
        this.reject(r.offset, entry.eventId, entry.endpointId, tooLarge(destination, size, max));
        continue;
      }
      items.push({ offset: r.offset, timestamp: r.timestamp, record, size });
    }
    return items;
  }

  /** Consecutive batches in offset order, each within the destination's record and byte limits. */
  private pack(items: Item[]): Item[][] {
    const { maxRecords, maxBatchBytes } = this.opts.destination;
    const batches: Item[][] = [];
    let current: Item[] = [];
    let bytes = 0;
    for (const it of items) {
      if (current.length > 0 && (current.length >= maxRecords || bytes + it.size > maxBatchBytes)) {
        batches.push(current);
        current = [];
        bytes = 0;
      }
      current.push(it);
      bytes += it.size;
    }
    if (current.length > 0) batches.push(current);
    return batches;
  }

  /**
   * Sends one batch until every record is accepted, resending only what failed. Returns false when
   * stopped first. `next` is where the checkpoint may go once the whole batch is in.
   */
  private async deliver(batch: Item[], next: number): Promise<boolean> {
    const { destination, clock } = this.opts;
    let todo = batch;
    for (let attempt = 0; ; attempt++) {
      const result = await this.stop$.race(
        destination.send(todo.map((it) => it.record)).then(
          (outcomes): { outcomes: RecordOutcome[] } => ({ outcomes }),
          (error: unknown): { error: unknown } => ({ error }),
        ),
      );
      if (result === STOPPED) return false;
      let failed: Item[];
      let message: string;
      if ('error' in result) {
        failed = todo;
        message = `${destination.kind} ${destination.arn}: ${describeError(result.error)}`;
      } else if (result.outcomes.length !== todo.length) {
        failed = todo;
        message = `${destination.kind} ${destination.arn}: ${result.outcomes.length} outcomes for ${todo.length} records`;
      } else {
        const errors = result.outcomes.flatMap((o) => (o.ok ? [] : [o.error]));
        failed = todo.filter((_, i) => !result.outcomes[i].ok);
        const accepted = todo.length - failed.length;
        if (accepted > 0) {
          this.delivered += accepted;
          this.lastDeliveryAt = clock.now();
        }
        message = `${destination.kind} ${destination.arn}: ${failed.length} of ${todo.length} records refused (${errors[0] ?? ''})`;
      }
      if (failed.length === 0) {
        this.state = 'running';
        this.advance(next);
        return true;
      }
      // Everything below the first failed record is in: a stop or crash now resends less.
      this.advance(failed[0].offset);
      this.oldestPending = failed[0].timestamp;
      this.failed(message);
      if (!(await this.pause(backoffDelay(attempt, this.opts.backoff, this.opts.random)))) return false;
      this.retries++;
      todo = failed;
    }
  }

  private reject(offset: number, eventId: string, endpointId: string, reason: string): void {
    this.rejected++;
    try {
      this.opts.onRejected({ offset, eventId, endpointId, reason, at: this.opts.clock.now() });
    } catch (e) {
      // The error log is the caller's; its failure must not stall delivery of everything else.
      this.lastError = { message: `onRejected failed for offset ${offset}: ${describeError(e)}`, at: this.opts.clock.now() };
    }
  }

  private advance(offset: number): void {
    if (offset <= this.cursor) return;
    this.cursor = offset;
    try {
      this.opts.checkpoint.save(offset);
    } catch (e) {
      // Delivery goes on; the persisted checkpoint only lags, which costs duplicates after a crash.
      this.lastError = { message: `checkpoint save failed: ${describeError(e)}`, at: this.opts.clock.now() };
    }
  }

  private failed(message: string): void {
    this.state = 'retrying';
    this.lastError = { message, at: this.opts.clock.now() };
  }

  /** Waits `ms` or until stop(); false when stopped. */
  private pause(ms: number): Promise<boolean> {
    return this.stop$.sleep(ms, this.opts.sleep);
  }
}

function tooLarge(d: Destination, size: number, max: number): string {
  const what =
    d.kind === 'kinesis'
      ? 'Kinesis PutRecords limit, data plus partition key'
      : 'Firehose PutRecordBatch limit, data plus newline';
  return `record is ${size} bytes, over the ${max}-byte per-record ${what}`;
}
