// Builds the Pinpoint event-stream record (reference/pinpoint.md §3.1–3.2, event_version "3.1")
// for an accepted PutEvents event. Records are assembled as strings from pre-serialized parts:
// everything derived from the endpoint is serialized once per batch item, not once per event,
// because this runs ~100,000 times a second at full load.

import type { StoredEndpoint } from './endpoints.js';

export const EVENT_VERSION = '3.1';

export interface EventInput {
  EventType: string;
  timestampMs: number;
  AppPackageName?: string;
  AppTitle?: string;
  AppVersionCode?: string;
  SdkName?: string;
  ClientSdkVersion?: string;
  Attributes?: Record<string, string>;
  Metrics?: Record<string, number>;
  session?: { id: string; startMs: number; stopMs?: number };
}

/** The parts of a record that depend only on the app, the endpoint and the account. */
export interface EndpointParts {
  appId: string;
  /** The Cognito identity pool of the caller's credentials, when they came from one. */
  cognitoPoolId?: string;
  versionName?: string;
  /** `,"client":{…},"device":{…}` */
  clientDevice: string;
  /** `,"endpoint":{…},"awsAccountId":"…"}` */
  tail: string;
  /** Cache of the last `application` object serialized for this endpoint's events. */
  applicationKey?: string;
  applicationJson?: string;
}

/** Who sent the events, when their credentials came from a Cognito identity (Pinpoint recorded both ids). */
export interface CognitoCaller {
  identityId: string;
  poolId: string;
}

export function endpointParts(appId: string, endpointId: string, stored: StoredEndpoint, accountId: string, cognito?: CognitoCaller): EndpointParts {
  const d = stored.endpoint.Demographic ?? {};
  const device: Record<string, unknown> = {};
  if (d.Locale) device.locale = parseLocale(d.Locale);
  if (d.Make !== undefined) device.make = d.Make;
  if (d.Model !== undefined) device.model = d.Model;
  const platform: Record<string, string> = {};
  if (d.Platform !== undefined) platform.name = d.Platform;
  if (d.PlatformVersion !== undefined) platform.version = d.PlatformVersion;
  device.platform = platform;
  const client: Record<string, string> = { client_id: endpointId };
  if (cognito) client.cognito_id = cognito.identityId;
  return {
    appId,
    cognitoPoolId: cognito?.poolId,
    versionName: d.AppVersion,
    clientDevice: `,"client":${JSON.stringify(client)},"device":${JSON.stringify(device)}`,
    tail: `,"endpoint":${stored.json},"awsAccountId":${JSON.stringify(accountId)}}`,
  };
}

export function buildRecord(parts: EndpointParts, ev: EventInput, arrivalMs: number): string {
  const e = eventRecordParts(ev, arrivalMs);
  return e.head + applicationJson(parts, ev) + parts.clientDevice + e.rest + parts.tail;
}

/** The five optional event fields the `application` object is made of. */
export type AppFields = Pick<EventInput, 'AppPackageName' | 'SdkName' | 'ClientSdkVersion' | 'AppTitle' | 'AppVersionCode'>;

/**
 * The parts of a record that depend only on the event (and the arrival time): everything before
 * the `application` object, and everything between the endpoint's client/device and its tail. A
 * worker thread builds these (src/pinpoint/ingest-prepare.ts); the thread that knows the stored
 * endpoint puts them together with assembleRecord.
 */
export function eventRecordParts(ev: EventInput, arrivalMs: number): { head: string; rest: string } {
  let session = '{}';
  if (ev.session) {
    const s = ev.session;
    session =
      `{"session_id":${JSON.stringify(s.id)},"start_timestamp":${s.startMs}` +
      (s.stopMs !== undefined ? `,"stop_timestamp":${s.stopMs}}` : '}');
  }
  return {
    head: `{"event_type":${JSON.stringify(ev.EventType)},"event_timestamp":${ev.timestampMs},"arrival_timestamp":${arrivalMs},` + `"event_version":"${EVENT_VERSION}","application":`,
    rest: `,"session":${session},"attributes":${ev.Attributes ? JSON.stringify(ev.Attributes) : '{}'}` + `,"metrics":${ev.Metrics ? JSON.stringify(ev.Metrics) : '{}'}`,
  };
}

/** buildRecord from eventRecordParts: `application` is the serialized application object (applicationJson). */
export function assembleRecord(parts: EndpointParts, head: string, application: string, rest: string): string {
  return head + application + parts.clientDevice + rest + parts.tail;
}

/**
 * The `application` object depends on five optional event fields that SDKs send identically for
 * every event of a batch (or not at all), so the last serialization is reused while they repeat.
 */
export function applicationJson(parts: EndpointParts, ev: AppFields): string {
  const key = `${ev.AppPackageName}\0${ev.SdkName}\0${ev.ClientSdkVersion}\0${ev.AppTitle}\0${ev.AppVersionCode}`;
  if (parts.applicationKey === key) return parts.applicationJson!;
  const application: Record<string, unknown> = { app_id: parts.appId };
  if (parts.cognitoPoolId !== undefined) application.cognito_identity_pool_id = parts.cognitoPoolId;
  if (ev.AppPackageName !== undefined) application.package_name = ev.AppPackageName;
  const sdk: Record<string, string> = {};
  if (ev.SdkName !== undefined) sdk.name = ev.SdkName;
  if (ev.ClientSdkVersion !== undefined) sdk.version = ev.ClientSdkVersion;
  application.sdk = sdk;
  if (ev.AppTitle !== undefined) application.title = ev.AppTitle;
  if (parts.versionName !== undefined) application.version_name = parts.versionName;
  if (ev.AppVersionCode !== undefined) application.version_code = ev.AppVersionCode;
  parts.applicationKey = key;
  parts.applicationJson = JSON.stringify(application);
  return parts.applicationJson;
}

/** "en_GB" / "en-gb" → {code, country, language} as the stream shows locales. */
function parseLocale(code: string): Record<string, string> {
  const [language, country] = code.split(/[-_]/);
  const out: Record<string, string> = { code };
  if (country) out.country = country.toUpperCase();
  if (language) out.language = language.toLowerCase();
  return out;
}
