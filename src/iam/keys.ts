// Access keys: the secrets SigV4 verification needs, and the bootstrap admin key created on first
// start. Lookups are cached in memory because every request does one.

import { randomBytes } from 'node:crypto';
import type { Db } from '../store/db.js';
import type { Credentials } from './sigv4.js';

export const ADMIN_USER = 'admin';
const KEY_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export class AccessKeys {
  private cache = new Map<string, Credentials | null>();
  constructor(private db: Db) {}

  lookup = (accessKeyId: string): Credentials | undefined => {
    let c = this.cache.get(accessKeyId);
    if (c === undefined) {
      const row = this.db
        .prepare(`SELECT secret FROM access_keys WHERE access_key_id = ? AND status = 'Active'`)
        .get(accessKeyId) as { secret: string } | undefined;
      c = row ? { accessKeyId, secretAccessKey: row.secret } : null;
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(accessKeyId, c);
    }
    return c ?? undefined;
  };

  /**
   * Makes sure an admin key exists. With a configured key it is (re)stored; otherwise one is
   * generated once. Returns the key and whether it was created now (its secret is shown only then).
   */
  ensureAdmin(configured?: Credentials): { credentials: Credentials; created: boolean } {
    if (configured) {
      this.db
        .prepare(
          `INSERT INTO access_keys (access_key_id, secret, user_name, create_date) VALUES (?, ?, ?, ?)
           ON CONFLICT(access_key_id) DO UPDATE SET secret = excluded.secret, status = 'Active'`,
        )
        .run(configured.accessKeyId, configured.secretAccessKey, ADMIN_USER, new Date().toISOString());
      this.cache.delete(configured.accessKeyId);
      return { credentials: configured, created: false };
    }
    const row = this.db
      .prepare(`SELECT access_key_id, secret FROM access_keys WHERE user_name = ? ORDER BY create_date LIMIT 1`)
      .get(ADMIN_USER) as { access_key_id: string; secret: string } | undefined;
    if (row) return { credentials: { accessKeyId: row.access_key_id, secretAccessKey: row.secret }, created: false };
    const credentials = generateKey();
    this.db
      .prepare(`INSERT INTO access_keys (access_key_id, secret, user_name, create_date) VALUES (?, ?, ?, ?)`)
      .run(credentials.accessKeyId, credentials.secretAccessKey, ADMIN_USER, new Date().toISOString());
    return { credentials, created: true };
  }
}

export function generateKey(): Credentials {
  const bytes = randomBytes(16);
  let id = 'PSAK';
  for (const b of bytes) id += KEY_ID_ALPHABET[b & 31];
  return { accessKeyId: id, secretAccessKey: randomBytes(30).toString('base64').replace(/[+/]/g, 'x') };
}
