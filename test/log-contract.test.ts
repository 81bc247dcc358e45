// The Log / LogProvider contract (test/helpers/log-contract.ts) against every adapter: the segment
// log, JetStream on the single server at 127.0.0.1:4222, and JetStream on a 3-node cluster started
// here with replicas 3 (each skipped with its reason when its NATS is not there).

import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SegmentLogProvider } from '../src/log/provider.js';
import { JetStreamLogProvider } from '../src/log/jetstream/provider.js';
import { logContract } from './helpers/log-contract.js';
import { SINGLE_NATS, fileCluster, singleNatsSkip } from './helpers/nats-cluster.js';
import type { TestContext } from 'node:test';
import type { Clock } from '../src/clock.js';

logContract({
  name: 'segment log',
  dedupsIds: false,
  skip: async () => undefined,
  provider: async (t, clock) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-contract-'));
    t.after(() => rm(dataDir, { recursive: true, force: true }));
    // Small segments, so retention has whole segments to delete.
    return new SegmentLogProvider({ dataDir, fsync: true, clock, segmentBytes: 1024 });
  },
});

/** A JetStream provider under its own stream prefix; its streams are deleted after the test. */
async function jetStreamProvider(t: TestContext, clock: Clock, servers: string[], replicas: number): Promise<JetStreamLogProvider> {
  const logs = await JetStreamLogProvider.connect({ servers, clock, replicas, prefix: `T${randomUUID().replaceAll('-', '').slice(0, 12)}`, report: () => undefined });
  t.after(async () => {
    await logs.removeAll();
    await logs.close();
  });
  return logs;
}

logContract({
  name: 'JetStream (single server)',
  dedupsIds: true,
  skip: singleNatsSkip,
  provider: (t, clock) => jetStreamProvider(t, clock, [SINGLE_NATS], 1),
});

const shared = fileCluster();

logContract({
  name: 'JetStream (3-node cluster, replicas 3)',
  dedupsIds: true,
  skip: async () => shared.skip(),
  provider: (t, clock) => jetStreamProvider(t, clock, shared.get().servers, 3),
});
