// A `pinstream start` for the history-import crash test: the same server, configured from the
// environment, committing history in batches of HISTORY_TEST_BATCH rows; after its first commit a
// job prints HISTORY_BATCH_COMMITTED and stops there (never resolving), so the test can kill -9 the
// process mid-import at a known point.

import { loadConfig } from '../../src/config/config.js';
import { startPinstream } from '../../src/server.js';

export const HISTORY_SERVER = new URL(import.meta.url).pathname;
export const HISTORY_BATCH_COMMITTED = 'history: batch committed';

if (process.argv[1] === HISTORY_SERVER) {
  const p = await startPinstream(loadConfig(), undefined, { historyBatchRecords: Number(process.env.HISTORY_TEST_BATCH) || undefined });
  p.history.afterBatch = async () => {
    console.log(HISTORY_BATCH_COMMITTED);
    await new Promise(() => {});
  };
  const lines = [`Pinstream listening on ${p.url}`, `  admin access key id: ${p.admin.accessKeyId}`];
  if (p.adminCreated) lines.push(`  admin secret access key: ${p.admin.secretAccessKey}`);
  console.log(lines.join('\n'));
}
