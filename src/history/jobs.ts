// History import jobs: owns their records on the metadata Store (embedded: its own SQLite tables,
// created here rather than in store/db.ts's migrations, as the import is an add-on that an old data
// directory gains on start; shared: PostgreSQL, the endpoints domain's migration in
// store/postgres.ts) and runs them in the server, one at a time, in the background. A job lists the archive once
// (INITIALIZING), then reads its objects in key order (PROCESSING) and commits batches of rows
// into the analytics store with EventStore.appendNew; after each commit, each object's committed
// line and the job's counters are saved in one SQLite transaction. A job found unfinished at start
// (a crash, a kill -9, a restart) goes on from those lines; a batch whose DuckDB commit happened
// and whose SQLite save did not is read again, and appendNew finds its events held (counted as
// duplicates, stored once). States follow Pinpoint's import jobs: CREATED → INITIALIZING →
// PROCESSING → COMPLETED | FAILED.
//
// Shared store: every node sees every job (GetHistoryImport on any node); a job runs on the node
// that created it (its rows go into that node's analytics store). A job found unfinished when a
// node starts is resumed by that node from the last committed batch, as after a restart: a job
// whose node died resumes at the next node start (a node starting while another still runs the
// job would run it too; the second copy's rows are found held by appendNew, counted twice).

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { Clock } from '../clock.js';
import type { BucketRoute } from '../config/config.js';
import type { EventStore, EventRow } from '../analytics/store.js';
import { DAY_MS } from '../analytics/retention.js';
import { openDuckDB } from '../firehose/duckdb.js';
import { ApiError } from '../http/errors.js';
import type { Log } from '../log/log.js';
import { encodeIngestEntry } from '../pinpoint/ingest-record.js';
import type { Db } from '../store/db.js';
import type { SqlDriver } from '../store/metadata.js';
import { SqliteDriver } from '../store/sqlite-driver.js';
import { historyRow, parseRecord } from './record.js';
import { readObject } from './reader.js';
import { parseSource, SourceReader, sourceUrl, type ReadCheck } from './source.js';

/** Rows per analytics commit (a batch may span several small objects). */
export const HISTORY_BATCH_RECORDS = 20_000;
/** Failure samples (object, line, reason) a job keeps; the count goes on past it. */
export const MAX_FAILURE_SAMPLES = 100;
/** Jobs listed per app (newest first). */
export const MAX_LISTED_JOBS = 100;

export type JobState = 'CREATED' | 'INITIALIZING' | 'PROCESSING' | 'COMPLETED' | 'FAILED';

const DDL = `
CREATE TABLE IF NOT EXISTS history_imports (
  id TEXT PRIMARY KEY,
  app_id TEXT NOT NULL,
  source TEXT NOT NULL,
  role_arn TEXT,
  map TEXT NOT NULL,            -- JSON {sourceAppId: pinstreamAppId}
  replay INTEGER NOT NULL,
  state TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  completed_ms INTEGER,
  objects_total INTEGER,
  objects_done INTEGER NOT NULL DEFAULT 0,
  records INTEGER NOT NULL DEFAULT 0,
  imported INTEGER NOT NULL DEFAULT 0,
  duplicates INTEGER NOT NULL DEFAULT 0,
  too_old INTEGER NOT NULL DEFAULT 0,
  other_apps INTEGER NOT NULL DEFAULT 0,
  malformed INTEGER NOT NULL DEFAULT 0,
  failures TEXT NOT NULL DEFAULT '[]',
  error TEXT,
  processing_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS history_imports_app ON history_imports(app_id, created_ms);
CREATE TABLE IF NOT EXISTS history_import_objects (
  job_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  key TEXT NOT NULL,
  lines_done INTEGER NOT NULL DEFAULT 0,
  done INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;`;

interface JobRow {
  id: string;
  app_id: string;
  source: string;
  role_arn: string | null;
  map: string;
  replay: number;
  state: JobState;
  created_ms: number;
  completed_ms: number | null;
  objects_total: number | null;
  objects_done: number;
  records: number;
  imported: number;
  duplicates: number;
  too_old: number;
  other_apps: number;
  malformed: number;
  failures: string;
  error: string | null;
  processing_ms: number;
}

/** A job as the API shows it. */
export interface HistoryImportJob {
  Id: string;
  ApplicationId: string;
  Source: string;
  RoleArn?: string;
  Map: Record<string, string>;
  Replay: boolean;
  JobStatus: JobState;
  CreationDate: string;
  CompletionDate?: string;
  TotalObjects?: number;
  CompletedObjects: number;
  /** Records read (every line or row, malformed ones included). */
  TotalRecords: number;
  ImportedRecords: number;
  DuplicateRecords: number;
  /** Events older than the retention window: skipped. */
  TooOldRecords: number;
  /** Records of projects the import does not map: skipped. */
  OtherAppRecords: number;
  MalformedRecords: number;
  /** `key:line: reason` of the first MAX_FAILURE_SAMPLES malformed records. */
  Failures: string[];
  FailureReason?: string;
  /** Time spent processing (ms), for rates. */
  ProcessingMillis: number;
}

export interface CreateJob {
  appId: string;
  source: string;
  roleArn?: string;
  map: Record<string, string>;
  replay: boolean;
}

export interface HistoryJobsOptions {
  /** This node's SQLite database: its tables are created there (the embedded store's). */
  db: Db;
  /** The metadata Store's driver, where the jobs are read and written (default: `db`'s). */
  driver?: SqlDriver;
  /** The analytics store's history write (EventStore, or the analytics thread that owns it). */
  store: Pick<EventStore, 'appendNew'>;
  clock: Clock;
  dataDir: string;
  buckets: readonly BucketRoute[];
  retentionDays: number;
  ingestLog: Log;
  /** How the job's role may read the bucket (undefined role: allowed, the caller was checked). */
  roleCheck: (job: { appId: string; roleArn: string }) => ReadCheck;
  batchRecords?: number;
  /** Set when history import cannot run (the analytics store is ClickHouse): `create` answers it as a BadRequestException. */
  unavailable?: string;
}

function shape(r: JobRow): HistoryImportJob {
  return {
    Id: r.id,
    ApplicationId: r.app_id,
    Source: r.source,
    ...(r.role_arn ? { RoleArn: r.role_arn } : {}),
    Map: JSON.parse(r.map),
    Replay: r.replay === 1,
    JobStatus: r.state,
    CreationDate: new Date(r.created_ms).toISOString(),
    ...(r.completed_ms !== null ? { CompletionDate: new Date(r.completed_ms).toISOString() } : {}),
    ...(r.objects_total !== null ? { TotalObjects: r.objects_total } : {}),
    CompletedObjects: r.objects_done,
    TotalRecords: r.records,
    ImportedRecords: r.imported,
    DuplicateRecords: r.duplicates,
    TooOldRecords: r.too_old,
    OtherAppRecords: r.other_apps,
    MalformedRecords: r.malformed,
    Failures: JSON.parse(r.failures),
    ...(r.error ? { FailureReason: r.error } : {}),
    ProcessingMillis: r.processing_ms,
  };
}

interface Counts {
  records: number;
  imported: number;
  duplicates: number;
  tooOld: number;
  otherApps: number;
  malformed: number;
  failures: string[];
}

const zero = (): Counts => ({ records: 0, imported: 0, duplicates: 0, tooOld: 0, otherApps: 0, malformed: 0, failures: [] });

export class HistoryJobs {
  private queue: Promise<void> = Promise.resolve();
  private stopping = false;
  private duck: Promise<DuckDBInstance> | undefined;
  private conn: DuckDBConnection | undefined;
  /** Test seam: awaited after each batch is committed (a test stops the process here). */
  afterBatch: ((jobId: string) => Promise<void>) | undefined;

  private readonly db: SqlDriver;
  /** Insertion order among jobs created in the same millisecond: SQLite's rowid, PostgreSQL's seq column. */
  private readonly order: string;

  constructor(private readonly o: HistoryJobsOptions) {
    this.db = o.driver ?? new SqliteDriver(o.db);
    if (this.db.kind === 'sqlite') o.db.exec(DDL);
    this.order = this.db.kind === 'sqlite' ? 'rowid' : 'seq';
  }

  async create(c: CreateJob): Promise<HistoryImportJob> {
    if (this.o.unavailable) throw new ApiError('BadRequestException', 400, this.o.unavailable);
    parseSource(c.source);
    const id = randomBytes(16).toString('hex');
    await this.exec(`INSERT INTO history_imports (id, app_id, source, role_arn, map, replay, state, created_ms) VALUES (?, ?, ?, ?, ?, ?, 'CREATED', ?)`, [
      id,
      c.appId,
      c.source,
      c.roleArn ?? null,
      JSON.stringify(c.map),
      c.replay ? 1 : 0,
      this.o.clock.now(),
    ]);
    this.schedule(id);
    return (await this.get(c.appId, id))!;
  }

  async get(appId: string, id: string): Promise<HistoryImportJob | undefined> {
    const [r] = await this.db.all<JobRow>(`SELECT * FROM history_imports WHERE id = ? AND app_id = ?`, [id, appId]);
    return r && shape(r);
  }

  async list(appId: string): Promise<HistoryImportJob[]> {
    return (await this.db.all<JobRow>(`SELECT * FROM history_imports WHERE app_id = ? ORDER BY created_ms DESC, ${this.order} DESC LIMIT ?`, [appId, MAX_LISTED_JOBS])).map(shape);
  }

  /** Queues every unfinished job (at start: they resume where their last commit left them). */
  async resume(): Promise<void> {
    const rows = await this.db.all<{ id: string }>(`SELECT id FROM history_imports WHERE state IN ('CREATED', 'INITIALIZING', 'PROCESSING') ORDER BY created_ms, ${this.order}`);
    for (const r of rows) this.schedule(r.id);
  }

  private async exec(sql: string, params: unknown[]): Promise<void> {
    await this.db.write([{ sql, params }], []);
  }

  /** Resolves once the queued jobs are done (tests; the CLI polls the API instead). */
  idle(): Promise<void> {
    return this.queue;
  }

  async close(): Promise<void> {
    this.stopping = true;
    await this.queue;
    this.conn?.closeSync();
    if (this.duck) (await this.duck).closeSync();
  }

  private schedule(id: string): void {
    this.queue = this.queue.then(() => (this.stopping ? undefined : this.run(id)));
  }

  private async row(id: string): Promise<JobRow> {
    return (await this.db.all<JobRow>(`SELECT * FROM history_imports WHERE id = ?`, [id]))[0];
  }

  private async run(id: string): Promise<void> {
    const job = await this.row(id);
    let reader: SourceReader | undefined;
    try {
      const source = parseSource(job.source);
      const check = job.role_arn ? this.o.roleCheck({ appId: job.app_id, roleArn: job.role_arn }) : undefined;
      reader = new SourceReader(source, this.o.dataDir, this.o.buckets, check);
      if (job.objects_total === null) {
        await this.exec(`UPDATE history_imports SET state = 'INITIALIZING' WHERE id = ?`, [id]);
        const keys = await reader.list();
        await this.db.write(
          [
            ...keys.map((k, i) => ({ sql: `INSERT INTO history_import_objects (job_id, seq, key) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, params: [id, i, k] })),
            { sql: `UPDATE history_imports SET objects_total = ?, state = 'PROCESSING' WHERE id = ?`, params: [keys.length, id] },
          ],
          [],
        );
      } else await this.exec(`UPDATE history_imports SET state = 'PROCESSING' WHERE id = ?`, [id]);
      await this.process(await this.row(id), reader);
      if (this.stopping) return;
      await this.exec(`UPDATE history_imports SET state = 'COMPLETED', completed_ms = ? WHERE id = ?`, [this.o.clock.now(), id]);
    } catch (e) {
      if (this.stopping) return;
      const msg = e instanceof Error ? e.message : String(e);
      await this.exec(`UPDATE history_imports SET state = 'FAILED', error = ?, completed_ms = ? WHERE id = ?`, [msg, this.o.clock.now(), id]).catch((err) =>
        console.error(`pinstream: history import ${id} failed (${msg}) and could not be marked failed`, err),
      );
    } finally {
      reader?.close();
    }
  }

  private async duckConn(): Promise<DuckDBConnection> {
    this.duck ??= openDuckDB();
    this.conn ??= await (await this.duck).connect();
    return this.conn;
  }

  private async process(job: JobRow, reader: SourceReader): Promise<void> {
    const map = new Map(Object.entries(JSON.parse(job.map) as Record<string, string>));
    const cutoff = this.o.clock.now() - this.o.retentionDays * DAY_MS;
    const batchMax = this.o.batchRecords ?? HISTORY_BATCH_RECORDS;
    const objects = await this.db.all<{ seq: number; key: string; lines_done: number }>(
      `SELECT seq, key, lines_done FROM history_import_objects WHERE job_id = ? AND done = 0 ORDER BY seq`,
      [job.id],
    );
    const tmpDir = join(this.o.dataDir, 'history', 'spool');
    let rows: EventRow[] = [];
    let replay: string[] = [];
    let counts = zero();
    /** Objects touched by the open batch: line reached, and whether the object ended. */
    let touched = new Map<number, { line: number; done: boolean }>();
    let since = performance.now();

    /**
     * The batch committing while the next one is read and parsed (DuckDB commits on its own
     * threads, as in the analytics loader). Batches commit, and their progress is saved, in order.
     */
    let pending: Promise<void> = Promise.resolve();

    const commit = async () => {
      if (touched.size === 0) return;
      const batch = { rows, replay, counts, touched: new Map([...touched].map(([seq, t]) => [seq, { ...t }])) };
      rows = [];
      replay = [];
      counts = zero();
      touched = new Map();
      await pending;
      pending = this.commitBatch(job, batch, performance.now() - since);
      since = performance.now();
      // A failed commit fails the job now rather than after the next batch is read.
      pending.catch(() => {});
    };

    try {
      await this.readAll(job, reader, objects, map, cutoff, batchMax, tmpDir, {
        add: (row, entry) => {
          rows.push(row);
          if (entry !== undefined) replay.push(entry);
          return rows.length;
        },
        counts: () => counts,
        touch: (seq, t) => touched.set(seq, t),
        commit,
        failureSamples: JSON.parse(job.failures).length as number,
      });
      await commit();
    } finally {
      await pending;
    }
  }

  private async commitBatch(
    job: JobRow,
    b: { rows: EventRow[]; replay: string[]; counts: Counts; touched: Map<number, { line: number; done: boolean }> },
    elapsedMs: number,
  ): Promise<void> {
    const { rows, counts, touched } = b;
    if (rows.length > 0) {
      const r = await this.o.store.appendNew(rows, job.replay === 1 ? (fresh) => this.appendForReplay(b.replay, rows, fresh) : undefined);
      counts.imported += r.inserted;
      counts.duplicates += r.duplicates;
    }
    const doneNow = [...touched.values()].filter((t) => t.done).length;
    await this.db.transact(function* () {
      for (const [seq, t] of touched) yield { sql: `UPDATE history_import_objects SET lines_done = ?, done = ? WHERE job_id = ? AND seq = ?`, params: [t.line, t.done ? 1 : 0, job.id, seq] };
      yield {
        sql: `UPDATE history_imports SET objects_done = objects_done + ?, records = records + ?, imported = imported + ?, duplicates = duplicates + ?,
             too_old = too_old + ?, other_apps = other_apps + ?, malformed = malformed + ?, processing_ms = processing_ms + ? WHERE id = ?`,
        params: [doneNow, counts.records, counts.imported, counts.duplicates, counts.tooOld, counts.otherApps, counts.malformed, Math.round(elapsedMs), job.id],
      };
      if (counts.failures.length > 0) {
        const [row] = (yield { sql: `SELECT failures FROM history_imports WHERE id = ?`, params: [job.id] }) as Array<{ failures: string }>;
        const cur = JSON.parse(row.failures) as string[];
        yield { sql: `UPDATE history_imports SET failures = ? WHERE id = ?`, params: [JSON.stringify([...cur, ...counts.failures].slice(0, MAX_FAILURE_SAMPLES)), job.id] };
      }
    });
    await this.afterBatch?.(job.id);
  }

  /** Reads the objects' records after their committed lines, handing rows and counts to `sink`. */
  private async readAll(
    job: JobRow,
    reader: SourceReader,
    objects: Array<{ seq: number; key: string; lines_done: number }>,
    map: Map<string, string>,
    cutoff: number,
    batchMax: number,
    tmpDir: string,
    sink: {
      add: (row: EventRow, entry: string | undefined) => number;
      counts: () => Counts;
      touch: (seq: number, t: { line: number; done: boolean }) => void;
      commit: () => Promise<void>;
      failureSamples: number;
    },
  ): Promise<void> {
    for (const obj of objects) {
      if (this.stopping) return;
      const t = { line: obj.lines_done, done: false };
      sink.touch(obj.seq, t);
      for await (const l of readObject(reader, obj.key, obj.lines_done, () => this.duckConn(), tmpDir)) {
        // Stopping: the open batch is dropped; the resumed job reads it again from the last commit.
        if (this.stopping) return;
        t.line = l.line;
        const counts = sink.counts();
        counts.records++;
        const bad = (why: string) => {
          counts.malformed++;
          if (sink.failureSamples < MAX_FAILURE_SAMPLES) {
            sink.failureSamples++;
            counts.failures.push(`${obj.key}:${l.line}: ${why}`);
          }
        };
        if ('error' in l) {
          bad(l.error);
          continue;
        }
        const p = parseRecord(l.text);
        if (!p.ok) {
          bad(p.error);
          continue;
        }
        const dest = map.get(p.appId);
        if (dest === undefined) counts.otherApps++;
        else if (p.eventTime < cutoff) counts.tooOld++;
        else {
          const entry = job.replay === 1 ? encodeIngestEntry(dest, p.endpointId, p.eventId, replayRecord(p.record, dest), true) : undefined;
          if (sink.add(historyRow(dest, p), entry) >= batchMax) {
            await sink.commit();
            sink.touch(obj.seq, t);
            if (this.stopping) return;
          }
        }
      }
      t.done = true;
      // Small objects share a batch; a batch closes at the batch size or at the end of the archive.
      if (obj === objects[objects.length - 1]) await sink.commit();
    }
  }

  /** Appends the batch's new events (not those already imported) to the ingest log, for event streams. */
  private async appendForReplay(entries: string[], rows: readonly EventRow[], fresh: readonly EventRow[]): Promise<void> {
    if (fresh.length === 0) return;
    const keep = new Set(fresh);
    const out = entries.filter((_, i) => keep.has(rows[i]));
    for (let i = 0; i < out.length; i += 500) await this.o.ingestLog.append(out.slice(i, i + 500));
  }
}

/** The record as the destination project's event stream carries it: its app id is the project's. */
function replayRecord(record: Record<string, unknown>, dest: string): string {
  const application = { ...((record.application as Record<string, unknown>) ?? {}), app_id: dest };
  return JSON.stringify({ ...record, application });
}

export { sourceUrl };
