// Buffers handed to another thread by transfer (postMessage's transfer list): only a buffer whose
// ArrayBuffer holds exactly it, and that Node lets go, may be transferred. Node's allocation pool
// (small Buffers) and some native outputs (zlib's) are marked untransferable: Node 20 quietly
// copies them, Node 22+ throws DataCloneError. Everything else is copied once into a fresh
// ArrayBuffer first, so no view ever detaches memory that other buffers share.

import * as threads from 'node:worker_threads';

const isMarked = (threads as { isMarkedAsUntransferable?: (o: object) => boolean }).isMarkedAsUntransferable;

/** `b` itself when it can be transferred whole, else a copy that can; transfer its `.buffer`. */
export function transferable(b: Uint8Array): Buffer {
  const whole = b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer && !isMarked?.(b.buffer);
  const own = whole ? b : Uint8Array.prototype.slice.call(b);
  return Buffer.from(own.buffer, own.byteOffset, own.byteLength);
}

/** A buffer structured-cloned from another thread arrives as a Uint8Array: the same bytes as a Buffer, no copy. */
export const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
