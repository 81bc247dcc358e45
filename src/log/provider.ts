// The LogProvider: opens the named logs of every kind — the ingest log, Kinesis shard logs and
// Firehose delivery-stream logs — with one configuration, decides where each lives on disk, and
// sums what the logs report (damage found and repaired, torn tails, checkpoint gaps, failing
// writes such as a full disk) by kind, with counts only, for /health and /metrics. Two adapters:
// the segment log (embedded, here) and JetStream (log/jetstream/provider.ts); both keep their
// open logs' counts in one LogTally.

import { join } from 'node:path';
import type { Clock } from '../clock.js';
import { nodeFs, type LogFs } from './fs.js';
import type { Log, LogHealth } from './log.js';
import { emptyHealth, SegmentLog } from './segment-log.js';

export type LogKind = 'ingest' | 'kinesis' | 'firehose';
export const LOG_KINDS: readonly LogKind[] = ['ingest', 'kinesis', 'firehose'];

/** One kind's logs together: counts since this process started (damagedFiles: on disk now). */
export interface LogKindHealth extends Omit<LogHealth, 'failing'> {
  /** Logs of this kind open now. */
  open: number;
  /** Logs whose writes fail now, and of those, how many because the disk is full. */
  failingLogs: number;
  diskFullLogs: number;
}

export type LogsHealth = Record<LogKind, LogKindHealth>;

export interface LogProvider {
  /** Opens (creating when new) the log named `path` of a kind, e.g. ('kinesis', streamDir, shardId). */
  open(kind: LogKind, ...path: string[]): Promise<Log>;
  /** Whether a log, or a group of logs named by a path prefix, has anything stored. */
  exists(kind: LogKind, ...path: string[]): Promise<boolean>;
  /** Removes what a log or a group of logs (a path prefix) stored; they must be closed. */
  remove(kind: LogKind, ...path: string[]): Promise<void>;
  health(): LogsHealth;
  /** Releases what the provider holds beyond its logs (a connection); logs must be closed first. */
  close?(): Promise<void>;
}

export interface SegmentLogProviderOptions {
  dataDir: string;
  fsync: boolean;
  clock: Clock;
  /** File operations of every log (tests inject faults here). */
  fs?: LogFs;
  segmentBytes?: number;
  report?: (line: string) => void;
}

/** A name part: what stream names may contain, never a separator. */
const NAME_PART = /^[A-Za-z0-9_.-]{1,255}$/;

/** Throws unless every part of a log's name is a valid name part (every provider checks the same). */
export function checkLogName(path: readonly string[]): void {
  if (path.length === 0 || path.some((p) => !NAME_PART.test(p))) throw new Error(`invalid log name ${JSON.stringify(path)}`);
}

const COUNTERS = ['recordsLost', 'bytesLost', 'damagedRegions', 'recordsRepaired', 'tornBytes', 'indexRebuilds', 'checkpointGaps', 'writeFailures'] as const;

function emptyKind(): LogKindHealth {
  return { open: 0, failingLogs: 0, diskFullLogs: 0, ...emptyHealth() };
}

/** The health of a provider's logs by kind: the open ones' counts plus those of logs closed since start. */
export class LogTally {
  private readonly live = new Map<Log, LogKind>();
  /** Counts of logs closed or deleted since start. */
  private readonly closed: LogsHealth = { ingest: emptyKind(), kinesis: emptyKind(), firehose: emptyKind() };

  opened(log: Log, kind: LogKind): void {
    this.live.set(log, kind);
  }

  /** Called once per log when it closes: its counts move to the closed ones. */
  closedLog(log: Log): void {
    const kind = this.live.get(log);
    if (kind === undefined) return;
    this.live.delete(log);
    const h = log.health();
    for (const k of COUNTERS) this.closed[kind][k] += h[k];
  }

  health(): LogsHealth {
    const out: LogsHealth = { ingest: { ...this.closed.ingest }, kinesis: { ...this.closed.kinesis }, firehose: { ...this.closed.firehose } };
    for (const [log, kind] of this.live) {
      const h = log.health();
      const k = out[kind];
      k.open++;
      for (const c of COUNTERS) k[c] += h[c];
      k.damagedFiles += h.damagedFiles;
      if (h.failing) {
        k.failingLogs++;
        if (h.failing.diskFull) k.diskFullLogs++;
      }
    }
    return out;
  }
}

export class SegmentLogProvider implements LogProvider {
  private readonly tally = new LogTally();
  private readonly fs: LogFs;

  constructor(private readonly o: SegmentLogProviderOptions) {
    this.fs = o.fs ?? nodeFs;
  }

  async open(kind: LogKind, ...path: string[]): Promise<Log> {
    const log = await SegmentLog.open(this.dir(kind, path), {
      fsync: this.o.fsync,
      clock: this.o.clock,
      fs: this.fs,
      segmentBytes: this.o.segmentBytes,
      report: this.o.report,
      onClose: (l) => this.tally.closedLog(l),
    });
    this.tally.opened(log, kind);
    return log;
  }

  exists(kind: LogKind, ...path: string[]): Promise<boolean> {
    return this.fs.exists(this.dir(kind, path));
  }

  remove(kind: LogKind, ...path: string[]): Promise<void> {
    return this.fs.rm(this.dir(kind, path));
  }

  health(): LogsHealth {
    return this.tally.health();
  }

  /**
   * Where a log lives; the layout of earlier releases (ingest in log/ingest, streams by name). The
   * names `.` and `..` are valid stream names: they are spelled with %2E so that they stay one
   * directory below their kind's (`..` would otherwise be the data directory itself).
   */
  private dir(kind: LogKind, path: string[]): string {
    checkLogName(path);
    const root = kind === 'ingest' ? join(this.o.dataDir, 'log') : join(this.o.dataDir, kind);
    return join(root, ...path.map((p) => (p === '.' || p === '..' ? p.replaceAll('.', '%2E') : p)));
  }
}

const FAMILIES: Array<[name: string, type: 'gauge' | 'counter', help: string, key: keyof LogKindHealth]> = [
  ['pinstream_log_open', 'gauge', 'Logs open now.', 'open'],
  ['pinstream_log_records_lost_total', 'counter', 'Acknowledged records lost to damage (skipped; their bytes moved aside) since start.', 'recordsLost'],
  ['pinstream_log_bytes_lost_total', 'counter', 'Damaged bytes moved aside into *.damaged-* files since start.', 'bytesLost'],
  ['pinstream_log_damaged_regions_total', 'counter', 'Damaged places found in segments since start (records lost or restored).', 'damagedRegions'],
  ['pinstream_log_records_repaired_total', 'counter', 'Damaged records restored from their CRC since start.', 'recordsRepaired'],
  ['pinstream_log_torn_bytes_total', 'counter', 'Bytes of torn tails (incomplete, unacknowledged last writes) cut at open since start.', 'tornBytes'],
  ['pinstream_log_index_rebuilds_total', 'counter', 'Index files found damaged or inconsistent and rebuilt since start.', 'indexRebuilds'],
  ['pinstream_log_checkpoint_gaps_total', 'counter', 'Consumers found with a checkpoint beyond the end of their log since start.', 'checkpointGaps'],
  ['pinstream_log_damaged_files', 'gauge', 'Files of damaged bytes kept next to the segments of open logs.', 'damagedFiles'],
  ['pinstream_log_write_failures_total', 'counter', 'Failed write rounds (every append in them failed) since start.', 'writeFailures'],
  ['pinstream_log_write_failing', 'gauge', 'Logs whose writes fail now.', 'failingLogs'],
  ['pinstream_log_disk_full', 'gauge', 'Logs whose writes fail now because the disk is full.', 'diskFullLogs'],
];

/** Prometheus text of the logs' health, labelled by log kind only. */
export function renderLogMetrics(h: LogsHealth): string {
  let out = '';
  for (const [name, type, help, key] of FAMILIES) {
    out += `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`;
    for (const kind of LOG_KINDS) out += `${name}{log="${kind}"} ${h[kind][key]}\n`;
  }
  return out;
}
