// The Kinesis Data Streams API (awsJson1.1/CBOR, target prefix Kinesis_20131202, signing name
// "kinesis"): each operation's business rules and output shape (reference/kinesis-firehose.md §2),
// over the stream registry (control plane) and KinesisData (data plane). Input shapes, lengths,
// ranges, patterns and enums are the model's, checked before a handler runs (src/models/validate.ts).

import type { Clock } from '../clock.js';
import { ServiceError, timestampOut, type JsonRpcService, type Operations } from '../http/awsjson.js';
import { model as kinesisModel } from '../models/generated/kinesis.js';
import type { Inputs, PutRecordsRequestEntry, ShardFilter } from '../models/generated/kinesis-inputs.js';
import { type ShardState, type StreamMode, type StreamRegistry, type StreamState } from './streams.js';
import { hashKeyRange, withRecordsJson, type IteratorType, type KinesisData, type PutEntry } from './records.js';
import { decodeSequenceNumber, evenRanges, parseHashKey, parseShardId, sequenceNumber, shardIdOf, toHex } from './keys.js';
import { adminOperations } from './admin.js';
import { checkTagCharacters, mergeTags } from './tags.js';
import {
  expiredNextToken,
  internalFailure,
  invalidArgument,
  limitExceeded,
  resourceInUse,
  resourceNotFound,
  throughputExceeded,
  validation,
} from './errors.js';
import type { TokenSigner } from './iterators.js';
import {
  DEFAULT_DESCRIBE_SHARDS,
  DEFAULT_LIST_SHARDS,
  DEFAULT_LIST_STREAMS,
  LIST_SHARDS_TOKEN_TTL_MS,
  MAX_GET_RECORDS_COUNT,
  MAX_LIST_TAGS,
  MAX_JSON_REQUEST_BYTES,
  MAX_PUT_RECORDS_BYTES,
  MAX_RETENTION_HOURS,
  MIN_RETENTION_HOURS,
  DEFAULT_RECORD_SIZE_KIB,
  ON_DEMAND_SHARDS,
} from './limits.js';

export const KINESIS_TARGET_PREFIX = 'Kinesis_20131202';
export const KINESIS_SIGNING_NAME = 'kinesis';
/** AWS allows this many UpdateShardCount calls per stream in a rolling 24 hours. */
export const MAX_SCALINGS_PER_DAY = 10;

export interface KinesisServices {
  registry: StreamRegistry;
  data: KinesisData;
  signer: TokenSigner;
  clock: Clock;
}

export function kinesisService(k: KinesisServices, extra: Pick<JsonRpcService, 'rawOperations'> & { operations?: JsonRpcService['operations'] } = {}): JsonRpcService {
  const { registry, data, signer, clock } = k;
  const accountId = registry.opts.accountId;
  const stream = (i: { StreamName?: string; StreamARN?: string }) => registry.get(registry.resolveName(i));

  /**
   * The shard a ShardId names, in any of AWS's lenient forms (the model has checked its pattern).
   * AWS words a missing shard by operation: GetShardIterator says the canonical id "does not
   * exist", resharding operations "Could not find shard" it; an id naming no index at all is
   * echoed as given.
   */
  const shardOf = (s: StreamState, id: string, op: 'GetShardIterator' | 'reshard' = 'reshard'): ShardState => {
    const index = shardIndexOf(s.name, id);
    const sh = registry.shard(s, index);
    if (!sh) throw missingShard(s.name, index, op);
    return sh;
  };
  const shardIndexOf = (streamName: string, id: string): number => {
    const index = parseShardId(id);
    if (index === undefined) throw resourceNotFound(`Could not find shard ${id} in stream ${streamName} under account ${accountId}.`);
    return index;
  };
  const missingShard = (streamName: string, index: number, op: 'GetShardIterator' | 'reshard') =>
    resourceNotFound(
      op === 'GetShardIterator'
        ? `Shard ${shardIdOf(index)} in stream ${streamName} under account ${accountId} does not exist`
        : `Could not find shard ${shardIdOf(index)} in stream ${streamName} under account ${accountId}.`,
    );

  const shardShape = (sh: ShardState) => ({
    ShardId: shardIdOf(sh.index),
    ...(sh.parent !== undefined ? { ParentShardId: shardIdOf(sh.parent) } : {}),
    ...(sh.adjacentParent !== undefined ? { AdjacentParentShardId: shardIdOf(sh.adjacentParent) } : {}),
    HashKeyRange: hashKeyRange(sh),
    SequenceNumberRange: {
      StartingSequenceNumber: sequenceNumber(sh.createdMs, sh.index, 0, sh.createdMs),
      ...(sh.endOffset !== undefined ? { EndingSequenceNumber: sequenceNumber(sh.createdMs, sh.index, sh.endOffset, sh.closedMs!) } : {}),
    },
  });

  const encryption = (s: StreamState) => (s.encryption ? { EncryptionType: 'KMS', KeyId: s.encryption.keyId } : { EncryptionType: 'NONE' });

  const summary = (s: StreamState) => ({
    StreamName: s.name,
    StreamARN: registry.arn(s.name),
    StreamStatus: s.status,
    StreamModeDetails: { StreamMode: s.mode },
    StreamCreationTimestamp: timestampOut(s.createdMs),
  });

  const operations: Operations<Inputs> = {
    async CreateStream(i) {
      const name = registry.resolveName({ StreamName: i.StreamName });
      const mode = (i.StreamModeDetails?.StreamMode ?? 'PROVISIONED') as StreamMode;
      let count: number;
      if (mode === 'ON_DEMAND') {
        if (i.ShardCount !== undefined) throw invalidArgument('ShardCount is not supported for streams in ON_DEMAND mode.');
        count = ON_DEMAND_SHARDS;
      } else {
        // Optional in the current model (ON_DEMAND streams have none), required for PROVISIONED:
        // answered as the model that still required it did.
        if (i.ShardCount === undefined) throw validation(null, 'shardCount', 'Member must not be null');
        count = i.ShardCount;
      }
      const tags = mergeTags(undefined, i.Tags ?? {}, 'stream', `Failed to add tags to stream ${name} under account ${accountId}`);
      await registry.create(name, count, mode, tags, i.MaxRecordSizeInKiB);
      return undefined;
    },

    async DeleteStream(i) {
      const s = stream(i);
      const active = s.consumers.filter((c) => c.status !== 'DELETING');
      if (active.length > 0 && i.EnforceConsumerDeletion !== true) {
        throw resourceInUse(`Stream ${s.name} under account ${accountId} has ${active.length} registered consumers; set EnforceConsumerDeletion to delete it.`);
      }
      await registry.delete(s.name);
      return undefined;
    },

    DescribeStream(i) {
      const s = stream(i);
      const limit = i.Limit ?? DEFAULT_DESCRIBE_SHARDS;
      let shards = s.status === 'CREATING' ? [] : [...s.shards].sort((a, b) => a.index - b.index);
      if (i.ExclusiveStartShardId !== undefined) {
        const after = parseShardId(i.ExclusiveStartShardId) ?? -1;
        shards = shards.filter((x) => x.index > after);
      }
      const page = shards.slice(0, Math.min(limit, DEFAULT_DESCRIBE_SHARDS));
      return {
        StreamDescription: {
          ...summary(s),
          Shards: page.map(shardShape),
          HasMoreShards: shards.length > page.length,
          RetentionPeriodHours: s.retentionHours,
          EnhancedMonitoring: [{ ShardLevelMetrics: s.shardLevelMetrics ?? [] }],
          ...encryption(s),
        },
      };
    },

    DescribeStreamSummary(i) {
      const s = stream(i);
      return {
        StreamDescriptionSummary: {
          ...summary(s),
          RetentionPeriodHours: s.retentionHours,
          EnhancedMonitoring: [{ ShardLevelMetrics: s.shardLevelMetrics ?? [] }],
          ...encryption(s),
          OpenShardCount: s.shards.filter((x) => x.closedMs === undefined).length,
          ConsumerCount: s.consumers.filter((c) => c.status !== 'DELETING').length,
          MaxRecordSizeInKiB: s.maxRecordSizeKiB ?? DEFAULT_RECORD_SIZE_KIB,
        },
      };
    },

    ListStreams(i) {
      const limit = i.Limit ?? DEFAULT_LIST_STREAMS;
      let after = i.ExclusiveStartStreamName;
      if (i.NextToken !== undefined) {
        const t = signer.decodeToken<{ after: string }>(i.NextToken);
        if (!t) throw invalidArgument('Invalid NextToken.');
        after = t.after;
      }
      const all = registry.list().filter((s) => after === undefined || s.name > after);
      const page = all.slice(0, Math.min(limit, DEFAULT_LIST_STREAMS));
      const more = all.length > page.length;
      return {
        StreamNames: page.map((s) => s.name),
        HasMoreStreams: more,
        ...(more ? { NextToken: signer.encodeToken({ after: page[page.length - 1].name }) } : {}),
        StreamSummaries: page.map(summary),
      };
    },

    async ListShards(i) {
      let name: string;
      let after = -1;
      let filter: ShardFilter | undefined = i.ShardFilter;
      if (i.NextToken !== undefined) {
        if (i.StreamName !== undefined) throw invalidArgument('NextToken and StreamName cannot be provided together.');
        const t = signer.decodeToken<{ stream: string; after: number; issued: number; filter?: ShardFilter }>(i.NextToken);
        if (!t) throw invalidArgument('Invalid NextToken.');
        if (clock.now() - t.issued > LIST_SHARDS_TOKEN_TTL_MS) throw expiredNextToken('The NextToken has expired.');
        name = t.stream;
        after = t.after;
        // A token's filter went through JSON: its timestamp came back as text, made a Date again here.
        filter = t.filter && { ...t.filter, ...(t.filter.Timestamp !== undefined ? { Timestamp: new Date(t.filter.Timestamp) } : {}) };
      } else {
        if (i.StreamName === undefined && i.StreamARN === undefined) throw invalidArgument('Either NextToken or StreamName should be provided.');
        name = registry.resolveName(i);
        if (i.ExclusiveStartShardId !== undefined) after = parseShardId(i.ExclusiveStartShardId) ?? -1;
      }
      const s = registry.get(name);
      const max = Math.min(i.MaxResults ?? DEFAULT_LIST_SHARDS, DEFAULT_LIST_SHARDS);
      const shards = filterShards(s, filter, clock.now()).filter((x) => x.index > after).sort((a, b) => a.index - b.index);
      const page = shards.slice(0, max);
      const more = shards.length > page.length;
      return {
        Shards: page.map(shardShape),
        ...(more
          ? { NextToken: signer.encodeToken({ stream: s.name, after: page[page.length - 1].index, issued: clock.now(), filter }) }
          : {}),
      };
    },

    async PutRecord(i) {
      const s = registry.getWritable(registry.resolveName(i));
      const entry = putEntry(i, 'data', recordLimit(s));
      checkOrdering(s, i.SequenceNumberForOrdering);
      const kms = sealed(s); // read with the put, which seals by the same state
      const [r] = await data.put(s, [entry]);
      if ('ErrorCode' in r) throw errorFor(r.ErrorCode, r.ErrorMessage);
      return { ...r, ...kms };
    },

    async PutRecords(i) {
      const s = registry.getWritable(registry.resolveName(i));
      let total = 0;
      const entries = i.Records.map((r, n) => {
        const e = putEntry(r, `records.${n + 1}.member.data`, recordLimit(s));
        total += e.data.length + Buffer.byteLength(e.partitionKey);
        return e;
      });
      if (total > MAX_PUT_RECORDS_BYTES) {
        throw invalidArgument(`Records size (${total} bytes, data plus partition keys) exceeds the limit of ${MAX_PUT_RECORDS_BYTES} bytes (5 MiB) per PutRecords request.`);
      }
      const kms = sealed(s);
      const results = await data.put(s, entries);
      return { FailedRecordCount: results.filter((r) => 'ErrorCode' in r).length, Records: results, ...kms };
    },

    async GetShardIterator(i) {
      // An unknown stream is worded as the missing shard, as AWS answers it.
      const name = registry.resolveName(i);
      const index = shardIndexOf(name, i.ShardId);
      let s: StreamState;
      try {
        s = registry.getWritable(name);
      } catch (e) {
        if (e instanceof ServiceError && e.code === 'ResourceNotFoundException') throw missingShard(name, index, 'GetShardIterator');
        throw e;
      }
      const shard = shardOf(s, i.ShardId, 'GetShardIterator');
      const type = i.ShardIteratorType as IteratorType;
      const bySeq = type === 'AT_SEQUENCE_NUMBER' || type === 'AFTER_SEQUENCE_NUMBER';
      const hasSeq = i.StartingSequenceNumber !== undefined;
      if (bySeq !== hasSeq) {
        throw invalidArgument(
          'Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST ' +
            `and no StartingSequenceNumber. Request specified ${type} and ${hasSeq ? 'also' : 'no'} a StartingSequenceNumber.`,
        );
      }
      let ts: number | undefined;
      if (type === 'AT_TIMESTAMP') {
        if (i.Timestamp === undefined) {
          throw invalidArgument('Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.');
        }
        ts = i.Timestamp.getTime();
      }
      const offset = await data.iteratorOffset(s, shard, type, i.StartingSequenceNumber, ts);
      return { ShardIterator: data.iterator(s, shard, offset) };
    },

    async GetRecords(i) {
      const limit = i.Limit ?? MAX_GET_RECORDS_COUNT;
      const { stream: s, shard, offset } = data.resolveIterator(i.ShardIterator);
      const r = await data.read(s, shard, offset, limit);
      return withRecordsJson({
        Records: r.records,
        ...(r.ended ? { ChildShards: data.childShards(s, shard) } : { NextShardIterator: data.iterator(s, shard, r.nextOffset) }),
        MillisBehindLatest: r.millisBehindLatest,
      });
    },

    IncreaseStreamRetentionPeriod: (i) => setRetention(i, 'increase'),
    DecreaseStreamRetentionPeriod: (i) => setRetention(i, 'decrease'),

    async AddTagsToStream(i) {
      const s = stream(i);
      s.tags = mergeTags(s.tags, i.Tags, 'stream', `Failed to add tags to stream ${s.name} under account ${accountId}`);
      await registry.save(s);
      return undefined;
    },

    async RemoveTagsFromStream(i) {
      const s = stream(i);
      checkTagCharacters(i.TagKeys, `Failed to remove tags from stream ${s.name} under account ${accountId}`);
      for (const k of i.TagKeys) if (Object.hasOwn(s.tags, k)) delete s.tags[k];
      await registry.save(s);
      return undefined;
    },

    ListTagsForStream(i) {
      const s = stream(i);
      const limit = i.Limit ?? MAX_LIST_TAGS;
      const start = i.ExclusiveStartTagKey;
      const keys = Object.keys(s.tags).sort().filter((k) => start === undefined || k > start);
      const page = keys.slice(0, limit);
      return { Tags: page.map((k) => ({ Key: k, Value: s.tags[k] })), HasMoreTags: keys.length > page.length };
    },

    async SplitShard(i) {
      const s = provisionedActive(i, 'SplitShard');
      const parent = openShard(s, i.ShardToSplit);
      const key = BigInt(i.NewStartingHashKey); // beyond 2^128-1 fails the range check below
      const start = BigInt('0x' + parent.startHex);
      const end = BigInt('0x' + parent.endHex);
      if (key <= start || key > end) {
        throw invalidArgument(
          `NewStartingHashKey ${key} used in SplitShard() on shard ${shardIdOf(parent.index)} in stream ${s.name} under account ${accountId} ` +
            `is not both greater than one plus the shard's StartingHashKey ${start} and less than the shard's EndingHashKey ${end}.`,
        );
      }
      registry.ensureShardCapacity(1);
      await registry.reshard(s, [parent], [
        { parent: parent.index, startHex: parent.startHex, endHex: toHex(key - 1n) },
        { parent: parent.index, startHex: toHex(key), endHex: parent.endHex },
      ]);
      return undefined;
    },

    async MergeShards(i) {
      const s = provisionedActive(i, 'MergeShards');
      const a = openShard(s, i.ShardToMerge);
      const b = openShard(s, i.AdjacentShardToMerge);
      const [lo, hi] = a.startHex < b.startHex ? [a, b] : [b, a];
      if (a === b || BigInt('0x' + lo.endHex) + 1n !== BigInt('0x' + hi.startHex)) {
        throw invalidArgument(
          `Shards ${shardIdOf(a.index)} and ${shardIdOf(b.index)} in stream ${s.name} under account ${accountId} are not an adjacent pair of shards eligible for merging`,
        );
      }
      await registry.reshard(s, [a, b], [{ parent: a.index, adjacentParent: b.index, startHex: lo.startHex, endHex: hi.endHex }]);
      return undefined;
    },

    async UpdateShardCount(i) {
      const s = provisionedActive(i, 'UpdateShardCount');
      const open = s.shards.filter((x) => x.closedMs === undefined).sort((x, y) => (x.startHex < y.startHex ? -1 : 1));
      const target = i.TargetShardCount;
      if (target > open.length * 2 || target * 2 < open.length) {
        throw invalidArgument(`UpdateShardCount cannot scale ${s.name} from ${open.length} to ${target} shards: the target must be between half and double the current open shard count.`);
      }
      const now = clock.now();
      s.scalings = s.scalings.filter((t) => now - t < 24 * 3600_000);
      if (s.scalings.length >= MAX_SCALINGS_PER_DAY) {
        throw limitExceeded(`Stream ${s.name} under account ${accountId} has already been scaled ${MAX_SCALINGS_PER_DAY} times in the last 24 hours.`);
      }
      const current = open.length;
      if (target !== current) {
        if (target > current) registry.ensureShardCapacity(target - current);
        s.scalings.push(now);
        const plan = uniformScaling(open, target, s.nextShardIndex, now);
        await registry.reshard(s, plan.close, plan.children);
      }
      return { StreamName: s.name, CurrentShardCount: current, TargetShardCount: target, StreamARN: registry.arn(s.name) };
    },
    ...adminOperations(k),
    ...extra.operations,
  };

  async function setRetention(i: Inputs['IncreaseStreamRetentionPeriod'], dir: 'increase' | 'decrease') {
    const s = stream(i);
    // The model has no range for RetentionPeriodHours: the bounds are Kinesis's own rule and text.
    const hours = i.RetentionPeriodHours;
    if (hours < MIN_RETENTION_HOURS) {
      throw invalidArgument(`Minimum allowed retention period is ${MIN_RETENTION_HOURS} hours. Requested retention period (${hours} hours) is too short.`);
    }
    if (hours > MAX_RETENTION_HOURS) {
      throw invalidArgument(`Maximum allowed retention period is ${MAX_RETENTION_HOURS} hours. Requested retention period (${hours} hours) is too long.`);
    }
    if (dir === 'increase' && hours < s.retentionHours) {
      throw invalidArgument(
        `Requested retention period (${hours} hours) for stream ${s.name} can not be shorter than existing retention period (${s.retentionHours} hours). Use DecreaseRetentionPeriod API.`,
      );
    }
    if (dir === 'decrease' && hours > s.retentionHours) {
      throw invalidArgument(
        `Requested retention period (${hours} hours) for stream ${s.name} can not be longer than existing retention period (${s.retentionHours} hours). Use IncreaseRetentionPeriod API.`,
      );
    }
    if (dir === 'increase') s.expiredBeforeMs = Math.max(s.expiredBeforeMs ?? 0, clock.now() - s.retentionHours * 3600_000);
    s.retentionHours = hours;
    await registry.save(s);
    return undefined;
  }

  /**
   * SequenceNumberForOrdering (its pattern is the model's): a number this server could have
   * issued (its layout, not from the future), as AWS checks it. Records of a shard are appended in
   * order anyway, so a valid one needs nothing more.
   */
  function checkOrdering(s: StreamState, v: string | undefined): void {
    if (v === undefined) return;
    const d = decodeSequenceNumber(v);
    if (!d || d.recordSec * 1000 > clock.now()) {
      throw invalidArgument(`ExclusiveMinimumSequenceNumber ${v} used in PutRecord on stream ${s.name} under account ${accountId} is invalid.`);
    }
  }

  function provisionedActive(i: { StreamName?: string; StreamARN?: string }, op: string): StreamState {
    const s = registry.requireActive(registry.resolveName(i));
    if (s.mode === 'ON_DEMAND') throw validation(s.name, 'streamName', `${op} is not supported for streams in ON_DEMAND mode`);
    return s;
  }

  function openShard(s: StreamState, id: string): ShardState {
    const sh = shardOf(s, id);
    if (sh.closedMs !== undefined) throw resourceInUse(`Shard ${shardIdOf(sh.index)} in stream ${s.name} under account ${accountId} has already been merged or split, and thus is not eligible for merging or splitting.`);
    return sh;
  }

  /** More than MAX_TAGS_PER_STREAM on one stream: the model allows 200 in a call, a stream holds 50. */
  return {
    targetPrefix: KINESIS_TARGET_PREFIX,
    signingServices: [KINESIS_SIGNING_NAME],
    maxRequestBytes: MAX_JSON_REQUEST_BYTES,
    model: kinesisModel,
    operations,
    rawOperations: extra.rawOperations,
  };
}

type NewShard = Omit<ShardState, 'index' | 'createdMs'>;

/**
 * UpdateShardCount's new layout over the open shards (sorted by hash key): `target` even ranges.
 * A shard names at most two parents, yet an even range can overlap more old shards than that
 * (after uneven splits, or by rounding: i·floor(2^128/n) boundaries of different n differ by a
 * few keys). So range boundaries within rounding distance of an old boundary are moved onto it,
 * and where a range still overlaps k > 2 old shards, k - 2 intermediate shards (closed at
 * once, empty, like AWS's short-lived ones) chain the merges, keeping every child's range within
 * its parents' and every closed shard's range covered by its children. An old shard whose range
 * is exactly a new one stays open. Children are listed in creation order, from index `firstIndex`.
 */
function uniformScaling(open: ShardState[], target: number, firstIndex: number, now: number): { close: ShardState[]; children: NewShard[] } {
  const starts = open.map((sh) => BigInt('0x' + sh.startHex));
  const ends = open.map((sh) => BigInt('0x' + sh.endHex));
  const ranges = evenRanges(target);
  const slack = BigInt(target);
  // Both lists are sorted, so one sweep finds the old boundary nearest to each new one.
  let q = 0;
  for (let j = 1; j < ranges.length; j++) {
    const b = ranges[j].start;
    while (q + 1 < starts.length && starts[q + 1] <= b) q++;
    const near = [starts[q], starts[q + 1]].find((x) => x !== undefined && x - b <= slack && b - x <= slack);
    if (near !== undefined && near > ranges[j - 1].start) {
      ranges[j].start = near;
      ranges[j - 1].end = near - 1n;
    }
  }
  const close = new Set<ShardState>();
  const children: NewShard[] = [];
  let next = firstIndex;
  let p = 0;
  for (const r of ranges) {
    while (ends[p] < r.start) p++;
    let last = p;
    while (last + 1 < open.length && starts[last + 1] <= r.end) last++;
    const over = open.slice(p, last + 1);
    p = last; // the last old shard may reach into the next range too
    if (over.length === 1 && starts[last] === r.start && ends[last] === r.end) continue;
    let parent = over[0].index;
    for (let j = 1; j < over.length - 1; j++) {
      children.push({ parent, adjacentParent: over[j].index, startHex: toHex(r.start), endHex: over[j].endHex, closedMs: now, endOffset: 0 });
      parent = next++;
    }
    const adjacentParent = over.length > 1 ? over[over.length - 1].index : undefined;
    children.push({ parent, ...(adjacentParent !== undefined ? { adjacentParent } : {}), startHex: toHex(r.start), endHex: toHex(r.end) });
    next++;
    for (const sh of over) close.add(sh);
  }
  return { close: [...close], children };
}

/** ShardFilter semantics of ListShards (§2.3). */
function filterShards(s: StreamState, filter: ShardFilter | undefined, now: number): ShardState[] {
  const type = filter?.Type ?? 'FROM_TRIM_HORIZON';
  switch (type) {
    case 'FROM_TRIM_HORIZON':
      return s.shards;
    case 'AFTER_SHARD_ID': {
      const after = filter?.ShardId !== undefined ? parseShardId(filter.ShardId) : undefined;
      if (after === undefined) throw invalidArgument('ShardFilter of type AFTER_SHARD_ID requires a ShardId.');
      return s.shards.filter((x) => x.index > after);
    }
    case 'AT_LATEST':
      return s.shards.filter((x) => x.closedMs === undefined);
    case 'AT_TRIM_HORIZON': {
      // Shards open at the trim horizon: the oldest shards whose data is still within retention.
      const horizon = now - s.retentionHours * 3600_000;
      return s.shards.filter((x) => x.createdMs <= Math.max(horizon, s.createdMs) && (x.closedMs === undefined || x.closedMs >= horizon));
    }
    case 'AT_TIMESTAMP':
    case 'FROM_TIMESTAMP': {
      if (filter?.Timestamp === undefined) throw invalidArgument(`ShardFilter of type ${type} requires a Timestamp.`);
      const t = filter.Timestamp.getTime();
      return type === 'AT_TIMESTAMP'
        ? s.shards.filter((x) => x.createdMs <= t && (x.closedMs === undefined || x.closedMs > t))
        : s.shards.filter((x) => x.closedMs === undefined || x.closedMs >= t);
    }
    default:
      // The model's enum has refused anything else before the handler ran.
      throw invalidArgument(`Unsupported ShardFilter type ${type}.`);
  }
}

/** The largest record (data plus partition key) the stream takes: its MaxRecordSizeInKiB. */
const recordLimit = (s: StreamState) => (s.maxRecordSizeKiB ?? DEFAULT_RECORD_SIZE_KIB) * 1024;

/**
 * A validated record's size rule: data plus partition key within the stream's record size (the
 * model allows 10 MiB of data alone; streams default to 1 MiB), and its hash key in range.
 */
function putEntry(r: PutRecordsRequestEntry, dataMember: string, maxBytes: number): PutEntry {
  const data = r.Data;
  const pk = r.PartitionKey;
  const size = data.length + Buffer.byteLength(pk);
  if (size > maxBytes) {
    throw validation(`${data.length} bytes`, dataMember, `Member must have length less than or equal to ${maxBytes} (data plus partition key: ${size} bytes)`);
  }
  const e: PutEntry = { data, partitionKey: pk };
  if (r.ExplicitHashKey !== undefined) {
    // The model's pattern admits up to 39 digits; the range is Kinesis's own check.
    const h = r.ExplicitHashKey;
    const k = parseHashKey(h);
    if (k === undefined) {
      throw invalidArgument(`Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was ${h}`);
    }
    e.hashHex = toHex(k);
  }
  return e;
}

/** PutRecord(s) output of an encrypted stream says so, as AWS's does. */
function sealed(s: StreamState): { EncryptionType?: 'KMS' } {
  return s.encryption ? { EncryptionType: 'KMS' } : {};
}

function errorFor(code: string, message: string) {
  return code === 'ProvisionedThroughputExceededException' ? throughputExceeded(message) : internalFailure(message);
}
