// Shard iterators and ListShards tokens: opaque, authenticated (HMAC-SHA256 with a secret kept in
// the metadata Store's `secrets`, the same on every node, so an iterator issued by one node reads
// through another) and time-limited, so clients cannot forge positions.
// Iterators start with the same 8-byte header real ones have (base64 "AAAAAAAAAAE...").
//
// The key: created once, race-safe (two nodes starting together insert with ON CONFLICT DO NOTHING
// and both read back the one that won), stored sealed with the shared master key. Data
// directories of older versions hold it unsealed (ITERATOR_KEY_BYTES long, where a sealed one is
// longer): kept and used as it is, so their outstanding iterators stay valid.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SecretBox } from '../iam/secrets.js';
import type { MetadataCache } from '../store/metadata.js';

/** The HMAC key's length. */
export const ITERATOR_KEY_BYTES = 32;

const HEADER = Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]);
const MAC_BYTES = 16;

export interface IteratorPosition {
  stream: string;
  /** Stream incarnation (creation time), so an iterator dies with a deleted stream. */
  streamCreatedMs: number;
  shardIndex: number;
  offset: number;
  issuedMs: number;
}

export class TokenSigner {
  private constructor(private readonly key: Buffer) {}

  /** The signer whose key is stored as `name` in the Store (created by the first node to ask). */
  static async open(meta: MetadataCache, name: string, box: SecretBox): Promise<TokenSigner> {
    const context = `token-signer\0${name}`;
    const read = async () => (await meta.driver.all<{ value: Buffer }>('SELECT value FROM secrets WHERE name = ?', [name]))[0];
    let row = await read();
    if (!row) {
      await meta.driver.write(
        [{ sql: 'INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT(name) DO NOTHING', params: [name, box.sealBytes(randomBytes(ITERATOR_KEY_BYTES), context)] }],
        [],
      );
      row = await read();
      if (!row) throw new Error(`the ${name} key was stored but cannot be read back`);
    }
    const value = Buffer.from(row.value);
    return new TokenSigner(value.length === ITERATOR_KEY_BYTES ? value : box.openBytes(value, context));
  }

  encodeIterator(p: IteratorPosition): string {
    const name = Buffer.from(p.stream, 'utf8');
    const body = Buffer.alloc(8 + 8 + 8 + 4 + 2 + name.length);
    body.writeDoubleBE(p.issuedMs, 0);
    body.writeDoubleBE(p.streamCreatedMs, 8);
    body.writeDoubleBE(p.offset, 16);
    body.writeUInt32BE(p.shardIndex, 24);
    body.writeUInt16BE(name.length, 28);
    name.copy(body, 30);
    const signed = Buffer.concat([HEADER, body]);
    return Buffer.concat([signed, this.mac(signed)]).toString('base64');
  }

  /** Undefined when the iterator is malformed or was not issued by this server. */
  decodeIterator(token: string): IteratorPosition | undefined {
    const buf = this.open(token, HEADER.length + 30);
    if (!buf) return undefined;
    const body = buf.subarray(HEADER.length);
    if (!buf.subarray(0, HEADER.length).equals(HEADER)) return undefined;
    const len = body.readUInt16BE(28);
    if (body.length !== 30 + len) return undefined;
    return {
      issuedMs: body.readDoubleBE(0),
      streamCreatedMs: body.readDoubleBE(8),
      offset: body.readDoubleBE(16),
      shardIndex: body.readUInt32BE(24),
      stream: body.toString('utf8', 30),
    };
  }

  /** A signed JSON token (ListShards NextToken). */
  encodeToken(value: object): string {
    const body = Buffer.from(JSON.stringify(value), 'utf8');
    return Buffer.concat([body, this.mac(body)]).toString('base64');
  }

  decodeToken<T>(token: string): T | undefined {
    const body = this.open(token, 2);
    if (!body) return undefined;
    try {
      return JSON.parse(body.toString('utf8')) as T;
    } catch {
      return undefined;
    }
  }

  /** Verifies the trailing MAC; returns the signed bytes. */
  private open(token: string, minBody: number): Buffer | undefined {
    if (typeof token !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(token)) return undefined;
    const buf = Buffer.from(token, 'base64');
    if (buf.length < minBody + MAC_BYTES) return undefined;
    const body = buf.subarray(0, buf.length - MAC_BYTES);
    const mac = buf.subarray(buf.length - MAC_BYTES);
    return timingSafeEqual(mac, this.mac(body)) ? body : undefined;
  }

  private mac(body: Buffer): Buffer {
    return createHmac('sha256', this.key).update(body).digest().subarray(0, MAC_BYTES);
  }
}
