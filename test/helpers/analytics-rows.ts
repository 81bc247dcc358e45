// Event rows for the event-store contract suite (test/analytics-event-store.test.ts), built directly
// as the loader would map them: the KPI fixture of helpers/kpi-events.ts (campaign, transactional
// email/SMS and journey events with hand-worked answers), and an app-usage set (sessions, custom
// events with attributes and metrics, purchases, sign-ins, a campaign push) over four endpoints with
// users, demographics and endpoint attributes, in March 2024.

import type { EventRow } from '../../src/analytics/store.js';
import { FIXTURE } from './kpi-events.js';

const DAY = 86_400_000;
export const USAGE_T0 = Date.parse('2024-03-01T00:00:00Z');
export const USAGE_RANGE = { start: '2024-03-01', end: '2024-03-10' };
/** The usage set's "now": the last day of its range. */
export const USAGE_NOW = Date.parse('2024-03-10T12:00:00Z');

export function eventRow(p: Partial<EventRow> & Pick<EventRow, 'appId' | 'eventKey' | 'eventType' | 'eventTime' | 'endpointId'>): EventRow {
  return {
    arrivalTime: p.eventTime,
    userId: null,
    endpointCreated: null,
    sessionId: null,
    sessionStart: null,
    channel: null,
    platform: null,
    platformVersion: null,
    appVersion: null,
    make: null,
    model: null,
    country: null,
    attributes: '{}',
    metrics: '{}',
    endpointAttributes: '{}',
    campaignId: null,
    campaignActivityId: null,
    treatmentId: null,
    journeyId: null,
    journeyActivityId: null,
    campaignSendStatus: null,
    journeySendStatus: null,
    deliveryType: null,
    journeyActivityType: null,
    ...p,
  };
}

/** helpers/kpi-events.ts FIXTURE as rows of one app (messaging columns filled from the attributes, as the loader does). */
export function kpiRows(appId: string): EventRow[] {
  return FIXTURE.map((e, i) => {
    const a = e.attributes ?? {};
    return eventRow({
      appId,
      eventKey: `${e.endpoint}/${i}`,
      eventType: e.type,
      eventTime: Date.parse(e.at),
      endpointId: e.endpoint,
      attributes: JSON.stringify(a),
      metrics: JSON.stringify(e.metrics ?? {}),
      campaignId: a.campaign_id ?? null,
      campaignActivityId: a.campaign_activity_id ?? null,
      treatmentId: a.treatment_id ?? null,
      journeyId: a.journey_id ?? null,
      journeyActivityId: a.journey_activity_id ?? null,
      campaignSendStatus: a.campaign_send_status ?? null,
      journeySendStatus: a.journey_send_status ?? null,
      deliveryType: a.delivery_type ?? null,
      journeyActivityType: a.journey_activity_type ?? null,
    });
  });
}

interface Endpoint {
  user: string | null;
  platform: string;
  make: string;
  model: string;
  country: string;
  attributes: Record<string, string[]>;
  /** Day (1-based in March 2024, 0 = February 29) the endpoint was created. */
  created: number;
}

const ENDPOINTS: Record<string, Endpoint> = {
  e1: { user: 'u1', platform: 'android', make: 'Google', model: 'Pixel 8', country: 'US', attributes: { plan: ['pro'] }, created: 0 },
  e2: { user: 'u1', platform: 'ios', make: 'Apple', model: 'iPhone', country: 'GB', attributes: { plan: ['free'] }, created: 1 },
  e3: { user: null, platform: 'android', make: 'Samsung', model: 'S24', country: 'US', attributes: { plan: ['free', 'trial'] }, created: 2 },
  e4: { user: 'u2', platform: 'ios', make: 'Apple', model: 'iPhone', country: 'DE', attributes: {}, created: 3 },
};

type Ev = [day: number, hour: number, endpoint: string, type: string, attrs?: Record<string, string>, metrics?: Record<string, number>];
const camp = (status: string) => ({ campaign_id: 'c1', campaign_activity_id: 'run1', treatment_id: '0', delivery_type: 'GCM', campaign_send_status: status });

const USAGE: Ev[] = [
  [1, 9, 'e1', '_session.start'],
  [1, 10, 'e2', '_session.start'],
  [1, 11, 'e1', 'level', { mode: 'easy' }, { score: 5 }],
  [2, 9, 'e1', '_session.start'],
  [2, 20, 'e3', '_session.start'],
  [2, 21, 'e3', '_monetization.purchase', {}, { _item_price: 2.5, _quantity: 2 }],
  [2, 10, 'e1', '_monetization.purchase', {}, { _item_price: 10 }],
  [3, 12, 'e4', '_session.start'],
  [3, 13, 'e1', 'level', { mode: 'hard' }, { score: 50 }],
  [3, 14, 'e3', 'level', { mode: 'hard', 'odd key.with "quotes"': "it's" }, { score: 7 }],
  [3, 8, 'e1', '_campaign.send', camp('SUCCESS')],
  [3, 8, 'e2', '_campaign.send', camp('SUCCESS')],
  [3, 8, 'e3', '_campaign.send', camp('SUCCESS')],
  [3, 8, 'e4', '_campaign.send', camp('FAILURE')],
  [3, 9, 'e1', '_campaign.opened_notification', { campaign_id: 'c1' }],
  [3, 9, 'e1', '_campaign.opened_notification', { campaign_id: 'c1' }],
  [3, 10, 'e2', '_campaign.opened_notification', { campaign_id: 'c1' }],
  [8, 9, 'e1', '_session.start'],
  [8, 15, 'e1', '_session.start'],
  [8, 16, 'e2', '_userauth.sign_in'],
  [9, 11, 'e2', '_session.start'],
  [9, 12, 'e2', '_userauth.sign_up'],
  [9, 13, 'e3', '_userauth.auth_fail'],
  [9, 14, 'e1', '_monetization.purchase', {}, { _item_price: 1, _quantity: 3 }],
  [10, 7, 'e3', '_session.start'],
  [10, 8, 'e4', 'level', { mode: 'easy' }, { score: 1 }],
];

/** The app-usage set as rows of one app. */
export function usageRows(appId: string): EventRow[] {
  return USAGE.map(([day, hour, ep, type, attrs = {}, metrics = {}], i) => {
    const e = ENDPOINTS[ep];
    const t = USAGE_T0 + (day - 1) * DAY + hour * 3_600_000 + i;
    return eventRow({
      appId,
      eventKey: `${ep}/usage-${i}`,
      eventType: type,
      eventTime: t,
      arrivalTime: t + 1000,
      endpointId: ep,
      userId: e.user,
      endpointCreated: USAGE_T0 + (e.created - 1) * DAY + 3_600_000,
      channel: e.platform === 'ios' ? 'APNS' : 'GCM',
      platform: e.platform,
      make: e.make,
      model: e.model,
      country: e.country,
      attributes: JSON.stringify(attrs),
      metrics: JSON.stringify(metrics),
      endpointAttributes: JSON.stringify(e.attributes),
      campaignId: attrs.campaign_id ?? null,
      campaignActivityId: attrs.campaign_activity_id ?? null,
      treatmentId: attrs.treatment_id ?? null,
      campaignSendStatus: attrs.campaign_send_status ?? null,
      deliveryType: attrs.delivery_type ?? null,
    });
  });
}
