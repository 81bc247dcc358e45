// Pinpoint's KPIs on ClickHouse: every name of kpi.ts's KPI_NAMES (the same table, scopes, sources,
// groupings and answer shape). Each measure is defined once in kpi.ts (`measures`) over a dialect of
// aggregate forms; ClickHouse's is below: countIf/uniqExactIf for FILTER, signed subtraction of
// counts. max() of a condition stands for bool_or, nested subqueries for the CTEs (18.16 has no
// WITH … AS (subquery)), has()/indexOf() on the key/value arrays for `->>`. A KPI's ClickHouse
// measure is found by the text of its DuckDB measure in MEASURES.

import { COUNTED_MESSAGES, MEASURES, SMS_SENT_TYPES, formatDouble, measures, kpiDefinition, scopeKind, type KpiDefinition, type KpiGrouping, type KpiScopeKind, type KpiSource } from '../kpi.js';
import type { DateRange, KpiRows, KpiScope } from '../types.js';
import { EVENTS } from './schema.js';
import { attr, attrNumber, date, metric, str } from './sql.js';
import type { ChQuery } from './store.js';

/** kpi.ts's measures in ClickHouse's dialect (columns: t, endpoint_id, msg, send_status, dtype; SMS: price, parts, sent, delivered). */
export const CH_MEASURES = measures({
  n: (cond) => `countIf(${cond})`,
  // assumeNotNull: on 18.16 an aggregate over a Nullable column whose rows are all NULL answers NULL, not 0.
  msgs: (cond) => `uniqExactIf(assumeNotNull(msg), ${cond} AND msg IS NOT NULL)`,
  endpoints: (cond) => `uniqExactIf(endpoint_id, ${cond})`,
  ratio: (a, b) => `(${a}) / nullIf(${b}, 0)`,
  // Counts are unsigned on ClickHouse: signed before subtracting.
  excess: (a, b) => `greatest(toInt64(toInt64(${a}) - toInt64(${b})), 0)`,
  sumWhere: (x, cond) => `sumIf(${x}, ${cond})`,
  countAll: 'count()',
  deliveryType: 'dtype',
});

const BY_DUCKDB_MEASURE = new Map<string, string>(
  (Object.keys(MEASURES) as Array<keyof typeof MEASURES>).map((k) => [MEASURES[k], CH_MEASURES[k]]),
);

const SOURCE_FILTERS: Record<KpiSource, string> = {
  campaign: `campaign_id IS NOT NULL`,
  'campaign-sms': `startsWith(lower(event_type), '_sms.') AND campaign_id IS NOT NULL`,
  'txn-email': `startsWith(lower(event_type), '_email.') AND campaign_id IS NULL AND journey_id IS NULL`,
  'txn-sms': `startsWith(lower(event_type), '_sms.') AND campaign_id IS NULL AND journey_id IS NULL`,
  'journey-email': `startsWith(lower(event_type), '_email.') AND journey_id IS NOT NULL`,
};

const GROUPINGS: Record<KpiGrouping, { key: string; expr: string }> = {
  date: { key: 'Date', expr: `toString(day)` },
  campaign: { key: 'CampaignId', expr: `campaign_id` },
  'campaign-activity': { key: 'CampaignActivityId', expr: `campaign_activity_id` },
  'journey-activity': { key: 'JourneyActivityId', expr: `journey_activity_id` },
  country: { key: 'Country', expr: `coalesce(${attr('iso_country_code')}, country)` },
  'error-code': { key: 'ErrorCode', expr: attr('record_status') },
};

/** kpi.ts MESSAGE_KEY: the record's message_id, else endpoint / activity / treatment / journey run. */
const MESSAGE_KEY = `coalesce(${attr('message_id')}, concat(endpoint_id, '/', coalesce(campaign_activity_id, journey_activity_id, ''), '/',
  coalesce(treatment_id, ''), '/', coalesce(${attr('journey_run_id')}, '')))`;

/** The SQL of one KPI for a scope (values inlined as literals: 18.16 has no query parameters). */
export function clickhouseKpiSql(def: KpiDefinition, kind: KpiScopeKind, scope: KpiScope, range: DateRange): string {
  const measure = BY_DUCKDB_MEASURE.get(def.measure);
  if (measure === undefined) throw new Error(`KPI measure has no ClickHouse form: ${def.measure}`);
  const where = kind === 'campaign' ? `AND campaign_id = ${str(scope.campaignId!)}` : kind === 'journey' ? `AND journey_id = ${str(scope.journeyId!)}` : '';
  const group = def.groupBy ? GROUPINGS[def.groupBy].expr : `''`;
  const perMessage = def.source === 'txn-sms' || def.source === 'campaign-sms';
  const rows = `
    SELECT lower(event_type) AS t, endpoint_id,
      ${perMessage ? MESSAGE_KEY : `if(lower(event_type) IN ${COUNTED_MESSAGES}, ${MESSAGE_KEY}, NULL)`} AS msg, ${group} AS g,
      upper(campaign_send_status) AS send_status, upper(delivery_type) AS dtype,
      ${metric('price_in_millicents_usd')} AS price0,
      coalesce(${metric('number_of_message_parts')}, ${attrNumber('number_of_message_parts')}) AS parts0
    FROM ${EVENTS}
    WHERE app_id = ${str(scope.appId)} AND day BETWEEN ${date(range.start)} AND ${date(range.end)}
      AND ${SOURCE_FILTERS[def.source]} ${where}`;
  const filtered = `SELECT * FROM (${rows}) WHERE ${def.where ?? '1'}${def.groupBy ? ' AND g IS NOT NULL' : ''}`;
  const input = perMessage
    ? `SELECT g, msg, max(price0) AS price, coalesce(max(parts0), 1) AS parts,
         max(t IN ${SMS_SENT_TYPES}) AS sent, max(t = '_sms.success') AS delivered
       FROM (${filtered}) GROUP BY g, msg`
    : filtered;
  return `SELECT g, toFloat64(${measure}) AS v FROM (${input}) GROUP BY g ORDER BY g`;
}

export async function clickhouseKpi(query: ChQuery, scope: KpiScope, name: string, range: DateRange): Promise<KpiRows> {
  const kind = scopeKind(scope);
  const def = kpiDefinition(kind, name);
  const Rows: KpiRows['Rows'] = [];
  for (const row of await query(clickhouseKpiSql(def, kind, scope, range))) {
    const v = row.v === null ? null : Number(row.v);
    if (v === null || !Number.isFinite(v)) continue;
    const Values = [{ Key: def.key, Type: def.type, Value: formatDouble(v) }];
    Rows.push(def.groupBy ? { GroupedBys: [{ Key: GROUPINGS[def.groupBy].key, Type: 'String', Value: String(row.g) }], Values } : { Values });
  }
  return { Rows };
}
