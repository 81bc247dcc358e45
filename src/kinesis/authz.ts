// Which resource each Kinesis operation acts on, for IAM: the stream ARN (named by StreamName or
// StreamARN, or carried inside a shard iterator or ListShards token), the consumer ARN for
// enhanced fan-out reads, the ResourceARN (a stream or consumer) of the tag and resource-policy
// operations, every stream for ListStreams, and `*` for the account-level operations, which IAM
// matches only to `"Resource": "*"` as AWS does. Actions are `kinesis:<Operation>`.

import type { ApiRequest } from '../http/request.js';
import type { Json } from '../http/shape.js';
import type { Authorizer } from '../iam/authorizer.js';
import type { TokenSigner } from './iterators.js';
import type { StreamRegistry } from './streams.js';

const ACCOUNT_OPERATIONS = new Set(['DescribeLimits', 'DescribeAccountSettings', 'UpdateAccountSettings']);
const RESOURCE_ARN_OPERATIONS = new Set(['TagResource', 'UntagResource', 'ListTagsForResource', 'GetResourcePolicy', 'PutResourcePolicy', 'DeleteResourcePolicy']);

export function kinesisAuthorizer(authorizer: Authorizer, registry: StreamRegistry, signer: TokenSigner) {
  const allStreams = registry.arn('*');
  const resourceOf = (op: string, input: Json): string | undefined => {
    if (op === 'ListStreams') return allStreams;
    if (ACCOUNT_OPERATIONS.has(op)) return '*';
    if (typeof input.ResourceARN === 'string' && RESOURCE_ARN_OPERATIONS.has(op)) return input.ResourceARN;
    if (typeof input.ConsumerARN === 'string' && (op === 'SubscribeToShard' || op === 'DescribeStreamConsumer' || op === 'DeregisterStreamConsumer')) {
      return input.ConsumerARN;
    }
    if (op === 'GetRecords' && typeof input.ShardIterator === 'string') {
      const it = signer.decodeIterator(input.ShardIterator);
      return it ? registry.arn(it.stream) : undefined;
    }
    if (op === 'ListShards' && typeof input.NextToken === 'string') {
      const t = signer.decodeToken<{ stream?: string }>(input.NextToken);
      return t?.stream ? registry.arn(t.stream) : undefined;
    }
    if (typeof input.StreamARN === 'string') return input.StreamARN;
    if (typeof input.StreamName === 'string') return registry.arn(input.StreamName);
    return undefined;
  };
  return (op: string, input: Json, req: ApiRequest): void => {
    // An input naming no resource fails validation in the operation itself; unknown = all streams.
    authorizer.authorize(req, `kinesis:${op}`, resourceOf(op, input) ?? allStreams);
  };
}
