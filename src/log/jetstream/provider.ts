// The LogProvider over NATS JetStream: one connection (to any of the configured servers; the
// client reconnects by itself and fails over between them), every named log a JetStream stream with
// file storage and the configured replicas (3 in a cluster, 1 on a single server). Start-up
// connects with a bounded timeout and checks that JetStream answers, so a node with a wrong URL
// stops with a message naming NATS instead of failing its first request.

import { jetstream, jetstreamManager, JetStreamApiError, DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import type { Clock } from '../../clock.js';
import type { Log } from '../log.js';
import { LogTally, type LogKind, type LogProvider, type LogsHealth } from '../provider.js';
import { JetStreamLog, natsErrorCode, type JetStreamLogContext } from './log.js';
import { PREFIX_RE, groupFilters, streamNames } from './names.js';
import { Publisher } from './publisher.js';

/** JetStream API error codes the provider answers itself. */
const STREAM_NAME_IN_USE = 10058;
const SUBJECTS_OVERLAP = 10065;

/** How long start-up waits for the first connection and JetStream's answer. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** Bound on each request to NATS (publish acknowledgements, stream info, reads). */
export const REQUEST_TIMEOUT_MS = 10_000;
/** Window in which JetStream drops a payload whose id it stored already (Nats-Msg-Id). */
export const DEDUP_WINDOW_MS = 2 * 60_000;
/** max_payload below this cannot hold every record callers may append (a 1 MiB Kinesis record plus key and framing): said at start. */
export const MIN_MAX_PAYLOAD = 2 * 1024 * 1024;
/** Stream-name prefix of a deployment (every node of one cluster must use the same). */
export const DEFAULT_PREFIX = 'PINSTREAM';

export interface JetStreamLogProviderOptions {
  /** NATS servers: `nats://host:port` or `host:port`, any of the cluster's. */
  servers: string[];
  clock: Clock;
  /** Replicas per stream (1..5; JetStream needs that many servers). Default 1. */
  replicas?: number;
  /** Starts every stream name and subject (tests isolate themselves with their own). */
  prefix?: string;
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  report?: (line: string) => void;
}

/** NATS could not be reached or has no JetStream: start-up stops with this message. */
export class NatsUnavailableError extends Error {}

export class JetStreamLogProvider implements LogProvider {
  private readonly tally = new LogTally();
  private readonly logs = new Set<JetStreamLog>();
  private readonly ctx: JetStreamLogContext;
  private readonly status: Promise<void>;

  private constructor(
    readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly prefix: string,
    private readonly replicas: number,
    clock: Clock,
    timeoutMs: number,
    report: (line: string) => void,
  ) {
    this.ctx = {
      nc,
      js: jetstream(nc, { timeout: timeoutMs }),
      jsm,
      publisher: new Publisher(nc),
      clock,
      timeoutMs,
      maxPayload: nc.info?.max_payload ?? 1024 * 1024,
      report: (line) => report(`jetstream-log: ${line}`),
      onClose: (log) => {
        this.logs.delete(log);
        this.tally.closedLog(log);
      },
    };
    this.status = this.followStatus();
  }

  /** Connects (bounded by connectTimeoutMs) and checks that JetStream answers; throws NatsUnavailableError otherwise. */
  /** The deployment's stream-name prefix (other per-deployment JetStream names derive from it). */
  get streamPrefix(): string {
    return this.prefix;
  }

  static async connect(o: JetStreamLogProviderOptions): Promise<JetStreamLogProvider> {
    const prefix = o.prefix ?? DEFAULT_PREFIX;
    if (!PREFIX_RE.test(prefix)) throw new RangeError(`invalid JetStream stream prefix ${JSON.stringify(prefix)}`);
    const replicas = o.replicas ?? 1;
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) throw new RangeError(`JetStream replicas must be 1..5, got ${replicas}`);
    const connectTimeoutMs = o.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    const servers = o.servers.join(', ');
    let nc: NatsConnection;
    try {
      nc = await connect({ servers: o.servers, timeout: connectTimeoutMs, maxReconnectAttempts: -1, reconnectTimeWait: 250, name: 'pinstream' });
    } catch (e) {
      throw new NatsUnavailableError(`NATS at ${servers} is unreachable: ${(e as Error).message}`, { cause: e });
    }
    try {
      const jsm = await withTimeout(jetstreamManager(nc, { timeout: connectTimeoutMs, checkAPI: true }), connectTimeoutMs, 'JetStream did not answer');
      const report = o.report ?? ((line: string) => process.stderr.write(`${line}\n`));
      const maxPayload = nc.info?.max_payload ?? 0;
      if (maxPayload < MIN_MAX_PAYLOAD) {
        report(`jetstream-log: the NATS servers take messages up to ${maxPayload} bytes (max_payload); records larger than that (a 1 MiB Kinesis record with its key) are refused: set max_payload to at least ${MIN_MAX_PAYLOAD} in nats-server's configuration`);
      }
      return new JetStreamLogProvider(nc, jsm, prefix, replicas, o.clock, o.requestTimeoutMs ?? REQUEST_TIMEOUT_MS, report);
    } catch (e) {
      await nc.close().catch(() => undefined);
      throw new NatsUnavailableError(`NATS at ${servers} has no usable JetStream (start nats-server with -js): ${(e as Error).message}`, { cause: e });
    }
  }

  async open(kind: LogKind, ...path: string[]): Promise<Log> {
    const { stream, subject } = streamNames(this.prefix, kind, path);
    await this.ensureStream(stream, subject, kind, path);
    const log = new JetStreamLog(stream, subject, this.ctx);
    await log.init();
    this.logs.add(log);
    this.tally.opened(log, kind);
    return log;
  }

  /** Creates the stream unless it exists; two nodes creating it at once both end up with the one stream. */
  private async ensureStream(stream: string, subject: string, kind: LogKind, path: string[]): Promise<void> {
    try {
      await this.jsm.streams.info(stream);
      return;
    } catch (e) {
      if (!(e instanceof JetStreamApiError && e.code === 10059)) throw e;
    }
    try {
      await this.jsm.streams.add({
        name: stream,
        subjects: [subject],
        description: JSON.stringify({ pinstream: 'log', kind, path }),
        storage: StorageType.File,
        num_replicas: this.replicas,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        duplicate_window: DEDUP_WINDOW_MS * 1_000_000,
        allow_direct: true,
      });
    } catch (e) {
      // Created meanwhile by another node (same config: add answers it; another config: this error).
      if (e instanceof JetStreamApiError && e.code === STREAM_NAME_IN_USE) return;
      // Two nodes adding the same stream at the same moment: the server may answer the loser with
      // "subjects overlap" (seen in CI under load). It is no conflict if the stream of this very
      // name now holds the subject; a stream of another name holding it is one, and is reported.
      if (e instanceof JetStreamApiError && e.code === SUBJECTS_OVERLAP) {
        const now = await this.jsm.streams.info(stream).catch(() => undefined);
        if (now?.config.subjects?.includes(subject)) return;
      }
      throw e;
    }
  }

  /** The streams whose subject is the log's or below it (a group of logs named by a path prefix). */
  private async streamsOf(kind: LogKind, path: string[]): Promise<string[]> {
    const out = new Set<string>();
    for (const filter of groupFilters(this.prefix, kind, path)) {
      for await (const name of this.jsm.streams.names(filter)) out.add(name);
    }
    return [...out];
  }

  async exists(kind: LogKind, ...path: string[]): Promise<boolean> {
    return (await this.streamsOf(kind, path)).length > 0;
  }

  async remove(kind: LogKind, ...path: string[]): Promise<void> {
    for (const name of await this.streamsOf(kind, path)) {
      try {
        await this.jsm.streams.delete(name);
      } catch (e) {
        if (!(e instanceof JetStreamApiError && e.code === 10059)) throw e;
      }
    }
  }

  health(): LogsHealth {
    return this.tally.health();
  }

  /** Every stream under this provider's prefix (tests clean up with it). */
  async removeAll(): Promise<void> {
    for (const kind of ['ingest', 'kinesis', 'firehose'] as const) {
      for await (const name of this.jsm.streams.names(`${this.prefix}.log.${kind}.>`)) await this.jsm.streams.delete(name).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.logs].map((l) => l.close()));
    this.ctx.publisher.close();
    await this.nc.close();
    await this.status;
  }

  /** After a reconnect, every open log re-reads its stream's end (appends of other nodes meanwhile). */
  private async followStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') this.ctx.report(`connection to NATS lost (${String(s.server ?? '')}); reconnecting`);
      if (s.type === 'reconnect') {
        this.ctx.report(`reconnected to NATS (${String(s.server ?? '')})`);
        for (const log of this.logs) log.refresh().catch((e) => this.ctx.report(`${log.stream}: refresh after reconnect failed (${natsErrorCode(e)})`));
      }
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}
