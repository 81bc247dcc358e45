// The stop signal of a long-running loop that reads a log (event-stream workers, Firehose
// deliverers, the analytics loader): lets every await of the loop — a log wait, a destination
// call, a backoff sleep — end as soon as stop() is called, without cancelling the awaited work
// itself. Its sleeps hold a (ref'd) timer, so a loop being stopped never leaves its stopper
// awaiting a promise the event loop has forgotten.

export const STOPPED: unique symbol = Symbol('stopped');
export type Stopped = typeof STOPPED;

export class StopSignal {
  private fire: () => void = () => {};
  private signal: Promise<Stopped>;
  stopped = false;

  constructor() {
    this.signal = new Promise((resolve) => (this.fire = () => resolve(STOPPED)));
  }

  stop(): void {
    this.stopped = true;
    this.fire();
  }

  /** `p`'s value, or STOPPED once stop() was called (at once if it already was). */
  race<T>(p: Promise<T>): Promise<T | Stopped> {
    return this.stopped ? Promise.resolve(STOPPED) : Promise.race([p, this.signal]);
  }

  /** Waits `ms` (or what `sleep` returns) unless stopped first; false when stopped. */
  async sleep(ms: number, sleep?: (ms: number) => Promise<void>): Promise<boolean> {
    if (sleep) return (await this.race(sleep(ms))) !== STOPPED;
    let timer: NodeJS.Timeout | undefined;
    const slept = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
    try {
      return (await this.race(slept)) !== STOPPED;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** One line for an error in health and logs: `Name: message`, or the message of a plain Error. */
export function describeError(e: unknown): string {
  if (e instanceof Error) return e.name && e.name !== 'Error' ? `${e.name}: ${e.message}` : e.message;
  return String(e);
}
