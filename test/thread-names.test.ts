// Worker threads name themselves for the kernel (src/threads/thread-name.ts), so `top -H`, `ps -L`,
// perf and the benchmarks tell the request path's prepare threads, the consumers thread, the
// Firehose thread and the analytics thread apart. Checked against the kernel's view
// (/proc/self/task/<tid>/comm) of a server running the whole pipeline in this process.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { loadConfig } from '../src/config/config.js';
import { startPinstream } from '../src/server.js';
import { osThreadId } from '../src/threads/priority.js';
import { THREAD_NAME_MAX_BYTES, THREAD_NAME_PREFIX } from '../src/threads/thread-name.js';
import { eventually } from './helpers/eventually.js';
import { Acked, clientsFor, load, setUp } from './helpers/pipeline.js';
import { TEST_METRICS_TOKEN } from './helpers/process.js';
import { seeded } from './helpers/random.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const linux = process.platform === 'linux';

/** The kernel's name of every thread of this process, by thread id. */
function threadNames(): Map<number, string> {
  const out = new Map<number, string>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      out.set(Number(tid), readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim());
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

test('the server threads carry their names: prepare, consumers, firehose, analytics; the main thread keeps its own', { skip: linux ? false : 'thread names are read from Linux /proc', timeout: 60_000 }, async () => {
  const mainName = threadNames().get(osThreadId()!);
  const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-names-'));
  // Two ingest threads and a consumers thread whatever this machine's cores (the defaults follow them).
  const server = await startPinstream(loadConfig({}, { port: 0, dataDir, metricsToken: TEST_METRICS_TOKEN, ingestThreads: 2, consumerThreads: 1 }), undefined, { logReport: () => {} });
  const c = clientsFor(server.url, server.admin);
  try {
    const app = await setUp(c, { intervalSeconds: 0, eventStream: true });
    await load(c, app, new Acked(), 'names', seeded(3));
    await server.analytics.query('SELECT 1');
    const want = ['prepare', 'consumers', 'firehose', 'analytics'].map((r) => THREAD_NAME_PREFIX + r);
    await eventually(async () => {
      const names = [...threadNames().values()];
      for (const w of want) assert.ok(names.includes(w), `a thread named ${w} among ${JSON.stringify([...new Set(names)])}`);
    });
    assert.equal(threadNames().get(osThreadId()!), mainName, 'the main thread keeps its name (the one tools match the process by)');
  } finally {
    c.destroy();
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('nameThisThread: only its own thread, cut to what the kernel keeps, odd characters replaced', { skip: linux ? false : 'thread names are read from Linux /proc' }, async () => {
  const url = new URL('../src/threads/thread-name.js', import.meta.url).href;
  const code = `
    const { parentPort } = require('node:worker_threads');
    const { readFileSync, readlinkSync } = require('node:fs');
    import(${JSON.stringify(url)}).then(({ nameThisThread }) => {
      const given = nameThisThread('a role with spaces/and-a-long-tail');
      const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
      parentPort.postMessage({ given, tid, kernel: readFileSync('/proc/thread-self/comm', 'utf8').trim() });
    });`;
  const w = new Worker(code, { eval: true });
  const r = await new Promise<{ given: string; tid: number; kernel: string }>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  await w.terminate();
  assert.equal(r.given, 'ps-a_role_with_');
  assert.equal(r.given.length, THREAD_NAME_MAX_BYTES);
  assert.equal(r.kernel, r.given);
  assert.notEqual(r.tid, osThreadId());
  assert.notEqual(threadNames().get(osThreadId()!), r.given, 'the calling thread only');
});
