// Runs one delivery worker per configured event stream: picks each destination (the embedded
// Kinesis of this process, appended to in process as the event stream's role; the embedded
// Firehose reached over HTTP as any client would and signed with that role; or a configured remote
// endpoint such as real AWS), places each app's worker under the lease `delivery/<appId>` (the
// server's Placement: embedded every worker runs here; in a cluster on whichever node holds it),
// follows settings changed on any node (the Store's change notifications), keeps the checkpoints of
// the workers running here (read synchronously by them, written to the Store behind them, one write
// in flight per app), and reports their health — or, for a worker on another node, its holder and
// the lag from the shared checkpoint. Workers run in consumers threads (config consumerThreads;
// streams spread over them by app id) so delivery never takes turns with request work; with 0
// threads they run on this one.

import type { Clock } from '../clock.js';
import type { Config, DestinationRoute } from '../config/config.js';
import type { Log } from '../log/log.js';
import type { LogShare } from '../log/segment-view.js';
import { wildcardMatch } from '../iam/policy.js';
import { assumeRole, PINPOINT_SERVICE_PRINCIPAL } from '../iam/roles.js';
import type { IamStore } from '../iam/store.js';
import type { PlacedJob, Placement } from '../cluster/placement.js';
import type { DeliveryControl, EventStreams } from '../pinpoint/eventstream.js';
import type { Destination } from './destination.js';
import { ConsumersThread } from './consumers-thread.js';
import { parseKinesisArn } from './kinesis-destination.js';
import { LocalKinesisDestination, type LocalKinesis } from './local-kinesis-destination.js';
import { buildDestination, type DestinationSpec } from './spec.js';
import { DeliveryWorker, deliveryConsumer, healthOf, type WorkerHealth } from './worker.js';

export interface DeliveryManagerOptions {
  config: Config;
  /** This server's own URL, known once it listens. */
  serverUrl: () => string;
  iam: IamStore;
  eventStreams: EventStreams;
  /** The ingest log; share() lets consumers threads read it through a read-only view. */
  ingestLog: Log & { share?(): LogShare };
  clock: Clock;
  /**
   * The embedded Kinesis service with its protocol's authorization, once built: embedded stream
   * destinations call it in process. Without it they are reached over HTTP like Firehose.
   */
  localKinesis?: () => LocalKinesis | undefined;
  /** Which node runs each app's worker (LocalPlacement embedded: this one, at once). */
  placement: Placement;
}

/** The placement name of an app's delivery worker. */
export const placementName = (appId: string) => `delivery/${appId}`;
/** How long stopping a worker waits for its last checkpoint write (then the next holder redelivers from the one before). */
export const CHECKPOINT_FLUSH_TIMEOUT_MS = 5_000;
/** Pause before a failed checkpoint write is tried again (the worker goes on meanwhile). */
export const CHECKPOINT_RETRY_MS = 1_000;
/** How often /metrics' view of the checkpoints of workers running on other nodes is re-read. */
export const REMOTE_STATUS_REFRESH_MS = 5_000;
/** Pause before a worker whose start failed (Store unreachable) is started again. */
export const WORKER_START_RETRY_MS = 2_000;

interface AppJob extends PlacedJob {
  /** The placement wants it running here. */
  wanted: boolean;
  /** The settings the worker running here was started with. */
  runningWith: { epoch: number; destination: string; role: string } | undefined;
  restart(): Promise<void>;
  /** Resolves once the start/stop/restart queued so far are done. */
  idle(): Promise<void>;
}

interface CheckpointState {
  position: number;
  /** The epoch of the saved checkpoint the worker started from (see EventStreamStore.advance). */
  epoch: number;
  /** Moved since the last write was sent. */
  dirty: boolean;
  /** No more writes: the worker stopped, or the checkpoint was set since it started. */
  fenced: boolean;
  writing?: Promise<void>;
}

export class DeliveryManager implements DeliveryControl {
  /** Workers on this thread (consumerThreads 0). */
  private workers = new Map<string, { worker: DeliveryWorker; destination: Destination }>();
  /** Gaps found at start, shown before a thread's worker has reported (it finds the same one). */
  private readonly gaps = new Map<string, { records: number; message: string }>();
  /** Consumers threads, started with the first worker. */
  private threads: ConsumersThread[] | undefined;
  /** Placed jobs, by app (this node competes for their leases; a job runs here while it holds one). */
  private readonly jobs = new Map<string, AppJob>();
  /** Checkpoints of the workers running here: read by them synchronously, written to the Store behind. */
  private readonly checkpoints = new Map<string, CheckpointState>();
  /** Settings applications of each app, one at a time. */
  private readonly syncs = new Map<string, Promise<void>>();
  private unsubscribe: (() => void) | undefined;
  /** Shared checkpoints of the workers other nodes run, as last read (metrics). */
  private readonly shared = new Map<string, number>();
  private refreshTimer: NodeJS.Timeout | undefined;

  constructor(private o: DeliveryManagerOptions) {}

  /** How many consumers threads run the workers (0: this thread). */
  private get threadCount(): number {
    return this.o.ingestLog.share ? this.o.config.consumerThreads : 0;
  }

  /** The consumers thread an app's worker runs in (by a hash of the app id, so it stays there). */
  private threadFor(appId: string): ConsumersThread {
    this.threads ??= Array.from(
      { length: this.threadCount },
      (_, i) =>
        new ConsumersThread(
          {
            ingestLog: this.o.ingestLog,
            share: this.o.ingestLog.share!(),
            checkpoint: (id) => this.checkpoints.get(id)?.position ?? 0,
            saveCheckpoint: (id, offset) => this.saveCheckpoint(id, offset),
            rejected: (id, e) => this.rejected(id, e),
            local: (id, arn) => this.localDestination(arn, this.o.eventStreams.get(id)?.role_arn ?? '', id),
            assume: (id) => assumeRole(this.o.iam, this.o.eventStreams.get(id)?.role_arn ?? '', this.source(id)),
          },
          i,
          () => this.o.clock.now(),
        ),
    );
    let h = 0;
    for (let i = 0; i < appId.length; i++) h = (Math.imul(h, 31) + appId.charCodeAt(i)) >>> 0;
    return this.threads[h % this.threads.length];
  }

  /** The consumers threads' ids (tests: delivery runs off the main thread). */
  threadIds(): number[] {
    return (this.threads ?? []).map((t) => t.threadId);
  }

  /** The consumers thread of an app (tests kill it to check recovery). */
  consumersThreadOf(appId: string): ConsumersThread | undefined {
    return this.threadCount > 0 ? this.threadFor(appId) : undefined;
  }

  isEmbedded(arn: string): boolean {
    const m = /^arn:aws:(kinesis|firehose):([^:]*):(\d{12}):/.exec(arn);
    // Both embedded services (Kinesis streams and Firehose delivery streams) of this region and account.
    return !!m && m[2] === this.o.config.region && m[3] === this.o.config.accountId && !this.route(arn);
  }

  isRouted(arn: string): boolean {
    return this.route(arn) !== undefined;
  }

  async describe(arn: string, roleArn: string, appId: string): Promise<{ active: boolean; status: string }> {
    const d = this.destinationFor(arn, roleArn, appId);
    try {
      return await d.describe();
    } finally {
      d.close();
    }
  }

  /**
   * Checks every event stream's checkpoint against the ingest log before the server accepts events:
   * one beyond the end (events lost after they were delivered) makes the log continue past it, so
   * new events cannot take offsets the worker will never read. Workers show the gap in health.
   */
  async checkCheckpoints(): Promise<void> {
    const saved = await this.o.eventStreams.store.checkpoints();
    for (const row of this.o.eventStreams.all()) {
      const cp = saved.get(row.app_id);
      if (!cp) continue;
      const gap = await this.o.ingestLog.checkConsumer(deliveryConsumer(row.app_id), cp.position);
      if (gap) this.gaps.set(row.app_id, { records: gap.records, message: gap.message });
    }
  }

  /** Places every event stream's worker, and from now on follows settings changed on any node. */
  async startAll(): Promise<void> {
    if (!this.unsubscribe) {
      this.unsubscribe = this.o.eventStreams.store.onChange((appId) => {
        const ids = appId === undefined ? new Set([...this.o.eventStreams.all().map((r) => r.app_id), ...this.jobs.keys()]) : [appId];
        for (const id of ids) void this.sync(id).catch((e) => console.error(`pinstream: applying the event stream settings of app ${id} failed`, e));
      });
    }
    for (const row of this.o.eventStreams.all()) await this.sync(row.app_id);
    this.refreshTimer ??= setInterval(() => void this.refreshShared().catch(() => {}), REMOTE_STATUS_REFRESH_MS);
    this.refreshTimer.unref();
  }

  /**
   * Applies the app's saved settings here and now: places its worker when it has an event stream
   * (it runs on whichever node holds `delivery/<appId>`), restarts it from the saved checkpoint
   * when it runs on this node with other settings (destination, role, or a checkpoint set since:
   * the epoch), gives the placement up when the stream is gone. The change's own notification
   * does the same on every node (here too): whichever comes second finds nothing left to do.
   */
  async restart(appId: string): Promise<void> {
    await this.sync(appId);
  }

  /** Stops the app's worker and gives up its placement (restart, or a settings change, places it again). */
  async stop(appId: string): Promise<void> {
    await this.serial(appId, async () => {
      if (!this.jobs.has(appId)) return;
      this.jobs.delete(appId);
      await this.o.placement.release(placementName(appId));
    });
  }

  async stopAll(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearInterval(this.refreshTimer);
    this.refreshTimer = undefined;
    await Promise.all([...this.jobs.keys()].map((id) => this.stop(id)));
    const threads = this.threads ?? [];
    this.threads = undefined;
    await Promise.all(threads.map((t) => t.close()));
  }

  health(appId: string): WorkerHealth | undefined {
    if (this.threadCount > 0) {
      if (!this.threads) return undefined;
      const s = this.threadFor(appId).snapshot(appId);
      const gap = this.gaps.get(appId);
      return s && healthOf(gap && !s.checkpointGap ? { ...s, checkpointGap: gap } : s, this.o.ingestLog.endOffset(), this.o.clock.now());
    }
    return this.workers.get(appId)?.worker.health();
  }

  /** Where the app's worker runs: on this node, on `holder` (as this node last saw the lease), or nowhere known. */
  placementOf(appId: string): { runningHere: boolean; holder?: string } | undefined {
    const name = placementName(appId);
    const st = this.o.placement.states().find((s) => s.name === name);
    return st && { runningHere: st.running, ...(st.holder !== undefined ? { holder: st.holder } : {}) };
  }

  /**
   * Health of the app's delivery as this node can tell: its worker's when it runs here; else, for a
   * worker on another node, the holder and the lag from the shared checkpoint (`saved`, read from
   * the Store by the caller): state 'elsewhere'.
   */
  statusOf(appId: string, saved: number | undefined): (WorkerHealth & { holder?: string }) | { state: 'elsewhere' | 'stopped'; holder?: string; checkpoint?: number; logEnd: number; recordsBehind?: number } {
    const where = this.placementOf(appId);
    const here = this.health(appId);
    if (here) return where?.holder ? { ...here, holder: where.holder } : here;
    if (saved !== undefined) this.shared.set(appId, saved);
    const logEnd = this.o.ingestLog.endOffset();
    const lag = saved !== undefined ? { checkpoint: saved, recordsBehind: Math.max(0, logEnd - saved) } : {};
    if (where && !where.runningHere && where.holder !== undefined && where.holder !== this.o.placement.nodeId) {
      return { state: 'elsewhere', holder: where.holder, logEnd, ...lag };
    }
    return { state: 'stopped', logEnd, ...lag };
  }

  /** For /metrics (synchronous): the holder of a worker running on another node and its lag from the shared checkpoint as last read. */
  elsewhere(appId: string): { holder: string; recordsBehind?: number } | undefined {
    const where = this.placementOf(appId);
    if (!where || where.runningHere || where.holder === undefined || where.holder === this.o.placement.nodeId) return undefined;
    const saved = this.shared.get(appId);
    return { holder: where.holder, ...(saved !== undefined ? { recordsBehind: Math.max(0, this.o.ingestLog.endOffset() - saved) } : {}) };
  }

  /** Re-reads the shared checkpoints of the workers running elsewhere (for elsewhere()). */
  private async refreshShared(): Promise<void> {
    const away = [...this.jobs.keys()].filter((id) => !this.jobs.get(id)!.wanted);
    if (away.length === 0) return this.shared.clear();
    const saved = await this.o.eventStreams.store.checkpoints();
    this.shared.clear();
    for (const id of away) {
      const cp = saved.get(id);
      if (cp) this.shared.set(id, cp.position);
    }
  }

  /** Runs `fn` after every earlier sync/stop of the app (settings are applied in order, one at a time). */
  private serial(appId: string, fn: () => Promise<void>): Promise<void> {
    const run = (this.syncs.get(appId) ?? Promise.resolve()).then(fn);
    const tail = run.catch(() => {});
    this.syncs.set(appId, tail);
    void tail.then(() => {
      if (this.syncs.get(appId) === tail) this.syncs.delete(appId);
    });
    return run;
  }

  /** See restart. */
  private sync(appId: string): Promise<void> {
    return this.serial(appId, async () => {
      const row = this.o.eventStreams.get(appId);
      const job = this.jobs.get(appId);
      if (!row) {
        if (!job) return;
        this.jobs.delete(appId);
        await this.o.placement.release(placementName(appId));
        return;
      }
      if (!job) {
        const j = this.newJob(appId);
        this.jobs.set(appId, j);
        this.o.placement.place(placementName(appId), j);
        // Embedded (LocalPlacement) the worker starts at once: wait for it, as callers did before.
        await j.idle();
        return;
      }
      const r = job.runningWith;
      if (job.wanted && (!r || r.epoch !== row.epoch || r.destination !== row.destination_arn || r.role !== row.role_arn)) {
        await job.restart();
      }
    });
  }

  /** The placed job of an app's worker: start/stop come from the placement, restart from settings. */
  private newJob(appId: string): AppJob {
    let queue: Promise<void> = Promise.resolve();
    let retry: NodeJS.Timeout | undefined;
    const enqueue = (fn: () => Promise<void>) => {
      const run = queue.then(fn);
      queue = run.catch(() => {});
      return run;
    };
    const tryStart = async () => {
      if (!job.wanted || job.runningWith) return;
      try {
        await this.startWorker(appId, job);
      } catch (e) {
        // The Store was unreachable (or the settings went meanwhile): try again while placed here.
        console.error(`pinstream: the event stream worker of app ${appId} could not start (${(e as Error).message}); retrying in ${WORKER_START_RETRY_MS} ms`);
        clearTimeout(retry);
        retry = setTimeout(() => void (job.wanted && !job.runningWith && job.start()), WORKER_START_RETRY_MS);
        retry.unref();
      }
    };
    const job: AppJob = {
      wanted: false,
      runningWith: undefined,
      idle: () => queue,
      start: () => {
        job.wanted = true;
        return enqueue(tryStart);
      },
      stop: () => {
        job.wanted = false;
        clearTimeout(retry);
        return enqueue(() => this.stopWorker(appId, job));
      },
      restart: () =>
        enqueue(async () => {
          await this.stopWorker(appId, job);
          await tryStart();
        }),
    };
    return job;
  }

  /** Starts the app's worker on this node from the checkpoint saved in the Store. */
  private async startWorker(appId: string, job: AppJob): Promise<void> {
    const row = this.o.eventStreams.get(appId);
    if (!row) return;
    const saved = await this.o.eventStreams.store.checkpoint(appId);
    if (!saved) return;
    const cp: CheckpointState = { position: saved.position, epoch: saved.epoch, dirty: false, fenced: false };
    this.checkpoints.set(appId, cp);
    const spec = this.specFor(row.destination_arn);
    if (this.threadCount > 0) {
      try {
        await this.threadFor(appId).start(appId, spec);
      } catch (e) {
        // Not started: nothing to stop, and the retry of job.start tries again.
        cp.fenced = true;
        if (this.checkpoints.get(appId) === cp) this.checkpoints.delete(appId);
        throw e;
      }
      job.runningWith = { epoch: row.epoch, destination: row.destination_arn, role: row.role_arn };
      return;
    }
    const destination = buildDestination(spec, {
      local: (arn) => this.localDestination(arn, row.role_arn, appId),
      assume: async () => assumeRole(this.o.iam, row.role_arn, this.source(appId)),
    });
    const worker = new DeliveryWorker({
      appId,
      log: this.o.ingestLog,
      destination,
      clock: this.o.clock,
      checkpoint: {
        load: () => cp.position,
        save: (offset) => this.saveCheckpoint(appId, offset),
      },
      onRejected: (e) => this.rejected(appId, e),
    });
    this.workers.set(appId, { worker, destination });
    worker.start();
    job.runningWith = { epoch: row.epoch, destination: row.destination_arn, role: row.role_arn };
  }

  /** Stops the app's worker here; resolves once it no longer acts and its last checkpoint is written (or given up on). */
  private async stopWorker(appId: string, job: AppJob): Promise<void> {
    job.runningWith = undefined;
    if (this.threadCount > 0) {
      if (this.threads) await this.threadFor(appId).stop(appId);
    } else {
      const w = this.workers.get(appId);
      if (w) {
        this.workers.delete(appId);
        await w.worker.stop();
        w.destination.close();
      }
    }
    const cp = this.checkpoints.get(appId);
    if (!cp) return;
    // The next holder reads the checkpoint as soon as the lease is released: write the last one first.
    if (cp.writing) {
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = await Promise.race([cp.writing.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), CHECKPOINT_FLUSH_TIMEOUT_MS)))]);
      clearTimeout(timer);
      if (gaveUp) console.error(`pinstream: the last delivery checkpoint of app ${appId} (${cp.position}) was not written within ${CHECKPOINT_FLUSH_TIMEOUT_MS} ms; its records are delivered again from the one before`);
    }
    cp.fenced = true;
    if (this.checkpoints.get(appId) === cp) this.checkpoints.delete(appId);
  }

  /** The worker moved its checkpoint: kept here at once, written to the Store behind it (one write in flight per app, the latest wins). */
  private saveCheckpoint(appId: string, offset: number): void {
    const cp = this.checkpoints.get(appId);
    if (!cp || cp.fenced) return;
    cp.position = offset;
    cp.dirty = true;
    cp.writing ??= this.writeCheckpoints(appId, cp).finally(() => (cp.writing = undefined));
  }

  private async writeCheckpoints(appId: string, cp: CheckpointState): Promise<void> {
    while (cp.dirty && !cp.fenced) {
      cp.dirty = false;
      const position = cp.position;
      try {
        if ((await this.o.eventStreams.store.advance(appId, position, cp.epoch)) === undefined) {
          // Set since (a replay, a new destination) or removed: the restart that follows reads it anew.
          cp.fenced = true;
        }
      } catch (e) {
        console.error(`pinstream: saving the delivery checkpoint of app ${appId} failed (${(e as Error).message}); retrying in ${CHECKPOINT_RETRY_MS} ms`);
        cp.dirty = true;
        await new Promise((r) => setTimeout(r, CHECKPOINT_RETRY_MS));
      }
    }
  }

  private rejected(appId: string, e: { offset: number; eventId: string; endpointId: string; reason: string; at: number }): void {
    this.o.eventStreams.store.recordRejected(appId, e).catch((err) => console.error(`pinstream: keeping a rejected record of app ${appId} failed: ${(err as Error).message}`));
    const arn = this.o.eventStreams.get(appId)?.destination_arn ?? '';
    console.error(`pinstream: event ${e.eventId} of app ${appId} cannot be delivered to ${arn}: ${e.reason}`);
  }

  private source(appId: string) {
    const { region, accountId } = this.o.config;
    return { service: PINPOINT_SERVICE_PRINCIPAL, sourceArn: `arn:aws:mobiletargeting:${region}:${accountId}:apps/${appId}`, sourceAccount: accountId };
  }

  /** The embedded Kinesis in process, as the event stream's role. */
  private localDestination(arn: string, roleArn: string, appId: string): Destination {
    const local = this.o.localKinesis?.();
    if (!local) throw new Error('the embedded Kinesis is not running');
    return new LocalKinesisDestination(local, arn, () => assumeRole(this.o.iam, roleArn, this.source(appId)), this.o.config.region);
  }

  /**
   * Where a destination is and how to reach it, as data any thread can build the destination from.
   * Embedded destinations are called as the event stream's role, assumed by Pinpoint for the app
   * (aws:SourceArn = the app's ARN), so the role's trust and policies apply as in AWS. The session
   * is taken when the first call is made: a role that cannot be assumed fails that call, which
   * the worker reports in its health and retries, rather than failing the server's start.
   */
  private specFor(arn: string): DestinationSpec {
    if (this.o.localKinesis?.() && parseKinesisArn(arn) && this.isEmbedded(arn)) return { kind: 'local', arn };
    const route = this.route(arn);
    if (route) {
      return {
        kind: 'client',
        arn,
        endpoint: route.endpoint,
        region: route.region ?? arn.split(':')[3],
        ...(route.accessKeyId ? { credentials: { accessKeyId: route.accessKeyId, secretAccessKey: route.secretAccessKey! } } : {}),
        self: false,
      };
    }
    return { kind: 'client', arn, endpoint: this.o.serverUrl(), region: this.o.config.region, credentials: 'role', self: true };
  }

  /** The destination of an event stream, built on this thread (describe). */
  private destinationFor(arn: string, roleArn: string, appId: string): Destination {
    return buildDestination(this.specFor(arn), {
      local: (a) => this.localDestination(a, roleArn, appId),
      assume: async () => assumeRole(this.o.iam, roleArn, this.source(appId)),
    });
  }

  private route(arn: string): DestinationRoute | undefined {
    return this.o.config.destinations.find((r) => wildcardMatch(r.arn, arn, false));
  }
}
