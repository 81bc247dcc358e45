// `pinstream history import|status`: starts a history import on the running server through its
// API (POST /v1/apps/{id}/history-imports, src/history/routes.ts) and follows it, drawing a progress
// bar on a TTY and printing a summary line at the end. The import itself runs in the server:
// the analytics store (DuckDB) has one writer, the server, so a CLI cannot load into it beside
// a running server; and a job in the server survives the CLI (Ctrl-C stops following, not the
// import) and a server restart (it resumes). `history status` follows or shows a job again.

import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { defaultEndpoint, resolveCredentials, signedCall, type Credentials } from './signed.js';
import type { HistoryImportJob as Job } from '../history/jobs.js';

export const HISTORY_USAGE = `usage: pinstream history import (--app APP_ID | --map SRC=DEST[,SRC=DEST...]) SOURCE
                                [--role-arn ARN] [--replay] [--no-wait] [--endpoint URL] [--json]
       pinstream history status APP_ID [JOB_ID] [--endpoint URL] [--json]

Imports Pinpoint event-stream records (JSON lines, gzip, Parquet) that Firehose wrote under
SOURCE/YYYY/MM/dd/HH/ into the analytics of a project, in the running server.
SOURCE: s3://bucket/prefix/ (PINSTREAM_BUCKETS routing) or a local folder on the server's disk.
--app      the project; only records of that app id are imported
--map      source app ids of the old pipeline to Pinstream projects (others are skipped)
--role-arn a role Pinpoint may assume that can read the bucket (else your own S3 permissions)
--replay   also append the events to the ingest log, for a new event stream
Imports are idempotent: running one again adds nothing. Ctrl-C stops following, not the import.
credentials: PINSTREAM_ADMIN_ACCESS_KEY_ID/SECRET when both are set, else the AWS SDK's chain.`;

/** How often the CLI asks for progress. */
export const HISTORY_POLL_MS = 500;
/** Width of the progress bar in characters. */
export const PROGRESS_BAR_CHARS = 30;

const fmt = (n: number) => n.toLocaleString('en-US');

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** One progress line: bar, objects, records, rate, ETA (from the share of objects done). */
export function progressLine(j: Job, elapsedMs: number): string {
  const total = j.TotalObjects ?? 0;
  const frac = total > 0 ? j.CompletedObjects / total : 0;
  const filled = Math.round(frac * PROGRESS_BAR_CHARS);
  const rate = elapsedMs > 0 ? (j.TotalRecords * 1000) / elapsedMs : 0;
  const eta = frac > 0 && frac < 1 ? duration((elapsedMs * (1 - frac)) / frac) : j.JobStatus === 'COMPLETED' ? '0s' : '?';
  return `[${'#'.repeat(filled)}${'.'.repeat(PROGRESS_BAR_CHARS - filled)}] ${j.CompletedObjects}/${j.TotalObjects ?? '?'} objects  ${fmt(j.TotalRecords)} records  ${fmt(Math.round(rate))}/s  ETA ${eta}`;
}

export function summaryLine(j: Job): string {
  const rate = j.ProcessingMillis > 0 ? Math.round((j.TotalRecords * 1000) / j.ProcessingMillis) : 0;
  return (
    `history import ${j.Id} ${j.JobStatus}: ${j.CompletedObjects}/${j.TotalObjects ?? '?'} objects, ${fmt(j.TotalRecords)} records read, ${fmt(j.ImportedRecords)} imported, ` +
    `${fmt(j.DuplicateRecords)} already held, ${fmt(j.TooOldRecords)} older than retention, ${fmt(j.OtherAppRecords)} of other apps, ${fmt(j.MalformedRecords)} malformed` +
    ` (${fmt(rate)} records/s)` +
    (j.FailureReason ? `: ${j.FailureReason}` : '')
  );
}

interface Ctx {
  endpoint: string;
  credentials: Credentials;
  env: NodeJS.ProcessEnv;
}

async function call(c: Ctx, method: string, path: string, body?: unknown): Promise<{ ok: true; body: unknown } | { ok: false; message: string }> {
  let res: Response;
  try {
    res = await signedCall(c.endpoint, c.credentials, c.env, { method, path, body });
  } catch (e) {
    return { ok: false, message: `cannot reach ${c.endpoint} (${(e as Error).message}); is the server running there?` };
  }
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    // reported as text below
  }
  if (!res.ok) return { ok: false, message: `${res.status} ${res.headers.get('x-amzn-errortype') ?? ''}: ${parsed.Message ?? parsed.message ?? text}` };
  return { ok: true, body: parsed };
}

/** Polls the job until it ends, drawing progress on a TTY; returns the exit code. */
async function follow(c: Ctx, appId: string, jobId: string, asJson: boolean): Promise<number> {
  const tty = process.stderr.isTTY === true && !asJson;
  const started = Date.now();
  for (;;) {
    const r = await call(c, 'GET', `/v1/apps/${encodeURIComponent(appId)}/history-imports/${encodeURIComponent(jobId)}`);
    if (!r.ok) {
      if (tty) process.stderr.write('\n');
      console.error(`pinstream history: ${r.message}`);
      return 1;
    }
    const job = r.body as Job;
    const ended = job.JobStatus === 'COMPLETED' || job.JobStatus === 'FAILED';
    if (tty) process.stderr.write(`\r${progressLine(job, Math.max(job.ProcessingMillis, Date.now() - started))}\x1b[K`);
    if (ended) {
      if (tty) process.stderr.write('\n');
      if (asJson) console.log(JSON.stringify(job, null, 2));
      else {
        console.log(summaryLine(job));
        for (const f of job.Failures) console.log(`  malformed: ${f}`);
        if (job.MalformedRecords > job.Failures.length) console.log(`  … and ${fmt(job.MalformedRecords - job.Failures.length)} more malformed records`);
      }
      return job.JobStatus === 'COMPLETED' ? 0 : 1;
    }
    await new Promise((r) => setTimeout(r, HISTORY_POLL_MS));
  }
}

export async function history(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [sub, ...args] = argv;
  if (sub !== 'import' && sub !== 'status') {
    console.error(HISTORY_USAGE);
    return 2;
  }
  let endpoint = defaultEndpoint(env);
  let app: string | undefined;
  let map: Record<string, string> | undefined;
  let roleArn: string | undefined;
  let replay = false;
  let wait = true;
  let asJson = false;
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--endpoint' || a === '--endpoint-url') endpoint = (args[++i] ?? '').replace(/\/+$/, '');
    else if (a === '--app') app = args[++i];
    else if (a === '--map') {
      map = {};
      for (const pair of (args[++i] ?? '').split(',').filter(Boolean)) {
        const [src, dest] = pair.split('=');
        if (!src || !dest) {
          console.error(`pinstream history: --map takes SRC=DEST pairs separated by commas, got "${pair}"`);
          return 2;
        }
        map[src] = dest;
      }
    } else if (a === '--role-arn') roleArn = args[++i];
    else if (a === '--replay') replay = true;
    else if (a === '--no-wait') wait = false;
    else if (a === '--json') asJson = true;
    else if (!a.startsWith('-')) positional.push(a);
    else {
      console.error(`pinstream history: unexpected argument ${a}\n\n${HISTORY_USAGE}`);
      return 2;
    }
  }
  let credentials;
  try {
    credentials = await resolveCredentials(env);
  } catch (e) {
    console.error(`pinstream history: no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (${(e as Error).message})`);
    return 1;
  }
  const c: Ctx = { endpoint, credentials, env };

  if (sub === 'status') {
    const [appId, jobId] = positional;
    if (!appId) {
      console.error(`pinstream history status: APP_ID is required\n\n${HISTORY_USAGE}`);
      return 2;
    }
    if (jobId) return follow(c, appId, jobId, asJson);
    const r = await call(c, 'GET', `/v1/apps/${encodeURIComponent(appId)}/history-imports`);
    if (!r.ok) {
      console.error(`pinstream history: ${r.message}`);
      return 1;
    }
    const items = (r.body as { Item: Job[] }).Item;
    if (asJson) console.log(JSON.stringify(items, null, 2));
    else if (items.length === 0) console.log(`no history imports for app ${appId}`);
    else for (const j of items) console.log(summaryLine(j));
    return 0;
  }

  const [source] = positional;
  if (positional.length !== 1 || !source || (!app && !map) || (app && map && !Object.values(map).includes(app))) {
    console.error(`pinstream history import: ${!source ? 'SOURCE is required' : positional.length > 1 ? 'one SOURCE only' : !app && !map ? '--app or --map is required' : '--app must be one of the --map destinations'}\n\n${HISTORY_USAGE}`);
    return 2;
  }
  // A folder path names a folder on the server's disk (the same machine, for a local server).
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(source) ? source : pathToFileURL(resolve(source)).href + '/';
  const owner = app ?? Object.values(map!)[0];
  const r = await call(c, 'POST', `/v1/apps/${encodeURIComponent(owner)}/history-imports`, { Source: url, ...(map ? { Map: map } : {}), ...(roleArn ? { RoleArn: roleArn } : {}), ...(replay ? { Replay: true } : {}) });
  if (!r.ok) {
    console.error(`pinstream history import: ${r.message}`);
    return 1;
  }
  const job = r.body as Job;
  if (!wait) {
    console.log(asJson ? JSON.stringify(job, null, 2) : `history import ${job.Id} started for app ${owner}; follow it with: pinstream history status ${owner} ${job.Id}`);
    return 0;
  }
  return follow(c, owner, job.Id, asJson);
}
