// Issue 14 item 5, browser apps with the AWS SDK v3, end to end in Debian's Chromium: a page whose
// app (test/browser-apps/sdk-app.js, bundled here with esbuild) uses
// @aws-sdk/client-cognito-identity, fromCognitoIdentityPool from @aws-sdk/credential-providers and
// @aws-sdk/client-pinpoint with the endpoints `pinstream identity-pool create` prints, served from
// its own origin so every call is cross-origin: real CORS preflights, no request interception.
// Guest credentials, UpdateEndpoint and PutEvents accepted; the endpoint stored, the events in
// analytics and in event-stream records with client.cognito_id and
// application.cognito_identity_pool_id; a call the guest role may not make fails in the page with
// the error the SDK in Node sees (the CORS answer exposes the error type). Runs the guide's steps
// in docs/migration.md "Browser apps with the AWS SDK v3".

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Browser, CDPSession, Page } from 'playwright-core';
import { CreateAppCommand, GetEndpointCommand, PinpointClient } from '@aws-sdk/client-pinpoint';
import { startTestServer, type TestServer } from './helpers/server.js';
import { browserUnavailable, launchBrowser, screenshot } from './helpers/browser.js';
import { analyticsEventCount, bundleApp, guestAccessByCli, ingestRecords, serveApp, type AppOrigin, type BundledApp, type GuestAccessConfig } from './helpers/guest-apps.js';
import { until } from './helpers/firehose.js';

const skip = browserUnavailable();
const REGION = 'us-east-1';
/**
 * The package's own browser map (its package.json "browser" field) names this entry; esbuild does
 * not apply that map to the package's main entry, so the app's bundler config says it (as
 * docs/migration.md tells).
 */
const CREDENTIAL_PROVIDERS_ALIAS = { '@aws-sdk/credential-providers': '@aws-sdk/credential-providers/dist-es/index.browser.js' };
const EVENT_TYPE = 'browser.sdk.click';
const EVENT_COUNT = 3;

interface AppResult {
  identityId: string;
  accessKeyId: string;
  hasSessionToken: boolean;
  updateStatus: number;
  updateMessage: string;
  putStatus: number;
  results: Record<string, { EndpointItemResponse?: { StatusCode?: number; Message?: string }; EventsItemResponse?: Record<string, { StatusCode?: number; Message?: string }> }>;
}

interface Preflight {
  url: string;
  method: string;
  headers: string;
}

describe('browser app with the AWS SDK v3 and Cognito guest credentials', { skip }, () => {
  let t: TestServer;
  let bundle: BundledApp;
  let origin: AppOrigin;
  let browser: Browser;
  let page: Page;
  let cdp: CDPSession;
  let appId: string;
  let guest: GuestAccessConfig;
  const preflights: Preflight[] = [];
  const pageErrors: string[] = [];
  const endpointId = `browser-${randomUUID()}`;
  const userId = `user-${randomUUID()}`;
  const eventIds = Array.from({ length: EVENT_COUNT }, () => randomUUID());
  let result: AppResult;

  before(async () => {
    t = await startTestServer({ config: { region: REGION } });
    [bundle, browser] = await Promise.all([bundleApp('sdk-app', CREDENTIAL_PROVIDERS_ALIAS), launchBrowser()]);
    origin = await serveApp(bundle);
    appId = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'browser-sdk' } }))).ApplicationResponse!.Id!;
    guest = await guestAccessByCli(t.server.url, t.server.admin, appId);
    page = await browser.newPage();
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    // Watching the DevTools network log only (no interception): Chromium reports each CORS
    // preflight it sends as a request of type Preflight.
    cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    cdp.on('Network.requestWillBeSent', (e) => {
      if (e.type === 'Preflight' || e.request.method === 'OPTIONS') {
        preflights.push({ url: e.request.url, method: e.request.headers['Access-Control-Request-Method'] ?? '', headers: e.request.headers['Access-Control-Request-Headers'] ?? '' });
      }
    });
    await page.goto(origin.url);
    await page.waitForFunction(() => (window as unknown as { appReady?: boolean }).appReady === true);
    result = await page.evaluate(
      (a) => (window as unknown as { runApp(a: object): Promise<AppResult> }).runApp(a),
      {
        cognitoEndpoint: guest.Endpoints.CognitoIdentity,
        pinpointEndpoint: guest.Endpoints.Pinpoint,
        region: guest.Region,
        identityPoolId: guest.IdentityPoolId,
        appId,
        endpointId,
        userId,
        eventType: EVENT_TYPE,
        eventIds,
      },
    );
  });
  after(async () => {
    if (page) await screenshot(page, 'browser-sdk').catch(() => {});
    await browser?.close();
    await origin?.close();
    await bundle?.remove();
    await t?.close();
  });

  test('the page and the server are different origins, and the bundle holds the SDK', () => {
    assert.notEqual(new URL(origin.url).origin, new URL(t.server.url).origin);
    assert.equal(guest.Endpoints.Pinpoint, t.server.url);
    assert.ok(bundle.bytes > 100_000, `bundle is ${bundle.bytes} bytes`);
  });

  test('fromCognitoIdentityPool gets a guest identity of the pool and temporary credentials', () => {
    assert.equal(result.identityId.split(':')[0], REGION);
    assert.match(result.identityId, /^[a-z0-9-]+:[0-9a-f-]{36}$/);
    assert.match(result.accessKeyId, /^ASIA[A-Z0-9]{16}$/);
    assert.ok(result.hasSessionToken);
    assert.deepEqual(pageErrors, []);
  });

  test('UpdateEndpoint is 202 Accepted and the endpoint is stored with its user', async () => {
    assert.equal(result.updateStatus, 202);
    assert.equal(result.updateMessage, 'Accepted');
    const ep = (await t.pinpoint.send(new GetEndpointCommand({ ApplicationId: appId, EndpointId: endpointId }))).EndpointResponse!;
    assert.equal(ep.User?.UserId, userId);
    assert.deepEqual(ep.Attributes?.browser, ['Chrome']);
    assert.equal(ep.Demographic?.Platform, 'Web');
  });

  test('PutEvents accepts every event', () => {
    assert.equal(result.putStatus, 202);
    const item = result.results[endpointId];
    assert.ok(item, JSON.stringify(result.results));
    assert.deepEqual(item.EndpointItemResponse, { StatusCode: 202, Message: 'Accepted' });
    assert.deepEqual(Object.keys(item.EventsItemResponse ?? {}).sort(), [...eventIds].sort());
    for (const r of Object.values(item.EventsItemResponse!)) assert.deepEqual(r, { StatusCode: 202, Message: 'Accepted' });
  });

  test('the events are in analytics and their records carry the Cognito identity and pool', async () => {
    assert.equal(await analyticsEventCount(t.server, appId, EVENT_TYPE), EVENT_COUNT);
    const mine = (await ingestRecords(t.server, appId)).filter((r) => r.event_type === EVENT_TYPE);
    assert.equal(mine.length, EVENT_COUNT);
    for (const r of mine) {
      assert.equal(r.client.client_id, endpointId);
      assert.equal(r.client.cognito_id, result.identityId);
      assert.equal(r.application.cognito_identity_pool_id, guest.IdentityPoolId);
      assert.equal(r.application.app_id, appId);
    }
  });

  test('CORS for real: Chromium preflighted the Cognito and Pinpoint calls and was granted them', () => {
    const server = new URL(t.server.url).origin;
    const to = (method: string, path: RegExp) => preflights.filter((p) => new URL(p.url).origin === server && p.method === method && path.test(new URL(p.url).pathname));
    // Cognito's awsJson calls (GetId, GetCredentialsForIdentity) carry x-amz-target.
    assert.ok(to('POST', /^\/$/).some((p) => /x-amz-target/i.test(p.headers)), JSON.stringify(preflights));
    // Signed Pinpoint calls carry the session token header.
    assert.ok(to('PUT', new RegExp(`^/v1/apps/${appId}/endpoints/`)).some((p) => /x-amz-security-token/i.test(p.headers)), JSON.stringify(preflights));
    assert.ok(to('POST', new RegExp(`^/v1/apps/${appId}/events$`)).some((p) => /authorization/i.test(p.headers)), JSON.stringify(preflights));
  });

  test('a call the guest role may not make fails in the page with the error the SDK in Node sees', async () => {
    const inPage = await page.evaluate(
      ([a, e]) => (window as unknown as { tryGetEndpoint(a: string, e: string): Promise<{ allowed: boolean; name?: string; status?: number }> }).tryGetEndpoint(a, e),
      [appId, endpointId] as const,
    );
    const creds = await page.evaluate(() => (window as unknown as { guestCredentials(): Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken: string }> }).guestCredentials());
    const node = new PinpointClient({ endpoint: t.server.url, region: REGION, credentials: creds, maxAttempts: 1 });
    let nodeError: { name: string; status?: number } | undefined;
    try {
      await node.send(new GetEndpointCommand({ ApplicationId: appId, EndpointId: endpointId }));
    } catch (e) {
      nodeError = { name: (e as Error).name, status: (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode };
    } finally {
      node.destroy();
    }
    assert.ok(nodeError, 'the guest role must not be able to GetEndpoint');
    assert.equal(inPage.allowed, false);
    assert.equal(inPage.status, nodeError.status);
    assert.equal(inPage.name, nodeError.name);
    assert.notEqual(inPage.name, 'Error', 'the page could read the error type');
  });
});
