// The tests' ClickHouse (test/helpers/clickhouse.ts): a private clickhouse-server answers on its own
// loopback port from its own folder, and stop() ends it and removes the folder.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { startClickHouse } from './helpers/clickhouse.js';

test('starts a private clickhouse-server, answers, then stops and removes its folder', async (t) => {
  if (process.env.PINSTREAM_TEST_CLICKHOUSE_URL) return t.skip('PINSTREAM_TEST_CLICKHOUSE_URL names an outside server');
  const started = await startClickHouse();
  if (!started.server) return t.skip(started.skip);
  const s = started.server;
  try {
    assert.match(s.version, /^\d+\.\d+/);
    assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(existsSync(`${s.dir}/config.xml`));
    const r = await fetch(`${s.url}/?query=${encodeURIComponent('SELECT 1 + 1')}`);
    assert.equal((await r.text()).trim(), '2');
  } finally {
    await s.stop();
  }
  assert.equal(existsSync(s.dir), false);
  await assert.rejects(fetch(`${s.url}/?query=SELECT%201`, { signal: AbortSignal.timeout(2000) }));
});
