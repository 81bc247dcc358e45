// Issue 12, defect 8: /metrics named every app id and destination ARN to anyone. Now it answers
// only the bearer token configured in PINSTREAM_METRICS_TOKEN (what Prometheus sends with
// `authorization: {credentials: …}`), and /health stays open but names no tenant, whatever exists.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { CreateAppCommand, PutEventsCommand, PutEventStreamCommand } from '@aws-sdk/client-pinpoint';
import { CreateStreamCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { IAMClient } from '@aws-sdk/client-iam';
import { createPinpointRole } from './helpers/eventstream.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const TOKEN = 'operator-metrics-token-0123456789';

describe('/metrics and /health', () => {
  let t: TestServer;
  let app: string;
  let arn: string;
  const tenantNames = () => [app, arn, 'metrics-tenant-stream', 'metrics-tenant-app'];

  before(async () => {
    t = await startTestServer({ config: { metricsToken: TOKEN } });
    const kinesis = new KinesisClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 });
    const iam = new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 });
    try {
      app = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'metrics-tenant-app' } }))).ApplicationResponse!.Id!;
      await kinesis.send(new CreateStreamCommand({ StreamName: 'metrics-tenant-stream', ShardCount: 1 }));
      arn = 'arn:aws:kinesis:us-east-1:000000000000:stream/metrics-tenant-stream';
      await createPinpointRole(iam, 'metrics-tenant-role', { resource: arn });
      await t.pinpoint.send(
        new PutEventStreamCommand({ ApplicationId: app, WriteEventStream: { DestinationStreamArn: arn, RoleArn: 'arn:aws:iam::000000000000:role/metrics-tenant-role' } }),
      );
      await t.pinpoint.send(
        new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: { d: { Endpoint: {}, Events: { e: { EventType: 'x', Timestamp: new Date().toISOString() } } } } } }),
      );
    } finally {
      kinesis.destroy();
      iam.destroy();
    }
  });
  after(() => t.close());

  const metrics = (authorization?: string) => fetch(`${t.server.url}/metrics`, { headers: authorization ? { authorization } : {} });

  for (const [what, authorization] of [
    ['no credentials', undefined],
    ['a wrong bearer token', 'Bearer not-the-token-0123456789'],
    ['the token with one character more', `Bearer ${TOKEN}x`],
    ['the token as Basic credentials', `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`],
    ['the token without a scheme', TOKEN],
  ] as const) {
    test(`with ${what}: 401 with a Bearer challenge and nothing about tenants`, async () => {
      const res = await metrics(authorization);
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer /);
      assert.equal(res.headers.get('x-amzn-errortype'), 'UnauthorizedException');
      const body = await res.text();
      for (const name of tenantNames()) assert.ok(!body.includes(name), `the answer names ${name}`);
    });
  }

  test('with the bearer token: the Prometheus text, which does name apps and destinations', async () => {
    const res = await metrics(`Bearer ${TOKEN}`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    assert.match(body, new RegExp(`app_id="${app}",destination="${arn}"`));
  });

  test('/health is open and names no tenant, over HTTP/1.1 and HTTP/2', async () => {
    const res = await fetch(`${t.server.url}/health`);
    assert.equal(res.status, 200);
    const h1 = await res.text();
    const h2 = await new Promise<string>((resolve, reject) => {
      const s = http2.connect(t.server.url);
      s.on('error', reject);
      const r = s.request({ ':path': '/health' });
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (body += c));
      r.on('end', () => {
        s.close();
        resolve(body);
      });
      r.on('error', reject);
    });
    for (const body of [h1, h2]) {
      assert.equal(JSON.parse(body).status, 'ok');
      for (const name of tenantNames()) assert.ok(!body.includes(name), `/health names ${name}: ${body}`);
    }
  });
});

test('without PINSTREAM_METRICS_TOKEN, /metrics is refused to everyone and says how to enable it', async () => {
  const t = await startTestServer();
  try {
    for (const authorization of [undefined, 'Bearer ', 'Bearer undefined', `Bearer ${TOKEN}`]) {
      const res = await fetch(`${t.server.url}/metrics`, { headers: authorization ? { authorization } : {} });
      assert.equal(res.status, 401);
      assert.match((await res.json()).Message, /PINSTREAM_METRICS_TOKEN/);
    }
  } finally {
    await t.close();
  }
});
