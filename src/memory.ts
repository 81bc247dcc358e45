// Where the process's memory goes, for /metrics (issue 16: memory "bounded and predictable under
// sustained load; report where it goes"): the main thread's V8 heap and the buffers outside it,
// the analytics thread's heap and DuckDB's memory (as the thread last reported them), and the
// PutEvents prepare threads' heaps. What RSS holds beyond these parts is native: code, each
// thread's stacks and isolate, SQLite's page cache, socket buffers, allocator slack. On Linux RSS is
// also split as the kernel counts it: file-backed pages (the code of node, DuckDB and SQLite mapped
// from disk: shared with other processes, given back under pressure) and anonymous ones.

import { readFileSync } from 'node:fs';

import type { ThreadMemory } from './analytics/thread.js';

export interface MemoryParts {
  /** The analytics thread's latest report (undefined before it has started and reported). */
  analytics: ThreadMemory | undefined;
  /** DuckDB's memory limit (bytes), the bound of `analytics.duckdb`. */
  duckdbLimit: number;
  /** The prepare threads' V8 heaps together. */
  prepareHeapUsed: number;
}

const GAUGE = 'pinstream_memory_bytes';

/** RssAnon/RssFile of this process from /proc/self/status (bytes), or undefined off Linux. */
export function rssSplit(status: () => string = () => readFileSync('/proc/self/status', 'utf8')): { anon: number; file: number } | undefined {
  let text: string;
  try {
    text = status();
  } catch {
    return undefined;
  }
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  const anon = kb('RssAnon');
  const file = kb('RssFile');
  return Number.isFinite(anon) && Number.isFinite(file) ? { anon: anon * 1024, file: file * 1024 } : undefined;
}

/** `pinstream_memory_bytes{part=...}` gauges (process-wide, nothing tenant-identifying). */
export function renderMemoryMetrics(p: MemoryParts, usage: NodeJS.MemoryUsage = process.memoryUsage(), split = rssSplit()): string {
  const parts: Array<[string, number]> = [
    ['rss', usage.rss],
    ...(split ? ([['rss_anon', split.anon], ['rss_file', split.file]] as Array<[string, number]>) : []),
    ['main_heap_used', usage.heapUsed],
    ['main_heap_total', usage.heapTotal],
    ['main_external', usage.external],
    ['main_array_buffers', usage.arrayBuffers],
    ['prepare_heap_used', p.prepareHeapUsed],
    ['duckdb_limit', p.duckdbLimit],
  ];
  if (p.analytics) parts.push(['analytics_heap_used', p.analytics.heapUsed], ['analytics_heap_total', p.analytics.heapTotal], ['analytics_external', p.analytics.external], ['duckdb', p.analytics.duckdb], ['duckdb_spilled', p.analytics.duckdbSpilled]);
  return (
    `# HELP ${GAUGE} Memory by part: the process RSS (rss_file: mapped from files, mostly code; rss_anon: the rest), each thread's V8 heap, buffers outside the main heap, DuckDB's memory and its limit (duckdb_spilled is on disk).\n` +
    `# TYPE ${GAUGE} gauge\n` +
    parts.map(([part, v]) => `${GAUGE}{part="${part}"} ${Math.round(v)}\n`).join('')
  );
}

/** The gauges back as numbers by part (the benchmark reads /metrics with this). */
export function parseMemoryMetrics(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^pinstream_memory_bytes\{part="([a-z_]+)"\} (\d+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}
