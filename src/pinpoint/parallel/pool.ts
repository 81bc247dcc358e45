// The PutEvents prepare pool: worker threads that run ingest-prepare.ts's prepareBody on request
// bodies, so parsing, model validation, event validation and record building use the other cores
// while the main thread keeps the sockets, authorization, the endpoint table, dedup and the log.
// A body goes to a thread as a transferred ArrayBuffer (no copy); what comes back is compact
// (strings per event, see PreparedEvents). Jobs go to the thread with the fewest bytes pending.
//
// Bounds: the bodies waiting here are those of requests in flight, which the front door bounds
// (connections × the PutEvents body limit). Each job has PREPARE_TIMEOUT_MS: a thread that does
// not answer in time is replaced, and its jobs fail with a retryable 500, as do the jobs of a
// thread that dies; nothing was claimed or written for them, so a retry stores the events once.

import { Worker } from 'node:worker_threads';
import { MAX_INGEST_THREADS } from '../../config/config.js';
import type { PrepareJob, PreparedEvents } from '../ingest-prepare.js';
import { transferable } from '../../threads/transfer.js';

/** A prepare (at most a 4 MB body, ~20 ms) not answered in this long means its thread is stuck. */
export const PREPARE_TIMEOUT_MS = 30_000;

/**
 * Old-generation heap of each prepare thread. A prepare holds one body's parse at a time (the
 * largest, 4 MB, takes about ten times that), so this bounds the threads' memory with room to
 * spare; a thread that would need more dies, its requests answer a retryable 500, and it is replaced.
 */
export const PREPARE_THREAD_HEAP_MB = 128;

/** At most this many prepare threads (Config.ingestThreads is validated against the same bound). */
export const MAX_PREPARE_THREADS = MAX_INGEST_THREADS;

const WORKER_URL = new URL('./prepare-worker.js', import.meta.url);

/** How often each prepare thread reports its V8 heap (for /metrics). */
export const PREPARE_MEMORY_REPORT_MS = 1000;

/** Every open pool of the process, for the process-wide memory report. */
const pools = new Set<PreparePool>();

/** The V8 heap used by every prepare thread of the process, as last reported (bytes). */
export function prepareThreadsHeapBytes(): number {
  let n = 0;
  for (const p of pools) n += p.heapBytes();
  return n;
}

interface Pending {
  resolve(p: PreparedEvents): void;
  bytes: number;
  timer: NodeJS.Timeout;
}

interface Thread {
  worker: Worker;
  pending: Map<number, Pending>;
  pendingBytes: number;
  /** The thread's V8 heap as it last reported it. */
  heapUsed: number;
}

export interface PrepareReply {
  /** Absent on a memory report (which has heapUsed only). */
  id?: number;
  heapUsed?: number;
  out?: PreparedEvents;
  /** A bug in prepare (not a client error): the message, logged here. */
  crash?: string;
}

const retryable = (message: string): PreparedEvents => ({ ok: false, code: 'InternalServerErrorException', status: 500, message });

export interface PreparePoolOptions {
  /** PREPARE_TIMEOUT_MS unless a test shortens it. */
  timeoutMs?: number;
  /** The thread's script; tests substitute one that fails on cue. */
  workerUrl?: URL;
}

export class PreparePool {
  private threads: Thread[] = [];
  private nextId = 1;
  private closed = false;
  private readonly timeoutMs: number;
  private readonly workerUrl: URL;

  constructor(
    readonly size: number,
    options: PreparePoolOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? PREPARE_TIMEOUT_MS;
    this.workerUrl = options.workerUrl ?? WORKER_URL;
    if (!Number.isInteger(size) || size < 1 || size > MAX_PREPARE_THREADS) throw new Error(`prepare pool size must be 1 to ${MAX_PREPARE_THREADS}, got ${size}`);
    pools.add(this);
  }

  /** The V8 heap of this pool's threads as they last reported it (bytes). */
  heapBytes(): number {
    return this.threads.reduce((n, t) => n + t.heapUsed, 0);
  }

  /**
   * The threads start with the first job, not with the pool: booting one took ~100 ms of CPU at
   * every server start (most test servers never see a PutEvents), and the first request's body
   * waits in the thread's message queue while it boots.
   */
  private spawnAll(): void {
    for (let i = 0; i < this.size; i++) this.threads.push(this.spawn());
  }

  /** Threads started (0 until the first job). */
  get started(): number {
    return this.threads.length;
  }

  /** Prepares `job` on a pool thread. `job.body` is transferred: the caller's buffer is emptied. */
  run(job: PrepareJob): Promise<PreparedEvents> {
    if (this.closed) return Promise.resolve(retryable('The server is shutting down; retry the request'));
    if (this.threads.length === 0) this.spawnAll();
    let t = this.threads[0];
    for (const x of this.threads) if (x.pendingBytes < t.pendingBytes) t = x;
    const id = this.nextId++;
    // Transfer the body's memory when the body is all of it (the front door's bodies are); else a
    // copy: transferring a view would send, and detach, the whole buffer under it.
    const own = transferable(job.body);
    const bytes = own.byteLength;
    return new Promise<PreparedEvents>((resolve) => {
      const timer = setTimeout(() => this.stuck(t), this.timeoutMs);
      timer.unref();
      // Jobs in flight keep the process alive (their answers are awaited); an idle pool does not.
      if (t.pending.size === 0) t.worker.ref();
      t.pending.set(id, { resolve, bytes, timer });
      t.pendingBytes += bytes;
      t.worker.postMessage({ id, job: { ...job, body: own } }, [own.buffer as ArrayBuffer]);
    });
  }

  /** Jobs not yet answered (for tests and health). */
  get pending(): number {
    return this.threads.reduce((n, t) => n + t.pending.size, 0);
  }

  async close(): Promise<void> {
    this.closed = true;
    pools.delete(this);
    const threads = this.threads;
    this.threads = [];
    await Promise.all(threads.map((t) => this.retire(t, 'The server is shutting down; retry the request')));
  }

  private spawn(): Thread {
    const worker = new Worker(this.workerUrl, { resourceLimits: { maxOldGenerationSizeMb: PREPARE_THREAD_HEAP_MB } });
    // An idle pool never keeps the process alive by itself; close() ends the threads.
    worker.unref();
    const t: Thread = { worker, pending: new Map(), pendingBytes: 0, heapUsed: 0 };
    worker.on('message', (m: PrepareReply) => {
      if (m.heapUsed !== undefined) t.heapUsed = m.heapUsed;
      if (m.id === undefined) return;
      const p = t.pending.get(m.id);
      if (!p) return;
      t.pending.delete(m.id);
      if (t.pending.size === 0) worker.unref();
      t.pendingBytes -= p.bytes;
      clearTimeout(p.timer);
      if (m.crash !== undefined) {
        console.error('pinstream: preparing PutEvents failed', m.crash);
        p.resolve(retryable('Internal server error while reading the events; retry the request'));
      } else {
        p.resolve(m.out!);
      }
    });
    worker.on('error', (e) => {
      console.error('pinstream: a PutEvents prepare thread failed', e);
    });
    worker.on('exit', (code) => {
      if (this.closed || !this.threads.includes(t)) return;
      console.error(`pinstream: a PutEvents prepare thread stopped (exit code ${code}) with ${t.pending.size} request(s) pending; starting another`);
      this.replace(t, 'A PutEvents prepare thread stopped; retry the request');
    });
    return t;
  }

  /** A thread that let a job pass its deadline: replaced, its jobs failed. */
  private stuck(t: Thread): void {
    if (!this.threads.includes(t)) return;
    console.error(`pinstream: a PutEvents prepare thread did not answer within ${this.timeoutMs} ms; replacing it`);
    this.replace(t, `Reading the events took longer than ${this.timeoutMs} ms; retry the request`);
  }

  private replace(t: Thread, message: string): void {
    const i = this.threads.indexOf(t);
    if (i >= 0) this.threads[i] = this.spawn();
    void this.retire(t, message);
  }

  private async retire(t: Thread, message: string): Promise<void> {
    for (const p of t.pending.values()) {
      clearTimeout(p.timer);
      p.resolve(retryable(message));
    }
    t.pending.clear();
    t.pendingBytes = 0;
    await t.worker.terminate();
  }
}
