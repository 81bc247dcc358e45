// How an accepted Firehose record sits in its delivery stream's log: one payload per record,
// [version u8][arrival ms f64][record id: 16 bytes][data]. Compact (25 bytes of overhead), and
// enough to rebuild the FirehoseRecord after a restart: data, arrival time and the RecordId the
// producer was given.

import { randomBytes } from 'node:crypto';
import type { FirehoseRecord } from './destination.js';

const VERSION = 1;
const ID_BYTES = 16;
const HEADER = 1 + 8 + ID_BYTES;

/** A new opaque RecordId (base64url of 16 random bytes) and its bytes. */
export function newRecordId(): { id: string; bytes: Buffer } {
  const bytes = randomBytes(ID_BYTES);
  return { id: bytes.toString('base64url'), bytes };
}

export function encodeRecord(data: Buffer, arrivalMs: number, idBytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEADER + data.length);
  out.writeUInt8(VERSION, 0);
  out.writeDoubleBE(arrivalMs, 1);
  idBytes.copy(out, 9, 0, ID_BYTES);
  data.copy(out, HEADER);
  return out;
}

/** Throws on a payload this code did not write (the log's CRC already rules out corruption). */
export function decodeRecord(payload: Buffer): FirehoseRecord {
  if (payload.length < HEADER || payload[0] !== VERSION) throw new Error(`not a Firehose log record (version ${payload[0]}, ${payload.length} bytes)`);
  return {
    arrivalMs: payload.readDoubleBE(1),
    recordId: payload.subarray(9, HEADER).toString('base64url'),
    data: payload.subarray(HEADER),
  };
}
