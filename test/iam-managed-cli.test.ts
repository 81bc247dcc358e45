// The AWS CLI (v1, botocore's own Query and JSON clients) over the operations infrastructure tools
// call that issue 13 added: IAM managed policies and their versions, groups with attached policies,
// STS AssumeRole / GetSessionToken with the temporary credentials then used by the CLI itself
// (session token in AWS_SESSION_TOKEN), and Kinesis tags by ARN. Skipped with the reason when the
// `aws` command is not installed.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { aws as awsCli, awsOk as ok, skipUnlessAws, type AwsCredentials } from './helpers/awscli.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const ACCOUNT = '000000000000';

describe('aws iam managed policies and groups, aws sts temporary credentials (CLI)', () => {
  let t: TestServer;
  const aws = (args: string[], creds: AwsCredentials = t.server.admin) => awsCli(args, { credentials: creds, endpoint: t.server.url });
  const iam = (...args: string[]) => aws(['iam', ...args]);
  let user: AwsCredentials;
  let policyArn: string;

  const listStreams = {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: ['kinesis:ListStreams', 'kinesis:ListTagsForResource', 'kinesis:TagResource'], Resource: '*' }],
  };

  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    await t.close();
  });

  test('create-policy, create-policy-version, list-policy-versions: versions and the default', async (c) => {
    if (await skipUnlessAws(c)) return;
    const p = ok(await iam('create-policy', '--policy-name', 'cli-streams', '--policy-document', JSON.stringify({ ...listStreams, Statement: [{ ...listStreams.Statement[0], Action: 'kinesis:DescribeLimits' }] }))).json.Policy;
    assert.equal(p.Arn, `arn:aws:iam::${ACCOUNT}:policy/cli-streams`);
    assert.equal(p.DefaultVersionId, 'v1');
    assert.equal(p.AttachmentCount, 0);
    policyArn = p.Arn;
    const v2 = ok(await iam('create-policy-version', '--policy-arn', policyArn, '--policy-document', JSON.stringify(listStreams), '--set-as-default')).json.PolicyVersion;
    assert.equal(v2.VersionId, 'v2');
    assert.equal(v2.IsDefaultVersion, true);
    const versions = ok(await iam('list-policy-versions', '--policy-arn', policyArn)).json.Versions;
    assert.deepEqual(versions.map((v: any) => [v.VersionId, v.IsDefaultVersion]).sort(), [['v1', false], ['v2', true]]);
    const doc = ok(await iam('get-policy-version', '--policy-arn', policyArn, '--version-id', 'v2')).json.PolicyVersion.Document;
    assert.deepEqual(doc, listStreams, 'the CLI shows the document decoded');
  });

  test('a user allowed only through a group\'s attached policy can call Kinesis; removing them from the group takes it away', async (c) => {
    if (await skipUnlessAws(c)) return;
    ok(await iam('create-user', '--user-name', 'cli-member'));
    const k = ok(await iam('create-access-key', '--user-name', 'cli-member')).json.AccessKey;
    user = { accessKeyId: k.AccessKeyId, secretAccessKey: k.SecretAccessKey };
    const denied = await aws(['kinesis', 'list-streams'], user);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /AccessDeniedException/);

    ok(await iam('create-group', '--group-name', 'cli-readers'));
    ok(await iam('attach-group-policy', '--group-name', 'cli-readers', '--policy-arn', policyArn));
    ok(await iam('add-user-to-group', '--group-name', 'cli-readers', '--user-name', 'cli-member'));
    assert.deepEqual(ok(await iam('list-attached-group-policies', '--group-name', 'cli-readers')).json.AttachedPolicies, [{ PolicyName: 'cli-streams', PolicyArn: policyArn }]);
    assert.deepEqual(ok(await iam('list-groups-for-user', '--user-name', 'cli-member')).json.Groups.map((g: any) => g.GroupName), ['cli-readers']);
    assert.deepEqual(ok(await aws(['kinesis', 'list-streams'], user)).json.StreamNames, []);

    // A policy attached somewhere cannot be deleted (DeleteConflict), as AWS answers.
    const conflict = await iam('delete-policy', '--policy-arn', policyArn);
    assert.notEqual(conflict.code, 0);
    assert.match(conflict.stderr, /DeleteConflict/);

    ok(await iam('remove-user-from-group', '--group-name', 'cli-readers', '--user-name', 'cli-member'));
    assert.match((await aws(['kinesis', 'list-streams'], user)).stderr, /AccessDeniedException/);
  });

  test('sts assume-role: the CLI uses the ASIA key with its session token; get-caller-identity shows the assumed role', async (c) => {
    if (await skipUnlessAws(c)) return;
    const trust = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'sts:AssumeRole' }] };
    ok(await iam('create-role', '--role-name', 'cli-operator', '--assume-role-policy-document', JSON.stringify(trust)));
    ok(await iam('attach-role-policy', '--role-name', 'cli-operator', '--policy-arn', policyArn));
    assert.deepEqual(ok(await iam('list-attached-role-policies', '--role-name', 'cli-operator')).json.AttachedPolicies.map((p: any) => p.PolicyArn), [policyArn]);

    const out = ok(await aws(['sts', 'assume-role', '--role-arn', `arn:aws:iam::${ACCOUNT}:role/cli-operator`, '--role-session-name', 'cli-session', '--duration-seconds', '900'])).json;
    assert.match(out.Credentials.AccessKeyId, /^ASIA/);
    assert.equal(out.AssumedRoleUser.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/cli-operator/cli-session`);
    const session: AwsCredentials = { accessKeyId: out.Credentials.AccessKeyId, secretAccessKey: out.Credentials.SecretAccessKey, sessionToken: out.Credentials.SessionToken };
    assert.equal(ok(await aws(['sts', 'get-caller-identity'], session)).json.Arn, out.AssumedRoleUser.Arn);
    assert.deepEqual(ok(await aws(['kinesis', 'list-streams'], session)).json.StreamNames, []);
    // The role's policy allows ListStreams, not CreateStream.
    assert.match((await aws(['kinesis', 'create-stream', '--stream-name', 'nope', '--shard-count', '1'], session)).stderr, /AccessDeniedException/);
    // Without its token the ASIA key is not accepted.
    const tokenless = await aws(['kinesis', 'list-streams'], { accessKeyId: session.accessKeyId, secretAccessKey: session.secretAccessKey });
    assert.notEqual(tokenless.code, 0);
    assert.match(tokenless.stderr, /UnrecognizedClientException|security token/i);
  });

  test('sts get-session-token: the user\'s temporary credentials act as the user', async (c) => {
    if (await skipUnlessAws(c)) return;
    const out = ok(await aws(['sts', 'get-session-token', '--duration-seconds', '900'], user)).json;
    assert.match(out.Credentials.AccessKeyId, /^ASIA/);
    const session: AwsCredentials = { accessKeyId: out.Credentials.AccessKeyId, secretAccessKey: out.Credentials.SecretAccessKey, sessionToken: out.Credentials.SessionToken };
    assert.equal(ok(await aws(['sts', 'get-caller-identity'], session)).json.Arn, `arn:aws:iam::${ACCOUNT}:user/cli-member`);
  });

  test('kinesis tag-resource / list-tags-for-resource by stream ARN, and an invalid tag character refused as AWS words it', async (c) => {
    if (await skipUnlessAws(c)) return;
    ok(await aws(['kinesis', 'create-stream', '--stream-name', 'cli-tagged', '--shard-count', '1']));
    const arn = `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/cli-tagged`;
    ok(await aws(['kinesis', 'tag-resource', '--resource-arn', arn, '--tags', 'team=ingest,env=test']));
    const tags = ok(await aws(['kinesis', 'list-tags-for-resource', '--resource-arn', arn])).json.Tags;
    assert.deepEqual(tags, [{ Key: 'env', Value: 'test' }, { Key: 'team', Value: 'ingest' }]);
    const bad = await aws(['kinesis', 'tag-resource', '--resource-arn', arn, '--tags', 'team=a;b']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /InvalidArgumentException.*invalid characters/);
  });
});
