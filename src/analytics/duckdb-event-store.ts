// The embedded adapter of the analytics event-store boundary (event-store.ts): a thin wrapper over
// the DuckDB EventStore (store.ts), the dashboards (dashboards.ts) and the KPIs (kpi.ts), each read
// on a connection of its own as the analytics thread does. Adds no behaviour of its own.

import { runDashboard, type DashboardDeps } from './dashboards.js';
import type { AnalyticsEventStore, FilterNames } from './event-store.js';
import { kpi } from './kpi.js';
import { EventStore, type AppendResult, type Checkpoint, type EventRow } from './store.js';
import { DASHBOARDS, type DashboardName, type DashboardQuery, type DashboardResult, type DateRange, type KpiRows, type KpiScope } from './types.js';

export class DuckDbEventStore implements AnalyticsEventStore {
  readonly kind = 'duckdb';
  readonly dashboards = DASHBOARDS;

  constructor(readonly store: EventStore) {}

  static async open(dataDir: string, options: { memoryLimitMb?: number } = {}): Promise<DuckDbEventStore> {
    return new DuckDbEventStore(await EventStore.open(dataDir, options));
  }

  append(rows: readonly EventRow[], checkpoint?: { name?: string; offset: number }): Promise<AppendResult> {
    return this.store.append(rows, checkpoint);
  }

  checkpoints(name?: string): Promise<Checkpoint> {
    return this.store.checkpoints(name);
  }

  setCheckpoint(offset: number, name?: string): Promise<void> {
    return this.store.setCheckpoint(offset, name);
  }

  deleteOlderThan(cutoffMs: number): Promise<number> {
    return this.store.deleteOlderThan(cutoffMs);
  }

  rowCount(): Promise<number> {
    return this.store.rowCount();
  }

  /** The SQL of remote.ts eventTypes (which runs it through the analytics thread's `query`). */
  eventTypes(appId: string, sinceMs: number): Promise<string[]> {
    return this.withConnection(async (conn) =>
      (await conn.runAndReadAll(`SELECT DISTINCT event_type FROM events WHERE app_id = $app AND event_time >= epoch_ms($since::BIGINT) ORDER BY event_type`, { app: appId, since: sinceMs }))
        .getRowsJS()
        .map((r) => String(r[0])),
    );
  }

  /** The SQL of remote.ts filterNames. */
  async filterNames(appId: string, sinceMs: number): Promise<FilterNames> {
    const names = (col: string) =>
      this.withConnection(async (conn) =>
        (await conn.runAndReadAll(`SELECT DISTINCT unnest(json_keys(${col})) AS k FROM events WHERE app_id = $app AND event_time >= epoch_ms($since::BIGINT) ORDER BY k`, { app: appId, since: sinceMs }))
          .getRowsJS()
          .map((r) => String(r[0])),
      );
    return { eventAttributes: await names('attributes'), eventMetrics: await names('metrics'), endpointAttributes: await names('endpoint_attributes') };
  }

  dashboard(name: DashboardName, q: DashboardQuery, deps: DashboardDeps): Promise<DashboardResult> {
    return this.withConnection((conn) => runDashboard(conn, name, q, deps));
  }

  kpi(scope: KpiScope, name: string, range: DateRange): Promise<KpiRows> {
    return this.withConnection((conn) => kpi(conn, scope, name, range));
  }

  fileBytes(): number {
    return this.store.fileBytes();
  }

  compact(): Promise<void> {
    return this.store.compact();
  }

  close(): Promise<void> {
    return this.store.close();
  }

  private withConnection<T>(fn: (conn: Awaited<ReturnType<EventStore['connect']>>) => Promise<T>): Promise<T> {
    return this.store.withConnection(fn);
  }
}
