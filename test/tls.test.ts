// Issue 14 item 4: HTTPS served directly. A throwaway PKI (root CA → intermediate → server
// certificate for localhost, 127.0.0.1 and the AWS names pinpoint/kinesis.us-east-1.amazonaws.com)
// made with the openssl CLI; the official SDK clients over HTTPS with HTTP/1.1 and HTTP/2 (ALPN),
// including clients that resolve AWS's own endpoint from the region and reach this server as DNS
// would send them (Host, SNI and certificate name pinpoint.us-east-1.amazonaws.com); signatures
// checked against the Host / :authority the client signed; plain HTTP sent to the TLS port; silent
// and half-done handshakes closed by the header timeout; the connection cap and the operator
// reserve counting TLS sockets with the plain port's in one pool; bad certificate configuration as
// start-up errors; the certificate reloaded on SIGHUP.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import { NodeHttpHandler, NodeHttp2Handler } from '@smithy/node-http-handler';
import { CreateAppCommand, GetAppsCommand, PinpointClient, PutEventsCommand, PutEventStreamCommand } from '@aws-sdk/client-pinpoint';
import { CreateStreamCommand, DescribeStreamSummaryCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient, ListShardsCommand, PutRecordCommand } from '@aws-sdk/client-kinesis';
import { IAMClient } from '@aws-sdk/client-iam';
import { CreateDeliveryStreamCommand, FirehoseClient } from '@aws-sdk/client-firehose';
import { ConfigError, OPERATOR_RESERVE_CONNECTIONS, loadConfig } from '../src/config/config.js';
import { ALPN_PROTOCOLS, MAX_TLS_FILE_BYTES, TLS_MIN_VERSION, loadTlsMaterial } from '../src/http/tls.js';
import { startPinstream } from '../src/server.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { makePki, opensslMissing, OPENSSL, type ServerCert, type TestPki } from './helpers/certs.js';
import { RawConnection, signedHead, until } from './helpers/raw.js';
import { CLI, spawnServer, waitForExit } from './helpers/process.js';
import { createPinpointRole } from './helpers/eventstream.js';
import { signedRequest } from './helpers/signed.js';
import { fromCognitoIdentityPool } from '@aws-sdk/credential-provider-cognito-identity';
import { folderContents, until as firehoseUntil } from './helpers/firehose.js';

const skip = opensslMissing();
const REGION = 'us-east-1';
const PINPOINT_HOST = `pinpoint.${REGION}.amazonaws.com`;
const KINESIS_HOST = `kinesis.${REGION}.amazonaws.com`;
const COGNITO_HOST = `cognito-identity.${REGION}.amazonaws.com`;
const NAMES = ['localhost', '127.0.0.1', PINPOINT_HOST, KINESIS_HOST, COGNITO_HOST];
const HEADERS_TIMEOUT_MS = 1_000;

let pki: TestPki;
let cert: ServerCert;
/** What clients trust: the root only (the server sends the intermediate). */
let ca: string;
before(() => {
  if (skip) return;
  pki = makePki();
  cert = pki.issue('server', NAMES);
  ca = pki.rootPem;
});
after(() => {
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
});

function tlsConfig(extra: Record<string, unknown> = {}) {
  return { tlsCert: cert.certPath, tlsKey: cert.keyPath, tlsCa: pki.intermediatePath, ...extra };
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

/**
 * An https.Agent that connects every request to this server whatever host the URL names, keeping
 * the Host header and SNI: what a DNS record pointing AWS's names at Pinstream does.
 */
function dnsAgent(port: number, trust: string | string[] = ca): https.Agent {
  const agent = new https.Agent({ ca: trust, keepAlive: true });
  (agent as unknown as { createConnection: (o: tls.ConnectionOptions) => net.Socket }).createConnection = (o) =>
    tls.connect({ ...o, host: '127.0.0.1', port, servername: o.servername || (o.host as string) });
  return agent;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request signed as the SDK signs it for `host`, sent over HTTPS (SNI and Host = host) to 127.0.0.1. */
async function signedHttps(port: number, host: string, o: { method?: string; path: string; service: string; credentials: { accessKeyId: string; secretAccessKey: string }; signFor?: string }): Promise<Answer> {
  const signed = await new SignatureV4({ service: o.service, region: REGION, credentials: o.credentials, sha256: Sha256 }).sign({
    method: o.method ?? 'GET',
    protocol: 'https:',
    hostname: o.signFor ?? host,
    path: o.path,
    query: {},
    headers: { host: o.signFor ?? host },
  });
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, servername: host, ca, method: o.method ?? 'GET', path: o.path, headers: { ...(signed.headers as Record<string, string>), host }, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The same over HTTP/2 (ALPN h2): `:authority` = host. */
async function signedH2(port: number, host: string, o: { path: string; service: string; credentials: { accessKeyId: string; secretAccessKey: string }; signFor?: string }): Promise<Answer & { alpn: string | false | null | undefined }> {
  const signed = await new SignatureV4({ service: o.service, region: REGION, credentials: o.credentials, sha256: Sha256 }).sign({
    method: 'GET',
    protocol: 'https:',
    hostname: o.signFor ?? host,
    path: o.path,
    query: {},
    headers: { host: o.signFor ?? host },
  });
  const headers = { ...(signed.headers as Record<string, string>) };
  delete headers.host;
  const session = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: host });
  try {
    return await new Promise((resolve, reject) => {
      session.on('error', reject);
      const req = session.request({ ':method': 'GET', ':path': o.path, ':authority': host, ...headers });
      let status = 0;
      let h: Answer['headers'] = {};
      let body = '';
      req.on('response', (r) => {
        status = r[':status'] as number;
        h = r as Answer['headers'];
      });
      req.setEncoding('utf8');
      req.on('data', (d) => (body += d));
      req.on('end', () => resolve({ status, headers: h, body, alpn: (session.socket as tls.TLSSocket).alpnProtocol }));
      req.on('error', reject);
      req.end();
    });
  } finally {
    session.close();
  }
}

/** GET over HTTPS (HTTP/1.1, a fresh connection) to 127.0.0.1 with SNI localhost. */
function httpsGet(url: string, path: string, trust: string | string[] = ca): Promise<{ status: number; body: string; peer: tls.PeerCertificate }> {
  return new Promise((resolve, reject) => {
    const req = https.get(`${url}${path}`, { ca: trust, servername: 'localhost', agent: false }, (res) => {
      let body = '';
      const peer = (res.socket as tls.TLSSocket).getPeerCertificate();
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body, peer }));
    });
    req.on('error', reject);
  });
}

function putEvents(app: string) {
  return new PutEventsCommand({
    ApplicationId: app,
    EventsRequest: { BatchItem: { e1: { Endpoint: {}, Events: { a: { EventType: 'tls.test', Timestamp: new Date().toISOString() } } } } },
  });
}

describe('HTTPS on the one port, plain HTTP on PINSTREAM_HTTP_PORT', { skip }, () => {
  let t: TestServer;
  let app: string;
  before(async () => {
    t = await startTestServer({ config: tlsConfig({ httpPort: 0, headersTimeoutMs: HEADERS_TIMEOUT_MS }) });
    assert.match(t.server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(t.server.httpUrl!, /^http:\/\/127\.0\.0\.1:\d+$/);
  });
  after(() => t.close());

  test('the Pinpoint SDK with AWS own endpoint for the region (no endpoint set) reaches the server as DNS would send it: PutEvents 202', async () => {
    const pinpoint = new PinpointClient({ region: REGION, credentials: t.server.admin, maxAttempts: 1, requestHandler: new NodeHttpHandler({ httpsAgent: dnsAgent(t.server.port) }) });
    try {
      app = (await pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'over-tls' } }))).ApplicationResponse!.Id!;
      const out = await pinpoint.send(putEvents(app));
      assert.equal(out.EventsResponse!.Results!.e1.EventsItemResponse!.a.StatusCode, 202);
      assert.ok((await pinpoint.send(new GetAppsCommand({}))).ApplicationsResponse!.Item!.some((a) => a.Id === app));
    } finally {
      pinpoint.destroy();
    }
  });

  test('a guest app as Amplify runs it, endpoints resolved from the region: Cognito guest credentials from cognito-identity.us-east-1.amazonaws.com, PutEvents to pinpoint.us-east-1.amazonaws.com, both over TLS to this server', async () => {
    const res = await signedRequest(t.server.httpUrl!, { path: `/v1/apps/${app}/guest-access`, body: '{}', credentials: t.server.admin });
    assert.equal(res.status, 201, await res.clone().text());
    const { IdentityPoolId } = (await res.json()) as { IdentityPoolId: string };
    const requestHandler = new NodeHttpHandler({ httpsAgent: dnsAgent(t.server.port) });
    const credentials = fromCognitoIdentityPool({ identityPoolId: IdentityPoolId, clientConfig: { region: REGION, maxAttempts: 1, requestHandler } });
    const guest = new PinpointClient({ region: REGION, credentials, maxAttempts: 1, requestHandler });
    try {
      const out = await guest.send(putEvents(app));
      assert.equal(out.EventsResponse!.Results!.e1.EventsItemResponse!.a.StatusCode, 202);
      assert.match((await credentials()).accessKeyId, /^ASIA/);
    } finally {
      guest.destroy();
    }
  });

  test('the Kinesis SDK over HTTP/2 (ALPN h2, AWS own endpoint name) and over HTTP/1.1 (endpoint https://localhost)', async () => {
    const h2 = new KinesisClient({
      region: REGION,
      credentials: t.server.admin,
      maxAttempts: 1,
      requestHandler: new NodeHttp2Handler({
        nodeHttp2ConnectOptions: {
          createConnection: (authority: URL) => tls.connect({ host: '127.0.0.1', port: t.server.port, servername: authority.hostname, ca, ALPNProtocols: ['h2'] }),
        },
      }),
    });
    const h1 = new KinesisClient({
      endpoint: `https://localhost:${t.server.port}`,
      region: REGION,
      credentials: t.server.admin,
      maxAttempts: 1,
      requestHandler: new NodeHttpHandler({ httpsAgent: new https.Agent({ ca }) }),
    });
    try {
      await h2.send(new CreateStreamCommand({ StreamName: 'tls-h2', ShardCount: 1 }));
      const put = await h2.send(new PutRecordCommand({ StreamName: 'tls-h2', PartitionKey: 'k', Data: Buffer.from('over h2') }));
      const shards = await h1.send(new ListShardsCommand({ StreamName: 'tls-h2' }));
      const it = await h1.send(new GetShardIteratorCommand({ StreamName: 'tls-h2', ShardId: shards.Shards![0].ShardId!, ShardIteratorType: 'TRIM_HORIZON' }));
      const got = await h1.send(new GetRecordsCommand({ ShardIterator: it.ShardIterator! }));
      assert.equal(got.Records!.length, 1);
      assert.equal(got.Records![0].SequenceNumber, put.SequenceNumber);
      assert.equal(Buffer.from(got.Records![0].Data!).toString(), 'over h2');
    } finally {
      h2.destroy();
      h1.destroy();
    }
  });

  test(`ALPN offers ${ALPN_PROTOCOLS.join(', ')}: h2 when the client offers it, HTTP/1.1 when it offers only that or no ALPN at all`, async () => {
    const both = await RawConnection.openTls(t.server.url, { ca, servername: 'localhost', ALPNProtocols: ['h2', 'http/1.1'] });
    assert.equal((both.socket as tls.TLSSocket).alpnProtocol, 'h2');
    both.destroy();
    for (const ALPNProtocols of [['http/1.1'], undefined]) {
      const c = await RawConnection.openTls(t.server.url, { ca, servername: 'localhost', ALPNProtocols });
      try {
        assert.equal((c.socket as tls.TLSSocket).alpnProtocol, ALPNProtocols ? 'http/1.1' : false);
        await c.write('GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n');
        const r = await c.response();
        assert.equal(r.status, 200);
        assert.equal(JSON.parse(r.body.toString()).status, 'ok');
      } finally {
        c.destroy();
      }
    }
  });

  test('a signature is checked against the Host the client signed and sent (pinpoint.us-east-1.amazonaws.com over 127.0.0.1), on HTTP/1.1 and HTTP/2', async () => {
    const o = { path: '/v1/apps', service: 'mobiletargeting', credentials: t.server.admin };
    const ok1 = await signedHttps(t.server.port, PINPOINT_HOST, o);
    assert.equal(ok1.status, 200, ok1.body);
    assert.ok(JSON.parse(ok1.body).Item.some((a: { Id: string }) => a.Id === app));
    const ok2 = await signedH2(t.server.port, PINPOINT_HOST, o);
    assert.equal(ok2.alpn, 'h2');
    assert.equal(ok2.status, 200, ok2.body);
    // Signed for one name, sent with another: the Host as sent is what is verified.
    const other = `pinpoint.us-west-2.amazonaws.com`;
    for (const bad of [await signedHttps(t.server.port, PINPOINT_HOST, { ...o, signFor: other }), await signedH2(t.server.port, PINPOINT_HOST, { ...o, signFor: other })]) {
      assert.equal(bad.status, 403, bad.body);
      assert.equal(bad.headers['x-amzn-errortype'], 'InvalidSignatureException');
    }
  });

  test('the plain-HTTP port serves the same server (HTTP/1.1 and h2c)', async () => {
    const r = await fetch(`${t.server.httpUrl}/health`);
    assert.equal(r.status, 200);
    await r.text();
    const ok = await new Promise<number>((resolve, reject) => {
      const s = http2.connect(t.server.httpUrl!);
      s.on('error', reject);
      const req = s.request({ ':path': '/health' });
      req.on('response', (h) => {
        resolve(h[':status'] as number);
        s.close();
      });
      req.end();
    });
    assert.equal(ok, 200);
    const pinpoint = new PinpointClient({ endpoint: t.server.httpUrl, region: REGION, credentials: t.server.admin, maxAttempts: 1 });
    try {
      assert.ok((await pinpoint.send(new GetAppsCommand({}))).ApplicationsResponse!.Item!.some((a) => a.Id === app), 'the app made over HTTPS');
    } finally {
      pinpoint.destroy();
    }
  });

  test('plain HTTP sent to the TLS port: 400 BadRequestException saying so, then close; bytes that are neither: closed; HTTPS still served', async () => {
    const c = await RawConnection.open(t.server.url.replace('https:', 'http:'));
    await c.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    const r = await c.response();
    assert.equal(r.status, 400);
    assert.equal(r.headers['x-amzn-errortype'], 'BadRequestException');
    assert.match(JSON.parse(r.body.toString()).message, /HTTPS/);
    assert.ok(await c.waitClosed(5_000));
    for (const junk of ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'DELETE /v1/apps/x HTTP/1.1\r\nHost: x\r\n\r\n', Buffer.from([0x16, 0x03, 0x01, 0x00, 0x01, 0x00, 0xff, 0xff])]) {
      const j = await RawConnection.open(t.server.url.replace('https:', 'http:'));
      await j.write(junk);
      assert.ok(await j.waitClosed(5_000), `closed after ${JSON.stringify(junk.toString())}`);
    }
    assert.equal((await httpsGet(t.server.url, '/health')).status, 200);
  });

  test(`a silent connection, a handshake that stops half way, and a finished handshake with no request are closed after the header time (${HEADERS_TIMEOUT_MS} ms)`, async () => {
    const before = t.server.httpStats().connections;
    const silent = await RawConnection.open(t.server.url.replace('https:', 'http:'));
    const half = await RawConnection.open(t.server.url.replace('https:', 'http:'));
    // A TLS record header announcing a 512-byte handshake message, and 5 bytes of it.
    await half.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03]));
    const idle = await RawConnection.openTls(t.server.url, { ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
    const idleH2 = await RawConnection.openTls(t.server.url, { ca, servername: 'localhost', ALPNProtocols: ['h2'] });
    // Connections of earlier tests may still be closing: the count is compared loosely.
    assert.ok(await until(() => t.server.httpStats().connections >= 4, 5_000), 'the four are counted');
    for (const [name, c] of Object.entries({ silent, half, idle, idleH2 })) assert.ok(await c.waitClosed(10 * HEADERS_TIMEOUT_MS), `${name} closed`);
    assert.ok(await until(() => t.server.httpStats().connections <= before, 5_000), 'and no longer counted');
  });

  test(`protocol versions below ${TLS_MIN_VERSION} are refused in the handshake`, async () => {
    const err = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port: t.server.port, ca, servername: 'localhost', minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }, () => {
        s.destroy();
        resolve(undefined);
      });
      s.on('error', resolve);
    });
    assert.ok(err, 'a TLS 1.1 handshake fails');
    // The server's protocol_version alert, not a client that could not offer TLS 1.1 at all.
    assert.match(err.message, /alert protocol version/);
    const ok = await RawConnection.openTls(t.server.url, { ca, servername: 'localhost', maxVersion: 'TLSv1.2' });
    assert.equal((ok.socket as tls.TLSSocket).getProtocol(), 'TLSv1.2');
    ok.destroy();
  });
});

describe(`one connection pool for both ports: maxConnections 40, ${OPERATOR_RESERVE_CONNECTIONS} kept for /health`, { skip }, () => {
  let t: TestServer;
  let app: string;
  const MAX = 40;
  before(async () => {
    t = await startTestServer({ config: tlsConfig({ httpPort: 0, maxConnections: MAX, headersTimeoutMs: 60_000, bodyTimeoutMs: 60_000 }) });
    const pinpoint = new PinpointClient({ endpoint: t.server.httpUrl, region: REGION, credentials: t.server.admin, maxAttempts: 1 });
    app = (await pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'tls-conns' } }))).ApplicationResponse!.Id!;
    pinpoint.destroy();
  });
  after(() => t.close());

  test('TLS connections (in and after their handshake) count toward the cap; at the cap the one idle longest is pushed out', async () => {
    const conns: RawConnection[] = [];
    try {
      for (let i = 0; i < MAX / 2; i++) conns.push(await RawConnection.openTls(t.server.url, { ca, servername: 'localhost' }));
      for (let i = 0; i < MAX / 2; i++) conns.push(await RawConnection.open(t.server.url.replace('https:', 'http:')));
      assert.ok(await until(() => t.server.httpStats().connections === MAX, 10_000), `${t.server.httpStats().connections} connections`);
      assert.equal((await httpsGet(t.server.url, '/health')).status, 200);
      assert.ok(conns[0].closed, 'the oldest (a TLS connection) was pushed out');
      assert.ok(t.server.httpStats().connections <= MAX);
    } finally {
      for (const c of conns) c.destroy();
    }
  });

  test('requests in flight over TLS and plain HTTP together hold all but the reserve; then 503 over TLS, /health still answered', async () => {
    const slow: RawConnection[] = [];
    try {
      for (let i = 0; i < MAX - OPERATOR_RESERVE_CONNECTIONS; i++) {
        const c = i % 2 === 0 ? await RawConnection.openTls(t.server.url, { ca, servername: 'localhost' }) : await RawConnection.open(t.server.httpUrl!);
        slow.push(c);
        await c.write(await signedHead(t.server.httpUrl!, { path: `/v1/apps/${app}/events`, service: 'mobiletargeting', credentials: t.server.admin, contentLength: 1000 }));
        await c.write('{"BatchItem":');
      }
      assert.ok(await until(() => t.server.httpStats().busyConnections === MAX - OPERATOR_RESERVE_CONNECTIONS, 10_000), `${t.server.httpStats().busyConnections} busy`);
      const refused = await RawConnection.openTls(t.server.url, { ca, servername: 'localhost' });
      await refused.write(await signedHead(t.server.url, { method: 'GET', path: '/v1/apps', service: 'mobiletargeting', credentials: t.server.admin }));
      const r = await refused.response();
      assert.equal(r.status, 503);
      assert.equal(r.headers['x-amzn-errortype'], 'ServiceUnavailableException');
      assert.equal((await httpsGet(t.server.url, '/health')).status, 200);
    } finally {
      for (const c of slow) c.destroy();
    }
    assert.ok(await until(() => t.server.httpStats().busyConnections === 0, 10_000));
  });
});

describe('TLS only (no plain port) and no PINSTREAM_TLS_CA', { skip }, () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ config: { tlsCert: cert.certPath, tlsKey: cert.keyPath } });
    assert.equal(t.server.httpUrl, undefined);
  });
  after(() => t.close());

  test('the intermediate is not sent: a client trusting only the root refuses the certificate; one that also has the intermediate accepts it', async () => {
    const e = await httpsGet(t.server.url, '/health').then(
      () => undefined,
      (err: NodeJS.ErrnoException) => err,
    );
    assert.equal(e?.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    const withChain = await httpsGet(t.server.url, '/health', [ca, execFileSync(OPENSSL, ['x509', '-in', pki.intermediatePath], { encoding: 'utf8' })]);
    assert.equal(withChain.status, 200);
  });

  test('an event stream to the embedded Kinesis is delivered while the server speaks only HTTPS (its own calls reach it over TLS)', async () => {
    const agent = new https.Agent({ ca: [ca, execFileSync(OPENSSL, ['x509', '-in', pki.intermediatePath], { encoding: 'utf8' })] });
    const common = { endpoint: t.server.url, region: REGION, credentials: t.server.admin, maxAttempts: 1, requestHandler: new NodeHttpHandler({ httpsAgent: agent }) };
    const pinpoint = new PinpointClient(common);
    const kinesis = new KinesisClient(common);
    const iam = new IAMClient(common);
    try {
      await kinesis.send(new CreateStreamCommand({ StreamName: 'tls-events', ShardCount: 1 }));
      const arn = (await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: 'tls-events' }))).StreamDescriptionSummary!.StreamARN!;
      await createPinpointRole(iam, 'tls-events-role', { resource: arn });
      const app = (await pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'tls-events' } }))).ApplicationResponse!.Id!;
      await pinpoint.send(new PutEventStreamCommand({ ApplicationId: app, WriteEventStream: { DestinationStreamArn: arn, RoleArn: 'arn:aws:iam::000000000000:role/tls-events-role' } }));
      await pinpoint.send(putEvents(app));
      const shard = (await kinesis.send(new ListShardsCommand({ StreamName: 'tls-events' }))).Shards![0].ShardId!;
      let it = (await kinesis.send(new GetShardIteratorCommand({ StreamName: 'tls-events', ShardId: shard, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator!;
      const seen: string[] = [];
      const deadline = Date.now() + 20_000;
      while (seen.length === 0 && Date.now() < deadline) {
        const out = await kinesis.send(new GetRecordsCommand({ ShardIterator: it }));
        for (const r of out.Records ?? []) seen.push(Buffer.from(r.Data!).toString());
        it = out.NextShardIterator!;
        if (seen.length === 0) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(seen.length, 1, 'the event reached the stream');
      assert.equal(JSON.parse(seen[0]).event_type, 'tls.test');
    } finally {
      pinpoint.destroy();
      kinesis.destroy();
      iam.destroy();
    }
  });
  test('a Firehose stream with a Kinesis source reads the embedded stream over HTTPS as its role (the server calling itself)', async () => {
    const agent = new https.Agent({ ca: [ca, execFileSync(OPENSSL, ['x509', '-in', pki.intermediatePath], { encoding: 'utf8' })] });
    const common = { endpoint: t.server.url, region: REGION, credentials: t.server.admin, maxAttempts: 1, requestHandler: new NodeHttpHandler({ httpsAgent: agent }) };
    const kinesis = new KinesisClient(common);
    const iam = new IAMClient(common);
    const fh = new FirehoseClient(common);
    try {
      await kinesis.send(new CreateStreamCommand({ StreamName: 'tls-source', ShardCount: 1 }));
      const streamArn = (await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: 'tls-source' }))).StreamDescriptionSummary!.StreamARN!;
      await createPinpointRole(iam, 'tls-firehose', {
        resource: '*',
        trustService: 'firehose.amazonaws.com',
        actions: ['kinesis:DescribeStream', 'kinesis:ListShards', 'kinesis:GetShardIterator', 'kinesis:GetRecords', 's3:GetBucketLocation', 's3:ListBucket', 's3:PutObject'],
      });
      const role = 'arn:aws:iam::000000000000:role/tls-firehose';
      await fh.send(
        new CreateDeliveryStreamCommand({
          DeliveryStreamName: 'tls-from-kinesis',
          DeliveryStreamType: 'KinesisStreamAsSource',
          KinesisStreamSourceConfiguration: { KinesisStreamARN: streamArn, RoleARN: role },
          ExtendedS3DestinationConfiguration: { RoleARN: role, BucketARN: 'arn:aws:s3:::tls-bucket', BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 0 } },
        }),
      );
      await kinesis.send(new PutRecordCommand({ StreamName: 'tls-source', PartitionKey: 'k', Data: Buffer.from('through tls\n') }));
      const dir = join(t.dataDir, 'buckets', 'tls-bucket');
      await firehoseUntil(async () => (await folderContents(dir)).includes('through tls'), 'the record in the bucket', 20_000);
    } finally {
      kinesis.destroy();
      iam.destroy();
      fh.destroy();
    }
  });
});

describe('bad TLS configuration stops the start with a message naming the setting and the file', { skip }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pinstream-tls-config-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const assertConfigError = (fn: () => unknown, ...fragments: string[]) =>
    assert.throws(fn, (e: unknown) => {
      assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
      for (const f of fragments) assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(f)}`);
      return true;
    });

  test('settings: a certificate without its key, a chain or a plain port without TLS, the plain port equal to the HTTPS one', () => {
    assertConfigError(() => loadConfig({ PINSTREAM_TLS_CERT: cert.certPath }), 'PINSTREAM_TLS_CERT is set but PINSTREAM_TLS_KEY is not');
    assertConfigError(() => loadConfig({ PINSTREAM_TLS_KEY: cert.keyPath }), 'PINSTREAM_TLS_KEY is set but PINSTREAM_TLS_CERT is not');
    assertConfigError(() => loadConfig({ PINSTREAM_TLS_CA: pki.intermediatePath }), 'PINSTREAM_TLS_CA is set but TLS is not');
    assertConfigError(() => loadConfig({ PINSTREAM_HTTP_PORT: '8080' }), 'PINSTREAM_HTTP_PORT', 'already speaks plain HTTP');
    assertConfigError(() => loadConfig({ PINSTREAM_TLS_CERT: cert.certPath, PINSTREAM_TLS_KEY: cert.keyPath, PINSTREAM_PORT: '8443', PINSTREAM_HTTP_PORT: '8443' }), 'must differ');
    const ok = loadConfig({ PINSTREAM_TLS_CERT: cert.certPath, PINSTREAM_TLS_KEY: cert.keyPath, PINSTREAM_HTTP_PORT: '8080' });
    assert.equal(ok.httpPort, 8080);
    assert.equal(ok.tlsCert, cert.certPath);
  });

  test('files: missing, a directory, not a certificate, a stray key, an encrypted key, too large', () => {
    const load = (o: { tlsCert?: string; tlsKey?: string; tlsCa?: string }) => () => loadTlsMaterial({ tlsCert: cert.certPath, tlsKey: cert.keyPath, ...o });
    assertConfigError(load({ tlsCert: join(dir, 'nope.pem') }), 'PINSTREAM_TLS_CERT: cannot read', 'nope.pem', 'no such file');
    assertConfigError(load({ tlsKey: dir }), 'PINSTREAM_TLS_KEY: cannot read', 'it is a directory');
    assertConfigError(load({ tlsCert: cert.keyPath }), 'PINSTREAM_TLS_CERT', 'holds no PEM certificate');
    assertConfigError(load({ tlsCa: cert.keyPath }), 'PINSTREAM_TLS_CA', 'holds no PEM certificate');
    assertConfigError(load({ tlsKey: cert.certPath }), 'PINSTREAM_TLS_KEY', 'is not a PEM private key');
    assertConfigError(load({ tlsKey: pki.strayKeyPath }), 'PINSTREAM_TLS_KEY', 'is not the private key of the certificate in PINSTREAM_TLS_CERT', 'must be a pair');
    const encrypted = join(dir, 'encrypted.key');
    execFileSync(OPENSSL, ['pkey', '-in', cert.keyPath, '-aes256', '-passout', 'pass:secret', '-out', encrypted]);
    assertConfigError(load({ tlsKey: encrypted }), 'PINSTREAM_TLS_KEY', 'encrypted private key');
    const big = join(dir, 'big.pem');
    execFileSync('truncate', ['-s', String(MAX_TLS_FILE_BYTES + 1), big]);
    assertConfigError(load({ tlsCert: big }), 'PINSTREAM_TLS_CERT', `larger than ${MAX_TLS_FILE_BYTES} bytes`);
    const m = loadTlsMaterial({ tlsCert: cert.certPath, tlsKey: cert.keyPath, tlsCa: pki.intermediatePath })!;
    assert.equal(m.cert.match(/BEGIN CERTIFICATE/g)!.length, 2, 'the certificate, then the intermediate');
    assert.match(m.names, /DNS:pinpoint\.us-east-1\.amazonaws\.com/);
  });

  test('startPinstream refuses a mismatched pair before it opens the data directory', async () => {
    const dataDir = join(dir, 'data-not-made');
    const config = loadConfig({}, { port: 0, dataDir, tlsCert: cert.certPath, tlsKey: pki.strayKeyPath });
    await assert.rejects(startPinstream(config), (e: unknown) => e instanceof ConfigError && /is not the private key/.test(e.message));
    assert.throws(() => execFileSync('ls', [dataDir], { stdio: 'ignore' }), 'no data directory was made');
  });

  test('`pinstream start` with a mismatched pair exits 2 with the message', async () => {
    const out = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const env = { ...process.env, PINSTREAM_PORT: '0', PINSTREAM_DATA_DIR: join(dir, 'cli-data'), PINSTREAM_TLS_CERT: cert.certPath, PINSTREAM_TLS_KEY: pki.strayKeyPath };
      execFile(process.execPath, [CLI, 'start'], { env, cwd: dir, timeout: 20_000 }, (err, _stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr }));
    });
    assert.equal(out.code, 2, out.stderr);
    assert.match(out.stderr, /pinstream: configuration error: PINSTREAM_TLS_KEY \(.*stray\.key\) is not the private key of the certificate in PINSTREAM_TLS_CERT/);
  });
});

describe('certificate reload on SIGHUP (`pinstream start`)', { skip }, () => {
  test('new connections get the new certificate; a bad pair is reported and the previous one stays', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pinstream-tls-reload-'));
    const live = { certPath: join(dir, 'live.pem'), keyPath: join(dir, 'live.key') };
    copyFileSync(cert.certPath, live.certPath);
    copyFileSync(cert.keyPath, live.keyPath);
    const s = await spawnServer({ PINSTREAM_DATA_DIR: join(dir, 'data'), PINSTREAM_TLS_CERT: live.certPath, PINSTREAM_TLS_KEY: live.keyPath, PINSTREAM_TLS_CA: pki.intermediatePath });
    try {
      assert.match(s.url, /^https:/);
      assert.match(s.output(), /TLS certificate for DNS:localhost, IP Address:127\.0\.0\.1, DNS:pinpoint/);
      const fingerprint = (c: ServerCert) => new X509Certificate(execFileSync(OPENSSL, ['x509', '-in', c.certPath], { encoding: 'utf8' })).fingerprint256;
      assert.equal((await httpsGet(s.url, '/health')).peer.fingerprint256, fingerprint(cert));

      const renewed = pki.issue('renewed', NAMES);
      copyFileSync(renewed.certPath, live.certPath);
      copyFileSync(renewed.keyPath, live.keyPath);
      s.child.kill('SIGHUP');
      assert.ok(await until(() => /TLS certificate reloaded/.test(s.output()), 10_000), s.output());
      assert.equal((await httpsGet(s.url, '/health')).peer.fingerprint256, fingerprint(renewed));

      copyFileSync(pki.strayKeyPath, live.keyPath);
      s.child.kill('SIGHUP');
      assert.ok(await until(() => /TLS certificate not reloaded, the previous one stays: PINSTREAM_TLS_KEY/.test(s.output()), 10_000), s.output());
      assert.equal((await httpsGet(s.url, '/health')).peer.fingerprint256, fingerprint(renewed));
    } finally {
      s.child.kill('SIGTERM');
      await waitForExit(s.child);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
