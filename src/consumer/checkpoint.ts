// Where a log consumer keeps its place: the first offset not yet consumed. The consumer only loads
// it at start and saves it after progress; persisting it (and making that durable) is the caller's
// business (SQLite today, the metadata Store later).

export interface Checkpoint {
  /** The first log offset not yet consumed (0 for a new consumer). */
  load(): number;
  /** Records that everything below `offset` was consumed (delivered, or rejected to an error log). */
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
