// PutEvents through the official SDK: per-item results, every limit, the event-stream record that
// lands in the ingest log (field by field, with types), and deduplication of retried events.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  CreateAppCommand,
  GetEndpointCommand,
  PutEventsCommand,
  UpdateEndpointCommand,
  type EventsBatch,
  type Event,
} from '@aws-sdk/client-pinpoint';
import { startTestServer, type TestServer } from './helpers/server.js';
import { assertRestError, signedFetch } from './helpers/signed.js';
import { decodeIngestEntry } from '../src/pinpoint/ingest-record.js';
import {
  MAX_EVENTS_PER_REQUEST,
  MAX_EVENT_ATTRIBUTES_AND_METRICS,
  MAX_EVENT_ATTRIBUTE_KEY_LENGTH,
  MAX_EVENT_ATTRIBUTE_VALUE_LENGTH,
  MAX_EVENT_BYTES,
  MAX_PUT_EVENTS_REQUEST_BYTES,
} from '../src/pinpoint/limits.js';

let t: TestServer;
let appId: string;

before(async () => {
  t = await startTestServer();
  const r = await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'events' } }));
  appId = r.ApplicationResponse!.Id!;
});
after(() => t.close());

const ts = '2026-11-20T10:11:12.345Z';
const ev = (extra: Partial<Event> = {}): Event => ({ EventType: 'pageView', Timestamp: ts, ...extra });

async function put(batch: Record<string, EventsBatch>) {
  const r = await t.pinpoint.send(new PutEventsCommand({ ApplicationId: appId, EventsRequest: { BatchItem: batch } }));
  return r.EventsResponse!.Results!;
}

/** Records appended to the ingest log since `from`. */
async function logSince(from: number) {
  const { records } = await t.server.ingestLog.read(from, { maxRecords: 100_000 });
  return records.map((r) => decodeIngestEntry(r.payload));
}

describe('PutEvents results', () => {
  test('accepted events get exactly {"StatusCode":202,"Message":"Accepted"} and the HTTP status is 202', async () => {
    const endpointId = randomUUID();
    const res = await signedFetch(t.server.url, {
      path: `/v1/apps/${appId}/events`,
      credentials: t.server.admin,
      body: JSON.stringify({ BatchItem: { [endpointId]: { Endpoint: {}, Events: { e1: ev(), e2: ev({ EventType: 'click' }) } } } }),
    });
    assert.equal(res.status, 202);
    assert.deepEqual(res.json, {
      Results: {
        [endpointId]: {
          EndpointItemResponse: { StatusCode: 202, Message: 'Accepted' },
          EventsItemResponse: { e1: { StatusCode: 202, Message: 'Accepted' }, e2: { StatusCode: 202, Message: 'Accepted' } },
        },
      },
    });
    // The exact bytes iOS and Android parse.
    assert.match(res.text, /"e1":\{"StatusCode":202,"Message":"Accepted"\}/);
  });

  test('the record in the ingest log matches the Pinpoint event-stream format, field by field', async () => {
    const endpointId = randomUUID();
    await t.pinpoint.send(
      new UpdateEndpointCommand({
        ApplicationId: appId,
        EndpointId: endpointId,
        EndpointRequest: {
          ChannelType: 'GCM',
          Address: 'token-' + endpointId,
          OptOut: 'ALL',
          Demographic: { AppVersion: '2.5', Locale: 'en_GB', Make: 'WebKit', Model: 'Mobile Safari', Platform: 'ios', PlatformVersion: '14.4.1' },
          Location: { Country: 'GB' },
          Attributes: { DeviceType: ['mobile'] },
          Metrics: { sessions: 1 },
          User: { UserId: 'user-1' },
        },
      }),
    );
    const from = t.server.ingestLog.endOffset();
    const before = Date.now();
    const results = await put({
      [endpointId]: {
        Endpoint: {},
        Events: {
          a: {
            EventType: '_session.start',
            Timestamp: '2022-02-01T00:05:11.400Z',
            AppPackageName: 'com.example',
            AppTitle: 'Example',
            AppVersionCode: '3',
            SdkName: 'aws-amplify',
            ClientSdkVersion: '6.0.0',
            Attributes: { url: 'https://x/y', loggedIn: 'false' },
            Metrics: { elapsed: 2, scrollDepthMax: 0 },
            Session: { Id: 'sess-1', StartTimestamp: '2022-02-01T00:05:11.395Z', StopTimestamp: '2022-02-01T00:06:11.395Z', Duration: 60000 },
          },
        },
      },
    });
    assert.equal(results[endpointId].EventsItemResponse!.a.StatusCode, 202);
    const [entry] = await logSince(from);
    assert.equal(entry.appId, appId);
    assert.equal(entry.eventId, 'a');
    const r = JSON.parse(entry.record.toString('utf8'));
    assert.deepEqual(Object.keys(r), [
      'event_type', 'event_timestamp', 'arrival_timestamp', 'event_version', 'application', 'client', 'device', 'session',
      'attributes', 'metrics', 'endpoint', 'awsAccountId',
    ]);
    assert.equal(r.event_type, '_session.start');
    assert.equal(r.event_timestamp, Date.parse('2022-02-01T00:05:11.400Z'));
    assert.equal(typeof r.arrival_timestamp, 'number');
    assert.ok(r.arrival_timestamp >= before && r.arrival_timestamp <= Date.now());
    assert.equal(r.event_version, '3.1');
    assert.deepEqual(r.application, {
      app_id: appId,
      package_name: 'com.example',
      sdk: { name: 'aws-amplify', version: '6.0.0' },
      title: 'Example',
      version_name: '2.5',
      version_code: '3',
    });
    assert.deepEqual(r.client, { client_id: endpointId });
    assert.deepEqual(r.device, {
      locale: { code: 'en_GB', country: 'GB', language: 'en' },
      make: 'WebKit',
      model: 'Mobile Safari',
      platform: { name: 'ios', version: '14.4.1' },
    });
    assert.deepEqual(r.session, {
      session_id: 'sess-1',
      start_timestamp: Date.parse('2022-02-01T00:05:11.395Z'),
      stop_timestamp: Date.parse('2022-02-01T00:06:11.395Z'),
    });
    assert.deepEqual(r.attributes, { url: 'https://x/y', loggedIn: 'false' });
    assert.deepEqual(r.metrics, { elapsed: 2, scrollDepthMax: 0 });
    assert.equal(r.awsAccountId, '000000000000');
    const stored = await t.pinpoint.send(new GetEndpointCommand({ ApplicationId: appId, EndpointId: endpointId }));
    const { $metadata: _, ...expected } = stored.EndpointResponse as Record<string, unknown>;
    assert.deepEqual(r.endpoint, expected);
    assert.equal(r.endpoint.ChannelType, 'GCM');
    assert.deepEqual(r.endpoint.Attributes, { DeviceType: ['mobile'] });
  });

  test('an Amplify-style event with Endpoint {} and no session gets empty objects, and creates the endpoint', async () => {
    const endpointId = randomUUID();
    const from = t.server.ingestLog.endOffset();
    const results = await put({ [endpointId]: { Endpoint: {}, Events: { x: ev() } } });
    assert.equal(results[endpointId].EndpointItemResponse!.StatusCode, 202);
    const [entry] = await logSince(from);
    const r = JSON.parse(entry.record.toString());
    assert.deepEqual(r.application, { app_id: appId, sdk: {} });
    assert.deepEqual(r.device, { platform: {} });
    assert.deepEqual(r.session, {});
    assert.deepEqual(r.attributes, {});
    assert.deepEqual(r.metrics, {});
    assert.equal(r.endpoint.Id, endpointId);
    assert.equal(r.endpoint.EndpointStatus, 'ACTIVE');
    const got = await t.pinpoint.send(new GetEndpointCommand({ ApplicationId: appId, EndpointId: endpointId }));
    assert.equal(got.EndpointResponse!.Id, endpointId);
  });

  test('an Endpoint given with the events is merged into the stored endpoint', async () => {
    const endpointId = randomUUID();
    await put({ [endpointId]: { Endpoint: { Demographic: { Platform: 'android' }, Attributes: { plan: ['pro'] } }, Events: { x: ev() } } });
    const got = await t.pinpoint.send(new GetEndpointCommand({ ApplicationId: appId, EndpointId: endpointId }));
    assert.equal(got.EndpointResponse!.Demographic!.Platform, 'android');
    assert.deepEqual(got.EndpointResponse!.Attributes, { plan: ['pro'] });
  });

  test('an invalid Endpoint fails only the endpoint item; its events are still accepted', async () => {
    const endpointId = randomUUID();
    const results = await put({
      [endpointId]: { Endpoint: { Attributes: { ['k'.repeat(51)]: ['v'] } }, Events: { x: ev() } },
    });
    assert.equal(results[endpointId].EndpointItemResponse!.StatusCode, 400);
    assert.match(results[endpointId].EndpointItemResponse!.Message!, /51 characters.*1 to 50/);
    assert.deepEqual(results[endpointId].EventsItemResponse!.x, { StatusCode: 202, Message: 'Accepted' });
  });

  test('an endpoint id with $ { } fails its events with 400', async () => {
    const results = await put({ 'bad$id': { Endpoint: {}, Events: { x: ev() } } });
    assert.equal(results['bad$id'].EndpointItemResponse!.StatusCode, 400);
    assert.equal(results['bad$id'].EventsItemResponse!.x.StatusCode, 400);
  });
});

describe('PutEvents limits', () => {
  const rejected = async (event: object, pattern: RegExp) => {
    const endpointId = randomUUID();
    const from = t.server.ingestLog.endOffset();
    const results = await put({ [endpointId]: { Endpoint: {}, Events: { bad: event as Event, good: ev() } } });
    const item = results[endpointId].EventsItemResponse!;
    assert.equal(item.bad.StatusCode, 400, JSON.stringify(item.bad));
    assert.match(item.bad.Message!, pattern);
    assert.deepEqual(item.good, { StatusCode: 202, Message: 'Accepted' });
    const logged = await logSince(from);
    assert.deepEqual(logged.map((e) => e.eventId), ['good'], 'only the valid event reaches the log');
  };

  test(`more than ${MAX_EVENTS_PER_REQUEST} events in a request is a BadRequestException`, async () => {
    const events: Record<string, Event> = {};
    for (let i = 0; i <= MAX_EVENTS_PER_REQUEST; i++) events['e' + i] = ev();
    await assert.rejects(put({ [randomUUID()]: { Endpoint: {}, Events: events } }), (e: any) => {
      assert.equal(e.name, 'BadRequestException');
      assert.equal(e.$metadata.httpStatusCode, 400);
      assert.match(e.message, /101 events; the maximum is 100/);
      return true;
    });
    // Exactly the limit is fine, spread over several endpoints.
    const a: Record<string, Event> = {};
    const b: Record<string, Event> = {};
    for (let i = 0; i < 50; i++) {
      a['a' + i] = ev();
      b['b' + i] = ev();
    }
    const ok = await put({ [randomUUID()]: { Endpoint: {}, Events: a }, [randomUUID()]: { Endpoint: {}, Events: b } });
    assert.equal(Object.values(ok).flatMap((r) => Object.values(r.EventsItemResponse!)).filter((x) => x.StatusCode === 202).length, 100);
  });

  test(`a request over ${MAX_PUT_EVENTS_REQUEST_BYTES} bytes is a 413 PayloadTooLargeException`, async () => {
    const events: Record<string, Event> = {};
    for (let i = 0; i < 5; i++) events['e' + i] = ev({ Attributes: { blob: 'x'.repeat(200) }, AppTitle: 'y'.repeat(900 * 1024) });
    await assert.rejects(put({ [randomUUID()]: { Endpoint: {}, Events: events } }), (e: any) => {
      assert.equal(e.name, 'PayloadTooLargeException');
      assert.equal(e.$metadata.httpStatusCode, 413);
      assert.match(e.message, /maximum is 4194304 bytes/);
      return true;
    });
  });

  test(`an event over ${MAX_EVENT_BYTES} bytes is rejected alone`, () =>
    rejected(ev({ AppTitle: 'z'.repeat(MAX_EVENT_BYTES) }), /bytes; the maximum is 1024000 bytes/));

  test(`more than ${MAX_EVENT_ATTRIBUTES_AND_METRICS} attributes and metrics together is rejected`, async () => {
    const Attributes: Record<string, string> = {};
    const Metrics: Record<string, number> = {};
    for (let i = 0; i < 30; i++) Attributes['a' + i] = 'v';
    for (let i = 0; i < 11; i++) Metrics['m' + i] = i;
    await rejected(ev({ Attributes, Metrics }), /^Number of attributes per event submitted should be less than 40\..*41 .*maximum is 40/);
    // 40 exactly is accepted.
    delete Metrics.m10;
    const endpointId = randomUUID();
    const r = await put({ [endpointId]: { Endpoint: {}, Events: { ok: ev({ Attributes, Metrics }) } } });
    assert.equal(r[endpointId].EventsItemResponse!.ok.StatusCode, 202);
  });

  test(`an attribute key over ${MAX_EVENT_ATTRIBUTE_KEY_LENGTH} characters is rejected`, () =>
    rejected(ev({ Attributes: { ['k'.repeat(51)]: 'v' } }), /Attributes key "k+" is 51 characters; keys must be at most 50/));

  test('a metric key over 50 characters is rejected', () =>
    rejected(ev({ Metrics: { ['m'.repeat(51)]: 1 } }), /Metrics key "m+" is 51 characters; keys must be at most 50/));

  test(`an attribute value over ${MAX_EVENT_ATTRIBUTE_VALUE_LENGTH} characters is rejected`, async () => {
    await rejected(ev({ Attributes: { url: 'v'.repeat(201) } }), /Attributes\.url is 201 characters; attribute values must be at most 200/);
    const endpointId = randomUUID();
    const r = await put({ [endpointId]: { Endpoint: {}, Events: { ok: ev({ Attributes: { url: 'v'.repeat(200) } }) } } });
    assert.equal(r[endpointId].EventsItemResponse!.ok.StatusCode, 202);
  });

  test('EventType is required', () => rejected({ Timestamp: ts }, /EventType is required/));
  test('Timestamp is required', () => rejected({ EventType: 'x' }, /Timestamp is required/));
  test('Timestamp must be ISO 8601', () => rejected({ EventType: 'x', Timestamp: 'yesterday' }, /Timestamp "yesterday" is not an ISO 8601/));
  test('Session.Id is required when a session is given', () =>
    rejected(ev({ Session: { StartTimestamp: ts } as any }), /Session\.Id is required/));
  test('Session.StartTimestamp is required when a session is given', () =>
    rejected(ev({ Session: { Id: 's' } as any }), /Session\.StartTimestamp is required/));
  test('attribute values must be strings and metrics numbers', async () => {
    await rejected(ev({ Attributes: { n: 5 as any } }), /Attributes\.n must be a string/);
    await rejected(ev({ Metrics: { n: 'five' as any } }), /Metrics\.n must be a number/);
  });
});

describe('malformed PutEvents requests', () => {
  const raw = (body: string) => signedFetch(t.server.url, { path: `/v1/apps/${appId}/events`, credentials: t.server.admin, body });

  test('invalid JSON is a 400 BadRequestException', async () => {
    const r = await raw('{"BatchItem":');
    assertRestError(r, 400, 'BadRequestException', /not valid JSON/);
    assert.equal(r.json.RequestID, r.headers.get('x-amzn-requestid'));
  });

  test('a missing BatchItem, Endpoint or Events is a 400 naming the field', async () => {
    assert.match((await raw('{}')).json.Message, /BatchItem is required/);
    assert.match((await raw('{"BatchItem":{"e":{"Events":{}}}}')).json.Message, /BatchItem\.e\.Endpoint is required/);
    assert.match((await raw('{"BatchItem":{"e":{"Endpoint":{}}}}')).json.Message, /BatchItem\.e\.Events is required/);
  });

  test('an unknown application is a 404 NotFoundException', async () => {
    await assert.rejects(
      t.pinpoint.send(new PutEventsCommand({ ApplicationId: 'nope', EventsRequest: { BatchItem: { e: { Endpoint: {}, Events: { x: ev() } } } } })),
      (e: any) => e.name === 'NotFoundException' && e.$metadata.httpStatusCode === 404,
    );
  });
});

describe('retries do not duplicate events', () => {
  test('the same request sent twice is logged once, and both answers accept every event', async () => {
    const endpointId = randomUUID();
    const batch = { [endpointId]: { Endpoint: {}, Events: { r1: ev(), r2: ev() } } };
    const from = t.server.ingestLog.endOffset();
    const first = await put(batch);
    const second = await put(batch);
    assert.deepEqual(second, first);
    const logged = await logSince(from);
    assert.deepEqual(logged.map((e) => e.eventId).sort(), ['r1', 'r2']);
  });

  test('endpoint ids are compared case-insensitively for deduplication', async () => {
    const endpointId = 'Device-' + randomUUID();
    const from = t.server.ingestLog.endOffset();
    await put({ [endpointId]: { Endpoint: {}, Events: { c1: ev() } } });
    await put({ [endpointId.toUpperCase()]: { Endpoint: {}, Events: { c1: ev() } } });
    assert.equal((await logSince(from)).length, 1);
  });

  test('retries are still recognised after a restart', async () => {
    const dataDir = t.dataDir;
    const endpointId = randomUUID();
    const batch = { [endpointId]: { Endpoint: {}, Events: { k1: ev(), k2: ev() } } };
    await put(batch);
    const end = t.server.ingestLog.endOffset();
    // Restart on the same data directory (the harness keeps it while `dataDir` is passed in).
    t.pinpoint.destroy();
    await t.server.close();
    const restarted = await startTestServer({ dataDir });
    const oldClose = t.close;
    t = { ...restarted, close: async () => { await restarted.close(); await oldClose.call({ ...t, server: { close: async () => {} } as any, pinpoint: { destroy() {} } as any }); } };
    await put(batch);
    assert.equal(t.server.ingestLog.endOffset(), end, 'nothing new appended for the retried events');
    await put({ [endpointId]: { Endpoint: {}, Events: { k3: ev() } } });
    assert.equal(t.server.ingestLog.endOffset(), end + 1);
  });
});
