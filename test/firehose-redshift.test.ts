// The Redshift destination against the real PostgreSQL on 127.0.0.1:5432 (skipped with the reason
// when unreachable), with the intermediate bucket in a FolderStore. Pinpoint event-stream records
// land exactly, in one transaction per batch (also when the batch spans several INSERTs); staged
// objects and their COPY manifests exist; a bad value fails the whole batch, the retry reuses the
// staged object, and abandon names it in an errors/ manifest; an unreachable server is an outcome.
// The CopyOptions subset (JSON 'auto' [ignorecase], pipe text, CSV, TIMEFORMAT) and the limits are
// checked too.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { ManualClock } from '../src/clock.js';
import { DestinationConfigError, type DeliveryBatch, DestinationContext, FirehoseRecord, StreamInfo } from '../src/firehose/destination.js';
import type { ObjectStore } from '../src/firehose/objects/object-store.js';
import { FolderStore } from '../src/firehose/objects/folder.js';
import { DEFAULT_REDSHIFT_RETRY_S } from '../src/firehose/limits.js';
import {
  REDSHIFT_DEFAULT_PORT,
  REDSHIFT_ERROR_MANIFEST_FOLDER,
  REDSHIFT_MANIFEST_FOLDER,
  REDSHIFT_MAX_PARAMS_PER_INSERT,
  RedshiftDestination,
  RedshiftErrorCode,
  parseCopyOptions,
  parseJdbcUrl,
  splitJsonValues,
} from '../src/firehose/destinations/redshift.js';
import { postgresTarget, withClient } from './helpers/postgres.js';

const STREAM: StreamInfo = { name: 'pinpoint-events', arn: 'arn:aws:firehose:us-east-1:123456789012:deliverystream/pinpoint-events', version: 3 };
const BUCKET = 'redshift-staging';
const BUCKET_ARN = `arn:aws:s3:::${BUCKET}`;
const APP = '0123456789abcdef0123456789abcdef';

async function setup(t: { after(fn: () => unknown): void }) {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-redshift-'));
  const clock = new ManualClock(Date.UTC(2026, 2, 7, 13, 5, 12));
  const stores = new Map<string, ObjectStore>();
  const ctx: DestinationContext = {
    clock,
    objects: (arn) => {
      let s = stores.get(arn);
      if (!s) stores.set(arn, (s = new FolderStore(join(dir, arn.replace('arn:aws:s3:::', '')))));
      return s;
    },
  };
  t.after(() => rm(dir, { recursive: true, force: true }));
  return { ctx, clock, bucket: ctx.objects(BUCKET_ARN, undefined) };
}

/** A fresh schema per test so runs never see each other's rows; dropped afterwards. */
async function schemaFor(t: { after(fn: () => unknown): void }, config: import('pg').ClientConfig, ddl: (schema: string) => string) {
  const schema = `fh_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  await withClient(config, (c) => c.query(`CREATE SCHEMA ${schema}; ${ddl(schema)}`));
  t.after(() => withClient(config, (c) => c.query(`DROP SCHEMA ${schema} CASCADE`)));
  return schema;
}

function redshiftConfig(user: string, table: string, copy: Record<string, unknown>, extra: Record<string, unknown> = {}, port = 5432) {
  return {
    RoleARN: 'arn:aws:iam::123456789012:role/firehose',
    ClusterJDBCURL: `jdbc:postgresql://127.0.0.1:${port}/test`,
    Username: user,
    Password: 'unused-with-trust-auth',
    CopyCommand: { DataTableName: table, ...copy },
    S3Configuration: { RoleARN: 'arn:aws:iam::123456789012:role/firehose', BucketARN: BUCKET_ARN },
    ...extra,
  };
}

function batchOf(clock: ManualClock, datas: string[]): DeliveryBatch {
  const records: FirehoseRecord[] = datas.map((d, i) => ({ data: Buffer.from(d), arrivalMs: clock.now() + i, recordId: `r${i}` }));
  return { id: randomUUID(), stream: STREAM, records, firstArrivalMs: clock.now(), attempt: 1 };
}

function pinpointEvent(i: number, overrides: Record<string, unknown> = {}) {
  return {
    event_type: i % 2 ? '_session.start' : 'pageView',
    event_timestamp: 1772888712000 + i,
    arrival_timestamp: 1772888713000 + i,
    event_version: '3.1',
    application: { app_id: APP, sdk: { name: 'aws-amplify', version: '6.0.0' }, version_name: '' },
    client: { client_id: `endpoint-${i}` },
    attributes: { url: `https://example.test/${i}` },
    metrics: {},
    ...overrides,
  };
}

const EVENTS_DDL = (s: string) =>
  `CREATE TABLE ${s}.events (id bigserial PRIMARY KEY, event_type varchar(64) NOT NULL, event_timestamp bigint, arrival_timestamp timestamp, application jsonb)`;
const EVENT_COPY = { DataTableColumns: 'event_type,event_timestamp,arrival_timestamp,application', CopyOptions: "JSON 'auto' TIMEFORMAT 'epochmillisecs'" };

test('Pinpoint events load exactly; the batch is staged and its COPY manifest names the object', async (t) => {
  const pgt = await postgresTarget();
  if (pgt.skip !== undefined) return t.skip(pgt.skip);
  const { ctx, clock, bucket } = await setup(t);
  const schema = await schemaFor(t, pgt.config, EVENTS_DDL);
  const dest = new RedshiftDestination(redshiftConfig(pgt.config.user, `${schema}.events`, EVENT_COPY), () => STREAM, ctx);
  t.after(() => dest.close());

  const sent = [0, 1, 2, 3, 4].map((i) => pinpointEvent(i));
  // Newline-terminated records as Pinpoint writes them, plus one record holding two concatenated objects.
  const datas = [...sent.slice(0, 3).map((e) => JSON.stringify(e) + '\n'), JSON.stringify(sent[3]) + JSON.stringify(sent[4])];
  const batch = batchOf(clock, datas);
  assert.deepEqual(await dest.deliver(batch), { ok: true });

  const { rows } = await withClient(pgt.config, (c) =>
    c.query(`SELECT event_type, event_timestamp, arrival_timestamp, application FROM ${schema}.events ORDER BY event_timestamp`),
  );
  assert.equal(rows.length, sent.length);
  for (const [i, row] of rows.entries()) {
    assert.equal(row.event_type, sent[i].event_type);
    assert.equal(Number(row.event_timestamp), sent[i].event_timestamp);
    // timestamp without time zone comes back as local wall time; compare the wall-clock fields.
    const at = row.arrival_timestamp as Date;
    const expected = new Date(sent[i].arrival_timestamp);
    assert.deepEqual(
      [at.getFullYear(), at.getMonth(), at.getDate(), at.getHours(), at.getMinutes(), at.getSeconds(), at.getMilliseconds()],
      [expected.getUTCFullYear(), expected.getUTCMonth(), expected.getUTCDate(), expected.getUTCHours(), expected.getUTCMinutes(), expected.getUTCSeconds(), expected.getUTCMilliseconds()],
    );
    assert.deepEqual(row.application, sent[i].application);
  }

  const keys = await bucket.list('');
  const manifests = keys.filter((k) => k.startsWith(REDSHIFT_MANIFEST_FOLDER));
  const staged = keys.filter((k) => !k.startsWith(REDSHIFT_MANIFEST_FOLDER));
  assert.equal(staged.length, 1, `one staged object: ${keys.join(', ')}`);
  assert.equal((await bucket.get(staged[0])).toString('utf8'), datas.join(''));
  assert.deepEqual(manifests, [`manifests/2026/03/07/13/pinpoint-events-3-2026-03-07-13-05-12-${batch.id}`]);
  assert.deepEqual(JSON.parse((await bucket.get(manifests[0])).toString('utf8')), {
    entries: [{ url: `s3://${BUCKET}/${staged[0]}`, mandatory: true }],
  });
});

test('a bad value fails the whole batch; retries reuse the staged object; abandon writes the errors manifest', async (t) => {
  const pgt = await postgresTarget();
  if (pgt.skip !== undefined) return t.skip(pgt.skip);
  const { ctx, clock, bucket } = await setup(t);
  const schema = await schemaFor(t, pgt.config, EVENTS_DDL);
  const dest = new RedshiftDestination(redshiftConfig(pgt.config.user, `${schema}.events`, EVENT_COPY), () => STREAM, ctx);
  t.after(() => dest.close());
  const count = async () => Number((await withClient(pgt.config, (c) => c.query(`SELECT count(*) AS n FROM ${schema}.events`))).rows[0].n);

  const bad = batchOf(clock, [pinpointEvent(0), pinpointEvent(1, { event_timestamp: 'not-a-number' }), pinpointEvent(2)].map((e) => JSON.stringify(e) + '\n'));
  const errors: string[] = [];
  for (let attempt = 1; attempt <= 3; attempt++) {
    const outcome = await dest.deliver({ ...bad, attempt });
    assert.equal(outcome.ok, false, `attempt ${attempt} fails`);
    errors.push(outcome.ok ? '' : outcome.error);
    clock.advance(60_000);
  }
  for (const e of errors) {
    assert.ok(e.startsWith(`${RedshiftErrorCode.load}: `), e);
    assert.match(e, /not-a-number/);
    assert.match(e, /SQLSTATE 22P02/);
  }
  assert.equal(await count(), 0, 'no row of the failed batch is visible');
  const staged = (await bucket.list('')).filter((k) => !k.startsWith(REDSHIFT_MANIFEST_FOLDER));
  assert.equal(staged.length, 1, 'retries load the object staged on the first attempt');

  // The deliverer's retry window (RetryOptions) ran out: it calls abandon.
  assert.deepEqual(await dest.abandon({ ...bad, attempt: 4 }, errors.at(-1)!), { ok: true });
  const errorManifests = await bucket.list(REDSHIFT_ERROR_MANIFEST_FOLDER);
  assert.deepEqual(errorManifests, [`errors/manifests/2026/03/07/13/pinpoint-events-3-2026-03-07-13-05-12-${bad.id}`]);
  assert.deepEqual(JSON.parse((await bucket.get(errorManifests[0])).toString('utf8')), {
    entries: [{ url: `s3://${BUCKET}/${staged[0]}`, mandatory: true }],
  });

  // The destination keeps working for the next batch.
  const good = batchOf(clock, [pinpointEvent(7)].map((e) => JSON.stringify(e)));
  assert.deepEqual(await dest.deliver(good), { ok: true });
  assert.equal(await count(), 1);
});

test('a batch larger than one INSERT is still one transaction', async (t) => {
  const pgt = await postgresTarget();
  if (pgt.skip !== undefined) return t.skip(pgt.skip);
  const { ctx, clock } = await setup(t);
  const schema = await schemaFor(t, pgt.config, EVENTS_DDL);
  const dest = new RedshiftDestination(redshiftConfig(pgt.config.user, `${schema}.events`, EVENT_COPY), () => STREAM, ctx);
  t.after(() => dest.close());
  const rowsPerInsert = Math.floor(REDSHIFT_MAX_PARAMS_PER_INSERT / 4);
  const n = rowsPerInsert * 2 + 10;
  const events = Array.from({ length: n }, (_, i) => pinpointEvent(i));
  // The bad row sits in the last INSERT, after two full INSERTs have run.
  events[n - 1] = pinpointEvent(n - 1, { arrival_timestamp: 'yesterday-ish' });
  const bad = batchOf(clock, events.map((e) => JSON.stringify(e) + '\n'));
  const failed = await dest.deliver(bad);
  assert.equal(failed.ok, false);
  const count = async () => Number((await withClient(pgt.config, (c) => c.query(`SELECT count(*) AS n FROM ${schema}.events`))).rows[0].n);
  assert.equal(await count(), 0);
  events[n - 1] = pinpointEvent(n - 1);
  assert.deepEqual(await dest.deliver(batchOf(clock, events.map((e) => JSON.stringify(e) + '\n'))), { ok: true });
  assert.equal(await count(), n);
});

test('PostgreSQL unreachable, or the table missing: failed outcomes, not throws', async (t) => {
  const pgt = await postgresTarget();
  const { ctx, clock } = await setup(t);
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const closedPort = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const dest = new RedshiftDestination(redshiftConfig('postgres', 'public.events', EVENT_COPY, {}, closedPort), () => STREAM, ctx);
  t.after(() => dest.close());
  const outcome = await dest.deliver(batchOf(clock, [JSON.stringify(pinpointEvent(0))]));
  assert.equal(outcome.ok, false);
  assert.match(outcome.ok ? '' : outcome.error, new RegExp(`^${RedshiftErrorCode.connection}: .*ECONNREFUSED`));

  if (pgt.skip !== undefined) return t.skip(pgt.skip);
  const missing = new RedshiftDestination(redshiftConfig(pgt.config.user, 'no_such_schema_x.events', EVENT_COPY), () => STREAM, ctx);
  t.after(() => missing.close());
  const none = await missing.deliver(batchOf(clock, [JSON.stringify(pinpointEvent(0))]));
  assert.equal(none.ok, false);
  assert.match(none.ok ? '' : none.error, new RegExp(`^${RedshiftErrorCode.tableNotFound}: table no_such_schema_x.events does not exist`));
});

test("JSON 'auto' matches keys exactly, 'auto ignorecase' folds case; no DataTableColumns means all columns in order", async (t) => {
  const pgt = await postgresTarget();
  if (pgt.skip !== undefined) return t.skip(pgt.skip);
  const { ctx, clock } = await setup(t);
  const schema = await schemaFor(t, pgt.config, (s) => `CREATE TABLE ${s}.people (id bigint, name varchar(20), tags varchar(200), active boolean)`);
  const rows = async () => (await withClient(pgt.config, (c) => c.query(`SELECT id, name, tags, active FROM ${schema}.people ORDER BY id`))).rows;
  const records = ['{"id":1,"Name":"Ann","tags":["a","b"],"active":true}\n', '{"ID":2,"name":"Bob","extra":"ignored"}\n'];

  const exact = new RedshiftDestination(redshiftConfig(pgt.config.user, `${schema}.people`, { CopyOptions: "json 'auto'" }), () => STREAM, ctx);
  t.after(() => exact.close());
  assert.deepEqual(await exact.deliver(batchOf(clock, records)), { ok: true });
  assert.deepEqual(await rows(), [
    { id: '1', name: null, tags: '["a","b"]', active: true },
    { id: null, name: 'Bob', tags: null, active: null },
  ]);
  await withClient(pgt.config, (c) => c.query(`TRUNCATE ${schema}.people`));

  const folded = new RedshiftDestination(redshiftConfig(pgt.config.user, `${schema}.people`, { CopyOptions: "FORMAT AS JSON 'auto ignorecase'" }), () => STREAM, ctx);
  t.after(() => folded.close());
  assert.deepEqual(await folded.deliver(batchOf(clock, records)), { ok: true });
  assert.deepEqual(await rows(), [
    { id: '1', name: 'Ann', tags: '["a","b"]', active: true },
    { id: '2', name: 'Bob', tags: null, active: null },
  ]);
});

test('pipe-delimited text (the default) and CSV load; a short line fails the batch', async (t) => {
  const pgt = await postgresTarget();
  if (pgt.skip !== undefined) return t.skip(pgt.skip);
  const { ctx, clock } = await setup(t);
  const schema = await schemaFor(t, pgt.config, (s) => `CREATE TABLE ${s}.t (n bigint, label varchar(50), at timestamp)`);
  const rows = async () => (await withClient(pgt.config, (c) => c.query(`SELECT n, label, to_char(at, 'YYYY-MM-DD HH24:MI:SS') AS at FROM ${schema}.t ORDER BY n`))).rows;

  const pipe = new RedshiftDestination(redshiftConfig(pgt.config.user, `${schema}.t`, { CopyOptions: "TIMEFORMAT 'epochsecs'" }), () => STREAM, ctx);
  t.after(() => pipe.close());
  assert.deepEqual(await pipe.deliver(batchOf(clock, ['1|one|0\n', '2|\\N|\n', '3||86400\r\n'])), { ok: true });
  assert.deepEqual(await rows(), [
    { n: '1', label: 'one', at: '1970-01-01 00:00:00' },
    { n: '2', label: null, at: null },
    { n: '3', label: '', at: '1970-01-02 00:00:00' },
  ]);
  const short = await pipe.deliver(batchOf(clock, ['4|four\n']));
  assert.match(short.ok ? '' : short.error, new RegExp(`^${RedshiftErrorCode.columnMismatch}: line 1: 2 fields for 3 columns`));
  await withClient(pgt.config, (c) => c.query(`TRUNCATE ${schema}.t`));

  const csv = new RedshiftDestination(
    redshiftConfig(pgt.config.user, `${schema}.t`, { DataTableColumns: 'label, n', CopyOptions: 'CSV EMPTYASNULL' }),
    () => STREAM,
    ctx,
  );
  t.after(() => csv.close());
  assert.deepEqual(await csv.deliver(batchOf(clock, ['"a, ""quoted""\nlabel",5\n', ',6\n'])), { ok: true });
  assert.deepEqual(await rows(), [
    { n: '5', label: 'a, "quoted"\nlabel', at: null },
    { n: '6', label: null, at: null },
  ]);
});

test('configuration: JDBC URLs, CopyOptions subset refused clearly, limits and defaults', async (t) => {
  const { ctx } = await setup(t);
  assert.deepEqual(parseJdbcUrl('jdbc:redshift://c1.abc.us-east-1.redshift.amazonaws.com/dev'), {
    host: 'c1.abc.us-east-1.redshift.amazonaws.com',
    port: REDSHIFT_DEFAULT_PORT,
    database: 'dev',
  });
  assert.deepEqual(parseJdbcUrl('jdbc:postgresql://127.0.0.1:6543/test?ssl=false'), { host: '127.0.0.1', port: 6543, database: 'test' });
  assert.deepEqual(parseJdbcUrl('jdbc:postgresql://db.local/x'), { host: 'db.local', port: 5432, database: 'x' });
  assert.throws(() => parseJdbcUrl('postgres://127.0.0.1/test'), DestinationConfigError);

  assert.deepEqual(parseCopyOptions("JSON 'auto'"), { kind: 'json', ignoreCase: false, timeFormat: undefined, emptyAsNull: false, blanksAsNull: false });
  assert.deepEqual(parseCopyOptions("delimiter '\\t' gzip;"), { kind: 'delimited', csv: false, delimiter: '\t', quote: '"', timeFormat: undefined, emptyAsNull: false, blanksAsNull: false });
  for (const [options, why] of [
    ["JSON 's3://bucket/jsonpaths.json'", /JSONPaths/],
    ["fixedwidth 'venueid:3,venuename:25'", /unsupported option FIXEDWIDTH/],
    ['MAXERROR 10', /unsupported option MAXERROR/],
    ["JSON 'auto' DELIMITER ','", /cannot be combined/],
    ["TIMEFORMAT 'YYYY-MM-DD HH:MI:SS'", /TIMEFORMAT/],
  ] as const) {
    assert.throws(() => parseCopyOptions(options), (e: Error) => e instanceof DestinationConfigError && why.test(e.message) && e.message.includes('supported:'), options);
  }

  assert.deepEqual(splitJsonValues('{"a":"}{"}\n{"b":[1,{"c":"\\"}"}]}{"d":2}  '), ['{"a":"}{"}', '{"b":[1,{"c":"\\"}"}]}', '{"d":2}']);

  const base = redshiftConfig('postgres', 'events', EVENT_COPY);
  const d = new RedshiftDestination(base, () => STREAM, ctx);
  assert.equal(d.retryDurationMs, DEFAULT_REDSHIFT_RETRY_S * 1000);
  assert.equal(DEFAULT_REDSHIFT_RETRY_S, 3600);
  assert.deepEqual(d.buffering, { sizeBytes: 5 * 1024 * 1024, intervalMs: 300_000 });
  await d.close();
  const s3 = base.S3Configuration;
  for (const bad of [
    { S3Configuration: { ...s3, CompressionFormat: 'Snappy' } },
    { S3Configuration: { ...s3, CompressionFormat: 'ZIP' } },
    { ClusterJDBCURL: 'jdbc:mysql://127.0.0.1/test' },
  ]) {
    assert.throws(() => new RedshiftDestination({ ...base, ...bad }, () => STREAM, ctx), DestinationConfigError, JSON.stringify(bad));
  }
  const gz = new RedshiftDestination({ ...base, S3Configuration: { ...s3, CompressionFormat: 'GZIP' } }, () => STREAM, ctx);
  await gz.close();
});
