// A whole Pinstream deployment on loopback, as docs/cluster.md describes it, for the cluster test
// and `npm run bench -- cluster`: three clustered `nats-server` processes, a fresh PostgreSQL
// database, optionally a private ClickHouse, one shared master key file, and N Pinstream nodes run as
// the real `pinstream start` command (child processes, so a node can be killed with SIGKILL), each
// with its own data directory and node id. Everything is removed by `stop()`; every wait is bounded.

import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startClickHouse, type ClickHouseServer } from './clickhouse.js';
import { NatsCluster, clusterSkip } from './nats-cluster.js';
import { pgDatabase, postgresTarget } from './postgres.js';
import { spawnServer, waitForExit, type ServerProcess } from './process.js';

/** How long one node may take to start (it connects to NATS, PostgreSQL and ClickHouse first). */
export const NODE_START_TIMEOUT_MS = 60_000;

export interface ClusterOptions {
  nodes: number;
  /** Analytics on a private ClickHouse (else each node's DuckDB). */
  clickhouse: boolean;
  /** Extra settings for every node. */
  env?: Record<string, string>;
  /** Extra `node` arguments of node `i` (e.g. --cpu-prof with a folder of its own). */
  nodeArgs?: (i: number) => string[];
}

export interface ClusterNode {
  id: string;
  dataDir: string;
  proc?: ServerProcess;
  /** The last process of this node that was stopped or killed (its output stays readable). */
  past?: ServerProcess;
}

export class PinstreamCluster {
  readonly admin = { accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(30).toString('base64url') };
  readonly nodes: ClusterNode[] = [];
  /** Bearer token of every node's /metrics (PINSTREAM_METRICS_TOKEN). */
  readonly metricsToken = randomBytes(16).toString('hex');

  private constructor(
    private readonly root: string,
    readonly nats: NatsCluster,
    readonly pg: { url: string; drop(): Promise<void> },
    readonly clickhouse: ClickHouseServer | undefined,
    private readonly chDatabase: string,
    private readonly extraEnv: Record<string, string>,
    private readonly nodeArgs: (i: number) => string[] = () => [],
  ) {}

  /** Why this machine cannot run a cluster, or undefined. */
  static async skip(): Promise<string | undefined> {
    return clusterSkip() ?? (await postgresTarget()).skip;
  }

  /** Starts the services and the nodes; throws `SkipCluster` when a service is missing here. */
  static async start(o: ClusterOptions): Promise<PinstreamCluster> {
    const why = await PinstreamCluster.skip();
    if (why) throw new SkipCluster(why);
    let ch: ClickHouseServer | undefined;
    if (o.clickhouse) {
      const target = await startClickHouse();
      if (target.skip !== undefined) throw new SkipCluster(target.skip);
      ch = target.server;
    }
    const root = await mkdtemp(join(tmpdir(), 'pinstream-cluster-'));
    let nats: NatsCluster | undefined;
    let pg: { url: string; drop(): Promise<void> } | undefined;
    try {
      nats = await NatsCluster.start(`pinstream-cluster-${process.pid}`);
      pg = await pgDatabase('cluster');
      // The one key every node seals secrets with (master.key's format: 32 bytes, base64).
      await writeFile(join(root, 'master.key'), randomBytes(32).toString('base64'), { mode: 0o600 });
      const c = new PinstreamCluster(root, nats, pg, ch, `cluster_${randomBytes(4).toString('hex')}`, o.env ?? {}, o.nodeArgs);
      for (let i = 0; i < o.nodes; i++) c.nodes.push({ id: `node-${i + 1}`, dataDir: join(root, `node-${i + 1}`) });
      // One at a time: the first applies the PostgreSQL migrations and creates the admin key.
      for (let i = 0; i < o.nodes; i++) await c.startNode(i);
      return c;
    } catch (e) {
      await nats?.stop();
      await pg?.drop().catch(() => {});
      await ch?.stop();
      await rm(root, { recursive: true, force: true });
      throw e;
    }
  }

  /** The settings node `i` runs with. */
  env(i: number): Record<string, string> {
    return {
      PINSTREAM_DATA_DIR: this.nodes[i].dataDir,
      PINSTREAM_NODE_ID: this.nodes[i].id,
      PINSTREAM_NATS_URL: this.nats.servers.join(','),
      PINSTREAM_NATS_REPLICAS: '3',
      PINSTREAM_POSTGRES_URL: this.pg.url,
      ...(this.clickhouse ? { PINSTREAM_CLICKHOUSE_URL: `${this.clickhouse.url}/${this.chDatabase}` } : {}),
      PINSTREAM_MASTER_KEY_FILE: join(this.root, 'master.key'),
      PINSTREAM_ADMIN_ACCESS_KEY_ID: this.admin.accessKeyId,
      PINSTREAM_ADMIN_SECRET_ACCESS_KEY: this.admin.secretAccessKey,
      PINSTREAM_METRICS_TOKEN: this.metricsToken,
      ...this.extraEnv,
    };
  }

  url(i: number): string {
    const p = this.nodes[i].proc;
    if (!p) throw new Error(`${this.nodes[i].id} is not running`);
    return p.url;
  }

  async startNode(i: number): Promise<ServerProcess> {
    const proc = await spawnServer(this.env(i), NODE_START_TIMEOUT_MS, undefined, this.nodeArgs(i));
    this.nodes[i].proc = proc;
    return proc;
  }

  /** kill -9 node `i`; resolves once it is gone. */
  async killNode(i: number): Promise<void> {
    const p = this.nodes[i].proc;
    if (!p) return;
    this.nodes[i].proc = undefined;
    this.nodes[i].past = p;
    p.child.kill('SIGKILL');
    await waitForExit(p.child);
  }

  /** SIGTERM node `i` (a clean stop hands its leases over at once), SIGKILL after 15 s. */
  async stopNode(i: number): Promise<void> {
    const p = this.nodes[i].proc;
    if (!p) return;
    this.nodes[i].proc = undefined;
    this.nodes[i].past = p;
    p.child.kill('SIGTERM');
    const timer = setTimeout(() => p.child.kill('SIGKILL'), 15_000);
    await waitForExit(p.child);
    clearTimeout(timer);
  }

  /** Node `i`'s /metrics lines whose family starts with one of `prefixes` (for failure messages); bounded. */
  async metrics(i: number, prefixes: string[]): Promise<string> {
    try {
      const r = await fetch(`${this.url(i)}/metrics`, { headers: { authorization: `Bearer ${this.metricsToken}` }, signal: AbortSignal.timeout(5000) });
      const text = await r.text();
      return text.split('\n').filter((l) => !l.startsWith('#') && prefixes.some((p) => l.startsWith(p))).join('\n');
    } catch (e) {
      return `(no /metrics from ${this.nodes[i].id}: ${(e as Error).message})`;
    }
  }

  /** What each node printed (for failure messages). */
  output(): string {
    return this.nodes.map((n) => `--- ${n.id}${n.proc ? '' : ' (not running)'}\n${(n.proc ?? n.past)?.output().slice(-4000) ?? ''}`).join('\n');
  }

  async stop(): Promise<void> {
    for (let i = 0; i < this.nodes.length; i++) await this.stopNode(i);
    await this.nats.stop();
    await this.pg.drop().catch(() => {});
    await this.clickhouse?.stop();
    await rm(this.root, { recursive: true, force: true });
  }
}

export class SkipCluster extends Error {}
