// Retry delays of every log consumer (event-stream delivery, Firehose deliverers, the Kinesis
// source): capped exponential backoff with full jitter (delay = random() * min(max, base * 2^attempt)).
// Full jitter spreads the retries of many workers hitting the same dead destination, so they don't
// come back in lockstep when it recovers.

export interface BackoffOptions {
  /** Delay cap of the first retry (attempt 0), in ms. Default 200. */
  baseMs?: number;
  /** Upper bound of any delay, in ms. Default 30,000. */
  maxMs?: number;
}

export const DEFAULT_BACKOFF_BASE_MS = 200;
export const DEFAULT_BACKOFF_MAX_MS = 30_000;

/** Delay before retry number `attempt` (0-based); `random` returns [0, 1) like Math.random. */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const base = options.baseMs ?? DEFAULT_BACKOFF_BASE_MS;
  const max = options.maxMs ?? DEFAULT_BACKOFF_MAX_MS;
  // 2 ** attempt overflows to Infinity after ~1024 attempts; min() keeps the cap either way.
  const cap = Math.min(max, base * 2 ** Math.max(0, attempt));
  return Math.floor(random() * cap);
}
