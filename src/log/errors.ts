// Storage failures as callers need to see them: whether the disk is full (so the client is told to
// retry later rather than that the server is broken), and one wording for it. Protocol-neutral:
// each protocol picks its own retryable AWS error type for these (see pinpoint/events.ts,
// kinesis/records.ts, firehose/api.ts, http/dispatch.ts).

/** Error codes that mean "no space": the file system (ENOSPC), a quota (EDQUOT), SQLite (SQLITE_FULL). */
const FULL_CODES = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL']);
/** DuckDB reports I/O errors as text only. */
const FULL_TEXT = /No space left on device|disk quota exceeded|database or disk is full/i;

/** A write to a log failed: nothing of the failed appends was acknowledged. */
export class LogWriteError extends Error {
  constructor(
    /** The file system's error code (ENOSPC, EIO, …) when there is one. */
    readonly code: string | undefined,
    readonly diskFull: boolean,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A read from a log could not be served for now: the storage behind it (a NATS cluster electing a
 * stream leader, a server reconnecting) did not answer within the read's bound. Retrying later is
 * the remedy, so protocols answer it with their retryable "unavailable" error.
 */
export class LogUnavailableError extends Error {
  constructor(
    readonly code: string | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** True when `e` (or an error it wraps) says the disk or a quota is full. */
export function isDiskFull(e: unknown): boolean {
  for (let cur = e, depth = 0; cur && depth < 8; cur = (cur as { cause?: unknown }).cause, depth++) {
    if (cur instanceof LogWriteError) return cur.diskFull;
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && FULL_CODES.has(code)) return true;
    const message = (cur as { message?: unknown }).message;
    if (typeof message === 'string' && FULL_TEXT.test(message)) return true;
  }
  return false;
}

/** The first error code found on `e` or its causes. */
export function errorCode(e: unknown): string | undefined {
  for (let cur = e, depth = 0; cur && depth < 8; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
  }
  return undefined;
}

/**
 * What a client is told about a failed write, without paths or names: "the server's disk is full
 * (ENOSPC)" or "a storage write failed (EIO)".
 */
export function storageFailureText(e: unknown): string {
  const code = errorCode(e);
  if (isDiskFull(e)) return `the server's disk is full${code ? ` (${code})` : ''}`;
  return `a storage write failed${code ? ` (${code})` : ''}`;
}
