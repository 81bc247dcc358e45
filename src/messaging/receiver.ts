// The email/SMS event receiver: a Firehose HTTP endpoint destination (protocol 1.0, the request and
// response AWS Firehose uses) at MESSAGING_EVENTS_PATH. A real AWS Firehose fed by SES event
// publishing or an End User Messaging SMS configuration set delivers here, and so does a delivery
// stream of this server's own Firehose whose HTTP endpoint URL points here. Each record's data is
// one SES or SMS event (or several, newline-separated); each is mapped to Pinpoint's `_email.*` /
// `_SMS.*` record (ses.ts, sms.ts), attributed to a project, and appended to the ingest log through
// EventIngest like a PutEvents event, so it reaches analytics and the project's event stream.
//
// A request is all or nothing: any record that cannot be read (bad base64, not JSON, not an SES or
// SMS event, missing what the mapping needs) refuses the whole request with 400 and writes
// nothing; Firehose retries it and finally keeps it in its S3 backup. Records that are valid but
// belong to no project (no tag, an unknown configuration set, a deleted project) or have no
// Pinpoint record (voice, MMS) are kept in the `messaging-unattributed` log and counted by reason
// in /metrics, never dropped unseen. 200 is answered only once everything is durable; a retry of
// an acknowledged request adds nothing (stable event ids, the ingest dedup window).

import { createHash, timingSafeEqual } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import type { Clock } from '../clock.js';
import type { MessagingEventsConfig } from '../config/config.js';
import type { ApiRequest, ApiResponse } from '../http/request.js';
import type { BodyRefusal } from '../http/server.js';
import type { Log } from '../log/log.js';
import { storageFailureText } from '../log/errors.js';
import type { EventIngest } from '../pinpoint/events.js';
import { isObj, MappingError, type Mapped } from './record.js';
import { isSesEvent, mapSesEvent } from './ses.js';
import { isSmsEvent, mapSmsEvent, UnmappedEvent } from './sms.js';

export const MESSAGING_EVENTS_PATH = '/firehose/messaging-events';
/** Firehose's largest HTTP endpoint buffer is 64 MiB (BufferingHints.SizeInMBs ≤ 64). */
export const MAX_RECEIVER_BODY_BYTES = 64 * 1024 * 1024;
/** A gzip body may not inflate beyond this (a small bomb must not fill memory). */
export const MAX_RECEIVER_DECODED_BYTES = 64 * 1024 * 1024;
/** Firehose's record limit (1,000 KiB) is the most one record's data can hold. */
export const MAX_RECEIVER_RECORD_BYTES = 1000 * 1024;
/** Distinct configuration sets / event types named in /metrics; the rest count under "other". */
export const MAX_REPORTED_LABELS = 100;

export interface ReceiverOptions {
  config?: MessagingEventsConfig;
  ingest: Pick<EventIngest, 'appendRecords'>;
  appExists(appId: string): boolean;
  /** The messaging-unattributed log: valid records no project takes (present whenever `config` is). */
  unattributed?: Pick<Log, 'append'>;
  clock: Clock;
  accountId: string;
  /** Limits tests lower; the named constants above otherwise. */
  limits?: Partial<{ bodyBytes: number; decodedBytes: number; recordBytes: number }>;
}

export interface ReceiverStats {
  requests: number;
  /** Mapped events appended (new, not duplicates). */
  ingested: number;
  /** Mapped events already in the ingest log (Firehose retries). */
  duplicates: number;
  /** Requests refused: wrong or missing access key. */
  refusedKeys: number;
  /** Requests refused as malformed (nothing written). */
  malformed: number;
  /** Valid records kept in the unattributed log, by reason and configuration set or event type. */
  unattributed: Record<string, number>;
}

export class MessagingReceiver {
  private readonly keys: Buffer[];
  private readonly limits: { bodyBytes: number; decodedBytes: number; recordBytes: number };
  private readonly counts: ReceiverStats = { requests: 0, ingested: 0, duplicates: 0, refusedKeys: 0, malformed: 0, unattributed: Object.create(null) };

  constructor(private readonly o: ReceiverOptions) {
    this.keys = (o.config?.accessKeys ?? []).map(digest);
    this.limits = {
      bodyBytes: o.limits?.bodyBytes ?? MAX_RECEIVER_BODY_BYTES,
      decodedBytes: o.limits?.decodedBytes ?? MAX_RECEIVER_DECODED_BYTES,
      recordBytes: o.limits?.recordBytes ?? MAX_RECEIVER_RECORD_BYTES,
    };
  }

  stats(): ReceiverStats {
    return { ...this.counts, unattributed: { ...this.counts.unattributed } };
  }

  /** From the head alone: a refusal, or the longest body accepted (the access key is checked before any body byte is read). */
  admit(req: ApiRequest): { maxBodyBytes: number } | ApiResponse {
    this.counts.requests++;
    if (req.method !== 'POST') return this.answer(req, 405, `${req.method} is not accepted here; Firehose delivers with POST`);
    if (!this.o.config) return this.answer(req, 404, 'The messaging-events receiver is not enabled: configure messagingEvents (PINSTREAM_MESSAGING_EVENTS) with its access keys');
    const key = req.headers['x-amz-firehose-access-key'];
    if (typeof key !== 'string' || key === '') {
      this.counts.refusedKeys++;
      return this.answer(req, 401, 'Missing X-Amz-Firehose-Access-Key: set the delivery stream\'s EndpointConfiguration.AccessKey to a key in messagingEvents.accessKeys');
    }
    const presented = digest(key);
    // Every configured key is compared, so timing does not tell which one nearly matched.
    let ok = false;
    for (const k of this.keys) ok = timingSafeEqual(k, presented) || ok;
    if (!ok) {
      this.counts.refusedKeys++;
      return this.answer(req, 401, 'X-Amz-Firehose-Access-Key is not one of messagingEvents.accessKeys');
    }
    return { maxBodyBytes: this.limits.bodyBytes };
  }

  refuse(req: ApiRequest, r: BodyRefusal): ApiResponse {
    switch (r.reason) {
      case 'too-large':
        return this.answer(req, 413, `Request body exceeds ${r.limit} bytes; lower the delivery stream's BufferingHints.SizeInMBs`);
      case 'busy':
        return this.answer(req, 503, 'The server is receiving too many request bodies at once; Firehose will retry');
      case 'timeout':
        return this.answer(req, 408, `The request body did not arrive within ${r.timeoutMs} ms`);
    }
  }

  async handle(req: ApiRequest): Promise<ApiResponse> {
    let parsed: { requestId: string; mapped: Array<{ m: Mapped; line: string; seq: number }>; unmapped: Array<{ reason: string; label: string; data: string; seq: number }> };
    try {
      parsed = this.parse(req);
    } catch (e) {
      if (!(e instanceof Malformed)) throw e;
      this.counts.malformed++;
      return this.answer(req, e.status, e.message, e.requestId);
    }
    const { requestId, mapped, unmapped } = parsed;
    const arrival = this.o.clock.now();
    const common = commonAttributes(req.headers['x-amz-firehose-common-attributes']);
    const cfg = this.o.config!;
    const items: Array<{ appId: string; endpointId: string; eventId: string; record: string }> = [];
    const kept: Array<{ reason: string; label: string; data: string; seq: number }> = [...unmapped];
    for (const { m, line, seq } of mapped) {
      const tagged = m.keys[cfg.appTag];
      const bySet = m.configurationSet !== undefined ? cfg.configurationSets[m.configurationSet] : undefined;
      const appId = tagged || bySet || common[cfg.appTag];
      if (!appId) {
        kept.push({ reason: 'unknown-configuration-set', label: m.configurationSet ?? '(none)', data: line, seq });
        continue;
      }
      if (!this.o.appExists(appId)) {
        kept.push({ reason: 'unknown-project', label: appId, data: line, seq });
        continue;
      }
      items.push({ appId, endpointId: m.clientId, eventId: m.eventId, record: m.render(appId, arrival) });
    }
    try {
      const written = await this.o.ingest.appendRecords(items);
      if (kept.length > 0) {
        // In the request's order, whichever way each record was found unattributed.
        kept.sort((a, b) => a.seq - b.seq);
        await this.o.unattributed!.append(
          kept.map((k) => `{"reason":${JSON.stringify(k.reason)},"label":${JSON.stringify(k.label)},"requestId":${JSON.stringify(requestId)},"arrival":${arrival},"event":${k.data}}`),
        );
      }
      this.counts.ingested += written;
      this.counts.duplicates += items.length - written;
      for (const k of kept) this.count(`${k.reason}:${k.label}`);
    } catch (e) {
      console.error(`pinstream: messaging events of request ${requestId} could not be stored`, e);
      return this.answer(req, 500, `The events could not be stored (${storageFailureText(e)}); Firehose will retry and events already stored are not stored twice`, requestId);
    }
    return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ requestId, timestamp: this.o.clock.now() }) };
  }

  /** Prometheus text for /metrics. */
  metrics(): string {
    const c = this.counts;
    let out =
      counter('pinstream_messaging_requests_total', 'Requests to the messaging-events receiver.', c.requests) +
      counter('pinstream_messaging_events_ingested_total', 'Mapped email/SMS events appended to the ingest log.', c.ingested) +
      counter('pinstream_messaging_events_duplicate_total', 'Mapped events already stored (Firehose retries).', c.duplicates) +
      counter('pinstream_messaging_refused_keys_total', 'Requests refused for a missing or wrong access key.', c.refusedKeys) +
      counter('pinstream_messaging_malformed_requests_total', 'Requests refused as malformed (nothing written).', c.malformed);
    out += '# HELP pinstream_messaging_events_unattributed_total Valid records kept in the messaging-unattributed log, by reason.\n';
    out += '# TYPE pinstream_messaging_events_unattributed_total counter\n';
    for (const [k, n] of Object.entries(c.unattributed)) {
      const i = k.indexOf(':');
      out += `pinstream_messaging_events_unattributed_total{reason="${k.slice(0, i)}",label=${JSON.stringify(k.slice(i + 1))}} ${n}\n`;
    }
    return out;
  }

  private count(key: string): void {
    const u = this.counts.unattributed;
    if (!(key in u) && Object.keys(u).length >= MAX_REPORTED_LABELS) key = `${key.slice(0, key.indexOf(':'))}:other`;
    u[key] = (u[key] ?? 0) + 1;
  }

  /** The whole request decoded and mapped, or Malformed; nothing is written before this succeeds. */
  private parse(req: ApiRequest): { requestId: string; mapped: Array<{ m: Mapped; line: string; seq: number }>; unmapped: Array<{ reason: string; label: string; data: string; seq: number }> } {
    const headerId = typeof req.headers['x-amz-firehose-request-id'] === 'string' ? req.headers['x-amz-firehose-request-id'] : undefined;
    let body = req.body;
    const encoding = String(req.headers['content-encoding'] ?? '').toLowerCase();
    if (encoding === 'gzip') {
      try {
        body = gunzipSync(body, { maxOutputLength: this.limits.decodedBytes });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new Malformed(413, `The gzip body inflates beyond ${this.limits.decodedBytes} bytes`, headerId);
        throw new Malformed(400, `Content-Encoding is gzip but the body is not gzip data: ${(e as Error).message}`, headerId);
      }
    } else if (encoding !== '' && encoding !== 'identity') {
      throw new Malformed(400, `Content-Encoding ${encoding} is not supported (Firehose sends gzip or none)`, headerId);
    }
    let doc: unknown;
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch (e) {
      throw new Malformed(400, `The body is not JSON: ${(e as Error).message}`, headerId);
    }
    if (!isObj(doc)) throw new Malformed(400, 'The body must be a JSON object {requestId, timestamp, records}', headerId);
    const requestId = typeof doc.requestId === 'string' && doc.requestId !== '' ? doc.requestId : undefined;
    if (!requestId) throw new Malformed(400, 'requestId is required', headerId);
    if (headerId !== undefined && headerId !== requestId) throw new Malformed(400, `requestId ${requestId} differs from X-Amz-Firehose-Request-Id ${headerId}`, headerId);
    if (!Array.isArray(doc.records)) throw new Malformed(400, 'records must be a list of {data}', requestId);
    const mapped: Array<{ m: Mapped; line: string; seq: number }> = [];
    const unmapped: Array<{ reason: string; label: string; data: string; seq: number }> = [];
    let seq = 0;
    doc.records.forEach((r, i) => {
      const where = `records[${i}]`;
      if (!isObj(r) || typeof r.data !== 'string') throw new Malformed(400, `${where}.data must be a base64 string`, requestId);
      if (r.data.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(r.data)) throw new Malformed(400, `${where}.data is not base64`, requestId);
      if ((r.data.length / 4) * 3 > this.limits.recordBytes + 2) throw new Malformed(400, `${where}.data is longer than ${this.limits.recordBytes} bytes`, requestId);
      const text = Buffer.from(r.data, 'base64').toString('utf8');
      // SES ends each event with a newline; a record may hold several events.
      for (const line of text.split('\n')) {
        if (line.trim() === '') continue;
        let ev: unknown;
        try {
          ev = JSON.parse(line);
        } catch (e) {
          throw new Malformed(400, `${where}: not a JSON event: ${(e as Error).message}`, requestId);
        }
        if (!isObj(ev)) throw new Malformed(400, `${where}: an event must be a JSON object`, requestId);
        try {
          if (isSesEvent(ev)) mapped.push({ m: mapSesEvent(ev, this.o.accountId), line, seq: seq++ });
          else if (isSmsEvent(ev)) mapped.push({ m: mapSmsEvent(ev, this.o.accountId), line, seq: seq++ });
          else throw new MappingError('neither an SES event (eventType and mail) nor an SMS/voice event (eventType TEXT_/VOICE_… and messageId)');
        } catch (e) {
          if (e instanceof UnmappedEvent) unmapped.push({ reason: 'no-pinpoint-record', label: String(ev.eventType), data: line, seq: seq++ });
          else if (e instanceof MappingError) throw new Malformed(400, `${where}: ${e.message}`, requestId);
          else throw e;
        }
      }
    });
    return { requestId, mapped, unmapped };
  }

  /** Firehose's response shape: `{requestId, timestamp}` plus `errorMessage` on failure. */
  private answer(req: ApiRequest, status: number, errorMessage: string, requestId?: string): ApiResponse {
    const id = requestId ?? (typeof req.headers['x-amz-firehose-request-id'] === 'string' ? req.headers['x-amz-firehose-request-id'] : '');
    return { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ requestId: id, timestamp: this.o.clock.now(), errorMessage }) };
  }
}

class Malformed extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly requestId: string | undefined,
  ) {
    super(message);
  }
}

/** `{"commonAttributes":{"k":"v"}}` from the header; anything else is no attributes. */
function commonAttributes(v: unknown): Record<string, string> {
  if (typeof v !== 'string') return Object.create(null);
  try {
    const doc = JSON.parse(v) as unknown;
    const attrs = isObj(doc) && isObj(doc.commonAttributes) ? doc.commonAttributes : {};
    const out: Record<string, string> = Object.create(null);
    for (const [k, x] of Object.entries(attrs)) if (typeof x === 'string') out[k] = x;
    return out;
  } catch {
    return Object.create(null);
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function counter(name: string, help: string, v: number): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} counter\n${name} ${v}\n`;
}
