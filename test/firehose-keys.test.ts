// Firehose S3 key naming (keys.ts) and the MetadataExtractionQuery subset (partition.ts), on fixed
// instants. Expected prefixes in the "AWS example" cases are the evaluated examples from AWS's
// "Custom prefixes for Amazon S3 objects" page.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  COMPRESSION_EXTENSIONS,
  MAX_EVALUATED_PREFIX_CHARS,
  PrefixEvaluationError,
  PrefixSyntaxError,
  RANDOM_STRING_CHARS,
  dataPrefix,
  derivedUuid,
  errorPrefix,
  fileExtension,
  formatTimestamp,
  objectSuffix,
  prefixPartitionKeys,
  validatePrefix,
  validateTimeZone,
} from '../src/firehose/keys.js';
import { METADATA_EXTRACTION_FAILED, errorOutputTypeFor, extractPartitionKeys, parseExtractionQuery, validateExtraction } from '../src/firehose/partition.js';

const T = Date.UTC(2024, 2, 7, 13, 5, 12, 345); // 2024-03-07T13:05:12.345Z
const AWS_T = Date.UTC(2018, 6, 6, 23, 30, 0); // the docs' "2018-07-06, hour 23" example
const ctx = (arrivalMs = T, extra = {}) => ({ arrivalMs, randomSeed: 'seed', ...extra });

describe('timestamp patterns (Java DateTimeFormatter subset)', () => {
  it('formats the supported letters with Java widths', () => {
    assert.equal(formatTimestamp('yyyy/MM/dd/HH/', T), '2024/03/07/13/');
    assert.equal(formatTimestamp('yy-M-d H:m:s', T), '24-3-7 13:5:12');
    assert.equal(formatTimestamp('uuuu.S.SSS.SSSSSS', T), '2024.3.345.345000');
    assert.equal(formatTimestamp('mm-ss', Date.UTC(2024, 0, 1, 0, 4, 9)), '04-09');
  });

  it('keeps quoted text literally and reads two quotes as one', () => {
    assert.equal(formatTimestamp("'year='yyyy'/month='MM", T), 'year=2024/month=03');
    assert.equal(formatTimestamp("yyyy''MM", T), "2024'03");
    assert.equal(formatTimestamp("'it''s' HH", T), "it's 13");
    assert.equal(formatTimestamp("'dd MM yyyy'", T), 'dd MM yyyy');
  });

  it('uses CustomTimeZone for the calendar fields', () => {
    assert.equal(formatTimestamp('yyyy/MM/dd/HH', T, 'Asia/Tokyo'), '2024/03/07/22');
    assert.equal(formatTimestamp('yyyy/MM/dd/HH', Date.UTC(2024, 11, 31, 20, 0), 'Asia/Tokyo'), '2025/01/01/05');
    assert.equal(formatTimestamp('yyyy/MM/dd/HH', Date.UTC(2024, 2, 7, 3, 0), 'America/New_York'), '2024/03/06/22');
    assert.equal(validateTimeZone('Asia/Tokyo'), undefined);
    assert.match(validateTimeZone('Mars/Olympus') ?? '', /not a known IANA time zone/);
  });

  it('rejects letters it cannot render as Java would', () => {
    for (const p of ['MMM', 'a', 'EEE', 'YYYY', 'hh', 'z', 'ddd']) {
      assert.throws(() => formatTimestamp(p, T), PrefixSyntaxError, p);
    }
    assert.throws(() => formatTimestamp("'open", T), /unterminated quote/);
    assert.throws(() => formatTimestamp('yyyy[MM]', T), /reserved character/);
  });
});

describe('prefix evaluation', () => {
  it('defaults to yyyy/MM/dd/HH/ in UTC from the oldest arrival', () => {
    assert.equal(dataPrefix(undefined, false, ctx()), '2024/03/07/13/');
    assert.equal(dataPrefix('', false, ctx()), '2024/03/07/13/');
  });

  it('appends yyyy/MM/dd/HH/ to a prefix without a timestamp expression, as written', () => {
    assert.equal(dataPrefix('logs/', false, ctx()), 'logs/2024/03/07/13/');
    assert.equal(dataPrefix('logs', false, ctx()), 'logs2024/03/07/13/');
    const r = dataPrefix('r=!{firehose:random-string}/', false, ctx());
    assert.match(r, /^r=[0-9a-f]{11}\/2024\/03\/07\/13\/$/);
  });

  it('evaluates the AWS examples', () => {
    assert.equal(
      dataPrefix('myPrefix/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/', false, ctx(AWS_T)),
      'myPrefix/year=2018/month=07/day=06/hour=23/',
    );
    assert.equal(
      errorPrefix('x/', "myErrorPrefix/!{timestamp:'year='yyyy'/month='MM'/day='dd'/hour='HH}/!{firehose:error-output-type}", 'processing-failed', ctx(AWS_T)),
      'myErrorPrefix/year=2018/month=07/day=06/hour=23/processing-failed',
    );
    const p = dataPrefix('myFirehose/DeliveredYear=!{timestamp:yyyy}/anyMonth/rand=!{firehose:random-string}', false, ctx(AWS_T));
    assert.match(p, new RegExp(`^myFirehose/DeliveredYear=2018/anyMonth/rand=[0-9a-f]{${RANDOM_STRING_CHARS}}$`));
    assert.equal(
      errorPrefix(undefined, 'myFirehoseFailures/!{firehose:error-output-type}/', 'processing-failed', ctx(AWS_T)),
      'myFirehoseFailures/processing-failed/',
    );
  });

  it('derives an empty ErrorOutputPrefix from Prefix, the error type and the hour', () => {
    assert.equal(errorPrefix('myFirehosePrefix/', undefined, 'processing-failed', ctx()), 'myFirehosePrefix/processing-failed/2024/03/07/13/');
    assert.equal(errorPrefix(undefined, '', 'delivery-failed', ctx()), 'delivery-failed/2024/03/07/13/');
  });

  it('gives each random-string occurrence its own value, fixed by the seed', () => {
    const parts = (seed: string) => dataPrefix('!{firehose:random-string}/!{firehose:random-string}/', false, ctx(T, { randomSeed: seed })).split('/');
    const [a, b] = parts('batch-1');
    assert.equal(a.length, RANDOM_STRING_CHARS);
    assert.notEqual(a, b);
    assert.deepEqual(parts('batch-1'), parts('batch-1'));
    assert.notEqual(parts('batch-2')[0], a);
  });

  it('inserts partition keys and appends no time under dynamic partitioning', () => {
    const prefix = 'app=!{partitionKeyFromQuery:app}/type=!{partitionKeyFromQuery:type}/';
    assert.equal(dataPrefix(prefix, true, ctx(T, { partitionKeys: { app: 'a1', type: 'click' } })), 'app=a1/type=click/');
    assert.equal(dataPrefix(`${prefix}!{timestamp:yyyy}/`, true, ctx(T, { partitionKeys: { app: 'a1', type: 'click' } })), 'app=a1/type=click/2024/');
    assert.throws(() => dataPrefix(prefix, true, ctx(T, { partitionKeys: { app: 'a1' } })), PrefixEvaluationError);
    // A key the record did not yield is missing even when Object.prototype has a member of that name.
    assert.throws(() => dataPrefix('!{partitionKeyFromQuery:toString}/', true, ctx(T, { partitionKeys: {} })), PrefixEvaluationError);
    assert.deepEqual(prefixPartitionKeys(`${prefix}!{partitionKeyFromLambda:x}`), [
      { source: 'query', key: 'app' },
      { source: 'query', key: 'type' },
      { source: 'lambda', key: 'x' },
    ]);
  });
});

describe('object names', () => {
  it('builds <stream>-<version>-<yyyy>-<MM>-<dd>-<HH>-<mm>-<ss>-<uuid><ext>', () => {
    const uuid = '0f8fad5b-d9cb-469f-a165-70867728950e';
    assert.equal(objectSuffix({ name: 'clicks', version: 3 }, T, uuid, '.gz'), `clicks-3-2024-03-07-13-05-12-${uuid}.gz`);
    assert.equal(objectSuffix({ name: 'clicks', version: 1 }, T, uuid, '', 'Asia/Tokyo'), `clicks-1-2024-03-07-22-05-12-${uuid}`);
  });

  it('picks the extension: FileExtension, then .parquet, then by compression', () => {
    assert.deepEqual(
      Object.keys(COMPRESSION_EXTENSIONS).map((c) => fileExtension({ compression: c, conversion: false })),
      ['', '.gz', '.zip', '.snappy', '.hsnappy'],
    );
    assert.equal(fileExtension({ compression: 'UNCOMPRESSED', conversion: true }), '.parquet');
    assert.equal(fileExtension({ compression: 'GZIP', conversion: false, fileExtension: '.json.gz' }), '.json.gz');
  });

  it('derives stable UUID-shaped names', () => {
    assert.equal(derivedUuid('a'), derivedUuid('a'));
    assert.notEqual(derivedUuid('a'), derivedUuid('b'));
    assert.match(derivedUuid('a'), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe('validatePrefix', () => {
  const C = 'Ths supplied prefix(es) do not satisfy the following constraint: ';

  it('accepts what AWS accepts', () => {
    assert.equal(validatePrefix(undefined, undefined, false), undefined);
    assert.equal(validatePrefix('logs/', undefined, false), undefined);
    assert.equal(validatePrefix('!{timestamp:yyyy}/', 'err/!{firehose:error-output-type}/', false), undefined);
    assert.equal(validatePrefix('logs/', 'errors/', false), undefined);
    assert.equal(validatePrefix('app=!{partitionKeyFromQuery:app}/', 'e/!{firehose:error-output-type}/', true), undefined);
  });

  it("returns AWS's message for expressions without an ErrorOutputPrefix", () => {
    assert.equal(validatePrefix('!{timestamp:yyyy}/', undefined, false), `${C}ErrorOutputPrefix cannot be null or empty when Prefix contains expressions`);
    assert.equal(validatePrefix('!{timestamp:yyyy}/', '', false), `${C}ErrorOutputPrefix cannot be null or empty when Prefix contains expressions`);
  });

  it('rejects the other rule breaks with a message naming the rule', () => {
    const cases: Array<[string | undefined, string | undefined, boolean, RegExp]> = [
      ['x/!{firehose:error-output-type}/', 'e/', false, /Prefix cannot contain !\{firehose:error-output-type\}/],
      ['x/', 'e/!{timestamp:yyyy}/', false, /must contain !\{firehose:error-output-type\}/],
      ['k=!{partitionKeyFromQuery:k}/', 'e/!{firehose:error-output-type}', false, /only be used when dynamic partitioning is enabled/],
      ['k=!{partitionKeyFromQuery:k}/', undefined, true, /ErrorOutputPrefix cannot be null or empty when dynamic partitioning/],
      [undefined, 'e/!{firehose:error-output-type}', true, /Prefix cannot be null or empty when dynamic partitioning/],
      ['!{timestamp:yyyy MMM}/', 'e/!{firehose:error-output-type}', false, /^Ths supplied.*Prefix: 'MMM' is not supported/],
      ['x/', 'e/!{timestamp:YYYY}/!{firehose:error-output-type}', false, /ErrorOutputPrefix: unsupported letter 'Y'/],
      ['!{time:yyyy}/', 'e/!{firehose:error-output-type}', false, /unknown namespace "time"/],
      ['!{timestamp:yyyy/', 'e/!{firehose:error-output-type}', false, /closed by "\}"/],
      ['!{firehose:nonsense}', 'e/!{firehose:error-output-type}', false, /unknown firehose expression/],
    ];
    for (const [p, e, dp, re] of cases) assert.match(validatePrefix(p, e, dp) ?? '(accepted)', re, `${p} | ${e}`);
  });

  it('caps evaluated prefixes at 512 characters (checked by the destination)', () => {
    assert.equal(MAX_EVALUATED_PREFIX_CHARS, 512);
  });
});

describe('MetadataExtractionQuery subset', () => {
  const rec = (o: unknown) => Buffer.from(JSON.stringify(o));

  it('extracts dotted, quoted and bracketed paths', () => {
    const q = parseExtractionQuery('{app:.application.app_id, type: .event_type, "x y": .["a b"].c, first: .items[0].id, n: ."num", flag}');
    const r = extractPartitionKeys(q, rec({ application: { app_id: 'A1' }, event_type: 'click', 'a b': { c: 'C' }, items: [{ id: 7 }], num: 1.5, flag: true }));
    assert.deepEqual(r, { ok: true, keys: { app: 'A1', type: 'click', 'x y': 'C', first: '7', n: '1.5', flag: 'true' } });
  });

  it('fails records that are not JSON or lack a key, as AWS does', () => {
    const q = parseExtractionQuery('{app:.application.app_id}');
    assert.deepEqual(extractPartitionKeys(q, Buffer.from('not json')), { ok: false, error: 'Non JSON record provided' });
    assert.match((extractPartitionKeys(q, rec({ application: {} })) as { error: string }).error, /must not be null or empty/);
    assert.match((extractPartitionKeys(q, rec({ application: { app_id: '' } })) as { error: string }).error, /must not be null or empty/);
    assert.match((extractPartitionKeys(q, rec({ application: { app_id: null } })) as { error: string }).error, /must not be null or empty/);
    assert.match((extractPartitionKeys(q, rec({ application: { app_id: { a: 1 } } })) as { error: string }).error, /must be a string, number or boolean/);
    assert.match((extractPartitionKeys(q, rec([1, 2])) as { error: string }).error, /must not be null or empty/);
  });

  it('reads own fields only: .constructor or .toString of a record is missing, as in jq; a key named __proto__ is kept', () => {
    const inherited = parseExtractionQuery('{k: .constructor}');
    assert.match((extractPartitionKeys(inherited, rec({})) as { error: string }).error, /must not be null or empty/);
    assert.match((extractPartitionKeys(parseExtractionQuery('{k: .a.toString}'), rec({ a: {} })) as { error: string }).error, /must not be null or empty/);
    const r = extractPartitionKeys(parseExtractionQuery('{__proto__: .a, constructor: .b}'), rec({ a: 'x', b: 'y' }));
    assert.ok(r.ok);
    assert.equal(Object.hasOwn(r.keys, '__proto__') && r.keys.__proto__, 'x');
    assert.equal(Object.hasOwn(r.keys, 'constructor') && r.keys.constructor, 'y');
  });

  it('rejects JQ beyond the subset at validation time', () => {
    for (const q of ['.app', '{app: .ts | strftime("%Y")}', '{app: .a // "x"}', '{app: .}', '{}', '{a: .x, a: .y}', '{a: .x} extra', '{a: x}']) {
      assert.throws(() => parseExtractionQuery(q), /MetadataExtractionQuery/, q);
    }
  });

  it('checks that the query defines every key the Prefix uses', () => {
    assert.equal(validateExtraction('{app:.a, type:.t}', ['app', 'type']), undefined);
    assert.match(validateExtraction('{app:.a}', ['app', 'type']) ?? '', /does not define: type/);
    assert.match(validateExtraction(undefined, ['app']) ?? '', /no MetadataExtraction processor/);
    assert.match(validateExtraction('{app: .a | ascii}', ['app']) ?? '', /MetadataExtractionQuery/);
  });

  it('maps error codes to error-output-type folders', () => {
    assert.equal(errorOutputTypeFor(METADATA_EXTRACTION_FAILED), 'metadata-extraction-failed');
    assert.equal(errorOutputTypeFor('DynamicPartitioning.ActivePartitionsLimitExceeded'), 'partitioning-failed');
    assert.equal(errorOutputTypeFor('activePartitionExceeded'), 'partitioning-failed');
    assert.equal(errorOutputTypeFor('DataFormatConversion.MalformedData'), 'format-conversion-failed');
    assert.equal(errorOutputTypeFor('Lambda.InvokeAccessDenied'), 'processing-failed');
  });
});
