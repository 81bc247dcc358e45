// Conformance of the Query protocol layer (IAM, STS) with AWS's validation, generated from the
// model tables the server uses: for every implemented action, each member of its input gets each
// of its constraints broken once (every other required member valid), sent as form parameters
// the way the SDKs serialize them (`A.B`, `Name.member.N`, `Name=` for an empty list), signed,
// to a real server. The expected answer is computed here from the model: a missing member, a
// length, range, pattern or enum outside the model is `<Code>ValidationError</Code>` 400 with
// "1 validation error detected: Value '…' at 'memberPath' failed to satisfy constraint: …"
// (IAM's recorded spelling); a number or boolean that is not one is InvalidInput 400. Then
// hand-written cases: nested list paths, precedence, and the official SDK seeing the answers.
// Valid values, constraint cases and Coral's messages come from helpers/conformance.ts; this file
// owns the Query parameter encoding and the InvalidInput texts.

import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { IAMClient, ListUsersCommand } from '@aws-sdk/client-iam';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { signedRequest } from './helpers/signed.js';
import { model as iamModel } from '../src/models/generated/iam.js';
import { model as stsModel } from '../src/models/generated/sts.js';
import type { ServiceModel, Shape } from '../src/models/types.js';
import { MAX_REPORTED_VALIDATION_ERRORS } from '../src/models/validate.js';
import { MAX_SESSION_POLICY_ARNS } from '../src/iam/api.js';
import { assertEveryCase, coralCases, memberSites, NUMBER_NAMES, shapeMap, suiteServer, userWithoutRights, validValue, withValueAt } from './helpers/conformance.js';

const t = suiteServer();

interface Svc {
  name: string;
  model: ServiceModel;
  shapes: Map<string, Shape>;
}
const SERVICES: Svc[] = [
  { name: 'iam', model: iamModel, shapes: shapeMap(iamModel) },
  { name: 'sts', model: stsModel, shapes: shapeMap(stsModel) },
];

type Params = Array<[string, string]>;

async function send(svc: Svc, action: string, params: Params, credentials = t.server.admin) {
  const form = new URLSearchParams([['Action', action], ['Version', svc.model.metadata.apiVersion], ...params]);
  const res = await signedRequest(t.server.url, {
    path: '/',
    service: svc.name,
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body: form.toString(),
    credentials,
  });
  const text = await res.text();
  const tag = (name: string) => unescapeXml(new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(text)?.[1] ?? '');
  return { status: res.status, code: tag('Code'), message: tag('Message'), text };
}

const unescapeXml = (s: string) =>
  s.replace(/&(lt|gt|quot|apos|amp);/g, (_, e: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[e]!);

// --- Query serialization --------------------------------------------------------------------

/** A value as the SDKs' Query serializer writes it (timestamps ISO 8601, blobs base64). */
function toParams(svc: Svc, shapeName: string, v: unknown, prefix: string, out: Params): Params {
  const s = svc.shapes.get(shapeName)!;
  if (s.type === 'structure') {
    for (const [name, ref] of Object.entries(s.members ?? {})) {
      const x = (v as Record<string, unknown>)[name];
      if (x !== undefined) toParams(svc, ref.shape, x, prefix === '' ? name : `${prefix}.${name}`, out);
    }
  } else if (s.type === 'list') {
    const items = v as unknown[];
    if (items.length === 0) out.push([prefix, '']);
    items.forEach((x, i) => toParams(svc, s.member!.shape, x, `${prefix}.member.${i + 1}`, out));
  } else if (s.type === 'map') {
    Object.entries(v as object).forEach(([k, x], i) => {
      out.push([`${prefix}.entry.${i + 1}.key`, k]);
      toParams(svc, s.value!.shape, x, `${prefix}.entry.${i + 1}.value`, out);
    });
  } else if (v instanceof Date) out.push([prefix, v.toISOString()]);
  else if (v instanceof Uint8Array) out.push([prefix, Buffer.from(v).toString('base64')]);
  else out.push([prefix, String(v)]);
  return out;
}

// --- violations ----------------------------------------------------------------------------

/** Text where a number, boolean or timestamp belongs: InvalidInput, naming the type it could not become. */
function typeCase(s: Shape): { title: string; raw: string; malformed: string } | undefined {
  if (s.type === 'integer' || s.type === 'long') return { title: 'text for a number', raw: '12abc', malformed: `an ${NUMBER_NAMES[s.type]}` };
  if (s.type === 'boolean') return { title: 'text for a boolean', raw: 'yes', malformed: 'a Boolean' };
  if (s.type === 'timestamp') return { title: 'text for a timestamp', raw: 'yesterday', malformed: 'a Timestamp' };
  return undefined;
}

interface Generated {
  op: string;
  path: string;
  title: string;
  params: Params;
  expected: { status: number; code: string; message: string };
}

function generate(svc: Svc, implemented: Set<string>): { cases: Generated[]; unbuildable: string[] } {
  const cases: Generated[] = [];
  const unbuildable: string[] = [];
  // A list item that writes no parameter (a structure with nothing required) cannot be counted by the server.
  const encodable = (shape: string, v: unknown) => toParams(svc, shape, v, 'x', []).length > 0;
  for (const op of implemented) {
    const o = svc.model.operations[op];
    if (!o.input) continue;
    const input = o.input.shape;
    const base = validValue(svc.shapes, input);
    if (base === undefined) {
      unbuildable.push(op);
      continue;
    }
    for (const site of memberSites(svc.shapes, input)) {
      const without = toParams(svc, input, withValueAt(base, site.names, undefined, true), '', []);
      const tc = typeCase(svc.shapes.get(site.shape)!);
      if (tc) {
        const name = site.names.join('.');
        cases.push({ op, path: site.at, title: tc.title, params: [...without, [name, tc.raw]], expected: { status: 400, code: 'InvalidInput', message: `Value '${tc.raw}' for parameter ${name} can not be converted to ${tc.malformed}` } });
      }
      for (const c of coralCases(svc.shapes, site, encodable)) {
        const params = c.remove ? without : toParams(svc, input, withValueAt(base, site.names, c.value), '', []);
        cases.push({ op, path: site.at, title: c.title, params, expected: { status: 400, code: 'ValidationError', message: c.message } });
      }
    }
  }
  return { cases, unbuildable };
}

for (const svc of SERVICES) {
  describe(`${svc.name}: every constraint of every implemented action's input, from the model`, () => {
    const implemented = new Set<string>();
    let cases: Generated[] = [];
    let unbuildable: string[] = [];
    before(async () => {
      // Actions Pinstream does not implement answer InvalidAction before any check.
      for (const op of Object.keys(svc.model.operations)) {
        const r = await send(svc, op, []);
        if (r.code !== 'InvalidAction') implemented.add(op);
      }
      ({ cases, unbuildable } = generate(svc, implemented));
    });

    test('the generated suite covers every implemented action and each kind of violation', () => {
      assert.deepEqual(unbuildable, [], 'every action has a valid base request');
      assert.ok(implemented.size >= 3, `${implemented.size} actions implemented`);
      const withInput = [...implemented].filter((op) => Object.keys(svc.shapes.get(svc.model.operations[op].input?.shape ?? '')?.members ?? {}).length > 0);
      assert.deepEqual(new Set(cases.map((c) => c.op)), new Set(withInput));
      const kinds = svc.name === 'iam' ? ['missing', 'shorter than', 'longer than', 'below', 'above', 'outside the enum', 'outside the pattern', 'more than', 'text for a number', 'text for a boolean'] : ['missing', 'below', 'above', 'outside the pattern', 'more than', 'text for a number'];
      for (const kind of kinds) assert.ok(cases.some((c) => c.title.startsWith(kind)), `${svc.name} has a "${kind}" case`);
    });

    test('every violation answered 400 with the exact code and message', async (tc) => {
      tc.diagnostic(`${svc.name}: ${cases.length} cases on ${implemented.size} implemented actions`);
      assert.ok(cases.length > 50 || svc.name === 'sts', `${cases.length} cases`);
      await assertEveryCase(cases, async (g) => {
        const r = await send(svc, g.op, g.params);
        if (r.status === g.expected.status && r.code === g.expected.code && r.message === g.expected.message) return undefined;
        return `${g.op} ${g.path} (${g.title}): got ${r.status} ${r.code} ${r.message.slice(0, 300)}; want ${g.expected.code} ${g.expected.message.slice(0, 300)}`;
      });
    });
  });
}

// --- hand-written cases --------------------------------------------------------------------

describe('Query decoding and precedence', () => {
  const [iam, sts] = SERVICES;
  const ROLE_ARN = 'arn:aws:iam::000000000000:role/r';
  /** AssumeRole's two required parameters, valid. */
  const SESSION: Params = [
    ['RoleArn', ROLE_ARN],
    ['RoleSessionName', 's1'],
  ];
  let noRights: { accessKeyId: string; secretAccessKey: string };
  before(async () => {
    noRights = await userWithoutRights(t, 'query-nobody');
  });

  test('list members of structures are reported at list.N.member.name', async () => {
    const r = await send(sts, 'AssumeRole', [
      ...SESSION,
      ['PolicyArns.member.1.arn', 'arn:aws:iam::000000000000:policy/p'],
      ['PolicyArns.member.2.arn', 'short'],
    ]);
    assert.equal(r.status, 400);
    assert.equal(r.code, 'ValidationError');
    assert.equal(r.message, "1 validation error detected: Value 'short' at 'policyArns.2.member.arn' failed to satisfy constraint: Member must have length greater than or equal to 20");
  });

  test("a sensitive member's value is never echoed: AssumeRoleWithWebIdentity's token (AWS's recorded answer)", async () => {
    const secret = 'abc';
    const r = await send(sts, 'AssumeRoleWithWebIdentity', [...SESSION, ['WebIdentityToken', secret]]);
    assert.deepEqual([r.status, r.code], [400, 'ValidationError']);
    assert.equal(r.message, "1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: Member must have length greater than or equal to 4");
    const missing = await send(sts, 'AssumeRoleWithWebIdentity', SESSION);
    assert.equal(missing.message, "1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: Member must not be null");
    // The member next to it is not sensitive and is shown as always.
    const both = await send(sts, 'AssumeRoleWithWebIdentity', [
      ['RoleArn', ROLE_ARN],
      ['RoleSessionName', 'a b'],
      ['WebIdentityToken', 'x'.repeat(20_001)],
    ]);
    assert.match(both.message, /^2 validation errors detected: Value 'a b' at 'roleSessionName' .*; Value at 'webIdentityToken' failed to satisfy constraint: Member must have length less than or equal to 20000$/);
    assert.doesNotMatch(both.message, /xxxx/);
  });

  test('a list of simple members is reported once at the list, with the member constraints', async () => {
    const r = await send(sts, 'AssumeRole', [
      ...SESSION,
      ['TransitiveTagKeys.member.1', 'ok'],
      ['TransitiveTagKeys.member.2', '!'],
    ]);
    const key = stsModel.shapes.tagKeyType;
    assert.equal(
      r.message,
      `1 validation error detected: Value '[ok, !]' at 'transitiveTagKeys' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to ${key.max}, Member must have length greater than or equal to ${key.min}, Member must satisfy regular expression pattern: ${key.pattern}]`,
    );
  });

  test('items are taken in index order whatever the parameter order; gaps close up', async () => {
    const r = await send(sts, 'AssumeRole', [
      ...SESSION,
      ['PolicyArns.member.10.arn', 'x10'],
      ['PolicyArns.member.2.arn', 'x2'],
    ]);
    assert.equal(
      r.message,
      "2 validation errors detected: Value 'x2' at 'policyArns.1.member.arn' failed to satisfy constraint: Member must have length greater than or equal to 20; " +
        "Value 'x10' at 'policyArns.2.member.arn' failed to satisfy constraint: Member must have length greater than or equal to 20",
    );
  });

  test('every violation in one message, in model member order', async () => {
    const r = await send(iam, 'CreateUser', [
      ['UserName', 'bad name'],
      ['Path', 'nopath'],
    ]);
    assert.equal(
      r.message,
      "2 validation errors detected: Value 'nopath' at 'path' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F); " +
        "Value 'bad name' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+",
    );
  });

  test(`at most ${MAX_REPORTED_VALIDATION_ERRORS} violations are reported`, async () => {
    const params: Params = [...SESSION];
    for (let i = 1; i <= 15; i++) params.push([`PolicyArns.member.${i}.arn`, 'short']);
    const r = await send(sts, 'AssumeRole', params);
    assert.match(r.message, new RegExp(`^${MAX_REPORTED_VALIDATION_ERRORS} validation errors detected: `));
    assert.equal(r.message.split('; ').length, MAX_REPORTED_VALIDATION_ERRORS);
  });

  test(`PolicyArns beyond ${MAX_SESSION_POLICY_ARNS} (a quota the model does not carry) is still refused`, async () => {
    const params: Params = [...SESSION];
    for (let i = 1; i <= MAX_SESSION_POLICY_ARNS + 1; i++) params.push([`PolicyArns.member.${i}.arn`, 'arn:aws:iam::000000000000:policy/p']);
    const r = await send(sts, 'AssumeRole', params);
    assert.equal(r.code, 'ValidationError');
    assert.match(r.message, new RegExp(`at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to ${MAX_SESSION_POLICY_ARNS}$`));
  });

  test('hostile parameter names are data: __proto__ and constructor reach no member', async () => {
    const r = await send(iam, 'ListUsers', [
      ['__proto__.x', '1'],
      ['constructor', 'x'],
      ['MaxItems.member.1', '5'],
    ]);
    assert.equal(r.status, 200, r.text);
  });

  test('a number past the integer range is malformed, not saturated', async () => {
    const r = await send(iam, 'ListUsers', [['MaxItems', '99999999999']]);
    assert.deepEqual([r.status, r.code, r.message], [400, 'InvalidInput', "Value '99999999999' for parameter MaxItems can not be converted to an Integer"]);
  });

  test('malformed before validation before authorization before existence', async () => {
    const malformed = await send(iam, 'GetGroup', [['GroupName', 'bad name'], ['MaxItems', 'x']], noRights);
    assert.equal(malformed.code, 'InvalidInput');
    const invalid = await send(iam, 'GetGroup', [['GroupName', 'bad name']], noRights);
    assert.equal(invalid.code, 'ValidationError');
    const denied = await send(iam, 'GetGroup', [['GroupName', 'no-such-group']], noRights);
    assert.deepEqual([denied.status, denied.code], [403, 'AccessDenied']);
    const missing = await send(iam, 'GetGroup', [['GroupName', 'no-such-group']]);
    assert.deepEqual([missing.status, missing.code], [404, 'NoSuchEntity']);
  });

  test('the official SDKs surface ValidationError and InvalidInput with their messages', async () => {
    const client = new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin });
    const stsClient = new STSClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin });
    try {
      await assert.rejects(client.send(new ListUsersCommand({ MaxItems: 1001 })), (e: Error & { name: string; $metadata: { httpStatusCode?: number } }) => {
        assert.equal(e.name, 'ValidationError');
        assert.equal(e.$metadata.httpStatusCode, 400);
        assert.equal(e.message, "1 validation error detected: Value '1001' at 'maxItems' failed to satisfy constraint: Member must have value less than or equal to 1000");
        return true;
      });
      await assert.rejects(
        stsClient.send(new AssumeRoleCommand({ RoleArn: 'arn:aws:iam::000000000000:role/r', RoleSessionName: 'a b', DurationSeconds: 60 })),
        (e: Error & { name: string }) => {
          assert.equal(e.name, 'ValidationError');
          assert.equal(
            e.message,
            "2 validation errors detected: Value 'a b' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*; " +
              "Value '60' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900",
          );
          return true;
        },
      );
    } finally {
      client.destroy();
      stsClient.destroy();
    }
  });
});
