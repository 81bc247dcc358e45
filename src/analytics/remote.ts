// The main thread's side of the analytics thread (thread.ts): `AnalyticsThread` implements the
// `Analytics` interface (types.ts) by forwarding each call over a Channel, answers the thread's log
// reads from the ingest log, keeps the saved funnels (SQLite) and the retention timer (on the
// injected clock), and watches the thread. Every call has a timeout; a thread that dies fails its
// open calls with an error naming why, is restarted up to ANALYTICS_THREAD_MAX_RESTARTS times, and
// after that every call fails with that error rather than waiting.
//
// Main-thread cost of the loader, measured on the 2-core machine while three other benchmarks ran
// (load average 7-9, so absolute figures are inflated): `bench ingest --concurrency 64 --profile`
// no longer shows analytics/loader.js, DuckDBAppender or rollup frames on the request thread (on
// main they were ~25% of it: loader 10.0%, DuckDBAppender 12.0%); what is left there is logRead
// (the copy into the transferred buffer) and the log's own scanRecords. `bench analytics` prints
// the main thread's busy share during a 200k-record load: 12.4% of the load's wall time.
//
// The loader's placement: with ClickHouse every node shares one store, so exactly one node loads —
// the one the placement (src/cluster/placement.ts, job LOADER_JOB) gives the job to; its start and
// stop cross into the thread (thread.ts loaderStart/loaderStop), and a thread restarted after a
// crash resumes loading only while the job is still here. With the embedded DuckDB the store is
// this node's own: the loader always runs here, started by the thread at open, as without placement.

import { Worker } from 'node:worker_threads';
import type { Clock } from '../clock.js';
import type { Placement } from '../cluster/placement.js';
import { computeLag, type ConsumerLag, type LagState } from '../consumer/kit.js';
import type { ClickHouseConfig } from '../config/config.js';
import type { Log } from '../log/log.js';
import type { Db } from '../store/db.js';
import { sqliteMetadata, type MetadataCache } from '../store/metadata.js';
import { Channel, Transferable, type Handlers } from '../threads/channel.js';
import type { niceThisThread } from '../threads/priority.js';
import type { FilterNames } from './event-store.js';
import { FunnelStore } from './funnels.js';
import type { LoaderHealth } from './loader.js';
import { DAY_MS, RETENTION_INTERVAL_MS, type RetentionResult } from './retention.js';
import type { AppendResult, EventRow } from './store.js';
import type { PackedRead, ThreadInit, ThreadMemory } from './thread.js';
import { packRead } from './parse-thread.js';
import type { LogShare } from '../log/segment-view.js';
import type { Analytics, DashboardName, DashboardQuery, DashboardResult, DateRange, Funnel, KpiRows, KpiScope } from './types.js';

/** What the analytics thread says of its priority at open: its kernel id and nice value, or why it could not set it. */
type ThreadPriority = ReturnType<typeof niceThisThread>;

/** The Events filter list shows event types reported in this many past days (reference/pinpoint.md §5). */
export const EVENT_TYPES_DAYS = 14;
/** Filter names are those seen in this many past days. */
export const FILTER_NAMES_DAYS = 90;
/** A dashboard, KPI or filter query that has not answered in this long fails (DuckDB may still finish it). */
export const ANALYTICS_QUERY_TIMEOUT_MS = 120_000;
/** Loading work (catchUp, a history batch, retention, opening and upgrading the store) may take this long. */
export const ANALYTICS_LOAD_TIMEOUT_MS = 600_000;
/** Opening the store (with upgrades of an older one) may take this long before the start fails. */
export const ANALYTICS_OPEN_TIMEOUT_MS = 600_000;
/** Closing waits this long for the thread to finish its work and close the store. */
export const ANALYTICS_CLOSE_TIMEOUT_MS = 600_000;
/**
 * Old-generation heap of the analytics thread. What it holds is bounded by the loader: the batch
 * being stored and the one prefetched, each at most LOADER_BATCH_RECORDS records and
 * LOADER_BATCH_BYTES of payload (their parsed rows take about twice that), and a history batch.
 * A thread that would need more dies and is restarted like a crashed one.
 */
export const ANALYTICS_THREAD_HEAP_MB = 1024;
/** Times a crashed analytics thread is started again before analytics fails for good (until a restart). */
export const ANALYTICS_THREAD_MAX_RESTARTS = 3;
/** The loader's name in the placement (one per deployment: every node on one ClickHouse shares it). */
export const LOADER_JOB = 'analytics-loader';

/** The loader's lag as the main thread knows it without a call into the thread. */
export interface LoaderLag extends ConsumerLag {
  /** The loader's committed checkpoint as last reported. */
  checkpoint: number;
}

export interface AnalyticsOptions {
  dataDir: string;
  /** With share() (a segment log), the analytics thread reads it through a read-only view. */
  ingestLog: Log & { share?(): LogShare };
  db: Db;
  /** Where saved funnels are (the server's metadata store); the data directory's SQLite when absent. */
  meta?: MetadataCache;
  clock: Clock;
  retentionDays: number;
  /** DuckDB's memory limit, MB (Config.analyticsMemoryMb; store.ts STORE_MEMORY_LIMIT_MB when absent). */
  memoryLimitMb?: number;
  /** The store in ClickHouse instead of DuckDB (Config.clickhouseUrl). */
  clickhouse?: ClickHouseConfig;
  /** Start the loader loop and the retention timer (default true; tests of the store turn it off). */
  background?: boolean;
  /**
   * Where the loader runs when the store is shared (ClickHouse): placed as LOADER_JOB, so one node
   * of several loads. Ignored with DuckDB (each node's own store: its loader always runs here).
   */
  placement?: Placement;
  /** Nice value of the analytics thread (Config.analyticsNice; unchanged when absent). */
  nice?: number;
  /** CPUs the loader's parse-thread decision counts (thread.ts PARSE_THREAD_MIN_CPUS; tests force it). */
  parseThreadCpus?: number;
  /** Overrides of the timeouts above (tests of a thread that does not answer). */
  queryTimeoutMs?: number;
  loadTimeoutMs?: number;
}

type FreshHook = (fresh: readonly EventRow[]) => Promise<void>;

export class AnalyticsThread implements Analytics {
  private worker!: Worker;
  private channel!: Channel;
  /** Settles when the current thread has opened the store; calls wait for it (a restarted thread too). */
  private opened: Promise<unknown> = Promise.resolve();
  /** Settles when the current thread has ended. */
  private exited: Promise<void> = Promise.resolve();
  private readonly funnels: FunnelStore;
  private stopRetention: () => void = () => {};
  private retentionRun: Promise<void> = Promise.resolve();
  private closing = false;
  private restarts = 0;
  /** Set when analytics failed for good: every call rejects with it. */
  private failure: Error | undefined;
  /** The thread's id (tests: the loader runs off the main thread). */
  threadId = -1;
  /** The analytics thread's kernel id and nice value as it set them (Linux), or why it could not. */
  priority: ThreadPriority | undefined;
  private priorityReported = false;
  /** History hooks waiting for the thread to name the fresh rows of their batch. */
  private readonly hooks = new Map<number, { rows: readonly EventRow[]; fn: FreshHook }>();
  private nextHook = 1;
  /** Ingest-log reads this thread served for the analytics thread (0 while it reads a segment log itself, but for damaged frames). */
  mainThreadLogReads = 0;

  /** Called when the thread dies (the server logs it). */
  onCrash: (e: Error) => void = (e) => console.error(`pinstream: ${e.message}`);

  private constructor(private readonly opts: AnalyticsOptions) {
    this.funnels = new FunnelStore(opts.meta ?? sqliteMetadata(opts.db));
    this.placed = Boolean(opts.placement && opts.clickhouse && (opts.background ?? true));
    // start() returns at once: the placement's renewals must not wait for the thread to open the
    // store. stop() waits (it must not return while the loader may still write).
    if (this.placed) opts.placement!.place(LOADER_JOB, { start: () => void this.startLoader().catch((e) => this.loaderFailed(e)), stop: () => this.stopLoader() });
  }

  /** The loader is placed (ClickHouse with a placement): it runs only while the job is on this node. */
  private readonly placed: boolean;
  /** The placement has given the loader to this node (a restarted thread starts it again). */
  private loaderWanted = false;
  /** Placement starts and stops, one after another. */
  private loaderOps: Promise<void> = Promise.resolve();

  /** Whether the loader is placed on this node now (ClickHouse); always true with DuckDB's own store. */
  get loaderHere(): boolean {
    return !this.placed || this.loaderWanted;
  }

  private loaderOp(fn: () => Promise<void>): Promise<void> {
    const run = this.loaderOps.then(fn);
    this.loaderOps = run.catch(() => {});
    return run;
  }

  /** The placement's start: opens the thread if it is not yet, and starts the loader in it. */
  private startLoader(): Promise<void> {
    this.loaderWanted = true;
    return this.loaderOp(async () => {
      if (!this.loaderWanted) return;
      await this.call('loaderStart', { end: this.opts.ingestLog.endOffset(), now: this.opts.clock.now() }, this.loadMs);
    });
  }

  private loaderFailed(e: unknown): void {
    if (this.closing || !this.loaderWanted) return;
    this.onCrash(new Error(`the analytics loader did not start on this node: ${e instanceof Error ? e.message : String(e)}`));
  }

  /** The placement's stop: resolves once the loader in the thread has left its last store call. */
  private stopLoader(): Promise<void> {
    this.loaderWanted = false;
    return this.loaderOp(async () => {
      if (!this.first) return;
      await this.first.catch(() => {});
      await this.opened;
      if (this.failure || this.closing) return;
      await this.channel.call('loaderStop', {}, this.loadMs);
      // Another node loads now: this node's report of its lag is no longer news.
      this.lag = undefined;
    });
  }

  /**
   * The analytics service without its thread yet: the thread (and DuckDB in it) starts on the first
   * `ready()`, which every call makes. The server starts it so (a server listens without waiting
   * for DuckDB: booting the thread and opening the store took ~300 ms of every start) and calls
   * `ready()` itself when the log holds records to load, and before its first append (gate.ts AppendsAfter).
   */
  static deferred(opts: AnalyticsOptions): AnalyticsThread {
    return new AnalyticsThread(opts);
  }

  /** The analytics service with its thread started and the store open (tests, benchmarks). */
  static async open(opts: AnalyticsOptions): Promise<AnalyticsThread> {
    const a = new AnalyticsThread(opts);
    await a.ready();
    return a;
  }

  /** The running thread's heap limit, MB (ANALYTICS_THREAD_HEAP_MB; tests). */
  get heapLimitMb(): number | undefined {
    return this.worker?.resourceLimits?.maxOldGenerationSizeMb;
  }

  /** Whether the thread was started (by `ready()` or a call); a server with an empty log starts it on first need. */
  get started(): boolean {
    return this.first !== undefined;
  }

  /** Settles once the first thread has opened the store (and, in the background mode, checked the loader's checkpoint). */
  private first: Promise<void> | undefined;

  /**
   * Starts the thread unless it started already; resolves once the store is open and the loader's
   * checkpoint was checked against the ingest log's end (Log.checkConsumer), which must happen
   * before any new event gets an offset. A thread that cannot open the store fails analytics for
   * good (as a start that failed did before), with the reason in every later call.
   */
  ready(): Promise<void> {
    if (this.first) return this.first;
    if (this.closing) return Promise.reject(new Error('analytics is closed'));
    this.first = this.start().then(
      () => this.background(),
      (e) => {
        this.failure = new Error(`analytics is unavailable: opening the analytics store failed: ${e instanceof Error ? e.message : String(e)}`);
        this.onCrash(this.failure);
        throw this.failure;
      },
    );
    this.first.catch(() => {}); // callers see it; a server that never calls again must not crash on it
    return this.first;
  }

  /** Retention now and every RETENTION_INTERVAL_MS (with the loader, which the thread starts itself). */
  private background(): void {
    if (!(this.opts.background ?? true) || this.closing) return;
    const run = () => {
      this.retentionRun = this.retention().then(
        () => {},
        (e) => {
          if (!this.closing) console.error('pinstream: analytics retention failed', e);
        },
      );
    };
    run();
    const timer = setInterval(run, RETENTION_INTERVAL_MS);
    timer.unref();
    this.stopRetention = () => clearInterval(timer);
  }

  private get queryMs(): number {
    return this.opts.queryTimeoutMs ?? ANALYTICS_QUERY_TIMEOUT_MS;
  }
  private get loadMs(): number {
    return this.opts.loadTimeoutMs ?? ANALYTICS_LOAD_TIMEOUT_MS;
  }

  private async start(): Promise<void> {
    const init: ThreadInit = {
      dataDir: this.opts.dataDir,
      retentionDays: this.opts.retentionDays,
      background: this.opts.background ?? true,
      logEnd: this.opts.ingestLog.endOffset(),
      memoryLimitMb: this.opts.memoryLimitMb,
      clickhouse: this.opts.clickhouse,
      now: this.opts.clock.now(),
      placed: this.placed,
      // An embedded segment log: the loader reads its files in the analytics thread (ViewedLog).
      ingest: this.opts.ingestLog.share?.(),
      parseThreadCpus: this.opts.parseThreadCpus,
      ...(this.opts.nice !== undefined ? { nice: this.opts.nice } : {}),
    };
    const worker = new Worker(new URL('./thread.js', import.meta.url), { workerData: init, name: 'pinstream-analytics', resourceLimits: { maxOldGenerationSizeMb: ANALYTICS_THREAD_HEAP_MB } });
    const channel = new Channel(worker, this.handlers(), 'the analytics thread');
    this.worker = worker;
    this.channel = channel;
    /** Set when this thread is ended on purpose (a failed open), so its exit is no crash. */
    let ended = false;
    const died = (why: string) => {
      const e = new Error(`analytics thread ${why}`);
      channel.fail(e);
      if (ended || this.closing || this.worker !== worker) return;
      this.onCrash(e);
      if (this.restarts >= ANALYTICS_THREAD_MAX_RESTARTS) {
        this.failure = new Error(`analytics is unavailable: the analytics thread failed ${this.restarts + 1} times (last: ${why}); restart the server`);
        return;
      }
      this.restarts++;
      this.start().catch((err) => {
        this.failure = new Error(`analytics is unavailable: restarting the analytics thread failed: ${err instanceof Error ? err.message : String(err)}`);
        this.onCrash(this.failure);
      });
    };
    worker.on('error', (e) => died(`failed: ${e.message}`));
    this.exited = new Promise<void>((resolve) =>
      worker.on('exit', (code) => {
        resolve();
        died(`exited (code ${code})`);
      }),
    );
    // A placed loader starts with the thread only while the job is here (a restart after a crash).
    const opening = channel.call<{ threadId: number; priority?: ThreadPriority }>('open', { runLoader: this.loaderWanted }, ANALYTICS_OPEN_TIMEOUT_MS);
    this.opened = opening.catch(() => {});
    try {
      const opened = await opening;
      this.threadId = opened.threadId;
      this.priority = opened.priority;
      if (opened.priority && 'error' in opened.priority && !this.priorityReported) {
        this.priorityReported = true;
        process.stderr.write(`pinstream: analytics: the thread's priority stays as it is (${opened.priority.error})\n`);
      }
    } catch (e) {
      ended = true;
      await worker.terminate();
      throw e;
    }
  }

  /** What the thread may ask of the main thread. */
  private handlers(): Handlers {
    const log = this.opts.ingestLog;
    const progress = (loaded: LagState | undefined) => this.noteProgress(loaded);
    const clock = this.opts.clock;
    return {
      logRead: async (a: { offset: number; maxRecords?: number; maxBytes?: number; loaded?: LagState }): Promise<Transferable> => {
        this.mainThreadLogReads++;
        progress(a.loaded);
        const { records, nextOffset } = await log.read(a.offset, { maxRecords: a.maxRecords, maxBytes: a.maxBytes });
        const packed = packRead(records, nextOffset, log.endOffset(), clock.now());
        return new Transferable(packed, [packed.data, packed.meta]);
      },
      /** The loader reads the log itself (ViewedLog): only its progress comes here. */
      logProgress(a: { loaded?: LagState }) {
        progress(a.loaded);
        return { now: clock.now() };
      },
      async logWait(a: { offset: number; timeoutMs: number; loaded?: LagState }) {
        progress(a.loaded);
        const woke = await log.waitFor(a.offset, a.timeoutMs);
        return { woke, end: log.endOffset(), now: clock.now() };
      },
      checkConsumer: (a: { consumer: string; checkpoint: number }) => log.checkConsumer(a.consumer, a.checkpoint),
      memory: (m: ThreadMemory) => {
        this.lastMemory = m;
      },
      beforeInsert: async (a: { hook: number; fresh: number[] }) => {
        const h = this.hooks.get(a.hook);
        if (!h) throw new Error('history batch is no longer waiting');
        await h.fn(a.fresh.map((i) => h.rows[i]));
      },
    };
  }

  private async call<T>(method: string, args: unknown, timeoutMs: number): Promise<T> {
    await this.ready();
    await this.opened;
    if (this.failure) throw this.failure;
    if (this.closing) throw new Error('analytics is closed');
    return this.channel.call<T>(method, args, timeoutMs);
  }

  dashboard(name: DashboardName, q: DashboardQuery): Promise<DashboardResult> {
    return this.funnelsOf(q).then((funnels) => this.call('dashboard', { name, q, now: this.opts.clock.now(), funnels }, this.queryMs));
  }

  /** The same dashboard computed from `events` only, never the rollups (tests compare the two). */
  dashboardFromEvents(name: DashboardName, q: DashboardQuery): Promise<DashboardResult> {
    return this.funnelsOf(q).then((funnels) => this.call('dashboard', { name, q, now: this.opts.clock.now(), funnels, fromEvents: true }, this.queryMs));
  }

  private async funnelsOf(q: DashboardQuery): Promise<Funnel[]> {
    return typeof q?.appId === 'string' ? this.funnels.list(q.appId) : [];
  }

  eventTypes(appId: string, days = EVENT_TYPES_DAYS): Promise<string[]> {
    return this.call('eventTypes', { appId, sinceMs: this.opts.clock.now() - days * DAY_MS }, this.queryMs);
  }

  filterNames(appId: string): Promise<FilterNames> {
    return this.call('filterNames', { appId, sinceMs: this.opts.clock.now() - FILTER_NAMES_DAYS * DAY_MS }, this.queryMs);
  }

  /** Rows of one read-only statement on the DuckDB store, as DuckDB's getRowsJS gives them (tests). */
  query(sql: string, params?: Record<string, unknown> | unknown[]): Promise<unknown[][]> {
    return this.call('query', { sql, params }, this.queryMs);
  }

  listFunnels(appId: string): Promise<Funnel[]> {
    return this.funnels.list(appId);
  }

  saveFunnel(appId: string, f: Omit<Funnel, 'id'> & { id?: string }): Promise<Funnel> {
    return this.funnels.save(appId, f);
  }

  deleteFunnel(appId: string, id: string): Promise<boolean> {
    return this.funnels.delete(appId, id);
  }

  kpi(scope: KpiScope, name: string, range: DateRange): Promise<KpiRows> {
    return this.call('kpi', { scope, name, range }, this.queryMs);
  }

  catchUp(): Promise<void> {
    return this.call('catchUp', { end: this.opts.ingestLog.endOffset() }, this.loadMs);
  }

  /**
   * The loader's lag (computeLag) from the state it sent with its latest read or wait: records not
   * yet loaded (at most one batch stale, so an upper bound while a batch commits; exact while it
   * waits) and the age of the oldest of them. Synchronous: /health must answer while the thread is
   * inside a long DuckDB call. Undefined until the loader has reported once, and on a node the
   * placement has not given the loader to (ClickHouse: another node loads).
   */
  loaderLag(): LoaderLag | undefined {
    if (this.lag === undefined) return undefined;
    return { checkpoint: this.lag.checkpoint, ...computeLag(this.lag, this.opts.ingestLog.endOffset(), this.opts.clock.now()) };
  }

  private lag: LagState | undefined;

  private lastMemory: ThreadMemory | undefined;

  /**
   * The analytics thread's memory as of its latest report (every MEMORY_REPORT_MS): its V8 heap
   * and DuckDB's. Synchronous, like loaderLag; undefined until the thread has reported once.
   */
  memory(): ThreadMemory | undefined {
    return this.lastMemory;
  }

  private noteProgress(loaded: LagState | undefined): void {
    if (loaded && Number.isFinite(loaded.checkpoint) && this.loaderHere) this.lag = loaded;
  }

  /** The loader's health, whether it runs on this node, and the thread it runs on. */
  loaderHealth(): Promise<LoaderHealth & { running: boolean; threadId: number }> {
    return this.call('loaderHealth', { end: this.opts.ingestLog.endOffset(), now: this.opts.clock.now() }, this.queryMs);
  }

  retention(): Promise<RetentionResult> {
    return this.call('retention', { now: this.opts.clock.now() }, this.loadMs);
  }

  rowCount(): Promise<number> {
    return this.call('rowCount', {}, this.queryMs);
  }

  /**
   * Imported history (src/history): EventStore.appendNew in the thread. `beforeInsert` runs here,
   * on the main thread, with the batch's fresh rows, inside the thread's open transaction.
   */
  async appendNew(rows: readonly EventRow[], beforeInsert?: FreshHook): Promise<AppendResult> {
    if (!beforeInsert) return this.call('appendNew', { rows }, this.loadMs);
    const hook = this.nextHook++;
    this.hooks.set(hook, { rows, fn: beforeInsert });
    try {
      return await this.call('appendNew', { rows, hook }, this.loadMs);
    } finally {
      this.hooks.delete(hook);
    }
  }

  /**
   * Ends the thread as a crash would (tests of what callers see then). Terminating a thread while
   * DuckDB works in it aborts the process (a native error during teardown), so close() never does.
   */
  async kill(): Promise<void> {
    await this.worker.terminate();
  }

  /** Stops the loader and closes the store in the thread; the thread then ends by itself. */
  async close(): Promise<void> {
    if (this.closing) return;
    // The placed loader is handed over before the thread goes (the server's placement.close did
    // this already; a placement that outlives this service is not left with a job on a closed thread).
    if (this.placed) await this.opts.placement!.release(LOADER_JOB).catch(() => {});
    if (!this.first) {
      // Never started: no thread, no store to close.
      this.closing = true;
      return;
    }
    // A thread still opening the store is let finish first (ending it inside DuckDB would abort the process).
    await this.first.catch(() => {});
    this.stopRetention();
    await this.retentionRun;
    const worker = this.worker;
    const exited = this.exited;
    try {
      if (!this.failure) await this.channel.call('close', {}, ANALYTICS_CLOSE_TIMEOUT_MS);
    } finally {
      this.closing = true;
      this.channel.fail(new Error('analytics is closed'));
    }
    // The thread closes its port after answering, which ends it.
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([exited.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ANALYTICS_CLOSE_TIMEOUT_MS)))]);
    clearTimeout(timer);
    if (!ended) worker.unref();
  }
}
