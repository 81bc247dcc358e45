// Crash test of the ingestion path: clients send PutEvents to a real `pinstream start` process,
// which is killed with SIGKILL mid-load. After it, every event that got a 202 "Accepted" must be in
// the ingest log exactly once, the log must read cleanly to its end, and the server must restart.
// The server runs with its PutEvents prepare pool (two threads), so requests are parsed on several
// threads while others are appended when the kill comes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { CreateAppCommand, PutEventsCommand } from '@aws-sdk/client-pinpoint';
import { SegmentLog } from '../src/log/segment-log.js';
import { decodeIngestEntry } from '../src/pinpoint/ingest-record.js';
import { pinpointClient } from './helpers/server.js';
import { spawnServer, waitForExit } from './helpers/process.js';

const CLIENTS = 8;
const EVENTS_PER_REQUEST = 25;
const KILL_AFTER_ACKED_EVENTS = 20_000;
const MAX_LOAD_MS = 20_000;

test('kill -9 during PutEvents: every acknowledged event is in the log exactly once', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-crash-'));
  try {
    const first = await spawnServer({ PINSTREAM_DATA_DIR: dataDir, PINSTREAM_INGEST_THREADS: '2' });
    const creds = { accessKeyId: first.accessKeyId, secretAccessKey: first.secretAccessKey! };
    const client = pinpointClient({ url: first.url, admin: creds });
    const app = (await client.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'crash' } }))).ApplicationResponse!.Id!;

    const acked = new Set<string>();
    let sent = 0;
    let failedRequests = 0;
    let killed = false;
    const started = Date.now();
    const loop = async () => {
      while (!killed && Date.now() - started < MAX_LOAD_MS) {
        const endpointId = randomUUID();
        const Events: Record<string, { EventType: string; Timestamp: string }> = {};
        for (let i = 0; i < EVENTS_PER_REQUEST; i++) Events[randomUUID()] = { EventType: 'crash.test', Timestamp: new Date().toISOString() };
        sent += EVENTS_PER_REQUEST;
        try {
          const r = await client.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: { [endpointId]: { Endpoint: {}, Events } } } }));
          for (const [id, res] of Object.entries(r.EventsResponse!.Results![endpointId].EventsItemResponse!)) {
            assert.deepEqual(res, { StatusCode: 202, Message: 'Accepted' });
            acked.add(id);
          }
        } catch {
          failedRequests++;
          if (killed) return;
        }
        if (!killed && acked.size >= KILL_AFTER_ACKED_EVENTS) {
          killed = true;
          first.child.kill('SIGKILL');
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, loop));
    if (!killed) {
      killed = true;
      first.child.kill('SIGKILL');
    }
    const exit = await waitForExit(first.child);
    client.destroy();
    assert.equal(exit.signal, 'SIGKILL');
    assert.ok(acked.size > 0, 'some events were acknowledged before the kill');

    // Read the log directly, as the server left it.
    const log = await SegmentLog.open(join(dataDir, 'log', 'ingest'), { fsync: false });
    const seen = new Map<string, number>();
    let offset = log.startOffset();
    let expectedOffset = offset;
    while (offset < log.endOffset()) {
      const { records, nextOffset } = await log.read(offset, { maxRecords: 5000 });
      for (const r of records) {
        assert.equal(r.offset, expectedOffset++, 'offsets are dense');
        const e = decodeIngestEntry(r.payload);
        assert.equal(e.appId, app);
        const record = JSON.parse(e.record.toString('utf8'));
        assert.equal(record.event_type, 'crash.test');
        seen.set(e.eventId, (seen.get(e.eventId) ?? 0) + 1);
      }
      offset = nextOffset;
    }
    await log.close();
    const missing = [...acked].filter((id) => !seen.has(id));
    assert.deepEqual(missing, [], `${missing.length} acknowledged events missing`);
    const duplicated = [...seen].filter(([, n]) => n > 1);
    assert.deepEqual(duplicated, [], 'no event is in the log twice');
    console.log(
      `crash test: ${sent} events sent, ${acked.size} acknowledged, ${seen.size} in the log ` +
        `(${seen.size - acked.size} written but unacknowledged at the kill), ${failedRequests} requests failed by the kill`,
    );

    // The server starts again on the same data, keeps its admin key, and accepts events.
    const second = await spawnServer({ PINSTREAM_DATA_DIR: dataDir, PINSTREAM_INGEST_THREADS: '2' });
    try {
      assert.equal(second.accessKeyId, creds.accessKeyId);
      assert.equal(second.secretAccessKey, undefined, 'the secret is shown only at the first start');
      const c2 = pinpointClient({ url: second.url, admin: creds });
      const endpointId = randomUUID();
      const r = await c2.send(
        new PutEventsCommand({
          ApplicationId: app,
          EventsRequest: { BatchItem: { [endpointId]: { Endpoint: {}, Events: { after: { EventType: 'x', Timestamp: new Date().toISOString() } } } } },
        }),
      );
      assert.equal(r.EventsResponse!.Results![endpointId].EventsItemResponse!.after.Message, 'Accepted');
      c2.destroy();
    } catch (e) {
      // What the restarted server said (its stderr) explains a failure here.
      console.log(second.output());
      throw e;
    } finally {
      second.child.kill('SIGTERM');
      const { code } = await waitForExit(second.child);
      assert.equal(code, 0, 'SIGTERM shuts down cleanly');
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
