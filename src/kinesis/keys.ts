// Hash keys, sequence numbers and shard ids: the numbers Kinesis clients see and compare.
// Hash keys are 128-bit: MD5 of the partition key, big-endian. Internally they are handled as
// 32-digit lower-case hex strings, whose string order equals numeric order, so routing a record
// needs no BigInt. Sequence numbers use AWS's 56-digit "version 2" layout (§2.8) with the shard's
// log offset as the counter, so a sequence number decodes straight to a log position.

import { hash } from 'node:crypto';

export const MAX_HASH_KEY = (1n << 128n) - 1n;

/** One-shot crypto.hash: a third of createHash's cost per record, which PutRecords pays per entry. */
export function hashKeyHex(partitionKey: string): string {
  return hash('md5', partitionKey, 'hex');
}

export const toHex = (n: bigint) => n.toString(16).padStart(32, '0');

/** Parses a decimal hash key; undefined when it is not an integer in [0, 2^128-1]. */
export function parseHashKey(s: string): bigint | undefined {
  if (!/^(0|[1-9]\d{0,38})$/.test(s)) return undefined;
  const n = BigInt(s);
  return n <= MAX_HASH_KEY ? n : undefined;
}

/** Even split of the key space into n ranges, the last one ending at 2^128-1 (as AWS splits). */
export function evenRanges(n: number): Array<{ start: bigint; end: bigint }> {
  const width = (1n << 128n) / BigInt(n);
  return Array.from({ length: n }, (_, i) => ({
    start: BigInt(i) * width,
    end: i === n - 1 ? MAX_HASH_KEY : BigInt(i + 1) * width - 1n,
  }));
}

export const shardIdOf = (index: number) => 'shardId-' + String(index).padStart(12, '0');

/** The largest shard index a shard id may name (AWS's and kinesalite's 2^31 - 1). */
export const MAX_SHARD_INDEX = 2_147_483_647;

/**
 * A shard id in AWS's lenient forms: the digits after the first `-` (any prefix, or none:
 * `shardId-000000000005`, `shardId-5`, `shard-5`, `-5`) or the digits alone (`5`), as AWS answers
 * them (recorded in kinesalite's GetShardIterator tests). Undefined when it names no index; the
 * canonical spelling of a parsed id is `shardIdOf(index)`.
 */
export function parseShardId(id: string): number | undefined {
  const m = /^(?:[^-]*-)?(\d+)$/.exec(id);
  if (!m || m[1].length > 20) return undefined;
  const n = Number(m[1]);
  return n <= MAX_SHARD_INDEX ? n : undefined;
}

const hex = (n: number, width: number) => Math.floor(n).toString(16).padStart(width, '0').slice(-width);

/**
 * Version-2 layout: '2', shard creation (9 hex, epoch s), shard index nibble, counter (16 hex),
 * '00', record time (9 hex, epoch s), shard index (8 hex), '2'. Counter 0 is the shard's
 * StartingSequenceNumber; the record at log offset o has counter o + 1.
 */
export function sequenceNumber(shardCreatedMs: number, shardIndex: number, counter: number, recordMs: number): string {
  // The counter's 16 hex digits end COUNTER_SHIFT bits above the last digit, so the number is the
  // one with counter 0 plus counter << COUNTER_SHIFT. Records of one PutRecords batch or one
  // GetRecords page share shard and arrival second, so the counter-0 number is kept for the last
  // triple asked: one BigInt add instead of building and parsing 47 hex digits per record.
  const createdSec = Math.floor(shardCreatedMs / 1000);
  const recordSec = Math.floor(recordMs / 1000);
  const m = seqMemo;
  if (m.createdSec !== createdSec || m.shardIndex !== shardIndex || m.recordSec !== recordSec) {
    m.createdSec = createdSec;
    m.shardIndex = shardIndex;
    m.recordSec = recordSec;
    m.base = BigInt('0x2' + hex(createdSec, 9) + hex(shardIndex % 16, 1) + '0'.repeat(16) + '00' + hex(recordSec, 9) + hex(shardIndex, 8) + '2');
  }
  return (m.base + (BigInt(counter) << COUNTER_SHIFT)).toString();
}

/** Bits below the counter's last hex digit: '00', 9 digits of record time, 8 of shard index, '2'. */
const COUNTER_SHIFT = BigInt((2 + 9 + 8 + 1) * 4);
const seqMemo = { createdSec: NaN, shardIndex: NaN, recordSec: NaN, base: 0n };

export interface DecodedSequence {
  shardIndex: number;
  /** Creation time of the shard it came from, in whole epoch seconds. */
  shardCreatedSec: number;
  counter: number;
  /** The record's arrival time, in whole epoch seconds. */
  recordSec: number;
}

export function decodeSequenceNumber(s: string): DecodedSequence | undefined {
  if (!/^(0|[1-9]\d{0,128})$/.test(s)) return undefined;
  const h = BigInt(s).toString(16);
  if (h.length !== 47 || h[0] !== '2' || h[46] !== '2') return undefined;
  const counter = Number.parseInt(h.slice(11, 27), 16);
  const shardIndex = Number.parseInt(h.slice(38, 46), 16);
  if (!Number.isSafeInteger(counter)) return undefined;
  return { shardIndex, shardCreatedSec: Number.parseInt(h.slice(1, 10), 16), counter, recordSec: Number.parseInt(h.slice(29, 38), 16) };
}
