// The Analytics service (types.ts `Analytics`): owns the event store, the loader that follows the
// ingest log, the daily retention job, saved funnels and the dashboard queries; the KPI API's
// queries (kpi.ts) are reached through `kpi()`. Each query gets its own DuckDB
// connection, so console requests run concurrently with each other and with the loader.

import type { DuckDBConnection } from '@duckdb/node-api';
import type { Clock } from '../clock.js';
import type { Log } from '../log/log.js';
import type { Db } from '../store/db.js';
import { runDashboard } from './dashboards.js';
import { FunnelStore } from './funnels.js';
import { kpi } from './kpi.js';
import { AnalyticsLoader } from './loader.js';
import { DAY_MS, startRetention } from './retention.js';
import { EventStore } from './store.js';
import type { Analytics, DashboardName, DashboardQuery, DashboardResult, DateRange, Funnel, KpiRows, KpiScope } from './types.js';

/** The Events filter list shows event types reported in this many past days (reference/pinpoint.md §5). */
export const EVENT_TYPES_DAYS = 14;
/** Filter names are those seen in this many past days. */
export const FILTER_NAMES_DAYS = 90;

export interface AnalyticsOptions {
  dataDir: string;
  ingestLog: Log;
  db: Db;
  clock: Clock;
  retentionDays: number;
  /** Start the loader loop and the retention timer (default true; tests of the store turn it off). */
  background?: boolean;
}

export class PinstreamAnalytics implements Analytics {
  private stopRetention: () => void = () => {};

  private constructor(
    readonly store: EventStore,
    readonly loader: AnalyticsLoader,
    private readonly funnels: FunnelStore,
    private readonly opts: AnalyticsOptions,
  ) {}

  static async open(opts: AnalyticsOptions): Promise<PinstreamAnalytics> {
    const store = await EventStore.open(opts.dataDir);
    const a = new PinstreamAnalytics(store, new AnalyticsLoader(opts.ingestLog, store), new FunnelStore(opts.db), opts);
    if (opts.background ?? true) {
      await a.loader.checkCheckpoint();
      a.loader.start();
      a.stopRetention = startRetention(store, opts.clock, opts.retentionDays, (e) => console.error('pinstream: analytics retention failed', e));
    }
    return a;
  }

  private async withConnection<T>(fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    const conn = await this.store.connect();
    try {
      return await fn(conn);
    } finally {
      conn.closeSync();
    }
  }

  dashboard(name: DashboardName, q: DashboardQuery): Promise<DashboardResult> {
    return this.withConnection((conn) =>
      runDashboard(conn, name, q, { clock: this.opts.clock, retentionDays: this.opts.retentionDays, funnels: (app) => this.funnels.list(app) }),
    );
  }

  eventTypes(appId: string, days = EVENT_TYPES_DAYS): Promise<string[]> {
    return this.withConnection(async (conn) => {
      const r = await conn.runAndReadAll(
        `SELECT DISTINCT event_type FROM events WHERE app_id = $app AND event_time >= epoch_ms($since::BIGINT) ORDER BY event_type`,
        { app: appId, since: this.opts.clock.now() - days * DAY_MS },
      );
      return r.getRowsJS().map((row) => String(row[0]));
    });
  }

  filterNames(appId: string): Promise<{ eventAttributes: string[]; eventMetrics: string[]; endpointAttributes: string[] }> {
    return this.withConnection(async (conn) => {
      const names = async (col: string) => {
        const r = await conn.runAndReadAll(
          `SELECT DISTINCT unnest(json_keys(${col})) AS k FROM events WHERE app_id = $app AND event_time >= epoch_ms($since::BIGINT) ORDER BY k`,
          { app: appId, since: this.opts.clock.now() - FILTER_NAMES_DAYS * DAY_MS },
        );
        return r.getRowsJS().map((row) => String(row[0]));
      };
      return { eventAttributes: await names('attributes'), eventMetrics: await names('metrics'), endpointAttributes: await names('endpoint_attributes') };
    });
  }

  listFunnels(appId: string): Funnel[] {
    return this.funnels.list(appId);
  }

  saveFunnel(appId: string, f: Omit<Funnel, 'id'> & { id?: string }): Funnel {
    return this.funnels.save(appId, f);
  }

  deleteFunnel(appId: string, id: string): boolean {
    return this.funnels.delete(appId, id);
  }

  kpi(scope: KpiScope, name: string, range: DateRange): Promise<KpiRows> {
    return this.withConnection((conn) => kpi(conn, scope, name, range));
  }

  catchUp(): Promise<void> {
    return this.loader.catchUp();
  }

  async close(): Promise<void> {
    this.stopRetention();
    await this.loader.stop();
    await this.store.close();
  }
}

