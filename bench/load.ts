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

  /**
   * Headers to send (host included) for `method path` with this exact body. `extra` headers
   * (lower-case names, e.g. x-amz-target; content-type replaces application/json) are signed too.
   */
  sign(method: string, path: string, body: Buffer, nowMs = Date.now(), extra?: Record<string, string>): Record<string, string> {
    if (extra) return this.signWith(method, path, body, nowMs, extra);
    const amzDate = this.amzDate(nowMs);
    const date = amzDate.slice(0, 8);
    this.deriveKey(date);
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

  /** The signing key of the day (derived once a day). */
  private deriveKey(date: string): void {
    if (date === this.keyDate) return;
    let k = createHmac('sha256', 'AWS4' + this.creds.secretAccessKey).update(date).digest();
    k = createHmac('sha256', k).update(this.region).digest();
    k = createHmac('sha256', k).update(this.service).digest();
    this.key = createHmac('sha256', k).update('aws4_request').digest();
    this.keyDate = date;
  }

  /** The general form of `sign`: every header of `extra` signed beside host, date and payload hash. */
  private signWith(method: string, path: string, body: Buffer, nowMs: number, extra: Record<string, string>): Record<string, string> {
    const amzDate = this.amzDate(nowMs);
    const date = amzDate.slice(0, 8);
    this.deriveKey(date);
    const payloadHash = createHash('sha256').update(body).digest('hex');
    const headers: Record<string, string> = { 'content-type': 'application/json', ...extra, host: this.host, 'x-amz-content-sha256': payloadHash, 'x-amz-date': amzDate };
    const names = Object.keys(headers).sort();
    const signed = names.join(';');
    const canonical = `${method}\n${path}\n\n${names.map((n) => `${n}:${headers[n]}\n`).join('')}\n${signed}\n${payloadHash}`;
    const scope = `${date}/${this.region}/${this.service}/aws4_request`;
    const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${createHash('sha256').update(canonical).digest('hex')}`;
    const signature = createHmac('sha256', this.key).update(toSign).digest('hex');
    return {
      ...headers,
      'content-length': String(body.length),
      authorization: `AWS4-HMAC-SHA256 Credential=${this.creds.accessKeyId}/${scope}, SignedHeaders=${signed}, Signature=${signature}`,
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
// Load generator (main thread side)

export interface LoadTarget {
  /** http://127.0.0.1:port */
  url: string;
  appId: string;
  credentials: Credentials;
  /** 'pinpoint': full PutEvents result check; 'status': HTTP 202 only (the ceiling peer's constant body). */
  verify: 'pinpoint' | 'status';
}

export interface GeneratorOptions {
  threads: number;
  eventsPerRequest: number;
  endpointIds: string[];
}

export interface RunOptions {
  concurrency: number;
  seconds: number;
  /** Hard cap on requests per in-flight slot, in addition to the time bound. */
  maxRequestsPerSlot?: number;
  /** Called right before the workers start sending and right after the last one finished. */
  atStart?: () => void;
  atEnd?: () => void;
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
}

interface WorkerInit {
  role: 'pinstream-load';
  target: LoadTarget;
  eventsPerRequest: number;
  endpointIds: string[];
}

interface WorkerRun {
  concurrency: number;
  seconds: number;
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

/**
 * A pool of load threads for one target. Threads (and their keep-alive connections and JIT state)
 * persist across runs, so only the first run of a generator pays for warming them up.
 */
export class LoadGenerator {
  private constructor(private workers: Worker[]) {}

  static async start(target: LoadTarget, o: GeneratorOptions): Promise<LoadGenerator> {
    const init: WorkerInit = { role: 'pinstream-load', target, eventsPerRequest: o.eventsPerRequest, endpointIds: o.endpointIds };
    const workers = Array.from({ length: Math.max(1, o.threads) }, () => new Worker(new URL(import.meta.url), { workerData: init }));
    await Promise.all(workers.map((w) => nextMessage<'ready'>(w)));
    return new LoadGenerator(workers);
  }

  async run(o: RunOptions): Promise<LoadResult> {
    const n = this.workers.length;
    const replies = this.workers.map((w) => nextMessage<WorkerReport>(w));
    o.atStart?.();
    this.workers.forEach((w, i) => {
      const share = Math.floor(o.concurrency / n) + (i < o.concurrency % n ? 1 : 0);
      const msg: WorkerRun = { concurrency: share, seconds: o.seconds, maxRequestsPerSlot: o.maxRequestsPerSlot ?? 1_000_000 };
      w.postMessage(msg);
    });
    const done = (await Promise.all(replies)).filter((d) => d.startMs > 0);
    o.atEnd?.();
    const errors = new Map<string, number>();
    for (const d of done) for (const [k, c] of d.errors) errors.set(k, (errors.get(k) ?? 0) + c);
    return {
      requests: sum(done, 'requests'),
      failedRequests: sum(done, 'failedRequests'),
      events: sum(done, 'events'),
      failedEvents: sum(done, 'failedEvents'),
      bodyBytes: sum(done, 'bodyBytes'),
      elapsedMs: Math.max(...done.map((d) => d.endMs)) - Math.min(...done.map((d) => d.startMs)),
      latenciesMs: done.map((d) => d.latencies),
      errors,
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

function nextMessage<T>(w: Worker): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onMessage = (m: T) => {
      w.off('error', onError);
      w.off('exit', onExit);
      resolve(m);
    };
    const onError = (e: Error) => {
      w.off('message', onMessage);
      w.off('exit', onExit);
      reject(e);
    };
    const onExit = (code: number) => {
      w.off('message', onMessage);
      w.off('error', onError);
      reject(new Error(`load worker exited with code ${code}`));
    };
    w.once('message', onMessage);
    w.once('error', onError);
    w.once('exit', onExit);
  });
}

function sum(rs: WorkerReport[], k: 'requests' | 'failedRequests' | 'events' | 'failedEvents' | 'bodyBytes'): number {
  return rs.reduce((a, r) => a + r[k], 0);
}

// ------------------------------------------------------------------------------------------------
// Load generator (worker side)

const wallNow = () => performance.timeOrigin + performance.now();
const MAX_DISTINCT_ERRORS = 20;
const UUID_RE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

function workerMain(init: WorkerInit): void {
  const { target, eventsPerRequest: perReq, endpointIds } = init;
  const u = new URL(target.url);
  const port = Number(u.port);
  const path = `/v1/apps/${target.appId}/events`;
  const signer = new Signer(target.credentials, u.host);
  const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 1024 });
  // One session per endpoint, as a browser tab keeps its Amplify session.
  const sessions = endpointIds.map(() => ({ id: randomUUID(), start: new Date(Date.now() - 60_000).toISOString() }));
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

  /** undefined when the response acknowledges every event; else what was wrong. */
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
    if (item === undefined) return 'HTTP 202 but no Results entry for the endpoint';
    const er = item.EndpointItemResponse;
    if (er?.StatusCode !== 202 || er?.Message !== 'Accepted') return `EndpointItemResponse ${JSON.stringify(er)}`;
    const evs = item.EventsItemResponse;
    if (typeof evs !== 'object' || evs === null) return 'HTTP 202 but no EventsItemResponse';
    const n = Object.keys(evs).length;
    if (n !== ids.length) return `EventsItemResponse has ${n} entries, ${ids.length} events were sent`;
    for (const id of ids) {
      const x = evs[id];
      if (x?.StatusCode !== 202 || x?.Message !== 'Accepted') return `event result ${JSON.stringify(x)}`;
    }
    return undefined;
  };

  const runOnce = async (run: WorkerRun): Promise<WorkerReport> => {
    const r: WorkerReport = { requests: 0, failedRequests: 0, events: 0, failedEvents: 0, bodyBytes: 0, startMs: 0, endMs: 0, latencies: new Float64Array(0), errors: [] };
    if (run.concurrency === 0) return r;
    // Distinct messages are capped so a flood of unique failures cannot grow the map without bound.
    const errors = new Map<string, number>();
    // Ids (request ids, event ids) are masked so the same failure groups under one message.
    const fail = (raw: string) => {
      const key = raw.replace(UUID_RE, '<uuid>');
      const k = errors.has(key) || errors.size < MAX_DISTINCT_ERRORS ? key : '(further distinct errors)';
      errors.set(k, (errors.get(k) ?? 0) + 1);
    };
    let lat = new Float64Array(1 << 14);
    let nLat = 0;
    r.startMs = wallNow();
    const deadline = performance.now() + run.seconds * 1000;
    const slot = async () => {
      for (let n = 0; n < run.maxRequestsPerSlot && performance.now() < deadline; n++) {
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
    await Promise.all(Array.from({ length: run.concurrency }, slot));
    r.endMs = wallNow();
    r.latencies = lat.slice(0, nLat);
    r.errors = [...errors];
    return r;
  };

  parentPort!.on('message', (run: WorkerRun) => {
    runOnce(run).then(
      (report) => parentPort!.postMessage(report, [report.latencies.buffer as ArrayBuffer]),
      (e) => {
        throw e;
      },
    );
  });
  parentPort!.postMessage('ready');
}

if (!isMainThread && (workerData as WorkerInit | undefined)?.role === 'pinstream-load') {
  workerMain(workerData as WorkerInit);
}
