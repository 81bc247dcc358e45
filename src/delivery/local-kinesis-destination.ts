// The in-process adapter of event-stream delivery to this server's own embedded Kinesis streams:
// one Destination batch = one append of the embedded stream's data plane (the routing, shard logs
// and per-record results PutRecords uses), as the event stream's role, without HTTP. Over HTTP
// every record was base64-encoded and JSON-serialised by the SDK, the 500 KB body hashed for
// SigV4, then parsed, verified and decoded again by the same process on the same thread: most of
// the CPU delivery cost (67 vs 22-27 µs/record), and with one 500-record call per fdatasync and
// event-loop round trip, the reason delivery fell to ~10% of ingestion. What it keeps of the wire
// path: the role is assumed by Pinpoint for the app (its trust is checked then and on every call,
// by the authorizer, as for a signed request), each call is authorized exactly as the Kinesis
// protocol authorizes PutRecords (identity and resource policies), and the stream must be
// writable as for PutRecords. Batches are larger than PutRecords' 500 records / 5 MiB (those are
// limits of the wire API): one call appends once per shard, and a shard refuses a suffix of a
// call's records (throttling admits in order; a failed append fails all of it), so resending the
// refused records keeps each partition key in order, which several calls in flight would not.

import { randomUUID } from 'node:crypto';
import type { ApiRequest } from '../http/request.js';
import type { Credentials } from '../iam/sigv4.js';
import type { PutEntry, PutResult } from '../kinesis/records.js';
import type { StreamState } from '../kinesis/streams.js';
import type { DeliveryRecord, Destination, RecordOutcome } from './destination.js';
import { kinesisPartitionKey, parseKinesisArn } from './kinesis-destination.js';
import { MAX_RECORD_BYTES } from '../kinesis/limits.js';

/** The embedded Kinesis as delivery calls it: its protocol's authorization, operations and data plane. */
export interface LocalKinesis {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  operations: Record<string, ((input: any, req: ApiRequest) => unknown) | undefined>;
  authorize?: (operation: string, input: Record<string, unknown>, req: ApiRequest) => void;
  /** The stream an input names, if it takes writes (the errors PutRecords answers otherwise). */
  writable(input: { StreamARN: string; StreamName: string }): StreamState;
  put(s: StreamState, entries: PutEntry[]): Promise<PutResult[]>;
}

/**
 * Records per in-process call: 20 PutRecords' worth. The worker fills a batch from several reads
 * while it is behind, so one fdatasync round and one wait for the event loop carry this many.
 */
export const LOCAL_MAX_BATCH_RECORDS = 10_000;
/** Bytes (data plus partition keys) per in-process call: bounds what one call holds in memory. */
export const LOCAL_MAX_BATCH_BYTES = 16 * 1024 * 1024;

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
  readonly maxRecords = LOCAL_MAX_BATCH_RECORDS;
  readonly maxBatchBytes = LOCAL_MAX_BATCH_BYTES;
  /** Every stream takes 1 MiB records (MaxRecordSizeInKiB is at least 1024), as remote delivery does. */
  readonly maxRecordBytes = MAX_RECORD_BYTES;
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

  send(records: DeliveryRecord[]): Promise<RecordOutcome[]> {
    let results: Promise<PutResult[]>;
    try {
      const input = { StreamARN: this.arn, StreamName: this.name };
      this.authorizeAs('PutRecords', input);
      const stream = this.service.writable(input);
      results = this.service.put(
        stream,
        records.map((r) => ({ data: r.data, partitionKey: kinesisPartitionKey(r.partitionKey), ...(r.routeHex ? { hashHex: r.routeHex } : {}) })),
      );
    } catch (e) {
      return Promise.reject(asClientError(e));
    }
    return results.then(
      (out) => {
        if (out.length !== records.length) throw new Error(`the embedded stream answered ${out.length} results for ${records.length} records`);
        return out.map((e): RecordOutcome => ('ErrorCode' in e ? { ok: false, error: `${e.ErrorCode}: ${e.ErrorMessage}` } : { ok: true }));
      },
      (e: unknown) => {
        throw asClientError(e);
      },
    );
  }

  async describe(): Promise<{ active: boolean; status: string }> {
    let out: unknown;
    try {
      const input = { StreamARN: this.arn, StreamName: this.name, Limit: 1 };
      const fn = this.service.operations.DescribeStream;
      if (!fn) throw new Error('the embedded Kinesis service has no DescribeStream operation');
      out = await fn(input, this.authorizeAs('DescribeStream', input));
    } catch (e) {
      throw asClientError(e);
    }
    const status = (out as { StreamDescription?: { StreamStatus?: string } })?.StreamDescription?.StreamStatus ?? 'UNKNOWN';
    return { active: status === 'ACTIVE' || status === 'UPDATING', status };
  }

  close(): void {}

  /** A request of the role's session, authorized for `operation` as the Kinesis protocol would. */
  private authorizeAs(operation: string, input: Record<string, unknown>): ApiRequest {
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
    return req;
  }
}
