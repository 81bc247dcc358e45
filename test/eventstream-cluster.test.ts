// Event-stream delivery over two nodes (issue 17): two in-process servers sharing PostgreSQL (the
// metadata Store: settings and checkpoints) and NATS JetStream (logs, and the placement leases),
// each with its own data directory and the shared master key. An event stream set through one
// node is delivered by exactly one node's worker; changing it through the other node restarts the
// worker where it runs; closing the node that runs it hands the lease over and the other node
// resumes from the shared checkpoint; deleting it gives the placement up; a holder killed with
// SIGKILL loses its lease when it expires and the other node resumes. Skipped (with the
// reason) when NATS at 127.0.0.1:4222 or PostgreSQL at 127.0.0.1:5432 is not there.
//
// Kinesis stream definitions are on the Store too: each destination stream is created once,
// through node 1, and both nodes read the same records.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateAppCommand, DeleteEventStreamCommand, PutEventsCommand, PutEventStreamCommand, type Event } from '@aws-sdk/client-pinpoint';
import { CreateStreamCommand, DescribeStreamSummaryCommand, GetRecordsCommand, GetShardIteratorCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { IAMClient } from '@aws-sdk/client-iam';
import { systemClock } from '../src/clock.js';
import { MASTER_KEY_FILE } from '../src/iam/secrets.js';
import { JetStreamLogProvider } from '../src/log/jetstream/provider.js';
import { placementName } from '../src/delivery/manager.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { kinesisClient } from './helpers/kinesis.js';
import { createPinpointRole } from './helpers/eventstream.js';
import { SINGLE_NATS, singleNatsSkip } from './helpers/nats-cluster.js';
import { postgresTarget, withClient } from './helpers/postgres.js';
import { signedFetch } from './helpers/signed.js';
import { metricsFetch, spawnServer, waitForExit, type ServerProcess } from './helpers/process.js';
import { CLUSTER_NODE } from './helpers/cluster-node.js';
import { pinpointClient } from './helpers/server.js';

const ACCOUNT = '000000000000';
/** Short leases, so a takeover that waited for expiry would still finish within the test. */
const TEST_LEASE_TTL_MS = 3_000;

async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function waitActive(k: KinesisClient, StreamName: string): Promise<void> {
  // Through another node the stream is unknown until the creation's change notification arrives.
  await until(`${StreamName} ACTIVE`, async () =>
    (await k.send(new DescribeStreamSummaryCommand({ StreamName })).catch((e) => (e.name === 'ResourceNotFoundException' ? undefined : Promise.reject(e))))?.StreamDescriptionSummary!.StreamStatus === 'ACTIVE');
}

/** Every record of the stream's one shard (read until a read past the end comes back empty), as the events' `seq` attributes. */
async function readSeqs(k: KinesisClient, StreamName: string): Promise<string[]> {
  let it: string | undefined = (await k.send(new GetShardIteratorCommand({ StreamName, ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
  const out: string[] = [];
  while (it) {
    const r = await k.send(new GetRecordsCommand({ ShardIterator: it, Limit: 1000 }));
    for (const x of r.Records ?? []) out.push(JSON.parse(Buffer.from(x.Data!).toString('utf8')).attributes.seq as string);
    if ((r.Records ?? []).length === 0) break;
    it = r.NextShardIterator;
  }
  return out;
}

/** A fresh database on the test PostgreSQL and a JetStream prefix, removed after the test. */
async function sharedServices(t: { after(fn: () => Promise<void>): void }): Promise<{ postgresUrl: string; prefix: string }> {
  const { config: pgc } = await postgresTarget();
  const dbName = `pinstream_es_${process.pid}_${randomBytes(4).toString('hex')}`;
  await withClient(pgc!, (c) => c.query(`CREATE DATABASE ${dbName}`));
  const prefix = `T${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  t.after(async () => {
    const cleanup = await JetStreamLogProvider.connect({ servers: [SINGLE_NATS], clock: systemClock, prefix });
    await cleanup.removeAll();
    await cleanup.close();
    await withClient(pgc!, (c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`));
  });
  return { postgresUrl: `postgres://${pgc!.user}@${pgc!.host}:${pgc!.port}/${dbName}`, prefix };
}

/** PutEvents of `n` events tagged `tag-i` (their `seq` attribute); returns the tags. */
async function sendEvents(pinpoint: ReturnType<typeof pinpointClient>, app: string, tag: string, n: number): Promise<string[]> {
  const Events: Record<string, Event> = {};
  const seqs: string[] = [];
  for (let i = 0; i < n; i++) {
    const seq = `${tag}-${i}`;
    seqs.push(seq);
    Events[randomUUID()] = { EventType: 'cluster.test', Timestamp: new Date().toISOString(), Attributes: { seq } };
  }
  const r = await pinpoint.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: { [randomUUID()]: { Endpoint: {}, Events } } } }));
  for (const item of Object.values(r.EventsResponse!.Results!)) for (const res of Object.values(item.EventsItemResponse!)) assert.equal(res.Message, 'Accepted');
  return seqs;
}

/** The app's entry of GET /v1/eventstreams/status on a node. */
async function streamStatus(url: string, credentials: { accessKeyId: string; secretAccessKey: string }, app: string) {
  const res = await signedFetch(url, { method: 'GET', path: '/v1/eventstreams/status', credentials });
  assert.equal(res.status, 200, res.text);
  return res.json.Item.find((i: { ApplicationId: string }) => i.ApplicationId === app);
}

/** Whether the node runs the app's worker now, as its placement says. */
function runs(s: TestServer, app: string): boolean {
  return s.server.placement.states().some((st) => st.name === placementName(app) && st.running);
}

test('two nodes on NATS + PostgreSQL: one worker per event stream, restarted where it runs on a change through the other node, handed over on close, released on delete', { timeout: 180_000 }, async (t) => {
  const why = (await singleNatsSkip()) ?? (await postgresTarget()).skip;
  if (why) return t.skip(why);
  const { postgresUrl, prefix } = await sharedServices(t);
  const dirs = [await mkdtemp(join(tmpdir(), 'pinstream-es1-')), await mkdtemp(join(tmpdir(), 'pinstream-es2-'))];
  const nodes: TestServer[] = [];
  const clients: Array<{ destroy(): void }> = [];
  t.after(async () => {
    for (const c of clients) c.destroy();
    for (const n of nodes) await n.close().catch(() => {});
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const start = (i: number) =>
    startTestServer({
      dataDir: dirs[i],
      config: { natsUrl: [SINGLE_NATS], natsReplicas: 1, postgresUrl, nodeId: `node-${i + 1}` },
      deps: { natsPrefix: prefix, placement: { ttlMs: TEST_LEASE_TTL_MS } },
    });
  nodes.push(await start(0));
  await copyFile(join(dirs[0], MASTER_KEY_FILE), join(dirs[1], MASTER_KEY_FILE));
  nodes.push(await start(1));
  const [n1, n2] = nodes;
  const ks = nodes.map((n) => kinesisClient(n.server));
  const iam = new IAMClient({ endpoint: n1.server.url, region: 'us-east-1', credentials: n1.server.admin, maxAttempts: 1 });
  clients.push(...ks, iam);

  // The destinations, created once through node 1 and active through both.
  for (const name of ['es-one', 'es-two']) {
    await ks[0].send(new CreateStreamCommand({ StreamName: name, ShardCount: 1 }));
    for (const k of ks) await waitActive(k, name);
  }
  const arn = (name: string) => `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${name}`;
  await createPinpointRole(iam, 'es-cluster', { resource: `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/es-*` });
  const role = `arn:aws:iam::${ACCOUNT}:role/es-cluster`;
  const app = (await n1.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'clustered' } }))).ApplicationResponse!.Id!;

  await n1.pinpoint.send(new PutEventStreamCommand({ ApplicationId: app, WriteEventStream: { DestinationStreamArn: arn('es-one'), RoleArn: role } }));
  // Both nodes place the worker (node 2 on hearing the change); exactly one runs it.
  await until('both nodes to place the worker', () => nodes.every((n) => n.server.placement.states().some((s) => s.name === placementName(app))));
  const holderIndex = await until('one node to run the worker', () => {
    const running = nodes.map((n) => runs(n, app));
    return running.filter(Boolean).length === 1 && running.indexOf(true) + 1;
  });
  const holder = nodes[holderIndex - 1];
  const other = nodes[2 - holderIndex];
  const hk = ks[holderIndex - 1];
  const ok = ks[2 - holderIndex];
  // Stays one: a later look still finds a single runner.
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(nodes.map((n) => runs(n, app)).filter(Boolean).length, 1, 'exactly one node runs the worker');

  const send = (via: TestServer, tag: string, n: number) => sendEvents(via.pinpoint, app, tag, n);

  // Events through the node that does not run the worker: the holder delivers them into its stream.
  const a = await send(other, 'a', 20);
  await until('batch a in the holder’s es-one', async () => (await readSeqs(hk, 'es-one')).length >= a.length);
  assert.deepEqual(await readSeqs(ok, 'es-one'), await readSeqs(hk, 'es-one'), 'both nodes read the one stream');
  assert.equal(other.server.delivery.health(app), undefined, 'no worker on the other node');

  // Status on the node without the worker: the holder and the lag from the shared checkpoint.
  const status = await until('the shared checkpoint past batch a', async () => {
    const item = await streamStatus(other.server.url, other.server.admin, app);
    return item && item.Health.recordsBehind === 0 && item;
  });
  assert.equal(status.Health.state, 'elsewhere');
  assert.equal(status.Health.holder, holder.config.nodeId);
  assert.equal(status.Checkpoint, status.Health.checkpoint);
  assert.equal(typeof status.Checkpoint, 'number');
  // /metrics there: the holder, and the lag from the shared checkpoint (as the status read it).
  const metrics = await (await metricsFetch(other.server.url)).text();
  assert.match(metrics, new RegExp(`pinstream_delivery_holder_info\\{app_id="${app}",destination="[^"]+",holder="${holder.config.nodeId}"\\} 1`));
  assert.match(metrics, new RegExp(`pinstream_delivery_records_behind\\{app_id="${app}",[^}]*\\} 0`));
  assert.doesNotMatch(metrics, new RegExp(`pinstream_delivery_delivered_total\\{app_id="${app}"`), 'the counters are the holder’s to report');

  // A change through the other node (a new destination) restarts the worker where it runs.
  await other.pinpoint.send(new PutEventStreamCommand({ ApplicationId: app, WriteEventStream: { DestinationStreamArn: arn('es-two'), RoleArn: role } }));
  const b = await send(other, 'b', 20);
  await until('batch b in the holder’s es-two', async () => (await readSeqs(hk, 'es-two')).length >= b.length);
  const inOneAfter = await readSeqs(hk, 'es-one');
  assert.ok(!inOneAfter.some((s) => s.startsWith('b-')), 'nothing of batch b went to the old destination');
  await until('the holder caught up', () => holder.server.delivery.health(app)?.recordsBehind === 0);
  // The checkpoint another node set (past records this node never appended) is no loss.
  assert.equal(holder.server.delivery.health(app)?.checkpointGap, undefined);
  const beforeHandover = await readSeqs(hk, 'es-two');

  // The holder closes (a clean stop releases the lease): the other node takes over from the shared
  // checkpoint, and delivers what comes next.
  await holder.close();
  nodes.splice(nodes.indexOf(holder), 1);
  await until('the other node to take the worker over', () => runs(other, app), 15_000);
  const c = await send(other, 'c', 20);
  const afterHandover = await until('batch c in the other node’s es-two', async () => {
    const seqs = await readSeqs(ok, 'es-two');
    return c.every((s) => seqs.includes(s)) && seqs;
  });
  assert.equal(other.server.delivery.health(app)?.checkpointGap, undefined, 'the shared checkpoint is no loss on the new holder');
  // es-two as the other node reads it holds what both holders delivered into it.
  assert.deepEqual(afterHandover.slice(0, beforeHandover.length), beforeHandover);
  const delivered = [...inOneAfter, ...afterHandover];
  const counts = new Map<string, number>();
  for (const s of delivered) counts.set(s, (counts.get(s) ?? 0) + 1);
  for (const s of [...a, ...b, ...c]) assert.ok(counts.has(s), `event ${s} was delivered`);
  const duplicates = [...counts.values()].reduce((n, k) => n + k - 1, 0);
  t.diagnostic(`delivered ${delivered.length} records for ${a.length + b.length + c.length} events: ${duplicates} duplicates`);
  // At least once: only records after the last saved checkpoint may come again (the handover
  // writes the last one before releasing, so batch b is not re-sent).
  assert.equal(afterHandover.filter((s) => s.startsWith('b-')).length, b.length, 'the next holder resumed past what was delivered and checkpointed (batch b once)');

  // Deleting the stream gives the placement up.
  await other.pinpoint.send(new DeleteEventStreamCommand({ ApplicationId: app }));
  await until('the placement given up', () => !other.server.placement.states().some((s) => s.name === placementName(app)));
  assert.equal(other.server.delivery.health(app), undefined);
});

test('a holder killed with SIGKILL: its lease expires and the other node resumes from the shared checkpoint', { timeout: 180_000 }, async (t) => {
  const why = (await singleNatsSkip()) ?? (await postgresTarget()).skip;
  if (why) return t.skip(why);
  const { postgresUrl, prefix } = await sharedServices(t);
  const dirs = [await mkdtemp(join(tmpdir(), 'pinstream-esk1-')), await mkdtemp(join(tmpdir(), 'pinstream-esk2-'))];
  const clients: Array<{ destroy(): void }> = [];
  let a: ServerProcess | undefined;
  let b: TestServer | undefined;
  t.after(async () => {
    for (const c of clients) c.destroy();
    if (a && a.child.exitCode === null && a.child.signalCode === null) {
      a.child.kill('SIGKILL');
      await waitForExit(a.child);
    }
    await b?.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  // Node A, a process of its own: it gets the event stream (and its lease) before node B exists.
  a = await spawnServer(
    {
      PINSTREAM_DATA_DIR: dirs[0],
      PINSTREAM_NATS_URL: SINGLE_NATS,
      PINSTREAM_NATS_REPLICAS: '1',
      PINSTREAM_POSTGRES_URL: postgresUrl,
      PINSTREAM_NODE_ID: 'node-a',
      PINSTREAM_CONSUMER_THREADS: '0',
      CLUSTER_NATS_PREFIX: prefix,
      CLUSTER_LEASE_TTL_MS: String(TEST_LEASE_TTL_MS),
    },
    30_000,
    CLUSTER_NODE,
  );
  const adminA = { accessKeyId: a.accessKeyId, secretAccessKey: a.secretAccessKey! };
  const ka = kinesisClient({ url: a.url, admin: adminA });
  const pa = pinpointClient({ url: a.url, admin: adminA });
  const iam = new IAMClient({ endpoint: a.url, region: 'us-east-1', credentials: adminA, maxAttempts: 1 });
  clients.push(ka, pa, iam);
  const stream = 'es-killed';
  await ka.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 1 }));
  await waitActive(ka, stream);
  await createPinpointRole(iam, 'es-kill', { resource: `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${stream}` });
  const app = (await pa.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'killed' } }))).ApplicationResponse!.Id!;
  await pa.send(new PutEventStreamCommand({ ApplicationId: app, WriteEventStream: { DestinationStreamArn: `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${stream}`, RoleArn: `arn:aws:iam::${ACCOUNT}:role/es-kill` } }));
  const before = await sendEvents(pa, app, 'before', 30);
  await until('node A to deliver', async () => (await readSeqs(ka, stream)).length >= before.length);

  await copyFile(join(dirs[0], MASTER_KEY_FILE), join(dirs[1], MASTER_KEY_FILE));
  b = await startTestServer({
    dataDir: dirs[1],
    config: { natsUrl: [SINGLE_NATS], natsReplicas: 1, postgresUrl, nodeId: 'node-b' },
    deps: { natsPrefix: prefix, placement: { ttlMs: TEST_LEASE_TTL_MS } },
  });
  const kb = kinesisClient(b.server);
  clients.push(kb);
  await waitActive(kb, stream);
  // Node B places the worker but node A holds it; B shows it running there, caught up.
  const st = await until('node B to see node A run the worker, caught up', async () => {
    const s = await streamStatus(b!.server.url, b!.server.admin, app);
    return s?.Health.state === 'elsewhere' && s.Health.recordsBehind === 0 && s;
  });
  assert.equal(st.Health.holder, 'node-a');
  assert.equal(runs(b, app), false);

  a.child.kill('SIGKILL');
  assert.equal((await waitForExit(a.child)).signal, 'SIGKILL');
  const killedAt = Date.now();
  await until('node B to take over once the lease expired', () => runs(b!, app), TEST_LEASE_TTL_MS * 5);
  const tookMs = Date.now() - killedAt;
  t.diagnostic(`node B took the worker over ${tookMs} ms after node A was killed (lease TTL ${TEST_LEASE_TTL_MS} ms)`);
  const after = await sendEvents(b.pinpoint, app, 'after', 30);
  const inB = await until('node B to deliver what came after', async () => {
    const seqs = await readSeqs(kb, stream);
    return after.every((s) => seqs.includes(s)) && seqs;
  });
  // At least once: what node A delivered before the checkpoint it saved is not delivered again.
  // (The stream is shared: node B reads node A's records too; a record delivered again is a repeat.)
  const seenBefore = inB.filter((s) => s.startsWith('before-'));
  assert.deepEqual(new Set(seenBefore), new Set(before));
  const again = seenBefore.slice(new Set(seenBefore).size);
  t.diagnostic(`records delivered again after the takeover: ${again.length}`);
  assert.deepEqual(again, [], 'node A had saved its checkpoint past everything it delivered');
  assert.equal(new Set(inB).size, inB.length, 'no duplicates');
});
