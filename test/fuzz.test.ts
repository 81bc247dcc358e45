// Fuzzing: generated requests for every operation of every protocol Pinstream serves, against a
// real `pinstream start` child process. Operations and input shapes come from the AWS models
// (Pinpoint restJson1 plus Pinstream's /v1/ extension routes, Kinesis awsJson 1.1 as JSON and as
// CBOR, Firehose awsJson 1.1, Cognito Identity awsJson 1.1 with its noAuth operations mostly sent
// unsigned, IAM and STS Query); fast-check generates valid-ish inputs and
// mutates them (types, sizes, encodings, nesting, prototype-ish keys, odd paths, targets, query
// strings and headers), signed by the admin, by a restricted user, presigned, or unsigned and
// badly signed. Invariants: the process never exits, no answer is 5xx (nothing is injected here),
// every error has its protocol's AWS shape, nothing the server logs says "unhandled", and the
// official SDKs still work afterwards.
//
// CI runs a bounded budget (PINSTREAM_FUZZ_SECONDS, default 70 s of fuzzing in all). Longer runs:
//   PINSTREAM_FUZZ_SECONDS=1800 node --test --test-timeout=0 dist/test/fuzz.test.js
// Other knobs: PINSTREAM_FUZZ_SEED (printed on every run), PINSTREAM_FUZZ_RUNS (cases per group,
// instead of time), PINSTREAM_FUZZ_GROUPS (comma-separated group names), and
// PINSTREAM_FUZZ_REPLAY=group:path (with the seed) to replay one case and shrink it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { CreateAppCommand, PinpointClient, PutEventsCommand } from '@aws-sdk/client-pinpoint';
import { KinesisClient, PutRecordCommand } from '@aws-sdk/client-kinesis';
import { FirehoseClient, PutRecordCommand as FirehosePutRecordCommand } from '@aws-sdk/client-firehose';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { CognitoIdentityClient, GetCredentialsForIdentityCommand } from '@aws-sdk/client-cognito-identity';
import { operationsOf } from './helpers/fuzz/models.js';
import { FuzzServer, Fuzzer, RAW_CASES, rawExchange, type Finding, type GroupStats } from './helpers/fuzz/runner.js';
import { checkAnswer } from './helpers/fuzz/check.js';
import { inputArbitrary } from './helpers/fuzz/values.js';
import { caseArbitrary } from './helpers/fuzz/wire.js';
import type { Group, WireRequest } from './helpers/fuzz/wire.js';

const env = process.env;
const SECONDS = Number(env.PINSTREAM_FUZZ_SECONDS ?? 70);
const RUNS = env.PINSTREAM_FUZZ_RUNS ? Number(env.PINSTREAM_FUZZ_RUNS) : undefined;
const SEED = env.PINSTREAM_FUZZ_SEED ? Number(env.PINSTREAM_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
const ONLY = env.PINSTREAM_FUZZ_GROUPS?.split(',').map((s) => s.trim());
const REPLAY = env.PINSTREAM_FUZZ_REPLAY;

const kinesisOps = operationsOf('kinesis');
/** Groups and their share of the time budget (the rest: bursts 8%, front door 5%). */
const GROUPS: Array<Group & { share: number }> = [
  { name: 'pinpoint-rest', format: 'rest', ops: operationsOf('pinpoint'), share: 0.28 },
  { name: 'kinesis-json', format: 'json', ops: kinesisOps, share: 0.16 },
  { name: 'kinesis-cbor', format: 'cbor', ops: kinesisOps, share: 0.14 },
  { name: 'firehose-json', format: 'json', ops: operationsOf('firehose'), share: 0.14 },
  { name: 'iam-query', format: 'query', ops: operationsOf('iam'), share: 0.16 },
  { name: 'sts-query', format: 'query', ops: operationsOf('sts'), share: 0.06 },
  { name: 'cognito-json', format: 'json', ops: operationsOf('cognito-identity'), share: 0.06 },
];
/** Services whose operations are mixed in concurrent bursts, and the bursts' share of the budget. */
const BURST_GROUPS = ['pinpoint-rest', 'kinesis-json', 'firehose-json', 'iam-query', 'cognito-json'];
const BURST_SHARE = 0.08;
/** Front-door paths (unauthenticated routes, console assets, unknown prefixes). */
const FRONT_PATHS = ['/', '/health', '/metrics', '/console', '/console/', '/console/index.html', '/console/config.json', '/console/../../../etc/passwd', '/console/%2e%2e/%2e%2e/package.json', '/console/app.js%00.html', '/v1', '/v2/apps', '/%00', '//', '/favicon.ico', '/health/', '/HEALTH', '/metrics?x=__proto__', '/?Action=GetUser&Version=2010-05-08', '/v1%2Fapps'];

const seedOf = (i: number) => (SEED + i * 7919) % 2 ** 31;

/**
 * Findings of defects the issue names, whose fixes are other engineers' (issue 12 #1 and #11): the
 * suite still fails on them, and says whose they are, so a failure here is read at a glance.
 */
const KNOWN: Array<{ owner: string; matches: (f: Finding) => boolean }> = [
  {
    owner: 'issue 12 #1 (http): X-Amz-Target operation looked up as an inherited property',
    matches: (f) =>
      /^X-Amz-Target: \w+\.(constructor|__proto__|toString|hasOwnProperty|valueOf|__defineGetter__|isPrototypeOf)( \(in a burst of \d+\))?$/.test(f.op) ||
      // What the inherited "operations" do when called (src/http/awsjson.ts rawOperations lookup).
      /raw is not a function|Cannot convert undefined or null to object|Cannot create property 'headers' on string|ERR_HTTP_INVALID_STATUS_CODE/.test(f.detail),
  },
  { owner: 'issue 12 #11 (http): a first TCP read of the single byte "P" is taken for HTTP/2', matches: (f) => f.op === 'first read is the single byte P' },
  {
    owner: 'issue 12 #11 (ingest): deep nesting in a Pinpoint body overflows the stack',
    matches: (f) => f.group === 'pinpoint-rest' && /Maximum call stack size exceeded/.test(f.detail),
  },
  { owner: 'issue 12 #11 (ingest): a lone surrogate in an accepted attribute', matches: (f) => f.group === 'pinpoint-rest' && /surrogate|URIError|unpaired/i.test(f.detail) },
];
const ownerOf = (f: Finding) => KNOWN.find((k) => k.matches(f))?.owner;

test('the invariant checks refuse what they must (so a quiet fuzz run means something)', () => {
  const req = (headers: Record<string, string>, target = '/'): WireRequest => ({ method: 'POST', target, headers, body: Buffer.alloc(0), h2: false, httpInvalid: false });
  const res = (status: number, headers: Record<string, string>, body: string | Buffer) => ({ status, headers, body: Buffer.from(body), partial: false });
  const rest = req({ 'content-type': 'application/json' }, '/v1/apps');
  const kinesisJson = req({ 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'Kinesis_20131202.ListStreams' });
  const kinesisCbor = req({ 'content-type': 'application/x-amz-cbor-1.1', 'x-amz-target': 'Kinesis_20131202.ListStreams' });
  const iam = req({ 'content-type': 'application/x-www-form-urlencoded' });
  const xmlError = (code: string, message: string) => `<?xml version="1.0"?><ErrorResponse><Error><Code>${code}</Code><Message>${message}</Message></Error></ErrorResponse>`;

  assert.equal(checkAnswer(rest, res(500, { 'content-type': 'application/json', 'x-amzn-errortype': 'InternalServerErrorException' }, '{"Message":"x"}'))?.kind, '5xx');
  assert.equal(checkAnswer(rest, res(400, { 'content-type': 'application/json' }, '{"Message":"x"}'))?.kind, 'shape', 'no x-amzn-ErrorType');
  assert.equal(checkAnswer(rest, res(400, { 'content-type': 'application/json', 'x-amzn-errortype': 'BadRequestException' }, '{"Msg":"x"}'))?.kind, 'shape', 'no Message');
  assert.equal(checkAnswer(rest, res(400, { 'content-type': 'application/json', 'x-amzn-errortype': 'BadRequestException' }, '{"Message":"x"}')), undefined);
  assert.equal(checkAnswer(kinesisJson, res(400, { 'content-type': 'application/json' }, '{"__type":"X","message":"m"}'))?.kind, 'shape', 'JSON 1.1 content type');
  assert.equal(checkAnswer(kinesisJson, res(400, { 'content-type': 'application/x-amz-json-1.1' }, '{"message":"m"}'))?.kind, 'shape', 'no __type');
  assert.equal(checkAnswer(kinesisJson, res(400, { 'content-type': 'application/x-amz-json-1.1' }, '{"__type":"X","message":"m"}')), undefined);
  assert.equal(checkAnswer(kinesisCbor, res(400, { 'content-type': 'application/x-amz-json-1.1' }, '{"__type":"X","message":"m"}'))?.kind, 'shape', 'CBOR asked, JSON answered');
  assert.equal(checkAnswer(kinesisCbor, res(400, { 'content-type': 'application/x-amz-cbor-1.1' }, Buffer.from('a1665f5f7479706561' + '58', 'hex')))?.kind, 'shape', 'CBOR without message');
  assert.equal(checkAnswer(iam, res(400, { 'content-type': 'text/xml' }, xmlError('InvalidInput', 'a\u0001b')))?.kind, 'shape', 'a control character XML 1.0 cannot carry');
  assert.equal(checkAnswer(iam, res(400, { 'content-type': 'text/xml' }, xmlError('InvalidInput', 'a & b')))?.kind, 'shape', 'a bare ampersand');
  assert.equal(checkAnswer(iam, res(400, { 'content-type': 'text/xml' }, '<ErrorResponse><Error><Code>X</Code>'))?.kind, 'shape', 'unclosed XML');
  assert.equal(checkAnswer(iam, res(400, { 'content-type': 'text/xml' }, xmlError('InvalidInput', 'a &amp; b'))), undefined);
});

test('fuzzing every operation of every protocol: the process lives, no 5xx, every error AWS-shaped, the SDKs work afterwards', { timeout: Math.max(180_000, SECONDS * 1000 * 2 + 120_000) }, async (t) => {
  t.diagnostic(`seed ${SEED} (replay any run with PINSTREAM_FUZZ_SEED=${SEED}); budget ${SECONDS} s${RUNS ? `, at most ${RUNS} cases per group` : ''}`);
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-fuzz-'));
  const server = new FuzzServer(
    // Durability is the crash suites' subject; without fsync the budget buys more requests.
    { PINSTREAM_DATA_DIR: dataDir, PINSTREAM_LOG_FSYNC: 'false' },
    { accessKeyId: 'PSAKFUZZADMIN0000000', secretAccessKey: 'fuzz-admin-secret-0123456789abcdefghij' },
  );
  await server.start();
  const fuzzer = new Fuzzer(server, SEED);
  try {
    await fuzzer.setup();
    assert.deepEqual(fuzzer.fixtures.problems, [], 'fixtures could be created with the SDKs');

    const groups = GROUPS.filter((g) => !ONLY || ONLY.includes(g.name));
    const implementedOf = new Map<string, number[]>();
    const burstArb = async () => {
      const parts = [];
      for (const g of GROUPS.filter((x) => BURST_GROUPS.includes(x.name))) {
        if (!implementedOf.has(g.name)) implementedOf.set(g.name, await fuzzer.discover(g));
        parts.push(caseArbitrary(g, implementedOf.get(g.name)!, (op) => inputArbitrary(op)).map((c) => ({ g: g as Group, c })));
      }
      return fc.array(fc.oneof(...parts), { minLength: 2, maxLength: 8 });
    };
    if (REPLAY?.startsWith('concurrent:')) {
      const arb = await burstArb();
      await fc.assert(
        fc.asyncProperty(arb, async (cases) => {
          const before = fuzzer.findings.size;
          await fuzzer.burst(cases, REPLAY);
          assert.equal(fuzzer.findings.size, before, [...fuzzer.findings.values()].at(-1)?.detail);
        }),
        { seed: seedOf(98), path: REPLAY.split(':')[1], endOnFailure: false },
      );
      return;
    }
    if (REPLAY) {
      const [name, path] = REPLAY.split(':');
      const g = GROUPS.find((x) => x.name === name);
      assert.ok(g, `PINSTREAM_FUZZ_REPLAY names no group: ${name}`);
      const implemented = await fuzzer.discover(g);
      await fuzzer.replay(g, implemented, path, seedOf(GROUPS.indexOf(g)));
      return;
    }

    const fuzzStart = Date.now();
    for (const g of groups) {
      await t.test(g.name, async (st) => {
        const started = Date.now();
        const implemented = await fuzzer.discover(g);
        implementedOf.set(g.name, implemented);
        const share = g.share / groups.reduce((a, x) => a + x.share, 0);
        const budget = SECONDS * 1000 * share * (ONLY ? 1 : 0.95 - BURST_SHARE) - (Date.now() - started);
        await fuzzer.run(g, implemented, Math.max(1_000, budget), RUNS, seedOf(GROUPS.indexOf(g)));
        st.diagnostic(summary(fuzzer.statsFor(g)));
        assert.ok(server.alive(), 'the server process is alive after the batch');
        assert.ok(await server.healthy(), '/health answers after the batch');
      });
    }

    if (!ONLY || ONLY.includes('concurrent')) {
      await t.test('concurrent bursts across services', async (st) => {
        const arb = await burstArb();
        let run = 0;
        let inflight: Promise<unknown> = Promise.resolve();
        const out = await fc.check(
          fc.asyncProperty(arb, async (cases) => {
            inflight = fuzzer.burst(cases, `concurrent:${run++}`);
            await inflight;
          }),
          { seed: seedOf(98), numRuns: RUNS ?? 1_000_000, interruptAfterTimeLimit: SECONDS * 1000 * (ONLY ? 1 : BURST_SHARE), markInterruptAsFailure: false },
        );
        await inflight;
        assert.ok(!out.failed, `the bursts stopped: ${String(out.errorInstance)}`);
        st.diagnostic(summary(fuzzer.statsFor({ name: 'concurrent', format: 'rest', ops: [] })));
        assert.ok(server.alive(), 'the server process is alive after the bursts');
      });
    }

    if (!ONLY || ONLY.includes('front-door')) {
      await t.test('front door and raw HTTP', async (st) => {
        const s = fuzzer.statsFor({ name: 'front-door', format: 'rest', ops: [] });
        for (const c of RAW_CASES) {
          const a = await rawExchange(server.url, c.chunks, c.expectAnswer ? 5_000 : 500);
          s.requests++;
          for (const status of a.statuses) s.byStatus.set(String(status), (s.byStatus.get(String(status)) ?? 0) + 1);
          if (!server.alive()) {
            fuzzer.crashes++;
            fuzzer.record('crash', 'front-door', c.name, `process exited: ${server.stderr.slice(-600)}`, '', c.name, undefined);
            await fuzzer.restart();
          } else if (a.statuses.some((x) => x >= 500)) {
            fuzzer.record('5xx', 'front-door', c.name, `statuses ${a.statuses.join(',')}`, '', c.name, undefined);
          } else if (c.expectAnswer && a.statuses.length === 0) {
            fuzzer.record('no-answer', 'front-door', c.name, 'no HTTP answer to a complete request', '', c.name, undefined);
          }
        }
        const budget = SECONDS * 1000 * 0.05;
        const frontStart = Date.now();
        let inflight: Promise<unknown> = Promise.resolve();
        await fc.check(
          fc.asyncProperty(
            fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'),
            fc.oneof(fc.constantFrom(...FRONT_PATHS), fc.webPath({ size: 'small' })),
            fc.constantFrom<Record<string, string>>({}, { authorization: 'AWS4-HMAC-SHA256 Credential=x' }, { 'if-none-match': '"x"' }, { 'content-type': 'application/x-www-form-urlencoded' }, { 'x-amz-target': 'Nope_1.Op' }, { 'access-control-request-headers': 'x-amz-target,authorization' }),
            async (method, path, headers) => {
              const r: WireRequest = { method, target: path || '/', headers: { ...headers, 'content-length': '0' }, body: Buffer.alloc(0), h2: false, httpInvalid: false };
              const sending = fuzzer.transport.send(r);
              inflight = sending;
              const o = await sending;
              if (!o.ok) {
                if (!o.error.startsWith('client refused')) fuzzer.record('no-answer', 'front-door', `${method} ${path}`, o.error, '', '', r);
                return;
              }
              s.requests++;
              s.byStatus.set(String(o.res.status), (s.byStatus.get(String(o.res.status)) ?? 0) + 1);
              const v = checkAnswer(r, o.res);
              if (v) fuzzer.record(v.kind, 'front-door', `${method} ${path.split('?')[0].slice(0, 40)}`, v.detail, `PINSTREAM_FUZZ_SEED=${SEED}`, '', r);
            },
          ),
          { seed: seedOf(99), numRuns: RUNS ?? 1_000_000, interruptAfterTimeLimit: Math.max(1_000, budget - (Date.now() - frontStart)), markInterruptAsFailure: false },
        );
        await inflight;
        st.diagnostic(summary(s));
        assert.ok(server.alive(), 'the server process is alive after the raw requests');
      });
    }
    t.diagnostic(`fuzzing took ${((Date.now() - fuzzStart) / 1000).toFixed(1)} s`);

    await t.test('the official SDKs still work afterwards (PutEvents, Kinesis, Firehose, STS, Cognito guest credentials)', async () => {
      await fuzzer.fixtures.ensure();
      // What the fuzzer deleted or broke (its apps, streams, role) is put back first; say so if it cannot be.
      assert.deepEqual(fuzzer.fixtures.problems, [], 'the fixtures could not be restored');
      const base = { endpoint: server.url, region: 'us-east-1', credentials: server.admin, maxAttempts: 1 };
      const pinpoint = new PinpointClient(base);
      const kinesis = new KinesisClient(base);
      const firehose = new FirehoseClient(base);
      const sts = new STSClient(base);
      // A device: no credentials of its own, only the unsigned Cognito operations.
      const device = new CognitoIdentityClient({ ...base, credentials: async () => ({ accessKeyId: 'unused', secretAccessKey: 'unused' }) });
      try {
        const app = await pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'after-fuzzing' } }));
        const out = await pinpoint.send(
          new PutEventsCommand({
            ApplicationId: app.ApplicationResponse!.Id!,
            EventsRequest: { BatchItem: { 'device-1': { Endpoint: {}, Events: { e1: { EventType: 'after.fuzz', Timestamp: new Date().toISOString() } } } } },
          }),
        );
        assert.equal(out.EventsResponse?.Results?.['device-1']?.EventsItemResponse?.e1?.StatusCode, 202);
        const put = await kinesis.send(new PutRecordCommand({ StreamName: 'fuzz-stream', PartitionKey: 'after', Data: Buffer.from('after fuzzing') }));
        assert.match(put.SequenceNumber ?? '', /^\d+$/);
        const fh = await firehose.send(new FirehosePutRecordCommand({ DeliveryStreamName: 'fuzz-ds', Record: { Data: Buffer.from('after fuzzing\n') } }));
        assert.ok(fh.RecordId);
        const me = await sts.send(new GetCallerIdentityCommand({}));
        assert.match(me.Arn ?? '', /:user\/admin$/);
        const guest = await device.send(new GetCredentialsForIdentityCommand({ IdentityId: fuzzer.fixtures.identityId }));
        assert.match(guest.Credentials?.AccessKeyId ?? '', /^ASIA/);
      } finally {
        for (const c of [pinpoint, kinesis, firehose, sts, device]) c.destroy();
      }
    });

    const all = [...fuzzer.stats.values()];
    const total = all.reduce((a, s) => a + s.requests, 0);
    const findings = [...fuzzer.findings.values()];
    const count = (k: string) => findings.filter((f) => f.kind === k).reduce((a, f) => a + f.count, 0);
    t.diagnostic(
      `requests fuzzed: ${total} (${all.map((s) => `${s.group} ${s.requests}`).join(', ')}); crashes ${fuzzer.crashes}, ` +
        `5xx ${count('5xx')}, non-AWS-shaped ${count('shape')}, unanswered ${count('no-answer')}, logged as unhandled ${count('stderr')}; server restarts ${server.restarts}`,
    );
    // Everything else the server wrote to stderr (retries, delivery warnings), to read alongside.
    const logged = new Map<string, number>();
    for (const l of server.stderr.split('\n')) {
      if (!l.trim() || /^\s+at /.test(l)) continue;
      const k = l.replace(/[0-9a-f-]{36}|\d+/g, 'N').slice(0, 160);
      logged.set(k, (logged.get(k) ?? 0) + 1);
    }
    if (logged.size > 0) t.diagnostic(`server stderr, distinct lines: ${[...logged].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([k, n]) => `\n  ×${n} ${k}`).join('')}`);
    for (const f of findings) {
      const owner = ownerOf(f);
      t.diagnostic(`FINDING ${f.kind} ×${f.count} ${f.group} ${f.op}${owner ? ` [known: ${owner}]` : ''}: ${f.detail.slice(0, 400)}\n  replay: ${f.replay}\n  ${f.example.replace(/\n/g, '\n  ')}`);
    }
    const line = (f: Finding) => `- ${f.kind} ×${f.count} ${f.group} ${f.op}: ${f.detail.slice(0, 300)} [${f.replay}]`;
    const known = findings.filter((f) => ownerOf(f));
    const fresh = findings.filter((f) => !ownerOf(f));
    assert.equal(
      findings.length,
      0,
      `${findings.length} distinct findings (seed ${SEED}); ${fresh.length} new:\n${fresh.map(line).join('\n')}\n` +
        `${known.length} of defects issue 12 names, fixed elsewhere:\n${known.map((f) => `${line(f)} — ${ownerOf(f)}`).join('\n')}`,
    );
  } finally {
    await fuzzer.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});

function summary(s: GroupStats): string {
  const classes = new Map<string, number>();
  for (const [status, n] of s.byStatus) {
    const k = /^\d/.test(status) ? `${status[0]}xx` : status;
    classes.set(k, (classes.get(k) ?? 0) + n);
  }
  const top = [...s.errorTypes].sort((a, b) => b[1] - a[1]).slice(0, 8);
  const neverOk = s.implementedOps.filter((op) => !s.succeeded.has(op));
  return (
    `${s.group}: ${s.requests} requests in ${s.runs} cases` +
    (s.operations ? `, ${s.implemented}/${s.operations} model operations answered as implemented` : '') +
    (s.implementedOps.length ? `, ${s.implementedOps.length - neverOk.length} of them answered 2xx at least once${neverOk.length ? ` (not: ${neverOk.join(', ')})` : ''}` : '') +
    `; answers ${[...classes].map(([k, n]) => `${k} ${n}`).join(', ')}` +
    (s.notSent ? `; ${s.notSent} not sendable by Node's client` : '') +
    (top.length ? `; top errors ${top.map(([k, n]) => `${k} ${n}`).join(', ')}` : '') +
    (s.slowest.length ? `; slowest ${s.slowest.map(([ms, what]) => `${ms} ms ${what}`).join(' | ')}` : '')
  );
}
