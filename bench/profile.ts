// Reads a V8 .cpuprofile (written by `node --cpu-prof`) and summarises where the samples went:
// self time aggregated by function (name + file:line) and by file/module, as % of the samples taken
// inside a time window (the measured step) when one is given, else of all samples; and the longest
// stretches without an idle sample, with what ran in them (what holds the event loop: tail latency).

import { readFileSync } from 'node:fs';
import { fmtInt, fmtNum, table } from './stats.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Monotonic-clock microseconds (V8's TimeTicks = CLOCK_MONOTONIC, as process.hrtime). */
export interface Window {
  startUs: number;
  endUs: number;
}

export interface ProfileSummary {
  samples: number;
  /** True when only the samples inside the requested window were counted. */
  windowed: boolean;
  durationMs: number;
  idlePct: number;
  byFunction: Array<{ name: string; where: string; pct: number }>;
  byFile: Array<{ where: string; pct: number }>;
  /** The longest stretches without an idle sample (what holds the event loop), longest first. */
  stalls: Stall[];
}

/** A run of consecutive busy samples: how long, and what the thread did in it. */
export interface Stall {
  ms: number;
  /** Milliseconds after the window's (or profile's) start. */
  atMs: number;
  /** The functions with the most self time in the stretch, with their share of it. */
  self: Array<{ name: string; pct: number }>;
  /** The project's outermost function on the stack, by share of the stretch's samples. */
  entries: Array<{ name: string; pct: number }>;
}

/** Stretches shorter than this are not reported as stalls. */
export const STALL_MIN_MS = 20;

/** Shortens a script URL: project files relative to dist/, node internals and packages by name. */
function shortUrl(url: string): string {
  if (url === '') return '';
  const dist = url.lastIndexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 6);
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + 14);
  return url.replace(/^file:\/\//, '');
}

export function summarizeProfile(file: string, top = 15, window?: Window): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, CallFrame>();
  for (const n of p.nodes) byId.set(n.id, n.callFrame);
  let samples = p.samples;
  let durationMs = (p.endTime - p.startTime) / 1000;
  let windowed = false;
  if (window && p.timeDeltas?.length === p.samples.length) {
    const inside: number[] = [];
    let t = p.startTime;
    for (let i = 0; i < p.samples.length; i++) {
      t += p.timeDeltas[i];
      if (t >= window.startUs && t <= window.endUs) inside.push(p.samples[i]);
    }
    // Fall back to all samples if the clocks did not line up (no sample inside the window).
    if (inside.length > 0) {
      samples = inside;
      windowed = true;
      durationMs = (window.endUs - window.startUs) / 1000;
    }
  }
  const stalls = findStalls(p, byId, window && windowed ? window : undefined);
  const fn = new Map<string, { name: string; where: string; n: number }>();
  const files = new Map<string, number>();
  let idle = 0;
  for (const id of samples) {
    const cf = byId.get(id);
    if (!cf) continue;
    if (cf.functionName === '(idle)') idle++;
    const where = cf.url ? `${shortUrl(cf.url)}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName}\u0000${where}`;
    const e = fn.get(key) ?? { name: cf.functionName || '(anonymous)', where, n: 0 };
    e.n++;
    fn.set(key, e);
    // (program), (garbage collector), (idle); other url-less frames are V8 builtins / native code.
    const fileKey = cf.url ? shortUrl(cf.url) : cf.functionName.startsWith('(') ? cf.functionName : '(builtins / native)';
    files.set(fileKey, (files.get(fileKey) ?? 0) + 1);
  }
  const total = samples.length || 1;
  return {
    samples: samples.length,
    windowed,
    durationMs,
    idlePct: (idle * 100) / total,
    byFunction: [...fn.values()]
      .sort((a, b) => b.n - a.n)
      .slice(0, top)
      .map((e) => ({ name: e.name, where: e.where, pct: (e.n * 100) / total })),
    byFile: [...files.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([where, n]) => ({ where, pct: (n * 100) / total })),
    stalls,
  };
}

const label = (cf: CallFrame) => `${cf.functionName || '(anonymous)'}${cf.url ? ` ${shortUrl(cf.url)}:${cf.lineNumber + 1}` : ''}`;

/** Runs of busy samples of at least STALL_MIN_MS (the 5 longest), with their top self functions and project entry points. */
function findStalls(p: CpuProfile, byId: Map<number, CallFrame>, window?: Window): Stall[] {
  if (p.timeDeltas?.length !== p.samples.length) return [];
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  /** The outermost frame of this project's code (dist/src) on a sample's stack, else the innermost frame. */
  const entry = (id: number): string => {
    let found: CallFrame | undefined;
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const cf = byId.get(at);
      if (cf && cf.url.includes('/dist/src/')) found = cf;
    }
    return found ? label(found) : label(byId.get(id)!);
  };
  const runs: Array<{ from: number; to: number; startUs: number; endUs: number }> = [];
  let t = p.startTime;
  let run: { from: number; to: number; startUs: number; endUs: number } | undefined;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i];
    if (window && (t < window.startUs || t > window.endUs)) continue;
    const idle = byId.get(p.samples[i])?.functionName === '(idle)';
    if (idle) {
      if (run) runs.push(run);
      run = undefined;
    } else if (run) {
      run.to = i;
      run.endUs = t;
    } else {
      run = { from: i, to: i, startUs: t - p.timeDeltas[i], endUs: t };
    }
  }
  if (run) runs.push(run);
  const origin = window?.startUs ?? p.startTime;
  return runs
    .filter((r) => (r.endUs - r.startUs) / 1000 >= STALL_MIN_MS)
    .sort((a, b) => b.endUs - b.startUs - (a.endUs - a.startUs))
    .slice(0, 5)
    .map((r) => {
      const self = new Map<string, number>();
      const entries = new Map<string, number>();
      const n = r.to - r.from + 1;
      for (let i = r.from; i <= r.to; i++) {
        const id = p.samples[i];
        const cf = byId.get(id);
        if (!cf) continue;
        const k = label(cf);
        self.set(k, (self.get(k) ?? 0) + 1);
        const e = entry(id);
        entries.set(e, (entries.get(e) ?? 0) + 1);
      }
      const top = (m: Map<string, number>) =>
        [...m]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 4)
          .map(([name, c]) => ({ name, pct: (c * 100) / n }));
      return { ms: (r.endUs - r.startUs) / 1000, atMs: (r.startUs - origin) / 1000, self: top(self), entries: top(entries) };
    });
}

export function renderProfile(s: ProfileSummary): string {
  return [
    `${s.samples} samples over ${fmtNum(s.durationMs / 1000, 1)} s of server wall time ` +
      `(${s.windowed ? 'the measured step only' : 'whole process lifetime: start-up, warm-up and step'}); ` +
      `idle ${fmtNum(s.idlePct)}% = main thread waiting (e.g. for fdatasync or for requests)`,
    'self time = time in the function itself (JSON.parse and other builtins count towards their caller).',
    '',
    'top self time by function:',
    table(['%', 'function', 'where'], s.byFunction.map((e) => [fmtNum(e.pct), e.name, e.where])),
    '',
    'self time by file / category:',
    table(['%', 'file'], s.byFile.map((e) => [fmtNum(e.pct), e.where])),
    '',
    `longest busy stretches (no idle sample for at least ${STALL_MIN_MS} ms: what holds the event loop):`,
    ...(s.stalls.length === 0
      ? ['  none']
      : s.stalls.map(
          (x) =>
            `  ${fmtNum(x.ms, 1)} ms at +${fmtInt(x.atMs)} ms: self ${x.self.map((e) => `${e.name} ${fmtNum(e.pct, 0)}%`).join(', ')}\n` +
            `      in ${x.entries.map((e) => `${e.name} ${fmtNum(e.pct, 0)}%`).join(', ')}`,
        )),
  ].join('\n');
}
