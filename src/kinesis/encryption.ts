// Kinesis server-side encryption ("KMS"): StartStreamEncryption / StopStreamEncryption, the KMS key
// ids they accept, the per-stream data keys (sealed with the master key, kept in the metadata
// Store's `kinesis_data_keys`, shared by every node) and the encrypted record frame of the shard logs.
//
// There is no KMS here. Every well-formed KeyId (key id, key ARN, alias name, alias ARN, and the
// Kinesis-owned `alias/aws/kinesis`) is accepted and recorded as given; the records are sealed
// with data keys of this server, themselves sealed with its master key, whatever KeyId names.
//
// Shard-log record frames (records.ts) are either plaintext, [u16 partition-key length][key][data]
// (the length is at most 1024, so the first byte is below 0x80), or encrypted, which this module
// owns: [u8 0x81][u32 data-key id][12 nonce][16 GCM tag][AES-256-GCM of the plaintext frame]. The
// partition key is encrypted with the data, as AWS does. The additional data binds a record to its
// stream incarnation and shard, so ciphertext moved elsewhere does not open.
//
// Nonces: a data key is only ever used by one process (a stream takes a fresh key on its first
// encrypted write after each start, and after each StartStreamEncryption), so a counter in memory
// gives every record of a key its own nonce without persisting anything. With several nodes, each
// takes its own key: the key id is the row's primary key, so two nodes picking the same next id
// cannot both store it; the loser reads the keys again and takes the next one.
//
// Reading: every node holds every incarnation's keys (the table is cached; a key stored elsewhere
// arrives with the Store's change notification). A record naming a key not known yet (read before
// that notification) makes the reader fetch the incarnation's keys once (at most every
// KEY_REFRESH_MIN_MS), so a record put through another node opens here at once.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Db } from '../store/db.js';
import type { CachedTable, MetadataCache, TableSpec } from '../store/metadata.js';
import type { SecretBox } from '../iam/secrets.js';
import { ServiceError, type Operations } from '../http/awsjson.js';
import type { Inputs, StartStreamEncryptionInput } from '../models/generated/kinesis-inputs.js';
import { invalidArgument, limitExceeded } from './errors.js';
import type { KinesisServices } from './api.js';
import type { StreamState } from './streams.js';

/** The Kinesis-owned key every account has (AWS-managed key of the service). */
export const KINESIS_MANAGED_KEY_ALIAS = 'alias/aws/kinesis';
/** AWS: a new KMS key may be applied 25 times per stream in a rolling 24 hours. */
export const MAX_ENCRYPTION_STARTS_PER_DAY = 25;
/** AWS: encryption may be disabled 25 times per stream in a rolling 24 hours. */
export const MAX_ENCRYPTION_STOPS_PER_DAY = 25;
const DAY_MS = 24 * 3600_000;
/**
 * Records sealed under one data key before a fresh one is taken: NIST SP 800-38D's bound for one
 * GCM key, kept although the nonces are counters (unique by construction) and not random.
 */
export const MAX_RECORDS_PER_DATA_KEY = 2 ** 32;
/** KMS alias names are at most 256 characters (`alias/` included). */
export const MAX_ALIAS_NAME_LENGTH = 256;

/** Attempts at storing a new data key when other nodes keep taking the same next key id. */
export const MAX_DATA_KEY_ATTEMPTS = 5;
/** Fetches of one incarnation's keys for records naming an unknown key: at most one per this many ms. */
export const KEY_REFRESH_MIN_MS = 1_000;

export const KINESIS_DATA_KEYS: TableSpec = { table: 'kinesis_data_keys', keys: ['stream', 'key_id'] };

interface KeyRow {
  stream: string;
  key_id: number;
  created_ms: number;
  sealed: Buffer;
}

export const ENCRYPTED_FRAME_V1 = 0x81;
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** [marker][key id][nonce]: authenticated with the context, stored in front of the tag. */
const PREFIX_BYTES = 1 + 4 + NONCE_BYTES;
export const ENCRYPTED_HEADER_BYTES = PREFIX_BYTES + TAG_BYTES;


const UUID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';
const MULTI_REGION = 'mrk-[0-9a-fA-F]{32}';
const KEY = `(?:${UUID}|${MULTI_REGION})`;
const ALIAS = 'alias/[a-zA-Z0-9/_-]+';
const KMS_ARN = 'arn:aws(?:-[a-z]+)*:kms:[a-z0-9-]+:\\d{12}:';
const KEY_ID_FORMS = new RegExp(`^(?:${KEY}|${ALIAS}|${KMS_ARN}key/${KEY}|${KMS_ARN}${ALIAS})$`);

/** A stored record that does not open: damaged at rest, or not sealed by this server's keys. */
export class RecordDamage extends Error {
  override name = 'RecordDamage';
}

/** The name of a stream incarnation's data keys (the same as its shard-log directory). */
export function incarnationOf(s: Pick<StreamState, 'name' | 'createdMs'>): string {
  return `${s.name}-${s.createdMs}`;
}

/**
 * Checks a KeyId's form. Malformed ids are InvalidArgumentException; an alias of another service's
 * AWS-managed key (`alias/aws/s3`…) is KMSAccessDeniedException, as Kinesis may not use it.
 */
export function checkKeyId(keyId: string): void {
  const alias = /(?:^|:)(alias\/.*)$/.exec(keyId)?.[1];
  if (!KEY_ID_FORMS.test(keyId) || (alias !== undefined && alias.length > MAX_ALIAS_NAME_LENGTH)) {
    throw invalidArgument(
      `KeyId ${keyId} is not a KMS key id, key ARN, alias name (alias/…) or alias ARN. Use ${KINESIS_MANAGED_KEY_ALIAS} for the key owned by Kinesis.`,
    );
  }
  if (alias !== undefined && alias.startsWith('alias/aws/') && alias !== KINESIS_MANAGED_KEY_ALIAS) {
    throw new ServiceError('KMSAccessDeniedException', `${alias} is an AWS managed key of another service; Kinesis can use ${KINESIS_MANAGED_KEY_ALIAS}.`);
  }
}

interface WriteKey {
  id: number;
  key: Buffer;
  used: number;
}

/** The data keys of every encrypted stream incarnation: sealed in the metadata Store, open in memory. */
export class DataKeys {
  /** incarnation → key id → key */
  private keys = new Map<string, Map<number, Buffer>>();
  /** The key each incarnation writes with in this process. */
  private writing = new Map<string, WriteKey>();
  /** New keys being stored, per incarnation (concurrent puts wait for the same one). */
  private creating = new Map<string, Promise<void>>();
  /** When each incarnation's keys were last fetched for an unknown key id. */
  private refreshed = new Map<string, number>();
  /** Additional data per incarnation and shard, less the frame prefix (built once: puts are hot). */
  private contexts = new Map<string, Map<number, Buffer>>();

  private constructor(
    private readonly meta: MetadataCache,
    private readonly rows: CachedTable<KeyRow>,
    private readonly box: SecretBox,
    private readonly clock: Clock,
    private readonly recordsPerKey: number,
    /** This node's SQLite database when it is the Store: new keys are committed with synchronous=FULL. */
    private readonly db: Db | undefined,
  ) {
    for (const r of rows.values()) this.add(r);
    meta.onChange((c) => {
      if (c.table !== KINESIS_DATA_KEYS.table) return;
      if (c.key.length === 0) {
        const live = new Set<string>();
        for (const r of rows.values()) live.add(r.stream);
        for (const inc of [...this.keys.keys()]) if (!live.has(inc)) this.forgetHere(inc);
        for (const r of rows.values()) this.add(r);
        return;
      }
      const inc = c.key[0];
      if (typeof inc !== 'string') return;
      const mine = rows.filter((r) => r.stream === inc);
      // Keys are only ever removed with their incarnation: none left means it was deleted.
      if (mine.length === 0) this.forgetHere(inc);
      for (const r of mine) this.add(r);
    });
  }

  /**
   * Opens every stored data key: a master key that does not open them (replaced, or lost and
   * created afresh) stops the start here, before any record could be read as garbage.
   */
  static async open(meta: MetadataCache, box: SecretBox, clock: Clock, o: { recordsPerKey?: number; db?: Db } = {}): Promise<DataKeys> {
    const rows = await meta.table<KeyRow>(KINESIS_DATA_KEYS);
    return new DataKeys(meta, rows, box, clock, o.recordsPerKey ?? MAX_RECORDS_PER_DATA_KEY, meta.driver.kind === 'sqlite' ? o.db : undefined);
  }

  private add(r: KeyRow): void {
    const keys = this.keysOf(r.stream);
    const id = Number(r.key_id);
    if (!keys.has(id)) keys.set(id, this.box.openBytes(Buffer.from(r.sealed), sealContext(r.stream, id)));
  }

  /** Drops the keys of incarnations that no longer exist (a crash of an older version between deleting a stream and its keys). */
  async prune(live: ReadonlySet<string>): Promise<void> {
    for (const inc of [...this.keys.keys()]) if (!live.has(inc)) await this.forget(inc);
  }

  /** After StartStreamEncryption: the next encrypted record takes a new data key. */
  rotate(incarnation: string): void {
    this.writing.delete(incarnation);
  }

  /** Removes the incarnation's keys from the Store and from memory. */
  async forget(incarnation: string): Promise<void> {
    this.forgetHere(incarnation);
    await this.meta.write([{ sql: 'DELETE FROM kinesis_data_keys WHERE stream = ?', params: [incarnation] }], [{ table: KINESIS_DATA_KEYS.table, key: [incarnation] }]);
  }

  /** Forgets the incarnation's keys in this process only (removed from the Store by whoever deleted it). */
  forgetHere(incarnation: string): void {
    this.keys.delete(incarnation);
    this.contexts.delete(incarnation);
    this.writing.delete(incarnation);
    this.refreshed.delete(incarnation);
  }

  /**
   * Reads the incarnation's keys from the Store when a record names one not known here (stored by
   * another node, its notification not arrived yet); at most once per KEY_REFRESH_MIN_MS.
   */
  async ensure(incarnation: string, keyIds: Iterable<number>): Promise<void> {
    const known = this.keys.get(incarnation);
    let missing = false;
    for (const id of keyIds) if (!known?.has(id)) missing = true;
    if (!missing) return;
    // A throttle of store reads, on wall time (an injected clock may stand still).
    const now = Date.now();
    const last = this.refreshed.get(incarnation);
    if (last !== undefined && now - last < KEY_REFRESH_MIN_MS && now >= last) return;
    this.refreshed.set(incarnation, now);
    const rows = await this.meta.driver.all<KeyRow>('SELECT stream, key_id, created_ms, sealed FROM kinesis_data_keys WHERE stream = ?', [incarnation]);
    for (const r of rows) this.add(r);
  }

  /** How many data keys an incarnation has (tests, operators). */
  count(incarnation: string): number {
    return this.keys.get(incarnation)?.size ?? 0;
  }

  /** Encrypts plaintext record frames for a shard of the incarnation (storing a new data key when one is due). */
  async sealAll(incarnation: string, shardIndex: number, frames: Buffer[]): Promise<Buffer[]> {
    const out: Buffer[] = [];
    for (const f of frames) {
      let w = this.writing.get(incarnation);
      if (!w || w.used >= this.recordsPerKey) w = await this.writeKey(incarnation);
      out.push(this.sealWith(w, incarnation, shardIndex, f));
    }
    return out;
  }

  private sealWith(w: WriteKey, incarnation: string, shardIndex: number, frame: Buffer): Buffer {
    const out = Buffer.allocUnsafe(ENCRYPTED_HEADER_BYTES + frame.length);
    out[0] = ENCRYPTED_FRAME_V1;
    out.writeUInt32BE(w.id, 1);
    // Nonce: [u32 0][u64 counter], the counter below 2^53 by far.
    out.writeUInt32BE(0, 5);
    out.writeUInt32BE(Math.floor(w.used / 2 ** 32), 9);
    out.writeUInt32BE(w.used % 2 ** 32, 13);
    w.used++;
    const c = createCipheriv('aes-256-gcm', w.key, out.subarray(5, PREFIX_BYTES));
    c.setAAD(this.additionalData(out, incarnation, shardIndex));
    const n = c.update(frame).copy(out, ENCRYPTED_HEADER_BYTES);
    c.final();
    c.getAuthTag().copy(out, PREFIX_BYTES);
    if (n !== frame.length) throw new Error('AES-GCM output length differs from its input');
    return out;
  }

  /** The plaintext frame of an encrypted record; RecordDamage when it does not open. */
  open(incarnation: string, shardIndex: number, payload: Buffer): Buffer {
    if (payload.length < ENCRYPTED_HEADER_BYTES || payload[0] !== ENCRYPTED_FRAME_V1) {
      throw new RecordDamage(`not an encrypted record frame (marker 0x${(payload[0] ?? 0).toString(16)}, ${payload.length} bytes)`);
    }
    const id = payload.readUInt32BE(1);
    const key = this.keys.get(incarnation)?.get(id);
    if (!key) throw new RecordDamage(`the record names data key ${id}, which this stream does not have`);
    try {
      const d = createDecipheriv('aes-256-gcm', key, payload.subarray(5, PREFIX_BYTES));
      d.setAAD(this.additionalData(payload, incarnation, shardIndex));
      d.setAuthTag(payload.subarray(PREFIX_BYTES, ENCRYPTED_HEADER_BYTES));
      const plain = d.update(payload.subarray(ENCRYPTED_HEADER_BYTES));
      d.final(); // GCM emits everything from update(); final() checks the tag
      return plain;
    } catch {
      throw new RecordDamage(`the record fails authentication under data key ${id}`);
    }
  }

  /** [frame prefix][\0 incarnation \0 shard index]: what a record is bound to. */
  private additionalData(frame: Buffer, incarnation: string, shardIndex: number): Buffer {
    let byShard = this.contexts.get(incarnation);
    if (!byShard) this.contexts.set(incarnation, (byShard = new Map()));
    let ctx = byShard.get(shardIndex);
    if (!ctx) {
      const suffix = Buffer.from(`\0${incarnation}\0${shardIndex}`, 'utf8');
      ctx = Buffer.alloc(PREFIX_BYTES + suffix.length);
      suffix.copy(ctx, PREFIX_BYTES);
      byShard.set(shardIndex, ctx);
    }
    // setAAD copies the bytes in, so one buffer per shard serves every record.
    frame.copy(ctx, 0, 0, PREFIX_BYTES);
    return ctx;
  }

  private keysOf(incarnation: string): Map<number, Buffer> {
    let m = this.keys.get(incarnation);
    if (!m) this.keys.set(incarnation, (m = new Map()));
    return m;
  }

  /** The key this process writes the incarnation's records with: a fresh one, stored before its first use. */
  private writeKey(incarnation: string): Promise<WriteKey> {
    let p = this.creating.get(incarnation);
    if (!p) {
      p = this.storeKey(incarnation);
      this.creating.set(incarnation, p);
      const done = () => this.creating.delete(incarnation);
      p.then(done, done);
    }
    return p.then(() => {
      const w = this.writing.get(incarnation);
      if (!w) throw new Error(`the data key of ${incarnation} was forgotten while it was stored (stream deleted)`);
      // Over the bound already (other waiters used it up meanwhile): the caller's next frame takes another.
      return w.used < this.recordsPerKey ? w : this.writeKey(incarnation);
    });
  }

  private async storeKey(incarnation: string): Promise<void> {
    const w = this.writing.get(incarnation);
    if (w && w.used < this.recordsPerKey) return;
    for (let attempt = 1; ; attempt++) {
      const keys = this.keysOf(incarnation);
      const id = Math.max(0, ...keys.keys()) + 1;
      const key = randomBytes(KEY_BYTES);
      try {
        await this.durably(() =>
          this.meta.write(
            [{ sql: 'INSERT INTO kinesis_data_keys (stream, key_id, created_ms, sealed) VALUES (?, ?, ?, ?)', params: [incarnation, id, this.clock.now(), this.box.sealBytes(key, sealContext(incarnation, id))] }],
            [{ table: KINESIS_DATA_KEYS.table, key: [incarnation, id] }],
          ),
        );
      } catch (e) {
        // Another node took this id first: read the keys again and take the next.
        if (attempt >= MAX_DATA_KEY_ATTEMPTS || !this.meta.driver.isUniqueViolation(e)) throw e;
        this.refreshed.delete(incarnation);
        await this.ensure(incarnation, [id]);
        continue;
      }
      this.keysOf(incarnation).set(id, key);
      this.writing.set(incarnation, { id, key, used: 0 });
      return;
    }
  }

  /**
   * Stored durably before its first use: the shard logs fsync their records, and SQLite's usual
   * synchronous=NORMAL could lose this commit to an OS crash while the records under the key
   * survive it, unreadable. One synced commit per new key (per stream, Start and process). The
   * SQLite driver runs the transaction within the `write` call itself (better-sqlite3 is
   * synchronous), so the setting is back before anything else runs. PostgreSQL commits durably.
   */
  private durably<T>(write: () => Promise<T>): Promise<T> {
    if (!this.db) return write();
    const was = Number(this.db.pragma('synchronous', { simple: true }));
    this.db.pragma('synchronous = FULL');
    try {
      return write();
    } finally {
      this.db.pragma(`synchronous = ${was}`);
    }
  }
}

function sealContext(incarnation: string, id: number): string {
  return `kinesis-data-key\0${incarnation}\0${id}`;
}


/** StartStreamEncryption and StopStreamEncryption, registered next to the other operations. */
export function encryptionOperations(k: KinesisServices): { operations: Operations<Pick<Inputs, 'StartStreamEncryption' | 'StopStreamEncryption'>> } {
  const { registry, clock } = k;
  const { accountId } = registry.opts;
  const keys = registry.keys;

  // The input arrives validated against the model (types, required members, KeyId length, the
  // EncryptionType enum); what is left are the rules of the operation, after the stream.
  function change(i: StartStreamEncryptionInput, op: string, limit: number, field: 'starts' | 'stops'): StreamState {
    const s = registry.requireActive(registry.resolveName(i));
    if (i.EncryptionType !== 'KMS') throw invalidArgument(`KMS is the only EncryptionType ${op} accepts.`);
    checkKeyId(i.KeyId);
    const now = clock.now();
    const log = (s.encryptionChanges ??= { starts: [], stops: [] });
    log[field] = log[field].filter((t) => now - t < DAY_MS);
    if (log[field].length >= limit) {
      throw limitExceeded(`${op} was already called ${limit} times in the last 24 hours for stream ${s.name} under account ${accountId}.`);
    }
    log[field].push(now);
    return s;
  }

  return {
    operations: {
      async StartStreamEncryption(i) {
        const s = change(i, 'StartStreamEncryption', MAX_ENCRYPTION_STARTS_PER_DAY, 'starts');
        s.encryption = { keyId: i.KeyId };
        keys.rotate(incarnationOf(s));
        await registry.markUpdating(s);
        return undefined;
      },
      async StopStreamEncryption(i) {
        const s = change(i, 'StopStreamEncryption', MAX_ENCRYPTION_STOPS_PER_DAY, 'stops');
        // Records sealed so far keep their keys: they stay readable until retention drops them.
        delete s.encryption;
        await registry.markUpdating(s);
        return undefined;
      },
    },
  };
}
