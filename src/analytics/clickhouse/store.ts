// The ClickHouse adapter of the analytics event-store boundary (../event-store.ts): owns the
// connection (official @clickhouse/client over HTTP), the schema (schema.ts), the append path, the
// loader's checkpoint and retention; the dashboards (dashboards.ts) and KPIs (kpi.ts) are its SQL.
//
// Idempotency without transactions (ClickHouse has none that span two inserts):
// 1. Rows go in first, then the checkpoint row. A crash between the two leaves rows whose
//    checkpoint was not written: the loader reads those records again and appends them again.
// 2. A row appended twice is one event: `events` is a ReplacingMergeTree whose sorting key ends in
//    (…, event_key), and every query reads `events FINAL`, which collapses copies at query time
//    whether or not a background merge has yet. (Chosen over argMax/`LIMIT 1 BY` per query: FINAL
//    keeps every dashboard's SQL the same as on a plain table; over insert deduplication: a
//    non-replicated MergeTree on 18.16 deduplicates nothing, and block hashes depend on batching.)
// 3. The checkpoint is a row per write in a ReplacingMergeTree(version) keyed by the reader's name,
//    `loaded_to` carried forward as a running maximum, read with argMax: the write is one insert of
//    one row, so it is there or not.
// Repeats within a batch are dropped before the insert, as DuckDB's append does. FINAL costs every
// counting read a merge (schema.ts); queries a copy cannot change skip it. Measurements:
// docs/analytics-clickhouse.md (`npm run bench -- clickhouse`).
//
// Client options that ClickHouse 18.16 needs: no `query_params` (18.16 has no query parameters and
// refuses `param_*` as unknown settings: literals are quoted in sql.ts instead), and 64-bit integers
// unquoted in JSON output (`output_format_json_quote_64bit_integers: 0`, a setting 18.16 knows).
// The client's other defaults (query_id, enable_http_compression, keep-alive sockets idle under 18.16's
// 3 s keep_alive_timeout) work there; compression is off because the loader's CPU, not the network,
// is the bottleneck next to a ClickHouse on the LAN.

import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import type { ClickHouseConfig } from '../../config/config.js';
import type { DashboardDeps } from '../dashboards.js';
import { uniqueRows, type AnalyticsEventStore, type FilterNames } from '../event-store.js';
import { DAY_MS } from '../retention.js';
import type { AppendResult, Checkpoint, EventRow } from '../store.js';
import type { DashboardName, DashboardQuery, DashboardResult, DateRange, KpiRows, KpiScope } from '../types.js';
import { CLICKHOUSE_DASHBOARDS, runClickHouseDashboard } from './dashboards.js';
import { clickhouseKpi } from './kpi.js';
import { CLICKHOUSE_DDL, EVENTS, EVENTS_ANY } from './schema.js';
import { num, str } from './sql.js';
import { wellFormed } from '../../unicode.js';

/** One HTTP request (query or insert) may take this long before it fails. */
export const CLICKHOUSE_REQUEST_TIMEOUT_MS = 120_000;
/** Retention waits this long for its DELETE mutation to finish (18.16 has no synchronous mutations). */
export const CLICKHOUSE_MUTATION_TIMEOUT_MS = 300_000;
/** Poll interval while waiting for a mutation. */
export const CLICKHOUSE_MUTATION_POLL_MS = 100;
/** Sockets the client keeps to the server (dashboards run their queries concurrently). */
export const CLICKHOUSE_MAX_OPEN_CONNECTIONS = 8;

/** How long the server's start-up check of PINSTREAM_CLICKHOUSE_URL waits for `SELECT 1`. */
export const CLICKHOUSE_STARTUP_CHECK_TIMEOUT_MS = 10_000;

export type ChRow = Record<string, unknown>;

/** Runs one SELECT and answers its rows (numbers as numbers, Dates as `YYYY-MM-DD`). */
export type ChQuery = (sql: string) => Promise<ChRow[]>;

function client(c: ClickHouseConfig, database?: string): ClickHouseClient {
  return createClient({
    url: c.url,
    username: c.username,
    password: c.password,
    database,
    application: 'pinstream',
    request_timeout: CLICKHOUSE_REQUEST_TIMEOUT_MS,
    max_open_connections: CLICKHOUSE_MAX_OPEN_CONNECTIONS,
    compression: { request: false, response: false },
    clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
    // Errors reach the caller as exceptions; the client's own warning about progress headers is
    // for long queries behind load balancers, and those headers would make a failing query answer
    // HTTP 200 on 18.16 (no exception tag there).
    log: { level: ClickHouseLogLevel.OFF },
  });
}

/**
 * Checks that ClickHouse answers (`SELECT 1`, at most timeoutMs) before the server listens: the
 * store itself opens later in the analytics thread, whose failure would only show on the first
 * analytics call. Throws an error naming ClickHouse and the URL (without credentials) when it does not.
 */
export async function checkClickHouse(config: ClickHouseConfig, timeoutMs = CLICKHOUSE_STARTUP_CHECK_TIMEOUT_MS): Promise<void> {
  const ch = createClient({ url: config.url, username: config.username, password: config.password, request_timeout: timeoutMs, log: { level: ClickHouseLogLevel.OFF } });
  try {
    await (await ch.query({ query: 'SELECT 1', format: 'JSONEachRow' })).json();
  } catch (e) {
    throw new Error(`ClickHouse at ${config.url} does not answer: ${(e as Error).message}`, { cause: e });
  } finally {
    await ch.close();
  }
}

export class ClickHouseEventStore implements AnalyticsEventStore {
  readonly kind = 'clickhouse';
  readonly dashboards = CLICKHOUSE_DASHBOARDS;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  readonly query: ChQuery;
  /**
   * Test seam for crash tests: awaited after a batch's rows are inserted and before its checkpoint
   * row (a throw here is a loader that died between the two).
   */
  beforeCheckpoint: (() => Promise<void>) | undefined;

  private constructor(
    private readonly ch: ClickHouseClient,
    readonly database: string,
    readonly serverVersion: string,
    private readonly mutationTimeoutMs: number,
  ) {
    this.query = async (sql) => (await (await this.ch.query({ query: sql, format: 'JSONEachRow' })).json()) as ChRow[];
  }

  /** Connects, creates the database and tables when missing; fails with the server's message when unreachable. */
  /** `mutationTimeoutMs`: tests shorten CLICKHOUSE_MUTATION_TIMEOUT_MS. */
  static async open(config: ClickHouseConfig, opts: { mutationTimeoutMs?: number } = {}): Promise<ClickHouseEventStore> {
    const admin = client(config);
    let version: string;
    try {
      const r = (await (await admin.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' })).json()) as Array<{ v: string }>;
      version = r[0].v;
      await admin.command({ query: `CREATE DATABASE IF NOT EXISTS ${config.database}` });
    } catch (e) {
      throw new Error(`ClickHouse at ${config.url} (PINSTREAM_CLICKHOUSE_URL): ${(e as Error).message}`);
    } finally {
      await admin.close();
    }
    const ch = client(config, config.database);
    for (const ddl of CLICKHOUSE_DDL) await ch.command({ query: ddl });
    return new ClickHouseEventStore(ch, config.database, version, opts.mutationTimeoutMs ?? CLICKHOUSE_MUTATION_TIMEOUT_MS);
  }

  append(rows: readonly EventRow[], checkpoint?: { name?: string; offset: number }): Promise<AppendResult> {
    const unique = uniqueRows(rows);
    return this.exclusive(async () => {
      if (unique.length > 0) await this.ch.insert({ table: 'events', values: unique.map(toChRow), format: 'JSONEachRow' });
      await this.beforeCheckpoint?.();
      if (checkpoint) await this.writeCheckpoint(checkpoint.name ?? 'ingest', checkpoint.offset);
      return { inserted: unique.length, duplicates: rows.length - unique.length };
    });
  }

  async checkpoints(name = 'ingest'): Promise<Checkpoint> {
    return this.exclusive(async () => {
      const r = await this.readCheckpoint(name);
      return { next: r.next, loadedTo: r.loadedTo };
    });
  }

  setCheckpoint(offset: number, name = 'ingest'): Promise<void> {
    return this.exclusive(() => this.writeCheckpoint(name, offset));
  }

  private async readCheckpoint(name: string): Promise<Checkpoint & { version: number }> {
    const [r] = await this.query(
      `SELECT count() AS n, argMax(next_offset, version) AS next_at, max(loaded_to) AS loaded, max(version) AS top
       FROM loader_checkpoints WHERE name = ${str(name)}`,
    );
    if (Number(r.n) === 0) return { next: 0, loadedTo: 0, version: 0 };
    return { next: Number(r.next_at), loadedTo: Number(r.loaded), version: Number(r.top) };
  }

  /** One row: the new next offset, loaded_to never going back, a version above every earlier one. */
  private async writeCheckpoint(name: string, offset: number): Promise<void> {
    const cur = await this.readCheckpoint(name);
    await this.ch.insert({
      table: 'loader_checkpoints',
      values: [{ name, next_offset: offset, loaded_to: Math.max(cur.loadedTo, offset), version: cur.version + 1 }],
      format: 'JSONEachRow',
    });
  }

  /**
   * Drops whole monthly partitions before the cutoff's month, then deletes the rest of the older rows
   * with an ALTER … DELETE mutation, waited for (bounded): a mutation rewrites only the parts it
   * touches, and after retention has run once only the cutoff's own month has any.
   */
  deleteOlderThan(cutoffMs: number): Promise<number> {
    return this.exclusive(async () => {
      const cutoff = Math.trunc(cutoffMs);
      const [{ n }] = await this.query(`SELECT count() AS n FROM ${EVENTS} WHERE event_ms < ${num(cutoff)}`);
      if (Number(n) === 0) return 0;
      const cutoffMonth = Number(new Date(Math.floor(cutoff / DAY_MS) * DAY_MS).toISOString().slice(0, 7).replace('-', ''));
      const parts = await this.query(
        `SELECT DISTINCT partition FROM system.parts WHERE database = ${str(this.database)} AND table = 'events' AND active`,
      );
      for (const { partition } of parts) {
        const p = String(partition).replace(/'/g, '');
        if (/^\d{6}$/.test(p) && Number(p) < cutoffMonth) await this.ch.command({ query: `ALTER TABLE events DROP PARTITION ${p}` });
      }
      const [{ remaining }] = await this.query(`SELECT count() AS remaining FROM events WHERE event_ms < ${num(cutoff)}`);
      if (Number(remaining) > 0) {
        await this.ch.command({ query: `ALTER TABLE events DELETE WHERE event_ms < ${num(cutoff)}` });
        await this.waitForMutations();
      }
      return Number(n);
    });
  }

  private async waitForMutations(): Promise<void> {
    const deadline = Date.now() + this.mutationTimeoutMs;
    for (;;) {
      const [{ n }] = await this.query(
        `SELECT count() AS n FROM system.mutations WHERE database = ${str(this.database)} AND table = 'events' AND is_done = 0`,
      );
      if (Number(n) === 0) return;
      if (Date.now() > deadline) {
        throw new Error(`ClickHouse: retention's DELETE on ${this.database}.events did not finish within ${this.mutationTimeoutMs} ms (see system.mutations)`);
      }
      await new Promise((r) => setTimeout(r, CLICKHOUSE_MUTATION_POLL_MS));
    }
  }

  async rowCount(): Promise<number> {
    const [{ n }] = await this.query(`SELECT count() AS n FROM ${EVENTS}`);
    return Number(n);
  }

  async eventTypes(appId: string, sinceMs: number): Promise<string[]> {
    const rows = await this.query(`SELECT DISTINCT event_type AS t FROM ${EVENTS_ANY} WHERE app_id = ${str(appId)} AND event_ms >= ${num(Math.trunc(sinceMs))} ORDER BY t`);
    return rows.map((r) => String(r.t));
  }

  async filterNames(appId: string, sinceMs: number): Promise<FilterNames> {
    const names = async (col: string) =>
      (await this.query(`SELECT DISTINCT arrayJoin(${col}) AS k FROM ${EVENTS_ANY} WHERE app_id = ${str(appId)} AND event_ms >= ${num(Math.trunc(sinceMs))} ORDER BY k`)).map((r) => String(r.k));
    const [eventAttributes, eventMetrics, endpointAttributes] = await Promise.all([names('attr_keys'), names('metric_keys'), names('ep_attr_keys')]);
    return { eventAttributes, eventMetrics, endpointAttributes };
  }

  dashboard(name: DashboardName, q: DashboardQuery, deps: DashboardDeps): Promise<DashboardResult> {
    return runClickHouseDashboard(this.query, name, q, deps);
  }

  kpi(scope: KpiScope, name: string, range: DateRange): Promise<KpiRows> {
    return clickhouseKpi(this.query, scope, name, range);
  }

  /** Drops the database (tests). */
  async dropDatabase(): Promise<void> {
    await this.ch.command({ query: `DROP DATABASE IF EXISTS ${this.database}` });
  }

  /** Writes run one at a time: the checkpoint is read, then written. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('analytics store is closed'));
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.queue;
    this.closed = true;
    await this.ch.close();
  }
}


const day = (ms: number) => new Date(Math.floor(Math.trunc(ms) / DAY_MS) * DAY_MS).toISOString().slice(0, 10);
const int = (ms: number | null) => (ms === null ? null : Math.trunc(ms));

/** A map's value as DuckDB's json_extract_string reads it: strings as they are, anything else as JSON text. */
const text = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

/**
 * One EventRow as a JSONEachRow object (columns of schema.ts), every string well-formed: ClickHouse's
 * JSON reader refuses the whole insert on an unpaired surrogate escape ("missing second part of
 * surrogate pair"), which JSON.stringify writes for one; VARCHAR fields may still hold one (DuckDB's
 * appender writes U+FFFD for it, and so does this).
 */
export function toChRow(r: EventRow): Record<string, unknown> {
  return wellFormed(chRow(r));
}

function chRow(r: EventRow): Record<string, unknown> {
  const attributes = JSON.parse(r.attributes) as Record<string, unknown>;
  const metrics = JSON.parse(r.metrics) as Record<string, unknown>;
  const endpointAttributes = JSON.parse(r.endpointAttributes) as Record<string, unknown>;
  // A null attribute is absent, as json_extract_string reads it.
  const attrKeys: string[] = [];
  const attrValues: string[] = [];
  for (const [k, v] of Object.entries(attributes)) {
    if (v !== null) {
      attrKeys.push(k);
      attrValues.push(text(v));
    }
  }
  const metricKeys: string[] = [];
  const metricValues: number[] = [];
  for (const [k, v] of Object.entries(metrics)) {
    if (typeof v === 'number' && Number.isFinite(v)) {
      metricKeys.push(k);
      metricValues.push(v);
    }
  }
  const epKeys: string[] = [];
  const epValues: string[][] = [];
  for (const [k, v] of Object.entries(endpointAttributes)) {
    if (Array.isArray(v)) {
      epKeys.push(k);
      epValues.push(v.map(text));
    }
  }
  return {
    app_id: r.appId,
    event_key: r.eventKey,
    event_type: r.eventType,
    event_ms: Math.trunc(r.eventTime),
    arrival_ms: Math.trunc(r.arrivalTime),
    day: day(r.eventTime),
    endpoint_id: r.endpointId,
    user_id: r.userId,
    endpoint_created_ms: int(r.endpointCreated),
    session_id: r.sessionId,
    session_start_ms: int(r.sessionStart),
    channel: r.channel,
    platform: r.platform,
    platform_version: r.platformVersion,
    app_version: r.appVersion,
    make: r.make,
    model: r.model,
    country: r.country,
    attr_keys: attrKeys,
    attr_values: attrValues,
    metric_keys: metricKeys,
    metric_values: metricValues,
    ep_attr_keys: epKeys,
    ep_attr_values: epValues,
    campaign_id: r.campaignId,
    campaign_activity_id: r.campaignActivityId,
    treatment_id: r.treatmentId,
    journey_id: r.journeyId,
    journey_activity_id: r.journeyActivityId,
    campaign_send_status: r.campaignSendStatus,
    journey_send_status: r.journeySendStatus,
    delivery_type: r.deliveryType,
    journey_activity_type: r.journeyActivityType,
  };
}
