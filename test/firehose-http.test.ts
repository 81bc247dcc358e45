// The HTTP endpoint destination against a real node:http endpoint on 127.0.0.1, driven the way
// the deliverer drives it (the same batch again with attempt+1 until it is acknowledged): nothing
// lost, one request id across retries, the exact protocol-1.0 headers, a gzip body that decodes,
// acknowledgements that are not acknowledgements (wrong requestId, non-JSON, non-200), timeouts and
// refused connections as outcomes, and the S3 backup (FolderStore) on abandon and in AllData mode.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { ManualClock } from '../src/clock.js';
import { DestinationConfigError, type DeliveryBatch, DestinationContext, FirehoseRecord, StreamInfo } from '../src/firehose/destination.js';
import type { ObjectStore } from '../src/firehose/objects/object-store.js';
import { FolderStore } from '../src/firehose/objects/folder.js';
import { DEFAULT_HTTP_RETRY_S, HTTP_BUFFER_SIZE_MB } from '../src/firehose/limits.js';
import {
  HTTP_ENDPOINT_TIMEOUT_MS,
  HTTP_ERROR_BODY_EXCERPT_CHARS,
  HTTP_ERROR_OUTPUT_TYPE,
  HTTP_MAX_RESPONSE_BYTES,
  HttpEndpointDestination,
  HttpErrorCode,
} from '../src/firehose/destinations/http.js';

const STREAM: StreamInfo = { name: 'pinpoint-events', arn: 'arn:aws:firehose:us-east-1:123456789012:deliverystream/pinpoint-events', version: 1 };
const BACKUP_ARN = 'arn:aws:s3:::http-backup';
const MAX_ATTEMPTS = 10;

interface Received {
  headers: IncomingMessage['headers'];
  raw: Buffer;
  /** The JSON body after undoing Content-Encoding. */
  body: { requestId: string; timestamp: number; records: { data: string }[] };
}

type Reply = (req: Received, res: ServerResponse, index: number) => void;

/** A real endpoint: remembers every request and answers through `reply`. */
async function endpoint(reply: Reply): Promise<{ url: string; received: Received[]; close(): Promise<void>; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const plain = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
      const r: Received = { headers: req.headers, raw, body: JSON.parse(plain.toString('utf8')) };
      received.push(r);
      reply(r, res, received.length - 1);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/firehose/ingest?src=test`,
    received,
    server,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const acknowledge: Reply = (req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ requestId: req.body.requestId, timestamp: Date.now() }));
};

async function context(clock = new ManualClock(Date.UTC(2026, 2, 7, 13, 5, 12))) {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-http-'));
  const stores = new Map<string, ObjectStore>();
  const ctx: DestinationContext = {
    clock,
    objects: (arn) => {
      let s = stores.get(arn);
      if (!s) stores.set(arn, (s = new FolderStore(join(dir, arn.replace('arn:aws:s3:::', '')))));
      return s;
    },
  };
  return { ctx, clock, backup: ctx.objects(BACKUP_ARN, undefined), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

function config(url: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    EndpointConfiguration: { Url: url, Name: 'test endpoint' },
    S3Configuration: { RoleARN: 'arn:aws:iam::123456789012:role/firehose', BucketARN: BACKUP_ARN },
    ...extra,
  };
}

function batchOf(clock: ManualClock, datas: string[]): DeliveryBatch {
  const records: FirehoseRecord[] = datas.map((d, i) => ({ data: Buffer.from(d), arrivalMs: clock.now() + i, recordId: `r${i}` }));
  return { id: randomUUID(), stream: STREAM, records, firstArrivalMs: clock.now(), attempt: 1 };
}

/** What the deliverer does: the same batch again, attempt+1, until it is acknowledged. */
async function deliverUntilOk(dest: HttpEndpointDestination, batch: DeliveryBatch, clock: ManualClock) {
  const errors: string[] = [];
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const outcome = await dest.deliver({ ...batch, attempt });
    if (outcome.ok) return { attempts: attempt, errors };
    errors.push(outcome.error);
    clock.advance(1000);
  }
  throw new Error(`not acknowledged after ${MAX_ATTEMPTS} attempts: ${errors.at(-1)}`);
}

const events = ['{"event_type":"_session.start","n":1}\n', '{"event_type":"pageView","n":2}\n', '{"event_type":"_session.stop","n":3}\n'];

test('a failing endpoint gets the same batch and request id until it answers 200; gzip body and headers exact', async (t) => {
  const FAILURES = 2;
  const ep = await endpoint((req, res, index) => {
    if (index < FAILURES) {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ requestId: req.body.requestId, timestamp: Date.now(), errorMessage: `busy #${index}` }));
    } else acknowledge(req, res, index);
  });
  const { ctx, clock, cleanup } = await context();
  t.after(async () => {
    await ep.close();
    await cleanup();
  });
  const dest = new HttpEndpointDestination(
    config(ep.url, {
      EndpointConfiguration: { Url: ep.url, AccessKey: 'k3y:with spaces/and=symbols' },
      RequestConfiguration: {
        ContentEncoding: 'GZIP',
        CommonAttributes: [
          { AttributeName: 'env', AttributeValue: 'test' },
          { AttributeName: 'team', AttributeValue: 'analytics' },
        ],
      },
    }),
    () => STREAM,
    ctx,
  );
  t.after(() => dest.close());
  const batch = batchOf(clock, events);
  const { attempts, errors } = await deliverUntilOk(dest, batch, clock);

  assert.equal(attempts, FAILURES + 1);
  assert.equal(ep.received.length, FAILURES + 1);
  for (const [i, e] of errors.entries()) {
    assert.ok(e.startsWith(`${HttpErrorCode.destination}: `), e);
    assert.match(e, /500: /);
    assert.ok(e.includes(`busy #${i}`), `error carries the endpoint's body: ${e}`);
  }
  for (const r of ep.received) {
    assert.equal(r.headers['x-amz-firehose-request-id'], batch.id);
    assert.equal(r.body.requestId, batch.id);
    assert.equal(r.headers['x-amz-firehose-protocol-version'], '1.0');
    assert.equal(r.headers['x-amz-firehose-source-arn'], STREAM.arn);
    assert.equal(r.headers['x-amz-firehose-access-key'], 'k3y:with spaces/and=symbols');
    assert.deepEqual(JSON.parse(String(r.headers['x-amz-firehose-common-attributes'])), { commonAttributes: { env: 'test', team: 'analytics' } });
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(Number(r.headers['content-length']), r.raw.length);
  }
  // Each attempt stamps its own send time from the injected clock.
  assert.deepEqual(
    ep.received.map((r) => r.body.timestamp),
    [0, 1, 2].map((i) => Date.UTC(2026, 2, 7, 13, 5, 12) + i * 1000),
  );
  const accepted = ep.received.at(-1)!.body.records.map((r) => Buffer.from(r.data, 'base64').toString('utf8'));
  assert.deepEqual(accepted, events);
});

test('without GZIP, access key or attributes: plain JSON body and none of those headers', async (t) => {
  const ep = await endpoint(acknowledge);
  const { ctx, clock, cleanup } = await context();
  t.after(async () => {
    await ep.close();
    await cleanup();
  });
  const dest = new HttpEndpointDestination(config(ep.url), () => STREAM, ctx);
  t.after(() => dest.close());
  const batch = batchOf(clock, ['binary \u0000\u00ff data', '{"a":1}']);
  assert.deepEqual(await dest.deliver(batch), { ok: true });
  const [r] = ep.received;
  assert.equal(r.headers['content-encoding'], undefined);
  assert.equal(r.headers['x-amz-firehose-access-key'], undefined);
  assert.equal(r.headers['x-amz-firehose-common-attributes'], undefined);
  assert.deepEqual(
    r.body.records.map((x) => Buffer.from(x.data, 'base64')),
    batch.records.map((x) => x.data),
  );
});

test('only a 200 echoing our requestId in JSON acknowledges the batch', async (t) => {
  const answers: ((req: Received, res: ServerResponse) => void)[] = [
    (req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ requestId: randomUUID(), timestamp: 1 })),
    (_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>OK</html>'),
    (_req, res) => res.writeHead(200).end(),
    (req, res) => res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ requestId: req.body.requestId, timestamp: 1 })),
    (req, res) => res.writeHead(413).end(`{"requestId":"${req.body.requestId}","errorMessage":"${'x'.repeat(2 * HTTP_ERROR_BODY_EXCERPT_CHARS)}"}`),
    (req, res) => acknowledge(req, res, 0),
  ];
  const ep = await endpoint((req, res, index) => answers[index](req, res));
  const { ctx, clock, cleanup } = await context();
  t.after(async () => {
    await ep.close();
    await cleanup();
  });
  const dest = new HttpEndpointDestination(config(ep.url), () => STREAM, ctx);
  t.after(() => dest.close());
  const batch = batchOf(clock, events);
  const outcomes = [];
  for (let attempt = 1; attempt <= answers.length; attempt++) outcomes.push(await dest.deliver({ ...batch, attempt }));

  const errors = outcomes.slice(0, -1).map((o) => (o.ok ? '' : o.error));
  assert.match(errors[0], new RegExp(`^${HttpErrorCode.invalidResponse}: 200 whose requestId "[0-9a-f-]{36}" is not ${batch.id}`));
  assert.match(errors[1], new RegExp(`^${HttpErrorCode.invalidResponse}: 200 with a body that is not JSON: <html>OK</html>`));
  assert.match(errors[2], new RegExp(`^${HttpErrorCode.invalidResponse}: 200 with a body that is not JSON`));
  assert.match(errors[3], new RegExp(`^${HttpErrorCode.destination}: .* 201: `));
  assert.match(errors[4], new RegExp(`^${HttpErrorCode.destination}: .* 413: `));
  assert.ok(errors[4].length < HTTP_ERROR_BODY_EXCERPT_CHARS + 200, 'the body in the message is truncated');
  assert.ok(errors[4].endsWith('…'));
  assert.deepEqual(outcomes.at(-1), { ok: true });
  assert.ok(ep.received.every((r) => r.body.requestId === batch.id));
});

test('an answer over HTTP_MAX_RESPONSE_BYTES is not read whole and counts as a failure', async (t) => {
  const ep = await endpoint((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(Buffer.alloc(HTTP_MAX_RESPONSE_BYTES + 1, 0x20));
  });
  const { ctx, clock, cleanup } = await context();
  t.after(async () => {
    await ep.close();
    await cleanup();
  });
  const dest = new HttpEndpointDestination(config(ep.url), () => STREAM, ctx);
  t.after(() => dest.close());
  const outcome = await dest.deliver(batchOf(clock, events));
  assert.equal(outcome.ok, false);
  assert.match(!outcome.ok ? outcome.error : '', new RegExp(`^${HttpErrorCode.invalidResponse}: 200: response larger than ${HTTP_MAX_RESPONSE_BYTES} bytes`));
});

test('no answer within the timeout, or nobody listening: failed outcomes, never a throw', async (t) => {
  const ep = await endpoint(() => {}); // reads the request, never answers
  const { ctx, clock, cleanup } = await context();
  t.after(async () => {
    await ep.close();
    await cleanup();
  });
  const slow = new HttpEndpointDestination(config(ep.url), () => STREAM, ctx, { timeoutMs: 200 });
  t.after(() => slow.close());
  const timedOut = await slow.deliver(batchOf(clock, events));
  assert.equal(timedOut.ok, false);
  assert.match(!timedOut.ok ? timedOut.error : '', new RegExp(`^${HttpErrorCode.timeout}: no response from http://127.0.0.1:\\d+ within 200 ms`));

  // A port that was just free: connection refused.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const gone = new HttpEndpointDestination(config(`http://127.0.0.1:${closedPort}/`), () => STREAM, ctx);
  t.after(() => gone.close());
  const refused = await gone.deliver(batchOf(clock, events));
  assert.equal(refused.ok, false);
  assert.match(!refused.ok ? refused.error : '', new RegExp(`^${HttpErrorCode.connection}: could not reach .*ECONNREFUSED`));
});

test('abandon writes the batch to the S3 backup as http-endpoint-failed error records', async (t) => {
  const ep = await endpoint((_req, res) => res.writeHead(503).end('down for maintenance'));
  const { ctx, clock, backup, cleanup } = await context();
  t.after(async () => {
    await ep.close();
    await cleanup();
  });
  const dest = new HttpEndpointDestination(config(ep.url), () => STREAM, ctx);
  t.after(() => dest.close());
  const batch = batchOf(clock, events);
  const failed = await dest.deliver(batch);
  assert.equal(failed.ok, false);
  assert.deepEqual(await backup.list(''), [], 'FailedDataOnly writes nothing while retrying');

  assert.deepEqual(await dest.abandon({ ...batch, attempt: 2 }, failed.ok ? '' : failed.error), { ok: true });
  const keys = await backup.list('');
  assert.ok(keys.length >= 1, 'the failed batch is in the backup bucket');
  assert.ok(
    keys.every((k) => k.includes(`${HTTP_ERROR_OUTPUT_TYPE}/`)),
    `keys under ${HTTP_ERROR_OUTPUT_TYPE}/: ${keys.join(', ')}`,
  );
  const written = (await Promise.all(keys.map((k) => backup.get(k)))).map((b) => b.toString('utf8')).join('\n');
  for (const r of batch.records) assert.ok(written.includes(r.data.toString('base64')), `record ${r.recordId} is recoverable from the backup`);
  assert.ok(written.includes(HttpErrorCode.destination), 'the error code is recorded');
  assert.ok(written.includes('down for maintenance'), 'the last error message is recorded');
});

test('AllData also writes every acknowledged batch to the backup, without posting it twice', async (t) => {
  const ep = await endpoint(acknowledge);
  const { ctx, clock, backup, cleanup } = await context();
  t.after(async () => {
    await ep.close();
    await cleanup();
  });
  const dest = new HttpEndpointDestination(config(ep.url, { S3BackupMode: 'AllData' }), () => STREAM, ctx);
  t.after(() => dest.close());
  const batch = batchOf(clock, events);
  assert.deepEqual(await dest.deliver(batch), { ok: true });
  const keys = await backup.list('');
  assert.equal(keys.length, 1);
  assert.equal((await backup.get(keys[0])).toString('utf8'), events.join(''));
  assert.equal(ep.received.length, 1);
});

test('limits: buffering and retry defaults, 3-minute timeout (ranges are the API\'s, see firehose-api)', async (t) => {
  const { ctx, cleanup } = await context();
  t.after(cleanup);
  const url = 'https://example.invalid/';
  const d = new HttpEndpointDestination(config(url), () => STREAM, ctx);
  assert.deepEqual(d.buffering, { sizeBytes: 5 * 1024 * 1024, intervalMs: 300_000 });
  assert.equal(d.retryDurationMs, DEFAULT_HTTP_RETRY_S * 1000);
  assert.equal(DEFAULT_HTTP_RETRY_S, 300);
  assert.equal(HTTP_ENDPOINT_TIMEOUT_MS, 180_000);
  const max = new HttpEndpointDestination(config(url, { BufferingHints: { SizeInMBs: HTTP_BUFFER_SIZE_MB.max, IntervalInSeconds: 0 }, RetryOptions: { DurationInSeconds: 0 } }), () => STREAM, ctx);
  assert.deepEqual(max.buffering, { sizeBytes: 64 * 1024 * 1024, intervalMs: 0 });
  assert.equal(max.retryDurationMs, 0);
  for (const bad of [{ EndpointConfiguration: { Url: 'ftp://example.invalid/' } }]) {
    assert.throws(() => new HttpEndpointDestination(config(url, bad), () => STREAM, ctx), DestinationConfigError, JSON.stringify(bad));
  }
  await Promise.all([d.close(), max.close()]);
});
