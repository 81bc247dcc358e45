// The Glue-style Data Catalog (issue 18 item 1): every served operation through
// @aws-sdk/client-glue against a real server, the AWS CLI (`aws glue …`), AWS's errors and texts,
// persistence across a restart, the catalog's limits, the Hive type parser and the two filter
// languages (GetTables patterns, GetPartitions expressions), and the read module other code uses.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as G from '@aws-sdk/client-glue';
import * as IAM from '@aws-sdk/client-iam';
import { startTestServer, type TestServer } from './helpers/server.js';
import { aws as awsCli, awsOk, skipUnlessAws } from './helpers/awscli.js';
import { signedFetch } from './helpers/signed.js';
import { formatHiveType, HiveTypeError, MAX_HIVE_TYPE_DEPTH, MAX_HIVE_TYPE_LENGTH, parseHiveType } from '../src/catalog/hive-types.js';
import { compileNamePattern, compilePartitionExpression, ExpressionError } from '../src/catalog/expression.js';
import { DEFAULT_PAGE_SIZE, MAX_GLUE_REQUEST_BYTES } from '../src/glue/api.js';
import { STORAGE_FORMATS } from '../src/catalog/catalog.js';
import { DEFAULT_CATALOG_LIMITS } from '../src/catalog/store.js';
import { DdlError, isCatalogStatement, parseDdl } from '../src/catalog/ddl.js';
import { runCli } from './helpers/process.js';

const REGION = 'us-east-1';
const ACCOUNT = '000000000000';
type Creds = { accessKeyId: string; secretAccessKey: string };

const glue = (t: TestServer, credentials: Creds = t.server.admin) => new G.GlueClient({ endpoint: t.server.url, region: REGION, credentials, maxAttempts: 1 });

/** The events table as AWS's Pinpoint-to-Athena pipelines declare it (a subset of its columns). */
const EVENTS_COLUMNS = [
  { Name: 'event_type', Type: 'string' },
  { Name: 'event_timestamp', Type: 'bigint' },
  { Name: 'arrival_timestamp', Type: 'bigint' },
  { Name: 'attributes', Type: 'map<string,string>' },
  { Name: 'metrics', Type: 'map<string,double>' },
  { Name: 'client', Type: 'struct<client_id:string,cognito_id:string>' },
  { Name: 'facets', Type: 'struct<email_channel:struct<mail_event:struct<mail:struct<message_id:string,destination:array<string>>>>>' },
];
const parquetTable = (name: string, location = 's3://lake/events/') => ({
  Name: name,
  TableType: 'EXTERNAL_TABLE',
  Parameters: { EXTERNAL: 'TRUE', classification: 'parquet' },
  PartitionKeys: [
    { Name: 'year', Type: 'string' },
    { Name: 'month', Type: 'int' },
  ],
  StorageDescriptor: {
    Columns: EVENTS_COLUMNS,
    Location: location,
    InputFormat: STORAGE_FORMATS.PARQUET.inputFormat,
    OutputFormat: STORAGE_FORMATS.PARQUET.outputFormat,
    SerdeInfo: { SerializationLibrary: STORAGE_FORMATS.PARQUET.serde, Parameters: { 'serialization.format': '1' } },
  },
});
const partition = (year: string, month: number) => ({
  Values: [year, String(month)],
  StorageDescriptor: { Location: `s3://lake/events/year=${year}/month=${month}/`, Columns: EVENTS_COLUMNS },
  Parameters: { source: 'test' },
});

async function rejects(p: Promise<unknown>, name: string, message?: string | RegExp): Promise<any> {
  const e = await p.then(
    () => assert.fail(`expected ${name}`),
    (x) => x,
  );
  assert.equal(e.name, name, `${e.name}: ${e.message}`);
  assert.equal(e.$metadata?.httpStatusCode, 400);
  if (typeof message === 'string') assert.equal(e.message, message);
  else if (message) assert.match(e.message, message);
  return e;
}

describe('Glue Data Catalog through @aws-sdk/client-glue', () => {
  let t: TestServer;
  let g: G.GlueClient;
  before(async () => {
    t = await startTestServer();
    g = glue(t);
  });
  after(async () => {
    g.destroy();
    await t.close();
  });

  test('databases: create (name folded), get, update, list, and AWS errors', async () => {
    await g.send(new G.CreateDatabaseCommand({ DatabaseInput: { Name: 'Pinpoint_Lake', Description: 'events', LocationUri: 's3://lake/', Parameters: { owner: 'data' } } }));
    const db = (await g.send(new G.GetDatabaseCommand({ Name: 'PINPOINT_LAKE' }))).Database!;
    assert.equal(db.Name, 'pinpoint_lake');
    assert.equal(db.Description, 'events');
    assert.equal(db.LocationUri, 's3://lake/');
    assert.deepEqual(db.Parameters, { owner: 'data' });
    assert.equal(db.CatalogId, ACCOUNT);
    assert.ok(db.CreateTime instanceof Date && Math.abs(db.CreateTime.getTime() - Date.now()) < 60_000);
    await rejects(g.send(new G.CreateDatabaseCommand({ DatabaseInput: { Name: 'pinpoint_lake' } })), 'AlreadyExistsException', 'Database already exists.');
    await rejects(g.send(new G.GetDatabaseCommand({ Name: 'nope' })), 'EntityNotFoundException', 'Database nope not found.');

    await g.send(new G.UpdateDatabaseCommand({ Name: 'pinpoint_lake', DatabaseInput: { Name: 'pinpoint_lake', Description: 'updated' } }));
    const updated = (await g.send(new G.GetDatabaseCommand({ Name: 'pinpoint_lake' }))).Database!;
    assert.equal(updated.Description, 'updated');
    assert.equal(updated.LocationUri, undefined, 'UpdateDatabase replaces the definition');
    assert.equal(updated.CreateTime!.getTime(), db.CreateTime!.getTime());
    await rejects(g.send(new G.UpdateDatabaseCommand({ Name: 'nope', DatabaseInput: { Name: 'nope' } })), 'EntityNotFoundException', 'Database nope not found.');
    await rejects(g.send(new G.UpdateDatabaseCommand({ Name: 'pinpoint_lake', DatabaseInput: { Name: 'other' } })), 'InvalidInputException', /Renaming a database is not supported/);

    for (const n of ['db_c', 'db_a', 'db_b']) await g.send(new G.CreateDatabaseCommand({ DatabaseInput: { Name: n } }));
    const first = await g.send(new G.GetDatabasesCommand({ MaxResults: 2 }));
    assert.deepEqual(first.DatabaseList!.map((d) => d.Name), ['db_a', 'db_b']);
    const rest = await g.send(new G.GetDatabasesCommand({ MaxResults: 2, NextToken: first.NextToken }));
    assert.deepEqual(rest.DatabaseList!.map((d) => d.Name), ['db_c', 'pinpoint_lake']);
    assert.equal(rest.NextToken, undefined);
    await rejects(g.send(new G.GetDatabasesCommand({ NextToken: 'garbage' })), 'InvalidInputException', 'Invalid NextToken.');
    await rejects(g.send(new G.GetDatabaseCommand({ CatalogId: '123456789012', Name: 'db_a' })), 'EntityNotFoundException', 'Catalog 123456789012 not found.');
    await rejects(g.send(new G.CreateDatabaseCommand({ DatabaseInput: { Name: 'a/b' } })), 'InvalidInputException', /contains '\/'/);
    // The model's constraints come first: a name of 256 characters is a ValidationException.
    await rejects(g.send(new G.GetDatabaseCommand({ Name: 'x'.repeat(256) })), 'ValidationException');
  });

  test('tables: create, get (StorageDescriptor as given), update (version), list with patterns, delete', async () => {
    await g.send(new G.CreateDatabaseCommand({ DatabaseInput: { Name: 'lake' } }));
    await g.send(new G.CreateTableCommand({ DatabaseName: 'LAKE', TableInput: parquetTable('Events') }));
    const tbl = (await g.send(new G.GetTableCommand({ DatabaseName: 'lake', Name: 'EVENTS' }))).Table!;
    assert.equal(tbl.Name, 'events');
    assert.equal(tbl.DatabaseName, 'lake');
    assert.equal(tbl.CatalogId, ACCOUNT);
    assert.equal(tbl.TableType, 'EXTERNAL_TABLE');
    assert.equal(tbl.VersionId, '0');
    assert.equal(tbl.IsRegisteredWithLakeFormation, false);
    assert.match(tbl.CreatedBy!, new RegExp(`^arn:aws:iam::${ACCOUNT}:`), 'the caller');
    assert.deepEqual(tbl.StorageDescriptor!.Columns, EVENTS_COLUMNS);
    assert.deepEqual(tbl.PartitionKeys, parquetTable('x').PartitionKeys);
    assert.equal(tbl.StorageDescriptor!.SerdeInfo!.SerializationLibrary, STORAGE_FORMATS.PARQUET.serde);
    assert.ok(tbl.CreateTime instanceof Date && tbl.UpdateTime instanceof Date);

    await rejects(g.send(new G.CreateTableCommand({ DatabaseName: 'lake', TableInput: parquetTable('events') })), 'AlreadyExistsException', 'Table already exists.');
    await rejects(g.send(new G.CreateTableCommand({ DatabaseName: 'nodb', TableInput: parquetTable('events') })), 'EntityNotFoundException', 'Database nodb not found.');
    await rejects(g.send(new G.GetTableCommand({ DatabaseName: 'lake', Name: 'nope' })), 'EntityNotFoundException', 'Table nope not found.');
    await rejects(g.send(new G.GetTableCommand({ DatabaseName: 'nodb', Name: 'events' })), 'EntityNotFoundException', 'Database nodb not found.');
    await rejects(g.send(new G.CreateTableCommand({ DatabaseName: 'lake', TableInput: { Name: 'x', TargetTable: { DatabaseName: 'other', Name: 'y' } } })), 'InvalidInputException', /TargetTable is not supported/);

    const changed = parquetTable('events', 's3://lake/v2/');
    await g.send(new G.UpdateTableCommand({ DatabaseName: 'lake', TableInput: changed }));
    const v1 = (await g.send(new G.GetTableCommand({ DatabaseName: 'lake', Name: 'events' }))).Table!;
    assert.equal(v1.VersionId, '1');
    assert.equal(v1.StorageDescriptor!.Location, 's3://lake/v2/');
    assert.equal(v1.CreateTime!.getTime(), tbl.CreateTime!.getTime());
    await rejects(g.send(new G.UpdateTableCommand({ DatabaseName: 'lake', TableInput: parquetTable('nope') })), 'EntityNotFoundException', 'Table nope not found.');

    for (const n of ['sessions', 'email_events', 'sms_events', 'journey']) await g.send(new G.CreateTableCommand({ DatabaseName: 'lake', TableInput: parquetTable(n) }));
    const names = async (Expression?: string) => (await g.send(new G.GetTablesCommand({ DatabaseName: 'lake', Expression }))).TableList!.map((x) => x.Name);
    assert.deepEqual(await names(), ['email_events', 'events', 'journey', 'sessions', 'sms_events']);
    assert.deepEqual(await names('*_events'), ['email_events', 'sms_events']);
    assert.deepEqual(await names('.*_EVENTS'), ['email_events', 'sms_events']);
    assert.deepEqual(await names('events|journey'), ['events', 'journey']);
    assert.deepEqual(await names('s.s*'), ['sessions', 'sms_events']);
    assert.deepEqual(await names('se.s*'), ['sessions']);
    await rejects(g.send(new G.GetTablesCommand({ DatabaseName: 'lake', Expression: '(a+)+$' })), 'InvalidInputException', /matches only/);
    await rejects(g.send(new G.GetTablesCommand({ DatabaseName: 'nodb' })), 'EntityNotFoundException', 'Database nodb not found.');
    const p1 = await g.send(new G.GetTablesCommand({ DatabaseName: 'lake', MaxResults: 3 }));
    const p2 = await g.send(new G.GetTablesCommand({ DatabaseName: 'lake', MaxResults: 3, NextToken: p1.NextToken }));
    assert.deepEqual([...p1.TableList!, ...p2.TableList!].map((x) => x.Name), await names());
    assert.equal(p2.NextToken, undefined);
    const slim = await g.send(new G.GetTablesCommand({ DatabaseName: 'lake', AttributesToGet: ['NAME', 'TABLE_TYPE'], MaxResults: 1 }));
    assert.deepEqual(slim.TableList, [{ Name: 'email_events', TableType: 'EXTERNAL_TABLE' }]);

    await g.send(new G.DeleteTableCommand({ DatabaseName: 'lake', Name: 'Journey' }));
    assert.deepEqual(await names('journey'), []);
    await rejects(g.send(new G.DeleteTableCommand({ DatabaseName: 'lake', Name: 'journey' })), 'EntityNotFoundException', 'Table journey not found.');
  });

  test('partitions: create, batch create (errors per partition), get, expression filters, delete, batch delete', async () => {
    await g.send(new G.CreateDatabaseCommand({ DatabaseInput: { Name: 'parts' } }));
    await g.send(new G.CreateTableCommand({ DatabaseName: 'parts', TableInput: parquetTable('events') }));
    await g.send(new G.CreatePartitionCommand({ DatabaseName: 'parts', TableName: 'events', PartitionInput: partition('2024', 12) }));
    await rejects(g.send(new G.CreatePartitionCommand({ DatabaseName: 'parts', TableName: 'events', PartitionInput: partition('2024', 12) })), 'AlreadyExistsException', 'Partition already exists.');
    await rejects(
      g.send(new G.CreatePartitionCommand({ DatabaseName: 'parts', TableName: 'events', PartitionInput: { Values: ['2024'] } })),
      'InvalidInputException',
      /number of partition values \(1\) is not the number of partition keys/,
    );
    const batch = await g.send(
      new G.BatchCreatePartitionCommand({
        DatabaseName: 'parts',
        TableName: 'events',
        PartitionInputList: [partition('2024', 12), partition('2025', 1), partition('2025', 2), partition('2025', 10), partition('2023', 9)],
      }),
    );
    assert.deepEqual(batch.Errors, [{ PartitionValues: ['2024', '12'], ErrorDetail: { ErrorCode: 'AlreadyExistsException', ErrorMessage: 'Partition already exists.' } }]);

    const got = (await g.send(new G.GetPartitionCommand({ DatabaseName: 'parts', TableName: 'events', PartitionValues: ['2025', '10'] }))).Partition!;
    assert.deepEqual(got.Values, ['2025', '10']);
    assert.equal(got.DatabaseName, 'parts');
    assert.equal(got.TableName, 'events');
    assert.equal(got.StorageDescriptor!.Location, 's3://lake/events/year=2025/month=10/');
    assert.deepEqual(got.Parameters, { source: 'test' });
    assert.ok(got.CreationTime instanceof Date);
    await rejects(g.send(new G.GetPartitionCommand({ DatabaseName: 'parts', TableName: 'events', PartitionValues: ['1999', '1'] })), 'EntityNotFoundException', 'Cannot find partition.');

    const values = async (Expression?: string, MaxResults?: number) =>
      (await g.send(new G.GetPartitionsCommand({ DatabaseName: 'parts', TableName: 'events', Expression, MaxResults }))).Partitions!.map((p) => p.Values!.join('/'));
    assert.deepEqual((await values()).sort(), ['2023/9', '2024/12', '2025/1', '2025/10', '2025/2']);
    assert.deepEqual(await values("year = '2025'"), ['2025/1', '2025/10', '2025/2']);
    assert.deepEqual(await values("year = '2025' AND month = 10"), ['2025/10']);
    // month is an int key: compared as numbers (2 < 10), not as text.
    assert.deepEqual(await values("year='2025' and month < 10"), ['2025/1', '2025/2']);
    assert.deepEqual((await values("month >= 10 OR (year = '2023' AND NOT month = 1)")).sort(), ['2023/9', '2024/12', '2025/10']);
    assert.deepEqual((await values('month IN (1, 9)')).sort(), ['2023/9', '2025/1']);
    assert.deepEqual(await values('month BETWEEN 2 AND 9'), ['2023/9', '2025/2']);
    assert.deepEqual(await values("year LIKE '202_' AND month = 12"), ['2024/12']);
    assert.deepEqual(await values("`YEAR` <> '2025' AND month != 9"), ['2024/12']);
    await rejects(g.send(new G.GetPartitionsCommand({ DatabaseName: 'parts', TableName: 'events', Expression: "day = '1'" })), 'InvalidInputException', /unknown partition key 'day'/);
    await rejects(g.send(new G.GetPartitionsCommand({ DatabaseName: 'parts', TableName: 'events', Expression: "year = '2025' AND" })), 'InvalidInputException', /expected a partition key at the end/);
    await rejects(g.send(new G.GetPartitionsCommand({ DatabaseName: 'parts', TableName: 'events', Expression: "year = '2025" })), 'InvalidInputException', /unterminated string/);
    const page1 = await g.send(new G.GetPartitionsCommand({ DatabaseName: 'parts', TableName: 'events', MaxResults: 2 }));
    const page2 = await g.send(new G.GetPartitionsCommand({ DatabaseName: 'parts', TableName: 'events', MaxResults: 2, NextToken: page1.NextToken }));
    const page3 = await g.send(new G.GetPartitionsCommand({ DatabaseName: 'parts', TableName: 'events', MaxResults: 2, NextToken: page2.NextToken }));
    assert.equal([...page1.Partitions!, ...page2.Partitions!, ...page3.Partitions!].length, 5);
    assert.equal(page3.NextToken, undefined);
    const noSchema = await g.send(new G.GetPartitionsCommand({ DatabaseName: 'parts', TableName: 'events', ExcludeColumnSchema: true, MaxResults: 1 }));
    assert.equal(noSchema.Partitions![0].StorageDescriptor!.Columns, undefined);
    assert.ok(noSchema.Partitions![0].StorageDescriptor!.Location);

    await g.send(new G.DeletePartitionCommand({ DatabaseName: 'parts', TableName: 'events', PartitionValues: ['2023', '9'] }));
    await rejects(g.send(new G.DeletePartitionCommand({ DatabaseName: 'parts', TableName: 'events', PartitionValues: ['2023', '9'] })), 'EntityNotFoundException', 'Cannot find partition.');
    const del = await g.send(
      new G.BatchDeletePartitionCommand({ DatabaseName: 'parts', TableName: 'events', PartitionsToDelete: [{ Values: ['2025', '1'] }, { Values: ['1999', '1'] }] }),
    );
    assert.deepEqual(del.Errors, [{ PartitionValues: ['1999', '1'], ErrorDetail: { ErrorCode: 'EntityNotFoundException', ErrorMessage: 'Cannot find partition.' } }]);
    assert.deepEqual((await values()).sort(), ['2024/12', '2025/10', '2025/2']);
    await rejects(g.send(new G.GetPartitionsCommand({ DatabaseName: 'parts', TableName: 'nope' })), 'EntityNotFoundException', 'Table nope not found.');
  });

  test('DeleteDatabase removes its tables and their partitions; a new database of the same name is empty', async () => {
    await g.send(new G.CreateDatabaseCommand({ DatabaseInput: { Name: 'gone' } }));
    await g.send(new G.CreateTableCommand({ DatabaseName: 'gone', TableInput: parquetTable('events') }));
    await g.send(new G.CreatePartitionCommand({ DatabaseName: 'gone', TableName: 'events', PartitionInput: partition('2024', 1) }));
    await g.send(new G.DeleteDatabaseCommand({ Name: 'GONE' }));
    await rejects(g.send(new G.GetTableCommand({ DatabaseName: 'gone', Name: 'events' })), 'EntityNotFoundException', 'Database gone not found.');
    await rejects(g.send(new G.DeleteDatabaseCommand({ Name: 'gone' })), 'EntityNotFoundException', 'Database gone not found.');
    await g.send(new G.CreateDatabaseCommand({ DatabaseInput: { Name: 'gone' } }));
    assert.deepEqual((await g.send(new G.GetTablesCommand({ DatabaseName: 'gone' }))).TableList, []);
    await g.send(new G.CreateTableCommand({ DatabaseName: 'gone', TableInput: parquetTable('events') }));
    assert.deepEqual((await g.send(new G.GetPartitionsCommand({ DatabaseName: 'gone', TableName: 'events' }))).Partitions, []);
  });

  test('the read module: columns with parsed Hive types, partition keys, location, format, SerDe; partitions in order', async () => {
    await g.send(new G.CreateDatabaseCommand({ DatabaseInput: { Name: 'reader' } }));
    await g.send(new G.CreateTableCommand({ DatabaseName: 'reader', TableInput: parquetTable('events') }));
    await g.send(new G.BatchCreatePartitionCommand({ DatabaseName: 'reader', TableName: 'events', PartitionInputList: [partition('2025', 2), partition('2024', 1)] }));
    const c = t.server.catalog.getTable('READER', 'Events');
    assert.equal(c.storedAs, 'PARQUET');
    assert.equal(c.location, 's3://lake/events/');
    assert.equal(c.serde.library, STORAGE_FORMATS.PARQUET.serde);
    assert.deepEqual(c.serde.parameters, { 'serialization.format': '1' });
    assert.deepEqual(c.parameters, { EXTERNAL: 'TRUE', classification: 'parquet' });
    assert.deepEqual(c.columns.map((x) => x.name), EVENTS_COLUMNS.map((x) => x.Name));
    assert.deepEqual(c.columns[3].hive, { kind: 'map', key: { kind: 'primitive', name: 'string' }, value: { kind: 'primitive', name: 'string' } });
    assert.equal(formatHiveType(c.columns[6].hive), EVENTS_COLUMNS[6].Type);
    assert.deepEqual(c.partitionKeys.map((k) => [k.name, k.hive]), [
      ['year', { kind: 'primitive', name: 'string' }],
      ['month', { kind: 'primitive', name: 'int' }],
    ]);
    const read: string[][] = [];
    for await (const p of t.server.catalog.partitions('reader', 'events')) read.push(p.values);
    assert.deepEqual(read, [['2024', '1'], ['2025', '2']]);
    assert.throws(() => t.server.catalog.getTable('reader', 'nope'), (e: any) => e.code === 'EntityNotFoundException' && e.message === 'Table nope not found.');
    // Glue stores any type text (as AWS does); a reader is told which column it cannot use.
    await g.send(new G.CreateTableCommand({ DatabaseName: 'reader', TableInput: { Name: 'odd', StorageDescriptor: { Columns: [{ Name: 'c', Type: 'uuid' }] } } }));
    assert.throws(() => t.server.catalog.getTable('reader', 'odd'), (e: any) => e.code === 'InvalidInputException' && /Column c of table reader\.odd has the type 'uuid'/.test(e.message));
  });

  test(`a request body over MAX_GLUE_REQUEST_BYTES (${MAX_GLUE_REQUEST_BYTES}) is refused before it is read whole; DEFAULT_PAGE_SIZE is ${DEFAULT_PAGE_SIZE}`, async () => {
    const big = await signedFetch(t.server.url, {
      method: 'POST',
      path: '/',
      service: 'glue',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AWSGlue.CreateDatabase' },
      body: JSON.stringify({ DatabaseInput: { Name: 'big', Description: 'x'.repeat(MAX_GLUE_REQUEST_BYTES) } }),
      credentials: t.server.admin,
    });
    assert.equal(big.status, 413, big.text);
    await rejects(g.send(new G.GetDatabaseCommand({ Name: 'big' })), 'EntityNotFoundException');
    await g.send(new G.CreateDatabaseCommand({ DatabaseInput: { Name: 'paging' } }));
    for (let i = 0; i < DEFAULT_PAGE_SIZE + 1; i++) await g.send(new G.CreateTableCommand({ DatabaseName: 'paging', TableInput: { Name: `t${String(i).padStart(3, '0')}` } }));
    const first = await g.send(new G.GetTablesCommand({ DatabaseName: 'paging' }));
    assert.equal(first.TableList!.length, DEFAULT_PAGE_SIZE);
    assert.ok(first.NextToken);
  });

  test('an unsupported Glue operation is named as one', async () => {
    const r = await signedFetch(t.server.url, {
      method: 'POST',
      path: '/',
      service: 'glue',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AWSGlue.StartCrawler' },
      body: JSON.stringify({ Name: 'c' }),
      credentials: t.server.admin,
    });
    assert.equal(r.status, 400);
    assert.equal(r.json.__type, 'UnknownOperationException');
    assert.equal(r.json.message, 'Pinstream does not support the Glue operation StartCrawler');
  });
});

describe('Glue limits and persistence', () => {
  test('the catalog survives a restart: databases, tables and partitions as they were', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-glue-'));
    try {
      let t = await startTestServer({ dataDir });
      let g = glue(t);
      await g.send(new G.CreateDatabaseCommand({ DatabaseInput: { Name: 'kept', Description: 'd' } }));
      await g.send(new G.CreateTableCommand({ DatabaseName: 'kept', TableInput: parquetTable('events') }));
      await g.send(new G.CreatePartitionCommand({ DatabaseName: 'kept', TableName: 'events', PartitionInput: partition('2025', 3) }));
      const before = (await g.send(new G.GetTableCommand({ DatabaseName: 'kept', Name: 'events' }))).Table!;
      g.destroy();
      await t.close();
      t = await startTestServer({ dataDir });
      g = glue(t);
      try {
        assert.equal((await g.send(new G.GetDatabaseCommand({ Name: 'kept' }))).Database!.Description, 'd');
        const after = (await g.send(new G.GetTableCommand({ DatabaseName: 'kept', Name: 'events' }))).Table!;
        assert.deepEqual(after, before);
        assert.deepEqual((await g.send(new G.GetPartitionsCommand({ DatabaseName: 'kept', TableName: 'events' }))).Partitions!.map((p) => p.Values), [['2025', '3']]);
      } finally {
        g.destroy();
        await t.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test(`quotas (defaults ${DEFAULT_CATALOG_LIMITS.maxDatabases} databases, ${DEFAULT_CATALOG_LIMITS.maxTablesPerDatabase} tables/database, ${DEFAULT_CATALOG_LIMITS.maxPartitionsPerTable} partitions/table) and the per-call scan bound`, async () => {
    const t = await startTestServer({ deps: { catalogLimits: { maxDatabases: 2, maxTablesPerDatabase: 2, maxPartitionsPerTable: 3, maxScannedPerCall: 2 } } });
    const g = glue(t);
    try {
      await g.send(new G.CreateDatabaseCommand({ DatabaseInput: { Name: 'one' } }));
      await g.send(new G.CreateDatabaseCommand({ DatabaseInput: { Name: 'two' } }));
      await rejects(g.send(new G.CreateDatabaseCommand({ DatabaseInput: { Name: 'three' } })), 'ResourceNumberLimitExceededException', /already holds 2 databases/);
      for (const n of ['a', 'b']) await g.send(new G.CreateTableCommand({ DatabaseName: 'one', TableInput: parquetTable(n) }));
      await rejects(g.send(new G.CreateTableCommand({ DatabaseName: 'one', TableInput: parquetTable('c') })), 'ResourceNumberLimitExceededException', /already holds 2 tables/);
      const batch = await g.send(
        new G.BatchCreatePartitionCommand({ DatabaseName: 'one', TableName: 'a', PartitionInputList: [partition('2025', 1), partition('2025', 2), partition('2025', 3), partition('2025', 4)] }),
      );
      assert.deepEqual(batch.Errors!.map((e) => [e.PartitionValues!.join('/'), e.ErrorDetail!.ErrorCode]), [['2025/4', 'ResourceNumberLimitExceededException']]);
      // Freed room is usable again.
      await g.send(new G.DeletePartitionCommand({ DatabaseName: 'one', TableName: 'a', PartitionValues: ['2025', '1'] }));
      await g.send(new G.CreatePartitionCommand({ DatabaseName: 'one', TableName: 'a', PartitionInput: partition('2025', 4) }));
      // A filter matching only the last partition: each call reads at most 2, answering a short page and a token.
      const seen: string[] = [];
      let token: string | undefined;
      let calls = 0;
      do {
        const r = await g.send(new G.GetPartitionsCommand({ DatabaseName: 'one', TableName: 'a', Expression: 'month = 4', NextToken: token }));
        seen.push(...r.Partitions!.map((p) => p.Values!.join('/')));
        token = r.NextToken;
        calls++;
      } while (token && calls < 10);
      assert.deepEqual(seen, ['2025/4']);
      assert.equal(calls, 2);
    } finally {
      g.destroy();
      await t.close();
    }
  });
});

describe('Glue through the AWS CLI', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());
  const aws = (args: string[]) => awsCli(args, { credentials: t.server.admin, endpoint: t.server.url });

  test('aws glue create-database, create-table, get-tables, get-table, batch-create-partition, get-partitions, delete-database', async (c) => {
    if (await skipUnlessAws(c)) return;
    awsOk(await aws(['glue', 'create-database', '--database-input', JSON.stringify({ Name: 'CliLake', Description: 'from the cli' })]));
    assert.equal(awsOk(await aws(['glue', 'get-database', '--name', 'clilake'])).json.Database.Description, 'from the cli');
    awsOk(await aws(['glue', 'create-table', '--database-name', 'clilake', '--table-input', JSON.stringify(parquetTable('events'))]));
    awsOk(await aws(['glue', 'create-table', '--database-name', 'clilake', '--table-input', JSON.stringify({ Name: 'other' })]));
    const tables = awsOk(await aws(['glue', 'get-tables', '--database-name', 'clilake', '--expression', 'ev*'])).json;
    assert.deepEqual(tables.TableList.map((x: any) => x.Name), ['events']);
    assert.deepEqual(tables.TableList[0].StorageDescriptor.Columns, EVENTS_COLUMNS);
    // CLI v1 prints timestamps as they came (cli_timestamp_format none): epoch seconds, as from AWS.
    assert.ok(Math.abs(tables.TableList[0].CreateTime - Date.now() / 1000) < 60, String(tables.TableList[0].CreateTime));
    awsOk(await aws(['glue', 'batch-create-partition', '--database-name', 'clilake', '--table-name', 'events', '--partition-input-list', JSON.stringify([partition('2025', 5), partition('2025', 6)])]));
    const parts = awsOk(await aws(['glue', 'get-partitions', '--database-name', 'clilake', '--table-name', 'events', '--expression', "month = 6"])).json;
    assert.deepEqual(parts.Partitions.map((p: any) => p.Values), [['2025', '6']]);
    const missing = await aws(['glue', 'get-table', '--database-name', 'clilake', '--name', 'nope']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /EntityNotFoundException.*Table nope not found\./);
    awsOk(await aws(['glue', 'delete-database', '--name', 'clilake']));
    const gone = await aws(['glue', 'get-tables', '--database-name', 'clilake']);
    assert.match(gone.stderr, /EntityNotFoundException.*Database clilake not found\./);
  });
});

describe('IAM: glue:<Operation> on the catalog, database and table ARNs', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  test('a user allowed one database and its tables: refused elsewhere naming the ARN; listings show only what it may see', async () => {
    const admin = glue(t);
    const iam = new IAM.IAMClient({ endpoint: t.server.url, region: REGION, credentials: t.server.admin, maxAttempts: 1 });
    try {
      for (const n of ['mine', 'theirs']) {
        await admin.send(new G.CreateDatabaseCommand({ DatabaseInput: { Name: n } }));
        await admin.send(new G.CreateTableCommand({ DatabaseName: n, TableInput: parquetTable('events') }));
      }
      await iam.send(new IAM.CreateUserCommand({ UserName: 'analyst' }));
      const arn = (r: string) => `arn:aws:glue:${REGION}:${ACCOUNT}:${r}`;
      await iam.send(
        new IAM.PutUserPolicyCommand({
          UserName: 'analyst',
          PolicyName: 'p',
          PolicyDocument: JSON.stringify({
            Version: '2012-10-17',
            Statement: [{ Effect: 'Allow', Action: 'glue:*', Resource: [arn('catalog'), arn('database/mine'), arn('table/mine/*')] }],
          }),
        }),
      );
      const k = (await iam.send(new IAM.CreateAccessKeyCommand({ UserName: 'analyst' }))).AccessKey!;
      const user = glue(t, { accessKeyId: k.AccessKeyId!, secretAccessKey: k.SecretAccessKey! });
      try {
        assert.equal((await user.send(new G.GetTableCommand({ DatabaseName: 'MINE', Name: 'events' }))).Table!.Name, 'events');
        const denied = await rejects(user.send(new G.GetTableCommand({ DatabaseName: 'Theirs', Name: 'events' })), 'AccessDeniedException');
        assert.match(denied.message, new RegExp(`not authorized to perform: glue:GetTable on resource: ${arn('database/theirs').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} `));
        // A database that does not exist is refused the same way: no existence oracle.
        await rejects(user.send(new G.GetDatabaseCommand({ Name: 'absent' })), 'AccessDeniedException', /database\/absent /);
        assert.deepEqual((await user.send(new G.GetDatabasesCommand({}))).DatabaseList!.map((d) => d.Name), ['mine']);
        await rejects(user.send(new G.DeleteDatabaseCommand({ Name: 'theirs' })), 'AccessDeniedException');
        assert.ok((await admin.send(new G.GetTableCommand({ DatabaseName: 'theirs', Name: 'events' }))).Table);
      } finally {
        user.destroy();
      }
    } finally {
      admin.destroy();
      iam.destroy();
    }
  });
});

describe('Hive types', () => {
  test('primitives, parameterized and nested types parse and print canonically', () => {
    const cases: Array<[string, string]> = [
      ['string', 'string'],
      ['BIGINT', 'bigint'],
      ['int', 'int'],
      ['integer', 'int'],
      ['smallint', 'smallint'],
      ['tinyint', 'tinyint'],
      ['double', 'double'],
      ['float', 'float'],
      ['boolean', 'boolean'],
      ['timestamp', 'timestamp'],
      ['date', 'date'],
      ['binary', 'binary'],
      ['decimal', 'decimal(10,0)'],
      ['decimal(38, 9)', 'decimal(38,9)'],
      ['decimal(5)', 'decimal(5,0)'],
      ['varchar(255)', 'varchar(255)'],
      ['char(10)', 'char(10)'],
      ['array<string>', 'array<string>'],
      ['array < map < string , bigint > >', 'array<map<string,bigint>>'],
      ['map<string,struct<a:int,b:array<double>>>', 'map<string,struct<a:int,b:array<double>>>'],
      ['struct<session_id:string,start_timestamp:bigint,stop_timestamp:bigint>', 'struct<session_id:string,start_timestamp:bigint,stop_timestamp:bigint>'],
      ['struct<`my field`:string,x-y:int>', 'struct<`my field`:string,`x-y`:int>'],
      ['struct<a:struct<b:struct<c:array<struct<d:date>>>>>', 'struct<a:struct<b:struct<c:array<struct<d:date>>>>>'],
    ];
    for (const [text, canonical] of cases) assert.equal(formatHiveType(parseHiveType(text)), canonical, text);
    assert.deepEqual(parseHiveType('struct<a:int>'), { kind: 'struct', fields: [{ name: 'a', type: { kind: 'primitive', name: 'int' } }] });
    assert.deepEqual(parseHiveType('decimal(12,2)'), { kind: 'decimal', precision: 12, scale: 2 });
  });

  test('what is not a Hive type is an error saying where', () => {
    const bad: Array<[string, RegExp]> = [
      ['', /expected a type, found the end/],
      ['uuid', /unknown type 'uuid'/],
      ['array<string', /expected '>', found the end/],
      ['array<>', /expected a type name/],
      ['map<string>', /expected ','/],
      ['map<array<int>,int>', /a map key must be a primitive type/],
      ['struct<>', /at least one field/],
      ['struct<a int>', /expected ':'/],
      ['struct<a:int,A:string>', /duplicate struct field 'A'/],
      ['decimal(39,2)', /precision must be 1 to 38/],
      ['decimal(5,6)', /scale must not exceed/],
      ['varchar(0)', /varchar length/],
      ['string extra', /unexpected 'e'/],
    ];
    for (const [text, why] of bad) assert.throws(() => parseHiveType(text), (e: any) => e instanceof HiveTypeError && why.test(e.message), text);
    const deep = 'array<'.repeat(MAX_HIVE_TYPE_DEPTH + 1) + 'int' + '>'.repeat(MAX_HIVE_TYPE_DEPTH + 1);
    assert.throws(() => parseHiveType(deep), /nest deeper than 64 levels/);
    const ok = 'array<'.repeat(MAX_HIVE_TYPE_DEPTH) + 'int' + '>'.repeat(MAX_HIVE_TYPE_DEPTH);
    assert.equal(formatHiveType(parseHiveType(ok)), ok);
    assert.throws(() => parseHiveType('s'.repeat(MAX_HIVE_TYPE_LENGTH + 1)), /longer than 131072/);
  });
});

describe('filter languages', () => {
  test('name patterns: *, .*, ., | whole-name and case-insensitive; other regex syntax refused; linear on hostile input', () => {
    const m = (p: string, n: string) => compileNamePattern(p)(n);
    assert.ok(m('*', 'anything'));
    assert.ok(m('events', 'EVENTS'));
    assert.ok(!m('event', 'events'), 'whole name');
    assert.ok(m('ev*s', 'events'));
    assert.ok(m('a.c', 'abc') && !m('a.c', 'abbc'));
    assert.ok(m('x|y|ev.*', 'events'));
    for (const p of ['[a-z]+', 'a?', '^a', 'a\\d', 'a{2}']) assert.throws(() => compileNamePattern(p), ExpressionError, p);
    // `*` runs against a long near-miss: a backtracking regex would take exponential time.
    assert.ok(!m('*a*a*a*a*a*a*a*a*b', 'a'.repeat(255)));
  });

  test('partition expressions: numbers for integer keys, strings otherwise; errors say where', () => {
    const keys = [
      { name: 'year', type: 'string' },
      { name: 'hour', type: 'bigint' },
    ];
    const f = (e: string) => compilePartitionExpression(e, keys);
    assert.ok(f("year = '2025' AND hour = 9")(['2025', '09']), "'09' = 9 as a bigint key");
    assert.ok(!f("year > '2025'")(['10000', '0']), 'strings compare as text');
    assert.ok(f('hour > 9')(['x', '10']));
    assert.ok(f("year = 'it''s'")(["it's", '1']));
    assert.ok(f('')(['a', '1']));
    assert.ok(f("NOT (year = 'a' OR year = 'b') AND hour NOT IN (1,2)")(['c', '3']));
    assert.ok(!f("year NOT LIKE 'c%'")(['cat', '3']));
    assert.throws(() => f('hour = = 1'), /expected a literal at '='/);
    assert.throws(() => f('hour ; 1'), /unexpected ';'/);
    assert.throws(() => f('(hour = 1'), /expected '\)' at the end/);
    assert.throws(() => f('('.repeat(200) + 'hour = 1' + ')'.repeat(200)), /nests too deeply/);
  });
});

// --- Athena-style DDL through `pinstream query` ------------------------------------------------------

/** The DDL a Pinpoint pipeline's Athena setup runs (AWS's solution declares the events table so). */
const EVENTS_DDL = `CREATE EXTERNAL TABLE IF NOT EXISTS pinpoint.events (
  event_type string,
  event_timestamp bigint,
  arrival_timestamp bigint,
  attributes map<string,string>,
  metrics map<string,double>,
  session struct<session_id:string, start_timestamp:bigint, stop_timestamp:bigint>,
  client struct<client_id:string, cognito_id:string> COMMENT 'device',
  amount decimal(12, 2)
)
PARTITIONED BY (ingest_date string, \`hour\` int)
ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'
STORED AS PARQUET
LOCATION 's3://lake/events/'
TBLPROPERTIES ('parquet.compression'='SNAPPY', 'projection.enabled'='false')`;


describe('Athena-style DDL', () => {
  test('the parser: what Athena writes into Glue for CREATE EXTERNAL TABLE … STORED AS PARQUET', () => {
    const s = parseDdl(EVENTS_DDL);
    assert.equal(s.kind, 'create-table');
    if (s.kind !== 'create-table') return;
    assert.equal(s.database, 'pinpoint');
    assert.equal(s.ifNotExists, true);
    const sd = s.input.StorageDescriptor;
    assert.deepEqual(sd.Columns.map((c) => [c.Name, c.Type]), [
      ['event_type', 'string'],
      ['event_timestamp', 'bigint'],
      ['arrival_timestamp', 'bigint'],
      ['attributes', 'map<string,string>'],
      ['metrics', 'map<string,double>'],
      ['session', 'struct<session_id:string,start_timestamp:bigint,stop_timestamp:bigint>'],
      ['client', 'struct<client_id:string,cognito_id:string>'],
      ['amount', 'decimal(12,2)'],
    ]);
    assert.equal(sd.Columns[6].Comment, 'device');
    assert.deepEqual(s.input.PartitionKeys, [
      { Name: 'ingest_date', Type: 'string' },
      { Name: 'hour', Type: 'int' },
    ]);
    assert.equal(sd.InputFormat, 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat');
    assert.equal(sd.OutputFormat, 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat');
    assert.deepEqual(sd.SerdeInfo, { SerializationLibrary: 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe', Parameters: { 'serialization.format': '1' } });
    assert.equal(sd.Location, 's3://lake/events/');
    assert.equal(s.input.TableType, 'EXTERNAL_TABLE');
    assert.deepEqual(s.input.Parameters, { EXTERNAL: 'TRUE', classification: 'parquet', 'parquet.compression': 'SNAPPY', 'projection.enabled': 'false' });

    const json = parseDdl(
      "CREATE EXTERNAL TABLE sms (a string) ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' WITH SERDEPROPERTIES ('case.insensitive'='true') LOCATION 's3://b/sms/'",
    );
    assert.ok(json.kind === 'create-table');
    if (json.kind === 'create-table') {
      assert.equal(json.input.StorageDescriptor.InputFormat, 'org.apache.hadoop.mapred.TextInputFormat');
      assert.deepEqual(json.input.StorageDescriptor.SerdeInfo, { SerializationLibrary: 'org.openx.data.jsonserde.JsonSerDe', Parameters: { 'serialization.format': '1', 'case.insensitive': 'true' } });
    }
    const orc = parseDdl("create external table t (x int) stored as orc location 's3://b/t/'");
    assert.ok(orc.kind === 'create-table' && orc.input.StorageDescriptor.SerdeInfo.SerializationLibrary === 'org.apache.hadoop.hive.ql.io.orc.OrcSerde');
    const csv = parseDdl("CREATE EXTERNAL TABLE c (x int) ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://b/c/'");
    assert.ok(csv.kind === 'create-table' && csv.input.StorageDescriptor.SerdeInfo.Parameters['field.delim'] === ',');

    assert.deepEqual(parseDdl("CREATE DATABASE IF NOT EXISTS Lake COMMENT 'x' LOCATION 's3://b/' WITH DBPROPERTIES ('k'='v')"), {
      kind: 'create-database',
      ifNotExists: true,
      input: { Name: 'lake', Description: 'x', LocationUri: 's3://b/', Parameters: { k: 'v' } },
    });
    assert.deepEqual(parseDdl('DROP TABLE IF EXISTS db.T;'), { kind: 'drop-table', ifExists: true, database: 'db', name: 't' });
    assert.deepEqual(parseDdl("ALTER TABLE events ADD IF NOT EXISTS PARTITION (ingest_date='2025-01-01', hour=3) LOCATION 's3://x/' PARTITION (ingest_date = '2025-01-02', hour = 4)"), {
      kind: 'add-partitions',
      ifNotExists: true,
      database: undefined,
      table: 'events',
      partitions: [
        { spec: [['ingest_date', '2025-01-01'], ['hour', '3']], location: 's3://x/' },
        { spec: [['ingest_date', '2025-01-02'], ['hour', '4']], location: undefined },
      ],
    });
    assert.deepEqual(parseDdl("SHOW TABLES IN lake 'ev*'"), { kind: 'show-tables', database: 'lake', pattern: 'ev*' });
    assert.deepEqual(parseDdl('describe lake.events'), { kind: 'describe', database: 'lake', table: 'events' });
  });

  test('the parser refuses what it does not know, saying where', () => {
    const bad: Array<[string, RegExp]> = [
      ['CREATE TABLE t (a int)', /expected EXTERNAL TABLE, found 'TABLE'/],
      ["CREATE EXTERNAL TABLE t (a uuid) LOCATION 's3://b/'", /column a: unknown type 'uuid'/],
      ["CREATE EXTERNAL TABLE t (a int, a string) LOCATION 's3://b/'", /column a is declared twice/],
      ['CREATE EXTERNAL TABLE t (a int)', /needs LOCATION/],
      ["CREATE EXTERNAL TABLE t (a int) STORED AS AVRO LOCATION 's3://b/'", /expected PARQUET, ORC or TEXTFILE, found 'AVRO'/],
      ["CREATE EXTERNAL TABLE t (a int) PARTITIONED BY (a string) LOCATION 's3://b/'", /partition key a is also a column/],
      ["CREATE EXTERNAL TABLE t (a array<int) LOCATION 's3://b/'", /column a: expected '>'/],
      ["CREATE EXTERNAL TABLE t (a int) LOCATION 's3://b/' extra", /expected the end of the statement, found 'extra'/],
      ['ALTER TABLE t ADD', /expected PARTITION/],
      ["CREATE DATABASE 'x", /unterminated string/],
    ];
    for (const [sql, why] of bad) assert.throws(() => parseDdl(sql), (e: any) => e instanceof DdlError && why.test(e.message), sql);
    assert.ok(isCatalogStatement('-- set up\nCREATE EXTERNAL TABLE t (a int) LOCATION \'s3://b/\';'));
    assert.ok(!isCatalogStatement('CREATE TABLE t AS SELECT 1; SELECT * FROM t'), 'DuckDB statements stay DuckDB');
    assert.ok(!isCatalogStatement('SELECT 1'));
  });

  test('pinstream query runs DDL into the catalog through the signed Glue API; GetTable shows what Athena would have written', async () => {
    const t = await startTestServer();
    const g = glue(t);
    const env = { PINSTREAM_ADMIN_ACCESS_KEY_ID: t.server.admin.accessKeyId, PINSTREAM_ADMIN_SECRET_ACCESS_KEY: t.server.admin.secretAccessKey };
    const q = (sql: string, ...more: string[]) => runCli(['query', '--endpoint', t.server.url, ...more, sql], env);
    try {
      for (const sql of ['CREATE DATABASE pinpoint', EVENTS_DDL, EVENTS_DDL /* IF NOT EXISTS */, "ALTER TABLE events ADD PARTITION (ingest_date='2025-06-01', hour=7) PARTITION (hour=8, ingest_date='2025-06-01') LOCATION 's3://lake/other/'"]) {
        const r = await q(sql, '--database', 'pinpoint');
        assert.equal(r.code, 0, `${sql}\n${r.stderr}`);
        assert.equal(r.stdout, '');
      }
      const table = (await g.send(new G.GetTableCommand({ DatabaseName: 'pinpoint', Name: 'events' }))).Table!;
      const sd = table.StorageDescriptor!;
      assert.deepEqual(sd.Columns!.map((c) => c.Name), ['event_type', 'event_timestamp', 'arrival_timestamp', 'attributes', 'metrics', 'session', 'client', 'amount']);
      assert.equal(sd.Columns![5].Type, 'struct<session_id:string,start_timestamp:bigint,stop_timestamp:bigint>');
      assert.equal(sd.Location, 's3://lake/events/');
      assert.equal(sd.InputFormat, STORAGE_FORMATS.PARQUET.inputFormat);
      assert.equal(sd.OutputFormat, STORAGE_FORMATS.PARQUET.outputFormat);
      assert.equal(sd.SerdeInfo!.SerializationLibrary, STORAGE_FORMATS.PARQUET.serde);
      assert.deepEqual(sd.SerdeInfo!.Parameters, { 'serialization.format': '1' });
      assert.equal(sd.NumberOfBuckets, -1);
      assert.equal(table.TableType, 'EXTERNAL_TABLE');
      assert.equal(table.Parameters!.EXTERNAL, 'TRUE');
      assert.deepEqual(table.PartitionKeys!.map((k) => [k.Name, k.Type]), [['ingest_date', 'string'], ['hour', 'int']]);
      // And the read module sees the same table.
      const c = t.server.catalog.getTable('pinpoint', 'events');
      assert.equal(c.storedAs, 'PARQUET');
      assert.deepEqual(c.columns[4].hive, { kind: 'map', key: { kind: 'primitive', name: 'string' }, value: { kind: 'primitive', name: 'double' } });
      const parts = (await g.send(new G.GetPartitionsCommand({ DatabaseName: 'pinpoint', TableName: 'events' }))).Partitions!;
      assert.deepEqual(parts.map((p) => [p.Values, p.StorageDescriptor!.Location]), [
        [['2025-06-01', '7'], 's3://lake/events/ingest_date=2025-06-01/hour=7/'],
        [['2025-06-01', '8'], 's3://lake/other/'],
      ]);

      const show = await q("SHOW TABLES IN pinpoint", '--format', 'csv');
      assert.equal(show.stdout, 'tab_name\nevents\n');
      const desc = await q('DESCRIBE pinpoint.events', '--format', 'json');
      const rows = desc.stdout.trim().split('\n').map((l) => JSON.parse(l));
      assert.deepEqual(rows[0], { col_name: 'event_type', data_type: 'string', comment: null });
      assert.ok(rows.some((r) => r.col_name === '# Partition Information'));
      assert.deepEqual((await q('SHOW DATABASES', '--format', 'csv')).stdout, 'database_name\npinpoint\n');

      // Errors: Glue's, and the parser's, one line each and exit 1.
      const dup = await q("ALTER TABLE pinpoint.events ADD PARTITION (ingest_date='2025-06-01', hour=7)");
      assert.equal(dup.code, 1);
      assert.equal(dup.stderr.trim(), 'pinstream query: AlreadyExistsException: Partition already exists. (partition 2025-06-01/7)');
      const missing = await q('DESCRIBE nope');
      assert.equal(missing.stderr.trim(), 'pinstream query: EntityNotFoundException: Database default not found.');
      const wrongKey = await q("ALTER TABLE pinpoint.events ADD PARTITION (day='1')");
      assert.match(wrongKey.stderr, /must name each partition key of pinpoint\.events once: ingest_date, hour/);
      const badType = await q("CREATE EXTERNAL TABLE pinpoint.x (a int, b strin) LOCATION 's3://b/'");
      assert.equal(badType.code, 1);
      assert.match(badType.stderr, /^pinstream query: column b: unknown type 'strin'/);
      const notEmpty = await q('DROP DATABASE pinpoint');
      assert.match(notEmpty.stderr, /Database pinpoint is not empty/);
      assert.equal((await q('DROP TABLE pinpoint.events')).code, 0);
      assert.equal((await q('DROP TABLE IF EXISTS pinpoint.events')).code, 0);
      assert.equal((await q('DROP DATABASE pinpoint')).code, 0);
      await rejects(g.send(new G.GetDatabaseCommand({ Name: 'pinpoint' })), 'EntityNotFoundException');

      // IAM decides, as for any Glue call: a key without glue rights is refused.
      const iam = new IAM.IAMClient({ endpoint: t.server.url, region: REGION, credentials: t.server.admin, maxAttempts: 1 });
      await iam.send(new IAM.CreateUserCommand({ UserName: 'nobody' }));
      const k = (await iam.send(new IAM.CreateAccessKeyCommand({ UserName: 'nobody' }))).AccessKey!;
      iam.destroy();
      const refused = await runCli(['query', '--endpoint', t.server.url, 'CREATE DATABASE x'], { PINSTREAM_ADMIN_ACCESS_KEY_ID: k.AccessKeyId!, PINSTREAM_ADMIN_SECRET_ACCESS_KEY: k.SecretAccessKey! });
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /AccessDeniedException: User: arn:aws:iam::000000000000:user\/nobody is not authorized to perform: glue:CreateDatabase on resource: arn:aws:glue:us-east-1:000000000000:catalog/);
    } finally {
      g.destroy();
      await t.close();
    }
  });
});
