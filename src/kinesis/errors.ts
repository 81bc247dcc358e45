// Kinesis error types (reference/kinesis-firehose.md §1.4), with AWS's message wording where known.

import { ServiceError } from '../http/awsjson.js';

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
    `1 validation error detected: Value '${String(value).slice(0, 100)}' at '${member}' failed to satisfy constraint: ${constraint}`,
  );
