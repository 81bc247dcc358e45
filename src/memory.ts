// Where the process's memory goes, for /metrics (issue 16: memory "bounded and predictable under
// sustained load; report where it goes"): the main thread's V8 heap and the buffers outside it,
// the analytics thread's heap and DuckDB's memory (as the thread last reported them), and the
// PutEvents prepare threads' heaps. What RSS holds beyond these parts is native: code, each
// thread's stacks and isolate, SQLite's page cache, socket buffers, allocator slack.

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

/** `pinstream_memory_bytes{part=...}` gauges (process-wide, nothing tenant-identifying). */
export function renderMemoryMetrics(p: MemoryParts, usage: NodeJS.MemoryUsage = process.memoryUsage()): string {
  const parts: Array<[string, number]> = [
    ['rss', usage.rss],
    ['main_heap_used', usage.heapUsed],
    ['main_heap_total', usage.heapTotal],
    ['main_external', usage.external],
    ['main_array_buffers', usage.arrayBuffers],
    ['prepare_heap_used', p.prepareHeapUsed],
    ['duckdb_limit', p.duckdbLimit],
  ];
  if (p.analytics) parts.push(['analytics_heap_used', p.analytics.heapUsed], ['analytics_heap_total', p.analytics.heapTotal], ['analytics_external', p.analytics.external], ['duckdb', p.analytics.duckdb], ['duckdb_spilled', p.analytics.duckdbSpilled]);
  return (
    `# HELP ${GAUGE} Memory by part: the process RSS, each thread's V8 heap, buffers outside the main heap, DuckDB's memory and its limit (duckdb_spilled is on disk).\n` +
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
