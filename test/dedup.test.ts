// The retry filter of PutEvents: fingerprints separate ids that only differ in where a boundary
// falls or in case (endpoint ids are case-insensitive), and the window keeps the newest keys.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Dedup } from '../src/pinpoint/dedup.js';

test('keys: the same triple matches, endpoint case is ignored, boundaries and event-id case are not', () => {
  assert.equal(Dedup.key('app', 'Device-1', 'e1'), Dedup.key('app', 'device-1', 'e1'));
  assert.notEqual(Dedup.key('app', 'device-1', 'E1'), Dedup.key('app', 'device-1', 'e1'));
  assert.notEqual(Dedup.key('ab', 'c', 'x'), Dedup.key('a', 'bc', 'x'));
  assert.notEqual(Dedup.key('app', 'd', 'e1'), Dedup.key('app2', 'd', 'e1'));
  assert.equal(Dedup.keyIn(Dedup.scope('app', 'D'), 'e'), Dedup.key('app', 'd', 'e'));
  const seen = new Set<string>();
  for (let i = 0; i < 100_000; i++) seen.add(Dedup.key('app', 'device', String(i)));
  assert.equal(seen.size, 100_000, 'no fingerprint collision among 100,000 sequential ids');
});

test('claim says false for a retry, release forgets, and the window drops its oldest half', () => {
  const d = new Dedup(4);
  const k = (i: number) => Dedup.key('a', 'e', String(i));
  assert.equal(d.claim(k(1)), true);
  assert.equal(d.claim(k(1)), false);
  d.release([k(1)]);
  assert.equal(d.claim(k(1)), true, 'released keys are accepted again');
  for (const i of [2, 3, 4, 5, 6]) assert.equal(d.claim(k(i)), true);
  assert.ok(d.size <= 4);
  assert.equal(d.claim(k(6)), false, 'the newest keys are still remembered');
  assert.equal(d.claim(k(1)), true, 'the oldest keys left the window');
  const off = new Dedup(0);
  assert.equal(off.claim(k(1)), true);
  assert.equal(off.claim(k(1)), true, 'a window of 0 turns deduplication off');
});
