// Where the server's memory goes, on /metrics (src/memory.ts; issue 16 item 3), and the bounds set
// on its parts: DuckDB's memory limit from PINSTREAM_ANALYTICS_MEMORY_MB, the analytics thread's
// heap limit (ANALYTICS_THREAD_HEAP_MB), and the prepare threads reporting their heaps.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CreateAppCommand, PutEventsCommand } from '@aws-sdk/client-pinpoint';
import { ANALYTICS_THREAD_HEAP_MB } from '../src/analytics/index.js';
import { parseMemoryMetrics, rssSplit } from '../src/memory.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { metricsFetch } from './helpers/process.js';
import { until } from './helpers/firehose.js';

const MIB = 1048576;

async function parts(t: TestServer): Promise<Record<string, number>> {
  const r = await metricsFetch(t.server.url);
  assert.equal(r.status, 200);
  return parseMemoryMetrics(await r.text());
}

test('/metrics says where memory goes: the main thread, the analytics thread and DuckDB (with the configured limit), the prepare threads', async () => {
  const t = await startTestServer({ config: { analyticsMemoryMb: 96, ingestThreads: 1 } });
  try {
    const before = await parts(t);
    for (const k of ['rss', 'main_heap_used', 'main_heap_total', 'main_external', 'main_array_buffers', 'prepare_heap_used']) assert.ok(k in before, `${k} reported`);
    assert.ok(before.rss > 0 && before.main_heap_used > 0);
    if (process.platform === 'linux') {
      // RSS as the kernel splits it: file-backed (code) and anonymous pages, adding up to about the whole.
      assert.ok(before.rss_file > 0 && before.rss_anon > 0, 'rss_file and rss_anon reported');
      assert.ok(Math.abs(before.rss_file + before.rss_anon - before.rss) < 0.2 * before.rss, `rss_file ${before.rss_file} + rss_anon ${before.rss_anon} ≈ rss ${before.rss}`);
    }
    assert.equal(before.duckdb_limit, 96 * MIB);
    // Nothing started the analytics thread yet (empty log): no analytics parts.
    assert.equal(before.duckdb, undefined);

    const app = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'mem' } }))).ApplicationResponse!.Id!;
    await t.pinpoint.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: { ep: { Endpoint: {}, Events: { e1: { EventType: 'mem.test', Timestamp: new Date().toISOString() } } } } } }));
    // DuckDB runs with the configured limit (DuckDB names it in MiB), and the thread with its heap limit.
    assert.deepEqual(await t.server.analytics.query(`SELECT current_setting('memory_limit')`), [['96.0 MiB']]);
    assert.equal(t.server.analytics.heapLimitMb, ANALYTICS_THREAD_HEAP_MB);
    await until(async () => {
      const p = await parts(t);
      return p.analytics_heap_used > 0 && p.duckdb > 0 && p.prepare_heap_used > 0;
    }, 'the analytics and prepare threads to report their memory');
    const after = await parts(t);
    assert.ok(after.duckdb <= after.duckdb_limit, `DuckDB ${after.duckdb} within its limit ${after.duckdb_limit}`);
    assert.ok('duckdb_spilled' in after && 'analytics_external' in after && 'analytics_heap_total' in after);
  } finally {
    await t.close();
  }
});

test('the RSS split reads RssAnon and RssFile from the status text, and is absent when there is none', () => {
  const status = 'Name:\tnode\nVmRSS:\t  300000 kB\nRssAnon:\t  200000 kB\nRssFile:\t   99000 kB\nRssShmem:\t    1000 kB\n';
  assert.deepEqual(rssSplit(() => status), { anon: 200000 * 1024, file: 99000 * 1024 });
  assert.equal(rssSplit(() => 'Name:\tnode\n'), undefined);
  assert.equal(
    rssSplit(() => {
      throw new Error('ENOENT');
    }),
    undefined,
  );
});
