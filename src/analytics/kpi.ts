// Pinpoint's standard KPIs (reference/pinpoint.md §1.5) as SQL over the `events` table: the table of
// every documented kpi-name the event records can answer (campaign, transactional email,
// transactional SMS, journey engagement) and the one function that runs a KPI for a scope and an
// inclusive day range, answering in Pinpoint's BaseKpiResult shape.
//
// Conventions taken from the Developer Guide's examples (analytics-query-results,
// analytics-query-txn-messaging): every value is `Type: "Double"` with a string Value ("62.0"), the
// value Key is the metric name in PascalCase without its grouping suffix (`txn-sms-sent-grouped-by-date`
// → `TxnSmsSent`, `unique-deliveries` → `UniqueDeliveries`), day groups are
// `{Key: "Date", Type: "String", Value: "2019-09-06"}` and campaign groups `{Key: "CampaignId"}`.
// A metric with no data is null and Pinpoint then answers `Rows: []`; a grouped metric leaves out
// the groups whose value is null. Here "no data" means no event of the metric's family (e.g. no
// transactional email event at all) in the range, and a rate is null when its denominator is 0.
//
// Inferred, not documented: rates are fractions (0.75, not 75); the group Keys for country
// (`Country`) and SMS error code (`ErrorCode`); SMS prices are reported in millicents as the records
// carry them (`price_in_millicents_usd`), not converted to dollars.

import type { DuckDBConnection } from '@duckdb/node-api';
import { ApiError, badRequest } from '../http/errors.js';
import type { DateRange, KpiRows, KpiScope } from './types.js';

export type KpiScopeKind = 'app' | 'campaign' | 'journey';

/** Which events a KPI reads. SMS sources are measured per message (a message has several records). */
export type KpiSource = 'campaign' | 'campaign-sms' | 'txn-email' | 'txn-sms' | 'journey-email';

export type KpiGrouping = 'date' | 'campaign' | 'campaign-activity' | 'journey-activity' | 'country' | 'error-code';

export interface KpiDefinition {
  /** The resources (application, campaign, journey metrics) this name is documented for. */
  scopes: readonly KpiScopeKind[];
  source: KpiSource;
  /** An aggregate over the source's rows (see MEASURES); null means "no value". */
  measure: string;
  /** Extra row filter, applied before aggregation. */
  where?: string;
  groupBy?: KpiGrouping;
  /** The Values[].Key and Values[].Type of each row. */
  key: string;
  type: 'Double';
}

/** `kpi-name` syntax from the model: two or more lowercase alphanumeric terms joined by hyphens. */
export const KPI_NAME_PATTERN = /^[a-z0-9]+(-[a-z0-9]+)+$/;

export const PUSH_CHANNELS = `('GCM','APNS','APNS_SANDBOX','APNS_VOIP','APNS_VOIP_SANDBOX','ADM','BAIDU')`;
export const SMS_SENT_TYPES = `('_sms.send','_sms.buffered','_sms.success','_sms.failure')`;
/** Event types whose messages are counted (msgs()); other rows need no message key, which is costly to build. */
export const COUNTED_MESSAGES = `('_email.open','_campaign.opened_notification')`;

/**
 * The aggregate forms the measures are written in, one per SQL dialect (DuckDB below, ClickHouse in
 * clickhouse/kpi.ts), so each measure is defined once for every event store.
 */
export interface MeasureDialect {
  /** Rows matching `cond`. */
  n(cond: string): string;
  /** Distinct messages among rows matching `cond`. */
  msgs(cond: string): string;
  /** Distinct endpoints among rows matching `cond`. */
  endpoints(cond: string): string;
  /** a / b, NULL when b is 0. */
  ratio(a: string, b: string): string;
  /** max(a - b, 0) of two counts. */
  excess(a: string, b: string): string;
  /** Sum of `x` over rows matching `cond`, 0 when there are none. */
  sumWhere(x: string, cond: string): string;
  /** Every row. */
  countAll: string;
  /** The column of the delivery type (`attributes.delivery_type`). */
  deliveryType: string;
}

const DUCKDB: MeasureDialect = {
  n: (cond) => `count(*) FILTER (WHERE ${cond})`,
  msgs: (cond) => `count(DISTINCT msg) FILTER (WHERE ${cond})`,
  endpoints: (cond) => `count(DISTINCT endpoint_id) FILTER (WHERE ${cond})`,
  ratio: (a, b) => `(${a}) / nullif(${b}, 0)`,
  excess: (a, b) => `greatest(${a} - ${b}, 0)`,
  sumWhere: (x, cond) => `coalesce(sum(${x}) FILTER (WHERE ${cond}), 0)`,
  countAll: 'count(*)',
  deliveryType: 'delivery_type',
};

/**
 * The measures, named. Campaign messages: sent = `_campaign.send` records; delivered = successful
 * sends minus hard bounces (Developer Guide: "sent minus hard bounces"). Email messages
 * (transactional, journey): delivered = `_email.send` minus soft and hard bounces and rejections
 * (the Guide's formula). "Messages opened" counts distinct messages, every click counts.
 * SMS measures run over one row per message (price and parts counted once per message).
 */
export function measures(d: MeasureDialect) {
  const { n, msgs, endpoints, ratio, excess } = d;
  const okSend = `t = '_campaign.send' AND send_status = 'SUCCESS'`;
  const hardBounces = n(`t = '_email.hardbounce'`);
  const emailSends = n(`t = '_email.send'`);
  const emailDelivered = excess(emailSends, n(`t IN ('_email.softbounce','_email.hardbounce','_email.rejected')`));
  const price = `coalesce(sum(price), 0)`;
  return {
    campaignSent: n(`t = '_campaign.send'`),
    campaignDelivered: excess(n(okSend), hardBounces),
    campaignDeliveryRate: ratio(excess(n(okSend), hardBounces), n(`t = '_campaign.send'`)),
    campaignUniqueDeliveries: endpoints(okSend),
    campaignEmailOpenRate: ratio(msgs(`t = '_email.open'`), excess(n(`${okSend} AND ${d.deliveryType} = 'EMAIL'`), hardBounces)),
    campaignEmailOpens: msgs(`t = '_email.open'`),
    campaignHardBounceRate: ratio(hardBounces, n(`t = '_campaign.send' AND ${d.deliveryType} = 'EMAIL'`)),
    campaignClicks: n(`t = '_email.click'`),
    campaignPushOpenRate: ratio(msgs(`t = '_campaign.opened_notification'`), n(`${okSend} AND ${d.deliveryType} IN ${PUSH_CHANNELS}`)),
    campaignPushOpens: msgs(`t = '_campaign.opened_notification'`),

    emailSent: emailSends,
    emailDelivered,
    emailDeliveryRate: ratio(emailDelivered, emailSends),
    emailOpened: msgs(`t = '_email.open'`),
    emailUniqueOpens: endpoints(`t = '_email.open'`),
    emailClicked: n(`t = '_email.click'`),
    emailUniqueClicks: endpoints(`t = '_email.click'`),
    emailComplaints: n(`t = '_email.complaint'`),
    emailComplaintRate: ratio(n(`t = '_email.complaint'`), emailSends),
    emailHardBounced: hardBounces,
    emailSoftBounced: n(`t = '_email.softbounce'`),
    emailRejected: n(`t = '_email.rejected'`),
    emailUnsubscribed: n(`t = '_email.unsubscribe'`),

    smsSent: n('sent'),
    smsDelivered: n('delivered'),
    smsDeliveryRate: ratio(n('delivered'), n('sent')),
    smsSentParts: d.sumWhere('parts', 'sent'),
    smsDeliveredParts: d.sumWhere('parts', 'delivered'),
    smsTotalPrice: price,
    smsAveragePrice: ratio(price, n('sent')),
    smsAveragePriceByParts: ratio(price, d.sumWhere('parts', 'sent')),
    smsMessages: d.countAll,
  };
}

export const MEASURES = measures(DUCKDB);

const SOURCE_FILTERS: Record<KpiSource, string> = {
  campaign: `campaign_id IS NOT NULL`,
  'campaign-sms': `starts_with(lower(event_type), '_sms.') AND campaign_id IS NOT NULL`,
  'txn-email': `starts_with(lower(event_type), '_email.') AND campaign_id IS NULL AND journey_id IS NULL`,
  'txn-sms': `starts_with(lower(event_type), '_sms.') AND campaign_id IS NULL AND journey_id IS NULL`,
  'journey-email': `starts_with(lower(event_type), '_email.') AND journey_id IS NOT NULL`,
};

const GROUPINGS: Record<KpiGrouping, { key: string; expr: string }> = {
  date: { key: 'Date', expr: `strftime(day, '%Y-%m-%d')` },
  campaign: { key: 'CampaignId', expr: `campaign_id` },
  'campaign-activity': { key: 'CampaignActivityId', expr: `campaign_activity_id` },
  'journey-activity': { key: 'JourneyActivityId', expr: `journey_activity_id` },
  country: { key: 'Country', expr: `coalesce(attributes->>'iso_country_code', country)` },
  'error-code': { key: 'ErrorCode', expr: `attributes->>'record_status'` },
};

/**
 * One message: the record's message_id when it has one, else the endpoint and the campaign or
 * journey activity (and journey run) that sent to it — one message per endpoint per activity run.
 */
const MESSAGE_KEY = `coalesce(attributes->>'message_id',
  endpoint_id || '/' || coalesce(campaign_activity_id, journey_activity_id, '') || '/' || coalesce(treatment_id, '') || '/' || coalesce(attributes->>'journey_run_id', ''))`;

/** `txn-sms-sent-grouped-by-country` → `TxnSmsSent`. */
export function kpiValueKey(name: string): string {
  return name
    .replace(/-grouped-by-.*$/, '')
    .split('-')
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join('');
}

function build(): Map<string, KpiDefinition> {
  const table = new Map<string, KpiDefinition>();
  const add = (name: string, scopes: KpiScopeKind[], source: KpiSource, measure: string, groupBy?: KpiGrouping, where?: string) => {
    table.set(name, { scopes, source, measure, where, groupBy, key: kpiValueKey(name), type: 'Double' });
  };
  const M = MEASURES;
  const app: KpiScopeKind[] = ['app'];
  const campaign: KpiScopeKind[] = ['campaign'];
  const both: KpiScopeKind[] = ['app', 'campaign'];

  // Application metrics for campaigns, and campaign metrics.
  add('successful-delivery-rate', both, 'campaign', M.campaignDeliveryRate);
  add('successful-delivery-rate-grouped-by-date', both, 'campaign', M.campaignDeliveryRate, 'date');
  add('successful-delivery-rate-grouped-by-campaign-activity', campaign, 'campaign', M.campaignDeliveryRate, 'campaign-activity');
  add('email-open-rate', both, 'campaign', M.campaignEmailOpenRate);
  add('email-open-rate-grouped-by-campaign', app, 'campaign', M.campaignEmailOpenRate, 'campaign');
  add('email-open-rate-grouped-by-campaign-activity', campaign, 'campaign', M.campaignEmailOpenRate, 'campaign-activity');
  add('unique-deliveries', both, 'campaign', M.campaignUniqueDeliveries);
  add('unique-deliveries-grouped-by-campaign', app, 'campaign', M.campaignUniqueDeliveries, 'campaign');
  add('unique-deliveries-grouped-by-date', both, 'campaign', M.campaignUniqueDeliveries, 'date');
  add('unique-deliveries-grouped-by-campaign-activity', campaign, 'campaign', M.campaignUniqueDeliveries, 'campaign-activity');
  add('successful-deliveries-grouped-by-campaign', app, 'campaign', M.campaignDelivered, 'campaign');
  add('successful-deliveries-grouped-by-campaign-activity', campaign, 'campaign', M.campaignDelivered, 'campaign-activity');
  add('push-open-rate', both, 'campaign', M.campaignPushOpenRate);
  add('push-open-rate-grouped-by-campaign', app, 'campaign', M.campaignPushOpenRate, 'campaign');
  add('push-open-rate-grouped-by-campaign-activity', campaign, 'campaign', M.campaignPushOpenRate, 'campaign-activity');
  add('hard-bounce-rate', campaign, 'campaign', M.campaignHardBounceRate);
  add('hard-bounce-rate-grouped-by-campaign-activity', campaign, 'campaign', M.campaignHardBounceRate, 'campaign-activity');
  add('direct-email-opens-grouped-by-campaign-activity', campaign, 'campaign', M.campaignEmailOpens, 'campaign-activity');
  add('clicks-grouped-by-campaign-activity', campaign, 'campaign', M.campaignClicks, 'campaign-activity');
  add('attempted-deliveries-grouped-by-campaign-activity', campaign, 'campaign', M.campaignSent, 'campaign-activity');
  add('direct-push-opens-grouped-by-campaign-activity', campaign, 'campaign', M.campaignPushOpens, 'campaign-activity');
  add('sms-spend', campaign, 'campaign-sms', M.smsTotalPrice);

  // Application metrics for transactional email: each also grouped by date.
  const txnEmail: Array<[string, string]> = [
    ['clicked', M.emailClicked],
    ['complaint-rate', M.emailComplaintRate],
    ['with-complaints', M.emailComplaints],
    ['delivered', M.emailDelivered],
    ['delivery-rate', M.emailDeliveryRate],
    ['hard-bounced', M.emailHardBounced],
    ['opened', M.emailOpened],
    ['sent', M.emailSent],
    ['soft-bounced', M.emailSoftBounced],
    ['unique-clicks', M.emailUniqueClicks],
    ['unique-opens', M.emailUniqueOpens],
  ];
  for (const [what, measure] of txnEmail) {
    add(`txn-emails-${what}`, app, 'txn-email', measure);
    add(`txn-emails-${what}-grouped-by-date`, app, 'txn-email', measure, 'date');
  }

  // Application metrics for transactional SMS.
  add('txn-sms-average-price-grouped-by-country', app, 'txn-sms', M.smsAveragePrice, 'country');
  add('txn-sms-average-price-by-parts-grouped-by-country', app, 'txn-sms', M.smsAveragePriceByParts, 'country');
  add('txn-sms-delivered', app, 'txn-sms', M.smsDelivered);
  add('txn-sms-delivered-grouped-by-country', app, 'txn-sms', M.smsDelivered, 'country');
  add('txn-sms-delivered-grouped-by-date', app, 'txn-sms', M.smsDelivered, 'date');
  add('txn-sms-error-distribution', app, 'txn-sms', M.smsMessages, 'error-code', `t = '_sms.failure'`);
  add('txn-sms-delivery-rate', app, 'txn-sms', M.smsDeliveryRate);
  add('txn-sms-delivery-rate-grouped-by-date', app, 'txn-sms', M.smsDeliveryRate, 'date');
  add('txn-sms-delivered-by-parts', app, 'txn-sms', M.smsDeliveredParts);
  add('txn-sms-delivered-by-parts-grouped-by-country', app, 'txn-sms', M.smsDeliveredParts, 'country');
  add('txn-sms-sent-by-parts', app, 'txn-sms', M.smsSentParts);
  add('txn-sms-sent-by-parts-grouped-by-country', app, 'txn-sms', M.smsSentParts, 'country');
  add('txn-sms-sent', app, 'txn-sms', M.smsSent);
  add('txn-sms-sent-grouped-by-country', app, 'txn-sms', M.smsSent, 'country');
  add('txn-sms-sent-grouped-by-date', app, 'txn-sms', M.smsSent, 'date');
  add('txn-sms-total-price-grouped-by-country', app, 'txn-sms', M.smsTotalPrice, 'country');

  // Journey engagement metrics (email only), each with a per-activity twin.
  const journey: Array<[string, string]> = [
    ['clicked', M.emailClicked],
    ['complained', M.emailComplaints],
    ['delivered', M.emailDelivered],
    ['hardbounced', M.emailHardBounced],
    ['opened', M.emailOpened],
    ['rejected', M.emailRejected],
    ['sent', M.emailSent],
    ['softbounced', M.emailSoftBounced],
    ['unsubscribed', M.emailUnsubscribed],
  ];
  for (const [what, measure] of journey) {
    add(`journey-emails-${what}`, ['journey'], 'journey-email', measure);
    add(`emails-${what}-grouped-by-journey-activity`, ['journey'], 'journey-email', measure, 'journey-activity');
  }
  return table;
}

/** Every supported kpi-name and how it is computed. */
export const KPI_NAMES: ReadonlyMap<string, KpiDefinition> = build();

export function scopeKind(scope: KpiScope): KpiScopeKind {
  return scope.campaignId !== undefined ? 'campaign' : scope.journeyId !== undefined ? 'journey' : 'app';
}

const RESOURCE_NAMES: Record<KpiScopeKind, string> = { app: 'application', campaign: 'campaign', journey: 'journey engagement' };

/**
 * The definition of `name` for this kind of resource. A malformed name is a BadRequestException; a
 * well-formed name that is not a documented metric of this resource is a NotFoundException, because
 * each KPI is its own resource (its ARN ends in `/kpis/daterange/{kpi-name}`).
 */
export function kpiDefinition(kind: KpiScopeKind, name: string): KpiDefinition {
  if (!KPI_NAME_PATTERN.test(name)) {
    throw badRequest(`Invalid kpi-name "${name}": it must be two or more lowercase alphanumeric terms separated by hyphens, e.g. successful-delivery-rate`);
  }
  const def = KPI_NAMES.get(name);
  if (!def || !def.scopes.includes(kind)) {
    throw new ApiError('NotFoundException', 404, `KPI ${name} is not a supported ${RESOURCE_NAMES[kind]} metric`);
  }
  return def;
}

/** Pinpoint's Double as a string: integral values keep one decimal ("62.0"), as in the Guide. */
export function formatDouble(v: number): string {
  return Number.isInteger(v) ? v.toFixed(1) : String(v);
}

/** The SQL for one KPI; parameters $app, $start, $end and $campaign or $journey. */
export function kpiSql(def: KpiDefinition, kind: KpiScopeKind): string {
  const scope = kind === 'campaign' ? `AND campaign_id = $campaign` : kind === 'journey' ? `AND journey_id = $journey` : '';
  const group = def.groupBy ? GROUPINGS[def.groupBy].expr : 'NULL';
  // SMS measures group by message; the others only count messages of COUNTED_MESSAGES.
  const perMessage = def.source === 'txn-sms' || def.source === 'campaign-sms';
  // Send status and delivery type are columns (EVENTS_MESSAGING_COLUMNS), not parsed from `attributes` per row.
  const rows = `
    SELECT lower(event_type) AS t, endpoint_id, ${perMessage ? MESSAGE_KEY : `CASE WHEN lower(event_type) IN ${COUNTED_MESSAGES} THEN ${MESSAGE_KEY} END`} AS msg, ${group} AS g,
      upper(campaign_send_status) AS send_status,
      upper(delivery_type) AS delivery_type,
      TRY_CAST(metrics->>'price_in_millicents_usd' AS DOUBLE) AS price,
      coalesce(TRY_CAST(metrics->>'number_of_message_parts' AS DOUBLE), TRY_CAST(attributes->>'number_of_message_parts' AS DOUBLE)) AS parts
    FROM events
    WHERE app_id = $app AND day BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
      AND ${SOURCE_FILTERS[def.source]} ${scope}`;
  const filtered = `SELECT * FROM base WHERE ${def.where ?? 'true'}${def.groupBy ? ' AND g IS NOT NULL' : ''}`;
  const input = perMessage
    ? `SELECT g, msg, max(price) AS price, coalesce(max(parts), 1) AS parts,
         bool_or(t IN ${SMS_SENT_TYPES}) AS sent, bool_or(t = '_sms.success') AS delivered
       FROM e GROUP BY g, msg`
    : `SELECT * FROM e`;
  return `WITH base AS (${rows}), e AS (${filtered}), measured AS (${input})
    SELECT g, CAST(${def.measure} AS DOUBLE) AS v FROM measured GROUP BY g ORDER BY g`;
}

/** Runs one documented KPI for the scope over the inclusive UTC day range. */
export async function kpi(conn: DuckDBConnection, scope: KpiScope, name: string, range: DateRange): Promise<KpiRows> {
  const kind = scopeKind(scope);
  const def = kpiDefinition(kind, name);
  const params: Record<string, string> = { app: scope.appId, start: range.start, end: range.end };
  if (kind === 'campaign') params.campaign = scope.campaignId!;
  if (kind === 'journey') params.journey = scope.journeyId!;
  const reader = await conn.runAndReadAll(kpiSql(def, kind), params);
  const Rows: KpiRows['Rows'] = [];
  for (const row of reader.getRowObjectsJS()) {
    const v = row.v as number | null;
    if (v === null || !Number.isFinite(v)) continue;
    const Values = [{ Key: def.key, Type: def.type, Value: formatDouble(v) }];
    Rows.push(def.groupBy ? { GroupedBys: [{ Key: GROUPINGS[def.groupBy].key, Type: 'String', Value: String(row.g) }], Values } : { Values });
  }
  return { Rows };
}
