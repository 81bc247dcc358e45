// How deep a client's document may nest objects and arrays: JSON and CBOR request bodies of every
// protocol, and IAM policy documents. Parsing is iterative, but much of what follows walks the
// value recursively (validation, merges, structuredClone, JSON.stringify for sizes and storage,
// record building, policy conditions); at some thousands of levels those overflow the stack and a
// request answered 500. Each protocol checks its body once, right after parsing, and answers with
// its own client error (see the callers), so every later walk is bounded by this limit. A neutral
// module: http/ (JSON and CBOR bodies), pinpoint/ (PutEvents) and iam/ (policy documents) use it.
//
// AWS documents no depth limit for these APIs. The deepest input shape of any operation in the
// botocore service models of Pinpoint, Kinesis, Firehose, IAM and STS is 12 levels (Pinpoint
// CreateJourney; PutEvents 7, UpdateEndpointsBatch 6, Firehose CreateDeliveryStream 7; an IAM
// policy document with a Condition is 6), counted by walking the models' shapes (test/nesting.test.ts
// does so over src/models/generated). No valid request comes near 32, which leaves room for
// members a client adds and the server ignores.

/** Deepest nesting of objects and arrays accepted in a client document (the top-level object is 1). */
export const MAX_NESTING_DEPTH = 32;

/**
 * Deepest nesting of a Firehose record's JSON that is converted to Parquet or loaded with Redshift's
 * JSON 'auto'. Records are data, not requests, so this is far above any real schema; it stays well
 * below where the recursive walks overflow the stack (about 10,000 levels in JS) and where DuckDB's
 * JSON reader crashes the process (somewhere above 5,000: 100,000 levels segfaulted). A deeper record
 * goes to the error output as malformed instead.
 */
export const MAX_RECORD_NESTING_DEPTH = 1000;

/** True when objects and arrays in `v` nest deeper than `max`. Recursion stops at `max`, so this never overflows. */
export function nestingExceeds(v: unknown, max = MAX_NESTING_DEPTH): boolean {
  return typeof v === 'object' && v !== null && deeper(v, max - 1);
}

function deeper(v: object, left: number): boolean {
  if (Array.isArray(v)) {
    for (const x of v) if (typeof x === 'object' && x !== null && (left === 0 || deeper(x, left - 1))) return true;
    return false;
  }
  for (const k in v) {
    const x = (v as Record<string, unknown>)[k];
    if (typeof x === 'object' && x !== null && (left === 0 || deeper(x, left - 1))) return true;
  }
  return false;
}

/** The message every protocol uses for a too deeply nested document (`what`: "Request body", …). */
export function nestingMessage(what: string): string {
  return `${what} nests objects and arrays more than ${MAX_NESTING_DEPTH} levels deep; the maximum is ${MAX_NESTING_DEPTH}`;
}
