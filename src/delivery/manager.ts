// Runs one delivery worker per configured event stream: picks each destination's client (the
// embedded Kinesis of this process called in process as the event stream's role, the embedded
// Firehose reached over HTTP as any client would and signed with that role, or a configured remote
// endpoint such as real AWS), starts workers at boot and when settings change, and reports their
// health.

import type { Clock } from '../clock.js';
import type { Config, DestinationRoute } from '../config/config.js';
import type { Log } from '../log/log.js';
import { wildcardMatch } from '../iam/policy.js';
import { assumeRole, PINPOINT_SERVICE_PRINCIPAL } from '../iam/roles.js';
import type { IamStore } from '../iam/store.js';
import type { DeliveryControl, EventStreams } from '../pinpoint/eventstream.js';
import type { Destination } from './destination.js';
import { destinationFor, parseKinesisArn, selfHttpHandler, type ClientConfig } from './kinesis-destination.js';
import { LocalKinesisDestination, type LocalKinesis } from './local-kinesis-destination.js';
import { DeliveryWorker, deliveryConsumer, type WorkerHealth } from './worker.js';

export interface DeliveryManagerOptions {
  config: Config;
  /** This server's own URL, known once it listens. */
  serverUrl: () => string;
  iam: IamStore;
  eventStreams: EventStreams;
  ingestLog: Log;
  clock: Clock;
  /**
   * The embedded Kinesis service with its protocol's authorization, once built: embedded stream
   * destinations call it in process. Without it they are reached over HTTP like Firehose.
   */
  localKinesis?: () => LocalKinesis | undefined;
}

export class DeliveryManager implements DeliveryControl {
  private workers = new Map<string, { worker: DeliveryWorker; destination: Destination }>();

  constructor(private o: DeliveryManagerOptions) {}

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
    for (const row of this.o.eventStreams.all()) await this.o.ingestLog.checkConsumer(deliveryConsumer(row.app_id), row.checkpoint);
  }

  async startAll(): Promise<void> {
    for (const row of this.o.eventStreams.all()) await this.restart(row.app_id);
  }

  async restart(appId: string): Promise<void> {
    await this.stop(appId);
    const row = this.o.eventStreams.get(appId);
    if (!row) return;
    const destination = this.destinationFor(row.destination_arn, row.role_arn, appId);
    const worker = new DeliveryWorker({
      appId,
      log: this.o.ingestLog,
      destination,
      clock: this.o.clock,
      checkpoint: {
        load: () => this.o.eventStreams.get(appId)?.checkpoint ?? row.checkpoint,
        save: (offset) => this.o.eventStreams.saveCheckpoint(appId, offset),
      },
      onRejected: (e) => {
        this.o.eventStreams.recordRejected(appId, e);
        console.error(`pinstream: event ${e.eventId} of app ${appId} cannot be delivered to ${row.destination_arn}: ${e.reason}`);
      },
    });
    this.workers.set(appId, { worker, destination });
    worker.start();
  }

  async stop(appId: string): Promise<void> {
    const w = this.workers.get(appId);
    if (!w) return;
    this.workers.delete(appId);
    await w.worker.stop();
    w.destination.close();
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.workers.keys()].map((id) => this.stop(id)));
  }

  health(appId: string): WorkerHealth | undefined {
    return this.workers.get(appId)?.worker.health();
  }

  /** The embedded Kinesis in process when it is this server's own stream, else an SDK client. */
  private destinationFor(arn: string, roleArn: string, appId: string): Destination {
    const local = this.o.localKinesis?.();
    if (local && parseKinesisArn(arn) && this.isEmbedded(arn)) {
      const { region, accountId } = this.o.config;
      const source = { service: PINPOINT_SERVICE_PRINCIPAL, sourceArn: `arn:aws:mobiletargeting:${region}:${accountId}:apps/${appId}`, sourceAccount: accountId };
      return new LocalKinesisDestination(local, arn, () => assumeRole(this.o.iam, roleArn, source), region);
    }
    return destinationFor(arn, this.clientConfig(arn, roleArn, appId));
  }

  private route(arn: string): DestinationRoute | undefined {
    return this.o.config.destinations.find((r) => wildcardMatch(r.arn, arn, false));
  }

  /**
   * Embedded destinations are called as the event stream's role, assumed by Pinpoint for the app
   * (aws:SourceArn = the app's ARN), so the role's trust and policies apply as in AWS. The session
   * is taken when the first call is made: a role that cannot be assumed fails that call, which
   * the worker reports in its health and retries, rather than failing the server's start.
   */
  private clientConfig(arn: string, roleArn: string, appId: string): ClientConfig {
    const route = this.route(arn);
    const arnRegion = arn.split(':')[3];
    if (route) {
      return {
        endpoint: route.endpoint,
        region: route.region ?? arnRegion,
        credentials: route.accessKeyId ? { accessKeyId: route.accessKeyId, secretAccessKey: route.secretAccessKey! } : undefined,
      };
    }
    const { region, accountId } = this.o.config;
    const source = { service: PINPOINT_SERVICE_PRINCIPAL, sourceArn: `arn:aws:mobiletargeting:${region}:${accountId}:apps/${appId}`, sourceAccount: accountId };
    return { endpoint: this.o.serverUrl(), region, credentials: async () => assumeRole(this.o.iam, roleArn, source), requestHandler: selfHttpHandler() };
  }
}
