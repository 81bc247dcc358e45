// Child processes under test: starts the real Pinstream server (`node dist/src/cli/main.js start`)
// or the ceiling peer with a fresh data directory, parses what their banners print (URL, admin
// key id and secret), and samples their CPU time and memory from /proc/<pid>/{stat,status}.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Credentials } from './load.js';

const here = dirname(fileURLToPath(import.meta.url)); // dist/bench
const KINESALITE_MAIN = resolve(here, 'kinesalite-peer.js');
export const PINSTREAM_MAIN = resolve(here, '../src/cli/main.js');
export const CEILING_MAIN = resolve(here, 'ceiling-server.js');

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  url: string;
  port: number;
  /** Pinstream only. */
  admin?: Credentials;
  /** Everything the child wrote, for error reports. */
  output(): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string>;
  nodeArgs?: string[];
  /** Removed when the child stops. */
  tmpDir?: string;
}

/** A clean environment: no inherited PINSTREAM_* settings or config file can change the run. */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PINSTREAM_') && !k.startsWith('NODE_OPTIONS')) env[k] = v;
  return { ...env, ...extra };
}

export function freshDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Starts Pinstream in a fresh data dir; resolves once the banner has given URL, key id and secret. */
export function startPinstream(name: string, opts: StartOptions = {}): Promise<Child> {
  const dataDir = opts.tmpDir ?? freshDir('pinstream-bench-');
  return startChild(
    name,
    [...(opts.nodeArgs ?? []), PINSTREAM_MAIN, 'start'],
    // cwd = the data dir, so a pinstream.json in the caller's directory is not picked up.
    { cwd: dataDir, env: childEnv({ PINSTREAM_PORT: '0', PINSTREAM_DATA_DIR: dataDir, ...opts.env }) },
    dataDir,
    (out) => {
      const url = /Pinstream listening on (http:\/\/\S+)/.exec(out)?.[1];
      const id = /admin access key id: (\S+)/.exec(out)?.[1];
      const secret = /admin secret access key: (\S+)/.exec(out)?.[1];
      if (!url || !id || !secret) return undefined;
      return { url, admin: { accessKeyId: id, secretAccessKey: secret } };
    },
  );
}

export function startCeiling(): Promise<Child> {
  const dir = freshDir('pinstream-ceiling-');
  return startChild('ceiling', [CEILING_MAIN], { cwd: dir, env: childEnv({ PORT: '0' }) }, dir, (out) => {
    const url = /ceiling listening on (http:\/\/\S+)/.exec(out)?.[1];
    return url ? { url } : undefined;
  });
}

/** kinesalite (bench/kinesalite-peer.ts) in a child process, in memory or on disk in a temp dir. */
export function startKinesalite(name: string, onDisk: boolean): Promise<Child> {
  const dir = freshDir('pinstream-kinesalite-');
  const env = childEnv({ AWS_REGION: 'us-east-1' });
  delete env.KINESALITE_PATH;
  if (onDisk) env.KINESALITE_PATH = dir;
  return startChild(name, [KINESALITE_MAIN], { cwd: dir, env }, dir, (out) => {
    const url = /kinesalite listening on (http:\/\/\S+)/.exec(out)?.[1];
    return url ? { url } : undefined;
  });
}

export function startChild(
  name: string,
  args: string[],
  spawnOpts: { cwd: string; env: NodeJS.ProcessEnv },
  tmpDir: string,
  parse: (stdout: string) => { url: string; admin?: Credentials } | undefined,
): Promise<Child> {
  const proc = spawn(process.execPath, args, { ...spawnOpts, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const MAX_KEEP = 64 * 1024;
  proc.stdout!.on('data', (d: Buffer) => {
    if (stdout.length < MAX_KEEP) stdout += d.toString('utf8');
  });
  proc.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < MAX_KEEP) stderr += d.toString('utf8');
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const cleanup = () => rmSync(tmpDir, { recursive: true, force: true });

  return new Promise<Child>((resolveStart, rejectStart) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      cleanup();
      rejectStart(new Error(`${name}: no usable banner within ${START_TIMEOUT_MS} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, START_TIMEOUT_MS);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      cleanup();
      rejectStart(new Error(`${name}: exited with code ${code} during start-up\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    };
    proc.once('exit', onExit);
    const onData = () => {
      const got = parse(stdout);
      if (!got) return;
      clearTimeout(timer);
      proc.off('exit', onExit);
      proc.stdout!.off('data', onData);
      const u = new URL(got.url);
      resolveStart({
        name,
        proc,
        pid: proc.pid!,
        url: got.url,
        port: Number(u.port),
        admin: got.admin,
        output: () => `stdout:\n${stdout}\nstderr:\n${stderr}`,
        stop: async () => {
          if (proc.exitCode === null && proc.signalCode === null) {
            proc.kill('SIGTERM');
            const t = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
            await exited;
            clearTimeout(t);
          }
          cleanup();
        },
      });
    };
    proc.stdout!.on('data', onData);
  });
}

// ------------------------------------------------------------------------------------------------
// /proc sampling

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

export interface ProcSample {
  /** user+system CPU time so far, ms. */
  cpuMs: number;
  rssMB: number;
  hwmMB: number;
  /** CPU time of the process's main thread alone (the one answering requests), ms. */
  mainCpuMs: number;
  /** CPU time so far by thread id, ms (names are read when the difference is shown: byThreadName). */
  threads: Map<string, number>;
}

/**
 * CPU per event by thread name between two samples: "main", the server's own threads as they name
 * themselves (src/threads/thread-name.ts: ps-prepare, ps-consumers, ps-firehose, ps-analytics, ...)
 * and "other" for the threads no one names (V8's, libuv's pool, DuckDB's). µs per event, largest first.
 */
export function byThreadName(pid: number, before: ProcSample, after: ProcSample, events: number): string {
  const out = new Map<string, number>();
  for (const [tid, ms] of after.threads) {
    const comm = Number(tid) === pid ? 'main' : threadName(pid, tid);
    const name = comm.startsWith('ps-') || comm === 'main' ? comm : 'other';
    out.set(name, (out.get(name) ?? 0) + ms - (before.threads.get(tid) ?? 0));
  }
  return [...out]
    .filter(([, ms]) => ms > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([name, ms]) => `${name} ${((ms * 1000) / events).toFixed(1)}`)
    .join(', ');
}

export function sampleProc(pid: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(rest[11]) + Number(rest[12]);
  return { cpuMs: (ticks * 1000) / ticksPerSecond(), rssMB: kb('VmRSS') / 1024, hwmMB: kb('VmHWM') / 1024, mainCpuMs: oneThreadCpuMs(pid, pid), threads: threadCpuMs(pid) };
}

/** CPU time of one thread of a process (its task id; the main thread's is the pid), ms. */
export function oneThreadCpuMs(pid: number, tid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / ticksPerSecond();
}

/** The name the kernel shows for a thread (libuv's pool: "libuv-worker"; DuckDB's and V8's threads have their own or the process's). */
export function threadName(pid: number, tid: string): string {
  try {
    return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** CPU time so far of each thread of process `pid` (by thread id), ms; threads that ended are not listed. */
export function threadCpuMs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      out.set(tid, oneThreadCpuMs(pid, Number(tid)));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

/** Busy CPU time of the whole machine so far (all cores; user+nice+system+irq+softirq+steal), ms. */
export function hostBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice (guest is already in user)
  const busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
  return (busy * 1000) / ticksPerSecond();
}
