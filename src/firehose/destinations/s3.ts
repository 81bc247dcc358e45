// The extended-S3 destination (ExtendedS3DestinationConfiguration, or the deprecated
// S3DestinationConfiguration): turns one buffered batch into one S3 object — records concatenated
// as they are (Firehose adds no delimiter unless the AppendDelimiterToRecord processor is set),
// converted to Parquet when DataFormatConversionConfiguration is enabled, compressed, and named by
// keys.ts. Also owns the error output (JSON-lines documents under ErrorOutputPrefix), the raw-data
// backup (S3BackupMode Enabled) and dynamic partitioning. Redshift and HTTP-endpoint destinations
// reuse it for staging and backup through writeObject/writeErrors.
//
// Every key of a batch is derived from the batch id, so a retried batch overwrites its own objects
// instead of adding duplicates.

import { createHash } from 'node:crypto';
import { DestinationConfigError, type DeliveryBatch, type DeliveryOutcome, type DestinationContext, type FirehoseDestination, type FirehoseRecord, type PartitionResult, type StreamInfo, type BufferingHints } from '../destination.js';
import type { ObjectStore } from '../objects/object-store.js';
import { isCompressionFormat, type CompressionFormat } from '../compress.js';
import { inlineBuilder } from '../build.js';
import { COMPRESSION_EXTENSIONS, DEFAULT_TIME_ZONE, MAX_EVALUATED_PREFIX_CHARS, dataPrefix, derivedUuid, errorPrefix, fileExtension, objectSuffix, prefixPartitionKeys, validateTimeZone } from '../keys.js';
import { parquetOptions, type ParquetOptions } from '../parquet.js';
import { SchemaError, type ConversionSchema } from '../schema.js';
import { bufferingOf, DEFAULT_DYNAMIC_PARTITIONING_RETRY_S, retryDurationMsOf } from '../limits.js';
import { enabledProcessors, errorOutputTypeFor, extractPartitionKeys, metadataExtractionQuery, parseExtractionQuery, type ExtractionQuery } from '../partition.js';

/** What AppendDelimiterToRecord appends to each record. */
export const RECORD_DELIMITER = Buffer.from('\n');
export const FORMAT_CONVERSION_FAILED_TYPE = 'format-conversion-failed';
/** errorCode for conversion failures whose message carries no `DataFormatConversion.*` code. */
export const FORMAT_CONVERSION_DEFAULT_CODE = 'DataFormatConversion.MalformedData';
/**
 * Pinstream's own names for a batch whose retry window ran out (dynamic partitioning's
 * RetryOptions): AWS documents no error-output-type for that case.
 */
export const DELIVERY_FAILED_TYPE = 'delivery-failed';
export const DELIVERY_FAILED_CODE = 'S3.DeliveryFailed';

type Conf = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const obj = (v: unknown): Conf | undefined => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Conf) : undefined);

export type WriteResult = { ok: true; key: string } | { ok: false; error: string };

export class S3Destination implements FirehoseDestination {
  readonly kind = 'ExtendedS3' as const;
  readonly buffering: BufferingHints;
  readonly retryDurationMs: number;
  partition?: (record: FirehoseRecord) => PartitionResult;

  private readonly store: ObjectStore;
  private readonly prefix: string | undefined;
  private readonly errorOutputPrefix: string | undefined;
  private readonly compression: CompressionFormat;
  private readonly timeZone: string;
  private readonly delimiter: boolean;
  private readonly dynamic: boolean;
  private readonly conversion: Conf | undefined;
  private readonly parquet: ParquetOptions | undefined;
  private readonly extension: string;
  private readonly backup: S3Destination | undefined;

  constructor(
    config: Conf,
    private readonly stream: () => StreamInfo,
    private readonly ctx: DestinationContext,
  ) {
    const bucketArn = str(config.BucketARN);
    if (!bucketArn) throw new DestinationConfigError('BucketARN is required');
    // Written as the configuration's own role (the backup configuration has its own RoleARN).
    this.store = ctx.objects(bucketArn, str(config.RoleARN));
    this.prefix = str(config.Prefix);
    this.errorOutputPrefix = str(config.ErrorOutputPrefix);
    const format = config.CompressionFormat ?? 'UNCOMPRESSED';
    if (!isCompressionFormat(format)) throw new DestinationConfigError(`unknown CompressionFormat ${JSON.stringify(format)}`);
    this.compression = format;
    this.timeZone = str(config.CustomTimeZone) ?? DEFAULT_TIME_ZONE;
    const tzError = validateTimeZone(this.timeZone);
    if (tzError) throw new DestinationConfigError(tzError);

    this.buffering = bufferingOf(obj(config.BufferingHints));

    const processors = enabledProcessors(config.ProcessingConfiguration);
    this.delimiter = processors.some((p) => p.Type === 'AppendDelimiterToRecord');

    const conversion = obj(config.DataFormatConversionConfiguration);
    this.conversion = conversion && conversion.Enabled !== false ? conversion : undefined;
    if (this.conversion) {
      const p = parquetOptions(this.conversion);
      if (!p.ok) throw new DestinationConfigError(`DataFormatConversionConfiguration: ${p.error}`);
      this.parquet = p.options;
      const sc = obj(this.conversion.SchemaConfiguration);
      if (!sc || !str(sc.DatabaseName) || !str(sc.TableName) || !str(sc.RoleARN)) {
        throw new DestinationConfigError('DataFormatConversionConfiguration.SchemaConfiguration must name DatabaseName, TableName and RoleARN: the Parquet columns are the table\'s');
      }
      if (!ctx.schema) throw new DestinationConfigError('DataFormatConversionConfiguration: this server has no Data Catalog to read the table from');
      if (ctx.validating) {
        try {
          ctx.schema(sc);
        } catch (e) {
          if (e instanceof SchemaError) throw new DestinationConfigError(`DataFormatConversionConfiguration.SchemaConfiguration: ${e.message}`);
          throw e;
        }
      }
    }
    this.extension = fileExtension({ fileExtension: str(config.FileExtension), conversion: this.conversion !== undefined, compression: this.compression });

    const dp = obj(config.DynamicPartitioningConfiguration);
    this.dynamic = dp?.Enabled === true;
    // S3 itself is retried for as long as it takes; only a partitioned batch has a window
    // (DynamicPartitioningConfiguration.RetryOptions), after which it goes to the error output.
    this.retryDurationMs = this.dynamic ? retryDurationMsOf(obj(dp?.RetryOptions), DEFAULT_DYNAMIC_PARTITIONING_RETRY_S) : Infinity;
    if (this.dynamic) {
      const query = metadataExtractionQuery(config.ProcessingConfiguration);
      const parsed = query === undefined ? undefined : parseExtractionQuery(query);
      this.partition = (record) => this.partitionOf(record, parsed);
    }

    const backupConf = obj(config.S3BackupConfiguration);
    this.backup = config.S3BackupMode === 'Enabled' && backupConf ? new S3Destination(backupConf, stream, ctx) : undefined;
  }

  private partitionOf(record: FirehoseRecord, query: ExtractionQuery | undefined): PartitionResult {
    const used = prefixPartitionKeys(this.prefix);
    let extracted: Record<string, string> = {};
    if (used.some((u) => u.source === 'query')) {
      if (!query) return { ok: false, error: 'no MetadataExtractionQuery is configured for !{partitionKeyFromQuery:…}' };
      const r = extractPartitionKeys(query, record.data);
      if (!r.ok) return r;
      extracted = r.keys;
    }
    const keys: Record<string, string> = {};
    for (const u of used) {
      if (u.source === 'lambda') return { ok: false, error: `!{partitionKeyFromLambda:${u.key}} needs a Lambda processor, which Pinstream does not run` };
      keys[u.key] = extracted[u.key];
    }
    const evaluated = dataPrefix(this.prefix, true, { arrivalMs: record.arrivalMs, timeZone: this.timeZone, partitionKeys: keys, randomSeed: '' });
    if (evaluated.length > MAX_EVALUATED_PREFIX_CHARS) {
      return { ok: false, error: `the evaluated prefix is ${evaluated.length} characters; at most ${MAX_EVALUATED_PREFIX_CHARS} are allowed` };
    }
    return { ok: true, key: JSON.stringify(Object.entries(keys)), keys };
  }

  async deliver(batch: DeliveryBatch): Promise<DeliveryOutcome> {
    try {
      if (this.backup) {
        const b = await this.backup.writeObject(batch.records, batch.firstArrivalMs, batch.id);
        if (!b.ok) return { ok: false, error: `S3 backup: ${b.error}` };
      }
      let body: Buffer | undefined;
      if (this.conversion) {
        // Read per batch: a table changed since the last batch is used at once, and a table
        // dropped (or a role that may no longer read it) keeps the records here, retried and
        // reported in health, until it is back: nothing is converted against a guessed schema.
        let schema: ConversionSchema;
        try {
          schema = await this.ctx.schema!(obj(this.conversion.SchemaConfiguration)!);
        } catch (e) {
          if (e instanceof SchemaError) return { ok: false, error: `DataFormatConversion: ${e.message}` };
          throw e;
        }
        body = await this.convert(batch, schema);
        if (body === undefined) return { ok: true };
      } else body = this.concat(batch.records);
      await this.put(this.dataKey(batch.firstArrivalMs, batch.id, batch.partitionKeys, undefined), body, true, batch.firstArrivalMs);
      return { ok: true };
    } catch (e) {
      return { ok: false, error: `${this.store.location}: ${(e as Error).message}` };
    }
  }

  /** Converts to Parquet; failed records go to the error output. undefined = nothing left to write. */
  private async convert(batch: DeliveryBatch, schema: ConversionSchema): Promise<Buffer | undefined> {
    const result = await (this.ctx.build ?? inlineBuilder).parquet(batch.records, this.parquet!, schema);
    if (result.ok) return result.body;
    const sc = obj(this.conversion!.SchemaConfiguration) ?? {};
    const docs = result.failed.map(({ index, error }) => {
      const r = batch.records[index];
      const m = /^(DataFormatConversion\.[A-Za-z]+):?\s*(.*)$/s.exec(error);
      return {
        attemptsMade: batch.attempt,
        arrivalTimestamp: r.arrivalMs,
        lastErrorCode: m ? m[1] : FORMAT_CONVERSION_DEFAULT_CODE,
        lastErrorMessage: m ? m[2] : error,
        attemptEndingTimestamp: this.ctx.clock.now(),
        rawData: r.data.toString('base64'),
        sequenceNumber: null,
        subSequenceNumber: null,
        dataCatalogTable: {
          catalogId: str(sc.CatalogId) ?? null,
          databaseName: str(sc.DatabaseName) ?? null,
          tableName: str(sc.TableName) ?? null,
          region: str(sc.Region) ?? null,
          versionId: str(sc.VersionId) ?? 'LATEST',
          catalogArn: null,
        },
      };
    });
    const failedArrival = Math.min(...result.failed.map((f) => batch.records[f.index].arrivalMs));
    await this.putErrorDocs(docs, FORMAT_CONVERSION_FAILED_TYPE, failedArrival, `${batch.id}:${FORMAT_CONVERSION_FAILED_TYPE}`);
    return result.body && result.failed.length < batch.records.length ? result.body : undefined;
  }

  /**
   * Writes records as one object the normal way (delimiter, compression, key naming; no format
   * conversion) and returns its key. `prefix` replaces the configured Prefix (same expression rules).
   */
  async writeObject(records: FirehoseRecord[], firstArrivalMs: number, batchId: string, opts: { prefix?: string } = {}): Promise<WriteResult> {
    try {
      const key = this.dataKey(firstArrivalMs, batchId, undefined, opts.prefix);
      await this.put(key, this.concat(records), false, firstArrivalMs);
      return { ok: true, key };
    } catch (e) {
      return { ok: false, error: `${this.store.location}: ${(e as Error).message}` };
    }
  }

  /**
   * Writes one JSON-lines error document per record under the error prefix for errorOutputType
   * (e.g. `http-endpoint-failed`, `processing-failed`): {attemptsMade, arrivalTimestamp, errorCode,
   * errorMessage, attemptEndingTimestamp, rawData (base64)}.
   */
  async writeErrors(records: FirehoseRecord[], errorOutputType: string, errorCode: string, errorMessage: string, firstArrivalMs: number, attemptsMade = 1): Promise<DeliveryOutcome> {
    if (records.length === 0) return { ok: true };
    const now = this.ctx.clock.now();
    const docs = records.map((r) => ({
      attemptsMade,
      arrivalTimestamp: r.arrivalMs,
      errorCode,
      errorMessage,
      attemptEndingTimestamp: now,
      rawData: r.data.toString('base64'),
    }));
    // Seeded by the records themselves, so writing the same failure again replaces the object.
    const seed = createHash('sha256').update(errorOutputType).update(records.map((r) => r.recordId).join('\n')).digest('hex');
    try {
      await this.putErrorDocs(docs, errorOutputType, firstArrivalMs, seed);
      return { ok: true };
    } catch (e) {
      return { ok: false, error: `${this.store.location}: ${(e as Error).message}` };
    }
  }

  async abandon(batch: DeliveryBatch, lastError: string): Promise<DeliveryOutcome> {
    return this.writeErrors(batch.records, DELIVERY_FAILED_TYPE, DELIVERY_FAILED_CODE, lastError, batch.firstArrivalMs, batch.attempt);
  }

  async rejectRecords(_stream: StreamInfo, records: FirehoseRecord[], errorCode: string, errorMessage: string): Promise<DeliveryOutcome> {
    if (records.length === 0) return { ok: true };
    const first = Math.min(...records.map((r) => r.arrivalMs));
    return this.writeErrors(records, errorOutputTypeFor(errorCode), errorCode, errorMessage, first);
  }

  async close(): Promise<void> {
    // Object stores belong to the server (one per bucket, shared by streams): nothing to release here.
  }

  private concat(records: FirehoseRecord[]): Buffer {
    return Buffer.concat(this.delimiter ? records.flatMap((r) => [r.data, RECORD_DELIMITER]) : records.map((r) => r.data));
  }

  private dataKey(firstArrivalMs: number, batchId: string, partitionKeys: Record<string, string> | undefined, prefixOverride: string | undefined): string {
    const ctx = { arrivalMs: firstArrivalMs, timeZone: this.timeZone, partitionKeys, randomSeed: batchId };
    const prefix = dataPrefix(prefixOverride ?? this.prefix, this.dynamic && prefixOverride === undefined, ctx);
    return prefix + objectSuffix(this.stream(), firstArrivalMs, batchId, this.extension, this.timeZone);
  }

  private async put(key: string, body: Buffer, converted: boolean, firstArrivalMs: number): Promise<void> {
    // Parquet compresses inside the file; the object itself is only compressed for raw data.
    const data = converted && this.conversion ? body : await (this.ctx.build ?? inlineBuilder).compress(this.compression, body, { entryName: entryName(key), mtimeMs: firstArrivalMs });
    await this.store.put(key, data);
  }

  private async putErrorDocs(docs: object[], errorOutputType: string, firstArrivalMs: number, seed: string): Promise<void> {
    const uuid = derivedUuid(seed);
    const ctx = { arrivalMs: firstArrivalMs, timeZone: this.timeZone, randomSeed: seed };
    // Error objects are JSON lines: compressed like the data, but never named `.parquet`.
    const key = errorPrefix(this.prefix, this.errorOutputPrefix, errorOutputType, ctx) + objectSuffix(this.stream(), firstArrivalMs, uuid, COMPRESSION_EXTENSIONS[this.compression], this.timeZone);
    const body = Buffer.from(docs.map((d) => JSON.stringify(d) + '\n').join(''));
    await this.store.put(key, await (this.ctx.build ?? inlineBuilder).compress(this.compression, body, { entryName: entryName(key), mtimeMs: firstArrivalMs }));
  }
}

/** The ZIP entry is the object's own name without `.zip`. */
function entryName(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1).replace(/\.zip$/, '') || 'data';
}
