// Hostile-client load for the resource suite (resources.test.ts): a Pinstream server started as a
// child process (so its RSS is its own), optionally under a lower file-descriptor limit, and the
// clients of issue 12's defect 4 — silent connections, slowloris headers, unfinished uploads over
// HTTP/1.1 and HTTP/2. Loopback only; every wait is bounded.

import { spawn, type ChildProcess } from 'node:child_process';
import http2 from 'node:http2';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { CLI } from './process.js';
import { RawConnection, rssOf, signedHead } from './raw.js';

export const ADMIN = { accessKeyId: 'PSAKRESOURCESUITE001', secretAccessKey: 'resource-suite-secret-0123456789abcdef' };

export interface ChildServer {
  child: ChildProcess;
  url: string;
  pid: number;
  output(): string;
  /** Resident set now and its peak since start (VmHWM), bytes. */
  rss(): { rss: number; peak: number };
  stop(): Promise<void>;
}

/**
 * `pinstream start` (or another build's CLI) with PINSTREAM_* settings, under `ulimit -n fdLimit`
 * when given (soft and hard: Node raises the soft limit to the hard one at start).
 */
export async function spawnChildServer(o: { dataDir: string; env?: Record<string, string>; fdLimit?: number; cli?: string }, timeoutMs = 30_000): Promise<ChildServer> {
  const env = {
    ...process.env,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    PINSTREAM_PORT: '0',
    PINSTREAM_DATA_DIR: o.dataDir,
    PINSTREAM_ADMIN_ACCESS_KEY_ID: ADMIN.accessKeyId,
    PINSTREAM_ADMIN_SECRET_ACCESS_KEY: ADMIN.secretAccessKey,
    // Measure the front door, not the disk.
    PINSTREAM_LOG_FSYNC: 'false',
    ...o.env,
  };
  // PINSTREAM_RESOURCES_CLI runs the suite against another build (e.g. to measure before a change).
  const args = [o.cli ?? process.env.PINSTREAM_RESOURCES_CLI ?? CLI, 'start'];
  const child =
    o.fdLimit === undefined
      ? spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('/bin/sh', ['-c', `ulimit -n ${o.fdLimit} && exec "$0" "$@"`, process.execPath, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const check = () => {
      if (/listening on \S+/.test(out)) {
        clearTimeout(timer);
        child.removeListener('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    };
    child.stdout!.on('data', check);
    child.on('exit', onExit);
  });
  const pid = child.pid!;
  return {
    child,
    pid,
    url: /listening on (\S+)/.exec(out)![1],
    output: () => out,
    rss: () => rssOf(pid),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Opens `n` connections (100 at a time) and sends nothing. */
export async function silentConnections(url: string, n: number): Promise<RawConnection[]> {
  const out: RawConnection[] = [];
  for (let i = 0; i < n; i += 100) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => RawConnection.open(url)))));
  }
  return out;
}

/** Opens `n` connections that send a request line, then one header line every `everyMs`, never ending. */
export async function slowHeaders(url: string, n: number, everyMs: number): Promise<{ conns: RawConnection[]; stop(): void }> {
  const conns: RawConnection[] = [];
  for (let i = 0; i < n; i++) {
    const c = await RawConnection.open(url);
    await c.write('GET /v1/apps HTTP/1.1\r\nHost: x\r\n');
    conns.push(c);
  }
  let i = 0;
  const timer = setInterval(() => {
    i++;
    for (const c of conns) if (!c.closed) void c.write(`x-slow-${i}: ${i}\r\n`);
  }, everyMs);
  return { conns, stop: () => clearInterval(timer) };
}

/**
 * `n` signed PutEvents (restJson1) declaring `declared` body bytes and sending `sent` of them, then
 * nothing: uploads that never finish. `unsigned` sends no Authorization at all.
 */
export async function unfinishedUploads(url: string, appId: string, n: number, declared: number, sent: number, unsigned = false): Promise<RawConnection[]> {
  const conns: RawConnection[] = [];
  const chunk = Buffer.alloc(sent, 0x20);
  for (let i = 0; i < n; i++) {
    const c = await RawConnection.open(url);
    conns.push(c);
    const head = unsigned
      ? `POST /v1/apps/${appId}/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n`
      : await signedHead(url, { path: `/v1/apps/${appId}/events`, service: 'mobiletargeting', credentials: ADMIN, contentLength: declared });
    await c.write(head);
    void c.write(chunk);
  }
  return conns;
}

export interface StreamLoad {
  sessions: http2.ClientHttp2Session[];
  /** Streams the server answered (with any status), and those reset or failed. */
  answered: Map<number, number>;
  failed: number;
  close(): void;
}

/**
 * `sessions` HTTP/2 sessions, each opening `streams` signed PutEvents streams that send `bytes`
 * body bytes and never end.
 */
export async function unfinishedStreams(url: string, appId: string, sessions: number, streams: number, bytes: number): Promise<StreamLoad> {
  const u = new URL(url);
  const signer = new SignatureV4({ service: 'mobiletargeting', region: 'us-east-1', credentials: ADMIN, sha256: Sha256 });
  const load: StreamLoad = { sessions: [], answered: new Map(), failed: 0, close: () => load.sessions.forEach((s) => s.destroy()) };
  const body = Buffer.alloc(bytes, 0x20);
  for (let i = 0; i < sessions; i++) {
    // The client's own session memory must not be what stops the streams (Node's default, 10 MB,
    // resets them with ENHANCE_YOUR_CALM once that much is queued to send).
    const s = http2.connect(url, { maxSessionMemory: 100_000 });
    s.on('error', () => {});
    load.sessions.push(s);
    for (let j = 0; j < streams; j++) {
      const path = `/v1/apps/${appId}/events`;
      const signed = await signer.sign({
        method: 'POST',
        protocol: 'http:',
        hostname: u.hostname,
        port: Number(u.port),
        path,
        query: {},
        headers: { host: u.host, 'content-type': 'application/json', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'content-length': String(bytes + 1) },
      });
      const headers: http2.OutgoingHttpHeaders = { ':method': 'POST', ':path': path, ':authority': u.host };
      for (const [k, v] of Object.entries(signed.headers)) if (k !== 'host') headers[k] = v;
      const r = s.request(headers);
      r.on('response', (h) => {
        const status = Number(h[':status']);
        load.answered.set(status, (load.answered.get(status) ?? 0) + 1);
      });
      r.on('error', () => load.failed++);
      r.resume();
      r.write(body);
    }
  }
  return load;
}
