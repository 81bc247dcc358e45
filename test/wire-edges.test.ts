// The wire outside the operations, per protocol, as AWS answers it: authentication failures (status,
// type and message for restJson behind API Gateway, awsJson 1.1 in JSON and CBOR, Query), requests
// that name no operation (unknown or missing X-Amz-Target, unknown service prefix, another method, a
// path of no service) and CORS (preflight and the headers on answers and errors). References:
// kinesalite's recordings of Kinesis (test/connection.js), AWS's Common Errors pages of the Query
// services, API Gateway's gateway responses.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decode as cborDecode, encode as cborEncode } from 'cborg';
import { model as kinesisModel } from '../src/models/generated/kinesis.js';
import { CORS_EXPOSE_HEADERS, CORS_MAX_AGE_SECONDS, NO_OPERATION_MESSAGE } from '../src/http/dispatch.js';
import { CONSOLE_PATH } from '../src/console/serve.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { signedFetch, signedRequest } from './helpers/signed.js';
import { model as cognitoModel } from '../src/models/generated/cognito-identity.js';

const INVALID_TOKEN = 'The security token included in the request is invalid.';
const BAD_SIGNATURE =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';
const INCOMPLETE_X =
  "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. " +
  "Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=X";
const JSON_CT = 'application/x-amz-json-1.1';
const CBOR_CT = 'application/x-amz-cbor-1.1';
const FORM_CT = 'application/x-www-form-urlencoded';
const NO_KEY = { accessKeyId: 'PSAKNOSUCHKEY00000000', secretAccessKey: 'x'.repeat(40) };
const MISSING_TOKEN_XML = '<MissingAuthenticationTokenException>\n  <Message>Missing Authentication Token</Message>\n</MissingAuthenticationTokenException>\n';
const ACCESS_DENIED_XML = `<AccessDeniedException>\n  <Message>${NO_OPERATION_MESSAGE}</Message>\n</AccessDeniedException>\n`;

/** The four ways a request fails authentication; each case builds the request for one service. */
type AuthCase = 'unsigned' | 'unknown key' | 'wrong secret' | 'incomplete';

describe('the wire outside the operations', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer();
  });
  after(() => t.close());

  /** A request of `service` failing authentication the given way. */
  async function failAuth(how: AuthCase, service: string, path: string, headers: Record<string, string>, body: string | Buffer): Promise<Response> {
    if (how === 'unsigned' || how === 'incomplete') {
      return fetch(`${t.server.url}${path}`, { method: 'POST', headers: { ...headers, ...(how === 'incomplete' ? { authorization: 'X' } : {}) }, body: body as BodyInit });
    }
    const credentials = how === 'unknown key' ? NO_KEY : { ...t.server.admin, secretAccessKey: t.server.admin.secretAccessKey + 'x' };
    return signedRequest(t.server.url, { method: 'POST', path, service, headers, body, credentials });
  }

  const AUTH: Array<[AuthCase, string, string]> = [
    ['unsigned', 'MissingAuthenticationTokenException', 'Missing Authentication Token'],
    ['unknown key', 'UnrecognizedClientException', INVALID_TOKEN],
    ['wrong secret', 'InvalidSignatureException', BAD_SIGNATURE],
    ['incomplete', 'IncompleteSignatureException', INCOMPLETE_X],
  ];

  describe('authentication failures', () => {
    for (const [how, type, message] of AUTH) {
      test(`Pinpoint (restJson1, API Gateway): ${how} is 403 ${type} {"message"}`, async () => {
        const res = await failAuth(how, 'mobiletargeting', '/v1/apps', { 'content-type': 'application/json' }, '{"Name":"a"}');
        assert.equal(res.status, 403);
        assert.equal(res.headers.get('x-amzn-errortype'), type);
        assert.deepEqual(await res.json(), { message });
      });

      test(`Kinesis (awsJson 1.1, JSON and CBOR): ${how} is 400 ${type}`, async () => {
        const target = { 'x-amz-target': 'Kinesis_20131202.ListStreams' };
        const json = await failAuth(how, 'kinesis', '/', { ...target, 'content-type': JSON_CT }, '{}');
        assert.equal(json.status, 400);
        assert.equal(json.headers.get('content-type'), JSON_CT);
        assert.deepEqual(await json.json(), { __type: type, message });
        const cbor = await failAuth(how, 'kinesis', '/', { ...target, 'content-type': CBOR_CT }, Buffer.from(cborEncode({})));
        assert.equal(cbor.status, 400);
        assert.equal(cbor.headers.get('content-type'), CBOR_CT);
        assert.deepEqual(cborDecode(new Uint8Array(await cbor.arrayBuffer())), { __type: type, message });
      });

      test(`Firehose (awsJson 1.1): ${how} is 400 ${type}`, async () => {
        const res = await failAuth(how, 'firehose', '/', { 'x-amz-target': 'Firehose_20150804.ListDeliveryStreams', 'content-type': JSON_CT }, '{}');
        assert.equal(res.status, 400);
        assert.deepEqual(await res.json(), { __type: type, message });
      });
    }

    const QUERY: Record<AuthCase, [number, string]> = {
      unsigned: [403, 'MissingAuthenticationToken'],
      'unknown key': [403, 'InvalidClientTokenId'],
      'wrong secret': [403, 'SignatureDoesNotMatch'],
      incomplete: [400, 'IncompleteSignature'],
    };
    for (const [how, , message] of AUTH) {
      const [status, code] = QUERY[how];
      for (const [service, version, ns] of [
        ['iam', '2010-05-08', 'https://iam.amazonaws.com/doc/2010-05-08/'],
        ['sts', '2011-06-15', 'https://sts.amazonaws.com/doc/2011-06-15/'],
      ]) {
        test(`${service.toUpperCase()} (Query): ${how} is ${status} ${code}`, async () => {
          const action = service === 'iam' ? 'ListUsers' : 'GetCallerIdentity';
          const res = await failAuth(how, service, '/', { 'content-type': FORM_CT }, `Action=${action}&Version=${version}`);
          assert.equal(res.status, status);
          const text = await res.text();
          const requestId = res.headers.get('x-amzn-requestid');
          // An unsigned Query request has its body read (it may be an unsigned STS operation such as
          // AssumeRoleWithWebIdentity), so its Version names the service; one with an incomplete
          // signature is refused from the head, where without a credential scope naming the service
          // the first Query service (IAM) answers. AWS's STS host answers as STS.
          const answering = how === 'incomplete' ? 'https://iam.amazonaws.com/doc/2010-05-08/' : ns;
          assert.equal(
            text,
            `<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="${answering}"><Error><Type>Sender</Type><Code>${code}</Code>` +
              `<Message>${message.replace(/'/g, '&apos;')}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
          );
        });
      }
    }
  });

  describe('requests that name no operation', () => {
    test('Kinesis: an unknown operation of a known prefix is 400 {"__type":"UnknownOperationException"}, signed or not, JSON or CBOR', async () => {
      const headers = { 'x-amz-target': 'Kinesis_20131202.NoSuchOperation', 'content-type': JSON_CT };
      for (const res of [
        await fetch(`${t.server.url}/`, { method: 'POST', headers, body: '{}' }),
        await signedRequest(t.server.url, { path: '/', service: 'kinesis', headers, body: '{}', credentials: t.server.admin }),
      ]) {
        assert.equal(res.status, 400);
        assert.equal(res.headers.get('content-type'), JSON_CT);
        assert.equal(await res.text(), '{"__type":"UnknownOperationException"}');
      }
      const cbor = await fetch(`${t.server.url}/`, { method: 'POST', headers: { ...headers, 'content-type': CBOR_CT }, body: Buffer.from(cborEncode({})) });
      assert.equal(cbor.status, 400);
      assert.equal(cbor.headers.get('content-type'), CBOR_CT);
      assert.deepEqual(cborDecode(new Uint8Array(await cbor.arrayBuffer())), { __type: 'UnknownOperationException' });
    });

    test("Kinesis: an operation of AWS's model that Pinstream lacks is UnknownOperationException saying so", async (ctx) => {
      const have = new Set(t.server.operations.kinesis);
      const missing = Object.keys(kinesisModel.operations).find((op) => !have.has(op));
      if (!missing) return ctx.skip('Pinstream implements every Kinesis operation of the model');
      const res = await fetch(`${t.server.url}/`, { method: 'POST', headers: { 'x-amz-target': `Kinesis_20131202.${missing}`, 'content-type': JSON_CT }, body: '{}' });
      assert.equal(res.status, 400);
      assert.deepEqual(await res.json(), { __type: 'UnknownOperationException', message: `Pinstream does not support the Kinesis operation ${missing}` });
    });

    test("Cognito Identity: an operation of AWS's model that Pinstream lacks is UnknownOperationException saying so", async () => {
      for (const missing of ['GetOpenIdTokenForDeveloperIdentity', 'TagResource', 'MergeDeveloperIdentities']) {
        assert.ok(Object.hasOwn(cognitoModel.operations, missing), `${missing} is in the model`);
        const res = await fetch(`${t.server.url}/`, { method: 'POST', headers: { 'x-amz-target': `AWSCognitoIdentityService.${missing}`, 'content-type': JSON_CT }, body: '{}' });
        assert.equal(res.status, 400);
        assert.deepEqual(await res.json(), { __type: 'UnknownOperationException', message: `Pinstream does not support the Cognito Identity operation ${missing}` });
      }
    });

    test('no X-Amz-Target, or an unknown service prefix, in an awsJson content type: 400 UnknownOperationException in that format', async () => {
      for (const target of [undefined, 'DynamoDB_20120810.ListTables', 'Kinesis_20131202', '']) {
        const headers: Record<string, string> = { 'content-type': JSON_CT, ...(target === undefined ? {} : { 'x-amz-target': target }) };
        const res = await fetch(`${t.server.url}/`, { method: 'POST', headers, body: '{}' });
        assert.equal(res.status, 400, `target ${target}`);
        assert.equal(await res.text(), '{"__type":"UnknownOperationException"}');
      }
      const cbor = await fetch(`${t.server.url}/`, { method: 'POST', headers: { 'content-type': CBOR_CT }, body: Buffer.from(cborEncode({})) });
      assert.equal(cbor.status, 400);
      assert.deepEqual(cborDecode(new Uint8Array(await cbor.arrayBuffer())), { __type: 'UnknownOperationException' });
    });

    test('a Service.Operation target in another content type is 404 <UnknownOperationException/>', async () => {
      const res = await fetch(`${t.server.url}/`, { method: 'POST', headers: { 'x-amz-target': 'DynamoDB_20120810.ListTables', 'content-type': 'application/json' }, body: '{}' });
      assert.equal(res.status, 404);
      assert.equal(res.headers.get('x-amzn-errortype'), 'UnknownOperationException');
      assert.equal(res.headers.get('content-type'), null);
      assert.equal(await res.text(), '<UnknownOperationException/>\n');
    });

    test('another method, or a path of no service: 403 MissingAuthenticationTokenException unsigned, AccessDeniedException signed (XML)', async () => {
      for (const [method, path] of [['GET', '/'], ['GET', '/foo'], ['PUT', '/'], ['DELETE', '/streams'], ['POST', '/foo']]) {
        const unsigned = await fetch(`${t.server.url}${path}`, { method });
        assert.equal(unsigned.status, 403, `${method} ${path}`);
        assert.equal(unsigned.headers.get('x-amzn-errortype'), 'MissingAuthenticationTokenException');
        assert.equal(await unsigned.text(), MISSING_TOKEN_XML);
        const signed = await signedFetch(t.server.url, { method, path, service: 'kinesis', headers: { 'content-type': 'text/plain' }, credentials: t.server.admin });
        assert.equal(signed.status, 403, `${method} ${path}`);
        assert.equal(signed.headers.get('x-amzn-errortype'), 'AccessDeniedException');
        assert.equal(signed.text, ACCESS_DENIED_XML);
      }
    });

    test('a Kinesis target with another method than POST is not run: 403 AccessDeniedException', async () => {
      const res = await signedFetch(t.server.url, { method: 'PUT', path: '/', service: 'kinesis', headers: { 'x-amz-target': 'Kinesis_20131202.ListStreams', 'content-type': JSON_CT }, body: '{}', credentials: t.server.admin });
      assert.equal(res.status, 403);
      assert.equal(res.text, ACCESS_DENIED_XML);
    });

    test('a browser asking for a page at / is still sent to the console; /console/ assets stay served', async () => {
      const page = await fetch(`${t.server.url}/`, { redirect: 'manual', headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
      assert.equal(page.status, 302);
      assert.equal(page.headers.get('location'), CONSOLE_PATH);
      const asset = await fetch(`${t.server.url}${CONSOLE_PATH}`);
      assert.equal(asset.status, 200);
      // The same path without text/html (SDKs, curl, probes) gets AWS's answer.
      assert.equal((await fetch(`${t.server.url}/`, { redirect: 'manual' })).status, 403);
    });
  });

  describe('CORS', () => {
    const ORIGIN = { origin: 'https://app.example.com' };

    test('a preflight grants exactly the method and headers asked for, for 172800 s, with an empty body', async () => {
      for (const path of ['/', '/v1/apps/x/events']) {
        const res = await fetch(`${t.server.url}${path}`, {
          method: 'OPTIONS',
          headers: { ...ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, x-amz-target, x-amz-date' },
        });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('access-control-allow-origin'), '*');
        assert.equal(res.headers.get('access-control-allow-methods'), 'POST');
        assert.equal(res.headers.get('access-control-allow-headers'), 'authorization, x-amz-target, x-amz-date');
        assert.equal(res.headers.get('access-control-max-age'), String(CORS_MAX_AGE_SECONDS));
        assert.equal(CORS_MAX_AGE_SECONDS, 172_800);
        assert.match(res.headers.get('x-amzn-requestid') ?? '', /^[0-9a-f-]{36}$/);
        assert.equal(await res.text(), '');
      }
      const bare = await fetch(`${t.server.url}/`, { method: 'OPTIONS', headers: ORIGIN });
      assert.equal(bare.status, 200);
      assert.equal(bare.headers.get('access-control-allow-methods'), null);
      assert.equal(bare.headers.get('access-control-allow-headers'), null);
    });

    test('OPTIONS without an Origin: Pinpoint paths answer 200 (API Gateway), the RPC root answers as for any other method', async () => {
      assert.equal((await fetch(`${t.server.url}/v1/apps`, { method: 'OPTIONS' })).status, 200);
      const root = await fetch(`${t.server.url}/`, { method: 'OPTIONS' });
      assert.equal(root.status, 403);
      assert.equal(await root.text(), MISSING_TOKEN_XML);
    });

    test('answers and errors of every protocol carry Allow-Origin and the exposed headers when the request has an Origin', async () => {
      assert.equal(CORS_EXPOSE_HEADERS, 'x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date');
      const answers = [
        await signedFetch(t.server.url, { method: 'GET', path: '/v1/apps', headers: ORIGIN, credentials: t.server.admin }),
        await signedFetch(t.server.url, { path: '/', service: 'kinesis', headers: { ...ORIGIN, 'x-amz-target': 'Kinesis_20131202.ListStreams', 'content-type': JSON_CT }, body: '{}', credentials: t.server.admin }),
        await signedFetch(t.server.url, { path: '/', service: 'kinesis', headers: { ...ORIGIN, 'x-amz-target': 'Kinesis_20131202.DescribeStream', 'content-type': JSON_CT }, body: '{"StreamName":"none"}', credentials: t.server.admin }),
        await signedFetch(t.server.url, { path: '/', service: 'iam', headers: { ...ORIGIN, 'content-type': FORM_CT }, body: 'Action=GetUser&Version=2010-05-08&UserName=nobody', credentials: t.server.admin }),
        await signedFetch(t.server.url, { method: 'GET', path: '/foo', headers: ORIGIN, credentials: t.server.admin }),
      ];
      assert.deepEqual(answers.map((a) => a.status), [200, 200, 400, 404, 403]);
      for (const a of answers) {
        assert.equal(a.headers.get('access-control-allow-origin'), '*');
        assert.equal(a.headers.get('access-control-expose-headers'), CORS_EXPOSE_HEADERS);
      }
    });

    test('without an Origin no CORS headers are sent (AWS sends them only to browsers)', async () => {
      const res = await signedFetch(t.server.url, { method: 'GET', path: '/v1/apps', credentials: t.server.admin });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('access-control-allow-origin'), null);
      assert.equal(res.headers.get('access-control-expose-headers'), null);
    });
  });
});
