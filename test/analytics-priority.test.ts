// The analytics thread runs at a lower priority than the threads that answer requests (Linux nice,
// PINSTREAM_ANALYTICS_NICE), and the main thread keeps its own. Checked against the kernel's view
// (/proc/self/task/<tid>/stat), not against what the thread says it did.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { CreateAppCommand, PutEventsCommand } from '@aws-sdk/client-pinpoint';
import { MAX_NICE, niceThisThread, osThreadId } from '../src/threads/priority.js';
import { startTestServer } from './helpers/server.js';

/** A thread's nice value as the kernel reports it (field 19 of its stat line). */
function kernelNice(tid: number): number {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

const linux = process.platform === 'linux';

test('the analytics thread runs at PINSTREAM_ANALYTICS_NICE; the main thread keeps its priority', { skip: linux ? false : 'per-thread nice values are a Linux feature' }, async () => {
  const mainNice = kernelNice(osThreadId()!);
  const want = Math.min(MAX_NICE, mainNice + 7);
  const t = await startTestServer({ config: { analyticsNice: want } });
  try {
    const app = (await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'nice' } }))).ApplicationResponse!.Id!;
    await t.pinpoint.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem: { ep: { Endpoint: {}, Events: { e1: { EventType: 'nice.test', Timestamp: new Date().toISOString() } } } } } }));
    // A query waits for the thread to have opened DuckDB.
    await t.server.analytics.query('SELECT 1');
    const p = (t.server.analytics as unknown as { priority?: { tid: number; nice: number } | { error: string } }).priority;
    assert.ok(p && 'tid' in p, `the thread set its priority: ${JSON.stringify(p)}`);
    assert.equal(kernelNice(p.tid), want, 'the kernel has the analytics thread at the configured nice value');
    assert.equal(kernelNice(osThreadId()!), mainNice, 'the main thread keeps its own');
  } finally {
    await t.close();
  }
});

test('niceThisThread only ever raises the nice value, and says so when it cannot act', { skip: linux ? false : 'per-thread nice values are a Linux feature' }, async () => {
  // In a thread of its own, so this process's main thread is not touched.
  const { Worker } = await import('node:worker_threads');
  const url = new URL('../src/threads/priority.js', import.meta.url).href;
  const code = `
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(url)}).then(({ niceThisThread }) => {
      const up = niceThisThread(5);
      const down = niceThisThread(1);
      parentPort.postMessage({ up, down });
    });`;
  const w = new Worker(code, { eval: true });
  const r = await new Promise<{ up: { tid: number; nice: number }; down: { tid: number; nice: number } }>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  await w.terminate();
  const base = getPriority();
  assert.equal(r.up.nice, Math.max(base, 5));
  assert.equal(r.down.nice, r.up.nice, 'a lower value than the thread has is not applied');
  assert.notEqual(r.up.tid, osThreadId());
});
