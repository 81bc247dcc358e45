// Picks a delivery stream's destination adapter by the destination block it was created with.
// S3DestinationConfiguration is a subset of ExtendedS3's, so both go to the S3 adapter.

import type { Json } from '../../http/shape.js';
import type { DestinationContext, FirehoseDestination, StreamInfo } from '../destination.js';
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
