// Picks a delivery stream's destination adapter by the destination block it was created with.
// S3DestinationConfiguration is a subset of ExtendedS3's, so both go to the S3 adapter. A stored
// configuration the adapters now refuse runs refusedDestination, which says why in health.

import type { Json } from '../../http/shape.js';
import type { DestinationContext, FirehoseDestination, StreamInfo } from '../destination.js';
import { bufferingOf } from '../limits.js';
import type { DestinationKind } from '../validate.js';
import { HttpEndpointDestination } from './http.js';
import { RedshiftDestination } from './redshift.js';
import { S3Destination } from './s3.js';

export function createDestination(kind: DestinationKind, config: Json, stream: () => StreamInfo, ctx: DestinationContext): FirehoseDestination {
  switch (kind) {
    case 'ExtendedS3':
    case 'S3':
      return new S3Destination(config, stream, ctx);
    case 'Redshift':
      return new RedshiftDestination(config, stream, ctx);
    case 'HttpEndpoint':
      return new HttpEndpointDestination(config, stream, ctx);
  }
}

/** Stands in for a stored configuration the adapters refuse: every attempt fails, saying why. */
export function refusedDestination(kind: DestinationKind, reason: string): FirehoseDestination {
  const error = `the delivery stream's configuration cannot be used: ${reason}; correct it with UpdateDestination`;
  return {
    kind: kind === 'S3' ? 'ExtendedS3' : kind,
    // No waiting for a buffer to fill: the first record shows the problem in health at once.
    buffering: { ...bufferingOf(undefined), intervalMs: 0 },
    retryDurationMs: Infinity,
    deliver: async () => ({ ok: false, error }),
    abandon: async () => ({ ok: false, error }),
    close: async () => {},
  };
}
