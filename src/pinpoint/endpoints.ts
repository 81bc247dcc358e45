// Endpoints (devices and addresses) of an app, stored in SQLite. Owns Pinpoint's endpoint
// semantics: case-insensitive ids, per-key replace of attributes and metrics, ACTIVE on update,
// INACTIVE for other endpoints that get the same Address, the per-user endpoint cap, and the
// endpoint quotas of reference/pinpoint.md §2.2.

import { createHash } from 'node:crypto';
import type { Db } from '../store/db.js';
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

const ENDPOINT_CACHE_SIZE = 50_000;

/** Endpoints of a deleted app removed per event-loop turn (about a millisecond of work). */
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
 * Every statement of the endpoint write and read paths. Each touches only the rows it names: by
 * primary key, or through an index named with INDEXED BY. An app may hold millions of endpoints, and
 * without statistics SQLite's planner prefers the primary key's `app_id` prefix over a two-column
 * index, which reads the whole app; INDEXED BY makes preparing the statement fail instead of
 * silently scanning. test/endpoint-plans.test.ts checks each plan.
 */
export const ENDPOINT_SQL = {
  get: 'SELECT data FROM endpoints WHERE app_id = ? AND id = ?',
  put: `INSERT INTO endpoints (app_id, id, user_id, active_address, data) VALUES (@app, @id, @user, @activeAddress, @data)
        ON CONFLICT(app_id, id) DO UPDATE SET user_id = @user, active_address = @activeAddress, data = @data`,
  byUser: 'SELECT data FROM endpoints INDEXED BY endpoints_user WHERE app_id = ? AND user_id = ?',
  /** Other ACTIVE endpoints with this address (the column holds the Address of ACTIVE endpoints only). */
  activeByAddress: 'SELECT data FROM endpoints INDEXED BY endpoints_active_address WHERE app_id = ? AND active_address = ? AND id <> ?',
  del: 'DELETE FROM endpoints WHERE app_id = ? AND id = ?',
  /** One chunk of a deleted app's endpoints (primary-key order, so each chunk reads only its rows). */
  purgeChunk: 'DELETE FROM endpoints WHERE app_id = ? AND id IN (SELECT id FROM endpoints WHERE app_id = ? LIMIT ?)',
  purgeDone: 'DELETE FROM endpoint_purges WHERE app_id = ?',
  purges: 'SELECT app_id FROM endpoint_purges',
  /** At most MAX_ATTRIBUTE_NAMES_PER_APP rows, read once per app and then cached. */
  names: 'SELECT name FROM app_attribute_names WHERE app_id = ?',
  addName: 'INSERT OR IGNORE INTO app_attribute_names (app_id, name) VALUES (?, ?)',
} as const;

function prepareEndpointStatements(db: Db) {
  return {
    get: db.prepare(ENDPOINT_SQL.get),
    put: db.prepare(ENDPOINT_SQL.put),
    byUser: db.prepare(ENDPOINT_SQL.byUser),
    activeByAddress: db.prepare(ENDPOINT_SQL.activeByAddress),
    del: db.prepare(ENDPOINT_SQL.del),
    purgeChunk: db.prepare(ENDPOINT_SQL.purgeChunk),
    purgeDone: db.prepare(ENDPOINT_SQL.purgeDone),
    purges: db.prepare(ENDPOINT_SQL.purges),
    names: db.prepare(ENDPOINT_SQL.names),
    addName: db.prepare(ENDPOINT_SQL.addName),
  };
}

export class Endpoints {
  private cache = new Map<string, StoredEndpoint>();
  private namesByApp = new Map<string, Set<string>>();
  private stmt: ReturnType<typeof prepareEndpointStatements>;
  /** Cache keys written by each open transaction level, forgotten if that level rolls back. */
  private journal: string[][] = [];
  /** One transaction function for every call (better-sqlite3's db.transaction() is costly to create per call). */
  private runInTransaction: (fn: () => unknown) => unknown;

  constructor(
    private db: Db,
    private clock: Clock,
  ) {
    this.stmt = prepareEndpointStatements(db);
    this.runInTransaction = db.transaction((fn: () => unknown) => fn());
  }

  get(appId: string, id: string): StoredEndpoint | undefined {
    const key = cacheKey(appId, id);
    let e = this.cache.get(key);
    if (!e) {
      const row = this.stmt.get.get(appId, id) as { data: string } | undefined;
      if (!row) return undefined;
      const json = repairJsonText(row.data);
      e = { endpoint: JSON.parse(json), json };
      this.remember(key, e);
    }
    return e;
  }

  require(appId: string, id: string): Endpoint {
    const e = this.get(appId, id);
    if (!e) throw notFound(`Endpoint not found: ${id} in application ${appId}`);
    return e.endpoint;
  }

  /**
   * Runs fn in one SQLite transaction (a savepoint when nested, so an inner failure undoes only its
   * own writes). When it fails, the cache forgets what it wrote, since the rows were rolled back.
   */
  transaction<T>(appId: string, fn: () => T): T {
    const written: string[] = [];
    this.journal.push(written);
    try {
      const out = this.runInTransaction(fn) as T;
      this.journal.pop();
      this.journal[this.journal.length - 1]?.push(...written);
      return out;
    } catch (e) {
      this.journal.pop();
      for (const k of written) this.cache.delete(k);
      this.namesByApp.delete(appId);
      throw e;
    }
  }

  /** Creates or merges one endpoint (input already validated). Runs in its own transaction. */
  upsert(appId: string, id: string, input: Json): StoredEndpoint {
    return this.transaction(appId, () => this.upsertInTx(appId, id, input));
  }

  /** All-or-nothing batch: a failing item rolls back the items before it. */
  upsertBatch(appId: string, items: Array<{ id: string; input: Json }>): void {
    this.transaction(appId, () => {
      for (const { id, input } of items) this.upsertInTx(appId, id, input);
    });
  }

  /** For PutEvents: returns the endpoint, creating it (or merging `input`) when needed. */
  touch(appId: string, id: string, input: Json | undefined): StoredEndpoint {
    if (!input || !hasEndpointFields(input)) {
      const existing = this.get(appId, id);
      if (existing) return existing;
    }
    return this.upsert(appId, id, input ?? {});
  }

  delete(appId: string, id: string): Endpoint {
    const e = this.require(appId, id);
    this.stmt.del.run(appId, e.Id);
    this.cache.delete(cacheKey(appId, id));
    return e;
  }

  byUser(appId: string, userId: string): Endpoint[] {
    const rows = this.stmt.byUser.all(appId, userId) as Array<{ data: string }>;
    return rows.map((r) => JSON.parse(repairJsonText(r.data)) as Endpoint);
  }

  deleteUser(appId: string, userId: string): Endpoint[] {
    const list = this.byUser(appId, userId);
    this.transaction(appId, () => {
      for (const e of list) {
        this.stmt.del.run(appId, e.Id);
        this.cache.delete(cacheKey(appId, e.Id));
      }
    });
    return list;
  }

  forgetApp(appId: string): void {
    this.namesByApp.delete(appId);
    for (const k of this.cache.keys()) if (k.startsWith(appId + '\n')) this.cache.delete(k);
  }

  /**
   * Removes the endpoints of an app Apps.delete queued, ENDPOINT_PURGE_CHUNK per event-loop turn,
   * then takes the app off the queue. Resolves when they are gone.
   */
  async purgeApp(appId: string): Promise<void> {
    this.forgetApp(appId);
    while (this.db.open && this.stmt.purgeChunk.run(appId, appId, ENDPOINT_PURGE_CHUNK).changes > 0) {
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (this.db.open) this.stmt.purgeDone.run(appId);
  }

  /** Finishes purges a stop interrupted (at start-up). */
  async resumePurges(): Promise<void> {
    for (const { app_id } of this.stmt.purges.all() as Array<{ app_id: string }>) await this.purgeApp(app_id);
  }

  /**
   * For import jobs, inside `transaction`: an upsert that keeps the CreationDate an exported
   * endpoint carries when it creates the endpoint (moving a project keeps its endpoints' ages).
   */
  importInTx(appId: string, id: string, input: Json, creationDate: string | undefined): StoredEndpoint {
    return this.upsertInTx(appId, id, input, creationDate);
  }

  private upsertInTx(appId: string, id: string, raw: Json, creationDate?: string): StoredEndpoint {
    checkEndpointId(id);
    // Strings that are not valid Unicode are stored with U+FFFD for each unpaired surrogate (src/unicode.ts).
    const input = wellFormed(raw);
    this.reserveAttributeNames(appId, attributeNames(input));
    const prev = this.get(appId, id)?.endpoint;
    const now = new Date(this.clock.now()).toISOString();
    const e = merge(prev, input, appId, id, now);
    if (!prev && creationDate !== undefined) e.CreationDate = creationDate;
    const prevUser = prev?.User?.UserId;
    const user = e.User?.UserId;
    if (user !== undefined && user !== prevUser) this.makeRoomForUser(appId, user, e);
    if (input.Address !== undefined && e.Address !== undefined) this.deactivateOthersWithAddress(appId, e.Id, e.Address);
    return this.write(appId, e);
  }

  private write(appId: string, e: Endpoint): StoredEndpoint {
    const json = JSON.stringify(e);
    const activeAddress = e.EndpointStatus === 'ACTIVE' ? (e.Address ?? null) : null;
    this.stmt.put.run({ app: appId, id: e.Id, user: e.User?.UserId ?? null, activeAddress, data: json });
    const stored = { endpoint: e, json };
    this.remember(cacheKey(appId, e.Id), stored);
    return stored;
  }

  /** Enforces MAX_ENDPOINTS_PER_USER as Pinpoint documents it (§2.2). */
  private makeRoomForUser(appId: string, userId: string, incoming: Endpoint): void {
    const others = this.byUser(appId, userId).filter((e) => e.Id.toLowerCase() !== incoming.Id.toLowerCase());
    if (others.length < MAX_ENDPOINTS_PER_USER) return;
    const pushOthers = others.filter((e) => e.ChannelType !== undefined && PUSH_CHANNELS.has(e.ChannelType));
    if (incoming.ChannelType && PUSH_CHANNELS.has(incoming.ChannelType) && pushOthers.length > 0) {
      pushOthers.sort((a, b) => a.EffectiveDate.localeCompare(b.EffectiveDate));
      const oldest = pushOthers[0];
      oldest.EndpointStatus = 'INACTIVE';
      if (oldest.User) delete oldest.User.UserId;
      this.write(appId, oldest);
      return;
    }
    throw badRequest(
      `Exceeded maximum endpoint per user count ${MAX_ENDPOINTS_PER_USER}: user "${userId}" already has ${others.length} endpoints`,
    );
  }

  private deactivateOthersWithAddress(appId: string, id: string, address: string): void {
    const rows = this.stmt.activeByAddress.all(appId, address, id) as Array<{ data: string }>;
    for (const r of rows) {
      const other = JSON.parse(repairJsonText(r.data)) as Endpoint;
      other.EndpointStatus = 'INACTIVE';
      this.write(appId, other);
    }
  }

  private reserveAttributeNames(appId: string, names: string[]): void {
    if (names.length === 0) return;
    let known = this.namesByApp.get(appId);
    if (!known) {
      known = new Set((this.stmt.names.all(appId) as Array<{ name: string }>).map((r) => r.name));
      this.namesByApp.set(appId, known);
    }
    const fresh = [...new Set(names)].filter((n) => !known.has(n));
    if (fresh.length === 0) return;
    if (known.size + fresh.length > MAX_ATTRIBUTE_NAMES_PER_APP) {
      throw badRequest(
        `Application ${appId} would have ${known.size + fresh.length} endpoint attribute names across Attributes, Metrics and ` +
          `UserAttributes; the maximum is ${MAX_ATTRIBUTE_NAMES_PER_APP} per application`,
      );
    }
    for (const n of fresh) {
      this.stmt.addName.run(appId, n);
      known.add(n);
    }
  }

  private remember(key: string, e: StoredEndpoint): void {
    this.journal[this.journal.length - 1]?.push(key);
    if (this.cache.size >= ENDPOINT_CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, e);
  }
}

function cacheKey(appId: string, id: string): string {
  return appId + '\n' + id.toLowerCase();
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
