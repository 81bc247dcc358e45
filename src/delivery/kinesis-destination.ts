// The Kinesis Data Streams adapter of event-stream delivery: one Destination batch = one PutRecords
// call to a stream named by its ARN (reference/kinesis-firehose.md §2.4), and `destinationFor`, the
// factory that picks the adapter (Kinesis or Firehose) from a destination ARN and builds its SDK
// client the way delivery needs it: no SDK retries (the worker owns retries) and HTTP/1.1 with
// keep-alive, which every Kinesis-compatible server speaks (the SDK's default HTTP/2 handler fails
// against HTTP/1.1-only servers such as kinesalite, §1.3).

import { createHash } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import {
  DescribeStreamCommand,
  KinesisClient,
  PutRecordsCommand,
  type KinesisClientConfig,
} from '@aws-sdk/client-kinesis';
import { FirehoseClient } from '@aws-sdk/client-firehose';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { DeliveryRecord, Destination, RecordOutcome } from './destination.js';
import { FirehoseDestination, parseFirehoseArn } from './firehose-destination.js';
import { MAX_PARTITION_KEY_LENGTH, MAX_PUT_RECORDS_BYTES, MAX_PUT_RECORDS_COUNT, MAX_RECORD_BYTES } from '../kinesis/limits.js';

const ARN_RE = /^arn:[^:]+:kinesis:([^:]*):(\d{12}):stream\/([a-zA-Z0-9_.-]{1,128})$/;

/** Region, account and stream name of a kinesis stream ARN; undefined when it is not one. */
export function parseKinesisArn(arn: string): { region: string; accountId: string; name: string } | undefined {
  const m = ARN_RE.exec(arn);
  return m ? { region: m[1], accountId: m[2], name: m[3] } : undefined;
}

/**
 * The PartitionKey sent for a record's key (the endpoint id). Kinesis takes 1–256 characters, but
 * Pinpoint endpoint ids have no length cap: a key outside that range would fail the whole
 * PutRecords call on every retry, so it is replaced by its SHA-256 (hex, 64 chars) — still one
 * key per endpoint, so that endpoint's records keep landing on one shard, in order.
 */
export function kinesisPartitionKey(key: string): string {
  if (key.length >= 1 && key.length <= MAX_PARTITION_KEY_LENGTH) return key;
  return createHash('sha256').update(key).digest('hex');
}

export class KinesisDestination implements Destination {
  readonly kind = 'kinesis' as const;
  readonly maxRecords = MAX_PUT_RECORDS_COUNT;
  readonly maxBatchBytes = MAX_PUT_RECORDS_BYTES;
  readonly maxRecordBytes = MAX_RECORD_BYTES;
  private readonly name: string;

  /** `ownsClient`: close() destroys the client (true when destinationFor created it). */
  constructor(
    private readonly client: KinesisClient,
    readonly arn: string,
    private readonly options: { ownsClient?: boolean } = {},
  ) {
    const parsed = parseKinesisArn(arn);
    if (!parsed) throw new Error(`not a Kinesis stream ARN: ${arn}`);
    this.name = parsed.name;
  }

  recordSize(r: DeliveryRecord): number {
    return r.data.length + Buffer.byteLength(kinesisPartitionKey(r.partitionKey));
  }

  async send(records: DeliveryRecord[]): Promise<RecordOutcome[]> {
    // Both StreamARN and StreamName: current servers prefer the ARN, older ones (kinesalite) read
    // only the name, and AWS accepts both when they agree.
    const out = await this.client.send(
      new PutRecordsCommand({
        StreamARN: this.arn,
        StreamName: this.name,
        Records: records.map((r) => ({ Data: r.data, PartitionKey: kinesisPartitionKey(r.partitionKey) })),
      }),
    );
    const results = out.Records ?? [];
    if (results.length !== records.length) {
      // Without one answer per record nothing is known accepted: the caller resends the batch.
      throw new Error(`PutRecords answered ${results.length} Records for ${records.length} records`);
    }
    return results.map((e) => (e.ErrorCode ? { ok: false, error: `${e.ErrorCode}: ${e.ErrorMessage ?? ''}` } : { ok: true }));
  }

  async describe(): Promise<{ active: boolean; status: string }> {
    // DescribeStream (not the Summary): it is what Pinpoint's role policy grants (kinesis:DescribeStream).
    const out = await this.client.send(new DescribeStreamCommand({ StreamARN: this.arn, StreamName: this.name, Limit: 1 }));
    const status = out.StreamDescription?.StreamStatus ?? 'UNKNOWN';
    // UPDATING streams (resharding, retention changes) still take writes.
    return { active: status === 'ACTIVE' || status === 'UPDATING', status };
  }

  close(): void {
    if (this.options.ownsClient) this.client.destroy();
  }
}

export interface DestinationClientConfig {
  /** Custom endpoint (embedded Pinstream, kinesalite, LocalStack…); AWS's own when absent. */
  endpoint?: string;
  region: string;
  /** The SDK's default provider chain when absent. */
  credentials?: KinesisClientConfig['credentials'];
  /** Defaults to deliveryHttpHandler(). */
  requestHandler?: NodeHttpHandler;
}

/** The name the delivery manager uses for the same shape. */
export type ClientConfig = DestinationClientConfig;

/** Connect within 5 s; a call that takes over 30 s fails (and is retried) instead of hanging the worker. */
export const CONNECT_TIMEOUT_MS = 5_000;
export const REQUEST_TIMEOUT_MS = 30_000;

/** HTTP/1.1 with keep-alive, bounded connect and request times. */
export function deliveryHttpHandler(): NodeHttpHandler {
  return new NodeHttpHandler({
    httpAgent: new HttpAgent({ keepAlive: true }),
    httpsAgent: new HttpsAgent({ keepAlive: true }),
    connectionTimeout: CONNECT_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    throwOnRequestTimeout: true,
  });
}

/**
 * deliveryHttpHandler for calls this server makes to its own listening address (embedded Kinesis and
 * Firehose destinations). Over TLS the certificate is for the names clients use (maybe
 * pinpoint.REGION.amazonaws.com, from a private CA), not for the address the server dials, so it is
 * not checked: the server connects to the port it holds itself, which no other process can bind.
 * Never use it for any other address.
 */
export function selfHttpHandler(): NodeHttpHandler {
  return new NodeHttpHandler({
    httpAgent: new HttpAgent({ keepAlive: true }),
    httpsAgent: new HttpsAgent({ keepAlive: true, rejectUnauthorized: false }),
    connectionTimeout: CONNECT_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    throwOnRequestTimeout: true,
  });
}

/**
 * The adapter for a destination ARN (`arn:…:kinesis:…:stream/NAME` or
 * `arn:…:firehose:…:deliverystream/NAME`) with its own SDK client; close() destroys that client.
 */
export function destinationFor(arn: string, clientConfig: DestinationClientConfig): Destination {
  const config = {
    region: clientConfig.region,
    credentials: clientConfig.credentials,
    maxAttempts: 1,
    requestHandler: clientConfig.requestHandler ?? deliveryHttpHandler(),
    ...(clientConfig.endpoint !== undefined ? { endpoint: clientConfig.endpoint } : {}),
  };
  if (parseKinesisArn(arn)) return new KinesisDestination(new KinesisClient(config), arn, { ownsClient: true });
  if (parseFirehoseArn(arn)) return new FirehoseDestination(new FirehoseClient(config), arn, { ownsClient: true });
  throw new Error(`not a Kinesis stream or Firehose delivery stream ARN: ${arn}`);
}
