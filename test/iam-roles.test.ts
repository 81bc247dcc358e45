// Event-stream roles at unit level, on an IamStore over a temporary data directory: the role check
// accepts what createStreamRole makes (Kinesis and Firehose destinations) and, for every way a role
// can be unfit, says precisely what is missing; createStreamRole is idempotent and writes the
// policies of reference/pinpoint.md §4.1.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../src/clock.js';
import { openDb, type Db } from '../src/store/db.js';
import { sqliteMetadata } from '../src/store/metadata.js';
import { IamStore } from '../src/iam/store.js';
import { checkStreamRole, createStreamRole, destinationActions, PINPOINT_SERVICE_PRINCIPAL, STREAM_ROLE_POLICY_NAME } from '../src/iam/roles.js';

const ACCOUNT = '000000000000';
const REGION = 'us-east-1';
const APP = 'd41d8cd98f00b204e9800998ecf8427e';
const OTHER_APP = '0cc175b9c0f1b6a831c399e269772661';
const appArn = (id: string) => `arn:aws:mobiletargeting:${REGION}:${ACCOUNT}:apps/${id}`;
const STREAM = `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/pinpoint-events`;
const FIREHOSE = `arn:aws:firehose:${REGION}:${ACCOUNT}:deliverystream/pinpoint-archive`;

let dir: string;
let db: Db;
let store: IamStore;
let clock: ManualClock;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pinstream-roles-'));
  db = openDb(dir);
  clock = new ManualClock(Date.parse('2024-05-01T00:00:00Z'));
  store = await IamStore.open(db, sqliteMetadata(db), clock, ACCOUNT, dir);
});
after(async () => {
  db.close();
  await rm(dir, { recursive: true, force: true });
});

const trustDoc = (statement: object) => JSON.stringify({ Version: '2012-10-17', Statement: [statement] });
const pinpointTrust = (condition?: object) =>
  trustDoc({ Effect: 'Allow', Principal: { Service: PINPOINT_SERVICE_PRINCIPAL }, Action: 'sts:AssumeRole', ...(condition ? { Condition: condition } : {}) });
const permissions = (actions: string[], resource: string) =>
  JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: actions, Resource: [resource] }] });

let n = 0;
/** A role with the given trust and (optionally) one inline permissions policy; returns its ARN. */
async function role(trust: string, perms?: string): Promise<{ name: string; arn: string }> {
  const name = `role-${++n}`;
  await store.createRole(name, trust);
  if (perms) await store.putPolicy('role', name, 'perms', perms);
  return { name, arn: `arn:aws:iam::${ACCOUNT}:role/${name}` };
}

/** Asserts exactly one message, mentioning every given fragment. */
function onlyMessage(messages: string[], ...fragments: string[]): string {
  assert.equal(messages.length, 1, `expected one message, got:\n${messages.join('\n')}`);
  for (const f of fragments) assert.ok(messages[0].includes(f), `message should mention ${f}:\n${messages[0]}`);
  return messages[0];
}

describe('createStreamRole', () => {
  test('Kinesis destination: the role passes the check, with the §4.1 trust and permission policies', async () => {
    const arn = await createStreamRole(store, REGION, APP, STREAM);
    const name = `pinpoint-event-stream-${APP}`;
    assert.equal(arn, `arn:aws:iam::${ACCOUNT}:role/${name}`);
    assert.deepEqual(checkStreamRole(store, arn, appArn(APP), STREAM), []);

    const r = store.getRole(name)!;
    assert.deepEqual(JSON.parse(r.assume_role_policy), {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'pinpoint.amazonaws.com' },
          Action: 'sts:AssumeRole',
          Condition: { StringEquals: { 'aws:SourceAccount': ACCOUNT }, ArnLike: { 'aws:SourceArn': appArn(APP) } },
        },
      ],
    });
    assert.deepEqual(store.listPolicies('role', name), [STREAM_ROLE_POLICY_NAME]);
    assert.deepEqual(JSON.parse(store.getPolicy('role', name, STREAM_ROLE_POLICY_NAME)!), {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['kinesis:PutRecords', 'kinesis:DescribeStream'], Resource: [STREAM] }],
    });
    // Its trust is for this app only.
    onlyMessage(checkStreamRole(store, arn, appArn(OTHER_APP), STREAM), name, 'sts:AssumeRole', appArn(OTHER_APP));
  });

  test('Firehose destination: PutRecordBatch and DescribeDeliveryStream on the delivery stream', async () => {
    const app = 'f'.repeat(32);
    const arn = await createStreamRole(store, REGION, app, FIREHOSE);
    assert.deepEqual(checkStreamRole(store, arn, appArn(app), FIREHOSE), []);
    const name = `pinpoint-event-stream-${app}`;
    assert.deepEqual(JSON.parse(store.getPolicy('role', name, STREAM_ROLE_POLICY_NAME)!).Statement, [
      { Effect: 'Allow', Action: ['firehose:PutRecordBatch', 'firehose:DescribeDeliveryStream'], Resource: [FIREHOSE] },
    ]);
    // A Firehose role does not fit a Kinesis destination: both Kinesis actions are missing.
    const wrong = checkStreamRole(store, arn, appArn(app), STREAM);
    assert.equal(wrong.length, 2, wrong.join('\n'));
    assert.match(wrong[0], /kinesis:PutRecords/);
    assert.match(wrong[1], /kinesis:DescribeStream/);
  });

  test('a second call updates the same role: same id, new destination, repaired trust, one policy', async () => {
    const app = 'a'.repeat(32);
    const first = await createStreamRole(store, REGION, app, STREAM);
    const name = `pinpoint-event-stream-${app}`;
    const before = store.getRole(name)!;
    // Someone breaks the role meanwhile.
    await store.updateAssumeRolePolicy(name, trustDoc({ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }));
    await store.putPolicy('role', name, STREAM_ROLE_POLICY_NAME, permissions(['kinesis:PutRecords'], STREAM));
    assert.equal(checkStreamRole(store, first, appArn(app), STREAM).length, 2);

    clock.advance(60_000);
    const other = `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/other`;
    const second = await createStreamRole(store, REGION, app, other);
    assert.equal(second, first);
    const after = store.getRole(name)!;
    assert.equal(after.role_id, before.role_id, 'the same role, not a new one');
    assert.equal(after.create_date, before.create_date);
    assert.equal(store.listRoles().filter((r) => r.name === name).length, 1);
    assert.deepEqual(store.listPolicies('role', name), [STREAM_ROLE_POLICY_NAME]);
    assert.deepEqual(checkStreamRole(store, second, appArn(app), other), []);
    // The policy now names the new destination (the old one is no longer granted).
    assert.equal(checkStreamRole(store, second, appArn(app), STREAM).length, 2);
    // And a third call with the same input changes nothing.
    assert.equal(await createStreamRole(store, REGION, app, other), first);
    assert.deepEqual(checkStreamRole(store, first, appArn(app), other), []);
  });

  test('a destination that is neither a Kinesis stream nor a Firehose delivery stream is refused', async () => {
    await assert.rejects(() => createStreamRole(store, REGION, APP, 'arn:aws:s3:::bucket'), /not a Kinesis stream or Firehose delivery stream ARN/);
    assert.equal(destinationActions('arn:aws:sqs:us-east-1:000000000000:queue'), undefined);
  });
});

describe('checkStreamRole messages', () => {
  const perms = permissions(['kinesis:PutRecords', 'kinesis:DescribeStream'], STREAM);

  test('a role made by hand with the §4.1 policies (no conditions) passes', async () => {
    const r = await role(pinpointTrust(), perms);
    assert.deepEqual(checkStreamRole(store, r.arn, appArn(APP), STREAM), []);
  });

  test('malformed role ARN', async () => {
    for (const bad of ['my-role', 'arn:aws:iam::000000000000:user/bob', 'arn:aws:iam::00000000000:role/x', 'arn:aws:iam::000000000000:role/']) {
      onlyMessage(checkStreamRole(store, bad, appArn(APP), STREAM), `"${bad}"`, 'is not an IAM role ARN', 'arn:aws:iam::ACCOUNT:role/NAME');
    }
  });

  test('a role of another account', async () => {
    const arn = 'arn:aws:iam::123456789012:role/PinpointEventStreamRole';
    onlyMessage(checkStreamRole(store, arn, appArn(APP), STREAM), arn, 'account 123456789012', `this account (${ACCOUNT})`);
  });

  test('a missing role: names it and what it must allow on the destination', async () => {
    const arn = `arn:aws:iam::${ACCOUNT}:role/NoSuchRole`;
    onlyMessage(
      checkStreamRole(store, arn, appArn(APP), STREAM),
      'NoSuchRole',
      'does not exist',
      PINPOINT_SERVICE_PRINCIPAL,
      'kinesis:PutRecords',
      'kinesis:DescribeStream',
      STREAM,
      'Automatically create a role',
    );
  });

  test('the right name under another path is not the role', async () => {
    const r = await role(pinpointTrust(), perms);
    const pathed = `arn:aws:iam::${ACCOUNT}:role/service-role/${r.name}`;
    onlyMessage(checkStreamRole(store, pathed, appArn(APP), STREAM), r.name, r.arn, pathed);
  });

  test('a trust policy without the pinpoint principal', async () => {
    for (const trust of [
      trustDoc({ Effect: 'Allow', Principal: { Service: 'firehose.amazonaws.com' }, Action: 'sts:AssumeRole' }),
      trustDoc({ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'sts:AssumeRole' }),
      trustDoc({ Effect: 'Allow', Principal: { Service: PINPOINT_SERVICE_PRINCIPAL }, Action: 'sts:TagSession' }),
    ]) {
      const r = await role(trust, perms);
      const m = onlyMessage(checkStreamRole(store, r.arn, appArn(APP), STREAM), `role ${r.name}`, 'sts:AssumeRole', appArn(APP));
      assert.match(m, /does not let pinpoint\.amazonaws\.com assume it/);
      assert.match(m, /Principal \{"Service":"pinpoint\.amazonaws\.com"\}/);
    }
  });

  test('an explicit Deny in the trust policy', async () => {
    const r = await role(
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Principal: { Service: PINPOINT_SERVICE_PRINCIPAL }, Action: 'sts:AssumeRole' },
          { Effect: 'Deny', Principal: '*', Action: 'sts:AssumeRole' },
        ],
      }),
      perms,
    );
    onlyMessage(checkStreamRole(store, r.arn, appArn(APP), STREAM), `role ${r.name}`, 'sts:AssumeRole', appArn(APP));
  });

  test('a trust policy whose SourceArn condition is for another app, or SourceAccount for another account', async () => {
    const forOther = await role(pinpointTrust({ ArnLike: { 'aws:SourceArn': appArn(OTHER_APP) } }), perms);
    const m = onlyMessage(checkStreamRole(store, forOther.arn, appArn(APP), STREAM), `role ${forOther.name}`, 'sts:AssumeRole', appArn(APP), 'aws:SourceArn');
    assert.match(m, /only under conditions/);
    assert.deepEqual(checkStreamRole(store, forOther.arn, appArn(OTHER_APP), STREAM), [], 'fits the app it names');

    const otherAccount = await role(pinpointTrust({ StringEquals: { 'aws:SourceAccount': '123456789012' } }), perms);
    onlyMessage(checkStreamRole(store, otherAccount.arn, appArn(APP), STREAM), `role ${otherAccount.name}`, 'aws:SourceAccount', ACCOUNT);

    const wildcard = await role(pinpointTrust({ ArnLike: { 'aws:SourceArn': `arn:aws:mobiletargeting:${REGION}:${ACCOUNT}:apps/*` } }), perms);
    assert.deepEqual(checkStreamRole(store, wildcard.arn, appArn(APP), STREAM), []);
  });

  test('a missing put action', async () => {
    const r = await role(pinpointTrust(), permissions(['kinesis:DescribeStream'], STREAM));
    const m = onlyMessage(checkStreamRole(store, r.arn, appArn(APP), STREAM), `role ${r.name}`, 'kinesis:PutRecords', STREAM);
    assert.match(m, /does not allow kinesis:PutRecords on/);
    assert.ok(!m.includes('DescribeStream'), m);
  });

  test('a missing describe action', async () => {
    const r = await role(pinpointTrust(), permissions(['kinesis:PutRecords'], STREAM));
    const m = onlyMessage(checkStreamRole(store, r.arn, appArn(APP), STREAM), `role ${r.name}`, 'kinesis:DescribeStream', STREAM);
    assert.match(m, /does not allow kinesis:DescribeStream on/);
  });

  test('Firehose: missing PutRecordBatch and DescribeDeliveryStream, each named with the delivery stream', async () => {
    const r = await role(pinpointTrust());
    const ms = checkStreamRole(store, r.arn, appArn(APP), FIREHOSE);
    assert.equal(ms.length, 2, ms.join('\n'));
    assert.ok(ms[0].includes(`role ${r.name} does not allow firehose:PutRecordBatch on ${FIREHOSE}`), ms[0]);
    assert.ok(ms[1].includes(`role ${r.name} does not allow firehose:DescribeDeliveryStream on ${FIREHOSE}`), ms[1]);
  });

  test('actions granted on another stream do not count', async () => {
    const r = await role(pinpointTrust(), permissions(['kinesis:PutRecords', 'kinesis:DescribeStream'], `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/other`));
    assert.equal(checkStreamRole(store, r.arn, appArn(APP), STREAM).length, 2);
  });

  test('an explicit Deny in a permission policy is reported', async () => {
    const r = await role(pinpointTrust(), perms);
    await store.putPolicy('role', r.name, 'fence', JSON.stringify({ Statement: [{ Effect: 'Deny', Action: 'kinesis:PutRecords', Resource: '*' }] }));
    onlyMessage(checkStreamRole(store, r.arn, appArn(APP), STREAM), 'kinesis:PutRecords', STREAM);
  });

  test('everything missing at once: trust and both actions, one message each', async () => {
    const r = await role(trustDoc({ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }));
    const ms = checkStreamRole(store, r.arn, appArn(APP), STREAM);
    assert.equal(ms.length, 3, ms.join('\n'));
    assert.match(ms[0], /trust policy/);
    assert.match(ms[1], /kinesis:PutRecords/);
    assert.match(ms[2], /kinesis:DescribeStream/);
  });

  test('a destination that is no stream ARN is reported, not silently accepted', async () => {
    const r = await role(pinpointTrust(), perms);
    for (const dest of ['arn:aws:s3:::bucket', 'pinpoint-events', `arn:aws:kinesis:${REGION}:${ACCOUNT}:pinpoint-events`]) {
      onlyMessage(checkStreamRole(store, r.arn, appArn(APP), dest), `"${dest}"`, 'Kinesis stream ARN', 'Firehose delivery stream ARN');
    }
  });
});
