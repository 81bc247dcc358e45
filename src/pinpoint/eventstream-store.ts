// Event-stream persistence on the metadata Store (store/metadata.ts), embedded SQLite or shared
// PostgreSQL. It owns three tables:
// - `event_streams`: the settings of each app's stream, a CachedTable (read synchronously on every
//   node, kept current when another node changes them; writes async). Its `epoch` grows each time
//   the checkpoint is SET (PutEventStream to a new destination, replay).
// - `delivery_checkpoints`: the first ingest-log offset not yet delivered, with the epoch it was
//   set in. Not cached (written every batch): read when a worker starts, written async.
// - `delivery_errors`: records a destination could never take, the newest
//   MAX_DELIVERY_ERRORS_PER_APP per app, one per ingest-log offset (rejected again after a replay:
//   replaced).
//
// Checkpoint writes from a worker are `advance(app, position, epoch)`: the row moves only forward
// (max of stored and new) and only while its epoch is still the one the worker started from. Why
// both: after a node loses its lease, its worker may still report a batch while the next holder
// has moved on — max() keeps that late write from moving the checkpoint backwards; and a replay
// moves it backwards on purpose — the epoch it bumps fences every worker started before it.

import type { CachedTable, Change, MetadataCache, Stmt } from '../store/metadata.js';

export interface EventStreamRow {
  app_id: string;
  destination_arn: string;
  role_arn: string;
  last_modified: string;
  last_updated_by: string;
  /** Bumped whenever the checkpoint is set (new destination, replay): workers started before stop writing it. */
  epoch: number;
}

export interface CheckpointRow {
  app_id: string;
  position: number;
  epoch: number;
}

export interface DeliveryErrorRow {
  app_id: string;
  log_offset: number;
  event_id: string;
  endpoint_id: string;
  reason: string;
  at: string;
}

/** Rejected records kept per app (the oldest are deleted as new ones come). */
export const MAX_DELIVERY_ERRORS_PER_APP = 1_000;

export const EVENT_STREAMS = { table: 'event_streams', keys: ['app_id'] } as const;

export class EventStreamStore {
  private constructor(
    readonly meta: MetadataCache,
    private readonly rows: CachedTable<EventStreamRow>,
  ) {}

  static async open(meta: MetadataCache): Promise<EventStreamStore> {
    return new EventStreamStore(meta, await meta.table<EventStreamRow>(EVENT_STREAMS));
  }

  get(appId: string): EventStreamRow | undefined {
    return this.rows.get(appId);
  }

  all(): EventStreamRow[] {
    return [...this.rows.values()].sort((a, b) => (a.app_id < b.app_id ? -1 : a.app_id > b.app_id ? 1 : 0));
  }

  /** Calls `fn(appId)` after each applied change of an app's settings (here or on another node); `undefined` = all may have changed. */
  onChange(fn: (appId: string | undefined) => void): () => void {
    return this.meta.onChange((c: Change) => {
      if (c.table !== EVENT_STREAMS.table) return;
      fn(c.key.length === 0 ? undefined : String(c.key[0]));
    });
  }

  /**
   * Saves settings. With `checkpoint` the delivery position is set there under a new epoch (a new
   * destination); without, it is kept (created at `initial` when the app has none yet).
   */
  async save(row: Omit<EventStreamRow, 'epoch'>, opts: { checkpoint?: number; initial: number; epoch: number }): Promise<EventStreamRow> {
    const stmts: Stmt[] = [
      {
        sql: `INSERT INTO event_streams (app_id, destination_arn, role_arn, last_modified, last_updated_by, epoch) VALUES (?, ?, ?, ?, ?, ?)
              ON CONFLICT (app_id) DO UPDATE SET destination_arn = excluded.destination_arn, role_arn = excluded.role_arn,
                last_modified = excluded.last_modified, last_updated_by = excluded.last_updated_by
                ${opts.checkpoint !== undefined ? ', epoch = event_streams.epoch + 1' : ''}`,
        params: [row.app_id, row.destination_arn, row.role_arn, row.last_modified, row.last_updated_by, opts.epoch],
      },
      opts.checkpoint !== undefined
        ? {
            sql: `INSERT INTO delivery_checkpoints (app_id, position, epoch) SELECT app_id, ?, epoch FROM event_streams WHERE app_id = ?
                  ON CONFLICT (app_id) DO UPDATE SET position = excluded.position, epoch = excluded.epoch`,
            params: [opts.checkpoint, row.app_id],
          }
        : {
            sql: `INSERT INTO delivery_checkpoints (app_id, position, epoch) SELECT app_id, ?, epoch FROM event_streams WHERE app_id = ?
                  ON CONFLICT (app_id) DO NOTHING`,
            params: [opts.initial, row.app_id],
          },
    ];
    await this.meta.write(stmts, [{ table: EVENT_STREAMS.table, key: [row.app_id] }]);
    return this.get(row.app_id)!;
  }

  /** Removes an app's settings and checkpoint (its delivery errors stay). */
  async remove(appId: string): Promise<void> {
    await this.meta.write(
      [
        { sql: 'DELETE FROM event_streams WHERE app_id = ?', params: [appId] },
        { sql: 'DELETE FROM delivery_checkpoints WHERE app_id = ?', params: [appId] },
      ],
      [{ table: EVENT_STREAMS.table, key: [appId] }],
    );
  }

  /**
   * Sets the checkpoint (a replay, possibly backwards) under a new epoch, which also changes the
   * settings row: every node running the worker restarts it from here; writes of workers started
   * before are refused.
   */
  async setCheckpoint(appId: string, position: number): Promise<CheckpointRow | undefined> {
    const rows = await this.meta.write(
      [
        { sql: 'UPDATE event_streams SET epoch = epoch + 1 WHERE app_id = ?', params: [appId] },
        {
          sql: `INSERT INTO delivery_checkpoints (app_id, position, epoch) SELECT app_id, ?, epoch FROM event_streams WHERE app_id = ?
                ON CONFLICT (app_id) DO UPDATE SET position = excluded.position, epoch = excluded.epoch RETURNING app_id, position, epoch`,
          params: [position, appId],
        },
      ],
      [{ table: EVENT_STREAMS.table, key: [appId] }],
    );
    return (rows[1] as CheckpointRow[])[0];
  }

  /** The saved checkpoint (undefined when the app has no event stream). */
  async checkpoint(appId: string): Promise<CheckpointRow | undefined> {
    return (await this.meta.driver.all<CheckpointRow>('SELECT app_id, position, epoch FROM delivery_checkpoints WHERE app_id = ?', [appId]))[0];
  }

  /** Every saved checkpoint, by app (status of streams this node does not run). */
  async checkpoints(): Promise<Map<string, CheckpointRow>> {
    const rows = await this.meta.driver.all<CheckpointRow>('SELECT app_id, position, epoch FROM delivery_checkpoints');
    return new Map(rows.map((r) => [r.app_id, r]));
  }

  /**
   * A worker's progress: moves the checkpoint to `position` when that is further and the row is
   * still of `epoch`. Returns the stored position, or undefined when the epoch no longer matches
   * (the checkpoint was set since, or the stream removed): this worker must not write any more.
   */
  async advance(appId: string, position: number, epoch: number): Promise<number | undefined> {
    const [rows] = await this.meta.driver.write(
      [
        {
          sql: `UPDATE delivery_checkpoints SET position = CASE WHEN position < ? THEN ? ELSE position END
                WHERE app_id = ? AND epoch = ? RETURNING position`,
          params: [position, position, appId, epoch],
        },
      ],
      [],
    );
    return (rows as Array<{ position: number }>)[0]?.position;
  }

  /** Keeps a rejected record (the newest MAX_DELIVERY_ERRORS_PER_APP of the app stay). */
  async recordRejected(appId: string, e: { offset: number; eventId: string; endpointId: string; reason: string; at: number }): Promise<void> {
    await this.meta.driver.write(
      [
        {
          sql: `INSERT INTO delivery_errors (app_id, log_offset, event_id, endpoint_id, reason, at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (app_id, log_offset) DO UPDATE SET event_id = excluded.event_id, endpoint_id = excluded.endpoint_id,
                  reason = excluded.reason, at = excluded.at`,
          params: [appId, e.offset, e.eventId, e.endpointId, e.reason, new Date(e.at).toISOString()],
        },
        {
          sql: `DELETE FROM delivery_errors WHERE app_id = ? AND log_offset <
                  (SELECT log_offset FROM delivery_errors WHERE app_id = ? ORDER BY log_offset DESC LIMIT 1 OFFSET ?)`,
          params: [appId, appId, MAX_DELIVERY_ERRORS_PER_APP - 1],
        },
      ],
      [],
    );
  }

  /** The app's kept rejected records, oldest first. */
  async rejected(appId: string): Promise<DeliveryErrorRow[]> {
    return this.meta.driver.all<DeliveryErrorRow>('SELECT * FROM delivery_errors WHERE app_id = ? ORDER BY log_offset', [appId]);
  }
}
