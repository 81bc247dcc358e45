// IAM entities in the metadata store: users, their access keys and inline policies, roles with
// their trust and inline policies, groups and their members, managed policies with their versions
// and attachments, and STS temporary credentials. It owns which policies apply to a principal
// (policies(): inline + attached, and for a user its groups' too). Secret access keys and session
// tokens are encrypted at rest (AES-256-GCM with a master key kept in the data directory, mode
// 0600): SigV4 needs the plaintext secret to verify signatures, so hashing is not an option.
// Secrets are shown once, at creation, and never logged.

import { randomBytes } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Db } from '../store/db.js';
import type { Credentials } from './sigv4.js';
import { parsePolicy, type PolicyDocument } from './policy.js';
import { SecretBox } from './secrets.js';

export const ADMIN_USER = 'admin';
/** Row of the `secrets` table remembering which admin key is the bootstrap one (not a secret itself). */
const BOOTSTRAP_KEY_RECORD = 'iam-bootstrap-key-id';
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
/** AWS's limits: versions per managed policy, managed policies attached per user, group and role. */
export const MAX_POLICY_VERSIONS = 5;
export const MAX_ATTACHED_POLICIES = 10;

export class IamStore {
  private keyCache = new Map<string, KeyOwner | null>();
  private policyCache = new Map<string, PolicyDocument[]>();
  private trustCache = new Map<string, PolicyDocument>();
  /**
   * Role sessions, in memory only (like STS credentials they do not outlive the process): by
   * access key id, and by role/service/source so one user of a role reuses its session.
   */
  private sessions = new Map<string, KeyOwner & { session: RoleSource }>();
  private sessionBySource = new Map<string, string>();
  private secrets: SecretBox;

  constructor(
    private db: Db,
    private clock: Clock,
    readonly accountId: string,
    dataDir: string,
    private readonly maxSessions = MAX_ROLE_SESSIONS,
  ) {
    this.secrets = new SecretBox(dataDir);
    // Long-lived role keys of earlier versions carried no record of who assumed the role for what,
    // so no trust policy could be checked against them: they are not honoured, and removed.
    this.db.prepare(`DELETE FROM access_keys WHERE substr(user_name, 1, ${LEGACY_ROLE_KEY_OWNER.length}) = ?`).run(LEGACY_ROLE_KEY_OWNER);
    this.purgeExpiredSessions();
  }

  userArn = (u: { name: string; path: string }) => `arn:aws:iam::${this.accountId}:user${u.path}${u.name}`;
  roleArn = (r: { name: string; path: string }) => `arn:aws:iam::${this.accountId}:role${r.path}${r.name}`;
  groupArn = (g: { name: string; path: string }) => `arn:aws:iam::${this.accountId}:group${g.path}${g.name}`;

  // --- users -------------------------------------------------------------------------------
  createUser(name: string, path = '/'): UserRow {
    const row: UserRow = { name, user_id: 'AIDA' + randomId(17), path, create_date: this.now() };
    this.db.prepare('INSERT INTO iam_users (name, user_id, path, create_date) VALUES (@name, @user_id, @path, @create_date)').run(row);
    return row;
  }

  getUser(name: string): UserRow | undefined {
    return this.db.prepare('SELECT * FROM iam_users WHERE name = ?').get(name) as UserRow | undefined;
  }

  /** IAM names are unique regardless of case ("ROLE" and "role" cannot both exist): the existing spelling, if any. */
  userNameTaken(name: string): string | undefined {
    return (this.db.prepare('SELECT name FROM iam_users WHERE lower(name) = lower(?)').get(name) as { name: string } | undefined)?.name;
  }

  listUsers(): UserRow[] {
    return this.db.prepare('SELECT * FROM iam_users ORDER BY name').all() as UserRow[];
  }

  deleteUser(name: string): void {
    this.db.prepare('DELETE FROM iam_users WHERE name = ?').run(name);
  }

  // --- access keys -------------------------------------------------------------------------
  createAccessKey(user: string, given?: Credentials): Credentials & { createDate: string } {
    const creds = given ?? generateKey();
    const createDate = this.now();
    this.db
      .prepare(
        `INSERT INTO access_keys (access_key_id, secret, user_name, status, create_date) VALUES (?, ?, ?, 'Active', ?)
         ON CONFLICT(access_key_id) DO UPDATE SET secret = excluded.secret, user_name = excluded.user_name, status = 'Active'`,
      )
      .run(creds.accessKeyId, this.seal(creds.secretAccessKey), user, createDate);
    this.keyCache.delete(creds.accessKeyId);
    return { ...creds, createDate };
  }

  listAccessKeys(user: string): KeyRow[] {
    return this.db
      .prepare('SELECT access_key_id, user_name, status, create_date FROM access_keys WHERE user_name = ? ORDER BY create_date, access_key_id')
      .all(user) as KeyRow[];
  }

  getAccessKey(id: string): KeyRow | undefined {
    return this.db.prepare('SELECT access_key_id, user_name, status, create_date FROM access_keys WHERE access_key_id = ?').get(id) as
      | KeyRow
      | undefined;
  }

  setAccessKeyStatus(id: string, status: 'Active' | 'Inactive'): void {
    this.db.prepare('UPDATE access_keys SET status = ? WHERE access_key_id = ?').run(status, id);
    this.keyCache.delete(id);
  }

  deleteAccessKey(id: string): void {
    this.db.prepare('DELETE FROM access_keys WHERE access_key_id = ?').run(id);
    this.keyCache.delete(id);
  }

  /** The SigV4 lookup: secret and owner of an active key. Cached: it runs on every request. */
  lookup = (accessKeyId: string): Credentials | undefined => this.keyOwner(accessKeyId)?.creds;

  keyOwner(accessKeyId: string): KeyOwner | undefined {
    const session = this.sessions.get(accessKeyId);
    if (session) return session;
    let c = this.keyCache.get(accessKeyId);
    if (c === undefined) {
      // The owner's ARN carries its path, so it is read here once rather than on every request.
      const row = this.db
        .prepare(
          `SELECT k.secret, k.user_name, u.path AS user_path FROM access_keys k
           JOIN iam_users u ON u.name = k.user_name
           WHERE k.access_key_id = ? AND k.status = 'Active'`,
        )
        .get(accessKeyId) as { secret: Buffer; user_name: string; user_path: string } | undefined;
      c = row
        ? { creds: { accessKeyId, secretAccessKey: this.open(row.secret) }, kind: 'user', user: row.user_name, arn: this.userArn({ name: row.user_name, path: row.user_path }) }
        : accessKeyId.startsWith(TEMPORARY_KEY_PREFIX)
          ? this.temporaryOwner(accessKeyId)
          : null;
      if (this.keyCache.size > 10_000) this.keyCache.clear();
      this.keyCache.set(accessKeyId, c);
    }
    return c ?? undefined;
  }

  /**
   * Makes sure the admin user and a key of it exist. A configured key is (re)stored; otherwise one is
   * generated once. Returns the key and whether it was created now (its secret is shown only then).
   * Configuring a different key revokes the previous bootstrap key: rotating a leaked admin key in
   * the configuration must not leave the old one working. Keys made through the IAM API stay.
   */
  ensureAdmin(configured?: Credentials): { credentials: Credentials; created: boolean } {
    if (!this.getUser(ADMIN_USER)) this.createUser(ADMIN_USER);
    const previous = this.db.prepare('SELECT value FROM secrets WHERE name = ?').get(BOOTSTRAP_KEY_RECORD) as { value: Buffer } | undefined;
    const remember = (id: string) =>
      this.db
        .prepare('INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value')
        .run(BOOTSTRAP_KEY_RECORD, Buffer.from(id));
    if (configured) {
      const old = previous?.value.toString();
      this.db.transaction(() => {
        if (old !== undefined && old !== configured.accessKeyId) this.deleteAccessKey(old);
        this.createAccessKey(ADMIN_USER, configured);
        remember(configured.accessKeyId);
      })();
      return { credentials: configured, created: false };
    }
    const row = this.db
      .prepare(`SELECT access_key_id FROM access_keys WHERE user_name = ? AND status = 'Active' ORDER BY create_date LIMIT 1`)
      .get(ADMIN_USER) as { access_key_id: string } | undefined;
    if (row) return { credentials: this.keyOwner(row.access_key_id)!.creds, created: false };
    const key = this.createAccessKey(ADMIN_USER);
    remember(key.accessKeyId);
    return { credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey }, created: true };
  }

  // --- inline policies ---------------------------------------------------------------------
  putPolicy(kind: PolicyOwnerKind, owner: string, name: string, document: string): void {
    this.db
      .prepare(
        `INSERT INTO iam_policies (kind, owner, name, document) VALUES (?, ?, ?, ?)
         ON CONFLICT(kind, owner, name) DO UPDATE SET document = excluded.document`,
      )
      .run(kind, owner, name, document);
    this.policiesChanged();
  }

  getPolicy(kind: PolicyOwnerKind, owner: string, name: string): string | undefined {
    const row = this.db.prepare('SELECT document FROM iam_policies WHERE kind = ? AND owner = ? AND name = ?').get(kind, owner, name) as
      | { document: string }
      | undefined;
    return row?.document;
  }

  listPolicies(kind: PolicyOwnerKind, owner: string): string[] {
    return (this.db.prepare('SELECT name FROM iam_policies WHERE kind = ? AND owner = ? ORDER BY name').all(kind, owner) as Array<{ name: string }>).map(
      (r) => r.name,
    );
  }

  deletePolicy(kind: PolicyOwnerKind, owner: string, name: string): void {
    this.db.prepare('DELETE FROM iam_policies WHERE kind = ? AND owner = ? AND name = ?').run(kind, owner, name);
    this.policiesChanged();
  }

  /**
   * Every identity policy that applies to a user or role, parsed: its inline policies, the default
   * versions of the managed policies attached to it and, for a user, the inline and attached
   * policies of each of its groups. Cached until any policy, attachment or membership changes
   * (those are rare; evaluation runs on every request).
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
    const inline = this.db.prepare('SELECT document FROM iam_policies WHERE kind = ? AND owner = ?').all(kind, owner) as Array<{ document: string }>;
    const attached = this.db
      .prepare(
        `SELECT v.document FROM iam_attachments a
         JOIN iam_managed_policies p ON p.arn = a.policy_arn
         JOIN iam_policy_versions v ON v.arn = p.arn AND 'v' || v.version = p.default_version
         WHERE a.kind = ? AND a.owner = ?`,
      )
      .all(kind, owner) as Array<{ document: string }>;
    return [...inline, ...attached].map((r) => r.document);
  }

  private policiesChanged(): void {
    this.policyCache.clear();
  }

  // --- managed policies --------------------------------------------------------------------
  managedPolicyArn = (name: string, path: string) => `arn:aws:iam::${this.accountId}:policy${path}${name}`;

  createManagedPolicy(name: string, path: string, document: string, description?: string): ManagedPolicyRow {
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
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO iam_managed_policies (arn, name, policy_id, path, description, default_version, next_version, create_date, update_date)
           VALUES (@arn, @name, @policy_id, @path, @description, @default_version, @next_version, @create_date, @update_date)`,
        )
        .run(row);
      this.db.prepare('INSERT INTO iam_policy_versions (arn, version, document, create_date) VALUES (?, 1, ?, ?)').run(row.arn, document, now);
    })();
    return row;
  }

  getManagedPolicy(arn: string): ManagedPolicyRow | undefined {
    return this.db.prepare('SELECT * FROM iam_managed_policies WHERE arn = ?').get(arn) as ManagedPolicyRow | undefined;
  }

  /** Managed policy names are unique in an account whatever their path and case: the existing one, if any. */
  managedPolicyNameTaken(name: string): string | undefined {
    return (this.db.prepare('SELECT name FROM iam_managed_policies WHERE lower(name) = lower(?)').get(name) as { name: string } | undefined)?.name;
  }

  listManagedPolicies(): ManagedPolicyRow[] {
    return this.db.prepare('SELECT * FROM iam_managed_policies ORDER BY name').all() as ManagedPolicyRow[];
  }

  deleteManagedPolicy(arn: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM iam_policy_versions WHERE arn = ?').run(arn);
      this.db.prepare('DELETE FROM iam_managed_policies WHERE arn = ?').run(arn);
    })();
    this.policiesChanged();
  }

  /** Newest first, as ListPolicyVersions answers. */
  policyVersions(p: ManagedPolicyRow): PolicyVersionRow[] {
    const rows = this.db.prepare('SELECT version, document, create_date FROM iam_policy_versions WHERE arn = ? ORDER BY version DESC').all(p.arn) as Array<{
      version: number;
      document: string;
      create_date: string;
    }>;
    return rows.map((r) => ({ version_id: 'v' + r.version, document: r.document, create_date: r.create_date, is_default: 'v' + r.version === p.default_version }));
  }

  /** Creates the next version (v1, v2, ...: numbers are never reused) and returns it. */
  createPolicyVersion(p: ManagedPolicyRow, document: string, setAsDefault: boolean): PolicyVersionRow {
    const now = this.now();
    const id = 'v' + p.next_version;
    this.db.transaction(() => {
      this.db.prepare('INSERT INTO iam_policy_versions (arn, version, document, create_date) VALUES (?, ?, ?, ?)').run(p.arn, p.next_version, document, now);
      this.db
        .prepare('UPDATE iam_managed_policies SET next_version = next_version + 1, default_version = ?, update_date = ? WHERE arn = ?')
        .run(setAsDefault ? id : p.default_version, setAsDefault ? now : p.update_date, p.arn);
    })();
    this.policiesChanged();
    return { version_id: id, document, create_date: now, is_default: setAsDefault };
  }

  deletePolicyVersion(p: ManagedPolicyRow, versionId: string): void {
    this.db.prepare('DELETE FROM iam_policy_versions WHERE arn = ? AND version = ?').run(p.arn, Number(versionId.slice(1)));
  }

  setDefaultPolicyVersion(p: ManagedPolicyRow, versionId: string): void {
    this.db.prepare('UPDATE iam_managed_policies SET default_version = ?, update_date = ? WHERE arn = ?').run(versionId, this.now(), p.arn);
    this.policiesChanged();
  }

  attachPolicy(kind: PolicyOwnerKind, owner: string, arn: string): void {
    this.db.prepare('INSERT OR IGNORE INTO iam_attachments (kind, owner, policy_arn) VALUES (?, ?, ?)').run(kind, owner, arn);
    this.policiesChanged();
  }

  detachPolicy(kind: PolicyOwnerKind, owner: string, arn: string): void {
    this.db.prepare('DELETE FROM iam_attachments WHERE kind = ? AND owner = ? AND policy_arn = ?').run(kind, owner, arn);
    this.policiesChanged();
  }

  /** Managed policies attached to a user, group or role, by name. */
  attachedPolicies(kind: PolicyOwnerKind, owner: string): Array<{ name: string; arn: string; path: string }> {
    return this.db
      .prepare(
        `SELECT p.name, p.arn, p.path FROM iam_attachments a JOIN iam_managed_policies p ON p.arn = a.policy_arn
         WHERE a.kind = ? AND a.owner = ? ORDER BY p.name`,
      )
      .all(kind, owner) as Array<{ name: string; arn: string; path: string }>;
  }

  policyAttachments(arn: string): Array<{ kind: PolicyOwnerKind; owner: string }> {
    return this.db.prepare('SELECT kind, owner FROM iam_attachments WHERE policy_arn = ? ORDER BY kind, owner').all(arn) as Array<{ kind: PolicyOwnerKind; owner: string }>;
  }

  // --- groups ------------------------------------------------------------------------------
  createGroup(name: string, path = '/'): GroupRow {
    const row: GroupRow = { name, group_id: 'AGPA' + randomId(17), path, create_date: this.now() };
    this.db.prepare('INSERT INTO iam_groups (name, group_id, path, create_date) VALUES (@name, @group_id, @path, @create_date)').run(row);
    return row;
  }

  getGroup(name: string): GroupRow | undefined {
    return this.db.prepare('SELECT * FROM iam_groups WHERE name = ?').get(name) as GroupRow | undefined;
  }

  groupNameTaken(name: string): string | undefined {
    return (this.db.prepare('SELECT name FROM iam_groups WHERE lower(name) = lower(?)').get(name) as { name: string } | undefined)?.name;
  }

  listGroups(): GroupRow[] {
    return this.db.prepare('SELECT * FROM iam_groups ORDER BY name').all() as GroupRow[];
  }

  deleteGroup(name: string): void {
    this.db.prepare('DELETE FROM iam_groups WHERE name = ?').run(name);
  }

  addUserToGroup(group: string, user: string): void {
    this.db.prepare('INSERT OR IGNORE INTO iam_group_members (group_name, user_name) VALUES (?, ?)').run(group, user);
    this.policiesChanged();
  }

  removeUserFromGroup(group: string, user: string): void {
    this.db.prepare('DELETE FROM iam_group_members WHERE group_name = ? AND user_name = ?').run(group, user);
    this.policiesChanged();
  }

  groupMembers(group: string): UserRow[] {
    return this.db
      .prepare('SELECT u.* FROM iam_group_members m JOIN iam_users u ON u.name = m.user_name WHERE m.group_name = ? ORDER BY u.name')
      .all(group) as UserRow[];
  }

  groupsForUser(user: string): GroupRow[] {
    return this.db
      .prepare('SELECT g.* FROM iam_group_members m JOIN iam_groups g ON g.name = m.group_name WHERE m.user_name = ? ORDER BY g.name')
      .all(user) as GroupRow[];
  }

  // --- STS temporary credentials -----------------------------------------------------------
  /**
   * Issues temporary credentials (ASIA… key, secret, session token, expiration) for a user or an
   * assumed role, persisted so they survive a restart. Generic over who asked: STS AssumeRole and
   * GetSessionToken today, federated identities later. Removes long-expired sessions first.
   */
  createTemporarySession(s: NewTemporarySession): Required<Pick<Credentials, 'accessKeyId' | 'secretAccessKey' | 'sessionToken'>> & { expiration: number } {
    this.purgeExpiredSessions();
    const k = generateKey(TEMPORARY_KEY_PREFIX);
    // Opaque, as long as AWS's, and unguessable: 96 random bytes.
    const sessionToken = 'PSST' + randomBytes(96).toString('base64');
    const expiration = this.clock.now() + s.durationSeconds * 1000;
    this.db
      .prepare(
        `INSERT INTO sts_sessions (access_key_id, secret, token, kind, principal, principal_id, arn, policy, chained, expiration, create_date, web_identity, identity_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
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
      );
    this.keyCache.delete(k.accessKeyId);
    return { accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey, sessionToken, expiration };
  }

  /**
   * Keeps the `keep` newest sessions of a Cognito identity and removes the others (expired or
   * not): what bounds the credentials unsigned GetCredentialsForIdentity calls can pile up.
   */
  trimIdentitySessions(identityId: string, keep: number): number {
    const old = this.db
      .prepare('SELECT access_key_id FROM sts_sessions WHERE identity_id = ? ORDER BY rowid DESC LIMIT -1 OFFSET ?')
      .all(identityId, keep) as Array<{ access_key_id: string }>;
    const del = this.db.prepare('DELETE FROM sts_sessions WHERE access_key_id = ?');
    for (const r of old) {
      del.run(r.access_key_id);
      this.keyCache.delete(r.access_key_id);
    }
    return old.length;
  }

  /** Sessions stored for a Cognito identity (expired ones included until purged or trimmed). */
  identitySessionCount(identityId: string): number {
    return (this.db.prepare('SELECT count(*) AS n FROM sts_sessions WHERE identity_id = ?').get(identityId) as { n: number }).n;
  }

  /** Temporary sessions stored (expired ones included until they are purged). */
  temporarySessionCount(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM sts_sessions').get() as { n: number }).n;
  }

  /** Removes sessions expired longer than EXPIRED_SESSION_RETENTION_MS ago. */
  purgeExpiredSessions(): void {
    const gone = this.db.prepare('DELETE FROM sts_sessions WHERE expiration < ?').run(this.clock.now() - EXPIRED_SESSION_RETENTION_MS);
    if (gone.changes > 0) this.keyCache.clear();
  }

  private temporaryOwner(accessKeyId: string): KeyOwner | null {
    const row = this.db.prepare('SELECT * FROM sts_sessions WHERE access_key_id = ?').get(accessKeyId) as
      | {
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
      | undefined;
    if (!row) return null;
    return {
      creds: { accessKeyId, secretAccessKey: this.open(row.secret), sessionToken: this.open(row.token), expiresAt: row.expiration },
      kind: row.kind,
      user: row.principal,
      arn: row.arn,
      temporary: {
        principalId: row.principal_id,
        policy: row.policy === null ? undefined : parsePolicy(row.policy),
        chained: row.chained === 1,
        expiration: row.expiration,
        webIdentity: row.web_identity === null ? undefined : (JSON.parse(row.web_identity) as WebIdentity),
      },
    };
  }

  // --- roles -------------------------------------------------------------------------------
  createRole(name: string, trust: string, opts: { path?: string; description?: string; maxSessionDuration?: number } = {}): RoleRow {
    const row: RoleRow = {
      name,
      role_id: 'AROA' + randomId(17),
      path: opts.path ?? '/',
      create_date: this.now(),
      assume_role_policy: trust,
      description: opts.description ?? null,
      max_session_duration: opts.maxSessionDuration ?? 3600,
    };
    this.db
      .prepare(
        `INSERT INTO iam_roles (name, role_id, path, create_date, assume_role_policy, description, max_session_duration)
         VALUES (@name, @role_id, @path, @create_date, @assume_role_policy, @description, @max_session_duration)`,
      )
      .run(row);
    return row;
  }

  updateAssumeRolePolicy(name: string, trust: string): void {
    this.db.prepare('UPDATE iam_roles SET assume_role_policy = ? WHERE name = ?').run(trust, name);
  }

  getRole(name: string): RoleRow | undefined {
    return this.db.prepare('SELECT * FROM iam_roles WHERE name = ?').get(name) as RoleRow | undefined;
  }

  /** The existing spelling of a role name that differs only in case, if any (IAM names are case-insensitive). */
  roleNameTaken(name: string): string | undefined {
    return (this.db.prepare('SELECT name FROM iam_roles WHERE lower(name) = lower(?)').get(name) as { name: string } | undefined)?.name;
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
    return this.db.prepare('SELECT * FROM iam_roles ORDER BY name').all() as RoleRow[];
  }

  deleteRole(name: string): void {
    // Sessions of the role stay: the authorizer refuses their requests while the role is missing
    // (saying so), and a role created again under the name serves them again if its trust allows.
    this.db.prepare('DELETE FROM iam_roles WHERE name = ?').run(name);
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

function randomId(n: number): string {
  const bytes = randomBytes(n);
  let s = '';
  for (const b of bytes) s += ID_ALPHABET[b % ID_ALPHABET.length];
  return s;
}
