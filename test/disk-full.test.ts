// Issue 12 defect 10 on a real full disk: a small tmpfs (mounted by the test when running as root,
// skipped with the reason otherwise) holds the whole data directory. With the disk full, every put
// is refused with the retryable error its protocol uses and says that the disk is full
// (PutEvents: 500 InternalServerErrorException; Kinesis: InternalFailure, per record in PutRecords;
// Firehose: ServiceUnavailableException, 503, per record in PutRecordBatch), /health and /metrics
// say so, the server stays up, and once space is freed the very next puts succeed without a
// restart, with everything acknowledged readable, loaded into analytics and delivered.

import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutEventsCommand } from '@aws-sdk/client-pinpoint';
import { PutRecordCommand, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { PutRecordBatchCommand, PutRecordCommand as FirehosePutRecordCommand } from '@aws-sdk/client-firehose';
import { loadConfig } from '../src/config/config.js';
import { startPinstream } from '../src/server.js';
import { folderContents } from './helpers/firehose.js';
import { rejection } from './helpers/rejection.js';
import { seeded } from './helpers/random.js';
import { Acked, clientsFor, health, idOf, load, metric, readStream, setUp } from './helpers/pipeline.js';
import { TEST_METRICS_TOKEN } from './helpers/process.js';
import { EventStore, isInvalidated, type EventRow } from '../src/analytics/store.js';
import { KINESIS_SOURCE_MAX_BACKOFF_MS } from '../src/firehose/limits.js';
import { eventually } from './helpers/eventually.js';

/** Runs `f` with a small tmpfs mounted at a fresh directory; skips when mounting is not permitted. */
async function withTmpfs(t: TestContext, sizeMb: number, f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-tmpfs-'));
  try {
    if (process.getuid?.() !== 0) {
      t.skip('needs root to mount a tmpfs (a real full disk)');
      return;
    }
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir], { stdio: 'pipe' });
    } catch (e) {
      t.skip(`mount -t tmpfs is not permitted here: ${String((e as Error).message).split('\n')[0]}`);
      return;
    }
    try {
      await f(dir);
    } finally {
      execFileSync('umount', ['-l', dir]);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Fills the file system holding `dir` with one file, to the last byte; returns its path. */
async function fillDisk(dir: string): Promise<string> {
  const path = join(dir, 'filler');
  const fh = await open(path, 'w');
  try {
    for (const size of [1 << 20, 4096, 1]) {
      const chunk = Buffer.alloc(size, 1);
      for (;;) {
        try {
          await fh.write(chunk);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw e;
        }
      }
    }
  } finally {
    await fh.close();
  }
  return path;
}

test('a real full disk (tmpfs): every put says the disk is full, the server stays up, and puts succeed again once space is freed', { timeout: 120_000 }, async (t) => {
  await withTmpfs(t, 96, async (mnt) => {
    const dataDir = join(mnt, 'data');
    const server = await startPinstream(loadConfig({}, { port: 0, dataDir, metricsToken: TEST_METRICS_TOKEN }), undefined, { logReport: () => {} });
    const c = clientsFor(server.url, server.admin);
    try {
      const app = await setUp(c, { intervalSeconds: 0, eventStream: false });
      const acked = new Acked();
      const rng = seeded(1);
      await load(c, app, acked, 'before', rng);
      const filler = await fillDisk(mnt);

      // Pinpoint: a 500 InternalServerErrorException (the SDK retries it) that says why.
      const ev = await rejection(
        c.pinpoint.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: { 'ep-full': { Endpoint: {}, Events: { full: { EventType: 'x', Timestamp: new Date().toISOString() } } } } } })),
      );
      assert.equal(ev.name, 'InternalServerErrorException');
      assert.equal(ev.$metadata.httpStatusCode, 500);
      assert.match(ev.message, /disk is full/);
      // Kinesis: per-record InternalFailure in PutRecords, a 500 InternalFailure for PutRecord.
      // (Writes big enough to need new blocks: a small one may still fit in a segment's last page.)
      const big = (id: string) => Buffer.from(`k|${id}|${'z'.repeat(20_000)}\n`);
      const kout = await c.kinesis.send(new PutRecordsCommand({ StreamName: 'fi-src', Records: [{ Data: big('full'), PartitionKey: 'a' }] }));
      assert.equal(kout.FailedRecordCount, 1);
      assert.equal(kout.Records![0].ErrorCode, 'InternalFailure');
      assert.match(kout.Records![0].ErrorMessage!, /the server's disk is full \(ENOSPC\)/);
      const kone = await rejection(c.kinesis.send(new PutRecordCommand({ StreamName: 'fi-src', Data: big('full1'), PartitionKey: 'a' })));
      assert.equal(kone.$metadata.httpStatusCode, 500);
      assert.match(kone.message, /disk is full/);
      // Firehose: ServiceUnavailableException, per record in PutRecordBatch, 503 for PutRecord.
      const fbig = (id: string) => Buffer.from(`f|${id}|${'z'.repeat(20_000)}\n`);
      const fout = await c.firehose.send(new PutRecordBatchCommand({ DeliveryStreamName: 'fi-direct', Records: [{ Data: fbig('full') }, { Data: fbig('full2') }] }));
      assert.equal(fout.FailedPutCount, 2);
      assert.deepEqual(fout.RequestResponses!.map((r) => r.ErrorCode), ['ServiceUnavailableException', 'ServiceUnavailableException']);
      assert.match(fout.RequestResponses![0].ErrorMessage!, /disk is full/);
      const fone = await rejection(c.firehose.send(new FirehosePutRecordCommand({ DeliveryStreamName: 'fi-direct', Record: { Data: fbig('full3') } })));
      assert.equal(fone.name, 'ServiceUnavailableException');
      assert.equal(fone.$metadata.httpStatusCode, 503);
      assert.match(fone.message, /disk is full/);
      // Health and metrics say so, by log kind.
      const h = await health(server.url);
      assert.equal(h.status, 'degraded');
      assert.ok(h.logs.kinesis.diskFullLogs >= 1 && h.logs.firehose.diskFullLogs >= 1, JSON.stringify(h.logs));
      assert.ok((await metric(server.url, 'pinstream_log_disk_full', 'kinesis')) >= 1);

      // Space comes back: the very next puts succeed, without a restart.
      await rm(filler);
      await load(c, app, acked, 'after', rng);
      // The logs those puts wrote recover with them. A log written only in the background (the
      // fi-source Firehose's, appended by its Kinesis-source reader) stays failing until that
      // writer's next attempt, which may be in its backoff (at most KINESIS_SOURCE_MAX_BACKOFF_MS).
      const now = await health(server.url);
      assert.equal(now.logs.ingest.failingLogs + now.logs.kinesis.failingLogs, 0, JSON.stringify(now.logs));
      assert.ok(now.logs.firehose.failingLogs <= 1, JSON.stringify(now.logs));
      await eventually(async () => {
        const h = await health(server.url);
        assert.equal(h.status, 'ok', JSON.stringify(h.logs));
      }, 3 * KINESIS_SOURCE_MAX_BACKOFF_MS);
      await server.analytics.catchUp();
      const read = await readStream(c.kinesis, 'fi-src');
      for (const [id, seq] of acked.kinesis) assert.ok(read.get(id)?.includes(seq), `Kinesis record ${id}`);
      assert.ok(!read.has('full') && !read.has('full1'), 'refused records were not stored');
      const loaded = new Set((await server.analytics.query('SELECT event_key FROM events')).map((r) => String(r[0])));
      for (const [id, endpoint] of acked.events) assert.ok(loaded.has(`${endpoint}/${id}`), `event ${id} loaded`);
    } finally {
      c.destroy();
      await server.close();
    }
    const delivered = new Set((await folderContents(join(dataDir, 'buckets', 'fi-direct-bucket'))).split('\n').filter(Boolean).map(idOf));
    const ids = [...delivered];
    assert.ok(ids.length > 0);
    assert.ok(!delivered.has('full') && !delivered.has('full2') && !delivered.has('full3'));
  });
});


/** A stored event of app `app` (only what the store needs). */
function eventRow(app: string, n: number, t: number): EventRow {
  return {
    appId: app, eventKey: `ep/${n}`, eventType: 'custom', eventTime: t, arrivalTime: t, endpointId: 'ep', userId: null, endpointCreated: null,
    sessionId: null, sessionStart: null, channel: 'GCM', platform: null, platformVersion: null, appVersion: null, make: null, model: null, country: null,
    attributes: `{"pad":"${'p'.repeat(200)}"}`, metrics: '{}', endpointAttributes: '{}', campaignId: null, campaignActivityId: null, treatmentId: null, journeyId: null, journeyActivityId: null,
    campaignSendStatus: null, journeySendStatus: null, deliveryType: null, journeyActivityType: null,
  };
}

test('DuckDB invalidated by a checkpoint on a full disk: the analytics store opens itself again once space is back, nothing committed lost', { timeout: 120_000 }, async (t) => {
  await withTmpfs(t, 48, async (mnt) => {
    const store = await EventStore.open(join(mnt, 'data'));
    const reopened: Error[] = [];
    store.onReopen = (cause) => reopened.push(cause);
    try {
      const t0 = Date.UTC(2024, 0, 1);
      // Committed (in the write-ahead log) while there is space; the checkpoint moves them into the file.
      for (let b = 0; b < 4; b++) await store.append(Array.from({ length: 2000 }, (_, i) => eventRow('app', b * 2000 + i, t0 + i)), { offset: (b + 1) * 2000 });
      const filler = await fillDisk(mnt);
      // The checkpoint cannot write: DuckDB invalidates the database; every statement after fails.
      const failed = await store.compact().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(failed, 'the checkpoint failed on the full disk');
      const after = await store.rowCount().then(
        () => undefined,
        (e: unknown) => e,
      );
      // Either the checkpoint's own error already said so, or the next statement does.
      assert.ok(isInvalidated(failed) || isInvalidated(after), `DuckDB invalidated the database: ${String(failed)} / ${String(after)}`);
      await rm(filler);
      // Space is back: the next call opens the file again (replaying its write-ahead log), with every
      // committed row and the loader's checkpoint.
      assert.equal(await store.rowCount(), 8000);
      assert.ok(store.reopens >= 1);
      assert.equal(reopened.length, store.reopens);
      assert.ok(isInvalidated(reopened[0]));
      assert.equal(await store.checkpoint(), 8000);
      await store.append([eventRow('app', 9000, t0)], { offset: 8001 });
      assert.equal(await store.rowCount(), 8001);
      // Read connections come from the reopened instance too.
      assert.equal(await store.withConnection(async (c) => Number((await c.runAndReadAll('SELECT count(*) FROM events')).getRowsJS()[0][0])), 8001);
    } finally {
      await store.close();
    }
  });
});
