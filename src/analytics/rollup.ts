// The activity rollups: small tables the loader keeps next to `events`, in the same transaction as
// the rows they summarize, so the app-level dashboards (Overview, Usage, Revenue) read kilobytes
// instead of scanning 30-60 days of raw events. Owns their DDL, turning a batch of rows into rollup
// changes, writing them, and the bitmap arithmetic the dashboards do on them.
//
// - `activity_ids`: a dense integer per (app, endpoint) and (app, user id), with the first day the
//   id was seen and, for endpoints, the first endpoint CreationDate day (the "new" series). No
//   primary key: the one writer assigns ids from its in-memory copy, and the index made first
//   loads of many new ids about 1.5x slower (measured: 300k rows, 100k new endpoints).
// - `activity_bitmaps`: per (app, day, kind) one bit per id index: endpoints/users that opened the
//   app (`_session.start`; or any non-messaging event, for apps that never report sessions) and
//   endpoints that purchased. Distinct counts over any window are then OR + popcount in JS: daily
//   and 30-day active, 7-day retention, paying endpoints. 12.5 kB per day and kind for 100,000 ids.
// - `daily_counts`: events per (app, day, UTC hour, event type), with revenue and units summed for
//   purchases: sessions, sign-ins, the session heat map and revenue per day.
//
// - `campaign_days`: per (app, day, campaign, treatment, run) the Campaigns measures, with the
//   distinct endpoint sets as sorted index lists (campaign-rollup.ts owns it; written from here).
//
// - `endpoint_profiles`: per (app, endpoint index) the endpoint's latest non-empty platform, app
//   version, model, make, country and endpoint attributes, each with the time of the event it came
//   from, and the endpoint's latest event time. Demographics reads these 100k rows instead of taking
//   arg_max per endpoint over 30 days of events. For a range that ends at or after the app's latest
//   event, "the latest value in the range" is exactly the stored value when its time is in the range
//   (and none otherwise: no event in the range had one); dashboards/demographics.ts checks that
//   condition and reads `events` when it does not hold.
//
// The rollups cannot apply the endpoint-attribute filter (it tests each event's endpoint
// attributes), so dashboards with that filter keep reading `events` (dashboards/usage.ts).
// Retention drops rollup days older than the cutoff's day; `activity_ids` keeps every id seen, so
// "new" means first seen ever rather than first still stored (the raw path's meaning, which differs
// only on the oldest retained day).

import { blobValue, type DuckDBConnection } from '@duckdb/node-api';
import { CAMPAIGN_ROLLUP_DDL, CampaignBatch, deleteCampaignDaysBefore, writeCampaignDays } from './campaign-rollup.js';
import { appendChunks, type ChunkColumn } from './chunks.js';
import { DAY_MS } from './retention.js';
import type { EventRow } from './store.js';

export { DAY_MS };
const HOUR_MS = 3_600_000;

/**
 * Messaging events the service itself emits for an endpoint (sends, deliveries, bounces…). They say
 * nothing about the app being opened, so they never make an endpoint "active".
 */
export const SERVER_EVENT_PATTERN = '^(_campaign\\.send|_journey\\.send|_email\\..*|_SMS\\..*)$';
const SERVER_EVENT_RE = new RegExp(SERVER_EVENT_PATTERN);
export const SESSION_START = '_session.start';
export const PURCHASE_EVENT = '_monetization.purchase';

/** Bitmap kinds: which events set the bit, and whose index it is. */
export type BitmapKind = 'session:e' | 'session:u' | 'app:e' | 'app:u' | 'purchase:e';

/** `events` columns kept per endpoint in `endpoint_profiles` (each with a `<col>_t` epoch-ms time). */
export const PROFILE_COLUMNS = ['platform', 'app_version', 'model', 'make', 'country', 'endpoint_attributes'] as const;
export type ProfileColumn = (typeof PROFILE_COLUMNS)[number];
const PROFILE_DDL_COLUMNS = PROFILE_COLUMNS.map((c) => `${c} VARCHAR, ${c}_t BIGINT`).join(', ');

/**
 * Fills `endpoint_profiles` from `events` (a store created before the table existed); the same
 * definition as the loader's incremental merge.
 */
export const PROFILE_BACKFILL = `INSERT INTO endpoint_profiles
  SELECT e.app_id, i.idx, max(epoch_ms(e.event_time)), ${PROFILE_COLUMNS.map((c) => {
    const has = c === 'endpoint_attributes' ? `e.${c} IS NOT NULL AND CAST(e.${c} AS VARCHAR) <> '{}'` : `e.${c} IS NOT NULL`;
    return `arg_max(CAST(e.${c} AS VARCHAR), e.event_time) FILTER (WHERE ${has}), max(epoch_ms(e.event_time)) FILTER (WHERE ${has})`;
  }).join(', ')}
  FROM events e JOIN activity_ids i ON i.app_id = e.app_id AND i.kind = 'e' AND i.id = e.endpoint_id
  GROUP BY e.app_id, i.idx`;

export const ROLLUP_DDL = [
  `CREATE TABLE IF NOT EXISTS activity_ids (app_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, id VARCHAR NOT NULL, idx INTEGER NOT NULL,
     first_day DATE NOT NULL, created_day DATE)`,
  `CREATE TABLE IF NOT EXISTS activity_bitmaps (app_id VARCHAR NOT NULL, day DATE NOT NULL, kind VARCHAR NOT NULL, bits BLOB NOT NULL,
     PRIMARY KEY (app_id, day, kind))`,
  `CREATE TABLE IF NOT EXISTS daily_counts (app_id VARCHAR NOT NULL, day DATE NOT NULL, hour TINYINT NOT NULL, event_type VARCHAR NOT NULL,
     n BIGINT NOT NULL, revenue DOUBLE NOT NULL, units DOUBLE NOT NULL, PRIMARY KEY (app_id, day, hour, event_type))`,
  `CREATE TABLE IF NOT EXISTS endpoint_profiles (app_id VARCHAR NOT NULL, idx INTEGER NOT NULL, last_t BIGINT NOT NULL, ${PROFILE_DDL_COLUMNS})`,
  `CREATE OR REPLACE TEMP TABLE profiles_staging (app_id VARCHAR NOT NULL, idx INTEGER NOT NULL, last_t BIGINT NOT NULL, ${PROFILE_DDL_COLUMNS})`,
  `CREATE OR REPLACE TEMP TABLE ids_staging AS SELECT * FROM activity_ids LIMIT 0`,
  ...CAMPAIGN_ROLLUP_DDL,
  `CREATE OR REPLACE TEMP TABLE counts_staging (app_id VARCHAR, day INTEGER, hour TINYINT, event_type VARCHAR, n BIGINT, revenue DOUBLE, units DOUBLE)`,
];

interface IdEntry {
  idx: number;
  firstDay: number;
  createdDay: number | null;
}

interface Count {
  appId: string;
  day: number;
  hour: number;
  eventType: string;
  n: number;
  revenue: number;
  units: number;
}

/** What one batch changes; applied to the in-memory id cache only after the transaction commits. */
export interface RollupBatch {
  ids: Array<IdEntry & { appId: string; kind: 'e' | 'u'; id: string; isNew: boolean }>;
  bits: Array<{ appId: string; day: number; kind: BitmapKind; set: number[] }>;
  counts: Count[];
  profiles: Profile[];
  /** The campaign rollup's rows of the batch (campaign-rollup.ts). */
  campaigns: CampaignBatch;
}

/** One endpoint's latest values within a batch (merged into `endpoint_profiles` by time). */
interface Profile {
  appId: string;
  idx: number;
  lastT: number;
  values: Array<string | null>;
  times: Array<number | null>;
}

const PROFILE_FIELDS: ReadonlyArray<(r: EventRow) => string | null> = [
  (r) => r.platform,
  (r) => r.appVersion,
  (r) => r.model,
  (r) => r.make,
  (r) => r.country,
  (r) => (r.endpointAttributes === '{}' ? null : r.endpointAttributes),
];

/** One (app, day) of a batch: counts by event type and hour, and the bits set per kind. */
interface DayBucket {
  appId: string;
  day: number;
  counts: Map<string, Count[]>;
  bits: Map<BitmapKind, number[]>;
}

const SESSION = 1;
const APP = 2;
const PURCHASE = 4;

function metricOf(metrics: string, name: string): number | null {
  if (!metrics.includes(name)) return null;
  const v = (JSON.parse(metrics) as Record<string, unknown>)[name];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

type Changed = RollupBatch['ids'][number];

/**
 * The writer's side: an in-memory copy of `activity_ids` (loaded once) so a batch finds its ids
 * without a query, and the per-batch aggregation. Maps are per (app, kind) so a row costs plain
 * lookups, not composite-key strings.
 */
export class ActivityRollup {
  private ids: Map<string, { known: Map<string, IdEntry>; next: number }> | undefined;
  private readonly flags = new Map<string, number>();

  private async load(conn: DuckDBConnection) {
    if (this.ids) return this.ids;
    const ids = new Map<string, { known: Map<string, IdEntry>; next: number }>();
    const r = await conn.runAndReadAll(`SELECT app_id, kind, id, idx, first_day - DATE '1970-01-01', created_day - DATE '1970-01-01' FROM activity_ids`);
    for (const [app, kind, id, idx, first, created] of r.getRowsJS() as Array<[string, string, string, number, bigint, bigint | null]>) {
      const space = spaceOf(ids, app, kind);
      space.known.set(id, { idx, firstDay: Number(first), createdDay: created === null ? null : Number(created) });
      space.next = Math.max(space.next, idx + 1);
    }
    this.ids = ids;
    return ids;
  }

  private flagsOf(eventType: string): number {
    let f = this.flags.get(eventType);
    if (f === undefined) {
      f = (eventType === SESSION_START ? SESSION : 0) | (SERVER_EVENT_RE.test(eventType) ? 0 : APP) | (eventType === PURCHASE_EVENT ? PURCHASE : 0);
      this.flags.set(eventType, f);
    }
    return f;
  }

  /** Aggregates the rows (already deduplicated) into the changes they make. */
  async prepare(conn: DuckDBConnection, rows: readonly EventRow[]): Promise<RollupBatch> {
    const spaces = await this.load(conn);
    // Changes of this batch per (app, kind) space; new ids count on from the space's next index.
    const changes = new Map<object, { changed: Map<string, Changed>; next: number }>();
    let lastApp: string | undefined;
    let lastSpaces: Record<'e' | 'u', ReturnType<typeof spaceOf>> | undefined;
    const idOf = (appId: string, kind: 'e' | 'u', id: string, day: number, createdDay: number | null): number => {
      if (appId !== lastApp) {
        lastApp = appId;
        lastSpaces = { e: spaceOf(spaces, appId, 'e'), u: spaceOf(spaces, appId, 'u') };
      }
      const space = lastSpaces![kind];
      let ch = changes.get(space);
      if (!ch) changes.set(space, (ch = { changed: new Map(), next: space.next }));
      const changed = ch.changed.get(id);
      const cur = changed ?? space.known.get(id);
      if (!cur) {
        const idx = ch.next++;
        ch.changed.set(id, { appId, kind, id, idx, firstDay: day, createdDay, isNew: true });
        return idx;
      }
      const createdEarlier = createdDay !== null && (cur.createdDay === null || createdDay < cur.createdDay);
      if (day < cur.firstDay || createdEarlier) {
        const e = changed ?? { appId, kind, id, idx: cur.idx, firstDay: cur.firstDay, createdDay: cur.createdDay, isNew: false };
        e.firstDay = Math.min(e.firstDay, day);
        if (createdEarlier) e.createdDay = createdDay;
        ch.changed.set(id, e);
      }
      return cur.idx;
    };
    const buckets = new Map<string, DayBucket>();
    const profiles = new Map<object, Map<number, Profile>>();
    const campaigns = new CampaignBatch();
    let bucket: DayBucket | undefined;
    const setBit = (kind: BitmapKind, idx: number) => {
      const list = bucket!.bits.get(kind);
      if (list) list.push(idx);
      else bucket!.bits.set(kind, [idx]);
    };
    for (const r of rows) {
      const day = Math.floor(r.eventTime / DAY_MS);
      const hour = Math.floor((r.eventTime - day * DAY_MS) / HOUR_MS);
      if (bucket === undefined || bucket.day !== day || bucket.appId !== r.appId) {
        const bk = `${r.appId}\u0000${day}`;
        bucket = buckets.get(bk);
        if (!bucket) buckets.set(bk, (bucket = { appId: r.appId, day, counts: new Map(), bits: new Map() }));
      }
      const created = r.endpointCreated === null ? null : Math.floor(r.endpointCreated / DAY_MS);
      const e = idOf(r.appId, 'e', r.endpointId, day, created);
      const u = r.userId === null ? -1 : idOf(r.appId, 'u', r.userId, day, null);
      let ofApp = profiles.get(lastSpaces!.e);
      if (!ofApp) profiles.set(lastSpaces!.e, (ofApp = new Map()));
      let p = ofApp.get(e);
      if (!p) ofApp.set(e, (p = { appId: r.appId, idx: e, lastT: r.eventTime, values: PROFILE_FIELDS.map(() => null), times: PROFILE_FIELDS.map(() => null) }));
      if (r.eventTime > p.lastT) p.lastT = r.eventTime;
      for (let i = 0; i < PROFILE_FIELDS.length; i++) {
        const v = PROFILE_FIELDS[i](r);
        // >= : of two events in the same millisecond the later row wins (arg_max picks either).
        if (v !== null && (p.times[i] === null || r.eventTime >= p.times[i]!)) {
          p.values[i] = v;
          p.times[i] = r.eventTime;
        }
      }
      if (r.campaignId !== null) campaigns.add(r, day, hour, e);
      let hours = bucket.counts.get(r.eventType);
      if (!hours) bucket.counts.set(r.eventType, (hours = []));
      const c = (hours[hour] ??= { appId: r.appId, day, hour, eventType: r.eventType, n: 0, revenue: 0, units: 0 });
      c.n++;
      const f = this.flagsOf(r.eventType);
      if (f & PURCHASE) {
        // As the raw SQL: a missing price is 0, a missing quantity 1.
        const qty = metricOf(r.metrics, '_quantity') ?? 1;
        c.revenue += (metricOf(r.metrics, '_item_price') ?? 0) * qty;
        c.units += qty;
        setBit('purchase:e', e);
      }
      if (f & SESSION) {
        setBit('session:e', e);
        if (u >= 0) setBit('session:u', u);
      }
      if (f & APP) {
        setBit('app:e', e);
        if (u >= 0) setBit('app:u', u);
      }
    }
    const batch: RollupBatch = { ids: [], bits: [], counts: [], profiles: [], campaigns };
    for (const ofApp of profiles.values()) batch.profiles.push(...ofApp.values());
    for (const ch of changes.values()) batch.ids.push(...ch.changed.values());
    for (const b of buckets.values()) {
      for (const [kind, set] of b.bits) batch.bits.push({ appId: b.appId, day: b.day, kind, set });
      for (const hours of b.counts.values()) for (const c of hours) if (c) batch.counts.push(c);
    }
    return batch;
  }

  /** Writes a prepared batch inside the caller's open transaction. */
  async write(conn: DuckDBConnection, batch: RollupBatch): Promise<void> {
    // New ids are appended; ids whose first day moved earlier are updated in one joined UPDATE.
    const fresh = batch.ids.filter((e) => e.isNew);
    const moved = batch.ids.filter((e) => !e.isNew);
    if (moved.length > 0) await conn.run('DELETE FROM ids_staging');
    for (const [table, list, catalog] of [['activity_ids', fresh, null], ['ids_staging', moved, 'temp']] as const) {
      if (list.length === 0) continue;
      const app = await conn.createAppender(table, catalog === null ? null : 'main', catalog);
      try {
        appendChunks(app, list, ID_COLUMNS);
        app.flushSync();
      } finally {
        app.closeSync();
      }
    }
    if (moved.length > 0) {
      await conn.run(`UPDATE activity_ids SET first_day = s.first_day, created_day = s.created_day FROM ids_staging s
        WHERE activity_ids.app_id = s.app_id AND activity_ids.kind = s.kind AND activity_ids.id = s.id`);
    }
    if (batch.counts.length > 0) {
      await conn.run('DELETE FROM counts_staging');
      const app = await conn.createAppender('counts_staging', 'main', 'temp');
      try {
        for (const c of batch.counts) {
          app.appendVarchar(c.appId);
          app.appendInteger(c.day);
          app.appendTinyInt(c.hour);
          app.appendVarchar(c.eventType);
          app.appendBigInt(BigInt(c.n));
          app.appendDouble(c.revenue);
          app.appendDouble(c.units);
          app.endRow();
        }
        app.flushSync();
      } finally {
        app.closeSync();
      }
      await conn.run(`INSERT INTO daily_counts SELECT app_id, DATE '1970-01-01' + day, hour, event_type, n, revenue, units FROM counts_staging
        ON CONFLICT DO UPDATE SET n = n + excluded.n, revenue = revenue + excluded.revenue, units = units + excluded.units`);
    }
    if (batch.profiles.length > 0) await writeProfiles(conn, batch.profiles, batch.ids);
    await writeCampaignDays(conn, batch.campaigns);
    // Read-modify-write of the few bitmaps the batch touches (a batch spans about one day).
    for (const b of batch.bits) {
      const r = await conn.runAndReadAll(`SELECT bits FROM activity_bitmaps WHERE app_id = $app AND day = DATE '1970-01-01' + $day::INTEGER AND kind = $kind`, {
        app: b.appId, day: b.day, kind: b.kind,
      });
      const old = r.getRowsJS()[0]?.[0] as Uint8Array | undefined;
      const bits = withBits(old, b.set);
      await conn.run(`INSERT OR REPLACE INTO activity_bitmaps VALUES ($app, DATE '1970-01-01' + $day::INTEGER, $kind, $bits)`, {
        app: b.appId, day: b.day, kind: b.kind, bits: blobValue(bits),
      });
    }
  }

  /** Makes the committed batch's ids known to later batches. */
  committed(batch: RollupBatch): void {
    if (!this.ids) return;
    for (const e of batch.ids) {
      const space = spaceOf(this.ids, e.appId, e.kind);
      space.known.set(e.id, { idx: e.idx, firstDay: e.firstDay, createdDay: e.createdDay });
      space.next = Math.max(space.next, e.idx + 1);
    }
  }
}

/** activity_ids' columns (and ids_staging's, its copy). */
const ID_COLUMNS: ReadonlyArray<ChunkColumn<IdEntry & { appId: string; kind: string; id: string }>> = [
  { kind: 'varchar', get: (e) => e.appId },
  { kind: 'varchar', get: (e) => e.kind },
  { kind: 'varchar', get: (e) => e.id },
  { kind: 'integer', get: (e) => e.idx },
  { kind: 'date', get: (e) => e.firstDay },
  { kind: 'date', get: (e) => e.createdDay },
];

/** endpoint_profiles' columns (and profiles_staging's): app, index, last time, then each field's value and time. */
const PROFILE_CHUNK_COLUMNS: ReadonlyArray<ChunkColumn<Profile>> = [
  { kind: 'varchar', get: (p) => p.appId },
  { kind: 'integer', get: (p) => p.idx },
  { kind: 'bigint', get: (p) => p.lastT },
  ...PROFILE_FIELDS.flatMap((_, i): Array<ChunkColumn<Profile>> => [
    { kind: 'varchar', get: (p) => p.values[i] },
    { kind: 'bigint', get: (p) => (p.values[i] === null ? null : p.times[i]) },
  ]),
];

/** Appends profiles into `table` (endpoint_profiles, or the temporary profiles_staging). */
async function appendProfiles(conn: DuckDBConnection, table: string, temp: boolean, profiles: readonly Profile[]): Promise<void> {
  const app = await conn.createAppender(table, temp ? 'main' : null, temp ? 'temp' : null);
  try {
    appendChunks(app, profiles, PROFILE_CHUNK_COLUMNS);
    app.flushSync();
  } finally {
    app.closeSync();
  }
}

/**
 * Merges the batch's profiles: per column the value with the later time wins. No index (an
 * INSERT … ON CONFLICT upsert needs one): the endpoint's row is found by a hash join on its index.
 * Endpoints new in this batch (their index was given out by it, so no stored row can have it)
 * are appended as they are: the join, DELETE and INSERT … SELECT scan the whole table, and a
 * batch of mostly new endpoints paid that for nothing.
 */
async function writeProfiles(conn: DuckDBConnection, all: readonly Profile[], ids: RollupBatch['ids']): Promise<void> {
  const fresh = new Map<string, Set<number>>();
  for (const e of ids) {
    if (!e.isNew || e.kind !== 'e') continue;
    let set = fresh.get(e.appId);
    if (!set) fresh.set(e.appId, (set = new Set()));
    set.add(e.idx);
  }
  const isFresh = (p: Profile) => fresh.get(p.appId)?.has(p.idx) === true;
  const known = all.filter((p) => !isFresh(p));
  const added = all.filter(isFresh);
  if (known.length > 0) await mergeProfiles(conn, known);
  // After the merge, whose scans need not read them.
  if (added.length > 0) await appendProfiles(conn, 'endpoint_profiles', false, added);
}

/** Merges profiles of endpoints stored before into `endpoint_profiles`. */
async function mergeProfiles(conn: DuckDBConnection, profiles: readonly Profile[]): Promise<void> {
  await conn.run('DELETE FROM profiles_staging');
  await appendProfiles(conn, 'profiles_staging', true, profiles);
  // Merged rows replace the stored ones (DELETE + INSERT): a joined UPDATE of these VARCHAR columns
  // was measured at 5-8 s per 40k-endpoint batch once the table had a few batches in it.
  const merged = PROFILE_COLUMNS.map((c) => {
    const newer = `s.${c}_t IS NOT NULL AND (p.${c}_t IS NULL OR s.${c}_t >= p.${c}_t)`;
    return `CASE WHEN ${newer} THEN s.${c} ELSE p.${c} END, greatest(p.${c}_t, s.${c}_t)`;
  });
  await conn.run(`CREATE OR REPLACE TEMP TABLE profiles_merged AS
    SELECT s.app_id, s.idx, greatest(p.last_t, s.last_t) AS last_t, ${merged.join(', ')}
    FROM profiles_staging s LEFT JOIN endpoint_profiles p ON p.app_id = s.app_id AND p.idx = s.idx`);
  await conn.run(`DELETE FROM endpoint_profiles p USING profiles_staging s WHERE p.app_id = s.app_id AND p.idx = s.idx`);
  await conn.run(`INSERT INTO endpoint_profiles SELECT * FROM profiles_merged`);
}

function spaceOf(ids: Map<string, { known: Map<string, IdEntry>; next: number }>, appId: string, kind: string) {
  const k = `${appId}\u0000${kind}`;
  let space = ids.get(k);
  if (!space) ids.set(k, (space = { known: new Map(), next: 0 }));
  return space;
}

/** A copy of `old` (or an empty bitmap) with the given bits set; length a multiple of 4 bytes. */
export function withBits(old: Uint8Array | undefined, set: readonly number[]): Uint8Array {
  let max = -1;
  for (const i of set) if (i > max) max = i;
  const len = Math.max(old?.length ?? 0, (((max >> 5) + 1) << 2));
  const out = new Uint8Array(len);
  if (old) out.set(old);
  for (const i of set) out[i >> 3] |= 1 << (i & 7);
  return out;
}

/** Bitmaps as 32-bit words (copied: blobs are not 4-byte aligned). */
export class Bitmap {
  constructor(readonly words: Uint32Array) {}

  static from(bytes: Uint8Array | undefined): Bitmap {
    const words = new Uint32Array(Math.ceil((bytes?.length ?? 0) / 4));
    if (bytes) new Uint8Array(words.buffer).set(bytes);
    return new Bitmap(words);
  }

  static or(maps: readonly Bitmap[]): Bitmap {
    const out = new Uint32Array(Math.max(0, ...maps.map((m) => m.words.length)));
    for (const m of maps) for (let i = 0; i < m.words.length; i++) out[i] |= m.words[i];
    return new Bitmap(out);
  }

  and(other: Bitmap): Bitmap {
    const n = Math.min(this.words.length, other.words.length);
    const out = new Uint32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.words[i] & other.words[i];
    return new Bitmap(out);
  }

  count(): number {
    let n = 0;
    for (let v of this.words) {
      v = v - ((v >>> 1) & 0x55555555);
      v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
      n += (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
    }
    return n;
  }
}

/** Deletes rollup days before the cutoff's day and profiles of endpoints with no event since the cutoff (retention). */
export async function deleteRollupsBefore(conn: DuckDBConnection, cutoffMs: number): Promise<void> {
  const day = Math.floor(cutoffMs / DAY_MS);
  for (const t of ['activity_bitmaps', 'daily_counts']) {
    await conn.run(`DELETE FROM ${t} WHERE day < DATE '1970-01-01' + $day::INTEGER`, { day });
  }
  await deleteCampaignDaysBefore(conn, day);
  // An endpoint with no event left has no profile to show.
  await conn.run(`DELETE FROM endpoint_profiles WHERE last_t < $cutoff`, { cutoff: cutoffMs });
}
