// The analytics REST routes: Pinpoint's three date-range KPI operations (GetApplicationDateRangeKpi,
// GetCampaignDateRangeKpi, GetJourneyDateRangeKpi; reference/pinpoint.md §1.3–1.5) with Pinpoint's
// date-range rules, and the Pinstream extension routes the web console uses (dashboards as JSON or
// CSV, filter lists, saved funnels). Queries themselves live in src/analytics.
//
// Authorization: the KPI operations use their own actions on the KPI's ARN as the Developer Guide
// lists it (`…:apps/{id}/kpis/daterange/{kpi-name}`, `…/campaigns/{id}/kpis/…`, `…/journeys/{id}/kpis/…`),
// so a policy on `apps/{id}*` or `apps/*` covers them. The extension routes
// have no Pinpoint action of their own, so reads are authorized as
// `mobiletargeting:GetApplicationDateRangeKpi` (they show the same kind of data) and funnel
// changes as `mobiletargeting:UpdateApplicationSettings` (funnels are project configuration).

import type { Clock } from '../clock.js';
import { badRequest, notFound } from '../http/errors.js';
import { json, type ApiRequest, type ApiResponse } from '../http/request.js';
import { jsonBody, type Route } from '../http/restjson.js';
import { parseIsoTimestamp } from '../http/shape.js';
import type { Authorizer } from '../iam/authorizer.js';
import {
  DASHBOARDS,
  type Analytics,
  type AttributeFilter,
  type DashboardName,
  type DashboardQuery,
  type DashboardResult,
  type DateRange,
  type Funnel,
  type KpiScope,
  type MetricFilter,
} from '../analytics/types.js';
import type { Apps } from './apps.js';
import { MAX_REQUEST_BYTES } from './limits.js';

/** "Date ranges are inclusive and must be limited to 31 or fewer calendar days." */
export const KPI_MAX_RANGE_DAYS = 31;
/** "…they must start fewer than 90 days from the current day" (Pinpoint keeps analytics 90 days). */
export const KPI_MAX_START_AGE_DAYS = 90;
/** "If you don't specify a date range, Amazon Pinpoint … queries the data for the preceding 31 calendar days." */
export const KPI_DEFAULT_RANGE_DAYS = 31;
/** The console's date picker spans at most the 90 days analytics are kept. */
export const DASHBOARD_MAX_RANGE_DAYS = 90;
/** The console shows dashboards for the last 30 days (today included) unless told otherwise. */
export const DASHBOARD_DEFAULT_RANGE_DAYS = 30;

const DAY_MS = 86_400_000;
const READ_ACTION = 'GetApplicationDateRangeKpi';
const FUNNEL_WRITE_ACTION = 'UpdateApplicationSettings';

export interface AnalyticsRouteServices {
  apps: Apps;
  analytics: Analytics;
  authorizer: Authorizer;
  clock: Clock;
}

const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const dayMs = (day: string) => Date.parse(`${day}T00:00:00Z`);
/** Calendar days from `a` to `b` (UTC); 0 when the same day. */
const daysBetween = (a: string, b: string) => Math.round((dayMs(b) - dayMs(a)) / DAY_MS);

export interface KpiTimeRange {
  /** What the response echoes as StartTime / EndTime. */
  startTime: string;
  endTime: string;
  /** The inclusive UTC days the KPI covers. */
  range: DateRange;
}

/**
 * Pinpoint's date-range rules for the KPI operations: optional `start-time`/`end-time` (ISO 8601),
 * inclusive, at most KPI_MAX_RANGE_DAYS calendar days, starting fewer than KPI_MAX_START_AGE_DAYS
 * days before today; missing bounds default to the KPI_DEFAULT_RANGE_DAYS days ending now.
 */
export function kpiTimeRange(query: URLSearchParams, nowMs: number): KpiTimeRange {
  const parse = (name: string): number | undefined => {
    const raw = query.get(name);
    if (raw === null || raw === '') return undefined;
    const ms = parseIsoTimestamp(raw);
    if (ms === undefined) throw badRequest(`${name} "${raw}" is not an extended ISO 8601 date and time, e.g. 2019-07-19T20:00:00Z`);
    return ms;
  };
  const start = parse('start-time');
  const end = parse('end-time') ?? (start !== undefined ? Math.min(nowMs, dayMs(utcDay(start)) + KPI_DEFAULT_RANGE_DAYS * DAY_MS - 1) : nowMs);
  const startMs = start ?? dayMs(utcDay(end)) - (KPI_DEFAULT_RANGE_DAYS - 1) * DAY_MS;
  if (end < startMs) {
    throw badRequest(`end-time ${new Date(end).toISOString()} is before start-time ${new Date(startMs).toISOString()}`);
  }
  const range = { start: utcDay(startMs), end: utcDay(end) };
  const days = daysBetween(range.start, range.end) + 1;
  if (days > KPI_MAX_RANGE_DAYS) {
    throw badRequest(
      `The date range ${range.start} through ${range.end} spans ${days} calendar days; date ranges must be limited to ${KPI_MAX_RANGE_DAYS} or fewer calendar days`,
    );
  }
  const age = daysBetween(range.start, utcDay(nowMs));
  if (age >= KPI_MAX_START_AGE_DAYS) {
    throw badRequest(
      `start-time ${new Date(startMs).toISOString()} is ${age} days ago; the date range must start fewer than ${KPI_MAX_START_AGE_DAYS} days from the current day`,
    );
  }
  return { startTime: new Date(startMs).toISOString(), endTime: new Date(end).toISOString(), range };
}

/** The console's `start`/`end` (YYYY-MM-DD, inclusive); defaults to the last DASHBOARD_DEFAULT_RANGE_DAYS days. */
export function dashboardRange(query: URLSearchParams, nowMs: number): DateRange {
  const day = (name: string): string | undefined => {
    const raw = query.get(name);
    if (raw === null || raw === '') return undefined;
    const ms = /^\d{4}-\d{2}-\d{2}$/.test(raw) ? dayMs(raw) : NaN;
    // Date.parse rolls 2026-02-30 over to March 2; a real date prints back as itself.
    if (Number.isNaN(ms) || utcDay(ms) !== raw) throw badRequest(`${name} "${raw}" must be a date as YYYY-MM-DD`);
    return raw;
  };
  const end = day('end') ?? utcDay(nowMs);
  const start = day('start') ?? utcDay(dayMs(end) - (DASHBOARD_DEFAULT_RANGE_DAYS - 1) * DAY_MS);
  if (start > end) throw badRequest(`end ${end} is before start ${start}`);
  const days = daysBetween(start, end) + 1;
  if (days > DASHBOARD_MAX_RANGE_DAYS) {
    throw badRequest(`The date range ${start} through ${end} spans ${days} days; dashboards cover at most ${DASHBOARD_MAX_RANGE_DAYS} days`);
  }
  return { start, end };
}

/** `name:v1,v2` → {name, values}. */
function attributeFilter(query: URLSearchParams, param: string): AttributeFilter | undefined {
  const raw = query.get(param);
  if (raw === null || raw === '') return undefined;
  const i = raw.indexOf(':');
  const name = i < 0 ? '' : raw.slice(0, i);
  const values = i < 0 ? [] : raw.slice(i + 1).split(',').filter((v) => v !== '');
  if (name === '' || values.length === 0) throw badRequest(`${param} must be name:value[,value…]; got "${raw}"`);
  return { name, values };
}

const METRIC_OPS: readonly MetricFilter['op'][] = ['=', '<', '<=', '>', '>='];

/** `name:op:value` → {name, op, value}. */
function metricFilter(query: URLSearchParams, param: string): MetricFilter | undefined {
  const raw = query.get(param);
  if (raw === null || raw === '') return undefined;
  const m = /^([^:]+):(<=|>=|=|<|>):(.+)$/.exec(raw);
  const value = m ? Number(m[3]) : NaN;
  if (!m || !Number.isFinite(value)) throw badRequest(`${param} must be name:op:number with op one of ${METRIC_OPS.join(' ')}; got "${raw}"`);
  return { name: m[1], op: m[2] as MetricFilter['op'], value };
}

export function dashboardQuery(appId: string, query: URLSearchParams, nowMs: number): DashboardQuery {
  const q: DashboardQuery = { appId, range: dashboardRange(query, nowMs) };
  const opt = (param: string) => {
    const v = query.get(param);
    return v === null || v === '' ? undefined : v;
  };
  q.eventType = opt('event-type');
  q.eventAttribute = attributeFilter(query, 'event-attribute');
  q.eventMetric = metricFilter(query, 'event-metric');
  q.endpointAttribute = attributeFilter(query, 'endpoint-attribute');
  q.channel = opt('channel');
  q.funnelId = opt('funnel-id');
  q.campaignId = opt('campaign-id');
  q.journeyId = opt('journey-id');
  for (const k of Object.keys(q) as Array<keyof DashboardQuery>) if (q[k] === undefined) delete q[k];
  return q;
}

/** Spreadsheets run cells that start with these as formulas; a leading quote keeps them text. */
const FORMULA_START = /^[=+\-@\t\r]/;

function csvCell(v: string | number | null): string {
  if (v === null) return '';
  if (typeof v === 'number') return String(v);
  const s = FORMULA_START.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One section per chart (title line, column header, rows), the tiles first; sections end with a blank line. */
export function dashboardCsv(d: DashboardResult): string {
  const lines: string[] = [];
  const section = (title: string, columns: string[], rows: Array<Array<string | number | null>>) => {
    lines.push(csvCell(title), columns.map(csvCell).join(','), ...rows.map((r) => r.map(csvCell).join(',')), '');
  };
  if (d.tiles.length > 0) section('Summary', ['id', 'label', 'value', 'unit'], d.tiles.map((t) => [t.id, t.label, t.value, t.unit]));
  for (const c of d.charts) section(c.title, c.columns, c.rows);
  return lines.join('\r\n');
}

export function analyticsRoutes(s: AnalyticsRouteServices): Route[] {
  const { apps, analytics, authorizer, clock } = s;
  const allow = (req: ApiRequest, action: string, appId: string, suffix = '') =>
    authorizer.authorize(req, `mobiletargeting:${action}`, apps.arn(appId) + suffix);

  const kpiRoute = (
    op: 'GetApplicationDateRangeKpi' | 'GetCampaignDateRangeKpi' | 'GetJourneyDateRangeKpi',
    path: string,
    scopeOf: (p: Record<string, string>) => KpiScope,
    resource: (p: Record<string, string>) => string,
  ): Route => ({
    method: 'GET',
    path,
    handler: async (req, p) => {
      const appId = p['application-id'];
      allow(req, op, appId, resource(p));
      apps.require(appId);
      // next-token and page-size are "not supported for application, campaign, and journey
      // metrics": every result is one page, so they are accepted and ignored.
      const t = kpiTimeRange(req.query, clock.now());
      const scope = scopeOf(p);
      const KpiResult = await analytics.kpi(scope, p['kpi-name'], t.range);
      return json(200, {
        ApplicationId: appId,
        ...(scope.campaignId !== undefined ? { CampaignId: scope.campaignId } : {}),
        ...(scope.journeyId !== undefined ? { JourneyId: scope.journeyId } : {}),
        KpiName: p['kpi-name'],
        StartTime: t.startTime,
        EndTime: t.endTime,
        KpiResult,
      });
    },
  });

  const dashboard = async (req: ApiRequest, p: Record<string, string>): Promise<ApiResponse> => {
    const appId = p['application-id'];
    allow(req, READ_ACTION, appId);
    apps.require(appId);
    const csv = p.name.endsWith('.csv');
    const name = csv ? p.name.slice(0, -'.csv'.length) : p.name;
    if (!DASHBOARDS.includes(name as DashboardName)) throw notFound(`Unknown dashboard "${name}"; dashboards are ${DASHBOARDS.join(', ')}`);
    const q = dashboardQuery(appId, req.query, clock.now());
    const result = await analytics.dashboard(name as DashboardName, q);
    if (!csv) return json(200, result);
    return {
      status: 200,
      headers: {
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': `attachment; filename="${appId}-${name}-${q.range.start}-${q.range.end}.csv"`,
      },
      body: dashboardCsv(result),
    };
  };

  return [
    kpiRoute(
      'GetApplicationDateRangeKpi',
      '/v1/apps/{application-id}/kpis/daterange/{kpi-name}',
      (p) => ({ appId: p['application-id'] }),
      (p) => `/kpis/daterange/${p['kpi-name']}`,
    ),
    kpiRoute(
      'GetCampaignDateRangeKpi',
      '/v1/apps/{application-id}/campaigns/{campaign-id}/kpis/daterange/{kpi-name}',
      (p) => ({ appId: p['application-id'], campaignId: p['campaign-id'] }),
      (p) => `/campaigns/${p['campaign-id']}/kpis/daterange/${p['kpi-name']}`,
    ),
    kpiRoute(
      'GetJourneyDateRangeKpi',
      '/v1/apps/{application-id}/journeys/{journey-id}/kpis/daterange/{kpi-name}',
      (p) => ({ appId: p['application-id'], journeyId: p['journey-id'] }),
      (p) => `/journeys/${p['journey-id']}/kpis/daterange/${p['kpi-name']}`,
    ),
    // Pinstream extensions for the web console.
    { method: 'GET', path: '/v1/apps/{application-id}/dashboards/{name}', handler: dashboard },
    {
      method: 'GET',
      path: '/v1/apps/{application-id}/analytics/filters',
      handler: async (req, p) => {
        const appId = p['application-id'];
        allow(req, READ_ACTION, appId);
        apps.require(appId);
        const [eventTypes, names] = await Promise.all([analytics.eventTypes(appId), analytics.filterNames(appId)]);
        return json(200, { eventTypes, ...names });
      },
    },
    {
      method: 'GET',
      path: '/v1/apps/{application-id}/funnels',
      handler: async (req, p) => {
        const appId = p['application-id'];
        allow(req, READ_ACTION, appId);
        apps.require(appId);
        return json(200, { funnels: await analytics.listFunnels(appId) });
      },
    },
    {
      method: 'POST',
      path: '/v1/apps/{application-id}/funnels',
      handler: async (req, p) => {
        const appId = p['application-id'];
        allow(req, FUNNEL_WRITE_ACTION, appId);
        apps.require(appId);
        // The funnel store checks name and steps (and their limits); only the id's type is ours.
        const input = jsonBody(req, MAX_REQUEST_BYTES, 'Funnel') as Omit<Funnel, 'id'> & { id?: unknown };
        if (input.id !== undefined && (typeof input.id !== 'string' || input.id === '')) throw badRequest('id must be a non-empty string when given');
        const id = input.id as string | undefined;
        const updating = id !== undefined && (await analytics.listFunnels(appId)).some((f) => f.id === id);
        return json(updating ? 200 : 201, await analytics.saveFunnel(appId, { ...input, id }));
      },
    },
    {
      method: 'DELETE',
      path: '/v1/apps/{application-id}/funnels/{funnel-id}',
      handler: async (req, p) => {
        const appId = p['application-id'];
        allow(req, FUNNEL_WRITE_ACTION, appId);
        apps.require(appId);
        if (!(await analytics.deleteFunnel(appId, p['funnel-id']))) throw notFound(`Funnel ${p['funnel-id']} not found`);
        return { status: 204 };
      },
    },
  ];
}

