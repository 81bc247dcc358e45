// `pinstream stream tail NAME`: a Kinesis consumer for the terminal. It talks to the server only
// through the AWS SDK Kinesis client (HTTP/1.1 keep-alive, so it also works against other
// Kinesis-compatible servers), as any application would:
//   * credentials: PINSTREAM_ADMIN_ACCESS_KEY_ID/SECRET when both are set, else the SDK's default
//     provider chain (AWS_* environment, shared profile files, SSO, process, ...);
//   * region: --region, else the SDK's default chain (AWS_REGION, profile), else PINSTREAM_REGION,
//     else us-east-1; endpoint: --endpoint, else http://127.0.0.1:<PINSTREAM_PORT or 4580>.
// It follows every shard (or one shard with --shard, and its descendants): ListShards at start and
// every few seconds to pick up new shards; one polling loop per shard (GetShardIterator, then
// GetRecords, sleeping POLL_MS when a call returns nothing); when a shard closes it continues in the
// children the final GetRecords names. A child is read only after all its followed parents are
// finished, so a partition key's records stay in order across resharding, as KCL does it.
// Each record is printed on one line as soon as it arrives: `shardId sequenceNumber partitionKey
// data` (just `data` with --raw), where data is compact JSON when the payload is a JSON object or
// array (re-spaced textually, so numbers keep every digit), else its UTF-8 text when that is
// printable on one line (one trailing newline is dropped), else base64. Stops on SIGINT/SIGTERM
// (exit 0) or after --max records (exit 0); errors print one line naming the cause (exit 1),
// usage errors exit 2.

import { setTimeout as sleep } from 'node:timers/promises';
import http from 'node:http';
import https from 'node:https';
import {
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  type _Record,
  type GetRecordsCommandOutput,
  type Shard,
  type ShardIteratorType,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { DEFAULT_PORT, DEFAULT_REGION } from '../config/config.js';

export const TAIL_USAGE = `usage: pinstream stream tail NAME [options]

Prints the records of Kinesis stream NAME as they arrive, one line each:
  shardId sequenceNumber partitionKey data
data is compact JSON for JSON payloads, else the UTF-8 text when printable, else base64.

options:
  --from latest|trim-horizon  start at new records only (default) or at the oldest kept record
  --endpoint URL              server URL (default http://127.0.0.1:<PINSTREAM_PORT or ${DEFAULT_PORT}>)
  --region R                  signing region (default: AWS_REGION / profile, else PINSTREAM_REGION, else ${DEFAULT_REGION})
  --shard ID                  follow only this shard (and its children after a reshard)
  --max N                     exit after printing N records
  --raw                       print only the data, without the shard/sequence/key prefix

credentials: PINSTREAM_ADMIN_ACCESS_KEY_ID/PINSTREAM_ADMIN_SECRET_ACCESS_KEY when both are set,
else the AWS SDK default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/...).
Stops on Ctrl-C.`;

/** Pause of a shard loop after a GetRecords call that returned nothing (caught up). */
export const POLL_MS = 500;
/** How often ListShards is repeated to discover shards created by resharding. */
export const REFRESH_MS = 5_000;
/** Pause after a throttling error before the shard loop tries again. */
const THROTTLE_BACKOFF_MS = 1_000;
const GET_RECORDS_LIMIT = 1_000;
const REQUEST_TIMEOUT_MS = 30_000;

export interface TailOptions {
  stream: string;
  from: 'LATEST' | 'TRIM_HORIZON';
  endpoint: string;
  region?: string;
  shard?: string;
  max?: number;
  raw: boolean;
}

export class UsageError extends Error {}

export function parseTailArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): TailOptions {
  let stream: string | undefined;
  const port = env.PINSTREAM_PORT && env.PINSTREAM_PORT !== '0' ? env.PINSTREAM_PORT : String(DEFAULT_PORT);
  const o: TailOptions = { stream: '', from: 'LATEST', endpoint: `http://127.0.0.1:${port}`, raw: false };
  const value = (flag: string, v: string | undefined): string => {
    if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const next = () => (eq > 0 ? a.slice(eq + 1) : argv[++i]);
    switch (flag) {
      case '--from': {
        const v = value(flag, next()).toLowerCase().replace(/_/g, '-');
        if (v === 'latest') o.from = 'LATEST';
        else if (v === 'trim-horizon') o.from = 'TRIM_HORIZON';
        else throw new UsageError(`--from must be latest or trim-horizon, got "${v}"`);
        break;
      }
      case '--endpoint':
      case '--endpoint-url': {
        const v = value(flag, next());
        let u: URL;
        try {
          u = new URL(v);
        } catch {
          throw new UsageError(`--endpoint must be a URL such as http://127.0.0.1:${DEFAULT_PORT}, got "${v}"`);
        }
        if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`--endpoint must be an http:// or https:// URL, got "${v}"`);
        o.endpoint = v.replace(/\/+$/, '');
        break;
      }
      case '--region':
        o.region = value(flag, next());
        break;
      case '--shard': {
        const v = value(flag, next());
        const m = /^(?:shardId-)?(\d{1,12})$/.exec(v);
        o.shard = m ? 'shardId-' + m[1].padStart(12, '0') : v;
        break;
      }
      case '--max': {
        const v = value(flag, next());
        if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`--max needs a positive integer, got "${v}"`);
        o.max = Number(v);
        break;
      }
      case '--raw':
        o.raw = true;
        break;
      default:
        if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
        if (stream !== undefined) throw new UsageError(`one stream name expected, got "${stream}" and "${a}"`);
        stream = a;
    }
  }
  if (stream === undefined) throw new UsageError('missing stream NAME');
  o.stream = stream;
  return o;
}

// ------------------------------------------------------------------------------------------------
// Record rendering

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** C0 controls other than tab, DEL and C1 controls: text with these is not printed as text. */
const NON_PRINTABLE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/;

/** The one-line form of a record's data: compact JSON, printable UTF-8 text, or base64. */
export function renderData(data: Uint8Array): string {
  let text: string;
  try {
    text = utf8.decode(data);
  } catch {
    return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64');
  }
  const t = text.trimStart();
  if (t.startsWith('{') || t.startsWith('[')) {
    try {
      JSON.parse(text);
      return compactJson(text);
    } catch {
      // not JSON: fall through to text
    }
  }
  const line = text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
  if (!NON_PRINTABLE.test(line)) return line;
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64');
}

/** Drops insignificant whitespace from valid JSON text without re-serialising its values. */
function compactJson(s: string): string {
  let out = '';
  let from = 0;
  let inString = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
      out += s.slice(from, i);
      from = i + 1;
    }
  }
  return out + s.slice(from);
}

export function formatRecord(shardId: string, r: _Record, raw: boolean): string {
  const data = renderData(r.Data ?? new Uint8Array(0));
  return raw ? data : `${shardId} ${r.SequenceNumber} ${r.PartitionKey} ${data}`;
}

// ------------------------------------------------------------------------------------------------
// Errors

class TailError extends Error {}

const errName = (e: unknown): string => (e as { name?: string })?.name ?? '';
const isAbort = (e: unknown): boolean => errName(e) === 'AbortError';

/** One line saying what went wrong, for errors the SDK or the network raised. */
function describe(e: unknown, o: TailOptions): string {
  if (e instanceof TailError) return e.message;
  const err = e as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const code = err.code ?? (e as { cause?: { code?: string } })?.cause?.code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ECONNRESET' || code === 'EHOSTUNREACH') {
    return `cannot reach ${o.endpoint} (${code}); is the server running there? (set --endpoint or PINSTREAM_PORT)`;
  }
  if (err.name === 'CredentialsProviderError') {
    return `no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or PINSTREAM_ADMIN_ACCESS_KEY_ID and PINSTREAM_ADMIN_SECRET_ACCESS_KEY, or AWS_PROFILE) (${err.message})`;
  }
  const status = err.$metadata?.httpStatusCode;
  return `${err.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}: ${err.message ?? String(e)}`;
}

// ------------------------------------------------------------------------------------------------
// The tailer

interface ShardItem {
  id: string;
  parents: string[];
  /** The shard was closed when it was first listed. */
  closed: boolean;
}

const shardItem = (s: Shard): ShardItem => ({
  id: s.ShardId!,
  parents: [s.ParentShardId, s.AdjacentParentShardId].filter((p): p is string => !!p),
  closed: s.SequenceNumberRange?.EndingSequenceNumber !== undefined,
});

interface ShardNode extends ShardItem {
  state: 'waiting' | 'running' | 'done';
  /** Where reading starts: the --from position for shards listed at start, else TRIM_HORIZON. */
  start: ShardIteratorType;
}

export interface TailIO {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
}

class Tailer {
  private shards = new Map<string, ShardNode>();
  private tasks = new Set<Promise<void>>();
  private ctl = new AbortController();
  private printed = 0;
  private failure: string | undefined;

  constructor(
    private client: KinesisClient,
    private o: TailOptions,
    private io: TailIO,
  ) {}

  get signal(): AbortSignal {
    return this.ctl.signal;
  }

  stop(): void {
    this.ctl.abort();
  }

  private fail(e: unknown): void {
    if (this.ctl.signal.aborted) return;
    this.failure = describe(e, this.o);
    this.stop();
  }

  /** Resolves with the exit code once stopped (SIGINT, --max, or an error). */
  async run(): Promise<number> {
    try {
      await this.client.send(new DescribeStreamSummaryCommand({ StreamName: this.o.stream }), { abortSignal: this.signal });
    } catch (e) {
      if (isAbort(e)) return 0;
      if (errName(e) === 'ResourceNotFoundException') {
        this.io.err.write(`pinstream stream tail: stream "${this.o.stream}" not found at ${this.o.endpoint}\n`);
      } else {
        this.io.err.write(`pinstream stream tail: cannot describe stream "${this.o.stream}": ${describe(e, this.o)}\n`);
      }
      return 1;
    }
    let listed: Shard[];
    try {
      listed = await this.listShards();
    } catch (e) {
      if (isAbort(e)) return 0;
      this.io.err.write(`pinstream stream tail: ListShards on "${this.o.stream}" failed: ${describe(e, this.o)}\n`);
      return 1;
    }
    if (this.o.shard !== undefined && !listed.some((s) => s.ShardId === this.o.shard)) {
      const ids = listed.map((s) => s.ShardId).join(', ');
      this.io.err.write(`pinstream stream tail: shard "${this.o.shard}" not found in stream "${this.o.stream}" (shards: ${ids || 'none'})\n`);
      return 1;
    }
    this.add(listed.map(shardItem), true);
    const started = this.schedule();
    const open = [...this.shards.values()].filter((s) => !s.closed).length;
    // Iterators first, then the "tailing" line: records put after it are certain to be seen.
    await Promise.all(started);
    if (!this.signal.aborted) {
      this.io.err.write(
        `pinstream: tailing stream "${this.o.stream}" at ${this.o.endpoint}: ${this.shards.size} shard(s) followed (${open} open), ` +
          `from ${this.o.from === 'LATEST' ? 'latest' : 'trim-horizon'}${this.o.max ? `, until ${this.o.max} record(s)` : ''} (Ctrl-C to stop)\n`,
      );
    }
    const refresher = this.refreshLoop();
    await refresher;
    while (this.tasks.size > 0) await Promise.allSettled([...this.tasks]);
    if (this.failure !== undefined) {
      this.io.err.write(`pinstream stream tail: ${this.failure}\n`);
      return 1;
    }
    return 0;
  }

  private async listShards(): Promise<Shard[]> {
    const out: Shard[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.send(
        new ListShardsCommand(token ? { NextToken: token } : { StreamName: this.o.stream }),
        { abortSignal: this.signal },
      );
      out.push(...(r.Shards ?? []));
      token = r.NextToken;
    } while (token);
    return out;
  }

  /** Adds shards not seen before; with --shard only that shard and its descendants. */
  private add(items: ShardItem[], initial: boolean): void {
    // Parents before children (shard ids grow with creation), so descendant checks see the parent.
    for (const s of [...items].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
      if (this.shards.has(s.id)) continue;
      const followed = this.o.shard === undefined || s.id === this.o.shard || s.parents.some((p) => this.shards.has(p));
      if (!followed) continue;
      const node: ShardNode = { ...s, state: 'waiting', start: initial ? this.o.from : 'TRIM_HORIZON' };
      // From "latest", shards already closed at start hold nothing new: skip them (their open
      // descendants are in the same listing). Exception: the shard asked for with --shard.
      if (initial && this.o.from === 'LATEST' && s.closed && s.id !== this.o.shard) node.state = 'done';
      this.shards.set(s.id, node);
    }
  }

  /** Starts every waiting shard whose followed parents are all finished; returns their start-ups. */
  private schedule(): Array<Promise<void>> {
    const started: Array<Promise<void>> = [];
    if (this.signal.aborted) return started;
    for (const s of this.shards.values()) {
      if (s.state !== 'waiting') continue;
      if (s.parents.some((p) => this.shards.get(p) !== undefined && this.shards.get(p)!.state !== 'done')) continue;
      s.state = 'running';
      let ready!: () => void;
      started.push(new Promise<void>((r) => (ready = r)));
      const task = this.follow(s, ready).catch((e) => {
        if (!isAbort(e)) this.fail(e);
      });
      this.tasks.add(task);
      void task.finally(() => {
        ready();
        this.tasks.delete(task);
      });
    }
    return started;
  }

  private async refreshLoop(): Promise<void> {
    while (!this.signal.aborted) {
      try {
        await sleep(REFRESH_MS, undefined, { signal: this.signal });
        this.add((await this.listShards()).map(shardItem), false);
        this.schedule();
      } catch (e) {
        if (isAbort(e) || this.signal.aborted) return;
        if (errName(e) === 'ResourceNotFoundException') {
          this.fail(new TailError(`stream "${this.o.stream}" no longer exists`));
          return;
        }
        // Anything else (a network hiccup) only delays discovery; the shard loops report real failures.
      }
    }
  }

  private async iterator(shardId: string, type: ShardIteratorType, after?: string): Promise<string> {
    const r = await this.client.send(
      new GetShardIteratorCommand({
        StreamName: this.o.stream,
        ShardId: shardId,
        ...(after !== undefined ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: after } : { ShardIteratorType: type }),
      }),
      { abortSignal: this.signal },
    );
    if (!r.ShardIterator) throw new TailError(`GetShardIterator for ${shardId} returned no iterator`);
    return r.ShardIterator;
  }

  /** One shard's polling loop; `ready` is called once its first iterator is held. */
  private async follow(s: ShardNode, ready: () => void): Promise<void> {
    let it: string | undefined = await this.iterator(s.id, s.start);
    ready();
    let last: string | undefined;
    while (it !== undefined && !this.signal.aborted) {
      let r: GetRecordsCommandOutput;
      try {
        r = await this.client.send(new GetRecordsCommand({ ShardIterator: it, Limit: GET_RECORDS_LIMIT }), { abortSignal: this.signal });
      } catch (e) {
        const name = errName(e);
        if (name === 'ExpiredIteratorException') {
          it = await this.iterator(s.id, s.start, last);
          continue;
        }
        if (name === 'ProvisionedThroughputExceededException' || name === 'LimitExceededException') {
          await sleep(THROTTLE_BACKOFF_MS, undefined, { signal: this.signal });
          continue;
        }
        if (name === 'ResourceNotFoundException') throw new TailError(`stream "${this.o.stream}" or its shard ${s.id} no longer exists`);
        throw e;
      }
      for (const rec of r.Records ?? []) {
        if (this.signal.aborted) return;
        last = rec.SequenceNumber;
        if (!this.io.out.write(formatRecord(s.id, rec, this.o.raw) + '\n')) await waitDrain(this.io.out, this.signal);
        this.printed++;
        if (this.o.max !== undefined && this.printed >= this.o.max) {
          this.stop();
          return;
        }
      }
      it = r.NextShardIterator ?? undefined;
      if (it === undefined) {
        // Closed and read to its end: continue in the children (all of them, or --shard's line).
        s.state = 'done';
        this.add(
          (r.ChildShards ?? []).map((c) => ({ id: c.ShardId!, parents: c.ParentShards ?? [s.id], closed: false })),
          false,
        );
        this.schedule();
        return;
      }
      if ((r.Records ?? []).length === 0) await sleep(POLL_MS, undefined, { signal: this.signal });
    }
  }
}

function waitDrain(stream: NodeJS.WritableStream, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    stream.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

// ------------------------------------------------------------------------------------------------
// Client and entry point

async function makeClient(o: TailOptions, env: NodeJS.ProcessEnv): Promise<KinesisClient> {
  const id = env.PINSTREAM_ADMIN_ACCESS_KEY_ID;
  const secret = env.PINSTREAM_ADMIN_SECRET_ACCESS_KEY;
  const agentOpts = { keepAlive: true, maxSockets: 64 };
  const build = (region: string | undefined) =>
    new KinesisClient({
      endpoint: o.endpoint,
      ...(region !== undefined ? { region } : {}),
      ...(id && secret ? { credentials: { accessKeyId: id, secretAccessKey: secret } } : {}),
      requestHandler: new NodeHttpHandler({
        httpAgent: new http.Agent(agentOpts),
        httpsAgent: new https.Agent(agentOpts),
        requestTimeout: REQUEST_TIMEOUT_MS,
      }),
    });
  if (o.region !== undefined) return build(o.region);
  const client = build(undefined);
  try {
    await client.config.region();
    return client;
  } catch {
    // Nothing in the SDK's chain (environment, profile): fall back to the server's own setting.
    client.destroy();
    return build(env.PINSTREAM_REGION || DEFAULT_REGION);
  }
}

/** `pinstream stream tail ...`; resolves with the exit code. */
export async function streamTail(argv: string[], io: TailIO = { out: process.stdout, err: process.stderr }, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let o: TailOptions;
  try {
    o = parseTailArgs(argv, env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err.write(`pinstream stream tail: ${e.message}\n\n${TAIL_USAGE}\n`);
    return 2;
  }
  const client = await makeClient(o, env);
  const tailer = new Tailer(client, o, io);
  const onSignal = () => tailer.stop();
  const onOutError = (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') io.err.write(`pinstream stream tail: output error: ${e.message}\n`);
    tailer.stop(); // the reader went away (e.g. `| head`)
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  io.out.on('error', onOutError);
  try {
    return await tailer.run();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    io.out.off('error', onOutError);
    client.destroy();
  }
}
