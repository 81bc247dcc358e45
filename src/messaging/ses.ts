// Maps an Amazon SES event-publishing record (the JSON SES writes to Firehose: `eventType`,
// `mail`, and one per-type object) to the `_email.*` event-stream record Pinpoint streamed for the
// same email (reference/pinpoint.md §3.5, Developer Guide "Email events"). docs/messaging-events.md
// lists the mapping field by field, and which names are ours where Pinpoint had none.

import { EVENT_VERSION } from '../pinpoint/record.js';
import { applicationJson, copiedAttributes, ENDPOINT_ID_KEY, eventIdOf, isObj, MappingError, str, uuidOf, type Mapped } from './record.js';

type Obj = Record<string, unknown>;

/** SES eventType → Pinpoint event_type and the `feedback` attribute (null: computed per record). */
const TYPES: Record<string, { facet: string; feedback: string | null }> = {
  Send: { facet: 'send', feedback: 'received' },
  Delivery: { facet: 'delivery', feedback: 'delivered' },
  Open: { facet: 'open', feedback: 'opened' },
  Click: { facet: 'click', feedback: null },
  Bounce: { facet: 'bounce', feedback: null },
  Complaint: { facet: 'complaint', feedback: 'complaint' },
  Reject: { facet: 'reject', feedback: 'rejected' },
  'Rendering Failure': { facet: 'rendering_failure', feedback: 'rendering_failure' },
  DeliveryDelay: { facet: 'delivery_delay', feedback: 'delivery_delay' },
  Subscription: { facet: 'subscription', feedback: null },
};

/** The SES object holding each type's details (`failure` for Rendering Failure). */
const DETAIL_MEMBER: Record<string, string> = {
  Send: 'send',
  Delivery: 'delivery',
  Open: 'open',
  Click: 'click',
  Bounce: 'bounce',
  Complaint: 'complaint',
  Reject: 'reject',
  'Rendering Failure': 'failure',
  DeliveryDelay: 'deliveryDelay',
  Subscription: 'subscription',
};

export function isSesEvent(v: Obj): boolean {
  return typeof (v.eventType ?? v.notificationType) === 'string' && isObj(v.mail);
}

export function mapSesEvent(ev: Obj, accountId: string): Mapped {
  const type = str(ev.eventType) ?? str(ev.notificationType);
  // An own key only: eventType "constructor" names no SES event.
  if (type === undefined || !Object.hasOwn(TYPES, type)) throw new MappingError(`SES eventType ${JSON.stringify(type ?? null)} is not one of ${Object.keys(TYPES).join(', ')}`);
  const mail = ev.mail;
  if (!isObj(mail)) throw new MappingError('SES record has no mail object');
  const messageId = str(mail.messageId);
  if (!messageId) throw new MappingError('SES record has no mail.messageId');
  const sentMs = Date.parse(str(mail.timestamp) ?? '');
  if (Number.isNaN(sentMs)) throw new MappingError(`SES record's mail.timestamp ${JSON.stringify(mail.timestamp ?? null)} is not an ISO 8601 date-time`);
  const detailRaw = ev[DETAIL_MEMBER[type]];
  const detail: Obj = isObj(detailRaw) ? detailRaw : {};
  if (type !== 'Send' && !isObj(detailRaw)) throw new MappingError(`SES ${type} record has no ${DETAIL_MEMBER[type]} object`);

  const { eventType, feedback } = typeAndFeedback(type, detail);
  const tags = firstValues(mail.tags);
  const clientId = tags[ENDPOINT_ID_KEY] || uuidOf('ses', messageId);
  const attributes = { feedback, ...copiedAttributes(tags) };
  const facets = { email_channel: { mail_event: { mail: mailFacet(mail, messageId, sentMs), [TYPES[type].facet]: detailFacet(type, detail) } } };
  const awsAccountId = str(mail.sendingAccountId) || accountId;
  // The event's own instant (when the open, bounce, ... happened) tells retries of one record
  // apart from a second event of the same kind: two opens of one message are two events.
  const at = str(detail.timestamp) ?? str(mail.timestamp)!;
  const eventId = eventIdOf('ses', messageId, type, at, type === 'Click' ? (str(detail.link) ?? '') : '');
  return {
    channel: 'email',
    eventType,
    eventId,
    clientId,
    configurationSet: tags['ses:configuration-set'] || undefined,
    keys: tags,
    render: (appId, arrivalMs) =>
      `{"event_type":${JSON.stringify(eventType)},"event_timestamp":${sentMs},"arrival_timestamp":${arrivalMs},` +
      `"event_version":"${EVENT_VERSION}","application":${applicationJson(appId)},"client":${JSON.stringify({ client_id: clientId })},` +
      `"device":{"platform":{}},"session":{},"attributes":${JSON.stringify(attributes)},` +
      `"client_context":${JSON.stringify({ custom: { legacy_identifier: appId } })},` +
      `"awsAccountId":${JSON.stringify(awsAccountId)},"facets":${JSON.stringify(facets)}}`,
  };
}

function typeAndFeedback(type: string, d: Obj): { eventType: string; feedback: string } {
  switch (type) {
    case 'Bounce': {
      // Only Permanent is a hard bounce; Transient and Undetermined may succeed on a later send.
      const hard = d.bounceType === 'Permanent';
      return { eventType: hard ? '_email.hardbounce' : '_email.softbounce', feedback: hard ? 'hardbounce' : 'softbounce' };
    }
    case 'Click':
      return { eventType: '_email.click', feedback: str(d.link) ?? '' };
    case 'Subscription': {
      const prefs = isObj(d.newTopicPreferences) ? d.newTopicPreferences : {};
      const topics = Array.isArray(prefs.topicSubscriptionStatus) ? prefs.topicSubscriptionStatus : [];
      const out = prefs.unsubscribeAll === true || topics.some((t) => isObj(t) && t.subscriptionStatus === 'OptOut');
      return out ? { eventType: '_email.unsubscribe', feedback: 'unsubscribed' } : { eventType: '_email.subscription', feedback: 'subscribed' };
    }
    default: {
      const facet = TYPES[type].facet;
      const name = { send: 'send', delivery: 'delivered', open: 'open', complaint: 'complaint', reject: 'rejected' }[facet] ?? facet;
      return { eventType: `_email.${name}`, feedback: TYPES[type].feedback! };
    }
  }
}

/** Pinpoint's `mail`: SES's mail object without its tags and source ARN, in snake_case. */
function mailFacet(mail: Obj, messageId: string, sentMs: number): Obj {
  const out: Obj = {
    message_id: messageId,
    message_send_timestamp: sentMs,
    from_address: addressOf(str(mail.source) ?? ''),
    destination: Array.isArray(mail.destination) ? mail.destination : [],
    headers_truncated: mail.headersTruncated === true || mail.headersTruncated === 'true',
  };
  if (Array.isArray(mail.headers)) out.headers = mail.headers.filter(isObj).map((h) => ({ name: h.name, value: h.value }));
  if (isObj(mail.commonHeaders)) {
    const c = mail.commonHeaders;
    const common: Obj = {};
    // Pinpoint's from is the header's text; SES lists each address.
    if (c.from !== undefined) common.from = Array.isArray(c.from) ? c.from.join(', ') : c.from;
    if (c.to !== undefined) common.to = c.to;
    if (c.cc !== undefined) common.cc = c.cc;
    if (c.bcc !== undefined) common.bcc = c.bcc;
    if (c.replyTo !== undefined) common.reply_to = c.replyTo;
    if (c.date !== undefined) common.date = c.date;
    if (c.subject !== undefined) common.subject = c.subject;
    out.common_headers = common;
  }
  return out;
}

/** `Sender Name <sender@example.com>` → `sender@example.com`: Pinpoint's from_address is the address. */
function addressOf(source: string): string {
  const m = /<([^<>]*)>\s*$/.exec(source);
  return m ? m[1] : source;
}

/** The per-type object: the fields Pinpoint's records showed (snake_case of SES's), others snake_cased. */
function detailFacet(type: string, d: Obj): Obj {
  const pick = (pairs: Array<[string, string]>, from: Obj = d): Obj => {
    const out: Obj = {};
    for (const [to, key] of pairs) if (from[key] !== undefined) out[to] = from[key];
    return out;
  };
  switch (type) {
    case 'Send':
      return {};
    case 'Delivery':
      return pick([['smtp_response', 'smtpResponse'], ['reporting_mta', 'reportingMTA'], ['recipients', 'recipients'], ['processing_time_millis', 'processingTimeMillis']]);
    case 'Open':
      return pick([['ip_address', 'ipAddress'], ['user_agent', 'userAgent']]);
    case 'Click':
      return pick([['ip_address', 'ipAddress'], ['user_agent', 'userAgent'], ['link', 'link'], ['link_tags', 'linkTags']]);
    case 'Bounce': {
      const out = pick([['bounce_type', 'bounceType'], ['bounce_sub_type', 'bounceSubType']]);
      out.bounced_recipients = (Array.isArray(d.bouncedRecipients) ? d.bouncedRecipients : []).filter(isObj).map((r) =>
        pick([['email_address', 'emailAddress'], ['action', 'action'], ['status', 'status'], ['diagnostic_code', 'diagnosticCode']], r),
      );
      return { ...out, ...pick([['feedback_id', 'feedbackId'], ['reporting_mta', 'reportingMTA']]) };
    }
    case 'Complaint': {
      const recipients = (Array.isArray(d.complainedRecipients) ? d.complainedRecipients : []).filter(isObj).map((r) => pick([['email_address', 'emailAddress']], r));
      return {
        complained_recipients: recipients,
        ...pick([['feedback_id', 'feedbackId'], ['user_agent', 'userAgent'], ['complaint_feedback_type', 'complaintFeedbackType'], ['complaint_sub_type', 'complaintSubType'], ['arrival_date', 'arrivalDate']]),
      };
    }
    case 'Reject':
      return pick([['reason', 'reason']]);
    default:
      return snake(d) as Obj;
  }
}

/** camelCase keys → snake_case, deeply (types Pinpoint never streamed: rendering failure, delay, subscription). */
function snake(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(snake);
  if (!isObj(v)) return v;
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) out[k.replace(/MTA$/, 'Mta').replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = snake(x);
  return out;
}

/** SES tags are `name → [values]`; attribution and copied attributes use the first value. */
function firstValues(tags: unknown): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  if (!isObj(tags)) return out;
  for (const [k, v] of Object.entries(tags)) {
    const first = Array.isArray(v) ? v[0] : v;
    if (typeof first === 'string') out[k] = first;
  }
  return out;
}
