// How an accepted Firehose record sits in its delivery stream's log: one payload per record,
// [version u8][arrival ms f64][record id: 16 bytes][data]. Compact (25 bytes of overhead), and
// enough to rebuild the FirehoseRecord after a restart: data, arrival time and the RecordId the
// producer was given.

import { randomBytes } from 'node:crypto';
import type { FirehoseRecord } from './destination.js';

const VERSION = 1;
const ID_BYTES = 16;
const HEADER = 1 + 8 + ID_BYTES;

/**
 * Opaque, unique RecordIds for `n` records accepted together: 8 random bytes drawn once per call
 * and the record's index — drawing 16 random bytes per record cost ~8% of a PutRecordBatch's CPU.
 */
export function newRecordIds(n: number): Buffer[] {
  const prefix = randomBytes(8);
  const ids: Buffer[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const b = Buffer.allocUnsafe(ID_BYTES);
    prefix.copy(b, 0);
    b.writeBigUInt64BE(BigInt(i), 8);
    ids[i] = b;
  }
  return ids;
}

export const recordIdText = (bytes: Buffer): string => bytes.toString('base64url');

export function encodeRecord(data: Buffer, arrivalMs: number, idBytes: Buffer): Buffer {
  return encodeRecords([data], arrivalMs, [idBytes])[0];
}

/**
 * Records accepted together, as views into one buffer: a PutRecordBatch of 500 makes one
 * allocation instead of 500 (the log copies them into its own batch anyway).
 */
export function encodeRecords(data: Buffer[], arrivalMs: number, ids: Buffer[]): Buffer[] {
  let total = 0;
  for (const d of data) total += HEADER + d.length;
  const buf = Buffer.allocUnsafe(total);
  const out = new Array<Buffer>(data.length);
  let pos = 0;
  for (let i = 0; i < data.length; i++) {
    const start = pos;
    buf.writeUInt8(VERSION, pos);
    buf.writeDoubleBE(arrivalMs, pos + 1);
    ids[i].copy(buf, pos + 9, 0, ID_BYTES);
    pos += HEADER;
    pos += data[i].copy(buf, pos);
    out[i] = buf.subarray(start, pos);
  }
  return out;
}

/** Throws on a payload this code did not write (the log's CRC already rules out corruption). */
export function decodeRecord(payload: Buffer): FirehoseRecord {
  if (payload.length < HEADER || payload[0] !== VERSION) throw new Error(`not a Firehose log record (version ${payload[0]}, ${payload.length} bytes)`);
  return {
    arrivalMs: payload.readDoubleBE(1),
    recordId: recordIdText(payload.subarray(9, HEADER)),
    data: payload.subarray(HEADER),
  };
}
