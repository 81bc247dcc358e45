// The embedded metadata adapter: the data directory's SQLite database (store/db.ts) behind the
// `SqlDriver` interface. better-sqlite3 is synchronous, so a write's statements run inside one
// `db.transaction` without yielding: nothing else can interleave with them, and the promise only
// reports the outcome. One process owns the file, so there are no other nodes to listen to.

import type { Statement } from 'better-sqlite3';
import type { Db } from './db.js';
import { runSteps, type Change, type SqlDriver, type Steps, type Stmt } from './metadata.js';

/** Prepared statements kept per driver (each distinct SQL text is prepared once). */
export const MAX_PREPARED_STATEMENTS = 1_000;

export class SqliteDriver implements SqlDriver {
  readonly kind = 'sqlite' as const;
  private readonly prepared = new Map<string, Statement>();
  /** One transaction function for every call (better-sqlite3's db.transaction() is costly to create per call). */
  private readonly tx: (fn: () => unknown) => unknown;

  constructor(private readonly db: Db) {
    this.tx = db.transaction((fn: () => unknown) => fn());
  }

  all<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    try {
      return Promise.resolve(this.prepare(sql).all(...params) as T[]);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  write(stmts: Stmt[], _changes: Change[]): Promise<unknown[][]> {
    try {
      const rows = this.db.transaction(() =>
        stmts.map((s) => {
          const st = this.prepare(s.sql);
          if (st.reader) return st.all(...(s.params ?? []));
          st.run(...(s.params ?? []));
          return [];
        }),
      )();
      return Promise.resolve(rows);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  transact<T>(steps: () => Steps<T>, _changes?: Change[]): Promise<T> {
    try {
      return Promise.resolve(this.transactSync(steps));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * `transact` without the promise: the embedded PutEvents applies its endpoint writes and reaches
   * its log append without a pause (which keeps requests' appends in arrival order). Nested in an
   * open transaction, better-sqlite3 makes it a savepoint.
   */
  transactSync<T>(steps: () => Steps<T>): T {
    return this.tx(() => runSteps(steps(), (s) => this.exec(s))) as T;
  }


  private exec(s: Stmt): unknown[] {
    const st = this.prepare(s.sql);
    if (st.reader) return st.all(...(s.params ?? []));
    st.run(...(s.params ?? []));
    return [];
  }

  listen(): void {}

  isUniqueViolation(e: unknown): boolean {
    const code = (e as { code?: unknown })?.code;
    return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
  }

  stale(): boolean {
    return false;
  }

  /** The database belongs to the caller (the server closes it with everything else on it). */
  close(): Promise<void> {
    return Promise.resolve();
  }

  private prepare(sql: string): Statement {
    let st = this.prepared.get(sql);
    if (!st) {
      if (this.prepared.size >= MAX_PREPARED_STATEMENTS) this.prepared.clear();
      st = this.db.prepare(sql);
      this.prepared.set(sql, st);
    }
    return st;
  }
}
