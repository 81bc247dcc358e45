// JSON.parse of a request body held in bytes, without the slow middle size. V8 keeps a string
// larger than its largest regular heap object (128 KiB) in its large-object space, one mapping per
// string, so decoding a body of 128 KiB to ~1 MiB maps fresh memory and faults in every page of it,
// then unmaps it at the next GC: measured ~280 MB/s against ~15 GB/s below 128 KiB, and 26% of the
// request thread in `bench firehose` (PutRecordBatch of 500 × 1 KiB is a ~700 KiB body). Node hands
// back one-byte strings of EXTERNAL_STRING_MIN_BYTES or more as external strings (malloc'd outside
// the V8 heap, a memcpy), which avoids that. So an ASCII body in that middle range (base64 data,
// the usual SDK body) is copied into a scratch buffer of that size padded with spaces — JSON allows
// trailing whitespace — and decoded as Latin-1, which for ASCII is the same text. JSON.parse copies
// what it returns, so nothing keeps the padded string alive. A body with other bytes, or a body that
// is not valid JSON, goes the plain way (so the error's text is the plain one too).

import { isAscii } from 'node:buffer';

/** V8's largest regular heap object: strings at least this long go to the large-object space. */
export const LARGE_STRING_BYTES = 128 * 1024;
/** Node's EXTERN_APEX (src/string_bytes.cc): one-byte strings this long or longer are external. */
export const EXTERNAL_STRING_MIN_BYTES = 0xfbee9;

let scratch: Buffer | undefined;

/** Bodies parsed through the padded scratch buffer (this thread), for tests and profiles. */
export const jsonBytesStats = { padded: 0 };

/** JSON.parse(bytes.toString('utf8')), with the same result and the same errors. */
export function parseJsonBytes(bytes: Buffer): unknown {
  const n = bytes.length;
  if (n < LARGE_STRING_BYTES || n >= EXTERNAL_STRING_MIN_BYTES || !isAscii(bytes)) return JSON.parse(bytes.toString('utf8'));
  scratch ??= Buffer.allocUnsafeSlow(EXTERNAL_STRING_MIN_BYTES);
  bytes.copy(scratch, 0);
  scratch.fill(0x20, n);
  let v: unknown;
  try {
    v = JSON.parse(scratch.toString('latin1'));
  } catch {
    // The plain way, for the plain error message (the padded text would show in it).
    return JSON.parse(bytes.toString('utf8'));
  }
  jsonBytesStats.padded++;
  return v;
}
