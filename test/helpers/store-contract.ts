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
import { ADMIN_USER, IamStore, generateKey } from '../../src/iam/store.js';
import { Apps } from '../../src/pinpoint/apps.js';
import { ManualClock } from '../../src/clock.js';
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
  close(): Promise<void>;
}

/** Opens a node's stores over `meta`, in a data directory (its master key seals the IAM secrets). */
export async function openNode(dir: string, openMeta: (db: Db) => Promise<MetadataCache>, clock = new ManualClock(Date.parse('2026-12-01T00:00:00Z'))): Promise<StoreNode> {
  const db = openDb(dir);
  const meta = await openMeta(db);
  const iam = await IamStore.open(db, meta, clock, ACCOUNT, dir);
  const apps = await Apps.open(db, meta, clock, REGION, ACCOUNT);
  return {
    dir,
    db,
    meta,
    iam,
    apps,
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
}
