// The AWS CLI (v1, botocore) against Pinstream: a second, independent client implementation of
// SigV4 and restJson1. The CLI runs as test/helpers/awscli.ts sets it up: nothing from ~/.aws leaks
// in, and every test is reported as skipped when the `aws` command is not installed.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetAppCommand, GetEndpointCommand } from '@aws-sdk/client-pinpoint';
import { aws, awsOk as ok, skipUnlessAws, type AwsCredentials } from './helpers/awscli.js';
import { startTestServer, type TestServer } from './helpers/server.js';

describe('AWS CLI', () => {
  let t: TestServer;
  let tmp: string;

  /** Runs `aws pinpoint <args>` against the test server, as the admin unless told otherwise. */
  const pinpoint = (...args: string[]) => pinpointAs(t.server.admin, ...args);
  const pinpointAs = (credentials: AwsCredentials, ...args: string[]) => aws(['pinpoint', ...args], { credentials, endpoint: t.server.url });

  before(async () => {
    t = await startTestServer();
    tmp = await mkdtemp(join(tmpdir(), 'pinstream-awscli-'));
  });
  after(async () => {
    await t.close();
    await rm(tmp, { recursive: true, force: true });
  });

  let appId: string;
  let appArn: string;

  test('create-app answers the ApplicationResponse', async (c) => {
    if (await skipUnlessAws(c)) return;
    const r = await pinpoint('create-app', '--create-application-request', 'Name=cli-app');
    ok(r);
    const app = r.json.ApplicationResponse;
    assert.match(app.Id, /^[0-9a-f]{32}$/);
    assert.equal(app.Arn, `arn:aws:mobiletargeting:us-east-1:000000000000:apps/${app.Id}`);
    assert.equal(app.Name, 'cli-app');
    assert.deepEqual(app.tags, {});
    assert.match(app.CreationDate, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    appId = app.Id;
    appArn = app.Arn;
    // The JS SDK sees the same app.
    const got = await t.pinpoint.send(new GetAppCommand({ ApplicationId: appId }));
    assert.equal(got.ApplicationResponse?.Name, 'cli-app');
  });

  test('get-apps lists it', async (c) => {
    if (await skipUnlessAws(c)) return;
    assert.ok(appId, 'create-app must have run');
    const r = await pinpoint('get-apps');
    ok(r);
    const items: any[] = r.json.ApplicationsResponse.Item;
    assert.deepEqual(
      items.filter((a) => a.Id === appId).map((a) => a.Name),
      ['cli-app'],
    );
  });

  test('put-events: per-event 202 "Accepted" and 400 for an event with 41 attributes', async (c) => {
    if (await skipUnlessAws(c)) return;
    assert.ok(appId, 'create-app must have run');
    const ts = new Date().toISOString();
    const attributes: Record<string, string> = {};
    for (let i = 0; i < 41; i++) attributes[`attr${i}`] = 'v';
    const request = {
      BatchItem: {
        'cli-endpoint': {
          Endpoint: { ChannelType: 'CUSTOM', Address: 'cli-address' },
          Events: {
            'good-event': { EventType: 'pageView', Timestamp: ts, Attributes: { url: '/home' } },
            'bad-event': { EventType: 'pageView', Timestamp: ts, Attributes: attributes },
          },
        },
      },
    };
    const file = join(tmp, 'events.json');
    await writeFile(file, JSON.stringify(request));
    const r = await pinpoint('put-events', '--application-id', appId, '--events-request', `file://${file}`);
    ok(r);
    const item = r.json.EventsResponse.Results['cli-endpoint'];
    assert.deepEqual(item.EndpointItemResponse, { StatusCode: 202, Message: 'Accepted' });
    assert.deepEqual(Object.keys(item.EventsItemResponse).sort(), ['bad-event', 'good-event']);
    assert.deepEqual(item.EventsItemResponse['good-event'], { StatusCode: 202, Message: 'Accepted' });
    assert.equal(item.EventsItemResponse['bad-event'].StatusCode, 400);
    assert.match(item.EventsItemResponse['bad-event'].Message, /40/);

    const ep = await t.pinpoint.send(new GetEndpointCommand({ ApplicationId: appId, EndpointId: 'cli-endpoint' }));
    assert.equal(ep.EndpointResponse?.Address, 'cli-address');
  });

  test('tag-resource / list-tags-for-resource / untag-resource with an ARN in the path', async (c) => {
    if (await skipUnlessAws(c)) return;
    assert.ok(appArn, 'create-app must have run');
    ok(await pinpoint('tag-resource', '--resource-arn', appArn, '--tags-model', 'tags={team=growth,env=dev,tier=1}'));
    const listed = await pinpoint('list-tags-for-resource', '--resource-arn', appArn);
    ok(listed);
    assert.deepEqual(listed.json.TagsModel.tags, { team: 'growth', env: 'dev', tier: '1' });
    ok(await pinpoint('untag-resource', '--resource-arn', appArn, '--tag-keys', 'env', 'tier'));
    const after = await pinpoint('list-tags-for-resource', '--resource-arn', appArn);
    ok(after);
    assert.deepEqual(after.json.TagsModel.tags, { team: 'growth' });
  });

  test('get-app of an unknown id exits non-zero with NotFoundException on stderr', async (c) => {
    if (await skipUnlessAws(c)) return;
    const r = await pinpoint('get-app', '--application-id', 'f'.repeat(32));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /NotFoundException/);
    assert.match(r.stderr, /GetApp/);
    assert.equal(r.stdout.trim(), '');
  });

  test('wrong credentials exit non-zero with the AWS error type on stderr', async (c) => {
    if (await skipUnlessAws(c)) return;
    const r = await pinpointAs({ accessKeyId: t.server.admin.accessKeyId, secretAccessKey: 'wrong-secret-0123456789abcdef' }, 'get-apps');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /InvalidSignatureException/);
  });
});
