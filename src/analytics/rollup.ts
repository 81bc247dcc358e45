// The activity rollups: small tables the loader keeps next to `events`, in the same transaction as
// the rows they summarize, so the app-level dashboards (Overview, Usage, Revenue) read kilobytes
// instead of scanning 30-60 days of raw events. Owns their DDL, turning a batch of rows into rollup
// changes, writing them, and the bitmap arithmetic the dashboards do on them.
//
// - `activity_ids`: a dense integer per (app, endpoint) and (app, user id), with the first day the
//   id was seen and, for endpoints, the first endpoint CreationDate day (the "new" series).
// - `activity_bitmaps`: per (app, day, kind) one bit per id index: endpoints/users that opened the
//   app (`_session.start`; or any non-messaging event, for apps that never report sessions) and
//   endpoints that purchased. Distinct counts over any window are then OR + popcount in JS: daily
//   and 30-day active, 7-day retention, paying endpoints. 12.5 kB per day and kind for 100,000 ids.
// - `daily_counts`: events per (app, day, UTC hour, event type), with revenue and units summed for
//   purchases: sessions, sign-ins, the session heat map and revenue per day.
//
// The rollups cannot apply the endpoint-attribute filter (it tests each event's endpoint
// attributes), so dashboards with that filter keep reading `events` (dashboards/usage.ts).
// Retention drops rollup days older than the cutoff's day; `activity_ids` keeps every id seen, so
// "new" means first seen ever rather than first still stored (the raw path's meaning, which differs
// only on the oldest retained day).

import { blobValue, type DuckDBConnection } from '@duckdb/node-api';
import type { EventRow } from './store.js';

export const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/** Messaging events the service emits itself: they never make an endpoint active. */
export const SERVER_EVENT_PATTERN = '^(_campaign\\.send|_journey\\.send|_email\\..*|_SMS\\..*)$';
const SERVER_EVENT_RE = new RegExp(SERVER_EVENT_PATTERN);
export const SESSION_START = '_session.start';
export const PURCHASE_EVENT = '_monetization.purchase';

/** Bitmap kinds: which events set the bit, and whose index it is. */
export type BitmapKind = 'session:e' | 'session:u' | 'app:e' | 'app:u' | 'purchase:e';

export const ROLLUP_DDL = [
  `CREATE TABLE IF NOT EXISTS activity_ids (app_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, id VARCHAR NOT NULL, idx INTEGER NOT NULL,
     first_day DATE NOT NULL, created_day DATE, PRIMARY KEY (app_id, kind, id))`,
  `CREATE TABLE IF NOT EXISTS activity_bitmaps (app_id VARCHAR NOT NULL, day DATE NOT NULL, kind VARCHAR NOT NULL, bits BLOB NOT NULL,
     PRIMARY KEY (app_id, day, kind))`,
  `CREATE TABLE IF NOT EXISTS daily_counts (app_id VARCHAR NOT NULL, day DATE NOT NULL, hour TINYINT NOT NULL, event_type VARCHAR NOT NULL,
     n BIGINT NOT NULL, revenue DOUBLE NOT NULL, units DOUBLE NOT NULL, PRIMARY KEY (app_id, day, hour, event_type))`,
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
  ids: Map<string, IdEntry & { appId: string; kind: 'e' | 'u'; id: string; isNew: boolean }>;
  bits: Map<string, { appId: string; day: number; kind: BitmapKind; set: number[] }>;
  counts: Map<string, Count>;
}

const idKey = (appId: string, kind: string, id: string) => `${appId}\u0000${kind}\u0000${id}`;

function metricOf(metrics: string, name: string): number | null {
  if (!metrics.includes(name)) return null;
  const v = (JSON.parse(metrics) as Record<string, unknown>)[name];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/**
 * The writer's side: an in-memory copy of `activity_ids` (loaded once) so a batch finds its ids
 * without a query, and the per-batch aggregation.
 */
export class ActivityRollup {
  private ids: Map<string, IdEntry> | undefined;
  private next = new Map<string, number>();

  private async load(conn: DuckDBConnection): Promise<Map<string, IdEntry>> {
    if (this.ids) return this.ids;
    const ids = new Map<string, IdEntry>();
    const r = await conn.runAndReadAll(`SELECT app_id, kind, id, idx, first_day - DATE '1970-01-01', created_day - DATE '1970-01-01' FROM activity_ids`);
    for (const [app, kind, id, idx, first, created] of r.getRowsJS() as Array<[string, string, string, number, bigint, bigint | null]>) {
      ids.set(idKey(app, kind, id), { idx, firstDay: Number(first), createdDay: created === null ? null : Number(created) });
      const nk = `${app}\u0000${kind}`;
      this.next.set(nk, Math.max(this.next.get(nk) ?? 0, idx + 1));
    }
    this.ids = ids;
    return ids;
  }

  /** Aggregates the rows (already deduplicated) into the changes they make. */
  async prepare(conn: DuckDBConnection, rows: readonly EventRow[]): Promise<RollupBatch> {
    const known = await this.load(conn);
    const batch: RollupBatch = { ids: new Map(), bits: new Map(), counts: new Map() };
    const pendingNext = new Map<string, number>();
    const idOf = (appId: string, kind: 'e' | 'u', id: string, day: number, createdDay: number | null): number => {
      const k = idKey(appId, kind, id);
      const changed = batch.ids.get(k);
      const cur = changed ?? known.get(k);
      if (!cur) {
        const nk = `${appId}\u0000${kind}`;
        const idx = pendingNext.get(nk) ?? this.next.get(nk) ?? 0;
        pendingNext.set(nk, idx + 1);
        batch.ids.set(k, { appId, kind, id, idx, firstDay: day, createdDay, isNew: true });
        return idx;
      }
      const createdEarlier = createdDay !== null && (cur.createdDay === null || createdDay < cur.createdDay);
      if (day < cur.firstDay || createdEarlier) {
        const e = changed ?? { appId, kind, id, idx: cur.idx, firstDay: cur.firstDay, createdDay: cur.createdDay, isNew: false };
        e.firstDay = Math.min(e.firstDay, day);
        if (createdEarlier) e.createdDay = createdDay;
        batch.ids.set(k, e);
      }
      return cur.idx;
    };
    const setBit = (appId: string, day: number, kind: BitmapKind, idx: number) => {
      const k = `${appId}\u0000${day}\u0000${kind}`;
      let b = batch.bits.get(k);
      if (!b) batch.bits.set(k, (b = { appId, day, kind, set: [] }));
      b.set.push(idx);
    };
    for (const r of rows) {
      const day = Math.floor(r.eventTime / DAY_MS);
      const hour = Math.floor((r.eventTime - day * DAY_MS) / HOUR_MS);
      const created = r.endpointCreated === null ? null : Math.floor(r.endpointCreated / DAY_MS);
      const e = idOf(r.appId, 'e', r.endpointId, day, created);
      const u = r.userId === null ? -1 : idOf(r.appId, 'u', r.userId, day, null);
      const ck = `${r.appId}\u0000${day}\u0000${hour}\u0000${r.eventType}`;
      let c = batch.counts.get(ck);
      if (!c) batch.counts.set(ck, (c = { appId: r.appId, day, hour, eventType: r.eventType, n: 0, revenue: 0, units: 0 }));
      c.n++;
      if (r.eventType === PURCHASE_EVENT) {
        // As the raw SQL: a missing price is 0, a missing quantity 1.
        const qty = metricOf(r.metrics, '_quantity') ?? 1;
        c.revenue += (metricOf(r.metrics, '_item_price') ?? 0) * qty;
        c.units += qty;
        setBit(r.appId, day, 'purchase:e', e);
      }
      if (r.eventType === SESSION_START) {
        setBit(r.appId, day, 'session:e', e);
        if (u >= 0) setBit(r.appId, day, 'session:u', u);
      }
      if (!SERVER_EVENT_RE.test(r.eventType)) {
        setBit(r.appId, day, 'app:e', e);
        if (u >= 0) setBit(r.appId, day, 'app:u', u);
      }
    }
    return batch;
  }

  /** Writes a prepared batch inside the caller's open transaction. */
  async write(conn: DuckDBConnection, batch: RollupBatch): Promise<void> {
    const fresh = [...batch.ids.values()].filter((e) => e.isNew);
    if (fresh.length > 0) {
      const app = await conn.createAppender('activity_ids');
      try {
        for (const e of fresh) {
          app.appendVarchar(e.appId);
          app.appendVarchar(e.kind);
          app.appendVarchar(e.id);
          app.appendInteger(e.idx);
          app.appendVarchar(dayText(e.firstDay));
          if (e.createdDay === null) app.appendNull();
          else app.appendVarchar(dayText(e.createdDay));
          app.endRow();
        }
        app.flushSync();
      } finally {
        app.closeSync();
      }
    }
    for (const e of batch.ids.values()) {
      if (e.isNew) continue;
      await conn.run(`UPDATE activity_ids SET first_day = $first::DATE, created_day = $created::DATE WHERE app_id = $app AND kind = $kind AND id = $id`, {
        first: dayText(e.firstDay), created: e.createdDay === null ? null : dayText(e.createdDay), app: e.appId, kind: e.kind, id: e.id,
      });
    }
    if (batch.counts.size > 0) {
      await conn.run('DELETE FROM counts_staging');
      const app = await conn.createAppender('counts_staging', 'main', 'temp');
      try {
        for (const c of batch.counts.values()) {
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
    // Read-modify-write of the few bitmaps the batch touches (a batch spans about one day).
    for (const b of batch.bits.values()) {
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
    for (const [k, e] of batch.ids) {
      this.ids.set(k, { idx: e.idx, firstDay: e.firstDay, createdDay: e.createdDay });
      const nk = `${e.appId}\u0000${e.kind}`;
      this.next.set(nk, Math.max(this.next.get(nk) ?? 0, e.idx + 1));
    }
  }
}

function dayText(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
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

/** Deletes rollup days before the cutoff's day (retention). */
export async function deleteRollupsBefore(conn: DuckDBConnection, cutoffMs: number): Promise<void> {
  const day = Math.floor(cutoffMs / DAY_MS);
  for (const t of ['activity_bitmaps', 'daily_counts']) {
    await conn.run(`DELETE FROM ${t} WHERE day < DATE '1970-01-01' + $day::INTEGER`, { day });
  }
}
