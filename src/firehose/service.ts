// The embedded Firehose at run time: owns the delivery-stream registry and, per stream, its
// segment log (`<dataDir>/firehose/<name>/`), destination adapter, deliverer and (for
// KinesisStreamAsSource) Kinesis reader. Starts them all at boot, swaps the destination on
// UpdateDestination, deletes a stream's data on DeleteDeliveryStream and, on close, lets every
// deliverer flush its buffers once before closing the logs.

import { KinesisClient } from '@aws-sdk/client-kinesis';
import type { Clock } from '../clock.js';
import type { BucketRoute } from '../config/config.js';
import { selfHttpHandler } from '../delivery/kinesis-destination.js';
import type { Credentials } from '../iam/sigv4.js';
import { FIREHOSE_SERVICE_PRINCIPAL, type RoleSource } from '../iam/roles.js';
import type { Log, OffsetGap } from '../log/log.js';
import { SegmentLogProvider, type LogProvider } from '../log/provider.js';
import type { Db } from '../store/db.js';
import type { FirehoseDestination, StreamInfo } from './destination.js';
import type { ObjectBuilder } from './build.js';
import { SecretBox } from '../iam/secrets.js';
import { createDestination } from './destinations/index.js';
import { Deliverer, type DelivererHealth } from './deliverer.js';
import { KinesisSource, SHARD_DONE, type KinesisSourceHealth } from './kinesis-source.js';
import { bucketName, ObjectStores } from './objects/index.js';
import { RoleScopedStore } from './objects/role-scoped.js';
import { encodeRecords, newRecordIds, recordIdText } from './records.js';
import { invalidArgument } from './errors.js';
import { bufferingOf } from './limits.js';
import { KINDS } from './validate.js';
import { DELIVERER_CHECKPOINT, DeliveryStreamRegistry, type DeliveryStreamState } from './registry.js';
import { CatalogError, type Catalog } from '../catalog/catalog.js';
import { conversionSchema, SchemaError, type ConversionSchema } from './schema.js';

export interface FirehoseServiceOptions {
  db: Db;
  dataDir: string;
  region: string;
  accountId: string;
  fsync: boolean;
  clock: Clock;
  buckets: BucketRoute[];
  /** The Data Catalog whose tables give format conversion its columns (none: conversion is refused). */
  catalog?: Catalog;
  /** The IAM roles delivery streams name, as Firehose uses them (src/iam/roles.ts). */
  roles: FirehoseRoles;
  /** This server's URL, known once it listens: the Kinesis source reaches the embedded Kinesis there. */
  serverUrl: () => string;
  /** How often deliverers compare buffer ages with the clock (default BUFFER_CHECK_MS). */
  checkMs?: number;
  kinesisPollMs?: number;
  /** Where object bodies are compressed and converted (default: on this thread). */
  build?: ObjectBuilder;
  /** Seals destination credentials (default: the master key of `dataDir`). */
  secrets?: SecretBox;
  /** Opens the delivery streams' logs (default: segment logs under `dataDir`). */
  logs?: LogProvider;
  /**
   * Checks a Kinesis source's saved sequence number against the shard log it points into (the
   * embedded Kinesis; see Log.checkConsumer), so records put after a loss there are not skipped.
   */
  checkKinesisCheckpoint?: (streamArn: string, shardId: string, sequenceNumber: string, consumer: string) => Promise<OffsetGap | undefined>;
}

/**
 * What Firehose does with a delivery stream's roles: assume one for the stream (its trust policy
 * must allow firehose.amazonaws.com with aws:SourceArn = the stream's ARN), and ask what the
 * assumed role may do. Both throw / answer with the reason a role cannot serve.
 */
export interface FirehoseRoles {
  /** Session credentials of the role for `source` (throws with the reason when it cannot be assumed). */
  session(roleArn: string, source: RoleSource): Credentials;
  /** Why the role, assumed for `source`, may not do `action` on `resource`; undefined when it may. */
  mayNot(roleArn: string, source: RoleSource, action: string, resource: string): string | undefined;
}

export interface DeliveryStreamHealth {
  name: string;
  delivery: DelivererHealth;
  source?: KinesisSourceHealth;
}

interface Running {
  log: Log;
  destination: FirehoseDestination;
  deliverer: Deliverer;
  source?: { reader: KinesisSource; client?: KinesisClient };
}

export class FirehoseService {
  readonly registry: DeliveryStreamRegistry;
  readonly objects: ObjectStores;
  /** Streams being opened or open; `settled` holds the open ones for synchronous health reads. */
  private running = new Map<string, Promise<Running>>();
  private settled = new Map<string, Running>();
  private readonly logs: LogProvider;

  constructor(private readonly o: FirehoseServiceOptions) {
    this.registry = new DeliveryStreamRegistry(o.db, o.region, o.accountId, o.secrets ?? new SecretBox(o.dataDir));
    this.objects = new ObjectStores(o.dataDir, o.buckets);
    this.logs = o.logs ?? new SegmentLogProvider({ dataDir: o.dataDir, fsync: o.fsync, clock: o.clock });
  }

  /**
   * Opens every stored stream and starts its loops (once the server listens). A stored
   * configuration the adapters now refuse (saved by an older version) does not stop the start:
   * that stream keeps its records and reports why it cannot deliver until UpdateDestination fixes it.
   */
  async start(): Promise<void> {
    for (const s of this.registry.list()) await this.open(s, true);
  }

  /** Stores a new stream and starts it; a stream that cannot start is not kept. */
  async create(s: DeliveryStreamState): Promise<void> {
    this.registry.create(s);
    try {
      await this.open(s, false, true);
    } catch (e) {
      this.running.delete(s.name);
      this.registry.delete(s.name);
      throw e;
    }
  }

  /** Saves a new configuration and restarts delivery with it; buffered records are re-read from the log. */
  async reconfigure(s: DeliveryStreamState): Promise<void> {
    // Built first: a configuration the adapter refuses leaves the stream as it was.
    const destination = this.destination(s, true);
    this.registry.save(s);
    const r = await this.running.get(s.name);
    if (!r) return destination.close();
    await r.deliverer.stop();
    await r.destination.close();
    r.destination = destination;
    r.deliverer = this.deliverer(s.name, r.log, destination, await this.checkDeliverer(s.name, r.log));
    r.deliverer.start();
  }

  /** Stops the stream's loops without flushing and removes its records and checkpoints. */
  async delete(name: string): Promise<void> {
    const pending = this.running.get(name);
    this.running.delete(name);
    this.settled.delete(name);
    this.registry.delete(name);
    if (!pending) return;
    const r = await pending;
    await this.stopSource(r);
    await r.deliverer.stop();
    await r.destination.close();
    await r.log.destroy();
  }

  /** Appends accepted records durably; resolves once they are on disk, with their RecordIds. */
  async append(name: string, data: Buffer[]): Promise<string[]> {
    const r = await this.runningOf(name);
    const now = this.o.clock.now();
    const ids = newRecordIds(data.length);
    await r.log.append(encodeRecords(data, now, ids));
    return ids.map(recordIdText);
  }

  health(name: string): DeliveryStreamHealth | undefined {
    const r = this.settled.get(name);
    if (!r) return undefined;
    return { name, delivery: r.deliverer.health(), ...(r.source ? { source: r.source.reader.health() } : {}) };
  }

  async close(): Promise<void> {
    const all = [...this.running.values()];
    this.running.clear();
    this.settled.clear();
    await Promise.all(
      all.map(async (p) => {
        const r = await p;
        await this.stopSource(r);
        await r.deliverer.close();
        await r.destination.close();
        await r.log.close();
      }),
    );
    this.objects.close();
  }

  private async runningOf(name: string): Promise<Running> {
    const p = this.running.get(name);
    if (!p) throw new Error(`delivery stream ${name} is not running`);
    return p;
  }

  private open(s: DeliveryStreamState, tolerant = false, validating = false): Promise<Running> {
    const p = (async (): Promise<Running> => {
      let destination: FirehoseDestination;
      try {
        destination = this.destination(s, validating);
      } catch (e) {
        if (!tolerant) throw e;
        destination = refusedDestination(s.kind, (e as Error).message);
      }
      const log = await this.logs.open('firehose', s.name);
      try {
        // Before anything reads or appends: a checkpoint beyond the log's end must not be passed silently.
        const gap = await this.checkDeliverer(s.name, log);
        const r: Running = { log, destination, deliverer: this.deliverer(s.name, log, destination, gap) };
        if (s.kinesisSource) r.source = this.source(s, log, await this.checkSource(s));
        r.deliverer.start();
        r.source?.reader.start();
        this.settled.set(s.name, r);
        return r;
      } catch (e) {
        await log.close();
        await destination.close();
        throw e;
      }
    })();
    this.running.set(s.name, p);
    p.catch(() => this.settled.delete(s.name));
    return p;
  }

  private streamInfo(name: string): () => StreamInfo {
    // Read per batch, so object names carry the version current when the batch was cut.
    let last: StreamInfo = { name, arn: this.registry.arn(name), version: 1 };
    return () => {
      const s = this.registry.get(name);
      if (s) last = { name, arn: this.registry.arn(name), version: s.version };
      return last;
    };
  }

  /** The adapter for the stream's configuration; what it refuses is the caller's InvalidArgumentException. */
  private destination(s: DeliveryStreamState, validating = false): FirehoseDestination {
    try {
      const source = this.roleSource(s.name);
      return createDestination(s.kind, s.destination, this.streamInfo(s.name), {
        clock: this.o.clock,
        objects: (bucketArn, roleArn) =>
          new RoleScopedStore(this.objects.resolve(bucketArn), bucketName(bucketArn), roleArn, (action, resource) => this.o.roles.mayNot(roleArn!, source, action, resource)),
        ...(this.o.catalog ? { schema: (sc: Record<string, unknown>) => this.schema(sc, source) } : {}),
        validating,
        ...(this.o.build ? { build: this.o.build } : {}),
      });
    } catch (e) {
      throw invalidArgument(`${KINDS[s.kind].config}: ${(e as Error).message}`);
    }
  }

  /**
   * The table a SchemaConfiguration names, read as Firehose reads it: as the configuration's role,
   * which must allow glue:GetTable and glue:GetTableVersions on the catalog, database and table
   * ARNs (the resources AWS documents for Firehose's Glue access), in this server's catalog only.
   */
  private schema(sc: Record<string, unknown>, source: RoleSource): ConversionSchema {
    const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
    const db = str(sc.DatabaseName) ?? '';
    const name = str(sc.TableName) ?? '';
    const table = `${db}.${name}`;
    const catalogId = str(sc.CatalogId) ?? this.o.accountId;
    if (catalogId !== this.o.accountId) throw new SchemaError(`CatalogId ${catalogId} is not this server's Data Catalog (account ${this.o.accountId}); table ${table} cannot be read`);
    const region = str(sc.Region) ?? this.o.region;
    if (region !== this.o.region) throw new SchemaError(`Region ${region} is not this server's region (${this.o.region}); table ${table} cannot be read`);
    const roleArn = str(sc.RoleARN);
    if (!roleArn) throw new SchemaError(`no RoleARN is given to read table ${table}`);
    const base = `arn:aws:glue:${this.o.region}:${this.o.accountId}`;
    const resources = [`${base}:catalog`, `${base}:database/${db.toLowerCase()}`, `${base}:table/${db.toLowerCase()}/${name.toLowerCase()}`];
    for (const action of ['glue:GetTable', 'glue:GetTableVersions']) {
      for (const resource of resources) {
        const why = this.o.roles.mayNot(roleArn, source, action, resource);
        if (why !== undefined) throw new SchemaError(`role ${roleArn} may not read table ${table} (${action} on ${resource}: ${why})`);
      }
    }
    let t;
    try {
      t = this.o.catalog!.getTable(db, name);
    } catch (e) {
      if (e instanceof CatalogError) throw new SchemaError(`table ${table} cannot be used: ${e.code}: ${e.message}`);
      throw e;
    }
    const version = str(sc.VersionId) ?? 'LATEST';
    if (version !== 'LATEST' && version !== t.versionId) {
      throw new SchemaError(`table ${table} is at version ${t.versionId}; version ${version} is not kept (this catalog keeps the current version only: use LATEST)`);
    }
    return conversionSchema(`${t.database}.${t.name}`, t.columns);
  }

  private checkDeliverer(name: string, log: Log): Promise<OffsetGap | undefined> {
    return log.checkConsumer('the Firehose deliverer', Number(this.registry.checkpoint(name, DELIVERER_CHECKPOINT) ?? 0));
  }

  /** The source's shard checkpoints against the Kinesis shard logs: what was lost there is reported. */
  private async checkSource(s: DeliveryStreamState): Promise<OffsetGap[]> {
    const check = this.o.checkKinesisCheckpoint;
    if (!check || !s.kinesisSource) return [];
    const gaps: OffsetGap[] = [];
    for (const { key, position } of this.registry.checkpoints(s.name)) {
      if (key === DELIVERER_CHECKPOINT || position === SHARD_DONE) continue;
      const gap = await check(s.kinesisSource.streamArn, key, position, 'a Firehose Kinesis source').catch(() => undefined);
      if (gap) gaps.push(gap);
    }
    return gaps;
  }

  private deliverer(name: string, log: Log, destination: FirehoseDestination, gap: OffsetGap | undefined): Deliverer {
    return new Deliverer({
      stream: this.streamInfo(name),
      log,
      destination,
      gap,
      clock: this.o.clock,
      checkMs: this.o.checkMs,
      checkpoint: {
        load: () => Number(this.registry.checkpoint(name, DELIVERER_CHECKPOINT) ?? 0),
        save: (offset) => this.registry.saveCheckpoint(name, DELIVERER_CHECKPOINT, String(offset)),
      },
    });
  }

  /** Who uses a delivery stream's roles: Firehose, for this stream (its ARN is the trust policy's aws:SourceArn). */
  roleSource(name: string): RoleSource {
    return { service: FIREHOSE_SERVICE_PRINCIPAL, sourceArn: this.registry.arn(name), sourceAccount: this.o.accountId };
  }

  private source(s: DeliveryStreamState, log: Log, gaps: OffsetGap[]): Running['source'] {
    const { streamArn, roleArn } = s.kinesisSource!;
    const roleSource = this.roleSource(s.name);
    const source: NonNullable<Running['source']> = { reader: undefined as unknown as KinesisSource };
    // Signed as the role, assumed when the first call is made (a role that cannot be assumed fails
    // that call visibly in health, and is retried), through the same API any Kinesis consumer uses.
    // At a restart the source starts before the server listens: no client is made (and kept)
    // before its URL is known.
    const client = () => {
      if (!source.client && !this.o.serverUrl()) throw new Error('the server is not listening yet');
      return (source.client ??= new KinesisClient({
        endpoint: this.o.serverUrl(),
        region: this.o.region,
        credentials: async () => this.o.roles.session(roleArn, roleSource),
        maxAttempts: 1,
        // The server's own Kinesis: its own address, over TLS when that is on.
        requestHandler: selfHttpHandler(),
      }));
    };
    const reader = new KinesisSource({
      streamArn,
      client,
      log,
      clock: this.o.clock,
      pollMs: this.o.kinesisPollMs,
      gaps,
      checkpoint: {
        load: (shard) => this.registry.checkpoint(s.name, shard),
        save: (shard, position) => this.registry.saveCheckpoint(s.name, shard, position),
      },
    });
    source.reader = reader;
    return source;
  }

  private async stopSource(r: Running): Promise<void> {
    if (!r.source) return;
    await r.source.reader.stop();
    r.source.client?.destroy();
  }
}

/** Stands in for a stored configuration the adapters refuse: every attempt fails, saying why. */
function refusedDestination(kind: DeliveryStreamState['kind'], reason: string): FirehoseDestination {
  const error = `the delivery stream's configuration cannot be used: ${reason}; correct it with UpdateDestination`;
  return {
    kind: kind === 'S3' ? 'ExtendedS3' : kind,
    // No waiting for a buffer to fill: the first record shows the problem in health at once.
    buffering: { ...bufferingOf(undefined), intervalMs: 0 },
    retryDurationMs: Infinity,
    deliver: async () => ({ ok: false, error }),
    abandon: async () => ({ ok: false, error }),
    close: async () => {},
  };
}
