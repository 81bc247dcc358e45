// The shared metadata adapter: PostgreSQL behind the `SqlDriver` interface, for N stateless nodes.
// A `pg` pool serves reads and writes (each write is BEGIN … COMMIT on one pooled connection, so the
// statements SQLite runs in one transaction stay one transaction here); one more connection LISTENs
// on PG_CHANNEL, where every write's `pg_notify` (sent inside the transaction, so delivered only if
// it commits) tells the other nodes which (table, key) to reload. That connection is re-opened
// after a loss, with bounded backoff, and the node reloads everything (resync): notifications are
// not queued for a disconnected listener.
//
// Schema: PG_MIGRATIONS, in PostgreSQL's dialect, applied at start in one transaction under an
// advisory lock (two nodes starting together: the second waits, then finds them applied), and
// recorded in `schema_migrations`.

import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { runStepsAsync, type Change, type SqlDriver, type Steps, type Stmt } from './metadata.js';
import { parsePostgresUrl, PostgresError } from './postgres-url.js';

export { PostgresError };

/** Longest a connection to PostgreSQL may take to open (start-up, pool growth, LISTEN reconnects). */
export const PG_CONNECT_TIMEOUT_MS = 5_000;
/** Longest one query may run before it fails (no request waits on PostgreSQL forever). */
export const PG_QUERY_TIMEOUT_MS = 30_000;
/** Connections one node's pool opens at most. */
export const PG_POOL_SIZE = 10;
/** Longest notification payload sent (PostgreSQL's limit is 8000 bytes); larger writes make every node reload all. */
export const PG_MAX_PAYLOAD_BYTES = 7_900;
/** The channel every node LISTENs on for metadata changes. */
export const PG_CHANNEL = 'pinstream_metadata';
/** Backoff between LISTEN reconnection attempts: doubles from the first to the last. */
export const PG_RECONNECT_MIN_MS = 100;
export const PG_RECONNECT_MAX_MS = 5_000;
/** Arbitrary constant naming Pinstream's migration lock among the database's advisory locks. */
const MIGRATION_LOCK = 0x50_49_4e_53; // 'PINS'


// --- idmeta: STS sessions, Cognito, the Data Catalog and saved funnels --------------------------
// A block of its own so other domains' migrations merge around it. Columns as in SQLite (db.ts).
// Sessions carry `seq` (SQLite's rowid order: a Cognito identity keeps its newest sessions).
const IDENTITY_AND_CATALOG_MIGRATIONS: string[] = [
  `CREATE TABLE sts_sessions (
     access_key_id TEXT PRIMARY KEY,
     secret BYTEA NOT NULL,
     token BYTEA NOT NULL,
     kind TEXT NOT NULL,
     principal TEXT NOT NULL,
     principal_id TEXT NOT NULL,
     arn TEXT NOT NULL,
     policy TEXT,
     chained INTEGER NOT NULL DEFAULT 0,
     expiration BIGINT NOT NULL,
     create_date TEXT NOT NULL,
     web_identity TEXT,
     identity_id TEXT,
     seq BIGSERIAL
   );
   CREATE INDEX sts_sessions_expiration ON sts_sessions(expiration);
   CREATE INDEX sts_sessions_identity ON sts_sessions(identity_id, seq) WHERE identity_id IS NOT NULL;
   CREATE TABLE cognito_pools (id TEXT PRIMARY KEY, name TEXT NOT NULL, data TEXT NOT NULL, create_date BIGINT NOT NULL);
   CREATE TABLE cognito_identities (
     id TEXT PRIMARY KEY,
     pool_id TEXT NOT NULL,
     logins TEXT NOT NULL DEFAULT '{}',
     create_date BIGINT NOT NULL,
     last_modified BIGINT NOT NULL
   );
   CREATE INDEX cognito_identities_pool ON cognito_identities(pool_id, id);
   CREATE TABLE cognito_logins (
     pool_id TEXT NOT NULL,
     provider TEXT NOT NULL,
     subject TEXT NOT NULL,
     identity_id TEXT NOT NULL,
     PRIMARY KEY (pool_id, provider, subject)
   );
   CREATE INDEX cognito_logins_identity ON cognito_logins(identity_id);
   CREATE TABLE glue_databases (name TEXT PRIMARY KEY, data TEXT NOT NULL);
   CREATE TABLE glue_tables (db TEXT NOT NULL, name TEXT NOT NULL, data TEXT NOT NULL, partitions BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (db, name));
   CREATE TABLE glue_partitions (db TEXT NOT NULL, tbl TEXT NOT NULL, vals TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (db, tbl, vals));
   CREATE TABLE analytics_funnels (app_id TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, steps TEXT NOT NULL, PRIMARY KEY (app_id, id));`,
];

/**
 * The metadata schema in PostgreSQL's dialect: the tables of the domains converted to the Store
 * (IAM, apps), column for column as in SQLite (store/db.ts) so the same SQL reads both. Appended
 * to, never edited: a node applies those it has not.
 */
export const PG_MIGRATIONS: string[] = [
  `CREATE TABLE apps (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     creation_date TEXT NOT NULL,
     created_seq BIGINT NOT NULL UNIQUE,
     tags TEXT NOT NULL DEFAULT '{}',
     settings TEXT NOT NULL DEFAULT '{}'
   );
   CREATE TABLE secrets (name TEXT PRIMARY KEY, value BYTEA NOT NULL);
   CREATE TABLE iam_users (name TEXT PRIMARY KEY, user_id TEXT NOT NULL, path TEXT NOT NULL, create_date TEXT NOT NULL);
   CREATE TABLE access_keys (
     access_key_id TEXT PRIMARY KEY,
     secret BYTEA NOT NULL,
     user_name TEXT NOT NULL,
     status TEXT NOT NULL DEFAULT 'Active',
     create_date TEXT NOT NULL
   );
   CREATE INDEX access_keys_user ON access_keys(user_name);
   CREATE TABLE iam_roles (
     name TEXT PRIMARY KEY,
     role_id TEXT NOT NULL,
     path TEXT NOT NULL,
     create_date TEXT NOT NULL,
     assume_role_policy TEXT NOT NULL,
     description TEXT,
     max_session_duration INTEGER NOT NULL
   );
   CREATE TABLE iam_policies (kind TEXT NOT NULL, owner TEXT NOT NULL, name TEXT NOT NULL, document TEXT NOT NULL, PRIMARY KEY (kind, owner, name));
   CREATE TABLE iam_managed_policies (
     arn TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     policy_id TEXT NOT NULL,
     path TEXT NOT NULL,
     description TEXT,
     default_version TEXT NOT NULL,
     next_version INTEGER NOT NULL,
     create_date TEXT NOT NULL,
     update_date TEXT NOT NULL
   );
   CREATE TABLE iam_policy_versions (arn TEXT NOT NULL, version INTEGER NOT NULL, document TEXT NOT NULL, create_date TEXT NOT NULL, PRIMARY KEY (arn, version));
   CREATE TABLE iam_attachments (kind TEXT NOT NULL, owner TEXT NOT NULL, policy_arn TEXT NOT NULL, PRIMARY KEY (kind, owner, policy_arn));
   CREATE INDEX iam_attachments_policy ON iam_attachments(policy_arn);
   CREATE TABLE iam_groups (name TEXT PRIMARY KEY, group_id TEXT NOT NULL, path TEXT NOT NULL, create_date TEXT NOT NULL);
   CREATE TABLE iam_group_members (group_name TEXT NOT NULL, user_name TEXT NOT NULL, PRIMARY KEY (group_name, user_name));
   CREATE INDEX iam_group_members_user ON iam_group_members(user_name);`,
  // --- Event streams (issue 17, src/pinpoint/eventstream-store.ts): settings (cached on every
  // node), the delivery checkpoint of each (own table: written every batch, read when a worker
  // starts) and the records a destination could never take (bounded per app).
  `CREATE TABLE event_streams (
     app_id TEXT PRIMARY KEY,
     destination_arn TEXT NOT NULL,
     role_arn TEXT NOT NULL,
     last_modified TEXT NOT NULL,
     last_updated_by TEXT NOT NULL,
     epoch BIGINT NOT NULL DEFAULT 0
   );
   CREATE TABLE delivery_checkpoints (app_id TEXT PRIMARY KEY, position BIGINT NOT NULL, epoch BIGINT NOT NULL);
   CREATE TABLE delivery_errors (
     app_id TEXT NOT NULL,
     log_offset BIGINT NOT NULL,
     event_id TEXT NOT NULL,
     endpoint_id TEXT NOT NULL,
     reason TEXT NOT NULL,
     at TEXT NOT NULL
   );
   CREATE UNIQUE INDEX delivery_errors_app ON delivery_errors(app_id, log_offset);`,

  ...IDENTITY_AND_CATALOG_MIGRATIONS,
  // --- Kinesis and Firehose (issue 17, src/kinesis/streams.ts, encryption.ts, iterators.ts and
  // src/firehose/registry.ts): stream and delivery-stream documents, account settings, the sealed
  // data keys of encrypted streams, and the Firehose readers' checkpoints. The iterator-signing key
  // lives in `secrets` (above). Column for column as SQLite's.
  `CREATE TABLE kinesis_streams (name TEXT PRIMARY KEY, data TEXT NOT NULL);
   CREATE TABLE kinesis_account_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE kinesis_data_keys (
     stream TEXT NOT NULL,
     key_id INTEGER NOT NULL,
     created_ms BIGINT NOT NULL,
     sealed BYTEA NOT NULL,
     PRIMARY KEY (stream, key_id)
   );
   CREATE TABLE firehose_streams (name TEXT PRIMARY KEY, data TEXT NOT NULL);
   CREATE TABLE firehose_checkpoints (stream TEXT NOT NULL, key TEXT NOT NULL, position TEXT NOT NULL, PRIMARY KEY (stream, key));`,
  // --- end of Kinesis and Firehose
  // --- Endpoints domain (src/pinpoint/endpoints.ts, src/pinpoint/jobs/, src/history/jobs.ts) ---
  // Endpoints, as in SQLite, with one difference: SQLite compares ids with COLLATE NOCASE, and
  // here `id` holds the id folded the same way (ASCII letters to lower case, endpoints.ts foldId),
  // so the same `id = ?` with a folded parameter finds it in both. The endpoint's own Id (its
  // first spelling) is in `data`. The same partial indexes as SQLite's.
  `CREATE TABLE endpoints (
     app_id TEXT NOT NULL,
     id TEXT NOT NULL,
     user_id TEXT,
     active_address TEXT,
     data TEXT NOT NULL,
     PRIMARY KEY (app_id, id)
   );
   CREATE INDEX endpoints_user ON endpoints(app_id, user_id) WHERE user_id IS NOT NULL;
   CREATE INDEX endpoints_active_address ON endpoints(app_id, active_address) WHERE active_address IS NOT NULL;
   CREATE TABLE app_attribute_names (app_id TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (app_id, name));
   CREATE TABLE endpoint_purges (app_id TEXT PRIMARY KEY);
   CREATE TABLE endpoint_jobs (
     app_id TEXT NOT NULL,
     id TEXT NOT NULL,
     type TEXT NOT NULL,
     status TEXT NOT NULL,
     definition TEXT NOT NULL,
     creation_date TEXT NOT NULL,
     completion_date TEXT,
     created_seq BIGINT NOT NULL UNIQUE,
     total_pieces INTEGER NOT NULL DEFAULT 0,
     completed_pieces INTEGER NOT NULL DEFAULT 0,
     failed_pieces INTEGER NOT NULL DEFAULT 0,
     total_processed BIGINT NOT NULL DEFAULT 0,
     total_failures BIGINT NOT NULL DEFAULT 0,
     failures TEXT NOT NULL DEFAULT '[]',
     cursor TEXT,
     PRIMARY KEY (app_id, id)
   );
   CREATE INDEX endpoint_jobs_list ON endpoint_jobs(app_id, type, created_seq);
   CREATE INDEX endpoint_jobs_unfinished ON endpoint_jobs(created_seq) WHERE status NOT IN ('COMPLETED', 'FAILED');
   CREATE TABLE endpoint_job_pieces (
     job_id TEXT NOT NULL,
     piece INTEGER NOT NULL,
     key TEXT NOT NULL,
     state TEXT NOT NULL,
     lines BIGINT NOT NULL DEFAULT 0,
     byte_offset BIGINT NOT NULL DEFAULT 0,
     gzip INTEGER,
     header TEXT,
     PRIMARY KEY (job_id, piece)
   );
   CREATE TABLE history_imports (
     id TEXT PRIMARY KEY,
     seq BIGSERIAL,
     app_id TEXT NOT NULL,
     source TEXT NOT NULL,
     role_arn TEXT,
     map TEXT NOT NULL,
     replay INTEGER NOT NULL,
     state TEXT NOT NULL,
     created_ms BIGINT NOT NULL,
     completed_ms BIGINT,
     objects_total INTEGER,
     objects_done INTEGER NOT NULL DEFAULT 0,
     records BIGINT NOT NULL DEFAULT 0,
     imported BIGINT NOT NULL DEFAULT 0,
     duplicates BIGINT NOT NULL DEFAULT 0,
     too_old BIGINT NOT NULL DEFAULT 0,
     other_apps BIGINT NOT NULL DEFAULT 0,
     malformed BIGINT NOT NULL DEFAULT 0,
     failures TEXT NOT NULL DEFAULT '[]',
     error TEXT,
     processing_ms BIGINT NOT NULL DEFAULT 0
   );
   CREATE INDEX history_imports_app ON history_imports(app_id, created_ms);
   CREATE TABLE history_import_objects (
     job_id TEXT NOT NULL,
     seq INTEGER NOT NULL,
     key TEXT NOT NULL,
     lines_done BIGINT NOT NULL DEFAULT 0,
     done INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (job_id, seq)
   );`,
];

/**
 * Portable SQL to PostgreSQL's: `?` placeholders become `$1, $2, …` (quoted text is left alone) and
 * SQLite's `INDEXED BY name` planner hints are dropped (PostgreSQL plans with statistics).
 */
export function pgSql(sql: string): string {
  return pgPlaceholders(sql.includes('INDEXED BY') ? sql.replace(/ INDEXED BY \w+/g, '') : sql);
}

/** `?` placeholders (the portable form) to PostgreSQL's `$1, $2, …`; quoted text is left alone. */
export function pgPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  let quote: string | undefined;
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = undefined;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else out += ch === '?' ? '$' + ++n : ch;
  }
  return out;
}


const where = (u: URL) => `PostgreSQL at ${u.hostname}:${u.port || 5432}${u.pathname}`;

// int8 (counts, BIGINT sequences) as numbers, as SQLite gives them: they stay far below 2^53.
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

export class PostgresDriver implements SqlDriver {
  readonly kind = 'postgres' as const;
  /** Tells this node's own notifications from other nodes'. */
  private readonly node = randomBytes(8).toString('hex');
  private listener?: pg.Client;
  private listening = false;
  private closed = false;
  private retry?: NodeJS.Timeout;
  private readonly waiters = new Set<() => void>();

  private constructor(
    private readonly url: URL,
    private readonly pool: pg.Pool,
    private readonly connectTimeoutMs: number,
  ) {
    // An idle pooled connection that dies (server restart) must not crash the process.
    pool.on('error', (e) => console.error(`pinstream: ${where(url)}: idle connection lost: ${e.message}`));
  }

  /** Connects (bounded by `connectTimeoutMs`), applies migrations, and is ready to read and write. */
  static async open(url: string, opts: { connectTimeoutMs?: number; label?: string } = {}): Promise<PostgresDriver> {
    const u = parsePostgresUrl(url, opts.label);
    const connectTimeoutMs = opts.connectTimeoutMs ?? PG_CONNECT_TIMEOUT_MS;
    const pool = new pg.Pool({
      connectionString: url,
      max: PG_POOL_SIZE,
      connectionTimeoutMillis: connectTimeoutMs,
      query_timeout: PG_QUERY_TIMEOUT_MS,
      types,
    });
    const d = new PostgresDriver(u, pool, connectTimeoutMs);
    try {
      await d.migrate();
    } catch (e) {
      await pool.end().catch(() => {});
      throw new PostgresError(`${where(u)} is unreachable or refused the metadata store: ${(e as Error).message || String(e)}`);
    }
    return d;
  }

  async all<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await this.pool.query(pgSql(sql), params)).rows as T[];
  }

  async write(stmts: Stmt[], changes: Change[]): Promise<unknown[][]> {
    return this.transact(function* () {
      const rows: unknown[][] = [];
      for (const s of stmts) rows.push(yield s);
      return rows;
    }, changes);
  }

  async transact<T>(steps: () => Steps<T>, changes: Change[] = []): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const rows = await runStepsAsync(steps(), async (s) => (await c.query(pgSql(s.sql), s.params ?? [])).rows);
      // One notification per write, so other nodes apply its changes together. PostgreSQL caps a
      // payload at 8000 bytes: past PG_MAX_PAYLOAD_BYTES the nodes are told to reload everything.
      let payload = JSON.stringify({ n: this.node, c: changes.map((ch) => ({ t: ch.table, k: ch.key })) });
      if (Buffer.byteLength(payload) > PG_MAX_PAYLOAD_BYTES) payload = JSON.stringify({ n: this.node, all: true });
      if (changes.length > 0) await c.query('SELECT pg_notify($1, $2)', [PG_CHANNEL, payload]);
      await c.query('COMMIT');
      return rows;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      c.release();
    }
  }

  listen(onChanges: (c: Change[]) => void, onResync: () => void): void {
    let delay = PG_RECONNECT_MIN_MS;
    const connect = async (resync: boolean): Promise<void> => {
      const client = new pg.Client({ connectionString: this.url.href, connectionTimeoutMillis: this.connectTimeoutMs, types });
      const lost = (why: string) => {
        if (this.listener !== client) return;
        this.listener = undefined;
        this.listening = false;
        client.end().catch(() => {});
        if (this.closed) return;
        console.error(`pinstream: ${where(this.url)}: change notifications lost (${why}); reconnecting, then reloading the metadata cache`);
        schedule();
      };
      client.on('error', (e) => lost(e.message));
      client.on('end', () => lost('connection closed'));
      client.on('notification', (m) => {
        if (m.channel !== PG_CHANNEL || m.payload === undefined) return;
        let p: { n?: unknown; c?: Array<{ t?: unknown; k?: unknown }>; all?: unknown };
        try {
          p = JSON.parse(m.payload) as typeof p;
        } catch {
          return;
        }
        if (p.n === this.node) return;
        if (p.all === true) return onResync();
        if (!Array.isArray(p.c)) return;
        onChanges(p.c.filter((x) => typeof x.t === 'string' && Array.isArray(x.k)).map((x) => ({ table: x.t as string, key: x.k as unknown[] })));
      });
      this.listener = client;
      try {
        await client.connect();
        await client.query(`LISTEN ${PG_CHANNEL}`);
      } catch (e) {
        lost((e as Error).message);
        return;
      }
      if (this.closed) return void client.end().catch(() => {});
      this.listening = true;
      for (const w of this.waiters) w();
      this.waiters.clear();
      delay = PG_RECONNECT_MIN_MS;
      if (resync) onResync();
    };
    const schedule = () => {
      this.retry = setTimeout(() => void connect(true), delay);
      delay = Math.min(delay * 2, PG_RECONNECT_MAX_MS);
    };
    void connect(false);
  }

  /** Resolves once the LISTEN connection is up (start-up waits for it, at most `timeoutMs`). */
  listeningNow(timeoutMs = this.connectTimeoutMs * 2): Promise<void> {
    if (this.listening) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(ready);
        reject(new PostgresError(`${where(this.url)}: could not LISTEN for metadata changes within ${timeoutMs} ms`));
      }, timeoutMs);
      const ready = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.add(ready);
    });
  }

  isUniqueViolation(e: unknown): boolean {
    return (e as { code?: unknown })?.code === '23505';
  }

  stale(): boolean {
    return !this.listening;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    const l = this.listener;
    this.listener = undefined;
    this.listening = false;
    await l?.end().catch(() => {});
    await this.pool.end();
  }

  private async migrate(): Promise<void> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      // Held to COMMIT: a second node starting now waits here, then sees the versions applied.
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await c.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
      const done = (await c.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations')).rows[0].v ?? 0;
      for (let v = done; v < PG_MIGRATIONS.length; v++) {
        await c.query(PG_MIGRATIONS[v]);
        await c.query('INSERT INTO schema_migrations (version) VALUES ($1)', [v + 1]);
      }
      await c.query('COMMIT');
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      c.release();
    }
  }
}
