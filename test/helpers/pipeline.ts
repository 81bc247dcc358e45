// The pipeline the fault-injection and disk-full suites drive through the real server with the
// official SDK clients: an app whose event stream goes to the embedded Kinesis stream fi-es, the
// stream fi-src read by the KinesisStreamAsSource Firehose fi-source, the DirectPut Firehose
// fi-direct; seeded load through all three entry points, and readers for what came out.

import assert from 'node:assert/strict';
import { CreateAppCommand, PutEventsCommand, PutEventStreamCommand, type Event, type EventsBatch, type PinpointClient } from '@aws-sdk/client-pinpoint';
import { CreateStreamCommand, GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand, PutRecordsCommand, type KinesisClient } from '@aws-sdk/client-kinesis';
import { CreateDeliveryStreamCommand, PutRecordBatchCommand, type FirehoseClient } from '@aws-sdk/client-firehose';
import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { pinpointClient } from './server.js';
import { kinesisClient } from './kinesis.js';
import { firehoseClient } from './firehose.js';
import type { seeded } from './random.js';
import { metricsFetch } from './process.js';

export const ACCOUNT = '000000000000';
export const KINDS = ['ingest', 'kinesis', 'firehose'] as const;
export type Kind = (typeof KINDS)[number];
/** PutEvents, PutRecords and PutRecordBatch calls per load(). */
export const LOAD_ROUNDS = 8;

export interface Admin {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface Clients {
  pinpoint: PinpointClient;
  kinesis: KinesisClient;
  firehose: FirehoseClient;
  iam: IAMClient;
  destroy(): void;
}

export function clientsFor(url: string, admin: Admin): Clients {
  const target = { url, admin };
  const c = {
    pinpoint: pinpointClient(target),
    kinesis: kinesisClient(target, { http1: true }),
    firehose: firehoseClient(target),
    iam: new IAMClient({ endpoint: url, region: 'us-east-1', credentials: admin, maxAttempts: 1 }),
  };
  return { ...c, destroy: () => Object.values(c).forEach((x) => x.destroy()) };
}

export const streamArn = (name: string) => `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${name}`;
export const roleArn = (name: string) => `arn:aws:iam::${ACCOUNT}:role/${name}`;

/** The pipeline every test drives: an app streaming to fi-es, fi-src read by the fi-source Firehose, fi-direct. */
export async function setUp(c: Clients, opts: { intervalSeconds: number; eventStream: boolean }): Promise<string> {
  const app = (await c.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'faults' } }))).ApplicationResponse!.Id!;
  await c.kinesis.send(new CreateStreamCommand({ StreamName: 'fi-src', ShardCount: 2 }));
  await c.kinesis.send(new CreateStreamCommand({ StreamName: 'fi-es', ShardCount: 1 }));
  const role = async (name: string, service: string, statements: object[]) => {
    await c.iam.send(
      new CreateRoleCommand({
        RoleName: name,
        AssumeRolePolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: service }, Action: 'sts:AssumeRole' }] }),
      }),
    );
    await c.iam.send(new PutRolePolicyCommand({ RoleName: name, PolicyName: 'p', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: statements }) }));
  };
  await role('fi-es-role', 'pinpoint.amazonaws.com', [{ Effect: 'Allow', Action: ['kinesis:PutRecords', 'kinesis:DescribeStream'], Resource: streamArn('fi-es') }]);
  await role('fi-fh-role', 'firehose.amazonaws.com', [
    { Effect: 'Allow', Action: ['kinesis:DescribeStream', 'kinesis:ListShards', 'kinesis:GetShardIterator', 'kinesis:GetRecords'], Resource: streamArn('fi-src') },
    { Effect: 'Allow', Action: ['s3:PutObject', 's3:GetBucketLocation', 's3:ListBucket', 's3:AbortMultipartUpload', 's3:GetObject'], Resource: ['arn:aws:s3:::fi-*'] },
  ]);
  if (opts.eventStream) {
    await c.pinpoint.send(new PutEventStreamCommand({ ApplicationId: app, WriteEventStream: { DestinationStreamArn: streamArn('fi-es'), RoleArn: roleArn('fi-es-role') } }));
  }
  const s3 = (bucket: string) => ({
    RoleARN: roleArn('fi-fh-role'),
    BucketARN: `arn:aws:s3:::${bucket}`,
    BufferingHints: { SizeInMBs: 1, IntervalInSeconds: opts.intervalSeconds },
  });
  await c.firehose.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: 'fi-direct', DeliveryStreamType: 'DirectPut', ExtendedS3DestinationConfiguration: s3('fi-direct-bucket') }));
  await c.firehose.send(
    new CreateDeliveryStreamCommand({
      DeliveryStreamName: 'fi-source',
      DeliveryStreamType: 'KinesisStreamAsSource',
      KinesisStreamSourceConfiguration: { KinesisStreamARN: streamArn('fi-src'), RoleARN: roleArn('fi-fh-role') },
      ExtendedS3DestinationConfiguration: s3('fi-source-bucket'),
    }),
  );
  return app;
}

/** What was acknowledged, by id: events (by event id, with their endpoint), Kinesis records (with their sequence numbers), Firehose records. */
export class Acked {
  events = new Map<string, string>();
  kinesis = new Map<string, string>();
  firehose = new Set<string>();
  count(): number {
    return this.events.size + this.kinesis.size + this.firehose.size;
  }
}

/** One round of load through the SDKs; every request must be accepted in full. */
export async function load(c: Clients, app: string, acked: Acked, tag: string, rng: ReturnType<typeof seeded>): Promise<void> {
  for (let r = 0; r < LOAD_ROUNDS; r++) {
    const BatchItem: Record<string, EventsBatch> = {};
    for (let e = 0; e < 2; e++) {
      const Events: Record<string, Event> = {};
      for (let k = 0; k < 10; k++) {
        const id = `e${tag}-${r}-${e}-${k}`;
        Events[id] = { EventType: 'fault.test', Timestamp: new Date().toISOString(), Attributes: { fi: id, pad: 'p'.repeat(rng.int(150)) } };
      }
      BatchItem[`ep${tag}-${r}-${e}`] = { Endpoint: {}, Events };
    }
    const out = await c.pinpoint.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem } }));
    for (const [endpoint, item] of Object.entries(out.EventsResponse!.Results!)) {
      for (const [id, res] of Object.entries(item.EventsItemResponse!)) {
        assert.equal(res.StatusCode, 202, `${id}: ${res.Message}`);
        acked.events.set(id, endpoint);
      }
    }
    const krecs = Array.from({ length: 30 }, (_, i) => `k|k${tag}-${r}-${i}|${'x'.repeat(rng.int(80))}\n`);
    const kout = await c.kinesis.send(new PutRecordsCommand({ StreamName: 'fi-src', Records: krecs.map((d, i) => ({ Data: Buffer.from(d), PartitionKey: `pk-${tag}-${r}-${i}` })) }));
    assert.equal(kout.FailedRecordCount ?? 0, 0, JSON.stringify(kout.Records?.find((x) => x.ErrorCode)));
    kout.Records!.forEach((x, i) => acked.kinesis.set(idOf(krecs[i]), x.SequenceNumber!));
    const frecs = Array.from({ length: 30 }, (_, i) => `f|f${tag}-${r}-${i}|${'y'.repeat(rng.int(80))}\n`);
    const fout = await c.firehose.send(new PutRecordBatchCommand({ DeliveryStreamName: 'fi-direct', Records: frecs.map((d) => ({ Data: Buffer.from(d) })) }));
    assert.equal(fout.FailedPutCount, 0, JSON.stringify(fout.RequestResponses?.find((x) => x.ErrorCode)));
    for (const d of frecs) acked.firehose.add(idOf(d));
  }
}

export const idOf = (line: string) => line.split('|')[1];

/** Every record of a Kinesis stream from TRIM_HORIZON: id → sequence number (and no id twice). */
export async function readStream(k: KinesisClient, StreamName: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const shards = (await k.send(new ListShardsCommand({ StreamName }))).Shards!;
  for (const s of shards) {
    let it = (await k.send(new GetShardIteratorCommand({ StreamName, ShardId: s.ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    for (let pages = 0; it && pages < 10_000; pages++) {
      const r = await k.send(new GetRecordsCommand({ ShardIterator: it, Limit: 1000 }));
      for (const rec of r.Records!) {
        const text = Buffer.from(rec.Data!).toString();
        const id = text.startsWith('k|') ? idOf(text) : (JSON.parse(text).attributes?.fi as string);
        out.set(id, [...(out.get(id) ?? []), rec.SequenceNumber!]);
      }
      if (r.Records!.length === 0 && r.MillisBehindLatest === 0) break;
      it = r.NextShardIterator;
    }
  }
  return out;
}

export async function health(url: string): Promise<{ status: string; logs: Record<Kind, { recordsLost: number; diskFullLogs: number; failingLogs: number }> }> {
  return (await fetch(`${url}/health`)).json() as never;
}

export async function metric(url: string, name: string, kind: Kind): Promise<number> {
  const text = await (await metricsFetch(url)).text();
  const m = new RegExp(`^${name}\\{log="${kind}"\\} (\\d+)$`, 'm').exec(text);
  assert.ok(m, `${name}{log="${kind}"} in /metrics`);
  return Number(m[1]);
}

