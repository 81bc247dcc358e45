// The source of a KinesisStreamAsSource delivery stream: reads every shard of an embedded Kinesis
// stream through the Kinesis API, signed as the delivery stream's role (so the role's policy
// decides, as in AWS: without kinesis:DescribeStream, ListShards, GetShardIterator or GetRecords
// reading fails visibly in health and is retried), appends the records to the delivery stream's
// log and only then saves each shard's last sequence number. A restart resumes AFTER_SEQUENCE_NUMBER
// of that checkpoint (TRIM_HORIZON for a shard never read): at least once.

import {
  DescribeStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  type KinesisClient,
  type Shard,
} from '@aws-sdk/client-kinesis';
import type { Clock } from '../clock.js';
import { backoffDelay } from '../consumer/backoff.js';
import type { Log, OffsetGap } from '../log/log.js';
import { describeError } from '../consumer/stop-signal.js';
import { KINESIS_SOURCE_MAX_BACKOFF_MS, KINESIS_SOURCE_POLL_MS, KINESIS_SOURCE_READ_LIMIT } from './limits.js';
import { encodeRecord, newRecordIds } from './records.js';

/** Saved in place of a sequence number once a closed shard has been read to its end. */
export const SHARD_DONE = 'END';

export interface KinesisSourceOptions {
  streamArn: string;
  /** Built on first use: the server's URL is only known once it listens. */
  client: () => KinesisClient;
  log: Log;
  checkpoint: { load(shardId: string): string | undefined; save(shardId: string, position: string): void };
  clock: Clock;
  pollMs?: number;
  /** Shard checkpoints found beyond their shard log's end at start (records lost there); shown in health. */
  gaps?: OffsetGap[];
}

export interface KinesisSourceHealth {
  streamArn: string;
  state: 'running' | 'retrying' | 'stopped';
  recordsRead: number;
  shards: number;
  lastError?: { message: string; at: number };
  lastReadAt?: number;
  /** Shard checkpoints that were beyond the end of their shard's log at start: records lost there. */
  checkpointGaps?: Array<{ records: number; message: string }>;
}

export class KinesisSource {
  private loop: Promise<void> | undefined;
  private stopping = false;
  private wake: () => void = () => {};
  private iterators = new Map<string, string>();
  private h: KinesisSourceHealth;

  constructor(private readonly o: KinesisSourceOptions) {
    this.h = { streamArn: o.streamArn, state: 'stopped', recordsRead: 0, shards: 0 };
    if (o.gaps?.length) this.h.checkpointGaps = o.gaps.map((g) => ({ records: g.records, message: g.message }));
  }

  start(): void {
    if (this.loop) return;
    this.h.state = 'running';
    this.loop = this.run().finally(() => (this.h.state = 'stopped'));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake();
    await this.loop;
  }

  health(): KinesisSourceHealth {
    return { ...this.h, ...(this.h.lastError ? { lastError: { ...this.h.lastError } } : {}) };
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      try {
        const read = await this.pass();
        failures = 0;
        this.h.state = 'running';
        if (!read) await this.sleep(this.o.pollMs ?? KINESIS_SOURCE_POLL_MS);
      } catch (e) {
        // Iterators may have expired or the role lost access: start over from the checkpoints.
        this.iterators.clear();
        this.h.state = 'retrying';
        this.h.lastError = { message: `reading ${this.o.streamArn}: ${describeError(e)}`, at: this.o.clock.now() };
        await this.sleep(backoffDelay(failures++, { maxMs: KINESIS_SOURCE_MAX_BACKOFF_MS }));
      }
    }
  }

  /** One round over every shard; true when any records were read. */
  private async pass(): Promise<boolean> {
    const { streamArn } = this.o;
    const client = this.o.client();
    await client.send(new DescribeStreamCommand({ StreamARN: streamArn, Limit: 1 }));
    const shards: Shard[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListShardsCommand(token ? { NextToken: token } : { StreamARN: streamArn }));
      shards.push(...(page.Shards ?? []));
      token = page.NextToken;
    } while (token && !this.stopping);
    this.h.shards = shards.length;
    let read = false;
    for (const shard of shards) {
      if (this.stopping) break;
      const id = shard.ShardId!;
      if (this.o.checkpoint.load(id) === SHARD_DONE) continue;
      if (await this.readShard(id)) read = true;
    }
    return read;
  }

  private async readShard(shardId: string): Promise<boolean> {
    const { streamArn, log, checkpoint } = this.o;
    const client = this.o.client();
    let iterator = this.iterators.get(shardId);
    if (!iterator) {
      const seq = checkpoint.load(shardId);
      const it = await client.send(
        new GetShardIteratorCommand({
          StreamARN: streamArn,
          ShardId: shardId,
          ...(seq ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: seq } : { ShardIteratorType: 'TRIM_HORIZON' }),
        }),
      );
      iterator = it.ShardIterator!;
    }
    const out = await client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: KINESIS_SOURCE_READ_LIMIT, StreamARN: streamArn }));
    const records = out.Records ?? [];
    if (records.length > 0) {
      const ids = newRecordIds(records.length);
      await log.append(records.map((r, i) => encodeRecord(Buffer.from(r.Data!), r.ApproximateArrivalTimestamp?.getTime() ?? this.o.clock.now(), ids[i])));
      checkpoint.save(shardId, records[records.length - 1].SequenceNumber!);
      this.h.recordsRead += records.length;
      this.h.lastReadAt = this.o.clock.now();
    }
    if (out.NextShardIterator) this.iterators.set(shardId, out.NextShardIterator);
    else {
      // A closed shard read to its end: its children carry on.
      this.iterators.delete(shardId);
      checkpoint.save(shardId, SHARD_DONE);
    }
    return records.length > 0;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
