// Drops retried PutEvents events: remembers recent (app, endpoint, event id) keys. Two generations
// of Sets give O(1) insert and cheap eviction (the older half is dropped whole), bounding memory to
// about `capacity` keys. The window is rebuilt from the ingest log's tail at start-up, so a client
// retrying across a server restart does not create duplicates either.
//
// Keys are stored as 96-bit fingerprints (a 6-code-unit string) instead of the ~110-character key
// itself: about 60 bytes per remembered event instead of about 200. Three differently seeded
// 32-bit hashes over the key make a false match — a new event taken for a retry — about 1e-17
// likely for a full window of a million events, far below any hardware error rate.
//
// A key enters the window only once the append that carries it is durable. Until then it is
// pending on that append (a small map of the keys in flight, empty when idle): a retry of the event
// arriving meanwhile waits for the original's append, is answered Accepted if it became durable,
// and claims the key and writes the event itself if it failed. So "Accepted" for a retry is never
// sent for an event that is then lost.

/** The claims of one ingest-log append, settled once the append is durable or has failed. */
export class PendingAppend {
  readonly keys: string[] = [];
  /** Resolves true when the append is durable, false when it failed (its keys are free again). */
  readonly settled: Promise<boolean>;
  private resolve!: (ok: boolean) => void;
  private done = false;

  constructor() {
    this.settled = new Promise((r) => (this.resolve = r));
  }

  get isSettled(): boolean {
    return this.done;
  }

  /** Called by Dedup.settle only. */
  finish(ok: boolean): void {
    this.done = true;
    this.resolve(ok);
  }
}

/**
 * What to do with one event: 'write' it (the key is now pending on the caller's append), 'skip' it
 * (it is durable already, or in the caller's own append), or wait for the PendingAppend that
 * carries it and then claim again.
 */
export type Claim = 'write' | 'skip' | PendingAppend;

export class Dedup {
  private current = new Set<string>();
  private previous = new Set<string>();
  /** Keys whose first append is still in flight, with that append. */
  private pending = new Map<string, PendingAppend>();

  constructor(private capacity: number) {}

  static key(appId: string, endpointId: string, eventId: string): string {
    return Dedup.keyIn(Dedup.scope(appId, endpointId), eventId);
  }

  /** Hash state after the app and endpoint ids: computed once per batch item, not per event. */
  static scope(appId: string, endpointId: string): HashState {
    const h: HashState = [0x811c9dc5, 0x9747b28c, 0x2545f491];
    mix(h, appId);
    mix(h, endpointId.toLowerCase());
    return h;
  }

  static keyIn(scope: HashState, eventId: string): string {
    const h: HashState = [scope[0], scope[1], scope[2]];
    mix(h, eventId);
    const a = h[0];
    const b = Math.imul(h[1] ^ (h[1] >>> 13), 0x5bd1e995);
    const c = Math.imul(h[2] ^ (h[2] >>> 16), 0x85ebca6b);
    return String.fromCharCode(a & 0xffff, a >>> 16, b & 0xffff, b >>> 16, c & 0xffff, c >>> 16);
  }

  /** Starts the claims of one append; settle it once the append is durable or has failed. */
  begin(): PendingAppend {
    return new PendingAppend();
  }

  /** Claims `key` for `append` (see Claim). */
  claim(key: string, append: PendingAppend): Claim {
    if (this.capacity === 0) return 'write';
    const inFlight = this.pending.get(key);
    if (inFlight !== undefined) return inFlight === append ? 'skip' : inFlight;
    if (this.current.has(key) || this.previous.has(key)) return 'skip';
    this.pending.set(key, append);
    append.keys.push(key);
    return 'write';
  }

  /**
   * The append is durable (ok: its keys join the window) or failed (its keys are forgotten, so the
   * client's retry, or a retry waiting on it, writes the events). Wakes whoever waits on it.
   */
  settle(append: PendingAppend, ok: boolean): void {
    if (append.isSettled) return;
    for (const k of append.keys) {
      this.pending.delete(k);
      if (ok) this.add(k);
    }
    append.finish(ok);
  }

  /** Keys whose append is in flight (for tests and health). */
  get inFlight(): number {
    return this.pending.size;
  }

  add(key: string): void {
    if (this.capacity === 0) return;
    if (this.current.size >= Math.ceil(this.capacity / 2)) {
      this.previous = this.current;
      this.current = new Set();
    }
    this.current.add(key);
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }
}

export type HashState = [number, number, number];

/** Feeds one string and a separator (so ("ab","c") and ("a","bc") differ) into the three hashes. */
function mix(h: HashState, s: string): void {
  let [a, b, c] = h;
  for (let i = 0; i <= s.length; i++) {
    const ch = i < s.length ? s.charCodeAt(i) : 0x1f;
    a = Math.imul(a ^ ch, 0x01000193);
    b = Math.imul(b ^ ch, 0x5bd1e995);
    b ^= b >>> 15;
    c = (Math.imul(c, 33) + ch) | 0;
    c ^= c >>> 13;
  }
  h[0] = a;
  h[1] = b;
  h[2] = c;
}
