// Secrets at rest: AES-256-GCM under the data directory's master key (`master.key`, mode 0600,
// created on first use). IAM secret keys and Firehose destination credentials (a Redshift
// Password, an HTTP endpoint AccessKey) are stored sealed, so a copy of the SQLite file alone
// reveals none of them.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class SecretBox {
  private readonly master: Buffer;

  constructor(dataDir: string) {
    this.master = masterKey(dataDir);
  }

  /** [iv 12][tag 16][ciphertext] */
  seal(secret: string): Buffer {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.master, iv);
    const body = Buffer.concat([c.update(secret, 'utf8'), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), body]);
  }

  open(sealed: Buffer): string {
    const d = createDecipheriv('aes-256-gcm', this.master, sealed.subarray(0, 12));
    d.setAuthTag(sealed.subarray(12, 28));
    return Buffer.concat([d.update(sealed.subarray(28)), d.final()]).toString('utf8');
  }
}

/** The data directory's master key for secrets at rest, created on first use. */
function masterKey(dataDir: string): Buffer {
  const file = join(dataDir, 'master.key');
  if (existsSync(file)) {
    const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte base64 key`);
    return key;
  }
  const key = randomBytes(32);
  writeFileSync(file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  return key;
}
