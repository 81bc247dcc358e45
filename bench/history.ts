// `bench history`: history import at scale. Generates N Pinpoint event-stream records (default
// 10 million, real records from the PutEvents record builder) spread over 80 days in Firehose's
// hourly key layout, once as gzipped JSON lines and once as Parquet (DuckDB converts the gzip
// objects, with the fixed Pinpoint column types Firehose's converter uses), then imports each
// archive into an empty store with the history job runner (src/history/jobs.ts) and reports
// records/s and the peak RSS during the import. For comparison it loads a smaller ingest log
// through the analytics loader — the path live PutEvents events take into the store.

import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createGzip } from 'node:zlib';
import { once } from 'node:events';
import { systemClock } from '../src/clock.js';
import { SegmentLog } from '../src/log/segment-log.js';
import { encodeIngestEntry } from '../src/pinpoint/ingest-record.js';
import { buildRecord, endpointParts } from '../src/pinpoint/record.js';
import { EventStore } from '../src/analytics/store.js';
import { AnalyticsLoader } from '../src/analytics/loader.js';
import { DAY_MS } from '../src/analytics/retention.js';
import { openDb } from '../src/store/db.js';
import { openDuckDB, sqlString } from '../src/firehose/duckdb.js';
import { readJsonSql } from '../src/firehose/parquet.js';
import { HistoryJobs } from '../src/history/jobs.js';
import type { Log } from '../src/log/log.js';
import { fmtInt, fmtNum } from './stats.js';

const USAGE = `usage: npm run bench -- history [options]

  --records N         history records per archive (default 10000000)
  --objects-per-hour N objects per hourly folder (default 1)
  --loader-records N  records loaded through the analytics loader for comparison (default 200000)
  --formats LIST      gzip,parquet (default both)`;

const APP = 'h'.repeat(32);
const DAYS = 80;
/** How often RSS is sampled during an import (the peak is reported). */
const RSS_SAMPLE_MS = 50;
const TYPES = ['_session.start', '_session.stop', 'level', '_monetization.purchase', '_campaign.send', '_email.open', '_userauth.sign_in'];

function record(i: number, total: number, now: number): string {
  const ep = `ep${(i * 7919) % 100_000}`;
  const endpoint = { ApplicationId: APP, Id: ep, CohortId: '1', CreationDate: new Date(now - 90 * DAY_MS).toISOString(), EndpointStatus: 'ACTIVE', OptOut: 'NONE', Demographic: { Platform: 'ios', Make: 'Apple', Model: 'iPhone', Locale: 'en_US' }, Attributes: { plan: ['free'] }, User: { UserId: `u${ep}` } };
  const ts = now - DAYS * DAY_MS + Math.floor((i / total) * DAYS * DAY_MS);
  return buildRecord(endpointParts(APP, ep, { endpoint, json: JSON.stringify(endpoint) } as never, '000000000000'), { EventType: TYPES[i % TYPES.length], timestampMs: ts, Attributes: { mode: 'easy' }, Metrics: { score: i % 10 }, session: { id: `s${i >> 4}`, startMs: ts } }, ts + 500);
}

async function generateGzip(dir: string, total: number, perHour: number, now: number): Promise<string[]> {
  const hours = DAYS * 24;
  const objects = hours * perHour;
  const files: string[] = [];
  let i = 0;
  for (let o = 0; o < objects; o++) {
    const end = Math.round(((o + 1) / objects) * total);
    if (end <= i) continue;
    const ts = now - DAYS * DAY_MS + Math.floor((i / total) * DAYS * DAY_MS);
    const hour = new Date(ts).toISOString().slice(0, 13).replace(/[-T]/g, '/');
    const file = join(dir, ...hour.split('/'), `stream-1-${o}.gz`);
    mkdirSync(dirname(file), { recursive: true });
    const gz = createGzip({ level: 1 });
    const out = gz.pipe(createWriteStream(file));
    for (; i < end; i++) if (!gz.write(record(i, total, now) + '\n')) await once(gz, 'drain');
    gz.end();
    await once(out, 'finish');
    files.push(file);
  }
  return files;
}

async function toParquetArchive(gzFiles: string[], gzDir: string, pqDir: string): Promise<void> {
  const db = await openDuckDB();
  const c = await db.connect();
  try {
    for (const f of gzFiles) {
      const out = join(pqDir, f.slice(gzDir.length + 1).replace(/\.gz$/, '.parquet'));
      mkdirSync(dirname(out), { recursive: true });
      await c.run(`COPY (SELECT * FROM ${await readJsonSql(c, [f], 'gzip')}) TO ${sqlString(out)} (FORMAT parquet, COMPRESSION snappy)`);
    }
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

async function importArchive(dir: string, archive: string): Promise<{ seconds: number; peakRss: number; imported: number; records: number }> {
  const db = openDb(join(dir, 'meta'));
  const store = await EventStore.open(join(dir, 'store'));
  const jobs = new HistoryJobs({ db, store, clock: systemClock, dataDir: dir, buckets: [], retentionDays: 90, ingestLog: undefined as unknown as Log, roleCheck: () => () => undefined });
  let peakRss = process.memoryUsage.rss();
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), RSS_SAMPLE_MS);
  const t = performance.now();
  const job = await jobs.create({ appId: APP, source: `file://${archive}/`, map: { [APP]: APP }, replay: false });
  await jobs.idle();
  await store.compact();
  const seconds = (performance.now() - t) / 1000;
  clearInterval(sampler);
  const done = (await jobs.get(APP, job.Id))!;
  if (done.JobStatus !== 'COMPLETED') throw new Error(`import ${done.JobStatus}: ${done.FailureReason}`);
  await jobs.close();
  await store.close();
  db.close();
  return { seconds, peakRss, imported: done.ImportedRecords, records: done.TotalRecords };
}

async function loaderRate(dir: string, n: number, now: number): Promise<number> {
  const log = await SegmentLog.open(join(dir, 'log'), { fsync: false, clock: systemClock });
  for (let i = 0; i < n; ) {
    const batch: string[] = [];
    for (const end = Math.min(n, i + 1000); i < end; i++) batch.push(encodeIngestEntry(APP, `ep${(i * 7919) % 100_000}`, `ev${i}`, record(i, n, now)));
    await log.append(batch);
  }
  const store = await EventStore.open(join(dir, 'loader'));
  const loader = new AnalyticsLoader(log, store);
  const t = performance.now();
  await loader.catchUp();
  await store.compact();
  const rate = n / ((performance.now() - t) / 1000);
  await store.close();
  await log.close();
  return rate;
}

export async function history(argv: string[]): Promise<number> {
  const o = { records: 10_000_000, objectsPerHour: 1, loaderRecords: 200_000, formats: ['gzip', 'parquet'] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') return console.log(USAGE), 0;
    const v = argv[++i];
    if (a === '--formats') o.formats = (v ?? '').split(',');
    else if (a === '--records' || a === '--objects-per-hour' || a === '--loader-records') {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) return console.error(`bad ${a} ${v}\n${USAGE}`), 2;
      if (a === '--records') o.records = n;
      else if (a === '--objects-per-hour') o.objectsPerHour = n;
      else o.loaderRecords = n;
    } else return console.error(`unknown option ${a}\n${USAGE}`), 2;
  }
  const dir = mkdtempSync(join(tmpdir(), 'pinstream-bench-history-'));
  const now = Date.now();
  try {
    const live = await loaderRate(join(dir, 'live'), o.loaderRecords, now);
    console.log(`live path (ingest log → analytics loader): ${fmtInt(o.loaderRecords)} records at ${fmtInt(live)} records/s`);
    let t = performance.now();
    const gzDir = join(dir, 'archive-gzip');
    const gz = await generateGzip(gzDir, o.records, o.objectsPerHour, now);
    console.log(`generated ${fmtInt(o.records)} records in ${gz.length} gzip objects in ${fmtNum((performance.now() - t) / 1000, 1)} s`);
    for (const format of o.formats) {
      let archive = gzDir;
      if (format === 'parquet') {
        t = performance.now();
        archive = join(dir, 'archive-parquet');
        await toParquetArchive(gz, gzDir, archive);
        console.log(`converted to Parquet in ${fmtNum((performance.now() - t) / 1000, 1)} s`);
      }
      const r = await importArchive(join(dir, `import-${format}`), archive);
      console.log(
        `history ${format}: ${fmtInt(r.imported)}/${fmtInt(r.records)} records imported in ${fmtNum(r.seconds, 1)} s = ${fmtInt(r.records / r.seconds)} records/s ` +
          `(${fmtNum(r.records / r.seconds / live, 2)}x the live path), peak RSS ${fmtInt(r.peakRss / 1048576)} MiB`,
      );
      rmSync(join(dir, `import-${format}`), { recursive: true, force: true });
    }
    return 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
