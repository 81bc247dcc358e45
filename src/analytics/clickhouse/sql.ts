// SQL text for ClickHouse 18.16 and current releases: literals (18.16 has no query parameters —
// the HTTP client's `param_*` are refused as "Unknown setting"), and the expressions that read the
// events table's key/value arrays the way DuckDB's JSON functions read its JSON columns.

/** A string literal: ClickHouse strings are bytes, and only `\` and `'` need escaping inside quotes. */
export function str(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** A numeric literal; refuses what would not be one (NaN, Infinity). */
export function num(n: number): string {
  if (!Number.isFinite(n)) throw new Error(`not a finite number: ${n}`);
  return String(n);
}

/** A Date literal from `YYYY-MM-DD` (validated by the caller: dashboards.ts validateRange, kpi-routes). */
export function date(d: string): string {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(d)) throw new Error(`not a day: ${d}`);
  return `toDate('${d}')`;
}

export function strArray(values: readonly string[]): string {
  return `[${values.map(str).join(', ')}]`;
}

/** An event attribute as DuckDB's `attributes->>'k'` reads it: the string, or NULL when absent. */
export function attr(key: string): string {
  return `if(has(attr_keys, ${str(key)}), attr_values[indexOf(attr_keys, ${str(key)})], NULL)`;
}

/** An event metric as `TRY_CAST(metrics->>'k' AS DOUBLE)`: the number, or NULL when absent. */
export function metric(key: string): string {
  return `if(has(metric_keys, ${str(key)}), metric_values[indexOf(metric_keys, ${str(key)})], NULL)`;
}

/** The event attribute as a number when it parses as one (`TRY_CAST(attributes->>'k' AS DOUBLE)`). */
export function attrNumber(key: string): string {
  return `if(has(attr_keys, ${str(key)}), toFloat64OrNull(attr_values[indexOf(attr_keys, ${str(key)})]), NULL)`;
}
