// The Firehose API (awsJson1.1, target prefix Firehose_20150804, signing name "firehose"): each
// operation's business rules and output shape (reference/kinesis-firehose.md §3), over the
// FirehoseService; input shapes are the model's, checked before a handler runs (src/models/validate.ts). Streams are ACTIVE as soon as CreateDeliveryStream answers (CREATING and
// DELETING are never observable here), and server-side encryption at rest is not offered.

import { timestampOut, type JsonRpcService, type Operations } from '../http/awsjson.js';
import { model as firehoseModel } from '../models/generated/firehose.js';
import type { Inputs } from '../models/generated/firehose-inputs.js';
import type { ShapeOverride } from '../models/validate.js';
import type { ApiRequest } from '../http/request.js';
import type { Json } from '../http/shape.js';
import type { Clock } from '../clock.js';
import { concurrentModification, invalidArgument, limitExceeded, serviceUnavailable } from './errors.js';
import { LogWriteError, storageFailureText } from '../log/errors.js';
import { DEFAULT_LIST_LIMIT, DESTINATION_ID, MAX_BATCH_BYTES, MAX_DELIVERY_STREAMS, MAX_JSON_REQUEST_BYTES, MAX_LIST_TAGS, MAX_TAGS_PER_STREAM } from './limits.js';
import type { DeliveryStreamState, DeliveryStreamType } from './registry.js';
import type { DeliveryStreamHealth, FirehoseService } from './service.js';
import {
  KINDS,
  UNSUPPORTED_DESTINATIONS,
  describeDestination,
  mergeUpdate,
  namedRoleArns,
  requireComplete,
  s3Configurations,
  validateDestination,
  type DestinationKind,
} from './validate.js';

export const FIREHOSE_TARGET_PREFIX = 'Firehose_20150804';
export const FIREHOSE_SIGNING_NAME = 'firehose';

/**
 * Deliberate deviations from the model: it admits only Redshift host names in ClusterJDBCURL
 * (`….redshift.amazonaws.com`) and only https endpoints; a self-hosted server delivers to any
 * PostgreSQL-compatible database and to plain-http endpoints on the same host.
 */
export const FIREHOSE_MODEL_OVERRIDES: Record<string, ShapeOverride> = {
  ClusterJDBCURL: { pattern: 'jdbc:(redshift|postgresql)://[A-Za-z0-9.-]+(:\\d{1,5})?/[a-zA-Z0-9_$-]+' },
  HttpEndpointUrl: { pattern: 'https?://.+' },
};

/** A validated input as the untyped configuration object the destination code stores. */
const asJson = (v: unknown) => v as Json;

export interface FirehoseApiOptions {
  service: FirehoseService;
  clock: Clock;
  /** Whether an embedded Kinesis stream of this name exists (KinesisStreamAsSource). */
  kinesisStreamExists: (name: string) => boolean;
  /** The caller's iam:PassRole on a role the request names, to firehose.amazonaws.com (throws AccessDeniedException). */
  passRole: (req: ApiRequest, roleArn: string) => void;
  /** Why Firehose cannot assume the role for the named delivery stream (missing, or its trust policy); undefined when it can. */
  assumeProblem: (roleArn: string, deliveryStreamName: string) => string | undefined;
}

export function firehoseService(o: FirehoseApiOptions): JsonRpcService {
  const { service, clock } = o;
  const registry = service.registry;
  const accountId = registry.accountId;

  const name = (i: { DeliveryStreamName: string }): string => i.DeliveryStreamName;

  /**
   * The roles a create or update names: the caller must be allowed to pass each to Firehose
   * (iam:PassRole, checked after the request is valid and before any role is looked up, so a
   * refusal reveals nothing about other tenants' roles), and Firehose must be able to assume
   * each one it will act as (the S3 configurations' roles, the Kinesis source's) for this stream.
   */
  function checkRoles(req: ApiRequest, streamName: string, named: Iterable<string>, used: Iterable<string>): void {
    for (const roleArn of named) o.passRole(req, roleArn);
    for (const roleArn of new Set(used)) {
      const problem = o.assumeProblem(roleArn, streamName);
      if (problem) throw invalidArgument(`Firehose is unable to assume role ${roleArn}. Please check the role provided. (${problem})`);
    }
  }
  const usedRoles = (kind: DestinationKind, block: Json, member: string) => [
    ...s3Configurations(kind, block, member).flatMap(({ config }) => (typeof config.RoleARN === 'string' ? [config.RoleARN] : [])),
    // The role Firehose reads the conversion's Glue table as.
    ...[schemaRoleOf(block)].filter((r): r is string => r !== undefined),
  ];

  const operations: Operations<Inputs> = {
    async CreateDeliveryStream(i, req) {
      const n = name(i);
      const type = i.DeliveryStreamType ?? 'DirectPut';
      if (type === 'MSKAsSource' || type === 'DatabaseAsSource') {
        throw invalidArgument(`DeliveryStreamType ${type} is not supported by this server; use DirectPut or KinesisStreamAsSource.`);
      }
      if (i.DeliveryStreamEncryptionConfigurationInput !== undefined) {
        throw invalidArgument(encryptionUnsupported);
      }
      const kinesisSource = type === 'KinesisStreamAsSource' ? sourceOf(i.KinesisStreamSourceConfiguration) : undefined;
      if (type === 'DirectPut' && i.KinesisStreamSourceConfiguration !== undefined) {
        throw invalidArgument('KinesisStreamSourceConfiguration is only allowed when DeliveryStreamType is KinesisStreamAsSource.');
      }
      const { kind, member } = destinationBlock(asJson(i), 'Configuration');
      const block = asJson(i)[member] as Json;
      const destination = validateDestination(kind, block, member);
      checkRoles(
        req,
        n,
        namedRoleArns([block, i.KinesisStreamSourceConfiguration]),
        [...usedRoles(kind, destination, member), ...(kinesisSource ? [kinesisSource.roleArn] : [])],
      );
      if (registry.count() >= MAX_DELIVERY_STREAMS) {
        throw limitExceeded(`You have already reached the limit of ${MAX_DELIVERY_STREAMS} delivery streams in account ${accountId}.`);
      }
      const now = clock.now();
      const state: DeliveryStreamState = {
        name: n,
        type: type as DeliveryStreamType,
        version: 1,
        createdMs: now,
        updatedMs: now,
        ...(kinesisSource ? { kinesisSource: { ...kinesisSource, deliveryStartMs: now } } : {}),
        ...(i.DirectPutSourceConfiguration ? { directPut: { throughputHintInMBs: i.DirectPutSourceConfiguration.ThroughputHintInMBs } } : {}),
        kind,
        destination,
        tags: Object.fromEntries((i.Tags ?? []).map((t) => [t.Key, t.Value ?? ''])),
      };
      await service.create(state);
      return { DeliveryStreamARN: registry.arn(n) };
    },

    DescribeDeliveryStream(i) {
      const n = name(i);
      const s = registry.require(n);
      const destinations = i.ExclusiveStartDestinationId === DESTINATION_ID ? [] : [{ DestinationId: DESTINATION_ID, [KINDS[s.kind].description]: describeDestination(s.destination) }];
      const source = s.kinesisSource
        ? { KinesisStreamSourceDescription: { KinesisStreamARN: s.kinesisSource.streamArn, RoleARN: s.kinesisSource.roleArn, DeliveryStartTimestamp: timestampOut(s.kinesisSource.deliveryStartMs) } }
        : s.directPut
          ? { DirectPutSourceDescription: { ThroughputHintInMBs: s.directPut.throughputHintInMBs } }
          : undefined;
      const failure = deliveryFailure(service.health(s.name));
      return {
        DeliveryStreamDescription: {
          DeliveryStreamName: s.name,
          DeliveryStreamARN: registry.arn(s.name),
          DeliveryStreamStatus: 'ACTIVE',
          ...(failure ? { FailureDescription: failure } : {}),
          DeliveryStreamEncryptionConfiguration: { Status: 'DISABLED' },
          DeliveryStreamType: s.type,
          VersionId: String(s.version),
          CreateTimestamp: timestampOut(s.createdMs),
          LastUpdateTimestamp: timestampOut(s.updatedMs),
          ...(source ? { Source: source } : {}),
          Destinations: destinations,
          HasMoreDestinations: false,
        },
      };
    },

    ListDeliveryStreams(i) {
      const limit = i.Limit ?? DEFAULT_LIST_LIMIT;
      const after = i.ExclusiveStartDeliveryStreamName;
      const names = registry
        .list()
        .filter((s) => (i.DeliveryStreamType === undefined || s.type === i.DeliveryStreamType) && (after === undefined || s.name > after))
        .map((s) => s.name);
      return { DeliveryStreamNames: names.slice(0, limit), HasMoreDeliveryStreams: names.length > limit };
    },

    async DeleteDeliveryStream(i) {
      const n = name(i);
      registry.require(n);
      await service.delete(n);
      return {};
    },

    async UpdateDestination(i, req) {
      const n = name(i);
      const s = registry.require(n);
      if (i.CurrentDeliveryStreamVersionId !== String(s.version)) {
        throw concurrentModification(
          `Delivery stream ${n} was modified: CurrentDeliveryStreamVersionId ${String(i.CurrentDeliveryStreamVersionId)} does not match its current VersionId ${s.version}. Describe the stream and retry with the current version.`,
        );
      }
      if (i.DestinationId !== DESTINATION_ID) throw invalidArgument(`Destination ${String(i.DestinationId)} not found in delivery stream ${n}; its destination is ${DESTINATION_ID}.`);
      const { kind: updKind, member } = destinationBlock(asJson(i), 'Update');
      const update = asJson(i)[member] as Json;
      const s3Family = (k: DestinationKind) => k === 'S3' || k === 'ExtendedS3';
      let kind: DestinationKind;
      let merged: Json;
      if (updKind === s.kind || (s3Family(updKind) && s3Family(s.kind))) {
        // An S3 update keeps an ExtendedS3 stream extended; an ExtendedS3 update extends an S3 stream.
        kind = s.kind === 'ExtendedS3' || updKind === 'ExtendedS3' ? 'ExtendedS3' : updKind;
        merged = mergeUpdate(updKind, s.destination, update);
      } else {
        // A different destination type: the update must then be a complete configuration.
        requireComplete(updKind, update, member);
        kind = updKind;
        merged = mergeUpdate(updKind, {}, update);
      }
      const destination = validateDestination(kind, merged, member);
      // Only the roles this request names: a role the stream already had was checked when it was given.
      checkRoles(req, n, namedRoleArns(update), usedRoles(updKind, update, member));
      s.destination = destination;
      s.kind = kind;
      s.version++;
      s.updatedMs = clock.now();
      await service.reconfigure(s);
      return {};
    },

    async PutRecord(i) {
      const n = name(i);
      const data = i.Record.Data;
      writable(n);
      const [id] = await service.append(n, [data]).catch((e: unknown) => {
        throw e instanceof LogWriteError ? serviceUnavailable(notStored(e)) : e;
      });
      return { RecordId: id, Encrypted: false };
    },

    async PutRecordBatch(i) {
      const n = name(i);
      const data = i.Records.map((r) => r.Data);
      const total = data.reduce((sum, d) => sum + d.length, 0);
      if (total > MAX_BATCH_BYTES) {
        throw invalidArgument(`Records size (${total} bytes of data) exceeds the limit of ${MAX_BATCH_BYTES} bytes (4 MiB) per PutRecordBatch request.`);
      }
      writable(n);
      let ids: string[];
      try {
        ids = await service.append(n, data);
      } catch (e) {
        if (!(e instanceof LogWriteError)) throw e;
        // Per-record failures, as AWS reports them: clients resend the failed entries.
        const ErrorMessage = notStored(e);
        return { FailedPutCount: data.length, Encrypted: false, RequestResponses: data.map(() => ({ ErrorCode: 'ServiceUnavailableException', ErrorMessage })) };
      }
      return { FailedPutCount: 0, Encrypted: false, RequestResponses: ids.map((RecordId) => ({ RecordId })) };
    },

    StartDeliveryStreamEncryption(i) {
      registry.require(name(i));
      throw invalidArgument(encryptionUnsupported);
    },

    StopDeliveryStreamEncryption(i) {
      registry.require(name(i));
      throw invalidArgument(encryptionUnsupported);
    },

    async TagDeliveryStream(i) {
      const n = name(i);
      const s = registry.require(n);
      // Spread and fromEntries define own properties: a tag key "__proto__" is kept, not swallowed by the setter.
      const tags: Record<string, string> = { ...s.tags, ...Object.fromEntries(i.Tags.map((t) => [t.Key, t.Value ?? ''])) };
      if (Object.keys(tags).length > MAX_TAGS_PER_STREAM) {
        throw limitExceeded(`Delivery stream ${n} would have ${Object.keys(tags).length} tags; a delivery stream can have at most ${MAX_TAGS_PER_STREAM} tags.`);
      }
      s.tags = tags;
      await registry.save(s);
      return {};
    },

    async UntagDeliveryStream(i) {
      const n = name(i);
      const s = registry.require(n);
      for (const k of i.TagKeys) if (Object.hasOwn(s.tags, k)) delete s.tags[k];
      await registry.save(s);
      return {};
    },

    ListTagsForDeliveryStream(i) {
      const n = name(i);
      const s = registry.require(n);
      const limit = i.Limit ?? MAX_LIST_TAGS;
      const after = i.ExclusiveStartTagKey;
      const keys = Object.keys(s.tags).sort().filter((k) => after === undefined || k > after);
      return { Tags: keys.slice(0, limit).map((Key) => ({ Key, Value: s.tags[Key] })), HasMoreTags: keys.length > limit };
    },
  };

  /** Puts go only to DirectPut streams: a Kinesis-sourced stream reads its records itself. */
  function writable(n: string): void {
    const s = registry.require(n);
    if (s.type === 'KinesisStreamAsSource') {
      throw invalidArgument(`This operation is not permitted on KinesisStreamAsSource delivery stream type: ${n} reads its records from the Kinesis stream ${s.kinesisSource!.streamArn}; put them there.`);
    }
  }

  function sourceOf(c: Inputs['CreateDeliveryStream']['KinesisStreamSourceConfiguration']): { streamArn: string; roleArn: string } {
    if (!c) throw invalidArgument('KinesisStreamSourceConfiguration is required when DeliveryStreamType is KinesisStreamAsSource.');
    const streamArn = c.KinesisStreamARN;
    const roleArn = c.RoleARN;
    const [, , , region, account, resource] = streamArn.split(':');
    if (region !== registry.region || account !== accountId) {
      throw invalidArgument(`KinesisStreamSourceConfiguration.KinesisStreamARN ${streamArn} is not a stream of this server (region ${registry.region}, account ${accountId}); only embedded Kinesis streams can be a source.`);
    }
    const streamName = resource.slice('stream/'.length);
    if (!o.kinesisStreamExists(streamName)) throw invalidArgument(`KinesisStreamSourceConfiguration.KinesisStreamARN: Kinesis stream ${streamArn} does not exist.`);
    // The role is checked with the others (checkRoles): iam:PassRole first, then that Firehose can assume it.
    return { streamArn, roleArn };
  }

  return {
    targetPrefix: FIREHOSE_TARGET_PREFIX,
    signingServices: [FIREHOSE_SIGNING_NAME],
    maxRequestBytes: MAX_JSON_REQUEST_BYTES,
    model: firehoseModel,
    modelOverrides: FIREHOSE_MODEL_OVERRIDES,
    operations,
  };
}

/**
 * While a stream's delivery (or its Kinesis source) is failing, DescribeDeliveryStream says why in
 * FailureDescription (type UNKNOWN_ERROR; the stream stays ACTIVE and keeps its records, which are
 * retried). AWS reports delivery errors in CloudWatch Logs (e.g. S3.AccessDenied), which this server
 * does not have: this is where a client can see them instead.
 */
function deliveryFailure(h: DeliveryStreamHealth | undefined): { Type: string; Details: string } | undefined {
  if (!h) return undefined;
  const failing = [h.delivery.state === 'retrying' ? h.delivery.lastError : undefined, h.source?.state === 'retrying' ? h.source.lastError : undefined];
  const details = failing.filter((e) => e !== undefined).map((e) => e!.message);
  return details.length > 0 ? { Type: 'UNKNOWN_ERROR', Details: details.join('; ') } : undefined;
}

const encryptionUnsupported =
  'Server-side encryption of delivery streams is not supported by this server: encryption at rest (AWS KMS) is not available, and records are stored unencrypted in its data directory.';

function schemaRoleOf(block: Json): string | undefined {
  const conv = block.DataFormatConversionConfiguration;
  const sc = conv && typeof conv === 'object' && !Array.isArray(conv) ? (conv as Json).SchemaConfiguration : undefined;
  const role = sc && typeof sc === 'object' && !Array.isArray(sc) ? (sc as Json).RoleARN : undefined;
  return typeof role === 'string' ? role : undefined;
}

/** The one destination block of a create (`Configuration`) or update (`Update`) request. */
function destinationBlock(i: Json, suffix: 'Configuration' | 'Update'): { kind: DestinationKind; member: string } {
  const present = (m: string) => i[m] !== undefined && i[m] !== null;
  const supported = (Object.keys(KINDS) as DestinationKind[]).filter((k) => present(suffix === 'Configuration' ? KINDS[k].config : KINDS[k].update));
  const unsupported = UNSUPPORTED_DESTINATIONS.map((k) => `${k}Destination${suffix}`).filter(present);
  const names = (Object.keys(KINDS) as DestinationKind[]).map((k) => (suffix === 'Configuration' ? KINDS[k].config : KINDS[k].update)).join(', ');
  if (unsupported.length > 0) {
    throw invalidArgument(`${unsupported[0]} is not supported by this server; the supported destinations are ${names}.`);
  }
  if (supported.length !== 1) {
    throw invalidArgument(`Exactly one destination ${suffix === 'Configuration' ? 'configuration' : 'update'} must be given (one of ${names}); got ${supported.length}.`);
  }
  const kind = supported[0];
  return { kind, member: suffix === 'Configuration' ? KINDS[kind].config : KINDS[kind].update };
}

/** A write to the delivery stream's log failed (disk full, I/O error): retryable, and says why. */
function notStored(e: LogWriteError): string {
  return `Service unavailable: ${storageFailureText(e)}; the record was not stored. Back off and retry the operation.`;
}
