// Kinesis test helpers: SDK clients pointed at a Pinstream server (HTTP/2 by default, as the SDK
// ships; HTTP/1.1 on request), a server and client for one describe block, error checks, and a
// reader that drains every shard of a stream in lineage order (a shard only after its parents are
// read to their end), as the KCL does.

import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  type Shard,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { ManualClock } from '../../src/clock.js';
import type { Config } from '../../src/config/config.js';
import { rejection } from './rejection.js';
import { startTestServer, type TestServer } from './server.js';

export interface KinesisTarget {
  url: string;
  admin: { accessKeyId: string; secretAccessKey: string };
}

/** An SDK client with retries off, so every error reaches the test as the server sent it. */
export function kinesisClient(server: KinesisTarget, opts: { http1?: boolean } = {}): KinesisClient {
  return new KinesisClient({
    endpoint: server.url,
    region: 'us-east-1',
    credentials: server.admin,
    maxAttempts: 1,
    ...(opts.http1 ? { requestHandler: new NodeHttpHandler() } : {}),
  });
}

/**
 * Starts a server (and an SDK client for it) for the describe block this is called in; the
 * returned object is filled in by `before`, and both are closed by `after`.
 */
export function kinesisServer(opts: { clock?: ManualClock; config?: Partial<Config>; http1?: boolean } = {}): { t: TestServer; k: KinesisClient } {
  const ctx = {} as { t: TestServer; k: KinesisClient };
  before(async () => {
    ctx.t = await startTestServer({ clock: opts.clock, config: opts.config });
    ctx.k = kinesisClient(ctx.t.server, { http1: opts.http1 });
  });
  after(async () => {
    ctx.k.destroy();
    await ctx.t.close();
  });
  return ctx;
}

/** Asserts the SDK error's name (the wire `__type`), HTTP status and, optionally, its message. */
export async function assertError(p: Promise<unknown>, name: string, message?: string | RegExp, status = 400): Promise<any> {
  const e = await rejection(p);
  assert.equal(e.name, name, `expected ${name}, got ${e.name}: ${e.message}`);
  assert.equal(e.$metadata?.httpStatusCode, status, `HTTP status of ${name}`);
  if (typeof message === 'string') assert.equal(e.message, message);
  else if (message) assert.match(e.message, message);
  return e;
}

export interface ReadRecord {
  shardId: string;
  sequenceNumber: string;
  partitionKey: string;
  data: Buffer;
  arrival: Date;
}

export interface LineageRead {
  /** Shards in the order they were drained. */
  order: string[];
  /** Records per shard, in shard order. */
  byShard: Map<string, ReadRecord[]>;
  /** ChildShards reported at the end of each closed shard. */
  children: Map<string, string[]>;
}

const MAX_CALLS_PER_SHARD = 10_000;

/**
 * Drains every shard from TRIM_HORIZON in lineage order: a shard is read only after all its parents
 * ended (GetRecords returned no NextShardIterator). Open shards are read until they are caught up.
 */
export async function readLineage(client: KinesisClient, streamName: string, opts: { limit?: number } = {}): Promise<LineageRead> {
  const shards: Shard[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(token ? new ListShardsCommand({ NextToken: token }) : new ListShardsCommand({ StreamName: streamName }));
    shards.push(...(page.Shards ?? []));
    token = page.NextToken;
  } while (token);
  const ids = new Set(shards.map((s) => s.ShardId!));
  const done = new Set<string>();
  const order: string[] = [];
  const byShard = new Map<string, ReadRecord[]>();
  const children = new Map<string, string[]>();
  while (done.size < shards.length) {
    // Parents that retention removed are not listed and count as read.
    const ready = shards.filter(
      (s) => !done.has(s.ShardId!) && [s.ParentShardId, s.AdjacentParentShardId].every((p) => !p || !ids.has(p) || done.has(p)),
    );
    assert.ok(ready.length > 0, `no shard is ready to read: lineage has a cycle or a missing parent (${[...ids].join(', ')})`);
    for (const s of ready) {
      const id = s.ShardId!;
      const out: ReadRecord[] = [];
      let it = (await client.send(new GetShardIteratorCommand({ StreamName: streamName, ShardId: id, ShardIteratorType: 'TRIM_HORIZON' })))
        .ShardIterator;
      let calls = 0;
      while (it) {
        assert.ok(++calls <= MAX_CALLS_PER_SHARD, `shard ${id} never ended or caught up`);
        const r = await client.send(new GetRecordsCommand({ ShardIterator: it, Limit: opts.limit }));
        for (const rec of r.Records ?? []) {
          out.push({
            shardId: id,
            sequenceNumber: rec.SequenceNumber!,
            partitionKey: rec.PartitionKey!,
            data: Buffer.from(rec.Data!),
            arrival: rec.ApproximateArrivalTimestamp!,
          });
        }
        if (!r.NextShardIterator) {
          children.set(id, (r.ChildShards ?? []).map((c) => c.ShardId!));
          break;
        }
        // An open shard is done once it is caught up and a call returns nothing new.
        if (s.SequenceNumberRange?.EndingSequenceNumber === undefined && r.MillisBehindLatest === 0 && (r.Records ?? []).length === 0) break;
        it = r.NextShardIterator;
      }
      byShard.set(id, out);
      order.push(id);
      done.add(id);
    }
  }
  return { order, byShard, children };
}
