// GetRecords and SubscribeToShard answers write their JSON body themselves (withRecordsJson in
// src/kinesis/records.ts): the bytes must be exactly the generic encoder's text for the same answer
// (partition keys needing escapes or outside ASCII, empty and odd-length data, encrypted records,
// each kind of trailing member), and the CBOR encoding must not change.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decode as cborDecode } from 'cborg';
import { blobsToBase64, encodeBody } from '../src/http/awsjson.js';
import { OutRecord, withRecordsJson } from '../src/kinesis/records.js';

const keys = ['k', 'quote"and\\backslash', 'tab\tnewline\ncontrol\u0001', 'é€😀', 'lone \ud800 surrogate', ''];
const sizes = [0, 1, 2, 3, 4, 200, 1024, 1025];

function records(n: number): OutRecord[] {
  return Array.from(
    { length: n },
    (_, i) =>
      new OutRecord(
        String(49680904279829813751214886887669096767668559621159649330n + BigInt(i)),
        new Date(1_765_000_000_000 + i * 7),
        Buffer.alloc(sizes[i % sizes.length], i),
        keys[i % keys.length],
        i % 3 === 0 ? 'KMS' : undefined,
      ),
  );
}

test('records answers written as bytes equal the generic JSON encoding, for every trailing member', () => {
  const answers = [
    () => ({ Records: records(40), NextShardIterator: 'AAAA+/==', MillisBehindLatest: 12 }),
    () => ({ Records: records(13), ChildShards: [{ ShardId: 'shardId-000000000001', ParentShards: ['shardId-000000000000'], HashKeyRange: { StartingHashKey: '0', EndingHashKey: '9' } }], MillisBehindLatest: 0 }),
    () => ({ Records: [] as OutRecord[], ContinuationSequenceNumber: '123', MillisBehindLatest: 0 }),
    () => ({ Records: records(1) }),
  ];
  for (const make of answers) {
    const generic = encodeBody(make(), 'json', 200).body as string;
    const bytes = encodeBody(withRecordsJson(make()), 'json', 200).body;
    assert.ok(Buffer.isBuffer(bytes), 'written as bytes');
    assert.equal(bytes.toString('utf8'), generic);
    assert.deepEqual(JSON.parse(bytes.toString('utf8')), JSON.parse(JSON.stringify(blobsToBase64(make()))));
    const cbor = encodeBody(withRecordsJson(make()), 'cbor', 200).body as Buffer;
    assert.ok(cbor.equals(encodeBody(make(), 'cbor', 200).body as Buffer), 'CBOR unchanged');
    const decoded = cborDecode(cbor) as { Records: Array<{ Data: Uint8Array }> };
    assert.equal(decoded.Records.length, make().Records.length);
  }
});
