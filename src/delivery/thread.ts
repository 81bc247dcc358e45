// The consumers thread: runs event-stream delivery workers off the thread that answers requests.
// Each worker reads the ingest log through a read-only view (src/log/segment-view.ts: the files
// directly, up to the committed end the main thread publishes), selects and packs its app's
// records here, and sends each batch: to the embedded Kinesis through the main thread (one call
// per batch, the records in one transferred buffer: the main thread owns the shard logs), to any
// other destination (real AWS, the server's own HTTP endpoint) with its SDK client from this
// thread. Checkpoints and rejected records go to the main thread, which persists them (the Store);
// so does each worker's health snapshot. The main thread's side is consumers-thread.ts.

import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { systemClock } from '../clock.js';
import { Channel } from '../threads/channel.js';
import { asBuffer } from '../threads/transfer.js';
import type { Credentials } from '../iam/sigv4.js';
import { MAX_RECORD_BYTES } from '../kinesis/limits.js';
import type { LogRecord, OffsetGap, ReadOptions, ReadResult } from '../log/log.js';
import { SegmentLogView } from '../log/segment-view.js';
import type { DeliveryRecord, Destination, RecordOutcome } from './destination.js';
import { kinesisPartitionKey } from './kinesis-destination.js';
import { LOCAL_MAX_BATCH_BYTES, LOCAL_MAX_BATCH_RECORDS } from './local-kinesis-destination.js';
import { buildDestination } from './spec.js';
import { packBatch, unpackOutcomes, type ConsumersThreadInit, type PackedOutcomes, type ProgressArgs, type RejectedArgs, type StartArgs } from './wire.js';
import { DeliveryWorker } from './worker.js';
import { nameThisThread } from '../threads/thread-name.js';

/** A put into the embedded Kinesis that has not answered in this long fails (and is retried). */
export const PUT_TIMEOUT_MS = 60_000;
/** Reads the view hands to the writer (damage), checks of a checkpoint, role sessions. */
export const MAIN_CALL_TIMEOUT_MS = 60_000;
/** How often each worker's health snapshot is sent to the main thread besides with every checkpoint. */
export const HEALTH_PUSH_MS = 200;

/** The embedded Kinesis as seen from this thread: every batch is one call to the main thread. */
class PutProxy implements Destination {
  readonly kind = 'kinesis' as const;
  readonly maxRecords = LOCAL_MAX_BATCH_RECORDS;
  readonly maxBatchBytes = LOCAL_MAX_BATCH_BYTES;
  readonly maxRecordBytes = MAX_RECORD_BYTES;

  constructor(
    private readonly channel: Channel,
    private readonly appId: string,
    private readonly run: number,
    readonly arn: string,
  ) {}

  recordSize(r: DeliveryRecord): number {
    return r.data.length + Buffer.byteLength(kinesisPartitionKey(r.partitionKey));
  }

  async send(records: DeliveryRecord[]): Promise<RecordOutcome[]> {
    const batch = packBatch(this.appId, this.run, this.arn, records);
    const out = await this.channel.call<PackedOutcomes>('put', batch, PUT_TIMEOUT_MS, [batch.data]);
    return unpackOutcomes(out, records.length);
  }

  describe(): Promise<{ active: boolean; status: string }> {
    return this.channel.call('describe', { appId: this.appId }, MAIN_CALL_TIMEOUT_MS);
  }

  close(): void {}
}

function main(): void {
  nameThisThread('consumers');
  const init = workerData as ConsumersThreadInit;
  const port = parentPort as MessagePort;
  const workers = new Map<string, { worker: DeliveryWorker; destination: Destination; run: number }>();
  let channel!: Channel;
  const view = new SegmentLogView(init.ingest, {
    async read(offset: number, options: ReadOptions): Promise<ReadResult> {
      const r = await channel.call<ReadResult>('read', { offset, options }, MAIN_CALL_TIMEOUT_MS);
      return { nextOffset: r.nextOffset, records: r.records.map((x: LogRecord) => ({ ...x, payload: asBuffer(x.payload) })) };
    },
    checkConsumer(consumer: string, checkpoint: number): Promise<OffsetGap | undefined> {
      return channel.call('checkConsumer', { consumer, checkpoint }, MAIN_CALL_TIMEOUT_MS);
    },
  });
  const push = (appId: string, run: number, worker: DeliveryWorker, checkpoint?: number) => {
    const args: ProgressArgs = { appId, run, snapshot: worker.snapshot(), ...(checkpoint !== undefined ? { checkpoint } : {}) };
    // Answered at once by the main thread; a failure (the channel is gone) ends this thread anyway.
    channel.call('progress', args, MAIN_CALL_TIMEOUT_MS).catch(() => undefined);
  };
  const timer = setInterval(() => {
    for (const [appId, w] of workers) push(appId, w.run, w.worker);
  }, HEALTH_PUSH_MS);

  async function stop(appId: string): Promise<void> {
    const w = workers.get(appId);
    if (!w) return;
    workers.delete(appId);
    await w.worker.stop();
    w.destination.close();
    push(appId, w.run, w.worker);
  }

  channel = new Channel(
    port,
    {
      async start(a: StartArgs) {
        await stop(a.appId);
        const destination = buildDestination(a.spec, {
          local: (arn) => new PutProxy(channel, a.appId, a.run, arn),
          assume: () => channel.call<Credentials>('assume', { appId: a.appId, run: a.run }, MAIN_CALL_TIMEOUT_MS),
        });
        let worker!: DeliveryWorker;
        let saved = a.checkpoint;
        worker = new DeliveryWorker({
          appId: a.appId,
          log: view,
          destination,
          clock: systemClock,
          checkpoint: {
            load: () => saved,
            save: (offset) => {
              saved = offset;
              push(a.appId, a.run, worker, offset);
            },
          },
          onRejected: (entry) => {
            const args: RejectedArgs = { appId: a.appId, run: a.run, entry };
            channel.call('rejected', args, MAIN_CALL_TIMEOUT_MS).catch(() => undefined);
          },
        });
        workers.set(a.appId, { worker, destination, run: a.run });
        worker.start();
        push(a.appId, a.run, worker);
      },
      stop(a: { appId: string }) {
        return stop(a.appId);
      },
      async close() {
        clearInterval(timer);
        await Promise.all([...workers.keys()].map(stop));
        await view.close();
        setImmediate(() => {
          channel.fail(new Error('consumers thread is closed'));
          port.close();
        });
      },
    },
    'the main thread',
  );
}

if (parentPort) main();
