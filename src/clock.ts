// The injected clock: every time-dependent part (SigV4 skew, retention, sessions, buffering,
// iterator expiry) asks this instead of Date.now(), so tests can move time without sleeping.
// A ManualClock keeps its time in shared memory, so a worker thread (the Firehose thread's
// buffer-interval checks) can read the very clock a test moves (clockIn / Clock.shared).

export interface Clock {
  now(): number;
  /** Set by clocks another thread can read (a ManualClock): its time, as one float64. */
  readonly shared?: SharedArrayBuffer;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock tests can set and advance. */
export class ManualClock implements Clock {
  readonly shared = new SharedArrayBuffer(8);
  // A float64 store is one aligned 8-byte write: a reader on another thread sees the old or the
  // new time, never a mix (Atomics has no float64 operations to say so formally).
  private readonly t = new Float64Array(this.shared);
  constructor(t: number = Date.now()) {
    this.t[0] = t;
  }
  now(): number {
    return this.t[0];
  }
  set(t: number): void {
    this.t[0] = t;
  }
  advance(ms: number): void {
    this.t[0] += ms;
  }
}

/** In a worker thread: the clock whose `shared` memory was handed over, else the system clock. */
export function clockIn(shared: SharedArrayBuffer | undefined): Clock {
  if (!shared) return systemClock;
  const t = new Float64Array(shared);
  return { now: () => t[0] };
}
