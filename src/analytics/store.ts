// The analytics event store: one DuckDB file (`<dataDir>/analytics/events.duckdb`) holding the
// `events` table (EVENTS_DDL), the activity rollups and endpoint profiles (rollup.ts) and the loader's
// checkpoint. Opening a store written by an earlier version adds what it lacks (the messaging
// columns, the profiles) from its rows. Owns
// opening the database, the bulk append path, idempotency and deleting old rows; it does not read
// the ingest log (loader.ts) or decide what a metric means (dashboards/).
//
// Idempotency by (app_id, event_key):
// 1. The loader's checkpoint (next ingest-log offset) is written in the SAME DuckDB transaction
//    as the rows and rollups it covers, so after a crash either all are there or none: a restart
//    never re-reads records that were already stored (test/analytics-store.test.ts kills a loader
//    between append and commit).
// 2. The checkpoint row also keeps `loaded_to`, the highest offset ever committed. When the next
//    offset is moved back by hand (a replay), the loader skips records below `loaded_to`: they are
//    stored already. So no lookup of stored keys is needed, which was the slow part of loading.
// 3. A batch is deduplicated within itself (the same event id twice within one batch of the log).
//    An event id repeated beyond the ingest path's own dedup window (about a million events later)
//    is in a later batch and is stored twice, as event streams deliver it twice.
//
// Bulk path: rows go through a DuckDB appender straight into `events`, typed in JS (timestamps as
// microseconds, the day as days since the epoch, JSON columns as their text). Measured against the
// earlier path (appender into a staging table, then INSERT … SELECT converting and anti-joining
// the stored rows): see the measurements below.

import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { CHUNK_ROWS, appendChunks, type ChunkColumn } from './chunks.js';
import { ActivityRollup, DAY_MS, PROFILE_BACKFILL, ROLLUP_DDL, deleteRollupsBefore } from './rollup.js';
import { backfillCampaignDays } from './campaign-rollup.js';
import { EVENTS_DDL, EVENTS_MESSAGING_COLUMNS } from './types.js';
import { uniqueRows } from './event-store.js';

// Measured by bench/analytics.ts on the 2-core dev machine (noisy: other work ran alongside):
//   loader from a real ingest log (200k records, every id new): 27.6k records/s with staging + anti-
//   join merge, 35.0k appending straight into events with the rollups and parsing the next batch
//   during COMMIT; appending 10M synthetic rows with rollups: 44.7k rows/s. Adding the endpoint
//   profiles (rollup.ts) and messaging columns: loader 32.7k records/s, 10M rows 35.7k rows/s; the
//   profile merge alone costs about a quarter of the loader rate (A/B on 200k records: 35.6k
//   without, 24.2k-28.5k with). STORE_CHECKPOINT_THRESHOLD 128 MiB (a checkpoint every few batches,
//   not every batch): loader 32.4k-33.1k records/s including the final checkpoint (was 24-28k on the
//   same machine), 10M rows with the campaign rollup 36.2k-40.0k rows/s. Tried and dropped: profiles
//   merged in JS from an in-memory copy (+1 s main-thread time per 200k records), parsing on a
//   worker thread (+2 s CPU on 2 cores, slower). Since then the whole loader and store moved to the
//   analytics thread (thread.ts) to free the request thread, and rows go in by data chunks
//   (appendRows): 200k records loaded at 8.4k records/s = 1.19x the ingest rate measured in the same
//   run, on a machine at load average 8-9 (other benchmarks running): not comparable to the above.

/**
 * WAL size at which a COMMIT also checkpoints (DuckDB's default is 16 MiB). A 50k-record batch writes
 * more WAL than that, so with the default every batch was checkpointed on its own, re-compressing the
 * partly filled row group each time: 8 batches of 50k rows took 2.9 s of COMMIT, against 0.8 s of
 * COMMIT plus 0.6 s for the checkpoints with 128 MiB. The cost is a longer WAL replay after a crash.
 */
export const STORE_CHECKPOINT_THRESHOLD = '128MiB';
/**
 * DuckDB's memory for the store when the caller names none (buffer pool and operators; it spills to
 * `events.duckdb.tmp`). DuckDB's default is 80% of the machine's RAM, and it keeps what it read: a
 * 10-million-record history import grew the server to 4 GB (1 GB at 1 million), so memory followed
 * the data. The server passes Config.analyticsMemoryMb (PINSTREAM_ANALYTICS_MEMORY_MB).
 */
export const STORE_MEMORY_LIMIT_MB = 1024;

/** One `events` row before conversion: times are epoch milliseconds, JSON columns are JSON text. */
export interface EventRow {
  appId: string;
  eventKey: string;
  eventType: string;
  eventTime: number;
  arrivalTime: number;
  endpointId: string;
  userId: string | null;
  endpointCreated: number | null;
  sessionId: string | null;
  sessionStart: number | null;
  channel: string | null;
  platform: string | null;
  platformVersion: string | null;
  appVersion: string | null;
  make: string | null;
  model: string | null;
  country: string | null;
  attributes: string;
  metrics: string;
  endpointAttributes: string;
  campaignId: string | null;
  campaignActivityId: string | null;
  treatmentId: string | null;
  journeyId: string | null;
  journeyActivityId: string | null;
  /** The attribute as json_extract_string reads it (strings as they are, '' included). */
  campaignSendStatus: string | null;
  journeySendStatus: string | null;
  deliveryType: string | null;
  journeyActivityType: string | null;
}

export interface AppendResult {
  /** Rows that reached the table. */
  inserted: number;
  /** Rows dropped because their (app_id, event_key) was repeated in the batch. */
  duplicates: number;
}

export interface Checkpoint {
  /** First ingest-log offset the reader reads next. */
  next: number;
  /** Every record below this offset has been stored (or dropped as a duplicate) once. */
  loadedTo: number;
}

/** Where the loader's checkpoint lives inside the store (one row per reader name). */
const META_DDL = [
  `CREATE TABLE IF NOT EXISTS loader_checkpoints (name VARCHAR PRIMARY KEY, next_offset BIGINT NOT NULL)`,
  `ALTER TABLE loader_checkpoints ADD COLUMN IF NOT EXISTS loaded_to BIGINT`,
];

export class EventStore {
  private constructor(
    readonly path: string,
    private instance: DuckDBInstance,
    /** The one writer: the loader and retention take turns on it through `exclusive`. */
    private writer: DuckDBConnection,
    private readonly options: { memoryLimitMb?: number },
  ) {}

  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private rollup = new ActivityRollup();
  /**
   * Set when DuckDB invalidated the database: after a fatal error (a checkpoint that found the disk
   * full) every statement of that instance fails until it is opened again. The next writer turn or
   * connection reopens it from the file and its write-ahead log (committed batches are all there,
   * and the loader's checkpoint with them); while that fails (the disk still full) the caller gets
   * the error and retries as for any store failure.
   */
  private invalid: Error | undefined;
  /** Times the database was opened again after DuckDB invalidated it. */
  reopens = 0;
  /** Told once per reopen (the analytics thread logs it). */
  onReopen: ((cause: Error) => void) | undefined;

  /**
   * Test seam for crash tests: awaited after a batch's rows, rollups and checkpoint are written and
   * before COMMIT (a child process stops here and is killed).
   */
  beforeCommit: (() => Promise<void>) | undefined;

  static async open(dataDir: string, options: { memoryLimitMb?: number } = {}): Promise<EventStore> {
    const dir = join(dataDir, 'analytics');
    mkdirSync(dir, { recursive: true });
    const path = join(dir, 'events.duckdb');
    const { instance, writer } = await EventStore.openFile(path, options);
    return new EventStore(path, instance, writer, options);
  }

  /** Opens the database file with the writer connection, and brings its schema up to date. */
  private static async openFile(path: string, options: { memoryLimitMb?: number }): Promise<{ instance: DuckDBInstance; writer: DuckDBConnection }> {
    const instance = await DuckDBInstance.create(path, { checkpoint_threshold: STORE_CHECKPOINT_THRESHOLD, memory_limit: `${options.memoryLimitMb ?? STORE_MEMORY_LIMIT_MB}MiB` });
    const writer = await instance.connect();
    const hadProfiles = (await writer.runAndReadAll(`SELECT 1 FROM duckdb_tables() WHERE table_name = 'endpoint_profiles'`)).getRowsJS().length > 0;
    const hadEvents = (await writer.runAndReadAll(`SELECT 1 FROM duckdb_tables() WHERE table_name = 'events'`)).getRowsJS().length > 0;
    const hadCampaignDays = (await writer.runAndReadAll(`SELECT 1 FROM duckdb_tables() WHERE table_name = 'campaign_days'`)).getRowsJS().length > 0;
    const hadMessaging = (await writer.runAndReadAll(`SELECT 1 FROM duckdb_columns() WHERE table_name = 'events' AND column_name = '${EVENTS_MESSAGING_COLUMNS[0]}'`)).getRowsJS().length > 0;
    for (const ddl of [EVENTS_DDL, ...META_DDL, ...ROLLUP_DDL]) await writer.run(ddl);
    if (hadEvents && !hadMessaging) {
      // A store from before the messaging columns: add them (at the end, where the appender puts them) and fill them.
      for (const col of EVENTS_MESSAGING_COLUMNS) await writer.run(`ALTER TABLE events ADD COLUMN IF NOT EXISTS ${col} VARCHAR`);
      await writer.run(`UPDATE events SET ${EVENTS_MESSAGING_COLUMNS.map((col) => `${col} = json_extract_string(attributes, '$.${col}')`).join(', ')}
        WHERE ${EVENTS_MESSAGING_COLUMNS.map((col) => `contains(attributes, '"${col}"')`).join(' OR ')}`);
    }
    // A store written before endpoint profiles existed: derive them once from its rows.
    if (!hadProfiles) await writer.run(PROFILE_BACKFILL);
    if (hadEvents && !hadCampaignDays) await backfillCampaignDays(writer);
    await repairSurrogateEscapes(writer);
    return { instance, writer };
  }

  /** A new connection for read queries (DuckDB connections are not shared between concurrent queries). */
  async connect(): Promise<DuckDBConnection> {
    // An invalidated instance is reopened first (in the writer's turn, so only once).
    if (this.invalid) await this.exclusive(async () => undefined);
    return this.instance.connect();
  }

  /** Runs `fn` on a connection of its own (closed after); a failure is noted as any statement's. */
  async withConnection<T>(fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    const conn = await this.connect();
    try {
      return await fn(conn);
    } catch (e) {
      this.noteFailure(e);
      throw e;
    } finally {
      conn.closeSync();
    }
  }

  /**
   * Notes a failure of any statement on this store: DuckDB's "database has been invalidated" (after
   * a fatal error such as a failed checkpoint) marks the instance for reopening.
   */
  noteFailure(e: unknown): void {
    if (!this.invalid && isInvalidated(e)) this.invalid = e as Error;
  }

  /** Opens the file again after DuckDB invalidated the instance; throws (staying invalid) while that fails. */
  private async reopen(): Promise<void> {
    const cause = this.invalid!;
    try {
      this.writer.closeSync();
    } catch {
      // The invalidated instance may refuse; it is dropped either way.
    }
    try {
      this.instance.closeSync();
    } catch {
      // As above.
    }
    const { instance, writer } = await EventStore.openFile(this.path, this.options);
    this.instance = instance;
    this.writer = writer;
    // Its cache is rebuilt from the reopened file on next use.
    this.rollup = new ActivityRollup();
    this.invalid = undefined;
    this.reopens++;
    this.onReopen?.(cause);
  }

  /** First ingest-log offset not yet stored for this reader (0 when never loaded). */
  async checkpoint(name = 'ingest'): Promise<number> {
    return (await this.checkpoints(name)).next;
  }

  async checkpoints(name = 'ingest'): Promise<Checkpoint> {
    return this.exclusive(async () => {
      const r = await this.writer.runAndReadAll('SELECT next_offset, coalesce(loaded_to, next_offset) FROM loader_checkpoints WHERE name = $1', [name]);
      const rows = r.getRowsJS();
      return rows.length === 0 ? { next: 0, loadedTo: 0 } : { next: Number(rows[0][0]), loadedTo: Number(rows[0][1]) };
    });
  }

  /** Moves a reader's next offset outside a load (a replay; tests simulate a lost checkpoint). */
  async setCheckpoint(offset: number, name = 'ingest'): Promise<void> {
    await this.exclusive(() =>
      this.writer.run(
        `INSERT INTO loader_checkpoints VALUES ($1, $2, $2) ON CONFLICT DO UPDATE SET next_offset = excluded.next_offset, loaded_to = greatest(coalesce(loaded_to, 0), excluded.loaded_to)`,
        [name, offset],
      ),
    );
  }

  /**
   * Appends a batch and its rollups in one transaction; with `checkpoint`, the reader's next offset
   * (and `loaded_to`) is committed with it. Repeats of an (app_id, event_key) within the batch are
   * dropped.
   */
  async append(rows: readonly EventRow[], checkpoint?: { name?: string; offset: number }): Promise<AppendResult> {
    const unique = uniqueRows(rows);
    return this.exclusive(async () => {
      await this.writer.run('BEGIN TRANSACTION');
      return this.insertAndCommit(unique, rows.length - unique.length, checkpoint);
    });
  }

  /**
   * Appends the rows whose (app_id, event_key) the store does not hold yet, in one transaction
   * (imported history: src/history/). Which keys it holds is read from `events` itself, limited
   * to the batch's event-time span, so DuckDB's zone maps skip row groups of other periods; the
   * check and the insert run in one turn on the writer, so two imports cannot both add a key.
   * Rows older than retention are not in the store either: callers skip those before.
   * `beforeInsert` sees the new rows before they are written (inside the transaction: if it
   * throws, nothing is stored).
   */
  async appendNew(rows: readonly EventRow[], beforeInsert?: (fresh: readonly EventRow[]) => Promise<void>): Promise<AppendResult> {
    const unique = uniqueRows(rows);
    if (unique.length === 0) return { inserted: 0, duplicates: rows.length };
    let min = Infinity;
    let max = -Infinity;
    for (const r of unique) {
      if (r.eventTime < min) min = r.eventTime;
      if (r.eventTime > max) max = r.eventTime;
    }
    return this.exclusive(async () => {
      const w = this.writer;
      await w.run(NEW_KEYS_DDL);
      await w.run('BEGIN TRANSACTION');
      let fresh: EventRow[];
      try {
        await w.run('DELETE FROM new_keys_staging');
        const app = await w.createAppender('new_keys_staging', 'main', 'temp');
        try {
          for (const r of unique) {
            app.appendVarchar(r.appId);
            app.appendVarchar(r.eventKey);
            app.endRow();
          }
          app.flushSync();
        } finally {
          app.closeSync();
        }
        const held = await w.runAndReadAll(
          `SELECT e.app_id, e.event_key FROM events e SEMI JOIN new_keys_staging s ON e.app_id = s.app_id AND e.event_key = s.event_key
           WHERE e.event_time BETWEEN epoch_ms($1::BIGINT) AND epoch_ms($2::BIGINT)`,
          [Math.trunc(min), Math.trunc(max)],
        );
        const known = new Set(held.getRows().map(([a, k]) => String(a) + '\u0000' + String(k)));
        fresh = known.size === 0 ? unique : unique.filter((r) => !known.has(r.appId + '\u0000' + r.eventKey));
        await beforeInsert?.(fresh);
      } catch (e) {
        await w.run('ROLLBACK').catch(() => {});
        throw e;
      }
      return this.insertAndCommit(fresh, rows.length - fresh.length);
    });
  }

  /** Inside an open transaction on the writer: the rows, their rollups, the checkpoint; then COMMIT. */
  private async insertAndCommit(unique: readonly EventRow[], dropped: number, checkpoint?: { name?: string; offset: number }): Promise<AppendResult> {
    const w = this.writer;
    try {
      const batch = await this.rollup.prepare(w, unique);
      if (unique.length > 0) {
        const app = await w.createAppender('events');
        try {
          appendRows(app, unique);
          app.flushSync();
        } finally {
          app.closeSync();
        }
        await this.rollup.write(w, batch);
      }
      if (checkpoint) {
        await w.run(
          `INSERT INTO loader_checkpoints VALUES ($1, $2, $2) ON CONFLICT DO UPDATE SET next_offset = excluded.next_offset, loaded_to = greatest(coalesce(loaded_to, 0), excluded.loaded_to)`,
          [checkpoint.name ?? 'ingest', checkpoint.offset],
        );
      }
      await this.beforeCommit?.();
      await w.run('COMMIT');
      this.rollup.committed(batch);
      return { inserted: unique.length, duplicates: dropped };
    } catch (e) {
      await w.run('ROLLBACK').catch(() => {});
      throw e;
    }
  }

  /** Deletes rows whose event_time is before cutoffMs, and rollup days before its day; returns the rows deleted. */
  async deleteOlderThan(cutoffMs: number): Promise<number> {
    return this.exclusive(async () => {
      const w = this.writer;
      await w.run('BEGIN TRANSACTION');
      try {
        const n = (await w.run('DELETE FROM events WHERE event_time < epoch_ms($1::BIGINT)', [cutoffMs])).rowsChanged;
        await deleteRollupsBefore(w, cutoffMs);
        await w.run('COMMIT');
        return n;
      } catch (e) {
        await w.run('ROLLBACK').catch(() => {});
        throw e;
      }
    });
  }

  /**
   * Writes the WAL into the file so freed blocks go back to DuckDB's free list (reused by later
   * inserts). See retention.ts for what this does to the file size.
   */
  async compact(): Promise<void> {
    await this.exclusive(() => this.writer.run('CHECKPOINT'));
  }

  async rowCount(): Promise<number> {
    return this.exclusive(async () => Number((await this.writer.runAndReadAll('SELECT count(*) FROM events')).getRowsJS()[0][0]));
  }

  /** Bytes on disk: the database file plus its WAL. */
  fileBytes(): number {
    let n = 0;
    for (const p of [this.path, this.path + '.wal']) {
      try {
        n += statSync(p).size;
      } catch {
        // No WAL right after a checkpoint.
      }
    }
    return n;
  }

  /** Runs fn alone on the writer connection (a DuckDB connection runs one statement/transaction at a time). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('analytics store is closed'));
    const turn = async () => {
      if (this.invalid) await this.reopen();
      try {
        return await fn();
      } catch (e) {
        this.noteFailure(e);
        throw e;
      }
    };
    const run = this.queue.then(turn, turn);
    this.queue = run.catch(() => {});
    return run;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.queue;
    this.closed = true;
    try {
      this.writer.closeSync();
      this.instance.closeSync();
    } catch (e) {
      // An invalidated instance may refuse to close cleanly; there is nothing left to save in it.
      if (!this.invalid) throw e;
    }
  }
}

/** DuckDB's answer once a fatal error has invalidated the database (every statement after it fails). */
export function isInvalidated(e: unknown): boolean {
  return /database has been invalidated/i.test(String((e as { message?: unknown })?.message ?? ''));
}

/** The keys of one appendNew batch (a temporary table: never in the database file). */
const NEW_KEYS_DDL = `CREATE TEMP TABLE IF NOT EXISTS new_keys_staging (app_id VARCHAR, event_key VARCHAR)`;


/** One-time repairs of stores written by earlier versions, by name, so each runs once. */
const UPGRADES_DDL = `CREATE TABLE IF NOT EXISTS store_upgrades (name VARCHAR PRIMARY KEY)`;

/** JSON columns (and copies of them) that the loader filled with JSON.stringify text. */
export const JSON_TEXT_COLUMNS: ReadonlyArray<[table: string, column: string]> = [
  ['events', 'attributes'],
  ['events', 'metrics'],
  ['events', 'endpoint_attributes'],
  ['endpoint_profiles', 'endpoint_attributes'],
];

/**
 * Before the loader repaired them (loader.ts jsonText), JSON columns could hold an escaped unpaired
 * surrogate ("\ud800", from an event attribute a client had sent that way), and DuckDB's JSON
 * functions then failed every query that read the app's rows: dashboards with filters answered 500
 * forever. Replaces each such escape with \ufffd, once per store. JSON.stringify wrote these texts,
 * and it escapes only unpaired surrogates (a valid pair is written as the character itself), so a
 * surrogate escape whose backslash is not itself escaped is always unpaired. A regex pass cannot
 * match two adjacent escapes that share the character before them, hence two passes.
 */
export async function repairSurrogateEscapes(w: DuckDBConnection): Promise<number> {
  await w.run(UPGRADES_DDL);
  const name = 'json-unpaired-surrogate-escapes';
  if ((await w.runAndReadAll('SELECT 1 FROM store_upgrades WHERE name = $1', [name])).getRowsJS().length > 0) return 0;
  const escape = `'((?:^|[^\\\\])(?:\\\\\\\\)*)\\\\u[dD][89a-fA-F][0-9a-fA-F]{2}'`;
  const once = (text: string) => `regexp_replace(${text}, ${escape}, '\\1\\\\ufffd', 'g')`;
  let rows = 0;
  await w.run('BEGIN TRANSACTION');
  try {
    for (const [table, column] of JSON_TEXT_COLUMNS) {
      const text = `CAST(${column} AS VARCHAR)`;
      const type = table === 'events' ? 'JSON' : 'VARCHAR';
      const r = await w.run(
        `UPDATE ${table} SET ${column} = CAST(${once(once(text))} AS ${type}) WHERE regexp_matches(${text}, '\\\\u[dD][89a-fA-F]')`,
      );
      rows += Number(r.rowsChanged);
    }
    await w.run('INSERT INTO store_upgrades VALUES ($1)', [name]);
    await w.run('COMMIT');
  } catch (e) {
    await w.run('ROLLBACK').catch(() => {});
    throw e;
  }
  if (rows > 0) console.error(`pinstream: analytics: replaced unpaired surrogate escapes in ${rows} stored JSON values with U+FFFD`);
  return rows;
}

type Appender = Awaited<ReturnType<DuckDBConnection['createAppender']>>;

/** Rows per data chunk of the events' appends (chunks.ts says why rows go in by chunks). */
export const APPEND_CHUNK_ROWS = CHUNK_ROWS;

const str = (get: (r: EventRow) => string | null): ChunkColumn<EventRow> => ({ kind: 'varchar', get });
const time = (get: (r: EventRow) => number | null): ChunkColumn<EventRow> => ({ kind: 'timestamp', get });

/** Columns in EVENTS_DDL order. */
const EVENT_COLUMNS: ReadonlyArray<ChunkColumn<EventRow>> = [
  str((r) => r.appId),
  str((r) => r.eventKey),
  str((r) => r.eventType),
  time((r) => r.eventTime),
  time((r) => r.arrivalTime),
  { kind: 'date', get: (r) => Math.floor(Math.trunc(r.eventTime) / DAY_MS) },
  str((r) => r.endpointId),
  str((r) => r.userId),
  time((r) => r.endpointCreated),
  str((r) => r.sessionId),
  time((r) => r.sessionStart),
  str((r) => r.channel),
  str((r) => r.platform),
  str((r) => r.platformVersion),
  str((r) => r.appVersion),
  str((r) => r.make),
  str((r) => r.model),
  str((r) => r.country),
  str((r) => r.attributes),
  str((r) => r.metrics),
  str((r) => r.endpointAttributes),
  str((r) => r.campaignId),
  str((r) => r.campaignActivityId),
  str((r) => r.treatmentId),
  str((r) => r.journeyId),
  str((r) => r.journeyActivityId),
  str((r) => r.campaignSendStatus),
  str((r) => r.journeySendStatus),
  str((r) => r.deliveryType),
  str((r) => r.journeyActivityType),
];

function appendRows(app: Appender, rows: readonly EventRow[]): void {
  appendChunks(app, rows, EVENT_COLUMNS);
}
