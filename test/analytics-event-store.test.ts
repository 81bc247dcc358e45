// The analytics event-store contract (src/analytics/event-store.ts), run against both adapters:
// DuckDB (embedded) and ClickHouse (Debian's clickhouse-server, started here on free loopback ports
// by test/helpers/clickhouse.ts; skipped with the reason when it is not installed). Every adapter:
// a batch appended twice counts once, repeats within a batch count once, the checkpoint resumes
// after a reopen and never moves `loadedTo` back, retention deletes exactly the older rows. Then
// both adapters loaded with the same rows (the KPI fixture and an app-usage set) must give equal
// KPIs (every documented name, every scope) and equal dashboards (every dashboard ClickHouse has,
// with and without filters; DuckDB from its rollups and from `events`).

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../src/clock.js';
import { clickhouseUrl } from '../src/config/config.js';
import { ClickHouseEventStore } from '../src/analytics/clickhouse/store.js';
import { CLICKHOUSE_DASHBOARDS } from '../src/analytics/clickhouse/dashboards.js';
import { DuckDbEventStore } from '../src/analytics/duckdb-event-store.js';
import type { AnalyticsEventStore } from '../src/analytics/event-store.js';
import type { DashboardDeps } from '../src/analytics/dashboards.js';
import { KPI_NAMES, type KpiScopeKind } from '../src/analytics/kpi.js';
import { DASHBOARDS, type DashboardQuery, type Funnel, type KpiScope } from '../src/analytics/types.js';
import { ApiError } from '../src/http/errors.js';
import { startClickHouse, type ClickHouseServer } from './helpers/clickhouse.js';
import { eventRow, kpiRows, usageRows, USAGE_NOW, USAGE_RANGE } from './helpers/analytics-rows.js';
import { D0, D1, D2, IDS } from './helpers/kpi-events.js';

interface Adapter {
  name: string;
  /** Opens (or reopens) the store named `id`. */
  open(id: string): Promise<AnalyticsEventStore>;
  /** Makes the next append die where a crash can stop this adapter's append (its test seam). */
  crashNextAppend(s: AnalyticsEventStore): void;
  cleanup(): Promise<void>;
}

/** A hook that throws once, then removes itself. */
function once(clear: () => void): () => Promise<void> {
  return async () => {
    clear();
    throw new Error('simulated crash');
  };
}

const tmp = mkdtempSync(join(tmpdir(), 'pinstream-event-store-'));
let ch: ClickHouseServer | undefined;
let chSkip: string | undefined;
const run = `${process.pid}_${Date.now().toString(36)}`;

const duckdb: Adapter = {
  name: 'duckdb',
  open: (id) => DuckDbEventStore.open(join(tmp, id)),
  // Between the rows, rollups and checkpoint and COMMIT.
  crashNextAppend: (s) => {
    const store = (s as DuckDbEventStore).store;
    store.beforeCommit = once(() => (store.beforeCommit = undefined));
  },
  cleanup: async () => rmSync(tmp, { recursive: true, force: true }),
};

const chDatabases = new Set<string>();
const clickhouse: Adapter = {
  name: 'clickhouse',
  async open(id) {
    const database = `pinstream_test_${run}_${id.replace(/[^A-Za-z0-9_]/g, '_')}`;
    chDatabases.add(database);
    return ClickHouseEventStore.open(clickhouseUrl(`${ch!.url}/${database}`, 'test'));
  },
  // Between the rows' insert and the checkpoint row.
  crashNextAppend: (s) => {
    const store = s as ClickHouseEventStore;
    store.beforeCheckpoint = once(() => (store.beforeCheckpoint = undefined));
  },
  async cleanup() {
    for (const database of chDatabases) {
      const s = await ClickHouseEventStore.open(clickhouseUrl(`${ch!.url}/${database}`, 'test'));
      await s.dropDatabase();
      await s.close();
    }
    await ch?.stop();
  },
};

before(async () => {
  const t = await startClickHouse();
  if (t.server) ch = t.server;
  else chSkip = t.skip;
});

after(async () => {
  await duckdb.cleanup();
  if (ch) await clickhouse.cleanup();
});

const FUNNELS: Funnel[] = [
  { id: 'f1', name: 'Session, hard level, purchase', steps: [{ name: 'Session', eventType: '_session.start' }, { name: 'Hard level', eventType: 'level', attributes: [{ name: 'mode', values: ['hard'] }] }, { name: 'Purchase', eventType: '_monetization.purchase' }] },
  // The same event type twice: the second step needs a later event.
  { id: 'f2', name: 'Two sessions', steps: [{ name: 'First', eventType: '_session.start' }, { name: 'Second', eventType: '_session.start' }, { name: 'Sign-up', eventType: '_userauth.sign_up' }] },
];
const DEPS: DashboardDeps = { clock: new ManualClock(USAGE_NOW), retentionDays: 90, funnels: (app) => (app === 'app1' ? FUNNELS : []) };

for (const adapter of [duckdb, clickhouse]) {
  describe(`event store contract: ${adapter.name}`, () => {
    const skip = (t: { skip(m: string): void }) => {
      if (adapter === clickhouse && chSkip !== undefined) {
        t.skip(chSkip);
        return true;
      }
      return false;
    };

    test('repeats within a batch count once, and a batch replayed after a crash in its append counts once', async (t) => {
      if (skip(t)) return;
      const s = await adapter.open('idempotent');
      try {
        const rows = usageRows('app1');
        const first = await s.append([...rows.slice(0, 10), rows[0], rows[1]], { offset: 10 });
        assert.deepEqual(first, { inserted: 10, duplicates: 2 });
        // The loader dies inside the next batch's append; after a restart it reads the checkpoint and loads the batch again.
        adapter.crashNextAppend(s);
        await assert.rejects(s.append(rows.slice(10), { offset: rows.length }), /simulated crash/);
        const { next, loadedTo } = await s.checkpoints();
        assert.deepEqual({ next, loadedTo }, { next: 10, loadedTo: 10 });
        await s.append(rows.slice(next), { offset: rows.length });
        assert.deepEqual(await s.checkpoints(), { next: rows.length, loadedTo: rows.length });
        assert.equal(await s.rowCount(), rows.length);
        const d = await s.dashboard('events', { appId: 'app1', range: USAGE_RANGE, eventType: 'level' }, DEPS);
        assert.equal(d.tiles.find((x) => x.id === 'event-count')!.value, 4);
      } finally {
        await s.close();
      }
    });

    test('the checkpoint starts at 0, resumes after a reopen, and loadedTo never moves back', async (t) => {
      if (skip(t)) return;
      let s = await adapter.open('checkpoint');
      try {
        assert.deepEqual(await s.checkpoints(), { next: 0, loadedTo: 0 });
        const rows = usageRows('app1');
        await s.append(rows.slice(0, 10), { offset: 10 });
        await s.append(rows.slice(10), { offset: 25 });
        assert.deepEqual(await s.checkpoints(), { next: 25, loadedTo: 25 });
        // Another reader's checkpoint is its own.
        await s.append([], { name: 'other', offset: 3 });
        assert.deepEqual(await s.checkpoints('other'), { next: 3, loadedTo: 3 });
        await s.close();
        s = await adapter.open('checkpoint');
        assert.deepEqual(await s.checkpoints(), { next: 25, loadedTo: 25 });
        // A replay moves next back; loadedTo keeps the highest offset ever stored.
        await s.setCheckpoint(5);
        assert.deepEqual(await s.checkpoints(), { next: 5, loadedTo: 25 });
        // The loader skips the records below loadedTo (stored already) and only moves the checkpoint.
        await s.append([], { offset: 10 });
        assert.deepEqual(await s.checkpoints(), { next: 10, loadedTo: 25 });
        assert.equal(await s.rowCount(), rows.length);
      } finally {
        await s.close();
      }
    });

    test('retention deletes exactly the rows before the cutoff, across months', async (t) => {
      if (skip(t)) return;
      const s = await adapter.open('retention');
      try {
        const at = (iso: string, i: number) => eventRow({ appId: 'app1', eventKey: `e/${i}`, eventType: 'x', eventTime: Date.parse(iso), endpointId: 'e' });
        const rows = [
          at('2024-01-15T10:00:00Z', 1),
          at('2024-02-20T10:00:00Z', 2),
          at('2024-03-05T10:00:00Z', 3),
          at('2024-03-05T14:00:00Z', 4),
          at('2024-03-09T10:00:00Z', 5),
        ];
        await s.append(rows);
        assert.equal(await s.deleteOlderThan(Date.parse('2024-03-05T12:00:00Z')), 3);
        assert.equal(await s.rowCount(), 2);
        assert.equal(await s.deleteOlderThan(Date.parse('2024-03-05T12:00:00Z')), 0);
        const d = await s.dashboard('events', { appId: 'app1', range: { start: '2024-03-01', end: '2024-03-10' } }, DEPS);
        assert.deepEqual(
          d.charts[0].rows.filter((r) => r[1] !== 0),
          [['2024-03-05', 1], ['2024-03-09', 1]],
        );
      } finally {
        await s.close();
      }
    });

    test('KPIs answer the hand-worked values', async (t) => {
      if (skip(t)) return;
      const s = await adapter.open('kpi-hand');
      try {
        await s.append(kpiRows('kpiapp'));
        const v = async (scope: KpiScope, name: string) => (await s.kpi(scope, name, { start: D1, end: D2 })).Rows.map((r) => [r.GroupedBys?.[0]?.Value, r.Values[0].Value]);
        assert.deepEqual(await v({ appId: 'kpiapp' }, 'unique-deliveries'), [[undefined, '6.0']]);
        assert.deepEqual(await v({ appId: 'kpiapp' }, 'successful-delivery-rate-grouped-by-date'), [[D1, '0.6666666666666666'], [D2, '1.0']]);
        assert.deepEqual(await v({ appId: 'kpiapp', campaignId: IDS.C3 }, 'sms-spend'), [[undefined, '1935.0']]);
        await assert.rejects(s.kpi({ appId: 'kpiapp' }, 'no-such-kpi', { start: D1, end: D2 }), (e: unknown) => e instanceof ApiError && e.code === 'NotFoundException');
      } finally {
        await s.close();
      }
    });
  });
}

describe('DuckDB and ClickHouse answer alike on the same rows', () => {
  let duck: AnalyticsEventStore;
  let house: AnalyticsEventStore | undefined;

  before(async () => {
    duck = await duckdb.open('same');
    // app3: strings with unpaired surrogates in VARCHAR fields (the JSON ones the loader repairs).
    const odd = usageRows('app3').slice(0, 6).map((r, i) => ({ ...r, eventType: i % 2 ? 'bad\ud800type' : r.eventType, endpointId: `ep\udc00${i % 3}`, country: 'X\ud83d' }));
    const rows = [...kpiRows('kpiapp'), ...kpiRows('otherapp'), ...usageRows('app1'), ...usageRows('app2').slice(0, 9), ...odd];
    await duck.append(rows);
    if (ch) {
      house = await clickhouse.open('same');
      // Merges stopped: the copies stay unmerged, so every query must collapse them itself.
      const stop = await fetch(`${ch.url}/`, { method: 'POST', body: `SYSTEM STOP MERGES ${(house as ClickHouseEventStore).database}.events` });
      assert.equal(stop.status, 200, await stop.text());
      // In three batches, one of them twice: the answers must not see the repeat.
      await house.append(rows.slice(0, 40));
      await house.append(rows.slice(30));
      await house.append(rows.slice(30));
      const [{ parts }] = await (house as ClickHouseEventStore).query(`SELECT count() AS parts FROM system.parts WHERE database = currentDatabase() AND table = 'events' AND active`);
      assert.ok(Number(parts) >= 3, `${parts} parts: the repeat must still be a part of its own`);
    }
  });
  after(async () => {
    await duck?.close();
    await house?.close();
  });

  const scopes: Record<KpiScopeKind, KpiScope[]> = {
    app: [{ appId: 'kpiapp' }, { appId: 'app1' }, { appId: 'nothing-here' }],
    campaign: [IDS.C1, IDS.C2, IDS.C3, 'no-such'].map((campaignId) => ({ appId: 'kpiapp', campaignId })),
    journey: [{ appId: 'kpiapp', journeyId: IDS.J1 }],
  };

  test('every KPI, every scope: equal answers', async (t) => {
    if (!house) return t.skip(chSkip ?? 'ClickHouse not started');
    let answered = 0;
    for (const [name, def] of KPI_NAMES) {
      for (const kind of def.scopes) {
        for (const scope of scopes[kind]) {
          for (const range of [{ start: D1, end: D2 }, { start: D0, end: D1 }]) {
            const a = await duck.kpi(scope, name, range);
            const b = await house!.kpi(scope, name, range);
            assert.deepEqual(b, a, `${name} ${JSON.stringify(scope)} ${range.start}..${range.end}`);
            if (a.Rows.length > 0) answered++;
          }
        }
      }
    }
    // The comparison means something only if most KPIs have data in the fixture.
    assert.ok(answered > 100, `only ${answered} KPI answers had rows`);
  });

  const queries: Array<[string, DashboardQuery]> = [
    ['unfiltered', { appId: 'app1', range: USAGE_RANGE }],
    ['one day', { appId: 'app1', range: { start: '2024-03-03', end: '2024-03-03' } }],
    ['endpoint attribute', { appId: 'app1', range: USAGE_RANGE, endpointAttribute: { name: 'plan', values: ['free'] } }],
    ['event type and attribute', { appId: 'app1', range: USAGE_RANGE, eventType: 'level', eventAttribute: { name: 'mode', values: ['hard'] } }],
    ['odd attribute key', { appId: 'app1', range: USAGE_RANGE, eventAttribute: { name: 'odd key.with "quotes"', values: ["it's"] } }],
    ['event metric', { appId: 'app1', range: USAGE_RANGE, eventType: 'level', eventMetric: { name: 'score', op: '>=', value: 7 } }],
    ['other app', { appId: 'app2', range: USAGE_RANGE }],
    ['unpaired surrogates', { appId: 'app3', range: USAGE_RANGE }],
    ['empty app', { appId: 'nothing-here', range: USAGE_RANGE }],
    ['messaging app', { appId: 'kpiapp', range: { start: '2026-03-01', end: '2026-03-11' } }],
    ['one campaign', { appId: 'kpiapp', range: { start: '2026-03-01', end: '2026-03-11' }, campaignId: IDS.C1 }],
    ['one journey', { appId: 'kpiapp', range: { start: '2026-03-10', end: '2026-03-11' }, journeyId: IDS.J1 }],
    ['channel', { appId: 'app1', range: USAGE_RANGE, channel: 'APNS' }],
    ['one campaign, usage app', { appId: 'app1', range: USAGE_RANGE, campaignId: 'c1' }],
  ];

  for (const name of CLICKHOUSE_DASHBOARDS) {
    test(`${name} dashboard: equal answers`, async (t) => {
      if (!house) return t.skip(chSkip ?? 'ClickHouse not started');
      const all = name !== 'funnels' ? queries : queries.flatMap(([what, q]): Array<[string, DashboardQuery]> =>
        q.appId === 'app1' ? [[what, q], [`${what}, funnel f1`, { ...q, funnelId: 'f1' }], [`${what}, funnel f2`, { ...q, funnelId: 'f2' }]] : [[what, q]]);
      for (const [what, q] of all) {
        const deps = q.appId === 'kpiapp' ? { ...DEPS, clock: new ManualClock(Date.parse('2026-03-20T00:00:00Z')) } : DEPS;
        const b = await house.dashboard(name, q, deps);
        assert.deepEqual(b, await duck.dashboard(name, q, deps), `${what} (DuckDB from rollups)`);
        assert.deepEqual(b, await duck.dashboard(name, q, { ...deps, fromEvents: true }), `${what} (DuckDB from events)`);
      }
    });
  }

  test('event types and filter names: equal answers', async (t) => {
    if (!house) return t.skip(chSkip ?? 'ClickHouse not started');
    assert.ok((await house.eventTypes('app3', 0)).includes('bad\ufffdtype'));
    for (const [app, since] of [['app3', 0], ['app1', Date.parse('2024-03-01T00:00:00Z')], ['app1', Date.parse('2024-03-09T00:00:00Z')], ['kpiapp', 0], ['nothing-here', 0]] as const) {
      assert.deepEqual(await house.eventTypes(app, since), await duck.eventTypes(app, since), `${app} ${since}`);
      assert.deepEqual(await house.filterNames(app, since), await duck.filterNames(app, since), `${app} ${since}`);
    }
    const names = await house.filterNames('app1', 0);
    assert.deepEqual(names.eventAttributes.includes('mode') && names.eventMetrics.includes('score') && names.endpointAttributes, ['plan']);
  });

  test('ClickHouse has every dashboard, and validates queries as DuckDB does', async (t) => {
    if (!house) return t.skip(chSkip ?? 'ClickHouse not started');
    assert.deepEqual([...CLICKHOUSE_DASHBOARDS].sort(), [...DASHBOARDS].sort());
    const bad: DashboardQuery[] = [
      { appId: 'app1', range: { start: '2024-03-05', end: '2024-03-01' } },
      { appId: 'app1', range: USAGE_RANGE, funnelId: 'no-such-funnel' },
      { appId: 'app1', range: USAGE_RANGE, eventMetric: { name: 'score', op: 'LIKE' as '=', value: 1 } },
    ];
    for (const q of bad) {
      const name = q.funnelId ? 'funnels' : 'events';
      const e = await duck.dashboard(name, q, DEPS).then(() => undefined, (x: unknown) => x);
      assert.ok(e instanceof ApiError, JSON.stringify(q));
      await assert.rejects(house.dashboard(name, q, DEPS), (x: unknown) => x instanceof ApiError && x.code === e.code && x.message === e.message);
    }
  });
});
