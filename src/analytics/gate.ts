// The ingest log as the event producers (PutEvents, the messaging receiver, history imports) see
// it when the analytics thread opens in the background: every append first waits for the
// analytics loader's checkpoint check (remote.ts `ready`). That check moves the log's end past a
// checkpoint the log lost (Log.checkConsumer), and must come before any new event gets an offset,
// or the loader would skip the new events as loaded. Everything but `append` goes straight through.

import type { AppendOptions, AppendResult, Log, OffsetGap, Payload, ReadOptions, ReadResult } from '../log/log.js';

export class AppendsAfter implements Log {
  /** The wrapped log's: whether it stores dedup ids (JetStream), so producers still pass them. */
  readonly usesIds: boolean | undefined;

  constructor(
    private readonly log: Log,
    /** Resolves once appends may go ahead; a rejection fails each append with its reason. */
    private readonly gate: () => Promise<void>,
  ) {
    this.usesIds = log.usesIds;
  }

  /**
   * Appends in the order called: appends waiting for the gate are released in the order they
   * arrived (each waits on the same promise), so the log sees them in that order.
   */
  append(payloads: ReadonlyArray<Payload>, options?: AppendOptions): Promise<AppendResult> {
    return this.gate().then(() => this.log.append(payloads, options));
  }

  read(offset: number, options?: ReadOptions): Promise<ReadResult> {
    return this.log.read(offset, options);
  }
  startOffset(): number {
    return this.log.startOffset();
  }
  endOffset(): number {
    return this.log.endOffset();
  }
  offsetForTimestamp(ts: number): Promise<number> {
    return this.log.offsetForTimestamp(ts);
  }
  waitFor(offset: number, timeoutMs: number): Promise<boolean> {
    return this.log.waitFor(offset, timeoutMs);
  }
  deleteOlderThan(cutoffMs: number): Promise<number> {
    return this.log.deleteOlderThan(cutoffMs);
  }
  checkConsumer(consumer: string, checkpoint: number): Promise<OffsetGap | undefined> {
    return this.log.checkConsumer(consumer, checkpoint);
  }
  health(): ReturnType<Log['health']> {
    return this.log.health();
  }
  destroy(): Promise<void> {
    return this.log.destroy();
  }
  close(): Promise<void> {
    return this.log.close();
  }
}
