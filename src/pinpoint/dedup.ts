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
// A key counts as seen from its claim, but a retry is answered Accepted only once the append that
// carries the original is durable: each append in flight is a PendingAppend holding its keys, and
// a retry of one of them waits for it, then is answered Accepted if it became durable, or claims
// the key and writes the event itself if it failed (the failed append's keys leave the window).
// So "Accepted" is never sent for an event that is then lost. The hot path (a new key) costs what
// it did before; only a key already seen looks for its append, through an index of the keys in
// flight built on the first such look-up and dropped when an append settles.

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
 * What to do with one event: 'write' it (the key is now claimed by the caller's append), 'skip' it
 * (it is durable already, or in the caller's own append), or wait for the PendingAppend that
 * carries it and then claim again.
 */
export type Claim = 'write' | 'skip' | PendingAppend;

export class Dedup {
  private current = new Set<string>();
  private previous = new Set<string>();
  /** Appends not yet settled (one per PutEvents request in flight). */
  private inflight = new Set<PendingAppend>();
  /** Key → its in-flight append; built on demand for retries, dropped whenever an append settles. */
  private index: Map<string, PendingAppend> | undefined;

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
    const append = new PendingAppend();
    this.inflight.add(append);
    return append;
  }

  /** Claims `key` for `append` (see Claim). */
  claim(key: string, append: PendingAppend): Claim {
    if (this.capacity === 0) return 'write';
    if (!this.current.has(key) && !this.previous.has(key)) {
      this.add(key);
      append.keys.push(key);
      this.index?.set(key, append);
      return 'write';
    }
    // Seen before: durable, or still being written by another request.
    if (this.inflight.size <= 1) return 'skip';
    const owner = (this.index ??= this.buildIndex()).get(key);
    return owner === undefined || owner === append ? 'skip' : owner;
  }

  /**
   * The append is durable (ok) or failed: then its keys leave the window, so the client's retry, or
   * a retry waiting on it, writes the events. Wakes whoever waits on it.
   */
  settle(append: PendingAppend, ok: boolean): void {
    if (append.isSettled) return;
    this.inflight.delete(append);
    this.index = undefined;
    if (!ok) {
      for (const k of append.keys) {
        this.current.delete(k);
        this.previous.delete(k);
      }
    }
    append.finish(ok);
  }

  /** Keys of appends in flight (for tests). */
  get inFlight(): number {
    let n = 0;
    for (const a of this.inflight) n += a.keys.length;
    return n;
  }

  private buildIndex(): Map<string, PendingAppend> {
    const index = new Map<string, PendingAppend>();
    for (const a of this.inflight) for (const k of a.keys) index.set(k, a);
    return index;
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
