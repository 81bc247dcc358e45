// Two in-process servers sharing one PostgreSQL database (endpoints, jobs) and one NATS (logs,
// leases), each with its own data directory and the same master key: what is written through one
// node is read through the other. UpdateEndpoint via node 1, GetEndpoint via node 2; PutEvents with
// endpoint data via node 2, seen on node 1; an import job created on node 1, visible and finished
// (once, by whichever node holds its lease) on node 2. Skipped when PostgreSQL or NATS is not there.
// And PutEvents on PostgreSQL: endpoint transactions run side by side, appends keep arrival order;
// and an import job whose node stops mid-job is finished by the other node from its last batch.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
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
import { eventually } from './helpers/eventually.js';

const ACCOUNT = '000000000000';


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
  const one = await startTestServer({ dataDir: dirs[0], config: { ...nodeConfig, nodeId: 'node-1' }, deps: { natsPrefix: prefix } });
  servers.push(one);
  await copyFile(join(dirs[0], MASTER_KEY_FILE), join(dirs[1], MASTER_KEY_FILE));
  const two = await startTestServer({ dataDir: dirs[1], config: { ...nodeConfig, nodeId: 'node-2' }, deps: { natsPrefix: prefix } });
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

test('an import job whose node stops mid-job is taken over by the other node (its lease) and resumed from the last committed batch', { timeout: 180_000 }, async (t) => {
  const pg = await postgresTarget();
  if (pg.skip) return t.skip(pg.skip);
  const why = await singleNatsSkip();
  if (why) return t.skip(why);
  const config = pg.config!;
  const name = `pinstream_takeover_${process.pid}_${randomBytes(4).toString('hex')}`;
  await withClient(config, (c) => c.query(`CREATE DATABASE ${name}`));
  const prefix = `J${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const dirs = [await mkdtemp(join(tmpdir(), 'pinstream-job1-')), await mkdtemp(join(tmpdir(), 'pinstream-job2-')), await mkdtemp(join(tmpdir(), 'pinstream-bucket-'))];
  // Both nodes read the bucket from one folder (as they would one S3 bucket).
  const nodeConfig = { natsUrl: [SINGLE_NATS], natsReplicas: 1, postgresUrl: `postgres://${config.user}@${config.host}:${config.port}/${name}`, buckets: [{ bucket: 'shared', dir: dirs[2] }] };
  const servers: TestServer[] = [];
  const closed = new Set<TestServer>();
  t.after(async () => {
    for (const s of servers) if (!closed.has(s)) await s.close();
    const cleanup = await JetStreamLogProvider.connect({ servers: [SINGLE_NATS], clock: systemClock, prefix });
    await cleanup.removeAll();
    await cleanup.close();
    await withClient(config, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const N = 1000;
  const BATCH = 50;
  // Whichever node takes the job first stops at the gate; it is then stopped, and the other goes on.
  let gate: { node: number; release: () => void } | undefined;
  let reached!: (node: number) => void;
  const gateReached = new Promise<number>((r) => (reached = r));
  let released!: () => void;
  const release = new Promise<void>((r) => (released = r));
  const hook = (node: number) => async (_id: string, processed: number) => {
    if (gate === undefined && processed >= 300) {
      gate = { node, release: released };
      reached(node);
      await release;
    }
  };
  for (const i of [0, 1]) {
    if (i === 1) await copyFile(join(dirs[0], MASTER_KEY_FILE), join(dirs[1], MASTER_KEY_FILE));
    servers.push(await startTestServer({ dataDir: dirs[i], config: { ...nodeConfig, nodeId: `node-${i + 1}` }, deps: { natsPrefix: prefix, jobs: { importBatchLines: BATCH, beforeBatch: hook(i) } } }));
  }
  const [one, two] = servers;
  const ApplicationId = (await one.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'takeover' } }))).ApplicationResponse!.Id!;
  const iam = new IAMClient({ endpoint: one.server.url, region: 'us-east-1', credentials: one.server.admin, maxAttempts: 1 });
  await createPinpointRole(iam, 'importer', { resource: 'arn:aws:s3:::*', actions: ['s3:ListBucket', 's3:GetObject'] });
  iam.destroy();
  await mkdir(join(dirs[2], 'in'), { recursive: true });
  // No Id on the lines: a line applied twice would add a second endpoint, not update the first.
  await writeFile(join(dirs[2], 'in', 'a.json'), Array.from({ length: N }, (_, i) => JSON.stringify({ ChannelType: 'EMAIL', Address: `u${i}@example.com`, Attributes: { n: [String(i)] } })).join('\n'));
  // Node 2 knows the role and the app once their changes reach it.
  await eventually(() => two.pinpoint.send(new GetEndpointCommand({ ApplicationId, EndpointId: 'none' })).catch((e: Error) => assert.equal(e.name, 'NotFoundException')));
  const job = (
    await one.pinpoint.send(new CreateImportJobCommand({ ApplicationId, ImportJobRequest: { Format: 'JSON', RoleArn: `arn:aws:iam::${ACCOUNT}:role/importer`, S3Url: 's3://shared/in/' } }))
  ).ImportJobResponse!;
  const first = await gateReached;
  const runner = servers[first];
  const other = servers[1 - first];
  const mid = (await other.pinpoint.send(new GetImportJobCommand({ ApplicationId, JobId: job.Id! }))).ImportJobResponse!;
  assert.equal(mid.JobStatus, 'PROCESSING');
  assert.equal(mid.TotalProcessed, 300, 'six batches committed before the gate');
  // The node running it stops (its lease is handed over at once); the other node resumes the job.
  const stopping = runner.close();
  closed.add(runner);
  released();
  await stopping;
  const done = await eventually(async () => {
    const j = (await other.pinpoint.send(new GetImportJobCommand({ ApplicationId, JobId: job.Id! }))).ImportJobResponse!;
    assert.equal(j.JobStatus, 'COMPLETED', JSON.stringify(j));
    return j;
  }, 60_000);
  assert.equal(done.TotalProcessed, N);
  assert.equal(done.TotalFailures, 0);
  const rows = await withClient({ ...config, database: name }, (c) => c.query<{ n: string }>('SELECT count(*) AS n FROM endpoints WHERE app_id = $1', [ApplicationId]));
  assert.equal(Number(rows.rows[0].n), N, 'every line imported once');
});
