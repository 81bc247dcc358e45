// Small numeric and formatting helpers for the benchmarks: percentiles over latency samples,
// fixed-width table rendering and human-readable number formatting. No I/O.

/** Percentile (0..100) of an ascending-sorted array, nearest-rank; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const rank = Math.ceil((p / 100) * n);
  return sorted[Math.min(n - 1, Math.max(0, rank - 1))];
}

/** Sorted copy of all samples, concatenated. */
export function sortedSamples(parts: Float64Array[]): Float64Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Float64Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  out.sort();
  return out;
}

export function fmtInt(n: number): string {
  if (!Number.isFinite(n)) return '-';
  return Math.round(n).toLocaleString('en-US');
}

export function fmtNum(n: number, digits = 1): string {
  if (!Number.isFinite(n)) return '-';
  return n.toFixed(digits);
}

export function fmtRatio(n: number): string {
  if (!Number.isFinite(n)) return '-';
  return `${n.toFixed(2)}x (${(n * 100).toFixed(0)}%)`;
}

/** Renders rows as an aligned text table; numbers-looking cells are right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const right = (s: string) => /^[-+]?[\d,.]+(\s*[%x]|\s*\(.*\))?$|^-$/.test(s);
  const line = (cells: string[]) =>
    cells.map((c, i) => (right(c) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
