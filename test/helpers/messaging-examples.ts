// AWS's documented examples, as published: SES event-publishing records (SES Developer Guide,
// "Examples of event data that Amazon SES publishes to Firehose") and an End User Messaging SMS
// event ("Messaging Events", SMS example log). test/messaging-events.test.ts writes the Pinpoint
// records they must become from Pinpoint's documentation, not from the mapper.

const TAGS = { 'ses:configuration-set': ['ConfigSet'], 'ses:source-ip': ['192.0.2.0'], 'ses:from-domain': ['example.com'], 'ses:caller-identity': ['ses_user'] };
const ID = 'EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000';
const h = (name: string, value: string) => ({ name, value });

export const MESSAGE_ID = ID;

export const SES_BOUNCE = {
  eventType: 'Bounce',
  bounce: {
    bounceType: 'Permanent',
    bounceSubType: 'General',
    bouncedRecipients: [{ emailAddress: 'recipient@example.com', action: 'failed', status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 user unknown' }],
    timestamp: '2017-08-05T00:41:02.669Z',
    feedbackId: '01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000',
    reportingMTA: 'dsn; mta.example.com',
  },
  mail: {
    timestamp: '2017-08-05T00:40:02.012Z',
    source: 'Sender Name <sender@example.com>',
    sourceArn: 'arn:aws:ses:us-east-1:123456789012:identity/sender@example.com',
    sendingAccountId: '123456789012',
    messageId: ID,
    destination: ['recipient@example.com'],
    headersTruncated: false,
    headers: [
      h('From', 'Sender Name <sender@example.com>'),
      h('To', 'recipient@example.com'),
      h('Subject', 'Message sent from Amazon SES'),
      h('MIME-Version', '1.0'),
      h('Content-Type', 'multipart/alternative; boundary="----=_Part_7307378_1629847660.1516840721503"'),
    ],
    commonHeaders: { from: ['Sender Name <sender@example.com>'], to: ['recipient@example.com'], messageId: ID, subject: 'Message sent from Amazon SES' },
    tags: TAGS,
  },
};

export const SES_COMPLAINT = {
  eventType: 'Complaint',
  complaint: {
    complainedRecipients: [{ emailAddress: 'recipient@example.com' }],
    timestamp: '2017-08-05T00:41:02.669Z',
    feedbackId: '01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000',
    userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/60.0.3112.90 Safari/537.36',
    complaintFeedbackType: 'abuse',
    arrivalDate: '2017-08-05T00:41:02.669Z',
  },
  mail: { ...SES_BOUNCE.mail, timestamp: '2017-08-05T00:40:01.123Z' },
};

const SIMPLE_HEADERS = [h('From', 'sender@example.com'), h('To', 'recipient@example.com'), h('Subject', 'Message sent from Amazon SES'), h('MIME-Version', '1.0')];
const SIMPLE_COMMON = { from: ['sender@example.com'], to: ['recipient@example.com'], messageId: ID, subject: 'Message sent from Amazon SES' };
const simpleMail = (timestamp: string, extraHeaders: object[], tags: object = TAGS) => ({
  timestamp,
  source: 'sender@example.com',
  sourceArn: 'arn:aws:ses:us-east-1:123456789012:identity/sender@example.com',
  sendingAccountId: '123456789012',
  messageId: ID,
  destination: ['recipient@example.com'],
  headersTruncated: false,
  headers: [...SIMPLE_HEADERS, ...extraHeaders],
  commonHeaders: SIMPLE_COMMON,
  tags,
});
const CUSTOM = { myCustomTag1: ['myCustomTagValue1'], myCustomTag2: ['myCustomTagValue2'] };

export const SES_DELIVERY = {
  eventType: 'Delivery',
  mail: simpleMail('2016-10-19T23:20:52.240Z', [h('Content-Type', 'text/html; charset=UTF-8'), h('Content-Transfer-Encoding', '7bit')], { ...TAGS, 'ses:outgoing-ip': ['192.0.2.0'], ...CUSTOM }),
  delivery: { timestamp: '2016-10-19T23:21:04.133Z', processingTimeMillis: 11893, recipients: ['recipient@example.com'], smtpResponse: '250 2.6.0 Message received', reportingMTA: 'mta.example.com' },
};

export const SES_SEND = {
  eventType: 'Send',
  mail: simpleMail('2016-10-14T05:02:16.645Z', [h('Content-Type', 'multipart/mixed;  boundary="----=_Part_0_716996660.1476421336341"'), h('X-SES-MESSAGE-TAGS', 'myCustomTag1=myCustomTagValue1, myCustomTag2=myCustomTagValue2')], { ...TAGS, ...CUSTOM }),
  send: {},
};

export const SES_REJECT = {
  eventType: 'Reject',
  mail: { ...simpleMail('2016-10-14T17:38:15.211Z', [h('Content-Type', 'multipart/mixed; boundary="qMm9M+Fa2AknHoGS"'), h('X-SES-MESSAGE-TAGS', 'myCustomTag1=myCustomTagValue1, myCustomTag2=myCustomTagValue2')], { ...TAGS, ...CUSTOM }), destination: ['sender@example.com'] },
  reject: { reason: 'Bad content' },
};

const openClickHeaders = [h('X-SES-CONFIGURATION-SET', 'ConfigSet'), ...SIMPLE_HEADERS, h('Content-Type', 'multipart/alternative; boundary="XBoundary"')];
export const SES_OPEN = {
  eventType: 'Open',
  mail: {
    commonHeaders: { from: ['sender@example.com'], messageId: ID, subject: 'Message sent from Amazon SES', to: ['recipient@example.com'] },
    destination: ['recipient@example.com'],
    headers: openClickHeaders,
    headersTruncated: false,
    messageId: ID,
    sendingAccountId: '123456789012',
    source: 'sender@example.com',
    tags: { 'ses:caller-identity': ['ses-user'], 'ses:configuration-set': ['ConfigSet'], 'ses:from-domain': ['example.com'], 'ses:source-ip': ['192.0.2.0'] },
    timestamp: '2017-08-09T21:59:49.927Z',
  },
  open: { ipAddress: '192.0.2.1', timestamp: '2017-08-09T22:00:19.652Z', userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 10_3_3 like Mac OS X) AppleWebKit/603.3.8 (KHTML, like Gecko) Mobile/14G60' },
};

export const SES_CLICK = {
  eventType: 'Click',
  click: {
    ipAddress: '192.0.2.1',
    link: 'http://docs.aws.amazon.com/ses/latest/DeveloperGuide/send-email-smtp.html',
    linkTags: { samplekey0: ['samplevalue0'], samplekey1: ['samplevalue1'] },
    timestamp: '2017-08-09T23:51:25.570Z',
    userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/60.0.3112.90 Safari/537.36',
  },
  mail: { ...SES_OPEN.mail, headers: [...openClickHeaders, h('Message-ID', ID)], timestamp: '2017-08-09T23:50:05.795Z', tags: { ...SES_OPEN.mail.tags, 'ses:caller-identity': ['ses_user'] } },
};

/** End User Messaging SMS, "SMS example log". */
export const SMS_SUCCESSFUL = {
  eventType: 'TEXT_SUCCESSFUL',
  eventVersion: '1.0',
  eventTimestamp: 1686975103470,
  isFinal: true,
  originationPhoneNumber: '+12065550152',
  destinationPhoneNumber: '+14255550156',
  isInternationalSend: false,
  mcc: '310',
  mnc: '800',
  messageId: '862a8790-60c0-4430-9b2b-658bdexample',
  messageRequestTimestamp: 1686975103170,
  messageEncoding: 'GSM',
  messageType: 'PROMOTIONAL',
  messageStatus: 'SUCCESSFUL',
  messageStatusDescription: 'Message has been accepted by phone carrier',
  context: { account: 'bar' },
  totalMessageParts: 1,
  totalMessagePrice: 0.09582,
  totalCarrierFee: 0.0,
};
