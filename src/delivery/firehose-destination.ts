// The Firehose adapter of event-stream delivery: one Destination batch = one PutRecordBatch call to
// a delivery stream named by its ARN (reference/kinesis-firehose.md §3.3). Firehose concatenates
// record blobs as they are, so every record is sent newline-terminated and the objects it writes
// split into one JSON record per line.

import {
  DescribeDeliveryStreamCommand,
  PutRecordBatchCommand,
  type FirehoseClient,
} from '@aws-sdk/client-firehose';
import type { DeliveryRecord, Destination, RecordOutcome } from './destination.js';

export const FIREHOSE_MAX_RECORDS = 500;
export const FIREHOSE_MAX_BATCH_BYTES = 4 * 1024 * 1024;
/** 1,000 KiB per record before base64, the newline included. */
export const FIREHOSE_MAX_RECORD_BYTES = 1000 * 1024;

const NEWLINE = Buffer.from('\n');
const ARN_RE = /^arn:[^:]+:firehose:([^:]*):(\d{12}):deliverystream\/([a-zA-Z0-9_.-]{1,64})$/;

/** Region, account and delivery stream name of a firehose deliverystream ARN; undefined when it is not one. */
export function parseFirehoseArn(arn: string): { region: string; accountId: string; name: string } | undefined {
  const m = ARN_RE.exec(arn);
  return m ? { region: m[1], accountId: m[2], name: m[3] } : undefined;
}

export class FirehoseDestination implements Destination {
  readonly kind = 'firehose' as const;
  readonly maxRecords = FIREHOSE_MAX_RECORDS;
  readonly maxBatchBytes = FIREHOSE_MAX_BATCH_BYTES;
  readonly maxRecordBytes = FIREHOSE_MAX_RECORD_BYTES;
  private readonly name: string;

  /** `ownsClient`: close() destroys the client (true when destinationFor created it). */
  constructor(
    private readonly client: FirehoseClient,
    readonly arn: string,
    private readonly options: { ownsClient?: boolean } = {},
  ) {
    const parsed = parseFirehoseArn(arn);
    if (!parsed) throw new Error(`not a Firehose delivery stream ARN: ${arn}`);
    this.name = parsed.name;
  }

  recordSize(r: DeliveryRecord): number {
    return r.data.length + NEWLINE.length;
  }

  async send(records: DeliveryRecord[]): Promise<RecordOutcome[]> {
    // PutRecordBatch takes only the name; the partition key has no meaning for Firehose.
    const out = await this.client.send(
      new PutRecordBatchCommand({
        DeliveryStreamName: this.name,
        Records: records.map((r) => ({ Data: Buffer.concat([r.data, NEWLINE]) })),
      }),
    );
    const responses = out.RequestResponses ?? [];
    if (responses.length !== records.length) {
      // Without one answer per record nothing is known accepted: the caller resends the batch.
      throw new Error(`PutRecordBatch answered ${responses.length} RequestResponses for ${records.length} records`);
    }
    return responses.map((e) => (e.ErrorCode ? { ok: false, error: `${e.ErrorCode}: ${e.ErrorMessage ?? ''}` } : { ok: true }));
  }

  async describe(): Promise<{ active: boolean; status: string }> {
    const out = await this.client.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: this.name }));
    const status = out.DeliveryStreamDescription?.DeliveryStreamStatus ?? 'UNKNOWN';
    return { active: status === 'ACTIVE', status };
  }

  close(): void {
    if (this.options.ownsClient) this.client.destroy();
  }
}
