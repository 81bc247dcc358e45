// PutEvents: validates each event against Pinpoint's limits, turns accepted events into
// event-stream records, appends them to the ingest log and answers only once they are durable.
// Results are per item ({"StatusCode":202,"Message":"Accepted"} or 400 with the reason); only a
// malformed request as a whole is an error response. The work is split in two: ingest-prepare.ts
// (parse, validate, dedup keys, the event's record parts) runs on a pool thread when configured
// (src/pinpoint/parallel/); this module applies the result on the thread that owns the endpoint
// writes, the dedup window and the log, in arrival order.

import type { Clock } from '../clock.js';
import type { Log } from '../log/log.js';
import { storageFailureText } from '../log/errors.js';
import { ApiError, badRequest, internalError, payloadTooLarge } from '../http/errors.js';
import type { Json } from '../http/shape.js';
import type { Apps } from './apps.js';
import type { EventsRequest } from '../models/generated/pinpoint-inputs.js';
import type { Endpoints, StoredEndpoint } from './endpoints.js';
import { Dedup, type PendingAppend } from './dedup.js';
import { encodeIngestEntry } from './ingest-record.js';
import { applicationJson, assembleRecord, endpointParts, type CognitoCaller } from './record.js';
import { prepareBody, prepareRequest, type PrepareJob, type PreparedEvents, type PreparedOk } from './ingest-prepare.js';
import { PreparePool } from './parallel/pool.js';
import { MAX_EVENTS_PER_REQUEST, MAX_PUT_EVENTS_REQUEST_BYTES } from './limits.js';

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
  /**
   * Threads that prepare PutEvents bodies (parse, validate, build record parts) beside the thread
   * that answers requests (Config.ingestThreads); 0 or absent = inline on this thread.
   */
  threads?: number;
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
  private readonly pool: PreparePool | undefined;
  /** Settles once the last request handed to the pool has been applied (reached the log). */
  private applied: Promise<void> = Promise.resolve();

  constructor(
    private apps: Apps,
    private endpoints: Endpoints,
    /** Only appends: PutEvents writes the ingest log and never reads it. */
    private log: Pick<Log, 'append' | 'usesIds'>,
    private dedup: Dedup,
    private clock: Clock,
    private accountId: string,
    options: EventIngestOptions = {},
  ) {
    this.retryWaitMs = options.retryWaitMs ?? MAX_RETRY_WAIT_MS;
    this.pool = options.threads ? new PreparePool(options.threads) : undefined;
  }

  /**
   * `request`: the validated EventsRequest (its events unchecked: each is judged here on its own);
   * `body`: its raw bytes; `cognito`: the caller's Cognito identity, when its credentials came from
   * one (recorded in every event's record). Prepares inline, on this thread.
   */
  async putEvents(appId: string, body: Buffer, request: EventsRequest, cognito?: CognitoCaller): Promise<{ Results: Record<string, Json> }> {
    this.apps.require(appId);
    if (body.length > MAX_PUT_EVENTS_REQUEST_BYTES) {
      throw payloadTooLarge(
        `PutEvents request is ${body.length} bytes; the maximum is ${MAX_PUT_EVENTS_REQUEST_BYTES} bytes (4 MB)`,
      );
    }
    const prepared = prepareRequest(appId, body, request, this.clock.now());
    if (prepared.tooMany !== undefined) throw tooManyEvents(prepared.tooMany);
    return this.apply(appId, prepared, cognito);
  }

  /**
   * PutEvents from the request's raw body, as the HTTP route calls it: parsing, model validation,
   * event validation and the event-dependent record parts run on a pool thread when the ingest
   * has one (threads > 0), the rest here. The checks answer in the order the inline path has:
   * malformed body, then `authorize` (throws when the caller may not), then the app, then the
   * event count. Requests are applied in the order they arrived here whichever thread finishes
   * first, so each endpoint's events reach the log in the order their requests did.
   */
  putEventsBody(
    appId: string,
    req: { body: Buffer; labels: Record<string, string> },
    authorize: () => void,
    cognito: () => CognitoCaller | undefined,
  ): Promise<{ Results: Record<string, Json> }> {
    const job: PrepareJob = { appId, body: req.body, labels: req.labels, arrivalMs: this.clock.now() };
    const check = (prepared: PreparedEvents) => {
      if (!prepared.ok) throw new ApiError(prepared.code, prepared.status, prepared.message);
      authorize();
      this.apps.require(appId);
      if (prepared.tooMany !== undefined) throw tooManyEvents(prepared.tooMany);
      return this.apply(appId, prepared, cognito());
    };
    if (!this.pool) {
      try {
        return check(prepareBody(job));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const prepared = this.pool.run(job);
    // Applied in arrival order: each waits for the one before it to have reached the log.
    const turn = this.applied.then(() => prepared).then((p) => ({ done: check(p) }));
    this.applied = turn.then(noop, noop);
    return turn.then((t) => t.done);
  }

  /** Stops the pool threads (requests still preparing fail with a retryable error). */
  async close(): Promise<void> {
    await this.pool?.close();
  }

  /**
   * Applies prepared requests in arrival order: their endpoints are written (or read), then dedup
   * claims, record assembly and the append. On the embedded store the endpoint writes are
   * synchronous, so everything up to the append's call runs without a pause, which is what keeps
   * requests' appends in the order they are applied. On a shared store (PostgreSQL) the endpoint
   * transaction is awaited: requests' transactions run side by side, and each request's appends
   * wait for the requests before it to have made theirs (`ordered`), so the log keeps arrival order.
   */
  private apply(appId: string, prepared: PreparedOk, cognito?: CognitoCaller): Promise<{ Results: Record<string, Json> }> {
    const touches: Array<{ id: string; input: Json | undefined }> = [];
    for (const item of prepared.items) if (item.idError === undefined) touches.push({ id: item.endpointId, input: item.endpoint });
    let touched: StoredEndpoint[] | Promise<StoredEndpoint[]>;
    try {
      touched = this.endpoints.touchAll(appId, touches);
    } catch (e) {
      return Promise.reject(e);
    }
    if (Array.isArray(touched) && this.orderedPending === 0) return this.applyTouched(appId, prepared, touched, cognito);
    // Waiting for the store, or behind a request that is: applied after the requests before it.
    return this.inOrder(Promise.resolve(touched), (t) => this.applyTouched(appId, prepared, t, cognito));
  }

  /** Requests waiting in `ordered` (0: the next one may apply at once). */
  private orderedPending = 0;
  /** Settles once the last request queued in order has made its append call. */
  private ordered: Promise<void> = Promise.resolve();

  /** Runs `then` with the endpoints once they are written and every request before has applied. */
  private inOrder(touched: Promise<StoredEndpoint[]>, then: (t: StoredEndpoint[]) => Promise<{ Results: Record<string, Json> }>): Promise<{ Results: Record<string, Json> }> {
    this.orderedPending++;
    // Wrapped, so that `ordered` settles when the append is called, not when it is durable.
    const turn = Promise.all([touched, this.ordered]).then(([t]) => ({ done: then(t) }));
    this.ordered = turn.then(noop, noop).finally(() => {
      this.orderedPending--;
    });
    return turn.then((t) => t.done);
  }

  /**
   * Dedup claims, record assembly and the append, for a request whose endpoints are written
   * (`touched`: one per item with a usable id, in item order). Runs without a pause up to the
   * append's call.
   */
  private async applyTouched(appId: string, prepared: PreparedOk, touched: StoredEndpoint[], cognito?: CognitoCaller): Promise<{ Results: Record<string, Json> }> {
    const appIdJson = JSON.stringify(appId);
    // Keyed by client-sent ids: null prototypes, so an id "__proto__" is an entry like any other.
    const results: Record<string, Json> = Object.create(null);
    const payloads: string[] = [];
    // The dedup keys double as the log's message ids: a log shared by several nodes (JetStream)
    // stores a retry that reached another node only once.
    const ids: string[] = [];
    const waiting: Waiting[] = [];
    const append = this.dedup.begin();

    try {
      let t = 0;
      for (const item of prepared.items) {
        const endpointId = item.endpointId;
        const eventResults: Record<string, ItemResult> = Object.create(null);
        if (item.idError !== undefined) {
          results[endpointId] = { EndpointItemResponse: { StatusCode: 400, Message: item.idError }, EventsItemResponse: eventResults };
          for (const [eventId, message] of item.events) eventResults[eventId] = { StatusCode: 400, Message: message };
          continue;
        }
        const endpointResult = item.endpointError === undefined ? ACCEPTED : { StatusCode: 400, Message: item.endpointError };
        const stored = touched[t++];
        results[endpointId] = { EndpointItemResponse: endpointResult, EventsItemResponse: eventResults };
        const parts = endpointParts(appId, stored.endpoint.Id, stored, this.accountId, cognito);
        const entryStart = `[${appIdJson},${JSON.stringify(stored.endpoint.Id)},`;
        for (const ev of item.events) {
          const eventId = ev[0];
          if (ev.length === 2) {
            eventResults[eventId] = { StatusCode: 400, Message: ev[1] };
            continue;
          }
          eventResults[eventId] = ACCEPTED;
          const key = ev[1];
          const claim = this.dedup.claim(key, append);
          if (claim === 'skip') continue;
          const payload = entryStart + assembleRecord(parts, ev[2], applicationJson(parts, prepared.apps[ev[3]]), ev[4]);
          if (claim === 'write') {
            payloads.push(payload);
            ids.push(key);
          } else waiting.push({ key, eventId, payload, results: eventResults, on: claim });
        }
      }
    } catch (e) {
      this.dedup.settle(append, false);
      throw e;
    }

    // Our own events and the retried ones whose originals are in flight, side by side.
    const [own, retried] = await Promise.allSettled([this.appendSettling(append, payloads, ids), this.afterOriginals(waiting)]);
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
    const ids: string[] = [];
    const waiting: Waiting[] = [];
    const results: Record<string, ItemResult> = Object.create(null);
    for (const it of items) {
      const key = Dedup.key(it.appId, it.endpointId, it.eventId);
      const claim = this.dedup.claim(key, append);
      if (claim === 'skip') continue;
      const payload = encodeIngestEntry(it.appId, it.endpointId, it.eventId, it.record);
      if (claim === 'write') {
        payloads.push(payload);
        ids.push(key);
      } else waiting.push({ key, eventId: it.eventId, payload, results, on: claim });
    }
    const [own, retried] = await Promise.allSettled([this.appendSettling(append, payloads, ids), this.afterOriginals(waiting)]);
    if (own.status === 'rejected') throw own.reason;
    if (retried.status === 'rejected') throw retried.reason;
    const stuck = Object.values(results).find((r) => r.StatusCode === 500);
    if (stuck) throw new Error(stuck.Message);
    return payloads.length;
  }

  /**
   * Appends and settles the claims of `append`: durable keys join the window, failed ones are freed.
   * `keys` (the events' dedup keys) go to a log that takes message ids, hex-encoded (they are binary).
   */
  private async appendSettling(append: PendingAppend, payloads: string[], keys: string[]): Promise<void> {
    if (payloads.length === 0) {
      this.dedup.settle(append, true);
      return;
    }
    try {
      await this.log.append(payloads, this.log.usesIds ? { ids: keys.map(messageId) } : undefined);
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
        const ids: string[] = [];
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
          if (claim === 'write') {
            payloads.push(w.payload);
            ids.push(w.key);
          } else if (claim !== 'skip') next.push({ ...w, on: claim });
        }
        await this.appendSettling(append, payloads, ids);
        round = next;
      }
    } finally {
      clearTimeout(timer);
    }
  }
}

function tooManyEvents(count: number): ApiError {
  return badRequest(`PutEvents request has ${count} events; the maximum is ${MAX_EVENTS_PER_REQUEST} per request`);
}

const noop = () => {};

export { validateEvent } from './ingest-prepare.js';

/** A dedup key as a log message id: the keys are binary strings, ids travel in headers (hex). */
function messageId(key: string): string {
  let out = '';
  for (let i = 0; i < key.length; i++) out += key.charCodeAt(i).toString(16).padStart(4, '0');
  return out;
}
