// Issue 14 item 5, Amplify JS v6, end to end in Debian's Chromium: an Amplify app
// (test/browser-apps/amplify-app.js, bundled here with esbuild) configured with the
// amplify_outputs.json that `pinstream identity-pool create` prints (Auth: identity pool with
// guest access; Analytics: Pinpoint app id and region), which never names Pinstream: Amplify
// resolves https://cognito-identity.us-east-1.amazonaws.com and https://pinpoint.us-east-1.amazonaws.com
// from the region. The test routes those names to Pinstream as a DNS record would (Chromium's
// --host-resolver-rules: Host, SNI and the signed host stay AWS's names) and Pinstream serves TLS
// with a certificate for them from a test CA (Chromium trusts its key through
// --ignore-certificate-errors-spki-list). Nothing is intercepted or stubbed: GetId and
// GetCredentialsForIdentity answered by Pinstream's Cognito, identifyUser's UpdateEndpoint 202,
// every recorded event Accepted (read off the responses Chromium got), the endpoint stored with
// its user, the events in analytics and in records carrying the Cognito ids. The second suite
// runs the same app and checks with Pinstream on plain HTTP behind a reverse proxy that holds the
// certificate and forwards requests unchanged, Host included. Runs the guide's steps in
// docs/migration.md "Amplify JS" (the DNS/TLS recipe and the reverse proxy).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page, Response as PwResponse } from 'playwright-core';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { CreateAppCommand, GetUserEndpointsCommand, PinpointClient } from '@aws-sdk/client-pinpoint';
import { startTestServer, type TestServer } from './helpers/server.js';
import { browserUnavailable, launchBrowser, screenshot } from './helpers/browser.js';
import { makePki, opensslMissing, type ServerCert, type TestPki } from './helpers/certs.js';
import { analyticsEventCount, bundleApp, guestAccessByCli, ingestRecords, serveApp, type AppOrigin, type BundledApp, type GuestAccessConfig } from './helpers/guest-apps.js';
import { until } from './helpers/firehose.js';

const skip = browserUnavailable() ?? opensslMissing();
const REGION = 'us-east-1';
const COGNITO_HOST = `cognito-identity.${REGION}.amazonaws.com`;
const PINPOINT_HOST = `pinpoint.${REGION}.amazonaws.com`;
const EVENT_TYPE = 'amplify.purchase';
const EVENT_COUNT = 4;
/**
 * Bound on waiting for the server to hold what the page sent and for Chromium to report the
 * answers. Amplify flushes its buffer every 5 s by itself (FLUSH_INTERVAL); flushEvents() is asked
 * first, so this is only reached when something is broken.
 */
const DELIVERY_TIMEOUT_MS = 20_000;

/** base64(sha256(SubjectPublicKeyInfo)) of a certificate's key: what Chromium's SPKI allow-list takes. */
function spkiHash(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

interface Seen {
  host: string;
  method: string;
  path: string;
  target: string | undefined;
  status: number;
  serverPort: number | undefined;
  body: string;
}

type Win = Window & {
  appReady?: boolean;
  configureApp(o: object): { auth?: Record<string, unknown>; analytics?: Record<string, unknown> };
  guestSession(): Promise<{ identityId?: string; accessKeyId?: string; hasSessionToken: boolean }>;
  identify(userId: string, email: string): Promise<void>;
  recordEvents(name: string, count: number): void;
  flush(): Promise<void>;
};

/** The app is bundled once for both suites. */
let bundled: Promise<BundledApp> | undefined;
const amplifyBundle = () => (bundled ??= bundleApp('amplify-app'));
after(async () => {
  if (bundled) await (await bundled).remove();
});

/**
 * A reverse proxy as a deployment might run one: TLS for the AWS names, each request forwarded
 * to Pinstream's plain-HTTP port unchanged (method, path and query, every header, Host included),
 * and the answer sent back unchanged.
 */
async function reverseProxy(cert: ServerCert, chainPath: string, upstreamPort: number): Promise<{ port: number; close(): Promise<void> }> {
  const server = https.createServer({ cert: readFileSync(cert.certPath, 'utf8') + readFileSync(chainPath, 'utf8'), key: readFileSync(cert.keyPath) }, (req, res) => {
    const up = http.request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * `tls`: Pinstream itself serves TLS for the AWS names (the guide's DNS/TLS recipe); `proxy`: it
 * speaks plain HTTP behind a reverse proxy holding that certificate (the guide's alternative).
 */
function amplifySuite(title: string, reach: 'tls' | 'proxy'): void {
  describe(title, { skip }, () => {
    let pki: TestPki;
    let t: TestServer;
    let admin: PinpointClient;
    let proxy: { port: number; close(): Promise<void> } | undefined;
    let origin: AppOrigin;
    let browser: Browser;
    let page: Page;
    let appId: string;
    let guest: GuestAccessConfig;
    let port: number;
    const seen: Seen[] = [];
    const pending: Array<Promise<void>> = [];
    const pageErrors: string[] = [];
    const userId = `amplify-user-${randomUUID()}`;

    before(async () => {
      pki = makePki();
      const cert = pki.issue('aws-names', [COGNITO_HOST, PINPOINT_HOST, '127.0.0.1']);
      if (reach === 'tls') {
        t = await startTestServer({ config: { region: REGION, tlsCert: cert.certPath, tlsKey: cert.keyPath, tlsCa: pki.intermediatePath } });
        port = Number(new URL(t.server.url).port);
      } else {
        t = await startTestServer({ config: { region: REGION } });
        proxy = await reverseProxy(cert, pki.intermediatePath, Number(new URL(t.server.url).port));
        port = proxy.port;
      }
      admin = new PinpointClient({
        endpoint: t.server.url,
        region: REGION,
        credentials: t.server.admin,
        maxAttempts: 1,
        requestHandler: new NodeHttpHandler({ httpsAgent: new https.Agent({ ca: pki.rootPem }) }),
      });
      appId = (await admin.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'amplify-web' } }))).ApplicationResponse!.Id!;
      // The operator's CLI trusts the deployment's CA as any Node program does.
      guest = await guestAccessByCli(t.server.url, t.server.admin, appId, { NODE_EXTRA_CA_CERTS: join(pki.dir, 'root.pem') });
      let bundle: BundledApp;
      [bundle, browser] = await Promise.all([
        amplifyBundle(),
        launchBrowser([
          `--host-resolver-rules=MAP ${COGNITO_HOST} 127.0.0.1:${port}, MAP ${PINPOINT_HOST} 127.0.0.1:${port}`,
          `--ignore-certificate-errors-spki-list=${spkiHash(readFileSync(cert.certPath, 'utf8'))}`,
        ]),
      ]);
      origin = await serveApp(bundle);
      page = await browser.newPage();
      page.on('pageerror', (e) => pageErrors.push(String(e)));
      // Observing what Chromium got back (no routing, no interception).
      page.on('response', (r: PwResponse) => {
        const u = new URL(r.url());
        if (!u.hostname.endsWith('.amazonaws.com') || r.request().method() === 'OPTIONS') return;
        pending.push(
          (async () => {
            const addr = await r.serverAddr().catch(() => null);
            seen.push({
              host: u.hostname,
              method: r.request().method(),
              path: u.pathname,
              target: r.request().headers()['x-amz-target'],
              status: r.status(),
              serverPort: addr?.port,
              body: await r.text().catch(() => ''),
            });
          })(),
        );
      });
      await page.goto(origin.url);
      await page.waitForFunction(() => (window as unknown as Win).appReady === true);
    });
    after(async () => {
      if (page) await screenshot(page, `browser-amplify-${reach}`).catch(() => {});
      await browser?.close();
      await origin?.close();
      admin?.destroy();
      await proxy?.close();
      await t?.close();
      if (pki) rmSync(pki.dir, { recursive: true, force: true });
    });

    const settled = async () => {
      await Promise.all(pending);
      return seen;
    };

    test('Amplify.configure takes the amplify_outputs.json the CLI printed: guest identity pool and Pinpoint app', async () => {
      assert.equal(guest.AmplifyOutputs.analytics.amazon_pinpoint.app_id, appId);
      const c = await page.evaluate((o) => (window as unknown as Win).configureApp(o), guest.AmplifyOutputs);
      assert.equal(c.auth?.identityPoolId, guest.IdentityPoolId);
      assert.equal(c.auth?.allowGuestAccess, true);
      assert.equal(c.analytics?.appId, appId);
      assert.equal(c.analytics?.region, REGION);
    });

    test("fetchAuthSession: a guest identity and credentials from Pinstream's Cognito, reached as cognito-identity.us-east-1.amazonaws.com", async () => {
      const s = await page.evaluate(() => (window as unknown as Win).guestSession());
      assert.equal(s.identityId?.split(':')[0], REGION);
      assert.match(s.identityId ?? '', /^[a-z0-9-]+:[0-9a-f-]{36}$/);
      assert.match(s.accessKeyId ?? '', /^ASIA[A-Z0-9]{16}$/);
      assert.ok(s.hasSessionToken);
      // Chromium reports responses to this process on its own schedule: wait for both to be seen.
      const cognito = await until(async () => {
        const c = (await settled()).filter((x) => x.host === COGNITO_HOST);
        return c.length >= 2 ? c : undefined;
      }, 'the Cognito answers', DELIVERY_TIMEOUT_MS);
      assert.deepEqual(
        cognito.map((x) => [x.target, x.status]),
        [
          ['AWSCognitoIdentityService.GetId', 200],
          ['AWSCognitoIdentityService.GetCredentialsForIdentity', 200],
        ],
      );
      assert.ok(cognito.every((x) => x.serverPort === port), 'answered by this server');
      assert.equal(JSON.parse(cognito[0].body).IdentityId, s.identityId);
    });

    test('identifyUser: UpdateEndpoint 202 at pinpoint.us-east-1.amazonaws.com, the endpoint stored with its user', async () => {
      await page.evaluate((u) => (window as unknown as Win).identify(u, 'tester@example.com'), userId);
      const updates = await until(async () => {
        const u = (await settled()).filter((x) => x.host === PINPOINT_HOST && x.method === 'PUT');
        return u.length >= 1 ? u : undefined;
      }, 'the UpdateEndpoint answer', DELIVERY_TIMEOUT_MS);
      for (const u of updates) {
        assert.equal(u.status, 202);
        assert.match(u.path, new RegExp(`^/v1/apps/${appId}/endpoints/[^/]+$`));
        assert.equal(u.serverPort, port);
      }
      const eps = (await admin.send(new GetUserEndpointsCommand({ ApplicationId: appId, UserId: userId }))).EndpointsResponse!.Item!;
      assert.equal(eps.length, 1);
      assert.equal(eps[0].User?.UserId, userId);
      assert.deepEqual(eps[0].Attributes?.plan, ['trial']);
      assert.equal(`/v1/apps/${appId}/endpoints/${eps[0].Id}`, updates[updates.length - 1].path);
    });

    test('record + flushEvents: every event Accepted, in analytics, records carrying the Cognito ids', async () => {
      await page.evaluate(([name, n]) => (window as unknown as Win).recordEvents(name, n), [EVENT_TYPE, EVENT_COUNT] as const);
      await page.evaluate(() => (window as unknown as Win).flush());
      // Both ends: the server holds the events and Chromium got the answers to every PutEvents.
      const eventAnswers = async () => {
        const puts = (await settled()).filter((x) => x.host === PINPOINT_HOST && x.method === 'POST' && x.path === `/v1/apps/${appId}/events`);
        const items = puts.flatMap((p) =>
          p.status === 202 ? Object.values(JSON.parse(p.body).Results as Record<string, { EventsItemResponse: Record<string, { StatusCode: number; Message: string }> }>).flatMap((r) => Object.values(r.EventsItemResponse)) : [],
        );
        return { puts, items };
      };
      const mine = await until(async () => {
        const rs = (await ingestRecords(t.server, appId)).filter((r) => r.event_type === EVENT_TYPE);
        return rs.length >= EVENT_COUNT && (await eventAnswers()).items.length >= EVENT_COUNT ? rs : undefined;
      }, `${EVENT_COUNT} ${EVENT_TYPE} events on the server and their answers in the page`, DELIVERY_TIMEOUT_MS);
      assert.equal(mine.length, EVENT_COUNT);
      const { puts, items } = await eventAnswers();
      for (const p of puts) assert.equal(p.status, 202, p.body);
      assert.equal(items.length, EVENT_COUNT);
      for (const r of items) assert.deepEqual(r, { StatusCode: 202, Message: 'Accepted' });

      const endpointId = (await admin.send(new GetUserEndpointsCommand({ ApplicationId: appId, UserId: userId }))).EndpointsResponse!.Item![0].Id;
      const identityId = JSON.parse(seen.find((x) => x.target === 'AWSCognitoIdentityService.GetId')!.body).IdentityId;
      for (const r of mine) {
        assert.equal(r.client.client_id, endpointId);
        assert.equal(r.client.cognito_id, identityId);
        assert.equal(r.application.cognito_identity_pool_id, guest.IdentityPoolId);
        assert.equal(r.session?.session_id !== undefined, true, 'Amplify sends a session');
      }
      assert.deepEqual(mine.map((r) => r.attributes.n).sort(), Array.from({ length: EVENT_COUNT }, (_, i) => String(i)));
      assert.equal(await analyticsEventCount(t.server, appId, EVENT_TYPE), EVENT_COUNT);
    });

    test('no AWS name reached anything but this server, and the page raised no errors', async () => {
      const all = await settled();
      assert.ok(all.length > 0);
      assert.deepEqual([...new Set(all.map((x) => x.host))].sort(), [COGNITO_HOST, PINPOINT_HOST].sort());
      assert.ok(all.every((x) => x.serverPort === port));
      assert.deepEqual(pageErrors, []);
    });
  });
}

amplifySuite('Amplify JS v6 app reaching Pinstream under AWS names (DNS, Pinstream serving TLS)', 'tls');
amplifySuite('Amplify JS v6 app reaching Pinstream under AWS names (DNS, a reverse proxy keeping Host in front of plain HTTP)', 'proxy');
