// The Kinesis data plane: PutRecord(s) onto shard logs (routing by MD5 hash key, one append per
// shard, per-record results), shard iterators, and GetRecords with MillisBehindLatest and
// ChildShards at the end of closed shards. Each record in a shard log is
// [u16 partition-key length][partition key][data], or that frame encrypted when the stream was
// (encryption.ts; the first byte tells them apart); the log supplies offset and arrival time.

import type { Clock } from '../clock.js';
import type { Log } from '../log/log.js';
import { LogWriteError, storageFailureText } from '../log/errors.js';
import { AWS_JSON_BYTES, AWS_JSON_FORM, blobsToBase64, timestampOut, type HasAwsJsonForm } from '../http/awsjson.js';
import type { Json } from '../http/shape.js';
import { decodeSequenceNumber, hashKeyHex, sequenceNumber, shardIdOf } from './keys.js';
import { expiredIterator, invalidArgument, resourceNotFound, throughputExceeded } from './errors.js';
import { TokenSigner } from './iterators.js';
import { ShardMetrics } from './metrics.js';
import {
  ITERATOR_TTL_MS,
  MAX_GET_RECORDS_BYTES,
  SHARD_READ_BYTES_PER_SEC,
  SHARD_READ_CALLS_PER_SEC,
  SHARD_WRITE_BYTES_PER_SEC,
  SHARD_WRITE_RECORDS_PER_SEC,
} from './limits.js';
import type { ShardState, StreamRegistry, StreamState } from './streams.js';
import { ENCRYPTED_FRAME_V1, RecordDamage, incarnationOf } from './encryption.js';

export interface PutEntry {
  data: Buffer;
  partitionKey: string;
  /** Explicit hash key already validated, as 32-digit hex. */
  hashHex?: string;
}

export type PutResult =
  | { SequenceNumber: string; ShardId: string }
  | { ErrorCode: string; ErrorMessage: string };

export type IteratorType = 'AT_SEQUENCE_NUMBER' | 'AFTER_SEQUENCE_NUMBER' | 'AT_TIMESTAMP' | 'TRIM_HORIZON' | 'LATEST';

/** A record as GetRecords and SubscribeToShard answer it; writes its own JSON form (awsjson.ts). */
export class OutRecord implements HasAwsJsonForm {
  constructor(
    readonly SequenceNumber: string,
    readonly ApproximateArrivalTimestamp: Date,
    readonly Data: Buffer,
    readonly PartitionKey: string,
    /** Present on records stored encrypted, as AWS marks them. */
    readonly EncryptionType?: 'KMS',
  ) {}

  [AWS_JSON_FORM](): Json {
    const j: Json = {
      SequenceNumber: this.SequenceNumber,
      ApproximateArrivalTimestamp: this.ApproximateArrivalTimestamp.getTime() / 1000,
      Data: this.Data.toString('base64'),
      PartitionKey: this.PartitionKey,
    };
    if (this.EncryptionType !== undefined) j.EncryptionType = this.EncryptionType;
    return j;
  }
}

/**
 * `out` (a GetRecords answer or a SubscribeToShard event) answering its awsJson body as bytes it
 * writes itself: `Records` record by record, base64 straight into the buffer, the other members
 * through JSON.stringify after it, in their order. The same text the generic encoder writes.
 */
export function withRecordsJson<T extends { Records: OutRecord[] }>(out: T): T {
  Object.defineProperty(out, AWS_JSON_BYTES, { value: () => recordsJsonBody(out), enumerable: false });
  return out;
}

function recordsJsonBody(out: { Records: OutRecord[] }): Buffer {
  const { Records: records, ...rest } = out;
  const restJson = JSON.stringify(blobsToBase64(rest));
  const prefix = '{"Records":[';
  const suffix = ']' + (restJson === '{}' ? '}' : ',' + restJson.slice(1));
  // An upper bound, so one pass writes it all: a partition key's JSON text is at most 6 bytes per
  // UTF-16 unit (\uXXXX) plus its quotes; the rest of a record's text is under RECORD_JSON_FIXED.
  let bound = prefix.length + Buffer.byteLength(suffix);
  for (const r of records) bound += RECORD_JSON_FIXED + 6 * r.PartitionKey.length + 4 * Math.ceil(r.Data.length / 3);
  // Room past the bound: text that overruns it is caught below instead of cut short by write().
  const buf = Buffer.allocUnsafe(bound + 8);
  // Sequence numbers are decimal digits and times finite numbers: their JSON text is themselves.
  // Everything but the partition key is ASCII (one byte a character).
  let pos = buf.write(prefix, 0, 'latin1');
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    const head = `${i > 0 ? ',' : ''}{"SequenceNumber":"${r.SequenceNumber}","ApproximateArrivalTimestamp":${r.ApproximateArrivalTimestamp.getTime() / 1000},"Data":"`;
    pos += buf.write(head, pos, 'latin1');
    pos += buf.write(r.Data.toString('base64'), pos, 'latin1');
    const tail = `","PartitionKey":${JSON.stringify(r.PartitionKey)}${r.EncryptionType !== undefined ? `,"EncryptionType":"${r.EncryptionType}"` : ''}}`;
    pos += buf.write(tail, pos, 'utf8');
  }
  pos += buf.write(suffix, pos, 'utf8');
  if (pos > bound) throw new Error(`GetRecords body: ${pos} bytes reached the ${bound}-byte bound`);
  return buf.subarray(0, pos);
}

/** Bytes of a record's JSON text besides its data and partition key (sequence number, time, names, separators), with room to spare. */
const RECORD_JSON_FIXED = 256;

export interface ChildShard {
  ShardId: string;
  ParentShards: string[];
  HashKeyRange: { StartingHashKey: string; EndingHashKey: string };
}

export interface ShardRead {
  records: OutRecord[];
  nextOffset: number;
  /** True when a closed shard has been read to its end. */
  ended: boolean;
  millisBehindLatest: number;
}

/** Per-shard one-second windows, used only when shard limits are switched on. */
class ShardMeter {
  private windows = new Map<string, { second: number; records: number; bytes: number; calls: number }>();
  take(key: string, now: number, records: number, bytes: number, calls: number) {
    const second = Math.floor(now / 1000);
    let w = this.windows.get(key);
    if (!w || w.second !== second) this.windows.set(key, (w = { second, records: 0, bytes: 0, calls: 0 }));
    w.records += records;
    w.bytes += bytes;
    w.calls += calls;
    return w;
  }
}

export class KinesisData {
  private meter = new ShardMeter();
  /** Shard-level counters, rendered on /metrics for the metrics a stream has enabled. */
  readonly metrics = new ShardMetrics();

  constructor(
    private registry: StreamRegistry,
    private signer: TokenSigner,
    private clock: Clock,
    private shardLimits: boolean,
  ) {}

  async put(s: StreamState, entries: PutEntry[]): Promise<PutResult[]> {
    const byShard = new Map<ShardState, number[]>();
    entries.forEach((e, i) => {
      const shard = this.registry.route(s, e.hashHex ?? hashKeyHex(e.partitionKey));
      let list = byShard.get(shard);
      if (!list) byShard.set(shard, (list = []));
      list.push(i);
    });
    const results: PutResult[] = new Array(entries.length);
    const now = this.clock.now();
    // Decided when the call arrives (the caller reports EncryptionType from the same state).
    const incarnation = s.encryption ? incarnationOf(s) : undefined;
    await Promise.all(
      [...byShard].map(async ([shard, indexes]) => {
        const admitted = this.shardLimits ? this.admitWrites(s, shard, entries, indexes, results, now) : indexes;
        if (admitted.length === 0) return;
        try {
          const plain = frames(entries, admitted);
          const payloads = incarnation === undefined ? plain : await this.registry.keys.sealAll(incarnation, shard.index, plain);
          // Tracked from routing on, log opening included: a reshard that closes this shard while
          // its log is still opening must wait for this append before taking the shard's end.
          const appended = this.registry.track(
            s,
            shard.index,
            this.registry.log(s, shard.index).then((log) => log.append(payloads)),
          );
          const { firstOffset, timestamp, offsets } = await appended;
          this.metrics.add(s, shard.index, 'IncomingRecords', admitted.length);
          this.metrics.add(s, shard.index, 'IncomingBytes', admitted.reduce((n, i) => n + entries[i].data.length + Buffer.byteLength(entries[i].partitionKey), 0));
          const shardId = shardIdOf(shard.index);
          for (let k = 0; k < admitted.length; k++) {
            // offsets: set when the log could not keep the batch contiguous (JetStream, another node's records between).
            results[admitted[k]] = { SequenceNumber: sequenceNumber(shard.createdMs, shard.index, (offsets?.[k] ?? firstOffset + k) + 1, timestamp), ShardId: shardId };
          }
        } catch (e) {
          console.error(`pinstream: kinesis append to ${s.name}/${shardIdOf(shard.index)} failed`, e);
          // InternalFailure, as AWS answers a record it could not store; clients resend failed records.
          const reason = e instanceof LogWriteError ? ` The record was not stored: ${storageFailureText(e)}.` : '';
          for (const i of admitted) results[i] = { ErrorCode: 'InternalFailure', ErrorMessage: `Internal service failure.${reason}` };
        }
      }),
    );
    return results;
  }

  /**
   * The oldest record still within the stream's retention. Retention frees disk by whole segments
   * (SegmentLog.deleteOlderThan); this hides the expired records a segment may still hold.
   */
  private async trimHorizon(s: StreamState, log: Log): Promise<number> {
    const cutoff = Math.max(this.clock.now() - s.retentionHours * 3600_000, s.expiredBeforeMs ?? 0);
    return Math.max(log.startOffset(), await log.offsetForTimestamp(cutoff));
  }

  /** Position of a new iterator, as a shard log offset. */
  async iteratorOffset(s: StreamState, shard: ShardState, type: IteratorType, seq?: string, timestampMs?: number): Promise<number> {
    const log = await this.registry.log(s, shard.index);
    switch (type) {
      case 'TRIM_HORIZON':
        return this.trimHorizon(s, log);
      case 'LATEST':
        return shard.endOffset ?? log.endOffset();
      case 'AT_TIMESTAMP':
        return Math.max(await this.trimHorizon(s, log), await log.offsetForTimestamp(timestampMs!));
      case 'AT_SEQUENCE_NUMBER':
      case 'AFTER_SEQUENCE_NUMBER': {
        // Besides the shard index, the number carries its shard's creation second and a position
        // the shard has reached (records are acknowledged only once durable), so a number of
        // another stream or a made-up one does not park the iterator where no record will come.
        const d = decodeSequenceNumber(seq!);
        const end = shard.endOffset ?? log.endOffset();
        if (!d || d.shardIndex !== shard.index || d.shardCreatedSec !== Math.floor(shard.createdMs / 1000) || d.counter > end) {
          throw invalidArgument(
            `StartingSequenceNumber ${seq} used in GetShardIterator on shard ${shardIdOf(shard.index)} in stream ${s.name} under account ` +
              `${this.registry.opts.accountId} is invalid because it did not come from this stream.`,
          );
        }
        const offset = type === 'AT_SEQUENCE_NUMBER' ? Math.max(0, d.counter - 1) : d.counter;
        return Math.max(log.startOffset(), offset);
      }
    }
  }

  iterator(s: StreamState, shard: ShardState, offset: number): string {
    return this.signer.encodeIterator({
      stream: s.name,
      streamCreatedMs: s.createdMs,
      shardIndex: shard.index,
      offset,
      issuedMs: this.clock.now(),
    });
  }

  /** Validates an iterator: authentic, not expired, and its stream still the same incarnation. */
  resolveIterator(token: string): { stream: StreamState; shard: ShardState; offset: number } {
    const p = this.signer.decodeIterator(token);
    if (!p) throw invalidArgument('Invalid ShardIterator.');
    const now = this.clock.now();
    if (now - p.issuedMs > ITERATOR_TTL_MS) {
      throw expiredIterator(
        `Iterator expired. The iterator was created at time ${new Date(p.issuedMs).toUTCString()} while right now it is ` +
          `${new Date(now).toUTCString()} which is further in the future than the tolerated delay of ${ITERATOR_TTL_MS} milliseconds.`,
      );
    }
    const stream = this.registry.getWritable(p.stream);
    if (stream.createdMs !== p.streamCreatedMs) throw this.registry.notFound(p.stream);
    const shard = this.registry.shard(stream, p.shardIndex);
    if (!shard) throw resourceNotFound(`Shard ${shardIdOf(p.shardIndex)} in stream ${p.stream} under account ${this.registry.opts.accountId} does not exist`);
    return { stream, shard, offset: p.offset };
  }

  /**
   * Reads a shard. `metered: false` is for enhanced fan-out, whose throughput is per consumer and
   * not part of the shard's shared GetRecords budget (5 calls/s, 2 MiB/s).
   */
  async read(s: StreamState, shard: ShardState, offset: number, limit: number, metered = true): Promise<ShardRead> {
    const now = this.clock.now();
    const meter = this.shardLimits && metered;
    if (meter) {
      const w = this.meter.take(`r:${s.name}/${shard.index}`, now, 0, 0, 1);
      if (w.calls > SHARD_READ_CALLS_PER_SEC || w.bytes > SHARD_READ_BYTES_PER_SEC) {
        this.metrics.add(s, shard.index, 'ReadProvisionedThroughputExceeded', 1);
        throw throughputExceeded(`Rate exceeded for shard ${shardIdOf(shard.index)} in stream ${s.name} under account ${this.registry.opts.accountId}.`);
      }
    }
    const log = await this.registry.log(s, shard.index);
    let end = shard.endOffset ?? log.endOffset();
    if (offset > end && shard.endOffset === undefined) {
      // Iterators are signed by this server, so the shard really reached this offset before: the
      // records up to it were lost since. The log reports that and continues after it, so no
      // sequence number this consumer has passed is handed out again.
      await log.checkConsumer('a shard iterator', offset);
      end = log.endOffset();
    }
    // Records past retention are gone even while their segment is still on disk.
    offset = Math.max(offset, await this.trimHorizon(s, log));
    const max = Math.min(limit, Math.max(0, end - offset));
    const got = max > 0 ? await log.read(offset, { maxRecords: max, maxBytes: MAX_GET_RECORDS_BYTES }) : { records: [], nextOffset: offset };
    let bytes = 0;
    const records: OutRecord[] = [];
    // Encrypted records may name a data key another node stored moments ago: fetched first if so.
    const keyIds = new Set<number>();
    for (const r of got.records) if (r.payload.length >= 5 && r.payload[0] === ENCRYPTED_FRAME_V1) keyIds.add(r.payload.readUInt32BE(1));
    if (keyIds.size > 0) await this.registry.keys.ensure(incarnationOf(s), keyIds);
    for (const r of got.records) {
      bytes += r.payload.length;
      const rec = this.decode(s, shard, r.payload, r.offset);
      if (!rec) continue;
      records.push(
        new OutRecord(
          sequenceNumber(shard.createdMs, shard.index, r.offset + 1, r.timestamp),
          timestampOut(r.timestamp),
          rec.data,
          rec.partitionKey,
          rec.encrypted ? 'KMS' : undefined,
        ),
      );
    }
    if (meter) this.meter.take(`r:${s.name}/${shard.index}`, now, 0, bytes, 0);
    const nextOffset = Math.max(got.nextOffset, Math.min(offset, end));
    const ended = shard.endOffset !== undefined && nextOffset >= shard.endOffset;
    const last = got.records[got.records.length - 1];
    const behind = nextOffset >= end ? 0 : Math.max(0, now - (last?.timestamp ?? now));
    this.metrics.add(s, shard.index, 'OutgoingRecords', records.length);
    this.metrics.add(s, shard.index, 'OutgoingBytes', records.reduce((n, r) => n + r.Data.length, 0));
    this.metrics.set(s, shard.index, 'IteratorAgeMilliseconds', behind);
    return { records, nextOffset, ended, millisBehindLatest: behind };
  }

  /** Stored records that did not open and were skipped, since start (see `decode`). */
  damagedRecords = 0;

  /**
   * A stored frame's partition key and data. A frame that does not decode (an encrypted one that
   * fails authentication, or a frame cut short) passed the log's checksum, so it was written so or
   * altered on purpose: it is reported and skipped like a record lost to damage, never returned.
   */
  private decode(s: StreamState, shard: ShardState, payload: Buffer, offset: number): { partitionKey: string; data: Buffer; encrypted: boolean } | undefined {
    try {
      const encrypted = payload.length > 0 && payload[0] >= 0x80;
      const plain = encrypted ? this.registry.keys.open(incarnationOf(s), shard.index, payload) : payload;
      if (plain.length < 2) throw new RecordDamage(`a ${plain.length}-byte frame`);
      const pkLen = plain.readUInt16BE(0);
      if (2 + pkLen > plain.length) throw new RecordDamage(`partition key length ${pkLen} beyond the ${plain.length}-byte frame`);
      return { partitionKey: plain.toString('utf8', 2, 2 + pkLen), data: plain.subarray(2 + pkLen), encrypted };
    } catch (e) {
      if (!(e instanceof RecordDamage)) throw e;
      this.damagedRecords++;
      console.error(`pinstream: kinesis record at offset ${offset} of ${s.name}/${shardIdOf(shard.index)} is damaged and was skipped: ${e.message}`);
      return undefined;
    }
  }

  childShards(s: StreamState, shard: ShardState): ChildShard[] {
    return s.shards
      .filter((c) => c.parent === shard.index || c.adjacentParent === shard.index)
      .map((c) => ({
        ShardId: shardIdOf(c.index),
        ParentShards: [c.parent, c.adjacentParent].filter((x): x is number => x !== undefined).map(shardIdOf),
        HashKeyRange: hashKeyRange(c),
      }));
  }

  private admitWrites(s: StreamState, shard: ShardState, entries: PutEntry[], indexes: number[], results: PutResult[], now: number): number[] {
    const admitted: number[] = [];
    for (const i of indexes) {
      const size = entries[i].data.length + Buffer.byteLength(entries[i].partitionKey);
      const w = this.meter.take(`w:${s.name}/${shard.index}`, now, 1, size, 0);
      if (w.records > SHARD_WRITE_RECORDS_PER_SEC || w.bytes > SHARD_WRITE_BYTES_PER_SEC) {
        this.meter.take(`w:${s.name}/${shard.index}`, now, -1, -size, 0);
        this.metrics.add(s, shard.index, 'WriteProvisionedThroughputExceeded', 1);
        results[i] = {
          ErrorCode: 'ProvisionedThroughputExceededException',
          ErrorMessage: `Rate exceeded for shard ${shardIdOf(shard.index)} in stream ${s.name} under account ${this.registry.opts.accountId}.`,
        };
      } else {
        admitted.push(i);
      }
    }
    return admitted;
  }
}

export function hashKeyRange(sh: ShardState): { StartingHashKey: string; EndingHashKey: string } {
  return { StartingHashKey: BigInt('0x' + sh.startHex).toString(), EndingHashKey: BigInt('0x' + sh.endHex).toString() };
}

/**
 * The frames of the admitted entries, as views into one buffer: a PutRecords of 500 records makes
 * one allocation per shard instead of 500 (the log copies them into its batch anyway).
 */
function frames(entries: PutEntry[], admitted: number[]): Buffer[] {
  let total = 0;
  const pkLens = new Array<number>(admitted.length);
  for (let k = 0; k < admitted.length; k++) {
    const e = entries[admitted[k]];
    pkLens[k] = Buffer.byteLength(e.partitionKey);
    total += 2 + pkLens[k] + e.data.length;
  }
  const buf = Buffer.allocUnsafe(total);
  const out = new Array<Buffer>(admitted.length);
  let pos = 0;
  for (let k = 0; k < admitted.length; k++) {
    const e = entries[admitted[k]];
    const start = pos;
    buf.writeUInt16BE(pkLens[k], pos);
    pos += 2;
    pos += buf.write(e.partitionKey, pos, 'utf8');
    pos += e.data.copy(buf, pos);
    out[k] = buf.subarray(start, pos);
  }
  return out;
}
