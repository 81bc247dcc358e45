// What a call that must fail threw, for suites that then look at the error themselves (its type,
// status, message, request id) rather than through assert.rejects.

import assert from 'node:assert/strict';

/** Awaits the call (a promise, or a function that starts it) and returns what it threw; fails the test when it succeeds. */
export async function rejection(call: Promise<unknown> | (() => Promise<unknown>)): Promise<any> {
  try {
    await (typeof call === 'function' ? call() : call);
  } catch (e) {
    return e;
  }
  assert.fail('expected the call to be rejected');
}
