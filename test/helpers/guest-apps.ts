// Browser and mobile-style apps for the guest-access tests (test/browser-*.test.ts): bundles an app
// of test/browser-apps/ for the browser with esbuild (once per test file, into a temp dir),
// serves it from its own origin (a tiny loopback HTTP server, so every call to Pinstream is
// cross-origin and CORS is exercised for real), creates a project's guest access with the
// `pinstream identity-pool create` CLI as the migration guide says, and reads back what the server
// kept: event-stream records from the ingest log and event counts from the analytics store.

import http from 'node:http';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import type { Pinstream } from '../../src/server.js';
import { decodeIngestEntry } from '../../src/pinpoint/ingest-record.js';
import { CLI } from './process.js';

/** The apps' sources (plain browser JavaScript, not compiled by tsc). */
export const BROWSER_APPS_DIR = fileURLToPath(new URL('../../../test/browser-apps/', import.meta.url));

const INDEX_HTML = '<!doctype html><html><head><meta charset="utf-8"><title>guest app</title><script type="module" src="/app.js"></script></head><body>guest app</body></html>';

export interface BundledApp {
  dir: string;
  bytes: number;
  remove(): Promise<void>;
}

/**
 * Bundles test/browser-apps/NAME.js as a browser bundle. `alias` maps package imports the way an
 * app's bundler configuration would (see docs/migration.md about @aws-sdk/credential-providers).
 */
export async function bundleApp(name: string, alias: Record<string, string> = {}): Promise<BundledApp> {
  const dir = await mkdtemp(join(tmpdir(), `pinstream-${name}-`));
  const outfile = join(dir, 'app.js');
  await build({
    entryPoints: [join(BROWSER_APPS_DIR, `${name}.js`)],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    outfile,
    alias,
    logLevel: 'silent',
  });
  await writeFile(join(dir, 'index.html'), INDEX_HTML);
  const bytes = (await readFile(outfile)).length;
  return { dir, bytes, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface AppOrigin {
  /** e.g. http://127.0.0.1:PORT/ */
  url: string;
  close(): Promise<void>;
}

/** Serves a bundled app's index.html and app.js (nothing else) from its own loopback origin. */
export async function serveApp(app: BundledApp): Promise<AppOrigin> {
  const files = new Map<string, { type: string; body: Buffer }>([
    ['/', { type: 'text/html; charset=utf-8', body: await readFile(join(app.dir, 'index.html')) }],
    ['/app.js', { type: 'text/javascript; charset=utf-8', body: await readFile(join(app.dir, 'app.js')) }],
  ]);
  const server = http.createServer((req, res) => {
    const f = req.method === 'GET' ? files.get(new URL(req.url ?? '/', 'http://x').pathname) : undefined;
    if (!f) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': f.type, 'cache-control': 'no-store' }).end(f.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface GuestAccessConfig {
  IdentityPoolId: string;
  Region: string;
  ApplicationId: string;
  UnauthenticatedRoleArn: string;
  Endpoints: { Pinpoint: string; CognitoIdentity: string };
  AwsExports: Record<string, string>;
  AmplifyOutputs: { auth: Record<string, unknown>; analytics: { amazon_pinpoint: { aws_region: string; app_id: string } } };
}

/**
 * `pinstream identity-pool create --app APP_ID --endpoint URL --json` with the admin key, as an
 * operator runs it; `env` adds e.g. NODE_EXTRA_CA_CERTS for a server with a private CA.
 */
export async function guestAccessByCli(
  endpoint: string,
  admin: { accessKeyId: string; secretAccessKey: string },
  appId: string,
  env: Record<string, string> = {},
): Promise<GuestAccessConfig> {
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'identity-pool', 'create', '--app', appId, '--endpoint', endpoint, '--json'], {
    env: { ...process.env, PINSTREAM_ADMIN_ACCESS_KEY_ID: admin.accessKeyId, PINSTREAM_ADMIN_SECRET_ACCESS_KEY: admin.secretAccessKey, ...env },
  });
  return JSON.parse(stdout) as GuestAccessConfig;
}

/** Every event-stream record the server wrote to its ingest log for an app, parsed. */
export async function ingestRecords(server: Pinstream, appId: string): Promise<Array<Record<string, any>>> {
  const log = server.ingestLog;
  const out: Array<Record<string, any>> = [];
  let offset = log.startOffset();
  while (offset < log.endOffset()) {
    const { records, nextOffset } = await log.read(offset, { maxRecords: 5000 });
    for (const r of records) {
      const e = decodeIngestEntry(r.payload);
      if (e.appId === appId) out.push(JSON.parse(e.record.toString('utf8')));
    }
    offset = nextOffset;
  }
  return out;
}

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * Events of this type the analytics store holds for the app (the Events dashboard's event count,
 * yesterday and today in UTC so a run across midnight still counts), after the loader caught up.
 */
export async function analyticsEventCount(server: Pinstream, appId: string, eventType: string): Promise<number> {
  await server.analytics.catchUp();
  const now = Date.now();
  const r = await server.analytics.dashboard('events', { appId, eventType, range: { start: day(now - 86_400_000), end: day(now) } });
  const count = r.tiles.find((t) => t.id === 'event-count');
  if (!count) throw new Error('the events dashboard has no event-count tile');
  return count.value ?? 0;
}
