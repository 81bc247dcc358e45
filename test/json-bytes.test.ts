// parseJsonBytes: the same values and the same errors as JSON.parse(bytes.toString('utf8')), at
// every size around V8's large-object and Node's external-string thresholds, ASCII or not; and the
// padded path is the one a large ASCII body takes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { EXTERNAL_STRING_MIN_BYTES, LARGE_STRING_BYTES, jsonBytesStats, parseJsonBytes } from '../src/http/json-bytes.js';

/** A JSON body of exactly `size` bytes: records of base64 data (ASCII), or with `tail` text in one. */
function body(size: number, tail = ''): Buffer {
  const head = Buffer.from(`{"DeliveryStreamName":"s","Note":"${tail}","Records":[`);
  const end = Buffer.from(']}');
  const parts: Buffer[] = [head];
  let n = head.length + end.length;
  for (let i = 0; ; i++) {
    const rec = Buffer.from(`${i ? ',' : ''}{"Data":"${randomBytes(96).toString('base64')}"}`);
    if (n + rec.length > size) break;
    parts.push(rec);
    n += rec.length;
  }
  // Fill to the exact size with spaces inside the array (valid JSON whitespace).
  parts.push(Buffer.alloc(size - n, 0x20), end);
  const out = Buffer.concat(parts);
  assert.equal(out.length, size);
  return out;
}

const SIZES = [1024, LARGE_STRING_BYTES - 1, LARGE_STRING_BYTES, 700 * 1024, EXTERNAL_STRING_MIN_BYTES - 1, EXTERNAL_STRING_MIN_BYTES, 2 * 1024 * 1024];

test('the same values as JSON.parse at every size around the thresholds, ASCII and UTF-8', () => {
  for (const size of SIZES) {
    for (const tail of ['', 'é ✓ 😀']) {
      const b = body(size, tail);
      assert.deepEqual(parseJsonBytes(b), JSON.parse(b.toString('utf8')), `${size} bytes${tail ? ', UTF-8' : ''}`);
    }
  }
});

test('large ASCII bodies below the external-string size take the padded path; others do not', () => {
  const padded = (b: Buffer) => {
    const before = jsonBytesStats.padded;
    parseJsonBytes(b);
    return jsonBytesStats.padded - before;
  };
  assert.equal(padded(body(LARGE_STRING_BYTES)), 1);
  assert.equal(padded(body(700 * 1024)), 1);
  assert.equal(padded(body(EXTERNAL_STRING_MIN_BYTES - 1)), 1);
  assert.equal(padded(body(LARGE_STRING_BYTES - 1)), 0, 'a regular heap string already');
  assert.equal(padded(body(EXTERNAL_STRING_MIN_BYTES)), 0, 'external already');
  assert.equal(padded(body(700 * 1024, 'é')), 0, 'not ASCII');
});

test('the same errors as JSON.parse, with the plain text (no padding in the message)', () => {
  const cases = [
    Buffer.concat([body(300 * 1024).subarray(0, 300 * 1024 - 2), Buffer.from('}x')]),
    Buffer.concat([body(300 * 1024), Buffer.from(' x')]),
    Buffer.from('{"a":' + ' '.repeat(200 * 1024)),
  ];
  for (const b of cases) {
    let want = '';
    try {
      JSON.parse(b.toString('utf8'));
    } catch (e) {
      want = (e as Error).message;
    }
    assert.ok(want, 'the case is invalid JSON');
    assert.throws(() => parseJsonBytes(b), (e: Error) => e instanceof SyntaxError && e.message === want);
  }
  // A body after a padded one is not affected by the scratch buffer's earlier content.
  const small = body(LARGE_STRING_BYTES + 10);
  assert.deepEqual(parseJsonBytes(body(900 * 1024)) !== undefined && parseJsonBytes(small), JSON.parse(small.toString('utf8')));
});
