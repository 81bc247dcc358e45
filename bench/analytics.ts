// `bench analytics`: the analytics store at scale. Measures PutEvents' durable ingest rate on a real
// server (a child process, c=64, a few seconds), then loads a real ingest log through the loader on
// its analytics thread as the server runs it (load rate as a ratio to that ingest rate, and how busy
// the main thread was meanwhile), generates synthetic events (default 10 million over 90 days and
// 100,000 endpoints) straight into the store's bulk path, then times every dashboard over a 30-day
// range and each KPI over 31 days and reports p50/p95 and the store size on disk.

import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { performance as perfHooks } from 'node:perf_hooks';
import { join } from 'node:path';
import { ManualClock } from '../src/clock.js';
import { SegmentLog } from '../src/log/segment-log.js';
import { encodeIngestEntry } from '../src/pinpoint/ingest-record.js';
import { buildRecord, endpointParts } from '../src/pinpoint/record.js';
import { EventStore, type EventRow } from '../src/analytics/store.js';
import { recordToRow, LOADER_BATCH_RECORDS } from '../src/analytics/loader.js';
import { PinstreamAnalytics } from '../src/analytics/index.js';
import { openDb } from '../src/store/db.js';
import { LoadGenerator, signedPost } from './load.js';
import { startPinstream, threadCpuMs, threadName } from './procs.js';
import { runDashboard } from '../src/analytics/dashboards.js';
import { DASHBOARDS, type DateRange, type Funnel, type KpiRows, type KpiScope } from '../src/analytics/types.js';
import { DAY_MS } from '../src/analytics/retention.js';
import { fmtInt, fmtNum, percentile, table } from './stats.js';

const USAGE = `usage: npm run bench -- analytics [options]

  --events N          synthetic events in the store (default 10000000)
  --endpoints N       distinct endpoints (default 100000)
  --days N            days the events span (default 90)
  --loader-events N   events loaded through the loader from a real ingest log (default 200000)
  --iterations N      runs of each query (default 5)
  --ingest-seconds N  seconds of PutEvents (c=64, 100 events/request) for the ingest rate the loader is compared with (default 5)`;

/** The aim: the loader keeps up with ingestion with room to catch up (issue 16). */
const LOADER_AIM_RATIO = 1.5;
const INGEST_CONCURRENCY = 64;

/** Durable PutEvents events/s of a real server started for this (same machine, same run). */
async function measureIngest(seconds: number): Promise<{ eventsPerSec: number; failed: number }> {
  const child = await startPinstream('pinstream-ingest');
  try {
    const r = await signedPost(child.url, child.admin!, '/v1/apps', { Name: `bench-${Date.now()}` });
    if (r.status !== 201) throw new Error(`CreateApp answered HTTP ${r.status}: ${r.text.slice(0, 300)}`);
    const pool = Array.from({ length: 4000 }, () => randomUUID());
    const gen = await LoadGenerator.start({ url: child.url, appId: r.json.Id, credentials: child.admin!, verify: 'pinpoint' }, { threads: 1, eventsPerRequest: 100, endpointIds: pool });
    try {
      await gen.run({ concurrency: 4, seconds: 1 });
      const res = await gen.run({ concurrency: INGEST_CONCURRENCY, seconds });
      return { eventsPerSec: res.events / (res.elapsedMs / 1000), failed: res.failedRequests };
    } finally {
      await gen.close();
    }
  } finally {
    await child.stop();
  }
}

export interface Options {
  events: number;
  endpoints: number;
  days: number;
  loaderEvents: number;
  iterations: number;
  ingestSeconds: number;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): Options {
  const o: Options = { events: 10_000_000, endpoints: 100_000, days: 90, loaderEvents: 200_000, iterations: 5, ingestSeconds: 5 };
  const keys: Record<string, keyof Options> = { '--events': 'events', '--endpoints': 'endpoints', '--days': 'days', '--loader-events': 'loaderEvents', '--iterations': 'iterations', '--ingest-seconds': 'ingestSeconds' };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '-h' || argv[i] === '--help') throw new UsageError('');
    const k = keys[argv[i]];
    const n = Number(argv[++i]);
    if (!k || !Number.isInteger(n) || n < 1) throw new UsageError(`bad option ${argv[i - 1]} ${argv[i] ?? ''}`);
    o[k] = n;
  }
  if (o.days > 90) throw new UsageError('--days is at most 90 (the retention window)');
  return o;
}

const APP = 'b'.repeat(32);
const PLATFORMS = ['android', 'ios', 'web'];
const COUNTRIES = ['US', 'GB', 'DE', 'FR', 'JP', 'BR', 'IN'];
const TYPES: Array<[string, number]> = [
  ['_session.start', 0.3], ['_session.stop', 0.1], ['level', 0.3], ['_monetization.purchase', 0.05], ['_campaign.send', 0.08],
  ['_campaign.opened_notification', 0.02], ['_email.delivered', 0.05], ['_email.open', 0.03], ['_userauth.sign_in', 0.07],
];

/** Deterministic PRNG (mulberry32) so runs compare. */
export function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pickType(r: number): string {
  for (const [t, p] of TYPES) if ((r -= p) < 0) return t;
  return 'level';
}

/** Synthetic row `i` of `n`, evenly spread over the days before `end`. */
export function syntheticRow(i: number, o: Options, t0: number, rand: () => number): EventRow {
  const ep = Math.floor(rand() * o.endpoints);
  const t = t0 + Math.floor((i / o.events) * o.days * DAY_MS);
  const type = pickType(rand());
  const campaign = type.startsWith('_campaign') || type.startsWith('_email') ? `c${ep % 20}` : null;
  return {
    appId: APP, eventKey: `ep${ep}/ev${i}`, eventType: type, eventTime: t, arrivalTime: t + 500, endpointId: `ep${ep}`,
    userId: ep % 3 === 0 ? null : `u${ep >> 1}`, endpointCreated: t0 + (ep % o.days) * DAY_MS, sessionId: `s${ep}-${Math.floor(t / 3_600_000)}`,
    sessionStart: t, channel: 'GCM', platform: PLATFORMS[ep % 3], platformVersion: '14', appVersion: `1.${ep % 5}`, make: 'Make', model: `M${ep % 7}`,
    country: COUNTRIES[ep % COUNTRIES.length],
    attributes: campaign ? JSON.stringify({ campaign_id: campaign, campaign_send_status: 'SUCCESS', delivery_type: 'GCM' }) : JSON.stringify({ mode: ep % 2 ? 'hard' : 'easy' }),
    metrics: type === '_monetization.purchase' ? JSON.stringify({ _item_price: 1 + (ep % 10), _quantity: 1 }) : JSON.stringify({ score: ep % 100 }),
    endpointAttributes: JSON.stringify({ plan: [ep % 4 === 0 ? 'pro' : 'free'] }),
    campaignId: campaign, campaignActivityId: campaign ? `${campaign}-run` : null, treatmentId: campaign ? '0' : null, journeyId: null, journeyActivityId: null,
    campaignSendStatus: campaign ? 'SUCCESS' : null, journeySendStatus: null, deliveryType: campaign ? 'GCM' : null, journeyActivityType: null,
  };
}

/** Appends `count` synthetic rows in loader-sized batches; returns the seconds spent appending (generation excluded). */
async function fill(store: EventStore, o: Options, t0: number, count: number): Promise<number> {
  const rand = rng(42);
  let appending = 0;
  for (let i = 0; i < count; ) {
    const rows: EventRow[] = [];
    for (const end = Math.min(count, i + LOADER_BATCH_RECORDS); i < end; i++) rows.push(syntheticRow(i, { ...o, events: count }, t0, rand));
    const started = performance.now();
    await store.append(rows);
    appending += performance.now() - started;
  }
  return appending / 1000;
}

async function timeIt(n: number, fn: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await fn();
    out.push(performance.now() - s);
  }
  return out.sort((a, b) => a - b);
}

/** CPU µs per record of the busiest threads (by id), during the loads | during the final checkpoint. */
function perThread(t0: Map<string, number>, t1: Map<string, number>, t2: Map<string, number>, records: number): string {
  const us = (ms: number) => fmtNum((ms * 1000) / records, 1);
  const rows = [...t2.keys()].map((tid) => ({ tid, loads: (t1.get(tid) ?? 0) - (t0.get(tid) ?? 0), ckpt: (t2.get(tid) ?? 0) - (t1.get(tid) ?? t0.get(tid) ?? 0) }));
  rows.sort((a, b) => b.loads + b.ckpt - (a.loads + a.ckpt));
  const top = rows.slice(0, 4).map((r) => `${Number(r.tid) === process.pid ? 'main' : threadName(process.pid, r.tid) + '#' + r.tid} ${us(r.loads)} | ${us(r.ckpt)}`);
  const rest = rows.slice(4);
  return [...top, `${rest.length} others ${us(rest.reduce((a, r) => a + r.loads, 0))} | ${us(rest.reduce((a, r) => a + r.ckpt, 0))}`].join(', ');
}

export async function runAnalyticsBench(argv: string[]): Promise<number> {
  let o: Options;
  try {
    o = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    if (e.message) console.error(`bench analytics: ${e.message}\n`);
    console.error(USAGE);
    return e.message ? 2 : 0;
  }
  const dir = mkdtempSync(join(tmpdir(), 'pinstream-bench-analytics-'));
  const t0 = Date.UTC(2024, 0, 1);
  const clock = new ManualClock(t0 + o.days * DAY_MS);
  try {
    // 1. The loader from a real ingest log.
    const log = await SegmentLog.open(join(dir, 'log'), { fsync: false, clock });
    const rand = rng(7);
    for (let i = 0; i < o.loaderEvents; ) {
      const batch: string[] = [];
      for (const end = Math.min(o.loaderEvents, i + 1000); i < end; i++) {
        const ep = `ep${Math.floor(rand() * o.endpoints)}`;
        const endpoint = { ApplicationId: APP, Id: ep, CohortId: '1', CreationDate: new Date(t0).toISOString(), EffectiveDate: new Date(t0).toISOString(), EndpointStatus: 'ACTIVE', OptOut: 'NONE', Demographic: { Platform: 'ios', Make: 'Apple', Model: 'iPhone', Locale: 'en_US' }, Attributes: { plan: ['free'] }, User: { UserId: `u${ep}` } };
        const ts = t0 + Math.floor((i / o.loaderEvents) * DAY_MS);
        const rec = buildRecord(endpointParts(APP, ep, { endpoint, json: JSON.stringify(endpoint) }, '000000000000'), { EventType: pickType(rand()), timestampMs: ts, Attributes: { mode: 'easy' }, Metrics: { score: 3 }, session: { id: `s${i >> 4}`, startMs: ts } }, ts);
        batch.push(encodeIngestEntry(APP, ep, `ev${i}`, rec));
      }
      await log.append(batch);
    }
    const ingest = await measureIngest(o.ingestSeconds);
    const db = openDb(join(dir, 'loader'));
    const analytics = await PinstreamAnalytics.open({ dataDir: join(dir, 'loader'), ingestLog: log, db, clock, retentionDays: 90, background: false });
    const elu0 = perfHooks.eventLoopUtilization();
    const threads0 = threadCpuMs(process.pid);
    const cpu0 = process.cpuUsage();
    const ls = performance.now();
    await analytics.catchUp();
    const caughtUpSec = (performance.now() - ls) / 1000;
    const threadsCaughtUp = threadCpuMs(process.pid);
    // The checkpoint the loads left to do (STORE_CHECKPOINT_THRESHOLD defers it) is part of their
    // cost: retention (nothing is old enough to delete) ends with that CHECKPOINT.
    await analytics.retention();
    const loadSec = (performance.now() - ls) / 1000;
    const elu = perfHooks.eventLoopUtilization(elu0);
    // CPU per record (less disturbed by other work on the machine than the rate): the whole process,
    // and the busiest thread (the analytics thread's JavaScript: the serial part of the load).
    const cpu = process.cpuUsage(cpu0);
    const threads1 = threadCpuMs(process.pid);
    const busiest = Math.max(0, ...[...threads1].filter(([tid]) => Number(tid) !== process.pid).map(([tid, ms]) => ms - (threads0.get(tid) ?? 0)));
    const parseStart = performance.now();
    for (const r of (await log.read(0, { maxRecords: 20_000 })).records) {
      const nl = r.payload.indexOf(10);
      recordToRow(APP, 'x', 'y', JSON.parse(r.payload.toString('utf8', nl + 1)));
    }
    const parseRate = 20_000 / ((performance.now() - parseStart) / 1000);
    const loadRate = o.loaderEvents / loadSec;
    console.log(
      `ingest: PutEvents c=${INGEST_CONCURRENCY}, ${o.ingestSeconds} s on a fresh server: ${fmtInt(ingest.eventsPerSec)} durable events/s` +
        (ingest.failed > 0 ? ` (${ingest.failed} requests failed)` : '') +
        `\nloader (analytics thread): ${fmtInt(o.loaderEvents)} ingest-log records in ${fmtNum(loadSec, 2)} s (with the final checkpoint) = ${fmtInt(loadRate)} records/s ` +
        `= ${fmtNum(loadRate / ingest.eventsPerSec, 2)}x the ingest rate (aim >= ${LOADER_AIM_RATIO}x); ` +
        `main thread busy ${fmtNum(elu.utilization * 100, 1)}% of the load (log reads for the thread); parse+map alone ${fmtInt(parseRate)} records/s\n` +
        `  CPU per record: process ${fmtNum(((cpu.user + cpu.system) / o.loaderEvents), 1)} µs (all threads, DuckDB's included), busiest other thread (the analytics thread) ${fmtNum((busiest * 1000) / o.loaderEvents, 1)} µs\n` +
        `  loads ${fmtNum(caughtUpSec, 2)} s, final checkpoint ${fmtNum(loadSec - caughtUpSec, 2)} s; CPU µs/record of the busiest threads, loads | checkpoint: ` +
        perThread(threads0, threadsCaughtUp, threads1, o.loaderEvents) +
        '\n',
    );
    await analytics.close();
    db.close();
    await log.close();

    // 2. The big store (rows and rollups through the same append path as the loader).
    const store = await EventStore.open(join(dir, 'main'));
    const fillSec = await fill(store, o, t0, o.events);
    await store.compact();
    console.log(`bulk fill (append time, rows + rollups): ${fmtInt(o.events)} events, ${fmtInt(o.endpoints)} endpoints, ${o.days} days in ${fmtNum(fillSec, 1)} s = ${fmtInt(o.events / fillSec)} rows/s; store ${fmtNum(store.fileBytes() / 1048576, 1)} MiB on disk (${fmtNum(store.fileBytes() / o.events, 1)} bytes/event)\n`);

    const endDay = new Date(t0 + (o.days - 1) * DAY_MS).toISOString().slice(0, 10);
    const range: DateRange = { start: new Date(t0 + (o.days - 30) * DAY_MS).toISOString().slice(0, 10), end: endDay };
    const funnel: Funnel = { id: 'f', name: 'bench', steps: [{ name: 'open', eventType: '_session.start' }, { name: 'play', eventType: 'level', attributes: [{ name: 'mode', values: ['hard'] }] }, { name: 'buy', eventType: '_monetization.purchase' }] };
    const conn = await store.connect();
    const rows: string[][] = [];
    for (const name of DASHBOARDS) {
      const q = { appId: APP, range, ...(name === 'funnels' ? { funnelId: 'f' } : {}), ...(name === 'events' ? { eventType: 'level' } : {}) };
      const ms = await timeIt(o.iterations, () => runDashboard(conn, name, q, { clock, retentionDays: 90, funnels: () => [funnel] }));
      rows.push([`dashboard ${name}`, fmtNum(percentile(ms, 50), 0), fmtNum(percentile(ms, 95), 0)]);
    }
    const kpiMod = (await import('../src/analytics/kpi.js' as string).catch(() => ({}))) as { kpi?: (c: unknown, s: KpiScope, n: string, r: DateRange) => Promise<KpiRows> };
    const kpiRange: DateRange = { start: new Date(t0 + (o.days - 31) * DAY_MS).toISOString().slice(0, 10), end: endDay };
    if (kpiMod.kpi) {
      for (const name of ['successful-delivery-rate', 'unique-deliveries-grouped-by-date', 'email-open-rate', 'push-open-rate-grouped-by-campaign', 'txn-emails-sent']) {
        try {
          const ms = await timeIt(o.iterations, () => kpiMod.kpi!(conn, { appId: APP }, name, kpiRange));
          rows.push([`kpi ${name}`, fmtNum(percentile(ms, 50), 0), fmtNum(percentile(ms, 95), 0)]);
        } catch (e) {
          rows.push([`kpi ${name}`, 'error', (e as Error).message.slice(0, 60)]);
        }
      }
    } else {
      rows.push(['kpi (src/analytics/kpi.ts exports no kpi yet)', '-', '-']);
    }
    conn.closeSync();
    console.log(`queries over ${range.start}..${range.end} (KPIs ${kpiRange.start}..${kpiRange.end}), ${o.iterations} runs each\n` + table(['query', 'p50 ms', 'p95 ms'], rows));
    await store.close();
    return 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
