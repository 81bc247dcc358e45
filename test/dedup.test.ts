// The retry filter of PutEvents: fingerprints separate ids that only differ in where a boundary
// falls or in case (endpoint ids are case-insensitive), and the window keeps the newest keys.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FingerprintTable, Dedup } from '../src/pinpoint/dedup.js';

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

test('a durable key is skipped, a failed append frees its keys, and the window drops its oldest half', () => {
  const d = new Dedup(4);
  const k = (i: number) => Dedup.key('a', 'e', String(i));
  const durable = (...keys: string[]) => {
    const a = d.begin();
    for (const key of keys) assert.equal(d.claim(key, a), 'write');
    d.settle(a, true);
  };
  durable(k(1));
  assert.equal(d.claim(k(1), d.begin()), 'skip', 'a retry of a durable event is not written again');
  const failed = d.begin();
  assert.equal(d.claim(k(7), failed), 'write');
  d.settle(failed, false);
  assert.equal(d.claim(k(7), d.begin()), 'write', 'the keys of a failed append are accepted again');
  const d2 = new Dedup(4);
  const a = d2.begin();
  assert.equal(d2.claim(k(1), a), 'write');
  assert.equal(d2.claim(k(1), a), 'skip', 'the same event twice in one append is written once');
  for (const i of [2, 3, 4, 5, 6]) durable(k(i));
  assert.ok(d.size <= 4);
  assert.equal(d.claim(k(6), d.begin()), 'skip', 'the newest keys are still remembered');
  assert.equal(d.claim(k(1), d.begin()), 'write', 'the oldest keys left the window');
  const off = new Dedup(0);
  assert.equal(off.claim(k(1), off.begin()), 'write');
  assert.equal(off.claim(k(1), off.begin()), 'write', 'a window of 0 turns deduplication off');
});

test('a key is pending on its append until that append settles: a retry waits, then skips or writes', async () => {
  const d = new Dedup(100);
  const key = Dedup.key('a', 'e', 'x');
  const original = d.begin();
  assert.equal(d.claim(key, original), 'write');
  assert.equal(d.inFlight, 1);
  const retry = d.claim(key, d.begin());
  assert.equal(retry, original, 'a retry while the original is in flight waits for the original');
  d.settle(original, false);
  assert.equal(await original.settled, false);
  assert.equal(d.inFlight, 0);
  const again = d.begin();
  assert.equal(d.claim(key, again), 'write', 'after the original failed the retry claims the key and writes');
  assert.equal(d.claim(key, d.begin()), again, 'a second retry now waits on the first retry');
  d.settle(again, true);
  assert.equal(await again.settled, true);
  assert.equal(d.claim(key, d.begin()), 'skip', 'durable now');
  assert.equal(d.size, 1, 'the failed append left the window; the retry that wrote it is in it once');
});

test('the window lives in typed arrays: 24 bytes a remembered event at the default window, no object per key', () => {
  const d = new Dedup(1_000_000);
  assert.ok(d.bytes <= 1_000_000 * 26, `${d.bytes} bytes for a window of a million events`);
  // Fills three times over: the oldest half goes, the newest are there, memory does not move.
  const before = d.bytes;
  const k = (i: number) => Dedup.key('app', 'ep', String(i));
  for (let i = 0; i < 3_000_000; i++) d.add(k(i));
  assert.equal(d.bytes, before);
  assert.ok(d.size <= 1_000_000 && d.size >= 500_000, `size ${d.size}`);
  assert.equal(d.claim(k(2_999_999), d.begin()), 'skip');
  assert.equal(d.claim(k(1), d.begin()), 'write');
});

test('fingerprint table: present and absent keys, deletes leave the probe chain intact, clear empties it', () => {
  const t = new FingerprintTable(1000);
  const keys = Array.from({ length: 1000 }, (_, i) => Dedup.key('a', 'e', `k${i}`));
  for (const key of keys) t.add(key);
  assert.equal(t.size, 1000);
  assert.ok(t.full);
  for (const key of keys) assert.ok(t.has(key));
  for (let i = 0; i < 1000; i++) assert.equal(t.has(Dedup.key('a', 'e', `other${i}`)), false);
  // Delete every other key: the rest stay findable past the tombstones.
  for (let i = 0; i < 1000; i += 2) assert.ok(t.delete(keys[i]));
  assert.equal(t.delete(keys[0]), false);
  for (let i = 0; i < 1000; i++) assert.equal(t.has(keys[i]), i % 2 === 1);
  assert.equal(t.size, 500);
  // Keys whose words would read as an empty or deleted slot are still keys.
  const edge = [String.fromCharCode(0, 0, 0, 0, 0, 0)];
  const e = new FingerprintTable(4);
  e.add(edge[0]);
  assert.ok(e.has(edge[0]));
  t.clear();
  assert.equal(t.size, 0);
  assert.equal(t.full, false);
  for (const key of keys) assert.equal(t.has(key), false);
});
