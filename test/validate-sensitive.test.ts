// The model validator never writes a sensitive value into a message (src/models/validate.ts): a
// synthetic model with a sensitive string, list items, map values, a structure holding one, and a
// sensitive blob, checked in Coral's and the REST spelling. The wire-level cases against a real
// server are in conformance-json (Cognito's login tokens) and conformance-query (STS's token).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModelValidator } from '../src/models/validate.js';
import type { ServiceModel } from '../src/models/types.js';

const SECRET = 'hunter2-secret';

const model = {
  metadata: { apiVersion: '1', endpointPrefix: 'x', protocol: 'json', serviceId: 'X' },
  operations: { Op: { name: 'Op', http: { method: 'POST', requestUri: '/' }, input: { shape: 'In' } } },
  shapes: {
    In: {
      type: 'structure',
      required: ['Password'],
      members: {
        Name: { shape: 'Name' },
        Password: { shape: 'Password' },
        Passwords: { shape: 'PasswordList' },
        Tokens: { shape: 'TokenMap' },
        Creds: { shape: 'CredList' },
        Key: { shape: 'KeyBlob' },
        Flag: { shape: 'SecretFlag' },
        Count: { shape: 'SecretCount' },
      },
    },
    Name: { type: 'string', min: 1, max: 5 },
    Password: { type: 'string', min: 8, max: 64, pattern: '[a-z0-9-]+', sensitive: true },
    PasswordList: { type: 'list', member: { shape: 'Password' }, max: 2 },
    TokenMap: { type: 'map', key: { shape: 'Name' }, value: { shape: 'Password' } },
    CredList: { type: 'list', member: { shape: 'Cred' }, max: 1 },
    Cred: { type: 'structure', members: { User: { shape: 'Name' }, Secret: { shape: 'Password' } } },
    KeyBlob: { type: 'blob', sensitive: true },
    SecretFlag: { type: 'boolean', sensitive: true },
    SecretCount: { type: 'integer', sensitive: true },
  },
} as unknown as ServiceModel;

const coral = new ModelValidator(model);
const rest = new ModelValidator(model, {}, { paths: 'rest' });

function failure(v: ModelValidator, body: unknown): { code: string; message: string } {
  const r = v.validate('Op', body);
  assert.equal(r.ok, false, 'the body must be refused');
  return (r as { ok: false; error: { code: string; message: string } }).error;
}

test('a sensitive member: "Value at \'member\'" with every constraint it breaks, and no value', () => {
  const e = failure(coral, { Password: 'A!' });
  assert.equal(e.code, 'ValidationException');
  assert.equal(
    e.message,
    "2 validation errors detected: Value at 'password' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z0-9-]+; " +
      "Value at 'password' failed to satisfy constraint: Member must have length greater than or equal to 8",
  );
  assert.equal(failure(coral, {}).message, "1 validation error detected: Value at 'password' failed to satisfy constraint: Member must not be null");
});

test('a non-sensitive member beside it is still shown', () => {
  assert.equal(
    failure(coral, { Name: 'toolong', Password: SECRET.toUpperCase() }).message,
    "2 validation errors detected: Value 'toolong' at 'name' failed to satisfy constraint: Member must have length less than or equal to 5; " +
      "Value at 'password' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z0-9-]+",
  );
});

test('lists of sensitive items, maps of sensitive values and lists of structures holding one are not shown', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ Passwords: [SECRET, 'short'] }, /^1 validation error detected: Value at 'passwords' failed to satisfy constraint: Member must satisfy constraint: \[/],
    [{ Passwords: [SECRET, SECRET, SECRET] }, /^1 validation error detected: Value at 'passwords' failed to satisfy constraint: Member must have length less than or equal to 2$/],
    [{ Passwords: [SECRET, null] }, /^1 validation error detected: Value at 'passwords' failed to satisfy constraint: Member must satisfy constraint: \[Member must not be null, /],
    [{ Tokens: { a: 'short' } }, /^1 validation error detected: Value at 'tokens' failed to satisfy constraint: Map value must satisfy constraint: \[/],
    [{ Tokens: { toolongkey: SECRET } }, /^1 validation error detected: Value at 'tokens' failed to satisfy constraint: Map keys must satisfy constraint: \[/],
    [{ Creds: [{ User: 'u', Secret: SECRET }, { User: 'v', Secret: SECRET }] }, /^1 validation error detected: Value at 'creds' failed to satisfy constraint: Member must have length less than or equal to 1$/],
    [{ Creds: [{ User: 'u', Secret: 'short' }] }, /^1 validation error detected: Value at 'creds\.1\.member\.secret' failed to satisfy constraint: Member must have length greater than or equal to 8$/],
  ];
  for (const [extra, want] of cases) {
    const m = failure(coral, { Password: SECRET, ...(extra as object) }).message;
    assert.match(m, want);
    assert.ok(!m.includes(SECRET) && !m.includes('short'), m);
  }
  // The structure's own non-sensitive member is shown where it is the one reported.
  assert.match(failure(coral, { Password: SECRET, Creds: [{ User: 'toolong', Secret: SECRET }] }).message, /Value 'toolong' at 'creds\.1\.member\.user'/);
});

test('type errors on sensitive shapes name the type, not the value', () => {
  const blob = failure(coral, { Password: SECRET, Key: 'c2VjcmV0' + 'x' });
  assert.deepEqual(blob, { code: 'SerializationException', message: 'Value can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 9' });
  const flag = failure(coral, { Password: SECRET, Flag: 'maybe-secret' });
  assert.deepEqual(flag, { code: 'SerializationException', message: 'Value can not be converted to an Boolean' });
  const restCount = failure(rest, { Password: SECRET, Count: 'secret-number' });
  assert.deepEqual(restCount, { code: 'SerializationException', message: 'Count must be an integer; got a string' });
});

test('REST spelling: the constraint without "; got …" for a sensitive member, with it otherwise', () => {
  const m = failure(rest, { Name: 'toolong', Password: 'short' }).message;
  assert.match(m, /Name must have length less than or equal to 5; got 'toolong'/);
  assert.match(m, /Password must have length greater than or equal to 8(;|$)/);
  assert.ok(!m.includes("got 'short'"), m);
});

test('hidden() follows the model: sensitive shapes and containers reaching one, nothing else', () => {
  assert.deepEqual(
    ['Password', 'PasswordList', 'TokenMap', 'Cred', 'CredList', 'In', 'Name', 'KeyBlob'].map((s) => coral.hidden(s)),
    [true, true, true, true, true, true, false, true],
  );
});
