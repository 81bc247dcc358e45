// Scheduling priority of background threads. Linux schedules each thread on its own and keeps a
// nice value per thread, which threads it starts (a nested worker thread) inherit. Batch work that
// has no one waiting on it — the analytics loader's JavaScript and its parse thread — runs at a
// higher nice value than the threads that answer requests and deliver event streams, so when both
// cores are busy it yields to them and catches up when load drops (its lag is on /metrics).
// DuckDB's own work is not covered: it runs on libuv's thread pool (shared with the main thread's
// file I/O, so left alone) and on threads DuckDB starts from there. setpriority on a thread id
// changes only that thread; raising nice needs no privilege. Elsewhere it is a no-op.

import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** The nice values a thread may be given (POSIX range above the default 0). */
export const MIN_NICE = 0;
export const MAX_NICE = 19;

/** This thread's kernel thread id (Linux /proc/thread-self), or undefined elsewhere. */
export function osThreadId(): number | undefined {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isSafeInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Sets this thread's nice value (never lowers it below what it has: a process started with `nice`
 * keeps at least that). Returns the thread id and the nice value it now has, or why it could not.
 */
export function niceThisThread(nice: number): { tid: number; nice: number } | { error: string } {
  const tid = osThreadId();
  if (tid === undefined) return { error: 'no per-thread priority on this system' };
  try {
    const now = getPriority(tid);
    if (nice > now) setPriority(tid, nice);
    return { tid, nice: getPriority(tid) };
  } catch (e) {
    return { error: (e as Error).message };
  }
}
