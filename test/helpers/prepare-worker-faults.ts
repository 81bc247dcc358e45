// A PutEvents prepare thread that fails on cue, for the pool's fault tests: a job for app "exit"
// ends the thread, one for app "hang" is never answered; any other is prepared as usual.

import { parentPort } from 'node:worker_threads';
import { prepareBody, type PrepareJob } from '../../src/pinpoint/ingest-prepare.js';

parentPort!.on('message', (m: { id: number; job: PrepareJob }) => {
  if (m.job.appId === 'exit') process.exit(3);
  if (m.job.appId === 'hang') return;
  parentPort!.postMessage({ id: m.id, out: prepareBody(m.job) });
});
