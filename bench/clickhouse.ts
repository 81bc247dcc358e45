// `bench clickhouse`: the analytics event store on ClickHouse vs the embedded DuckDB store, in one
// run on the same synthetic rows (bench/analytics.ts syntheticRow, same seed): load rate through
// each adapter's append (loader-sized batches with a checkpoint each, as the loader writes them),
// node-side CPU per row (this process: for DuckDB that includes DuckDB's own threads; for ClickHouse
// only the client side, the server's CPU is reported apart from /proc), then p50 of a few dashboards
// and KPIs on both. ClickHouse is PINSTREAM_CLICKHOUSE_URL when set, else a private clickhouse-server
// started like the tests' (test/helpers/clickhouse.ts).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../src/clock.js';
import { clickhouseUrl } from '../src/config/config.js';
import { ClickHouseEventStore } from '../src/analytics/clickhouse/store.js';
import { DuckDbEventStore } from '../src/analytics/duckdb-event-store.js';
import type { AnalyticsEventStore, EventRow } from '../src/analytics/event-store.js';
import { LOADER_BATCH_RECORDS } from '../src/analytics/loader.js';
import { DAY_MS } from '../src/analytics/retention.js';
import type { DashboardName } from '../src/analytics/types.js';
import { startClickHouse } from '../test/helpers/clickhouse.js';
import { rng, syntheticRow, type Options } from './analytics.js';
import { fmtInt, fmtNum, percentile, table } from './stats.js';

const USAGE = `usage: npm run bench -- clickhouse [options]

  --events N      rows loaded into each store (default 500000)
  --endpoints N   distinct endpoints (default 20000)
  --days N        days the rows span (default 30)
  --iterations N  runs of each query (default 3)`;

interface Load {
  seconds: number;
  cpuMicros: number;
  serverCpuMicros: number | null;
}

/** CPU time (user + system) of a process from /proc, in µs; null when unreadable. */
function procCpuMicros(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command; clock ticks of 1/100 s on Linux.
    return (Number(f[11]) + Number(f[12])) * 10_000;
  } catch {
    return null;
  }
}

async function load(store: AnalyticsEventStore, o: Options, t0: number, serverPid?: number): Promise<Load> {
  const rand = rng(42);
  let ms = 0;
  let cpu = 0;
  const server0 = procCpuMicros(serverPid);
  for (let i = 0; i < o.events; ) {
    const rows: EventRow[] = [];
    for (const end = Math.min(o.events, i + LOADER_BATCH_RECORDS); i < end; i++) rows.push(syntheticRow(i, o, t0, rand));
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    await store.append(rows, { offset: i });
    ms += performance.now() - w0;
    const c = process.cpuUsage(c0);
    cpu += c.user + c.system;
  }
  const server1 = procCpuMicros(serverPid);
  return { seconds: ms / 1000, cpuMicros: cpu, serverCpuMicros: server0 === null || server1 === null ? null : server1 - server0 };
}

async function p50(n: number, fn: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return percentile(times.sort((a, b) => a - b), 50);
}

export async function clickhouseBench(argv: string[]): Promise<number> {
  const o = { events: 500_000, endpoints: 20_000, days: 30, loaderEvents: 0, iterations: 3, ingestSeconds: 0 } as Options;
  const keys: Record<string, keyof Options> = { '--events': 'events', '--endpoints': 'endpoints', '--days': 'days', '--iterations': 'iterations' };
  for (let i = 0; i < argv.length; i++) {
    const k = keys[argv[i]];
    const n = Number(argv[++i]);
    if (!k || !Number.isInteger(n) || n < 1) {
      console.error(USAGE);
      return argv[i - 1] === '--help' || argv[i - 1] === '-h' ? 0 : 2;
    }
    o[k] = n;
  }
  const end = Math.floor(Date.now() / DAY_MS) * DAY_MS;
  const t0 = end - o.days * DAY_MS;
  const dir = mkdtempSync(join(tmpdir(), 'pinstream-bench-ch-'));
  const env = process.env.PINSTREAM_CLICKHOUSE_URL;
  const started = env ? undefined : await startClickHouse();
  if (started?.skip) {
    console.error(`bench clickhouse: ${started.skip}`);
    return 1;
  }
  const chUrl = env ?? `${started!.server!.url}/pinstream_bench_${process.pid}`;
  const duck = await DuckDbEventStore.open(dir);
  const house = await ClickHouseEventStore.open(clickhouseUrl(chUrl, 'PINSTREAM_CLICKHOUSE_URL'));
  try {
    console.log(`ClickHouse ${house.serverVersion}; ${fmtInt(o.events)} rows over ${o.days} days, ${fmtInt(o.endpoints)} endpoints, batches of ${fmtInt(LOADER_BATCH_RECORDS)}`);
    const loads: Array<[string, Load]> = [];
    // DuckDB first, then ClickHouse, then DuckDB again into a second store (the machine's load drifts).
    loads.push(['duckdb', await load(duck, o, t0)]);
    loads.push(['clickhouse', await load(house, o, t0, started?.server?.pid)]);
    const duck2 = await DuckDbEventStore.open(join(dir, 'second'));
    loads.push(['duckdb (again)', await load(duck2, o, t0)]);
    await duck2.close();
    console.log(
      table(
        ['store', 'rows/s', 'node CPU µs/row', 'server CPU µs/row'],
        loads.map(([name, l]) => [
          name,
          fmtInt(o.events / l.seconds),
          fmtNum(l.cpuMicros / o.events, 1),
          l.serverCpuMicros === null ? (name.startsWith('duckdb') ? '(in node)' : 'n/a') : fmtNum(l.serverCpuMicros / o.events, 1),
        ]),
      ),
    );
    const ratio = (o.events / loads[1][1].seconds) / (o.events / ((loads[0][1].seconds + loads[2][1].seconds) / 2));
    console.log(`ClickHouse load rate ÷ DuckDB's (mean of its two runs): ${fmtNum(ratio, 2)}`);

    const clock = new ManualClock(end + DAY_MS / 2);
    const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    const range = { start: day(end - 29 * DAY_MS), end: day(end) };
    const deps = { clock, retentionDays: 90, funnels: () => [] };
    const q = { appId: 'b'.repeat(32), range };
    const rows: string[][] = [];
    for (const name of ['overview', 'usage', 'events', 'revenue'] as DashboardName[]) {
      const a = await p50(o.iterations, () => duck.dashboard(name, q, deps));
      const b = await p50(o.iterations, () => house.dashboard(name, q, deps));
      rows.push([`dashboard ${name}`, fmtNum(a, 0), fmtNum(b, 0)]);
    }
    const filtered = { ...q, endpointAttribute: { name: 'plan', values: ['pro'] } };
    rows.push(['dashboard usage, endpoint filter', fmtNum(await p50(o.iterations, () => duck.dashboard('usage', filtered, deps)), 0), fmtNum(await p50(o.iterations, () => house.dashboard('usage', filtered, deps)), 0)]);
    for (const name of ['successful-delivery-rate-grouped-by-date', 'unique-deliveries']) {
      rows.push([`kpi ${name}`, fmtNum(await p50(o.iterations, () => duck.kpi({ appId: q.appId }, name, range)), 0), fmtNum(await p50(o.iterations, () => house.kpi({ appId: q.appId }, name, range)), 0)]);
    }
    console.log(table(['query (30 days)', 'DuckDB p50 ms', 'ClickHouse p50 ms'], rows));
    return 0;
  } finally {
    await duck.close();
    if (!env) await house.dropDatabase().catch(() => {});
    await house.close();
    await started?.server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
