// PINSTREAM_POSTGRES_URL's syntax, checked where configuration is parsed (src/config/config.ts)
// and again by the PostgreSQL adapter, without loading the `pg` driver.

/** PostgreSQL is unreachable, refuses us, or the URL is not one: start-up stops with this message. */
export class PostgresError extends Error {
  override name = 'PostgresError';
}

/** Checks a postgres:// URL and says what is wrong, naming PostgreSQL and never the password. */
export function parsePostgresUrl(url: string, label = 'PINSTREAM_POSTGRES_URL'): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new PostgresError(`${label}: not a URL; expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new PostgresError(`${label}: scheme "${u.protocol}" is not postgres: or postgresql: (PostgreSQL connection URL expected)`);
  }
  if (!u.hostname) throw new PostgresError(`${label}: names no PostgreSQL host`);
  if (u.pathname.length <= 1) throw new PostgresError(`${label}: names no PostgreSQL database (postgres://HOST/DATABASE)`);
  return u;
}
