// AWS Signature Version 4 verification, server side. This module owns deciding whether a request
// was signed by a known access key: parsing the Authorization header or the presigned query
// parameters, rebuilding the canonical request exactly as AWS clients build it, checking the clock
// skew / presign expiry, the credential scope, the session token (X-Amz-Security-Token must be
// exactly the credentials' own, and absent for long-term keys) and the temporary credentials'
// expiry, the signature and the payload hash. checkSigV4Head runs every check that needs no body,
// so the HTTP front door can refuse a request before reading its body; verifySigV4 runs them all. It does not know
// about users, policies or HTTP responses: callers turn a failed result into an HTTP 403 with the
// returned AWS error type, which is modelled on what real AWS front doors answer so SDKs react the
// same way (e.g. the JS SDK corrects its clock after an InvalidSignatureException + Date header).
//
// Reference implementations this mirrors (read from node_modules / site-packages, not guessed):
//  - @smithy/signature-v4 5.x (AWS SDK for JavaScript v3): SignatureV4Base.getCanonicalPath,
//    getCanonicalQuery, getCanonicalHeaders, getPayloadHash, presign.
//  - botocore 1.43 (AWS CLI v1 / boto3): SigV4Auth.canonical_request, _normalize_url_path,
//    canonical_query_string, SigV4QueryAuth.
// Both double-encode the path identically (see canonicalPath); they differ in how the query string
// is canonicalised (see canonicalQueryForms), so a bad-signature verdict is only given after
// trying each distinct form a genuine client could have signed.
//
// This runs on every request (thousands/s), so: the body hash is computed at most once and only
// when needed (when the client sent x-amz-content-sha256 we check the signature first and hash the
// body afterwards, so forged requests never cost a body hash), derived signing keys are cached,
// and the common already-canonical inputs take allocation-free fast paths.

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** What arrives before the body: enough to refuse most forged or stale requests without reading it. */
export interface SignedRequestHead {
  method: string;
  /** The path exactly as on the request line, still percent-encoded, no query. */
  rawPath: string;
  /** The raw query string after '?', '' if none. */
  rawQuery: string;
  /** Node's lower-cased headers (HTTP/2: also pseudo-headers such as ':authority'). */
  headers: Record<string, string | string[] | undefined>;
}

export interface SignedRequest extends SignedRequestHead {
  body: Buffer;
}

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  /**
   * Temporary credentials only: the session token the request must carry (X-Amz-Security-Token),
   * compared exactly. Long-term keys have none, and a request presenting one with them is refused.
   */
  sessionToken?: string;
  /** Temporary credentials only: when they stop working (ms since epoch; not the SDKs' `expiration` Date). */
  expiresAt?: number;
}

export interface VerifyOptions {
  /** Secret for a key id; undefined if unknown or inactive. */
  lookup: (accessKeyId: string) => Credentials | undefined;
  /** ms since epoch (injected clock). */
  now: number;
  /** Signing service names acceptable for this endpoint, e.g. ['mobiletargeting']. */
  services: readonly string[];
  /** Allowed distance between the request date and now; default MAX_CLOCK_SKEW_MS. */
  maxSkewMs?: number;
}

export type VerifyResult =
  | { ok: true; accessKeyId: string; region: string; service: string }
  | { ok: false; code: string; message: string };

/** AWS allows 15 minutes between the signer's clock and the server's. */
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;
/** Presigned URLs may live at most one week (same limit as the SDK signer and AWS). */
export const MAX_PRESIGN_EXPIRES_SECONDS = 7 * 24 * 60 * 60;

const ALGORITHM = 'AWS4-HMAC-SHA256';
const TERMINATOR = 'aws4_request';
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const BAD_SIGNATURE =
  'The request signature we calculated does not match the signature you provided. Check your AWS ' +
  'Secret Access Key and signing method. Consult the service documentation for details.';

type Failure = { ok: false; code: string; message: string };
const fail = (code: string, message: string): Failure => ({ ok: false, code, message });
const incomplete = (message: string) => fail('IncompleteSignatureException', message);
const invalid = (message: string) => fail('InvalidSignatureException', message);

/** The pieces of a signature, from either the Authorization header or the presign parameters. */
interface AuthParts {
  presigned: boolean;
  credential: string;
  signedHeaders: string;
  signature: string;
  /** ISO-8601 basic timestamp used in the string to sign. */
  amzDate: string;
  dateMs: number;
  /** Presigned only: X-Amz-Expires in seconds. */
  expiresSeconds: number;
}

/** One query parameter as on the wire plus its decoded key (decoded once, used several times). */
interface QueryParam {
  rawKey: string;
  rawValue: string;
  /** false for a bare `key` with no '=' (the SDK signs such keys differently, see below). */
  hasValue: boolean;
  key: string;
}

/** What the header checks established, for the signature check that follows once the body is in. */
interface HeadContext {
  parts: AuthParts;
  params: QueryParam[];
  accessKeyId: string;
  scopeDate: string;
  region: string;
  service: string;
  signedHeaderNames: string[];
  creds: Credentials;
}

const INVALID_TOKEN = 'The security token included in the request is invalid.';
const EXPIRED_TOKEN = 'The security token included in the request is expired';

/**
 * Every check that needs no body: the auth form and its parts, the credential scope, the clock,
 * the signed headers, the key and its session token. A request failing here is refused before its
 * body is read; `ok` means only that the body is worth reading (the signature is still unchecked).
 */
export function checkSigV4Head(req: SignedRequestHead, opts: VerifyOptions): VerifyResult {
  const head = headCheck(req, opts);
  return 'ok' in head ? head : { ok: true, accessKeyId: head.accessKeyId, region: head.region, service: head.service };
}

export function verifySigV4(req: SignedRequest, opts: VerifyOptions): VerifyResult {
  const head = headCheck(req, opts);
  if ('ok' in head) return head;
  return verifySignature(req, head);
}

function headCheck(req: SignedRequestHead, opts: VerifyOptions): HeadContext | Failure {
  const maxSkewMs = opts.maxSkewMs ?? MAX_CLOCK_SKEW_MS;
  const params = parseQuery(req.rawQuery);
  const authorization = single(req.headers.authorization);

  // --- Which of the two forms, and its raw parts ---------------------------------------------
  let parts: AuthParts | Failure;
  const presignParam = findParam(params, 'X-Amz-Algorithm') ?? findParam(params, 'X-Amz-Credential') ??
    findParam(params, 'X-Amz-Signature');
  if (authorization !== undefined && authorization !== '') {
    if (presignParam) {
      return incomplete(
        'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the ' +
          'Authorization header should be specified',
      );
    }
    parts = headerParts(authorization, req.headers);
  } else if (presignParam) {
    parts = presignParts(params);
  } else {
    return fail('MissingAuthenticationTokenException', 'Missing Authentication Token');
  }
  if ('ok' in parts) return parts;

  // --- Credential scope: AKID/YYYYMMDD/region/service/aws4_request ---------------------------
  const scope = parts.credential.split('/');
  if (scope.length !== 5 || scope[0] === '') {
    return incomplete(
      `Credential should be of the form <access key id>/<YYYYMMDD>/<region>/<service>/${TERMINATOR}, ` +
        `got '${parts.credential}'.`,
    );
  }
  const [accessKeyId, scopeDate, region, service, terminator] = scope;
  if (terminator !== TERMINATOR) {
    return incomplete(`Credential should be scoped with a valid terminator: '${TERMINATOR}', not '${terminator}'.`);
  }
  if (!/^\d{8}$/.test(scopeDate)) {
    return incomplete('Invalid credential date. Date is not the required format: yyyyMMdd.');
  }
  if (region === '') return incomplete('Credential should be scoped to a valid region.');
  if (!opts.services.includes(service)) {
    return invalid(`Credential should be scoped to correct service: '${opts.services[0] ?? ''}'.`);
  }

  // --- Time: skew for both forms, plus expiry for presigned URLs -----------------------------
  const { dateMs, amzDate } = parts;
  if (dateMs > opts.now + maxSkewMs) {
    return invalid(
      `Signature not yet current: ${amzDate} is still later than ${isoBasic(opts.now + maxSkewMs)} ` +
        `(${isoBasic(opts.now)} + ${describeSkew(maxSkewMs)})`,
    );
  }
  if (parts.presigned) {
    // A presigned URL may be used long after it was made, up to X-Amz-Expires; the 15-minute
    // window only guards against URLs dated in the future.
    const expiresAt = dateMs + parts.expiresSeconds * 1000;
    if (expiresAt < opts.now) {
      return invalid(
        `Signature expired: ${amzDate} + ${parts.expiresSeconds} sec. (X-Amz-Expires) is now earlier than ` +
          `${isoBasic(opts.now)}`,
      );
    }
  } else if (dateMs < opts.now - maxSkewMs) {
    return invalid(
      `Signature expired: ${amzDate} is now earlier than ${isoBasic(opts.now - maxSkewMs)} ` +
        `(${isoBasic(opts.now)} - ${describeSkew(maxSkewMs)})`,
    );
  }
  if (amzDate.slice(0, 8) !== scopeDate) {
    return invalid(
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: ` +
        `'${scopeDate}' != '${amzDate.slice(0, 8)}', from '${amzDate}'.`,
    );
  }

  // --- Signed headers: host is mandatory (otherwise a signature could be replayed elsewhere) --
  const signedHeaderNames = parts.signedHeaders.toLowerCase().split(';');
  // The JS SDK over HTTP/2 drops `host` and signs the `:authority` pseudo-header in its place.
  if (!signedHeaderNames.includes('host') && !signedHeaderNames.includes(':authority')) {
    return invalid(
      `'Host' must be a 'SignedHeader' in the AWS ${parts.presigned ? 'query-string parameters' : 'Authorization'}.`,
    );
  }

  // Only 64 hex digits can ever match; anything else is simply a wrong signature.
  if (!/^[0-9a-fA-F]{64}$/.test(parts.signature)) return invalid(BAD_SIGNATURE);

  const creds = opts.lookup(accessKeyId);
  if (!creds) return fail('UnrecognizedClientException', INVALID_TOKEN);

  // --- Session token: must be exactly the one of these credentials, or absent for a long-term key.
  // (The JS SDK's presign moves X-Amz-Security-Token into the query.)
  let token = single(req.headers['x-amz-security-token']);
  if (token === undefined) {
    const p = findParam(params, 'X-Amz-Security-Token');
    if (p) token = safeDecode(p.rawValue);
  }
  if (!sameToken(creds.sessionToken, token)) return fail('UnrecognizedClientException', INVALID_TOKEN);
  // Only the holder of the right token learns that it expired.
  if (creds.expiresAt !== undefined && opts.now >= creds.expiresAt) return fail('ExpiredTokenException', EXPIRED_TOKEN);

  return { parts, params, accessKeyId, scopeDate, region, service, signedHeaderNames, creds };
}

/** The signature over the canonical request, then the body against the hash it vouches for. */
function verifySignature(req: SignedRequest, head: HeadContext): VerifyResult {
  const { parts, params, accessKeyId, scopeDate, region, service, signedHeaderNames, creds } = head;
  const { amzDate } = parts;

  // --- Payload hash ---------------------------------------------------------------------------
  // Both SDKs put the x-amz-content-sha256 header's value into the canonical request verbatim
  // when it is present (the JS SDK sends it on every request) and hash the body otherwise. The
  // JS SDK's presign hoists x-amz-* headers into the query, so the query parameter counts too.
  let declaredHash = single(req.headers['x-amz-content-sha256']);
  if (declaredHash === undefined && parts.presigned) {
    const p = findParamCaseInsensitive(params, 'x-amz-content-sha256');
    if (p) declaredHash = safeDecode(p.rawValue);
  }
  let bodyHash: string | undefined;
  const payloadHash = declaredHash ?? (bodyHash = sha256Hex(req.body));

  // --- Canonical request and signature --------------------------------------------------------
  const expected = Buffer.from(parts.signature, 'hex');
  const signingKey = getSigningKey(creds.secretAccessKey, parts.credential, scopeDate, region, service);
  const stringToSignPrefix = `${ALGORITHM}\n${amzDate}\n${scopeDate}/${region}/${service}/${TERMINATOR}\n`;
  let matched = false;
  try {
    const start = `${req.method}\n${canonicalizePath(req.rawPath)}\n`;
    const tail = `\n${canonicalHeaders(signedHeaderNames, req.headers)}\n${signedHeaderNames.join(';')}\n${payloadHash}`;
    for (const query of canonicalQueryForms(params)) {
      const canonicalRequest = start + query + tail;
      const stringToSign = stringToSignPrefix + createHash('sha256').update(canonicalRequest, 'utf8').digest('hex');
      const actual = createHmac('sha256', signingKey).update(stringToSign, 'utf8').digest();
      if (timingSafeEqual(actual, expected)) {
        matched = true;
        break;
      }
    }
  } catch {
    // Only reachable with malformed input (encodeURIComponent throws on unpaired surrogates),
    // which no client could have signed.
    matched = false;
  }
  if (!matched) return invalid(BAD_SIGNATURE);

  // --- The body must be the one the signature vouches for -------------------------------------
  if (declaredHash !== undefined && declaredHash !== UNSIGNED_PAYLOAD) {
    if (declaredHash.startsWith('STREAMING-')) {
      // aws-chunked uploads (S3 only) carry per-chunk signatures this server does not implement.
      return invalid(`x-amz-content-sha256 value '${declaredHash}' is not supported by this service.`);
    }
    bodyHash ??= sha256Hex(req.body);
    if (declaredHash.toLowerCase() !== bodyHash) {
      return invalid("The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
  }
  return { ok: true, accessKeyId, region, service };
}

// ------------------------------------------------------------------------------------------------
// Authorization header / presign parameters

function headerParts(value: string, headers: SignedRequest['headers']): AuthParts | Failure {
  const space = value.indexOf(' ');
  const algorithm = space < 0 ? value : value.slice(0, space);
  let credential: string | undefined;
  let signedHeaders: string | undefined;
  let signature: string | undefined;
  // "Credential=..., SignedHeaders=..., Signature=..." — clients differ on spaces after commas, and
  // AWS takes a space alone as a separator too (no part's value holds a space or a comma).
  for (const item of space < 0 ? [] : value.slice(space + 1).split(/[,\s]/)) {
    const eq = item.indexOf('=');
    if (eq < 0) continue;
    const name = item.slice(0, eq).trim();
    const v = item.slice(eq + 1).trim();
    if (name === 'Credential') credential = v;
    else if (name === 'SignedHeaders') signedHeaders = v;
    else if (name === 'Signature') signature = v;
  }
  const amzDateHeader = single(headers['x-amz-date']);
  const dateHeader = amzDateHeader === undefined ? single(headers.date) : undefined;

  // AWS lists every missing piece in one message and echoes the header; do the same.
  const missing: string[] = [];
  if (!credential) missing.push("Authorization header requires 'Credential' parameter.");
  if (!signature) missing.push("Authorization header requires 'Signature' parameter.");
  if (!signedHeaders) missing.push("Authorization header requires 'SignedHeaders' parameter.");
  if (amzDateHeader === undefined && dateHeader === undefined) {
    missing.push("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
  }
  // AWS names the missing parts first, whatever the first word (`Authorization: X` lists them all).
  if (missing.length > 0) return incomplete(`${missing.join(' ')} Authorization=${value}`);
  if (algorithm !== ALGORITHM) {
    return incomplete(
      `Unsupported Authorization algorithm '${algorithm}': only ${ALGORITHM} is supported. Authorization=${value}`,
    );
  }

  let dateMs: number;
  let amzDate: string;
  if (amzDateHeader !== undefined) {
    dateMs = parseIsoBasic(amzDateHeader);
    amzDate = amzDateHeader;
  } else {
    // Only the `Date` header: it carries an HTTP date (botocore sends RFC 2822 there), but the
    // string to sign always uses the ISO-8601 basic form of the same instant.
    dateMs = parseIsoBasic(dateHeader!);
    if (Number.isNaN(dateMs)) dateMs = Date.parse(dateHeader!);
    amzDate = Number.isNaN(dateMs) ? dateHeader! : isoBasic(dateMs);
  }
  if (Number.isNaN(dateMs)) {
    return incomplete(
      `Date must be in ISO-8601 'basic format'. Got '${amzDate}'. See http://en.wikipedia.org/wiki/ISO_8601`,
    );
  }
  return {
    presigned: false,
    credential: credential!,
    signedHeaders: signedHeaders!,
    signature: signature!,
    amzDate,
    dateMs,
    expiresSeconds: 0,
  };
}

function presignParts(params: QueryParam[]): AuthParts | Failure {
  const get = (name: string): string | undefined => {
    const p = findParam(params, name);
    return p ? safeDecode(p.rawValue) : undefined;
  };
  const algorithm = get('X-Amz-Algorithm');
  const credential = get('X-Amz-Credential');
  const amzDate = get('X-Amz-Date');
  const expires = get('X-Amz-Expires');
  const signedHeaders = get('X-Amz-SignedHeaders');
  const signature = get('X-Amz-Signature');
  const missing: string[] = [];
  if (!algorithm) missing.push("'X-Amz-Algorithm'");
  if (!credential) missing.push("'X-Amz-Credential'");
  if (!signature) missing.push("'X-Amz-Signature'");
  if (!amzDate) missing.push("'X-Amz-Date'");
  if (!signedHeaders) missing.push("'X-Amz-SignedHeaders'");
  if (!expires) missing.push("'X-Amz-Expires'");
  if (missing.length > 0) {
    return incomplete(`AWS query-string parameters must include ${missing.join(', ')}. Re-examine the query-string parameters.`);
  }
  if (algorithm !== ALGORITHM) {
    return incomplete(`Unsupported X-Amz-Algorithm '${algorithm}': only ${ALGORITHM} is supported.`);
  }
  const dateMs = parseIsoBasic(amzDate!);
  if (Number.isNaN(dateMs)) {
    return incomplete(
      `Date must be in ISO-8601 'basic format'. Got '${amzDate}'. See http://en.wikipedia.org/wiki/ISO_8601`,
    );
  }
  const expiresSeconds = /^\d{1,7}$/.test(expires!) ? Number(expires) : NaN;
  if (!(expiresSeconds >= 1 && expiresSeconds <= MAX_PRESIGN_EXPIRES_SECONDS)) {
    return incomplete(
      `X-Amz-Expires must be a whole number of seconds between 1 and ${MAX_PRESIGN_EXPIRES_SECONDS} (one week), got '${expires}'.`,
    );
  }
  return {
    presigned: true,
    credential: credential!,
    signedHeaders: signedHeaders!,
    signature: signature!,
    amzDate: amzDate!,
    dateMs,
    expiresSeconds,
  };
}

// ------------------------------------------------------------------------------------------------
// Canonical request pieces

/**
 * Canonical URI, exactly as @smithy/signature-v4's getCanonicalPath (uriEscapePath: true) does it:
 * drop empty and '.' segments, let '..' pop, keep a leading '/' and (if any segment is left) a
 * trailing '/', then URI-encode the already-encoded path once more ("double encoding": the SDK
 * serializer put `%3A` into request.path, the node handler sent it as is, the signer turned it into
 * `%253A`). botocore's _normalize_url_path is the same: utils.remove_dot_segments (identical
 * segment rules) then quote(path, safe='/~'), which keeps the same unreserved set A-Za-z0-9-_.~
 * plus '/', UTF-8 encodes the rest, and so also double-encodes. The one divergence is an empty
 * path ('' → '' in the SDK, '/' in botocore); it cannot occur on the wire (the SDK's HttpRequest
 * itself turns '' into '/'), so '' is treated as '/'. Hence a single path form serves both clients.
 */
function canonicalizePath(rawPath: string): string {
  let path = rawPath === '' ? '/' : rawPath;
  // Fast path: no empty, '.' or '..' segment means normalisation would return the path unchanged.
  if (/\/\/|(?:^|\/)\.\.?(?:\/|$)/.test(path)) {
    const segments: string[] = [];
    for (const segment of path.split('/')) {
      if (segment === '' || segment === '.') continue;
      if (segment === '..') segments.pop();
      else segments.push(segment);
    }
    path =
      (path.startsWith('/') ? '/' : '') + segments.join('/') + (segments.length > 0 && path.endsWith('/') ? '/' : '');
  }
  // escapeUri(path) with '%2F' turned back into '/'; since '%' itself becomes '%25', every '%2F' in
  // the result came from a '/'.
  return escapeUri(path).replace(/%2F/g, '/');
}

/**
 * The canonical query strings a genuine client may have signed for this wire query, most likely
 * first. Produced lazily: the first form is all a successful request from the JS SDK or botocore's
 * own serializers needs; the others are only computed after a mismatch, and only if they differ.
 *
 *  1. JS SDK (@smithy getCanonicalQuery): the signer sees the *decoded* query object and encodes
 *     each key and value with escapeUri (RFC 3986: unreserved kept, everything else %XX, so space
 *     is %20 and '+' is %2B), sorts by key then value, and skips X-Amz-Signature (case-insensitive).
 *     A key with a null value goes on the wire as a bare `key` but is left out of the canonical
 *     string, so a bare key is omitted here too.
 *  2. botocore with a query already in the URL (how boto3/CLI send every operation, and presigned
 *     URLs): it splits the raw query on '&' and '=' and sorts the pairs *without decoding or
 *     re-encoding*; a bare `key` becomes `key=`. For queries botocore encoded itself
 *     (percent_encode, same unreserved set) this equals form 1; it differs when the URL carries
 *     non-canonical escapes (lowercase hex, '+', unescaped '*' etc.) that were signed as they are.
 *  3. Form-style '+' meaning space: botocore's AWSRequest(params=...) is sent through urlencode
 *     (quote_plus, so 'a b' → 'a+b') but canonicalised from the params with quote ('a%20b').
 *     Only tried when the raw query contains '+'.
 */
function* canonicalQueryForms(params: QueryParam[]): Generator<string> {
  const sdk = canonicalQuerySdk(params, false);
  yield sdk;
  const raw = canonicalQueryRaw(params);
  if (raw !== sdk) yield raw;
  if (params.some((p) => p.rawKey.includes('+') || p.rawValue.includes('+'))) {
    const plus = canonicalQuerySdk(params, true);
    if (plus !== sdk && plus !== raw) yield plus;
  }
}

function canonicalQuerySdk(params: QueryParam[], plusIsSpace: boolean): string {
  if (params.length === 0) return '';
  const pairs: Array<[string, string]> = [];
  for (const p of params) {
    if (!p.hasValue) continue;
    const key = plusIsSpace ? safeDecode(p.rawKey.replace(/\+/g, ' ')) : p.key;
    if (key.toLowerCase() === 'x-amz-signature') continue;
    const value = safeDecode(plusIsSpace ? p.rawValue.replace(/\+/g, ' ') : p.rawValue);
    pairs.push([escapeUri(key), escapeUri(value)]);
  }
  return joinSorted(pairs);
}

function canonicalQueryRaw(params: QueryParam[]): string {
  if (params.length === 0) return '';
  const pairs: Array<[string, string]> = [];
  for (const p of params) {
    if (p.key.toLowerCase() === 'x-amz-signature') continue;
    pairs.push([p.rawKey, p.rawValue]);
  }
  return joinSorted(pairs);
}

function joinSorted(pairs: Array<[string, string]>): string {
  // Code-unit order, as JS's default sort and Python's sorted() give for these ASCII strings.
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  let out = '';
  for (let i = 0; i < pairs.length; i++) out += (i === 0 ? '' : '&') + pairs[i][0] + '=' + pairs[i][1];
  return out;
}

/**
 * "name:value\n" for each signed header, in the order the client listed them (both SDKs list them
 * sorted, and the canonical request must use the client's order to reproduce its bytes). Values
 * are trimmed with whitespace runs collapsed, as both SDKs do; repeated headers (string[]) are
 * joined with ','. Node has already joined most repeated headers with ', ', which is what a
 * client signing the same header twice cannot be told apart from; that is the spec's ambiguity.
 */
function canonicalHeaders(names: string[], headers: SignedRequest['headers']): string {
  let out = '';
  for (const name of names) {
    let v = headers[name];
    // HTTP/2 carries the host as the :authority pseudo-header; clients still sign it as `host`.
    if (v === undefined && name === 'host') v = headers[':authority'];
    let value: string;
    if (v === undefined) value = '';
    else if (typeof v === 'string') value = trimAll(v);
    else value = v.map(trimAll).join(',');
    out += name + ':' + value + '\n';
  }
  return out;
}

function trimAll(v: string): string {
  // Fast path: header values from Node are already trimmed and rarely contain runs of whitespace.
  if (!/[\t\r\n]| {2}|^ | $/.test(v)) return v;
  return v.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').replace(/^ | $/g, '');
}

// ------------------------------------------------------------------------------------------------
// Signing-key cache

/**
 * kSigning = HMAC chain over (secret, date, region, service). It only changes daily per key, so
 * it is cached. The key is the credential string itself ("AKID/date/region/service/aws4_request",
 * already in hand, so no string is built per request); the entry remembers the secret so a rotated
 * or reused key id never gets a stale key. Bounded FIFO: oldest entries go first, which with daily
 * dates is what goes stale anyway.
 */
const SIGNING_KEY_CACHE_MAX = 1024;
const signingKeys = new Map<string, { secret: string; key: Buffer }>();

function getSigningKey(secret: string, credential: string, date: string, region: string, service: string): Buffer {
  const hit = signingKeys.get(credential);
  if (hit !== undefined && hit.secret === secret) return hit.key;
  let key = createHmac('sha256', 'AWS4' + secret).update(date).digest();
  key = createHmac('sha256', key).update(region).digest();
  key = createHmac('sha256', key).update(service).digest();
  key = createHmac('sha256', key).update(TERMINATOR).digest();
  if (hit === undefined && signingKeys.size >= SIGNING_KEY_CACHE_MAX) {
    signingKeys.delete(signingKeys.keys().next().value!);
  }
  signingKeys.set(credential, { secret, key });
  return key;
}

// ------------------------------------------------------------------------------------------------
// Small helpers

function parseQuery(rawQuery: string): QueryParam[] {
  if (rawQuery === '') return [];
  const out: QueryParam[] = [];
  for (const item of rawQuery.split('&')) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    const rawKey = eq < 0 ? item : item.slice(0, eq);
    out.push({ rawKey, rawValue: eq < 0 ? '' : item.slice(eq + 1), hasValue: eq >= 0, key: safeDecode(rawKey) });
  }
  return out;
}

function findParam(params: QueryParam[], key: string): QueryParam | undefined {
  for (const p of params) if (p.key === key) return p;
  return undefined;
}

function findParamCaseInsensitive(params: QueryParam[], lowerKey: string): QueryParam | undefined {
  for (const p of params) if (p.key.toLowerCase() === lowerKey) return p;
  return undefined;
}

/** Percent-decoding that never throws: malformed escapes stay as they are (and won't verify). */
function safeDecode(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** @smithy's escapeUri: encodeURIComponent plus the four sub-delims it leaves alone. */
function escapeUri(s: string): string {
  const e = encodeURIComponent(s);
  return /[!'()*]/.test(e) ? e.replace(/[!'()*]/g, hexEncode) : e;
}
const hexEncode = (c: string) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`;

/** Constant-time equality of two optional tokens (digests, so lengths leak nothing either). */
function sameToken(expected: string | undefined, presented: string | undefined): boolean {
  if (expected === undefined || presented === undefined) return expected === presented;
  const a = createHash('sha256').update(expected, 'utf8').digest();
  const b = createHash('sha256').update(presented, 'utf8').digest();
  return timingSafeEqual(a, b);
}

function single(v: string | string[] | undefined): string | undefined {
  return typeof v === 'string' ? v : v?.[0];
}

function sha256Hex(body: Buffer): string {
  return body.length === 0 ? EMPTY_SHA256 : createHash('sha256').update(body).digest('hex');
}

/** "YYYYMMDDTHHMMSSZ" → ms, NaN unless it is exactly that shape and a real date. */
function parseIsoBasic(s: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return NaN;
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  // Date.UTC rolls 20261340 over into the next year; a round trip rejects such dates.
  return isoBasic(ms) === s ? ms : NaN;
}

function isoBasic(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2026-11-26T05:00:00.000Z
  return (
    iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + 'T' + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19) + 'Z'
  );
}

function describeSkew(ms: number): string {
  return ms % 60000 === 0 ? `${ms / 60000} min.` : `${ms / 1000} sec.`;
}
