// What crosses the consumers thread's boundary per destination call: one batch of records as one
// transferred buffer (the records' bytes back to back) with their lengths, partition keys and the
// keys' MD5 routes (hashed in the thread, not by the main thread's put), and back only the
// outcomes of the records that were refused. Both sides and the message names live
// here, so the two ends cannot disagree.

import type { DeliveryRecord, RecordOutcome } from './destination.js';
import { kinesisPartitionKey } from './kinesis-destination.js';
import { hashKeyHex } from '../kinesis/keys.js';
import type { DestinationSpec } from './spec.js';
import type { DeliverySnapshot, RejectedEntry } from './worker.js';
import type { LogShare } from '../log/segment-view.js';

export interface PackedBatch {
  appId: string;
  /** The worker run the batch is of (a stopped run's late calls are refused). */
  run: number;
  arn: string;
  data: ArrayBuffer;
  lengths: number[];
  /** Kinesis partition keys (kinesisPartitionKey applied) and their MD5 route, computed in the thread. */
  keys: string[];
  routes: string[];
}

/** Refused records by index; every other record of the batch was accepted. */
export interface PackedOutcomes {
  refused: Array<[index: number, error: string]>;
}

export function packBatch(appId: string, run: number, arn: string, records: DeliveryRecord[]): PackedBatch {
  let bytes = 0;
  for (const r of records) bytes += r.data.length;
  // Not from the pool: the whole ArrayBuffer is transferred, and only this batch may be in it.
  const buf = Buffer.allocUnsafeSlow(bytes);
  let at = 0;
  const lengths: number[] = new Array(records.length);
  const keys: string[] = new Array(records.length);
  const routes: string[] = new Array(records.length);
  for (let i = 0; i < records.length; i++) {
    const d = records[i].data;
    d.copy(buf, at);
    at += d.length;
    lengths[i] = d.length;
    keys[i] = kinesisPartitionKey(records[i].partitionKey);
    routes[i] = hashKeyHex(keys[i]);
  }
  return { appId, run, arn, data: buf.buffer as ArrayBuffer, lengths, keys, routes };
}

export function unpackBatch(b: PackedBatch): DeliveryRecord[] {
  const buf = Buffer.from(b.data);
  const out: DeliveryRecord[] = new Array(b.lengths.length);
  let at = 0;
  for (let i = 0; i < b.lengths.length; i++) {
    out[i] = { data: buf.subarray(at, at + b.lengths[i]), partitionKey: b.keys[i], routeHex: b.routes[i] };
    at += b.lengths[i];
  }
  return out;
}

export function packOutcomes(outcomes: RecordOutcome[]): PackedOutcomes {
  const refused: PackedOutcomes['refused'] = [];
  outcomes.forEach((o, i) => {
    if (!o.ok) refused.push([i, o.error]);
  });
  return { refused };
}

export function unpackOutcomes(p: PackedOutcomes, count: number): RecordOutcome[] {
  const out: RecordOutcome[] = new Array(count).fill(OK);
  for (const [i, error] of p.refused) out[i] = { ok: false, error };
  return out;
}

const OK: RecordOutcome = Object.freeze({ ok: true }) as RecordOutcome;

/** The thread's start data. */
export interface ConsumersThreadInit {
  /** The ingest log, read through a read-only view. */
  ingest: LogShare;
  /** Which thread of the pool (names it in errors). */
  index: number;
}

/** Main → thread: start one app's worker. */
export interface StartArgs {
  appId: string;
  run: number;
  spec: DestinationSpec;
  /** The saved checkpoint to start from. */
  checkpoint: number;
}

/** Thread → main: the worker moved its checkpoint (with its health snapshot). */
export interface ProgressArgs {
  appId: string;
  run: number;
  /** Set when the checkpoint moved (saved by the main thread). */
  checkpoint?: number;
  snapshot: DeliverySnapshot;
}

export interface RejectedArgs {
  appId: string;
  run: number;
  entry: RejectedEntry;
}
