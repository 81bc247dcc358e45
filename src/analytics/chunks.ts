// Column-wise appends of plain JS rows into a DuckDB table through data chunks, for the rollup
// tables the loader writes every batch (activity_ids, the endpoint-profile staging table). The same
// technique as store.ts appendRows (see APPEND_CHUNK_ROWS there for why): fixed-width values and
// the validity mask are built in one buffer per column and copied once, and only non-NULL strings
// cross into DuckDB one call each — instead of one appender call per value (a profile row was 15
// calls, an id 7: about 20 calls per loaded record when most endpoints are new).

import type { DuckDBConnection } from '@duckdb/node-api';
import { DuckDBDataChunk } from '@duckdb/node-api';
import duckdb from '@duckdb/node-bindings';

type Appender = Awaited<ReturnType<DuckDBConnection['createAppender']>>;

/** How a JS value becomes a column value; null is NULL. `date`: days since the epoch. */
export type ChunkColumn<T> =
  | { kind: 'varchar'; get: (r: T) => string | null }
  | { kind: 'integer'; get: (r: T) => number | null }
  | { kind: 'bigint'; get: (r: T) => number | null }
  | { kind: 'date'; get: (r: T) => number | null };

/** Rows per data chunk (DuckDB's vector size). */
export const CHUNK_ROWS = 2048;

const scratch = new DataView(new ArrayBuffer(CHUNK_ROWS * 8));
const validity = new Uint8Array(CHUNK_ROWS / 8);
const TWO_32 = 2 ** 32;

/**
 * Appends `rows` through `app` (created on the target table), one data chunk per CHUNK_ROWS rows;
 * `columns` in the table's column order. Numbers are written as integers (BIGINT: any safe integer).
 */
export function appendChunks<T>(app: Appender, rows: readonly T[], columns: ReadonlyArray<ChunkColumn<T>>): void {
  if (app.columnCount !== columns.length) throw new Error(`the table has ${app.columnCount} columns, the writer has ${columns.length}`);
  const types = columns.map((_, i) => app.columnType(i));
  for (let start = 0; start < rows.length; start += CHUNK_ROWS) {
    const n = Math.min(CHUNK_ROWS, rows.length - start);
    const chunk = DuckDBDataChunk.create(types, n);
    for (let c = 0; c < columns.length; c++) {
      const col = columns[c];
      const v = duckdb.data_chunk_get_vector(chunk.chunk, c);
      let nulls = 0;
      validity.fill(0xff);
      if (col.kind === 'varchar') {
        for (let i = 0; i < n; i++) {
          const x = col.get(rows[start + i]);
          if (x === null) {
            validity[i >> 3] &= ~(1 << (i & 7));
            nulls++;
          } else duckdb.vector_assign_string_element(v, i, x);
        }
      } else {
        const wide = col.kind === 'bigint';
        for (let i = 0; i < n; i++) {
          const x = col.get(rows[start + i]);
          if (x === null) {
            validity[i >> 3] &= ~(1 << (i & 7));
            nulls++;
            continue;
          }
          const t = Math.trunc(x);
          if (wide) {
            // int64 little-endian as two 32-bit halves (no BigInt).
            const hi = Math.floor(t / TWO_32);
            scratch.setUint32(i * 8, t - hi * TWO_32, true);
            scratch.setInt32(i * 8 + 4, hi, true);
          } else scratch.setInt32(i * 4, t, true);
        }
        duckdb.copy_data_to_vector(v, 0, scratch.buffer, 0, n * (wide ? 8 : 4));
      }
      if (nulls > 0) {
        duckdb.vector_ensure_validity_writable(v);
        duckdb.copy_data_to_vector_validity(v, 0, validity.buffer, 0, Math.ceil(n / 64) * 8);
      }
    }
    app.appendDataChunk(chunk);
  }
}
