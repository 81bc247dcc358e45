// Saved funnels (the Funnels dashboard's named, ordered steps), kept in the metadata store
// (table analytics_funnels; SQLite embedded, PostgreSQL shared) with the app's other settings rather than in DuckDB, which holds only
// data that retention may delete.

import { randomUUID } from 'node:crypto';
import { badRequest } from '../http/errors.js';
import type { MetadataCache } from '../store/metadata.js';
import type { Funnel, FunnelStep } from './types.js';

export const MAX_FUNNEL_STEPS = 10;
export const MAX_FUNNELS_PER_APP = 100;
export const MAX_FUNNEL_NAME_LENGTH = 100;

function checkSteps(steps: unknown): FunnelStep[] {
  if (!Array.isArray(steps) || steps.length < 2) throw badRequest('steps must list at least 2 steps');
  if (steps.length > MAX_FUNNEL_STEPS) throw badRequest(`steps has ${steps.length} steps; the maximum is ${MAX_FUNNEL_STEPS}`);
  return steps.map((s: FunnelStep, i) => {
    const f = `steps[${i}]`;
    if (typeof s !== 'object' || s === null) throw badRequest(`${f} must be an object {name, eventType, attributes?}`);
    if (typeof s.eventType !== 'string' || s.eventType === '') throw badRequest(`${f}.eventType is required`);
    const name = typeof s.name === 'string' && s.name !== '' ? s.name : s.eventType;
    if (s.attributes !== undefined && s.attributes !== null && !Array.isArray(s.attributes)) {
      throw badRequest(`${f}.attributes must be a list of {name, values}`);
    }
    const attributes = (s.attributes ?? []).map((a, j) => {
      if (typeof a?.name !== 'string' || a.name === '') throw badRequest(`${f}.attributes[${j}].name is required`);
      if (!Array.isArray(a.values) || a.values.length === 0 || a.values.some((v) => typeof v !== 'string')) {
        throw badRequest(`${f}.attributes[${j}].values must be a non-empty list of strings`);
      }
      return { name: a.name, values: [...a.values] };
    });
    return attributes.length > 0 ? { name, eventType: s.eventType, attributes } : { name, eventType: s.eventType };
  });
}

/**
 * Funnels over the metadata store's driver (SQLite embedded, PostgreSQL shared), read when asked
 * (a funnel list per dashboard request, at most MAX_FUNNELS_PER_APP rows): no cache, so every node
 * sees a save at once. A save's count check is part of its insert, so nodes saving together
 * cannot pass the limit.
 */
export class FunnelStore {
  constructor(private readonly meta: MetadataCache) {}

  async list(appId: string): Promise<Funnel[]> {
    const rows = await this.meta.driver.all<{ id: string; name: string; steps: string }>('SELECT id, name, steps FROM analytics_funnels WHERE app_id = ? ORDER BY name, id', [appId]);
    return rows.map((r) => ({ id: r.id, name: r.name, steps: JSON.parse(r.steps) as FunnelStep[] }));
  }

  /** Creates (no id) or replaces (id) a funnel. */
  async save(appId: string, f: Omit<Funnel, 'id'> & { id?: string }): Promise<Funnel> {
    if (typeof f.name !== 'string' || f.name.trim() === '') throw badRequest('name is required');
    if (f.name.length > MAX_FUNNEL_NAME_LENGTH) throw badRequest(`name is ${f.name.length} characters; the maximum is ${MAX_FUNNEL_NAME_LENGTH}`);
    const steps = checkSteps(f.steps);
    const id = f.id ?? randomUUID().replace(/-/g, '');
    const [updated, inserted] = await this.meta.write(
      [
        { sql: 'UPDATE analytics_funnels SET name = ?, steps = ? WHERE app_id = ? AND id = ? RETURNING id', params: [f.name, JSON.stringify(steps), appId, id] },
        {
          sql: `INSERT INTO analytics_funnels (app_id, id, name, steps)
                SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM analytics_funnels WHERE app_id = ? AND id = ?)
                  AND (SELECT count(*) FROM analytics_funnels WHERE app_id = ?) < ?
                RETURNING id`,
          params: [appId, id, f.name, JSON.stringify(steps), appId, id, appId, MAX_FUNNELS_PER_APP],
        },
      ],
      [],
    );
    if (updated.length === 0 && inserted.length === 0) throw badRequest(`the app already has ${MAX_FUNNELS_PER_APP} funnels; the maximum is ${MAX_FUNNELS_PER_APP}`);
    return { id, name: f.name, steps };
  }

  async delete(appId: string, id: string): Promise<boolean> {
    const [gone] = await this.meta.write([{ sql: 'DELETE FROM analytics_funnels WHERE app_id = ? AND id = ? RETURNING id', params: [appId, id] }], []);
    return gone.length > 0;
  }
}
