// The console's AWS clients: each call is signed with the signed-in key (sigv4.js) and sent to
// this server's real APIs, exactly as the AWS CLI would send it — Pinpoint restJson1
// (mobiletargeting), Kinesis and Firehose JSON 1.1, IAM/STS Query. Every failure becomes an
// AwsError carrying the AWS error type and message, parsed the way the AWS SDKs parse them.

import { escapePath, signRequest } from './sigv4.js';

const SESSION_KEY = 'pinstream.console.session';

/** Pages of a list operation read before giving up (lists are only shown, never exhaustive). */
export const MAX_LIST_PAGES = 20;

/** Error types meaning the key itself is wrong, unknown or expired: sign in again. */
export const AUTH_ERROR_TYPES = new Set([
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'IncompleteSignatureException',
  'MissingAuthenticationTokenException',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'ExpiredTokenException',
]);

export class AwsError extends Error {
  constructor(type, message, status) {
    super(message);
    this.type = type;
    this.status = status;
  }
  get isAuth() {
    return AUTH_ERROR_TYPES.has(this.type);
  }
  /** "BadRequestException: Destination stream validation failed: …" */
  toString() {
    return `${this.type}: ${this.message}`;
  }
}

// --- Session -----------------------------------------------------------------------------------

export function loadSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');
  } catch {
    return null;
  }
}

export function saveSession(session) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

export function clearSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

let authFailureHandler = () => {};
/** Called with the AwsError whenever a call fails because the key is not accepted. */
export function onAuthFailure(fn) {
  authFailureHandler = fn;
}

/** The open console config: {region, accountId} of this server. */
export async function serverConfig() {
  const res = await fetch('config.json');
  if (!res.ok) throw new AwsError('ConsoleConfigUnavailable', `GET /console/config.json answered ${res.status}`, res.status);
  return res.json();
}

// --- Transport ---------------------------------------------------------------------------------

/** Signs and sends one request; resolves to the Response when it succeeded, else throws AwsError. */
async function send(service, { method = 'GET', path, query, headers = {}, body = '', session = loadSession() }) {
  if (!session) throw new AwsError('NotSignedIn', 'Sign in with an access key first.', 0);
  const signed = await signRequest({
    method,
    origin: location.origin,
    path,
    query,
    headers,
    body,
    service,
    region: session.region,
    credentials: session,
  });
  let res;
  try {
    res = await fetch(signed.url, { method, headers: signed.headers, body: method === 'GET' || method === 'HEAD' ? undefined : body });
  } catch (e) {
    throw new AwsError('NetworkError', `Cannot reach the Pinstream server (${e.message}). Is it running?`, 0);
  }
  if (res.ok) return res;
  const err = await parseError(res);
  if (err.isAuth) authFailureHandler(err);
  throw err;
}

/** The SDKs' rules: x-amzn-ErrorType, else body code / __type, cut at ':' and after '#'. */
async function parseError(res) {
  const text = await res.text();
  const ct = res.headers.get('content-type') ?? '';
  let type = res.headers.get('x-amzn-errortype') ?? '';
  let message = '';
  if (ct.includes('xml') || text.startsWith('<')) {
    const doc = new DOMParser().parseFromString(text, 'application/xml');
    type ||= doc.querySelector('Code')?.textContent ?? '';
    message = doc.querySelector('Message')?.textContent ?? '';
  } else {
    try {
      const body = JSON.parse(text);
      type ||= body.code ?? body.__type ?? '';
      message = body.message ?? body.Message ?? '';
    } catch {
      message = text.trim();
    }
  }
  type = type.split(':')[0].split(',')[0];
  if (type.includes('#')) type = type.slice(type.indexOf('#') + 1);
  return new AwsError(type || `HTTP ${res.status}`, message || res.statusText || 'Request failed', res.status);
}

// --- Pinpoint (restJson1, service mobiletargeting) ---------------------------------------------

/** pinpoint('GET', ['v1', 'apps', id], { query, body }) → parsed JSON (undefined for an empty body). */
export async function pinpoint(method, segments, { query, body } = {}) {
  const json = body === undefined ? '' : JSON.stringify(body);
  const res = await send('mobiletargeting', {
    method,
    path: escapePath(...segments),
    query,
    headers: json ? { 'content-type': 'application/json' } : {},
    body: json,
  });
  const text = await res.text();
  return text ? JSON.parse(text) : undefined;
}

/** A GET answered with text (CSV downloads). */
export async function pinpointText(segments, query) {
  const res = await send('mobiletargeting', { path: escapePath(...segments), query });
  return res.text();
}

export async function listApps() {
  const apps = [];
  let token;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const out = await pinpoint('GET', ['v1', 'apps'], { query: { 'page-size': '100', token } });
    apps.push(...(out.Item ?? []));
    token = out.NextToken;
    if (!token) break;
  }
  return apps;
}

// --- JSON 1.1 services (Kinesis, Firehose) -----------------------------------------------------

async function jsonTarget(service, targetPrefix, operation, input) {
  const res = await send(service, {
    method: 'POST',
    path: '/',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `${targetPrefix}.${operation}` },
    body: JSON.stringify(input ?? {}),
  });
  const text = await res.text();
  return text ? JSON.parse(text) : {};
}

export const kinesis = (operation, input) => jsonTarget('kinesis', 'Kinesis_20131202', operation, input);
export const firehose = (operation, input) => jsonTarget('firehose', 'Firehose_20150804', operation, input);

export async function listKinesisStreams() {
  const names = [];
  let NextToken;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const out = await kinesis('ListStreams', NextToken ? { NextToken } : {});
    names.push(...(out.StreamNames ?? []));
    NextToken = out.NextToken;
    if (!out.HasMoreStreams || !NextToken) break;
  }
  return names;
}

export async function listDeliveryStreams() {
  const names = [];
  let ExclusiveStartDeliveryStreamName;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const out = await firehose('ListDeliveryStreams', ExclusiveStartDeliveryStreamName ? { ExclusiveStartDeliveryStreamName } : {});
    names.push(...(out.DeliveryStreamNames ?? []));
    if (!out.HasMoreDeliveryStreams || names.length === 0) break;
    ExclusiveStartDeliveryStreamName = names[names.length - 1];
  }
  return names;
}

// --- Query protocol (IAM, STS) -----------------------------------------------------------------

async function queryCall(service, params, session) {
  const res = await send(service, {
    method: 'POST',
    path: '/',
    headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body: new URLSearchParams(params).toString(),
    session,
  });
  return new DOMParser().parseFromString(await res.text(), 'application/xml');
}

/** STS GetCallerIdentity with the given session: checks a key at sign-in. */
export async function callerIdentity(session) {
  const doc = await queryCall('sts', { Action: 'GetCallerIdentity', Version: '2011-06-15' }, session);
  return { arn: doc.querySelector('Arn')?.textContent ?? '', account: doc.querySelector('Account')?.textContent ?? '' };
}

export async function listRoles() {
  const roles = [];
  let marker;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const doc = await queryCall('iam', { Action: 'ListRoles', Version: '2010-05-08', ...(marker ? { Marker: marker } : {}) });
    for (const m of doc.querySelectorAll('Roles > member')) {
      roles.push({ name: m.querySelector('RoleName')?.textContent ?? '', arn: m.querySelector('Arn')?.textContent ?? '' });
    }
    marker = doc.querySelector('IsTruncated')?.textContent === 'true' ? doc.querySelector('Marker')?.textContent : undefined;
    if (!marker) break;
  }
  return roles;
}
