#!/usr/bin/env node
// The `pinstream` command. `start` runs the server with configuration from pinstream.json and
// PINSTREAM_* variables (see README); further subcommands talk to a running server.

import { ConfigError, loadConfig } from '../config/config.js';
import { startPinstream } from '../server.js';

const USAGE = `usage: pinstream <command>

commands:
  start     run the server (configuration: pinstream.json, PINSTREAM_* environment)
  help      show this text`;

async function main(argv: string[]): Promise<number> {
  const [cmd] = argv;
  switch (cmd) {
    case 'start':
      return start();
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return 0;
    default:
      console.error(`pinstream: unknown command "${cmd}"\n\n${USAGE}`);
      return 2;
  }
}

async function start(): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`pinstream: configuration error: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const p = await startPinstream(config);
  // Handlers go in before the banner: supervisors send SIGTERM as soon as they see it.
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`pinstream: ${signal}, shutting down`);
    await p.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  const lines = [
    `Pinstream listening on ${p.url}`,
    `  region ${config.region}, account ${config.accountId}, data in ${config.dataDir}`,
    `  admin access key id: ${p.admin.accessKeyId}`,
  ];
  if (p.adminCreated) {
    lines.push(
      `  admin secret access key: ${p.admin.secretAccessKey}`,
      `  (shown once; it is stored in the data directory for later starts)`,
      ``,
      `  try: AWS_ACCESS_KEY_ID=${p.admin.accessKeyId} AWS_SECRET_ACCESS_KEY=${p.admin.secretAccessKey} \\`,
      `       aws pinpoint get-apps --region ${config.region} --endpoint-url ${p.url}`,
    );
  }
  console.log(lines.join('\n'));
  return -1; // keep running
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e) => {
    console.error('pinstream:', e);
    process.exit(1);
  },
);
