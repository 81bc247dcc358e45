// Kinesis over CBOR (`application/x-amz-cbor-1.1`), as the Java SDKs and the KCL speak it by
// default: requests signed exactly as the SDK signs them, bodies encoded with cborg, answers
// decoded from CBOR. Blobs travel as raw byte strings; timestamps as CBOR tag 1.

import { decode, encode, Tagged } from 'cborg';
import { kinesisPost } from './signed.js';

export const CBOR_CONTENT_TYPE = 'application/x-amz-cbor-1.1';

export interface CborAnswer {
  status: number;
  contentType: string | null;
  /** Raw response bytes (empty for operations without output). */
  raw: Buffer;
  /** The decoded body; undefined when it is empty. */
  body: any;
}

/** Tag 1 with epoch seconds (the CBOR spec), or with epoch milliseconds (what the Java SDKs write). */
export function cborTimestamp(ms: number, unit: 'seconds' | 'millis' = 'seconds'): Tagged {
  return new Tagged(1, unit === 'seconds' ? ms / 1000 : ms);
}

export async function cborCall(
  baseUrl: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
  operation: string,
  input: unknown,
): Promise<CborAnswer> {
  const res = await kinesisPost(baseUrl, credentials, operation, CBOR_CONTENT_TYPE, Buffer.from(encode(input)));
  const raw = Buffer.from(await res.arrayBuffer());
  return { status: res.status, contentType: res.headers.get('content-type'), raw, body: raw.length > 0 ? decode(raw) : undefined };
}
