// Mutations of a valid-ish input: wrong types, missing and extra members, prototype-ish keys,
// huge, empty and ill-formed strings, numbers out of range, deep nesting, wide collections. Each
// mutation is data (kind + which node), applied deterministically, so fast-check can print,
// replay and shrink it.

import fc from 'fast-check';
import { BadText, Blob, Deep, Huge, JsonText, Obj, RawNumber, Timestamp, type Value } from './values.js';

/** Keys a lookup by `obj[name]` or an `out[k] = v` copy trips over. */
export const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'isPrototypeOf'];

export const ODD_STRINGS = [
  '',
  ' ',
  '\ud800',
  '\udfff',
  'a\ud800b',
  '\udc00\ud800',
  '\u0000',
  'a\u0000b',
  '\u0007\u001b[31m',
  '\r\n',
  '\u202e\u2066rtl',
  '\ufeff',
  '\uffff',
  '😀',
  'e\u0301\u0301\u0301\u0301',
  '..',
  '../../../../etc/passwd',
  '%00',
  '%2F',
  '%',
  "' OR 1=1 --",
  '"; DROP TABLE apps; --',
  '${jndi:ldap://127.0.0.1/x}',
  '{{7*7}}',
  '<x>&amp;</x>',
  ']]>',
  'null',
  'undefined',
  'NaN',
  '-0',
  '1e400',
  'true',
  '[]',
  '{}',
  'arn:aws:kinesis:us-east-1:000000000000:stream/',
  'arn:aws:kinesis:eu-west-1:123456789012:stream/elsewhere',
  'arn:aws:firehose:us-east-1:000000000000:deliverystream/../../x',
  'arn:aws:s3:::..',
  'shardId-',
  'shardId-999999999999999999999',
  'shardId--1',
  '2026-02-30T25:61:61Z',
  '9999-12-31T23:59:59Z',
  '0000-01-01T00:00:00Z',
  '1970-01-01',
  ...PROTO_KEYS,
];

/** Raw bytes that are not UTF-8: a lone continuation byte, overlong, an encoded surrogate, past U+10FFFF, truncated. */
export const BAD_UTF8: number[][] = [[0xff], [0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xfe, 0xfe, 0xff]];

/** Numbers (and number-like values) out of the shapes' ranges or beyond what JSON/JS can hold exactly. */
const ODD_NUMBERS: Value[] = [
  -1,
  0,
  1.5,
  -2147483649,
  2147483648,
  9007199254740993,
  1e308,
  -1e308,
  5e-324,
  Number.MAX_SAFE_INTEGER,
  new RawNumber('-0'),
  new RawNumber('1e400'),
  new RawNumber('-1e400'),
  new RawNumber('1e-400'),
  new RawNumber('123456789012345678901234567890'),
  new RawNumber('0.30000000000000004441'),
  new RawNumber('9007199254740993'),
  new RawNumber('18446744073709551615'),
  new RawNumber('340282366920938463463374607431768211456'),
  'NaN',
  'Infinity',
  '1e3',
  '0x10',
  ' 7',
];

export type Mutation =
  | { kind: 'wrongType'; at: number; to: number }
  | { kind: 'drop'; at: number }
  | { kind: 'extra'; at: number; key: string; value: number }
  | { kind: 'protoKey'; at: number; key: string }
  | { kind: 'duplicateKey'; at: number }
  | { kind: 'string'; at: number; s: string }
  | { kind: 'huge'; at: number; size: number; unit: string }
  | { kind: 'badUtf8'; at: number; bytes: number }
  | { kind: 'number'; at: number; n: number }
  | { kind: 'deep'; at: number; depth: number; shape: 'array' | 'object' }
  | { kind: 'wide'; at: number; count: number; of: 'array' | 'object' };

const at = fc.nat();

/** 0–3 mutations, none about a quarter of the time (so the valid-ish paths get exercised as well). */
export const mutationsArb: fc.Arbitrary<Mutation[]> = fc.oneof(
  { weight: 3, arbitrary: fc.constant<Mutation[]>([]) },
  { weight: 6, arbitrary: fc.array(mutationArb(), { minLength: 1, maxLength: 1 }) },
  { weight: 2, arbitrary: fc.array(mutationArb(), { minLength: 2, maxLength: 3 }) },
);

function mutationArb(): fc.Arbitrary<Mutation> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('wrongType' as const), at, to: fc.nat() }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('drop' as const), at }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('extra' as const), at, key: fc.oneof(fc.constantFrom(...PROTO_KEYS), fc.string({ maxLength: 6 })), value: fc.nat() }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('protoKey' as const), at, key: fc.constantFrom(...PROTO_KEYS) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicateKey' as const), at }) },
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('string' as const), at, s: fc.oneof(fc.constantFrom(...ODD_STRINGS), fc.string({ unit: 'binary', maxLength: 12 })) }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('huge' as const),
        at,
        // Bytes: mostly just past common limits (256 B, 1 KiB, 8 KiB, 64 KiB); rarely past 1 MiB
        // (a Kinesis record), 5 MiB (a PutRecords call) or the 16 MiB body cap.
        size: fc.oneof(
          { weight: 40, arbitrary: fc.constantFrom(257, 1025, 8193, 65_537, 200_000) },
          { weight: 4, arbitrary: fc.constant(1_048_577) },
          { weight: 2, arbitrary: fc.constant(5_300_000) },
          { weight: 1, arbitrary: fc.constant(17_000_000) },
        ),
        unit: fc.constantFrom('a', 'é', '😀', '\u0000', '\ud800'),
      }),
    },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('badUtf8' as const), at, bytes: fc.nat({ max: BAD_UTF8.length - 1 }) }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('number' as const), at, n: fc.nat({ max: ODD_NUMBERS.length - 1 }) }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('deep' as const),
        at,
        depth: fc.constantFrom(64, 200, 1_000, 10_000, 100_000),
        shape: fc.constantFrom('array' as const, 'object' as const),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('wide' as const), at, count: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(501, 1_001, 10_001) }, { weight: 1, arbitrary: fc.constant(100_001) }), of: fc.constantFrom('array' as const, 'object' as const) }) },
  );
}

/** A slot in the value tree: the root, an array element, or an object entry's value. */
interface Slot {
  get(): Value;
  set(v: Value): void;
  /** The object holding this slot's entry, if it is one. */
  obj?: Obj;
  index?: number;
}

function slots(root: { v: Value }): Slot[] {
  const out: Slot[] = [{ get: () => root.v, set: (v) => (root.v = v) }];
  const walk = (v: Value) => {
    if (Array.isArray(v)) {
      v.forEach((x, i) => {
        out.push({ get: () => v[i], set: (n) => (v[i] = n) });
        walk(x);
      });
    } else if (v instanceof Obj) {
      v.entries.forEach((e, i) => {
        out.push({ get: () => e[1], set: (n) => (e[1] = n), obj: v, index: i });
        walk(e[1]);
      });
    } else if (v instanceof JsonText) {
      out.push({ get: () => v.value, set: (n) => (v.value = n) });
      walk(v.value);
    }
  };
  walk(root.v);
  return out;
}

function objects(root: Value): Obj[] {
  const out: Obj[] = [];
  const walk = (v: Value) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v instanceof Obj) {
      out.push(v);
      v.entries.forEach((e) => walk(e[1]));
    } else if (v instanceof JsonText) walk(v.value);
  };
  walk(root);
  return out;
}

function clone(v: Value): Value {
  if (Array.isArray(v)) return v.map(clone);
  if (v instanceof Obj) return new Obj(v.entries.map(([k, x]) => [k, clone(x)]), v.map);
  if (v instanceof JsonText) return new JsonText(clone(v.value));
  return v;
}

const REPLACEMENTS: Value[] = [
  null,
  true,
  false,
  0,
  -1,
  'x',
  '',
  [],
  [null],
  [[['x']]],
  new Obj([]),
  new Obj([['a', 1]]),
  // Objects that break String(v), `${v}` and v + '' (own toString / valueOf that are not functions).
  new Obj([['toString', 1]]),
  new Obj([['valueOf', 'x'], ['toString', new Obj([])]]),
  new Obj([['__proto__', new Obj([['polluted', true]])]]),
  new Obj([['length', 1e9], ['0', 'x']]),
  new Blob(new Uint8Array([0, 255])),
  new Timestamp(0),
  new Timestamp(8.64e15 + 1),
  new RawNumber('18446744073709551615'),
  new RawNumber('-9223372036854775809'),
  3.14,
];

/** Applies the mutations to a copy of the input, in order; a mutation that finds no node of its kind does nothing. */
export function applyMutations(input: Value, muts: Mutation[]): Value {
  const root = { v: clone(input) };
  for (const m of muts) {
    const all = slots(root);
    const pick = <T>(xs: T[]): T | undefined => (xs.length === 0 ? undefined : xs[m.at % xs.length]);
    switch (m.kind) {
      case 'wrongType': {
        const s = pick(all)!;
        const cur = s.get();
        const options = REPLACEMENTS.filter((r) => typeof r !== typeof cur || Array.isArray(r) !== Array.isArray(cur));
        s.set(clone(options[m.to % options.length]));
        break;
      }
      case 'drop': {
        const s = pick(all.filter((x) => x.obj));
        if (s) s.obj!.entries.splice(s.index!, 1);
        break;
      }
      case 'extra': {
        const o = pick(objects(root.v));
        if (o) o.entries.push([m.key, clone(REPLACEMENTS[m.value % REPLACEMENTS.length])]);
        break;
      }
      case 'protoKey': {
        const s = pick(all.filter((x) => x.obj));
        // Rename an existing entry (a map key or a member name) to a prototype-ish name.
        if (s) s.obj!.entries[s.index!][0] = m.key;
        else {
          const o = pick(objects(root.v));
          if (o) o.entries.push([m.key, 'x']);
        }
        break;
      }
      case 'duplicateKey': {
        const s = pick(all.filter((x) => x.obj));
        if (s) s.obj!.entries.push([s.obj!.entries[s.index!][0], clone(REPLACEMENTS[m.at % REPLACEMENTS.length])]);
        break;
      }
      case 'string':
        (pick(stringSlots(all)) ?? pick(all)!).set(m.s);
        break;
      case 'huge':
        (pick(stringSlots(all)) ?? pick(all)!).set(new Huge(m.size, m.unit));
        break;
      case 'badUtf8': {
        const s = pick(stringSlots(all)) ?? pick(all)!;
        const cur = s.get();
        s.set(new BadText(typeof cur === 'string' ? cur.slice(0, 8) : 'x', Uint8Array.from(BAD_UTF8[m.bytes])));
        break;
      }
      case 'number': {
        const s = pick(all.filter((x) => typeof x.get() === 'number' || x.get() instanceof Timestamp)) ?? pick(all)!;
        s.set(ODD_NUMBERS[m.n]);
        break;
      }
      case 'deep':
        (pick(all.filter((x) => x.obj)) ?? all[0]).set(new Deep(m.depth, m.shape));
        break;
      case 'wide': {
        const s = pick(all.filter((x) => x.obj)) ?? all[0];
        const cur = s.get();
        const item = typeof cur === 'string' || typeof cur === 'number' ? cur : 'x';
        s.set(
          m.of === 'array'
            ? Array.from({ length: m.count }, () => item)
            : new Obj(Array.from({ length: m.count }, (_, i) => [`k${i}`, item] as [string, Value]), true),
        );
        break;
      }
    }
  }
  return root.v;
}

function stringSlots(all: Slot[]): Slot[] {
  return all.filter((x) => typeof x.get() === 'string');
}

/** Short text for reports: which mutations, with their parameters. */
export function describeMutations(muts: Mutation[]): string {
  if (muts.length === 0) return 'valid-ish';
  return muts
    .map((m) => {
      switch (m.kind) {
        case 'string':
          return `string(${JSON.stringify(m.s)})`;
        case 'huge':
          return `huge(${m.size}x${JSON.stringify(m.unit)})`;
        case 'badUtf8':
          return `badUtf8(${BAD_UTF8[m.bytes].map((b) => b.toString(16)).join(' ')})`;
        case 'number':
          return `number(${String(ODD_NUMBERS[m.n] instanceof RawNumber ? (ODD_NUMBERS[m.n] as RawNumber).text : JSON.stringify(ODD_NUMBERS[m.n]))})`;
        case 'deep':
          return `deep(${m.depth} ${m.shape})`;
        case 'wide':
          return `wide(${m.count} ${m.of})`;
        case 'extra':
        case 'protoKey':
          return `${m.kind}(${m.key})`;
        default:
          return m.kind;
      }
    })
    .join('+');
}
