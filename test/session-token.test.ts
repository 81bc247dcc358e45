// Issue 12, defect 9, and issue 13's temporary credentials: a long-term access key presented with a
// session token (X-Amz-Security-Token, as a header or in a presigned URL) is refused as AWS refuses
// it: UnrecognizedClientException "The security token included in the request is invalid." on the
// JSON and REST protocols, InvalidClientTokenId on the Query protocol (IAM, STS). Temporary
// credentials (STS AssumeRole / GetSessionToken, ASIA… keys) carry their token in
// Credentials.sessionToken and work only with exactly that token, as a header or presigned; the
// verifier half of that is tested here at unit level, the server half in iam-sts.test.ts.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { GetAppsCommand, PinpointClient } from '@aws-sdk/client-pinpoint';
import { KinesisClient, ListStreamsCommand } from '@aws-sdk/client-kinesis';
import { FirehoseClient, ListDeliveryStreamsCommand } from '@aws-sdk/client-firehose';
import { IAMClient, ListUsersCommand } from '@aws-sdk/client-iam';
import { GetCallerIdentityCommand, GetSessionTokenCommand, STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startTestServer, type TestServer } from './helpers/server.js';
import { rejection } from './helpers/rejection.js';
import { checkSigV4Head, verifySigV4, type Credentials } from '../src/iam/sigv4.js';

const INVALID = 'The security token included in the request is invalid.';
const MADE_UP = 'IQoJb3JpZ2luX2VjEMadeUpSessionToken//////////wEaCXVzLWVhc3QtMSJHMEUCIQ==';

describe('a long-term key with a made-up session token', () => {
  let t: TestServer;
  const clients: Array<{ destroy(): void }> = [];
  const withToken = () => ({ ...t.server.admin, sessionToken: MADE_UP });
  const common = () => ({ endpoint: t.server.url, region: 'us-east-1', credentials: withToken(), maxAttempts: 1 });
  const track = <C extends { destroy(): void }>(c: C) => (clients.push(c), c);

  before(async () => {
    t = await startTestServer();
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await t.close();
  });

  test('the same key without a token works (the control)', async () => {
    const out = await t.pinpoint.send(new GetAppsCommand({}));
    assert.equal(out.$metadata.httpStatusCode, 200);
  });

  test('Pinpoint (restJson1): 403 UnrecognizedClientException', async () => {
    const err = await rejection(() => track(new PinpointClient(common())).send(new GetAppsCommand({})));
    assert.equal(err.name, 'UnrecognizedClientException');
    assert.equal(err.$metadata.httpStatusCode, 403);
    assert.equal(err.message, INVALID);
  });

  test('Kinesis (JSON 1.1, over HTTP/2 as the SDK ships and over HTTP/1.1): 400 UnrecognizedClientException', async () => {
    for (const c of [track(new KinesisClient(common())), track(new KinesisClient({ ...common(), requestHandler: new NodeHttpHandler() }))]) {
      const err = await rejection(() => c.send(new ListStreamsCommand({})));
      assert.equal(err.name, 'UnrecognizedClientException');
      assert.equal(err.$metadata.httpStatusCode, 400);
      assert.equal(err.message, INVALID);
    }
  });

  test('Firehose (JSON 1.1): 400 UnrecognizedClientException', async () => {
    const err = await rejection(() => track(new FirehoseClient(common())).send(new ListDeliveryStreamsCommand({})));
    assert.equal(err.name, 'UnrecognizedClientException');
    assert.equal(err.$metadata.httpStatusCode, 400);
    assert.equal(err.message, INVALID);
  });

  test('IAM and STS (Query): 403 InvalidClientTokenId', async () => {
    const iamErr = await rejection(() => track(new IAMClient(common())).send(new ListUsersCommand({})));
    assert.equal(iamErr.name, 'InvalidClientTokenId');
    assert.equal(iamErr.$metadata.httpStatusCode, 403);
    assert.equal(iamErr.message, INVALID);
    const stsErr = await rejection(() => track(new STSClient(common())).send(new GetCallerIdentityCommand({})));
    assert.equal(stsErr.name, 'InvalidClientTokenId');
    assert.equal(stsErr.message, INVALID);
  });

  test('a presigned URL carrying X-Amz-Security-Token is refused; the same URL without a token works', async () => {
    const url = new URL(t.server.url);
    const presign = async (credentials: Credentials) => {
      const signer = new SignatureV4({ service: 'mobiletargeting', region: 'us-east-1', credentials, sha256: Sha256 });
      const p = await signer.presign(
        { method: 'GET', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: '/v1/apps', query: {}, headers: { host: url.host } },
        { expiresIn: 300 },
      );
      return Object.entries(p.query ?? {})
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
        .join('&');
    };
    const tokened = await presign(withToken());
    assert.match(tokened, /X-Amz-Security-Token=/);
    const bad = await fetch(`${t.server.url}/v1/apps?${tokened}`);
    assert.equal(bad.status, 403);
    assert.equal(bad.headers.get('x-amzn-errortype'), 'UnrecognizedClientException');
    assert.deepEqual(await bad.json(), { message: INVALID });

    const good = await fetch(`${t.server.url}/v1/apps?${await presign(t.server.admin)}`);
    assert.equal(good.status, 200);

    // Real temporary credentials presigned with their own token work; with another token they do not.
    const c = (await track(new STSClient({ ...common(), credentials: t.server.admin })).send(new GetSessionTokenCommand({ DurationSeconds: 900 }))).Credentials!;
    const temp = { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! };
    assert.match(temp.accessKeyId, /^ASIA/);
    assert.equal((await fetch(`${t.server.url}/v1/apps?${await presign(temp)}`)).status, 200);
    const forged = await fetch(`${t.server.url}/v1/apps?${await presign({ ...temp, sessionToken: MADE_UP })}`);
    assert.equal(forged.status, 403);
    assert.deepEqual(await forged.json(), { message: INVALID });
  });

  test('temporary credentials work on every protocol with their own token', async () => {
    const c = (await track(new STSClient({ ...common(), credentials: t.server.admin })).send(new GetSessionTokenCommand({ DurationSeconds: 900 }))).Credentials!;
    const credentials = { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! };
    assert.equal((await track(new PinpointClient({ ...common(), credentials })).send(new GetAppsCommand({}))).$metadata.httpStatusCode, 200);
    await track(new KinesisClient({ ...common(), credentials })).send(new ListStreamsCommand({}));
    await track(new FirehoseClient({ ...common(), credentials })).send(new ListDeliveryStreamsCommand({}));
    assert.equal((await track(new STSClient({ ...common(), credentials })).send(new GetCallerIdentityCommand({}))).Arn, `arn:aws:iam::000000000000:user/admin`);
  });
});

describe('temporary credentials: the session token must match exactly', () => {
  const TEMP: Credentials = { accessKeyId: 'ASIATEMPORARYKEY0001', secretAccessKey: 'temporary-secret-0123456789abcdef', sessionToken: 'the-one-token' };
  const NOW = Date.UTC(2026, 10, 26, 5, 30, 0);
  const opts = { lookup: (id: string) => (id === TEMP.accessKeyId ? TEMP : undefined), now: NOW, services: ['mobiletargeting'] };

  async function signed(token: string | undefined) {
    const signer = new SignatureV4({
      service: 'mobiletargeting',
      region: 'us-east-1',
      credentials: { accessKeyId: TEMP.accessKeyId, secretAccessKey: TEMP.secretAccessKey, sessionToken: token },
      sha256: Sha256,
    });
    const r = await signer.sign(
      { method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port: 4580, path: '/v1/apps', query: {}, headers: { host: '127.0.0.1:4580' } },
      { signingDate: new Date(NOW) },
    );
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.headers)) headers[k.toLowerCase()] = String(v);
    return { method: 'GET', rawPath: '/v1/apps', rawQuery: '', headers, body: Buffer.alloc(0) };
  }

  test('with its token: accepted, already by the header check', async () => {
    const req = await signed(TEMP.sessionToken);
    assert.equal(checkSigV4Head(req, opts).ok, true);
    assert.equal(verifySigV4(req, opts).ok, true);
  });

  for (const [what, token] of [
    ['without a token', undefined],
    ['with another token', 'another-token'],
    ['with an empty token', ''],
    ['with the token plus one character', 'the-one-tokenx'],
  ] as const) {
    test(`${what}: UnrecognizedClientException before the body is read`, async () => {
      const req = await signed(token);
      for (const res of [checkSigV4Head(req, opts), verifySigV4(req, opts)]) {
        assert.equal(res.ok, false);
        assert.deepEqual(res, { ok: false, code: 'UnrecognizedClientException', message: INVALID });
      }
    });
  }
});
