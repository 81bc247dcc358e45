// Athena-style SQL over catalog tables (src/sql/): AWS's published Pinpoint views (SMS, email,
// campaign, journey), written in Athena's dialect, created with CREATE VIEW through the real
// server and queried unchanged over JSON-lines objects in Firehose's key layout with partition
// projection; the Presto → DuckDB rewriter function by function; pruning; --format; --output
// s3://; and authorization (a user without glue:GetTable on the table is refused).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { IAMClient, CreateUserCommand, CreateAccessKeyCommand, PutUserPolicyCommand } from '@aws-sdk/client-iam';

import { runCatalogStatement } from '../src/cli/catalog-ddl.js';
import { parseQueryArgs, serverQuery, type OutputFormat } from '../src/cli/query.js';
import { translate, wherePredicates, mysqlFormat, SqlError } from '../src/sql/presto.js';
import { MAX_RESULT_ROWS, MAX_VIEW_DEPTH } from '../src/sql/engine.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { TABLE_DDL, VIEWS } from './helpers/pinpoint-views.js';

// The server's clock also checks signatures, so it is the real time (whole hour); data is placed relative to it.
const HOUR = 3_600_000;
const NOW = Math.floor(Date.now() / HOUR) * HOUR;
const FIXED = Date.UTC(2026, 0, 15, 12, 0, 0);
const folder = (ms: number) => new Date(ms).toISOString().slice(0, 13).replace(/[-T]/g, '/');
const stamp = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
const H0 = NOW - 3 * HOUR;
const H1 = NOW - 2 * HOUR;
const OLD = NOW - 400 * 24 * HOUR;
const APP = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';

const base = (type: string, ts: number, extra: object) => ({
  event_type: type, event_timestamp: ts, arrival_timestamp: ts + 100, event_version: '3.1',
  application: { app_id: APP, sdk: {} }, client: { client_id: 'ep-1' },
  device: { platform: { name: 'android' } }, session: {}, attributes: {}, awsAccountId: '123456789012', ...extra,
});

/** Pinpoint records shaped as AWS documents them (event stream record format), by hour folder. */
function records(): Map<string, object[]> {
  const h0 = H0;
  const h1 = H1;
  const old = OLD; // older than the views' three months
  return new Map<string, object[]>([
    [folder(H0), [
      base('_SMS.SUCCESS', h0 + 1000, { attributes: { sender_request_id: 'r1', destination_phone_number: '+14255550142', record_status: 'DELIVERED', message_id: 'sms-1', campaign_id: 'c-9', customer_context: '{"userId":"u1","n":2}' }, metrics: { price_in_millicents_usd: 645 } }),
      base('_email.delivered', h0 + 2000, { attributes: { campaign_id: 'c-9' }, client_context: { custom: { source: 'test' } }, facets: { email_channel: { mail_event: { mail: { message_id: 'em-1', message_send_timestamp: h0, from_address: 'sender@example.com', destination: ['recipient@example.com'], common_headers: { subject: 'Hello' } } } } } }),
      base('_campaign.send', h0 + 3000, { attributes: { campaign_id: 'c-9', treatment_id: '0', delivery_type: 'SMS', campaign_send_status: 'SUCCESS' }, metrics: { price_in_millicents_usd: 645 } }),
    ]],
    [folder(H1), [
      base('_journey.send', h1 + 1000, { attributes: { journey_id: 'j-1', journey_activity_id: 'act-1' }, client_context: { custom: { endpoint: '{"EndpointStatus":"ACTIVE","ChannelType":"SMS","User":{"UserId":"u1"}}' } } }),
      base('_SMS.FAILURE', h1 + 2000, { attributes: { journey_id: 'j-1', record_status: 'UNREACHABLE', message_id: 'sms-2', destination_phone_number: '+14255550143' }, metrics: { price_in_millicents_usd: 0 } }),
    ]],
    [folder(OLD), [base('_SMS.SUCCESS', old, { attributes: { message_id: 'sms-old' } })]],
  ]);
}

async function setup(t: TestServer, gzip = false) {
  const bucketDir = join(t.dataDir, 'buckets', 'events');
  for (const [folder, recs] of records()) {
    const dir = join(bucketDir, 'events', folder);
    await mkdir(dir, { recursive: true });
    const body = recs.map((r) => JSON.stringify(r)).join('\n') + '\n';
    const name = `pinpoint-events-1-${folder.replace(/\//g, '-')}-00-00-0f0e0d0c-0b0a-0908-0706-050403020100`;
    if (gzip) await writeFile(join(dir, name + '.gz'), gzipSync(body));
    else await writeFile(join(dir, name), body);
  }
  await writeFile(join(bucketDir, 'events', folder(H0), '_SUCCESS'), '');
  const target = { endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin };
  await runCatalogStatement(target, 'CREATE DATABASE pinpoint');
  await runCatalogStatement(target, TABLE_DDL);
}

const envOf = (creds: { accessKeyId: string; secretAccessKey: string }) => ({ PINSTREAM_ADMIN_ACCESS_KEY_ID: creds.accessKeyId, PINSTREAM_ADMIN_SECRET_ACCESS_KEY: creds.secretAccessKey });

async function q(t: TestServer, sql: string, format: OutputFormat = 'json', extra: string[] = [], creds = t.server.admin): Promise<string> {
  const o = parseQueryArgs(['--endpoint', t.server.url, '--database', 'pinpoint', '--format', format, ...extra, sql], {});
  return serverQuery(o, envOf(creds));
}
const rows = (s: string) => s.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));

test('AWS Pinpoint views, created with CREATE VIEW, return the expected rows over projected JSON partitions (plain and gzip)', async () => {
  for (const gzip of [false, true]) {
    const t = await startTestServer();
    try {
      await setup(t, gzip);
      for (const v of Object.values(VIEWS)) await q(t, v);
      const sms = rows(await q(t, 'SELECT * FROM sms_all_events ORDER BY event_timestamp'));
      assert.deepEqual(sms.map((r) => [r.event_type, r.message_id, r.record_status, r.pinpoint_campaign_journey_type, r.pinpoint_campaign_journey_id, r.price_in_millicents_usd, r.device_platform_name, r.aws_account_id, r.ingest_timestamp]), [
        ['_SMS.SUCCESS', 'sms-1', 'DELIVERED', 'campaign', 'c-9', 645, 'android', '123456789012', folder(H0)],
        ['_SMS.FAILURE', 'sms-2', 'UNREACHABLE', 'journey', 'j-1', 0, 'android', '123456789012', folder(H1)],
      ]);
      assert.equal(sms[0].event_timestamp, stamp(H0 + 1000));
      const tags = rows(await q(t, `SELECT message_tags['userId'] u, message_tags['n'] n FROM sms_all_events WHERE message_id = 'sms-1'`));
      assert.deepEqual(tags, [{ u: 'u1', n: '2' }]);
      const email = rows(await q(t, 'SELECT message_id, from_address, destination, subject, message_tags[\'source\'] src, message_tags[\'campaign_id\'] camp, message_send_timestamp FROM email_all_events'));
      assert.deepEqual(email, [{ message_id: 'em-1', from_address: 'sender@example.com', destination: 'recipient@example.com', subject: 'Hello', src: 'test', camp: 'c-9', message_send_timestamp: stamp(H0) }]);
      const camp = rows(await q(t, 'SELECT pinpoint_campaign_id, delivery_type, campaign_send_status, price_in_millicents_usd FROM campaign_all_events'));
      assert.deepEqual(camp, [{ pinpoint_campaign_id: 'c-9', delivery_type: 'SMS', campaign_send_status: 'SUCCESS', price_in_millicents_usd: 645 }]);
      const journey = rows(await q(t, 'SELECT journey_id, custom, end_point_status, channel_type, user_id FROM journey_all_events'));
      assert.deepEqual(journey, [{ journey_id: 'j-1', custom: 'varchar', end_point_status: 'ACTIVE', channel_type: 'SMS', user_id: 'u1' }]);
    } finally {
      await t.close();
    }
  }
});

test('views are stored in Glue as Athena stores them, and DROP VIEW removes them', async () => {
  const t = await startTestServer();
  try {
    await setup(t);
    await q(t, VIEWS.campaign_all_events);
    const { GlueClient, GetTableCommand } = await import('@aws-sdk/client-glue');
    const glue = new GlueClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin });
    const view = (await glue.send(new GetTableCommand({ DatabaseName: 'pinpoint', Name: 'campaign_all_events' }))).Table!;
    assert.equal(view.TableType, 'VIRTUAL_VIEW');
    assert.match(view.ViewOriginalText!, /^\/\* Presto View: [A-Za-z0-9+/=]+ \*\/$/);
    const doc = JSON.parse(Buffer.from(/^\/\* Presto View: (\S+) \*\/$/.exec(view.ViewOriginalText!)![1], 'base64').toString());
    assert.equal(doc.catalog, 'awsdatacatalog');
    assert.equal(doc.schema, 'pinpoint');
    assert.ok(doc.originalSql.startsWith('SELECT event_type'));
    assert.deepEqual(view.StorageDescriptor!.Columns!.find((c) => c.Name === 'price_in_millicents_usd'), { Name: 'price_in_millicents_usd', Type: 'double' });
    assert.ok(doc.columns.some((c: { name: string; type: string }) => c.name === 'event_timestamp' && c.type === 'timestamp'));
    await q(t, 'DROP VIEW campaign_all_events');
    await assert.rejects(q(t, 'SELECT * FROM campaign_all_events'), /does not exist/);
    await assert.rejects(q(t, 'DROP VIEW events'), /is a table, not a view/);
    glue.destroy();
  } finally {
    await t.close();
  }
});

test('partition pruning reads only the partitions WHERE keeps; projection range leaves out-of-range folders', async () => {
  const t = await startTestServer();
  try {
    await setup(t);
    const one = rows(await q(t, `SELECT count(*) n FROM pinpoint.events WHERE ingest_timestamp = '${folder(H1)}'`));
    assert.deepEqual(one, [{ n: 2 }]);
    const all = rows(await q(t, `SELECT ingest_timestamp, count(*) n FROM events GROUP BY 1 ORDER BY 1`));
    assert.deepEqual(all, [{ ingest_timestamp: folder(OLD), n: 1 }, { ingest_timestamp: folder(H0), n: 3 }, { ingest_timestamp: folder(H1), n: 2 }]);
    const range = rows(await q(t, `SELECT count(*) n FROM events WHERE ingest_timestamp BETWEEN '${folder(OLD - HOUR)}' AND '${folder(OLD + HOUR)}'`));
    assert.deepEqual(range, [{ n: 1 }]);
    // Statistics: pruning by the WHERE reads one object.
    const res = await fetchQuery(t, `SELECT count(*) FROM events WHERE ingest_timestamp IN ('${folder(H0)}')`);
    assert.equal(res.Statistics.ObjectsRead, 1);
    assert.equal(res.Statistics.PartitionsRead, 1);
    const res2 = await fetchQuery(t, `SELECT count(*) FROM events`);
    assert.equal(res2.Statistics.ObjectsRead, 3);
  } finally {
    await t.close();
  }
});

async function fetchQuery(t: TestServer, sql: string) {
  const { SignatureV4 } = await import('@smithy/signature-v4');
  const { Sha256 } = await import('@aws-crypto/sha256-js');
  const url = new URL('/v1/query', t.server.url);
  const body = JSON.stringify({ QueryString: sql, QueryExecutionContext: { Database: 'pinpoint' } });
  const signer = new SignatureV4({ service: 'mobiletargeting', region: 'us-east-1', credentials: t.server.admin, sha256: Sha256 });
  const signed = await signer.sign({ method: 'POST', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: url.pathname, query: {}, headers: { host: url.host, 'content-type': 'application/json' }, body });
  const headers = { ...(signed.headers as Record<string, string>) };
  delete headers.host;
  const res = await fetch(url, { method: 'POST', headers, body });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as any;
}

test('--format csv and table, and --output s3:// writes QUERY_ID.csv as Athena does', async () => {
  const t = await startTestServer();
  try {
    await setup(t);
    const sql = `SELECT event_type, attributes['message_id'] AS m FROM events WHERE event_type LIKE '_SMS.%' ORDER BY event_timestamp`;
    assert.equal(await q(t, sql, 'csv'), 'event_type,m\n_SMS.SUCCESS,sms-old\n_SMS.SUCCESS,sms-1\n_SMS.FAILURE,sms-2\n');
    assert.match(await q(t, sql, 'table'), /^event_type\s+m\n-+\s+-+\n_SMS.SUCCESS\s+sms-old\n[\s\S]*\(3 rows\)\n$/);
    await q(t, sql, 'csv', ['--output', 's3://results/athena/']);
    const { readdir } = await import('node:fs/promises');
    const files = await readdir(join(t.dataDir, 'buckets', 'results', 'athena'));
    assert.equal(files.length, 1);
    assert.match(files[0], /^[0-9a-f-]{36}\.csv$/);
    assert.equal(await readFile(join(t.dataDir, 'buckets', 'results', 'athena', files[0]), 'utf8'), '"event_type","m"\n"_SMS.SUCCESS","sms-old"\n"_SMS.SUCCESS","sms-1"\n"_SMS.FAILURE","sms-2"\n');
  } finally {
    await t.close();
  }
});

test('authorization: without glue:GetTable on the table the query is refused; with it and s3:GetObject it runs', async () => {
  const t = await startTestServer();
  try {
    await setup(t);
    const iam = new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin });
    await iam.send(new CreateUserCommand({ UserName: 'analyst' }));
    const key = (await iam.send(new CreateAccessKeyCommand({ UserName: 'analyst' }))).AccessKey!;
    const creds = { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! };
    const policy = (actions: string[]) => JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: actions, Resource: '*' }] });
    await iam.send(new PutUserPolicyCommand({ UserName: 'analyst', PolicyName: 'q', PolicyDocument: policy(['athena:StartQueryExecution', 's3:GetObject', 's3:ListBucket']) }));
    await assert.rejects(q(t, 'SELECT count(*) FROM events', 'json', [], creds), /not authorized to perform: glue:GetTable/);
    await iam.send(new PutUserPolicyCommand({ UserName: 'analyst', PolicyName: 'q', PolicyDocument: policy(['athena:StartQueryExecution', 's3:GetObject', 's3:ListBucket', 'glue:GetTable']) }));
    assert.deepEqual(rows(await q(t, 'SELECT count(*) n FROM events', 'json', [], creds)), [{ n: 6 }]);
    await iam.send(new PutUserPolicyCommand({ UserName: 'analyst', PolicyName: 'q', PolicyDocument: policy(['athena:StartQueryExecution', 's3:ListBucket', 'glue:GetTable']) }));
    await assert.rejects(q(t, 'SELECT count(*) n FROM events', 'json', [], creds), /not authorized to perform: s3:GetObject/);
    // DuckDB's file functions cannot reach the server's files.
    await assert.rejects(q(t, `SELECT * FROM events, read_text('/etc/passwd')`), /Permission|disabled|not supported|Catalog Error/);
    iam.destroy();
  } finally {
    await t.close();
  }
});

test('Presto functions are rewritten for DuckDB, one case each', () => {
  const now = new Date(FIXED);
  const tr = (s: string) => translate(s, { database: 'd', now }).sql;
  assert.equal(tr('SELECT from_unixtime(x)'), 'SELECT make_timestamp(CAST(round(CAST(x AS DOUBLE) * 1000000) AS BIGINT))');
  assert.equal(tr("SELECT date_parse(s, '%Y-%m-%d %H:%i:%s')"), "SELECT strptime(s, '%Y-%m-%d %H:%M:%S')");
  assert.equal(tr("SELECT date_format(t, '%Y-%m-01 %T')"), "SELECT strftime(t, '%Y-%m-01 %H:%M:%S')");
  assert.match(tr("SELECT json_extract_scalar(j, '$.a')"), /json_extract_string\(j, '\$\.a'\)/);
  assert.equal(tr("SELECT json_extract(j, '$.a')"), "SELECT json_extract(j, '$.a')");
  assert.equal(tr('SELECT json_parse(s)'), 'SELECT json(s)');
  assert.equal(tr('SELECT CAST(m AS JSON)'), 'SELECT to_json(m)');
  assert.equal(tr("SELECT CAST(JSON '{}' AS MAP(varchar, varchar))"), `SELECT from_json(to_json(CAST('{}' AS JSON)), '"MAP(VARCHAR, VARCHAR)"')`);
  assert.equal(tr('SELECT CAST(j AS ARRAY(bigint))'), `SELECT from_json(to_json(j), '"BIGINT[]"')`);
  assert.equal(tr("SELECT m['k']"), "SELECT m['k']");
  assert.equal(tr('SELECT element_at(a, 1)'), 'SELECT (a)[1]');
  assert.equal(tr('SELECT k FROM t CROSS JOIN UNNEST(t.a) AS u(k)'), 'SELECT k FROM "d"."t" CROSS JOIN (SELECT unnest(t.a) AS k) AS u');
  assert.equal(tr('SELECT k, v FROM t CROSS JOIN UNNEST(m) AS u(k, v)'), 'SELECT k, v FROM "d"."t" CROSS JOIN (SELECT unnest(map_keys(m)) AS k, unnest(map_values(m)) AS v) AS u');
  assert.equal(tr('SELECT approx_distinct(x)'), 'SELECT count(DISTINCT x)');
  assert.equal(tr("SELECT date_trunc('day', t)"), "SELECT date_trunc('day', t)");
  assert.equal(tr('SELECT current_date, now(), current_timestamp'), "SELECT DATE '2026-01-15', TIMESTAMP '2026-01-15 12:00:00.000', TIMESTAMP '2026-01-15 12:00:00.000'");
  assert.equal(tr('SELECT "Quoted" FROM "My"."Table"'), 'SELECT "Quoted" FROM "my"."table"');
  assert.equal(tr('SELECT from_iso8601_timestamp(s)'), 'SELECT CAST(s AS TIMESTAMPTZ)');
  assert.equal(tr('SELECT to_unixtime(t)'), 'SELECT epoch(t)');
  assert.equal(tr("SELECT regexp_like(s, 'a+')"), "SELECT regexp_matches(s, 'a+')");
  assert.equal(tr('WITH w AS (SELECT 1) SELECT * FROM w'), 'WITH w AS(SELECT 1) SELECT * FROM w');
  assert.throws(() => tr('SELECT try(x)'), SqlError);
  assert.throws(() => tr('SELECT * FROM other.db.t'), /catalog other does not exist/);
  assert.throws(() => mysqlFormat('%D', false), /not supported/);
  assert.deepEqual(wherePredicates("SELECT 1 FROM t WHERE a = 'x' OR b = 'y'"), []);
});

test('translated functions answer as Presto does when run (through the server)', async () => {
  const t = await startTestServer();
  try {
    await setup(t);
    const r = rows(await q(t, `SELECT from_unixtime(1700000000) a, date_parse('2024-03-05 07:08:09', '%Y-%m-%d %H:%i:%s') b, date_format(TIMESTAMP '2024-03-05 07:08:09', '%Y/%m/%d %H:%i') c,
      json_extract_scalar('{"a":{"b":"x"}}', '$.a.b') d, json_extract_scalar('{"a":{"b":"x"}}', '$.a') e, CAST(json_extract('{"a":[1,2]}', '$.a') AS ARRAY(bigint))[2] f,
      element_at(MAP(ARRAY['k'], ARRAY['v']), 'k') g, to_unixtime(from_iso8601_timestamp('2024-01-01T00:00:00Z')) h, regexp_like('abc', 'b') i, 7 / 2 j,
      approx_distinct(event_type) k, typeof(CAST(json_parse('{"x":1}') AS MAP(VARCHAR, VARCHAR))) l
      FROM events WHERE ingest_timestamp = '${folder(H0)}'`));
    assert.deepEqual(r, [{ a: '2023-11-14 22:13:20', b: '2024-03-05 07:08:09', c: '2024/03/05 07:08', d: 'x', e: null, f: 2, g: 'v', h: 1704067200, i: 'true', j: 3, k: 3, l: 'map(varchar, varchar)' }]);
  } finally {
    await t.close();
  }
});

test('limits are named', () => {
  assert.equal(MAX_RESULT_ROWS, 100_000);
  assert.equal(MAX_VIEW_DEPTH, 16);
});

test('a projected folder outside projection.range is not read', async () => {
  const t = await startTestServer();
  try {
    await setup(t);
    const dir = join(t.dataDir, 'buckets', 'events', 'events', folder(NOW - 3 * 365 * 24 * HOUR));
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'ancient'), JSON.stringify(base('_SMS.SUCCESS', NOW, {})) + '\n');
    assert.deepEqual(rows(await q(t, 'SELECT count(*) n FROM events')), [{ n: 6 }]);
  } finally {
    await t.close();
  }
});

test('the same views over Parquet objects (a STORED AS PARQUET table) return the same rows', async () => {
  const t = await startTestServer();
  try {
    await setup(t);
    const { openDuckDB } = await import('../src/firehose/duckdb.js');
    const cols = TABLE_DDL.slice(TABLE_DDL.indexOf('(') + 1, TABLE_DDL.indexOf(') PARTITIONED'));
    const db = await openDuckDB();
    const c = await db.connect();
    for (const [f, recs] of records()) {
      const dir = join(t.dataDir, 'buckets', 'events', 'parquet', f);
      await mkdir(dir, { recursive: true });
      const src = join(dir, 'src.json.tmp');
      await writeFile(src, recs.map((r) => JSON.stringify({ ...r, awsaccountid: (r as { awsAccountId: string }).awsAccountId })).join('\n') + '\n');
      // Columns as the table declares them (what schema-driven Firehose conversion writes).
      const duckCols = cols.replace(/\s+/g, ' ').replace(/struct</g, 'STRUCT(').replace(/map<string,string>/g, 'MAP(VARCHAR, VARCHAR)').replace(/array<string>/g, 'VARCHAR[]').replace(/>/g, ')').replace(/:/g, ' ').replace(/\bstring\b/g, 'VARCHAR');
      const spec = '{' + splitTop(duckCols).map((x) => { const i = x.trim().indexOf(' '); return `${x.trim().slice(0, i)}: '${x.trim().slice(i + 1)}'`; }).join(', ') + '}';
      await c.run(`COPY (SELECT * FROM read_json('${src}', format = 'newline_delimited', columns = ${spec})) TO '${join(dir, 'pinpoint-events-1-x.parquet')}' (FORMAT parquet)`);
      const { rm } = await import('node:fs/promises');
      await rm(src);
    }
    c.closeSync();
    db.closeSync();
    const target = { endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin };
    await runCatalogStatement(target, TABLE_DDL.replace('pinpoint.events', 'pinpoint.events_parquet').replace("ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'", 'STORED AS PARQUET').replace(/s3:\/\/events\/events\//g, 's3://events/parquet/'));
    await q(t, VIEWS.sms_all_events.replace('VIEW sms_all_events', 'VIEW sms_parquet').replace('"events"', '"events_parquet"'));
    const sms = rows(await q(t, 'SELECT event_type, message_id, price_in_millicents_usd, message_tags[\'userId\'] u, ingest_timestamp FROM sms_parquet ORDER BY event_timestamp'));
    assert.deepEqual(sms, [
      { event_type: '_SMS.SUCCESS', message_id: 'sms-1', price_in_millicents_usd: 645, u: 'u1', ingest_timestamp: folder(H0) },
      { event_type: '_SMS.FAILURE', message_id: 'sms-2', price_in_millicents_usd: 0, u: null, ingest_timestamp: folder(H1) },
    ]);
  } finally {
    await t.close();
  }
});

function splitTop(s: string): string[] {
  const out: string[] = [];
  let d = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') d++;
    if (ch === ')') d--;
    if (ch === ',' && d === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur);
  return out;
}
