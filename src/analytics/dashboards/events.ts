// Events dashboard (reference/pinpoint.md §5 "Events"): for the chosen event type (all events when
// none is chosen) with the event attribute, event metric and endpoint attribute filters: event
// count per day, endpoints reporting it per day, and events per session (event count ÷ that day's
// `_session.start` count, under the same endpoint filter).

import type { DashboardResult, DateRange } from '../types.js';
import { column, daily, lineChart, mean, ratio, sum, tile, type QueryContext } from './common.js';
import { countSeries, perDay } from './usage.js';

export async function eventsDashboard(c: QueryContext): Promise<DashboardResult> {
  const type = c.q.eventType !== undefined ? ` AND event_type = $event_type` : '';
  const rows = await c.byDay(`
    SELECT CAST(day AS VARCHAR) AS day, count(*) AS n, count(DISTINCT endpoint_id) AS endpoints
    FROM events WHERE ${c.base()}${type}${c.eventFilter}${c.endpointFilter} GROUP BY day`);
  const count = daily(c.days, column(rows, 'n'));
  const endpoints = daily(c.days, column(rows, 'endpoints'));
  const sessions = await countSeries(c, '_session.start');
  return eventsResult(c.q.range, c.days, count, endpoints, sessions);
}

/** The Events dashboard's tiles and charts from its series (shared by every event store). */
export function eventsResult(range: DateRange, d: string[], count: Array<number | null>, endpoints: Array<number | null>, sessions: Array<number | null>): DashboardResult {
  const perSession = perDay(count, sessions);
  const first = count[0] ?? 0;
  const last = count[count.length - 1] ?? 0;
  return {
    dashboard: 'events',
    range,
    tiles: [
      tile('event-count', 'Event count', sum(count)),
      tile('event-count-average', 'Event count (average per day)', mean(count)),
      tile('event-count-change', 'Event count change', first === 0 ? null : ((last - first) / first) * 100, 'percent'),
      tile('endpoint-count', 'Endpoint count (average per day)', mean(endpoints)),
      tile('events-per-session', 'Events per session', ratio(sum(count), sum(sessions)), 'ratio'),
    ],
    charts: [
      lineChart('event-count', 'Event count', d, { 'Event count': count }),
      lineChart('endpoint-count', 'Endpoint count', d, { 'Endpoint count': endpoints }),
      lineChart('events-per-session', 'Events per session', d, { 'Events per session': perSession }),
    ],
  };
}
