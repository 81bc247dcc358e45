// Kinesis retention on the injected clock: records older than the stream's retention period are
// no longer readable (TRIM_HORIZON starts after them, open iterators skip them), even while their
// segment file still exists; raising retention keeps newer records longer but revives none.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateStreamCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  IncreaseStreamRetentionPeriodCommand,
  KinesisClient,
  PutRecordCommand,
} from '@aws-sdk/client-kinesis';
import { ManualClock } from '../src/clock.js';
import { startTestServer } from './helpers/server.js';

const HOUR = 3600_000;

test('records past retention are not returned; newer ones are', async (t) => {
  const clock = new ManualClock(Date.UTC(2026, 10, 1));
  const srv = await startTestServer({ clock });
  const client = new KinesisClient({ endpoint: srv.server.url, region: 'us-east-1', credentials: srv.server.admin, maxAttempts: 1 });
  // The server checks signatures against its (manual) clock: sign as of that clock.
  const k = {
    send: (cmd: object): Promise<any> => {
      client.config.systemClockOffset = clock.now() - Date.now();
      return client.send(cmd as any);
    },
    destroy: () => client.destroy(),
  };
  t.after(async () => {
    k.destroy();
    await srv.close();
  });
  const put = (s: string, data: string) => k.send(new PutRecordCommand({ StreamName: s, Data: Buffer.from(data), PartitionKey: 'p' }));
  const readAll = async (s: string, iterator?: string) => {
    const it = iterator ?? (await k.send(new GetShardIteratorCommand({ StreamName: s, ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }))).ShardIterator;
    const r = await k.send(new GetRecordsCommand({ ShardIterator: it }));
    return r.Records!.map((x: any) => Buffer.from(x.Data!).toString());
  };

  await k.send(new CreateStreamCommand({ StreamName: 'ret', ShardCount: 1 }));
  await put('ret', 'old-1');
  await put('ret', 'old-2');
  clock.advance(23 * HOUR);
  await put('ret', 'new-1');
  assert.deepEqual(await readAll('ret'), ['old-1', 'old-2', 'new-1'], 'all within 24 h');

  clock.advance(2 * HOUR); // old-* are now 25 h old, new-1 is 2 h old
  assert.deepEqual(await readAll('ret'), ['new-1'], 'TRIM_HORIZON starts after expired records');
  // AT_TIMESTAMP before the expired records starts after them too.
  assert.deepEqual(await readAll('ret', (await k.send(new GetShardIteratorCommand({ StreamName: 'ret', ShardId: 'shardId-000000000000', ShardIteratorType: 'AT_TIMESTAMP', Timestamp: new Date(Date.UTC(2026, 10, 1)) }))).ShardIterator), ['new-1']);

  await k.send(new IncreaseStreamRetentionPeriodCommand({ StreamName: 'ret', RetentionPeriodHours: 48 }));
  clock.advance(23 * HOUR); // new-1 is 25 h old: kept under 48 h retention
  assert.deepEqual(await readAll('ret'), ['new-1'], 'raising retention does not revive expired records');
  clock.advance(24 * HOUR); // new-1 is 49 h old
  assert.deepEqual(await readAll('ret'), []);
});
