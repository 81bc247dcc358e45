// `bench ingest`: PutEvents throughput of the real server. Starts Pinstream as a child process,
// creates an app, sweeps the number of in-flight signed PutEvents requests (100 Amplify-JS-shaped
// events each), then measures peers at the best concurrency in the same run (a minimal node:http
// ceiling, Pinstream without fdatasync) and optionally a CPU profile of the server. Owns the
// orchestration, the per-step measurements (server CPU/RSS from /proc) and the report.

import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LoadGenerator, signedPost, type LoadResult, type LoadTarget } from './load.js';
import { byThreadName, freshDir, hostBusyMs, sampleProc, startCeiling, startPinstream, type Child, type ProcSample } from './procs.js';
import { PROTO_CREDS, sampleAll, startDesign, type Design } from './designs.js';
import { DEFAULT_INGEST_THREADS } from '../src/config/config.js';
import { renderProfile, summarizeProfile, type Window } from './profile.js';
import { fmtInt, fmtNum, fmtRatio, percentile, sortedSamples, table } from './stats.js';
import { parseMemoryMetrics } from '../src/memory.js';

const TARGET_EVENTS_PER_SECOND = 100_000;
const EVENTS_PER_REQUEST = 100;
/** Above this much CPU used by other processes during a step, the step is flagged as disturbed. */
const NOISY_OTHER_CPU_PCT = 20;

const USAGE = `usage: npm run bench -- ingest [options]

  --concurrency 1,4,16,64   in-flight requests per sweep step (default 1,4,16,64)
  --seconds N               seconds per step (default 10; peers use the same)
  --threads N               load-generator worker threads (default 1)
  --endpoints N             endpoint id pool size (default 4000)
  --warmup N                warm-up seconds before measuring each server (default 2)
  --profile                 also run one step under node --cpu-prof and summarise the server's time
  --no-peers                skip the ceiling and no-fsync peers
  --no-designs              skip the designs section (issue 16 item 1): Pinstream with 0 and 2 prepare
                            threads, and the prototype harness's design A (worker threads) and B
                            (cluster processes), all at the sweep's best concurrency`;

interface Options {
  concurrency: number[];
  seconds: number;
  threads: number;
  endpoints: number;
  warmup: number;
  profile: boolean;
  peers: boolean;
  designs: boolean;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): Options {
  const o: Options = { concurrency: [1, 4, 16, 64], seconds: 10, threads: 1, endpoints: 4000, warmup: 2, profile: false, peers: true, designs: true };
  const num = (flag: string, v: string | undefined, min: number, max: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < min || n > max) throw new UsageError(`${flag} needs a number from ${min} to ${max}, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--concurrency': {
        const v = argv[++i];
        const list = (v ?? '').split(',').map((x) => num(a, x, 1, 1024));
        if (list.length === 0 || list.length > 16) throw new UsageError('--concurrency takes 1 to 16 values');
        o.concurrency = list.map(Math.floor);
        break;
      }
      case '--seconds':
        o.seconds = num(a, argv[++i], 0.5, 300);
        break;
      case '--threads':
        o.threads = Math.floor(num(a, argv[++i], 1, 16));
        break;
      case '--endpoints':
        o.endpoints = Math.floor(num(a, argv[++i], 1, 1_000_000));
        break;
      case '--warmup':
        o.warmup = num(a, argv[++i], 0, 60);
        break;
      case '--profile':
        o.profile = true;
        break;
      case '--no-peers':
        o.peers = false;
        break;
      case '--no-designs':
        o.designs = false;
        break;
      case '-h':
      case '--help':
        throw new UsageError('');
      default:
        throw new UsageError(`unknown option ${a}`);
    }
  }
  return o;
}

interface Row {
  label: string;
  /** Server CPU µs per event by thread name (byThreadName; a single server only). */
  threads: string;
  concurrency: number;
  result: LoadResult;
  reqPerSec: number;
  eventsPerSec: number;
  mbPerSec: number;
  p50: number;
  p99: number;
  max: number;
  serverCpuPct: number;
  clientCpuPct: number;
  /** Everything else the machine was busy with (other processes, kernel), 100% = one core. */
  otherCpuPct: number;
  /** Server CPU time per acknowledged event, µs. */
  serverUsPerEvent: number;
  window: Window;
  rssMB: number;
  hwmMB: number;
  /** From the server probe (bench/server-probe.ts), when the server runs with it. */
  probe?: ProbeSummary;
  /** Peaks of the server's memory by part over the step (MB, from /metrics pinstream_memory_bytes). */
  parts?: Record<string, number>;
}

interface ProbeLine {
  t: number;
  rssMB: number;
  heapUsedMB: number;
  heapTotalMB: number;
  externalMB: number;
  arrayBuffersMB: number;
  loopMaxMs: number;
  loopP99Ms: number;
  gcCount: number;
  gcMs: number;
  gcMaxMs: number;
}

interface ProbeSummary {
  heapUsedMB: number;
  heapTotalMB: number;
  externalMB: number;
  arrayBuffersMB: number;
  rssMB: number;
  loopMaxMs: number;
  loopP99Ms: number;
  gcPct: number;
  gcMaxMs: number;
}

/** Probe lines kept per server (one a second): bounded, the oldest dropped. */
const MAX_PROBE_LINES = 3600;
const PROBE_MAIN = new URL('./server-probe.js', import.meta.url).pathname;
const probes = new Map<number, ProbeLine[]>();

/** Collects the probe's lines from a child's stdout. */
function watchProbe(child: Child): void {
  const lines: ProbeLine[] = [];
  probes.set(child.pid, lines);
  let rest = '';
  child.proc.stdout!.on('data', (d: Buffer) => {
    const text = rest + d.toString('utf8');
    const parts = text.split('\n');
    rest = parts.pop() ?? '';
    if (rest.length > 4096) rest = '';
    for (const l of parts) {
      if (!l.startsWith('pinstream-probe ')) continue;
      try {
        lines.push(JSON.parse(l.slice('pinstream-probe '.length)) as ProbeLine);
      } catch {
        continue;
      }
      if (lines.length > MAX_PROBE_LINES) lines.shift();
    }
  });
}

/** The probe's seconds that fall in [startMs, endMs] (wall clock), summarized. */
function probeSummary(pid: number, startMs: number, endMs: number): ProbeSummary | undefined {
  const ls = (probes.get(pid) ?? []).filter((l) => l.t > startMs && l.t <= endMs + 1000);
  if (ls.length === 0) return undefined;
  const max = (k: keyof ProbeLine) => Math.max(...ls.map((l) => l[k]));
  const gcMs = ls.reduce((a, l) => a + l.gcMs, 0);
  return {
    heapUsedMB: max('heapUsedMB'),
    heapTotalMB: max('heapTotalMB'),
    externalMB: max('externalMB'),
    arrayBuffersMB: max('arrayBuffersMB'),
    rssMB: max('rssMB'),
    loopMaxMs: max('loopMaxMs'),
    loopP99Ms: max('loopP99Ms'),
    gcPct: (gcMs / (ls.length * 1000)) * 100,
    gcMaxMs: max('gcMaxMs'),
  };
}

/** The /metrics token the bench starts its Pinstream servers with (memory by part during each step). */
const BENCH_METRICS_TOKEN = 'bench-metrics-token-0123456789';
/** How often a step reads the server's memory by part from /metrics (peaks are kept). */
const MEMORY_SAMPLE_MS = 500;

/** Samples the server's memory by part (pinstream_memory_bytes) until stopped; keeps each part's peak, in MB. */
function sampleMemoryParts(url: string): () => Promise<Record<string, number> | undefined> {
  const peaks: Record<string, number> = {};
  let any = false;
  let inFlight: Promise<void> = Promise.resolve();
  const once = () => {
    inFlight = fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${BENCH_METRICS_TOKEN}` }, signal: AbortSignal.timeout(5000) })
      .then((r) => (r.ok ? r.text() : ''))
      .then((text) => {
        for (const [k, v] of Object.entries(parseMemoryMetrics(text))) {
          any = true;
          peaks[k] = Math.max(peaks[k] ?? 0, v / 1048576);
        }
      })
      .catch(() => {});
  };
  once();
  const timer = setInterval(once, MEMORY_SAMPLE_MS);
  return async () => {
    clearInterval(timer);
    await inFlight;
    return any ? peaks : undefined;
  };
}

/** One measured load step against a running child, with CPU and memory sampled at the window's edges. */
async function step(label: string, child: Child, gen: LoadGenerator, c: number, seconds: number, sample: () => ProcSample = () => sampleProc(child.pid)): Promise<Row> {
  const monoUs = () => Number(process.hrtime.bigint() / 1000n);
  let windowStartUs = 0;
  let windowEndUs = 0;
  let before: ProcSample | undefined;
  let after: ProcSample | undefined;
  let clientBefore: NodeJS.CpuUsage | undefined;
  let client: NodeJS.CpuUsage | undefined;
  let hostBefore = 0;
  let hostAfter = 0;
  const memory = sampleMemoryParts(child.url);
  const result = await gen.run({
    concurrency: c,
    seconds,
    atStart: () => {
      before = sample();
      clientBefore = process.cpuUsage();
      hostBefore = hostBusyMs();
      windowStartUs = monoUs();
    },
    atEnd: () => {
      client = process.cpuUsage(clientBefore);
      after = sample();
      hostAfter = hostBusyMs();
      windowEndUs = monoUs();
    },
  });
  const parts = await memory();
  const sorted = sortedSamples(result.latenciesMs);
  const s = result.elapsedMs / 1000;
  const wallEnd = Date.now();
  const probe = probeSummary(child.pid, wallEnd - result.elapsedMs, wallEnd);
  const serverCpuPct = ((after!.cpuMs - before!.cpuMs) / result.elapsedMs) * 100;
  const clientCpuPct = ((client!.user + client!.system) / 1000 / result.elapsedMs) * 100;
  return {
    label,
    threads: result.events > 0 && after!.threads.has(String(child.pid)) ? byThreadName(child.pid, before!, after!, result.events) : '',
    concurrency: c,
    result,
    reqPerSec: result.requests / s,
    eventsPerSec: result.events / s,
    mbPerSec: result.bodyBytes / s / 1e6,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
    serverCpuPct,
    clientCpuPct,
    otherCpuPct: Math.max(0, ((hostAfter - hostBefore) / result.elapsedMs) * 100 - serverCpuPct - clientCpuPct),
    serverUsPerEvent: result.events > 0 ? ((after!.cpuMs - before!.cpuMs) * 1000) / result.events : NaN,
    rssMB: after!.rssMB,
    hwmMB: after!.hwmMB,
    window: { startUs: windowStartUs, endUs: windowEndUs },
    probe,
    parts,
  };
}

function printStep(r: Row): void {
  const e = r.result;
  console.log(
    `  ${r.label.padEnd(18)} c=${String(r.concurrency).padStart(3)}  ${fmtInt(r.reqPerSec).padStart(6)} req/s  ` +
      `${fmtInt(r.eventsPerSec).padStart(8)} events/s  ${fmtNum(r.mbPerSec).padStart(6)} MB/s  ` +
      `p50 ${fmtNum(r.p50, 2)} ms  p99 ${fmtNum(r.p99, 2)} ms  server RSS ${fmtNum(r.rssMB)} MB (peak ${fmtNum(r.hwmMB)})  ` +
      `cpu server ${fmtNum(r.serverCpuPct, 0)}% (${fmtNum(r.serverUsPerEvent)} µs/event) client ${fmtNum(r.clientCpuPct, 0)}% other ${fmtNum(r.otherCpuPct, 0)}%  errors ${e.failedRequests}`,
  );
  if (r.threads) console.log(`    server CPU µs/event by thread: ${r.threads}`);
  if (r.probe) {
    const p = r.probe;
    console.log(
      `    main thread (peaks over the step): V8 heap ${fmtNum(p.heapUsedMB)} MB used of ${fmtNum(p.heapTotalMB)}, external ${fmtNum(p.externalMB)} MB ` +
        `(array buffers ${fmtNum(p.arrayBuffersMB)}), process RSS ${fmtNum(p.rssMB)} MB (the rest: native — DuckDB, SQLite, threads' heaps, code); ` +
        `event-loop delay max ${fmtNum(p.loopMaxMs, 1)} ms, p99 ${fmtNum(p.loopP99Ms, 1)} ms; GC ${fmtNum(p.gcPct, 1)}% of the time, longest pause ${fmtNum(p.gcMaxMs, 1)} ms`,
    );
  }
  if (r.parts) {
    const m = r.parts;
    const mb = (k: string) => fmtNum(m[k] ?? 0);
    const known = (m.main_heap_total ?? 0) + (m.main_external ?? 0) + (m.analytics_heap_total ?? 0) + (m.analytics_external ?? 0) + (m.duckdb ?? 0) + (m.prepare_heap_used ?? 0);
    console.log(
      `    memory by part (peaks over the step, /metrics): main heap ${mb('main_heap_used')} MB used of ${mb('main_heap_total')}, main external ${mb('main_external')} MB ` +
        `(array buffers ${mb('main_array_buffers')}), analytics thread heap ${mb('analytics_heap_used')} MB used of ${mb('analytics_heap_total')} + external ${mb('analytics_external')} MB, ` +
        `DuckDB ${mb('duckdb')} MB (limit ${mb('duckdb_limit')}, spilled ${mb('duckdb_spilled')}), prepare threads' heaps ${mb('prepare_heap_used')} MB; ` +
        `RSS ${mb('rss')} MB, of which ~${fmtNum(Math.max(0, (m.rss ?? 0) - known))} MB in none of these (code, thread isolates and stacks, SQLite's cache, socket buffers, allocator slack)` +
        (m.rss_file !== undefined ? `; RSS by kind: mapped from files (code of node, DuckDB, SQLite) ${mb('rss_file')} MB, anonymous ${mb('rss_anon')} MB` : ''),
    );
  }
  if (r.otherCpuPct > NOISY_OTHER_CPU_PCT) {
    console.log(`    WARNING: other processes kept ${fmtNum(r.otherCpuPct, 0)}% of a core busy during this step; its numbers are disturbed.`);
  }
  printErrors(e);
}

function printErrors(e: LoadResult): void {
  if (e.failedRequests === 0) return;
  console.log(`    ${e.failedRequests} of ${e.requests} requests failed (${e.failedEvents} events not acknowledged):`);
  for (const [msg, n] of [...e.errors].sort((a, b) => b[1] - a[1])) console.log(`      ${String(n).padStart(7)} × ${msg}`);
}

async function createApp(child: Child): Promise<string> {
  const r = await signedPost(child.url, child.admin!, '/v1/apps', { Name: `bench-${Date.now()}` });
  if (r.status !== 201 || typeof r.json?.Id !== 'string') throw new Error(`CreateApp answered HTTP ${r.status}: ${r.text.slice(0, 500)}`);
  return r.json.Id;
}

function dirBytes(dir: string): number {
  let total = 0;
  const walk = (d: string, depth: number) => {
    if (depth > 8) return;
    for (const ent of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, ent.name);
      if (ent.isDirectory()) walk(p, depth + 1);
      else if (ent.isFile()) total += statSync(p).size;
    }
  };
  try {
    walk(dir, 0);
  } catch {
    return NaN;
  }
  return total;
}

function generatorFor(target: LoadTarget, o: Options, pool: string[]): Promise<LoadGenerator> {
  return LoadGenerator.start(target, { threads: o.threads, eventsPerRequest: EVENTS_PER_REQUEST, endpointIds: pool });
}

/** Warms up server and load threads (JIT, connections) outside the measurements; returns failed requests. */
async function warmUp(name: string, gen: LoadGenerator, seconds: number): Promise<number> {
  if (seconds <= 0) return 0;
  const warm = await gen.run({ concurrency: 4, seconds });
  console.log(`  ${name}: warm-up ${seconds} s, ${warm.requests} requests, ${warm.failedRequests} failed`);
  printErrors(warm);
  return warm.failedRequests;
}

/** Starts a Pinstream (banner checked), creates the app, starts a load generator and warms up. */
async function pinstreamUnderTest(name: string, env: Record<string, string>, o: Options, pool: string[], live: Set<Child>, nodeArgs: string[] = []) {
  const dataDir = freshDir('pinstream-bench-');
  const child = await startPinstream(name, { env: { PINSTREAM_METRICS_TOKEN: BENCH_METRICS_TOKEN, ...env }, nodeArgs: [...nodeArgs, '--import', PROBE_MAIN], tmpDir: dataDir });
  live.add(child);
  watchProbe(child);
  console.log(`  ${name}: pid ${child.pid}, ${child.url}, admin key ${child.admin!.accessKeyId} (secret parsed from banner), data ${dataDir}`);
  const appId = await createApp(child);
  const gen = await generatorFor({ url: child.url, appId, credentials: child.admin!, verify: 'pinpoint' }, o, pool);
  const warmErrors = await warmUp(name, gen, o.warmup);
  return { child, gen, dataDir, warmErrors };
}

export async function ingest(argv: string[]): Promise<number> {
  let o: Options;
  try {
    o = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    if (e.message) console.error(`bench ingest: ${e.message}\n`);
    console.error(USAGE);
    return e.message ? 2 : 0;
  }

  const cores = availableParallelism();
  console.log(`Pinstream ingest benchmark — PutEvents, ${EVENTS_PER_REQUEST} Amplify-JS pageView events per request, SigV4 (mobiletargeting), HTTP/1.1 keep-alive to 127.0.0.1`);
  console.log(`  machine: ${cores} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}`);
  console.log(
    `  sweep: concurrency ${o.concurrency.join(',')}, ${o.seconds} s per step, ${o.threads} load thread(s), ` +
      `${o.endpoints} endpoint ids, every event id a fresh UUID`,
  );
  console.log(
    `  NOTE: load generator and server share these ${cores} cores (100% = one core): "cpu client" is what the generator ` +
      `took from the server, "other" is everything else busy on the machine during the step (other processes). ` +
      `Results are a lower bound for a dedicated server.`,
  );
  console.log(`  events/s counts only events acknowledged 202/"Accepted"; Pinstream acknowledges after fdatasync (durable) unless noted.\n`);

  const pool = Array.from({ length: o.endpoints }, () => randomUUID());
  const rows: Row[] = [];
  const peers: Row[] = [];
  const designs: Row[] = [];
  let errors = 0;
  const live = new Set<Child>();
  const stopAll = async () => {
    for (const c of live) await c.stop();
    live.clear();
  };
  const onSignal = () => {
    void stopAll().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let profileText: string | undefined;
  const gens = new Set<LoadGenerator>();
  const track = <T extends { gen: LoadGenerator }>(x: T): T => (gens.add(x.gen), x);
  const finish = async (child: Child, gen: LoadGenerator) => {
    await gen.close();
    gens.delete(gen);
    await child.stop();
    live.delete(child);
  };
  try {
    // ---- Sweep ------------------------------------------------------------------------------
    console.log(`sweep (Pinstream, PINSTREAM_LOG_FSYNC default = true, PINSTREAM_INGEST_THREADS default = ${DEFAULT_INGEST_THREADS} on this machine):`);
    const main = track(await pinstreamUnderTest('pinstream', {}, o, pool, live));
    errors += main.warmErrors;
    for (const c of o.concurrency) {
      const r = await step('pinstream', main.child, main.gen, c, o.seconds);
      rows.push(r);
      errors += r.result.failedRequests;
      printStep(r);
    }
    const accepted = rows.reduce((a, r) => a + r.result.events, 0);
    const logBytes = dirBytes(join(main.dataDir, 'log'));
    console.log(
      `  data dir after sweep: log ${fmtNum(logBytes / 1e6)} MB for ${fmtInt(accepted)} measured events + warm-up ` +
        `(~${fmtInt(logBytes / Math.max(1, accepted))} B/event), whole data dir ${fmtNum(dirBytes(main.dataDir) / 1e6)} MB`,
    );
    await finish(main.child, main.gen);

    const best = rows.reduce((a, b) => (b.eventsPerSec > a.eventsPerSec ? b : a));
    console.log(`\nbest concurrency: ${best.concurrency} (${fmtInt(best.eventsPerSec)} events/s)\n`);

    // ---- Peers ------------------------------------------------------------------------------
    if (o.peers) {
      console.log(`peers at concurrency ${best.concurrency}:`);
      const ceiling = await startCeiling();
      live.add(ceiling);
      console.log(`  ceiling: pid ${ceiling.pid}, ${ceiling.url} (node:http, read body + JSON.parse, constant 202; only the HTTP status is verified)`);
      const ceilGen = await generatorFor(
        { url: ceiling.url, appId: '0'.repeat(32), credentials: { accessKeyId: 'BENCHCEILING0000', secretAccessKey: 'unused-by-the-ceiling' }, verify: 'status' },
        o,
        pool,
      );
      gens.add(ceilGen);
      errors += await warmUp('ceiling', ceilGen, o.warmup);
      const cr = await step('ceiling', ceiling, ceilGen, best.concurrency, o.seconds);
      peers.push(cr);
      errors += cr.result.failedRequests;
      printStep(cr);
      await finish(ceiling, ceilGen);

      const nofsync = track(await pinstreamUnderTest('pinstream-nofsync', { PINSTREAM_LOG_FSYNC: 'false' }, o, pool, live));
      errors += nofsync.warmErrors;
      const nr = await step('pinstream-nofsync', nofsync.child, nofsync.gen, best.concurrency, o.seconds);
      peers.push(nr);
      errors += nr.result.failedRequests;
      printStep(nr);
      await finish(nofsync.child, nofsync.gen);
      console.log('');
    }

    // ---- Designs (issue 16 item 1) -------------------------------------------------------------
    if (o.designs) {
      console.log(`designs at concurrency ${best.concurrency} (the sweep above is Pinstream with ${DEFAULT_INGEST_THREADS} prepare thread(s)):`);
      for (const threads of [0, 2]) {
        const name = `pinstream-threads-${threads}`;
        const v = track(await pinstreamUnderTest(name, { PINSTREAM_INGEST_THREADS: String(threads) }, o, pool, live));
        errors += v.warmErrors;
        const r = await step(name, v.child, v.gen, best.concurrency, o.seconds);
        designs.push(r);
        errors += r.result.failedRequests;
        printStep(r);
        await finish(v.child, v.gen);
      }
      console.log('  prototype harness (bench/designs-server.ts: no SQLite endpoint table, no IAM policies, a plain file log; an upper bound, the designs compared like for like):');
      const protos: Design[] = [
        { label: 'proto-A-inline', design: 'threads', n: 0 },
        { label: 'proto-A-threads-1', design: 'threads', n: 1 },
        { label: 'proto-B-procs-2', design: 'procs', n: 2 },
      ];
      for (const d of protos) {
        const child = await startDesign(d);
        live.add(child);
        console.log(`  ${d.label}: pids ${child.pids.join(',')}, ${child.url}`);
        const gen = await generatorFor({ url: child.url, appId: 'f'.repeat(32), credentials: PROTO_CREDS, verify: 'pinpoint' }, o, pool);
        gens.add(gen);
        errors += await warmUp(d.label, gen, o.warmup);
        const r = await step(d.label, child, gen, best.concurrency, o.seconds, () => sampleAll(child.pids));
        designs.push(r);
        errors += r.result.failedRequests;
        printStep(r);
        await finish(child, gen);
      }
      if (o.profile) {
        // Each process and thread of a design writes its own profile (file names end in
        // <pid>.<thread id>.<n>.cpuprofile; thread 0 is a process's main thread).
        for (const d of protos.filter((x) => x.n > 0)) {
          const profDir = mkdtempSync(join(tmpdir(), 'pinstream-prof-'));
          try {
            const secs = Math.min(5, o.seconds);
            const child = await startDesign(d, ['--cpu-prof', '--cpu-prof-dir', profDir]);
            live.add(child);
            const gen = await generatorFor({ url: child.url, appId: 'f'.repeat(32), credentials: PROTO_CREDS, verify: 'pinpoint' }, o, pool);
            gens.add(gen);
            errors += await warmUp(`${d.label}-profiled`, gen, Math.min(o.warmup, 1));
            const r = await step(`${d.label}-profiled`, child, gen, best.concurrency, secs, () => sampleAll(child.pids));
            errors += r.result.failedRequests;
            printStep(r);
            await finish(child, gen);
            for (const f of readdirSync(profDir).filter((x) => x.endsWith('.cpuprofile')).sort()) {
              const m = /\.(\d+)\.(\d+)\.\d+\.cpuprofile$/.exec(f);
              const who = m ? `pid ${m[1]}${Number(m[1]) === child.pids[0] ? ' (primary)' : ''}, thread ${m[2]}${m[2] === '0' ? ' (main)' : ''}` : f;
              console.log(`  profile of ${d.label}: ${who}`);
              console.log(renderProfile(summarizeProfile(join(profDir, f), 8, r.window)).replace(/^/gm, '    '));
            }
          } finally {
            rmSync(profDir, { recursive: true, force: true });
          }
        }
      }
      console.log('');
    }

    // ---- Profile ----------------------------------------------------------------------------
    if (o.profile) {
      const profDir = mkdtempSync(join(tmpdir(), 'pinstream-prof-'));
      try {
        const secs = Math.min(5, o.seconds);
        console.log(`profile: Pinstream (fsync on) under node --cpu-prof, one ${secs} s step at concurrency ${best.concurrency}:`);
        const prof = track(
          await pinstreamUnderTest('pinstream-profiled', {}, { ...o, warmup: Math.min(o.warmup, 1) }, pool, live, ['--cpu-prof', '--cpu-prof-dir', profDir]),
        );
        errors += prof.warmErrors;
        const pr = await step('pinstream-profiled', prof.child, prof.gen, best.concurrency, secs);
        errors += pr.result.failedRequests;
        printStep(pr);
        await finish(prof.child, prof.gen);
        const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
        if (files.length === 0) {
          console.log('  no .cpuprofile was written (did the server exit cleanly on SIGTERM?)');
        } else {
          profileText = renderProfile(summarizeProfile(join(profDir, files[0]), 30, pr.window));
          console.log('');
          console.log(profileText.replace(/^/gm, '  '));
        }
      } finally {
        rmSync(profDir, { recursive: true, force: true });
      }
      console.log('');
    }
  } catch (e) {
    console.error(`bench ingest: run aborted: ${(e as Error).stack ?? e}`);
    return 1;
  } finally {
    for (const g of gens) await g.close();
    await stopAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  // ---- Summary --------------------------------------------------------------------------------
  const all = [...rows, ...peers, ...designs];
  console.log('summary:');
  console.log(
    table(
      ['server', 'conc', 'req/s', 'events/s', 'MB/s', 'p50 ms', 'p99 ms', 'max ms', 'srv cpu%', 'srv µs/ev', 'cli cpu%', 'other%', 'RSS MB', 'peak MB', 'errors'],
      all.map((r) => [
        r.label,
        String(r.concurrency),
        fmtInt(r.reqPerSec),
        fmtInt(r.eventsPerSec),
        fmtNum(r.mbPerSec),
        fmtNum(r.p50, 2),
        fmtNum(r.p99, 2),
        fmtNum(r.max, 1),
        fmtNum(r.serverCpuPct, 0),
        fmtNum(r.serverUsPerEvent),
        fmtNum(r.clientCpuPct, 0),
        fmtNum(r.otherCpuPct, 0),
        fmtNum(r.rssMB),
        fmtNum(r.hwmMB),
        String(r.result.failedRequests),
      ]),
    ),
  );
  const best = rows.reduce((a, b) => (b.eventsPerSec > a.eventsPerSec ? b : a));
  const ceiling = peers.find((p) => p.label === 'ceiling');
  const nofsync = peers.find((p) => p.label === 'pinstream-nofsync');
  console.log(`\nratios (Pinstream best = ${fmtInt(best.eventsPerSec)} events/s at concurrency ${best.concurrency}):`);
  console.log(
    `  ${'vs ceiling peer (node:http + JSON.parse only):'.padEnd(50)}` +
      (ceiling ? `${fmtRatio(best.eventsPerSec / ceiling.eventsPerSec)} of ${fmtInt(ceiling.eventsPerSec)} events/s` : 'not run'),
  );
  console.log(
    `  ${'vs Pinstream without fdatasync:'.padEnd(50)}` +
      (nofsync
        ? `${fmtRatio(best.eventsPerSec / nofsync.eventsPerSec)} of ${fmtInt(nofsync.eventsPerSec)} events/s ` +
          `(p50 ${fmtNum(best.p50, 2)} vs ${fmtNum(nofsync.p50, 2)} ms)`
        : 'not run'),
  );
  console.log(`  ${`vs target ${fmtInt(TARGET_EVENTS_PER_SECOND)} events/s:`.padEnd(50)}${fmtRatio(best.eventsPerSec / TARGET_EVENTS_PER_SECOND)}`);
  console.log(`  ${'server peak RSS (sweep) vs aim 400 MB:'.padEnd(50)}${fmtNum(Math.max(...rows.map((r) => r.hwmMB)))} MB (${fmtRatio(Math.max(...rows.map((r) => r.hwmMB)) / 400)})`);
  if (designs.length > 0) {
    console.log(`\ndesigns (issue 16 item 1), each at concurrency ${best.concurrency}:`);
    for (const r of [best, ...designs]) {
      const name = r === best ? `pinstream (default ${DEFAULT_INGEST_THREADS} thread(s), sweep)` : r.label;
      console.log(
        `  ${name.padEnd(40)} ${fmtInt(r.eventsPerSec).padStart(8)} events/s  ${fmtNum(r.serverUsPerEvent).padStart(6)} µs/event  ` +
          `p50 ${fmtNum(r.p50, 1)} / p99 ${fmtNum(r.p99, 1)} ms  peak RSS ${fmtNum(r.hwmMB)} MB  ` +
          `${ceiling ? `${fmtRatio(r.eventsPerSec / ceiling.eventsPerSec)} of ceiling, ` : ''}${fmtRatio(r.eventsPerSec / TARGET_EVENTS_PER_SECOND)} of 100k`,
      );
    }
  }
  const noisy = all.filter((r) => r.otherCpuPct > NOISY_OTHER_CPU_PCT);
  if (noisy.length > 0) {
    console.log(`  WARNING: ${noisy.length} step(s) ran while other processes used >${NOISY_OTHER_CPU_PCT}% of a core (column other%); re-run on a quiet machine before trusting them.`);
  }
  console.log(`peers run: ${['pinstream sweep', ...peers.map((p) => p.label), ...designs.map((p) => p.label), ...(profileText ? ['pinstream-profiled'] : [])].join(', ')}`);
  console.log(errors === 0 ? '\nresult: OK, zero errors' : `\nresult: FAILED, ${errors} failed requests (see above)`);
  return errors === 0 ? 0 : 1;
}
