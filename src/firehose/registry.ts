// Delivery-stream metadata in SQLite: one JSON document per stream (type, source, the validated
// destination configuration with defaults, version, tags), and the positions its readers keep:
// the deliverer's first undelivered log offset and, for a Kinesis source, each shard's last
// sequence number appended. Record data lives in the per-stream segment logs, not here.
// Destination credentials (Redshift Password, HTTP endpoint AccessKey) are stored sealed.

import type { Db } from '../store/db.js';
import type { Json } from '../http/shape.js';
import type { DestinationKind } from './validate.js';
import type { SecretBox } from '../iam/secrets.js';
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

export class DeliveryStreamRegistry {
  constructor(
    private readonly db: Db,
    readonly region: string,
    readonly accountId: string,
    private readonly secrets: SecretBox,
  ) {}

  arn(name: string): string {
    return `arn:aws:firehose:${this.region}:${this.accountId}:deliverystream/${name}`;
  }

  get(name: string): DeliveryStreamState | undefined {
    const row = this.db.prepare('SELECT data FROM firehose_streams WHERE name = ?').get(name) as { data: string } | undefined;
    return row ? this.decode(row.data) : undefined;
  }

  require(name: string): DeliveryStreamState {
    const s = this.get(name);
    if (!s) throw resourceNotFound(notFoundMessage(name, this.accountId));
    return s;
  }

  /** All streams, in name order (byte order, as AWS lists them). */
  list(): DeliveryStreamState[] {
    const rows = this.db.prepare('SELECT data FROM firehose_streams ORDER BY name').all() as Array<{ data: string }>;
    return rows.map((r) => this.decode(r.data));
  }

  count(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM firehose_streams').get() as { n: number }).n;
  }

  create(s: DeliveryStreamState): void {
    const r = this.db.prepare('INSERT INTO firehose_streams (name, data) VALUES (?, ?) ON CONFLICT(name) DO NOTHING').run(s.name, this.encode(s));
    if (r.changes === 0) throw resourceInUse(`Firehose ${s.name} under accountId ${this.accountId} already exists`);
  }

  save(s: DeliveryStreamState): void {
    this.db.prepare('UPDATE firehose_streams SET data = ? WHERE name = ?').run(this.encode(s), s.name);
  }

  private encode(s: DeliveryStreamState): string {
    return JSON.stringify({ ...s, destination: mapSecrets(s.destination, (v) => ({ sealed: this.secrets.seal(v).toString('base64') })) });
  }

  private decode(data: string): DeliveryStreamState {
    const s = JSON.parse(data) as DeliveryStreamState;
    return { ...s, destination: mapSecrets(s.destination, (v) => this.secrets.open(Buffer.from((v as { sealed: string }).sealed, 'base64'))) };
  }

  delete(name: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM firehose_streams WHERE name = ?').run(name);
      this.db.prepare('DELETE FROM firehose_checkpoints WHERE stream = ?').run(name);
    })();
  }

  checkpoint(stream: string, key: string): string | undefined {
    const row = this.db.prepare('SELECT position FROM firehose_checkpoints WHERE stream = ? AND key = ?').get(stream, key) as { position: string } | undefined;
    return row?.position;
  }

  /** Every checkpoint of a stream: the deliverer's ('') and one per Kinesis source shard. */
  checkpoints(stream: string): Array<{ key: string; position: string }> {
    return this.db.prepare('SELECT key, position FROM firehose_checkpoints WHERE stream = ?').all(stream) as Array<{ key: string; position: string }>;
  }

  saveCheckpoint(stream: string, key: string, position: string): void {
    this.db
      .prepare('INSERT INTO firehose_checkpoints (stream, key, position) VALUES (?, ?, ?) ON CONFLICT(stream, key) DO UPDATE SET position = excluded.position')
      .run(stream, key, position);
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
