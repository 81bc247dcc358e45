// The analytics thread (src/analytics/thread.ts, remote.ts) on real files: a SegmentLog ingest log
// of real ingest entries, DuckDB on disk, the Worker started as the server starts it. Covers that
// the loader and DuckDB run on another thread than the caller's (the main thread keeps answering
// while a load runs), that the thread's errors arrive as errors with their message (an ApiError
// stays one), that a call the thread does not answer fails after its timeout, and that a thread
// that dies fails its open calls at once, is restarted (ANALYTICS_THREAD_MAX_RESTARTS times) and
// then fails every call with a clear error instead of hanging.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, threadId } from 'node:worker_threads';
import { ManualClock } from '../src/clock.js';
import { ApiError } from '../src/http/errors.js';
import { SegmentLog } from '../src/log/segment-log.js';
import { encodeIngestEntry } from '../src/pinpoint/ingest-record.js';
import { buildRecord, endpointParts } from '../src/pinpoint/record.js';
import { openDb } from '../src/store/db.js';
import { recordToRow } from '../src/analytics/loader.js';
import { APPEND_CHUNK_ROWS } from '../src/analytics/store.js';
import { ANALYTICS_THREAD_MAX_RESTARTS, PinstreamAnalytics, type AnalyticsOptions } from '../src/analytics/index.js';
import { until } from './helpers/firehose.js';

const APP = 'a'.repeat(32);
const T0 = Date.parse('2024-01-01T00:00:00Z');

function entries(first: number, count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = first + i;
    const ep = `ep${n % 50}`;
    const endpoint = { ApplicationId: APP, Id: ep, CohortId: '1', CreationDate: new Date(T0).toISOString(), EffectiveDate: new Date(T0).toISOString(), EndpointStatus: 'ACTIVE', OptOut: 'NONE' };
    const ts = T0 + i;
    const rec = buildRecord(endpointParts(APP, ep, { endpoint, json: JSON.stringify(endpoint) }, '000000000000'), { EventType: 'custom', timestampMs: ts }, ts);
    out.push(encodeIngestEntry(APP, ep, `ev${n}`, rec));
  }
  return out;
}

async function setup(extra: Partial<AnalyticsOptions> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-analytics-thread-'));
  const clock = new ManualClock(T0 + 86_400_000);
  const log = await SegmentLog.open(join(dir, 'log'), { fsync: false, clock });
  const db = openDb(dir);
  const analytics = await PinstreamAnalytics.open({ dataDir: dir, ingestLog: log, db, clock, retentionDays: 90, ...extra });
  analytics.onCrash = () => {}; // the tests below crash it on purpose
  return {
    log,
    analytics,
    cleanup: async () => {
      await analytics.close();
      await log.close();
      db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

test('the loader and DuckDB run on the analytics thread, and the calling thread keeps answering while it loads', async () => {
  const { log, analytics, cleanup } = await setup();
  try {
    assert.ok(isMainThread);
    assert.notEqual(analytics.threadId, threadId, 'the store is opened on another thread');
    for (let i = 0; i < 20; i++) await log.append(entries(i * 1000, 1000));
    // While the thread loads 20,000 records, this thread's event loop turns: a timer set after the
    // load started fires before the load is over (on one thread, the load's parsing would hold it).
    let turns = 0;
    let loading = true;
    const load = analytics.catchUp().finally(() => (loading = false));
    await new Promise<void>((resolve) => {
      const tick = () => {
        turns++;
        if (loading) setImmediate(tick);
        else resolve();
      };
      setImmediate(tick);
    });
    await load;
    assert.ok(turns > 1, `the main thread's event loop turned ${turns} times during the load`);
    const health = await analytics.loaderHealth();
    assert.equal(health.loaded, 20_000);
    assert.equal(health.checkpoint, log.endOffset());
    assert.notEqual(health.threadId, threadId, 'the loader reports from the analytics thread');
    assert.equal(health.threadId, analytics.threadId);
    assert.deepEqual(await analytics.query('SELECT count(*)::INTEGER FROM events'), [[20_000]]);
    // The thread read the segment log's files itself: no batch was read and copied on this thread.
    assert.equal(analytics.mainThreadLogReads, 0);
  } finally {
    await cleanup();
  }
});

test('errors from the thread arrive with their message; an ApiError keeps its code and status', async () => {
  const { analytics, cleanup } = await setup();
  try {
    await assert.rejects(analytics.query('SELECT no_such_column FROM events'), /no_such_column/);
    const e = await analytics.kpi({ appId: APP }, 'no-such-kpi', { start: '2024-01-01', end: '2024-01-02' }).then(
      () => undefined,
      (err: unknown) => err,
    );
    assert.ok(e instanceof ApiError, `an ApiError, got ${String(e)}`);
    assert.equal(e.code, 'NotFoundException');
    assert.equal(e.status, 404);
    assert.match(e.message, /no-such-kpi/);
  } finally {
    await cleanup();
  }
});

test('a call the thread does not answer in time fails with a timeout naming it', async () => {
  const { analytics, cleanup } = await setup({ loadTimeoutMs: 200, background: false });
  try {
    const row = recordToRow(APP, 'ep1', 'late', { event_type: 'custom', event_timestamp: T0 });
    // The thread waits inside its transaction for this hook, which answers only after the call gave up.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    await assert.rejects(analytics.appendNew([row], () => held), /the analytics thread did not answer appendNew within 200 ms/);
    release();
  } finally {
    await cleanup();
  }
});

test('a thread that dies fails its open calls at once, is restarted, and after too many deaths every call fails clearly', async () => {
  // No background loader: the thread is killed only while it waits for this thread (terminating a
  // thread inside a DuckDB call aborts the process, which is not what this test is about).
  const { log, analytics, cleanup } = await setup({ background: false });
  try {
    await log.append(entries(0, 100));
    await analytics.catchUp();
    let count = 100;
    for (let death = 1; death <= ANALYTICS_THREAD_MAX_RESTARTS; death++) {
      const before = analytics.threadId;
      // A history batch the thread holds inside its transaction until this hook answers; it never does.
      let waiting!: () => void;
      const inHook = new Promise<void>((resolve) => (waiting = resolve));
      const row = recordToRow(APP, 'ep1', `lost${death}`, { event_type: 'custom', event_timestamp: T0 });
      const pending = analytics.appendNew([row], () => {
        waiting();
        return new Promise<void>(() => {});
      });
      await inHook;
      await analytics.kill();
      await assert.rejects(pending, /analytics thread exited/);
      // A new thread opens the same store: the loaded rows are there (the dead batch is not) and loading goes on.
      await log.append(entries(death * 100, 100));
      count += 100;
      await analytics.catchUp();
      assert.notEqual(analytics.threadId, before);
      assert.deepEqual(await analytics.query('SELECT count(*)::INTEGER FROM events'), [[count]]);
    }
    await analytics.kill();
    await assert.rejects(analytics.query('SELECT 1'), /analytics is unavailable: the analytics thread failed/);
    await assert.rejects(analytics.catchUp(), /analytics is unavailable/);
  } finally {
    await cleanup();
  }
});

test('a batch longer than APPEND_CHUNK_ROWS is stored row for row across its data chunks, NULLs and times included', async () => {
  const { analytics, cleanup } = await setup({ background: false });
  try {
    const n = APPEND_CHUNK_ROWS * 2 + 1;
    const rows = Array.from({ length: n }, (_, i) =>
      recordToRow(APP, `ep${i}`, `ev${i}`, {
        event_type: `t${i % 3}`,
        event_timestamp: T0 + i * 1000,
        ...(i % 2 === 0 ? { session: { session_id: `s${i}`, start_timestamp: T0 } } : {}),
        attributes: { k: `v${i}` },
      }),
    );
    assert.deepEqual(await analytics.appendNew(rows), { inserted: n, duplicates: 0 });
    const got = await analytics.query(
      `SELECT event_key, event_type, epoch_ms(event_time)::DOUBLE, day::VARCHAR, session_id, json_extract_string(attributes, '$.k') FROM events ORDER BY event_time`,
    );
    assert.equal(got.length, n);
    for (const i of [0, 1, APPEND_CHUNK_ROWS - 1, APPEND_CHUNK_ROWS, APPEND_CHUNK_ROWS + 1, n - 1]) {
      const day = new Date(T0 + i * 1000).toISOString().slice(0, 10);
      assert.deepEqual(got[i], [`ep${i}/ev${i}`, `t${i % 3}`, T0 + i * 1000, day, i % 2 === 0 ? `s${i}` : null, `v${i}`], `row ${i}`);
    }
  } finally {
    await cleanup();
  }
});

/** The lag's records and checkpoint (and millisBehind when nothing is behind, where it is exactly 0). */
function lagOf(a: { loaderLag(): { recordsBehind: number; checkpoint: number; millisBehind: number } | undefined }) {
  const l = a.loaderLag()!;
  return { recordsBehind: l.recordsBehind, checkpoint: l.checkpoint, ...(l.recordsBehind === 0 ? { millisBehind: l.millisBehind } : {}) };
}

test('the loader lag is known on the calling thread without a call into the analytics thread: records behind its last reported checkpoint, 0 once loaded', async () => {
  const { log, analytics, cleanup } = await setup();
  try {
    // The loader reports its checkpoint with each read and wait; its first wait comes soon after open.
    await until(() => analytics.loaderLag(), 'the loader to report its checkpoint once');
    assert.deepEqual(lagOf(analytics), { recordsBehind: 0, checkpoint: 0, millisBehind: 0 });
    await log.append(entries(0, 5000));
    // Synchronously after the append: nothing of it can be loaded yet, and the lag says so.
    assert.deepEqual(lagOf(analytics), { recordsBehind: 5000, checkpoint: 0 });
    assert.ok(analytics.loaderLag()!.millisBehind >= 1, 'records behind are at least 1 ms old');
    await analytics.catchUp();
    await until(() => analytics.loaderLag()?.recordsBehind === 0, 'the lag to drop to 0 after the load', 60_000);
    assert.deepEqual(lagOf(analytics), { recordsBehind: 0, checkpoint: 5000, millisBehind: 0 });
    assert.equal((await analytics.loaderHealth()).checkpoint, 5000);
  } finally {
    await cleanup();
  }
});

test('with the parse thread (forced on: PARSE_THREAD_MIN_CPUS) the loader stores the same rows; a trickle below PARSE_THREAD_MIN_RECORDS is parsed on the analytics thread', async () => {
  const on = await setup({ parseThreadCpus: 64 });
  const off = await setup({ parseThreadCpus: 1 });
  try {
    for (const s of [on, off]) {
      for (let i = 0; i < 5; i++) await s.log.append(entries(i * 1000, 1000));
      await s.log.append(entries(5000, 10));
      await s.analytics.catchUp();
      await s.log.append(entries(5010, 5));
      await s.analytics.catchUp();
      const h = await s.analytics.loaderHealth();
      assert.deepEqual({ loaded: h.loaded, skipped: h.skipped, checkpoint: h.checkpoint }, { loaded: 5015, skipped: 0, checkpoint: 5015 });
    }
    const rows = (a: typeof on.analytics) => a.query('SELECT * FROM events ORDER BY event_key');
    assert.deepEqual(await rows(on.analytics), await rows(off.analytics));
  } finally {
    await on.cleanup();
    await off.cleanup();
  }
});
