// The Kinesis Data Streams API (awsJson1.1/CBOR, target prefix Kinesis_20131202, signing name
// "kinesis"): each operation's input validation and output shape (reference/kinesis-firehose.md
// §2), over the stream registry (control plane) and KinesisData (data plane).

import type { Clock } from '../clock.js';
import { blobInput, timestampOut, timestampInput, type JsonRpcService } from '../http/awsjson.js';
import { isObject, type Json } from '../http/shape.js';
import { type ShardState, type StreamMode, type StreamRegistry, type StreamState } from './streams.js';
import { hashKeyRange, type IteratorType, type KinesisData, type PutEntry } from './records.js';
import { evenRanges, parseHashKey, parseShardId, sequenceNumber, shardIdOf, toHex } from './keys.js';
import {
  expiredNextToken,
  internalFailure,
  invalidArgument,
  limitExceeded,
  resourceInUse,
  resourceNotFound,
  throughputExceeded,
  validation,
  int,
  optInt,
} from './errors.js';
import type { TokenSigner } from './iterators.js';
import {
  DEFAULT_DESCRIBE_SHARDS,
  DEFAULT_LIST_SHARDS,
  DEFAULT_LIST_STREAMS,
  LIST_SHARDS_TOKEN_TTL_MS,
  MAX_GET_RECORDS_COUNT,
  MAX_LIST_SHARDS,
  MAX_LIST_TAGS,
  MAX_JSON_REQUEST_BYTES,
  MAX_PARTITION_KEY_LENGTH,
  MAX_PUT_RECORDS_BYTES,
  MAX_PUT_RECORDS_COUNT,
  MAX_RECORD_BYTES,
  MAX_RETENTION_HOURS,
  MAX_TAGS_PER_CALL,
  MAX_TAGS_PER_STREAM,
  MAX_TAG_KEY_LENGTH,
  MAX_TAG_VALUE_LENGTH,
  MIN_RETENTION_HOURS,
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
  const stream = (i: Json) => registry.get(registry.resolveName(i));

  const shardOf = (s: StreamState, id: unknown, member: string): ShardState => {
    if (typeof id !== 'string' || !/^[a-zA-Z0-9_.-]{1,128}$/.test(id)) {
      throw validation(id, member, 'Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+');
    }
    // A well-formed id that names no shard (e.g. `shard-7`) is a missing shard, not a bad request.
    const index = parseShardId(id);
    const sh = index === undefined ? undefined : registry.shard(s, index);
    if (!sh) throw resourceNotFound(`Could not find shard ${id} in stream ${s.name} under account ${accountId}.`);
    return sh;
  };

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

  const operations: JsonRpcService['operations'] = {
    CreateStream(i) {
      const name = registry.resolveName({ StreamName: i.StreamName });
      const mode = modeOf(i.StreamModeDetails);
      let count: number;
      if (mode === 'ON_DEMAND') {
        if (i.ShardCount !== undefined && i.ShardCount !== null) throw invalidArgument('ShardCount is not supported for streams in ON_DEMAND mode.');
        count = ON_DEMAND_SHARDS;
      } else {
        count = int(i.ShardCount, 'shardCount', 1, 100_000);
      }
      registry.create(name, count, mode, tagMap(i.Tags, MAX_TAGS_PER_STREAM));
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
      const limit = optInt(i.Limit, 'limit', 1, 10_000) ?? DEFAULT_DESCRIBE_SHARDS;
      let shards = s.status === 'CREATING' ? [] : [...s.shards].sort((a, b) => a.index - b.index);
      if (typeof i.ExclusiveStartShardId === 'string') {
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
          EnhancedMonitoring: [{ ShardLevelMetrics: [] }],
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
          EnhancedMonitoring: [{ ShardLevelMetrics: [] }],
          ...encryption(s),
          OpenShardCount: s.shards.filter((x) => x.closedMs === undefined).length,
          ConsumerCount: s.consumers.filter((c) => c.status !== 'DELETING').length,
          MaxRecordSizeInKiB: MAX_RECORD_BYTES / 1024,
        },
      };
    },

    ListStreams(i) {
      const limit = optInt(i.Limit, 'limit', 1, 10_000) ?? DEFAULT_LIST_STREAMS;
      let after = typeof i.ExclusiveStartStreamName === 'string' ? i.ExclusiveStartStreamName : undefined;
      if (typeof i.NextToken === 'string') {
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
      let filter = isObject(i.ShardFilter) ? i.ShardFilter : undefined;
      if (typeof i.NextToken === 'string') {
        if (i.StreamName !== undefined) throw invalidArgument('NextToken and StreamName cannot be provided together.');
        const t = signer.decodeToken<{ stream: string; after: number; issued: number; filter?: Json }>(i.NextToken);
        if (!t) throw invalidArgument('Invalid NextToken.');
        if (clock.now() - t.issued > LIST_SHARDS_TOKEN_TTL_MS) throw expiredNextToken('The NextToken has expired.');
        name = t.stream;
        after = t.after;
        filter = t.filter;
      } else {
        if (i.StreamName === undefined && i.StreamARN === undefined) throw invalidArgument('Either NextToken or StreamName should be provided.');
        name = registry.resolveName(i);
        if (typeof i.ExclusiveStartShardId === 'string') after = parseShardId(i.ExclusiveStartShardId) ?? -1;
      }
      const s = registry.get(name);
      const max = Math.min(optInt(i.MaxResults, 'maxResults', 1, MAX_LIST_SHARDS) ?? DEFAULT_LIST_SHARDS, DEFAULT_LIST_SHARDS);
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
      const entry = putEntry(i, 'data', 'partitionKey', 'explicitHashKey');
      const kms = sealed(s); // read with the put, which seals by the same state
      const [r] = await data.put(s, [entry]);
      if ('ErrorCode' in r) throw errorFor(r.ErrorCode, r.ErrorMessage);
      return { ...r, ...kms };
    },

    async PutRecords(i) {
      const s = registry.getWritable(registry.resolveName(i));
      if (!Array.isArray(i.Records) || i.Records.length < 1 || i.Records.length > MAX_PUT_RECORDS_COUNT) {
        throw validation(
          Array.isArray(i.Records) ? `[${i.Records.length} records]` : i.Records,
          'records',
          `Member must have length less than or equal to ${MAX_PUT_RECORDS_COUNT} and greater than or equal to 1`,
        );
      }
      let total = 0;
      const entries = i.Records.map((r: unknown, n: number) => {
        if (!isObject(r)) throw validation(r, `records.${n + 1}.member`, 'Member must be a structure');
        const e = putEntry(r, `records.${n + 1}.member.data`, `records.${n + 1}.member.partitionKey`, `records.${n + 1}.member.explicitHashKey`);
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
      const s = registry.getWritable(registry.resolveName(i));
      const shard = shardOf(s, i.ShardId, 'shardId');
      const type = i.ShardIteratorType as IteratorType;
      const types = ['AT_SEQUENCE_NUMBER', 'AFTER_SEQUENCE_NUMBER', 'TRIM_HORIZON', 'LATEST', 'AT_TIMESTAMP'];
      if (!types.includes(type)) throw validation(type, 'shardIteratorType', `Member must satisfy enum value set: [${types.join(', ')}]`);
      const bySeq = type === 'AT_SEQUENCE_NUMBER' || type === 'AFTER_SEQUENCE_NUMBER';
      const hasSeq = i.StartingSequenceNumber !== undefined && i.StartingSequenceNumber !== null;
      if (hasSeq && (typeof i.StartingSequenceNumber !== 'string' || !/^(0|[1-9]\d{0,128})$/.test(i.StartingSequenceNumber))) {
        throw validation(i.StartingSequenceNumber, 'startingSequenceNumber', 'Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128})');
      }
      if (bySeq !== hasSeq) {
        throw invalidArgument(
          'Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST ' +
            `and no StartingSequenceNumber. Request specified ${type} and ${hasSeq ? 'also' : 'no'} a StartingSequenceNumber.`,
        );
      }
      let ts: number | undefined;
      if (type === 'AT_TIMESTAMP') {
        if (i.Timestamp === undefined || i.Timestamp === null) {
          throw invalidArgument('Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.');
        }
        ts = timestampInput(i.Timestamp, 'Timestamp');
      }
      const offset = await data.iteratorOffset(s, shard, type, hasSeq ? String(i.StartingSequenceNumber) : undefined, ts);
      return { ShardIterator: data.iterator(s, shard, offset) };
    },

    async GetRecords(i) {
      if (typeof i.ShardIterator !== 'string') throw validation(i.ShardIterator, 'shardIterator', 'Member must not be null');
      const limit = optInt(i.Limit, 'limit', 1, MAX_GET_RECORDS_COUNT) ?? MAX_GET_RECORDS_COUNT;
      const { stream: s, shard, offset } = data.resolveIterator(i.ShardIterator);
      const r = await data.read(s, shard, offset, limit);
      return {
        Records: r.records,
        ...(r.ended ? { ChildShards: data.childShards(s, shard) } : { NextShardIterator: data.iterator(s, shard, r.nextOffset) }),
        MillisBehindLatest: r.millisBehindLatest,
      };
    },

    IncreaseStreamRetentionPeriod: (i) => setRetention(i, 'increase'),
    DecreaseStreamRetentionPeriod: (i) => setRetention(i, 'decrease'),

    AddTagsToStream(i) {
      const s = stream(i);
      const add = tagMap(i.Tags, MAX_TAGS_PER_CALL, true);
      const merged = { ...s.tags, ...add };
      if (Object.keys(merged).length > MAX_TAGS_PER_STREAM) {
        throw limitExceeded(`Failed to add tags to stream ${s.name} under account ${accountId} because a given stream cannot have more than ${MAX_TAGS_PER_STREAM} tags.`);
      }
      s.tags = merged;
      registry.save(s);
      return undefined;
    },

    RemoveTagsFromStream(i) {
      const s = stream(i);
      if (!Array.isArray(i.TagKeys) || i.TagKeys.length < 1 || i.TagKeys.length > 50) {
        throw validation(i.TagKeys, 'tagKeys', 'Member must have length less than or equal to 50 and greater than or equal to 1');
      }
      for (const k of i.TagKeys) {
        if (typeof k !== 'string' || k.length < 1 || k.length > MAX_TAG_KEY_LENGTH) {
          throw validation(k, 'tagKeys', `Member must satisfy constraint: [Member must have length less than or equal to ${MAX_TAG_KEY_LENGTH}, Member must have length greater than or equal to 1]`);
        }
      }
      for (const k of i.TagKeys) delete s.tags[k];
      registry.save(s);
      return undefined;
    },

    ListTagsForStream(i) {
      const s = stream(i);
      const limit = optInt(i.Limit, 'limit', 1, MAX_LIST_TAGS) ?? MAX_LIST_TAGS;
      const start = typeof i.ExclusiveStartTagKey === 'string' ? i.ExclusiveStartTagKey : undefined;
      const keys = Object.keys(s.tags).sort().filter((k) => start === undefined || k > start);
      const page = keys.slice(0, limit);
      return { Tags: page.map((k) => ({ Key: k, Value: s.tags[k] })), HasMoreTags: keys.length > page.length };
    },

    async SplitShard(i) {
      const s = provisionedActive(i, 'SplitShard');
      const parent = openShard(s, i.ShardToSplit, 'shardToSplit');
      if (typeof i.NewStartingHashKey !== 'string' || !/^(0|[1-9]\d{0,38})$/.test(i.NewStartingHashKey)) {
        throw validation(i.NewStartingHashKey, 'newStartingHashKey', 'Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})');
      }
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
      const a = openShard(s, i.ShardToMerge, 'shardToMerge');
      const b = openShard(s, i.AdjacentShardToMerge, 'adjacentShardToMerge');
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
      if (i.ScalingType !== 'UNIFORM_SCALING') throw validation(i.ScalingType, 'scalingType', 'Member must satisfy enum value set: [UNIFORM_SCALING]');
      const open = s.shards.filter((x) => x.closedMs === undefined).sort((x, y) => (x.startHex < y.startHex ? -1 : 1));
      const target = int(i.TargetShardCount, 'targetShardCount', 1, 100_000);
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
    ...extra.operations,
  };

  function setRetention(i: Json, dir: 'increase' | 'decrease') {
    const s = stream(i);
    const hours = int(i.RetentionPeriodHours, 'retentionPeriodHours', MIN_RETENTION_HOURS, MAX_RETENTION_HOURS);
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
    registry.save(s);
    return undefined;
  }

  function provisionedActive(i: Json, op: string): StreamState {
    const s = registry.requireActive(registry.resolveName(i));
    if (s.mode === 'ON_DEMAND') throw validation(s.name, 'streamName', `${op} is not supported for streams in ON_DEMAND mode`);
    return s;
  }

  function openShard(s: StreamState, id: unknown, member: string): ShardState {
    const sh = shardOf(s, id, member);
    if (sh.closedMs !== undefined) throw resourceInUse(`Shard ${shardIdOf(sh.index)} in stream ${s.name} under account ${accountId} has already been merged or split, and thus is not eligible for merging or splitting.`);
    return sh;
  }

  return {
    targetPrefix: KINESIS_TARGET_PREFIX,
    signingServices: [KINESIS_SIGNING_NAME],
    maxRequestBytes: MAX_JSON_REQUEST_BYTES,
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
function filterShards(s: StreamState, filter: Json | undefined, now: number): ShardState[] {
  const type = filter?.Type ?? 'FROM_TRIM_HORIZON';
  switch (type) {
    case 'FROM_TRIM_HORIZON':
      return s.shards;
    case 'AFTER_SHARD_ID': {
      const after = typeof filter?.ShardId === 'string' ? parseShardId(filter.ShardId) : undefined;
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
      const t = timestampInput(filter.Timestamp, 'ShardFilter.Timestamp');
      return type === 'AT_TIMESTAMP'
        ? s.shards.filter((x) => x.createdMs <= t && (x.closedMs === undefined || x.closedMs > t))
        : s.shards.filter((x) => x.closedMs === undefined || x.closedMs >= t);
    }
    default:
      throw validation(type, 'shardFilter.type', 'Member must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]');
  }
}

function putEntry(r: Json, dataMember: string, pkMember: string, hashMember: string): PutEntry {
  if (r.Data === undefined || r.Data === null) throw validation(null, dataMember, 'Member must not be null');
  const data = blobInput(r.Data, 'Data');
  const pk = r.PartitionKey;
  if (typeof pk !== 'string' || pk.length < 1 || pk.length > MAX_PARTITION_KEY_LENGTH) {
    throw validation(pk, pkMember, `Member must have length less than or equal to ${MAX_PARTITION_KEY_LENGTH} and greater than or equal to 1`);
  }
  const size = data.length + Buffer.byteLength(pk);
  if (size > MAX_RECORD_BYTES) {
    throw validation(`${data.length} bytes`, dataMember, `Member must have length less than or equal to ${MAX_RECORD_BYTES} (data plus partition key: ${size} bytes)`);
  }
  const e: PutEntry = { data, partitionKey: pk };
  if (r.ExplicitHashKey !== undefined && r.ExplicitHashKey !== null) {
    // As AWS checks it: the model's pattern first (a Coral ValidationException), then the range.
    const h = r.ExplicitHashKey;
    if (typeof h !== 'string' || !/^(0|[1-9]\d{0,38})$/.test(h)) {
      throw validation(h, hashMember, 'Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})');
    }
    const k = parseHashKey(h);
    if (k === undefined) {
      throw invalidArgument(`Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was ${h}`);
    }
    e.hashHex = toHex(k);
  }
  return e;
}

function modeOf(details: unknown): StreamMode {
  if (details === undefined || details === null) return 'PROVISIONED';
  if (!isObject(details) || (details.StreamMode !== 'PROVISIONED' && details.StreamMode !== 'ON_DEMAND')) {
    throw validation(isObject(details) ? details.StreamMode : details, 'streamModeDetails.streamMode', 'Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]');
  }
  return details.StreamMode;
}

function tagMap(v: unknown, max: number, required = false): Record<string, string> {
  if (v === undefined || v === null) {
    if (required) throw validation(null, 'tags', 'Member must not be null');
    return {};
  }
  if (!isObject(v)) throw validation(v, 'tags', 'Member must be a map');
  const keys = Object.keys(v);
  if (keys.length > max || (required && keys.length === 0)) {
    throw validation(`${keys.length} tags`, 'tags', `Member must have length less than or equal to ${max} and greater than or equal to 1`);
  }
  for (const k of keys) {
    if (k.length < 1 || k.length > MAX_TAG_KEY_LENGTH) throw validation(k, 'tags', `Map keys must have length less than or equal to ${MAX_TAG_KEY_LENGTH}`);
    const val = v[k];
    if (typeof val !== 'string' || val.length > MAX_TAG_VALUE_LENGTH) {
      throw validation(val, `tags.${k}`, `Map values must be strings of length less than or equal to ${MAX_TAG_VALUE_LENGTH}`);
    }
  }
  return v as Record<string, string>;
}

/** PutRecord(s) output of an encrypted stream says so, as AWS's does. */
function sealed(s: StreamState): { EncryptionType?: 'KMS' } {
  return s.encryption ? { EncryptionType: 'KMS' } : {};
}

function errorFor(code: string, message: string) {
  return code === 'ProvisionedThroughputExceededException' ? throughputExceeded(message) : internalFailure(message);
}
