// Overview dashboard (reference/pinpoint.md §5 "Overview"): the app analytics of the Usage
// dashboard (same definitions, usage.ts) plus revenue, and the campaign analytics totals.

import type { DashboardResult, DateRange } from '../types.js';
import { lineChart, mean, sum, tile, type QueryContext } from './common.js';
import { campaignTotals, messagingTiles } from './messaging.js';
import { revenueSeries } from './revenue.js';
import { appMetrics } from './usage.js';

type Series = Array<number | null>;

/** The Overview's tiles and charts from its series (shared by every event store). */
export function overviewResult(
  range: DateRange,
  d: string[],
  m: { endpoints: { daily: Series; monthly: Series }; fresh: Series; retention: Series; sessions: Series; revenue: Series; campaigns: Parameters<typeof messagingTiles>[0] },
): DashboardResult {
  const { endpoints, fresh, retention, sessions, revenue, campaigns } = m;
  return {
    dashboard: 'overview',
    range,
    tiles: [
      tile('daily-active-endpoints', 'Daily active endpoints', mean(endpoints.daily)),
      tile('monthly-active-endpoints', 'Monthly active endpoints', mean(endpoints.monthly)),
      tile('new-endpoints', 'New endpoints', sum(fresh)),
      tile('retention-7-day', '7-day retention rate', mean(retention), 'percent'),
      tile('sessions', 'Sessions', sum(sessions)),
      tile('revenue', 'Revenue', sum(revenue), 'usd'),
      ...messagingTiles(campaigns).map((t) => ({ ...t, id: `campaign-${t.id}`, label: `Campaigns: ${t.label}` })),
    ],
    charts: [
      lineChart('daily-active-endpoints', 'Daily active endpoints', d, { 'Daily active endpoints': endpoints.daily }),
      lineChart('monthly-active-endpoints', 'Monthly active endpoints', d, { 'Monthly active endpoints': endpoints.monthly }),
      lineChart('new-endpoints', 'New endpoints', d, { 'New endpoints': fresh }),
      lineChart('retention-7-day', '7-day retention rate', d, { '7-day retention rate (%)': retention }),
      lineChart('sessions', 'Sessions', d, { Sessions: sessions }),
      lineChart('revenue', 'Revenue (USD)', d, { Revenue: revenue }),
    ],
  };
}

export async function overviewDashboard(c: QueryContext): Promise<DashboardResult> {
  const { endpoints, fresh, retention, sessions } = await appMetrics(c);
  const { revenue } = await revenueSeries(c);
  const campaigns = await campaignTotals(c);
  return overviewResult(c.q.range, c.days, { endpoints, fresh, retention, sessions, revenue, campaigns });
}
