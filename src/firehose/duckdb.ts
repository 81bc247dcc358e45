// Opening DuckDB for Firehose's file work (Parquet conversion in the server, `pinstream query` in
// the CLI), and quoting values into SQL. DuckDB is loaded on first use: the server only needs it
// when a delivery stream converts records, and `pinstream start` should not pay for it otherwise.

import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';

let shared: Promise<DuckDBInstance> | undefined;

/** A new in-memory database (the CLI: one per command, closed with it). */
export async function openDuckDB(): Promise<DuckDBInstance> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  return DuckDBInstance.create(':memory:');
}

/**
 * Runs `fn` on a fresh connection to one process-wide in-memory database (connections are cheap,
 * the database is not), closing the connection afterwards.
 */
export async function withDuckDB<T>(fn: (c: DuckDBConnection) => Promise<T>): Promise<T> {
  shared ??= openDuckDB();
  const c = await (await shared).connect();
  try {
    return await fn(c);
  } finally {
    c.closeSync();
  }
}

/** A SQL string literal. */
export function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** A DuckDB list literal of file paths. */
export function sqlPathList(paths: string[]): string {
  return `[${paths.map(sqlString).join(', ')}]`;
}
