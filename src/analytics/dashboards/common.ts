// Shared pieces of the dashboard queries: the query context (app, validated range, the filters of
// DashboardQuery turned into SQL with bound parameters), the "active endpoint" rule, and helpers
// that turn grouped rows into zero-filled daily series, tiles and charts.

import { listValue, type DuckDBConnection, type DuckDBValue } from '@duckdb/node-api';
import type { Chart, DashboardQuery, Tile } from '../types.js';

/** Messaging events the service emits itself (defined with the rollups that also test it). */
export { SERVER_EVENT_PATTERN } from '../rollup.js';

/** JSON path of one map key, quoted so keys with dots or spaces work. */
export function jsonPath(key: string): string {
  return '$."' + key.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

export type Row = Record<string, unknown>;

export class QueryContext {
  private readonly params: Record<string, DuckDBValue> = {};
  /** Every day of the range, `YYYY-MM-DD`, ascending. */
  readonly days: string[];

  /** Whether series may come from the rollups (rollup.ts); never with the endpoint-attribute filter. */
  readonly rollups: boolean;

  constructor(
    readonly conn: DuckDBConnection,
    readonly q: DashboardQuery,
    opts: { fromEvents?: boolean } = {},
  ) {
    this.rollups = !opts.fromEvents && q.endpointAttribute === undefined;
    this.days = daysOf(q.range.start, q.range.end);
    this.params.app = q.appId;
    this.params.start = q.range.start;
    this.params.end = q.range.end;
    const ea = q.endpointAttribute;
    if (ea) {
      this.params.ea_path = jsonPath(ea.name);
      this.params.ea_values = listValue(ea.values);
    }
    if (q.eventAttribute) {
      this.params.at_path = jsonPath(q.eventAttribute.name);
      this.params.at_values = listValue(q.eventAttribute.values);
    }
    if (q.eventMetric) {
      this.params.mt_path = jsonPath(q.eventMetric.name);
      this.params.mt_value = q.eventMetric.value;
    }
    if (q.eventType !== undefined) this.params.event_type = q.eventType;
    if (q.channel !== undefined) this.params.channel = q.channel;
    if (q.campaignId !== undefined) this.params.campaign = q.campaignId;
    if (q.journeyId !== undefined) this.params.journey = q.journeyId;
  }

  /** `AND …` restricting rows to endpoints with the endpoint-attribute filter's value (or ''). */
  get endpointFilter(): string {
    return this.q.endpointAttribute
      ? ` AND list_has_any(TRY_CAST(json_extract(endpoint_attributes, $ea_path) AS VARCHAR[]), $ea_values::VARCHAR[])`
      : '';
  }

  /** `AND …` for the Events dashboard's event attribute and metric filters (or ''). */
  get eventFilter(): string {
    let s = '';
    if (this.q.eventAttribute) s += ` AND list_contains($at_values::VARCHAR[], json_extract_string(attributes, $at_path))`;
    const m = this.q.eventMetric;
    // op comes from a closed set checked in dashboards.ts, so it can be spliced in.
    if (m) s += ` AND TRY_CAST(json_extract(metrics, $mt_path) AS DOUBLE) ${m.op} $mt_value`;
    return s;
  }

  /** Rows of the app within [start - lookbackDays, end]. */
  base(lookbackDays = 0): string {
    return `app_id = $app AND day BETWEEN $start::DATE - ${lookbackDays | 0} AND $end::DATE`;
  }

  /** Queries of one dashboard run one at a time: a DuckDB connection runs one statement at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  /** Runs a query with the parameters it names; values come back as plain JS (numbers, strings). */
  all(sql: string, extra: Record<string, DuckDBValue> = {}): Promise<Row[]> {
    const run = this.queue.then(() => this.run(sql, extra));
    this.queue = run.catch(() => {});
    return run;
  }

  private async run(sql: string, extra: Record<string, DuckDBValue>): Promise<Row[]> {
    const all = { ...this.params, ...extra };
    const used: Record<string, DuckDBValue> = {};
    for (const [k, v] of Object.entries(all)) if (new RegExp(`\\$${k}\\b`).test(sql)) used[k] = v;
    const reader = await this.conn.runAndReadAll(sql, used);
    return reader.getRowObjectsJS().map((r) => {
      const out: Row = {};
      for (const [k, v] of Object.entries(r)) out[k] = typeof v === 'bigint' ? Number(v) : v;
      return out;
    });
  }

  /** Grouped (day, value) rows as a map from `YYYY-MM-DD`. */
  async byDay(sql: string, extra?: Record<string, DuckDBValue>): Promise<Map<string, Row>> {
    const m = new Map<string, Row>();
    for (const r of await this.all(sql, extra)) m.set(dayString(r.day), r);
    return m;
  }
}

export function dayString(v: unknown): string {
  if (v instanceof Date) return v.toISOString().slice(0, 10);
  return String(v).slice(0, 10);
}

export function daysOf(start: string, end: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(start + 'T00:00:00Z'); t <= Date.parse(end + 'T00:00:00Z'); t += 86_400_000) out.push(new Date(t).toISOString().slice(0, 10));
  return out;
}

/** Division that answers null instead of NaN/Infinity (a rate with nothing to divide by). */
export function ratio(a: number | null, b: number | null): number | null {
  return a === null || b === null || b === 0 ? null : a / b;
}

/** A daily series: one value per day of the range (missing days are 0, or null when `fill` is null). */
export function daily(days: string[], values: Map<string, number | null>, fill: number | null = 0): Array<number | null> {
  return days.map((d) => (values.has(d) ? values.get(d)! : fill));
}

export function column(m: Map<string, Row>, key: string): Map<string, number | null> {
  const out = new Map<string, number | null>();
  for (const [d, r] of m) out.set(d, r[key] === null || r[key] === undefined ? null : Number(r[key]));
  return out;
}

export function lineChart(id: string, title: string, days: string[], series: Record<string, Array<number | null>>): Chart {
  const names = Object.keys(series);
  return { id, title, kind: 'line', columns: ['Day', ...names], rows: days.map((d, i) => [d, ...names.map((n) => round(series[n][i]))]) };
}

export function sum(v: Array<number | null>): number {
  return v.reduce<number>((a, b) => a + (b ?? 0), 0);
}

/** Mean of the days that have a value (null when none). */
export function mean(v: Array<number | null>): number | null {
  const xs = v.filter((x): x is number => x !== null);
  return xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length;
}

export function tile(id: string, label: string, value: number | null, unit: Tile['unit'] = 'count'): Tile {
  return { id, label, value: round(value), unit };
}

/** Keeps results readable and stable (floating sums) without losing meaningful precision. */
export function round(v: number | null): number | null {
  return v === null || !Number.isFinite(v) ? null : Math.round(v * 1e6) / 1e6;
}

export function pct(a: number | null, b: number | null): number | null {
  const r = ratio(a, b);
  return r === null ? null : r * 100;
}
