// `bench e2e`: PutEvents 202 → record readable on the event stream, against the real server. Starts
// Pinstream as a child process, creates an app with an event stream to an embedded Kinesis stream
// of several shards, and a consumer (a worker thread of this process, AWS SDK Kinesis client,
// GetShardIterator/GetRecords on every shard) that notes when each event is first read. Then it
// sends SigV4-signed PutEvents at fixed rates and at the maximum (closed loop, fixed in-flight
// requests), and reports per step: latency from the 202 to the first read (p50/p95/p99/max),
// acknowledged vs read counts (duplicates counted), how far delivery fell behind (records and ms,
// sampled from GET /v1/eventstreams/status) and how fast it caught up after the load stopped. A
// second server without an event stream gives the streaming-off peer for the ingest ratio. Owns
// the orchestration, the consumer and the report; signing and processes come from load.ts/procs.ts.

import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { availableParallelism, cpus } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { CreateStreamCommand, DescribeStreamSummaryCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient, ListShardsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Signer, post, signedPost, type Credentials } from './load.js';
import { byThreadName, hostBusyMs, sampleProc, startPinstream, type Child } from './procs.js';
import { fmtInt, fmtNum, fmtRatio, percentile, table } from './stats.js';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderProfile, summarizeProfile } from './profile.js';

/** Issue 16's aims, printed as ratios. */
const AIM_P99_AT_10K_MS = 100;
const AIM_DELIVERY_RATIO = 1.0;
const REGION = 'us-east-1';
/** Idle pause of one shard's consumer loop after an empty GetRecords (bounds the poll's added latency). */
const CONSUMER_IDLE_MS = 5;
/** How often the consumer thread hands its reads to the main thread. */
const CONSUMER_FLUSH_MS = 50;
/** How often the delivery health is sampled during and after a step. */
const STATUS_EVERY_MS = 100;
/** Open-loop steps never have more requests in flight than this (a server that falls behind is not buried). */
const MAX_OPEN_LOOP_IN_FLIGHT = 256;
/** The attribute every event carries, found in the record bytes without parsing the JSON. */
const SEQ_MARK = Buffer.from('"seq":"');

const USAGE = `usage: npm run bench -- e2e [options]

  --rates 1000,10000,max   steps: fixed events/s (open loop) and/or "max" (closed loop) (default 1000,10000,max)
  --seconds N              seconds of load per step (default 5)
  --shards N               shards of the destination stream (default 4)
  --concurrency N          in-flight requests of the max step and the streaming-off peer (default 32)
  --events-per-request N   events per PutEvents (default 100)
  --endpoints N            endpoint id pool (default 1000)
  --drain-timeout N        seconds to wait for every acknowledged event to be read after a step (default 60)
  --no-peer                skip the streaming-off peer
  --consumer-threads N     PINSTREAM_CONSUMER_THREADS of the streaming-on server (default: the server's own default)
  --analytics-nice N       PINSTREAM_ANALYTICS_NICE of the servers (default: the server's own default)
  --profile                run the streaming-on server under node --cpu-prof and summarise its time`;

interface Options {
  rates: Array<number | 'max'>;
  seconds: number;
  shards: number;
  concurrency: number;
  perRequest: number;
  endpoints: number;
  drainTimeout: number;
  peer: boolean;
  profile: boolean;
  consumerThreads?: number;
  analyticsNice?: number;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): Options {
  const o: Options = { rates: [1000, 10000, 'max'], seconds: 5, shards: 4, concurrency: 32, perRequest: 100, endpoints: 1000, drainTimeout: 60, peer: true, profile: false };
  const num = (flag: string, v: string | undefined, min: number, max: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < min || n > max) throw new UsageError(`${flag} needs a number from ${min} to ${max}, got ${v}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--rates':
        o.rates = (argv[++i] ?? '').split(',').map((x) => (x === 'max' ? 'max' : num(a, x, 1, 1_000_000)));
        break;
      case '--seconds':
        o.seconds = num(a, argv[++i], 0.5, 300);
        break;
      case '--shards':
        o.shards = Math.floor(num(a, argv[++i], 1, 64));
        break;
      case '--concurrency':
        o.concurrency = Math.floor(num(a, argv[++i], 1, 1024));
        break;
      case '--events-per-request':
        o.perRequest = Math.floor(num(a, argv[++i], 1, 100));
        break;
      case '--endpoints':
        o.endpoints = Math.floor(num(a, argv[++i], 1, 100_000));
        break;
      case '--drain-timeout':
        o.drainTimeout = num(a, argv[++i], 1, 600);
        break;
      case '--no-peer':
        o.peer = false;
        break;
      case '--analytics-nice':
        o.analyticsNice = Math.floor(num(a, argv[++i], 0, 19));
        break;
      case '--consumer-threads':
        o.consumerThreads = Math.floor(num(a, argv[++i], 0, 8));
        break;
      case '--profile':
        o.profile = true;
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

const wallNow = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------------------------
// Event bookkeeping: every event carries a global sequence number; arrays indexed by it hold the
// time its 202 arrived and the time the consumer first read it.

class Ledger {
  ackAt = new Float64Array(1 << 16).fill(NaN);
  readAt = new Float64Array(1 << 16).fill(NaN);
  reads = new Uint32Array(1 << 16);
  next = 0;
  /** Reads of sequence numbers never handed out (should stay 0). */
  unknown = 0;

  take(n: number): number {
    const first = this.next;
    this.next += n;
    while (this.next > this.ackAt.length) this.grow();
    return first;
  }

  private grow(): void {
    const n = this.ackAt.length * 2;
    const a = new Float64Array(n).fill(NaN);
    a.set(this.ackAt);
    const r = new Float64Array(n).fill(NaN);
    r.set(this.readAt);
    const c = new Uint32Array(n);
    c.set(this.reads);
    this.ackAt = a;
    this.readAt = r;
    this.reads = c;
  }

  read(pairs: Float64Array): void {
    for (let i = 0; i < pairs.length; i += 2) {
      const seq = pairs[i];
      if (!(seq >= 0 && seq < this.next)) {
        this.unknown++;
        continue;
      }
      if (this.reads[seq]++ === 0) this.readAt[seq] = pairs[i + 1];
    }
  }

  /** Acknowledged events of [from, to) not read yet. */
  unread(from: number, to: number): number {
    let n = 0;
    for (let s = from; s < to; s++) if (!Number.isNaN(this.ackAt[s]) && this.reads[s] === 0) n++;
    return n;
  }
}

// ------------------------------------------------------------------------------------------------
// Load: signed PutEvents with `seq` attributes, open loop at a fixed rate or closed loop at max.

interface LoadStats {
  requests: number;
  failedRequests: number;
  acked: number;
  startMs: number;
  endMs: number;
  errors: Map<string, number>;
}

class Loader {
  private agent = new http.Agent({ keepAlive: true, maxFreeSockets: 1024 });
  private signer: Signer;
  private port: number;
  private path: string;
  private runTag = randomUUID().slice(0, 8);

  constructor(
    url: string,
    creds: Credentials,
    appId: string,
    private ledger: Ledger,
    private endpoints: string[],
    private perRequest: number,
  ) {
    const u = new URL(url);
    this.port = Number(u.port);
    this.signer = new Signer(creds, u.host);
    this.path = `/v1/apps/${appId}/events`;
  }

  /** One request; marks its events acknowledged in the ledger when every one was accepted. */
  private async one(st: LoadStats): Promise<void> {
    const first = this.ledger.take(this.perRequest);
    const endpointId = this.endpoints[Math.floor(Math.random() * this.endpoints.length)];
    const ts = new Date().toISOString();
    let events = '';
    for (let i = 0; i < this.perRequest; i++) {
      const seq = first + i;
      events += `${i ? ',' : ''}"${this.runTag}-${seq}":{"EventType":"e2e.bench","Timestamp":"${ts}","Attributes":{"seq":"${seq}"}}`;
    }
    const body = Buffer.from(`{"BatchItem":{"${endpointId}":{"Endpoint":{},"Events":{${events}}}}}`);
    const headers = this.signer.sign('POST', this.path, body);
    st.requests++;
    let problem: string | undefined;
    try {
      const res = await post(this.agent, this.port, this.path, headers, body);
      const at = wallNow();
      if (res.status !== 202) problem = `HTTP ${res.status}: ${res.body.toString('utf8').slice(0, 200)}`;
      else {
        const evs = JSON.parse(res.body.toString('utf8'))?.Results?.[endpointId]?.EventsItemResponse ?? {};
        let ok = 0;
        for (let i = 0; i < this.perRequest; i++) {
          if (evs[`${this.runTag}-${first + i}`]?.StatusCode === 202) {
            this.ledger.ackAt[first + i] = at;
            ok++;
          }
        }
        st.acked += ok;
        if (ok !== this.perRequest) problem = `${this.perRequest - ok} of ${this.perRequest} events not accepted`;
      }
    } catch (e) {
      problem = `request failed: ${(e as Error).message}`;
    }
    if (problem !== undefined) {
      st.failedRequests++;
      st.errors.set(problem, (st.errors.get(problem) ?? 0) + 1);
    }
  }

  private stats(): LoadStats {
    return { requests: 0, failedRequests: 0, acked: 0, startMs: wallNow(), endMs: 0, errors: new Map() };
  }

  /** Closed loop: `concurrency` requests in flight for `seconds`. */
  async max(concurrency: number, seconds: number): Promise<LoadStats> {
    const st = this.stats();
    const deadline = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < deadline) await this.one(st);
      }),
    );
    st.endMs = wallNow();
    return st;
  }

  /** Open loop: requests started on a fixed schedule whatever the answers, for `eventsPerSec`. */
  async rate(eventsPerSec: number, seconds: number): Promise<LoadStats> {
    const st = this.stats();
    const intervalMs = (this.perRequest / eventsPerSec) * 1000;
    const total = Math.max(1, Math.round((eventsPerSec * seconds) / this.perRequest));
    const t0 = performance.now();
    const inFlight = new Set<Promise<void>>();
    let skipped = 0;
    for (let k = 0; k < total; k++) {
      const due = t0 + k * intervalMs;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      if (inFlight.size >= MAX_OPEN_LOOP_IN_FLIGHT) {
        skipped++;
        continue;
      }
      const p = this.one(st).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await Promise.all(inFlight);
    if (skipped > 0) st.errors.set(`${skipped} scheduled requests skipped: ${MAX_OPEN_LOOP_IN_FLIGHT} already in flight`, skipped);
    st.endMs = wallNow();
    return st;
  }

  close(): void {
    this.agent.destroy();
  }
}

// ------------------------------------------------------------------------------------------------
// Delivery health from GET /v1/eventstreams/status (and the loader's, if /health shows it).

interface StatusSample {
  at: number;
  recordsBehind: number;
  millisBehind: number;
  delivered: number;
  /** The analytics loader's records behind, from /health (undefined when it does not show it). */
  loaderBehind?: number;
}

function signedGet(url: string, creds: Credentials, path: string): Promise<any> {
  const u = new URL(url);
  const headers = new Signer(creds, u.host).sign('GET', path, Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: Number(u.port), method: 'GET', path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (e) {
          reject(e);
        }
      });
      res.on('error', reject);
    });
    req.setTimeout(10_000, () => req.destroy(new Error('status timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function status(url: string, creds: Credentials, appId: string): Promise<StatusSample | undefined> {
  const body = await signedGet(url, creds, '/v1/eventstreams/status');
  const h = (body?.Item ?? []).find((i: any) => i.ApplicationId === appId)?.Health;
  if (!h) return undefined;
  const health = await signedGet(url, creds, '/health').catch(() => undefined);
  const loaderBehind = health?.analytics?.loaderRecordsBehind;
  return {
    at: wallNow(),
    recordsBehind: h.recordsBehind ?? 0,
    millisBehind: h.millisBehind ?? 0,
    delivered: h.delivered ?? 0,
    ...(typeof loaderBehind === 'number' ? { loaderBehind } : {}),
  };
}

/** Samples the status every STATUS_EVERY_MS until stopped. */
class StatusPoller {
  samples: StatusSample[] = [];
  errors = 0;
  private running = true;
  private done: Promise<void>;

  constructor(url: string, creds: Credentials, appId: string) {
    this.done = (async () => {
      while (this.running) {
        try {
          const s = await status(url, creds, appId);
          if (s) this.samples.push(s);
        } catch {
          this.errors++;
        }
        await sleep(STATUS_EVERY_MS);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

// ------------------------------------------------------------------------------------------------
// Consumer (worker thread): GetRecords on every shard, posting [seq, readAt] pairs to the main thread.

interface ConsumerInit {
  role: 'pinstream-e2e-consumer';
  url: string;
  creds: Credentials;
  stream: string;
}

function consumerMain(init: ConsumerInit): void {
  const kinesis = new KinesisClient({
    endpoint: init.url,
    region: REGION,
    credentials: init.creds,
    maxAttempts: 3,
    requestHandler: new NodeHttpHandler({ httpAgent: new http.Agent({ keepAlive: true }) }),
  });
  let running = true;
  let pairs: number[] = [];
  let calls = 0;
  let emptyCalls = 0;
  let errors = 0;
  const flush = () => {
    if (pairs.length === 0) return;
    const a = Float64Array.from(pairs);
    pairs = [];
    parentPort!.postMessage({ pairs: a }, [a.buffer as ArrayBuffer]);
  };
  const timer = setInterval(flush, CONSUMER_FLUSH_MS);
  const shardLoop = async (ShardId: string) => {
    let it = (await kinesis.send(new GetShardIteratorCommand({ StreamName: init.stream, ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    while (running && it) {
      let out;
      try {
        out = await kinesis.send(new GetRecordsCommand({ ShardIterator: it, Limit: 10_000 }));
      } catch {
        errors++;
        await sleep(100);
        continue;
      }
      calls++;
      const at = wallNow();
      it = out.NextShardIterator;
      const recs = out.Records ?? [];
      for (const r of recs) {
        const d = r.Data!;
        const b = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
        const i = b.indexOf(SEQ_MARK);
        if (i < 0) continue;
        let seq = 0;
        for (let k = i + SEQ_MARK.length; k < b.length && b[k] >= 0x30 && b[k] <= 0x39; k++) seq = seq * 10 + (b[k] - 0x30);
        pairs.push(seq, at);
      }
      if (recs.length === 0) {
        emptyCalls++;
        await sleep(CONSUMER_IDLE_MS);
      }
    }
  };
  parentPort!.on('message', (m: { stop?: true }) => {
    if (m.stop) running = false;
  });
  void (async () => {
    const shards = (await kinesis.send(new ListShardsCommand({ StreamName: init.stream }))).Shards ?? [];
    parentPort!.postMessage({ ready: shards.length });
    await Promise.all(shards.map((s) => shardLoop(s.ShardId!)));
    clearInterval(timer);
    flush();
    parentPort!.postMessage({ done: { calls, emptyCalls, errors } });
    kinesis.destroy();
  })();
}

class Consumer {
  private worker: Worker;
  shards = 0;
  info: { calls: number; emptyCalls: number; errors: number } | undefined;

  constructor(init: Omit<ConsumerInit, 'role'>, ledger: Ledger) {
    this.worker = new Worker(new URL(import.meta.url), { workerData: { role: 'pinstream-e2e-consumer', ...init } satisfies ConsumerInit });
    this.worker.on('message', (m: any) => {
      if (m.pairs) ledger.read(m.pairs);
      if (m.ready !== undefined) this.shards = m.ready;
      if (m.done) this.info = m.done;
    });
  }

  async ready(): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (this.shards === 0) {
      if (Date.now() > deadline) throw new Error('consumer did not list the shards within 10 s');
      await sleep(20);
    }
  }

  async stop(): Promise<void> {
    this.worker.postMessage({ stop: true });
    const deadline = Date.now() + 5_000;
    while (!this.info && Date.now() < deadline) await sleep(20);
    await this.worker.terminate();
  }
}

// ------------------------------------------------------------------------------------------------
// Orchestration

interface StepRow {
  label: string;
  target: string;
  load: LoadStats;
  ingestPerSec: number;
  srvUsPerEvent: number;
  srvCpuPct: number;
  /** CPU of the server's main thread (the one answering requests) per acknowledged event. */
  mainUsPerEvent: number;
  /** Server CPU µs per acknowledged event by thread name (byThreadName). */
  threads: string;
  otherCpuPct: number;
  acked: number;
  read: number;
  duplicates: number;
  lost: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** Delivered by the worker during the load window ÷ acknowledged during it. */
  deliveryRatio: number;
  maxRecordsBehind: number;
  maxMillisBehind: number;
  /** Status samples with millisBehind 0 while records were behind (untruthful health). */
  zeroLagWhileBehind: number;
  /** The analytics loader: most records behind during the step, and when it had loaded everything after the load (NaN: not seen). */
  maxLoaderBehind: number;
  loaderCatchUpMs: number;
  /** From the end of the load until every acknowledged event was read, ms (NaN: not within the timeout). */
  catchUpMs: number;
  /** From the end of the load until the status first showed 0 records behind, ms. */
  statusCatchUpMs: number;
  peakRssMB: number;
}

async function setUpServer(name: string, withStream: boolean, o: Options, live: Set<Child>, nodeArgs: string[] = []) {
  const env: Record<string, string> = withStream && o.consumerThreads !== undefined ? { PINSTREAM_CONSUMER_THREADS: String(o.consumerThreads) } : {};
  if (o.analyticsNice !== undefined) env.PINSTREAM_ANALYTICS_NICE = String(o.analyticsNice);
  const child = await startPinstream(name, { nodeArgs, env });
  live.add(child);
  const creds = child.admin!;
  const app = await signedPost(child.url, creds, '/v1/apps', { Name: `e2e-${Date.now()}` });
  if (app.status !== 201) throw new Error(`CreateApp: HTTP ${app.status} ${app.text.slice(0, 300)}`);
  const appId: string = app.json.Id;
  console.log(`  ${name}: pid ${child.pid}, ${child.url}, app ${appId}`);
  if (!withStream) return { child, appId, stream: undefined };
  const stream = `e2e-${Date.now()}`;
  const kinesis = new KinesisClient({ endpoint: child.url, region: REGION, credentials: creds, maxAttempts: 1 });
  try {
    await kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: o.shards }));
    for (const deadline = Date.now() + 10_000; ; ) {
      const s = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
      if (s.StreamDescriptionSummary?.StreamStatus === 'ACTIVE') break;
      if (Date.now() > deadline) throw new Error(`stream ${stream} not ACTIVE after 10 s`);
      await sleep(50);
    }
    const accountId = (await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }))).StreamDescriptionSummary!.StreamARN!.split(':')[4];
    const arn = `arn:aws:kinesis:${REGION}:${accountId}:stream/${stream}`;
    const role = await signedPost(child.url, creds, `/v1/apps/${appId}/eventstream/role`, { DestinationStreamArn: arn });
    if (role.status !== 201) throw new Error(`event-stream role: HTTP ${role.status} ${role.text.slice(0, 300)}`);
    const es = await signedPost(child.url, creds, `/v1/apps/${appId}/eventstream`, { DestinationStreamArn: arn, RoleArn: role.json.RoleArn });
    if (es.status !== 200) throw new Error(`PutEventStream: HTTP ${es.status} ${es.text.slice(0, 300)}`);
    console.log(`  event stream → ${arn} (${o.shards} shards), role ${role.json.RoleArn}`);
  } finally {
    kinesis.destroy();
  }
  return { child, appId, stream };
}

async function runStep(
  label: string,
  rate: number | 'max',
  o: Options,
  child: Child,
  loader: Loader,
  ledger: Ledger,
  appId: string,
  streaming: boolean,
): Promise<StepRow> {
  const creds = child.admin!;
  const from = ledger.next;
  const poller = streaming ? new StatusPoller(child.url, creds, appId) : undefined;
  const before = sampleProc(child.pid);
  const hostBefore = hostBusyMs();
  const clientBefore = process.cpuUsage();
  const s0 = streaming ? await status(child.url, creds, appId) : undefined;
  const load = rate === 'max' ? await loader.max(o.concurrency, o.seconds) : await loader.rate(rate, o.seconds);
  const s1 = streaming ? await status(child.url, creds, appId) : undefined;
  const after = sampleProc(child.pid);
  const hostAfter = hostBusyMs();
  const client = process.cpuUsage(clientBefore);
  const to = ledger.next;
  const elapsed = load.endMs - load.startMs;
  const srvCpuMs = after.cpuMs - before.cpuMs;

  // Drain: until every acknowledged event of the step was read (or the timeout).
  let catchUpMs = NaN;
  let statusCatchUpMs = NaN;
  if (streaming) {
    const deadline = performance.now() + o.drainTimeout * 1000;
    while (performance.now() < deadline) {
      if (ledger.unread(from, to) === 0) {
        catchUpMs = wallNow() - load.endMs;
        break;
      }
      await sleep(20);
    }
    // The status's view: the first sample after the load with nothing behind.
    await sleep(2 * STATUS_EVERY_MS);
    // The analytics loader follows the same log on its own thread: keep sampling until it has loaded
    // everything too (bounded by the drain timeout), when the server shows its lag at all.
    const loaderDeadline = Date.now() + o.drainTimeout * 1000;
    const loaderCaught = () => poller!.samples.some((x) => x.at >= load.endMs && x.loaderBehind === 0);
    const loaderShown = () => poller!.samples.some((x) => x.loaderBehind !== undefined);
    while (loaderShown() && !loaderCaught() && Date.now() < loaderDeadline) await sleep(STATUS_EVERY_MS);
    await poller!.stop();
    const caught = poller!.samples.find((x) => x.at >= load.endMs && x.recordsBehind === 0);
    if (caught) statusCatchUpMs = caught.at - load.endMs;
  }
  const lat: number[] = [];
  let acked = 0;
  let read = 0;
  let duplicates = 0;
  for (let s = from; s < to; s++) {
    if (Number.isNaN(ledger.ackAt[s])) continue;
    acked++;
    if (ledger.reads[s] > 0) {
      read++;
      duplicates += ledger.reads[s] - 1;
      // A read can beat the 202 to this thread (the answer travels while the record is read): 0.
      lat.push(Math.max(0, ledger.readAt[s] - ledger.ackAt[s]));
    }
  }
  const sorted = Float64Array.from(lat).sort();
  const samples = poller?.samples ?? [];
  return {
    label,
    target: rate === 'max' ? `max (c=${o.concurrency})` : `${fmtInt(rate)}/s`,
    load,
    ingestPerSec: load.acked / (elapsed / 1000),
    srvUsPerEvent: load.acked > 0 ? (srvCpuMs * 1000) / load.acked : NaN,
    srvCpuPct: (srvCpuMs / elapsed) * 100,
    mainUsPerEvent: load.acked > 0 ? ((after.mainCpuMs - before.mainCpuMs) * 1000) / load.acked : NaN,
    threads: load.acked > 0 ? byThreadName(child.pid, before, after, load.acked) : '',
    otherCpuPct: Math.max(0, ((hostAfter - hostBefore - srvCpuMs - (client.user + client.system) / 1000) / elapsed) * 100),
    acked,
    read,
    duplicates,
    lost: streaming ? acked - read : NaN,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : NaN,
    deliveryRatio: s0 && s1 && load.acked > 0 ? (s1.delivered - s0.delivered) / load.acked : NaN,
    maxRecordsBehind: samples.reduce((m, x) => Math.max(m, x.recordsBehind), 0),
    maxMillisBehind: samples.reduce((m, x) => Math.max(m, x.millisBehind), 0),
    zeroLagWhileBehind: samples.filter((x) => x.recordsBehind > 0 && x.millisBehind === 0).length,
    maxLoaderBehind: samples.some((x) => x.loaderBehind !== undefined) ? samples.reduce((m, x) => Math.max(m, x.loaderBehind ?? 0), 0) : NaN,
    loaderCatchUpMs: (() => {
      const c = samples.find((x) => x.at >= load.endMs && x.loaderBehind === 0);
      return c ? c.at - load.endMs : NaN;
    })(),
    catchUpMs,
    statusCatchUpMs,
    peakRssMB: after.hwmMB,
  };
}

function printStep(r: StepRow, streaming: boolean): void {
  console.log(
    `  ${r.label.padEnd(14)} ${r.target.padEnd(14)} ingest ${fmtInt(r.ingestPerSec).padStart(7)} events/s  srv cpu ${fmtNum(r.srvCpuPct, 0)}% (${fmtNum(r.srvUsPerEvent)} µs/event, main thread ${fmtNum(r.mainUsPerEvent)}) other ${fmtNum(r.otherCpuPct, 0)}%` +
      (streaming
        ? `  acked ${fmtInt(r.acked)} read ${fmtInt(r.read)} dup ${fmtInt(r.duplicates)}  202→read p50 ${fmtNum(r.p50, 1)} p95 ${fmtNum(r.p95, 1)} p99 ${fmtNum(r.p99, 1)} max ${fmtNum(r.max, 1)} ms` +
          `  delivery÷ingest ${fmtNum(r.deliveryRatio, 2)}  behind max ${fmtInt(r.maxRecordsBehind)} rec / ${fmtInt(r.maxMillisBehind)} ms  caught up ${fmtInt(r.catchUpMs)} ms after load (status ${fmtInt(r.statusCatchUpMs)} ms)` +
          `  loader behind max ${fmtInt(r.maxLoaderBehind)} rec, caught up ${fmtInt(r.loaderCatchUpMs)} ms after load`
        : ''),
  );
  if (r.threads) console.log(`    server CPU µs/event by thread: ${r.threads}`);
  for (const [m, n] of r.load.errors) console.log(`    ${String(n).padStart(6)} × ${m}`);
  if (r.zeroLagWhileBehind > 0) console.log(`    UNTRUTHFUL HEALTH: ${r.zeroLagWhileBehind} status samples said millisBehind 0 with records behind`);
}

export async function e2e(argv: string[]): Promise<number> {
  let o: Options;
  try {
    o = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    if (e.message) console.error(`bench e2e: ${e.message}\n`);
    console.error(USAGE);
    return e.message ? 2 : 0;
  }
  const cores = availableParallelism();
  console.log(`Pinstream end-to-end benchmark — PutEvents 202 → record read from the embedded Kinesis stream (event stream)`);
  console.log(`  machine: ${cores} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}`);
  console.log(
    `  steps: ${o.rates.join(', ')} events/s, ${o.seconds} s each, ${o.perRequest} events/request, ${o.endpoints} endpoints, ` +
      `${o.shards} shards, consumer: GetRecords on every shard (worker thread, ${CONSUMER_IDLE_MS} ms idle pause)`,
  );
  console.log(`  NOTE: load generator, consumer and server share the ${cores} cores; latency includes the consumer's poll.\n`);

  const live = new Set<Child>();
  const stopAll = async () => {
    for (const c of live) await c.stop();
    live.clear();
  };
  const rows: StepRow[] = [];
  let peer: StepRow | undefined;
  let failures = 0;
  const endpoints = Array.from({ length: o.endpoints }, () => randomUUID());
  try {
    console.log('streaming on:');
    const profDir = o.profile ? mkdtempSync(join(tmpdir(), 'pinstream-e2e-prof-')) : undefined;
    const on = await setUpServer('pinstream', true, o, live, profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []);
    const ledger = new Ledger();
    const consumer = new Consumer({ url: on.child.url, creds: on.child.admin!, stream: on.stream! }, ledger);
    await consumer.ready();
    const loader = new Loader(on.child.url, on.child.admin!, on.appId, ledger, endpoints, o.perRequest);
    try {
      const warm = await runStep('warm-up', 2000, { ...o, seconds: 1 }, on.child, loader, ledger, on.appId, true);
      console.log(`  warm-up: ${fmtInt(warm.acked)} events, ${fmtInt(warm.read)} read`);
      for (const rate of o.rates) {
        const r = await runStep('streaming on', rate, o, on.child, loader, ledger, on.appId, true);
        rows.push(r);
        printStep(r, true);
        failures += r.load.failedRequests + (r.lost > 0 ? 1 : 0);
      }
      if (ledger.unknown > 0) console.log(`  consumer read ${ledger.unknown} records with sequence numbers never sent`);
    } finally {
      loader.close();
      await consumer.stop();
      if (consumer.info) console.log(`  consumer: ${fmtInt(consumer.info.calls)} GetRecords (${fmtInt(consumer.info.emptyCalls)} empty), ${consumer.info.errors} errors`);
      await on.child.stop();
      live.delete(on.child);
      if (profDir) {
        const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
        if (files.length > 0) console.log('\n' + renderProfile(summarizeProfile(join(profDir, files[0]), 25)).replace(/^/gm, '  '));
        rmSync(profDir, { recursive: true, force: true });
      }
    }
    if (o.peer && o.rates.includes('max')) {
      console.log('\nstreaming off (same server build, no event stream, no consumer):');
      const off = await setUpServer('pinstream-off', false, o, live);
      const ledger2 = new Ledger();
      const loader2 = new Loader(off.child.url, off.child.admin!, off.appId, ledger2, endpoints, o.perRequest);
      try {
        await runStep('warm-up', 2000, { ...o, seconds: 1 }, off.child, loader2, ledger2, off.appId, false);
        peer = await runStep('streaming off', 'max', o, off.child, loader2, ledger2, off.appId, false);
        printStep(peer, false);
        failures += peer.load.failedRequests;
      } finally {
        loader2.close();
        await off.child.stop();
        live.delete(off.child);
      }
    }
  } catch (e) {
    console.error(`bench e2e: run aborted: ${(e as Error).stack ?? e}`);
    return 1;
  } finally {
    await stopAll();
  }

  console.log('\nsummary:');
  const all = [...rows, ...(peer ? [peer] : [])];
  console.log(
    table(
      ['run', 'load', 'ingest ev/s', 'srv µs/ev', 'acked', 'read', 'dup', 'lost', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'deliv÷ingest', 'max behind rec', 'max behind ms', 'catch-up ms', 'other%'],
      all.map((r) => [
        r.label,
        r.target,
        fmtInt(r.ingestPerSec),
        fmtNum(r.srvUsPerEvent),
        fmtInt(r.acked),
        fmtInt(r.read),
        fmtInt(r.duplicates),
        fmtInt(r.lost),
        fmtNum(r.p50, 1),
        fmtNum(r.p95, 1),
        fmtNum(r.p99, 1),
        fmtNum(r.max, 1),
        fmtNum(r.deliveryRatio, 2),
        fmtInt(r.maxRecordsBehind),
        fmtInt(r.maxMillisBehind),
        fmtInt(r.catchUpMs),
        fmtNum(r.otherCpuPct, 0),
      ]),
    ),
  );
  const at10k = rows.find((r) => r.target === `${fmtInt(10000)}/s`);
  const atMax = rows.find((r) => r.target.startsWith('max'));
  console.log('\naims (issue 16):');
  console.log(`  ${'e2e p99 at 10k events/s vs 100 ms aim:'.padEnd(56)}${at10k ? `${fmtNum(at10k.p99, 1)} ms = ${fmtRatio(at10k.p99 / AIM_P99_AT_10K_MS)} of the aim (≤ 1.00x meets it)` : 'not run'}`);
  console.log(`  ${'delivery ÷ ingest at full load (aim ≥ 1.0):'.padEnd(56)}${atMax ? `${fmtRatio(atMax.deliveryRatio / AIM_DELIVERY_RATIO)}` : 'not run'}`);
  console.log(`  ${'ingest with streaming on ÷ off (max):'.padEnd(56)}${atMax && peer ? `${fmtRatio(atMax.ingestPerSec / peer.ingestPerSec)} (${fmtInt(atMax.ingestPerSec)} vs ${fmtInt(peer.ingestPerSec)} events/s; µs/event ${fmtNum(atMax.srvUsPerEvent)} vs ${fmtNum(peer.srvUsPerEvent)})` : 'not run'}`);
  if (atMax) console.log(`  ${'at max: behind at most / caught up after load:'.padEnd(56)}${fmtInt(atMax.maxRecordsBehind)} records, ${fmtInt(atMax.maxMillisBehind)} ms / ${fmtInt(atMax.catchUpMs)} ms`);
  if (atMax) console.log(`  ${'at max: analytics loader behind at most / caught up:'.padEnd(56)}${fmtInt(atMax.maxLoaderBehind)} records / ${fmtInt(atMax.loaderCatchUpMs)} ms after load`);
  const lost = rows.reduce((n, r) => n + Math.max(0, r.lost), 0);
  const untruthful = rows.reduce((n, r) => n + r.zeroLagWhileBehind, 0);
  console.log(`  ${'health samples with millisBehind 0 while behind:'.padEnd(56)}${untruthful}`);
  console.log(lost === 0 && failures === 0 ? '\nresult: OK, every acknowledged event read' : `\nresult: FAILED (${lost} acknowledged events not read, ${failures} failures)`);
  return lost === 0 && failures === 0 ? 0 : 1;
}

if (!isMainThread && (workerData as ConsumerInit | undefined)?.role === 'pinstream-e2e-consumer') {
  consumerMain(workerData as ConsumerInit);
}
