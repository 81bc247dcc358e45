// Fuzz values: what a generated request input is made of before a wire encoder turns it into
// bytes, and fast-check arbitraries that produce valid-ish values from a botocore shape.
//
// Objects are entry lists (Obj), not JS objects, so that keys like "__proto__" and duplicate keys
// survive as data, and oddities that only exist on the wire (invalid UTF-8, 10,000-deep nesting,
// 2 MB strings, numbers JSON.stringify cannot write) are markers the encoders expand, so the
// generated values stay small enough for fast-check to keep and shrink.

import fc from 'fast-check';
import type { MemberRef, Operation, Shape } from './models.js';

export type Value =
  | null
  | boolean
  | number
  | string
  | Value[]
  | Obj
  | Blob
  | Timestamp
  | Ref
  | RawNumber
  | Deep
  | Huge
  | BadText
  | JsonText;

/** A JSON object / CBOR map / Query structure, in entry order; `map` marks a botocore map (Query names them differently). */
export class Obj {
  constructor(
    public entries: Array<[string, Value]>,
    public map = false,
  ) {}
  get(k: string): Value | undefined {
    return this.entries.find(([n]) => n === k)?.[1];
  }
}
export class Blob {
  constructor(public bytes: Uint8Array) {}
}
export class Timestamp {
  constructor(public ms: number) {}
}
/** A fixture resolved when the request is built (an app id, a stream ARN, a fresh shard iterator …). */
export class Ref {
  constructor(public name: string) {}
}
/** A number as literal text ("1e400", "-0", 30 digits); CBOR writes the nearest float or a bignum. */
export class RawNumber {
  constructor(public text: string) {}
}
/** `depth` levels of arrays or objects around a scalar, written without recursion. */
export class Deep {
  constructor(
    public depth: number,
    public kind: 'array' | 'object',
  ) {}
}
/** A string of `size` UTF-8 bytes made of `unit` repeated. */
export class Huge {
  constructor(
    public size: number,
    public unit: string,
  ) {}
}
/** Text whose bytes are not valid UTF-8 (a JSON string / CBOR text string / form value holding them raw). */
export class BadText {
  constructor(
    public prefix: string,
    public bytes: Uint8Array,
  ) {}
}

/** A string member that holds a JSON document (an IAM policy): mutated as a tree, sent as text. */
export class JsonText {
  constructor(public value: Value) {}
}

/** Names of fixtures the suite creates and keeps alive; see Fixtures in the test. */
export type RefName =
  | 'app'
  | 'app2'
  | 'appArn'
  | 'stream'
  | 'stream2'
  | 'streamArn'
  | 'consumerName'
  | 'consumerArn'
  | 'iterator'
  | 'sequenceNumber'
  | 'deliveryStream'
  | 'deliveryStreamArn'
  | 'roleArn'
  | 'roleName'
  | 'userName'
  | 'bucketArn'
  | 'funnelId'
  | 'identityPool'
  | 'identityId'
  | 'now'
  | 'yesterday';

const ref = (n: RefName) => fc.constant(new Ref(n));

/**
 * Member names whose values must name something that exists for a request to get past the
 * lookups into the code behind them, or must never point off this machine (URLs, JDBC URLs).
 * Each pool is mixed with the shape's own generator, except the never-off-host ones.
 */
const POOLS: Record<string, fc.Arbitrary<Value>> = {
  ApplicationId: fc.oneof(ref('app'), ref('app'), ref('app2')),
  ResourceArn: fc.oneof(ref('appArn'), ref('streamArn'), ref('deliveryStreamArn')),
  EndpointId: fc.constantFrom('ep-1', 'ep-2', 'fuzz-endpoint'),
  UserId: fc.constantFrom('user-1', 'user-2'),
  KpiName: fc.constantFrom(
    'unique-events',
    'unique-deliveries',
    'successful-deliveries',
    'email-open-rate',
    'txn-emails-sent',
    'direct-sessions',
    'total-revenue',
    'made-up-kpi',
  ),
  FunnelId: fc.oneof(ref('funnelId'), fc.constant('no-such-funnel')),
  StreamName: fc.oneof(ref('stream'), ref('stream2'), fc.constantFrom('fuzz-new-stream')),
  StreamARN: ref('streamArn'),
  ResourceARN: fc.oneof(ref('streamArn'), ref('consumerArn'), ref('deliveryStreamArn')),
  ConsumerARN: ref('consumerArn'),
  ConsumerName: fc.oneof(ref('consumerName'), fc.constant('fuzz-new-consumer')),
  ShardId: fc.constantFrom('shardId-000000000000', 'shardId-000000000001', 'shardId-000000000099'),
  ShardToSplit: fc.constantFrom('shardId-000000000000', 'shardId-000000000001'),
  ShardToMerge: fc.constantFrom('shardId-000000000000'),
  AdjacentShardToMerge: fc.constantFrom('shardId-000000000001'),
  ShardIterator: ref('iterator'),
  StartingSequenceNumber: ref('sequenceNumber'),
  ExclusiveMinimumSequenceNumber: ref('sequenceNumber'),
  SequenceNumberForOrdering: ref('sequenceNumber'),
  DeliveryStreamName: fc.oneof(ref('deliveryStream'), fc.constant('fuzz-new-ds')),
  DeliveryStreamARN: ref('deliveryStreamArn'),
  RoleARN: ref('roleArn'),
  RoleArn: ref('roleArn'),
  DestinationStreamArn: fc.oneof(ref('streamArn'), ref('deliveryStreamArn')),
  KinesisStreamARN: ref('streamArn'),
  BucketARN: ref('bucketArn'),
  UserName: fc.oneof(ref('userName'), fc.constantFrom('fuzz-new-user', 'admin')),
  RoleName: fc.oneof(ref('roleName'), fc.constant('fuzz-new-role')),
  PolicyName: fc.constantFrom('fuzz-policy', 'p1'),
  PolicyDocument: fc.oneof(
    fc.constantFrom(
      '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesis:DescribeStream","Resource":"*"}]}',
      '{"Version":"2012-10-17","Statement":[]}',
      '{"Statement":{"Effect":"Deny","NotAction":"x:*","NotResource":"*","Condition":{"StringEquals":{"aws:SourceAccount":"1"}}}}',
    ),
    policyArb(false).map((v) => new JsonText(v)),
  ),
  AssumeRolePolicyDocument: fc.oneof(
    fc.constantFrom(
      '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"firehose.amazonaws.com"},"Action":"sts:AssumeRole"}]}',
      '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}',
    ),
    policyArb(true).map((v) => new JsonText(v)),
  ),
  IdentityPoolId: fc.oneof(ref('identityPool'), ref('identityPool'), fc.constant('us-east-1:00000000-0000-0000-0000-000000000000')),
  IdentityId: fc.oneof(ref('identityId'), ref('identityId'), fc.constant('us-east-1:00000000-0000-0000-0000-000000000000')),
  // No logins: a guest, who gets past the token checks to the pool's role (random tokens never verify).
  Logins: fc.constant(new Obj([], true)),
  StartTime: fc.oneof(ref('yesterday'), ref('now')),
  Timestamp: fc.oneof(ref('now'), fc.constant('2026-11-26T10:00:00Z')),
};

/** An IAM policy document (identity or trust) as a tree, so mutations reach its Conditions and lists. */
function policyArb(trust: boolean): fc.Arbitrary<Value> {
  const strs = (xs: string[]) => fc.oneof(fc.constantFrom(...xs), fc.array(fc.constantFrom(...xs), { minLength: 1, maxLength: 3 }));
  const condition = fc
    .array(
      fc.tuple(
        fc.constantFrom('StringEquals', 'StringLike', 'ArnLike', 'ArnEquals', 'StringNotEquals', 'Bool', 'NumericLessThan', 'ForAnyValue:StringEquals', 'IpAddress', 'Null'),
        fc.array(fc.tuple(fc.constantFrom('aws:SourceArn', 'aws:SourceAccount', 'aws:username', 'kinesis:x', 'aws:SecureTransport'), strs(['*', 'arn:aws:*', '000000000000', 'true'])), { minLength: 1, maxLength: 2 }),
      ),
      { maxLength: 2 },
    )
    .map((ops) => new Obj(ops.map(([op, kv]) => [op, new Obj(kv as Array<[string, Value]>, true)] as [string, Value]), true));
  const statement = fc
    .record({
      Effect: fc.constantFrom('Allow', 'Deny'),
      Action: strs(trust ? ['sts:AssumeRole', 'sts:*'] : ['kinesis:*', 'firehose:PutRecord*', 'iam:PassRole', 'mobiletargeting:*', '*']),
      Resource: strs(['*', 'arn:aws:kinesis:us-east-1:000000000000:stream/*', 'arn:aws:iam::000000000000:role/x']),
      Principal: fc.constantFrom<Value>(new Obj([['Service', 'firehose.amazonaws.com']]), new Obj([['AWS', '*']]), '*'),
      Condition: condition,
    })
    .map((r) => {
      const entries: Array<[string, Value]> = [['Effect', r.Effect], ['Action', r.Action], ['Condition', r.Condition]];
      entries.push(trust ? ['Principal', r.Principal] : ['Resource', r.Resource]);
      return new Obj(entries);
    });
  return fc.array(statement, { minLength: 1, maxLength: 3 }).map((st) => new Obj([['Version', '2012-10-17'], ['Statement', st]]));
}

/** Members whose generated values would reach other hosts if they were ever used: only these. */
const OFF_HOST_GUARDS: Record<string, fc.Arbitrary<Value>> = {
  Url: fc.constantFrom('https://127.0.0.1:9/fuzz', 'https://localhost:9'),
  ClusterJDBCURL: fc.constantFrom('jdbc:postgresql://127.0.0.1:9/fuzz', 'jdbc:redshift://127.0.0.1:9/fuzz'),
  S3BackupUri: fc.constant('https://127.0.0.1:9/b'),
};

export interface GenOptions {
  /** Structures deeper than this get only their required members. */
  maxDepth: number;
}

/**
 * A valid-ish input for the operation: required members, some optional ones, strings of the
 * shape's length and pattern, numbers in range, enums from the list, fixtures where a member
 * names one. "-ish" because patterns the generator cannot follow fall back to plain strings.
 */
export function inputArbitrary(op: Operation, o: GenOptions = { maxDepth: 4 }): fc.Arbitrary<Value> {
  if (!op.input) return fc.constant(new Obj([]));
  return shapeArb(op, op.input, 0, o, undefined);
}

const memo = new WeakMap<Record<string, Shape>, Map<string, fc.Arbitrary<Value>>>();

function shapeArb(op: Operation, name: string, depth: number, o: GenOptions, member: string | undefined): fc.Arbitrary<Value> {
  if (member !== undefined && Object.hasOwn(OFF_HOST_GUARDS, member)) return OFF_HOST_GUARDS[member];
  let cache = memo.get(op.shapes);
  if (!cache) memo.set(op.shapes, (cache = new Map()));
  const key = `${name}|${Math.min(depth, o.maxDepth + 1)}|${member ?? ''}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const arb = build(op, name, depth, o, member);
  cache.set(key, arb);
  return arb;
}

function build(op: Operation, name: string, depth: number, o: GenOptions, member: string | undefined): fc.Arbitrary<Value> {
  const s = op.shapes[name];
  if (!s) return fc.string({ maxLength: 8 });
  const own = plain(op, s, depth, o, name);
  if (member !== undefined && Object.hasOwn(POOLS, member)) return fc.oneof({ weight: 3, arbitrary: POOLS[member] }, { weight: 1, arbitrary: own });
  return own;
}

function plain(op: Operation, s: Shape, depth: number, o: GenOptions, name: string): fc.Arbitrary<Value> {
  switch (s.type) {
    case 'structure': {
      const members = Object.entries(s.members ?? {});
      const required = new Set(s.required ?? []);
      // Past the depth limit only required members, so recursive shapes (segments, journeys) end.
      const kept = depth >= o.maxDepth ? members.filter(([m]) => required.has(m)) : members;
      const parts = kept.map(([m, ref]: [string, MemberRef]) => {
        const v = shapeArb(op, ref.shape, depth + 1, o, m);
        const entry = v.map((x) => [m, x] as [string, Value]);
        return required.has(m) ? entry : fc.option(entry, { freq: 3, nil: undefined });
      });
      if (parts.length === 0) return fc.constant(new Obj([]));
      return fc.tuple(...parts).map((es) => new Obj(es.filter((e): e is [string, Value] => e !== undefined)));
    }
    case 'list': {
      const max = Math.min(s.max ?? 4, depth >= o.maxDepth ? 1 : 4);
      const min = Math.min(s.min ?? 0, max);
      // Lists and maps do not count as a level: the depth limit is for recursive structures.
      return fc.array(shapeArb(op, s.member!.shape, depth, o, undefined), { minLength: min, maxLength: max });
    }
    case 'map': {
      const max = Math.min(s.max ?? 4, depth >= o.maxDepth ? 1 : 3);
      return fc
        .array(fc.tuple(shapeArb(op, s.key!.shape, depth, o, undefined), shapeArb(op, s.value!.shape, depth, o, undefined)), { maxLength: max })
        .map((es) => new Obj(es.map(([k, v]) => [typeof k === 'string' ? k : String(k), v]), true));
    }
    case 'string':
      return stringArb(s, name);
    case 'integer':
    case 'long': {
      const min = s.min ?? (s.type === 'integer' ? -(2 ** 31) : Number.MIN_SAFE_INTEGER);
      const max = s.max ?? (s.type === 'integer' ? 2 ** 31 - 1 : Number.MAX_SAFE_INTEGER);
      return fc.oneof(fc.integer({ min: Math.max(min, -1000), max: Math.max(Math.min(max, 1000), Math.max(min, -1000)) }), fc.constantFrom(min, max));
    }
    case 'double':
    case 'float':
      return fc.double({ noNaN: true, noDefaultInfinity: true, min: s.min, max: s.max });
    case 'boolean':
      return fc.boolean();
    case 'timestamp':
      return fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2030, 0, 1) }).map((ms) => new Timestamp(ms));
    case 'blob':
      return fc.uint8Array({ maxLength: Math.min(s.max ?? 64, 64) }).map((b) => new Blob(b));
    default:
      return fc.constant(null);
  }
}

function stringArb(s: Shape, name: string): fc.Arbitrary<Value> {
  if (s.enum && s.enum.length > 0) return fc.constantFrom(...s.enum);
  const min = s.min ?? 0;
  const max = Math.max(min, Math.min(s.max ?? 24, 24));
  if (s.pattern) {
    const re = patternRegex(s.pattern);
    if (re) {
      try {
        const limit = s.max ?? Infinity;
        return fc.stringMatching(re, { size: 'xsmall' }).map((x) => (x.length > limit ? x.slice(0, limit) : x));
      } catch {
        // A pattern fast-check cannot generate from: plain strings below.
      }
    }
  }
  if (/Arn|ARN/.test(name)) return fc.constantFrom('arn:aws:kinesis:us-east-1:000000000000:stream/x', 'arn:aws:iam::000000000000:role/x', 'arn:');
  return fc.string({ minLength: min, maxLength: max });
}

/** Java regexes mostly parse as JS ones; anchored so generated strings match in whole. */
function patternRegex(p: string): RegExp | undefined {
  try {
    const body = p.startsWith('^') ? p : `^(?:${p})`;
    return new RegExp(body.endsWith('$') ? body : `${body}$`, 'u');
  } catch {
    return undefined;
  }
}
