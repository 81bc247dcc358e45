// Column-wise appends of plain JS rows into a DuckDB table through data chunks: the loader's events
// (store.ts) and the rollup tables it writes every batch (activity_ids, the endpoint-profile
// staging table). One appender call per value (31 per event row, ~35% of the loader thread's time
// in appendVarchar/appendTimestamp/appendNull/endRow; a profile row 15 calls, an id 7) was the
// loader's largest cost. Here a column's fixed-width values and its validity mask are built in one
// buffer each and copied once (copy_data_to_vector), and each non-NULL string is one
// vector_assign_string_element call. The vectors are written through the C API bindings, not
// node-api's DuckDBVector classes: those cache every item, keep validity as BigUint64 words (a
// BigInt shift per value) and take timestamps as BigInt micros; together ~40% of the old appendRows.

import type { DuckDBConnection } from '@duckdb/node-api';
import { DuckDBDataChunk } from '@duckdb/node-api';
import duckdb from '@duckdb/node-bindings';

type Appender = Awaited<ReturnType<DuckDBConnection['createAppender']>>;

/** How a JS value becomes a column value; null is NULL. `date`: days since the epoch; `timestamp`: epoch ms (stored as micros). */
export type ChunkColumn<T> =
  | { kind: 'varchar'; get: (r: T) => string | null }
  | { kind: 'integer'; get: (r: T) => number | null }
  | { kind: 'bigint'; get: (r: T) => number | null }
  | { kind: 'timestamp'; get: (r: T) => number | null }
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
        const wide = col.kind === 'bigint' || col.kind === 'timestamp';
        const scale = col.kind === 'timestamp' ? 1000 : 1;
        for (let i = 0; i < n; i++) {
          const x = col.get(rows[start + i]);
          if (x === null) {
            validity[i >> 3] &= ~(1 << (i & 7));
            nulls++;
            continue;
          }
          const t = Math.trunc(x) * scale;
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
