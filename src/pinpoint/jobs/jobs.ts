// Endpoint import and export jobs: their rows on the metadata Store (SQLite embedded, PostgreSQL
// shared by every node), Pinpoint's response shapes and states (CREATED → INITIALIZING →
// PROCESSING → COMPLETED / FAILED), and the background runner.
//
// Jobs never run on the request: CreateImportJob/CreateExportJob store a CREATED row and the
// runner takes jobs in creation order, JobSettings.maxConcurrentJobs at a time, yielding to the
// event loop after every batch. Each S3 object read or written is a "piece". An import applies
// `importBatchLines` lines per SQLite transaction, and the same transaction records how far the
// piece got (lines and bytes) and the job's counters, so a stop or crash at any point resumes at
// the first line not applied: no line is applied twice, none is skipped. An export records the
// last endpoint id of each object it wrote; a piece written again after a crash has the same key
// and replaces its own object.
//
// Which node runs a job (shared store): every node sees every job (GetImportJob on any node), and
// each job runs under the placement (src/cluster/placement.ts) as `job/<id>`: nodes look for
// unfinished jobs every JOBS_POLL_MS and place them, and the node holding the lease runs the job.
// With NATS (KvPlacement) that is one node at a time; when it dies its lease expires
// (LEASE_TTL_MS) and another node resumes the job from its last committed batch, as a restart
// would. Without NATS (LocalPlacement: every node would hold every lease) a node runs only the jobs
// it created and, at its start, those found unfinished: a job whose node died resumes when a node
// starts (two nodes starting while one job is unfinished would both run it; give a cluster NATS).
//
// S3 is reached as the job's role (RoleArn): its trust must let pinpoint.amazonaws.com assume it
// for the project, and its policies must allow s3:ListBucket on the bucket and s3:GetObject on
// each object (import) or s3:PutObject on each object written (export), checked when each call is
// made. A refusal fails the job (listing, export) or the piece (reading an object) with the
// reason in Failures, as a role Pinpoint cannot use does in AWS.

import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { pipeline, Readable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import type { SqlDriver, Stmt } from '../../store/metadata.js';
import { LocalPlacement, type Placement } from '../../cluster/placement.js';
import type { Clock } from '../../clock.js';
import type { Json } from '../../http/shape.js';
import { badRequest, notFound } from '../../http/errors.js';
import type { ObjectStore } from '../../firehose/objects/object-store.js';
import { bucketNameProblem, objectArn } from '../../firehose/objects/index.js';
import { PINPOINT_SERVICE_PRINCIPAL, type RoleSource } from '../../iam/roles.js';
import { repairJsonText } from '../../unicode.js';
import type { Apps } from '../apps.js';
import type { Endpoints } from '../endpoints.js';
import { CsvHeader, lineEndpointId, parseJsonLine, splitLines, type ImportFormat, type Line } from './formats.js';
import { DEFAULT_JOB_SETTINGS, EXPORT_PIECE_MAX_BYTES, EXPORT_READ_CHUNK, MAX_FAILURE_CHARS, MAX_FAILURE_SAMPLES, MAX_IMPORT_PIECES, type JobSettings } from './limits.js';

export type JobType = 'IMPORT' | 'EXPORT';
export type JobStatus = 'CREATED' | 'INITIALIZING' | 'PROCESSING' | 'COMPLETED' | 'FAILED';

export const DEFAULT_JOBS_PAGE_SIZE = 20;
/** Shared store: how often a node looks for unfinished jobs to place (jobs created on other nodes, or left by a dead one). */
export const JOBS_POLL_MS = 2_000;
/** Tries of a create when another node took the same creation sequence number at the same moment. */
export const MAX_CREATE_JOB_ATTEMPTS = 5;
export const MAX_JOBS_PAGE_SIZE = 1000;

export interface ImportDefinition {
  S3Url: string;
  RoleArn: string;
  Format: ImportFormat;
  RegisterEndpoints?: boolean;
  DefineSegment?: boolean;
  SegmentName?: string;
  ExternalId?: string;
}

export interface ExportDefinition {
  S3UrlPrefix: string;
  RoleArn: string;
}

/** ImportJobResponse / ExportJobResponse. */
export interface JobResponse {
  ApplicationId: string;
  Id: string;
  Type: JobType;
  JobStatus: JobStatus;
  CreationDate: string;
  CompletionDate?: string;
  Definition: ImportDefinition | ExportDefinition;
  TotalPieces: number;
  CompletedPieces: number;
  FailedPieces: number;
  TotalProcessed: number;
  TotalFailures: number;
  Failures?: string[];
}

interface JobRow {
  app_id: string;
  id: string;
  type: JobType;
  status: JobStatus;
  definition: string;
  creation_date: string;
  completion_date: string | null;
  created_seq: number;
  total_pieces: number;
  completed_pieces: number;
  failed_pieces: number;
  total_processed: number;
  total_failures: number;
  failures: string;
  cursor: string | null;
}

interface PieceRow {
  job_id: string;
  piece: number;
  key: string;
  state: 'PENDING' | 'DONE' | 'FAILED';
  lines: number;
  byte_offset: number;
  gzip: number | null;
  header: string | null;
}

/** A job as the runner holds it: the row's counters, written back with each batch. */
interface Job {
  appId: string;
  id: string;
  type: JobType;
  status: JobStatus;
  definition: Json;
  creationDate: string;
  completionDate?: string;
  totalPieces: number;
  completedPieces: number;
  failedPieces: number;
  totalProcessed: number;
  totalFailures: number;
  failures: string[];
  cursor: string | null;
}

/** Why a job stopped for good; its message goes to Failures. */
class JobFailure extends Error {}

export interface JobsOptions {
  /** The metadata Store's driver (the same one `endpoints` writes with: a batch is one transaction of both). */
  driver: SqlDriver;
  /** Shared store: where each job runs (absent: every job runs here, as embedded). */
  placement?: Placement;
  apps: Apps;
  endpoints: Endpoints;
  clock: Clock;
  accountId: string;
  /** The bucket routing of Firehose (PINSTREAM_BUCKETS, else folders under the data directory). */
  objects: { resolve(bucketArn: string): ObjectStore };
  /** Why the role, assumed for `source`, may not do `action` on `resource` (src/iam/roles.ts roleMayNot). */
  roleMayNot(roleArn: string, source: RoleSource, action: string, resource: string): string | undefined;
  settings?: Partial<JobSettings>;
  /** Awaited before each import batch is applied (tests stop a server at a known point of a job). */
  beforeBatch?: (jobId: string, totalProcessed: number) => Promise<void> | void;
}

/** `s3://bucket/key…` → bucket and key prefix; BadRequestException naming `field` otherwise. */
export function parseS3Url(url: string, field: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/s.exec(url);
  if (!m) throw badRequest(`${field} must be an S3 URL (s3://BUCKET/PREFIX); got "${url.slice(0, 200)}"`);
  const problem = bucketNameProblem(m[1]);
  if (problem) throw badRequest(`${field}: "${m[1]}" is not a valid bucket name: ${problem}`);
  return { bucket: m[1], prefix: m[2] ?? '' };
}

/** Objects of the other format are left out, as Pinpoint imports only files of the job's format. */
function ofFormat(key: string, format: ImportFormat): boolean {
  if (key.endsWith('/')) return false;
  const base = key.replace(/\.(gz|gzip)$/i, '');
  const ext = /\.([^./]+)$/.exec(base)?.[1]?.toLowerCase();
  if (format === 'JSON') return ext !== 'csv';
  return ext !== 'json' && ext !== 'jsonl' && ext !== 'ndjson';
}

const SQL = {
  insert: `INSERT INTO endpoint_jobs (app_id, id, type, status, definition, creation_date, created_seq)
           VALUES (?, ?, ?, 'CREATED', ?, ?, (SELECT COALESCE(MAX(created_seq), 0) + 1 FROM endpoint_jobs))`,
  get: 'SELECT * FROM endpoint_jobs WHERE app_id = ? AND id = ?',
  page: 'SELECT * FROM endpoint_jobs INDEXED BY endpoint_jobs_list WHERE app_id = ? AND type = ? AND created_seq < ? ORDER BY created_seq DESC LIMIT ?',
  unfinished: "SELECT * FROM endpoint_jobs INDEXED BY endpoint_jobs_unfinished WHERE status NOT IN ('COMPLETED', 'FAILED') ORDER BY created_seq LIMIT ?",
  save: `UPDATE endpoint_jobs SET status = ?, completion_date = ?, total_pieces = ?, completed_pieces = ?, failed_pieces = ?,
           total_processed = ?, total_failures = ?, failures = ?, cursor = ? WHERE app_id = ? AND id = ?`,
  pieces: "SELECT * FROM endpoint_job_pieces WHERE job_id = ? AND state = 'PENDING' ORDER BY piece",
  clearPieces: 'DELETE FROM endpoint_job_pieces WHERE job_id = ?',
  addPiece: "INSERT INTO endpoint_job_pieces (job_id, piece, key, state) VALUES (?, ?, ?, 'PENDING')",
  savePiece: 'UPDATE endpoint_job_pieces SET state = ?, lines = ?, byte_offset = ?, gzip = ?, header = ? WHERE job_id = ? AND piece = ?',
  exportChunk: 'SELECT id, data FROM endpoints WHERE app_id = ? AND id > ? ORDER BY id LIMIT ?',
} as const;

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

export class EndpointJobs {
  readonly settings: JobSettings;
  private running = new Map<string, Promise<void>>();
  private stopping = false;
  private started = false;
  private readonly driver: SqlDriver;
  /** Shared store with a placement: jobs placed here (their lease may be held by another node). */
  private readonly placed = new Set<string>();
  /** Jobs whose placement stopped them here (their lease moved): they put down their batch. */
  private readonly halted = new Set<string>();
  /** Without NATS on a shared store: the jobs this node may run (created here, or unfinished at its start). */
  private readonly mine = new Set<string>();
  private poll?: NodeJS.Timeout;
  private kicking = false;
  private kickAgain = false;

  constructor(private readonly o: JobsOptions) {
    this.settings = { ...DEFAULT_JOB_SETTINGS, ...o.settings };
    this.driver = o.driver;
  }

  /** Leases decide where jobs run: a shared store with a placement that spans nodes. */
  private get leased(): boolean {
    return this.driver.kind === 'postgres' && this.o.placement !== undefined && !(this.o.placement instanceof LocalPlacement);
  }

  /** Starts the runner: jobs a stop interrupted resume where they were. */
  start(): void {
    this.started = true;
    if (this.driver.kind === 'postgres') {
      if (!this.leased) {
        // Without leases: this node resumes what is unfinished now (see the header).
        void this.driver.all<JobRow>(SQL.unfinished, [MAX_RESUMED_JOBS]).then(
          (rows) => {
            for (const r of rows) this.mine.add(r.id);
            this.kick();
          },
          (e) => console.error('pinstream: listing unfinished endpoint jobs failed', e),
        );
      }
      this.poll = setInterval(() => this.kick(), JOBS_POLL_MS);
      this.poll.unref();
    }
    this.kick();
  }

  /** Stops taking batches and waits for the running jobs to put down their current one. */
  async close(): Promise<void> {
    this.stopping = true;
    clearInterval(this.poll);
    if (this.o.placement) await Promise.allSettled([...this.placed].map((id) => this.o.placement!.release(`job/${id}`)));
    await Promise.allSettled([...this.running.values()]);
  }

  /** Whether `job` must put down its work: the server stops, or its lease moved to another node. */
  private halt(job: Job): boolean {
    return this.stopping || this.halted.has(job.id);
  }

  createImport(appId: string, def: ImportDefinition): Promise<JobResponse> {
    return this.create(appId, 'IMPORT', def as unknown as Json);
  }

  createExport(appId: string, def: ExportDefinition): Promise<JobResponse> {
    return this.create(appId, 'EXPORT', def as unknown as Json);
  }

  async get(appId: string, type: JobType, id: string): Promise<JobResponse> {
    const [row] = await this.driver.all<JobRow>(SQL.get, [appId, id]);
    if (!row || row.type !== type) throw notFound(`${type === 'IMPORT' ? 'Import' : 'Export'} job not found: ${id} in application ${appId}`);
    return response(fromRow(row));
  }

  /** Newest first; the token is the creation sequence of the last job returned. */
  async list(appId: string, type: JobType, pageSize: number, token: string | undefined): Promise<{ Item: JobResponse[]; NextToken?: string }> {
    let before = Number.MAX_SAFE_INTEGER;
    if (token !== undefined && token !== '') {
      if (!/^\d{1,15}$/.test(token)) throw badRequest(`token "${token.slice(0, 100)}" is not a NextToken this API returned`);
      before = Number(token);
    }
    const rows = await this.driver.all<JobRow>(SQL.page, [appId, type, before, pageSize + 1]);
    const page = rows.slice(0, pageSize);
    return { Item: page.map((r) => response(fromRow(r))), ...(rows.length > pageSize ? { NextToken: String(page[page.length - 1].created_seq) } : {}) };
  }

  private async create(appId: string, type: JobType, definition: Json): Promise<JobResponse> {
    const id = randomUUID().replaceAll('-', '');
    // The sequence orders pages; computed in the INSERT, so on PostgreSQL two nodes may take the
    // same number at once: the unique index refuses the second, which tries again.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.driver.write([{ sql: SQL.insert, params: [appId, id, type, JSON.stringify(definition), new Date(this.o.clock.now()).toISOString()] }], []);
        break;
      } catch (e) {
        if (attempt >= MAX_CREATE_JOB_ATTEMPTS || !this.driver.isUniqueViolation(e)) throw e;
      }
    }
    this.mine.add(id);
    const out = await this.get(appId, type, id);
    queueMicrotask(() => this.kick());
    return out;
  }

  /** Looks for jobs to run (one look at a time; a kick during one makes another after it). */
  private kick(): void {
    if (!this.started || this.stopping) return;
    if (this.kicking) {
      this.kickAgain = true;
      return;
    }
    this.kicking = true;
    this.kickOnce()
      .catch((e) => console.error('pinstream: looking for endpoint jobs to run failed', e))
      .finally(() => {
        this.kicking = false;
        if (this.kickAgain) {
          this.kickAgain = false;
          this.kick();
        }
      });
  }

  private async kickOnce(): Promise<void> {
    if (this.running.size >= this.settings.maxConcurrentJobs && !this.leased) return;
    const rows = await this.driver.all<JobRow>(SQL.unfinished, [this.running.size + this.placed.size + this.settings.maxConcurrentJobs]);
    for (const row of rows) {
      if (this.stopping) return;
      if (this.running.has(row.id) || this.placed.has(row.id)) continue;
      if (this.leased) {
        // The lease holder runs it; a job is placed here only while fewer than the limit are.
        if (this.placed.size >= this.settings.maxConcurrentJobs) break;
        this.placeJob(row.app_id, row.id);
        continue;
      }
      if (this.driver.kind === 'postgres' && !this.mine.has(row.id)) continue;
      if (this.running.size >= this.settings.maxConcurrentJobs) break;
      this.runJob(row.app_id, row.id);
    }
  }

  private placeJob(appId: string, id: string): void {
    this.placed.add(id);
    this.o.placement!.place(`job/${id}`, {
      start: () => {
        this.halted.delete(id);
        this.runJob(appId, id);
      },
      stop: async () => {
        this.halted.add(id);
        await this.running.get(id);
      },
    });
  }

  /** Runs a job from its stored row (re-read: another node may have advanced it). */
  private runJob(appId: string, id: string): void {
    if (this.running.has(id)) return;
    const run = (async () => {
      const rows = await this.driver.all<JobRow>(SQL.get, [appId, id]);
      if (rows.length === 0 || rows[0].status === 'COMPLETED' || rows[0].status === 'FAILED') return;
      const job = fromRow(rows[0]);
      await this.run(job).catch(async (e) => {
        if (this.halt(job)) return;
        // An unexpected error (not a refusal the job reports itself) fails the job, saying what happened.
        await this.fail(job, e instanceof JobFailure ? e.message : `internal error: ${(e as Error).message}`);
      });
    })()
      .catch((e) => console.error(`pinstream: endpoint job ${id} failed`, e))
      .finally(() => {
        this.running.delete(id);
        this.mine.delete(id);
        if (this.placed.has(id) && !this.halted.has(id) && !this.stopping) {
          // Done (or failed for good) here: its lease goes, and another node will not pick it up.
          this.placed.delete(id);
          void this.o.placement!.release(`job/${id}`).catch(() => {});
        }
        this.halted.delete(id);
        this.kick();
      });
    this.running.set(id, run);
  }

  private async run(job: Job): Promise<void> {
    await turn();
    if (this.halt(job)) return;
    if (job.type === 'IMPORT') {
      if (job.status === 'CREATED' || job.status === 'INITIALIZING') await this.initializeImport(job);
      if (job.status === 'PROCESSING' && !this.halt(job)) await this.processImport(job);
    } else {
      if (job.status === 'CREATED' || job.status === 'INITIALIZING') {
        job.status = 'PROCESSING';
        await this.save(job);
      }
      await this.processExport(job);
    }
  }

  // --- import ---------------------------------------------------------------------------------

  private async initializeImport(job: Job): Promise<void> {
    job.status = 'INITIALIZING';
    await this.save(job);
    const def = job.definition as unknown as ImportDefinition;
    const { bucket, prefix } = parseS3Url(def.S3Url, 'S3Url');
    const store = this.store(bucket);
    this.allow(job, def.RoleArn, 's3:ListBucket', `arn:aws:s3:::${bucket}`);
    let keys: string[];
    try {
      keys = await store.list(prefix);
    } catch (e) {
      throw new JobFailure(`listing ${def.S3Url} failed: ${(e as Error).message}`);
    }
    if (this.halt(job)) return;
    // An S3Url naming one object imports that object; a prefix imports every object under it.
    const selected = (keys.includes(prefix) ? [prefix] : keys).filter((k) => ofFormat(k, def.Format));
    if (selected.length === 0) throw new JobFailure(`no ${def.Format} objects found at ${def.S3Url}`);
    if (selected.length > MAX_IMPORT_PIECES) {
      throw new JobFailure(`${def.S3Url} holds ${selected.length} objects; an import job reads at most ${MAX_IMPORT_PIECES}: import it in parts, one prefix each`);
    }
    job.totalPieces = selected.length;
    job.status = 'PROCESSING';
    await this.driver.write(
      [{ sql: SQL.clearPieces, params: [job.id] }, ...selected.map((key, i) => ({ sql: SQL.addPiece, params: [job.id, i, key] })), saveStmt(job)],
      [],
    );
  }

  private async processImport(job: Job): Promise<void> {
    const def = job.definition as unknown as ImportDefinition;
    const { bucket } = parseS3Url(def.S3Url, 'S3Url');
    const store = this.store(bucket);
    for (const piece of await this.driver.all<PieceRow>(SQL.pieces, [job.id])) {
      if (this.halt(job)) return;
      const stopped = await this.importPiece(job, def, bucket, store, piece);
      if (stopped) return;
    }
    await this.finish(job);
  }

  /** Applies one object's remaining lines; true when the runner stopped before the object's end. */
  private async importPiece(job: Job, def: ImportDefinition, bucket: string, store: ObjectStore, piece: PieceRow): Promise<boolean> {
    const url = `s3://${bucket}/${piece.key}`;
    let raw: Readable | undefined;
    const pending: Array<{ n: number; line: Line }> = [];
    let lineNo = 0;
    let offset = 0;
    let gzip = piece.gzip;
    let header = piece.header === null ? undefined : new CsvHeader(piece.header);
    const apply = (done: boolean) => this.applyBatch(job, def, url, piece, pending, { lines: lineNo, offset, gzip, header: header?.text ?? null, done }, header);
    try {
      this.allow(job, def.RoleArn, 's3:GetObject', objectArn(bucket, piece.key));
      // A plain object resumes at its byte offset; a gzip one is decompressed again from its start.
      const start = gzip === 0 ? piece.byte_offset : 0;
      raw = await store.stream(piece.key, start);
      const it = raw[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      const first = await it.next();
      if (gzip === null) gzip = !first.done && first.value.length >= 2 && first.value[0] === 0x1f && first.value[1] === 0x8b ? 1 : 0;
      async function* bytes(): AsyncGenerator<Buffer> {
        if (!first.done) yield first.value;
        for (;;) {
          const n = await it.next();
          if (n.done) return;
          yield n.value;
        }
      }
      let src: AsyncIterable<Buffer> = bytes();
      if (gzip === 1) {
        const gunzip = createGunzip();
        pipeline(Readable.from(bytes()), gunzip, () => {});
        src = gunzip;
      } else {
        lineNo = piece.lines;
        offset = piece.byte_offset;
      }
      for await (const line of splitLines(src)) {
        lineNo++;
        offset += line.bytes;
        if (lineNo <= piece.lines) continue;
        if (def.Format === 'CSV' && header === undefined) {
          // The first line of a CSV object is its header; a header Pinpoint could not read fails the object.
          if (line.text === undefined || line.text.trim() === '') throw new JobFailure(`the first line of a CSV object must be its header row`);
          try {
            header = new CsvHeader(line.text);
          } catch (e) {
            throw new JobFailure(`line 1: ${(e as Error).message}`);
          }
          continue;
        }
        pending.push({ n: lineNo, line });
        if (pending.length >= this.settings.importBatchLines) {
          if (!(await apply(false))) return true;
          pending.length = 0;
        }
      }
      if (!(await apply(true))) return true;
      return false;
    } catch (e) {
      if (this.halt(job)) return true;
      if (e instanceof AppGone) throw e;
      // What was read before the object broke off is kept; the object counts as a failed piece.
      if (pending.length > 0 && !(await apply(false))) return true;
      const why = e instanceof JobFailure ? e.message : (e as Error).message;
      job.failedPieces++;
      this.sample(job, `${url}: ${why}`);
      await this.driver.write(
        [{ sql: SQL.savePiece, params: ['FAILED', lineNo, offset, gzip, header?.text ?? null, job.id, piece.piece] }, saveStmt(job)],
        [],
      );
      return false;
    } finally {
      raw?.destroy();
    }
  }

  /** Applies lines in one transaction with the piece's progress; false when the runner is stopping. */
  private async applyBatch(
    job: Job,
    def: ImportDefinition,
    url: string,
    piece: PieceRow,
    lines: Array<{ n: number; line: Line }>,
    progress: { lines: number; offset: number; gzip: number | null; header: string | null; done: boolean },
    header: CsvHeader | undefined,
  ): Promise<boolean> {
    await this.o.beforeBatch?.(job.id, job.totalProcessed);
    if (this.halt(job)) return false;
    if (!this.o.apps.get(job.appId)) throw new AppGone(`application ${job.appId} was deleted while the job ran`);
    const before = { ...job, failures: [...job.failures] };
    const endpoints = this.o.endpoints;
    const self = this;
    try {
      // One transaction: the lines' endpoints (a savepoint each: a line that fails is undone alone),
      // the piece's progress and the job's counters. A retried transaction starts from `before`.
      await endpoints.run(job.appId, function* (tx) {
        Object.assign(job, before, { failures: [...before.failures] });
        for (const { n, line } of lines) {
          if (line.text !== undefined && line.text.trim() === '') continue;
          job.totalProcessed++;
          try {
            if (line.text === undefined) throw new Error(line.problem);
            const fallback = () => lineEndpointId(job.id, piece.key, n);
            const item = def.Format === 'JSON' ? parseJsonLine(line.text, line.bytes, fallback) : header!.parse(line.text, line.bytes, fallback);
            yield* endpoints.importSteps(tx, item.id, item.input, item.creationDate);
          } catch (e) {
            job.totalFailures++;
            self.sample(job, `${url} line ${n}: ${(e as Error).message}`);
          }
        }
        yield { sql: SQL.savePiece, params: [progress.done ? 'DONE' : 'PENDING', progress.lines, progress.offset, progress.gzip, progress.header, job.id, piece.piece] };
        if (progress.done) job.completedPieces++;
        yield saveStmt(job);
      });
    } catch (e) {
      Object.assign(job, before);
      throw e;
    }
    await turn();
    return !this.halt(job);
  }

  // --- export ---------------------------------------------------------------------------------

  private async processExport(job: Job): Promise<void> {
    const def = job.definition as unknown as ExportDefinition;
    const { bucket, prefix } = parseS3Url(def.S3UrlPrefix, 'S3UrlPrefix');
    const store = this.store(bucket);
    const base = `${prefix === '' || prefix.endsWith('/') ? prefix : prefix + '/'}${job.id}/`;
    for (;;) {
      if (this.halt(job)) return;
      if (!this.o.apps.get(job.appId)) throw new JobFailure(`application ${job.appId} was deleted while the job ran`);
      const gz = createGzip();
      const out: Buffer[] = [];
      gz.on('data', (b: Buffer) => out.push(b));
      let bytes = 0;
      let rows = 0;
      let last = job.cursor ?? '';
      let full = false;
      while (!full) {
        const chunk = await this.driver.all<{ id: string; data: string }>(SQL.exportChunk, [job.appId, last, EXPORT_READ_CHUNK]);
        if (chunk.length === 0) break;
        for (const r of chunk) {
          const line = repairJsonText(r.data) + '\n';
          const n = Buffer.byteLength(line);
          // The piece closes before a line would take it over the bound (an endpoint is far smaller).
          if (rows > 0 && bytes + n > EXPORT_PIECE_MAX_BYTES) {
            full = true;
            break;
          }
          gz.write(line);
          bytes += n;
          last = r.id;
          rows++;
        }
        await turn();
        if (this.halt(job)) {
          gz.destroy();
          return;
        }
      }
      if (rows === 0) {
        gz.destroy();
        break;
      }
      gz.end();
      await once(gz, 'end');
      const key = `${base}${String(job.completedPieces).padStart(5, '0')}.json.gz`;
      try {
        this.allow(job, def.RoleArn, 's3:PutObject', objectArn(bucket, key));
        await store.put(key, Buffer.concat(out), 'application/gzip');
      } catch (e) {
        if (this.halt(job)) return;
        job.failedPieces++;
        job.totalPieces = job.completedPieces + job.failedPieces;
        throw new JobFailure(`writing s3://${bucket}/${key} failed: ${(e as Error).message}`);
      }
      job.cursor = last;
      job.completedPieces++;
      job.totalPieces = job.completedPieces;
      job.totalProcessed += rows;
      await this.save(job);
    }
    await this.finish(job);
  }

  // --- shared ---------------------------------------------------------------------------------

  private store(bucket: string): ObjectStore {
    try {
      return this.o.objects.resolve(`arn:aws:s3:::${bucket}`);
    } catch (e) {
      throw new JobFailure(`bucket ${bucket}: ${(e as Error).message}`);
    }
  }

  /** Throws JobFailure when the job's role may not do `action` on `resource`. */
  private allow(job: Job, roleArn: string, action: string, resource: string): void {
    const source: RoleSource = { service: PINPOINT_SERVICE_PRINCIPAL, sourceArn: this.o.apps.arn(job.appId), sourceAccount: this.o.accountId };
    const why = this.o.roleMayNot(roleArn, source, action, resource);
    if (why !== undefined) throw new JobFailure(`Access denied: role ${roleArn} may not ${action} on ${resource}: ${why}`);
  }

  private sample(job: Job, message: string): void {
    if (job.failures.length < MAX_FAILURE_SAMPLES) job.failures.push(message.length > MAX_FAILURE_CHARS ? message.slice(0, MAX_FAILURE_CHARS - 1) + '…' : message);
  }

  private async finish(job: Job): Promise<void> {
    job.status = job.failedPieces > 0 ? 'FAILED' : 'COMPLETED';
    job.completionDate = new Date(this.o.clock.now()).toISOString();
    await this.save(job);
  }

  private async fail(job: Job, message: string): Promise<void> {
    this.sample(job, message);
    job.status = 'FAILED';
    job.completionDate = new Date(this.o.clock.now()).toISOString();
    await this.save(job);
  }

  private async save(job: Job): Promise<void> {
    await this.driver.write([saveStmt(job)], []);
  }
}

/** Jobs a node without leases takes over at its start (see the header); more wait for its next start. */
export const MAX_RESUMED_JOBS = 1000;

function saveStmt(job: Job): Stmt {
  return {
    sql: SQL.save,
    params: [
      job.status,
      job.completionDate ?? null,
      job.totalPieces,
      job.completedPieces,
      job.failedPieces,
      job.totalProcessed,
      job.totalFailures,
      JSON.stringify(job.failures),
      job.cursor,
      job.appId,
      job.id,
    ],
  };
}

class AppGone extends JobFailure {}

function fromRow(r: JobRow): Job {
  return {
    appId: r.app_id,
    id: r.id,
    type: r.type,
    status: r.status,
    definition: JSON.parse(r.definition),
    creationDate: r.creation_date,
    completionDate: r.completion_date ?? undefined,
    totalPieces: r.total_pieces,
    completedPieces: r.completed_pieces,
    failedPieces: r.failed_pieces,
    totalProcessed: r.total_processed,
    totalFailures: r.total_failures,
    failures: JSON.parse(r.failures),
    cursor: r.cursor,
  };
}

function response(j: Job): JobResponse {
  return {
    ApplicationId: j.appId,
    Id: j.id,
    Type: j.type,
    JobStatus: j.status,
    CreationDate: j.creationDate,
    ...(j.completionDate ? { CompletionDate: j.completionDate } : {}),
    Definition: j.definition as unknown as ImportDefinition | ExportDefinition,
    TotalPieces: j.totalPieces,
    CompletedPieces: j.completedPieces,
    FailedPieces: j.failedPieces,
    TotalProcessed: j.totalProcessed,
    TotalFailures: j.totalFailures,
    ...(j.failures.length > 0 ? { Failures: j.failures } : {}),
  };
}
