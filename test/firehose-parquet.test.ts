// Record format conversion with the Pinpoint event table (test/helpers/pinpoint-table.ts): Pinpoint
// event-stream records (built by the real record builder) go through toParquet, and the file is
// read back with DuckDB's read_parquet: the table's types, same values, MAP columns for
// attributes/metrics whatever keys each record has, and files of different batches (empty `{}`
// objects in one) that union. Also: a record that is not a JSON object, or does not fit the table,
// is reported failed while the others convert; the ParquetSerDe codec and writer options reach the
// file (parquet_metadata); ORC is refused; the JSON object-size limit admits a 1,000 KiB record.
// The deserializer options and every Hive type: firehose-schema.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FirehoseRecord } from '../src/firehose/destination.js';
import { sqlString, withDuckDB } from '../src/firehose/duckdb.js';
import { JSON_MAX_OBJECT_BYTES, MALFORMED_DATA, parquetOptions } from '../src/firehose/parquet.js';
import { duckType } from '../src/firehose/schema.js';
import { parseHiveType } from '../src/catalog/hive-types.js';
import { PINPOINT_EVENT_COLUMNS, pinpointParquet } from './helpers/pinpoint-table.js';
import { buildRecord, endpointParts } from '../src/pinpoint/record.js';
import { MAX_RECORD_NESTING_DEPTH } from '../src/nesting.js';

const APP = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const BASE_MS = Date.UTC(2026, 10, 26, 10, 0, 0);

/** `n` Pinpoint app-event records; attribute and metric keys differ from record to record. */
function pinpointRecords(n: number): { records: FirehoseRecord[]; events: Array<Record<string, any>> } {
  const parts = endpointParts(APP, 'endpoint-1', {
    endpoint: { Demographic: { Platform: 'ios', PlatformVersion: '17.1', Make: 'Apple', Locale: 'en_GB', AppVersion: '2.0' } },
    json: JSON.stringify({ ChannelType: 'APNS', Demographic: { Platform: 'ios' } }),
  } as any, '123456789012');
  const records: FirehoseRecord[] = [];
  const events: Array<Record<string, any>> = [];
  for (let i = 0; i < n; i++) {
    const attributes: Record<string, string> = { page: `/p/${i % 4}` };
    attributes[`custom_${i}`] = `v${i}`;
    const metrics: Record<string, number> = { elapsed: i }; // integers only: must still come out DOUBLE
    if (i % 3 === 0) metrics[`m_${i}`] = i + 0.5;
    const text = buildRecord(
      parts,
      {
        EventType: i % 2 ? '_session.start' : 'pageView',
        timestampMs: BASE_MS + i * 60_000,
        SdkName: 'aws-amplify',
        ClientSdkVersion: '6.0.0',
        Attributes: attributes,
        Metrics: metrics,
        session: { id: `s-${i % 5}`, startMs: BASE_MS },
      },
      BASE_MS + i * 60_000 + 7,
    );
    events.push(JSON.parse(text));
    records.push({ data: Buffer.from(text + '\n'), arrivalMs: BASE_MS + i, recordId: `r${i}` });
  }
  return { records, events };
}

function conf(serializer: Record<string, unknown> = {}, deserializer: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    Enabled: true,
    SchemaConfiguration: { DatabaseName: 'db', TableName: 'events', RoleARN: 'arn:aws:iam::123456789012:role/r' },
    InputFormatConfiguration: { Deserializer: { OpenXJsonSerDe: deserializer } },
    OutputFormatConfiguration: { Serializer: { ParquetSerDe: serializer } },
  };
}

/** Writes the Parquet body to a temp file and runs `sql` with `$file` replaced by its path. */
async function readBack(body: Buffer, sql: string): Promise<{ names: string[]; rows: any[][] }> {
  const dir = await mkdtemp(join(tmpdir(), 'pq-test-'));
  try {
    const file = join(dir, 'x.parquet');
    await writeFile(file, body);
    return await withDuckDB(async (c) => {
      const r = await c.runAndReadAll(sql.replaceAll('$file', sqlString(file)));
      return { names: r.columnNames(), rows: r.getRowsJS() };
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('Pinpoint records → Parquet → read_parquet gives the same values, with MAP attributes/metrics', async () => {
  const { records, events } = pinpointRecords(40);
  const out = await pinpointParquet(records, conf());
  assert.equal(out.ok, true, JSON.stringify(!out.ok && out.failed.slice(0, 3)));
  const body = out.ok ? out.body : Buffer.alloc(0);
  assert.equal(body.subarray(0, 4).toString(), 'PAR1');

  const types = await readBack(body, `SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet($file))`);
  const typeOf = Object.fromEntries(types.rows.map(([n, t]) => [n, t]));
  for (const c of PINPOINT_EVENT_COLUMNS) {
    const [[canonical]] = (await readBack(body, `SELECT typeof(CAST(NULL AS ${duckType(parseHiveType(c.Type))}))`)).rows;
    assert.equal(typeOf[c.Name], canonical, c.Name);
  }
  assert.equal(typeOf.metrics, 'MAP(VARCHAR, DOUBLE)', 'integer-only metrics are still DOUBLE');

  const back = await readBack(
    body,
    `SELECT event_type, event_timestamp, arrival_timestamp, application.app_id, application.sdk.name, device.platform.name,
            device.locale.country, session.session_id, map_entries(attributes), map_entries(metrics), awsaccountid,
            endpoint.ChannelType
       FROM read_parquet($file) ORDER BY event_timestamp`,
  );
  assert.equal(back.rows.length, events.length);
  const entries = (m: Record<string, unknown>) =>
    Object.entries(m)
      .map(([key, value]) => ({ key, value }))
      .sort((a, b) => a.key.localeCompare(b.key));
  back.rows.forEach((r, i) => {
    const e = events[i];
    assert.deepEqual(
      [r[0], Number(r[1]), Number(r[2]), r[3], r[4], r[5], r[6], r[7], r[10], r[11]],
      [e.event_type, e.event_timestamp, e.arrival_timestamp, e.application.app_id, e.application.sdk.name, e.device.platform.name, e.device.locale.country, e.session.session_id, e.awsAccountId, e.endpoint.ChannelType],
    );
    // CaseInsensitive (the default) lowercases keys: endpoint's ChannelType above; these are lower-case already.
    assert.deepEqual((r[8] as any[]).slice().sort((a, b) => a.key.localeCompare(b.key)), entries(e.attributes));
    assert.deepEqual((r[9] as any[]).slice().sort((a, b) => a.key.localeCompare(b.key)), entries(e.metrics));
  });
});

test('files from different batches share one schema: empty {} objects and server-generated events union with app events', async () => {
  // A campaign-send record as Pinpoint writes it: empty sdk, device.platform and session.
  const campaign = (i: number) =>
    JSON.stringify({
      event_type: '_campaign.send',
      event_timestamp: BASE_MS - 10 + i,
      arrival_timestamp: BASE_MS - 10 + i,
      event_version: '3.1',
      application: { app_id: APP, sdk: {} },
      client: { client_id: `e${i}` },
      device: { platform: {} },
      session: {},
      attributes: { campaign_id: 'c1', campaign_send_status: 'SUCCESS' },
      metrics: {},
      client_context: { custom: { endpoint: '{"ChannelType":"GCM"}' } },
      awsAccountId: '123456789012',
    });
  const first = await pinpointParquet([0, 1, 2].map((i) => ({ data: Buffer.from(campaign(i) + '\n'), arrivalMs: BASE_MS, recordId: `c${i}` })), conf());
  const { records, events } = pinpointRecords(4);
  const second = await pinpointParquet(records, conf());
  assert.ok(first.ok && second.ok);
  const dir = await mkdtemp(join(tmpdir(), 'pq-union-'));
  try {
    await writeFile(join(dir, 'a.parquet'), first.body);
    await writeFile(join(dir, 'b.parquet'), second.body);
    const rows = await withDuckDB(async (c) =>
      (
        await c.runAndReadAll(
          `SELECT event_type, application.sdk.name, session.session_id, attributes['campaign_id'], client_context->>'$.custom.endpoint'
             FROM read_parquet(${sqlString(join(dir, '*.parquet'))}, union_by_name = true) ORDER BY event_timestamp`,
        )
      ).getRowsJS(),
    );
    assert.deepEqual(rows, [
      ...[0, 1, 2].map(() => ['_campaign.send', null, null, 'c1', '{"ChannelType":"GCM"}']),
      ...events.map((e) => [e.event_type, e.application.sdk.name, e.session.session_id, null, null]),
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a record that is not a JSON object is reported failed; the others are converted', async () => {
  const { records, events } = pinpointRecords(6);
  const bad = [
    { data: Buffer.from('{"event_type": "truncated'), arrivalMs: BASE_MS, recordId: 'bad1' },
    { data: Buffer.from('[1,2,3]\n'), arrivalMs: BASE_MS, recordId: 'bad2' },
  ];
  const batch = [records[0], bad[0], ...records.slice(1, 4), bad[1], ...records.slice(4)];
  const out = await pinpointParquet(batch, conf());
  assert.equal(out.ok, false);
  if (out.ok) return;
  assert.deepEqual(out.failed.map((f) => f.index), [1, 5]);
  for (const f of out.failed) assert.ok(f.error.startsWith(MALFORMED_DATA), f.error);
  assert.ok(out.body, 'the records that converted are in the body');
  const back = await readBack(out.body!, `SELECT event_type, event_timestamp FROM read_parquet($file) ORDER BY event_timestamp`);
  assert.deepEqual(
    back.rows.map((r) => [r[0], Number(r[1])]),
    events.map((e) => [e.event_type, e.event_timestamp]),
  );

  const none = await pinpointParquet(bad, conf());
  assert.deepEqual(none.ok ? [] : none.failed.map((f) => f.index), [0, 1]);
  assert.equal(none.ok ? 'body' : none.body, undefined);
});

test('a record nested past MAX_RECORD_NESTING_DEPTH fails alone as MalformedData (a 1 MiB record of brackets was a stack overflow that failed every retry of the batch)', async () => {
  const { records } = pinpointRecords(2);
  const depth = 300_000;
  const deep = { data: Buffer.from(`{"event_type":"x","a":${'['.repeat(depth)}${']'.repeat(depth)}}\n`), arrivalMs: BASE_MS, recordId: 'deep' };
  const out = await pinpointParquet([records[0], deep, records[1]], conf());
  assert.equal(out.ok, false);
  if (out.ok) return;
  assert.deepEqual(out.failed.map((f) => f.index), [1]);
  assert.match(out.failed[0].error, new RegExp(`^${MALFORMED_DATA}: the record nests objects and arrays more than ${MAX_RECORD_NESTING_DEPTH} levels deep`));
  assert.ok(out.body, 'the other records are converted');
});

test('a record that does not fit the Pinpoint table fails alone as MalformedData naming the column; the batch still converts', async () => {
  const { records, events } = pinpointRecords(5);
  const misfit = JSON.parse(records[2].data.toString());
  misfit.session.start_timestamp = 'yesterday';
  const batch = [...records];
  batch[2] = { ...records[2], data: Buffer.from(JSON.stringify(misfit)) };
  const out = await pinpointParquet(batch, conf());
  assert.ok(!out.ok);
  assert.deepEqual(out.failed.map((f) => f.index), [2]);
  assert.match(out.failed[0].error, /^DataFormatConversion\.MalformedData: column session\.start_timestamp: the string "yesterday" cannot be converted to bigint/);
  const back = await readBack(out.body!, `SELECT event_timestamp FROM read_parquet($file) ORDER BY 1`);
  assert.deepEqual(back.rows.map((r) => Number(r[0])), events.filter((_, i) => i !== 2).map((e) => e.event_timestamp));
});

test('ParquetSerDe.Compression (SNAPPY by default) and WriterVersion reach the file', async () => {
  const { records } = pinpointRecords(5);
  const cases: Array<[Record<string, unknown>, string]> = [
    [{}, 'SNAPPY'],
    [{ Compression: 'GZIP' }, 'GZIP'],
    [{ Compression: 'UNCOMPRESSED' }, 'UNCOMPRESSED'],
    [{ Compression: 'SNAPPY', WriterVersion: 'V2' }, 'SNAPPY'],
  ];
  for (const [serde, codec] of cases) {
    const out = await pinpointParquet(records, conf(serde));
    assert.ok(out.ok);
    const meta = await readBack(out.body, `SELECT DISTINCT compression FROM parquet_metadata($file)`);
    assert.deepEqual(meta.rows.map((r) => r[0]), [codec], JSON.stringify(serde));
  }
  const v1 = await pinpointParquet(records, conf({ WriterVersion: 'V1' }));
  const v2 = await pinpointParquet(records, conf({ WriterVersion: 'V2' }));
  assert.ok(v1.ok && v2.ok);
  assert.notDeepEqual(v1.body, v2.body, 'the writer version changes the file');

  assert.deepEqual(parquetOptions(conf({ Compression: 'LZO' })).ok, false);
  const orc = parquetOptions({ OutputFormatConfiguration: { Serializer: { OrcSerDe: {} } } });
  assert.ok(!orc.ok && /OrcSerDe is not supported/.test(orc.error));
});

test('JSON_MAX_OBJECT_BYTES admits a 1,000 KiB record (PutRecord limit)', async () => {
  assert.ok(JSON_MAX_OBJECT_BYTES >= 1000 * 1024);
  const padding = 'x'.repeat(1000 * 1024 - 40);
  const text = JSON.stringify({ event_version: 'big', event_type: padding });
  assert.ok(Buffer.byteLength(text) <= 1000 * 1024);
  const out = await pinpointParquet([{ data: Buffer.from(text), arrivalMs: BASE_MS, recordId: 'r' }], conf());
  assert.ok(out.ok, JSON.stringify(!out.ok && out.failed));
  const back = await readBack(out.body, `SELECT event_version, length(event_type) FROM read_parquet($file)`);
  assert.deepEqual([back.rows[0][0], Number(back.rows[0][1])], ['big', padding.length]);
});
