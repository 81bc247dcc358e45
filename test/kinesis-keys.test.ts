// Sequence numbers and hash keys computed on the hot path (src/kinesis/keys.ts) against their
// definitions written out digit by digit: the version-2 layout and MD5 of the partition key.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { decodeSequenceNumber, hashKeyHex, sequenceNumber } from '../src/kinesis/keys.js';

const hex = (n: number, width: number) => Math.floor(n).toString(16).padStart(width, '0').slice(-width);

/** The version-2 layout spelled out: '2', created s, index nibble, counter, '00', record s, index, '2'. */
function reference(shardCreatedMs: number, shardIndex: number, counter: number, recordMs: number): string {
  const h = '2' + hex(shardCreatedMs / 1000, 9) + hex(shardIndex % 16, 1) + hex(counter, 16) + '00' + hex(recordMs / 1000, 9) + hex(shardIndex, 8) + '2';
  return BigInt('0x' + h).toString();
}

describe('kinesis keys', () => {
  test('sequence numbers equal the layout written out, across shards, seconds and counters (the memo never leaks between them)', () => {
    const created = [0, 1_700_000_000_123, 1_765_000_000_999];
    const indexes = [0, 1, 15, 16, 4095, 2_147_483_647];
    const counters = [0, 1, 2, 499, 500, 65_535, 2 ** 32 + 7, 2 ** 40 - 1, Number.MAX_SAFE_INTEGER];
    const recordMs = [1_765_000_000_000, 1_765_000_000_999, 1_765_000_001_000, 1_800_000_000_500];
    let n = 0;
    // Interleaved so consecutive calls change one input at a time and several at once.
    for (const c of created)
      for (const r of recordMs)
        for (const i of indexes)
          for (const k of counters) {
            const got = sequenceNumber(c, i, k, r);
            assert.equal(got, reference(c, i, k, r), `created ${c} shard ${i} counter ${k} record ${r}`);
            const d = decodeSequenceNumber(got);
            assert.deepEqual(d, { shardIndex: i, shardCreatedSec: Math.floor(c / 1000), counter: k, recordSec: Math.floor(r / 1000) });
            n++;
          }
    // Alternating between two shards whose numbers differ only in the memoized part.
    for (let k = 0; k < 100; k++) {
      assert.equal(sequenceNumber(created[1], k % 2, k, recordMs[0]), reference(created[1], k % 2, k, recordMs[0]));
      n++;
    }
    assert.equal(n, created.length * recordMs.length * indexes.length * counters.length + 100);
  });

  test('hash keys are the MD5 of the partition key as UTF-8, in hex', () => {
    for (const key of ['a', 'partition-key', 'ÿ€😀', 'x'.repeat(256), '\u0000']) {
      assert.equal(hashKeyHex(key), createHash('md5').update(key, 'utf8').digest('hex'));
    }
  });
});
