// Defect 7 of issue 12 (Firehose buckets were neither authorized nor contained), through the
// official SDK against a real server with folder buckets: bucket names follow S3's naming rules
// (InvalidArgumentException otherwise, so `arn:aws:s3:::..` can no longer write outside the
// buckets folder); every object is written as the S3 configuration's role, which must allow
// s3:PutObject on `arn:aws:s3:::BUCKET/KEY` (prefix included) and be assumable by Firehose for
// the stream, evaluated at delivery time; a refusal is S3.AccessDenied in the stream's health and
// DescribeDeliveryStream's FailureDescription, the batch is kept and retried, and arrives once
// the role allows it. The S3 backup, the HTTP endpoint's backup and the Redshift intermediate
// bucket take the same path. Plus containment below the API (bucket folders, FolderStore) and
// delivery streams named `.` and `..`.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateDeliveryStreamCommand,
  DeleteDeliveryStreamCommand,
  DescribeDeliveryStreamCommand,
  type FirehoseClient,
  ListDeliveryStreamsCommand,
  PutRecordCommand,
  UpdateDestinationCommand,
} from '@aws-sdk/client-firehose';
import Database from 'better-sqlite3';
import { DeleteRolePolicyCommand, IAMClient, PutRolePolicyCommand, UpdateAssumeRolePolicyCommand } from '@aws-sdk/client-iam';
import { GetAppsCommand } from '@aws-sdk/client-pinpoint';
import { startTestServer, type TestServer } from './helpers/server.js';
import { ACCOUNT, createDeliveryRole, firehoseClient, folderContents, folderKeys, s3Destination, until } from './helpers/firehose.js';
import { bucketLocation, bucketName, bucketNameProblem, ObjectStores } from '../src/firehose/objects/index.js';
import { FolderStore, InvalidKeyError } from '../src/firehose/objects/folder.js';

const roleArn = (name: string) => `arn:aws:iam::${ACCOUNT}:role/${name}`;
const NOW = { BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 0 } };

let t: TestServer;
let fh: FirehoseClient;
let iam: IAMClient;

before(async () => {
  t = await startTestServer();
  fh = firehoseClient(t.server);
  iam = new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 });
  // Tenant A's delivery role may write to bucket-a only.
  await createDeliveryRole(t.server, 'role-a', ['arn:aws:s3:::bucket-a/*']);
});
after(async () => {
  fh.destroy();
  iam.destroy();
  await t.close();
});

const bucketDir = (bucket: string) => join(t.dataDir, 'buckets', bucket);
const health = (name: string) => t.server.firehose.health(name)!;
const describe_ = async (name: string) => (await fh.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: name }))).DeliveryStreamDescription!;
const put = (name: string, data: string) => fh.send(new PutRecordCommand({ DeliveryStreamName: name, Record: { Data: Buffer.from(data) } }));
const allow = (role: string, policy: string, resources: string[]) =>
  iam.send(
    new PutRolePolicyCommand({
      RoleName: role,
      PolicyName: policy,
      PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:PutObject', Resource: resources }] }),
    }),
  );

/** Waits until the stream's delivery is failing, and returns DescribeDeliveryStream's FailureDescription. */
async function failing(name: string, pattern: RegExp): Promise<{ Type?: string; Details?: string }> {
  await until(() => health(name).delivery.lastError, `a delivery error of ${name}`);
  const d = await describe_(name);
  assert.equal(d.DeliveryStreamStatus, 'ACTIVE', 'the stream stays ACTIVE and keeps its records');
  assert.ok(d.FailureDescription, 'DescribeDeliveryStream says why delivery fails');
  assert.equal(d.FailureDescription.Type, 'UNKNOWN_ERROR');
  assert.match(d.FailureDescription.Details!, pattern);
  assert.match(health(name).delivery.lastError!.message, pattern);
  return d.FailureDescription;
}

describe('bucket names', () => {
  test('BucketARN arn:aws:s3:::.. with Prefix kinesis/ is InvalidArgumentException, and nothing is written outside the buckets folder', async () => {
    await assert.rejects(
      fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'escape', ExtendedS3DestinationConfiguration: { RoleARN: roleArn('role-a'), BucketARN: 'arn:aws:s3:::..', Prefix: 'kinesis/', ...NOW } })),
      (e: any) => e.name === 'InvalidArgumentException' && /BucketARN arn:aws:s3:::\.\. is not a valid S3 bucket ARN: "\.\." is not a valid bucket name/.test(e.message),
    );
    await assert.rejects(put('escape', 'x'), { name: 'ResourceNotFoundException' });
    assert.ok(!existsSync(join(t.dataDir, 'kinesis')) || (await readdir(join(t.dataDir, 'kinesis'))).every((n) => !/^\d{4}$/.test(n)), 'no object folders in the data directory');
  });

  test("S3's naming rules: each broken rule is refused with the rule, every valid shape accepted", async () => {
    const invalid: Array<[string, RegExp]> = [
      ['ab', /between 3 and 63/],
      ['a'.repeat(64), /between 3 and 63/],
      ['Bucket-Upper', /lowercase letters, numbers, dots/],
      ['under_score', /lowercase letters, numbers, dots/],
      ['-leading', /begin and end/],
      ['trailing.', /begin and end/],
      ['two..dots', /two adjacent periods/],
      ['192.168.5.4', /IP address/],
      ['xn--punycode', /prefix xn--/],
      ['sthree-bucket', /prefix sthree-/],
      ['amzn-s3-demo-bucket', /prefix amzn-s3-demo-/],
      ['my-bucket-s3alias', /suffix -s3alias/],
      ['my-bucket--ol-s3', /suffix --ol-s3/],
      ['my-bucket.mrap', /suffix \.mrap/],
      ['my-bucket--x-s3', /suffix --x-s3/],
      ['my-bucket--table-s3', /suffix --table-s3/],
    ];
    for (const [name, rule] of invalid) {
      await assert.rejects(
        fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'names', ExtendedS3DestinationConfiguration: s3Destination(name, { RoleARN: roleArn('role-a') }) })),
        (e: any) => e.name === 'InvalidArgumentException' && rule.test(e.message),
        `bucket name ${name}`,
      );
      assert.ok(bucketNameProblem(name), name);
    }
    // Another partition names no bucket of this server.
    await assert.rejects(
      fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'names', ExtendedS3DestinationConfiguration: { RoleARN: roleArn('role-a'), BucketARN: 'arn:aws-cn:s3:::bucket-a' } })),
      { name: 'InvalidArgumentException' },
    );
    for (const name of ['abc', 'a.b-c', '1bucket9', 'a'.repeat(63), '192.168.5.4.x']) assert.equal(bucketNameProblem(name), undefined, name);
    await fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'valid-name', ExtendedS3DestinationConfiguration: s3Destination('bucket-a', { RoleARN: roleArn('role-a') }) }));
  });

  test('the S3 backup, Redshift intermediate and HTTP endpoint backup buckets are checked the same way (create and UpdateDestination)', async () => {
    const bad = { RoleARN: roleArn('role-a'), BucketARN: 'arn:aws:s3:::..' };
    const refused = (e: any) => e.name === 'InvalidArgumentException' && /is not a valid S3 bucket ARN/.test(e.message);
    await assert.rejects(
      fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'b1', ExtendedS3DestinationConfiguration: s3Destination('bucket-a', { RoleARN: roleArn('role-a'), S3BackupMode: 'Enabled', S3BackupConfiguration: bad }) })),
      refused,
    );
    await assert.rejects(
      fh.send(
        new CreateDeliveryStreamCommand({
          DeliveryStreamName: 'b2',
          RedshiftDestinationConfiguration: {
            RoleARN: roleArn('role-a'),
            ClusterJDBCURL: 'jdbc:postgresql://127.0.0.1:5432/postgres',
            CopyCommand: { DataTableName: 't' },
            Username: 'u',
            Password: 'password',
            S3Configuration: bad,
          },
        }),
      ),
      refused,
    );
    await assert.rejects(
      fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'b3', HttpEndpointDestinationConfiguration: { EndpointConfiguration: { Url: 'http://127.0.0.1:1/' }, S3Configuration: bad } })),
      refused,
    );
  });
});

describe("delivery is authorized as the stream's role", () => {
  test("a stream naming bucket-b with a role allowed bucket-a only writes nothing there: S3.AccessDenied in health and FailureDescription, kept and delivered once allowed", { timeout: 60_000 }, async () => {
    await fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'a-to-b', ExtendedS3DestinationConfiguration: s3Destination('bucket-b', { RoleARN: roleArn('role-a'), ...NOW }) }));
    await put('a-to-b', 'from-a\n');
    await failing('a-to-b', /S3\.AccessDenied: Access was denied\. Ensure that the trust policy .*\(s3:PutObject on arn:aws:s3:::bucket-b\/\d{4}\/.* as arn:aws:iam::000000000000:role\/role-a: no policy of role role-a allows s3:PutObject/);
    assert.deepEqual(await folderKeys(bucketDir('bucket-b')), [], "nothing in B's bucket");
    assert.equal(health('a-to-b').delivery.deliveredRecords, 0);

    await allow('role-a', 'b-too', ['arn:aws:s3:::bucket-b/*']);
    await until(async () => (await folderContents(bucketDir('bucket-b'))) === 'from-a\n', 'the kept record delivered once the role allows bucket-b');
    await until(async () => (await describe_('a-to-b')).FailureDescription === undefined, 'FailureDescription gone once delivery works');
    await iam.send(new DeleteRolePolicyCommand({ RoleName: 'role-a', PolicyName: 'b-too' }));
  });

  test('the role must allow the prefix: arn:aws:s3:::bucket/prefix* decides which keys it may write', { timeout: 60_000 }, async () => {
    await createDeliveryRole(t.server, 'role-prefix', ['arn:aws:s3:::bucket-p/allowed/*']);
    await fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'p-ok', ExtendedS3DestinationConfiguration: s3Destination('bucket-p', { RoleARN: roleArn('role-prefix'), Prefix: 'allowed/', ...NOW }) }));
    await fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'p-denied', ExtendedS3DestinationConfiguration: s3Destination('bucket-p', { RoleARN: roleArn('role-prefix'), Prefix: 'other/', ...NOW }) }));
    await put('p-ok', 'ok\n');
    await put('p-denied', 'denied\n');
    await until(async () => (await folderKeys(bucketDir('bucket-p'))).length === 1, 'the allowed prefix written');
    await failing('p-denied', /s3:PutObject on arn:aws:s3:::bucket-p\/other\//);
    const keys = await folderKeys(bucketDir('bucket-p'));
    assert.equal(keys.length, 1);
    assert.match(keys[0], /^allowed\//);
  });

  test('a role whose trust policy stops naming the stream (aws:SourceArn) stops serving it at once', { timeout: 60_000 }, async () => {
    await createDeliveryRole(t.server, 'role-trust');
    await fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'trusted', ExtendedS3DestinationConfiguration: s3Destination('bucket-trust', { RoleARN: roleArn('role-trust'), ...NOW }) }));
    const trust = (stream: string) =>
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Principal: { Service: 'firehose.amazonaws.com' }, Action: 'sts:AssumeRole', Condition: { ArnEquals: { 'aws:SourceArn': `arn:aws:firehose:us-east-1:${ACCOUNT}:deliverystream/${stream}` } } },
        ],
      });
    await iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: 'role-trust', PolicyDocument: trust('someone-else') }));
    await put('trusted', 'held\n');
    await failing('trusted', /S3\.AccessDenied: .*the trust policy of role role-trust lets firehose\.amazonaws\.com assume it \(sts:AssumeRole\) only under conditions/);
    assert.deepEqual(await folderKeys(bucketDir('bucket-trust')), []);
    await iam.send(new UpdateAssumeRolePolicyCommand({ RoleName: 'role-trust', PolicyDocument: trust('trusted') }));
    await until(async () => (await folderContents(bucketDir('bucket-trust'))) === 'held\n', 'delivered once the trust names the stream again');
  });

  test('the S3 backup is written as its own role: a backup bucket the role may not write fails the delivery, and the data bucket gets nothing either', { timeout: 60_000 }, async () => {
    await fh.send(
      new CreateDeliveryStreamCommand({
        DeliveryStreamName: 'with-backup',
        ExtendedS3DestinationConfiguration: s3Destination('bucket-a', {
          RoleARN: roleArn('role-a'),
          Prefix: 'with-backup/',
          S3BackupMode: 'Enabled',
          S3BackupConfiguration: { RoleARN: roleArn('role-a'), BucketARN: 'arn:aws:s3:::bucket-backup-b' },
          ...NOW,
        }),
      }),
    );
    await put('with-backup', 'r\n');
    await failing('with-backup', /S3 backup: .*S3\.AccessDenied.*bucket-backup-b/);
    assert.deepEqual(await folderKeys(bucketDir('bucket-backup-b')), []);
    assert.deepEqual((await folderKeys(bucketDir('bucket-a'))).filter((k) => k.startsWith('with-backup/')), []);
  });

  test("the HTTP endpoint's S3 backup takes the same path: a batch abandoned to a bucket the role may not write stays, failing visibly", { timeout: 60_000 }, async () => {
    await fh.send(
      new CreateDeliveryStreamCommand({
        DeliveryStreamName: 'http-backup-denied',
        HttpEndpointDestinationConfiguration: {
          EndpointConfiguration: { Url: 'http://127.0.0.1:1/refused' },
          RetryOptions: { DurationInSeconds: 0 },
          BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 0 },
          S3Configuration: { RoleARN: roleArn('role-a'), BucketARN: 'arn:aws:s3:::bucket-http-b' },
        },
      }),
    );
    await put('http-backup-denied', 'h\n');
    await failing('http-backup-denied', /keeping an undeliverable batch failed: .*S3\.AccessDenied.*bucket-http-b/);
    assert.deepEqual(await folderKeys(bucketDir('bucket-http-b')), []);
  });

  test('the Redshift intermediate bucket takes the same path: staging refused, nothing loaded, failing visibly', { timeout: 60_000 }, async () => {
    await fh.send(
      new CreateDeliveryStreamCommand({
        DeliveryStreamName: 'redshift-staging-denied',
        RedshiftDestinationConfiguration: {
          RoleARN: roleArn('role-a'),
          ClusterJDBCURL: 'jdbc:postgresql://127.0.0.1:5432/postgres',
          CopyCommand: { DataTableName: 'never_created' },
          Username: 'postgres',
          Password: 'unused-with-trust-auth',
          S3Configuration: { RoleARN: roleArn('role-a'), BucketARN: 'arn:aws:s3:::bucket-staging-b', BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 0 } },
        },
      }),
    );
    await put('redshift-staging-denied', '{"a":1}\n');
    await failing('redshift-staging-denied', /S3\.AccessDenied.*bucket-staging-b/);
    assert.deepEqual(await folderKeys(bucketDir('bucket-staging-b')), []);
  });
});

test('a delivery stream saved by an earlier version with a bucket name S3 refuses does not stop the server; it says why it cannot deliver', { timeout: 60_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-legacy-bucket-'));
  try {
    const first = await startTestServer({ dataDir });
    await createDeliveryRole(first.server);
    const c1 = firehoseClient(first.server);
    await c1.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'legacy', ExtendedS3DestinationConfiguration: s3Destination('bucket-ok', NOW) }));
    c1.destroy();
    await first.close();
    // What an earlier version could store: BucketARN arn:aws:s3:::.. (edited in place here).
    const db = new Database(join(dataDir, 'pinstream.db'));
    const row = db.prepare('SELECT data FROM firehose_streams WHERE name = ?').get('legacy') as { data: string };
    const data = JSON.parse(row.data);
    data.destination.BucketARN = 'arn:aws:s3:::..';
    db.prepare('UPDATE firehose_streams SET data = ? WHERE name = ?').run(JSON.stringify(data), 'legacy');
    db.close();

    const second = await startTestServer({ dataDir });
    const c2 = firehoseClient(second.server);
    try {
      await c2.send(new PutRecordCommand({ DeliveryStreamName: 'legacy', Record: { Data: Buffer.from('kept\n') } }));
      await until(() => second.server.firehose.health('legacy')?.delivery.lastError, 'the legacy stream reporting why');
      const d = (await c2.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: 'legacy' }))).DeliveryStreamDescription!;
      assert.match(d.FailureDescription!.Details!, /configuration cannot be used: .*not a valid bucket name.*correct it with UpdateDestination/);
      await c2.send(
        new UpdateDestinationCommand({
          DeliveryStreamName: 'legacy',
          CurrentDeliveryStreamVersionId: d.VersionId!,
          DestinationId: 'destinationId-000000000001',
          ExtendedS3DestinationUpdate: { BucketARN: 'arn:aws:s3:::bucket-ok' },
        }),
      );
      await until(async () => (await folderContents(join(dataDir, 'buckets', 'bucket-ok'))) === 'kept\n', 'the kept record delivered after the fix');
    } finally {
      c2.destroy();
      await second.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

describe('containment below the API', () => {
  test('bucket folders: only valid names resolve, each to one folder inside <dataDir>/buckets', () => {
    const root = '/srv/pinstream';
    assert.deepEqual(bucketLocation('bucket-a', root, []), { dir: '/srv/pinstream/buckets/bucket-a' });
    for (const bad of ['..', '.', 'a/../../x', '']) assert.throws(() => bucketLocation(bad, root, []), /does not name a folder/);
    for (const arn of ['arn:aws:s3:::..', 'arn:aws:s3:::a/b', 'arn:aws:s3:::UPPER', 'arn:aws-cn:s3:::bucket-a']) assert.throws(() => bucketName(arn), arn);
    const stores = new ObjectStores(root, []);
    assert.throws(() => stores.resolve('arn:aws:s3:::..'));
  });

  test('FolderStore refuses every key that would leave its root', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pinstream-folder-'));
    try {
      const store = new FolderStore(join(dir, 'bucket'));
      for (const key of ['../x', 'a/../../x', '/abs', 'a//b', './x', 'a/./b', '..', 'a\0b']) {
        await assert.rejects(store.put(key, Buffer.from('x')), InvalidKeyError, key);
      }
      assert.deepEqual(await readdir(dir), [], 'nothing written anywhere');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('delivery streams named "." and ".." keep their logs in their own folders: deleting ".." leaves the data directory alone', async () => {
    for (const name of ['.', '..']) {
      await fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: name, ExtendedS3DestinationConfiguration: s3Destination('bucket-dots', { RoleARN: roleArn('role-a') }) }));
      await put(name, `in ${name}\n`);
    }
    for (const name of ['.', '..']) await fh.send(new DeleteDeliveryStreamCommand({ DeliveryStreamName: name }));
    assert.ok(existsSync(join(t.dataDir, 'pinstream.db')), 'the data directory is intact');
    assert.ok(existsSync(join(t.dataDir, 'firehose')), 'the firehose folder is intact');
    // The server still works, and the other streams are still there.
    await t.pinpoint.send(new GetAppsCommand({}));
    const names = (await fh.send(new ListDeliveryStreamsCommand({}))).DeliveryStreamNames!;
    assert.ok(names.includes('a-to-b') || names.includes('valid-name'));
    await put('valid-name', 'still works\n');
  });
});
