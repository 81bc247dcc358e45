// S3 object key naming for Firehose (reference §3.5, AWS "Custom prefixes for Amazon S3 objects"):
// `<evaluated prefix><stream>-<version>-<yyyy>-<MM>-<dd>-<HH>-<mm>-<ss>-<uuid><ext>`. Owns prefix
// parsing, validation (messages for CreateDeliveryStream/UpdateDestination), evaluation, the
// Java DateTimeFormatter subset, default prefixes and file extensions.
//
// Expressions: `!{timestamp:<pattern>}`, `!{firehose:random-string}`,
// `!{firehose:error-output-type}`, `!{partitionKeyFromQuery:<key>}`, `!{partitionKeyFromLambda:<key>}`.
// Timestamp patterns support the letters y/u (year; `yy` = two digits), M, d, H, m, s (one or two
// digits) and S (fraction of a second, up to 9 digits), any non-letter character, and text in
// single quotes (`''` is a quote). Every other letter (e.g. month names `MMM`, `a`, `E`) is
// rejected at validation time rather than rendered differently from Java.

import { createHash } from 'node:crypto';

/** Evaluated Prefix / ErrorOutputPrefix may be at most this long (AWS prefix rules). */
export const MAX_EVALUATED_PREFIX_CHARS = 512;
/** `!{firehose:random-string}` evaluates to this many characters. */
export const RANDOM_STRING_CHARS = 11;
/** Appended to a Prefix without a timestamp expression, and the whole prefix when Prefix is empty. */
export const DEFAULT_TIME_PATTERN = 'yyyy/MM/dd/HH/';
export const DEFAULT_TIME_ZONE = 'UTC';

/** Default file extensions by CompressionFormat (AWS "Configure Amazon S3 object name format"). */
export const COMPRESSION_EXTENSIONS: Readonly<Record<string, string>> = Object.freeze(
  // A null prototype: looked up by a client-sent name, which must not find inherited members.
  Object.assign(Object.create(null) as Record<string, string>, {
    UNCOMPRESSED: '',
    GZIP: '.gz',
    ZIP: '.zip',
    Snappy: '.snappy',
    HADOOP_SNAPPY: '.hsnappy',
  }),
);
export const PARQUET_EXTENSION = '.parquet';

/** AWS words its prefix-constraint errors this way (spelling included), as seen from InvalidArgumentException. */
const CONSTRAINT = 'Ths supplied prefix(es) do not satisfy the following constraint: ';

type FormatToken = { lit: string } | { field: string; width: number };

export type PrefixPart =
  | { kind: 'text'; text: string }
  | { kind: 'timestamp'; format: FormatToken[] }
  | { kind: 'random' }
  | { kind: 'errorType' }
  | { kind: 'partitionKey'; source: 'query' | 'lambda'; key: string };

export class PrefixSyntaxError extends Error {
  override name = 'PrefixSyntaxError';
}

const SUPPORTED_FIELDS = new Set(['y', 'u', 'M', 'd', 'H', 'm', 's', 'S']);

/** Parses a Java DateTimeFormatter pattern (the subset above); throws PrefixSyntaxError. */
export function parseTimestampPattern(pattern: string): FormatToken[] {
  const out: FormatToken[] = [];
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i];
    if (c === "'") {
      // Quoted literal; '' inside or outside quotes is one quote character.
      if (pattern[i + 1] === "'") {
        out.push({ lit: "'" });
        i += 2;
        continue;
      }
      let text = '';
      i++;
      for (;;) {
        if (i >= pattern.length) throw new PrefixSyntaxError(`unterminated quote in timestamp pattern "${pattern}"`);
        if (pattern[i] === "'") {
          if (pattern[i + 1] === "'") {
            text += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        text += pattern[i++];
      }
      out.push({ lit: text });
    } else if (/[A-Za-z]/.test(c)) {
      let width = 1;
      while (pattern[i + width] === c) width++;
      if (!SUPPORTED_FIELDS.has(c)) throw new PrefixSyntaxError(`unsupported letter '${c}' in timestamp pattern "${pattern}" (supported: y, u, M, d, H, m, s, S and 'quoted text')`);
      const max = c === 'S' ? 9 : c === 'y' || c === 'u' ? 9 : 2;
      if (width > max) throw new PrefixSyntaxError(`'${c.repeat(width)}' is not supported in timestamp pattern "${pattern}"`);
      out.push({ field: c, width });
      i += width;
    } else if ('[]{}#'.includes(c)) {
      throw new PrefixSyntaxError(`reserved character '${c}' in timestamp pattern "${pattern}"`);
    } else {
      out.push({ lit: c });
      i++;
    }
  }
  return out;
}

/** Splits a prefix into text and `!{namespace:value}` expressions; throws PrefixSyntaxError. */
export function parsePrefix(prefix: string): PrefixPart[] {
  const parts: PrefixPart[] = [];
  let i = 0;
  while (i < prefix.length) {
    const start = prefix.indexOf('!{', i);
    if (start < 0) {
      parts.push({ kind: 'text', text: prefix.slice(i) });
      break;
    }
    if (start > i) parts.push({ kind: 'text', text: prefix.slice(i, start) });
    const end = prefix.indexOf('}', start);
    if (end < 0) throw new PrefixSyntaxError(`"!{" must start a !{namespace:value} expression closed by "}"`);
    const body = prefix.slice(start + 2, end);
    const colon = body.indexOf(':');
    if (colon < 0) throw new PrefixSyntaxError(`expression !{${body}} must have the form !{namespace:value}`);
    const ns = body.slice(0, colon);
    const value = body.slice(colon + 1);
    if (ns === 'timestamp') {
      if (value === '') throw new PrefixSyntaxError('!{timestamp:} needs a pattern');
      parts.push({ kind: 'timestamp', format: parseTimestampPattern(value) });
    } else if (ns === 'firehose') {
      if (value === 'random-string') parts.push({ kind: 'random' });
      else if (value === 'error-output-type') parts.push({ kind: 'errorType' });
      else throw new PrefixSyntaxError(`unknown firehose expression !{firehose:${value}} (known: random-string, error-output-type)`);
    } else if (ns === 'partitionKeyFromQuery' || ns === 'partitionKeyFromLambda') {
      if (value === '') throw new PrefixSyntaxError(`!{${ns}:} needs a key name`);
      parts.push({ kind: 'partitionKey', source: ns === 'partitionKeyFromQuery' ? 'query' : 'lambda', key: value });
    } else {
      throw new PrefixSyntaxError(`unknown namespace "${ns}" in !{${body}} (known: timestamp, firehose, partitionKeyFromQuery, partitionKeyFromLambda)`);
    }
    i = end + 1;
  }
  return parts;
}

const hasExpressions = (parts: PrefixPart[]) => parts.some((p) => p.kind !== 'text');

/** Partition keys a Prefix refers to (`!{partitionKeyFromQuery:k}` / `…FromLambda:k`). */
export function prefixPartitionKeys(prefix: string | undefined): Array<{ source: 'query' | 'lambda'; key: string }> {
  if (!prefix) return [];
  return parsePrefix(prefix).flatMap((p) => (p.kind === 'partitionKey' ? [{ source: p.source, key: p.key }] : []));
}

/**
 * Checks Prefix and ErrorOutputPrefix together, as CreateDeliveryStream does. Returns the
 * InvalidArgumentException message, or undefined when both are acceptable.
 */
export function validatePrefix(prefix: string | undefined, errorPrefix: string | undefined, dynamicPartitioning: boolean): string | undefined {
  let p: PrefixPart[];
  let e: PrefixPart[];
  try {
    p = parsePrefix(prefix ?? '');
  } catch (err) {
    return `${CONSTRAINT}Prefix: ${(err as Error).message}`;
  }
  try {
    e = parsePrefix(errorPrefix ?? '');
  } catch (err) {
    return `${CONSTRAINT}ErrorOutputPrefix: ${(err as Error).message}`;
  }
  if (p.some((x) => x.kind === 'errorType')) return `${CONSTRAINT}Prefix cannot contain !{firehose:error-output-type}`;
  if (!dynamicPartitioning && [...p, ...e].some((x) => x.kind === 'partitionKey')) {
    return `${CONSTRAINT}partitionKeyFromQuery and partitionKeyFromLambda expressions can only be used when dynamic partitioning is enabled`;
  }
  if (e.some((x) => x.kind === 'partitionKey')) return `${CONSTRAINT}ErrorOutputPrefix cannot contain partition key expressions`;
  if (dynamicPartitioning && !prefix) return `${CONSTRAINT}Prefix cannot be null or empty when dynamic partitioning is enabled`;
  if (dynamicPartitioning && !errorPrefix) return `${CONSTRAINT}ErrorOutputPrefix cannot be null or empty when dynamic partitioning is enabled`;
  if (hasExpressions(p) && !errorPrefix) return `${CONSTRAINT}ErrorOutputPrefix cannot be null or empty when Prefix contains expressions`;
  if (hasExpressions(e) && !e.some((x) => x.kind === 'errorType')) {
    return `${CONSTRAINT}ErrorOutputPrefix must contain !{firehose:error-output-type} when it contains expressions`;
  }
  return undefined;
}

/** CustomTimeZone check: a message for a zone Intl does not know, else undefined. */
export function validateTimeZone(timeZone: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return undefined;
  } catch {
    return `CustomTimeZone "${timeZone}" is not a known IANA time zone`;
  }
}

interface Calendar {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  ms: number;
}

const zoneFormats = new Map<string, Intl.DateTimeFormat>();

function calendar(ms: number, timeZone: string): Calendar {
  const d = new Date(ms);
  if (timeZone === 'UTC') {
    return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds(), ms: d.getUTCMilliseconds() };
  }
  let f = zoneFormats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    zoneFormats.set(timeZone, f);
  }
  const v: Record<string, number> = {};
  for (const part of f.formatToParts(d)) if (part.type !== 'literal') v[part.type] = Number(part.value);
  return { year: v.year, month: v.month, day: v.day, hour: v.hour, minute: v.minute, second: v.second, ms: d.getUTCMilliseconds() };
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');

function formatTokens(tokens: FormatToken[], c: Calendar): string {
  let out = '';
  for (const t of tokens) {
    if ('lit' in t) {
      out += t.lit;
      continue;
    }
    switch (t.field) {
      case 'y':
      case 'u':
        out += t.width === 2 ? pad(c.year % 100, 2) : pad(c.year, t.width);
        break;
      case 'M':
        out += pad(c.month, t.width);
        break;
      case 'd':
        out += pad(c.day, t.width);
        break;
      case 'H':
        out += pad(c.hour, t.width);
        break;
      case 'm':
        out += pad(c.minute, t.width);
        break;
      case 's':
        out += pad(c.second, t.width);
        break;
      case 'S':
        out += (pad(c.ms, 3) + '000000').slice(0, t.width);
        break;
    }
  }
  return out;
}

/** Formats an instant with a Java DateTimeFormatter pattern (the documented subset). */
export function formatTimestamp(pattern: string, ms: number, timeZone = DEFAULT_TIME_ZONE): string {
  return formatTokens(parseTimestampPattern(pattern), calendar(ms, timeZone));
}

export interface PrefixContext {
  /** The oldest record's arrival: every `!{timestamp:…}` in one prefix evaluates to this instant. */
  arrivalMs: number;
  timeZone?: string;
  errorOutputType?: string;
  partitionKeys?: Record<string, string>;
  /**
   * Seed for `!{firehose:random-string}`: each occurrence gets a different string, but the same
   * seed gives the same strings, so a retried batch rewrites the same key instead of adding one.
   */
  randomSeed: string;
}

export class PrefixEvaluationError extends Error {
  override name = 'PrefixEvaluationError';
}

/** Evaluates parsed prefix parts. A referenced partition key that is absent throws PrefixEvaluationError. */
export function evaluateParts(parts: PrefixPart[], ctx: PrefixContext): string {
  const cal = calendar(ctx.arrivalMs, ctx.timeZone ?? DEFAULT_TIME_ZONE);
  let random = 0;
  let out = '';
  for (const p of parts) {
    switch (p.kind) {
      case 'text':
        out += p.text;
        break;
      case 'timestamp':
        out += formatTokens(p.format, cal);
        break;
      case 'random':
        out += createHash('sha256').update(`${ctx.randomSeed}:${random++}`).digest('hex').slice(0, RANDOM_STRING_CHARS);
        break;
      case 'errorType':
        out += ctx.errorOutputType ?? '';
        break;
      case 'partitionKey': {
        const v = ctx.partitionKeys && Object.hasOwn(ctx.partitionKeys, p.key) ? ctx.partitionKeys[p.key] : undefined;
        if (v === undefined) throw new PrefixEvaluationError(`partition key "${p.key}" has no value`);
        out += v;
        break;
      }
    }
  }
  return out;
}

const DEFAULT_PARTS = parsePrefix(`!{timestamp:${DEFAULT_TIME_PATTERN}}`);

/**
 * The evaluated data prefix. Empty Prefix → `yyyy/MM/dd/HH/`. A Prefix without a timestamp
 * expression gets `yyyy/MM/dd/HH/` appended as written (so `logs` gives `logs2024/…`, as the AWS
 * prefix rules say), except under dynamic partitioning, where the keys are the layout.
 */
export function dataPrefix(prefix: string | undefined, dynamicPartitioning: boolean, ctx: PrefixContext): string {
  const parts = parsePrefix(prefix ?? '');
  if (!dynamicPartitioning && !parts.some((p) => p.kind === 'timestamp')) parts.push(...DEFAULT_PARTS);
  return evaluateParts(parts, ctx);
}

/**
 * The evaluated error prefix for one error-output-type. A given ErrorOutputPrefix is evaluated as
 * written (nothing appended). When it is empty, AWS uses `<Prefix><error-output-type>/yyyy/MM/dd/HH/`
 * (Prefix taken literally: validation allows an empty ErrorOutputPrefix only without expressions).
 */
export function errorPrefix(prefix: string | undefined, errorOutputPrefix: string | undefined, errorOutputType: string, ctx: PrefixContext): string {
  const c = { ...ctx, errorOutputType };
  if (errorOutputPrefix) return evaluateParts(parsePrefix(errorOutputPrefix), c);
  const base = prefix && !hasExpressions(parsePrefix(prefix)) ? prefix : '';
  return base + errorOutputType + '/' + evaluateParts(DEFAULT_PARTS, c);
}

/** `<stream>-<version>-<yyyy>-<MM>-<dd>-<HH>-<mm>-<ss>-<uuid><ext>`, time from the oldest record. */
export function objectSuffix(stream: { name: string; version: number }, arrivalMs: number, uuid: string, extension: string, timeZone = DEFAULT_TIME_ZONE): string {
  const c = calendar(arrivalMs, timeZone);
  const t = [pad(c.year, 4), pad(c.month, 2), pad(c.day, 2), pad(c.hour, 2), pad(c.minute, 2), pad(c.second, 2)].join('-');
  return `${stream.name}-${stream.version}-${t}-${uuid}${extension}`;
}

/** FileExtension wins; then `.parquet` with format conversion; then the compression's extension. */
export function fileExtension(opts: { fileExtension?: string; conversion: boolean; compression: string }): string {
  if (opts.fileExtension) return opts.fileExtension;
  if (opts.conversion) return PARQUET_EXTENSION;
  return COMPRESSION_EXTENSIONS[opts.compression] ?? '';
}

/** A UUID-shaped name derived from a seed, so retries of the same batch write the same key. */
export function derivedUuid(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
