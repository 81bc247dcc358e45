// The IAM and STS Query APIs through the official SDKs (@aws-sdk/client-iam, @aws-sdk/client-sts):
// every action's success shape, Marker paging, the errors with their SDK exception names and HTTP
// statuses, key deactivation and deletion taking effect, authorization of IAM calls themselves,
// and secrets: shown once, sealed at rest, never in the server's output.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  CreateAccessKeyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  DeleteAccessKeyCommand,
  DeleteRoleCommand,
  DeleteRolePolicyCommand,
  DeleteUserCommand,
  DeleteUserPolicyCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  GetUserCommand,
  GetUserPolicyCommand,
  IAMClient,
  ListAccessKeysCommand,
  ListRolePoliciesCommand,
  ListRolesCommand,
  ListUserPoliciesCommand,
  ListUsersCommand,
  PutRolePolicyCommand,
  PutUserPolicyCommand,
  UpdateAccessKeyCommand,
  type AccessKey,
  type User,
} from '@aws-sdk/client-iam';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { GetAppsCommand } from '@aws-sdk/client-pinpoint';
import { pinpointClient, startTestServer, type TestServer } from './helpers/server.js';
import { signedFetch } from './helpers/signed.js';
import { spawnServer, waitForExit } from './helpers/process.js';
import { MAX_USER_POLICY_BYTES } from '../src/iam/api.js';

const ACCOUNT = '000000000000';
type Creds = { accessKeyId: string; secretAccessKey: string };

let t: TestServer;
let iam: IAMClient;
let sts: STSClient;
const clients: Array<{ destroy(): void }> = [];

const iamAs = (credentials: Creds) => track(new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials, maxAttempts: 1 }));
const stsAs = (credentials: Creds) => track(new STSClient({ endpoint: t.server.url, region: 'us-east-1', credentials, maxAttempts: 1 }));
function track<C extends { destroy(): void }>(c: C): C {
  clients.push(c);
  return c;
}

before(async () => {
  t = await startTestServer();
  iam = iamAs(t.server.admin);
  sts = stsAs(t.server.admin);
});
after(async () => {
  for (const c of clients) c.destroy();
  await t.close();
});

/** Asserts an SDK error's name (the Query error Code, or the modeled exception), status and message. */
async function fails(p: Promise<unknown>, name: string, status: number, message?: RegExp): Promise<any> {
  let err: any;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected ${name}, but the call succeeded`);
  assert.equal(err.name, name, `expected ${name}, got ${err.name}: ${err.message}`);
  assert.equal(err.$metadata?.httpStatusCode, status, `HTTP status of ${name}`);
  if (message) assert.match(err.message, message);
  return err;
}

/** A raw Query call signed like the SDK signs it, to see exactly what goes over the wire. */
function rawQuery(credentials: Creds, params: Record<string, string>, service: 'iam' | 'sts' = 'iam') {
  const version = service === 'iam' ? '2010-05-08' : '2011-06-15';
  return signedFetch(t.server.url, {
    path: '/',
    service,
    credentials,
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body: new URLSearchParams({ Version: version, ...params }).toString(),
  });
}

let seq = 0;
const uniq = (prefix: string) => `${prefix}-${process.pid}-${++seq}`;

async function newUserWithKey(prefix = 'u'): Promise<{ name: string; key: AccessKey; creds: Creds }> {
  const name = uniq(prefix);
  await iam.send(new CreateUserCommand({ UserName: name }));
  const key = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
  return { name, key, creds: { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! } };
}

const doc = (statement: object | object[]) => JSON.stringify({ Version: '2012-10-17', Statement: statement });
const PINPOINT_TRUST = doc([{ Effect: 'Allow', Principal: { Service: 'pinpoint.amazonaws.com' }, Action: 'sts:AssumeRole' }]);

function assertUser(u: User | undefined, name: string, path = '/') {
  assert.ok(u, 'User is present');
  assert.equal(u.UserName, name);
  assert.equal(u.Path, path);
  assert.match(u.UserId!, /^AIDA[A-Z0-9]{17}$/);
  assert.equal(u.Arn, `arn:aws:iam::${ACCOUNT}:user${path}${name}`);
  assert.ok(u.CreateDate instanceof Date && !Number.isNaN(u.CreateDate.getTime()), 'CreateDate is a Date');
}

describe('users', () => {
  test('CreateUser, GetUser, ListUsers and DeleteUser answer the User shape', async () => {
    const name = uniq('alice');
    const created = (await iam.send(new CreateUserCommand({ UserName: name }))).User;
    assertUser(created, name);
    const got = (await iam.send(new GetUserCommand({ UserName: name }))).User;
    assertUser(got, name);
    assert.equal(got!.UserId, created!.UserId);
    assert.equal(got!.CreateDate!.getTime(), created!.CreateDate!.getTime());
    const listed = (await iam.send(new ListUsersCommand({}))).Users!.find((u) => u.UserName === name);
    assertUser(listed, name);
    assert.equal(listed!.UserId, created!.UserId);

    await iam.send(new DeleteUserCommand({ UserName: name }));
    await fails(iam.send(new GetUserCommand({ UserName: name })), 'NoSuchEntityException', 404, new RegExp(`user with name ${name} cannot be found`));
    assert.ok(!(await iam.send(new ListUsersCommand({}))).Users!.some((u) => u.UserName === name));
  });

  test('a Path shows in the ARN and filters ListUsers by PathPrefix', async () => {
    const name = uniq('pathed');
    const u = (await iam.send(new CreateUserCommand({ UserName: name, Path: '/team/ops/' }))).User;
    assertUser(u, name, '/team/ops/');
    const team = (await iam.send(new ListUsersCommand({ PathPrefix: '/team/' }))).Users!.map((x) => x.UserName);
    assert.deepEqual(team, [name]);
    await iam.send(new DeleteUserCommand({ UserName: name }));
  });

  test('GetUser without UserName answers the caller (the bootstrap admin)', async () => {
    assertUser((await iam.send(new GetUserCommand({}))).User, 'admin');
  });

  test('errors: EntityAlreadyExists 409, NoSuchEntity 404, ValidationError 400', async () => {
    const name = uniq('dup');
    await iam.send(new CreateUserCommand({ UserName: name }));
    await fails(iam.send(new CreateUserCommand({ UserName: name })), 'EntityAlreadyExistsException', 409, new RegExp(name));
    await fails(iam.send(new DeleteUserCommand({ UserName: 'nobody' })), 'NoSuchEntityException', 404, /nobody/);
    await fails(iam.send(new CreateUserCommand({ UserName: 'bad name!' })), 'ValidationError', 400, /userName/);
    await fails(iam.send(new CreateUserCommand({ UserName: 'x'.repeat(65) })), 'ValidationError', 400, /length less than or equal to 64/);
    await fails(iam.send(new CreateUserCommand({ UserName: uniq('p'), Path: 'no-slashes' })), 'ValidationError', 400, /path/);
    await iam.send(new DeleteUserCommand({ UserName: name }));
  });

  test('an error echoing characters XML cannot carry is still well-formed XML', async () => {
    const raw = await rawQuery(t.server.admin, { Action: 'CreateUser', UserName: 'bad\u0001name\u001f' });
    assert.equal(raw.status, 400);
    assert.match(raw.text, /<Code>ValidationError<\/Code>/);
    assert.ok(!/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(raw.text), `control characters in ${JSON.stringify(raw.text)}`);
    assert.ok(raw.text.includes('bad\ufffdname\ufffd'), 'the value is still recognizable');
  });

  test('the bootstrap admin cannot be deleted', async () => {
    await fails(iam.send(new DeleteUserCommand({ UserName: 'admin' })), 'DeleteConflictException', 409, /admin/);
    assertUser((await iam.send(new GetUserCommand({ UserName: 'admin' }))).User, 'admin');
  });

  test('DeleteUser with access keys or inline policies is a DeleteConflict (409) until they are gone', async () => {
    const { name, key } = await newUserWithKey('conflict');
    await iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'p', PolicyDocument: doc({ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }) }));
    await fails(iam.send(new DeleteUserCommand({ UserName: name })), 'DeleteConflictException', 409, /access keys/);
    await iam.send(new DeleteAccessKeyCommand({ UserName: name, AccessKeyId: key.AccessKeyId }));
    await fails(iam.send(new DeleteUserCommand({ UserName: name })), 'DeleteConflictException', 409, /policies/);
    await iam.send(new DeleteUserPolicyCommand({ UserName: name, PolicyName: 'p' }));
    await iam.send(new DeleteUserCommand({ UserName: name }));
    await fails(iam.send(new GetUserCommand({ UserName: name })), 'NoSuchEntityException', 404);
  });

  test('ListUsers pages with MaxItems and Marker; the pages hold every user exactly once', async () => {
    const prefix = `/paging${process.pid}/`;
    const names = ['pa', 'pb', 'pc', 'pd', 'pe'].map((n) => uniq(n));
    for (const n of names) await iam.send(new CreateUserCommand({ UserName: n, Path: prefix }));
    const seen: string[] = [];
    let marker: string | undefined;
    let pages = 0;
    do {
      const r = await iam.send(new ListUsersCommand({ PathPrefix: prefix, MaxItems: 2, Marker: marker }));
      pages++;
      assert.ok(r.Users!.length <= 2);
      seen.push(...r.Users!.map((u) => u.UserName!));
      assert.equal(r.IsTruncated, r.Marker !== undefined, 'a Marker comes exactly with IsTruncated');
      marker = r.IsTruncated ? r.Marker : undefined;
      assert.ok(pages <= 5, 'paging ends');
    } while (marker);
    assert.equal(pages, 3);
    assert.deepEqual(seen, [...names].sort());
    const all = await iam.send(new ListUsersCommand({ PathPrefix: prefix }));
    assert.equal(all.IsTruncated, false);
    assert.equal(all.Marker, undefined);
    await fails(iam.send(new ListUsersCommand({ MaxItems: 0 })), 'ValidationError', 400, /maxItems/);
    for (const n of names) await iam.send(new DeleteUserCommand({ UserName: n }));
  });
});

describe('access keys', () => {
  test('CreateAccessKey shows the secret once; ListAccessKeys never does', async () => {
    const name = uniq('keys');
    await iam.send(new CreateUserCommand({ UserName: name }));
    const key = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
    assert.equal(key.UserName, name);
    assert.match(key.AccessKeyId!, /^[A-Z0-9]{16,128}$/);
    assert.ok(key.SecretAccessKey && key.SecretAccessKey.length >= 40, 'a secret of AWS length');
    assert.equal(key.Status, 'Active');
    assert.ok(key.CreateDate instanceof Date);

    const listed = await iam.send(new ListAccessKeysCommand({ UserName: name }));
    assert.equal(listed.IsTruncated, false);
    assert.equal(listed.AccessKeyMetadata!.length, 1);
    const meta = listed.AccessKeyMetadata![0];
    assert.deepEqual(
      { UserName: meta.UserName, AccessKeyId: meta.AccessKeyId, Status: meta.Status, CreateDate: meta.CreateDate?.getTime() },
      { UserName: name, AccessKeyId: key.AccessKeyId, Status: 'Active', CreateDate: key.CreateDate!.getTime() },
    );
    // The SDK drops unmodeled members, so look at the wire itself.
    const raw = await rawQuery(t.server.admin, { Action: 'ListAccessKeys', UserName: name });
    assert.equal(raw.status, 200);
    assert.ok(raw.text.includes(key.AccessKeyId!));
    assert.ok(!raw.text.includes(key.SecretAccessKey!), 'ListAccessKeys must not carry the secret');
    assert.ok(!/SecretAccessKey/.test(raw.text));
    const rawUser = await rawQuery(t.server.admin, { Action: 'GetUser', UserName: name });
    assert.ok(!rawUser.text.includes(key.SecretAccessKey!));
  });

  test('the new key signs requests as its user: GetCallerIdentity needs no policy', async () => {
    const { name, creds } = await newUserWithKey('whoami');
    const me = await stsAs(creds).send(new GetCallerIdentityCommand({}));
    assert.equal(me.Account, ACCOUNT);
    assert.equal(me.Arn, `arn:aws:iam::${ACCOUNT}:user/${name}`);
    const u = (await iam.send(new GetUserCommand({ UserName: name }))).User!;
    assert.equal(me.UserId, u.UserId);
  });

  test('authentication failures carry the Query protocol codes IAM and STS use', async () => {
    const { creds } = await newUserWithKey('authfail');
    await fails(stsAs({ ...creds, secretAccessKey: creds.secretAccessKey + 'x' }).send(new GetCallerIdentityCommand({})), 'SignatureDoesNotMatch', 403);
    await fails(iamAs({ ...creds, accessKeyId: 'PSAKNOSUCHKEY0000000' }).send(new ListUsersCommand({})), 'InvalidClientTokenId', 403, /security token/);
    // An unsigned request is refused before its body is read, so the service is known from the
    // URL's Version (AWS tells IAM and STS apart by host name; this server has one).
    const unsigned = await fetch(t.server.url + '/?Version=2011-06-15', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'Action=GetCallerIdentity&Version=2011-06-15',
    });
    assert.equal(unsigned.status, 403);
    const text = await unsigned.text();
    assert.match(text, /<ErrorResponse xmlns="https:\/\/sts\.amazonaws\.com\/doc\/2011-06-15\/"><Error><Type>Sender<\/Type><Code>MissingAuthenticationToken<\/Code>/);
    const bodyOnly = await fetch(t.server.url + '/', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'Action=GetCallerIdentity&Version=2011-06-15',
    });
    assert.equal(bodyOnly.status, 403);
    assert.match(await bodyOnly.text(), /<ErrorResponse xmlns="[^"]+"><Error><Type>Sender<\/Type><Code>MissingAuthenticationToken<\/Code>/);
  });

  test('GetCallerIdentity for the bootstrap admin', async () => {
    const me = await sts.send(new GetCallerIdentityCommand({}));
    assert.equal(me.Account, ACCOUNT);
    assert.equal(me.Arn, `arn:aws:iam::${ACCOUNT}:user/admin`);
    assert.match(me.UserId!, /^AIDA/);
  });

  test('a third access key is a LimitExceeded (409)', async () => {
    const { name } = await newUserWithKey('limit');
    await iam.send(new CreateAccessKeyCommand({ UserName: name }));
    await fails(iam.send(new CreateAccessKeyCommand({ UserName: name })), 'LimitExceededException', 409, /AccessKeysPerUser: 2/);
    assert.equal((await iam.send(new ListAccessKeysCommand({ UserName: name }))).AccessKeyMetadata!.length, 2);
  });

  test('UpdateAccessKey Inactive makes the key fail (403 UnrecognizedClientException); Active restores it', async () => {
    const { name, key, creds } = await newUserWithKey('toggle');
    const pinpoint = track(pinpointClient({ url: t.server.url, admin: creds }));
    const mySts = stsAs(creds);
    await mySts.send(new GetCallerIdentityCommand({}));

    await iam.send(new UpdateAccessKeyCommand({ UserName: name, AccessKeyId: key.AccessKeyId, Status: 'Inactive' }));
    assert.equal((await iam.send(new ListAccessKeysCommand({ UserName: name }))).AccessKeyMetadata![0].Status, 'Inactive');
    await fails(pinpoint.send(new GetAppsCommand({})), 'UnrecognizedClientException', 403, /security token included in the request is invalid/);
    // The Query protocol spells the same failure InvalidClientTokenId, as IAM and STS do.
    await fails(mySts.send(new GetCallerIdentityCommand({})), 'InvalidClientTokenId', 403, /security token included in the request is invalid/);

    await iam.send(new UpdateAccessKeyCommand({ UserName: name, AccessKeyId: key.AccessKeyId, Status: 'Active' }));
    assert.equal((await mySts.send(new GetCallerIdentityCommand({}))).Arn, `arn:aws:iam::${ACCOUNT}:user/${name}`);
    // Active again, but the user has no policy: authenticated, then refused.
    await fails(pinpoint.send(new GetAppsCommand({})), 'ForbiddenException', 403, /mobiletargeting:GetApps/);

    await fails(
      iam.send(new UpdateAccessKeyCommand({ UserName: name, AccessKeyId: key.AccessKeyId, Status: 'Paused' as any })),
      'ValidationError',
      400,
      /Active, Inactive/,
    );
  });

  test('DeleteAccessKey revokes the key at once', async () => {
    const { name, key, creds } = await newUserWithKey('revoke');
    const mySts = stsAs(creds);
    await mySts.send(new GetCallerIdentityCommand({}));
    await iam.send(new DeleteAccessKeyCommand({ UserName: name, AccessKeyId: key.AccessKeyId }));
    await fails(mySts.send(new GetCallerIdentityCommand({})), 'InvalidClientTokenId', 403);
    await fails(track(pinpointClient({ url: t.server.url, admin: creds })).send(new GetAppsCommand({})), 'UnrecognizedClientException', 403);
    assert.deepEqual((await iam.send(new ListAccessKeysCommand({ UserName: name }))).AccessKeyMetadata, []);
    await fails(iam.send(new DeleteAccessKeyCommand({ UserName: name, AccessKeyId: key.AccessKeyId })), 'NoSuchEntityException', 404, /Access Key/);
  });

  test("a key is addressed through its own user only: another user's name is NoSuchEntity", async () => {
    const a = await newUserWithKey('owner');
    const b = uniq('other');
    await iam.send(new CreateUserCommand({ UserName: b }));
    await fails(iam.send(new UpdateAccessKeyCommand({ UserName: b, AccessKeyId: a.key.AccessKeyId, Status: 'Inactive' })), 'NoSuchEntityException', 404);
    await fails(iam.send(new DeleteAccessKeyCommand({ UserName: b, AccessKeyId: a.key.AccessKeyId })), 'NoSuchEntityException', 404);
    await stsAs(a.creds).send(new GetCallerIdentityCommand({}));
  });

  test('ListAccessKeys pages with MaxItems 1 and lists both keys, whatever their ids and creation order', async () => {
    const name = uniq('keypages');
    await iam.send(new CreateUserCommand({ UserName: name }));
    // Key ids are random; several rounds make it all but certain that some round creates the
    // keys in an order that differs from their id order.
    for (let round = 0; round < 12; round++) {
      const k1 = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!.AccessKeyId!;
      const k2 = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!.AccessKeyId!;
      const p1 = await iam.send(new ListAccessKeysCommand({ UserName: name, MaxItems: 1 }));
      assert.equal(p1.IsTruncated, true);
      assert.equal(p1.AccessKeyMetadata!.length, 1);
      const p2 = await iam.send(new ListAccessKeysCommand({ UserName: name, MaxItems: 1, Marker: p1.Marker }));
      assert.equal(p2.IsTruncated, false);
      const ids = [...p1.AccessKeyMetadata!, ...p2.AccessKeyMetadata!].map((k) => k.AccessKeyId!);
      assert.deepEqual([...ids].sort(), [k1, k2].sort(), `round ${round}: pages list ${ids.join(', ')}`);
      await iam.send(new DeleteAccessKeyCommand({ UserName: name, AccessKeyId: k1 }));
      await iam.send(new DeleteAccessKeyCommand({ UserName: name, AccessKeyId: k2 }));
    }
  });
});

describe('user policies', () => {
  const allowGetUser = (name: string) => doc([{ Effect: 'Allow', Action: 'iam:GetUser', Resource: `arn:aws:iam::${ACCOUNT}:user/${name}` }]);

  test('PutUserPolicy, GetUserPolicy (URL-encoded document), ListUserPolicies, DeleteUserPolicy', async () => {
    const name = uniq('pol');
    await iam.send(new CreateUserCommand({ UserName: name }));
    const document = allowGetUser(name);
    await iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'self', PolicyDocument: document }));
    await iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'another', PolicyDocument: document }));

    const got = await iam.send(new GetUserPolicyCommand({ UserName: name, PolicyName: 'self' }));
    assert.equal(got.UserName, name);
    assert.equal(got.PolicyName, 'self');
    // AWS returns policy documents URL-encoded (RFC 3986); the JS SDK hands them over as they came.
    assert.ok(got.PolicyDocument!.startsWith('%7B'), `encoded: ${got.PolicyDocument}`);
    assert.deepEqual(JSON.parse(decodeURIComponent(got.PolicyDocument!)), JSON.parse(document));

    const list = await iam.send(new ListUserPoliciesCommand({ UserName: name }));
    assert.deepEqual(list.PolicyNames, ['another', 'self']);
    assert.equal(list.IsTruncated, false);
    const page1 = await iam.send(new ListUserPoliciesCommand({ UserName: name, MaxItems: 1 }));
    assert.deepEqual(page1.PolicyNames, ['another']);
    assert.equal(page1.IsTruncated, true);
    const page2 = await iam.send(new ListUserPoliciesCommand({ UserName: name, MaxItems: 1, Marker: page1.Marker }));
    assert.deepEqual(page2.PolicyNames, ['self']);
    assert.equal(page2.IsTruncated, false);

    // Put again replaces the document.
    const replaced = doc({ Effect: 'Deny', Action: '*', Resource: '*' });
    await iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'self', PolicyDocument: replaced }));
    const again = await iam.send(new GetUserPolicyCommand({ UserName: name, PolicyName: 'self' }));
    assert.deepEqual(JSON.parse(decodeURIComponent(again.PolicyDocument!)), JSON.parse(replaced));

    await iam.send(new DeleteUserPolicyCommand({ UserName: name, PolicyName: 'self' }));
    await iam.send(new DeleteUserPolicyCommand({ UserName: name, PolicyName: 'another' }));
    assert.deepEqual((await iam.send(new ListUserPoliciesCommand({ UserName: name }))).PolicyNames, []);
    await fails(iam.send(new GetUserPolicyCommand({ UserName: name, PolicyName: 'self' })), 'NoSuchEntityException', 404, /self/);
    await fails(iam.send(new DeleteUserPolicyCommand({ UserName: name, PolicyName: 'self' })), 'NoSuchEntityException', 404, /self/);
    await fails(iam.send(new PutUserPolicyCommand({ UserName: 'nobody', PolicyName: 'p', PolicyDocument: document })), 'NoSuchEntityException', 404, /nobody/);
  });

  test('malformed documents are MalformedPolicyDocument (400) with a message naming the problem', async () => {
    const name = uniq('malformed');
    await iam.send(new CreateUserCommand({ UserName: name }));
    const put = (PolicyDocument: string) => iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'p', PolicyDocument }));
    await fails(put('{"Statement": ['), 'MalformedPolicyDocumentException', 400, /Syntax errors in policy/);
    await fails(put(doc({ Effect: 'Perhaps', Action: '*', Resource: '*' })), 'MalformedPolicyDocumentException', 400, /Effect must be "Allow" or "Deny"/);
    await fails(put(doc({ Effect: 'Allow', Action: '*' })), 'MalformedPolicyDocumentException', 400, /Resource or NotResource/);
    await fails(put(JSON.stringify({ Version: '2012-10-17' })), 'MalformedPolicyDocumentException', 400, /Statement/);
    await fails(put(doc({ Effect: 'Allow', Action: 'PutEvents', Resource: '*' })), 'MalformedPolicyDocumentException', 400, /action "PutEvents" must be prefixed by its service/);
    await fails(put(doc({ Effect: 'Allow', Action: 'kinesis:*', Resource: 'sa' })), 'MalformedPolicyDocumentException', 400, /resource "sa" must be in ARN format/);
    await fails(
      put(doc({ Effect: 'Allow', Action: '*', Resource: '*', Principal: { AWS: '*' } })),
      'MalformedPolicyDocumentException',
      400,
      /Principal is not allowed/,
    );
    assert.deepEqual((await iam.send(new ListUserPoliciesCommand({ UserName: name }))).PolicyNames, [], 'nothing was stored');
  });

  test('inline policies over 2048 bytes in total (whitespace not counted) are a LimitExceeded', async () => {
    const name = uniq('big');
    await iam.send(new CreateUserCommand({ UserName: name }));
    const sized = (bytes: number) => {
      const base = doc({ Effect: 'Allow', Action: 'iam:GetUser', Resource: 'arn:' });
      return doc({ Effect: 'Allow', Action: 'iam:GetUser', Resource: 'arn:' + 'r'.repeat(bytes - Buffer.byteLength(base)) });
    };
    assert.equal(Buffer.byteLength(sized(MAX_USER_POLICY_BYTES)), MAX_USER_POLICY_BYTES);
    await iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'exact', PolicyDocument: sized(MAX_USER_POLICY_BYTES) }));
    // Whitespace does not count: the same document pretty-printed still fits.
    const pretty = JSON.stringify(JSON.parse(sized(MAX_USER_POLICY_BYTES)), null, 4);
    await iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'exact', PolicyDocument: pretty }));
    await iam.send(new DeleteUserPolicyCommand({ UserName: name, PolicyName: 'exact' }));

    await fails(
      iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'over', PolicyDocument: sized(MAX_USER_POLICY_BYTES + 1) })),
      'LimitExceededException',
      409,
      /Maximum policy size of 2048 bytes/,
    );
    // The quota is the sum over the user's inline policies.
    await iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'half', PolicyDocument: sized(1100) }));
    await fails(
      iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'other-half', PolicyDocument: sized(1100) })),
      'LimitExceededException',
      409,
      /2048/,
    );
    // Replacing a policy counts its new size only.
    await iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'half', PolicyDocument: sized(2000) }));
    assert.deepEqual((await iam.send(new ListUserPoliciesCommand({ UserName: name }))).PolicyNames, ['half']);
  });
});

describe('roles', () => {
  test('CreateRole, GetRole, ListRoles answer the Role shape with the trust policy URL-encoded', async () => {
    const name = uniq('role');
    const created = (
      await iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: PINPOINT_TRUST, Description: 'streams', MaxSessionDuration: 7200 }))
    ).Role!;
    const check = (r: typeof created) => {
      assert.equal(r.RoleName, name);
      assert.equal(r.Path, '/');
      assert.match(r.RoleId!, /^AROA[A-Z0-9]{17}$/);
      assert.equal(r.Arn, `arn:aws:iam::${ACCOUNT}:role/${name}`);
      assert.ok(r.CreateDate instanceof Date);
      assert.equal(r.Description, 'streams');
      assert.equal(r.MaxSessionDuration, 7200);
      // As from AWS, the SDK gives the document URL-encoded.
      assert.ok(r.AssumeRolePolicyDocument!.startsWith('%7B'), r.AssumeRolePolicyDocument);
      assert.deepEqual(JSON.parse(decodeURIComponent(r.AssumeRolePolicyDocument!)), JSON.parse(PINPOINT_TRUST));
    };
    check(created);
    const got = (await iam.send(new GetRoleCommand({ RoleName: name }))).Role!;
    check(got);
    assert.equal(got.RoleId, created.RoleId);
    const listed = (await iam.send(new ListRolesCommand({}))).Roles!.find((r) => r.RoleName === name)!;
    check(listed);
  });

  test('role inline policies: Put, Get (URL-encoded), List, Delete; DeleteRole conflicts until they are gone', async () => {
    const name = uniq('rp');
    await iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: PINPOINT_TRUST }));
    const perms = doc([{ Effect: 'Allow', Action: ['kinesis:PutRecords', 'kinesis:DescribeStream'], Resource: [`arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/s`] }]);
    await iam.send(new PutRolePolicyCommand({ RoleName: name, PolicyName: 'PinpointEventStreamPermissionsPolicy', PolicyDocument: perms }));
    const got = await iam.send(new GetRolePolicyCommand({ RoleName: name, PolicyName: 'PinpointEventStreamPermissionsPolicy' }));
    assert.equal(got.RoleName, name);
    assert.equal(got.PolicyName, 'PinpointEventStreamPermissionsPolicy');
    assert.deepEqual(JSON.parse(decodeURIComponent(got.PolicyDocument!)), JSON.parse(perms));
    assert.deepEqual((await iam.send(new ListRolePoliciesCommand({ RoleName: name }))).PolicyNames, ['PinpointEventStreamPermissionsPolicy']);

    await fails(iam.send(new DeleteRoleCommand({ RoleName: name })), 'DeleteConflictException', 409, /policies/);
    await iam.send(new DeleteRolePolicyCommand({ RoleName: name, PolicyName: 'PinpointEventStreamPermissionsPolicy' }));
    await fails(iam.send(new GetRolePolicyCommand({ RoleName: name, PolicyName: 'PinpointEventStreamPermissionsPolicy' })), 'NoSuchEntityException', 404);
    await fails(iam.send(new DeleteRolePolicyCommand({ RoleName: name, PolicyName: 'PinpointEventStreamPermissionsPolicy' })), 'NoSuchEntityException', 404);
    await iam.send(new DeleteRoleCommand({ RoleName: name }));
    await fails(iam.send(new GetRoleCommand({ RoleName: name })), 'NoSuchEntityException', 404, new RegExp(`role with name ${name} cannot be found`));
    assert.ok(!(await iam.send(new ListRolesCommand({}))).Roles!.some((r) => r.RoleName === name));
  });

  test('role errors: duplicate, missing, malformed trust, trust too large, bad MaxSessionDuration', async () => {
    const name = uniq('rerr');
    await iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: PINPOINT_TRUST }));
    await fails(iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: PINPOINT_TRUST })), 'EntityAlreadyExistsException', 409, new RegExp(name));
    await fails(iam.send(new GetRoleCommand({ RoleName: 'nobody' })), 'NoSuchEntityException', 404);
    await fails(iam.send(new DeleteRoleCommand({ RoleName: 'nobody' })), 'NoSuchEntityException', 404);
    await fails(iam.send(new PutRolePolicyCommand({ RoleName: 'nobody', PolicyName: 'p', PolicyDocument: doc({ Effect: 'Allow', Action: '*', Resource: '*' }) })), 'NoSuchEntityException', 404);
    await fails(
      iam.send(new CreateRoleCommand({ RoleName: uniq('r'), AssumeRolePolicyDocument: doc({ Effect: 'Allow', Action: 'sts:AssumeRole' }) })),
      'MalformedPolicyDocumentException',
      400,
      /needs a Principal/,
    );
    await fails(
      iam.send(
        new CreateRoleCommand({
          RoleName: uniq('r'),
          AssumeRolePolicyDocument: doc({ Effect: 'Allow', Principal: { Service: 'x'.repeat(2100) }, Action: 'sts:AssumeRole' }),
        }),
      ),
      'LimitExceededException',
      409,
    );
    // Descriptions are limited as in AWS (and so stay printable in XML answers).
    await fails(
      iam.send(new CreateRoleCommand({ RoleName: uniq('r'), AssumeRolePolicyDocument: PINPOINT_TRUST, Description: 'bell\u0007' })),
      'ValidationError',
      400,
      /description/,
    );
    await fails(
      iam.send(new CreateRoleCommand({ RoleName: uniq('r'), AssumeRolePolicyDocument: PINPOINT_TRUST, Description: 'd'.repeat(1001) })),
      'ValidationError',
      400,
      /description/,
    );
    await fails(
      iam.send(new CreateRoleCommand({ RoleName: uniq('r'), AssumeRolePolicyDocument: PINPOINT_TRUST, MaxSessionDuration: 60 })),
      'ValidationError',
      400,
      /maxSessionDuration/,
    );
  });

  test('ListRoles pages with MaxItems and Marker', async () => {
    const prefix = `/rpaging${process.pid}/`;
    const names = ['ra', 'rb', 'rc'].map((n) => uniq(n));
    for (const n of names) await iam.send(new CreateRoleCommand({ RoleName: n, Path: prefix, AssumeRolePolicyDocument: PINPOINT_TRUST }));
    const p1 = await iam.send(new ListRolesCommand({ PathPrefix: prefix, MaxItems: 2 }));
    assert.equal(p1.IsTruncated, true);
    assert.equal(p1.Roles!.length, 2);
    assert.equal(p1.Roles![0].Arn, `arn:aws:iam::${ACCOUNT}:role${prefix}${p1.Roles![0].RoleName}`);
    const p2 = await iam.send(new ListRolesCommand({ PathPrefix: prefix, MaxItems: 2, Marker: p1.Marker }));
    assert.equal(p2.IsTruncated, false);
    assert.deepEqual([...p1.Roles!, ...p2.Roles!].map((r) => r.RoleName), [...names].sort());
  });
});

describe('authorization of IAM calls', () => {
  test('a key without any policy is refused every IAM action with AccessDenied naming action and resource', async () => {
    const { name, creds } = await newUserWithKey('nopolicy');
    const mine = iamAs(creds);
    const e = await fails(mine.send(new ListUsersCommand({})), 'AccessDenied', 403);
    assert.match(e.message, /iam:ListUsers/);
    assert.match(e.message, new RegExp(`arn:aws:iam::${ACCOUNT}:user/\\*`));
    assert.match(e.message, new RegExp(`User: arn:aws:iam::${ACCOUNT}:user/${name} is not authorized`));
    await fails(mine.send(new CreateUserCommand({ UserName: 'mallory' })), 'AccessDenied', 403, new RegExp(`iam:CreateUser on resource: arn:aws:iam::${ACCOUNT}:user/mallory`));
    await fails(mine.send(new GetUserCommand({})), 'AccessDenied', 403, new RegExp(`iam:GetUser on resource: arn:aws:iam::${ACCOUNT}:user/${name}`));
    await fails(mine.send(new CreateAccessKeyCommand({ UserName: 'admin' })), 'AccessDenied', 403, /iam:CreateAccessKey/);
    await fails(mine.send(new ListRolesCommand({})), 'AccessDenied', 403, new RegExp(`iam:ListRoles on resource: arn:aws:iam::${ACCOUNT}:role/\\*`));
    await fails(
      mine.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'escalate', PolicyDocument: doc({ Effect: 'Allow', Action: '*', Resource: '*' }) })),
      'AccessDenied',
      403,
      /iam:PutUserPolicy/,
    );
    assert.deepEqual((await iam.send(new ListUserPoliciesCommand({ UserName: name }))).PolicyNames, [], 'the refused policy was not stored');
    // The raw XML error: Code AccessDenied, Type Sender.
    const raw = await rawQuery(creds, { Action: 'ListUsers' });
    assert.equal(raw.status, 403);
    assert.match(raw.text, /<ErrorResponse xmlns="https:\/\/iam\.amazonaws\.com\/doc\/2010-05-08\/"><Error><Type>Sender<\/Type><Code>AccessDenied<\/Code><Message>[^<]*iam:ListUsers/);
  });

  test('refusals do not reveal whether another user or key exists', async () => {
    const { creds } = await newUserWithKey('prober');
    const mine = iamAs(creds);
    const adminKey = t.server.admin.accessKeyId;
    // Whether or not the key id belongs to admin, the answer is the same AccessDenied.
    for (const id of [adminKey, 'PSAKDOESNOTEXIST000']) {
      await fails(mine.send(new UpdateAccessKeyCommand({ UserName: 'admin', AccessKeyId: id, Status: 'Inactive' })), 'AccessDenied', 403, /iam:UpdateAccessKey/);
      await fails(mine.send(new DeleteAccessKeyCommand({ UserName: 'admin', AccessKeyId: id })), 'AccessDenied', 403, /iam:DeleteAccessKey/);
    }
    for (const user of ['admin', 'nobody']) {
      await fails(mine.send(new GetUserCommand({ UserName: user })), 'AccessDenied', 403);
      await fails(mine.send(new ListAccessKeysCommand({ UserName: user })), 'AccessDenied', 403);
    }
    await sts.send(new GetCallerIdentityCommand({}));
  });

  test('a policy grants exactly its actions on its resources; an explicit Deny wins', async () => {
    const { name, creds } = await newUserWithKey('scoped');
    const self = `arn:aws:iam::${ACCOUNT}:user/${name}`;
    await iam.send(
      new PutUserPolicyCommand({
        UserName: name,
        PolicyName: 'self-service',
        PolicyDocument: doc([
          { Effect: 'Allow', Action: ['iam:GetUser', 'iam:ListAccessKeys', 'iam:CreateAccessKey', 'iam:UpdateAccessKey'], Resource: self },
          { Effect: 'Allow', Action: 'iam:ListUsers', Resource: '*' },
          { Effect: 'Deny', Action: 'iam:UpdateAccessKey', Resource: '*' },
        ]),
      }),
    );
    const mine = iamAs(creds);
    assertUser((await mine.send(new GetUserCommand({}))).User, name);
    assert.equal((await mine.send(new ListAccessKeysCommand({}))).AccessKeyMetadata!.length, 1);
    assert.ok((await mine.send(new ListUsersCommand({}))).Users!.some((u) => u.UserName === name));
    await fails(mine.send(new GetUserCommand({ UserName: 'admin' })), 'AccessDenied', 403, /arn:aws:iam::000000000000:user\/admin because no identity-based policy allows/);
    const mykey = (await mine.send(new ListAccessKeysCommand({}))).AccessKeyMetadata![0].AccessKeyId;
    await fails(
      mine.send(new UpdateAccessKeyCommand({ AccessKeyId: mykey, Status: 'Inactive' })),
      'AccessDenied',
      403,
      /iam:UpdateAccessKey .*with an explicit deny/,
    );
    // A second key made by the user itself works.
    const second = (await mine.send(new CreateAccessKeyCommand({}))).AccessKey!;
    assert.equal(second.UserName, name);
    const me = await stsAs({ accessKeyId: second.AccessKeyId!, secretAccessKey: second.SecretAccessKey! }).send(new GetCallerIdentityCommand({}));
    assert.equal(me.Arn, self);
  });

  test('a user with a path is authorized and named by its full ARN, path included', async () => {
    const name = uniq('pathed-caller');
    await iam.send(new CreateUserCommand({ UserName: name, Path: '/division/team/' }));
    const arn = `arn:aws:iam::${ACCOUNT}:user/division/team/${name}`;
    const policy = doc([{ Effect: 'Allow', Action: ['iam:GetUser', 'iam:ListAccessKeys'], Resource: arn }]);
    await iam.send(new PutUserPolicyCommand({ UserName: name, PolicyName: 'self', PolicyDocument: policy }));
    const key = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
    const creds = { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! };
    const mine = iamAs(creds);
    assert.equal((await mine.send(new GetUserCommand({}))).User!.Arn, arn);
    assert.equal((await mine.send(new ListAccessKeysCommand({}))).AccessKeyMetadata!.length, 1);
    assert.equal((await stsAs(creds).send(new GetCallerIdentityCommand({}))).Arn, arn);
    await fails(mine.send(new ListUsersCommand({})), 'AccessDenied', 403, new RegExp(`^User: ${arn} is not authorized to perform: iam:ListUsers`));
    // CreateUser is authorized on the ARN the new user will have.
    await fails(
      mine.send(new CreateUserCommand({ UserName: 'newbie', Path: '/division/' })),
      'AccessDenied',
      403,
      new RegExp(`iam:CreateUser on resource: arn:aws:iam::${ACCOUNT}:user/division/newbie `),
    );
  });

  test('unknown actions are InvalidAction (400)', async () => {
    const raw = await rawQuery(t.server.admin, { Action: 'CreateLoginProfile', UserName: 'admin' });
    assert.equal(raw.status, 400);
    assert.match(raw.text, /<Code>InvalidAction<\/Code>/);
  });
});

describe('the bootstrap admin key', () => {
  test('has full access; configuring a different key revokes the previous bootstrap key, not keys made through IAM', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-bootstrap-'));
    const k1 = { accessKeyId: 'BOOTSTRAPKEYONE00000', secretAccessKey: 'first-secret-of-forty-characters-000000' };
    const k2 = { accessKeyId: 'BOOTSTRAPKEYTWO00000', secretAccessKey: 'second-secret-of-forty-characters-00000' };
    const start = (admin: Creds) => startTestServer({ dataDir, config: { adminAccessKeyId: admin.accessKeyId, adminSecretAccessKey: admin.secretAccessKey } });
    try {
      const first = await start(k1);
      let extra: Creds;
      try {
        const c = new IAMClient({ endpoint: first.server.url, region: 'us-east-1', credentials: k1, maxAttempts: 1 });
        // Full access: IAM, and it may make itself another key.
        const key = (await c.send(new CreateAccessKeyCommand({}))).AccessKey!;
        extra = { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! };
        c.destroy();
      } finally {
        await first.close();
      }

      const second = await start(k2);
      try {
        const who = async (creds: Creds) => {
          const c = new STSClient({ endpoint: second.server.url, region: 'us-east-1', credentials: creds, maxAttempts: 1 });
          try {
            return await c.send(new GetCallerIdentityCommand({}));
          } finally {
            c.destroy();
          }
        };
        assert.equal((await who(k2)).Arn, `arn:aws:iam::${ACCOUNT}:user/admin`);
        await fails(who(k1), 'InvalidClientTokenId', 403);
        assert.equal((await who(extra)).Arn, `arn:aws:iam::${ACCOUNT}:user/admin`, 'a key made through IAM stays');
      } finally {
        await second.close();
      }
      // Restarting with the same configured key changes nothing.
      const third = await start(k2);
      try {
        const c = new IAMClient({ endpoint: third.server.url, region: 'us-east-1', credentials: k2, maxAttempts: 1 });
        const ids = (await c.send(new ListAccessKeysCommand({}))).AccessKeyMetadata!.map((k) => k.AccessKeyId).sort();
        assert.deepEqual(ids, [k2.accessKeyId, extra.accessKeyId].sort());
        c.destroy();
      } finally {
        await third.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('secrets at rest', () => {
  /** Every file under dir, recursively. */
  async function files(dir: string): Promise<string[]> {
    const out: string[] = [];
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) out.push(...(await files(p)));
      else if (e.isFile()) out.push(p);
    }
    return out;
  }

  test('no column of access_keys (nor any file of the data directory) holds a secret in plaintext', async () => {
    const { key } = await newUserWithKey('atrest');
    const secret = key.SecretAccessKey!;
    const adminSecret = t.server.admin.secretAccessKey;
    const db = new Database(join(t.dataDir, 'pinstream.db'), { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare('SELECT * FROM access_keys').all() as Array<Record<string, unknown>>;
      assert.ok(rows.some((r) => r.access_key_id === key.AccessKeyId), 'the key row is visible');
      for (const row of rows) {
        for (const [column, value] of Object.entries(row)) {
          const bytes = Buffer.isBuffer(value) ? value : Buffer.from(String(value));
          for (const s of [secret, adminSecret]) {
            assert.ok(!bytes.includes(Buffer.from(s)), `access_keys.${column} holds a secret in plaintext`);
            assert.ok(!bytes.toString('latin1').includes(Buffer.from(s).toString('base64')), `access_keys.${column} holds a secret in base64`);
          }
        }
      }
    } finally {
      db.close();
    }
    // Nor anywhere else: the WAL, the master key file, the logs.
    for (const f of await files(t.dataDir)) {
      const bytes = await readFile(f);
      assert.ok(!bytes.includes(Buffer.from(secret)), `${f} holds the secret in plaintext`);
      assert.ok(!bytes.includes(Buffer.from(adminSecret)), `${f} holds the admin secret in plaintext`);
    }
    // The master key is readable by its owner only.
    assert.equal((await stat(join(t.dataDir, 'master.key'))).mode & 0o077, 0);
  });
});

describe('server output', () => {
  test("a spawned server never prints a created user's secret, whatever the calls do", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-iam-log-'));
    const p = await spawnServer({ PINSTREAM_DATA_DIR: dataDir });
    try {
      const admin = { accessKeyId: p.accessKeyId, secretAccessKey: p.secretAccessKey! };
      const client = new IAMClient({ endpoint: p.url, region: 'us-east-1', credentials: admin, maxAttempts: 1 });
      const name = 'logged';
      await client.send(new CreateUserCommand({ UserName: name }));
      const key = (await client.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
      const creds = { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! };
      const mine = new IAMClient({ endpoint: p.url, region: 'us-east-1', credentials: creds, maxAttempts: 1 });
      // Successes, refusals, bad signatures, deactivated keys.
      await new STSClient({ endpoint: p.url, region: 'us-east-1', credentials: creds, maxAttempts: 1 }).send(new GetCallerIdentityCommand({}));
      await assert.rejects(mine.send(new ListUsersCommand({})));
      const wrong = new IAMClient({ endpoint: p.url, region: 'us-east-1', credentials: { ...creds, secretAccessKey: creds.secretAccessKey + 'x' }, maxAttempts: 1 });
      await assert.rejects(wrong.send(new GetUserCommand({})));
      await client.send(new UpdateAccessKeyCommand({ UserName: name, AccessKeyId: key.AccessKeyId, Status: 'Inactive' }));
      await assert.rejects(mine.send(new GetUserCommand({})));
      for (const c of [client, mine, wrong]) c.destroy();
      p.child.kill('SIGTERM');
      await waitForExit(p.child);
      assert.ok(p.output().includes(p.accessKeyId), 'the output was captured');
      assert.ok(!p.output().includes(key.SecretAccessKey!), `the server printed a secret:\n${p.output()}`);
    } finally {
      if (p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGKILL');
        await waitForExit(p.child);
      }
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
