// One project's event-stream delivery loop. It owns: reading the ingest log from the project's
// checkpoint, picking this app's entries by their header line alone (the record JSON is never
// parsed), packing them into batches within the destination's per-call limits, sending them with
// retries (only the failed records; full-jitter exponential backoff, forever while running), sending
// records no destination call can ever take to the error log (onRejected), and moving the
// checkpoint only past records that were accepted or rejected, so after a crash redelivery starts
// where acknowledged delivery ended (at least once). It does not own the destination's client,
// persisting the checkpoint, or deciding which workers run. Everything happens in the worker's own
// async loop: a slow or dead destination delays only this worker, never PutEvents or other workers.
// Reads of the ingest log go ahead of delivery (READ_AHEAD ranges at once), and the next chunk is
// read and packed while the previous call is in flight; calls themselves go one at a time.

import type { Clock } from '../clock.js';
import type { Log, LogRecord, OffsetGap, ReadResult } from '../log/log.js';
import { decodeIngestEntry } from '../pinpoint/ingest-record.js';
import type { BackoffOptions } from '../consumer/backoff.js';
import { describeError, STOPPED } from '../consumer/stop-signal.js';
import type { Checkpoint } from '../consumer/checkpoint.js';
import { computeLag, ConsumerKit, type ConsumerState, type ConsumerHealthBase, type LagState } from '../consumer/kit.js';
import type { DeliveryRecord, Destination, RecordOutcome } from './destination.js';

export type { Checkpoint } from '../consumer/checkpoint.js';

/** A record sent to the error log instead of the destination. */
export interface RejectedEntry {
  offset: number;
  eventId: string;
  endpointId: string;
  reason: string;
  /** Clock time of the rejection (ms since the epoch). */
  at: number;
}

/** What a worker needs of the ingest log: the log itself, or a read-only view of it in another thread. */
export type IngestReader = Pick<Log, 'read' | 'endOffset' | 'waitFor' | 'checkConsumer'>;

export interface DeliveryWorkerOptions {
  appId: string;
  log: IngestReader;
  destination: Destination;
  checkpoint: Checkpoint;
  clock: Clock;
  /** Backoff sleeps (tests may inject); stop() does not wait for one to end. */
  sleep?: (ms: number) => Promise<void>;
  /** [0, 1) source of the backoff jitter. */
  random?: () => number;
  backoff?: BackoffOptions;
  /** Ingest-log records read per chunk (all apps; default DEFAULT_READ_BATCH). */
  readBatch?: number;
  /**
   * A record no call can ever take (over the per-record limit, or an undecodable entry). Called at
   * least once: after a restart from a checkpoint below it, it is reported again.
   */
  onRejected: (entry: RejectedEntry) => void;
}

export type DeliveryState = ConsumerState;

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
  /**
   * Age of the oldest undelivered record of this app (now minus its append time), 0 only when
   * recordsBehind is 0. Exact when that record has been read (in flight, being retried, or held
   * for the next batch). When nothing of this app is in hand but unread records exist, the worker
   * cannot know whether they are this app's without reading them: it reports an upper bound, the
   * time since the newer of the last record it read (append times never go backwards) and the last
   * moment it was caught up (a write being committed at that moment may be stamped up to its
   * fdatasync earlier). Until the first read after start returns, the time since start. At least
   * 1 while behind: append times are whole milliseconds.
   */
  millisBehind: number;
  /** False when millisBehind is a bound (nothing of this app in hand), not a measured age. */
  millisBehindExact: boolean;
  delivered: number;
  /** Sends repeated after a failure (whole call or some records). */
  retries: number;
  rejected: number;
  lastError?: { message: string; at: number };
  lastDeliveryAt?: number;
  /** The checkpoint was beyond the end of the ingest log at start: events it had passed were lost. */
  checkpointGap?: { records: number; message: string };
}

/** What a worker's health is computed from (plain data: the consumers thread posts it to the main thread). */
export interface DeliverySnapshot extends ConsumerHealthBase {
  lag: LagState;
  delivered: number;
  rejected: number;
  lastDeliveryAt?: number;
  checkpointGap?: { records: number; message: string };
}

/**
 * Health at `now` for an ingest log ending at `logEnd`: recordsBehind from the log's end itself
 * (never stale), millisBehind from the snapshot's lag state (see computeLag), so the two agree.
 */
export function healthOf(s: DeliverySnapshot, logEnd: number, now: number): DeliveryHealth {
  const lag = computeLag(s.lag, logEnd, now);
  return {
    state: s.state,
    checkpoint: s.checkpoint,
    logEnd,
    ...lag,
    delivered: s.delivered,
    retries: s.retries,
    rejected: s.rejected,
    ...(s.lastError ? { lastError: { ...s.lastError } } : {}),
    ...(s.lastDeliveryAt !== undefined ? { lastDeliveryAt: s.lastDeliveryAt } : {}),
    ...(s.checkpointGap ? { checkpointGap: { ...s.checkpointGap } } : {}),
  };
}

/** The consumer name a worker uses with Log.checkConsumer (the manager checks it before the server listens). */
export const deliveryConsumer = (appId: string) => `event-stream delivery of app ${appId}`;

/** The name the delivery manager uses for the same shape. */
export type WorkerHealth = DeliveryHealth;

export { CAUGHT_UP_WAIT_MS } from '../consumer/kit.js';
export const DEFAULT_READ_BATCH = 500;
/** Bounds the memory of one chunk; one record is always read even if larger. */
export const READ_MAX_BYTES = 1024 * 1024;
/**
 * Destination calls in flight at once. One: a call's refused records are resent before anything
 * after them goes, which is what keeps a partition key in order (a later call in flight could be
 * accepted while an earlier one is refused, by throttling that ends between them or a disk that
 * recovers). Throughput comes from large batches instead (the in-process destination's).
 */
export const MAX_CALLS_IN_FLIGHT = 1;

/**
 * Chunks of the ingest log read at once, at consecutive offset ranges. A read takes one event-loop
 * turn per 256 KB the log fetches; under full PutEvents load a turn is tens of milliseconds of
 * request work, so one read at a time capped delivery at a few thousand records per second
 * whatever its CPU cost. Reads in flight together share those turns, so many small ones beat a few
 * large ones (e2e bench at max, same run: 16 × 500 records delivered 0.84-0.97x of ingestion,
 * 4 × 2,000 0.38-0.76x). Bounds a worker's read memory at READ_AHEAD × READ_MAX_BYTES (16 MiB).
 */
export const READ_AHEAD = 16;

interface Item {
  offset: number;
  timestamp: number;
  record: DeliveryRecord;
  size: number;
}

type SendResult = { outcomes: RecordOutcome[] } | { error: unknown };

/** A read of the ingest-log range [from, to), issued ahead of its turn. */
interface Ahead {
  from: number;
  to: number;
  result: Promise<{ read: ReadResult } | { error: unknown }>;
}

/** A batch whose destination call has been made and whose outcome is not yet taken. */
interface Pending {
  batch: Item[];
  /** The call has answered (its outcome is not taken yet). */
  finished: boolean;
  /** Where the checkpoint may go once this batch and all before it are in. */
  next: number;
  result: Promise<SendResult>;
}


export class DeliveryWorker {
  /** Checkpoint, loop, backoff, stop signal, state and lag (the consumer kit). */
  private readonly kit: ConsumerKit;
  /** Next offset to read; ahead of the checkpoint by the records read but not yet acknowledged. */
  private readAt = 0;
  /** This app's records read but held for the next batch (all below readAt, at or above the checkpoint). */
  private carry: Item[] = [];
  /** Reads issued for the ranges from readAt on, in order; at most READ_AHEAD. */
  private ahead: Ahead[] = [];
  /** Batches sent and not yet taken, in offset order; at most maxInFlight. */
  private inflight: Pending[] = [];
  /** The records being resent after a failure (older than everything in flight or carried). */
  private retrying: Item[] | undefined;
  private delivered = 0;
  private rejected = 0;
  private lastDeliveryAt: number | undefined;
  private gap: OffsetGap | undefined;
  /** `["appId",` — every entry of this app starts with it (encodeIngestEntry uses JSON.stringify). */
  private readonly headerPrefix: Buffer;

  constructor(private readonly opts: DeliveryWorkerOptions) {
    this.kit = new ConsumerKit(opts);
    this.headerPrefix = Buffer.from(JSON.stringify([opts.appId]).slice(0, -1) + ',');
  }

  /** Starts the loop from the saved checkpoint; returns at once. */
  start(): void {
    this.kit.start(
      () => this.run(),
      () => {
        this.readAt = this.kit.cursor;
        this.carry = [];
        this.ahead = [];
        this.inflight = [];
        this.retrying = undefined;
      },
    );
  }

  /**
   * Ends the loop without waiting for the current backoff, log wait or destination call (an
   * abandoned call's records stay behind the checkpoint and are sent again on the next start).
   */
  stop(): Promise<void> {
    return this.kit.stop();
  }

  health(): DeliveryHealth {
    return healthOf(this.snapshot(), this.opts.log.endOffset(), this.opts.clock.now());
  }

  /** Everything health is computed from, as plain data (it crosses the consumers thread's boundary). */
  snapshot(): DeliverySnapshot {
    const k = this.kit;
    return {
      ...k.base(),
      lag: k.lagState(this.oldestInHand()),
      delivered: this.delivered,
      rejected: this.rejected,
      ...(this.lastDeliveryAt !== undefined ? { lastDeliveryAt: this.lastDeliveryAt } : {}),
      ...(this.gap ? { checkpointGap: { records: this.gap.records, message: this.gap.message } } : {}),
    };
  }

  /** Append time of the oldest undelivered record of this app in hand (retried, in flight, carried). */
  private oldestInHand(): number | undefined {
    return (this.retrying?.[0] ?? this.inflight[0]?.batch[0] ?? this.carry[0])?.timestamp;
  }

  private async run(): Promise<void> {
    try {
      // A checkpoint beyond the end means events this worker passed were lost since: the log
      // reports it and moves on past it, so new events never get offsets below the checkpoint.
      this.gap = await this.opts.log.checkConsumer(deliveryConsumer(this.opts.appId), this.kit.cursor);
    } catch (e) {
      this.kit.failed(`ingest log: ${describeError(e)}`);
    }
    // Reading the log failed (I/O error, log closing): the same backoff as a destination failure.
    // Reads issued ahead are dropped; they are issued again from readAt.
    await this.kit.runSteps(() => this.step(), 'ingest log', () => (this.ahead = []));
  }

  /**
   * One chunk of the ingest log: read from `readAt`, send this app's records, move the checkpoint.
   * While more of the log is already there and a call is still out, the last, partly filled batch
   * is carried into the next chunk instead of going out short (chunks are cut by record count and
   * bytes of all apps, so sending every chunk's tail would add a small call per chunk). Batches still in flight when the
   * chunk ends are taken by later steps; a caught-up worker takes them all before it waits.
   */
  private async step(): Promise<void> {
    const { log } = this.opts;
    if (this.readAt >= log.endOffset() && this.ahead.length === 0) {
      if (this.carry.length > 0) {
        // Caught up: the carried batch goes now rather than waiting for more records.
        const batch = this.carry;
        this.carry = [];
        if (!(await this.enqueue(batch, this.readAt))) return;
      }
      if (this.inflight.length > 0) {
        await this.settleAll();
        return;
      }
      this.kit.caughtUp();
      // The log wakes us on append; the timeout only bounds how long a stop could go unnoticed.
      await this.kit.waitForLog(log, this.readAt);
      return;
    }
    const { records, nextOffset, first } = await this.nextChunk();
    if (first !== undefined && first > this.readAt) {
      // Retention deleted records this worker had not delivered (or damage did; the log reports
      // that itself): say so, they cannot come back.
      const message = `offsets ${this.readAt}..${first - 1} are no longer in the ingest log (retention, or damage reported by the log) and were not delivered`;
      this.kit.note(message);
    }
    if (records.length > 0) this.kit.lastReadTs = records[records.length - 1].timestamp;
    const batches = this.pack(this.carry.concat(this.select(records)));
    this.carry = [];
    this.readAt = Math.max(this.readAt, nextOffset);
    const last = batches[batches.length - 1];
    // Only while a call is still out: an idle destination gets the short batch now (latency),
    // a busy one a fuller batch once it answers (throughput).
    const busy = this.inflight.length > 0 && !this.inflight[0].finished;
    if (last && last.length < this.opts.destination.maxRecords && this.readAt < log.endOffset() && busy) this.carry = batches.pop()!;
    // Where the checkpoint may go once everything sent from this chunk is in.
    const done = this.carry.length > 0 ? this.carry[0].offset : this.readAt;
    if (batches.length === 0) {
      // Nothing of this app to send from this chunk (other apps' traffic must not hold us back):
      // the checkpoint may pass it as soon as what is in flight is in.
      const tail = this.inflight[this.inflight.length - 1];
      if (tail) tail.next = Math.max(tail.next, done);
      else this.advance(done);
      return;
    }
    for (let i = 0; i < batches.length; i++) {
      const next = i + 1 < batches.length ? batches[i + 1][0].offset : done;
      if (!(await this.enqueue(batches[i], next))) return;
    }
  }

  /**
   * The next chunk from readAt: the oldest read issued ahead (issuing reads for the ranges after
   * it up to the log's end, READ_AHEAD at most). Ranges are cut by offset; a read returns at most
   * the range's count of records, but may step over a hole past the range's end (those records
   * belong to the next range) or stop short at READ_MAX_BYTES (the rest of the range is read
   * again, first).
   */
  private async nextChunk(): Promise<ReadResult & { first: number | undefined }> {
    const { log } = this.opts;
    const batch = Math.max(1, this.opts.readBatch ?? DEFAULT_READ_BATCH);
    const end = log.endOffset();
    let at = this.ahead.length > 0 ? this.ahead[this.ahead.length - 1].to : this.readAt;
    while (this.ahead.length < READ_AHEAD && (at < end || this.ahead.length === 0)) {
      const to = Math.max(at + 1, Math.min(at + batch, end));
      const result = log.read(at, { maxRecords: to - at, maxBytes: READ_MAX_BYTES }).then(
        (read) => ({ read }),
        (error: unknown) => ({ error }),
      );
      this.ahead.push({ from: at, to, result });
      at = to;
    }
    const head = this.ahead[0];
    const r = await head.result;
    if ('error' in r) throw r.error;
    const { records, nextOffset } = r.read;
    let n = records.length;
    while (n > 0 && records[n - 1].offset >= head.to) n--;
    const mine = n === records.length ? records : records.slice(0, n);
    const first = records[0]?.offset;
    if (nextOffset < head.to && records.length > 0) {
      // Stopped short at the byte bound: the rest of the range is read next, before later ranges.
      head.from = nextOffset;
      head.result = log.read(nextOffset, { maxRecords: head.to - nextOffset, maxBytes: READ_MAX_BYTES }).then(
        (read) => ({ read }),
        (error: unknown) => ({ error }),
      );
      return { records: mine, nextOffset, first };
    }
    this.ahead.shift();
    let next: number;
    // Records past the range (the read stepped over a hole) are the next range's: everything
    // before the first of them is a hole.
    if (n < records.length) next = records[n].offset;
    // Nothing there (a hole to the end, or a segment retention just deleted): later ranges go
    // on; without any, readAt stays where the log says, as a single read would leave it.
    else if (records.length === 0) next = this.ahead.length > 0 ? Math.max(nextOffset, head.to) : nextOffset;
    else next = Math.max(nextOffset, head.to);
    return { records: mine, nextOffset: next, first };
  }

  /** Calls this worker keeps in flight: see MAX_CALLS_IN_FLIGHT. */
  private depth(): number {
    return MAX_CALLS_IN_FLIGHT;
  }

  /**
   * Sends one batch once there is room in flight, taking the oldest outcomes first to make room.
   * Returns false when stopped first.
   */
  private async enqueue(batch: Item[], next: number): Promise<boolean> {
    while (this.inflight.length >= this.depth()) {
      if (!(await this.settleHead())) return false;
    }
    const pending: Pending = { batch, next, finished: false, result: this.send(batch) };
    void pending.result.then(() => (pending.finished = true));
    this.inflight.push(pending);
    return true;
  }

  /** Takes every outcome in flight; false when stopped first. */
  private async settleAll(): Promise<boolean> {
    while (this.inflight.length > 0) if (!(await this.settleHead())) return false;
    return true;
  }

  /** One destination call, its rejection turned into a result (nothing of it is then known accepted). */
  private send(items: Item[]): Promise<SendResult> {
    let p: Promise<RecordOutcome[]>;
    try {
      p = this.opts.destination.send(items.map((it) => it.record));
    } catch (error) {
      return Promise.resolve({ error });
    }
    return p.then(
      (outcomes): SendResult => ({ outcomes }),
      (error: unknown): SendResult => ({ error }),
    );
  }

  /**
   * Takes the oldest outcome in flight. All accepted: the checkpoint moves past the batch. Else the
   * pipeline drains: each batch's outcome is taken in order and its failed records are resent
   * (alone, with backoff, until accepted) before the next batch's are, so the checkpoint never
   * passes a record that is not in. Returns false when stopped first.
   */
  private async settleHead(): Promise<boolean> {
    const head = this.inflight[0];
    const result = await this.kit.race(head.result);
    if (result === STOPPED) return false;
    const { failed, message } = this.outcome(head.batch, result);
    if (failed.length === 0) {
      this.inflight.shift();
      this.kit.state = 'running';
      this.advance(head.next);
      return true;
    }
    // Later batches keep their place in `inflight` (their records stay in health's view) until
    // their own outcome is taken; they are not re-sent whole, only what they had refused.
    this.inflight.shift();
    if (!(await this.retry(failed, head.next, message))) return false;
    while (this.inflight.length > 0) {
      const p = this.inflight[0];
      const r = await this.kit.race(p.result);
      if (r === STOPPED) return false;
      const o = this.outcome(p.batch, r);
      this.inflight.shift();
      if (o.failed.length === 0) this.advance(p.next);
      else if (!(await this.retry(o.failed, p.next, o.message))) return false;
    }
    return true;
  }

  /** Counts what a call accepted; returns what it did not, with a message for health. */
  private outcome(todo: Item[], result: SendResult): { failed: Item[]; message: string } {
    const { destination, clock } = this.opts;
    if ('error' in result) {
      return { failed: todo, message: `${destination.kind} ${destination.arn}: ${describeError(result.error)}` };
    }
    if (result.outcomes.length !== todo.length) {
      return { failed: todo, message: `${destination.kind} ${destination.arn}: ${result.outcomes.length} outcomes for ${todo.length} records` };
    }
    const errors: string[] = [];
    const failed: Item[] = [];
    result.outcomes.forEach((o, i) => {
      if (!o.ok) {
        failed.push(todo[i]);
        errors.push(o.error);
      }
    });
    const accepted = todo.length - failed.length;
    if (accepted > 0) {
      this.delivered += accepted;
      this.lastDeliveryAt = clock.now();
    }
    return { failed, message: `${destination.kind} ${destination.arn}: ${failed.length} of ${todo.length} records refused (${errors[0] ?? ''})` };
  }

  /**
   * Resends `todo` (records a call refused or did not take) until every one is accepted, resending
   * only what failed, after a jittered backoff each time. `next` is where the checkpoint may go once
   * they are in. Returns false when stopped first.
   */
  private async retry(todo: Item[], next: number, message: string): Promise<boolean> {
    this.retrying = todo;
    try {
      for (let attempt = 0; ; attempt++) {
        // Everything below the first failed record is in: a stop or crash now resends less.
        this.advance(todo[0].offset);
        this.kit.failed(message);
        if (!(await this.kit.backoff(attempt))) return false;
        this.kit.retries++;
        const result = await this.kit.race(this.send(todo));
        if (result === STOPPED) return false;
        const o = this.outcome(todo, result);
        if (o.failed.length === 0) {
          this.kit.state = 'running';
          this.advance(next);
          return true;
        }
        todo = o.failed;
        this.retrying = todo;
        message = o.message;
      }
    } finally {
      this.retrying = undefined;
    }
  }

  /** This app's entries, by header prefix first so other apps' entries cost one byte compare. */
  private select(records: LogRecord[]): Item[] {
    const { destination, appId } = this.opts;
    const max = Math.min(destination.maxRecordBytes, destination.maxBatchBytes);
    const items: Item[] = [];
    for (const r of records) {
      const p = r.payload;
      if (p.length < this.headerPrefix.length || this.headerPrefix.compare(p, 0, this.headerPrefix.length) !== 0) continue;
      let entry: { endpointId: string; record: Buffer } | undefined = this.plainEntry(p);
      if (!entry) {
        let full;
        try {
          full = decodeIngestEntry(p);
        } catch (e) {
          this.reject(r.offset, '', '', `undecodable ingest entry: ${describeError(e)}`);
          continue;
        }
        if (full.appId !== appId) continue;
        entry = full;
      }
      const record: DeliveryRecord = { data: entry.record, partitionKey: entry.endpointId };
      const size = destination.recordSize(record);
      if (size > max) {
        this.reject(r.offset, eventIdOf(p), entry.endpointId, tooLarge(destination, size, max));
        continue;
      }
      items.push({ offset: r.offset, timestamp: r.timestamp, record, size });
    }
    return items;
  }

  /**
   * The endpoint id and record of an entry whose header starts with this app's prefix, when the
   * endpoint id needs no unescaping (no backslash): read off the bytes, without JSON.parse, which
   * was most of the worker's own CPU per record. Anything else: undefined (decodeIngestEntry).
   */
  private plainEntry(p: Buffer): { endpointId: string; record: Buffer } | undefined {
    const start = this.headerPrefix.length + 1;
    if (p[start - 1] !== QUOTE) return undefined;
    const end = p.indexOf(QUOTE, start);
    if (end < 0 || p.subarray(start, end).includes(BACKSLASH)) return undefined;
    const nl = p.indexOf(NEWLINE, end);
    if (nl < 0) return undefined;
    return { endpointId: p.toString('utf8', start, end), record: p.subarray(nl + 1) };
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

  private reject(offset: number, eventId: string, endpointId: string, reason: string): void {
    this.rejected++;
    try {
      this.opts.onRejected({ offset, eventId, endpointId, reason, at: this.opts.clock.now() });
    } catch (e) {
      // The error log is the caller's; its failure must not stall delivery of everything else.
      this.kit.note(`onRejected failed for offset ${offset}: ${describeError(e)}`);
    }
  }

  private advance(offset: number): void {
    this.kit.advance(offset);
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const NEWLINE = 0x0a;

/** The event id of an entry, for the error log (rare path: the full header is parsed). */
function eventIdOf(p: Buffer): string {
  try {
    return decodeIngestEntry(p).eventId;
  } catch {
    return '';
  }
}

function tooLarge(d: Destination, size: number, max: number): string {
  const what =
    d.kind === 'kinesis'
      ? 'Kinesis PutRecords limit, data plus partition key'
      : 'Firehose PutRecordBatch limit, data plus newline';
  return `record is ${size} bytes, over the ${max}-byte per-record ${what}`;
}
