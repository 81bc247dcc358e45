// Event rows packed to cross from the loader's parse thread (parse-thread.ts) to the analytics
// thread cheaply. Structured clone of 50,000 objects of 29 fields each costs the receiving thread
// about as much as parsing the records did, which was the point of moving the parse. Packed: the
// four time columns as one Float64Array (NaN for NULL), transferred, not copied; the 25 string
// columns as one string, fields separated by U+0000 and NULL written as U+0001 — one copy, then
// one split on the receiving side. A row with a string field that contains U+0000, or is exactly
// U+0001, would be misread, so it travels as an object on the side (JSON columns never hold a raw
// U+0000: JSON.stringify escapes it; ids and names from the records may).

import type { EventRow } from './store.js';

const SEP = '\u0000';
const NULL = '\u0001';

/** The string columns, in packing order. */
const STRINGS = [
  'appId', 'eventKey', 'eventType', 'endpointId', 'userId', 'sessionId', 'channel', 'platform', 'platformVersion', 'appVersion', 'make', 'model',
  'country', 'attributes', 'metrics', 'endpointAttributes', 'campaignId', 'campaignActivityId', 'treatmentId', 'journeyId', 'journeyActivityId',
  'campaignSendStatus', 'journeySendStatus', 'deliveryType', 'journeyActivityType',
] as const satisfies ReadonlyArray<keyof EventRow>;
const NUMBERS = 4;

export interface PackedRows {
  /** Rows in all (packed and odd). */
  count: number;
  /** eventTime, arrivalTime, endpointCreated, sessionStart per row (NaN: NULL); odd rows' slots unused. */
  numbers: ArrayBuffer;
  /** The packed rows' string fields, each followed by SEP. */
  text: string;
  /** Rows that cannot be packed, by their index. */
  odd: Array<[number, EventRow]>;
}

const packable = (v: string | null): boolean => v === null || (v !== NULL && !v.includes(SEP));
/**
 * Whether every string field packs. The JSON columns (recordToRow's jsonText: JSON.stringify output
 * or '{}') never hold a raw U+0000 nor are exactly U+0001, so the longest fields are not scanned.
 */
const packs = (r: EventRow): boolean =>
    packable(r.appId) &&
    packable(r.eventKey) &&
    packable(r.eventType) &&
    packable(r.endpointId) &&
    packable(r.userId) &&
    packable(r.sessionId) &&
    packable(r.channel) &&
    packable(r.platform) &&
    packable(r.platformVersion) &&
    packable(r.appVersion) &&
    packable(r.make) &&
    packable(r.model) &&
    packable(r.country) &&
    packable(r.campaignId) &&
    packable(r.campaignActivityId) &&
    packable(r.treatmentId) &&
    packable(r.journeyId) &&
    packable(r.journeyActivityId) &&
    packable(r.campaignSendStatus) &&
    packable(r.journeySendStatus) &&
    packable(r.deliveryType) &&
    packable(r.journeyActivityType);

export function packRows(rows: readonly EventRow[]): PackedRows {
  const nums = new Float64Array(rows.length * NUMBERS);
  const parts: string[] = [];
  const odd: Array<[number, EventRow]> = [];
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    if (!packs(r)) {
      odd.push([i, r]);
      continue;
    }
    // Explicit fields in STRINGS order (a keyed loop over the names was a third of the packing).
    // Joined per row, then the rows: one join over all fields of a batch was 3x slower (measured).
    parts.push([
      r.appId, r.eventKey, r.eventType, r.endpointId, r.userId ?? NULL, r.sessionId ?? NULL, r.channel ?? NULL, r.platform ?? NULL, r.platformVersion ?? NULL,
      r.appVersion ?? NULL, r.make ?? NULL, r.model ?? NULL, r.country ?? NULL, r.attributes, r.metrics, r.endpointAttributes, r.campaignId ?? NULL,
      r.campaignActivityId ?? NULL, r.treatmentId ?? NULL, r.journeyId ?? NULL, r.journeyActivityId ?? NULL, r.campaignSendStatus ?? NULL,
      r.journeySendStatus ?? NULL, r.deliveryType ?? NULL, r.journeyActivityType ?? NULL,
    ].join(SEP));
    const o = i * NUMBERS;
    nums[o] = r.eventTime;
    nums[o + 1] = r.arrivalTime;
    nums[o + 2] = r.endpointCreated ?? NaN;
    nums[o + 3] = r.sessionStart ?? NaN;
  }
  // Every field is followed by SEP, so the split's last element is the empty tail.
  // (One join: building the text by += left ropes that cost more in GC and in postMessage's flattening.)
  return { count: rows.length, numbers: nums.buffer, text: parts.length > 0 ? parts.join(SEP) + SEP : '', odd };
}

export function unpackRows(p: PackedRows): EventRow[] {
  const nums = new Float64Array(p.numbers);
  const f = p.text === '' ? [] : p.text.split(SEP);
  const out: EventRow[] = new Array(p.count);
  const s = (x: string): string | null => (x === NULL ? null : x);
  const n = (x: number): number | null => (Number.isNaN(x) ? null : x);
  let oddAt = 0;
  let j = 0;
  for (let i = 0; i < p.count; i++) {
    if (oddAt < p.odd.length && p.odd[oddAt][0] === i) {
      out[i] = p.odd[oddAt++][1];
      continue;
    }
    const o = i * NUMBERS;
    out[i] = {
      appId: f[j],
      eventKey: f[j + 1],
      eventType: f[j + 2],
      eventTime: nums[o],
      arrivalTime: nums[o + 1],
      endpointId: f[j + 3],
      userId: s(f[j + 4]),
      endpointCreated: n(nums[o + 2]),
      sessionId: s(f[j + 5]),
      sessionStart: n(nums[o + 3]),
      channel: s(f[j + 6]),
      platform: s(f[j + 7]),
      platformVersion: s(f[j + 8]),
      appVersion: s(f[j + 9]),
      make: s(f[j + 10]),
      model: s(f[j + 11]),
      country: s(f[j + 12]),
      attributes: f[j + 13],
      metrics: f[j + 14],
      endpointAttributes: f[j + 15],
      campaignId: s(f[j + 16]),
      campaignActivityId: s(f[j + 17]),
      treatmentId: s(f[j + 18]),
      journeyId: s(f[j + 19]),
      journeyActivityId: s(f[j + 20]),
      campaignSendStatus: s(f[j + 21]),
      journeySendStatus: s(f[j + 22]),
      deliveryType: s(f[j + 23]),
      journeyActivityType: s(f[j + 24]),
    };
    j += STRINGS.length;
  }
  if (j !== Math.max(0, f.length - 1)) throw new Error(`packed rows: ${f.length - 1} string fields for ${j}`);
  return out;
}
