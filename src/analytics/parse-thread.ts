// The loader's parse thread (issue 16): a worker of the analytics thread that turns a batch of
// ingest-log records into event rows — the UTF-8 decode, JSON.parse of each record and recordToRow,
// about a third of the analytics thread's time when it did them itself. The analytics thread
// hands it the batch exactly as the main thread sent it (the PackedRead buffers, transferred on,
// not copied) and gets the rows back packed (row-pack.ts), then spends its own time on the rollups,
// the appender and DuckDB. One batch in flight per call: the loader has at most the batch being
// stored and the one prefetched.
//
// Failure: a parse thread that dies or does not answer within PARSE_TIMEOUT_MS fails the calls in
// flight (the loader's step fails and is retried after its backoff, reading the batch again) and
// is not used again: the loader parses on the analytics thread from then on, as before.

import { parentPort, Worker, workerData } from 'node:worker_threads';
import type { LogRecord } from '../log/log.js';
import { parseRecords, type ParsedBatch } from './loader.js';
import { packRows, unpackRows, type PackedRows } from './row-pack.js';
import type { PackedRead } from './thread.js';
import { nameThisThread } from '../threads/thread-name.js';

/** How long one batch may take to parse before the parse thread is given up. */
export const PARSE_TIMEOUT_MS = 60_000;
/** Old-generation heap of the parse thread: two batches (LOADER_BATCH_BYTES of payload each) and their rows. */
export const PARSE_THREAD_HEAP_MB = 512;

interface Request {
  id: number;
  read: PackedRead;
  from: number;
  loadedTo: number;
}

type Answer = { id: number; batch: Omit<ParsedBatch, 'rows'> & { rows: PackedRows } } | { id: number; error: string };

/** Packs records as one transferable batch: payloads back to back, and (offset, time, length) each. */
export function packRead(records: readonly LogRecord[], nextOffset: number, end: number, now: number): PackedRead {
  let bytes = 0;
  for (const r of records) bytes += r.payload.length;
  const data = new ArrayBuffer(bytes);
  const view = new Uint8Array(data);
  const meta = new Float64Array(records.length * 3);
  let pos = 0;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    view.set(r.payload, pos);
    pos += r.payload.length;
    meta[i * 3] = r.offset;
    meta[i * 3 + 1] = r.timestamp;
    meta[i * 3 + 2] = r.payload.length;
  }
  return { data, meta: meta.buffer, nextOffset, end, now };
}

/** The records of a packed read (views into its buffer). */
export function unpackRead(r: PackedRead): LogRecord[] {
  const meta = new Float64Array(r.meta);
  const data = Buffer.from(r.data);
  const out: LogRecord[] = new Array(meta.length / 3);
  for (let i = 0, pos = 0; i < out.length; i++) {
    const len = meta[i * 3 + 2];
    out[i] = { offset: meta[i * 3], timestamp: meta[i * 3 + 1], payload: data.subarray(pos, pos + len) };
    pos += len;
  }
  return out;
}

/** The analytics thread's handle on its parse thread. */
export class ParseThread {
  private readonly worker: Worker;
  private next = 1;
  private readonly pending = new Map<number, { resolve: (b: ParsedBatch) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  /** Set once the thread failed: it is not used again. */
  failure: Error | undefined;

  constructor() {
    this.worker = new Worker(new URL(import.meta.url), { workerData: { role: 'loader-parse' }, name: 'pinstream-loader-parse', resourceLimits: { maxOldGenerationSizeMb: PARSE_THREAD_HEAP_MB } });
    this.worker.on('message', (a: Answer) => {
      const p = this.pending.get(a.id);
      if (!p) return;
      this.pending.delete(a.id);
      clearTimeout(p.timer);
      if ('error' in a) p.reject(new Error(a.error));
      else {
        try {
          p.resolve({ ...a.batch, rows: unpackRows(a.batch.rows) });
        } catch (e) {
          // Rows that do not unpack would fail every retry the same way: parse here from now on.
          p.reject(e as Error);
          this.fail(new Error(`the loader's parse thread answered rows that do not unpack: ${(e as Error).message}`));
        }
      }
    });
    this.worker.on('error', (e) => this.fail(new Error(`the loader's parse thread failed: ${e.message}`)));
    this.worker.on('exit', (code) => this.fail(new Error(`the loader's parse thread exited (code ${code})`)));
  }

  get usable(): boolean {
    return this.failure === undefined;
  }

  /** Rows of one packed read (its buffers are transferred: the caller must not use `read` after). */
  parse(read: PackedRead, from: number, loadedTo: number): Promise<ParsedBatch> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.next++;
    return new Promise<ParsedBatch>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new Error(`the loader's parse thread did not answer in ${PARSE_TIMEOUT_MS} ms`));
        void this.worker.terminate();
      }, PARSE_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      const req: Request = { id, read, from, loadedTo };
      this.worker.postMessage(req, [read.data, read.meta]);
    });
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(this.failure);
      this.pending.delete(id);
    }
  }

  async close(): Promise<void> {
    this.fail(new Error("the loader's parse thread is closed"));
    await this.worker.terminate();
  }
}

if (parentPort && (workerData as { role?: string } | undefined)?.role === 'loader-parse') {
  nameThisThread('loader-parse');
  const port = parentPort;
  port.on('message', (req: Request) => {
    let answer: Answer;
    let transfer: ArrayBuffer[] = [];
    try {
      const batch = parseRecords(unpackRead(req.read), req.from, req.read.nextOffset, req.loadedTo);
      const rows = packRows(batch.rows);
      answer = { id: req.id, batch: { ...batch, rows } };
      transfer = [rows.numbers];
    } catch (e) {
      answer = { id: req.id, error: e instanceof Error ? e.message : String(e) };
    }
    port.postMessage(answer, transfer);
  });
}
