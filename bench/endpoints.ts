// `bench endpoints`: what one endpoint write costs as an app grows. Seeds one app with N endpoints
// (10k, 100k, 1M by default) straight into the SQLite store, starts the real server in this
// process on that data directory, then times UpdateEndpointsBatch of 100 new endpoints with an
// Address and a UserId, and PutEvents whose 100 items each create a new endpoint (Address and
// UserId given), through the official Pinpoint SDK client. Reports ms per batch at each size, the
// ratio of the largest size to the smallest (flat cost ≈ 1) and the event loop's longest stall
// while the batches ran (perf_hooks monitorEventLoopDelay: a long stall is what made /health slow).

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { PinpointClient, PutEventsCommand, UpdateEndpointsBatchCommand, type EventsBatch } from '@aws-sdk/client-pinpoint';
import { systemClock } from '../src/clock.js';
import { loadConfig } from '../src/config/config.js';
import { Apps } from '../src/pinpoint/apps.js';
import { startPinstream } from '../src/server.js';
import { openDb } from '../src/store/db.js';
import { sqliteMetadata } from '../src/store/metadata.js';
import { fmtInt, fmtNum, percentile, table } from './stats.js';

const USAGE = `usage: npm run bench -- endpoints [options]

  --sizes 10000,100000,1000000   endpoints in the app at each step (ascending; default 10000,100000,1000000)
  --batches N                    timed batches of each operation per size (default 30)
  --warmup N                     untimed batches of each operation before timing (default 5)`;

const ITEMS_PER_BATCH = 100;
const SEED_CHUNK = 100_000;
const REGION = 'us-east-1';
const ACCOUNT = '000000000000';

interface Options {
  sizes: number[];
  batches: number;
  warmup: number;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): Options {
  const o: Options = { sizes: [10_000, 100_000, 1_000_000], batches: 30, warmup: 5 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i];
    if (a === '-h' || a === '--help') throw new UsageError('');
    if (a === '--sizes') {
      const list = (v ?? '').split(',').map(Number);
      if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1 || n > 10_000_000) || list.some((n, j) => j > 0 && n <= list[j - 1])) {
        throw new UsageError('--sizes takes ascending integers from 1 to 10000000');
      }
      o.sizes = list;
    } else if (a === '--batches' || a === '--warmup') {
      const n = Number(v);
      if (!Number.isInteger(n) || n < (a === '--batches' ? 1 : 0) || n > 10_000) throw new UsageError(`${a} needs an integer, got ${v}`);
      if (a === '--batches') o.batches = n;
      else o.warmup = n;
    } else {
      throw new UsageError(`unknown option ${a}`);
    }
  }
  return o;
}

/**
 * Adds endpoints `seed-<from>`…`seed-<to-1>` to the app in the form the server stores them (ACTIVE,
 * EMAIL address, a user id shared by two endpoints), generated inside SQLite in chunks.
 */
function seed(dataDir: string, appId: string, from: number, to: number): number {
  const db = openDb(dataDir);
  const t0 = performance.now();
  try {
    const insert = db.prepare(`
      WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
      INSERT INTO endpoints (app_id, id, user_id, active_address, data)
      SELECT ?, 'seed-' || i, 'seed-user-' || (i / 2), 'seed-' || i || '@example.com',
        json_object('ApplicationId', ?, 'Id', 'seed-' || i, 'CohortId', CAST(i % 100 AS TEXT),
          'CreationDate', '2026-11-01T00:00:00.000Z', 'EffectiveDate', '2026-11-01T00:00:00.000Z',
          'EndpointStatus', 'ACTIVE', 'OptOut', 'NONE', 'Address', 'seed-' || i || '@example.com', 'ChannelType', 'EMAIL',
          'User', json_object('UserId', 'seed-user-' || (i / 2)))
      FROM n`);
    for (let a = from; a < to; a += SEED_CHUNK) {
      const b = Math.min(to, a + SEED_CHUNK);
      db.transaction(() => insert.run(a, b, appId, appId))();
    }
  } finally {
    db.close();
  }
  return performance.now() - t0;
}

async function createApp(dataDir: string): Promise<string> {
  const db = openDb(dataDir);
  try {
    return (await (await Apps.open(db, sqliteMetadata(db), systemClock, REGION, ACCOUNT)).create('bench-endpoints', {})).Id;
  } finally {
    db.close();
  }
}

interface SizeResult {
  size: number;
  seedMs: number;
  batchMs: number[];
  putEventsMs: number[];
  /** CPU time of this whole process (server and client) per batch: unlike wall time, other processes barely move it. */
  batchCpuMs: number[];
  putEventsCpuMs: number[];
  loopMaxMs: number;
  loopP99Ms: number;
  failures: string[];
}

let serial = 0;
const fresh = () => `new-${process.pid}-${++serial}`;

async function measureSize(dataDir: string, appId: string, size: number, seedMs: number, o: Options): Promise<SizeResult> {
  const config = loadConfig({}, { port: 0, dataDir, region: REGION, accountId: ACCOUNT });
  const server = await startPinstream(config);
  const client = new PinpointClient({ endpoint: server.url, region: REGION, credentials: server.admin, maxAttempts: 1 });
  const failures: string[] = [];
  const batchMs: number[] = [];
  const putEventsMs: number[] = [];
  const batchCpuMs: number[] = [];
  const putEventsCpuMs: number[] = [];
  const timed = async (op: () => Promise<number>, wall: number[], cpu: number[]) => {
    const c = process.cpuUsage();
    wall.push(await op());
    const used = process.cpuUsage(c);
    cpu.push((used.user + used.system) / 1000);
  };
  const now = new Date().toISOString();
  try {
    const updateBatch = async () => {
      const Item = Array.from({ length: ITEMS_PER_BATCH }, () => {
        const id = fresh();
        return { Id: id, ChannelType: 'EMAIL' as const, Address: `${id}@example.com`, User: { UserId: `user-${id}` } };
      });
      const t = performance.now();
      const r = await client.send(new UpdateEndpointsBatchCommand({ ApplicationId: appId, EndpointBatchRequest: { Item } }));
      const ms = performance.now() - t;
      if (r.MessageBody?.Message !== 'Accepted') failures.push(`UpdateEndpointsBatch: ${JSON.stringify(r.MessageBody)}`);
      return ms;
    };
    const putEvents = async () => {
      const BatchItem: Record<string, EventsBatch> = {};
      for (let i = 0; i < ITEMS_PER_BATCH; i++) {
        const id = fresh();
        BatchItem[id] = {
          Endpoint: { ChannelType: 'EMAIL', Address: `${id}@example.com`, User: { UserId: `user-${id}` } },
          Events: { [`${id}-e`]: { EventType: '_session.start', Timestamp: now } },
        };
      }
      const t = performance.now();
      const r = await client.send(new PutEventsCommand({ ApplicationId: appId, EventsRequest: { BatchItem } }));
      const ms = performance.now() - t;
      for (const [id, item] of Object.entries(r.EventsResponse?.Results ?? {})) {
        if (item.EndpointItemResponse?.StatusCode !== 202) failures.push(`PutEvents ${id}: ${JSON.stringify(item.EndpointItemResponse)}`);
      }
      return ms;
    };
    for (let i = 0; i < o.warmup; i++) {
      await updateBatch();
      await putEvents();
    }
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    for (let i = 0; i < o.batches; i++) {
      await timed(updateBatch, batchMs, batchCpuMs);
      await timed(putEvents, putEventsMs, putEventsCpuMs);
    }
    loop.disable();
    return { size, seedMs, batchMs, putEventsMs, batchCpuMs, putEventsCpuMs, loopMaxMs: loop.max / 1e6, loopP99Ms: loop.percentile(99) / 1e6, failures };
  } finally {
    client.destroy();
    await server.close();
  }
}

const median = (xs: number[]) => percentile(Float64Array.from(xs).sort(), 50);
const p90 = (xs: number[]) => percentile(Float64Array.from(xs).sort(), 90);
const max = (xs: number[]) => Math.max(...xs);

export async function endpoints(argv: string[]): Promise<number> {
  let o: Options;
  try {
    o = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    if (e.message) console.error(`bench endpoints: ${e.message}\n`);
    console.error(USAGE);
    return e.message ? 2 : 0;
  }
  console.log(
    `Pinstream endpoints benchmark — ${ITEMS_PER_BATCH} new endpoints per UpdateEndpointsBatch and per PutEvents (one event each), ` +
      `Address and UserId on every one, in one app holding ${o.sizes.map(fmtInt).join(' / ')} endpoints; ` +
      `${o.batches} timed batches of each per size after ${o.warmup} warm-up batches; server in this process, SDK client, 127.0.0.1`,
  );
  const dataDir = mkdtempSync(join(tmpdir(), 'pinstream-bench-endpoints-'));
  const results: SizeResult[] = [];
  try {
    const appId = await createApp(dataDir);
    let seeded = 0;
    for (const size of o.sizes) {
      // Endpoints the earlier steps created through the API count towards the size.
      const have = seeded + results.length * (o.batches + o.warmup) * 2 * ITEMS_PER_BATCH;
      const seedMs = size > have ? seed(dataDir, appId, seeded, seeded + size - have) : 0;
      seeded += Math.max(0, size - have);
      const r = await measureSize(dataDir, appId, size, seedMs, o);
      results.push(r);
      console.log(
        `  ${fmtInt(size).padStart(9)} endpoints (seeded in ${fmtNum(seedMs / 1000)} s, db ${fmtNum(statSync(join(dataDir, 'pinstream.db')).size / 1e6)} MB): ` +
          `UpdateEndpointsBatch median ${fmtNum(median(r.batchMs), 2)} ms, PutEvents median ${fmtNum(median(r.putEventsMs), 2)} ms, ` +
          `event loop max stall ${fmtNum(r.loopMaxMs, 1)} ms` + (r.failures.length ? `, ${r.failures.length} FAILED items` : ''),
      );
      for (const f of r.failures.slice(0, 5)) console.log(`    ${f}`);
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }

  console.log('\nms per batch of 100 endpoints:');
  console.log(
    table(
      ['endpoints', 'UEB p50', 'UEB p90', 'UEB max', 'UEB cpu p50', 'PutEvents p50', 'PutEvents p90', 'PutEvents max', 'PutEvents cpu p50', 'loop max ms', 'loop p99 ms'],
      results.map((r) => [
        fmtInt(r.size),
        fmtNum(median(r.batchMs), 2),
        fmtNum(p90(r.batchMs), 2),
        fmtNum(max(r.batchMs), 2),
        fmtNum(median(r.batchCpuMs), 2),
        fmtNum(median(r.putEventsMs), 2),
        fmtNum(p90(r.putEventsMs), 2),
        fmtNum(max(r.putEventsMs), 2),
        fmtNum(median(r.putEventsCpuMs), 2),
        fmtNum(r.loopMaxMs, 1),
        fmtNum(r.loopP99Ms, 1),
      ]),
    ),
  );
  const first = results[0];
  const last = results[results.length - 1];
  console.log(
    `\nratio ${fmtInt(last.size)}/${fmtInt(first.size)} (median ms per batch; flat cost = 1.00): ` +
      `UpdateEndpointsBatch ${fmtNum(median(last.batchMs) / median(first.batchMs), 2)}, PutEvents ${fmtNum(median(last.putEventsMs) / median(first.putEventsMs), 2)}; ` +
      `CPU time: UpdateEndpointsBatch ${fmtNum(median(last.batchCpuMs) / median(first.batchCpuMs), 2)}, PutEvents ${fmtNum(median(last.putEventsCpuMs) / median(first.putEventsCpuMs), 2)}`,
  );
  console.log('(wall times and stalls include time the process waited for a core; on a shared machine the CPU-time ratio is the steadier measure)');
  console.log(
    `event loop: longest stall ${fmtNum(Math.max(...results.map((r) => r.loopMaxMs)), 1)} ms over all sizes ` +
      `(one batch = ${ITEMS_PER_BATCH} endpoints: ${fmtNum(Math.max(...results.map((r) => r.loopMaxMs)) / ITEMS_PER_BATCH, 3)} ms per endpoint)`,
  );
  const failed = results.reduce((n, r) => n + r.failures.length, 0);
  if (failed > 0) console.log(`\n${failed} items were not accepted`);
  return failed > 0 ? 1 : 0;
}
