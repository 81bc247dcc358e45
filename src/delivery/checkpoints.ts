// Where a delivery worker keeps its place in the ingest log. The worker only loads it at start and
// saves it after progress; persisting it (and making that durable) is the caller's business.

export interface Checkpoint {
  /** The first ingest-log offset not yet delivered (0 for a new event stream). */
  load(): number;
  /** Records that everything below `offset` was delivered or rejected to the error log. */
  save(offset: number): void;
}

/** A checkpoint held in memory: for tests, and for callers that persist it themselves later. */
export class MemoryCheckpoint implements Checkpoint {
  constructor(public offset = 0) {}
  load(): number {
    return this.offset;
  }
  save(offset: number): void {
    this.offset = offset;
  }
}
