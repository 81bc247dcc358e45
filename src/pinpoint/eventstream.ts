// Event-stream settings of an app (PutEventStream / GetEventStream / DeleteEventStream): validated
// before saving — ARN syntax, a destination that exists and is active, and a role that lets
// Pinpoint write to it — then saved in the metadata Store (eventstream-store.ts) and handed to
// delivery, which streams every event of the app there (on whichever node runs its worker).

import type { Clock } from '../clock.js';
import type { Log } from '../log/log.js';
import { badRequest, notFound } from '../http/errors.js';
import { reqString, type Json } from '../http/shape.js';
import type { WriteEventStream } from '../models/generated/pinpoint-inputs.js';
import { checkStreamRole, createStreamRole, destinationActions } from '../iam/roles.js';
import type { IamStore } from '../iam/store.js';
import type { EventStreamRow, EventStreamStore } from './eventstream-store.js';

export type { EventStreamRow } from './eventstream-store.js';

/** What event-stream settings need from delivery. */
export interface DeliveryControl {
  /** True when the destination is served by this process's embedded Kinesis/Firehose. */
  isEmbedded(destinationArn: string): boolean;
  /** True when a configured route sends this destination to another endpoint. */
  isRouted(destinationArn: string): boolean;
  /** Whether the destination exists and accepts writes; throws with a reason when it cannot be reached. */
  describe(destinationArn: string, roleArn: string, appId: string): Promise<{ active: boolean; status: string }>;
  /**
   * Applies the app's saved settings: (re)starts its worker from the saved checkpoint wherever it
   * is placed, or stops it when the stream is gone. Other nodes do the same on their own when the
   * change reaches them.
   */
  restart(appId: string): Promise<void>;
}

export class EventStreams {
  private delivery?: DeliveryControl;

  constructor(
    /** Settings, checkpoints and rejected records, on the metadata Store. */
    readonly store: EventStreamStore,
    private clock: Clock,
    private iam: IamStore,
    private ingestLog: Log,
    private appArn: (appId: string) => string,
    /** How long the ingest log keeps events (config retentionDays): the oldest a replay may start. */
    private retentionDays = 90,
  ) {}

  attach(delivery: DeliveryControl): void {
    this.delivery = delivery;
  }

  get(appId: string): EventStreamRow | undefined {
    return this.store.get(appId);
  }

  all(): EventStreamRow[] {
    return this.store.all();
  }

  require(appId: string): EventStreamRow {
    const row = this.get(appId);
    if (!row) throw notFound(`Resource not found: application ${appId} has no event stream`);
    return row;
  }

  /**
   * Saves the app's event stream. `passRole` is the caller's iam:PassRole check on the role
   * (throws when refused), made once both ARNs are well formed and before anything is looked up.
   */
  async put(appId: string, write: WriteEventStream, updatedBy: string, passRole: (roleArn: string) => void): Promise<EventStreamRow> {
    const destination = this.roleDestination(write);
    const roleArn = write.RoleArn;
    if (!ROLE_ARN.test(roleArn)) throw badRequest(`RoleArn "${roleArn}" is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)`);
    passRole(roleArn);
    const delivery = this.delivery!;
    const local = delivery.isEmbedded(destination);
    if (!local && !delivery.isRouted(destination)) {
      throw badRequest(
        `Destination stream validation failed: ${destination} is neither a stream of this server (region and account) nor ` +
          `matched by a configured destination route (PINSTREAM_DESTINATIONS)`,
      );
    }
    // Roles of this account are checked here; a remote destination's own account governs its role.
    const roleAccount = /^arn:aws[a-z-]*:iam::(\d{12}):/.exec(roleArn)?.[1];
    if (local || roleAccount === this.iam.accountId) {
      const missing = checkStreamRole(this.iam, roleArn, this.appArn(appId), destination);
      if (missing.length > 0) throw badRequest(`Destination stream validation failed: ${missing.join('; ')}`);
    }
    let state: { active: boolean; status: string };
    try {
      state = await delivery.describe(destination, roleArn, appId);
    } catch (e) {
      throw badRequest(`Destination stream validation failed: cannot describe ${destination}: ${(e as Error).message}`);
    }
    if (!state.active) throw badRequest(`Destination stream validation failed: ${destination} is ${state.status}, not ACTIVE`);

    const prev = this.get(appId);
    // The same destination keeps its place in the log; a new one starts with events from now on
    // (the checkpoint is set there under a new epoch: a worker still running elsewhere stops writing it).
    const now = this.clock.now();
    const row = await this.store.save(
      { app_id: appId, destination_arn: destination, role_arn: roleArn, last_modified: new Date(now).toISOString(), last_updated_by: updatedBy },
      { ...(prev && prev.destination_arn === destination ? {} : { checkpoint: this.ingestLog.endOffset() }), initial: this.ingestLog.endOffset(), epoch: now },
    );
    await delivery.restart(appId);
    return row;
  }

  async delete(appId: string): Promise<EventStreamRow> {
    const row = this.require(appId);
    await this.store.remove(appId);
    await this.delivery?.restart(appId);
    return row;
  }

  /**
   * Pinstream extension: delivers the app's events again from those that arrived at `startMs` on
   * (clamped to the oldest event the log still holds), by moving the checkpoint back and
   * restarting the worker. StartTime must be a past instant within the retention window.
   */
  async replay(appId: string, startTime: unknown): Promise<{ row: EventStreamRow; checkpoint: number; startMs: number }> {
    const row = this.require(appId);
    const raw = reqString(startTime, 'StartTime');
    const startMs = ISO_8601.test(raw) ? Date.parse(raw) : NaN;
    if (Number.isNaN(startMs)) {
      throw badRequest(`StartTime "${raw}" is not an ISO-8601 date-time (for example 2024-05-01T12:00:00Z)`);
    }
    const now = this.clock.now();
    if (startMs > now) {
      throw badRequest(`StartTime ${raw} is in the future; it must be at or before now (${new Date(now).toISOString()})`);
    }
    const oldest = now - this.retentionDays * 86_400_000;
    if (startMs < oldest) {
      throw badRequest(
        `StartTime ${raw} is older than the retention window of ${this.retentionDays} days; ` +
          `it must be at or after ${new Date(oldest).toISOString()}`,
      );
    }
    const checkpoint = Math.max(await this.ingestLog.offsetForTimestamp(startMs), this.ingestLog.startOffset());
    // Under a new epoch: the running worker (here or on another node) cannot save its own position
    // over this one, and restarts from it when the settings change reaches its node.
    await this.store.setCheckpoint(appId, checkpoint);
    await this.delivery!.restart(appId);
    return { row: this.get(appId) ?? row, checkpoint, startMs };
  }

  /** The ARN createRole gives the app's role (whether or not it exists yet), for authorizing it first. */
  streamRoleArn(appId: string): string {
    const name = streamRoleName(appId);
    const role = this.iam.getRole(name);
    return role ? this.iam.roleArn(role) : `arn:aws:iam::${this.iam.accountId}:role/${name}`;
  }

  /** The request's DestinationStreamArn, checked to be a Kinesis stream or Firehose delivery stream ARN. */
  roleDestination(write: { DestinationStreamArn?: unknown }): string {
    const destination = reqString(write.DestinationStreamArn, 'DestinationStreamArn');
    if (!destinationActions(destination)) {
      throw badRequest(
        `DestinationStreamArn "${destination}" must be a Kinesis data stream ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME) ` +
          `or a Firehose delivery stream ARN (arn:aws:firehose:REGION:ACCOUNT:deliverystream/NAME)`,
      );
    }
    return destination;
  }

  /** Pinstream extension ("Automatically create a role"): creates or repairs the app's event-stream role. */
  createRole(appId: string, write: Json): Promise<string> {
    const destination = this.roleDestination(write);
    // The region is the app ARN's (arn:aws:mobiletargeting:REGION:ACCOUNT:apps/ID).
    const region = this.appArn(appId).split(':')[3];
    return createStreamRole(this.iam, region, appId, destination);
  }

}

/** An IAM role ARN, path allowed (the partition, account and role are checked when it is used). */
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/(?:[\x21-\x7e]*\/)?[\w+=,.@-]+$/;

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** The role name createStreamRole (src/iam/roles.ts) gives an app's event-stream role. */
function streamRoleName(appId: string): string {
  return `pinpoint-event-stream-${appId}`.slice(0, 64);
}

/** The EventStream wire shape. */
export function eventStreamShape(row: EventStreamRow): Json {
  return {
    ApplicationId: row.app_id,
    DestinationStreamArn: row.destination_arn,
    RoleArn: row.role_arn,
    LastModifiedDate: row.last_modified,
    LastUpdatedBy: row.last_updated_by,
  };
}
