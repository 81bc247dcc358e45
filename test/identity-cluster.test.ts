// Identity and catalog state shared by nodes on one PostgreSQL (issue 17): STS sessions minted on
// one node authenticate on another, Cognito guest credentials come through any node, a Glue table
// made on one is read on another, two nodes starting together on an empty database agree on one
// admin key, and the session lookup's bounds (lookups in flight) on PostgreSQL. Each test makes
// its own database on 127.0.0.1:5432 and drops it; all skip with the reason when PostgreSQL is not
// reachable.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { AssumeRoleCommand, GetCallerIdentityCommand, GetSessionTokenCommand, STSClient } from '@aws-sdk/client-sts';
import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { KinesisClient, ListStreamsCommand } from '@aws-sdk/client-kinesis';
import { CreateDatabaseCommand, CreateTableCommand, GetTableCommand, GlueClient } from '@aws-sdk/client-glue';
import { CreateAppCommand, PutEventsCommand } from '@aws-sdk/client-pinpoint';
import { fromCognitoIdentityPool } from '@aws-sdk/credential-providers';
import { MASTER_KEY_FILE } from '../src/iam/secrets.js';
import { MAX_SESSION_LOOKUPS_IN_FLIGHT, SessionLookupBusy, TEMPORARY_KEY_PREFIX, UNKNOWN_KEY_TTL_MS, generateKey } from '../src/iam/store.js';
import { ManualClock } from '../src/clock.js';
import { openMetadata } from '../src/store/metadata.js';
import { loadConfig } from '../src/config/config.js';
import { startPinstream } from '../src/server.js';
import { startTestServer, pinpointClient, type TestServer } from './helpers/server.js';
import { signedRequest } from './helpers/signed.js';
import { TEST_METRICS_TOKEN } from './helpers/process.js';
import { postgresTarget, withClient } from './helpers/postgres.js';
import { changeSeen, openNode } from './helpers/store-contract.js';
import { eventually } from './helpers/eventually.js';

const REGION = 'us-east-1';
const ACCOUNT = '000000000000';
type Creds = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

/** A uniquely named database on the test PostgreSQL; `drop` removes it. */
async function pgDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const { config } = await postgresTarget();
  if (!config) throw new Error('PostgreSQL not reachable');
  const name = `pinstream_idmeta_${process.pid}_${randomBytes(4).toString('hex')}`;
  await withClient(config, (c) => c.query(`CREATE DATABASE ${name}`));
  return {
    url: `postgres://${config.user}@${config.host}:${config.port}/${name}`,
    drop: () => withClient(config, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => {}),
  };
}

/** Two servers on one fresh PostgreSQL database, sharing node 1's master key. */
async function twoServers(t: { after(fn: () => Promise<void>): void }): Promise<[TestServer, TestServer]> {
  const d = await pgDatabase();
  const dirs = [await mkdtemp(join(tmpdir(), 'pinstream-id1-')), await mkdtemp(join(tmpdir(), 'pinstream-id2-'))];
  const s1 = await startTestServer({ dataDir: dirs[0], config: { postgresUrl: d.url } });
  await copyFile(join(dirs[0], MASTER_KEY_FILE), join(dirs[1], MASTER_KEY_FILE));
  const s2 = await startTestServer({ dataDir: dirs[1], config: { postgresUrl: d.url } });
  t.after(async () => {
    await s1.close();
    await s2.close();
    await d.drop();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  return [s1, s2];
}

const common = (s: TestServer, credentials: Creds) => ({ endpoint: s.server.url, region: REGION, maxAttempts: 1, credentials });
const toCreds = (c: { AccessKeyId?: string; SecretAccessKey?: string; SessionToken?: string }): Creds => ({
  accessKeyId: c.AccessKeyId!,
  secretAccessKey: c.SecretAccessKey!,
  sessionToken: c.SessionToken!,
});


test('two servers: STS sessions minted on node 1 authenticate on node 2 at once (GetSessionToken, AssumeRole)', { timeout: 120_000 }, async (t) => {
  const why = (await postgresTarget()).skip;
  if (why) return t.skip(why);
  const [s1, s2] = await twoServers(t);
  const sts1 = new STSClient(common(s1, s1.server.admin));
  t.after(() => sts1.destroy());

  // No waiting for a notification: node 2 looks the unknown key up in PostgreSQL.
  const session = toCreds((await sts1.send(new GetSessionTokenCommand({ DurationSeconds: 900 }))).Credentials!);
  assert.match(session.accessKeyId, /^ASIA/);
  const sts2 = new STSClient(common(s2, session));
  t.after(() => sts2.destroy());
  assert.equal((await sts2.send(new GetCallerIdentityCommand({}))).Arn, `arn:aws:iam::${ACCOUNT}:user/admin`);

  const iam1 = new IAMClient(common(s1, s1.server.admin));
  t.after(() => iam1.destroy());
  const trust = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'sts:AssumeRole' }] });
  await iam1.send(new CreateRoleCommand({ RoleName: 'reader', AssumeRolePolicyDocument: trust }));
  await iam1.send(
    new PutRolePolicyCommand({
      RoleName: 'reader',
      PolicyName: 'kinesis',
      PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kinesis:ListStreams', Resource: '*' }] }),
    }),
  );
  // Node 2 needs the role (a cached definition) to authorize the session's requests.
  const role = toCreds((await sts1.send(new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${ACCOUNT}:role/reader`, RoleSessionName: 'n2' }))).Credentials!);
  const kinesis2 = new KinesisClient(common(s2, role));
  t.after(() => kinesis2.destroy());
  await eventually(async () => {
    await kinesis2.send(new ListStreamsCommand({}));
  });
  const who = await new STSClient(common(s2, role)).send(new GetCallerIdentityCommand({}));
  assert.equal(who.Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/reader/n2`);

  // A wrong secret for a real session key is refused on node 2 as on node 1.
  const forged = new STSClient(common(s2, { ...session, secretAccessKey: 'x'.repeat(40) }));
  t.after(() => forged.destroy());
  await assert.rejects(forged.send(new GetCallerIdentityCommand({})), (e: Error) => e.name === 'SignatureDoesNotMatch');
  // An unknown temporary key is unknown on node 2 too.
  const unknown = new STSClient(common(s2, { ...session, accessKeyId: generateKey(TEMPORARY_KEY_PREFIX).accessKeyId }));
  t.after(() => unknown.destroy());
  await assert.rejects(unknown.send(new GetCallerIdentityCommand({})), (e: Error) => e.name === 'InvalidClientTokenId');
});

test('two servers: an identity pool made through node 1 gives guest credentials through node 2, which work on both', { timeout: 120_000 }, async (t) => {
  const why = (await postgresTarget()).skip;
  if (why) return t.skip(why);
  const [s1, s2] = await twoServers(t);
  const app = await pinpointClient(s1.server).send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'guests' } }));
  const appId = app.ApplicationResponse!.Id!;
  const res = await signedRequest(s1.server.url, { path: `/v1/apps/${appId}/guest-access`, body: '{}', credentials: s1.server.admin });
  assert.equal(res.status, 201, await res.clone().text());
  const { IdentityPoolId } = (await res.json()) as { IdentityPoolId: string };

  // The pool, its role and the role's policy reach node 2 by notification.
  let guest: Creds & { identityId?: string } = { accessKeyId: '', secretAccessKey: '' };
  await eventually(async () => {
    const c = await fromCognitoIdentityPool({ identityPoolId: IdentityPoolId, clientConfig: { endpoint: s2.server.url, region: REGION, maxAttempts: 1 } })();
    guest = { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken, identityId: c.identityId };
  });
  assert.match(guest.accessKeyId, /^ASIA/);
  for (const s of [s2, s1]) {
    const sts = new STSClient(common(s, guest));
    t.after(() => sts.destroy());
    assert.equal((await sts.send(new GetCallerIdentityCommand({}))).Arn, `arn:aws:sts::${ACCOUNT}:assumed-role/pinstream-guest-${appId}/CognitoIdentityCredentials`);
    const endpointId = `device-${s === s1 ? 1 : 2}`;
    const put = await pinpointClient({ url: s.server.url, admin: guest as Creds }, { credentials: guest }).send(
      new PutEventsCommand({
        ApplicationId: appId,
        EventsRequest: { BatchItem: { [endpointId]: { Endpoint: {}, Events: { e1: { EventType: 'guest.event', Timestamp: new Date().toISOString() } } } } },
      }),
    );
    assert.equal(put.EventsResponse!.Results![endpointId].EventsItemResponse!.e1.StatusCode, 202);
  }
});

test('two servers: a Glue table made through node 1 is read through node 2', { timeout: 120_000 }, async (t) => {
  const why = (await postgresTarget()).skip;
  if (why) return t.skip(why);
  const [s1, s2] = await twoServers(t);
  const g1 = new GlueClient(common(s1, s1.server.admin));
  const g2 = new GlueClient(common(s2, s2.server.admin));
  t.after(() => {
    g1.destroy();
    g2.destroy();
  });
  await g1.send(new CreateDatabaseCommand({ DatabaseInput: { Name: 'shared' } }));
  await g1.send(
    new CreateTableCommand({
      DatabaseName: 'shared',
      TableInput: { Name: 'Events', PartitionKeys: [{ Name: 'day', Type: 'string' }], StorageDescriptor: { Columns: [{ Name: 'id', Type: 'string' }], Location: 's3://b/events/' } },
    }),
  );
  await eventually(async () => {
    const got = await g2.send(new GetTableCommand({ DatabaseName: 'shared', Name: 'events' }));
    assert.equal(got.Table!.Name, 'events');
    assert.equal(got.Table!.StorageDescriptor!.Location, 's3://b/events/');
  });
  // Partitions are not cached: one added through node 2 is read through node 1 at once.
  await s2.server.catalog.getTable('shared', 'events');
  const { GetPartitionCommand, CreatePartitionCommand } = await import('@aws-sdk/client-glue');
  await g2.send(new CreatePartitionCommand({ DatabaseName: 'shared', TableName: 'events', PartitionInput: { Values: ['2026-12-01'] } }));
  const p = await g1.send(new GetPartitionCommand({ DatabaseName: 'shared', TableName: 'events', PartitionValues: ['2026-12-01'] }));
  assert.deepEqual(p.Partition!.Values, ['2026-12-01']);
});

test('two servers starting together on an empty database end with ONE admin key, accepted by both', { timeout: 120_000 }, async (t) => {
  const why = (await postgresTarget()).skip;
  if (why) return t.skip(why);
  const d = await pgDatabase();
  const dirs = [await mkdtemp(join(tmpdir(), 'pinstream-race1-')), await mkdtemp(join(tmpdir(), 'pinstream-race2-'))];
  // A cluster shares its master key file (PINSTREAM_MASTER_KEY_FILE): made here, before either starts.
  const keyFile = join(dirs[0], 'cluster.key');
  const { writeFile } = await import('node:fs/promises');
  await writeFile(keyFile, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
  const configs = dirs.map((dataDir) => loadConfig({}, { port: 0, dataDir, metricsToken: TEST_METRICS_TOKEN, postgresUrl: d.url, masterKeyFile: keyFile }));
  const servers = await Promise.all(configs.map((c) => startPinstream(c)));
  t.after(async () => {
    for (const s of servers) await s.close();
    await d.drop();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  assert.equal(servers[0].admin.accessKeyId, servers[1].admin.accessKeyId, 'both nodes report the same admin key');
  assert.equal(servers[0].admin.secretAccessKey, servers[1].admin.secretAccessKey);
  const { config } = await postgresTarget();
  const rows = await withClient({ ...config!, database: new URL(d.url).pathname.slice(1) }, (c) =>
    c.query("SELECT access_key_id FROM access_keys WHERE user_name = 'admin'"),
  );
  assert.equal(rows.rowCount, 1, 'one admin key stored');
  for (const s of servers) {
    for (const target of servers) {
      const sts = new STSClient({ endpoint: target.url, region: REGION, maxAttempts: 1, credentials: s.admin });
      assert.equal((await sts.send(new GetCallerIdentityCommand({}))).Arn, `arn:aws:iam::${ACCOUNT}:user/admin`);
      sts.destroy();
    }
  }
});

test(`PostgreSQL session lookups: at most MAX_SESSION_LOOKUPS_IN_FLIGHT at once, unknown keys asked once per UNKNOWN_KEY_TTL_MS, sessions of other nodes found, revocations followed`, async (t) => {
  const why = (await postgresTarget()).skip;
  if (why) return t.skip(why);
  const d = await pgDatabase();
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-lookups-'));
  const clock = new ManualClock(Date.parse('2026-12-01T00:00:00Z'));
  const node = await openNode(dir, (db) => openMetadata({ db, postgresUrl: d.url }), clock);
  const closers: Array<() => Promise<void>> = [() => node.close()];
  t.after(async () => {
    for (const c of closers.reverse()) await c();
    await d.drop();
    await rm(dir, { recursive: true, force: true });
  });
  const keys = Array.from({ length: MAX_SESSION_LOOKUPS_IN_FLIGHT + 1 }, () => generateKey(TEMPORARY_KEY_PREFIX).accessKeyId);
  const pending = keys.map((k) => node.iam.resolveKey(k));
  assert.ok(pending.slice(0, -1).every((p) => p instanceof Promise));
  await assert.rejects(pending.at(-1)!, (e: unknown) => e instanceof SessionLookupBusy);
  await Promise.all(pending.slice(0, -1));
  assert.equal(node.iam.sessionCacheSizes().lookups, 0);
  assert.equal(node.iam.sessionCacheSizes().unknown, MAX_SESSION_LOOKUPS_IN_FLIGHT);
  // Known not to exist: no second lookup, until UNKNOWN_KEY_TTL_MS has passed.
  assert.equal(node.iam.resolveKey(keys[0]), undefined);
  const real = await node.iam.createTemporarySession({ kind: 'user', principal: 'admin', principalId: 'AIDAX', arn: 'a', durationSeconds: 3600 });
  await node.meta.write(
    [
      {
        sql: `INSERT INTO sts_sessions (access_key_id, secret, token, kind, principal, principal_id, arn, policy, chained, expiration, create_date)
              SELECT ?, secret, token, kind, principal, principal_id, arn, policy, chained, expiration, create_date FROM sts_sessions WHERE access_key_id = ?`,
        params: [keys[0], real.accessKeyId],
      },
    ],
    [],
  );
  clock.advance(UNKNOWN_KEY_TTL_MS - 1);
  assert.equal(node.iam.resolveKey(keys[0]), undefined, 'still believed unknown');
  clock.advance(1);
  await node.iam.resolveKey(keys[0]);
  assert.equal(node.iam.keyOwner(keys[0])?.creds.sessionToken, real.sessionToken, 'looked up again after the TTL');
  // A session another node (same master key, as a cluster shares) makes is found.
  const dir2 = await mkdtemp(join(tmpdir(), 'pinstream-lookups2-'));
  await copyFile(join(dir, MASTER_KEY_FILE), join(dir2, MASTER_KEY_FILE));
  const other = await openNode(dir2, (db) => openMetadata({ db, postgresUrl: d.url }));
  closers.push(async () => {
    await other.close();
    await rm(dir2, { recursive: true, force: true });
  });
  const made = await node.iam.createTemporarySession({ kind: 'user', principal: 'admin', principalId: 'AIDAX', arn: 'a', durationSeconds: 900 });
  assert.equal(other.iam.keyOwner(made.accessKeyId), undefined, 'not known before the lookup');
  await other.iam.resolveKey(made.accessKeyId);
  assert.equal(other.iam.keyOwner(made.accessKeyId)?.creds.sessionToken, made.sessionToken);
  assert.equal(other.iam.resolveKey(made.accessKeyId), undefined, 'cached: no second lookup');

  // A session revoked on one node (a Cognito identity's oldest, trimmed) leaves the other's cache.
  const web = { provider: 'cognito-identity.amazonaws.com', sub: 'us-east-1:device', aud: 'pool', poolId: 'pool' };
  const old = await node.iam.createTemporarySession({ kind: 'role', principal: 'guest', principalId: 'AROAX', arn: 'a', durationSeconds: 900, webIdentity: web });
  await node.iam.createTemporarySession({ kind: 'role', principal: 'guest', principalId: 'AROAX', arn: 'a', durationSeconds: 900, webIdentity: web });
  await other.iam.resolveKey(old.accessKeyId);
  assert.ok(other.iam.keyOwner(old.accessKeyId), 'cached on the other node');
  const dropped = changeSeen(other.meta, 'sts_sessions', () => other.iam.keyOwner(old.accessKeyId) === undefined);
  assert.equal(await node.iam.trimIdentitySessions(web.sub, 1), 1);
  await dropped;
  await other.iam.resolveKey(old.accessKeyId);
  assert.equal(other.iam.keyOwner(old.accessKeyId), undefined, 'looked up again: gone');
});

test('two nodes making the admin key at the same moment agree on one (the loser uses the winner\'s)', async (t) => {
  const why = (await postgresTarget()).skip;
  if (why) return t.skip(why);
  const d = await pgDatabase();
  const dirs = [await mkdtemp(join(tmpdir(), 'pinstream-admin1-')), await mkdtemp(join(tmpdir(), 'pinstream-admin2-'))];
  const one = await openNode(dirs[0], (db) => openMetadata({ db, postgresUrl: d.url }));
  await copyFile(join(dirs[0], MASTER_KEY_FILE), join(dirs[1], MASTER_KEY_FILE));
  const two = await openNode(dirs[1], (db) => openMetadata({ db, postgresUrl: d.url }));
  t.after(async () => {
    await one.close();
    await two.close();
    await d.drop();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  // Both caches are loaded and empty: each node believes it must make the key.
  const [a, b] = await Promise.all([one.iam.ensureAdmin(), two.iam.ensureAdmin()]);
  assert.equal(a.credentials.accessKeyId, b.credentials.accessKeyId);
  assert.equal(a.credentials.secretAccessKey, b.credentials.secretAccessKey);
  assert.deepEqual([a.created, b.created].sort(), [false, true], 'one node made it');
  const rows = await one.meta.driver.all<{ access_key_id: string }>("SELECT access_key_id FROM access_keys WHERE user_name = 'admin'");
  assert.deepEqual(rows.map((r) => r.access_key_id), [a.credentials.accessKeyId]);
  for (const n of [one, two]) assert.equal(n.iam.keyOwner(a.credentials.accessKeyId)?.user, 'admin', 'both accept it');
});
