// One Pinstream log as one JetStream stream (file storage, replicated by JetStream itself). Offsets
// are stream sequences minus one. What the segment log does by itself, JetStream does here: an
// append resolves once JetStream acknowledged every message (stored on a quorum of replicas);
// retention is a purge up to a sequence; deduplication of retried payloads across nodes is
// JetStream's Nats-Msg-Id. The end of the log is kept current by a headers-only ordered consumer
// (the "watcher"), since other nodes append to the same stream; that also wakes waitFor.
//
// Batch contiguity: messages of one batch are published back to back on one connection, so
// JetStream numbers them contiguously unless another node's messages land between them (or a
// payload was a duplicate). Then the result carries each payload's offset (AppendResult.offsets);
// Kinesis PutRecords numbers records one by one from it, and nothing else reads batch offsets.
//
// Timestamps: each record carries the appending node's clock in a header (Pinstream-Ts), not
// JetStream's arrival time, because the append result must tell the caller the same timestamp that
// reads later return (Kinesis sequence numbers embed it) and JetStream's ack does not carry the
// stored time; the injected clock also keeps tests of retention deterministic. Stamps never go
// backwards within one node; across nodes they are as ordered as the nodes' clocks.

import { DeliverPolicy, JetStreamApiError, type Consumer, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/nats-core';
import type { Clock } from '../../clock.js';
import { LogUnavailableError, LogWriteError } from '../errors.js';
import type { AppendOptions, AppendResult, Log, LogHealth, LogRecord, OffsetGap, Payload, ReadOptions, ReadResult } from '../log.js';
import { offsetGap } from '../log.js';
import { emptyHealth } from '../segment-log.js';
import { retryable, type Ack, type Publisher } from './publisher.js';

/** The header carrying a record's append time (ms since the epoch, decimal). */
export const TS_HEADER = 'Pinstream-Ts';
/** Records one read fetches at most (the caller's maxRecords may be lower). */
export const DEFAULT_MAX_RECORDS = 10_000;
/** setTimeout fires at once beyond this. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** JetStream's "no message found" API error code (a purged or deleted sequence). */
const NO_MESSAGE = 10037;
/** Payload bytes one read fetches at most beyond its first record (its maxBytes when lower). */
export const READ_BUFFER_BYTES = 16 * 1024 * 1024;
/** Records one fetch asks for at most. */
export const READ_CHUNK_RECORDS = 1000;
/** Record stamps offsetForTimestamp keeps per log (cleared when full). */
export const STAMP_CACHE_ENTRIES = 4096;
/** First pause before sending unacknowledged messages again (doubling, up to 16x); the append's timeout bounds the whole. */
export const RETRY_BACKOFF_MS = 50;
/** The shortest wait of one fetch for its first message (JetStream's own lower bound is 1 s). */
export const FETCH_MIN_EXPIRES_MS = 1000;
/** How long past its expiry a fetch may still run before the log ends it (a server that stopped answering). */
export const FETCH_GRACE_MS = 1000;
/**
 * How often each log in use (read lately, or waited on) re-reads its stream's end from the server,
 * besides the watcher: a watcher whose consumer stalled (a server gone quiet, a reconnect it did not
 * survive) would otherwise leave this node blind to other nodes' appends.
 */
export const END_REFRESH_MS = 5000;
/** JetStream's deduplication header. */
const MSG_ID_HEADER = 'Nats-Msg-Id';
/** How long the watcher waits before starting again after its consumer failed. */
export const WATCH_RETRY_MS = 1000;

export interface JetStreamLogContext {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  publisher: Publisher;
  clock: Clock;
  /** Bound on every request to NATS (publish acks, stream info, reads). */
  timeoutMs: number;
  /** Largest message the servers accept (the connection's max_payload). */
  maxPayload: number;
  report: (line: string) => void;
  onClose: (log: JetStreamLog) => void;
}

interface Waiter {
  offset: number;
  resolve: (ok: boolean) => void;
  timer: NodeJS.Timeout;
}

/** A failed NATS call as the code that LogWriteError and storageFailureText show. */
export function natsErrorCode(e: unknown): string {
  const own = (e as { code?: unknown })?.code;
  if (typeof own === 'string' && own !== '') return own;
  if (e instanceof JetStreamApiError) return `JS_${e.code}`;
  const name = (e as { name?: unknown })?.name;
  const message = String((e as { message?: unknown })?.message ?? '');
  if (typeof name === 'string' && /timeout/i.test(name + message)) return 'NATS_TIMEOUT';
  if (/no responders|not enabled/i.test(message)) return 'NATS_NO_RESPONDERS';
  if (/closed|disconnect/i.test(message)) return 'NATS_DISCONNECTED';
  return 'NATS_ERROR';
}

/**
 * `p`, or a NATS_TIMEOUT error once `deadline` (performance.now() time) passes first; `abandon`
 * then tidies up after `p` (it keeps running: NATS requests end by their own timeout).
 */
function by<T>(deadline: number, p: Promise<T>, abandon?: () => void): Promise<T> {
  const left = deadline - performance.now();
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abandon?.();
      reject(Object.assign(new Error('JetStream did not answer in time'), { code: 'NATS_TIMEOUT' }));
    }, Math.max(0, left));
  });
  p.catch(() => undefined);
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

function isNoMessage(e: unknown): boolean {
  return e instanceof JetStreamApiError && e.code === NO_MESSAGE;
}

export class JetStreamLog implements Log {
  readonly usesIds = true;
  private start = 0;
  private end = 0;
  private lastTs = -Infinity;
  private closing: Promise<void> | undefined;
  private readonly waiters = new Set<Waiter>();
  private readonly gaps = new Map<string, OffsetGap>();
  /** As in the segment log: until the first append, consumers are checked against the end found at open. */
  private auditBase: number | undefined;
  private readonly h: LogHealth = emptyHealth();
  /** Record stamps read for offsetForTimestamp, by offset (a record's stamp never changes). */
  private readonly stamps = new Map<number, number>();
  /** The sequential reader: an ordered consumer and records it fetched beyond the last read. */
  private reader: { consumer: Consumer; next: number; ahead: LogRecord[]; aheadBytes: number } | undefined;
  /** The largest payload read so far: sizes the next fetch. */
  private largest = 1024;
  private reading: Promise<unknown> = Promise.resolve();
  private watch: { messages?: ConsumerMessages; timer?: NodeJS.Timeout; failing?: boolean } = {};
  private refresher: NodeJS.Timeout | undefined;
  /** When read() was last called (performance.now()): the periodic refresh is for logs in use. */
  private lastReadAt = -Infinity;

  constructor(
    readonly stream: string,
    readonly subject: string,
    private readonly c: JetStreamLogContext,
  ) {}

  /** Reads the stream's state and starts the watcher (the provider calls it once, after creating the stream). */
  async init(): Promise<void> {
    await this.refresh();
    this.auditBase = this.end;
    void this.startWatch();
    // Only a log someone reads or waits on needs its end current: a node with a thousand idle
    // shards does not ask JetStream a thousand times every few seconds.
    this.refresher = setInterval(() => {
      if (this.waiters.size > 0 || performance.now() - this.lastReadAt < 2 * END_REFRESH_MS) void this.refresh().catch(() => undefined);
    }, END_REFRESH_MS);
    this.refresher.unref();
  }

  startOffset(): number {
    return this.start;
  }

  endOffset(): number {
    return this.end;
  }

  health(): LogHealth {
    return { ...this.h, ...(this.h.failing ? { failing: { ...this.h.failing } } : {}) };
  }

  /** Reads first and last sequence from the stream (its leader). */
  async refresh(): Promise<{ lastSeq: number }> {
    const info = await this.c.jsm.streams.info(this.stream);
    this.advance(info.state.last_seq, info.state.first_seq - 1);
    return { lastSeq: info.state.last_seq };
  }

  /** Moves the known end (and start) forward only: concurrent sources of news may arrive out of order. */
  private advance(end: number, start?: number): void {
    if (end > this.end) this.end = end;
    if (start !== undefined && start > this.start) this.start = Math.min(start, this.end);
    for (const w of this.waiters) if (w.offset < this.end) this.settleWaiter(w, true);
  }

  // ---------------------------------------------------------------------------------------------
  // Appending

  async append(payloads: ReadonlyArray<Payload>, options: AppendOptions = {}): Promise<AppendResult> {
    if (this.closing) throw new Error('jetstream log is closed');
    const timestamp = Math.max(this.c.clock.now(), this.lastTs);
    this.lastTs = timestamp;
    if (payloads.length === 0) return { firstOffset: this.end, timestamp };
    const bodies = payloads.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p));
    // Checked before anything is sent, so an oversized batch stores nothing (as in the segment log).
    for (const b of bodies) if (b.length > this.c.maxPayload - 1024) throw new RangeError(`record of ${b.length} bytes exceeds the NATS servers' max_payload (${this.c.maxPayload})`);
    this.auditBase = undefined;
    const ts = String(timestamp);
    const messages = bodies.map((data, i) => {
      const h = headers();
      h.set(TS_HEADER, ts);
      const id = options.ids?.[i];
      if (id) h.set(MSG_ID_HEADER, id);
      return { data, headers: h };
    });
    // Published back to back (no await in between), so one node's batch is contiguous in the stream.
    const deadline = performance.now() + this.c.timeoutMs;
    const settled: Array<PromiseSettledResult<Ack>> = await Promise.allSettled(this.c.publisher.publishAll(this.subject, messages, this.c.timeoutMs));
    // No stream leader for a moment (an election after a server died, a reconnect), or a clustered
    // stream resynchronising: those messages were not stored and go again, with backoff, until the
    // append's time is up. Their offsets may then not be contiguous (AppendResult.offsets).
    for (let attempt = 0; ; attempt++) {
      const again = settled.flatMap((r, i) => (r.status === 'rejected' && retryable(r.reason) ? [i] : []));
      const left = deadline - performance.now();
      if (again.length === 0 || left <= 0) break;
      await new Promise((r) => setTimeout(r, Math.min(left, RETRY_BACKOFF_MS * 2 ** Math.min(attempt, 4))));
      const more = await Promise.allSettled(this.c.publisher.publishAll(this.subject, again.map((i) => messages[i]), Math.max(1, deadline - performance.now())));
      again.forEach((i, k) => (settled[i] = more[k]));
    }
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      const code = natsErrorCode(failed.reason);
      this.h.writeFailures++;
      this.h.failing ??= { since: this.c.clock.now(), code, diskFull: false };
      const stored = settled.filter((s) => s.status === 'fulfilled').length;
      // Messages that were acknowledged stay (JetStream cannot take them back): a retry with the
      // same ids is deduplicated; without ids a consumer may see them twice (at least once).
      throw new LogWriteError(code, false, `JetStream did not acknowledge ${settled.length - stored} of ${settled.length} records (${code})`, { cause: failed.reason });
    }
    if (this.h.failing) {
      this.c.report(`${this.stream}: writes succeed again (failing since ${new Date(this.h.failing.since).toISOString()})`);
      this.h.failing = undefined;
    }
    const offsets = settled.map((s) => (s as PromiseFulfilledResult<Ack>).value.seq - 1);
    this.advance(Math.max(...offsets) + 1);
    const contiguous = offsets.every((o, i) => o === offsets[0] + i);
    return contiguous ? { firstOffset: offsets[0], timestamp } : { firstOffset: offsets[0], timestamp, offsets };
  }

  // ---------------------------------------------------------------------------------------------
  // Reading

  read(offset: number, options: ReadOptions = {}): Promise<ReadResult> {
    if (this.closing) return Promise.reject(new Error('jetstream log is closed'));
    if (!Number.isSafeInteger(offset)) return Promise.reject(new RangeError(`invalid offset ${offset}`));
    this.lastReadAt = performance.now();
    // One read at a time: they share the sequential reader.
    const run = this.reading.then(() => this.readNow(offset, options));
    this.reading = run.catch(() => undefined);
    return run;
  }

  /**
   * Reads survive a moment without a stream leader (an election after a server died, a client
   * reconnecting to another server): the failed attempt's reader is dropped and the read tried
   * again with backoff until the request bound; past it the caller gets LogUnavailableError.
   */
  private async readNow(offset: number, options: ReadOptions): Promise<ReadResult> {
    const deadline = performance.now() + this.c.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.readOnce(offset, options, deadline);
      } catch (e) {
        this.dropReader();
        const left = deadline - performance.now();
        if (this.closing || left <= 0) throw new LogUnavailableError(natsErrorCode(e), `JetStream did not serve the read in ${this.c.timeoutMs} ms (${natsErrorCode(e)})`, { cause: e });
        await new Promise((r) => setTimeout(r, Math.min(left, RETRY_BACKOFF_MS * 2 ** Math.min(attempt, 4))));
      }
    }
  }

  /** One try of a read; every wait in it ends by `deadline` (a request still out then finishes on its own). */
  private async readOnce(offset: number, options: ReadOptions, deadline: number): Promise<ReadResult> {
    const maxRecords = Math.max(1, options.maxRecords ?? DEFAULT_MAX_RECORDS);
    const maxBytes = options.maxBytes ?? Infinity;
    const from = Math.max(offset, this.start);
    if (from >= this.end) return { records: [], nextOffset: from };
    const want = Math.min(maxRecords, this.end - from);
    let r = this.reader;
    if (!r || r.next !== from) {
      this.dropReader();
      const made = this.c.js.consumers.get(this.stream, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from + 1 });
      const consumer = await by(deadline, made, () => void made.then((c) => c.delete()).catch(() => undefined));
      r = this.reader = { consumer, next: from, ahead: [], aheadBytes: 0 };
    }
    // Fetched in chunks sized by the largest record seen, so what one read holds stays near
    // min(maxBytes, READ_BUFFER_BYTES) even with 10,000 records of a megabyte asked for.
    const cap = Math.min(maxBytes, READ_BUFFER_BYTES);
    while (r.ahead.length < want && r.aheadBytes < cap) {
      const chunk = Math.max(1, Math.min(want - r.ahead.length, READ_CHUNK_RECORDS, Math.floor((cap - r.aheadBytes) / this.largest)));
      const expires = this.fetchExpiresMs();
      const started = r.consumer.fetch({ max_messages: chunk, expires });
      const batch = await by(deadline, started, () => void started.then((b) => b.stop()).catch(() => undefined));
      // An ordered consumer's fetch does not end by itself when the server stops answering (it
      // resets and waits on); this timer ends it, so no read waits forever.
      const guard = setTimeout(() => batch.stop(), Math.max(0, Math.min(expires + FETCH_GRACE_MS, deadline - performance.now())));
      let got = 0;
      try {
        for await (const m of batch) {
          const rec = this.record(m);
          r.ahead.push(rec);
          r.aheadBytes += rec.payload.length;
          this.largest = Math.max(this.largest, rec.payload.length);
          if (++got >= chunk) break;
        }
      } finally {
        clearTimeout(guard);
      }
      if (got === 0) break;
    }
    const records: LogRecord[] = [];
    let bytes = 0;
    while (r.ahead.length > 0 && records.length < maxRecords) {
      const rec = r.ahead[0];
      if (records.length > 0 && bytes + rec.payload.length > maxBytes) break;
      bytes += rec.payload.length;
      r.aheadBytes -= rec.payload.length;
      records.push(r.ahead.shift()!);
    }
    if (records.length === 0) {
      // Nothing came though records below the end exist. Either they were purged under us (the
      // stream's start moved: read from there) or the stream could not serve them in time (no
      // leader, a reconnect). The second must never look like an empty range: a consumer would
      // take it for a hole and step over records that are still there (silent loss downstream).
      this.dropReader();
      const { lastSeq } = await by(deadline, this.refresh());
      if (this.start > from) return this.readOnce(offset, options, deadline);
      // The stream itself holds nothing there (deleted and made again by another node).
      if (lastSeq <= from) return { records: [], nextOffset: from };
      throw Object.assign(new Error(`JetStream served no record from offset ${from} though the stream ends at ${this.end}`), { code: 'NATS_TIMEOUT' });
    }
    const nextOffset = records[records.length - 1].offset + 1;
    r.next = nextOffset;
    this.advance(nextOffset);
    return { records, nextOffset };
  }

  /**
   * How long one fetch waits for its first message: a quarter of the request bound (at least
   * FETCH_MIN_EXPIRES_MS), so a consumer left on a server that lost the stream's leadership is
   * dropped and made again within one read instead of using up its whole time.
   */
  private fetchExpiresMs(): number {
    return Math.min(this.c.timeoutMs, Math.max(FETCH_MIN_EXPIRES_MS, Math.floor(this.c.timeoutMs / 4)));
  }

  private record(m: JsMsg): LogRecord {
    const ts = Number(m.headers?.get(TS_HEADER));
    return {
      offset: m.seq - 1,
      timestamp: Number.isFinite(ts) && m.headers?.has(TS_HEADER) ? ts : Number(m.timestampNanos / 1_000_000n),
      payload: Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength),
    };
  }

  /** Forgets the sequential reader; its consumer is deleted in the background (ephemeral: the server drops it after its inactivity threshold anyway). */
  private dropReader(): void {
    const r = this.reader;
    this.reader = undefined;
    void r?.consumer.delete().catch(() => undefined);
  }

  /** The timestamp of the record at `offset`, or undefined when it is gone. Stamps never change: cached. */
  private async timestampAt(offset: number): Promise<number | undefined> {
    const known = this.stamps.get(offset);
    if (known !== undefined) return known;
    let m;
    try {
      m = await this.c.jsm.streams.getMessage(this.stream, { seq: offset + 1 });
    } catch (e) {
      if (isNoMessage(e)) return undefined;
      throw e;
    }
    if (!m) return undefined;
    const ts = Number(m.header.get(TS_HEADER));
    const stamp = m.header.has(TS_HEADER) && Number.isFinite(ts) ? ts : m.time.getTime();
    if (this.stamps.size >= STAMP_CACHE_ENTRIES) this.stamps.clear();
    this.stamps.set(offset, stamp);
    return stamp;
  }

  /**
   * Binary search over the stored records' stamps: one request per step (log2 of the records), each
   * cached. Kinesis asks on every GetRecords for the start of retention, which is almost always
   * before the first record: that answer costs no request once the first record's stamp is known.
   */
  async offsetForTimestamp(ts: number): Promise<number> {
    // One bound for the whole search (each step is a request): past it, or on a NATS error, the
    // caller gets LogUnavailableError (503 to clients, a retry to consumers), not an internal error.
    const deadline = performance.now() + this.c.timeoutMs;
    try {
      let lo = this.start;
      let hi = this.end;
      if (lo < hi) {
        const first = await by(deadline, this.timestampAt(lo));
        if (first === undefined) {
          // The start moved (retention on another node): read where the stream starts now.
          await by(deadline, this.refresh());
          [lo, hi] = [this.start, this.end];
        } else if (first >= ts) return lo;
      }
      while (lo < hi) {
        const mid = Math.floor((lo + hi) / 2);
        const t = await by(deadline, this.timestampAt(mid));
        // A record purged meanwhile is older than everything kept.
        if (t === undefined || t < ts) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    } catch (e) {
      if (e instanceof LogUnavailableError || this.closing) throw e;
      throw new LogUnavailableError(natsErrorCode(e), `JetStream did not find the offset of a time in ${this.c.timeoutMs} ms (${natsErrorCode(e)})`, { cause: e });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Waiting: the watcher follows the stream's last sequence

  private async startWatch(): Promise<void> {
    if (this.closing) return;
    try {
      const consumer = await this.c.js.consumers.get(this.stream, {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: this.end + 1,
        headers_only: true,
      });
      if (this.closing) {
        await consumer.delete().catch(() => undefined);
        return;
      }
      const messages = await consumer.consume({ max_messages: 1000 });
      this.watch.messages = messages;
      if (this.watch.failing) this.c.report(`${this.stream}: following the stream's end again`);
      this.watch.failing = false;
      for await (const m of messages) this.advance(m.seq + Math.max(0, m.info.pending));
    } catch (e) {
      // Reported once per streak: a stream gone or NATS down would otherwise say so every second.
      if (!this.closing && !this.watch.failing) this.c.report(`${this.stream}: following the stream's end failed (${natsErrorCode(e)}); retrying every ${WATCH_RETRY_MS} ms`);
      this.watch.failing = true;
    }
    if (this.closing) return;
    this.watch.messages = undefined;
    this.watch.timer = setTimeout(() => void this.startWatch(), WATCH_RETRY_MS);
    this.watch.timer.unref();
  }

  private settleWaiter(w: Waiter, ok: boolean): void {
    clearTimeout(w.timer);
    this.waiters.delete(w);
    w.resolve(ok);
  }

  waitFor(offset: number, timeoutMs: number): Promise<boolean> {
    if (this.end > offset) return Promise.resolve(true);
    if (this.closing) return Promise.resolve(false);
    return new Promise((resolve) => {
      const w: Waiter = { offset, resolve, timer: setTimeout(() => this.settleWaiter(w, false), Math.min(timeoutMs, MAX_TIMER_MS)) };
      this.waiters.add(w);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Retention, consumers, closing

  /** Purges every record older than cutoffMs (record by record: JetStream has no segments to keep whole). */
  async deleteOlderThan(cutoffMs: number): Promise<number> {
    const keepFrom = await this.offsetForTimestamp(cutoffMs);
    if (keepFrom <= this.start) return 0;
    const r = await this.c.jsm.streams.purge(this.stream, { seq: keepFrom + 1 });
    this.advance(this.end, keepFrom);
    return r.purged;
  }

  async checkConsumer(consumer: string, checkpoint: number): Promise<OffsetGap | undefined> {
    const prior = this.gaps.get(consumer);
    if (prior && checkpoint <= prior.checkpoint) return prior;
    if (!Number.isSafeInteger(checkpoint) || checkpoint <= (this.auditBase ?? this.end)) return undefined;
    await this.refresh();
    // Records appended since open end the audit as this node's own append does: with several
    // nodes on one stream they are other nodes' (a checkpoint another node's worker saved there is
    // not a loss).
    if (this.auditBase !== undefined && this.end > this.auditBase) this.auditBase = undefined;
    const end = this.auditBase ?? this.end;
    if (checkpoint <= end || this.closing) return undefined;
    const gap = offsetGap(consumer, checkpoint, end, 'the stream lost them');
    this.gaps.set(consumer, gap);
    this.h.checkpointGaps++;
    this.c.report(`${this.stream}: ${consumer}: ${gap.message}`);
    // JetStream 2.9 can move a stream's next sequence only by purging up to it: the records still
    // below the checkpoint go too (they were stored after the loss; a consumer at the checkpoint had
    // passed their offsets already). Only when the stream's end is still below the checkpoint.
    if (checkpoint > this.end) {
      await this.c.jsm.streams.purge(this.stream, { seq: checkpoint + 1 });
      this.advance(checkpoint, checkpoint);
    }
    return gap;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearTimeout(this.watch.timer);
      clearInterval(this.refresher);
      for (const w of this.waiters) this.settleWaiter(w, false);
      await this.watch.messages?.close().catch(() => undefined);
      await this.reading;
      this.dropReader();
      this.c.onClose(this);
    })();
    return this.closing;
  }

  async destroy(): Promise<void> {
    await this.close();
    try {
      await this.c.jsm.streams.delete(this.stream);
    } catch (e) {
      if (!(e instanceof JetStreamApiError && e.code === 10059)) throw e; // 10059: stream not found
    }
  }
}
