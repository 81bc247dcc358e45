// Runs the real `pinstream start` command as a child process (as a user would), for crash tests and
// CLI tests: waits for its banner and reads the URL and admin key from it.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** The operator token test servers are started with, so tests can scrape /metrics (metricsFetch). */
export const TEST_METRICS_TOKEN = 'pinstream-test-metrics-token';

/** GET /metrics with the test servers' bearer token. */
export function metricsFetch(url: string): Promise<Response> {
  return fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${TEST_METRICS_TOKEN}` } });
}

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  accessKeyId: string;
  secretAccessKey?: string;
  output: () => string;
}

/** `script`: another entry point printing the same banner (test/helpers/fault-server.ts). */
export async function spawnServer(env: Record<string, string>, timeoutMs = 20_000, script?: string, nodeArgs: string[] = []): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...nodeArgs, ...(script ? [script] : [CLI, 'start'])], {
    env: { ...process.env, PINSTREAM_PORT: '0', PINSTREAM_METRICS_TOKEN: TEST_METRICS_TOKEN, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const check = () => {
      if (/admin access key id: \S+/.test(out) && /listening on \S+/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });
  return {
    child,
    url: /listening on (\S+)/.exec(out)![1],
    accessKeyId: /admin access key id: (\S+)/.exec(out)![1],
    secretAccessKey: /admin secret access key: (\S+)/.exec(out)?.[1],
    output: () => out,
  };
}

export function waitForExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Runs the real `pinstream` command with these arguments (killed after 60 s); resolves with its exit code and output. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
