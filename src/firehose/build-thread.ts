// The Firehose build thread (see build.ts): compresses object bodies and converts records to
// Parquet off the thread that answers requests; results go back as transferred buffers.

import { parentPort, type MessagePort } from 'node:worker_threads';
import { Channel, Transferable } from '../threads/channel.js';
import { compress, type CompressionFormat, type CompressOptions } from './compress.js';
import type { FirehoseRecord } from './destination.js';
import { toParquet, type ParquetOptions } from './parquet.js';
import type { ConversionSchema } from './schema.js';
import { asBuffer, transferable } from '../threads/transfer.js';
import { nameThisThread } from '../threads/thread-name.js';

function main(): void {
  nameThisThread('fh-build');
  const port = parentPort as MessagePort;
  new Channel(
    port,
    {
      compress(a: { format: CompressionFormat; body: Uint8Array; opts: CompressOptions }) {
        const out = transferable(compress(a.format, asBuffer(a.body), a.opts));
        return new Transferable(out, [out.buffer as ArrayBuffer]);
      },
      async parquet(a: { records: Array<FirehoseRecord & { data: Uint8Array }>; o: ParquetOptions; schema: ConversionSchema }) {
        const r = await toParquet(a.records.map((x) => ({ ...x, data: asBuffer(x.data) })), a.o, a.schema);
        if (!r.body) return r;
        const body = transferable(r.body);
        return new Transferable({ ...r, body }, [body.buffer as ArrayBuffer]);
      },
    },
    'the main thread',
  );
}

if (parentPort) main();
