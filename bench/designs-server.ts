// Design prototypes for issue 16 item 1 — a BENCHMARK HARNESS, NOT the shipped server. Two ways to
// spread PutEvents over the cores, built from the same parts so that they differ only in the split:
//
//   A "threads" (what Pinstream ships, src/pinpoint/parallel/): one process. The main thread has the
//     HTTP server, SigV4 verification, dedup, record assembly and the append (+ fdatasync, group
//     commit); THREADS worker threads run prepareBody (JSON.parse, model validation, event
//     validation, record parts), bodies sent as transferred ArrayBuffers. THREADS=0: all inline.
//   B "procs": node:cluster. PROCS worker processes each answer HTTP, verify SigV4 and run
//     prepareBody; the prepared events go over IPC (advanced serialization) to the primary, which
//     owns dedup, record assembly and the file (append + fdatasync) and returns the results; the
//     worker process serializes and sends the answer.
//
// Both leave out what is the same in either design (the endpoint table in SQLite, IAM policy
// evaluation, the segment log's framing); records get a fixed endpoint. So their numbers are an
// upper bound for the full server, comparable with each other. Started by `bench ingest`.

import cluster from 'node:cluster';
import http from 'node:http';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { verifySigV4 } from '../src/iam/sigv4.js';
import { prepareBody, type PreparedEvents, type PreparedOk } from '../src/pinpoint/ingest-prepare.js';
import { PreparePool } from '../src/pinpoint/parallel/pool.js';
import { applicationJson, assembleRecord, endpointParts } from '../src/pinpoint/record.js';
import type { StoredEndpoint } from '../src/pinpoint/endpoints.js';

const DESIGN = process.env.DESIGN === 'procs' ? 'procs' : 'threads';
const N = Number(process.env.N ?? 1);
const DIR = process.env.DATA_DIR ?? '.';
const CREDS = { accessKeyId: process.env.KEY_ID ?? 'BENCHPROTO000000', secretAccessKey: process.env.SECRET ?? 'bench-proto-secret-0000' };
const PATH_RE = /^\/v1\/apps\/([^/]+)\/events$/;
const DEDUP_CAP = 1_000_000;

// ---- the owner's part: dedup, assembly, group-committed append -----------------------------------

class Owner {
  private seen = new Set<string>();
  private queue: Array<{ data: string; done: () => void }> = [];
  private writing = false;
  constructor(private file: FileHandle) {}

  /** Claims, assembles and appends; resolves with the Results body once durable. */
  apply(appId: string, p: PreparedOk): Promise<string> {
    const results: Record<string, unknown> = {};
    let data = '';
    for (const item of p.items) {
      const ev: Record<string, { StatusCode: number; Message: string }> = {};
      results[item.endpointId] = { EndpointItemResponse: { StatusCode: 202, Message: 'Accepted' }, EventsItemResponse: ev };
      const stored: StoredEndpoint = { endpoint: { Id: item.endpointId }, json: `{"id":${JSON.stringify(item.endpointId)}}` } as unknown as StoredEndpoint;
      const parts = endpointParts(appId, item.endpointId, stored, '000000000000');
      const start = `[${JSON.stringify(appId)},${JSON.stringify(item.endpointId)},`;
      for (const e of item.events) {
        if (e.length === 2) {
          ev[e[0]] = { StatusCode: 400, Message: e[1] };
          continue;
        }
        ev[e[0]] = { StatusCode: 202, Message: 'Accepted' };
        if (this.seen.has(e[1])) continue;
        if (this.seen.size >= DEDUP_CAP) this.seen.clear();
        this.seen.add(e[1]);
        data += start + assembleRecord(parts, e[2], applicationJson(parts, p.apps[e[3]]), e[4]) + '\n';
      }
    }
    const body = JSON.stringify({ Results: results });
    return new Promise((resolve) => {
      this.queue.push({ data, done: () => resolve(body) });
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      await this.file.write(batch.map((b) => b.data).join(''));
      await this.file.datasync();
      for (const b of batch) b.done();
    }
    this.writing = false;
  }
}

// ---- the HTTP part: read, verify, prepare (inline, on a thread, or here in a cluster worker) -----

function serve(prepareAndApply: (appId: string, body: Buffer) => Promise<PreparedEvents | string>): http.Server {
  return http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      const m = PATH_RE.exec(req.url ?? '');
      const auth = verifySigV4(
        { method: req.method ?? 'GET', rawPath: req.url ?? '/', rawQuery: '', headers: req.headers, body },
        { lookup: (id) => (id === CREDS.accessKeyId ? CREDS : undefined), now: Date.now(), services: ['mobiletargeting'] },
      );
      if (!m || !auth.ok) {
        res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ message: auth.ok ? 'no such path' : auth.message }));
        return;
      }
      prepareAndApply(m[1], body).then(
        (out) => {
          if (typeof out === 'string') return void res.writeHead(202, { 'content-type': 'application/json' }).end(out);
          const failed = out as { code: string; status: number; message: string };
          res.writeHead(failed.status, { 'content-type': 'application/json', 'x-amzn-errortype': failed.code }).end(JSON.stringify({ Message: failed.message }));
        },
        (e) => res.writeHead(500).end(String(e)),
      );
    });
  });
}

const job = (appId: string, body: Buffer) => ({ appId, body, labels: { 'application-id': appId }, arrivalMs: Date.now() });

async function main(): Promise<void> {
  if (DESIGN === 'threads') {
    const owner = new Owner(await open(join(DIR, 'proto.log'), 'a'));
    const pool = N > 0 ? new PreparePool(N) : undefined;
    let applied: Promise<unknown> = Promise.resolve();
    const server = serve((appId, body) => {
      if (!pool) {
        const p = prepareBody(job(appId, body));
        return (p.ok ? owner.apply(appId, p) : Promise.resolve(p)) as Promise<PreparedEvents | string>;
      }
      const prepared = pool.run(job(appId, body));
      // Applied in arrival order, as the real server does.
      const turn = applied.then(() => prepared).then((p) => ({ done: (p.ok ? owner.apply(appId, p) : Promise.resolve(p)) as Promise<PreparedEvents | string> }));
      applied = turn.catch(() => {});
      return turn.then((t) => t.done);
    });
    server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
      console.log(`proto listening on http://127.0.0.1:${(server.address() as { port: number }).port} pids ${process.pid}`);
    });
    process.on('SIGTERM', () => process.exit(0));
    return;
  }
  if (cluster.isPrimary) {
    const owner = new Owner(await open(join(DIR, 'proto.log'), 'a'));
    cluster.setupPrimary({ serialization: 'advanced' });
    const pids: number[] = [];
    let listening = 0;
    for (let i = 0; i < N; i++) {
      const w = cluster.fork();
      pids.push(w.process.pid!);
      w.on('message', (m: { id: number; appId: string; p: PreparedOk }) => {
        void owner.apply(m.appId, m.p).then((body) => w.send({ id: m.id, body }));
      });
      w.on('listening', (addr) => {
        if (++listening === N) console.log(`proto listening on http://127.0.0.1:${addr.port} pids ${[process.pid, ...pids].join(',')}`);
      });
    }
    process.on('SIGTERM', () => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
      process.exit(0);
    });
    return;
  }
  let next = 1;
  const waiting = new Map<number, (body: string) => void>();
  process.on('message', (m: { id: number; body: string }) => {
    waiting.get(m.id)?.(m.body);
    waiting.delete(m.id);
  });
  const server = serve(async (appId, body) => {
    const p = prepareBody(job(appId, body));
    if (!p.ok) return p;
    const id = next++;
    return new Promise<string>((resolve) => {
      waiting.set(id, resolve);
      process.send!({ id, appId, p });
    });
  });
  server.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
  process.on('SIGTERM', () => process.exit(0));
}

void main();
