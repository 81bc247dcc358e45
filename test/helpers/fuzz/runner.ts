// Runs fuzz cases against a real `pinstream start` child process and keeps the books: requests
// per group, answers by status, and findings (crashes, 5xx, non-AWS-shaped errors, requests left
// unanswered, errors the server logged as unhandled), each with the seed and fast-check path that
// replays it and the request as sent. When the process dies it is restarted on the same data
// directory, so one crash does not hide everything after it.

import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import fc from 'fast-check';
import { spawnServer, waitForExit } from '../process.js';
import { checkAnswer, errorType, type Violation } from './check.js';
import { Fixtures } from './fixtures.js';
import { describeMutations } from './mutate.js';
import { inputArbitrary } from './values.js';
import { REFUSED_BODY_DRAIN_BYTES } from '../../../src/http/limits.js';

/** HTTP/2's default initial stream window (RFC 9113 §6.9.2). */
const HTTP2_INITIAL_WINDOW_BYTES = 65_535;
import { buildRequest, caseArbitrary, dumpRequest, PATH_VARIANTS, QUERY_VARIANTS, Transport, type Credentials, type FuzzCase, type Group, type WireRequest } from './wire.js';

/** Lines on the server's stderr that mean a request reached code that did not expect it. */
const SUSPICIOUS = /unhandled|uncaught|internal error|TypeError|RangeError|ReferenceError|SyntaxError|Maximum call stack|FATAL|ERR_/i;

export interface Finding {
  kind: 'crash' | '5xx' | 'shape' | 'no-answer' | 'stderr';
  group: string;
  op: string;
  detail: string;
  count: number;
  /** How to replay the first example. */
  replay: string;
  example: string;
}

export interface GroupStats {
  group: string;
  requests: number;
  notSent: number;
  byStatus: Map<string, number>;
  bySign: Map<string, number>;
  errorTypes: Map<string, number>;
  implemented: number;
  operations: number;
  runs: number;
  /** The slowest cases (ms, description), to keep the CI budget honest. */
  slowest: Array<[number, string]>;
  /** Successful (2xx) answers per operation: how deep the fuzzing got. */
  succeeded: Map<string, number>;
  /** Names of the operations answered as implemented. */
  implementedOps: string[];
}

export class FuzzServer {
  child!: ChildProcess;
  url = '';
  stderr = '';
  restarts = 0;
  constructor(
    readonly env: Record<string, string>,
    readonly admin: Credentials,
  ) {}

  async start(): Promise<void> {
    const p = await spawnServer({ ...this.env, PINSTREAM_ADMIN_ACCESS_KEY_ID: this.admin.accessKeyId, PINSTREAM_ADMIN_SECRET_ACCESS_KEY: this.admin.secretAccessKey }, 60_000);
    this.child = p.child;
    this.url = p.url;
    this.child.stderr!.on('data', (d) => (this.stderr += d));
  }

  alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** /health answers within a few seconds (the process is alive and serving). */
  async healthy(): Promise<boolean> {
    if (!this.alive()) return false;
    try {
      const res = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(10_000) });
      await res.arrayBuffer();
      return res.status === 200;
    } catch {
      return false;
    }
  }

  async stop(): Promise<void> {
    if (!this.alive()) return;
    this.child.kill('SIGTERM');
    const exited = await Promise.race([waitForExit(this.child), new Promise((r) => setTimeout(r, 15_000))]);
    if (!exited && this.alive()) this.child.kill('SIGKILL');
  }
}

export class Fuzzer {
  findings = new Map<string, Finding>();
  stats = new Map<string, GroupStats>();
  crashes = 0;
  transport: Transport;
  fixtures: Fixtures;
  private lastEnsure = 0;
  private lastHealth = 0;

  constructor(
    readonly server: FuzzServer,
    readonly seed: number,
  ) {
    this.transport = new Transport(server.url);
    this.fixtures = new Fixtures(server.url, server.admin);
  }

  async setup(): Promise<void> {
    await this.fixtures.ensure();
    this.lastEnsure = Date.now();
  }

  target() {
    return { url: this.server.url, admin: this.server.admin, restricted: this.fixtures.restricted, resolve: this.fixtures.resolve };
  }

  statsFor(g: Group): GroupStats {
    let s = this.stats.get(g.name);
    if (!s) {
      s = { group: g.name, requests: 0, notSent: 0, byStatus: new Map(), bySign: new Map(), errorTypes: new Map(), implemented: 0, operations: g.ops.length, runs: 0, slowest: [], succeeded: new Map(), implementedOps: [] };
      this.stats.set(g.name, s);
    }
    return s;
  }

  /**
   * Which of the group's operations Pinstream implements: one valid-ish admin-signed call each; an
   * "unknown operation / action / path" answer means not implemented. Those get 15% of the calls.
   */
  async discover(g: Group): Promise<number[]> {
    const implemented: number[] = [];
    for (let i = 0; i < g.ops.length; i++) {
      const [input] = fc.sample(inputArbitrary(g.ops[i]), { seed: 1, numRuns: 1 });
      const c: FuzzCase = { op: i, input, muts: [], body: { k: 'none' }, wire: { k: 'none' }, headers: { k: 'none' }, sign: 'admin', h2: false };
      const v = await this.exercise(g, c, `discover:${i}`);
      if (!v.answer) continue;
      const type = errorType(v.request, v.answer) ?? '';
      const unknown =
        type === 'UnknownOperationException' ||
        type === 'InvalidAction' ||
        type === 'MethodNotAllowedException' ||
        (type === 'NotFoundException' && /Unknown resource path|No service answers/.test(v.answer.body.toString()));
      if (!unknown) implemented.push(i);
    }
    this.statsFor(g).implemented = implemented.length;
    this.statsFor(g).implementedOps = implemented.map((i) => g.ops[i].name);
    return implemented;
  }

  /** Fuzzes the group until the time budget or run count is spent; every case is checked, none throws. */
  async run(g: Group, implemented: number[], budgetMs: number, maxRuns: number | undefined, seed: number): Promise<void> {
    const s = this.statsFor(g);
    const arb = caseArbitrary(g, implemented, (op) => inputArbitrary(op));
    let run = 0;
    let inflight: Promise<unknown> = Promise.resolve();
    const out = await fc.check(
      fc.asyncProperty(arb, async (c) => {
        const path = run++;
        s.runs++;
        inflight = this.exercise(g, c, `${g.name}:${path}`);
        await inflight;
        return true;
      }),
      { seed, numRuns: maxRuns ?? 1_000_000_000, interruptAfterTimeLimit: budgetMs, markInterruptAsFailure: false, endOnFailure: true },
    );
    // The time limit stops fast-check waiting, not the case it was running: let that one finish.
    await inflight;
    if (out.failed) throw new Error(`fuzzing ${g.name} stopped: ${String(out.errorInstance)}`);
    await new Promise((r) => setTimeout(r, 50));
    this.flushPending();
  }

  /**
   * Sends the cases (of any groups) at the same time, clean or input-mutated, and checks each answer:
   * races between operations on the same fixtures (a put while the stream is deleted, two
   * re-creations) must end in answers, not 500s.
   */
  async burst(cases: Array<{ g: Group; c: FuzzCase }>, id: string): Promise<void> {
    await this.keepUp();
    this.flushPending();
    const transport = new Transport(this.server.url, cases.length);
    const mark = this.server.stderr.length;
    const s = this.statsFor({ name: 'concurrent', format: 'rest', ops: [] });
    s.runs++;
    try {
      const requests = await Promise.all(cases.map(({ g, c }) => buildRequest(g, c, this.target())));
      const outcomes = await Promise.all(requests.map((r) => transport.send(r)));
      const replay = `PINSTREAM_FUZZ_SEED=${this.seed} PINSTREAM_FUZZ_REPLAY=${id}`;
      for (let i = 0; i < cases.length; i++) {
        const { g, c } = cases[i];
        const o = outcomes[i];
        const where = `${entryOf(g, c, requests[i])} (in a burst of ${cases.length})`;
        const describeCase = `${g.ops[c.op].name} [${describeMutations(c.muts)}; ${c.sign}]`;
        if (!o.ok) {
          if (o.error.startsWith('client refused')) continue;
          s.requests++;
          inc(s.byStatus, 'no answer');
          if (!(await this.checkAlive({ mark, group: 'concurrent', where, replay, describeCase, request: requests[i] }))) return;
          if (mayBeCutOff(requests[i])) continue;
          this.record('no-answer', 'concurrent', where, o.error, replay, describeCase, requests[i]);
          continue;
        }
        s.requests++;
        inc(s.byStatus, String(o.res.status));
        if (o.res.status < 300) inc(s.succeeded, g.ops[c.op].name);
        const v = checkAnswer(requests[i], o.res);
        if (v) this.record(v.kind, 'concurrent', where, v.detail, replay, describeCase, requests[i]);
      }
      await new Promise((r) => setTimeout(r, 20));
      const line = this.server.stderr
        .slice(mark)
        .split('\n')
        .find((l) => SUSPICIOUS.test(l));
      if (line) this.record('stderr', 'concurrent', `burst of ${cases.length}`, line.replace(/request [0-9a-f-]{36}/, 'request …').slice(0, 300), replay, cases.map(({ g, c }) => g.ops[c.op].name).join(', '), requests[0]);
    } finally {
      transport.close();
    }
  }

  /**
   * Replays one case (PINSTREAM_FUZZ_REPLAY=group:path with the same seed) and throws on a violation,
   * so fast-check shrinks it to a smaller request that still fails.
   */
  async replay(g: Group, implemented: number[], path: string, seed: number): Promise<void> {
    const arb = caseArbitrary(g, implemented, (op) => inputArbitrary(op));
    let smallest = '';
    try {
      await fc.assert(
        fc.asyncProperty(arb, async (c) => {
          const before = this.findings.size;
          const v = await this.exercise(g, c, `${g.name}:${path}`);
          await new Promise((r) => setTimeout(r, 50));
          this.flushPending();
          if (v.violation || this.findings.size > before) {
            const what = v.violation ? `${v.violation.kind}: ${v.violation.detail}` : [...this.findings.values()].at(-1)?.detail;
            // Shrinking tries smaller and smaller cases; the last failing one is the one to read.
            smallest = `${what}\n${dumpRequest(v.request, 2000)}`;
            throw new Error(what);
          }
        }),
        { seed, path, endOnFailure: false },
      );
    } catch (e) {
      throw new Error(`${(e as Error).message}\nThe smallest failing request:\n${smallest}`);
    }
  }

  /** Sends one case and checks every invariant; records findings. */
  async exercise(g: Group, c: FuzzCase, id: string) {
    const started = Date.now();
    await this.keepUp();
    // The server logs an error before it answers, but its stderr pipe and the socket are read in
    // whatever order they arrive: the previous request's findings are recorded only now.
    this.flushPending();
    const s = this.statsFor(g);
    const op = g.ops[c.op];
    const request = await buildRequest(g, c, this.target());
    const mark = this.server.stderr.length;
    const outcome = await this.transport.send(request);
    const where = entryOf(g, c, request);
    const replay = `PINSTREAM_FUZZ_SEED=${this.seed} PINSTREAM_FUZZ_REPLAY=${id}`;
    const describeCase = `${op.name} [${describeMutations(c.muts)}; body ${c.body.k}; wire ${c.wire.k}${'i' in c.wire ? `#${c.wire.i}` : ''}; headers ${c.headers.k}; ${c.sign}${c.h2 ? '; h2' : ''}]`;
    const pending: Pending = { mark, group: g.name, where, replay, describeCase, request };
    this.pending = pending;
    let answer;
    if (!outcome.ok) {
      if (outcome.error.startsWith('client refused')) {
        s.notSent++;
        this.pending = undefined;
        return { request, violation: undefined, answer };
      }
      s.requests++;
      inc(s.byStatus, 'no answer');
      if (!(await this.checkAlive(pending))) pending.violation = { kind: 'no-answer', detail: 'server died' };
      else if (!mayBeCutOff(request)) pending.violation = { kind: 'no-answer', detail: outcome.error };
    } else {
      answer = outcome.res;
      s.requests++;
      inc(s.byStatus, String(answer.status));
      inc(s.bySign, c.sign);
      if (answer.status < 300) inc(s.succeeded, op.name);
      const type = errorType(request, answer);
      if (type) inc(s.errorTypes, type);
      pending.violation = checkAnswer(request, answer);
      // A 500 is logged before it is sent, but the pipe may deliver the line a moment later.
      for (let i = 0; i < 20 && answer.status >= 500 && !SUSPICIOUS.test(this.server.stderr.slice(mark)); i++) await new Promise((r) => setTimeout(r, 10));
    }
    const took = Date.now() - started;
    if (s.slowest.length < 3 || took > s.slowest[2][0]) {
      s.slowest.push([took, `${describeCase} ${request.body.length} B → ${answer?.status ?? 'no answer'}`]);
      s.slowest.sort((a, b) => b[0] - a[0]).splice(3);
    }
    return { request, violation: pending.violation, answer };
  }

  private pending?: Pending;

  /**
   * Records the last request's findings: its violation, with the line the server logged for it
   * (a 500's stack names its cause), or that line alone when the answer itself looked fine.
   */
  flushPending(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    const logged = this.server.stderr.slice(p.mark);
    const line = logged
      .split('\n')
      .find((l) => SUSPICIOUS.test(l))
      ?.replace(/request [0-9a-f-]{36}/, 'request …')
      .slice(0, 300);
    const v = p.violation;
    if (v && v.detail === 'server died') return;
    if (v) this.record(v.kind, p.group, p.where, line ? `${line} — ${v.detail}` : v.detail, p.replay, p.describeCase, p.request);
    else if (line) this.record('stderr', p.group, p.where, line, p.replay, p.describeCase, p.request);
  }

  /** Before every case: is the process alive? Every 5 s: does /health answer? Every 8 s: fixtures back in place. */
  private async keepUp(): Promise<void> {
    const now = Date.now();
    if (!this.server.alive()) {
      // It died after answering (or between requests): the last request is the suspect.
      const p = this.pending;
      this.pending = undefined;
      this.crashes++;
      this.record('crash', p?.group ?? '?', p?.where ?? '?', `process exited after answering (${this.exitStatus()}): ${this.tail()}`, p?.replay ?? '', p?.describeCase ?? '', p?.request);
      await this.restart();
    }
    if (now - this.lastHealth > 5_000) {
      this.lastHealth = now;
      if (!(await this.server.healthy()) && this.server.alive()) {
        this.record('no-answer', 'health', 'GET /health', '/health did not answer 200 within 10 s', '', '', undefined);
      }
    }
    if (now - this.lastEnsure > 8_000) {
      this.lastEnsure = now;
      await this.fixtures.ensure();
    }
  }

  private async checkAlive(p: Pending): Promise<boolean> {
    // A dying process may take a moment to be reaped.
    for (let i = 0; i < 20 && this.server.alive(); i++) await new Promise((res) => setTimeout(res, 25));
    if (this.server.alive()) return true;
    this.crashes++;
    this.pending = undefined;
    this.record('crash', p.group, p.where, `process exited (${this.exitStatus()}): ${this.tail()}`, p.replay, p.describeCase, p.request);
    await this.restart();
    return false;
  }

  private exitStatus(): string {
    return String(this.server.child.exitCode ?? this.server.child.signalCode);
  }

  /** The dying process's last words: its error lines, not the stack. */
  private tail(): string {
    const lines = this.server.stderr.split('\n').filter((l) => l.trim() && !/^\s+at /.test(l));
    return lines.slice(-4).join(' | ').slice(0, 500);
  }

  /** Starts the server again on the same data directory, with fresh connections and fixtures. */
  async restart(): Promise<void> {
    this.server.restarts++;
    await this.server.start();
    this.transport.close();
    this.transport = new Transport(this.server.url);
    this.fixtures.url = this.server.url;
    await this.fixtures.ensure();
    this.lastEnsure = Date.now();
  }

  record(kind: Finding['kind'], group: string, op: string, detail: string, replay: string, describeCase: string, r: WireRequest | undefined): void {
    // One finding per kind, entry point and gist of the problem (status, error type and logged
    // error, not the values echoed in it).
    const gist = detail.replace(/body: .*/s, '').replace(/"[^"]*"/g, '"…"').replace(/\d+/g, 'N').slice(0, 160);
    const key = `${kind}|${group}|${op}|${gist}`;
    const f = this.findings.get(key);
    if (f) {
      f.count++;
      return;
    }
    this.findings.set(key, { kind, group, op, detail, count: 1, replay, example: `${describeCase}\n${r ? dumpRequest(r) : ''}` });
  }

  async close(): Promise<void> {
    this.transport.close();
    await this.server.stop();
  }
}

interface Pending {
  mark: number;
  group: string;
  /** What the server dispatches on: the X-Amz-Target sent, the Query action, the REST operation. */
  where: string;
  replay: string;
  describeCase: string;
  request: WireRequest;
  violation?: Violation;
}

function entryOf(g: Group, c: FuzzCase, r: WireRequest): string {
  const op = g.ops[c.op].name;
  if (g.format === 'json' || g.format === 'cbor') {
    const t = r.headers['x-amz-target'];
    return `X-Amz-Target: ${Array.isArray(t) ? t.join(' + ') : (t ?? '(none)')}`;
  }
  if (g.format === 'query') return c.wire.k === 'query' ? `${op} (${QUERY_VARIANTS[c.wire.i]})` : op;
  return c.wire.k === 'path' ? `${op} (path ${PATH_VARIANTS[c.wire.i]})` : op;
}

function inc(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

// ---- Raw HTTP: bytes no HTTP client library would send ----------------------------------------

export const RAW_CASES: Array<{ name: string; chunks: Array<string | Buffer>; expectAnswer: boolean }> = [
  { name: 'first read is the single byte P', chunks: ['P', 'UT /v1/apps/x/settings HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}'], expectAnswer: true },
  { name: 'first read is "PR"', chunks: ['PR', 'OPFIND /v1/apps HTTP/1.1\r\nHost: h\r\n\r\n'], expectAnswer: false },
  { name: 'request line only', chunks: ['GET\r\n\r\n'], expectAnswer: false },
  { name: 'HTTP/9.9', chunks: ['GET /health HTTP/9.9\r\nHost: h\r\n\r\n'], expectAnswer: false },
  { name: 'NUL bytes', chunks: [Buffer.from([0, 1, 2, 3, 0xff, 0xfe, 0x0d, 0x0a, 0x0d, 0x0a])], expectAnswer: false },
  { name: 'negative content-length', chunks: ['POST /v1/apps HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n'], expectAnswer: false },
  { name: 'content-length and chunked', chunks: ['POST /v1/apps HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'], expectAnswer: false },
  { name: 'bad chunk size', chunks: ['POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX-Amz-Target: Kinesis_20131202.ListStreams\r\n\r\nZZ\r\nxx\r\n0\r\n\r\n'], expectAnswer: false },
  { name: 'header without colon', chunks: ['GET /health HTTP/1.1\r\nHost: h\r\nNoColonHere\r\n\r\n'], expectAnswer: false },
  { name: 'obsolete line folding', chunks: ['GET /v1/apps HTTP/1.1\r\nHost: h\r\nX-Amz-Target: Kinesis_20131202.\r\n ListStreams\r\n\r\n'], expectAnswer: false },
  { name: 'LF-only line ends', chunks: ['GET /health HTTP/1.1\nHost: h\n\n'], expectAnswer: false },
  { name: '100 KB request line', chunks: [`GET /v1/apps/${'a'.repeat(100_000)} HTTP/1.1\r\nHost: h\r\n\r\n`], expectAnswer: false },
  { name: 'three pipelined requests', chunks: ['GET /health HTTP/1.1\r\nHost: h\r\n\r\nGET /v1/apps HTTP/1.1\r\nHost: h\r\n\r\nPOST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: Kinesis_20131202.constructor\r\nContent-Length: 2\r\n\r\n{}'], expectAnswer: true },
  { name: 'HTTP/1.0 without Host', chunks: ['GET /v1/apps HTTP/1.0\r\n\r\n'], expectAnswer: true },
  { name: 'HTTP/2 preface then garbage', chunks: ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', Buffer.alloc(64, 0xff)], expectAnswer: false },
  { name: 'HTTP/2 preface only, then silence', chunks: ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'], expectAnswer: false },
  { name: 'TLS ClientHello', chunks: [Buffer.from('160301002a0100002603030000000000000000000000000000000000000000000000000000000000000000000002002f0100', 'hex')], expectAnswer: false },
  { name: 'h2c upgrade', chunks: ['GET /health HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n'], expectAnswer: true },
  { name: 'body cut mid-way, then close', chunks: ['POST /v1/apps HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"Na'], expectAnswer: false },
  { name: 'absolute-form target', chunks: ['GET http://evil.example/v1/apps HTTP/1.1\r\nHost: h\r\n\r\n'], expectAnswer: true },
  { name: 'asterisk target', chunks: ['OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n'], expectAnswer: true },
  { name: 'duplicate content-length', chunks: ['POST /v1/apps HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}'], expectAnswer: false },
  { name: 'query-protocol form, Action=constructor', chunks: ['POST / HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 37\r\n\r\nAction=constructor&Version=2010-05-08'], expectAnswer: true },
];

export interface RawAnswer {
  /** Status codes of the HTTP/1.x answers received, in order. */
  statuses: number[];
  bytes: number;
}

/**
 * Writes the chunks (20 ms apart, so each is its own TCP read) and collects what comes back: until
 * the server closes, or 150 ms after the last byte once an answer arrived, or `waitMs` without one.
 */
export function rawExchange(url: string, chunks: Array<string | Buffer>, waitMs: number): Promise<RawAnswer> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(u.port), u.hostname);
    const got: Buffer[] = [];
    let done = false;
    let idle: NodeJS.Timeout | undefined;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(idle);
      clearTimeout(overall);
      socket.destroy();
      const text = Buffer.concat(got).toString('latin1');
      resolve({ statuses: [...text.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1])), bytes: text.length });
    };
    const overall = setTimeout(finish, waitMs + 20 * chunks.length);
    socket.on('data', (d) => {
      got.push(d);
      clearTimeout(idle);
      idle = setTimeout(finish, 150);
    });
    socket.on('error', finish);
    socket.on('close', finish);
    socket.on('connect', async () => {
      for (const c of chunks) {
        if (socket.destroyed) break;
        socket.write(c);
        await new Promise((r) => setTimeout(r, 20));
      }
    });
  });
}

/**
 * When the server may answer before reading a body and then close (HTTP/1.1) or reset the stream
 * (HTTP/2, NO_ERROR, RFC 9113 §8.1), a client still writing that body can lose the answer to
 * EPIPE/ECONNRESET/a stream error. The server does so for bodies it does not drain: larger than
 * REFUSED_BODY_DRAIN_BYTES, of unknown length (chunked), or announced with `expect: 100-continue`
 * (a client honouring it waits for the answer instead of sending). Invalid HTTP may be cut off
 * too. Anything else deserves an answer.
 */
function mayBeCutOff(request: WireRequest): boolean {
  if (request.httpInvalid === true || request.body.length > REFUSED_BODY_DRAIN_BYTES) return true;
  if (request.body.length === 0) return false;
  // HTTP/2 never drains: a body larger than the stream's initial flow-control window is still being
  // sent when the answer and the NO_ERROR reset arrive, and Node's client reports a stream error.
  if (request.h2 && request.body.length > HTTP2_INITIAL_WINDOW_BYTES) return true;
  const header = (name: string) => {
    for (const [k, v] of Object.entries(request.headers)) if (k.toLowerCase() === name) return [v].flat().join(',').toLowerCase();
    return '';
  };
  return header('transfer-encoding').includes('chunked') || header('expect').includes('100-continue');
}
