// Drops retried PutEvents events: remembers recent (app, endpoint, event id) keys. Two generations
// of fingerprint tables give O(1) insert and cheap eviction (the older half is cleared whole),
// bounding memory to about `capacity` keys. The window is rebuilt from the ingest log's tail at
// start-up, so a client retrying across a server restart does not create duplicates either.
//
// Keys are 96-bit fingerprints (handed around as 6-code-unit strings) instead of the ~110-character
// key itself. Three differently seeded 32-bit hashes over the key make a false match — a new event
// taken for a retry — about 1e-17 likely for a full window of a million events, far below any
// hardware error rate. The window stores them in typed arrays (FingerprintTable: open addressing,
// three 32-bit words a slot, at most half full): 24 bytes per remembered event and no object per
// key. A Set of a million fingerprint strings held ~60 MB of small heap objects that every major
// GC had to mark (GC was 12–14% of the request thread's time under load).
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

/** A fingerprint's words: the three 32-bit halves of the 6-code-unit key (never (0,0,0) or (0,0,1)). */
function words(key: string): [number, number, number] {
  const a = (key.charCodeAt(0) | (key.charCodeAt(1) << 16)) >>> 0;
  const b = (key.charCodeAt(2) | (key.charCodeAt(3) << 16)) >>> 0;
  let c = (key.charCodeAt(4) | (key.charCodeAt(5) << 16)) >>> 0;
  // (0,0,0) marks an empty slot and (0,0,1) a deleted one: a key that would read as either is
  // moved off them (a 2^-95 event; at worst it then matches one other rare key).
  if (a === 0 && b === 0 && c <= 1) c |= 2;
  return [a, b, c];
}

/**
 * One generation of the window: a set of 96-bit fingerprints in one Uint32Array, open addressing
 * with linear probing, sized for at most `entries` inserts at half load. Deletes (keys of a failed
 * append) leave a tombstone; the generation is cleared whole when it retires.
 */
export class FingerprintTable {
  private readonly words: Uint32Array;
  private readonly mask: number;
  /** Keys present. */
  size = 0;
  /** Slots ever filled since the last clear (present keys and tombstones). */
  private used = 0;

  constructor(readonly entries: number) {
    let slots = 8;
    while (slots < entries * 2) slots *= 2;
    this.words = new Uint32Array(slots * 3);
    this.mask = slots - 1;
  }

  /** Bytes the table holds. */
  get bytes(): number {
    return this.words.byteLength;
  }

  /** Whether another insert keeps the table within its sizing (the caller retires it when not). */
  get full(): boolean {
    return this.used >= this.entries;
  }

  has(key: string): boolean {
    return this.find(key) >= 0;
  }

  /** Adds a key not present (the caller checked). */
  add(key: string): void {
    const [a, b, c] = words(key);
    const w = this.words;
    for (let i = b & this.mask; ; i = (i + 1) & this.mask) {
      const j = i * 3;
      if (w[j] === 0 && w[j + 1] === 0 && w[j + 2] <= 1) {
        if (w[j + 2] === 0) this.used++;
        w[j] = a;
        w[j + 1] = b;
        w[j + 2] = c;
        this.size++;
        return;
      }
    }
  }

  delete(key: string): boolean {
    const j = this.find(key);
    if (j < 0) return false;
    this.words[j] = 0;
    this.words[j + 1] = 0;
    this.words[j + 2] = 1;
    this.size--;
    return true;
  }

  clear(): void {
    this.words.fill(0);
    this.size = 0;
    this.used = 0;
  }

  /** The key's word index, or -1. */
  private find(key: string): number {
    const [a, b, c] = words(key);
    const w = this.words;
    for (let i = b & this.mask; ; i = (i + 1) & this.mask) {
      const j = i * 3;
      const x = w[j];
      const y = w[j + 1];
      const z = w[j + 2];
      if (x === a && y === b && z === c) return j;
      if (x === 0 && y === 0 && z === 0) return -1;
    }
  }
}

export class Dedup {
  private current: FingerprintTable;
  private previous: FingerprintTable;
  /** Appends not yet settled (one per PutEvents request in flight). */
  private inflight = new Set<PendingAppend>();
  /** Key → its in-flight append; built on demand for retries, dropped whenever an append settles. */
  private index: Map<string, PendingAppend> | undefined;

  constructor(private capacity: number) {
    const half = Math.max(1, Math.ceil(capacity / 2));
    this.current = new FingerprintTable(capacity === 0 ? 1 : half);
    this.previous = new FingerprintTable(capacity === 0 ? 1 : half);
  }

  /** Bytes the window's tables hold (both generations). */
  get bytes(): number {
    return this.current.bytes + this.previous.bytes;
  }

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
      this.insert(key);
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
    if (this.current.has(key) || this.previous.has(key)) return;
    this.insert(key);
  }

  /** Adds a key known to be in neither generation. */
  private insert(key: string): void {
    if (this.current.full) {
      // The older half goes; its table is cleared and becomes the new current one (no allocation).
      const retired = this.previous;
      this.previous = this.current;
      retired.clear();
      this.current = retired;
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
