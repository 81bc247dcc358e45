// Building a Firehose object's bytes — compression (GZIP, ZIP, Snappy) and Parquet conversion —
// is CPU work of a size set by the buffering hints (up to 128 MiB per object). ObjectBuilder is
// the boundary: `inlineBuilder` does it on the caller's thread (consumerThreads 0), BuildThread in
// a worker thread (build-thread.ts), so deliverers never hold the thread that answers requests for
// the length of a gzip. Bodies cross as transferred buffers; a thread that dies fails the build,
// which the deliverer retries with backoff like any failed attempt, and is started again. The
// build thread serves deliverers that run on the main thread (JetStream logs with consumers
// threads on); those in the Firehose thread (thread.ts) build inline there.

import { SupervisedThread } from '../threads/supervised-thread.js';
import { asBuffer } from '../threads/transfer.js';
import { compress, type CompressionFormat, type CompressOptions } from './compress.js';
import type { FirehoseRecord } from './destination.js';
import { toParquet, type ConversionResult, type ParquetOptions } from './parquet.js';
import type { ConversionSchema } from './schema.js';

export interface ObjectBuilder {
  compress(format: CompressionFormat, body: Buffer, opts?: CompressOptions): Promise<Buffer>;
  parquet(records: FirehoseRecord[], o: ParquetOptions, schema: ConversionSchema): Promise<ConversionResult>;
}

export const inlineBuilder: ObjectBuilder = {
  compress: async (format, body, opts) => compress(format, body, opts),
  parquet: (records, o, schema) => toParquet(records, o, schema),
};

/** One object's build may take this long (a 128 MiB gzip on a loaded machine) before it fails and is retried. */
export const BUILD_TIMEOUT_MS = 300_000;
/** Times a dead build thread is started again before builds fail for good (until a restart). */
export const BUILD_THREAD_MAX_RESTARTS = 5;

/** Started with the first build: a server whose streams never compress nor convert runs no such thread. */
export class BuildThread implements ObjectBuilder {
  private started: SupervisedThread | undefined;

  private get thread(): SupervisedThread {
    return (this.started ??= new SupervisedThread({
      url: new URL('./build-thread.js', import.meta.url),
      name: 'firehose-build',
      workerData: {},
      handlers: {},
      maxRestarts: BUILD_THREAD_MAX_RESTARTS,
      onDeath: (e) => console.error(`pinstream: ${e.message}`),
    }));
  }

  /** The thread's id once started (tests), else -1. */
  get threadId(): number {
    return this.started?.threadId ?? -1;
  }

  async compress(format: CompressionFormat, body: Buffer, opts: CompressOptions = {}): Promise<Buffer> {
    if (format === 'UNCOMPRESSED') return body;
    // A copy: the transferred buffer is detached here, and the caller may still hold the body.
    const b = Buffer.from(Uint8Array.prototype.slice.call(body).buffer);
    return asBuffer(await this.thread.call<Uint8Array>('compress', { format, body: b, opts }, BUILD_TIMEOUT_MS, [b.buffer as ArrayBuffer]));
  }

  async parquet(records: FirehoseRecord[], o: ParquetOptions, schema: ConversionSchema): Promise<ConversionResult> {
    const r = await this.thread.call<ConversionResult>('parquet', { records, o, schema }, BUILD_TIMEOUT_MS);
    return r.body ? { ...r, body: asBuffer(r.body) } : r;
  }

  /** Ends the thread as a crash would (tests); the next build starts it again. */
  async crash(): Promise<void> {
    await this.started?.crash();
  }

  async close(): Promise<void> {
    await this.started?.close();
    this.started = undefined;
  }
}
