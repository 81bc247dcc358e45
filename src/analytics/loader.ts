// The analytics loader: reads the ingest log from the store's checkpoint in batches, turns each
// entry's event-stream record (reference/pinpoint.md §3) into an `events` row, and appends the
// batch together with the next checkpoint (DuckDB: one transaction, store.ts explains why that
// makes re-reads after a crash impossible, and why records below `loaded_to` are skipped;
// ClickHouse: rows then checkpoint, a re-read collapsing at query time, clickhouse/store.ts). Runs as its own async loop that sleeps on the log's
// waitFor, like the delivery workers; `catchUp()` loads everything the log holds at the call.
// Entries that cannot be decoded are counted and skipped: analytics must not stall on one bad
// record, and the record is still in the ingest log for event streams.

import { StopSignal } from '../consumer/stop-signal.js';
import type { Log, OffsetGap } from '../log/log.js';
import { decodeIngestEntry } from '../pinpoint/ingest-record.js';
import { repairJsonText } from '../unicode.js';
import type { AnalyticsEventStore } from './event-store.js';
import type { EventRow } from './store.js';

/** Ingest-log records per load transaction. */
export const LOADER_BATCH_RECORDS = 50_000;
/** Bounds one batch's memory; at least one record is always read. */
export const LOADER_BATCH_BYTES = 64 * 1024 * 1024;
/** How long one wait for new records lasts before the loop looks again (bounds stop latency). */
export const LOADER_IDLE_WAIT_MS = 1000;

export interface LoaderHealth {
  checkpoint: number;
  logEnd: number;
  loaded: number;
  duplicates: number;
  skipped: number;
  lastError?: string;
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

export class AnalyticsLoader {
  private loop: Promise<void> | undefined;
  private stopping = false;
  private stop$ = new StopSignal();
  /** Serializes loadBatch between the loop and catchUp(). */
  private busy: Promise<unknown> = Promise.resolve();
  private loaded = 0;
  private duplicates = 0;
  private skipped = 0;
  private cursor = 0;
  private lastError: string | undefined;
  private gap: OffsetGap | undefined;

  constructor(
    private readonly log: Log,
    private readonly store: Pick<AnalyticsEventStore, 'append' | 'checkpoints'>,
    private readonly batchRecords = LOADER_BATCH_RECORDS,
  ) {}

  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.stop$ = new StopSignal();
    this.loop = this.run().finally(() => (this.loop = undefined));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.stop$.stop();
    await this.loop;
  }

  /**
   * Before loading (and before the server accepts events): a checkpoint beyond the end of the log
   * is reported and the log continues after it, so no new event gets an offset the loader has passed.
   */
  async checkCheckpoint(): Promise<void> {
    const { next } = await this.store.checkpoints();
    this.gap = await this.log.checkConsumer('the analytics loader', next);
  }

  /** Loads every record the log holds now. */
  async catchUp(): Promise<void> {
    const end = this.log.endOffset();
    // Each batch commits its own transaction; stop at the end seen on entry (or if nothing moves).
    for (let prev = -1, next = await this.loadBatch(); next < end && next !== prev; prev = next, next = await this.loadBatch());
  }

  health(): LoaderHealth {
    return {
      checkpoint: this.cursor,
      logEnd: this.log.endOffset(),
      loaded: this.loaded,
      duplicates: this.duplicates,
      skipped: this.skipped,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      ...(this.gap ? { checkpointGap: { records: this.gap.records, message: this.gap.message } } : {}),
    };
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        const next = await this.loadBatch();
        if (next >= this.log.endOffset() && !this.stopping) {
          const since = performance.now();
          const woke = await this.stop$.race(this.log.waitFor(next, LOADER_IDLE_WAIT_MS));
          // A closed log answers at once; do not spin.
          if (woke === false && performance.now() - since < LOADER_IDLE_WAIT_MS / 2) await this.stop$.sleep(LOADER_IDLE_WAIT_MS);
        }
      } catch (e) {
        this.lastError = e instanceof Error ? e.message : String(e);
        // Stop-aware: an unref'd sleep here once left close() awaiting a promise the event loop
        // had dropped (the loader had just failed to commit on a full disk).
        await this.stop$.sleep(LOADER_IDLE_WAIT_MS);
      }
    }
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
    this.cursor = from;
    const pre = this.prefetch;
    this.prefetch = undefined;
    if (from >= this.log.endOffset()) return from;
    const parsed = pre && pre.from === from && pre.loadedTo === loadedTo ? await pre.batch : await this.parse(from, loadedTo);
    const appended = this.store.append(parsed.rows, { offset: parsed.next });
    if (parsed.next < this.log.endOffset() && !this.stopping) {
      const after = Math.max(loadedTo, parsed.next);
      const batch = this.parse(parsed.next, after);
      batch.catch(() => {}); // surfaces when used; a discarded prefetch must not be an unhandled rejection
      this.prefetch = { from: parsed.next, loadedTo: after, batch };
    }
    const result = await appended;
    this.loaded += result.inserted;
    this.duplicates += result.duplicates + parsed.replayed;
    this.skipped += parsed.skipped;
    if (parsed.lastError) this.lastError = parsed.lastError;
    this.cursor = parsed.next;
    return parsed.next;
  }

  /** Reads and maps one batch from `from`; records below `loadedTo` are stored already and skipped. */
  private async parse(from: number, loadedTo: number): Promise<ParsedBatch> {
    const { records, nextOffset } = await this.log.read(from, { maxRecords: this.batchRecords, maxBytes: LOADER_BATCH_BYTES });
    const out: ParsedBatch = { rows: [], next: Math.max(from, nextOffset), replayed: 0, skipped: 0 };
    for (const r of records) {
      if (r.offset < loadedTo) {
        out.replayed++;
        continue;
      }
      try {
        const e = decodeIngestEntry(r.payload);
        if (e.history) {
          // Imported history, stored by the import itself (src/history/).
          out.replayed++;
          continue;
        }
        out.rows.push(recordToRow(e.appId, e.endpointId, e.eventId, JSON.parse(e.record.toString('utf8')) as Json));
      } catch (err) {
        out.skipped++;
        out.lastError = `offset ${r.offset}: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
    return out;
  }
}

interface ParsedBatch {
  rows: EventRow[];
  next: number;
  /** Records below loaded_to: stored by an earlier load. */
  replayed: number;
  /** Records that could not be decoded. */
  skipped: number;
  lastError?: string;
  /** The checkpoint was beyond the end of the ingest log at start: events it had loaded were lost from the log. */
  checkpointGap?: { records: number; message: string };
}

