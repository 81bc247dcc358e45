// What an event stream's destination is, as plain data, and the one function that builds the
// Destination from it: the delivery manager decides (embedded Kinesis in process, the server's own
// HTTP endpoint signed as the stream's role, or a configured route such as real AWS) and hands the
// spec to whoever runs the worker — this thread, or a consumers thread (src/delivery/thread.ts),
// which cannot hold the embedded Kinesis or the IAM store and gets those through `hooks`.

import type { Credentials } from '../iam/sigv4.js';
import type { Destination } from './destination.js';
import { destinationFor, selfHttpHandler } from './kinesis-destination.js';

export type DestinationSpec =
  /** The embedded Kinesis of this process: appended by the owner of its logs (the main thread). */
  | { kind: 'local'; arn: string }
  | {
      kind: 'client';
      arn: string;
      endpoint?: string;
      region: string;
      /** 'role': the stream's role, assumed by Pinpoint for the app; undefined: the SDK's default chain. */
      credentials?: 'role' | { accessKeyId: string; secretAccessKey: string };
      /** The endpoint is this server's own address (its certificate is not for that address). */
      self: boolean;
    };

export interface DestinationHooks {
  /** The embedded Kinesis destination (in process, or a proxy to the main thread). */
  local(arn: string): Destination;
  /** The stream's role session for the app (rejects when the role cannot be assumed). */
  assume(): Promise<Credentials>;
}

export function buildDestination(spec: DestinationSpec, hooks: DestinationHooks): Destination {
  if (spec.kind === 'local') return hooks.local(spec.arn);
  const credentials = spec.credentials === 'role' ? () => hooks.assume() : spec.credentials;
  return destinationFor(spec.arn, {
    region: spec.region,
    ...(spec.endpoint !== undefined ? { endpoint: spec.endpoint } : {}),
    ...(credentials ? { credentials } : {}),
    ...(spec.self ? { requestHandler: selfHttpHandler() } : {}),
  });
}
