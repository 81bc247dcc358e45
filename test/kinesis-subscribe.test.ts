// Enhanced fan-out against the official @aws-sdk/client-kinesis (HTTP/2, as it ships): consumer
// registration (shapes, limits, errors, CREATING on the injected clock) and SubscribeToShard event
// streams (records already there and arriving, LATEST, resuming from sequence numbers, the end of
// a closed shard, lifetime, takeover, deregistration, client abort), plus the raw wire (event-stream
// framing, headers, CBOR payloads) over HTTP/1.1. Timings are shortened through the subscription
// hub so every test finishes in about a second.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  CreateStreamCommand,
  DeleteStreamCommand,
  DeregisterStreamConsumerCommand,
  DescribeStreamConsumerCommand,
  DescribeStreamSummaryCommand,
  KinesisClient,
  ListStreamConsumersCommand,
  PutRecordCommand,
  RegisterStreamConsumerCommand,
  SplitShardCommand,
  SubscribeToShardCommand,
  type StartingPosition,
  type SubscribeToShardEvent,
  type SubscribeToShardEventStream,
} from '@aws-sdk/client-kinesis';
import { EventStreamCodec } from '@smithy/core/event-streams';
import { decode as cborDecode } from 'cborg';
import { ManualClock } from '../src/clock.js';
import { decodeMessages, encodeMessage, EVENT_STREAM_CONTENT_TYPE } from '../src/http/eventstream.js';
import { subscriptionHub, SUBSCRIPTION_HEARTBEAT_MS, SUBSCRIPTION_LIFETIME_MS, SUBSCRIPTION_TAKEOVER_MS } from '../src/kinesis/consumers.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { kinesisClient } from './helpers/kinesis.js';
import { kinesisPost } from './helpers/signed.js';

const SHARD0 = 'shardId-000000000000';

async function assertError(p: Promise<unknown>, name: string, message?: RegExp): Promise<any> {
  try {
    await p;
  } catch (e: any) {
    assert.equal(e.name, name, `expected ${name}, got ${e.name}: ${e.message}`);
    if (message) assert.match(e.message, message);
    return e;
  }
  assert.fail(`expected ${name}`);
}

/** Polls a condition the test cannot await directly (server-side bookkeeping), bounded. */
async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function createStream(k: KinesisClient, name: string, shards = 1): Promise<string> {
  await k.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
  return (await k.send(new DescribeStreamSummaryCommand({ StreamName: name }))).StreamDescriptionSummary!.StreamARN!;
}

async function put(k: KinesisClient, stream: string, data: Buffer, key = 'pk', hashKey?: bigint): Promise<string> {
  const out = await k.send(new PutRecordCommand({ StreamName: stream, PartitionKey: key, Data: data, ExplicitHashKey: hashKey?.toString() }));
  return out.SequenceNumber!;
}

/** The first hash key of the upper half: where SplitShard below puts its second child. */
const UPPER_HALF = 1n << 127n;

/** A subscription the test reads event by event, and can abort. */
class Sub {
  readonly abort = new AbortController();
  private it!: AsyncIterator<SubscribeToShardEventStream>;

  static async open(k: KinesisClient, consumerArn: string, pos: StartingPosition, shardId = SHARD0): Promise<Sub> {
    const sub = new Sub();
    const res = await k.send(new SubscribeToShardCommand({ ConsumerARN: consumerArn, ShardId: shardId, StartingPosition: pos }), {
      abortSignal: sub.abort.signal,
    });
    sub.it = res.EventStream![Symbol.asyncIterator]();
    return sub;
  }

  /** The next SubscribeToShardEvent, or undefined when the stream ended. */
  async next(): Promise<SubscribeToShardEvent | undefined> {
    const r = await this.it.next();
    if (r.done) return undefined;
    assert.ok(r.value.SubscribeToShardEvent, `unexpected event ${JSON.stringify(Object.keys(r.value))}`);
    return r.value.SubscribeToShardEvent;
  }

  /** Events until `count` records arrived in total. */
  async records(count: number): Promise<{ events: SubscribeToShardEvent[]; records: NonNullable<SubscribeToShardEvent['Records']> }> {
    const events: SubscribeToShardEvent[] = [];
    const records: NonNullable<SubscribeToShardEvent['Records']> = [];
    while (records.length < count) {
      const ev = await this.next();
      assert.ok(ev, `stream ended after ${records.length} of ${count} records`);
      events.push(ev);
      records.push(...(ev.Records ?? []));
    }
    return { events, records };
  }

  /** Everything until the server ends the stream. */
  async rest(): Promise<SubscribeToShardEvent[]> {
    const out: SubscribeToShardEvent[] = [];
    for (let ev = await this.next(); ev; ev = await this.next()) out.push(ev);
    return out;
  }
}

describe('stream consumers', () => {
  let ts: TestServer;
  let k: KinesisClient;
  let streamArn: string;

  before(async () => {
    ts = await startTestServer();
    k = kinesisClient(ts.server);
    streamArn = await createStream(k, 'consumers');
  });
  after(async () => {
    k.destroy();
    await ts.close();
  });

  test('register, describe by ARN and by stream + name, list in pages, deregister', async () => {
    const registeredAt = Date.now();
    const { Consumer } = await k.send(new RegisterStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: 'app-1' }));
    assert.equal(Consumer!.ConsumerName, 'app-1');
    assert.equal(Consumer!.ConsumerStatus, 'ACTIVE');
    assert.ok(Consumer!.ConsumerCreationTimestamp instanceof Date);
    assert.ok(Math.abs(Consumer!.ConsumerCreationTimestamp.getTime() - registeredAt) < 5000);
    const seconds = Math.floor(Consumer!.ConsumerCreationTimestamp.getTime() / 1000);
    assert.equal(Consumer!.ConsumerARN, `${streamArn}/consumer/app-1:${seconds}`);
    assert.match(Consumer!.ConsumerARN!, /^(arn):aws.*:kinesis:.*:\d{12}:.*stream\/[a-zA-Z0-9_.-]+\/consumer\/[a-zA-Z0-9_.-]+:[0-9]+$/);

    const byArn = await k.send(new DescribeStreamConsumerCommand({ ConsumerARN: Consumer!.ConsumerARN }));
    assert.deepEqual(byArn.ConsumerDescription, { ...Consumer, StreamARN: streamArn });
    const byName = await k.send(new DescribeStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: 'app-1' }));
    assert.deepEqual(byName.ConsumerDescription, byArn.ConsumerDescription);
    const all3 = await k.send(new DescribeStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: 'app-1', ConsumerARN: Consumer!.ConsumerARN }));
    assert.deepEqual(all3.ConsumerDescription, byArn.ConsumerDescription);
    await assertError(
      k.send(new DescribeStreamConsumerCommand({ ConsumerName: 'other', ConsumerARN: Consumer!.ConsumerARN })),
      'InvalidArgumentException',
    );

    for (const n of ['app-2', 'app-3']) await k.send(new RegisterStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: n }));
    const page1 = await k.send(new ListStreamConsumersCommand({ StreamARN: streamArn, MaxResults: 2 }));
    assert.equal(page1.Consumers!.length, 2);
    assert.ok(page1.NextToken);
    const page2 = await k.send(new ListStreamConsumersCommand({ StreamARN: streamArn, MaxResults: 2, NextToken: page1.NextToken }));
    assert.equal(page2.NextToken, undefined);
    assert.deepEqual([...page1.Consumers!, ...page2.Consumers!].map((c) => c.ConsumerName), ['app-1', 'app-2', 'app-3']);
    assert.deepEqual(page1.Consumers![0], Consumer);
    const summary = await k.send(new DescribeStreamSummaryCommand({ StreamARN: streamArn }));
    assert.equal(summary.StreamDescriptionSummary!.ConsumerCount, 3);

    await k.send(new DeregisterStreamConsumerCommand({ ConsumerARN: Consumer!.ConsumerARN }));
    await k.send(new DeregisterStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: 'app-2' }));
    await assertError(k.send(new DescribeStreamConsumerCommand({ ConsumerARN: Consumer!.ConsumerARN })), 'ResourceNotFoundException', /not found/);
    await assertError(k.send(new DescribeStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: 'app-2' })), 'ResourceNotFoundException');
    const left = await k.send(new ListStreamConsumersCommand({ StreamARN: streamArn }));
    assert.deepEqual(left.Consumers!.map((c) => c.ConsumerName), ['app-3']);
    await k.send(new DeregisterStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: 'app-3' }));
  });

  test('duplicates, the 20-consumer limit, bad names and unknown streams are refused with AWS error types', async () => {
    const arn = await createStream(k, 'consumers-limits');
    await k.send(new RegisterStreamConsumerCommand({ StreamARN: arn, ConsumerName: 'dup' }));
    await assertError(k.send(new RegisterStreamConsumerCommand({ StreamARN: arn, ConsumerName: 'dup' })), 'ResourceInUseException', /already exists/);
    for (let n = 1; n < 20; n++) await k.send(new RegisterStreamConsumerCommand({ StreamARN: arn, ConsumerName: `c${n}` }));
    await assertError(k.send(new RegisterStreamConsumerCommand({ StreamARN: arn, ConsumerName: 'c20' })), 'LimitExceededException', /20/);
    const listed = await k.send(new ListStreamConsumersCommand({ StreamARN: arn }));
    assert.equal(listed.Consumers!.length, 20);

    await assertError(k.send(new RegisterStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: 'bad name!' })), 'ValidationException', /consumerName/);
    await assertError(k.send(new RegisterStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: 'x'.repeat(129) })), 'ValidationException');
    await assertError(
      k.send(new RegisterStreamConsumerCommand({ StreamARN: streamArn.replace(/consumers$/, 'nope'), ConsumerName: 'a' })),
      'ResourceNotFoundException',
    );
    await assertError(k.send(new DescribeStreamConsumerCommand({ ConsumerARN: 'not-an-arn' })), 'ValidationException', /consumerARN/);
    await assertError(k.send(new DescribeStreamConsumerCommand({ ConsumerARN: `${streamArn}/consumer/ghost:1700000000` })), 'ResourceNotFoundException');
    await assertError(k.send(new DescribeStreamConsumerCommand({ StreamARN: streamArn })), 'InvalidArgumentException');
    await assertError(k.send(new ListStreamConsumersCommand({ StreamARN: arn, NextToken: 'bogus' })), 'InvalidArgumentException');
    await assertError(k.send(new ListStreamConsumersCommand({ StreamARN: arn, MaxResults: 0 })), 'ValidationException');
  });

  test('a consumer is CREATING for the transition time on the injected clock, and cannot subscribe until ACTIVE', async () => {
    const clock = new ManualClock();
    const slow = await startTestServer({ clock, config: { kinesisTransitionMs: 1000 } });
    const sk = kinesisClient(slow.server);
    try {
      await sk.send(new CreateStreamCommand({ StreamName: 'slow', ShardCount: 1 }));
      clock.advance(1000);
      const arn = (await sk.send(new DescribeStreamSummaryCommand({ StreamName: 'slow' }))).StreamDescriptionSummary!.StreamARN!;
      const { Consumer } = await sk.send(new RegisterStreamConsumerCommand({ StreamARN: arn, ConsumerName: 'late' }));
      assert.equal(Consumer!.ConsumerStatus, 'CREATING');
      await assertError(
        sk.send(new SubscribeToShardCommand({ ConsumerARN: Consumer!.ConsumerARN, ShardId: SHARD0, StartingPosition: { Type: 'LATEST' } })),
        'ResourceInUseException',
        /not ACTIVE/,
      );
      for (let n = 1; n < 5; n++) await sk.send(new RegisterStreamConsumerCommand({ StreamARN: arn, ConsumerName: `late${n}` }));
      await assertError(sk.send(new RegisterStreamConsumerCommand({ StreamARN: arn, ConsumerName: 'sixth' })), 'LimitExceededException', /CREATING/);
      clock.advance(1000);
      const d = await sk.send(new DescribeStreamConsumerCommand({ ConsumerARN: Consumer!.ConsumerARN }));
      assert.equal(d.ConsumerDescription!.ConsumerStatus, 'ACTIVE');

      await sk.send(new DeregisterStreamConsumerCommand({ ConsumerARN: Consumer!.ConsumerARN }));
      const gone = await sk.send(new DescribeStreamConsumerCommand({ ConsumerARN: Consumer!.ConsumerARN }));
      assert.equal(gone.ConsumerDescription!.ConsumerStatus, 'DELETING');
      clock.advance(1000);
      await assertError(sk.send(new DescribeStreamConsumerCommand({ ConsumerARN: Consumer!.ConsumerARN })), 'ResourceNotFoundException');
    } finally {
      sk.destroy();
      await slow.close();
    }
  });
});

describe('SubscribeToShard', () => {
  let ts: TestServer;
  let k: KinesisClient;
  /** A second client: records put "from elsewhere" while the first one is subscribed. */
  let producer: KinesisClient;
  let hub: ReturnType<typeof subscriptionHub>;
  let n = 0;

  /** A fresh stream with a registered consumer, so tests don't share subscriptions. */
  async function setup(shards = 1): Promise<{ stream: string; streamArn: string; consumerArn: string }> {
    const stream = `sub-${++n}`;
    const streamArn = await createStream(k, stream, shards);
    const { Consumer } = await k.send(new RegisterStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: 'fanout' }));
    return { stream, streamArn, consumerArn: Consumer!.ConsumerARN! };
  }

  before(async () => {
    ts = await startTestServer();
    k = kinesisClient(ts.server);
    producer = kinesisClient(ts.server);
    hub = subscriptionHub(ts.server.kinesis);
  });
  after(async () => {
    k.destroy();
    producer.destroy();
    await ts.close();
  });

  test('the AWS timings are the defaults', () => {
    assert.equal(SUBSCRIPTION_LIFETIME_MS, 5 * 60_000);
    assert.equal(SUBSCRIPTION_TAKEOVER_MS, 5_000);
    assert.equal(SUBSCRIPTION_HEARTBEAT_MS, 5_000);
    assert.deepEqual(hub.options, { lifetimeMs: SUBSCRIPTION_LIFETIME_MS, heartbeatMs: SUBSCRIPTION_HEARTBEAT_MS, takeoverMs: SUBSCRIPTION_TAKEOVER_MS });
  });

  test('TRIM_HORIZON delivers the records already there, then records put while subscribed, byte for byte', async () => {
    const { stream, consumerArn } = await setup();
    const sent = [randomBytes(1), randomBytes(100), Buffer.from([0, 255, 10, 13, 0])];
    const seqs: string[] = [];
    for (const d of sent) seqs.push(await put(k, stream, d));

    const sub = await Sub.open(k, consumerArn, { Type: 'TRIM_HORIZON' });
    assert.equal(hub.active, 1);
    const first = await sub.records(3);
    const later = [randomBytes(1000), randomBytes(7)];
    for (const d of later) seqs.push(await put(producer, stream, d, 'other-key'));
    const second = await sub.records(2);

    const records = [...first.records, ...second.records];
    assert.deepEqual(records.map((r) => r.SequenceNumber), seqs);
    records.forEach((r, i) => assert.ok(Buffer.from(r.Data!).equals([...sent, ...later][i]), `record ${i} data`));
    assert.deepEqual(records.map((r) => r.PartitionKey), ['pk', 'pk', 'pk', 'other-key', 'other-key']);
    for (const r of records) assert.ok(r.ApproximateArrivalTimestamp instanceof Date);

    const events = [...first.events, ...second.events];
    let prev = -1n;
    for (const ev of events) {
      const c = BigInt(ev.ContinuationSequenceNumber!);
      if (ev.Records!.length > 0) {
        assert.ok(c > prev, 'continuation advances with every event that carries records');
        assert.equal(ev.ContinuationSequenceNumber, ev.Records![ev.Records!.length - 1].SequenceNumber);
      } else {
        assert.ok(c >= prev);
      }
      assert.equal(typeof ev.MillisBehindLatest, 'number');
      prev = c;
    }
    sub.abort.abort();
    await until(() => hub.active === 0, 'the subscription to end');
  });

  test('LATEST sees only records put after it started; AT/AFTER_SEQUENCE_NUMBER and AT_TIMESTAMP start where asked', async () => {
    const { stream, consumerArn } = await setup();
    const old = [await put(k, stream, Buffer.from('old-1')), await put(k, stream, Buffer.from('old-2'))];

    const latest = await Sub.open(k, consumerArn, { Type: 'LATEST' });
    const fresh = await put(producer, stream, Buffer.from('new-1'));
    const got = await latest.records(1);
    assert.deepEqual(got.records.map((r) => r.SequenceNumber), [fresh]);
    assert.equal(Buffer.from(got.records[0].Data!).toString(), 'new-1');
    latest.abort.abort();
    await until(() => hub.active === 0, 'the LATEST subscription to end');

    const at = await Sub.open(k, consumerArn, { Type: 'AT_SEQUENCE_NUMBER', SequenceNumber: old[1] });
    assert.deepEqual((await at.records(2)).records.map((r) => r.SequenceNumber), [old[1], fresh]);
    at.abort.abort();
    await until(() => hub.active === 0, 'the AT_SEQUENCE_NUMBER subscription to end');

    // Resuming from a continuation is how clients renew a subscription after its lifetime.
    const afterSub = await Sub.open(k, consumerArn, { Type: 'AFTER_SEQUENCE_NUMBER', SequenceNumber: old[0] });
    assert.deepEqual((await afterSub.records(2)).records.map((r) => r.SequenceNumber), [old[1], fresh]);
    afterSub.abort.abort();
    await until(() => hub.active === 0, 'the AFTER_SEQUENCE_NUMBER subscription to end');

    const byTime = await Sub.open(k, consumerArn, { Type: 'AT_TIMESTAMP', Timestamp: new Date(0) });
    assert.deepEqual((await byTime.records(3)).records.map((r) => r.SequenceNumber), [...old, fresh]);
    byTime.abort.abort();
    await until(() => hub.active === 0, 'the AT_TIMESTAMP subscription to end');
  });

  test('at the end of a closed shard the last event has ChildShards and no continuation, then the stream ends', async () => {
    const { stream, streamArn, consumerArn } = await setup();
    const seqs = [await put(k, stream, Buffer.from('a')), await put(k, stream, Buffer.from('b'))];
    await k.send(new SplitShardCommand({ StreamARN: streamArn, ShardToSplit: SHARD0, NewStartingHashKey: UPPER_HALF.toString() }));
    const childSeq = await put(k, stream, Buffer.from('to a child'), 'pk', UPPER_HALF);

    const sub = await Sub.open(k, consumerArn, { Type: 'TRIM_HORIZON' });
    const events = await sub.rest();
    const last = events[events.length - 1];
    assert.deepEqual(events.flatMap((e) => e.Records!.map((r) => r.SequenceNumber)), seqs);
    assert.equal(last.ContinuationSequenceNumber, undefined);
    assert.deepEqual(last.Records, []);
    assert.deepEqual(
      last.ChildShards!.map((c) => [c.ShardId, c.ParentShards]),
      [
        ['shardId-000000000001', [SHARD0]],
        ['shardId-000000000002', [SHARD0]],
      ],
    );
    for (const ev of events.slice(0, -1)) assert.ok(ev.ContinuationSequenceNumber, 'events before the end carry a continuation');
    await until(() => hub.active === 0, 'the subscription to be released');

    // A consumer goes on with the children; the upper one got the record put after the split.
    const child = await Sub.open(k, consumerArn, { Type: 'TRIM_HORIZON' }, 'shardId-000000000002');
    assert.deepEqual((await child.records(1)).records.map((r) => r.SequenceNumber), [childSeq]);
    child.abort.abort();
    await until(() => hub.active === 0, 'the child subscription to end');
  });

  test('a client abort stops the subscription on the server', async () => {
    const { consumerArn } = await setup();
    const sub = await Sub.open(k, consumerArn, { Type: 'TRIM_HORIZON' });
    assert.equal(hub.active, 1);
    const pending = sub.next();
    sub.abort.abort();
    await pending.then(
      (ev) => assert.equal(ev, undefined, 'an aborted stream yields nothing more'),
      () => {}, // or the SDK reports the reset stream
    );
    await until(() => hub.active === 0, 'the server to stop the aborted subscription', 2000);
  });

  test('empty events keep an idle subscription alive, and it ends after its lifetime', async (t) => {
    const { consumerArn } = await setup();
    hub.options.heartbeatMs = 100;
    hub.options.lifetimeMs = 600;
    t.after(() => Object.assign(hub.options, { heartbeatMs: SUBSCRIPTION_HEARTBEAT_MS, lifetimeMs: SUBSCRIPTION_LIFETIME_MS }));
    const started = Date.now();
    const sub = await Sub.open(k, consumerArn, { Type: 'LATEST' });
    const events = await sub.rest();
    const took = Date.now() - started;
    assert.ok(took >= 550 && took < 3000, `ended after ${took} ms`);
    assert.ok(events.length >= 3, `${events.length} heartbeat events`);
    for (const ev of events) {
      assert.deepEqual(ev.Records, []);
      assert.equal(ev.MillisBehindLatest, 0);
      assert.ok(ev.ContinuationSequenceNumber);
    }
    assert.equal(hub.active, 0);
  });

  test('a second subscription within the takeover time is refused; after it, it takes over', async (t) => {
    const { consumerArn } = await setup();
    const first = await Sub.open(k, consumerArn, { Type: 'LATEST' });
    await assertError(Sub.open(k, consumerArn, { Type: 'LATEST' }), 'ResourceInUseException', /Another active subscription/);

    hub.options.takeoverMs = 100;
    t.after(() => (hub.options.takeoverMs = SUBSCRIPTION_TAKEOVER_MS));
    await new Promise((r) => setTimeout(r, 150));
    const second = await Sub.open(k, consumerArn, { Type: 'LATEST' });
    await assertError(first.rest(), 'ResourceInUseException', /took over/);
    assert.equal(hub.active, 1);
    second.abort.abort();
    await until(() => hub.active === 0, 'the second subscription to end');
  });

  test('deregistering the consumer ends its subscriptions with ResourceNotFoundException', async () => {
    const { consumerArn } = await setup();
    const sub = await Sub.open(k, consumerArn, { Type: 'LATEST' });
    await k.send(new DeregisterStreamConsumerCommand({ ConsumerARN: consumerArn }));
    await assertError(sub.rest(), 'ResourceNotFoundException', /deregistered/);
    assert.equal(hub.active, 0);
  });

  test('deleting the stream ends its subscriptions with ResourceNotFoundException', async () => {
    const { stream, consumerArn } = await setup();
    const sub = await Sub.open(k, consumerArn, { Type: 'LATEST' });
    await assertError(k.send(new DeleteStreamCommand({ StreamName: stream })), 'ResourceInUseException', /consumers/);
    await k.send(new DeleteStreamCommand({ StreamName: stream, EnforceConsumerDeletion: true }));
    await assertError(sub.rest(), 'ResourceNotFoundException', /not found/);
    assert.equal(hub.active, 0);
    await assertError(Sub.open(k, consumerArn, { Type: 'LATEST' }), 'ResourceNotFoundException');
  });

  test('errors before streaming are ordinary JSON error responses', async () => {
    const { stream, streamArn, consumerArn } = await setup();
    const seq = await put(k, stream, Buffer.from('x'));
    const open = (arn: string, pos: StartingPosition, shard = SHARD0) => Sub.open(k, arn, pos, shard);
    await assertError(open(`${streamArn}/consumer/ghost:1700000000`, { Type: 'LATEST' }), 'ResourceNotFoundException');
    await assertError(open(consumerArn.replace(/:\d+$/, ':1'), { Type: 'LATEST' }), 'ResourceNotFoundException');
    await assertError(open('arn:aws:kinesis:us-east-1:000000000000:stream/x', { Type: 'LATEST' }), 'ValidationException');
    await assertError(open(consumerArn, { Type: 'LATEST' }, 'shardId-000000000042'), 'ResourceNotFoundException', /shardId-000000000042/);
    await assertError(open(consumerArn, { Type: 'AT_SEQUENCE_NUMBER' }), 'InvalidArgumentException');
    await assertError(open(consumerArn, { Type: 'LATEST', SequenceNumber: seq }), 'InvalidArgumentException');
    await assertError(open(consumerArn, { Type: 'AT_TIMESTAMP' }), 'InvalidArgumentException');
    await assertError(open(consumerArn, { Type: 'NEWEST' as never }), 'ValidationException');
    await assertError(open(consumerArn, { Type: 'AT_SEQUENCE_NUMBER', SequenceNumber: '12345' }), 'InvalidArgumentException', /did not come from this stream/);
    const other = await setup(2);
    const otherSeq = await put(k, other.stream, Buffer.from('y'), 'a', UPPER_HALF);
    await assertError(open(other.consumerArn, { Type: 'AT_SEQUENCE_NUMBER', SequenceNumber: otherSeq }), 'InvalidArgumentException', /shardId-000000000000/);
    assert.equal(hub.active, 0);
  });

  test('works over HTTP/1.1 too (chunked), with the SDK’s NodeHttpHandler', async () => {
    const { stream, consumerArn } = await setup();
    const h1 = kinesisClient(ts.server, { http1: true });
    try {
      const seq = await put(k, stream, Buffer.from('over h1'));
      const sub = await Sub.open(h1, consumerArn, { Type: 'TRIM_HORIZON' });
      const got = await sub.records(1);
      assert.equal(got.records[0].SequenceNumber, seq);
      assert.equal(Buffer.from(got.records[0].Data!).toString(), 'over h1');
      sub.abort.abort();
      await until(() => hub.active === 0, 'the HTTP/1.1 subscription to end');
    } finally {
      h1.destroy();
    }
  });

  test('on the wire: event-stream frames with :message-type/:event-type/:content-type, JSON or CBOR payloads', async (t) => {
    const { stream, consumerArn } = await setup();
    const data = Buffer.from([1, 2, 3, 250]);
    const seq = await put(k, stream, data);
    hub.options.lifetimeMs = 300;
    t.after(() => (hub.options.lifetimeMs = SUBSCRIPTION_LIFETIME_MS));

    for (const format of ['json', 'cbor'] as const) {
      const contentType = format === 'json' ? 'application/x-amz-json-1.1' : 'application/x-amz-cbor-1.1';
      const input = { ConsumerARN: consumerArn, ShardId: SHARD0, StartingPosition: { Type: 'TRIM_HORIZON' } };
      const body = format === 'json' ? Buffer.from(JSON.stringify(input)) : Buffer.from((await import('cborg')).encode(input));
      const res = await kinesisPost(ts.server.url, ts.server.admin, 'SubscribeToShard', contentType, body);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), EVENT_STREAM_CONTENT_TYPE);
      const messages = decodeMessages(Buffer.from(await res.arrayBuffer()));
      assert.deepEqual(messages[0].headers, { ':message-type': 'event', ':event-type': 'initial-response', ':content-type': contentType });
      const decode = (p: Buffer) => (format === 'json' ? JSON.parse(p.toString()) : cborDecode(p));
      assert.deepEqual(decode(messages[0].payload), {});
      assert.deepEqual(messages[1].headers, { ':message-type': 'event', ':event-type': 'SubscribeToShardEvent', ':content-type': contentType });
      const ev = decode(messages[1].payload);
      assert.equal(ev.Records.length, 1);
      assert.equal(ev.Records[0].SequenceNumber, seq);
      assert.equal(ev.ContinuationSequenceNumber, seq);
      if (format === 'json') assert.equal(ev.Records[0].Data, data.toString('base64'));
      else assert.ok(Buffer.from(ev.Records[0].Data).equals(data), 'CBOR carries Data as a byte string');
      await until(() => hub.active === 0, 'the short-lived subscription to end');
    }
    const err = await kinesisPost(ts.server.url, ts.server.admin, 'SubscribeToShard', 'application/x-amz-json-1.1', Buffer.from(JSON.stringify({ ConsumerARN: consumerArn, ShardId: SHARD0 })));
    assert.equal(err.status, 400);
    assert.equal(err.headers.get('content-type'), 'application/x-amz-json-1.1');
    assert.equal((await err.json()).__type, 'ValidationException');
  });
});

describe('event-stream framing', () => {
  test('messages decode with the SDK’s own codec (prelude and message CRC32)', () => {
    const utf8 = { toUtf8: (b: Uint8Array) => Buffer.from(b).toString('utf8'), fromUtf8: (s: string) => new Uint8Array(Buffer.from(s, 'utf8')) };
    const codec = new EventStreamCodec(utf8.toUtf8, utf8.fromUtf8);
    const payload = Buffer.from('{"ü":1}');
    const frame = encodeMessage({ ':message-type': 'event', ':event-type': 'SubscribeToShardEvent', 'x-ünï': 'vålue' }, payload);
    const m = codec.decode(frame);
    assert.deepEqual(m.headers, {
      ':message-type': { type: 'string', value: 'event' },
      ':event-type': { type: 'string', value: 'SubscribeToShardEvent' },
      'x-ünï': { type: 'string', value: 'vålue' },
    });
    assert.ok(Buffer.from(m.body).equals(payload));
    // And the SDK's encoder's bytes are exactly ours.
    const theirs = codec.encode({
      headers: {
        ':message-type': { type: 'string', value: 'event' },
        ':event-type': { type: 'string', value: 'SubscribeToShardEvent' },
        'x-ünï': { type: 'string', value: 'vålue' },
      },
      body: payload,
    });
    assert.ok(Buffer.from(theirs).equals(frame));
    assert.deepEqual(decodeMessages(Buffer.concat([frame, frame])).length, 2);
    const bad = Buffer.from(frame);
    bad[bad.length - 5] ^= 1;
    assert.throws(() => decodeMessages(bad), /checksum/);
    assert.equal(encodeMessage({}, Buffer.alloc(0)).length, 16);
  });
});
