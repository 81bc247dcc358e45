// Delivery-stream metadata on the metadata Store (SQLite embedded, PostgreSQL shared by N nodes):
// one JSON document per stream (type, source, the validated destination configuration with
// defaults, version, tags) in `firehose_streams`, and the positions its readers keep in
// `firehose_checkpoints`: the deliverer's first undelivered log offset and, for a Kinesis source,
// each shard's last sequence number appended. Both are CachedTables (small; read on every put and
// by every deliverer batch): reads are synchronous, writes async. Checkpoints are shared so that a
// deliverer moved to another node (placement) resumes where the last one stopped. Record data
// lives in the per-stream logs, not here. Destination credentials (Redshift Password, HTTP
// endpoint AccessKey) are stored sealed.

import type { Json } from '../http/shape.js';
import type { DestinationKind } from './validate.js';
import type { SecretBox } from '../iam/secrets.js';
import type { CachedTable, MetadataCache, TableSpec } from '../store/metadata.js';
import { notFoundMessage, resourceInUse, resourceNotFound } from './errors.js';

export type DeliveryStreamType = 'DirectPut' | 'KinesisStreamAsSource';

export interface DeliveryStreamState {
  name: string;
  type: DeliveryStreamType;
  /** VersionId: 1, then +1 per UpdateDestination. */
  version: number;
  createdMs: number;
  updatedMs: number;
  kinesisSource?: { streamArn: string; roleArn: string; deliveryStartMs: number };
  directPut?: { throughputHintInMBs: number };
  kind: DestinationKind;
  /** The wire *DestinationConfiguration, validated, defaults filled in (secrets included). */
  destination: Json;
  tags: Record<string, string>;
}

/** The checkpoint key of the deliverer (Kinesis shard checkpoints use the shard id). */
export const DELIVERER_CHECKPOINT = '';

export const FIREHOSE_STREAMS: TableSpec = { table: 'firehose_streams', keys: ['name'] };
export const FIREHOSE_CHECKPOINTS: TableSpec = { table: 'firehose_checkpoints', keys: ['stream', 'key'] };

interface StreamRow {
  name: string;
  data: string;
}

interface CheckpointRow {
  stream: string;
  key: string;
  position: string;
}

export class DeliveryStreamRegistry {
  /**
   * Checkpoint positions waiting to be written, per `[stream, key]`: only the latest is written,
   * one write per key at a time (a deliverer saves after every batch and never waits for it).
   */
  private pendingCheckpoints = new Map<string, { stream: string; key: string; position: string }>();
  private checkpointWrites = new Map<string, Promise<void>>();

  private constructor(
    private readonly meta: MetadataCache,
    private readonly rows: CachedTable<StreamRow>,
    private readonly positions: CachedTable<CheckpointRow>,
    readonly region: string,
    readonly accountId: string,
    private readonly secrets: SecretBox,
  ) {}

  static async open(meta: MetadataCache, region: string, accountId: string, secrets: SecretBox): Promise<DeliveryStreamRegistry> {
    const rows = await meta.table<StreamRow>(FIREHOSE_STREAMS);
    const positions = await meta.table<CheckpointRow>(FIREHOSE_CHECKPOINTS);
    return new DeliveryStreamRegistry(meta, rows, positions, region, accountId, secrets);
  }

  /** Calls `fn(name)` after a delivery stream's document changed (on this node or another); `undefined` = all may have. */
  onChange(fn: (name: string | undefined) => void): () => void {
    return this.meta.onChange((c) => {
      if (c.table !== FIREHOSE_STREAMS.table) return;
      fn(c.key.length === 0 ? undefined : String(c.key[0]));
    });
  }

  arn(name: string): string {
    return `arn:aws:firehose:${this.region}:${this.accountId}:deliverystream/${name}`;
  }

  get(name: string): DeliveryStreamState | undefined {
    const row = this.rows.get(name);
    return row ? this.decode(row.data) : undefined;
  }

  require(name: string): DeliveryStreamState {
    const s = this.get(name);
    if (!s) throw resourceNotFound(notFoundMessage(name, this.accountId));
    return s;
  }

  /** All streams, in name order (byte order, as AWS lists them). */
  list(): DeliveryStreamState[] {
    return [...this.rows.values()]
      .sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)))
      .map((r) => this.decode(r.data));
  }

  count(): number {
    return this.rows.size;
  }

  /** Stores a new stream; ResourceInUse when the name is taken (by this node or, racing, another). */
  async create(s: DeliveryStreamState): Promise<void> {
    if (this.rows.get(s.name)) throw resourceInUse(`Firehose ${s.name} under accountId ${this.accountId} already exists`);
    const [made] = await this.meta.write(
      [{ sql: 'INSERT INTO firehose_streams (name, data) VALUES (?, ?) ON CONFLICT(name) DO NOTHING RETURNING name', params: [s.name, this.encode(s)] }],
      [{ table: FIREHOSE_STREAMS.table, key: [s.name] }],
    );
    if (made.length === 0) throw resourceInUse(`Firehose ${s.name} under accountId ${this.accountId} already exists`);
  }

  async save(s: DeliveryStreamState): Promise<void> {
    await this.meta.write([{ sql: 'UPDATE firehose_streams SET data = ? WHERE name = ?', params: [this.encode(s), s.name] }], [{ table: FIREHOSE_STREAMS.table, key: [s.name] }]);
  }

  private encode(s: DeliveryStreamState): string {
    return JSON.stringify({ ...s, destination: mapSecrets(s.destination, (v) => ({ sealed: this.secrets.seal(v).toString('base64') })) });
  }

  private decode(data: string): DeliveryStreamState {
    const s = JSON.parse(data) as DeliveryStreamState;
    return { ...s, destination: mapSecrets(s.destination, (v) => this.secrets.open(Buffer.from((v as { sealed: string }).sealed, 'base64'))) };
  }

  /** Removes the stream and its checkpoints (checkpoint writes still queued for it are dropped). */
  async delete(name: string): Promise<void> {
    for (const [k, p] of this.pendingCheckpoints) if (p.stream === name) this.pendingCheckpoints.delete(k);
    await this.meta.write(
      [
        { sql: 'DELETE FROM firehose_streams WHERE name = ?', params: [name] },
        { sql: 'DELETE FROM firehose_checkpoints WHERE stream = ?', params: [name] },
      ],
      [
        { table: FIREHOSE_STREAMS.table, key: [name] },
        { table: FIREHOSE_CHECKPOINTS.table, key: [name] },
      ],
    );
  }

  checkpoint(stream: string, key: string): string | undefined {
    return this.pendingCheckpoints.get(JSON.stringify([stream, key]))?.position ?? this.positions.get(stream, key)?.position;
  }

  /** Every checkpoint of a stream: the deliverer's ('') and one per Kinesis source shard. */
  checkpoints(stream: string): Array<{ key: string; position: string }> {
    const out = new Map<string, string>();
    for (const r of this.positions.filter((r) => r.stream === stream)) out.set(r.key, r.position);
    for (const p of this.pendingCheckpoints.values()) if (p.stream === stream) out.set(p.key, p.position);
    return [...out].map(([key, position]) => ({ key, position }));
  }

  /**
   * Records a position; written in the background (the latest one per key wins). A write that
   * fails is reported and the position is written again with the next save; what was not written
   * costs duplicates after a restart, never loss (positions only trail delivery).
   */
  saveCheckpoint(stream: string, key: string, position: string): void {
    const k = JSON.stringify([stream, key]);
    this.pendingCheckpoints.set(k, { stream, key, position });
    if (this.checkpointWrites.has(k)) return;
    const run = async (): Promise<void> => {
      for (;;) {
        const p = this.pendingCheckpoints.get(k);
        // Left synchronously with the check: a save arriving after it starts a new writer.
        if (!p) return void this.checkpointWrites.delete(k);
        this.pendingCheckpoints.delete(k);
        try {
          // Only for a stream that still exists: a late save must not outlive DeleteDeliveryStream.
          await this.meta.write(
            [
              {
                sql:
                  'INSERT INTO firehose_checkpoints (stream, key, position) SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM firehose_streams WHERE name = ?) ' +
                  'ON CONFLICT(stream, key) DO UPDATE SET position = excluded.position',
                params: [p.stream, p.key, p.position, p.stream],
              },
            ],
            [{ table: FIREHOSE_CHECKPOINTS.table, key: [p.stream, p.key] }],
          );
        } catch (e) {
          console.error(`pinstream: saving the Firehose checkpoint ${p.key || 'deliverer'} of ${p.stream} failed`, e);
          return void this.checkpointWrites.delete(k);
        }
      }
    };
    this.checkpointWrites.set(k, run());
  }

  /** Resolves once every checkpoint saved so far is written (or failed). */
  async flush(): Promise<void> {
    while (this.checkpointWrites.size > 0) await Promise.all([...this.checkpointWrites.values()]);
  }
}

/** Where destination configurations carry credentials: Redshift `Password`, HTTP endpoint `EndpointConfiguration.AccessKey`. */
const SECRET_PATHS: ReadonlyArray<readonly string[]> = [['Password'], ['EndpointConfiguration', 'AccessKey']];

/** A copy of `dest` with each secret present replaced by `f(secret)`. */
function mapSecrets(dest: Json, f: (v: any) => unknown): Json {
  const out: Json = structuredClone(dest);
  for (const path of SECRET_PATHS) {
    let parent: any = out;
    for (const k of path.slice(0, -1)) parent = parent?.[k];
    const last = path[path.length - 1];
    if (parent && typeof parent === 'object' && parent[last] !== undefined && parent[last] !== '') parent[last] = f(parent[last]);
  }
  return out;
}
