// A real ClickHouse for tests: Debian's `clickhouse-server` (18.16 here) started on free loopback
// ports with its own temporary data folder and config file, waited for until it answers
// `SELECT version()` (bounded), then stopped (SIGTERM, then SIGKILL after a bound) and its folder
// removed. Tests skip with the returned reason when the binary is missing or the server never answers.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

export const CLICKHOUSE_BINARY = process.env.PINSTREAM_TEST_CLICKHOUSE_SERVER ?? '/usr/sbin/clickhouse-server';
/** The users file Debian's package installs (user `default`, no password, loopback access). */
export const CLICKHOUSE_USERS_XML = '/etc/clickhouse-server/users.xml';
/** How long the server may take to answer after spawn (4 s here on an idle machine; CI is busier). */
export const CLICKHOUSE_START_TIMEOUT_MS = 60_000;
/** How long a stop waits after SIGTERM before SIGKILL. */
export const CLICKHOUSE_STOP_TIMEOUT_MS = 10_000;

export interface ClickHouseServer {
  /** HTTP interface, e.g. http://127.0.0.1:41234 */
  url: string;
  version: string;
  dir: string;
  /** The server process (undefined for PINSTREAM_TEST_CLICKHOUSE_URL): the bench reads its CPU time. */
  pid?: number;
  stop(): Promise<void>;
}

export type ClickHouseTarget = { server: ClickHouseServer; skip?: undefined } | { server?: undefined; skip: string };


function config(dir: string, httpPort: number, tcpPort: number): string {
  return `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>${dir}/server.log</log><errorlog>${dir}/error.log</errorlog><size>10M</size><count>1</count></logger>
  <http_port>${httpPort}</http_port>
  <tcp_port>${tcpPort}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <users_config>${CLICKHOUSE_USERS_XML}</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>5368709120</mark_cache_size>
</yandex>
`;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Starts a private clickhouse-server, or says why it cannot. */
export async function startClickHouse(): Promise<ClickHouseTarget> {
  if (process.env.PINSTREAM_TEST_CLICKHOUSE_URL) {
    // An already running server (e.g. a current release in Docker): the tests create their own databases on it.
    const url = process.env.PINSTREAM_TEST_CLICKHOUSE_URL;
    const version = await probe(url).catch(() => undefined);
    if (version === undefined) return { skip: `ClickHouse at PINSTREAM_TEST_CLICKHOUSE_URL=${url} does not answer` };
    return { server: { url, version, dir: '', stop: async () => {} } };
  }
  if (!existsSync(CLICKHOUSE_BINARY)) return { skip: `${CLICKHOUSE_BINARY} is not installed (apt-get install clickhouse-server)` };
  if (!existsSync(CLICKHOUSE_USERS_XML)) return { skip: `${CLICKHOUSE_USERS_XML} is missing (apt-get install clickhouse-server)` };
  const dir = mkdtempSync(join(tmpdir(), 'pinstream-ch-'));
  // Two distinct free ports (the second probe may otherwise get the first one back).
  const httpPort = await freePort();
  let tcpPort = await freePort();
  while (tcpPort === httpPort) tcpPort = await freePort();
  const file = join(dir, 'config.xml');
  writeFileSync(file, config(dir, httpPort, tcpPort));
  const child = spawn(CLICKHOUSE_BINARY, [`--config-file=${file}`], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  child.on('error', (e) => (stderr += String(e)));
  const url = `http://127.0.0.1:${httpPort}`;
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), CLICKHOUSE_STOP_TIMEOUT_MS);
        await exited(child);
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    })());
  const deadline = Date.now() + CLICKHOUSE_START_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    try {
      const version = await probe(url);
      return { server: { url, version, dir, pid: child.pid, stop } };
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const log = existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8').slice(-2000) : '';
  await stop();
  return { skip: `clickhouse-server did not answer on ${url} within ${CLICKHOUSE_START_TIMEOUT_MS} ms (${last}) ${stderr} ${log}`.trim() };
}

async function probe(url: string): Promise<string> {
  const r = await fetch(`${url}/?query=${encodeURIComponent('SELECT version()')}`, { signal: AbortSignal.timeout(2000) });
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  return (await r.text()).trim();
}
