// `bench ingest` designs section: measures the two designs of issue 16 item 1 side by side in the
// prototype harness (designs-server.ts: A = worker threads, B = cluster processes, same parts),
// with CPU and memory summed over every process of a design.

import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv, freshDir, sampleProc, startChild, type Child, type ProcSample } from './procs.js';

const here = dirname(fileURLToPath(import.meta.url));
export const DESIGNS_MAIN = resolve(here, 'designs-server.js');
export const PROTO_CREDS = { accessKeyId: 'BENCHPROTO000000', secretAccessKey: 'bench-proto-secret-0000' };

export interface Design {
  label: string;
  design: 'threads' | 'procs';
  n: number;
}

/** Starts a prototype; `pids` lists every process of it (the primary first). */
export async function startDesign(d: Design, nodeArgs: string[] = []): Promise<Child & { pids: number[] }> {
  const dir = freshDir('pinstream-proto-');
  let pids: number[] = [];
  const child = await startChild(
    d.label,
    [...nodeArgs, DESIGNS_MAIN],
    { cwd: dir, env: childEnv({ PORT: '0', DESIGN: d.design, N: String(d.n), DATA_DIR: dir, KEY_ID: PROTO_CREDS.accessKeyId, SECRET: PROTO_CREDS.secretAccessKey }) },
    dir,
    (out) => {
      const m = /proto listening on (http:\/\/\S+) pids ([\d,]+)/.exec(out);
      if (!m) return undefined;
      pids = m[2].split(',').map(Number);
      return { url: m[1] };
    },
  );
  return { ...child, pids };
}

/** CPU and memory summed over the processes (peak: the sum of each process's peak). */
export function sampleAll(pids: number[]): ProcSample {
  // Per-thread CPU is shown for one process only: left empty here.
  const out: ProcSample = { cpuMs: 0, rssMB: 0, hwmMB: 0, mainCpuMs: 0, threads: new Map() };
  for (const p of pids) {
    const s = sampleProc(p);
    out.cpuMs += s.cpuMs;
    out.rssMB += s.rssMB;
    out.hwmMB += s.hwmMB;
    out.mainCpuMs += s.mainCpuMs;
  }
  return out;
}

