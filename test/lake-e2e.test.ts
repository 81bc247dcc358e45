// The data lake downstream, end to end (issue 18): a Glue table declared as AWS's Pinpoint
// pipelines declare it (created by Athena-style DDL through `pinstream query`, STORED AS PARQUET,
// partitions projected from Firehose's yyyy/MM/dd/HH layout), a Firehose delivery stream converting
// Pinpoint event-stream records to Parquet with that table (SchemaConfiguration), and AWS's
// published Athena views (SMS, email, campaign, journey) run unchanged through the server's SQL
// over what the stream delivered. Everything through the real server: @aws-sdk/client-firehose,
// the signed Glue and query APIs, files in a bucket folder.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CreateDeliveryStreamCommand, PutRecordBatchCommand } from '@aws-sdk/client-firehose';
import { GetTableCommand, GlueClient } from '@aws-sdk/client-glue';
import { runCatalogStatement } from '../src/cli/catalog-ddl.js';
import { parseQueryArgs, serverQuery } from '../src/cli/query.js';
import { sqlString, withDuckDB } from '../src/firehose/duckdb.js';
import { parseHiveType } from '../src/catalog/hive-types.js';
import { duckType } from '../src/firehose/schema.js';
import { startTestServer } from './helpers/server.js';
import { createDeliveryRole, firehoseClient, folderKeys, s3Destination, until, ROLE } from './helpers/firehose.js';
import { allowGlueRead } from './helpers/pinpoint-table.js';
import { TABLE_DDL, VIEWS } from './helpers/pinpoint-views.js';

const BUCKET = 'lake';
/** The views' own table, stored as Parquet where the delivery stream writes. */
const PARQUET_DDL = TABLE_DDL.replace("ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'", 'STORED AS PARQUET').replace(/s3:\/\/events\/events\//g, `s3://${BUCKET}/events/`);

/** Pinpoint event-stream records (pinpoint.md §3; keys as Pinpoint sends them, e.g. awsAccountId). */
function records(now: number) {
  const base = (type: string, ts: number, extra: object) => ({
    event_type: type,
    event_timestamp: ts,
    arrival_timestamp: ts + 100,
    event_version: '3.1',
    application: { app_id: 'app-lake', sdk: {} },
    client: { client_id: 'ep-1' },
    device: { platform: { name: 'android' } },
    session: {},
    attributes: {},
    awsAccountId: '123456789012',
    ...extra,
  });
  return [
    base('_SMS.SUCCESS', now - 5000, {
      attributes: { destination_phone_number: '+14255550142', record_status: 'DELIVERED', message_id: 'sms-1', campaign_id: 'c-9', customer_context: '{"userId":"u1"}' },
      metrics: { price_in_millicents_usd: 645 },
    }),
    base('_email.delivered', now - 4000, {
      attributes: { campaign_id: 'c-9' },
      client_context: { custom: { source: 'lake' } },
      facets: { email_channel: { mail_event: { mail: { message_id: 'em-1', message_send_timestamp: now - 60_000, from_address: 'sender@example.com', destination: ['recipient@example.com'], common_headers: { subject: 'Hello' } } } } },
    }),
    base('_campaign.send', now - 3000, { attributes: { campaign_id: 'c-9', treatment_id: '0', delivery_type: 'SMS', campaign_send_status: 'SUCCESS' }, metrics: { price_in_millicents_usd: 645 } }),
    base('_journey.send', now - 2000, {
      attributes: { journey_id: 'j-1', journey_activity_id: 'act-1' },
      client_context: { custom: { endpoint: '{"EndpointStatus":"ACTIVE","ChannelType":"SMS","User":{"UserId":"u1"}}' } },
    }),
    base('pageView', now - 1000, { attributes: { page: '/home' } }),
  ];
}

test('a delivery stream converting with the Pinpoint table writes Parquet of the table\'s schema, and AWS\'s Athena views return the expected rows over it', async () => {
  const t = await startTestServer();
  const fh = firehoseClient(t.server);
  try {
    const target = { endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin };
    await runCatalogStatement(target, 'CREATE DATABASE pinpoint');
    await runCatalogStatement(target, PARQUET_DDL);
    await createDeliveryRole(t.server);
    await allowGlueRead(t.server, 'firehose-delivery');
    await fh.send(
      new CreateDeliveryStreamCommand({
        DeliveryStreamName: 'pinpoint-lake',
        ExtendedS3DestinationConfiguration: s3Destination(BUCKET, {
          Prefix: 'events/',
          ErrorOutputPrefix: 'errors/!{firehose:error-output-type}/',
          BufferingHints: { IntervalInSeconds: 0, SizeInMBs: 1 },
          DataFormatConversionConfiguration: {
            Enabled: true,
            SchemaConfiguration: { DatabaseName: 'pinpoint', TableName: 'events', RoleARN: ROLE, Region: 'us-east-1' },
            InputFormatConfiguration: { Deserializer: { OpenXJsonSerDe: {} } },
            OutputFormatConfiguration: { Serializer: { ParquetSerDe: {} } },
          },
        }),
      }),
    );
    const put = await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'pinpoint-lake', Records: records(Date.now()).map((r) => ({ Data: Buffer.from(JSON.stringify(r) + '\n') })) }));
    assert.equal(put.FailedPutCount, 0);

    const bucketDir = join(t.dataDir, 'buckets', BUCKET);
    const keys = await until(async () => {
      const k = (await folderKeys(bucketDir)).filter((x) => x.startsWith('events/'));
      return k.length > 0 ? k : undefined;
    }, 'the delivered Parquet object');
    assert.deepEqual((await folderKeys(bucketDir)).filter((x) => x.startsWith('errors/')), [], 'every record converted');
    assert.equal(keys.length, 1);
    const m = /^events\/(\d{4}\/\d{2}\/\d{2}\/\d{2})\/[^/]+\.parquet$/.exec(keys[0]);
    assert.ok(m, keys[0]);
    const ingest = m[1];

    // The file's schema is the table's columns (the partition key is the folder, not a column).
    const glue = new GlueClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 });
    const table = (await glue.send(new GetTableCommand({ DatabaseName: 'pinpoint', Name: 'events' }))).Table!;
    glue.destroy();
    const columns = table.StorageDescriptor!.Columns!.map((c) => [c.Name!, c.Type!]);
    assert.equal(columns.length, 13, 'the table declares 13 columns');
    assert.deepEqual(table.PartitionKeys!.map((k) => k.Name), ['ingest_timestamp']);
    const described = await withDuckDB(async (c) => (await c.runAndReadAll(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(${sqlString(join(bucketDir, keys[0]))}))`)).getRowsJson());
    const expected = await withDuckDB(async (c) =>
      Promise.all(columns.map(async ([name, type]) => [name, ((await c.runAndReadAll(`SELECT typeof(CAST(NULL AS ${duckType(parseHiveType(type))}))`)).getRowsJson() as string[][])[0][0]])),
    );
    assert.deepEqual(described, expected);

    const env = { PINSTREAM_ADMIN_ACCESS_KEY_ID: t.server.admin.accessKeyId, PINSTREAM_ADMIN_SECRET_ACCESS_KEY: t.server.admin.secretAccessKey };
    const query = async (sql: string) => {
      const out = await serverQuery(parseQueryArgs(['--endpoint', t.server.url, '--database', 'pinpoint', '--format', 'json', sql], {}), env);
      return out.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
    };
    for (const view of Object.values(VIEWS)) await query(view);

    assert.deepEqual(await query(`SELECT event_type, message_id, destination_phone_number, record_status, price_in_millicents_usd, pinpoint_campaign_journey_type, message_tags['userId'] AS user_id, aws_account_id, device_platform_name, ingest_timestamp FROM sms_all_events`), [
      { event_type: '_SMS.SUCCESS', message_id: 'sms-1', destination_phone_number: '+14255550142', record_status: 'DELIVERED', price_in_millicents_usd: 645, pinpoint_campaign_journey_type: 'campaign', user_id: 'u1', aws_account_id: '123456789012', device_platform_name: 'android', ingest_timestamp: ingest },
    ]);
    assert.deepEqual(await query(`SELECT event_type, message_id, from_address, destination, subject, message_tags['source'] AS source, message_tags['campaign_id'] AS campaign FROM email_all_events`), [
      { event_type: '_email.delivered', message_id: 'em-1', from_address: 'sender@example.com', destination: 'recipient@example.com', subject: 'Hello', source: 'lake', campaign: 'c-9' },
    ]);
    assert.deepEqual(await query(`SELECT event_type, pinpoint_campaign_id, pinpoint_treatment_id, delivery_type, campaign_send_status, endpoint_id FROM campaign_all_events`), [
      { event_type: '_campaign.send', pinpoint_campaign_id: 'c-9', pinpoint_treatment_id: '0', delivery_type: 'SMS', campaign_send_status: 'SUCCESS', endpoint_id: 'ep-1' },
    ]);
    assert.deepEqual(await query(`SELECT event_type, journey_id, journey_activity_id, end_point_status, channel_type, user_id FROM journey_all_events`), [
      { event_type: '_journey.send', journey_id: 'j-1', journey_activity_id: 'act-1', end_point_status: 'ACTIVE', channel_type: 'SMS', user_id: 'u1' },
    ]);
  } finally {
    fh.destroy();
    await t.close();
  }
});
