// Schema-driven format conversion (issue 18 item 2): a delivery stream converting to Parquet with
// a Data Catalog table, through @aws-sdk/client-firehose and @aws-sdk/client-glue against a real
// server. The Parquet files' schema is the table's (DESCRIBE of the delivered file), values land
// where the table says, fields not in the table are dropped, missing ones null, a record that
// cannot convert goes alone to format-conversion-failed/; a missing table, ORC, or a role that may
// not read the table are InvalidArgumentException at creation; a table dropped later keeps records
// waiting with the reason in DescribeDeliveryStream until it is back; a table made by DDL through
// `pinstream query` is used by a stream. The deserializer options and every Hive type are checked
// on the converter itself.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import * as G from '@aws-sdk/client-glue';
import { CreateDeliveryStreamCommand, DescribeDeliveryStreamCommand, PutRecordBatchCommand, type FirehoseClient } from '@aws-sdk/client-firehose';
import { startTestServer, type TestServer } from './helpers/server.js';
import { createDeliveryRole, firehoseClient, folderKeys, s3Destination, until, ROLE } from './helpers/firehose.js';
import { allowGlueRead, pinpointEventsDdl, pinpointEventsTableInput, PINPOINT_EVENT_COLUMNS } from './helpers/pinpoint-table.js';
import { runCli } from './helpers/process.js';
import { sqlString, withDuckDB } from '../src/firehose/duckdb.js';
import { parseHiveType } from '../src/catalog/hive-types.js';
import { conversionSchema, convertRecord, deserializerOptions, duckType, EPOCH_MILLIS_THRESHOLD, MAX_DOCUMENTS_PER_RECORD, MAX_TIMESTAMP_FORMATS, SchemaError } from '../src/firehose/schema.js';
import { parquetOptions, toParquet } from '../src/firehose/parquet.js';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';

const BUCKET = 'lake';
const conversion = (table: string, extra: Record<string, unknown> = {}, db = 'pinpoint') => ({
  Enabled: true,
  SchemaConfiguration: { DatabaseName: db, TableName: table, RoleARN: ROLE, Region: 'us-east-1' },
  InputFormatConfiguration: { Deserializer: { OpenXJsonSerDe: {} } },
  OutputFormatConfiguration: { Serializer: { ParquetSerDe: { Compression: 'GZIP' } } },
  ...extra,
});

/** A Pinpoint event-stream record (pinpoint.md §3) with an extra field the table does not have. */
function event(i: number, extra: Record<string, unknown> = {}) {
  return {
    event_type: i % 2 ? '_session.start' : 'pageView',
    event_timestamp: 1_764_151_200_000 + i,
    arrival_timestamp: 1_764_151_200_007 + i,
    event_version: '3.1',
    application: { app_id: 'app1', cognito_identity_pool_id: 'us-east-1:pool', sdk: { name: 'aws-amplify', version: '6.0.0' } },
    client: { client_id: `c${i}`, cognito_id: 'cog' },
    device: { locale: { code: 'en_GB', country: 'GB', language: 'en' }, make: 'Apple', model: 'iPhone', platform: { name: 'ios', version: '17.1' } },
    session: { session_id: `s${i}`, start_timestamp: 1_764_151_200_000 },
    attributes: { page: `/p/${i}` },
    metrics: { elapsed: i },
    client_context: { custom: { legacy_identifier: 'x' } },
    awsaccountid: '000000000000',
    not_in_table: 'dropped',
    ...extra,
  };
}

/** DuckDB's own spelling of a type (it quotes only keywords). */
async function canonical(type: string): Promise<string> {
  return (await sql(`SELECT typeof(CAST(NULL AS ${type}))`))[0][0];
}

async function sql(text: string): Promise<any[][]> {
  return withDuckDB(async (c) => (await c.runAndReadAll(text)).getRowsJson() as any[][]);
}

describe('Firehose Parquet conversion with a Data Catalog table', () => {
  let t: TestServer;
  let fh: FirehoseClient;
  let g: G.GlueClient;
  const bucketDir = () => join(t.dataDir, 'buckets', BUCKET);

  before(async () => {
    t = await startTestServer();
    await createDeliveryRole(t.server);
    await allowGlueRead(t.server, 'firehose-delivery');
    fh = firehoseClient(t.server);
    g = new G.GlueClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 });
    await g.send(new G.CreateDatabaseCommand({ DatabaseInput: { Name: 'pinpoint' } }));
    await g.send(new G.CreateTableCommand({ DatabaseName: 'pinpoint', TableInput: pinpointEventsTableInput('events', `s3://${BUCKET}/events/`) }));
  });
  after(async () => {
    fh.destroy();
    g.destroy();
    await t.close();
  });

  const create = (name: string, conv: Record<string, unknown>) =>
    fh.send(
      new CreateDeliveryStreamCommand({
        DeliveryStreamName: name,
        ExtendedS3DestinationConfiguration: s3Destination(BUCKET, {
          Prefix: `${name}/`,
          ErrorOutputPrefix: `${name}-errors/!{firehose:error-output-type}/`,
          BufferingHints: { IntervalInSeconds: 0, SizeInMBs: 1 },
          DataFormatConversionConfiguration: conv,
        }),
      }),
    );

  test('the files have the table schema and values; a record that cannot convert goes to the error output alone', async () => {
    await create('events', conversion('events'));
    const good = [0, 1, 2].map((i) => event(i));
    const bad = event(3, { event_timestamp: 'yesterday' });
    const records = [...good.slice(0, 2), bad, good[2]].map((e) => ({ Data: Buffer.from(JSON.stringify(e) + '\n') }));
    const put = await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'events', Records: records }));
    assert.equal(put.FailedPutCount, 0);
    const keys = await until(async () => {
      const k = await folderKeys(bucketDir());
      return k.some((x) => x.startsWith('events/')) && k.some((x) => x.startsWith('events-errors/')) ? k : undefined;
    }, 'the Parquet object and the error object');
    const data = keys.filter((k) => k.startsWith('events/'));
    assert.equal(data.length, 1);
    assert.match(data[0], /\.parquet$/);
    const file = sqlString(join(bucketDir(), data[0]));

    const described = await sql(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(${file}))`);
    assert.deepEqual(
      described,
      await Promise.all(PINPOINT_EVENT_COLUMNS.map(async (c) => [c.Name, await canonical(duckType(parseHiveType(c.Type)))])),
      'the Parquet schema is the table’s, column for column',
    );
    const codec = await sql(`SELECT DISTINCT compression FROM parquet_metadata(${file})`);
    assert.deepEqual(codec, [['GZIP']]);

    const rows = await sql(
      `SELECT event_type, event_timestamp, application.sdk.name, device.platform.version, session.session_id, session.stop_timestamp,
              attributes['page'], metrics['elapsed'], client_context.custom['legacy_identifier'], facets, awsaccountid
         FROM read_parquet(${file}) ORDER BY event_timestamp`,
    );
    assert.deepEqual(
      rows,
      good.map((e, i) => [e.event_type, String(e.event_timestamp), 'aws-amplify', '17.1', `s${i}`, null, `/p/${i}`, i, 'x', null, '000000000000']),
    );

    const errKeys = keys.filter((k) => k.startsWith('events-errors/'));
    assert.equal(errKeys.length, 1);
    assert.match(errKeys[0], /^events-errors\/format-conversion-failed\//);
    const docs = (await import('node:fs/promises')).readFile(join(bucketDir(), errKeys[0]), 'utf8');
    const lines = (await docs).trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 1, 'only the bad record');
    assert.equal(lines[0].lastErrorCode, 'DataFormatConversion.MalformedData');
    assert.match(lines[0].lastErrorMessage, /column event_timestamp: the string "yesterday" cannot be converted to bigint/);
    assert.deepEqual(JSON.parse(Buffer.from(lines[0].rawData, 'base64').toString()), bad);
    assert.deepEqual(lines[0].dataCatalogTable, { catalogId: null, databaseName: 'pinpoint', tableName: 'events', region: 'us-east-1', versionId: 'LATEST', catalogArn: null });
  });

  test('a missing table, ORC, an unknown deserializer format, or a role that may not read the table: InvalidArgumentException at creation', async () => {
    const refuse = async (name: string, conv: Record<string, unknown>, message: RegExp) => {
      const e = await create(name, conv).then(
        () => assert.fail(`${name} was created`),
        (x) => x,
      );
      assert.equal(e.name, 'InvalidArgumentException', e.message);
      assert.match(e.message, message);
      const d = await fh.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: name })).catch((x) => x);
      assert.equal(d.name, 'ResourceNotFoundException', 'a refused stream is not kept');
    };
    await refuse('no-table', conversion('nope'), /table pinpoint\.nope cannot be used: EntityNotFoundException: Table nope not found/);
    await refuse('no-db', conversion('events', {}, 'nodb'), /table nodb\.events cannot be used: EntityNotFoundException/);
    await refuse('orc', conversion('events', { OutputFormatConfiguration: { Serializer: { OrcSerDe: {} } } }), /OrcSerDe is not supported: this server writes Parquet only/);
    await refuse(
      'bad-format',
      conversion('events', { InputFormatConfiguration: { Deserializer: { HiveJsonSerDe: { TimestampFormats: ['yyyy-MM-dd EEE'] } } } }),
      /TimestampFormat 'yyyy-MM-dd EEE': 'EEE' is not supported/,
    );
    const other = await createDeliveryRole(t.server, 'no-glue');
    await refuse(
      'no-glue',
      { ...conversion('events'), SchemaConfiguration: { DatabaseName: 'pinpoint', TableName: 'events', RoleARN: other } },
      /role arn:aws:iam::000000000000:role\/no-glue may not read table pinpoint\.events \(glue:GetTable on arn:aws:glue:us-east-1:000000000000:catalog/,
    );
  });

  test('a table dropped later: records wait, DescribeDeliveryStream says why, and they are delivered once it is back', async () => {
    await g.send(new G.CreateTableCommand({ DatabaseName: 'pinpoint', TableInput: pinpointEventsTableInput('transient', `s3://${BUCKET}/t/`) }));
    await create('transient', conversion('transient'));
    await g.send(new G.DeleteTableCommand({ DatabaseName: 'pinpoint', Name: 'transient' }));
    await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'transient', Records: [{ Data: Buffer.from(JSON.stringify(event(9))) }] }));
    const failure = await until(async () => (await fh.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: 'transient' }))).DeliveryStreamDescription!.FailureDescription, 'a failure description');
    assert.match(failure.Details!, /table pinpoint\.transient cannot be used: EntityNotFoundException/);
    assert.deepEqual((await folderKeys(bucketDir())).filter((k) => k.startsWith('transient')), [], 'nothing written meanwhile');
    await g.send(new G.CreateTableCommand({ DatabaseName: 'pinpoint', TableInput: pinpointEventsTableInput('transient', `s3://${BUCKET}/t/`) }));
    const keys = await until(async () => {
      const k = (await folderKeys(bucketDir())).filter((x) => x.startsWith('transient/'));
      return k.length > 0 ? k : undefined;
    }, 'delivery once the table is back', 60_000);
    const rows = await sql(`SELECT client.client_id FROM read_parquet(${sqlString(join(bucketDir(), keys[0]))})`);
    assert.deepEqual(rows, [['c9']]);
  });

  test('a table created by DDL through `pinstream query` is the one a stream converts with', async () => {
    const env = { PINSTREAM_ADMIN_ACCESS_KEY_ID: t.server.admin.accessKeyId, PINSTREAM_ADMIN_SECRET_ACCESS_KEY: t.server.admin.secretAccessKey, PINSTREAM_CONFIG: '' };
    const r = await runCli(['query', '--endpoint', t.server.url, '--database', 'pinpoint', pinpointEventsDdl('ddl_events', `s3://${BUCKET}/ddl/`)], env);
    assert.equal(r.code, 0, r.stderr);
    await create('ddl', conversion('ddl_events'));
    await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'ddl', Records: [event(5), event(6)].map((e) => ({ Data: Buffer.from(JSON.stringify(e)) })) }));
    const keys = await until(async () => {
      const k = (await folderKeys(bucketDir())).filter((x) => x.startsWith('ddl/'));
      return k.length > 0 ? k : undefined;
    }, 'the DDL table stream’s object');
    const file = sqlString(join(bucketDir(), keys[0]));
    const described = await sql(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(${file}))`);
    assert.deepEqual(described.map((x) => x[0]), PINPOINT_EVENT_COLUMNS.map((c) => c.Name));
    assert.deepEqual(await sql(`SELECT session.session_id FROM read_parquet(${file}) ORDER BY 1`), [['s5'], ['s6']]);
  });
});


// --- the converter: every Hive type, the deserializer options ---------------------------------------

const schemaOf = (cols: Array<[string, string]>) => conversionSchema('db.t', cols.map(([name, type]) => ({ name, type, hive: parseHiveType(type), parameters: {} })));
const openx = (o: Record<string, unknown> = {}) => deserializerOptions({ Deserializer: { OpenXJsonSerDe: o } });
const row = (text: string, cols: Array<[string, string]>, o = openx()) => {
  const r = convertRecord(text, schemaOf(cols), o);
  return r.ok ? r.lines.map((l) => JSON.parse(l)) : r.error;
};

test('every Hive type converts, to the Parquet type DuckDB reads back', async () => {
  const cols: Array<[string, string]> = [
    ['s', 'string'], ['b', 'bigint'], ['i', 'int'], ['sm', 'smallint'], ['ti', 'tinyint'], ['d', 'double'], ['f', 'float'],
    ['bo', 'boolean'], ['ts', 'timestamp'], ['dt', 'date'], ['dec', 'decimal(10,2)'], ['bin', 'binary'], ['vc', 'varchar(3)'],
    ['m', 'map<int,array<string>>'], ['st', 'struct<a:struct<b:array<map<string,bigint>>>>'], ['arr', 'array<struct<x:double>>'],
  ];
  const rec = JSON.stringify({
    s: 12.5, b: '9223372036854775807', i: 1e3, sm: -32768, ti: 127, d: 1.5, f: '2.25', bo: 'TRUE', ts: '2024-03-07T13:05:12.123456789Z',
    dt: '2024-2-9', dec: 1234.567, bin: Buffer.from([0, 255, 65]).toString('base64'), vc: 'abcdef',
    m: { '7': ['x'], '08': ['y'] }, st: { A: { b: [{ k: 1 }] } }, arr: [{ x: 1 }, { x: null }],
  }).replace('"b":"9223372036854775807"', '"b":9223372036854775807');
  const opts = parquetOptions(conversion('t'));
  assert.ok(opts.ok);
  const out = await toParquet([{ data: Buffer.from(rec), arrivalMs: 0, recordId: 'r' }], opts.options, schemaOf(cols));
  assert.ok(out.ok, JSON.stringify(!out.ok && out.failed));
  const dir = await mkdtemp(join(tmpdir(), 'schema-test-'));
  try {
    const file = join(dir, 'x.parquet');
    await writeFile(file, out.body);
    const types = await sql(`SELECT column_type FROM (DESCRIBE SELECT * FROM read_parquet(${sqlString(file)}))`);
    assert.deepEqual(types.map((x) => x[0]), [
      'VARCHAR', 'BIGINT', 'INTEGER', 'SMALLINT', 'TINYINT', 'DOUBLE', 'FLOAT', 'BOOLEAN', 'TIMESTAMP', 'DATE', 'DECIMAL(10,2)', 'BLOB', 'VARCHAR',
      'MAP(INTEGER, VARCHAR[])', 'STRUCT(a STRUCT(b MAP(VARCHAR, BIGINT)[]))', 'STRUCT(x DOUBLE)[]',
    ]);
    const [values] = await sql(`SELECT s, b::VARCHAR, i, sm, ti, d, f, bo, ts::VARCHAR, dt::VARCHAR, dec::VARCHAR, hex(bin), vc, m[8][1], st.a.b[1]['k'], arr[2].x FROM read_parquet(${sqlString(file)})`);
    assert.deepEqual(values, ['12.5', '9223372036854775807', 1000, -32768, 127, 1.5, 2.25, true, '2024-03-07 13:05:12.123456', '2024-02-09', '1234.57', '00FF41', 'abc', 'y', '1', null]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('values that cannot convert name their column; ranges are the types’', () => {
  assert.match(row('{"i": 2147483648}', [['i', 'int']]) as string, /column i: the number 2147483648 is out of range for int/);
  assert.match(row('{"t": 128}', [['t', 'tinyint']]) as string, /out of range for tinyint/);
  assert.match(row('{"b": 1.5}', [['b', 'bigint']]) as string, /column b: the number 1.5 cannot be converted to bigint/);
  assert.match(row('{"s": {"a": [1]}}', [['s', 'struct<a:array<boolean>>']]) as string, /column s\.a\[0\]: the number 1 cannot be converted to boolean/);
  assert.match(row('{"d": 123456789.1}', [['d', 'decimal(5,1)']]) as string, /more than 4 digits before the point/);
  assert.match(row('{"dt": "2024-02-30"}', [['dt', 'date']]) as string, /not a date/);
  assert.match(row('[1]', [['a', 'string']]) as string, /a record must hold JSON objects, got an array/);
  assert.match(row('{"a": ', [['a', 'string']]) as string, /^not valid JSON/);
  // Strings take numbers, booleans and JSON text; missing fields are null; extra ones are dropped.
  assert.deepEqual(row('{"a": 1, "b": true, "c": {"x": [1]}, "extra": 1}', [['a', 'string'], ['b', 'string'], ['c', 'string'], ['d', 'string']]), [{ a: '1', b: 'true', c: '{"x":[1]}', d: null }]);
  // Several JSON documents in one record are several rows, as Firehose reads them.
  assert.deepEqual(row('{"a":1}{"a":2}\n', [['a', 'int']]), [{ a: 1 }, { a: 2 }]);
  assert.match(row('{}'.repeat(MAX_DOCUMENTS_PER_RECORD + 1), [['a', 'int']]) as string, new RegExp(`more than ${MAX_DOCUMENTS_PER_RECORD} JSON documents`));
});

test('OpenX options: CaseInsensitive (default true), ColumnToJsonKeyMappings, ConvertDotsInJsonKeysToUnderscores', () => {
  const cols: Array<[string, string]> = [['user_id', 'string'], ['ts', 'bigint'], ['m', 'map<string,int>']];
  const rec = '{"User.Id": "u1", "eventTime": 5, "M": {"Key.A": 1}}';
  assert.deepEqual(row(rec, cols), [{ user_id: null, ts: null, m: { 'key.a': 1 } }], 'keys lower-cased, map keys too');
  assert.deepEqual(row(rec, cols, openx({ ConvertDotsInJsonKeysToUnderscores: true, ColumnToJsonKeyMappings: { ts: 'eventTime' } })), [{ user_id: 'u1', ts: 5, m: { key_a: 1 } }]);
  assert.deepEqual(row(rec, cols, openx({ CaseInsensitive: false, ConvertDotsInJsonKeysToUnderscores: true })), [{ user_id: null, ts: null, m: null }], 'case kept: no key matches');
  assert.deepEqual(row('{"user_id": "u", "M": 1, "m": {"K": 2}}', cols, openx({ CaseInsensitive: false })), [{ user_id: 'u', ts: null, m: { K: 2 } }]);
});

test('timestamps: the OpenX formats, and HiveJsonSerDe TimestampFormats incl. millis', () => {
  const ts = (v: unknown, o = openx()) => {
    const r = row(JSON.stringify({ t: v }), [['t', 'timestamp']], o);
    return typeof r === 'string' ? r : r[0].t;
  };
  assert.equal(ts('2017-02-07T15:13:01.39256Z'), '2017-02-07 15:13:01.392560');
  assert.equal(ts('2017-2-7 15:13:01.14'), '2017-02-07 15:13:01.140000');
  assert.equal(ts(1518033528), '2018-02-07 19:58:48.000000', 'epoch seconds');
  assert.equal(ts(1518033528123), '2018-02-07 19:58:48.123000', 'epoch milliseconds');
  assert.equal(ts(1518033528.5), '2018-02-07 19:58:48.500000', 'fractional epoch seconds');
  assert.equal(ts(EPOCH_MILLIS_THRESHOLD - 1), '5138-11-16 09:46:39.000000', 'below the threshold: seconds');
  assert.match(ts('07/02/2017') as string, /not a timestamp/);
  const hive = (formats: string[]) => deserializerOptions({ Deserializer: { HiveJsonSerDe: { TimestampFormats: formats } } });
  assert.equal(ts('1518033528123', hive(['millis'])), '2018-02-07 19:58:48.123000');
  assert.equal(ts(1518033528123, hive(['millis'])), '2018-02-07 19:58:48.123000');
  assert.equal(ts('07/02/2017 10:11', hive(['millis', "dd/MM/yyyy HH:mm"])), '2017-02-07 10:11:00.000000');
  assert.equal(ts('2017-02-07T10:11:12+0100', hive(["yyyy-MM-dd'T'HH:mm:ssZ"])), '2017-02-07 09:11:12.000000');
  assert.equal(ts('2017-02-07 10:11:12.5', hive([])), '2017-02-07 10:11:12.500000', 'Timestamp.valueOf by default');
  assert.match(ts(1518033528, hive([])) as string, /not a timestamp/, 'no epoch numbers without millis');
  assert.throws(() => hive(new Array(MAX_TIMESTAMP_FORMATS + 1).fill('millis')), SchemaError);
  assert.throws(() => hive(['HH:mm']), /has no year/);
});

test('a table without columns, or with two of one name, cannot be a schema', () => {
  assert.throws(() => schemaOf([]), /table db\.t has no columns/);
  assert.throws(() => schemaOf([['a', 'int'], ['A', 'string']]), /two columns named A/);
});
