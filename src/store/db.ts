// Metadata store: one SQLite database (WAL) in the data directory for apps, endpoints, access
// keys and, later, event streams, roles and checkpoints. Schema changes are ordered migrations
// applied at open, so an old data directory upgrades in place.
//
// synchronous=NORMAL: a committed transaction survives a process crash (kill -9); only an OS crash
// can lose the last few. Events never depend on this: they are fsynced in the ingest log.

import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export type Db = Database.Database;

/** Exported for the upgrade tests (an old data directory is built by applying a prefix of them). */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE apps (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     creation_date TEXT NOT NULL,
     created_seq INTEGER NOT NULL,
     tags TEXT NOT NULL DEFAULT '{}',
     settings TEXT NOT NULL DEFAULT '{}'
   );
   CREATE TABLE endpoints (
     app_id TEXT NOT NULL,
     id TEXT NOT NULL COLLATE NOCASE,
     user_id TEXT,
     address TEXT,
     data TEXT NOT NULL,
     PRIMARY KEY (app_id, id)
   ) WITHOUT ROWID;
   CREATE INDEX endpoints_user ON endpoints(app_id, user_id) WHERE user_id IS NOT NULL;
   CREATE INDEX endpoints_address ON endpoints(app_id, address) WHERE address IS NOT NULL;
   CREATE TABLE app_attribute_names (
     app_id TEXT NOT NULL,
     name TEXT NOT NULL,
     PRIMARY KEY (app_id, name)
   ) WITHOUT ROWID;
   `,
  // Embedded Kinesis: one JSON document per stream (shards, lineage, consumers, tags); control-plane
  // changes are rare and small, and the record data lives in per-shard segment logs.
  `CREATE TABLE kinesis_streams (
     name TEXT PRIMARY KEY,
     data TEXT NOT NULL
   );
   CREATE TABLE secrets (
     name TEXT PRIMARY KEY,
     value BLOB NOT NULL
   );`,
  // IAM: users and their access keys (secrets sealed with the data directory's master key), roles,
  // and the inline policies of both.
  `CREATE TABLE iam_users (
     name TEXT PRIMARY KEY,
     user_id TEXT NOT NULL,
     path TEXT NOT NULL,
     create_date TEXT NOT NULL
   );
   CREATE TABLE access_keys (
     access_key_id TEXT PRIMARY KEY,
     secret BLOB NOT NULL,
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
   CREATE TABLE iam_policies (
     kind TEXT NOT NULL,
     owner TEXT NOT NULL,
     name TEXT NOT NULL,
     document TEXT NOT NULL,
     PRIMARY KEY (kind, owner, name)
   ) WITHOUT ROWID;`,
  // Event streams: one per app, with the delivery checkpoint (first ingest-log offset not yet
  // delivered) and the records the destination could never take.
  `CREATE TABLE event_streams (
     app_id TEXT PRIMARY KEY,
     destination_arn TEXT NOT NULL,
     role_arn TEXT NOT NULL,
     last_modified TEXT NOT NULL,
     last_updated_by TEXT NOT NULL,
     checkpoint INTEGER NOT NULL
   );
   CREATE TABLE delivery_errors (
     app_id TEXT NOT NULL,
     log_offset INTEGER NOT NULL,
     event_id TEXT NOT NULL,
     endpoint_id TEXT NOT NULL,
     reason TEXT NOT NULL,
     at TEXT NOT NULL
   );
   CREATE INDEX delivery_errors_app ON delivery_errors(app_id);`,
  // Embedded Firehose: one JSON document per delivery stream (configuration, version, tags), and
  // the positions of its readers (key '' = the deliverer's log offset; shard ids = a Kinesis
  // source's last sequence number). Buffered records live in per-stream segment logs.
  `CREATE TABLE firehose_streams (
     name TEXT PRIMARY KEY,
     data TEXT NOT NULL
   );
   CREATE TABLE firehose_checkpoints (
     stream TEXT NOT NULL,
     key TEXT NOT NULL,
     position TEXT NOT NULL,
     PRIMARY KEY (stream, key)
   ) WITHOUT ROWID;`,
  // Analytics: saved funnels (ordered steps as JSON) per app; the events themselves live in DuckDB.
  `CREATE TABLE analytics_funnels (
     app_id TEXT NOT NULL,
     id TEXT NOT NULL,
     name TEXT NOT NULL,
     steps TEXT NOT NULL,
     PRIMARY KEY (app_id, id)
   ) WITHOUT ROWID;`,
  // Endpoint lookups by address used the primary key's app_id prefix instead of the partial index
  // (SQLite's planner, without statistics, preferred it): every write scanned the whole app. The
  // address column now holds the Address of ACTIVE endpoints only (the one lookup it serves is
  // "other ACTIVE endpoints with this address"), so a thousand endpoints that once shared an
  // address are not re-read on every write either. Queries name their index (INDEXED BY in
  // endpoints.ts), so a plan can never fall back to a scan of the app.
  `ALTER TABLE endpoints RENAME COLUMN address TO active_address;
   UPDATE endpoints SET active_address = NULL
     WHERE active_address IS NOT NULL AND json_extract(data, '$.EndpointStatus') IS NOT 'ACTIVE';
   DROP INDEX endpoints_address;
   CREATE INDEX endpoints_active_address ON endpoints(app_id, active_address) WHERE active_address IS NOT NULL;`,
  // Apps deleted whose endpoints are still being removed, a chunk per event-loop turn (an app may
  // hold millions of endpoints; one DELETE of them all blocked the server for seconds). A purge
  // interrupted by a stop resumes at the next start.
  `CREATE TABLE endpoint_purges (app_id TEXT PRIMARY KEY) WITHOUT ROWID;`,
  // IAM managed policies (their versions, and which users, groups and roles they are attached to),
  // groups and their members (group inline policies live in iam_policies with kind 'group'), and
  // STS temporary credentials: kept here so they outlive a restart as AWS's do, secret and token
  // sealed like access keys' secrets, removed a while after they expire.
  `CREATE TABLE iam_managed_policies (
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
   CREATE TABLE iam_policy_versions (
     arn TEXT NOT NULL,
     version INTEGER NOT NULL,
     document TEXT NOT NULL,
     create_date TEXT NOT NULL,
     PRIMARY KEY (arn, version)
   ) WITHOUT ROWID;
   CREATE TABLE iam_attachments (
     kind TEXT NOT NULL,
     owner TEXT NOT NULL,
     policy_arn TEXT NOT NULL,
     PRIMARY KEY (kind, owner, policy_arn)
   ) WITHOUT ROWID;
   CREATE INDEX iam_attachments_policy ON iam_attachments(policy_arn);
   CREATE TABLE iam_groups (
     name TEXT PRIMARY KEY,
     group_id TEXT NOT NULL,
     path TEXT NOT NULL,
     create_date TEXT NOT NULL
   );
   CREATE TABLE iam_group_members (
     group_name TEXT NOT NULL,
     user_name TEXT NOT NULL,
     PRIMARY KEY (group_name, user_name)
   ) WITHOUT ROWID;
   CREATE INDEX iam_group_members_user ON iam_group_members(user_name);
   CREATE TABLE sts_sessions (
     access_key_id TEXT PRIMARY KEY,
     secret BLOB NOT NULL,
     token BLOB NOT NULL,
     kind TEXT NOT NULL,
     principal TEXT NOT NULL,
     principal_id TEXT NOT NULL,
     arn TEXT NOT NULL,
     policy TEXT,
     chained INTEGER NOT NULL DEFAULT 0,
     expiration INTEGER NOT NULL,
     create_date TEXT NOT NULL
   );
   CREATE INDEX sts_sessions_expiration ON sts_sessions(expiration);`,
  // Embedded Kinesis account-level settings (UpdateAccountSettings: the minimum throughput billing
  // commitment), one JSON value per setting. Per-stream state added with them (enhanced
  // monitoring, record size, resource policies) lives in the stream documents of kinesis_streams.
  `CREATE TABLE kinesis_account_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;`,
  // Kinesis server-side encryption: the data keys of each stream incarnation (`<name>-<created ms>`,
  // as its shard-log directory), sealed with the master key. Records name their key by key_id, so
  // every key stays until the incarnation is deleted: old records keep opening after a rotation.
  `CREATE TABLE kinesis_data_keys (
     stream TEXT NOT NULL,
     key_id INTEGER NOT NULL,
     created_ms INTEGER NOT NULL,
     sealed BLOB NOT NULL,
     PRIMARY KEY (stream, key_id)
   ) WITHOUT ROWID;`,
  // Cognito identity pools and their identities; a login (provider, subject) belongs to one
  // identity of a pool. Temporary credentials issued to a web identity carry its claims
  // (web_identity, JSON) and, for Cognito identities, the identity id (to bound its sessions).
  `CREATE TABLE cognito_pools (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     data TEXT NOT NULL,
     create_date INTEGER NOT NULL
   );
   CREATE TABLE cognito_identities (
     id TEXT PRIMARY KEY,
     pool_id TEXT NOT NULL,
     logins TEXT NOT NULL DEFAULT '{}',
     create_date INTEGER NOT NULL,
     last_modified INTEGER NOT NULL
   );
   CREATE INDEX cognito_identities_pool ON cognito_identities(pool_id, id);
   CREATE TABLE cognito_logins (
     pool_id TEXT NOT NULL,
     provider TEXT NOT NULL,
     subject TEXT NOT NULL,
     identity_id TEXT NOT NULL,
     PRIMARY KEY (pool_id, provider, subject)
   ) WITHOUT ROWID;
   CREATE INDEX cognito_logins_identity ON cognito_logins(identity_id);
   ALTER TABLE sts_sessions ADD COLUMN web_identity TEXT;
   ALTER TABLE sts_sessions ADD COLUMN identity_id TEXT;
   CREATE INDEX sts_sessions_identity ON sts_sessions(identity_id, create_date) WHERE identity_id IS NOT NULL;`,
  // Endpoint import and export jobs (src/pinpoint/jobs/): a row per job with Pinpoint's counters
  // and failure samples, and a row per piece (an object read or written) with how far it got —
  // lines and bytes applied for an import, the last endpoint id written for an export — updated in
  // the same transaction as the endpoints a batch writes, so a restart resumes exactly there.
  `CREATE TABLE endpoint_jobs (
     app_id TEXT NOT NULL,
     id TEXT NOT NULL,
     type TEXT NOT NULL,
     status TEXT NOT NULL,
     definition TEXT NOT NULL,
     creation_date TEXT NOT NULL,
     completion_date TEXT,
     created_seq INTEGER NOT NULL,
     total_pieces INTEGER NOT NULL DEFAULT 0,
     completed_pieces INTEGER NOT NULL DEFAULT 0,
     failed_pieces INTEGER NOT NULL DEFAULT 0,
     total_processed INTEGER NOT NULL DEFAULT 0,
     total_failures INTEGER NOT NULL DEFAULT 0,
     failures TEXT NOT NULL DEFAULT '[]',
     cursor TEXT,
     PRIMARY KEY (app_id, id)
   ) WITHOUT ROWID;
   CREATE INDEX endpoint_jobs_list ON endpoint_jobs(app_id, type, created_seq);
   CREATE INDEX endpoint_jobs_unfinished ON endpoint_jobs(created_seq) WHERE status NOT IN ('COMPLETED', 'FAILED');
   CREATE TABLE endpoint_job_pieces (
     job_id TEXT NOT NULL,
     piece INTEGER NOT NULL,
     key TEXT NOT NULL,
     state TEXT NOT NULL,
     lines INTEGER NOT NULL DEFAULT 0,
     byte_offset INTEGER NOT NULL DEFAULT 0,
     gzip INTEGER,
     header TEXT,
     PRIMARY KEY (job_id, piece)
   ) WITHOUT ROWID;`,
  // The Glue-style Data Catalog (src/catalog/store.ts): one JSON document per database, table and
  // partition, names folded to lower case; a table counts its partitions for the per-table quota.
  `CREATE TABLE glue_databases (
     name TEXT PRIMARY KEY,
     data TEXT NOT NULL
   );
   CREATE TABLE glue_tables (
     db TEXT NOT NULL,
     name TEXT NOT NULL,
     data TEXT NOT NULL,
     partitions INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (db, name)
   ) WITHOUT ROWID;
   CREATE TABLE glue_partitions (
     db TEXT NOT NULL,
     tbl TEXT NOT NULL,
     vals TEXT NOT NULL,
     data TEXT NOT NULL,
     PRIMARY KEY (db, tbl, vals)
   ) WITHOUT ROWID;`,
  // --- Event streams on the metadata Store (issue 17, src/pinpoint/eventstream-store.ts) ---
  // The delivery checkpoint leaves the settings row for a table of its own (written every batch,
  // never cached; the settings are cached whole on every node), each checkpoint carrying the
  // `epoch` its settings row had when it was last set (PutEventStream to a new destination,
  // replay): a worker only moves the checkpoint of the epoch it started from, so one stopped
  // elsewhere cannot overwrite a replay. Existing checkpoints are copied over. Delivery errors are
  // one per (app, offset) now (a record rejected again after a replay replaces its row), which is
  // what their bound (the newest MAX_DELIVERY_ERRORS_PER_APP offsets per app) deletes by.
  `CREATE TABLE delivery_checkpoints (
     app_id TEXT PRIMARY KEY,
     position INTEGER NOT NULL,
     epoch INTEGER NOT NULL
   ) WITHOUT ROWID;
   ALTER TABLE event_streams ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
   INSERT INTO delivery_checkpoints (app_id, position, epoch) SELECT app_id, checkpoint, 0 FROM event_streams;
   ALTER TABLE event_streams DROP COLUMN checkpoint;
   DELETE FROM delivery_errors WHERE rowid NOT IN (SELECT max(rowid) FROM delivery_errors GROUP BY app_id, log_offset);
   DROP INDEX delivery_errors_app;
   CREATE UNIQUE INDEX delivery_errors_app ON delivery_errors(app_id, log_offset);`,
];

export function openDb(dataDir: string): Db {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, 'pinstream.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

function migrate(db: Db): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
