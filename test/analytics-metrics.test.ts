// Dashboard metrics over a hand-built event set with known answers, through the real path: the
// official Pinpoint SDK's PutEvents into a real server (ManualClock moved day by day so endpoint
// creation dates fall on the right days), the loader into DuckDB, then the dashboard SQL. Unfiltered
// app metrics come from the loader's rollups; one test checks that `events` alone gives the same.
//
// Days are March 2024 (the 1st is a Friday); the clock ends on 2024-03-10, the range is 03-01..03-10.
// Endpoints: e1 (user u1, android, US, plan=pro), e2 (user u1, ios, GB, plan=free),
// e3 (no user, android, US, plan=free), e4 (user u2, ios, DE).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CreateAppCommand, PutEventsCommand, type EventsBatch, type PublicEndpoint } from '@aws-sdk/client-pinpoint';
import { ManualClock } from '../src/clock.js';
import { ApiError } from '../src/http/errors.js';
import type { Chart, DashboardName, DashboardQuery, DashboardResult } from '../src/analytics/types.js';
import { MAX_FUNNEL_STEPS } from '../src/analytics/funnels.js';
import { MAX_FILTER_VALUES } from '../src/analytics/dashboards.js';
import { pinpointClient, startTestServer, type TestServer } from './helpers/server.js';

const DAY = 86_400_000;
const T0 = Date.parse('2024-03-01T00:00:00Z');
const RANGE = { start: '2024-03-01', end: '2024-03-10' };

const ENDPOINTS: Record<string, PublicEndpoint> = {
  e1: { Demographic: { Platform: 'android', Make: 'Google', Model: 'Pixel 8' }, Location: { Country: 'US' }, Attributes: { plan: ['pro'] }, User: { UserId: 'u1' } },
  e2: { Demographic: { Platform: 'ios', Make: 'Apple', Model: 'iPhone' }, Location: { Country: 'GB' }, Attributes: { plan: ['free'] }, User: { UserId: 'u1' } },
  e3: { Demographic: { Platform: 'android', Make: 'Samsung', Model: 'S24' }, Location: { Country: 'US' }, Attributes: { plan: ['free'] } },
  e4: { Demographic: { Platform: 'ios', Make: 'Apple', Model: 'iPhone' }, Location: { Country: 'DE' }, User: { UserId: 'u2' } },
};

interface Ev {
  day: number;
  hour: number;
  ep: string;
  type: string;
  attrs?: Record<string, string>;
  metrics?: Record<string, number>;
}

const camp = (status: string) => ({ campaign_id: 'c1', campaign_activity_id: 'run1', treatment_id: '0', delivery_type: 'GCM', campaign_send_status: status });
const EVENTS: Ev[] = [
  { day: 1, hour: 9, ep: 'e1', type: '_session.start' },
  { day: 1, hour: 10, ep: 'e2', type: '_session.start' },
  { day: 1, hour: 11, ep: 'e1', type: 'level', attrs: { mode: 'easy' }, metrics: { score: 5 } },
  { day: 2, hour: 9, ep: 'e1', type: '_session.start' },
  { day: 2, hour: 20, ep: 'e3', type: '_session.start' },
  { day: 2, hour: 21, ep: 'e3', type: '_monetization.purchase', metrics: { _item_price: 2.5, _quantity: 2 } },
  { day: 2, hour: 10, ep: 'e1', type: '_monetization.purchase', metrics: { _item_price: 10 } },
  { day: 3, hour: 12, ep: 'e4', type: '_session.start' },
  { day: 3, hour: 13, ep: 'e1', type: 'level', attrs: { mode: 'hard' }, metrics: { score: 50 } },
  { day: 3, hour: 8, ep: 'e1', type: '_campaign.send', attrs: camp('SUCCESS') },
  { day: 3, hour: 8, ep: 'e2', type: '_campaign.send', attrs: camp('SUCCESS') },
  { day: 3, hour: 8, ep: 'e3', type: '_campaign.send', attrs: camp('SUCCESS') },
  { day: 3, hour: 8, ep: 'e4', type: '_campaign.send', attrs: camp('FAILURE') },
  { day: 3, hour: 9, ep: 'e1', type: '_campaign.opened_notification', attrs: { campaign_id: 'c1' } },
  { day: 3, hour: 9, ep: 'e1', type: '_campaign.opened_notification', attrs: { campaign_id: 'c1' } },
  { day: 3, hour: 10, ep: 'e2', type: '_campaign.opened_notification', attrs: { campaign_id: 'c1' } },
  { day: 8, hour: 9, ep: 'e1', type: '_session.start' },
  { day: 8, hour: 15, ep: 'e1', type: '_session.start' },
  { day: 8, hour: 16, ep: 'e2', type: '_userauth.sign_in' },
  { day: 9, hour: 11, ep: 'e2', type: '_session.start' },
  { day: 9, hour: 12, ep: 'e2', type: '_userauth.sign_up' },
  { day: 9, hour: 13, ep: 'e3', type: '_userauth.auth_fail' },
  { day: 9, hour: 14, ep: 'e1', type: '_monetization.purchase', metrics: { _item_price: 1, _quantity: 3 } },
];

let t: TestServer;
let appId: string;
const clock = new ManualClock(T0);

before(async () => {
  t = await startTestServer({ clock });
  const first = pinpointClient(t.server, { systemClockOffset: clock.now() - Date.now() });
  appId = (await first.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'metrics' } }))).ApplicationResponse!.Id!;
  first.destroy();
  let n = 0;
  for (let day = 1; day <= 10; day++) {
    // Endpoints are created at the server's clock: keep it on the events' day.
    clock.set(T0 + (day - 1) * DAY + 60_000);
    const todays = EVENTS.filter((e) => e.day === day);
    if (todays.length === 0) continue;
    const BatchItem: Record<string, EventsBatch & { Events: NonNullable<EventsBatch['Events']> }> = {};
    for (const e of todays) {
      const item = (BatchItem[e.ep] ??= { Endpoint: ENDPOINTS[e.ep], Events: {} });
      const ts = new Date(T0 + (e.day - 1) * DAY + e.hour * 3_600_000 + n).toISOString();
      item.Events[`ev${n++}`] = {
        EventType: e.type,
        Timestamp: ts,
        Attributes: e.attrs,
        Metrics: e.metrics,
        ...(e.type === '_session.start' ? { Session: { Id: `s${n}`, StartTimestamp: ts } } : {}),
      };
    }
    // SigV4 is checked against the server's clock: sign as of that day.
    const client = pinpointClient(t.server, { systemClockOffset: clock.now() - Date.now() });
    const out = await client.send(new PutEventsCommand({ ApplicationId: appId, EventsRequest: { BatchItem } }));
    client.destroy();
    for (const r of Object.values(out.EventsResponse!.Results!)) {
      for (const ev of Object.values(r.EventsItemResponse!)) assert.equal(ev.StatusCode, 202, ev.Message);
    }
  }
  clock.set(T0 + 9 * DAY + 23 * 3_600_000);
  await t.server.analytics.catchUp();
});

after(() => t?.close());

const dash = (name: DashboardName, q: Partial<DashboardQuery> = {}) => t.server.analytics.dashboard(name, { appId, range: RANGE, ...q });
const tileOf = (r: DashboardResult, id: string) => {
  const found = r.tiles.find((x) => x.id === id);
  assert.ok(found, `tile ${id} in ${r.dashboard}`);
  return found.value;
};
const chartOf = (r: DashboardResult, id: string): Chart => {
  const found = r.charts.find((x) => x.id === id);
  assert.ok(found, `chart ${id} in ${r.dashboard}`);
  return found;
};
/** A daily series' values (second column), one per day of the range. */
const series = (r: DashboardResult, id: string) => chartOf(r, id).rows.map((row) => row[1]);
const near = (a: number | null, b: number) => assert.ok(a !== null && Math.abs(a - b) < 1e-6, `${a} ≈ ${b}`);

test('daily, monthly and new active endpoints and users; zero-filled daily rows', async () => {
  const u = await dash('usage');
  const days = chartOf(u, 'daily-active-endpoints').rows.map((r) => r[0]);
  assert.deepEqual(days, ['2024-03-01', '2024-03-02', '2024-03-03', '2024-03-04', '2024-03-05', '2024-03-06', '2024-03-07', '2024-03-08', '2024-03-09', '2024-03-10']);
  // Active = _session.start (this app reports sessions): the campaign and auth events do not count.
  assert.deepEqual(series(u, 'daily-active-endpoints'), [2, 2, 1, 0, 0, 0, 0, 1, 1, 0]);
  assert.deepEqual(series(u, 'monthly-active-endpoints'), [2, 3, 4, 4, 4, 4, 4, 4, 4, 4]);
  assert.deepEqual(series(u, 'new-endpoints'), [2, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(series(u, 'daily-active-users'), [1, 1, 1, 0, 0, 0, 0, 1, 1, 0]);
  assert.deepEqual(series(u, 'monthly-active-users'), [1, 1, 2, 2, 2, 2, 2, 2, 2, 2]);
  assert.deepEqual(series(u, 'new-users'), [1, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
  near(tileOf(u, 'daily-active-endpoints'), 0.7);
  near(tileOf(u, 'monthly-active-endpoints'), 3.7);
  assert.equal(tileOf(u, 'new-endpoints'), 4);
  assert.equal(tileOf(u, 'new-users'), 2);
});

test('7-day retention, sticky factor, sessions and sessions per endpoint', async () => {
  const u = await dash('usage');
  // Day D: of the endpoints active on D-7, the share active again on D-6..D.
  assert.deepEqual(series(u, 'retention-7-day'), [null, null, null, null, null, null, null, 50, 50, 0]);
  near(tileOf(u, 'retention-7-day'), 100 / 3);
  const sticky = series(u, 'sticky-factor') as number[];
  near(sticky[1], 2 / 3);
  near(sticky[2], 1 / 4);
  near(tileOf(u, 'sticky-factor'), (1 + 2 / 3 + 1 / 4 + 1 / 4 + 1 / 4) / 10);
  assert.deepEqual(series(u, 'sessions'), [2, 2, 1, 0, 0, 0, 0, 2, 1, 0]);
  assert.equal(tileOf(u, 'sessions'), 8);
  near(tileOf(u, 'sessions-per-endpoint'), 8 / 7);
  assert.deepEqual(series(u, 'sessions-per-endpoint').slice(7, 9), [2, 1]);
  const o = await dash('overview');
  assert.equal(tileOf(o, 'sessions'), 8);
  near(tileOf(o, 'daily-active-endpoints'), 0.7);
});

test('session heat map cells (UTC weekday x hour) and authentication counts', async () => {
  const u = await dash('usage');
  const heat = chartOf(u, 'session-heat-map');
  assert.equal(heat.rows.length, 7);
  const cell = (day: string, hour: number) => heat.rows.find((r) => r[0] === day)![hour + 1];
  assert.equal(cell('Friday', 9), 2); // 03-01 and 03-08, e1
  assert.equal(cell('Saturday', 9), 1);
  assert.equal(cell('Saturday', 20), 1);
  assert.equal(cell('Sunday', 12), 1);
  assert.equal(cell('Friday', 10), 1);
  const total = heat.rows.reduce((a, r) => a + (r.slice(1) as number[]).reduce((x, y) => x + y, 0), 0);
  assert.equal(total, 8);
  assert.equal(tileOf(u, 'sign-ins'), 1);
  assert.equal(tileOf(u, 'sign-ups'), 1);
  assert.equal(tileOf(u, 'authentication-failures'), 1);
});

test('endpoint attribute filter narrows the usage metrics', async () => {
  const u = await dash('usage', { endpointAttribute: { name: 'plan', values: ['free'] } });
  assert.deepEqual(series(u, 'daily-active-endpoints'), [1, 1, 0, 0, 0, 0, 0, 0, 1, 0]);
});

test('revenue, paying users, units and purchases', async () => {
  const r = await dash('revenue');
  assert.deepEqual(series(r, 'revenue'), [0, 15, 0, 0, 0, 0, 0, 0, 3, 0]);
  assert.equal(tileOf(r, 'revenue'), 18);
  assert.equal(tileOf(r, 'units-sold'), 6);
  assert.equal(tileOf(r, 'purchases'), 3);
  assert.equal(tileOf(r, 'paying-users'), 3);
  assert.equal(tileOf(r, 'revenue-per-paying-user'), 6);
  assert.deepEqual(series(r, 'paying-users'), [0, 2, 0, 0, 0, 0, 0, 0, 1, 0]);
  // Revenue per endpoint: 18 over 7 active endpoint-days.
  near(tileOf(r, 'revenue-per-endpoint'), 18 / 7);
});

test('events dashboard with event type, attribute, metric and endpoint-attribute filters', async () => {
  const all = await dash('events', { eventType: 'level' });
  assert.equal(tileOf(all, 'event-count'), 2);
  assert.deepEqual(series(all, 'event-count'), [1, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
  near(tileOf(all, 'events-per-session'), 2 / 8);
  assert.equal(tileOf(await dash('events', { eventType: 'level', eventAttribute: { name: 'mode', values: ['hard'] } }), 'event-count'), 1);
  const big = await dash('events', { eventType: 'level', eventMetric: { name: 'score', op: '>', value: 10 } });
  assert.deepEqual(series(big, 'event-count'), [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(tileOf(await dash('events', { eventType: 'level', eventMetric: { name: 'score', op: '<=', value: 10 } }), 'event-count'), 1);
  assert.equal(tileOf(await dash('events', { eventType: 'level', endpointAttribute: { name: 'plan', values: ['free'] } }), 'event-count'), 0);
  assert.equal(tileOf(await dash('events', { eventType: '_session.start' }), 'endpoint-count'), 0.7);
  const types = await t.server.analytics.eventTypes(appId);
  assert.ok(types.includes('level') && types.includes('_session.start'), types.join());
  const names = await t.server.analytics.filterNames(appId);
  assert.deepEqual(names.endpointAttributes, ['plan']);
  assert.ok(names.eventMetrics.includes('score') && names.eventAttributes.includes('mode'));
});

test('funnel completion and drop-off follow the step order', async () => {
  const a = t.server.analytics;
  const f = await a.saveFunnel(appId, {
    name: 'Play then pay',
    steps: [
      { name: 'Open', eventType: '_session.start' },
      { name: 'Hard level', eventType: 'level', attributes: [{ name: 'mode', values: ['hard'] }] },
      { name: 'Purchase', eventType: '_monetization.purchase' },
    ],
  });
  assert.deepEqual((await a.listFunnels(appId)).map((x) => x.id), [f.id]);
  const r = await dash('funnels', { funnelId: f.id });
  // 4 endpoints opened; only e1 played hard after opening, and bought after that (03-09).
  assert.deepEqual(chartOf(r, 'funnel').rows, [
    ['Open', 4, 100, 0],
    ['Hard level', 1, 25, 75],
    ['Purchase', 1, 25, 0],
  ]);
  // Order matters: purchase before the hard level does not count as the next step.
  const g = await a.saveFunnel(appId, { name: 'Pay then play', steps: [{ name: 'Buy', eventType: '_monetization.purchase' }, { name: 'Hard', eventType: 'level', attributes: [{ name: 'mode', values: ['hard'] }] }] });
  assert.deepEqual(chartOf(await dash('funnels', { funnelId: g.id }), 'funnel').rows.map((x) => x[1]), [2, 1]);
  assert.equal(await a.deleteFunnel(appId, g.id), true);
  assert.equal(await a.deleteFunnel(appId, g.id), false);
  await assert.rejects(
    () => a.saveFunnel(appId, { name: 'long', steps: Array.from({ length: MAX_FUNNEL_STEPS + 1 }, () => ({ name: 'x', eventType: 'x' })) }),
    (e: unknown) => e instanceof ApiError && e.code === 'BadRequestException',
  );
  await assert.rejects(dash('funnels', { funnelId: 'nope' }), (e: unknown) => e instanceof ApiError && e.code === 'NotFoundException');
});

test('demographics: shares of distinct endpoints', async () => {
  const r = await dash('demographics');
  assert.equal(tileOf(r, 'endpoints'), 4);
  assert.deepEqual(chartOf(r, 'platform').rows, [['android', 2, 50], ['ios', 2, 50]]);
  assert.deepEqual(chartOf(r, 'country').rows, [['US', 2, 50], ['DE', 1, 25], ['GB', 1, 25]]);
  assert.deepEqual(chartOf(r, 'attribute:plan').rows, [['free', 2, 50], ['pro', 1, 25]]);
  assert.deepEqual(chartOf(r, 'device-make').rows[0], ['Apple', 2, 50]);
});

test('campaign counts: sent, delivered, hour-deduplicated opens, rates', async () => {
  const r = await dash('campaigns');
  assert.equal(tileOf(r, 'messages-sent'), 4);
  assert.equal(tileOf(r, 'messages-delivered'), 3);
  assert.equal(tileOf(r, 'endpoint-deliveries'), 3);
  assert.equal(tileOf(r, 'delivery-rate'), 75);
  near(tileOf(r, 'open-rate'), 200 / 3);
  assert.equal(tileOf(r, 'active-campaigns'), 1);
  assert.deepEqual(chartOf(r, 'campaigns').rows[0].slice(0, 6), ['c1', '0', 4, 3, 3, 2]);
  const runs = await dash('campaigns', { campaignId: 'c1' });
  assert.equal(chartOf(runs, 'campaigns').rows[0][0], 'run1');
  const o = await dash('overview');
  assert.equal(tileOf(o, 'campaign-messages-delivered'), 3);
});

test('range and filter validation answer BadRequestException naming the field', async () => {
  const bad = (field: string) => (e: unknown) => e instanceof ApiError && e.code === 'BadRequestException' && e.status === 400 && e.message.includes(field);
  await assert.rejects(dash('usage', { range: { start: '2024-03-05', end: '2024-03-01' } }), bad('range.end'));
  await assert.rejects(dash('usage', { range: { start: '2023-11-01', end: '2024-03-01' } }), bad('range.start'));
  await assert.rejects(dash('usage', { range: { start: '2024-02-30', end: '2024-03-01' } }), bad('range.start'));
  await assert.rejects(dash('events', { eventMetric: { name: 'x', op: '!=' as '=', value: 1 } }), bad('eventMetric.op'));
  const values = Array.from({ length: MAX_FILTER_VALUES + 1 }, (_, i) => String(i));
  await assert.rejects(dash('events', { eventAttribute: { name: 'x', values } }), bad('eventAttribute.values'));
  await assert.rejects(dash('events', { eventAttribute: { name: 'x', values: values.slice(0, MAX_FILTER_VALUES) } }).then(() => { throw new Error('accepted'); }), /accepted/);
});

test('the rollups and the raw events answer every dashboard alike', async () => {
  const analytics = t.server.analytics;
  for (const name of ['overview', 'usage', 'revenue', 'events', 'demographics', 'campaigns'] as const) {
    for (const range of [RANGE, { start: '2024-03-03', end: '2024-03-09' }]) {
      const q = { appId, range, ...(name === 'events' ? { eventType: '_session.start' } : {}) };
      assert.deepEqual(await analytics.dashboard(name, q), await analytics.dashboardFromEvents(name, q), `${name} ${range.start}..${range.end}`);
    }
  }
});
