// Cognito identity pools and identities in the metadata store (SQLite embedded, PostgreSQL
// shared), and the limits that keep unsigned callers from growing them without bound. GetId and GetCredentialsForIdentity need no signature
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
import type { CachedTable, MetadataCache, Stmt } from '../store/metadata.js';

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

interface PoolRow {
  id: string;
  name: string;
  data: string;
  create_date: number;
}
interface IdentityRow {
  id: string;
  pool_id: string;
  logins: string;
  create_date: number;
  last_modified: number;
}

/** Pools are few (MAX_IDENTITY_POOLS) and read on every Cognito call: cached whole, on every node. */
const POOLS = { table: 'cognito_pools', keys: ['id'] } as const;

/**
 * Identity pools over the metadata store (store/metadata.ts): pools are held in memory (synchronous
 * reads, kept current across nodes); identities and logins may be millions, so they are read and
 * written asynchronously through the store's driver, never cached. The new-identity token bucket
 * is this node's: N nodes admit up to N times the rate.
 */
export class IdentityPools {
  private buckets = new Map<string, { tokens: number; at: number }>();

  private constructor(
    private meta: MetadataCache,
    private pools: CachedTable<PoolRow>,
    private clock: Clock,
    readonly region: string,
    readonly accountId: string,
    readonly limits: CognitoLimits,
  ) {}

  static async open(meta: MetadataCache, clock: Clock, region: string, accountId: string, limits: CognitoLimits = DEFAULT_COGNITO_LIMITS): Promise<IdentityPools> {
    return new IdentityPools(meta, await meta.table<PoolRow>(POOLS), clock, region, accountId, limits);
  }

  arn = (poolId: string) => `arn:aws:cognito-identity:${this.region}:${this.accountId}:identitypool/${poolId}`;
  /** What CreateIdentityPool and ListIdentityPools are authorized on. */
  collectionArn = () => `arn:aws:cognito-identity:${this.region}:${this.accountId}:identitypool/*`;

  async createPool(name: string, config: PoolConfig): Promise<Pool> {
    const id = `${this.region}:${randomUUID()}`;
    // The count is checked in the insert itself, so nodes creating pools together stay within it.
    const [inserted] = await this.meta.write(
      [
        {
          sql: `INSERT INTO cognito_pools (id, name, data, create_date) SELECT ?, ?, ?, ? WHERE (SELECT count(*) FROM cognito_pools) < ? RETURNING id`,
          params: [id, name, JSON.stringify(config), this.clock.now(), MAX_IDENTITY_POOLS],
        },
      ],
      [{ table: POOLS.table, key: [id] }],
    );
    if (inserted.length === 0) throw new LimitError('LimitExceededException', `The account has reached its limit of ${MAX_IDENTITY_POOLS} identity pools.`);
    return { IdentityPoolId: id, IdentityPoolName: name, ...config };
  }

  getPool(id: string): Pool | undefined {
    const row = this.pools.get(id);
    return row ? { IdentityPoolId: row.id, IdentityPoolName: row.name, ...(JSON.parse(row.data) as PoolConfig) } : undefined;
  }

  /** Pools in id order, after `after` (exclusive). */
  listPools(after: string, limit: number): Pool[] {
    return this.pools
      .filter((r) => r.id > after)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .slice(0, limit)
      .map((r) => this.getPool(r.id)!);
  }

  async updatePool(pool: Pool): Promise<void> {
    const { IdentityPoolId, IdentityPoolName, ...config } = pool;
    await this.meta.write(
      [{ sql: 'UPDATE cognito_pools SET name = ?, data = ? WHERE id = ?', params: [IdentityPoolName, JSON.stringify(config), IdentityPoolId] }],
      [{ table: POOLS.table, key: [IdentityPoolId] }],
    );
  }

  /** Deletes the pool and its identities (their logins with them). */
  async deletePool(id: string): Promise<void> {
    await this.meta.write(
      [
        { sql: 'DELETE FROM cognito_logins WHERE pool_id = ?', params: [id] },
        { sql: 'DELETE FROM cognito_identities WHERE pool_id = ?', params: [id] },
        { sql: 'DELETE FROM cognito_pools WHERE id = ?', params: [id] },
      ],
      [{ table: POOLS.table, key: [id] }],
    );
    this.buckets.delete(id);
  }

  // --- identities --------------------------------------------------------------------------
  /** A new identity in the pool, linked to `logins`; LimitError when a bound is reached. */
  async createIdentity(poolId: string, logins: Record<string, string>): Promise<Identity> {
    const n = await this.identityCount(poolId);
    if (n >= this.limits.maxIdentitiesPerPool) throw this.full(poolId);
    this.take(poolId);
    const now = this.clock.now();
    const identity: Identity = { id: `${this.region}:${randomUUID()}`, poolId, logins: {}, createDate: now, lastModified: now };
    for (const [provider, subject] of Object.entries(logins)) identity.logins[provider] = subject;
    // Checked again in the insert, against what is committed when it runs: requests racing past
    // the count above (here or on other nodes) overshoot by at most those in flight together.
    const [inserted] = await this.meta.write(
      [
        {
          sql: `INSERT INTO cognito_identities (id, pool_id, logins, create_date, last_modified)
                SELECT ?, ?, ?, ?, ? WHERE (SELECT count(*) FROM cognito_identities WHERE pool_id = ?) < ? RETURNING id`,
          params: [identity.id, poolId, JSON.stringify(identity.logins), now, now, poolId, this.limits.maxIdentitiesPerPool],
        },
        ...Object.entries(logins).map(([provider, subject]) => ({
          sql: 'INSERT INTO cognito_logins (pool_id, provider, subject, identity_id) SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM cognito_identities WHERE id = ?)',
          params: [poolId, provider, subject, identity.id, identity.id],
        })),
      ],
      [],
    );
    if (inserted.length === 0) throw this.full(poolId);
    return identity;
  }

  async getIdentity(id: string): Promise<Identity | undefined> {
    const row = (await this.meta.driver.all<IdentityRow>('SELECT * FROM cognito_identities WHERE id = ?', [id]))[0];
    return row && toIdentity(row);
  }

  /** The identity a login (provider, subject) of the pool belongs to, if any. */
  async identityForLogin(poolId: string, provider: string, subject: string): Promise<string | undefined> {
    const rows = await this.meta.driver.all<{ identity_id: string }>('SELECT identity_id FROM cognito_logins WHERE pool_id = ? AND provider = ? AND subject = ?', [
      poolId,
      provider,
      subject,
    ]);
    return rows[0]?.identity_id;
  }

  /** Links logins to the identity (a provider's earlier subject is replaced). */
  async link(identity: Identity, logins: Record<string, string>): Promise<void> {
    if (Object.keys(logins).length === 0) return;
    const now = this.clock.now();
    const next = { ...identity.logins };
    const stmts: Stmt[] = [];
    for (const [provider, subject] of Object.entries(logins)) {
      const old = next[provider];
      if (old !== undefined) stmts.push({ sql: 'DELETE FROM cognito_logins WHERE pool_id = ? AND provider = ? AND subject = ?', params: [identity.poolId, provider, old] });
      stmts.push({ sql: 'INSERT INTO cognito_logins (pool_id, provider, subject, identity_id) VALUES (?, ?, ?, ?)', params: [identity.poolId, provider, subject, identity.id] });
      next[provider] = subject;
    }
    stmts.push({ sql: 'UPDATE cognito_identities SET logins = ?, last_modified = ? WHERE id = ?', params: [JSON.stringify(next), now, identity.id] });
    await this.meta.write(stmts, []);
    identity.logins = next;
    identity.lastModified = now;
  }

  async unlink(identity: Identity, providers: string[]): Promise<void> {
    const now = this.clock.now();
    const next = { ...identity.logins };
    const stmts: Stmt[] = [];
    for (const provider of providers) {
      if (!Object.hasOwn(next, provider)) continue;
      stmts.push({ sql: 'DELETE FROM cognito_logins WHERE pool_id = ? AND provider = ? AND subject = ?', params: [identity.poolId, provider, next[provider]] });
      delete next[provider];
    }
    stmts.push({ sql: 'UPDATE cognito_identities SET logins = ?, last_modified = ? WHERE id = ?', params: [JSON.stringify(next), now, identity.id] });
    await this.meta.write(stmts, []);
    identity.logins = next;
    identity.lastModified = now;
  }

  async listIdentities(poolId: string, after: string, limit: number): Promise<Identity[]> {
    const rows = await this.meta.driver.all<IdentityRow>('SELECT * FROM cognito_identities WHERE pool_id = ? AND id > ? ORDER BY id LIMIT ?', [poolId, after, limit]);
    return rows.map(toIdentity);
  }

  async identityCount(poolId: string): Promise<number> {
    return Number((await this.meta.driver.all<{ n: number }>('SELECT count(*) AS n FROM cognito_identities WHERE pool_id = ?', [poolId]))[0].n);
  }

  async deleteIdentity(id: string): Promise<void> {
    await this.meta.write(
      [
        { sql: 'DELETE FROM cognito_logins WHERE identity_id = ?', params: [id] },
        { sql: 'DELETE FROM cognito_identities WHERE id = ?', params: [id] },
      ],
      [],
    );
  }

  private full(poolId: string): LimitError {
    return new LimitError('LimitExceededException', `The identity pool ${poolId} has reached its limit of ${this.limits.maxIdentitiesPerPool} identities.`);
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

const toIdentity = (row: IdentityRow): Identity => ({
  id: row.id,
  poolId: row.pool_id,
  logins: JSON.parse(row.logins) as Record<string, string>,
  createDate: Number(row.create_date),
  lastModified: Number(row.last_modified),
});
