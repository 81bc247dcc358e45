// Strings that are not valid Unicode (an unpaired UTF-16 surrogate, sent as a JSON escape): ids are
// refused with a 400 naming them, every other string is stored with U+FFFD in place of each
// unpaired surrogate, so event-stream records, endpoints and analytics hold only valid Unicode.
// Data written before that (JSON text with "\ud800" in the analytics store, the ingest log and the
// endpoint table) is repaired where it is read: one such attribute made an app's attribute filters
// answer 500 forever.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateAppCommand,
  GetApplicationDateRangeKpiCommand,
  GetEndpointCommand,
  PutEventsCommand,
  UpdateEndpointCommand,
  UpdateEndpointsBatchCommand,
} from '@aws-sdk/client-pinpoint';
import { isWellFormed, repairJsonText, wellFormed } from '../src/unicode.js';
import { decodeIngestEntry, encodeIngestEntry } from '../src/pinpoint/ingest-record.js';
import { EventStore } from '../src/analytics/store.js';
import { recordToRow } from '../src/analytics/loader.js';
import { SegmentLog } from '../src/log/segment-log.js';
import { openDb } from '../src/store/db.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { signedFetch } from './helpers/signed.js';

const LONE_HIGH = '\ud800';
const LONE_LOW = '\udc00';
const FFFD = '\ufffd';
const today = () => new Date().toISOString();

describe('repairing strings', () => {
  test('wellFormed replaces unpaired surrogates in values and keys, keeps pairs, returns clean values as they are', () => {
    const clean = { a: ['x', '😀'], b: { c: 'y' } };
    assert.equal(wellFormed(clean), clean);
    assert.deepEqual(wellFormed({ [`k${LONE_LOW}`]: [`a${LONE_HIGH}`, '😀'], n: 1, z: null }), { [`k${FFFD}`]: [`a${FFFD}`, '😀'], n: 1, z: null });
    assert.equal(wellFormed(`${LONE_HIGH}${LONE_HIGH}\ud83d\ude00`), `${FFFD}${FFFD}😀`);
    const proto = wellFormed(JSON.parse(`{"__proto__":"\\ud800"}`));
    assert.deepEqual(Object.keys(proto), ['__proto__']);
    assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  });

  test('repairJsonText replaces unpaired surrogate escapes only', () => {
    const cases: Array<[string, string]> = [
      ['{"a":"\\ud800"}', '{"a":"\\ufffd"}'],
      ['{"a":"\\udc00x"}', '{"a":"\\ufffdx"}'],
      ['{"a":"\\ud800\\ud800\\udc00"}', '{"a":"\\ufffd\\ud800\\udc00"}'],
      ['{"a":"\\uD83D\\uDE00"}', '{"a":"\\uD83D\\uDE00"}'],
      ['{"a":"\\\\ud800"}', '{"a":"\\\\ud800"}'],
      ['{"a":"\\\\\\ud800"}', '{"a":"\\\\\\ufffd"}'],
      ['{"\\ud800":"\\u0001\\n"}', '{"\\ufffd":"\\u0001\\n"}'],
    ];
    for (const [input, out] of cases) {
      assert.equal(repairJsonText(input), out, input);
      assert.ok(isWellFormed(Object.keys(JSON.parse(out))[0]) && isWellFormed(Object.values(JSON.parse(out))[0] as string), out);
    }
  });
});

describe('PutEvents and endpoints with strings that are not valid Unicode (official SDK)', () => {
  let t: TestServer;
  let app: string;
  before(async () => {
    t = await startTestServer();
    app = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'unicode' } }))).ApplicationResponse!.Id!;
  });
  after(() => t.close());

  const get = (path: string, query: Record<string, string> = {}) => signedFetch(t.server.url, { method: 'GET', path: `/v1/apps/${app}${path}`, query, credentials: t.server.admin });

  test('an event with an unpaired surrogate is accepted with U+FFFD in its place; analytics filters on its app answer 200', async () => {
    const from = t.server.ingestLog.endOffset();
    // What a JavaScript client sends after cutting an emoji in half: the SDK writes "\ud83d" as an escape.
    const r = await t.pinpoint.send(
      new PutEventsCommand({
        ApplicationId: app,
        EventsRequest: {
          BatchItem: {
            dev1: {
              Endpoint: { Attributes: { team: [`blue${LONE_HIGH}`] }, Demographic: { Model: `m${LONE_LOW}` } },
              Events: {
                e1: { EventType: `buy${LONE_LOW}`, Timestamp: today(), Attributes: { color: `red ${'😀'.slice(0, 1)}`, [`k${LONE_HIGH}`]: 'v' }, Metrics: { n: 1 } },
                e2: { EventType: '_SMS.FAILURE', Timestamp: today(), Attributes: { record_status: LONE_HIGH } },
              },
            },
          },
        },
      }),
    );
    const item = r.EventsResponse!.Results!.dev1;
    assert.equal(item.EndpointItemResponse!.StatusCode, 202);
    assert.deepEqual(Object.values(item.EventsItemResponse!).map((e) => e.StatusCode), [202, 202]);

    const { records } = await t.server.ingestLog.read(from, { maxRecords: 10 });
    const stored = records.map((x) => JSON.parse(decodeIngestEntry(x.payload).record.toString('utf8')));
    assert.equal(stored[0].event_type, `buy${FFFD}`);
    assert.deepEqual(stored[0].attributes, { color: `red ${FFFD}`, [`k${FFFD}`]: 'v' });
    assert.deepEqual(stored[0].endpoint.Attributes, { team: [`blue${FFFD}`] });
    assert.equal(stored[0].endpoint.Demographic.Model, `m${FFFD}`);
    for (const x of records) assert.ok(!x.payload.includes('\\ud') && isWellFormed(x.payload.toString('utf8')), 'records hold valid Unicode only');

    await t.server.analytics.catchUp();
    const day = today().slice(0, 10);
    for (const [path, query] of [
      ['/dashboards/events', { 'event-attribute': 'color:red' }],
      ['/dashboards/events', { 'event-attribute': `color:red ${FFFD}` }],
      ['/dashboards/events', { 'endpoint-attribute': 'team:blue' }],
      ['/dashboards/demographics', {}],
      ['/analytics/filters', {}],
    ] as Array<[string, Record<string, string>]>) {
      const res = await get(path, { ...query, ...(path.startsWith('/dashboards') ? { start: day, end: day } : {}) });
      assert.equal(res.status, 200, `${path} ${JSON.stringify(query)}: ${res.text.slice(0, 300)}`);
    }
    const matched = await get('/dashboards/events', { 'event-attribute': `color:red ${FFFD}`, start: day, end: day });
    assert.equal(matched.json.tiles.find((x: { id: string }) => x.id === 'event-count').value, 1, 'the repaired value is what filters match');
    const kpi = await t.pinpoint.send(new GetApplicationDateRangeKpiCommand({ ApplicationId: app, KpiName: 'txn-sms-error-distribution' }));
    assert.equal(kpi.ApplicationDateRangeKpiResponse!.KpiName, 'txn-sms-error-distribution');
  });

  test('an event id or endpoint id with an unpaired surrogate is a 400 naming it (ids are not rewritten: two ids could merge)', async () => {
    const r = await t.pinpoint.send(
      new PutEventsCommand({
        ApplicationId: app,
        EventsRequest: {
          BatchItem: {
            [`dev${LONE_HIGH}`]: { Endpoint: {}, Events: { ok: { EventType: 'x', Timestamp: today() } } },
            dev2: { Endpoint: {}, Events: { [`id${LONE_LOW}`]: { EventType: 'x', Timestamp: today() }, fine: { EventType: 'x', Timestamp: today() } } },
          },
        },
      }),
    );
    const results = r.EventsResponse!.Results!;
    // Each answer is keyed by the id exactly as the client sent it.
    const bad = results[`dev${LONE_HIGH}`];
    assert.equal(bad.EndpointItemResponse!.StatusCode, 400);
    assert.match(bad.EndpointItemResponse!.Message!, /Endpoint id "dev\\ud800" is not valid Unicode: it contains an unpaired UTF-16 surrogate/);
    assert.equal(bad.EventsItemResponse!.ok.StatusCode, 400);
    assert.equal(results.dev2.EventsItemResponse![`id${LONE_LOW}`].StatusCode, 400);
    assert.match(results.dev2.EventsItemResponse![`id${LONE_LOW}`].Message!, /Event id "id\\udc00" is not valid Unicode/);
    assert.equal(results.dev2.EventsItemResponse!.fine.StatusCode, 202);
    await assert.rejects(
      t.pinpoint.send(new UpdateEndpointsBatchCommand({ ApplicationId: app, EndpointBatchRequest: { Item: [{ Id: `b${LONE_HIGH}` }] } })),
      (e: any) => e.name === 'BadRequestException' && /Endpoint id "b\\ud800" is not valid Unicode/.test(e.message),
    );
  });

  test('UpdateEndpoint stores U+FFFD for unpaired surrogates in every string, attribute names included', async () => {
    await t.pinpoint.send(
      new UpdateEndpointCommand({
        ApplicationId: app,
        EndpointId: 'u1',
        EndpointRequest: {
          Address: `a${LONE_HIGH}@example.com`,
          Attributes: { [`n${LONE_LOW}`]: [`v${LONE_HIGH}`] },
          User: { UserId: `user${LONE_HIGH}`, UserAttributes: { plan: [LONE_LOW] } },
          Location: { City: `c${LONE_HIGH}` },
        },
      }),
    );
    const e = (await t.pinpoint.send(new GetEndpointCommand({ ApplicationId: app, EndpointId: 'u1' }))).EndpointResponse!;
    assert.equal(e.Address, `a${FFFD}@example.com`);
    assert.deepEqual(e.Attributes, { [`n${FFFD}`]: [`v${FFFD}`] });
    assert.deepEqual(e.User, { UserId: `user${FFFD}`, UserAttributes: { plan: [FFFD] } });
    assert.equal(e.Location!.City, `c${FFFD}`);
  });
});

describe('a data directory written before the repair', () => {
  test('analytics rows, unloaded ingest records and stored endpoints with "\\ud800" escapes are repaired where read; filters answer 200', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-unicode-old-'));
    try {
      const first = await startTestServer({ dataDir });
      const app = (await first.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'old' } }))).ApplicationResponse!.Id!;
      await first.close();

      // What the earlier version wrote: a record whose JSON escapes an unpaired surrogate ...
      const now = Date.now();
      const oldRecord = (eventId: string) =>
        `{"event_type":"buy","event_timestamp":${now},"arrival_timestamp":${now},"event_version":"3.1","application":{"app_id":"${app}","sdk":{}},` +
        `"client":{"client_id":"old-dev"},"device":{"platform":{}},"session":{},"attributes":{"color":"\\ud800","ok":"x"},"metrics":{},` +
        `"endpoint":{"Id":"old-dev","Attributes":{"team":["\\udc00"]}},"awsAccountId":"000000000000"}`;
      // ... loaded into the analytics store (the loader of that version kept the escape) ...
      const store = await EventStore.open(dataDir);
      const row = recordToRow(app, 'old-dev', 'loaded', JSON.parse(oldRecord('loaded')));
      await store.append([{ ...row, attributes: '{"color":"\\ud800","ok":"x"}', endpointAttributes: '{"team":["\\udc00"]}' }]);
      const w = await store.connect();
      await w.run(`DELETE FROM store_upgrades`); // the store predates the repair
      w.closeSync();
      await store.close();
      // ... one not loaded yet, still in the ingest log ...
      const log = await SegmentLog.open(join(dataDir, 'log', 'ingest'), { fsync: false });
      await log.append([encodeIngestEntry(app, 'old-dev', 'unloaded', oldRecord('unloaded'))]);
      await log.close();
      // ... and the endpoint as the metadata store kept it.
      const db = openDb(dataDir);
      db.prepare('INSERT INTO endpoints (app_id, id, user_id, active_address, data) VALUES (?, ?, NULL, NULL, ?)').run(
        app,
        'old-dev',
        `{"ApplicationId":"${app}","Id":"old-dev","CohortId":"1","CreationDate":"2026-01-01T00:00:00.000Z","EffectiveDate":"2026-01-01T00:00:00.000Z","EndpointStatus":"ACTIVE","OptOut":"NONE","Attributes":{"team":["\\udc00"]}}`,
      );
      db.close();

      const t = await startTestServer({ dataDir });
      try {
        await t.server.analytics.catchUp();
        const day = new Date(now).toISOString().slice(0, 10);
        const get = (path: string, query: Record<string, string>) => signedFetch(t.server.url, { method: 'GET', path: `/v1/apps/${app}${path}`, query, credentials: t.server.admin });
        for (const [path, query] of [
          ['/dashboards/events', { 'event-attribute': 'ok:x', start: day, end: day }],
          ['/dashboards/events', { 'endpoint-attribute': `team:${FFFD}`, start: day, end: day }],
          ['/dashboards/demographics', { start: day, end: day }],
          ['/analytics/filters', {}],
        ] as Array<[string, Record<string, string>]>) {
          const res = await get(path, query);
          assert.equal(res.status, 200, `${path} ${JSON.stringify(query)}: ${res.text.slice(0, 300)}`);
        }
        const both = await get('/dashboards/events', { 'event-attribute': `color:${FFFD}`, start: day, end: day });
        assert.equal(both.json.tiles.find((x: { id: string }) => x.id === 'event-count').value, 2, 'the stored row and the newly loaded one, both repaired');
        const e = (await t.pinpoint.send(new GetEndpointCommand({ ApplicationId: app, EndpointId: 'old-dev' }))).EndpointResponse!;
        assert.deepEqual(e.Attributes, { team: [FFFD] });
      } finally {
        await t.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
