// The analytics loader: reads the ingest log from the store's checkpoint in batches, turns each
// entry's event-stream record (reference/pinpoint.md §3) into an `events` row, and appends the
// batch together with the next checkpoint (DuckDB: one transaction, store.ts explains why that
// makes re-reads after a crash impossible, and why records below `loaded_to` are skipped;
// ClickHouse: rows then checkpoint, a re-read collapsing at query time, clickhouse/store.ts).
// The loop is the consumer kit's (src/consumer/kit.ts), as for the event-stream workers and the
// Firehose deliverers: one step per batch, a failed step (a store error: full disk, ClickHouse
// away) retried after a jittered backoff, stop() ending every wait at once, and health with
// state, retries and lag (computeLag; the lag inputs also cross to the main thread with every log
// call, see thread.ts). The checkpoint itself stays in the event store, committed with the rows:
// the kit's Checkpoint only mirrors it. `catchUp()` loads everything the log holds at the call.
// Entries that cannot be decoded are counted and skipped: analytics must not stall on one bad
// record, and the record is still in the ingest log for event streams.
//
// Throughput (issue 16), `bench analytics` on the shared 2-core machine (other benchmarks running,
// so ranges): the analytics thread's JavaScript is ~30 µs/record, the process ~66-90 µs/record
// with DuckDB's threads and the main thread's log reads, i.e. at least ~33 µs/record of wall time
// on 2 cores before any wait — the 1.5x-of-ingest aim (~21 µs/record) needs less total CPU, not
// more parallelism. Profile of the analytics thread (self time, % of its samples, 32% idle):
// parse 11.6 (JSON.parse), appendRows 8.9, flushSync 4.9, idOf 3.9, decodeIngestEntry 3.8,
// rollup prepare 3.3, recordToRow 3.1, appendVarchar 3.1, GC 5.7. Done: rollup ids and profiles
// by data chunks, new endpoints' profiles appended without the merge (chunks.ts, rollup.ts), one
// UTF-8 decode per entry; the parse thread (parse-thread.ts) only with spare cores.

import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import type { BackoffOptions } from '../consumer/backoff.js';
import type { Checkpoint } from '../consumer/checkpoint.js';
import { ConsumerKit, type ConsumerLag, type ConsumerState, type LagState } from '../consumer/kit.js';
import type { Log, LogRecord, OffsetGap } from '../log/log.js';
import { decodeIngestText } from '../pinpoint/ingest-record.js';
import { repairJsonText } from '../unicode.js';
import type { AnalyticsEventStore } from './event-store.js';
import type { EventRow } from './store.js';

/**
 * Ingest-log records per load transaction. Two batches are alive at once (one stored, one
 * prefetched), each with its parsed rows (about twice its bytes): at 50,000 records / 64 MB the
 * analytics thread held ~130 MB more under sustained load (server RSS 822 → 690 MB at c=64) for a
 * loader ~5% faster (26.9k vs 23.7–25.3k records/s in `bench analytics`).
 */
export const LOADER_BATCH_RECORDS = 20_000;
/** Bounds one batch's memory; at least one record is always read. */
export const LOADER_BATCH_BYTES = 16 * 1024 * 1024;
/** How long one wait for new records lasts before the loop looks again (bounds stop latency). */
export const LOADER_IDLE_WAIT_MS = 1000;
/**
 * Once caught up, a loader woken by new records lets more gather this long before loading, unless
 * LOADER_LINGER_RECORDS are there already. Each load is one DuckDB transaction with its rollup
 * statements and its write-ahead-log sync, a cost per batch, not per record. Measured in `bench
 * e2e` at a steady 1,000 events/s ("server CPU µs/event by thread"): the analytics thread 132 → 45
 * µs/event, the unnamed threads (DuckDB's among them) 511 → ~220, the server 98% → 55–63% of a
 * core. At 10,000 events/s batches were already ~10,000 records and nothing measurable changed.
 * Dashboards were never real time (Pinpoint's lagged minutes), so the loader trades up to this
 * much freshness for fewer, larger transactions at low and moderate rates.
 */
export const LOADER_LINGER_MS = 1000;
/** A backlog at least this large is loaded at once, without lingering. */
export const LOADER_LINGER_RECORDS = 10_000;

/** First and largest backoff after a failed batch (a store error): jittered, growing until one succeeds. */
export const LOADER_BACKOFF_BASE_MS = 500;
export const LOADER_BACKOFF_MAX_MS = 30_000;

export interface LoaderHealth extends ConsumerLag {
  state: ConsumerState;
  checkpoint: number;
  logEnd: number;
  loaded: number;
  duplicates: number;
  skipped: number;
  /** Batches tried again after a failure. */
  retries: number;
  lastError?: string;
  lastErrorAt?: number;
  /** The checkpoint was beyond the end of the ingest log at start: events it had loaded were lost from the log. */
  checkpointGap?: { records: number; message: string };
}

type Json = Record<string, unknown>;

const obj = (v: unknown): Json | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined);
const text = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
/** An attribute as json_extract_string reads it: strings as they are, numbers and booleans as JSON text. */
const attr = (v: unknown): string | null => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? JSON.stringify(v) : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
/**
 * A JSON column's text. JSON.stringify escapes an unpaired surrogate as "\ud800", which DuckDB's
 * JSON functions refuse for the whole query; records written before PutEvents repaired such
 * strings still carry them, so the escape becomes \ufffd here. (VARCHAR columns need nothing: the
 * appender writes U+FFFD for an unpaired surrogate itself.)
 */
const jsonText = (v: Json): string => {
  // Most records have an empty object somewhere here; '{}' needs no stringify or repair.
  for (const _ in v) return repairJsonText(JSON.stringify(v));
  return '{}';
};

function isoMs(v: unknown): number | null {
  if (typeof v !== 'string') return null;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : t;
}

/**
 * Maps one ingest entry to a row (fields per the EVENTS_DDL comments). Server-generated records
 * (campaign/journey sends) carry the endpoint as a JSON string in client_context.custom.endpoint
 * instead of a top-level `endpoint` object; both are read.
 */
export function recordToRow(appId: string, endpointId: string, eventId: string, record: Json): EventRow {
  const application = obj(record.application) ?? {};
  const client = obj(record.client) ?? {};
  const device = obj(record.device) ?? {};
  const platform = obj(device.platform) ?? {};
  const locale = obj(device.locale) ?? {};
  const session = obj(record.session) ?? {};
  const attributes = obj(record.attributes) ?? {};
  const metrics = obj(record.metrics) ?? {};
  let endpoint = obj(record.endpoint);
  if (!endpoint) {
    const custom = obj(obj(record.client_context)?.custom);
    if (typeof custom?.endpoint === 'string') {
      try {
        endpoint = obj(JSON.parse(custom.endpoint));
      } catch {
        // A malformed embedded endpoint only costs the endpoint columns.
      }
    }
  }
  endpoint ??= {};
  const user = obj(endpoint.User) ?? {};
  const location = obj(endpoint.Location) ?? {};
  const demographic = obj(endpoint.Demographic) ?? {};
  const eventTime = num(record.event_timestamp) ?? 0;
  return {
    appId,
    eventKey: `${endpointId}/${eventId}`,
    eventType: typeof record.event_type === 'string' ? record.event_type : '',
    eventTime,
    arrivalTime: num(record.arrival_timestamp) ?? eventTime,
    endpointId: text(client.client_id) ?? endpointId,
    userId: text(user.UserId),
    endpointCreated: isoMs(endpoint.CreationDate),
    sessionId: text(session.session_id),
    sessionStart: num(session.start_timestamp),
    channel: text(endpoint.ChannelType),
    platform: text(platform.name) ?? text(demographic.Platform),
    platformVersion: text(platform.version) ?? text(demographic.PlatformVersion),
    appVersion: text(application.version_name) ?? text(demographic.AppVersion),
    make: text(device.make) ?? text(demographic.Make),
    model: text(device.model) ?? text(demographic.Model),
    country: text(location.Country) ?? text(locale.country),
    attributes: jsonText(attributes),
    metrics: jsonText(metrics),
    endpointAttributes: jsonText(obj(endpoint.Attributes) ?? {}),
    campaignId: text(attributes.campaign_id),
    campaignActivityId: text(attributes.campaign_activity_id),
    treatmentId: text(attributes.treatment_id),
    journeyId: text(attributes.journey_id),
    journeyActivityId: text(attributes.journey_activity_id),
    campaignSendStatus: attr(attributes.campaign_send_status),
    journeySendStatus: attr(attributes.journey_send_status),
    deliveryType: attr(attributes.delivery_type),
    journeyActivityType: attr(attributes.journey_activity_type),
  };
}

/** The kit's view of the checkpoint the store commits with each batch: save() only mirrors it. */
class StoreCheckpoint implements Checkpoint {
  offset = 0;
  load(): number {
    return this.offset;
  }
  save(offset: number): void {
    this.offset = offset;
  }
}

export interface LoaderOptions {
  /** Lag's time base (thread.ts passes the main thread's clock as last seen). */
  clock?: Clock;
  backoff?: BackoffOptions;
  /** Backoff jitter source (tests). */
  random?: () => number;
  /** Reads and maps a batch elsewhere (default: log.read and parseRecords here). */
  readBatch?: ReadBatch;
  /** How long a caught-up loader lets records gather after a wake-up (default LOADER_LINGER_MS; 0: none). */
  lingerMs?: number;
  /** The loop's pauses, the linger's and backoff's (tests inject a controllable one). */
  sleep?: (ms: number) => Promise<void>;
}

export class AnalyticsLoader {
  /** Loop, backoff, stop signal, state, retries and lag (the consumer kit). */
  private readonly kit: ConsumerKit;
  private readonly saved = new StoreCheckpoint();
  /** Serializes loadBatch between the loop and catchUp(). */
  private busy: Promise<unknown> = Promise.resolve();
  private loaded = 0;
  private duplicates = 0;
  private skipped = 0;
  /** Append time of the first record of the batch being stored (lag is exact while one is). */
  private inHand: number | undefined;
  private gap: OffsetGap | undefined;
  private readonly readBatch: ReadBatch | undefined;
  private readonly lingerMs: number;

  constructor(
    private readonly log: Log,
    private readonly store: Pick<AnalyticsEventStore, 'append' | 'checkpoints'>,
    private readonly batchRecords = LOADER_BATCH_RECORDS,
    options: LoaderOptions = {},
  ) {
    this.readBatch = options.readBatch;
    this.lingerMs = options.lingerMs ?? LOADER_LINGER_MS;
    this.kit = new ConsumerKit({
      sleep: options.sleep,
      checkpoint: this.saved,
      clock: options.clock ?? systemClock,
      backoff: options.backoff ?? { baseMs: LOADER_BACKOFF_BASE_MS, maxMs: LOADER_BACKOFF_MAX_MS },
      random: options.random,
    });
  }

  /** Starts the loop from the checkpoint last read from the store; returns at once. */
  start(): void {
    this.kit.start(() =>
      this.kit.runSteps(() => this.step(), 'analytics load', () => {
        // A failed batch is read again from the store's checkpoint; what was parsed ahead goes.
        this.prefetch = undefined;
        this.kit.retries++;
      }),
    );
  }

  /** Ends the loop without waiting for its backoff or log wait (a batch being committed is let finish). */
  async stop(): Promise<void> {
    await this.kit.stop();
    // A catchUp() may still hold a batch; the caller closes the store after this.
    await this.busy;
  }

  get running(): boolean {
    return this.kit.running;
  }

  /**
   * Before loading (and before the server accepts events): a checkpoint beyond the end of the log
   * is reported and the log continues after it, so no new event gets an offset the loader has passed.
   */
  async checkCheckpoint(): Promise<void> {
    const { next } = await this.store.checkpoints();
    this.mirror(next);
    this.gap = await this.log.checkConsumer('the analytics loader', next);
  }

  /** Loads every record the log holds now. */
  async catchUp(): Promise<void> {
    const end = this.log.endOffset();
    // Each batch commits its own transaction; stop at the end seen on entry (or if nothing moves).
    for (let prev = -1, next = await this.loadBatch(); next < end && next !== prev; prev = next, next = await this.loadBatch());
  }

  health(): LoaderHealth {
    const k = this.kit.base();
    const logEnd = this.log.endOffset();
    return {
      state: k.state,
      checkpoint: k.checkpoint,
      logEnd,
      ...this.kit.lag(logEnd, this.inHand),
      loaded: this.loaded,
      duplicates: this.duplicates,
      skipped: this.skipped,
      retries: k.retries,
      ...(k.lastError ? { lastError: k.lastError.message, lastErrorAt: k.lastError.at } : {}),
      ...(this.gap ? { checkpointGap: { records: this.gap.records, message: this.gap.message } } : {}),
    };
  }

  /** The lag inputs as plain data (posted to the main thread, which computes the lag with computeLag). */
  lagState(): LagState {
    return this.kit.lagState(this.inHand);
  }

  /** One step of the loop: a batch, or (caught up) a wait for the next record. */
  private async step(): Promise<void> {
    const next = await this.loadBatch();
    if (next >= this.log.endOffset() && !this.kit.stopped) {
      this.kit.caughtUp();
      // The log wakes us on append; the timeout only bounds how long a stop could go unnoticed.
      const woke = await this.kit.waitForLog(this.log, next, LOADER_IDLE_WAIT_MS);
      // Woken by a few records: let more gather into this batch (LOADER_LINGER_MS says why).
      const waiting = this.log.endOffset() - next;
      if (woke && waiting > 0 && waiting < LOADER_LINGER_RECORDS && this.lingerMs > 0 && !this.kit.stopped) await this.kit.pause(this.lingerMs);
    }
  }

  /** The store's checkpoint as the kit sees it (it may move back: a replay set by hand). */
  private mirror(offset: number): void {
    this.saved.offset = offset;
    this.kit.cursor = offset;
  }

  /** Loads one batch from the checkpoint; returns the new checkpoint. */
  private loadBatch(): Promise<number> {
    const run = this.busy.then(() => this.loadOne());
    this.busy = run.catch(() => {});
    return run;
  }

  /**
   * The batch parsed while the previous one was committing (DuckDB commits on its own threads, so
   * parsing meanwhile keeps both busy). Used only if the checkpoint is still where it was expected.
   */
  private prefetch: { from: number; loadedTo: number; batch: Promise<ParsedBatch> } | undefined;

  private async loadOne(): Promise<number> {
    const { next: from, loadedTo } = await this.store.checkpoints();
    this.mirror(from);
    const pre = this.prefetch;
    this.prefetch = undefined;
    if (from >= this.log.endOffset()) return from;
    const parsed = pre && pre.from === from && pre.loadedTo === loadedTo ? await pre.batch : await this.parse(from, loadedTo);
    this.inHand = parsed.firstTs;
    try {
      const appended = this.store.append(parsed.rows, { offset: parsed.next });
      if (parsed.next < this.log.endOffset() && !this.kit.stopped) {
        const after = Math.max(loadedTo, parsed.next);
        const batch = this.parse(parsed.next, after);
        batch.catch(() => {}); // surfaces when used; a discarded prefetch must not be an unhandled rejection
        this.prefetch = { from: parsed.next, loadedTo: after, batch };
      }
      const result = await appended;
      this.loaded += result.inserted;
      this.duplicates += result.duplicates + parsed.replayed;
      this.skipped += parsed.skipped;
      if (parsed.lastError) this.kit.note(parsed.lastError);
      this.kit.advance(parsed.next);
    } finally {
      this.inHand = undefined;
    }
    return parsed.next;
  }

  /** Reads and maps one batch from `from` (here, or through `readBatch`: the parse thread). */
  private async parse(from: number, loadedTo: number): Promise<ParsedBatch> {
    const out = this.readBatch
      ? await this.readBatch(from, loadedTo, { maxRecords: this.batchRecords, maxBytes: LOADER_BATCH_BYTES })
      : await this.log.read(from, { maxRecords: this.batchRecords, maxBytes: LOADER_BATCH_BYTES }).then(({ records, nextOffset }) => parseRecords(records, from, nextOffset, loadedTo));
    if (out.lastTs !== undefined) this.kit.lastReadTs = out.lastTs;
    return out;
  }
}

/** Maps one read of the ingest log to rows; records below `loadedTo` are stored already and skipped. */
export function parseRecords(records: readonly LogRecord[], from: number, nextOffset: number, loadedTo: number): ParsedBatch {
  const out: ParsedBatch = { rows: [], next: Math.max(from, nextOffset), replayed: 0, skipped: 0, firstTs: records[0]?.timestamp, lastTs: records[records.length - 1]?.timestamp };
  for (const r of records) {
    if (r.offset < loadedTo) {
      out.replayed++;
      continue;
    }
    try {
      const e = decodeIngestText(r.payload.toString('utf8'));
      if (e.history) {
        // Imported history, stored by the import itself (src/history/).
        out.replayed++;
        continue;
      }
      out.rows.push(recordToRow(e.appId, e.endpointId, e.eventId, JSON.parse(e.record) as Json));
    } catch (err) {
      out.skipped++;
      out.lastError = `offset ${r.offset}: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  return out;
}

/** One batch read and mapped. */
export interface ParsedBatch {
  rows: EventRow[];
  next: number;
  /** Records below loaded_to: stored by an earlier load. */
  replayed: number;
  /** Records that could not be decoded. */
  skipped: number;
  lastError?: string;
  /** Append times of the first and last record read (undefined when it read none). */
  firstTs?: number;
  lastTs?: number;
}

/** Reads and maps the batch at `from` elsewhere (the analytics thread's parse thread). */
export type ReadBatch = (from: number, loadedTo: number, limits: { maxRecords: number; maxBytes: number }) => Promise<ParsedBatch>;

