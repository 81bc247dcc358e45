// Cognito guest identities and temporary credentials against a real server, with the official
// clients (@aws-sdk/client-cognito-identity, fromCognitoIdentityPool) and an injected clock:
// guest access created in one step (extension route and CLI), guest credentials that PutEvents
// and UpdateEndpoint (records carry the Cognito ids) and can do nothing else, nor anything to
// another project; expired, forged, trimmed and cross-pool credentials refused; unsigned calls
// other than the model's noAuth operations refused; the OIDC authenticated flow against a test
// issuer (RSA key made here, JWKS file) with bad signature, wrong audience and expired tokens;
// the classic flow (GetOpenIdToken + STS AssumeRoleWithWebIdentity); the API's pool and identity
// operations; the bounds on what unsigned callers can create; policy variables.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync, sign, randomUUID, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CognitoIdentityClient,
  CreateIdentityPoolCommand,
  DeleteIdentitiesCommand,
  DeleteIdentityPoolCommand,
  DescribeIdentityCommand,
  DescribeIdentityPoolCommand,
  GetCredentialsForIdentityCommand,
  GetIdCommand,
  GetIdentityPoolRolesCommand,
  GetOpenIdTokenCommand,
  ListIdentitiesCommand,
  ListIdentityPoolsCommand,
  SetIdentityPoolRolesCommand,
  UnlinkIdentityCommand,
  UpdateIdentityPoolCommand,
} from '@aws-sdk/client-cognito-identity';
import { fromCognitoIdentityPool } from '@aws-sdk/credential-providers';
import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { AssumeRoleWithWebIdentityCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { KinesisClient, ListStreamsCommand } from '@aws-sdk/client-kinesis';
import { CreateAppCommand, GetAppCommand, GetAppsCommand, GetEndpointCommand, PinpointClient, PutEventsCommand, UpdateEndpointCommand } from '@aws-sdk/client-pinpoint';
import { ManualClock } from '../src/clock.js';
import { evaluate, parsePolicy } from '../src/iam/policy.js';
import { IDENTITY_CREDENTIALS_SECONDS, UNSIGNED_OPERATIONS } from '../src/cognito/api.js';
import { MAX_SESSIONS_PER_IDENTITY } from '../src/cognito/pools.js';
import { OPENID_TOKEN_SECONDS } from '../src/cognito/tokens.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { ingestRecords } from './helpers/guest-apps.js';
import { signedRequest } from './helpers/signed.js';
import { rejection } from './helpers/rejection.js';
import { CLI } from './helpers/process.js';

const ACCOUNT = '000000000000';
const REGION = 'us-east-1';
const ISSUER = 'https://login.test.example';
const PROVIDER = 'login.test.example';
const CLIENT_ID = 'test-client';
const COGNITO = 'cognito-identity.amazonaws.com';
/** Small bounds for the limit tests (the server's defaults are far larger). */
const LIMITS = { maxIdentitiesPerPool: 8, newIdentityBurst: 5, newIdentitiesPerSecond: 1, maxSessionsPerIdentity: MAX_SESSIONS_PER_IDENTITY };

type Creds = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
const doc = (...Statement: object[]) => JSON.stringify({ Version: '2012-10-17', Statement });

let dataDir: string;
let clock: ManualClock;
let t: TestServer;
let signingKey: KeyObject;
let otherKey: KeyObject;
const clients: Array<{ destroy(): void }> = [];
const track = <C extends { destroy(): void }>(c: C) => (clients.push(c), c);
const common = (credentials?: Creds) => ({
  endpoint: t.server.url,
  region: REGION,
  maxAttempts: 1,
  systemClockOffset: clock.now() - Date.now(),
  ...(credentials ? { credentials } : {}),
});
const cognito = () => track(new CognitoIdentityClient(common(t.server.admin)));
/** Unsigned operations need no credentials: a client without any, as a device has. */
const device = () => track(new CognitoIdentityClient({ ...common(), credentials: async () => ({ accessKeyId: 'unused', secretAccessKey: 'unused' }) }));
const pinpointAs = (c: Creds) => track(new PinpointClient(common(c)));
const stsAs = (c: Creds) => track(new STSClient(common(c)));
const iam = () => track(new IAMClient(common(t.server.admin)));
const toCreds = (c: { AccessKeyId?: string; SecretKey?: string; SecretAccessKey?: string; SessionToken?: string }): Creds => ({
  accessKeyId: c.AccessKeyId!,
  secretAccessKey: (c.SecretKey ?? c.SecretAccessKey)!,
  sessionToken: c.SessionToken!,
});

/** An RS256 ID token of the test issuer. */
function idToken(claims: Record<string, unknown>, key: KeyObject = signingKey, kid = 'test-key'): string {
  const now = Math.floor(clock.now() / 1000);
  const header = Buffer.from(JSON.stringify({ alg: 'RS256', kid, typ: 'JWT' })).toString('base64url');
  const payload = Buffer.from(JSON.stringify({ iss: ISSUER, aud: CLIENT_ID, sub: 'user-1', iat: now, exp: now + 3600, ...claims })).toString('base64url');
  return `${header}.${payload}.${sign('RSA-SHA256', Buffer.from(`${header}.${payload}`), key).toString('base64url')}`;
}

async function guestAccess(appId: string): Promise<{ IdentityPoolId: string; UnauthenticatedRoleArn: string; Endpoints: { Pinpoint: string } }> {
  const res = await signedRequest(t.server.url, { path: `/v1/apps/${appId}/guest-access`, body: '{}', credentials: t.server.admin });
  assert.equal(res.status, 201, await res.clone().text());
  return (await res.json()) as never;
}

async function createApp(name: string): Promise<string> {
  return (await pinpointAs(t.server.admin).send(new CreateAppCommand({ CreateApplicationRequest: { Name: name } }))).ApplicationResponse!.Id!;
}

/** Guest credentials through the SDK's own provider, as a browser app gets them. */
async function guestCredentials(poolId: string): Promise<Creds & { identityId: string }> {
  const provider = fromCognitoIdentityPool({ identityPoolId: poolId, clientConfig: { endpoint: t.server.url, region: REGION, maxAttempts: 1 } });
  const c = await provider();
  return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken, identityId: c.identityId };
}

/** Every ingest-log record of an app, parsed. */
const records = (appId: string) => ingestRecords(t.server, appId);

const putEvent = (c: Creds, appId: string, endpointId: string, eventType = 'guest.event') =>
  pinpointAs(c).send(
    new PutEventsCommand({
      ApplicationId: appId,
      EventsRequest: { BatchItem: { [endpointId]: { Endpoint: {}, Events: { [randomUUID()]: { EventType: eventType, Timestamp: new Date(clock.now()).toISOString() } } } } },
    }),
  );

async function rawCognito(target: string, body: object, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(t.server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `AWSCognitoIdentityService.${target}`, ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

let appA: string;
let appB: string;
let poolA: string;
let poolB: string;

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'pinstream-cognito-'));
  clock = new ManualClock(Date.now());
  signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const jwk = { ...signingKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' } as Record<string, unknown>;
  for (const k of ['d', 'p', 'q', 'dp', 'dq', 'qi']) delete jwk[k];
  const jwksFile = join(dataDir, 'jwks.json');
  await writeFile(jwksFile, JSON.stringify({ keys: [jwk] }));
  t = await startTestServer({ clock, dataDir: join(dataDir, 'data'), config: { oidcProviders: [{ issuer: ISSUER, jwks: jwksFile, clientIds: [CLIENT_ID] }] }, deps: { cognitoLimits: LIMITS } });
  appA = await createApp('cognito-a');
  appB = await createApp('cognito-b');
  poolA = (await guestAccess(appA)).IdentityPoolId;
  poolB = (await guestAccess(appB)).IdentityPoolId;
});
after(async () => {
  for (const c of clients) c.destroy();
  await t.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('guest access (enhanced flow) through fromCognitoIdentityPool', () => {
  test('guest credentials are ASIA temporary credentials of the guest role for an hour; UpdateEndpoint and PutEvents are Accepted and the records carry the Cognito ids', async () => {
    const g = await guestCredentials(poolA);
    assert.match(g.accessKeyId, /^ASIA/);
    assert.ok(g.sessionToken);
    assert.match(g.identityId, /^us-east-1:[0-9a-f-]{36}$/);
    const who = await stsAs(g).send(new GetCallerIdentityCommand({}));
    assert.equal(who.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/pinstream-guest-${appA}/CognitoIdentityCredentials`);

    const endpointId = randomUUID();
    const up = await pinpointAs(g).send(
      new UpdateEndpointCommand({ ApplicationId: appA, EndpointId: endpointId, EndpointRequest: { Demographic: { Platform: 'web' }, User: { UserId: g.identityId } } }),
    );
    assert.equal(up.MessageBody?.Message, 'Accepted');
    const put = await putEvent(g, appA, endpointId);
    const events = put.EventsResponse!.Results![endpointId].EventsItemResponse!;
    for (const r of Object.values(events)) assert.deepEqual({ StatusCode: r.StatusCode, Message: r.Message }, { StatusCode: 202, Message: 'Accepted' });

    const mine = (await records(appA)).filter((r) => r.client.client_id === endpointId);
    assert.equal(mine.length, 1);
    assert.equal(mine[0].client.cognito_id, g.identityId);
    assert.equal(mine[0].application.cognito_identity_pool_id, poolA);
  });

  test('the same record path without Cognito credentials carries no Cognito ids', async () => {
    const endpointId = randomUUID();
    await putEvent(t.server.admin, appA, endpointId);
    const [r] = (await records(appA)).filter((x) => x.client.client_id === endpointId);
    assert.equal(r.client.cognito_id, undefined);
    assert.equal(r.application.cognito_identity_pool_id, undefined);
  });

  test('the device keeps its identity: it re-sends its IdentityId and gets credentials for the same identity (also after a restart)', async () => {
    const { IdentityId } = await device().send(new GetIdCommand({ IdentityPoolId: poolA }));
    const first = await device().send(new GetCredentialsForIdentityCommand({ IdentityId }));
    assert.equal(first.IdentityId, IdentityId);
    await t.close();
    t = await startTestServer({ clock, dataDir: t.dataDir, config: t.config, deps: { cognitoLimits: LIMITS } });
    const again = await device().send(new GetCredentialsForIdentityCommand({ IdentityId }));
    assert.equal(again.IdentityId, IdentityId);
    assert.notEqual(again.Credentials!.AccessKeyId, first.Credentials!.AccessKeyId);
    // Credentials issued before the restart still work.
    const who = await stsAs(toCreds(first.Credentials!)).send(new GetCallerIdentityCommand({}));
    assert.match(who.Arn!, /assumed-role\/pinstream-guest-/);
  });

  test('the guest role can do nothing else: no reads, no lists, no other service, no other project (isolation)', async () => {
    const g = await guestCredentials(poolA);
    const p = pinpointAs(g);
    for (const call of [
      () => p.send(new GetAppCommand({ ApplicationId: appA })),
      () => p.send(new GetAppsCommand({})),
      () => p.send(new GetEndpointCommand({ ApplicationId: appA, EndpointId: 'x' })),
      () => p.send(new GetAppCommand({ ApplicationId: appB })),
      () => p.send(new UpdateEndpointCommand({ ApplicationId: appB, EndpointId: 'x', EndpointRequest: {} })),
      () => putEvent(g, appB, 'x'),
    ]) {
      const e = await rejection(call);
      assert.equal(e.$metadata.httpStatusCode, 403, String(e));
    }
    assert.equal((await rejection(track(new KinesisClient(common(g))).send(new ListStreamsCommand({})))).name, 'AccessDeniedException');
    // Nor Cognito's or IAM's signed operations.
    const asGuest = track(new CognitoIdentityClient(common(g)));
    assert.equal((await rejection(asGuest.send(new ListIdentityPoolsCommand({ MaxResults: 10 })))).name, 'AccessDeniedException');
    assert.equal((await rejection(asGuest.send(new DescribeIdentityPoolCommand({ IdentityPoolId: poolB })))).name, 'AccessDeniedException');
  });

  test("cross-pool: pool B's guests cannot write project A, and a role trusting pool A only is no role for pool B", async () => {
    const gb = await guestCredentials(poolB);
    assert.equal((await rejection(putEvent(gb, appA, 'x'))).$metadata.httpStatusCode, 403);
    // Pool B given A's guest role (its trust names pool A's aud): Cognito refuses to assume it.
    const roles = await cognito().send(new GetIdentityPoolRolesCommand({ IdentityPoolId: poolA }));
    const c = await cognito().send(new CreateIdentityPoolCommand({ IdentityPoolName: 'borrower', AllowUnauthenticatedIdentities: true }));
    await cognito().send(new SetIdentityPoolRolesCommand({ IdentityPoolId: c.IdentityPoolId, Roles: { unauthenticated: roles.Roles!.unauthenticated } }));
    const { IdentityId } = await device().send(new GetIdCommand({ IdentityPoolId: c.IdentityPoolId }));
    const e = await rejection(device().send(new GetCredentialsForIdentityCommand({ IdentityId })));
    assert.equal(e.name, 'InvalidIdentityPoolConfigurationException');
    assert.equal(e.message, 'Invalid identity pool configuration. Check assigned IAM roles for this pool.');
    await cognito().send(new DeleteIdentityPoolCommand({ IdentityPoolId: c.IdentityPoolId }));
  });

  test('expired credentials are refused with ExpiredTokenException once the hour is over', async () => {
    const g = await guestCredentials(poolA);
    const start = clock.now();
    clock.advance(IDENTITY_CREDENTIALS_SECONDS * 1000);
    try {
      const e = await rejection(track(new PinpointClient({ ...common(g) })).send(new GetAppsCommand({})));
      assert.match(String(e.name), /ExpiredToken/);
    } finally {
      clock.set(start);
    }
  });

  test('forged credentials are refused: another secret, another session token, a made-up ASIA key', async () => {
    const g = await guestCredentials(poolA);
    const forged = [
      { ...g, secretAccessKey: g.secretAccessKey.slice(0, -2) + 'xx' },
      { ...g, sessionToken: g.sessionToken!.slice(0, -4) + 'AAAA' },
      { accessKeyId: 'ASIA' + 'A'.repeat(16), secretAccessKey: g.secretAccessKey, sessionToken: g.sessionToken },
    ];
    for (const c of forged) {
      const e = await rejection(putEvent(c, appA, 'x'));
      assert.equal(e.$metadata.httpStatusCode, 403, `${e.name}: ${e.message}`);
    }
  });

  test(`each identity keeps at most MAX_SESSIONS_PER_IDENTITY (${MAX_SESSIONS_PER_IDENTITY}) credentials: the oldest are revoked`, async () => {
    const { IdentityId } = await device().send(new GetIdCommand({ IdentityPoolId: poolA }));
    const issued: Creds[] = [];
    for (let i = 0; i < MAX_SESSIONS_PER_IDENTITY + 2; i++) issued.push(toCreds((await device().send(new GetCredentialsForIdentityCommand({ IdentityId }))).Credentials!));
    const ids = new Set(issued.map((c) => c.accessKeyId));
    assert.equal(ids.size, issued.length);
    for (const old of issued.slice(0, 2)) assert.equal((await rejection(stsAs(old).send(new GetCallerIdentityCommand({})))).name, 'InvalidClientTokenId');
    for (const kept of issued.slice(2)) await stsAs(kept).send(new GetCallerIdentityCommand({}));
  });
});

describe('unsigned calls', () => {
  test(`only the model's noAuth operations run unsigned (${UNSIGNED_OPERATIONS.join(', ')}; STS AssumeRoleWithWebIdentity)`, async () => {
    assert.deepEqual([...UNSIGNED_OPERATIONS].sort(), ['GetCredentialsForIdentity', 'GetId', 'GetOpenIdToken', 'UnlinkIdentity']);
    const ok = await rawCognito('GetId', { IdentityPoolId: poolA });
    assert.equal(ok.status, 200);
    for (const [op, body] of [
      ['CreateIdentityPool', { IdentityPoolName: 'x', AllowUnauthenticatedIdentities: true }],
      ['ListIdentityPools', { MaxResults: 10 }],
      ['DescribeIdentityPool', { IdentityPoolId: poolA }],
      ['SetIdentityPoolRoles', { IdentityPoolId: poolA, Roles: {} }],
      ['ListIdentities', { IdentityPoolId: poolA, MaxResults: 10 }],
      ['DeleteIdentities', { IdentityIdsToDelete: [ok.body.IdentityId] }],
      ['DescribeIdentity', { IdentityId: ok.body.IdentityId }],
    ] as const) {
      const r = await rawCognito(op, body);
      // JSON protocols answer authentication failures with 400, as Kinesis does (test/wire-edges.test.ts).
      assert.equal(r.status, 400, op);
      assert.equal(r.body.__type, 'MissingAuthenticationTokenException', op);
    }
    // The identity survived the refused DeleteIdentities.
    assert.equal((await cognito().send(new DescribeIdentityCommand({ IdentityId: ok.body.IdentityId }))).IdentityId, ok.body.IdentityId);
    // STS: unsigned GetCallerIdentity is refused; AssumeRoleWithWebIdentity gets through to its own checks.
    const sts = async (form: string) => {
      const res = await fetch(t.server.url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
      return { status: res.status, text: await res.text() };
    };
    const gci = await sts('Action=GetCallerIdentity&Version=2011-06-15');
    assert.equal(gci.status, 403);
    assert.match(gci.text, /<Code>MissingAuthenticationToken<\/Code>/);
    const web = await sts(`Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn:aws:iam::${ACCOUNT}:role/none&RoleSessionName=web&WebIdentityToken=not-a-jwt`);
    assert.equal(web.status, 400);
    assert.match(web.text, /<Code>InvalidIdentityToken<\/Code>/);
  });

  test('GetId and GetCredentialsForIdentity answer AWS errors: unknown pool and identity, unauthenticated access off', async () => {
    const missing = 'us-east-1:00000000-0000-0000-0000-000000000000';
    let e = await rejection(device().send(new GetIdCommand({ IdentityPoolId: missing })));
    assert.deepEqual([e.name, e.message], ['ResourceNotFoundException', `IdentityPool '${missing}' not found.`]);
    e = await rejection(device().send(new GetCredentialsForIdentityCommand({ IdentityId: missing })));
    assert.deepEqual([e.name, e.message], ['ResourceNotFoundException', `Identity '${missing}' not found.`]);
    e = await rejection(device().send(new GetIdCommand({ IdentityPoolId: 'not a pool id' })));
    assert.equal(e.name, 'ValidationException');
    const closed = await cognito().send(new CreateIdentityPoolCommand({ IdentityPoolName: 'closed', AllowUnauthenticatedIdentities: false }));
    e = await rejection(device().send(new GetIdCommand({ IdentityPoolId: closed.IdentityPoolId })));
    assert.deepEqual([e.name, e.message], ['NotAuthorizedException', 'Unauthenticated access is not supported for this identity pool.']);
    await cognito().send(new DeleteIdentityPoolCommand({ IdentityPoolId: closed.IdentityPoolId }));
  });
});

describe('bounds on what unsigned callers create', () => {
  test(`new identities per pool: a burst of ${LIMITS.newIdentityBurst}, then ${LIMITS.newIdentitiesPerSecond} a second (TooManyRequestsException); at most ${LIMITS.maxIdentitiesPerPool} per pool (LimitExceededException)`, async () => {
    const p = await cognito().send(new CreateIdentityPoolCommand({ IdentityPoolName: 'bounded', AllowUnauthenticatedIdentities: true }));
    const getId = () => device().send(new GetIdCommand({ IdentityPoolId: p.IdentityPoolId }));
    for (let i = 0; i < LIMITS.newIdentityBurst; i++) await getId();
    assert.equal((await rejection(getId())).name, 'TooManyRequestsException');
    clock.advance(1000 / LIMITS.newIdentitiesPerSecond);
    await getId();
    assert.equal((await rejection(getId())).name, 'TooManyRequestsException');
    clock.advance(60_000);
    while ((await cognito().send(new ListIdentitiesCommand({ IdentityPoolId: p.IdentityPoolId, MaxResults: 60 }))).Identities!.length < LIMITS.maxIdentitiesPerPool) await getId();
    assert.equal((await rejection(getId())).name, 'LimitExceededException');
    await cognito().send(new DeleteIdentityPoolCommand({ IdentityPoolId: p.IdentityPoolId }));
  });
});

describe('authenticated identities from an OpenID Connect provider (test issuer, JWKS file)', () => {
  let poolId: string;
  const authRole = `arn:aws:iam::${ACCOUNT}:role/cognito-auth`;
  before(async () => {
    const p = await cognito().send(
      new CreateIdentityPoolCommand({ IdentityPoolName: 'oidc', AllowUnauthenticatedIdentities: false, AllowClassicFlow: true, OpenIdConnectProviderARNs: [`arn:aws:iam::${ACCOUNT}:oidc-provider/${PROVIDER}`] }),
    );
    poolId = p.IdentityPoolId!;
    const trust = doc(
      {
        Effect: 'Allow',
        Principal: { Federated: COGNITO },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: { StringEquals: { [`${COGNITO}:aud`]: poolId }, 'ForAnyValue:StringLike': { [`${COGNITO}:amr`]: 'authenticated' } },
      },
      { Effect: 'Allow', Principal: { Federated: `arn:aws:iam::${ACCOUNT}:oidc-provider/${PROVIDER}` }, Action: 'sts:AssumeRoleWithWebIdentity', Condition: { StringEquals: { [`${PROVIDER}:aud`]: CLIENT_ID } } },
    );
    await iam().send(new CreateRoleCommand({ RoleName: 'cognito-auth', AssumeRolePolicyDocument: trust }));
    // Only the signed-in user's own endpoint id may be written: a policy variable in a condition.
    await iam().send(
      new PutRolePolicyCommand({
        RoleName: 'cognito-auth',
        PolicyName: 'events',
        PolicyDocument: doc({ Effect: 'Allow', Action: ['mobiletargeting:PutEvents', 'mobiletargeting:UpdateEndpoint'], Resource: `arn:aws:mobiletargeting:${REGION}:${ACCOUNT}:apps/${appB}*`, Condition: { StringEquals: { [`${COGNITO}:aud`]: '${' + COGNITO + ':aud}' } } }),
      }),
    );
    await cognito().send(new SetIdentityPoolRolesCommand({ IdentityPoolId: poolId, Roles: { authenticated: authRole } }));
  });

  test('the same login gets the same identity; its credentials are the authenticated role and need the login', async () => {
    const logins = { [PROVIDER]: idToken({ sub: 'alice' }) };
    const a = await device().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: logins }));
    const b = await device().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: { [PROVIDER]: idToken({ sub: 'alice' }) } }));
    assert.equal(a.IdentityId, b.IdentityId);
    const other = await device().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: { [PROVIDER]: idToken({ sub: 'bob' }) } }));
    assert.notEqual(other.IdentityId, a.IdentityId);
    const e = await rejection(device().send(new GetCredentialsForIdentityCommand({ IdentityId: a.IdentityId })));
    assert.deepEqual([e.name, e.message], ['NotAuthorizedException', `Access to Identity '${a.IdentityId}' is forbidden.`]);
    // Bob's token is no proof for Alice's identity.
    assert.equal((await rejection(device().send(new GetCredentialsForIdentityCommand({ IdentityId: a.IdentityId, Logins: { [PROVIDER]: idToken({ sub: 'bob' }) } })))).name, 'ResourceConflictException');
    const c = await device().send(new GetCredentialsForIdentityCommand({ IdentityId: a.IdentityId, Logins: logins }));
    const creds = toCreds(c.Credentials!);
    assert.equal((await stsAs(creds).send(new GetCallerIdentityCommand({}))).Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/cognito-auth/CognitoIdentityCredentials`);
    const endpointId = randomUUID();
    await putEvent(creds, appB, endpointId);
    const [r] = (await records(appB)).filter((x) => x.client.client_id === endpointId);
    assert.equal(r.client.cognito_id, a.IdentityId);
    assert.equal(r.application.cognito_identity_pool_id, poolId);
    const described = await cognito().send(new DescribeIdentityCommand({ IdentityId: a.IdentityId }));
    assert.deepEqual(described.Logins, [PROVIDER]);
  });

  test('bad signature, wrong audience, expired token, another issuer: NotAuthorizedException', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['bad signature', idToken({ sub: 'alice' }, otherKey), /signature/],
      ['wrong audience', idToken({ sub: 'alice', aud: 'someone-else' }), /audience/],
      ['expired', idToken({ sub: 'alice', exp: Math.floor(clock.now() / 1000) - 1 }), /Token expired/],
      ['another issuer', idToken({ sub: 'alice', iss: 'https://evil.example' }), /issuer/],
      ['not a JWT', 'abc.def', /JWT/],
    ];
    for (const [what, token, message] of cases) {
      const e = await rejection(device().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: { [PROVIDER]: token } })));
      assert.equal(e.name, 'NotAuthorizedException', what);
      assert.match(e.message, message, what);
    }
    // A provider the pool does not name.
    const e = await rejection(device().send(new GetIdCommand({ IdentityPoolId: poolA, Logins: { [PROVIDER]: idToken({}) } })));
    assert.equal(e.name, 'NotAuthorizedException');
  });

  test('UnlinkIdentity needs the login and removes it', async () => {
    const logins = { [PROVIDER]: idToken({ sub: 'carol' }) };
    const { IdentityId } = await device().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: logins }));
    assert.equal((await rejection(device().send(new UnlinkIdentityCommand({ IdentityId, Logins: {}, LoginsToRemove: [PROVIDER] })))).name, 'NotAuthorizedException');
    await device().send(new UnlinkIdentityCommand({ IdentityId, Logins: logins, LoginsToRemove: [PROVIDER] }));
    assert.deepEqual((await cognito().send(new DescribeIdentityCommand({ IdentityId }))).Logins, []);
  });

  test('classic flow: GetOpenIdToken then STS AssumeRoleWithWebIdentity (unsigned); the records carry the Cognito ids', async () => {
    const logins = { [PROVIDER]: idToken({ sub: 'dave' }) };
    const { IdentityId } = await device().send(new GetIdCommand({ IdentityPoolId: poolId, Logins: logins }));
    const { Token } = await device().send(new GetOpenIdTokenCommand({ IdentityId, Logins: logins }));
    const sts = track(new STSClient({ ...common(), credentials: async () => ({ accessKeyId: 'unused', secretAccessKey: 'unused' }) }));
    const r = await sts.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: authRole, RoleSessionName: 'classic', WebIdentityToken: Token }));
    assert.equal(r.SubjectFromWebIdentityToken, IdentityId);
    assert.equal(r.Audience, poolId);
    assert.equal(r.Provider, COGNITO);
    assert.equal(r.AssumedRoleUser!.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/cognito-auth/classic`);
    const endpointId = randomUUID();
    await putEvent(toCreds(r.Credentials!), appB, endpointId);
    const [rec] = (await records(appB)).filter((x) => x.client.client_id === endpointId);
    assert.equal(rec.client.cognito_id, IdentityId);
    // A role that does not trust the pool: AccessDenied. An expired Cognito token: ExpiredTokenException.
    const guestRole = (await cognito().send(new GetIdentityPoolRolesCommand({ IdentityPoolId: poolA }))).Roles!.unauthenticated;
    assert.equal((await rejection(sts.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: guestRole, RoleSessionName: 'classic', WebIdentityToken: Token })))).name, 'AccessDenied');
    const start = clock.now();
    clock.advance(OPENID_TOKEN_SECONDS * 1000);
    try {
      assert.equal((await rejection(sts.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: authRole, RoleSessionName: 'classic', WebIdentityToken: Token })))).name, 'ExpiredTokenException');
    } finally {
      clock.set(start);
    }
  });

  test("AssumeRoleWithWebIdentity with the OIDC provider's own token: trusted for its client id only", async () => {
    const sts = track(new STSClient({ ...common(), credentials: async () => ({ accessKeyId: 'unused', secretAccessKey: 'unused' }) }));
    const r = await sts.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: authRole, RoleSessionName: 'oidc', WebIdentityToken: idToken({ sub: 'erin' }) }));
    assert.equal(r.SubjectFromWebIdentityToken, 'erin');
    assert.equal(r.Provider, PROVIDER);
    let e = await rejection(sts.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: authRole, RoleSessionName: 'oidc', WebIdentityToken: idToken({ aud: 'other' }) })));
    assert.deepEqual([e.name, e.message], ['InvalidIdentityTokenException', 'Incorrect token audience']);
    e = await rejection(sts.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: authRole, RoleSessionName: 'oidc', WebIdentityToken: idToken({}, otherKey) })));
    assert.equal(e.name, 'InvalidIdentityTokenException');
  });

  test('a pool without the classic flow refuses GetOpenIdToken as AWS does', async () => {
    const e = await rejection(async () => {
      const { IdentityId } = await device().send(new GetIdCommand({ IdentityPoolId: poolA }));
      await device().send(new GetOpenIdTokenCommand({ IdentityId }));
    });
    assert.deepEqual([e.name, e.message], ['InvalidParameterException', 'Basic (classic) flow is not enabled, please use enhanced flow.']);
  });
});

describe('the signed API', () => {
  test('pools: create, describe, update, list, roles, delete; identities: list, describe, delete', async () => {
    const c = cognito();
    const p = await c.send(new CreateIdentityPoolCommand({ IdentityPoolName: 'api pool', AllowUnauthenticatedIdentities: true, IdentityPoolTags: { team: 'x' } }));
    assert.match(p.IdentityPoolId!, /^us-east-1:[0-9a-f-]{36}$/);
    assert.equal((await c.send(new DescribeIdentityPoolCommand({ IdentityPoolId: p.IdentityPoolId }))).IdentityPoolName, 'api pool');
    const u = await c.send(new UpdateIdentityPoolCommand({ IdentityPoolId: p.IdentityPoolId, IdentityPoolName: 'renamed', AllowUnauthenticatedIdentities: true, AllowClassicFlow: true }));
    assert.equal(u.AllowClassicFlow, true);
    const listed = await c.send(new ListIdentityPoolsCommand({ MaxResults: 60 }));
    assert.ok(listed.IdentityPools!.some((x) => x.IdentityPoolId === p.IdentityPoolId && x.IdentityPoolName === 'renamed'));
    const e = await rejection(c.send(new SetIdentityPoolRolesCommand({ IdentityPoolId: p.IdentityPoolId, Roles: { unauthenticated: `arn:aws:iam::${ACCOUNT}:role/missing` } })));
    assert.equal(e.name, 'InvalidParameterException');
    const { IdentityId } = await device().send(new GetIdCommand({ IdentityPoolId: p.IdentityPoolId }));
    const ids = await c.send(new ListIdentitiesCommand({ IdentityPoolId: p.IdentityPoolId, MaxResults: 10 }));
    assert.deepEqual(ids.Identities!.map((i) => i.IdentityId), [IdentityId]);
    const del = await c.send(new DeleteIdentitiesCommand({ IdentityIdsToDelete: [IdentityId!] }));
    assert.deepEqual(del.UnprocessedIdentityIds, []);
    assert.equal((await rejection(c.send(new DescribeIdentityCommand({ IdentityId })))).name, 'ResourceNotFoundException');
    await c.send(new DeleteIdentityPoolCommand({ IdentityPoolId: p.IdentityPoolId }));
    const gone = await rejection(c.send(new DescribeIdentityPoolCommand({ IdentityPoolId: p.IdentityPoolId })));
    assert.deepEqual([gone.name, gone.message], ['ResourceNotFoundException', `IdentityPool '${p.IdentityPoolId}' not found.`]);
  });
});

describe('policy variables', () => {
  test('${cognito-identity.amazonaws.com:sub} in resources and conditions is the caller\'s value; a missing or wildcard value matches nothing', () => {
    const policy = parsePolicy(
      doc({
        Effect: 'Allow',
        Action: 's3:GetObject',
        Resource: 'arn:aws:s3:::bucket/${cognito-identity.amazonaws.com:sub}/*',
        Condition: { StringEquals: { 'cognito-identity.amazonaws.com:aud': '${cognito-identity.amazonaws.com:aud}' } },
      }),
    );
    const ctx = (sub: string | undefined) => ({ 'cognito-identity.amazonaws.com:sub': sub, 'cognito-identity.amazonaws.com:aud': 'us-east-1:pool' });
    const at = (resource: string, sub: string | undefined) => evaluate([policy], { action: 's3:GetObject', resource, context: ctx(sub) });
    assert.equal(at('arn:aws:s3:::bucket/us-east-1:me/file', 'us-east-1:me'), 'Allow');
    assert.equal(at('arn:aws:s3:::bucket/us-east-1:you/file', 'us-east-1:me'), 'ImplicitDeny');
    assert.equal(at('arn:aws:s3:::bucket/us-east-1:me/file', undefined), 'ImplicitDeny');
    assert.equal(at('arn:aws:s3:::bucket/x/file', '*'), 'ImplicitDeny');
    // Version 2008-10-17 has no variables: the text is literal.
    const old = parsePolicy(JSON.stringify({ Version: '2008-10-17', Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::b/${aws:username}' }] }));
    assert.equal(evaluate([old], { action: 's3:GetObject', resource: 'arn:aws:s3:::b/${aws:username}', context: { 'aws:username': 'x' } }), 'Allow');
    assert.equal(evaluate([old], { action: 's3:GetObject', resource: 'arn:aws:s3:::b/x', context: { 'aws:username': 'x' } }), 'ImplicitDeny');
  });
});

describe('CLI', () => {
  test('pinstream identity-pool create --app prints the pool, the guest role and the app configuration, and repairs rather than duplicates', async () => {
    const run = (args: string[]) =>
      promisify(execFile)(process.execPath, [CLI, 'identity-pool', 'create', ...args], {
        env: { ...process.env, PINSTREAM_ADMIN_ACCESS_KEY_ID: t.server.admin.accessKeyId, PINSTREAM_ADMIN_SECRET_ACCESS_KEY: t.server.admin.secretAccessKey },
      });
    const { stdout } = await run(['--app', appA, '--endpoint', t.server.url, '--json']);
    const out = JSON.parse(stdout);
    assert.equal(out.IdentityPoolId, poolA, 'the same pool as before: created once');
    assert.equal(out.ApplicationId, appA);
    assert.equal(out.AwsExports.aws_cognito_identity_pool_id, poolA);
    assert.equal(out.AwsExports.aws_mobile_analytics_app_id, appA);
    assert.equal(out.AmplifyOutputs.analytics.amazon_pinpoint.app_id, appA);
    assert.equal(out.Endpoints.Pinpoint, t.server.url);
    const text = (await run(['--app', appA, '--endpoint', t.server.url])).stdout;
    assert.match(text, new RegExp(`identity pool +${poolA}`));
    assert.match(text, /fromCognitoIdentityPool/);
    const missing = await rejection(run(['--endpoint', t.server.url]));
    assert.equal(missing.code, 2);
    const unknownApp = await rejection(run(['--app', 'f'.repeat(32), '--endpoint', t.server.url]));
    assert.equal(unknownApp.code, 1);
    assert.match(unknownApp.stderr, /NotFoundException/);
  });
});
