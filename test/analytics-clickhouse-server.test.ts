// PINSTREAM_CLICKHOUSE_URL end to end: two servers, one on the embedded DuckDB store and one on a
// real ClickHouse (test/helpers/clickhouse.ts; skipped with the reason when clickhouse-server is
// missing), take the same PutEvents through the official Pinpoint SDK client and must answer the
// KPI API, the console's dashboards and its filter lists alike, with numbers the KPI fixture
// (helpers/kpi-events.ts) fixes by hand. An unreachable ClickHouse stops the start naming it, and
// history import (DuckDB's) answers a clear error with ClickHouse.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateAppCommand, GetApplicationDateRangeKpiCommand, PutEventsCommand } from '@aws-sdk/client-pinpoint';
import { ManualClock } from '../src/clock.js';
import { ConfigError, loadConfig } from '../src/config/config.js';
import { HISTORY_IMPORT_CLICKHOUSE_MESSAGE } from '../src/analytics/event-store.js';
import { startPinstream } from '../src/server.js';
import { startClickHouse, type ClickHouseTarget } from './helpers/clickhouse.js';
import { D0, D1, D2, FIXTURE, NOW } from './helpers/kpi-events.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { signedFetch } from './helpers/signed.js';
import { freePort } from './helpers/ports.js';

const START = new Date(`${D1}T00:00:00Z`);
const END = new Date(`${D2}T23:59:59Z`);
/** KPIs of every family the fixture covers (campaign, transactional email and SMS, by date and grouped). */
const KPIS = [
  'successful-delivery-rate',
  'email-open-rate',
  'unique-deliveries-grouped-by-date',
  'txn-sms-sent-grouped-by-country',
  'txn-emails-delivery-rate',
  'txn-emails-sent',
  'txn-sms-delivered-grouped-by-date',
];


/** The SDK client signs with the server's (manual) clock. */
function pinClock<C extends { config: { systemClockOffset?: number }; middlewareStack: { add: Function } }>(client: C): C {
  client.middlewareStack.add(
    (next: (a: unknown) => unknown) => (args: unknown) => {
      client.config.systemClockOffset = NOW - Date.now();
      return next(args);
    },
    { step: 'build', name: 'pinClockToNow' },
  );
  return client;
}

/** Starts a server, sends the fixture with PutEvents and loads it; answers the server and its app. */
async function serverWithEvents(clickhouseUrl?: string): Promise<{ t: TestServer; appId: string }> {
  const t = await startTestServer({ clock: new ManualClock(NOW), config: clickhouseUrl ? ({ clickhouseUrl } as never) : {} });
  pinClock(t.pinpoint);
  const appId = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'chwire' } }))).ApplicationResponse!.Id!;
  const BatchItem: Record<string, { Endpoint: object; Events: Record<string, object> }> = {};
  FIXTURE.forEach((e, i) => {
    BatchItem[e.endpoint] ??= { Endpoint: {}, Events: {} };
    BatchItem[e.endpoint].Events[`ev-${i}`] = { EventType: e.type, Timestamp: e.at, Attributes: e.attributes, Metrics: e.metrics };
  });
  BatchItem.web1 = { Endpoint: { Attributes: { plan: ['pro'] } }, Events: { pv: { EventType: 'pageView', Timestamp: `${D2}T08:00:00Z`, Attributes: { url: '/home' }, Metrics: { elapsed: 3 } } } };
  const res = await t.pinpoint.send(new PutEventsCommand({ ApplicationId: appId, EventsRequest: { BatchItem: BatchItem as any } }));
  const statuses = Object.values(res.EventsResponse!.Results!).flatMap((r) => Object.values(r.EventsItemResponse!).map((x) => x.StatusCode));
  assert.equal(statuses.length, FIXTURE.length + 1);
  assert.ok(statuses.every((s) => s === 202));
  await t.server.analytics.catchUp();
  return { t, appId };
}

describe('the server on ClickHouse (PINSTREAM_CLICKHOUSE_URL) answers as on DuckDB', async () => {
  let target: ClickHouseTarget = { skip: 'not started' };
  let duck: { t: TestServer; appId: string } | undefined;
  let ch: { t: TestServer; appId: string } | undefined;
  const skip = (t: { skip(m: string): void }) => {
    if (target.skip !== undefined || !duck || !ch) {
      t.skip(target.skip ?? 'servers did not start');
      return true;
    }
    return false;
  };

  before(async () => {
    target = await startClickHouse();
    if (target.skip !== undefined) return;
    duck = await serverWithEvents();
    ch = await serverWithEvents(`${target.server.url}/chwire_${randomBytes(4).toString('hex')}`);
  });
  after(async () => {
    await duck?.t.close();
    await ch?.t.close();
    await target.server?.stop();
  });

  test('the analytics thread runs on ClickHouse: its rows are there, and the DuckDB-only raw query says so', async (t) => {
    if (skip(t)) return;
    assert.equal(await ch!.t.server.analytics.rowCount(), FIXTURE.length + 1);
    assert.equal(await duck!.t.server.analytics.rowCount(), FIXTURE.length + 1);
    await assert.rejects(ch!.t.server.analytics.query('SELECT count(*) FROM events'), /needs the DuckDB analytics store \(this one is clickhouse\)/);
  });

  test('GetApplicationDateRangeKpi through the SDK: the same rows on both, and the fixture\'s values', async (t) => {
    if (skip(t)) return;
    const get = async (s: { t: TestServer; appId: string }, KpiName: string) =>
      (await s.t.pinpoint.send(new GetApplicationDateRangeKpiCommand({ ApplicationId: s.appId, KpiName, StartTime: START, EndTime: END }))).ApplicationDateRangeKpiResponse!.KpiResult?.Rows;
    for (const name of KPIS) assert.deepEqual(await get(ch!, name), await get(duck!, name), name);
    assert.deepEqual(await get(ch!, 'successful-delivery-rate'), [{ Values: [{ Key: 'SuccessfulDeliveryRate', Type: 'Double', Value: '0.75' }] }]);
    assert.deepEqual(await get(ch!, 'unique-deliveries-grouped-by-date'), [
      { GroupedBys: [{ Key: 'Date', Type: 'String', Value: D1 }], Values: [{ Key: 'UniqueDeliveries', Type: 'Double', Value: '5.0' }] },
      { GroupedBys: [{ Key: 'Date', Type: 'String', Value: D2 }], Values: [{ Key: 'UniqueDeliveries', Type: 'Double', Value: '2.0' }] },
    ]);
  });

  test('the console\'s dashboards and filter lists: the same JSON on both', async (t) => {
    if (skip(t)) return;
    const get = async (s: { t: TestServer; appId: string }, path: string, query: Record<string, string> = {}) => {
      const r = await signedFetch(s.t.server.url, { method: 'GET', path: `/v1/apps/${s.appId}${path}`, query, credentials: s.t.server.admin, signingDate: new Date(NOW) });
      assert.equal(r.status, 200, r.text);
      return r.json;
    };
    const range = { start: D0, end: D2 };
    const tile = (d: any, id: string) => d.tiles.find((x: { id: string }) => x.id === id)?.value;
    const overview = await get(ch!, '/dashboards/overview', range);
    assert.deepEqual(overview, await get(duck!, '/dashboards/overview', range));
    assert.ok(tile(overview, 'campaign-messages-sent') > 0, JSON.stringify(overview.tiles));
    const events = await get(ch!, '/dashboards/events', range);
    assert.deepEqual(events, await get(duck!, '/dashboards/events', range));
    assert.equal(tile(events, 'event-count'), FIXTURE.length + 1);
    const filters = await get(ch!, '/analytics/filters');
    assert.deepEqual(filters, await get(duck!, '/analytics/filters'));
    assert.ok(filters.eventTypes.includes('pageView'), JSON.stringify(filters));
    assert.ok(filters.eventAttributes.includes('url'), JSON.stringify(filters));
    assert.ok(filters.eventMetrics.includes('elapsed'), JSON.stringify(filters));
  });

  test('history import answers a BadRequestException naming ClickHouse', async (t) => {
    if (skip(t)) return;
    const r = await signedFetch(ch!.t.server.url, {
      method: 'POST',
      path: `/v1/apps/${ch!.appId}/history-imports`,
      credentials: ch!.t.server.admin,
      body: JSON.stringify({ Source: 's3://bucket-x/' }),
      signingDate: new Date(NOW),
    });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.Message ?? r.json.message, HISTORY_IMPORT_CLICKHOUSE_MESSAGE);
  });
});

test('an unreachable PINSTREAM_CLICKHOUSE_URL stops startPinstream with a ConfigError naming ClickHouse', async () => {
  const port = await freePort(); // nothing listens there
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-chwire-'));
  try {
    const config = loadConfig({}, { port: 0, dataDir, clickhouseUrl: `http://127.0.0.1:${port}/pinstream` } as never);
    await assert.rejects(startPinstream(config, undefined, { clickhouseCheckTimeoutMs: 5000 }), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.match(e.message, new RegExp(`^PINSTREAM_CLICKHOUSE_URL: ClickHouse at http://127\\.0\\.0\\.1:${port} does not answer`));
      return true;
    });
    // Checked before anything is opened: the data directory is still empty.
    assert.deepEqual(await readdir(dataDir), []);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
