// Object compression for Firehose's S3 writers (CompressionFormat): GZIP (node:zlib), ZIP (one
// entry, fflate), Snappy in the snappy *framing* format (what Firehose writes for `Snappy`, readable
// by `snzip`/python-snappy stream decoders) and HADOOP_SNAPPY in Hadoop's block format (readable by
// Hadoop's SnappyCodec, Hive, Spark). Block compression itself comes from snappyjs.

import { gzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import { zipSync } from 'fflate';
import { crc32c } from '@node-rs/crc32';

// snappyjs ships no type declarations; this is the slice of it we use.
const snappy = createRequire(import.meta.url)('snappyjs') as { compress(input: Buffer): Buffer };

export const COMPRESSION_FORMATS = ['UNCOMPRESSED', 'GZIP', 'ZIP', 'Snappy', 'HADOOP_SNAPPY'] as const;
export type CompressionFormat = (typeof COMPRESSION_FORMATS)[number];

/** Snappy framing format: at most this many uncompressed bytes per chunk (framing_format.txt §4.2). */
export const SNAPPY_FRAME_MAX_BYTES = 65_536;
/** Hadoop's default `io.compression.codec.snappy.buffersize`: uncompressed bytes per block. */
export const HADOOP_SNAPPY_BLOCK_BYTES = 256 * 1024;

const STREAM_IDENTIFIER = Buffer.from([0xff, 0x06, 0x00, 0x00, 0x73, 0x4e, 0x61, 0x50, 0x70, 0x59]); // "sNaPpY"
const CHUNK_COMPRESSED = 0x00;
const CHUNK_UNCOMPRESSED = 0x01;

/** The framing format's masked CRC-32C (so a CRC of data that embeds CRCs stays well distributed). */
export function maskedCrc32c(data: Uint8Array): number {
  const crc = crc32c(data) >>> 0;
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

export function snappyFramed(body: Buffer): Buffer {
  const out: Buffer[] = [STREAM_IDENTIFIER];
  for (let off = 0; off < body.length; off += SNAPPY_FRAME_MAX_BYTES) {
    const block = body.subarray(off, off + SNAPPY_FRAME_MAX_BYTES);
    const packed = Buffer.from(snappy.compress(block));
    // Incompressible data is stored as is, as the format allows, so chunks never grow.
    const [type, data] = packed.length < block.length ? [CHUNK_COMPRESSED, packed] : [CHUNK_UNCOMPRESSED, block];
    const header = Buffer.alloc(8);
    header[0] = type;
    header.writeUIntLE(data.length + 4, 1, 3);
    header.writeUInt32LE(maskedCrc32c(block), 4);
    out.push(header, data);
  }
  return Buffer.concat(out);
}

export function hadoopSnappy(body: Buffer): Buffer {
  const out: Buffer[] = [];
  for (let off = 0; off < body.length; off += HADOOP_SNAPPY_BLOCK_BYTES) {
    const block = body.subarray(off, off + HADOOP_SNAPPY_BLOCK_BYTES);
    const packed = Buffer.from(snappy.compress(block));
    const header = Buffer.alloc(8);
    header.writeUInt32BE(block.length, 0);
    header.writeUInt32BE(packed.length, 4);
    out.push(header, packed);
  }
  return Buffer.concat(out);
}

export interface CompressOptions {
  /** ZIP only: the single entry's name. */
  entryName?: string;
  /** ZIP only: the entry's modification time, fixed so a retried batch yields the same bytes. */
  mtimeMs?: number;
}

export function compress(format: CompressionFormat, body: Buffer, opts: CompressOptions = {}): Buffer {
  switch (format) {
    case 'UNCOMPRESSED':
      return body;
    case 'GZIP':
      return gzipSync(body);
    case 'ZIP':
      return Buffer.from(zipSync({ [opts.entryName ?? 'data']: [body, { mtime: opts.mtimeMs ?? Date.UTC(1980, 0, 1) }] }));
    case 'Snappy':
      return snappyFramed(body);
    case 'HADOOP_SNAPPY':
      return hadoopSnappy(body);
  }
}

export function isCompressionFormat(v: unknown): v is CompressionFormat {
  return typeof v === 'string' && (COMPRESSION_FORMATS as readonly string[]).includes(v);
}
