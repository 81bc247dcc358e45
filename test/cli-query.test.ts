// `pinstream query`: the part after DescribeDeliveryStream — finding a stream's delivered objects
// in a folder bucket laid out as Firehose writes it (and in a real S3 API, s3rver), the `records`
// view over newline-delimited JSON, gzip'd JSON and Parquet (from toParquet) objects, and the
// table / CSV / JSON output — checked against counts computed from the generated events. Also:
// other streams' objects and error output are left out; ZIP/Snappy refused; DuckDB's SQL errors
// reach the user as one line with exit code 1 (the real command as a child process); and, when
// the Firehose API is wired into the server, the whole path end to end.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateDeliveryStreamCommand, DescribeDeliveryStreamCommand, PutRecordBatchCommand } from '@aws-sdk/client-firehose';
import { allowGlueRead, pinpointEventsTableInput, pinpointParquet } from './helpers/pinpoint-table.js';
import { CreateDatabaseCommand, CreateTableCommand, GlueClient } from '@aws-sdk/client-glue';
import {
  QueryError,
  bucketLocation,
  fileKind,
  folderSource,
  isDeliveredObject,
  parseQueryArgs,
  runQuery,
  s3Source,
  type DeliveredStream,
  type OutputFormat,
} from '../src/cli/query.js';
import { loadConfig } from '../src/config/config.js';
import { runCli } from './helpers/process.js';
import { startTestServer } from './helpers/server.js';
import { ROLE, createDeliveryRole, firehoseClient, s3Destination, until } from './helpers/firehose.js';

const NAME = 'pinpoint-events';
const EXAMPLE_SQL = `SELECT event_type, date_trunc('day', to_timestamp(event_timestamp/1000)) AS day, count(*) FROM records GROUP BY ALL ORDER BY ALL`;
const TYPES = ['_session.start', '_session.stop', 'pageView', '_monetization.purchase'];
const DAY0 = Date.UTC(2026, 10, 26);
const HOUR = 3_600_000;

const stream = (o: Partial<DeliveredStream> = {}): DeliveredStream => ({ name: NAME, bucket: 'events', prefix: '', errorPrefix: '', compression: 'UNCOMPRESSED', parquet: false, ...o });

interface Ev {
  type: string;
  ts: number;
  line: string;
}

/** Pinpoint-shaped event records over three UTC days, with a deterministic mix of types. */
function events(n: number, seed: number): Ev[] {
  const out: Ev[] = [];
  for (let i = 0; i < n; i++) {
    const type = TYPES[(i * 7 + seed) % TYPES.length];
    // Hours 0..71 from DAY0, so days split on UTC midnight (22:00 and 23:00 belong to their day).
    const ts = DAY0 + ((i * 5 + seed) % 72) * HOUR + i * 1000;
    const attributes: Record<string, string> = { page: `/p${i % 3}` };
    if (i % 4 === 0) attributes[`k${i}`] = 'x';
    const metrics: Record<string, number> = i % 2 ? { elapsed: i } : {};
    const rec = {
      event_type: type,
      event_timestamp: ts,
      arrival_timestamp: ts + 5,
      event_version: '3.1',
      application: { app_id: 'a1b2c3d4e5f60718293a4b5c6d7e8f90', sdk: {} },
      client: { client_id: `c${i % 6}` },
      device: { platform: { name: i % 2 ? 'ios' : 'android' } },
      session: i % 3 ? { session_id: `s${i}`, start_timestamp: ts } : {},
      attributes,
      metrics,
      awsAccountId: '123456789012',
    };
    out.push({ type, ts, line: JSON.stringify(rec) });
  }
  return out;
}

/** Expected rows of EXAMPLE_SQL: [event_type, 'YYYY-MM-DD', count], sorted as ORDER BY ALL. */
function expectedCounts(evs: Ev[]): Array<[string, string, number]> {
  const m = new Map<string, number>();
  for (const e of evs) {
    const k = `${e.type}\t${new Date(e.ts).toISOString().slice(0, 10)}`;
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return [...m]
    .map(([k, n]) => [...k.split('\t'), n] as [string, string, number])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
}

function key(hourMs: number, ext: string, name = NAME, prefix = ''): string {
  const d = new Date(hourMs).toISOString();
  const [y, mo, da, h] = [d.slice(0, 4), d.slice(5, 7), d.slice(8, 10), d.slice(11, 13)];
  return `${prefix}${y}/${mo}/${da}/${h}/${name}-1-${y}-${mo}-${da}-${h}-00-00-${randomUUID()}${ext}`;
}

/** Objects as Firehose writes them (JSON lines, gzip'd JSON lines, Parquet) plus objects to leave out. */
async function bucketObjects(evs: Ev[]): Promise<Map<string, Buffer>> {
  const third = Math.ceil(evs.length / 3);
  const [a, b, c] = [evs.slice(0, third), evs.slice(third, 2 * third), evs.slice(2 * third)];
  const lines = (xs: Ev[]) => Buffer.from(xs.map((e) => e.line + '\n').join(''));
  const parquet = await pinpointParquet(
    c.map((e, i) => ({ data: Buffer.from(e.line + '\n'), arrivalMs: e.ts, recordId: String(i) })),
    { OutputFormatConfiguration: { Serializer: { ParquetSerDe: {} } }, InputFormatConfiguration: { Deserializer: { OpenXJsonSerDe: {} } } },
  );
  assert.ok(parquet.ok);
  const noise = lines(events(5, 99));
  return new Map([
    [key(DAY0 + 10 * HOUR, ''), lines(a)],
    [key(DAY0 + 34 * HOUR, '.gz'), gzipSync(lines(b))],
    [key(DAY0 + 58 * HOUR, '.parquet'), parquet.body],
    // Another stream in the same bucket, error output, and a stray file: none are the stream's records.
    [key(DAY0 + 10 * HOUR, '', 'other-stream'), noise],
    [`format-conversion-failed/${key(DAY0 + 10 * HOUR, '')}`, noise],
    ['notes.txt', Buffer.from('not a record\n')],
  ]);
}

async function writeFolder(dir: string, objects: Map<string, Buffer>): Promise<void> {
  for (const [k, body] of objects) {
    await mkdir(dirname(join(dir, k)), { recursive: true });
    await writeFile(join(dir, k), body);
  }
}

/** The rows of EXAMPLE_SQL's output, parsed back from each format into [type, day, count]. */
function parseOutput(out: string, format: OutputFormat): Array<[string, string, number]> {
  const day = (v: string) => v.slice(0, 10);
  if (format === 'json') {
    return out
      .trim()
      .split('\n')
      .map((l) => Object.values(JSON.parse(l)) as [string, string, number])
      .map(([t, d, n]) => {
        assert.equal(typeof n, 'number', 'counts are JSON numbers');
        return [t, day(d), n];
      });
  }
  const lines = out.trim().split('\n');
  if (format === 'csv') {
    assert.equal(lines[0], 'event_type,day,count_star()');
    return lines.slice(1).map((l) => l.split(',')).map(([t, d, n]) => [t, day(d), Number(n)]);
  }
  assert.match(lines[0], /^event_type\s+day\s+count_star\(\)$/);
  assert.match(lines[1], /^-+ {2}-+ {2}-+$/);
  assert.equal(lines.at(-1), `(${lines.length - 3} rows)`);
  return lines.slice(2, -1).map((l) => l.split(/ {2,}/)).map(([t, d, n]) => [t, day(d), Number(n)]);
}

test('counts by event type per day over JSON, gzip JSON and Parquet objects, in table, CSV and JSON', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'query-folder-'));
  try {
    const evs = events(300, 1);
    await writeFolder(dir, await bucketObjects(evs));
    const source = await folderSource(dir, stream());
    assert.deepEqual(source.files.map((f) => f.kind).sort(), ['json', 'json-gzip', 'parquet']);
    const want = expectedCounts(evs);
    assert.ok(want.length > 8, 'several types and days');
    for (const format of ['table', 'csv', 'json'] as const) {
      const out = await runQuery(source, EXAMPLE_SQL, format);
      assert.deepEqual(parseOutput(out, format), want, format);
    }
    // attributes/metrics are maps in every kind of object: a missing key is NULL, not an error.
    const page = await runQuery(source, `SELECT attributes['page'] AS page, count(*) AS n, sum(metrics['elapsed']) AS e FROM records GROUP BY ALL ORDER BY ALL`, 'json');
    const byPage = new Map<string, { n: number; e: number }>();
    evs.forEach((e, i) => {
      const p = byPage.get(`/p${i % 3}`) ?? { n: 0, e: 0 };
      p.n++;
      if (i % 2) p.e += i;
      byPage.set(`/p${i % 3}`, p);
    });
    assert.deepEqual(
      page.trim().split('\n').map((l) => JSON.parse(l)),
      [...byPage].sort().map(([p, v]) => ({ page: p, n: v.n, e: v.e })),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('objects are the stream\'s only: prefix, name, error output', () => {
  const s = stream({ prefix: 'pinpoint/!{timestamp:yyyy}/', errorPrefix: 'errors/!{firehose:error-output-type}/' });
  const k = `pinpoint/2026/${NAME}-3-2026-11-26-10-00-00-${randomUUID()}`;
  assert.equal(isDeliveredObject(k, s), true);
  assert.equal(isDeliveredObject(k.replace('pinpoint/', 'other/'), s), false);
  assert.equal(isDeliveredObject(k.replace(NAME, 'pinpoint-events-2'), s), false);
  assert.equal(isDeliveredObject(`pinpoint/processing-failed/2026/${NAME}-3-2026-11-26-10-00-00-${randomUUID()}`, s), false);
  assert.equal(isDeliveredObject(`errors/format-conversion-failed/${NAME}-1-2026-11-26-10-00-00-${randomUUID()}`, stream({ errorPrefix: 'errors/' })), false);
  assert.equal(fileKind('a/x.gz', s), 'json-gzip');
  assert.equal(fileKind('a/x', stream({ compression: 'GZIP' })), 'json-gzip');
  assert.equal(fileKind('a/x', stream({ parquet: true })), 'parquet');
  assert.throws(() => fileKind('a/x.zip', s), (e: Error) => e instanceof QueryError && /ZIP/.test(e.message));
  assert.throws(() => fileKind('a/x', stream({ compression: 'Snappy' })), (e: Error) => e instanceof QueryError && /Snappy/.test(e.message));
});

test('bucket storage resolves as the server does: route dir, route endpoint, else <dataDir>/buckets/<bucket>', () => {
  const config = loadConfig({}, {
    dataDir: '/srv/pinstream',
    buckets: [
      { bucket: 'local-*', dir: '/mnt/b' },
      { bucket: 'remote', endpoint: 'http://127.0.0.1:9000', accessKeyId: 'AK', secretAccessKey: 'SK' },
    ] as any,
  });
  assert.deepEqual(bucketLocation(config, 'local-events'), { dir: '/mnt/b' });
  assert.deepEqual(bucketLocation(config, 'remote'), { bucket: 'remote', endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' } });
  assert.deepEqual(bucketLocation(config, 'other'), { dir: '/srv/pinstream/buckets/other' });
});

test('an S3-compatible bucket (s3rver) is downloaded and queried like a folder', async (t) => {
  let S3rver: any;
  try {
    S3rver = (await import('s3rver' as string)).default;
  } catch {
    t.skip('s3rver is not installed');
    return;
  }
  const storage = await mkdtemp(join(tmpdir(), 'query-s3rver-'));
  const download = await mkdtemp(join(tmpdir(), 'query-download-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: storage });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials, requestChecksumCalculation: 'WHEN_REQUIRED' });
  try {
    await s3.send(new CreateBucketCommand({ Bucket: 'events' }));
    const evs = events(120, 3);
    for (const [Key, Body] of await bucketObjects(evs)) await s3.send(new PutObjectCommand({ Bucket: 'events', Key, Body }));
    const source = await s3Source({ bucket: 'events', endpoint, region: 'us-east-1', credentials }, stream(), download);
    assert.equal(source.files.length, 3);
    assert.deepEqual(parseOutput(await runQuery(source, EXAMPLE_SQL, 'csv'), 'csv'), expectedCounts(evs));
  } finally {
    s3.destroy();
    await server.close();
    await rm(storage, { recursive: true, force: true });
    await rm(download, { recursive: true, force: true });
  }
});

test('SQL errors are QueryErrors with DuckDB\'s message; an empty location is reported', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'query-empty-'));
  try {
    await assert.rejects(runQuery(undefined, 'SELEC 1', 'table'), (e: Error) => e instanceof QueryError && /syntax error at or near "SELEC"/.test(e.message));
    await assert.rejects(runQuery(undefined, 'SELECT * FROM records', 'table'), (e: Error) => e instanceof QueryError && /records does not exist/.test(e.message));
    await assert.rejects(
      runQuery(await folderSource(dir, stream()), 'SELECT 1', 'table'),
      (e: Error) => e instanceof QueryError && e.message.startsWith('no delivered objects found in'),
    );
    const csv = await runQuery(undefined, `SELECT 'a,b' AS x, NULL AS y, 'say "hi"' AS z`, 'csv');
    assert.equal(csv, 'x,y,z\n"a,b",,"say ""hi"""\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  assert.deepEqual(parseQueryArgs(['--stream', 's', '--format', 'csv', 'SELECT 1'], {}), {
    stream: 's',
    format: 'csv',
    sql: 'SELECT 1',
    endpoint: 'http://127.0.0.1:4580',
    region: 'us-east-1',
  });
  assert.throws(() => parseQueryArgs(['--format', 'xml', 'SELECT 1'], {}), /--format must be one of table, csv, json/);
  assert.throws(() => parseQueryArgs([], {}), /SQL is missing/);
});


test('the command: plain DuckDB SQL without --stream; SQL errors exit 1 with one line, no stack', async () => {
  const ok = await runCli(['query', '--format', 'json', `SELECT 6 * 7 AS answer, 'x' AS s`]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout), { answer: 42, s: 'x' });

  // (SQL naming a table is a catalog query for the server now; DuckDB's own errors still come out as one line.)
  const bad = await runCli(['query', 'SELECT no_such_column']);
  assert.equal(bad.code, 1);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /^pinstream query: Binder Error: Referenced column "?no_such_column"? was not found/);
  assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');

  const usage = await runCli(['query']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /SQL is missing/);
  const help = await runCli(['query', '--help']);
  assert.equal(help.code, 0);
  assert.ok(help.stdout.includes(EXAMPLE_SQL), 'the help shows the example');
});

test('end to end: PutRecordBatch to JSON and Parquet delivery streams, then `pinstream query --stream`', async () => {
  const server = await startTestServer();
  await createDeliveryRole(server.server);
  // The Parquet stream converts with the Pinpoint event table, read as the delivery role.
  await allowGlueRead(server.server, 'firehose-delivery');
  const glue = new GlueClient({ endpoint: server.server.url, region: 'us-east-1', credentials: server.server.admin, maxAttempts: 1 });
  await glue.send(new CreateDatabaseCommand({ DatabaseInput: { Name: 'db' } }));
  await glue.send(new CreateTableCommand({ DatabaseName: 'db', TableInput: pinpointEventsTableInput('t', 's3://e2e-events/e2e-parquet/') }));
  glue.destroy();
  const fh = firehoseClient(server.server);
  try {
    const evs = events(150, 5);
    const cases = [
      { name: 'e2e-json', conversion: undefined, compression: 'GZIP' },
      { name: 'e2e-parquet', conversion: { Enabled: true, SchemaConfiguration: { RoleARN: ROLE, DatabaseName: 'db', TableName: 't' }, InputFormatConfiguration: { Deserializer: { OpenXJsonSerDe: {} } }, OutputFormatConfiguration: { Serializer: { ParquetSerDe: {} } } }, compression: 'UNCOMPRESSED' },
    ];
    const env = {
      PINSTREAM_DATA_DIR: server.dataDir,
      PINSTREAM_ADMIN_ACCESS_KEY_ID: server.server.admin.accessKeyId,
      PINSTREAM_ADMIN_SECRET_ACCESS_KEY: server.server.admin.secretAccessKey,
      PINSTREAM_CONFIG: '',
    };
    for (const c of cases) {
      await fh.send(
        new CreateDeliveryStreamCommand({
          DeliveryStreamName: c.name,
          ExtendedS3DestinationConfiguration: s3Destination('e2e-events', {
            Prefix: `${c.name}/`,
            ErrorOutputPrefix: `errors/${c.name}/!{firehose:error-output-type}/`,
            CompressionFormat: c.compression,
            BufferingHints: { IntervalInSeconds: 0, SizeInMBs: 1 },
            ...(c.conversion ? { DataFormatConversionConfiguration: c.conversion } : {}),
          }),
        }),
      );
      await until(async () => (await fh.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: c.name }))).DeliveryStreamDescription?.DeliveryStreamStatus === 'ACTIVE', `${c.name} ACTIVE`);
      // Newline-terminated records, as Pinpoint's event stream sends them; one not-JSON record on
      // the Parquet stream goes to the error output, not to the query.
      const records = evs.map((e) => ({ Data: Buffer.from(e.line + '\n') }));
      if (c.conversion) records.splice(7, 0, { Data: Buffer.from('not json\n') });
      for (let i = 0; i < records.length; i += 100) {
        const out = await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: c.name, Records: records.slice(i, i + 100) }));
        assert.equal(out.FailedPutCount, 0);
      }
      const dir = join(server.dataDir, 'buckets', 'e2e-events', c.name);
      await until(async () => {
        const out = await runQuery(await folderSource(join(server.dataDir, 'buckets', 'e2e-events'), stream({ name: c.name, prefix: `${c.name}/`, compression: c.compression, parquet: !!c.conversion })), 'SELECT count(*) AS n FROM records', 'json').catch(() => '');
        return out !== '' && JSON.parse(out).n === evs.length;
      }, `${evs.length} records delivered under ${dir}`);

      const res = await runCli(['query', '--stream', c.name, '--endpoint', server.server.url, '--format', 'csv', EXAMPLE_SQL], env);
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(parseOutput(res.stdout, 'csv'), expectedCounts(evs), c.name);
    }

    const missing = await runCli(['query', '--stream', 'no-such-stream', '--endpoint', server.server.url, 'SELECT 1'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^pinstream query: ResourceNotFoundException: .*no-such-stream/);
  } finally {
    fh.destroy();
    await server.close();
  }
});
