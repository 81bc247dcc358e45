// Firehose error types (reference/kinesis-firehose.md §3.1): the model's declared errors for
// semantic problems, and Coral's ValidationException (what AWS answers for a member outside the
// model's min/max/pattern/enum, e.g. "Value '…' at 'deliveryStreamName' failed to satisfy
// constraint: …"), with the member path as AWS writes it (camelCase, `.N.member` for lists).

import { ServiceError } from '../http/awsjson.js';
import { shownValue } from '../http/shape.js';

export const resourceNotFound = (m: string) => new ServiceError('ResourceNotFoundException', m);
export const resourceInUse = (m: string) => new ServiceError('ResourceInUseException', m);
export const invalidArgument = (m: string) => new ServiceError('InvalidArgumentException', m);
export const limitExceeded = (m: string) => new ServiceError('LimitExceededException', m);
export const concurrentModification = (m: string) => new ServiceError('ConcurrentModificationException', m);
/** The model's server fault for PutRecord(Batch); SDKs back off and retry it (503, as its name says). */
export const serviceUnavailable = (m: string) => new ServiceError('ServiceUnavailableException', m, 503);

export const notFoundMessage = (name: string, accountId: string) => `Firehose ${name} under account ${accountId} not found.`;

/** Coral-style constraint failure: names the member and the constraint it broke. */
export const validation = (value: unknown, member: string, constraint: string) =>
  new ServiceError(
    'ValidationException',
    `1 validation error detected: Value '${shownValue(value)}' at '${member}' failed to satisfy constraint: ${constraint}`,
  );

/** `ExtendedS3DestinationConfiguration` → `extendedS3DestinationConfiguration`, as Coral names members. */
export const memberName = (wire: string) => wire.charAt(0).toLowerCase() + wire.slice(1);
