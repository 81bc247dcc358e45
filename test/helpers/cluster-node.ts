// A `pinstream start` for the cluster tests that kill a node with SIGKILL: the same server,
// configured from the environment, plus what only deps can set — the JetStream prefix that
// isolates the test (CLUSTER_NATS_PREFIX) and short placement leases (CLUSTER_LEASE_TTL_MS).
// Prints the CLI's banner lines that spawnServer reads, and shuts down cleanly on SIGTERM.

import { loadConfig } from '../../src/config/config.js';
import { startPinstream } from '../../src/server.js';

export const CLUSTER_NODE = new URL(import.meta.url).pathname;

if (process.argv[1] === CLUSTER_NODE) {
  const config = loadConfig();
  const ttlMs = Number(process.env.CLUSTER_LEASE_TTL_MS) || undefined;
  const p = await startPinstream(config, undefined, { natsPrefix: process.env.CLUSTER_NATS_PREFIX, placement: ttlMs ? { ttlMs } : undefined });
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
