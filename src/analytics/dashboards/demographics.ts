// Demographics dashboard (reference/pinpoint.md §5 "Demographics", filter: channel): the share of
// distinct endpoints seen in the range per platform, app version, device model, device make,
// country and each value of each custom endpoint attribute. An endpoint counts once per chart, with
// its latest non-empty value in the range (devices get upgraded; the newest state is what it is now).
// Custom-attribute shares can add up to more than 100%: an attribute holds a list of values.
//
// Without the channel and endpoint-attribute filters, and when the range ends at or after the app's
// latest event, the per-endpoint values come from `endpoint_profiles` (rollup.ts): a value counts
// when the event it came from is in the range, which is then the same answer as arg_max over the
// range's events. Otherwise (or with DashboardDeps.fromEvents) the range's events are read.

import { DAY_MS } from '../rollup.js';
import type { Chart, DashboardResult } from '../types.js';
import { pct, round, tile, type QueryContext } from './common.js';

export const DEMOGRAPHIC_DIMENSIONS: Array<{ id: string; title: string; col: string }> = [
  { id: 'platform', title: 'Platform', col: 'platform' },
  { id: 'app-version', title: 'App version', col: 'app_version' },
  { id: 'device-model', title: 'Device model', col: 'model' },
  { id: 'device-make', title: 'Device make', col: 'make' },
  { id: 'country', title: 'User location (country)', col: 'country' },
];

export const UNKNOWN = 'Unknown';

/** Whether endpoint_profiles answers this query exactly (see header). */
export async function fromProfiles(c: QueryContext, startMs: number, endMs: number): Promise<boolean> {
  if (!c.rollups || c.q.channel !== undefined) return false;
  const [{ t }] = await c.all(`SELECT max(last_t) AS t FROM endpoint_profiles WHERE app_id = $app`);
  return t === null || Number(t) < endMs + DAY_MS;
}

export async function demographicsDashboard(c: QueryContext): Promise<DashboardResult> {
  const startMs = Date.parse(c.q.range.start + 'T00:00:00Z');
  if (await fromProfiles(c, startMs, Date.parse(c.q.range.end + 'T00:00:00Z'))) {
    const inRange = (col: string) => `CASE WHEN ${col}_t >= $start_ms THEN ${col} END`;
    await c.all(
      `CREATE OR REPLACE TEMP TABLE demo AS
      SELECT idx AS endpoint_id, ${DEMOGRAPHIC_DIMENSIONS.map((d) => `${inRange(d.col)} AS ${d.col}`).join(', ')}, ${inRange('endpoint_attributes')} AS ea
      FROM endpoint_profiles WHERE app_id = $app AND last_t >= $start_ms`,
      { start_ms: startMs },
    );
  } else {
    const channel = c.q.channel !== undefined ? ` AND channel = $channel` : '';
    const latest = DEMOGRAPHIC_DIMENSIONS.map((d) => `arg_max(${d.col}, event_time) FILTER (WHERE ${d.col} IS NOT NULL) AS ${d.col}`).join(', ');
    await c.all(`CREATE OR REPLACE TEMP TABLE demo AS
      SELECT endpoint_id, ${latest},
        arg_max(endpoint_attributes, event_time) FILTER (WHERE endpoint_attributes IS NOT NULL AND endpoint_attributes <> '{}') AS ea
      FROM events WHERE ${c.base()}${channel}${c.endpointFilter} GROUP BY endpoint_id`);
  }
  try {
    const [{ n: total }] = await c.all(`SELECT count(*) AS n FROM demo`);
    const charts: Chart[] = [];
    for (const d of DEMOGRAPHIC_DIMENSIONS) {
      const rows = await c.all(`SELECT coalesce(${d.col}, '${UNKNOWN}') AS v, count(*) AS n FROM demo GROUP BY ALL ORDER BY n DESC, v`);
      charts.push({ id: d.id, title: d.title, kind: 'bar', columns: [d.title, 'Endpoints', 'Share (%)'], rows: rows.map((r) => [String(r.v), Number(r.n), round(pct(Number(r.n), Number(total)))]) });
    }
    const custom = await c.all(`
      SELECT key AS k, v, count(DISTINCT endpoint_id) AS n FROM (
        SELECT endpoint_id, j.key, unnest(TRY_CAST(j.value AS VARCHAR[])) AS v FROM demo, json_each(demo.ea) j WHERE ea IS NOT NULL
      ) GROUP BY ALL ORDER BY k, n DESC, v`);
    const byKey = new Map<string, Array<[string, number]>>();
    for (const r of custom) {
      const list = byKey.get(String(r.k)) ?? [];
      list.push([String(r.v), Number(r.n)]);
      byKey.set(String(r.k), list);
    }
    for (const [k, list] of byKey) {
      charts.push({
        id: `attribute:${k}`,
        title: `Custom attribute: ${k}`,
        kind: 'bar',
        columns: [k, 'Endpoints', 'Share (%)'],
        rows: list.map(([v, n]) => [v, n, round(pct(n, Number(total)))]),
      });
    }
    return { dashboard: 'demographics', range: c.q.range, tiles: [tile('endpoints', 'Endpoints', Number(total))], charts };
  } finally {
    await c.all(`DROP TABLE IF EXISTS demo`);
  }
}
