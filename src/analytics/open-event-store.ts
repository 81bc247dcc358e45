// Chooses the analytics event store from the configuration: ClickHouse when PINSTREAM_CLICKHOUSE_URL
// is set (config.clickhouseUrl), else the embedded DuckDB store in the data directory. The one place
// the analytics thread needs to call to run on either (see docs/analytics-clickhouse.md).

import type { ClickHouseConfig } from '../config/config.js';
import { ClickHouseEventStore } from './clickhouse/store.js';
import { DuckDbEventStore } from './duckdb-event-store.js';
import type { AnalyticsEventStore } from './event-store.js';

export function openEventStore(opts: { dataDir: string; clickhouse?: ClickHouseConfig; memoryLimitMb?: number }): Promise<AnalyticsEventStore> {
  return opts.clickhouse ? ClickHouseEventStore.open(opts.clickhouse) : DuckDbEventStore.open(opts.dataDir, { memoryLimitMb: opts.memoryLimitMb });
}
