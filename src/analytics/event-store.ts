// The analytics event-store boundary: what the loader, retention, the dashboards, KPIs, funnels
// and retention charts need from wherever the `events` rows live. Two adapters: the embedded
// DuckDB store (store.ts, wrapped by duckdb-event-store.ts) and ClickHouse (clickhouse/). Both run
// through one contract suite (test/analytics-event-store.test.ts): the same rows give the same
// dashboards and KPIs, a batch appended twice counts once, the checkpoint resumes, retention deletes.

import type { AppendResult, Checkpoint, EventRow } from './store.js';
import type { DashboardDeps } from './dashboards.js';
import type { DashboardName, DashboardQuery, DashboardResult, DateRange, KpiRows, KpiScope } from './types.js';

export type { AppendResult, Checkpoint, EventRow };

export interface FilterNames {
  eventAttributes: string[];
  eventMetrics: string[];
  endpointAttributes: string[];
}

export interface AnalyticsEventStore {
  /** Which adapter this is ('duckdb', 'clickhouse'): for messages and /health. */
  readonly kind: string;
  /** Dashboards the adapter answers (both: all of DASHBOARDS). */
  readonly dashboards: readonly DashboardName[];

  /**
   * Appends rows (a batch of the ingest log) and, with `checkpoint`, moves the reader's next offset.
   * Idempotent by (app_id, event_key): rows already stored, and repeats within the batch, count
   * once however often the batch is appended (DuckDB: one transaction; ClickHouse: rows first, then
   * the checkpoint, deduplicated at query time; see clickhouse/store.ts).
   */
  append(rows: readonly EventRow[], checkpoint?: { name?: string; offset: number }): Promise<AppendResult>;
  /** The reader's next offset and `loadedTo` (0, 0 when it never loaded). */
  checkpoints(name?: string): Promise<Checkpoint>;
  /** Moves the reader's next offset by hand (a replay); `loadedTo` never goes back. */
  setCheckpoint(offset: number, name?: string): Promise<void>;
  /** Deletes rows whose event time is before cutoffMs; returns how many there were. */
  deleteOlderThan(cutoffMs: number): Promise<number>;
  /** Distinct stored events (duplicates counted once). */
  rowCount(): Promise<number>;

  /** Event types of the app's events at or after sinceMs, sorted (the Events dashboard's filter list). */
  eventTypes(appId: string, sinceMs: number): Promise<string[]>;
  /** Names of event attributes, event metrics and endpoint attributes at or after sinceMs, each sorted. */
  filterNames(appId: string, sinceMs: number): Promise<FilterNames>;
  dashboard(name: DashboardName, q: DashboardQuery, deps: DashboardDeps): Promise<DashboardResult>;
  kpi(scope: KpiScope, name: string, range: DateRange): Promise<KpiRows>;
  /** The database file's size in bytes, for a store that has one file (DuckDB; ClickHouse: absent). */
  fileBytes?(): number;
  /** Folds written data into the file after retention (DuckDB's CHECKPOINT; ClickHouse merges on its own: absent). */
  compact?(): Promise<void>;
  close(): Promise<void>;
}

/**
 * What history import answers when the store is ClickHouse: its write (`appendNew`, which stores
 * only the rows not stored yet and names them to the import before the insert) is DuckDB's.
 */
export const HISTORY_IMPORT_CLICKHOUSE_MESSAGE =
  'history import writes to the embedded DuckDB analytics store only; it is not available with ClickHouse (PINSTREAM_CLICKHOUSE_URL)';

/** The rows without repeats of an (app_id, event_key) within them (the first one stays); for adapters. */
export function uniqueRows(rows: readonly EventRow[]): EventRow[] {
  const seen = new Set<string>();
  return rows.filter((r) => {
    const k = r.appId + '\u0000' + r.eventKey;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
