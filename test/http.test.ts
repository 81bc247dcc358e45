// The HTTP front door: SigV4 authentication failures as AWS reports them, clock-skew behaviour the
// SDK can recover from, presigned URLs, request ids, CORS, HTTP/1.1 + HTTP/2 on one port, routing
// errors and the body size cap. One server for the whole file; real SDK clients wherever they can
// express the request, signedFetch / plain fetch for the rest.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeHttp2Handler } from '@smithy/node-http-handler';
import { CreateAppCommand, GetAppCommand, GetAppsCommand, PinpointClient } from '@aws-sdk/client-pinpoint';
import { startTestServer, pinpointClient, type TestServer } from './helpers/server.js';
import { rejection } from './helpers/rejection.js';
import { assertRestError, signedFetch } from './helpers/signed.js';
import { MAX_REQUEST_BYTES } from '../src/pinpoint/limits.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('HTTP front door', () => {
  let t: TestServer;
  const extraClients: PinpointClient[] = [];
  const client = (extra: object = {}) => {
    const c = pinpointClient(t.server, extra);
    extraClients.push(c);
    return c;
  };

  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    for (const c of extraClients) c.destroy();
    await t.close();
  });

  describe('SigV4', () => {
    test("an unsigned request is 403 MissingAuthenticationTokenException with API Gateway's {message}", async () => {
      const res = await fetch(`${t.server.url}/v1/apps`);
      assert.equal(res.status, 403);
      assert.equal(res.headers.get('x-amzn-errortype'), 'MissingAuthenticationTokenException');
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      const requestId = res.headers.get('x-amzn-requestid');
      assert.match(requestId ?? '', UUID);
      assert.deepEqual(await res.json(), { message: 'Missing Authentication Token' });
    });

    test('an unknown access key is 403 UnrecognizedClientException', async () => {
      const c = client({ credentials: { accessKeyId: 'PSAKMADEUPKEY0000000', secretAccessKey: 'made-up-secret-0123456789' } });
      const err = await rejection(() => c.send(new GetAppsCommand({})));
      assert.equal(err.name, 'UnrecognizedClientException');
      assert.equal(err.$metadata.httpStatusCode, 403);
      assert.match(err.message, /security token included in the request is invalid/);
    });

    test('the right key with a wrong secret is 403 InvalidSignatureException', async () => {
      const c = client({ credentials: { accessKeyId: t.server.admin.accessKeyId, secretAccessKey: 'not-the-secret-0123456789' } });
      const err = await rejection(() => c.send(new GetAppsCommand({})));
      assert.equal(err.name, 'InvalidSignatureException');
      assert.equal(err.$metadata.httpStatusCode, 403);
      assert.match(err.message, /signature we calculated does not match/);
    });

    test('a request signed 20 minutes in the past is 403 "Signature expired" without retries', async () => {
      const c = client({ systemClockOffset: -20 * 60 * 1000, maxAttempts: 1 });
      const err = await rejection(() => c.send(new GetAppsCommand({})));
      assert.equal(err.name, 'InvalidSignatureException');
      assert.equal(err.$metadata.httpStatusCode, 403);
      assert.ok(err.message.startsWith('Signature expired'), `message was: ${err.message}`);
    });

    test('with default retries the SDK corrects its clock from the Date header and succeeds', async () => {
      const c = client({ systemClockOffset: -20 * 60 * 1000, maxAttempts: 3 });
      const out = await c.send(new GetAppsCommand({}));
      assert.equal(out.$metadata.httpStatusCode, 200);
      assert.ok(Array.isArray(out.ApplicationsResponse?.Item));
      // The retry happened: the first attempt failed on the skew, the second was re-signed.
      assert.equal(out.$metadata.attempts, 2);
    });

    test('a signature scoped to another service is 403 InvalidSignatureException', async () => {
      const res = await signedFetch(t.server.url, { method: 'GET', path: '/v1/apps', service: 'kinesis', credentials: t.server.admin });
      assert.equal(res.status, 403);
      assert.equal(res.headers.get('x-amzn-errortype'), 'InvalidSignatureException');
      assert.deepEqual(res.json, { message: "Credential should be scoped to correct service: 'mobiletargeting'." });
    });

    test('a presigned GET /v1/apps URL works without any headers', async () => {
      const url = new URL(t.server.url);
      const signer = new SignatureV4({ service: 'mobiletargeting', region: 'us-east-1', credentials: t.server.admin, sha256: Sha256 });
      const presigned = await signer.presign(
        { method: 'GET', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: '/v1/apps', query: {}, headers: { host: url.host } },
        { expiresIn: 300 },
      );
      const qs = Object.entries(presigned.query ?? {})
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
        .join('&');
      assert.match(qs, /X-Amz-Signature=/);
      const res = await fetch(`${t.server.url}/v1/apps?${qs}`);
      const body = await res.json();
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.ok(Array.isArray(body.Item));

      // The same URL with the signature altered is refused: the presign path really verifies.
      const tampered = qs.replace(/X-Amz-Signature=([0-9a-f])/, (_m, c: string) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`);
      const bad = await fetch(`${t.server.url}/v1/apps?${tampered}`);
      assert.equal(bad.status, 403);
      assert.equal(bad.headers.get('x-amzn-errortype'), 'InvalidSignatureException');
    });
  });

  describe('request ids', () => {
    test('every success response carries a fresh x-amzn-RequestId', async () => {
      const a = await t.pinpoint.send(new GetAppsCommand({}));
      const b = await t.pinpoint.send(new GetAppsCommand({}));
      assert.match(a.$metadata.requestId ?? '', UUID);
      assert.match(b.$metadata.requestId ?? '', UUID);
      assert.notEqual(a.$metadata.requestId, b.$metadata.requestId);

      const ids = new Set<string>();
      for (let i = 0; i < 5; i++) {
        const res = await signedFetch(t.server.url, { method: 'GET', path: '/v1/apps', credentials: t.server.admin });
        assert.equal(res.status, 200);
        const id = res.headers.get('x-amzn-requestid');
        assert.match(id ?? '', UUID);
        ids.add(id!);
      }
      assert.equal(ids.size, 5);
    });
  });

  describe('CORS', () => {
    test('a preflight is answered 200 without authentication', async () => {
      const res = await fetch(`${t.server.url}/v1/apps/x/events`, {
        method: 'OPTIONS',
        headers: {
          origin: 'https://app.example.com',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization,content-type,x-amz-date,x-amz-user-agent',
        },
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      const methods = (res.headers.get('access-control-allow-methods') ?? '').split(',').map((m) => m.trim());
      assert.ok(methods.includes('POST'), `allow-methods: ${methods}`);
      assert.equal(res.headers.get('access-control-allow-headers'), 'authorization,content-type,x-amz-date,x-amz-user-agent');
      assert.match(res.headers.get('x-amzn-requestid') ?? '', UUID);
    });

    test('normal responses allow any origin and expose x-amzn-RequestId', async () => {
      const ok = await signedFetch(t.server.url, { method: 'GET', path: '/v1/apps', credentials: t.server.admin, headers: { origin: 'https://app.example.com' } });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('access-control-allow-origin'), '*');
      const exposed = (ok.headers.get('access-control-expose-headers') ?? '').split(',').map((h) => h.trim().toLowerCase());
      assert.ok(exposed.includes('x-amzn-requestid'), `expose-headers: ${exposed}`);
      assert.ok(exposed.includes('x-amzn-errortype'), `expose-headers: ${exposed}`);

      // Error responses too, or a browser SDK cannot read the error type.
      const denied = await fetch(`${t.server.url}/v1/apps`, { headers: { origin: 'https://app.example.com' } });
      assert.equal(denied.status, 403);
      assert.equal(denied.headers.get('access-control-allow-origin'), '*');
    });
  });

  describe('HTTP versions on one port', () => {
    test('a raw HTTP/2 (prior knowledge) GET /health is answered over h2', async () => {
      const session = http2.connect(t.server.url);
      try {
        const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          session.on('error', reject);
          const req = session.request({ ':method': 'GET', ':path': '/health' });
          let status = 0;
          let body = '';
          req.on('response', (h) => (status = Number(h[':status'])));
          req.setEncoding('utf8');
          req.on('data', (c: string) => (body += c));
          req.on('end', () => resolve({ status, body }));
          req.on('error', reject);
        });
        assert.equal(status, 200);
        assert.equal(JSON.parse(body).status, 'ok');
      } finally {
        session.destroy();
      }
    });

    test('an HTTP/2 SDK client creates and gets an app', async () => {
      const handler = new NodeHttp2Handler();
      const c = client({ requestHandler: handler });
      try {
        const created = await c.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'over-h2' } }));
        assert.equal(created.$metadata.httpStatusCode, 201);
        const id = created.ApplicationResponse!.Id!;
        const got = await c.send(new GetAppCommand({ ApplicationId: id }));
        assert.equal(got.$metadata.httpStatusCode, 200);
        assert.equal(got.ApplicationResponse?.Name, 'over-h2');
        assert.equal(got.ApplicationResponse?.Id, id);
      } finally {
        handler.destroy();
      }
    });

    test('an HTTP/1.1 SDK client (the default handler) creates and gets an app', async () => {
      const created = await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'over-h1' } }));
      assert.equal(created.$metadata.httpStatusCode, 201);
      const got = await t.pinpoint.send(new GetAppCommand({ ApplicationId: created.ApplicationResponse!.Id! }));
      assert.equal(got.ApplicationResponse?.Name, 'over-h1');
    });
  });

  describe('routing', () => {
    test('an unknown path under /v1 is 404 NotFoundException', async () => {
      const res = await signedFetch(t.server.url, { method: 'GET', path: '/v1/no-such-thing', credentials: t.server.admin });
      assertRestError(res, 404, 'NotFoundException', /\/v1\/no-such-thing/);
      assert.equal(res.json.RequestID, res.headers.get('x-amzn-requestid'));
    });

    test('a wrong method on a known path is 405 MethodNotAllowedException', async () => {
      const res = await signedFetch(t.server.url, { method: 'PATCH', path: '/v1/apps', body: '{}', credentials: t.server.admin });
      assertRestError(res, 405, 'MethodNotAllowedException', /PATCH/);
    });

    test('GET /health is 200 without authentication', async () => {
      const res = await fetch(`${t.server.url}/health`);
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.status, 'ok');
      // The logs' section: counts by log kind, nothing tenant-identifying.
      assert.deepEqual(Object.keys(body.logs), ['ingest', 'kinesis', 'firehose']);
      assert.equal(body.logs.ingest.open, 1);
      assert.equal(body.logs.ingest.recordsLost, 0);
    });

    test("an unknown path outside every service is AWS's 403 MissingAuthenticationTokenException (XML) unsigned", async () => {
      const res = await fetch(`${t.server.url}/nope`);
      assert.equal(res.status, 403);
      assert.equal(res.headers.get('x-amzn-errortype'), 'MissingAuthenticationTokenException');
      assert.equal(await res.text(), '<MissingAuthenticationTokenException>\n  <Message>Missing Authentication Token</Message>\n</MissingAuthenticationTokenException>\n');
    });
  });

  describe('body cap', () => {
    /** POST /v1/apps with a body of `bytes` spaces, signed with UNSIGNED-PAYLOAD. */
    const postApps = (bytes: number) =>
      signedFetch(t.server.url, {
        method: 'POST',
        path: '/v1/apps',
        body: Buffer.alloc(bytes, 0x20),
        // Skips hashing megabytes in pure JS; the cap is checked before the signature anyway.
        headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
        credentials: t.server.admin,
      });

    test(`a body of Pinpoint's MAX_REQUEST_BYTES + 1 (${MAX_REQUEST_BYTES + 1}) is 413 PayloadTooLargeException`, async () => {
      const res = await postApps(MAX_REQUEST_BYTES + 1);
      assertRestError(res, 413, 'PayloadTooLargeException', new RegExp(`is ${MAX_REQUEST_BYTES + 1} bytes; the maximum is ${MAX_REQUEST_BYTES} bytes`));

      // The server is still fine afterwards.
      const ok = await t.pinpoint.send(new GetAppsCommand({}));
      assert.equal(ok.$metadata.httpStatusCode, 200);
    });

    test('a body of exactly MAX_REQUEST_BYTES is read and judged by the operation, not the cap', async () => {
      const res = await postApps(MAX_REQUEST_BYTES);
      // Spaces only: read, signature verified, then refused by CreateApp as an empty document.
      assertRestError(res, 400, 'BadRequestException', /not valid JSON/);
    });
  });
});

test('blobInput takes standard base64 (padded or not) and refuses other text with SerializationException', async () => {
  const { blobInput } = await import('../src/http/awsjson.js');
  for (const v of ['', 'QQ==', 'QUI=', 'QUJD', 'QUJDRA', Buffer.from('héllo wörld').toString('base64')]) {
    assert.deepEqual(blobInput(v, 'Data'), Buffer.from(v, 'base64'), v);
  }
  for (const v of ['Q', 'Q Q==', 'QU-D', 'QU_D', 'QU!D', 'QQ==QQ==', 'A=BC', 'QUJD\n', '====', 'QUJD*A==']) {
    assert.throws(() => blobInput(v, 'Data'), (e: Error & { code?: string }) => e.code === 'SerializationException' && /Data is not valid base64/.test(e.message), JSON.stringify(v));
  }
});
