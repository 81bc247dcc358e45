// `aws iam` and `aws sts` (CLI v1, botocore: an independent Query-protocol client with a strict XML
// parser) against Pinstream: a user's life from creation to deletion, inline policies shown decoded,
// roles with trust policies, paging, the caller's identity, and errors. Nothing from ~/.aws may
// leak in; every test is reported as skipped when the `aws` command is not installed.

import { describe, test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, type TestServer } from './helpers/server.js';

const CLI_TIMEOUT_MS = 60_000;
const ACCOUNT = '000000000000';

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  json: any;
}

describe('aws iam / aws sts', () => {
  let t: TestServer;
  let tmp: string;
  let baseEnv: NodeJS.ProcessEnv;
  let awsAvailable = false;

  /** Runs `aws <args>` (asynchronously: the server runs in this process) with the given key. */
  const aws = (args: string[], creds = t.server.admin): Promise<CliResult> =>
    new Promise((resolve, reject) => {
      const env = { ...baseEnv, AWS_ACCESS_KEY_ID: creds.accessKeyId, AWS_SECRET_ACCESS_KEY: creds.secretAccessKey };
      const full = [...args, '--endpoint-url', t.server.url, '--region', 'us-east-1', '--output', 'json'];
      execFile('aws', full, { env, timeout: CLI_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(err); // ENOENT etc.
        if (err && (err as any).killed) return reject(new Error(`aws ${args.join(' ')} timed out\n${stderr}`));
        const code = err ? Number((err as any).code) : 0;
        let json: any;
        try {
          if (code === 0 && stdout.trim() !== '') json = JSON.parse(stdout);
        } catch {
          json = undefined; // not JSON (e.g. --version): the test looks at stdout
        }
        resolve({ code, stdout, stderr, json });
      });
    });
  const iam = (...args: string[]) => aws(['iam', ...args]);
  const ok = (r: CliResult) => {
    assert.equal(r.code, 0, `aws exited ${r.code}\nstderr: ${r.stderr}`);
    return r;
  };
  const skipUnlessAws = (c: TestContext): boolean => {
    if (awsAvailable) return false;
    c.skip('aws CLI not installed');
    return true;
  };

  before(async () => {
    t = await startTestServer();
    tmp = await mkdtemp(join(tmpdir(), 'pinstream-iamcli-'));
    baseEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_')) baseEnv[k] = v;
    Object.assign(baseEnv, {
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_PAGER: '',
    });
    try {
      awsAvailable = (await aws(['--version'])).code === 0;
    } catch {
      awsAvailable = false;
    }
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
    if (skipUnlessAws(c)) return;
    const u = ok(await iam('create-user', '--user-name', 'cli-user')).json.User;
    assert.equal(u.UserName, 'cli-user');
    assert.equal(u.Path, '/');
    assert.equal(u.Arn, `arn:aws:iam::${ACCOUNT}:user/cli-user`);
    assert.match(u.UserId, /^AIDA/);
    assert.match(u.CreateDate, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/);
  });

  test('create-access-key shows the secret; list-access-keys does not', async (c) => {
    if (skipUnlessAws(c)) return;
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
    if (skipUnlessAws(c)) return;
    const admin = ok(await aws(['sts', 'get-caller-identity'])).json;
    assert.equal(admin.Account, ACCOUNT);
    assert.equal(admin.Arn, `arn:aws:iam::${ACCOUNT}:user/admin`);
    const mine = ok(await aws(['sts', 'get-caller-identity'], { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey })).json;
    assert.equal(mine.Account, ACCOUNT);
    assert.equal(mine.Arn, `arn:aws:iam::${ACCOUNT}:user/cli-user`);
  });

  test('put-user-policy with inline JSON and with file://; get-user-policy shows the document decoded', async (c) => {
    if (skipUnlessAws(c)) return;
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
    if (skipUnlessAws(c)) return;
    const r = await aws(['iam', 'list-users'], { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /\(AccessDenied\)/);
    assert.match(r.stderr, /iam:ListUsers/);
  });

  test('list-users lists admin and the new user; --max-items pages through Marker', async (c) => {
    if (skipUnlessAws(c)) return;
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
    if (skipUnlessAws(c)) return;
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
    if (skipUnlessAws(c)) return;
    const creds = { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey };
    ok(await iam('update-access-key', '--user-name', 'cli-user', '--access-key-id', key.AccessKeyId, '--status', 'Inactive'));
    const r = await aws(['sts', 'get-caller-identity'], creds);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /\(InvalidClientTokenId\)/);
    ok(await iam('update-access-key', '--user-name', 'cli-user', '--access-key-id', key.AccessKeyId, '--status', 'Active'));
    ok(await aws(['sts', 'get-caller-identity'], creds));
  });

  test('delete flow: delete-user conflicts until keys and policies are gone; delete-role likewise', async (c) => {
    if (skipUnlessAws(c)) return;
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
    if (skipUnlessAws(c)) return;
    const r = await iam('get-user', '--user-name', 'nobody');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /An error occurred \(NoSuchEntity\) when calling the GetUser operation: The user with name nobody cannot be found/);
  });

  test('a malformed policy document is MalformedPolicyDocument with the reason', async (c) => {
    if (skipUnlessAws(c)) return;
    ok(await iam('create-user', '--user-name', 'cli-bad-policy'));
    const r = await iam('put-user-policy', '--user-name', 'cli-bad-policy', '--policy-name', 'p', '--policy-document', '{"Statement":[{"Effect":"Allow","Action":"*"}]}');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /\(MalformedPolicyDocument\)/);
    assert.match(r.stderr, /Resource or NotResource/);
  });

  test('an error echoing a control character is still XML botocore can parse', async (c) => {
    if (skipUnlessAws(c)) return;
    const r = await iam('create-user', '--user-name', 'bad\u0001name');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /An error occurred \(ValidationError\) when calling the CreateUser operation/);
  });
});
