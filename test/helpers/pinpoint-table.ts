// The Pinpoint event-stream table as AWS's Pinpoint-to-Athena pipelines declare it (the event
// table of AWS's "digital user engagement events database"), for tests that convert records with
// it: the DDL `pinstream query` runs, the same columns as a Glue TableInput, and a role policy
// letting Firehose read Glue tables.

import { PutRolePolicyCommand, IAMClient } from '@aws-sdk/client-iam';
import { STORAGE_FORMATS } from '../../src/catalog/catalog.js';
import { parseHiveType } from '../../src/catalog/hive-types.js';
import type { FirehoseRecord } from '../../src/firehose/destination.js';
import { parquetOptions, toParquet, type ConversionResult } from '../../src/firehose/parquet.js';
import { conversionSchema } from '../../src/firehose/schema.js';

export const PINPOINT_EVENT_COLUMNS: Array<{ Name: string; Type: string }> = [
  { Name: 'event_type', Type: 'string' },
  { Name: 'event_timestamp', Type: 'bigint' },
  { Name: 'arrival_timestamp', Type: 'bigint' },
  { Name: 'event_version', Type: 'string' },
  { Name: 'application', Type: 'struct<app_id:string,cognito_identity_pool_id:string,package_name:string,sdk:struct<name:string,version:string>,title:string,version_name:string,version_code:string>' },
  { Name: 'client', Type: 'struct<client_id:string,cognito_id:string>' },
  { Name: 'device', Type: 'struct<locale:struct<code:string,country:string,language:string>,make:string,model:string,platform:struct<name:string,version:string>>' },
  { Name: 'session', Type: 'struct<session_id:string,start_timestamp:bigint,stop_timestamp:bigint>' },
  { Name: 'attributes', Type: 'map<string,string>' },
  { Name: 'metrics', Type: 'map<string,double>' },
  { Name: 'client_context', Type: 'struct<custom:map<string,string>>' },
  { Name: 'facets', Type: 'struct<email_channel:struct<mail_event:struct<mail:struct<message_id:string,message_send_timestamp:bigint,from_address:string,destination:array<string>>,send:struct<smtp_response:string>>>>' },
  { Name: 'awsaccountid', Type: 'string' },
  // The endpoint as the event stream sends it (pinpoint.md §3), its keys as sent.
  {
    Name: 'endpoint',
    Type: 'struct<Id:string,ChannelType:string,Address:string,EndpointStatus:string,OptOut:string,EffectiveDate:string,CohortId:string,CreationDate:string,RequestId:string,Demographic:struct<Make:string,Model:string,ModelVersion:string,Locale:string,AppVersion:string,Platform:string,PlatformVersion:string,Timezone:string>,Location:struct<Country:string,City:string,PostalCode:string,Region:string,Latitude:double,Longitude:double>,Attributes:map<string,array<string>>,Metrics:map<string,double>,User:struct<UserId:string,UserAttributes:map<string,array<string>>>>',
  },
];

/** CREATE EXTERNAL TABLE for the columns above, as an Athena console user would run it. */
export function pinpointEventsDdl(table: string, location: string): string {
  return `CREATE EXTERNAL TABLE ${table} (\n${PINPOINT_EVENT_COLUMNS.map((c) => `  \`${c.Name}\` ${c.Type}`).join(',\n')}\n)\nSTORED AS PARQUET\nLOCATION '${location}'`;
}

export function pinpointEventsTableInput(name: string, location: string) {
  return {
    Name: name,
    TableType: 'EXTERNAL_TABLE',
    Parameters: { EXTERNAL: 'TRUE', classification: 'parquet' },
    StorageDescriptor: {
      Columns: PINPOINT_EVENT_COLUMNS,
      Location: location,
      InputFormat: STORAGE_FORMATS.PARQUET.inputFormat,
      OutputFormat: STORAGE_FORMATS.PARQUET.outputFormat,
      SerdeInfo: { SerializationLibrary: STORAGE_FORMATS.PARQUET.serde, Parameters: { 'serialization.format': '1' } },
    },
  };
}

/** Adds the Glue read access AWS documents for a Firehose role doing format conversion. */
export async function allowGlueRead(server: { url: string; admin: { accessKeyId: string; secretAccessKey: string } }, roleName: string, resources = ['*']): Promise<void> {
  const iam = new IAMClient({ endpoint: server.url, region: 'us-east-1', credentials: server.admin, maxAttempts: 1 });
  try {
    await iam.send(
      new PutRolePolicyCommand({
        RoleName: roleName,
        PolicyName: 'firehose-glue',
        PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['glue:GetTable', 'glue:GetTableVersions'], Resource: resources }] }),
      }),
    );
  } finally {
    iam.destroy();
  }
}

/** toParquet with the Pinpoint event table's columns (what a stream converting with it writes). */
export async function pinpointParquet(records: FirehoseRecord[], conf: Record<string, unknown>): Promise<ConversionResult> {
  const o = parquetOptions(conf);
  if (!o.ok) throw new Error(o.error);
  const columns = PINPOINT_EVENT_COLUMNS.map((c) => ({ name: c.Name, type: c.Type, hive: parseHiveType(c.Type), parameters: {} }));
  return toParquet(records, o.options, conversionSchema('pinpoint.events', columns));
}
