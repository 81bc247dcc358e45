// Email and SMS events in (issue 18 item 4): AWS's documented SES and End User Messaging SMS
// examples (helpers/messaging-examples.ts), delivered through the Firehose HTTP endpoint protocol
// straight to /firehose/messaging-events and through a delivery stream of this server's own
// Firehose, become the records Pinpoint documented (Developer Guide "Email events", "SMS events";
// the expected records below are written from those pages), count in the transactional KPIs, and
// are refused, deduplicated and reported as a Firehose HTTP endpoint must.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { CreateAppCommand, GetApplicationDateRangeKpiCommand } from '@aws-sdk/client-pinpoint';
import { CreateDeliveryStreamCommand, PutRecordBatchCommand } from '@aws-sdk/client-firehose';
import { ConfigError, loadConfig, MIN_MESSAGING_ACCESS_KEY_LENGTH } from '../src/config/config.js';
import { decodeIngestEntry } from '../src/pinpoint/ingest-record.js';
import { MAX_RECEIVER_BODY_BYTES, MAX_RECEIVER_DECODED_BYTES, MESSAGING_EVENTS_PATH } from '../src/messaging/receiver.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { createDeliveryRole, firehoseClient, ROLE, s3Destination, until } from './helpers/firehose.js';
import { MESSAGE_ID, SES_BOUNCE, SES_CLICK, SES_COMPLAINT, SES_DELIVERY, SES_OPEN, SES_REJECT, SES_SEND, SMS_SUCCESSFUL } from './helpers/messaging-examples.js';

const KEY = 'firehose-access-key-0123456789';
const ACCOUNT = '123456789012';

/** Pinpoint's email record (Developer Guide "Email events": the envelope of its examples, client_context per its attribute table). */
function pinpointEmail(appId: string, eventType: string, feedback: string, sentIso: string, mail: object, detail: Record<string, object>) {
  return {
    event_type: eventType,
    event_timestamp: Date.parse(sentIso),
    event_version: '3.1',
    application: { app_id: appId, sdk: {} },
    device: { platform: {} },
    session: {},
    attributes: { feedback },
    client_context: { custom: { legacy_identifier: appId } },
    awsAccountId: ACCOUNT,
    facets: { email_channel: { mail_event: { mail, ...detail } } },
  };
}

const hdr = (name: string, value: string) => ({ name, value });
const SIMPLE = [hdr('From', 'sender@example.com'), hdr('To', 'recipient@example.com'), hdr('Subject', 'Message sent from Amazon SES'), hdr('MIME-Version', '1.0')];
const COMMON = { from: 'sender@example.com', to: ['recipient@example.com'], subject: 'Message sent from Amazon SES' };
const mailOf = (sentIso: string, headers: object[], extra: object = {}) => ({
  message_id: MESSAGE_ID,
  message_send_timestamp: Date.parse(sentIso),
  from_address: 'sender@example.com',
  destination: ['recipient@example.com'],
  headers_truncated: false,
  headers,
  common_headers: COMMON,
  ...extra,
});

function expectedEmail(appId: string): Record<string, object> {
  const bounceMail = mailOf('2017-08-05T00:40:02.012Z', [
    hdr('From', 'Sender Name <sender@example.com>'),
    hdr('To', 'recipient@example.com'),
    hdr('Subject', 'Message sent from Amazon SES'),
    hdr('MIME-Version', '1.0'),
    hdr('Content-Type', 'multipart/alternative; boundary="----=_Part_7307378_1629847660.1516840721503"'),
  ], { common_headers: { ...COMMON, from: 'Sender Name <sender@example.com>' } });
  const openHeaders = [hdr('X-SES-CONFIGURATION-SET', 'ConfigSet'), ...SIMPLE, hdr('Content-Type', 'multipart/alternative; boundary="XBoundary"')];
  return {
    '_email.send': pinpointEmail(appId, '_email.send', 'received', '2016-10-14T05:02:16.645Z', mailOf('2016-10-14T05:02:16.645Z', [...SIMPLE, hdr('Content-Type', 'multipart/mixed;  boundary="----=_Part_0_716996660.1476421336341"'), hdr('X-SES-MESSAGE-TAGS', 'myCustomTag1=myCustomTagValue1, myCustomTag2=myCustomTagValue2')]), { send: {} }),
    '_email.delivered': pinpointEmail(appId, '_email.delivered', 'delivered', '2016-10-19T23:20:52.240Z', mailOf('2016-10-19T23:20:52.240Z', [...SIMPLE, hdr('Content-Type', 'text/html; charset=UTF-8'), hdr('Content-Transfer-Encoding', '7bit')]), {
      delivery: { smtp_response: '250 2.6.0 Message received', reporting_mta: 'mta.example.com', recipients: ['recipient@example.com'], processing_time_millis: 11893 },
    }),
    '_email.hardbounce': pinpointEmail(appId, '_email.hardbounce', 'hardbounce', '2017-08-05T00:40:02.012Z', bounceMail, {
      bounce: {
        bounce_type: 'Permanent',
        bounce_sub_type: 'General',
        bounced_recipients: [{ email_address: 'recipient@example.com', action: 'failed', status: '5.1.1', diagnostic_code: 'smtp; 550 5.1.1 user unknown' }],
        feedback_id: '01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000',
        reporting_mta: 'dsn; mta.example.com',
      },
    }),
    '_email.complaint': pinpointEmail(appId, '_email.complaint', 'complaint', '2017-08-05T00:40:01.123Z', { ...bounceMail, message_send_timestamp: Date.parse('2017-08-05T00:40:01.123Z') }, {
      complaint: {
        complained_recipients: [{ email_address: 'recipient@example.com' }],
        feedback_id: '01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000',
        user_agent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/60.0.3112.90 Safari/537.36',
        complaint_feedback_type: 'abuse',
        arrival_date: '2017-08-05T00:41:02.669Z',
      },
    }),
    '_email.rejected': pinpointEmail(appId, '_email.rejected', 'rejected', '2016-10-14T17:38:15.211Z', {
      ...mailOf('2016-10-14T17:38:15.211Z', [...SIMPLE, hdr('Content-Type', 'multipart/mixed; boundary="qMm9M+Fa2AknHoGS"'), hdr('X-SES-MESSAGE-TAGS', 'myCustomTag1=myCustomTagValue1, myCustomTag2=myCustomTagValue2')]),
      destination: ['sender@example.com'],
    }, { reject: { reason: 'Bad content' } }),
    '_email.open': pinpointEmail(appId, '_email.open', 'opened', '2017-08-09T21:59:49.927Z', mailOf('2017-08-09T21:59:49.927Z', openHeaders), {
      open: { ip_address: '192.0.2.1', user_agent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 10_3_3 like Mac OS X) AppleWebKit/603.3.8 (KHTML, like Gecko) Mobile/14G60' },
    }),
    '_email.click': pinpointEmail(appId, '_email.click', 'http://docs.aws.amazon.com/ses/latest/DeveloperGuide/send-email-smtp.html', '2017-08-09T23:50:05.795Z', mailOf('2017-08-09T23:50:05.795Z', [...openHeaders, hdr('Message-ID', MESSAGE_ID)]), {
      click: {
        ip_address: '192.0.2.1',
        user_agent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/60.0.3112.90 Safari/537.36',
        link: 'http://docs.aws.amazon.com/ses/latest/DeveloperGuide/send-email-smtp.html',
        link_tags: { samplekey0: ['samplevalue0'], samplekey1: ['samplevalue1'] },
      },
    }),
  };
}

/** Pinpoint's SMS record (Developer Guide "SMS events" example), with the values of the SMS example log. */
function expectedSms(appId: string, accountId: string) {
  return {
    event_type: '_SMS.SUCCESS',
    event_timestamp: 1686975103470,
    event_version: '3.1',
    application: { app_id: appId, sdk: {} },
    client: { client_id: accountId },
    device: { platform: {} },
    session: {},
    attributes: {
      origination_phone_number: '+12065550152',
      destination_phone_number: '+14255550156',
      record_status: 'SUCCESSFUL',
      treatment_id: '0',
      number_of_message_parts: '1',
      message_id: '862a8790-60c0-4430-9b2b-658bdexample',
      message_type: 'Promotional',
    },
    // $0.09582 = 9.582 cents = 9,582 millicents.
    metrics: { price_in_millicents_usd: 9582 },
    awsAccountId: accountId,
  };
}

const SES_EXAMPLES = [SES_SEND, SES_DELIVERY, SES_BOUNCE, SES_COMPLAINT, SES_REJECT, SES_OPEN, SES_CLICK];

/** One Firehose HTTP endpoint request (protocol 1.0) as AWS Firehose sends it. */
async function deliver(
  url: string,
  events: object[],
  opts: { key?: string | null; requestId?: string; gzip?: boolean; common?: Record<string, string>; rawRecords?: Array<{ data: string }> } = {},
) {
  const requestId = opts.requestId ?? randomUUID();
  const records = opts.rawRecords ?? events.map((e) => ({ data: Buffer.from(JSON.stringify(e) + '\n').toString('base64') }));
  let body: Buffer = Buffer.from(JSON.stringify({ requestId, timestamp: Date.now(), records }));
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-amz-firehose-protocol-version': '1.0',
    'x-amz-firehose-request-id': requestId,
    'x-amz-firehose-source-arn': `arn:aws:firehose:us-east-1:${ACCOUNT}:deliverystream/ses-events`,
  };
  if (opts.key !== null) headers['x-amz-firehose-access-key'] = opts.key ?? KEY;
  if (opts.common) headers['x-amz-firehose-common-attributes'] = JSON.stringify({ commonAttributes: opts.common });
  if (opts.gzip) {
    body = gzipSync(body);
    headers['content-encoding'] = 'gzip';
  }
  const res = await fetch(`${url}${MESSAGING_EVENTS_PATH}`, { method: 'POST', headers, body: body as Uint8Array<ArrayBuffer> });
  return { status: res.status, body: (await res.json()) as { requestId: string; timestamp: number; errorMessage?: string }, requestId };
}

/** Every ingest-log record from `from` on, parsed. */
async function ingested(t: TestServer, from = 0): Promise<Array<{ appId: string; endpointId: string; eventId: string; record: any }>> {
  const out = [];
  let offset = Math.max(from, t.server.ingestLog.startOffset());
  while (offset < t.server.ingestLog.endOffset()) {
    const { records, nextOffset } = await t.server.ingestLog.read(offset, { maxRecords: 1000 });
    for (const r of records) {
      const e = decodeIngestEntry(r.payload);
      out.push({ appId: e.appId, endpointId: e.endpointId, eventId: e.eventId, record: JSON.parse(e.record.toString('utf8')) });
    }
    offset = nextOffset;
  }
  return out;
}

/** A record without the two values that depend on the moment and the message (checked separately). */
function stable(r: any) {
  const { arrival_timestamp, client, ...rest } = r;
  assert.equal(typeof arrival_timestamp, 'number');
  assert.equal(typeof client.client_id, 'string');
  return r.event_type.startsWith('_SMS') ? { ...rest, client } : rest;
}

describe('email and SMS events in', () => {
  let t: TestServer;
  let dataDir: string;
  let appId: string;
  let smsApp: string;

  before(async () => {
    // The operator creates the projects, then maps the configuration set and restarts.
    dataDir = await mkdtemp(join(tmpdir(), 'pinstream-messaging-'));
    const first = await startTestServer({ dataDir });
    appId = (await first.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'email' } }))).ApplicationResponse!.Id!;
    smsApp = (await first.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'sms' } }))).ApplicationResponse!.Id!;
    await first.close();
    t = await startTestServer({ dataDir, config: { messagingEvents: { accessKeys: [KEY], appTag: 'pinstream-app', configurationSets: { ConfigSet: appId } } } });
  });
  after(async () => {
    await t.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  test("SES's documented events through the HTTP endpoint protocol become Pinpoint's documented email records", async () => {
    const start = t.server.ingestLog.endOffset();
    const res = await deliver(t.server.url, SES_EXAMPLES, { gzip: true });
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys(res.body).sort(), ['requestId', 'timestamp']);
    assert.equal(res.body.requestId, res.requestId);
    const got = await ingested(t, start);
    assert.equal(got.length, SES_EXAMPLES.length);
    const expected = expectedEmail(appId);
    for (const e of got) {
      assert.equal(e.appId, appId);
      assert.equal(e.endpointId, e.record.client.client_id, 'the ingest entry is keyed by client_id');
      assert.deepEqual(stable(e.record), expected[e.record.event_type], e.record.event_type);
    }
    assert.deepEqual(got.map((e) => e.record.event_type).sort(), Object.keys(expected).sort());
    // Transactional sends: one client id per message, the same for every event of it.
    assert.equal(new Set(got.map((e) => e.record.client.client_id)).size, 1);
  });

  test("the SMS example becomes Pinpoint's documented _SMS.SUCCESS record with price_in_millicents_usd", async () => {
    const start = t.server.ingestLog.endOffset();
    const res = await deliver(t.server.url, [SMS_SUCCESSFUL], { common: { 'pinstream-app': smsApp } });
    assert.equal(res.status, 200);
    const got = await ingested(t, start);
    assert.equal(got.length, 1);
    assert.equal(got[0].appId, smsApp);
    assert.deepEqual(stable(got[0].record), expectedSms(smsApp, t.config.accountId));
  });

  test('a Firehose retry of the same request adds nothing', async () => {
    const requestId = randomUUID();
    const events = [{ ...SES_OPEN, open: { ...SES_OPEN.open, timestamp: '2017-08-09T22:10:00.000Z' } }];
    const first = await deliver(t.server.url, events, { requestId });
    assert.equal(first.status, 200);
    const end = t.server.ingestLog.endOffset();
    const before = t.server.messaging.stats();
    const again = await deliver(t.server.url, events, { requestId, gzip: true });
    assert.equal(again.status, 200);
    assert.equal(again.body.requestId, requestId);
    assert.equal(t.server.ingestLog.endOffset(), end);
    assert.equal(t.server.messaging.stats().duplicates, before.duplicates + 1);
    // A second open of the same message at another time is another event.
    const other = await deliver(t.server.url, [{ ...SES_OPEN, open: { ...SES_OPEN.open, timestamp: '2017-08-09T22:20:00.000Z' } }]);
    assert.equal(other.status, 200);
    assert.equal(t.server.ingestLog.endOffset(), end + 1);
  });

  test('a wrong or missing access key is refused with 401 in the protocol shape, before the body is used', async () => {
    const end = t.server.ingestLog.endOffset();
    const wrong = await deliver(t.server.url, [SES_SEND], { key: 'not-the-key-0123456789' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.requestId, wrong.requestId);
    assert.equal(typeof wrong.body.timestamp, 'number');
    assert.match(wrong.body.errorMessage!, /X-Amz-Firehose-Access-Key is not one of messagingEvents.accessKeys/);
    assert.ok(!wrong.body.errorMessage!.includes('not-the-key'), 'the presented key is not echoed');
    const missing = await deliver(t.server.url, [SES_SEND], { key: null });
    assert.equal(missing.status, 401);
    assert.match(missing.body.errorMessage!, /Missing X-Amz-Firehose-Access-Key/);
    assert.equal(t.server.ingestLog.endOffset(), end);
  });

  test('malformed records: 400 with the reason, and nothing of the request is written', async () => {
    const end = t.server.ingestLog.endOffset();
    const good = { data: Buffer.from(JSON.stringify({ ...SES_SEND, mail: { ...SES_SEND.mail, messageId: 'fresh-1' } })).toString('base64') };
    const cases: Array<[Array<{ data: string }>, RegExp]> = [
      [[good, { data: '***' }], /records\[1\]\.data is not base64/],
      [[good, { data: Buffer.from('{not json').toString('base64') }], /records\[1\]: not a JSON event/],
      [[good, { data: Buffer.from(JSON.stringify({ hello: 'world' })).toString('base64') }], /records\[1\]: neither an SES event/],
      [[good, { data: Buffer.from(JSON.stringify({ ...SES_SEND, eventType: 'Teleport' })).toString('base64') }], /SES eventType "Teleport" is not one of/],
      // Names of Object.prototype's members are not SES event types (own keys only).
      [[good, { data: Buffer.from(JSON.stringify({ ...SES_SEND, eventType: 'constructor' })).toString('base64') }], /SES eventType "constructor" is not one of/],
      [[good, { data: Buffer.from(JSON.stringify({ ...SES_SEND, eventType: '__proto__' })).toString('base64') }], /SES eventType "__proto__" is not one of/],
      [[good, { data: Buffer.from(JSON.stringify({ ...SES_DELIVERY, delivery: undefined })).toString('base64') }], /SES Delivery record has no delivery object/],
    ];
    for (const [rawRecords, message] of cases) {
      const res = await deliver(t.server.url, [], { rawRecords });
      assert.equal(res.status, 400, String(message));
      assert.equal(res.body.requestId, res.requestId);
      assert.match(res.body.errorMessage!, message);
    }
    const notJson = await fetch(`${t.server.url}${MESSAGING_EVENTS_PATH}`, { method: 'POST', headers: { 'x-amz-firehose-access-key': KEY }, body: 'nope' });
    assert.equal(notJson.status, 400);
    assert.match(((await notJson.json()) as { errorMessage: string }).errorMessage, /The body is not JSON/);
    assert.equal(t.server.ingestLog.endOffset(), end, 'no record of a refused request was written');
    assert.ok(t.server.messaging.stats().malformed >= cases.length + 1);
  });

  test('bodies beyond the limits: declared too long, and a gzip body inflating too far, are 413', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${t.server.url}${MESSAGING_EVENTS_PATH}`, {
        method: 'POST',
        headers: { 'x-amz-firehose-access-key': KEY, 'content-length': String(MAX_RECEIVER_BODY_BYTES + 1) },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    assert.equal(status, 413);
    const bomb = gzipSync(Buffer.alloc(MAX_RECEIVER_DECODED_BYTES + 1, 0x20));
    const res = await fetch(`${t.server.url}${MESSAGING_EVENTS_PATH}`, {
      method: 'POST',
      headers: { 'x-amz-firehose-access-key': KEY, 'content-encoding': 'gzip' },
      body: bomb as Uint8Array<ArrayBuffer>,
    });
    assert.equal(res.status, 413);
    assert.match(((await res.json()) as { errorMessage: string }).errorMessage, new RegExp(`inflates beyond ${MAX_RECEIVER_DECODED_BYTES} bytes`));
  });

  test('an unknown configuration set is accepted, kept in the unattributed log, counted and reported in /metrics', async () => {
    const end = t.server.ingestLog.endOffset();
    const keptBefore = t.server.unattributedLog!.endOffset();
    const stray = { ...SES_SEND, mail: { ...SES_SEND.mail, messageId: 'stray-1', tags: { 'ses:configuration-set': ['Marketing'] } } };
    const voice = { eventType: 'VOICE_COMPLETED', messageId: 'v-1', eventTimestamp: 1 };
    const res = await deliver(t.server.url, [stray, voice]);
    assert.equal(res.status, 200);
    assert.equal(t.server.ingestLog.endOffset(), end);
    assert.equal(t.server.unattributedLog!.endOffset(), keptBefore + 2);
    const { records } = await t.server.unattributedLog!.read(keptBefore, { maxRecords: 10 });
    const kept = records.map((r) => JSON.parse(r.payload.toString('utf8')));
    assert.deepEqual(kept.map((k) => [k.reason, k.label, k.requestId]), [
      ['unknown-configuration-set', 'Marketing', res.requestId],
      ['no-pinpoint-record', 'VOICE_COMPLETED', res.requestId],
    ]);
    assert.deepEqual(kept[0].event, stray);
    const stats = t.server.messaging.stats();
    assert.equal(stats.unattributed['unknown-configuration-set:Marketing'], 1);
    const metrics = await (await fetch(`${t.server.url}/metrics`, { headers: { authorization: `Bearer ${t.config.metricsToken}` } })).text();
    assert.match(metrics, /pinstream_messaging_events_unattributed_total\{reason="unknown-configuration-set",label="Marketing"\} 1/);
    assert.match(metrics, /pinstream_messaging_events_unattributed_total\{reason="no-pinpoint-record",label="VOICE_COMPLETED"\} 1/);
  });

  test('a configuration set named like an Object.prototype member maps to no project: kept as unknown, never attributed', async () => {
    const end = t.server.ingestLog.endOffset();
    const keptBefore = t.server.unattributedLog!.endOffset();
    const named = (set: string, id: string) => ({ ...SES_SEND, mail: { ...SES_SEND.mail, messageId: id, tags: { 'ses:configuration-set': [set] } } });
    const res = await deliver(t.server.url, [named('constructor', 'proto-1'), named('toString', 'proto-2'), named('__proto__', 'proto-3')]);
    assert.equal(res.status, 200);
    assert.equal(t.server.ingestLog.endOffset(), end, 'nothing attributed to a project');
    const { records } = await t.server.unattributedLog!.read(keptBefore, { maxRecords: 10 });
    assert.deepEqual(
      records.map((r) => JSON.parse(r.payload.toString('utf8'))).map((k) => [k.reason, k.label]),
      [['unknown-configuration-set', 'constructor'], ['unknown-configuration-set', 'toString'], ['unknown-configuration-set', '__proto__']],
    );
  });

  test("through this server's Firehose: an HTTP endpoint delivery stream pointing at the receiver", async () => {
    await createDeliveryRole(t.server);
    const firehose = firehoseClient(t.server);
    try {
      await firehose.send(
        new CreateDeliveryStreamCommand({
          DeliveryStreamName: 'ses-events',
          HttpEndpointDestinationConfiguration: {
            EndpointConfiguration: { Url: `${t.server.url}${MESSAGING_EVENTS_PATH}`, Name: 'pinstream', AccessKey: KEY },
            BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 0 },
            RequestConfiguration: { ContentEncoding: 'GZIP', CommonAttributes: [{ AttributeName: 'pinstream-app', AttributeValue: smsApp }] },
            RoleARN: ROLE,
            S3Configuration: s3Destination('ses-backup'),
          },
        }),
      );
      const start = t.server.ingestLog.endOffset();
      const delivery = { ...SES_DELIVERY, mail: { ...SES_DELIVERY.mail, messageId: 'via-firehose' } };
      const sms = { ...SMS_SUCCESSFUL, messageId: 'via-firehose-sms' };
      const put = await firehose.send(
        new PutRecordBatchCommand({
          DeliveryStreamName: 'ses-events',
          Records: [delivery, sms].map((e) => ({ Data: Buffer.from(JSON.stringify(e) + '\n') })),
        }),
      );
      assert.equal(put.FailedPutCount, 0);
      const got = await until(async () => {
        const r = await ingested(t, start);
        return r.length >= 2 ? r : undefined;
      }, 'the delivery stream to reach the receiver');
      const email = got.find((e) => e.record.event_type === '_email.delivered')!;
      const expected = expectedEmail(appId)['_email.delivered'] as any;
      // The configuration set (ConfigSet → email app) wins over the stream's common attribute.
      assert.equal(email.appId, appId);
      assert.deepEqual(stable(email.record), { ...expected, facets: { email_channel: { mail_event: { ...expected.facets.email_channel.mail_event, mail: { ...expected.facets.email_channel.mail_event.mail, message_id: 'via-firehose' } } } } });
      const text = got.find((e) => e.record.event_type === '_SMS.SUCCESS')!;
      assert.equal(text.appId, smsApp);
      const want = expectedSms(smsApp, t.config.accountId);
      assert.deepEqual(stable(text.record), { ...want, attributes: { ...want.attributes, message_id: 'via-firehose-sms' } });
    } finally {
      firehose.destroy();
    }
  });

  test('the transactional email and SMS KPIs count the mapped events', async () => {
    const day = new Date(Date.now() - 2 * 86_400_000).toISOString().slice(0, 10);
    const at = (hh: string) => `${day}T${hh}:00:00.000Z`;
    const kpiApp = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'kpis' } }))).ApplicationResponse!.Id!;
    const tags = { 'pinstream-app': [kpiApp] };
    const message = (id: string, event: any) => ({ ...event, mail: { ...event.mail, messageId: id, timestamp: at('08'), tags } });
    const events = [
      message('m1', SES_SEND), message('m1', SES_DELIVERY), message('m1', SES_OPEN), message('m1', SES_CLICK),
      message('m2', SES_SEND), message('m2', SES_BOUNCE),
      message('m3', SES_SEND), message('m3', SES_DELIVERY), message('m3', SES_COMPLAINT),
      { ...SMS_SUCCESSFUL, eventTimestamp: Date.parse(at('09')), context: { 'pinstream-app': kpiApp }, isoCountryCode: 'US' },
    ];
    assert.equal((await deliver(t.server.url, events)).status, 200);
    await t.server.analytics.catchUp();
    const kpi = async (KpiName: string) => {
      const r = await t.pinpoint.send(new GetApplicationDateRangeKpiCommand({ ApplicationId: kpiApp, KpiName, StartTime: new Date(`${day}T00:00:00Z`), EndTime: new Date(`${day}T23:59:59Z`) }));
      return r.ApplicationDateRangeKpiResponse!.KpiResult!.Rows!.map((row) => row.Values!.map((v) => v.Value).join(','));
    };
    assert.deepEqual(await kpi('txn-emails-sent'), ['3.0']);
    assert.deepEqual(await kpi('txn-emails-delivered'), ['2.0']); // sent − hard bounce
    assert.deepEqual(await kpi('txn-emails-hard-bounced'), ['1.0']);
    assert.deepEqual(await kpi('txn-emails-opened'), ['1.0']);
    assert.deepEqual(await kpi('txn-emails-clicked'), ['1.0']);
    assert.deepEqual(await kpi('txn-emails-with-complaints'), ['1.0']);
    assert.deepEqual(await kpi('txn-sms-delivered'), ['1.0']);
    assert.deepEqual(await kpi('txn-sms-sent'), ['1.0']);
  });
});

describe('messagingEvents configuration', () => {
  const load = (messagingEvents: unknown) => loadConfig({}, { messagingEvents } as never);
  test('validated at start, secrets never echoed', () => {
    const m = load({ accessKeys: [KEY] }).messagingEvents!;
    assert.deepEqual({ ...m, configurationSets: { ...m.configurationSets } }, { accessKeys: [KEY], appTag: 'pinstream-app', configurationSets: {} });
    assert.deepEqual({ ...loadConfig({ PINSTREAM_MESSAGING_EVENTS: JSON.stringify({ accessKeys: [KEY], configurationSets: { ConfigSet: 'abc' } }) }).messagingEvents!.configurationSets }, { ConfigSet: 'abc' });
    const short = 'x'.repeat(MIN_MESSAGING_ACCESS_KEY_LENGTH - 1);
    assert.throws(() => load({ accessKeys: [short] }), (e: Error) => e instanceof ConfigError && /accessKeys\[0\] must be 16-4096/.test(e.message) && !e.message.includes(short));
    assert.throws(() => load({ accessKeys: [] }), /non-empty list/);
    assert.throws(() => load({ accessKeys: [KEY], configurationSets: { 'bad name!': 'a' } }), /not a configuration set name/);
    assert.throws(() => load({ accessKeys: [KEY], configurationSets: { ok: 'no spaces' } }), /configurationSets.ok must be a project id/);
    assert.throws(() => load({ accessKeys: [KEY], extra: 1 }), /unknown key "extra"/);
  });
  test('without it the receiver answers 404 saying how to enable it', async () => {
    const t = await startTestServer();
    try {
      const res = await deliver(t.server.url, [SES_SEND]);
      assert.equal(res.status, 404);
      assert.match(res.body.errorMessage!, /not enabled: configure messagingEvents/);
    } finally {
      await t.close();
    }
  });
});
