// `bench firehose`: the embedded Firehose's delivery to the folder destination, measured against
// the disk it writes to. One Pinstream child process (durable defaults) in a fresh data dir:
//  1. peer: how fast this disk takes the same bytes written straight to files with fsync
//     (the bandwidth the Firehose path can at best approach);
//  2. throughput: N clients loop PutRecordBatch (500 records of --size bytes) for --seconds to a
//     stream with 128 MiB / 5 s buffering; acknowledged records/s and MB/s, bytes already in
//     objects when the puts end, and the time until every acknowledged byte is (objects per minute);
//  3. latency: one PutRecord every --latency-gap ms to a stream buffering 1 s (the smallest
//     non-zero interval); per record, the time from the put until an object holding it appears.
// The server runs with the probe (server-probe.ts): the main thread's event-loop utilization during
// the puts says how busy the thread answering requests is while delivery goes on.
// Clients are @aws-sdk/client-firehose over keep-alive HTTP/1.1, maxAttempts 1: errors are counted,
// never retried away. Exit 1 on any error or missing record.

import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { CreateDeliveryStreamCommand, FirehoseClient, PutRecordBatchCommand, PutRecordCommand } from '@aws-sdk/client-firehose';
import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { mkdtempSync, readdirSync as listDir } from 'node:fs';
import { tmpdir } from 'node:os';
import { byThreadName, freshDir, sampleProc, startPinstream, type Child } from './procs.js';
import { renderProfile, summarizeProfile, type Window } from './profile.js';

/** Monotonic µs, the clock of V8's profiles (to summarise the put phase alone). */
const monoUs = () => Number(process.hrtime.bigint() / 1000n);
import { fmtInt, fmtNum, fmtRatio, percentile, table } from './stats.js';

const BATCH = 500;
const REQUEST_TIMEOUT_MS = 30_000;
/** Bound on waiting for buffered records to reach the disk after the put phase. */
const DRAIN_CAP_MS = 120_000;
const POLL_MS = 20;
const ACCOUNT = '000000000000';
const ROLE_NAME = 'firehose-bench';
const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/${ROLE_NAME}`;
/** Buffering of the throughput stream: full 128 MiB objects, and the tail flushed soon after the puts. */
const THROUGHPUT_INTERVAL_S = 5;

const USAGE = `usage: npm run bench -- firehose [options]

  --seconds N        seconds of PutRecordBatch (default 10)
  --clients N        concurrent PutRecordBatch clients (default 4)
  --size N           record size in bytes (default 1024)
  --latency-puts N   records sent one at a time for the 1 s-interval latency phase (default 40)
  --latency-gap N    ms between those puts (default 250)
  --profile          run the server under node --cpu-prof and summarise where its time went`;

interface Options {
  seconds: number;
  clients: number;
  size: number;
  latencyPuts: number;
  latencyGap: number;
  profile: boolean;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): Options {
  const o: Options = { seconds: 10, clients: 4, size: 1024, latencyPuts: 40, latencyGap: 250, profile: false };
  const flags: Record<string, [keyof Options, number, number]> = {
    '--seconds': ['seconds', 1, 300],
    '--clients': ['clients', 1, 64],
    '--size': ['size', 16, 8192],
    '--latency-puts': ['latencyPuts', 1, 10_000],
    '--latency-gap': ['latencyGap', 1, 10_000],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') throw new UsageError('');
    if (a === '--profile') {
      o.profile = true;
      continue;
    }
    const f = flags[a];
    if (!f) throw new UsageError(`unknown option ${a}`);
    const n = Number(argv[++i]);
    if (!Number.isFinite(n) || n < f[1] || n > f[2]) throw new UsageError(`${a} needs a number from ${f[1]} to ${f[2]}`);
    (o[f[0]] as number) = Math.floor(n);
  }
  return o;
}

function client(child: Child): FirehoseClient {
  return new FirehoseClient({
    endpoint: child.url,
    region: 'us-east-1',
    credentials: child.admin!,
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({ httpAgent: new http.Agent({ keepAlive: true, maxSockets: 16 }), requestTimeout: REQUEST_TIMEOUT_MS }),
  });
}

/** Every file under dir (the bucket folder), with sizes; temp files of in-progress writes excluded. */
function objects(dir: string): Array<{ path: string; size: number; mtimeMs: number }> {
  if (!existsSync(dir)) return [];
  const out: Array<{ path: string; size: number; mtimeMs: number }> = [];
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || e.name.startsWith('.')) continue;
    const p = join(e.parentPath, e.name);
    const s = statSync(p);
    out.push({ path: p, size: s.size, mtimeMs: s.mtimeMs });
  }
  return out;
}

/** The peer: the same volume of bytes written to files of the same size with one fsync per file. */
function diskPeer(dir: string, totalBytes: number, fileBytes: number): { mbPerS: number; seconds: number } {
  const chunk = randomBytes(Math.min(fileBytes, 4 * 1024 * 1024));
  const t0 = performance.now();
  let written = 0;
  for (let i = 0; written < totalBytes; i++) {
    const fd = openSync(join(dir, `peer-${i}`), 'w');
    let inFile = 0;
    while (inFile < fileBytes && written < totalBytes) {
      const n = writeSync(fd, chunk, 0, Math.min(chunk.length, fileBytes - inFile));
      inFile += n;
      written += n;
    }
    fsyncSync(fd);
    closeSync(fd);
  }
  const seconds = (performance.now() - t0) / 1000;
  rmSync(dir, { recursive: true, force: true });
  return { mbPerS: written / 1e6 / seconds, seconds };
}

/**
 * The role the delivery streams name, made through the IAM API as a user would: Firehose assumes
 * it (trust in firehose.amazonaws.com) and writes to the buckets as it.
 */
async function createRole(child: Child): Promise<void> {
  const iam = new IAMClient({ endpoint: child.url, region: 'us-east-1', credentials: child.admin!, maxAttempts: 1 });
  try {
    await iam.send(
      new CreateRoleCommand({
        RoleName: ROLE_NAME,
        AssumeRolePolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Principal: { Service: 'firehose.amazonaws.com' }, Action: 'sts:AssumeRole', Condition: { StringEquals: { 'aws:SourceAccount': ACCOUNT } } },
          ],
        }),
      }),
    );
    await iam.send(
      new PutRolePolicyCommand({
        RoleName: ROLE_NAME,
        PolicyName: 'firehose-s3',
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: ['s3:AbortMultipartUpload', 's3:GetBucketLocation', 's3:GetObject', 's3:ListBucket', 's3:PutObject'], Resource: ['arn:aws:s3:::*'] }],
        }),
      }),
    );
  } finally {
    iam.destroy();
  }
}

async function createStream(fh: FirehoseClient, name: string, bucket: string, sizeMB: number, intervalS: number): Promise<void> {
  await fh.send(
    new CreateDeliveryStreamCommand({
      DeliveryStreamName: name,
      DeliveryStreamType: 'DirectPut',
      ExtendedS3DestinationConfiguration: {
        RoleARN: ROLE_ARN,
        BucketARN: `arn:aws:s3:::${bucket}`,
        BufferingHints: { SizeInMBs: sizeMB, IntervalInSeconds: intervalS },
      },
    }),
  );
}

const PROBE_MAIN = new URL('./server-probe.js', import.meta.url).pathname;

/** The main thread's event-loop utilization per second, from the probe's lines on the child's stdout. */
function watchElu(child: Child): (startMs: number, endMs: number) => number | undefined {
  const seconds: Array<{ t: number; elu: number }> = [];
  let rest = '';
  child.proc.stdout!.on('data', (d: Buffer) => {
    const parts = (rest + d.toString('utf8')).split('\n');
    rest = parts.pop() ?? '';
    for (const l of parts) {
      if (!l.startsWith('pinstream-probe ')) continue;
      try {
        const { t, elu } = JSON.parse(l.slice('pinstream-probe '.length));
        if (typeof elu === 'number') seconds.push({ t, elu });
      } catch {
        continue;
      }
    }
  });
  // Mean over the probe's seconds ending inside the window.
  return (startMs, endMs) => {
    const inside = seconds.filter((s) => s.t > startMs + 1000 && s.t <= endMs);
    return inside.length ? inside.reduce((a, s) => a + s.elu, 0) / inside.length : undefined;
  };
}

async function throughput(fh: FirehoseClient, child: Child, dataDir: string, o: Options) {
  const bucket = 'bench-throughput';
  await createStream(fh, 'bench-throughput', bucket, 128, THROUGHPUT_INTERVAL_S);
  const payload = randomBytes(o.size / 2).toString('hex').slice(0, o.size - 1) + '\n';
  const records = Array.from({ length: BATCH }, () => ({ Data: Buffer.from(payload) }));
  let acked = 0;
  let errors = 0;
  const before = sampleProc(child.pid);
  const cpu0 = before.cpuMs;
  const wall0 = Date.now();
  const window0 = monoUs();
  const t0 = performance.now();
  const until = t0 + o.seconds * 1000;
  await Promise.all(
    Array.from({ length: o.clients }, async () => {
      while (performance.now() < until) {
        try {
          const r = await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'bench-throughput', Records: records }));
          acked += BATCH - (r.FailedPutCount ?? 0);
          errors += r.FailedPutCount ?? 0;
        } catch (e) {
          errors++;
          if (errors < 5) console.error('  PutRecordBatch failed:', (e as Error).message);
        }
      }
    }),
  );
  const putSeconds = (performance.now() - t0) / 1000;
  const wall1 = Date.now();
  const window: Window = { startUs: window0, endUs: monoUs() };
  const after = sampleProc(child.pid);
  const putCpuPct = ((after.cpuMs - cpu0) / (putSeconds * 1000)) * 100;
  const threads = acked > 0 ? byThreadName(child.pid, before, after, acked) : '';
  const ackedBytes = acked * payload.length;
  const dir = join(dataDir, 'buckets', bucket);
  const tDrain = performance.now();
  let files = objects(dir);
  const inObjectsAtEnd = files.reduce((s, f) => s + f.size, 0);
  while (files.reduce((s, f) => s + f.size, 0) < ackedBytes && performance.now() - tDrain < DRAIN_CAP_MS) {
    await new Promise((r) => setTimeout(r, 200));
    files = objects(dir);
  }
  const deliveredBytes = files.reduce((s, f) => s + f.size, 0);
  const totalSeconds = (performance.now() - t0) / 1000;
  const drainSeconds = (performance.now() - tDrain) / 1000;
  return { window, wall: [wall0, wall1] as const, acked, errors, putSeconds, putCpuPct, threads, ackedBytes, deliveredBytes, inObjectsAtEnd, drainSeconds, files: files.length, totalSeconds };
}

async function latency(fh: FirehoseClient, dataDir: string, o: Options) {
  const bucket = 'bench-latency';
  await createStream(fh, 'bench-latency', bucket, 1, 1);
  const dir = join(dataDir, 'buckets', bucket);
  const sentAt = new Map<string, number>();
  const seenAt = new Map<string, number>();
  const seenFiles = new Set<string>();
  let stop = false;
  let lastPut = performance.now();
  const watcher = (async () => {
    while (!stop || seenAt.size < sentAt.size) {
      for (const f of objects(dir)) {
        if (seenFiles.has(f.path)) continue;
        seenFiles.add(f.path);
        const now = performance.now();
        for (const line of readFileSync(f.path, 'utf8').split('\n')) if (line) seenAt.set(line, now);
      }
      if (stop && performance.now() - lastPut > DRAIN_CAP_MS) break;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  })();
  let errors = 0;
  for (let i = 0; i < o.latencyPuts; i++) {
    const id = randomUUID();
    try {
      sentAt.set(id, performance.now());
      await fh.send(new PutRecordCommand({ DeliveryStreamName: 'bench-latency', Record: { Data: Buffer.from(id + '\n') } }));
    } catch (e) {
      errors++;
      sentAt.delete(id);
      console.error('  PutRecord failed:', (e as Error).message);
    }
    lastPut = performance.now();
    await new Promise((r) => setTimeout(r, o.latencyGap));
  }
  stop = true;
  await watcher;
  const lat = [...sentAt].filter(([id]) => seenAt.has(id)).map(([id, t]) => seenAt.get(id)! - t).sort((a, b) => a - b);
  return { sent: sentAt.size, seen: lat.length, errors, lat: Float64Array.from(lat) };
}

export async function firehose(argv: string[]): Promise<number> {
  let o: Options;
  try {
    o = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      if (e.message) console.error(`bench firehose: ${e.message}\n`);
      console.error(USAGE);
      return e.message ? 2 : 0;
    }
    throw e;
  }
  const dataDir = freshDir('pinstream-bench-firehose-');
  const profDir = o.profile ? mkdtempSync(join(tmpdir(), 'pinstream-prof-')) : undefined;
  const child = await startPinstream('pinstream', { tmpDir: dataDir, nodeArgs: [...(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []), '--import', PROBE_MAIN] });
  const elu = watchElu(child);
  const fh = client(child);
  let failed = false;
  let putWindow: Window | undefined;
  try {
    console.log(`bench firehose: ${o.clients} clients × PutRecordBatch(${BATCH} × ${o.size} B) for ${o.seconds} s, then ${o.latencyPuts} PutRecord at a 1 s buffer interval`);
    await createRole(child);
    const t = await throughput(fh, child, dataDir, o);
    putWindow = t.window;
    const peer = diskPeer(freshDir('pinstream-bench-disk-'), Math.max(t.deliveredBytes, 64 * 1024 * 1024), 128 * 1024 * 1024);
    const putMB = t.ackedBytes / 1e6 / t.putSeconds;
    console.log(`\nthroughput (folder destination, 128 MiB / ${THROUGHPUT_INTERVAL_S} s buffering)`);
    console.log(
      table(
        ['measure', 'value'],
        [
          ['records acknowledged', fmtInt(t.acked)],
          ['records/s acknowledged (durable)', fmtInt(t.acked / t.putSeconds)],
          ['MB/s acknowledged', fmtNum(putMB)],
          ['server CPU during puts', `${fmtNum(t.putCpuPct)} %`],
          ['main thread busy during puts (event-loop utilization)', ((u) => (u === undefined ? 'n/a' : `${fmtNum(u * 100)} %`))(elu(...t.wall))],
          ['server CPU µs per acknowledged record (puts and delivery during them)', fmtNum(((t.putCpuPct / 100) * t.putSeconds * 1e6) / Math.max(1, t.acked), 1)],
          ['  by thread', t.threads],
          ['bytes in objects / acknowledged', `${fmtInt(t.deliveredBytes)} / ${fmtInt(t.ackedBytes)}`],
          ['bytes in objects when the last put was answered', `${fmtInt(t.inObjectsAtEnd)} (${fmtNum((t.inObjectsAtEnd / Math.max(1, t.ackedBytes)) * 100)} %)`],
          ['seconds from the last put to the last byte on disk', fmtNum(t.drainSeconds)],
          ['objects written', fmtInt(t.files)],
          ['objects per minute', fmtNum((t.files / t.totalSeconds) * 60)],
          ['peer: same bytes straight to disk (fsync per 128 MiB file)', `${fmtNum(peer.mbPerS)} MB/s`],
          ['acknowledged MB/s ÷ disk peer', fmtRatio(putMB / peer.mbPerS)],
        ],
      ),
    );
    if (t.errors > 0 || t.deliveredBytes < t.ackedBytes) {
      console.error(`  ${t.errors} errors; ${t.ackedBytes - t.deliveredBytes} acknowledged bytes not delivered within ${DRAIN_CAP_MS / 1000} s`);
      failed = true;
    }
    const l = await latency(fh, dataDir, o);
    console.log('\ndelivery latency, PutRecord → object on disk (1 MiB / 1 s buffering)');
    console.log(
      table(
        ['records', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms'],
        [[`${l.seen}/${l.sent}`, fmtNum(percentile(l.lat, 50)), fmtNum(percentile(l.lat, 95)), fmtNum(percentile(l.lat, 99)), fmtNum(percentile(l.lat, 100))]],
      ),
    );
    if (l.errors > 0 || l.seen < l.sent) failed = true;
  } finally {
    fh.destroy();
    await child.stop();
  }
  if (profDir) {
    // One profile per thread (CPU.<date>.<time>.<pid>.<threadId>.<seq>.cpuprofile): the main
    // thread's (id 0), the one answering requests, is the one summarised.
    const all = listDir(profDir).filter((f) => f.endsWith('.cpuprofile'));
    const files = [...all.filter((f) => /\.0\.\d+\.cpuprofile$/.test(f)), ...all.filter((f) => !/\.0\.\d+\.cpuprofile$/.test(f))];
    if (files.length === 0) console.log('\nno .cpuprofile was written');
    else {
      if (putWindow) console.log('\nprofile of the server, the PutRecordBatch phase only:\n' + renderProfile(summarizeProfile(join(profDir, files[0]), 20, putWindow)));
      console.log('\nprofile of the server, whole run:\n' + renderProfile(summarizeProfile(join(profDir, files[0]), 20)));
    }
  }
  return failed ? 1 : 0;
}
