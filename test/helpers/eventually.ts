// A bounded retry for tests across nodes: what one node wrote reaches another by a change
// notification, so a check made through the other node is repeated until it passes or time is up
// (then its last failure is the test's).

/** Retries `check` until it resolves, for at most `timeoutMs`; rethrows its last error after that. */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 15_000, pauseMs = 20): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > until) throw e;
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  }
}
