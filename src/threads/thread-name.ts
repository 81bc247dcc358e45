// Names each worker thread for the kernel (/proc/<pid>/task/<tid>/comm, what `top -H`, `ps -L`,
// `perf` and the benchmarks show): without it every thread of the process is "node", and CPU
// cannot be told apart between the request path's prepare threads, the consumers thread, the
// Firehose thread and the analytics thread. A thread may rename itself by writing its own comm
// file; the kernel keeps the first THREAD_NAME_MAX_BYTES bytes. Elsewhere than Linux: a no-op.
// The main thread keeps its name ("node"), which is also the process's name tools match on.

import { writeFileSync } from 'node:fs';
import { osThreadId } from './priority.js';

/** What the kernel keeps of a thread name (TASK_COMM_LEN 16, with the terminating NUL). */
export const THREAD_NAME_MAX_BYTES = 15;
/** Every name given here starts with this, so the process's own threads are told from V8's, libuv's and DuckDB's. */
export const THREAD_NAME_PREFIX = 'ps-';

/** Names this thread `ps-<role>` (cut to THREAD_NAME_MAX_BYTES); returns the name given, or undefined where it cannot. */
export function nameThisThread(role: string): string | undefined {
  const tid = osThreadId();
  if (tid === undefined) return undefined;
  const name = Buffer.from(THREAD_NAME_PREFIX + role.replace(/[^A-Za-z0-9_.-]/g, '_')).subarray(0, THREAD_NAME_MAX_BYTES).toString('latin1');
  try {
    writeFileSync(`/proc/self/task/${tid}/comm`, name);
    return name;
  } catch {
    return undefined;
  }
}
