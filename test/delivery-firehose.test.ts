// Firehose delivery: the FirehoseDestination (built by destinationFor, with the SDK's real client
// and HTTP/1.1 handler) against a tiny real HTTP server in this file that speaks just enough of
// Firehose's JSON 1.1 protocol (PutRecordBatch, DescribeDeliveryStream; no SigV4 check) to capture
// what the SDK sends, driven by a DeliveryWorker over a SegmentLog ingest log. Asserts the stream
// name, newline-terminated Data, the 500-record / 4 MiB call limits, the 1,000 KiB record limit,
// per-record failures (only the refused record is resent) and whole-call failures (resent whole).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../src/clock.js';
import { MemoryCheckpoint } from '../src/consumer/checkpoint.js';
import { destinationFor } from '../src/delivery/kinesis-destination.js';
import { DeliveryWorker, type RejectedEntry } from '../src/delivery/worker.js';
import { SegmentLog } from '../src/log/segment-log.js';
import { encodeIngestEntry } from '../src/pinpoint/ingest-record.js';

const A = 'appA0000000000000000000000000000';
const B = 'appB0000000000000000000000000000';
const NAME = 'pinpoint-events';
const ARN = `arn:aws:firehose:us-east-1:123456789012:deliverystream/${NAME}`;
const FAIL_ONCE = '"fail-once"';

interface Call {
  target: string;
  body: any;
  /** Decoded Data of each record (PutRecordBatch). */
  records: Buffer[];
  socket: object;
  failed: number;
}

/** Just enough Firehose: answers PutRecordBatch and DescribeDeliveryStream, remembers every call. */
async function fakeFirehose() {
  const calls: Call[] = [];
  const accepted: Buffer[] = [];
  let failedOnce = false;
  let failNextCalls = 0;
  const answer = (res: ServerResponse, status: number, body: object) => {
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID() });
    res.end(JSON.stringify(body));
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      const call: Call = { target, body, records: [], socket: req.socket, failed: 0 };
      calls.push(call);
      if (target === 'Firehose_20150804.DescribeDeliveryStream') {
        return answer(res, 200, {
          DeliveryStreamDescription: {
            DeliveryStreamName: body.DeliveryStreamName,
            DeliveryStreamARN: ARN,
            DeliveryStreamStatus: 'ACTIVE',
            DeliveryStreamType: 'DirectPut',
            VersionId: '1',
            CreateTimestamp: Date.now() / 1000,
            Destinations: [],
            HasMoreDestinations: false,
          },
        });
      }
      if (target !== 'Firehose_20150804.PutRecordBatch') return answer(res, 400, { __type: 'UnknownOperationException' });
      call.records = (body.Records as Array<{ Data: string }>).map((r) => Buffer.from(r.Data, 'base64'));
      if (failNextCalls > 0) {
        failNextCalls--;
        call.failed = call.records.length;
        return answer(res, 503, { __type: 'ServiceUnavailableException', message: 'Slow down.' });
      }
      const responses = call.records.map((data) => {
        if (!failedOnce && data.includes(FAIL_ONCE)) {
          failedOnce = true;
          call.failed++;
          return { ErrorCode: 'ServiceUnavailableException', ErrorMessage: 'Slow down.' };
        }
        accepted.push(data);
        return { RecordId: randomUUID() };
      });
      answer(res, 200, { FailedPutCount: call.failed, Encrypted: false, RequestResponses: responses });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url,
    calls,
    accepted,
    failNext(n: number) {
      failNextCalls = n;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function recordJson(endpointId: string, seq: number, bytes?: number, marker = ''): string {
  const head = `{"event_type":"_custom.test","client":{"client_id":"${endpointId}"},"seq":${seq},"m":"${marker.replaceAll('"', '')}","pad":"`;
  const tail = '"}';
  const pad = bytes === undefined ? 0 : bytes - head.length - tail.length;
  assert.ok(pad >= 0);
  return head + 'x'.repeat(pad) + tail;
}

async function waitUntil(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('Firehose: PutRecordBatch calls carry the stream name, newline-terminated records, ≤500 records and ≤4 MiB; refused records alone are resent', { timeout: 25_000 }, async (t) => {
  const fake = await fakeFirehose();
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-dlog-'));
  const log = await SegmentLog.open(dir, { fsync: false });
  const dest = destinationFor(ARN, { endpoint: fake.url, region: 'us-east-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' } });
  const rejected: RejectedEntry[] = [];
  const checkpoint = new MemoryCheckpoint();
  const w = new DeliveryWorker({
    appId: A,
    log,
    destination: dest,
    checkpoint,
    clock: systemClock,
    backoff: { baseMs: 10, maxMs: 100 },
    onRejected: (e) => rejected.push(e),
  });
  t.after(async () => {
    await w.stop();
    dest.close();
    await log.close();
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  assert.deepEqual(await dest.describe(), { active: true, status: 'ACTIVE' });
  assert.equal(fake.calls[0].body.DeliveryStreamName, NAME);

  // 1,200 small records of A among B's; 20 of 900,000 bytes (4 MiB binds at 4 per call); one at
  // exactly 1,000 KiB with its newline (sent) and one a byte over (rejected); one refused once.
  const expected: string[] = [];
  const entries: string[] = [];
  const add = (app: string, json: string, eventId: string, endpointId = 'ep-1') => {
    entries.push(encodeIngestEntry(app, endpointId, eventId, json));
    if (app === A) expected.push(json);
  };
  for (let i = 0; i < 1200; i++) {
    add(A, recordJson(`ep-${i % 4}`, i), `ev-${i}`, `ep-${i % 4}`);
    if (i % 4 === 0) add(B, recordJson('b', i), `b-${i}`);
    if (i === 700) add(A, recordJson('ep-1', 99_999, undefined, FAIL_ONCE), 'ev-fail');
  }
  for (let i = 0; i < 20; i++) add(A, recordJson('ep-2', 10_000 + i, 900_000), `big-${i}`);
  add(A, recordJson('ep-3', 20_000, 1_024_000 - 1), 'ev-at-limit');
  const overOffset = entries.length;
  entries.push(encodeIngestEntry(A, 'ep-3', 'ev-over', recordJson('ep-3', 20_001, 1_024_000)));
  add(A, recordJson('ep-3', 20_002), 'ev-after');
  await log.append(entries.slice(0, 1000));
  await log.append(entries.slice(1000));

  w.start();
  await waitUntil(() => w.health().checkpoint === log.endOffset(), 'the worker to catch up');
  const h = w.health();

  const puts = fake.calls.filter((c) => c.target === 'Firehose_20150804.PutRecordBatch');
  for (const c of puts) {
    assert.equal(c.body.DeliveryStreamName, NAME);
    assert.ok(c.records.length >= 1 && c.records.length <= 500, `${c.records.length} records in one call`);
    const bytes = c.records.reduce((n, r) => n + r.length, 0);
    assert.ok(bytes <= 4 * 1024 * 1024, `${bytes} bytes in one call`);
    for (const r of c.records) {
      assert.ok(r.length <= 1_024_000, `a record of ${r.length} bytes`);
      assert.equal(r[r.length - 1], 0x0a, 'newline-terminated');
      assert.equal(r.indexOf(0x0a), r.length - 1, 'exactly one newline, at the end');
    }
  }
  // Concatenated, the accepted objects split into one record per line (what S3 would hold).
  const lines = Buffer.concat(fake.accepted).toString('utf8').split('\n');
  assert.equal(lines.pop(), '');
  assert.deepEqual([...lines].sort(), [...expected].sort(), 'every record of app A exactly once, none of app B');
  assert.ok(puts.some((c) => c.records.some((r) => r.length === 1_024_000)), 'the record at exactly 1,000 KiB went through');

  // The refused record, and only it, went out again in the next call.
  const i = puts.findIndex((c) => c.failed === 1);
  assert.ok(i >= 0 && puts[i].records.length > 1);
  assert.equal(puts[i + 1].records.length, 1);
  assert.ok(puts[i + 1].records[0].includes(FAIL_ONCE));
  assert.equal(h.retries, 1);

  assert.equal(rejected.length, 1);
  assert.equal(rejected[0].offset, overOffset);
  assert.equal(rejected[0].eventId, 'ev-over');
  assert.match(rejected[0].reason, /1024001 bytes, over the 1024000-byte per-record Firehose PutRecordBatch limit/);
  assert.equal(h.delivered, expected.length);
  assert.equal(h.rejected, 1);
  // HTTP/1.1 keep-alive: the calls share connections.
  const sockets = new Set(fake.calls.map((c) => c.socket));
  assert.ok(sockets.size < puts.length, `${sockets.size} connections for ${puts.length} calls`);
  t.diagnostic(`PutRecordBatch calls: ${puts.length} over ${sockets.size} connection(s); records per call: ${puts.map((c) => c.records.length).join(' ')}`);

  // A whole call refused (HTTP 503): the same batch is sent again, whole.
  fake.failNext(1);
  const before = puts.length;
  const more = Array.from({ length: 30 }, (_, k) => recordJson('ep-9', 30_000 + k));
  await log.append(more.map((j, k) => encodeIngestEntry(A, 'ep-9', `more-${k}`, j)));
  await waitUntil(() => w.health().checkpoint === log.endOffset(), 'the batch after the 503');
  const after = fake.calls.filter((c) => c.target === 'Firehose_20150804.PutRecordBatch').slice(before);
  assert.equal(after.length, 2);
  assert.equal(after[0].failed, 30);
  assert.deepEqual(after[1].records, after[0].records);
  const h2 = w.health();
  assert.equal(h2.retries, 2);
  assert.match(h2.lastError!.message, /^firehose arn:aws:firehose:us-east-1:123456789012:deliverystream\/pinpoint-events: ServiceUnavailableException: Slow down\./);
  assert.equal(h2.state, 'running');
});
