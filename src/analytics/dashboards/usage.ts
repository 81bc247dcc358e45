// Usage and Overview app metrics (reference/pinpoint.md §5 "Overview", "Usage"):
// - Active: an endpoint is active on a day when it opened the app that day. An app that reports
//   sessions (any `_session.start` in the 30 days before the range or in it) opens the app with
//   `_session.start`; an app that never does is judged by any event it sends itself (not the
//   service's own messaging events, SERVER_EVENT_PATTERN), which is the closest signal it gives.
// - Daily active endpoints/users: distinct endpoint_id / user_id active that day.
// - Monthly active: distinct active over the 30 days ending that day (computed from per-endpoint
//   coverage intervals, not a 30× self-join).
// - New endpoints: endpoints whose endpoint.CreationDate (else first stored event) falls on the day;
//   new users: user ids whose first stored event falls on the day.
// - 7-day retention rate on day D: of the endpoints active on D−7, the % active again on D−6..D.
// - Sticky factor: daily ÷ monthly active endpoints. Sessions: `_session.start` count.
// - Sessions per endpoint/user: sessions ÷ daily active endpoints/users.
// - Session heat map: `_session.start` by ISO weekday (Mon..Sun) × hour in UTC. Pinpoint uses the
//   endpoint's local time; the event table has no time zone column, so UTC is shown and said so.
// - Sign-ins / sign-ups / authentication failures: `_userauth.sign_in|sign_up|auth_fail` per day.
// Every metric honours the endpoint-attribute filter.
//
// Without that filter every series here is read from the rollups (rollup.ts: bitmaps of active
// ids per day, counts per day/hour/type, first-seen days); with it, from `events` (the same
// definitions in SQL; test/analytics-metrics.test.ts checks that both paths answer alike).

import { Bitmap, DAY_MS, SESSION_START, type BitmapKind } from '../rollup.js';
import type { Chart, DashboardResult, DateRange, Tile } from '../types.js';
import { SERVER_EVENT_PATTERN, column, daily, dayString, lineChart, mean, ratio, sum, tile, type QueryContext } from './common.js';

/** Monthly-active window, in days ending with the day itself. */
export const MONTHLY_ACTIVE_DAYS = 30;
/** Retention looks this many days after the cohort day. */
export const RETENTION_DAYS_AFTER = 7;

export const WEEKDAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];

const SESSION_PRED = `event_type = '${SESSION_START}'`;

/** The SQL predicate choosing the events that make an endpoint active (see header). */
export async function activityPredicate(c: QueryContext): Promise<string> {
  const table = c.rollups ? 'daily_counts' : 'events';
  const r = await c.all(`SELECT 1 AS x FROM ${table} WHERE ${c.base(MONTHLY_ACTIVE_DAYS)} AND event_type = '${SESSION_START}' LIMIT 1`);
  return r.length > 0 ? SESSION_PRED : `NOT regexp_matches(event_type, '${SERVER_EVENT_PATTERN}')`;
}

/** Whether the rollups answer (they cannot apply the endpoint-attribute filter). */
export const fromRollups = (c: QueryContext) => c.rollups;

const dayNumber = (d: string) => Date.parse(d + 'T00:00:00Z') / DAY_MS;

/** The bitmap for `pred` and `id` of each day in [start - lookbackDays, end], by day number. */
export async function bitmaps(c: QueryContext, kind: BitmapKind, lookbackDays: number): Promise<Map<number, Bitmap>> {
  const rows = await c.all(
    `SELECT day - DATE '1970-01-01' AS d, bits FROM activity_bitmaps WHERE ${c.base(lookbackDays)} AND kind = $kind`,
    { kind },
  );
  return new Map(rows.map((r) => [Number(r.d), Bitmap.from(r.bits as Uint8Array)]));
}

function kindOf(pred: string, id: 'endpoint_id' | 'user_id'): BitmapKind {
  return `${pred === SESSION_PRED ? 'session' : 'app'}:${id === 'endpoint_id' ? 'e' : 'u'}`;
}

/** OR of the bitmaps of days [from, to]. */
function union(maps: Map<number, Bitmap>, from: number, to: number): Bitmap {
  const parts: Bitmap[] = [];
  for (let d = from; d <= to; d++) {
    const m = maps.get(d);
    if (m) parts.push(m);
  }
  return Bitmap.or(parts);
}

/** Distinct ids per day of the range in one bitmap kind (paying endpoints, …). */
export async function distinctPerDay(c: QueryContext, kind: BitmapKind): Promise<Array<number | null>> {
  const maps = await bitmaps(c, kind, 0);
  return c.days.map((d) => maps.get(dayNumber(d))?.count() ?? 0);
}

export interface ActiveSeries {
  daily: Array<number | null>;
  monthly: Array<number | null>;
}

/** Daily and 30-day active counts of `id` (endpoint_id or user_id) for every day of the range. */
export async function activeSeries(c: QueryContext, pred: string, id: 'endpoint_id' | 'user_id'): Promise<ActiveSeries> {
  if (fromRollups(c)) {
    const maps = await bitmaps(c, kindOf(pred, id), MONTHLY_ACTIVE_DAYS - 1);
    const days = c.days.map(dayNumber);
    return {
      daily: days.map((d) => maps.get(d)?.count() ?? 0),
      monthly: days.map((d) => union(maps, d - (MONTHLY_ACTIVE_DAYS - 1), d).count()),
    };
  }
  const active = `SELECT DISTINCT ${id} AS id, day FROM events WHERE ${c.base(MONTHLY_ACTIVE_DAYS - 1)} AND ${id} IS NOT NULL AND ${pred}${c.endpointFilter}`;
  const dailyRows = await c.byDay(`SELECT CAST(day AS VARCHAR) AS day, count(*) AS n FROM (${active}) WHERE day >= $start::DATE GROUP BY day`);
  // Each active day covers the next 29 days too; cut at the id's next active day so one id's
  // intervals never overlap, then a running sum of +1/-1 steps counts distinct ids per day.
  const steps = await c.all(`
    WITH a AS (${active}),
    iv AS (SELECT day AS s, least(coalesce(lead(day) OVER (PARTITION BY id ORDER BY day) - 1, day + ${MONTHLY_ACTIVE_DAYS - 1}), day + ${MONTHLY_ACTIVE_DAYS - 1}) AS e FROM a),
    d AS (SELECT s AS d, 1 AS c FROM iv UNION ALL SELECT e + 1, -1 FROM iv)
    SELECT CAST(d AS VARCHAR) AS day, sum(c) AS c FROM d GROUP BY d ORDER BY d`);
  const monthly: Array<number | null> = [];
  let i = 0;
  let running = 0;
  for (const day of c.days) {
    while (i < steps.length && dayString(steps[i].day) <= day) running += Number(steps[i++].c);
    monthly.push(running);
  }
  return { daily: daily(c.days, column(dailyRows, 'n')), monthly };
}

/** New endpoints (or users) per day. */
export async function newSeries(c: QueryContext, id: 'endpoint_id' | 'user_id'): Promise<Array<number | null>> {
  if (fromRollups(c)) {
    const first = id === 'endpoint_id' ? `coalesce(created_day, first_day)` : `first_day`;
    const rows = await c.byDay(`
      SELECT CAST(f AS VARCHAR) AS day, count(*) AS n FROM (
        SELECT ${first} AS f FROM activity_ids WHERE app_id = $app AND kind = '${id === 'endpoint_id' ? 'e' : 'u'}'
      ) WHERE f BETWEEN $start::DATE AND $end::DATE GROUP BY f`);
    return daily(c.days, column(rows, 'n'));
  }
  const first = id === 'endpoint_id' ? `coalesce(CAST(min(endpoint_created) AS DATE), min(day))` : `min(day)`;
  const rows = await c.byDay(`
    SELECT CAST(first_day AS VARCHAR) AS day, count(*) AS n FROM (
      SELECT ${id}, ${first} AS first_day FROM events WHERE app_id = $app AND ${id} IS NOT NULL${c.endpointFilter} GROUP BY ${id}
    ) WHERE first_day BETWEEN $start::DATE AND $end::DATE GROUP BY first_day`);
  return daily(c.days, column(rows, 'n'));
}

/** 7-day retention rate (%) per day; null where the cohort day had no active endpoints. */
export async function retentionSeries(c: QueryContext, pred: string): Promise<Array<number | null>> {
  const k = RETENTION_DAYS_AFTER;
  if (fromRollups(c)) {
    const maps = await bitmaps(c, kindOf(pred, 'endpoint_id'), k);
    return c.days.map(dayNumber).map((d) => {
      const cohort = maps.get(d - k);
      const n = cohort?.count() ?? 0;
      return cohort === undefined || n === 0 ? null : (100 * cohort.and(union(maps, d - k + 1, d)).count()) / n;
    });
  }
  const rows = await c.byDay(`
    WITH a AS (SELECT DISTINCT endpoint_id AS id, day FROM events WHERE ${c.base(k)} AND ${pred}${c.endpointFilter}),
    cohort AS (SELECT id, day FROM a WHERE day <= $end::DATE - ${k}),
    back AS (SELECT DISTINCT c.id, c.day FROM cohort c JOIN a x ON x.id = c.id AND x.day > c.day AND x.day <= c.day + ${k})
    SELECT CAST(c.day + ${k} AS VARCHAR) AS day, 100.0 * count(b.id) / count(*) AS rate
    FROM cohort c LEFT JOIN back b ON b.id = c.id AND b.day = c.day GROUP BY c.day`);
  return daily(c.days, column(rows, 'rate'), null);
}

/** Count of one event type per day (endpoint-attribute filter applied). */
export async function countSeries(c: QueryContext, eventType: string): Promise<Array<number | null>> {
  const rows = await c.byDay(
    fromRollups(c)
      ? `SELECT CAST(day AS VARCHAR) AS day, sum(n) AS n FROM daily_counts WHERE ${c.base()} AND event_type = $et GROUP BY day`
      : `SELECT CAST(day AS VARCHAR) AS day, count(*) AS n FROM events WHERE ${c.base()} AND event_type = $et${c.endpointFilter} GROUP BY day`,
    { et: eventType },
  );
  return daily(c.days, column(rows, 'n'));
}

export async function heatMap(c: QueryContext): Promise<Chart> {
  const rows = await c.all(
    fromRollups(c)
      ? `SELECT isodow(day) AS dow, hour AS h, sum(n) AS n FROM daily_counts WHERE ${c.base()} AND event_type = '${SESSION_START}' GROUP BY ALL`
      : `SELECT isodow(event_time) AS dow, hour(event_time) AS h, count(*) AS n FROM events
         WHERE ${c.base()} AND event_type = '${SESSION_START}'${c.endpointFilter} GROUP BY ALL`,
  );
  const grid = WEEKDAYS.map((d) => [d, ...new Array<number>(24).fill(0)] as Array<string | number>);
  for (const r of rows) grid[Number(r.dow) - 1][Number(r.h) + 1] = Number(r.n);
  const hours = Array.from({ length: 24 }, (_, h) => `${String(h).padStart(2, '0')}:00`);
  return { id: 'session-heat-map', title: 'Session heat map (UTC)', kind: 'heatmap', columns: ['Day of week', ...hours], rows: grid };
}

export function perDay(a: Array<number | null>, b: Array<number | null>): Array<number | null> {
  return a.map((x, i) => ratio(x, b[i]));
}

/** The app-analytics part shared by Overview and Usage. */
export async function appMetrics(c: QueryContext) {
  const pred = await activityPredicate(c);
  const [endpoints, fresh, retention, sessions] = await Promise.all([
    activeSeries(c, pred, 'endpoint_id'),
    newSeries(c, 'endpoint_id'),
    retentionSeries(c, pred),
    countSeries(c, '_session.start'),
  ]);
  return { pred, endpoints, fresh, retention, sessions };
}

export async function usageDashboard(c: QueryContext): Promise<DashboardResult> {
  const { pred, endpoints, fresh, retention, sessions } = await appMetrics(c);
  const [users, newUsers, signIns, signUps, failures] = await Promise.all([
    activeSeries(c, pred, 'user_id'),
    newSeries(c, 'user_id'),
    countSeries(c, '_userauth.sign_in'),
    countSeries(c, '_userauth.sign_up'),
    countSeries(c, '_userauth.auth_fail'),
  ]);
  return usageResult(c.q.range, c.days, { endpoints, fresh, retention, sessions, users, newUsers, signIns, signUps, failures, heat: await heatMap(c) });
}

type Series = Array<number | null>;

/** The Usage dashboard's tiles and charts from its series (shared by every event store). */
export function usageResult(
  range: DateRange,
  d: string[],
  m: { endpoints: { daily: Series; monthly: Series }; fresh: Series; retention: Series; sessions: Series; users: { daily: Series; monthly: Series }; newUsers: Series; signIns: Series; signUps: Series; failures: Series; heat: Chart },
): DashboardResult {
  const { endpoints, fresh, retention, sessions, users, newUsers, signIns, signUps, failures, heat } = m;
  const sticky = perDay(endpoints.daily, endpoints.monthly);
  const perEndpoint = perDay(sessions, endpoints.daily);
  const perUser = perDay(sessions, users.daily);
  const tiles: Tile[] = [
    tile('daily-active-endpoints', 'Daily active endpoints', mean(endpoints.daily)),
    tile('monthly-active-endpoints', 'Monthly active endpoints', mean(endpoints.monthly)),
    tile('new-endpoints', 'New endpoints', sum(fresh)),
    tile('daily-active-users', 'Daily active users', mean(users.daily)),
    tile('monthly-active-users', 'Monthly active users', mean(users.monthly)),
    tile('new-users', 'New users', sum(newUsers)),
    tile('retention-7-day', '7-day retention rate', mean(retention), 'percent'),
    tile('sticky-factor', 'Sticky factor', mean(sticky), 'ratio'),
    tile('sessions', 'Sessions', sum(sessions)),
    tile('sessions-per-endpoint', 'Sessions per endpoint', ratio(sum(sessions), sum(endpoints.daily)), 'ratio'),
    tile('sessions-per-user', 'Sessions per user', ratio(sum(sessions), sum(users.daily)), 'ratio'),
    tile('sign-ins', 'Sign-ins', sum(signIns)),
    tile('sign-ups', 'Sign-ups', sum(signUps)),
    tile('authentication-failures', 'Authentication failures', sum(failures)),
  ];
  const charts: Chart[] = [
    lineChart('daily-active-endpoints', 'Daily active endpoints', d, { 'Daily active endpoints': endpoints.daily }),
    lineChart('monthly-active-endpoints', 'Monthly active endpoints', d, { 'Monthly active endpoints': endpoints.monthly }),
    lineChart('new-endpoints', 'New endpoints', d, { 'New endpoints': fresh }),
    lineChart('daily-active-users', 'Daily active users', d, { 'Daily active users': users.daily }),
    lineChart('monthly-active-users', 'Monthly active users', d, { 'Monthly active users': users.monthly }),
    lineChart('new-users', 'New users', d, { 'New users': newUsers }),
    lineChart('retention-7-day', '7-day retention rate', d, { '7-day retention rate (%)': retention }),
    lineChart('sticky-factor', 'Sticky factor', d, { 'Sticky factor': sticky }),
    lineChart('sessions', 'Sessions', d, { Sessions: sessions }),
    lineChart('sessions-per-endpoint', 'Sessions per endpoint', d, { 'Sessions per endpoint': perEndpoint }),
    lineChart('sessions-per-user', 'Sessions per user', d, { 'Sessions per user': perUser }),
    heat,
    lineChart('authentication', 'Authentication', d, { 'Sign-ins': signIns, 'Sign-ups': signUps, 'Authentication failures': failures }),
  ];
  return { dashboard: 'usage', range, tiles, charts };
}
