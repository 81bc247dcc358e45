// One known set of campaign, transactional email, transactional SMS and journey events (the
// server-generated record families of reference/pinpoint.md §3.3–3.6), with the KPI answers worked
// out by hand from the Developer Guide's definitions. Used by the KPI tests at the SQL level (rows
// inserted into DuckDB) and end to end (sent with PutEvents).

export interface FixtureEvent {
  type: string;
  endpoint: string;
  /** ISO 8601 UTC. */
  at: string;
  attributes?: Record<string, string>;
  metrics?: Record<string, number>;
}

export const D0 = '2026-03-01'; // outside the queried range
export const D1 = '2026-03-10';
export const D2 = '2026-03-11';
/** "Now" for the tests: 10 days after D1. */
export const NOW = Date.parse('2026-03-20T12:00:00Z');

const at = (day: string, hh = '10') => `${day}T${hh}:00:00Z`;
const C1 = 'c1campaign';
const C2 = 'c2campaign';
const C3 = 'c3campaign';
const J1 = 'j1journey';

const campaignSend = (endpoint: string, day: string, campaign: string, activity: string, deliveryType: string, status = 'SUCCESS'): FixtureEvent => ({
  type: '_campaign.send',
  endpoint,
  at: at(day),
  attributes: { campaign_id: campaign, campaign_activity_id: activity, treatment_id: '0', delivery_type: deliveryType, campaign_send_status: status },
});
const campaignEmail = (type: string, endpoint: string, day: string, hh = '11'): FixtureEvent => ({
  type,
  endpoint,
  at: at(day, hh),
  attributes: { campaign_id: C1, campaign_activity_id: 'c1run1', treatment_id: '0', feedback: type.slice(7) },
});
const txnEmail = (type: string, endpoint: string, day: string, hh = '11'): FixtureEvent => ({ type, endpoint, at: at(day, hh), attributes: { feedback: type.slice(7) } });
const sms = (
  type: string,
  messageId: string,
  day: string,
  country: string,
  parts: number,
  price?: number,
  status?: string,
  extra: Record<string, string> = {},
): FixtureEvent => ({
  type,
  endpoint: `sms-${messageId}`,
  at: at(day, type === '_SMS.BUFFERED' ? '09' : '10'),
  attributes: {
    message_id: messageId,
    destination_phone_number: country === 'US' ? '+12065550100' : '+4930555010',
    iso_country_code: country,
    message_type: 'Transactional',
    number_of_message_parts: String(parts),
    record_status: status ?? (type === '_SMS.SUCCESS' ? 'DELIVERED' : 'PENDING'),
    ...extra,
  },
  ...(price !== undefined ? { metrics: { price_in_millicents_usd: price } } : {}),
});
const journeyEmail = (type: string, endpoint: string, activity: string, hh = '11'): FixtureEvent => ({
  type,
  endpoint,
  at: at(D1, hh),
  attributes: { journey_id: J1, journey_activity_id: activity, journey_run_id: 'run1', feedback: type.slice(7) },
});

export const IDS = { C1, C2, C3, J1 };

export const FIXTURE: FixtureEvent[] = [
  // Campaign C1 (email, run c1run1) on D1: 5 sends, 4 successful, e4 hard-bounces; e1 opens twice
  // (one message), e2 once; e1 clicks three times.
  campaignSend('e1', D1, C1, 'c1run1', 'EMAIL'),
  campaignSend('e2', D1, C1, 'c1run1', 'EMAIL'),
  campaignSend('e3', D1, C1, 'c1run1', 'EMAIL'),
  campaignSend('e4', D1, C1, 'c1run1', 'EMAIL'),
  campaignSend('e5', D1, C1, 'c1run1', 'EMAIL', 'PERMANENT_FAILURE'),
  campaignEmail('_email.hardbounce', 'e4', D1),
  campaignEmail('_email.open', 'e1', D1, '12'),
  campaignEmail('_email.open', 'e1', D1, '13'),
  campaignEmail('_email.open', 'e2', D1, '12'),
  campaignEmail('_email.click', 'e1', D1, '12'),
  campaignEmail('_email.click', 'e1', D1, '13'),
  campaignEmail('_email.click', 'e1', D1, '14'),
  // Campaign C2 (push, run c2run1) on D2: 2 successful GCM sends, e6 opens the notification.
  campaignSend('e1', D2, C2, 'c2run1', 'GCM'),
  campaignSend('e6', D2, C2, 'c2run1', 'GCM'),
  { type: '_campaign.opened_notification', endpoint: 'e6', at: at(D2, '12'), attributes: { campaign_id: C2, campaign_activity_id: 'c2run1', treatment_id: '0' } },
  // Campaign C2 before the range: never counted.
  campaignSend('e7', D0, C2, 'c2run0', 'GCM'),
  // Campaign C3 (SMS) on D1: two messages priced 645 and 1290 millicents.
  campaignSend('s1', D1, C3, 'c3run1', 'SMS'),
  sms('_SMS.SUCCESS', 'c3m1', D1, 'US', 1, 645, undefined, { campaign_id: C3, campaign_activity_id: 'c3run1' }),
  sms('_SMS.SUCCESS', 'c3m2', D1, 'US', 2, 1290, undefined, { campaign_id: C3, campaign_activity_id: 'c3run1' }),

  // Transactional email. D1: 4 sends, t3 soft-bounces; t1 opens twice, t2 once; t1 clicks twice;
  // t2 complains. D2: 2 sends, t6 hard-bounces. Delivered events are informational only.
  txnEmail('_email.send', 't1', D1, '10'),
  txnEmail('_email.send', 't2', D1, '10'),
  txnEmail('_email.send', 't3', D1, '10'),
  txnEmail('_email.send', 't4', D1, '10'),
  txnEmail('_email.delivered', 't1', D1),
  txnEmail('_email.softbounce', 't3', D1),
  txnEmail('_email.open', 't1', D1, '12'),
  txnEmail('_email.open', 't1', D1, '15'),
  txnEmail('_email.open', 't2', D1, '12'),
  txnEmail('_email.click', 't1', D1, '12'),
  txnEmail('_email.click', 't1', D1, '13'),
  txnEmail('_email.complaint', 't2', D1, '16'),
  txnEmail('_email.send', 't5', D2, '10'),
  txnEmail('_email.send', 't6', D2, '10'),
  txnEmail('_email.hardbounce', 't6', D2),

  // Transactional SMS. m1 US 1 part buffered then delivered (645); m2 US 2 parts delivered (1290);
  // m3 DE failed UNREACHABLE (500); m4 DE failed BLOCKED (no price); m5 US buffered only, on D2.
  sms('_SMS.BUFFERED', 'm1', D1, 'US', 1),
  sms('_SMS.SUCCESS', 'm1', D1, 'US', 1, 645),
  sms('_SMS.SUCCESS', 'm2', D1, 'US', 2, 1290),
  sms('_SMS.FAILURE', 'm3', D1, 'DE', 1, 500, 'UNREACHABLE'),
  sms('_SMS.FAILURE', 'm4', D1, 'DE', 1, undefined, 'BLOCKED'),
  sms('_SMS.BUFFERED', 'm5', D2, 'US', 1),

  // Journey J1 on D1: activity ja1 emails e1 and e2 (both open, e1 twice), activity ja2 emails e3
  // (hard bounce, no open); e2 unsubscribes. The _journey.send records are not email engagement.
  { type: '_journey.send', endpoint: 'e1', at: at(D1, '09'), attributes: { journey_id: J1, journey_activity_id: 'ja1', journey_run_id: 'run1', journey_send_status: 'SUCCESS', journey_activity_type: 'EMAIL' } },
  journeyEmail('_email.send', 'e1', 'ja1', '10'),
  journeyEmail('_email.send', 'e2', 'ja1', '10'),
  journeyEmail('_email.send', 'e3', 'ja2', '10'),
  journeyEmail('_email.hardbounce', 'e3', 'ja2'),
  journeyEmail('_email.open', 'e1', 'ja1', '12'),
  journeyEmail('_email.open', 'e1', 'ja1', '13'),
  journeyEmail('_email.open', 'e2', 'ja1', '12'),
  journeyEmail('_email.unsubscribe', 'e2', 'ja1', '14'),
];
