// Delivery-stream configuration rules beyond the model (whose shapes, lengths, patterns and enums
// src/models/validate.ts checks before a handler runs): the semantic rules Firehose adds
// (InvalidArgumentException), the members an update switching destination type must name, the
// defaults a description shows, the merge of an UpdateDestination block, and the description
// shapes (secrets left out).

import { isObject, type Json } from '../http/shape.js';
import { invalidArgument, memberName, validation } from './errors.js';
import { prefixPartitionKeys, validatePrefix } from './keys.js';
import { bucketName } from './objects/index.js';
import { metadataExtractionQuery, validateExtraction } from './partition.js';
import {
  DEFAULT_BUFFER_INTERVAL_S,
  DEFAULT_BUFFER_SIZE_MB,
  DEFAULT_DYNAMIC_PARTITIONING_RETRY_S,
  DEFAULT_HTTP_RETRY_S,
  DEFAULT_REDSHIFT_RETRY_S,
  REDSHIFT_FORBIDDEN_COMPRESSIONS,
} from './limits.js';

export type DestinationKind = 'ExtendedS3' | 'S3' | 'Redshift' | 'HttpEndpoint';

/** Wire member names of each supported destination kind. */
export const KINDS: Record<DestinationKind, { config: string; update: string; description: string }> = {
  ExtendedS3: { config: 'ExtendedS3DestinationConfiguration', update: 'ExtendedS3DestinationUpdate', description: 'ExtendedS3DestinationDescription' },
  S3: { config: 'S3DestinationConfiguration', update: 'S3DestinationUpdate', description: 'S3DestinationDescription' },
  Redshift: { config: 'RedshiftDestinationConfiguration', update: 'RedshiftDestinationUpdate', description: 'RedshiftDestinationDescription' },
  HttpEndpoint: { config: 'HttpEndpointDestinationConfiguration', update: 'HttpEndpointDestinationUpdate', description: 'HttpEndpointDestinationDescription' },
};

/** Destination blocks of the model that this server cannot deliver to. */
export const UNSUPPORTED_DESTINATIONS = [
  'Elasticsearch',
  'Amazonopensearchservice',
  'AmazonOpenSearchServerless',
  'Splunk',
  'Snowflake',
  'Iceberg',
] as const;

/** Required members of each kind's full configuration, and the update block's names for them. */
const CONFIG_MEMBERS: Record<DestinationKind, { required: string[]; renames: Record<string, string> }> = {
  S3: { required: ['RoleARN', 'BucketARN'], renames: {} },
  ExtendedS3: { required: ['RoleARN', 'BucketARN'], renames: { S3BackupConfiguration: 'S3BackupUpdate' } },
  Redshift: {
    required: ['RoleARN', 'ClusterJDBCURL', 'CopyCommand', 'S3Configuration'],
    renames: { S3Configuration: 'S3Update', S3BackupConfiguration: 'S3BackupUpdate' },
  },
  HttpEndpoint: {
    required: ['EndpointConfiguration', 'S3Configuration'],
    renames: { S3Configuration: 'S3Update', S3BackupConfiguration: 'S3BackupUpdate' },
  },
};

/**
 * A full destination configuration of `kind` (its shape already checked against the model):
 * Firehose's own rules, then the configuration with defaults filled in.
 */
export function validateDestination(kind: DestinationKind, c: Json, member: string): Json {
  semanticChecks(kind, c, member);
  return withDefaults(kind, c);
}

/** An update that switches the destination type must name every member a configuration requires. */
export function requireComplete(kind: DestinationKind, u: Json, member: string): void {
  const m = CONFIG_MEMBERS[kind];
  for (const r of m.required) {
    const name = m.renames[r] ?? r;
    if (u[name] === undefined || u[name] === null) throw validation(null, `${memberName(member)}.${memberName(name)}`, 'Member must not be null');
  }
}

/** The stored configuration with an update block merged in (objects deep, lists replaced). */
export function mergeUpdate(kind: DestinationKind, current: Json, update: Json): Json {
  const renamed: Json = {};
  // Member names come from the client: only the table's own renames apply.
  const back = new Map(Object.entries(CONFIG_MEMBERS[kind].renames).map(([a, b]) => [b, a]));
  for (const [k, v] of Object.entries(update)) renamed[back.get(k) ?? k] = v;
  return deepMerge(current, renamed);
}

function deepMerge(a: Json, b: Json): Json {
  const out: Json = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (v === undefined || v === null) continue;
    out[k] = isObject(v) && isObject(a[k]) ? deepMerge(a[k] as Json, v) : v;
  }
  return out;
}

/**
 * Every S3 configuration of a destination block with the member path naming it: the block itself
 * (S3, ExtendedS3), its S3Configuration (Redshift staging, HTTP endpoint backup) and its
 * S3BackupConfiguration, in wire or update names.
 */
export function s3Configurations(kind: DestinationKind, c: Json, member: string): Array<{ config: Json; where: string }> {
  const out: Array<{ config: Json; where: string }> = [];
  if ((kind === 'S3' || kind === 'ExtendedS3') && (c.BucketARN !== undefined || c.RoleARN !== undefined)) out.push({ config: c, where: member });
  for (const inner of ['S3Configuration', 'S3Update', 'S3BackupConfiguration', 'S3BackupUpdate']) {
    if (isObject(c[inner])) out.push({ config: c[inner] as Json, where: `${member}.${inner}` });
  }
  return out;
}

/**
 * Every role ARN a request names, for iam:PassRole: RoleARN members at any depth (destination,
 * S3 configurations, SecretsManager, data format conversion schema, Kinesis source) and the
 * RoleArn parameter of processors.
 */
export function namedRoleArns(v: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(v)) {
    for (const x of v) namedRoleArns(x, out);
  } else if (isObject(v)) {
    if (v.ParameterName === 'RoleArn' && typeof v.ParameterValue === 'string') out.add(v.ParameterValue);
    for (const [k, x] of Object.entries(v)) {
      if (k === 'RoleARN' && typeof x === 'string') out.add(x);
      else namedRoleArns(x, out);
    }
  }
  return out;
}

function semanticChecks(kind: DestinationKind, c: Json, member: string): void {
  for (const { config, where } of s3Configurations(kind, c, member)) {
    if (typeof config.BucketARN !== 'string') continue;
    try {
      bucketName(config.BucketARN);
    } catch (e) {
      throw invalidArgument(`${where}.BucketARN ${config.BucketARN} is not a valid S3 bucket ARN: ${(e as Error).message}.`);
    }
  }
  hintsTogether(c.BufferingHints, `${member}.BufferingHints`);
  for (const inner of ['S3Configuration', 'S3BackupConfiguration']) {
    if (isObject(c[inner])) {
      hintsTogether(c[inner].BufferingHints, `${member}.${inner}.BufferingHints`);
      noKms(c[inner], `${member}.${inner}`);
    }
  }
  noKms(c, member);
  if (isObject(c.SecretsManagerConfiguration) && c.SecretsManagerConfiguration.Enabled === true) {
    throw invalidArgument(`${member}.SecretsManagerConfiguration: AWS Secrets Manager is not available on this server; give the credentials in the configuration instead.`);
  }
  const processors = isObject(c.ProcessingConfiguration) && c.ProcessingConfiguration.Enabled !== false ? c.ProcessingConfiguration.Processors : undefined;
  if (Array.isArray(processors) && processors.some((p) => isObject(p) && p.Type === 'Lambda')) {
    throw invalidArgument(`${member}.ProcessingConfiguration: Lambda processors are not supported on this server (there is no Lambda to invoke).`);
  }
  if (c.S3BackupMode === 'Enabled' && !isObject(c.S3BackupConfiguration)) {
    throw invalidArgument(`${member}.S3BackupConfiguration is required when S3BackupMode is Enabled.`);
  }
  if (kind === 'ExtendedS3' && isObject(c.DynamicPartitioningConfiguration) && c.DynamicPartitioningConfiguration.Enabled === true) {
    if (typeof c.ErrorOutputPrefix !== 'string' || c.ErrorOutputPrefix === '') {
      throw invalidArgument(`${member}.ErrorOutputPrefix is required when DynamicPartitioningConfiguration is enabled.`);
    }
    if (isObject(c.BufferingHints) && c.BufferingHints.IntervalInSeconds === 0) {
      throw invalidArgument(`${member}.BufferingHints.IntervalInSeconds must be greater than 0 when DynamicPartitioningConfiguration is enabled (zero buffering is not allowed with dynamic partitioning).`);
    }
  }
  if ((kind === 'ExtendedS3' || kind === 'S3') && typeof c.Prefix === 'string' && c.Prefix.includes('!{') && !c.ErrorOutputPrefix) {
    throw invalidArgument(`${member}.ErrorOutputPrefix is required when Prefix contains expressions (!{...}).`);
  }
  if (kind === 'ExtendedS3' || kind === 'S3') {
    // The rules the S3 writer evaluates prefixes by (supported timestamp patterns, where partition
    // keys and error types may appear, the extraction query defining every key used), checked
    // here so a stream that could never name an object is refused when it is saved.
    const dynamic = isObject(c.DynamicPartitioningConfiguration) && c.DynamicPartitioningConfiguration.Enabled === true;
    const prefix = typeof c.Prefix === 'string' ? c.Prefix : undefined;
    const problem =
      validatePrefix(prefix, typeof c.ErrorOutputPrefix === 'string' ? c.ErrorOutputPrefix : undefined, dynamic) ??
      validateExtraction(metadataExtractionQuery(c.ProcessingConfiguration), prefixPartitionKeys(prefix).filter((k) => k.source === 'query').map((k) => k.key));
    if (problem) throw invalidArgument(`${member}: ${problem}`);
  }
  if (kind === 'Redshift') {
    const f = (c.S3Configuration as Json).CompressionFormat;
    if (typeof f === 'string' && REDSHIFT_FORBIDDEN_COMPRESSIONS.includes(f)) {
      throw invalidArgument(`${member}.S3Configuration.CompressionFormat ${f} is not supported for Redshift: COPY can only read UNCOMPRESSED or GZIP intermediate objects.`);
    }
    if (c.Username === undefined || c.Password === undefined) {
      throw invalidArgument(`${member}: Username and Password are required (SecretsManagerConfiguration is not available on this server).`);
    }
  }
}

function hintsTogether(h: unknown, where: string): void {
  if (!isObject(h)) return;
  if ((h.SizeInMBs === undefined || h.SizeInMBs === null) !== (h.IntervalInSeconds === undefined || h.IntervalInSeconds === null)) {
    throw invalidArgument(`${where}: SizeInMBs and IntervalInSeconds must be given together (one of them was missing).`);
  }
}

function noKms(c: Json, where: string): void {
  if (isObject(c.EncryptionConfiguration) && c.EncryptionConfiguration.KMSEncryptionConfig !== undefined) {
    throw invalidArgument(`${where}.EncryptionConfiguration: KMSEncryptionConfig is not supported on this server (no AWS KMS); use NoEncryptionConfig.`);
  }
}

// --- defaults and descriptions ----------------------------------------------------------------

const hints = (h: unknown): Json => (isObject(h) ? h : { SizeInMBs: DEFAULT_BUFFER_SIZE_MB, IntervalInSeconds: DEFAULT_BUFFER_INTERVAL_S });

function s3Defaults(c: Json): Json {
  return {
    Prefix: '',
    ...c,
    BufferingHints: hints(c.BufferingHints),
    CompressionFormat: c.CompressionFormat ?? 'UNCOMPRESSED',
    EncryptionConfiguration: c.EncryptionConfiguration ?? { NoEncryptionConfig: 'NoEncryption' },
    CloudWatchLoggingOptions: c.CloudWatchLoggingOptions ?? { Enabled: false },
  };
}

function withDefaults(kind: DestinationKind, c: Json): Json {
  const backup = isObject(c.S3BackupConfiguration) ? { S3BackupConfiguration: s3Defaults(c.S3BackupConfiguration) } : {};
  switch (kind) {
    case 'S3':
      return s3Defaults(c);
    case 'ExtendedS3': {
      const dp = isObject(c.DynamicPartitioningConfiguration) ? c.DynamicPartitioningConfiguration : undefined;
      return {
        ...s3Defaults(c),
        S3BackupMode: c.S3BackupMode ?? 'Disabled',
        ...backup,
        ...(dp ? { DynamicPartitioningConfiguration: { ...dp, RetryOptions: dp.RetryOptions ?? { DurationInSeconds: DEFAULT_DYNAMIC_PARTITIONING_RETRY_S } } } : {}),
      };
    }
    case 'Redshift':
      return {
        ...c,
        RetryOptions: c.RetryOptions ?? { DurationInSeconds: DEFAULT_REDSHIFT_RETRY_S },
        S3Configuration: s3Defaults(c.S3Configuration as Json),
        S3BackupMode: c.S3BackupMode ?? 'Disabled',
        ...backup,
        CloudWatchLoggingOptions: c.CloudWatchLoggingOptions ?? { Enabled: false },
      };
    case 'HttpEndpoint': {
      const rc = isObject(c.RequestConfiguration) ? c.RequestConfiguration : {};
      return {
        ...c,
        BufferingHints: hints(c.BufferingHints),
        RetryOptions: c.RetryOptions ?? { DurationInSeconds: DEFAULT_HTTP_RETRY_S },
        RequestConfiguration: { ...rc, ContentEncoding: rc.ContentEncoding ?? 'NONE' },
        S3BackupMode: c.S3BackupMode ?? 'FailedDataOnly',
        S3Configuration: s3Defaults(c.S3Configuration as Json),
        CloudWatchLoggingOptions: c.CloudWatchLoggingOptions ?? { Enabled: false },
      };
    }
  }
}

/** The *DestinationDescription of a stored configuration: wire names of descriptions, no secrets. */
export function describeDestination(c: Json): Json {
  const { S3BackupConfiguration, S3Configuration, Password: _password, EndpointConfiguration, ...rest } = c;
  const out: Json = { ...rest };
  if (S3BackupConfiguration !== undefined) out.S3BackupDescription = S3BackupConfiguration;
  if (S3Configuration !== undefined) out.S3DestinationDescription = S3Configuration;
  if (isObject(EndpointConfiguration)) {
    // AccessKey is a secret: descriptions never carry it (the model's HttpEndpointDescription has Url and Name only).
    out.EndpointConfiguration = { Url: EndpointConfiguration.Url, ...(EndpointConfiguration.Name !== undefined ? { Name: EndpointConfiguration.Name } : {}) };
  }
  return out;
}
