// Role sessions (src/iam/roles.ts assumeRole, IamStore.roleSession) and what the authorizer makes
// of them, on a real SQLite store: a session exists only when the trust policy lets the service
// assume the role for that source; one session per (role, service, source), reused; requests of a
// session are allowed by the role's policies only while the trust still holds and the role exists;
// sessions are not persisted, the long-lived role keys of earlier versions are removed at start;
// the number of sessions is bounded (MAX_ROLE_SESSIONS); role ARNs resolve only spelled exactly.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../src/clock.js';
import { openDb, type Db } from '../src/store/db.js';
import { sqliteMetadata } from '../src/store/metadata.js';
import { IamStore, MAX_ROLE_SESSIONS } from '../src/iam/store.js';
import { AssumeRoleError, assumeRole, FIREHOSE_SERVICE_PRINCIPAL, PINPOINT_SERVICE_PRINCIPAL, roleMayNot } from '../src/iam/roles.js';
import { PolicyAuthorizer } from '../src/iam/authorizer.js';
import type { ApiRequest } from '../src/http/request.js';

const ACCOUNT = '000000000000';
const appArn = (id: string) => `arn:aws:mobiletargeting:us-east-1:${ACCOUNT}:apps/${id}`;
const STREAM = `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/s`;
const pinpoint = (app: string) => ({ service: PINPOINT_SERVICE_PRINCIPAL, sourceArn: appArn(app), sourceAccount: ACCOUNT });

let dir: string;
let db: Db;
let store: IamStore;
const clock = new ManualClock(Date.parse('2026-01-01T00:00:00Z'));

const trust = (app?: string) =>
  JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: { Service: PINPOINT_SERVICE_PRINCIPAL }, Action: 'sts:AssumeRole', ...(app ? { Condition: { ArnEquals: { 'aws:SourceArn': appArn(app) } } } : {}) }],
  });
const request = (accessKeyId: string) => ({ caller: { accessKeyId, region: 'us-east-1' } }) as unknown as ApiRequest;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pinstream-sessions-'));
  db = openDb(dir);
  store = await IamStore.open(db, sqliteMetadata(db), clock, ACCOUNT, dir);
  await store.createRole('r', trust('a'));
  await store.putPolicy('role', 'r', 'p', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kinesis:PutRecords', Resource: STREAM }] }));
});
after(async () => {
  db.close();
  await rm(dir, { recursive: true, force: true });
});

test('a session needs the trust policy to name the service and source; one per (role, service, source), reused', async () => {
  const roleArn = `arn:aws:iam::${ACCOUNT}:role/r`;
  const s1 = assumeRole(store, roleArn, pinpoint('a'));
  assert.deepEqual(assumeRole(store, roleArn, pinpoint('a')), s1, 'reused');
  assert.match(s1.accessKeyId, /^PSIA/);
  assert.throws(() => assumeRole(store, roleArn, pinpoint('b')), (e: Error) => e instanceof AssumeRoleError && /only under conditions that .*apps\/b does not meet/.test(e.message));
  assert.throws(() => assumeRole(store, roleArn, { ...pinpoint('a'), service: FIREHOSE_SERVICE_PRINCIPAL }), /does not let firehose\.amazonaws\.com assume it/);
  const owner = store.keyOwner(s1.accessKeyId)!;
  assert.equal(owner.kind, 'role');
  assert.equal(owner.arn, `arn:aws:sts::${ACCOUNT}:assumed-role/r/pinpoint`);
  assert.deepEqual(owner.session, pinpoint('a'));
});

test("a session's requests: the role's policies, while the trust still names its source and the role exists", async () => {
  const authorizer = new PolicyAuthorizer(store);
  const key = assumeRole(store, `arn:aws:iam::${ACCOUNT}:role/r`, pinpoint('a')).accessKeyId;
  const put = () => authorizer.authorize(request(key), 'kinesis:PutRecords', STREAM);
  put();
  assert.throws(() => authorizer.authorize(request(key), 'kinesis:DeleteStream', STREAM), /not authorized to perform: kinesis:DeleteStream/);

  await store.updateAssumeRolePolicy('r', trust('b'));
  assert.throws(put, /because the role session is no longer valid: the trust policy of role r lets pinpoint\.amazonaws\.com assume it .*only under conditions/);
  await store.updateAssumeRolePolicy('r', trust('a'));
  put();

  const saved = store.getRole('r')!;
  await store.deletePolicy('role', 'r', 'p');
  await store.deleteRole('r');
  assert.throws(put, /role session is no longer valid: role r no longer exists/);
  await store.createRole('r', saved.assume_role_policy);
  await store.putPolicy('role', 'r', 'p', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kinesis:PutRecords', Resource: STREAM }] }));
  put();
});

test('roleMayNot: trust, then the role policies, for work a service does without a signed request', async () => {
  const roleArn = `arn:aws:iam::${ACCOUNT}:role/r`;
  assert.equal(roleMayNot(store, roleArn, pinpoint('a'), 'kinesis:PutRecords', STREAM), undefined);
  assert.match(roleMayNot(store, roleArn, pinpoint('a'), 's3:PutObject', 'arn:aws:s3:::b/k')!, /no policy of role r allows s3:PutObject on arn:aws:s3:::b\/k/);
  assert.match(roleMayNot(store, roleArn, pinpoint('b'), 'kinesis:PutRecords', STREAM)!, /only under conditions/);
});

test('role ARNs resolve only spelled exactly: account, partition, path, case', async () => {
  await store.createRole('pathed', trust(), { path: '/team/' });
  assert.equal(store.roleByArn(`arn:aws:iam::${ACCOUNT}:role/team/pathed`)?.name, 'pathed');
  for (const arn of [
    `arn:aws:iam::${ACCOUNT}:role/pathed`,
    `arn:aws:iam::${ACCOUNT}:role/other/pathed`,
    `arn:aws:iam::${ACCOUNT}:role/team/../team/pathed`,
    `arn:aws:iam::999999999999:role/team/pathed`,
    `arn:aws-cn:iam::${ACCOUNT}:role/team/pathed`,
    `arn:aws:iam:us-east-1:${ACCOUNT}:role/team/pathed`,
    `arn:aws:iam::${ACCOUNT}:role/team/PATHED`,
    `arn:aws:iam::${ACCOUNT}:user/team/pathed`,
  ]) {
    assert.equal(store.roleByArn(arn), undefined, arn);
  }
});

test('sessions are not persisted; role keys of earlier versions are removed when the store opens', async () => {
  const key = assumeRole(store, `arn:aws:iam::${ACCOUNT}:role/r`, pinpoint('a')).accessKeyId;
  db.prepare(`INSERT INTO access_keys (access_key_id, secret, user_name, status, create_date) VALUES ('PSAKLEGACY', x'00', '@role:r', 'Active', '2020-01-01')`).run();
  const reopened = await IamStore.open(db, sqliteMetadata(db), clock, ACCOUNT, dir);
  assert.equal(reopened.keyOwner(key), undefined, 'a session of the previous process is unknown');
  assert.equal((db.prepare(`SELECT count(*) AS n FROM access_keys WHERE user_name LIKE '@role:%'`).get() as { n: number }).n, 0);
});

test(`at most MAX_ROLE_SESSIONS (${MAX_ROLE_SESSIONS}) sessions: the next one is refused, saying so`, async () => {
  const small = await IamStore.open(db, sqliteMetadata(db), clock, ACCOUNT, dir, { maxSessions: 3 });
  for (const app of ['a1', 'a2', 'a3']) small.roleSession('r', pinpoint(app));
  small.roleSession('r', pinpoint('a1')); // reused, not a new one
  assert.throws(() => small.roleSession('r', pinpoint('a4')), /3 role sessions exist \(the limit\)/);
  assert.equal(MAX_ROLE_SESSIONS, 100_000);
});
