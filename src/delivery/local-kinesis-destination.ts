// The in-process adapter of event-stream delivery to this server's own embedded Kinesis streams:
// one Destination batch = one call of the embedded service's PutRecords operation, as the event
// stream's role, without HTTP. Over HTTP every record was base64-encoded and JSON-serialised by the
// SDK, the 500 KB body hashed for SigV4, then parsed, verified and decoded again by the same
// process on the same thread: most of the CPU delivery cost, and the reason delivery fell to ~10%
// of ingestion. What it keeps of the wire path: the role is assumed by Pinpoint for the app (its
// trust is checked then and on every call, by the authorizer, as for a signed request), the call is
// authorized exactly as the Kinesis protocol authorizes it (identity and resource policies), and
// the operation is the one clients call, with its own limits and per-record results. Calls are
// applied in the order they are made (the operation routes and queues every record on its shard
// log before its first await), so several may be in flight without reordering a partition key.

import { randomUUID } from 'node:crypto';
import type { ApiRequest } from '../http/request.js';
import type { Credentials } from '../iam/sigv4.js';
import type { DeliveryRecord, Destination, RecordOutcome } from './destination.js';
import { kinesisPartitionKey, parseKinesisArn } from './kinesis-destination.js';
import { MAX_PUT_RECORDS_BYTES, MAX_PUT_RECORDS_COUNT, MAX_RECORD_BYTES } from '../kinesis/limits.js';

/** The embedded Kinesis service as delivery calls it: its operations and its protocol's authorization. */
export interface LocalKinesis {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  operations: Record<string, ((input: any, req: ApiRequest) => unknown) | undefined>;
  authorize?: (operation: string, input: Record<string, unknown>, req: ApiRequest) => void;
}

/**
 * PutRecords calls a worker may have in flight to the embedded service. Each waits for its shard
 * logs' fdatasync and for event-loop turns shared with PutEvents; with many queued, each group
 * commit takes several batches instead of one. Measured in the e2e bench at 10k events/s under
 * load: 4 in flight delivered 0.70x of ingestion, 16 delivered 0.98x. The worker also bounds the
 * bytes in flight (MAX_IN_FLIGHT_BYTES).
 */
export const LOCAL_MAX_IN_FLIGHT = 16;

/** The error a remote client would have seen: its name is the AWS error code (describeError shows it). */
function asClientError(e: unknown): unknown {
  const code = (e as { code?: unknown })?.code;
  if (!(e instanceof Error) || typeof code !== 'string') return e;
  const err = new Error(e.message);
  err.name = code;
  return err;
}

export class LocalKinesisDestination implements Destination {
  readonly kind = 'kinesis' as const;
  readonly maxRecords = MAX_PUT_RECORDS_COUNT;
  readonly maxBatchBytes = MAX_PUT_RECORDS_BYTES;
  readonly maxRecordBytes = MAX_RECORD_BYTES;
  readonly maxInFlight = LOCAL_MAX_IN_FLIGHT;
  private readonly name: string;
  /** The role session, taken at the first call as the SDK's credential provider did; kept while valid. */
  private session: Credentials | undefined;

  /**
   * `assume` returns the role's session credentials for this app (throws when the role cannot be
   * assumed); `region` is the caller region a signed request would carry.
   */
  constructor(
    private readonly service: LocalKinesis,
    readonly arn: string,
    private readonly assume: () => Credentials,
    private readonly region: string,
  ) {
    const parsed = parseKinesisArn(arn);
    if (!parsed) throw new Error(`not a Kinesis stream ARN: ${arn}`);
    this.name = parsed.name;
  }

  recordSize(r: DeliveryRecord): number {
    return r.data.length + Buffer.byteLength(kinesisPartitionKey(r.partitionKey));
  }

  /** Must stay free of awaits before the operation's call: calls are applied in the order made. */
  send(records: DeliveryRecord[]): Promise<RecordOutcome[]> {
    let out: unknown;
    try {
      const input = {
        StreamARN: this.arn,
        StreamName: this.name,
        Records: records.map((r) => ({ Data: r.data, PartitionKey: kinesisPartitionKey(r.partitionKey) })),
      };
      out = this.call('PutRecords', input);
    } catch (e) {
      return Promise.reject(asClientError(e));
    }
    return Promise.resolve(out).then(
      (res) => {
        const results = (res as { Records?: Array<{ ErrorCode?: string; ErrorMessage?: string }> })?.Records ?? [];
        if (results.length !== records.length) throw new Error(`PutRecords answered ${results.length} Records for ${records.length} records`);
        return results.map((e): RecordOutcome => (e.ErrorCode ? { ok: false, error: `${e.ErrorCode}: ${e.ErrorMessage ?? ''}` } : { ok: true }));
      },
      (e: unknown) => {
        throw asClientError(e);
      },
    );
  }

  async describe(): Promise<{ active: boolean; status: string }> {
    let out: unknown;
    try {
      out = await this.call('DescribeStream', { StreamARN: this.arn, StreamName: this.name, Limit: 1 });
    } catch (e) {
      throw asClientError(e);
    }
    const status = (out as { StreamDescription?: { StreamStatus?: string } })?.StreamDescription?.StreamStatus ?? 'UNKNOWN';
    return { active: status === 'ACTIVE' || status === 'UPDATING', status };
  }

  close(): void {}

  /** Authorizes and starts one operation as the role's session (synchronously up to its first await). */
  private call(operation: string, input: Record<string, unknown>): unknown {
    const fn = this.service.operations[operation];
    if (!fn) throw new Error(`the embedded Kinesis service has no ${operation} operation`);
    this.session ??= this.assume();
    const req: ApiRequest = {
      method: 'POST',
      rawPath: '/',
      rawQuery: '',
      query: new URLSearchParams(),
      headers: { 'x-amz-target': `Kinesis_20131202.${operation}` },
      body: Buffer.alloc(0),
      requestId: randomUUID(),
      caller: { accessKeyId: this.session.accessKeyId, region: this.region },
    };
    this.service.authorize?.(operation, input, req);
    return fn(input, req);
  }
}
