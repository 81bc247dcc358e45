// Drops retried PutEvents events: remembers recent (app, endpoint, event id) keys. Two generations
// of Sets give O(1) insert and cheap eviction (the older half is dropped whole), bounding memory to
// about `capacity` keys. The window is rebuilt from the ingest log's tail at start-up, so a client
// retrying across a server restart does not create duplicates either.

export class Dedup {
  private current = new Set<string>();
  private previous = new Set<string>();

  constructor(private capacity: number) {}

  static key(appId: string, endpointId: string, eventId: string): string {
    return appId + '\n' + endpointId.toLowerCase() + '\n' + eventId;
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
