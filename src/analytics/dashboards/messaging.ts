// Campaigns and Journeys dashboards (reference/pinpoint.md §5 "Campaigns", "Journeys"; event types
// §3.3–3.7). Definitions, per campaign (and A/B treatment) or journey:
// - Messages sent: `_campaign.send` (campaigns) / `_journey.send` (journeys), whatever the status.
// - Messages delivered: `_email.delivered` + `_SMS.SUCCESS` + sends with status SUCCESS on the other
//   channels (push, custom): email and SMS report delivery with their own events, so their SUCCESS
//   send is not counted twice.
// - Endpoint deliveries: distinct endpoints with a delivered message.
// - Opens: `_email.open` + `_campaign|_journey.opened_notification`; clicks: `_email.click`. Opens and
//   clicks by the same endpoint in the same clock hour count once (as the console does).
// - Hard bounces: `_email.hardbounce`; opt-outs: `_email.unsubscribe` + `_SMS.OPTOUT`.
// - Delivery rate = delivered ÷ sent; open rate = opens ÷ delivered; bounce rate = hard bounces ÷ sent.
// With campaignId/journeyId the table is per run/activity instead.
// Campaigns (and the Overview's campaign totals) are answered from the campaign rollup
// (campaign-rollup.ts) unless the endpoint-attribute filter is set; the SQL here is the definition it
// must equal (test/analytics-store.test.ts compares the two).

import { campaignMeasures } from '../campaign-rollup.js';
import type { Chart, DashboardResult, DateRange } from '../types.js';
import { column, daily, lineChart, pct, round, tile, type QueryContext, type Row } from './common.js';

function measures(prefix: '_campaign' | '_journey', status: string): string {
  const send = `${prefix}.send`;
  // The attributes read here are columns of `events` (EVENTS_MESSAGING_COLUMNS).
  const ok = `(event_type = '${send}' AND ${status} = 'SUCCESS' AND coalesce(delivery_type, journey_activity_type, '') NOT IN ('EMAIL', 'SMS'))`;
  const delivered = `(event_type IN ('_email.delivered', '_SMS.SUCCESS') OR ${ok})`;
  // A struct of the endpoint and the hour number (floored, also before 1970), not a concatenated
  // string: formatting timestamps as text dominated the scan, and an integer hour beat date_trunc.
  const us = `epoch_us(event_time)`;
  const hour = `{'e': endpoint_id, 'h': ${us} - ((${us} % 3600000000) + 3600000000) % 3600000000}`;
  return `
    count(*) FILTER (WHERE event_type = '${send}') AS sent,
    count(*) FILTER (WHERE ${delivered}) AS delivered,
    count(DISTINCT endpoint_id) FILTER (WHERE ${delivered}) AS endpoint_deliveries,
    count(DISTINCT ${hour}) FILTER (WHERE event_type IN ('_email.open', '${prefix}.opened_notification')) AS opens,
    count(DISTINCT ${hour}) FILTER (WHERE event_type = '_email.click') AS clicks,
    count(*) FILTER (WHERE event_type = '_email.hardbounce') AS hard_bounces,
    count(*) FILTER (WHERE event_type = '_email.softbounce') AS soft_bounces,
    count(*) FILTER (WHERE event_type = '_email.complaint') AS complaints,
    count(*) FILTER (WHERE event_type IN ('_email.unsubscribe', '_SMS.OPTOUT')) AS opt_outs`;
}

const TABLE_COLUMNS = ['Messages sent', 'Messages delivered', 'Endpoint deliveries', 'Opens', 'Clicks', 'Hard bounces', 'Delivery rate (%)', 'Open rate (%)', 'Bounce rate (%)'];

/** ORDER BY ALL's order for the group keys: ascending, NULLs last. */
function compareKeys(a: unknown[], b: unknown[]): number {
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    if (a[i] === null) return 1;
    if (b[i] === null) return -1;
    return String(a[i]) < String(b[i]) ? -1 : 1;
  }
  return 0;
}

function tableRow(key: Array<string | null>, r: Row): Array<string | number | null> {
  const n = (k: string) => Number(r[k] ?? 0);
  return [
    ...key,
    n('sent'), n('delivered'), n('endpoint_deliveries'), n('opens'), n('clicks'), n('hard_bounces'),
    round(pct(n('delivered'), n('sent'))), round(pct(n('opens'), n('delivered'))), round(pct(n('hard_bounces'), n('sent'))),
  ];
}

interface Grouped {
  total: Row;
  /** In ORDER BY ALL order of the group keys g0, g1… */
  perGroup: Row[];
  perDay: Map<string, Row>;
}

async function fromEvents(c: QueryContext, idCol: string, prefix: string, where: string, m: string, group: string[], keys: string[]): Promise<Grouped> {
  // Totals, per-group rows and per-day rows in one scan of the range (GROUPING SETS), not three.
  const rows = await c.all(`
    SELECT grouping(${keys.join(', ')}) AS by_group, grouping(d) AS by_day, ${keys.join(', ')}, CAST(d AS VARCHAR) AS day,
      count(DISTINCT ${idCol}) FILTER (WHERE event_type = '${prefix}.send') AS active, ${m}
    FROM (SELECT *, ${group.map((g, i) => `${g} AS g${i}`).join(', ')}, day AS d FROM events WHERE ${where})
    GROUP BY GROUPING SETS ((), (${keys.join(', ')}), (d))`);
  // grouping() is 0 for the columns a row is grouped by.
  return {
    total: rows.find((r) => Number(r.by_group) !== 0 && Number(r.by_day) !== 0) ?? {},
    perGroup: rows
      .filter((r) => Number(r.by_group) === 0)
      .sort((a, b) => compareKeys(keys.map((k) => a[k]), keys.map((k) => b[k]))),
    perDay: new Map(rows.filter((r) => Number(r.by_day) === 0).map((r) => [String(r.day), r])),
  };
}

async function fromRollup(c: QueryContext, by: 'campaign' | 'run'): Promise<Grouped> {
  const a = await campaignMeasures(c.conn, { appId: c.q.appId, start: c.q.range.start, end: c.q.range.end, campaignId: c.q.campaignId }, by);
  const perGroup: Row[] = a.groups.map((g) => ({ ...g.m, ...Object.fromEntries(g.key.map((k, i) => [`g${i}`, k])) }));
  const keys = a.groups[0]?.key.map((_, i) => `g${i}`) ?? [];
  perGroup.sort((x, y) => compareKeys(keys.map((k) => x[k]), keys.map((k) => y[k])));
  return { total: a.total ?? {}, perGroup, perDay: new Map([...a.days].map(([d, r]) => [d, r as Row])) };
}

/** What a messaging dashboard groups by: per campaign and treatment (or journey), or per run (or activity) of one. */
export function messagingShape(kind: 'campaigns' | 'journeys', one: string | undefined) {
  const campaigns = kind === 'campaigns';
  const group = one === undefined ? (campaigns ? ['campaign_id', `coalesce(treatment_id, '0')`] : ['journey_id']) : [campaigns ? 'campaign_activity_id' : 'journey_activity_id'];
  return {
    campaigns,
    prefix: campaigns ? ('_campaign' as const) : ('_journey' as const),
    idCol: campaigns ? 'campaign_id' : 'journey_id',
    statusCol: campaigns ? 'campaign_send_status' : 'journey_send_status',
    group,
    groupNames: one === undefined ? (campaigns ? ['Campaign', 'Treatment'] : ['Journey']) : [campaigns ? 'Campaign run' : 'Journey activity'],
    keys: group.map((_, i) => `g${i}`),
  };
}

/** A messaging dashboard's tiles and charts from its totals, groups (keys g0..) and days (shared by every event store). */
export function messagingResult(kind: 'campaigns' | 'journeys', one: string | undefined, range: DateRange, days: string[], g: Grouped): DashboardResult {
  const { campaigns, groupNames, keys } = messagingShape(kind, one);
  const { total, perGroup, perDay } = g;
  const n = (k: string) => Number(total[k] ?? 0);
  const title = campaigns ? 'Campaigns' : 'Journeys';
  const charts: Chart[] = [
    {
      id: kind,
      title: one === undefined ? title : `${campaigns ? 'Campaign runs' : 'Journey activities'}: ${one}`,
      kind: 'table',
      columns: [...groupNames, ...TABLE_COLUMNS],
      rows: perGroup.map((r) => tableRow(keys.map((k) => (r[k] === null ? null : String(r[k]))), r)),
    },
    lineChart('messages', 'Messages', days, {
      'Messages sent': daily(days, column(perDay, 'sent')),
      'Messages delivered': daily(days, column(perDay, 'delivered')),
    }),
    lineChart('endpoint-deliveries', 'Endpoint deliveries', days, { 'Endpoint deliveries': daily(days, column(perDay, 'endpoint_deliveries')) }),
  ];
  return {
    dashboard: kind,
    range,
    tiles: [
      tile(`active-${kind}`, campaigns ? 'Active campaigns' : 'Active journeys', n('active')),
      ...messagingTiles(total),
      tile('hard-bounces', 'Hard bounces', n('hard_bounces')),
      tile('soft-bounces', 'Soft bounces', n('soft_bounces')),
      tile('complaints', 'Complaints', n('complaints')),
      tile('opt-outs', 'Opt-outs', n('opt_outs')),
    ],
    charts,
  };
}

async function messagingDashboard(c: QueryContext, kind: 'campaigns' | 'journeys'): Promise<DashboardResult> {
  const one = kind === 'campaigns' ? c.q.campaignId : c.q.journeyId;
  const { campaigns, prefix, idCol, statusCol, group, keys } = messagingShape(kind, one);
  const where = `${c.base()} AND ${idCol} IS NOT NULL${one !== undefined ? ` AND ${idCol} = ${campaigns ? '$campaign' : '$journey'}` : ''}${c.endpointFilter}`;
  const grouped =
    campaigns && c.rollups ? await fromRollup(c, one === undefined ? 'campaign' : 'run') : await fromEvents(c, idCol, prefix, where, measures(prefix, statusCol), group, keys);
  return messagingResult(kind, one, c.q.range, c.days, grouped);
}

export function messagingTiles(r: Row) {
  const n = (k: string) => Number(r[k] ?? 0);
  return [
    tile('messages-sent', 'Messages sent', n('sent')),
    tile('messages-delivered', 'Messages delivered', n('delivered')),
    tile('endpoint-deliveries', 'Endpoint deliveries', n('endpoint_deliveries')),
    tile('delivery-rate', 'Delivery rate', pct(n('delivered'), n('sent')), 'percent'),
    tile('open-rate', 'Open rate', pct(n('opens'), n('delivered')), 'percent'),
    tile('links-clicked', 'Links clicked', n('clicks')),
    tile('bounce-rate', 'Bounce rate', pct(n('hard_bounces'), n('sent')), 'percent'),
  ];
}

/** Campaign totals for the Overview's campaign analytics. */
export async function campaignTotals(c: QueryContext): Promise<Row> {
  if (c.rollups) return (await campaignMeasures(c.conn, { appId: c.q.appId, start: c.q.range.start, end: c.q.range.end }, 'none')).total ?? {};
  const [r] = await c.all(`SELECT ${measures('_campaign', 'campaign_send_status')} FROM events WHERE ${c.base()} AND campaign_id IS NOT NULL${c.endpointFilter}`);
  return r;
}

export const campaignsDashboard = (c: QueryContext) => messagingDashboard(c, 'campaigns');
export const journeysDashboard = (c: QueryContext) => messagingDashboard(c, 'journeys');
