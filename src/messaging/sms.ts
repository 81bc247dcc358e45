// Maps an AWS End User Messaging SMS event (the JSON its configuration-set event destinations
// write to Firehose: `eventType` TEXT_*, `messageStatus`, prices in USD) to the `_SMS.*`
// event-stream record Pinpoint streamed (reference/pinpoint.md §3.6, Developer Guide "SMS
// events"). Voice and MMS events have no Pinpoint record (Pinpoint did not stream transactional
// voice): they are reported as unmapped. docs/messaging-events.md lists the mapping field by field.

import { EVENT_VERSION } from '../pinpoint/record.js';
import { applicationJson, copiedAttributes, ENDPOINT_ID_KEY, eventIdOf, isObj, MappingError, str, type Mapped } from './record.js';

type Obj = Record<string, unknown>;

/** USD → millicents (thousandths of a US cent): 1 USD = 100 cents = 100,000 millicents. */
export const MILLICENTS_PER_USD = 100_000;

/** Intermediate states: Pinpoint's "still being delivered" (no price yet). */
const BUFFERED = new Set(['TEXT_QUEUED', 'TEXT_PENDING', 'TEXT_BUFFERED']);
const SUCCESS = new Set(['TEXT_DELIVERED', 'TEXT_SUCCESSFUL']);
const FAILURE = new Set([
  'TEXT_BLOCKED',
  'TEXT_TTL_EXPIRED',
  'TEXT_CARRIER_UNREACHABLE',
  'TEXT_INVALID',
  'TEXT_INVALID_MESSAGE',
  'TEXT_CARRIER_BLOCKED',
  'TEXT_UNREACHABLE',
  'TEXT_SPAM',
  'TEXT_UNKNOWN',
  'TEXT_PROTECT_BLOCKED',
]);

export function isSmsEvent(v: Obj): boolean {
  return typeof v.eventType === 'string' && /^(TEXT|VOICE|MEDIA|RCS)_/.test(v.eventType) && typeof v.messageId === 'string';
}

/** A voice/MMS/RCS event: valid, but Pinpoint had no record for it. */
export class UnmappedEvent extends Error {}

export function mapSmsEvent(ev: Obj, accountId: string): Mapped {
  const type = str(ev.eventType)!;
  if (!type.startsWith('TEXT_')) throw new UnmappedEvent(`${type} events have no Pinpoint event-stream record`);
  const messageId = str(ev.messageId);
  if (!messageId) throw new MappingError('SMS event has no messageId');
  const at = ev.eventTimestamp;
  if (typeof at !== 'number' || !Number.isFinite(at)) throw new MappingError('SMS event has no numeric eventTimestamp');
  const status = str(ev.messageStatus) ?? '';
  let eventType: string;
  // Opt-outs arrive as a blocked send whose status says so; Pinpoint had a type of its own.
  if (status === 'OPTED_OUT') eventType = '_SMS.OPTOUT';
  else if (SUCCESS.has(type)) eventType = '_SMS.SUCCESS';
  else if (BUFFERED.has(type)) eventType = '_SMS.BUFFERED';
  else if (FAILURE.has(type)) eventType = '_SMS.FAILURE';
  else throw new MappingError(`SMS eventType ${type} is not a known TEXT_* event`);

  const context: Record<string, string> = Object.create(null);
  if (isObj(ev.context)) for (const [k, v] of Object.entries(ev.context)) if (typeof v === 'string') context[k] = v;
  const clientId = context[ENDPOINT_ID_KEY] || accountId;
  const attributes: Record<string, string> = {};
  const set = (k: string, v: unknown) => {
    if (typeof v === 'string' && v !== '') attributes[k] = v;
    else if (typeof v === 'number' && Number.isFinite(v)) attributes[k] = String(v);
  };
  set('origination_phone_number', ev.originationPhoneNumber);
  set('destination_phone_number', ev.destinationPhoneNumber);
  set('record_status', status);
  set('iso_country_code', ev.isoCountryCode);
  set('treatment_id', context.treatment_id ?? '0');
  set('number_of_message_parts', ev.totalMessageParts);
  set('message_id', messageId);
  set('message_type', messageType(ev.messageType));
  Object.assign(attributes, copiedAttributes(context));
  const metrics: Record<string, number> = {};
  // Pinpoint left the price out of _SMS.BUFFERED: nothing is charged until the carrier answers.
  if (eventType !== '_SMS.BUFFERED' && (typeof ev.totalMessagePrice === 'number' || typeof ev.totalCarrierFee === 'number')) {
    const usd = (num(ev.totalMessagePrice) ?? 0) + (num(ev.totalCarrierFee) ?? 0);
    metrics.price_in_millicents_usd = Math.round(usd * MILLICENTS_PER_USD * 1000) / 1000;
  }
  const eventId = eventIdOf('sms', messageId, type, String(at), status);
  return {
    channel: 'sms',
    eventType,
    eventId,
    clientId,
    configurationSet: str(ev.configurationSetName) ?? str(ev.configurationSet),
    keys: context,
    render: (appId, arrivalMs) =>
      `{"event_type":${JSON.stringify(eventType)},"event_timestamp":${at},"arrival_timestamp":${arrivalMs},` +
      `"event_version":"${EVENT_VERSION}","application":${applicationJson(appId)},"client":${JSON.stringify({ client_id: clientId })},` +
      `"device":{"platform":{}},"session":{},"attributes":${JSON.stringify(attributes)},"metrics":${JSON.stringify(metrics)},` +
      `"awsAccountId":${JSON.stringify(accountId)}}`,
  };
}

/** `PROMOTIONAL` → `Promotional`: Pinpoint's spelling. */
function messageType(v: unknown): string | undefined {
  if (typeof v !== 'string' || v === '') return undefined;
  return v[0].toUpperCase() + v.slice(1).toLowerCase();
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}
