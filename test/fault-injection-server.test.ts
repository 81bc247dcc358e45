// Fault injection through the real server and the official SDK clients, for every kind of log:
// the ingest log (PutEvents → event stream to an embedded Kinesis stream, and analytics), Kinesis
// shard logs (PutRecords → GetRecords, and a KinesisStreamAsSource Firehose) and Firehose
// delivery-stream logs (PutRecordBatch → folder bucket).
//   1. Damage at rest: cycles of load, kill -9 or SIGTERM, then byte flips or a truncation of an
//      active or closed segment or an index file of one log, and a restart. At the end every
//      acknowledged record outside the damaged bytes must be in its log, delivered (event stream,
//      analytics, Firehose buckets) and, for Kinesis, at the sequence number it was given; every
//      loss must have been reported (server log lines, /health, /metrics); sequence numbers are
//      never given twice; the server starts and accepts every request in every cycle.
//   2. ENOSPC and fsync failures injected through the log file seam, per log kind.
// (A real full disk, a tmpfs, is in disk-full.test.ts.)
// Seeds are printed (FAULT_SEED reproduces); PINSTREAM_FAULTS_LONG=1 runs more cycles.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutEventsCommand } from '@aws-sdk/client-pinpoint';
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { PutRecordBatchCommand } from '@aws-sdk/client-firehose';
import { DuckDBInstance } from '@duckdb/node-api';
import { loadConfig } from '../src/config/config.js';
import { startPinstream, type Pinstream } from '../src/server.js';
import { SegmentLog } from '../src/log/segment-log.js';
import { decodeIngestEntry } from '../src/pinpoint/ingest-record.js';
import { decodeRecord } from '../src/firehose/records.js';
import { eio, enospc, faultyFs, flipByte, seeded, suiteSeed } from './helpers/faults.js';
import { framesOf, logFiles, type Frame } from './helpers/segments.js';
import { spawnServer, TEST_METRICS_TOKEN, waitForExit, type ServerProcess } from './helpers/process.js';
import { FAULT_SERVER } from './helpers/fault-server.js';
import { folderContents, until } from './helpers/firehose.js';
import { rejection } from './helpers/rejection.js';
import { Acked, KINDS, clientsFor, health, idOf, load, metric, readStream, setUp, type Kind } from './helpers/pipeline.js';

const LONG = process.env.PINSTREAM_FAULTS_LONG === '1';
const CYCLES = LONG ? 30 : 6;
const SEGMENT_BYTES = 16 * 1024;

/** The id a log record carries, by log kind. */
function idInPayload(kind: Kind, payload: Buffer): string {
  if (kind === 'ingest') return decodeIngestEntry(payload).eventId;
  if (kind === 'kinesis') return idOf(payload.subarray(2 + payload.readUInt16BE(0)).toString());
  return idOf(decodeRecord(payload).data.toString());
}

/** Reads a log offline (the server stopped): the ids it holds. Damage found on the way is reported to `report`. */
async function idsInLog(dir: string, kind: Kind, report: (line: string) => void): Promise<Set<string>> {
  const ids = new Set<string>();
  const log = await SegmentLog.open(dir, { fsync: false, report });
  try {
    for (let next = log.startOffset(); next < log.endOffset(); ) {
      const r = await log.read(next, { maxRecords: 500 });
      for (const rec of r.records) ids.add(idInPayload(kind, rec.payload));
      next = r.nextOffset;
    }
  } finally {
    await log.close();
  }
  return ids;
}

async function logDirs(dataDir: string, kind: Kind): Promise<string[]> {
  if (kind === 'ingest') return [join(dataDir, 'log', 'ingest')];
  if (kind === 'firehose') return [join(dataDir, 'firehose', 'fi-direct')];
  const streams = (await readdir(join(dataDir, 'kinesis'))).filter((d) => d.startsWith('fi-src-'));
  assert.equal(streams.length, 1);
  const dir = join(dataDir, 'kinesis', streams[0]);
  return (await readdir(dir)).filter((d) => d.startsWith('shardId-')).map((d) => join(dir, d));
}

/** Records lost according to report lines, by log kind (paths name the log). */
function lostInLines(lines: string[], dataDir: string): Record<Kind, number> {
  const out: Record<Kind, number> = { ingest: 0, kinesis: 0, firehose: 0 };
  for (const line of lines) {
    const m = /\((\d+) records\) are lost|: (\d+) acknowledged records are gone/.exec(line);
    if (!m) continue;
    const n = Number(m[1] ?? m[2]);
    if (line.includes(join(dataDir, 'log', 'ingest'))) out.ingest += n;
    else if (line.includes(join(dataDir, 'kinesis'))) out.kinesis += n;
    else if (line.includes(join(dataDir, 'firehose'))) out.firehose += n;
  }
  return out;
}

test('real server: random damage to the ingest log, Kinesis shard logs and Firehose logs; every other acknowledged record is delivered', { timeout: LONG ? 3_600_000 : 175_000 }, async (t) => {
  const seed = suiteSeed();
  const rng = seeded(seed);
  t.diagnostic(`seed ${seed} (FAULT_SEED=${seed} reproduces this run)`);
  const started = performance.now();
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-faults-server-'));
  const children = new Set<ChildProcess>();
  t.after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });
  const env = { PINSTREAM_DATA_DIR: dataDir, FAULT_SEGMENT_BYTES: String(SEGMENT_BYTES) };
  const spawn = async (): Promise<ServerProcess> => {
    const p = await spawnServer(env, 30_000, FAULT_SERVER);
    children.add(p.child);
    return p;
  };
  let proc = await spawn();
  const admin = { accessKeyId: proc.accessKeyId, secretAccessKey: proc.secretAccessKey! };
  let c = clientsFor(proc.url, admin);
  const app = await setUp(c, { intervalSeconds: 60, eventStream: true });

  const acked = new Acked();
  const damaged: Record<Kind, Set<string>> = { ingest: new Set(), kinesis: new Set(), firehose: new Set() };
  const reportLines: string[] = [];
  const faults = { flips: 0, truncations: 0, indexFaults: 0, kills: 0, restarts: 0 };
  const stop = async (signal: NodeJS.Signals) => {
    c.destroy();
    proc.child.kill(signal);
    await waitForExit(proc.child);
    reportLines.push(...proc.output().split('\n').filter((l) => l.startsWith('segment-log: ')));
  };

  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const where = `seed ${seed} cycle ${cycle}`;
    await load(c, app, acked, String(cycle), rng);
    // Loss found since this start is in /health and /metrics too (counts by log kind only).
    const lines = proc.output().split('\n').filter((l) => l.startsWith('segment-log: '));
    const lostHere = lostInLines(lines, dataDir);
    const h = await health(proc.url);
    for (const kind of KINDS) {
      if (lostHere[kind] === 0) continue;
      assert.ok(h.logs[kind].recordsLost > 0, `${where}: /health reports the ${kind} loss`);
      assert.ok((await metric(proc.url, 'pinstream_log_records_lost_total', kind)) > 0, `${where}: /metrics reports the ${kind} loss`);
    }

    const kind = KINDS[cycle % KINDS.length];
    const signal = rng.next() < 0.5 ? 'SIGKILL' : 'SIGTERM';
    if (signal === 'SIGKILL') faults.kills++;
    await stop(signal);

    // Damage one log of this kind, as found on disk.
    const dir = rng.pick(await logDirs(dataDir, kind));
    const files = await logFiles(dir);
    const frames = new Map<string, Frame[]>();
    for (const f of files.segments) frames.set(f, framesOf(await readFile(f)));
    const touch = (file: string, hit: (fr: Frame) => boolean) => {
      for (const fr of frames.get(file) ?? []) {
        if (fr.offset === undefined || !hit(fr)) continue;
        try {
          damaged[kind].add(idInPayload(kind, fr.payload!));
        } catch {
          // Damaged earlier (not yet repaired) where its id is: already counted then.
        }
      }
    };
    const what = rng.pick(['flip', 'flip', 'truncate', 'index'] as const);
    const segment = rng.next() < 0.5 ? files.segments[files.segments.length - 1] : rng.pick(files.segments);
    if (what === 'index' && files.indexes.length > 0) {
      const idx = rng.pick(files.indexes);
      if (rng.next() < 0.5) await flipByte(idx, rng.int((await stat(idx)).size), 1 << rng.int(8));
      else await truncate(idx, rng.int((await stat(idx)).size));
      faults.indexFaults++;
    } else if (what === 'truncate') {
      const at = rng.int((await stat(segment)).size);
      touch(segment, (fr) => fr.end > at);
      await truncate(segment, at);
      faults.truncations++;
    } else {
      for (let n = 1 + rng.int(3); n > 0; n--) {
        const at = rng.int((await stat(segment)).size);
        touch(segment, (fr) => at >= fr.start && at < fr.end);
        await flipByte(segment, at, 1 << rng.int(8));
        faults.flips++;
      }
    }
    proc = await spawn();
    faults.restarts++;
    c = clientsFor(proc.url, admin);
  }
  await load(c, app, acked, 'last', rng);
  await stop('SIGTERM');

  // The last start, in this process: wait until every consumer has caught up, then stop it (which
  // flushes the Firehose buffers) and look at what was delivered.
  const serverLines: string[] = [];
  const server: Pinstream = await startPinstream(loadConfig({}, { port: 0, dataDir, metricsToken: TEST_METRICS_TOKEN }), undefined, {
    logSegmentBytes: SEGMENT_BYTES,
    logReport: (l) => serverLines.push(l),
  });
  let kinesisRead: Map<string, string[]>;
  let delivered: Map<string, string[]>;
  c = clientsFor(server.url, admin);
  try {
    await server.analytics.catchUp();
    await until(() => server.delivery.health(app)?.recordsBehind === 0, 'event-stream delivery to catch up', 60_000);
    kinesisRead = await readStream(c.kinesis, 'fi-src');
    delivered = await readStream(c.kinesis, 'fi-es');
    // The Kinesis source is done when it has read nothing new through several of its polls.
    let last = -1;
    let stable = 0;
    await until(
      async () => {
        const src = server.firehose.health('fi-source')?.source;
        if (!src || src.state !== 'running') return false;
        stable = src.recordsRead === last ? stable + 1 : 0;
        last = src.recordsRead;
        await new Promise((r) => setTimeout(r, 400));
        return stable >= 5;
      },
      'the Kinesis source to read everything',
      60_000,
    );
  } finally {
    c.destroy();
    await server.close();
  }
  reportLines.push(...serverLines);

  // Offline: what each log holds now (damage not found by any reader until now is reported here).
  const inLog: Record<Kind, Set<string>> = { ingest: new Set(), kinesis: new Set(), firehose: new Set() };
  for (const kind of KINDS) for (const dir of await logDirs(dataDir, kind)) for (const id of await idsInLog(dir, kind, (l) => reportLines.push(l))) inLog[kind].add(id);
  const duck = await DuckDBInstance.create(join(dataDir, 'analytics', 'events.duckdb'));
  const conn = await duck.connect();
  const loaded = new Set((await conn.runAndReadAll('SELECT event_key FROM events')).getRowsJS().map((r) => String(r[0])));
  conn.closeSync();
  duck.closeSync();
  const bucketLines = async (bucket: string) => new Set((await folderContents(join(dataDir, 'buckets', bucket))).split('\n').filter(Boolean).map(idOf));
  const directDelivered = await bucketLines('fi-direct-bucket');
  const sourceDelivered = await bucketLines('fi-source-bucket');

  const outside: string[] = [];
  const check = (ok: boolean, what: string) => {
    if (!ok) outside.push(what);
  };
  for (const [id, endpoint] of acked.events) {
    if (damaged.ingest.has(id)) continue;
    check(inLog.ingest.has(id), `event ${id} in the ingest log`);
    check(delivered.has(id), `event ${id} delivered to the event stream`);
    check(loaded.has(`${endpoint}/${id}`), `event ${id} loaded into analytics`);
  }
  const seqs = new Set(acked.kinesis.values());
  assert.equal(seqs.size, acked.kinesis.size, 'no sequence number was given twice');
  for (const [id, seq] of acked.kinesis) {
    if (damaged.kinesis.has(id)) continue;
    check(kinesisRead.get(id)?.includes(seq) === true, `Kinesis record ${id} at its sequence number ${seq}`);
    check(sourceDelivered.has(id), `Kinesis record ${id} delivered by the Firehose source`);
  }
  for (const id of acked.firehose) {
    if (damaged.firehose.has(id)) continue;
    check(inLog.firehose.has(id), `Firehose record ${id} in its log`);
    check(directDelivered.has(id), `Firehose record ${id} delivered to its bucket`);
  }
  assert.deepEqual(outside.slice(0, 20), [], `${outside.length} acknowledged records lost outside the damaged bytes (seed ${seed})`);

  // Every loss was reported: the records missing from each log are covered by report lines.
  const reported = lostInLines(reportLines, dataDir);
  const ackedIds: Record<Kind, Iterable<string>> = { ingest: acked.events.keys(), kinesis: acked.kinesis.keys(), firehose: acked.firehose };
  const missing: Record<Kind, number> = { ingest: 0, kinesis: 0, firehose: 0 };
  for (const kind of KINDS) for (const id of ackedIds[kind]) if (!inLog[kind].has(id)) missing[kind]++;
  for (const kind of KINDS) assert.ok(reported[kind] >= missing[kind], `${kind}: ${missing[kind]} records missing, ${reported[kind]} reported lost (seed ${seed})`);

  const ms = Math.round(performance.now() - started);
  const lost = missing.ingest + missing.kinesis + missing.firehose;
  const summary = `seed ${seed}, ${CYCLES} cycles, ${faults.flips} flips, ${faults.truncations} truncations, ${faults.indexFaults} index faults, ${faults.kills} kill -9, ${acked.count()} records acknowledged, ${lost} lost in damaged bytes, ${outside.length} lost outside damaged bytes, ${ms} ms`;
  t.diagnostic(summary);
  console.log(`fault injection (server, damage): ${summary}`);
});

test('ENOSPC and fdatasync failures injected into each log of the real server: refused with the reason, then accepted again', { timeout: 120_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-faults-seam-'));
  let failing: { kind: Kind; fault: 'enospc' | 'fsync' } | undefined;
  const kindOf = (path: string): Kind | undefined =>
    path.includes(`${join('log', 'ingest')}`) ? 'ingest' : path.includes(`${join(dataDir, 'kinesis')}`) ? 'kinesis' : path.includes(`${join(dataDir, 'firehose')}`) ? 'firehose' : undefined;
  let injected = 0;
  const logFs = faultyFs({
    write: (path, bytes) => (failing?.fault === 'enospc' && kindOf(path) === failing.kind && path.endsWith('.log') ? (injected++, { prefix: bytes >> 1, error: enospc() }) : undefined),
    datasync: (path) => (failing?.fault === 'fsync' && kindOf(path) === failing.kind ? (injected++, eio('injected fdatasync failure')) : undefined),
  });
  const server = await startPinstream(loadConfig({}, { port: 0, dataDir, metricsToken: TEST_METRICS_TOKEN }), undefined, { logFs, logReport: () => {} });
  const c = clientsFor(server.url, server.admin);
  try {
    const app = await setUp(c, { intervalSeconds: 0, eventStream: true });
    const acked = new Acked();
    const rng = seeded(2);
    await load(c, app, acked, 'a', rng);
    for (const fault of ['enospc', 'fsync'] as const) {
      const reason = fault === 'enospc' ? /the server's disk is full \(ENOSPC\)/ : /a storage write failed \(EIO\)/;
      failing = { kind: 'ingest', fault };
      const ev = await rejection(
        c.pinpoint.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: { [`ep-${fault}`]: { Endpoint: {}, Events: { [`x-${fault}`]: { EventType: 'x', Timestamp: new Date().toISOString() } } } } } })),
      );
      assert.equal(ev.$metadata.httpStatusCode, 500);
      assert.match(ev.message, reason);
      failing = { kind: 'kinesis', fault };
      const kout = await c.kinesis.send(new PutRecordsCommand({ StreamName: 'fi-src', Records: [{ Data: Buffer.from(`k|x-${fault}|\n`), PartitionKey: 'a' }] }));
      assert.equal(kout.Records![0].ErrorCode, 'InternalFailure');
      assert.match(kout.Records![0].ErrorMessage!, reason);
      failing = { kind: 'firehose', fault };
      const fout = await c.firehose.send(new PutRecordBatchCommand({ DeliveryStreamName: 'fi-direct', Records: [{ Data: Buffer.from(`f|x-${fault}|\n`) }] }));
      assert.equal(fout.RequestResponses![0].ErrorCode, 'ServiceUnavailableException');
      assert.match(fout.RequestResponses![0].ErrorMessage!, reason);
      const h = await health(server.url);
      assert.equal(h.status, 'degraded');
      failing = undefined;
      await load(c, app, acked, `after-${fault}`, rng);
      // A log written only in the background (the event-stream worker's stream, a Firehose buffer
      // fed by a source stream) is healthy again at its next successful write, after its retry
      // backoff: the health turns back to ok then, not necessarily by the end of the load.
      await until(async () => (await health(server.url)).status === 'ok', 'health to turn back to ok once every log has written again', 60_000);
    }
    // Everything acknowledged is delivered and loaded; nothing refused is.
    await server.analytics.catchUp();
    await until(() => server.delivery.health(app)?.recordsBehind === 0, 'event-stream delivery to catch up', 60_000);
    const delivered = await readStream(c.kinesis, 'fi-es');
    const read = await readStream(c.kinesis, 'fi-src');
    for (const id of acked.events.keys()) assert.ok(delivered.has(id), `event ${id} delivered`);
    for (const [id, seq] of acked.kinesis) assert.ok(read.get(id)?.includes(seq), `Kinesis record ${id}`);
    for (const fault of ['enospc', 'fsync']) {
      assert.ok(!delivered.has(`x-${fault}`) && !read.has(`x-${fault}`), 'refused records are not stored');
    }
    console.log(`fault injection (server, seam): ${injected} faults injected, ${acked.count()} records acknowledged, 0 lost`);
  } finally {
    c.destroy();
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});
