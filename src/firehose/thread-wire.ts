// What crosses the Firehose thread's boundary (thread.ts in the thread, firehose-thread.ts on the
// main thread): the messages of both directions, named once here so the two ends cannot disagree.
// Per delivery stream the main thread starts a run (its configuration, saved checkpoint and log
// share); the thread reports checkpoints with health snapshots and asks only what it cannot do
// itself: role checks (once per object written), Data Catalog tables (once per converted batch)
// and the reads the log view hands to the writer (damage).

import type { BucketRoute } from '../config/config.js';
import type { Json } from '../http/shape.js';
import type { OffsetGap, ReadOptions } from '../log/log.js';
import type { LogShare } from '../log/segment-view.js';
import type { DelivererSnapshot } from './deliverer.js';
import type { StreamInfo } from './destination.js';
import type { DestinationKind } from './validate.js';

/** The thread's start data. */
export interface FirehoseThreadInit {
  dataDir: string;
  /** PINSTREAM_BUCKETS: where each bucket lives (the thread opens its own object stores). */
  buckets: BucketRoute[];
  /** A ManualClock's shared time (tests); absent: the system clock. */
  clock?: SharedArrayBuffer;
  /** How often deliverers compare buffer ages with the clock. */
  checkMs?: number;
  /** Whether the main thread has a Data Catalog (format conversion is refused without one). */
  catalog: boolean;
}

/** Main → thread: run one delivery stream's deliverer. */
export interface StreamStartArgs {
  name: string;
  /** The run (a stopped or restarted run's late calls and reports are refused). */
  run: number;
  kind: DestinationKind;
  destination: Json;
  stream: StreamInfo;
  /** Set when the main thread's adapters refuse the configuration: every attempt fails saying why. */
  refused?: string;
  checkpoint: number;
  gap?: OffsetGap;
  log: LogShare;
}

export interface StreamStopArgs {
  name: string;
  /** Offer every buffer to the destination once before stopping (shutdown, a lost lease). */
  flush: boolean;
}

/** Thread → main: the checkpoint moved (saved by the main thread) and/or a health snapshot. */
export interface StreamProgress {
  name: string;
  run: number;
  /** The thread the deliverer runs on (tests: not the main thread). */
  threadId: number;
  checkpoint?: number;
  snapshot: DelivererSnapshot;
}

export interface StreamRead {
  name: string;
  run: number;
  offset: number;
  options: ReadOptions;
}

export interface RoleCheckArgs {
  name: string;
  run: number;
  roleArn: string;
  action: string;
  resource: string;
}

export interface SchemaArgs {
  name: string;
  run: number;
  schemaConfiguration: Record<string, unknown>;
}
