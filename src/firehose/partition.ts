// Dynamic partitioning with the MetadataExtraction processor: evaluates its MetadataExtractionQuery
// (JsonParsingEngine JQ-1.6) on each JSON record to get the partition keys that
// `!{partitionKeyFromQuery:key}` expressions insert into the S3 prefix.
//
// Supported JQ subset — object construction of paths, which is what partition queries are:
//   {app: .application.app_id, type: .event_type}     identifiers as keys
//   {"a key": .x, app_id}                             quoted keys; `{k}` is short for `{k: .k}`
//   .a.b   ."x y"   .["x y"]   .a["b"].c   .items[0]   field and array-index steps
// Pipes, functions (strftime…), alternatives (//) and conditionals are rejected at validation.
// As in AWS, a record that is not JSON, or a key that is missing, null or empty, fails that record
// (DynamicPartitioning.MetadataExtractionFailed), and it goes to the error output.

/** errorCode of records whose keys could not be extracted (as AWS reports it). */
export const METADATA_EXTRACTION_FAILED = 'DynamicPartitioning.MetadataExtractionFailed';
/** The error-output-type folder AWS uses for those records. */
export const METADATA_EXTRACTION_FAILED_TYPE = 'metadata-extraction-failed';
/** The error-output-type for other partitioning failures (e.g. a missing Lambda partition key). */
export const PARTITIONING_FAILED_TYPE = 'partitioning-failed';

type Step = { field: string } | { index: number };
export interface ExtractionQuery {
  keys: Array<{ name: string; path: Step[] }>;
}

export class QuerySyntaxError extends Error {
  override name = 'QuerySyntaxError';
}

/** Parses a MetadataExtractionQuery; throws QuerySyntaxError naming what is not supported. */
export function parseExtractionQuery(query: string): ExtractionQuery {
  let i = 0;
  const ws = () => {
    while (i < query.length && /\s/.test(query[i])) i++;
  };
  const fail = (what: string): never => {
    throw new QuerySyntaxError(`MetadataExtractionQuery "${query}": ${what} at position ${i} (supported: {key: .path, …} with .field, ."field", .["field"], [index] steps)`);
  };
  const ident = (): string | undefined => {
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(query.slice(i));
    if (!m) return undefined;
    i += m[0].length;
    return m[0];
  };
  const string = (): string => {
    // JSON string syntax is a subset of JQ's string literal syntax (no interpolation here).
    const m = /^"(?:[^"\\]|\\.)*"/.exec(query.slice(i));
    if (!m) return fail('expected a string');
    i += m[0].length;
    try {
      return JSON.parse(m[0]) as string;
    } catch {
      return fail('bad string literal');
    }
  };
  const bracket = (): Step => {
    i++; // [
    ws();
    let step: Step;
    if (query[i] === '"') step = { field: string() };
    else {
      const m = /^\d+/.exec(query.slice(i));
      if (!m) return fail('expected "field" or an index inside [ ]');
      i += m[0].length;
      step = { index: Number(m[0]) };
    }
    ws();
    if (query[i] !== ']') fail('expected ]');
    i++;
    return step;
  };
  const path = (): Step[] => {
    ws();
    if (query[i] !== '.') fail('expected a path starting with "."');
    const steps: Step[] = [];
    while (query[i] === '.' || query[i] === '[') {
      if (query[i] === '[') {
        steps.push(bracket());
        continue;
      }
      i++; // .
      if (query[i] === '[') steps.push(bracket());
      else if (query[i] === '"') steps.push({ field: string() });
      else {
        const name = ident();
        if (name === undefined) {
          if (steps.length === 0) fail('"." alone (the whole record) cannot be a partition key');
          fail('expected a field name after "."');
        }
        steps.push({ field: name as string });
      }
    }
    if (steps.length === 0) fail('empty path');
    return steps;
  };

  ws();
  if (query[i] !== '{') fail('expected an object construction "{"');
  i++;
  const keys: ExtractionQuery['keys'] = [];
  ws();
  while (query[i] !== '}') {
    ws();
    const name = query[i] === '"' ? string() : ident();
    if (name === undefined) return fail('expected a key name');
    ws();
    let p: Step[];
    if (query[i] === ':') {
      i++;
      p = path();
    } else p = [{ field: name }];
    if (keys.some((k) => k.name === name)) fail(`duplicate key "${name}"`);
    keys.push({ name, path: p });
    ws();
    if (query[i] === ',') {
      i++;
      ws();
      continue;
    }
    if (query[i] !== '}') fail('expected "," or "}"');
  }
  i++;
  ws();
  if (i < query.length) fail('unexpected text after "}"');
  if (keys.length === 0) fail('no keys');
  return { keys };
}

export type Extraction = { ok: true; keys: Record<string, string> } | { ok: false; error: string };

/** Runs a parsed query on one record's bytes. */
export function extractPartitionKeys(query: ExtractionQuery, data: Buffer): Extraction {
  let doc: unknown;
  try {
    doc = JSON.parse(data.toString('utf8'));
  } catch {
    return { ok: false, error: 'Non JSON record provided' };
  }
  // Field names come from the query and values from the record: both are looked up and stored as
  // own keys only, as jq does (`.constructor` of {} is null, not Object; a key "__proto__" is a key).
  const keys: Record<string, string> = {};
  for (const k of query.keys) {
    let v: unknown = doc;
    for (const s of k.path) {
      if ('field' in s) v = v !== null && typeof v === 'object' && !Array.isArray(v) && Object.hasOwn(v, s.field) ? (v as Record<string, unknown>)[s.field] : undefined;
      else v = Array.isArray(v) ? v[s.index] : undefined;
      if (v === undefined) break;
    }
    if (v === undefined || v === null || v === '') return { ok: false, error: `partitionKeys values must not be null or empty (key "${k.name}")` };
    if (typeof v === 'object') return { ok: false, error: `partition key "${k.name}" must be a string, number or boolean, got ${Array.isArray(v) ? 'an array' : 'an object'}` };
    Object.defineProperty(keys, k.name, { value: String(v), enumerable: true, writable: true, configurable: true });
  }
  return { ok: true, keys };
}

interface Processor {
  Type?: unknown;
  Parameters?: Array<{ ParameterName?: unknown; ParameterValue?: unknown }>;
}

/** The enabled processors of a ProcessingConfiguration (none when Enabled is false). */
export function enabledProcessors(conf: unknown): Processor[] {
  const pc = conf as { Enabled?: unknown; Processors?: unknown } | undefined;
  if (!pc || pc.Enabled === false || !Array.isArray(pc.Processors)) return [];
  return pc.Processors as Processor[];
}

export function processorParameter(p: Processor, name: string): string | undefined {
  const v = p.Parameters?.find((x) => x.ParameterName === name)?.ParameterValue;
  return typeof v === 'string' ? v : undefined;
}

/** The MetadataExtractionQuery of a ProcessingConfiguration, if one is configured. */
export function metadataExtractionQuery(processing: unknown): string | undefined {
  const p = enabledProcessors(processing).find((x) => x.Type === 'MetadataExtraction');
  return p ? processorParameter(p, 'MetadataExtractionQuery') : undefined;
}

/**
 * For the core's validation: the query parses, and defines every `!{partitionKeyFromQuery:k}` the
 * Prefix uses. Returns an InvalidArgumentException message or undefined.
 */
export function validateExtraction(query: string | undefined, queryKeysUsed: string[]): string | undefined {
  if (queryKeysUsed.length === 0) return undefined;
  if (query === undefined) return 'Prefix uses !{partitionKeyFromQuery:…} but no MetadataExtraction processor with a MetadataExtractionQuery is configured';
  let q: ExtractionQuery;
  try {
    q = parseExtractionQuery(query);
  } catch (e) {
    return (e as Error).message;
  }
  const missing = queryKeysUsed.filter((k) => !q.keys.some((x) => x.name === k));
  return missing.length ? `Prefix uses partition keys that MetadataExtractionQuery does not define: ${missing.join(', ')}` : undefined;
}

/** Maps an error code to the `!{firehose:error-output-type}` folder its records are written under. */
export function errorOutputTypeFor(errorCode: string): string {
  if (errorCode === METADATA_EXTRACTION_FAILED) return METADATA_EXTRACTION_FAILED_TYPE;
  // activePartitionExceeded: the deliverer's code for records beyond the active-partition limit.
  if (errorCode.startsWith('DynamicPartitioning.') || errorCode === 'activePartitionExceeded') return PARTITIONING_FAILED_TYPE;
  if (errorCode.startsWith('DataFormatConversion.')) return 'format-conversion-failed';
  return 'processing-failed';
}
