// The consumer kit: what every loop that reads a log and hands records on (event-stream delivery
// workers, Firehose deliverers; the analytics loader can adopt it) has in common, written once:
// the checkpoint (loaded at start, moved only forward, a failed save reported rather than fatal),
// the loop itself (one step after another, a failed step followed by a jittered backoff, stop()
// ending every wait at once), the wait for new records (with a guard against a closed log that
// answers at once), and health: state, retries, last error and lag — records behind (exact: the
// log's end minus the checkpoint) and millis behind (exact when the oldest unconsumed record is in
// hand, else an upper bound, see lag()). What a step does (reading, selecting, batching, sending)
// stays the consumer's own.
//
// Adopting it (the analytics loader, later): hold a ConsumerKit built from the loader's checkpoint
// (load/save around the store's saved offset), start the loop with kit.start(() =>
// kit.runSteps(step, 'ingest log')), wait with kit.waitForLog(log, readAt) after kit.caughtUp(),
// move the checkpoint with kit.advance(offset) after a committed batch, set kit.lastReadTs per
// read, and report kit.base() plus kit.lag(logEnd, oldestUnloadedTs) — or post kit.lagState()
// across a thread boundary and computeLag() it on the other side, as the delivery worker does.

import type { Clock } from '../clock.js';
import type { Log } from '../log/log.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import type { Checkpoint } from './checkpoint.js';
import { describeError, STOPPED, StopSignal, type Stopped } from './stop-signal.js';

export type ConsumerState = 'running' | 'retrying' | 'stopped';

export interface ConsumerKitOptions {
  checkpoint: Checkpoint;
  clock: Clock;
  backoff?: BackoffOptions;
  /** [0, 1) source of the backoff jitter (default Math.random). */
  random?: () => number;
  /** Backoff sleeps (tests may inject); stop() does not wait for one to end. */
  sleep?: (ms: number) => Promise<void>;
}

/** How far a consumer is behind its log, as health reports it. */
export interface ConsumerLag {
  /** Log records between the checkpoint and the log's end. */
  recordsBehind: number;
  /** Age of the oldest unconsumed record; 0 only when recordsBehind is 0, else at least 1. */
  millisBehind: number;
  /** False when millisBehind is an upper bound (nothing unconsumed in hand), not a measured age. */
  millisBehindExact: boolean;
}

/** The state a consumer's lag is computed from; plain data, so it can cross a thread boundary. */
export interface LagState {
  checkpoint: number;
  /** Append time of the oldest unconsumed record the consumer holds (read, not yet consumed). */
  oldestInHand?: number;
  /** Append time of the last record read: unread records are no older. */
  lastReadTs?: number;
  /** Clock time the consumer last found nothing unread: unread records were appended after it. */
  caughtUpAt?: number;
  /** Clock time the loop started: bounds the age of unread records before anything was read. */
  startedAt: number;
}

/**
 * Lag at `now` for a log ending at `logEnd`. With nothing unconsumed in hand, every unconsumed
 * record is unread and was appended no earlier than the newer of the last record read and the
 * last catch-up (a write being committed at that moment may be stamped up to its fdatasync
 * earlier): the time since then is an upper bound. Before the first read returns, the time since
 * start is what can be said. Append times are whole milliseconds, so behind is at least 1.
 */
export function computeLag(s: LagState, logEnd: number, now: number): ConsumerLag {
  const recordsBehind = Math.max(0, logEnd - s.checkpoint);
  if (recordsBehind === 0) return { recordsBehind, millisBehind: 0, millisBehindExact: true };
  if (s.oldestInHand !== undefined) return { recordsBehind, millisBehind: Math.max(1, now - s.oldestInHand), millisBehindExact: true };
  const since = Math.max(s.lastReadTs ?? -Infinity, s.caughtUpAt ?? -Infinity);
  const from = since === -Infinity ? s.startedAt : since;
  return { recordsBehind, millisBehind: Math.max(1, now - from), millisBehindExact: false };
}

/** Health fields every consumer reports the same way. */
export interface ConsumerHealthBase {
  state: ConsumerState;
  checkpoint: number;
  /** Sends or steps repeated after a failure. */
  retries: number;
  lastError?: { message: string; at: number };
}

/** How long one wait for new records lasts before the loop looks again (bounds nothing but wake-ups). */
export const CAUGHT_UP_WAIT_MS = 1000;

export class ConsumerKit {
  /** The checkpoint: first offset not yet consumed. */
  cursor: number;
  state: ConsumerState = 'stopped';
  retries = 0;
  lastError: { message: string; at: number } | undefined;
  /** Lag inputs (see LagState); the consumer sets lastReadTs and oldestInHand is passed to lag(). */
  lastReadTs: number | undefined;
  caughtUpAt: number | undefined;
  startedAt: number;
  private stop$ = new StopSignal();
  private loop: Promise<void> | undefined;

  constructor(private readonly o: ConsumerKitOptions) {
    this.cursor = o.checkpoint.load();
    this.startedAt = o.clock.now();
  }

  get stopped(): boolean {
    return this.stop$.stopped;
  }

  get running(): boolean {
    return this.loop !== undefined;
  }

  /**
   * Starts `body` as the loop from the saved checkpoint (no-op when one runs); `reset` clears the
   * consumer's own state first. Returns at once.
   */
  start(body: () => Promise<void>, reset?: () => void): void {
    if (this.loop) return;
    this.stop$ = new StopSignal();
    this.cursor = this.o.checkpoint.load();
    this.lastReadTs = undefined;
    this.caughtUpAt = undefined;
    this.startedAt = this.o.clock.now();
    reset?.();
    this.state = 'running';
    this.loop = body().finally(() => {
      this.state = 'stopped';
      this.loop = undefined;
    });
  }

  /** Ends the loop without waiting for its current backoff, log wait or destination call. */
  async stop(): Promise<void> {
    if (!this.loop) return;
    this.stop$.stop();
    await this.loop;
  }

  /**
   * Runs `step` until stopped. A step that throws is reported as `what: <error>` (after `onError`,
   * which drops what the step had issued) and retried after a jittered backoff that grows until a
   * step succeeds. A step that returns without stop() leaves the state 'running'.
   */
  async runSteps(step: () => Promise<void>, what: string, onError?: () => void): Promise<void> {
    let attempt = 0;
    while (!this.stop$.stopped) {
      try {
        await step();
        attempt = 0;
        if (!this.stop$.stopped) this.state = 'running';
      } catch (e) {
        onError?.();
        this.failed(`${what}: ${describeError(e)}`);
        if (!(await this.backoff(attempt++))) return;
      }
    }
  }

  /**
   * Waits until the log has a record at `offset` or `ms` passed; false when stopped first. A
   * closed log answers false at once: the loop then pauses, else it would spin and starve the process.
   */
  async waitForLog(log: Pick<Log, 'waitFor'>, offset: number, ms = CAUGHT_UP_WAIT_MS): Promise<boolean> {
    const since = performance.now();
    const woke = await this.stop$.race(log.waitFor(offset, ms));
    if (woke === STOPPED) return false;
    if (woke === false && performance.now() - since < ms / 2) return this.pause(ms);
    return true;
  }

  /** Notes that nothing is unread at this moment (lag's upper bound counts from here). */
  caughtUp(): void {
    this.caughtUpAt = this.o.clock.now();
  }

  /** Moves the checkpoint forward to `offset` (never back) and saves it. */
  advance(offset: number): void {
    if (offset <= this.cursor) return;
    this.cursor = offset;
    try {
      this.o.checkpoint.save(offset);
    } catch (e) {
      // Consuming goes on; the persisted checkpoint only lags, which costs duplicates after a crash.
      this.note(`checkpoint save failed: ${describeError(e)}`);
    }
  }

  /** A failure: state 'retrying' and the last error. */
  failed(message: string): void {
    this.state = 'retrying';
    this.note(message);
  }

  /** Records the last error without changing the state. */
  note(message: string): void {
    this.lastError = { message, at: this.o.clock.now() };
  }

  /** Waits the jittered backoff of retry number `attempt`; false when stopped first. */
  backoff(attempt: number): Promise<boolean> {
    return this.pause(backoffDelay(attempt, this.o.backoff, this.o.random));
  }

  /** Waits `ms` or until stop(); false when stopped. */
  pause(ms: number): Promise<boolean> {
    return this.stop$.sleep(ms, this.o.sleep);
  }

  /** `p`'s value, or STOPPED once stop() was called. */
  race<T>(p: Promise<T>): Promise<T | Stopped> {
    return this.stop$.race(p);
  }

  /** The lag inputs, with the oldest unconsumed record in hand (if any). */
  lagState(oldestInHand?: number): LagState {
    return {
      checkpoint: this.cursor,
      startedAt: this.startedAt,
      ...(oldestInHand !== undefined ? { oldestInHand } : {}),
      ...(this.lastReadTs !== undefined ? { lastReadTs: this.lastReadTs } : {}),
      ...(this.caughtUpAt !== undefined ? { caughtUpAt: this.caughtUpAt } : {}),
    };
  }

  lag(logEnd: number, oldestInHand?: number): ConsumerLag {
    return computeLag(this.lagState(oldestInHand), logEnd, this.o.clock.now());
  }

  /** The shared health fields. */
  base(): ConsumerHealthBase {
    return { state: this.state, checkpoint: this.cursor, retries: this.retries, ...(this.lastError ? { lastError: { ...this.lastError } } : {}) };
  }
}

export { STOPPED, type Stopped } from './stop-signal.js';
