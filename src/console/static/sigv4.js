// AWS Signature Version 4 in the browser, with WebCrypto (HMAC/SHA-256). The console signs every
// API call itself, exactly as an AWS SDK would, so the server sees ordinary AWS requests and the
// secret never leaves the browser. Canonicalisation follows @smithy/signature-v4: path segments
// are URI-encoded once more on top of their wire encoding, the query is sorted by encoded key then
// value, every header passed in is signed along with host, x-amz-date and x-amz-content-sha256.

const encoder = new TextEncoder();

/** RFC 3986 encoding as AWS wants it: encodeURIComponent plus the four sub-delims it keeps. */
export function escapeUri(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

/** A wire path from raw segments: escapePath('v1', 'apps', id) → '/v1/apps/<id, encoded>'. */
export function escapePath(...segments) {
  return '/' + segments.map(escapeUri).join('/');
}

function toHex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');
}

export async function sha256Hex(data) {
  const bytes = typeof data === 'string' ? encoder.encode(data) : data;
  return toHex(await crypto.subtle.digest('SHA-256', bytes));
}

async function hmac(key, message) {
  const k = await crypto.subtle.importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return new Uint8Array(await crypto.subtle.sign('HMAC', k, encoder.encode(message)));
}

/** 2026-11-26T07:05:09.123Z → 20261126T070509Z */
export function amzDate(date) {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** key=value pairs, each side escaped, sorted: both the wire query and the canonical query. */
export function canonicalQuery(query) {
  const pairs = [];
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null) continue;
    for (const v of Array.isArray(value) ? value : [value]) pairs.push([escapeUri(key), escapeUri(String(v))]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/**
 * Signs one request. `path` is the wire path (already encoded, e.g. from escapePath); `query` a
 * plain object of raw values. Returns the URL to fetch and the headers to send (host excluded:
 * the browser sets it, to the very value signed here).
 */
export async function signRequest({ method, origin, path, query, headers = {}, body = '', service, region, credentials, date = new Date() }) {
  const url = new URL(origin);
  const stamp = amzDate(date);
  const day = stamp.slice(0, 8);
  const payloadHash = await sha256Hex(body);
  const toSign = { host: url.host, 'x-amz-date': stamp, 'x-amz-content-sha256': payloadHash };
  for (const [name, value] of Object.entries(headers)) toSign[name.toLowerCase()] = String(value).trim().replace(/\s+/g, ' ');
  const names = Object.keys(toSign).sort();
  const signedHeaders = names.join(';');
  const qs = canonicalQuery(query);
  const canonicalPath = path.split('/').map(escapeUri).join('/');
  const canonicalRequest = [method, canonicalPath, qs, names.map((n) => `${n}:${toSign[n]}\n`).join(''), signedHeaders, payloadHash].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', stamp, scope, await sha256Hex(canonicalRequest)].join('\n');

  let key = await hmac(encoder.encode('AWS4' + credentials.secretAccessKey), day);
  key = await hmac(key, region);
  key = await hmac(key, service);
  key = await hmac(key, 'aws4_request');
  const signature = toHex(await hmac(key, stringToSign));

  const { host: _host, ...sendHeaders } = toSign;
  sendHeaders.authorization =
    `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return { url: `${url.origin}${path}${qs ? '?' + qs : ''}`, headers: sendHeaders };
}
