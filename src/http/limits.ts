// The HTTP front door's fixed limits, and the connection cap derived from the process's
// file-descriptor limit. The configurable ones (timeouts, caps, the unverified-body budget) are
// settings in src/config/config.ts; these are the ones no operator should need to change.

import { readFileSync } from 'node:fs';
import { ConfigError, OPERATOR_RESERVE_CONNECTIONS } from '../config/config.js';

/** Request line and headers, HTTP/1.1 (Node's default maxHeaderSize) and HTTP/2 header lists alike. */
export const MAX_HEADER_BYTES = 16 * 1024;

/**
 * A request answered without its body (refused, or a route that needs none) whose declared body is
 * at most this long is read to its end and thrown away, so the client reads the answer instead of a
 * connection reset. Longer or undeclared bodies get the answer and the connection is closed.
 */
export const REFUSED_BODY_DRAIN_BYTES = 16 * 1024 * 1024;

/** Node's HTTP/1.1 request timeout stays behind the body timeout by this much, as a backstop. */
export const NODE_REQUEST_TIMEOUT_SLACK_MS = 1_000;

/** The share of the file-descriptor limit connections may take by default; the rest is for files. */
export const CONNECTION_SHARE_OF_FILE_DESCRIPTORS = 0.75;

/** Descriptors always left for files (logs, SQLite, DuckDB) when maxConnections is set explicitly. */
export const MIN_FILE_DESCRIPTORS_FOR_FILES = 64;

/** Used when the limit cannot be read (no /proc): the common soft default. */
export const FALLBACK_FILE_DESCRIPTOR_LIMIT = 1024;

/** The soft RLIMIT_NOFILE of this process (Node raises it to the hard limit at start). */
export function fileDescriptorLimit(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m) return m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
  } catch {
    // Not Linux: fall through.
  }
  return FALLBACK_FILE_DESCRIPTOR_LIMIT;
}

/**
 * The connection cap: the configured one, or CONNECTION_SHARE_OF_FILE_DESCRIPTORS of the limit.
 * A configured cap the limit cannot hold is a start-up error (naming the setting), not a crash
 * under load when accept() runs out of descriptors.
 */
export function resolveMaxConnections(configured: number, fdLimit: number, setting = 'PINSTREAM_MAX_CONNECTIONS'): number {
  if (configured === 0) {
    const derived = Math.min(10_000_000, Math.floor(fdLimit * CONNECTION_SHARE_OF_FILE_DESCRIPTORS));
    if (derived <= OPERATOR_RESERVE_CONNECTIONS) {
      throw new ConfigError(`the file-descriptor limit (ulimit -n) is ${fdLimit}, too low to serve connections; raise it`);
    }
    return derived;
  }
  const most = fdLimit - MIN_FILE_DESCRIPTORS_FOR_FILES;
  if (configured > most) {
    throw new ConfigError(
      `${setting} is ${configured}, but the file-descriptor limit (ulimit -n) is ${fdLimit}; set at most ${most} or raise the limit`,
    );
  }
  return configured;
}
