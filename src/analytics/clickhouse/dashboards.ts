// The dashboards on ClickHouse, all of DASHBOARDS (Overview, Usage, Events, Revenue, Campaigns,
// Journeys, Demographics, Funnels), with the definitions of dashboards/*.ts (their headers say what
// each metric means), read from `events`: there are no rollups here. Each series is the SQL of the
// DuckDB events path (DashboardDeps.fromEvents) in ClickHouse's dialect. 18.16 has no window
// functions, CTEs or GROUPING SETS, so monthly-active steps and 7-day retention take each id's next
// active day from its sorted array of days (withNextDay) instead of lead() (measured on 200k rows:
// expanding every active day over the 30 days it covers, and joining cohorts to return days, took
// 1.7 s and 1.8 s of the Usage dashboard's 3.2 s), and grouped totals are separate queries. Tiles
// and charts are built with the same helpers (common.ts) in the same order as the DuckDB modules;
// test/analytics-event-store.test.ts checks every dashboard equals DuckDB's answer.
//
// Counting and summing queries read `events FINAL` (EVENTS); those a not-yet-merged copy of an
// event cannot change read `events` (EVENTS_ANY; schema.ts says why).

import { badRequest } from '../../http/errors.js';
import { chosenFunnel, validateQuery, validateRange, type DashboardDeps } from '../dashboards.js';
import { funnelsResult } from '../dashboards/funnels.js';
import { column, daily, daysOf, pct, round, tile, type Row } from '../dashboards/common.js';
import { DEMOGRAPHIC_DIMENSIONS, UNKNOWN } from '../dashboards/demographics.js';
import { messagingResult, messagingShape } from '../dashboards/messaging.js';
import { MONTHLY_ACTIVE_DAYS, RETENTION_DAYS_AFTER, WEEKDAYS, usageResult } from '../dashboards/usage.js';
import { overviewResult } from '../dashboards/overview.js';
import { eventsResult } from '../dashboards/events.js';
import { revenueResult } from '../dashboards/revenue.js';
import { DAY_MS, PURCHASE_EVENT, SERVER_EVENT_PATTERN, SESSION_START } from '../rollup.js';
import type { Chart, DashboardName, DashboardQuery, DashboardResult, Funnel } from '../types.js';
import { EVENTS, EVENTS_ANY } from './schema.js';
import { date, metric, num, str, strArray } from './sql.js';
import type { ChQuery } from './store.js';

export const CLICKHOUSE_DASHBOARDS: readonly DashboardName[] = ['overview', 'usage', 'events', 'revenue', 'campaigns', 'journeys', 'demographics', 'funnels'];

/** The query, its days and filters as ClickHouse SQL (values are literals: 18.16 has no parameters). */
class ChContext {
  readonly days: string[];
  constructor(
    readonly run: ChQuery,
    readonly q: DashboardQuery,
  ) {
    this.days = daysOf(q.range.start, q.range.end);
  }

  get start(): string {
    return date(this.q.range.start);
  }

  get end(): string {
    return date(this.q.range.end);
  }

  /** Rows of the app within [start - lookbackDays, end]. */
  base(lookbackDays = 0): string {
    return `app_id = ${str(this.q.appId)} AND day BETWEEN subtractDays(${this.start}, ${lookbackDays | 0}) AND ${this.end}`;
  }

  /** DuckDB's list_has_any(endpoint_attributes[name], values): a missing key reads as an empty list. */
  get endpointFilter(): string {
    const ea = this.q.endpointAttribute;
    return ea ? ` AND hasAny(ep_attr_values[indexOf(ep_attr_keys, ${str(ea.name)})], ${strArray(ea.values)})` : '';
  }

  get eventFilter(): string {
    let s = '';
    const a = this.q.eventAttribute;
    if (a) s += ` AND ${attrIn(a.name, a.values)}`;
    const m = this.q.eventMetric;
    // op comes from a closed set checked by validateQuery, so it can be spliced in.
    if (m) s += ` AND has(metric_keys, ${str(m.name)}) AND metric_values[indexOf(metric_keys, ${str(m.name)})] ${m.op} ${num(m.value)}`;
    return s;
  }

  all(sql: string): Promise<Row[]> {
    return this.run(sql);
  }

  /** Rows as a map from their day (`YYYY-MM-DD`) in column `key` (queries whose day is computed name it otherwise). */
  async byDay(sql: string, key = 'day'): Promise<Map<string, Row>> {
    return new Map((await this.run(sql)).map((r) => [String(r[key]).slice(0, 10), r]));
  }
}

const SESSION_PRED = `event_type = ${str(SESSION_START)}`;

async function activityPredicate(c: ChContext): Promise<string> {
  const r = await c.all(`SELECT 1 AS x FROM ${EVENTS_ANY} WHERE ${c.base(MONTHLY_ACTIVE_DAYS)} AND ${SESSION_PRED} LIMIT 1`);
  return r.length > 0 ? SESSION_PRED : `NOT match(event_type, ${str(SERVER_EVENT_PATTERN)})`;
}

type Id = 'endpoint_id' | 'user_id';

/** Distinct (id, day) pairs of active ids in [start - lookback, end]. */
const activePairs = (c: ChContext, pred: string, id: Id, lookback: number) =>
  `SELECT DISTINCT assumeNotNull(${id}) AS id, day FROM ${EVENTS_ANY} WHERE ${c.base(lookback)} AND ${id} IS NOT NULL AND ${pred}${c.endpointFilter}`;

/** After an id's last active day: a day number no real day reaches. */
const NO_NEXT_DAY = 4_000_000_000;

/**
 * Each id's active days, ascending, as day numbers (`c`), each with the id's next active day (`nx`):
 * one row per active day, as DuckDB's lead() over the id's days gives (18.16 has no window functions).
 * Arrays are passed to ARRAY JOIN as arguments, never captured by a lambda (18.16 prunes a
 * subquery's columns that only a lambda uses: "Unknown identifier").
 */
const withNextDay = (pairs: string) => `
  SELECT id, c, nx FROM (SELECT id, arraySort(groupArray(toUInt32(day))) AS ds FROM (${pairs}) GROUP BY id)
  ARRAY JOIN ds AS c, arrayPushBack(arrayPopFront(ds), toUInt32(${NO_NEXT_DAY})) AS nx`;

const dayOfNumber = (n: unknown) => new Date(Number(n) * DAY_MS).toISOString().slice(0, 10);

async function activeSeries(c: ChContext, pred: string, id: Id) {
  const active = activePairs(c, pred, id, MONTHLY_ACTIVE_DAYS - 1);
  const w = MONTHLY_ACTIVE_DAYS - 1;
  const [dailyRows, steps] = await Promise.all([
    c.byDay(`SELECT day, count() AS n FROM (${active}) WHERE day >= ${c.start} GROUP BY day`),
    // As usage.ts: each active day covers the next 29 days too, cut at the id's next active day so
    // one id's intervals never overlap; a running sum of the +1/-1 steps counts distinct ids per day.
    c.all(`SELECT tupleElement(st, 1) AS d, sum(tupleElement(st, 2)) AS n FROM (
        SELECT arrayJoin([tuple(c, toInt64(1)), tuple(least(toInt64(nx) - 1, toInt64(c) + ${w}) + 1, toInt64(-1))]) AS st FROM (${withNextDay(active)})
      ) GROUP BY d ORDER BY d`),
  ]);
  const monthly: Array<number | null> = [];
  let i = 0;
  let running = 0;
  for (const day of c.days) {
    while (i < steps.length && dayOfNumber(steps[i].d) <= day) running += Number(steps[i++].n);
    monthly.push(running);
  }
  return { daily: daily(c.days, column(dailyRows, 'n')), monthly };
}

async function newSeries(c: ChContext, id: Id): Promise<Array<number | null>> {
  // Endpoints: the first endpoint CreationDate day, else the first stored event's day (usage.ts).
  const first = id === 'endpoint_id'
    ? `coalesce(addDays(toDate('1970-01-01'), intDiv(min(endpoint_created_ms), 86400000)), min(day))`
    : `min(day)`;
  const rows = await c.byDay(`
    SELECT first_day AS day, count() AS n FROM (
      SELECT ${id} AS who, ${first} AS first_day FROM ${EVENTS_ANY} WHERE app_id = ${str(c.q.appId)} AND ${id} IS NOT NULL${c.endpointFilter} GROUP BY who
    ) WHERE first_day BETWEEN ${c.start} AND ${c.end} GROUP BY first_day`);
  return daily(c.days, column(rows, 'n'));
}

async function retentionSeries(c: ChContext, pred: string): Promise<Array<number | null>> {
  const k = RETENTION_DAYS_AFTER;
  // A cohort day's endpoint came back when its next active day is at most k days later.
  const rows = await c.all(`
    SELECT c + ${k} AS d, 100 * sum(nx - c <= ${k}) / count() AS rate FROM (${withNextDay(activePairs(c, pred, 'endpoint_id', k))})
    WHERE c <= toUInt32(subtractDays(${c.end}, ${k})) GROUP BY d`);
  return daily(c.days, new Map(rows.map((r) => [dayOfNumber(r.d), r.rate === null ? null : Number(r.rate)])), null);
}

async function countSeries(c: ChContext, eventType: string): Promise<Array<number | null>> {
  const rows = await c.byDay(
    `SELECT day, count() AS n FROM ${EVENTS} WHERE ${c.base()} AND event_type = ${str(eventType)}${c.endpointFilter} GROUP BY day`,
  );
  return daily(c.days, column(rows, 'n'));
}

async function heatMap(c: ChContext): Promise<Chart> {
  const rows = await c.all(`
    SELECT toDayOfWeek(day) AS dow, intDiv(event_ms - toInt64(toUInt32(day)) * 86400000, 3600000) AS h, count() AS n
    FROM ${EVENTS} WHERE ${c.base()} AND ${SESSION_PRED}${c.endpointFilter} GROUP BY dow, h`);
  const grid = WEEKDAYS.map((d) => [d, ...new Array<number>(24).fill(0)] as Array<string | number>);
  for (const r of rows) grid[Number(r.dow) - 1][Number(r.h) + 1] = Number(r.n);
  const hours = Array.from({ length: 24 }, (_, h) => `${String(h).padStart(2, '0')}:00`);
  return { id: 'session-heat-map', title: 'Session heat map (UTC)', kind: 'heatmap', columns: ['Day of week', ...hours], rows: grid };
}

async function appMetrics(c: ChContext) {
  const pred = await activityPredicate(c);
  const [endpoints, fresh, retention, sessions] = await Promise.all([
    activeSeries(c, pred, 'endpoint_id'),
    newSeries(c, 'endpoint_id'),
    retentionSeries(c, pred),
    countSeries(c, SESSION_START),
  ]);
  return { pred, endpoints, fresh, retention, sessions };
}

const PRICE = `coalesce(${metric('_item_price')}, 0)`;
const QUANTITY = `coalesce(${metric('_quantity')}, 1)`;

async function revenueSeries(c: ChContext) {
  const rows = await c.byDay(`
    SELECT day, sum(${PRICE} * ${QUANTITY}) AS revenue, sum(${QUANTITY}) AS units, count() AS purchases, uniqExact(endpoint_id) AS paying
    FROM ${EVENTS} WHERE ${c.base()} AND event_type = ${str(PURCHASE_EVENT)}${c.endpointFilter} GROUP BY day`);
  return {
    revenue: daily(c.days, column(rows, 'revenue')),
    units: daily(c.days, column(rows, 'units')),
    purchases: daily(c.days, column(rows, 'purchases')),
    paying: daily(c.days, column(rows, 'paying')),
  };
}

/** dashboards/messaging.ts measures(): the Campaigns/Journeys columns, per prefix and send-status column. */
function measures(prefix: '_campaign' | '_journey', status: string): string {
  const send = `${prefix}.send`;
  const ok = `(event_type = '${send}' AND ${status} = 'SUCCESS' AND coalesce(delivery_type, journey_activity_type, '') NOT IN ('EMAIL', 'SMS'))`;
  const delivered = `(event_type IN ('_email.delivered', '_SMS.SUCCESS') OR ${ok})`;
  // Endpoint and floored hour number (also before 1970).
  const hour = `tuple(endpoint_id, event_ms - ((event_ms % 3600000) + 3600000) % 3600000)`;
  return `
      countIf(event_type = '${send}') AS sent,
      countIf(${delivered}) AS delivered,
      uniqExactIf(endpoint_id, ${delivered}) AS endpoint_deliveries,
      uniqExactIf(${hour}, event_type IN ('_email.open', '${prefix}.opened_notification')) AS opens,
      uniqExactIf(${hour}, event_type = '_email.click') AS clicks,
      countIf(event_type = '_email.hardbounce') AS hard_bounces,
      countIf(event_type = '_email.softbounce') AS soft_bounces,
      countIf(event_type = '_email.complaint') AS complaints,
      countIf(event_type IN ('_email.unsubscribe', '_SMS.OPTOUT')) AS opt_outs`;
}

/** Campaign totals for the Overview's campaign analytics. */
async function campaignTotals(c: ChContext): Promise<Row> {
  const [r] = await c.all(`SELECT ${measures('_campaign', 'campaign_send_status')} FROM ${EVENTS} WHERE ${c.base()} AND campaign_id IS NOT NULL${c.endpointFilter}`);
  return r ?? {};
}

/**
 * dashboards/messaging.ts messagingDashboard from `events`: totals, per group and per day as three
 * queries (18.16 has no GROUPING SETS), groups in ascending order with NULLs last as its ORDER BY ALL.
 */
async function messaging(c: ChContext, kind: 'campaigns' | 'journeys'): Promise<DashboardResult> {
  const one = kind === 'campaigns' ? c.q.campaignId : c.q.journeyId;
  const { prefix, idCol, statusCol, group, keys } = messagingShape(kind, one);
  const where = `${c.base()} AND ${idCol} IS NOT NULL${one !== undefined ? ` AND ${idCol} = ${str(one)}` : ''}${c.endpointFilter}`;
  const m = measures(prefix, statusCol);
  const [[total = {}], perGroup, perDay] = await Promise.all([
    c.all(`SELECT uniqExactIf(${idCol}, event_type = '${prefix}.send') AS active, ${m} FROM ${EVENTS} WHERE ${where}`),
    c.all(`SELECT ${group.map((g, i) => `${g} AS g${i}`).join(', ')}, ${m} FROM ${EVENTS} WHERE ${where}
      GROUP BY ${keys.join(', ')} ORDER BY ${keys.map((k) => `${k} ASC NULLS LAST`).join(', ')}`),
    c.byDay(`SELECT day, ${m} FROM ${EVENTS} WHERE ${where} GROUP BY day`),
  ]);
  return messagingResult(kind, one, c.q.range, c.days, { total, perGroup, perDay });
}

async function overview(c: ChContext): Promise<DashboardResult> {
  const [{ endpoints, fresh, retention, sessions }, { revenue }, campaigns] = await Promise.all([appMetrics(c), revenueSeries(c), campaignTotals(c)]);
  return overviewResult(c.q.range, c.days, { endpoints, fresh, retention, sessions, revenue, campaigns });
}

async function usage(c: ChContext): Promise<DashboardResult> {
  const { pred, endpoints, fresh, retention, sessions } = await appMetrics(c);
  const [users, newUsers, signIns, signUps, failures, heat] = await Promise.all([
    activeSeries(c, pred, 'user_id'),
    newSeries(c, 'user_id'),
    countSeries(c, '_userauth.sign_in'),
    countSeries(c, '_userauth.sign_up'),
    countSeries(c, '_userauth.auth_fail'),
    heatMap(c),
  ]);
  return usageResult(c.q.range, c.days, { endpoints, fresh, retention, sessions, users, newUsers, signIns, signUps, failures, heat });
}

async function events(c: ChContext): Promise<DashboardResult> {
  const type = c.q.eventType !== undefined ? ` AND event_type = ${str(c.q.eventType)}` : '';
  const [rows, sessions] = await Promise.all([
    c.byDay(`SELECT day, count() AS n, uniqExact(endpoint_id) AS endpoints
      FROM ${EVENTS} WHERE ${c.base()}${type}${c.eventFilter}${c.endpointFilter} GROUP BY day`),
    countSeries(c, SESSION_START),
  ]);
  return eventsResult(c.q.range, c.days, daily(c.days, column(rows, 'n')), daily(c.days, column(rows, 'endpoints')), sessions);
}

async function revenueDashboard(c: ChContext): Promise<DashboardResult> {
  const [{ revenue, units, purchases, paying }, active] = await Promise.all([
    revenueSeries(c),
    activityPredicate(c).then((pred) => activeSeries(c, pred, 'endpoint_id')).then((a) => a.daily),
  ]);
  return revenueResult(c.q.range, c.days, { revenue, units, purchases, paying, active });
}

/**
 * dashboards/demographics.ts from `events`: per endpoint its latest non-empty value of each
 * dimension in the range (argMaxIf by event time), then the share of endpoints per value. The
 * per-endpoint subquery is inlined in each query (no temporary tables over HTTP without a session).
 */
async function demographics(c: ChContext): Promise<DashboardResult> {
  const channel = c.q.channel !== undefined ? ` AND channel = ${str(c.q.channel)}` : '';
  const latest = DEMOGRAPHIC_DIMENSIONS.map((d) => `argMaxIf(${d.col}, event_ms, ${d.col} IS NOT NULL) AS ${d.col}_latest`).join(', ');
  const demo = `SELECT endpoint_id AS who, ${latest},
      argMaxIf(ep_attr_keys, tuple(event_ms, event_key), notEmpty(ep_attr_keys)) AS ea_keys,
      argMaxIf(ep_attr_values, tuple(event_ms, event_key), notEmpty(ep_attr_keys)) AS ea_values
    FROM ${EVENTS_ANY} WHERE ${c.base()}${channel}${c.endpointFilter} GROUP BY who`;
  const [[{ n: total }], custom, ...dims] = await Promise.all([
    c.all(`SELECT count() AS n FROM (${demo})`),
    c.all(`SELECT k, v, uniqExact(who) AS n FROM (
        SELECT who, k, arrayJoin(vs) AS v FROM (${demo}) ARRAY JOIN ea_keys AS k, ea_values AS vs
      ) GROUP BY k, v ORDER BY k, n DESC, v`),
    ...DEMOGRAPHIC_DIMENSIONS.map((d) =>
      c.all(`SELECT coalesce(${d.col}_latest, ${str(UNKNOWN)}) AS v, count() AS n FROM (${demo}) GROUP BY v ORDER BY n DESC, v`),
    ),
  ]);
  const share = (n: number) => round(pct(n, Number(total)));
  const charts: Chart[] = DEMOGRAPHIC_DIMENSIONS.map((d, i) => ({
    id: d.id,
    title: d.title,
    kind: 'bar',
    columns: [d.title, 'Endpoints', 'Share (%)'],
    rows: dims[i].map((r) => [String(r.v), Number(r.n), share(Number(r.n))]),
  }));
  const byKey = new Map<string, Array<[string, number]>>();
  for (const r of custom) {
    const list = byKey.get(String(r.k)) ?? [];
    list.push([String(r.v), Number(r.n)]);
    byKey.set(String(r.k), list);
  }
  for (const [k, list] of byKey) {
    charts.push({ id: `attribute:${k}`, title: `Custom attribute: ${k}`, kind: 'bar', columns: [k, 'Endpoints', 'Share (%)'], rows: list.map(([v, n]) => [v, n, share(n)]) });
  }
  return { dashboard: 'demographics', range: c.q.range, tiles: [tile('endpoints', 'Endpoints', Number(total))], charts };
}

/** `has` test of an event attribute against a list of values (absent = no match, as list_contains on NULL). */
const attrIn = (name: string, values: readonly string[]) =>
  `has(attr_keys, ${str(name)}) AND has(${strArray(values)}, attr_values[indexOf(attr_keys, ${str(name)})])`;

/**
 * dashboards/funnels.ts funnelSteps: step n's endpoints and the time and key of their earliest
 * qualifying event strictly after step n-1's (later, or the same millisecond and another event).
 * One query per step, each nesting the steps before it (18.16 has no CTEs); they run concurrently.
 */
function funnelSteps(c: ChContext, f: Funnel): Promise<number[]> {
  const matches = f.steps.map((s) => {
    let m = `event_type = ${str(s.eventType)}`;
    for (const a of s.attributes ?? []) m += ` AND ${attrIn(a.name, a.values)}`;
    return `SELECT endpoint_id, event_ms, event_key FROM ${EVENTS_ANY} WHERE ${c.base()} AND ${m}${c.endpointFilter}`;
  });
  const first = (rows: string) => `SELECT endpoint_id, min(event_ms) AS t, argMin(event_key, tuple(event_ms, event_key)) AS k FROM (${rows}) GROUP BY endpoint_id`;
  const steps: string[] = [];
  matches.forEach((m, i) => {
    steps.push(
      i === 0
        ? first(m)
        : first(`SELECT endpoint_id, event_ms, event_key FROM (${m})
            ANY INNER JOIN (SELECT endpoint_id, t AS pt, k AS pk FROM (${steps[i - 1]})) USING endpoint_id
            WHERE event_ms > pt OR (event_ms = pt AND event_key != pk)`),
    );
  });
  return Promise.all(steps.map(async (s) => Number((await c.all(`SELECT count() AS n FROM (${s})`))[0].n)));
}

const RUNNERS: Partial<Record<DashboardName, (c: ChContext, deps: DashboardDeps) => Promise<DashboardResult>>> = {
  overview,
  usage,
  events,
  revenue: revenueDashboard,
  campaigns: (c) => messaging(c, 'campaigns'),
  journeys: (c) => messaging(c, 'journeys'),
  demographics,
  funnels: (c, deps) => {
    const { funnel, saved } = chosenFunnel(c.q, deps);
    return funnelsResult(c.q.range, funnel, saved, (f) => funnelSteps(c, f));
  },
};

/** Validates like runDashboard (the same messages), then runs the ported dashboard. */
export async function runClickHouseDashboard(query: ChQuery, name: DashboardName, q: DashboardQuery, deps: DashboardDeps): Promise<DashboardResult> {
  validateQuery(name, q);
  validateRange(q.range, deps.clock, deps.retentionDays);
  const run = Object.hasOwn(RUNNERS, name) ? RUNNERS[name] : undefined;
  if (!run) throw badRequest(`the ${name} dashboard is not available with analytics on ClickHouse yet (available: ${CLICKHOUSE_DASHBOARDS.join(', ')})`);
  return run(new ChContext(query, q), deps);
}
