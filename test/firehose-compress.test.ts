// Firehose object compression round-trips, each read back by an independent reader: zlib for GZIP,
// fflate's unzip for ZIP, and decoders written here from the snappy framing spec
// (google/snappy framing_format.txt) and Hadoop's BlockCompressorStream layout.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { unzipSync } from 'fflate';
import { crc32c } from '@node-rs/crc32';
import { COMPRESSION_FORMATS, HADOOP_SNAPPY_BLOCK_BYTES, SNAPPY_FRAME_MAX_BYTES, compress } from '../src/firehose/compress.js';
import { BuildThread } from '../src/firehose/build.js';

const snappy = createRequire(import.meta.url)('snappyjs') as { uncompress(b: Buffer): Buffer };

/** Compressible JSON lines plus a random (incompressible) tail, `n` bytes in all. */
function sample(n: number): Buffer {
  const lines: string[] = [];
  let len = 0;
  for (let i = 0; len < n; i++) {
    const l = JSON.stringify({ event_type: i % 3 ? 'click' : 'view', n: i }) + '\n';
    lines.push(l);
    len += l.length;
  }
  const text = Buffer.from(lines.join('')).subarray(0, Math.floor(n * 0.7));
  return Buffer.concat([text, randomBytes(n - text.length)]);
}

/** Spec: masked = rotate-right-15 of the CRC-32C, plus 0xa282ead8. */
function specMask(data: Buffer): number {
  const c = crc32c(data) >>> 0;
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

function decodeFramed(buf: Buffer): { data: Buffer; chunkTypes: number[] } {
  assert.deepEqual(buf.subarray(0, 10), Buffer.from('ff060000734e61507059', 'hex'), 'stream identifier chunk');
  const out: Buffer[] = [];
  const chunkTypes: number[] = [];
  let off = 10;
  while (off < buf.length) {
    const type = buf[off];
    const len = buf.readUIntLE(off + 1, 3);
    const body = buf.subarray(off + 4, off + 4 + len);
    assert.equal(body.length, len, 'chunk truncated');
    off += 4 + len;
    chunkTypes.push(type);
    if (type === 0xff) continue;
    const crc = body.readUInt32LE(0);
    const data = type === 0x00 ? Buffer.from(snappy.uncompress(body.subarray(4))) : type === 0x01 ? Buffer.from(body.subarray(4)) : assert.fail(`unexpected chunk type ${type}`);
    assert.ok(data.length <= SNAPPY_FRAME_MAX_BYTES, 'chunk holds at most 64 KiB');
    assert.equal(crc, specMask(data), 'masked CRC-32C of the uncompressed data');
    out.push(data);
  }
  return { data: Buffer.concat(out), chunkTypes };
}

function decodeHadoop(buf: Buffer): { data: Buffer; blocks: number } {
  const out: Buffer[] = [];
  let off = 0;
  let blocks = 0;
  while (off < buf.length) {
    const raw = buf.readUInt32BE(off);
    off += 4;
    blocks++;
    let got = 0;
    while (got < raw) {
      const clen = buf.readUInt32BE(off);
      const piece = Buffer.from(snappy.uncompress(buf.subarray(off + 4, off + 4 + clen)));
      off += 4 + clen;
      got += piece.length;
      out.push(piece);
    }
    assert.equal(got, raw, 'block decompresses to its declared length');
  }
  return { data: Buffer.concat(out), blocks };
}

describe('compression formats', () => {
  const body = sample(300_000);

  it('UNCOMPRESSED is the body itself', () => {
    assert.equal(compress('UNCOMPRESSED', body), body);
  });

  it('GZIP decompresses with zlib', () => {
    const gz = compress('GZIP', body);
    assert.ok(gz.length < body.length);
    assert.deepEqual(gunzipSync(gz), body);
  });

  it('ZIP holds one named entry', () => {
    const z = compress('ZIP', body, { entryName: 'stream-1-2024-03-07-13-05-12-id', mtimeMs: Date.UTC(2024, 2, 7) });
    const files = unzipSync(z);
    assert.deepEqual(Object.keys(files), ['stream-1-2024-03-07-13-05-12-id']);
    assert.deepEqual(Buffer.from(files['stream-1-2024-03-07-13-05-12-id']), body);
    // Same input and time, same bytes: a retried batch rewrites an identical object.
    assert.deepEqual(compress('ZIP', body, { entryName: 'stream-1-2024-03-07-13-05-12-id', mtimeMs: Date.UTC(2024, 2, 7) }), z);
  });

  it('Snappy is the framing format: 64 KiB chunks, masked CRC-32C, raw chunks for random data', () => {
    assert.equal(crc32c(Buffer.from('123456789')) >>> 0, 0xe3069283, 'CRC-32C (Castagnoli) check value');
    const { data, chunkTypes } = decodeFramed(compress('Snappy', body));
    assert.deepEqual(data, body);
    assert.equal(chunkTypes.length, Math.ceil(body.length / SNAPPY_FRAME_MAX_BYTES));
    assert.ok(chunkTypes.includes(0x00), 'compressible chunks are compressed');
    assert.ok(chunkTypes.includes(0x01), 'random chunks are stored uncompressed');
  });

  it('HADOOP_SNAPPY is Hadoop block format: BE lengths, 256 KiB blocks', () => {
    const { data, blocks } = decodeHadoop(compress('HADOOP_SNAPPY', body));
    assert.deepEqual(data, body);
    assert.equal(blocks, Math.ceil(body.length / HADOOP_SNAPPY_BLOCK_BYTES));
    assert.equal(HADOOP_SNAPPY_BLOCK_BYTES, 262_144);
  });

  it('every format round-trips an empty body and a one-byte body', () => {
    for (const b of [Buffer.alloc(0), Buffer.from('x')]) {
      for (const f of COMPRESSION_FORMATS) {
        const c = compress(f, b, { entryName: 'e' });
        const back =
          f === 'GZIP' ? gunzipSync(c) : f === 'ZIP' ? Buffer.from(unzipSync(c).e) : f === 'Snappy' ? decodeFramed(c).data : f === 'HADOOP_SNAPPY' ? decodeHadoop(c).data : c;
        assert.deepEqual(back, b, `${f} of ${b.length} bytes`);
      }
    }
  });
});

describe('the build thread (compression off the request thread)', () => {
  it('gives the same bytes as compressing in place, for every format, from a worker thread; a killed thread is started again', async () => {
    const b = new BuildThread();
    try {
      // A pooled (small) buffer and a large one: both are sent whole, the caller's copy left intact.
      const bodies = [Buffer.from('{"a":1}\n{"a":2}\n'), Buffer.concat([randomBytes(100_000), Buffer.alloc(300_000, 'x')])];
      for (const body of bodies) {
        const copy = Buffer.from(body);
        for (const f of COMPRESSION_FORMATS) {
          const opts = { entryName: 'data', mtimeMs: Date.UTC(2024, 0, 1) };
          assert.deepEqual(await b.compress(f, body, opts), compress(f, copy, opts), `${f} of ${body.length} bytes`);
        }
      }
      const first = b.threadId;
      assert.ok(first > 0, 'ran in a worker thread');
      await b.crash();
      assert.deepEqual(gunzipSync(await b.compress('GZIP', Buffer.from('after the crash'))).toString(), 'after the crash');
      assert.notEqual(b.threadId, first, 'a new thread');
    } finally {
      await b.close();
    }
  });
});
