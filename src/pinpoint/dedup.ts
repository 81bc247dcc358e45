// Drops retried PutEvents events: remembers recent (app, endpoint, event id) keys. Two generations
// of Sets give O(1) insert and cheap eviction (the older half is dropped whole), bounding memory to
// about `capacity` keys. The window is rebuilt from the ingest log's tail at start-up, so a client
// retrying across a server restart does not create duplicates either.
//
// Keys are stored as 96-bit fingerprints (a 6-code-unit string) instead of the ~110-character key
// itself: about 60 bytes per remembered event instead of about 200. Three differently seeded
// 32-bit hashes over the key make a false match — a new event taken for a retry — about 1e-17
// likely for a full window of a million events, far below any hardware error rate.

export class Dedup {
  private current = new Set<string>();
  private previous = new Set<string>();

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

  /** Records the key; false when it was already seen (a retry). */
  claim(key: string): boolean {
    if (this.capacity === 0) return true;
    if (this.current.has(key) || this.previous.has(key)) return false;
    this.add(key);
    return true;
  }

  /** Forgets keys whose append failed, so the client's retry is accepted. */
  release(keys: string[]): void {
    for (const k of keys) {
      this.current.delete(k);
      this.previous.delete(k);
    }
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
