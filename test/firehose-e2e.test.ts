// The embedded Firehose end to end through the server, as a user sets it up: delivery streams
// created with the SDK and the AWS CLI, records put with the SDK, and what arrives read back from
// the real stores — an S3-compatible service (s3rver) routed by PINSTREAM_BUCKETS, and a real
// PostgreSQL table behind a RedshiftDestinationConfiguration.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GetObjectCommand, ListObjectsCommand } from '@aws-sdk/client-s3';
import { PutRecordBatchCommand } from '@aws-sdk/client-firehose';
import { gunzipSync } from 'node:zlib';
import { aws, awsOk, skipUnlessAws } from './helpers/awscli.js';
import { ACCOUNT, createDeliveryRole, firehoseClient, ROLE, until } from './helpers/firehose.js';
import { postgresTarget, withClient } from './helpers/postgres.js';
import { createBucket, S3RVER_CREDENTIALS, s3rverClient, startS3rver } from './helpers/s3rver.js';
import { startTestServer } from './helpers/server.js';

const EVENTS = Array.from({ length: 30 }, (_, i) => ({
  event_type: i % 3 === 0 ? '_session.start' : 'pageView',
  event_timestamp: 1_795_000_000_000 + i,
  arrival_timestamp: 1_795_000_000_500 + i,
  application: { app_id: 'app-e2e', sdk: {} },
  client: { client_id: `device-${i % 4}` },
}));

test('a delivery stream created with the AWS CLI writes GZIP objects to an S3-compatible service (s3rver)', async (t) => {
  if (await skipUnlessAws(t)) return;
  const s3 = await startS3rver();
  t.after(() => s3.close());
  await createBucket(s3.endpoint, 'remote-lake');
  const ts = await startTestServer({
    config: {
      buckets: [{ bucket: 'remote-*', endpoint: s3.endpoint, region: 'us-east-1', accessKeyId: S3RVER_CREDENTIALS.accessKeyId, secretAccessKey: S3RVER_CREDENTIALS.secretAccessKey }],
    },
  });
  t.after(() => ts.close());
  await createDeliveryRole(ts.server);

  const out = awsOk(
    await aws(
      [
        'firehose', 'create-delivery-stream',
    '--delivery-stream-name', 'to-s3rver',
    '--extended-s3-destination-configuration',
    JSON.stringify({
      RoleARN: ROLE,
      BucketARN: 'arn:aws:s3:::remote-lake',
      Prefix: 'pinpoint/',
      BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 0 },
      CompressionFormat: 'GZIP',
    }),
      ],
      { endpoint: ts.server.url, credentials: ts.server.admin },
    ),
  );
  assert.equal(out.json.DeliveryStreamARN, `arn:aws:firehose:us-east-1:${ACCOUNT}:deliverystream/to-s3rver`);

  const fh = firehoseClient(ts.server);
  t.after(() => fh.destroy());
  const put = await fh.send(
    new PutRecordBatchCommand({ DeliveryStreamName: 'to-s3rver', Records: EVENTS.map((e) => ({ Data: Buffer.from(JSON.stringify(e) + '\n') })) }),
  );
  assert.equal(put.FailedPutCount, 0);

  const s3c = s3rverClient(s3.endpoint);
  t.after(() => s3c.destroy());
  const lines: string[] = [];
  const keys = await until(async () => {
    const listed = await s3c.send(new ListObjectsCommand({ Bucket: 'remote-lake', Prefix: 'pinpoint/' }));
    const ks = (listed.Contents ?? []).map((o) => o.Key!);
    lines.length = 0;
    for (const k of ks) {
      const body = Buffer.from(await (await s3c.send(new GetObjectCommand({ Bucket: 'remote-lake', Key: k }))).Body!.transformToByteArray());
      lines.push(...gunzipSync(body).toString('utf8').split('\n').filter(Boolean));
    }
    return lines.length >= EVENTS.length ? ks : undefined;
  }, 'all records in s3rver');
  for (const k of keys) assert.match(k, /^pinpoint\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/to-s3rver-1-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f-]{36}\.gz$/);
  assert.deepEqual(lines.map((l) => JSON.parse(l)), EVENTS);
});

test('a Redshift-style delivery stream loads the records into a real PostgreSQL table', async (t) => {
  const pgTarget = await postgresTarget();
  if (pgTarget.skip !== undefined) return t.skip(pgTarget.skip);
  const { config: pgc } = pgTarget;
  const table = `fh_e2e_${process.pid}`;
  await withClient(pgc, (c) =>
    c.query(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (event_type varchar(64), event_timestamp bigint, client jsonb)`),
  );
  t.after(() => withClient(pgc, (c) => c.query(`DROP TABLE IF EXISTS ${table}`)));
  const ts = await startTestServer();
  t.after(() => ts.close());
  await createDeliveryRole(ts.server);
  const fh = firehoseClient(ts.server);
  t.after(() => fh.destroy());
  const { CreateDeliveryStreamCommand } = await import('@aws-sdk/client-firehose');
  await fh.send(
    new CreateDeliveryStreamCommand({
      DeliveryStreamName: 'to-postgres',
      RedshiftDestinationConfiguration: {
        RoleARN: ROLE,
        ClusterJDBCURL: `jdbc:postgresql://${pgc.host}:${pgc.port}/${pgc.database}`,
        Username: pgc.user,
        Password: 'unused-with-trust-auth',
        CopyCommand: { DataTableName: table, DataTableColumns: 'event_type,event_timestamp,client', CopyOptions: "JSON 'auto'" },
        S3Configuration: { RoleARN: ROLE, BucketARN: 'arn:aws:s3:::staging', BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 0 } },
      },
    }),
  );
  const put = await fh.send(
    new PutRecordBatchCommand({ DeliveryStreamName: 'to-postgres', Records: EVENTS.map((e) => ({ Data: Buffer.from(JSON.stringify(e) + '\n') })) }),
  );
  assert.equal(put.FailedPutCount, 0);

  const rows = await until(
    async () => {
      const r = await withClient(pgc, (c) => c.query(`SELECT event_type, event_timestamp::text AS ts, client FROM ${table} ORDER BY event_timestamp`));
      return r.rows.length >= EVENTS.length ? r.rows : undefined;
    },
    'all rows in PostgreSQL',
  );
  assert.deepEqual(
    rows,
    EVENTS.map((e) => ({ event_type: e.event_type, ts: String(e.event_timestamp), client: e.client })),
  );
});
