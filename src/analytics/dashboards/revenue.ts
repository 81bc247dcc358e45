// Revenue dashboard (reference/pinpoint.md §5 "Revenue"), all from `_monetization.purchase`:
// revenue = Σ _item_price × _quantity (1 when absent), summed as sent (no currency conversion);
// units = Σ _quantity; purchases = event count; paying users = distinct endpoints that purchased.
// "Per endpoint" metrics divide by daily active endpoints (the usage rule), "per paying user" by
// paying endpoints; tiles divide the period totals.

import type { DashboardResult, DateRange } from '../types.js';
import { column, daily, lineChart, ratio, sum, tile, type QueryContext } from './common.js';
import { PURCHASE_EVENT } from '../rollup.js';
import { activeSeries, activityPredicate, distinctPerDay, fromRollups, perDay } from './usage.js';

export { PURCHASE_EVENT };

const PRICE = `coalesce(TRY_CAST(json_extract(metrics, '$._item_price') AS DOUBLE), 0)`;
const QUANTITY = `coalesce(TRY_CAST(json_extract(metrics, '$._quantity') AS DOUBLE), 1)`;

export async function revenueSeries(c: QueryContext) {
  if (fromRollups(c)) {
    const [rows, paying] = await Promise.all([
      c.byDay(`SELECT CAST(day AS VARCHAR) AS day, sum(revenue) AS revenue, sum(units) AS units, sum(n) AS purchases
        FROM daily_counts WHERE ${c.base()} AND event_type = '${PURCHASE_EVENT}' GROUP BY day`),
      distinctPerDay(c, 'purchase:e'),
    ]);
    return {
      revenue: daily(c.days, column(rows, 'revenue')),
      units: daily(c.days, column(rows, 'units')),
      purchases: daily(c.days, column(rows, 'purchases')),
      paying,
    };
  }
  const rows = await c.byDay(`
    SELECT CAST(day AS VARCHAR) AS day, sum(${PRICE} * ${QUANTITY}) AS revenue, sum(${QUANTITY}) AS units,
      count(*) AS purchases, count(DISTINCT endpoint_id) AS paying
    FROM events WHERE ${c.base()} AND event_type = '${PURCHASE_EVENT}'${c.endpointFilter} GROUP BY day`);
  return {
    revenue: daily(c.days, column(rows, 'revenue')),
    units: daily(c.days, column(rows, 'units')),
    purchases: daily(c.days, column(rows, 'purchases')),
    paying: daily(c.days, column(rows, 'paying')),
  };
}

type Series = Array<number | null>;

/** The Revenue dashboard's tiles and charts from its series (shared by every event store). */
export function revenueResult(range: DateRange, d: string[], m: { revenue: Series; units: Series; purchases: Series; paying: Series; active: Series }): DashboardResult {
  const { revenue, units, purchases, paying, active } = m;
  return {
    dashboard: 'revenue',
    range,
    tiles: [
      tile('revenue', 'Revenue', sum(revenue), 'usd'),
      tile('revenue-per-endpoint', 'Revenue per endpoint', ratio(sum(revenue), sum(active)), 'usd'),
      tile('paying-users', 'Paying users', sum(paying)),
      tile('revenue-per-paying-user', 'Revenue per paying user', ratio(sum(revenue), sum(paying)), 'usd'),
      tile('units-sold', 'Units sold', sum(units)),
      tile('units-sold-per-endpoint', 'Units sold per endpoint', ratio(sum(units), sum(active)), 'ratio'),
      tile('purchases', 'Purchases', sum(purchases)),
      tile('purchases-per-endpoint', 'Purchases per endpoint', ratio(sum(purchases), sum(paying)), 'ratio'),
    ],
    charts: [
      lineChart('revenue', 'Revenue (USD)', d, { Revenue: revenue }),
      lineChart('revenue-per-endpoint', 'Revenue per endpoint', d, { 'Revenue per endpoint': perDay(revenue, active) }),
      lineChart('paying-users', 'Paying users', d, { 'Paying users': paying }),
      lineChart('revenue-per-paying-user', 'Revenue per paying user', d, { 'Revenue per paying user': perDay(revenue, paying) }),
      lineChart('units-sold', 'Units sold', d, { 'Units sold': units }),
      lineChart('units-sold-per-endpoint', 'Units sold per endpoint', d, { 'Units sold per endpoint': perDay(units, active) }),
      lineChart('purchases', 'Purchases', d, { Purchases: purchases }),
      lineChart('purchases-per-endpoint', 'Purchases per endpoint', d, { 'Purchases per endpoint': perDay(purchases, paying) }),
    ],
  };
}

export async function revenueDashboard(c: QueryContext): Promise<DashboardResult> {
  const { revenue, units, purchases, paying } = await revenueSeries(c);
  const active = (await activeSeries(c, await activityPredicate(c), 'endpoint_id')).daily;
  return revenueResult(c.q.range, c.days, { revenue, units, purchases, paying, active });
}
