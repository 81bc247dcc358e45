// Kinesis error types (reference/kinesis-firehose.md §1.4), with AWS's message wording where known,
// and the member checks that raise them.

import { ServiceError } from '../http/awsjson.js';
import { shownValue } from '../http/shape.js';

export const resourceNotFound = (m: string) => new ServiceError('ResourceNotFoundException', m);
export const resourceInUse = (m: string) => new ServiceError('ResourceInUseException', m);
export const invalidArgument = (m: string) => new ServiceError('InvalidArgumentException', m);
export const limitExceeded = (m: string) => new ServiceError('LimitExceededException', m);
export const expiredIterator = (m: string) => new ServiceError('ExpiredIteratorException', m);
export const expiredNextToken = (m: string) => new ServiceError('ExpiredNextTokenException', m);
export const throughputExceeded = (m: string) => new ServiceError('ProvisionedThroughputExceededException', m);
export const internalFailure = (m: string) => new ServiceError('InternalFailure', m, 500);

/** Coral-style constraint failure, as AWS words it: names the member and the constraint. */
export const validation = (value: unknown, member: string, constraint: string) =>
  new ServiceError(
    'ValidationException',
    `1 validation error detected: Value '${shownValue(value)}' at '${member}' failed to satisfy constraint: ${constraint}`,
  );

/** A required integer member within [min, max], with Coral-style messages. */
export function int(v: unknown, member: string, min: number, max: number): number {
  const n = optInt(v, member, min, max);
  if (n === undefined) throw validation(null, member, 'Member must not be null');
  return n;
}

/** An optional integer member within [min, max]. */
export function optInt(v: unknown, member: string, min: number, max: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw validation(v, member, 'Member must be an integer');
  if (v < min) throw validation(v, member, `Member must have value greater than or equal to ${min}`);
  if (v > max) throw validation(v, member, `Member must have value less than or equal to ${max}`);
  return v;
}
