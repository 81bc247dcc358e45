// The Pinpoint event table as AWS's engagement data lake declares it for Athena (JSON with the
// OpenX SerDe, partitions projected from Firehose's yyyy/MM/dd/HH key layout) and AWS's published
// views over it (SMS, email, campaign, journey), in Athena's dialect as written there. Shared by the
// SQL tests (test/athena-sql.test.ts) and the Firehose-to-SQL lake test (test/lake-e2e.test.ts).

export const TABLE_DDL = `CREATE EXTERNAL TABLE pinpoint.events (
  event_type string, event_timestamp bigint, arrival_timestamp bigint, event_version string,
  application struct<app_id:string,cognito_identity_pool_id:string,sdk:map<string,string>>,
  client struct<client_id:string,cognito_id:string>,
  device struct<locale:struct<code:string,country:string,language:string>,platform:map<string,string>>,
  session map<string,string>, attributes map<string,string>, client_context struct<custom:map<string,string>>,
  awsaccountid string, metrics struct<price_in_millicents_usd:double>,
  facets struct<email_channel:struct<mail_event:struct<mail:struct<message_id:string,message_send_timestamp:bigint,from_address:string,destination:array<string>,common_headers:struct<subject:string>>>>>
) PARTITIONED BY (ingest_timestamp string)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
LOCATION 's3://events/events/'
TBLPROPERTIES ('projection.enabled'='true', 'projection.ingest_timestamp.type'='date',
  'projection.ingest_timestamp.format'='yyyy/MM/dd/HH', 'projection.ingest_timestamp.range'='NOW-2YEARS,NOW',
  'projection.ingest_timestamp.interval'='1', 'projection.ingest_timestamp.interval.unit'='HOURS',
  'storage.location.template'='s3://events/events/\${ingest_timestamp}/')`;

// AWS's published views (the Pinpoint engagement data lake's named queries), as written there.
export const VIEWS: Record<string, string> = {
  sms_all_events: `CREATE OR REPLACE VIEW sms_all_events AS
SELECT event_type, from_unixtime((event_timestamp / 1000)) event_timestamp, application.app_id application_id, client.client_id endpoint_id
  , CASE WHEN attributes['campaign_id'] IS NOT NULL THEN attributes['campaign_id'] WHEN attributes['journey_id'] IS NOT NULL THEN attributes['journey_id'] END pinpoint_campaign_journey_id
  , CASE WHEN attributes['campaign_id'] IS NOT NULL THEN 'campaign' WHEN attributes['journey_id'] IS NOT NULL THEN 'journey' ELSE 'transactional' END pinpoint_campaign_journey_type
  , awsaccountid aws_account_id, attributes['destination_phone_number'] as destination_phone_number, attributes['record_status'] as record_status
  , attributes['message_id'] as message_id, metrics.price_in_millicents_usd as price_in_millicents_usd
  , CAST(JSON_PARSE(attributes['customer_context']) AS MAP(VARCHAR, VARCHAR)) as message_tags, ingest_timestamp, device.platform['name'] as device_platform_name
FROM "awsdatacatalog"."pinpoint"."events"
WHERE from_unixtime((event_timestamp / 1000)) >= CAST(DATE_FORMAT(current_date, '%Y-%m-01') AS DATE) - interval '3' month and (event_type LIKE '_SMS.%')`,
  email_all_events: `CREATE OR REPLACE VIEW email_all_events AS
SELECT event_type, from_unixtime((event_timestamp / 1000)) event_timestamp, application.app_id application_id, client.client_id endpoint_id
  , awsaccountid aws_account_id, facets.email_channel.mail_event.mail.message_id message_id
  , from_unixtime((facets.email_channel.mail_event.mail.message_send_timestamp / 1000)) message_send_timestamp
  , facets.email_channel.mail_event.mail.from_address from_address, element_at(facets.email_channel.mail_event.mail.destination, 1) destination
  , facets.email_channel.mail_event.mail.common_headers.subject as subject
  , MAP_CONCAT(COALESCE(client_context.custom, CAST(JSON '{}' AS MAP(varchar,varchar))),  attributes) as message_tags, ingest_timestamp
FROM "awsdatacatalog"."pinpoint"."events"
WHERE from_unixtime((event_timestamp / 1000)) >= CAST(DATE_FORMAT(current_date, '%Y-%m-01') AS DATE) - interval '3' month and (event_type LIKE '_email.%')`,
  campaign_all_events: `CREATE OR REPLACE VIEW campaign_all_events AS
SELECT event_type, from_unixtime((event_timestamp / 1000)) event_timestamp, application.app_id application_id, client.client_id endpoint_id
  , attributes['campaign_id'] pinpoint_campaign_id, attributes['treatment_id'] pinpoint_treatment_id, awsaccountid aws_account_id
  , attributes['delivery_type'] delivery_type, attributes['campaign_send_status'] campaign_send_status, ingest_timestamp, metrics.price_in_millicents_usd
FROM "awsdatacatalog"."pinpoint"."events"
WHERE from_unixtime((event_timestamp / 1000)) >= CAST(DATE_FORMAT(current_date, '%Y-%m-01') AS DATE) - interval '3' month and (event_type like '_campaign.%')`,
  journey_all_events: `CREATE OR REPLACE VIEW journey_all_events AS
SELECT event_type, from_unixtime((event_timestamp / 1000)) event_timestamp, application.app_id application_id, client.client_id endpoint_id
  , attributes['journey_id'] journey_id, attributes['journey_activity_id'] journey_activity_id, awsaccountid aws_account_id
  , typeof(client_context.custom['endpoint']) as custom
  , json_extract_scalar(client_context.custom['endpoint'], '$.EndpointStatus') as end_point_status
  , json_extract_scalar(client_context.custom['endpoint'], '$.ChannelType') as channel_type
  , json_extract_scalar(client_context.custom['endpoint'], '$.User.UserId') as user_id, ingest_timestamp
FROM "awsdatacatalog"."pinpoint"."events"
WHERE from_unixtime((event_timestamp / 1000)) >= CAST(DATE_FORMAT(current_date, '%Y-%m-01') AS DATE) - interval '3' month and (event_type like '_journey.%')`,
};
