// Pinpoint's date-range KPIs: the KPI table and its SQL against a real DuckDB holding a known event
// set (test/helpers/kpi-events.ts, answers worked out by hand), Pinpoint's date-range rules, and
// the REST routes end to end with the official Pinpoint SDK client and signed requests.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { EVENTS_DDL, type KpiRows, type KpiScope } from '../src/analytics/types.js';
import { KPI_NAMES, KPI_NAME_PATTERN, formatDouble, kpi, kpiValueKey } from '../src/analytics/kpi.js';
import { ApiError } from '../src/http/errors.js';
import {
  DASHBOARD_DEFAULT_RANGE_DAYS,
  DASHBOARD_MAX_RANGE_DAYS,
  KPI_DEFAULT_RANGE_DAYS,
  KPI_MAX_RANGE_DAYS,
  KPI_MAX_START_AGE_DAYS,
  dashboardCsv,
  dashboardQuery,
  dashboardRange,
  kpiTimeRange,
} from '../src/pinpoint/kpi-routes.js';
import { D0, D1, D2, FIXTURE, IDS, NOW } from './helpers/kpi-events.js';
import { pinpointClient, startTestServer, type TestServer } from './helpers/server.js';
import { assertRestError, signedFetch } from './helpers/signed.js';
import { ManualClock } from '../src/clock.js';
import { MAX_FUNNEL_STEPS } from '../src/analytics/funnels.js';
import {
  CreateAppCommand,
  GetApplicationDateRangeKpiCommand,
  GetCampaignDateRangeKpiCommand,
  GetJourneyDateRangeKpiCommand,
  PutEventsCommand,
} from '@aws-sdk/client-pinpoint';
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient, PutUserPolicyCommand } from '@aws-sdk/client-iam';

type Creds = { accessKeyId: string; secretAccessKey: string };

const APP = 'kpiapp';
const OTHER_APP = 'otherapp';

async function loadFixture(conn: DuckDBConnection, appId: string): Promise<void> {
  let i = 0;
  for (const e of FIXTURE) {
    const a = e.attributes ?? {};
    await conn.run(
      `INSERT INTO events (app_id, event_key, event_type, event_time, arrival_time, day, endpoint_id, attributes, metrics,
         endpoint_attributes, campaign_id, campaign_activity_id, treatment_id, journey_id, journey_activity_id,
         campaign_send_status, journey_send_status, delivery_type, journey_activity_type)
       VALUES ($app, $key, $type, CAST($at AS TIMESTAMP), CAST($at AS TIMESTAMP), CAST(CAST($at AS TIMESTAMP) AS DATE), $endpoint,
         CAST($attrs AS JSON), CAST($metrics AS JSON), CAST('{}' AS JSON), $campaign, $activity, $treatment, $journey, $jactivity,
         $send_status, $jsend_status, $delivery_type, $jactivity_type)`,
      {
        app: appId,
        key: `${e.endpoint}/${i++}`,
        type: e.type,
        at: e.at.replace('T', ' ').replace('Z', ''),
        endpoint: e.endpoint,
        attrs: JSON.stringify(a),
        metrics: JSON.stringify(e.metrics ?? {}),
        campaign: a.campaign_id ?? null,
        activity: a.campaign_activity_id ?? null,
        treatment: a.treatment_id ?? null,
        journey: a.journey_id ?? null,
        jactivity: a.journey_activity_id ?? null,
        // The messaging columns the loader fills from the same attributes (EVENTS_MESSAGING_COLUMNS).
        send_status: a.campaign_send_status ?? null,
        jsend_status: a.journey_send_status ?? null,
        delivery_type: a.delivery_type ?? null,
        jactivity_type: a.journey_activity_type ?? null,
      },
    );
  }
}

/** Rows as [group value, metric value] (group undefined for single-value metrics). */
function pairs(r: KpiRows): Array<[string | undefined, string]> {
  return r.Rows.map((row) => [row.GroupedBys?.[0]?.Value, row.Values[0].Value]);
}

describe('KPI SQL over the events table', () => {
  let instance: DuckDBInstance;
  let conn: DuckDBConnection;
  const range = { start: D1, end: D2 };
  const app: KpiScope = { appId: APP };
  const c = (campaignId: string): KpiScope => ({ appId: APP, campaignId });
  const j: KpiScope = { appId: APP, journeyId: IDS.J1 };
  const q = (scope: KpiScope, name: string, r = range) => kpi(conn, scope, name, r).then(pairs);

  before(async () => {
    instance = await DuckDBInstance.create(':memory:');
    conn = await instance.connect();
    await conn.run(EVENTS_DDL);
    await loadFixture(conn, APP);
    // The same events under another app must never leak into APP's answers.
    await loadFixture(conn, OTHER_APP);
  });
  after(() => {
    conn.closeSync();
    instance.closeSync();
  });

  test('answers in the documented shape: Double values as strings, Key from the metric name', async () => {
    const r = await kpi(conn, app, 'unique-deliveries', range);
    assert.deepEqual(r, { Rows: [{ Values: [{ Key: 'UniqueDeliveries', Type: 'Double', Value: '6.0' }] }] });
    const g = await kpi(conn, app, 'txn-emails-sent-grouped-by-date', range);
    assert.deepEqual(g.Rows[0], { GroupedBys: [{ Key: 'Date', Type: 'String', Value: D1 }], Values: [{ Key: 'TxnEmailsSent', Type: 'Double', Value: '4.0' }] });
  });

  test('application metrics for campaigns', async () => {
    // Sends 8 (C1 5, C2 2, C3 1), successful 7, one hard bounce: delivered 6.
    assert.deepEqual(await q(app, 'successful-delivery-rate'), [[undefined, '0.75']]);
    assert.deepEqual(await q(app, 'successful-delivery-rate-grouped-by-date'), [[D1, '0.6666666666666666'], [D2, '1.0']]);
    assert.deepEqual(await q(app, 'unique-deliveries-grouped-by-date'), [[D1, '5.0'], [D2, '2.0']]);
    assert.deepEqual(await q(app, 'unique-deliveries-grouped-by-campaign'), [[IDS.C1, '4.0'], [IDS.C2, '2.0'], [IDS.C3, '1.0']]);
    assert.deepEqual(await q(app, 'successful-deliveries-grouped-by-campaign'), [[IDS.C1, '3.0'], [IDS.C2, '2.0'], [IDS.C3, '1.0']]);
    // Opened messages (e1 twice counts once) ÷ delivered email (4 successful − 1 hard bounce).
    assert.deepEqual(await q(app, 'email-open-rate'), [[undefined, '0.6666666666666666']]);
    // C2 and C3 sent no email: their rate is null, so their rows are left out.
    assert.deepEqual(await q(app, 'email-open-rate-grouped-by-campaign'), [[IDS.C1, '0.6666666666666666']]);
    assert.deepEqual(await q(app, 'push-open-rate'), [[undefined, '0.5']]);
    assert.deepEqual(await q(app, 'push-open-rate-grouped-by-campaign'), [[IDS.C2, '0.5']]);
  });

  test('campaign metrics are scoped to the campaign and grouped by run', async () => {
    assert.deepEqual(await q(c(IDS.C1), 'successful-delivery-rate'), [[undefined, '0.6']]);
    assert.deepEqual(await q(c(IDS.C1), 'hard-bounce-rate'), [[undefined, '0.2']]);
    assert.deepEqual(await q(c(IDS.C1), 'hard-bounce-rate-grouped-by-campaign-activity'), [['c1run1', '0.2']]);
    assert.deepEqual(await q(c(IDS.C1), 'email-open-rate'), [[undefined, '0.6666666666666666']]);
    assert.deepEqual(await q(c(IDS.C1), 'unique-deliveries'), [[undefined, '4.0']]);
    assert.deepEqual(await q(c(IDS.C1), 'attempted-deliveries-grouped-by-campaign-activity'), [['c1run1', '5.0']]);
    assert.deepEqual(await q(c(IDS.C1), 'successful-deliveries-grouped-by-campaign-activity'), [['c1run1', '3.0']]);
    assert.deepEqual(await q(c(IDS.C1), 'direct-email-opens-grouped-by-campaign-activity'), [['c1run1', '2.0']]);
    assert.deepEqual(await q(c(IDS.C1), 'clicks-grouped-by-campaign-activity'), [['c1run1', '3.0']]);
    // C1 sent no push: null, so no rows.
    assert.deepEqual(await q(c(IDS.C1), 'push-open-rate'), []);
    assert.deepEqual(await q(c(IDS.C2), 'direct-push-opens-grouped-by-campaign-activity'), [['c2run1', '1.0']]);
    assert.deepEqual(await q(c(IDS.C3), 'sms-spend'), [[undefined, '1935.0']]);
    assert.deepEqual(await q(c('no-such-campaign'), 'unique-deliveries'), []);
  });

  test('the day range is inclusive and filters by the event day', async () => {
    assert.deepEqual(await q(c(IDS.C2), 'unique-deliveries'), [[undefined, '2.0']]);
    assert.deepEqual(await q(c(IDS.C2), 'unique-deliveries', { start: D0, end: D2 }), [[undefined, '3.0']]);
    assert.deepEqual(await q(c(IDS.C2), 'unique-deliveries', { start: D2, end: D2 }), [[undefined, '2.0']]);
    assert.deepEqual(await q(c(IDS.C2), 'unique-deliveries', { start: D1, end: D1 }), []);
  });

  test('transactional email metrics', async () => {
    const expect: Record<string, string> = {
      'txn-emails-sent': '6.0',
      'txn-emails-delivered': '4.0', // 6 sent − 1 soft − 1 hard − 0 rejected
      'txn-emails-delivery-rate': '0.6666666666666666',
      'txn-emails-opened': '2.0', // t1's two opens are one message
      'txn-emails-unique-opens': '2.0',
      'txn-emails-clicked': '2.0', // every click counts
      'txn-emails-unique-clicks': '1.0',
      'txn-emails-with-complaints': '1.0',
      'txn-emails-complaint-rate': '0.16666666666666666',
      'txn-emails-hard-bounced': '1.0',
      'txn-emails-soft-bounced': '1.0',
    };
    for (const [name, v] of Object.entries(expect)) assert.deepEqual(await q(app, name), [[undefined, v]], name);
    assert.deepEqual(await q(app, 'txn-emails-delivered-grouped-by-date'), [[D1, '3.0'], [D2, '1.0']]);
    // D2 has transactional email data but no opens: a real 0, not a missing row.
    assert.deepEqual(await q(app, 'txn-emails-opened-grouped-by-date'), [[D1, '2.0'], [D2, '0.0']]);
  });

  test('transactional SMS metrics, per message and by country', async () => {
    assert.deepEqual(await q(app, 'txn-sms-sent'), [[undefined, '5.0']]);
    assert.deepEqual(await q(app, 'txn-sms-delivered'), [[undefined, '2.0']]);
    assert.deepEqual(await q(app, 'txn-sms-delivery-rate'), [[undefined, '0.4']]);
    assert.deepEqual(await q(app, 'txn-sms-delivery-rate-grouped-by-date'), [[D1, '0.5'], [D2, '0.0']]);
    assert.deepEqual(await q(app, 'txn-sms-sent-grouped-by-date'), [[D1, '4.0'], [D2, '1.0']]);
    assert.deepEqual(await q(app, 'txn-sms-delivered-grouped-by-date'), [[D1, '2.0'], [D2, '0.0']]);
    assert.deepEqual(await q(app, 'txn-sms-sent-grouped-by-country'), [['DE', '2.0'], ['US', '3.0']]);
    assert.deepEqual(await q(app, 'txn-sms-delivered-grouped-by-country'), [['DE', '0.0'], ['US', '2.0']]);
    assert.deepEqual(await q(app, 'txn-sms-total-price-grouped-by-country'), [['DE', '500.0'], ['US', '1935.0']]);
    assert.deepEqual(await q(app, 'txn-sms-average-price-grouped-by-country'), [['DE', '250.0'], ['US', '645.0']]);
    assert.deepEqual(await q(app, 'txn-sms-sent-by-parts'), [[undefined, '6.0']]);
    assert.deepEqual(await q(app, 'txn-sms-sent-by-parts-grouped-by-country'), [['DE', '2.0'], ['US', '4.0']]);
    assert.deepEqual(await q(app, 'txn-sms-delivered-by-parts'), [[undefined, '3.0']]);
    assert.deepEqual(await q(app, 'txn-sms-delivered-by-parts-grouped-by-country'), [['DE', '0.0'], ['US', '3.0']]);
    assert.deepEqual(await q(app, 'txn-sms-average-price-by-parts-grouped-by-country'), [['DE', '250.0'], ['US', '483.75']]);
    assert.deepEqual(await q(app, 'txn-sms-error-distribution'), [['BLOCKED', '1.0'], ['UNREACHABLE', '1.0']]);
    const countryKey = (await kpi(conn, app, 'txn-sms-sent-grouped-by-country', range)).Rows[0].GroupedBys![0];
    assert.deepEqual(countryKey, { Key: 'Country', Type: 'String', Value: 'DE' });
  });

  test('journey engagement metrics', async () => {
    const expect: Record<string, string> = {
      'journey-emails-sent': '3.0',
      'journey-emails-delivered': '2.0',
      'journey-emails-hardbounced': '1.0',
      'journey-emails-opened': '2.0',
      'journey-emails-unsubscribed': '1.0',
      'journey-emails-clicked': '0.0',
      'journey-emails-rejected': '0.0',
    };
    for (const [name, v] of Object.entries(expect)) assert.deepEqual(await q(j, name), [[undefined, v]], name);
    const r = await kpi(conn, j, 'emails-opened-grouped-by-journey-activity', range);
    assert.deepEqual(pairs(r), [['ja1', '2.0'], ['ja2', '0.0']]);
    assert.equal(r.Rows[0].GroupedBys![0].Key, 'JourneyActivityId');
    assert.equal(r.Rows[0].Values[0].Key, 'EmailsOpened');
    assert.deepEqual(await q(j, 'emails-sent-grouped-by-journey-activity'), [['ja1', '2.0'], ['ja2', '1.0']]);
  });

  test('no data is an empty Rows list', async () => {
    assert.deepEqual(await kpi(conn, { appId: 'empty-app' }, 'successful-delivery-rate', range), { Rows: [] });
    assert.deepEqual(await kpi(conn, { appId: 'empty-app' }, 'txn-sms-sent-grouped-by-country', range), { Rows: [] });
  });

  test('a malformed name is a BadRequestException; an unknown or other-resource name a NotFoundException', async () => {
    const rejects = (scope: KpiScope, name: string, code: string, status: number) =>
      assert.rejects(kpi(conn, scope, name, range), (e: unknown) => e instanceof ApiError && e.code === code && e.status === status);
    await rejects(app, 'Successful_Delivery_Rate', 'BadRequestException', 400);
    await rejects(app, 'rate', 'BadRequestException', 400);
    await rejects(app, 'no-such-metric', 'NotFoundException', 404);
    // Documented for campaigns only / journeys only / applications only.
    await rejects(app, 'hard-bounce-rate', 'NotFoundException', 404);
    await rejects(app, 'journey-emails-opened', 'NotFoundException', 404);
    await rejects(c(IDS.C1), 'txn-sms-sent', 'NotFoundException', 404);
    await rejects(c(IDS.C1), 'unique-deliveries-grouped-by-campaign', 'NotFoundException', 404);
  });

  test('every documented KPI name runs at its documented resources', async () => {
    // reference/pinpoint.md §1.5: 10 app campaign + 22 txn email + 16 txn SMS + 18 campaign + 18 journey.
    assert.equal(KPI_NAMES.size, 10 + 22 + 16 + 18 + 18 - 6 /* names both application and campaign metrics */);
    for (const [name, def] of KPI_NAMES) {
      assert.match(name, KPI_NAME_PATTERN);
      assert.equal(def.key, kpiValueKey(name));
      for (const kind of def.scopes) {
        const scope = kind === 'app' ? app : kind === 'campaign' ? c(IDS.C1) : j;
        const r = await kpi(conn, scope, name, range);
        for (const row of r.Rows) {
          assert.equal(typeof row.Values[0].Value, 'string', name);
          assert.ok(Number.isFinite(Number(row.Values[0].Value)), name);
          assert.equal(row.GroupedBys !== undefined, def.groupBy !== undefined, name);
        }
      }
    }
  });

  test('value keys and number formatting follow the Developer Guide examples', () => {
    assert.equal(kpiValueKey('txn-sms-sent-grouped-by-date'), 'TxnSmsSent');
    assert.equal(kpiValueKey('unique-deliveries'), 'UniqueDeliveries');
    assert.equal(kpiValueKey('txn-emails-sent'), 'TxnEmailsSent');
    assert.equal(formatDouble(1368), '1368.0');
    assert.equal(formatDouble(0.75), '0.75');
  });
});

describe('KPI date-range rules', () => {
  const qs = (o: Record<string, string>) => new URLSearchParams(o);
  const badRequest = (fn: () => unknown, message: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof ApiError && e.code === 'BadRequestException' && e.status === 400 && message.test(e.message));

  test(`inclusive UTC days, at most KPI_MAX_RANGE_DAYS (${KPI_MAX_RANGE_DAYS}) calendar days`, () => {
    const ok = kpiTimeRange(qs({ 'start-time': '2026-02-18T20:00:00Z', 'end-time': '2026-03-20T01:00:00Z' }), NOW);
    assert.deepEqual(ok.range, { start: '2026-02-18', end: '2026-03-20' }); // 31 days
    assert.equal(ok.startTime, '2026-02-18T20:00:00.000Z');
    assert.equal(ok.endTime, '2026-03-20T01:00:00.000Z');
    badRequest(() => kpiTimeRange(qs({ 'start-time': '2026-02-17T23:59:59Z', 'end-time': '2026-03-20T00:00:00Z' }), NOW), /32 calendar days.*31 or fewer/);
  });

  test(`the start must be fewer than KPI_MAX_START_AGE_DAYS (${KPI_MAX_START_AGE_DAYS}) days ago`, () => {
    const today = new Date(NOW);
    const daysAgo = (n: number) => new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - n)).toISOString();
    assert.equal(kpiTimeRange(qs({ 'start-time': daysAgo(KPI_MAX_START_AGE_DAYS - 1), 'end-time': daysAgo(KPI_MAX_START_AGE_DAYS - 5) }), NOW).range.start, daysAgo(89).slice(0, 10));
    badRequest(() => kpiTimeRange(qs({ 'start-time': daysAgo(KPI_MAX_START_AGE_DAYS), 'end-time': daysAgo(KPI_MAX_START_AGE_DAYS - 5) }), NOW), /90 days ago.*fewer than 90 days/);
  });

  test(`no range means the KPI_DEFAULT_RANGE_DAYS (${KPI_DEFAULT_RANGE_DAYS}) days ending now`, () => {
    const t = kpiTimeRange(qs({}), NOW);
    assert.deepEqual(t.range, { start: '2026-02-18', end: '2026-03-20' });
    assert.equal(t.endTime, new Date(NOW).toISOString());
    assert.equal(t.startTime, '2026-02-18T00:00:00.000Z');
    // Only an end: the 31 days ending there. Only a start: up to 31 days from it, not past now.
    assert.deepEqual(kpiTimeRange(qs({ 'end-time': '2026-03-01T05:00:00Z' }), NOW).range, { start: '2026-01-30', end: '2026-03-01' });
    assert.deepEqual(kpiTimeRange(qs({ 'start-time': '2026-03-15T05:00:00Z' }), NOW).range, { start: '2026-03-15', end: '2026-03-20' });
    assert.deepEqual(kpiTimeRange(qs({ 'start-time': '2026-01-01T05:00:00Z' }), NOW).range, { start: '2026-01-01', end: '2026-01-31' });
  });

  test('end before start and unparseable times are rejected', () => {
    badRequest(() => kpiTimeRange(qs({ 'start-time': '2026-03-10T00:00:00Z', 'end-time': '2026-03-09T23:59:59Z' }), NOW), /before start-time/);
    badRequest(() => kpiTimeRange(qs({ 'start-time': 'yesterday' }), NOW), /start-time "yesterday" is not an extended ISO 8601/);
  });

  test(`dashboard ranges: YYYY-MM-DD, default ${DASHBOARD_DEFAULT_RANGE_DAYS} days, at most DASHBOARD_MAX_RANGE_DAYS (${DASHBOARD_MAX_RANGE_DAYS})`, () => {
    assert.deepEqual(dashboardRange(qs({}), NOW), { start: '2026-02-19', end: '2026-03-20' });
    assert.deepEqual(dashboardRange(qs({ start: '2025-12-21', end: '2026-03-20' }), NOW), { start: '2025-12-21', end: '2026-03-20' }); // 90 days
    badRequest(() => dashboardRange(qs({ start: '2025-12-20', end: '2026-03-20' }), NOW), /91 days; dashboards cover at most 90/);
    badRequest(() => dashboardRange(qs({ start: '2026-02-30' }), NOW), /YYYY-MM-DD/);
    badRequest(() => dashboardRange(qs({ end: '2026-13-01' }), NOW), /YYYY-MM-DD/);
    badRequest(() => dashboardRange(qs({ start: '20260301' }), NOW), /YYYY-MM-DD/);
    badRequest(() => dashboardRange(qs({ start: '2026-03-02', end: '2026-03-01' }), NOW), /before start/);
  });

  test('dashboard filters parse from the query string', () => {
    const q = dashboardQuery('a1', qs({ 'event-type': 'pageView', 'event-attribute': 'url:/a,/b', 'event-metric': 'elapsed:>=:2.5', 'endpoint-attribute': 'plan:pro', channel: 'EMAIL' }), NOW);
    assert.deepEqual(q, {
      appId: 'a1',
      range: { start: '2026-02-19', end: '2026-03-20' },
      eventType: 'pageView',
      eventAttribute: { name: 'url', values: ['/a', '/b'] },
      eventMetric: { name: 'elapsed', op: '>=', value: 2.5 },
      endpointAttribute: { name: 'plan', values: ['pro'] },
      channel: 'EMAIL',
    });
    badRequest(() => dashboardQuery('a1', qs({ 'event-metric': 'elapsed:~:2' }), NOW), /event-metric must be name:op:number/);
    badRequest(() => dashboardQuery('a1', qs({ 'event-attribute': 'url' }), NOW), /event-attribute must be name:value/);
  });

  test('CSV export: a section per chart with its column header, cells escaped', () => {
    const csv = dashboardCsv({
      dashboard: 'events',
      range: { start: D1, end: D2 },
      tiles: [{ id: 'events', label: 'Event count', value: 3, unit: 'count' }],
      charts: [{ id: 'c', title: 'Events, "daily"', kind: 'line', columns: ['day', 'count'], rows: [[D1, 1], [D2, null]] }, { id: 'd', title: 'Types', kind: 'table', columns: ['type', 'n'], rows: [['=cmd()', 2]] }],
    });
    assert.equal(
      csv,
      ['Summary', 'id,label,value,unit', 'events,Event count,3,count', '', '"Events, ""daily"""', 'day,count', `${D1},1`, `${D2},`, '', 'Types', 'type,n', "'=cmd(),2", ''].join('\r\n'),
    );
  });
});

describe('KPI and analytics REST routes end to end', () => {
  let t: TestServer;
  let iam: IAMClient;
  let appId: string;
  let reader: Creds;
  let stranger: Creds;
  const START = new Date(`${D1}T00:00:00Z`);
  const END = new Date(`${D2}T23:59:59Z`);

  async function userWithPolicy(name: string, statements: object[]): Promise<Creds> {
    await iam.send(new CreateUserCommand({ UserName: name }));
    await iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'p', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: statements }) }));
    const k = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
    return { accessKeyId: k.AccessKeyId!, secretAccessKey: k.SecretAccessKey! };
  }

  /**
   * SigV4 checks request times against the server's manual clock, so the client signs as of NOW;
   * set before every request because the SDK re-learns its offset from each response's Date.
   */
  function pinClock<C extends { config: { systemClockOffset?: number }; middlewareStack: { add: Function } }>(client: C): C {
    client.middlewareStack.add((next: (a: unknown) => unknown) => (args: unknown) => {
      client.config.systemClockOffset = NOW - Date.now();
      return next(args);
    }, { step: 'build', name: 'pinClockToNow' });
    return client;
  }

  /** The SDK error's modeled name and HTTP status. */
  async function failure(p: Promise<unknown>): Promise<{ name: string; status: number; message: string }> {
    try {
      await p;
    } catch (e: any) {
      return { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
    }
    assert.fail('the call should have failed');
  }

  before(async () => {
    t = await startTestServer({ clock: new ManualClock(NOW) });
    pinClock(t.pinpoint);
    iam = pinClock(new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 }));
    appId = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'kpis' } }))).ApplicationResponse!.Id!;
    const BatchItem: Record<string, { Endpoint: object; Events: Record<string, object> }> = {};
    FIXTURE.forEach((e, i) => {
      BatchItem[e.endpoint] ??= { Endpoint: {}, Events: {} };
      BatchItem[e.endpoint].Events[`ev-${i}`] = { EventType: e.type, Timestamp: e.at, Attributes: e.attributes, Metrics: e.metrics };
    });
    BatchItem.web1 = { Endpoint: {}, Events: { pv: { EventType: 'pageView', Timestamp: `${D2}T08:00:00Z`, Attributes: { url: '/home' }, Metrics: { elapsed: 3 } } } };
    const res = await t.pinpoint.send(new PutEventsCommand({ ApplicationId: appId, EventsRequest: { BatchItem: BatchItem as any } }));
    const statuses = Object.values(res.EventsResponse!.Results!).flatMap((r) => Object.values(r.EventsItemResponse!).map((x) => x.StatusCode));
    assert.equal(statuses.length, FIXTURE.length + 1);
    assert.ok(statuses.every((s) => s === 202));
    await t.server.analytics.catchUp();
    const arn = `arn:aws:mobiletargeting:us-east-1:${t.config.accountId}:apps/${appId}`;
    reader = await userWithPolicy('kpi-reader', [{ Effect: 'Allow', Action: 'mobiletargeting:GetApplicationDateRangeKpi', Resource: `${arn}*` }]);
    stranger = await userWithPolicy('stranger', [{ Effect: 'Allow', Action: 'mobiletargeting:GetApp', Resource: `${arn}` }]);
  });
  after(async () => {
    iam.destroy();
    await t.close();
  });

  test('GetApplicationDateRangeKpi with the SDK: exact values, grouped rows and the echoed range', async () => {
    const get = async (KpiName: string) =>
      (await t.pinpoint.send(new GetApplicationDateRangeKpiCommand({ ApplicationId: appId, KpiName, StartTime: START, EndTime: END }))).ApplicationDateRangeKpiResponse!;
    const r = await get('successful-delivery-rate');
    assert.equal(r.ApplicationId, appId);
    assert.equal(r.KpiName, 'successful-delivery-rate');
    assert.equal(r.StartTime?.toISOString(), START.toISOString());
    assert.equal(r.EndTime?.toISOString(), END.toISOString());
    assert.deepEqual(r.KpiResult?.Rows, [{ Values: [{ Key: 'SuccessfulDeliveryRate', Type: 'Double', Value: '0.75' }] }]);
    assert.deepEqual(pairs((await get('email-open-rate')).KpiResult as KpiRows), [[undefined, '0.6666666666666666']]);
    assert.deepEqual((await get('unique-deliveries-grouped-by-date')).KpiResult?.Rows, [
      { GroupedBys: [{ Key: 'Date', Type: 'String', Value: D1 }], Values: [{ Key: 'UniqueDeliveries', Type: 'Double', Value: '5.0' }] },
      { GroupedBys: [{ Key: 'Date', Type: 'String', Value: D2 }], Values: [{ Key: 'UniqueDeliveries', Type: 'Double', Value: '2.0' }] },
    ]);
    assert.deepEqual(pairs((await get('txn-sms-sent-grouped-by-country')).KpiResult as KpiRows), [['DE', '2.0'], ['US', '3.0']]);
    assert.deepEqual(pairs((await get('txn-emails-delivery-rate')).KpiResult as KpiRows), [[undefined, '0.6666666666666666']]);
  });

  test('GetCampaignDateRangeKpi and GetJourneyDateRangeKpi with the SDK', async () => {
    const c = (
      await t.pinpoint.send(new GetCampaignDateRangeKpiCommand({ ApplicationId: appId, CampaignId: IDS.C1, KpiName: 'hard-bounce-rate', StartTime: START, EndTime: END }))
    ).CampaignDateRangeKpiResponse!;
    assert.equal(c.CampaignId, IDS.C1);
    assert.deepEqual(c.KpiResult?.Rows, [{ Values: [{ Key: 'HardBounceRate', Type: 'Double', Value: '0.2' }] }]);
    const j = (
      await t.pinpoint.send(new GetJourneyDateRangeKpiCommand({ ApplicationId: appId, JourneyId: IDS.J1, KpiName: 'journey-emails-opened', StartTime: START, EndTime: END }))
    ).JourneyDateRangeKpiResponse!;
    assert.equal(j.JourneyId, IDS.J1);
    assert.deepEqual(j.KpiResult?.Rows, [{ Values: [{ Key: 'JourneyEmailsOpened', Type: 'Double', Value: '2.0' }] }]);
  });

  test('no range: the 31 days ending at the injected clock', async () => {
    const r = (await t.pinpoint.send(new GetApplicationDateRangeKpiCommand({ ApplicationId: appId, KpiName: 'txn-emails-sent' }))).ApplicationDateRangeKpiResponse!;
    assert.equal(r.EndTime?.getTime(), NOW);
    assert.equal(r.StartTime?.toISOString(), '2026-02-18T00:00:00.000Z');
    assert.deepEqual(pairs(r.KpiResult as KpiRows), [[undefined, '6.0']]);
  });

  test('range limits, unknown names and apps answer with the modeled error types', async () => {
    const app = (KpiName: string, StartTime?: Date, EndTime?: Date, ApplicationId = appId) =>
      failure(t.pinpoint.send(new GetApplicationDateRangeKpiCommand({ ApplicationId, KpiName, StartTime, EndTime })));
    const tooLong = await app('txn-emails-sent', new Date('2026-02-17T00:00:00Z'), new Date(NOW));
    assert.deepEqual([tooLong.name, tooLong.status], ['BadRequestException', 400]);
    assert.match(tooLong.message, /31 or fewer calendar days/);
    const tooOld = await app('txn-emails-sent', new Date('2025-12-20T00:00:00Z'), new Date('2025-12-25T00:00:00Z'));
    assert.deepEqual([tooOld.name, tooOld.status], ['BadRequestException', 400]);
    assert.match(tooOld.message, /fewer than 90 days/);
    const unknown = await app('no-such-metric');
    assert.deepEqual([unknown.name, unknown.status], ['NotFoundException', 404]);
    const wrongResource = await failure(
      t.pinpoint.send(new GetCampaignDateRangeKpiCommand({ ApplicationId: appId, CampaignId: IDS.C1, KpiName: 'txn-sms-sent' })),
    );
    assert.deepEqual([wrongResource.name, wrongResource.status], ['NotFoundException', 404]);
    const noApp = await app('txn-emails-sent', undefined, undefined, 'f'.repeat(32));
    assert.deepEqual([noApp.name, noApp.status], ['NotFoundException', 404]);
  });

  test('IAM: the KPI actions on the KPI ARN; a key without them gets ForbiddenException', async () => {
    const asReader = pinClock(pinpointClient(t.server, { credentials: reader }));
    const asStranger = pinClock(pinpointClient(t.server, { credentials: stranger }));
    try {
      const ok = await asReader.send(new GetApplicationDateRangeKpiCommand({ ApplicationId: appId, KpiName: 'txn-emails-sent', StartTime: START, EndTime: END }));
      assert.deepEqual(pairs(ok.ApplicationDateRangeKpiResponse!.KpiResult as KpiRows), [[undefined, '6.0']]);
      // The reader's policy names only GetApplicationDateRangeKpi.
      const campaign = await failure(asReader.send(new GetCampaignDateRangeKpiCommand({ ApplicationId: appId, CampaignId: IDS.C1, KpiName: 'unique-deliveries' })));
      assert.deepEqual([campaign.name, campaign.status], ['ForbiddenException', 403]);
      assert.match(campaign.message, new RegExp(`mobiletargeting:GetCampaignDateRangeKpi on resource: .*apps/${appId}/campaigns/${IDS.C1}/kpis/daterange/unique-deliveries`));
      const denied = await failure(asStranger.send(new GetApplicationDateRangeKpiCommand({ ApplicationId: appId, KpiName: 'txn-emails-sent' })));
      assert.deepEqual([denied.name, denied.status], ['ForbiddenException', 403]);
      assert.match(denied.message, new RegExp(`apps/${appId}/kpis/daterange/txn-emails-sent`));
    } finally {
      asReader.destroy();
      asStranger.destroy();
    }
  });

  test('dashboards as JSON and as CSV, filters, funnels (signed requests)', async () => {
    const get = (credentials: Creds, path: string, query: Record<string, string> = {}, method = 'GET', body?: string) =>
      signedFetch(t.server.url, { method, path: `/v1/apps/${appId}${path}`, query, credentials, body, signingDate: new Date(NOW) });
    const range = { start: D1, end: D2 };

    const d = await get(reader, '/dashboards/events', range);
    assert.equal(d.status, 200, d.text);
    assert.equal(d.json.dashboard, 'events');
    assert.deepEqual(d.json.range, range);
    assert.ok(d.json.charts.length > 0);

    const csv = await get(reader, '/dashboards/events.csv', range);
    assert.equal(csv.status, 200);
    assert.match(csv.headers.get('content-type')!, /^text\/csv/);
    assert.equal(csv.headers.get('content-disposition'), `attachment; filename="${appId}-events-${D1}-${D2}.csv"`);
    assert.equal(csv.text, dashboardCsv(d.json));
    for (const chart of d.json.charts) assert.ok(csv.text.includes(`\r\n${chart.columns.join(',')}\r\n`), chart.title);

    assertRestError(await get(reader, '/dashboards/nope'), 404, 'NotFoundException', /Unknown dashboard "nope"/);
    assertRestError(await get(reader, '/dashboards/events', { start: '2025-01-01', end: D2 }), 400, 'BadRequestException', /at most 90 days/);
    assertRestError(await get(stranger, '/dashboards/events', range), 403, 'ForbiddenException', /GetApplicationDateRangeKpi/);

    const filters = await get(reader, '/analytics/filters');
    assert.equal(filters.status, 200);
    assert.ok(filters.json.eventTypes.includes('pageView'), JSON.stringify(filters.json));
    assert.ok(filters.json.eventAttributes.includes('url'));
    assert.ok(filters.json.eventMetrics.includes('elapsed'));
    assert.ok(Array.isArray(filters.json.endpointAttributes));

    const funnel = JSON.stringify({ name: 'signup', steps: [{ name: 'Visit', eventType: 'pageView' }, { name: 'Sign up', eventType: '_userauth.sign_up' }] });
    assertRestError(await get(reader, '/funnels', {}, 'POST', funnel), 403, 'ForbiddenException', /UpdateApplicationSettings/);
    const created = await get(t.server.admin, '/funnels', {}, 'POST', funnel);
    assert.equal(created.status, 201, created.text);
    assert.equal(created.json.name, 'signup');
    const listed = await get(reader, '/funnels');
    assert.deepEqual(listed.json.funnels.map((f: any) => f.id), [created.json.id]);
    assertRestError(await get(t.server.admin, '/funnels', {}, 'POST', JSON.stringify({ name: 'x', steps: [] })), 400, 'BadRequestException', /steps/);
    const tooMany = JSON.stringify({ name: 'x', steps: Array.from({ length: MAX_FUNNEL_STEPS + 1 }, (_, i) => ({ name: `s${i}`, eventType: 'e' })) });
    assertRestError(await get(t.server.admin, '/funnels', {}, 'POST', tooMany), 400, 'BadRequestException', new RegExp(`maximum is ${MAX_FUNNEL_STEPS}`));
    assertRestError(await get(t.server.admin, '/funnels', {}, 'POST', JSON.stringify({ id: 7, name: 'x', steps: [] })), 400, 'BadRequestException', /id must be/);
    const renamed = await get(t.server.admin, '/funnels', {}, 'POST', JSON.stringify({ ...JSON.parse(funnel), id: created.json.id, name: 'signup v2' }));
    assert.equal(renamed.status, 200);
    assert.deepEqual((await get(reader, '/funnels')).json.funnels.map((f: any) => f.name), ['signup v2']);
    assert.equal((await get(t.server.admin, `/funnels/${created.json.id}`, {}, 'DELETE')).status, 204);
    assertRestError(await get(t.server.admin, `/funnels/${created.json.id}`, {}, 'DELETE'), 404, 'NotFoundException', /not found/);
    assert.deepEqual((await get(reader, '/funnels')).json.funnels, []);
  });

  test('SaveFunnel: step attributes that are not a list of filters are 400 BadRequestException, not a 500 (found by fuzzing)', async () => {
    const save = (attributes: unknown) =>
      signedFetch(t.server.url, {
        method: 'POST',
        path: `/v1/apps/${appId}/funnels`,
        body: JSON.stringify({ name: 'bad', steps: [{ eventType: 'a', attributes }, { eventType: 'b' }] }),
        credentials: t.server.admin,
        signingDate: new Date(NOW),
      });
    for (const attributes of [{ k0: 'x' }, 'plan:pro', 7, { map: 1 }]) {
      assertRestError(await save(attributes), 400, 'BadRequestException', /steps\[0\]\.attributes must be a list/);
    }
    assertRestError(await save([null]), 400, 'BadRequestException', /steps\[0\]\.attributes\[0\]\.name is required/);
  });
});
