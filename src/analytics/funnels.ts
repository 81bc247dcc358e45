// Saved funnels (the Funnels dashboard's named, ordered steps), kept in the SQLite metadata store
// (table analytics_funnels) with the app's other settings rather than in DuckDB, which holds only
// data that retention may delete.

import { randomUUID } from 'node:crypto';
import { badRequest } from '../http/errors.js';
import type { Db } from '../store/db.js';
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

export class FunnelStore {
  constructor(private readonly db: Db) {}

  list(appId: string): Funnel[] {
    const rows = this.db.prepare('SELECT id, name, steps FROM analytics_funnels WHERE app_id = ? ORDER BY name, id').all(appId) as Array<{ id: string; name: string; steps: string }>;
    return rows.map((r) => ({ id: r.id, name: r.name, steps: JSON.parse(r.steps) as FunnelStep[] }));
  }

  /** Creates (no id) or replaces (id) a funnel. */
  save(appId: string, f: Omit<Funnel, 'id'> & { id?: string }): Funnel {
    if (typeof f.name !== 'string' || f.name.trim() === '') throw badRequest('name is required');
    if (f.name.length > MAX_FUNNEL_NAME_LENGTH) throw badRequest(`name is ${f.name.length} characters; the maximum is ${MAX_FUNNEL_NAME_LENGTH}`);
    const steps = checkSteps(f.steps);
    const id = f.id ?? randomUUID().replace(/-/g, '');
    return this.db.transaction(() => {
      const exists = this.db.prepare('SELECT 1 FROM analytics_funnels WHERE app_id = ? AND id = ?').get(appId, id) !== undefined;
      if (!exists) {
        const { n } = this.db.prepare('SELECT count(*) AS n FROM analytics_funnels WHERE app_id = ?').get(appId) as { n: number };
        if (n >= MAX_FUNNELS_PER_APP) throw badRequest(`the app already has ${n} funnels; the maximum is ${MAX_FUNNELS_PER_APP}`);
      }
      this.db.prepare('INSERT OR REPLACE INTO analytics_funnels (app_id, id, name, steps) VALUES (?, ?, ?, ?)').run(appId, id, f.name, JSON.stringify(steps));
      return { id, name: f.name, steps };
    })();
  }

  delete(appId: string, id: string): boolean {
    return this.db.prepare('DELETE FROM analytics_funnels WHERE app_id = ? AND id = ?').run(appId, id).changes > 0;
  }
}
