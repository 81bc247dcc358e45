// The metadata `Store` boundary: where apps, IAM and (later) every other control-plane entity are
// kept, embedded (SQLite, the default) or shared by N nodes (PostgreSQL).
//
// Shape
// - One adapter interface, `SqlDriver` (below): `all` (a read), `write` (statements run in ONE
//   transaction, plus the (table, key) changes they make), `listen` (changes other nodes made) and
//   `close`. Two adapters shaped alike: `SqliteDriver` (store/sqlite-driver.ts, over the data
//   directory's better-sqlite3 database) and `PostgresDriver` (store/postgres.ts, a `pg` pool and one
//   LISTEN connection). Both take the same portable SQL (`?` placeholders, `ON CONFLICT`,
//   `RETURNING`); dialect lives only in the drivers and their migrations. One contract suite
//   (test/helpers/store-contract.ts) runs against both.
//   Why SQL-level adapters rather than a SQLite and a PostgreSQL copy of every domain interface:
//   the domain queries are the same text in both dialects, so one copy of them (in the domain
//   modules) cannot drift between adapters, and a new domain costs no new adapter code.
// - `MetadataCache` (this file): each domain declares its tables (`CachedTable`: name, key columns).
//   Small, hot tables (IAM users, keys, roles, groups, policies, attachments; apps) are held whole in
//   memory, loaded at open; reads on hot paths (the SigV4 key lookup on every request, policy
//   evaluation, the app of every PutEvents) are synchronous map reads. Writes are async: the domain
//   calls `cache.write(statements, changes)`; the driver runs them in one transaction and, on
//   PostgreSQL, sends one `pg_notify` listing the write's (table, key) pairs inside that
//   transaction (delivered on commit only). After commit the writing node reloads exactly those
//   keys before `write` resolves, so a caller reads its own writes. Every other node LISTENs and
//   reloads just those keys, in arrival order (reloads are serialized), swapping all of one
//   write's rows in at once (never half a write), then tells its listeners (derived caches: parsed
//   policies, opened secrets).
// - Large, per-tenant data (endpoints, jobs, checkpoints) is not cached whole: its interface is
//   async (`await endpoints.get(...)`), over the same `SqlDriver`. A write whose later statements
//   depend on what earlier ones read (an endpoint merged into the stored one) is a `Steps`
//   generator run by `transact`: it yields each statement and is sent back its rows. One copy of
//   the logic serves both adapters: SQLite runs it synchronously inside one better-sqlite3
//   transaction (nothing interleaves, no promise per statement), PostgreSQL awaits each statement
//   on one connection between BEGIN and COMMIT (rows it must not lose to another node's
//   concurrent write are locked with SELECT … FOR UPDATE, which the domain asks for where needed).
//
// Staleness (PostgreSQL): a change made on node 1 is seen on node 2 after the commit's
// notification arrives and node 2's reload query returns: one round trip after commit, typically
// milliseconds. If the LISTEN connection drops, notifications sent meanwhile are lost, so the node
// reconnects (bounded backoff) and reloads every cached table before serving from cache as fresh
// again; during the outage it serves the last state it had (at worst as stale as the outage is
// long, visible as `stale` in `MetadataCache.health()`).

import type { Db } from './db.js';
import { SqliteDriver } from './sqlite-driver.js';

/** One statement of a write: portable SQL with `?` placeholders. */
export interface Stmt {
  sql: string;
  params?: unknown[];
}

/** What a write changed: a cached table and the (possibly partial, leading) key columns' values. */
export interface Change {
  table: string;
  key: unknown[];
}

/**
 * A transaction as a generator: yields each statement and receives its rows (those of a SELECT or a
 * RETURNING clause; [] otherwise). A failed statement is thrown into the generator, so `savepoint`
 * can undo part of a transaction and go on.
 */
export type Steps<T> = Generator<Stmt, T, unknown[]>;

/** Savepoints of one transaction are named by depth; `Steps` nest them with `savepoint`. */
let savepointSeq = 0;

/**
 * Runs `body` inside a savepoint: when it throws, its statements are undone (the rest of the
 * transaction stands) and the error is rethrown to the caller, which may catch it and go on.
 */
export function* savepoint<T>(body: () => Steps<T>): Steps<T> {
  const name = `sp${++savepointSeq % 1_000_000}`;
  yield { sql: `SAVEPOINT ${name}` };
  let out: T;
  try {
    out = yield* body();
  } catch (e) {
    yield { sql: `ROLLBACK TO SAVEPOINT ${name}` };
    yield { sql: `RELEASE SAVEPOINT ${name}` };
    throw e;
  }
  yield { sql: `RELEASE SAVEPOINT ${name}` };
  return out;
}

/** Drives `steps` with a synchronous executor (SQLite); a failing statement is thrown into them. */
export function runSteps<T>(steps: Steps<T>, exec: (s: Stmt) => unknown[]): T {
  let next = steps.next();
  while (!next.done) {
    let rows: unknown[];
    try {
      rows = exec(next.value);
    } catch (e) {
      next = steps.throw(e);
      continue;
    }
    next = steps.next(rows);
  }
  return next.value;
}

/** Drives `steps` with an asynchronous executor (PostgreSQL). */
export async function runStepsAsync<T>(steps: Steps<T>, exec: (s: Stmt) => Promise<unknown[]>): Promise<T> {
  let next = steps.next();
  while (!next.done) {
    let rows: unknown[];
    try {
      rows = await exec(next.value);
    } catch (e) {
      next = steps.throw(e);
      continue;
    }
    next = steps.next(rows);
  }
  return next.value;
}

export interface SqlDriver {
  readonly kind: 'sqlite' | 'postgres';
  /** A read outside any transaction. */
  all<T>(sql: string, params?: unknown[]): Promise<T[]>;
  /**
   * Runs the statements in one transaction (all or nothing) and returns each one's rows (those of
   * a RETURNING clause; [] otherwise). On PostgreSQL the changes are announced to other nodes on
   * commit.
   */
  write(stmts: Stmt[], changes: Change[]): Promise<unknown[][]>;
  /**
   * Runs `steps` in one transaction (all or nothing, unless the steps undo part of it with
   * `savepoint`), feeding each statement's rows back in; resolves with what they return. Changes
   * (of cached tables; may be []) are announced as `write`'s are.
   */
  transact<T>(steps: () => Steps<T>, changes?: Change[]): Promise<T>;
  /**
   * Changes made by other nodes, all of one write's together, and `resync` when some may have been
   * missed (a LISTEN connection lost and restored). The embedded driver has no other nodes and
   * never calls either.
   */
  listen(onChanges: (c: Change[]) => void, onResync: () => void): void;
  /** True when the write failed only because a unique key was taken (another node won a race). */
  isUniqueViolation(e: unknown): boolean;
  /** Whether changes from other nodes may currently be missed (LISTEN connection down). */
  stale(): boolean;
  close(): Promise<void>;
}

export interface TableSpec {
  table: string;
  /** Key columns, in the order `Change.key` gives them. */
  keys: readonly string[];
}

/** A table held whole in memory, by its key columns. */
export class CachedTable<R extends object> {
  private readonly rows = new Map<string, R>();

  constructor(readonly spec: TableSpec) {}

  get(...key: unknown[]): R | undefined {
    return this.rows.get(keyString(key));
  }

  values(): IterableIterator<R> {
    return this.rows.values();
  }

  filter(pred: (r: R) => boolean): R[] {
    const out: R[] = [];
    for (const r of this.rows.values()) if (pred(r)) out.push(r);
    return out;
  }

  get size(): number {
    return this.rows.size;
  }

  keyOf(row: R): unknown[] {
    return this.spec.keys.map((k) => (row as Record<string, unknown>)[k]);
  }

  /** Replaces the rows under `key` (a full or leading partial key) with `fresh`. */
  replace(key: unknown[], fresh: R[]): void {
    if (key.length === this.spec.keys.length) this.rows.delete(keyString(key));
    else for (const [k, r] of this.rows) if (key.every((v, i) => this.keyOf(r)[i] === v)) this.rows.delete(k);
    for (const r of fresh) this.rows.set(keyString(this.keyOf(r)), r);
  }

  replaceAll(fresh: R[]): void {
    this.rows.clear();
    for (const r of fresh) this.rows.set(keyString(this.keyOf(r)), r);
  }
}

const keyString = (key: unknown[]) => JSON.stringify(key);

/** Backoff of full reloads after a failed one: doubles from the first to the last. */
export const RESYNC_MIN_MS = 100;
export const RESYNC_MAX_MS = 5_000;

export class MetadataCache {
  private readonly tables = new Map<string, CachedTable<object>>();
  private readonly listeners = new Set<(c: Change) => void>();
  /** Reloads run one at a time, in the order changes arrived. */
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  /** A reload failed and a full one has not succeeded since. */
  private stale = false;
  private resyncTimer?: NodeJS.Timeout;

  constructor(readonly driver: SqlDriver) {
    driver.listen(
      (c) => void this.enqueue(() => this.reload(c)).catch((e) => this.resyncSoon(`reloading ${c.map((x) => x.table).join(', ')} after another node changed it`, e)),
      () => void this.enqueue(() => this.reloadAll()).catch((e) => this.resyncSoon('reloading the metadata cache after a reconnection', e)),
    );
  }

  /** Declares a cached table and loads it whole. */
  async table<R extends object>(spec: TableSpec): Promise<CachedTable<R>> {
    const existing = this.tables.get(spec.table);
    if (existing) return existing as CachedTable<R>;
    const t = new CachedTable<R>(spec);
    this.tables.set(spec.table, t as CachedTable<object>);
    t.replaceAll(await this.driver.all<R>(`SELECT * FROM ${spec.table}`));
    return t;
  }

  /** Runs `stmts` in one transaction; the changed keys are reloaded here before this resolves. */
  async write(stmts: Stmt[], changes: Change[]): Promise<unknown[][]> {
    const rows = await this.driver.write(stmts, changes);
    try {
      await this.enqueue(() => this.reload(changes));
    } catch (e) {
      // Committed, but this node could not read it back (database gone right after the commit).
      // Its own notification is not for it, so nothing else would refresh these keys: reload
      // everything until that works. The caller hears of the failure (it cannot read its write).
      this.resyncSoon('reading back a committed write', e);
      throw e;
    }
    return rows;
  }

  /** Called after each applied change, local or remote (derived caches drop what it touches). */
  onChange(fn: (c: Change) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  health(): { adapter: 'sqlite' | 'postgres'; stale: boolean } {
    return { adapter: this.driver.kind, stale: this.stale || this.driver.stale() };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.resyncTimer);
    await this.queue.catch(() => {});
    await this.driver.close();
  }

  /**
   * After a failed reload some keys may be stale with nothing left to refresh them: reload every
   * table, retrying with backoff (RESYNC_MIN_MS doubling to RESYNC_MAX_MS) until one succeeds.
   */
  private resyncSoon(what: string, e: unknown): void {
    if (this.closed) return;
    this.stale = true;
    console.error(`pinstream: metadata cache: ${what} failed (${(e as Error)?.message ?? String(e)}); reloading everything`);
    if (this.resyncTimer) return;
    const attempt = (delay: number) => {
      this.resyncTimer = setTimeout(() => {
        this.enqueue(() => this.reloadAll()).then(
          () => {
            this.resyncTimer = undefined;
          },
          () => (this.closed ? undefined : attempt(Math.min(delay * 2, RESYNC_MAX_MS))),
        );
      }, delay);
      this.resyncTimer.unref();
    };
    attempt(RESYNC_MIN_MS);
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(task);
    // The queue continues after a failed reload; the failure goes to whoever awaited this task.
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * Reads every changed key first and only then replaces them all, without yielding in between: a
   * write that touched two tables (a policy's new default version and the version itself) is never
   * seen half applied.
   */
  private async reload(changes: Change[]): Promise<void> {
    const fresh: Array<{ t: CachedTable<object>; c: Change; rows: object[] }> = [];
    // Changes to tables not held here (read async: STS sessions, Cognito identities) are passed
    // on as they are: their domains keep small derived caches (a session LRU) that must drop keys.
    const uncached: Change[] = [];
    for (const c of changes) {
      const t = this.tables.get(c.table);
      if (this.closed) continue;
      if (!t) {
        uncached.push(c);
        continue;
      }
      const where = t.spec.keys
        .slice(0, c.key.length)
        .map((k) => `${k} = ?`)
        .join(' AND ');
      fresh.push({ t, c, rows: await this.driver.all(`SELECT * FROM ${c.table}${where ? ' WHERE ' + where : ''}`, c.key) });
    }
    for (const f of fresh) f.t.replace(f.c.key, f.rows);
    for (const f of fresh) this.emit(f.c);
    for (const c of uncached) this.emit(c);
  }

  /** Reads every table, then swaps them all in at once (nothing seen half reloaded). */
  private async reloadAll(): Promise<void> {
    const fresh: Array<{ t: CachedTable<object>; rows: object[] }> = [];
    for (const t of this.tables.values()) {
      if (this.closed) return;
      fresh.push({ t, rows: await this.driver.all(`SELECT * FROM ${t.spec.table}`) });
    }
    for (const f of fresh) f.t.replaceAll(f.rows);
    this.stale = false;
    for (const f of fresh) this.emit({ table: f.t.spec.table, key: [] });
    // Changes to uncached tables may have been missed too: '*' tells their domains to drop all.
    this.emit({ table: '*', key: [] });
  }

  private emit(c: Change): void {
    for (const fn of this.listeners) {
      try {
        fn(c);
      } catch (e) {
        console.error('pinstream: a metadata change listener failed', e);
      }
    }
  }
}

/** The embedded default: the data directory's SQLite database. */
export function sqliteMetadata(db: Db): MetadataCache {
  return new MetadataCache(new SqliteDriver(db));
}

/**
 * The metadata store configuration chooses: PostgreSQL when `postgresUrl` is set (connected within
 * `connectTimeoutMs`, migrated, and listening for other nodes' changes before this resolves; a
 * PostgresError naming PostgreSQL otherwise), else the data directory's SQLite database.
 */
export async function openMetadata(opts: { db: Db; postgresUrl?: string; connectTimeoutMs?: number }): Promise<MetadataCache> {
  if (opts.postgresUrl === undefined) return sqliteMetadata(opts.db);
  const { PostgresDriver } = await import('./postgres.js');
  const driver = await PostgresDriver.open(opts.postgresUrl, { connectTimeoutMs: opts.connectTimeoutMs });
  const cache = new MetadataCache(driver);
  try {
    await driver.listeningNow();
  } catch (e) {
    await cache.close();
    throw e;
  }
  return cache;
}
