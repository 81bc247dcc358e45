// Reads the records of one archived object: JSON lines (plain or gzip, recognized by their first
// bytes rather than the key's extension, as Firehose keys may have none) split with a bounded line
// buffer, or Parquet rows read by DuckDB in chunks and turned back into JSON. Yields each line (or
// row) with its 1-based number so malformed ones can be reported as object+line and a resumed
// import can start after the last line it committed.

import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { DuckDBConnection } from '@duckdb/node-api';
import { sqlString } from '../firehose/duckdb.js';
import type { SourceReader } from './source.js';

/** A line longer than this is malformed (a Pinpoint event is at most 1,000 KB; the record adds the endpoint). */
export const MAX_HISTORY_LINE_BYTES = 1_200_000;

const GZIP_MAGIC = [0x1f, 0x8b];
const PARQUET_MAGIC = Buffer.from('PAR1');

export type ObjectFormat = 'json' | 'gzip' | 'parquet';
export type Line = { line: number; text: string } | { line: number; error: string };

/** The stream's first chunk (for sniffing) and the stream itself, still readable after it. */
async function firstChunk(stream: Readable): Promise<{ first: Buffer; rest: Readable }> {
  const first = await new Promise<Buffer>((resolve, reject) => {
    const onReadable = () => {
      const c = stream.read() as Buffer | null;
      if (c === null) return;
      cleanup();
      resolve(c);
    };
    const onEnd = () => (cleanup(), resolve(Buffer.alloc(0)));
    const onError = (e: Error) => (cleanup(), reject(e));
    const cleanup = () => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
    };
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('error', onError);
  });
  return { first, rest: stream };
}

export function sniff(first: Buffer): ObjectFormat {
  if (first.length >= 4 && first.subarray(0, 4).equals(PARQUET_MAGIC)) return 'parquet';
  if (first.length >= 2 && first[0] === GZIP_MAGIC[0] && first[1] === GZIP_MAGIC[1]) return 'gzip';
  return 'json';
}

/**
 * The object's lines after line `after` (0: all). `onFormat` learns the format before the first
 * line. Parquet needs a DuckDB connection and a folder for spooled copies.
 */
export async function* readObject(
  src: SourceReader,
  key: string,
  after: number,
  duck: () => Promise<DuckDBConnection>,
  tmpDir: string,
  onFormat: (f: ObjectFormat) => void = () => {},
): AsyncGenerator<Line> {
  const opened = await firstChunk(await src.open(key));
  const format = sniff(opened.first);
  onFormat(format);
  if (format === 'parquet') {
    yield* parquetRows(await src.localFile(key, tmpDir, opened), after, await duck());
    return;
  }
  let stream: AsyncIterable<Buffer>;
  if (format === 'gzip') {
    const gunzip = createGunzip();
    gunzip.write(opened.first);
    opened.rest.pipe(gunzip);
    opened.rest.on('error', (e) => gunzip.destroy(e));
    stream = gunzip;
  } else {
    stream = (async function* () {
      yield opened.first;
      yield* opened.rest as AsyncIterable<Buffer>;
    })();
  }
  yield* splitLines(stream, after);
}

/** Lines of a byte stream; a line over MAX_HISTORY_LINE_BYTES is an error line (its bytes are not kept). */
export async function* splitLines(stream: AsyncIterable<Buffer>, after: number, maxLineBytes = MAX_HISTORY_LINE_BYTES): AsyncGenerator<Line> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let oversize = false;
  let line = 0;
  const emit = (tail: Buffer): Line | undefined => {
    line++;
    const wasOversize = oversize || pendingBytes + tail.length > maxLineBytes;
    const parts = pending;
    pending = [];
    pendingBytes = 0;
    oversize = false;
    if (line <= after) return undefined;
    if (wasOversize) return { line, error: `line longer than ${maxLineBytes} bytes` };
    const text = (parts.length === 0 ? tail : Buffer.concat([...parts, tail])).toString('utf8').trim();
    return text === '' ? undefined : { line, text };
  };
  for await (const chunk of stream) {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
      const out = emit(chunk.subarray(start, nl));
      if (out) yield out;
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      if (oversize || pendingBytes + rest.length > maxLineBytes) {
        oversize = true;
        pending = [];
        pendingBytes = 0;
      } else {
        // Copy: the chunk's buffer may be reused by the stream.
        pending.push(Buffer.from(rest));
        pendingBytes += rest.length;
      }
    }
  }
  if (pendingBytes > 0 || oversize) {
    const out = emit(Buffer.alloc(0));
    if (out) yield out;
  }
}

async function* parquetRows(file: { path: string; release: () => Promise<void> }, after: number, conn: DuckDBConnection): AsyncGenerator<Line> {
  try {
    // Each row as one JSON object (structs, maps and JSON columns nested as they are); the row
    // number comes along as a field no record reader looks at.
    const sql =
      `SELECT file_row_number, to_json(t)::VARCHAR FROM read_parquet(${sqlString(file.path)}, file_row_number = true) t ` +
      `WHERE file_row_number >= ${Math.trunc(after)}`;
    let result;
    try {
      result = await conn.stream(sql);
    } catch (e) {
      yield { line: after + 1, error: `not a readable Parquet file: ${(e as Error).message}` };
      return;
    }
    for (let chunk = await result.fetchChunk(); chunk && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
      for (const [n, text] of chunk.getRows()) yield { line: Number(n) + 1, text: String(text) };
    }
  } finally {
    await file.release();
  }
}
