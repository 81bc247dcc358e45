// Shard-level metrics of the embedded Kinesis (what EnableEnhancedMonitoring turns on in AWS's
// CloudWatch): per-shard counters kept by KinesisData as records go in and out, and their
// Prometheus rendering on /metrics for exactly the metrics each stream has enabled. Counters live
// in memory, per stream incarnation, from this process's start (Prometheus counters may reset).

import { model } from '../models/generated/kinesis.js';
import { shardIdOf } from './keys.js';
import type { StreamRegistry, StreamState } from './streams.js';

/** The model's MetricsName values without `ALL`, in the model's order. */
export const SHARD_LEVEL_METRICS: readonly string[] = model.shapes.MetricsName.enum!.filter((m) => m !== 'ALL');

type Counters = Record<string, number>;

const PROMETHEUS: Record<string, { name: string; type: 'counter' | 'gauge'; help: string }> = {
  IncomingBytes: { name: 'pinstream_kinesis_shard_incoming_bytes_total', type: 'counter', help: 'Bytes (data plus partition key) put into the shard.' },
  IncomingRecords: { name: 'pinstream_kinesis_shard_incoming_records_total', type: 'counter', help: 'Records put into the shard.' },
  OutgoingBytes: { name: 'pinstream_kinesis_shard_outgoing_bytes_total', type: 'counter', help: 'Bytes of data read from the shard.' },
  OutgoingRecords: { name: 'pinstream_kinesis_shard_outgoing_records_total', type: 'counter', help: 'Records read from the shard.' },
  WriteProvisionedThroughputExceeded: {
    name: 'pinstream_kinesis_shard_write_throughput_exceeded_total',
    type: 'counter',
    help: 'Records refused by the shard write quota.',
  },
  ReadProvisionedThroughputExceeded: {
    name: 'pinstream_kinesis_shard_read_throughput_exceeded_total',
    type: 'counter',
    help: 'GetRecords calls refused by the shard read quota.',
  },
  IteratorAgeMilliseconds: { name: 'pinstream_kinesis_shard_iterator_age_milliseconds', type: 'gauge', help: 'MillisBehindLatest of the last read of the shard.' },
};

export class ShardMetrics {
  private byStream = new WeakMap<StreamState, Map<number, Counters>>();

  add(s: StreamState, shardIndex: number, metric: string, n: number): void {
    const c = this.counters(s, shardIndex);
    c[metric] = (c[metric] ?? 0) + n;
  }

  set(s: StreamState, shardIndex: number, metric: string, v: number): void {
    this.counters(s, shardIndex)[metric] = v;
  }

  /** Prometheus text for every stream's enabled metrics, one series per open shard. */
  render(registry: StreamRegistry): string {
    const lines = new Map<string, string[]>();
    for (const s of registry.list()) {
      const enabled = s.shardLevelMetrics ?? [];
      if (enabled.length === 0) continue;
      const byShard = this.byStream.get(s);
      for (const sh of s.shards) {
        if (sh.closedMs !== undefined) continue;
        for (const m of enabled) {
          const label = `{stream="${s.name}",shard="${shardIdOf(sh.index)}"}`;
          const list = lines.get(m) ?? [];
          list.push(`${PROMETHEUS[m].name}${label} ${byShard?.get(sh.index)?.[m] ?? 0}`);
          lines.set(m, list);
        }
      }
    }
    let out = '';
    for (const m of SHARD_LEVEL_METRICS) {
      const list = lines.get(m);
      if (!list) continue;
      const p = PROMETHEUS[m];
      out += `# HELP ${p.name} ${p.help}\n# TYPE ${p.name} ${p.type}\n${list.join('\n')}\n`;
    }
    return out;
  }

  private counters(s: StreamState, shardIndex: number): Counters {
    let byShard = this.byStream.get(s);
    if (!byShard) this.byStream.set(s, (byShard = new Map()));
    let c = byShard.get(shardIndex);
    if (!c) byShard.set(shardIndex, (c = Object.create(null) as Counters));
    return c;
  }
}
