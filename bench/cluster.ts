// `bench cluster`: PutEvents through the distributed deployment on this machine, against the embedded
// single process, in one run. Starts an embedded Pinstream (segment log, SQLite, DuckDB), then a
// cluster as docs/cluster.md describes it (three clustered nats-server processes with replicas 3,
// PostgreSQL, ClickHouse when installed, two `pinstream start` nodes on a shared key: the test
// harness test/helpers/cluster.ts), and measures SigV4 PutEvents (100 events per request, closed
// loop) through the embedded server, through one node, and through both nodes at once. Reports
// events/s, p50/p99, and CPU per event of the Pinstream processes and of the NATS servers, with the
// ratios: one node ÷ embedded, two nodes ÷ one node, and the JetStream path's cost per event ÷ the
// embedded log's. Every process shares this machine's cores with the load generator; the ratios are
// what one machine can say, not a scaling claim (docs/cluster.md has the capacity model).

import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderProfile, summarizeProfile } from './profile.js';
import { LoadGenerator, signedPost, type Credentials, type LoadResult } from './load.js';
import { hostBusyMs, sampleProc, startPinstream, type Child } from './procs.js';
import { fmtInt, fmtNum, fmtRatio, percentile, sortedSamples, table } from './stats.js';
import { PinstreamCluster, SkipCluster } from '../test/helpers/cluster.js';

const EVENTS_PER_REQUEST = 100;

const USAGE = `usage: npm run bench -- cluster [options]

  --seconds N        seconds of load per step (default 6)
  --concurrency N    requests in flight per step, split over the nodes (default 32)
  --threads N        load-generator threads (default 1)
  --warmup N         warm-up seconds per target (default 2)
  --no-clickhouse    analytics on each node's DuckDB instead of a shared ClickHouse
  --profile          run the cluster's nodes under node --cpu-prof and summarise node 1's time`;

interface Options {
  seconds: number;
  concurrency: number;
  threads: number;
  warmup: number;
  clickhouse: boolean;
  profile: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { seconds: 6, concurrency: 32, threads: 1, warmup: 2, clickhouse: true, profile: false };
  const num = (flag: string, v: string | undefined, min: number, max: number) => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min || n > max) throw new Error(`${flag} needs an integer from ${min} to ${max}, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--seconds') o.seconds = num(a, argv[++i], 1, 600);
    else if (a === '--concurrency') o.concurrency = num(a, argv[++i], 2, 1024);
    else if (a === '--threads') o.threads = num(a, argv[++i], 1, 16);
    else if (a === '--warmup') o.warmup = num(a, argv[++i], 0, 60);
    else if (a === '--no-clickhouse') o.clickhouse = false;
    else if (a === '--profile') o.profile = true;
    else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  return o;
}

interface Step {
  label: string;
  events: number;
  eventsPerSec: number;
  p50: number;
  p99: number;
  failed: number;
  /** CPU of the Pinstream processes per acknowledged event, µs. */
  nodeUs: number;
  /** CPU of the NATS servers per acknowledged event, µs (0 embedded). */
  natsUs: number;
  otherPct: number;
  errors: Map<string, number>;
}

const cpuOf = (pids: number[]) => pids.reduce((s, p) => s + sampleProc(p).cpuMs, 0);

/** One measured step: the generators run at once; CPU of `nodes` and `nats` sampled at the edges. */
async function step(label: string, gens: LoadGenerator[], o: Options, nodes: number[], nats: number[]): Promise<Step> {
  let n0 = 0;
  let s0 = 0;
  let h0 = 0;
  let n1 = 0;
  let s1 = 0;
  let h1 = 0;
  const t0 = Date.now();
  n0 = cpuOf(nodes);
  s0 = cpuOf(nats);
  h0 = hostBusyMs();
  const share = (i: number) => Math.floor(o.concurrency / gens.length) + (i < o.concurrency % gens.length ? 1 : 0);
  const results: LoadResult[] = await Promise.all(gens.map((g, i) => g.run({ concurrency: share(i), seconds: o.seconds })));
  n1 = cpuOf(nodes);
  s1 = cpuOf(nats);
  h1 = hostBusyMs();
  const elapsed = Date.now() - t0;
  const events = results.reduce((s, r) => s + r.events, 0);
  const sorted = sortedSamples(results.flatMap((r) => r.latenciesMs));
  const errors = new Map<string, number>();
  for (const r of results) for (const [k, v] of r.errors) errors.set(k, (errors.get(k) ?? 0) + v);
  const nodeMs = n1 - n0;
  const natsMs = s1 - s0;
  return {
    label,
    events,
    eventsPerSec: events / (elapsed / 1000),
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    failed: results.reduce((s, r) => s + r.failedRequests, 0),
    nodeUs: events ? (nodeMs * 1000) / events : NaN,
    natsUs: events ? (natsMs * 1000) / events : NaN,
    otherPct: Math.max(0, ((h1 - h0 - nodeMs - natsMs) / elapsed) * 100),
    errors,
  };
}

async function createApp(url: string, creds: Credentials): Promise<string> {
  const r = await signedPost(url, creds, '/v1/apps', { Name: `bench-cluster-${Date.now()}` });
  if (r.status !== 201 || typeof r.json?.Id !== 'string') throw new Error(`CreateApp answered HTTP ${r.status}: ${r.text.slice(0, 300)}`);
  return r.json.Id;
}

async function generator(url: string, appId: string, credentials: Credentials, o: Options, pool: string[]): Promise<LoadGenerator> {
  const g = await LoadGenerator.start({ url, appId, credentials, verify: 'pinpoint' }, { threads: o.threads, eventsPerRequest: EVENTS_PER_REQUEST, endpointIds: pool });
  if (o.warmup > 0) await g.run({ concurrency: 4, seconds: o.warmup });
  return g;
}

function print(s: Step): void {
  console.log(
    `  ${s.label.padEnd(22)} ${fmtInt(s.eventsPerSec).padStart(8)} events/s  p50 ${fmtNum(s.p50, 1)} ms  p99 ${fmtNum(s.p99, 1)} ms  ` +
      `CPU/event: Pinstream ${fmtNum(s.nodeUs)} µs, NATS ${fmtNum(s.natsUs)} µs  other ${fmtNum(s.otherPct, 0)}% of a core  failed requests ${s.failed}`,
  );
  for (const [m, n] of s.errors) console.log(`      ${n} × ${m}`);
}

export async function clusterBench(argv: string[]): Promise<number> {
  let o: Options;
  try {
    o = parseArgs(argv);
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  const why = await PinstreamCluster.skip();
  if (why) {
    console.error(`bench cluster: cannot start a cluster here: ${why}`);
    return 1;
  }
  console.log(`bench cluster: ${cpus().length} cores; PutEvents ${EVENTS_PER_REQUEST} events/request, c=${o.concurrency}, ${o.seconds} s per step; analytics ${o.clickhouse ? 'ClickHouse' : 'DuckDB per node'}`);
  const pool = Array.from({ length: 1000 }, () => randomUUID());
  const steps: Step[] = [];

  // Embedded: one process, segment log with fsync, SQLite, DuckDB.
  let embedded: Child | undefined;
  try {
    embedded = await startPinstream('embedded');
    const app = await createApp(embedded.url, embedded.admin!);
    const g = await generator(embedded.url, app, embedded.admin!, o, pool);
    steps.push(await step('embedded', [g], o, [embedded.pid], []));
    print(steps.at(-1)!);
    await g.close();
  } finally {
    await embedded?.stop();
  }

  let cluster: PinstreamCluster | undefined;
  const profDir = o.profile ? mkdtempSync(join(tmpdir(), 'pinstream-cluster-prof-')) : undefined;
  try {
    // Each node writes its profile into a folder of its own when it stops.
    cluster = await PinstreamCluster.start({ nodes: 2, clickhouse: o.clickhouse, nodeArgs: profDir ? (i) => ['--cpu-prof', '--cpu-prof-dir', join(profDir, String(i + 1))] : undefined });
  } catch (e) {
    if (e instanceof SkipCluster) {
      console.error(`bench cluster: ${e.message}`);
      return 1;
    }
    throw e;
  }
  try {
    const c = cluster;
    const nodePids = c.nodes.map((n) => n.proc!.child.pid!);
    const natsPids = c.nats.nodes.map((n) => n.child!.pid!);
    const app = await createApp(c.url(0), c.admin);
    const g1 = await generator(c.url(0), app, c.admin, o, pool);
    const g2 = await generator(c.url(1), app, c.admin, o, pool);
    steps.push(await step('cluster, 1 node', [g1], o, nodePids, natsPids));
    print(steps.at(-1)!);
    steps.push(await step('cluster, 2 nodes', [g1, g2], o, nodePids, natsPids));
    print(steps.at(-1)!);
    await g1.close();
    await g2.close();
  } finally {
    await cluster.stop();
  }
  if (profDir) {
    const dir = join(profDir, '1');
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
    if (files.length > 0) console.log('\nnode 1 under --cpu-prof (whole run: both steps and start-up):\n' + renderProfile(summarizeProfile(join(dir, files[0]), 25)).replace(/^/gm, '  '));
    rmSync(profDir, { recursive: true, force: true });
  }

  const [emb, one, two] = steps;
  console.log('\n' + table(
    ['measure', 'value', 'ratio'],
    [
      ['embedded events/s', fmtInt(emb.eventsPerSec), ''],
      ['1 node events/s', fmtInt(one.eventsPerSec), `${fmtRatio(one.eventsPerSec / emb.eventsPerSec)} of embedded`],
      ['2 nodes events/s', fmtInt(two.eventsPerSec), `${fmtRatio(two.eventsPerSec / one.eventsPerSec)} of 1 node`],
      ['p99 embedded / 1 node / 2 nodes', `${fmtNum(emb.p99, 1)} / ${fmtNum(one.p99, 1)} / ${fmtNum(two.p99, 1)} ms`, `${fmtRatio(one.p99 / emb.p99)} (1 node ÷ embedded)`],
      ['Pinstream CPU/event, embedded', `${fmtNum(emb.nodeUs)} µs`, ''],
      ['Pinstream CPU/event, JetStream path (1 node)', `${fmtNum(one.nodeUs)} µs`, `${fmtRatio(one.nodeUs / emb.nodeUs)} of embedded`],
      ['Pinstream + NATS CPU/event (1 node)', `${fmtNum(one.nodeUs + one.natsUs)} µs`, `${fmtRatio((one.nodeUs + one.natsUs) / emb.nodeUs)} of embedded`],
    ],
  ));
  console.log('  All processes share this machine\'s cores with the load generator (and with each other): two nodes on one machine cannot add cores, so "2 nodes ÷ 1 node" shows the coordination cost here, not scaling.');
  return steps.some((s) => s.failed > 0) ? 1 : 0;
}
