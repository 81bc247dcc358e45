// Two in-process servers sharing one PostgreSQL database (endpoints, jobs) and one NATS (logs,
// leases), each with its own data directory and the same master key: what is written through one
// node is read through the other. UpdateEndpoint via node 1, GetEndpoint via node 2; PutEvents with
// endpoint data via node 2, seen on node 1; an import job created on node 1, visible and finished
// (once, by whichever node holds its lease) on node 2. Skipped when PostgreSQL or NATS is not there.
// And PutEvents on PostgreSQL: endpoint transactions run side by side, appends keep arrival order.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateAppCommand,
  CreateImportJobCommand,
  GetEndpointCommand,
  GetImportJobCommand,
  GetImportJobsCommand,
  GetUserEndpointsCommand,
  PutEventsCommand,
  UpdateEndpointCommand,
} from '@aws-sdk/client-pinpoint';
import { IAMClient } from '@aws-sdk/client-iam';
import { systemClock } from '../src/clock.js';
import { MASTER_KEY_FILE } from '../src/iam/secrets.js';
import { JetStreamLogProvider } from '../src/log/jetstream/provider.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import type { AppendResult, Log, Payload } from '../src/log/log.js';
import { ManualClock } from '../src/clock.js';
import { openDb } from '../src/store/db.js';
import { openMetadata } from '../src/store/metadata.js';
import { Apps } from '../src/pinpoint/apps.js';
import { Endpoints } from '../src/pinpoint/endpoints.js';
import { EventIngest } from '../src/pinpoint/events.js';
import { Dedup } from '../src/pinpoint/dedup.js';
import { decodeIngestEntry } from '../src/pinpoint/ingest-record.js';
import { postgresTarget, withClient } from './helpers/postgres.js';
import { SINGLE_NATS, singleNatsSkip } from './helpers/nats-cluster.js';
import { createPinpointRole } from './helpers/eventstream.js';

const ACCOUNT = '000000000000';

/** Retries `check` until it passes, for at most `timeoutMs` (apps and roles travel by notification). */
async function eventually<T>(check: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > until) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

test('two servers on one PostgreSQL and NATS: endpoints and import jobs written through one are read through the other', { timeout: 180_000 }, async (t) => {
  const pg = await postgresTarget();
  if (pg.skip) return t.skip(pg.skip);
  const why = await singleNatsSkip();
  if (why) return t.skip(why);
  const config = pg.config!;
  const name = `pinstream_endpoints_${process.pid}_${randomBytes(4).toString('hex')}`;
  await withClient(config, (c) => c.query(`CREATE DATABASE ${name}`));
  const postgresUrl = `postgres://${config.user}@${config.host}:${config.port}/${name}`;
  const prefix = `E${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const dirs = [await mkdtemp(join(tmpdir(), 'pinstream-ep1-')), await mkdtemp(join(tmpdir(), 'pinstream-ep2-'))];
  const nodeConfig = { natsUrl: [SINGLE_NATS], natsReplicas: 1, postgresUrl };
  const servers: TestServer[] = [];
  t.after(async () => {
    for (const s of servers) await s.close();
    const cleanup = await JetStreamLogProvider.connect({ servers: [SINGLE_NATS], clock: systemClock, prefix });
    await cleanup.removeAll();
    await cleanup.close();
    await withClient(config, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const one = await startTestServer({ dataDir: dirs[0], config: nodeConfig, deps: { natsPrefix: prefix } });
  servers.push(one);
  await copyFile(join(dirs[0], MASTER_KEY_FILE), join(dirs[1], MASTER_KEY_FILE));
  const two = await startTestServer({ dataDir: dirs[1], config: nodeConfig, deps: { natsPrefix: prefix } });
  servers.push(two);

  const ApplicationId = (await one.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'both-nodes' } }))).ApplicationResponse!.Id!;

  // UpdateEndpoint via node 1, GetEndpoint via node 2 (once node 2 knows the app).
  await one.pinpoint.send(
    new UpdateEndpointCommand({
      ApplicationId,
      EndpointId: 'Phone-1',
      EndpointRequest: { Address: 'a@example.com', ChannelType: 'EMAIL', Attributes: { plan: ['gold'] }, User: { UserId: 'u1' } },
    }),
  );
  const got = await eventually(() => two.pinpoint.send(new GetEndpointCommand({ ApplicationId, EndpointId: 'phone-1' })));
  assert.equal(got.EndpointResponse!.Id, 'Phone-1');
  assert.deepEqual(got.EndpointResponse!.Attributes, { plan: ['gold'] });

  // PutEvents with endpoint data via node 2: merged into the endpoint node 1 wrote, seen on node 1.
  const put = await two.pinpoint.send(
    new PutEventsCommand({
      ApplicationId,
      EventsRequest: {
        BatchItem: {
          'phone-1': {
            Endpoint: { Demographic: { Platform: 'ios' }, Attributes: { color: ['red'] } },
            Events: { e1: { EventType: 'session.start', Timestamp: new Date().toISOString() } },
          },
          'tablet-2': { Endpoint: { User: { UserId: 'u1' } }, Events: { e2: { EventType: 'app.open', Timestamp: new Date().toISOString() } } },
        },
      },
    }),
  );
  assert.equal(put.EventsResponse!.Results!['phone-1'].EventsItemResponse!.e1.StatusCode, 202);
  const merged = (await one.pinpoint.send(new GetEndpointCommand({ ApplicationId, EndpointId: 'Phone-1' }))).EndpointResponse!;
  assert.deepEqual(merged.Attributes, { plan: ['gold'], color: ['red'] }, 'node 2 merged into what node 1 wrote, losing nothing');
  assert.equal(merged.Demographic?.Platform, 'ios');
  const user = await one.pinpoint.send(new GetUserEndpointsCommand({ ApplicationId, UserId: 'u1' }));
  assert.deepEqual(user.EndpointsResponse!.Item!.map((e) => e.Id).sort(), ['Phone-1', 'tablet-2']);

  // An import job created on node 1 is visible on node 2, and finishes once.
  const iam = new IAMClient({ endpoint: one.server.url, region: 'us-east-1', credentials: one.server.admin, maxAttempts: 1 });
  t.after(() => iam.destroy());
  await createPinpointRole(iam, 'importer', { resource: '*', actions: ['s3:ListBucket', 's3:GetObject'] });
  const job = (
    await one.pinpoint.send(
      new CreateImportJobCommand({ ApplicationId, ImportJobRequest: { Format: 'JSON', RoleArn: `arn:aws:iam::${ACCOUNT}:role/importer`, S3Url: 's3://nothing-here/in/' } }),
    )
  ).ImportJobResponse!;
  const seen = (await two.pinpoint.send(new GetImportJobCommand({ ApplicationId, JobId: job.Id! }))).ImportJobResponse!;
  assert.equal(seen.Id, job.Id);
  assert.equal((await two.pinpoint.send(new GetImportJobsCommand({ ApplicationId }))).ImportJobsResponse!.Item![0].Id, job.Id);
  // The bucket is empty on whichever node runs it: the job fails, saying so, and says it once.
  const done = await eventually(async () => {
    const j = (await two.pinpoint.send(new GetImportJobCommand({ ApplicationId, JobId: job.Id! }))).ImportJobResponse!;
    assert.equal(j.JobStatus, 'FAILED', JSON.stringify(j));
    return j;
  }, 30_000);
  assert.equal(done.Failures!.length, 1, JSON.stringify(done.Failures));
  assert.match(done.Failures![0], /nothing-here/);
});

test('PutEvents on PostgreSQL: requests whose endpoint writes wait on the store and requests answered from the cache reach the log in arrival order', { timeout: 60_000 }, async (t) => {
  const pg = await postgresTarget();
  if (pg.skip) return t.skip(pg.skip);
  const config = pg.config!;
  const name = `pinstream_ingest_${process.pid}_${randomBytes(4).toString('hex')}`;
  await withClient(config, (c) => c.query(`CREATE DATABASE ${name}`));
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-ep-ingest-'));
  const db = openDb(dir);
  const meta = await openMetadata({ db, postgresUrl: `postgres://${config.user}@${config.host}:${config.port}/${name}` });
  t.after(async () => {
    await meta.close();
    db.close();
    await withClient(config, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    await rm(dir, { recursive: true, force: true });
  });
  const clock = new ManualClock(Date.now());
  const apps = await Apps.open(db, meta, clock, 'us-east-1', ACCOUNT);
  const appId = (await apps.create('ordered', {})).Id;
  const stored: Buffer[] = [];
  const log: Pick<Log, 'append' | 'usesIds'> = {
    usesIds: false,
    append(payloads: ReadonlyArray<Payload>): Promise<AppendResult> {
      const firstOffset = stored.length;
      stored.push(...payloads.map((p) => Buffer.from(p.toString())));
      return Promise.resolve({ firstOffset, timestamp: 0 });
    },
  };
  const ingest = new EventIngest(apps, new Endpoints(meta.driver, clock), log, new Dedup(10_000), clock, ACCOUNT);
  t.after(() => ingest.close());
  // Every third request carries endpoint data (a transaction on PostgreSQL); the others name an
  // endpoint this node has just written (answered from its cache, at once) or a new one.
  const put = (endpointId: string, endpoint: object, eventId: string) => {
    const body = { BatchItem: { [endpointId]: { Endpoint: endpoint, Events: { [eventId]: { EventType: 'order.test', Timestamp: new Date().toISOString() } } } } };
    return ingest.putEvents(appId, Buffer.from(JSON.stringify(body)), body as never);
  };
  // 'busy' is written first, so this node has it cached.
  await put('busy', { Attributes: { n: ['warm'] } }, 'warm');
  const n = 60;
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) => {
      const endpointId = i % 3 === 0 ? 'busy' : i % 3 === 1 ? 'busy' : `fresh-${i}`;
      const body = { BatchItem: { [endpointId]: { Endpoint: i % 3 === 0 ? { Attributes: { n: [String(i)] } } : {}, Events: { [`ev${i}`]: { EventType: 'order.test', Timestamp: new Date().toISOString() } } } } };
      return ingest.putEvents(appId, Buffer.from(JSON.stringify(body)), body as never);
    }),
  );
  for (const r of results) for (const item of Object.values(r.Results)) assert.equal((item as { EventsItemResponse: Record<string, { StatusCode: number }> }).EventsItemResponse[Object.keys((item as { EventsItemResponse: object }).EventsItemResponse)[0]].StatusCode, 202);
  assert.deepEqual(
    stored.map((b) => decodeIngestEntry(b).eventId),
    ['warm', ...Array.from({ length: n }, (_, i) => `ev${i}`)],
    'the log holds the events in the order their requests arrived',
  );
});
