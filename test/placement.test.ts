// Work placement: each job runs on exactly one node at a time, moves at once on a clean release and
// after the lease's time to live when its node dies, and a node that can no longer renew stops its
// job before another node can have started it. Against the real NATS with JetStream on
// 127.0.0.1:4222 (skipped with the reason when it is not reachable).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { KvPlacement, LocalPlacement, leaseKey, renderPlacementMetrics, type PlacedJob } from '../src/cluster/placement.js';

const NATS = '127.0.0.1:4222';
const TTL = 1500;

async function natsOrSkip(): Promise<NatsConnection | string> {
  try {
    const nc = await connect({ servers: NATS, timeout: 2000, reconnect: false });
    await jetstreamManager(nc, { timeout: 2000 });
    return nc;
  } catch (e) {
    return `NATS with JetStream not reachable at ${NATS} (${(e as Error).message})`;
  }
}

/** Polls `cond` every 20 ms up to `ms`; a bounded wait for something that must happen. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function recorder(log: string[], node: string): PlacedJob & { running: boolean } {
  const job = {
    running: false,
    start() {
      job.running = true;
      log.push(`${node} start`);
    },
    async stop() {
      job.running = false;
      log.push(`${node} stop`);
    },
  };
  return job;
}

async function bucket(nc: NatsConnection, name: string): Promise<KV> {
  return KvPlacement.bucket(new Kvm(nc), { name, ttlMs: TTL });
}

test('lease keys: every name maps to a distinct key of the KV alphabet', () => {
  const names = ['eventstream/app-1', 'eventstream/app.1', 'eventstream/app=2e1', 'firehose/ä', 'a', 'A', '..', '>'];
  const keys = names.map(leaseKey);
  assert.equal(new Set(keys).size, names.length);
  for (const k of keys) assert.match(k, /^[-_=A-Za-z0-9]+$/);
  assert.throws(() => leaseKey(''));
});

test('local placement runs every job at once and stops it on release', async () => {
  const log: string[] = [];
  const p = new LocalPlacement();
  p.place('loader', recorder(log, 'local'));
  assert.deepEqual(p.states(), [{ name: 'loader', running: true, holder: 'local' }]);
  assert.throws(() => p.place('loader', recorder(log, 'again')));
  await p.close();
  assert.deepEqual(log, ['local start', 'local stop']);
});

test('KV placement: one node runs a job; release hands it over; a dead node loses it only after it stopped', async (t) => {
  const ncA = await natsOrSkip();
  if (typeof ncA === 'string') return t.skip(ncA);
  const ncB = await connect({ servers: NATS, timeout: 2000, reconnect: false });
  const name = `pinstream-leases-test-${randomBytes(4).toString('hex')}`;
  const kvA = await bucket(ncA, name);
  const kvB = await bucket(ncB, name);
  const log: string[] = [];
  const opts = { ttlMs: TTL, renewMs: 300, safetyMs: 400, retryMs: 100 };
  const a = new KvPlacement({ kv: kvA, nodeId: 'node-a', ...opts });
  const b = new KvPlacement({ kv: kvB, nodeId: 'node-b', ...opts });
  const jobA = recorder(log, 'a');
  const jobB = recorder(log, 'b');
  try {
    a.place('eventstream/app-1', jobA);
    await until(() => jobA.running, 5000, 'node a to take the lease');
    b.place('eventstream/app-1', jobB);
    // Marker: node b has looked at the lease and seen node a hold it, and node a has renewed it
    // several times since (its revision moved on), and b has still not started.
    await until(() => b.states()[0]?.holder === 'node-a', 5000, 'node b to see node a holding');
    const rev0 = (await kvA.get(leaseKey('eventstream/app-1')))!.revision;
    await until(() => (a.states()[0]?.revision ?? 0) >= rev0 + 3, 5000, 'three renewals by node a');
    assert.equal(jobB.running, false);
    assert.deepEqual(log, ['a start']);

    // Clean release: b takes over without waiting for the lease to expire.
    await a.release('eventstream/app-1');
    await until(() => jobB.running, 5000, 'node b to take over after the release');
    assert.deepEqual(log, ['a start', 'a stop', 'b start']);

    // Node b dies (its connection is gone, nothing released): a takes the job, and b's job had
    // stopped (its renewals failing) before a's started.
    a.place('eventstream/app-1', jobA);
    await ncB.close();
    await until(() => jobA.running, 10_000, 'node a to take over from the dead node b');
    assert.deepEqual(log.slice(3), ['b stop', 'a start']);
    assert.equal(jobB.running, false);
  } finally {
    await a.close();
    await b.close().catch(() => {});
    await new Kvm(ncA).open(name).then((kv) => kv.destroy()).catch(() => {});
    await ncA.close();
    await ncB.close().catch(() => {});
  }
});

test('placement on /metrics: one gauge per job, 1 where it runs here, names escaped; nothing when no job is placed', async () => {
  const p = new LocalPlacement('node-a');
  assert.equal(renderPlacementMetrics(p), '');
  p.place('delivery/app"1\\x', { start() {}, async stop() {} });
  const text = renderPlacementMetrics(p);
  assert.match(text, /^# TYPE pinstream_placement_running gauge$/m);
  assert.match(text, /^pinstream_placement_running\{job="delivery\/app\\"1\\\\x",node="node-a",holder="node-a"\} 1$/m);
  await p.close();
  assert.equal(renderPlacementMetrics(p), '');
});

test('KV placement: two processes with the same node id (two nodes on one host left at the default id) never both run a job', async (t) => {
  const nc = await natsOrSkip();
  if (typeof nc === 'string') return t.skip(nc);
  const name = `pinstream-leases-test-${randomBytes(4).toString('hex')}`;
  const kv = await bucket(nc, name);
  const log: string[] = [];
  const opts = { ttlMs: TTL, renewMs: 300, safetyMs: 400, retryMs: 100 };
  const one = new KvPlacement({ kv, nodeId: 'same-host', ...opts });
  const two = new KvPlacement({ kv, nodeId: 'same-host', ...opts });
  const jobOne = recorder(log, 'one');
  const jobTwo = recorder(log, 'two');
  try {
    one.place('loader', jobOne);
    await until(() => jobOne.running, 5000, 'the first to take the lease');
    two.place('loader', jobTwo);
    // Marker: the second has looked (it sees the holder by node id) while the first renewed three times.
    await until(() => two.states()[0]?.holder === 'same-host', 5000, 'the second to see the lease held');
    const rev0 = (await kv.get(leaseKey('loader')))!.revision;
    await until(() => (one.states()[0]?.revision ?? 0) >= rev0 + 3, 5000, 'three renewals by the first');
    assert.deepEqual(log, ['one start'], 'the second never took the lease of its namesake');
    assert.equal(jobTwo.running, false);
    await one.release('loader');
    await until(() => jobTwo.running, 5000, 'the second after the release');
    assert.deepEqual(log, ['one start', 'one stop', 'two start']);
  } finally {
    await one.close();
    await two.close();
    await kv.destroy().catch(() => {});
    await nc.close();
  }
});
