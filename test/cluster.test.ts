// Two Pinstream nodes as one deployment (test/helpers/cluster.ts: three clustered nats-server
// processes, PostgreSQL, ClickHouse, a shared master key, two `pinstream start` processes). A project,
// a Kinesis stream and an event stream are made through node 1; PutEvents goes through both nodes;
// the stream is read and the KPIs are asked through either. Then, under load, the node running the
// event stream's delivery (the holder of its lease in JetStream KV) and one NATS server are killed
// with SIGKILL: every acknowledged event must reach the stream and the analytics, each endpoint's
// events stay in order, delivery resumes on the surviving node, and duplicates are counted and stay
// within what at-least-once delivery from the last checkpoint allows.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { CreateAppCommand, GetApplicationDateRangeKpiCommand, PutEventsCommand, PutEventStreamCommand, type Event, type EventsBatch, type PinpointClient } from '@aws-sdk/client-pinpoint';
import { CreateStreamCommand, DescribeStreamSummaryCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient, ListShardsCommand } from '@aws-sdk/client-kinesis';
import { IAMClient } from '@aws-sdk/client-iam';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { leaseHolderOf, leaseKey } from '../src/cluster/placement.js';
import { MAX_PUT_RECORDS_COUNT } from '../src/kinesis/limits.js';
import { PinstreamCluster, SkipCluster } from './helpers/cluster.js';
import { createPinpointRole } from './helpers/eventstream.js';
import { pinpointClient } from './helpers/server.js';

const ACCOUNT = '000000000000';
const STREAM = 'cluster-events';
const CLIENTS = 4;
const ENDPOINTS = 200;
const ENDPOINTS_PER_REQUEST = 4;
const EVENTS_PER_ENDPOINT = 5;
/** Acknowledged events before the kill, and the bound on the load after it. */
const KILL_AFTER_ACKED = 2_000;
const LOAD_AFTER_KILL_MS = 8_000;
const MAX_LOAD_MS = 60_000;
/** Bound on waiting for the stream and the analytics to hold everything (lease expiry is 10 s). */
const CATCH_UP_TIMEOUT_MS = 90_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Clients {
  pinpoint: PinpointClient;
  kinesis: KinesisClient;
  iam: IAMClient;
}

function clientsOf(url: string, admin: { accessKeyId: string; secretAccessKey: string }): Clients {
  return {
    pinpoint: pinpointClient({ url, admin }),
    kinesis: new KinesisClient({ endpoint: url, region: 'us-east-1', credentials: admin, maxAttempts: 1 }),
    iam: new IAMClient({ endpoint: url, region: 'us-east-1', credentials: admin, maxAttempts: 1 }),
  };
}

const destroy = (c: Clients) => {
  c.pinpoint.destroy();
  c.kinesis.destroy();
  c.iam.destroy();
};

/** Repeats `fn` until it returns a value, bounded; the last error is in the failure. */
async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${(last as Error).message})` : ''}`);
    await sleep(200);
  }
}

/** Reads every shard from TRIM_HORIZON, following the iterators, until `done` holds (bounded). */
/** `f()`, tried again while it answers 503 (a log's stream electing a leader: the server says retry) until `deadline`. */
async function retryUnavailable<T>(f: () => Promise<T>, deadline: number): Promise<T> {
  for (;;) {
    try {
      return await f();
    } catch (e) {
      if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 503 || Date.now() >= deadline) throw e;
      await sleep(200);
    }
  }
}

async function readStream(kinesis: KinesisClient, done: (records: Array<{ pk: string; json: any }>) => boolean, timeoutMs: number): Promise<Array<{ pk: string; json: any }>> {
  const deadline = Date.now() + timeoutMs;
  // As a consumer does, every call that meets a 503 is tried again (the SDK's own 3 attempts can
  // all fall inside a leader election after a NATS server was killed).
  const shards = (await retryUnavailable(() => kinesis.send(new ListShardsCommand({ StreamName: STREAM })), deadline)).Shards!;
  const iters = new Map<string, string>();
  for (const s of shards) {
    const it = await retryUnavailable(() => kinesis.send(new GetShardIteratorCommand({ StreamName: STREAM, ShardId: s.ShardId, ShardIteratorType: 'TRIM_HORIZON' })), deadline);
    iters.set(s.ShardId!, it.ShardIterator!);
  }
  const out: Array<{ pk: string; json: any }> = [];
  for (;;) {
    let got = 0;
    for (const [id, it] of iters) {
      // As a consumer does: a 503 (the log's stream electing a leader) is tried again.
      const r = await kinesis.send(new GetRecordsCommand({ ShardIterator: it })).catch((e) => {
        if (e.$metadata?.httpStatusCode === 503 && Date.now() < deadline) return undefined;
        throw e;
      });
      if (!r) continue;
      if (r.NextShardIterator) iters.set(id, r.NextShardIterator);
      for (const rec of r.Records!) {
        out.push({ pk: rec.PartitionKey!, json: JSON.parse(Buffer.from(rec.Data!).toString('utf8')) });
        got++;
      }
    }
    if (done(out) || Date.now() > deadline) return out;
    if (got === 0) await sleep(200);
  }
}

/** `txn-emails-sent` over today: how many `_email.send` events the analytics counted. */
async function emailsSent(pinpoint: PinpointClient, app: string): Promise<number> {
  const day = 86_400_000;
  const r = await pinpoint.send(
    new GetApplicationDateRangeKpiCommand({ ApplicationId: app, KpiName: 'txn-emails-sent', StartTime: new Date(Date.now() - day), EndTime: new Date(Date.now() + day) }),
  );
  const v = r.ApplicationDateRangeKpiResponse!.KpiResult?.Rows?.[0]?.Values?.[0]?.Value;
  return v === undefined ? 0 : Number(v);
}

/** The node holding a job's lease, read from the lease bucket as any NATS client can. */
async function leaseHolder(servers: string[], job: string): Promise<string | undefined> {
  const nc = await connect({ servers, timeout: 5000, maxReconnectAttempts: 0 });
  try {
    const kv = await new Kvm(nc).open('PINSTREAM-leases');
    const e = await kv.get(leaseKey(job));
    return e && e.operation === 'PUT' ? leaseHolderOf(e.string()) : undefined;
  } finally {
    await nc.close();
  }
}

test('cluster: two nodes over 3 NATS servers, PostgreSQL and ClickHouse; kill -9 a node and a NATS server under load', { timeout: 420_000 }, async (t) => {
  let cluster: PinstreamCluster;
  try {
    cluster = await PinstreamCluster.start({ nodes: 2, clickhouse: true });
  } catch (e) {
    if (e instanceof SkipCluster) return t.skip(e.message);
    throw e;
  }
  const clients = [clientsOf(cluster.url(0), cluster.admin), clientsOf(cluster.url(1), cluster.admin)];
  t.after(async () => {
    clients.forEach(destroy);
    await cluster.stop();
  });
  try {
    await scenario(t, cluster, clients);
  } catch (e) {
    // The nodes' own words, for a failure this test cannot explain.
    for (const line of cluster.output().split("\n")) t.diagnostic(line);
    throw e;
  }
});

async function scenario(t: TestContext, cluster: PinstreamCluster, clients: Clients[]): Promise<void> {

  // --- Set up through node 1, see it through node 2.
  const [one, two] = clients;
  const app = (await one.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'cluster' } }))).ApplicationResponse!.Id!;
  await one.kinesis.send(new CreateStreamCommand({ StreamName: STREAM, ShardCount: 2 }));
  await eventually('the stream is ACTIVE through node 2', async () =>
    (await two.kinesis.send(new DescribeStreamSummaryCommand({ StreamName: STREAM }))).StreamDescriptionSummary!.StreamStatus === 'ACTIVE' ? true : undefined,
  );
  const streamArn = `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${STREAM}`;
  await createPinpointRole(one.iam, 'cluster-events-role', { resource: streamArn });
  await one.pinpoint.send(new PutEventStreamCommand({ ApplicationId: app, WriteEventStream: { DestinationStreamArn: streamArn, RoleArn: `arn:aws:iam::${ACCOUNT}:role/cluster-events-role` } }));
  const job = `delivery/${app}`;
  const firstHolder = await eventually('a node takes the delivery lease', () => leaseHolder(cluster.nats.servers, job));
  t.diagnostic(`delivery lease held by ${firstHolder}`);

  // --- Load: client c owns endpoints c, c+CLIENTS, ... and sends each one's events in order, one
  // request at a time, alternating between the nodes; a request a dead node cannot answer is sent
  // again, unchanged (same event ids), to the live one.
  const endpoints = Array.from({ length: ENDPOINTS }, () => randomUUID());
  const acked = new Map<string, { endpoint: string }>();
  let sent = 0;
  let retriedRequests = 0;
  const dead = new Set<number>();
  let killedAt = 0;
  const started = Date.now();
  const loop = async (client: number) => {
    const mine = endpoints.filter((_, i) => i % CLIENTS === client);
    let cursor = 0;
    for (let req = 1; ; req++) {
      if (Date.now() - started > MAX_LOAD_MS || (killedAt && Date.now() - killedAt > LOAD_AFTER_KILL_MS)) return;
      const BatchItem: Record<string, EventsBatch> = {};
      const now = new Date().toISOString();
      for (let e = 0; e < ENDPOINTS_PER_REQUEST; e++) {
        const endpoint = mine[cursor++ % mine.length];
        const Events: Record<string, Event> = {};
        for (let i = 0; i < EVENTS_PER_ENDPOINT; i++) {
          // The order key: client, request, position — increasing along each endpoint's events.
          const seq = `${client}-${String(req).padStart(6, '0')}-${e}-${i}`;
          Events[randomUUID()] = { EventType: '_email.send', Timestamp: now, Attributes: { seq } };
          sent++;
        }
        BatchItem[endpoint] = { Endpoint: {}, Events };
      }
      for (let attempt = 0; ; attempt++) {
        const node = [(client + req) % 2, (client + req + 1) % 2].find((n) => !dead.has(n))!;
        try {
          const r = await clients[node].pinpoint.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem } }));
          for (const [endpoint, item] of Object.entries(BatchItem)) {
            const res = r.EventsResponse!.Results![endpoint].EventsItemResponse!;
            for (const [id, ev] of Object.entries(item.Events!)) if (res[id]?.StatusCode === 202) acked.set(ev.Attributes!.seq, { endpoint });
          }
          break;
        } catch (e) {
          retriedRequests++;
          // Only a dead node, or NATS electing a new leader, may fail a request; bounded retries.
          if (attempt >= 20) throw new Error(`PutEvents kept failing: ${(e as Error).message}\n${cluster.output()}`);
          await sleep(250);
        }
      }
      if (!killedAt && acked.size >= KILL_AFTER_ACKED) {
        killedAt = Date.now();
        const victim = cluster.nodes.findIndex((n) => n.id === firstHolder);
        dead.add(victim);
        await Promise.all([cluster.killNode(victim), cluster.nats.kill(0)]);
      }
    }
  };
  // A first few events through each node, seen on the stream and in the KPIs of both, before the load.
  const warm = async (node: number, n: number) => {
    const Events: Record<string, Event> = {};
    for (let i = 0; i < n; i++) Events[randomUUID()] = { EventType: '_email.send', Timestamp: new Date().toISOString(), Attributes: { seq: `w-${node}-${i}` } };
    const r = await clients[node].pinpoint.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: { [`warm-${node}`]: { Endpoint: {}, Events } } } }));
    for (const [id, ev] of Object.entries(Events)) {
      assert.equal(r.EventsResponse!.Results![`warm-${node}`].EventsItemResponse![id].StatusCode, 202);
      acked.set(ev.Attributes!.seq, { endpoint: `warm-${node}` });
      sent++;
    }
  };
  await warm(0, 10);
  await warm(1, 10);
  const warmRead = await readStream(two.kinesis, (recs) => new Set(recs.map((r) => r.json.attributes?.seq)).size >= 20, 30_000);
  assert.equal(new Set(warmRead.map((r) => r.json.attributes?.seq)).size, 20, 'events sent through both nodes are read through node 2');
  for (const c of clients) assert.equal(await eventually('the KPI counts the 20 events', async () => ((await emailsSent(c.pinpoint, app)) === 20 ? 20 : undefined)), 20);

  await Promise.all(Array.from({ length: CLIENTS }, (_, c) => loop(c)));
  assert.ok(killedAt > 0, `only ${acked.size} events acknowledged in ${MAX_LOAD_MS} ms`);
  const survivor = [0, 1].find((n) => !dead.has(n))!;
  const live = clients[survivor];

  // --- Delivery moved to the survivor, and every acknowledged event reaches the stream.
  const holder = await eventually('the survivor takes the delivery lease', async () => {
    const h = await leaseHolder(cluster.nats.servers.filter((_, i) => i !== 0), job).catch(() => undefined);
    return h === cluster.nodes[survivor].id ? h : undefined;
  }, CATCH_UP_TIMEOUT_MS);
  const seen = new Map<string, number>();
  let counted = 0;
  const missing = () => [...acked.keys()].filter((s) => !seen.has(s));
  const records = await readStream(
    live.kinesis,
    (recs) => {
      for (; counted < recs.length; counted++) {
        const seq = recs[counted].json.attributes?.seq as string;
        seen.set(seq, (seen.get(seq) ?? 0) + 1);
      }
      return missing().length === 0;
    },
    CATCH_UP_TIMEOUT_MS,
  );
  const lost = missing();
  if (lost.length > 0) {
    // What the survivor says of its delivery, placement and logs: a loss and a stall read differently here.
    const m = await cluster.metrics(survivor, ['pinstream_delivery', 'pinstream_placement', 'pinstream_log', 'pinstream_kinesis_shard_incoming']);
    assert.fail(`${lost.length} of ${acked.size} acknowledged events are not on the stream, e.g. ${lost.slice(0, 5).join(', ')}\n--- survivor's /metrics\n${m}\n${cluster.output()}`);
  }
  for (const r of records) {
    assert.equal(r.json.application.app_id, app);
    assert.equal(r.json.client.client_id, r.pk);
  }

  // Each endpoint's events, in the order of their first appearance on its shard, are in send order.
  const firstSeen = new Map<string, string[]>();
  const once = new Set<string>();
  for (const r of records) {
    const seq = r.json.attributes?.seq as string;
    if (once.has(seq)) continue;
    once.add(seq);
    const list = firstSeen.get(r.pk) ?? [];
    list.push(seq);
    firstSeen.set(r.pk, list);
  }
  for (const [endpoint, seqs] of firstSeen) {
    const sorted = [...seqs].sort();
    assert.deepEqual(seqs, sorted, `events of endpoint ${endpoint} out of order`);
  }

  // Duplicates: records delivered again after the lease moved (from the shared checkpoint).
  let duplicates = 0;
  for (const n of seen.values()) duplicates += n - 1;
  const unackedDelivered = [...seen.keys()].filter((s) => !acked.has(s)).length;
  t.diagnostic(
    `acked=${acked.size} sent=${sent} retriedRequests=${retriedRequests} records=${records.length} distinct=${seen.size} ` +
      `unackedButDelivered=${unackedDelivered} duplicateRecords=${duplicates} killed=${firstHolder} deliveryNow=${holder}`,
  );
  assert.ok(seen.size <= sent);
  // The worker checkpoints after every accepted PutRecords call, one call in flight: a takeover
  // re-sends at most that call's records.
  assert.ok(duplicates <= MAX_PUT_RECORDS_COUNT, `${duplicates} duplicate records (more than one PutRecords batch)`);

  // --- The analytics count every stored event once (ClickHouse collapses re-loaded rows).
  const counts = await eventually(
    'the analytics count every stored event',
    async () => {
      const n = await emailsSent(live.pinpoint, app);
      return n >= seen.size ? n : undefined;
    },
    CATCH_UP_TIMEOUT_MS,
  );
  assert.equal(counts, seen.size, 'each stored event counted once');
}
