// A retried PutEvents event is answered "Accepted" only once its original is durable: a retry that
// arrives while the original's append is in flight waits for it; if the original's append fails,
// the retry writes the events itself. First through EventIngest with a log whose appends the test
// holds and fails, then through the real server with the official SDK and a failing first append.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateAppCommand, PutEventsCommand, type EventsBatch } from '@aws-sdk/client-pinpoint';
import { ManualClock } from '../src/clock.js';
import type { AppendResult, Log, Payload } from '../src/log/log.js';
import { Apps } from '../src/pinpoint/apps.js';
import { Dedup } from '../src/pinpoint/dedup.js';
import { Endpoints } from '../src/pinpoint/endpoints.js';
import { EventIngest, MAX_RETRY_WAIT_MS } from '../src/pinpoint/events.js';
import { decodeIngestEntry } from '../src/pinpoint/ingest-record.js';
import { openDb, type Db } from '../src/store/db.js';
import { sqliteMetadata } from '../src/store/metadata.js';
import { startTestServer } from './helpers/server.js';

/** One append call the test decides: resolve it (durable) or reject it (disk full, fsync failed). */
interface HeldAppend {
  payloads: string[];
  succeed(): void;
  fail(e: Error): void;
}

/** A log whose appends wait for the test (PutEvents only appends). */
class ControlledLog implements Pick<Log, 'append'> {
  readonly calls: HeldAppend[] = [];
  readonly stored: string[] = [];
  private waiters: Array<() => void> = [];

  append(payloads: ReadonlyArray<Payload>): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      const copy = payloads.map((p) => p.toString());
      this.calls.push({
        payloads: copy,
        succeed: () => {
          const firstOffset = this.stored.length;
          this.stored.push(...copy);
          resolve({ firstOffset, timestamp: 0 });
        },
        fail: reject,
      });
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Resolves once the log has seen `n` append calls. */
  async appended(n: number): Promise<HeldAppend> {
    while (this.calls.length < n) await new Promise<void>((r) => this.waiters.push(r));
    return this.calls[n - 1];
  }

  storedEventIds(): string[] {
    return this.stored.map((p) => decodeIngestEntry(Buffer.from(p)).eventId).sort();
  }
}

interface Harness {
  db: Db;
  log: ControlledLog;
  ingest: EventIngest;
  appId: string;
  close(): void;
}

async function harness(retryWaitMs?: number): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'pinstream-retry-'));
  const db = openDb(dir);
  const clock = new ManualClock(Date.parse('2026-11-26T10:00:00Z'));
  const apps = await Apps.open(db, sqliteMetadata(db), clock, 'us-east-1', '000000000000');
  const appId = (await apps.create('retry', {})).Id;
  const log = new ControlledLog();
  const ingest = new EventIngest(apps, new Endpoints(db, clock), log, new Dedup(1000), clock, '000000000000', { retryWaitMs });
  return {
    db,
    log,
    ingest,
    appId,
    close: () => {
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A PutEvents request's bytes and its validated input, as the route hands them to the ingest. */
const body = (events: string[]) => {
  const request = {
    BatchItem: { 'device-1': { Endpoint: {}, Events: Object.fromEntries(events.map((id) => [id, { EventType: 'pageView', Timestamp: '2026-11-26T09:00:00Z' }])) } },
  };
  return [Buffer.from(JSON.stringify(request)), request] as const;
};

type Answer = Awaited<ReturnType<EventIngest['putEvents']>>;
// Results are null-prototype maps (a client's event id may be "__proto__"); a plain copy compares with object literals.
const eventResults = (a: Answer) => ({ ...(a.Results['device-1'] as { EventsItemResponse: Record<string, { StatusCode: number }> }).EventsItemResponse });

/** Tracks whether a promise has settled, without awaiting it. */
function watch<T>(p: Promise<T>) {
  const w = { settled: false, promise: p };
  p.then(
    () => (w.settled = true),
    () => (w.settled = true),
  );
  return w;
}

describe('a retry while its original is being written (EventIngest, controlled log)', () => {
  test('the retry is not answered before the original is durable; the original fails; the retry writes the events', async () => {
    const h = await harness();
    try {
      const original = watch(h.ingest.putEvents(h.appId, ...body(['e1', 'e2'])));
      const held = await h.log.appended(1);
      const retry = watch(h.ingest.putEvents(h.appId, ...body(['e1', 'e2'])));
      // Marker: a later request with another event is appended and answered; the retry, sent
      // before it, must still be waiting (the code before the fix had answered it "Accepted").
      const marker = h.ingest.putEvents(h.appId, ...body(['m1']));
      (await h.log.appended(2)).succeed();
      assert.equal(eventResults(await marker).m1.StatusCode, 202);
      assert.equal(retry.settled, false, 'the retry was answered while its original was still being written');
      assert.equal(h.ingest.retriesWaiting, 2);

      held.fail(new Error('ENOSPC: no space left on device'));
      await assert.rejects(original.promise, (e: any) => e.status === 500 && /could not be stored/.test(e.message));
      const rewrite = await h.log.appended(3);
      assert.deepEqual(rewrite.payloads.map((p) => decodeIngestEntry(Buffer.from(p)).eventId).sort(), ['e1', 'e2']);
      assert.equal(retry.settled, false, 'the retry answers only once its own write is durable');
      rewrite.succeed();
      const answer = await retry.promise;
      assert.deepEqual(eventResults(answer), { e1: { StatusCode: 202, Message: 'Accepted' }, e2: { StatusCode: 202, Message: 'Accepted' } });
      assert.deepEqual(h.log.storedEventIds(), ['e1', 'e2', 'm1'], 'every accepted event is stored, once');
      assert.equal(h.ingest.retriesWaiting, 0);
    } finally {
      h.close();
    }
  });

  test('when the original becomes durable, the retry is answered Accepted without a second copy', async () => {
    const h = await harness();
    try {
      const original = h.ingest.putEvents(h.appId, ...body(['e1', 'e2']));
      const held = await h.log.appended(1);
      const retry = watch(h.ingest.putEvents(h.appId, ...body(['e1', 'e2', 'e3'])));
      const own = await h.log.appended(2);
      assert.deepEqual(own.payloads.map((p) => decodeIngestEntry(Buffer.from(p)).eventId), ['e3'], 'the retry writes only its new event now');
      own.succeed();
      held.succeed();
      await original;
      const answer = await retry.promise;
      assert.deepEqual(Object.values(eventResults(answer)).map((r) => r.StatusCode), [202, 202, 202]);
      assert.deepEqual(h.log.storedEventIds(), ['e1', 'e2', 'e3']);
      assert.equal(h.log.calls.length, 2, 'no append for the events the original stored');
    } finally {
      h.close();
    }
  });

  test('two retries of a failed original: one writes, the other waits for that write', async () => {
    const h = await harness();
    try {
      const original = h.ingest.putEvents(h.appId, ...body(['e1']));
      const held = await h.log.appended(1);
      const r1 = h.ingest.putEvents(h.appId, ...body(['e1']));
      const r2 = h.ingest.putEvents(h.appId, ...body(['e1']));
      held.fail(new Error('fsync failed'));
      await assert.rejects(original);
      (await h.log.appended(2)).succeed();
      const [a1, a2] = await Promise.all([r1, r2]);
      assert.equal(eventResults(a1).e1.StatusCode, 202);
      assert.equal(eventResults(a2).e1.StatusCode, 202);
      assert.deepEqual(h.log.storedEventIds(), ['e1']);
      assert.equal(h.log.calls.length, 2);
    } finally {
      h.close();
    }
  });

  test(`a retry waits at most its bound (MAX_RETRY_WAIT_MS = ${MAX_RETRY_WAIT_MS} ms by default), then answers that event with a retryable 500`, async () => {
    const h = await harness(20);
    try {
      const original = watch(h.ingest.putEvents(h.appId, ...body(['e1'])));
      const held = await h.log.appended(1);
      const retry = h.ingest.putEvents(h.appId, ...body(['e1', 'e2']));
      (await h.log.appended(2)).succeed();
      const answer = await retry;
      const results = eventResults(answer) as Record<string, { StatusCode: number; Message: string }>;
      assert.equal(results.e1.StatusCode, 500);
      assert.match(results.e1.Message, /still being stored after 20 ms; retry it/);
      assert.equal(results.e2.StatusCode, 202);
      assert.equal(original.settled, false);
      held.fail(new Error('gave up'));
      await assert.rejects(original.promise);
      assert.deepEqual(h.log.storedEventIds(), ['e2'], 'e1 was refused by both requests, so the client still has it');
    } finally {
      h.close();
    }
  });
});

describe('a retry while its original is being written (real server, SDK)', () => {
  test('the first append fails after the retry arrived: the original gets a 500, the retry writes and is Accepted', async () => {
    const t = await startTestServer();
    try {
      const app = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'retry' } }))).ApplicationResponse!.Id!;
      const log = t.server.ingestLog;
      const realAppend = log.append.bind(log);
      let releaseFirst!: (e: Error) => void;
      let firstCalled!: () => void;
      const firstSeen = new Promise<void>((r) => (firstCalled = r));
      let calls = 0;
      // The log wrapper: the first append (the original's) is held, then fails like a full disk.
      log.append = (payloads) => {
        if (++calls > 1) return realAppend(payloads);
        firstCalled();
        return new Promise((_, reject) => (releaseFirst = reject));
      };
      const batch: Record<string, EventsBatch> = {
        'device-9': { Endpoint: {}, Events: { r1: { EventType: 'pageView', Timestamp: '2026-11-26T09:00:00Z' }, r2: { EventType: 'pageView', Timestamp: '2026-11-26T09:00:01Z' } } },
      };
      const send = () => t.pinpoint.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: batch } }));
      const from = log.endOffset();
      const original = send();
      original.catch(() => {});
      await firstSeen;
      const retry = send();
      const state = await Promise.race([
        retry.then(() => 'answered' as const),
        waitFor(() => t.server.ingest.retriesWaiting === 2).then(() => 'waiting' as const),
      ]);
      assert.equal(state, 'waiting', 'the retry was answered while its original was still being written');
      releaseFirst(new Error('ENOSPC: no space left on device, write'));
      await assert.rejects(original, (e: any) => e.name === 'InternalServerErrorException' && e.$metadata.httpStatusCode === 500);
      const answer = await retry;
      const events = answer.EventsResponse!.Results!['device-9'].EventsItemResponse!;
      assert.deepEqual(events, { r1: { StatusCode: 202, Message: 'Accepted' }, r2: { StatusCode: 202, Message: 'Accepted' } });
      const { records } = await log.read(from, { maxRecords: 100 });
      assert.deepEqual(records.map((r) => decodeIngestEntry(r.payload).eventId).sort(), ['r1', 'r2'], 'the acknowledged events are in the ingest log, once');
    } finally {
      await t.close();
    }
  });
});

/** Polls a condition on the event loop until it holds (bounded). */
async function waitFor(cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
