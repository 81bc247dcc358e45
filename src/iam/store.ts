// IAM entities in the metadata store: users, their access keys and inline policies, roles with
// their trust and inline policies, groups and their members, managed policies with their versions
// and attachments, and STS temporary credentials. It owns which policies apply to a principal
// (policies(): inline + attached, and for a user its groups' too). Secret access keys and session
// tokens are encrypted at rest (AES-256-GCM with a master key kept in the data directory, mode
// 0600): SigV4 needs the plaintext secret to verify signatures, so hashing is not an option.
// Secrets are shown once, at creation, and never logged.
// STS temporary sessions are many and short-lived, so they are not cached whole: embedded, they are
// read synchronously from SQLite as before; on PostgreSQL a key not known here is looked up once,
// asynchronously (resolveKey, which the dispatcher awaits before SigV4 verification), and kept in a
// bounded LRU of sessions found and a bounded, short-lived cache of keys not found, so unknown keys
// cannot hammer the database. Deleted sessions (a Cognito identity's oldest) are announced to other
// nodes, which drop them from their LRU.

import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Db } from '../store/db.js';
import type { CachedTable, Change, MetadataCache, Stmt } from '../store/metadata.js';
import type { Credentials } from './sigv4.js';
import { parsePolicy, type PolicyDocument } from './policy.js';
import { SecretBox } from './secrets.js';

export const ADMIN_USER = 'admin';
/** Row of the `secrets` table remembering which admin key is the bootstrap one (not a secret itself). */
const BOOTSTRAP_KEY_RECORD = 'iam-bootstrap-key-id';
/** Row of `secrets` locked while a generated admin key is created (nodes starting together take turns). */
const BOOTSTRAP_LOCK_RECORD = 'iam-bootstrap-lock';
export const MAX_ACCESS_KEYS_PER_USER = 2;
const KEY_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

export interface UserRow {
  name: string;
  user_id: string;
  path: string;
  create_date: string;
}

export interface RoleRow {
  name: string;
  role_id: string;
  path: string;
  create_date: string;
  assume_role_policy: string;
  description: string | null;
  max_session_duration: number;
}

export interface GroupRow {
  name: string;
  group_id: string;
  path: string;
  create_date: string;
}

export interface ManagedPolicyRow {
  arn: string;
  name: string;
  policy_id: string;
  path: string;
  description: string | null;
  default_version: string;
  next_version: number;
  create_date: string;
  update_date: string;
}

export interface PolicyVersionRow {
  version_id: string;
  document: string;
  create_date: string;
  is_default: boolean;
}

/** Who may have inline and attached policies. */
export type PolicyOwnerKind = 'user' | 'group' | 'role';

/** What a temporary session carries besides its principal (STS AssumeRole / GetSessionToken). */
export interface TemporaryInfo {
  /** RoleId or UserId when the session began: an entity deleted and created again under the name does not serve old sessions (as in AWS). */
  principalId: string;
  /** The session policy (AssumeRole's Policy): the session may do only what both it and the principal's policies allow. */
  policy?: PolicyDocument;
  /** Obtained with other temporary credentials (role chaining). */
  chained: boolean;
  /** ms since epoch */
  expiration: number;
  /** Sessions of a web identity (Cognito, an OIDC provider): its claims, for policy variables and conditions. */
  webIdentity?: WebIdentity;
}

/**
 * Who a web-identity session acts for: the provider (`cognito-identity.amazonaws.com`, or an OIDC
 * provider's name, its issuer without https://) and the token's claims, which policies read as
 * `PROVIDER:sub`, `PROVIDER:aud` and `PROVIDER:amr`. Cognito identities also name their pool.
 */
export interface WebIdentity {
  provider: string;
  sub: string;
  aud: string;
  amr?: string[];
  /** Cognito only: the identity pool (the record's application.cognito_identity_pool_id). */
  poolId?: string;
}

export interface NewTemporarySession {
  kind: 'user' | 'role';
  /** User or role name. */
  principal: string;
  principalId: string;
  /** What GetCallerIdentity answers: the user ARN, or arn:aws:sts::ACCT:assumed-role/ROLE/SESSION. */
  arn: string;
  durationSeconds: number;
  /** Session policy text, already validated. */
  policy?: string;
  chained?: boolean;
  webIdentity?: WebIdentity;
}

export interface KeyRow {
  access_key_id: string;
  user_name: string;
  status: 'Active' | 'Inactive';
  create_date: string;
}

/** Who signs with an active access key: its secret, its user and that user's ARN. */
export interface KeyOwner {
  creds: Credentials;
  /** 'user' for IAM users' keys; 'role' for the session keys Pinstream uses when acting as a role. */
  kind: 'user' | 'role';
  /** User name, or role name for a role session. */
  user: string;
  arn: string;
  /** Role sessions only: the service that assumed the role and for which resource. */
  session?: RoleSource;
  /** STS temporary credentials only. */
  temporary?: TemporaryInfo;
}

/**
 * Who assumes a role and on whose behalf: the service principal (pinpoint.amazonaws.com,
 * firehose.amazonaws.com), and the aws:SourceArn / aws:SourceAccount a trust policy may test
 * (the app an event stream belongs to, the delivery stream that writes).
 */
export interface RoleSource {
  service: string;
  sourceArn: string;
  sourceAccount: string;
}

/** Pre-sessions data directories kept one long-lived key per role under this owner name; they are removed at start. */
const LEGACY_ROLE_KEY_OWNER = '@role:';
/** Temporary keys (AWS: ASIA…) are told apart from users' long-term keys (PSAK…). */
const SESSION_KEY_PREFIX = 'PSIA';
/** At most this many role sessions: one per (role, service, source) ever used by this process, so far fewer in practice. */
export const MAX_ROLE_SESSIONS = 100_000;
/** STS temporary access key ids start as AWS's do. */
export const TEMPORARY_KEY_PREFIX = 'ASIA';
/**
 * Expired temporary credentials are kept this long before they are removed: until then a client
 * still using them is told they expired (ExpiredToken, on which SDKs refresh their credentials)
 * rather than that they are unknown.
 */
export const EXPIRED_SESSION_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Temporary sessions found by their key, kept in memory (least recently used dropped first). */
export const SESSION_CACHE_SIZE = 10_000;
/** Keys looked up and not found, remembered (oldest dropped first) for UNKNOWN_KEY_TTL_MS. */
export const UNKNOWN_KEY_CACHE_SIZE = 10_000;
export const UNKNOWN_KEY_TTL_MS = 30_000;
/** Session lookups waiting on the database at once; past it a request is refused as busy (503, retryable). */
export const MAX_SESSION_LOOKUPS_IN_FLIGHT = 64;
/** Longest a session lookup may wait on the database before the request is refused as busy. */
export const SESSION_LOOKUP_TIMEOUT_MS = 5_000;
/** The table of temporary sessions (not cached whole; its changes drop entries of the session caches). */
export const STS_SESSIONS_TABLE = 'sts_sessions';
/** A lookup could not be made now (too many in flight, or the database too slow): retry. */
export class SessionLookupBusy extends Error {
  override name = 'SessionLookupBusy';
}

/** AWS's limits: versions per managed policy, managed policies attached per user, group and role. */
export const MAX_POLICY_VERSIONS = 5;
export const MAX_ATTACHED_POLICIES = 10;

/** IAM's tables in the metadata store, held whole in memory (IAM is small and read on every request). */
const T = {
  users: { table: 'iam_users', keys: ['name'] },
  keys: { table: 'access_keys', keys: ['access_key_id'] },
  roles: { table: 'iam_roles', keys: ['name'] },
  policies: { table: 'iam_policies', keys: ['kind', 'owner', 'name'] },
  managed: { table: 'iam_managed_policies', keys: ['arn'] },
  versions: { table: 'iam_policy_versions', keys: ['arn', 'version'] },
  attachments: { table: 'iam_attachments', keys: ['kind', 'owner', 'policy_arn'] },
  groups: { table: 'iam_groups', keys: ['name'] },
  members: { table: 'iam_group_members', keys: ['group_name', 'user_name'] },
} as const;
/** Tables whose change can change which policies apply to someone. */
const POLICY_TABLES = new Set<string>([T.policies.table, T.managed.table, T.versions.table, T.attachments.table, T.members.table]);

interface KeyRecord extends KeyRow {
  secret: Buffer;
}
interface PolicyRecord {
  kind: PolicyOwnerKind;
  owner: string;
  name: string;
  document: string;
}
interface VersionRecord {
  arn: string;
  version: number;
  document: string;
  create_date: string;
}
interface AttachmentRecord {
  kind: PolicyOwnerKind;
  owner: string;
  policy_arn: string;
}
interface SessionRow {
  secret: Buffer;
  token: Buffer;
  kind: 'user' | 'role';
  principal: string;
  principal_id: string;
  arn: string;
  policy: string | null;
  chained: number;
  expiration: number;
  web_identity: string | null;
}
interface MemberRecord {
  group_name: string;
  user_name: string;
}

const byName = <R extends { name: string }>(a: R, b: R) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
const sameName = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * IAM over the metadata store (store/metadata.ts): every read below is synchronous, from the
 * store's in-memory copy of IAM's tables, kept current across nodes; every write is async, one
 * transaction, and visible to reads here when its promise resolves. STS temporary credentials are
 * in the same store but not cached whole (they may be many): see resolveKey.
 */
export class IamStore {
  private keyCache = new Map<string, KeyOwner | null>();
  /** Temporary sessions found, in least-recently-used order (the first is dropped first). */
  private sessionHits = new Map<string, KeyOwner>();
  /** Temporary keys not found, until when that answer stands. */
  private unknownKeys = new Map<string, number>();
  private lookups = new Map<string, Promise<void>>();
  /** Sessions deleted while being looked up: the lookup's answer (read before the delete) is void. */
  private revokedWhileLooking = new Set<string>();
  /** Bumped when every session cache is dropped (a resync): a lookup running then reads again. */
  private sessionEpoch = 0;
  private policyCache = new Map<string, PolicyDocument[]>();
  private trustCache = new Map<string, PolicyDocument>();
  /**
   * Role sessions, in memory only (like STS credentials they do not outlive the process): by
   * access key id, and by role/service/source so one user of a role reuses its session.
   */
  private sessions = new Map<string, KeyOwner & { session: RoleSource }>();
  private sessionBySource = new Map<string, string>();
  private secrets: SecretBox;

  private constructor(
    private db: Db,
    private meta: MetadataCache,
    private t: {
      users: CachedTable<UserRow>;
      keys: CachedTable<KeyRecord>;
      roles: CachedTable<RoleRow>;
      policies: CachedTable<PolicyRecord>;
      managed: CachedTable<ManagedPolicyRow>;
      versions: CachedTable<VersionRecord>;
      attachments: CachedTable<AttachmentRecord>;
      groups: CachedTable<GroupRow>;
      members: CachedTable<MemberRecord>;
    },
    private clock: Clock,
    readonly accountId: string,
    secrets: SecretBox,
    private readonly maxSessions: number,
  ) {
    this.secrets = secrets;
    meta.onChange((c) => {
      // Keys and users: who signs with what (negative answers are cached too, so any change clears all).
      if (c.table === T.keys.table || c.table === T.users.table) this.keyCache.clear();
      if (POLICY_TABLES.has(c.table)) this.policyCache.clear();
      if (c.table === STS_SESSIONS_TABLE || c.table === '*') {
        if (c.key.length === 1 && typeof c.key[0] === 'string') {
          if (this.lookups.has(c.key[0])) this.revokedWhileLooking.add(c.key[0]);
          this.sessionHits.delete(c.key[0]);
          this.unknownKeys.delete(c.key[0]);
          this.keyCache.delete(c.key[0]);
        } else {
          this.sessionEpoch++;
          this.sessionHits.clear();
          this.unknownKeys.clear();
          this.keyCache.clear();
        }
      }
    });
  }

  /**
   * Opens IAM on a metadata store (`meta`); `db` is this node's SQLite database (temporary
   * credentials). `secrets` defaults to the data directory's master key.
   */
  static async open(
    db: Db,
    meta: MetadataCache,
    clock: Clock,
    accountId: string,
    dataDir: string,
    opts: { maxSessions?: number; secrets?: SecretBox } = {},
  ): Promise<IamStore> {
    const t = {
      users: await meta.table<UserRow>(T.users),
      keys: await meta.table<KeyRecord>(T.keys),
      roles: await meta.table<RoleRow>(T.roles),
      policies: await meta.table<PolicyRecord>(T.policies),
      managed: await meta.table<ManagedPolicyRow>(T.managed),
      versions: await meta.table<VersionRecord>(T.versions),
      attachments: await meta.table<AttachmentRecord>(T.attachments),
      groups: await meta.table<GroupRow>(T.groups),
      members: await meta.table<MemberRecord>(T.members),
    };
    const store = new IamStore(db, meta, t, clock, accountId, opts.secrets ?? new SecretBox(dataDir), opts.maxSessions ?? MAX_ROLE_SESSIONS);
    // Long-lived role keys of earlier versions carried no record of who assumed the role for what,
    // so no trust policy could be checked against them: they are not honoured, and removed.
    for (const k of t.keys.filter((k) => k.user_name.startsWith(LEGACY_ROLE_KEY_OWNER))) await store.deleteAccessKey(k.access_key_id);
    await store.purgeExpiredSessions();
    return store;
  }

  /** The write failed because the key it inserts exists (another request or node took the name first). */
  isUniqueViolation(e: unknown): boolean {
    return this.meta.driver.isUniqueViolation(e);
  }

  userArn = (u: { name: string; path: string }) => `arn:aws:iam::${this.accountId}:user${u.path}${u.name}`;
  roleArn = (r: { name: string; path: string }) => `arn:aws:iam::${this.accountId}:role${r.path}${r.name}`;
  groupArn = (g: { name: string; path: string }) => `arn:aws:iam::${this.accountId}:group${g.path}${g.name}`;

  // --- users -------------------------------------------------------------------------------
  async createUser(name: string, path = '/'): Promise<UserRow> {
    const row: UserRow = { name, user_id: 'AIDA' + randomId(17), path, create_date: this.now() };
    await this.meta.write(
      [{ sql: 'INSERT INTO iam_users (name, user_id, path, create_date) VALUES (?, ?, ?, ?)', params: [row.name, row.user_id, row.path, row.create_date] }],
      [{ table: T.users.table, key: [name] }],
    );
    return row;
  }

  getUser(name: string): UserRow | undefined {
    return this.t.users.get(name);
  }

  /** IAM names are unique regardless of case ("ROLE" and "role" cannot both exist): the existing spelling, if any. */
  userNameTaken(name: string): string | undefined {
    return this.t.users.filter((u) => sameName(u.name, name))[0]?.name;
  }

  listUsers(): UserRow[] {
    return [...this.t.users.values()].sort(byName);
  }

  async deleteUser(name: string): Promise<void> {
    await this.meta.write([{ sql: 'DELETE FROM iam_users WHERE name = ?', params: [name] }], [{ table: T.users.table, key: [name] }]);
  }

  // --- access keys -------------------------------------------------------------------------
  async createAccessKey(user: string, given?: Credentials): Promise<Credentials & { createDate: string }> {
    const creds = given ?? generateKey();
    const createDate = this.now();
    await this.meta.write([this.putKeyStmt(creds, user, createDate)], [{ table: T.keys.table, key: [creds.accessKeyId] }]);
    return { ...creds, createDate };
  }

  private putKeyStmt(creds: Credentials, user: string, createDate: string): Stmt {
    return {
      sql: `INSERT INTO access_keys (access_key_id, secret, user_name, status, create_date) VALUES (?, ?, ?, 'Active', ?)
            ON CONFLICT(access_key_id) DO UPDATE SET secret = excluded.secret, user_name = excluded.user_name, status = 'Active'`,
      params: [creds.accessKeyId, this.seal(creds.secretAccessKey), user, createDate],
    };
  }

  listAccessKeys(user: string): KeyRow[] {
    return this.t.keys
      .filter((k) => k.user_name === user)
      .sort((a, b) => (a.create_date !== b.create_date ? (a.create_date < b.create_date ? -1 : 1) : a.access_key_id < b.access_key_id ? -1 : 1))
      .map(keyRow);
  }

  getAccessKey(id: string): KeyRow | undefined {
    const k = this.t.keys.get(id);
    return k && keyRow(k);
  }

  async setAccessKeyStatus(id: string, status: 'Active' | 'Inactive'): Promise<void> {
    await this.meta.write([{ sql: 'UPDATE access_keys SET status = ? WHERE access_key_id = ?', params: [status, id] }], [{ table: T.keys.table, key: [id] }]);
  }

  async deleteAccessKey(id: string): Promise<void> {
    await this.meta.write([{ sql: 'DELETE FROM access_keys WHERE access_key_id = ?', params: [id] }], [{ table: T.keys.table, key: [id] }]);
  }

  /** The SigV4 lookup: secret and owner of an active key. Cached: it runs on every request. */
  lookup = (accessKeyId: string): Credentials | undefined => this.keyOwner(accessKeyId)?.creds;

  keyOwner(accessKeyId: string): KeyOwner | undefined {
    const session = this.sessions.get(accessKeyId);
    if (session) return session;
    let c = this.keyCache.get(accessKeyId);
    if (c === undefined) {
      const k = this.t.keys.get(accessKeyId);
      if (!k && accessKeyId.startsWith(TEMPORARY_KEY_PREFIX)) return this.sessionOwner(accessKeyId);
      const u = k && k.status === 'Active' ? this.t.users.get(k.user_name) : undefined;
      // The secret is opened once per key, not on every request.
      c = u ? { creds: { accessKeyId, secretAccessKey: this.open(k!.secret) }, kind: 'user', user: u.name, arn: this.userArn(u) } : null;
      if (this.keyCache.size > 10_000) this.keyCache.clear();
      this.keyCache.set(accessKeyId, c);
    }
    return c ?? undefined;
  }

  /**
   * Makes the owner of `accessKeyId` known to keyOwner (and so to the synchronous SigV4 lookup):
   * undefined when it already is (a long-term key, a cached session, a key known not to exist, or
   * embedded SQLite, read synchronously), else a promise that settles once the session was looked
   * up in the shared store. Rejects with SessionLookupBusy when too many lookups are waiting or the
   * database does not answer within SESSION_LOOKUP_TIMEOUT_MS.
   */
  resolveKey(accessKeyId: string): Promise<void> | undefined {
    if (this.meta.driver.kind === 'sqlite' || !accessKeyId.startsWith(TEMPORARY_KEY_PREFIX)) return undefined;
    if (this.t.keys.get(accessKeyId) || this.cachedSession(accessKeyId) || this.knownUnknown(accessKeyId)) return undefined;
    const pending = this.lookups.get(accessKeyId);
    if (pending) return pending;
    if (this.lookups.size >= MAX_SESSION_LOOKUPS_IN_FLIGHT) return Promise.reject(new SessionLookupBusy(`${MAX_SESSION_LOOKUPS_IN_FLIGHT} credential lookups are waiting on the metadata store`));
    const read = async (): Promise<SessionRow[]> => {
      let timer: NodeJS.Timeout | undefined;
      try {
        return await Promise.race([
          this.meta.driver.all<SessionRow>(`SELECT * FROM ${STS_SESSIONS_TABLE} WHERE access_key_id = ?`, [accessKeyId]),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new SessionLookupBusy(`the metadata store did not answer a credential lookup within ${SESSION_LOOKUP_TIMEOUT_MS} ms`)), SESSION_LOOKUP_TIMEOUT_MS);
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    };
    const lookup = async (): Promise<void> => {
      const epoch = this.sessionEpoch;
      let rows = await read();
      // The caches were dropped meanwhile (changes may have been missed): read what is there now.
      if (epoch !== this.sessionEpoch) rows = await read();
      // Deleted (announced) while the read ran: the row read may predate the delete.
      if (this.revokedWhileLooking.has(accessKeyId)) rows = [];
      // Past the retention it is as good as purged, whether or not a purge has run yet.
      const row = rows[0] && Number(rows[0].expiration) >= this.clock.now() - EXPIRED_SESSION_RETENTION_MS ? rows[0] : undefined;
      this.remember(accessKeyId, row ? this.toTemporaryOwner(accessKeyId, row) : null);
    };
    const p = lookup()
      .catch((e: unknown) => {
        if (e instanceof SessionLookupBusy) throw e;
        // The cause (a lost connection, a secret that does not open) is for the operator, not the client.
        console.error('pinstream: looking up temporary credentials failed', e);
        throw new SessionLookupBusy('the metadata store could not answer a credential lookup');
      })
      .finally(() => {
        this.lookups.delete(accessKeyId);
        this.revokedWhileLooking.delete(accessKeyId);
      });
    this.lookups.set(accessKeyId, p);
    return p;
  }

  /** A temporary session's owner from the caches (embedded: from SQLite, synchronously). */
  private sessionOwner(accessKeyId: string): KeyOwner | undefined {
    const hit = this.cachedSession(accessKeyId);
    if (hit) {
      this.sessionHits.delete(accessKeyId);
      this.sessionHits.set(accessKeyId, hit);
      return hit;
    }
    if (this.knownUnknown(accessKeyId)) return undefined;
    if (this.meta.driver.kind !== 'sqlite') return undefined;
    const row = this.db.prepare(`SELECT * FROM ${STS_SESSIONS_TABLE} WHERE access_key_id = ?`).get(accessKeyId) as SessionRow | undefined;
    const owner = row ? this.toTemporaryOwner(accessKeyId, row) : null;
    this.remember(accessKeyId, owner);
    return owner ?? undefined;
  }

  /**
   * A cached session, unless it is past the retention after its expiry: every node then treats it
   * as purged (unknown), whether or not its own purge has run.
   */
  private cachedSession(accessKeyId: string): KeyOwner | undefined {
    const hit = this.sessionHits.get(accessKeyId);
    if (hit && hit.temporary!.expiration < this.clock.now() - EXPIRED_SESSION_RETENTION_MS) {
      this.sessionHits.delete(accessKeyId);
      return undefined;
    }
    return hit;
  }

  private knownUnknown(accessKeyId: string): boolean {
    const until = this.unknownKeys.get(accessKeyId);
    if (until === undefined) return false;
    if (this.clock.now() < until) return true;
    this.unknownKeys.delete(accessKeyId);
    return false;
  }

  private remember(accessKeyId: string, owner: KeyOwner | null): void {
    if (owner) {
      this.sessionHits.delete(accessKeyId);
      this.sessionHits.set(accessKeyId, owner);
      if (this.sessionHits.size > SESSION_CACHE_SIZE) this.sessionHits.delete(this.sessionHits.keys().next().value!);
    } else {
      this.unknownKeys.delete(accessKeyId);
      this.unknownKeys.set(accessKeyId, this.clock.now() + UNKNOWN_KEY_TTL_MS);
      if (this.unknownKeys.size > UNKNOWN_KEY_CACHE_SIZE) this.unknownKeys.delete(this.unknownKeys.keys().next().value!);
    }
  }

  /** Sizes of the session caches (tests: they stay within their bounds). */
  sessionCacheSizes(): { hits: number; unknown: number; lookups: number } {
    return { hits: this.sessionHits.size, unknown: this.unknownKeys.size, lookups: this.lookups.size };
  }

  /**
   * Makes sure the admin user and a key of it exist. A configured key is (re)stored; otherwise one is
   * generated once. Returns the key and whether it was created now (its secret is shown only then).
   * Configuring a different key revokes the previous bootstrap key: rotating a leaked admin key in
   * the configuration must not leave the old one working. Keys made through the IAM API stay.
   */
  async ensureAdmin(configured?: Credentials): Promise<{ credentials: Credentials; created: boolean }> {
    if (!this.getUser(ADMIN_USER)) {
      await this.meta.write(
        [{ sql: 'INSERT INTO iam_users (name, user_id, path, create_date) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING', params: [ADMIN_USER, 'AIDA' + randomId(17), '/', this.now()] }],
        [{ table: T.users.table, key: [ADMIN_USER] }],
      );
    }
    const previous = (await this.meta.driver.all<{ value: Buffer }>('SELECT value FROM secrets WHERE name = ?', [BOOTSTRAP_KEY_RECORD]))[0];
    const remember = (id: string): Stmt => ({
      sql: 'INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value',
      params: [BOOTSTRAP_KEY_RECORD, Buffer.from(id)],
    });
    if (configured) {
      const old = previous?.value.toString();
      const stmts: Stmt[] = [];
      const changes: Change[] = [{ table: T.keys.table, key: [configured.accessKeyId] }];
      if (old !== undefined && old !== configured.accessKeyId) {
        stmts.push({ sql: 'DELETE FROM access_keys WHERE access_key_id = ?', params: [old] });
        changes.push({ table: T.keys.table, key: [old] });
      }
      stmts.push(this.putKeyStmt(configured, ADMIN_USER, this.now()), remember(configured.accessKeyId));
      await this.meta.write(stmts, changes);
      return { credentials: configured, created: false };
    }
    const first = this.listAccessKeys(ADMIN_USER).find((k) => k.status === 'Active');
    if (first) return { credentials: this.keyOwner(first.access_key_id)!.creds, created: false };
    // Nodes starting together on an empty shared store must agree on ONE key. The transaction
    // first takes a row lock (upserting BOOTSTRAP_LOCK_RECORD), so the second node's waits for the
    // first's to commit; its next statements then see the first's key (each statement of a READ
    // COMMITTED transaction reads what is committed when it starts) and insert nothing. The losing
    // node uses the winner's key.
    const key = generateKey();
    await this.meta.write(
      [
        {
          sql: 'INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value',
          params: [BOOTSTRAP_LOCK_RECORD, Buffer.from(this.now())],
        },
        {
          sql: `INSERT INTO access_keys (access_key_id, secret, user_name, status, create_date)
                SELECT ?, ?, ?, 'Active', ? WHERE NOT EXISTS (SELECT 1 FROM access_keys WHERE user_name = ? AND status = 'Active')`,
          params: [key.accessKeyId, this.seal(key.secretAccessKey), ADMIN_USER, this.now(), ADMIN_USER],
        },
        {
          sql: `INSERT INTO secrets (name, value) SELECT ?, ? WHERE EXISTS (SELECT 1 FROM access_keys WHERE access_key_id = ?)
                ON CONFLICT(name) DO UPDATE SET value = excluded.value`,
          params: [BOOTSTRAP_KEY_RECORD, Buffer.from(key.accessKeyId), key.accessKeyId],
        },
      ],
      [{ table: T.keys.table, key: [key.accessKeyId] }],
    );
    if (this.t.keys.get(key.accessKeyId)) return { credentials: key, created: true };
    const winner = (
      await this.meta.driver.all<{ access_key_id: string }>(
        "SELECT access_key_id FROM access_keys WHERE user_name = ? AND status = 'Active' ORDER BY create_date, access_key_id LIMIT 1",
        [ADMIN_USER],
      )
    )[0];
    if (!winner) throw new Error('the admin key another node created is gone again; restart to create one');
    // Read it into this node's cache now rather than when the other node's notification arrives.
    await this.meta.write([], [{ table: T.keys.table, key: [winner.access_key_id] }]);
    const owner = this.keyOwner(winner.access_key_id);
    if (!owner) throw new Error(`the admin key ${winner.access_key_id} another node created is not readable here`);
    return { credentials: owner.creds, created: false };
  }

  // --- inline policies ---------------------------------------------------------------------
  async putPolicy(kind: PolicyOwnerKind, owner: string, name: string, document: string): Promise<void> {
    await this.meta.write(
      [
        {
          sql: `INSERT INTO iam_policies (kind, owner, name, document) VALUES (?, ?, ?, ?)
                ON CONFLICT(kind, owner, name) DO UPDATE SET document = excluded.document`,
          params: [kind, owner, name, document],
        },
      ],
      [{ table: T.policies.table, key: [kind, owner, name] }],
    );
  }

  getPolicy(kind: PolicyOwnerKind, owner: string, name: string): string | undefined {
    return this.t.policies.get(kind, owner, name)?.document;
  }

  listPolicies(kind: PolicyOwnerKind, owner: string): string[] {
    return this.t.policies
      .filter((p) => p.kind === kind && p.owner === owner)
      .sort(byName)
      .map((p) => p.name);
  }

  async deletePolicy(kind: PolicyOwnerKind, owner: string, name: string): Promise<void> {
    await this.meta.write(
      [{ sql: 'DELETE FROM iam_policies WHERE kind = ? AND owner = ? AND name = ?', params: [kind, owner, name] }],
      [{ table: T.policies.table, key: [kind, owner, name] }],
    );
  }

  /**
   * Every identity policy that applies to a user or role, parsed: its inline policies, the default
   * versions of the managed policies attached to it and, for a user, the inline and attached
   * policies of each of its groups. Cached until any policy, attachment or membership changes, here
   * or on another node (those are rare; evaluation runs on every request).
   */
  policies(kind: 'user' | 'role', owner: string): PolicyDocument[] {
    const key = kind + '\n' + owner;
    let p = this.policyCache.get(key);
    if (!p) {
      const docs = this.ownPolicyDocuments(kind, owner);
      if (kind === 'user') for (const g of this.groupsForUser(owner)) docs.push(...this.ownPolicyDocuments('group', g.name));
      p = docs.map((d) => parsePolicy(d));
      if (this.policyCache.size > 10_000) this.policyCache.clear();
      this.policyCache.set(key, p);
    }
    return p;
  }

  private ownPolicyDocuments(kind: PolicyOwnerKind, owner: string): string[] {
    const inline = this.t.policies.filter((p) => p.kind === kind && p.owner === owner).map((p) => p.document);
    for (const a of this.t.attachments.filter((a) => a.kind === kind && a.owner === owner)) {
      const m = this.t.managed.get(a.policy_arn);
      const v = m && this.t.versions.get(m.arn, Number(m.default_version.slice(1)));
      if (v) inline.push(v.document);
    }
    return inline;
  }

  // --- managed policies --------------------------------------------------------------------
  managedPolicyArn = (name: string, path: string) => `arn:aws:iam::${this.accountId}:policy${path}${name}`;

  async createManagedPolicy(name: string, path: string, document: string, description?: string): Promise<ManagedPolicyRow> {
    const now = this.now();
    const row: ManagedPolicyRow = {
      arn: this.managedPolicyArn(name, path),
      name,
      policy_id: 'ANPA' + randomId(17),
      path,
      description: description ?? null,
      default_version: 'v1',
      next_version: 2,
      create_date: now,
      update_date: now,
    };
    await this.meta.write(
      [
        {
          sql: `INSERT INTO iam_managed_policies (arn, name, policy_id, path, description, default_version, next_version, create_date, update_date)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          params: [row.arn, row.name, row.policy_id, row.path, row.description, row.default_version, row.next_version, row.create_date, row.update_date],
        },
        { sql: 'INSERT INTO iam_policy_versions (arn, version, document, create_date) VALUES (?, 1, ?, ?)', params: [row.arn, document, now] },
      ],
      [
        { table: T.managed.table, key: [row.arn] },
        { table: T.versions.table, key: [row.arn] },
      ],
    );
    return row;
  }

  getManagedPolicy(arn: string): ManagedPolicyRow | undefined {
    return this.t.managed.get(arn);
  }

  /** Managed policy names are unique in an account whatever their path and case: the existing one, if any. */
  managedPolicyNameTaken(name: string): string | undefined {
    return this.t.managed.filter((m) => sameName(m.name, name))[0]?.name;
  }

  listManagedPolicies(): ManagedPolicyRow[] {
    return [...this.t.managed.values()].sort(byName);
  }

  async deleteManagedPolicy(arn: string): Promise<void> {
    await this.meta.write(
      [
        { sql: 'DELETE FROM iam_policy_versions WHERE arn = ?', params: [arn] },
        { sql: 'DELETE FROM iam_managed_policies WHERE arn = ?', params: [arn] },
      ],
      [
        { table: T.versions.table, key: [arn] },
        { table: T.managed.table, key: [arn] },
      ],
    );
  }

  /** Newest first, as ListPolicyVersions answers. */
  policyVersions(p: ManagedPolicyRow): PolicyVersionRow[] {
    const current = this.t.managed.get(p.arn) ?? p;
    return this.t.versions
      .filter((v) => v.arn === p.arn)
      .sort((a, b) => b.version - a.version)
      .map((r) => ({ version_id: 'v' + r.version, document: r.document, create_date: r.create_date, is_default: 'v' + r.version === current.default_version }));
  }

  /**
   * Creates the next version (v1, v2, ...: numbers are never reused) and returns it. The number is
   * taken by the UPDATE, which locks the policy's row: two nodes adding versions at once get
   * consecutive numbers, never the same one.
   */
  async createPolicyVersion(p: ManagedPolicyRow, document: string, setAsDefault: boolean): Promise<PolicyVersionRow> {
    const now = this.now();
    const [taken] = await this.meta.write(
      [
        {
          sql: `UPDATE iam_managed_policies SET next_version = next_version + 1,
                  default_version = CASE WHEN ? = 1 THEN 'v' || next_version ELSE default_version END,
                  update_date = CASE WHEN ? = 1 THEN ? ELSE update_date END
                WHERE arn = ? RETURNING next_version - 1 AS version`,
          params: [setAsDefault ? 1 : 0, setAsDefault ? 1 : 0, now, p.arn],
        },
        {
          sql: 'INSERT INTO iam_policy_versions (arn, version, document, create_date) SELECT arn, next_version - 1, ?, ? FROM iam_managed_policies WHERE arn = ?',
          params: [document, now, p.arn],
        },
      ],
      [
        { table: T.managed.table, key: [p.arn] },
        { table: T.versions.table, key: [p.arn] },
      ],
    );
    const version = (taken as Array<{ version: number }>)[0]?.version;
    if (version === undefined) throw new Error(`managed policy ${p.arn} no longer exists`);
    return { version_id: 'v' + version, document, create_date: now, is_default: setAsDefault };
  }

  async deletePolicyVersion(p: ManagedPolicyRow, versionId: string): Promise<void> {
    const version = Number(versionId.slice(1));
    await this.meta.write(
      [{ sql: 'DELETE FROM iam_policy_versions WHERE arn = ? AND version = ?', params: [p.arn, version] }],
      [{ table: T.versions.table, key: [p.arn, version] }],
    );
  }

  async setDefaultPolicyVersion(p: ManagedPolicyRow, versionId: string): Promise<void> {
    await this.meta.write(
      [{ sql: 'UPDATE iam_managed_policies SET default_version = ?, update_date = ? WHERE arn = ?', params: [versionId, this.now(), p.arn] }],
      [{ table: T.managed.table, key: [p.arn] }],
    );
  }

  async attachPolicy(kind: PolicyOwnerKind, owner: string, arn: string): Promise<void> {
    await this.meta.write(
      [{ sql: 'INSERT INTO iam_attachments (kind, owner, policy_arn) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', params: [kind, owner, arn] }],
      [{ table: T.attachments.table, key: [kind, owner, arn] }],
    );
  }

  async detachPolicy(kind: PolicyOwnerKind, owner: string, arn: string): Promise<void> {
    await this.meta.write(
      [{ sql: 'DELETE FROM iam_attachments WHERE kind = ? AND owner = ? AND policy_arn = ?', params: [kind, owner, arn] }],
      [{ table: T.attachments.table, key: [kind, owner, arn] }],
    );
  }

  /** Managed policies attached to a user, group or role, by name. */
  attachedPolicies(kind: PolicyOwnerKind, owner: string): Array<{ name: string; arn: string; path: string }> {
    const out: Array<{ name: string; arn: string; path: string }> = [];
    for (const a of this.t.attachments.filter((a) => a.kind === kind && a.owner === owner)) {
      const m = this.t.managed.get(a.policy_arn);
      if (m) out.push({ name: m.name, arn: m.arn, path: m.path });
    }
    return out.sort(byName);
  }

  policyAttachments(arn: string): Array<{ kind: PolicyOwnerKind; owner: string }> {
    return this.t.attachments
      .filter((a) => a.policy_arn === arn)
      .map((a) => ({ kind: a.kind, owner: a.owner }))
      .sort((a, b) => (a.kind !== b.kind ? (a.kind < b.kind ? -1 : 1) : a.owner < b.owner ? -1 : a.owner > b.owner ? 1 : 0));
  }

  // --- groups ------------------------------------------------------------------------------
  async createGroup(name: string, path = '/'): Promise<GroupRow> {
    const row: GroupRow = { name, group_id: 'AGPA' + randomId(17), path, create_date: this.now() };
    await this.meta.write(
      [{ sql: 'INSERT INTO iam_groups (name, group_id, path, create_date) VALUES (?, ?, ?, ?)', params: [row.name, row.group_id, row.path, row.create_date] }],
      [{ table: T.groups.table, key: [name] }],
    );
    return row;
  }

  getGroup(name: string): GroupRow | undefined {
    return this.t.groups.get(name);
  }

  groupNameTaken(name: string): string | undefined {
    return this.t.groups.filter((g) => sameName(g.name, name))[0]?.name;
  }

  listGroups(): GroupRow[] {
    return [...this.t.groups.values()].sort(byName);
  }

  async deleteGroup(name: string): Promise<void> {
    await this.meta.write([{ sql: 'DELETE FROM iam_groups WHERE name = ?', params: [name] }], [{ table: T.groups.table, key: [name] }]);
  }

  async addUserToGroup(group: string, user: string): Promise<void> {
    await this.meta.write(
      [{ sql: 'INSERT INTO iam_group_members (group_name, user_name) VALUES (?, ?) ON CONFLICT DO NOTHING', params: [group, user] }],
      [{ table: T.members.table, key: [group, user] }],
    );
  }

  async removeUserFromGroup(group: string, user: string): Promise<void> {
    await this.meta.write(
      [{ sql: 'DELETE FROM iam_group_members WHERE group_name = ? AND user_name = ?', params: [group, user] }],
      [{ table: T.members.table, key: [group, user] }],
    );
  }

  groupMembers(group: string): UserRow[] {
    const out: UserRow[] = [];
    for (const m of this.t.members.filter((m) => m.group_name === group)) {
      const u = this.t.users.get(m.user_name);
      if (u) out.push(u);
    }
    return out.sort(byName);
  }

  groupsForUser(user: string): GroupRow[] {
    const out: GroupRow[] = [];
    for (const m of this.t.members.filter((m) => m.user_name === user)) {
      const g = this.t.groups.get(m.group_name);
      if (g) out.push(g);
    }
    return out.sort(byName);
  }

  // --- STS temporary credentials -----------------------------------------------------------
  /**
   * Issues temporary credentials (ASIA… key, secret, session token, expiration) for a user or an
   * assumed role, persisted so they survive a restart. Generic over who asked: STS AssumeRole and
   * GetSessionToken today, federated identities later. Removes long-expired sessions first.
   */
  async createTemporarySession(s: NewTemporarySession): Promise<Required<Pick<Credentials, 'accessKeyId' | 'secretAccessKey' | 'sessionToken'>> & { expiration: number }> {
    await this.purgeExpiredSessions();
    const k = generateKey(TEMPORARY_KEY_PREFIX);
    // Opaque, as long as AWS's, and unguessable: 96 random bytes.
    const sessionToken = 'PSST' + randomBytes(96).toString('base64');
    const expiration = this.clock.now() + s.durationSeconds * 1000;
    // No change announced: no node can hold anything about a key made just now (random, 128 bits).
    await this.meta.write(
      [
        {
          sql: `INSERT INTO ${STS_SESSIONS_TABLE} (access_key_id, secret, token, kind, principal, principal_id, arn, policy, chained, expiration, create_date, web_identity, identity_id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          params: [
            k.accessKeyId,
            this.seal(k.secretAccessKey),
            this.seal(sessionToken),
            s.kind,
            s.principal,
            s.principalId,
            s.arn,
            s.policy ?? null,
            s.chained ? 1 : 0,
            expiration,
            this.now(),
            s.webIdentity ? JSON.stringify(s.webIdentity) : null,
            s.webIdentity?.poolId !== undefined ? s.webIdentity.sub : null,
          ],
        },
      ],
      [],
    );
    this.unknownKeys.delete(k.accessKeyId);
    this.keyCache.delete(k.accessKeyId);
    return { accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey, sessionToken, expiration };
  }

  /** Creation order of sessions: SQLite's rowid, PostgreSQL's `seq` column. */
  private get sessionOrder(): string {
    return this.meta.driver.kind === 'sqlite' ? 'rowid' : 'seq';
  }

  /**
   * Keeps the `keep` newest sessions of a Cognito identity and removes the others (expired or
   * not): what bounds the credentials unsigned GetCredentialsForIdentity calls can pile up. The
   * removal is announced, so no node keeps serving a removed session from its cache.
   */
  async trimIdentitySessions(identityId: string, keep: number): Promise<number> {
    const rows = await this.meta.driver.all<{ access_key_id: string }>(
      `SELECT access_key_id FROM ${STS_SESSIONS_TABLE} WHERE identity_id = ? ORDER BY ${this.sessionOrder} DESC`,
      [identityId],
    );
    const old = rows.slice(keep).map((r) => r.access_key_id);
    if (old.length === 0) return 0;
    await this.meta.write(
      old.map((id) => ({ sql: `DELETE FROM ${STS_SESSIONS_TABLE} WHERE access_key_id = ?`, params: [id] })),
      old.map((id) => ({ table: STS_SESSIONS_TABLE, key: [id] })),
    );
    return old.length;
  }

  /** Sessions stored for a Cognito identity (expired ones included until purged or trimmed). */
  async identitySessionCount(identityId: string): Promise<number> {
    return (await this.meta.driver.all<{ n: number }>(`SELECT count(*) AS n FROM ${STS_SESSIONS_TABLE} WHERE identity_id = ?`, [identityId]))[0].n;
  }

  /** Temporary sessions stored (expired ones included until they are purged). */
  async temporarySessionCount(): Promise<number> {
    return (await this.meta.driver.all<{ n: number }>(`SELECT count(*) AS n FROM ${STS_SESSIONS_TABLE}`))[0].n;
  }

  /**
   * Removes sessions expired longer than EXPIRED_SESSION_RETENTION_MS ago. Not announced: a node
   * that still caches one answers ExpiredToken for it, as it would have before.
   */
  async purgeExpiredSessions(): Promise<void> {
    await this.meta.write([{ sql: `DELETE FROM ${STS_SESSIONS_TABLE} WHERE expiration < ?`, params: [this.clock.now() - EXPIRED_SESSION_RETENTION_MS] }], []);
  }

  private toTemporaryOwner(accessKeyId: string, row: SessionRow): KeyOwner {
    return {
      creds: { accessKeyId, secretAccessKey: this.open(row.secret), sessionToken: this.open(row.token), expiresAt: Number(row.expiration) },
      kind: row.kind,
      user: row.principal,
      arn: row.arn,
      temporary: {
        principalId: row.principal_id,
        policy: row.policy === null ? undefined : parsePolicy(row.policy),
        chained: Number(row.chained) === 1,
        expiration: Number(row.expiration),
        webIdentity: row.web_identity === null ? undefined : (JSON.parse(row.web_identity) as WebIdentity),
      },
    };
  }

  // --- roles -------------------------------------------------------------------------------
  async createRole(name: string, trust: string, opts: { path?: string; description?: string; maxSessionDuration?: number } = {}): Promise<RoleRow> {
    const row: RoleRow = {
      name,
      role_id: 'AROA' + randomId(17),
      path: opts.path ?? '/',
      create_date: this.now(),
      assume_role_policy: trust,
      description: opts.description ?? null,
      max_session_duration: opts.maxSessionDuration ?? 3600,
    };
    await this.meta.write(
      [
        {
          sql: `INSERT INTO iam_roles (name, role_id, path, create_date, assume_role_policy, description, max_session_duration)
                VALUES (?, ?, ?, ?, ?, ?, ?)`,
          params: [row.name, row.role_id, row.path, row.create_date, row.assume_role_policy, row.description, row.max_session_duration],
        },
      ],
      [{ table: T.roles.table, key: [name] }],
    );
    return row;
  }

  async updateAssumeRolePolicy(name: string, trust: string): Promise<void> {
    await this.meta.write([{ sql: 'UPDATE iam_roles SET assume_role_policy = ? WHERE name = ?', params: [trust, name] }], [{ table: T.roles.table, key: [name] }]);
  }

  getRole(name: string): RoleRow | undefined {
    return this.t.roles.get(name);
  }

  /** The existing spelling of a role name that differs only in case, if any (IAM names are case-insensitive). */
  roleNameTaken(name: string): string | undefined {
    return this.t.roles.filter((r) => sameName(r.name, name))[0]?.name;
  }

  /** The role a role ARN names, exactly: this account, the role's own path and name (else undefined). */
  roleByArn(arn: string): RoleRow | undefined {
    const m = /^arn:aws:iam::(\d{12}):role(\/(?:[\x21-\x7e]*\/)?)([\w+=,.@-]+)$/.exec(arn);
    if (!m || m[1] !== this.accountId) return undefined;
    const role = this.getRole(m[3]);
    return role && role.path === m[2] ? role : undefined;
  }

  /** A role's trust policy, parsed (cached by its text, so an update is seen at once). */
  trustPolicy(role: RoleRow): PolicyDocument {
    let p = this.trustCache.get(role.assume_role_policy);
    if (!p) {
      p = parsePolicy(role.assume_role_policy, 'trust');
      if (this.trustCache.size > 1_000) this.trustCache.clear();
      this.trustCache.set(role.assume_role_policy, p);
    }
    return p;
  }

  listRoles(): RoleRow[] {
    return [...this.t.roles.values()].sort(byName);
  }

  async deleteRole(name: string): Promise<void> {
    // Sessions of the role stay: the authorizer refuses their requests while the role is missing
    // (saying so), and a role created again under the name serves them again if its trust allows.
    await this.meta.write([{ sql: 'DELETE FROM iam_roles WHERE name = ?', params: [name] }], [{ table: T.roles.table, key: [name] }]);
  }

  /**
   * Temporary credentials with which a service acts as `roleName` for `source` (what STS
   * AssumeRole gives Pinpoint or Firehose in AWS). The caller checks the trust policy first
   * (roles.ts assumeRole); requests signed with these keys are authorized by the role's policies,
   * and the authorizer checks the trust policy again on each, so a role whose trust or permissions
   * change stops serving at once. One session per (role, service, source), reused.
   */
  roleSession(roleName: string, source: RoleSource): Credentials {
    const key = sessionKey(roleName, source);
    const existing = this.sessionBySource.get(key);
    if (existing) {
      const s = this.sessions.get(existing);
      if (s) return s.creds;
    }
    if (this.sessions.size >= this.maxSessions) throw new Error(`cannot start a session of role ${roleName}: ${this.maxSessions} role sessions exist (the limit)`);
    const k = generateKey();
    const creds = { accessKeyId: SESSION_KEY_PREFIX + k.accessKeyId.slice(SESSION_KEY_PREFIX.length), secretAccessKey: k.secretAccessKey };
    const sessionName = source.service.split('.')[0];
    this.sessions.set(creds.accessKeyId, {
      creds,
      kind: 'role',
      user: roleName,
      arn: `arn:aws:sts::${this.accountId}:assumed-role/${roleName}/${sessionName}`,
      session: { ...source },
    });
    this.sessionBySource.set(key, creds.accessKeyId);
    return creds;
  }

  private now(): string {
    return new Date(this.clock.now()).toISOString();
  }

  private seal(secret: string): Buffer {
    return this.secrets.seal(secret);
  }

  private open(sealed: Buffer): string {
    return this.secrets.open(sealed);
  }
}

const sessionKey = (role: string, s: RoleSource) => [role, s.service, s.sourceArn, s.sourceAccount].join('\n');

export function generateKey(prefix = 'PSAK'): Credentials {
  const bytes = randomBytes(16);
  let id = prefix;
  for (const b of bytes) id += KEY_ID_ALPHABET[b & 31];
  return { accessKeyId: id, secretAccessKey: randomBytes(30).toString('base64').replace(/[+/]/g, 'x') };
}

const keyRow = (k: KeyRecord): KeyRow => ({ access_key_id: k.access_key_id, user_name: k.user_name, status: k.status, create_date: k.create_date });

function randomId(n: number): string {
  const bytes = randomBytes(n);
  let s = '';
  for (const b of bytes) s += ID_ALPHABET[b % ID_ALPHABET.length];
  return s;
}
