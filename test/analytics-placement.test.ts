// The analytics loader's placement (src/analytics/remote.ts, src/cluster/placement.ts): two
// in-process servers on one NATS JetStream (their ingest log is one stream) and one ClickHouse
// database (their analytics store is one): exactly one node loads, the rows equal the events sent
// once each, and closing the loading node hands loading over to the other, which goes on from the
// checkpoint in ClickHouse. Skipped with the reason when NATS at 127.0.0.1:4222 or
// clickhouse-server is not there. With the embedded DuckDB (each node's own store) the loader is
// not placed: the server tests of analytics-start.test.ts cover that.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { CreateAppCommand, PutEventsCommand, type Event } from '@aws-sdk/client-pinpoint';
import { systemClock } from '../src/clock.js';
import { LOADER_JOB } from '../src/analytics/remote.js';
import { JetStreamLogProvider } from '../src/log/jetstream/provider.js';
import { startClickHouse } from './helpers/clickhouse.js';
import { until } from './helpers/firehose.js';
import { SINGLE_NATS, singleNatsSkip } from './helpers/nats-cluster.js';
import { startTestServer, type TestServer } from './helpers/server.js';

async function createApp(t: TestServer): Promise<string> {
  return (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'placed' } }))).ApplicationResponse!.Id!;
}

async function putEvents(t: TestServer, app: string, prefix: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 100) {
    const Events: Record<string, Event> = {};
    for (let j = i; j < Math.min(n, i + 100); j++) Events[`${prefix}-${j}`] = { EventType: 'placed.test', Timestamp: new Date().toISOString() };
    const r = await t.pinpoint.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: { [`ep-${prefix}-${i}`]: { Endpoint: {}, Events } } } }));
    for (const res of Object.values(r.EventsResponse!.Results![`ep-${prefix}-${i}`].EventsItemResponse!)) assert.equal(res.StatusCode, 202);
  }
}

/** Whether the placement runs the loader on this node. */
const loads = (t: TestServer) => t.server.placement.states().find((s) => s.name === LOADER_JOB)?.running === true;

test('on NATS + ClickHouse exactly one node loads; closing it hands loading over; the rows equal the events sent', { timeout: 180_000 }, async (t) => {
  const why = await singleNatsSkip();
  if (why) return t.skip(why);
  const ch = await startClickHouse();
  if (ch.skip !== undefined) return t.skip(ch.skip);
  const prefix = `T${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const clickhouseUrl = `${ch.server.url}/placed_${randomBytes(4).toString('hex')}`;
  const node = (id: string) => startTestServer({ config: { natsUrl: [SINGLE_NATS], natsReplicas: 1, nodeId: id, clickhouseUrl } as never, deps: { natsPrefix: prefix } });
  const nodes: TestServer[] = [];
  t.after(async () => {
    for (const n of nodes) await n.close().catch(() => {});
    const cleanup = await JetStreamLogProvider.connect({ servers: [SINGLE_NATS], clock: systemClock, prefix });
    await cleanup.removeAll();
    await cleanup.close();
    await ch.server.stop();
  });
  nodes.push(await node('node-a'), await node('node-b'));
  await until(() => nodes.filter(loads).length === 1, 'one node to hold the loader', 30_000);
  const holder = nodes.find(loads)!;
  const other = nodes.find((n) => n !== holder)!;
  // Apps live in each node's own SQLite here (no PostgreSQL): events go in through the node that stays.
  const app = await createApp(other);

  await putEvents(other, app, 'first', 500);
  // ClickHouse shows a batch's rows before its checkpoint: wait for the checkpoint at the log's end.
  const end1 = other.server.ingestLog.endOffset();
  await until(async () => (await holder.server.analytics.loaderHealth()).checkpoint >= end1, 'the 500 events to be loaded', 60_000);
  assert.equal(await other.server.analytics.rowCount(), 500);
  const [h, o] = [await holder.server.analytics.loaderHealth(), await other.server.analytics.loaderHealth()];
  assert.equal(h.running, true, 'the lease holder loads');
  assert.equal(h.loaded, 500);
  assert.equal(o.running, false, 'the other node does not');
  assert.equal(o.loaded, 0);
  assert.equal(other.server.analytics.loaderLag(), undefined, 'a node that does not load reports no loader lag');
  // Still exactly one: the other node keeps trying for the lease without taking it.
  assert.equal(nodes.filter(loads).length, 1);

  // Closing the holder releases its lease; the other node takes the loader and goes on from the checkpoint.
  await holder.close();
  nodes.splice(nodes.indexOf(holder), 1);
  await putEvents(other, app, 'second', 300);
  await until(() => loads(other), 'the other node to take the loader over', 30_000);
  const end2 = other.server.ingestLog.endOffset();
  await until(async () => (await other.server.analytics.loaderHealth()).checkpoint >= end2, 'the 300 later events to be loaded', 60_000);
  const after = await other.server.analytics.loaderHealth();
  assert.equal(after.running, true);
  // Only the records after the holder's checkpoint: nothing loaded twice.
  assert.equal(after.loaded, 300);
  assert.equal(after.duplicates, 0);
  assert.equal(after.checkpoint, other.server.ingestLog.endOffset());
  assert.equal(await other.server.analytics.rowCount(), 800);
});
