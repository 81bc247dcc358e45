// Conformance of the restJson layer (Pinpoint) with its model, generated from the tables the
// server uses: for every implemented operation that takes a JSON body, each member of the body
// (nested structures, list items and map values included) gets a wrong JSON type, a missing
// required member and a value outside its enum, once each, with every other required member
// valid; sent signed to a real server. The expected answer is computed here from the model: 400,
// x-amzn-ErrorType BadRequestException, and Pinstream's REST wording with the member's path from
// the body's root ("Item[0].ChannelType must satisfy enum value set: […]; got 'X'",
// "BatchItem.k.Endpoint is required", "Location.Latitude must be a number; got the string 'x'").
// Pinpoint's own texts are not recorded anywhere public; this wording is Pinstream's choice.
// Then hand-written cases: PutEvents' per-event results, precedence, and the official SDK.
// Valid values come from helpers/conformance.ts; the REST walk, wording and type names are here.

import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { CreateAppCommand, PutEventsCommand, UpdateEndpointsBatchCommand } from '@aws-sdk/client-pinpoint';
import { pinpointClient } from './helpers/server.js';
import { signedFetch } from './helpers/signed.js';
import { model } from '../src/models/generated/pinpoint.js';
import type { Shape, ShapeType } from '../src/models/types.js';
import { PINPOINT_MODEL_OVERRIDES } from '../src/pinpoint/api.js';
import { assertEveryCase, jsonBody, shapeMap, suiteServer, userWithoutRights, validValue, withValueAt } from './helpers/conformance.js';

const t = suiteServer();

const shapes = shapeMap(model);
const opaque = (name: string) => PINPOINT_MODEL_OVERRIDES[name]?.opaque === true;

/** A valid body value (required members only, enums at their first value), timestamps in ISO 8601 as restJson writes them. */
function valid(shapeName: string): unknown {
  const v = validValue(shapes, shapeName);
  assert.notEqual(v, undefined, `a valid ${shapeName} can be built`);
  return jsonBody(v, (d) => d.toISOString());
}

/** How a REST type error names what a member must be, by the JSON kind each model type is written as. */
const KINDS: ReadonlyArray<[string, readonly ShapeType[]]> = [
  ['an object', ['structure']],
  ['an object (a map)', ['map']],
  ['a list', ['list']],
  ['a string', ['string']],
  ['an integer', ['integer', 'long']],
  ['a number', ['float', 'double']],
  ['a boolean', ['boolean']],
  ['a timestamp', ['timestamp']],
  ['base64 text', ['blob']],
];
const mustBe = (type: ShapeType): string => {
  const named = KINDS.filter(([, types]) => types.includes(type));
  assert.equal(named.length, 1, `one wording for ${type}`);
  return named[0][0];
};

/** One wrong JSON value per type and how the answer names it. */
function wrongType(s: Shape): { wire: unknown; got: string } {
  switch (s.type) {
    case 'string':
    case 'timestamp':
    case 'blob':
    case 'boolean':
      return { wire: 23, got: 'the number 23' };
    case 'list':
      return { wire: {}, got: 'an object' };
    case 'structure':
    case 'map':
      return { wire: [], got: 'a list' };
    default:
      return { wire: 'x', got: "the string 'x'" };
  }
}

interface Generated {
  op: string;
  method: string;
  path: string;
  member: string;
  title: string;
  body: unknown;
  message: string;
}

function generate(op: string): Generated[] {
  const o = model.operations[op];
  const input = shapes.get(o.input!.shape)!;
  const payload = input.payload!;
  const uri = o.http.requestUri.replace(/\{([^}+]+)\+?\}/g, (_, label: string) => (label === 'resource-arn' ? 'arn:aws:mobiletargeting:us-east-1:000000000000:apps/conformance' : 'conformance-app'));
  const rootShape = input.members![payload].shape;
  const out: Generated[] = [];
  // The base body grows as the walk enters optional structures, lists and maps (one item each).
  const walk = (shapeName: string, base: unknown, wirePath: Array<string | number>, path: string, depth: number) => {
    const s = shapes.get(shapeName)!;
    for (const [member, ref] of Object.entries(s.members ?? {})) {
      const ms = shapes.get(ref.shape)!;
      if (opaque(ref.shape)) continue;
      const wire = ref.locationName ?? member;
      const at = path === '' ? wire : `${path}.${wire}`;
      const here = [...wirePath, wire];
      const add = (title: string, body: unknown, message: string) => out.push({ op, method: o.http.method, path: uri, member: at, title, body, message });
      const w = wrongType(ms);
      add(`wrong type (${ms.type})`, withValueAt(base, here, w.wire), `${at} must be ${mustBe(ms.type)}; got ${w.got}`);
      if ((s.required ?? []).includes(member)) add('missing', withValueAt(base, here, undefined, true), `1 validation error detected: ${at} is required`);
      if (ms.enum) add('outside the enum', withValueAt(base, here, 'NOT_IN_THE_ENUM'), `1 validation error detected: ${at} must satisfy enum value set: [${ms.enum.join(', ')}]; got 'NOT_IN_THE_ENUM'`);
      if (depth >= 4) continue;
      if (ms.type === 'structure') {
        const inner = withValueAt(base, here, valid(ref.shape));
        walk(ref.shape, inner, here, at, depth + 1);
      } else if (ms.type === 'list' && shapes.get(ms.member!.shape)!.type === 'structure' && !opaque(ms.member!.shape)) {
        const inner = withValueAt(base, here, [valid(ms.member!.shape)]);
        walk(ms.member!.shape, inner, [...here, 0], `${at}[0]`, depth + 1);
      } else if (ms.type === 'map' && shapes.get(ms.value!.shape)!.type === 'structure' && !opaque(ms.value!.shape)) {
        const inner = withValueAt(base, here, { k: valid(ms.value!.shape) });
        walk(ms.value!.shape, inner, [...here, 'k'], `${at}.k`, depth + 1);
      }
    }
  };
  walk(rootShape, valid(rootShape), [], '', 0);
  return out;
}

const send = (method: string, path: string, body: unknown, credentials = t.server.admin) =>
  signedFetch(t.server.url, { method, path, body: JSON.stringify(body), credentials });

describe('Pinpoint: every member of every implemented operation body, from the model', () => {
  const implemented: string[] = [];
  let cases: Generated[] = [];
  before(async () => {
    // Operations with a JSON payload; those Pinstream routes answer anything but 404/405 to a body of the wrong type.
    for (const [op, o] of Object.entries(model.operations)) {
      const input = o.input && shapes.get(o.input.shape);
      if (!input?.payload || shapes.get(input.members![input.payload].shape)!.type !== 'structure') continue;
      const uri = o.http.requestUri.replace(/\{([^}+]+)\+?\}/g, 'x');
      const r = await send(o.http.method, uri, []);
      if (r.status !== 404 && r.status !== 405) implemented.push(op);
    }
    cases = implemented.flatMap(generate);
  });

  test('the suite covers the implemented operations and each kind of violation', () => {
    for (const op of ['CreateApp', 'UpdateEndpoint', 'UpdateEndpointsBatch', 'PutEvents', 'PutEventStream', 'UpdateApplicationSettings']) {
      assert.ok(implemented.includes(op), `${op} is implemented`);
    }
    assert.deepEqual(new Set(cases.map((c) => c.op)), new Set(implemented));
    for (const kind of ['wrong type (string)', 'wrong type (double)', 'wrong type (integer)', 'wrong type (boolean)', 'wrong type (list)', 'wrong type (map)', 'wrong type (structure)', 'missing', 'outside the enum']) {
      assert.ok(cases.some((c) => c.title === kind), `a "${kind}" case`);
    }
    assert.ok(cases.some((c) => c.member.startsWith('Item[0].')) && cases.some((c) => c.member.startsWith('BatchItem.k.Endpoint.')), 'list items and map values are walked');
  });

  test('every violation answered 400 BadRequestException with the member path and the exact message', async (tc) => {
    tc.diagnostic(`${cases.length} cases on ${implemented.length} implemented operations`);
    assert.ok(cases.length > 100, `${cases.length} cases`);
    await assertEveryCase(cases, async (g) => {
      const r = await send(g.method, g.path, g.body);
      if (r.status === 400 && r.headers.get('x-amzn-errortype') === 'BadRequestException' && r.json?.Message === g.message) return undefined;
      return `${g.op} ${g.member} (${g.title}): got ${r.status} ${r.headers.get('x-amzn-errortype')} ${String(r.json?.Message).slice(0, 200)}; want ${g.message.slice(0, 200)}`;
    });
  });
});

describe('Pinpoint precedence and per-event results', () => {
  let appId: string;
  let noRights: { accessKeyId: string; secretAccessKey: string };
  before(async () => {
    appId = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'conformance-rest' } }))).ApplicationResponse!.Id!;
    noRights = await userWithoutRights(t, 'rest-nobody');
  });

  test('a bad event fails only itself: wrong types and missing members inside events are per-event 400 results', async () => {
    const ts = '2026-01-01T00:00:00Z';
    const r = await send('POST', `/v1/apps/${appId}/events`, {
      BatchItem: { dev: { Endpoint: {}, Events: { good: { EventType: 'a', Timestamp: ts }, untyped: { Timestamp: ts }, odd: { EventType: 'a', Timestamp: ts, Metrics: { m: 'x' } } } } },
    });
    assert.equal(r.status, 202);
    const events = r.json.Results.dev.EventsItemResponse;
    assert.deepEqual(events.good, { StatusCode: 202, Message: 'Accepted' });
    assert.equal(events.untyped.StatusCode, 400);
    assert.match(events.untyped.Message, /EventType is required/);
    assert.equal(events.odd.StatusCode, 400);
  });

  test('the batch around the events is the request: a wrong endpoint type fails the whole request', async () => {
    const r = await send('POST', `/v1/apps/${appId}/events`, { BatchItem: { dev: { Endpoint: { Location: { Latitude: 'north' } }, Events: {} } } });
    assert.equal(r.status, 400);
    assert.equal(r.json.Message, "BatchItem.dev.Endpoint.Location.Latitude must be a number; got the string 'north'");
  });

  test('validation before authorization before existence', async () => {
    const invalid = await send('PUT', `/v1/apps/${appId}/endpoints`, { Item: [{ Id: 'e', ChannelType: 'PIGEON' }] }, noRights);
    assert.equal(invalid.headers.get('x-amzn-errortype'), 'BadRequestException');
    const denied = await send('PUT', `/v1/apps/${appId}/endpoints`, { Item: [{ Id: 'e', ChannelType: 'SMS' }] }, noRights);
    assert.equal(denied.headers.get('x-amzn-errortype'), 'ForbiddenException');
    const missing = await send('PUT', `/v1/apps/${randomUUID().replace(/-/g, '')}/endpoints`, { Item: [{ Id: 'e', ChannelType: 'SMS' }] });
    assert.equal(missing.headers.get('x-amzn-errortype'), 'NotFoundException');
  });

  test('several violations in one message, in model member order', async () => {
    const r = await send('PUT', `/v1/apps/${appId}/endpoints`, { Item: [{ Id: 'a', ChannelType: 'PIGEON' }, null, { Id: 'b', ChannelType: 'FAX' }] });
    const channels = `[${model.shapes.ChannelType.enum!.join(', ')}]`;
    assert.equal(
      r.json.Message,
      `3 validation errors detected: Item[0].ChannelType must satisfy enum value set: ${channels}; got 'PIGEON'; Item[1] is required; Item[2].ChannelType must satisfy enum value set: ${channels}; got 'FAX'`,
    );
  });

  test('hostile map keys stay data keys', async () => {
    // An object literal's __proto__ sets the prototype, not a key: the body is written raw.
    const raw = await signedFetch(t.server.url, { method: 'POST', path: `/v1/apps/${appId}/events`, body: '{"BatchItem":{"__proto__":{"Endpoint":[],"Events":{}}}}', credentials: t.server.admin });
    assert.equal(raw.status, 400);
    assert.equal(raw.json.Message, 'BatchItem.__proto__.Endpoint must be an object; got a list');
  });

  test('the official SDK surfaces the BadRequestException with its message', async () => {
    const client = pinpointClient(t.server);
    try {
      await assert.rejects(
        client.send(new UpdateEndpointsBatchCommand({ ApplicationId: appId, EndpointBatchRequest: { Item: [{ Id: 'x', ChannelType: 'PIGEON' as never }] } })),
        (e: Error & { name: string; $metadata: { httpStatusCode?: number } }) => {
          assert.equal(e.name, 'BadRequestException');
          assert.equal(e.$metadata.httpStatusCode, 400);
          assert.equal(e.message, `1 validation error detected: Item[0].ChannelType must satisfy enum value set: [${model.shapes.ChannelType.enum!.join(', ')}]; got 'PIGEON'`);
          return true;
        },
      );
      const r = await client.send(
        new PutEventsCommand({ ApplicationId: appId, EventsRequest: { BatchItem: { d: { Endpoint: {}, Events: { e: { EventType: 'x', Timestamp: 'not a date' } } } } } }),
      );
      assert.equal(r.EventsResponse!.Results!.d.EventsItemResponse!.e.StatusCode, 400, 'a bad event is a result, not an error');
    } finally {
      client.destroy();
    }
  });
});
