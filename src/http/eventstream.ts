// AWS event-stream framing (`application/vnd.amazon.eventstream`), the body format of streaming
// operations such as Kinesis SubscribeToShard. A message is: total length (u32 BE), headers length
// (u32 BE), CRC32 of those 8 bytes, headers, payload, CRC32 of everything before it. Checksums are
// plain CRC32 (the zlib/IEEE polynomial), not CRC32C. Only string-valued headers (type 7) are
// written, which is all the protocol messages need; the decoder (for tests and diagnostics) reads
// the same subset.

import { crc32 } from '@node-rs/crc32';

export const EVENT_STREAM_CONTENT_TYPE = 'application/vnd.amazon.eventstream';

const PRELUDE_BYTES = 12; // two lengths + prelude CRC
const TRAILER_BYTES = 4;
const HEADER_TYPE_STRING = 7;
/** The SDKs refuse header values longer than this. */
const MAX_HEADER_VALUE_BYTES = 32767;

export type EventHeaders = Record<string, string>;

export interface EventMessage {
  headers: EventHeaders;
  payload: Buffer;
}

export function encodeMessage(headers: EventHeaders, payload: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(headers)) {
    const n = Buffer.from(name, 'utf8');
    const v = Buffer.from(value, 'utf8');
    if (n.length > 255) throw new RangeError(`event-stream header name too long: ${name}`);
    if (v.length > MAX_HEADER_VALUE_BYTES) throw new RangeError(`event-stream header ${name} value too long`);
    const h = Buffer.allocUnsafe(1 + n.length + 3);
    h.writeUInt8(n.length, 0);
    n.copy(h, 1);
    h.writeUInt8(HEADER_TYPE_STRING, 1 + n.length);
    h.writeUInt16BE(v.length, 2 + n.length);
    parts.push(h, v);
  }
  const headerBytes = parts.reduce((sum, p) => sum + p.length, 0);
  const total = PRELUDE_BYTES + headerBytes + payload.length + TRAILER_BYTES;
  const out = Buffer.allocUnsafe(total);
  out.writeUInt32BE(total, 0);
  out.writeUInt32BE(headerBytes, 4);
  out.writeUInt32BE(crc32(out.subarray(0, 8)), 8);
  let pos = PRELUDE_BYTES;
  for (const p of parts) pos += p.copy(out, pos);
  payload.copy(out, pos);
  out.writeUInt32BE(crc32(out.subarray(0, total - TRAILER_BYTES)), total - TRAILER_BYTES);
  return out;
}

/** An `event` message: `:event-type` names the member of the event-stream union. */
export function eventMessage(eventType: string, payload: Buffer, contentType: string): Buffer {
  return encodeMessage({ ':message-type': 'event', ':event-type': eventType, ':content-type': contentType }, payload);
}

/** A modeled error inside the stream: the SDK throws it from the consumer's iteration. */
export function exceptionMessage(exceptionType: string, payload: Buffer, contentType: string): Buffer {
  return encodeMessage({ ':message-type': 'exception', ':exception-type': exceptionType, ':content-type': contentType }, payload);
}

/** Splits a buffer holding whole messages, verifying both checksums. */
export function decodeMessages(buf: Buffer): EventMessage[] {
  const out: EventMessage[] = [];
  let at = 0;
  while (at < buf.length) {
    if (buf.length - at < PRELUDE_BYTES + TRAILER_BYTES) throw new Error('event-stream: truncated message');
    const total = buf.readUInt32BE(at);
    const headerBytes = buf.readUInt32BE(at + 4);
    if (total < PRELUDE_BYTES + headerBytes + TRAILER_BYTES || at + total > buf.length) throw new Error('event-stream: bad lengths');
    if (crc32(buf.subarray(at, at + 8)) !== buf.readUInt32BE(at + 8)) throw new Error('event-stream: prelude checksum mismatch');
    if (crc32(buf.subarray(at, at + total - TRAILER_BYTES)) !== buf.readUInt32BE(at + total - TRAILER_BYTES)) {
      throw new Error('event-stream: message checksum mismatch');
    }
    const headers: EventHeaders = {};
    let p = at + PRELUDE_BYTES;
    const end = p + headerBytes;
    while (p < end) {
      const nameLen = buf.readUInt8(p);
      const name = buf.toString('utf8', p + 1, p + 1 + nameLen);
      p += 1 + nameLen;
      const type = buf.readUInt8(p);
      if (type !== HEADER_TYPE_STRING) throw new Error(`event-stream: header ${name} has unsupported type ${type}`);
      const len = buf.readUInt16BE(p + 1);
      headers[name] = buf.toString('utf8', p + 3, p + 3 + len);
      p += 3 + len;
    }
    out.push({ headers, payload: Buffer.from(buf.subarray(end, at + total - TRAILER_BYTES)) });
    at += total;
  }
  return out;
}
