// Policy evaluation checked on AWS's documented examples (IAM User Guide: policy evaluation logic,
// NotAction/NotResource, condition operators, and Pinpoint's event-stream role trust policy).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate, parsePolicy, PolicyError, wildcardMatch } from '../src/iam/policy.js';

const APP = 'arn:aws:mobiletargeting:us-east-1:123456789012:apps/abc123';
const OTHER_APP = 'arn:aws:mobiletargeting:us-east-1:123456789012:apps/zzz999';
const STREAM = 'arn:aws:kinesis:us-east-1:123456789012:stream/events';

const allowEvents = parsePolicy({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: ['mobiletargeting:UpdateEndpoint', 'mobiletargeting:PutEvents'], Resource: `${APP}*` }],
});

test('an Allow grants exactly its actions on its resources; everything else is implicitly denied', () => {
  assert.equal(evaluate([allowEvents], { action: 'mobiletargeting:PutEvents', resource: APP }), 'Allow');
  assert.equal(evaluate([allowEvents], { action: 'mobiletargeting:UpdateEndpoint', resource: APP }), 'Allow');
  assert.equal(evaluate([allowEvents], { action: 'mobiletargeting:GetApp', resource: APP }), 'ImplicitDeny');
  assert.equal(evaluate([allowEvents], { action: 'mobiletargeting:PutEvents', resource: OTHER_APP }), 'ImplicitDeny');
  assert.equal(evaluate([], { action: 'mobiletargeting:PutEvents', resource: APP }), 'ImplicitDeny');
});

test('an explicit Deny in any policy overrides any Allow', () => {
  const admin = parsePolicy({ Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] });
  const denyDelete = parsePolicy({ Statement: [{ Effect: 'Deny', Action: 'mobiletargeting:Delete*', Resource: '*' }] });
  assert.equal(evaluate([admin, denyDelete], { action: 'mobiletargeting:DeleteApp', resource: APP }), 'ExplicitDeny');
  assert.equal(evaluate([admin, denyDelete], { action: 'mobiletargeting:GetApp', resource: APP }), 'Allow');
});

test('action names match case-insensitively, with * and ? wildcards', () => {
  const p = parsePolicy({ Statement: [{ Effect: 'Allow', Action: ['MobileTargeting:get*', 'kinesis:PutRecord?'], Resource: '*' }] });
  assert.equal(evaluate([p], { action: 'mobiletargeting:GetApplicationDateRangeKpi', resource: APP }), 'Allow');
  assert.equal(evaluate([p], { action: 'MOBILETARGETING:GETAPP', resource: APP }), 'Allow');
  assert.equal(evaluate([p], { action: 'kinesis:PutRecords', resource: STREAM }), 'Allow');
  assert.equal(evaluate([p], { action: 'kinesis:PutRecord', resource: STREAM }), 'ImplicitDeny', '? needs exactly one character');
  assert.equal(evaluate([p], { action: 'mobiletargeting:PutEvents', resource: APP }), 'ImplicitDeny');
});

test('resources match case-sensitively', () => {
  const p = parsePolicy({ Statement: [{ Effect: 'Allow', Action: 'kinesis:*', Resource: 'arn:aws:kinesis:*:123456789012:stream/Events' }] });
  assert.equal(evaluate([p], { action: 'kinesis:GetRecords', resource: 'arn:aws:kinesis:us-east-1:123456789012:stream/Events' }), 'Allow');
  assert.equal(evaluate([p], { action: 'kinesis:GetRecords', resource: STREAM }), 'ImplicitDeny');
});

test('NotAction: allow everything except IAM (AWS example "Allow all except IAM")', () => {
  const p = parsePolicy({ Statement: [{ Effect: 'Allow', NotAction: 'iam:*', Resource: '*' }] });
  assert.equal(evaluate([p], { action: 'kinesis:PutRecords', resource: STREAM }), 'Allow');
  assert.equal(evaluate([p], { action: 'iam:CreateUser', resource: 'arn:aws:iam::123456789012:user/x' }), 'ImplicitDeny');
});

test('NotResource with Deny: deny everything outside one app', () => {
  const allowAll = parsePolicy({ Statement: [{ Effect: 'Allow', Action: 'mobiletargeting:*', Resource: '*' }] });
  const fence = parsePolicy({ Statement: [{ Effect: 'Deny', Action: 'mobiletargeting:*', NotResource: [APP, `${APP}/*`] }] });
  assert.equal(evaluate([allowAll, fence], { action: 'mobiletargeting:GetApp', resource: APP }), 'Allow');
  assert.equal(evaluate([allowAll, fence], { action: 'mobiletargeting:GetApplicationDateRangeKpi', resource: `${APP}/kpis/daterange/x` }), 'Allow');
  assert.equal(evaluate([allowAll, fence], { action: 'mobiletargeting:GetApp', resource: OTHER_APP }), 'ExplicitDeny');
});

const trust = parsePolicy(
  {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Service: 'pinpoint.amazonaws.com' },
        Action: 'sts:AssumeRole',
        Condition: {
          StringEquals: { 'aws:SourceAccount': '123456789012' },
          ArnLike: { 'aws:SourceArn': 'arn:aws:mobiletargeting:us-east-1:123456789012:apps/*' },
        },
      },
    ],
  },
  'trust',
);

test("Pinpoint's event-stream trust policy: service principal plus SourceAccount and SourceArn conditions", () => {
  const req = (principal: string, account: string, arn: string) => ({
    action: 'sts:AssumeRole',
    resource: 'arn:aws:iam::123456789012:role/PinpointEventStreamRole',
    principal: { type: 'Service' as const, id: principal },
    context: { 'aws:SourceAccount': account, 'aws:SourceArn': arn },
  });
  assert.equal(evaluate([trust], req('pinpoint.amazonaws.com', '123456789012', APP)), 'Allow');
  assert.equal(evaluate([trust], req('firehose.amazonaws.com', '123456789012', APP)), 'ImplicitDeny');
  assert.equal(evaluate([trust], req('pinpoint.amazonaws.com', '999999999999', APP)), 'ImplicitDeny');
  assert.equal(evaluate([trust], req('pinpoint.amazonaws.com', '123456789012', 'arn:aws:mobiletargeting:eu-west-1:123456789012:apps/x')), 'ImplicitDeny');
  // Condition keys are case-insensitive.
  assert.equal(
    evaluate([trust], { ...req('pinpoint.amazonaws.com', '', ''), context: { 'AWS:SOURCEACCOUNT': '123456789012', 'aws:sourcearn': APP } }),
    'Allow',
  );
});

test('conditions: missing keys, IfExists, negated operators, OR of values and AND of keys', () => {
  const p = (Condition: object) => parsePolicy({ Statement: [{ Effect: 'Allow', Action: '*', Resource: '*', Condition }] });
  const r = (context: Record<string, string>) => ({ action: 'kinesis:PutRecords', resource: STREAM, context });
  assert.equal(evaluate([p({ StringEquals: { 'aws:SourceAccount': '1' } })], r({})), 'ImplicitDeny', 'a missing key fails');
  assert.equal(evaluate([p({ StringEqualsIfExists: { 'aws:SourceAccount': '1' } })], r({})), 'Allow', 'IfExists passes on a missing key');
  assert.equal(evaluate([p({ StringNotEquals: { 'aws:SourceAccount': '1' } })], r({})), 'Allow', 'negated operators pass on a missing key');
  assert.equal(evaluate([p({ StringNotEquals: { 'aws:SourceAccount': '1' } })], r({ 'aws:SourceAccount': '1' })), 'ImplicitDeny');
  assert.equal(evaluate([p({ StringEquals: { k: ['a', 'b'] } })], r({ k: 'b' })), 'Allow', 'values are ORed');
  assert.equal(evaluate([p({ StringEquals: { k: 'a', j: 'b' } })], r({ k: 'a', j: 'x' })), 'ImplicitDeny', 'keys are ANDed');
  assert.equal(evaluate([p({ StringLike: { k: 'ab*' } })], r({ k: 'abc' })), 'Allow');
  assert.equal(evaluate([p({ StringEqualsIgnoreCase: { k: 'ABC' } })], r({ k: 'abc' })), 'Allow');
  assert.equal(evaluate([p({ ArnEquals: { a: STREAM } })], r({ a: STREAM })), 'Allow');
  assert.equal(evaluate([p({ ArnLike: { a: 'arn:aws:kinesis:*:123456789012:stream/*' } })], r({ a: STREAM })), 'Allow');
  assert.equal(evaluate([p({ ArnLike: { a: 'arn:aws:kinesis:us-east-1:*' } })], r({ a: STREAM })), 'ImplicitDeny', 'too few ARN parts never match');
  assert.equal(evaluate([p({ NumericLessThan: { n: '10' } })], r({ n: '9' })), 'Allow');
  assert.equal(evaluate([p({ Bool: { 'aws:SecureTransport': 'true' } })], r({ 'aws:SecureTransport': 'false' })), 'ImplicitDeny');
  assert.equal(evaluate([p({ Null: { k: 'true' } })], r({})), 'Allow');
});

test('malformed policies are rejected with a message naming the problem', () => {
  assert.throws(() => parsePolicy('{not json'), PolicyError);
  assert.throws(() => parsePolicy({}), /must contain a Statement/);
  assert.throws(() => parsePolicy({ Statement: [{ Effect: 'Maybe', Action: '*', Resource: '*' }] }), /Effect must be "Allow" or "Deny"/);
  assert.throws(() => parsePolicy({ Statement: [{ Effect: 'Allow', Resource: '*' }] }), /exactly one of Action or NotAction/);
  assert.throws(() => parsePolicy({ Statement: [{ Effect: 'Allow', Action: '*' }] }), /exactly one of Resource or NotResource/);
  assert.throws(() => parsePolicy({ Statement: [{ Effect: 'Allow', Action: '*', Resource: '*', Condition: { StringSorta: {} } }] }), /unknown operator StringSorta/);
  assert.throws(() => parsePolicy({ Version: '2020-01-01', Statement: [] }), /Version/);
  // A condition value that is an object (found by fuzzing: {"toString":{}} could not be made a string: a 500).
  for (const bad of [{ valueOf: 'x', toString: {} }, [{}], null, [['a']]]) {
    assert.throws(
      () => parsePolicy({ Statement: [{ Effect: 'Deny', Action: '*', Resource: '*', Condition: { StringEquals: { 'aws:username': bad } } }] }),
      (e: Error) => e instanceof PolicyError && /Condition\.StringEquals\.aws:username: condition values must be strings, numbers or booleans/.test(e.message),
    );
  }
  assert.deepEqual(
    parsePolicy({ Statement: [{ Effect: 'Allow', Action: '*', Resource: '*', Condition: { NumericLessThan: { 'aws:MultiFactorAuthAge': 3600 }, Bool: { 'aws:SecureTransport': [true] } } }] }).Statement[0].Condition,
    Object.assign(Object.create(null), { NumericLessThan: Object.assign(Object.create(null), { 'aws:MultiFactorAuthAge': ['3600'] }), Bool: Object.assign(Object.create(null), { 'aws:SecureTransport': ['true'] }) }),
  );
  assert.throws(() => parsePolicy({ Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole' }] }, 'trust'), /needs a Principal/);
});

test('wildcards do not treat regex characters specially', () => {
  assert.equal(wildcardMatch('stream/a.b', 'stream/aXb', false), false);
  assert.equal(wildcardMatch('stream/(x)*', 'stream/(x)yz', false), true);
});
