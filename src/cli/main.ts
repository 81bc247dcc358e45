#!/usr/bin/env node
// The `pinstream` command. `start` runs the server with configuration from pinstream.json and
// PINSTREAM_* variables (see README); further subcommands talk to a running server.

import { ConfigError, loadConfig } from '../config/config.js';
import { PostgresError } from '../store/postgres-url.js';

const USAGE = `usage: pinstream <command>

commands:
  start                 run the server (configuration: pinstream.json, PINSTREAM_* environment)
  stream tail NAME      print a Kinesis stream's records as they arrive (--help for options)
  streams status        delivery health of every event stream (--help for options)
  streams replay APP_ID --from ISO
                        deliver an app's events again from a time on (--help for options)
  query [--stream NAME] "SQL"
                        SQL (DuckDB) over a delivery stream's delivered objects, or Athena-style
                        DDL into the Glue Data Catalog (--help for options)
  history import --app APP_ID s3://bucket/prefix/ | FOLDER
                        load Pinpoint event-stream history into a project's analytics (--help)
  identity-pool create --app APP_ID
                        guest access for a project: identity pool, guest role, app configuration
  help                  show this text`;

/** Node.js lines the suite runs on in CI (see README); older ones are refused by `engines`. */
export const TESTED_NODE_MAJORS = [20, 22, 24];
/** Node.js 20 reached end of life on 2026-04-30. */
const END_OF_LIFE_NODE_MAJORS = new Set([20]);

async function main(argv: string[]): Promise<number> {
  // The AWS SDK is an implementation detail of the server and of these commands: its own notice
  // about Node.js versions speaks of the SDK's support, not Pinstream's, so it is replaced by the
  // one line `start` prints on an end-of-life Node.js.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const [cmd] = argv;
  switch (cmd) {
    case 'start':
      return start();
    case 'stream':
      return stream(argv.slice(1));
    case 'streams': {
      const [sub, ...rest] = argv.slice(1);
      const help = rest.includes('--help') || rest.includes('-h');
      if (sub === 'replay') {
        const { streamsReplay, REPLAY_USAGE } = await import('./streams-replay.js');
        if (!help) return streamsReplay(rest);
        console.log(REPLAY_USAGE);
        return 0;
      }
      const { streamsStatus, STATUS_USAGE } = await import('./streams-status.js');
      if (sub === 'status' && !help) return streamsStatus(rest);
      console.log(STATUS_USAGE);
      return sub === 'status' || sub === undefined || sub === 'help' ? 0 : 2;
    }
    case 'history': {
      const { history, HISTORY_USAGE } = await import('./history.js');
      const rest = argv.slice(1);
      if (!rest.includes('--help') && !rest.includes('-h')) return history(rest);
      console.log(HISTORY_USAGE);
      return 0;
    }
    case 'query': {
      const { query, QUERY_USAGE } = await import('./query.js');
      const rest = argv.slice(1);
      if (!rest.includes('--help') && !rest.includes('-h')) return query(rest);
      console.log(QUERY_USAGE);
      return 0;
    }
    case 'identity-pool': {
      const { identityPool, IDENTITY_POOL_USAGE } = await import('./identity-pool.js');
      const rest = argv.slice(1);
      if (!rest.includes('--help') && !rest.includes('-h')) return identityPool(rest);
      console.log(IDENTITY_POOL_USAGE);
      return 0;
    }
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

async function stream(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  // Loaded on demand: the Kinesis client (an npm dependency of these subcommands only) is not
  // needed by `start`.
  let tail: typeof import('./tail.js');
  try {
    tail = await import('./tail.js');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw e;
    console.error(`pinstream stream: a module it needs is not installed (${(e as Error).message.split('\n')[0]}); run npm install`);
    return 1;
  }
  const { streamTail, TAIL_USAGE } = tail;
  if (sub === 'tail') {
    if (rest.includes('--help') || rest.includes('-h')) {
      console.log(TAIL_USAGE);
      return 0;
    }
    return streamTail(rest);
  }
  if (sub === undefined) {
    console.error(`pinstream: stream needs a subcommand\n\n${TAIL_USAGE}`);
    return 2;
  }
  if (sub === 'help' || sub === '--help' || sub === '-h') {
    console.log(TAIL_USAGE);
    return 0;
  }
  console.error(`pinstream: unknown stream command "${sub}"\n\n${TAIL_USAGE}`);
  return 2;
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
  // Loaded here so client subcommands work without the server's modules.
  const { startPinstream } = await import('../server.js');
  let p;
  try {
    p = await startPinstream(config);
  } catch (e) {
    // Settings checked against the machine at start (the connection cap against ulimit -n).
    if (e instanceof ConfigError) {
      console.error(`pinstream: configuration error: ${e.message}`);
      return 2;
    }
    // A configured service (PostgreSQL) unreachable or refusing: say which, without a stack.
    if (e instanceof PostgresError) {
      console.error(`pinstream: ${e.message}`);
      return 2;
    }
    throw e;
  }
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
  if (p.tls) {
    // A renewed certificate is taken without a restart; a bad one is reported and the old one stays.
    process.on('SIGHUP', () => {
      try {
        const t = p.reloadTls();
        console.log(`pinstream: SIGHUP, TLS certificate reloaded (${t.names}; valid until ${t.validTo.toISOString()})`);
      } catch (e) {
        console.error(`pinstream: SIGHUP, TLS certificate not reloaded, the previous one stays: ${(e as Error).message}`);
      }
    });
  }
  const lines = [
    `Pinstream listening on ${p.url}`,
    ...(p.httpUrl ? [`  plain HTTP also on ${p.httpUrl}`] : []),
    ...(p.tls ? [`  TLS certificate for ${p.tls.names}; valid until ${p.tls.validTo.toISOString()} (SIGHUP reloads it)`] : []),
    ...(p.tls && p.tls.validTo.getTime() < Date.now() ? [`  warning: the TLS certificate expired on ${p.tls.validTo.toISOString()}; clients will refuse it`] : []),
    `  region ${config.region}, account ${config.accountId}, data in ${config.dataDir}`,
    `  web console: ${p.url}/console/ (sign in with an access key)`,
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
  const major = Number(process.versions.node.split('.')[0]);
  if (END_OF_LIFE_NODE_MAJORS.has(major)) {
    lines.push(`  note: Node.js ${process.versions.node} is past its end of life; Pinstream is tested on Node.js ${TESTED_NODE_MAJORS.join(', ')} (use 24 LTS)`);
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
