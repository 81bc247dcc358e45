// Endpoint writes cost the same with ten endpoints in an app or a million: every statement of the
// endpoint paths is checked with EXPLAIN QUERY PLAN to read only the rows it names (primary key
// with both columns, or a named index with both columns), never the whole app. Behaviour, not
// timing: `npm run bench -- endpoints` measures the cost. Also the migration that makes an
// existing data directory's endpoints use the address index.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ENDPOINT_PURGE_CHUNK, ENDPOINT_SQL, Endpoints } from '../src/pinpoint/endpoints.js';
import { Apps } from '../src/pinpoint/apps.js';
import { MIGRATIONS, openDb, type Db } from '../src/store/db.js';
import { sqliteMetadata } from '../src/store/metadata.js';
import { ManualClock } from '../src/clock.js';

async function withDb(fn: (db: Db, dir: string) => void | Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pinstream-plans-'));
  const db = openDb(dir);
  try {
    await fn(db, dir);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function plan(db: Db, sql: string): string[] {
  const named = [...sql.matchAll(/@(\w+)/g)].map((m) => m[1]);
  const n = (sql.match(/\?/g) ?? []).length;
  const stmt = db.prepare(`EXPLAIN QUERY PLAN ${sql}`);
  const rows = named.length > 0 ? stmt.all(Object.fromEntries(named.map((k) => [k, 'x']))) : stmt.all(...Array.from({ length: n }, () => 'x'));
  return (rows as Array<{ detail: string }>).map((r) => r.detail);
}

/** Every line of the plan looks rows up by a key that includes more than the app id. */
function assertKeyed(db: Db, name: string, sql: string, expect: RegExp): void {
  const lines = plan(db, sql);
  assert.ok(lines.length > 0, `${name}: no plan`);
  for (const line of lines) {
    assert.doesNotMatch(line, /^SCAN\b/, `${name} scans a table: ${lines.join(' | ')}`);
    assert.doesNotMatch(line, /\(app_id=\?\)$/, `${name} reads every row of the app: ${lines.join(' | ')}`);
  }
  assert.match(lines.join(' | '), expect, `${name}: ${lines.join(' | ')}`);
}

test('every endpoint statement reads only the rows it names (EXPLAIN QUERY PLAN), never a whole app', () => {
  return withDb((db) => {
    assertKeyed(db, 'get', ENDPOINT_SQL.get, /SEARCH endpoints USING PRIMARY KEY \(app_id=\? AND id=\?\)/);
    assertKeyed(db, 'del', ENDPOINT_SQL.del, /SEARCH endpoints USING PRIMARY KEY \(app_id=\? AND id=\?\)/);
    // GetUserEndpoints, DeleteUserEndpoints and the per-user cap (makeRoomForUser).
    assertKeyed(db, 'byUser', ENDPOINT_SQL.byUser, /SEARCH endpoints USING INDEX endpoints_user \(app_id=\? AND user_id=\?\)/);
    // deactivateOthersWithAddress.
    assertKeyed(
      db,
      'activeByAddress',
      ENDPOINT_SQL.activeByAddress,
      /SEARCH endpoints USING INDEX endpoints_active_address \(app_id=\? AND active_address=\?\)/,
    );
    // The attribute-name quota's table holds at most MAX_ATTRIBUTE_NAMES_PER_APP rows per app; read once per app.
    assert.match(plan(db, ENDPOINT_SQL.names).join(' | '), /SEARCH app_attribute_names USING (PRIMARY KEY|COVERING INDEX \S+) \(app_id=\?\)/);
    assertKeyed(db, 'addName', 'SELECT 1 FROM app_attribute_names WHERE app_id = ? AND name = ?', /PRIMARY KEY \(app_id=\? AND name=\?\)/);
    // DeleteApp: each chunk reads ENDPOINT_PURGE_CHUNK rows in key order and deletes them by key.
    // Whether a purge is done: the app's first row by primary key (LIMIT 1 reads one row).
    assert.match(plan(db, ENDPOINT_SQL.anyLeft).join(' | '), /^SEARCH endpoints USING PRIMARY KEY \(app_id=\?\)$/);
    const purge = plan(db, ENDPOINT_SQL.purgeChunk);
    for (const line of purge) assert.doesNotMatch(line, /^SCAN\b/, purge.join(' | '));
    assert.match(purge.join(' | '), /SEARCH endpoints USING PRIMARY KEY \(app_id=\? AND id=\?\)/);
    // The upsert's conflict target is the primary key: no plan line may scan.
    for (const line of plan(db, ENDPOINT_SQL.put)) assert.doesNotMatch(line, /^SCAN\b/);
  });
});

test('the plans hold in a populated app too (statistics from ANALYZE do not change them)', async () => {
  await withDb(async (db) => {
    const endpoints = new Endpoints(db, new ManualClock(Date.parse('2026-11-26T10:00:00Z')));
    await endpoints.upsertBatch(
      'app1',
      Array.from({ length: 300 }, (_, i) => ({
        id: `e${i}`,
        input: { Address: `a${i % 3}@example.com`, ChannelType: 'EMAIL', User: { UserId: `u${i % 50}` } },
      })),
    );
    db.exec('ANALYZE');
    const fresh = new Database(db.name);
    try {
      assertKeyed(fresh, 'byUser', ENDPOINT_SQL.byUser, /USING INDEX endpoints_user/);
      assertKeyed(fresh, 'activeByAddress', ENDPOINT_SQL.activeByAddress, /USING INDEX endpoints_active_address/);
    } finally {
      fresh.close();
    }
  });
});

test('only ACTIVE endpoints are in the address index, so endpoints that once shared an address are not re-read', async () => {
  await withDb(async (db) => {
    const endpoints = new Endpoints(db, new ManualClock(Date.parse('2026-11-26T10:00:00Z')));
    for (let i = 0; i < 20; i++) await endpoints.upsert('app1', `e${i}`, { Address: 'same@example.com', ChannelType: 'EMAIL' });
    const indexed = db.prepare(`SELECT id FROM endpoints INDEXED BY endpoints_active_address WHERE app_id = 'app1' AND active_address = 'same@example.com'`).all();
    assert.deepEqual(indexed, [{ id: 'e19' }]);
    assert.equal((await endpoints.get('app1', 'e0'))!.endpoint.EndpointStatus, 'INACTIVE');
    assert.equal((await endpoints.get('app1', 'e0'))!.endpoint.Address, 'same@example.com', 'the endpoint keeps its Address');
    assert.equal((await endpoints.get('app1', 'e19'))!.endpoint.EndpointStatus, 'ACTIVE');
    // Re-activating an old endpoint puts it back in the index, and the next owner deactivates it.
    await endpoints.upsert('app1', 'e0', { Address: 'same@example.com' });
    assert.equal((await endpoints.get('app1', 'e19'))!.endpoint.EndpointStatus, 'INACTIVE');
    await endpoints.upsert('app1', 'e5', { EndpointStatus: 'ACTIVE' });
    await endpoints.upsert('app1', 'e7', { Address: 'same@example.com' });
    assert.equal((await endpoints.get('app1', 'e0'))!.endpoint.EndpointStatus, 'INACTIVE');
    assert.equal((await endpoints.get('app1', 'e5'))!.endpoint.EndpointStatus, 'INACTIVE');
  });
});

test('an existing data directory is migrated: the address index holds ACTIVE endpoints and is used', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pinstream-plans-'));
  try {
    // A data directory as migrations 1-6 left it (the real ones), with one ACTIVE and one INACTIVE endpoint.
    const old = new Database(join(dir, 'pinstream.db'));
    for (const m of MIGRATIONS.slice(0, 6)) old.exec(m);
    const put = old.prepare('INSERT INTO endpoints VALUES (?, ?, ?, ?, ?)');
    const row = (id: string, status: string) =>
      JSON.stringify({ ApplicationId: 'app1', Id: id, CohortId: '1', CreationDate: '2026-01-01T00:00:00.000Z', EffectiveDate: '2026-01-01T00:00:00.000Z', EndpointStatus: status, OptOut: 'NONE', Address: 'a@example.com', User: { UserId: 'u1' } });
    put.run('app1', 'old-active', 'u1', 'a@example.com', row('old-active', 'ACTIVE'));
    put.run('app1', 'old-inactive', 'u1', 'a@example.com', row('old-inactive', 'INACTIVE'));
    old.pragma('user_version = 6');
    old.close();

    const db = openDb(dir);
    try {
      assert.deepEqual(db.prepare('SELECT id, active_address FROM endpoints ORDER BY id').all(), [
        { id: 'old-active', active_address: 'a@example.com' },
        { id: 'old-inactive', active_address: null },
      ]);
      assert.deepEqual(db.prepare(`SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'endpoints' ORDER BY name`).all(), [
        { name: 'endpoints_active_address' },
        { name: 'endpoints_user' },
      ]);
      const endpoints = new Endpoints(db, new ManualClock(Date.parse('2026-11-26T10:00:00Z')));
      await endpoints.upsert('app1', 'new', { Address: 'a@example.com' });
      assert.equal((await endpoints.get('app1', 'old-active'))!.endpoint.EndpointStatus, 'INACTIVE');
      assert.deepEqual((await endpoints.byUser('app1', 'u1')).map((e) => e.Id).sort(), ['old-active', 'old-inactive']);
    } finally {
      db.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(`DeleteApp removes the app's endpoints ${ENDPOINT_PURGE_CHUNK} per event-loop turn, and a purge a stop interrupted resumes`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pinstream-plans-'));
  const db = openDb(dir);
  try {
    const clock = new ManualClock(Date.parse('2026-11-26T10:00:00Z'));
    const apps = await Apps.open(db, sqliteMetadata(db), clock, 'us-east-1', '000000000000');
    const endpoints = new Endpoints(db, clock);
    const app = (await apps.create('doomed', {})).Id;
    const other = (await apps.create('kept', {})).Id;
    const total = ENDPOINT_PURGE_CHUNK * 2 + 500;
    await endpoints.upsertBatch(app, Array.from({ length: total }, (_, i) => ({ id: `e${i}`, input: { Address: `a${i}@example.com`, User: { UserId: `u${i}` } } })));
    await endpoints.upsert(other, 'e0', { Address: 'a0@example.com' });
    const count = (id: string) => (db.prepare('SELECT count(*) AS n FROM endpoints WHERE app_id = ?').get(id) as { n: number }).n;

    await apps.delete(app);
    assert.deepEqual(db.prepare('SELECT app_id FROM endpoint_purges').all(), [{ app_id: app }]);
    const purge = endpoints.purgeApp(app);
    // A marker queued on the event loop now runs after the first chunk (done at once) and the one
    // queued before it, and before the rest: the purge does not hold the loop.
    await new Promise((r) => setImmediate(r));
    assert.equal(count(app), total - 2 * ENDPOINT_PURGE_CHUNK, 'one chunk per turn');
    await purge;
    assert.equal(count(app), 0);
    assert.equal(count(other), 1, "another app's endpoints stay");
    assert.deepEqual(db.prepare('SELECT app_id FROM endpoint_purges').all(), []);
    assert.equal(await endpoints.get(app, 'e1'), undefined, 'nothing cached survives');

    // A stop between chunks: the queue entry stays, and the next start finishes the job.
    const again = (await apps.create('doomed-2', {})).Id;
    await endpoints.upsertBatch(again, Array.from({ length: ENDPOINT_PURGE_CHUNK + 1 }, (_, i) => ({ id: `x${i}`, input: {} })));
    await apps.delete(again);
    const restarted = new Endpoints(db, clock);
    await restarted.resumePurges();
    assert.equal(count(again), 0);
    assert.deepEqual(db.prepare('SELECT app_id FROM endpoint_purges').all(), []);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
