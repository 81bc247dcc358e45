// The signed-request load generator: builds Amplify-JS-shaped PutEvents bodies with string
// templates, SigV4-signs them with node:crypto (service `mobiletargeting`), sends them over
// keep-alive HTTP/1.1 from 1..N worker threads with a fixed number of requests in flight, and
// verifies every response (HTTP 202 and, for Pinstream, every event `{"StatusCode":202,
// "Message":"Accepted"}`). Also exports the signer and a one-off signed request for setup calls.

import { createHash, createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

// ------------------------------------------------------------------------------------------------
// SigV4 (header form), as the AWS SDK for JavaScript v3 signs a restJson1 POST.

const SIGNED_HEADERS = 'content-type;host;x-amz-content-sha256;x-amz-date';

export class Signer {
  private keyDate = '';
  private key: Buffer = Buffer.alloc(0);
  private secondCache = -1;
  private amzDateCache = '';

  constructor(
    private creds: Credentials,
    private host: string,
    private region = 'us-east-1',
    private service = 'mobiletargeting',
  ) {}

  /** Headers to send (host included) for `method path` with this exact body. */
  sign(method: string, path: string, body: Buffer, nowMs = Date.now()): Record<string, string> {
    const amzDate = this.amzDate(nowMs);
    const date = amzDate.slice(0, 8);
    if (date !== this.keyDate) {
      let k = createHmac('sha256', 'AWS4' + this.creds.secretAccessKey).update(date).digest();
      k = createHmac('sha256', k).update(this.region).digest();
      k = createHmac('sha256', k).update(this.service).digest();
      this.key = createHmac('sha256', k).update('aws4_request').digest();
      this.keyDate = date;
    }
    const payloadHash = createHash('sha256').update(body).digest('hex');
    const canonical =
      `${method}\n${path}\n\n` +
      `content-type:application/json\nhost:${this.host}\nx-amz-content-sha256:${payloadHash}\nx-amz-date:${amzDate}\n\n` +
      `${SIGNED_HEADERS}\n${payloadHash}`;
    const scope = `${date}/${this.region}/${this.service}/aws4_request`;
    const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${createHash('sha256').update(canonical).digest('hex')}`;
    const signature = createHmac('sha256', this.key).update(toSign).digest('hex');
    return {
      host: this.host,
      'content-type': 'application/json',
      'content-length': String(body.length),
      'x-amz-content-sha256': payloadHash,
      'x-amz-date': amzDate,
      authorization: `AWS4-HMAC-SHA256 Credential=${this.creds.accessKeyId}/${scope}, SignedHeaders=${SIGNED_HEADERS}, Signature=${signature}`,
    };
  }

  private amzDate(nowMs: number): string {
    const s = Math.floor(nowMs / 1000);
    if (s !== this.secondCache) {
      this.secondCache = s;
      this.amzDateCache = new Date(s * 1000).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    }
    return this.amzDateCache;
  }
}

export interface HttpResult {
  status: number;
  body: Buffer;
}

const REQUEST_TIMEOUT_MS = 30_000;

export function post(agent: http.Agent | undefined, port: number, path: string, headers: Record<string, string>, body: Buffer): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`timeout after ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** One signed request outside the load loop (setup calls such as CreateApp). */
export async function signedPost(baseUrl: string, creds: Credentials, path: string, json: unknown): Promise<{ status: number; json: any; text: string }> {
  const u = new URL(baseUrl);
  const body = Buffer.from(JSON.stringify(json));
  const headers = new Signer(creds, u.host).sign('POST', path, body);
  const r = await post(undefined, Number(u.port), path, headers, body);
  const text = r.body.toString('utf8');
  let parsed: any;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: r.status, json: parsed, text };
}

// ------------------------------------------------------------------------------------------------
// Load run (main thread side)

export interface LoadTarget {
  /** http://127.0.0.1:port */
  url: string;
  appId: string;
  credentials: Credentials;
  /** 'pinpoint': full PutEvents result check; 'status': HTTP 202 only (the ceiling peer's constant body). */
  verify: 'pinpoint' | 'status';
}

export interface LoadOptions {
  concurrency: number;
  seconds: number;
  threads: number;
  eventsPerRequest: number;
  endpointIds: string[];
  /** Hard cap on requests per in-flight slot, in addition to the time bound. */
  maxRequestsPerSlot?: number;
}

export interface LoadResult {
  requests: number;
  failedRequests: number;
  /** Events acknowledged as accepted (202 + "Accepted") in fully verified requests. */
  events: number;
  failedEvents: number;
  bodyBytes: number;
  elapsedMs: number;
  latenciesMs: Float64Array[];
  errors: Map<string, number>;
  threads: number;
}

interface WorkerInit {
  role: 'pinstream-load';
  target: LoadTarget;
  concurrency: number;
  seconds: number;
  eventsPerRequest: number;
  endpointIds: string[];
  maxRequestsPerSlot: number;
}

interface WorkerReport {
  requests: number;
  failedRequests: number;
  events: number;
  failedEvents: number;
  bodyBytes: number;
  startMs: number;
  endMs: number;
  latencies: Float64Array;
  errors: Array<[string, number]>;
}

export async function runLoad(target: LoadTarget, opts: LoadOptions): Promise<LoadResult> {
  const threads = Math.max(1, Math.min(opts.threads, opts.concurrency));
  const workers: Worker[] = [];
  const reports: Array<Promise<WorkerReport>> = [];
  for (let i = 0; i < threads; i++) {
    const share = Math.floor(opts.concurrency / threads) + (i < opts.concurrency % threads ? 1 : 0);
    const init: WorkerInit = {
      role: 'pinstream-load',
      target,
      concurrency: share,
      seconds: opts.seconds,
      eventsPerRequest: opts.eventsPerRequest,
      endpointIds: opts.endpointIds,
      maxRequestsPerSlot: opts.maxRequestsPerSlot ?? 1_000_000,
    };
    const w = new Worker(new URL(import.meta.url), { workerData: init });
    workers.push(w);
    reports.push(
      new Promise<WorkerReport>((resolve, reject) => {
        w.once('message', (m: WorkerReport) => resolve(m));
        w.once('error', reject);
        w.once('exit', (code) => reject(new Error(`load worker exited with code ${code} before reporting`)));
      }),
    );
  }
  // Each worker waits for 'go' so thread start-up is outside every measurement window.
  await Promise.all(workers.map((w) => new Promise<void>((r) => w.once('online', () => r()))));
  for (const w of workers) w.postMessage('go');
  const done = await Promise.all(reports);
  await Promise.all(workers.map((w) => w.terminate()));

  const errors = new Map<string, number>();
  for (const d of done) for (const [k, n] of d.errors) errors.set(k, (errors.get(k) ?? 0) + n);
  const startMs = Math.min(...done.map((d) => d.startMs));
  const endMs = Math.max(...done.map((d) => d.endMs));
  return {
    requests: sum(done, 'requests'),
    failedRequests: sum(done, 'failedRequests'),
    events: sum(done, 'events'),
    failedEvents: sum(done, 'failedEvents'),
    bodyBytes: sum(done, 'bodyBytes'),
    elapsedMs: endMs - startMs,
    latenciesMs: done.map((d) => d.latencies),
    errors,
    threads,
  };
}

function sum(rs: WorkerReport[], k: 'requests' | 'failedRequests' | 'events' | 'failedEvents' | 'bodyBytes'): number {
  return rs.reduce((a, r) => a + r[k], 0);
}

// ------------------------------------------------------------------------------------------------
// Load run (worker side)

const wallNow = () => performance.timeOrigin + performance.now();

async function workerMain(init: WorkerInit): Promise<WorkerReport> {
  const { target, eventsPerRequest: perReq, endpointIds } = init;
  const u = new URL(target.url);
  const port = Number(u.port);
  const path = `/v1/apps/${target.appId}/events`;
  const signer = new Signer(target.credentials, u.host);
  const agent = new http.Agent({ keepAlive: true, maxSockets: init.concurrency, maxFreeSockets: init.concurrency });
  // One session per endpoint, as a browser tab keeps its Amplify session.
  const sessions = endpointIds.map(() => ({ id: randomUUID(), start: new Date(Date.now() - 60_000).toISOString() }));

  const r: WorkerReport = {
    requests: 0,
    failedRequests: 0,
    events: 0,
    failedEvents: 0,
    bodyBytes: 0,
    startMs: 0,
    endMs: 0,
    latencies: new Float64Array(0),
    errors: [],
  };
  const errors = new Map<string, number>();
  // Distinct messages are capped so a flood of unique failures cannot grow the map without bound.
  const fail = (key: string) => {
    const k = errors.has(key) || errors.size < 20 ? key : '(further distinct errors)';
    errors.set(k, (errors.get(k) ?? 0) + 1);
  };
  let lat = new Float64Array(1 << 14);
  let nLat = 0;
  let page = 0;

  const build = () => {
    const e = Math.floor(Math.random() * endpointIds.length);
    const endpointId = endpointIds[e];
    const s = sessions[e];
    const ts = new Date().toISOString();
    const ids: string[] = new Array(perReq);
    let events = '';
    for (let i = 0; i < perReq; i++) {
      const id = randomUUID();
      ids[i] = id;
      page = (page + 7) % 1000;
      events +=
        (i === 0 ? '' : ',') +
        `"${id}":{"EventType":"pageView","Timestamp":"${ts}","Attributes":{"url":"https://example.com/p/${page}","appType":"singlePage"},` +
        `"Session":{"Id":"${s.id}","StartTimestamp":"${s.start}"}}`;
    }
    const body = Buffer.from(`{"BatchItem":{"${endpointId}":{"Endpoint":{},"Events":{${events}}}}}`, 'latin1');
    return { endpointId, ids, body };
  };

  const check = (endpointId: string, ids: string[], status: number, text: string): string | undefined => {
    if (status !== 202) return `HTTP ${status}: ${text.slice(0, 300)}`;
    let j: any;
    try {
      j = JSON.parse(text);
    } catch {
      return `HTTP 202 with a body that is not JSON: ${text.slice(0, 200)}`;
    }
    if (target.verify === 'status') return undefined;
    const item = j?.Results?.[endpointId];
    if (item === undefined) return 'no Results entry for the endpoint';
    const er = item.EndpointItemResponse;
    if (er?.StatusCode !== 202 || er?.Message !== 'Accepted') return `EndpointItemResponse ${JSON.stringify(er)}`;
    const evs = item.EventsItemResponse;
    if (typeof evs !== 'object' || evs === null) return 'no EventsItemResponse';
    if (Object.keys(evs).length !== ids.length) return `EventsItemResponse has ${Object.keys(evs).length} entries, sent ${ids.length}`;
    for (const id of ids) {
      const x = evs[id];
      if (x?.StatusCode !== 202 || x?.Message !== 'Accepted') return `event result ${JSON.stringify(x)}`;
    }
    return undefined;
  };

  await new Promise<void>((resolve) => parentPort!.once('message', () => resolve()));
  r.startMs = wallNow();
  const deadline = performance.now() + init.seconds * 1000;

  const slot = async () => {
    for (let n = 0; n < init.maxRequestsPerSlot && performance.now() < deadline; n++) {
      const { endpointId, ids, body } = build();
      const headers = signer.sign('POST', path, body);
      const t0 = performance.now();
      let problem: string | undefined;
      try {
        const res = await post(agent, port, path, headers, body);
        problem = check(endpointId, ids, res.status, res.body.toString('utf8'));
      } catch (e) {
        problem = `request failed: ${(e as Error).message}`;
      }
      const ms = performance.now() - t0;
      if (nLat === lat.length) {
        const bigger = new Float64Array(lat.length * 2);
        bigger.set(lat);
        lat = bigger;
      }
      lat[nLat++] = ms;
      r.requests++;
      r.bodyBytes += body.length;
      if (problem === undefined) r.events += ids.length;
      else {
        r.failedRequests++;
        r.failedEvents += ids.length;
        fail(problem);
      }
    }
  };
  await Promise.all(Array.from({ length: init.concurrency }, slot));
  r.endMs = wallNow();
  agent.destroy();
  r.latencies = lat.slice(0, nLat);
  r.errors = [...errors];
  return r;
}

if (!isMainThread && (workerData as WorkerInit | undefined)?.role === 'pinstream-load') {
  workerMain(workerData as WorkerInit).then(
    (report) => parentPort!.postMessage(report, [report.latencies.buffer as ArrayBuffer]),
    (e) => {
      throw e;
    },
  );
}
