// Defect 6 of issue 12 (a tenant could write into another's stream): naming a role needs
// iam:PassRole on it, and a role serves only the source its trust policy names. Through the
// official SDKs with a tenant's own keys: PutEventStream, "Automatically create a role",
// CreateDeliveryStream, UpdateDestination and a Kinesis source naming B's role are refused with
// the error AWS gives (ForbiddenException / AccessDeniedException naming iam:PassRole and the
// role); iam:PassedToService is honoured; a trust policy conditioned on another app or delivery
// stream (aws:SourceArn) stops a role from serving, at save time and at delivery time, visibly in
// health, and delivery resumes without loss once the trust is put back.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { CreateAppCommand, GetEventStreamCommand, PinpointClient, PutEventsCommand, PutEventStreamCommand } from '@aws-sdk/client-pinpoint';
import { CreateStreamCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient, ListShardsCommand } from '@aws-sdk/client-kinesis';
import {
  CreateDeliveryStreamCommand,
  DescribeDeliveryStreamCommand,
  FirehoseClient,
  UpdateDestinationCommand,
} from '@aws-sdk/client-firehose';
import { CreateAccessKeyCommand, CreateRoleCommand, CreateUserCommand, GetRoleCommand, IAMClient, PutUserPolicyCommand, UpdateAssumeRolePolicyCommand } from '@aws-sdk/client-iam';
import { createPinpointRole } from './helpers/eventstream.js';
import { pinpointClient, startTestServer, type TestServer } from './helpers/server.js';
import { kinesisClient } from './helpers/kinesis.js';
import { createDeliveryRole, firehoseClient, s3Destination, until } from './helpers/firehose.js';
import { signedFetch } from './helpers/signed.js';

const ACCOUNT = '000000000000';
const appArn = (id: string) => `arn:aws:mobiletargeting:us-east-1:${ACCOUNT}:apps/${id}`;
const streamArn = (name: string) => `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${name}`;
const deliveryArn = (name: string) => `arn:aws:firehose:us-east-1:${ACCOUNT}:deliverystream/${name}`;
const roleArn = (name: string) => `arn:aws:iam::${ACCOUNT}:role/${name}`;
type Creds = { accessKeyId: string; secretAccessKey: string };

let t: TestServer;
let iam: IAMClient;
let kinesis: KinesisClient;
let A: string;
let B: string;
const clients: Array<{ destroy(): void }> = [];
const track = <C extends { destroy(): void }>(c: C): C => (clients.push(c), c);

async function user(name: string, statements: object[]): Promise<Creds> {
  await iam.send(new CreateUserCommand({ UserName: name }));
  await iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'p', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: statements }) }));
  const k = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
  return { accessKeyId: k.AccessKeyId!, secretAccessKey: k.SecretAccessKey! };
}

/** Every record in the stream now (all shards from the start). */
async function records(name: string): Promise<any[]> {
  const out: any[] = [];
  for (const s of (await kinesis.send(new ListShardsCommand({ StreamName: name }))).Shards!) {
    const it = (await kinesis.send(new GetShardIteratorCommand({ StreamName: name, ShardId: s.ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
    const got = await kinesis.send(new GetRecordsCommand({ ShardIterator: it, Limit: 10_000 }));
    for (const r of got.Records ?? []) out.push(JSON.parse(Buffer.from(r.Data!).toString()));
  }
  return out;
}

const putEvent = (c: PinpointClient, app: string, type: string) =>
  c.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: { [randomUUID()]: { Endpoint: {}, Events: { [randomUUID()]: { EventType: type, Timestamp: new Date().toISOString() } } } } } }));

/** Asserts an SDK refusal: error name, HTTP status, and a message naming iam:PassRole and the role. */
async function passRoleRefused(p: Promise<unknown>, name: string, status: number, role: string): Promise<void> {
  const err: any = await p.then(
    () => undefined,
    (e) => e,
  );
  assert.ok(err, `passing ${role} should be refused`);
  assert.equal(err.name, name, err.message);
  assert.equal(err.$metadata.httpStatusCode, status);
  assert.match(err.message, new RegExp(`is not authorized to perform: iam:PassRole on resource: ${role.replace(/[/.]/g, '\\$&')} because no identity-based policy allows the iam:PassRole action`));
}

before(async () => {
  t = await startTestServer();
  iam = track(new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 }));
  kinesis = track(kinesisClient(t.server));
  A = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'tenant-a' } }))).ApplicationResponse!.Id!;
  B = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'tenant-b' } }))).ApplicationResponse!.Id!;
  for (const s of ['stream-a', 'stream-b']) await kinesis.send(new CreateStreamCommand({ StreamName: s, ShardCount: 1 }));
  // B's role: trusts Pinpoint (as the docs' first example, without conditions), writes to B's stream.
  await createPinpointRole(iam, 'role-b', { resource: streamArn('stream-b') });
  await createPinpointRole(iam, 'role-a', { resource: streamArn('stream-a') });
});
after(async () => {
  for (const c of clients) c.destroy();
  await t.close();
});

describe('Pinpoint event streams', () => {
  test("mobiletargeting:* on app A only: saving A's event stream into B's stream with B's role is refused (iam:PassRole), and nothing reaches B's stream", async () => {
    const creds = await user('tenant-a', [{ Effect: 'Allow', Action: 'mobiletargeting:*', Resource: `${appArn(A)}*` }]);
    const pa = track(pinpointClient({ url: t.server.url, admin: creds }));
    await passRoleRefused(
      pa.send(new PutEventStreamCommand({ ApplicationId: A, WriteEventStream: { DestinationStreamArn: streamArn('stream-b'), RoleArn: roleArn('role-b') } })),
      'ForbiddenException',
      403,
      roleArn('role-b'),
    );
    // A role that does not exist is refused the same way: no existence oracle for other tenants' roles.
    await passRoleRefused(
      pa.send(new PutEventStreamCommand({ ApplicationId: A, WriteEventStream: { DestinationStreamArn: streamArn('stream-b'), RoleArn: roleArn('no-such-role') } })),
      'ForbiddenException',
      403,
      roleArn('no-such-role'),
    );
    await assert.rejects(pa.send(new GetEventStreamCommand({ ApplicationId: A })), { name: 'NotFoundException' });
    await putEvent(pa, A, 'a.secret');
    assert.deepEqual(await records('stream-b'), [], "none of A's events in B's stream");
  });

  test('iam:PassRole on its own role, to pinpoint.amazonaws.com, lets a tenant save its stream; a PassRole limited to another service does not', async () => {
    const creds = await user('tenant-a2', [
      { Effect: 'Allow', Action: 'mobiletargeting:*', Resource: `${appArn(A)}*` },
      { Effect: 'Allow', Action: 'iam:PassRole', Resource: roleArn('role-a'), Condition: { StringEquals: { 'iam:PassedToService': 'pinpoint.amazonaws.com' } } },
      { Effect: 'Allow', Action: 'iam:PassRole', Resource: roleArn('role-b'), Condition: { StringEquals: { 'iam:PassedToService': 'firehose.amazonaws.com' } } },
    ]);
    const pa = track(pinpointClient({ url: t.server.url, admin: creds }));
    await passRoleRefused(
      pa.send(new PutEventStreamCommand({ ApplicationId: A, WriteEventStream: { DestinationStreamArn: streamArn('stream-b'), RoleArn: roleArn('role-b') } })),
      'ForbiddenException',
      403,
      roleArn('role-b'),
    );
    const saved = await pa.send(new PutEventStreamCommand({ ApplicationId: A, WriteEventStream: { DestinationStreamArn: streamArn('stream-a'), RoleArn: roleArn('role-a') } }));
    assert.equal(saved.EventStream!.RoleArn, roleArn('role-a'));
    await putEvent(pa, A, 'a.own');
    await until(async () => (await records('stream-a')).some((r) => r.event_type === 'a.own'), "A's event in A's stream");
    assert.deepEqual(await records('stream-b'), []);
  });

  test('"Automatically create a role" for B\'s stream is refused to a tenant that may not write to it itself', async () => {
    const creds = await user('tenant-a3', [
      { Effect: 'Allow', Action: 'mobiletargeting:*', Resource: `${appArn(A)}*` },
      { Effect: 'Allow', Action: ['iam:CreateRole', 'iam:PutRolePolicy', 'iam:PassRole'], Resource: roleArn(`pinpoint-event-stream-${A}`) },
    ]);
    const auto = (destination: string, credentials: Creds) =>
      signedFetch(t.server.url, { method: 'POST', path: `/v1/apps/${A}/eventstream/role`, body: JSON.stringify({ DestinationStreamArn: destination }), credentials });
    const res = await auto(streamArn('stream-b'), creds);
    assert.equal(res.status, 403, res.text);
    assert.equal(res.headers.get('x-amzn-errortype'), 'ForbiddenException');
    assert.match(res.json.Message, new RegExp(`not authorized to perform: kinesis:PutRecords on resource: ${streamArn('stream-b').replace(/[/.]/g, '\\$&')} `));
    await assert.rejects(iam.send(new GetRoleCommand({ RoleName: `pinpoint-event-stream-${A}` })), { name: 'NoSuchEntityException' }, 'no role was made');

    // Without iam:PassRole on the role it would make, the extension is refused too.
    const noPass = await user('tenant-a4', [
      { Effect: 'Allow', Action: 'mobiletargeting:*', Resource: `${appArn(A)}*` },
      { Effect: 'Allow', Action: ['iam:CreateRole', 'iam:PutRolePolicy'], Resource: roleArn(`pinpoint-event-stream-${A}`) },
      { Effect: 'Allow', Action: ['kinesis:PutRecords', 'kinesis:DescribeStream'], Resource: streamArn('stream-a') },
    ]);
    const r2 = await auto(streamArn('stream-a'), noPass);
    assert.equal(r2.status, 403, r2.text);
    assert.match(r2.json.Message, /iam:PassRole on resource: .*pinpoint-event-stream-/);

    // With the stream's own permissions as well, it works.
    const ok = await user('tenant-a5', [
      { Effect: 'Allow', Action: 'mobiletargeting:*', Resource: `${appArn(A)}*` },
      { Effect: 'Allow', Action: ['iam:CreateRole', 'iam:PutRolePolicy', 'iam:PassRole'], Resource: roleArn(`pinpoint-event-stream-${A}`) },
      { Effect: 'Allow', Action: ['kinesis:PutRecords', 'kinesis:DescribeStream'], Resource: streamArn('stream-a') },
    ]);
    const r3 = await auto(streamArn('stream-a'), ok);
    assert.equal(r3.status, 201, r3.text);
  });

  test("a role whose trust names app B's ARN never serves app A: refused when saved, and delivery stops (visibly) when the trust changes after, then resumes without loss", { timeout: 60_000 }, async () => {
    const app = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'trusting' } }))).ApplicationResponse!.Id!;
    await kinesis.send(new CreateStreamCommand({ StreamName: 'stream-trust', ShardCount: 1 }));
    const trust = (forApp: string) =>
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Principal: { Service: 'pinpoint.amazonaws.com' },
            Action: 'sts:AssumeRole',
            Condition: { StringEquals: { 'aws:SourceAccount': ACCOUNT }, ArnLike: { 'aws:SourceArn': appArn(forApp) } },
          },
        ],
      });
    await createPinpointRole(iam, 'role-trust', { resource: streamArn('stream-trust') });
    await iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: 'role-trust', PolicyDocument: trust(B) }));
    const save = () => t.pinpoint.send(new PutEventStreamCommand({ ApplicationId: app, WriteEventStream: { DestinationStreamArn: streamArn('stream-trust'), RoleArn: roleArn('role-trust') } }));
    await assert.rejects(save(), (e: any) => e.name === 'BadRequestException' && /only under conditions that .* does not meet/.test(e.message));

    await iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: 'role-trust', PolicyDocument: trust(app) }));
    await save();
    await putEvent(t.pinpoint, app, 'before');
    await until(async () => (await records('stream-trust')).some((r) => r.event_type === 'before'), 'the first event delivered');

    // The trust now names app B: the role's session for this app is no longer honoured.
    await iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: 'role-trust', PolicyDocument: trust(B) }));
    await putEvent(t.pinpoint, app, 'while-untrusted');
    const error = await until(() => t.server.delivery.health(app)?.lastError, 'the delivery error');
    assert.match(error.message, /role session is no longer valid: the trust policy of role role-trust lets pinpoint\.amazonaws\.com assume it .* only under conditions/);
    assert.ok(!(await records('stream-trust')).some((r) => r.event_type === 'while-untrusted'), 'not delivered while the role does not trust this app');

    await iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: 'role-trust', PolicyDocument: trust(app) }));
    await until(async () => (await records('stream-trust')).some((r) => r.event_type === 'while-untrusted'), 'the held event delivered once the trust is back');
  });
});

describe('Firehose', () => {
  let fa: FirehoseClient;
  before(async () => {
    await createDeliveryRole(t.server, 'fh-role-a', ['arn:aws:s3:::bucket-a/*']);
    await createDeliveryRole(t.server, 'fh-role-b', ['arn:aws:s3:::bucket-b/*']);
    const creds = await user('fh-tenant-a', [
      { Effect: 'Allow', Action: 'firehose:*', Resource: deliveryArn('a-*') },
      { Effect: 'Allow', Action: 'iam:PassRole', Resource: roleArn('fh-role-a'), Condition: { StringEquals: { 'iam:PassedToService': 'firehose.amazonaws.com' } } },
    ]);
    fa = track(firehoseClient(t.server, creds));
  });

  test("CreateDeliveryStream naming B's role anywhere (destination, S3 backup, Kinesis source) is AccessDeniedException (iam:PassRole)", async () => {
    const fhb = roleArn('fh-role-b');
    await passRoleRefused(
      fa.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'a-1', ExtendedS3DestinationConfiguration: { RoleARN: fhb, BucketARN: 'arn:aws:s3:::bucket-b' } })),
      'AccessDeniedException',
      400,
      fhb,
    );
    await passRoleRefused(
      fa.send(
        new CreateDeliveryStreamCommand({
          DeliveryStreamName: 'a-2',
          ExtendedS3DestinationConfiguration: {
            RoleARN: roleArn('fh-role-a'),
            BucketARN: 'arn:aws:s3:::bucket-a',
            S3BackupMode: 'Enabled',
            S3BackupConfiguration: { RoleARN: fhb, BucketARN: 'arn:aws:s3:::bucket-b' },
          },
        }),
      ),
      'AccessDeniedException',
      400,
      fhb,
    );
    await kinesis.send(new CreateStreamCommand({ StreamName: 'fh-src-b', ShardCount: 1 }));
    await passRoleRefused(
      fa.send(
        new CreateDeliveryStreamCommand({
          DeliveryStreamName: 'a-3',
          DeliveryStreamType: 'KinesisStreamAsSource',
          KinesisStreamSourceConfiguration: { KinesisStreamARN: streamArn('fh-src-b'), RoleARN: fhb },
          ExtendedS3DestinationConfiguration: { RoleARN: roleArn('fh-role-a'), BucketARN: 'arn:aws:s3:::bucket-a' },
        }),
      ),
      'AccessDeniedException',
      400,
      fhb,
    );
    const admin = track(firehoseClient(t.server));
    for (const n of ['a-1', 'a-2', 'a-3']) await assert.rejects(admin.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: n })), { name: 'ResourceNotFoundException' });
  });

  test("UpdateDestination naming B's role is refused and leaves the stream as it was", async () => {
    await fa.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'a-upd', ExtendedS3DestinationConfiguration: { RoleARN: roleArn('fh-role-a'), BucketARN: 'arn:aws:s3:::bucket-a' } }));
    await passRoleRefused(
      fa.send(
        new UpdateDestinationCommand({
          DeliveryStreamName: 'a-upd',
          CurrentDeliveryStreamVersionId: '1',
          DestinationId: 'destinationId-000000000001',
          ExtendedS3DestinationUpdate: { RoleARN: roleArn('fh-role-b'), BucketARN: 'arn:aws:s3:::bucket-b' },
        }),
      ),
      'AccessDeniedException',
      400,
      roleArn('fh-role-b'),
    );
    const d = (await fa.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: 'a-upd' }))).DeliveryStreamDescription!;
    assert.equal(d.VersionId, '1');
    assert.equal(d.Destinations![0].ExtendedS3DestinationDescription!.RoleARN, roleArn('fh-role-a'));
  });

  test('a role whose trust names another delivery stream (aws:SourceArn) cannot be used: "Firehose is unable to assume role"', async () => {
    const admin = track(firehoseClient(t.server));
    await createDeliveryRole(t.server, 'fh-role-other');
    await iam.send(
      new UpdateAssumeRolePolicyCommand({
        RoleName: 'fh-role-other',
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Principal: { Service: 'firehose.amazonaws.com' }, Action: 'sts:AssumeRole', Condition: { ArnEquals: { 'aws:SourceArn': deliveryArn('someone-else') } } }],
        }),
      }),
    );
    await assert.rejects(
      admin.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'trust-mismatch', ExtendedS3DestinationConfiguration: s3Destination('bucket-t', { RoleARN: roleArn('fh-role-other') }) })),
      (e: any) => e.name === 'InvalidArgumentException' && /^Firehose is unable to assume role .*fh-role-other\. Please check the role provided\./.test(e.message),
    );
    // A role that does not trust Firehose at all, and one that does not exist, likewise.
    await assert.rejects(
      admin.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'trust-none', ExtendedS3DestinationConfiguration: s3Destination('bucket-t', { RoleARN: roleArn('role-a') }) })),
      (e: any) => e.name === 'InvalidArgumentException' && /unable to assume role .*does not let firehose\.amazonaws\.com assume it/.test(e.message),
    );
    await assert.rejects(
      admin.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'trust-missing', ExtendedS3DestinationConfiguration: s3Destination('bucket-t', { RoleARN: roleArn('missing') }) })),
      (e: any) => e.name === 'InvalidArgumentException' && /unable to assume role .*does not exist/.test(e.message),
    );
  });
});

describe('IAM', () => {
  test('names are unique regardless of case, as in IAM', async () => {
    await assert.rejects(iam.send(new CreateUserCommand({ UserName: 'TENANT-A' })), { name: 'EntityAlreadyExistsException' });
    const trust = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'pinpoint.amazonaws.com' }, Action: 'sts:AssumeRole' }] });
    await assert.rejects(iam.send(new CreateRoleCommand({ RoleName: 'ROLE-B', AssumeRolePolicyDocument: trust })), { name: 'EntityAlreadyExistsException' });
  });
});
