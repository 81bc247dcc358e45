// History import (issue 15 item 2) end to end: a live server receives events through PutEvents;
// its own event-stream records (read back from its ingest log) become an archive in Firehose's key
// layout — plain JSON, gzip and Parquet objects (Parquet written by Firehose's own converter, which
// lower-cases keys), records of two projects, malformed lines and events older than retention —
// and a fresh server that imports the archive answers every KPI and dashboard as the live one does.
// A second run adds nothing; an import from s3rver gives the same; another tenant can neither
// import into nor read a project it does not own; a kill -9 mid-import then a restart loses and
// duplicates nothing.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import {
  CreateAppCommand,
  GetApplicationDateRangeKpiCommand,
  GetCampaignDateRangeKpiCommand,
  GetJourneyDateRangeKpiCommand,
  PutEventsCommand,
  type PinpointClient,
} from '@aws-sdk/client-pinpoint';
import { ManualClock } from '../src/clock.js';
import { pinpointParquet } from './helpers/pinpoint-table.js';
import { KPI_NAMES } from '../src/analytics/kpi.js';
import { DASHBOARDS } from '../src/analytics/types.js';
import { decodeIngestEntry } from '../src/pinpoint/ingest-record.js';
import { splitLines } from '../src/history/reader.js';
import { MAX_FAILURE_SAMPLES } from '../src/history/jobs.js';
import { MAX_HISTORY_REQUEST_BYTES, MAX_MAP_ENTRIES } from '../src/history/routes.js';
import { HISTORY_EVENT_ID_PREFIX, historyRow, parseRecord } from '../src/history/record.js';
import { D1, D2, FIXTURE, IDS, NOW } from './helpers/kpi-events.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { signedRequest } from './helpers/signed.js';
import { createBucket, s3rverClient, startS3rver, S3RVER_CREDENTIALS, type S3rverHandle } from './helpers/s3rver.js';
import { CLI, spawnServer, waitForExit, type ServerProcess } from './helpers/process.js';
import { spawnSync } from 'node:child_process';
import { HISTORY_BATCH_COMMITTED, HISTORY_SERVER } from './helpers/history-server.js';
import { browserUnavailable, launchBrowser } from './helpers/browser.js';

type Creds = { accessKeyId: string; secretAccessKey: string };
type Job = Record<string, any>;
const DAY = 86_400_000;
const RANGE = { start: new Date(`${D1}T00:00:00Z`), end: new Date(`${D2}T23:59:59Z`) };

/** Signs as of NOW: the servers run on a manual clock (SigV4 checks request times against it). */
function pinClock<C extends { config: { systemClockOffset?: number }; middlewareStack: { add: Function } }>(client: C): C {
  client.middlewareStack.add(
    (next: (a: unknown) => unknown) => (args: unknown) => {
      client.config.systemClockOffset = NOW - Date.now();
      return next(args);
    },
    { step: 'build', name: 'pinClockToNow' },
  );
  return client;
}

async function api(url: string, creds: Creds, method: string, path: string, body?: unknown, signingDate = new Date(NOW)): Promise<{ status: number; body: Job }> {
  const res = await signedRequest(url, { method, path, credentials: creds, body: body === undefined ? undefined : JSON.stringify(body), signingDate });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {} };
}

/** Polls the job until it ends (bounded: the test fails rather than waits forever). */
async function finished(url: string, creds: Creds, appId: string, id: string, signingDate?: Date): Promise<Job> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const r = await api(url, creds, 'GET', `/v1/apps/${appId}/history-imports/${id}`, undefined, signingDate);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    if (r.body.JobStatus === 'COMPLETED' || r.body.JobStatus === 'FAILED') return r.body;
    assert.ok(Date.now() < deadline, `job ${id} did not finish: ${JSON.stringify(r.body)}`);
    await new Promise((res) => setImmediate(res));
  }
}

async function createApp(c: PinpointClient, Name: string): Promise<string> {
  return (await c.send(new CreateAppCommand({ CreateApplicationRequest: { Name } }))).ApplicationResponse!.Id!;
}

/** Every application KPI, and the campaign and journey ones of the fixture's C1 and J1, without the app id. */
async function allKpis(c: PinpointClient, appId: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const [name, def] of KPI_NAMES) {
    const base = { ApplicationId: appId, KpiName: name, StartTime: RANGE.start, EndTime: RANGE.end };
    if (def.scopes.includes('app')) out[`app:${name}`] = (await c.send(new GetApplicationDateRangeKpiCommand(base))).ApplicationDateRangeKpiResponse!.KpiResult;
    if (def.scopes.includes('campaign')) out[`campaign:${name}`] = (await c.send(new GetCampaignDateRangeKpiCommand({ ...base, CampaignId: IDS.C1 }))).CampaignDateRangeKpiResponse!.KpiResult;
    if (def.scopes.includes('journey')) out[`journey:${name}`] = (await c.send(new GetJourneyDateRangeKpiCommand({ ...base, JourneyId: IDS.J1 }))).JourneyDateRangeKpiResponse!.KpiResult;
  }
  return out;
}

async function allDashboards(t: TestServer, appId: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const name of DASHBOARDS) out[name] = await t.server.analytics.dashboard(name, { appId, range: { start: '2026-02-20', end: '2026-03-20' } });
  return out;
}

/** App events beside the KPI fixture: sessions, a purchase, demographics, user ids. */
function appEvents(): Record<string, { Endpoint: object; Events: Record<string, object> }> {
  const items: Record<string, { Endpoint: object; Events: Record<string, object> }> = {};
  for (let e = 0; e < 12; e++) {
    const day = `2026-03-${String(5 + (e % 10)).padStart(2, '0')}`;
    items[`dev-${e}`] = {
      Endpoint: {
        ChannelType: e % 2 ? 'APNS' : 'GCM',
        Demographic: { Platform: e % 2 ? 'ios' : 'android', AppVersion: `1.${e % 3}`, Make: 'Acme', Model: `M${e % 4}`, Locale: 'en_GB' },
        Location: { Country: e % 3 ? 'GB' : 'US' },
        Attributes: { Plan: [e % 2 ? 'pro' : 'free'] },
        User: { UserId: `user-${e % 5}` },
      },
      Events: {
        s: { EventType: '_session.start', Timestamp: `${day}T0${e % 10}:10:00Z`, Session: { Id: `sess-${e}`, StartTimestamp: `${day}T0${e % 10}:10:00Z` } },
        p: { EventType: 'pageView', Timestamp: `${day}T0${e % 10}:11:00Z`, Attributes: { url: `/p${e % 3}` }, Metrics: { elapsed: e } },
        ...(e % 4 === 0
          ? { b: { EventType: '_monetization.purchase', Timestamp: `${day}T0${e % 10}:12:00Z`, Attributes: { _currency: 'USD', _product_id: 'x' }, Metrics: { _item_price: 2.5, _quantity: 2 } } }
          : {}),
      },
    };
  }
  return items;
}

describe('history import', () => {
  let live: TestServer;
  let fresh: TestServer;
  let s3: S3rverHandle;
  let work: string;
  let archive: string;
  let liveA: string;
  let liveB: string;
  let freshA: string;
  let freshS3: string;
  let recordsA = 0;
  let recordsB = 0;
  const TOO_OLD = 3;
  let malformed = 0;
  let objectKeys: string[] = [];
  let firstJob: Job;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'pinstream-history-'));
    archive = join(work, 'archive');
    live = await startTestServer({ clock: new ManualClock(NOW) });
    pinClock(live.pinpoint);
    liveA = await createApp(live.pinpoint, 'old-a');
    liveB = await createApp(live.pinpoint, 'old-b');
    const fixture: Record<string, { Endpoint: object; Events: Record<string, object> }> = {};
    FIXTURE.forEach((e, i) => {
      fixture[e.endpoint] ??= { Endpoint: {}, Events: {} };
      fixture[e.endpoint].Events[`ev-${i}`] = { EventType: e.type, Timestamp: e.at, Attributes: e.attributes, Metrics: e.metrics };
    });
    for (const [app, BatchItem] of [
      [liveA, fixture],
      [liveA, appEvents()],
      [liveB, appEvents()],
    ] as const) {
      const res = await live.pinpoint.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: BatchItem as any } }));
      for (const r of Object.values(res.EventsResponse!.Results!)) for (const x of Object.values(r.EventsItemResponse!)) assert.equal(x.StatusCode, 202);
    }
    await live.server.analytics.catchUp();

    // The live server's own stream records, by event hour, into Firehose's layout.
    const { records } = await live.server.ingestLog.read(0, { maxRecords: 10_000 });
    const byHour = new Map<string, string[]>();
    for (const r of records) {
      const e = decodeIngestEntry(r.payload);
      const rec = JSON.parse(e.record.toString('utf8'));
      if (e.appId === liveA) recordsA++;
      else recordsB++;
      const hour = new Date(rec.event_timestamp).toISOString().slice(0, 13).replace(/[-T]/g, '/');
      (byHour.get(hour) ?? byHour.set(hour, []).get(hour)!).push(e.record.toString('utf8'));
    }
    const old = JSON.parse(decodeIngestEntry(records[0].payload).record.toString('utf8'));
    let n = 0;
    const put = async (key: string, body: Buffer) => {
      const file = join(archive, 'pinpoint', ...key.split('/'));
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, body);
      objectKeys.push(`pinpoint/${key}`);
    };
    for (const [hour, lines] of [...byHour].sort()) {
      const kind = n++ % 3;
      const name = `${hour}/pinpoint-stream-1-${hour.replace(/\//g, '-')}-${n}`;
      if (kind === 0) {
        // Plain JSON lines, with a blank line and (every other object) a malformed one.
        const extra = n % 2 ? ['{"event_type": "broken', ''] : [''];
        malformed += n % 2;
        await put(name, Buffer.from([...lines.slice(0, 1), ...extra, ...lines.slice(1)].join('\n') + '\n'));
      } else if (kind === 1) {
        malformed++;
        await put(`${name}.gz`, gzipSync(Buffer.from([...lines, '{"event_type":"x","application":{}}'].join('\n'))));
      } else {
        // Firehose's converter lower-cases every key by default (OpenX CaseInsensitive), custom
        // attribute names included, which no import can undo; an archive made to keep them:
        const conf = { InputFormatConfiguration: { Deserializer: { OpenXJsonSerDe: { CaseInsensitive: false } } } };
        const conv = await pinpointParquet(lines.map((l, i) => ({ data: Buffer.from(l), arrivalMs: NOW, recordId: String(i) })), conf);
        assert.ok(conv.ok);
        await put(`${name}.parquet`, conv.body);
      }
    }
    // Events older than the retention window (90 days before NOW).
    const oldLines = [0, 1, 2].map((i) => JSON.stringify({ ...old, event_timestamp: NOW - 100 * DAY + i, arrival_timestamp: NOW - 100 * DAY + i }));
    await put('2025/12/10/08/old-objects-1', Buffer.from(oldLines.join('\n')));
    // Not in the layout: ignored.
    await writeFile(join(archive, 'pinpoint', 'README.txt'), 'not an event archive');

    fresh = await startTestServer({ clock: new ManualClock(NOW) });
    pinClock(fresh.pinpoint);
    freshA = await createApp(fresh.pinpoint, 'new-a');
    freshS3 = await createApp(fresh.pinpoint, 'new-a-from-s3');
    s3 = await startS3rver();
  });

  after(async () => {
    await live?.close();
    await fresh?.close();
    await s3?.close();
    await rm(work, { recursive: true, force: true });
  });

  test('an archive of JSON, gzip and Parquet objects gives the KPIs and dashboards of the live events', async () => {
    const created = await api(fresh.server.url, fresh.server.admin, 'POST', `/v1/apps/${freshA}/history-imports`, {
      Source: `file://${archive}/pinpoint/`,
      Map: { [liveA]: freshA },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const job = await finished(fresh.server.url, fresh.server.admin, freshA, created.body.Id);
    firstJob = job;
    assert.equal(job.JobStatus, 'COMPLETED', job.FailureReason);
    assert.equal(job.TotalObjects, objectKeys.length);
    assert.equal(job.CompletedObjects, objectKeys.length);
    assert.equal(job.ImportedRecords, recordsA);
    assert.equal(job.DuplicateRecords, 0);
    assert.equal(job.OtherAppRecords, recordsB);
    assert.equal(job.TooOldRecords, TOO_OLD);
    assert.equal(job.MalformedRecords, malformed);
    assert.equal(job.TotalRecords, recordsA + recordsB + TOO_OLD + malformed);
    // Each malformed record is reported with its object and line.
    assert.equal(job.Failures.length, malformed);
    for (const f of job.Failures) assert.match(f, /^\d{4}\/\d{2}\/\d{2}\/\d{2}\/\S+:\d+: (not JSON|no application\.app_id)/);

    assert.deepEqual(await allKpis(fresh.pinpoint, freshA), await allKpis(live.pinpoint, liveA));
    assert.deepEqual(await allDashboards(fresh, freshA), await allDashboards(live, liveA));
    const kpi = await allKpis(fresh.pinpoint, freshA);
    assert.ok(JSON.stringify(kpi).includes('UniqueDeliveries'), 'the compared KPIs have values');
  });

  test('a second run adds nothing', async () => {
    const before = await allDashboards(fresh, freshA);
    const created = await api(fresh.server.url, fresh.server.admin, 'POST', `/v1/apps/${freshA}/history-imports`, { Source: `${archive}/pinpoint`, Map: { [liveA]: freshA } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const job = await finished(fresh.server.url, fresh.server.admin, freshA, created.body.Id);
    assert.equal(job.JobStatus, 'COMPLETED');
    assert.equal(job.ImportedRecords, 0);
    assert.equal(job.DuplicateRecords, recordsA);
    assert.deepEqual(await allDashboards(fresh, freshA), before);
    const list = await api(fresh.server.url, fresh.server.admin, 'GET', `/v1/apps/${freshA}/history-imports`);
    assert.deepEqual(list.body.Item.map((j: Job) => j.Id), [created.body.Id, firstJob.Id]);
  });

  test('from an S3-compatible server (s3rver) through PINSTREAM_BUCKETS, read as a role Pinpoint assumes', async () => {
    await createBucket(s3.endpoint, 'old-pipeline');
    const client = s3rverClient(s3.endpoint);
    try {
      const { readFile } = await import('node:fs/promises');
      for (const key of objectKeys) await client.send(new PutObjectCommand({ Bucket: 'old-pipeline', Key: `exports/${key}`, Body: await readFile(join(archive, ...key.split('/'))) }));
    } finally {
      client.destroy();
    }
    const t = await startTestServer({
      clock: new ManualClock(NOW),
      config: { buckets: [{ bucket: 'old-pipeline', endpoint: s3.endpoint, accessKeyId: S3RVER_CREDENTIALS.accessKeyId, secretAccessKey: S3RVER_CREDENTIALS.secretAccessKey }] },
    });
    try {
      pinClock(t.pinpoint);
      const app = await createApp(t.pinpoint, 'from-s3');
      const iam = pinClock(new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 }));
      const { CreateRoleCommand, PutRolePolicyCommand } = await import('@aws-sdk/client-iam');
      const trust = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'pinpoint.amazonaws.com' }, Action: 'sts:AssumeRole' }] };
      const role = (await iam.send(new CreateRoleCommand({ RoleName: 'history-reader', AssumeRolePolicyDocument: JSON.stringify(trust) }))).Role!.Arn!;
      const source = `s3://old-pipeline/exports/pinpoint/`;
      // The role cannot read the bucket yet: the job fails and says why.
      let r = await api(t.server.url, t.server.admin, 'POST', `/v1/apps/${app}/history-imports`, { Source: source, RoleArn: role, Map: { [liveA]: app } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      const denied = await finished(t.server.url, t.server.admin, app, r.body.Id);
      assert.equal(denied.JobStatus, 'FAILED');
      assert.match(denied.FailureReason, /s3:ListBucket on arn:aws:s3:::old-pipeline/);
      await iam.send(
        new PutRolePolicyCommand({
          RoleName: 'history-reader',
          PolicyName: 'read',
          PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['s3:ListBucket', 's3:GetObject'], Resource: ['arn:aws:s3:::old-pipeline', 'arn:aws:s3:::old-pipeline/*'] }] }),
        }),
      );
      iam.destroy();
      r = await api(t.server.url, t.server.admin, 'POST', `/v1/apps/${app}/history-imports`, { Source: source, RoleArn: role, Map: { [liveA]: app } });
      const job = await finished(t.server.url, t.server.admin, app, r.body.Id);
      assert.equal(job.JobStatus, 'COMPLETED', job.FailureReason);
      assert.equal(job.ImportedRecords, recordsA);
      assert.equal(job.MalformedRecords, malformed);
      assert.deepEqual(await allKpis(t.pinpoint, app), await allKpis(live.pinpoint, liveA));
    } finally {
      await t.close();
    }
  });

  test('another tenant can neither import into nor read a project it does not own, nor read the server\'s folders', async () => {
    const iam = pinClock(new IAMClient({ endpoint: fresh.server.url, region: 'us-east-1', credentials: fresh.server.admin, maxAttempts: 1 }));
    const own = await createApp(fresh.pinpoint, 'tenant-own');
    const ownArn = `arn:aws:mobiletargeting:us-east-1:${fresh.config.accountId}:apps/${own}`;
    await iam.send(new CreateUserCommand({ UserName: 'tenant' }));
    await iam.send(
      new PutUserPolicyCommand({
        UserName: 'tenant',
        PolicyName: 'own',
        PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['mobiletargeting:*', 's3:*'], Resource: [ownArn, `${ownArn}/*`, 'arn:aws:s3:::*'] }] }),
      }),
    );
    const k = (await iam.send(new CreateAccessKeyCommand({ UserName: 'tenant' }))).AccessKey!;
    iam.destroy();
    const tenant = { accessKeyId: k.AccessKeyId!, secretAccessKey: k.SecretAccessKey! };
    const denied = (r: { status: number; body: Job }) => {
      assert.equal(r.status, 403, JSON.stringify(r.body));
      assert.match(r.body.message ?? r.body.Message, /not authorized/);
    };
    denied(await api(fresh.server.url, tenant, 'POST', `/v1/apps/${freshA}/history-imports`, { Source: 's3://some-bucket/x/' }));
    denied(await api(fresh.server.url, tenant, 'GET', `/v1/apps/${freshA}/history-imports`));
    denied(await api(fresh.server.url, tenant, 'GET', `/v1/apps/${freshA}/history-imports/${firstJob.Id}`));
    // Its own project as the URL, another's as a --map destination.
    denied(await api(fresh.server.url, tenant, 'POST', `/v1/apps/${own}/history-imports`, { Source: 's3://some-bucket/x/', Map: { [liveA]: freshA } }));
    // The server's disk is the admin's.
    denied(await api(fresh.server.url, tenant, 'POST', `/v1/apps/${own}/history-imports`, { Source: `file://${archive}/pinpoint/` }));
    // Its own job ids do not reach another app's jobs.
    const mine = await api(fresh.server.url, tenant, 'POST', `/v1/apps/${own}/history-imports`, { Source: 's3://some-bucket/x/' });
    assert.equal(mine.status, 201, JSON.stringify(mine.body));
    assert.equal((await api(fresh.server.url, tenant, 'GET', `/v1/apps/${own}/history-imports/${firstJob.Id}`)).status, 404);
    await finished(fresh.server.url, tenant, own, mine.body.Id);
  });

  test('requests are checked: bad sources, maps and roles are refused with the reason', async () => {
    const post = (body: unknown) => api(fresh.server.url, fresh.server.admin, 'POST', `/v1/apps/${freshA}/history-imports`, body);
    for (const [body, msg] of [
      [{}, /Source is required/],
      [{ Source: 'http://x/y' }, /s3:\/\/ or file:\/\//],
      [{ Source: 's3://A_B/x' }, /not a valid bucket name/],
      [{ Source: 'relative/path' }, /absolute folder path/],
      [{ Source: 's3://bucket-x/', Map: {} }, /Map must have 1 to/],
      [{ Source: 's3://bucket-x/', Map: { a: 7 } }, /maps to a Pinstream app id/],
      [{ Source: 's3://bucket-x/', RoleArn: 'role' }, /RoleArn must be an IAM role ARN/],
      [{ Source: 's3://bucket-x/', Map: { a: 'no-such-app' } }, /not found|does not exist/i],
    ] as const) {
      const r = await post(body);
      assert.ok(r.status === 400 || r.status === 404, `${JSON.stringify(body)}: ${r.status}`);
      assert.match(r.body.message ?? r.body.Message, msg);
    }
  });

  test(`the request's limits: a Map of more than MAX_MAP_ENTRIES (${MAX_MAP_ENTRIES}) entries is a 400, a body over MAX_HISTORY_REQUEST_BYTES a 413`, async () => {
    const post = (body: string) => signedRequest(fresh.server.url, { method: 'POST', path: `/v1/apps/${freshA}/history-imports`, credentials: fresh.server.admin, body, signingDate: new Date(NOW) });
    const map = Object.fromEntries(Array.from({ length: MAX_MAP_ENTRIES + 1 }, (_, i) => [`src${i}`, freshA]));
    const tooMany = await post(JSON.stringify({ Source: 's3://bucket-x/', Map: map }));
    assert.equal(tooMany.status, 400);
    assert.match((await tooMany.json()).Message, new RegExp(`Map must have 1 to ${MAX_MAP_ENTRIES} entries`));
    const big = await post(JSON.stringify({ Source: 's3://bucket-x/', Pad: 'x'.repeat(MAX_HISTORY_REQUEST_BYTES) }));
    assert.equal(big.status, 413);
    await big.text();
  });

  test(`malformed lines are all counted, the first MAX_FAILURE_SAMPLES (${MAX_FAILURE_SAMPLES}) kept as object:line: reason`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pinstream-history-malformed-'));
    try {
      const [y, m, d] = D1.split('-');
      const file = join(dir, 'pinpoint', y, m, d, '10', 'malformed-1.json');
      await mkdir(dirname(file), { recursive: true });
      const bad = MAX_FAILURE_SAMPLES + 5;
      await writeFile(file, Array.from({ length: bad }, (_, i) => `{"not json ${i}`).join('\n') + '\n');
      const created = await api(fresh.server.url, fresh.server.admin, 'POST', `/v1/apps/${freshA}/history-imports`, { Source: `file://${dir}/pinpoint/` });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const job = await finished(fresh.server.url, fresh.server.admin, freshA, created.body.Id);
      assert.equal(job.MalformedRecords, bad);
      assert.equal(job.Failures.length, MAX_FAILURE_SAMPLES);
      assert.match(job.Failures[0], /malformed-1\.json:1: /);
      assert.match(job.Failures[MAX_FAILURE_SAMPLES - 1], new RegExp(`malformed-1\\.json:${MAX_FAILURE_SAMPLES}: `));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('records from a default Parquet conversion (every key lower-cased) keep their endpoint columns', async () => {
    const record = {
      event_type: '_session.start',
      event_timestamp: NOW,
      application: { app_id: 'a' },
      client: { client_id: 'e1' },
      endpoint: { ChannelType: 'APNS', User: { UserId: 'u1' }, Location: { Country: 'GB' }, Demographic: { Platform: 'ios', Model: 'X' }, Attributes: { Plan: ['pro'] } },
    };
    const lower = JSON.parse(JSON.stringify(record).replace(/"([A-Za-z]+)":/g, (_, k: string) => `"${k.toLowerCase()}":`));
    const a = parseRecord(JSON.stringify(record));
    const b = parseRecord(JSON.stringify(lower));
    assert.ok(a.ok && b.ok);
    const ra = historyRow('dest', a);
    const rb = historyRow('dest', b);
    assert.equal(a.eventId, b.eventId);
    assert.deepEqual({ ...rb, endpointAttributes: ra.endpointAttributes }, ra);
    assert.equal(rb.endpointAttributes, '{"plan":["pro"]}');
    assert.equal(ra.channel, 'APNS');
    assert.equal(ra.userId, 'u1');
    assert.equal(ra.country, 'GB');
  });

  test('lines are split with a bounded buffer: an over-long line is one malformed line, the next line is read', async () => {
    async function* chunks() {
      yield Buffer.from('{"a":1}\n' + 'x'.repeat(50));
      yield Buffer.from('y'.repeat(60) + '\n{"b":2}');
    }
    const lines = [];
    for await (const l of splitLines(chunks(), 0, 100)) lines.push(l);
    assert.deepEqual(lines, [{ line: 1, text: '{"a":1}' }, { line: 2, error: 'line longer than 100 bytes' }, { line: 3, text: '{"b":2}' }]);
    const after = [];
    for await (const l of splitLines(chunks(), 2, 100)) after.push(l);
    assert.deepEqual(after, [{ line: 3, text: '{"b":2}' }]);
  });

  test('with Replay the imported events enter the ingest log marked as history, and the loader does not load them twice', async () => {
    const app = await createApp(fresh.pinpoint, 'replayed');
    const end = fresh.server.ingestLog.endOffset();
    const r = await api(fresh.server.url, fresh.server.admin, 'POST', `/v1/apps/${app}/history-imports`, { Source: `file://${archive}/pinpoint/`, Map: { [liveA]: app }, Replay: true });
    const job = await finished(fresh.server.url, fresh.server.admin, app, r.body.Id);
    assert.equal(job.ImportedRecords, recordsA);
    assert.equal(fresh.server.ingestLog.endOffset() - end, recordsA);
    const { records } = await fresh.server.ingestLog.read(end, { maxRecords: 10 });
    const e = decodeIngestEntry(records[0].payload);
    assert.equal(e.history, true);
    assert.equal(e.appId, app);
    assert.ok(e.eventId.startsWith(HISTORY_EVENT_ID_PREFIX));
    assert.equal(JSON.parse(e.record.toString('utf8')).application.app_id, app);
    await fresh.server.analytics.catchUp();
    assert.deepEqual(await allKpis(fresh.pinpoint, app), await allKpis(live.pinpoint, liveA));
  });
});

describe('history import: kill -9 mid-import, then resume', () => {
  let dir: string;
  let proc: ServerProcess | undefined;
  after(async () => {
    proc?.child.kill('SIGKILL');
    if (proc) await waitForExit(proc.child);
    await rm(dir, { recursive: true, force: true });
  });

  test('the restarted server finishes the job; nothing lost, nothing twice', async () => {
    dir = await mkdtemp(join(tmpdir(), 'pinstream-history-crash-'));
    const dataDir = join(dir, 'data');
    // Synthetic records of the last days (this server runs on the real clock).
    const N = 600;
    const now = Date.now();
    for (let o = 0; o < 6; o++) {
      const t = now - (o + 1) * 3_600_000;
      const hour = new Date(t).toISOString().slice(0, 13).replace(/[-T]/g, '/');
      const lines = [];
      for (let i = 0; i < N / 6; i++) {
        lines.push(JSON.stringify({ event_type: 'pageView', event_timestamp: t + i, arrival_timestamp: t + i, event_version: '3.1', application: { app_id: 'oldapp', sdk: {} }, client: { client_id: `e${i % 17}` }, device: { platform: {} }, session: {}, attributes: { n: String(i) }, metrics: {} }));
      }
      const file = join(dir, 'archive', ...hour.split('/'), `obj-${o}.gz`);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, gzipSync(lines.join('\n')));
    }
    const env = { PINSTREAM_DATA_DIR: dataDir, HISTORY_TEST_BATCH: '50' };
    proc = await spawnServer(env, 30_000, HISTORY_SERVER);
    const creds = { accessKeyId: proc.accessKeyId, secretAccessKey: proc.secretAccessKey! };
    const now2 = () => new Date();
    const appRes = await api(proc.url, creds, 'POST', '/v1/apps', { Name: 'crash' }, now2());
    const app = appRes.body.Id;
    const created = await api(proc.url, creds, 'POST', `/v1/apps/${app}/history-imports`, { Source: `${dir}/archive/`, Map: { oldapp: app } }, now2());
    assert.equal(created.status, 201, JSON.stringify(created.body));
    // Wait (bounded) for the first committed batch, then kill -9 while the job is stopped there.
    const deadline = Date.now() + 60_000;
    while (!proc.output().includes(HISTORY_BATCH_COMMITTED)) {
      assert.ok(Date.now() < deadline, `no batch committed:\n${proc.output()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    proc.child.kill('SIGKILL');
    await waitForExit(proc.child);
    proc = await spawnServer({ PINSTREAM_DATA_DIR: dataDir, PINSTREAM_ADMIN_ACCESS_KEY_ID: creds.accessKeyId, PINSTREAM_ADMIN_SECRET_ACCESS_KEY: creds.secretAccessKey }, 30_000);
    const job = await finished(proc.url, creds, app, created.body.Id, new Date());
    assert.equal(job.JobStatus, 'COMPLETED', job.FailureReason);
    assert.equal(job.ImportedRecords, N, JSON.stringify(job));
    assert.equal(job.DuplicateRecords, 0);
    assert.equal(job.TotalRecords, N);
    // Every event is held: running it again finds all of them.
    // Through the CLI (not a TTY: no bar, the summary line): nothing new.
    const cli = spawnSync(process.execPath, [CLI, 'history', 'import', '--map', `oldapp=${app}`, join(dir, 'archive'), '--endpoint', proc.url], {
      env: { ...process.env, PINSTREAM_ADMIN_ACCESS_KEY_ID: creds.accessKeyId, PINSTREAM_ADMIN_SECRET_ACCESS_KEY: creds.secretAccessKey },
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(cli.status, 0, cli.stderr + cli.stdout);
    assert.match(cli.stdout, new RegExp(`^history import \\w+ COMPLETED: 6/6 objects, 600 records read, 0 imported, 600 already held, 0 older than retention, 0 of other apps, 0 malformed`, 'm'));
    const listed = await api(proc.url, creds, 'GET', `/v1/apps/${app}/history-imports`, undefined, now2());
    assert.equal(listed.body.Item[0].DuplicateRecords, N);

    // The console's project settings show the imports with their progress.
    if (!browserUnavailable()) {
      const browser = await launchBrowser();
      try {
        const page = await browser.newPage();
        page.setDefaultTimeout(15_000);
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
        await page.goto(proc.url + '/');
        await page.fill('input[name=accessKeyId]', creds.accessKeyId);
        await page.fill('input[name=secretAccessKey]', creds.secretAccessKey);
        await page.click('form.signin button[type=submit]');
        await page.getByRole('heading', { name: 'Projects' }).waitFor();
        await page.goto(`${proc.url}/console/#/projects/${app}/settings`);
        const first = page.locator(`#history-imports .history-import[data-job="${created.body.Id}"]`);
        await first.waitFor().catch(async (e) => assert.fail(`${e}\n${errors.join('\n')}\n${await page.locator('main, body').first().innerHTML()}`));
        const text = await first.innerText();
        assert.match(text, /COMPLETED/);
        assert.match(text, /6 of 6 objects · 600 records/);
        assert.match(text, /Imported\s+600/);
        assert.equal(await page.locator('#history-imports .history-import').count(), 2);
      } finally {
        await browser.close();
      }
    }
    proc.child.kill('SIGTERM');
    await waitForExit(proc.child);
    proc = undefined;
  });
});
