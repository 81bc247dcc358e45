// Enhanced fan-out for the embedded Kinesis (reference/kinesis-firehose.md §2.11): registered
// stream consumers (Register/Describe/List/DeregisterStreamConsumer, kept in StreamState.consumers,
// status moved lazily on the injected clock like streams) and SubscribeToShard, which pushes a
// shard's records to a consumer as an AWS event stream on the open HTTP response: an
// `initial-response` event, then `SubscribeToShardEvent`s as records land, at least one per
// heartbeat, until the subscription's lifetime is over or a closed shard has been read to its end.
// Wired into kinesisService through its `extra` argument.

import { Readable } from 'node:stream';
import {
  CBOR_CONTENT_TYPE,
  encodeBody,
  timestampOut,
  JSON_CONTENT_TYPE,
  ServiceError,
  timestampInput,
  type JsonRpcService,
  type RawOperation,
  type WireFormat,
} from '../http/awsjson.js';
import { EVENT_STREAM_CONTENT_TYPE, eventMessage, exceptionMessage } from '../http/eventstream.js';
import { shownValue, type Json } from '../http/shape.js';
import type { Clock } from '../clock.js';
import type { KinesisServices } from './api.js';
import { expiredNextToken, invalidArgument, limitExceeded, resourceInUse, resourceNotFound, validation } from './errors.js';
import { decodeSequenceNumber, parseShardId, sequenceNumber, shardIdOf } from './keys.js';
import { MAX_CONSUMERS_PER_STREAM } from './limits.js';
import { withRecordsJson, type IteratorType, type KinesisData, type ShardRead } from './records.js';
import type { ConsumerState, ShardState, StreamRegistry, StreamState } from './streams.js';

/** AWS ends every subscription after 5 minutes; the client re-subscribes from its continuation. */
export const SUBSCRIPTION_LIFETIME_MS = 5 * 60_000;
/** An event goes out at least this often, empty if need be, as AWS does, so idle clients see life. */
export const SUBSCRIPTION_HEARTBEAT_MS = 5_000;
/** Within this time of a subscription's start, another for the same consumer and shard is refused. */
export const SUBSCRIPTION_TAKEOVER_MS = 5_000;
/** AWS lets at most 5 consumers be CREATING at the same time (per account). */
export const MAX_CREATING_CONSUMERS = 5;
export const DEFAULT_LIST_CONSUMERS = 100;
export const LIST_CONSUMERS_TOKEN_TTL_MS = 5 * 60_000;
/** Records per SubscribeToShardEvent (the read is also capped at GetRecords' 10 MiB). */
const MAX_EVENT_RECORDS = 10_000;

const CONSUMER_ARN_RE = /^arn:aws:kinesis:([^:]*):(\d{12}):stream\/([a-zA-Z0-9_.-]+)\/consumer\/([a-zA-Z0-9_.-]+):(\d+)$/;

export interface SubscriptionOptions {
  lifetimeMs: number;
  heartbeatMs: number;
  takeoverMs: number;
}

/**
 * The running subscriptions of one stream registry (one server). Tests reach it through
 * `subscriptionHub(server.kinesis)` to shorten the timings and to watch `active`.
 */
export class SubscriptionHub {
  readonly options: SubscriptionOptions = {
    lifetimeMs: SUBSCRIPTION_LIFETIME_MS,
    heartbeatMs: SUBSCRIPTION_HEARTBEAT_MS,
    takeoverMs: SUBSCRIPTION_TAKEOVER_MS,
  };
  /** Every subscription still producing, including ones being taken over. */
  private running = new Set<Subscription>();
  /** The current subscription per consumer ARN and shard. */
  private current = new Map<string, Subscription>();

  get active(): number {
    return this.running.size;
  }

  /** Ends the consumer's subscriptions (deregistration), telling each client why. */
  endConsumer(consumerArn: string, error: StreamError): void {
    for (const sub of this.running) if (sub.consumerArn === consumerArn) sub.stop(error);
  }

  /** @internal */
  claim(key: string, sub: Subscription, now: number, refuse: () => Error): void {
    const old = this.current.get(key);
    if (old && !old.stopped) {
      if (now - old.startedMs < this.options.takeoverMs) throw refuse();
      old.stop({ type: 'ResourceInUseException', message: `Another subscription for consumer ${old.consumerArn} on shard ${old.shardId} took over.` });
    }
    this.current.set(key, sub);
    this.running.add(sub);
  }

  /** @internal */
  release(key: string, sub: Subscription): void {
    this.running.delete(sub);
    if (this.current.get(key) === sub) this.current.delete(key);
  }
}

const hubs = new WeakMap<StreamRegistry, SubscriptionHub>();

export function subscriptionHub(registry: StreamRegistry): SubscriptionHub {
  let hub = hubs.get(registry);
  if (!hub) hubs.set(registry, (hub = new SubscriptionHub()));
  return hub;
}

interface StreamError {
  type: string;
  message: string;
}

export function consumerOperations(k: KinesisServices): Pick<JsonRpcService, 'operations' | 'rawOperations'> {
  const { registry, data, signer, clock } = k;
  const { accountId, region } = registry.opts;
  const hub = subscriptionHub(registry);

  const consumerArn = (s: StreamState, c: ConsumerState) => `${registry.arn(s.name)}/consumer/${c.name}:${Math.floor(c.createdMs / 1000)}`;
  const consumerShape = (s: StreamState, c: ConsumerState) => ({
    ConsumerName: c.name,
    ConsumerARN: consumerArn(s, c),
    ConsumerStatus: c.status,
    ConsumerCreationTimestamp: timestampOut(c.createdMs),
  });
  const consumerNotFound = (what: string) => resourceNotFound(`Consumer ${what} under account ${accountId} not found.`);

  /** Applies due CREATING → ACTIVE and DELETING → gone transitions. */
  function settle(s: StreamState): void {
    const now = clock.now();
    let changed = false;
    for (const c of [...s.consumers]) {
      if (c.status === 'ACTIVE' || now < c.statusUntilMs) continue;
      if (c.status === 'DELETING') s.consumers = s.consumers.filter((x) => x !== c);
      else c.status = 'ACTIVE';
      changed = true;
    }
    // Lazy (reads apply it too): nobody waits for the write; a failure is reported.
    if (changed) registry.save(s).catch((e) => console.error(`pinstream: saving consumers of Kinesis stream ${s.name} failed`, e));
  }

  /** `arn` as the model validated it (present where the operation requires it). */
  function streamByArn(arn: unknown): StreamState {
    const s = registry.get(registry.resolveName({ StreamARN: arn }));
    settle(s);
    return s;
  }

  /** By ConsumerARN, or StreamARN + ConsumerName; all three may be given if they agree. */
  function findConsumer(i: Json): { s: StreamState; c: ConsumerState } {
    if (i.ConsumerARN !== undefined && i.ConsumerARN !== null) {
      const found = consumerByArn(i.ConsumerARN as string);
      if (i.StreamARN !== undefined && i.StreamARN !== null && i.StreamARN !== registry.arn(found.s.name)) {
        throw invalidArgument(`StreamARN ${shownValue(i.StreamARN)} does not match the stream of ConsumerARN ${shownValue(i.ConsumerARN)}.`);
      }
      if (i.ConsumerName !== undefined && i.ConsumerName !== null && i.ConsumerName !== found.c.name) {
        throw invalidArgument(`ConsumerName ${shownValue(i.ConsumerName)} does not match ConsumerARN ${shownValue(i.ConsumerARN)}.`);
      }
      return found;
    }
    if (i.StreamARN === undefined || i.StreamARN === null || i.ConsumerName === undefined || i.ConsumerName === null) {
      throw invalidArgument('Either ConsumerARN, or both StreamARN and ConsumerName, must be provided.');
    }
    const name = i.ConsumerName as string;
    const s = streamByArn(i.StreamARN);
    const c = s.consumers.find((x) => x.name === name);
    if (!c) throw resourceNotFound(`Consumer ${name} under stream ${s.name} under account ${accountId} not found.`);
    return { s, c };
  }

  /** `arn`: a ConsumerARN the model's pattern admitted; only this server's canonical spelling names a consumer. */
  function consumerByArn(arn: string): { s: StreamState; c: ConsumerState } {
    const m = CONSUMER_ARN_RE.exec(arn);
    if (!m) throw consumerNotFound(arn);
    const [, arnRegion, account, streamName, name, seconds] = m;
    // Only the canonical spelling: IAM policies are matched against it (see StreamRegistry.resolveName).
    if (account !== accountId || arnRegion !== region) throw consumerNotFound(String(arn));
    let s: StreamState;
    try {
      s = registry.get(streamName);
    } catch (e) {
      if (e instanceof ServiceError && e.code === 'ResourceNotFoundException') throw consumerNotFound(String(arn));
      throw e;
    }
    settle(s);
    // The ARN's timestamp tells a consumer from an earlier one of the same name.
    const c = s.consumers.find((x) => x.name === name && String(Math.floor(x.createdMs / 1000)) === seconds);
    if (!c) throw consumerNotFound(String(arn));
    return { s, c };
  }

  const operations: JsonRpcService['operations'] = {
    async RegisterStreamConsumer(i) {
      const s = streamByArn(i.StreamARN);
      const name = i.ConsumerName as string;
      if (s.status !== 'ACTIVE' && s.status !== 'UPDATING') {
        throw resourceInUse(`Stream ${s.name} under account ${accountId} not ACTIVE, instead in state ${s.status}`);
      }
      if (s.consumers.some((c) => c.name === name)) {
        throw resourceInUse(`Consumer ${name} under stream ${s.name} already exists for account ${accountId}.`);
      }
      if (s.consumers.filter((c) => c.status !== 'DELETING').length >= MAX_CONSUMERS_PER_STREAM) {
        throw limitExceeded(`Stream ${s.name} under account ${accountId} already has the maximum of ${MAX_CONSUMERS_PER_STREAM} registered consumers.`);
      }
      const transition = registry.opts.transitionMs;
      if (transition > 0) {
        let creating = 0;
        for (const x of registry.list()) {
          settle(x);
          creating += x.consumers.filter((c) => c.status === 'CREATING').length;
        }
        if (creating >= MAX_CREATING_CONSUMERS) {
          throw limitExceeded(`Account ${accountId} already has ${creating} consumers in CREATING state; at most ${MAX_CREATING_CONSUMERS} can be created at the same time.`);
        }
      }
      const now = clock.now();
      const c: ConsumerState = { name, createdMs: now, status: transition > 0 ? 'CREATING' : 'ACTIVE', statusUntilMs: now + transition };
      s.consumers.push(c);
      await registry.save(s);
      return { Consumer: consumerShape(s, c) };
    },

    DescribeStreamConsumer(i) {
      const { s, c } = findConsumer(i);
      return { ConsumerDescription: { ...consumerShape(s, c), StreamARN: registry.arn(s.name) } };
    },

    ListStreamConsumers(i) {
      const s = streamByArn(i.StreamARN);
      const max = (i.MaxResults as number | undefined) ?? DEFAULT_LIST_CONSUMERS;
      if (i.StreamCreationTimestamp !== undefined && i.StreamCreationTimestamp !== null) {
        if (Math.abs(timestampInput(i.StreamCreationTimestamp, 'StreamCreationTimestamp') - s.createdMs) >= 1) throw registry.notFound(s.name);
      }
      let after: [number, string] | undefined;
      if (i.NextToken !== undefined && i.NextToken !== null) {
        const t = typeof i.NextToken === 'string' ? signer.decodeToken<{ stream: string; created: number; after: [number, string]; issued: number }>(i.NextToken) : undefined;
        if (!t || !Array.isArray(t.after)) throw invalidArgument('Invalid NextToken.');
        if (clock.now() - t.issued > LIST_CONSUMERS_TOKEN_TTL_MS) throw expiredNextToken('The NextToken has expired.');
        if (t.stream !== s.name || t.created !== s.createdMs) throw invalidArgument(`NextToken was not issued for stream ${s.name}.`);
        after = t.after;
      }
      // Registration order, ties by name; the token keeps the last key, so deletions don't shift pages.
      const key = (c: ConsumerState): [number, string] => [c.createdMs, c.name];
      const gt = (a: [number, string], b: [number, string]) => a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
      const all = [...s.consumers].sort((a, b) => (gt(key(a), key(b)) ? 1 : -1)).filter((c) => !after || gt(key(c), after));
      const page = all.slice(0, max);
      const more = all.length > page.length;
      return {
        Consumers: page.map((c) => consumerShape(s, c)),
        ...(more
          ? { NextToken: signer.encodeToken({ stream: s.name, created: s.createdMs, after: key(page[page.length - 1]), issued: clock.now() }) }
          : {}),
      };
    },

    async DeregisterStreamConsumer(i) {
      const { s, c } = findConsumer(i);
      const arn = consumerArn(s, c);
      if (c.status !== 'DELETING') {
        if (registry.opts.transitionMs > 0) {
          c.status = 'DELETING';
          c.statusUntilMs = clock.now() + registry.opts.transitionMs;
        } else {
          s.consumers = s.consumers.filter((x) => x !== c);
        }
        await registry.save(s);
      }
      hub.endConsumer(arn, { type: 'ResourceNotFoundException', message: `Consumer ${arn} under account ${accountId} was deregistered.` });
      return undefined;
    },
  };

  const SubscribeToShard: RawOperation = async (i, _req, format) => {
    const { s, c } = consumerByArn(i.ConsumerARN as string);
    const arn = consumerArn(s, c);
    if (c.status !== 'ACTIVE') throw resourceInUse(`Consumer ${arn} under account ${accountId} is not ACTIVE, instead in state ${c.status}.`);
    if (s.status !== 'ACTIVE' && s.status !== 'UPDATING') throw registry.notFound(s.name);
    if (typeof i.ShardId !== 'string' || !/^[a-zA-Z0-9_.-]{1,128}$/.test(i.ShardId)) {
      throw validation(i.ShardId, 'shardId', 'Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+');
    }
    // AWS's lenient shard id forms; a missing shard is echoed in its canonical spelling.
    const index = parseShardId(i.ShardId);
    const shard = index === undefined ? undefined : registry.shard(s, index);
    if (!shard) throw resourceNotFound(`Could not find shard ${index === undefined ? i.ShardId : shardIdOf(index)} in stream ${s.name} under account ${accountId}.`);
    const offset = await startingOffset(s, shard, i.StartingPosition);

    // Decided after the last await, so two concurrent calls cannot both pass the takeover check.
    const sub = new Subscription({ registry, data, clock, hub, format, stream: s, shard, consumerArn: arn, offset });
    hub.claim(`${arn}|${shard.index}`, sub, clock.now(), () =>
      resourceInUse(`Another active subscription exists for consumer ${arn} on shard ${shardIdOf(shard.index)}; a new one can take over ${hub.options.takeoverMs / 1000} seconds after it started.`),
    );
    sub.start();
    return { status: 200, headers: { 'content-type': EVENT_STREAM_CONTENT_TYPE }, body: sub.body };
  };

  /** StartingPosition → shard log offset, with GetShardIterator's rules for which fields go together. */
  async function startingOffset(s: StreamState, shard: ShardState, position: unknown): Promise<number> {
    const pos = position as Json; // required, with a Type from the model's enum
    const type = pos.Type as IteratorType;
    const bySeq = type === 'AT_SEQUENCE_NUMBER' || type === 'AFTER_SEQUENCE_NUMBER';
    const seq = pos.SequenceNumber;
    const hasSeq = seq !== undefined && seq !== null;
    if (bySeq !== hasSeq) {
      throw invalidArgument(`StartingPosition of type ${type} ${bySeq ? 'requires' : 'must not have'} a SequenceNumber.`);
    }
    if (bySeq) {
      const d = typeof seq === 'string' ? decodeSequenceNumber(seq) : undefined;
      if (!d || d.shardIndex !== shard.index) {
        throw invalidArgument(
          `StartingSequenceNumber ${String(seq)} used in SubscribeToShard on shard ${shardIdOf(shard.index)} in stream ${s.name} under account ${accountId} is invalid because it did not come from this stream.`,
        );
      }
    }
    let ts: number | undefined;
    if (type === 'AT_TIMESTAMP') {
      if (pos.Timestamp === undefined || pos.Timestamp === null) throw invalidArgument('StartingPosition of type AT_TIMESTAMP requires a Timestamp.');
      ts = timestampInput(pos.Timestamp, 'StartingPosition.Timestamp');
    }
    return data.iteratorOffset(s, shard, type, hasSeq ? String(seq) : undefined, ts);
  }

  return { operations, rawOperations: { SubscribeToShard } };
}

interface SubscriptionContext {
  registry: StreamRegistry;
  data: KinesisData;
  clock: Clock;
  hub: SubscriptionHub;
  format: WireFormat;
  stream: StreamState;
  shard: ShardState;
  consumerArn: string;
  offset: number;
}

type Wake = 'data' | 'closed' | 'tick' | 'wake';

/**
 * One SubscribeToShard response. Its producer loop reads the shard from `offset` and pushes
 * event-stream messages into `body`; it waits on the shard log (never polls) and stops as soon as
 * it is asked to (lifetime over, takeover, deregistration) or the body is destroyed (the client
 * went away), and then releases its hub slot, its timers and its log waiters.
 */
class Subscription {
  readonly body: Readable;
  readonly startedMs: number;
  readonly consumerArn: string;
  readonly shardId: string;
  stopped = false;
  private error: StreamError | undefined;
  private wakeUp: (() => void) | undefined;
  private lifetime: NodeJS.Timeout | undefined;
  private readonly key: string;
  private readonly contentType: string;

  constructor(private ctx: SubscriptionContext) {
    this.startedMs = ctx.clock.now();
    this.consumerArn = ctx.consumerArn;
    this.shardId = shardIdOf(ctx.shard.index);
    this.key = `${ctx.consumerArn}|${ctx.shard.index}`;
    this.contentType = ctx.format === 'cbor' ? CBOR_CONTENT_TYPE : JSON_CONTENT_TYPE;
    this.body = new Readable({
      read: () => this.wake(),
      destroy: (err, cb) => {
        this.stop();
        cb(err);
      },
    });
  }

  start(): void {
    this.lifetime = setTimeout(() => this.stop(), this.ctx.hub.options.lifetimeMs);
    void this.run();
  }

  /** Asks the producer to end, after sending `error` as an exception event when given. */
  stop(error?: StreamError): void {
    if (this.stopped) return;
    this.stopped = true;
    this.error = error;
    this.wake();
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  private waitWake(): Promise<'wake'> {
    return new Promise((resolve) => (this.wakeUp = () => resolve('wake')));
  }

  private async run(): Promise<void> {
    const { registry, data, stream: s, shard } = this.ctx;
    const heartbeatMs = this.ctx.hub.options.heartbeatMs;
    let offset = this.ctx.offset;
    // Resuming with AFTER_SEQUENCE_NUMBER at this continuation restarts exactly at `offset`: the
    // record at offset o has counter o + 1 (keys.ts), so counter `offset` means "after offset - 1".
    let continuation = sequenceNumber(shard.createdMs, shard.index, offset, shard.createdMs);
    let lastSent = performance.now();
    try {
      const log = await registry.log(s, shard.index);
      this.send('initial-response', {});
      while (!this.stopped) {
        const gone = this.checkStream();
        if (gone) {
          this.error = gone;
          break;
        }
        const r = await this.read(offset);
        if (this.stopped) break;
        if (!r) {
          // Shard read limits are on and this second's budget is spent: resume at the next second.
          await this.idle(undefined, 1000 - (Date.now() % 1000));
          continue;
        }
        if (r.records.length > 0) {
          continuation = r.records[r.records.length - 1].SequenceNumber;
        } else if (r.nextOffset !== offset) {
          continuation = sequenceNumber(shard.createdMs, shard.index, r.nextOffset, shard.createdMs);
        }
        offset = r.nextOffset;
        if (r.records.length > 0) {
          this.send('SubscribeToShardEvent', withRecordsJson({ Records: r.records, ContinuationSequenceNumber: continuation, MillisBehindLatest: r.millisBehindLatest }));
          lastSent = performance.now();
        }
        if (r.ended) {
          // The end of a closed shard: no continuation, and the children to go on with. Consumers
          // (KCL, Flink, Beam) recognise shard end by the missing ContinuationSequenceNumber.
          this.send('SubscribeToShardEvent', { Records: [], MillisBehindLatest: 0, ChildShards: data.childShards(s, shard) });
          break;
        }
        if (r.records.length === 0) {
          const due = heartbeatMs - (performance.now() - lastSent);
          const why = due <= 0 ? 'tick' : await this.idle(log.waitFor(offset, due + 1000), due);
          if (this.stopped) break;
          if (why === 'closed') break; // the log was closed under us: server shutdown or stream deletion
          if (why === 'tick') {
            this.send('SubscribeToShardEvent', { Records: [], ContinuationSequenceNumber: continuation, MillisBehindLatest: 0 });
            lastSent = performance.now();
          }
        }
        await this.drained();
      }
      if (!this.stopped) this.error ??= this.checkStream();
    } catch (e) {
      if (!this.stopped) {
        // A read racing the stream's deletion fails on the closed log: report the deletion.
        this.error = this.checkStream();
        if (!this.error) {
          console.error(`pinstream: SubscribeToShard on ${s.name}/${this.shardId} failed`, e);
          this.error = { type: 'InternalFailureException', message: 'Internal service failure.' };
        }
      }
    } finally {
      this.stopped = true;
      clearTimeout(this.lifetime);
      this.ctx.hub.release(this.key, this);
      if (!this.body.destroyed) {
        if (this.error) this.push(exceptionMessage(this.error.type, this.payload({ message: this.error.message }), this.contentType));
        this.body.push(null);
      }
    }
  }

  /** Undefined when the shard's read quota (PINSTREAM_KINESIS_SHARD_LIMITS) refused the read. */
  private async read(offset: number): Promise<ShardRead | undefined> {
    try {
      return await this.ctx.data.read(this.ctx.stream, this.ctx.shard, offset, MAX_EVENT_RECORDS, false);
    } catch (e) {
      if (e instanceof ServiceError && e.code === 'ProvisionedThroughputExceededException') return undefined;
      throw e;
    }
  }

  /**
   * Waits for new records (when `data` is given), the tick, or a stop. The log waiter is given a
   * longer timeout than the tick, so its resolving `false` first can only mean the log was closed.
   */
  private async idle(data: Promise<boolean> | undefined, tickMs: number): Promise<Wake> {
    let timer: NodeJS.Timeout | undefined;
    const tick = new Promise<Wake>((resolve) => (timer = setTimeout(() => resolve('tick'), tickMs)));
    const waits: Array<Promise<Wake>> = [tick, this.waitWake()];
    if (data) waits.push(data.then((ok): Wake => (ok ? 'data' : 'closed')));
    try {
      return await Promise.race(waits);
    } finally {
      clearTimeout(timer);
      this.wakeUp = undefined;
    }
  }

  /** Backpressure: waits until the response has taken what was pushed (or the producer stops). */
  private async drained(): Promise<void> {
    while (!this.stopped && this.body.readableLength >= this.body.readableHighWaterMark) await this.waitWake();
  }

  /** The stream deleted or recreated, or the consumer deregistered, ends the subscription. */
  private checkStream(): StreamError | undefined {
    const { registry, stream } = this.ctx;
    let now: StreamState | undefined;
    try {
      now = registry.get(stream.name);
    } catch {
      now = undefined;
    }
    if (now !== stream || (now.status !== 'ACTIVE' && now.status !== 'UPDATING')) {
      return { type: 'ResourceNotFoundException', message: `Stream ${stream.name} under account ${registry.opts.accountId} not found.` };
    }
    if (!stream.consumers.some((c) => c.status === 'ACTIVE' && this.consumerArn.endsWith(`/consumer/${c.name}:${Math.floor(c.createdMs / 1000)}`))) {
      return { type: 'ResourceNotFoundException', message: `Consumer ${this.consumerArn} under account ${registry.opts.accountId} not found.` };
    }
    return undefined;
  }

  private send(eventType: string, value: object): void {
    this.push(eventMessage(eventType, this.payload(value), this.contentType));
  }

  private push(frame: Buffer): void {
    if (!this.body.destroyed) this.body.push(frame);
  }

  /** Event payloads are the member's body encoded as any response in the request's format is. */
  private payload(value: object): Buffer {
    const body = encodeBody(value, this.ctx.format, 200).body;
    return Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : '');
  }
}


