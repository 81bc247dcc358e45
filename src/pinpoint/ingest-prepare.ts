// The thread-independent half of PutEvents: from the request's raw bytes to compact, ready-made
// pieces of its ingest-log entries. It parses the body, validates it against Pinpoint's model,
// judges each event against Pinpoint's limits, computes each event's dedup key and builds the
// event-dependent parts of its record. Nothing here touches shared state (the endpoint table, the
// dedup window, the log), so it runs on a worker thread (src/pinpoint/parallel/) as well as inline;
// events.ts applies the result on the thread that owns that state (PreparedEvents → EventIngest).
// Errors are returned as data, not thrown, so they cross a thread boundary unchanged.

import { ApiError, badRequest } from '../http/errors.js';
import { parseJsonObject } from '../http/restjson.js';
import { isObject, parseIsoTimestamp, type Json } from '../http/shape.js';
import { isWellFormed, wellFormed } from '../unicode.js';
import { model as pinpointModel } from '../models/generated/pinpoint.js';
import type { EventsRequest } from '../models/generated/pinpoint-inputs.js';
import { ModelValidator, type ShapeOverride } from '../models/validate.js';
import { RestDecoder } from '../models/rest-input.js';
import { Dedup } from './dedup.js';
import { checkEndpointId, hasEndpointFields, validateEndpointInput } from './endpoints.js';
import { eventRecordParts, type AppFields, type EventInput } from './record.js';
import {
  MAX_EVENTS_PER_REQUEST,
  MAX_EVENT_ATTRIBUTES_AND_METRICS,
  MAX_EVENT_ATTRIBUTE_KEY_LENGTH,
  MAX_EVENT_ATTRIBUTE_VALUE_LENGTH,
  MAX_EVENT_BYTES,
  MAX_PUT_EVENTS_REQUEST_BYTES,
} from './limits.js';

/**
 * Deliberate deviations from Pinpoint's model. PutEvents judges each event on its own (a bad
 * event fails only that event, in its result, as Pinpoint does), so the request layer passes
 * events through unchecked and validateEvent checks them one by one.
 */
export const PINPOINT_MODEL_OVERRIDES: Record<string, ShapeOverride> = { Event: { opaque: true } };

/** A rejected event: its id and the reason. */
export type PreparedRejected = [eventId: string, message: string];
/**
 * An accepted event: its id, its dedup key (Dedup.keyIn), `head` = the rest of the entry's header
 * after `[appId,endpointId,` (the JSON id, `]` and the newline) followed by the record up to its
 * `application` object, the index of its application fields in PreparedEvents.apps, and the
 * record's part after the endpoint's client/device (see record.ts eventRecordParts).
 */
export type PreparedAccepted = [eventId: string, key: string, head: string, app: number, rest: string];
export type PreparedEvent = PreparedRejected | PreparedAccepted;

export interface PreparedItem {
  endpointId: string;
  /** The endpoint id is unusable: every event of the item fails with this. */
  idError?: string;
  /** Endpoint fields to store (absent when the item carries none). */
  endpoint?: Json;
  /** The endpoint fields are invalid: the item's endpoint result, the events still go in. */
  endpointError?: string;
  events: PreparedEvent[];
}

export interface PreparedOk {
  ok: true;
  /** More events than MAX_EVENTS_PER_REQUEST (refused after authorization, as before): their count. */
  tooMany?: number;
  /** Distinct application fields, referred to by index from the accepted events. */
  apps: AppFields[];
  items: PreparedItem[];
}

/** The request's events, or why the request as a whole is refused (an ApiError's parts). */
export type PreparedEvents = PreparedOk | { ok: false; code: string; status: number; message: string };

/**
 * What a prepare needs: all of it cloneable, the body transferable. PutEvents binds only its URI
 * label and its payload (the model's PutEventsRequest), so the query and headers stay behind.
 */
export interface PrepareJob {
  appId: string;
  body: Uint8Array;
  labels: Record<string, string>;
  arrivalMs: number;
}

const NO_QUERY = new URLSearchParams();
const NO_HEADERS = Object.freeze({});

let decoder: RestDecoder | undefined;

/** The HTTP path: the raw body, parsed and validated against the model here. */
export function prepareBody(job: PrepareJob): PreparedEvents {
  let request: EventsRequest;
  try {
    const payload = parseJsonObject(job.body, MAX_PUT_EVENTS_REQUEST_BYTES, 'PutEvents request body');
    decoder ??= new RestDecoder(new ModelValidator(pinpointModel, PINPOINT_MODEL_OVERRIDES, { paths: 'rest' }));
    const r = decoder.decode<{ EventsRequest: EventsRequest }>('PutEvents', { labels: job.labels, query: NO_QUERY, headers: NO_HEADERS, body: payload });
    if (!r.ok) throw badRequest(r.error.message);
    request = r.value.EventsRequest;
  } catch (e) {
    if (e instanceof ApiError) return { ok: false, code: e.code, status: e.status, message: e.message };
    throw e;
  }
  return prepareRequest(job.appId, job.body, request, job.arrivalMs);
}

/** A model-validated EventsRequest (its events unchecked) and its raw bytes. */
export function prepareRequest(appId: string, body: Uint8Array, request: EventsRequest, arrivalMs: number): PreparedOk {
  const batch = Object.entries(request.BatchItem) as unknown as Array<[string, Json]>;
  let count = 0;
  for (const [, item] of batch) count += Object.keys(item.Events as Json).length;
  if (count > MAX_EVENTS_PER_REQUEST) return { ok: true, tooMany: count, apps: [], items: [] };
  // Only JSON escapes can produce unpaired surrogates (UTF-8 cannot encode one): without "\ud" in
  // the body there is nothing to repair, and the per-event walk is skipped.
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const repairStrings = bytes.includes('\\ud') || bytes.includes('\\uD');
  const checkSize = body.length > MAX_EVENT_BYTES;
  const apps: AppFields[] = [];
  let lastApp: AppFields | undefined;
  let lastAppKey = '';
  const items: PreparedItem[] = [];
  for (const [endpointId, item] of batch) {
    const events = item.Events as Json;
    const prepared: PreparedItem = { endpointId, events: [] };
    items.push(prepared);
    try {
      checkEndpointId(endpointId);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      prepared.idError = e.message;
      for (const eventId of Object.keys(events)) prepared.events.push([eventId, e.message]);
      continue;
    }
    const input = item.Endpoint as Json;
    if (hasEndpointFields(input)) {
      try {
        validateEndpointInput(input, `BatchItem.${endpointId}.Endpoint`, Buffer.byteLength(JSON.stringify(input)));
        prepared.endpoint = input;
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        prepared.endpointError = e.message;
      }
    }
    const scope = Dedup.scope(appId, endpointId);
    for (const eventId in events) {
      const raw = repairStrings ? wellFormed(events[eventId]) : events[eventId];
      const checked = validateEvent(eventId, raw, checkSize);
      if (typeof checked === 'string') {
        prepared.events.push([eventId, checked]);
        continue;
      }
      const appKey = `${checked.AppPackageName}\0${checked.SdkName}\0${checked.ClientSdkVersion}\0${checked.AppTitle}\0${checked.AppVersionCode}`;
      if (lastApp === undefined || appKey !== lastAppKey) {
        lastApp = {};
        for (const k of APP_FIELDS) if (checked[k] !== undefined) lastApp[k] = checked[k];
        lastAppKey = appKey;
        apps.push(lastApp);
      }
      const { head, rest } = eventRecordParts(checked, arrivalMs);
      prepared.events.push([eventId, Dedup.keyIn(scope, eventId), `${JSON.stringify(eventId)}]\n${head}`, apps.length - 1, rest]);
    }
  }
  return { ok: true, apps, items };
}

const APP_FIELDS = ['AppPackageName', 'SdkName', 'ClientSdkVersion', 'AppTitle', 'AppVersionCode'] as const;

const OPTIONAL_STRINGS = ['AppPackageName', 'AppTitle', 'AppVersionCode', 'ClientSdkVersion', 'SdkName'] as const;

/** Returns the event ready for the record, or the reason it is rejected. */
export function validateEvent(eventId: string, raw: unknown, checkSize: boolean): EventInput | string {
  const f = `Event ${eventId}`;
  if (eventId === '') return 'Event id must not be empty';
  // Ids are names, refused when broken (replacing a half-character could merge two events); other
  // strings arrive here already made well-formed (src/unicode.ts).
  if (!isWellFormed(eventId)) return `Event id ${JSON.stringify(eventId)} is not valid Unicode: it contains an unpaired UTF-16 surrogate`;
  if (!isObject(raw)) return `${f}: must be an Event object`;
  if (checkSize) {
    const bytes = Buffer.byteLength(JSON.stringify(raw));
    if (bytes > MAX_EVENT_BYTES) return `${f}: event is ${bytes} bytes; the maximum is ${MAX_EVENT_BYTES} bytes (1,000 KB)`;
  }
  const type = raw.EventType;
  if (typeof type !== 'string' || type === '') return `${f}: EventType is required`;
  if (raw.Timestamp === undefined || raw.Timestamp === null) return `${f}: Timestamp is required`;
  if (typeof raw.Timestamp !== 'string') return `${f}: Timestamp must be an ISO 8601 string`;
  const ts = parseIsoTimestamp(raw.Timestamp);
  if (ts === undefined) return `${f}: Timestamp "${raw.Timestamp}" is not an ISO 8601 date-time`;
  const ev: EventInput = { EventType: type, timestampMs: ts };
  for (const k of OPTIONAL_STRINGS) {
    const v = raw[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') return `${f}: ${k} must be a string`;
    ev[k] = v;
  }
  let keys = 0;
  if (raw.Attributes !== undefined && raw.Attributes !== null) {
    if (!isObject(raw.Attributes)) return `${f}: Attributes must be a map of strings`;
    const attrs = raw.Attributes;
    for (const k in attrs) {
      const v = attrs[k];
      keys++;
      const bad = checkKey(f, 'Attributes', k);
      if (bad) return bad;
      if (typeof v !== 'string') return `${f}: Attributes.${k} must be a string`;
      if (v.length > MAX_EVENT_ATTRIBUTE_VALUE_LENGTH) {
        return `${f}: Attributes.${k} is ${v.length} characters; attribute values must be at most ${MAX_EVENT_ATTRIBUTE_VALUE_LENGTH}`;
      }
    }
    ev.Attributes = raw.Attributes as Record<string, string>;
  }
  if (raw.Metrics !== undefined && raw.Metrics !== null) {
    if (!isObject(raw.Metrics)) return `${f}: Metrics must be a map of numbers`;
    const metrics = raw.Metrics;
    for (const k in metrics) {
      const v = metrics[k];
      keys++;
      const bad = checkKey(f, 'Metrics', k);
      if (bad) return bad;
      if (typeof v !== 'number' || !Number.isFinite(v)) return `${f}: Metrics.${k} must be a number`;
    }
    ev.Metrics = raw.Metrics as Record<string, number>;
  }
  if (keys > MAX_EVENT_ATTRIBUTES_AND_METRICS) {
    // The first sentence is the wording Pinpoint returned; clients and forums search for it.
    return (
      `Number of attributes per event submitted should be less than ${MAX_EVENT_ATTRIBUTES_AND_METRICS}. ` +
      `${f} has ${keys} Attributes and Metrics keys; the maximum is ${MAX_EVENT_ATTRIBUTES_AND_METRICS}`
    );
  }
  if (raw.Session !== undefined && raw.Session !== null) {
    const s = raw.Session;
    if (!isObject(s)) return `${f}: Session must be an object`;
    if (typeof s.Id !== 'string' || s.Id === '') return `${f}: Session.Id is required when Session is given`;
    if (typeof s.StartTimestamp !== 'string') return `${f}: Session.StartTimestamp is required when Session is given`;
    const start = parseIsoTimestamp(s.StartTimestamp);
    if (start === undefined) return `${f}: Session.StartTimestamp "${s.StartTimestamp}" is not an ISO 8601 date-time`;
    let stop: number | undefined;
    if (s.StopTimestamp !== undefined && s.StopTimestamp !== null) {
      if (typeof s.StopTimestamp !== 'string' || (stop = parseIsoTimestamp(s.StopTimestamp)) === undefined) {
        return `${f}: Session.StopTimestamp must be an ISO 8601 date-time`;
      }
    }
    if (s.Duration !== undefined && s.Duration !== null && !Number.isInteger(s.Duration)) {
      return `${f}: Session.Duration must be an integer number of milliseconds`;
    }
    ev.session = { id: s.Id, startMs: start, stopMs: stop };
  }
  return ev;
}

function checkKey(f: string, map: string, k: string): string | undefined {
  if (k.length === 0) return `${f}: ${map} keys must not be empty`;
  if (k.length > MAX_EVENT_ATTRIBUTE_KEY_LENGTH) {
    return `${f}: ${map} key "${k.slice(0, 60)}" is ${k.length} characters; keys must be at most ${MAX_EVENT_ATTRIBUTE_KEY_LENGTH}`;
  }
  return undefined;
}
