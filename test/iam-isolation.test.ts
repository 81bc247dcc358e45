// Cross-project isolation through every protocol: a key whose policy covers project A (Pinpoint app
// A and Kinesis stream sa) can read, write, list and configure A and nothing of project B, and a
// mobile key allowed only PutEvents and UpdateEndpoint on A can do exactly that. Pinpoint runs over
// HTTP/1.1 (the SDK's default for restJson1) and HTTP/2; Kinesis over the SDK's default HTTP/2.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  CreateAppCommand,
  DeleteAppCommand,
  DeleteEndpointCommand,
  DeleteUserEndpointsCommand,
  GetAppCommand,
  GetApplicationSettingsCommand,
  GetAppsCommand,
  GetEndpointCommand,
  GetUserEndpointsCommand,
  ListTagsForResourceCommand,
  PinpointClient,
  PutEventsCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateApplicationSettingsCommand,
  UpdateEndpointCommand,
  UpdateEndpointsBatchCommand,
} from '@aws-sdk/client-pinpoint';
import {
  AddTagsToStreamCommand,
  CreateStreamCommand,
  DeleteStreamCommand,
  DescribeStreamCommand,
  DescribeStreamConsumerCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  ListStreamConsumersCommand,
  ListStreamsCommand,
  ListTagsForStreamCommand,
  PutRecordCommand,
  PutRecordsCommand,
  RegisterStreamConsumerCommand,
  SubscribeToShardCommand,
} from '@aws-sdk/client-kinesis';
import { CreateAccessKeyCommand, CreateUserCommand, GetUserCommand, IAMClient, ListUsersCommand, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { NodeHttp2Handler } from '@smithy/node-http-handler';
import { pinpointClient, startTestServer, type TestServer } from './helpers/server.js';
import { kinesisClient } from './helpers/kinesis.js';

const ACCOUNT = '000000000000';
const APPS = `arn:aws:mobiletargeting:us-east-1:${ACCOUNT}:apps`;
const appArn = (id: string) => `${APPS}/${id}`;
const streamArn = (name: string) => `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${name}`;
type Creds = { accessKeyId: string; secretAccessKey: string };

let t: TestServer;
let adminIam: IAMClient;
let adminKinesis: KinesisClient;
let A: string;
let B: string;
let appA: Creds;
let mobile: Creds;
const clients: Array<{ destroy(): void }> = [];
const track = <C extends { destroy(): void }>(c: C): C => (clients.push(c), c);

async function userWithPolicy(name: string, statements: object[]): Promise<Creds> {
  await adminIam.send(new CreateUserCommand({ UserName: name }));
  await adminIam.send(
    new PutUserPolicyCommand({ UserName: name, PolicyName: 'project', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: statements }) }),
  );
  const k = (await adminIam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
  return { accessKeyId: k.AccessKeyId!, secretAccessKey: k.SecretAccessKey! };
}

before(async () => {
  t = await startTestServer();
  adminIam = track(new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 }));
  adminKinesis = track(kinesisClient(t.server));
  A = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'project-a', tags: { project: 'a' } } }))).ApplicationResponse!.Id!;
  B = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'project-b', tags: { project: 'b' } } }))).ApplicationResponse!.Id!;
  await adminKinesis.send(new CreateStreamCommand({ StreamName: 'sa', ShardCount: 2 }));
  await adminKinesis.send(new CreateStreamCommand({ StreamName: 'sb', ShardCount: 2 }));
  appA = await userWithPolicy('appA', [
    { Effect: 'Allow', Action: 'mobiletargeting:*', Resource: `${appArn(A)}*` },
    { Effect: 'Allow', Action: 'kinesis:*', Resource: streamArn('sa') },
  ]);
  mobile = await userWithPolicy('mobile', [
    { Effect: 'Allow', Action: ['mobiletargeting:PutEvents', 'mobiletargeting:UpdateEndpoint'], Resource: `${appArn(A)}*` },
  ]);
});
after(async () => {
  for (const c of clients) c.destroy();
  await t.close();
});

/** Asserts a refusal: the SDK exception name, HTTP status, and a message naming action and resource. */
async function denied(p: Promise<unknown>, name: string, status: number, action: string, resource: string): Promise<void> {
  let err: any;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `${action} on ${resource} should be refused, but succeeded`);
  assert.equal(err.name, name, `${action}: expected ${name}, got ${err.name}: ${err.message}`);
  assert.equal(err.$metadata?.httpStatusCode, status, `${action}: HTTP status`);
  assert.ok(err.message.includes(`perform: ${action} on resource: ${resource} `), `${action}: message should name action and ${resource}: ${err.message}`);
}
const forbidden = (p: Promise<unknown>, action: string, resource: string) => denied(p, 'ForbiddenException', 403, `mobiletargeting:${action}`, resource);
const kinesisDenied = (p: Promise<unknown>, action: string, resource: string) => denied(p, 'AccessDeniedException', 400, `kinesis:${action}`, resource);

const event = (type = 'session.start') => ({ EventType: type, Timestamp: new Date().toISOString() });
const putEvents = (c: PinpointClient, app: string, endpointId: string) =>
  c.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: { [endpointId]: { Endpoint: {}, Events: { [randomUUID()]: event() } } } } }));

for (const http of ['HTTP/1.1', 'HTTP/2'] as const) {
  describe(`Pinpoint over ${http}`, () => {
    let pa: PinpointClient;
    let pm: PinpointClient;
    before(() => {
      const extra = http === 'HTTP/2' ? { requestHandler: new NodeHttp2Handler() } : {};
      pa = track(pinpointClient({ url: t.server.url, admin: appA }, extra));
      pm = track(pinpointClient({ url: t.server.url, admin: mobile }, extra));
    });

    test("appA's key: every operation on app A works", async () => {
      const ep = randomUUID();
      const user = `user-${randomUUID()}`;
      assert.equal((await pa.send(new GetAppCommand({ ApplicationId: A }))).ApplicationResponse!.Id, A);
      await pa.send(new UpdateEndpointCommand({ ApplicationId: A, EndpointId: ep, EndpointRequest: { ChannelType: 'GCM', Address: 'token-a', User: { UserId: user } } }));
      assert.equal((await pa.send(new GetEndpointCommand({ ApplicationId: A, EndpointId: ep }))).EndpointResponse!.Address, 'token-a');
      await pa.send(new UpdateEndpointsBatchCommand({ ApplicationId: A, EndpointBatchRequest: { Item: [{ Id: randomUUID(), ChannelType: 'GCM', Address: 'token-b', User: { UserId: user } }] } }));
      assert.equal((await pa.send(new GetUserEndpointsCommand({ ApplicationId: A, UserId: user }))).EndpointsResponse!.Item!.length, 2);
      const r = await putEvents(pa, A, ep);
      assert.equal(r.EventsResponse!.Results![ep].EndpointItemResponse!.StatusCode, 202);

      await pa.send(new TagResourceCommand({ ResourceArn: appArn(A), TagsModel: { tags: { team: 'mobile' } } }));
      assert.deepEqual((await pa.send(new ListTagsForResourceCommand({ ResourceArn: appArn(A) }))).TagsModel!.tags, { project: 'a', team: 'mobile' });
      await pa.send(new UntagResourceCommand({ ResourceArn: appArn(A), TagKeys: ['team'] }));
      assert.deepEqual((await pa.send(new ListTagsForResourceCommand({ ResourceArn: appArn(A) }))).TagsModel!.tags, { project: 'a' });

      await pa.send(new UpdateApplicationSettingsCommand({ ApplicationId: A, WriteApplicationSettingsRequest: { CloudWatchMetricsEnabled: true } }));
      assert.equal((await pa.send(new GetApplicationSettingsCommand({ ApplicationId: A }))).ApplicationSettingsResource!.ApplicationId, A);

      await pa.send(new DeleteEndpointCommand({ ApplicationId: A, EndpointId: ep }));
      await pa.send(new DeleteUserEndpointsCommand({ ApplicationId: A, UserId: user }));
      const gone = await pa.send(new GetEndpointCommand({ ApplicationId: A, EndpointId: ep })).catch((e) => e);
      assert.equal(gone.name, 'NotFoundException', 'authorized, and the endpoint is gone');
    });

    test("appA's key: every operation on app B is 403 ForbiddenException naming the action and B's ARN, and changes nothing", async () => {
      const ep = randomUUID();
      const bUser = `b-user-${randomUUID()}`;
      const b = appArn(B);
      // An endpoint of B the attacker knows the id of.
      await t.pinpoint.send(new UpdateEndpointCommand({ ApplicationId: B, EndpointId: ep, EndpointRequest: { ChannelType: 'GCM', Address: 'b-token', User: { UserId: bUser } } }));

      await forbidden(pa.send(new GetAppCommand({ ApplicationId: B })), 'GetApp', b);
      await forbidden(pa.send(new UpdateEndpointCommand({ ApplicationId: B, EndpointId: ep, EndpointRequest: { Address: 'hijacked' } })), 'UpdateEndpoint', b);
      await forbidden(pa.send(new UpdateEndpointsBatchCommand({ ApplicationId: B, EndpointBatchRequest: { Item: [{ Id: ep, Address: 'hijacked' }] } })), 'UpdateEndpointsBatch', b);
      await forbidden(pa.send(new GetEndpointCommand({ ApplicationId: B, EndpointId: ep })), 'GetEndpoint', b);
      await forbidden(pa.send(new GetUserEndpointsCommand({ ApplicationId: B, UserId: bUser })), 'GetUserEndpoints', b);
      await forbidden(putEvents(pa, B, ep), 'PutEvents', b);
      await forbidden(pa.send(new TagResourceCommand({ ResourceArn: b, TagsModel: { tags: { project: 'a' } } })), 'TagResource', b);
      await forbidden(pa.send(new ListTagsForResourceCommand({ ResourceArn: b })), 'ListTagsForResource', b);
      await forbidden(pa.send(new UntagResourceCommand({ ResourceArn: b, TagKeys: ['project'] })), 'UntagResource', b);
      await forbidden(pa.send(new GetApplicationSettingsCommand({ ApplicationId: B })), 'GetApplicationSettings', b);
      await forbidden(
        pa.send(new UpdateApplicationSettingsCommand({ ApplicationId: B, WriteApplicationSettingsRequest: { CloudWatchMetricsEnabled: true } })),
        'UpdateApplicationSettings',
        b,
      );
      await forbidden(pa.send(new DeleteEndpointCommand({ ApplicationId: B, EndpointId: ep })), 'DeleteEndpoint', b);
      await forbidden(pa.send(new DeleteUserEndpointsCommand({ ApplicationId: B, UserId: bUser })), 'DeleteUserEndpoints', b);
      await forbidden(pa.send(new DeleteAppCommand({ ApplicationId: B })), 'DeleteApp', b);

      // B as the admin sees it: untouched.
      const endpoint = (await t.pinpoint.send(new GetEndpointCommand({ ApplicationId: B, EndpointId: ep }))).EndpointResponse!;
      assert.equal(endpoint.Address, 'b-token');
      const app = (await t.pinpoint.send(new GetAppCommand({ ApplicationId: B }))).ApplicationResponse!;
      assert.deepEqual(app.tags, { project: 'b' });
      assert.equal((await t.pinpoint.send(new GetUserEndpointsCommand({ ApplicationId: B, UserId: bUser }))).EndpointsResponse!.Item!.length, 1);
    });

    test("appA's key: an app id that does not exist is refused the same way (no existence oracle)", async () => {
      const ghost = randomUUID().replace(/-/g, '');
      await forbidden(pa.send(new GetAppCommand({ ApplicationId: ghost })), 'GetApp', appArn(ghost));
      await forbidden(putEvents(pa, ghost, randomUUID()), 'PutEvents', appArn(ghost));
    });

    test(
      "appA's key: tagging calls on an app ARN that does not exist are refused too (no existence oracle)",
      async () => {
        const ghost = appArn(randomUUID().replace(/-/g, ''));
        await forbidden(pa.send(new ListTagsForResourceCommand({ ResourceArn: ghost })), 'ListTagsForResource', ghost);
      },
    );

    test("appA's key: GetApps and CreateApp act on the apps collection and are refused", async () => {
      await forbidden(pa.send(new GetAppsCommand({})), 'GetApps', APPS);
      await forbidden(pa.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'sneaky' } })), 'CreateApp', APPS);
      const all = (await t.pinpoint.send(new GetAppsCommand({ PageSize: '100' }))).ApplicationsResponse!.Item!;
      assert.ok(!all.some((a) => a.Name === 'sneaky'));
    });

    test("mobile's key: PutEvents and UpdateEndpoint on A, nothing else", async () => {
      const ep = randomUUID();
      await pm.send(new UpdateEndpointCommand({ ApplicationId: A, EndpointId: ep, EndpointRequest: { ChannelType: 'APNS', Address: 'device' } }));
      const r = await putEvents(pm, A, ep);
      assert.equal(r.EventsResponse!.Results![ep].EventsItemResponse![Object.keys(r.EventsResponse!.Results![ep].EventsItemResponse!)[0]].StatusCode, 202);
      // It happened: the admin sees the endpoint.
      assert.equal((await t.pinpoint.send(new GetEndpointCommand({ ApplicationId: A, EndpointId: ep }))).EndpointResponse!.Address, 'device');

      await forbidden(pm.send(new GetEndpointCommand({ ApplicationId: A, EndpointId: ep })), 'GetEndpoint', appArn(A));
      await forbidden(pm.send(new GetAppCommand({ ApplicationId: A })), 'GetApp', appArn(A));
      await forbidden(pm.send(new DeleteEndpointCommand({ ApplicationId: A, EndpointId: ep })), 'DeleteEndpoint', appArn(A));
      await forbidden(pm.send(new UpdateEndpointsBatchCommand({ ApplicationId: A, EndpointBatchRequest: { Item: [{ Id: ep, Address: 'x' }] } })), 'UpdateEndpointsBatch', appArn(A));
      await forbidden(pm.send(new GetAppsCommand({})), 'GetApps', APPS);
      await forbidden(putEvents(pm, B, ep), 'PutEvents', appArn(B));
      await forbidden(pm.send(new UpdateEndpointCommand({ ApplicationId: B, EndpointId: ep, EndpointRequest: { Address: 'x' } })), 'UpdateEndpoint', appArn(B));
      assert.equal((await t.pinpoint.send(new GetEndpointCommand({ ApplicationId: A, EndpointId: ep }))).EndpointResponse!.Address, 'device');
    });
  });
}

describe('Kinesis (HTTP/2)', () => {
  let ka: KinesisClient;
  let km: KinesisClient;
  before(() => {
    ka = track(kinesisClient({ url: t.server.url, admin: appA }));
    km = track(kinesisClient({ url: t.server.url, admin: mobile }));
  });

  test("appA's key: PutRecords, ListShards, GetShardIterator, GetRecords, DescribeStreamSummary on sa work", async () => {
    const put = await ka.send(new PutRecordsCommand({ StreamName: 'sa', Records: [{ PartitionKey: 'k', Data: Buffer.from('a-1') }] }));
    assert.equal(put.FailedRecordCount, 0);
    const shardId = put.Records![0].ShardId!;
    const shards = await ka.send(new ListShardsCommand({ StreamName: 'sa' }));
    assert.equal(shards.Shards!.length, 2);
    const it = (await ka.send(new GetShardIteratorCommand({ StreamName: 'sa', ShardId: shardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
    const got = await ka.send(new GetRecordsCommand({ ShardIterator: it }));
    assert.ok(got.Records!.some((r) => Buffer.from(r.Data!).toString() === 'a-1'));
    const summary = await ka.send(new DescribeStreamSummaryCommand({ StreamName: 'sa' }));
    assert.equal(summary.StreamDescriptionSummary!.StreamARN, streamArn('sa'));
    // By ARN as well as by name.
    await ka.send(new DescribeStreamSummaryCommand({ StreamARN: streamArn('sa') }));
    await ka.send(new PutRecordCommand({ StreamName: 'sa', PartitionKey: 'k', Data: Buffer.from('a-2') }));
    // A ListShards page token of sa carries sa.
    const p1 = await ka.send(new ListShardsCommand({ StreamName: 'sa', MaxResults: 1 }));
    assert.ok(p1.NextToken);
    assert.equal((await ka.send(new ListShardsCommand({ NextToken: p1.NextToken }))).Shards!.length, 1);
  });

  test("appA's key: everything on sb is AccessDeniedException (400) naming the action and sb's ARN", async () => {
    const sb = streamArn('sb');
    const shardId = (await adminKinesis.send(new ListShardsCommand({ StreamName: 'sb' }))).Shards![0].ShardId!;
    await adminKinesis.send(new PutRecordCommand({ StreamName: 'sb', PartitionKey: 'k', Data: Buffer.from('b-secret'), ExplicitHashKey: '0' }));

    await kinesisDenied(ka.send(new PutRecordsCommand({ StreamName: 'sb', Records: [{ PartitionKey: 'k', Data: Buffer.from('x') }] })), 'PutRecords', sb);
    await kinesisDenied(ka.send(new PutRecordCommand({ StreamName: 'sb', PartitionKey: 'k', Data: Buffer.from('x') })), 'PutRecord', sb);
    await kinesisDenied(ka.send(new ListShardsCommand({ StreamName: 'sb' })), 'ListShards', sb);
    await kinesisDenied(ka.send(new GetShardIteratorCommand({ StreamName: 'sb', ShardId: shardId, ShardIteratorType: 'TRIM_HORIZON' })), 'GetShardIterator', sb);
    await kinesisDenied(ka.send(new DescribeStreamSummaryCommand({ StreamName: 'sb' })), 'DescribeStreamSummary', sb);
    await kinesisDenied(ka.send(new DescribeStreamSummaryCommand({ StreamARN: sb })), 'DescribeStreamSummary', sb);
    await kinesisDenied(ka.send(new DescribeStreamCommand({ StreamName: 'sb' })), 'DescribeStream', sb);
    await kinesisDenied(ka.send(new ListTagsForStreamCommand({ StreamName: 'sb' })), 'ListTagsForStream', sb);
    await kinesisDenied(ka.send(new AddTagsToStreamCommand({ StreamName: 'sb', Tags: { owner: 'a' } })), 'AddTagsToStream', sb);
    await kinesisDenied(ka.send(new DeleteStreamCommand({ StreamName: 'sb' })), 'DeleteStream', sb);
    await kinesisDenied(ka.send(new RegisterStreamConsumerCommand({ StreamARN: sb, ConsumerName: 'a-reader' })), 'RegisterStreamConsumer', sb);
    await kinesisDenied(ka.send(new ListStreamConsumersCommand({ StreamARN: sb })), 'ListStreamConsumers', sb);

    // An iterator the admin obtained for sb does not let appA read sb.
    const adminIt = (await adminKinesis.send(new GetShardIteratorCommand({ StreamName: 'sb', ShardId: shardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
    await kinesisDenied(ka.send(new GetRecordsCommand({ ShardIterator: adminIt })), 'GetRecords', sb);
    // Nor does a ListShards page token of sb.
    const page = await adminKinesis.send(new ListShardsCommand({ StreamName: 'sb', MaxResults: 1 }));
    assert.ok(page.NextToken, 'sb has a second page');
    await kinesisDenied(ka.send(new ListShardsCommand({ NextToken: page.NextToken })), 'ListShards', sb);

    // Nor an enhanced fan-out consumer of sb.
    const consumer = (await adminKinesis.send(new RegisterStreamConsumerCommand({ StreamARN: sb, ConsumerName: 'b-reader' }))).Consumer!;
    await kinesisDenied(ka.send(new DescribeStreamConsumerCommand({ ConsumerARN: consumer.ConsumerARN })), 'DescribeStreamConsumer', consumer.ConsumerARN!);
    await kinesisDenied(
      ka.send(new SubscribeToShardCommand({ ConsumerARN: consumer.ConsumerARN, ShardId: shardId, StartingPosition: { Type: 'TRIM_HORIZON' } })),
      'SubscribeToShard',
      consumer.ConsumerARN!,
    );

    // sb as the admin sees it: still there, untagged, holding only the admin's record.
    const desc = (await adminKinesis.send(new DescribeStreamSummaryCommand({ StreamName: 'sb' }))).StreamDescriptionSummary!;
    assert.equal(desc.StreamStatus, 'ACTIVE');
    assert.deepEqual((await adminKinesis.send(new ListTagsForStreamCommand({ StreamName: 'sb' }))).Tags, []);
    const consumers = (await adminKinesis.send(new ListStreamConsumersCommand({ StreamARN: sb }))).Consumers!.map((c) => c.ConsumerName);
    assert.deepEqual(consumers, ['b-reader']);
    const records = (await adminKinesis.send(new GetRecordsCommand({ ShardIterator: adminIt }))).Records!.map((r) => Buffer.from(r.Data!).toString());
    assert.deepEqual(records, ['b-secret']);
  });

  test("appA's key: ListStreams and CreateStream are refused (they act on every stream / a new one)", async () => {
    await kinesisDenied(ka.send(new ListStreamsCommand({})), 'ListStreams', streamArn('*'));
    await kinesisDenied(ka.send(new CreateStreamCommand({ StreamName: 'sc', ShardCount: 1 })), 'CreateStream', streamArn('sc'));
    assert.ok(!(await adminKinesis.send(new ListStreamsCommand({}))).StreamNames!.includes('sc'));
  });

  test("mobile's key: every Kinesis call is refused", async () => {
    await kinesisDenied(km.send(new PutRecordsCommand({ StreamName: 'sa', Records: [{ PartitionKey: 'k', Data: Buffer.from('x') }] })), 'PutRecords', streamArn('sa'));
    await kinesisDenied(km.send(new DescribeStreamSummaryCommand({ StreamName: 'sa' })), 'DescribeStreamSummary', streamArn('sa'));
    await kinesisDenied(km.send(new ListStreamsCommand({})), 'ListStreams', streamArn('*'));
    const it = (await adminKinesis.send(new GetShardIteratorCommand({ StreamName: 'sa', ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
    await kinesisDenied(km.send(new GetRecordsCommand({ ShardIterator: it })), 'GetRecords', streamArn('sa'));
  });

  test(
    'a Deny on a stream cannot be sidestepped by spelling its ARN differently (empty region, other partition)',
    async () => {
      const fenced = await userWithPolicy('fenced', [
        { Effect: 'Allow', Action: 'kinesis:*', Resource: '*' },
        { Effect: 'Deny', Action: 'kinesis:*', Resource: streamArn('sb') },
      ]);
      const kf = track(kinesisClient({ url: t.server.url, admin: fenced }));
      await kinesisDenied(kf.send(new DescribeStreamSummaryCommand({ StreamName: 'sb' })), 'DescribeStreamSummary', streamArn('sb'));
      const refused = async (p: Promise<unknown>, what: string) => {
        const e = await p.then(
          () => undefined,
          (err) => err,
        );
        assert.ok(e, `${what} reached sb despite the Deny`);
        assert.ok(['AccessDeniedException', 'ResourceNotFoundException', 'ValidationException'].includes(e.name), `${what}: ${e.name}: ${e.message}`);
      };
      const consumer = (await adminKinesis.send(new RegisterStreamConsumerCommand({ StreamARN: streamArn('sb'), ConsumerName: 'fenced-reader' }))).Consumer!;
      for (const odd of [`arn:aws:kinesis::${ACCOUNT}:stream/sb`, `arn:aws-cn:kinesis:us-east-1:${ACCOUNT}:stream/sb`]) {
        await refused(kf.send(new DescribeStreamSummaryCommand({ StreamARN: odd })), `DescribeStreamSummary with StreamARN ${odd}`);
      }
      const oddConsumer = consumer.ConsumerARN!.replace(':us-east-1:', '::');
      await refused(kf.send(new DescribeStreamConsumerCommand({ ConsumerARN: oddConsumer })), `DescribeStreamConsumer with ConsumerARN ${oddConsumer}`);
    },
  );
});

describe('IAM', () => {
  test("appA's and mobile's keys are refused IAM calls", async () => {
    for (const creds of [appA, mobile]) {
      const c = track(new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: creds, maxAttempts: 1 }));
      for (const [p, action] of [
        [c.send(new ListUsersCommand({})), 'iam:ListUsers'],
        [c.send(new GetUserCommand({ UserName: 'admin' })), 'iam:GetUser'],
        [c.send(new CreateUserCommand({ UserName: 'intruder' })), 'iam:CreateUser'],
        [c.send(new CreateAccessKeyCommand({ UserName: 'admin' })), 'iam:CreateAccessKey'],
        [
          c.send(new PutUserPolicyCommand({ UserName: 'appA', PolicyName: 'more', PolicyDocument: JSON.stringify({ Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] }) })),
          'iam:PutUserPolicy',
        ],
      ] as const) {
        let err: any;
        await p.catch((e) => (err = e));
        assert.ok(err, `${action} should be refused`);
        assert.equal(err.name, 'AccessDenied', `${action}: ${err.name} ${err.message}`);
        assert.equal(err.$metadata.httpStatusCode, 403);
        assert.match(err.message, new RegExp(`${action} on resource: arn:aws:iam::${ACCOUNT}:user/`));
      }
    }
    await assert.rejects(adminIam.send(new GetUserCommand({ UserName: 'intruder' })), { name: 'NoSuchEntityException' });
  });
});
