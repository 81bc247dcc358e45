// NATS for tests: the single server at 127.0.0.1:4222 (when reachable), and a cluster of three
// `nats-server` processes started by the test on free loopback ports, each with JetStream, its own
// store folder and routes to the other two. The cluster can kill -9 one server and restart it on
// the same ports and folder, and is removed at the end. Every wait is bounded.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { freePort } from './ports.js';
export { freePort };

export const NATS_SERVER = '/usr/sbin/nats-server';
export const SINGLE_NATS = '127.0.0.1:4222';
/** How long a cluster may take to elect its JetStream meta leader. */
export const CLUSTER_READY_TIMEOUT_MS = 30_000;
/** Payload limit of the test servers: a 1 MiB Kinesis record plus its key and framing fits. */
export const TEST_MAX_PAYLOAD = 8 * 1024 * 1024;

/** Why the single server cannot be used, or undefined when it answers on its port. */
export async function singleNatsSkip(): Promise<string | undefined> {
  const reachable = await new Promise<boolean>((resolve) => {
    const s = tcpConnect({ host: '127.0.0.1', port: 4222 });
    const timer = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, 1000);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  return reachable ? undefined : `no NATS server at ${SINGLE_NATS}`;
}

export function clusterSkip(): string | undefined {
  return existsSync(NATS_SERVER) ? undefined : `${NATS_SERVER} is not installed`;
}


interface Node {
  name: string;
  clientPort: number;
  clusterPort: number;
  dir: string;
  conf: string;
  child?: ChildProcess;
  output: string;
}

export class NatsCluster {
  private constructor(
    private readonly root: string,
    readonly nodes: Node[],
  ) {}

  /** Client URLs of all three servers. */
  get servers(): string[] {
    return this.nodes.map((n) => `nats://127.0.0.1:${n.clientPort}`);
  }

  static async start(name = `pinstream-${process.pid}`): Promise<NatsCluster> {
    const root = await mkdtemp(join(tmpdir(), 'pinstream-nats-'));
    const nodes: Node[] = [];
    for (let i = 0; i < 3; i++) {
      nodes.push({ name: `n${i}`, clientPort: await freePort(), clusterPort: await freePort(), dir: join(root, `n${i}`), conf: join(root, `n${i}.conf`), output: '' });
    }
    // A config file for what has no command-line flag (max_payload); the rest as flags.
    for (const n of nodes) await writeFile(n.conf, `max_payload: ${TEST_MAX_PAYLOAD}\n`);
    const c = new NatsCluster(root, nodes);
    try {
      for (const n of nodes) c.spawn(n, name);
      await c.waitReady();
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  private clusterName = '';

  private spawn(n: Node, clusterName = this.clusterName): void {
    this.clusterName = clusterName;
    const routes = this.nodes.filter((o) => o !== n).map((o) => `nats://127.0.0.1:${o.clusterPort}`).join(',');
    const args = [
      '-c', n.conf,
      '-a', '127.0.0.1',
      '-p', String(n.clientPort),
      '-n', n.name,
      '-js',
      '-sd', n.dir,
      '--cluster_name', clusterName,
      '--cluster', `nats://127.0.0.1:${n.clusterPort}`,
      '--routes', routes,
    ];
    const child = spawn(NATS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    // A test process that dies without its after() hooks must not leave servers running.
    const reap = () => child.kill('SIGKILL');
    process.once('exit', reap);
    child.once('exit', () => process.removeListener('exit', reap));
    n.output = '';
    child.stdout!.on('data', (d) => (n.output = (n.output + d).slice(-20_000)));
    child.stderr!.on('data', (d) => (n.output = (n.output + d).slice(-20_000)));
    n.child = child;
  }

  /** Waits until every running server answers and JetStream has a meta leader (bounded). */
  async waitReady(timeoutMs = CLUSTER_READY_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        const nc = await connect({ servers: this.servers, timeout: 2000, maxReconnectAttempts: 0 });
        try {
          const jsm = await jetstreamManager(nc, { timeout: 2000 });
          const info = await jsm.getAccountInfo();
          // Account info answers only once the meta group has a leader; a probe stream proves R3 works.
          if (info) {
            const probe = `PROBE${Date.now()}`;
            await jsm.streams.add({ name: probe, subjects: [`probe.${probe}`], num_replicas: 3 });
            await jsm.streams.delete(probe);
            return;
          }
        } finally {
          await nc.close();
        }
      } catch (e) {
        last = e;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`NATS cluster not ready in ${timeoutMs} ms: ${String(last)}\n${this.nodes.map((n) => `--- ${n.name}\n${n.output.slice(-2000)}`).join('\n')}`);
  }

  /** kill -9 one server; resolves once it is gone. */
  async kill(i: number): Promise<void> {
    const child = this.nodes[i].child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await gone;
  }

  /**
   * SIGSTOP one server: its connections stay open and nothing answers (a hung machine, not a dead
   * one). Resolves once the kernel shows it stopped: a thread still running when the signal is sent
   * could otherwise answer one more request.
   */
  async pause(i: number): Promise<void> {
    const child = this.nodes[i].child;
    if (!child?.pid) return;
    child.kill('SIGSTOP');
    // Every thread's state letter (after the command name in parentheses) is T once the stop is done.
    const stopped = async () => {
      const tids = await readdir(`/proc/${child.pid}/task`).catch(() => [] as string[]);
      for (const tid of tids) {
        const stat = await readFile(`/proc/${child.pid}/task/${tid}/stat`, 'utf8').catch(() => ')  T');
        if (stat[stat.lastIndexOf(')') + 2] !== 'T') return false;
      }
      return true;
    };
    for (const deadline = Date.now() + 5000; !(await stopped()) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 5));
  }

  /** SIGCONT a paused server. */
  resume(i: number): void {
    this.nodes[i].child?.kill('SIGCONT');
  }

  /** Starts a killed server again on its ports and store folder, and waits for the cluster. */
  async restart(i: number): Promise<void> {
    this.revive(i);
    await this.waitReady();
  }

  /** Starts a killed server again without waiting (several at once after an outage; then waitReady). */
  revive(i: number): void {
    this.spawn(this.nodes[i]);
  }

  async stop(): Promise<void> {
    for (let i = 0; i < this.nodes.length; i++) await this.kill(i);
    await rm(this.root, { recursive: true, force: true });
  }
}

/**
 * One 3-server cluster for the test file that calls this (at its top level): started before its
 * tests, stopped after them. `skip()` is why a test cannot use it (no nats-server, or it did not start).
 */
export function fileCluster(): { get(): NatsCluster; skip(): string | undefined } {
  let cluster: NatsCluster | undefined;
  let error: string | undefined;
  before(async () => {
    if (clusterSkip()) return;
    try {
      cluster = await NatsCluster.start();
    } catch (e) {
      error = `the NATS cluster did not start: ${(e as Error).message.slice(0, 500)}`;
    }
  });
  after(() => cluster?.stop());
  return { get: () => cluster!, skip: () => clusterSkip() ?? error };
}
