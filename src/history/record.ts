// One archived event-stream record (reference/pinpoint.md §3) as history import reads it: parsed
// from a JSON line or a Parquet row's JSON, its source project, and the `events` row the analytics
// loader would have stored for it (loader.ts recordToRow, so dashboards and KPIs of imported
// history are computed exactly as those of live events).
//
// Event ids. A stream record carries no PutEvents event id, so an imported event's id is derived
// from what identifies it: endpoint, type, event and arrival times, session, attributes and
// metrics (keys lower-cased, maps sorted, numbers as JSON writes them). The same event read from
// a JSON copy and from Firehose's Parquet conversion of it (which lower-cases keys and writes
// metrics as doubles) gets the same id, and importing an archive twice finds every id held.
// Ids start with HISTORY_EVENT_ID_PREFIX so a stored row says where it came from; with `--replay`
// the entries appended to the ingest log are marked as history (ingest-record.ts), and the
// analytics loader passes them by: the import stored them already.

import { createHash } from 'node:crypto';
import { recordToRow } from '../analytics/loader.js';
import type { EventRow } from '../analytics/store.js';

export const HISTORY_EVENT_ID_PREFIX = 'hist-';

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined);

/**
 * Endpoint fields recordToRow reads, by their lower-case spelling: Firehose's Parquet conversion
 * lower-cases every key by default (OpenX CaseInsensitive), and a JSON column keeps them so.
 */
const ENDPOINT_KEYS: Record<string, string> = Object.fromEntries(
  ['ChannelType', 'User', 'UserId', 'Location', 'Country', 'Demographic', 'Platform', 'PlatformVersion', 'AppVersion', 'Make', 'Model', 'Attributes', 'CreationDate'].map((k) => [
    k.toLowerCase(),
    k,
  ]),
);

/** Restores the endpoint's key spelling (only for keys recordToRow reads; their values are kept). */
function canonicalEndpoint(v: unknown, depth = 0): unknown {
  const o = obj(v);
  if (!o || depth > 1) return v;
  const out: Json = {};
  for (const [k, val] of Object.entries(o)) {
    const name = Object.hasOwn(ENDPOINT_KEYS, k) ? ENDPOINT_KEYS[k] : k;
    // Attributes are user data: its keys stay as they are.
    out[name] = name === 'Attributes' ? val : canonicalEndpoint(val, depth + 1);
  }
  return out;
}

export type ParsedRecord =
  | { ok: true; appId: string; endpointId: string; eventId: string; eventTime: number; record: Json }
  | { ok: false; error: string };

/** Parses one record; `error` says why it is not a usable event-stream record. */
export function parseRecord(text: string): ParsedRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, error: `not JSON: ${(e as Error).message}` };
  }
  const record = obj(value);
  if (!record) return { ok: false, error: 'not a JSON object' };
  const appId = obj(record.application)?.app_id;
  if (typeof appId !== 'string' || appId === '') return { ok: false, error: 'no application.app_id' };
  if (typeof record.event_type !== 'string' || record.event_type === '') return { ok: false, error: 'no event_type' };
  const eventTime = record.event_timestamp;
  if (typeof eventTime !== 'number' || !Number.isFinite(eventTime)) return { ok: false, error: 'no numeric event_timestamp' };
  const clientId = obj(record.client)?.client_id;
  const endpointId = typeof clientId === 'string' && clientId !== '' ? clientId : '';
  if (record.endpoint !== undefined && record.endpoint !== null) record.endpoint = canonicalEndpoint(record.endpoint);
  return { ok: true, appId, endpointId, eventId: historyEventId(endpointId, record), eventTime, record };
}

/** Sorted [lower-case key, value] pairs of a map (null when absent). */
function canonicalMap(v: unknown): Array<[string, unknown]> {
  const o = obj(v);
  if (!o) return [];
  return Object.entries(o)
    .filter(([, x]) => x !== null && x !== undefined)
    .map(([k, x]): [string, unknown] => [k.toLowerCase(), x])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

export function historyEventId(endpointId: string, record: Json): string {
  const session = obj(record.session);
  const identity = JSON.stringify([
    endpointId,
    record.event_type,
    record.event_timestamp,
    typeof record.arrival_timestamp === 'number' ? record.arrival_timestamp : null,
    typeof session?.session_id === 'string' ? session.session_id : null,
    canonicalMap(record.attributes),
    canonicalMap(record.metrics),
  ]);
  return HISTORY_EVENT_ID_PREFIX + createHash('sha256').update(identity).digest('base64url').slice(0, 27);
}

/** The `events` row of a parsed record, stored under the destination project. */
export function historyRow(destAppId: string, p: Extract<ParsedRecord, { ok: true }>): EventRow {
  return recordToRow(destAppId, p.endpointId, p.eventId, p.record);
}
