// Pinstream's event-stream extensions, through the official SDKs and signed raw requests: replay
// (POST /v1/apps/{id}/eventstream/replay: moves the checkpoint back to a StartTime and delivers the
// events again), its validation, the `pinstream streams replay` CLI, and "Automatically create a
// role" (POST /v1/apps/{id}/eventstream/role), which needs the IAM permissions it exercises.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { CreateAppCommand, PinpointClient, PutEventsCommand, PutEventStreamCommand } from '@aws-sdk/client-pinpoint';
import { CreateStreamCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient, ListShardsCommand } from '@aws-sdk/client-kinesis';
import { CreateAccessKeyCommand, CreateUserCommand, GetRoleCommand, IAMClient, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { startTestServer, type TestServer } from './helpers/server.js';
import { assertRestError, signedFetch } from './helpers/signed.js';
import { CLI } from './helpers/process.js';

const ACCOUNT = '000000000000';
const DAY = 86_400_000;
let t: TestServer;
let kinesis: KinesisClient;
let iam: IAMClient;

before(async () => {
  t = await startTestServer();
  kinesis = new KinesisClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 });
  iam = new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 });
});
after(async () => {
  kinesis.destroy();
  iam.destroy();
  await t.close();
});

const streamArn = (name: string) => `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${name}`;

async function newApp(name: string, client: PinpointClient = t.pinpoint): Promise<string> {
  return (await client.send(new CreateAppCommand({ CreateApplicationRequest: { Name: name } }))).ApplicationResponse!.Id!;
}

async function newStream(name: string, shards = 1): Promise<void> {
  await kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
}

const replay = (app: string, body: unknown, credentials = t.server.admin) =>
  signedFetch(t.server.url, { method: 'POST', path: `/v1/apps/${app}/eventstream/replay`, body: JSON.stringify(body), credentials });

const autoRole = (app: string, destination: string, credentials = t.server.admin) =>
  signedFetch(t.server.url, { method: 'POST', path: `/v1/apps/${app}/eventstream/role`, body: JSON.stringify({ DestinationStreamArn: destination }), credentials });

/** An app whose event stream goes to a new Kinesis stream, with a role made by the role endpoint. */
async function appWithStream(name: string): Promise<{ app: string; stream: string }> {
  const app = await newApp(name);
  const stream = `${name}-stream`;
  await newStream(stream);
  const role = await autoRole(app, streamArn(stream));
  assert.equal(role.status, 201, role.text);
  await t.pinpoint.send(new PutEventStreamCommand({ ApplicationId: app, WriteEventStream: { DestinationStreamArn: streamArn(stream), RoleArn: role.json.RoleArn } }));
  return { app, stream };
}

async function putEvents(app: string, types: string[]): Promise<void> {
  const Events: Record<string, { EventType: string; Timestamp: string }> = {};
  for (const type of types) Events[randomUUID()] = { EventType: type, Timestamp: new Date().toISOString() };
  await t.pinpoint.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: { [randomUUID()]: { Endpoint: {}, Events } } } }));
}

/** Event types of every record in the stream from TRIM_HORIZON, once `count` arrived or after a bounded wait. */
async function readTypes(name: string, count: number, timeoutMs = 15_000): Promise<string[]> {
  const shards = (await kinesis.send(new ListShardsCommand({ StreamName: name }))).Shards!;
  const iters = new Map<string, string>();
  for (const s of shards) {
    iters.set(s.ShardId!, (await kinesis.send(new GetShardIteratorCommand({ StreamName: name, ShardId: s.ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!);
  }
  const out: string[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count && Date.now() < deadline) {
    for (const [id, it] of iters) {
      const r = await kinesis.send(new GetRecordsCommand({ ShardIterator: it }));
      iters.set(id, r.NextShardIterator!);
      for (const rec of r.Records!) out.push(JSON.parse(Buffer.from(rec.Data!).toString('utf8')).event_type);
    }
    if (out.length < count) await new Promise((r) => setTimeout(r, 50));
  }
  return out;
}

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, PINSTREAM_ADMIN_ACCESS_KEY_ID: t.server.admin.accessKeyId, PINSTREAM_ADMIN_SECRET_ACCESS_KEY: t.server.admin.secretAccessKey }, timeout: 20_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as any).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

describe('replay', () => {
  test('events from before the stream existed are not delivered, and are after a replay from an earlier StartTime', async () => {
    const app = await newApp('replay');
    await newStream('replay-stream');
    const startTime = new Date(Date.now() - 1000).toISOString();
    await putEvents(app, ['early-1', 'early-2', 'early-3']);
    const role = await autoRole(app, streamArn('replay-stream'));
    await t.pinpoint.send(new PutEventStreamCommand({ ApplicationId: app, WriteEventStream: { DestinationStreamArn: streamArn('replay-stream'), RoleArn: role.json.RoleArn } }));

    // A new stream starts at the log end: the marker arrives, the earlier events do not.
    await putEvents(app, ['marker']);
    const first = await readTypes('replay-stream', 1);
    assert.deepEqual(first, ['marker']);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await readTypes('replay-stream', 2, 500), ['marker'], 'earlier events are not delivered to a new stream');

    const res = await replay(app, { StartTime: startTime });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.ApplicationId, app);
    assert.equal(res.json.DestinationStreamArn, streamArn('replay-stream'));
    assert.equal(res.json.RoleArn, role.json.RoleArn);
    assert.equal(res.json.StartTime, startTime);
    assert.equal(typeof res.json.Checkpoint, 'number');
    assert.ok(res.json.Checkpoint >= 0);

    // The marker once, then the three early events and the marker again.
    const all = await readTypes('replay-stream', 5);
    assert.equal(all.length, 5, JSON.stringify(all));
    assert.deepEqual([...all].sort(), ['early-1', 'early-2', 'early-3', 'marker', 'marker']);
    assert.deepEqual(all.slice(1).filter((x) => x.startsWith('early')).sort(), ['early-1', 'early-2', 'early-3']);

    // The CLI does the same, printing the checkpoint.
    const cli = await runCli(['streams', 'replay', app, '--from', startTime, '--endpoint', t.server.url]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, new RegExp(`checkpoint ${res.json.Checkpoint}\\b`));
    assert.equal((await readTypes('replay-stream', 9)).length, 9, 'the CLI replay delivered the four events again');
  });

  test('an app without an event stream, or no app at all, is a 404 NotFoundException', async () => {
    const app = await newApp('replay-none');
    assertRestError(await replay(app, { StartTime: new Date().toISOString() }), 404, 'NotFoundException', /event stream/);
    assert.equal((await replay('0123456789abcdef0123456789abcdef', { StartTime: new Date().toISOString() })).status, 404);
  });

  test('a missing, malformed, future or too-old StartTime is a 400 BadRequestException naming StartTime and the limit', async () => {
    const { app } = await appWithStream('replay-bad');
    assertRestError(await replay(app, {}), 400, 'BadRequestException', /StartTime/);
    assertRestError(await replay(app, { StartTime: 'yesterday' }), 400, 'BadRequestException', /StartTime "yesterday" is not an ISO-8601/);
    assertRestError(await replay(app, { StartTime: '2026-13-45T99:00:00Z' }), 400, 'BadRequestException', /StartTime/);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    assertRestError(await replay(app, { StartTime: future }), 400, 'BadRequestException', /StartTime .* is in the future/);
    const old = new Date(Date.now() - 91 * DAY).toISOString();
    assertRestError(await replay(app, { StartTime: old }), 400, 'BadRequestException', /StartTime .* older than the retention window of 90 days/);
    // Within the window but before the log's first event: clamped to the log's start.
    const res = await replay(app, { StartTime: new Date(Date.now() - 89 * DAY).toISOString() });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.Checkpoint, 0);
  });

  test('the CLI reports a server error and exits non-zero; usage errors exit 2', async () => {
    const app = await newApp('replay-cli-none');
    const r = await runCli(['streams', 'replay', app, '--from', new Date().toISOString(), '--endpoint', t.server.url]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /404 NotFoundException/);
    assert.equal((await runCli(['streams', 'replay', app])).code, 2);
  });
});

describe('automatically create a role', () => {
  test('returns a role ARN that PutEventStream accepts; running it again repairs the same role', async () => {
    const app = await newApp('role');
    await newStream('role-stream');
    const res = await autoRole(app, streamArn('role-stream'));
    assert.equal(res.status, 201, res.text);
    assert.match(res.json.RoleArn, new RegExp(`^arn:aws:iam::${ACCOUNT}:role/pinpoint-event-stream-${app}$`));
    const put = await t.pinpoint.send(new PutEventStreamCommand({ ApplicationId: app, WriteEventStream: { DestinationStreamArn: streamArn('role-stream'), RoleArn: res.json.RoleArn } }));
    assert.equal(put.EventStream!.RoleArn, res.json.RoleArn);
    const again = await autoRole(app, streamArn('role-stream'));
    assert.equal(again.status, 201);
    assert.equal(again.json.RoleArn, res.json.RoleArn);
  });

  test('a destination that is not a stream ARN is a 400', async () => {
    const app = await newApp('role-bad');
    assertRestError(await autoRole(app, 'arn:aws:sqs:us-east-1:000000000000:queue'), 400, 'BadRequestException', /DestinationStreamArn .*must be a Kinesis data stream ARN/);
  });

  test('a user who may use Pinpoint but not create roles gets 403 and no role', async () => {
    await iam.send(new CreateUserCommand({ UserName: 'no-roles' }));
    await iam.send(
      new PutUserPolicyCommand({
        UserName: 'no-roles',
        PolicyName: 'pinpoint-only',
        PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['mobiletargeting:*'], Resource: '*' }] }),
      }),
    );
    const k = (await iam.send(new CreateAccessKeyCommand({ UserName: 'no-roles' }))).AccessKey!;
    const credentials = { accessKeyId: k.AccessKeyId!, secretAccessKey: k.SecretAccessKey! };
    const app = await newApp('role-denied');
    await newStream('role-denied-stream');
    const res = await autoRole(app, streamArn('role-denied-stream'), credentials);
    assert.equal(res.status, 403, res.text);
    assert.match(res.text, /iam:CreateRole/);
    await assert.rejects(iam.send(new GetRoleCommand({ RoleName: `pinpoint-event-stream-${app}` })), (e: any) => e.name === 'NoSuchEntityException');
  });
});
