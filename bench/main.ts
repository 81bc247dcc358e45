// Benchmark entry point (`npm run bench -- <name> [options]`): dispatches on the first argument to
// one benchmark module and sets the exit code from its result.

import { endpoints } from './endpoints.js';
import { firehose } from './firehose.js';
import { ingest } from './ingest.js';
import { kinesis } from './kinesis.js';
import { runAnalyticsBench } from './analytics.js';
import { importBench } from './import.js';
import { history } from './history.js';
import { e2e } from './e2e.js';
import { metadata } from './metadata.js';
import { logs } from './logs.js';
import { clickhouseBench } from './clickhouse.js';
import { clusterBench } from './cluster.js';

const BENCHMARKS: Record<string, (argv: string[]) => Promise<number>> = { ingest, kinesis, firehose, analytics: runAnalyticsBench, endpoints, import: importBench, history, e2e, metadata, logs, clickhouse: clickhouseBench, cluster: clusterBench };

const USAGE = `usage: npm run bench -- <benchmark> [options]

benchmarks:
  ingest    PutEvents throughput/latency sweep against the real server, with peers (--help for options)
  kinesis   Kinesis PutRecords/GetRecords/PutRecord against Pinstream and kinesalite (--help for options)
  firehose  Firehose PutRecordBatch to the folder destination vs the disk's own bandwidth, and delivery latency (--help for options)
  analytics event store: bulk load, loader rate, dashboard/KPI latency, size on disk (--help for options)
  endpoints UpdateEndpointsBatch and endpoint-creating PutEvents at 10k/100k/1M endpoints per app, event loop stalls (--help for options)
  import    endpoint import jobs: 1M endpoints from a local bucket folder, JSON lines plain and gzip; endpoints/min, peak RSS
  e2e       PutEvents 202 → read on the event stream's embedded Kinesis: latency, counts, delivery lag, streaming on vs off (--help for options)
  history   history import of gzipped JSON and Parquet archives vs the live loader, with peak RSS (--help for options)
  metadata  IAM writes on SQLite vs PostgreSQL, the cached key lookup, and how soon another node serves a change (PostgreSQL)
  logs      Log adapters side by side: segment log (fsync) vs JetStream (NATS at 127.0.0.1:4222): appends, reads, CPU per record (--help for options)
  clickhouse analytics on ClickHouse vs DuckDB on the same rows: load rate, CPU µs/row, dashboard/KPI p50 (--help for options)
  cluster   PutEvents through 1 and 2 cluster nodes (3 NATS, PostgreSQL, ClickHouse) vs the embedded process: events/s, p99, CPU per event`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const run = name === undefined ? undefined : BENCHMARKS[name];
  if (!run) {
    if (name !== undefined && name !== 'help' && name !== '--help' && name !== '-h') console.error(`bench: unknown benchmark "${name}"\n`);
    console.error(USAGE);
    return name === 'help' || name === '--help' || name === '-h' ? 0 : 2;
  }
  return run(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error('bench:', e);
    process.exit(1);
  },
);
