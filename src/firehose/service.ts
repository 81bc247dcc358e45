// The embedded Firehose at run time: owns the delivery-stream registry and, per stream, its log
// (segment log `<dataDir>/firehose/<name>/`, or a JetStream stream shared by every node), and the
// stream's delivery job: destination adapter, deliverer and (for KinesisStreamAsSource) Kinesis
// reader. Every node opens every stream's log (any node takes puts); the job runs where
// `placement.place('firehose/<name>', job)` says: here at once embedded (LocalPlacement), on the
// one node holding the lease with several (KvPlacement). Streams created, reconfigured or deleted
// through another node reach this one as Store change notifications (registry.onChange): opened,
// restarted, closed here. Swaps the destination on UpdateDestination, deletes a stream's data on
// DeleteDeliveryStream and, on close, lets every deliverer flush its buffers once before closing
// the logs. Where the job's deliverer runs: in the Firehose thread (firehose-thread.ts, thread.ts)
// when `deliveryThread` is set and the stream's log is a segment log (share()), reading it through
// a read-only view; else here on the main thread (consumerThreads 0, or JetStream logs in a
// cluster). Same Deliverer loop in both; this side keeps placement, the registry, checkpoints'
// persistence and the role and catalog answers the thread asks for. The Kinesis source (which
// appends to the stream's log, owned here) stays on this thread.

import { KinesisClient } from '@aws-sdk/client-kinesis';
import type { Clock } from '../clock.js';
import type { BucketRoute } from '../config/config.js';
import { selfHttpHandler } from '../delivery/kinesis-destination.js';
import type { Credentials } from '../iam/sigv4.js';
import { FIREHOSE_SERVICE_PRINCIPAL, type RoleSource } from '../iam/roles.js';
import type { Log, OffsetGap } from '../log/log.js';
import type { LogShare } from '../log/segment-view.js';
import { SegmentLogProvider, type LogProvider } from '../log/provider.js';
import type { MetadataCache } from '../store/metadata.js';
import { LocalPlacement, type Placement } from '../cluster/placement.js';
import type { FirehoseDestination, StreamInfo } from './destination.js';
import type { ObjectBuilder } from './build.js';
import { SecretBox } from '../iam/secrets.js';
import { createDestination, refusedDestination } from './destinations/index.js';
import { Deliverer, type DelivererHealth } from './deliverer.js';
import { FirehoseThread } from './firehose-thread.js';
import { KinesisSource, SHARD_DONE, type KinesisSourceHealth } from './kinesis-source.js';
import { bucketName, ObjectStores } from './objects/index.js';
import { RoleScopedStore } from './objects/role-scoped.js';
import { encodeRecords, newRecordIds, recordIdText } from './records.js';
import { invalidArgument } from './errors.js';
import { KINDS } from './validate.js';
import { DELIVERER_CHECKPOINT, DeliveryStreamRegistry, type DeliveryStreamState } from './registry.js';
import { CatalogError, type Catalog } from '../catalog/catalog.js';
import { conversionSchema, SchemaError, type ConversionSchema } from './schema.js';

export interface FirehoseServiceOptions {
  /** The metadata Store holding delivery streams and checkpoints. */
  meta: MetadataCache;
  /** Where each stream's delivery job runs (default: here, LocalPlacement). */
  placement?: Placement;
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
  /**
   * Run deliverers and their destination I/O in the Firehose thread where the stream's log can be
   * shared (a segment log); else, and by default, on this thread.
   */
  deliveryThread?: boolean;
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

/** A job's deliverer as the service drives it: a Deliverer here, or one in the Firehose thread. */
interface JobDeliverer {
  start(): void | Promise<void>;
  /** Ends the loop without flushing. */
  stop(): Promise<void>;
  /** Flushes every buffer once, then stops. */
  close(): Promise<void>;
  health(): DelivererHealth;
  /** The job is gone for good (not restarting): what it kept for health is dropped. */
  release?(): void;
}

/** A stream's delivery job while it runs on this node. */
interface Job {
  /** The destination, where it runs on this thread (the Firehose thread owns its own). */
  destination?: FirehoseDestination;
  deliverer: JobDeliverer;
  source?: { reader: KinesisSource; client?: KinesisClient };
}

interface Running {
  name: string;
  log: Log;
  /** The configuration version the job runs (or will run) with. */
  version: number;
  job?: Job;
  /** Job starts, stops and restarts of this stream, one at a time. */
  busy: Promise<void>;
  /** Set by delete: the job stops without flushing (its records are being removed). */
  deleting?: boolean;
  /** The first start, when placement ran it at once (embedded): create waits for it. */
  started?: Promise<void>;
  /** The job a restart stopped, answering health until its successor runs. */
  previous?: Job;
}

/** The placement name of a delivery stream's job. */
export const firehoseJobName = (name: string) => `firehose/${name}`;

export class FirehoseService {
  readonly registry: DeliveryStreamRegistry;
  readonly objects: ObjectStores;
  /** Streams being opened or open here (their logs); `settled` holds the open ones. */
  private running = new Map<string, Promise<Running>>();
  private settled = new Map<string, Running>();
  private readonly logs: LogProvider;
  private readonly placement: Placement;
  private closed = false;
  /** Opens and closes driven by other nodes' changes, one at a time (close waits for them). */
  private following: Promise<void> = Promise.resolve();
  /** Started with the first deliverer it runs. */
  private thread: FirehoseThread | undefined;

  private constructor(
    private readonly o: FirehoseServiceOptions,
    registry: DeliveryStreamRegistry,
  ) {
    this.registry = registry;
    this.objects = new ObjectStores(o.dataDir, o.buckets);
    this.logs = o.logs ?? new SegmentLogProvider({ dataDir: o.dataDir, fsync: o.fsync, clock: o.clock });
    this.placement = o.placement ?? new LocalPlacement();
  }

  static async open(o: FirehoseServiceOptions): Promise<FirehoseService> {
    return new FirehoseService(o, await DeliveryStreamRegistry.open(o.meta, o.region, o.accountId, o.secrets ?? new SecretBox(o.dataDir)));
  }

  /**
   * Opens every stored stream and places its job (once the server listens). A stored
   * configuration the adapters now refuse (saved by an older version) does not stop the start:
   * that stream keeps its records and reports why it cannot deliver until UpdateDestination fixes it.
   * From here on, streams changed through other nodes are followed.
   */
  async start(): Promise<void> {
    this.registry.onChange((name) => {
      this.following = this.following.then(() => this.follow(name)).catch((e) => console.error(`pinstream: firehose: following a change of ${name ?? 'every delivery stream'} failed`, e));
    });
    for (const s of this.registry.list()) {
      if (this.running.has(s.name)) continue;
      // Embedded the job starts at once: waited for, so the stream delivers (and reports its
      // health) as soon as the server is up; a log that does not open stops the start, as before.
      await (await this.open(s)).started;
    }
  }

  /** Brings this node in line with the stored stream `name` (or every stream): opened, restarted or closed here. */
  private async follow(name: string | undefined): Promise<void> {
    if (this.closed) return;
    const names = name !== undefined ? [name] : [...new Set([...this.running.keys(), ...this.registry.list().map((s) => s.name)])];
    for (const n of names) {
      const s = this.registry.get(n);
      const pending = this.running.get(n);
      if (!s) {
        // Deleted through another node (which removes the log): closed here, the job released
        // without flushing (its records go with the stream).
        if (pending) await this.closeHere(n, true);
        continue;
      }
      if (!pending) {
        await this.open(s);
        continue;
      }
      const r = await pending.catch(() => undefined);
      // UpdateDestination through another node: the job, where it runs here, restarts with it.
      if (r && r.version !== s.version) await this.restart(r, s);
    }
  }

  /** Stores a new stream and starts it; a stream that cannot start is not kept. */
  async create(s: DeliveryStreamState): Promise<void> {
    // Checked before storing: a configuration the adapter refuses is the caller's error.
    await this.destination(s, true).close();
    await this.registry.create(s);
    try {
      const r = await this.open(s);
      await r.started;
    } catch (e) {
      await this.closeHere(s.name, true).catch(() => {});
      await this.registry.delete(s.name).catch(() => {});
      throw e;
    }
  }

  /** Saves a new configuration and restarts delivery with it; buffered records are re-read from the log. */
  async reconfigure(s: DeliveryStreamState): Promise<void> {
    // Built first: a configuration the adapter refuses leaves the stream as it was.
    await this.destination(s, true).close();
    await this.registry.save(s);
    const r = await this.running.get(s.name)?.catch(() => undefined);
    if (r && r.version !== s.version) await this.restart(r, s);
  }

  /** Stops the stream's loops without flushing and removes its records and checkpoints. */
  async delete(name: string): Promise<void> {
    const pending = this.running.get(name);
    const r = await pending?.catch(() => undefined);
    if (r) {
      r.deleting = true;
      await this.placement.release(firehoseJobName(name));
    }
    // Before the row goes: the change notification of this delete then finds nothing to close here.
    if (this.running.get(name) === pending) this.running.delete(name);
    this.settled.delete(name);
    await this.registry.delete(name);
    if (r) await r.log.destroy();
  }

  /** Appends accepted records durably; resolves once they are on disk, with their RecordIds. */
  async append(name: string, data: Buffer[]): Promise<string[]> {
    const r = await this.runningOf(name);
    const now = this.o.clock.now();
    const ids = newRecordIds(data.length);
    await r.log.append(encodeRecords(data, now, ids));
    return ids.map(recordIdText);
  }

  /** The stream's delivery health where its job runs on this node (undefined elsewhere). */
  health(name: string): DeliveryStreamHealth | undefined {
    const r = this.settled.get(name);
    const job = r?.job ?? r?.previous;
    if (!job) return undefined;
    return { name, delivery: job.deliverer.health(), ...(job.source ? { source: job.source.reader.health() } : {}) };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.following;
    const all = [...this.running.values()];
    this.running.clear();
    this.settled.clear();
    await Promise.all(
      all.map(async (p) => {
        const r = await p.catch(() => undefined);
        if (!r) return;
        // Flushes once where the job runs here (see stopJob); releasing hands the lease over.
        await this.placement.release(firehoseJobName(r.name));
        await r.log.close();
      }),
    );
    await this.thread?.close();
    this.thread = undefined;
    await this.registry.flush();
    this.objects.close();
  }

  /** The Firehose thread's id once started (tests: delivery runs off the main thread), else -1. */
  deliveryThreadId(): number {
    return this.thread?.threadId ?? -1;
  }

  /** The Firehose thread, once started (tests kill it to check recovery). */
  deliveryThread(): FirehoseThread | undefined {
    return this.thread;
  }

  private async runningOf(name: string): Promise<Running> {
    const p = this.running.get(name);
    if (!p) throw new Error(`delivery stream ${name} is not running`);
    return p;
  }

  /** Opens the stream's log here and places its job (once: a change notification of this node's own write may come first). */
  private open(s: DeliveryStreamState): Promise<Running> {
    const existing = this.running.get(s.name);
    if (existing) return existing;
    const p = (async (): Promise<Running> => {
      const log = await this.logs.open('firehose', s.name);
      const r: Running = { name: s.name, log, version: s.version, busy: Promise.resolve() };
      this.settled.set(s.name, r);
      let placing = true;
      this.placement.place(firehoseJobName(s.name), {
        start: () => {
          const started = this.serialize(r, () => this.startJob(r));
          if (placing) r.started = started;
          return started.catch((e) => console.error(`pinstream: firehose: starting delivery of ${s.name} failed`, e));
        },
        stop: () => this.serialize(r, () => this.stopJob(r)),
      });
      placing = false;
      return r;
    })();
    this.running.set(s.name, p);
    p.catch(() => {
      if (this.running.get(s.name) === p) this.running.delete(s.name);
    });
    return p;
  }

  /** Closes the stream here: its job released (flushing unless `deleting`), its log closed. */
  private async closeHere(name: string, deleting: boolean): Promise<void> {
    const pending = this.running.get(name);
    this.running.delete(name);
    this.settled.delete(name);
    const r = await pending?.catch(() => undefined);
    if (!r) return;
    if (deleting) r.deleting = true;
    await this.placement.release(firehoseJobName(name));
    await r.log.close();
  }

  private serialize(r: Running, task: () => Promise<void>): Promise<void> {
    const run = r.busy.then(task);
    r.busy = run.catch(() => {});
    return run;
  }

  /**
   * Starts the delivery job (this node holds its lease). A stored configuration the adapters now
   * refuse runs a destination that fails every attempt, saying why, so health shows it.
   */
  private async startJob(r: Running): Promise<void> {
    if (r.job) return;
    const s = this.registry.get(r.name);
    if (!s || r.deleting) return;
    const share = this.o.deliveryThread ? (r.log as Log & { share?(): LogShare }).share?.bind(r.log) : undefined;
    if (share) return this.startThreadJob(r, s, share());
    let destination: FirehoseDestination;
    try {
      destination = this.destination(s);
    } catch (e) {
      destination = refusedDestination(s.kind, (e as Error).message);
    }
    try {
      // Before anything reads: a checkpoint beyond the log's end must not be passed silently.
      const gap = await this.checkDeliverer(s.name, r.log);
      const job: Job = { destination, deliverer: this.deliverer(s.name, r.log, destination, gap) };
      if (s.kinesisSource) job.source = this.source(s, r.log, await this.checkSource(s));
      r.version = s.version;
      r.job = job;
      job.deliverer.start();
      job.source?.reader.start();
    } catch (e) {
      await destination.close();
      throw e;
    }
  }

  /** The job with its deliverer in the Firehose thread, reading the stream's log through a view of `share`. */
  private async startThreadJob(r: Running, s: DeliveryStreamState, share: LogShare): Promise<void> {
    // The configuration is checked here (the answer the in-process adapter would give), so a
    // refused one reads the same wherever it runs; the thread builds its own adapter.
    let refused: string | undefined;
    try {
      await this.destination(s).close();
    } catch (e) {
      refused = (e as Error).message;
    }
    const gap = await this.checkDeliverer(s.name, r.log);
    const thread = (this.thread ??= this.newThread());
    const name = s.name;
    const args = { name, kind: s.kind, destination: s.destination, stream: this.streamInfo(name)(), log: share, ...(refused !== undefined ? { refused } : {}), ...(gap ? { gap } : {}) };
    const job: Job = {
      deliverer: {
        start: () => thread.start(args, r.log),
        stop: () => thread.stop(name, false),
        close: () => thread.stop(name, true),
        health: () => thread.health(name)!,
        release: () => thread.forget(name),
      },
    };
    if (s.kinesisSource) job.source = this.source(s, r.log, await this.checkSource(s));
    r.version = s.version;
    r.job = job;
    try {
      await job.deliverer.start();
    } catch (e) {
      r.job = undefined;
      throw e;
    }
    job.source?.reader.start();
  }

  private newThread(): FirehoseThread {
    return new FirehoseThread(
      {
        checkpoint: (name) => Number(this.registry.checkpoint(name, DELIVERER_CHECKPOINT) ?? 0),
        saveCheckpoint: (name, offset) => this.registry.saveCheckpoint(name, DELIVERER_CHECKPOINT, String(offset)),
        mayNot: (name, roleArn, action, resource) => this.o.roles.mayNot(roleArn, this.roleSource(name), action, resource),
        schema: (name, sc) => this.schema(sc, this.roleSource(name)),
      },
      {
        dataDir: this.o.dataDir,
        buckets: this.o.buckets,
        catalog: this.o.catalog !== undefined,
        ...(this.o.clock.shared ? { clock: this.o.clock.shared } : {}),
        ...(this.o.checkMs !== undefined ? { checkMs: this.o.checkMs } : {}),
      },
      () => this.o.clock.now(),
    );
  }

  /** Stops the job: flushing its buffers once on shutdown or a lost lease, not when the stream is deleted. */
  private async stopJob(r: Running): Promise<void> {
    const job = r.job;
    if (!job) return;
    r.job = undefined;
    await this.stopSource(job);
    r.previous = undefined;
    if (r.deleting) await job.deliverer.stop();
    else await job.deliverer.close();
    await job.destination?.close();
    job.deliverer.release?.();
  }

  /** A new configuration: the job, where it runs here, restarts with it; buffered records are re-read from the log. */
  private restart(r: Running, s: DeliveryStreamState): Promise<void> {
    return this.serialize(r, async () => {
      r.version = s.version;
      const job = r.job;
      if (!job) return;
      r.job = undefined;
      r.previous = job;
      await this.stopSource(job);
      await job.deliverer.stop();
      await job.destination?.close();
      try {
        await this.startJob(r);
      } finally {
        r.previous = undefined;
      }
    });
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

  private source(s: DeliveryStreamState, log: Log, gaps: OffsetGap[]): Job['source'] {
    const { streamArn, roleArn } = s.kinesisSource!;
    const roleSource = this.roleSource(s.name);
    const source: NonNullable<Job['source']> = { reader: undefined as unknown as KinesisSource };
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

  private async stopSource(j: Job): Promise<void> {
    if (!j.source) return;
    await j.source.reader.stop();
    j.source.client?.destroy();
  }
}
