// Regenerates src/models/generated/*.ts from AWS's service models (botocore JSON, gzipped), keeping
// what a wire layer needs (bindings, members, required, lengths, ranges, patterns, enums, errors)
// and dropping documentation. Run `npm run models` (models from ../shared/reference/models, or a
// folder given as the first argument); the output is committed, so nothing at run time or in CI
// needs the models themselves. A large model (Glue's) is kept to the operations Pinstream serves
// (SERVICE_OPERATIONS): those with their shapes, the rest by name and binding only, so an
// unsupported operation is still named as one of AWS's.

import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The services Pinstream speaks, by model file name. */
export const SERVICES = ['pinpoint', 'kinesis', 'firehose', 'iam', 'sts', 'cognito-identity', 'glue'] as const;

/**
 * Services whose table keeps only some operations' shapes: Glue's model is ~1,700 shapes, of which
 * the Data Catalog subset Pinstream serves (src/glue/api.ts) needs a few dozen.
 */
export const SERVICE_OPERATIONS: Partial<Record<(typeof SERVICES)[number], readonly string[]>> = {
  glue: [
    'CreateDatabase', 'GetDatabase', 'UpdateDatabase', 'DeleteDatabase', 'GetDatabases',
    'CreateTable', 'GetTable', 'UpdateTable', 'DeleteTable', 'GetTables',
    'CreatePartition', 'GetPartition', 'DeletePartition', 'GetPartitions', 'BatchCreatePartition', 'BatchDeletePartition',
  ],
};

const SHAPE_KEYS = [
  'type', 'required', 'members', 'member', 'key', 'value', 'min', 'max', 'pattern', 'enum', 'payload', 'timestampFormat',
  'flattened', 'streaming', 'eventstream', 'event', 'exception', 'fault', 'error', 'sensitive', 'box',
];
const MEMBER_KEYS = ['shape', 'location', 'locationName', 'idempotencyToken', 'jsonvalue', 'timestampFormat', 'flattened'];
const METADATA_KEYS = ['apiVersion', 'endpointPrefix', 'signingName', 'protocol', 'jsonVersion', 'targetPrefix', 'xmlNamespace', 'serviceId'];

type Obj = Record<string, unknown>;

function pick(o: Obj, keys: readonly string[]): Obj {
  const out: Obj = {};
  for (const k of keys) if (Object.hasOwn(o, k) && o[k] !== undefined) out[k] = o[k];
  return out;
}

function member(m: Obj): Obj {
  return pick(m, MEMBER_KEYS);
}

/** The shapes reachable from the operations' inputs, outputs and errors. */
function reachable(model: Obj, only: ReadonlySet<string>): Set<string> {
  const src = model.shapes as Record<string, Obj>;
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name) || !src[name]) return;
    seen.add(name);
    const s = src[name];
    for (const m of Object.values((s.members as Record<string, Obj>) ?? {})) visit(m.shape as string);
    for (const k of ['member', 'key', 'value']) if (s[k]) visit((s[k] as Obj).shape as string);
  };
  for (const [name, o] of Object.entries(model.operations as Record<string, Obj>)) {
    if (!only.has(name)) continue;
    for (const k of ['input', 'output']) if (o[k]) visit((o[k] as Obj).shape as string);
    for (const e of (o.errors as Obj[] | undefined) ?? []) visit(e.shape as string);
  }
  return seen;
}

export function compact(model: Obj, only?: readonly string[]): Obj {
  const shapes: Obj = {};
  const src = model.shapes as Record<string, Obj>;
  const kept = only ? reachable(model, new Set(only)) : undefined;
  for (const name of Object.keys(src).sort()) {
    if (kept && !kept.has(name)) continue;
    const s = pick(src[name], SHAPE_KEYS);
    if (s.members) {
      const members: Obj = {};
      for (const [k, v] of Object.entries(s.members as Record<string, Obj>)) members[k] = member(v);
      s.members = members;
    }
    for (const k of ['member', 'key', 'value']) if (s[k]) s[k] = member(s[k] as Obj);
    if (s.error) s.error = pick(s.error as Obj, ['code', 'httpStatusCode', 'senderFault']);
    shapes[name] = s;
  }
  const operations: Obj = {};
  const ops = model.operations as Record<string, Obj>;
  for (const name of Object.keys(ops).sort()) {
    const o = ops[name];
    const out: Obj = { name: o.name, http: pick(o.http as Obj, ['method', 'requestUri', 'responseCode']) };
    if (only && !only.includes(name)) {
      operations[name] = out;
      continue;
    }
    if (o.input) out.input = member(o.input as Obj);
    if (o.output) out.output = member(o.output as Obj);
    if (Array.isArray(o.errors) && o.errors.length > 0) out.errors = (o.errors as Obj[]).map((e) => e.shape);
    // Operations AWS answers without a signature (Cognito's GetId, STS AssumeRoleWithWebIdentity).
    if (o.authtype === 'none' || (Array.isArray(o.auth) && o.auth.includes('smithy.api#noAuth'))) out.unsigned = true;
    operations[name] = out;
  }
  return { metadata: pick(model.metadata as Obj, METADATA_KEYS), operations, shapes };
}

/** One entry per line, so a regenerated model diffs by operation and shape. */
function render(service: string, c: Obj): string {
  const block = (o: Obj) => `{\n${Object.entries(o).map(([k, v]) => `    ${JSON.stringify(k)}: ${JSON.stringify(v)},`).join('\n')}\n  }`;
  return (
    `// Generated by src/models/generate.ts from AWS's ${service} service model (botocore, Apache-2.0).\n` +
    `// Do not edit: run \`npm run models\`.\n\n` +
    `import type { ServiceModel } from '../types.js';\n\n` +
    `export const model = {\n` +
    `  metadata: ${JSON.stringify(c.metadata)},\n` +
    `  operations: ${block(c.operations as Obj)},\n` +
    `  shapes: ${block(c.shapes as Obj)},\n` +
    `} as unknown as ServiceModel;\n`
  );
}

/** Names a generated interface may not take: the types the generated code itself refers to. */
const RESERVED = new Set(['Date', 'Buffer', 'Array', 'Inputs', 'Object', 'String', 'Number', 'Boolean']);
const typeName = (shape: string) => (RESERVED.has(shape) ? `${shape}Shape` : shape);

/**
 * TypeScript types of every operation's validated input (what src/models/validate.ts hands a
 * handler): an interface per structure reachable from an input, blobs as Buffer, timestamps as
 * Date, and `Inputs` mapping each operation to its input type. Enums stay `string`: handlers
 * compare them, and the validator has already refused other values.
 */
export function renderInputTypes(service: string, c: Obj): string {
  const shapes = c.shapes as Record<string, Obj>;
  const operations = c.operations as Record<string, Obj>;
  const seen = new Set<string>();
  const queue: string[] = [];
  const want = (name: string) => {
    if (!seen.has(name) && shapes[name]?.type === 'structure') {
      seen.add(name);
      queue.push(name);
    }
  };
  const ts = (ref: Obj): string => {
    const name = ref.shape as string;
    const s = shapes[name];
    switch (s.type) {
      case 'structure':
        want(name);
        return typeName(name);
      case 'list':
        return `Array<${ts(s.member as Obj)}>`;
      case 'map':
        return `{ [key: string]: ${ts(s.value as Obj)} }`;
      case 'string':
        return 'string';
      case 'boolean':
        return 'boolean';
      case 'blob':
        return 'Buffer';
      case 'timestamp':
        return 'Date';
      default:
        return 'number';
    }
  };
  // Operations kept by name only (no input, output or errors) have no input type either.
  const ops = Object.keys(operations)
    .filter((op) => Object.keys(operations[op]).some((k) => k !== 'name' && k !== 'http'))
    .sort();
  for (const op of ops) if (operations[op].input) want((operations[op].input as Obj).shape as string);
  const blocks: string[] = [];
  while (queue.length > 0) {
    const name = queue.shift()!;
    const s = shapes[name];
    const required = new Set((s.required as string[] | undefined) ?? []);
    const members = Object.entries((s.members as Record<string, Obj>) ?? {}).map(
      ([m, ref]) => `  ${JSON.stringify(m)}${required.has(m) ? '' : '?'}: ${ts(ref)};`,
    );
    blocks.push(`export interface ${typeName(name)} {\n${members.join('\n')}${members.length ? '\n' : ''}}`);
  }
  const inputs = ops.map((op) => {
    const input = operations[op].input as Obj | undefined;
    return `  ${op}: ${input ? typeName(input.shape as string) : '{}'};`;
  });
  return (
    `// Generated by src/models/generate.ts from AWS's ${service} service model (botocore, Apache-2.0).\n` +
    `// Do not edit: run \`npm run models\`. Validated operation inputs, as handlers receive them.\n\n` +
    `/* eslint-disable */\n\n` +
    `export interface Inputs {\n${inputs.join('\n')}\n}\n\n` +
    blocks.sort().join('\n\n') +
    '\n'
  );
}

function main(dir: string): void {
  const here = dirname(fileURLToPath(import.meta.url));
  // dist/src/models → src/models/generated
  const outDir = resolve(here, '..', '..', '..', 'src', 'models', 'generated');
  mkdirSync(outDir, { recursive: true });
  for (const service of SERVICES) {
    const model = JSON.parse(gunzipSync(readFileSync(join(dir, `${service}.json.gz`))).toString('utf8')) as Obj;
    const file = join(outDir, `${service}.ts`);
    const c = compact(model, SERVICE_OPERATIONS[service]);
    writeFileSync(file, render(service, c));
    console.log(`wrote ${file}`);
    const types = join(outDir, `${service}-inputs.ts`);
    writeFileSync(types, renderInputTypes(service, c));
    console.log(`wrote ${types}`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(resolve(process.argv[2] ?? '../shared/reference/models'));
}
