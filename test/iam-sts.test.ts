// STS AssumeRole and GetSessionToken through the official SDKs against a real server with an
// injected clock: ASIA… temporary credentials that work on every protocol (Kinesis JSON, Pinpoint
// restJson1, STS Query) as the assumed role or the user, a session policy that narrows what the
// role allows, forged, missing and mismatched tokens refused as AWS refuses them, expiry
// (ExpiredToken), persistence across a restart, and the removal of long-expired sessions.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { CreateAccessKeyCommand, CreatePolicyCommand, CreateRoleCommand, CreateUserCommand, IAMClient, ListUsersCommand, PutRolePolicyCommand, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { AssumeRoleCommand, GetCallerIdentityCommand, GetSessionTokenCommand, STSClient } from '@aws-sdk/client-sts';
import { CreateStreamCommand, KinesisClient, ListStreamsCommand } from '@aws-sdk/client-kinesis';
import { CreateAppCommand, PinpointClient, PutEventsCommand } from '@aws-sdk/client-pinpoint';
import { ManualClock } from '../src/clock.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { rejection } from './helpers/rejection.js';
import { EXPIRED_SESSION_RETENTION_MS } from '../src/iam/store.js';
import { DEFAULT_SESSION_TOKEN_SECONDS, MAX_CHAINED_SESSION_SECONDS, MAX_SESSION_POLICY_ARNS } from '../src/iam/api.js';

const ACCOUNT = '000000000000';
const REGION = 'us-east-1';
const INVALID = 'The security token included in the request is invalid.';
const EXPIRED = 'The security token included in the request is expired';
type Creds = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

const doc = (...Statement: object[]) => JSON.stringify({ Version: '2012-10-17', Statement });

let dataDir: string;
let clock: ManualClock;
let t: TestServer;
const clients: Array<{ destroy(): void }> = [];
const track = <C extends { destroy(): void }>(c: C) => (clients.push(c), c);
// The SDKs sign with the machine's clock; the server's is the injected one: the offset keeps them together.
const common = (credentials: Creds) => ({ endpoint: t.server.url, region: REGION, credentials, maxAttempts: 1, systemClockOffset: clock.now() - Date.now() });
const iamAs = (c: Creds) => track(new IAMClient(common(c)));
const stsAs = (c: Creds) => track(new STSClient(common(c)));
const kinesisAs = (c: Creds) => track(new KinesisClient(common(c)));
const pinpointAs = (c: Creds) => track(new PinpointClient(common(c)));
const toCreds = (c: { AccessKeyId?: string; SecretAccessKey?: string; SessionToken?: string }): Creds => ({
  accessKeyId: c.AccessKeyId!,
  secretAccessKey: c.SecretAccessKey!,
  sessionToken: c.SessionToken!,
});

let alice: Creds;
let appId: string;

async function start() {
  t = await startTestServer({ clock, dataDir });
}

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'pinstream-sts-'));
  clock = new ManualClock(Date.now());
  await start();
  const admin = iamAs(t.server.admin);
  await admin.send(new CreateUserCommand({ UserName: 'alice' }));
  // Alice's own policies allow nothing but assuming roles: what she does, she does as the role.
  await admin.send(new PutUserPolicyCommand({ UserName: 'alice', PolicyName: 'assume', PolicyDocument: doc({ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: '*' }) }));
  const k = (await admin.send(new CreateAccessKeyCommand({ UserName: 'alice' }))).AccessKey!;
  alice = { accessKeyId: k.AccessKeyId!, secretAccessKey: k.SecretAccessKey! };
  const trustAlice = doc({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:user/alice` }, Action: 'sts:AssumeRole' });
  await admin.send(new CreateRoleCommand({ RoleName: 'writer', AssumeRolePolicyDocument: trustAlice, MaxSessionDuration: 7200 }));
  await admin.send(new PutRolePolicyCommand({ RoleName: 'writer', PolicyName: 'all', PolicyDocument: doc({ Effect: 'Allow', Action: ['kinesis:*', 'mobiletargeting:*', 'sts:AssumeRole'], Resource: '*' }) }));
  // Trusts the account: then the caller's own policies must allow sts:AssumeRole too.
  await admin.send(new CreateRoleCommand({ RoleName: 'account', AssumeRolePolicyDocument: doc({ Effect: 'Allow', Principal: { AWS: ACCOUNT }, Action: 'sts:AssumeRole' }) }));
  await admin.send(new CreateRoleCommand({ RoleName: 'service-only', AssumeRolePolicyDocument: doc({ Effect: 'Allow', Principal: { Service: 'pinpoint.amazonaws.com' }, Action: 'sts:AssumeRole' }) }));
  appId = (await pinpointAs(t.server.admin).send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'sts-app' } }))).ApplicationResponse!.Id!;
});
after(async () => {
  for (const c of clients) c.destroy();
  await t.close();
  await rm(dataDir, { recursive: true, force: true });
});

const assume = (input: Partial<ConstructorParameters<typeof AssumeRoleCommand>[0]> = {}, as: Creds = alice) =>
  stsAs(as).send(new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${ACCOUNT}:role/writer`, RoleSessionName: 'alice-session', ...input }));

const putEvent = (c: Creds) =>
  pinpointAs(c).send(
    new PutEventsCommand({
      ApplicationId: appId,
      EventsRequest: { BatchItem: { ep1: { Endpoint: {}, Events: { e1: { EventType: 'sts.test', Timestamp: new Date(clock.now()).toISOString() } } } } },
    }),
  );

describe('AssumeRole', () => {
  test('returns ASIA credentials that act as the role on Kinesis and Pinpoint, and say so in GetCallerIdentity', async () => {
    const out = await assume();
    const c = out.Credentials!;
    assert.match(c.AccessKeyId!, /^ASIA[A-Z2-7]{16}$/);
    assert.ok(c.SecretAccessKey && c.SessionToken);
    assert.equal(c.Expiration!.getTime(), Math.floor(clock.now() / 1000) * 1000 + 3600_000);
    assert.equal(out.AssumedRoleUser!.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/writer/alice-session`);
    assert.match(out.AssumedRoleUser!.AssumedRoleId!, /^AROA[A-Z0-9]{17}:alice-session$/);
    const creds = toCreds(c);
    const who = await stsAs(creds).send(new GetCallerIdentityCommand({}));
    assert.equal(who.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/writer/alice-session`);
    assert.equal(who.UserId, out.AssumedRoleUser!.AssumedRoleId);
    // Alice herself may not touch Kinesis; the role may.
    assert.equal((await rejection(() => kinesisAs(alice).send(new ListStreamsCommand({})))).name, 'AccessDeniedException');
    await kinesisAs(creds).send(new CreateStreamCommand({ StreamName: 'by-role', ShardCount: 1 }));
    assert.ok((await kinesisAs(creds).send(new ListStreamsCommand({}))).StreamNames!.includes('by-role'));
    const put = await putEvent(creds);
    assert.equal(put.EventsResponse!.Results!.ep1.EventsItemResponse!.e1.StatusCode, 202);
  });

  test('a session policy narrows: only what both the role and the session policy allow', async () => {
    const narrow = doc({ Effect: 'Allow', Action: 'kinesis:ListStreams', Resource: '*' });
    const out = await assume({ Policy: narrow, RoleSessionName: 'narrow' });
    assert.ok(out.PackedPolicySize! > 0 && out.PackedPolicySize! <= 100);
    const creds = toCreds(out.Credentials!);
    await kinesisAs(creds).send(new ListStreamsCommand({}));
    const err = await rejection(() => kinesisAs(creds).send(new CreateStreamCommand({ StreamName: 'narrowed', ShardCount: 1 })));
    assert.equal(err.name, 'AccessDeniedException');
    assert.match(err.message, /assumed-role\/writer\/narrow is not authorized to perform: kinesis:CreateStream .*because no session policy allows the kinesis:CreateStream action/);
    assert.equal((await rejection(() => putEvent(creds))).name, 'ForbiddenException'); // Pinpoint's name for a refusal
    // A session policy grants nothing the role lacks.
    const wide = await assume({ Policy: doc({ Effect: 'Allow', Action: '*', Resource: '*' }), RoleSessionName: 'wide' });
    assert.equal((await rejection(() => iamAs(toCreds(wide.Credentials!)).send(new ListUsersCommand({})))).name, 'AccessDenied');
    // An explicit deny in the session policy wins.
    const deny = await assume({ Policy: doc({ Effect: 'Allow', Action: '*', Resource: '*' }, { Effect: 'Deny', Action: 'kinesis:ListStreams', Resource: '*' }), RoleSessionName: 'deny' });
    const denied = await rejection(() => kinesisAs(toCreds(deny.Credentials!)).send(new ListStreamsCommand({})));
    assert.match(denied.message, /explicit deny in a session policy/);
  });

  test(`PolicyArns: managed policies as the session policy (at most ${MAX_SESSION_POLICY_ARNS})`, async () => {
    const admin = iamAs(t.server.admin);
    const p = (await admin.send(new CreatePolicyCommand({ PolicyName: 'session-list', PolicyDocument: doc({ Effect: 'Allow', Action: 'kinesis:ListStreams', Resource: '*' }) }))).Policy!;
    const creds = toCreds((await assume({ PolicyArns: [{ arn: p.Arn }], RoleSessionName: 'managed' })).Credentials!);
    await kinesisAs(creds).send(new ListStreamsCommand({}));
    assert.equal((await rejection(() => kinesisAs(creds).send(new CreateStreamCommand({ StreamName: 'managed-narrowed', ShardCount: 1 })))).name, 'AccessDeniedException');
    const many = Array.from({ length: MAX_SESSION_POLICY_ARNS + 1 }, () => ({ arn: p.Arn }));
    assert.equal((await rejection(() => assume({ PolicyArns: many }))).name, 'ValidationError');
    assert.equal((await rejection(() => assume({ PolicyArns: [{ arn: `arn:aws:iam::${ACCOUNT}:policy/none` }] }))).name, 'InvalidParameterValue');
  });

  test('malformed or oversized session policies are refused', async () => {
    const bad = await rejection(() => assume({ Policy: '{"Statement":[{"Effect":"Allow","Action":"x"}]}' }));
    assert.equal(bad.name, 'MalformedPolicyDocumentException'); // the SDK's name for STS's MalformedPolicyDocument
    const big = doc(...Array.from({ length: 40 }, (_, i) => ({ Effect: 'Allow', Action: `kinesis:ListStreams${i}`, Resource: `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/s${i}` })));
    const tooBig = await rejection(() => assume({ Policy: big }));
    assert.equal(tooBig.name, 'PackedPolicyTooLargeException');
    assert.equal(tooBig.$metadata.httpStatusCode, 400);
  });

  test('DurationSeconds: 900 up to the role maximum; RoleSessionName pattern and length', async () => {
    const min = await assume({ DurationSeconds: 900 });
    assert.equal(min.Credentials!.Expiration!.getTime(), Math.floor(clock.now() / 1000) * 1000 + 900_000);
    await assume({ DurationSeconds: 7200 });
    const over = await rejection(() => assume({ DurationSeconds: 7201 }));
    assert.equal(over.name, 'ValidationError');
    assert.equal(over.message, 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
    for (const d of [899, 43201]) assert.equal((await rejection(() => assume({ DurationSeconds: d }))).name, 'ValidationError');
    for (const name of ['a', 'x'.repeat(65), 'has space', 'slash/no']) {
      const e = await rejection(() => assume({ RoleSessionName: name }));
      assert.equal(e.name, 'ValidationError', name);
      assert.match(e.message, /roleSessionName/);
    }
  });

  test('trust: a role that does not trust the caller, a service-only role and a missing role are all AccessDenied alike', async () => {
    for (const arn of [`arn:aws:iam::${ACCOUNT}:role/service-only`, `arn:aws:iam::${ACCOUNT}:role/no-such-role`]) {
      const e = await rejection(() => assume({ RoleArn: arn }));
      assert.equal(e.name, 'AccessDenied');
      assert.equal(e.$metadata.httpStatusCode, 403);
      assert.match(e.message, new RegExp(`^User: arn:aws:iam::${ACCOUNT}:user/alice is not authorized to perform: sts:AssumeRole on resource: ${arn.replace(/[/]/g, '\\/')}`));
    }
  });

  test("trusting the account delegates to the caller's own policies", async () => {
    const arn = `arn:aws:iam::${ACCOUNT}:role/account`;
    await assume({ RoleArn: arn }); // alice's policy allows sts:AssumeRole on *
    const admin = iamAs(t.server.admin);
    await admin.send(new CreateUserCommand({ UserName: 'bob' }));
    const k = (await admin.send(new CreateAccessKeyCommand({ UserName: 'bob' }))).AccessKey!;
    const bob = { accessKeyId: k.AccessKeyId!, secretAccessKey: k.SecretAccessKey! };
    assert.equal((await rejection(() => assume({ RoleArn: arn }, bob))).name, 'AccessDenied');
  });

  test(`role chaining: allowed for up to ${MAX_CHAINED_SESSION_SECONDS} s`, async () => {
    const first = toCreds((await assume()).Credentials!);
    // The writer role trusts alice only; the account role trusts the account, and writer's policy allows sts:AssumeRole.
    const chained = await assume({ RoleArn: `arn:aws:iam::${ACCOUNT}:role/account`, RoleSessionName: 'chained' }, first);
    assert.equal(chained.AssumedRoleUser!.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/account/chained`);
    const long = await rejection(() => assume({ RoleArn: `arn:aws:iam::${ACCOUNT}:role/account`, DurationSeconds: MAX_CHAINED_SESSION_SECONDS + 1 }, first));
    assert.equal(long.name, 'ValidationError');
    assert.match(long.message, /role chaining/);
  });
});

describe('the session token on every protocol', () => {
  let good: Creds;
  before(async () => {
    good = toCreds((await assume({ RoleSessionName: 'tokens' })).Credentials!);
  });
  const variants = () => ({
    missing: { ...good, sessionToken: undefined },
    forged: { ...good, sessionToken: good.sessionToken!.slice(0, -4) + 'AAAA' },
    'another session': { ...good, sessionToken: 'PSST' + 'A'.repeat(128) },
  });

  test('a missing, forged or mismatched token: Kinesis and Pinpoint UnrecognizedClientException, STS InvalidClientTokenId', async () => {
    for (const [what, c] of Object.entries(variants())) {
      const k = await rejection(() => kinesisAs(c).send(new ListStreamsCommand({})));
      assert.equal(k.name, 'UnrecognizedClientException', what);
      assert.equal(k.message, INVALID);
      const p = await rejection(() => putEvent(c));
      assert.equal(p.name, 'UnrecognizedClientException', what);
      assert.equal(p.$metadata.httpStatusCode, 403);
      const s = await rejection(() => stsAs(c).send(new GetCallerIdentityCommand({})));
      assert.equal(s.name, 'InvalidClientTokenId', what);
      assert.equal(s.message, INVALID);
    }
  });

  test("a session's token with another session's key is refused", async () => {
    const other = toCreds((await assume({ RoleSessionName: 'other' })).Credentials!);
    const mixed = { ...good, sessionToken: other.sessionToken };
    assert.equal((await rejection(() => kinesisAs(mixed).send(new ListStreamsCommand({})))).name, 'UnrecognizedClientException');
  });
});

describe('GetSessionToken', () => {
  test(`defaults to ${DEFAULT_SESSION_TOKEN_SECONDS} s and acts as the user; IAM and GetSessionToken itself are refused with it`, async () => {
    const out = await stsAs(alice).send(new GetSessionTokenCommand({}));
    const c = out.Credentials!;
    assert.match(c.AccessKeyId!, /^ASIA/);
    assert.equal(c.Expiration!.getTime(), Math.floor(clock.now() / 1000) * 1000 + DEFAULT_SESSION_TOKEN_SECONDS * 1000);
    const creds = toCreds(c);
    assert.equal((await stsAs(creds).send(new GetCallerIdentityCommand({}))).Arn, `arn:aws:iam::${ACCOUNT}:user/alice`);
    // As alice: her policy allows assuming roles, and that works with these credentials too.
    await assume({}, creds);
    assert.equal((await rejection(() => kinesisAs(creds).send(new ListStreamsCommand({})))).name, 'AccessDeniedException');
    const again = await rejection(() => stsAs(creds).send(new GetSessionTokenCommand({})));
    assert.equal(again.name, 'AccessDenied');
    assert.equal(again.message, 'Cannot call GetSessionToken with session credentials');
    const admins = toCreds((await stsAs(t.server.admin).send(new GetSessionTokenCommand({ DurationSeconds: 900 }))).Credentials!);
    await kinesisAs(admins).send(new ListStreamsCommand({}));
    assert.equal((await rejection(() => iamAs(admins).send(new ListUsersCommand({})))).name, 'AccessDenied');
  });

  test('DurationSeconds 900..129600', async () => {
    await stsAs(alice).send(new GetSessionTokenCommand({ DurationSeconds: 129600 }));
    for (const d of [899, 129601]) assert.equal((await rejection(() => stsAs(alice).send(new GetSessionTokenCommand({ DurationSeconds: d })))).name, 'ValidationError');
  });
});

describe('lifetime', () => {
  test('credentials survive a restart, expire (ExpiredToken on every protocol), and are removed long after', async () => {
    const role = toCreds((await assume({ DurationSeconds: 900, RoleSessionName: 'short' })).Credentials!);
    const user = toCreds((await stsAs(alice).send(new GetSessionTokenCommand({ DurationSeconds: 900 }))).Credentials!);
    await t.close();
    await start();
    await kinesisAs(role).send(new ListStreamsCommand({}));
    assert.equal((await stsAs(user).send(new GetCallerIdentityCommand({}))).Arn, `arn:aws:iam::${ACCOUNT}:user/alice`);

    clock.advance(899_000);
    await kinesisAs(role).send(new ListStreamsCommand({}));
    clock.advance(1_000);
    const k = await rejection(() => kinesisAs(role).send(new ListStreamsCommand({})));
    assert.equal(k.name, 'ExpiredTokenException');
    assert.equal(k.message, EXPIRED);
    // awsJson services answer authentication failures with 400 (Pinpoint and Query with 403).
    assert.equal(k.$metadata.httpStatusCode, 400);
    assert.equal((await rejection(() => putEvent(role))).name, 'ExpiredTokenException');
    const s = await rejection(() => stsAs(user).send(new GetCallerIdentityCommand({})));
    assert.equal(s.name, 'ExpiredToken');
    assert.equal(s.message, EXPIRED);
    // The wrong token still hears "invalid", not "expired".
    assert.equal((await rejection(() => kinesisAs({ ...role, sessionToken: 'x' }).send(new ListStreamsCommand({})))).name, 'UnrecognizedClientException');

    const count = () => {
      const db = new Database(join(dataDir, 'pinstream.db'), { readonly: true });
      try {
        return (db.prepare('SELECT count(*) AS n FROM sts_sessions WHERE access_key_id IN (?, ?)').get(role.accessKeyId, user.accessKeyId) as { n: number }).n;
      } finally {
        db.close();
      }
    };
    assert.equal(count(), 2);
    clock.advance(EXPIRED_SESSION_RETENTION_MS);
    await assume({ RoleSessionName: 'kept' }); // issuing still keeps them: not yet past the retention
    assert.equal(count(), 2);
    clock.advance(1_000);
    await assume({ RoleSessionName: 'purges' });
    assert.equal(count(), 0);
    assert.equal((await rejection(() => kinesisAs(role).send(new ListStreamsCommand({})))).name, 'UnrecognizedClientException');
  });
});
