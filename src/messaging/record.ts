// What the SES and SMS mappers share: the mapped-record type, the attribution keys they read
// (message tags, SMS context keys), the stable event id that makes a Firehose retry of the same
// record a duplicate, and the envelope fields Pinpoint gave server-generated events
// (reference/pinpoint.md §3.1: `application.sdk`, `device.platform` and `session` empty).

import { createHash } from 'node:crypto';

/** Attributes copied from SES message tags or SMS context keys when present, as Pinpoint set them for campaign and journey sends. */
export const COPIED_ATTRIBUTES = [
  'campaign_id',
  'campaign_activity_id',
  'treatment_id',
  'journey_id',
  'journey_activity_id',
  'journey_run_id',
] as const;

/** Message tag or SMS context key naming the endpoint (`client.client_id`) of a campaign/journey send. */
export const ENDPOINT_ID_KEY = 'pinstream-endpoint-id';

/** A source record mapped to a Pinpoint event-stream record, not yet attributed to a project. */
export interface Mapped {
  channel: 'email' | 'sms';
  /** Pinpoint's event_type (`_email.open`, `_SMS.SUCCESS`, ...). */
  eventType: string;
  /** Stable across retries of the same source record (see eventIdOf). */
  eventId: string;
  /** `client.client_id`, also the ingest entry's endpoint id (the dedup scope). */
  clientId: string;
  /** SES configuration set / SMS configuration set, when the record names one. */
  configurationSet?: string;
  /** Message tags (SES, first value each) or context (SMS): attribution and copied attributes. */
  keys: Record<string, string>;
  /**
   * The record without `application` (known only after attribution): everything else in
   * Pinpoint's field order, built by `render`.
   */
  render(appId: string, arrivalMs: number): string;
}

/** A record that is not an event of these channels or is missing what the mapping needs. */
export class MappingError extends Error {}

/**
 * 32 hex digits from the parts that identify one event of one message: SES (or the SMS service)
 * sends a record again only as a retry, with the same parts, so the id repeats and the retry is a
 * duplicate in the ingest log's dedup window.
 */
export function eventIdOf(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 32);
}

/** A name-based id in UUID form (version nibble 5), for client ids Pinpoint showed as UUIDs. */
export function uuidOf(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  const x = h.digest('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-5${x.slice(13, 16)}-${((parseInt(x[16], 16) & 0x3) | 0x8).toString(16)}${x.slice(17, 20)}-${x.slice(20, 32)}`;
}

/** Attributes copied from tags/context (campaign and journey ids), in COPIED_ATTRIBUTES order. */
export function copiedAttributes(keys: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of COPIED_ATTRIBUTES) if (typeof keys[k] === 'string' && keys[k] !== '') out[k] = keys[k];
  return out;
}

/** `{"app_id":…,"sdk":{}}`: what Pinpoint wrote for messages sent by API or console. */
export function applicationJson(appId: string): string {
  return `{"app_id":${JSON.stringify(appId)},"sdk":{}}`;
}

export function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
