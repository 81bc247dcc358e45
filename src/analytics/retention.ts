// Analytics retention: deletes `events` rows whose event_time is older than retentionDays (default
// 90, Pinpoint's analytics retention, reference/pinpoint.md §5) before the injected clock's now,
// then CHECKPOINTs so the deletion reaches the database file.
//
// What DuckDB does with the space (measured; test/analytics-store.test.ts, 20k rows/day, 5-day
// window): DELETE only marks rows; the CHECKPOINT right after leaves the file size unchanged
// (5,255,168 → 5,255,168 bytes) and puts the blocks of deleted row groups on the free list. Later
// loads reuse them, and a checkpoint sometimes truncates free blocks at the end of the file: over
// three more load+retention rounds the file was 6.3, 4.2 and 5.8 MB (a standalone run with direct
// appends: 4.47 MB every round, 2.37 MB after some deletes). So the file stops growing at about one
// retention window of data (+~20%) rather than shrinking; VACUUM does not reclaim space in DuckDB,
// and shrinking further would need copying the database.

import type { Clock } from '../clock.js';
import type { AnalyticsEventStore } from './event-store.js';

/** What retention needs of a store: the delete, and DuckDB's file size and checkpoint when it has them. */
type RetentionStore = Pick<AnalyticsEventStore, 'deleteOlderThan' | 'fileBytes' | 'compact'>;

export const DAY_MS = 86_400_000;
/** How often the retention job runs. */
export const RETENTION_INTERVAL_MS = DAY_MS;

export interface RetentionResult {
  deleted: number;
  cutoffMs: number;
  /** The database file's size before and after (DuckDB); 0 for ClickHouse, which has no one file. */
  bytesBefore: number;
  bytesAfter: number;
}

export async function applyRetention(store: RetentionStore, clock: Clock, retentionDays: number): Promise<RetentionResult> {
  const cutoffMs = clock.now() - retentionDays * DAY_MS;
  const bytesBefore = store.fileBytes?.() ?? 0;
  const deleted = await store.deleteOlderThan(cutoffMs);
  // Checkpoint even when nothing was deleted: it also folds the loader's WAL into the file.
  await store.compact?.();
  return { deleted, cutoffMs, bytesBefore, bytesAfter: store.fileBytes?.() ?? 0 };
}

/** Runs retention now and then every RETENTION_INTERVAL_MS; returns a stop function. */
export function startRetention(store: RetentionStore, clock: Clock, retentionDays: number, onError: (e: unknown) => void): () => void {
  const run = () => void applyRetention(store, clock, retentionDays).catch(onError);
  run();
  const timer = setInterval(run, RETENTION_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
