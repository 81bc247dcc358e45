// Which resource each Firehose operation acts on, for IAM: the delivery stream ARN
// (`arn:aws:firehose:<region>:<account>:deliverystream/<name>`) named by DeliveryStreamName, or
// `*` for ListDeliveryStreams. Actions are `firehose:<Operation>`.

import type { ApiRequest } from '../http/request.js';
import type { Json } from '../http/shape.js';
import type { Authorizer } from '../iam/authorizer.js';
import type { DeliveryStreamRegistry } from './registry.js';

export function firehoseAuthorizer(authorizer: Authorizer, registry: DeliveryStreamRegistry) {
  return (op: string, input: Json, req: ApiRequest): void => {
    // An input naming no stream fails validation in the operation itself; until then: all streams.
    const resource =
      op === 'ListDeliveryStreams' ? '*' : typeof input.DeliveryStreamName === 'string' ? registry.arn(input.DeliveryStreamName) : registry.arn('*');
    authorizer.authorize(req, `firehose:${op}`, resource);
  };
}
