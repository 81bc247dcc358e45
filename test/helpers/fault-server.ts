// A `pinstream start` for the fault-injection suite: the same server, configured from the
// environment, with small log segments (FAULT_SEGMENT_BYTES) so that a short run has closed
// segments and index files to damage. Prints the CLI's banner lines that spawnServer reads, and
// shuts down cleanly on SIGTERM.

import { loadConfig } from '../../src/config/config.js';
import { startPinstream } from '../../src/server.js';

export const FAULT_SERVER = new URL(import.meta.url).pathname;

if (process.argv[1] === FAULT_SERVER) {
  const config = loadConfig();
  const p = await startPinstream(config, undefined, { logSegmentBytes: Number(process.env.FAULT_SEGMENT_BYTES) || undefined });
  let stopping = false;
  process.on('SIGTERM', () => {
    if (stopping) return;
    stopping = true;
    void p.close().then(() => process.exit(0));
  });
  const lines = [`Pinstream listening on ${p.url}`, `  admin access key id: ${p.admin.accessKeyId}`];
  if (p.adminCreated) lines.push(`  admin secret access key: ${p.admin.secretAccessKey}`);
  console.log(lines.join('\n'));
}
