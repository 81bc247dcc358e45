// Issue 12, defects 4 and 11c, in-process: the front door's time, size, memory and connection
// bounds, each on its own server with short test settings. Every refusal whose protocol is known
// is that protocol's AWS error shape (x-amzn-ErrorType + {"Message"} for restJson1, {"__type"} for
// JSON 1.1, CBOR for CBOR 1.1, <ErrorResponse> for Query); before a protocol is known (headers too
// slow or too large) the answer is a plain JSON error with x-amzn-ErrorType. The same bounds under
// load, with the server's own RSS measured, are in resources.test.ts.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { decode as cborDecode } from 'cborg';
import { CreateAppCommand, GetAppsCommand, PutEventsCommand } from '@aws-sdk/client-pinpoint';
import { CreateStreamCommand, PutRecordsCommand, type PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import { CreateDeliveryStreamCommand, PutRecordBatchCommand } from '@aws-sdk/client-firehose';
import { startTestServer, type TestServer } from './helpers/server.js';
import { kinesisClient } from './helpers/kinesis.js';
import { createDeliveryRole, firehoseClient, s3Destination } from './helpers/firehose.js';
import { RawConnection, signedHead, until, type RawResponse } from './helpers/raw.js';
import { MAX_PUT_EVENTS_REQUEST_BYTES, MAX_REQUEST_BYTES } from '../src/pinpoint/limits.js';
import { MAX_JSON_REQUEST_BYTES as KINESIS_MAX, MAX_PARTITION_KEY_LENGTH, MAX_PUT_RECORDS_BYTES, MAX_PUT_RECORDS_COUNT } from '../src/kinesis/limits.js';
import { MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_JSON_REQUEST_BYTES as FIREHOSE_MAX } from '../src/firehose/limits.js';
import { MAX_QUERY_REQUEST_BYTES } from '../src/http/query.js';
import { MAX_HEADER_BYTES, REFUSED_BODY_DRAIN_BYTES } from '../src/http/limits.js';
import { MIN_MAX_UNVERIFIED_BODY_BYTES, OPERATOR_RESERVE_CONNECTIONS } from '../src/config/config.js';

const METRICS_TOKEN = 'http-limits-metrics-token';

function assertRest(r: RawResponse, status: number, type: string, message?: RegExp) {
  assert.equal(r.status, status, r.body.toString());
  assert.equal(r.headers['x-amzn-errortype'], type);
  const body = JSON.parse(r.body.toString());
  // Authentication failures come from the API-Gateway front as {"message"}; Pinpoint's own errors as {"Message"}.
  const text = r.status === 403 ? body.message : body.Message;
  assert.equal(typeof text, 'string');
  if (message) assert.match(text, message);
}

function assertJson(r: RawResponse, status: number, type: string, message?: RegExp) {
  assert.equal(r.status, status, r.body.toString());
  assert.match(r.headers['content-type'] ?? '', /^application\/x-amz-json-1\.1/);
  const body = JSON.parse(r.body.toString());
  assert.equal(body.__type, type);
  if (message) assert.match(body.message, message);
}

function assertQuery(r: RawResponse, status: number, code: string) {
  assert.equal(r.status, status, r.body.toString());
  assert.match(r.body.toString(), new RegExp(`<ErrorResponse xmlns="[^"]+"><Error><Type>(Sender|Receiver)</Type><Code>${code}</Code>`));
}

/** Errors before any protocol is known: status, x-amzn-ErrorType and a JSON {__type, message}. */
function assertPlain(r: RawResponse, status: number, type: string) {
  assert.equal(r.status, status, r.body.toString());
  assert.equal(r.headers['x-amzn-errortype'], type);
  assert.equal(JSON.parse(r.body.toString()).__type, type);
}

const KINESIS = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Kinesis_20131202.PutRecords' };
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe('time bounds (headers 600 ms, body 1 s, keep-alive 600 ms)', () => {
  let t: TestServer;
  let app: string;
  before(async () => {
    t = await startTestServer({ config: { headersTimeoutMs: 600, bodyTimeoutMs: 1000, keepAliveTimeoutMs: 600 } });
    app = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'limits' } }))).ApplicationResponse!.Id!;
  });
  after(() => t.close());

  test('defect 11c: a first read of the single byte P, then the rest of an HTTP/1.1 POST, is answered', async () => {
    const c = await RawConnection.open(t.server.url);
    try {
      await c.write('P');
      // Long enough for the server to read the lone byte on its own (this is not a timing assertion:
      // a server that reads both writes together passes either way).
      await new Promise((r) => setTimeout(r, 150));
      await c.write('OST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n');
      const r = await c.response();
      assert.equal(r.status, 403, 'POST /health is no route, and HTTP/1.1 answers it');
      assert.equal(r.headers['x-amzn-errortype'], 'MissingAuthenticationTokenException');
      await c.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal((await c.response()).status, 200);
    } finally {
      c.destroy();
    }
  });

  test('the HTTP/2 preface split after "PRI *" is still HTTP/2: the server sends its SETTINGS', async () => {
    const c = await RawConnection.open(t.server.url);
    try {
      await c.write('PRI *');
      await new Promise((r) => setTimeout(r, 150));
      await c.write(Buffer.concat([Buffer.from(' HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
      assert.ok(await until(() => c.received().length >= 9, 5_000), 'a frame arrives');
      assert.equal(c.received()[3], 4, 'the first frame is SETTINGS');
    } finally {
      c.destroy();
    }
  });

  test('a silent connection, and one that sent only "P", are closed once the header time is up', async () => {
    const silent = await RawConnection.open(t.server.url);
    const p = await RawConnection.open(t.server.url);
    await p.write('P');
    assert.ok(await silent.waitClosed(10_000), 'silent connection closed');
    assert.ok(await p.waitClosed(10_000), '"P" connection closed');
  });

  test('headers that never end: 408 RequestTimeoutException, then the connection closes', async () => {
    const c = await RawConnection.open(t.server.url);
    await c.write('GET /v1/apps HTTP/1.1\r\nHost: x\r\n');
    const r = await c.response(10_000);
    assertPlain(r, 408, 'RequestTimeoutException');
    assert.ok(await c.waitClosed(5_000));
  });

  test('an idle keep-alive connection is closed; so is an idle HTTP/2 session, and one that never opens a stream', async () => {
    const c = await RawConnection.open(t.server.url);
    await c.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal((await c.response()).status, 200);
    assert.ok(await c.waitClosed(10_000), 'HTTP/1.1 keep-alive connection closed');

    for (const request of [true, false]) {
      const s = http2.connect(t.server.url);
      s.on('error', () => {});
      const closed = new Promise<void>((r) => s.on('close', () => r()));
      if (request) {
        const r = s.request({ ':path': '/health' });
        r.resume();
        await new Promise((res) => r.on('close', res));
      }
      const done = await Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
      assert.ok(done, `HTTP/2 session ${request ? 'after a stream' : 'without streams'} closed by the server`);
    }
  });

  test('a body that stops half way: 408 in the protocol shape (restJson1, JSON 1.1, Query), then close', async () => {
    const cases: Array<[Parameters<typeof signedHead>[1], (r: RawResponse) => void]> = [
      [{ path: `/v1/apps/${app}/events`, service: 'mobiletargeting', credentials: t.server.admin }, (r) => assertRest(r, 408, 'RequestTimeoutException', /did not arrive within 1000 ms/)],
      [{ path: '/', service: 'kinesis', headers: KINESIS, credentials: t.server.admin }, (r) => assertJson(r, 408, 'RequestTimeoutException')],
      [{ path: '/', service: 'iam', headers: FORM, credentials: t.server.admin }, (r) => assertQuery(r, 408, 'RequestTimeout')],
    ];
    await Promise.all(
      cases.map(async ([head, check]) => {
        const c = await RawConnection.open(t.server.url);
        await c.write((await signedHead(t.server.url, { ...head, contentLength: 1000 })) + '{"BatchItem":');
        check(await c.response(10_000));
        assert.ok(await c.waitClosed(5_000), 'closed after the 408');
      }),
    );
    assert.equal(t.server.httpStats().unverifiedBodyBytes, 0, 'the partial bodies are released');
  });

  test('the SDK still works against these settings', async () => {
    const out = await t.pinpoint.send(new GetAppsCommand({}));
    assert.equal(out.$metadata.httpStatusCode, 200);
  });
});

describe('size bounds: a declared body over the protocol limit is refused before it is sent', () => {
  let t: TestServer;
  let app: string;
  before(async () => {
    t = await startTestServer();
    app = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'sizes' } }))).ApplicationResponse!.Id!;
  });
  after(() => t.close());

  /** Sends only the head, declaring `length` body bytes; the answer must come without any of them. */
  async function headOnly(o: Parameters<typeof signedHead>[1], length: number): Promise<RawResponse> {
    const c = await RawConnection.open(t.server.url);
    try {
      await c.write(o.credentials.accessKeyId === '-' ? unsignedHead(o, length) : await signedHead(t.server.url, { ...o, contentLength: length }));
      return await c.response(10_000);
    } finally {
      c.destroy();
    }
  }
  const unsignedHead = (o: Parameters<typeof signedHead>[1], length: number) =>
    `POST ${o.path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${length}\r\n${Object.entries(o.headers ?? {})
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')}\r\n`;

  test(`PutEvents over ${MAX_PUT_EVENTS_REQUEST_BYTES} bytes: 413 PayloadTooLargeException (restJson1)`, async () => {
    const r = await headOnly({ path: `/v1/apps/${app}/events`, service: 'mobiletargeting', credentials: t.server.admin }, MAX_PUT_EVENTS_REQUEST_BYTES + 1);
    assertRest(r, 413, 'PayloadTooLargeException', new RegExp(`maximum is ${MAX_PUT_EVENTS_REQUEST_BYTES} bytes`));
  });

  test(`other Pinpoint operations over ${MAX_REQUEST_BYTES} bytes: 413`, async () => {
    const r = await headOnly({ path: '/v1/apps', service: 'mobiletargeting', credentials: t.server.admin }, MAX_REQUEST_BYTES + 1);
    assertRest(r, 413, 'PayloadTooLargeException', new RegExp(`maximum is ${MAX_REQUEST_BYTES} bytes`));
  });

  test(`Kinesis over ${KINESIS_MAX} bytes: 413 as {"__type"} (JSON 1.1) and in CBOR (CBOR 1.1)`, async () => {
    assertJson(await headOnly({ path: '/', service: 'kinesis', headers: KINESIS, credentials: t.server.admin }, KINESIS_MAX + 1), 413, 'PayloadTooLargeException');
    const cbor = await headOnly({ path: '/', service: 'kinesis', headers: { ...KINESIS, 'content-type': 'application/x-amz-cbor-1.1' }, credentials: t.server.admin }, KINESIS_MAX + 1);
    assert.equal(cbor.status, 413);
    assert.match(cbor.headers['content-type'], /^application\/x-amz-cbor-1\.1/);
    assert.equal((cborDecode(cbor.body) as { __type: string }).__type, 'PayloadTooLargeException');
  });

  test(`Firehose over ${FIREHOSE_MAX} bytes and IAM over ${MAX_QUERY_REQUEST_BYTES} bytes: 413 in their shapes`, async () => {
    const fh = await headOnly({ path: '/', service: 'firehose', headers: { ...KINESIS, 'x-amz-target': 'Firehose_20150804.PutRecordBatch' }, credentials: t.server.admin }, FIREHOSE_MAX + 1);
    assertJson(fh, 413, 'PayloadTooLargeException');
    assertQuery(await headOnly({ path: '/', service: 'iam', headers: FORM, credentials: t.server.admin }, MAX_QUERY_REQUEST_BYTES + 1), 413, 'PayloadTooLargeException');
  });

  test('a 1 GB body is refused from its head: unsigned 403, unknown key 403, a stale signature 400 (JSON), and too large 413', async () => {
    const GB = 1024 * 1024 * 1024;
    assertRest(await headOnly({ path: `/v1/apps/${app}/events`, service: 'mobiletargeting', credentials: { accessKeyId: '-', secretAccessKey: '-' } }, GB), 403, 'MissingAuthenticationTokenException');
    assertRest(
      await headOnly({ path: `/v1/apps/${app}/events`, service: 'mobiletargeting', credentials: { accessKeyId: 'PSAKNOSUCHKEY00000000', secretAccessKey: 'x'.repeat(40) } }, GB),
      403,
      'UnrecognizedClientException',
    );
    assertJson(
      await headOnly({ path: '/', service: 'kinesis', headers: KINESIS, credentials: t.server.admin, signingDate: new Date(Date.now() - 20 * 60_000) }, GB),
      400,
      'InvalidSignatureException',
      /Signature expired/,
    );
    assertRest(await headOnly({ path: `/v1/apps/${app}/events`, service: 'mobiletargeting', credentials: t.server.admin }, GB), 413, 'PayloadTooLargeException');
    assert.equal(t.server.httpStats().unverifiedBodyBytes, 0);
  });

  test('a refused request with a short body keeps its connection: the body is read and dropped', async () => {
    const c = await RawConnection.open(t.server.url);
    try {
      const body = Buffer.alloc(100_000, 0x20);
      await c.write(`POST /v1/apps HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
      await c.write(body);
      assert.equal((await c.response()).status, 403);
      await c.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal((await c.response()).status, 200);
      assert.ok(REFUSED_BODY_DRAIN_BYTES >= body.length);
    } finally {
      c.destroy();
    }
  });

  test('Expect: 100-continue: too large is answered without a 100; within the limit gets 100 Continue', async () => {
    const big = await RawConnection.open(t.server.url);
    await big.write(await signedHead(t.server.url, { path: '/v1/apps', service: 'mobiletargeting', credentials: t.server.admin, contentLength: MAX_REQUEST_BYTES + 1, headers: { expect: '100-continue' } }));
    assertRest(await big.response(), 413, 'PayloadTooLargeException');
    assert.ok(await big.waitClosed(5_000), 'closed: the client was never told to send the body');

    const ok = await RawConnection.open(t.server.url);
    try {
      const body = '{"Name":"after-continue"}';
      await ok.write(await signedHead(t.server.url, { path: '/v1/apps', service: 'mobiletargeting', credentials: t.server.admin, contentLength: body.length, headers: { expect: '100-continue' } }));
      assert.equal((await ok.response()).status, 100);
      await ok.write(body);
      assert.equal((await ok.response()).status, 201);
    } finally {
      ok.destroy();
    }
  });

  test(`headers over ${MAX_HEADER_BYTES} bytes: 431 on HTTP/1.1 and on HTTP/2`, async () => {
    const c = await RawConnection.open(t.server.url);
    await c.write(`GET /health HTTP/1.1\r\nHost: x\r\nx-big: ${'a'.repeat(MAX_HEADER_BYTES)}\r\n\r\n`);
    assertPlain(await c.response(), 431, 'RequestHeaderFieldsTooLarge');
    c.destroy();

    // Sent at once, before the server's SETTINGS (with the limit) reach the client.
    const s = http2.connect(t.server.url);
    s.on('error', () => {});
    try {
      const r = s.request({ ':path': '/health', 'x-big': 'a'.repeat(MAX_HEADER_BYTES) });
      const status = await new Promise<number | string>((resolve) => {
        r.on('response', (h) => resolve(Number(h[':status'])));
        r.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      });
      assert.ok(status === 431 || status === 'ERR_HTTP2_STREAM_ERROR', `HTTP/2 answer: ${status}`);
      // The session (and the server) go on.
      const again = s.request({ ':path': '/health' });
      again.resume();
      assert.equal(await new Promise((res) => again.on('response', (h) => res(h[':status']))), 200);
    } finally {
      s.destroy();
    }
  });

  test('HTTP/2 advertises the configured stream and header limits', async () => {
    const s = http2.connect(t.server.url);
    try {
      await new Promise((r) => s.once('remoteSettings', r));
      assert.equal(s.remoteSettings.maxConcurrentStreams, t.config.http2MaxConcurrentStreams);
      assert.equal(s.remoteSettings.maxHeaderListSize, MAX_HEADER_BYTES);
    } finally {
      s.destroy();
    }
  });

  test(`a full PutRecords (${MAX_PUT_RECORDS_COUNT} records, ${MAX_PUT_RECORDS_BYTES} bytes with ${MAX_PARTITION_KEY_LENGTH}-character keys) fits the JSON limit`, async () => {
    const k = kinesisClient(t.server);
    try {
      await k.send(new CreateStreamCommand({ StreamName: 'full-size', ShardCount: 1 }));
      const dataBytes = Math.floor(MAX_PUT_RECORDS_BYTES / MAX_PUT_RECORDS_COUNT) - MAX_PARTITION_KEY_LENGTH;
      const Records: PutRecordsRequestEntry[] = Array.from({ length: MAX_PUT_RECORDS_COUNT }, (_, i) => ({
        Data: Buffer.alloc(dataBytes, i),
        PartitionKey: String(i).padStart(MAX_PARTITION_KEY_LENGTH, 'k'),
        ExplicitHashKey: '340282366920938463463374607431768211455',
      }));
      const out = await k.send(new PutRecordsCommand({ StreamName: 'full-size', Records }));
      assert.equal(out.FailedRecordCount, 0);
    } finally {
      k.destroy();
    }
  });

  test(`a full PutRecordBatch (${MAX_BATCH_RECORDS} records, ${MAX_BATCH_BYTES} bytes) fits the JSON limit`, async () => {
    const fh = firehoseClient(t.server);
    try {
      await createDeliveryRole(t.server);
      await fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'full-size', ExtendedS3DestinationConfiguration: s3Destination('full-size') }));
      const Records = Array.from({ length: MAX_BATCH_RECORDS }, (_, i) => ({ Data: Buffer.alloc(Math.floor(MAX_BATCH_BYTES / MAX_BATCH_RECORDS), i) }));
      const out = await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'full-size', Records }));
      assert.equal(out.FailedPutCount, 0);
    } finally {
      fh.destroy();
    }
  });
});

describe(`memory bound: body bytes held before verification (budget ${MIN_MAX_UNVERIFIED_BODY_BYTES} bytes)`, () => {
  let t: TestServer;
  let app: string;
  before(async () => {
    t = await startTestServer({ config: { maxUnverifiedBodyBytes: MIN_MAX_UNVERIFIED_BODY_BYTES, bodyTimeoutMs: 60_000 } });
    app = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'budget' } }))).ApplicationResponse!.Id!;
  });
  after(() => t.close());

  test('unfinished uploads fill the budget; the next gets 503 ServiceUnavailableException (JSON 1.1, restJson1) and is closed', async () => {
    const PART = 3 * 1024 * 1024;
    const conns: RawConnection[] = [];
    try {
      // Five Kinesis bodies of 7 MiB declared, 3 MiB sent: 15 MiB held, under the 16 MiB budget.
      for (let i = 0; i < 5; i++) {
        const c = await RawConnection.open(t.server.url);
        conns.push(c);
        await c.write(await signedHead(t.server.url, { path: '/', service: 'kinesis', headers: KINESIS, credentials: t.server.admin, contentLength: 7 * 1024 * 1024 }));
        await c.write(Buffer.alloc(PART, 0x20));
      }
      assert.ok(await until(() => t.server.httpStats().unverifiedBodyBytes === 5 * PART, 10_000), `held ${t.server.httpStats().unverifiedBodyBytes}`);

      const kin = await RawConnection.open(t.server.url);
      conns.push(kin);
      await kin.write(await signedHead(t.server.url, { path: '/', service: 'kinesis', headers: KINESIS, credentials: t.server.admin, contentLength: 7 * 1024 * 1024 }));
      await kin.write(Buffer.alloc(PART, 0x20));
      assertJson(await kin.response(), 503, 'ServiceUnavailableException', /retry/);
      assert.ok(await kin.waitClosed(5_000));

      const pin = await RawConnection.open(t.server.url);
      conns.push(pin);
      await pin.write(await signedHead(t.server.url, { path: `/v1/apps/${app}/events`, service: 'mobiletargeting', credentials: t.server.admin, contentLength: 4_000_000 }));
      await pin.write(Buffer.alloc(PART, 0x20));
      assertRest(await pin.response(), 503, 'ServiceUnavailableException');
      assert.ok(t.server.httpStats().unverifiedBodyBytes <= MIN_MAX_UNVERIFIED_BODY_BYTES);

      // Small signed requests get through as the budget allows: an SDK call still works.
      for (const c of conns.slice(0, 1)) c.destroy();
      assert.ok(await until(() => t.server.httpStats().unverifiedBodyBytes === 4 * PART, 10_000));
      const ok = await t.pinpoint.send(
        new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: { e: { Endpoint: {}, Events: { a: { EventType: 'x', Timestamp: new Date().toISOString() } } } } } }),
      );
      assert.equal(ok.EventsResponse!.Results!.e.EventsItemResponse!.a.StatusCode, 202);
    } finally {
      for (const c of conns) c.destroy();
    }
    assert.ok(await until(() => t.server.httpStats().unverifiedBodyBytes === 0, 10_000), 'released when the clients go away');
  });
});

describe(`connection bound: maxConnections 40, ${OPERATOR_RESERVE_CONNECTIONS} kept for /health and /metrics`, () => {
  let t: TestServer;
  let app: string;
  const MAX = 40;
  before(async () => {
    t = await startTestServer({ config: { maxConnections: MAX, metricsToken: METRICS_TOKEN, headersTimeoutMs: 60_000, bodyTimeoutMs: 60_000 } });
    app = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'conns' } }))).ApplicationResponse!.Id!;
    // The SDK's own connection goes back to idle: it may be pushed out like any other.
  });
  after(() => t.close());

  test('at the cap, a new connection pushes out the one idle longest; /health and PutEvents still work', async () => {
    const silent: RawConnection[] = [];
    try {
      for (let i = 0; i < MAX; i++) silent.push(await RawConnection.open(t.server.url));
      assert.ok(await until(() => t.server.httpStats().connections === MAX, 10_000), `${t.server.httpStats().connections} connections`);
      const h = await fetch(`${t.server.url}/health`);
      assert.equal(h.status, 200);
      const ok = await t.pinpoint.send(
        new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: { e: { Endpoint: {}, Events: { a: { EventType: 'x', Timestamp: new Date().toISOString() } } } } } }),
      );
      assert.equal(ok.$metadata.httpStatusCode, 202);
      assert.ok(silent[0].closed && silent[1].closed, 'the oldest silent connections were closed');
      assert.ok(t.server.httpStats().connections <= MAX);
    } finally {
      for (const c of silent) c.destroy();
    }
  });

  test('requests in flight hold at most all but the reserve; then others get 503, /health and /metrics are answered', async () => {
    const slow: RawConnection[] = [];
    try {
      for (let i = 0; i < MAX - OPERATOR_RESERVE_CONNECTIONS; i++) {
        const c = await RawConnection.open(t.server.url);
        slow.push(c);
        await c.write(await signedHead(t.server.url, { path: `/v1/apps/${app}/events`, service: 'mobiletargeting', credentials: t.server.admin, contentLength: 1000 }));
        await c.write('{"BatchItem":');
      }
      assert.ok(await until(() => t.server.httpStats().busyConnections === MAX - OPERATOR_RESERVE_CONNECTIONS, 10_000), `${t.server.httpStats().busyConnections} busy`);

      const refused = await RawConnection.open(t.server.url);
      await refused.write(await signedHead(t.server.url, { method: 'GET', path: '/v1/apps', service: 'mobiletargeting', credentials: t.server.admin }));
      assertRest(await refused.response(), 503, 'ServiceUnavailableException', /connection limit/);
      assert.ok(await refused.waitClosed(5_000));

      assert.equal((await fetch(`${t.server.url}/health`)).status, 200);
      const m = await fetch(`${t.server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      assert.equal(m.status, 200);
      await m.text();
    } finally {
      for (const c of slow) c.destroy();
    }
    assert.ok(await until(() => t.server.httpStats().busyConnections === 0, 10_000));
    assert.equal((await t.pinpoint.send(new GetAppsCommand({}))).$metadata.httpStatusCode, 200);
  });
});
