// What only the ClickHouse adapter has (the shared contract is test/analytics-event-store.test.ts):
// the real loader (loader.ts) loads a real ingest log into it, also across a crash between rows and
// checkpoint, with the same dashboards as DuckDB loaded by the same loader; retention's wait for its
// DELETE mutation is bounded; a ClickHouse that does not answer stops the open with a message naming
// PINSTREAM_CLICKHOUSE_URL; openEventStore picks the adapter from the configuration.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../src/clock.js';
import { AnalyticsLoader } from '../src/analytics/loader.js';
import type { EventStore } from '../src/analytics/store.js';
import { DuckDbEventStore } from '../src/analytics/duckdb-event-store.js';
import { openEventStore } from '../src/analytics/open-event-store.js';
import { SegmentLog } from '../src/log/segment-log.js';
import { encodeIngestEntry } from '../src/pinpoint/ingest-record.js';
import { buildRecord, endpointParts } from '../src/pinpoint/record.js';
import type { StoredEndpoint } from '../src/pinpoint/endpoints.js';
import { clickhouseUrl } from '../src/config/config.js';
import { CLICKHOUSE_MUTATION_TIMEOUT_MS, ClickHouseEventStore } from '../src/analytics/clickhouse/store.js';
import { eventRow } from './helpers/analytics-rows.js';
import { startClickHouse, type ClickHouseServer } from './helpers/clickhouse.js';

let ch: ClickHouseServer | undefined;
let skip: string | undefined;
before(async () => {
  const t = await startClickHouse();
  ch = t.server;
  skip = t.skip;
});
after(async () => {
  await ch?.stop();
});

test(`retention waits for its DELETE at most the mutation timeout (default ${CLICKHOUSE_MUTATION_TIMEOUT_MS} ms), then fails naming it`, async (t) => {
  if (!ch) return t.skip(skip!);
  const database = `pinstream_test_mutation_${process.pid}`;
  const s = await ClickHouseEventStore.open(clickhouseUrl(`${ch.url}/${database}`, 'test'), { mutationTimeoutMs: 1500 });
  try {
    const at = (iso: string, i: number) => eventRow({ appId: 'a', eventKey: `k${i}`, eventType: 'x', eventTime: Date.parse(iso), endpointId: 'e' });
    await s.append([at('2024-03-01T10:00:00Z', 1), at('2024-03-02T10:00:00Z', 2)]);
    // A mutation that can never finish (its condition throws on every part) keeps is_done = 0.
    const r = await fetch(`${ch.url}/`, { method: 'POST', body: `ALTER TABLE ${database}.events DELETE WHERE throwIf(event_ms > 0) = 1` });
    assert.equal(r.status, 200, await r.text());
    await assert.rejects(s.deleteOlderThan(Date.parse('2024-03-02T00:00:00Z')), /did not finish within 1500 ms/);
  } finally {
    await s.dropDatabase();
    await s.close();
  }
});

test('a ClickHouse that does not answer stops the open with a message naming PINSTREAM_CLICKHOUSE_URL', async () => {
  // A port that accepts and closes at once: not an HTTP server.
  const srv = createServer((sock) => sock.destroy());
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  try {
    await assert.rejects(ClickHouseEventStore.open(clickhouseUrl(`http://127.0.0.1:${port}/x`, 'test')), /PINSTREAM_CLICKHOUSE_URL/);
  } finally {
    srv.close();
  }
});

const APP = 'c'.repeat(32);
const T0 = Date.parse('2024-03-01T00:00:00Z');
const DAY = 86_400_000;

function stored(id: string, i: number): StoredEndpoint {
  const endpoint = {
    ApplicationId: APP, Id: id, CohortId: '1', CreationDate: new Date(T0 + (i % 5) * DAY).toISOString(), EffectiveDate: new Date(T0).toISOString(),
    EndpointStatus: 'ACTIVE', OptOut: 'NONE', Demographic: { Platform: i % 2 ? 'ios' : 'android' }, Attributes: { plan: [i % 3 ? 'free' : 'pro'] }, User: { UserId: `u${i % 7}` },
  };
  return { endpoint, json: JSON.stringify(endpoint) };
}

/** `count` PutEvents-built ingest entries over 10 days: sessions, a custom event with attribute and metric, purchases. */
function entries(count: number): string[] {
  const out: string[] = [];
  for (let n = 0; n < count; n++) {
    const i = n % 40;
    const ep = `ep${i}`;
    const ts = T0 + Math.floor((n / count) * 10 * DAY) + (n % 1000);
    const type = n % 5 === 0 ? '_session.start' : n % 7 === 0 ? '_monetization.purchase' : 'level';
    const rec = buildRecord(
      endpointParts(APP, ep, stored(ep, i), '000000000000'),
      { EventType: type, timestampMs: ts, Attributes: { mode: n % 2 ? 'hard' : 'easy' }, Metrics: type === '_monetization.purchase' ? { _item_price: 2, _quantity: 1 + (n % 3) } : { score: n % 100 } },
      ts,
    );
    out.push(encodeIngestEntry(APP, ep, `ev${n}`, rec));
  }
  return out;
}

test('the loader loads a real ingest log into ClickHouse, across a crash between rows and checkpoint, with the dashboards DuckDB gives', async (t) => {
  if (!ch) return t.skip(skip!);
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-ch-loader-'));
  const log = await SegmentLog.open(join(dir, 'log'), { fsync: false, clock: new ManualClock(T0) });
  const database = `pinstream_test_loader_${process.pid}`;
  const house = await ClickHouseEventStore.open(clickhouseUrl(`${ch.url}/${database}`, 'test'));
  const duck = await DuckDbEventStore.open(dir);
  try {
    await log.append(entries(3000));
    // The loader's store type is still DuckDB's class; it calls only checkpoints() and append() (the boundary's).
    const asLoaderStore = (s: unknown) => s as EventStore;
    let failures = 0;
    house.beforeCheckpoint = async () => {
      // The second batch's rows are in, its checkpoint is not: the loader dies here.
      if (++failures === 2) throw new Error('simulated crash');
    };
    await assert.rejects(new AnalyticsLoader(log, asLoaderStore(house), 700).catchUp(), /simulated crash/);
    house.beforeCheckpoint = undefined;
    assert.deepEqual(await house.checkpoints(), { next: 700, loadedTo: 700 });
    await new AnalyticsLoader(log, asLoaderStore(house), 700).catchUp();
    assert.deepEqual(await house.checkpoints(), { next: 3000, loadedTo: 3000 });
    assert.equal(await house.rowCount(), 3000);
    await new AnalyticsLoader(log, duck.store, 700).catchUp();
    const deps = { clock: new ManualClock(T0 + 10 * DAY), retentionDays: 90, funnels: () => [] };
    const q = { appId: APP, range: { start: '2024-03-01', end: '2024-03-11' } };
    for (const name of ['overview', 'usage', 'events', 'revenue', 'demographics'] as const) {
      assert.deepEqual(await house.dashboard(name, q, deps), await duck.dashboard(name, q, deps), name);
    }
    const events = await house.dashboard('events', { ...q, eventType: 'level', eventAttribute: { name: 'mode', values: ['hard'] } }, deps);
    assert.ok(Number(events.tiles[0].value) > 1000, JSON.stringify(events.tiles[0]));
  } finally {
    await house.dropDatabase();
    await house.close();
    await duck.close();
    await log.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('openEventStore: DuckDB without PINSTREAM_CLICKHOUSE_URL, ClickHouse with it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-open-store-'));
  try {
    const d = await openEventStore({ dataDir: dir });
    assert.equal(d.kind, 'duckdb');
    await d.close();
    if (!ch) return t.skip(skip!);
    const c = await openEventStore({ dataDir: dir, clickhouse: clickhouseUrl(`${ch.url}/pinstream_test_open_${process.pid}`, 'test') });
    assert.equal(c.kind, 'clickhouse');
    await (c as ClickHouseEventStore).dropDatabase();
    await c.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
