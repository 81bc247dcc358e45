// The isolation suite (issue 12): tenant A, with every right on its own resources (Pinpoint app
// A, Kinesis stream sa and its consumers, delivery streams a-*, its own IAM user and roles),
// tries every operation of every protocol against tenant B's resources, and every one is refused
// with the protocol's AWS error naming the action and B's ARN; afterwards B is as it was.
//
// What "every" means is checked, not hoped: the server lists the operations it answers
// (Pinstream.operations: Pinpoint routes, Kinesis/Firehose targets, IAM/STS actions); each must
// have a refusal case here or be listed as not resource-scoped (with the reason). An operation
// added later without a case fails the suite. The AWS models (the tables generated from them in
// src/models/generated) drive the check that every implemented AWS operation is
// covered under its AWS name and HTTP binding, and that the routes that match no AWS operation
// are Pinstream's own extensions; the web console's calls (its static scripts) must all be
// covered operations too.
//
// Protocols: Pinpoint restJson1 over HTTP/1.1 and HTTP/2 (official SDK) plus signed requests for
// the extension routes; Kinesis awsJson1.1 over the SDK's HTTP/2 and CBOR 1.1 (as the Java SDK
// and KCL send it); Firehose awsJson1.1; IAM/STS Query; Cognito Identity awsJson1.1; the Glue
// Data Catalog awsJson1.1 (A owns database a-db, B db-b). Also audited: ARNs of other accounts,
// regions and partitions, path tricks, case variants, and no existence oracle.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import * as PP from '@aws-sdk/client-pinpoint';
import * as KN from '@aws-sdk/client-kinesis';
import * as FH from '@aws-sdk/client-firehose';
import * as IAM from '@aws-sdk/client-iam';
import * as STS from '@aws-sdk/client-sts';
import * as CI from '@aws-sdk/client-cognito-identity';
import * as GL from '@aws-sdk/client-glue';
import { STSClient, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { NodeHttp2Handler } from '@smithy/node-http-handler';
import { pinpointClient, startTestServer, type TestServer } from './helpers/server.js';
import { kinesisClient } from './helpers/kinesis.js';
import { createDeliveryRole, firehoseClient, s3Destination } from './helpers/firehose.js';
import { createPinpointRole } from './helpers/eventstream.js';
import { signedFetch } from './helpers/signed.js';
import { cborCall } from './helpers/cbor.js';
import { model as pinpointModel } from '../src/models/generated/pinpoint.js';
import { model as kinesisModel } from '../src/models/generated/kinesis.js';
import { model as firehoseModel } from '../src/models/generated/firehose.js';
import { model as iamModel } from '../src/models/generated/iam.js';
import { model as stsModel } from '../src/models/generated/sts.js';
import { model as cognitoModel } from '../src/models/generated/cognito-identity.js';
import { model as glueModel } from '../src/models/generated/glue.js';

const ACCOUNT = '000000000000';
const REGION = 'us-east-1';
const APPS = `arn:aws:mobiletargeting:${REGION}:${ACCOUNT}:apps`;
const appArn = (id: string) => `${APPS}/${id}`;
const streamArn = (name: string) => `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/${name}`;
const deliveryArn = (name: string) => `arn:aws:firehose:${REGION}:${ACCOUNT}:deliverystream/${name}`;
const userArn = (name: string) => `arn:aws:iam::${ACCOUNT}:user/${name}`;
const roleArn = (name: string) => `arn:aws:iam::${ACCOUNT}:role/${name}`;
const groupArn = (name: string) => `arn:aws:iam::${ACCOUNT}:group/${name}`;
const policyArn = (name: string) => `arn:aws:iam::${ACCOUNT}:policy/${name}`;
const POOLS = `arn:aws:cognito-identity:${REGION}:${ACCOUNT}:identitypool`;
const poolArn = (id: string) => `${POOLS}/${id}`;
const glueArn = (r: string) => `arn:aws:glue:${REGION}:${ACCOUNT}:${r}`;
type Creds = { accessKeyId: string; secretAccessKey: string };
type Json = Record<string, any>;

const CONSOLE_DIR = fileURLToPath(new URL('../../src/console/static/', import.meta.url));

// --- the world: B's resources, and A's key --------------------------------------------------

let t: TestServer;
let admin: { iam: IAM.IAMClient; kinesis: KN.KinesisClient; firehose: FH.FirehoseClient };
let A: string;
let B: string;
let keyA: Creds;
/** B's IAM user's key (B's resource A must not touch). */
let keyB: Creds;
const b = {
  endpoint: 'b-endpoint',
  user: 'b-user',
  funnel: '',
  consumerArn: '',
  shardId: 'shardId-000000000000',
  iterator: '',
  listShardsToken: '',
  pool: '',
  identity: '',
  importJob: '',
  exportJob: '',
};
/** Tenant A's own identity pool (A may do everything on it). */
let poolOfA = '';
const clients: Array<{ destroy(): void }> = [];
const track = <C extends { destroy(): void }>(c: C): C => (clients.push(c), c);

async function iamUser(name: string, statements: object[]): Promise<Creds> {
  await admin.iam.send(new IAM.CreateUserCommand({ UserName: name }));
  await admin.iam.send(new IAM.PutUserPolicyCommand({ UserName: name, PolicyName: 'tenant', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: statements }) }));
  const k = (await admin.iam.send(new IAM.CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
  return { accessKeyId: k.AccessKeyId!, secretAccessKey: k.SecretAccessKey! };
}

before(async () => {
  t = await startTestServer();
  admin = {
    iam: track(new IAM.IAMClient({ endpoint: t.server.url, region: REGION, credentials: t.server.admin, maxAttempts: 1 })),
    kinesis: track(kinesisClient(t.server)),
    firehose: track(firehoseClient(t.server)),
  };
  A = (await t.pinpoint.send(new PP.CreateAppCommand({ CreateApplicationRequest: { Name: 'tenant-a', tags: { tenant: 'a' } } }))).ApplicationResponse!.Id!;
  B = (await t.pinpoint.send(new PP.CreateAppCommand({ CreateApplicationRequest: { Name: 'tenant-b', tags: { tenant: 'b' } } }))).ApplicationResponse!.Id!;

  // B's Pinpoint data: an endpoint of a user, an event, a saved funnel, an event stream to sb.
  await t.pinpoint.send(new PP.UpdateEndpointCommand({ ApplicationId: B, EndpointId: b.endpoint, EndpointRequest: { ChannelType: 'GCM', Address: 'b-token', User: { UserId: b.user } } }));
  await t.pinpoint.send(
    new PP.PutEventsCommand({ ApplicationId: B, EventsRequest: { BatchItem: { [b.endpoint]: { Endpoint: {}, Events: { e1: { EventType: 'b.event', Timestamp: new Date().toISOString() } } } } } }),
  );
  const funnel = await signedFetch(t.server.url, {
    method: 'POST',
    path: `/v1/apps/${B}/funnels`,
    body: JSON.stringify({ name: 'b-funnel', steps: [{ eventType: 'a' }, { eventType: 'b' }] }),
    credentials: t.server.admin,
  });
  assert.equal(funnel.status, 201, funnel.text);
  b.funnel = funnel.json.id;

  for (const s of ['sa', 'sb']) await admin.kinesis.send(new KN.CreateStreamCommand({ StreamName: s, ShardCount: 2 }));
  await admin.kinesis.send(new KN.PutRecordCommand({ StreamName: 'sb', PartitionKey: 'k', Data: Buffer.from('b-secret'), ExplicitHashKey: '0' }));
  await admin.kinesis.send(new KN.AddTagsToStreamCommand({ StreamName: 'sb', Tags: { tenant: 'b' } }));
  b.consumerArn = (await admin.kinesis.send(new KN.RegisterStreamConsumerCommand({ StreamARN: streamArn('sb'), ConsumerName: 'b-reader' }))).Consumer!.ConsumerARN!;
  b.iterator = (await admin.kinesis.send(new KN.GetShardIteratorCommand({ StreamName: 'sb', ShardId: b.shardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
  b.listShardsToken = (await admin.kinesis.send(new KN.ListShardsCommand({ StreamName: 'sb', MaxResults: 1 }))).NextToken!;

  await createPinpointRole(admin.iam, 'role-b', { resource: streamArn('sb') });
  await t.pinpoint.send(new PP.PutEventStreamCommand({ ApplicationId: B, WriteEventStream: { DestinationStreamArn: streamArn('sb'), RoleArn: roleArn('role-b') } }));

  // B's import and export jobs (they fail for want of objects and rights: only their ids matter here).
  b.importJob = (await t.pinpoint.send(new PP.CreateImportJobCommand({ ApplicationId: B, ImportJobRequest: { S3Url: 's3://bucket-b/in/', Format: 'JSON', RoleArn: roleArn('role-b') } }))).ImportJobResponse!.Id!;
  b.exportJob = (await t.pinpoint.send(new PP.CreateExportJobCommand({ ApplicationId: B, ExportJobRequest: { S3UrlPrefix: 's3://bucket-b/out/', RoleArn: roleArn('role-b') } }))).ExportJobResponse!.Id!;

  await createDeliveryRole(t.server, 'fh-role-b', ['arn:aws:s3:::bucket-b/*']);
  await admin.firehose.send(
    new FH.CreateDeliveryStreamCommand({ DeliveryStreamName: 'b-stream', ExtendedS3DestinationConfiguration: s3Destination('bucket-b', { RoleARN: roleArn('fh-role-b') }), Tags: [{ Key: 'tenant', Value: 'b' }] }),
  );

  // B's identity pool, its guest role and an identity in it.
  const ci = track(new CI.CognitoIdentityClient({ endpoint: t.server.url, region: REGION, credentials: t.server.admin, maxAttempts: 1 }));
  b.pool = (await ci.send(new CI.CreateIdentityPoolCommand({ IdentityPoolName: 'b-pool', AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;
  await ci.send(new CI.SetIdentityPoolRolesCommand({ IdentityPoolId: b.pool, Roles: { unauthenticated: roleArn('role-b') } }));
  b.identity = (await ci.send(new CI.GetIdCommand({ IdentityPoolId: b.pool }))).IdentityId!;
  poolOfA = (await ci.send(new CI.CreateIdentityPoolCommand({ IdentityPoolName: 'a-pool', AllowUnauthenticatedIdentities: true }))).IdentityPoolId!;

  // B's catalog database, a table and a partition; A's own database.
  const gl = track(new GL.GlueClient({ endpoint: t.server.url, region: REGION, credentials: t.server.admin, maxAttempts: 1 }));
  await gl.send(new GL.CreateDatabaseCommand({ DatabaseInput: { Name: 'db-b', Description: 'b' } }));
  await gl.send(new GL.CreateTableCommand({ DatabaseName: 'db-b', TableInput: { Name: 'events', PartitionKeys: [{ Name: 'year', Type: 'string' }], StorageDescriptor: { Location: 's3://bucket-b/events/' } } }));
  await gl.send(new GL.CreatePartitionCommand({ DatabaseName: 'db-b', TableName: 'events', PartitionInput: { Values: ['2025'] } }));
  await gl.send(new GL.CreateDatabaseCommand({ DatabaseInput: { Name: 'a-db' } }));

  keyB = await iamUser('tenant-b', [{ Effect: 'Allow', Action: 'mobiletargeting:*', Resource: [appArn(B), `${appArn(B)}/*`] }]);
  keyA = await iamUser('tenant-a', [
    { Effect: 'Allow', Action: 'mobiletargeting:*', Resource: [appArn(A), `${appArn(A)}/*`] },
    { Effect: 'Allow', Action: 'kinesis:*', Resource: [streamArn('sa'), `${streamArn('sa')}/consumer/*`] },
    { Effect: 'Allow', Action: 'firehose:*', Resource: deliveryArn('a-*') },
    { Effect: 'Allow', Action: 'iam:*', Resource: [userArn('tenant-a'), roleArn('role-a*')] },
    { Effect: 'Allow', Action: 'cognito-identity:*', Resource: poolArn(poolOfA) },
    { Effect: 'Allow', Action: 'glue:*', Resource: [glueArn('catalog'), glueArn('database/a-*'), glueArn('table/a-*/*')] },
    { Effect: 'Allow', Action: 'athena:StartQueryExecution', Resource: '*' },
  ]);
});
after(async () => {
  for (const c of clients) c.destroy();
  await t.close();
});

// --- refusal assertions ------------------------------------------------------------------------

/** Runs `p` and returns the error it rejects with (fails when it succeeds). */
async function rejection(p: Promise<unknown>, what: string): Promise<any> {
  const err = await p.then(
    () => undefined,
    (e) => e,
  );
  assert.ok(err, `${what}: tenant A was not refused`);
  return err;
}
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
/** The authorizer's message: names the action and the resource, nothing of the resource's content. */
const namesActionAndResource = (message: string, action: string, resource: string) =>
  assert.match(message, new RegExp(`is not authorized to perform: ${escape(action)} on resource: ${escape(resource)} `), message);

async function sdkRefused(p: Promise<unknown>, name: string, status: number, action: string, resource: string): Promise<void> {
  const err = await rejection(p, action);
  assert.equal(err.name, name, `${action}: ${err.name}: ${err.message}`);
  assert.equal(err.$metadata?.httpStatusCode, status, `${action}: HTTP status`);
  namesActionAndResource(err.message, action, resource);
}

// --- Pinpoint ------------------------------------------------------------------------------------

interface RawCall {
  method: string;
  path: string;
  query?: Record<string, string>;
  body?: unknown;
}

interface PinpointCase {
  /** The AWS operation this route is (undefined for Pinstream's extension routes). */
  op?: string;
  action: string;
  resource: string;
  /** An SDK call (run over HTTP/1.1 and HTTP/2)… */
  sdk?: (c: PP.PinpointClient) => Promise<unknown>;
  /** …or a signed request (extension routes the SDK does not know). */
  raw?: () => RawCall | RawCall[];
}

const day = new Date().toISOString().slice(0, 10);
const pinpointCases = (): Record<string, PinpointCase> => {
  const at = (action: string, resource = appArn(B)) => ({ action: `mobiletargeting:${action}`, resource });
  return {
    'POST /v1/apps': { op: 'CreateApp', ...at('CreateApp', APPS), sdk: (c) => c.send(new PP.CreateAppCommand({ CreateApplicationRequest: { Name: 'tenant-b' } })) },
    'GET /v1/apps': { op: 'GetApps', ...at('GetApps', APPS), sdk: (c) => c.send(new PP.GetAppsCommand({})) },
    'GET /v1/apps/{application-id}': { op: 'GetApp', ...at('GetApp'), sdk: (c) => c.send(new PP.GetAppCommand({ ApplicationId: B })) },
    'DELETE /v1/apps/{application-id}': { op: 'DeleteApp', ...at('DeleteApp'), sdk: (c) => c.send(new PP.DeleteAppCommand({ ApplicationId: B })) },
    'GET /v1/apps/{application-id}/settings': { op: 'GetApplicationSettings', ...at('GetApplicationSettings'), sdk: (c) => c.send(new PP.GetApplicationSettingsCommand({ ApplicationId: B })) },
    'PUT /v1/apps/{application-id}/settings': {
      op: 'UpdateApplicationSettings',
      ...at('UpdateApplicationSettings'),
      sdk: (c) => c.send(new PP.UpdateApplicationSettingsCommand({ ApplicationId: B, WriteApplicationSettingsRequest: { CloudWatchMetricsEnabled: true } })),
    },
    'PUT /v1/apps/{application-id}/endpoints/{endpoint-id}': {
      op: 'UpdateEndpoint',
      ...at('UpdateEndpoint'),
      sdk: (c) => c.send(new PP.UpdateEndpointCommand({ ApplicationId: B, EndpointId: b.endpoint, EndpointRequest: { Address: 'hijacked' } })),
    },
    'PUT /v1/apps/{application-id}/endpoints': {
      op: 'UpdateEndpointsBatch',
      ...at('UpdateEndpointsBatch'),
      sdk: (c) => c.send(new PP.UpdateEndpointsBatchCommand({ ApplicationId: B, EndpointBatchRequest: { Item: [{ Id: b.endpoint, Address: 'hijacked' }] } })),
    },
    'GET /v1/apps/{application-id}/endpoints/{endpoint-id}': { op: 'GetEndpoint', ...at('GetEndpoint'), sdk: (c) => c.send(new PP.GetEndpointCommand({ ApplicationId: B, EndpointId: b.endpoint })) },
    'DELETE /v1/apps/{application-id}/endpoints/{endpoint-id}': { op: 'DeleteEndpoint', ...at('DeleteEndpoint'), sdk: (c) => c.send(new PP.DeleteEndpointCommand({ ApplicationId: B, EndpointId: b.endpoint })) },
    'GET /v1/apps/{application-id}/users/{user-id}': { op: 'GetUserEndpoints', ...at('GetUserEndpoints'), sdk: (c) => c.send(new PP.GetUserEndpointsCommand({ ApplicationId: B, UserId: b.user })) },
    'DELETE /v1/apps/{application-id}/users/{user-id}': { op: 'DeleteUserEndpoints', ...at('DeleteUserEndpoints'), sdk: (c) => c.send(new PP.DeleteUserEndpointsCommand({ ApplicationId: B, UserId: b.user })) },
    'POST /v1/apps/{application-id}/events': {
      op: 'PutEvents',
      ...at('PutEvents'),
      sdk: (c) =>
        c.send(new PP.PutEventsCommand({ ApplicationId: B, EventsRequest: { BatchItem: { [b.endpoint]: { Endpoint: {}, Events: { [randomUUID()]: { EventType: 'forged', Timestamp: new Date().toISOString() } } } } } })),
    },
    'POST /v1/apps/{application-id}/eventstream': {
      op: 'PutEventStream',
      ...at('PutEventStream'),
      sdk: (c) => c.send(new PP.PutEventStreamCommand({ ApplicationId: B, WriteEventStream: { DestinationStreamArn: streamArn('sa'), RoleArn: roleArn('role-b') } })),
    },
    'GET /v1/apps/{application-id}/eventstream': { op: 'GetEventStream', ...at('GetEventStream'), sdk: (c) => c.send(new PP.GetEventStreamCommand({ ApplicationId: B })) },
    'DELETE /v1/apps/{application-id}/eventstream': { op: 'DeleteEventStream', ...at('DeleteEventStream'), sdk: (c) => c.send(new PP.DeleteEventStreamCommand({ ApplicationId: B })) },
    'GET /v1/tags/{resource-arn+}': { op: 'ListTagsForResource', ...at('ListTagsForResource'), sdk: (c) => c.send(new PP.ListTagsForResourceCommand({ ResourceArn: appArn(B) })) },
    'POST /v1/tags/{resource-arn+}': { op: 'TagResource', ...at('TagResource'), sdk: (c) => c.send(new PP.TagResourceCommand({ ResourceArn: appArn(B), TagsModel: { tags: { tenant: 'a' } } })) },
    'DELETE /v1/tags/{resource-arn+}': { op: 'UntagResource', ...at('UntagResource'), sdk: (c) => c.send(new PP.UntagResourceCommand({ ResourceArn: appArn(B), TagKeys: ['tenant'] })) },
    'GET /v1/apps/{application-id}/kpis/daterange/{kpi-name}': {
      op: 'GetApplicationDateRangeKpi',
      ...at('GetApplicationDateRangeKpi', `${appArn(B)}/kpis/daterange/unique-endpoints`),
      sdk: (c) => c.send(new PP.GetApplicationDateRangeKpiCommand({ ApplicationId: B, KpiName: 'unique-endpoints' })),
    },
    'GET /v1/apps/{application-id}/campaigns/{campaign-id}/kpis/daterange/{kpi-name}': {
      op: 'GetCampaignDateRangeKpi',
      ...at('GetCampaignDateRangeKpi', `${appArn(B)}/campaigns/c1/kpis/daterange/unique-deliveries`),
      sdk: (c) => c.send(new PP.GetCampaignDateRangeKpiCommand({ ApplicationId: B, CampaignId: 'c1', KpiName: 'unique-deliveries' })),
    },
    'GET /v1/apps/{application-id}/journeys/{journey-id}/kpis/daterange/{kpi-name}': {
      op: 'GetJourneyDateRangeKpi',
      ...at('GetJourneyDateRangeKpi', `${appArn(B)}/journeys/j1/kpis/daterange/journey-runs`),
      sdk: (c) => c.send(new PP.GetJourneyDateRangeKpiCommand({ ApplicationId: B, JourneyId: 'j1', KpiName: 'journey-runs' })),
    },
    'POST /v1/apps/{application-id}/jobs/import': {
      op: 'CreateImportJob',
      ...at('CreateImportJob'),
      sdk: (c) => c.send(new PP.CreateImportJobCommand({ ApplicationId: B, ImportJobRequest: { S3Url: 's3://bucket-a/x/', Format: 'JSON', RoleArn: roleArn('role-b') } })),
    },
    'GET /v1/apps/{application-id}/jobs/import': { op: 'GetImportJobs', ...at('GetImportJobs'), sdk: (c) => c.send(new PP.GetImportJobsCommand({ ApplicationId: B })) },
    'GET /v1/apps/{application-id}/jobs/import/{job-id}': { op: 'GetImportJob', ...at('GetImportJob'), sdk: (c) => c.send(new PP.GetImportJobCommand({ ApplicationId: B, JobId: b.importJob })) },
    'POST /v1/apps/{application-id}/jobs/export': {
      op: 'CreateExportJob',
      ...at('CreateExportJob'),
      sdk: (c) => c.send(new PP.CreateExportJobCommand({ ApplicationId: B, ExportJobRequest: { S3UrlPrefix: 's3://bucket-a/stolen/', RoleArn: roleArn('role-b') } })),
    },
    'GET /v1/apps/{application-id}/jobs/export': { op: 'GetExportJobs', ...at('GetExportJobs'), sdk: (c) => c.send(new PP.GetExportJobsCommand({ ApplicationId: B })) },
    'GET /v1/apps/{application-id}/jobs/export/{job-id}': { op: 'GetExportJob', ...at('GetExportJob'), sdk: (c) => c.send(new PP.GetExportJobCommand({ ApplicationId: B, JobId: b.exportJob })) },
    // Pinstream extensions (README: "Replay and automatic roles", console dashboards and funnels).
    'POST /v1/apps/{application-id}/eventstream/replay': { ...at('PutEventStream'), raw: () => ({ method: 'POST', path: `/v1/apps/${B}/eventstream/replay`, body: { StartTime: new Date(Date.now() - 60_000).toISOString() } }) },
    'POST /v1/apps/{application-id}/eventstream/role': { ...at('PutEventStream'), raw: () => ({ method: 'POST', path: `/v1/apps/${B}/eventstream/role`, body: { DestinationStreamArn: streamArn('sb') } }) },
    'GET /v1/apps/{application-id}/dashboards/{name}': {
      ...at('GetApplicationDateRangeKpi'),
      raw: () => [
        { method: 'GET', path: `/v1/apps/${B}/dashboards/overview`, query: { start: day, end: day } },
        { method: 'GET', path: `/v1/apps/${B}/dashboards/events.csv` },
      ],
    },
    'GET /v1/apps/{application-id}/analytics/filters': { ...at('GetApplicationDateRangeKpi'), raw: () => ({ method: 'GET', path: `/v1/apps/${B}/analytics/filters` }) },
    'GET /v1/apps/{application-id}/funnels': { ...at('GetApplicationDateRangeKpi'), raw: () => ({ method: 'GET', path: `/v1/apps/${B}/funnels` }) },
    'POST /v1/apps/{application-id}/funnels': {
      ...at('UpdateApplicationSettings'),
      raw: () => ({ method: 'POST', path: `/v1/apps/${B}/funnels`, body: { id: b.funnel, name: 'overwritten', steps: [{ eventType: 'x' }, { eventType: 'y' }] } }),
    },
    'DELETE /v1/apps/{application-id}/funnels/{funnel-id}': { ...at('UpdateApplicationSettings'), raw: () => ({ method: 'DELETE', path: `/v1/apps/${B}/funnels/${b.funnel}` }) },
    'POST /v1/apps/{application-id}/guest-access': { ...at('GetApp'), raw: () => ({ method: 'POST', path: `/v1/apps/${B}/guest-access`, body: {} }) },
    'POST /v1/apps/{application-id}/history-imports': { ...at('CreateImportJob'), raw: () => ({ method: 'POST', path: `/v1/apps/${B}/history-imports`, body: { Source: 's3://tenant-b-archive/x/' } }) },
    'GET /v1/apps/{application-id}/history-imports': { ...at('GetImportJobs'), raw: () => ({ method: 'GET', path: `/v1/apps/${B}/history-imports` }) },
    'GET /v1/apps/{application-id}/history-imports/{job-id}': { ...at('GetImportJob'), raw: () => ({ method: 'GET', path: `/v1/apps/${B}/history-imports/0123456789abcdef0123456789abcdef` }) },
    // Athena-style SQL: A may run queries, but reading B's catalog table needs glue:GetTable on B's database.
    'POST /v1/query': {
      action: 'glue:GetTable',
      resource: glueArn('database/db-b'),
      raw: () => [
        { method: 'POST', path: '/v1/query', body: { QueryString: 'SELECT * FROM "db-b"."events"' } },
        { method: 'POST', path: '/v1/query', body: { QueryString: 'SELECT count(*) FROM events', QueryExecutionContext: { Database: 'db-b' } } },
      ],
    },
  };
};

/**
 * Routes that name no single resource, each with why and the test that covers it: a listing that
 * shows the caller only what its policies allow.
 */
const PINPOINT_NOT_RESOURCE_SCOPED: Record<string, string> = {
  'GET /v1/eventstreams/status': 'lists the delivery health of every event stream the caller may GetEventStream; tested below to hold nothing of B',
};

async function rawRefused(c: PinpointCase, creds: Creds): Promise<void> {
  for (const r of [c.raw!()].flat()) {
    const res = await signedFetch(t.server.url, { method: r.method, path: r.path, query: r.query, body: r.body === undefined ? undefined : JSON.stringify(r.body), credentials: creds });
    assert.equal(res.status, 403, `${r.method} ${r.path}: ${res.text}`);
    assert.equal(res.headers.get('x-amzn-errortype'), 'ForbiddenException');
    namesActionAndResource(res.json.Message, c.action, c.resource);
  }
}

describe('Pinpoint (restJson1)', () => {
  for (const http of ['HTTP/1.1', 'HTTP/2'] as const) {
    test(`every route, over ${http}: tenant A on B's app is ForbiddenException naming the action and B's ARN`, async () => {
      const pa = track(pinpointClient({ url: t.server.url, admin: keyA }, http === 'HTTP/2' ? { requestHandler: new NodeHttp2Handler() } : {}));
      for (const [route, c] of Object.entries(pinpointCases())) {
        if (c.sdk) await sdkRefused(c.sdk(pa), 'ForbiddenException', 403, c.action, c.resource);
        else await rawRefused(c, keyA);
        assert.ok(route);
      }
    });
  }

  test('GET /v1/eventstreams/status lists only what the caller may read', async () => {
    const status = async (creds: Creds) => {
      const res = await signedFetch(t.server.url, { method: 'GET', path: '/v1/eventstreams/status', credentials: creds });
      assert.equal(res.status, 200, res.text);
      return (res.json.Item as Array<{ ApplicationId: string }>).map((i) => i.ApplicationId);
    };
    assert.deepEqual(await status(keyA), [], "A sees no event stream of B's");
    assert.deepEqual(await status(keyB), [B], 'B sees its own');
  });

  test('no existence oracle: an app id that does not exist is refused exactly like B', async () => {
    const ghost = randomUUID().replace(/-/g, '');
    const pa = track(pinpointClient({ url: t.server.url, admin: keyA }));
    await sdkRefused(pa.send(new PP.GetAppCommand({ ApplicationId: ghost })), 'ForbiddenException', 403, 'mobiletargeting:GetApp', appArn(ghost));
    await sdkRefused(pa.send(new PP.GetEventStreamCommand({ ApplicationId: ghost })), 'ForbiddenException', 403, 'mobiletargeting:GetEventStream', appArn(ghost));
  });
});

// --- Kinesis ------------------------------------------------------------------------------------

interface JsonCase {
  op: string;
  input: () => Json;
  resource: string;
}

const kinesisCases = (): JsonCase[] => {
  const sb = streamArn('sb');
  const byName = (op: string, extra: Json = {}): JsonCase[] => [
    { op, input: () => ({ StreamName: 'sb', ...extra }), resource: sb },
    { op, input: () => ({ StreamARN: sb, ...extra }), resource: sb },
  ];
  return [
    { op: 'CreateStream', input: () => ({ StreamName: 'sb', ShardCount: 1 }), resource: sb },
    { op: 'ListStreams', input: () => ({}), resource: streamArn('*') },
    ...byName('DeleteStream'),
    ...byName('DescribeStream'),
    ...byName('DescribeStreamSummary'),
    ...byName('ListShards'),
    { op: 'ListShards', input: () => ({ NextToken: b.listShardsToken }), resource: sb },
    ...byName('PutRecord', { PartitionKey: 'k', Data: Buffer.from('forged') }),
    ...byName('PutRecords', { Records: [{ PartitionKey: 'k', Data: Buffer.from('forged') }] }),
    ...byName('GetShardIterator', { ShardId: b.shardId, ShardIteratorType: 'TRIM_HORIZON' }),
    { op: 'GetRecords', input: () => ({ ShardIterator: b.iterator }), resource: sb },
    // An iterator of B's stream does not become A's by naming A's stream beside it.
    { op: 'GetRecords', input: () => ({ ShardIterator: b.iterator, StreamARN: streamArn('sa') }), resource: sb },
    ...byName('IncreaseStreamRetentionPeriod', { RetentionPeriodHours: 48 }),
    ...byName('DecreaseStreamRetentionPeriod', { RetentionPeriodHours: 24 }),
    ...byName('AddTagsToStream', { Tags: { tenant: 'a' } }),
    ...byName('RemoveTagsFromStream', { TagKeys: ['tenant'] }),
    ...byName('ListTagsForStream'),
    ...byName('SplitShard', { ShardToSplit: b.shardId, NewStartingHashKey: '1000' }),
    ...byName('MergeShards', { ShardToMerge: b.shardId, AdjacentShardToMerge: 'shardId-000000000001' }),
    ...byName('UpdateShardCount', { TargetShardCount: 4, ScalingType: 'UNIFORM_SCALING' }),
    { op: 'RegisterStreamConsumer', input: () => ({ StreamARN: sb, ConsumerName: 'a-reader' }), resource: sb },
    { op: 'ListStreamConsumers', input: () => ({ StreamARN: sb }), resource: sb },
    { op: 'DescribeStreamConsumer', input: () => ({ ConsumerARN: b.consumerArn }), resource: b.consumerArn },
    { op: 'DescribeStreamConsumer', input: () => ({ StreamARN: sb, ConsumerName: 'b-reader' }), resource: sb },
    { op: 'DeregisterStreamConsumer', input: () => ({ ConsumerARN: b.consumerArn }), resource: b.consumerArn },
    { op: 'DeregisterStreamConsumer', input: () => ({ StreamARN: sb, ConsumerName: 'b-reader' }), resource: sb },
    { op: 'SubscribeToShard', input: () => ({ ConsumerARN: b.consumerArn, ShardId: b.shardId, StartingPosition: { Type: 'TRIM_HORIZON' } }), resource: b.consumerArn },
    { op: 'TagResource', input: () => ({ ResourceARN: sb, Tags: { tenant: 'a' } }), resource: sb },
    { op: 'TagResource', input: () => ({ ResourceARN: b.consumerArn, Tags: { tenant: 'a' } }), resource: b.consumerArn },
    { op: 'UntagResource', input: () => ({ ResourceARN: sb, TagKeys: ['tenant'] }), resource: sb },
    { op: 'ListTagsForResource', input: () => ({ ResourceARN: b.consumerArn }), resource: b.consumerArn },
    ...byName('EnableEnhancedMonitoring', { ShardLevelMetrics: ['ALL'] }),
    ...byName('DisableEnhancedMonitoring', { ShardLevelMetrics: ['ALL'] }),
    { op: 'UpdateStreamMode', input: () => ({ StreamARN: sb, StreamModeDetails: { StreamMode: 'ON_DEMAND' } }), resource: sb },
    { op: 'UpdateMaxRecordSize', input: () => ({ StreamARN: sb, MaxRecordSizeInKiB: 2048 }), resource: sb },
    // A can neither start nor stop encryption of B's stream (nor learn its KeyId from the error).
    ...byName('StartStreamEncryption', { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' }),
    ...byName('StopStreamEncryption', { EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' }),
    // A can neither put, read nor remove the policy of B's stream or consumer.
    { op: 'PutResourcePolicy', input: () => ({ ResourceARN: sb, Policy: '{"Statement":[]}' }), resource: sb },
    { op: 'GetResourcePolicy', input: () => ({ ResourceARN: sb }), resource: sb },
    { op: 'DeleteResourcePolicy', input: () => ({ ResourceARN: b.consumerArn }), resource: b.consumerArn },
  ];
};
const KINESIS_NOT_RESOURCE_SCOPED: Record<string, string> = {
  DescribeLimits: 'account-level: AWS authorizes it on Resource "*" only, and it names no stream',
  DescribeAccountSettings: 'account-level: AWS authorizes it on Resource "*" only, and it names no stream',
  UpdateAccountSettings: 'account-level: AWS authorizes it on Resource "*" only, and it names no stream',
};

/** The SDK command for an operation (`<Op>Command`), built from the case's input. */
function command(sdk: Record<string, any>, op: string, input: Json): any {
  const C = sdk[`${op}Command`];
  assert.ok(C, `the SDK has no ${op}Command`);
  return new C(input);
}

describe('Kinesis (awsJson1.1 over HTTP/2, CBOR 1.1)', () => {
  test("every operation naming a stream or consumer: tenant A on B's is AccessDeniedException (SDK, JSON over HTTP/2)", async () => {
    const ka = track(kinesisClient({ url: t.server.url, admin: keyA }));
    for (const c of kinesisCases()) await sdkRefused(ka.send(command(KN, c.op, c.input())), 'AccessDeniedException', 400, `kinesis:${c.op}`, c.resource);
  });

  test("every operation naming a stream or consumer: tenant A on B's is AccessDeniedException (CBOR, as the Java SDK sends it)", async () => {
    for (const c of kinesisCases()) {
      const res = await cborCall(t.server.url, keyA, c.op, c.input());
      assert.equal(res.status, 400, `${c.op}: ${JSON.stringify(res.body)}`);
      assert.match(String(res.contentType), /cbor/);
      assert.equal(res.body.__type, 'AccessDeniedException', c.op);
      namesActionAndResource(res.body.message, `kinesis:${c.op}`, c.resource);
    }
  });
});

// --- Firehose ---------------------------------------------------------------------------------------

const firehoseCases = (): JsonCase[] => {
  const bs = deliveryArn('b-stream');
  const n = { DeliveryStreamName: 'b-stream' };
  return [
    { op: 'CreateDeliveryStream', input: () => ({ ...n, ExtendedS3DestinationConfiguration: s3Destination('bucket-b', { RoleARN: roleArn('fh-role-b') }) }), resource: bs },
    { op: 'ListDeliveryStreams', input: () => ({}), resource: '*' },
    { op: 'DescribeDeliveryStream', input: () => n, resource: bs },
    { op: 'DeleteDeliveryStream', input: () => n, resource: bs },
    { op: 'PutRecord', input: () => ({ ...n, Record: { Data: Buffer.from('forged') } }), resource: bs },
    { op: 'PutRecordBatch', input: () => ({ ...n, Records: [{ Data: Buffer.from('forged') }] }), resource: bs },
    {
      op: 'UpdateDestination',
      input: () => ({ ...n, CurrentDeliveryStreamVersionId: '1', DestinationId: 'destinationId-000000000001', ExtendedS3DestinationUpdate: { Prefix: 'stolen/' } }),
      resource: bs,
    },
    { op: 'TagDeliveryStream', input: () => ({ ...n, Tags: [{ Key: 'tenant', Value: 'a' }] }), resource: bs },
    { op: 'UntagDeliveryStream', input: () => ({ ...n, TagKeys: ['tenant'] }), resource: bs },
    { op: 'ListTagsForDeliveryStream', input: () => n, resource: bs },
    { op: 'StartDeliveryStreamEncryption', input: () => n, resource: bs },
    { op: 'StopDeliveryStreamEncryption', input: () => n, resource: bs },
  ];
};
const FIREHOSE_NOT_RESOURCE_SCOPED: Record<string, string> = {};

describe('Firehose (awsJson1.1)', () => {
  test("every operation naming a delivery stream: tenant A on B's is AccessDeniedException naming the action and B's ARN", async () => {
    const fa = track(firehoseClient(t.server, keyA));
    for (const c of firehoseCases()) await sdkRefused(fa.send(command(FH, c.op, c.input())), 'AccessDeniedException', 400, `firehose:${c.op}`, c.resource);
  });
});

// --- IAM and STS ------------------------------------------------------------------------------------

const iamCases = (): JsonCase[] => {
  const u = { UserName: 'tenant-b' };
  const r = { RoleName: 'role-b' };
  const g = { GroupName: 'group-b' };
  const pb = { PolicyName: 'policy-b' };
  const pa = { PolicyArn: policyArn('policy-b') };
  const doc = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] });
  const trust = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'pinpoint.amazonaws.com' }, Action: 'sts:AssumeRole' }] });
  return [
    { op: 'CreateUser', input: () => u, resource: userArn('tenant-b') },
    { op: 'GetUser', input: () => u, resource: userArn('tenant-b') },
    { op: 'ListUsers', input: () => ({}), resource: userArn('*') },
    { op: 'DeleteUser', input: () => u, resource: userArn('tenant-b') },
    { op: 'CreateAccessKey', input: () => u, resource: userArn('tenant-b') },
    { op: 'ListAccessKeys', input: () => u, resource: userArn('tenant-b') },
    { op: 'UpdateAccessKey', input: () => ({ ...u, AccessKeyId: keyB.accessKeyId, Status: 'Inactive' }), resource: userArn('tenant-b') },
    { op: 'DeleteAccessKey', input: () => ({ ...u, AccessKeyId: keyB.accessKeyId }), resource: userArn('tenant-b') },
    { op: 'PutUserPolicy', input: () => ({ ...u, PolicyName: 'tenant', PolicyDocument: doc }), resource: userArn('tenant-b') },
    { op: 'GetUserPolicy', input: () => ({ ...u, PolicyName: 'tenant' }), resource: userArn('tenant-b') },
    { op: 'ListUserPolicies', input: () => u, resource: userArn('tenant-b') },
    { op: 'DeleteUserPolicy', input: () => ({ ...u, PolicyName: 'tenant' }), resource: userArn('tenant-b') },
    { op: 'CreateRole', input: () => ({ ...r, AssumeRolePolicyDocument: trust }), resource: roleArn('role-b') },
    { op: 'GetRole', input: () => r, resource: roleArn('role-b') },
    { op: 'ListRoles', input: () => ({}), resource: roleArn('*') },
    { op: 'UpdateAssumeRolePolicy', input: () => ({ ...r, PolicyDocument: trust }), resource: roleArn('role-b') },
    { op: 'DeleteRole', input: () => r, resource: roleArn('role-b') },
    { op: 'PutRolePolicy', input: () => ({ ...r, PolicyName: 'PinpointEventStreamPermissionsPolicy', PolicyDocument: doc }), resource: roleArn('role-b') },
    { op: 'GetRolePolicy', input: () => ({ ...r, PolicyName: 'PinpointEventStreamPermissionsPolicy' }), resource: roleArn('role-b') },
    { op: 'ListRolePolicies', input: () => r, resource: roleArn('role-b') },
    { op: 'DeleteRolePolicy', input: () => ({ ...r, PolicyName: 'PinpointEventStreamPermissionsPolicy' }), resource: roleArn('role-b') },
    // Managed policies: B's policy by its ARN; attachments are authorized on the user, group or role.
    { op: 'CreatePolicy', input: () => ({ ...pb, PolicyDocument: doc }), resource: policyArn('policy-b') },
    { op: 'GetPolicy', input: () => pa, resource: policyArn('policy-b') },
    { op: 'ListPolicies', input: () => ({}), resource: policyArn('*') },
    { op: 'DeletePolicy', input: () => pa, resource: policyArn('policy-b') },
    { op: 'CreatePolicyVersion', input: () => ({ ...pa, PolicyDocument: doc }), resource: policyArn('policy-b') },
    { op: 'GetPolicyVersion', input: () => ({ ...pa, VersionId: 'v1' }), resource: policyArn('policy-b') },
    { op: 'ListPolicyVersions', input: () => pa, resource: policyArn('policy-b') },
    { op: 'DeletePolicyVersion', input: () => ({ ...pa, VersionId: 'v1' }), resource: policyArn('policy-b') },
    { op: 'SetDefaultPolicyVersion', input: () => ({ ...pa, VersionId: 'v1' }), resource: policyArn('policy-b') },
    { op: 'ListEntitiesForPolicy', input: () => pa, resource: policyArn('policy-b') },
    { op: 'AttachUserPolicy', input: () => ({ ...u, ...pa }), resource: userArn('tenant-b') },
    { op: 'DetachUserPolicy', input: () => ({ ...u, ...pa }), resource: userArn('tenant-b') },
    { op: 'ListAttachedUserPolicies', input: () => u, resource: userArn('tenant-b') },
    { op: 'AttachRolePolicy', input: () => ({ ...r, ...pa }), resource: roleArn('role-b') },
    { op: 'DetachRolePolicy', input: () => ({ ...r, ...pa }), resource: roleArn('role-b') },
    { op: 'ListAttachedRolePolicies', input: () => r, resource: roleArn('role-b') },
    { op: 'AttachGroupPolicy', input: () => ({ ...g, ...pa }), resource: groupArn('group-b') },
    { op: 'DetachGroupPolicy', input: () => ({ ...g, ...pa }), resource: groupArn('group-b') },
    { op: 'ListAttachedGroupPolicies', input: () => g, resource: groupArn('group-b') },
    // Groups.
    { op: 'CreateGroup', input: () => g, resource: groupArn('group-b') },
    { op: 'GetGroup', input: () => g, resource: groupArn('group-b') },
    { op: 'ListGroups', input: () => ({}), resource: groupArn('*') },
    { op: 'DeleteGroup', input: () => g, resource: groupArn('group-b') },
    { op: 'AddUserToGroup', input: () => ({ ...g, UserName: 'tenant-a' }), resource: groupArn('group-b') },
    { op: 'RemoveUserFromGroup', input: () => ({ ...g, ...u }), resource: groupArn('group-b') },
    { op: 'ListGroupsForUser', input: () => u, resource: userArn('tenant-b') },
    { op: 'PutGroupPolicy', input: () => ({ ...g, PolicyName: 'group', PolicyDocument: doc }), resource: groupArn('group-b') },
    { op: 'GetGroupPolicy', input: () => ({ ...g, PolicyName: 'group' }), resource: groupArn('group-b') },
    { op: 'ListGroupPolicies', input: () => g, resource: groupArn('group-b') },
    { op: 'DeleteGroupPolicy', input: () => ({ ...g, PolicyName: 'group' }), resource: groupArn('group-b') },
  ];
};
const IAM_NOT_RESOURCE_SCOPED: Record<string, string> = {};
const stsCases = (): JsonCase[] => [{ op: 'AssumeRole', input: () => ({ RoleArn: roleArn('role-b'), RoleSessionName: 'tenant-a' }), resource: roleArn('role-b') }];
const STS_NOT_RESOURCE_SCOPED: Record<string, string> = {
  GetCallerIdentity: 'needs no permission (as in AWS) and only ever answers who the caller is; tested below to show A itself',
  GetSessionToken: "needs no permission (as in AWS) and only ever issues credentials acting as the caller itself; tested below to act as A",
  AssumeRoleWithWebIdentity: "unsigned as in AWS (noAuth): the verified web identity token is the caller, the role's trust policy the permission (test/cognito.test.ts)",
};

// --- Cognito Identity ----------------------------------------------------------------------------

const cognitoCases = (): JsonCase[] => {
  const pool = () => ({ IdentityPoolId: b.pool });
  return [
    { op: 'CreateIdentityPool', input: () => ({ IdentityPoolName: 'b-pool', AllowUnauthenticatedIdentities: true }), resource: `${POOLS}/*` },
    { op: 'DescribeIdentityPool', input: pool, resource: poolArn(b.pool) },
    { op: 'UpdateIdentityPool', input: () => ({ IdentityPoolId: b.pool, IdentityPoolName: 'taken', AllowUnauthenticatedIdentities: true }), resource: poolArn(b.pool) },
    { op: 'DeleteIdentityPool', input: pool, resource: poolArn(b.pool) },
    { op: 'SetIdentityPoolRoles', input: () => ({ IdentityPoolId: b.pool, Roles: { unauthenticated: roleArn('role-a') } }), resource: poolArn(b.pool) },
    { op: 'GetIdentityPoolRoles', input: pool, resource: poolArn(b.pool) },
    { op: 'ListIdentities', input: () => ({ IdentityPoolId: b.pool, MaxResults: 10 }), resource: poolArn(b.pool) },
    { op: 'DescribeIdentity', input: () => ({ IdentityId: b.identity }), resource: poolArn(b.pool) },
  ];
};
const COGNITO_NOT_RESOURCE_SCOPED: Record<string, string> = {
  ListIdentityPools: 'lists only the pools the caller may DescribeIdentityPool; tested below to hold nothing of B',
  DeleteIdentities: "refuses each identity the caller may not delete (UnprocessedIdentityIds AccessDenied); tested below to leave B's identity",
  GetId: 'unsigned as in AWS (noAuth): creates an identity only in the pool named, bounded per pool (test/cognito.test.ts)',
  GetCredentialsForIdentity: "unsigned as in AWS: only the pool's own role for the identity, as its trust policy allows (test/cognito.test.ts)",
  GetOpenIdToken: 'unsigned as in AWS: a token for the identity named, for its own pool only (test/cognito.test.ts)',
  UnlinkIdentity: "unsigned as in AWS: needs a verified login of the identity (test/cognito.test.ts)",
};

describe('Cognito Identity (awsJson1.1)', () => {
  test("every operation naming B's pool or identity: AccessDeniedException naming the action and B's pool ARN", async () => {
    const ca = track(new CI.CognitoIdentityClient({ endpoint: t.server.url, region: REGION, credentials: keyA, maxAttempts: 1 }));
    for (const c of cognitoCases()) await sdkRefused(ca.send(command(CI, c.op, c.input())), 'AccessDeniedException', 400, `cognito-identity:${c.op}`, c.resource);
  });

  test("ListIdentityPools shows A only its own pool; DeleteIdentities refuses B's identity; B's role cannot become A's pool's role", async () => {
    const ca = track(new CI.CognitoIdentityClient({ endpoint: t.server.url, region: REGION, credentials: keyA, maxAttempts: 1 }));
    // A's policy names its own pool only, not the collection ListIdentityPools is authorized on.
    const listing = await rejection(ca.send(new CI.ListIdentityPoolsCommand({ MaxResults: 60 })), 'ListIdentityPools');
    assert.equal(listing.name, 'AccessDeniedException');
    const del = await ca.send(new CI.DeleteIdentitiesCommand({ IdentityIdsToDelete: [b.identity] }));
    assert.deepEqual(del.UnprocessedIdentityIds, [{ IdentityId: b.identity, ErrorCode: 'AccessDenied' }]);
    // Giving one's own pool B's role would hand B's permissions to A's guests: iam:PassRole is needed.
    await sdkRefused(
      ca.send(new CI.SetIdentityPoolRolesCommand({ IdentityPoolId: poolOfA, Roles: { unauthenticated: roleArn('role-b') } })),
      'AccessDeniedException',
      400,
      'iam:PassRole',
      roleArn('role-b'),
    );
    // A user allowed to list sees only the pools it may describe.
    const lister = await iamUser('pool-lister', [
      { Effect: 'Allow', Action: 'cognito-identity:ListIdentityPools', Resource: '*' },
      { Effect: 'Allow', Action: 'cognito-identity:DescribeIdentityPool', Resource: poolArn(poolOfA) },
    ]);
    const cl = track(new CI.CognitoIdentityClient({ endpoint: t.server.url, region: REGION, credentials: lister, maxAttempts: 1 }));
    assert.deepEqual((await cl.send(new CI.ListIdentityPoolsCommand({ MaxResults: 60 }))).IdentityPools!.map((p) => p.IdentityPoolId), [poolOfA]);
  });
});

describe('IAM and STS (Query)', () => {
  test("every IAM operation on B's user, keys, policies and role: AccessDenied naming the action and B's ARN", async () => {
    const ia = track(new IAM.IAMClient({ endpoint: t.server.url, region: REGION, credentials: keyA, maxAttempts: 1 }));
    for (const c of iamCases()) await sdkRefused(ia.send(command(IAM, c.op, c.input())), 'AccessDenied', 403, `iam:${c.op}`, c.resource);
  });

  test("B's access key under A's own user name is NoSuchEntity, and the key stays active", async () => {
    const ia = track(new IAM.IAMClient({ endpoint: t.server.url, region: REGION, credentials: keyA, maxAttempts: 1 }));
    await assert.rejects(ia.send(new IAM.UpdateAccessKeyCommand({ AccessKeyId: keyB.accessKeyId, Status: 'Inactive' })), { name: 'NoSuchEntityException' });
    await assert.rejects(ia.send(new IAM.DeleteAccessKeyCommand({ AccessKeyId: keyB.accessKeyId })), { name: 'NoSuchEntityException' });
    const keys = (await admin.iam.send(new IAM.ListAccessKeysCommand({ UserName: 'tenant-b' }))).AccessKeyMetadata!;
    assert.deepEqual(keys.map((k) => [k.AccessKeyId, k.Status]), [[keyB.accessKeyId, 'Active']]);
  });

  test('GetCallerIdentity answers A with A', async () => {
    const sts = track(new STSClient({ endpoint: t.server.url, region: REGION, credentials: keyA, maxAttempts: 1 }));
    assert.equal((await sts.send(new GetCallerIdentityCommand({}))).Arn, userArn('tenant-a'));
  });

  test("STS: A cannot assume B's role (AccessDenied naming sts:AssumeRole and the role); A's session token acts as A", async () => {
    const sts = track(new STSClient({ endpoint: t.server.url, region: REGION, credentials: keyA, maxAttempts: 1 }));
    for (const c of stsCases()) await sdkRefused(sts.send(command(STS, c.op, c.input())), 'AccessDenied', 403, `sts:${c.op}`, c.resource);
    const temp = (await sts.send(new STS.GetSessionTokenCommand({}))).Credentials!;
    const asA = track(new STSClient({ endpoint: t.server.url, region: REGION, credentials: { accessKeyId: temp.AccessKeyId!, secretAccessKey: temp.SecretAccessKey!, sessionToken: temp.SessionToken! }, maxAttempts: 1 }));
    assert.equal((await asA.send(new GetCallerIdentityCommand({}))).Arn, userArn('tenant-a'));
  });
});

// --- B afterwards -------------------------------------------------------------------------------------

describe("B after every attempt", () => {
  test('is exactly as it was', async () => {
    const app = (await t.pinpoint.send(new PP.GetAppCommand({ ApplicationId: B }))).ApplicationResponse!;
    assert.deepEqual(app.tags, { tenant: 'b' });
    assert.equal((await t.pinpoint.send(new PP.GetEndpointCommand({ ApplicationId: B, EndpointId: b.endpoint }))).EndpointResponse!.Address, 'b-token');
    assert.equal((await t.pinpoint.send(new PP.GetUserEndpointsCommand({ ApplicationId: B, UserId: b.user }))).EndpointsResponse!.Item!.length, 1);
    const es = (await t.pinpoint.send(new PP.GetEventStreamCommand({ ApplicationId: B }))).EventStream!;
    assert.deepEqual([es.DestinationStreamArn, es.RoleArn], [streamArn('sb'), roleArn('role-b')]);
    const settings = (await t.pinpoint.send(new PP.GetApplicationSettingsCommand({ ApplicationId: B }))).ApplicationSettingsResource!;
    assert.notEqual(settings.CampaignHook?.LambdaFunctionName, 'x');
    const funnels = await signedFetch(t.server.url, { method: 'GET', path: `/v1/apps/${B}/funnels`, credentials: t.server.admin });
    assert.deepEqual(funnels.json.funnels.map((f: any) => [f.id, f.name]), [[b.funnel, 'b-funnel']]);
    assert.ok(!(await t.pinpoint.send(new PP.GetAppsCommand({ PageSize: '100' }))).ApplicationsResponse!.Item!.some((a) => a.Name === 'tenant-b' && a.Id !== B), 'no second app');

    const sb = (await admin.kinesis.send(new KN.DescribeStreamSummaryCommand({ StreamName: 'sb' }))).StreamDescriptionSummary!;
    assert.deepEqual([sb.StreamStatus, sb.OpenShardCount, sb.RetentionPeriodHours], ['ACTIVE', 2, 24]);
    assert.deepEqual((await admin.kinesis.send(new KN.ListTagsForStreamCommand({ StreamName: 'sb' }))).Tags, [{ Key: 'tenant', Value: 'b' }]);
    assert.deepEqual((await admin.kinesis.send(new KN.ListStreamConsumersCommand({ StreamARN: streamArn('sb') }))).Consumers!.map((c) => c.ConsumerName), ['b-reader']);
    const it = (await admin.kinesis.send(new KN.GetShardIteratorCommand({ StreamName: 'sb', ShardId: b.shardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
    const data = (await admin.kinesis.send(new KN.GetRecordsCommand({ ShardIterator: it }))).Records!.map((r) => Buffer.from(r.Data!).toString());
    assert.ok(data.includes('b-secret') && !data.includes('forged'), `sb holds ${JSON.stringify(data)}`);
    assert.ok(!(await admin.kinesis.send(new KN.ListStreamsCommand({}))).StreamNames!.includes('a-reader'));

    const d = (await admin.firehose.send(new FH.DescribeDeliveryStreamCommand({ DeliveryStreamName: 'b-stream' }))).DeliveryStreamDescription!;
    assert.equal(d.VersionId, '1');
    assert.equal(d.Destinations![0].ExtendedS3DestinationDescription!.Prefix, '');
    assert.deepEqual((await admin.firehose.send(new FH.ListTagsForDeliveryStreamCommand({ DeliveryStreamName: 'b-stream' }))).Tags, [{ Key: 'tenant', Value: 'b' }]);
    assert.equal(t.server.firehose.health('b-stream')!.delivery.logEnd, 0, 'no record was put into b-stream');

    assert.deepEqual((await admin.iam.send(new IAM.ListUserPoliciesCommand({ UserName: 'tenant-b' }))).PolicyNames, ['tenant']);
    assert.equal((await admin.iam.send(new IAM.ListAccessKeysCommand({ UserName: 'tenant-b' }))).AccessKeyMetadata!.length, 1);
    const role = (await admin.iam.send(new IAM.GetRoleCommand({ RoleName: 'role-b' }))).Role!;
    assert.match(decodeURIComponent(role.AssumeRolePolicyDocument!), /pinpoint\.amazonaws\.com/);
    assert.deepEqual((await admin.iam.send(new IAM.ListRolePoliciesCommand({ RoleName: 'role-b' }))).PolicyNames, ['PinpointEventStreamPermissionsPolicy']);

    const ci = track(new CI.CognitoIdentityClient({ endpoint: t.server.url, region: REGION, credentials: t.server.admin, maxAttempts: 1 }));
    assert.equal((await ci.send(new CI.DescribeIdentityPoolCommand({ IdentityPoolId: b.pool }))).IdentityPoolName, 'b-pool');
    assert.deepEqual((await ci.send(new CI.GetIdentityPoolRolesCommand({ IdentityPoolId: b.pool }))).Roles, { unauthenticated: roleArn('role-b') });
    assert.equal((await ci.send(new CI.DescribeIdentityCommand({ IdentityId: b.identity }))).IdentityId, b.identity);
  });
});

// --- Glue Data Catalog ------------------------------------------------------------------------------

const glueCases = (): JsonCase[] => {
  const table = { DatabaseName: 'db-b', TableName: 'events' };
  const db = glueArn('database/db-b');
  return [
    { op: 'CreateDatabase', input: () => ({ DatabaseInput: { Name: 'db-b' } }), resource: db },
    { op: 'GetDatabase', input: () => ({ Name: 'db-b' }), resource: db },
    { op: 'UpdateDatabase', input: () => ({ Name: 'db-b', DatabaseInput: { Name: 'db-b', Description: 'forged' } }), resource: db },
    { op: 'DeleteDatabase', input: () => ({ Name: 'DB-B' }), resource: db },
    { op: 'CreateTable', input: () => ({ DatabaseName: 'db-b', TableInput: { Name: 'forged' } }), resource: db },
    { op: 'GetTable', input: () => ({ DatabaseName: 'db-b', Name: 'events' }), resource: db },
    { op: 'UpdateTable', input: () => ({ DatabaseName: 'db-b', TableInput: { Name: 'events' } }), resource: db },
    { op: 'DeleteTable', input: () => ({ DatabaseName: 'db-b', Name: 'events' }), resource: db },
    { op: 'GetTables', input: () => ({ DatabaseName: 'db-b' }), resource: db },
    { op: 'CreatePartition', input: () => ({ ...table, PartitionInput: { Values: ['2026'] } }), resource: db },
    { op: 'BatchCreatePartition', input: () => ({ ...table, PartitionInputList: [{ Values: ['2026'] }] }), resource: db },
    { op: 'GetPartition', input: () => ({ ...table, PartitionValues: ['2025'] }), resource: db },
    { op: 'GetPartitions', input: () => table, resource: db },
    { op: 'DeletePartition', input: () => ({ ...table, PartitionValues: ['2025'] }), resource: db },
    { op: 'BatchDeletePartition', input: () => ({ ...table, PartitionsToDelete: [{ Values: ['2025'] }] }), resource: db },
  ];
};
const GLUE_NOT_RESOURCE_SCOPED: Record<string, string> = {
  GetDatabases: 'lists only the databases the caller may GetDatabases on; tested below to hold nothing of B',
};

describe('Glue Data Catalog (awsJson1.1)', () => {
  test("every operation naming B's database, table or partition: AccessDeniedException naming the action and B's database ARN", async () => {
    const ga = track(new GL.GlueClient({ endpoint: t.server.url, region: REGION, credentials: keyA, maxAttempts: 1 }));
    for (const c of glueCases()) await sdkRefused(ga.send(command(GL, c.op, c.input())), 'AccessDeniedException', 400, `glue:${c.op}`, c.resource);
    // Path tricks: A's policy (database/a-*, table/a-*/*) matches these spellings, and names are
    // looked up as given, never as paths: they find nothing of B's.
    for (const [DatabaseName, Name] of [['a-db/../db-b', 'events'], ['a-db', '../db-b/events'], ['a-db/../db-b/', 'events']]) {
      await assert.rejects(ga.send(new GL.GetTableCommand({ DatabaseName, Name })), (e: any) => e.name === 'EntityNotFoundException' && !/events.*b/.test(e.message), `${DatabaseName} ${Name}`);
    }
  });

  test("GetDatabases shows A only its own; B's database, table and partition are as they were", async () => {
    const ga = track(new GL.GlueClient({ endpoint: t.server.url, region: REGION, credentials: keyA, maxAttempts: 1 }));
    assert.deepEqual((await ga.send(new GL.GetDatabasesCommand({}))).DatabaseList!.map((d) => d.Name), ['a-db']);
    const gl = track(new GL.GlueClient({ endpoint: t.server.url, region: REGION, credentials: t.server.admin, maxAttempts: 1 }));
    assert.equal((await gl.send(new GL.GetDatabaseCommand({ Name: 'db-b' }))).Database!.Description, 'b');
    assert.deepEqual((await gl.send(new GL.GetTablesCommand({ DatabaseName: 'db-b' }))).TableList!.map((x) => [x.Name, x.VersionId]), [['events', '0']]);
    assert.deepEqual((await gl.send(new GL.GetPartitionsCommand({ DatabaseName: 'db-b', TableName: 'events' }))).Partitions!.map((p) => p.Values), [['2025']]);
  });
});

// --- ARN spellings ------------------------------------------------------------------------------------

describe('ARN spellings (audit): other accounts, regions and partitions, path tricks, case', () => {
  test('a Deny on B cannot be sidestepped by spelling B differently', async () => {
    const fenced = await iamUser('fenced', [
      { Effect: 'Allow', Action: ['mobiletargeting:*', 'kinesis:*', 'firehose:*'], Resource: '*' },
      { Effect: 'Deny', Action: 'mobiletargeting:*', Resource: [appArn(B), `${appArn(B)}/*`] },
      { Effect: 'Deny', Action: 'kinesis:*', Resource: [streamArn('sb'), `${streamArn('sb')}/*`] },
      { Effect: 'Deny', Action: 'firehose:*', Resource: deliveryArn('b-stream') },
    ]);
    const refused = async (p: Promise<unknown>, what: string) => {
      const e = await rejection(p, what);
      assert.ok(['AccessDeniedException', 'ForbiddenException', 'ResourceNotFoundException', 'NotFoundException', 'ValidationException', 'BadRequestException', 'InvalidArgumentException'].includes(e.name), `${what}: ${e.name}: ${e.message}`);
    };
    const pf = track(pinpointClient({ url: t.server.url, admin: fenced }));
    // The app id in another case, and the tagging ARN in other regions, accounts and partitions.
    await refused(pf.send(new PP.GetAppCommand({ ApplicationId: B.toUpperCase() })), 'GetApp with the id upper-cased');
    for (const arn of [
      `arn:aws:mobiletargeting:eu-west-1:${ACCOUNT}:apps/${B}`,
      `arn:aws:mobiletargeting:${REGION}:999999999999:apps/${B}`,
      `arn:aws-cn:mobiletargeting:${REGION}:${ACCOUNT}:apps/${B}`,
      `arn:aws:mobiletargeting:${REGION}:${ACCOUNT}:apps/${B}/../${A}`,
      `arn:aws:mobiletargeting:${REGION}:${ACCOUNT}:apps/${A}/../${B}`,
      `ARN:AWS:MOBILETARGETING:${REGION.toUpperCase()}:${ACCOUNT}:APPS/${B.toUpperCase()}`,
    ]) {
      await refused(pf.send(new PP.ListTagsForResourceCommand({ ResourceArn: arn })), `ListTagsForResource ${arn}`);
    }
    const kf = track(kinesisClient({ url: t.server.url, admin: fenced }));
    for (const arn of [
      `arn:aws:kinesis::${ACCOUNT}:stream/sb`,
      `arn:aws:kinesis:eu-west-1:${ACCOUNT}:stream/sb`,
      `arn:aws:kinesis:${REGION}:999999999999:stream/sb`,
      `arn:aws-cn:kinesis:${REGION}:${ACCOUNT}:stream/sb`,
      `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/sa/../sb`,
      `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/SB`,
    ]) {
      await refused(kf.send(new KN.DescribeStreamSummaryCommand({ StreamARN: arn })), `DescribeStreamSummary ${arn}`);
      await refused(kf.send(new KN.PutRecordCommand({ StreamARN: arn, PartitionKey: 'k', Data: Buffer.from('forged') })), `PutRecord ${arn}`);
    }
    await refused(kf.send(new KN.DescribeStreamSummaryCommand({ StreamName: 'SB' })), 'StreamName SB');
    await refused(kf.send(new KN.DescribeStreamConsumerCommand({ ConsumerARN: b.consumerArn.replace(`:${REGION}:`, '::') })), 'a consumer ARN without region');
    const ff = track(firehoseClient(t.server, fenced));
    await refused(ff.send(new FH.DescribeDeliveryStreamCommand({ DeliveryStreamName: 'B-STREAM' })), 'DeliveryStreamName B-STREAM');
    // And nothing reached sb or b-stream.
    const it = (await admin.kinesis.send(new KN.GetShardIteratorCommand({ StreamName: 'sb', ShardId: b.shardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
    assert.ok(!(await admin.kinesis.send(new KN.GetRecordsCommand({ ShardIterator: it }))).Records!.some((r) => Buffer.from(r.Data!).toString() === 'forged'));
  });

  test('an event stream destination spelled with a path trick is no destination', async () => {
    const pa = track(pinpointClient({ url: t.server.url, admin: keyA }));
    for (const arn of [`${streamArn('sa')}/../sb`, `${streamArn('sa')}/consumer/x`, `${deliveryArn('a-x')}/../b-stream`]) {
      await assert.rejects(
        pa.send(new PP.PutEventStreamCommand({ ApplicationId: A, WriteEventStream: { DestinationStreamArn: arn, RoleArn: roleArn('role-a') } })),
        (e: any) => e.name === 'BadRequestException' && /must be a Kinesis data stream ARN/.test(e.message),
        arn,
      );
    }
  });

  test("role ARNs of other accounts, partitions, paths or case do not reach B's role", async () => {
    // Admin may pass any role; the role itself must still be this account's, spelled exactly.
    const app = (await t.pinpoint.send(new PP.CreateAppCommand({ CreateApplicationRequest: { Name: 'spellings' } }))).ApplicationResponse!.Id!;
    for (const role of [
      `arn:aws:iam::999999999999:role/role-b`,
      `arn:aws-cn:iam::${ACCOUNT}:role/role-b`,
      `arn:aws:iam::${ACCOUNT}:role/other/path/role-b`,
      `arn:aws:iam::${ACCOUNT}:role/ROLE-B`,
    ]) {
      await assert.rejects(
        t.pinpoint.send(new PP.PutEventStreamCommand({ ApplicationId: app, WriteEventStream: { DestinationStreamArn: streamArn('sb'), RoleArn: role } })),
        (e: any) => e.name === 'BadRequestException' && /Destination stream validation failed/.test(e.message),
        role,
      );
      await assert.rejects(
        admin.firehose.send(new FH.CreateDeliveryStreamCommand({ DeliveryStreamName: `spell-${randomUUID().slice(0, 8)}`, ExtendedS3DestinationConfiguration: s3Destination('bucket-b', { RoleARN: role }) })),
        (e: any) => e.name === 'InvalidArgumentException' && /unable to assume role/.test(e.message),
        role,
      );
    }
  });
});

// --- coverage: every implemented operation has a case -------------------------------------------

/** `/v1/apps/{application-id}` and `/v1/tags/{resource-arn+}` → one shape for comparing routes. */
const routeShape = (methodAndPath: string) => methodAndPath.replace(/\?.*$/, '').replace(/\{[^}]+\}/g, '{}');

describe('coverage', () => {
  test('every operation the server answers has a refusal case here, or is listed as not resource-scoped with the reason', () => {
    const inv = t.server.operations;
    const covered = {
      pinpoint: new Set([...Object.keys(pinpointCases()), ...Object.keys(PINPOINT_NOT_RESOURCE_SCOPED)]),
      kinesis: new Set([...kinesisCases().map((c) => c.op), ...Object.keys(KINESIS_NOT_RESOURCE_SCOPED)]),
      firehose: new Set([...firehoseCases().map((c) => c.op), ...Object.keys(FIREHOSE_NOT_RESOURCE_SCOPED)]),
      iam: new Set([...iamCases().map((c) => c.op), ...Object.keys(IAM_NOT_RESOURCE_SCOPED)]),
      sts: new Set([...stsCases().map((c) => c.op), ...Object.keys(STS_NOT_RESOURCE_SCOPED)]),
      cognito: new Set([...cognitoCases().map((c) => c.op), ...Object.keys(COGNITO_NOT_RESOURCE_SCOPED)]),
      glue: new Set([...glueCases().map((c) => c.op), ...Object.keys(GLUE_NOT_RESOURCE_SCOPED)]),
    };
    for (const service of ['pinpoint', 'kinesis', 'firehose', 'iam', 'sts', 'cognito', 'glue'] as const) {
      const missing = inv[service].filter((op) => !covered[service].has(op));
      assert.deepEqual(missing, [], `${service}: operations without an isolation case (add one, or list them as not resource-scoped with the reason)`);
      const stale = [...covered[service]].filter((op) => !inv[service].includes(op));
      assert.deepEqual(stale, [], `${service}: cases for operations the server does not answer`);
    }
  });

  test('driven by the AWS models: each implemented AWS operation is covered under its own name and HTTP binding; the rest are extensions', () => {
    const models = { pinpoint: pinpointModel, kinesis: kinesisModel, firehose: firehoseModel, iam: iamModel, sts: stsModel, cognito: cognitoModel, glue: glueModel };
    const inv = t.server.operations;
    // Pinpoint: routes matched to the model's operations by method and URI.
    const byShape = new Map<string, string>();
    for (const op of Object.values(models.pinpoint.operations)) byShape.set(routeShape(`${op.http.method} ${op.http.requestUri}`), op.name);
    const cases = pinpointCases();
    const implemented: string[] = [];
    for (const route of inv.pinpoint) {
      const awsOp = byShape.get(routeShape(route));
      const c = cases[route];
      if (awsOp) implemented.push(awsOp);
      if (c) assert.equal(c.op, awsOp, `${route}: the case names ${c.op ?? 'no AWS operation'}, the model says ${awsOp ?? 'none (an extension)'}`);
    }
    assert.ok(implemented.length >= 20, `implemented Pinpoint operations found in the model: ${implemented.join(', ')}`);
    // JSON and Query services: every implemented operation is an operation of the model.
    for (const service of ['kinesis', 'firehose', 'iam', 'sts', 'cognito', 'glue'] as const) {
      const names = new Set(Object.keys(models[service].operations));
      const unknown = inv[service].filter((op) => !names.has(op));
      assert.deepEqual(unknown, [], `${service}: operations the server answers that the AWS model does not have`);
    }
  });

  test("the web console's API calls are all covered operations", () => {
    const inv = t.server.operations;
    const js = readdirSync(CONSOLE_DIR)
      .filter((f) => f.endsWith('.js'))
      .map((f) => readFileSync(join(CONSOLE_DIR, f), 'utf8'))
      .join('\n');
    const calls = new Set<string>();
    for (const m of js.matchAll(/api\.pinpoint\('(GET|POST|PUT|DELETE)', \[([^\]]*)\]/g)) calls.add(`pinpoint ${m[1]} ${segments(m[2])}`);
    for (const m of js.matchAll(/api\.pinpointText\(\[([^\]]*)\]/g)) calls.add(`pinpoint GET ${segments(m[1])}`);
    for (const m of js.matchAll(/pinpoint\('(GET|POST|PUT|DELETE)', \[([^\]]*)\]/g)) calls.add(`pinpoint ${m[1]} ${segments(m[2])}`);
    for (const m of js.matchAll(/\b(kinesis|firehose)\('([A-Za-z]+)'/g)) calls.add(`${m[1]} ${m[2]}`);
    for (const m of js.matchAll(/Action: '([A-Za-z]+)'/g)) calls.add(`${m[1] === 'GetCallerIdentity' ? 'sts' : 'iam'} ${m[1]}`);
    assert.ok(calls.size >= 15, `console calls found: ${[...calls].join('; ')}`);
    const routes = new Map(inv.pinpoint.map((r) => [routeShape(r), r]));
    for (const call of calls) {
      const [service, ...rest] = call.split(' ');
      if (service === 'pinpoint') {
        const route = routes.get(routeShape(rest.join(' ')));
        assert.ok(route, `the console calls ${rest.join(' ')}, which is no route`);
        assert.ok(route in pinpointCases() || route in PINPOINT_NOT_RESOURCE_SCOPED, `console call ${route} has no isolation case`);
      } else {
        assert.ok(inv[service as 'kinesis'].includes(rest[0]), `the console calls ${call}, which the server does not answer`);
      }
    }
  });
});

/** The console's path segments (`'v1', 'apps', app.Id`) as a path with `{}` for every computed one. */
function segments(list: string): string {
  return (
    '/' +
    list
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((s) => (/^'[^']*'$/.test(s) ? s.slice(1, -1) : '{}'))
      .join('/')
  );
}
