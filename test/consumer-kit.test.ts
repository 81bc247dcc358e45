// The consumer kit (src/consumer/kit.ts) on its own: the checkpoint only moves forward and a
// failed save is reported, not fatal; a failing step is retried after a jittered backoff that
// grows until a step succeeds; stop() ends a backoff, a log wait and an awaited call at once; a
// closed log that answers at once does not make the loop spin; lag is 0 exactly when nothing is
// behind, exact with a record in hand and an upper bound without. An injected clock and injected
// sleeps make every assertion exact.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../src/clock.js';
import { MemoryCheckpoint } from '../src/consumer/checkpoint.js';
import { computeLag, ConsumerKit } from '../src/consumer/kit.js';

test('advance moves the checkpoint forward only and saves each move; a failed save is reported, delivery goes on', () => {
  const cp = new MemoryCheckpoint(5);
  const kit = new ConsumerKit({ checkpoint: cp, clock: new ManualClock(1000) });
  assert.equal(kit.cursor, 5);
  kit.advance(3);
  assert.equal(cp.offset, 5);
  kit.advance(9);
  assert.equal(cp.offset, 9);
  const failing = new ConsumerKit({ checkpoint: { load: () => 0, save: () => { throw new Error('disk I/O error'); } }, clock: new ManualClock(7) });
  failing.advance(4);
  assert.equal(failing.cursor, 4);
  assert.deepEqual(failing.lastError, { message: 'checkpoint save failed: disk I/O error', at: 7 });
});

test('a failing step is retried after backoff delays within the growing jitter cap; success resets them', async () => {
  const delays: number[] = [];
  const kit = new ConsumerKit({
    checkpoint: new MemoryCheckpoint(),
    clock: new ManualClock(0),
    backoff: { baseMs: 100, maxMs: 1000 },
    random: () => 0.999,
    sleep: async (ms) => void delays.push(ms),
  });
  let n = 0;
  const outcomes = ['fail', 'fail', 'fail', 'ok', 'fail', 'stop'];
  await new Promise<void>((done) => {
    kit.start(async () => {
      await kit.runSteps(async () => {
        const o = outcomes[n++];
        if (o === 'stop') {
          void kit.stop();
          return;
        }
        if (o === 'fail') throw new Error(`step ${n} failed`);
        assert.equal(kit.state, 'retrying', 'the state still says retrying during the step that then succeeds');
      }, 'reading');
      done();
    });
  });
  // attempts 0,1,2 then reset by the success, then attempt 0 again; random 0.999 shows each cap.
  assert.deepEqual(delays, [99, 199, 399, 99]);
  assert.equal(kit.lastError?.message, 'reading: step 5 failed');
  await kit.stop();
  assert.equal(kit.state, 'stopped');
});

test('stop() ends a pending backoff, log wait and raced call at once', async () => {
  const kit = new ConsumerKit({ checkpoint: new MemoryCheckpoint(), clock: new ManualClock(0), sleep: () => new Promise(() => {}) });
  const never = new Promise<number>(() => {});
  const seen: unknown[] = [];
  kit.start(async () => {
    seen.push(await kit.backoff(3));
    seen.push(await kit.waitForLog({ waitFor: () => new Promise<boolean>(() => {}) }, 0, 60_000));
    seen.push(typeof (await kit.race(never)));
  });
  await kit.stop();
  assert.deepEqual(seen, [false, false, 'symbol']);
  assert.equal(kit.running, false);
});

test('a closed log (waitFor answers false at once) makes waitForLog pause the full wait instead of spinning', async () => {
  const pauses: number[] = [];
  const kit = new ConsumerKit({ checkpoint: new MemoryCheckpoint(), clock: new ManualClock(0), sleep: async (ms) => void pauses.push(ms) });
  const closed = { waitFor: async () => false };
  assert.equal(await kit.waitForLog(closed, 0, 500), true);
  assert.deepEqual(pauses, [500]);
  assert.equal(await kit.waitForLog({ waitFor: async () => true }, 0, 500), true);
  assert.deepEqual(pauses, [500], 'no pause when records arrived');
});

test('lag: 0 only when nothing is behind, exact with a record in hand, else bounded by the last read or catch-up, else by the start', () => {
  const base = { checkpoint: 10, startedAt: 1000 };
  assert.deepEqual(computeLag(base, 10, 5000), { recordsBehind: 0, millisBehind: 0, millisBehindExact: true });
  assert.deepEqual(computeLag({ ...base, oldestInHand: 4000 }, 15, 5000), { recordsBehind: 5, millisBehind: 1000, millisBehindExact: true });
  assert.deepEqual(computeLag({ ...base, oldestInHand: 5000 }, 15, 5000), { recordsBehind: 5, millisBehind: 1, millisBehindExact: true }, 'at least 1 while behind');
  assert.deepEqual(computeLag({ ...base, lastReadTs: 3000, caughtUpAt: 3500 }, 11, 5000), { recordsBehind: 1, millisBehind: 1500, millisBehindExact: false });
  assert.deepEqual(computeLag(base, 11, 5000), { recordsBehind: 1, millisBehind: 4000, millisBehindExact: false });
  const clock = new ManualClock(2000);
  const kit = new ConsumerKit({ checkpoint: new MemoryCheckpoint(3), clock });
  kit.lastReadTs = 1500;
  clock.advance(500);
  assert.deepEqual(kit.lag(9), { recordsBehind: 6, millisBehind: 1000, millisBehindExact: false });
  assert.deepEqual(kit.lagState(1800), { checkpoint: 3, startedAt: 2000, oldestInHand: 1800, lastReadTs: 1500 });
});
