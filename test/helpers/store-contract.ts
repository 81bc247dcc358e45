// The metadata Store contract: what IAM and apps must do on any adapter (SQLite, PostgreSQL),
// through the domain modules callers use (IamStore, Apps) and the `SqlDriver` they write with.
// test/store-contract.test.ts runs it against each adapter; a new adapter passes it before it is
// wired in.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, type Db } from '../../src/store/db.js';
import { savepoint, type Change, type MetadataCache } from '../../src/store/metadata.js';
import { ADMIN_USER, IamStore, SESSION_CACHE_SIZE, TEMPORARY_KEY_PREFIX, UNKNOWN_KEY_CACHE_SIZE, generateKey } from '../../src/iam/store.js';
import { DEFAULT_COGNITO_LIMITS, IdentityPools, LimitError } from '../../src/cognito/pools.js';
import { CognitoTokens } from '../../src/cognito/tokens.js';
import { SecretBox } from '../../src/iam/secrets.js';
import { CatalogError, CatalogStore, DEFAULT_CATALOG_LIMITS } from '../../src/catalog/store.js';
import { FunnelStore, MAX_FUNNELS_PER_APP } from '../../src/analytics/funnels.js';
import { Apps } from '../../src/pinpoint/apps.js';
import { EventStreamStore, MAX_DELIVERY_ERRORS_PER_APP } from '../../src/pinpoint/eventstream-store.js';
import { ManualClock } from '../../src/clock.js';
import { StreamRegistry } from '../../src/kinesis/streams.js';
import { TokenSigner } from '../../src/kinesis/iterators.js';
import { DataKeys, incarnationOf } from '../../src/kinesis/encryption.js';
import { DeliveryStreamRegistry, DELIVERER_CHECKPOINT, type DeliveryStreamState } from '../../src/firehose/registry.js';
import { ENDPOINT_SHARED_CACHE_MS, Endpoints } from '../../src/pinpoint/endpoints.js';
import { EndpointJobs } from '../../src/pinpoint/jobs/jobs.js';
import { HistoryJobs } from '../../src/history/jobs.js';
import type { EventStore } from '../../src/analytics/store.js';
import type { Log } from '../../src/log/log.js';

export const ACCOUNT = '000000000000';
export const REGION = 'us-east-1';

/** One node's view: its SQLite file (temporary credentials, endpoints), metadata, IAM and apps. */
export interface StoreNode {
  dir: string;
  db: Db;
  meta: MetadataCache;
  iam: IamStore;
  apps: Apps;
  eventStreams: EventStreamStore;
  close(): Promise<void>;
}

/** Opens a node's stores over `meta`, in a data directory (its master key seals the IAM secrets). */
export async function openNode(dir: string, openMeta: (db: Db) => Promise<MetadataCache>, clock = new ManualClock(Date.parse('2026-12-01T00:00:00Z'))): Promise<StoreNode> {
  const db = openDb(dir);
  const meta = await openMeta(db);
  const iam = await IamStore.open(db, meta, clock, ACCOUNT, dir);
  const apps = await Apps.open(db, meta, clock, REGION, ACCOUNT);
  const eventStreams = await EventStreamStore.open(meta);
  return {
    dir,
    db,
    meta,
    iam,
    apps,
    eventStreams,
    async close() {
      await meta.close();
      db.close();
    },
  };
}

/**
 * Resolves once `ready()` holds: at once, or when `meta` has applied a change to `table` after
 * which it does (a change from another node arrives as a notification, then a reload); rejects
 * after `timeoutMs`.
 */
export function changeSeen(meta: MetadataCache, table: string, ready: () => boolean, timeoutMs = 10_000): Promise<void> {
  if (ready()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no change to ${table} reached this node within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = meta.onChange((c: Change) => {
      if (c.table !== table || !ready()) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}

/** Kinesis and Firehose over one node's metadata store (issue 17): what a server opens on it. */
export interface StreamNode {
  kinesis: StreamRegistry;
  signer: TokenSigner;
  firehose: DeliveryStreamRegistry;
  close(): Promise<void>;
}

export async function openStreams(n: StoreNode, clock = new ManualClock(Date.parse('2026-12-01T00:00:00Z'))): Promise<StreamNode> {
  const secrets = new SecretBox(n.dir);
  const kinesis = await StreamRegistry.open(n.meta, clock, { dataDir: n.dir, region: REGION, accountId: ACCOUNT, transitionMs: 0, fsync: false, secrets }, n.db);
  const signer = await TokenSigner.open(n.meta, 'kinesis-iterators', secrets);
  const firehose = await DeliveryStreamRegistry.open(n.meta, REGION, ACCOUNT, secrets);
  return {
    kinesis,
    signer,
    firehose,
    async close() {
      await firehose.flush();
      await kinesis.close();
    },
  };
}

/** A DirectPut delivery stream's document (an S3 destination with a secret-free configuration). */
export function deliveryStream(name: string, now = Date.parse('2026-12-01T00:00:00Z')): DeliveryStreamState {
  return {
    name,
    type: 'DirectPut',
    version: 1,
    createdMs: now,
    updatedMs: now,
    kind: 'ExtendedS3',
    destination: { BucketARN: 'arn:aws:s3:::b', RoleARN: `arn:aws:iam::${ACCOUNT}:role/r` },
    tags: {},
  };
}

const policy = (action: string) => JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: action, Resource: '*' }] });

/** A fresh, empty metadata backend for one test; `open` may be called again for more nodes on it. */
export interface Backend {
  /** Opens a metadata store on this backend for a node whose SQLite database is `db`. */
  open(db: Db): Promise<MetadataCache>;
  drop(): Promise<void>;
}

/**
 * Registers the contract's tests against one adapter. `backend` makes a fresh one per test; `skip`
 * says why the adapter cannot run here (the tests are then skipped with that reason).
 */
export function storeContract(adapter: string, backend: () => Promise<Backend>, skip: () => Promise<string | undefined>): void {
  const withNode = (name: string, fn: (n: StoreNode, b: Backend) => Promise<void>) =>
    test(`${adapter}: ${name}`, async (t) => {
      const why = await skip();
      if (why) return t.skip(why);
      const dir = await mkdtemp(join(tmpdir(), 'pinstream-store-'));
      const b = await backend();
      const node = await openNode(dir, (db) => b.open(db));
      try {
        await fn(node, b);
      } finally {
        await node.close();
        await b.drop();
        await rm(dir, { recursive: true, force: true });
      }
    });

  withNode('an access key authenticates its user until it is made inactive or deleted; its secret is stored sealed', async ({ iam, meta }) => {
    await iam.createUser('alice', '/team/');
    const key = await iam.createAccessKey('alice');
    const owner = iam.keyOwner(key.accessKeyId)!;
    assert.equal(owner.creds.secretAccessKey, key.secretAccessKey);
    assert.equal(owner.arn, `arn:aws:iam::${ACCOUNT}:user/team/alice`);
    const [row] = await meta.driver.all<{ secret: Buffer }>('SELECT secret FROM access_keys WHERE access_key_id = ?', [key.accessKeyId]);
    assert.ok(Buffer.isBuffer(row.secret));
    assert.equal(row.secret.includes(Buffer.from(key.secretAccessKey)), false, 'the secret is not stored in the clear');
    await iam.setAccessKeyStatus(key.accessKeyId, 'Inactive');
    assert.equal(iam.keyOwner(key.accessKeyId), undefined);
    assert.equal(iam.getAccessKey(key.accessKeyId)?.status, 'Inactive');
    await iam.setAccessKeyStatus(key.accessKeyId, 'Active');
    assert.ok(iam.keyOwner(key.accessKeyId));
    await iam.deleteAccessKey(key.accessKeyId);
    assert.equal(iam.keyOwner(key.accessKeyId), undefined);
    assert.deepEqual(iam.listAccessKeys('alice'), []);
  });

  withNode('a key looked up before it exists is found once it is created (no stale negative answer)', async ({ iam }) => {
    const given = generateKey();
    assert.equal(iam.keyOwner(given.accessKeyId), undefined);
    await iam.createUser('bob');
    await iam.createAccessKey('bob', given);
    assert.equal(iam.keyOwner(given.accessKeyId)?.user, 'bob');
  });

  withNode('users, groups and roles: case-insensitive name clashes, sorted lists, deletion', async ({ iam }) => {
    await iam.createUser('Zed');
    await iam.createUser('amy');
    assert.equal(iam.userNameTaken('ZED'), 'Zed');
    assert.deepEqual(
      iam.listUsers().map((u) => u.name),
      ['Zed', 'amy'],
    );
    await iam.createGroup('devs');
    await iam.addUserToGroup('devs', 'amy');
    await iam.addUserToGroup('devs', 'amy');
    assert.deepEqual(
      iam.groupMembers('devs').map((u) => u.name),
      ['amy'],
    );
    assert.deepEqual(
      iam.groupsForUser('amy').map((g) => g.name),
      ['devs'],
    );
    await iam.removeUserFromGroup('devs', 'amy');
    assert.deepEqual(iam.groupsForUser('amy'), []);
    const role = await iam.createRole('Worker', JSON.stringify({ Version: '2012-10-17', Statement: [] }), { path: '/svc/', maxSessionDuration: 7200 });
    assert.deepEqual(iam.getRole('Worker'), role);
    assert.equal(iam.roleByArn(`arn:aws:iam::${ACCOUNT}:role/svc/Worker`)?.role_id, role.role_id);
    assert.equal(iam.roleNameTaken('worker'), 'Worker');
    await iam.updateAssumeRolePolicy('Worker', '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"sts:AssumeRole"}]}');
    assert.match(iam.getRole('Worker')!.assume_role_policy, /Deny/);
    await iam.deleteRole('Worker');
    await iam.deleteUser('Zed');
    await iam.deleteGroup('devs');
    assert.equal(iam.getRole('Worker'), undefined);
    assert.deepEqual(
      iam.listUsers().map((u) => u.name),
      ['amy'],
    );
    assert.deepEqual(iam.listGroups(), []);
  });

  withNode('policies: inline, managed with versions, attachments and groups all apply, and changes apply at once', async ({ iam }) => {
    await iam.createUser('u');
    await iam.putPolicy('user', 'u', 'inline', policy('kinesis:PutRecord'));
    assert.equal(iam.policies('user', 'u').length, 1);
    const m = await iam.createManagedPolicy('managed', '/', policy('firehose:PutRecord'), 'd');
    await iam.attachPolicy('user', 'u', m.arn);
    await iam.attachPolicy('user', 'u', m.arn);
    assert.deepEqual(iam.attachedPolicies('user', 'u'), [{ name: 'managed', arn: m.arn, path: '/' }]);
    assert.equal(iam.policies('user', 'u').length, 2);
    const v2 = await iam.createPolicyVersion(m, policy('sqs:SendMessage'), true);
    const v3 = await iam.createPolicyVersion(iam.getManagedPolicy(m.arn)!, policy('sns:Publish'), false);
    assert.deepEqual([v2.version_id, v3.version_id], ['v2', 'v3']);
    assert.deepEqual(
      iam.policyVersions(m).map((v) => [v.version_id, v.is_default]),
      [
        ['v3', false],
        ['v2', true],
        ['v1', false],
      ],
    );
    assert.equal(iam.getManagedPolicy(m.arn)!.default_version, 'v2');
    const texts = () => JSON.stringify(iam.policies('user', 'u'));
    assert.match(texts(), /sqs:SendMessage/);
    await iam.setDefaultPolicyVersion(m, 'v3');
    assert.match(texts(), /sns:Publish/);
    await iam.deletePolicyVersion(m, 'v2');
    assert.deepEqual(
      iam.policyVersions(m).map((v) => v.version_id),
      ['v3', 'v1'],
    );
    // A version deleted is never numbered again.
    assert.equal((await iam.createPolicyVersion(iam.getManagedPolicy(m.arn)!, policy('s3:GetObject'), false)).version_id, 'v4');
    await iam.createGroup('g');
    await iam.putPolicy('group', 'g', 'gp', policy('glue:GetTable'));
    await iam.addUserToGroup('g', 'u');
    assert.match(texts(), /glue:GetTable/);
    await iam.detachPolicy('user', 'u', m.arn);
    assert.doesNotMatch(texts(), /sns:Publish/);
    await iam.deleteManagedPolicy(m.arn);
    assert.equal(iam.getManagedPolicy(m.arn), undefined);
    assert.deepEqual(iam.policyVersions(m), []);
    await iam.deletePolicy('user', 'u', 'inline');
    assert.deepEqual(iam.listPolicies('user', 'u'), []);
  });

  withNode('a write is one transaction: when a statement fails, nothing of it is stored or cached', async ({ meta, iam }) => {
    await iam.createUser('taken');
    const before = iam.listUsers().length;
    await assert.rejects(
      meta.write(
        [
          { sql: 'INSERT INTO iam_users (name, user_id, path, create_date) VALUES (?, ?, ?, ?)', params: ['fresh', 'AIDAX', '/', 'now'] },
          { sql: 'INSERT INTO iam_users (name, user_id, path, create_date) VALUES (?, ?, ?, ?)', params: ['taken', 'AIDAY', '/', 'now'] },
        ],
        [{ table: 'iam_users', key: ['fresh'] }],
      ),
      (e: unknown) => meta.driver.isUniqueViolation(e),
    );
    assert.equal(iam.listUsers().length, before);
    assert.equal(iam.getUser('fresh'), undefined);
    assert.deepEqual(await meta.driver.all('SELECT name FROM iam_users WHERE name = ?', ['fresh']), []);
  });

  withNode('two creates racing for one name: one wins, the other fails as a unique violation', async ({ iam }) => {
    const [a, b] = await Promise.allSettled([iam.createUser('race'), iam.createUser('race')]);
    const lost = [a, b].filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    assert.equal(lost.length, 1);
    assert.equal(iam.isUniqueViolation(lost[0].reason), true, String(lost[0].reason));
    assert.equal(iam.getUser('race')?.user_id, (a.status === 'fulfilled' ? a : (b as PromiseFulfilledResult<{ user_id: string }>)).value.user_id);
  });

  withNode('the bootstrap admin key: generated once, replaced by a configured one, which revokes it', async ({ iam }) => {
    const first = await iam.ensureAdmin();
    assert.equal(first.created, true);
    const again = await iam.ensureAdmin();
    assert.deepEqual(again, { credentials: first.credentials, created: false });
    const configured = generateKey();
    await iam.ensureAdmin(configured);
    assert.equal(iam.keyOwner(configured.accessKeyId)?.user, ADMIN_USER);
    assert.equal(iam.keyOwner(first.credentials.accessKeyId), undefined, 'the previous bootstrap key no longer works');
  });

  withNode('apps: create, page in creation order, tags, settings, delete', async ({ apps }) => {
    const made = [];
    for (const name of ['one', 'two', 'three']) made.push(await apps.create(name, { k: name }));
    const p1 = apps.list(2, undefined);
    assert.deepEqual(
      p1.Item.map((a) => a.Name),
      ['one', 'two'],
    );
    const p2 = apps.list(2, p1.NextToken);
    assert.deepEqual(
      p2.Item.map((a) => a.Name),
      ['three'],
    );
    assert.equal(p2.NextToken, undefined);
    const id = made[1].Id;
    await apps.tag(id, { extra: 'x' });
    assert.deepEqual(apps.require(id).tags, { k: 'two', extra: 'x' });
    await apps.untag(id, ['k']);
    assert.deepEqual(apps.require(id).tags, { extra: 'x' });
    const s = await apps.updateSettings(id, { QuietTime: { Start: '22:00', End: '06:00' } });
    assert.deepEqual(s.QuietTime, { Start: '22:00', End: '06:00' });
    assert.deepEqual(apps.getSettings(id).QuietTime, { Start: '22:00', End: '06:00' });
    await apps.delete(id);
    assert.equal(apps.get(id), undefined);
    assert.deepEqual(
      apps.list(10, undefined).Item.map((a) => a.Name),
      ['one', 'three'],
    );
    // The next app still sorts last.
    await apps.create('four', {});
    assert.equal(apps.list(10, undefined).Item.at(-1)!.Name, 'four');
  });

  // --- Endpoints domain: endpoints, endpoint jobs, history-import jobs -----------------------------

  withNode('transact: each statement gets its rows; a statement failing inside a savepoint undoes only it, and the transaction goes on', async ({ meta }) => {
    const ins = (name: string) => ({ sql: 'INSERT INTO endpoint_purges (app_id) VALUES (?)', params: [name] });
    const out = await meta.driver.transact(function* () {
      yield ins('a');
      let refused = false;
      try {
        yield* savepoint(function* () {
          yield ins('b');
          yield ins('a'); // taken: fails (on PostgreSQL this would abort the whole transaction without the savepoint)
        });
      } catch (e) {
        refused = meta.driver.isUniqueViolation(e);
      }
      yield ins('c');
      const rows = (yield { sql: 'SELECT app_id FROM endpoint_purges ORDER BY app_id' }) as Array<{ app_id: string }>;
      return { refused, seen: rows.map((r) => r.app_id) };
    });
    assert.deepEqual(out, { refused: true, seen: ['a', 'c'] });
    assert.deepEqual(await meta.driver.all('SELECT app_id FROM endpoint_purges ORDER BY app_id'), [{ app_id: 'a' }, { app_id: 'c' }]);
    // A failure that escapes the steps rolls everything back.
    await assert.rejects(
      meta.driver.transact(function* () {
        yield ins('d');
        throw new Error('changed my mind');
      }),
      /changed my mind/,
    );
    assert.deepEqual(await meta.driver.all('SELECT app_id FROM endpoint_purges WHERE app_id = ?', ['d']), []);
  });

  withNode('endpoints: upsert merges, ids are case-insensitive, by user, address deactivation, delete', async ({ meta }) => {
    const clock = new ManualClock(Date.parse('2026-12-01T00:00:00Z'));
    const ep = new Endpoints(meta.driver, clock);
    await ep.upsert('app1', 'Dev-1', { Address: 'a@example.com', ChannelType: 'EMAIL', Attributes: { k1: ['v1'] }, User: { UserId: 'u1' } });
    clock.advance(1000);
    await ep.upsert('app1', 'DEV-1', { Attributes: { k2: ['v2'] }, Metrics: { m: 1 } });
    const got = (await ep.get('app1', 'dev-1'))!.endpoint;
    assert.equal(got.Id, 'Dev-1', 'keeps the casing it was created with');
    assert.deepEqual(got.Attributes, { k1: ['v1'], k2: ['v2'] });
    assert.deepEqual(got.Metrics, { m: 1 });
    assert.equal(got.Address, 'a@example.com');
    await ep.upsert('app1', 'dev-2', { Address: 'a@example.com', ChannelType: 'EMAIL', User: { UserId: 'u1' } });
    assert.equal((await ep.get('app1', 'Dev-1'))!.endpoint.EndpointStatus, 'INACTIVE', 'the other endpoint with the Address');
    assert.deepEqual((await ep.byUser('app1', 'u1')).map((e) => e.Id).sort(), ['Dev-1', 'dev-2']);
    assert.equal(await ep.get('app2', 'dev-1'), undefined, 'per app');
    assert.equal((await ep.delete('app1', 'DEV-1')).Id, 'Dev-1');
    assert.equal(await ep.get('app1', 'Dev-1'), undefined);
    await assert.rejects(ep.delete('app1', 'Dev-1'), /Endpoint not found/);
    assert.deepEqual((await ep.deleteUser('app1', 'u1')).map((e) => e.Id), ['dev-2']);
    assert.deepEqual(await ep.byUser('app1', 'u1'), []);
  });

  withNode('endpoints: a batch is all or nothing; PutEvents touches create endpoints and known ones are not read again', async ({ meta }) => {
    const clock = new ManualClock(Date.parse('2026-12-01T00:00:00Z'));
    const ep = new Endpoints(meta.driver, clock);
    await assert.rejects(ep.upsertBatch('app1', [{ id: 'ok', input: { Address: 'x' } }, { id: 'bad$', input: {} }]), /must not contain/);
    assert.equal(await ep.get('app1', 'ok'), undefined, 'the first item was rolled back');
    const touched = await ep.touchAll('app1', [
      { id: 'new', input: undefined },
      { id: 'with-data', input: { Demographic: { Platform: 'ios' } } },
    ]);
    assert.deepEqual(
      touched.map((t) => t.endpoint.Id),
      ['new', 'with-data'],
    );
    assert.equal((await ep.get('app1', 'new'))!.endpoint.EndpointStatus, 'ACTIVE', 'an event creates its endpoint');
    // Known (cached) endpoints and no endpoint data: answered without the store, synchronously.
    const again = ep.touchAll('app1', [{ id: 'new', input: {} }]);
    assert.ok(Array.isArray(again), 'no store access: not a promise');
  });

  withNode('endpoints: an import line that fails is undone alone; the purge of a deleted app removes its endpoints', async ({ meta, apps }) => {
    const clock = new ManualClock(Date.parse('2026-12-01T00:00:00Z'));
    const ep = new Endpoints(meta.driver, clock);
    const app = (await apps.create('doomed', {})).Id;
    const kept = (await apps.create('kept', {})).Id;
    const failed: string[] = [];
    await ep.run(app, function* (tx) {
      for (const [id, input] of [['a', { Address: 'a' }], ['b$', {}], ['c', { User: { UserId: 'u' } }]] as const) {
        try {
          yield* ep.importSteps(tx, id, input, '2020-01-01T00:00:00.000Z');
        } catch (e) {
          failed.push((e as Error).message);
        }
      }
      yield { sql: 'UPDATE apps SET name = ? WHERE id = ?', params: ['doomed!', app] };
    });
    assert.equal(failed.length, 1);
    assert.equal((await ep.get(app, 'a'))!.endpoint.CreationDate, '2020-01-01T00:00:00.000Z', 'an import keeps the exported CreationDate');
    assert.ok(await ep.get(app, 'c'));
    const [row] = await meta.driver.all<{ name: string }>('SELECT name FROM apps WHERE id = ?', [app]);
    assert.equal(row.name, 'doomed!', 'the rest of the transaction committed');
    await ep.upsert(kept, 'a', {});
    await apps.delete(app);
    assert.deepEqual(await meta.driver.all('SELECT app_id FROM endpoint_purges'), [{ app_id: app }]);
    await ep.resumePurges();
    assert.deepEqual(await meta.driver.all('SELECT id FROM endpoints WHERE app_id = ?', [app]), []);
    assert.deepEqual(await meta.driver.all('SELECT app_id FROM endpoint_purges'), []);
    assert.ok(await ep.get(kept, 'a'), "another app's endpoints stay");
  });

  withNode('endpoints: two writers updating one endpoint at once (two nodes on a shared store) lose no field', async ({ meta, db }, b) => {
    const clock = new ManualClock(Date.parse('2026-12-01T00:00:00Z'));
    const other = await b.open(db);
    try {
      const one = new Endpoints(meta.driver, clock);
      // Embedded, one process owns the database and writes through its one Endpoints (whose cache
      // is then exact): the second writer is a second caller of it. Shared, a second node.
      const two = meta.driver.kind === 'sqlite' ? one : new Endpoints(other.driver, clock);
      const n = 16;
      // Each writer sets its own attribute on the same endpoint, which does not exist yet: a read-merge-
      // write race would keep only some of them (the first writes are the hardest: no row to lock).
      await Promise.all(
        Array.from({ length: n }, (_, i) => (i % 2 === 0 ? one : two).upsert('app1', 'shared', { Attributes: { [`k${i}`]: [`v${i}`] }, Metrics: { [`m${i}`]: i } })),
      );
      const got = (await one.get('app1', 'shared'))!.endpoint;
      assert.equal(Object.keys(got.Attributes!).length, n, JSON.stringify(got.Attributes));
      assert.equal(Object.keys(got.Metrics!).length, n);
      assert.equal((await two.get('app1', 'SHARED'))!.endpoint.Attributes!.k3[0], 'v3', 'the other node reads it');
    } finally {
      await other.close();
    }
  });

  withNode('endpoints: batches naming two endpoints in opposite orders on two nodes all succeed (locks taken in one order)', async ({ meta, db }, b) => {
    const clock = new ManualClock(Date.parse('2026-12-01T00:00:00Z'));
    const other = await b.open(db);
    try {
      const one = new Endpoints(meta.driver, clock);
      const two = meta.driver.kind === 'sqlite' ? one : new Endpoints(other.driver, clock);
      for (let round = 0; round < 10; round++) {
        await Promise.all([
          one.upsertBatch('app1', [
            { id: 'a', input: { Metrics: { [`one${round}`]: round } } },
            { id: 'b', input: { Metrics: { [`one${round}`]: round } } },
          ]),
          two.upsertBatch('app1', [
            { id: 'b', input: { Metrics: { [`two${round}`]: round } } },
            { id: 'a', input: { Metrics: { [`two${round}`]: round } } },
          ]),
        ]);
      }
      for (const id of ['a', 'b']) assert.equal(Object.keys((await one.get('app1', id))!.endpoint.Metrics!).length, 20, id);
    } finally {
      await other.close();
    }
  });

  withNode(`endpoints: events without endpoint data use this node's copy (shared: for ENDPOINT_SHARED_CACHE_MS), then read the store`, async ({ meta }) => {
    const clock = new ManualClock(Date.parse('2026-12-01T00:00:00Z'));
    const ep = new Endpoints(meta.driver, clock);
    await ep.upsert('app1', 'known', { Attributes: { k: ['v'] } });
    assert.ok(Array.isArray(ep.touchAll('app1', [{ id: 'known', input: undefined }])), 'answered from the cache');
    clock.advance(ENDPOINT_SHARED_CACHE_MS);
    const later = ep.touchAll('app1', [{ id: 'known', input: undefined }]);
    // Embedded, this process is the only writer: its copy never goes stale.
    assert.equal(Array.isArray(later), meta.driver.kind === 'sqlite');
    assert.deepEqual((await later)[0].endpoint.Attributes, { k: ['v'] });
    assert.ok(Array.isArray(ep.touchAll('app1', [{ id: 'known', input: undefined }])), 'read again, cached again');
  });

  withNode('endpoint jobs and history imports: one created by one node is read by another', async (node, b) => {
    const clock = new ManualClock(Date.parse('2026-12-01T00:00:00Z'));
    const other = await b.open(node.db);
    try {
      const app = (await node.apps.create('jobs', {})).Id;
      const jobsOf = (meta: MetadataCache) =>
        new EndpointJobs({
          driver: meta.driver,
          apps: node.apps,
          endpoints: new Endpoints(meta.driver, clock),
          clock,
          accountId: ACCOUNT,
          objects: { resolve: () => assert.fail('not started: reads no bucket') },
          roleMayNot: () => undefined,
        });
      const def = { S3Url: 's3://bucket/in/', RoleArn: `arn:aws:iam::${ACCOUNT}:role/r`, Format: 'JSON' as const };
      const made = [
        await jobsOf(node.meta).createImport(app, def),
        await jobsOf(other).createImport(app, def),
        await jobsOf(node.meta).createExport(app, { S3UrlPrefix: 's3://bucket/out', RoleArn: def.RoleArn }),
      ];
      const seen = await jobsOf(other).get(app, 'IMPORT', made[0].Id);
      assert.equal(seen.JobStatus, 'CREATED');
      assert.deepEqual(seen.Definition, def);
      const page = await jobsOf(other).list(app, 'IMPORT', 1, undefined);
      assert.equal(page.Item[0].Id, made[1].Id, 'newest first');
      assert.equal((await jobsOf(node.meta).list(app, 'IMPORT', 10, page.NextToken)).Item[0].Id, made[0].Id);
      await assert.rejects(jobsOf(other).get(app, 'IMPORT', made[2].Id), /Import job not found/);
      // Created on both nodes at once: distinct creation numbers (one paging order everywhere).
      await Promise.all([jobsOf(node.meta).createImport(app, def), jobsOf(other).createImport(app, def), jobsOf(node.meta).createImport(app, def), jobsOf(other).createImport(app, def)]);
      const [counts] = await node.meta.driver.all<{ n: number; d: number }>('SELECT count(*) AS n, count(DISTINCT created_seq) AS d FROM endpoint_jobs');
      assert.deepEqual({ ...counts }, { n: 7, d: 7 });

      const history = (meta: MetadataCache) =>
        new HistoryJobs({
          db: node.db,
          driver: meta.driver,
          store: {} as Pick<EventStore, 'appendNew'>,
          clock,
          dataDir: node.dir,
          buckets: [],
          retentionDays: 90,
          ingestLog: {} as Log,
          roleCheck: () => () => undefined,
        });
      const h1 = history(node.meta);
      const h2 = history(other);
      const job = await h1.create({ appId: app, source: `file://${node.dir}/no-such-archive/`, map: { src: app }, replay: false });
      await h1.idle();
      const there = await h2.get(app, job.Id);
      assert.equal(there?.Id, job.Id);
      assert.equal(there?.JobStatus, 'FAILED', 'the archive does not exist');
      assert.deepEqual((await h2.list(app)).map((j) => j.Id), [job.Id]);
      await h1.close();
      await h2.close();
    } finally {
      await other.close();
    }
  });

  withNode('what was written is there when the store is opened again', async (node, b) => {
    await node.iam.createUser('kept');
    const key = await node.iam.createAccessKey('kept');
    const app = await node.apps.create('kept', {});
    const again = await openNode(node.dir, (db) => b.open(db));
    try {
      assert.notEqual(again.meta, node.meta);
      assert.equal(again.iam.keyOwner(key.accessKeyId)?.creds.secretAccessKey, key.secretAccessKey);
      assert.equal(again.apps.get(app.Id)?.Name, 'kept');
    } finally {
      await again.close();
    }
  });

  // --- Event streams (src/pinpoint/eventstream-store.ts) ---
  const streamRow = (app: string, destination: string) => ({
    app_id: app,
    destination_arn: destination,
    role_arn: `arn:aws:iam::${ACCOUNT}:role/r`,
    last_modified: '2026-12-01T00:00:00.000Z',
    last_updated_by: 'me',
  });

  withNode('event streams: settings cached, the checkpoint apart; set under a new epoch, advanced only forward and only within its epoch', async ({ eventStreams: es, meta }) => {
    const first = await es.save(streamRow('app1', 'arn:aws:kinesis:us-east-1:000000000000:stream/a'), { checkpoint: 40, initial: 40, epoch: 1000 });
    assert.equal(es.get('app1')?.destination_arn, 'arn:aws:kinesis:us-east-1:000000000000:stream/a');
    assert.equal(first.epoch, 1000);
    assert.equal('checkpoint' in first, false, 'the settings row carries no checkpoint');
    assert.deepEqual(await es.checkpoint('app1'), { app_id: 'app1', position: 40, epoch: 1000 });
    // A worker of epoch 1000 moves it forward; an older position (a late write) leaves it.
    assert.equal(await es.advance('app1', 55, 1000), 55);
    assert.equal(await es.advance('app1', 50, 1000), 55, 'max(existing, new): never backwards');
    assert.equal((await es.checkpoint('app1'))?.position, 55);
    // Same destination again: settings change, the checkpoint and epoch stay.
    const again = await es.save({ ...streamRow('app1', 'arn:aws:kinesis:us-east-1:000000000000:stream/a'), last_updated_by: 'other' }, { initial: 0, epoch: 2000 });
    assert.equal(again.epoch, 1000);
    assert.equal(again.last_updated_by, 'other');
    assert.deepEqual(await es.checkpoint('app1'), { app_id: 'app1', position: 55, epoch: 1000 });
    // A replay sets it backwards under a new epoch: the worker of the old one is refused from then on.
    const set = await es.setCheckpoint('app1', 10);
    assert.deepEqual(set, { app_id: 'app1', position: 10, epoch: 1001 });
    assert.equal(es.get('app1')?.epoch, 1001, 'the settings row (cached) shows the new epoch: workers restart on it');
    assert.equal(await es.advance('app1', 60, 1000), undefined, 'fenced');
    assert.equal((await es.checkpoint('app1'))?.position, 10);
    assert.equal(await es.advance('app1', 12, 1001), 12);
    // A new destination: set at the given position, new epoch.
    const moved = await es.save(streamRow('app1', 'arn:aws:firehose:us-east-1:000000000000:deliverystream/b'), { checkpoint: 70, initial: 70, epoch: 3000 });
    assert.equal(moved.epoch, 1002);
    assert.deepEqual(await es.checkpoint('app1'), { app_id: 'app1', position: 70, epoch: 1002 });
    await es.save(streamRow('app2', 'arn:aws:kinesis:us-east-1:000000000000:stream/c'), { checkpoint: 5, initial: 5, epoch: 1 });
    assert.deepEqual(es.all().map((r) => r.app_id), ['app1', 'app2']);
    assert.deepEqual([...(await es.checkpoints()).keys()].sort(), ['app1', 'app2']);
    // Removal takes both; a worker still running is refused.
    await es.remove('app1');
    assert.equal(es.get('app1'), undefined);
    assert.equal(await es.checkpoint('app1'), undefined);
    assert.equal(await es.advance('app1', 90, 1002), undefined);
    const [n] = await meta.driver.all<{ n: number }>('SELECT count(*) AS n FROM delivery_checkpoints');
    assert.equal(Number(n.n), 1);
  });

  withNode('delivery errors: one row per offset (a record rejected again replaces its row), the newest MAX_DELIVERY_ERRORS_PER_APP offsets kept', async ({ eventStreams: es }) => {
    assert.equal(MAX_DELIVERY_ERRORS_PER_APP, 1_000);
    const at = Date.parse('2026-12-01T00:00:00Z');
    await es.recordRejected('app1', { offset: 3, eventId: 'e3', endpointId: 'p', reason: 'too large', at });
    await es.recordRejected('app1', { offset: 3, eventId: 'e3', endpointId: 'p', reason: 'still too large', at });
    await es.recordRejected('other', { offset: 3, eventId: 'x', endpointId: 'p', reason: 'r', at });
    assert.deepEqual((await es.rejected('app1')).map((r) => [Number(r.log_offset), r.reason]), [[3, 'still too large']]);
    for (let o = 10; o < 10 + MAX_DELIVERY_ERRORS_PER_APP + 5; o++) await es.recordRejected('app1', { offset: o, eventId: `e${o}`, endpointId: 'p', reason: 'r', at });
    const kept = await es.rejected('app1');
    assert.equal(kept.length, MAX_DELIVERY_ERRORS_PER_APP);
    assert.equal(Number(kept[0].log_offset), 15, 'the oldest went');
    assert.equal(Number(kept.at(-1)!.log_offset), 10 + MAX_DELIVERY_ERRORS_PER_APP + 4);
    assert.equal((await es.rejected('other')).length, 1, 'bounded per app');
  });

  withNode('event streams and checkpoints are there when the store is opened again', async (node, b) => {
    await node.eventStreams.save(streamRow('kept', 'arn:aws:kinesis:us-east-1:000000000000:stream/k'), { checkpoint: 7, initial: 7, epoch: 5 });
    await node.eventStreams.advance('kept', 9, 5);
    const again = await openNode(node.dir, (db) => b.open(db));
    try {
      assert.equal(again.eventStreams.get('kept')?.destination_arn, 'arn:aws:kinesis:us-east-1:000000000000:stream/k');
      assert.deepEqual(await again.eventStreams.checkpoint('kept'), { app_id: 'kept', position: 9, epoch: 5 });
    } finally {
      await again.close();
    }
  });

  // --- idmeta: STS sessions, Cognito, the Data Catalog, saved funnels ---------------------------
  /** A session's owner as the dispatcher finds it: after resolveKey when the store asks to wait. */
  const ownerOf = async (iam: IamStore, id: string) => {
    await iam.resolveKey(id);
    return iam.keyOwner(id);
  };

  withNode('temporary sessions: found by key with their secret and token (sealed), unknown keys remembered, trimmed newest-first per identity', async ({ iam, meta }) => {
    const s = await iam.createTemporarySession({ kind: 'role', principal: 'r', principalId: 'AROAX', arn: 'arn:aws:sts::000000000000:assumed-role/r/s', durationSeconds: 900, policy: policy('s3:GetObject') });
    const owner = (await ownerOf(iam, s.accessKeyId))!;
    assert.equal(owner.creds.secretAccessKey, s.secretAccessKey);
    assert.equal(owner.creds.sessionToken, s.sessionToken);
    assert.equal(owner.temporary?.principalId, 'AROAX');
    assert.equal(owner.temporary?.expiration, s.expiration);
    const [row] = await meta.driver.all<{ secret: Buffer; token: Buffer }>('SELECT secret, token FROM sts_sessions WHERE access_key_id = ?', [s.accessKeyId]);
    assert.equal(row.secret.includes(Buffer.from(s.secretAccessKey)), false, 'the secret is sealed');
    assert.equal(row.token.includes(Buffer.from(s.sessionToken)), false, 'the token is sealed');
    // An unknown temporary key is unknown (and asked about once: it is remembered as such).
    const unknown = generateKey(TEMPORARY_KEY_PREFIX).accessKeyId;
    assert.equal(await ownerOf(iam, unknown), undefined);
    assert.equal(iam.resolveKey(unknown), undefined, 'a key known not to exist is not looked up again');

    const web = { provider: 'cognito-identity.amazonaws.com', sub: 'us-east-1:identity', aud: 'pool', poolId: 'pool' };
    const made = [];
    for (let i = 0; i < 4; i++) made.push(await iam.createTemporarySession({ kind: 'role', principal: 'r', principalId: 'AROAX', arn: 'a', durationSeconds: 900, webIdentity: web }));
    assert.equal(await iam.identitySessionCount(web.sub), 4);
    for (const m of made) assert.ok(await ownerOf(iam, m.accessKeyId), 'cached before the trim');
    assert.equal(await iam.trimIdentitySessions(web.sub, 2), 2);
    assert.equal(await iam.identitySessionCount(web.sub), 2);
    for (const m of made.slice(0, 2)) assert.equal(await ownerOf(iam, m.accessKeyId), undefined, 'the oldest are revoked, also from the cache');
    for (const m of made.slice(2)) assert.ok(await ownerOf(iam, m.accessKeyId), 'the newest are kept');
    assert.equal(await iam.temporarySessionCount(), 3);
  });

  withNode('session caches stay within SESSION_CACHE_SIZE and UNKNOWN_KEY_CACHE_SIZE', async ({ iam, meta }) => {
    // Embedded lookups are synchronous, so the bound is cheap to reach here; PostgreSQL's lookups
    // share the same caches (and MAX_SESSION_LOOKUPS_IN_FLIGHT is tested on PostgreSQL itself).
    if (meta.driver.kind !== 'sqlite') return;
    for (let i = 0; i < UNKNOWN_KEY_CACHE_SIZE + 10; i++) iam.keyOwner(generateKey(TEMPORARY_KEY_PREFIX).accessKeyId);
    assert.equal(iam.sessionCacheSizes().unknown, UNKNOWN_KEY_CACHE_SIZE);
    // More sessions than the LRU holds (copies of one, under other keys): the least recent go.
    const s = await iam.createTemporarySession({ kind: 'user', principal: 'u', principalId: 'AIDAX', arn: 'a', durationSeconds: 900 });
    const ids = Array.from({ length: SESSION_CACHE_SIZE + 10 }, () => generateKey(TEMPORARY_KEY_PREFIX).accessKeyId);
    await meta.write(
      ids.map((id) => ({
        sql: `INSERT INTO sts_sessions (access_key_id, secret, token, kind, principal, principal_id, arn, policy, chained, expiration, create_date)
              SELECT ?, secret, token, kind, principal, principal_id, arn, policy, chained, expiration, create_date FROM sts_sessions WHERE access_key_id = ?`,
        params: [id, s.accessKeyId],
      })),
      [],
    );
    for (const id of ids) assert.equal(iam.keyOwner(id)?.creds.sessionToken, s.sessionToken);
    assert.equal(iam.sessionCacheSizes().hits, SESSION_CACHE_SIZE);
    assert.ok(iam.keyOwner(ids[0]), 'an evicted session is read again');
  });

  withNode('identity pools: create, list in id order, update, limits of identities per pool, logins linked to one identity, delete with identities', async ({ meta }) => {
    const clock = new ManualClock(Date.parse('2026-12-01T00:00:00Z'));
    const pools = await IdentityPools.open(meta, clock, REGION, ACCOUNT, { ...DEFAULT_COGNITO_LIMITS, maxIdentitiesPerPool: 2 });
    const a = await pools.createPool('a', { AllowUnauthenticatedIdentities: true });
    const b = await pools.createPool('b', { AllowUnauthenticatedIdentities: false });
    assert.deepEqual(pools.listPools('', 10).map((p) => p.IdentityPoolId), [a.IdentityPoolId, b.IdentityPoolId].sort());
    await pools.updatePool({ ...a, IdentityPoolName: 'a2', Roles: { unauthenticated: 'arn:aws:iam::000000000000:role/g' } });
    assert.equal(pools.getPool(a.IdentityPoolId)?.IdentityPoolName, 'a2');
    assert.deepEqual(pools.getPool(a.IdentityPoolId)?.Roles, { unauthenticated: 'arn:aws:iam::000000000000:role/g' });

    const one = await pools.createIdentity(a.IdentityPoolId, { 'login.example': 'sub-1' });
    assert.equal(await pools.identityForLogin(a.IdentityPoolId, 'login.example', 'sub-1'), one.id);
    const two = await pools.createIdentity(a.IdentityPoolId, {});
    await assert.rejects(pools.createIdentity(a.IdentityPoolId, {}), (e: unknown) => e instanceof LimitError && e.code === 'LimitExceededException');
    assert.equal(await pools.identityCount(a.IdentityPoolId), 2);
    await pools.link(two, { 'login.example': 'sub-2' });
    assert.deepEqual((await pools.getIdentity(two.id))?.logins, { 'login.example': 'sub-2' });
    await pools.link(two, { 'login.example': 'sub-3' });
    assert.equal(await pools.identityForLogin(a.IdentityPoolId, 'login.example', 'sub-2'), undefined, 'the earlier subject is replaced');
    await pools.unlink(two, ['login.example']);
    assert.deepEqual((await pools.getIdentity(two.id))?.logins, {});
    assert.deepEqual((await pools.listIdentities(a.IdentityPoolId, '', 10)).map((i) => i.id), [one.id, two.id].sort());
    await pools.deleteIdentity(one.id);
    assert.equal(await pools.getIdentity(one.id), undefined);
    assert.equal(await pools.identityForLogin(a.IdentityPoolId, 'login.example', 'sub-1'), undefined);
    await pools.deletePool(a.IdentityPoolId);
    assert.equal(pools.getPool(a.IdentityPoolId), undefined);
    assert.equal(await pools.getIdentity(two.id), undefined);
  });

  withNode('the Cognito signing key is made once and shared: a token issued by one CognitoTokens verifies with another', async ({ meta, dir }) => {
    const clock = new ManualClock(Date.parse('2026-12-01T00:00:00Z'));
    const box = new SecretBox(dir);
    const [x, y] = [new CognitoTokens(meta, box, clock), new CognitoTokens(meta, box, clock)];
    // Both make a key at once: they agree on the one stored first.
    const [tx, ty] = await Promise.all([x.issue('id-1', 'pool', ['unauthenticated']), y.issue('id-2', 'pool', ['unauthenticated'])]);
    assert.equal((await y.verify(tx)).sub, 'id-1');
    assert.equal((await x.verify(ty)).sub, 'id-2');
    assert.deepEqual(await x.jwks(), await y.jwks());
  });

  withNode('the catalog: databases, tables and partitions with their quotas, counts and cascading deletes', async ({ meta }) => {
    const clock = new ManualClock(Date.parse('2026-12-01T00:00:00Z'));
    const c = await CatalogStore.open(meta, clock, { ...DEFAULT_CATALOG_LIMITS, maxDatabases: 2, maxTablesPerDatabase: 1, maxPartitionsPerTable: 3 });
    await c.createDatabase({ Name: 'Sales' });
    await assert.rejects(c.createDatabase({ Name: 'sales' }), (e: unknown) => e instanceof CatalogError && e.code === 'AlreadyExistsException');
    await c.createDatabase({ Name: 'other' });
    await assert.rejects(c.createDatabase({ Name: 'third' }), (e: unknown) => e instanceof CatalogError && e.code === 'ResourceNumberLimitExceededException');
    assert.deepEqual(c.listDatabases('', 10).map((d) => d.Name), ['other', 'sales']);
    const t = await c.createTable('SALES', { Name: 'Orders', PartitionKeys: [{ Name: 'day', Type: 'string' }] });
    assert.equal(c.getTable('sales', 'orders')?.VersionId, '0');
    await assert.rejects(c.createTable('sales', { Name: 'more' }), (e: unknown) => e instanceof CatalogError && e.code === 'ResourceNumberLimitExceededException');
    await assert.rejects(c.createTable('nope', { Name: 'x' }), (e: unknown) => e instanceof CatalogError && e.code === 'EntityNotFoundException');
    assert.equal((await c.updateTable('sales', { Name: 'orders', Parameters: { k: 'v' } })).VersionId, '1');

    const out = await c.createPartitions(t, [{ Values: ['1'] }, { Values: ['2'] }, { Values: ['1'] }, { Values: ['a', 'b'] }]);
    assert.deepEqual(out.map((e) => e?.code), [undefined, undefined, 'AlreadyExistsException', 'InvalidInputException']);
    const more = await c.createPartitions(t, [{ Values: ['3'] }, { Values: ['4'] }]);
    assert.deepEqual(more.map((e) => e?.code), [undefined, 'ResourceNumberLimitExceededException']);
    assert.equal(c.getTable('sales', 'orders') && (await meta.driver.all<{ partitions: number }>("SELECT partitions FROM glue_tables WHERE db = 'sales'"))[0].partitions, 3);
    assert.deepEqual((await c.getPartition(t, ['2']))?.Values, ['2']);
    assert.deepEqual((await c.listPartitions(t, '', 2)).map((p) => p.partition.Values), [['1'], ['2']]);
    assert.deepEqual(await c.deletePartitions(t, [['2'], ['9'], ['2']]), [true, false, false]);
    assert.equal((await meta.driver.all<{ partitions: number }>("SELECT partitions FROM glue_tables WHERE db = 'sales'"))[0].partitions, 2);
    await c.deleteDatabase('sales');
    assert.equal(c.getTable('sales', 'orders'), undefined);
    assert.deepEqual(await meta.driver.all("SELECT vals FROM glue_partitions WHERE db = 'sales'"), []);
  });

  withNode('saved funnels: create, replace, list by name, delete, at most MAX_FUNNELS_PER_APP per app', async ({ meta }) => {
    const f = new FunnelStore(meta);
    const steps = [
      { name: 'a', eventType: 'a' },
      { name: 'b', eventType: 'b' },
    ];
    const first = await f.save('app', { name: 'zeta', steps });
    await f.save('app', { name: 'alpha', steps });
    await f.save('app', { id: first.id, name: 'beta', steps });
    assert.deepEqual((await f.list('app')).map((x) => x.name), ['alpha', 'beta']);
    assert.equal(await f.delete('app', first.id), true);
    assert.equal(await f.delete('app', first.id), false);
    for (let i = (await f.list('app')).length; i < MAX_FUNNELS_PER_APP; i++) await f.save('app', { name: `f${i}`, steps });
    await assert.rejects(f.save('app', { name: 'one too many', steps }), /maximum is 100/);
    assert.equal((await f.list('other')).length, 0);
  });

  // --- Kinesis and Firehose (issue 17)
  const withStreams = (name: string, fn: (k: StreamNode, n: StoreNode, b: Backend) => Promise<void>) =>
    withNode(name, async (n, b) => {
      const k = await openStreams(n);
      try {
        await fn(k, n, b);
      } finally {
        await k.close();
      }
    });

  withStreams('kinesis: stream documents are created once, changed, kept, and deleted with their data keys', async ({ kinesis }, n, b) => {
    const s = await kinesis.create('orders', 2, 'PROVISIONED', { team: 'a' });
    await assert.rejects(kinesis.create('orders', 1, 'PROVISIONED', {}), (e: any) => e.code === 'ResourceInUseException');
    s.tags.extra = 'x';
    await kinesis.save(s);
    await kinesis.setAccountSetting('MinimumThroughputBillingCommitment', '{"status":"DISABLED"}');
    const keys = await DataKeys.open(n.meta, new SecretBox(n.dir), new ManualClock());
    await keys.sealAll(incarnationOf(s), 0, [Buffer.from('x')]);
    // Another store opened on the same backend (a restart, or another node) reads the same.
    const again = await openNode(n.dir, (db) => b.open(db));
    const k2 = await openStreams(again);
    try {
      assert.deepEqual(k2.kinesis.get('orders').tags, { team: 'a', extra: 'x' });
      assert.equal(k2.kinesis.get('orders').shards.length, 2);
      assert.equal(k2.kinesis.accountSetting('MinimumThroughputBillingCommitment'), '{"status":"DISABLED"}');
      assert.equal(k2.kinesis.keys.count(incarnationOf(s)), 1);
    } finally {
      await k2.close();
      await again.close();
    }
    await kinesis.delete('orders');
    assert.throws(() => kinesis.get('orders'), (e: any) => e.code === 'ResourceNotFoundException');
    assert.deepEqual(await n.meta.driver.all('SELECT name FROM kinesis_streams'), []);
    assert.deepEqual(await n.meta.driver.all('SELECT stream FROM kinesis_data_keys'), [], 'the data keys went with the stream');
  });

  withStreams('kinesis: a save from a node that has not heard of a deletion neither brings the stream back nor overwrites its re-creation', async ({ kinesis }, n, b) => {
    await kinesis.create('x', 1, 'PROVISIONED', {});
    const other = await openNode(n.dir, (db) => b.open(db));
    const k2 = await openStreams(other);
    try {
      const stale = k2.kinesis.get('x');
      await kinesis.delete('x');
      const fresh = await kinesis.create('x', 3, 'PROVISIONED', {});
      stale.tags = { stale: 'yes' };
      // Refused (this node had not heard of it: NotFound) or a no-op (it had: the document it holds is gone).
      await k2.kinesis.save(stale).catch((e) => assert.equal(e.code, 'ResourceNotFoundException'));
      const [row] = await n.meta.driver.all<{ data: string }>('SELECT data FROM kinesis_streams WHERE name = ?', ['x']);
      assert.equal(JSON.parse(row.data).createdMs, fresh.createdMs);
      assert.deepEqual(JSON.parse(row.data).tags, {});
      await kinesis.delete('x');
      await k2.kinesis.save(stale).catch((e) => assert.equal(e.code, 'ResourceNotFoundException'));
      assert.deepEqual(await n.meta.driver.all('SELECT name FROM kinesis_streams'), [], 'not brought back');
    } finally {
      await k2.close();
      await other.close();
    }
  });

  withStreams('kinesis: a change saved through a node that missed another node\'s change is refused, and that node then holds the stored document', async ({ kinesis }, n, b) => {
    const s = await kinesis.create('cas', 1, 'PROVISIONED', {});
    const other = await openNode(n.dir, (db) => b.open(db));
    const k2 = await openStreams(other);
    try {
      const theirs = k2.kinesis.get('cas');
      s.tags = { first: '1' };
      await kinesis.save(s);
      // Node 2 changes its copy before (or without) hearing of node 1's change.
      theirs.retentionHours = 48;
      await k2.kinesis.save(theirs).then(
        () => assert.deepEqual(k2.kinesis.get('cas').tags, { first: '1' }, 'saved over node 1\'s change only after hearing of it'),
        (e) => assert.equal(e.code, 'ResourceInUseException'),
      );
      const [row] = await n.meta.driver.all<{ data: string }>('SELECT data FROM kinesis_streams WHERE name = ?', ['cas']);
      assert.deepEqual(JSON.parse(row.data).tags, { first: '1' }, "node 1's change is kept");
      assert.deepEqual(k2.kinesis.get('cas').tags, { first: '1' }, 'node 2 holds the stored document');
    } finally {
      await k2.close();
      await other.close();
    }
  });

  withStreams('kinesis: the iterator-signing key is created once, sealed, and the same for every opener', async ({ signer }, n) => {
    const it = signer.encodeIterator({ stream: 's', streamCreatedMs: 1, shardIndex: 0, offset: 5, issuedMs: 2 });
    const [other, third] = await Promise.all([
      TokenSigner.open(n.meta, 'kinesis-iterators', new SecretBox(n.dir)),
      TokenSigner.open(n.meta, 'kinesis-iterators', new SecretBox(n.dir)),
    ]);
    assert.equal(other.decodeIterator(it)?.offset, 5);
    assert.equal(third.decodeIterator(it)?.offset, 5);
    const rows = await n.meta.driver.all<{ value: Buffer }>('SELECT value FROM secrets WHERE name = ?', ['kinesis-iterators']);
    assert.equal(rows.length, 1);
    assert.notEqual(Buffer.from(rows[0].value).length, 32, 'stored sealed, not as the raw key');
    // Two openers racing on an empty store end up with one key.
    const [a, c] = await Promise.all([TokenSigner.open(n.meta, 'race-key', new SecretBox(n.dir)), TokenSigner.open(n.meta, 'race-key', new SecretBox(n.dir))]);
    assert.deepEqual(c.decodeToken(a.encodeToken({ x: 1 })), { x: 1 });
  });

  withStreams('kinesis: data keys taken by two writers of one incarnation get distinct ids, and each opens the other\'s records', async ({ kinesis }, n) => {
    const a = kinesis.keys;
    const b2 = await DataKeys.open(n.meta, new SecretBox(n.dir), new ManualClock());
    const [ra, rb] = await Promise.all([a.sealAll('inc-1', 0, [Buffer.from('from a')]), b2.sealAll('inc-1', 0, [Buffer.from('from b')])]);
    assert.notEqual(ra[0].readUInt32BE(1), rb[0].readUInt32BE(1), 'distinct key ids');
    await a.ensure('inc-1', [rb[0].readUInt32BE(1)]);
    await b2.ensure('inc-1', [ra[0].readUInt32BE(1)]);
    assert.equal(a.open('inc-1', 0, rb[0]).toString(), 'from b');
    assert.equal(b2.open('inc-1', 0, ra[0]).toString(), 'from a');
  });

  withStreams('firehose: delivery streams are created once, listed in byte order, changed, and deleted with their checkpoints', async ({ firehose }, n, b) => {
    await firehose.create(deliveryStream('b-stream'));
    await firehose.create(deliveryStream('B-stream'));
    await assert.rejects(firehose.create(deliveryStream('b-stream')), (e: any) => e.code === 'ResourceInUseException');
    assert.deepEqual(firehose.list().map((s) => s.name), ['B-stream', 'b-stream']);
    assert.equal(firehose.count(), 2);
    const s = firehose.require('b-stream');
    s.version = 2;
    s.tags = { k: 'v' };
    await firehose.save(s);
    firehose.saveCheckpoint('b-stream', DELIVERER_CHECKPOINT, '41');
    firehose.saveCheckpoint('b-stream', DELIVERER_CHECKPOINT, '42');
    firehose.saveCheckpoint('b-stream', 'shardId-000000000000', 'seq');
    assert.equal(firehose.checkpoint('b-stream', DELIVERER_CHECKPOINT), '42', 'read back at once, before the write lands');
    await firehose.flush();
    const again = await openNode(n.dir, (db) => b.open(db));
    const k2 = await openStreams(again);
    try {
      assert.equal(k2.firehose.require('b-stream').version, 2);
      assert.deepEqual(k2.firehose.require('b-stream').tags, { k: 'v' });
      assert.equal(k2.firehose.checkpoint('b-stream', DELIVERER_CHECKPOINT), '42');
      assert.equal(k2.firehose.checkpoints('b-stream').length, 2);
    } finally {
      await k2.close();
      await again.close();
    }
    await firehose.delete('b-stream');
    // A checkpoint saved late (a deliverer finishing its last batch) does not outlive the stream.
    firehose.saveCheckpoint('b-stream', DELIVERER_CHECKPOINT, '43');
    await firehose.flush();
    assert.equal(firehose.get('b-stream'), undefined);
    assert.deepEqual(await n.meta.driver.all('SELECT key FROM firehose_checkpoints WHERE stream = ?', ['b-stream']), []);
  });
}
