// Funnels dashboard (reference/pinpoint.md §5 "Funnels"): for a saved funnel, step n counts the
// endpoints that did steps 1..n in that order within the range (each step's event strictly after
// the previous step's: later time, or the same millisecond and a different event). Each step takes
// the endpoint's earliest qualifying event, which is never worse for the steps after it. Rows give
// the endpoints, the completion % (of step 1) and the drop-off % from the step before. Pinpoint
// says "users"; this counts endpoints, as every other endpoint chart does.

import type { DashboardResult, DateRange, Funnel } from '../types.js';
import { jsonPath, pct, tile, type QueryContext } from './common.js';
import { listValue, type DuckDBValue } from '@duckdb/node-api';

export async function funnelSteps(c: QueryContext, f: Funnel): Promise<number[]> {
  const params: Record<string, DuckDBValue> = {};
  const ctes: string[] = [];
  f.steps.forEach((s, i) => {
    params[`t${i}`] = s.eventType;
    let match = `event_type = $t${i}`;
    (s.attributes ?? []).forEach((a, j) => {
      params[`p${i}_${j}`] = jsonPath(a.name);
      params[`v${i}_${j}`] = listValue(a.values);
      // The loader writes attributes with JSON.stringify and PutEvents only accepts string values,
      // so a matching row holds one of these exact substrings: a cheap test that spares most rows
      // the JSON parse. The JSON test after it stays the definition.
      const needles = a.values.map((v, k) => {
        params[`s${i}_${j}_${k}`] = `${JSON.stringify(a.name)}:${JSON.stringify(v)}`;
        return `contains(attributes, $s${i}_${j}_${k})`;
      });
      match += ` AND (${needles.join(' OR ')})`;
      match += ` AND list_contains($v${i}_${j}::VARCHAR[], json_extract_string(attributes, $p${i}_${j}))`;
    });
    // Only endpoint_id exists on both sides of the join, so the shared filters need no qualifying.
    // rowid tells apart two events of the same millisecond (a string key made the steps 30% slower).
    const where = `${c.base()} AND ${match}${c.endpointFilter}`;
    ctes.push(
      i === 0
        ? `s0 AS (SELECT endpoint_id, min(event_time) AS t, arg_min(rowid, event_time) AS k FROM events WHERE ${where} GROUP BY endpoint_id)`
        : `s${i} AS (SELECT e.endpoint_id, min(e.event_time) AS t, arg_min(e.rowid, e.event_time) AS k
           FROM events e JOIN s${i - 1} p ON p.endpoint_id = e.endpoint_id
           WHERE ${where}
             AND (e.event_time > p.t OR (e.event_time = p.t AND e.rowid <> p.k))
           GROUP BY e.endpoint_id)`,
    );
  });
  const counts = f.steps.map((_, i) => `(SELECT count(*) FROM s${i}) AS n${i}`).join(', ');
  const [row] = await c.all(`WITH ${ctes.join(',\n')} SELECT ${counts}`, params);
  return f.steps.map((_, i) => Number(row[`n${i}`]));
}

export function funnelsDashboard(c: QueryContext, funnel: Funnel | undefined, saved: Funnel[]): Promise<DashboardResult> {
  return funnelsResult(c.q.range, funnel, saved, (f) => funnelSteps(c, f));
}

/** The Funnels dashboard from the step counts (`steps`: the store's own funnelSteps; ClickHouse has its own). */
export async function funnelsResult(
  range: DateRange,
  funnel: Funnel | undefined,
  saved: Funnel[],
  steps: (f: Funnel) => Promise<number[]>,
): Promise<DashboardResult> {
  if (!funnel) {
    return {
      dashboard: 'funnels',
      range,
      tiles: [tile('funnels', 'Funnels', saved.length)],
      charts: [{ id: 'funnels', title: 'Funnels', kind: 'table', columns: ['Funnel', 'Id', 'Steps'], rows: saved.map((f) => [f.name, f.id, f.steps.length]) }],
    };
  }
  const n = await steps(funnel);
  const rows = funnel.steps.map((s, i) => [s.name, n[i], pct(n[i], n[0]), i === 0 ? 0 : pct(n[i - 1] - n[i], n[i - 1])]);
  return {
    dashboard: 'funnels',
    range,
    tiles: [
      tile('funnel-entered', 'Endpoints that started the funnel', n[0] ?? 0),
      tile('funnel-completed', 'Endpoints that completed the funnel', n[n.length - 1] ?? 0),
      tile('funnel-completion', 'Funnel completion', pct(n[n.length - 1], n[0]), 'percent'),
    ],
    charts: [{ id: 'funnel', title: funnel.name, kind: 'funnel', columns: ['Step', 'Endpoints', 'Completion (%)', 'Drop-off (%)'], rows }],
  };
}
