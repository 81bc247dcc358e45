// The main thread's side of the Firehose thread (thread.ts): starts and stops delivery streams'
// deliverers in it, answers its calls — role checks, Data Catalog tables, reads the log view hands
// to the writer (damage) — persists the checkpoints it reports and keeps each deliverer's last
// health snapshot, whose lag is computed when asked against the log's end and the clock of then.
// It watches the thread: when it dies its open calls fail at once, its deliverers show the error
// in health, and it is started again (up to FIREHOSE_THREAD_MAX_RESTARTS times) with every
// deliverer resuming from its saved checkpoint — which only ever moved past records delivered,
// abandoned or rejected, so nothing is lost (batches in flight are delivered again).
//
// A sibling of the consumers thread (src/delivery/consumers-thread.ts) on the same
// SupervisedThread kit rather than more work in it: those threads are started with the ingest
// log's view and keyed by app, Firehose streams each bring their own log; and a destination that
// kills its thread (a native crash in DuckDB, say) stops Firehose delivery only, for one restart.

import { SupervisedThread } from '../threads/supervised-thread.js';
import { computeLag } from '../consumer/kit.js';
import type { Log, ReadOptions, ReadResult } from '../log/log.js';
import { healthAt, type DelivererHealth, type DelivererSnapshot } from './deliverer.js';
import type { ConversionSchema } from './schema.js';
import type { FirehoseThreadInit, RoleCheckArgs, SchemaArgs, StreamProgress, StreamRead, StreamStartArgs } from './thread-wire.js';

/** Times a dead Firehose thread is started again before its deliverers stay stopped (until a restart). */
export const FIREHOSE_THREAD_MAX_RESTARTS = 5;
/** Starting or stopping a deliverer in the thread may take this long (a stop flushes for up to CLOSE_FLUSH_TIMEOUT_MS). */
export const FIREHOSE_CONTROL_TIMEOUT_MS = 30_000;
/** Closing waits this long for the thread's deliverers to stop. */
export const FIREHOSE_CLOSE_TIMEOUT_MS = 30_000;

/** What the thread needs of the main thread, per delivery stream. */
export interface FirehoseThreadHost {
  /** The saved checkpoint a deliverer starts from. */
  checkpoint(name: string): number;
  saveCheckpoint(name: string, offset: number): void;
  mayNot(name: string, roleArn: string, action: string, resource: string): string | undefined;
  schema(name: string, schemaConfiguration: Record<string, unknown>): ConversionSchema;
}

interface Assigned {
  args: StreamStartArgs;
  /** The stream's log (the writer): its end for health, its own read for damage the view found. */
  log: Log;
  startedAt: number;
  snapshot?: DelivererSnapshot;
  /** The thread its last report came from. */
  reportedFrom?: number;
  /**
   * Stopping: a restarted thread does not start it again, its calls are still answered (a flush
   * writes objects). Stopped: its calls are refused; its last snapshot is kept for health (a
   * restart swapping destinations) until forget or the next start.
   */
  stopping?: boolean;
  stopped?: boolean;
}

export class FirehoseThread {
  private readonly thread: SupervisedThread;
  private readonly streams = new Map<string, Assigned>();
  private nextRun = 1;
  /** Why the thread last died (shown until the deliverer reports again). */
  private lastDeath: { message: string; at: number } | undefined;
  onCrash: (e: Error) => void = (e) => console.error(`pinstream: ${e.message}`);
  /** Tests: awaited before a role check is answered (holds the object being written, so a batch, in flight). */
  beforeRoleCheck: ((name: string) => Promise<void>) | undefined;

  constructor(
    private readonly host: FirehoseThreadHost,
    init: FirehoseThreadInit,
    private readonly now: () => number,
  ) {
    this.thread = new SupervisedThread({
      url: new URL('./thread.js', import.meta.url),
      name: 'firehose',
      workerData: init,
      handlers: this.handlers(),
      maxRestarts: FIREHOSE_THREAD_MAX_RESTARTS,
      onDeath: (e) => {
        this.lastDeath = { message: e.message, at: this.now() };
        for (const a of this.streams.values()) a.snapshot = undefined;
        this.onCrash(e);
      },
      // Every deliverer resumes from its saved checkpoint, under a new run (late calls of the old are refused).
      onRestart: async () => {
        for (const a of this.streams.values()) {
          if (a.stopping) continue;
          try {
            await this.begin(a, true);
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

  /** Starts a stream's deliverer over `log` (shared as args.log) from its saved checkpoint. */
  async start(args: Omit<StreamStartArgs, 'run' | 'checkpoint'>, log: Log): Promise<void> {
    await this.stop(args.name, false);
    const a: Assigned = { args: { ...args, run: 0, checkpoint: 0 }, log, startedAt: this.now() };
    this.streams.set(args.name, a);
    await this.begin(a);
  }

  /**
   * Stops a stream's deliverer, flushing its buffers once first when asked. The checkpoints it
   * reports until it has stopped are still saved: they arrive before the answer.
   */
  async stop(name: string, flush: boolean): Promise<void> {
    const a = this.streams.get(name);
    if (!a || a.stopping) return;
    a.stopping = true;
    try {
      await this.thread.call('stop', { name, flush }, FIREHOSE_CONTROL_TIMEOUT_MS);
    } catch {
      // A dead thread stopped it already (what it had not delivered is behind the checkpoint).
    }
    a.stopped = true;
  }

  /** Drops a stopped stream's last health (the stream is deleted, closed or moved off this node). */
  forget(name: string): void {
    if (this.streams.get(name)?.stopped) this.streams.delete(name);
  }

  /** The stream's delivery health now: the thread's last snapshot, lag against the log's end now. */
  health(name: string): DelivererHealth | undefined {
    const a = this.streams.get(name);
    if (!a) return undefined;
    const logEnd = a.log.endOffset();
    const now = this.now();
    const failure = this.thread.failure;
    const problem = failure ? { message: failure.message, at: this.lastDeath?.at ?? now } : (this.lastDeath && !a.snapshot ? this.lastDeath : undefined);
    if (a.snapshot) {
      const h = healthAt(a.snapshot, logEnd, now);
      return problem ? { ...h, state: 'stopped', lastError: problem } : a.stopped ? { ...h, state: 'stopped' } : h;
    }
    // Not reported yet (starting, or the thread is being restarted): stopped, at its checkpoint.
    const checkpoint = this.host.checkpoint(name);
    return {
      state: 'stopped',
      checkpoint,
      logEnd,
      ...computeLag({ checkpoint, startedAt: a.startedAt }, Math.max(logEnd, checkpoint), now),
      bufferedRecords: 0,
      bufferedBytes: 0,
      activePartitions: 0,
      deliveredRecords: 0,
      deliveredBatches: 0,
      retries: 0,
      abandonedBatches: 0,
      rejectedRecords: 0,
      checks: 0,
      ...(problem ? { lastError: problem } : {}),
      ...(a.args.gap ? { checkpointGap: { records: a.args.gap.records, message: a.args.gap.message } } : {}),
    };
  }

  async close(): Promise<void> {
    await this.thread.close('close', FIREHOSE_CLOSE_TIMEOUT_MS);
    this.streams.clear();
  }

  /** The id of the thread the stream's deliverer last reported from (tests), if it did. */
  reportedFrom(name: string): number | undefined {
    return this.streams.get(name)?.reportedFrom;
  }

  /** Kills the thread as a crash would (tests). */
  crash(): Promise<number> {
    return this.thread.crash();
  }

  private async begin(a: Assigned, restarting = false): Promise<void> {
    a.args = { ...a.args, run: this.nextRun++, checkpoint: this.host.checkpoint(a.args.name) };
    a.snapshot = undefined;
    a.startedAt = this.now();
    if (restarting) await this.thread.callNow('start', a.args, FIREHOSE_CONTROL_TIMEOUT_MS);
    else await this.thread.call('start', a.args, FIREHOSE_CONTROL_TIMEOUT_MS);
  }

  /** The stream's current run; a call of a stopped or restarted run is refused. */
  private current(name: string, run: number): Assigned {
    const a = this.streams.get(name);
    if (!a || a.args.run !== run || a.stopped) throw new Error(`the delivery of ${name} was stopped or restarted`);
    return a;
  }

  private handlers() {
    const host = this.host;
    return {
      progress: (p: StreamProgress) => {
        // Reports of a stopped run still count until its stop is answered (they come before it).
        const a = this.streams.get(p.name);
        if (!a || a.args.run !== p.run) return;
        if (p.checkpoint !== undefined) host.saveCheckpoint(p.name, p.checkpoint);
        a.snapshot = p.snapshot;
        a.reportedFrom = p.threadId;
        this.lastDeath = undefined;
      },
      read: (x: StreamRead): Promise<ReadResult> => {
        return this.current(x.name, x.run).log.read(x.offset, x.options as ReadOptions);
      },
      mayNot: async (x: RoleCheckArgs) => {
        if (this.beforeRoleCheck) await this.beforeRoleCheck(x.name);
        this.current(x.name, x.run);
        return host.mayNot(x.name, x.roleArn, x.action, x.resource);
      },
      schema: (x: SchemaArgs) => {
        this.current(x.name, x.run);
        return host.schema(x.name, x.schemaConfiguration);
      },
    };
  }
}
