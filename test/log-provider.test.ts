// The LogProvider: one place for where logs live. Stream names are client input: `.` and `..` are
// valid Kinesis and Firehose names, and must stay one directory below their kind's folder (a
// Firehose stream named `..` once had its log in the data directory itself, and deleting the
// stream removed the whole data directory).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateDeliveryStreamCommand, DeleteDeliveryStreamCommand, PutRecordCommand } from '@aws-sdk/client-firehose';
import { SegmentLogProvider } from '../src/log/provider.js';
import { systemClock } from '../src/clock.js';
import { startTestServer } from './helpers/server.js';
import { firehoseClient, s3Destination } from './helpers/firehose.js';
import { createPinpointRole } from './helpers/eventstream.js';
import { IAMClient } from '@aws-sdk/client-iam';

test('the provider keeps `.` and `..` one directory below their kind and refuses separators', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-provider-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const logs = new SegmentLogProvider({ dataDir, fsync: false, clock: systemClock });
  for (const name of ['.', '..']) {
    const log = await logs.open('firehose', name);
    await log.append(['x']);
    await log.close();
  }
  assert.deepEqual((await readdir(join(dataDir, 'firehose'))).sort(), ['%2E', '%2E%2E']);
  assert.deepEqual(await readdir(dataDir), ['firehose']);
  await logs.remove('firehose', '..');
  assert.deepEqual(await readdir(join(dataDir, 'firehose')), ['%2E']);
  for (const bad of ['a/b', '', '../x']) await assert.rejects(logs.open('kinesis', bad), /invalid log name/);
  assert.equal(logs.health().firehose.open, 0);
});

test('a Firehose delivery stream named .. is created, used and deleted without touching the data directory', { timeout: 60_000 }, async () => {
  const t = await startTestServer();
  const fh = firehoseClient(t.server);
  const iam = new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 });
  try {
    await createPinpointRole(iam, 'firehose-delivery', { resource: 'arn:aws:s3:::dots', trustService: 'firehose.amazonaws.com', actions: ['s3:PutObject'] });
    await fh.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: '..', ExtendedS3DestinationConfiguration: s3Destination('dots') }));
    await fh.send(new PutRecordCommand({ DeliveryStreamName: '..', Record: { Data: Buffer.from('x\n') } }));
    await access(join(t.dataDir, 'firehose', '%2E%2E'));
    await fh.send(new DeleteDeliveryStreamCommand({ DeliveryStreamName: '..' }));
    // The rest of the data directory is still there and the server still works.
    await access(join(t.dataDir, 'log', 'ingest'));
    assert.ok((await readdir(t.dataDir)).includes('log'));
    assert.equal((await fetch(`${t.server.url}/health`)).status, 200);
  } finally {
    fh.destroy();
    iam.destroy();
    await t.close();
  }
});
