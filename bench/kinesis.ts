// `bench kinesis`: the kinesalite peer-baseline workload of reference/kinesis-firehose.md ("Peer
// baseline: kinesalite"), run with the same client code against Pinstream (child process, durable
// defaults) and kinesalite 3.3.3 (child process on 127.0.0.1; on-disk LevelDB, optionally also in
// memory), one target after the other on the same machine in one run. Per target: a 4-shard stream
// per record size; N clients looping PutRecords of 500 records (random 16-hex-char partition keys,
// one random payload reused) for a fixed time; then GetRecords over the 4 shards in parallel from
// TRIM_HORIZON with Limit 10000 until an empty page (read count checked against what was put);
// then sequential single PutRecord latency (200 B) on a separate stream. Clients are
// @aws-sdk/client-kinesis over keep-alive HTTP/1.1 (kinesalite has no HTTP/2), maxAttempts 1, so
// every throttle or error is counted instead of retried away. Reports records/s, payload MB/s,
// latency percentiles, server CPU/RSS and Pinstream/kinesalite ratios; exit 1 on any error.
// --encryption adds, for Pinstream, the same put and get phases per size on a stream with
// server-side encryption started (alias/aws/kinesis), reported as encrypted/plain ratios.

import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { availableParallelism, cpus, loadavg } from 'node:os';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  PutRecordCommand,
  PutRecordsCommand,
  StartStreamEncryptionCommand,
  type PutRecordsRequestEntry,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostBusyMs, sampleProc, startKinesalite, startPinstream, type Child, type ProcSample } from './procs.js';
import { Signer, post } from './load.js';
import { renderProfile, summarizeProfile, type Window } from './profile.js';
import { fmtInt, fmtNum, percentile, table } from './stats.js';


const SHARDS = 4;
const BATCH = 500;
const GET_LIMIT = 10_000;
const LATENCY_BYTES = 200;
const LATENCY_WARMUP = 50;
/** Hard caps on top of the fixed time, as in the reference (a put phase of 20 s was capped at 30 s). */
const GET_CAP_MS = 30_000;
const REQUEST_TIMEOUT_MS = 30_000;
const MAX_DISTINCT_ERRORS = 20;
/** The aims of issue 16, printed as ratios against kinesalite (on disk) measured in the same run. */
const AIM_PUT_RATIO = 10;
const AIM_GET_RATIO = 10;
const AIM_PUT_RECORD_P99_MS = 2;
/** Above this much CPU used by other processes during a phase, it is flagged as disturbed. */
const NOISY_OTHER_CPU_PCT = 20;

type TargetName = 'pinstream' | 'kinesalite-disk' | 'kinesalite-memory';
const ALL_TARGETS: TargetName[] = ['pinstream', 'kinesalite-disk', 'kinesalite-memory'];

const FSYNC_POLICY: Record<TargetName, string> = {
  pinstream:
    'durable: every PutRecord/PutRecords is acknowledged after fdatasync of the shard logs (group commit; default settings)',
  'kinesalite-disk': 'LevelDB via leveldown, writes not synced (sync:false): acknowledged from the OS page cache, no fsync; survives a process crash, not an OS crash/power loss',
  'kinesalite-memory': 'memdown: nothing written to disk',
};

const USAGE = `usage: npm run bench -- kinesis [options]

  --seconds N          seconds of PutRecords per case (default 10)
  --clients N          concurrent PutRecords clients (default 4)
  --sizes 200,1024     record payload sizes in bytes (default 200,1024)
  --latency-puts N     sequential PutRecord calls measured after ${LATENCY_WARMUP} warm-ups (default 1000)
  --warmup N           seconds of PutRecords on a scratch stream before measuring each target (default 2)
  --memory             also run kinesalite in memory (memdown)
  --encryption         Pinstream also on encrypted streams (StartStreamEncryption), as ratios to plain
  --targets LIST       comma list of ${ALL_TARGETS.join(', ')} (default pinstream,kinesalite-disk)
  --profile            run Pinstream under node --cpu-prof; summarise its put, get and PutRecord phases`;

interface Options {
  seconds: number;
  clients: number;
  sizes: number[];
  latencyPuts: number;
  warmup: number;
  targets: TargetName[];
  encryption: boolean;
  profile: boolean;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): Options {
  const o: Options = { seconds: 10, clients: 4, sizes: [200, 1024], latencyPuts: 1000, warmup: 2, targets: ['pinstream', 'kinesalite-disk'], encryption: false, profile: false };
  const num = (flag: string, v: string | undefined, min: number, max: number): number => {
    const n = Number(v);
    if (v === undefined || v === '' || !Number.isFinite(n) || n < min || n > max) throw new UsageError(`${flag} needs a number from ${min} to ${max}, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--seconds':
        o.seconds = num(a, argv[++i], 0.5, 300);
        break;
      case '--clients':
        o.clients = Math.floor(num(a, argv[++i], 1, 64));
        break;
      case '--sizes': {
        const list = (argv[++i] ?? '').split(',').map((x) => Math.floor(num(a, x, 1, 1_000_000)));
        if (list.length > 8) throw new UsageError('--sizes takes 1 to 8 values');
        if (list.some((s) => s * BATCH > 5 * 1024 * 1024 - BATCH * 16)) throw new UsageError('--sizes: 500 records of that size exceed the 5 MiB PutRecords limit');
        o.sizes = list;
        break;
      }
      case '--latency-puts':
        o.latencyPuts = Math.floor(num(a, argv[++i], 1, 1_000_000));
        break;
      case '--warmup':
        o.warmup = num(a, argv[++i], 0, 60);
        break;
      case '--encryption':
        o.encryption = true;
        break;
      case '--profile':
        o.profile = true;
        break;
      case '--memory':
        if (!o.targets.includes('kinesalite-memory')) o.targets.push('kinesalite-memory');
        break;
      case '--targets': {
        const list = (argv[++i] ?? '').split(',').filter(Boolean);
        for (const t of list) if (!ALL_TARGETS.includes(t as TargetName)) throw new UsageError(`unknown target "${t}" (known: ${ALL_TARGETS.join(', ')})`);
        if (list.length === 0) throw new UsageError('--targets needs at least one target');
        o.targets = list as TargetName[];
        break;
      }
      case '-h':
      case '--help':
        throw new UsageError('');
      default:
        throw new UsageError(`unknown option ${a}`);
    }
  }
  return o;
}

// ------------------------------------------------------------------------------------------------
// Targets

interface Target {
  name: TargetName;
  child: Child;
  credentials: { accessKeyId: string; secretAccessKey: string };
}

async function startTarget(name: TargetName, profDir?: string): Promise<Target> {
  if (name === 'pinstream') {
    const child = await startPinstream('pinstream', { nodeArgs: profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [] });
    return { name, child, credentials: child.admin! };
  }
  const child = await startKinesalite(name, name === 'kinesalite-disk');
  // kinesalite does not check signatures; any key signs.
  return { name, child, credentials: { accessKeyId: 'AKIDKINESALITEBENCH', secretAccessKey: 'kinesalite-does-not-check-this' } };
}

function makeClient(t: Target): KinesisClient {
  return new KinesisClient({
    endpoint: t.child.url,
    region: 'us-east-1',
    credentials: t.credentials,
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: 8 }),
      requestTimeout: REQUEST_TIMEOUT_MS,
    }),
  });
}

// ------------------------------------------------------------------------------------------------
// Error accounting

class Errors {
  readonly counts = new Map<string, number>();
  total = 0;
  add(what: string, n = 1): void {
    const key = this.counts.has(what) || this.counts.size < MAX_DISTINCT_ERRORS ? what : '(further distinct errors)';
    this.counts.set(key, (this.counts.get(key) ?? 0) + n);
    this.total += n;
  }
  fromException(op: string, e: unknown): void {
    const err = e as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    const status = err.$metadata?.httpStatusCode;
    this.add(`${op}: ${err.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}: ${String(err.message ?? e).slice(0, 200)}`);
  }
  print(indent = '    '): void {
    for (const [msg, n] of [...this.counts].sort((a, b) => b[1] - a[1])) console.log(`${indent}${String(n).padStart(7)} × ${msg}`);
  }
}

// ------------------------------------------------------------------------------------------------
// Phases

/** CPU and memory of the server, this client and the whole machine across one phase. */
class Meter {
  private proc0: ProcSample;
  private client0 = process.cpuUsage();
  private host0 = hostBusyMs();
  private t0 = performance.now();
  constructor(private pid: number) {
    this.proc0 = sampleProc(pid);
  }
  end() {
    const ms = performance.now() - this.t0;
    const p = sampleProc(this.pid);
    const c = process.cpuUsage(this.client0);
    const serverCpuPct = ((p.cpuMs - this.proc0.cpuMs) / ms) * 100;
    const clientCpuPct = ((c.user + c.system) / 1000 / ms) * 100;
    const otherCpuPct = Math.max(0, ((hostBusyMs() - this.host0) / ms) * 100 - serverCpuPct - clientCpuPct);
    return { serverCpuPct, clientCpuPct, otherCpuPct, rssMB: p.rssMB, hwmMB: p.hwmMB };
  }
}
type Usage = ReturnType<Meter['end']>;

const hex16 = (buf: Buffer, i: number) => buf.toString('hex', i * 8, i * 8 + 8);

async function createStream(client: KinesisClient, name: string, encrypted = false): Promise<void> {
  await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: SHARDS }));
  await waitActive(client, name);
  if (!encrypted) return;
  await client.send(new StartStreamEncryptionCommand({ StreamName: name, EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' }));
  await waitActive(client, name);
}

async function waitActive(client: KinesisClient, name: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const s = await client.send(new DescribeStreamSummaryCommand({ StreamName: name }));
    if (s.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') return;
    if (Date.now() > deadline) throw new Error(`stream ${name} not ACTIVE after 10 s (${s.StreamDescriptionSummary?.StreamStatus})`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface PutPhase {
  requests: number;
  records: number;
  failedRecords: number;
  payloadBytes: number;
  elapsedMs: number;
  /** PutRecords call latencies, ms, sorted. */
  latencies: Float64Array;
}

/** `clients` loops, each with its own SDK client, sending PutRecords of BATCH records until `seconds` pass. */
async function putPhase(clients: KinesisClient[], stream: string, payload: Buffer, seconds: number, errors: Errors): Promise<PutPhase> {
  const r: PutPhase = { requests: 0, records: 0, failedRecords: 0, payloadBytes: 0, elapsedMs: 0, latencies: new Float64Array(0) };
  const lat: number[] = [];
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  await Promise.all(
    clients.map(async (client) => {
      while (performance.now() < deadline) {
        const keys = randomBytes(8 * BATCH);
        const Records: PutRecordsRequestEntry[] = new Array(BATCH);
        for (let i = 0; i < BATCH; i++) Records[i] = { Data: payload, PartitionKey: hex16(keys, i) };
        const s = performance.now();
        try {
          const out = await client.send(new PutRecordsCommand({ StreamName: stream, Records }));
          const failed = out.FailedRecordCount ?? 0;
          const results = out.Records ?? [];
          if (results.length !== BATCH) errors.add(`PutRecords: ${results.length} results for ${BATCH} records`);
          let ok = 0;
          for (const x of results) {
            if (x.ErrorCode) errors.add(`PutRecords record: ${x.ErrorCode}: ${(x.ErrorMessage ?? '').slice(0, 120)}`);
            else if (x.SequenceNumber) ok++;
          }
          if (ok + failed !== BATCH && results.length === BATCH) errors.add(`PutRecords: FailedRecordCount ${failed} but ${BATCH - ok} records without a sequence number`);
          r.records += ok;
          r.failedRecords += BATCH - ok;
          r.payloadBytes += ok * payload.length;
        } catch (e) {
          errors.fromException('PutRecords', e);
          r.failedRecords += BATCH;
        }
        lat.push(performance.now() - s);
        r.requests++;
      }
    }),
  );
  r.elapsedMs = performance.now() - t0;
  r.latencies = Float64Array.from(lat).sort();
  return r;
}

interface GetPhase {
  records: number;
  payloadBytes: number;
  calls: number;
  elapsedMs: number;
  timedOut: boolean;
}

/** Reads every shard from TRIM_HORIZON in parallel with Limit 10000 until a page comes back empty. */
async function getPhase(client: KinesisClient, stream: string, errors: Errors): Promise<GetPhase> {
  const r: GetPhase = { records: 0, payloadBytes: 0, calls: 0, elapsedMs: 0, timedOut: false };
  const t0 = performance.now();
  const shards = (await client.send(new ListShardsCommand({ StreamName: stream }))).Shards ?? [];
  if (shards.length !== SHARDS) errors.add(`ListShards: ${shards.length} shards, expected ${SHARDS}`);
  await Promise.all(
    shards.map(async (sh) => {
      try {
        let it = (await client.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: sh.ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
        while (it) {
          if (performance.now() - t0 > GET_CAP_MS) {
            r.timedOut = true;
            return;
          }
          const out = await client.send(new GetRecordsCommand({ ShardIterator: it, Limit: GET_LIMIT }));
          r.calls++;
          const recs = out.Records ?? [];
          if (recs.length === 0) return;
          r.records += recs.length;
          for (const x of recs) r.payloadBytes += x.Data?.length ?? 0;
          it = out.NextShardIterator;
        }
      } catch (e) {
        errors.fromException('GetRecords', e);
      }
    }),
  );
  r.elapsedMs = performance.now() - t0;
  return r;
}

/** Sequential single PutRecord calls of LATENCY_BYTES; returns sorted latencies of the measured ones. */
async function latencyPhase(client: KinesisClient, stream: string, n: number, errors: Errors): Promise<Float64Array> {
  const payload = randomBytes(LATENCY_BYTES);
  const lat = new Float64Array(n);
  let k = 0;
  for (let i = 0; i < LATENCY_WARMUP + n; i++) {
    const s = performance.now();
    try {
      const out = await client.send(new PutRecordCommand({ StreamName: stream, Data: payload, PartitionKey: randomBytes(8).toString('hex') }));
      if (!out.SequenceNumber) errors.add('PutRecord: no SequenceNumber in the answer');
    } catch (e) {
      errors.fromException('PutRecord', e);
    }
    if (i >= LATENCY_WARMUP) lat[k++] = performance.now() - s;
  }
  return lat.sort();
}

/**
 * The same sequential PutRecord calls from a lean client: node:http on one kept-alive socket, SigV4
 * signed by the bench's own signer, the answer checked for a SequenceNumber. Without the SDK's
 * middleware (and its GC) in the measured time, this is the server's own latency plus loopback.
 */
async function leanLatencyPhase(t: Target, stream: string, n: number, errors: Errors): Promise<Float64Array> {
  const u = new URL(t.child.url);
  const signer = new Signer(t.credentials, u.host, 'us-east-1', 'kinesis');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const payload = randomBytes(LATENCY_BYTES).toString('base64');
  const lat = new Float64Array(n);
  let k = 0;
  try {
    for (let i = 0; i < LATENCY_WARMUP + n; i++) {
      const body = Buffer.from(JSON.stringify({ StreamName: stream, Data: payload, PartitionKey: randomBytes(8).toString('hex') }));
      const s = performance.now();
      const headers = signer.sign('POST', '/', body, Date.now(), { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Kinesis_20131202.PutRecord' });
      try {
        const r = await post(agent, Number(u.port), '/', headers, body);
        if (r.status !== 200 || !r.body.includes('"SequenceNumber"')) errors.add(`PutRecord (lean client): HTTP ${r.status} ${r.body.toString('utf8').slice(0, 120)}`);
      } catch (e) {
        errors.fromException('PutRecord (lean client)', e);
      }
      if (i >= LATENCY_WARMUP) lat[k++] = performance.now() - s;
    }
  } finally {
    agent.destroy();
  }
  return lat.sort();
}

/** The disk's own floor for a durable PutRecord: append LATENCY_BYTES + fdatasync, sequentially, in the temp directory the servers use. */
function diskSyncLatency(n: number): Float64Array {
  const dir = mkdtempSync(join(tmpdir(), 'pinstream-fsync-'));
  const fd = openSync(join(dir, 'f'), 'a');
  const buf = randomBytes(LATENCY_BYTES + 64);
  const lat = new Float64Array(n);
  try {
    for (let i = 0; i < n; i++) {
      const s = performance.now();
      writeSync(fd, buf);
      fdatasyncSync(fd);
      lat[i] = performance.now() - s;
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  return lat.sort();
}

// ------------------------------------------------------------------------------------------------
// One target

interface CaseResult {
  size: number;
  put: PutPhase;
  putUsage: Usage;
  get: GetPhase;
  getUsage: Usage;
}

interface TargetResult {
  name: TargetName;
  cases: CaseResult[];
  /** The same cases on encrypted streams (--encryption, Pinstream only). */
  encryptedCases: CaseResult[];
  latency: Float64Array;
  /** Sequential PutRecord latencies from the lean client (leanLatencyPhase), sorted. */
  leanLatency: Float64Array;
  rssStartMB: number;
  rssEndMB: number;
  hwmMB: number;
  errors: Errors;
  noisy: number;
}

const recPerSec = (n: number, ms: number) => (n / ms) * 1000;
/** Server CPU time per record of a phase: what the server itself spends, whatever else shares the cores. */
const cpuUsPerRecord = (u: Usage, elapsedMs: number, records: number) => (u.serverCpuPct / 100) * elapsedMs * 1000 / Math.max(1, records);
const mbPerSec = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

function usageText(u: Usage): string {
  return `cpu server ${fmtNum(u.serverCpuPct, 0)}% client ${fmtNum(u.clientCpuPct, 0)}% other ${fmtNum(u.otherCpuPct, 0)}%, server RSS ${fmtNum(u.rssMB)} MB`;
}

async function runTarget(name: TargetName, o: Options, live: Set<Child>): Promise<TargetResult> {
  const profDir = o.profile && name === 'pinstream' ? mkdtempSync(join(tmpdir(), 'pinstream-prof-')) : undefined;
  /** Measured phases, for the profile summary (monotonic µs, the clock V8's profile uses). */
  const windows: Array<{ label: string; window: Window }> = [];
  const monoUs = () => Number(process.hrtime.bigint() / 1000n);
  const t = await startTarget(name, profDir);
  live.add(t.child);
  const errors = new Errors();
  const clients = Array.from({ length: o.clients }, () => makeClient(t));
  const res: TargetResult = { name, cases: [], encryptedCases: [], latency: new Float64Array(0), leanLatency: new Float64Array(0), rssStartMB: sampleProc(t.child.pid).rssMB, rssEndMB: NaN, hwmMB: NaN, errors, noisy: 0 };
  const tag = Date.now().toString(36);
  const noisy = (u: Usage) => {
    if (u.otherCpuPct > NOISY_OTHER_CPU_PCT) {
      res.noisy++;
      console.log(`    WARNING: other processes kept ${fmtNum(u.otherCpuPct, 0)}% of a core busy during this phase; its numbers are disturbed.`);
    }
  };
  try {
    console.log(`${name}: pid ${t.child.pid}, ${t.child.url}, RSS ${fmtNum(res.rssStartMB)} MB at start`);
    console.log(`  fsync policy: ${FSYNC_POLICY[name]}`);
    if (o.warmup > 0) {
      const warm = `warmup-${tag}`;
      await createStream(clients[0], warm);
      const w = await putPhase(clients, warm, randomBytes(200), o.warmup, errors);
      console.log(`  warm-up: ${o.warmup} s of PutRecords (200 B) on a scratch stream, ${fmtInt(w.records)} records, ${w.failedRecords} failed`);
    }
    const runCase = async (size: number, encrypted: boolean): Promise<CaseResult> => {
      const stream = `bench-${encrypted ? 'kms-' : ''}${size}-${tag}`;
      const label = encrypted ? ' (encrypted)' : '';
      await createStream(clients[0], stream, encrypted);
      const payload = randomBytes(size);
      let m = new Meter(t.child.pid);
      let w0 = monoUs();
      const put = await putPhase(clients, stream, payload, o.seconds, errors);
      const putUsage = m.end();
      windows.push({ label: `PutRecords${label} ${size} B`, window: { startUs: w0, endUs: monoUs() } });
      console.log(
        `  PutRecords${label} ${size} B x${BATCH}, ${o.clients} clients, ${fmtNum(put.elapsedMs / 1000)} s: ${fmtInt(recPerSec(put.records, put.elapsedMs))} rec/s, ` +
          `${fmtNum(mbPerSec(put.payloadBytes, put.elapsedMs), 2)} MB/s, ${fmtInt(put.requests)} calls, call p50 ${fmtNum(percentile(put.latencies, 50), 1)} ` +
          `p99 ${fmtNum(percentile(put.latencies, 99), 1)} max ${fmtNum(put.latencies[put.latencies.length - 1], 1)} ms, failed records ${put.failedRecords}; ${usageText(putUsage)}`,
      );
      noisy(putUsage);
      m = new Meter(t.child.pid);
      w0 = monoUs();
      const get = await getPhase(clients[0], stream, errors);
      const getUsage = m.end();
      windows.push({ label: `GetRecords${label} ${size} B`, window: { startUs: w0, endUs: monoUs() } });
      console.log(
        `  GetRecords${label} ${size} B, ${SHARDS} shards in parallel: ${fmtInt(get.records)} records in ${fmtNum(get.elapsedMs / 1000, 2)} s ` +
          `(${get.calls} calls): ${fmtInt(recPerSec(get.records, get.elapsedMs))} rec/s, ${fmtNum(mbPerSec(get.payloadBytes, get.elapsedMs), 2)} MB/s; ${usageText(getUsage)}`,
      );
      noisy(getUsage);
      if (get.timedOut) errors.add(`GetRecords${label} ${size} B: not finished within the ${GET_CAP_MS / 1000} s cap`);
      if (get.records !== put.records) errors.add(`GetRecords${label} ${size} B: read ${get.records} records, ${put.records} were acknowledged`);
      if (get.payloadBytes !== put.payloadBytes) errors.add(`GetRecords${label} ${size} B: read ${get.payloadBytes} payload bytes, ${put.payloadBytes} were acknowledged`);
      return { size, put, putUsage, get, getUsage };
    };
    for (const size of o.sizes) {
      res.cases.push(await runCase(size, false));
      if (o.encryption && name === 'pinstream') res.encryptedCases.push(await runCase(size, true));
    }
    const latStream = `latency-${tag}`;
    await createStream(clients[0], latStream);
    const m = new Meter(t.child.pid);
    const w0 = monoUs();
    res.latency = await latencyPhase(clients[0], latStream, o.latencyPuts, errors);
    const latUsage = m.end();
    windows.push({ label: `PutRecord ${LATENCY_BYTES} B sequential`, window: { startUs: w0, endUs: monoUs() } });
    const l = res.latency;
    console.log(
      `  PutRecord ${LATENCY_BYTES} B sequential, n=${l.length} after ${LATENCY_WARMUP} warm-ups: p50 ${fmtNum(percentile(l, 50), 2)} ` +
        `p90 ${fmtNum(percentile(l, 90), 2)} p99 ${fmtNum(percentile(l, 99), 2)} max ${fmtNum(l[l.length - 1], 2)} ms; ${usageText(latUsage)}`,
    );
    noisy(latUsage);
    const w1 = monoUs();
    res.leanLatency = await leanLatencyPhase(t, latStream, o.latencyPuts, errors);
    windows.push({ label: `PutRecord ${LATENCY_BYTES} B sequential, lean client`, window: { startUs: w1, endUs: monoUs() } });
    const ll = res.leanLatency;
    console.log(
      `  PutRecord ${LATENCY_BYTES} B sequential, lean client (node:http, one socket, no SDK): p50 ${fmtNum(percentile(ll, 50), 2)} ` +
        `p90 ${fmtNum(percentile(ll, 90), 2)} p99 ${fmtNum(percentile(ll, 99), 2)} max ${fmtNum(ll[ll.length - 1], 2)} ms`,
    );
    const end = sampleProc(t.child.pid);
    res.rssEndMB = end.rssMB;
    res.hwmMB = end.hwmMB;
    console.log(`  server RSS ${fmtNum(res.rssStartMB)} → ${fmtNum(res.rssEndMB)} MB (peak ${fmtNum(res.hwmMB)} MB); errors ${errors.total}`);
    errors.print();
  } finally {
    for (const c of clients) c.destroy();
    await t.child.stop();
    live.delete(t.child);
  }
  if (profDir) {
    // The profile is written when the server exits on SIGTERM (child.stop above).
    const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
    if (files.length === 0) console.log('  no .cpuprofile was written (did the server exit cleanly on SIGTERM?)');
    for (const { label, window } of files.length ? windows : []) {
      console.log(`\n  profile of the server's main thread, ${label}:`);
      console.log(renderProfile(summarizeProfile(join(profDir, files[0]), 15, window)).replace(/^/gm, '    '));
    }
    rmSync(profDir, { recursive: true, force: true });
  }
  console.log('');
  return res;
}

// ------------------------------------------------------------------------------------------------
// Entry point and report

export async function kinesis(argv: string[]): Promise<number> {
  let o: Options;
  try {
    o = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    if (e.message) console.error(`bench kinesis: ${e.message}\n`);
    console.error(USAGE);
    return e.message ? 2 : 0;
  }
  // The SDK's notice about future Node versions says nothing about this run.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

  const cores = availableParallelism();
  const la = loadavg();
  console.log(`Kinesis benchmark — the kinesalite peer-baseline workload (reference/kinesis-firehose.md), same client against each target in turn`);
  console.log(`  machine: ${cores} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}, load average ${la.map((x) => x.toFixed(2)).join(' ')} at start`);
  console.log(
    `  workload: ${SHARDS}-shard streams; PutRecords ${BATCH} records/call, random 16-hex partition keys, one random payload per case, ` +
      `sizes ${o.sizes.join(', ')} B, ${o.clients} concurrent clients for ${o.seconds} s; then GetRecords on all ${SHARDS} shards in parallel from TRIM_HORIZON, ` +
      `Limit ${GET_LIMIT}, until an empty page; then ${o.latencyPuts} sequential PutRecord (${LATENCY_BYTES} B) after ${LATENCY_WARMUP} warm-ups`,
  );
  console.log(`  client: @aws-sdk/client-kinesis, NodeHttpHandler (HTTP/1.1 keep-alive, maxSockets 8) per client, maxAttempts 1 (no retries)`);
  console.log(`  MB/s counts payload bytes only (1 MB = 10^6 B). Client and servers share these ${cores} cores (cpu %: 100 = one core); "client" is what the SDK load took from the server.\n`);

  const live = new Set<Child>();
  const stopAll = async () => {
    for (const c of live) await c.stop();
    live.clear();
  };
  const onSignal = () => void stopAll().then(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const results: TargetResult[] = [];
  try {
    for (const name of o.targets) results.push(await runTarget(name, o, live));
  } catch (e) {
    console.error(`bench kinesis: run aborted: ${(e as Error).stack ?? e}`);
    await stopAll();
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  // ---- Summary ----------------------------------------------------------------------------------
  const header = ['metric', ...results.map((r) => r.name)];
  const pin = results.find((r) => r.name === 'pinstream');
  const peers = results.filter((r) => r.name !== 'pinstream');
  if (pin) for (const p of peers) header.push(`pinstream/${p.name}`);
  const rows: string[][] = [];
  const row = (metric: string, get: (r: TargetResult) => number, fmt: (n: number) => string, ratio = true) => {
    const cells = [metric, ...results.map((r) => fmt(get(r)))];
    if (pin) {
      for (const p of peers) {
        const x = get(pin) / get(p);
        cells.push(ratio && Number.isFinite(x) ? fmtNum(x, 2) + 'x' : '-');
      }
    }
    rows.push(cells);
  };
  for (const size of o.sizes) {
    const c = (r: TargetResult) => r.cases.find((x) => x.size === size)!;
    row(`PutRecords ${size} B rec/s`, (r) => recPerSec(c(r).put.records, c(r).put.elapsedMs), fmtInt);
    row(`PutRecords ${size} B MB/s`, (r) => mbPerSec(c(r).put.payloadBytes, c(r).put.elapsedMs), (n) => fmtNum(n, 2));
    row(`PutRecords ${size} B call p50 ms`, (r) => percentile(c(r).put.latencies, 50), (n) => fmtNum(n, 1));
    row(`PutRecords ${size} B call p99 ms`, (r) => percentile(c(r).put.latencies, 99), (n) => fmtNum(n, 1));
    row(`PutRecords ${size} B server cpu %`, (r) => c(r).putUsage.serverCpuPct, (n) => fmtNum(n, 0));
    row(`PutRecords ${size} B client cpu %`, (r) => c(r).putUsage.clientCpuPct, (n) => fmtNum(n, 0));
    row(`PutRecords ${size} B server cpu µs/record`, (r) => cpuUsPerRecord(c(r).putUsage, c(r).put.elapsedMs, c(r).put.records), (n) => fmtNum(n, 1));
    row(`GetRecords ${size} B rec/s`, (r) => recPerSec(c(r).get.records, c(r).get.elapsedMs), fmtInt);
    row(`GetRecords ${size} B MB/s`, (r) => mbPerSec(c(r).get.payloadBytes, c(r).get.elapsedMs), (n) => fmtNum(n, 2));
    row(`GetRecords ${size} B server cpu µs/record`, (r) => cpuUsPerRecord(c(r).getUsage, c(r).get.elapsedMs, c(r).get.records), (n) => fmtNum(n, 1));
  }
  row(`PutRecord ${LATENCY_BYTES} B p50 ms`, (r) => percentile(r.latency, 50), (n) => fmtNum(n, 2));
  row(`PutRecord ${LATENCY_BYTES} B p90 ms`, (r) => percentile(r.latency, 90), (n) => fmtNum(n, 2));
  row(`PutRecord ${LATENCY_BYTES} B p99 ms`, (r) => percentile(r.latency, 99), (n) => fmtNum(n, 2));
  row(`PutRecord ${LATENCY_BYTES} B max ms`, (r) => r.latency[r.latency.length - 1], (n) => fmtNum(n, 2));
  row('server RSS at start MB', (r) => r.rssStartMB, (n) => fmtNum(n, 0));
  row('server RSS at end MB', (r) => r.rssEndMB, (n) => fmtNum(n, 0));
  row('server peak RSS MB', (r) => r.hwmMB, (n) => fmtNum(n, 0));
  row('errors (failed records, request errors, read mismatches)', (r) => r.errors.total, (n) => String(n), false);
  console.log('summary (ratios: above 1 = Pinstream higher; for rec/s and MB/s higher is better, for ms and MB lower is better):');
  console.log(table(header, rows));
  if (pin && pin.encryptedCases.length > 0) {
    const encRows: string[][] = [];
    for (const e of pin.encryptedCases) {
      const p = pin.cases.find((x) => x.size === e.size)!;
      const pair = (metric: string, get: (c: CaseResult) => number, fmt: (n: number) => string) =>
        encRows.push([`${metric} ${e.size} B`, fmt(get(p)), fmt(get(e)), fmtNum(get(e) / get(p), 2) + 'x']);
      pair('PutRecords rec/s', (c) => recPerSec(c.put.records, c.put.elapsedMs), fmtInt);
      pair('PutRecords call p50 ms', (c) => percentile(c.put.latencies, 50), (n) => fmtNum(n, 1));
      pair('PutRecords server cpu %', (c) => c.putUsage.serverCpuPct, (n) => fmtNum(n, 0));
      pair('GetRecords rec/s', (c) => recPerSec(c.get.records, c.get.elapsedMs), fmtInt);
    }
    console.log('\nencryption at rest (pinstream; encrypted/plain, each encrypted case right after its plain one):');
    console.log(table(['metric', 'plain', 'encrypted', 'encrypted/plain'], encRows));
  }
  const peer = results.find((r) => r.name === 'kinesalite-disk');
  if (pin) {
    // Issue 16's aims, from this run alone.
    const aimRows: string[][] = [];
    const verdict = (ok: boolean) => (ok ? 'met' : 'not met');
    for (const size of o.sizes) {
      const c = (r: TargetResult) => r.cases.find((x) => x.size === size)!;
      if (peer) {
        const put = recPerSec(c(pin).put.records, c(pin).put.elapsedMs) / recPerSec(c(peer).put.records, c(peer).put.elapsedMs);
        const get = recPerSec(c(pin).get.records, c(pin).get.elapsedMs) / recPerSec(c(peer).get.records, c(peer).get.elapsedMs);
        aimRows.push([`PutRecords ${size} B rec/s ÷ kinesalite-disk`, `≥ ${AIM_PUT_RATIO}x`, fmtNum(put, 2) + 'x', verdict(put >= AIM_PUT_RATIO)]);
        aimRows.push([`GetRecords ${size} B rec/s ÷ kinesalite-disk`, `≥ ${AIM_GET_RATIO}x`, fmtNum(get, 2) + 'x', verdict(get >= AIM_GET_RATIO)]);
        const cpuPut = cpuUsPerRecord(c(peer).putUsage, c(peer).put.elapsedMs, c(peer).put.records) / cpuUsPerRecord(c(pin).putUsage, c(pin).put.elapsedMs, c(pin).put.records);
        const cpuGet = cpuUsPerRecord(c(peer).getUsage, c(peer).get.elapsedMs, c(peer).get.records) / cpuUsPerRecord(c(pin).getUsage, c(pin).get.elapsedMs, c(pin).get.records);
        aimRows.push([`  second figure: kinesalite's server cpu µs/record ÷ Pinstream's, PutRecords ${size} B`, '', fmtNum(cpuPut, 2) + 'x', '']);
        aimRows.push([`  second figure: kinesalite's server cpu µs/record ÷ Pinstream's, GetRecords ${size} B`, '', fmtNum(cpuGet, 2) + 'x', '']);
      }
    }
    const p99 = percentile(pin.latency, 99);
    aimRows.push([`PutRecord ${LATENCY_BYTES} B p99 ÷ ${AIM_PUT_RECORD_P99_MS} ms`, '< 1', fmtNum(p99 / AIM_PUT_RECORD_P99_MS, 2) + 'x', verdict(p99 < AIM_PUT_RECORD_P99_MS)]);
    const leanP99 = percentile(pin.leanLatency, 99);
    aimRows.push([`  second figure: the same from a lean client (no SDK), p99 ÷ ${AIM_PUT_RECORD_P99_MS} ms`, '< 1', fmtNum(leanP99 / AIM_PUT_RECORD_P99_MS, 2) + 'x', verdict(leanP99 < AIM_PUT_RECORD_P99_MS)]);
    const peerLean = results.find((r) => r.name === 'kinesalite-disk')?.leanLatency;
    if (peerLean?.length) aimRows.push([`  kinesalite (no fsync) from the same lean client, p99 ms`, '', fmtNum(percentile(peerLean, 99), 2), '']);
    const disk = diskSyncLatency(o.latencyPuts);
    aimRows.push([`  the disk's floor: append ${LATENCY_BYTES} B + fdatasync, p50 / p99 ms`, '', `${fmtNum(percentile(disk, 50), 2)} / ${fmtNum(percentile(disk, 99), 2)}`, '']);
    console.log('\naims (issue 16), this run only:');
    console.log(table(['measure', 'aim', 'this run', ''], aimRows));
    console.log('  rec/s ratios include the SDK client, which shares the cores with the server; the cpu µs/record ratios are the server alone.');
  }
  console.log('\nfsync policy:');
  for (const r of results) console.log(`  ${r.name.padEnd(18)} ${FSYNC_POLICY[r.name]}`);
  const noisy = results.reduce((a, r) => a + r.noisy, 0);
  if (noisy > 0) console.log(`\nWARNING: ${noisy} phase(s) ran while other processes used >${NOISY_OTHER_CPU_PCT}% of a core; re-run on a quiet machine before trusting them.`);
  const la2 = loadavg();
  console.log(`load average at end: ${la2.map((x) => x.toFixed(2)).join(' ')}`);
  const errors = results.reduce((a, r) => a + r.errors.total, 0);
  if (errors > 0) {
    console.log('\nerrors:');
    for (const r of results) {
      if (r.errors.total === 0) continue;
      console.log(`  ${r.name}:`);
      r.errors.print('    ');
    }
  }
  console.log(errors === 0 ? '\nresult: OK, zero errors' : `\nresult: FAILED, ${errors} errors (see above)`);
  return errors === 0 ? 0 : 1;
}
