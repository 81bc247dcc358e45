// Dashboard entry point: validates a DashboardQuery (errors are ApiError BadRequestException naming
// the field) and runs the named dashboard's SQL (dashboards/*.ts) on a connection of its own.

import type { DuckDBConnection } from '@duckdb/node-api';
import type { Clock } from '../clock.js';
import { badRequest, notFound } from '../http/errors.js';
import { QueryContext } from './dashboards/common.js';
import { demographicsDashboard } from './dashboards/demographics.js';
import { eventsDashboard } from './dashboards/events.js';
import { funnelsDashboard } from './dashboards/funnels.js';
import { campaignsDashboard, journeysDashboard } from './dashboards/messaging.js';
import { overviewDashboard } from './dashboards/overview.js';
import { revenueDashboard } from './dashboards/revenue.js';
import { usageDashboard } from './dashboards/usage.js';
import { DASHBOARDS, type DashboardName, type DashboardQuery, type DashboardResult, type DateRange, type Funnel } from './types.js';
import { DAY_MS } from './retention.js';

export const METRIC_OPS = ['=', '<', '<=', '>', '>='] as const;
/** Values one attribute filter may list. */
export const MAX_FILTER_VALUES = 100;

const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;

function dayMs(v: unknown, field: string): number {
  if (typeof v !== 'string' || !DAY_RE.test(v)) throw badRequest(`${field} must be a date YYYY-MM-DD, got ${JSON.stringify(v)}`);
  const t = Date.parse(v + 'T00:00:00Z');
  if (Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== v) throw badRequest(`${field} "${v}" is not a calendar date`);
  return t;
}

/**
 * end ≥ start, and start no earlier than the retention window allows (older days hold no data
 * any more, so answering zeros would mislead).
 */
export function validateRange(range: DateRange | undefined, clock: Clock, retentionDays: number): void {
  if (!range || typeof range !== 'object') throw badRequest('range is required ({start, end} as YYYY-MM-DD)');
  const start = dayMs(range.start, 'range.start');
  const end = dayMs(range.end, 'range.end');
  if (end < start) throw badRequest(`range.end ${range.end} is before range.start ${range.start}`);
  const today = Math.floor(clock.now() / DAY_MS) * DAY_MS;
  const oldest = today - retentionDays * DAY_MS;
  if (start < oldest) {
    throw badRequest(`range.start ${range.start} is more than ${retentionDays} days back; the oldest day kept is ${new Date(oldest).toISOString().slice(0, 10)}`);
  }
}

export function validateQuery(name: DashboardName, q: DashboardQuery): void {
  if (!DASHBOARDS.includes(name)) throw badRequest(`dashboard must be one of ${DASHBOARDS.join(', ')}, got ${JSON.stringify(name)}`);
  if (typeof q.appId !== 'string' || q.appId === '') throw badRequest('appId is required');
  for (const [field, f] of [['eventAttribute', q.eventAttribute], ['endpointAttribute', q.endpointAttribute]] as const) {
    if (f === undefined) continue;
    if (typeof f.name !== 'string' || f.name === '') throw badRequest(`${field}.name is required`);
    if (!Array.isArray(f.values) || f.values.length === 0 || f.values.some((v) => typeof v !== 'string')) {
      throw badRequest(`${field}.values must be a non-empty list of strings`);
    }
    if (f.values.length > MAX_FILTER_VALUES) throw badRequest(`${field}.values has ${f.values.length} values; the maximum is ${MAX_FILTER_VALUES}`);
  }
  const m = q.eventMetric;
  if (m !== undefined) {
    if (typeof m.name !== 'string' || m.name === '') throw badRequest('eventMetric.name is required');
    if (!METRIC_OPS.includes(m.op)) throw badRequest(`eventMetric.op must be one of ${METRIC_OPS.join(' ')}, got ${JSON.stringify(m.op)}`);
    if (typeof m.value !== 'number' || !Number.isFinite(m.value)) throw badRequest('eventMetric.value must be a finite number');
  }
}

export interface DashboardDeps {
  clock: Clock;
  retentionDays: number;
  /** Saved funnels of the app (the Funnels dashboard). */
  funnels: (appId: string) => Funnel[];
  /** Read `events` only, never the rollups (tests compare the two paths). */
  fromEvents?: boolean;
}

/** The app's saved funnels and the one q.funnelId names (NotFoundException when it names none). */
export function chosenFunnel(q: DashboardQuery, deps: DashboardDeps): { funnel: Funnel | undefined; saved: Funnel[] } {
  const saved = deps.funnels(q.appId);
  let funnel: Funnel | undefined;
  if (q.funnelId !== undefined) {
    funnel = saved.find((f) => f.id === q.funnelId);
    if (!funnel) throw notFound(`funnelId "${q.funnelId}" is not a saved funnel of this app`);
  }
  return { funnel, saved };
}

export async function runDashboard(conn: DuckDBConnection, name: DashboardName, q: DashboardQuery, deps: DashboardDeps): Promise<DashboardResult> {
  validateQuery(name, q);
  validateRange(q.range, deps.clock, deps.retentionDays);
  const c = new QueryContext(conn, q, { fromEvents: deps.fromEvents });
  switch (name) {
    case 'overview':
      return overviewDashboard(c);
    case 'usage':
      return usageDashboard(c);
    case 'revenue':
      return revenueDashboard(c);
    case 'events':
      return eventsDashboard(c);
    case 'funnels': {
      const { funnel, saved } = chosenFunnel(q, deps);
      return funnelsDashboard(c, funnel, saved);
    }
    case 'demographics':
      return demographicsDashboard(c);
    case 'campaigns':
      return campaignsDashboard(c);
    case 'journeys':
      return journeysDashboard(c);
  }
}
