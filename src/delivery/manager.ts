// Runs one delivery worker per configured event stream: picks each destination (the embedded
// Kinesis of this process, appended to in process as the event stream's role; the embedded
// Firehose reached over HTTP as any client would and signed with that role; or a configured remote
// endpoint such as real AWS), starts workers at boot and when settings change, and reports their
// health. Workers run in consumers threads (config consumerThreads; streams spread over them by
// app id) so delivery never takes turns with request work; with 0 threads they run on this one.

import type { Clock } from '../clock.js';
import type { Config, DestinationRoute } from '../config/config.js';
import type { Log } from '../log/log.js';
import type { LogShare } from '../log/segment-view.js';
import { wildcardMatch } from '../iam/policy.js';
import { assumeRole, PINPOINT_SERVICE_PRINCIPAL } from '../iam/roles.js';
import type { IamStore } from '../iam/store.js';
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
}

export class DeliveryManager implements DeliveryControl {
  /** Workers on this thread (consumerThreads 0). */
  private workers = new Map<string, { worker: DeliveryWorker; destination: Destination }>();
  /** Gaps found at start, shown before a thread's worker has reported (it finds the same one). */
  private readonly gaps = new Map<string, { records: number; message: string }>();
  /** Consumers threads, started with the first worker. */
  private threads: ConsumersThread[] | undefined;

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
            checkpoint: (id) => this.o.eventStreams.get(id)?.checkpoint ?? 0,
            saveCheckpoint: (id, offset) => this.o.eventStreams.saveCheckpoint(id, offset),
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
    for (const row of this.o.eventStreams.all()) {
      const gap = await this.o.ingestLog.checkConsumer(deliveryConsumer(row.app_id), row.checkpoint);
      if (gap) this.gaps.set(row.app_id, { records: gap.records, message: gap.message });
    }
  }

  async startAll(): Promise<void> {
    for (const row of this.o.eventStreams.all()) await this.restart(row.app_id);
  }

  async restart(appId: string): Promise<void> {
    await this.stop(appId);
    const row = this.o.eventStreams.get(appId);
    if (!row) return;
    const spec = this.specFor(row.destination_arn);
    if (this.threadCount > 0) {
      await this.threadFor(appId).start(appId, spec);
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
        load: () => this.o.eventStreams.get(appId)?.checkpoint ?? row.checkpoint,
        save: (offset) => this.o.eventStreams.saveCheckpoint(appId, offset),
      },
      onRejected: (e) => this.rejected(appId, e),
    });
    this.workers.set(appId, { worker, destination });
    worker.start();
  }

  async stop(appId: string): Promise<void> {
    if (this.threadCount > 0) {
      if (this.threads) await this.threadFor(appId).stop(appId);
      return;
    }
    const w = this.workers.get(appId);
    if (!w) return;
    this.workers.delete(appId);
    await w.worker.stop();
    w.destination.close();
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.workers.keys()].map((id) => this.stop(id)));
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

  private rejected(appId: string, e: { offset: number; eventId: string; endpointId: string; reason: string; at: number }): void {
    this.o.eventStreams.recordRejected(appId, e);
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
