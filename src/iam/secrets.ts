// Secrets at rest: AES-256-GCM under the data directory's master key (`master.key`, mode 0600,
// created on first use), or under the key file every node of a cluster shares
// (PINSTREAM_MASTER_KEY_FILE: same format, never created, checked at start). IAM secret keys, Firehose destination credentials (a Redshift
// Password, an HTTP endpoint AccessKey) and the data keys of encrypted Kinesis streams are stored
// sealed, so a copy of the SQLite file (or of the shard logs) alone reveals none of them.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class SecretBox {
  private readonly master: Buffer;
  private readonly keyFile: string;

  /** `keyFile`: a shared key file instead of the data directory's own `master.key`. */
  constructor(
    private readonly dataDir: string,
    keyFile?: string,
  ) {
    this.keyFile = keyFile ?? join(dataDir, MASTER_KEY_FILE);
    this.master = keyFile ? readMasterKey(keyFile) : masterKey(dataDir);
  }

  /** [iv 12][tag 16][ciphertext] */
  seal(secret: string): Buffer {
    return this.sealBytes(Buffer.from(secret, 'utf8'));
  }

  open(sealed: Buffer): string {
    return this.openBytes(sealed).toString('utf8');
  }

  /**
   * Seals bytes; `context` (authenticated, not stored) binds the sealed value to where it belongs,
   * so it opens only under the same context (a data key copied to another stream's row does not).
   */
  sealBytes(plain: Buffer, context?: string): Buffer {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.master, iv);
    if (context !== undefined) c.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([c.update(plain), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), body]);
  }

  /** Throws MasterKeyError when the value was not sealed with this master key (and context). */
  openBytes(sealed: Buffer, context?: string): Buffer {
    try {
      const d = createDecipheriv('aes-256-gcm', this.master, sealed.subarray(0, 12));
      if (context !== undefined) d.setAAD(Buffer.from(context, 'utf8'));
      d.setAuthTag(sealed.subarray(12, 28));
      return Buffer.concat([d.update(sealed.subarray(28)), d.final()]);
    } catch {
      // Node's own text ("Unsupported state or unable to authenticate data") names neither the
      // file nor the likely cause; a start-up that dies on it must say what to restore.
      throw new MasterKeyError(
        `a secret stored for ${this.dataDir} does not open with the master key ${this.keyFile}: ` +
          'the key file was replaced, or lost and created afresh at a start. Restore the master key these secrets were written with.',
      );
    }
  }
}

/** The master key does not open what was sealed with it: replaced or lost, never silently ignored. */
export class MasterKeyError extends Error {
  override name = 'MasterKeyError';
}

export const MASTER_KEY_FILE = 'master.key';

/** The data directory's master key for secrets at rest, created on first use. */
function masterKey(dataDir: string): Buffer {
  const file = join(dataDir, MASTER_KEY_FILE);
  if (existsSync(file)) return readMasterKey(file);
  const key = randomBytes(32);
  writeFileSync(file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  return key;
}

/** A key file's key: one line of base64 holding exactly 32 bytes (what `master.key` holds). */
export function readMasterKey(file: string): Buffer {
  const text = readFileSync(file, 'utf8').trim();
  const key = Buffer.from(text, 'base64');
  if (key.length !== 32 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw new MasterKeyError(`${file} does not hold a 32-byte key in base64 (make one with: head -c 32 /dev/urandom | base64)`);
  return key;
}
