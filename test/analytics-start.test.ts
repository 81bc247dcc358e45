// How a server starts its analytics thread and its PutEvents prepare threads without waiting for
// them (src/analytics/remote.ts `deferred`/`ready`, gate.ts, src/pinpoint/parallel/pool.ts): a
// server on an empty ingest log starts neither until it needs them; a server whose log holds
// records starts the loader at once, which loads them without any call; and an event put before
// the analytics thread has opened still gets its offset only after the loader's checkpoint was
// checked against the log's end, so a checkpoint the log lost does not make the loader skip it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateAppCommand, PutEventsCommand, type Event } from '@aws-sdk/client-pinpoint';
import { PreparePool } from '../src/pinpoint/parallel/pool.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { until } from './helpers/firehose.js';

async function createApp(t: TestServer): Promise<string> {
  return (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'start' } }))).ApplicationResponse!.Id!;
}

async function putEvents(t: TestServer, app: string, ids: string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 100) {
    const Events: Record<string, Event> = {};
    for (const id of ids.slice(i, i + 100)) Events[id] = { EventType: 'start.test', Timestamp: new Date().toISOString() };
    const r = await t.pinpoint.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: { [`ep-${i}`]: { Endpoint: {}, Events } } } }));
    for (const res of Object.values(r.EventsResponse!.Results![`ep-${i}`].EventsItemResponse!)) assert.equal(res.StatusCode, 202);
  }
}

async function loadedIds(t: TestServer): Promise<Set<string>> {
  await t.server.analytics.catchUp();
  return new Set((await t.server.analytics.query('SELECT event_key FROM events')).map((r) => String(r[0]).split('/')[1]));
}

test('a server on an empty ingest log listens without the analytics thread; the first analytics call starts it', async () => {
  const t = await startTestServer();
  try {
    assert.equal(t.server.analytics.started, false);
    assert.equal(t.server.analytics.loaderLag(), undefined);
    assert.equal(await t.server.analytics.rowCount(), 0);
    assert.equal(t.server.analytics.started, true);
  } finally {
    await t.close();
  }
});

test('a server whose ingest log holds records starts the loader at once, and it loads them without any call', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-start-'));
  try {
    let t = await startTestServer({ dataDir });
    let app: string;
    try {
      app = await createApp(t);
      await putEvents(t, app, Array.from({ length: 300 }, (_, i) => `a-${i}`));
    } finally {
      await t.close();
    }
    t = await startTestServer({ dataDir });
    try {
      assert.equal(t.server.analytics.started, true);
      await until(() => t.server.analytics.loaderLag()?.recordsBehind === 0, 'the loader to report it has loaded the log', 60_000);
      assert.equal((await loadedIds(t)).size, 300);
    } finally {
      await t.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('events put right after a start with a lost ingest log wait for the loader checkpoint check, and are loaded, not skipped', { timeout: 120_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-start-gap-'));
  try {
    let t = await startTestServer({ dataDir });
    let app: string;
    try {
      app = await createApp(t);
      await putEvents(t, app, Array.from({ length: 300 }, (_, i) => `old-${i}`));
      assert.equal((await loadedIds(t)).size, 300);
    } finally {
      await t.close();
    }
    // The whole ingest log is gone; the analytics store's checkpoint (300) is beyond its end (0).
    await rm(join(dataDir, 'log', 'ingest'), { recursive: true });

    t = await startTestServer({ dataDir });
    try {
      // Nothing has opened the analytics store yet: the first append is what starts it, and waits for its check.
      assert.equal(t.server.analytics.started, false);
      const after = Array.from({ length: 200 }, (_, i) => `new-${i}`);
      await putEvents(t, app, after);
      assert.ok(t.server.ingestLog.endOffset() >= 500, `new events are appended after the lost checkpoint (end ${t.server.ingestLog.endOffset()})`);
      const loaded = await loadedIds(t);
      for (const id of after) assert.ok(loaded.has(id), `${id} loaded`);
      assert.equal((await t.server.analytics.loaderHealth()).checkpointGap?.records, 300);
    } finally {
      await t.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('the prepare pool starts its threads with its first job, not before', async () => {
  const pool = new PreparePool(2);
  try {
    assert.equal(pool.started, 0);
    const out = await pool.run({ appId: 'a'.repeat(32), body: Buffer.from('{'), labels: {}, arrivalMs: Date.now() });
    assert.equal(out.ok, false, 'a malformed body is answered as one');
    assert.equal(pool.started, 2);
  } finally {
    await pool.close();
  }
});
