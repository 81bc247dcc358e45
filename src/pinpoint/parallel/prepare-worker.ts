// A PutEvents prepare thread (see pool.ts): runs prepareBody on each job it is sent and answers
// with the result, or with the error text of a bug (client errors are part of the result).

import { getHeapStatistics } from 'node:v8';
import { parentPort } from 'node:worker_threads';
import { prepareBody, type PrepareJob } from '../ingest-prepare.js';
import { PREPARE_MEMORY_REPORT_MS, type PrepareReply } from './pool.js';
import { nameThisThread } from '../../threads/thread-name.js';

const port = parentPort;
if (port) nameThisThread('prepare');
if (!port) throw new Error('prepare-worker.js runs only as a worker thread');

port.on('message', (m: { id: number; job: PrepareJob }) => {
  let reply: PrepareReply;
  try {
    reply = { id: m.id, out: prepareBody(m.job) };
  } catch (e) {
    reply = { id: m.id, crash: (e as Error).stack ?? String(e) };
  }
  port.postMessage(reply);
});

// The thread's V8 heap for /metrics, now and every PREPARE_MEMORY_REPORT_MS (never keeps it alive).
const report = () => port.postMessage({ heapUsed: getHeapStatistics().used_heap_size } satisfies PrepareReply);
report();
setInterval(report, PREPARE_MEMORY_REPORT_MS).unref();
