// Endpoints through the official SDK: update/get/delete, user endpoints, Pinpoint's merge rules,
// the per-user cap, INACTIVE on address reuse, and every endpoint quota.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateAppCommand,
  DeleteEndpointCommand,
  DeleteUserEndpointsCommand,
  GetEndpointCommand,
  GetUserEndpointsCommand,
  UpdateEndpointCommand,
  UpdateEndpointsBatchCommand,
  type EndpointRequest,
  type EndpointBatchItem,
} from '@aws-sdk/client-pinpoint';
import { startTestServer, type TestServer } from './helpers/server.js';
import { assertRestError, signedFetch } from './helpers/signed.js';
import {
  MAX_ATTRIBUTE_NAMES_PER_APP,
  MAX_ENDPOINTS_PER_BATCH,
  MAX_ENDPOINTS_PER_USER,
  MAX_ENDPOINT_ATTRIBUTE_NAME_LENGTH,
  MAX_ENDPOINT_ATTRIBUTE_VALUES,
  MAX_ENDPOINT_ATTRIBUTE_VALUE_LENGTH,
  MAX_ENDPOINT_BATCH_REQUEST_BYTES,
  MAX_ENDPOINT_BYTES,
} from '../src/pinpoint/limits.js';

let t: TestServer;

before(async () => {
  t = await startTestServer();
});
after(() => t.close());

async function newApp(): Promise<string> {
  const r = await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'endpoints' } }));
  return r.ApplicationResponse!.Id!;
}
const update = (ApplicationId: string, EndpointId: string, EndpointRequest: EndpointRequest) =>
  t.pinpoint.send(new UpdateEndpointCommand({ ApplicationId, EndpointId, EndpointRequest }));
const get = async (ApplicationId: string, EndpointId: string) =>
  (await t.pinpoint.send(new GetEndpointCommand({ ApplicationId, EndpointId }))).EndpointResponse!;

async function badRequest(p: Promise<unknown>, pattern: RegExp) {
  await assert.rejects(p, (e: any) => {
    assert.equal(e.name, 'BadRequestException', e.message);
    assert.equal(e.$metadata.httpStatusCode, 400);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('UpdateEndpoint and GetEndpoint', () => {
  test('UpdateEndpoint answers 202 {Message:"Accepted", RequestID} and GetEndpoint returns the EndpointResponse', async () => {
    const app = await newApp();
    const res = await signedFetch(t.server.url, {
      method: 'PUT',
      path: `/v1/apps/${app}/endpoints/dev-1`,
      credentials: t.server.admin,
      body: JSON.stringify({ ChannelType: 'EMAIL', Address: 'a@example.com', Demographic: { Platform: 'web' } }),
    });
    assert.equal(res.status, 202);
    assert.deepEqual(res.json, { Message: 'Accepted', RequestID: res.headers.get('x-amzn-requestid') });
    const e = await get(app, 'dev-1');
    assert.equal(e.ApplicationId, app);
    assert.equal(e.Id, 'dev-1');
    assert.equal(e.ChannelType, 'EMAIL');
    assert.equal(e.Address, 'a@example.com');
    assert.equal(e.EndpointStatus, 'ACTIVE');
    assert.equal(e.OptOut, 'NONE');
    assert.match(e.CohortId!, /^\d{1,2}$/);
    assert.ok(Number(e.CohortId) >= 0 && Number(e.CohortId) <= 99);
    assert.ok(!Number.isNaN(Date.parse(e.CreationDate!)));
    assert.ok(!Number.isNaN(Date.parse(e.EffectiveDate!)));
    assert.deepEqual(e.Demographic, { Platform: 'web' });
  });

  test('endpoint ids are case-insensitive and keep the casing they were created with', async () => {
    const app = await newApp();
    await update(app, 'MixedCase', { Attributes: { a: ['1'] } });
    await update(app, 'mixedcase', { Attributes: { b: ['2'] } });
    const e = await get(app, 'MIXEDCASE');
    assert.equal(e.Id, 'MixedCase');
    assert.deepEqual(e.Attributes, { a: ['1'], b: ['2'] });
  });

  test('an update replaces the values of the attributes it names and keeps the others', async () => {
    const app = await newApp();
    await update(app, 'e', { Attributes: { color: ['red', 'blue'], size: ['L'] }, Metrics: { visits: 1, score: 5 }, User: { UserId: 'u', UserAttributes: { tier: ['gold'] } } });
    await update(app, 'e', { Attributes: { color: ['green'] }, Metrics: { visits: 2 }, User: { UserAttributes: { plan: ['pro'] } } });
    const e = await get(app, 'e');
    assert.deepEqual(e.Attributes, { color: ['green'], size: ['L'] });
    assert.deepEqual(e.Metrics, { visits: 2, score: 5 });
    assert.deepEqual(e.User, { UserId: 'u', UserAttributes: { tier: ['gold'], plan: ['pro'] } });
  });

  test('another endpoint updated with the same Address makes the old one INACTIVE', async () => {
    const app = await newApp();
    await update(app, 'old', { ChannelType: 'GCM', Address: 'token-123' });
    await update(app, 'new', { ChannelType: 'GCM', Address: 'token-123' });
    assert.equal((await get(app, 'old')).EndpointStatus, 'INACTIVE');
    assert.equal((await get(app, 'new')).EndpointStatus, 'ACTIVE');
    // Updating the old one again makes it active (status is set ACTIVE on update).
    await update(app, 'old', { ChannelType: 'GCM', Address: 'token-456' });
    assert.equal((await get(app, 'old')).EndpointStatus, 'ACTIVE');
  });

  test('GetEndpoint and DeleteEndpoint of an unknown endpoint are 404 NotFoundException', async () => {
    const app = await newApp();
    for (const cmd of [new GetEndpointCommand({ ApplicationId: app, EndpointId: 'none' }), new DeleteEndpointCommand({ ApplicationId: app, EndpointId: 'none' })]) {
      await assert.rejects(t.pinpoint.send(cmd as any), (e: any) => e.name === 'NotFoundException' && e.$metadata.httpStatusCode === 404);
    }
    await assert.rejects(get('no-such-app', 'x'), (e: any) => e.name === 'NotFoundException');
  });

  test('DeleteEndpoint answers 202 with the deleted endpoint', async () => {
    const app = await newApp();
    await update(app, 'gone', { ChannelType: 'SMS', Address: '+15555550100' });
    const r = await t.pinpoint.send(new DeleteEndpointCommand({ ApplicationId: app, EndpointId: 'gone' }));
    assert.equal(r.$metadata.httpStatusCode, 202);
    assert.equal(r.EndpointResponse!.Address, '+15555550100');
    await assert.rejects(get(app, 'gone'), (e: any) => e.name === 'NotFoundException');
  });

  test('invalid values are 400s naming the field', async () => {
    const app = await newApp();
    await badRequest(update(app, 'e', { ChannelType: 'PIGEON' as any }), /^1 validation error detected: ChannelType must satisfy enum value set: \[PUSH, GCM.*\]; got 'PIGEON'$/);
    await badRequest(update(app, 'e', { OptOut: 'SOME' }), /OptOut must be one of ALL, NONE/);
    await badRequest(update(app, 'e', { EffectiveDate: 'soon' }), /EffectiveDate "soon" is not an ISO 8601/);
    await badRequest(update(app, 'e', { Location: { Latitude: 91 } }), /Latitude must be between -90 and 90/);
    await badRequest(update(app, 'e{1}', {}), /must not contain \$, \{ or \}/);
  });
});

describe('endpoint quotas', () => {
  test(`attribute names longer than ${MAX_ENDPOINT_ATTRIBUTE_NAME_LENGTH} characters are rejected`, async () => {
    const app = await newApp();
    await badRequest(update(app, 'e', { Attributes: { ['n'.repeat(51)]: ['v'] } }), /51 characters; attribute names must be 1 to 50/);
    await badRequest(update(app, 'e', { Metrics: { ['m'.repeat(51)]: 1 } }), /Metrics name .* 51 characters/);
    await badRequest(update(app, 'e', { User: { UserAttributes: { ['u'.repeat(51)]: ['v'] } } }), /UserAttributes name .* 51 characters/);
    await update(app, 'e', { Attributes: { ['n'.repeat(50)]: ['v'] } });
  });

  test(`attribute values longer than ${MAX_ENDPOINT_ATTRIBUTE_VALUE_LENGTH} characters are rejected`, async () => {
    const app = await newApp();
    await badRequest(update(app, 'e', { Attributes: { a: ['v'.repeat(101)] } }), /value of 101 characters; attribute values must be at most 100/);
    await update(app, 'e', { Attributes: { a: ['v'.repeat(100)] } });
  });

  test(`more than ${MAX_ENDPOINT_ATTRIBUTE_VALUES} values for one attribute is rejected`, async () => {
    const app = await newApp();
    const values = Array.from({ length: 51 }, (_, i) => 'v' + i);
    await badRequest(update(app, 'e', { Attributes: { a: values } }), /has 51 values; the maximum is 50 per attribute/);
    await update(app, 'e', { Attributes: { a: values.slice(0, 50) } });
  });

  test(`an endpoint over ${MAX_ENDPOINT_BYTES} bytes is rejected`, async () => {
    const app = await newApp();
    const Attributes: Record<string, string[]> = {};
    for (let i = 0; i < 4; i++) Attributes['a' + i] = Array.from({ length: 40 }, () => 'x'.repeat(100));
    await badRequest(update(app, 'e', { Attributes }), /bytes; the maximum endpoint size is 15360 bytes/);
  });

  test(`an application may use at most ${MAX_ATTRIBUTE_NAMES_PER_APP} attribute names across Attributes, Metrics and UserAttributes`, async () => {
    const app = await newApp();
    const names = (prefix: string, n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [prefix + i, ['v']]));
    await update(app, 'e1', { Attributes: names('a', 100) });
    await update(app, 'e2', { User: { UserAttributes: names('u', 100) } });
    await update(app, 'e3', { Metrics: Object.fromEntries(Array.from({ length: 50 }, (_, i) => ['m' + i, i])) });
    // Reusing existing names is always fine.
    await update(app, 'e4', { Attributes: { a1: ['x'] } });
    await badRequest(update(app, 'e5', { Attributes: { fresh: ['x'] } }), /would have 251 endpoint attribute names.*maximum is 250 per application/);
    // Another app has its own budget.
    await update(await newApp(), 'e', { Attributes: { fresh: ['x'] } });
  });

  test(`a user may have at most ${MAX_ENDPOINTS_PER_USER} endpoints; a new push endpoint displaces the oldest push endpoint`, async () => {
    const app = await newApp();
    await update(app, 'push-0', { ChannelType: 'GCM', Address: 't0', User: { UserId: 'u1' }, EffectiveDate: '2026-01-01T00:00:00Z' });
    for (let i = 1; i < MAX_ENDPOINTS_PER_USER; i++) {
      await update(app, 'email-' + i, { ChannelType: 'EMAIL', Address: `u1+${i}@example.com`, User: { UserId: 'u1' } });
    }
    const list = await t.pinpoint.send(new GetUserEndpointsCommand({ ApplicationId: app, UserId: 'u1' }));
    assert.equal(list.EndpointsResponse!.Item!.length, MAX_ENDPOINTS_PER_USER);
    await badRequest(
      update(app, 'email-16', { ChannelType: 'EMAIL', Address: 'u1+16@example.com', User: { UserId: 'u1' } }),
      /Exceeded maximum endpoint per user count 15/,
    );
    await update(app, 'push-16', { ChannelType: 'APNS', Address: 't16', User: { UserId: 'u1' } });
    const displaced = await get(app, 'push-0');
    assert.equal(displaced.EndpointStatus, 'INACTIVE');
    assert.equal(displaced.User?.UserId, undefined);
    const after = await t.pinpoint.send(new GetUserEndpointsCommand({ ApplicationId: app, UserId: 'u1' }));
    const ids = after.EndpointsResponse!.Item!.map((e) => e.Id).sort();
    assert.equal(ids.length, MAX_ENDPOINTS_PER_USER);
    assert.ok(ids.includes('push-16') && !ids.includes('push-0'));
  });
});

describe('user endpoints', () => {
  test('GetUserEndpoints lists a user\'s endpoints and DeleteUserEndpoints removes them (202)', async () => {
    const app = await newApp();
    await update(app, 'a', { User: { UserId: 'alice' } });
    await update(app, 'b', { User: { UserId: 'alice' } });
    await update(app, 'c', { User: { UserId: 'bob' } });
    const got = await t.pinpoint.send(new GetUserEndpointsCommand({ ApplicationId: app, UserId: 'alice' }));
    assert.deepEqual(got.EndpointsResponse!.Item!.map((e) => e.Id).sort(), ['a', 'b']);
    const del = await t.pinpoint.send(new DeleteUserEndpointsCommand({ ApplicationId: app, UserId: 'alice' }));
    assert.equal(del.$metadata.httpStatusCode, 202);
    assert.deepEqual(del.EndpointsResponse!.Item!.map((e) => e.Id).sort(), ['a', 'b']);
    await assert.rejects(get(app, 'a'), (e: any) => e.name === 'NotFoundException');
    assert.equal((await get(app, 'c')).User!.UserId, 'bob');
  });
});

describe('UpdateEndpointsBatch', () => {
  test('updates every item and answers 202 Accepted', async () => {
    const app = await newApp();
    const Item: EndpointBatchItem[] = [
      { Id: 'b1', ChannelType: 'EMAIL', Address: 'b1@example.com' },
      { Id: 'b2', ChannelType: 'SMS', Address: '+15555550101', Attributes: { x: ['y'] } },
    ];
    const r = await t.pinpoint.send(new UpdateEndpointsBatchCommand({ ApplicationId: app, EndpointBatchRequest: { Item } }));
    assert.equal(r.$metadata.httpStatusCode, 202);
    assert.equal(r.MessageBody!.Message, 'Accepted');
    assert.equal((await get(app, 'b2')).Attributes!.x[0], 'y');
  });

  test(`more than ${MAX_ENDPOINTS_PER_BATCH} items is rejected, and a bad item rejects the whole batch`, async () => {
    const app = await newApp();
    const many = Array.from({ length: 101 }, (_, i) => ({ Id: 'i' + i }));
    await badRequest(t.pinpoint.send(new UpdateEndpointsBatchCommand({ ApplicationId: app, EndpointBatchRequest: { Item: many } })), /101 endpoints; the maximum is 100/);
    await badRequest(
      t.pinpoint.send(new UpdateEndpointsBatchCommand({ ApplicationId: app, EndpointBatchRequest: { Item: [{ Id: 'ok' }, { Id: 'bad', Attributes: { a: ['v'.repeat(101)] } }] } })),
      /Item\[1\]\.Attributes\.a has a value of 101 characters/,
    );
    await assert.rejects(get(app, 'ok'), (e: any) => e.name === 'NotFoundException', 'nothing of a rejected batch is stored');
    await badRequest(t.pinpoint.send(new UpdateEndpointsBatchCommand({ ApplicationId: app, EndpointBatchRequest: { Item: [{ ChannelType: 'SMS' }] } })), /Item\[0\]\.Id is required/);
  });

  test('a batch refused by a later item leaves no trace: earlier items are not readable, endpoints it deactivated stay ACTIVE', async () => {
    const app = await newApp();
    for (let i = 0; i < MAX_ENDPOINTS_PER_USER; i++) await update(app, `u${i}`, { ChannelType: 'EMAIL', Address: `u${i}@example.com`, User: { UserId: 'full' } });
    await badRequest(
      t.pinpoint.send(
        new UpdateEndpointsBatchCommand({
          ApplicationId: app,
          EndpointBatchRequest: {
            Item: [
              { Id: 'first', ChannelType: 'EMAIL', Address: 'u3@example.com', Attributes: { fresh: ['x'] } },
              { Id: 'over-cap', ChannelType: 'EMAIL', User: { UserId: 'full' } },
            ],
          },
        }),
      ),
      /Exceeded maximum endpoint per user count 15/,
    );
    // The rows were rolled back; what the server remembers in memory must be too.
    await assert.rejects(get(app, 'first'), (e: any) => e.name === 'NotFoundException', 'an item of the refused batch is readable');
    assert.equal((await get(app, 'u3')).EndpointStatus, 'ACTIVE', 'an endpoint the refused batch deactivated reads INACTIVE');
  });

  test(`a batch request over ${MAX_ENDPOINT_BATCH_REQUEST_BYTES} bytes is a 413`, async () => {
    const app = await newApp();
    const res = await signedFetch(t.server.url, {
      method: 'PUT',
      path: `/v1/apps/${app}/endpoints`,
      credentials: t.server.admin,
      body: JSON.stringify({ Item: [{ Id: 'x', Address: 'y'.repeat(MAX_ENDPOINT_BATCH_REQUEST_BYTES) }] }),
    });
    assertRestError(res, 413, 'PayloadTooLargeException', /maximum is 7340032 bytes/);
  });
});
