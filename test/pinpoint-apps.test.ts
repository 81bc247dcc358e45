// Pinpoint projects ("apps") through the official SDK client: CreateApp / GetApp / GetApps paging /
// DeleteApp, tags and their limits, application settings. The server runs on a ManualClock that
// starts at real time (so SigV4 skew checks pass) and only moves when a test advances it, which
// makes CreationDate and LastModifiedDate exact.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  CreateAppCommand,
  DeleteAppCommand,
  GetAppCommand,
  GetApplicationSettingsCommand,
  GetAppsCommand,
  GetEndpointCommand,
  ListTagsForResourceCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateApplicationSettingsCommand,
  UpdateEndpointCommand,
  type ApplicationResponse,
} from '@aws-sdk/client-pinpoint';
import { ManualClock } from '../src/clock.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { rejection } from './helpers/rejection.js';
import { assertRestError, signedFetch } from './helpers/signed.js';

const HEX32 = /^[0-9a-f]{32}$/;
const ARN = /^arn:aws:mobiletargeting:us-east-1:000000000000:apps\/([0-9a-f]{32})$/;

/** Asserts an SDK error's type, HTTP status and that its message contains every fragment. */
function assertApiError(err: any, name: string, status: number, ...fragments: string[]): void {
  assert.equal(err.name, name, `error was ${err.name}: ${err.message}`);
  assert.equal(err.$metadata?.httpStatusCode, status);
  for (const f of fragments) assert.ok(String(err.message).includes(f), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(f)}`);
}

describe('Pinpoint apps', () => {
  let t: TestServer;
  const clock = new ManualClock(Date.now());
  const iso = () => new Date(clock.now()).toISOString();

  const create = async (Name: string, tags?: Record<string, string>): Promise<ApplicationResponse> => {
    const out = await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name, tags } }));
    assert.equal(out.$metadata.httpStatusCode, 201);
    return out.ApplicationResponse!;
  };
  const unknownId = 'f'.repeat(32);
  const arnOf = (id: string) => `arn:aws:mobiletargeting:us-east-1:000000000000:apps/${id}`;

  before(async () => {
    t = await startTestServer({ clock });
  });
  after(async () => {
    await t.close();
  });

  // First on purpose: the server is fresh, so GetApps sees exactly the apps created here.
  describe('GetApps paging', () => {
    test('5 apps with page-size 2 come back in 3 pages, each id once, in creation order', async () => {
      const empty = await t.pinpoint.send(new GetAppsCommand({}));
      assert.deepEqual(empty.ApplicationsResponse?.Item, []);
      assert.equal(empty.ApplicationsResponse?.NextToken, undefined);

      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        ids.push((await create(`page-${i}`)).Id!);
        clock.advance(1);
      }
      const pages: string[][] = [];
      let token: string | undefined;
      do {
        const out = await t.pinpoint.send(new GetAppsCommand({ PageSize: '2', Token: token }));
        assert.equal(out.$metadata.httpStatusCode, 200);
        pages.push(out.ApplicationsResponse!.Item!.map((a) => a.Id!));
        token = out.ApplicationsResponse!.NextToken;
        assert.ok(pages.length <= 5, 'paging does not terminate');
      } while (token !== undefined);
      assert.deepEqual(pages, [ids.slice(0, 2), ids.slice(2, 4), ids.slice(4)]);

      // Default page size returns all five in one page, no token.
      const all = await t.pinpoint.send(new GetAppsCommand({}));
      assert.deepEqual(all.ApplicationsResponse!.Item!.map((a) => a.Id), ids);
      assert.equal(all.ApplicationsResponse!.NextToken, undefined);
      assert.deepEqual(all.ApplicationsResponse!.Item!.map((a) => a.Name), ['page-0', 'page-1', 'page-2', 'page-3', 'page-4']);
    });

    for (const bad of ['0', 'abc', '1001']) {
      test(`page-size ${bad} is 400 BadRequestException naming page-size and the 1000 limit`, async () => {
        const err = await rejection(() => t.pinpoint.send(new GetAppsCommand({ PageSize: bad })));
        assertApiError(err, 'BadRequestException', 400, 'page-size', '1000');
      });
    }

    test('page-size 1000 is accepted', async () => {
      const out = await t.pinpoint.send(new GetAppsCommand({ PageSize: '1000' }));
      assert.equal(out.$metadata.httpStatusCode, 200);
    });

    test('a malformed paging token is 400 BadRequestException naming the token', async () => {
      const err = await rejection(() => t.pinpoint.send(new GetAppsCommand({ Token: 'not a token!' })));
      assertApiError(err, 'BadRequestException', 400, 'token');
    });
  });

  describe('CreateApp / GetApp / DeleteApp', () => {
    test('CreateApp answers 201 with Arn, 32-hex Id, Name, tags and CreationDate', async () => {
      const out = await t.pinpoint.send(
        new CreateAppCommand({ CreateApplicationRequest: { Name: 'my-app', tags: { env: 'test', team: 'growth' } } }),
      );
      assert.equal(out.$metadata.httpStatusCode, 201);
      const app = out.ApplicationResponse!;
      assert.match(app.Id!, HEX32);
      const m = ARN.exec(app.Arn!);
      assert.ok(m, `Arn ${app.Arn}`);
      assert.equal(m[1], app.Id);
      assert.deepEqual(app, { Arn: arnOf(app.Id!), Id: app.Id, Name: 'my-app', tags: { env: 'test', team: 'growth' }, CreationDate: iso() });
    });

    test('CreateApp on the wire: body is the ApplicationResponse itself, tags {} when none given', async () => {
      const res = await signedFetch(t.server.url, { method: 'POST', path: '/v1/apps', body: JSON.stringify({ Name: 'raw' }), credentials: t.server.admin });
      assert.equal(res.status, 201);
      assert.deepEqual(Object.keys(res.json).sort(), ['Arn', 'CreationDate', 'Id', 'Name', 'tags']);
      assert.deepEqual(res.json.tags, {});
      assert.equal(res.json.CreationDate, iso());
    });

    test('CreateApp without Name is 400 BadRequestException naming Name', async () => {
      const err = await rejection(() => t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: {} as any })));
      assertApiError(err, 'BadRequestException', 400, 'Name');
    });

    test('CreateApp with a non-string Name is 400 naming Name', async () => {
      const res = await signedFetch(t.server.url, { method: 'POST', path: '/v1/apps', body: '{"Name":42}', credentials: t.server.admin });
      assertRestError(res, 400, 'BadRequestException', /Name/);
    });

    test('malformed JSON to POST /v1/apps is 400 BadRequestException', async () => {
      const res = await signedFetch(t.server.url, { method: 'POST', path: '/v1/apps', body: '{"Name":', credentials: t.server.admin });
      assertRestError(res, 400, 'BadRequestException', /not valid JSON/);
      assert.equal(res.json.RequestID, res.headers.get('x-amzn-requestid'));

      const arr = await signedFetch(t.server.url, { method: 'POST', path: '/v1/apps', body: '["x"]', credentials: t.server.admin });
      assertRestError(arr, 400, 'BadRequestException', /JSON object/);
    });

    test('GetApp returns the created app exactly', async () => {
      const app = await create('get-me', { k: 'v' });
      const out = await t.pinpoint.send(new GetAppCommand({ ApplicationId: app.Id }));
      assert.equal(out.$metadata.httpStatusCode, 200);
      assert.deepEqual(out.ApplicationResponse, app);
    });

    test('GetApp of an unknown id is 404 NotFoundException naming the id', async () => {
      const err = await rejection(() => t.pinpoint.send(new GetAppCommand({ ApplicationId: unknownId })));
      assertApiError(err, 'NotFoundException', 404, unknownId);
      assert.match(err.RequestID ?? '', /^[0-9a-f-]{36}$/);
    });

    test('DeleteApp returns the app, then GetApp is 404 and its endpoints are gone', async () => {
      const app = await create('doomed');
      for (const [id, user] of [['ep-1', 'u1'], ['ep-2', 'u1']]) {
        const out = await t.pinpoint.send(
          new UpdateEndpointCommand({
            ApplicationId: app.Id,
            EndpointId: id,
            EndpointRequest: { ChannelType: 'GCM', Address: `token-${id}`, User: { UserId: user }, Attributes: { color: ['red'] } },
          }),
        );
        assert.equal(out.$metadata.httpStatusCode, 202);
      }
      const before = await t.pinpoint.send(new GetEndpointCommand({ ApplicationId: app.Id, EndpointId: 'ep-1' }));
      assert.equal(before.EndpointResponse?.Address, 'token-ep-1');

      const db = new Database(join(t.dataDir, 'pinstream.db'), { readonly: true, fileMustExist: true });
      try {
        const count = (table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table} WHERE app_id = ?`).get(app.Id) as { n: number }).n;
        assert.equal(count('endpoints'), 2);
        assert.equal(count('app_attribute_names'), 1);

        const del = await t.pinpoint.send(new DeleteAppCommand({ ApplicationId: app.Id }));
        assert.equal(del.$metadata.httpStatusCode, 200);
        assert.deepEqual(del.ApplicationResponse, app);

        const err = await rejection(() => t.pinpoint.send(new GetAppCommand({ ApplicationId: app.Id })));
        assertApiError(err, 'NotFoundException', 404, app.Id!);
        const epErr = await rejection(() => t.pinpoint.send(new GetEndpointCommand({ ApplicationId: app.Id, EndpointId: 'ep-1' })));
        assertApiError(epErr, 'NotFoundException', 404);
        assert.equal(count('endpoints'), 0);
        assert.equal(count('app_attribute_names'), 0);
      } finally {
        db.close();
      }

      const again = await rejection(() => t.pinpoint.send(new DeleteAppCommand({ ApplicationId: app.Id })));
      assertApiError(again, 'NotFoundException', 404);
      const list = await t.pinpoint.send(new GetAppsCommand({ PageSize: '1000' }));
      assert.ok(!list.ApplicationsResponse!.Item!.some((a) => a.Id === app.Id));
    });
  });

  describe('tags', () => {
    test('TagResource merges, ListTagsForResource lists, UntagResource removes two keys', async () => {
      const app = await create('tagged', { a: '1', b: '2' });
      const list = async () => (await t.pinpoint.send(new ListTagsForResourceCommand({ ResourceArn: app.Arn }))).TagsModel?.tags;
      assert.deepEqual(await list(), { a: '1', b: '2' });

      const tagged = await t.pinpoint.send(new TagResourceCommand({ ResourceArn: app.Arn, TagsModel: { tags: { b: 'two', c: '3', d: '4' } } }));
      assert.equal(tagged.$metadata.httpStatusCode, 204);
      assert.deepEqual(await list(), { a: '1', b: 'two', c: '3', d: '4' });

      const untagged = await t.pinpoint.send(new UntagResourceCommand({ ResourceArn: app.Arn, TagKeys: ['a', 'c'] }));
      assert.equal(untagged.$metadata.httpStatusCode, 204);
      assert.deepEqual(await list(), { b: 'two', d: '4' });

      // GetApp shows the same tags.
      const got = await t.pinpoint.send(new GetAppCommand({ ApplicationId: app.Id }));
      assert.deepEqual(got.ApplicationResponse?.tags, { b: 'two', d: '4' });
    });

    test('exactly 50 tags, a 128-character key and a 256-character value are accepted', async () => {
      const tags: Record<string, string> = {};
      for (let i = 0; i < 49; i++) tags[`k${i}`] = 'v';
      tags['K'.repeat(128)] = 'V'.repeat(256);
      const app = await create('at-the-limits', tags);
      assert.equal(Object.keys(app.tags!).length, 50);
      assert.equal(app.tags!['K'.repeat(128)], 'V'.repeat(256));
    });

    test('51 tags on CreateApp is 400 naming tags and 50', async () => {
      const tags: Record<string, string> = {};
      for (let i = 0; i < 51; i++) tags[`k${i}`] = 'v';
      const err = await rejection(() => t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'too-many', tags } })));
      assertApiError(err, 'BadRequestException', 400, 'tags', '51', '50');
    });

    test('TagResource that would take an app past 50 tags is 400 naming 50, and changes nothing', async () => {
      const initial: Record<string, string> = {};
      for (let i = 0; i < 49; i++) initial[`k${i}`] = 'v';
      const app = await create('nearly-full', initial);
      const err = await rejection(() =>
        t.pinpoint.send(new TagResourceCommand({ ResourceArn: app.Arn, TagsModel: { tags: { x: '1', y: '2' } } })),
      );
      assertApiError(err, 'BadRequestException', 400, '50');
      const now = await t.pinpoint.send(new ListTagsForResourceCommand({ ResourceArn: app.Arn }));
      assert.deepEqual(now.TagsModel?.tags, initial);
    });

    test('a tag key of 129 characters is 400 naming 128', async () => {
      const app = await create('long-key');
      const err = await rejection(() =>
        t.pinpoint.send(new TagResourceCommand({ ResourceArn: app.Arn, TagsModel: { tags: { ['k'.repeat(129)]: 'v' } } })),
      );
      assertApiError(err, 'BadRequestException', 400, '129', '128');
      const viaCreate = await rejection(() =>
        t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'x', tags: { ['k'.repeat(129)]: 'v' } } })),
      );
      assertApiError(viaCreate, 'BadRequestException', 400, '128');
    });

    test('a tag value of 257 characters is 400 naming the key and 256', async () => {
      const app = await create('long-value');
      const err = await rejection(() =>
        t.pinpoint.send(new TagResourceCommand({ ResourceArn: app.Arn, TagsModel: { tags: { owner: 'v'.repeat(257) } } })),
      );
      assertApiError(err, 'BadRequestException', 400, 'owner', '257', '256');
    });

    test('the ARN of an unknown app is 404 NotFoundException for all three tag operations', async () => {
      const arn = arnOf(unknownId);
      assertApiError(await rejection(() => t.pinpoint.send(new ListTagsForResourceCommand({ ResourceArn: arn }))), 'NotFoundException', 404);
      assertApiError(
        await rejection(() => t.pinpoint.send(new TagResourceCommand({ ResourceArn: arn, TagsModel: { tags: { a: 'b' } } }))),
        'NotFoundException',
        404,
      );
      assertApiError(await rejection(() => t.pinpoint.send(new UntagResourceCommand({ ResourceArn: arn, TagKeys: ['a'] }))), 'NotFoundException', 404);
      // Right shape, other account: not ours, so not found either.
      const app = await create('other-account');
      const foreign = app.Arn!.replace(':000000000000:', ':123456789012:');
      assertApiError(await rejection(() => t.pinpoint.send(new ListTagsForResourceCommand({ ResourceArn: foreign }))), 'NotFoundException', 404);
    });

    test('a malformed ARN is 400 BadRequestException naming resource-arn', async () => {
      for (const arn of ['not-an-arn', 'arn:aws:s3:::my-bucket', 'arn:aws:mobiletargeting:us-east-1:000000000000:campaigns/x']) {
        const err = await rejection(() => t.pinpoint.send(new ListTagsForResourceCommand({ ResourceArn: arn })));
        assertApiError(err, 'BadRequestException', 400, 'resource-arn');
      }
    });

    test('UntagResource without tagKeys is 400 naming tagKeys', async () => {
      const app = await create('untag-nothing');
      const res = await signedFetch(t.server.url, {
        method: 'DELETE',
        path: `/v1/tags/${encodeURIComponent(app.Arn!)}`,
        credentials: t.server.admin,
      });
      assertRestError(res, 400, 'BadRequestException', /tagKeys/);
    });
  });

  describe('application settings', () => {
    test('GetApplicationSettings of a new app has the default shape', async () => {
      const app = await create('settings-default');
      const res = await signedFetch(t.server.url, { method: 'GET', path: `/v1/apps/${app.Id}/settings`, credentials: t.server.admin });
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, { ApplicationId: app.Id, CampaignHook: {}, Limits: {}, QuietTime: {}, LastModifiedDate: app.CreationDate });

      const out = await t.pinpoint.send(new GetApplicationSettingsCommand({ ApplicationId: app.Id }));
      assert.deepEqual(out.ApplicationSettingsResource, {
        ApplicationId: app.Id,
        CampaignHook: {},
        Limits: {},
        QuietTime: {},
        LastModifiedDate: app.CreationDate,
      });
    });

    test('UpdateApplicationSettings stores Limits, QuietTime and CampaignHook and moves LastModifiedDate', async () => {
      const app = await create('settings-update');
      clock.advance(1500);
      const updatedAt = iso();
      assert.notEqual(updatedAt, app.CreationDate);
      const write = {
        CampaignHook: { LambdaFunctionName: 'arn:aws:lambda:us-east-1:000000000000:function:hook', Mode: 'FILTER' as const },
        Limits: { Daily: 5, MaximumDuration: 60, MessagesPerSecond: 50, Total: 100, Session: 3 },
        QuietTime: { Start: '22:00', End: '07:00' },
        CloudWatchMetricsEnabled: true,
      };
      const up = await t.pinpoint.send(new UpdateApplicationSettingsCommand({ ApplicationId: app.Id, WriteApplicationSettingsRequest: write }));
      assert.equal(up.$metadata.httpStatusCode, 200);
      const expected = {
        ApplicationId: app.Id,
        CampaignHook: write.CampaignHook,
        Limits: write.Limits,
        QuietTime: write.QuietTime,
        LastModifiedDate: updatedAt,
      };
      assert.deepEqual(up.ApplicationSettingsResource, expected);

      const got = await t.pinpoint.send(new GetApplicationSettingsCommand({ ApplicationId: app.Id }));
      assert.deepEqual(got.ApplicationSettingsResource, expected);

      // A later update of one group leaves the others as they were.
      clock.advance(1000);
      const later = await t.pinpoint.send(
        new UpdateApplicationSettingsCommand({ ApplicationId: app.Id, WriteApplicationSettingsRequest: { QuietTime: { Start: '23:00', End: '06:00' } } }),
      );
      assert.deepEqual(later.ApplicationSettingsResource, { ...expected, QuietTime: { Start: '23:00', End: '06:00' }, LastModifiedDate: iso() });
    });

    test('settings of an unknown app are 404 NotFoundException (get and update)', async () => {
      assertApiError(
        await rejection(() => t.pinpoint.send(new GetApplicationSettingsCommand({ ApplicationId: unknownId }))),
        'NotFoundException',
        404,
        unknownId,
      );
      assertApiError(
        await rejection(() =>
          t.pinpoint.send(new UpdateApplicationSettingsCommand({ ApplicationId: unknownId, WriteApplicationSettingsRequest: { Limits: { Daily: 1 } } })),
        ),
        'NotFoundException',
        404,
        unknownId,
      );
    });

    test('UpdateApplicationSettings keeps only modelled members: an unknown one (even nested deep) is ignored, not stored or echoed; past the nesting limit the body is refused', async () => {
      const app = await create('settings-unknown');
      const deep = '{"a":'.repeat(20) + '1' + '}'.repeat(20);
      const put = await signedFetch(t.server.url, {
        method: 'PUT',
        path: `/v1/apps/${app.Id}/settings`,
        body: `{"Limits":{"Daily":7,"Extra":${deep},"__proto__":{"Total":1}},"QuietTime":{"Start":"22:00","Note":"x"},"JourneyLimits":{"TimeframeCap":{"Cap":2,"Days":1,"Junk":[]}}}`,
        credentials: t.server.admin,
      });
      assert.equal(put.status, 200, put.text.slice(0, 300));
      assert.deepEqual(put.json.Limits, { Daily: 7 });
      assert.deepEqual(put.json.QuietTime, { Start: '22:00' });
      assert.deepEqual(put.json.JourneyLimits, { TimeframeCap: { Cap: 2, Days: 1 } });
      const got = await t.pinpoint.send(new GetApplicationSettingsCommand({ ApplicationId: app.Id }));
      assert.deepEqual(got.ApplicationSettingsResource?.Limits, { Daily: 7 });

      const bad = await signedFetch(t.server.url, {
        method: 'PUT',
        path: `/v1/apps/${app.Id}/settings`,
        body: JSON.stringify({ JourneyLimits: { TimeframeCap: { Cap: 'lots' } } }),
        credentials: t.server.admin,
      });
      assertRestError(bad, 400, 'BadRequestException', /JourneyLimits\.TimeframeCap\.Cap must be an integer/);

      const tooDeep = await signedFetch(t.server.url, {
        method: 'PUT',
        path: `/v1/apps/${app.Id}/settings`,
        body: `{"Limits":{"Daily":7,"Extra":${'{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000)}}}`,
        credentials: t.server.admin,
      });
      assertRestError(tooDeep, 400, 'BadRequestException', /nests objects and arrays more than 32 levels deep/);
    });

    test('a settings group that is not an object is 400 naming it', async () => {
      const app = await create('settings-bad');
      const res = await signedFetch(t.server.url, {
        method: 'PUT',
        path: `/v1/apps/${app.Id}/settings`,
        body: JSON.stringify({ Limits: 'lots' }),
        credentials: t.server.admin,
      });
      assertRestError(res, 400, 'BadRequestException', /Limits/);
    });
  });
});
