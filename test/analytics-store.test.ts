// The analytics store and loader on real files: a SegmentLog ingest log of real ingest entries
// (encodeIngestEntry + the PutEvents record builder), DuckDB on disk. Covers idempotent loading
// (a lost checkpoint re-reads everything: no duplicates), restart from the checkpoint committed
// with the rows, a loader killed (SIGKILL) between writing a batch and committing it (nothing of the
// batch visible, the restart loads it once, rollups agree with the rows), and retention by an
// injected clock with the file size it leaves. The endpoint profiles (rollup.ts) against the raw
// events for Demographics, merged across batches out of time order and derived from stored rows;
// the messaging columns added to an older store. The campaign rollup against the raw events for
// Campaigns and the Overview (batches merged, retention, derived from stored rows).

import { test } from 'node:test';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../src/clock.js';
import { SegmentLog } from '../src/log/segment-log.js';
import { decodeIngestEntry, decodeIngestText, encodeIngestEntry } from '../src/pinpoint/ingest-record.js';
import { buildRecord, endpointParts } from '../src/pinpoint/record.js';
import type { StoredEndpoint } from '../src/pinpoint/endpoints.js';
import { EventStore, STORE_CHECKPOINT_THRESHOLD, STORE_MEMORY_LIMIT_MB, type EventRow } from '../src/analytics/store.js';
import { runDashboard } from '../src/analytics/dashboards.js';
import { QueryContext } from '../src/analytics/dashboards/common.js';
import { fromProfiles } from '../src/analytics/dashboards/demographics.js';
import { EVENTS_MESSAGING_COLUMNS, type DashboardResult } from '../src/analytics/types.js';
import { AnalyticsLoader, LOADER_LINGER_RECORDS } from '../src/analytics/loader.js';
import { eventually } from './helpers/eventually.js';
import { applyRetention, DAY_MS } from '../src/analytics/retention.js';
import { until } from './helpers/firehose.js';

const APP = 'a'.repeat(32);
const T0 = Date.parse('2024-01-01T00:00:00Z');

function stored(id: string): StoredEndpoint {
  const endpoint = {
    ApplicationId: APP, Id: id, CohortId: '1', CreationDate: new Date(T0).toISOString(), EffectiveDate: new Date(T0).toISOString(),
    EndpointStatus: 'ACTIVE', OptOut: 'NONE', Demographic: { Platform: 'android' }, Attributes: { plan: ['pro'] },
  };
  return { endpoint, json: JSON.stringify(endpoint) };
}

/** `count` ingest entries of `perDay` events a day from day `fromDay`, event ids `ev<n>` from `first`. */
function entries(first: number, count: number, perDay: number, fromDay = 0): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = first + i;
    const ep = `ep${n % 50}`;
    const ts = T0 + (fromDay + Math.floor(i / perDay)) * DAY_MS + (i % perDay);
    const rec = buildRecord(endpointParts(APP, ep, stored(ep), '000000000000'), { EventType: 'custom', timestampMs: ts, Attributes: { n: String(n) } }, ts);
    out.push(encodeIngestEntry(APP, ep, `ev${n}`, rec));
  }
  return out;
}

async function setup() {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-analytics-'));
  const log = await SegmentLog.open(join(dir, 'log'), { fsync: false, clock: new ManualClock(T0) });
  return { dir, log, cleanup: async () => { await log.close(); await rm(dir, { recursive: true, force: true }); } };
}

test('a re-read from an older checkpoint (lost checkpoint, replay) stores no duplicates', async () => {
  const { dir, log, cleanup } = await setup();
  try {
    await log.append(entries(0, 3000, 1000));
    // The same event twice within one loader batch (offsets 2995 and 3000, batch 2800..3000): one row.
    await log.append(entries(2995, 1, 1000));
    const store = await EventStore.open(dir);
    const loader = new AnalyticsLoader(log, store, 700);
    await loader.catchUp();
    assert.equal(await store.rowCount(), 3000);
    assert.equal(await store.checkpoint(), 3001);
    assert.equal(loader.health().duplicates, 1);
    await store.setCheckpoint(1234);
    await loader.catchUp();
    await store.setCheckpoint(0);
    await loader.catchUp();
    assert.equal(await store.rowCount(), 3000);
    assert.equal(loader.health().loaded, 3000);
    assert.equal(loader.health().duplicates, 1 + (3001 - 1234) + 3001);
    const keys = await (await store.connect()).runAndReadAll('SELECT count(DISTINCT event_key) FROM events');
    assert.equal(Number(keys.getRowsJS()[0][0]), 3000);
    await store.close();
  } finally {
    await cleanup();
  }
});

test('the loader restarts from the checkpoint committed with the rows; rows carry the record fields', async () => {
  const { dir, log, cleanup } = await setup();
  try {
    await log.append(entries(0, 500, 100));
    let store = await EventStore.open(dir);
    await new AnalyticsLoader(log, store).catchUp();
    await store.close();
    await log.append(entries(500, 250, 100, 5));
    store = await EventStore.open(dir);
    assert.equal(await store.checkpoint(), 500);
    const loader = new AnalyticsLoader(log, store);
    await loader.catchUp();
    // Nothing read twice: only the new records went through.
    assert.deepEqual({ loaded: loader.health().loaded, duplicates: loader.health().duplicates }, { loaded: 250, duplicates: 0 });
    assert.equal(await store.rowCount(), 750);
    const conn = await store.connect();
    const row = (await conn.runAndReadAll(
      `SELECT event_key, event_type, CAST(day AS VARCHAR), endpoint_id, platform, json_extract_string(attributes, '$.n'), CAST(endpoint_attributes AS VARCHAR)
       FROM events WHERE event_key = 'ep1/ev501'`,
    )).getRowsJS();
    assert.deepEqual(row, [['ep1/ev501', 'custom', '2024-01-06', 'ep1', 'android', '501', '{"plan":["pro"]}']]);
    conn.closeSync();
    // The running loop picks up appends by itself.
    loader.start();
    await log.append(entries(750, 10, 100, 8));
    for (let i = 0; i < 100 && (await store.rowCount()) < 760; i++) await log.waitFor(1_000_000, 50);
    assert.equal(await store.rowCount(), 760);
    await loader.stop();
    await store.close();
  } finally {
    await cleanup();
  }
});

/** Child: loads with batches of 500 and stops before the second COMMIT, telling the parent. */
const crashChild = (storeUrl: string, loaderUrl: string, logUrl: string, clockUrl: string) => `
import { EventStore } from ${JSON.stringify(storeUrl)};
import { AnalyticsLoader } from ${JSON.stringify(loaderUrl)};
import { SegmentLog } from ${JSON.stringify(logUrl)};
import { ManualClock } from ${JSON.stringify(clockUrl)};
const [dir] = process.argv.slice(2);
const log = await SegmentLog.open(dir + '/log', { fsync: false, clock: new ManualClock(0) });
const store = await EventStore.open(dir);
let commits = 0;
store.beforeCommit = async () => {
  if (++commits < 2) return;
  process.stdout.write('paused\\n');
  await new Promise(() => setInterval(() => {}, 1000));
};
await new AnalyticsLoader(log, store, 500).catchUp();
`;

async function sums(store: EventStore) {
  const conn = await store.connect();
  try {
    const r = await conn.runAndReadAll(`SELECT (SELECT count(*) FROM events), (SELECT count(DISTINCT event_key) FROM events),
      (SELECT coalesce(sum(n), 0) FROM daily_counts), (SELECT count(*) FROM activity_ids WHERE kind = 'e')`);
    const [rows, keys, counted, endpoints] = r.getRowsJS()[0].map(Number);
    return { rows, keys, counted, endpoints };
  } finally {
    conn.closeSync();
  }
}

test('a loader killed between writing a batch and its COMMIT leaves nothing of it; the restart loads it once', async () => {
  const { dir, log, cleanup } = await setup();
  try {
    await log.append(entries(0, 1500, 500));
    const script = join(dir, 'crash-child.mjs');
    const url = (p: string) => new URL(p, import.meta.url).href;
    await writeFile(script, crashChild(url('../src/analytics/store.js'), url('../src/analytics/loader.js'), url('../src/log/segment-log.js'), url('../src/clock.js')));
    const child = spawn(process.execPath, [script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const paused = await new Promise<boolean>((resolve) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('paused') && resolve(true));
      child.on('exit', () => resolve(false));
    });
    assert.ok(paused, 'the child reached the second COMMIT');
    child.kill('SIGKILL');
    await exited;

    const store = await EventStore.open(dir);
    // The first batch (500 records) committed; the second, written but not committed, is gone.
    assert.equal(await store.checkpoint(), 500);
    assert.deepEqual(await sums(store), { rows: 500, keys: 500, counted: 500, endpoints: 50 });
    const loader = new AnalyticsLoader(log, store, 500);
    await loader.catchUp();
    assert.deepEqual({ loaded: loader.health().loaded, duplicates: loader.health().duplicates }, { loaded: 1000, duplicates: 0 });
    assert.deepEqual(await sums(store), { rows: 1500, keys: 1500, counted: 1500, endpoints: 50 });
    await store.close();
  } finally {
    await cleanup();
  }
});

test('retention deletes rows older than the window by the injected clock; the file stops growing', async () => {
  const { dir, log, cleanup } = await setup();
  try {
    const perDay = 20_000;
    const store = await EventStore.open(dir);
    const loader = new AnalyticsLoader(log, store);
    const clock = new ManualClock(T0);
    // Days 0..9, then keep 5 days as of day 10: days 0..4 go.
    await log.append(entries(0, 10 * perDay, perDay));
    await loader.catchUp();
    await store.compact();
    const full = store.fileBytes();
    clock.set(T0 + 10 * DAY_MS);
    const r = await applyRetention(store, clock, 5);
    assert.equal(r.deleted, 5 * perDay);
    assert.equal(await store.rowCount(), 5 * perDay);
    const conn = await store.connect();
    const oldest = (await conn.runAndReadAll('SELECT CAST(min(day) AS VARCHAR) FROM events')).getRowsJS()[0][0];
    conn.closeSync();
    assert.equal(oldest, '2024-01-06');
    // Measured: the CHECKPOINT right after the DELETE leaves the file size as it was (blocks go to
    // the free list); later loads reuse them and a checkpoint may truncate free blocks at the end.
    // Without reuse each round below would add half the first size (2.5x after three rounds).
    const afterDelete = store.fileBytes();
    const setting = await store.connect();
    assert.equal((await setting.runAndReadAll(`SELECT current_setting('checkpoint_threshold')`)).getRowsJS()[0][0], STORE_CHECKPOINT_THRESHOLD.replace('MiB', '.0 MiB'));
    // DuckDB's memory is bounded by STORE_MEMORY_LIMIT_MB when the caller names no limit, not 80% of the machine.
    assert.equal(STORE_MEMORY_LIMIT_MB, 1024);
    assert.equal((await setting.runAndReadAll(`SELECT current_setting('memory_limit')`)).getRowsJS()[0][0], '1.0 GiB');
    setting.closeSync();
    // With STORE_CHECKPOINT_THRESHOLD the load checkpoints a few times instead of per batch, so `full`
    // has no free blocks left by earlier checkpoints; the checkpoint after the DELETE writes the
    // changed row groups before the old blocks are freed (measured: 5.3 MB full, 7.1 MB after; each
    // checkpoint per batch gave 7.9 MB and 7.9 MB). Bounded like the rounds below.
    assert.ok(afterDelete <= full * 1.5, `retention must not grow the file much (${afterDelete} > 1.5 x ${full})`);
    const sizes: number[] = [];
    for (let round = 0; round < 3; round++) {
      await log.append(entries((10 + 5 * round) * perDay, 5 * perDay, perDay, 10 + 5 * round));
      await loader.catchUp();
      clock.set(T0 + (15 + 5 * round) * DAY_MS);
      assert.equal((await applyRetention(store, clock, 5)).deleted, 5 * perDay);
      assert.equal(await store.rowCount(), 5 * perDay);
      sizes.push(store.fileBytes());
    }
    console.log(`analytics file bytes: full=${full} afterRetention=${afterDelete} rounds=${sizes.join(',')}`);
    assert.ok(Math.max(...sizes) <= full * 1.5, `the file stops growing: ${sizes.join(', ')} bytes vs ${full} for the first window`);
    await store.close();
  } finally {
    await cleanup();
  }
});

/** A row of endpoint `ep` on day `day` (hour `hour`) with the given demographic fields. */
function demoRow(n: number, ep: string, day: number, hour: number, f: Partial<EventRow>): EventRow {
  const t = T0 + day * DAY_MS + hour * 3_600_000;
  return {
    appId: APP, eventKey: `${ep}/d${n}`, eventType: 'custom', eventTime: t, arrivalTime: t, endpointId: ep, userId: null, endpointCreated: null,
    sessionId: null, sessionStart: null, channel: 'GCM', platform: null, platformVersion: null, appVersion: null, make: null, model: null, country: null,
    attributes: '{}', metrics: '{}', endpointAttributes: '{}', campaignId: null, campaignActivityId: null, treatmentId: null, journeyId: null, journeyActivityId: null,
    campaignSendStatus: null, journeySendStatus: null, deliveryType: null, journeyActivityType: null,
    ...f,
  };
}

test('endpoint profiles answer Demographics as the range events do, also when derived from stored rows', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-analytics-'));
  const clock = new ManualClock(T0 + 5 * DAY_MS);
  const deps = { clock, retentionDays: 90, funnels: () => [] };
  const ranges = [0, 1, 2, 3].map((d) => ({ start: new Date(T0 + d * DAY_MS).toISOString().slice(0, 10), end: '2024-01-04' }));
  const compare = async (store: EventStore) => {
    const conn = await store.connect();
    try {
      const answers = [];
      for (const range of ranges) {
        const q = { appId: APP, range };
        assert.equal(await fromProfiles(new QueryContext(conn, q), Date.parse(range.start), Date.parse(range.end)), true, 'profiles serve ranges ending on the latest day');
        const fast = await runDashboard(conn, 'demographics', q, deps);
        assert.deepEqual(fast, await runDashboard(conn, 'demographics', q, { ...deps, fromEvents: true }), `${range.start}..${range.end}`);
        answers.push(fast);
      }
      const early = { appId: APP, range: { start: '2024-01-01', end: '2024-01-02' } };
      assert.equal(await fromProfiles(new QueryContext(conn, early), Date.parse('2024-01-01'), Date.parse('2024-01-02')), false, 'a range before the latest event reads events');
      return answers;
    } finally {
      conn.closeSync();
    }
  };
  try {
    let store = await EventStore.open(dir);
    // ep-a moves android/US → ios with no country; ep-b gets its platform late; ep-c is seen once.
    // Two batches, out of time order, so the merge by time is exercised.
    await store.append([
      demoRow(1, 'ep-a', 2, 5, { platform: 'ios', model: 'X', endpointAttributes: '{"plan":["pro"]}' }),
      demoRow(2, 'ep-b', 1, 0, { country: 'DE' }),
      demoRow(3, 'ep-c', 0, 1, { platform: 'web', country: 'FR', endpointAttributes: '{"plan":["free","trial"]}' }),
    ]);
    await store.append([
      demoRow(4, 'ep-a', 0, 3, { platform: 'android', country: 'US', model: 'Y', endpointAttributes: '{"plan":["free"]}' }),
      demoRow(5, 'ep-a', 3, 1, {}),
      demoRow(6, 'ep-b', 3, 2, { platform: 'android' }),
    ]);
    const answers = await compare(store);
    const chart = (i: number, id: string) => answers[i].charts.find((c) => c.id === id)?.rows;
    assert.deepEqual(chart(0, 'platform'), [['android', 1, 33.333333], ['ios', 1, 33.333333], ['web', 1, 33.333333]]);
    // From day 1 on, ep-a's US event is out of the range and ep-c is not seen at all.
    assert.deepEqual(chart(1, 'country'), [['DE', 1, 50], ['Unknown', 1, 50]]);
    assert.deepEqual(chart(3, 'platform'), [['Unknown', 1, 50], ['android', 1, 50]]);
    assert.deepEqual(chart(0, 'attribute:plan'), [['free', 1, 33.333333], ['pro', 1, 33.333333], ['trial', 1, 33.333333]]);
    // A store from before the profiles table: opening derives it from the rows.
    const conn = await store.connect();
    await conn.run('DROP TABLE endpoint_profiles');
    conn.closeSync();
    await store.close();
    store = await EventStore.open(dir);
    assert.deepEqual(await compare(store), answers);
    await store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a store from before the messaging columns gets them filled from the attributes when opened', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-analytics-'));
  try {
    let store = await EventStore.open(dir);
    const attributes = JSON.stringify({ campaign_id: 'c1', campaign_send_status: 'SUCCESS', delivery_type: 'GCM', journey_activity_type: '' });
    await store.append([
      demoRow(1, 'ep-a', 0, 1, { eventType: '_campaign.send', attributes, campaignId: 'c1' }),
      demoRow(2, 'ep-b', 0, 2, { attributes: JSON.stringify({ journey_send_status: 'FAILURE' }) }),
      demoRow(3, 'ep-c', 0, 3, {}),
    ]);
    // The old table had no messaging columns.
    let conn = await store.connect();
    for (const col of EVENTS_MESSAGING_COLUMNS) await conn.run(`ALTER TABLE events DROP COLUMN ${col}`);
    conn.closeSync();
    await store.close();
    store = await EventStore.open(dir);
    conn = await store.connect();
    const rows = (await conn.runAndReadAll(`SELECT endpoint_id, ${EVENTS_MESSAGING_COLUMNS.join(', ')} FROM events ORDER BY endpoint_id`)).getRowsJS();
    assert.deepEqual(rows, [
      ['ep-a', 'SUCCESS', null, 'GCM', ''],
      ['ep-b', null, 'FAILURE', null, null],
      ['ep-c', null, null, null, null],
    ]);
    conn.closeSync();
    // Rows appended after the upgrade land in the same columns.
    await store.append([demoRow(4, 'ep-d', 1, 1, { campaignSendStatus: 'SUCCESS' })]);
    assert.equal(await store.rowCount(), 4);
    await store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the campaign rollup answers Campaigns and the Overview campaign tiles as the raw events do', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-analytics-'));
  const clock = new ManualClock(T0 + 6 * DAY_MS);
  const deps = { clock, retentionDays: 90, funnels: () => [] };
  // Seeded PRNG (mulberry32): varied but repeatable rows.
  let seed = 11;
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const TYPES = ['_campaign.send', '_campaign.send', '_email.delivered', '_SMS.SUCCESS', '_email.open', '_campaign.opened_notification', '_email.click',
    '_email.hardbounce', '_email.softbounce', '_email.complaint', '_email.unsubscribe', '_SMS.OPTOUT', 'custom'];
  let n = 0;
  const row = (): EventRow => {
    const campaignId = pick(['c1', 'c2', 'c3']);
    const t = T0 + Math.floor(rand() * 5 * DAY_MS);
    const ep = `ep${Math.floor(rand() * 12)}`;
    const day = Math.floor((t - T0) / DAY_MS);
    return demoRow(n++, ep, day, Math.floor((t - T0 - day * DAY_MS) / 3_600_000), {
      eventType: pick(TYPES), campaignId, treatmentId: pick([null, '0', '1']), campaignActivityId: pick([null, `${campaignId}-r1`, `${campaignId}-r2`]),
      campaignSendStatus: pick(['SUCCESS', 'FAILURE', null]), deliveryType: pick(['EMAIL', 'SMS', 'GCM', null]),
      journeyActivityType: pick([null, 'EMAIL']), eventTime: t,
    });
  };
  const compare = async (store: EventStore) => {
    const conn = await store.connect();
    const answers = [];
    try {
      for (const range of [{ start: '2024-01-01', end: '2024-01-05' }, { start: '2024-01-02', end: '2024-01-03' }, { start: '2024-01-06', end: '2024-01-06' }]) {
        for (const [name, extra] of [['campaigns', {}], ['campaigns', { campaignId: 'c2' }], ['campaigns', { campaignId: 'none' }], ['overview', {}]] as const) {
          const q = { appId: APP, range, ...extra };
          // The Overview's other tiles come from the activity rollups (compared in analytics-metrics): only its campaign tiles here.
          const part = (r: DashboardResult) => (name === 'overview' ? r.tiles.filter((x) => x.id.startsWith('campaign-')) : r);
          const fast = part(await runDashboard(conn, name, q, deps));
          assert.deepEqual(fast, part(await runDashboard(conn, name, q, { ...deps, fromEvents: true })), `${name} ${JSON.stringify(extra)} ${range.start}..${range.end}`);
          answers.push(fast);
        }
      }
      return answers;
    } finally {
      conn.closeSync();
    }
  };
  try {
    let store = await EventStore.open(dir);
    // Several batches: the same (campaign, day) rows are merged across them.
    for (let b = 0; b < 4; b++) await store.append(Array.from({ length: 300 }, row));
    const answers = await compare(store);
    const first = answers[0] as DashboardResult;
    assert.ok(first.charts.find((c) => c.id === 'campaigns')!.rows.length >= 6, 'campaign × treatment groups');
    const tiles = Object.fromEntries(first.tiles.map((x) => [x.id, x.value]));
    assert.ok((tiles['endpoint-deliveries'] ?? 0) > 0 && (tiles['links-clicked'] ?? 0) > 0 && (tiles['open-rate'] ?? 0) > 0, JSON.stringify(tiles));
    // Retention drops rollup days with the rows.
    await store.deleteOlderThan(T0 + 2 * DAY_MS);
    await compare(store);
    // A store from before the campaign rollup: opening derives it from the rows.
    let conn = await store.connect();
    await conn.run('DROP TABLE campaign_days');
    conn.closeSync();
    await store.close();
    store = await EventStore.open(dir);
    const derived = await compare(store);
    conn = await store.connect();
    assert.ok(Number((await conn.runAndReadAll('SELECT count(*) FROM campaign_days')).getRowsJS()[0][0]) > 0, 'rollup rows derived');
    conn.closeSync();
    assert.equal(derived.length, answers.length);
    await store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('stopping the loader while it backs off after a failed commit resolves (nothing else keeps the process busy)', async () => {
  const { dir, log, cleanup } = await setup();
  try {
    await log.append(entries(0, 10, 10));
    const store = await EventStore.open(dir);
    // The commit fails, as DuckDB's does on a full disk; the loop then waits before trying again.
    const failing = Object.create(store) as EventStore;
    let failures = 0;
    failing.append = async () => {
      failures++;
      throw new Error('IO Error: No space left on device');
    };
    const loader = new AnalyticsLoader(log, failing);
    loader.start();
    for (let i = 0; i < 1000 && failures === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(failures > 0);
    // With an unref'd back-off timer, this await was the only thing left: the test was cancelled
    // ("Promise resolution is still pending but the event loop has already resolved").
    await loader.stop();
    assert.match(loader.health().lastError ?? '', /No space left/);
    await store.close();
  } finally {
    await cleanup();
  }
});

test('the loader on the consumer kit: a failing store is retried with a growing jittered backoff, state and retries in health, then it recovers; lag while behind', async () => {
  const { dir, log, cleanup } = await setup();
  try {
    await log.append(entries(0, 40, 40));
    const store = await EventStore.open(dir);
    const failing = Object.create(store) as EventStore;
    let failures = 0;
    failing.append = async (rows, checkpoint) => {
      if (failures < 3) {
        failures++;
        throw new Error('IO Error: No space left on device');
      }
      return store.append(rows, checkpoint);
    };
    // Jitter at its largest so the delays are the caps: 20, 40, 80 ms.
    const loader = new AnalyticsLoader(log, failing, 10, { backoff: { baseMs: 20, maxMs: 1000 }, random: () => 0.999 });
    await loader.checkCheckpoint();
    const before = loader.health();
    assert.equal(before.state, 'stopped');
    assert.equal(before.recordsBehind, 40);
    assert.ok(before.millisBehind >= 1);
    const started = performance.now();
    loader.start();
    await until(() => loader.health().checkpoint === 40, 'the loader to load after the store recovers', 30_000);
    assert.ok(performance.now() - started >= 20 + 40 + 80 - 15, 'three backoffs were waited');
    const h = loader.health();
    assert.equal(h.retries, 3);
    assert.equal(h.state, 'running');
    assert.match(h.lastError ?? '', /^analytics load: IO Error: No space left/);
    assert.deepEqual({ loaded: h.loaded, recordsBehind: h.recordsBehind, millisBehind: h.millisBehind }, { loaded: 40, recordsBehind: 0, millisBehind: 0 });
    await loader.stop();
    assert.equal(loader.health().state, 'stopped');
    assert.equal(await store.rowCount(), 40);
    await store.close();
  } finally {
    await cleanup();
  }
});

test('decodeIngestText (the loader\'s one-decode path) reads entries as decodeIngestEntry does, history marks and non-ASCII ids included', () => {
  for (const [entry, history] of [
    [encodeIngestEntry('app', 'ép\n1', 'ev"1', '{"a":"ü\\n"}'), false],
    [encodeIngestEntry('app', 'ep', 'ev', '{}', true), true],
  ] as const) {
    const bytes = decodeIngestEntry(Buffer.from(entry));
    const text = decodeIngestText(entry);
    assert.deepEqual({ ...text, record: text.record }, { ...bytes, record: bytes.record.toString('utf8') });
    assert.equal(text.history === true, history);
  }
  assert.throws(() => decodeIngestText('{"not":"an entry"}'), /missing header line/);
  assert.throws(() => decodeIngestText('["no newline"]'), /missing header line/);
});

test('a caught-up loader woken by a few records lets more gather into one transaction (LOADER_LINGER_MS); a backlog of LOADER_LINGER_RECORDS loads at once', async () => {
  const { dir, log, cleanup } = await setup();
  const store = await EventStore.open(dir);
  const appends: number[] = [];
  const counting = {
    append: (rows: readonly EventRow[], o: { offset: number }) => {
      appends.push(rows.length);
      return store.append(rows, o);
    },
    checkpoints: () => store.checkpoints(),
  };
  // The loop's pauses, held until the test lets them end: the marker that the loader lingers.
  const pauses: Array<{ ms: number; end: () => void }> = [];
  const sleep = (ms: number) => new Promise<void>((end) => pauses.push({ ms, end }));
  // The log, with a marker when the loader waits on it (caught up).
  const waits: number[] = [];
  const watched = new Proxy(log, {
    get(target, p) {
      if (p === 'waitFor') return (offset: number, ms: number) => (waits.push(offset), target.waitFor(offset, ms));
      const v = Reflect.get(target, p, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const loader = new AnalyticsLoader(watched, counting, undefined, { sleep, lingerMs: 777 });
  try {
    loader.start();
    await eventually(async () => assert.ok(waits.includes(0), 'the loader waits at the empty log\'s end'));
    await log.append(entries(0, 1, 10));
    await eventually(async () => assert.equal(pauses.length, 1, `woken by one record, the loader lingers: ${JSON.stringify(loader.health())}`));
    assert.equal(pauses[0].ms, 777);
    assert.deepEqual(appends, [], 'nothing loaded while it lingers');
    await log.append(entries(1, 9, 10));
    pauses[0].end();
    await eventually(async () => assert.equal(await store.checkpoint(), 10));
    assert.deepEqual(appends, [10], 'the record that woke it and the nine after it: one transaction');
    // A backlog of a linger's worth arrives at once: loaded without a pause.
    await log.append(entries(10, LOADER_LINGER_RECORDS, 1000));
    await eventually(async () => assert.equal(await store.checkpoint(), 10 + LOADER_LINGER_RECORDS));
    assert.equal(pauses.length, 1, 'no linger before a full backlog');
    assert.equal(await store.rowCount(), 10 + LOADER_LINGER_RECORDS);
  } finally {
    for (const p of pauses) p.end();
    await loader.stop();
    await store.close();
    await cleanup();
  }
});
