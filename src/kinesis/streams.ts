// Stream registry of the embedded Kinesis: stream and shard metadata (one JSON document per stream
// in the metadata Store's `kinesis_streams`, a CachedTable: every data call reads it synchronously),
// status transitions (CREATING/UPDATING/DELETING, lazily on the injected clock), shard lineage for
// resharding, routing of hash keys to open shards, and the per-shard logs that hold the records
// (one log group per stream incarnation and shard).
//
// Several nodes (PostgreSQL Store + JetStream logs): every node holds every stream document. A
// change made elsewhere arrives as a Store change notification and is applied to the node's
// document in place (same incarnation: requests holding it see the new shard layout, routing is
// recomputed, logs of shards dropped elsewhere are closed here) or replaces it (deleted, or deleted
// and re-created: the old incarnation's open logs are closed here, never removed: the node that
// deleted it removes them). Concurrent changes to one stream through two nodes: each write is a
// compare-and-set on the document its node last saw, so the second one is refused
// (ResourceInUseException: retry) instead of silently undoing the first.

import type { Clock } from '../clock.js';
import type { Db } from '../store/db.js';
import type { CachedTable, MetadataCache, TableSpec } from '../store/metadata.js';
import type { Log, OffsetGap } from '../log/log.js';
import { SegmentLogProvider, type LogProvider } from '../log/provider.js';
import { SecretBox } from '../iam/secrets.js';
import { DataKeys, incarnationOf } from './encryption.js';
import { decodeSequenceNumber, evenRanges, parseShardId, shardIdOf, toHex } from './keys.js';
import { limitExceeded, resourceInUse, resourceNotFound, validation } from './errors.js';
import { DEFAULT_RETENTION_HOURS, MAX_ON_DEMAND_STREAMS, MAX_SHARDS_PER_ACCOUNT } from './limits.js';

export type StreamStatus = 'CREATING' | 'ACTIVE' | 'UPDATING' | 'DELETING';
export type StreamMode = 'PROVISIONED' | 'ON_DEMAND';

export interface ShardState {
  index: number;
  parent?: number;
  adjacentParent?: number;
  /** Hash key range, inclusive, as 32-digit hex. */
  startHex: string;
  endHex: string;
  createdMs: number;
  /** Set when the shard was closed by resharding; `endOffset` is its log's final end. */
  closedMs?: number;
  endOffset?: number;
}

export interface ConsumerState {
  name: string;
  createdMs: number;
  status: 'CREATING' | 'ACTIVE' | 'DELETING';
  statusUntilMs: number;
  /** TagResource on the consumer's ARN (admin.ts). */
  tags?: Record<string, string>;
  /** The consumer's resource-based policy (PutResourcePolicy), as stored JSON text. */
  policy?: string;
}

export interface StreamState {
  name: string;
  createdMs: number;
  status: StreamStatus;
  statusUntilMs: number;
  mode: StreamMode;
  retentionHours: number;
  /** Records older than this stay expired: raising retention does not revive them (as in AWS). */
  expiredBeforeMs?: number;
  tags: Record<string, string>;
  shards: ShardState[];
  nextShardIndex: number;
  consumers: ConsumerState[];
  scalings: number[];
  // Set by the operations of admin.ts; absent in documents written before them (= the defaults).
  /** Enabled shard-level metrics (EnableEnhancedMonitoring), in the model's enum order. */
  shardLevelMetrics?: string[];
  /** MaxRecordSizeInKiB (CreateStream, UpdateMaxRecordSize); default DEFAULT_RECORD_SIZE_KIB. */
  maxRecordSizeKiB?: number;
  /** When UpdateStreamMode switched the mode, for the switches-per-24-hours rule. */
  modeSwitches?: number[];
  /** The stream's resource-based policy (PutResourcePolicy), as stored JSON text. */
  policy?: string;
  /** Server-side encryption (StartStreamEncryption), with the KeyId as the client gave it. */
  encryption?: { keyId: string };
  /** When encryption was started and stopped in the last 24 hours (AWS's rolling limits). */
  encryptionChanges?: { starts: number[]; stops: number[] };
}

export interface KinesisOptions {
  dataDir: string;
  region: string;
  accountId: string;
  /** How long CREATING/UPDATING/DELETING last; 0 makes changes take effect at once. */
  transitionMs: number;
  /** fdatasync shard logs before acknowledging puts (PINSTREAM_LOG_FSYNC). */
  fsync: boolean;
  /** Opens the shard logs (default: segment logs under `dataDir`). */
  logs?: LogProvider;
  /** Seals the data keys of encrypted streams (default: the master key of `dataDir`). */
  secrets?: SecretBox;
}

interface StreamRow {
  name: string;
  data: string;
}

/** The stream documents, by name. */
export const KINESIS_STREAMS: TableSpec = { table: 'kinesis_streams', keys: ['name'] };
/** Account-level settings (UpdateAccountSettings), one JSON value per key. */
export const KINESIS_ACCOUNT_SETTINGS: TableSpec = { table: 'kinesis_account_settings', keys: ['key'] };

interface Runtime {
  logs: Map<number, Promise<Log>>;
  /** Appends in flight per shard: a shard is closed only after they land. */
  inflight: Map<number, Set<Promise<unknown>>>;
  /** Open shards sorted by start hash, for routing. */
  open: ShardState[];
}

export class StreamRegistry {
  private streams = new Map<string, StreamState>();
  /**
   * Per stream, the document text this node last wrote or loaded: a change notification whose row
   * holds that text is this node's own write (or no news) and leaves the live document alone.
   */
  private known = new Map<string, string>();
  /** Writes of one stream's document run one at a time, in order (the latest state wins). */
  private writes = new Map<string, Promise<void>>();
  /**
   * Streams whose document another node changed while a write of this node's was queued: the
   * change replaced what that write would have stored, so the write reports a conflict instead.
   */
  private clobbered = new Set<string>();
  private runtime = new Map<string, Runtime>();
  private closed = false;
  /** Latest creation time handed out: every stream incarnation gets its own (see `create`). */
  private lastCreatedMs = -Infinity;
  /**
   * Shards found closed but without an end offset at start-up: a crash hit a reshard between
   * persisting the new layout and learning the parents' ends. Nothing routes to them any more, so
   * their logs' ends at open are final.
   */
  private unfinished = new Set<ShardState>();
  private readonly logs: LogProvider;
  /** Data keys of encrypted streams; opening them at start checks the master key. */
  readonly keys: DataKeys;

  private constructor(
    private readonly meta: MetadataCache,
    private readonly rows: CachedTable<StreamRow>,
    private readonly settings: CachedTable<{ key: string; value: string }>,
    keys: DataKeys,
    private clock: Clock,
    readonly opts: KinesisOptions,
  ) {
    this.logs = opts.logs ?? new SegmentLogProvider({ dataDir: opts.dataDir, fsync: opts.fsync, clock });
    this.keys = keys;
    for (const row of rows.values()) {
      const s = JSON.parse(row.data) as StreamState;
      this.streams.set(s.name, s);
      this.known.set(s.name, row.data);
      this.lastCreatedMs = Math.max(this.lastCreatedMs, s.createdMs);
      for (const sh of s.shards) if (sh.closedMs !== undefined && sh.endOffset === undefined) this.unfinished.add(sh);
    }
    meta.onChange((c) => {
      if (c.table !== KINESIS_STREAMS.table) return;
      if (c.key.length === 0) for (const name of new Set([...this.streams.keys(), ...[...rows.values()].map((r) => r.name)])) this.changed(name);
      else if (typeof c.key[0] === 'string') this.changed(c.key[0]);
    });
  }

  /**
   * The registry over the metadata Store. `db`: this node's SQLite database when the Store is
   * SQLite (data keys are committed with synchronous=FULL there; see DataKeys).
   */
  static async open(meta: MetadataCache, clock: Clock, opts: KinesisOptions, db?: Db): Promise<StreamRegistry> {
    const rows = await meta.table<StreamRow>(KINESIS_STREAMS);
    const settings = await meta.table<{ key: string; value: string }>(KINESIS_ACCOUNT_SETTINGS);
    const keys = await DataKeys.open(meta, opts.secrets ?? new SecretBox(opts.dataDir), clock, { db });
    const r = new StreamRegistry(meta, rows, settings, keys, clock, opts);
    // Embedded only: a crash of an older version between deleting a stream and its keys left keys
    // behind (a delete now removes both in one transaction). With several nodes a stream created
    // elsewhere since this node loaded the documents could look dead here: no pruning there.
    if (meta.driver.kind === 'sqlite') await keys.prune(new Set([...r.streams.values()].map(incarnationOf)));
    return r;
  }

  /** Applies the stored document of `name` after a change (this node's own write, or another node's). */
  private changed(name: string): void {
    const row = this.rows.get(name);
    const cur = this.streams.get(name);
    if (!row) {
      this.known.delete(name);
      if (cur) this.dropHere(cur);
      return;
    }
    if (row.data === this.known.get(name)) return;
    this.known.set(name, row.data);
    const fresh = JSON.parse(row.data) as StreamState;
    this.lastCreatedMs = Math.max(this.lastCreatedMs, fresh.createdMs);
    if (cur && cur.createdMs === fresh.createdMs) {
      // The same incarnation, changed elsewhere: updated in place, so requests holding it go on.
      if (this.writes.has(name)) this.clobbered.add(name);
      const encryptionWas = JSON.stringify(cur.encryption);
      const target = cur as unknown as Record<string, unknown>;
      for (const k of Object.keys(target)) if (!Object.hasOwn(fresh, k)) delete target[k];
      Object.assign(cur, fresh);
      // StartStreamEncryption elsewhere: this node too takes a fresh data key for its next write.
      if (JSON.stringify(cur.encryption) !== encryptionWas) this.keys.rotate(incarnationOf(cur));
      const rt = this.runtime.get(name);
      if (rt) {
        rt.open = openSorted(cur);
        // Shards retention removed elsewhere: their logs are closed here.
        for (const [index, p] of [...rt.logs]) {
          if (cur.shards.some((x) => x.index === index)) continue;
          rt.logs.delete(index);
          void p.then((l) => l.close()).catch(() => {});
        }
      }
      return;
    }
    if (cur) this.dropHere(cur);
    this.streams.set(name, fresh);
  }

  /** Forgets an incarnation another node deleted (or replaced): its logs are closed, not removed. */
  private dropHere(s: StreamState): void {
    if (this.streams.get(s.name) === s) this.streams.delete(s.name);
    this.keys.forgetHere(incarnationOf(s));
    // Runtime state is by name; called before a new incarnation is set, so what is there is s's.
    const rt = this.runtime.get(s.name);
    if (!rt) return;
    this.runtime.delete(s.name);
    for (const p of rt.logs.values()) p.then((l) => l.close()).catch(() => {});
  }

  arn(name: string): string {
    return `arn:aws:kinesis:${this.opts.region}:${this.opts.accountId}:stream/${name}`;
  }

  notFound(name: string): Error {
    return resourceNotFound(`Stream ${name} under account ${this.opts.accountId} not found.`);
  }

  /** Resolves StreamName and/or StreamARN (both given must agree). */
  resolveName(input: { StreamName?: unknown; StreamARN?: unknown }): string {
    const name = input.StreamName;
    const arn = input.StreamARN;
    let fromArn: string | undefined;
    if (arn !== undefined) {
      if (typeof arn !== 'string') throw validation(arn, 'streamARN', 'Member must be a string');
      const m = /^arn:aws:kinesis:([^:]*):(\d{12}):stream\/([^/]+)$/.exec(arn);
      if (!m) throw validation(arn, 'streamARN', 'Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+');
      // Only this server's own spelling of the ARN names a stream: IAM policies are matched
      // against that spelling, so any other (empty region, another partition) must not reach it.
      if (m[2] !== this.opts.accountId || m[1] !== this.opts.region) throw this.notFound(m[3]);
      fromArn = m[3];
    }
    if (name === undefined || name === null) {
      if (fromArn === undefined) throw validation(null, 'streamName', 'Either StreamName or StreamARN must be provided');
      return fromArn;
    }
    if (typeof name !== 'string' || !/^[a-zA-Z0-9_.-]{1,128}$/.test(name)) {
      throw validation(name, 'streamName', 'Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length 1 to 128');
    }
    if (fromArn !== undefined && fromArn !== name) {
      throw validation(arn, 'streamARN', `StreamARN names stream ${fromArn} but StreamName is ${name}`);
    }
    return name;
  }

  /** The stream, with due status transitions applied; deleted streams are not found. */
  get(name: string): StreamState {
    const s = this.streams.get(name);
    if (!s) throw this.notFound(name);
    this.settle(s);
    if (!this.streams.has(name)) throw this.notFound(name);
    return s;
  }

  /** A stream that accepts reads and writes (ACTIVE or UPDATING). */
  getWritable(name: string): StreamState {
    const s = this.get(name);
    if (s.status !== 'ACTIVE' && s.status !== 'UPDATING') throw this.notFound(name);
    return s;
  }

  requireActive(name: string): StreamState {
    const s = this.get(name);
    if (s.status !== 'ACTIVE') {
      throw resourceInUse(`Stream ${name} under account ${this.opts.accountId} not ACTIVE, instead in state ${s.status}`);
    }
    return s;
  }

  list(): StreamState[] {
    for (const s of [...this.streams.values()]) this.settle(s);
    return [...this.streams.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async create(name: string, shardCount: number, mode: StreamMode, tags: Record<string, string>, maxRecordSizeKiB?: number): Promise<StreamState> {
    if (this.streams.has(name)) {
      this.settle(this.streams.get(name)!);
      if (this.streams.has(name)) throw resourceInUse(`Stream ${name} under account ${this.opts.accountId} already exists.`);
    }
    if (mode === 'ON_DEMAND') this.ensureOnDemandCapacity();
    this.ensureShardCapacity(shardCount);
    // The creation time names the incarnation (its log directory, and the check that an iterator
    // belongs to it), so a stream deleted and re-created within one millisecond still gets a new one.
    const now = Math.max(this.clock.now(), this.lastCreatedMs + 1);
    this.lastCreatedMs = now;
    const shards = evenRanges(shardCount).map((r, index) => ({ index, startHex: toHex(r.start), endHex: toHex(r.end), createdMs: now }));
    const s: StreamState = {
      name,
      createdMs: now,
      status: this.opts.transitionMs > 0 ? 'CREATING' : 'ACTIVE',
      statusUntilMs: now + this.opts.transitionMs,
      mode,
      retentionHours: DEFAULT_RETENTION_HOURS,
      tags,
      shards,
      nextShardIndex: shardCount,
      consumers: [],
      scalings: [],
      ...(maxRecordSizeKiB !== undefined ? { maxRecordSizeKiB } : {}),
    };
    this.streams.set(name, s);
    const data = JSON.stringify(s);
    this.known.set(name, data);
    let created: unknown[][];
    try {
      // Race-safe across nodes: the first insert wins, the other caller hears ResourceInUse.
      created = await this.meta.write(
        [{ sql: 'INSERT INTO kinesis_streams (name, data) VALUES (?, ?) ON CONFLICT(name) DO NOTHING RETURNING name', params: [name, data] }],
        [{ table: KINESIS_STREAMS.table, key: [name] }],
      );
    } catch (e) {
      if (this.streams.get(name) === s) {
        this.streams.delete(name);
        this.known.delete(name);
      }
      throw e;
    }
    if (created[0].length === 0) {
      // Another node created it first; its document was loaded by this write's reload.
      if (this.streams.get(name) === s) this.streams.delete(name);
      throw resourceInUse(`Stream ${name} under account ${this.opts.accountId} already exists.`);
    }
    return s;
  }

  /** The account's open-shard quota, checked by every request that would add open shards. */
  ensureShardCapacity(additional: number): void {
    const open = this.openShardTotal();
    if (open + additional > MAX_SHARDS_PER_ACCOUNT) {
      throw limitExceeded(
        `This request would exceed the shard limit for the account ${this.opts.accountId} in ${this.opts.region}. ` +
          `Current shard count for the account: ${open}. Limit: ${MAX_SHARDS_PER_ACCOUNT}. Number of additional shards that would have resulted from this request: ${additional}.`,
      );
    }
  }

  /** The account's quota of ON_DEMAND streams, checked before a stream becomes one. */
  ensureOnDemandCapacity(): void {
    const n = this.onDemandStreamCount();
    if (n + 1 > MAX_ON_DEMAND_STREAMS) {
      throw limitExceeded(
        `This request would exceed the on-demand stream count limit for the account ${this.opts.accountId} in ${this.opts.region}. ` +
          `Current on-demand stream count for the account: ${n}. Limit: ${MAX_ON_DEMAND_STREAMS}.`,
      );
    }
  }

  onDemandStreamCount(): number {
    let n = 0;
    for (const s of this.streams.values()) if (s.mode === 'ON_DEMAND') n++;
    return n;
  }

  /** An account-level Kinesis setting (UpdateAccountSettings), as stored JSON text. */
  accountSetting(key: string): string | undefined {
    return this.settings.get(key)?.value;
  }

  async setAccountSetting(key: string, value: string): Promise<void> {
    await this.meta.write(
      [{ sql: 'INSERT INTO kinesis_account_settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value', params: [key, value] }],
      [{ table: KINESIS_ACCOUNT_SETTINGS.table, key: [key] }],
    );
  }

  async delete(name: string): Promise<void> {
    const s = this.get(name);
    if (this.opts.transitionMs > 0) {
      s.status = 'DELETING';
      s.statusUntilMs = this.clock.now() + this.opts.transitionMs;
      await this.save(s);
      return;
    }
    await this.finalizeDelete(s);
  }

  /** Marks the stream UPDATING for the transition time (after a reshard). */
  markUpdating(s: StreamState): Promise<void> {
    if (this.opts.transitionMs > 0) {
      s.status = 'UPDATING';
      s.statusUntilMs = this.clock.now() + this.opts.transitionMs;
    }
    return this.save(s);
  }

  /**
   * Stores the stream's document as it is when the write runs (writes of one stream are queued,
   * so the last one stores the latest state). Routing follows the new layout at once.
   */
  save(s: StreamState): Promise<void> {
    // A late save of a deleted incarnation (a reshard finishing after DeleteStream) must not bring
    // its row back.
    if (this.streams.get(s.name) !== s) return Promise.resolve();
    const rt = this.runtime.get(s.name);
    if (rt) rt.open = openSorted(s);
    // Started at once when none is queued: embedded (SQLite), the document is committed before
    // save returns, as it was when the registry wrote to SQLite directly.
    const prev = this.writes.get(s.name);
    const next = prev ? prev.catch(() => {}).then(() => this.write(s)) : this.write(s);
    this.writes.set(s.name, next);
    const done = () => {
      if (this.writes.get(s.name) !== next) return;
      this.writes.delete(s.name);
      this.clobbered.delete(s.name);
    };
    next.then(done, done);
    return next;
  }

  /** A save nobody waits for (lazy status transitions): a failure is reported, and retried by the next save. */
  private saveSoon(s: StreamState): void {
    this.save(s).catch((e) => console.error(`pinstream: saving Kinesis stream ${s.name} failed`, e));
  }

  private async write(s: StreamState): Promise<void> {
    if (this.streams.get(s.name) !== s) return;
    const data = JSON.stringify(s);
    const expected = this.known.get(s.name);
    if (data === expected) return;
    if (this.clobbered.delete(s.name)) throw this.conflict(s);
    this.known.set(s.name, data);
    // Compare-and-set on the document this node last saw: a change made meanwhile through another
    // node (or a deletion, or a re-creation under the name, not heard of yet) is not overwritten.
    // The write's reload then brings that document here, and the caller hears of the conflict.
    const [updated] = await this.meta.write(
      [{ sql: 'UPDATE kinesis_streams SET data = ? WHERE name = ? AND data = ? RETURNING name', params: [data, s.name, expected ?? null] }],
      [{ table: KINESIS_STREAMS.table, key: [s.name] }],
    );
    if (updated.length === 0) throw this.conflict(s);
  }

  /** A write that lost to another node's change: NotFound when the incarnation is gone, else ResourceInUse (retry). */
  private conflict(s: StreamState): Error {
    if (this.streams.get(s.name) !== s) return this.notFound(s.name);
    return resourceInUse(`Stream ${s.name} under account ${this.opts.accountId} was changed through another node meanwhile; its current state is loaded here, retry the request.`);
  }

  shard(s: StreamState, index: number): ShardState | undefined {
    return s.shards.find((x) => x.index === index);
  }

  /** The open shard whose range holds the hash key (32-digit hex). */
  route(s: StreamState, hashHex: string): ShardState {
    const open = this.rt(s).open;
    let lo = 0;
    let hi = open.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (open[mid].startHex <= hashHex) lo = mid;
      else hi = mid - 1;
    }
    return open[lo];
  }

  log(s: StreamState, index: number): Promise<Log> {
    // After close() nothing may reopen a shard log behind the shutdown's back.
    if (this.closed) return Promise.reject(new Error('the Kinesis registry is closed'));
    const rt = this.rt(s);
    let p = rt.logs.get(index);
    if (!p) {
      p = this.logs.open('kinesis', this.streamDir(s), shardIdOf(index));
      const sh = this.shard(s, index);
      if (sh && this.unfinished.has(sh)) {
        p = p.then((log) => {
          if (this.unfinished.delete(sh)) {
            sh.endOffset = log.endOffset();
            this.saveSoon(s);
          }
          return log;
        });
      }
      rt.logs.set(index, p);
    }
    return p;
  }

  /**
   * A consumer's saved sequence number of a shard (a Firehose Kinesis source's checkpoint), checked
   * against the shard's log: when it is beyond the end (records lost there), the loss is reported
   * and the shard's log continues after it, so sequence numbers are never handed out twice.
   */
  async checkSequenceCheckpoint(streamArn: string, shardId: string, sequenceNumber: string, consumer: string): Promise<OffsetGap | undefined> {
    let s: StreamState | undefined;
    try {
      s = this.streams.get(this.resolveName({ StreamARN: streamArn }));
    } catch {
      return undefined;
    }
    const index = parseShardId(shardId);
    const shard = s && index !== undefined ? this.shard(s, index) : undefined;
    const d = decodeSequenceNumber(sequenceNumber);
    if (!s || !shard || !d || d.shardIndex !== shard.index || d.shardCreatedSec !== Math.floor(shard.createdMs / 1000)) return undefined;
    // A closed shard takes no more records: nothing could reuse its offsets.
    if (shard.endOffset !== undefined || this.closed) return undefined;
    return (await this.log(s, shard.index)).checkConsumer(consumer, d.counter);
  }

  /** Tracks an append so closing the shard waits for it. */
  track<T>(s: StreamState, index: number, p: Promise<T>): Promise<T> {
    const rt = this.rt(s);
    let set = rt.inflight.get(index);
    if (!set) rt.inflight.set(index, (set = new Set()));
    set.add(p);
    const done = () => set!.delete(p);
    p.then(done, done);
    return p;
  }

  /**
   * Closes shards and opens children in one step: new writes route to the children at once; the
   * parents' ending offsets are taken after their in-flight appends land.
   */
  async reshard(s: StreamState, close: ShardState[], children: Array<Omit<ShardState, 'index' | 'createdMs'>>): Promise<ShardState[]> {
    const now = this.clock.now();
    const created = children.map((c) => ({ ...c, index: s.nextShardIndex++, createdMs: now }));
    for (const p of close) p.closedMs = now;
    s.shards.push(...created);
    // Persisted before waiting: once a write is routed to a child, a crash must not forget the
    // child (the parents' missing end offsets are recovered at the next start).
    await this.save(s);
    for (const p of close) {
      await Promise.allSettled([...(this.rt(s).inflight.get(p.index) ?? [])]);
      p.endOffset = (await this.hasLog(s, p.index)) ? (await this.log(s, p.index)).endOffset() : 0;
    }
    await this.markUpdating(s);
    return created;
  }

  /** Retention: drops whole expired segments, and closed shards with nothing left. */
  async applyRetention(): Promise<void> {
    const now = this.clock.now();
    for (const s of this.list()) {
      const cutoff = now - s.retentionHours * 3600_000;
      let changed = false;
      for (const sh of [...s.shards]) {
        if (this.streams.get(s.name) !== s) break; // deleted (and maybe re-created) meanwhile
        const log = (await this.hasLog(s, sh.index)) ? await this.log(s, sh.index) : undefined;
        await log?.deleteOlderThan(cutoff);
        if (sh.closedMs !== undefined && sh.closedMs < cutoff) {
          s.shards = s.shards.filter((x) => x !== sh);
          this.rt(s).logs.delete(sh.index);
          await log?.destroy();
          changed = true;
        }
      }
      if (changed) await this.save(s);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const rt of this.runtime.values()) {
      for (const p of rt.logs.values()) await (await p).close();
    }
    this.runtime.clear();
  }

  /**
   * Whether a shard has a log worth opening: open already, or on disk. A shard that never stored a
   * record has neither, and opening its log would create files and hold a descriptor per shard
   * (thousands for a wide stream, on every retention pass).
   */
  private async hasLog(s: StreamState, index: number): Promise<boolean> {
    return this.rt(s).logs.has(index) || (await this.logs.exists('kinesis', this.streamDir(s), shardIdOf(index)));
  }

  openShardTotal(): number {
    let n = 0;
    for (const s of this.streams.values()) n += s.shards.filter((x) => x.closedMs === undefined).length;
    return n;
  }

  /** The name of a stream incarnation's group of shard logs. */
  private streamDir(s: StreamState): string {
    return incarnationOf(s);
  }

  private rt(s: StreamState): Runtime {
    // Runtime state is keyed by name: a request still holding a deleted incarnation must not reach
    // the logs of a stream re-created under the same name (or re-create the deleted one's files).
    if (this.streams.get(s.name) !== s) throw this.notFound(s.name);
    let rt = this.runtime.get(s.name);
    if (!rt) {
      rt = { logs: new Map(), inflight: new Map(), open: openSorted(s) };
      this.runtime.set(s.name, rt);
    }
    return rt;
  }

  private settle(s: StreamState): void {
    if (s.status === 'ACTIVE' || this.clock.now() < s.statusUntilMs) return;
    if (s.status === 'DELETING') {
      this.finalizeDelete(s).catch((e) => console.error(`pinstream: deleting Kinesis stream ${s.name} failed`, e));
      return;
    }
    s.status = 'ACTIVE';
    this.saveSoon(s);
  }

  private async finalizeDelete(s: StreamState): Promise<void> {
    if (this.streams.get(s.name) !== s) return;
    this.streams.delete(s.name);
    this.known.delete(s.name);
    const incarnation = this.streamDir(s);
    // The document and the incarnation's data keys go together (no keys left behind by a crash).
    await this.meta.write(
      [
        { sql: 'DELETE FROM kinesis_streams WHERE name = ? AND substr(data, 1, ?) = ?', params: [s.name, ...incarnationPrefix(s)] },
        { sql: 'DELETE FROM kinesis_data_keys WHERE stream = ?', params: [incarnation] },
      ],
      [
        { table: KINESIS_STREAMS.table, key: [s.name] },
        { table: 'kinesis_data_keys', key: [incarnation] },
      ],
    );
    this.keys.forgetHere(incarnation);
    const rt = this.runtime.get(s.name);
    this.runtime.delete(s.name);
    if (rt) for (const p of rt.logs.values()) await (await p).close().catch(() => {});
    await this.logs.remove('kinesis', this.streamDir(s));
  }
}

/**
 * `substr(data, 1, n) = prefix` parameters naming one incarnation's document: it starts with its
 * name and creation time (the order `create` builds it in, kept by JSON round trips).
 */
function incarnationPrefix(s: StreamState): [number, string] {
  const prefix = `{"name":${JSON.stringify(s.name)},"createdMs":${JSON.stringify(s.createdMs)},`;
  return [prefix.length, prefix];
}

function openSorted(s: StreamState): ShardState[] {
  return s.shards.filter((x) => x.closedMs === undefined).sort((a, b) => (a.startHex < b.startHex ? -1 : 1));
}

