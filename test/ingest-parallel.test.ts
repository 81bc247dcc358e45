// PutEvents with its prepare pool on (src/pinpoint/parallel/): requests parsed on different threads
// still reach the log in the order they arrived (per endpoint order on the event stream), retries
// racing across threads are stored once, and every answer — accepted, malformed, refused — is the
// one the inline path gives. First through EventIngest with a log the test reads, then through the
// real server with the official SDK.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { CreateAppCommand, PutEventsCommand } from '@aws-sdk/client-pinpoint';
import { ManualClock } from '../src/clock.js';
import type { AppendResult, Log, Payload } from '../src/log/log.js';
import { ApiError, forbidden } from '../src/http/errors.js';
import { Apps } from '../src/pinpoint/apps.js';
import { Dedup } from '../src/pinpoint/dedup.js';
import { Endpoints } from '../src/pinpoint/endpoints.js';
import { EventIngest } from '../src/pinpoint/events.js';
import { decodeIngestEntry } from '../src/pinpoint/ingest-record.js';
import { MAX_EVENTS_PER_REQUEST, MAX_EVENT_ATTRIBUTES_AND_METRICS } from '../src/pinpoint/limits.js';
import { openDb } from '../src/store/db.js';
import { sqliteMetadata } from '../src/store/metadata.js';
import { MAX_PREPARE_THREADS, PreparePool } from '../src/pinpoint/parallel/pool.js';
import { startTestServer } from './helpers/server.js';

/** A log that stores each append on the next turn (so appends are in flight while others arrive). */
class TurnLog implements Pick<Log, 'append'> {
  readonly stored: Buffer[] = [];
  append(payloads: ReadonlyArray<Payload>): Promise<AppendResult> {
    const copy = payloads.map((p) => Buffer.from(p.toString()));
    return new Promise((resolve) =>
      setImmediate(() => {
        const firstOffset = this.stored.length;
        this.stored.push(...copy);
        resolve({ firstOffset, timestamp: 0 });
      }),
    );
  }
  entries() {
    return this.stored.map((b) => ({ ...decodeIngestEntry(b), json: b.toString('utf8') }));
  }
}

async function harness(threads: number) {
  const dir = mkdtempSync(join(tmpdir(), 'pinstream-parallel-'));
  const db = openDb(dir);
  const clock = new ManualClock(Date.parse('2026-11-26T10:00:00Z'));
  const apps = await Apps.open(db, sqliteMetadata(db), clock, 'us-east-1', '000000000000');
  const appId = (await apps.create('parallel', {})).Id;
  const log = new TurnLog();
  const ingest = new EventIngest(apps, new Endpoints(db, clock), log, new Dedup(100_000), clock, '000000000000', { threads });
  return {
    appId,
    log,
    ingest,
    /** PutEvents as the HTTP route calls it; `allowed` false makes authorization refuse. */
    put: (body: string | Buffer, allowed = true) =>
      ingest.putEventsBody(
        appId,
        { body: Buffer.from(body), labels: { 'application-id': appId } },
        () => {
          if (!allowed) throw forbidden('not allowed');
        },
        () => undefined,
      ),
    async close() {
      await ingest.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const event = (type: string, attrs = 0) => ({
  EventType: type,
  Timestamp: '2026-11-26T09:00:00Z',
  Attributes: Object.fromEntries(Array.from({ length: attrs }, (_, i) => [`a${i}`, 'x'.repeat(100)])),
  Session: { Id: 's1', StartTimestamp: '2026-11-26T08:59:00Z' },
});

const batch = (endpointId: string, ids: string[], attrs = 0) =>
  JSON.stringify({ BatchItem: { [endpointId]: { Endpoint: {}, Events: Object.fromEntries(ids.map((id) => [id, event(id, attrs)])) } } });

/** An answer or the error, comparable across the two paths. */
async function outcome(p: Promise<unknown>): Promise<unknown> {
  try {
    return JSON.parse(JSON.stringify(await p));
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    return { error: e.code, status: e.status, message: e.message };
  }
}

describe('PutEvents through the prepare pool (EventIngest, 2 threads)', () => {
  test('requests are applied in arrival order: a small request behind a large one waits for it, so one endpoint keeps its order', async () => {
    const h = await harness(2);
    try {
      // Large bodies (parsed longer) alternate with one-event ones; with two threads the small
      // ones are ready first. Fired without awaiting, as concurrent requests arrive.
      const answers: Array<Promise<unknown>> = [];
      const expected: string[] = [];
      for (let r = 0; r < 24; r++) {
        const ids = r % 2 === 0 ? Array.from({ length: MAX_EVENTS_PER_REQUEST }, (_, i) => `r${r}-e${i}`) : [`r${r}-e0`];
        expected.push(...ids);
        answers.push(h.put(batch('device-1', ids, r % 2 === 0 ? MAX_EVENT_ATTRIBUTES_AND_METRICS - 1 : 0)));
      }
      await Promise.all(answers);
      assert.deepEqual(
        h.log.entries().map((e) => e.eventId),
        expected,
      );
    } finally {
      await h.close();
    }
  });

  test('retries racing across threads: every copy answered Accepted, each event stored once', async () => {
    const h = await harness(2);
    try {
      const ids = Array.from({ length: 50 }, () => randomUUID());
      const copies = 16;
      const answers = await Promise.all(
        Array.from({ length: copies }, (_, i) => h.put(batch('device-1', i % 2 ? ids : [...ids].reverse(), i % 3))),
      );
      for (const a of answers) {
        const results = (a.Results['device-1'] as { EventsItemResponse: Record<string, { StatusCode: number }> }).EventsItemResponse;
        assert.equal(Object.keys(results).length, ids.length);
        for (const id of ids) assert.equal(results[id].StatusCode, 202);
      }
      const stored = h.log.entries().map((e) => e.eventId);
      assert.deepEqual([...stored].sort(), [...ids].sort(), 'each event id once');
    } finally {
      await h.close();
    }
  });

  test('every answer equals the inline path: records byte for byte, malformed bodies, model errors, refusals in the same order', async () => {
    const inline = await harness(0);
    const pooled = await harness(2);
    try {
      const cases: Array<[string, string | Buffer, boolean?]> = [
        ['valid, with bad events among good', JSON.stringify({ BatchItem: { d1: { Endpoint: { Demographic: { AppVersion: '1.2', Locale: 'en_GB' } }, Events: { ok: event('a', 2), bad: { EventType: '' }, ts: { EventType: 'x', Timestamp: 'yesterday' } } } } })],
        ['an endpoint id with $', JSON.stringify({ BatchItem: { 'd$1': { Endpoint: {}, Events: { e: event('a') } } } })],
        ['an invalid endpoint profile', JSON.stringify({ BatchItem: { d2: { Endpoint: { EndpointStatus: 'MAYBE' }, Events: { e2: event('a') } } } })],
        ['not JSON', '{"BatchItem":'],
        ['an array', '[]'],
        ['model violation', JSON.stringify({ BatchItem: { d1: { Endpoint: {}, Events: 'nope' } } })],
        ['missing BatchItem', '{}'],
        ['too many events', batch('d3', Array.from({ length: MAX_EVENTS_PER_REQUEST + 1 }, (_, i) => `t${i}`))],
        ['malformed and unauthorized: the body is judged first', 'nope', false],
        ['too many and unauthorized: authorization first', batch('d3', Array.from({ length: MAX_EVENTS_PER_REQUEST + 1 }, (_, i) => `u${i}`)), false],
        ['unpaired surrogate escapes repaired', '{"BatchItem":{"d4":{"Endpoint":{},"Events":{"s":{"EventType":"a\\ud800b","Timestamp":"2026-11-26T09:00:00Z"}}}}}'],
        ['a UTF-8 BOM is not JSON', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{}')])],
      ];
      for (const [name, body, allowed] of cases) {
        assert.deepEqual(await outcome(pooled.put(body, allowed)), await outcome(inline.put(body, allowed)), name);
      }
      // Each harness has its own app: its id aside, the entries are the same bytes.
      assert.deepEqual(
        pooled.log.entries().map((e) => e.json.replaceAll(pooled.appId, 'APP')),
        inline.log.entries().map((e) => e.json.replaceAll(inline.appId, 'APP')),
        'the same ingest-log entries',
      );
      assert.ok(inline.log.entries().length >= 3);
    } finally {
      await inline.close();
      await pooled.close();
    }
  });
});

test('the real server with 2 prepare threads: concurrent SDK clients sending duplicate events, each stored once and in order per endpoint', async () => {
  const server = await startTestServer({ config: { ingestThreads: 2 } });
  try {
    const client = server.pinpoint;
    const app = (await client.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'parallel' } }))).ApplicationResponse!.Id!;
    const endpoints = ['ep-a', 'ep-b', 'ep-c'];
    // Each endpoint's requests go one after another (a client awaiting its 202), the endpoints in parallel,
    // and every request is sent twice at once (a retry racing its original on the other thread).
    const perEndpoint = async (ep: string) => {
      const order: string[] = [];
      for (let r = 0; r < 10; r++) {
        const ids = Array.from({ length: 10 }, (_, i) => `${ep}-${r}-${i}`);
        order.push(...ids);
        const Events = Object.fromEntries(ids.map((id) => [id, { EventType: 'seq', Timestamp: new Date().toISOString() }]));
        const send = () => client.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: { [ep]: { Endpoint: {}, Events } } } }));
        for (const res of await Promise.all([send(), send()])) {
          for (const id of ids) assert.equal(res.EventsResponse!.Results![ep].EventsItemResponse![id].Message, 'Accepted');
        }
      }
      return order;
    };
    const expected = await Promise.all(endpoints.map(perEndpoint));
    const seen = new Map<string, string[]>(endpoints.map((e) => [e, []]));
    const log = server.server.ingestLog;
    let offset = log.startOffset();
    while (offset < log.endOffset()) {
      const { records, nextOffset } = await log.read(offset, { maxRecords: 1000 });
      for (const r of records) {
        const e = decodeIngestEntry(r.payload);
        seen.get(e.endpointId)!.push(e.eventId);
      }
      offset = nextOffset;
    }
    endpoints.forEach((ep, i) => assert.deepEqual(seen.get(ep), expected[i], `${ep}: every event once, in order`));
  } finally {
    await server.close();
  }
});

describe('the prepare pool when a thread fails (PreparePool)', () => {
  const faulty = new URL('./helpers/prepare-worker-faults.js', import.meta.url);
  const job = (appId: string) => ({ appId, body: Buffer.from(batch('d1', ['e1'])), labels: { 'application-id': appId }, arrivalMs: 0 });

  test('a thread that dies: its requests answer a retryable 500, a new thread takes the next ones', async () => {
    const pool = new PreparePool(1, { workerUrl: faulty });
    try {
      const failed = await pool.run(job('exit'));
      assert.deepEqual({ ...failed, message: undefined }, { ok: false, code: 'InternalServerErrorException', status: 500, message: undefined });
      const next = await pool.run(job('app1'));
      assert.equal(next.ok, true);
      assert.equal(pool.pending, 0);
    } finally {
      await pool.close();
    }
  });

  test('a thread that does not answer within the timeout is replaced; its requests answer a retryable 500 naming the wait', async () => {
    // The timeout also covers the replacement thread's start (the second job waits for it), which
    // took more than 200 ms on a busy machine: long enough for that, short for the test.
    const pool = new PreparePool(1, { workerUrl: faulty, timeoutMs: 3000 });
    try {
      const stuck = await pool.run(job('hang'));
      assert.equal(stuck.ok, false);
      assert.equal((stuck as { status: number }).status, 500);
      assert.match((stuck as { message: string }).message, /longer than 3000 ms; retry/);
      assert.equal((await pool.run(job('app1'))).ok, true);
    } finally {
      await pool.close();
    }
  });

  test(`the thread count is bounded: 1 to MAX_PREPARE_THREADS (${MAX_PREPARE_THREADS})`, () => {
    assert.throws(() => new PreparePool(0));
    assert.throws(() => new PreparePool(MAX_PREPARE_THREADS + 1));
  });

  test("a body that is a view into a shared buffer (Node's pool for small Buffers) is copied, not transferred: the buffer under it stays usable", async () => {
    const pool = new PreparePool(1);
    try {
      const neighbour = Buffer.from('neighbour');
      const body = Buffer.from(batch('d1', ['e1']));
      assert.equal(body.buffer, neighbour.buffer, 'both small Buffers share the pool');
      assert.equal((await pool.run({ appId: 'a1', body, labels: { 'application-id': 'a1' }, arrivalMs: 0 })).ok, true);
      assert.equal(neighbour.toString(), 'neighbour');
      assert.equal(JSON.parse(body.toString()).BatchItem.d1.Events.e1.EventType, 'e1');
      // A body that owns its memory is transferred: the caller's copy is gone.
      const own = Buffer.allocUnsafeSlow(body.length);
      body.copy(own);
      assert.equal((await pool.run({ appId: 'a1', body: own, labels: { 'application-id': 'a1' }, arrivalMs: 0 })).ok, true);
      assert.equal(own.byteLength, 0);
    } finally {
      await pool.close();
    }
  });

  test('after close, requests answer a retryable 500 instead of waiting', async () => {
    const pool = new PreparePool(1);
    await pool.close();
    const r = await pool.run(job('app1'));
    assert.equal(r.ok, false);
    assert.equal((r as { status: number }).status, 500);
  });
});
