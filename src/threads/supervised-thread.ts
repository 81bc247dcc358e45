// A worker thread with a typed channel (channel.ts), watched: when it dies its open
// calls fail at once with an error naming why, and it is started again, up to `maxRestarts` times
// (then every call fails with that error until the server restarts). `onRestart` runs against the
// new thread before calls made meanwhile go out, so state the thread held (running workers) can
// be set up again. Used by the consumers thread (src/delivery/), the Firehose thread and the
// Firehose build thread (src/firehose/).

import { Worker } from 'node:worker_threads';
import { Channel, type Handlers } from './channel.js';

export interface SupervisedThreadOptions {
  /** The thread's module (a URL relative to its caller's import.meta.url). */
  url: URL;
  name: string;
  workerData: unknown;
  /** What the thread may call on this side. */
  handlers: Handlers;
  maxRestarts: number;
  /** Called once per death, before any restart (the server logs it). */
  onDeath?: (e: Error) => void;
  /** Runs after a restart, before calls made meanwhile go out. */
  onRestart?: () => Promise<void>;
}

export class SupervisedThread {
  private worker!: Worker;
  private channel!: Channel;
  private restarts = 0;
  private closing = false;
  /** Set when the thread died for good. */
  failure: Error | undefined;
  /** Settles once the current thread is ready for calls (after onRestart). */
  private ready: Promise<void> = Promise.resolve();
  threadId = -1;

  constructor(private readonly o: SupervisedThreadOptions) {
    this.spawn();
  }

  /** Calls `method` in the thread (after a restart in progress has set it up again). */
  async call<T>(method: string, args: unknown, timeoutMs: number, transfer: readonly ArrayBuffer[] = []): Promise<T> {
    if (this.failure) throw this.failure;
    await this.ready;
    return this.channel.call<T>(method, args, timeoutMs, transfer);
  }

  /** Calls the current thread without waiting for a restart's set-up (onRestart itself uses it). */
  callNow<T>(method: string, args: unknown, timeoutMs: number): Promise<T> {
    return this.channel.call<T>(method, args, timeoutMs);
  }

  /** Asks the thread to close (`method`, if given), then ends it. */
  async close(method?: string, timeoutMs = 30_000): Promise<void> {
    this.closing = true;
    await this.ready.catch(() => undefined);
    if (method) await this.channel.call(method, {}, timeoutMs).catch(() => undefined);
    await this.worker.terminate();
  }

  /** Ends the thread as a crash would (tests). */
  crash(): Promise<number> {
    return this.worker.terminate();
  }

  private spawn(): void {
    const worker = new Worker(this.o.url, { workerData: this.o.workerData, name: this.o.name });
    const channel = new Channel(worker, this.o.handlers, `the ${this.o.name} thread`);
    this.worker = worker;
    this.channel = channel;
    this.threadId = worker.threadId;
    let gone = false;
    const died = (why: string) => {
      if (gone) return;
      gone = true;
      const e = new Error(`${this.o.name} thread ${why}`);
      channel.fail(e);
      if (this.closing) return;
      this.o.onDeath?.(e);
      if (this.restarts >= this.o.maxRestarts) {
        this.failure = new Error(`${e.message}; not restarted (it died ${this.restarts + 1} times)`);
        return;
      }
      this.restarts++;
      this.spawn();
      this.ready = (this.o.onRestart?.() ?? Promise.resolve()).catch((err: Error) => this.o.onDeath?.(err));
    };
    worker.on('error', (err) => died(`failed: ${err.message}`));
    worker.on('exit', (code) => died(`exited (code ${code})`));
  }
}
