// Metadata store benchmark (`npm run bench -- metadata`): the cost of an IAM write (an access key
// created and deleted: one transaction each) on SQLite and on PostgreSQL, the SigV4 key lookup
// served from the cache (the same code on both), and on PostgreSQL how long a change made on one
// node takes to be served by another (commit → NOTIFY → reload), as p50/p99. Wall time and CPU µs
// of this process per operation; PostgreSQL's own CPU is not counted.

import { mkdtemp, rm, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openDb } from '../src/store/db.js';
import { openMetadata, type MetadataCache } from '../src/store/metadata.js';
import { IamStore, generateKey } from '../src/iam/store.js';
import { MASTER_KEY_FILE } from '../src/iam/secrets.js';
import { systemClock } from '../src/clock.js';

/** Longest one propagation may take before the benchmark gives up on it. */
const PROPAGATION_TIMEOUT_MS = 10_000;

interface Options {
  writes: number;
  lookups: number;
  propagations: number;
  /** A database on the PostgreSQL server to create the benchmark's own database from. */
  postgres: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { writes: 500, lookups: 1_000_000, propagations: 200, postgres: 'postgres://postgres@127.0.0.1:5432/test' };
  for (let i = 0; i < argv.length; i++) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (k === '--writes') o.writes = Number(v);
    else if (k === '--lookups') o.lookups = Number(v);
    else if (k === '--propagations') o.propagations = Number(v);
    else if (k === '--postgres') o.postgres = v;
    else throw new Error(`unknown option ${k} (--writes N, --lookups N, --propagations N, --postgres URL)`);
    i++;
  }
  return o;
}

interface Node {
  iam: IamStore;
  meta: MetadataCache;
  close(): Promise<void>;
}

async function openNode(dir: string, postgresUrl?: string): Promise<Node> {
  const db = openDb(dir);
  const meta = await openMetadata({ db, postgresUrl });
  const iam = await IamStore.open(db, meta, systemClock, '000000000000', dir);
  return {
    iam,
    meta,
    async close() {
      await meta.close();
      db.close();
    },
  };
}

/** µs of wall and CPU time per call of `fn`, `n` calls in sequence. */
async function measure(n: number, fn: () => Promise<void>): Promise<{ wallUs: number; cpuUs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn();
  return per(n, t0, cpu0);
}

/** The same for a synchronous call (no await between calls, as on the request path). */
function measureSync(n: number, fn: () => void): { wallUs: number; cpuUs: number } {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn();
  return per(n, t0, cpu0);
}

function per(n: number, t0: number, cpu0: NodeJS.CpuUsage): { wallUs: number; cpuUs: number } {
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { wallUs: (wall * 1000) / n, cpuUs: (cpu.user + cpu.system) / n };
}

async function adapterRun(label: string, node: Node, o: Options): Promise<void> {
  await node.iam.createUser('bench');
  const w = await measure(o.writes, async () => {
    const k = await node.iam.createAccessKey('bench');
    await node.iam.deleteAccessKey(k.accessKeyId);
  });
  const key = await node.iam.createAccessKey('bench');
  let found = 0;
  const l = measureSync(o.lookups, () => {
    if (node.iam.lookup(key.accessKeyId)) found++;
  });
  if (found !== o.lookups) throw new Error('a lookup missed');
  console.log(
    `${label.padEnd(10)} create+delete access key: ${(w.wallUs / 2).toFixed(0)} µs per write (CPU ${(w.cpuUs / 2).toFixed(0)} µs); ` +
      `key lookup from cache: ${(l.wallUs * 1000).toFixed(0)} ns (CPU ${(l.cpuUs * 1000).toFixed(0)} ns)`,
  );
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];

export async function metadata(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  const dirs: string[] = [];
  const tmp = async () => {
    const d = await mkdtemp(join(tmpdir(), 'pinstream-bench-meta-'));
    dirs.push(d);
    return d;
  };
  try {
    const sqlite = await openNode(await tmp());
    await adapterRun('sqlite', sqlite, o);
    await sqlite.close();

    const admin = new pg.Client({ connectionString: o.postgres, connectionTimeoutMillis: 3000 });
    admin.on('error', () => {});
    try {
      await admin.connect();
    } catch (e) {
      console.log(`postgres   skipped: ${o.postgres} not reachable (${(e as Error).message})`);
      return 0;
    }
    const name = `pinstream_bench_${randomBytes(4).toString('hex')}`;
    await admin.query(`CREATE DATABASE ${name}`);
    const url = new URL(o.postgres);
    url.pathname = '/' + name;
    try {
      const d1 = await tmp();
      const one = await openNode(d1, url.href);
      const d2 = await tmp();
      await copyFile(join(d1, MASTER_KEY_FILE), join(d2, MASTER_KEY_FILE));
      const two = await openNode(d2, url.href);
      await adapterRun('postgres', one, o);
      // Propagation: node 1 creates a key node 2 has already been asked about (and answered
      // "unknown"); timed from the start of node 1's write until node 2 serves the key.
      const delays: number[] = [];
      for (let i = 0; i < o.propagations; i++) {
        const given = generateKey();
        two.iam.lookup(given.accessKeyId);
        const seen = new Promise<number>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`node 2 did not see a change within ${PROPAGATION_TIMEOUT_MS} ms`)), PROPAGATION_TIMEOUT_MS);
          const off = two.meta.onChange(() => {
            if (!two.iam.lookup(given.accessKeyId)) return;
            clearTimeout(timer);
            off();
            resolve(performance.now());
          });
        });
        const t0 = performance.now();
        await one.iam.createAccessKey('bench', given);
        delays.push((await seen) - t0);
        await one.iam.deleteAccessKey(given.accessKeyId);
      }
      delays.sort((a, b) => a - b);
      console.log(
        `postgres   key created on node 1, served by node 2 (from the start of the write): p50 ${pct(delays, 50).toFixed(2)} ms, p99 ${pct(delays, 99).toFixed(2)} ms, max ${delays[delays.length - 1].toFixed(2)} ms (${delays.length} changes)`,
      );
      await one.close();
      await two.close();
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
    return 0;
  } finally {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
}
