// The generated service tables (src/models/generated, from AWS's models by src/models/generate.ts)
// are whole: every operation's input and output, every member, list element and map key/value
// names a shape the table holds, and each service has the protocol metadata its wire layer needs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MemberRef, ServiceModel } from '../src/models/types.js';
import { model as pinpoint } from '../src/models/generated/pinpoint.js';
import { model as kinesis } from '../src/models/generated/kinesis.js';
import { model as firehose } from '../src/models/generated/firehose.js';
import { model as iam } from '../src/models/generated/iam.js';
import { model as sts } from '../src/models/generated/sts.js';
import { model as cognitoIdentity } from '../src/models/generated/cognito-identity.js';
import { model as glue } from '../src/models/generated/glue.js';
import { SERVICE_OPERATIONS } from '../src/models/generate.js';

const MODELS: Record<string, ServiceModel> = { pinpoint, kinesis, firehose, iam, sts, 'cognito-identity': cognitoIdentity, glue };

for (const [name, m] of Object.entries(MODELS)) {
  test(`${name}: every shape reference resolves, and the protocol metadata is there`, () => {
    const refs: Array<[string, MemberRef | undefined]> = [];
    for (const [op, o] of Object.entries(m.operations)) {
      assert.equal(o.name, op);
      assert.match(o.http.method, /^(GET|PUT|POST|DELETE|PATCH|HEAD)$/);
      assert.match(o.http.requestUri, /^\//);
      refs.push([`${op} input`, o.input], [`${op} output`, o.output]);
    }
    for (const [sn, s] of Object.entries(m.shapes)) {
      assert.equal((s as { documentation?: unknown }).documentation, undefined, `${sn} keeps no documentation`);
      for (const [mn, ref] of Object.entries(s.members ?? {})) refs.push([`${sn}.${mn}`, ref]);
      refs.push([`${sn} member`, s.member], [`${sn} key`, s.key], [`${sn} value`, s.value]);
    }
    for (const [where, ref] of refs) if (ref) assert.ok(Object.hasOwn(m.shapes, ref.shape), `${where} names missing shape ${ref.shape}`);
    assert.ok(Object.keys(m.operations).length > 0);
    if (m.metadata.protocol === 'json') assert.match(m.metadata.targetPrefix ?? '', /^\w+$/);
    if (m.metadata.protocol === 'query') assert.match(m.metadata.xmlNamespace ?? '', /^https:\/\//);
  });
}

test('the tables carry the constraints the wire layers validate (spot checks against the AWS documentation)', () => {
  assert.deepEqual(kinesis.shapes.StreamName, { type: 'string', max: 128, min: 1, pattern: '[a-zA-Z0-9_.-]+' });
  assert.deepEqual(kinesis.operations.PutRecords.input, { shape: 'PutRecordsInput' });
  assert.deepEqual(kinesis.shapes.PutRecordsRequestEntryList.max, 500);
  assert.equal(pinpoint.operations.PutEvents.http.requestUri, '/v1/apps/{application-id}/events');
  assert.equal(pinpoint.operations.PutEvents.http.responseCode, 202);
  assert.equal(firehose.metadata.targetPrefix, 'Firehose_20150804');
  assert.equal(iam.metadata.protocol, 'query');
  assert.equal(sts.metadata.apiVersion, '2011-06-15');
});

test("a filtered table (Glue's): the served operations whole, the others by name only, no shape beyond what they reach", () => {
  const served = new Set(SERVICE_OPERATIONS.glue);
  assert.ok(Object.keys(glue.operations).length > 200, 'every Glue operation is named');
  for (const [op, o] of Object.entries(glue.operations)) {
    if (served.has(op)) assert.ok(o.input && o.output, `${op} is whole`);
    else assert.deepEqual(Object.keys(o).sort(), ['http', 'name'], `${op} is named only`);
  }
  assert.ok(Object.keys(glue.shapes).length < 250, `${Object.keys(glue.shapes).length} shapes`);
  assert.ok(glue.shapes.StorageDescriptor && glue.shapes.PartitionInput && glue.shapes.EntityNotFoundException);
  assert.equal(glue.shapes.StartCrawlerRequest, undefined);
});
