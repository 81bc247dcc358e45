// Serves the web console: the static assets under /console/ (plain ES modules, no build step),
// /console/config.json (the region and account the browser needs to sign requests and build
// ARNs), and the redirects that lead a person (a browser asking for a page) from / to it. All of it is unauthenticated: the
// assets hold no data, and every API call the console makes is SigV4-signed by the browser.

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { json, type ApiRequest, type ApiResponse } from '../http/request.js';

export const CONSOLE_PATH = '/console/';

/**
 * Asset names are not content-hashed (there is no build step), so browsers must revalidate each
 * time; the ETag keeps that to a 304 when nothing changed.
 */
export const ASSET_CACHE_CONTROL = 'no-cache';

export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
};

/**
 * Everything the console loads comes from this origin; API calls go to the same origin. Charts
 * are inline SVG built with DOM calls, so no inline script or style is ever needed.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

export interface ConsoleInfo {
  region: string;
  accountId: string;
}

interface Asset {
  path: string;
  contentType: string;
}

/**
 * The asset directory: tsc does not copy non-TypeScript files, so from dist/src/console/ the
 * assets are read where they live in the source tree.
 */
export function staticDir(): string {
  const beside = fileURLToPath(new URL('./static/', import.meta.url));
  if (existsSync(beside)) return beside;
  return fileURLToPath(new URL('../../../src/console/static/', import.meta.url));
}

/**
 * Returns the console's handler for unauthenticated requests (undefined = not a console path).
 * Only files listed in the asset directory at start-up can be served: a request names one by
 * its exact file name or gets a 404, so no path (dot segments, encoded slashes, absolute paths)
 * can reach any other file.
 */
export function consoleHandler(info: ConsoleInfo, dir = staticDir()): (req: ApiRequest) => ApiResponse | undefined {
  const assets = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    const contentType = CONTENT_TYPES[extname(name)];
    if (contentType && statSync(dir + name).isFile()) assets.set(name, { path: dir + name, contentType });
  }
  const config = JSON.stringify({ region: info.region, accountId: info.accountId });

  return (req) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return undefined;
    // `/` is also AWS's endpoint root: only a browser asking for a page is sent to the console;
    // anything else gets AWS's answer there (dispatch.ts). `/console` is ours alone.
    if (req.rawPath === '/' && wantsPage(req)) return redirect(302, CONSOLE_PATH);
    if (req.rawPath === '/console') return redirect(301, CONSOLE_PATH);
    if (!req.rawPath.startsWith(CONSOLE_PATH)) return undefined;
    const name = req.rawPath.slice(CONSOLE_PATH.length) || 'index.html';
    if (name === 'config.json') return { ...json(200, JSON.parse(config)), headers: { 'content-type': 'application/json', 'cache-control': 'no-store' } };
    const asset = assets.get(name);
    if (!asset) return notFound(req.rawPath);
    return serveFile(asset, req);
  };
}

/** A browser navigating asks for text/html (Accept); SDKs, curl and probes do not. */
function wantsPage(req: ApiRequest): boolean {
  const accept = req.headers.accept;
  return typeof accept === 'string' && accept.toLowerCase().includes('text/html');
}

function serveFile(asset: Asset, req: ApiRequest): ApiResponse {
  let body: Buffer;
  try {
    body = readFileSync(asset.path);
  } catch {
    return notFound(req.rawPath);
  }
  const etag = `"${createHash('sha1').update(body).digest('base64url')}"`;
  const headers: Record<string, string> = {
    'content-type': asset.contentType,
    'cache-control': ASSET_CACHE_CONTROL,
    etag,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    ...(asset.contentType.startsWith('text/html') ? { 'content-security-policy': CONTENT_SECURITY_POLICY } : {}),
  };
  if (req.headers['if-none-match'] === etag) return { status: 304, headers };
  return { status: 200, headers, body: req.method === 'HEAD' ? undefined : body };
}

function redirect(status: number, location: string): ApiResponse {
  return { status, headers: { location, 'content-type': 'text/plain; charset=utf-8' }, body: `Moved to ${location}\n` };
}

function notFound(path: string): ApiResponse {
  return { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' }, body: `Not found: ${path}\n` };
}
