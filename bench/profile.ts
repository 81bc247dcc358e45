// Reads a V8 .cpuprofile (written by `node --cpu-prof`) and summarises where the samples went:
// self time aggregated by function (name + file:line) and by file/module, as % of the samples taken
// inside a time window (the measured step) when one is given, else of all samples.

import { readFileSync } from 'node:fs';
import { fmtNum, table } from './stats.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
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
}

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
  };
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
  ].join('\n');
}
