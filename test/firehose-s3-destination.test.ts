// The extended-S3 destination on real object stores: a FolderStore in a temp directory, and an
// S3Store against s3rver (a real S3 API) read back with @aws-sdk/client-s3. Object keys are checked
// exactly for a fixed arrival time and batch id.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readdir, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { DuckDBInstance } from '@duckdb/node-api';
import { ManualClock } from '../src/clock.js';
import { conversionSchema } from '../src/firehose/schema.js';
import { parseHiveType } from '../src/catalog/hive-types.js';
import type { DeliveryBatch, DestinationContext, FirehoseRecord, StreamInfo } from '../src/firehose/destination.js';
import type { ObjectStore } from '../src/firehose/objects/object-store.js';
import { FolderStore, InvalidKeyError, MAX_KEY_BYTES, MAX_SEGMENT_BYTES, NoSuchKeyError, TEMP_PREFIX } from '../src/firehose/objects/folder.js';
import { LIST_PAGE_SIZE, S3Store } from '../src/firehose/objects/s3.js';
import { S3Destination } from '../src/firehose/destinations/s3.js';
import { DEFAULT_BUFFER_INTERVAL_S, DEFAULT_BUFFER_SIZE_MB, DEFAULT_DYNAMIC_PARTITIONING_RETRY_S } from '../src/firehose/limits.js';
import { METADATA_EXTRACTION_FAILED } from '../src/firehose/partition.js';
import { S3RVER_CREDENTIALS, createBucket, s3rverClient, startS3rver } from './helpers/s3rver.js';

const T0 = Date.UTC(2024, 2, 7, 13, 5, 12, 345);
const BATCH_ID = '0f8fad5b-d9cb-469f-a165-70867728950e';
const BUCKET = 'arn:aws:s3:::firehose-bucket';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'pinstream-s3dest-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

let n = 0;
/** A fresh set of folder buckets under the temp root, one FolderStore per bucket name. */
function folders(): { ctx: DestinationContext; store(bucket: string): ObjectStore; clock: ManualClock } {
  const base = join(root, `case-${n++}`);
  const stores = new Map<string, ObjectStore>();
  const store = (name: string) => {
    if (!stores.has(name)) stores.set(name, new FolderStore(join(base, name)));
    return stores.get(name)!;
  };
  const clock = new ManualClock(T0 + 60_000);
  // The conversion table of the Parquet case: two columns, n and s.
  const schema = () => conversionSchema('analytics.events', [['n', 'int'], ['s', 'string']].map(([name, type]) => ({ name, type, hive: parseHiveType(type), parameters: {} })));
  return { ctx: { clock, objects: (arn) => store(arn.replace('arn:aws:s3:::', '')), schema }, store, clock };
}

const stream = (version = 1): (() => StreamInfo) => () => ({ name: 'clicks', arn: 'arn:aws:firehose:us-east-1:000000000000:deliverystream/clicks', version });

function records(...data: string[]): FirehoseRecord[] {
  return data.map((d, i) => ({ data: Buffer.from(d), arrivalMs: T0 + i * 1000, recordId: `rec-${i}` }));
}

function batch(recs: FirehoseRecord[], extra: Partial<DeliveryBatch> = {}): DeliveryBatch {
  return { id: BATCH_ID, stream: stream()(), records: recs, firstArrivalMs: Math.min(...recs.map((r) => r.arrivalMs)), attempt: 1, ...extra };
}

const SUFFIX = `clicks-1-2024-03-07-13-05-12-${BATCH_ID}`;

describe('S3Destination on a folder bucket', () => {
  it('writes the records concatenated as-is under YYYY/MM/dd/HH/ with the exact suffix', async () => {
    const { ctx, store } = folders();
    const d = new S3Destination({ BucketARN: BUCKET, RoleARN: 'arn:aws:iam::000000000000:role/r' }, stream(), ctx);
    assert.deepEqual(d.buffering, { sizeBytes: DEFAULT_BUFFER_SIZE_MB * 1024 * 1024, intervalMs: DEFAULT_BUFFER_INTERVAL_S * 1000 });
    assert.equal(d.retryDurationMs, Infinity);
    assert.equal(d.partition, undefined);
    assert.deepEqual(await d.deliver(batch(records('{"a":1}', '{"a":2}', 'raw'))), { ok: true });
    const keys = await store('firehose-bucket').list('');
    assert.deepEqual(keys, [`2024/03/07/13/${SUFFIX}`]);
    assert.equal((await store('firehose-bucket').get(keys[0])).toString(), '{"a":1}{"a":2}raw');
  });

  it('adds a newline per record with AppendDelimiterToRecord, gzips, and names by Prefix, version and extension', async () => {
    const { ctx, store } = folders();
    const conf = {
      BucketARN: BUCKET,
      Prefix: 'events/',
      CompressionFormat: 'GZIP',
      BufferingHints: { SizeInMBs: 64, IntervalInSeconds: 60 },
      ProcessingConfiguration: { Enabled: true, Processors: [{ Type: 'AppendDelimiterToRecord' }] },
    };
    const d = new S3Destination(conf, stream(4), ctx);
    assert.deepEqual(d.buffering, { sizeBytes: 64 * 1024 * 1024, intervalMs: 60_000 });
    assert.deepEqual(await d.deliver(batch(records('a', 'b'))), { ok: true });
    // A retry of the same batch rewrites the same object.
    assert.deepEqual(await d.deliver(batch(records('a', 'b'), { attempt: 2 })), { ok: true });
    const key = `events/2024/03/07/13/clicks-4-2024-03-07-13-05-12-${BATCH_ID}.gz`;
    assert.deepEqual(await store('firehose-bucket').list(''), [key]);
    assert.equal(gunzipSync(await store('firehose-bucket').get(key)).toString(), 'a\nb\n');
  });

  it('ignores processors when ProcessingConfiguration is disabled, and honours FileExtension and CustomTimeZone', async () => {
    const { ctx, store } = folders();
    const d = new S3Destination(
      {
        BucketARN: BUCKET,
        CompressionFormat: 'Snappy',
        FileExtension: '.json.sz',
        CustomTimeZone: 'Asia/Tokyo',
        ProcessingConfiguration: { Enabled: false, Processors: [{ Type: 'AppendDelimiterToRecord' }] },
      },
      stream(),
      ctx,
    );
    await d.deliver(batch(records('a', 'b')));
    assert.deepEqual(await store('firehose-bucket').list(''), [`2024/03/07/22/clicks-1-2024-03-07-22-05-12-${BATCH_ID}.json.sz`]);
  });

  it('names objects by compression format', async () => {
    const { ctx, store } = folders();
    const formats = { ZIP: '.zip', Snappy: '.snappy', HADOOP_SNAPPY: '.hsnappy' };
    for (const [fmt, ext] of Object.entries(formats)) {
      const d = new S3Destination({ BucketARN: BUCKET, CompressionFormat: fmt, Prefix: `${fmt}/` }, stream(), ctx);
      await d.deliver(batch(records('x')));
      assert.deepEqual(await store('firehose-bucket').list(`${fmt}/`), [`${fmt}/2024/03/07/13/${SUFFIX}${ext}`]);
    }
  });

  it('partitions by MetadataExtractionQuery: one object per partition, failures to the error prefix', async () => {
    const { ctx, store, clock } = folders();
    const d = new S3Destination(
      {
        BucketARN: BUCKET,
        Prefix: 'app=!{partitionKeyFromQuery:app}/type=!{partitionKeyFromQuery:type}/',
        ErrorOutputPrefix: 'errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/',
        DynamicPartitioningConfiguration: { Enabled: true },
        ProcessingConfiguration: {
          Enabled: true,
          Processors: [
            { Type: 'MetadataExtraction', Parameters: [
              { ParameterName: 'MetadataExtractionQuery', ParameterValue: '{app:.application.app_id, type:.event_type}' },
              { ParameterName: 'JsonParsingEngine', ParameterValue: 'JQ-1.6' },
            ] },
            { Type: 'AppendDelimiterToRecord' },
          ],
        },
      },
      stream(),
      ctx,
    );
    assert.equal(d.retryDurationMs, DEFAULT_DYNAMIC_PARTITIONING_RETRY_S * 1000);
    const ev = (app: string, type: string, i: number) => JSON.stringify({ application: { app_id: app }, event_type: type, i });
    const recs = records(ev('a1', 'click', 0), ev('a2', 'view', 1), 'not json', ev('a1', 'click', 3), JSON.stringify({ event_type: 'view' }));

    // What the deliverer does: group by partition key, send failures to rejectRecords.
    const groups = new Map<string, { keys: Record<string, string>; recs: FirehoseRecord[] }>();
    const failed: Array<{ r: FirehoseRecord; error: string }> = [];
    for (const r of recs) {
      const p = d.partition!(r);
      if (!p.ok) failed.push({ r, error: p.error });
      else {
        if (!groups.has(p.key)) groups.set(p.key, { keys: p.keys, recs: [] });
        groups.get(p.key)!.recs.push(r);
      }
    }
    assert.equal(groups.size, 2);
    assert.deepEqual(failed.map((f) => f.r.recordId), ['rec-2', 'rec-4']);
    let i = 0;
    for (const g of groups.values()) {
      const id = `00000000-0000-4000-8000-00000000000${i++}`;
      assert.deepEqual(await d.deliver(batch(g.recs, { id, partitionKeys: g.keys })), { ok: true });
    }
    for (const f of failed) assert.deepEqual(await d.rejectRecords!(stream()(), [f.r], METADATA_EXTRACTION_FAILED, f.error), { ok: true });

    const s = store('firehose-bucket');
    const keys = await s.list('');
    assert.deepEqual(keys.filter((k) => !k.startsWith('errors/')), [
      'app=a1/type=click/clicks-1-2024-03-07-13-05-12-00000000-0000-4000-8000-000000000000',
      'app=a2/type=view/clicks-1-2024-03-07-13-05-13-00000000-0000-4000-8000-000000000001',
    ]);
    assert.equal((await s.get(keys[0])).toString(), `${ev('a1', 'click', 0)}\n${ev('a1', 'click', 3)}\n`);
    const errorKeys = keys.filter((k) => k.startsWith('errors/'));
    assert.equal(errorKeys.length, 2);
    for (const k of errorKeys) assert.match(k, /^errors\/metadata-extraction-failed\/2024\/03\/07\/clicks-1-2024-03-07-13-05-1[46]-[0-9a-f-]{36}$/);
    const docs = (await Promise.all(errorKeys.map((k) => s.get(k)))).map((b) => b.toString()).join('').trim().split('\n').map((l) => JSON.parse(l));
    const byRaw = new Map(docs.map((doc) => [Buffer.from(doc.rawData, 'base64').toString(), doc]));
    assert.deepEqual(byRaw.get('not json'), {
      attemptsMade: 1,
      arrivalTimestamp: T0 + 2000,
      errorCode: 'DynamicPartitioning.MetadataExtractionFailed',
      errorMessage: 'Non JSON record provided',
      attemptEndingTimestamp: clock.now(),
      rawData: Buffer.from('not json').toString('base64'),
    });
    assert.match(byRaw.get(JSON.stringify({ event_type: 'view' }))!.errorMessage, /must not be null or empty/);
  });

  it('converts to Parquet when configured; records that fail go to format-conversion-failed', async () => {
    const { ctx, store, clock } = folders();
    const d = new S3Destination(
      {
        BucketARN: BUCKET,
        DataFormatConversionConfiguration: {
          SchemaConfiguration: { DatabaseName: 'analytics', TableName: 'events', Region: 'us-east-1', RoleARN: 'arn:aws:iam::000000000000:role/r' },
          InputFormatConfiguration: { Deserializer: { OpenXJsonSerDe: {} } },
          OutputFormatConfiguration: { Serializer: { ParquetSerDe: {} } },
        },
      },
      stream(),
      ctx,
    );
    assert.deepEqual(await d.deliver(batch(records('{"n":1,"s":"a"}', 'oops', '{"n":2,"s":"b"}'))), { ok: true });
    const s = store('firehose-bucket');
    const keys = await s.list('');
    const parquetKey = `2024/03/07/13/${SUFFIX}.parquet`;
    assert.equal(keys.length, 2);
    assert.ok(keys.includes(parquetKey), keys.join());
    const file = join(fileURLToPath(s.location), parquetKey);
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    try {
      const rows = (await c.runAndReadAll(`SELECT CAST(n AS INTEGER), s FROM read_parquet('${file}') ORDER BY n`)).getRowsJson();
      assert.deepEqual(rows, [[1, 'a'], [2, 'b']]);
    } finally {
      c.closeSync();
    }
    const errKey = keys.find((k) => k !== parquetKey)!;
    assert.match(errKey, /^format-conversion-failed\/2024\/03\/07\/13\/clicks-1-2024-03-07-13-05-13-[0-9a-f-]{36}$/);
    const doc = JSON.parse((await s.get(errKey)).toString());
    assert.equal(doc.lastErrorCode, 'DataFormatConversion.MalformedData');
    assert.equal(Buffer.from(doc.rawData, 'base64').toString(), 'oops');
    assert.deepEqual([doc.attemptsMade, doc.arrivalTimestamp, doc.attemptEndingTimestamp], [1, T0 + 1000, clock.now()]);
    assert.deepEqual(doc.dataCatalogTable, { catalogId: null, databaseName: 'analytics', tableName: 'events', region: 'us-east-1', versionId: 'LATEST', catalogArn: null });
  });

  it('refuses a partition whose evaluated prefix would pass 512 characters', async () => {
    const { ctx } = folders();
    const d = new S3Destination(
      {
        BucketARN: BUCKET,
        Prefix: 'k=!{partitionKeyFromQuery:k}/',
        ErrorOutputPrefix: 'e/!{firehose:error-output-type}/',
        DynamicPartitioningConfiguration: { Enabled: true, RetryOptions: { DurationInSeconds: 30 } },
        ProcessingConfiguration: { Processors: [{ Type: 'MetadataExtraction', Parameters: [{ ParameterName: 'MetadataExtractionQuery', ParameterValue: '{k:.k}' }] }] },
      },
      stream(),
      ctx,
    );
    assert.equal(d.retryDurationMs, 30_000);
    assert.equal(d.partition!(records(JSON.stringify({ k: 'x'.repeat(507) }))[0]).ok, true); // 'k=' + 507 + '/' = 510
    const p = d.partition!(records(JSON.stringify({ k: 'x'.repeat(510) }))[0]);
    assert.equal(p.ok, false);
    assert.match((p as { error: string }).error, /at most 512/);
  });

  it('backs up the raw records to S3BackupConfiguration when S3BackupMode is Enabled', async () => {
    const { ctx, store } = folders();
    const d = new S3Destination(
      {
        BucketARN: BUCKET,
        CompressionFormat: 'GZIP',
        ProcessingConfiguration: { Processors: [{ Type: 'AppendDelimiterToRecord' }] },
        S3BackupMode: 'Enabled',
        S3BackupConfiguration: { BucketARN: 'arn:aws:s3:::backup-bucket', Prefix: 'raw/', ErrorOutputPrefix: 'ignored/!{firehose:error-output-type}' },
      },
      stream(),
      ctx,
    );
    assert.deepEqual(await d.deliver(batch(records('a', 'b'))), { ok: true });
    const b = store('backup-bucket');
    assert.deepEqual(await b.list(''), [`raw/2024/03/07/13/${SUFFIX}`]);
    assert.equal((await b.get(`raw/2024/03/07/13/${SUFFIX}`)).toString(), 'ab');
    assert.equal(gunzipSync(await store('firehose-bucket').get(`2024/03/07/13/${SUFFIX}.gz`)).toString(), 'a\nb\n');
  });

  it('abandon keeps the batch as error documents under the default error prefix', async () => {
    const { ctx, store, clock } = folders();
    const d = new S3Destination({ BucketARN: BUCKET, Prefix: 'logs/' }, stream(), ctx);
    assert.deepEqual(await d.abandon(batch(records('a', 'b'), { attempt: 7 }), 'disk full'), { ok: true });
    const keys = await store('firehose-bucket').list('');
    assert.equal(keys.length, 1);
    assert.match(keys[0], /^logs\/delivery-failed\/2024\/03\/07\/13\/clicks-1-2024-03-07-13-05-12-[0-9a-f-]{36}$/);
    const docs = (await store('firehose-bucket').get(keys[0])).toString().trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(
      docs.map((x) => [x.attemptsMade, x.arrivalTimestamp, x.errorCode, x.errorMessage, x.attemptEndingTimestamp, Buffer.from(x.rawData, 'base64').toString()]),
      [
        [7, T0, 'S3.DeliveryFailed', 'disk full', clock.now(), 'a'],
        [7, T0 + 1000, 'S3.DeliveryFailed', 'disk full', clock.now(), 'b'],
      ],
    );
  });

  it('writeObject and writeErrors serve other destinations (staging, backup)', async () => {
    const { ctx, store } = folders();
    const d = new S3Destination({ BucketARN: BUCKET, Prefix: 'stage/', ErrorOutputPrefix: 'failed/!{firehose:error-output-type}/', CompressionFormat: 'GZIP' }, stream(), ctx);
    const w = await d.writeObject(records('r1', 'r2'), T0, BATCH_ID);
    assert.deepEqual(w, { ok: true, key: `stage/2024/03/07/13/${SUFFIX}.gz` });
    const o = await d.writeObject(records('r3'), T0, BATCH_ID, { prefix: 'manual/!{timestamp:yyyy}/' });
    assert.deepEqual(o, { ok: true, key: `manual/2024/${SUFFIX}.gz` });
    assert.equal(gunzipSync(await store('firehose-bucket').get(`manual/2024/${SUFFIX}.gz`)).toString(), 'r3');
    assert.deepEqual(await d.writeErrors(records('h1'), 'http-endpoint-failed', 'HttpEndpoint.DestinationException', '500 from endpoint', T0), { ok: true });
    const errs = await store('firehose-bucket').list('failed/');
    assert.equal(errs.length, 1);
    assert.match(errs[0], /^failed\/http-endpoint-failed\/clicks-1-2024-03-07-13-05-12-[0-9a-f-]{36}\.gz$/);
    const doc = JSON.parse(gunzipSync(await store('firehose-bucket').get(errs[0])).toString());
    assert.equal(doc.errorCode, 'HttpEndpoint.DestinationException');
    assert.equal(Buffer.from(doc.rawData, 'base64').toString(), 'h1');
    // The same failure written again replaces its object.
    await d.writeErrors(records('h1'), 'http-endpoint-failed', 'HttpEndpoint.DestinationException', '500 from endpoint', T0);
    assert.deepEqual(await store('firehose-bucket').list('failed/'), errs);
  });

  it('reports a failing store as an outcome instead of throwing', async () => {
    const { clock } = folders();
    const blocker = join(root, `blocker-${n++}`);
    await writeFile(blocker, 'a file where the bucket folder should be');
    const d = new S3Destination({ BucketARN: BUCKET }, stream(), { clock, objects: () => new FolderStore(blocker) });
    const out = await d.deliver(batch(records('a')));
    assert.equal(out.ok, false);
    assert.match((out as { error: string }).error, new RegExp(`file://${blocker}/`));
    assert.equal((await d.writeObject(records('a'), T0, BATCH_ID)).ok, false);
    assert.equal((await d.abandon(batch(records('a')), 'x')).ok, false);
  });
});

describe('FolderStore', () => {
  it('lists recursively in key order, by any prefix, skipping temp files', async () => {
    const dir = join(root, `folder-${n++}`);
    const s = new FolderStore(dir);
    for (const k of ['b/2', 'a/x/1', '2024/03/07/k', '2024/03/10/k', 'a/y', 'b/10']) await s.put(k, Buffer.from(k));
    await writeFile(join(dir, 'a', `${TEMP_PREFIX}left-by-a-crash`), 'partial');
    assert.deepEqual(await s.list(''), ['2024/03/07/k', '2024/03/10/k', 'a/x/1', 'a/y', 'b/10', 'b/2']);
    assert.deepEqual(await s.list('2024/03/0'), ['2024/03/07/k']);
    assert.deepEqual(await s.list('a/'), ['a/x/1', 'a/y']);
    assert.deepEqual(await s.list('a'), ['a/x/1', 'a/y']);
    assert.deepEqual(await s.list('nothing/'), []);
    assert.equal((await s.get('a/x/1')).toString(), 'a/x/1');
    assert.equal(s.location, `file://${dir}/`);
  });

  it('replaces objects whole and leaves no temp files', async () => {
    const dir = join(root, `folder-${n++}`);
    const s = new FolderStore(dir);
    await s.put('k', Buffer.from('first'));
    await s.put('k', Buffer.from('second'));
    assert.equal((await s.get('k')).toString(), 'second');
    assert.deepEqual(await readdir(dir), ['k']);
  });

  it('refuses keys that would escape the folder, and reports missing objects', async () => {
    const dir = join(root, `folder-${n++}`);
    await mkdir(dir);
    const s = new FolderStore(dir);
    for (const k of ['../escape', 'a/../../b', '/abs', 'a//b', 'dir/', '', `x/${TEMP_PREFIX}1`, 'k'.repeat(MAX_KEY_BYTES + 1), `a/${'k'.repeat(MAX_SEGMENT_BYTES + 1)}`]) {
      await assert.rejects(s.put(k, Buffer.from('x')), InvalidKeyError, JSON.stringify(k));
    }
    const longest = Array.from({ length: 4 }, () => 'k'.repeat(MAX_SEGMENT_BYTES)).join('/'); // 1023 bytes
    assert.ok(Buffer.byteLength(longest) <= MAX_KEY_BYTES);
    await s.put(longest, Buffer.from('longest key'));
    assert.equal((await s.get(longest)).toString(), 'longest key');
    await assert.rejects(s.get('missing'), NoSuchKeyError);
    assert.deepEqual(await readdir(root).then((e) => e.includes('escape')), false);
  });
});

describe('S3Store against s3rver', () => {
  let s3: Awaited<ReturnType<typeof startS3rver>>;
  before(async () => {
    s3 = await startS3rver();
    await createBucket(s3.endpoint, 'firehose-bucket');
  });
  after(async () => {
    await s3.close();
  });

  it('delivers GZIP objects readable with the S3 SDK', async () => {
    const clock = new ManualClock(T0);
    const store = new S3Store({ bucket: 'firehose-bucket', endpoint: s3.endpoint, region: 'us-east-1', credentials: S3RVER_CREDENTIALS });
    const d = new S3Destination(
      { BucketARN: BUCKET, Prefix: 'sdk/', CompressionFormat: 'GZIP', ProcessingConfiguration: { Processors: [{ Type: 'AppendDelimiterToRecord' }] } },
      stream(),
      { clock, objects: () => store },
    );
    assert.deepEqual(await d.deliver(batch(records('{"n":1}', '{"n":2}'))), { ok: true });
    const client = s3rverClient(s3.endpoint);
    try {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: 'firehose-bucket', Prefix: 'sdk/' }));
      const key = `sdk/2024/03/07/13/${SUFFIX}.gz`;
      assert.deepEqual(listed.Contents?.map((c) => c.Key), [key]);
      const got = await client.send(new GetObjectCommand({ Bucket: 'firehose-bucket', Key: key }));
      assert.equal(gunzipSync(Buffer.from(await got.Body!.transformToByteArray())).toString(), '{"n":1}\n{"n":2}\n');
      assert.equal(store.location, `s3://firehose-bucket/ (${s3.endpoint})`);
    } finally {
      client.destroy();
      store.close();
    }
  });

  it('lists across pages and reports missing keys', async () => {
    const store = new S3Store({ bucket: 'firehose-bucket', endpoint: s3.endpoint, credentials: S3RVER_CREDENTIALS, listPageSize: 2 });
    try {
      const keys = ['page/e', 'page/a', 'page/d/1', 'page/b', 'page/c'];
      for (const k of keys) await store.put(k, Buffer.from(k));
      assert.deepEqual(await store.list('page/'), [...keys].sort());
      assert.equal(LIST_PAGE_SIZE, 1000, "S3's own page size is the default");
      assert.equal((await store.get('page/d/1')).toString(), 'page/d/1');
      await assert.rejects(store.get('page/missing'), NoSuchKeyError);
    } finally {
      store.close();
    }
  });

  it('turns a missing bucket into a failed outcome', async () => {
    const store = new S3Store({ bucket: 'no-such-bucket', endpoint: s3.endpoint, credentials: S3RVER_CREDENTIALS });
    const d = new S3Destination({ BucketARN: 'arn:aws:s3:::no-such-bucket' }, stream(), { clock: new ManualClock(T0), objects: () => store });
    try {
      const out = await d.deliver(batch(records('a')));
      assert.equal(out.ok, false);
      assert.match((out as { error: string }).error, /no-such-bucket/);
    } finally {
      store.close();
    }
  });
});

