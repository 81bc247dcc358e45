// The metadata Store contract (test/helpers/store-contract.ts) against both adapters: SQLite (the
// embedded default) and PostgreSQL (a fresh database per test on 127.0.0.1:5432, dropped after;
// skipped with the reason when PostgreSQL is not reachable). Then what only a shared store has:
// two nodes whose caches follow each other's changes, migrations raced by nodes starting together,
// a lost LISTEN connection, and start-up with PostgreSQL unreachable or misnamed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { IAMClient, CreateAccessKeyCommand, CreateUserCommand, DeleteAccessKeyCommand } from '@aws-sdk/client-iam';
import { GetAppsCommand, CreateAppCommand } from '@aws-sdk/client-pinpoint';
import { MetadataCache, openMetadata, sqliteMetadata, type SqlDriver } from '../src/store/metadata.js';
import { SqliteDriver } from '../src/store/sqlite-driver.js';
import { openDb } from '../src/store/db.js';
import { ManualClock } from '../src/clock.js';
import { PG_MAX_PAYLOAD_BYTES, PG_MIGRATIONS, PostgresDriver, pgPlaceholders } from '../src/store/postgres.js';
import { PostgresError } from '../src/store/postgres-url.js';
import { ConfigError, loadConfig } from '../src/config/config.js';
import { MASTER_KEY_FILE } from '../src/iam/secrets.js';
import { IamStore, generateKey } from '../src/iam/store.js';
import { startTestServer, pinpointClient } from './helpers/server.js';
import { pgDatabase, postgresTarget, withClient } from './helpers/postgres.js';
import { changeSeen, deliveryStream, openNode, openStreams, storeContract, type Backend, type StoreNode } from './helpers/store-contract.js';
import { eventually } from './helpers/eventually.js';
import { DELIVERER_CHECKPOINT } from '../src/firehose/registry.js';
import { incarnationOf } from '../src/kinesis/encryption.js';

const pgSkip = async () => (await postgresTarget()).skip;

async function pgBackend(): Promise<Backend & { url: string }> {
  const d = await pgDatabase();
  return { url: d.url, open: (db) => openMetadata({ db, postgresUrl: d.url }), drop: d.drop };
}

storeContract('sqlite', async () => ({ open: async (db) => sqliteMetadata(db), drop: async () => {} }), async () => undefined);
storeContract('postgres', pgBackend, pgSkip);

test('portable placeholders become PostgreSQL ones, outside quoted text only', () => {
  assert.equal(pgPlaceholders("SELECT ? , 'a?b', \"c?\" WHERE x = ? AND y = ?"), "SELECT $1 , 'a?b', \"c?\" WHERE x = $2 AND y = $3");
});

/** Two nodes on one PostgreSQL database, sharing the master key as PINSTREAM_MASTER_KEY_FILE would. */
async function twoNodes(t: { after(fn: () => Promise<void>): void }): Promise<[StoreNode, StoreNode]> {
  const b = await pgBackend();
  const dirs = [await mkdtemp(join(tmpdir(), 'pinstream-node1-')), await mkdtemp(join(tmpdir(), 'pinstream-node2-'))];
  const one = await openNode(dirs[0], (db) => b.open(db));
  await copyFile(join(dirs[0], MASTER_KEY_FILE), join(dirs[1], MASTER_KEY_FILE));
  const two = await openNode(dirs[1], (db) => b.open(db));
  t.after(async () => {
    await one.close();
    await two.close();
    await b.drop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  return [one, two];
}

test('two nodes: keys, policies and apps changed on one are seen on the other', async (t) => {
  const why = await pgSkip();
  if (why) return t.skip(why);
  const [one, two] = await twoNodes(t);

  // A key created on node 1 authenticates on node 2 (node 2 had answered "unknown" for it before).
  await one.iam.createUser('carol');
  const given = generateKey();
  assert.equal(two.iam.keyOwner(given.accessKeyId), undefined);
  const key = await one.iam.createAccessKey('carol', given);
  await changeSeen(two.meta, 'access_keys', () => two.iam.keyOwner(key.accessKeyId) !== undefined);
  assert.equal(two.iam.keyOwner(key.accessKeyId)!.creds.secretAccessKey, key.secretAccessKey);

  // Deleted on node 1: it stops authenticating on node 2.
  const gone = changeSeen(two.meta, 'access_keys', () => two.iam.keyOwner(key.accessKeyId) === undefined);
  await one.iam.deleteAccessKey(key.accessKeyId);
  await gone;

  // An inline policy, then a managed policy's new default version.
  const allows = (action: string) => JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: action, Resource: '*' }] });
  const has = (action: string) => () => JSON.stringify(two.iam.policies('user', 'carol')).includes(action);
  let p = changeSeen(two.meta, 'iam_policies', has('kinesis:PutRecord'));
  await one.iam.putPolicy('user', 'carol', 'inline', allows('kinesis:PutRecord'));
  await p;
  assert.ok(has('kinesis:PutRecord')(), 'node 2 parsed its policies before the change and sees the new one');
  p = changeSeen(two.meta, 'iam_policies', () => !has('kinesis:PutRecord')());
  await one.iam.putPolicy('user', 'carol', 'inline', allows('firehose:PutRecord'));
  await p;
  const m = await one.iam.createManagedPolicy('shared', '/', allows('sqs:SendMessage'));
  p = changeSeen(two.meta, 'iam_attachments', has('sqs:SendMessage'));
  await one.iam.attachPolicy('user', 'carol', m.arn);
  await p;
  p = changeSeen(two.meta, 'iam_managed_policies', has('sns:Publish'));
  await one.iam.createPolicyVersion(one.iam.getManagedPolicy(m.arn)!, allows('sns:Publish'), true);
  await p;
  assert.equal(two.iam.getManagedPolicy(m.arn)!.default_version, 'v2');

  // An app created on node 1 serves on node 2; deleted there, it is gone here.
  const app = await one.apps.create('shared', {});
  await changeSeen(two.meta, 'apps', () => two.apps.get(app.Id) !== undefined);
  assert.equal(two.apps.get(app.Id)!.Name, 'shared');
  const deleted = changeSeen(two.meta, 'apps', () => two.apps.get(app.Id) === undefined);
  await one.apps.delete(app.Id);
  await deleted;
  // Apps made on both nodes get distinct creation numbers: paging is in one order everywhere.
  await Promise.all([one.apps.create('a1', {}), two.apps.create('b1', {}), one.apps.create('a2', {}), two.apps.create('b2', {})]);
  const [rows] = [await one.meta.driver.all<{ n: number; d: number }>('SELECT count(*) AS n, count(DISTINCT created_seq) AS d FROM apps')];
  assert.deepEqual(rows[0], { n: 4, d: 4 });
});

test('two nodes: Kinesis streams, their data keys and Firehose delivery streams changed on one are seen on the other', async (t) => {
  const why = await pgSkip();
  if (why) return t.skip(why);
  const [one, two] = await twoNodes(t);
  const [k1, k2] = [await openStreams(one), await openStreams(two)];
  t.after(async () => {
    await k1.close();
    await k2.close();
  });
  const s1 = await k1.kinesis.create('shared', 1, 'PROVISIONED', {});
  await changeSeen(two.meta, 'kinesis_streams', () => k2.kinesis.list().some((s) => s.name === 'shared'));
  const held = k2.kinesis.get('shared');
  // Changed on node 1: node 2's document changes in place (requests holding it see the change).
  s1.tags.team = 'a';
  s1.encryption = { keyId: 'alias/aws/kinesis' };
  await k1.kinesis.save(s1);
  await changeSeen(two.meta, 'kinesis_streams', () => held.tags.team === 'a');
  assert.equal(k2.kinesis.get('shared'), held);
  assert.deepEqual(held.encryption, { keyId: 'alias/aws/kinesis' });
  // A data key node 1 stores reaches node 2 by notification; node 2's own gets another id.
  const inc = incarnationOf(s1);
  const [r1] = await k1.kinesis.keys.sealAll(inc, 0, [Buffer.from('from one')]);
  await changeSeen(two.meta, 'kinesis_data_keys', () => k2.kinesis.keys.count(inc) === 1);
  assert.equal(k2.kinesis.keys.open(inc, 0, r1).toString(), 'from one');
  const [r2] = await k2.kinesis.keys.sealAll(inc, 0, [Buffer.from('from two')]);
  assert.notEqual(r2.readUInt32BE(1), r1.readUInt32BE(1));
  // Deleted on node 1: gone on node 2, keys with it.
  await k1.kinesis.delete('shared');
  await changeSeen(two.meta, 'kinesis_streams', () => !k2.kinesis.list().some((s) => s.name === 'shared'));
  await changeSeen(two.meta, 'kinesis_data_keys', () => k2.kinesis.keys.count(inc) === 0);
  // Re-created under the name on node 2: a new incarnation on node 1, not the old document.
  const again = await k2.kinesis.create('shared', 2, 'PROVISIONED', {});
  await changeSeen(one.meta, 'kinesis_streams', () => k1.kinesis.list().some((s) => s.name === 'shared' && s.createdMs === again.createdMs));
  assert.equal(k1.kinesis.get('shared').shards.length, 2);
  // The name is taken on every node.
  await assert.rejects(k1.kinesis.create('shared', 1, 'PROVISIONED', {}), (e: any) => e.code === 'ResourceInUseException');

  // Firehose: created, changed and checkpointed on node 1; seen on node 2; deleted there.
  const heard: Array<string | undefined> = [];
  k2.firehose.onChange((n) => heard.push(n));
  await k1.firehose.create(deliveryStream('fh'));
  await changeSeen(two.meta, 'firehose_streams', () => k2.firehose.get('fh') !== undefined);
  const d = k1.firehose.require('fh');
  d.version = 2;
  await k1.firehose.save(d);
  await changeSeen(two.meta, 'firehose_streams', () => k2.firehose.get('fh')?.version === 2);
  k1.firehose.saveCheckpoint('fh', DELIVERER_CHECKPOINT, '7');
  await k1.firehose.flush();
  await changeSeen(two.meta, 'firehose_checkpoints', () => k2.firehose.checkpoint('fh', DELIVERER_CHECKPOINT) === '7');
  await k2.firehose.delete('fh');
  await changeSeen(one.meta, 'firehose_streams', () => k1.firehose.get('fh') === undefined);
  assert.equal(k1.firehose.checkpoint('fh', DELIVERER_CHECKPOINT), undefined);
  assert.ok(heard.filter((n) => n === 'fh').length >= 2, 'node 2 was told of the creation and the change');
});

test('two nodes starting together on a fresh database: migrations run once, under the lock', async (t) => {
  const why = await pgSkip();
  if (why) return t.skip(why);
  const d = await pgDatabase();
  t.after(() => d.drop());
  const drivers = await Promise.all([PostgresDriver.open(d.url), PostgresDriver.open(d.url), PostgresDriver.open(d.url)]);
  try {
    const rows = await drivers[0].all<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    assert.deepEqual(
      rows.map((r) => r.version),
      PG_MIGRATIONS.map((_, i) => i + 1),
    );
  } finally {
    for (const dr of drivers) await dr.close();
  }
});

test('a node whose LISTEN connection is cut reconnects and reloads what it missed', async (t) => {
  const why = await pgSkip();
  if (why) return t.skip(why);
  const [one, two] = await twoNodes(t);
  const { config } = await postgresTarget();
  await one.iam.createUser('dave');
  // A full reload announces every table with an empty key.
  const resynced = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('node 2 did not reload everything within 20 s')), 20_000);
    const off = two.meta.onChange((c) => {
      if (c.key.length > 0) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
  // Cut every LISTEN connection on this database (node 1's too: it needs none to write).
  const db = new URL((two.meta.driver as unknown as { url: URL }).url.href).pathname.slice(1);
  const cut = await withClient(config!, (c) =>
    c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'`, [db]),
  );
  assert.ok(cut.rowCount! >= 1, 'a LISTEN connection was cut');
  // Written while node 2 may not be listening: it must converge whether by notification or resync.
  const key = await one.iam.createAccessKey('dave');
  await resynced;
  await changeSeen(two.meta, 'access_keys', () => two.iam.keyOwner(key.accessKeyId) !== undefined && !two.meta.health().stale, 20_000);
  assert.equal(two.meta.health().stale, false);
});

test(`a write whose notification would pass PG_MAX_PAYLOAD_BYTES makes the other nodes reload everything`, async (t) => {
  const why = await pgSkip();
  if (why) return t.skip(why);
  const [one, two] = await twoNodes(t);
  const names = Array.from({ length: 300 }, (_, i) => `bulk-user-${String(i).padStart(4, '0')}`);
  const changes = names.map((n) => ({ table: 'iam_users', key: [n] }));
  assert.ok(JSON.stringify(changes).length > PG_MAX_PAYLOAD_BYTES, 'the changes do not fit one notification');
  const seen = changeSeen(two.meta, 'iam_users', () => names.every((n) => two.iam.getUser(n) !== undefined));
  await one.meta.write(
    names.map((n) => ({ sql: 'INSERT INTO iam_users (name, user_id, path, create_date) VALUES (?, ?, ?, ?)', params: [n, 'AIDA' + n, '/', 'now'] })),
    changes,
  );
  await seen;
  assert.equal(two.iam.listUsers().length, 300);
});

test('a write committed but not read back (database gone right after the commit) is reloaded in the background until it is', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-readback-'));
  const db = openDb(dir);
  // The real SQLite driver with reads failing on demand: the fault a dropped connection causes.
  const inner = new SqliteDriver(db);
  let failReads = 0;
  const driver: SqlDriver = Object.assign(Object.create(inner) as SqlDriver, {
    all: <T>(sql: string, params?: unknown[]) => (failReads-- > 0 ? Promise.reject(new Error('connection lost (injected)')) : inner.all<T>(sql, params)),
  });
  const meta = new MetadataCache(driver);
  t.after(async () => {
    await meta.close();
    db.close();
    await rm(dir, { recursive: true, force: true });
  });
  const iam = await IamStore.open(db, meta, new ManualClock(0), '000000000000', dir);
  failReads = 3;
  const back = changeSeen(meta, 'iam_users', () => iam.getUser('late') !== undefined && !meta.health().stale);
  await assert.rejects(iam.createUser('late'), /connection lost \(injected\)/);
  assert.equal(meta.health().stale, true);
  await back;
  assert.equal(iam.getUser('late')?.name, 'late');
});

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

test('start-up stops with a message naming PostgreSQL when it is unreachable or the URL is malformed', async () => {
  const port = await closedPort();
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-nopg-'));
  try {
    const config = loadConfig({}, { port: 0, dataDir, postgresUrl: `postgres://postgres@127.0.0.1:${port}/pinstream` });
    const { startPinstream } = await import('../src/server.js');
    await assert.rejects(startPinstream(config), (e: unknown) => e instanceof PostgresError && /PostgreSQL at 127\.0\.0\.1:\d+\/pinstream is unreachable/.test((e as Error).message));
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
  await assert.rejects(PostgresDriver.open('mysql://h/db'), (e: unknown) => e instanceof PostgresError && /PostgreSQL/.test((e as Error).message));
  assert.throws(() => loadConfig({ PINSTREAM_POSTGRES_URL: 'not a url' }), (e: unknown) => e instanceof ConfigError && /PINSTREAM_POSTGRES_URL.*postgres:\/\//.test((e as Error).message));
  assert.throws(() => loadConfig({ PINSTREAM_POSTGRES_URL: 'http://h/db' }), (e: unknown) => e instanceof ConfigError && /PostgreSQL/.test((e as Error).message));
  assert.throws(() => loadConfig({ PINSTREAM_POSTGRES_URL: 'postgres://h' }), (e: unknown) => e instanceof ConfigError && /names no PostgreSQL database/.test((e as Error).message));
  assert.equal(loadConfig({ PINSTREAM_POSTGRES_URL: 'postgres://u:secret@h:5433/db' }).postgresUrl, 'postgres://u:secret@h:5433/db');
  assert.equal(loadConfig({}).postgresUrl, undefined);
});

test('two nodes: event-stream settings set on one reach the other (its change listeners hear the app); checkpoints are shared and fenced by epoch', async (t) => {
  const why = await pgSkip();
  if (why) return t.skip(why);
  const [one, two] = await twoNodes(t);
  const heard: Array<string | undefined> = [];
  two.eventStreams.onChange((id) => heard.push(id));
  const row = { app_id: 'app1', destination_arn: 'arn:aws:kinesis:us-east-1:000000000000:stream/s', role_arn: 'arn:aws:iam::000000000000:role/r', last_modified: 'x', last_updated_by: 'me' };
  await one.eventStreams.save(row, { checkpoint: 3, initial: 3, epoch: 100 });
  await changeSeen(two.meta, 'event_streams', () => two.eventStreams.get('app1')?.destination_arn === row.destination_arn);
  assert.ok(heard.includes('app1'));
  // A worker on node 2 advances; node 1 reads the same checkpoint.
  assert.equal(await two.eventStreams.advance('app1', 8, 100), 8);
  assert.equal((await one.eventStreams.checkpoint('app1'))?.position, 8);
  // A replay through node 1: node 2 sees the new epoch in the cached settings, its old worker is refused.
  await one.eventStreams.setCheckpoint('app1', 2);
  await changeSeen(two.meta, 'event_streams', () => two.eventStreams.get('app1')?.epoch === 101);
  assert.equal(await two.eventStreams.advance('app1', 9, 100), undefined);
  assert.equal((await two.eventStreams.checkpoint('app1'))?.position, 2);
  await one.eventStreams.remove('app1');
  await changeSeen(two.meta, 'event_streams', () => two.eventStreams.get('app1') === undefined);
});

test('two servers on one PostgreSQL: a key and an app made through one serve through the other', { timeout: 120_000 }, async (t) => {
  const why = await pgSkip();
  if (why) return t.skip(why);
  const b = await pgBackend();
  const dirs = [await mkdtemp(join(tmpdir(), 'pinstream-srv1-')), await mkdtemp(join(tmpdir(), 'pinstream-srv2-'))];
  const s1 = await startTestServer({ dataDir: dirs[0], config: { postgresUrl: b.url } });
  await copyFile(join(dirs[0], MASTER_KEY_FILE), join(dirs[1], MASTER_KEY_FILE));
  const s2 = await startTestServer({ dataDir: dirs[1], config: { postgresUrl: b.url } });
  t.after(async () => {
    await s1.server.close();
    await s2.server.close();
    await b.drop();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  // Both nodes share the admin user; node 2 found node 1's bootstrap key instead of making another.
  assert.equal(s2.server.admin.accessKeyId, s1.server.admin.accessKeyId);
  const iam1 = new IAMClient({ endpoint: s1.server.url, region: 'us-east-1', credentials: s1.server.admin, maxAttempts: 1 });
  await iam1.send(new CreateUserCommand({ UserName: 'ops' }));
  const { AccessKey } = await iam1.send(new CreateAccessKeyCommand({ UserName: 'ops' }));
  const creds = { accessKeyId: AccessKey!.AccessKeyId!, secretAccessKey: AccessKey!.SecretAccessKey! };
  const app = await pinpointClient(s1.server).send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'everywhere' } }));
  // The new key has no policy: node 2 knows it (AccessDenied, not an unknown key) once it has the change.
  const viaTwo = pinpointClient({ url: s2.server.url, admin: creds });
  await eventually(async () => {
    const e = await viaTwo.send(new GetAppsCommand({})).then(() => undefined, (err: Error) => err);
    assert.equal(e?.name, 'ForbiddenException', String(e));
  });
  const apps = await pinpointClient(s2.server).send(new GetAppsCommand({}));
  assert.ok(apps.ApplicationsResponse!.Item!.some((a) => a.Id === app.ApplicationResponse!.Id));
  await iam1.send(new DeleteAccessKeyCommand({ UserName: 'ops', AccessKeyId: creds.accessKeyId }));
  await eventually(async () => {
    const e = await viaTwo.send(new GetAppsCommand({})).then(() => undefined, (err: Error) => err);
    assert.notEqual(e?.name, 'ForbiddenException', 'the deleted key is no longer known on node 2');
    assert.ok(e, 'refused');
  });
});

