// The embedded Firehose API through the official SDK client (and the AWS CLI): every operation's
// answer shape, the defaults a description fills in, every limit of the model (record count and
// size, request size, name pattern, tag count and lengths, buffering and retry ranges, prefix
// length), the error types and messages, and IAM authorization of a key without permissions.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import type { CachedTable } from '../src/store/metadata.js';
import {
  CreateDeliveryStreamCommand,
  DeleteDeliveryStreamCommand,
  DescribeDeliveryStreamCommand,
  ListDeliveryStreamsCommand,
  ListTagsForDeliveryStreamCommand,
  PutRecordBatchCommand,
  PutRecordCommand,
  StartDeliveryStreamEncryptionCommand,
  StopDeliveryStreamEncryptionCommand,
  TagDeliveryStreamCommand,
  UntagDeliveryStreamCommand,
  UpdateDestinationCommand,
  type CreateDeliveryStreamCommandInput,
  type FirehoseClient,
} from '@aws-sdk/client-firehose';
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient, PutUserPolicyCommand } from '@aws-sdk/client-iam';
import { startTestServer, type TestServer } from './helpers/server.js';
import { assertError } from './helpers/kinesis.js';
import { signedRequest } from './helpers/signed.js';
import { ACCOUNT, ROLE, createDeliveryRole, firehoseClient, s3Destination } from './helpers/firehose.js';
import { aws, awsOk, skipUnlessAws } from './helpers/awscli.js';
import {
  DESTINATION_ID,
  MAX_DELIVERY_STREAMS,
  MAX_BATCH_BYTES,
  MAX_BATCH_RECORDS,
  MAX_PREFIX_LENGTH,
  MAX_RECORD_BYTES,
  MAX_STREAM_NAME_LENGTH,
  MAX_LIST_LIMIT,
  MAX_TAGS_PER_STREAM,
  MAX_TAG_KEY_LENGTH,
  MAX_TAG_VALUE_LENGTH,
  HTTP_BUFFER_SIZE_MB,
  S3_BUFFER_SIZE_MB,
  BUFFER_INTERVAL_S,
  RETRY_DURATION_S,
} from '../src/firehose/limits.js';
import { MAX_NESTING_DEPTH } from '../src/nesting.js';

let t: TestServer;
let fh: FirehoseClient;
before(async () => {
  t = await startTestServer();
  await createDeliveryRole(t.server);
  fh = firehoseClient(t.server);
});
after(async () => {
  fh.destroy();
  await t.close();
});

const arn = (name: string) => `arn:aws:firehose:us-east-1:${ACCOUNT}:deliverystream/${name}`;
const create = (input: Partial<CreateDeliveryStreamCommandInput> & { DeliveryStreamName: string }) =>
  fh.send(new CreateDeliveryStreamCommand({ ExtendedS3DestinationConfiguration: s3Destination('bucket-a'), ...input } as CreateDeliveryStreamCommandInput));
const describeStream = async (name: string) => (await fh.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: name }))).DeliveryStreamDescription!;
const invalid = (p: Promise<unknown>, message: RegExp) => assertError(p, 'InvalidArgumentException', message);
const invalidValue = (p: Promise<unknown>, member: string, constraint: RegExp) =>
  assertError(p, 'ValidationException', new RegExp(`at '${member.replace(/\./g, '\\.')}' failed to satisfy constraint: .*${constraint.source}`));

describe('CreateDeliveryStream and DescribeDeliveryStream', () => {
  test('DirectPut is the default; the description echoes the configuration with defaults filled in', async () => {
    const before = Date.now();
    const out = await create({ DeliveryStreamName: 'shape-1', Tags: [{ Key: 'team', Value: 'data' }] });
    assert.equal(out.DeliveryStreamARN, arn('shape-1'));
    const d = await describeStream('shape-1');
    assert.ok(d.CreateTimestamp instanceof Date && d.CreateTimestamp.getTime() >= before - 1000);
    assert.deepEqual(d.LastUpdateTimestamp, d.CreateTimestamp);
    assert.deepEqual(
      { ...d, CreateTimestamp: undefined, LastUpdateTimestamp: undefined },
      {
        DeliveryStreamName: 'shape-1',
        DeliveryStreamARN: arn('shape-1'),
        DeliveryStreamStatus: 'ACTIVE',
        DeliveryStreamEncryptionConfiguration: { Status: 'DISABLED' },
        DeliveryStreamType: 'DirectPut',
        VersionId: '1',
        CreateTimestamp: undefined,
        LastUpdateTimestamp: undefined,
        Destinations: [
          {
            DestinationId: DESTINATION_ID,
            ExtendedS3DestinationDescription: {
              RoleARN: ROLE,
              BucketARN: 'arn:aws:s3:::bucket-a',
              Prefix: '',
              BufferingHints: { SizeInMBs: 5, IntervalInSeconds: 300 },
              CompressionFormat: 'UNCOMPRESSED',
              EncryptionConfiguration: { NoEncryptionConfig: 'NoEncryption' },
              CloudWatchLoggingOptions: { Enabled: false },
              S3BackupMode: 'Disabled',
            },
          },
        ],
        HasMoreDestinations: false,
      },
    );
  });

  test('Redshift and HTTP endpoint descriptions never return Password or AccessKey', async () => {
    const inner = { RoleARN: ROLE, BucketARN: 'arn:aws:s3:::staging' };
    await create({
      DeliveryStreamName: 'shape-redshift',
      ExtendedS3DestinationConfiguration: undefined,
      RedshiftDestinationConfiguration: {
        RoleARN: ROLE,
        ClusterJDBCURL: 'jdbc:postgresql://127.0.0.1:5432/test',
        CopyCommand: { DataTableName: 'events' },
        Username: 'postgres',
        Password: 'secret-password',
        S3Configuration: inner,
      },
    });
    const r = (await describeStream('shape-redshift')).Destinations![0].RedshiftDestinationDescription!;
    assert.equal((r as any).Password, undefined);
    assert.equal(r.Username, 'postgres');
    assert.deepEqual(r.RetryOptions, { DurationInSeconds: 3600 });
    assert.equal(r.S3DestinationDescription!.CompressionFormat, 'UNCOMPRESSED');
    assert.equal(r.S3BackupMode, 'Disabled');

    await create({
      DeliveryStreamName: 'shape-http',
      ExtendedS3DestinationConfiguration: undefined,
      HttpEndpointDestinationConfiguration: { EndpointConfiguration: { Url: 'https://example.invalid/ingest', Name: 'sink', AccessKey: 'top-secret' }, S3Configuration: inner },
    });
    const h = (await describeStream('shape-http')).Destinations![0].HttpEndpointDestinationDescription!;
    assert.deepEqual(h.EndpointConfiguration, { Url: 'https://example.invalid/ingest', Name: 'sink' });
    assert.deepEqual(h.BufferingHints, { SizeInMBs: 5, IntervalInSeconds: 300 });
    assert.deepEqual(h.RetryOptions, { DurationInSeconds: 300 });
    assert.deepEqual(h.RequestConfiguration, { ContentEncoding: 'NONE' });
    assert.equal(h.S3BackupMode, 'FailedDataOnly');

    // At rest both are sealed with the data directory's master key; the adapters still get them.
    const stored = Buffer.concat(['pinstream.db', 'pinstream.db-wal'].filter((f) => existsSync(join(t.dataDir, f))).map((f) => readFileSync(join(t.dataDir, f))));
    assert.ok(stored.includes('shape-http'), 'the stream rows are in the files read');
    for (const secret of ['secret-password', 'top-secret']) assert.equal(stored.includes(secret), false, `${secret} stored in clear`);
    assert.equal((t.server.firehose.registry.get('shape-redshift')!.destination as any).Password, 'secret-password');
    assert.equal((t.server.firehose.registry.get('shape-http')!.destination as any).EndpointConfiguration.AccessKey, 'top-secret');
  });

  test('a second stream of the same name is ResourceInUseException', async () => {
    await create({ DeliveryStreamName: 'dup' });
    await assertError(create({ DeliveryStreamName: 'dup' }), 'ResourceInUseException', `Firehose dup under accountId ${ACCOUNT} already exists`);
  });

  test('names: 1-64 characters of [a-zA-Z0-9_.-]', async () => {
    const longest = 'n'.repeat(MAX_STREAM_NAME_LENGTH);
    await create({ DeliveryStreamName: longest });
    assert.equal((await describeStream(longest)).DeliveryStreamName, longest);
    await invalidValue(create({ DeliveryStreamName: longest + 'n' }), 'deliveryStreamName', /Member must have length less than or equal to 64/);
    await invalidValue(create({ DeliveryStreamName: 'has space' }), 'deliveryStreamName', /Member must satisfy regular expression pattern/);
    await invalidValue(create({ DeliveryStreamName: '' }), 'deliveryStreamName', /Member must have length greater than or equal to 1/);
  });

  test('exactly one supported destination block', async () => {
    await invalid(create({ DeliveryStreamName: 'none', ExtendedS3DestinationConfiguration: undefined }), /Exactly one destination configuration must be given.*got 0/);
    await invalid(create({ DeliveryStreamName: 'two', S3DestinationConfiguration: s3Destination('bucket-b') }), /Exactly one destination configuration.*got 2/);
    await invalid(
      create({
        DeliveryStreamName: 'splunk',
        ExtendedS3DestinationConfiguration: undefined,
        SplunkDestinationConfiguration: { HECEndpoint: 'https://x', HECEndpointType: 'Raw', HECToken: 't', S3Configuration: s3Destination('bucket-b') },
      }),
      /SplunkDestinationConfiguration is not supported by this server/,
    );
    await invalid(create({ DeliveryStreamName: 'msk', DeliveryStreamType: 'MSKAsSource' }), /MSKAsSource is not supported/);
    await invalid(create({ DeliveryStreamName: 'db', DeliveryStreamType: 'DatabaseAsSource' }), /DatabaseAsSource is not supported/);
  });

  test('buffering hints: ranges per destination kind, both or neither', async () => {
    const m = 'extendedS3DestinationConfiguration.bufferingHints';
    const hints = (SizeInMBs?: number, IntervalInSeconds?: number) => ({ ExtendedS3DestinationConfiguration: s3Destination('bucket-b', { BufferingHints: { SizeInMBs, IntervalInSeconds } }) });
    await create({ DeliveryStreamName: 'hints-max', ...hints(S3_BUFFER_SIZE_MB.max, BUFFER_INTERVAL_S.max) });
    await create({ DeliveryStreamName: 'hints-min', ...hints(S3_BUFFER_SIZE_MB.min, BUFFER_INTERVAL_S.min) });
    await invalidValue(create({ DeliveryStreamName: 'h', ...hints(S3_BUFFER_SIZE_MB.max + 1, 60) }), `${m}.sizeInMBs`, /Member must have value less than or equal to 128/);
    await invalidValue(create({ DeliveryStreamName: 'h', ...hints(0, 60) }), `${m}.sizeInMBs`, /Member must have value greater than or equal to 1/);
    await invalidValue(create({ DeliveryStreamName: 'h', ...hints(5, BUFFER_INTERVAL_S.max + 1) }), `${m}.intervalInSeconds`, /less than or equal to 900/);
    await invalid(create({ DeliveryStreamName: 'h', ...hints(5, undefined) }), /BufferingHints: SizeInMBs and IntervalInSeconds must be given together/);
    const http = (SizeInMBs: number) => ({
      ExtendedS3DestinationConfiguration: undefined,
      HttpEndpointDestinationConfiguration: { EndpointConfiguration: { Url: 'https://h.invalid' }, BufferingHints: { SizeInMBs, IntervalInSeconds: 60 }, S3Configuration: s3Destination('bucket-b') },
    });
    await create({ DeliveryStreamName: 'http-max', ...http(HTTP_BUFFER_SIZE_MB.max) });
    await invalidValue(create({ DeliveryStreamName: 'h', ...http(HTTP_BUFFER_SIZE_MB.max + 1) }), 'httpEndpointDestinationConfiguration.bufferingHints.sizeInMBs', /less than or equal to 64/);
  });

  test('retry, prefix, ARN, compression and partitioning rules', async () => {
    const ext = (extra: Record<string, unknown>) => ({ ExtendedS3DestinationConfiguration: s3Destination('bucket-b', extra) });
    const m = 'extendedS3DestinationConfiguration';
    await invalidValue(create({ DeliveryStreamName: 'p', ...ext({ Prefix: 'x'.repeat(MAX_PREFIX_LENGTH + 1) }) }), `${m}.prefix`, /less than or equal to 1024/);
    await invalidValue(create({ DeliveryStreamName: 'p', ...ext({ ErrorOutputPrefix: 'x'.repeat(MAX_PREFIX_LENGTH + 1) }) }), `${m}.errorOutputPrefix`, /less than or equal to 1024/);
    await create({ DeliveryStreamName: 'prefix-max', ...ext({ Prefix: 'x'.repeat(MAX_PREFIX_LENGTH) }) });
    await invalidValue(create({ DeliveryStreamName: 'p', ...ext({ RoleARN: 'arn:aws:iam::123:role/x' }) }), `${m}.roleARN`, /regular expression pattern/);
    await invalidValue(create({ DeliveryStreamName: 'p', ...ext({ BucketARN: 'arn:aws:s3:::bad/bucket' }) }), `${m}.bucketARN`, /regular expression pattern/);
    await invalidValue(create({ DeliveryStreamName: 'p', ...ext({ CompressionFormat: 'BZIP2' }) }), `${m}.compressionFormat`, /enum value set: \[UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY\]/);
    await invalid(create({ DeliveryStreamName: 'p', ...ext({ Prefix: 'y=!{timestamp:yyyy}/' }) }), /ErrorOutputPrefix is required when Prefix contains expressions/);
    await invalid(create({ DeliveryStreamName: 'p', ...ext({ CustomTimeZone: 'Nowhere/Atlantis' }) }), /ExtendedS3DestinationConfiguration: .*Nowhere\/Atlantis/);
    // The prefix rules the S3 writer names objects by refuse a stream at once, not at its first delivery.
    const errors = 'e/!{firehose:error-output-type}/';
    await invalid(create({ DeliveryStreamName: 'p', ...ext({ Prefix: 'm=!{timestamp:MMM}/', ErrorOutputPrefix: errors }) }), /Ths supplied prefix\(es\).*'MMM' is not supported/);
    await invalid(create({ DeliveryStreamName: 'p', ...ext({ Prefix: 'k=!{partitionKeyFromQuery:k}/', ErrorOutputPrefix: errors }) }), /can only be used when dynamic partitioning is enabled/);
    await invalid(create({ DeliveryStreamName: 'p', ...ext({ Prefix: 'y=!{timestamp:yyyy}/', ErrorOutputPrefix: 'e/!{timestamp:yyyy}/' }) }), /must contain !\{firehose:error-output-type\}/);
    const dp = (extra: Record<string, unknown>) => ext({ DynamicPartitioningConfiguration: { Enabled: true, RetryOptions: { DurationInSeconds: 60 } }, Prefix: 'k=!{partitionKeyFromQuery:k}/', ...extra });
    await invalid(create({ DeliveryStreamName: 'p', ...dp({}) }), /ErrorOutputPrefix is required when DynamicPartitioningConfiguration is enabled/);
    await invalid(create({ DeliveryStreamName: 'p', ...dp({ ErrorOutputPrefix: errors }) }), /no MetadataExtraction processor/);
    await invalid(
      create({ DeliveryStreamName: 'p', ...dp({ ErrorOutputPrefix: 'e/', BufferingHints: { SizeInMBs: 64, IntervalInSeconds: 0 } }) }),
      /IntervalInSeconds must be greater than 0 when DynamicPartitioningConfiguration is enabled/,
    );
    await invalidValue(
      create({ DeliveryStreamName: 'p', ...ext({ DynamicPartitioningConfiguration: { Enabled: true, RetryOptions: { DurationInSeconds: RETRY_DURATION_S.max + 1 } }, ErrorOutputPrefix: 'e/' }) }),
      `${m}.dynamicPartitioningConfiguration.retryOptions.durationInSeconds`,
      /less than or equal to 7200/,
    );
    const redshift = (CompressionFormat: string) => ({
      ExtendedS3DestinationConfiguration: undefined,
      RedshiftDestinationConfiguration: {
        RoleARN: ROLE,
        ClusterJDBCURL: 'jdbc:postgresql://127.0.0.1:5432/test',
        CopyCommand: { DataTableName: 't' },
        Username: 'u',
        Password: 'password',
        S3Configuration: s3Destination('bucket-b', { CompressionFormat }),
      },
    });
    for (const f of ['Snappy', 'ZIP', 'HADOOP_SNAPPY']) {
      await invalid(create({ DeliveryStreamName: 'rs', ...(redshift(f) as any) }), new RegExp(`CompressionFormat ${f} is not supported for Redshift`));
    }
    await create({ DeliveryStreamName: 'rs-gzip', ...(redshift('GZIP') as any) });
  });

  test('KinesisStreamAsSource needs an embedded stream and an existing role', async () => {
    const src = (KinesisStreamARN: string, RoleARN = ROLE) => ({ DeliveryStreamType: 'KinesisStreamAsSource' as const, KinesisStreamSourceConfiguration: { KinesisStreamARN, RoleARN } });
    await invalid(create({ DeliveryStreamName: 'ks', DeliveryStreamType: 'KinesisStreamAsSource' }), /KinesisStreamSourceConfiguration is required/);
    await invalid(create({ DeliveryStreamName: 'ks', ...src('arn:aws:kinesis:eu-west-1:123456789012:stream/x') }), /is not a stream of this server/);
    await invalid(create({ DeliveryStreamName: 'ks', ...src(`arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/missing`) }), /Kinesis stream .*missing does not exist/);
  });
});

describe('PutRecord and PutRecordBatch', () => {
  before(async () => {
    await create({ DeliveryStreamName: 'puts' });
  });

  test('answers RecordIds, in order, unencrypted', async () => {
    const one = await fh.send(new PutRecordCommand({ DeliveryStreamName: 'puts', Record: { Data: Buffer.from('one\n') } }));
    assert.equal(one.Encrypted, false);
    assert.match(one.RecordId!, /^[A-Za-z0-9_-]{16,}$/);
    const batch = await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'puts', Records: [{ Data: Buffer.from('a') }, { Data: Buffer.from('b') }, { Data: Buffer.from('') }] }));
    assert.equal(batch.FailedPutCount, 0);
    assert.equal(batch.Encrypted, false);
    assert.equal(batch.RequestResponses!.length, 3);
    const ids = new Set([one.RecordId, ...batch.RequestResponses!.map((r) => r.RecordId)]);
    assert.equal(ids.size, 4, 'every record gets its own id');
    const health = t.server.firehose.health('puts')!;
    assert.equal(health.delivery.logEnd, 4, 'all four records are in the stream log');
  });

  test(`at most ${MAX_BATCH_RECORDS} records per call`, async () => {
    const records = (n: number) => Array.from({ length: n }, (_, i) => ({ Data: Buffer.from(`r${i}`) }));
    const ok = await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'puts', Records: records(MAX_BATCH_RECORDS) }));
    assert.equal(ok.RequestResponses!.length, MAX_BATCH_RECORDS);
    await invalidValue(fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'puts', Records: records(MAX_BATCH_RECORDS + 1) })), 'records', /less than or equal to 500/);
    await invalidValue(fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'puts', Records: [] })), 'records', /greater than or equal to 1/);
  });

  test(`each record at most ${MAX_RECORD_BYTES} bytes, each call at most ${MAX_BATCH_BYTES} bytes`, async () => {
    await fh.send(new PutRecordCommand({ DeliveryStreamName: 'puts', Record: { Data: Buffer.alloc(MAX_RECORD_BYTES, 1) } }));
    await invalidValue(fh.send(new PutRecordCommand({ DeliveryStreamName: 'puts', Record: { Data: Buffer.alloc(MAX_RECORD_BYTES + 1) } })), 'record.data', /less than or equal to 1024000/);
    await invalidValue(
      fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'puts', Records: [{ Data: Buffer.from('x') }, { Data: Buffer.alloc(MAX_RECORD_BYTES + 1) }] })),
      'records.2.member.data',
      /less than or equal to 1024000/,
    );
    // Four full records plus the rest up to exactly 4 MiB is accepted; one byte more is not.
    const full = Array.from({ length: 4 }, () => ({ Data: Buffer.alloc(MAX_RECORD_BYTES, 2) }));
    const rest = MAX_BATCH_BYTES - 4 * MAX_RECORD_BYTES;
    const exact = await fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'puts', Records: [...full, { Data: Buffer.alloc(rest, 3) }] }));
    assert.equal(exact.FailedPutCount, 0);
    await invalid(fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'puts', Records: [...full, { Data: Buffer.alloc(rest + 1, 3) }] })), /exceeds the limit of 4194304 bytes/);
  });

  test('a missing stream is ResourceNotFoundException', async () => {
    const msg = `Firehose nope under account ${ACCOUNT} not found.`;
    await assertError(fh.send(new PutRecordCommand({ DeliveryStreamName: 'nope', Record: { Data: Buffer.from('x') } })), 'ResourceNotFoundException', msg);
    await assertError(fh.send(new PutRecordBatchCommand({ DeliveryStreamName: 'nope', Records: [{ Data: Buffer.from('x') }] })), 'ResourceNotFoundException', msg);
    await assertError(fh.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: 'nope' })), 'ResourceNotFoundException', msg);
    await assertError(fh.send(new DeleteDeliveryStreamCommand({ DeliveryStreamName: 'nope' })), 'ResourceNotFoundException', msg);
  });
});

describe('ListDeliveryStreams, DeleteDeliveryStream, UpdateDestination, encryption', () => {
  test('alphabetical, with Limit, ExclusiveStartDeliveryStreamName and a type filter', async () => {
    for (const n of ['list-c', 'list-a', 'list-b']) await create({ DeliveryStreamName: n });
    const all = (await fh.send(new ListDeliveryStreamsCommand({ Limit: MAX_LIST_LIMIT }))).DeliveryStreamNames!;
    assert.deepEqual(all, [...all].sort());
    assert.ok(['list-a', 'list-b', 'list-c'].every((n) => all.includes(n)));
    const page = await fh.send(new ListDeliveryStreamsCommand({ Limit: 2, ExclusiveStartDeliveryStreamName: 'list-', DeliveryStreamType: 'DirectPut' }));
    assert.deepEqual(page.DeliveryStreamNames, ['list-a', 'list-b']);
    assert.equal(page.HasMoreDeliveryStreams, true);
    const last = await fh.send(new ListDeliveryStreamsCommand({ ExclusiveStartDeliveryStreamName: all[all.length - 2] }));
    assert.deepEqual(last, { ...last, DeliveryStreamNames: [all[all.length - 1]], HasMoreDeliveryStreams: false });
    const kinesisOnly = await fh.send(new ListDeliveryStreamsCommand({ DeliveryStreamType: 'KinesisStreamAsSource' }));
    assert.deepEqual(kinesisOnly.DeliveryStreamNames, []);
    await invalidValue(fh.send(new ListDeliveryStreamsCommand({ Limit: MAX_LIST_LIMIT + 1 })), 'limit', /less than or equal to 10000/);
    const dflt = await fh.send(new ListDeliveryStreamsCommand({}));
    assert.equal(dflt.DeliveryStreamNames!.length, Math.min(10, all.length), 'default Limit is 10');
  });

  test('DeleteDeliveryStream removes the stream and its data', async () => {
    await create({ DeliveryStreamName: 'doomed' });
    await fh.send(new PutRecordCommand({ DeliveryStreamName: 'doomed', Record: { Data: Buffer.from('x') } }));
    await fh.send(new DeleteDeliveryStreamCommand({ DeliveryStreamName: 'doomed', AllowForceDelete: true }));
    await assertError(describeStream('doomed'), 'ResourceNotFoundException');
    await create({ DeliveryStreamName: 'doomed' });
    assert.equal(t.server.firehose.health('doomed')!.delivery.logEnd, 0, 'a new stream of the same name starts empty');
  });

  test('UpdateDestination checks the version, merges the update and bumps VersionId', async () => {
    await create({ DeliveryStreamName: 'upd', ExtendedS3DestinationConfiguration: s3Destination('bucket-u', { Prefix: 'p/' }) });
    const update = (v: string, u: object, id = DESTINATION_ID) =>
      fh.send(new UpdateDestinationCommand({ DeliveryStreamName: 'upd', CurrentDeliveryStreamVersionId: v, DestinationId: id, ...u }));
    await assertError(update('7', { ExtendedS3DestinationUpdate: { Prefix: 'q/' } }), 'ConcurrentModificationException', /does not match its current VersionId 1/);
    await invalid(update('1', { ExtendedS3DestinationUpdate: { Prefix: 'q/' } }, 'destinationId-000000000002'), /not found in delivery stream upd/);
    await update('1', { ExtendedS3DestinationUpdate: { BufferingHints: { SizeInMBs: 10, IntervalInSeconds: 60 }, CompressionFormat: 'GZIP' } });
    const d = await describeStream('upd');
    assert.equal(d.VersionId, '2');
    assert.ok(d.LastUpdateTimestamp!.getTime() >= d.CreateTimestamp!.getTime());
    const e = d.Destinations![0].ExtendedS3DestinationDescription!;
    assert.equal(e.Prefix, 'p/', 'members the update leaves out are kept');
    assert.deepEqual(e.BufferingHints, { SizeInMBs: 10, IntervalInSeconds: 60 });
    assert.equal(e.CompressionFormat, 'GZIP');
    await invalidValue(update('2', { ExtendedS3DestinationUpdate: { BufferingHints: { SizeInMBs: 129, IntervalInSeconds: 60 } } }), 'extendedS3DestinationUpdate.bufferingHints.sizeInMBs', /less than or equal to 128/);
    await assertError(update('1', { ExtendedS3DestinationUpdate: { Prefix: 'z/' } }), 'ConcurrentModificationException');
    assert.equal((await describeStream('upd')).VersionId, '2', 'refused updates change nothing');
    // Another destination type: the update must be complete, and the description follows it.
    await invalidValue(update('2', { HttpEndpointDestinationUpdate: { EndpointConfiguration: { Url: 'https://h.invalid' } } }), 'httpEndpointDestinationUpdate.s3Update', /must not be null/);
    await update('2', { HttpEndpointDestinationUpdate: { EndpointConfiguration: { Url: 'https://h.invalid' }, S3Update: s3Destination('bucket-h') } });
    const switched = await describeStream('upd');
    assert.equal(switched.VersionId, '3');
    assert.deepEqual(Object.keys(switched.Destinations![0]).sort(), ['DestinationId', 'HttpEndpointDestinationDescription']);
    assert.equal(switched.Destinations![0].HttpEndpointDestinationDescription!.S3DestinationDescription!.BucketARN, 'arn:aws:s3:::bucket-h');
  });

  test('Start/StopDeliveryStreamEncryption are refused: no encryption at rest', async () => {
    await create({ DeliveryStreamName: 'enc' });
    await invalid(fh.send(new StartDeliveryStreamEncryptionCommand({ DeliveryStreamName: 'enc', DeliveryStreamEncryptionConfigurationInput: { KeyType: 'AWS_OWNED_CMK' } })), /encryption at rest .* is not available/);
    await invalid(fh.send(new StopDeliveryStreamEncryptionCommand({ DeliveryStreamName: 'enc' })), /encryption at rest .* is not available/);
    await invalid(create({ DeliveryStreamName: 'enc2', DeliveryStreamEncryptionConfigurationInput: { KeyType: 'AWS_OWNED_CMK' } }), /encryption at rest/);
  });
});

describe('tags', () => {
  test(`at most ${MAX_TAGS_PER_STREAM} per stream; key and value lengths; listing pages`, async () => {
    const tags = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ({ Key: `k${String(i + from).padStart(2, '0')}`, Value: `v${i + from}` }));
    await invalidValue(create({ DeliveryStreamName: 'tags-over', Tags: tags(MAX_TAGS_PER_STREAM + 1) }), 'tags', /less than or equal to 50/);
    await create({ DeliveryStreamName: 'tagged', Tags: tags(10) });
    await fh.send(new TagDeliveryStreamCommand({ DeliveryStreamName: 'tagged', Tags: tags(MAX_TAGS_PER_STREAM - 10, 10) }));
    await assertError(fh.send(new TagDeliveryStreamCommand({ DeliveryStreamName: 'tagged', Tags: [{ Key: 'one-more', Value: '' }] })), 'LimitExceededException', /at most 50 tags/);
    await fh.send(new TagDeliveryStreamCommand({ DeliveryStreamName: 'tagged', Tags: [{ Key: 'k00', Value: 'replaced' }] }));
    const page1 = await fh.send(new ListTagsForDeliveryStreamCommand({ DeliveryStreamName: 'tagged', Limit: 3 }));
    assert.deepEqual(page1.Tags, [{ Key: 'k00', Value: 'replaced' }, { Key: 'k01', Value: 'v1' }, { Key: 'k02', Value: 'v2' }]);
    assert.equal(page1.HasMoreTags, true);
    const rest = await fh.send(new ListTagsForDeliveryStreamCommand({ DeliveryStreamName: 'tagged', ExclusiveStartTagKey: 'k47' }));
    assert.deepEqual(rest, { ...rest, Tags: [{ Key: 'k48', Value: 'v48' }, { Key: 'k49', Value: 'v49' }], HasMoreTags: false });
    await fh.send(new UntagDeliveryStreamCommand({ DeliveryStreamName: 'tagged', TagKeys: ['k00', 'k01', 'absent'] }));
    assert.equal((await fh.send(new ListTagsForDeliveryStreamCommand({ DeliveryStreamName: 'tagged' }))).Tags!.length, MAX_TAGS_PER_STREAM - 2);
    const tg = (Key: string, Value = '') => fh.send(new TagDeliveryStreamCommand({ DeliveryStreamName: 'tagged', Tags: [{ Key, Value }] }));
    await invalidValue(tg('x'.repeat(MAX_TAG_KEY_LENGTH + 1)), 'tags.1.member.key', /less than or equal to 128/);
    await invalidValue(tg('x', 'v'.repeat(MAX_TAG_VALUE_LENGTH + 1)), 'tags.1.member.value', /less than or equal to 256/);
    await invalidValue(tg('aws:reserved'), 'tags.1.member.key', /regular expression pattern/);
    await invalidValue(fh.send(new ListTagsForDeliveryStreamCommand({ DeliveryStreamName: 'tagged', Limit: 51 })), 'limit', /less than or equal to 50/);
  });
});

describe('hostile member values (found by fuzzing)', () => {
  const call = async (op: string, body: string) => {
    const res = await signedRequest(t.server.url, {
      path: '/',
      service: 'firehose',
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `Firehose_20150804.${op}` },
      body,
      credentials: t.server.admin,
    });
    return { status: res.status, body: await res.json() };
  };
  const deep = (n: number, open: string, close: string) => open.repeat(n) + '1' + close.repeat(n);

  test('objects or lists where the model has a scalar: SerializationException with Coral texts, before any constraint; nesting past the decode limit: SerializationException; never a 500', async () => {
    await create({ DeliveryStreamName: 'hostile-1' });
    const d = MAX_NESTING_DEPTH - 2;
    const cases: Array<[string, string, string]> = [
      ['DescribeDeliveryStream', `{"DeliveryStreamName":"hostile-1","Limit":${deep(d, '{"a":', '}')}}`, 'Start of structure or map found where not expected.'],
      ['UntagDeliveryStream', `{"DeliveryStreamName":"hostile-1","TagKeys":${deep(d, '[', ']')}}`, 'Start of list found where not expected'],
      ['ListDeliveryStreams', `{"DeliveryStreamType":[${'"xxxxxxxx",'.repeat(5_000)}"x"]}`, 'Start of list found where not expected'],
      ['DescribeDeliveryStream', '{"DeliveryStreamName":{"toString":1,"valueOf":2}}', 'Start of structure or map found where not expected.'],
    ];
    for (const [op, body, message] of cases) {
      const r = await call(op, body);
      assert.equal(r.status, 400, `${op}: ${JSON.stringify(r.body).slice(0, 200)}`);
      assert.deepEqual(r.body, { __type: 'SerializationException', Message: message });
    }
    for (const body of [`{"DeliveryStreamName":"hostile-1","Limit":${deep(10_000, '{"a":', '}')}}`, `{"DeliveryStreamType":${deep(100_000, '[', ']')}}`]) {
      const r = await call('DescribeDeliveryStream', body);
      assert.equal(r.status, 400);
      assert.equal(r.body.__type, 'SerializationException');
      assert.match(r.body.Message, /nests objects and arrays more than 32 levels deep/);
    }
  });
});

describe('IAM', () => {
  test('a key without firehose permissions is denied; a policy on one stream allows just that stream', async () => {
    await create({ DeliveryStreamName: 'iam-allowed' });
    await create({ DeliveryStreamName: 'iam-other' });
    const iam = new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 });
    try {
      await iam.send(new CreateUserCommand({ UserName: 'fh-user' }));
      const key = (await iam.send(new CreateAccessKeyCommand({ UserName: 'fh-user' }))).AccessKey!;
      const user = firehoseClient(t.server, { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! });
      try {
        await assertError(user.send(new ListDeliveryStreamsCommand({})), 'AccessDeniedException', /not authorized to perform: firehose:ListDeliveryStreams on resource: \*/);
        const put = (n: string) => user.send(new PutRecordCommand({ DeliveryStreamName: n, Record: { Data: Buffer.from('x') } }));
        await assertError(put('iam-allowed'), 'AccessDeniedException', new RegExp(`firehose:PutRecord on resource: ${arn('iam-allowed')}`));
        await iam.send(
          new PutUserPolicyCommand({
            UserName: 'fh-user',
            PolicyName: 'put-one',
            PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'firehose:PutRecord', Resource: arn('iam-allowed') }] }),
          }),
        );
        assert.ok((await put('iam-allowed')).RecordId);
        await assertError(put('iam-other'), 'AccessDeniedException');
        await assertError(user.send(new DeleteDeliveryStreamCommand({ DeliveryStreamName: 'iam-allowed' })), 'AccessDeniedException', /firehose:DeleteDeliveryStream/);
      } finally {
        user.destroy();
      }
    } finally {
      iam.destroy();
    }
  });
});

describe('AWS CLI', () => {
  test('create-delivery-stream, put-record, describe-delivery-stream', async (tc) => {
    if (await skipUnlessAws(tc)) return;
    const target = { endpoint: t.server.url, credentials: t.server.admin };
    const created = awsOk(
      await aws(
        ['firehose', 'create-delivery-stream', '--delivery-stream-name', 'cli-stream', '--extended-s3-destination-configuration', JSON.stringify(s3Destination('cli-bucket'))],
        target,
      ),
    );
    assert.equal(created.json.DeliveryStreamARN, arn('cli-stream'));
    const put = awsOk(await aws(['firehose', 'put-record', '--delivery-stream-name', 'cli-stream', '--record', `Data=${Buffer.from('hello\n').toString('base64')}`], target));
    assert.equal(typeof put.json.RecordId, 'string');
    assert.equal(put.json.Encrypted, false);
    const d = awsOk(await aws(['firehose', 'describe-delivery-stream', '--delivery-stream-name', 'cli-stream'], target)).json.DeliveryStreamDescription;
    assert.equal(d.DeliveryStreamStatus, 'ACTIVE');
    assert.equal(d.VersionId, '1');
    assert.equal(d.Destinations[0].ExtendedS3DestinationDescription.BucketARN, 'arn:aws:s3:::cli-bucket');
    const missing = await aws(['firehose', 'describe-delivery-stream', '--delivery-stream-name', 'cli-missing'], target);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /ResourceNotFoundException.*Firehose cli-missing under account/);
  });
});

test(`the ${MAX_DELIVERY_STREAMS + 1}th delivery stream of an account is LimitExceededException`, async (t) => {
  const ts = await startTestServer();
  await createDeliveryRole(ts.server);
  t.after(() => ts.close());
  const client = firehoseClient(ts.server);
  t.after(() => client.destroy());
  // Filling the quota through the API would open 5,000 logs (and so would any change the service
  // hears of): rows put in the store and in the registry's cached table, unannounced, count the same.
  const db = new Database(join(ts.dataDir, 'pinstream.db'));
  t.after(() => db.close());
  const rows = (ts.server.firehose.registry as unknown as { rows: CachedTable<{ name: string; data: string }> }).rows;
  const insert = db.prepare('INSERT INTO firehose_streams (name, data) VALUES (?, ?)');
  db.transaction(() => {
    for (let i = 0; i < MAX_DELIVERY_STREAMS; i++) {
      insert.run(`filler-${i}`, '{}');
      rows.replace([`filler-${i}`], [{ name: `filler-${i}`, data: '{}' }]);
    }
  })();
  const input = { DeliveryStreamName: 'one-too-many', ExtendedS3DestinationConfiguration: s3Destination('quota') };
  await assertError(client.send(new CreateDeliveryStreamCommand(input)), 'LimitExceededException', new RegExp(`limit of ${MAX_DELIVERY_STREAMS} delivery streams`));
  db.prepare('DELETE FROM firehose_streams WHERE name = ?').run('filler-0');
  rows.replace(['filler-0'], []);
  await client.send(new CreateDeliveryStreamCommand(input));
});
