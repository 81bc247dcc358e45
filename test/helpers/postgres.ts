// The real PostgreSQL the tests load into: 127.0.0.1:5432, database `test`, trust auth, as user
// `postgres` or else `root` (whichever this machine has). Tests skip with the returned reason when
// neither connects, rather than pretending to pass.

import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const PG_HOST = '127.0.0.1';
export const PG_PORT = 5432;
export const PG_DATABASE = 'test';
export const PG_USERS = ['postgres', 'root'];
/** Long enough for a loaded CI machine, short enough that an absent server skips quickly. */
export const PG_PROBE_TIMEOUT_MS = 3000;

export type PgTarget = { config: pg.ClientConfig & { user: string }; skip?: undefined } | { config?: undefined; skip: string };

let cached: Promise<PgTarget> | undefined;

/** A working connection config, or why there is none. Probed once per test process. */
export function postgresTarget(): Promise<PgTarget> {
  cached ??= probe();
  return cached;
}

async function probe(): Promise<PgTarget> {
  const failures: string[] = [];
  for (const user of PG_USERS) {
    const config = { host: PG_HOST, port: PG_PORT, database: PG_DATABASE, user, connectionTimeoutMillis: PG_PROBE_TIMEOUT_MS };
    const client = new pg.Client(config);
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      return { config };
    } catch (err) {
      failures.push(`${user}: ${(err as Error).message || String(err)}`);
    } finally {
      await client.end().catch(() => {});
    }
  }
  return { skip: `PostgreSQL not reachable at ${PG_HOST}:${PG_PORT}/${PG_DATABASE} (${failures.join('; ')})` };
}

/** Runs statements on a short-lived connection (table setup and checks in tests). */
export async function withClient<T>(config: pg.ClientConfig, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(config);
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A uniquely named database on the test PostgreSQL; `drop` removes it (closing any connection left). */
export async function pgDatabase(label = 'store'): Promise<{ url: string; drop(): Promise<void> }> {
  const { config } = await postgresTarget();
  if (!config) throw new Error('PostgreSQL not reachable');
  const name = `pinstream_${label}_${process.pid}_${randomBytes(4).toString('hex')}`;
  await withClient(config, (c) => c.query(`CREATE DATABASE ${name}`));
  return {
    url: `postgres://${config.user}@${config.host}:${config.port}/${name}`,
    drop: () => withClient(config, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => {}),
  };
}
