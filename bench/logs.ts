// `bench logs`: the two Log adapters side by side in one run, so their ratio is what counts on a
// noisy machine: the segment log (fdatasync per group commit) in a temporary folder, and JetStream
// (file storage, replicas 1) on the NATS server at --nats (default 127.0.0.1:4222). Phases per
// adapter, same payloads:
//  1. serial: one 1-record append at a time (a lone PutRecord): latency p50/p99 and appends/s;
//  2. concurrent: --inflight appends of --batch records in flight (PutEvents under load): records/s;
//  3. read: every record from offset 0 in pages of 1,000 (a consumer catching up): records/s.
// For JetStream also: per-record direct get (one request per record, 32 in flight) vs the ordered
// consumer behind Log.read, which is how reads are done. CPU is this process's (client side plus,
// for the segment log, its writes) and the NATS server's (from /proc, when its pid is found), per
// record. Exit 1 on any error.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { systemClock } from '../src/clock.js';
import type { Log } from '../src/log/log.js';
import { SegmentLogProvider, type LogProvider } from '../src/log/provider.js';
import { JetStreamLogProvider } from '../src/log/jetstream/provider.js';
import type { JetStreamLog } from '../src/log/jetstream/log.js';
import { jetstreamManager } from '@nats-io/jetstream';
import { fmtInt, fmtNum, fmtRatio, percentile, table } from './stats.js';

const USAGE = `usage: npm run bench -- logs [options]

  --serial N     serial 1-record appends (default 2000)
  --records N    records appended concurrently (default 40000)
  --batch N      records per concurrent append (default 10)
  --inflight N   concurrent appends in flight (default 32)
  --size N       payload bytes (default 256)
  --nats URL     NATS server (default 127.0.0.1:4222)`;

interface Options {
  serial: number;
  records: number;
  batch: number;
  inflight: number;
  size: number;
  nats: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { serial: 2000, records: 40_000, batch: 10, inflight: 32, size: 256, nats: '127.0.0.1:4222' };
  for (let i = 0; i < argv.length; i++) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (k === '--help') throw new Error(USAGE);
    if (k === '--nats' && v) o.nats = v;
    else if (['--serial', '--records', '--batch', '--inflight', '--size'].includes(k) && /^\d+$/.test(v ?? '') && Number(v) > 0) {
      (o as unknown as Record<string, number>)[k.slice(2)] = Number(v);
    } else throw new Error(`bench logs: bad option ${k}\n${USAGE}`);
    i++;
  }
  return o;
}

/** CPU seconds of a process from /proc (utime + stime), or NaN. */
function procCpuSec(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return NaN;
  }
}

/** The pid listening on the NATS port (ss), to count the server's CPU too. */
function natsPid(url: string): number | undefined {
  const port = /:(\d+)$/.exec(url)?.[1];
  if (!port) return undefined;
  try {
    const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8', timeout: 5000 });
    const m = /pid=(\d+)/.exec(out);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

interface Phase {
  records: number;
  seconds: number;
  /** CPU µs per record: this process, the server (NaN: not measured). */
  cpuUs: number;
  serverCpuUs: number;
  p50?: number;
  p99?: number;
}

async function measure(records: number, serverPid: number | undefined, run: () => Promise<number[] | void>): Promise<Phase> {
  const cpu0 = process.cpuUsage();
  const srv0 = procCpuSec(serverPid);
  const t0 = performance.now();
  const lat = (await run()) ?? [];
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const srv = procCpuSec(serverPid) - srv0;
  const sorted = Float64Array.from(lat).sort();
  return {
    records,
    seconds,
    cpuUs: (cpu.user + cpu.system) / records,
    serverCpuUs: (srv * 1e6) / records,
    ...(lat.length ? { p50: percentile(sorted, 50), p99: percentile(sorted, 99) } : {}),
  };
}

async function runAdapter(logs: LogProvider, o: Options, serverPid: number | undefined): Promise<{ serial: Phase; concurrent: Phase; read: Phase; log: Log }> {
  const payload = Buffer.alloc(o.size, 0x61);
  const log = await logs.open('kinesis', `bench-${randomUUID().slice(0, 8)}`, 'shardId-000000000000');
  // Warm-up: connections, first segment, stream leader.
  for (let i = 0; i < 50; i++) await log.append([payload]);
  const serial = await measure(o.serial, serverPid, async () => {
    const lat: number[] = [];
    for (let i = 0; i < o.serial; i++) {
      const t = performance.now();
      await log.append([payload]);
      lat.push(performance.now() - t);
    }
    return lat;
  });
  const appends = Math.ceil(o.records / o.batch);
  const batch = Array.from({ length: o.batch }, () => payload);
  const concurrent = await measure(appends * o.batch, serverPid, async () => {
    const lat: number[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: o.inflight }, async () => {
        while (next < appends) {
          next++;
          const t = performance.now();
          await log.append(batch);
          lat.push(performance.now() - t);
        }
      }),
    );
    return lat;
  });
  const total = log.endOffset();
  const read = await measure(total, serverPid, async () => {
    let offset = 0;
    let n = 0;
    while (offset < total) {
      const r = await log.read(offset, { maxRecords: 1000 });
      if (r.records.length === 0) throw new Error(`read stopped at ${offset} of ${total}`);
      n += r.records.length;
      offset = r.nextOffset;
    }
    if (n !== total) throw new Error(`read ${n} of ${total} records`);
  });
  return { serial, concurrent, read, log };
}

export async function logs(argv: string[]): Promise<number> {
  let o: Options;
  try {
    o = parseArgs(argv);
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-bench-logs-'));
  const segment = new SegmentLogProvider({ dataDir, fsync: true, clock: systemClock });
  let js: JetStreamLogProvider;
  try {
    js = await JetStreamLogProvider.connect({ servers: [o.nats], clock: systemClock, replicas: 1, prefix: `BENCH${randomUUID().replaceAll('-', '').slice(0, 8)}`, connectTimeoutMs: 5000 });
  } catch (e) {
    console.error(`bench logs: ${(e as Error).message}`);
    await rm(dataDir, { recursive: true, force: true });
    return 1;
  }
  const pid = natsPid(o.nats);
  console.log(`bench logs: ${o.serial} serial appends, ${o.records} records in ${o.batch}-record appends with ${o.inflight} in flight, ${o.size}-byte payloads; NATS ${o.nats} (server pid ${pid ?? 'not found: its CPU is not counted'})\n`);
  try {
    const seg = await runAdapter(segment, o, undefined);
    await seg.log.close();
    const jet = await runAdapter(js, o, pid);

    // Reads one record per request (direct get; 32 in flight) against Log.read's ordered consumer.
    const n = Math.min(jet.log.endOffset(), 5000);
    const jsm = await jetstreamManager(js.nc);
    const stream = (jet.log as JetStreamLog).stream;
    const direct = await measure(n, pid, async () => {
      let next = 0;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < n) {
            const seq = ++next;
            const m = await jsm.direct.getMessage(stream, { seq });
            if (!m) throw new Error(`direct get ${seq}: no message`);
          }
        }),
      );
    });
    await jet.log.close();

    const rate = (p: Phase) => p.records / p.seconds;
    const row = (name: string, s: Phase, j: Phase, unit: string): string[] => [
      name,
      `${fmtInt(rate(s))} ${unit}`,
      `${fmtInt(rate(j))} ${unit}`,
      fmtRatio(rate(j) / rate(s)),
      s.p50 === undefined ? '-' : `${fmtNum(s.p50, 2)} / ${fmtNum(s.p99!, 2)}`,
      j.p50 === undefined ? '-' : `${fmtNum(j.p50, 2)} / ${fmtNum(j.p99!, 2)}`,
      fmtNum(s.cpuUs),
      `${fmtNum(j.cpuUs)} + ${fmtNum(j.serverCpuUs)}`,
    ];
    console.log(
      table(
        ['phase', 'segment log', 'JetStream', 'JetStream/segment', 'segment p50/p99 ms', 'JetStream p50/p99 ms', 'segment CPU µs/rec', 'JetStream CPU µs/rec (client + server)'],
        [
          row('serial 1-record appends', seg.serial, jet.serial, 'appends/s'),
          row(`concurrent ${o.batch}-record appends`, seg.concurrent, jet.concurrent, 'records/s'),
          row('sequential read (pages of 1,000)', seg.read, jet.read, 'records/s'),
        ],
      ),
    );
    console.log(
      `\nJetStream reads: ordered consumer (Log.read) ${fmtInt(rate(jet.read))} records/s, ${fmtNum(jet.read.cpuUs)} + ${fmtNum(jet.read.serverCpuUs)} CPU µs/record; ` +
        `direct get per record (32 in flight) ${fmtInt(rate(direct))} records/s, ${fmtNum(direct.cpuUs)} + ${fmtNum(direct.serverCpuUs)} CPU µs/record; ` +
        `ratio ordered/direct ${fmtRatio(rate(jet.read) / rate(direct))}`,
    );
    return 0;
  } finally {
    await js.removeAll().catch(() => undefined);
    await js.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}
