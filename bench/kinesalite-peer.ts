// Child process for `bench kinesis`: kinesalite 3.3.3 (the peer baseline of
// reference/kinesis-firehose.md) started programmatically and bound to 127.0.0.1 only (its CLI
// listens on every interface). KINESALITE_PATH set: on-disk LevelDB there (leveldown, writes not
// synced); unset: in memory (memdown). Prints `kinesalite listening on URL` when ready; SIGTERM
// closes the database and exits.

import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const require = createRequire(import.meta.url);
// kinesalite is CommonJS without type declarations: a function from options to an http.Server.
const kinesalite = require('kinesalite') as (options: Record<string, unknown>) => Server;

const path = process.env.KINESALITE_PATH || undefined;
// Options as in the reference setup: short CREATING/DELETING/UPDATING phases, room for many shards.
const server = kinesalite({ path, createStreamMs: 50, deleteStreamMs: 50, updateStreamMs: 50, shardLimit: 1000 });

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  console.log(`kinesalite listening on http://127.0.0.1:${port} (${path ? `LevelDB in ${path}` : 'in memory'})`);
});

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(0), 5_000).unref();
  server.close(() => process.exit(0));
  // Idle keep-alive connections would hold server.close() open.
  (server as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
