// The file formats of endpoint import and export jobs, as Pinpoint defined them ("Importing
// segments", "Supported attributes"): JSON is one endpoint definition per line in the
// EndpointRequest shape (with Id); CSV has a header row of dotted attribute names
// (`ChannelType,Address,Location.Country,Demographic.Platform,User.UserId,Attributes.interests`),
// a repeated header for each further value of a multi-valued attribute, RFC 4180 quoting and no
// line breaks inside values. Export lines are the stored endpoint (GetEndpoint's EndpointResponse),
// and importing one of them keeps every field but ApplicationId (CreationDate included, for new
// endpoints), so export → import moves a project's endpoints unchanged.
//
// Also owns splitting a byte stream into lines in bounded memory (a line over
// MAX_IMPORT_LINE_BYTES fails on its own) and the deterministic id of a line without one, so a
// line applied twice (never, by the job's bookkeeping) would still name the same endpoint.

import { createHash } from 'node:crypto';
import { badRequest } from '../../http/errors.js';
import type { Json } from '../../http/shape.js';
import { model as pinpointModel } from '../../models/generated/pinpoint.js';
import { ModelValidator } from '../../models/validate.js';
import { checkEndpointId, validateEndpointInput } from '../endpoints.js';
import { MAX_IMPORT_LINE_BYTES } from './limits.js';

export type ImportFormat = 'JSON' | 'CSV';

/** One endpoint a line defines: its id, the EndpointRequest members, and an exported CreationDate. */
export interface ImportItem {
  id: string;
  input: Json;
  creationDate?: string;
}

/** A line that cannot be imported; the message says why (the job adds where). */
export class LineError extends Error {}

const validator = new ModelValidator(pinpointModel, {}, { paths: 'rest' });
const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** The id of a line that names none: the same for the same job, object and line. */
export function lineEndpointId(jobId: string, key: string, line: number): string {
  const h = createHash('sha256').update(`${jobId}\n${key}\n${line}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Checks a parsed endpoint definition as UpdateEndpointsBatch checks an item. */
function item(raw: Record<string, unknown>, bytes: number, fallbackId: () => string): ImportItem {
  const creation = raw.CreationDate;
  const checked = validator.validateShape<Json>('EndpointBatchItem', raw);
  if (!checked.ok) throw new LineError(checked.error.message);
  const { Id, ...input } = checked.value;
  let id: string;
  if (Id === undefined || Id === '') {
    // Pinpoint: a new endpoint needs Address and ChannelType; an update names the endpoint by Id.
    if (input.Address === undefined || input.ChannelType === undefined) throw new LineError('a line without Id defines a new endpoint and needs Address and ChannelType');
    id = fallbackId();
  } else id = String(Id);
  try {
    checkEndpointId(id);
    validateEndpointInput(input, 'endpoint', bytes);
  } catch (e) {
    throw new LineError((e as Error).message);
  }
  const out: ImportItem = { id, input };
  if (typeof creation === 'string' && ISO_DATE.test(creation)) out.creationDate = creation;
  return out;
}

export function parseJsonLine(text: string, bytes: number, fallbackId: () => string): ImportItem {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new LineError(`not valid JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new LineError('a JSON line must be one endpoint object');
  return item(v as Record<string, unknown>, bytes, fallbackId);
}

/** Splits one CSV record (RFC 4180 quoting, no line breaks inside values). */
export function splitCsv(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw new LineError('a quoted value is not closed (values may not contain line breaks)');
        v += line.slice(i, q);
        if (line[q + 1] === '"') {
          v += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      out.push(v);
      if (i === line.length) return out;
      if (line[i] !== ',') throw new LineError(`unexpected character after a quoted value at column ${i + 1}`);
      i++;
    } else {
      const c = line.indexOf(',', i);
      const v = c < 0 ? line.slice(i) : line.slice(i, c);
      if (v.includes('"')) throw new LineError('a double quote inside an unquoted value; quote the value and double the quote');
      out.push(v);
      if (c < 0) return out;
      i = c + 1;
    }
  }
}

type Column =
  | { kind: 'top'; name: string }
  | { kind: 'member'; parent: 'Demographic' | 'Location' | 'User'; name: string; numeric?: boolean }
  | { kind: 'list'; parent: 'Attributes' | 'UserAttributes'; name: string }
  | { kind: 'metric'; name: string };

const TOP = new Set(['Id', 'Address', 'ChannelType', 'OptOut', 'EffectiveDate', 'EndpointStatus', 'RequestId', 'CreationDate']);
const DEMOGRAPHIC = new Set(['AppVersion', 'Locale', 'Make', 'Model', 'ModelVersion', 'Platform', 'PlatformVersion', 'Timezone']);
const LOCATION = new Set(['City', 'Country', 'PostalCode', 'Region', 'Latitude', 'Longitude']);

/** A CSV header row, checked once per object: every column must be an attribute Pinpoint supports. */
export class CsvHeader {
  readonly columns: Column[];

  constructor(readonly text: string) {
    const names = splitCsv(text).map((n) => n.trim());
    const seen = new Set<string>();
    this.columns = names.map((name) => {
      const c = column(name);
      if (c.kind !== 'list' && seen.has(name)) throw badRequest(`CSV header names ${name} twice; only Attributes.* and User.UserAttributes.* columns may repeat (one value each)`);
      seen.add(name);
      return c;
    });
  }

  parse(line: string, bytes: number, fallbackId: () => string): ImportItem {
    const values = splitCsv(line);
    if (values.length !== this.columns.length) throw new LineError(`has ${values.length} values; the header has ${this.columns.length} columns`);
    const e: Record<string, any> = {};
    this.columns.forEach((c, i) => {
      const v = values[i];
      if (v === '') return;
      switch (c.kind) {
        case 'top':
          e[c.name] = v;
          break;
        case 'member': {
          const n = c.numeric ? Number(v) : v;
          if (c.numeric && !Number.isFinite(n)) throw new LineError(`${c.parent}.${c.name} must be a number; got "${v.slice(0, 40)}"`);
          const parent = (e[c.parent] ??= {});
          parent[c.name] = n;
          break;
        }
        case 'list': {
          const holder = c.parent === 'Attributes' ? (e.Attributes ??= {}) : ((e.User ??= {}).UserAttributes ??= {});
          if (!Object.hasOwn(holder, c.name)) Object.defineProperty(holder, c.name, { value: [], enumerable: true, writable: true, configurable: true });
          holder[c.name].push(v);
          break;
        }
        case 'metric': {
          const n = Number(v);
          if (!Number.isFinite(n)) throw new LineError(`Metrics.${c.name} must be a number; got "${v.slice(0, 40)}"`);
          const m = (e.Metrics ??= {});
          Object.defineProperty(m, c.name, { value: n, enumerable: true, writable: true, configurable: true });
          break;
        }
      }
    });
    return item(e, bytes, fallbackId);
  }
}

function column(name: string): Column {
  if (TOP.has(name)) return { kind: 'top', name };
  const dot = name.indexOf('.');
  const head = dot < 0 ? name : name.slice(0, dot);
  const rest = dot < 0 ? '' : name.slice(dot + 1);
  if (head === 'Demographic' && DEMOGRAPHIC.has(rest)) return { kind: 'member', parent: 'Demographic', name: rest };
  if (head === 'Location' && LOCATION.has(rest)) return { kind: 'member', parent: 'Location', name: rest, numeric: rest === 'Latitude' || rest === 'Longitude' };
  if (head === 'Attributes' && rest !== '') return { kind: 'list', parent: 'Attributes', name: rest };
  if (head === 'Metrics' && rest !== '') return { kind: 'metric', name: rest };
  if (name === 'User.UserId') return { kind: 'member', parent: 'User', name: 'UserId' };
  if (name.startsWith('User.UserAttributes.') && name.length > 'User.UserAttributes.'.length) return { kind: 'list', parent: 'UserAttributes', name: name.slice('User.UserAttributes.'.length) };
  throw badRequest(
    `CSV header column "${name.slice(0, 100)}" is not an endpoint attribute Pinpoint imports (Id, Address, ChannelType, OptOut, EffectiveDate, ` +
      'EndpointStatus, RequestId, Demographic.*, Location.*, Attributes.NAME, Metrics.NAME, User.UserId, User.UserAttributes.NAME)',
  );
}

/** One line of an object: its text (undefined when over MAX_IMPORT_LINE_BYTES or not UTF-8) and the bytes it took, newline included. */
export interface Line {
  text: string | undefined;
  problem?: string;
  bytes: number;
}

/** Lines of a byte stream, holding at most one line (up to maxBytes) in memory. */
export async function* splitLines(src: AsyncIterable<Buffer>, maxBytes = MAX_IMPORT_LINE_BYTES): AsyncGenerator<Line> {
  let parts: Buffer[] = [];
  let length = 0;
  let oversized = false;
  const done = (newline: boolean): Line => {
    const bytes = length + (newline ? 1 : 0);
    if (oversized) return { text: undefined, problem: `is ${length} bytes; a line may be at most ${maxBytes} bytes`, bytes };
    let buf = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    if (buf.length > 0 && buf[buf.length - 1] === 13) buf = buf.subarray(0, buf.length - 1);
    try {
      return { text: fatalUtf8.decode(buf), bytes };
    } catch {
      return { text: undefined, problem: 'is not valid UTF-8', bytes };
    }
  };
  for await (const chunk of src) {
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf(10, pos);
      const end = nl < 0 ? chunk.length : nl;
      if (!oversized) {
        if (length + end - pos > maxBytes) {
          oversized = true;
          parts = [];
        } else if (end > pos) parts.push(chunk.subarray(pos, end));
      }
      length += end - pos;
      if (nl < 0) break;
      yield done(true);
      parts = [];
      length = 0;
      oversized = false;
      pos = nl + 1;
    }
  }
  if (length > 0 || oversized) yield done(false);
}
