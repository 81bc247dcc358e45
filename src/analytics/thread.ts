// The analytics thread (a node:worker_threads Worker started by remote.ts): owns the analytics
// event store (event-store.ts: the embedded DuckDB, or ClickHouse when PINSTREAM_CLICKHOUSE_URL is
// set), the loader that follows the ingest log, retention runs and every dashboard, KPI and
// history-import write (history import: DuckDB only), so none of their JavaScript (record
// parsing, appender calls, result conversion) takes turns with the requests on the main thread. The main thread keeps the ingest
// log, the SQLite metadata (saved funnels) and the clock; it sends what a call needs (the clock's
// now, an app's funnels) with the call.
//
// How the thread reads the ingest log: it asks the main thread (RemoteLog below), which reads the
// records with the log's own `read` and packs one batch's payloads into one ArrayBuffer that is
// transferred, not copied. Chosen over the thread opening the segment files itself because the log
// has one owner that repairs damage, cuts torn tails, rebuilds indexes and trims segments at
// retention: a second reader would need the committed end published and a guard against a segment
// deleted under it, in src/log/segment-log.ts that another change rewrites. What it costs the main
// thread is one `log.read` and one memcpy per batch of up to LOADER_BATCH_RECORDS records (measured:
// see remote.ts); if that share matters later, the next step is the thread reading segment files
// itself once the log publishes its committed end. In flight: the batch being stored and the one
// prefetched (loader.ts), each at most LOADER_BATCH_BYTES.
//
// Parsing (with at least PARSE_THREAD_MIN_CPUS CPUs, see there): a batch of at least
// PARSE_THREAD_MIN_RECORDS records is handed on, buffers as the main
// thread sent them, to the loader's parse thread (parse-thread.ts), which answers with packed rows
// (row-pack.ts); this thread then only does the rollups, the appender and DuckDB's calls. A parse
// thread that fails is not used again and parsing comes back here.
//
// Where the loader runs: with the embedded DuckDB (one store per node) it always runs here, started
// at open. With ClickHouse (one store shared by every node) the main thread places it
// (src/cluster/placement.ts, job 'analytics-loader') and starts and stops it with `loaderStart` and
// `loaderStop`; open() then starts it only when the placement already gave it to this node (a
// thread restarted after a crash).

import { availableParallelism } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { niceThisThread } from '../threads/priority.js';
import { nameThisThread } from '../threads/thread-name.js';
import type { Clock } from '../clock.js';
import type { LagState } from '../consumer/kit.js';
import type { ClickHouseConfig } from '../config/config.js';
import type { Log, LogRecord, OffsetGap, ReadOptions, ReadResult } from '../log/log.js';
import { SegmentLogView, type LogShare } from '../log/segment-view.js';
import { Channel } from '../threads/channel.js';
import { DuckDbEventStore } from './duckdb-event-store.js';
import { HISTORY_IMPORT_CLICKHOUSE_MESSAGE, type AnalyticsEventStore } from './event-store.js';
import { AnalyticsLoader, parseRecords, type ReadBatch } from './loader.js';
import { ParseThread, packRead, unpackRead } from './parse-thread.js';
import { openEventStore } from './open-event-store.js';
import { applyRetention } from './retention.js';
import type { EventRow, EventStore } from './store.js';
import type { DashboardName, DashboardQuery, DateRange, Funnel, KpiScope } from './types.js';

/** How long the thread waits for the main thread to answer a log read or a history hook. */
export const MAIN_CALL_TIMEOUT_MS = 60_000;
/**
 * Smallest batch handed to the parse thread: a live trickle of a few records is parsed here, a
 * hop to another thread would only add latency.
 */
export const PARSE_THREAD_MIN_RECORDS = 1000;
/**
 * The parse thread is used only with at least this many CPUs. It moves ~10 µs/record off the
 * analytics thread (its CPU per record went from 31-36 µs to 25-34 µs in `bench analytics`) but
 * adds about as much in packing, unpacking and the copy; on the 2-core machine, where the main
 * thread, the analytics thread and DuckDB's threads already share both cores, the load took as
 * long or longer (base 19.6-25.2 s, with the parse thread 22.8-27.0 s for 200k records; process
 * CPU 72-83 against 86-106 µs/record). With spare cores the parse runs beside the rest.
 */
export const PARSE_THREAD_MIN_CPUS = 4;
/** How often the thread tells the main thread its memory (its V8 heap, DuckDB's buffer pool) for /metrics. */
export const MEMORY_REPORT_MS = 1000;

/** The thread's memory as it last reported it (bytes). */
export interface ThreadMemory {
  heapUsed: number;
  heapTotal: number;
  /** Memory outside the heap held by the thread's objects (the transferred log batches). */
  external: number;
  /** DuckDB's memory (duckdb_memory(): buffer pool and allocations it tracks). */
  duckdb: number;
  /** What DuckDB has spilled to its temporary files (events.duckdb.tmp), on disk, not in memory. */
  duckdbSpilled: number;
}

/** DuckDB's tracked memory and spilled bytes. */
async function duckdbMemory(conn: Awaited<ReturnType<EventStore['connect']>>): Promise<{ used: number; spilled: number }> {
  const rows = (await conn.runAndReadAll('SELECT coalesce(sum(memory_usage_bytes), 0)::DOUBLE, coalesce(sum(temporary_storage_bytes), 0)::DOUBLE FROM duckdb_memory()')).getRowsJS();
  return { used: Number(rows[0][0]), spilled: Number(rows[0][1]) };
}

export interface ThreadInit {
  dataDir: string;
  retentionDays: number;
  /** Start the loader loop (default true; tests of the store turn it off). */
  background: boolean;
  /** The ingest log's end when the thread starts. */
  logEnd: number;
  /** DuckDB's memory limit, MB (store.ts STORE_MEMORY_LIMIT_MB when absent). */
  memoryLimitMb?: number;
  /** ClickHouse instead of DuckDB (Config.clickhouseUrl). */
  clickhouse?: ClickHouseConfig;
  /** The main thread's clock at the start (the loader's lag is in its time). */
  now: number;
  /** CPUs the parse thread decision counts (default os.availableParallelism(); tests force it). */
  parseThreadCpus?: number;
  /** The main thread places the loader (ClickHouse): open() starts it only when `open` says so. */
  placed?: boolean;
  /** The ingest log's shared state when it is a segment log: the loader reads its files itself. */
  ingest?: LogShare;
  /** Nice value of this thread, set before the parse thread starts (it inherits it); absent: unchanged. */
  nice?: number;
}


/** One batch of log records as the main thread sends it: payloads back to back in `data`. */
export interface PackedRead {
  data: ArrayBuffer;
  /** Per record: offset, timestamp, payload length (Float64, 3 per record). */
  meta: ArrayBuffer;
  nextOffset: number;
  end: number;
  /** The main thread's clock at the answer. */
  now: number;
}

/**
 * The main thread's clock as last told (with each log answer and call), moved on by this thread's
 * monotonic time since: the loader's lag inputs are then in the time base the main thread
 * computes the lag in, and the records' append times are.
 */
export class MainClock implements Clock {
  private at = performance.now();
  constructor(private base: number) {}
  seen(now: number): void {
    if (typeof now !== 'number' || !Number.isFinite(now)) return;
    this.base = now;
    this.at = performance.now();
  }
  now(): number {
    return this.base + (performance.now() - this.at);
  }
}

/** The ingest log as the thread sees it: reads and waits are answered by the main thread. */
export class RemoteLog implements Pick<Log, 'read' | 'endOffset' | 'waitFor' | 'checkConsumer'> {
  constructor(
    protected readonly channel: Channel,
    private end: number,
    readonly clock: MainClock = new MainClock(Date.now()),
  ) {}

  /**
   * The loader's lag inputs (its committed checkpoint among them), sent with every read and wait:
   * the main thread answers /health's loader lag from them without a call into this thread (which
   * may be inside a commit).
   */
  progress: () => LagState | undefined = () => undefined;

  /** The main thread tells the end it saw (and its clock) with each answer and each catchUp. */
  seen(end: number, now?: number): void {
    if (end > this.end) this.end = end;
    if (now !== undefined) this.clock.seen(now);
  }

  endOffset(): number {
    return this.end;
  }

  async read(offset: number, options?: ReadOptions): Promise<ReadResult> {
    const r = await this.readPacked(offset, options);
    return { records: unpackRead(r), nextOffset: r.nextOffset };
  }

  /** A read as the main thread packed it (handed on to the parse thread as it is). */
  async readPacked(offset: number, options?: ReadOptions): Promise<PackedRead> {
    const r = await this.channel.call<PackedRead>('logRead', { offset, ...options, loaded: this.progress() }, MAIN_CALL_TIMEOUT_MS);
    this.seen(r.end, r.now);
    return r;
  }

  async waitFor(offset: number, timeoutMs: number): Promise<boolean> {
    const r = await this.channel.call<{ woke: boolean; end: number; now: number }>('logWait', { offset, timeoutMs, loaded: this.progress() }, timeoutMs + MAIN_CALL_TIMEOUT_MS);
    this.seen(r.end, r.now);
    return r.woke;
  }

  checkConsumer(consumer: string, checkpoint: number): Promise<OffsetGap | undefined> {
    return this.channel.call('checkConsumer', { consumer, checkpoint }, MAIN_CALL_TIMEOUT_MS);
  }
}


/**
 * The embedded ingest log read by this thread itself, through a read-only view of its segment
 * files (log/segment-view.ts): the loader's batches (up to LOADER_BATCH_BYTES) are then never read,
 * copied and packed on the thread that answers requests, which held it for hundreds of ms a batch
 * and kept ~100 MB of array buffers there. The main thread only hears the loader's progress (a
 * small message per read and wait, answered with its clock). A frame the view cannot use is read
 * through the main thread (RemoteLog), which repairs and reports it.
 */
export class ViewedLog extends RemoteLog {
  constructor(
    channel: Channel,
    end: number,
    clock: MainClock,
    private readonly view: SegmentLogView,
  ) {
    super(channel, end, clock);
  }

  static open(channel: Channel, share: LogShare, end: number, clock: MainClock): ViewedLog {
    const remote = new RemoteLog(channel, end, clock);
    const view = new SegmentLogView(share, { read: (o, opts) => remote.read(o, opts), checkConsumer: (c, cp) => remote.checkConsumer(c, cp) });
    return new ViewedLog(channel, end, clock, view);
  }

  override endOffset(): number {
    return Math.max(super.endOffset(), this.view.endOffset());
  }

  /** Records as the view read them: parsed on this thread, they need no packing (packRead and its copy were ~6% of this thread). */
  override async read(offset: number, options?: ReadOptions): Promise<ReadResult> {
    this.report();
    return this.view.read(offset, options);
  }

  override async readPacked(offset: number, options?: ReadOptions): Promise<PackedRead> {
    this.report();
    const { records, nextOffset } = await this.view.read(offset, options);
    return packRead(records, nextOffset, this.view.endOffset(), this.clock.now());
  }

  override waitFor(offset: number, timeoutMs: number): Promise<boolean> {
    this.report();
    return this.view.waitFor(offset, timeoutMs);
  }

  /** The lag inputs to the main thread (as RemoteLog's reads carry them), its clock back. */
  private report(): void {
    this.channel
      .call<{ now: number }>('logProgress', { loaded: this.progress() }, MAIN_CALL_TIMEOUT_MS)
      .then((r) => this.clock.seen(r.now))
      .catch(() => undefined);
  }

  close(): Promise<void> {
    return this.view.close();
  }
}

/** The main thread's clock as of the call. */
const at = (now: number): Clock => ({ now: () => now });

async function main(): Promise<void> {
  nameThisThread('analytics');
  const port = parentPort!;
  const init = workerData as ThreadInit;
  let store: AnalyticsEventStore | undefined;
  let loader: AnalyticsLoader | undefined;
  let log: RemoteLog | undefined;
  let memoryTimer: NodeJS.Timeout | undefined;
  const parseCpus = init.parseThreadCpus ?? availableParallelism();
  /** The loader's parse thread, started with the first batch large enough to need it. */
  let parser: ParseThread | undefined;
  /** Batches of at least PARSE_THREAD_MIN_RECORDS are parsed on the parse thread, smaller ones here. */
  const readBatch =
    (from: RemoteLog): ReadBatch =>
    async (offset, loadedTo, limits) => {
      if (parseCpus < PARSE_THREAD_MIN_CPUS || parser?.usable === false) {
        const { records, nextOffset } = await from.read(offset, limits);
        return parseRecords(records, offset, nextOffset, loadedTo);
      }
      const packed = await from.readPacked(offset, limits);
      const count = packed.meta.byteLength / 24;
      if (count >= PARSE_THREAD_MIN_RECORDS) {
        parser ??= new ParseThread();
        if (parser.usable) return parser.parse(packed, offset, loadedTo);
      }
      return parseRecords(unpackRead(packed), offset, packed.nextOffset, loadedTo);
    };
  /** A connection of its own for the memory reports (closed before the store; DuckDB only). */
  let statsConn: Awaited<ReturnType<EventStore['connect']>> | undefined;
  /** The store's reopen count when statsConn was made. */
  let statsReopens = 0;
  /** The memory reports run (from open until close). */
  let reportingOn = false;
  let reporting: Promise<void> = Promise.resolve();
  /** Reports the thread's memory now and every MEMORY_REPORT_MS (one report in flight at a time). */
  const reportMemory = async () => {
    try {
      const h = getHeapStatistics();
      if (statsConn && store instanceof DuckDbEventStore && store.store.reopens !== statsReopens) {
        // The store was opened again (DuckDB had invalidated it): the old connection is dead.
        try {
          statsConn.closeSync();
        } catch {
          // Dead already.
        }
        statsConn = await store.store.connect();
        statsReopens = store.store.reopens;
      }
      const d = statsConn ? await duckdbMemory(statsConn) : { used: 0, spilled: 0 };
      const m: ThreadMemory = { heapUsed: h.used_heap_size, heapTotal: h.total_heap_size, external: h.external_memory, duckdb: d.used, duckdbSpilled: d.spilled };
      await channel.call('memory', m, MAIN_CALL_TIMEOUT_MS);
    } catch {
      // A report lost (closing, a busy main thread) is replaced by the next one.
    }
    if (reportingOn) memoryTimer = setTimeout(() => (reporting = reportMemory()), MEMORY_REPORT_MS).unref();
  };
  const ready = (): { store: AnalyticsEventStore; loader: AnalyticsLoader; log: RemoteLog } => {
    if (!store || !loader || !log) throw new Error('analytics thread is not open');
    return { store, loader, log };
  };
  /** The DuckDB store, for what only DuckDB has (raw SQL, history import's appendNew); else `refusal`. */
  const duck = (refusal: string): EventStore => {
    const s = ready().store;
    if (!(s instanceof DuckDbEventStore)) throw new Error(refusal);
    return s.store;
  };
  const channel: Channel = new Channel(
    port,
    {
      async open(a: { runLoader?: boolean } = {}) {
        // Before the parse thread starts: it takes this thread's priority.
        const priority = init.nice !== undefined ? niceThisThread(init.nice) : undefined;
        store = await openEventStore({ dataDir: init.dataDir, clickhouse: init.clickhouse, memoryLimitMb: init.memoryLimitMb });
        log = init.ingest ? ViewedLog.open(channel, init.ingest, init.logEnd, new MainClock(init.now)) : new RemoteLog(channel, init.logEnd, new MainClock(init.now));
        loader = new AnalyticsLoader(log as unknown as Log, store, undefined, { clock: log.clock, readBatch: readBatch(log) });
        const l = loader;
        log.progress = () => l.lagState();
        if (init.background) {
          await loader.checkCheckpoint();
          if (!init.placed || a.runLoader) loader.start();
        }
        if (store instanceof DuckDbEventStore) {
          store.store.onReopen = (cause) => process.stderr.write(`pinstream: analytics: DuckDB invalidated its database (${cause.message.split('\n')[0]}); opened it again\n`);
          statsReopens = store.store.reopens;
          statsConn = await store.store.connect();
        }
        reportingOn = true;
        reporting = reportMemory();
        return { threadId, ...(priority ? { priority } : {}) };
      },
      dashboard(a: { name: DashboardName; q: DashboardQuery; now: number; funnels: Funnel[]; fromEvents?: boolean }) {
        return ready().store.dashboard(a.name, a.q, { clock: at(a.now), retentionDays: init.retentionDays, funnels: () => a.funnels, fromEvents: a.fromEvents });
      },
      kpi(a: { scope: KpiScope; name: string; range: DateRange }) {
        return ready().store.kpi(a.scope, a.name, a.range);
      },
      eventTypes(a: { appId: string; sinceMs: number }) {
        return ready().store.eventTypes(a.appId, a.sinceMs);
      },
      filterNames(a: { appId: string; sinceMs: number }) {
        return ready().store.filterNames(a.appId, a.sinceMs);
      },
      /** Rows of one read-only DuckDB SQL statement (tests read `events`). */
      query(a: { sql: string; params?: Record<string, unknown> | unknown[] }) {
        return withConnection(duck(`query needs the DuckDB analytics store (this one is ${store?.kind})`), async (conn) => (await conn.runAndReadAll(a.sql, a.params as never)).getRowsJS());
      },
      async catchUp(a: { end: number }) {
        const r = ready();
        r.log.seen(a.end);
        await r.loader.catchUp();
      },
      loaderHealth(a: { end: number; now?: number }) {
        const r = ready();
        r.log.seen(a.end, a.now);
        return { ...r.loader.health(), running: r.loader.running, threadId };
      },
      /** The placement gave the loader to this node (ClickHouse): it starts from the store's checkpoint. */
      async loaderStart(a: { end: number; now?: number }) {
        const r = ready();
        r.log.seen(a.end, a.now);
        // The checkpoint may have moved on while another node loaded.
        await r.loader.checkCheckpoint();
        r.loader.start();
      },
      /** The placement took the loader away (or this node leaves): resolves once it no longer writes. */
      async loaderStop() {
        await ready().loader.stop();
      },
      retention(a: { now: number }) {
        return applyRetention(ready().store, at(a.now), init.retentionDays);
      },
      /** History import (src/history): `hook` set means the main thread wants the fresh rows (by index) before the insert. */
      appendNew(a: { rows: EventRow[]; hook?: number }) {
        const rows = a.rows;
        const hook = a.hook;
        const duckdb = duck(HISTORY_IMPORT_CLICKHOUSE_MESSAGE);
        if (hook === undefined) return duckdb.appendNew(rows);
        const index = new Map(rows.map((r, i) => [r, i]));
        return duckdb.appendNew(rows, (fresh) => channel.call('beforeInsert', { hook, fresh: fresh.map((r) => index.get(r)!) }, MAIN_CALL_TIMEOUT_MS));
      },
      rowCount() {
        return ready().store.rowCount();
      },
      async close() {
        const conn = statsConn;
        statsConn = undefined;
        reportingOn = false;
        clearTimeout(memoryTimer);
        await reporting;
        conn?.closeSync();
        await loader?.stop();
        if (log instanceof ViewedLog) await log.close();
        await parser?.close();
        parser = undefined;
        await store?.close();
        store = undefined;
        loader = undefined;
        // After the answer is posted: with its calls dropped (their timers) and its port closed,
        // the thread has nothing left and ends.
        setImmediate(() => {
          channel.fail(new Error('analytics thread is closed'));
          port.close();
        });
      },
    },
    'the main thread',
  );
}

function withConnection<T>(store: EventStore, fn: (conn: Awaited<ReturnType<EventStore['connect']>>) => Promise<T>): Promise<T> {
  return store.withConnection(fn);
}

if (parentPort) void main();
