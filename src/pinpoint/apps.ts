// Projects ("apps"): creation, listing with paging, deletion with everything under them, tags and
// application settings. Apps are read on every PutEvents: the metadata store (store/metadata.ts)
// holds them all in memory, kept current when another node changes one; reads are synchronous,
// writes async. Their endpoints are on the same store (src/pinpoint/endpoints.ts).

import { randomUUID } from 'node:crypto';
import type { Db } from '../store/db.js';
import type { CachedTable, MetadataCache } from '../store/metadata.js';
import type { Clock } from '../clock.js';
import { badRequest, notFound } from '../http/errors.js';
import type { Json } from '../http/shape.js';
import type { WriteApplicationSettingsRequest } from '../models/generated/pinpoint-inputs.js';
import { MAX_TAGS_PER_RESOURCE, MAX_TAG_KEY_LENGTH, MAX_TAG_VALUE_LENGTH } from './limits.js';

export interface App {
  Arn: string;
  Id: string;
  Name: string;
  tags: Record<string, string>;
  CreationDate: string;
}

interface AppRow {
  id: string;
  name: string;
  creation_date: string;
  created_seq: number;
  tags: string;
  settings: string;
}

const APPS = { table: 'apps', keys: ['id'] } as const;
/** Tries of CreateApp when another node took the same creation sequence number at the same moment. */
export const MAX_CREATE_APP_ATTEMPTS = 5;

export class Apps {
  /** Parsed apps, by id; dropped when the row changes (here or on another node). */
  private cache = new Map<string, App>();

  private constructor(
    private db: Db,
    private meta: MetadataCache,
    private rows: CachedTable<AppRow>,
    private clock: Clock,
    private region: string,
    private accountId: string,
  ) {
    meta.onChange((c) => {
      if (c.table !== APPS.table) return;
      if (c.key.length === 0) this.cache.clear();
      else this.cache.delete(c.key[0] as string);
    });
  }

  /** Apps on a metadata store; `db` is this node's SQLite database, where endpoints live for now. */
  static async open(db: Db, meta: MetadataCache, clock: Clock, region: string, accountId: string): Promise<Apps> {
    return new Apps(db, meta, await meta.table<AppRow>(APPS), clock, region, accountId);
  }

  /** The resource of collection-level actions (CreateApp, GetApps). */
  collectionArn(): string {
    return `arn:aws:mobiletargeting:${this.region}:${this.accountId}:apps`;
  }

  arn(id: string): string {
    return `arn:aws:mobiletargeting:${this.region}:${this.accountId}:apps/${id}`;
  }

  async create(name: string, tags: Record<string, string>): Promise<App> {
    const id = randomUUID().replace(/-/g, '');
    const creationDate = new Date(this.clock.now()).toISOString();
    // The sequence orders GetApps pages; computed in the INSERT, so on PostgreSQL two nodes may
    // take the same number at once: the unique index refuses the second, which tries again.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.meta.write(
          [
            {
              sql: 'INSERT INTO apps (id, name, creation_date, created_seq, tags) VALUES (?, ?, ?, (SELECT coalesce(max(created_seq), 0) + 1 FROM apps), ?)',
              params: [id, name, creationDate, JSON.stringify(tags)],
            },
          ],
          [{ table: APPS.table, key: [id] }],
        );
        return this.require(id);
      } catch (e) {
        if (attempt >= MAX_CREATE_APP_ATTEMPTS || !this.meta.driver.isUniqueViolation(e)) throw e;
      }
    }
  }

  get(id: string): App | undefined {
    let app = this.cache.get(id);
    if (!app) {
      const row = this.rows.get(id);
      if (!row) return undefined;
      app = this.toApp(row);
      this.cache.set(id, app);
    }
    return app;
  }

  require(id: string): App {
    const app = this.get(id);
    if (!app) throw notFound(`Application not found: ${id}`);
    return app;
  }

  /** Pages in creation order; the token is the creation sequence of the last app returned. */
  list(pageSize: number, token: string | undefined): { Item: App[]; NextToken?: string } {
    let after = 0;
    if (token !== undefined) {
      after = Number.parseInt(token, 36);
      if (!/^[0-9a-z]+$/.test(token) || !Number.isSafeInteger(after)) throw badRequest(`token "${token}" is not a valid paging token`);
    }
    const rows = this.rows
      .filter((r) => r.created_seq > after)
      .sort((a, b) => a.created_seq - b.created_seq)
      .slice(0, pageSize + 1);
    const page = rows.slice(0, pageSize);
    const out: { Item: App[]; NextToken?: string } = { Item: page.map((r) => this.toApp(r)) };
    if (rows.length > pageSize) out.NextToken = page[page.length - 1].created_seq.toString(36);
    return out;
  }

  async delete(id: string): Promise<App> {
    const app = this.require(id);
    // In the same transaction, the app goes on the queue of apps whose endpoints are to be removed:
    // they go in chunks afterwards (Endpoints.purgeApp), from this queue, on the metadata store
    // with the endpoints (a purge a stop interrupted is finished by the next node to start).
    await this.meta.write(
      [
        { sql: 'DELETE FROM apps WHERE id = ?', params: [id] },
        { sql: 'INSERT INTO endpoint_purges (app_id) VALUES (?) ON CONFLICT DO NOTHING', params: [id] },
        { sql: 'DELETE FROM app_attribute_names WHERE app_id = ?', params: [id] },
      ],
      [{ table: APPS.table, key: [id] }],
    );
    return app;
  }

  /**
   * The app id a resource ARN names (only apps carry tags for now). Existence is checked by the
   * caller after authorization, so a caller without permission cannot probe which apps exist.
   */
  appIdFromArn(arn: string): string {
    const m = /^arn:aws:mobiletargeting:([^:]+):(\d{12}):apps\/([^/]+)$/.exec(arn);
    if (!m) throw badRequest(`resource-arn "${arn}" is not a Pinpoint application ARN (arn:aws:mobiletargeting:REGION:ACCOUNT:apps/APP_ID)`);
    if (m[1] !== this.region || m[2] !== this.accountId) throw notFound(`Resource not found: ${arn}`);
    return m[3];
  }

  async tag(id: string, tags: Record<string, string>): Promise<void> {
    const app = this.require(id);
    const merged = { ...app.tags, ...tags };
    checkTags(merged, 'tags');
    await this.setTags(id, merged);
  }

  async untag(id: string, keys: string[]): Promise<void> {
    const app = this.require(id);
    const next = { ...app.tags };
    for (const k of keys) delete next[k];
    await this.setTags(id, next);
  }

  getSettings(id: string): Json {
    const app = this.require(id);
    const s = JSON.parse(this.rows.get(id)!.settings) as Json;
    return {
      ApplicationId: id,
      CampaignHook: s.CampaignHook ?? {},
      LastModifiedDate: s.LastModifiedDate ?? app.CreationDate,
      Limits: s.Limits ?? {},
      QuietTime: s.QuietTime ?? {},
      ...(s.JourneyLimits ? { JourneyLimits: s.JourneyLimits } : {}),
    };
  }

  /**
   * Replaces the given settings groups; CloudWatch/event tagging flags are stored but not echoed,
   * as in Pinpoint. `write` is model-validated: only modelled members, of their types (nothing a
   * client invents is stored or echoed back).
   */
  async updateSettings(id: string, write: WriteApplicationSettingsRequest): Promise<Json> {
    this.require(id);
    for (const k of ['Start', 'End'] as const) {
      const t = write.QuietTime?.[k];
      if (t !== undefined && !/^([01]\d|2[0-3]):[0-5]\d$/.test(t)) throw badRequest(`QuietTime.${k} must be a time of day as HH:MM; got "${t}"`);
    }
    const s = JSON.parse(this.rows.get(id)!.settings) as Json;
    for (const k of ['CampaignHook', 'Limits', 'QuietTime', 'JourneyLimits', 'CloudWatchMetricsEnabled', 'EventTaggingEnabled'] as const) {
      if (write[k] !== undefined) s[k] = write[k];
    }
    s.LastModifiedDate = new Date(this.clock.now()).toISOString();
    await this.meta.write([{ sql: 'UPDATE apps SET settings = ? WHERE id = ?', params: [JSON.stringify(s), id] }], [{ table: APPS.table, key: [id] }]);
    return this.getSettings(id);
  }

  private async setTags(id: string, tags: Record<string, string>): Promise<void> {
    await this.meta.write([{ sql: 'UPDATE apps SET tags = ? WHERE id = ?', params: [JSON.stringify(tags), id] }], [{ table: APPS.table, key: [id] }]);
  }

  private toApp(row: AppRow): App {
    return { Arn: this.arn(row.id), Id: row.id, Name: row.name, tags: JSON.parse(row.tags), CreationDate: row.creation_date };
  }
}

/** Validates a tag map against the tagging limits. */
export function checkTags(tags: Record<string, string> | undefined, field: string): Record<string, string> {
  if (tags === undefined) return {};
  const keys = Object.keys(tags);
  if (keys.length > MAX_TAGS_PER_RESOURCE) {
    throw badRequest(`${field} has ${keys.length} tags; the maximum is ${MAX_TAGS_PER_RESOURCE} per resource`);
  }
  for (const k of keys) {
    const v = tags[k];
    if (k.length === 0 || k.length > MAX_TAG_KEY_LENGTH) {
      throw badRequest(`${field} key "${k.slice(0, 40)}" is ${k.length} characters; tag keys must be 1 to ${MAX_TAG_KEY_LENGTH}`);
    }
    if (v.length > MAX_TAG_VALUE_LENGTH) {
      throw badRequest(`${field}.${k} is ${v.length} characters; tag values must be at most ${MAX_TAG_VALUE_LENGTH}`);
    }
  }
  return tags as Record<string, string>;
}
