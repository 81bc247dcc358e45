// The web console as tenant A (issue 12, defects 6 and the isolation suite's console path), in
// Chromium: A signs in with its own key, which may do everything on its project and may list
// streams and roles. Saving A's event stream into B's Kinesis stream with B's role is refused
// with the server's ForbiddenException naming iam:PassRole, shown verbatim; "Automatically create
// a role" is refused too; nothing is saved. Opening B's project by its URL shows the refusal and
// nothing of B.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CreateAppCommand, GetEventStreamCommand } from '@aws-sdk/client-pinpoint';
import { CreateStreamCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import type { Browser, Page } from 'playwright-core';
import { startTestServer, type TestServer } from './helpers/server.js';
import { kinesisClient } from './helpers/kinesis.js';
import { createPinpointRole } from './helpers/eventstream.js';
import { browserUnavailable, launchBrowser, screenshot } from './helpers/browser.js';

describe('console as tenant A', { skip: browserUnavailable() }, () => {
  let ts: TestServer;
  let browser: Browser;
  let page: Page;
  let kinesis: KinesisClient;
  let iam: IAMClient;
  let A = '';
  let B = '';
  let key: { accessKeyId: string; secretAccessKey: string };
  const account = '000000000000';
  const appArn = (id: string) => `arn:aws:mobiletargeting:us-east-1:${account}:apps/${id}`;

  before(async () => {
    ts = await startTestServer();
    kinesis = kinesisClient(ts.server);
    iam = new IAMClient({ endpoint: ts.server.url, region: 'us-east-1', credentials: ts.server.admin, maxAttempts: 1 });
    A = (await ts.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'Project A' } }))).ApplicationResponse!.Id!;
    B = (await ts.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'Project B' } }))).ApplicationResponse!.Id!;
    await kinesis.send(new CreateStreamCommand({ StreamName: 'stream-b', ShardCount: 1 }));
    await createPinpointRole(iam, 'role-b', { resource: `arn:aws:kinesis:us-east-1:${account}:stream/stream-b` });
    await iam.send(new CreateUserCommand({ UserName: 'tenant-a' }));
    await iam.send(
      new PutUserPolicyCommand({
        UserName: 'tenant-a',
        PolicyName: 'tenant',
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Action: 'mobiletargeting:*', Resource: [appArn(A), `${appArn(A)}/*`] },
            // Seeing names is not writing: the form can list every stream and role.
            { Effect: 'Allow', Action: 'mobiletargeting:GetApps', Resource: `arn:aws:mobiletargeting:us-east-1:${account}:apps` },
            { Effect: 'Allow', Action: 'kinesis:ListStreams', Resource: `arn:aws:kinesis:us-east-1:${account}:stream/*` },
            { Effect: 'Allow', Action: 'iam:ListRoles', Resource: `arn:aws:iam::${account}:role/*` },
          ],
        }),
      }),
    );
    const k = (await iam.send(new CreateAccessKeyCommand({ UserName: 'tenant-a' }))).AccessKey!;
    key = { accessKeyId: k.AccessKeyId!, secretAccessKey: k.SecretAccessKey! };
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(15_000);
    await page.goto(ts.server.url + '/');
    await page.fill('input[name=accessKeyId]', key.accessKeyId);
    await page.fill('input[name=secretAccessKey]', key.secretAccessKey);
    await page.click('form.signin button[type=submit]');
    await page.getByRole('heading', { name: 'Projects' }).waitFor();
  });
  after(async () => {
    await browser?.close();
    kinesis?.destroy();
    iam?.destroy();
    await ts?.close();
  });

  test("saving A's event stream into B's stream with B's role shows the server's iam:PassRole refusal, and saves nothing", async () => {
    await page.goto(`${ts.server.url}/console/#/projects/${A}/settings`);
    await page.locator('#eventstream-settings p.empty').waitFor();
    await page.click('button[name=edit]');
    await page.check('input[name=enabled]');
    await page.check('input[name=kind][value=kinesis]');
    await page.locator('select[name=stream] option[value="stream-b"]').waitFor({ state: 'attached' });
    await page.selectOption('select[name=stream]', 'stream-b');
    await page.check('input[name=role-mode][value=existing]');
    const roles = page.locator('select[name=role]');
    await roles.locator('option', { hasText: 'role-b' }).waitFor({ state: 'attached' });
    await roles.selectOption({ label: 'role-b' });
    await page.click('button[name=save]');
    const error = page.locator('#save-status .error');
    await error.waitFor();
    assert.equal(await error.locator('.error-type').innerText(), 'ForbiddenException');
    assert.match(
      await error.locator('.error-message').innerText(),
      new RegExp(`user/tenant-a is not authorized to perform: iam:PassRole on resource: arn:aws:iam::${account}:role/role-b `),
    );
    await screenshot(page, '20-tenant-passrole-refused');

    // "Automatically create a role" is refused as well: the tenant may not create roles.
    await page.check('input[name=role-mode][value=auto]');
    await page.click('button[name=save]');
    await page.locator('#save-status .error .error-message', { hasText: 'iam:CreateRole' }).waitFor();
    await assert.rejects(ts.pinpoint.send(new GetEventStreamCommand({ ApplicationId: A })), { name: 'NotFoundException' }, 'nothing was saved');
  });

  test("B's project opened by its URL shows the refusal and nothing of B", async () => {
    await page.goto(`${ts.server.url}/console/#/projects/${B}/overview`);
    const error = page.locator('.error').first();
    await error.waitFor();
    assert.match(await error.innerText(), /ForbiddenException/);
    assert.match(await error.innerText(), new RegExp(`mobiletargeting:GetApp on resource: ${appArn(B)}`));
    assert.doesNotMatch(await page.locator('body').innerText(), /Project B/);
    await screenshot(page, '21-tenant-other-project');
  });
});
