// IAM entities in the metadata store: users, their access keys and inline policies, roles with
// their trust and inline policies. Secret access keys are encrypted at rest (AES-256-GCM with a
// master key kept in the data directory, mode 0600): SigV4 needs the plaintext secret to verify
// signatures, so hashing is not an option. Secrets are shown once, at creation, and never logged.

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
}

/** Session keys of a role are owned by this pseudo user name; no IAM user can be named so. */
const ROLE_SESSION_OWNER = '@role:';
export const ROLE_SESSION_NAME = 'pinstream-event-stream';

export class IamStore {
  private keyCache = new Map<string, KeyOwner | null>();
  private policyCache = new Map<string, PolicyDocument[]>();
  private secrets: SecretBox;

  constructor(
    private db: Db,
    private clock: Clock,
    readonly accountId: string,
    dataDir: string,
  ) {
    this.secrets = new SecretBox(dataDir);
  }

  userArn = (u: { name: string; path: string }) => `arn:aws:iam::${this.accountId}:user${u.path}${u.name}`;
  roleArn = (r: { name: string; path: string }) => `arn:aws:iam::${this.accountId}:role${r.path}${r.name}`;

  // --- users -------------------------------------------------------------------------------
  createUser(name: string, path = '/'): UserRow {
    const row: UserRow = { name, user_id: 'AIDA' + randomId(17), path, create_date: this.now() };
    this.db.prepare('INSERT INTO iam_users (name, user_id, path, create_date) VALUES (@name, @user_id, @path, @create_date)').run(row);
    return row;
  }

  getUser(name: string): UserRow | undefined {
    return this.db.prepare('SELECT * FROM iam_users WHERE name = ?').get(name) as UserRow | undefined;
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
    let c = this.keyCache.get(accessKeyId);
    if (c === undefined) {
      // The owner's ARN carries its path, so it is read here once rather than on every request.
      const row = this.db
        .prepare(
          `SELECT k.secret, k.user_name, u.path AS user_path, r.name AS role_name FROM access_keys k
           LEFT JOIN iam_users u ON u.name = k.user_name
           LEFT JOIN iam_roles r ON '${ROLE_SESSION_OWNER}' || r.name = k.user_name
           WHERE k.access_key_id = ? AND k.status = 'Active' AND (u.name IS NOT NULL OR r.name IS NOT NULL)`,
        )
        .get(accessKeyId) as { secret: Buffer; user_name: string; user_path: string | null; role_name: string | null } | undefined;
      const creds = row && { accessKeyId, secretAccessKey: this.open(row.secret) };
      if (!row || !creds) c = null;
      else if (row.role_name !== null) {
        c = { creds, kind: 'role', user: row.role_name, arn: `arn:aws:sts::${this.accountId}:assumed-role/${row.role_name}/${ROLE_SESSION_NAME}` };
      } else {
        // The owner's ARN carries its path, so it is read here once rather than on every request.
        c = { creds, kind: 'user', user: row.user_name, arn: this.userArn({ name: row.user_name, path: row.user_path! }) };
      }
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
  putPolicy(kind: 'user' | 'role', owner: string, name: string, document: string): void {
    this.db
      .prepare(
        `INSERT INTO iam_policies (kind, owner, name, document) VALUES (?, ?, ?, ?)
         ON CONFLICT(kind, owner, name) DO UPDATE SET document = excluded.document`,
      )
      .run(kind, owner, name, document);
    this.policyCache.delete(kind + '\n' + owner);
  }

  getPolicy(kind: 'user' | 'role', owner: string, name: string): string | undefined {
    const row = this.db.prepare('SELECT document FROM iam_policies WHERE kind = ? AND owner = ? AND name = ?').get(kind, owner, name) as
      | { document: string }
      | undefined;
    return row?.document;
  }

  listPolicies(kind: 'user' | 'role', owner: string): string[] {
    return (this.db.prepare('SELECT name FROM iam_policies WHERE kind = ? AND owner = ? ORDER BY name').all(kind, owner) as Array<{ name: string }>).map(
      (r) => r.name,
    );
  }

  deletePolicy(kind: 'user' | 'role', owner: string, name: string): void {
    this.db.prepare('DELETE FROM iam_policies WHERE kind = ? AND owner = ? AND name = ?').run(kind, owner, name);
    this.policyCache.delete(kind + '\n' + owner);
  }

  /** Parsed inline policies of a user or role, cached until they change. */
  policies(kind: 'user' | 'role', owner: string): PolicyDocument[] {
    const key = kind + '\n' + owner;
    let p = this.policyCache.get(key);
    if (!p) {
      const rows = this.db.prepare('SELECT document FROM iam_policies WHERE kind = ? AND owner = ?').all(kind, owner) as Array<{ document: string }>;
      p = rows.map((r) => parsePolicy(r.document));
      this.policyCache.set(key, p);
    }
    return p;
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

  listRoles(): RoleRow[] {
    return this.db.prepare('SELECT * FROM iam_roles ORDER BY name').all() as RoleRow[];
  }

  deleteRole(name: string): void {
    this.db.prepare('DELETE FROM iam_roles WHERE name = ?').run(name);
    for (const k of this.listAccessKeys(ROLE_SESSION_OWNER + name)) this.deleteAccessKey(k.access_key_id);
  }

  /**
   * Credentials with which Pinstream acts as `roleName` (what AssumeRole gives Pinpoint in AWS):
   * requests signed with them are authorized by the role's policies, so a role that loses a
   * permission stops delivery as it would in AWS. One key per role, created on first use.
   */
  roleSessionCredentials(roleName: string): Credentials {
    const owner = ROLE_SESSION_OWNER + roleName;
    const existing = this.listAccessKeys(owner).find((k) => k.status === 'Active');
    if (existing) {
      const o = this.keyOwner(existing.access_key_id);
      if (o) return o.creds;
    }
    const k = this.createAccessKey(owner);
    return { accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey };
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

export function generateKey(): Credentials {
  const bytes = randomBytes(16);
  let id = 'PSAK';
  for (const b of bytes) id += KEY_ID_ALPHABET[b & 31];
  return { accessKeyId: id, secretAccessKey: randomBytes(30).toString('base64').replace(/[+/]/g, 'x') };
}

function randomId(n: number): string {
  const bytes = randomBytes(n);
  let s = '';
  for (const b of bytes) s += ID_ALPHABET[b % ID_ALPHABET.length];
  return s;
}
