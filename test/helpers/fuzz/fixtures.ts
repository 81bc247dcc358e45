// What the fuzzed requests point at, created and kept alive with the official SDK clients: two
// apps (one the restricted user may use), a restricted IAM user and its key, a role, two Kinesis
// streams with a consumer and a fresh shard iterator, a Firehose delivery stream to a folder
// bucket, an event stream, a saved funnel, a Cognito identity pool with a guest role and one of its
// identities. The fuzzer deletes and reconfigures these freely;
// `ensure` puts them back between batches so requests keep reaching the code behind the lookups.

import { CreateAppCommand, GetAppCommand, PinpointClient, PutEventStreamCommand } from '@aws-sdk/client-pinpoint';
import {
  CreateStreamCommand,
  DescribeStreamConsumerCommand,
  DescribeStreamSummaryCommand,
  GetShardIteratorCommand,
  KinesisClient,
  PutRecordCommand,
  RegisterStreamConsumerCommand,
} from '@aws-sdk/client-kinesis';
import { CreateDeliveryStreamCommand, DescribeDeliveryStreamCommand, FirehoseClient } from '@aws-sdk/client-firehose';
import {
  CreateAccessKeyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  GetRoleCommand,
  UpdateAssumeRolePolicyCommand,
  ListRolePoliciesCommand,
  DeleteRolePolicyCommand,
  ListUserPoliciesCommand,
  DeleteUserPolicyCommand,
  GetUserCommand,
  IAMClient,
  ListAccessKeysCommand,
  PutRolePolicyCommand,
  PutUserPolicyCommand,
} from '@aws-sdk/client-iam';
import {
  CognitoIdentityClient,
  CreateIdentityPoolCommand,
  DescribeIdentityCommand,
  DescribeIdentityPoolCommand,
  GetIdCommand,
  SetIdentityPoolRolesCommand,
} from '@aws-sdk/client-cognito-identity';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { signedFetch } from '../signed.js';
import type { Credentials } from './wire.js';
import type { Ref, RefName } from './values.js';

export const REGION = 'us-east-1';
export const ACCOUNT = '000000000000';
const STREAM = 'fuzz-stream';
const STREAM2 = 'fuzz-stream-2';
const CONSUMER = 'fuzz-consumer';
const DELIVERY_STREAM = 'fuzz-ds';
const ROLE = 'fuzz-role';
const USER = 'fuzz-user';
const BUCKET = 'fuzz-bucket';
const GUEST_ROLE = 'fuzz-cognito-guest';
const COGNITO = 'cognito-identity.amazonaws.com';

export class Fixtures {
  appId = '';
  app2Id = '';
  restricted: Credentials = { accessKeyId: 'PSAKNOTYETCREATED000', secretAccessKey: 'x' };
  consumerArn = `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/${STREAM}/consumer/${CONSUMER}:0`;
  iterator = 'AAAA';
  sequenceNumber = '49000000000000000000000000000000000000000000000000000000';
  funnelId = 'none';
  identityPoolId = 'us-east-1:00000000-0000-0000-0000-000000000000';
  identityId = 'us-east-1:00000000-0000-0000-0000-000000000000';
  /** Setup steps that failed in the last `ensure` (the fuzzer may have broken them; reported, not fatal). */
  problems: string[] = [];

  constructor(
    public url: string,
    public admin: Credentials,
  ) {}

  resolve = (r: Ref): string => {
    const name = r.name as RefName;
    const now = Date.now();
    switch (name) {
      case 'app':
        return this.appId;
      case 'app2':
        return this.app2Id;
      case 'appArn':
        return `arn:aws:mobiletargeting:${REGION}:${ACCOUNT}:apps/${this.appId}`;
      case 'stream':
        return STREAM;
      case 'stream2':
        return STREAM2;
      case 'streamArn':
        return `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/${STREAM}`;
      case 'consumerName':
        return CONSUMER;
      case 'consumerArn':
        return this.consumerArn;
      case 'iterator':
        return this.iterator;
      case 'sequenceNumber':
        return this.sequenceNumber;
      case 'deliveryStream':
        return DELIVERY_STREAM;
      case 'deliveryStreamArn':
        return `arn:aws:firehose:${REGION}:${ACCOUNT}:deliverystream/${DELIVERY_STREAM}`;
      case 'roleArn':
        return `arn:aws:iam::${ACCOUNT}:role/${ROLE}`;
      case 'roleName':
        return ROLE;
      case 'userName':
        return USER;
      case 'bucketArn':
        return `arn:aws:s3:::${BUCKET}`;
      case 'funnelId':
        return this.funnelId;
      case 'identityPool':
        return this.identityPoolId;
      case 'identityId':
        return this.identityId;
      case 'now':
        return new Date(now - 1000).toISOString();
      case 'yesterday':
        return new Date(now - 86_400_000).toISOString();
    }
  };

  private clients() {
    // Bounded waits: a wedged server fails the setup step instead of hanging the suite.
    const handler = () => new NodeHttpHandler({ connectionTimeout: 5_000, requestTimeout: 15_000 });
    const base = { endpoint: this.url, region: REGION, credentials: this.admin, maxAttempts: 1 };
    return {
      pinpoint: new PinpointClient({ ...base, requestHandler: handler() }),
      kinesis: new KinesisClient({ ...base, requestHandler: handler() }),
      firehose: new FirehoseClient({ ...base, requestHandler: handler() }),
      iam: new IAMClient({ ...base, requestHandler: handler() }),
      cognito: new CognitoIdentityClient({ ...base, requestHandler: handler() }),
    };
  }

  /** Creates what is missing and refreshes iterators; failures are collected, not thrown. */
  async ensure(): Promise<void> {
    this.problems = [];
    const c = this.clients();
    const step = async (what: string, f: () => Promise<unknown>) => {
      try {
        await f();
      } catch (e) {
        this.problems.push(`${what}: ${(e as Error).name}: ${(e as Error).message}`);
      }
    };
    try {
      const app = async (id: string, name: string) => {
        if (id) {
          try {
            await c.pinpoint.send(new GetAppCommand({ ApplicationId: id }));
            return id;
          } catch {
            // deleted by the fuzzer: make another
          }
        }
        const out = await c.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: name } }));
        return out.ApplicationResponse!.Id!;
      };
      await step('apps', async () => {
        this.appId = await app(this.appId, 'fuzz-app');
        this.app2Id = await app(this.app2Id, 'fuzz-app-2');
      });
      await step('role', async () => {
        const trust = JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Principal: { Service: ['firehose.amazonaws.com', 'pinpoint.amazonaws.com'] }, Action: 'sts:AssumeRole' }],
        });
        try {
          await c.iam.send(new GetRoleCommand({ RoleName: ROLE }));
          // The fuzzer may have rewritten its trust (UpdateAssumeRolePolicy): put it back.
          await c.iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: ROLE, PolicyDocument: trust }));
        } catch {
          await c.iam.send(new CreateRoleCommand({ RoleName: ROLE, AssumeRolePolicyDocument: trust }));
        }
        const policy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['kinesis:*', 'firehose:*', 's3:*'], Resource: '*' }] };
        await c.iam.send(new PutRolePolicyCommand({ RoleName: ROLE, PolicyName: 'fuzz-role-policy', PolicyDocument: JSON.stringify(policy) }));
        // Policies the fuzzer added (a Deny would stop the event stream and delivery stream setups).
        const names = (await c.iam.send(new ListRolePoliciesCommand({ RoleName: ROLE }))).PolicyNames ?? [];
        for (const n of names) if (n !== 'fuzz-role-policy') await c.iam.send(new DeleteRolePolicyCommand({ RoleName: ROLE, PolicyName: n }));
      });
      await step('user', async () => {
        try {
          await c.iam.send(new GetUserCommand({ UserName: USER }));
        } catch {
          await c.iam.send(new CreateUserCommand({ UserName: USER }));
        }
        const keys = await c.iam.send(new ListAccessKeysCommand({ UserName: USER }));
        if (!keys.AccessKeyMetadata?.some((k) => k.AccessKeyId === this.restricted.accessKeyId && k.Status === 'Active')) {
          const k = await c.iam.send(new CreateAccessKeyCommand({ UserName: USER }));
          this.restricted = { accessKeyId: k.AccessKey!.AccessKeyId!, secretAccessKey: k.AccessKey!.SecretAccessKey! };
        }
        const arn = (s: string) => `arn:aws:${s}`;
        const policy = {
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Action: 'mobiletargeting:*', Resource: [arn(`mobiletargeting:${REGION}:${ACCOUNT}:apps/${this.appId}`), arn(`mobiletargeting:${REGION}:${ACCOUNT}:apps/${this.appId}/*`)] },
            { Effect: 'Allow', Action: 'kinesis:*', Resource: arn(`kinesis:${REGION}:${ACCOUNT}:stream/${STREAM}*`) },
            { Effect: 'Allow', Action: 'firehose:*', Resource: arn(`firehose:${REGION}:${ACCOUNT}:deliverystream/${DELIVERY_STREAM}`) },
            { Effect: 'Allow', Action: ['iam:GetUser', 'iam:ListAccessKeys', 'iam:GetUserPolicy', 'iam:PassRole'], Resource: [`arn:aws:iam::${ACCOUNT}:user/${USER}`, `arn:aws:iam::${ACCOUNT}:role/${ROLE}`] },
          ],
        };
        await c.iam.send(new PutUserPolicyCommand({ UserName: USER, PolicyName: 'fuzz-policy', PolicyDocument: JSON.stringify(policy) }));
        const names = (await c.iam.send(new ListUserPoliciesCommand({ UserName: USER }))).PolicyNames ?? [];
        for (const n of names) if (n !== 'fuzz-policy') await c.iam.send(new DeleteUserPolicyCommand({ UserName: USER, PolicyName: n }));
      });
      const stream = async (name: string, shards: number) => {
        try {
          await c.kinesis.send(new DescribeStreamSummaryCommand({ StreamName: name }));
        } catch {
          await c.kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
        }
      };
      await step('streams', async () => {
        await stream(STREAM, 2);
        await stream(STREAM2, 1);
      });
      await step('consumer', async () => {
        const streamArn = this.resolve({ name: 'streamArn' } as Ref);
        try {
          const d = await c.kinesis.send(new DescribeStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: CONSUMER }));
          this.consumerArn = d.ConsumerDescription!.ConsumerARN!;
        } catch {
          const r = await c.kinesis.send(new RegisterStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: CONSUMER }));
          this.consumerArn = r.Consumer!.ConsumerARN!;
        }
      });
      await step('records', async () => {
        const put = await c.kinesis.send(new PutRecordCommand({ StreamName: STREAM, PartitionKey: 'fuzz', Data: Buffer.from('{"fuzz":1}') }));
        this.sequenceNumber = put.SequenceNumber!;
        const it = await c.kinesis.send(new GetShardIteratorCommand({ StreamName: STREAM, ShardId: put.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }));
        this.iterator = it.ShardIterator!;
      });
      await step('delivery stream', async () => {
        try {
          await c.firehose.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: DELIVERY_STREAM }));
        } catch {
          await c.firehose.send(
            new CreateDeliveryStreamCommand({
              DeliveryStreamName: DELIVERY_STREAM,
              DeliveryStreamType: 'DirectPut',
              ExtendedS3DestinationConfiguration: {
                RoleARN: this.resolve({ name: 'roleArn' } as Ref),
                BucketARN: `arn:aws:s3:::${BUCKET}`,
                BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 60 },
              },
            }),
          );
        }
      });
      await step('event stream', () =>
        c.pinpoint.send(
          new PutEventStreamCommand({
            ApplicationId: this.appId,
            WriteEventStream: { DestinationStreamArn: this.resolve({ name: 'streamArn' } as Ref), RoleArn: this.resolve({ name: 'roleArn' } as Ref) },
          }),
        ),
      );
      await step('funnel', async () => {
        const r = await signedFetch(this.url, {
          method: 'POST',
          path: `/v1/apps/${this.appId}/funnels`,
          body: JSON.stringify({ name: 'fuzz funnel', steps: [{ name: 'a', eventType: 'a' }, { name: 'b', eventType: 'b' }] }),
          credentials: this.admin,
        });
        if (r.json?.id) this.funnelId = r.json.id;
        else throw new Error(`SaveFunnel answered ${r.status} ${r.text.slice(0, 200)}`);
      });
      const newPool = async () => {
        const p = await c.cognito.send(new CreateIdentityPoolCommand({ IdentityPoolName: 'fuzz pool', AllowUnauthenticatedIdentities: true }));
        this.identityPoolId = p.IdentityPoolId!;
        this.identityId = '';
      };
      await step('identity pool', async () => {
        try {
          const p = await c.cognito.send(new DescribeIdentityPoolCommand({ IdentityPoolId: this.identityPoolId }));
          if (!p.AllowUnauthenticatedIdentities) throw new Error('guest access turned off');
          if (p.SupportedLoginProviders || p.OpenIdConnectProviderARNs?.length) throw new Error('login providers set');
        } catch {
          await newPool();
        }
        // The fuzzer's GetId calls may have used up the pool's new identities (its burst, or its
        // quota): a new pool has its own.
        try {
          if (this.identityId) await c.cognito.send(new DescribeIdentityCommand({ IdentityId: this.identityId }));
        } catch {
          this.identityId = '';
        }
        if (!this.identityId) {
          try {
            this.identityId = (await c.cognito.send(new GetIdCommand({ IdentityPoolId: this.identityPoolId }))).IdentityId!;
          } catch {
            await newPool();
            this.identityId = (await c.cognito.send(new GetIdCommand({ IdentityPoolId: this.identityPoolId }))).IdentityId!;
          }
        }
        // A guest role trusting this pool, so GetCredentialsForIdentity gets as far as credentials.
        const trust = JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Principal: { Federated: COGNITO }, Action: 'sts:AssumeRoleWithWebIdentity', Condition: { StringEquals: { [`${COGNITO}:aud`]: this.identityPoolId } } }],
        });
        try {
          await c.iam.send(new GetRoleCommand({ RoleName: GUEST_ROLE }));
          await c.iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: GUEST_ROLE, PolicyDocument: trust }));
        } catch {
          await c.iam.send(new CreateRoleCommand({ RoleName: GUEST_ROLE, AssumeRolePolicyDocument: trust }));
        }
        await c.cognito.send(new SetIdentityPoolRolesCommand({ IdentityPoolId: this.identityPoolId, Roles: { unauthenticated: `arn:aws:iam::${ACCOUNT}:role/${GUEST_ROLE}` } }));
      });
    } finally {
      for (const x of Object.values(c)) x.destroy();
    }
  }
}
