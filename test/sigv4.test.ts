// SigV4 verifier tests. Requests are signed by the real clients — @smithy/signature-v4 (the AWS SDK
// for JavaScript v3 signer), the Pinpoint SDK client itself, and botocore when python3 has it — and
// then handed to verifySigV4 the way a Node server would see them (encoded path from the request
// line, raw query, lower-cased headers, body bytes). No server is started.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { PinpointClient, UntagResourceCommand, PutEventsCommand } from '@aws-sdk/client-pinpoint';
import {
  MAX_CLOCK_SKEW_MS,
  verifySigV4,
  type Credentials,
  type SignedRequest,
  type VerifyOptions,
  type VerifyResult,
} from '../src/iam/sigv4.js';

const KEY: Credentials = { accessKeyId: 'PSAKTESTKEY0000000001', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
const PORT = 4566;
const HOST = `127.0.0.1:${PORT}`;
/** 2026-11-26T05:30:00Z, the server's "now" unless a test says otherwise. */
const NOW = Date.UTC(2026, 10, 26, 5, 30, 0);
const MIN = 60_000;
const ARN_PATH = '/v1/tags/arn%3Aaws%3Amobiletargeting%3Aus-east-1%3A123456789012%3Aapps%2Fabc';

const lookup = (id: string): Credentials | undefined => (id === KEY.accessKeyId ? KEY : undefined);
const opts = (over: Partial<VerifyOptions> = {}): VerifyOptions => ({
  lookup,
  now: NOW,
  services: ['mobiletargeting'],
  ...over,
});

type Query = Record<string, string | string[] | null>;
interface SdkRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query: Query;
  headers: Record<string, string>;
  body?: string;
}

function signer(secret = KEY.secretAccessKey, service = 'mobiletargeting'): SignatureV4 {
  return new SignatureV4({
    credentials: { accessKeyId: KEY.accessKeyId, secretAccessKey: secret },
    region: 'us-east-1',
    service,
    sha256: Sha256,
  });
}

/** An HttpRequest as the SDK's serializers build it: `path` is already percent-encoded. */
function sdkRequest(over: Partial<SdkRequest> = {}): SdkRequest {
  return {
    method: 'POST',
    protocol: 'http:',
    hostname: '127.0.0.1',
    port: PORT,
    path: '/v1/apps/abc/events',
    query: {},
    headers: { host: HOST, 'content-type': 'application/json' },
    body: JSON.stringify({ BatchItem: { ep1: { Endpoint: {}, Events: { e1: { EventType: 'session.start' } } } } }),
    ...over,
  };
}

// Copies of @smithy/core's escapeUri + buildQueryString, which @smithy/node-http-handler uses to
// put request.query on the wire (not imported: @smithy/core is not a direct dependency).
const escapeUri = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
function buildQueryString(query: Query): string {
  const parts: string[] = [];
  for (const k of Object.keys(query).sort()) {
    const value = query[k];
    const key = escapeUri(k);
    if (Array.isArray(value)) for (const v of value) parts.push(`${key}=${escapeUri(v)}`);
    else parts.push(value || typeof value === 'string' ? `${key}=${escapeUri(value)}` : key);
  }
  return parts.join('&');
}

/** What a Node server sees for a signed SDK request. */
function onTheWire(r: { method: string; path: string; query?: unknown; headers: Record<string, string>; body?: unknown }): SignedRequest {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) headers[k.toLowerCase()] = String(v).trim();
  // The SDK's JSON body is a Uint8Array subclass whose valueOf() returns a string (and warns), so
  // take its bytes explicitly, as the HTTP handler writes them.
  const b = r.body;
  const body =
    b === undefined ? Buffer.alloc(0) : b instanceof Uint8Array ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : Buffer.from(String(b));
  return { method: r.method, rawPath: r.path, rawQuery: buildQueryString((r.query ?? {}) as Query), headers, body };
}

async function signed(over: Partial<SdkRequest> = {}, signingDate = new Date(NOW), s = signer()): Promise<SignedRequest> {
  return onTheWire(await s.sign(sdkRequest(over), { signingDate }));
}

function assertOk(res: VerifyResult): void {
  assert.deepEqual(res, { ok: true, accessKeyId: KEY.accessKeyId, region: 'us-east-1', service: 'mobiletargeting' });
}
function assertFail(res: VerifyResult, code: string, message?: string | RegExp): void {
  assert.equal(res.ok, false, 'expected verification to fail');
  if (res.ok) return;
  assert.equal(res.code, code, `code (message: ${res.message})`);
  if (typeof message === 'string') assert.equal(res.message, message);
  else if (message) assert.match(res.message, message);
}
const BAD_SIGNATURE = /^The request signature we calculated does not match the signature you provided\./;

test('MAX_CLOCK_SKEW_MS is 15 minutes', () => {
  assert.equal(MAX_CLOCK_SKEW_MS, 15 * MIN);
});

test('header-signed JSON POST verifies', async () => {
  const req = await signed();
  assert.match(String(req.headers.authorization), /^AWS4-HMAC-SHA256 Credential=PSAKTESTKEY0000000001\/20261126\/us-east-1\/mobiletargeting\/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/);
  assertOk(verifySigV4(req, opts()));
  // Second call hits the signing-key cache and must give the same answer.
  assertOk(verifySigV4(req, opts()));
});

test('encoded ARN path (double-encoded in the canonical URI) with repeated query keys verifies', async () => {
  const req = await signed({ method: 'DELETE', path: ARN_PATH, query: { tagKeys: ['b', 'a'] }, body: undefined });
  assert.equal(req.rawPath, ARN_PATH);
  assert.equal(req.rawQuery, 'tagKeys=b&tagKeys=a');
  assertOk(verifySigV4(req, opts()));
});

test('spaces, unicode and sub-delims in path and query verify', async () => {
  const req = await signed({
    method: 'GET',
    path: '/v1/apps/caf%C3%A9/x%20y/%E2%9C%93',
    query: { q: 'hello world', name: 'héllo ✓ 日本', 'weird key*': "it's (ok)!", plus: 'a+b', empty: '' },
    body: undefined,
  });
  assert.match(req.rawQuery, /q=hello%20world/);
  assertOk(verifySigV4(req, opts()));
});

test('path normalisation matches the SDK (empty and dot segments, trailing slash)', async () => {
  for (const path of ['/v1//apps/./abc/', '/v1/apps/x/../abc', '/', '/v1/apps/abc/']) {
    const req = await signed({ method: 'GET', path, body: undefined });
    assertOk(verifySigV4(req, opts()));
  }
});

test('presigned URL verifies, and fails once expired', async () => {
  const p = await signer().presign(sdkRequest({ method: 'GET', path: ARN_PATH, query: { tagKeys: ['a', 'b'] }, body: undefined }), {
    signingDate: new Date(NOW),
    expiresIn: 300,
  });
  const req = onTheWire(p);
  assert.equal(req.headers.authorization, undefined);
  assert.match(req.rawQuery, /X-Amz-Signature=[0-9a-f]{64}/);
  assertOk(verifySigV4(req, opts()));
  // Still fine 4 minutes later (presigned URLs are not bound by the 15-minute skew window)...
  assertOk(verifySigV4(req, opts({ now: NOW + 4 * MIN })));
  // ...but not after X-Amz-Expires.
  assertFail(verifySigV4(req, opts({ now: NOW + 6 * MIN })), 'InvalidSignatureException', /^Signature expired: 20261126T053000Z \+ 300 sec\./);
  // A presigned URL dated in the future beyond the skew is refused like a header-signed one.
  assertFail(verifySigV4(req, opts({ now: NOW - 16 * MIN })), 'InvalidSignatureException', /^Signature not yet current/);
  // Tampering with a presigned query parameter breaks the signature.
  assertFail(verifySigV4({ ...req, rawQuery: req.rawQuery.replace('tagKeys=b', 'tagKeys=c') }, opts()), 'InvalidSignatureException', BAD_SIGNATURE);
  // Missing presign parameters are named.
  const noDate = { ...req, rawQuery: req.rawQuery.replace(/&?X-Amz-Date=[^&]*/, '') };
  assertFail(verifySigV4(noDate, opts()), 'IncompleteSignatureException', /'X-Amz-Date'/);
});

test('a long-lived presigned URL past 15 minutes still verifies', async () => {
  const p = await signer().presign(sdkRequest({ method: 'GET', body: undefined }), { signingDate: new Date(NOW), expiresIn: 3600 });
  assertOk(verifySigV4(onTheWire(p), opts({ now: NOW + 50 * MIN })));
});

test('wrong secret → signature mismatch', async () => {
  const req = await signed({}, new Date(NOW), signer('not-the-secret'));
  assertFail(verifySigV4(req, opts()), 'InvalidSignatureException', BAD_SIGNATURE);
});

test('unknown key → UnrecognizedClientException', async () => {
  const req = await signed();
  assertFail(verifySigV4(req, opts({ lookup: () => undefined })), 'UnrecognizedClientException', 'The security token included in the request is invalid.');
});

test('tampered body → content hash mismatch', async () => {
  const req = await signed();
  const res = verifySigV4({ ...req, body: Buffer.from('{"BatchItem":{}}') }, opts());
  assertFail(res, 'InvalidSignatureException', "The provided 'x-amz-content-sha256' header does not match what was computed.");
});

test('tampered body without x-amz-content-sha256 → signature mismatch', async () => {
  // applyChecksum: false is how a client omits the header; the body hash then goes into the signature.
  const s = new SignatureV4({ credentials: KEY, region: 'us-east-1', service: 'mobiletargeting', sha256: Sha256, applyChecksum: false });
  const req = await signed({}, new Date(NOW), s);
  assert.equal(req.headers['x-amz-content-sha256'], undefined);
  assertOk(verifySigV4(req, opts()));
  assertFail(verifySigV4({ ...req, body: Buffer.from('{}') }, opts()), 'InvalidSignatureException', BAD_SIGNATURE);
});

test('tampered path and query → signature mismatch', async () => {
  const req = await signed({ method: 'DELETE', path: ARN_PATH, query: { tagKeys: ['a', 'b'] }, body: undefined });
  assertOk(verifySigV4(req, opts()));
  assertFail(verifySigV4({ ...req, rawPath: ARN_PATH.replace('abc', 'abd') }, opts()), 'InvalidSignatureException', BAD_SIGNATURE);
  // Decoded the same but signed double-encoded: '%3A' vs ':' are different canonical URIs.
  assertFail(verifySigV4({ ...req, rawPath: decodeURIComponent(ARN_PATH) }, opts()), 'InvalidSignatureException', BAD_SIGNATURE);
  assertFail(verifySigV4({ ...req, rawQuery: 'tagKeys=a&tagKeys=c' }, opts()), 'InvalidSignatureException', BAD_SIGNATURE);
  assertFail(verifySigV4({ ...req, rawQuery: 'tagKeys=a' }, opts()), 'InvalidSignatureException', BAD_SIGNATURE);
  assertFail(verifySigV4({ ...req, method: 'GET' }, opts()), 'InvalidSignatureException', BAD_SIGNATURE);
});

test('tampered signed header → signature mismatch', async () => {
  const req = await signed();
  assertFail(verifySigV4({ ...req, headers: { ...req.headers, 'content-type': 'text/plain' } }, opts()), 'InvalidSignatureException', BAD_SIGNATURE);
  // Unsigned headers may change freely (proxies add them).
  assertOk(verifySigV4({ ...req, headers: { ...req.headers, 'user-agent': 'x', 'x-forwarded-for': '1.2.3.4' } }, opts()));
});

test('missing authentication', async () => {
  const req = await signed();
  const { authorization: _, ...headers } = req.headers;
  assertFail(verifySigV4({ ...req, headers }, opts()), 'MissingAuthenticationTokenException', 'Missing Authentication Token');
});

test('malformed Authorization headers are IncompleteSignatureException naming the problem', async () => {
  const req = await signed();
  const auth = String(req.headers.authorization);
  const withAuth = (a: string, extra: Record<string, string> = {}) => ({ ...req, headers: { ...req.headers, authorization: a, ...extra } });

  assertFail(verifySigV4(withAuth(auth.replace(/SignedHeaders=[^,]*, /, '')), opts()), 'IncompleteSignatureException', /requires 'SignedHeaders' parameter/);
  assertFail(verifySigV4(withAuth(auth.replace(/, Signature=.*$/, '')), opts()), 'IncompleteSignatureException', /requires 'Signature' parameter/);
  assertFail(verifySigV4(withAuth(auth.replace(/Credential=[^,]*, /, '')), opts()), 'IncompleteSignatureException', /requires 'Credential' parameter/);
  assertFail(verifySigV4(withAuth(auth.replace('AWS4-HMAC-SHA256', 'AWS4-ECDSA-P256-SHA256')), opts()), 'IncompleteSignatureException', /AWS4-ECDSA-P256-SHA256/);
  assertFail(verifySigV4(withAuth('Bearer abc'), opts()), 'IncompleteSignatureException', /Bearer/);
  assertFail(verifySigV4(withAuth(auth.replace('/aws4_request', '')), opts()), 'IncompleteSignatureException', /Credential should be of the form/);
  assertFail(verifySigV4(withAuth(auth.replace('/aws4_request', '/aws5_request')), opts()), 'IncompleteSignatureException', /valid terminator: 'aws4_request', not 'aws5_request'/);
  assertFail(verifySigV4(withAuth(auth.replace('/20261126/', '/2026-11-26/')), opts()), 'IncompleteSignatureException', /yyyyMMdd/);
  // Malformed signature value: never matches.
  assertFail(verifySigV4(withAuth(auth.replace(/Signature=.*$/, 'Signature=xyz')), opts()), 'InvalidSignatureException', BAD_SIGNATURE);

  // Missing x-amz-date (and no Date header).
  const { 'x-amz-date': _d, ...noDate } = req.headers;
  assertFail(verifySigV4({ ...req, headers: noDate }, opts()), 'IncompleteSignatureException', /'X-Amz-Date' or a 'Date' header/);
  assertFail(verifySigV4(withAuth(auth, { 'x-amz-date': '2026-11-26T05:30:00Z' }), opts()), 'IncompleteSignatureException', /ISO-8601 'basic format'/);
});

test('credential scoped to another service is refused with AWS wording', async () => {
  const req = await signed({}, new Date(NOW), signer(KEY.secretAccessKey, 'kinesis'));
  assertFail(verifySigV4(req, opts()), 'InvalidSignatureException', "Credential should be scoped to correct service: 'mobiletargeting'.");
  // The same request is fine for an endpoint that accepts that service.
  const res = verifySigV4(req, opts({ services: ['kinesis', 'firehose'] }));
  assert.deepEqual(res, { ok: true, accessKeyId: KEY.accessKeyId, region: 'us-east-1', service: 'kinesis' });
});

test('clock skew: ±14 minutes passes, ±16 minutes fails with AWS-style messages', async () => {
  for (const minutes of [14, -14]) {
    assertOk(verifySigV4(await signed({}, new Date(NOW + minutes * MIN)), opts()));
  }
  assertFail(
    verifySigV4(await signed({}, new Date(NOW - 16 * MIN)), opts()),
    'InvalidSignatureException',
    'Signature expired: 20261126T051400Z is now earlier than 20261126T051500Z (20261126T053000Z - 15 min.)',
  );
  assertFail(
    verifySigV4(await signed({}, new Date(NOW + 16 * MIN)), opts()),
    'InvalidSignatureException',
    'Signature not yet current: 20261126T054600Z is still later than 20261126T054500Z (20261126T053000Z + 15 min.)',
  );
  // A custom window.
  assertFail(verifySigV4(await signed({}, new Date(NOW - 6 * MIN)), opts({ maxSkewMs: 5 * MIN })), 'InvalidSignatureException', /\(20261126T053000Z - 5 min\.\)$/);
});

test('credential scope date must match x-amz-date', async () => {
  // Signed at 23:59:50 on the 25th; the request claims 00:00:10 on the 26th (within skew of now).
  const req = await signed({}, new Date(Date.UTC(2026, 10, 25, 23, 59, 50)));
  const moved = { ...req, headers: { ...req.headers, 'x-amz-date': '20261126T000010Z' } };
  assertFail(
    verifySigV4(moved, opts({ now: Date.UTC(2026, 10, 26, 0, 0, 0) })),
    'InvalidSignatureException',
    "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261125' != '20261126', from '20261126T000010Z'.",
  );
});

test('host must be signed', async () => {
  // Sign without a host header, then send one (as every HTTP/1.1 client must).
  const r = sdkRequest();
  const { host: _, ...noHost } = r.headers;
  const req = onTheWire(await signer().sign({ ...r, headers: noHost }, { signingDate: new Date(NOW) }));
  assertFail(verifySigV4({ ...req, headers: { ...req.headers, host: HOST } }, opts()), 'InvalidSignatureException', /'Host' must be a 'SignedHeader'/);
});

test('x-amz-content-sha256: UNSIGNED-PAYLOAD accepted, mismatched hash rejected, matching hash accepted', async () => {
  const unsigned = await signed({ headers: { host: HOST, 'content-type': 'application/json', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
  assertOk(verifySigV4(unsigned, opts()));
  assertOk(verifySigV4({ ...unsigned, body: Buffer.from('anything at all') }, opts()));

  const otherHash = createHash('sha256').update('a different body').digest('hex');
  const mismatched = await signed({ headers: { host: HOST, 'content-type': 'application/json', 'x-amz-content-sha256': otherHash } });
  assertFail(verifySigV4(mismatched, opts()), 'InvalidSignatureException', /x-amz-content-sha256' header does not match/);

  const body = '{"ok":true}';
  const rightHash = createHash('sha256').update(body).digest('hex');
  assertOk(verifySigV4(await signed({ body, headers: { host: HOST, 'x-amz-content-sha256': rightHash } }), opts()));
});

test('HTTP/2 request: :authority stands in for host', async () => {
  const req = await signed();
  const { host, ...rest } = req.headers;
  const h2 = {
    ...req,
    headers: { ...rest, ':authority': String(host), ':method': 'POST', ':path': req.rawPath, ':scheme': 'http' },
  };
  assertOk(verifySigV4(h2, opts()));
  assertFail(verifySigV4({ ...h2, headers: { ...h2.headers, ':authority': 'evil.example:443' } }, opts()), 'InvalidSignatureException', BAD_SIGNATURE);
});

test('both Authorization header and presign parameters → refused', async () => {
  const req = await signed();
  assertFail(verifySigV4({ ...req, rawQuery: 'X-Amz-Algorithm=AWS4-HMAC-SHA256' }, opts()), 'IncompleteSignatureException', /Only one auth mechanism/);
});

test('the Pinpoint SDK client itself produces requests that verify', async () => {
  const captured: Array<{ method: string; path: string; query?: unknown; headers: Record<string, string>; body?: unknown }> = [];
  const client = new PinpointClient({
    region: 'us-east-1',
    endpoint: `http://${HOST}`,
    credentials: KEY,
    maxAttempts: 1,
    requestHandler: {
      handle: async (request: { method: string; path: string; query?: unknown; headers: Record<string, string>; body?: unknown }) => {
        captured.push(request);
        throw new Error('captured');
      },
    },
  });
  const arn = 'arn:aws:mobiletargeting:us-east-1:123456789012:apps/abc';
  await assert.rejects(client.send(new UntagResourceCommand({ ResourceArn: arn, TagKeys: ['a', 'b c'] })), /captured/);
  await assert.rejects(
    client.send(new PutEventsCommand({ ApplicationId: 'abc', EventsRequest: { BatchItem: { ep: { Endpoint: {}, Events: { e: { EventType: 'x', Timestamp: '2026-11-26T05:30:00Z' } } } } } })),
    /captured/,
  );
  assert.equal(captured.length, 2);
  const [untag, put] = captured.map(onTheWire);
  assert.equal(untag.rawPath, ARN_PATH);
  assert.equal(untag.rawQuery, 'tagKeys=a&tagKeys=b%20c');
  assert.equal(put.rawPath, '/v1/apps/abc/events');
  for (const req of [untag, put]) assertOk(verifySigV4(req, opts({ now: Date.now() })));
});

// ------------------------------------------------------------------------------------------------
// botocore (AWS CLI v1 / boto3)

const BOTOCORE_SCRIPT = String.raw`
import json, sys, datetime
import botocore.auth
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

spec = json.load(sys.stdin)
fixed = datetime.datetime.strptime(spec['timestamp'], '%Y%m%dT%H%M%SZ')
botocore.auth.get_current_datetime = lambda *a, **k: fixed
creds = Credentials(spec['accessKeyId'], spec['secretAccessKey'])
out = []
for case in spec['cases']:
    req = AWSRequest(method=case['method'], url=case['url'], data=case.get('body', '').encode('utf-8'),
                     headers=case.get('headers', {}), params=case.get('params'))
    if case.get('presign'):
        SigV4QueryAuth(creds, 'mobiletargeting', 'us-east-1', expires=300).add_auth(req)
    else:
        SigV4Auth(creds, 'mobiletargeting', 'us-east-1').add_auth(req)
    prepared = req.prepare()
    out.append({'url': prepared.url, 'headers': dict(prepared.headers.items()), 'body': case.get('body', '')})
print(json.dumps(out))
`;

const hasBotocore = spawnSync('python3', ['-c', 'import botocore'], { stdio: 'ignore' }).status === 0;

test('requests signed by botocore verify', async (t) => {
  if (!hasBotocore) {
    t.skip('python3 with botocore is not importable');
    return;
  }
  const base = `http://${HOST}`;
  const cases = [
    // 0: how boto3 sends UntagResource: encoded ARN in the path, query already in the URL.
    { method: 'DELETE', url: `${base}${ARN_PATH}?tagKeys=a&tagKeys=b`, body: '' },
    // 1: JSON POST.
    { method: 'POST', url: `${base}/v1/apps/abc/events`, body: '{"BatchItem":{"ep":{"Endpoint":{}}}}', headers: { 'Content-Type': 'application/json' } },
    // 2: AWSRequest(params=...): sent form-encoded ('+' for space), signed with %20.
    { method: 'GET', url: `${base}/v1/apps`, params: { q: 'a b', 'k*': 'é✓' } },
    // 3: a hand-written URL with non-canonical escapes: botocore signs the raw query as it is.
    { method: 'GET', url: `${base}/v1/apps?b=x%2a&a=1&flag` },
    // 4: a Date header instead of X-Amz-Date (botocore then signs with an RFC 2822 Date).
    { method: 'GET', url: `${base}/v1/apps/abc`, headers: { Date: 'placeholder' } },
    // 5: presigned (SigV4QueryAuth), with the encoded ARN path.
    { method: 'GET', url: `${base}${ARN_PATH}?tagKeys=a`, presign: true },
    // 6: path with dot and empty segments.
    { method: 'GET', url: `${base}/v1//apps/./abc/../abc/` },
  ];
  const run = spawnSync('python3', ['-c', BOTOCORE_SCRIPT], {
    input: JSON.stringify({ timestamp: '20261126T053000Z', ...KEY, cases }),
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, run.stderr);
  const results = JSON.parse(run.stdout) as Array<{ url: string; headers: Record<string, string>; body: string }>;
  const wire = results.map((r, i): SignedRequest => {
    const m = /^https?:\/\/([^/?#]+)([^?#]*)(?:\?([^#]*))?/.exec(r.url)!;
    const headers: Record<string, string> = { host: m[1] };
    for (const [k, v] of Object.entries(r.headers)) headers[k.toLowerCase()] = String(v).trim();
    return { method: cases[i].method, rawPath: m[2], rawQuery: m[3] ?? '', headers, body: Buffer.from(r.body) };
  });

  assert.equal(wire[0].rawPath, ARN_PATH);
  assert.match(wire[2].rawQuery, /q=a\+b/);
  assert.ok(wire[4].headers.date && !wire[4].headers['x-amz-date'], 'case 4 is Date-header signed');
  assert.match(wire[5].rawQuery, /X-Amz-Signature=/);
  wire.forEach((req, i) => assert.deepEqual(verifySigV4(req, opts()), { ok: true, accessKeyId: KEY.accessKeyId, region: 'us-east-1', service: 'mobiletargeting' }, `botocore case ${i}: ${results[i].url}`));

  // And the negative cases still fail.
  assertFail(verifySigV4({ ...wire[0], rawQuery: 'tagKeys=a&tagKeys=c' }, opts()), 'InvalidSignatureException', BAD_SIGNATURE);
  assertFail(verifySigV4({ ...wire[1], body: Buffer.from('{}') }, opts()), 'InvalidSignatureException', BAD_SIGNATURE);
  assertFail(verifySigV4(wire[5], opts({ now: NOW + 6 * MIN })), 'InvalidSignatureException', /^Signature expired/);
});
