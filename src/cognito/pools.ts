// Cognito identity pools and identities in the metadata store, and the limits that keep unsigned
// callers from growing them without bound. GetId and GetCredentialsForIdentity need no signature
// (as in AWS), so anyone who knows a pool id can call them; the bounds, all named here:
//   - identities per pool (LimitExceededException once reached): the table cannot grow past it;
//   - new identities per pool per second, a token bucket (TooManyRequestsException): one client
//     cannot fill a pool in a burst and lock out everyone else's new devices quickly;
//   - stored credentials per identity: each GetCredentialsForIdentity keeps at most the newest
//     MAX_SESSIONS_PER_IDENTITY sessions of the identity (older ones are revoked), so repeated
//     calls replace credentials rather than pile them up.
// Identity ids and pool ids are REGION:uuid, as AWS's.

import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Db } from '../store/db.js';

/** AWS's default quota: identity pools per account. */
export const MAX_IDENTITY_POOLS = 1000;
/** Identities one pool may hold (Pinstream's bound; AWS sets none). */
export const DEFAULT_MAX_IDENTITIES_PER_POOL = 1_000_000;
/** New identities per pool: burst, then this many per second. */
export const DEFAULT_NEW_IDENTITY_BURST = 500;
export const DEFAULT_NEW_IDENTITIES_PER_SECOND = 50;
/** Credentials kept per identity; GetCredentialsForIdentity revokes the oldest beyond it. */
export const MAX_SESSIONS_PER_IDENTITY = 10;

export interface CognitoLimits {
  maxIdentitiesPerPool: number;
  newIdentityBurst: number;
  newIdentitiesPerSecond: number;
  maxSessionsPerIdentity: number;
}

export const DEFAULT_COGNITO_LIMITS: CognitoLimits = {
  maxIdentitiesPerPool: DEFAULT_MAX_IDENTITIES_PER_POOL,
  newIdentityBurst: DEFAULT_NEW_IDENTITY_BURST,
  newIdentitiesPerSecond: DEFAULT_NEW_IDENTITIES_PER_SECOND,
  maxSessionsPerIdentity: MAX_SESSIONS_PER_IDENTITY,
};

/** The stored configuration of a pool: the IdentityPool shape's members besides id and name. */
export interface PoolConfig {
  AllowUnauthenticatedIdentities: boolean;
  /** Absent when never set: AWS then still answers GetOpenIdToken. */
  AllowClassicFlow?: boolean;
  SupportedLoginProviders?: Record<string, string>;
  DeveloperProviderName?: string;
  OpenIdConnectProviderARNs?: string[];
  IdentityPoolTags?: Record<string, string>;
  /** SetIdentityPoolRoles: `authenticated` / `unauthenticated` → role ARN. */
  Roles?: Record<string, string>;
}

export interface Pool extends PoolConfig {
  IdentityPoolId: string;
  IdentityPoolName: string;
}

export interface Identity {
  id: string;
  poolId: string;
  /** provider name → subject */
  logins: Record<string, string>;
  createDate: number;
  lastModified: number;
}

export class LimitError extends Error {
  constructor(
    readonly code: 'LimitExceededException' | 'TooManyRequestsException',
    message: string,
  ) {
    super(message);
  }
}

export class IdentityPools {
  private buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private db: Db,
    private clock: Clock,
    readonly region: string,
    readonly accountId: string,
    readonly limits: CognitoLimits = DEFAULT_COGNITO_LIMITS,
  ) {}

  arn = (poolId: string) => `arn:aws:cognito-identity:${this.region}:${this.accountId}:identitypool/${poolId}`;
  /** What CreateIdentityPool and ListIdentityPools are authorized on. */
  collectionArn = () => `arn:aws:cognito-identity:${this.region}:${this.accountId}:identitypool/*`;

  createPool(name: string, config: PoolConfig): Pool {
    const count = (this.db.prepare('SELECT count(*) AS n FROM cognito_pools').get() as { n: number }).n;
    if (count >= MAX_IDENTITY_POOLS) throw new LimitError('LimitExceededException', `The account has reached its limit of ${MAX_IDENTITY_POOLS} identity pools.`);
    const id = `${this.region}:${randomUUID()}`;
    this.db.prepare('INSERT INTO cognito_pools (id, name, data, create_date) VALUES (?, ?, ?, ?)').run(id, name, JSON.stringify(config), this.clock.now());
    return { IdentityPoolId: id, IdentityPoolName: name, ...config };
  }

  getPool(id: string): Pool | undefined {
    const row = this.db.prepare('SELECT id, name, data FROM cognito_pools WHERE id = ?').get(id) as { id: string; name: string; data: string } | undefined;
    return row ? { IdentityPoolId: row.id, IdentityPoolName: row.name, ...(JSON.parse(row.data) as PoolConfig) } : undefined;
  }

  /** Pools in id order, after `after` (exclusive). */
  listPools(after: string, limit: number): Pool[] {
    const rows = this.db.prepare('SELECT id FROM cognito_pools WHERE id > ? ORDER BY id LIMIT ?').all(after, limit) as Array<{ id: string }>;
    return rows.map((r) => this.getPool(r.id)!);
  }

  updatePool(pool: Pool): void {
    const { IdentityPoolId, IdentityPoolName, ...config } = pool;
    this.db.prepare('UPDATE cognito_pools SET name = ?, data = ? WHERE id = ?').run(IdentityPoolName, JSON.stringify(config), IdentityPoolId);
  }

  /** Deletes the pool and its identities (their logins with them). */
  deletePool(id: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM cognito_logins WHERE pool_id = ?').run(id);
      this.db.prepare('DELETE FROM cognito_identities WHERE pool_id = ?').run(id);
      this.db.prepare('DELETE FROM cognito_pools WHERE id = ?').run(id);
    })();
    this.buckets.delete(id);
  }

  // --- identities --------------------------------------------------------------------------
  /** A new identity in the pool, linked to `logins`; LimitError when a bound is reached. */
  createIdentity(poolId: string, logins: Record<string, string>): Identity {
    const n = (this.db.prepare('SELECT count(*) AS n FROM cognito_identities WHERE pool_id = ?').get(poolId) as { n: number }).n;
    if (n >= this.limits.maxIdentitiesPerPool) {
      throw new LimitError('LimitExceededException', `The identity pool ${poolId} has reached its limit of ${this.limits.maxIdentitiesPerPool} identities.`);
    }
    this.take(poolId);
    const now = this.clock.now();
    const identity: Identity = { id: `${this.region}:${randomUUID()}`, poolId, logins: {}, createDate: now, lastModified: now };
    this.db.transaction(() => {
      this.db.prepare('INSERT INTO cognito_identities (id, pool_id, logins, create_date, last_modified) VALUES (?, ?, ?, ?, ?)').run(identity.id, poolId, '{}', now, now);
      this.link(identity, logins);
    })();
    return identity;
  }

  getIdentity(id: string): Identity | undefined {
    const row = this.db.prepare('SELECT * FROM cognito_identities WHERE id = ?').get(id) as
      | { id: string; pool_id: string; logins: string; create_date: number; last_modified: number }
      | undefined;
    if (!row) return undefined;
    return { id: row.id, poolId: row.pool_id, logins: JSON.parse(row.logins) as Record<string, string>, createDate: row.create_date, lastModified: row.last_modified };
  }

  /** The identity a login (provider, subject) of the pool belongs to, if any. */
  identityForLogin(poolId: string, provider: string, subject: string): string | undefined {
    const row = this.db.prepare('SELECT identity_id FROM cognito_logins WHERE pool_id = ? AND provider = ? AND subject = ?').get(poolId, provider, subject) as
      | { identity_id: string }
      | undefined;
    return row?.identity_id;
  }

  /** Links logins to the identity (a provider's earlier subject is replaced). */
  link(identity: Identity, logins: Record<string, string>): void {
    if (Object.keys(logins).length === 0) return;
    const now = this.clock.now();
    this.db.transaction(() => {
      for (const [provider, subject] of Object.entries(logins)) {
        const old = identity.logins[provider];
        if (old !== undefined) this.db.prepare('DELETE FROM cognito_logins WHERE pool_id = ? AND provider = ? AND subject = ?').run(identity.poolId, provider, old);
        this.db.prepare('INSERT INTO cognito_logins (pool_id, provider, subject, identity_id) VALUES (?, ?, ?, ?)').run(identity.poolId, provider, subject, identity.id);
        identity.logins[provider] = subject;
      }
      identity.lastModified = now;
      this.db.prepare('UPDATE cognito_identities SET logins = ?, last_modified = ? WHERE id = ?').run(JSON.stringify(identity.logins), now, identity.id);
    })();
  }

  unlink(identity: Identity, providers: string[]): void {
    const now = this.clock.now();
    this.db.transaction(() => {
      for (const provider of providers) {
        if (!Object.hasOwn(identity.logins, provider)) continue;
        this.db.prepare('DELETE FROM cognito_logins WHERE pool_id = ? AND provider = ? AND subject = ?').run(identity.poolId, provider, identity.logins[provider]);
        delete identity.logins[provider];
      }
      identity.lastModified = now;
      this.db.prepare('UPDATE cognito_identities SET logins = ?, last_modified = ? WHERE id = ?').run(JSON.stringify(identity.logins), now, identity.id);
    })();
  }

  listIdentities(poolId: string, after: string, limit: number): Identity[] {
    const rows = this.db.prepare('SELECT id FROM cognito_identities WHERE pool_id = ? AND id > ? ORDER BY id LIMIT ?').all(poolId, after, limit) as Array<{ id: string }>;
    return rows.map((r) => this.getIdentity(r.id)!);
  }

  identityCount(poolId: string): number {
    return (this.db.prepare('SELECT count(*) AS n FROM cognito_identities WHERE pool_id = ?').get(poolId) as { n: number }).n;
  }

  deleteIdentity(id: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM cognito_logins WHERE identity_id = ?').run(id);
      this.db.prepare('DELETE FROM cognito_identities WHERE id = ?').run(id);
    })();
  }

  /** One token of the pool's new-identity bucket, refilled with the (injected) clock. */
  private take(poolId: string): void {
    const { newIdentityBurst: burst, newIdentitiesPerSecond: rate } = this.limits;
    const now = this.clock.now();
    const b = this.buckets.get(poolId) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    if (b.tokens < 1) {
      this.buckets.set(poolId, b);
      throw new LimitError('TooManyRequestsException', `Too many new identities in identity pool ${poolId}; at most ${rate} a second after a burst of ${burst}. Retry later.`);
    }
    b.tokens -= 1;
    this.buckets.set(poolId, b);
  }
}
