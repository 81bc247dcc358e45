// The Firehose thread: runs every delivery stream's deliverer (deliverer.ts, the same loop the main
// thread runs with consumerThreads 0) and its destination I/O — object stores, HTTP endpoints,
// Redshift's PostgreSQL, compression and Parquet conversion — off the thread that answers
// requests. Each deliverer reads its stream's log through a read-only view (src/log/segment-view.ts:
// the segment files directly, up to the committed end the main thread publishes). The main thread
// keeps the registry, placement and the stores of record: checkpoints and health snapshots go to
// it (firehose-thread.ts persists them); it answers what only it can: role checks (once per object
// written), Data Catalog tables (once per converted batch) and reads the view hands to the writer.
// Bodies are built here, inline: this thread is the one off the request path, and a second hop to
// the build thread would copy every body twice for no parallelism a single deliverer could use.

import { parentPort, threadId, workerData, type MessagePort } from 'node:worker_threads';
import { Channel } from '../threads/channel.js';
import { asBuffer } from '../threads/transfer.js';
import { clockIn } from '../clock.js';
import type { Json } from '../http/shape.js';
import type { LogRecord, ReadOptions, ReadResult } from '../log/log.js';
import { SegmentLogView } from '../log/segment-view.js';
import { Deliverer } from './deliverer.js';
import type { DestinationContext, FirehoseDestination } from './destination.js';
import { createDestination, refusedDestination } from './destinations/index.js';
import { bucketName, ObjectStores } from './objects/index.js';
import { RoleScopedStore } from './objects/role-scoped.js';
import { SchemaError, type ConversionSchema } from './schema.js';
import type { FirehoseThreadInit, RoleCheckArgs, SchemaArgs, StreamProgress, StreamRead, StreamStartArgs, StreamStopArgs } from './thread-wire.js';
import { nameThisThread } from '../threads/thread-name.js';

/** A call to the main thread (role check, table, a read the view hands over) that has not answered in this long fails, and the attempt is retried. */
export const FIREHOSE_MAIN_CALL_TIMEOUT_MS = 60_000;
/** How often each deliverer's health snapshot goes to the main thread besides with every checkpoint. */
export const FIREHOSE_HEALTH_PUSH_MS = 200;

interface Running {
  run: number;
  deliverer: Deliverer;
  destination: FirehoseDestination;
  view: SegmentLogView;
}


function main(): void {
  nameThisThread('firehose');
  const init = workerData as FirehoseThreadInit;
  const port = parentPort as MessagePort;
  const clock = clockIn(init.clock);
  // This thread's own stores (folders, S3 clients); the main thread keeps its own for its API.
  const objects = new ObjectStores(init.dataDir, init.buckets);
  const streams = new Map<string, Running>();
  let channel!: Channel;

  const push = (name: string, run: number, deliverer: Deliverer, checkpoint?: number) => {
    const args: StreamProgress = { name, run, threadId, snapshot: deliverer.snapshot(), ...(checkpoint !== undefined ? { checkpoint } : {}) };
    // Answered at once by the main thread; a failure (the channel is gone) ends this thread anyway.
    channel.call('progress', args, FIREHOSE_MAIN_CALL_TIMEOUT_MS).catch(() => undefined);
  };
  const timer = setInterval(() => {
    for (const [name, s] of streams) push(name, s.run, s.deliverer);
  }, FIREHOSE_HEALTH_PUSH_MS);

  function context(name: string, run: number): DestinationContext {
    return {
      clock,
      objects: (bucketArn, roleArn) =>
        new RoleScopedStore(objects.resolve(bucketArn), bucketName(bucketArn), roleArn, (action, resource) =>
          channel.call<string | undefined>('mayNot', { name, run, roleArn: roleArn!, action, resource } satisfies RoleCheckArgs, FIREHOSE_MAIN_CALL_TIMEOUT_MS),
        ),
      ...(init.catalog
        ? {
            schema: async (schemaConfiguration: Record<string, unknown>) => {
              try {
                return await channel.call<ConversionSchema>('schema', { name, run, schemaConfiguration } satisfies SchemaArgs, FIREHOSE_MAIN_CALL_TIMEOUT_MS);
              } catch (e) {
                // The adapter tells a table it cannot use (kept, retried, reported) by its class.
                if ((e as Error).name === 'SchemaError') throw new SchemaError((e as Error).message);
                throw e;
              }
            },
          }
        : {}),
    };
  }

  async function stop(name: string, flush: boolean): Promise<void> {
    const s = streams.get(name);
    if (!s) return;
    streams.delete(name);
    // Checkpoints the flush moves are reported (and saved) before the answer to this call.
    if (flush) await s.deliverer.close();
    else await s.deliverer.stop();
    await s.destination.close();
    await s.view.close();
    push(name, s.run, s.deliverer);
  }

  channel = new Channel(
    port,
    {
      async start(a: StreamStartArgs) {
        await stop(a.name, false);
        const view = new SegmentLogView(a.log, {
          async read(offset: number, options: ReadOptions): Promise<ReadResult> {
            const r = await channel.call<ReadResult>('read', { name: a.name, run: a.run, offset, options } satisfies StreamRead, FIREHOSE_MAIN_CALL_TIMEOUT_MS);
            return { nextOffset: r.nextOffset, records: r.records.map((x: LogRecord) => ({ ...x, payload: asBuffer(x.payload) })) };
          },
          // Checked by the main thread before the run starts (the gap arrives with it).
          checkConsumer: async () => a.gap,
        });
        let destination: FirehoseDestination;
        try {
          destination = a.refused !== undefined ? refusedDestination(a.kind, a.refused) : createDestination(a.kind, a.destination as Json, () => a.stream, context(a.name, a.run));
        } catch (e) {
          destination = refusedDestination(a.kind, (e as Error).message);
        }
        let saved = a.checkpoint;
        let deliverer!: Deliverer;
        deliverer = new Deliverer({
          stream: () => a.stream,
          log: view,
          destination,
          clock,
          ...(init.checkMs !== undefined ? { checkMs: init.checkMs } : {}),
          ...(a.gap ? { gap: a.gap } : {}),
          checkpoint: {
            load: () => saved,
            save: (offset) => {
              saved = offset;
              push(a.name, a.run, deliverer, offset);
            },
          },
        });
        streams.set(a.name, { run: a.run, deliverer, destination, view });
        deliverer.start();
        push(a.name, a.run, deliverer);
      },
      stop(a: StreamStopArgs) {
        return stop(a.name, a.flush);
      },
      async close() {
        clearInterval(timer);
        await Promise.all([...streams.keys()].map((name) => stop(name, false)));
        objects.close();
        setImmediate(() => {
          channel.fail(new Error('firehose thread is closed'));
          port.close();
        });
      },
    },
    'the main thread',
  );
}

if (parentPort) main();
