// Endpoints (devices and addresses) of an app, on the metadata Store (src/store/metadata.ts): this
// node's SQLite database by default, PostgreSQL shared by every node when configured. Owns
// Pinpoint's endpoint semantics: case-insensitive ids, per-key replace of attributes and metrics,
// ACTIVE on update, INACTIVE for other endpoints that get the same Address, the per-user endpoint
// cap, and the endpoint quotas of reference/pinpoint.md §2.2.
//
// Endpoints are per tenant and many (millions per app), so they are not cached whole as apps are:
// reads and writes are async, over the Store's SqlDriver. Each write is one transaction written
// once as `Steps` (store/metadata.ts), which the embedded SQLite driver runs synchronously (the
// embedded PutEvents stays as fast as before and reaches its log append without a pause) and
// PostgreSQL runs statement by statement on one connection.
//
// Two nodes writing one endpoint at once (PostgreSQL): an upsert is read, merge in JS, write. To
// not lose the fields of a concurrent writer (both read the old version, the last write wins), a
// writer first takes a transaction-scoped advisory lock on the endpoint's key and then reads the
// row FOR UPDATE. The advisory lock is what serializes the first two writes of an endpoint that
// does not exist yet (FOR UPDATE locks no row then, and both INSERTs would go ahead, the second's
// ON CONFLICT overwriting the first's fields); FOR UPDATE covers the rows written without that
// key's lock (other endpoints turned INACTIVE by an Address, or by the per-user cap). A deadlock
// between two such writers is retried (ENDPOINT_TX_ATTEMPTS).
//
// Caching: embedded, this process is the only writer, so a bounded cache of parsed endpoints is
// exact. With PostgreSQL, writes never read from the cache (they read the row under the lock), and
// reads of the API (GetEndpoint, GetUserEndpoints) go to the database; only PutEvents' events that
// carry no endpoint data take the endpoint (for their records) from the cache, if this node read
// or wrote it less than ENDPOINT_SHARED_CACHE_MS ago: such a record may show an endpoint as it was
// that long ago when another node has just changed it.

import { createHash } from 'node:crypto';
import type { Db } from '../store/db.js';
import { savepoint, type SqlDriver, type Steps } from '../store/metadata.js';
import { SqliteDriver } from '../store/sqlite-driver.js';
import type { Clock } from '../clock.js';
import { badRequest, notFound } from '../http/errors.js';
import { isWellFormed, repairJsonText, wellFormed } from '../unicode.js';
import { isObject, optEnum, parseIsoTimestamp, type Json } from '../http/shape.js';
import type { EndpointRequest } from '../models/generated/pinpoint-inputs.js';
import {
  MAX_ATTRIBUTE_NAMES_PER_APP,
  MAX_ENDPOINT_ATTRIBUTE_NAME_LENGTH,
  MAX_ENDPOINT_ATTRIBUTE_VALUES,
  MAX_ENDPOINT_ATTRIBUTE_VALUE_LENGTH,
  MAX_ENDPOINT_BYTES,
  MAX_ENDPOINTS_PER_USER,
} from './limits.js';

/** Push channels whose oldest endpoint gives way when a user reaches the endpoint cap (§2.2). */
const PUSH_CHANNELS = new Set(['ADM', 'GCM', 'APNS', 'APNS_SANDBOX', 'APNS_VOIP', 'APNS_VOIP_SANDBOX', 'BAIDU']);

const DEMOGRAPHIC_FIELDS = ['AppVersion', 'Locale', 'Make', 'Model', 'ModelVersion', 'Platform', 'PlatformVersion', 'Timezone'];
const LOCATION_STRINGS = ['City', 'Country', 'PostalCode', 'Region'];

/** The EndpointResponse shape, as stored and returned. */
export interface Endpoint {
  ApplicationId: string;
  Id: string;
  CohortId: string;
  CreationDate: string;
  EffectiveDate: string;
  EndpointStatus: string;
  OptOut: string;
  RequestId?: string;
  Address?: string;
  ChannelType?: string;
  Attributes?: Record<string, string[]>;
  Metrics?: Record<string, number>;
  Demographic?: Record<string, string>;
  Location?: Record<string, string | number>;
  User?: { UserId?: string; UserAttributes?: Record<string, string[]> };
}

/** A stored endpoint with its JSON text, reused verbatim inside event-stream records. */
export interface StoredEndpoint {
  endpoint: Endpoint;
  json: string;
}

/** Parsed endpoints a node keeps (FIFO): an embedded PutEvents of known endpoints reads no SQLite. */
export const ENDPOINT_CACHE_SIZE = 50_000;
/** With a shared store, how old a cached endpoint may be for the records of events that carry no endpoint data. */
export const ENDPOINT_SHARED_CACHE_MS = 2_000;
/** Tries of an endpoint transaction that PostgreSQL aborted as a deadlock or serialization failure. */
export const ENDPOINT_TX_ATTEMPTS = 3;

/** Endpoints of a deleted app removed per transaction and event-loop turn (about a millisecond of work embedded). */
export const ENDPOINT_PURGE_CHUNK = 1000;

export function checkEndpointId(id: string): void {
  if (id === '') throw badRequest('Endpoint id is required');
  // An id is a name: replacing its broken half-character could merge two endpoints, so it is refused.
  if (!isWellFormed(id)) throw badRequest(`Endpoint id ${JSON.stringify(id)} is not valid Unicode: it contains an unpaired UTF-16 surrogate`);
  if (/[${}]/.test(id)) throw badRequest(`Endpoint id "${id}" must not contain $, { or }`);
}

/**
 * Pinpoint's rules for an EndpointRequest / EndpointBatchItem / PublicEndpoint body that the model
 * does not carry (its size, status and opt-out values, dates, coordinates, attribute limits); its
 * member types were checked against the model before. `field` prefixes messages.
 */
export function validateEndpointInput(input: Json, field: string, bytes: number): void {
  if (bytes > MAX_ENDPOINT_BYTES) {
    throw badRequest(`${field} is ${bytes} bytes; the maximum endpoint size is ${MAX_ENDPOINT_BYTES} bytes (15 KB)`);
  }
  const e = input as Pick<EndpointRequest, 'EndpointStatus' | 'OptOut' | 'EffectiveDate' | 'Attributes' | 'Metrics' | 'Location' | 'User'>;
  // The model types these as plain strings; Pinpoint takes only these values.
  optEnum(e.EndpointStatus, `${field}.EndpointStatus`, ['ACTIVE', 'INACTIVE']);
  optEnum(e.OptOut, `${field}.OptOut`, ['ALL', 'NONE']);
  if (e.EffectiveDate !== undefined && parseIsoTimestamp(e.EffectiveDate) === undefined) {
    throw badRequest(`${field}.EffectiveDate "${e.EffectiveDate}" is not an ISO 8601 date-time`);
  }
  checkAttributeMap(e.Attributes, `${field}.Attributes`);
  for (const k of Object.keys(e.Metrics ?? {})) checkName(k, `${field}.Metrics`);
  const { Latitude: lat, Longitude: lon } = e.Location ?? {};
  if (lat !== undefined && (lat < -90 || lat > 90)) throw badRequest(`${field}.Location.Latitude must be between -90 and 90`);
  if (lon !== undefined && (lon < -180 || lon > 180)) throw badRequest(`${field}.Location.Longitude must be between -180 and 180`);
  if (e.User) checkAttributeMap(e.User.UserAttributes, `${field}.User.UserAttributes`);
}

function checkName(name: string, field: string): void {
  if (name.length === 0 || name.length > MAX_ENDPOINT_ATTRIBUTE_NAME_LENGTH) {
    throw badRequest(
      `${field} name "${name.slice(0, 60)}" is ${name.length} characters; attribute names must be 1 to ${MAX_ENDPOINT_ATTRIBUTE_NAME_LENGTH}`,
    );
  }
}

function checkAttributeMap(map: Record<string, Array<string | null>> | undefined, field: string): void {
  if (!map) return;
  for (const [k, values] of Object.entries(map)) {
    checkName(k, field);
    if (values.length > MAX_ENDPOINT_ATTRIBUTE_VALUES) {
      throw badRequest(`${field}.${k} has ${values.length} values; the maximum is ${MAX_ENDPOINT_ATTRIBUTE_VALUES} per attribute`);
    }
    for (const s of values) {
      if (s === null) throw badRequest(`${field}.${k} must be a list of strings`);
      if (s.length > MAX_ENDPOINT_ATTRIBUTE_VALUE_LENGTH) {
        throw badRequest(
          `${field}.${k} has a value of ${s.length} characters; attribute values must be at most ${MAX_ENDPOINT_ATTRIBUTE_VALUE_LENGTH}`,
        );
      }
    }
  }
}

function attributeNames(input: Json): string[] {
  const names: string[] = [];
  if (isObject(input.Attributes)) names.push(...Object.keys(input.Attributes));
  if (isObject(input.Metrics)) names.push(...Object.keys(input.Metrics));
  if (isObject(input.User) && isObject(input.User.UserAttributes)) names.push(...Object.keys(input.User.UserAttributes));
  return names;
}

/** True when the input carries anything to store (Amplify JS sends `Endpoint: {}` with events). */
export function hasEndpointFields(input: Json): boolean {
  for (const _ in input) return true;
  return false;
}

/**
 * Every statement of the endpoint write and read paths, in the portable SQL both adapters take.
 * Each touches only the rows it names: by primary key, or through an index named with INDEXED BY.
 * An app may hold millions of endpoints, and without statistics SQLite's planner prefers the
 * primary key's `app_id` prefix over a two-column index, which reads the whole app; INDEXED BY makes
 * preparing the statement fail instead of silently scanning (test/endpoint-plans.test.ts checks
 * each plan). PostgreSQL plans with statistics: its driver drops the hint. Ids are passed folded
 * (foldId): SQLite's NOCASE column matches them, PostgreSQL's column holds them folded.
 */
export const ENDPOINT_SQL = {
  get: 'SELECT data FROM endpoints WHERE app_id = ? AND id = ?',
  put: `INSERT INTO endpoints (app_id, id, user_id, active_address, data) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT(app_id, id) DO UPDATE SET user_id = excluded.user_id, active_address = excluded.active_address, data = excluded.data`,
  byUser: 'SELECT data FROM endpoints INDEXED BY endpoints_user WHERE app_id = ? AND user_id = ?',
  /** Other ACTIVE endpoints with this address (the column holds the Address of ACTIVE endpoints only). */
  activeByAddress: 'SELECT data FROM endpoints INDEXED BY endpoints_active_address WHERE app_id = ? AND active_address = ? AND id <> ?',
  del: 'DELETE FROM endpoints WHERE app_id = ? AND id = ?',
  /** One chunk of a deleted app's endpoints (primary-key order, so each chunk reads only its rows). */
  purgeChunk: 'DELETE FROM endpoints WHERE app_id = ? AND id IN (SELECT id FROM endpoints WHERE app_id = ? LIMIT ?)',
  anyLeft: 'SELECT 1 AS n FROM endpoints WHERE app_id = ? LIMIT 1',
  purgeDone: 'DELETE FROM endpoint_purges WHERE app_id = ?',
  purges: 'SELECT app_id FROM endpoint_purges',
  /** At most MAX_ATTRIBUTE_NAMES_PER_APP rows, read once per app and then cached. */
  names: 'SELECT name FROM app_attribute_names WHERE app_id = ?',
  addName: 'INSERT INTO app_attribute_names (app_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING',
} as const;

/**
 * PostgreSQL only: serializes the writers of one endpoint across nodes until their transaction
 * ends, whether or not the row exists yet (see the header).
 */
const PG_LOCK_ENDPOINT = 'SELECT pg_advisory_xact_lock(hashtextextended(?, 0))';
/**
 * The same for several endpoints in one statement, in sorted key order (a subquery with ORDER BY is
 * not flattened, so the locks are taken in that order): two batches naming the same endpoints in
 * different orders then wait for each other instead of deadlocking.
 */
const PG_LOCK_ENDPOINTS = 'SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) AS n FROM (SELECT k FROM unnest(?::text[]) AS k ORDER BY k) AS sorted';
/** PostgreSQL's codes for a transaction aborted by a deadlock or a serialization failure: worth another try. */
const PG_RETRYABLE = new Set(['40P01', '40001']);

/** An id as both stores compare ids: ASCII letters folded to lower case (SQLite's NOCASE). */
export function foldId(id: string): string {
  return /[A-Z]/.test(id) ? id.replace(/[A-Z]+/g, (m) => m.toLowerCase()) : id;
}

/** What one transaction wrote, applied to the caches only once it commits. */
interface EpTx {
  appId: string;
  /** Endpoints written, by cache key (null: deleted), in order; truncated when a savepoint rolls back. */
  written: Array<[string, StoredEndpoint | null]>;
  names: string[];
  /**
   * Shared store: endpoint keys whose advisory lock this transaction holds (to its end), and the
   * order they were taken in (a savepoint rolled back releases those taken after it).
   */
  locked: Set<string>;
  lockLog: string[];
}

interface CachedEndpoint {
  stored: StoredEndpoint;
  /** When it was read or written here (the shared store's records use it for ENDPOINT_SHARED_CACHE_MS). */
  at: number;
}

export class Endpoints {
  private cache = new Map<string, CachedEndpoint>();
  private namesByApp = new Map<string, Set<string>>();
  readonly driver: SqlDriver;
  /** Set for the embedded store: transactions run synchronously. */
  private readonly sync: SqliteDriver | undefined;
  /** PostgreSQL: writes lock what they read, and the cache is not authoritative. */
  private readonly shared: boolean;

  /** `store`: the metadata Store's driver, or (tests, tools) an embedded SQLite database. */
  constructor(
    store: SqlDriver | Db,
    private clock: Clock,
  ) {
    this.driver = 'kind' in store ? store : new SqliteDriver(store);
    this.sync = this.driver instanceof SqliteDriver ? this.driver : undefined;
    this.shared = this.driver.kind === 'postgres';
  }

  /** The stored endpoint (GetEndpoint), fresh from the store when it is shared. */
  async get(appId: string, id: string): Promise<StoredEndpoint | undefined> {
    if (!this.shared) {
      const hit = this.cache.get(cacheKey(appId, id));
      if (hit) return hit.stored;
    }
    const rows = await this.driver.all<{ data: string }>(ENDPOINT_SQL.get, [appId, foldId(id)]);
    if (rows.length === 0) return undefined;
    const stored = parse(rows[0].data);
    this.remember(cacheKey(appId, id), stored);
    return stored;
  }

  async require(appId: string, id: string): Promise<Endpoint> {
    const e = await this.get(appId, id);
    if (!e) throw notFound(`Endpoint not found: ${id} in application ${appId}`);
    return e.endpoint;
  }

  /**
   * Runs `body` as one transaction of endpoint writes (and whatever else it yields, such as an
   * import job's progress). The caches take what it wrote only once it has committed.
   */
  run<T>(appId: string, body: (tx: EpTx) => Steps<T>): Promise<T> {
    if (this.sync) {
      try {
        return Promise.resolve(this.runSync(appId, body));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return this.runShared(appId, body);
  }

  /** Creates or merges one endpoint (input already validated), in its own transaction. */
  upsert(appId: string, id: string, input: Json): Promise<StoredEndpoint> {
    return this.run(appId, (tx) => this.upsertSteps(tx, id, input));
  }

  /** All-or-nothing batch: a failing item rolls back the items before it. */
  upsertBatch(appId: string, items: Array<{ id: string; input: Json }>): Promise<void> {
    return this.run(appId, (tx) =>
      (function* (self: Endpoints) {
        yield* self.lockAll(
          tx,
          items.map((i) => i.id),
        );
        for (const { id, input } of items) yield* self.upsertSteps(tx, id, input);
      })(this),
    );
  }

  /**
   * For PutEvents: each item's endpoint, created (or `input` merged into it) when needed, all in one
   * transaction. Synchronous on the embedded store. An item without endpoint data whose endpoint
   * this node has cached (ENDPOINT_SHARED_CACHE_MS with a shared store) reads nothing; when every
   * item is one, the store is not touched at all.
   */
  touchAll(appId: string, items: ReadonlyArray<{ id: string; input: Json | undefined }>): StoredEndpoint[] | Promise<StoredEndpoint[]> {
    const out: Array<StoredEndpoint | undefined> = new Array(items.length).fill(undefined);
    let missing = 0;
    for (let i = 0; i < items.length; i++) {
      const { id, input } = items[i];
      if (!input || !hasEndpointFields(input)) {
        const hit = this.cache.get(cacheKey(appId, id));
        if (hit && (!this.shared || this.clock.now() - hit.at < ENDPOINT_SHARED_CACHE_MS)) {
          out[i] = hit.stored;
          continue;
        }
      }
      missing++;
    }
    if (missing === 0) return out as StoredEndpoint[];
    if (this.shared) return this.touchShared(appId, items, out);
    return this.touchInTx(appId, items, out) as StoredEndpoint[];
  }

  /**
   * Shared store: the endpoints of items without endpoint data are read first, outside any
   * transaction (one round trip each, side by side); a transaction is opened only for items with
   * data and endpoints that do not exist yet.
   */
  private async touchShared(
    appId: string,
    items: ReadonlyArray<{ id: string; input: Json | undefined }>,
    out: Array<StoredEndpoint | undefined>,
  ): Promise<StoredEndpoint[]> {
    await Promise.all(
      items.map(async ({ id, input }, i) => {
        if (out[i] || (input && hasEndpointFields(input))) return;
        out[i] = await this.get(appId, id);
      }),
    );
    if (out.every((e) => e !== undefined)) return out as StoredEndpoint[];
    return this.touchInTx(appId, items, out);
  }

  private touchInTx(
    appId: string,
    items: ReadonlyArray<{ id: string; input: Json | undefined }>,
    out: Array<StoredEndpoint | undefined>,
  ): StoredEndpoint[] | Promise<StoredEndpoint[]> {
    const self = this;
    // A retried transaction (PostgreSQL deadlock) starts again from the cached ones only.
    const body = function* (tx: EpTx): Steps<StoredEndpoint[]> {
      const res = out.slice();
      yield* self.lockAll(
        tx,
        items.filter((it) => it.input && hasEndpointFields(it.input)).map((it) => it.id),
      );
      for (let i = 0; i < items.length; i++) {
        if (res[i]) continue;
        const { id, input } = items[i];
        if (!input || !hasEndpointFields(input)) {
          // Read without the write lock: most such endpoints exist, and an event only reads them.
          const existing = yield* self.readSteps(tx, id, false);
          if (existing) {
            res[i] = existing;
            continue;
          }
        }
        res[i] = yield* self.upsertSteps(tx, id, input ?? {});
      }
      return res as StoredEndpoint[];
    };
    return this.sync ? this.runSync(appId, body) : this.runShared(appId, body);
  }

  async delete(appId: string, id: string): Promise<Endpoint> {
    return this.run(appId, function* (this: void, tx: EpTx): Steps<Endpoint> {
      const rows = (yield { sql: ENDPOINT_SQL.get, params: [appId, foldId(id)] }) as Array<{ data: string }>;
      if (rows.length === 0) throw notFound(`Endpoint not found: ${id} in application ${appId}`);
      yield { sql: ENDPOINT_SQL.del, params: [appId, foldId(id)] };
      tx.written.push([cacheKey(appId, id), null]);
      return parse(rows[0].data).endpoint;
    });
  }

  async byUser(appId: string, userId: string): Promise<Endpoint[]> {
    const rows = await this.driver.all<{ data: string }>(ENDPOINT_SQL.byUser, [appId, userId]);
    return rows.map((r) => JSON.parse(repairJsonText(r.data)) as Endpoint);
  }

  deleteUser(appId: string, userId: string): Promise<Endpoint[]> {
    const lock = this.shared ? ' FOR UPDATE' : '';
    return this.run(appId, function* (tx: EpTx): Steps<Endpoint[]> {
      const rows = (yield { sql: ENDPOINT_SQL.byUser + lock, params: [appId, userId] }) as Array<{ data: string }>;
      const list = rows.map((r) => JSON.parse(repairJsonText(r.data)) as Endpoint);
      for (const e of list) {
        yield { sql: ENDPOINT_SQL.del, params: [appId, foldId(e.Id)] };
        tx.written.push([cacheKey(appId, e.Id), null]);
      }
      return list;
    });
  }

  forgetApp(appId: string): void {
    this.namesByApp.delete(appId);
    for (const k of this.cache.keys()) if (k.startsWith(appId + '\n')) this.cache.delete(k);
  }

  /**
   * Removes the endpoints of an app Apps.delete queued (endpoint_purges), ENDPOINT_PURGE_CHUNK per
   * transaction and event-loop turn, then takes the app off the queue. Resolves when they are gone.
   * Each chunk commits on its own, so a purge a stop (or a node's death) interrupts goes on from
   * what is left, at the next start of any node; two nodes purging one app at once only share the
   * work (a chunk deletes what is still there).
   */
  async purgeApp(appId: string): Promise<void> {
    this.forgetApp(appId);
    for (;;) {
      if (this.closed) return;
      // The chunk, and whether any are left, in one transaction (a DELETE's count is not portable);
      // the next chunk waits for the event loop's next turn too.
      const chunk = this.driver.write(
        [
          { sql: ENDPOINT_SQL.purgeChunk, params: [appId, appId, ENDPOINT_PURGE_CHUNK] },
          { sql: ENDPOINT_SQL.anyLeft, params: [appId] },
        ],
        [],
      );
      const [[, left]] = await Promise.all([chunk, new Promise<void>((resolve) => setImmediate(resolve))]);
      if (left.length === 0) break;
    }
    if (!this.closed) await this.driver.write([{ sql: ENDPOINT_SQL.purgeDone, params: [appId] }], []);
  }

  /** Finishes purges a stop interrupted (at start-up). */
  async resumePurges(): Promise<void> {
    for (const { app_id } of await this.driver.all<{ app_id: string }>(ENDPOINT_SQL.purges)) await this.purgeApp(app_id);
  }

  /** Stops purges between chunks (the server's close). */
  close(): void {
    this.closed = true;
  }

  private closed = false;

  /**
   * For import jobs, inside `run`: an upsert that keeps the CreationDate an exported endpoint
   * carries when it creates the endpoint (moving a project keeps its endpoints' ages). A failure
   * undoes only this endpoint's writes (a savepoint) and is thrown to the caller.
   */
  *importSteps(tx: EpTx, id: string, input: Json, creationDate: string | undefined): Steps<StoredEndpoint> {
    const mark = tx.written.length;
    const names = tx.names.length;
    const locks = tx.lockLog.length;
    try {
      return yield* savepoint(() => this.upsertSteps(tx, id, input, creationDate));
    } catch (e) {
      tx.written.length = mark;
      tx.names.length = names;
      for (const k of tx.lockLog.splice(locks)) tx.locked.delete(k);
      this.namesByApp.delete(tx.appId);
      throw e;
    }
  }

  private runSync<T>(appId: string, body: (tx: EpTx) => Steps<T>): T {
    const tx: EpTx = { appId, written: [], names: [], locked: new Set(), lockLog: [] };
    try {
      const out = this.sync!.transactSync(() => body(tx));
      this.commit(tx);
      return out;
    } catch (e) {
      this.namesByApp.delete(appId);
      throw e;
    }
  }

  private async runShared<T>(appId: string, body: (tx: EpTx) => Steps<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const tx: EpTx = { appId, written: [], names: [], locked: new Set(), lockLog: [] };
      try {
        const out = await this.driver.transact(() => body(tx));
        this.commit(tx);
        return out;
      } catch (e) {
        this.namesByApp.delete(appId);
        if (attempt >= ENDPOINT_TX_ATTEMPTS || !PG_RETRYABLE.has((e as { code?: string })?.code ?? '')) throw e;
      }
    }
  }

  private commit(tx: EpTx): void {
    for (const [key, stored] of tx.written) {
      if (stored) this.remember(key, stored);
      else this.cache.delete(key);
    }
    if (tx.names.length > 0) {
      const known = this.namesByApp.get(tx.appId);
      if (known) for (const n of tx.names) known.add(n);
    }
  }

  /** Shared store: takes the advisory locks of these endpoints at once, in sorted order. */
  private *lockAll(tx: EpTx, ids: string[]): Steps<void> {
    if (!this.shared) return;
    const keys = [...new Set(ids.map((id) => cacheKey(tx.appId, id)))].filter((k) => !tx.locked.has(k)).sort();
    if (keys.length === 0) return;
    if (keys.length === 1) yield { sql: PG_LOCK_ENDPOINT, params: keys };
    else yield { sql: PG_LOCK_ENDPOINTS, params: [keys] };
    for (const k of keys) tx.locked.add(k);
    tx.lockLog.push(...keys);
  }

  /** The endpoint as this transaction sees it; `lock`: it is about to be written (shared store: locked). */
  private *readSteps(tx: EpTx, id: string, lock: boolean): Steps<StoredEndpoint | undefined> {
    const key = cacheKey(tx.appId, id);
    for (let i = tx.written.length - 1; i >= 0; i--) if (tx.written[i][0] === key) return tx.written[i][1] ?? undefined;
    if (!this.shared) {
      const hit = this.cache.get(key);
      if (hit) return hit.stored;
    }
    const folded = foldId(id);
    if (this.shared && lock && !tx.locked.has(key)) {
      yield { sql: PG_LOCK_ENDPOINT, params: [key] };
      tx.locked.add(key);
      tx.lockLog.push(key);
    }
    const rows = (yield { sql: ENDPOINT_SQL.get + (this.shared && lock ? ' FOR UPDATE' : ''), params: [tx.appId, folded] }) as Array<{ data: string }>;
    if (rows.length === 0) return undefined;
    const stored = parse(rows[0].data);
    if (!lock) this.remember(key, stored);
    return stored;
  }

  private *upsertSteps(tx: EpTx, id: string, raw: Json, creationDate?: string): Steps<StoredEndpoint> {
    const appId = tx.appId;
    checkEndpointId(id);
    // Strings that are not valid Unicode are stored with U+FFFD for each unpaired surrogate (src/unicode.ts).
    const input = wellFormed(raw);
    yield* this.reserveAttributeNames(tx, attributeNames(input));
    const prev = (yield* this.readSteps(tx, id, true))?.endpoint;
    const now = new Date(this.clock.now()).toISOString();
    const e = merge(prev, input, appId, id, now);
    if (!prev && creationDate !== undefined) e.CreationDate = creationDate;
    const prevUser = prev?.User?.UserId;
    const user = e.User?.UserId;
    if (user !== undefined && user !== prevUser) yield* this.makeRoomForUser(tx, user, e);
    if (input.Address !== undefined && e.Address !== undefined) yield* this.deactivateOthersWithAddress(tx, e.Id, e.Address);
    return yield* this.write(tx, e);
  }

  private *write(tx: EpTx, e: Endpoint): Steps<StoredEndpoint> {
    const json = JSON.stringify(e);
    const activeAddress = e.EndpointStatus === 'ACTIVE' ? (e.Address ?? null) : null;
    yield { sql: ENDPOINT_SQL.put, params: [tx.appId, foldId(e.Id), e.User?.UserId ?? null, activeAddress, json] };
    const stored = { endpoint: e, json };
    tx.written.push([cacheKey(tx.appId, e.Id), stored]);
    return stored;
  }

  /** Enforces MAX_ENDPOINTS_PER_USER as Pinpoint documents it (§2.2). */
  private *makeRoomForUser(tx: EpTx, userId: string, incoming: Endpoint): Steps<void> {
    const rows = (yield { sql: ENDPOINT_SQL.byUser + (this.shared ? ' FOR UPDATE' : ''), params: [tx.appId, userId] }) as Array<{ data: string }>;
    // Read inside the transaction: the rows are as its own earlier writes left them.
    const others = rows.map((r) => JSON.parse(repairJsonText(r.data)) as Endpoint).filter((e) => foldId(e.Id) !== foldId(incoming.Id));
    if (others.length < MAX_ENDPOINTS_PER_USER) return;
    const pushOthers = others.filter((e) => e.ChannelType !== undefined && PUSH_CHANNELS.has(e.ChannelType));
    if (incoming.ChannelType && PUSH_CHANNELS.has(incoming.ChannelType) && pushOthers.length > 0) {
      pushOthers.sort((a, b) => a.EffectiveDate.localeCompare(b.EffectiveDate));
      const oldest = pushOthers[0];
      oldest.EndpointStatus = 'INACTIVE';
      if (oldest.User) delete oldest.User.UserId;
      yield* this.write(tx, oldest);
      return;
    }
    throw badRequest(
      `Exceeded maximum endpoint per user count ${MAX_ENDPOINTS_PER_USER}: user "${userId}" already has ${others.length} endpoints`,
    );
  }

  private *deactivateOthersWithAddress(tx: EpTx, id: string, address: string): Steps<void> {
    const rows = (yield {
      sql: ENDPOINT_SQL.activeByAddress + (this.shared ? ' FOR UPDATE' : ''),
      params: [tx.appId, address, foldId(id)],
    }) as Array<{ data: string }>;
    for (const r of rows) {
      const other = JSON.parse(repairJsonText(r.data)) as Endpoint;
      other.EndpointStatus = 'INACTIVE';
      yield* this.write(tx, other);
    }
  }

  private *reserveAttributeNames(tx: EpTx, names: string[]): Steps<void> {
    if (names.length === 0) return;
    const appId = tx.appId;
    let known = this.namesByApp.get(appId);
    const unknown = () => [...new Set(names)].filter((n) => !known!.has(n) && !tx.names.includes(n));
    // Shared: another node may have added names since they were read, so an unknown name re-reads them.
    if (!known || (this.shared && unknown().length > 0)) {
      const rows = (yield { sql: ENDPOINT_SQL.names, params: [appId] }) as Array<{ name: string }>;
      known = new Set(rows.map((r) => r.name));
      this.namesByApp.set(appId, known);
    }
    const fresh = unknown();
    if (fresh.length === 0) return;
    const total = known.size + tx.names.length + fresh.length;
    if (total > MAX_ATTRIBUTE_NAMES_PER_APP) {
      throw badRequest(
        `Application ${appId} would have ${total} endpoint attribute names across Attributes, Metrics and ` +
          `UserAttributes; the maximum is ${MAX_ATTRIBUTE_NAMES_PER_APP} per application`,
      );
    }
    for (const n of fresh) {
      yield { sql: ENDPOINT_SQL.addName, params: [appId, n] };
      tx.names.push(n);
    }
  }

  private remember(key: string, stored: StoredEndpoint): void {
    if (!this.cache.has(key) && this.cache.size >= ENDPOINT_CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, { stored, at: this.clock.now() });
  }
}

function parse(data: string): StoredEndpoint {
  const json = repairJsonText(data);
  return { endpoint: JSON.parse(json) as Endpoint, json };
}

function cacheKey(appId: string, id: string): string {
  return appId + '\n' + foldId(id);
}

/**
 * Pinpoint's update semantics: given fields replace; attribute/metric keys replace one by one.
 * Only the members Pinpoint defines are kept (it ignores others), and the previous endpoint is
 * copied member by member, so nothing a client nests is ever walked or stored.
 */
function merge(prev: Endpoint | undefined, input: Json, appId: string, id: string, now: string): Endpoint {
  const e: Endpoint = prev
    ? copyEndpoint(prev)
    : { ApplicationId: appId, Id: id, CohortId: cohortOf(id), CreationDate: now, EffectiveDate: now, EndpointStatus: 'ACTIVE', OptOut: 'NONE' };
  for (const k of ['Address', 'ChannelType', 'OptOut', 'RequestId'] as const) {
    if (typeof input[k] === 'string') e[k] = input[k] as string;
  }
  e.EffectiveDate = typeof input.EffectiveDate === 'string' ? input.EffectiveDate : now;
  e.EndpointStatus = typeof input.EndpointStatus === 'string' ? input.EndpointStatus : 'ACTIVE';
  if (isObject(input.Attributes)) e.Attributes = mergeLists(e.Attributes, input.Attributes);
  if (isObject(input.Metrics)) e.Metrics = { ...e.Metrics, ...(present(input.Metrics, Object.keys(input.Metrics)) as Record<string, number>) };
  if (isObject(input.Demographic)) e.Demographic = { ...e.Demographic, ...(present(input.Demographic, DEMOGRAPHIC_FIELDS) as Record<string, string>) };
  if (isObject(input.Location)) e.Location = { ...e.Location, ...(present(input.Location, LOCATION_FIELDS) as Record<string, string | number>) };
  if (isObject(input.User)) {
    const u = { ...e.User };
    if (typeof input.User.UserId === 'string') u.UserId = input.User.UserId;
    if (isObject(input.User.UserAttributes)) u.UserAttributes = mergeLists(u.UserAttributes, input.User.UserAttributes);
    e.User = u;
  }
  return e;
}

const LOCATION_FIELDS = [...LOCATION_STRINGS, 'Latitude', 'Longitude'];

/** The named members of `o` that are given (not undefined or null). */
function present(o: Json, keys: readonly string[]): Json {
  const out: Json = {};
  for (const k of keys) {
    const v = Object.hasOwn(o, k) ? o[k] : undefined;
    if (v !== undefined && v !== null) setOwn(out, k, v);
  }
  return out;
}

/** out[k] = v as an own property, even for a client's "__proto__" key (which an assignment would turn into the prototype). */
function setOwn(out: object, k: string, v: unknown): void {
  Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** A copy of a stored endpoint, member by member (stored data written by older versions may carry unknown members). */
function copyEndpoint(p: Endpoint): Endpoint {
  const e: Endpoint = {
    ApplicationId: p.ApplicationId,
    Id: p.Id,
    CohortId: p.CohortId,
    CreationDate: p.CreationDate,
    EffectiveDate: p.EffectiveDate,
    EndpointStatus: p.EndpointStatus,
    OptOut: p.OptOut,
  };
  if (p.RequestId !== undefined) e.RequestId = p.RequestId;
  if (p.Address !== undefined) e.Address = p.Address;
  if (p.ChannelType !== undefined) e.ChannelType = p.ChannelType;
  if (isObject(p.Attributes)) e.Attributes = copyLists(p.Attributes);
  if (isObject(p.Metrics)) e.Metrics = present(p.Metrics, Object.keys(p.Metrics)) as Record<string, number>;
  if (isObject(p.Demographic)) e.Demographic = present(p.Demographic, DEMOGRAPHIC_FIELDS) as Record<string, string>;
  if (isObject(p.Location)) e.Location = present(p.Location, LOCATION_FIELDS) as Record<string, string | number>;
  if (isObject(p.User)) {
    e.User = {};
    if (typeof p.User.UserId === 'string') e.User.UserId = p.User.UserId;
    if (isObject(p.User.UserAttributes)) e.User.UserAttributes = copyLists(p.User.UserAttributes);
  }
  return e;
}

function copyLists(m: Record<string, string[]>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(m)) if (Array.isArray(v)) setOwn(out, k, v.filter((x) => typeof x === 'string'));
  return out;
}

/** Per-key replace; an empty list removes the key. */
function mergeLists(prev: Record<string, string[]> | undefined, next: Json): Record<string, string[]> {
  const out = { ...prev };
  for (const [k, v] of Object.entries(next)) {
    if (Array.isArray(v) && v.length === 0) delete out[k];
    else setOwn(out, k, v);
  }
  return out;
}

/** Stable 0–99 cohort per endpoint id, like Pinpoint's random ~1% cohorts used for holdouts. */
function cohortOf(id: string): string {
  return String(createHash('md5').update(id.toLowerCase()).digest().readUInt32BE(0) % 100);
}
