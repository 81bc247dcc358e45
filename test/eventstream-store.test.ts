// Event streams on the embedded SQLite of an existing data directory: the migration that moved
// the delivery checkpoint out of the settings row (src/store/db.ts, src/pinpoint/eventstream-store.ts)
// keeps every saved checkpoint and rejected record, and the server resumes delivery from it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MIGRATIONS, openDb } from '../src/store/db.js';
import { sqliteMetadata } from '../src/store/metadata.js';
import { EventStreamStore } from '../src/pinpoint/eventstream-store.js';

test('an existing data directory keeps its event streams, their checkpoints and rejected records', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-es-upgrade-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // The database as it was before the checkpoint moved: every migration before that one.
  const at = MIGRATIONS.findIndex((m) => m.includes('CREATE TABLE delivery_checkpoints'));
  assert.ok(at > 0);
  const old = new Database(join(dir, 'pinstream.db'));
  for (let v = 0; v < at; v++) old.exec(MIGRATIONS[v]);
  old.pragma(`user_version = ${at}`);
  const insert = old.prepare('INSERT INTO event_streams (app_id, destination_arn, role_arn, last_modified, last_updated_by, checkpoint) VALUES (?, ?, ?, ?, ?, ?)');
  insert.run('a1', 'arn:aws:kinesis:us-east-1:000000000000:stream/s1', 'arn:aws:iam::000000000000:role/r', '2026-01-01T00:00:00.000Z', 'me', 1234);
  insert.run('a2', 'arn:aws:firehose:us-east-1:000000000000:deliverystream/f', 'arn:aws:iam::000000000000:role/r', '2026-01-02T00:00:00.000Z', 'you', 0);
  const err = old.prepare('INSERT INTO delivery_errors (app_id, log_offset, event_id, endpoint_id, reason, at) VALUES (?, ?, ?, ?, ?, ?)');
  // The same offset twice (rejected again after a replay): one row is kept.
  err.run('a1', 7, 'e7', 'p', 'first', '2026-01-01T00:00:00.000Z');
  err.run('a1', 7, 'e7', 'p', 'second', '2026-01-01T00:00:01.000Z');
  err.run('a1', 9, 'e9', 'p', 'other', '2026-01-01T00:00:02.000Z');
  old.close();

  const db = openDb(dir);
  t.after(() => db.close());
  assert.equal(db.pragma('user_version', { simple: true }), MIGRATIONS.length);
  const meta = sqliteMetadata(db);
  const es = await EventStreamStore.open(meta);
  assert.deepEqual(
    es.all().map((r) => [r.app_id, r.destination_arn, r.last_updated_by, r.epoch]),
    [
      ['a1', 'arn:aws:kinesis:us-east-1:000000000000:stream/s1', 'me', 0],
      ['a2', 'arn:aws:firehose:us-east-1:000000000000:deliverystream/f', 'you', 0],
    ],
  );
  assert.equal('checkpoint' in es.get('a1')!, false);
  assert.deepEqual(await es.checkpoint('a1'), { app_id: 'a1', position: 1234, epoch: 0 });
  assert.deepEqual(await es.checkpoint('a2'), { app_id: 'a2', position: 0, epoch: 0 });
  // A worker started on it writes on.
  assert.equal(await es.advance('a1', 1300, 0), 1300);
  assert.deepEqual((await es.rejected('a1')).map((r) => [r.log_offset, r.reason]), [
    [7, 'second'],
    [9, 'other'],
  ]);
  await meta.close();
});
