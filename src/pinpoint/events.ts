// PutEvents: validates each event against Pinpoint's limits, turns accepted events into
// event-stream records, appends them to the ingest log and answers only once they are durable.
// Results are per item ({"StatusCode":202,"Message":"Accepted"} or 400 with the reason); only a
// malformed request as a whole is an error response.

import type { Clock } from '../clock.js';
import type { Log } from '../log/log.js';
import { storageFailureText } from '../log/errors.js';
import { ApiError, badRequest, internalError, payloadTooLarge } from '../http/errors.js';
import { isWellFormed, wellFormed } from '../unicode.js';
import { isObject, parseIsoTimestamp, type Json } from '../http/shape.js';
import type { Apps } from './apps.js';
import type { EventsRequest } from '../models/generated/pinpoint-inputs.js';
import { checkEndpointId, hasEndpointFields, validateEndpointInput, type Endpoints, type StoredEndpoint } from './endpoints.js';
import { Dedup, type PendingAppend } from './dedup.js';
import { encodeIngestEntry } from './ingest-record.js';
import { buildRecord, endpointParts, type CognitoCaller, type EventInput } from './record.js';
import {
  MAX_EVENTS_PER_REQUEST,
  MAX_EVENT_ATTRIBUTES_AND_METRICS,
  MAX_EVENT_ATTRIBUTE_KEY_LENGTH,
  MAX_EVENT_ATTRIBUTE_VALUE_LENGTH,
  MAX_EVENT_BYTES,
  MAX_PUT_EVENTS_REQUEST_BYTES,
} from './limits.js';

export interface ItemResult {
  StatusCode: number;
  Message: string;
}

const ACCEPTED: ItemResult = Object.freeze({ StatusCode: 202, Message: 'Accepted' });

/**
 * How long a retried event waits for its original's append (still in flight when the retry
 * arrived) before the retry answers that event with a retryable 500 instead of "Accepted". An
 * append normally settles within one fsync; this bounds a retry's wait on a stuck disk.
 */
export const MAX_RETRY_WAIT_MS = 10_000;

export interface EventIngestOptions {
  /** MAX_RETRY_WAIT_MS unless a test shortens it. */
  retryWaitMs?: number;
}

/** An accepted event whose first copy was still being appended by another request. */
interface Waiting {
  key: string;
  eventId: string;
  payload: string;
  results: Record<string, ItemResult>;
  on: PendingAppend;
}

export class EventIngest {
  private readonly retryWaitMs: number;
  private waitingNow = 0;

  constructor(
    private apps: Apps,
    private endpoints: Endpoints,
    /** Only appends: PutEvents writes the ingest log and never reads it. */
    private log: Pick<Log, 'append'>,
    private dedup: Dedup,
    private clock: Clock,
    private accountId: string,
    options: EventIngestOptions = {},
  ) {
    this.retryWaitMs = options.retryWaitMs ?? MAX_RETRY_WAIT_MS;
  }

  /**
   * `request`: the validated EventsRequest (its events unchecked: each is judged here on its own);
   * `body`: its raw bytes; `cognito`: the caller's Cognito identity, when its credentials came from
   * one (recorded in every event's record).
   */
  async putEvents(appId: string, body: Buffer, request: EventsRequest, cognito?: CognitoCaller): Promise<{ Results: Record<string, Json> }> {
    this.apps.require(appId);
    if (body.length > MAX_PUT_EVENTS_REQUEST_BYTES) {
      throw payloadTooLarge(
        `PutEvents request is ${body.length} bytes; the maximum is ${MAX_PUT_EVENTS_REQUEST_BYTES} bytes (4 MB)`,
      );
    }
    const batch = eventBatches(request);
    // Only JSON escapes can produce unpaired surrogates (UTF-8 cannot encode one): without "\ud" in
    // the body there is nothing to repair, and the per-event walk is skipped.
    const repairStrings = body.includes('\\ud') || body.includes('\\uD');
    const arrival = this.clock.now();
    const checkSize = body.length > MAX_EVENT_BYTES;
    // Keyed by client-sent ids: null prototypes, so an id "__proto__" is an entry like any other.
    const results: Record<string, Json> = Object.create(null);
    const payloads: string[] = [];
    const waiting: Waiting[] = [];
    const append = this.dedup.begin();

    try {
      // One SQLite transaction for the request's endpoint writes (a savepoint per item).
      this.endpoints.transaction(appId, () => {
        for (const [endpointId, item] of batch) {
          const eventResults: Record<string, ItemResult> = Object.create(null);
          const { result: endpointResult, stored } = this.endpointFor(appId, endpointId, item.Endpoint as Json);
          results[endpointId] = { EndpointItemResponse: endpointResult, EventsItemResponse: eventResults };
          const events = item.Events as Json;
          if (!stored) {
            for (const eventId of Object.keys(events)) eventResults[eventId] = { StatusCode: 400, Message: endpointResult.Message };
            continue;
          }
          const parts = endpointParts(appId, stored.endpoint.Id, stored, this.accountId, cognito);
          const scope = Dedup.scope(appId, endpointId);
          for (const eventId in events) {
            const raw = repairStrings ? wellFormed(events[eventId]) : events[eventId];
            const checked = validateEvent(eventId, raw, checkSize);
            if (typeof checked === 'string') {
              eventResults[eventId] = { StatusCode: 400, Message: checked };
              continue;
            }
            eventResults[eventId] = ACCEPTED;
            const key = Dedup.keyIn(scope, eventId);
            const claim = this.dedup.claim(key, append);
            if (claim === 'skip') continue;
            const payload = encodeIngestEntry(appId, stored.endpoint.Id, eventId, buildRecord(parts, checked, arrival));
            if (claim === 'write') payloads.push(payload);
            else waiting.push({ key, eventId, payload, results: eventResults, on: claim });
          }
        }
      });
    } catch (e) {
      this.dedup.settle(append, false);
      throw e;
    }

    // Our own events and the retried ones whose originals are in flight, side by side.
    const [own, retried] = await Promise.allSettled([this.appendSettling(append, payloads), this.afterOriginals(waiting)]);
    if (own.status === 'rejected' || retried.status === 'rejected') {
      const reason = own.status === 'rejected' ? own.reason : (retried as PromiseRejectedResult).reason;
      console.error('pinstream: ingest log append failed', reason);
      // 500 InternalServerErrorException: SDKs retry it; the reason says whether the disk is full.
      throw internalError(`The events could not be stored (${storageFailureText(reason)}). Retry the request; events already stored are not stored twice.`);
    }
    return { Results: results };
  }

  /**
   * Appends records built by the server (mapped email and SMS events) the way PutEvents appends
   * events: one append, deduplicated on (app, endpoint, event id) in the same window, resolved only
   * once durable. Returns how many were new. Throws when the log could not store them, or when an
   * earlier request carrying some of them is still being stored after retryWaitMs: the caller
   * answers a retryable error, and a retry stores only what is missing.
   */
  async appendRecords(items: ReadonlyArray<{ appId: string; endpointId: string; eventId: string; record: string }>): Promise<number> {
    const append = this.dedup.begin();
    const payloads: string[] = [];
    const waiting: Waiting[] = [];
    const results: Record<string, ItemResult> = Object.create(null);
    for (const it of items) {
      const key = Dedup.key(it.appId, it.endpointId, it.eventId);
      const claim = this.dedup.claim(key, append);
      if (claim === 'skip') continue;
      const payload = encodeIngestEntry(it.appId, it.endpointId, it.eventId, it.record);
      if (claim === 'write') payloads.push(payload);
      else waiting.push({ key, eventId: it.eventId, payload, results, on: claim });
    }
    const [own, retried] = await Promise.allSettled([this.appendSettling(append, payloads), this.afterOriginals(waiting)]);
    if (own.status === 'rejected') throw own.reason;
    if (retried.status === 'rejected') throw retried.reason;
    const stuck = Object.values(results).find((r) => r.StatusCode === 500);
    if (stuck) throw new Error(stuck.Message);
    return payloads.length;
  }

  /** Appends and settles the claims of `append`: durable keys join the window, failed ones are freed. */
  private async appendSettling(append: PendingAppend, payloads: string[]): Promise<void> {
    if (payloads.length === 0) {
      this.dedup.settle(append, true);
      return;
    }
    try {
      await this.log.append(payloads);
    } catch (e) {
      this.dedup.settle(append, false);
      throw e;
    }
    this.dedup.settle(append, true);
  }

  /** Retried events now waiting for their original's append (health, tests). */
  get retriesWaiting(): number {
    return this.waitingNow;
  }

  /**
   * Retried events whose original append was in flight: each waits for that append (at most
   * retryWaitMs in all). A durable original keeps the retry's "Accepted"; a failed one leaves the key
   * free, and the retry claims it and writes the event itself (or waits again on whoever claimed it
   * first). An original still unsettled at the deadline makes that event a retryable 500.
   */
  private async afterOriginals(waiting: Waiting[]): Promise<void> {
    if (waiting.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.retryWaitMs);
    });
    try {
      let round = waiting;
      while (round.length > 0) {
        this.waitingNow += round.length;
        let outcomes: Array<boolean | 'timeout'>;
        try {
          outcomes = await Promise.all(round.map((w) => Promise.race([w.on.settled, deadline])));
        } finally {
          this.waitingNow -= round.length;
        }
        const append = this.dedup.begin();
        const payloads: string[] = [];
        const next: Waiting[] = [];
        for (let i = 0; i < round.length; i++) {
          const w = round[i];
          if (outcomes[i] === 'timeout') {
            w.results[w.eventId] = {
              StatusCode: 500,
              Message: `Event ${w.eventId}: an earlier request with this event is still being stored after ${this.retryWaitMs} ms; retry it`,
            };
            continue;
          }
          const claim = this.dedup.claim(w.key, append);
          if (claim === 'write') payloads.push(w.payload);
          else if (claim !== 'skip') next.push({ ...w, on: claim });
        }
        await this.appendSettling(append, payloads);
        round = next;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Updates/creates the endpoint; an invalid endpoint id fails the item, an invalid profile only its update. */
  private endpointFor(appId: string, endpointId: string, input: Json): { result: ItemResult; stored?: StoredEndpoint } {
    try {
      checkEndpointId(endpointId);
    } catch (e) {
      return { result: { StatusCode: 400, Message: (e as Error).message } };
    }
    if (hasEndpointFields(input)) {
      try {
        validateEndpointInput(input, `BatchItem.${endpointId}.Endpoint`, Buffer.byteLength(JSON.stringify(input)));
        return { result: ACCEPTED, stored: this.endpoints.touch(appId, endpointId, input) };
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        return { result: { StatusCode: 400, Message: e.message }, stored: this.endpoints.touch(appId, endpointId, undefined) };
      }
    }
    return { result: ACCEPTED, stored: this.endpoints.touch(appId, endpointId, undefined) };
  }
}

/** The batch's items, within the per-request event quota (the model has checked their shapes). */
function eventBatches(request: EventsRequest): Array<[string, Json]> {
  const items = Object.entries(request.BatchItem);
  let count = 0;
  for (const [, item] of items) count += Object.keys(item.Events).length;
  if (count > MAX_EVENTS_PER_REQUEST) {
    throw badRequest(`PutEvents request has ${count} events; the maximum is ${MAX_EVENTS_PER_REQUEST} per request`);
  }
  return items as unknown as Array<[string, Json]>;
}

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
