// The main thread's side of one consumers thread (thread.ts): starts and stops event-stream
// workers in it, answers its calls — puts into the embedded Kinesis (one batch per call, the owner
// of the shard logs appends), reads the ingest log's view could not do itself (damage), consumer
// checks, role sessions — persists the checkpoints and rejected records it reports, and keeps each
// worker's last health snapshot. It watches the thread: when it dies, its open calls fail at once,
// its workers show the error in health, and it is started again (up to CONSUMERS_THREAD_MAX_RESTARTS
// times) with every worker resuming from its saved checkpoint — which only ever moved past records
// the destination had accepted, so nothing is lost (records in flight are delivered again).

import { SupervisedThread } from '../threads/supervised-thread.js';
import type { Credentials } from '../iam/sigv4.js';
import type { Log, ReadOptions } from '../log/log.js';
import type { Destination } from './destination.js';
import type { DestinationSpec } from './spec.js';
import { packOutcomes, unpackBatch, type ConsumersThreadInit, type PackedBatch, type PackedOutcomes, type ProgressArgs, type RejectedArgs, type StartArgs } from './wire.js';
import type { DeliverySnapshot, RejectedEntry } from './worker.js';

/** Times a dead consumers thread is started again before its workers stay stopped (until a restart). */
export const CONSUMERS_THREAD_MAX_RESTARTS = 5;
/** Starting or stopping a worker in the thread may take this long. */
export const CONSUMERS_CONTROL_TIMEOUT_MS = 30_000;
/** Closing waits this long for the thread's workers to stop. */
export const CONSUMERS_CLOSE_TIMEOUT_MS = 30_000;

/** What the thread needs of the main thread, per app. */
export interface ConsumersHost {
  ingestLog: Log;
  /** The ingest log's shared state, for the thread's read-only view. */
  share: ConsumersThreadInit['ingest'];
  /** The saved checkpoint an app's worker starts from. */
  checkpoint(appId: string): number;
  saveCheckpoint(appId: string, offset: number): void;
  rejected(appId: string, entry: RejectedEntry): void;
  /** The embedded Kinesis destination of an app's event stream (kept while the worker runs). */
  local(appId: string, arn: string): Destination;
  assume(appId: string): Credentials;
}

interface Assigned {
  run: number;
  spec: DestinationSpec;
  snapshot?: DeliverySnapshot;
  local?: Destination;
  /** The checkpoint as this side last saved it (or started the worker from). */
  saved?: number;
  /**
   * Someone else saved the checkpoint since (an event-stream replay, before it restarts the
   * worker): the worker's reports still in flight must not overwrite it.
   */
  frozen?: boolean;
}

export class ConsumersThread {
  private readonly thread: SupervisedThread;
  private readonly apps = new Map<string, Assigned>();
  private nextRun = 1;
  /** Why the thread last died (shown until a worker reports again). */
  private lastDeath: { message: string; at: number } | undefined;
  /** Tests: awaited before each put is appended (holds a batch in flight). */
  beforePut: ((appId: string, records: number) => Promise<void>) | undefined;
  onCrash: (e: Error) => void = (e) => console.error(`pinstream: ${e.message}`);

  constructor(
    private readonly host: ConsumersHost,
    index: number,
    private readonly now: () => number,
  ) {
    const init: ConsumersThreadInit = { ingest: host.share, index };
    this.thread = new SupervisedThread({
      url: new URL('./thread.js', import.meta.url),
      name: `consumers-${index}`,
      workerData: init,
      handlers: this.handlers(),
      maxRestarts: CONSUMERS_THREAD_MAX_RESTARTS,
      onDeath: (e) => {
        this.lastDeath = { message: e.message, at: this.now() };
        for (const a of this.apps.values()) {
          a.snapshot = undefined;
          a.local?.close();
          a.local = undefined;
        }
        this.onCrash(e);
      },
      // Every worker resumes from its saved checkpoint, under a new run (late calls of the old are refused).
      onRestart: async () => {
        for (const [appId, a] of this.apps) {
          a.run = this.nextRun++;
          try {
            await this.begin(appId, a, true);
          } catch (err) {
            this.onCrash(err as Error);
          }
        }
      },
    });
  }

  get threadId(): number {
    return this.thread.threadId;
  }

  /** Starts (or restarts) an app's worker from its saved checkpoint. */
  async start(appId: string, spec: DestinationSpec): Promise<void> {
    await this.stop(appId);
    const a: Assigned = { run: this.nextRun++, spec };
    this.apps.set(appId, a);
    await this.begin(appId, a);
  }

  /**
   * Stops an app's worker. The checkpoints it reports until it has stopped are still saved (they
   * arrive before the answer), unless the saved checkpoint was changed meanwhile by someone else.
   */
  async stop(appId: string): Promise<void> {
    const a = this.apps.get(appId);
    if (!a) return;
    a.frozen ||= a.saved !== undefined && this.host.checkpoint(appId) !== a.saved;
    try {
      await this.thread.call('stop', { appId }, CONSUMERS_CONTROL_TIMEOUT_MS);
    } catch {
      // A dead thread stopped it already.
    }
    if (this.apps.get(appId) === a) this.apps.delete(appId);
    a.local?.close();
  }

  /** The last health snapshot of an app's worker (undefined when it has none). */
  snapshot(appId: string): DeliverySnapshot | undefined {
    const a = this.apps.get(appId);
    if (!a) return undefined;
    const failure = this.thread.failure;
    const problem = failure ? { message: failure.message, at: this.lastDeath?.at ?? this.now() } : undefined;
    if (!a.snapshot) {
      // Not reported yet (starting, or the thread is being restarted): stopped, at its checkpoint.
      const checkpoint = this.host.checkpoint(appId);
      return {
        state: 'stopped',
        checkpoint,
        retries: 0,
        delivered: 0,
        rejected: 0,
        lag: { checkpoint, startedAt: this.now() },
        ...(problem ?? this.lastDeath ? { lastError: problem ?? this.lastDeath } : {}),
      };
    }
    return problem ? { ...a.snapshot, state: 'stopped', lastError: problem } : a.snapshot;
  }

  async close(): Promise<void> {
    await this.thread.close('close', CONSUMERS_CLOSE_TIMEOUT_MS);
    for (const a of this.apps.values()) a.local?.close();
    this.apps.clear();
  }

  /** Kills the thread as a crash would (tests). */
  crash(): Promise<number> {
    return this.thread.crash();
  }

  private async begin(appId: string, a: Assigned, restarting = false): Promise<void> {
    const args: StartArgs = { appId, run: a.run, spec: a.spec, checkpoint: this.host.checkpoint(appId) };
    a.saved = args.checkpoint;
    a.frozen = false;
    if (restarting) await this.thread.callNow('start', args, CONSUMERS_CONTROL_TIMEOUT_MS);
    else await this.thread.call('start', args, CONSUMERS_CONTROL_TIMEOUT_MS);
  }

  private current(appId: string, run: number): Assigned {
    const a = this.apps.get(appId);
    if (!a || a.run !== run) throw new Error(`the event stream of app ${appId} was stopped or restarted`);
    return a;
  }

  private handlers() {
    const host = this.host;
    return {
      put: async (b: PackedBatch): Promise<PackedOutcomes> => {
        if (this.beforePut) await this.beforePut(b.appId, b.lengths.length);
        // A batch of a run that was stopped, or of a thread that died, is not appended: the run
        // that follows sends it again from its checkpoint, in order.
        const a = this.current(b.appId, b.run);
        a.local ??= host.local(b.appId, b.arn);
        return packOutcomes(await a.local.send(unpackBatch(b)));
      },
      describe: (x: { appId: string }) => {
        const a = this.apps.get(x.appId);
        if (!a) throw new Error(`no event stream of app ${x.appId}`);
        a.local ??= host.local(x.appId, a.spec.arn);
        return a.local.describe();
      },
      read: (x: { offset: number; options: ReadOptions }) => host.ingestLog.read(x.offset, x.options),
      checkConsumer: (x: { consumer: string; checkpoint: number }) => host.ingestLog.checkConsumer(x.consumer, x.checkpoint),
      assume: (x: { appId: string; run: number }) => {
        this.current(x.appId, x.run);
        return host.assume(x.appId);
      },
      progress: (p: ProgressArgs) => {
        const a = this.apps.get(p.appId);
        if (!a || a.run !== p.run) return;
        if (p.checkpoint !== undefined && !a.frozen) {
          host.saveCheckpoint(p.appId, p.checkpoint);
          a.saved = p.checkpoint;
        }
        a.snapshot = p.snapshot;
      },
      rejected: (r: RejectedArgs) => {
        if (this.apps.get(r.appId)?.run !== r.run) return;
        host.rejected(r.appId, r.entry);
      },
    };
  }
}
