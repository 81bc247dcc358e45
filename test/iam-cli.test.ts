// `aws iam` and `aws sts` (CLI v1, botocore: an independent Query-protocol client with a strict XML
// parser) against Pinstream: a user's life from creation to deletion, inline policies shown decoded,
// roles with trust policies, paging, the caller's identity, and errors. The CLI runs as
// test/helpers/awscli.ts sets it up: nothing from ~/.aws leaks in, and every test is reported as
// skipped when the `aws` command is not installed.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aws as awsCli, awsOk as ok, skipUnlessAws, type AwsCredentials } from './helpers/awscli.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const ACCOUNT = '000000000000';

describe('aws iam / aws sts', () => {
  let t: TestServer;
  let tmp: string;

  /** Runs `aws <args>` against the test server with the given key (the admin's unless given). */
  const aws = (args: string[], creds: AwsCredentials = t.server.admin) => awsCli(args, { credentials: creds, endpoint: t.server.url });
  const iam = (...args: string[]) => aws(['iam', ...args]);

  before(async () => {
    t = await startTestServer();
    tmp = await mkdtemp(join(tmpdir(), 'pinstream-iamcli-'));
  });
  after(async () => {
    await t.close();
    await rm(tmp, { recursive: true, force: true });
  });

  const policy = {
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: ['mobiletargeting:PutEvents', 'mobiletargeting:UpdateEndpoint'], Resource: `arn:aws:mobiletargeting:us-east-1:${ACCOUNT}:apps/abc*` },
    ],
  };
  const trust = {
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: { Service: 'pinpoint.amazonaws.com' }, Action: 'sts:AssumeRole' }],
  };
  let key: { AccessKeyId: string; SecretAccessKey: string };

  test('create-user answers the User', async (c) => {
    if (await skipUnlessAws(c)) return;
    const u = ok(await iam('create-user', '--user-name', 'cli-user')).json.User;
    assert.equal(u.UserName, 'cli-user');
    assert.equal(u.Path, '/');
    assert.equal(u.Arn, `arn:aws:iam::${ACCOUNT}:user/cli-user`);
    assert.match(u.UserId, /^AIDA/);
    assert.match(u.CreateDate, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/);
  });

  test('create-access-key shows the secret; list-access-keys does not', async (c) => {
    if (await skipUnlessAws(c)) return;
    const k = ok(await iam('create-access-key', '--user-name', 'cli-user')).json.AccessKey;
    assert.equal(k.UserName, 'cli-user');
    assert.equal(k.Status, 'Active');
    assert.ok(k.SecretAccessKey.length >= 40);
    key = k;
    const listed = ok(await iam('list-access-keys', '--user-name', 'cli-user'));
    assert.deepEqual(
      listed.json.AccessKeyMetadata.map((m: any) => [m.UserName, m.AccessKeyId, m.Status]),
      [['cli-user', k.AccessKeyId, 'Active']],
    );
    assert.ok(!listed.stdout.includes(k.SecretAccessKey));
  });

  test('sts get-caller-identity, as the admin and with the new key', async (c) => {
    if (await skipUnlessAws(c)) return;
    const admin = ok(await aws(['sts', 'get-caller-identity'])).json;
    assert.equal(admin.Account, ACCOUNT);
    assert.equal(admin.Arn, `arn:aws:iam::${ACCOUNT}:user/admin`);
    const mine = ok(await aws(['sts', 'get-caller-identity'], { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey })).json;
    assert.equal(mine.Account, ACCOUNT);
    assert.equal(mine.Arn, `arn:aws:iam::${ACCOUNT}:user/cli-user`);
  });

  test('put-user-policy with inline JSON and with file://; get-user-policy shows the document decoded', async (c) => {
    if (await skipUnlessAws(c)) return;
    ok(await iam('put-user-policy', '--user-name', 'cli-user', '--policy-name', 'events', '--policy-document', JSON.stringify(policy)));
    const file = join(tmp, 'policy.json');
    await writeFile(file, JSON.stringify(policy, null, 2));
    ok(await iam('put-user-policy', '--user-name', 'cli-user', '--policy-name', 'from-file', '--policy-document', `file://${file}`));

    // botocore URL-decodes and parses policy documents, as AWS sends them URL-encoded.
    const got = ok(await iam('get-user-policy', '--user-name', 'cli-user', '--policy-name', 'events')).json;
    assert.equal(got.UserName, 'cli-user');
    assert.equal(got.PolicyName, 'events');
    assert.deepEqual(got.PolicyDocument, policy);
    assert.deepEqual(ok(await iam('get-user-policy', '--user-name', 'cli-user', '--policy-name', 'from-file')).json.PolicyDocument, policy);
    assert.deepEqual(ok(await iam('list-user-policies', '--user-name', 'cli-user')).json.PolicyNames, ['events', 'from-file']);
  });

  test('the new key can do what its policy allows only', async (c) => {
    if (await skipUnlessAws(c)) return;
    const r = await aws(['iam', 'list-users'], { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /\(AccessDenied\)/);
    assert.match(r.stderr, /iam:ListUsers/);
  });

  test('list-users lists admin and the new user; --max-items pages through Marker', async (c) => {
    if (await skipUnlessAws(c)) return;
    ok(await iam('create-user', '--user-name', 'cli-user-2'));
    const all = ok(await iam('list-users')).json.Users.map((u: any) => u.UserName);
    assert.deepEqual(all, ['admin', 'cli-user', 'cli-user-2']);
    const seen: string[] = [];
    let token: string | undefined;
    for (let i = 0; i < 5; i++) {
      const r = ok(await iam('list-users', '--max-items', '1', ...(token ? ['--starting-token', token] : []))).json;
      seen.push(...r.Users.map((u: any) => u.UserName));
      token = r.NextToken;
      if (!token) break;
    }
    assert.deepEqual(seen, all);
    ok(await iam('delete-user', '--user-name', 'cli-user-2'));
  });

  test('create-role with --assume-role-policy-document; get-role shows the trust policy decoded', async (c) => {
    if (await skipUnlessAws(c)) return;
    const created = ok(
      await iam('create-role', '--role-name', 'PinpointEventStreamRole', '--assume-role-policy-document', JSON.stringify(trust), '--description', 'event stream'),
    ).json.Role;
    assert.equal(created.Arn, `arn:aws:iam::${ACCOUNT}:role/PinpointEventStreamRole`);
    assert.deepEqual(created.AssumeRolePolicyDocument, trust);
    const role = ok(await iam('get-role', '--role-name', 'PinpointEventStreamRole')).json.Role;
    assert.equal(role.RoleName, 'PinpointEventStreamRole');
    assert.match(role.RoleId, /^AROA/);
    assert.equal(role.Description, 'event stream');
    assert.deepEqual(role.AssumeRolePolicyDocument, trust);
    const perms = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['kinesis:PutRecords', 'kinesis:DescribeStream'], Resource: [`arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/events`] }],
    };
    ok(await iam('put-role-policy', '--role-name', 'PinpointEventStreamRole', '--policy-name', 'PinpointEventStreamPermissionsPolicy', '--policy-document', JSON.stringify(perms)));
    assert.deepEqual(
      ok(await iam('get-role-policy', '--role-name', 'PinpointEventStreamRole', '--policy-name', 'PinpointEventStreamPermissionsPolicy')).json.PolicyDocument,
      perms,
    );
    assert.deepEqual(ok(await iam('list-role-policies', '--role-name', 'PinpointEventStreamRole')).json.PolicyNames, ['PinpointEventStreamPermissionsPolicy']);
    assert.ok(ok(await iam('list-roles')).json.Roles.some((r: any) => r.RoleName === 'PinpointEventStreamRole'));
  });

  test('update-access-key Inactive: the key stops working (InvalidClientTokenId); Active restores it', async (c) => {
    if (await skipUnlessAws(c)) return;
    const creds = { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey };
    ok(await iam('update-access-key', '--user-name', 'cli-user', '--access-key-id', key.AccessKeyId, '--status', 'Inactive'));
    const r = await aws(['sts', 'get-caller-identity'], creds);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /\(InvalidClientTokenId\)/);
    ok(await iam('update-access-key', '--user-name', 'cli-user', '--access-key-id', key.AccessKeyId, '--status', 'Active'));
    ok(await aws(['sts', 'get-caller-identity'], creds));
  });

  test('delete flow: delete-user conflicts until keys and policies are gone; delete-role likewise', async (c) => {
    if (await skipUnlessAws(c)) return;
    const conflict = await iam('delete-user', '--user-name', 'cli-user');
    assert.notEqual(conflict.code, 0);
    assert.match(conflict.stderr, /\(DeleteConflict\)/);
    ok(await iam('delete-access-key', '--user-name', 'cli-user', '--access-key-id', key.AccessKeyId));
    ok(await iam('delete-user-policy', '--user-name', 'cli-user', '--policy-name', 'events'));
    ok(await iam('delete-user-policy', '--user-name', 'cli-user', '--policy-name', 'from-file'));
    ok(await iam('delete-user', '--user-name', 'cli-user'));
    assert.deepEqual(ok(await iam('list-users')).json.Users.map((u: any) => u.UserName), ['admin']);

    const roleConflict = await iam('delete-role', '--role-name', 'PinpointEventStreamRole');
    assert.match(roleConflict.stderr, /\(DeleteConflict\)/);
    ok(await iam('delete-role-policy', '--role-name', 'PinpointEventStreamRole', '--policy-name', 'PinpointEventStreamPermissionsPolicy'));
    ok(await iam('delete-role', '--role-name', 'PinpointEventStreamRole'));
    assert.deepEqual(ok(await iam('list-roles')).json.Roles, []);
    // The deleted key no longer signs anything.
    const r = await aws(['sts', 'get-caller-identity'], { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey });
    assert.match(r.stderr, /\(InvalidClientTokenId\)/);
  });

  test('get-user --user-name nobody exits non-zero and names NoSuchEntity', async (c) => {
    if (await skipUnlessAws(c)) return;
    const r = await iam('get-user', '--user-name', 'nobody');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /An error occurred \(NoSuchEntity\) when calling the GetUser operation: The user with name nobody cannot be found/);
  });

  test('a malformed policy document is MalformedPolicyDocument with the reason', async (c) => {
    if (await skipUnlessAws(c)) return;
    ok(await iam('create-user', '--user-name', 'cli-bad-policy'));
    const r = await iam('put-user-policy', '--user-name', 'cli-bad-policy', '--policy-name', 'p', '--policy-document', '{"Statement":[{"Effect":"Allow","Action":"*"}]}');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /\(MalformedPolicyDocument\)/);
    assert.match(r.stderr, /Resource or NotResource/);
  });

  test('an error echoing a control character is still XML botocore can parse', async (c) => {
    if (await skipUnlessAws(c)) return;
    const r = await iam('create-user', '--user-name', 'bad\u0001name');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /An error occurred \(ValidationError\) when calling the CreateUser operation/);
  });
});
