// Work placement: decides which node runs each singleton job — an event-stream delivery worker, a
// Firehose deliverer, the analytics loader — so that each runs on exactly one node at a time and
// moves to another node when the one running it dies. Embedded (one process) every job runs here at
// once (`LocalPlacement`). With several nodes a job runs where its lease is held (`KvPlacement`):
// a key in a JetStream KV bucket whose age limit is the lease's time to live. The holder rewrites
// the key before it expires, by compare-and-set on its revision; a node that dies stops rewriting,
// JetStream removes the key when its age passes the limit, and another node's create succeeds.
// JetStream (Raft, replicated) is the only arbiter: no consensus of our own.
//
// Safety margin: a holder that cannot renew (NATS unreachable, partitioned) stops its job once
// LEASE_TTL_MS − LEASE_SAFETY_MS have passed since the start of its last successful renewal, i.e.
// before any other node can have taken the key over. Jobs are at-least-once consumers with
// checkpoints, so the short overlap a slow stop could still cause gives duplicates, never loss.

import { randomUUID } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import { describeError } from '../consumer/stop-signal.js';

/** A lease's time to live: how long a dead node's jobs wait before moving. */
export const LEASE_TTL_MS = 10_000;
/** How often the holder renews (three renewals per time to live). */
export const LEASE_RENEW_MS = Math.floor(LEASE_TTL_MS / 3);
/** A holder stops its job this long before its lease could expire elsewhere. */
export const LEASE_SAFETY_MS = 2_000;
/** Bound on each KV call, so a renewal never waits longer than the lease lives. */
export const LEASE_CALL_TIMEOUT_MS = 2_000;
/** The KV bucket that holds every lease. */
export const LEASE_BUCKET = 'pinstream-leases';

export interface PlacedJob {
  /** Starts the job on this node (it runs until stop). */
  start(): void | Promise<void>;
  /** Stops it; resolves once it no longer acts (e.g. its loop has left its last call). */
  stop(): Promise<void>;
}

export interface PlacementState {
  name: string;
  /** Whether this node runs the job now. */
  running: boolean;
  /** Node holding the lease as last seen (this node's id when running). */
  holder?: string;
  /** KV revision of this node's lease while it holds it (grows with each renewal). */
  revision?: number;
  lastError?: string;
}

export interface Placement {
  /** This node's id. */
  readonly nodeId: string;
  /** Runs `job` while this node holds `name`; a name is placed once per node. */
  place(name: string, job: PlacedJob): void;
  /** Stops the job here and gives its lease up, so another node can take it at once. */
  release(name: string): Promise<void>;
  states(): PlacementState[];
  /** Releases everything (a clean shutdown hands every job over without waiting for expiry). */
  close(): Promise<void>;
}

/** One process: every job runs here, at once. */
export class LocalPlacement implements Placement {
  private readonly jobs = new Map<string, PlacedJob>();
  constructor(readonly nodeId = 'local') {}

  place(name: string, job: PlacedJob): void {
    if (this.jobs.has(name)) throw new Error(`job ${name} is already placed`);
    this.jobs.set(name, job);
    void job.start();
  }

  async release(name: string): Promise<void> {
    const job = this.jobs.get(name);
    if (!job) return;
    this.jobs.delete(name);
    await job.stop();
  }

  states(): PlacementState[] {
    return [...this.jobs.keys()].map((name) => ({ name, running: true, holder: this.nodeId }));
  }

  async close(): Promise<void> {
    await Promise.all([...this.jobs.keys()].map((n) => this.release(n)));
  }
}

/** The node id in a lease's value (`<node id> <process instance>`). */
export function leaseHolderOf(value: string): string {
  const space = value.indexOf(' ');
  return space < 0 ? value : value.slice(0, space);
}

/** KV keys allow `[-/_=.a-zA-Z0-9]`; anything else (and `=`, `.`) is written `=XX` so names never collide. */
export function leaseKey(name: string): string {
  let out = '';
  for (const b of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9_-]/.test(c) ? c : `=${b.toString(16).padStart(2, '0')}`;
  }
  if (out.length === 0) throw new Error('empty job name');
  return out;
}

export interface KvPlacementOptions {
  kv: KV;
  nodeId: string;
  clock?: Clock;
  ttlMs?: number;
  renewMs?: number;
  safetyMs?: number;
  /** How often a node without the lease tries to take it. */
  retryMs?: number;
  report?: (line: string) => void;
}

interface Slot {
  name: string;
  key: string;
  job: PlacedJob;
  running: boolean;
  /** KV revision this node wrote last, while it holds the lease. */
  revision?: number;
  /** Clock time at which the last successful write (create or renewal) was sent. */
  renewedAt?: number;
  holder?: string;
  lastError?: string;
  timer?: NodeJS.Timeout;
  /** The running tick, so release waits for it. */
  busy?: Promise<void>;
  closed: boolean;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Leases in a JetStream KV bucket whose age limit is the lease time to live. */
export class KvPlacement implements Placement {
  readonly nodeId: string;
  private readonly slots = new Map<string, Slot>();
  private readonly clock: Clock;
  private readonly ttl: number;
  private readonly renew: number;
  private readonly safety: number;
  private readonly retry: number;
  private readonly report: (line: string) => void;

  /** What this process writes into the leases it holds: its node id and a per-process instance. */
  private readonly leaseValue: string;

  constructor(private readonly o: KvPlacementOptions) {
    this.nodeId = o.nodeId;
    this.leaseValue = `${o.nodeId} ${randomUUID()}`;
    this.clock = o.clock ?? systemClock;
    this.ttl = o.ttlMs ?? LEASE_TTL_MS;
    this.renew = o.renewMs ?? Math.floor(this.ttl / 3);
    this.safety = o.safetyMs ?? Math.min(LEASE_SAFETY_MS, Math.floor(this.ttl / 4));
    this.retry = o.retryMs ?? this.renew;
    this.report = o.report ?? (() => {});
    if (!(this.renew + this.safety < this.ttl)) throw new Error('lease renewal plus safety margin must be shorter than its time to live');
  }

  /** Opens (creating when new) the lease bucket; its age limit is the lease time to live. */
  static async bucket(kvm: { create(name: string, opts?: object): Promise<KV> }, opts: { ttlMs?: number; replicas?: number; name?: string } = {}): Promise<KV> {
    return kvm.create(opts.name ?? LEASE_BUCKET, { ttl: opts.ttlMs ?? LEASE_TTL_MS, history: 1, replicas: opts.replicas ?? 1 });
  }

  place(name: string, job: PlacedJob): void {
    if (this.slots.has(name)) throw new Error(`job ${name} is already placed`);
    const slot: Slot = { name, key: leaseKey(name), job, running: false, closed: false };
    this.slots.set(name, slot);
    this.schedule(slot, 0);
  }

  async release(name: string): Promise<void> {
    const slot = this.slots.get(name);
    if (!slot) return;
    this.slots.delete(name);
    slot.closed = true;
    clearTimeout(slot.timer);
    await slot.busy;
    if (slot.running) await this.stopJob(slot, 'released');
    if (slot.revision !== undefined) {
      // Only our own revision is deleted: when it was already taken over, the delete is refused.
      await withTimeout(this.o.kv.delete(slot.key, { previousSeq: slot.revision }), LEASE_CALL_TIMEOUT_MS, 'lease release').catch((e) =>
        this.report(`placement: releasing ${name} failed (${describeError(e)}); it moves when the lease expires`),
      );
      slot.revision = undefined;
    }
  }

  states(): PlacementState[] {
    return [...this.slots.values()].map((s) => ({ name: s.name, running: s.running, holder: s.holder, revision: s.revision, lastError: s.lastError }));
  }

  async close(): Promise<void> {
    await Promise.all([...this.slots.keys()].map((n) => this.release(n)));
  }

  private schedule(slot: Slot, ms: number): void {
    if (slot.closed) return;
    slot.timer = setTimeout(() => {
      slot.busy = this.tick(slot).finally(() => (slot.busy = undefined));
    }, ms);
  }

  private async tick(slot: Slot): Promise<void> {
    if (slot.closed) return;
    const sentAt = this.clock.now();
    if (slot.running && this.left(slot, sentAt) <= 0) {
      slot.revision = undefined;
      await this.stopJob(slot, `lease not renewed for ${this.ttl - this.safety} ms (${slot.lastError ?? 'no answer'})`);
    }
    let held = false;
    try {
      slot.revision =
        slot.revision === undefined
          ? await withTimeout(this.o.kv.create(slot.key, this.leaseValue), LEASE_CALL_TIMEOUT_MS, 'lease create')
          : // A renewal never outlives the time this node may still act on the lease.
            await withTimeout(this.o.kv.update(slot.key, this.leaseValue, slot.revision), Math.max(1, Math.min(LEASE_CALL_TIMEOUT_MS, this.left(slot, sentAt))), 'lease renewal');
      slot.renewedAt = sentAt;
      slot.holder = this.nodeId;
      slot.lastError = undefined;
      held = true;
    } catch (e) {
      await this.failed(slot, e);
    }
    if (held && !slot.running && !slot.closed) {
      slot.running = true;
      try {
        await slot.job.start();
      } catch (e) {
        slot.lastError = `start failed: ${describeError(e)}`;
        this.report(`placement: ${slot.name} failed to start on ${this.nodeId}: ${describeError(e)}`);
      }
    }
    // While running, the next look comes no later than the moment the job must stop if unrenewed.
    this.schedule(slot, slot.running ? Math.max(0, Math.min(this.renew, this.left(slot, this.clock.now()))) : this.retry);
  }

  /** Time this node may still act on its lease (measured from the start of its last good write). */
  private left(slot: Slot, now: number): number {
    return (slot.renewedAt ?? -Infinity) + this.ttl - this.safety - now;
  }

  private async failed(slot: Slot, e: unknown): Promise<void> {
    const msg = describeError(e);
    if (slot.revision === undefined) {
      // Someone else holds it (or NATS is away): note who, try again later.
      const entry = await withTimeout(this.o.kv.get(slot.key), LEASE_CALL_TIMEOUT_MS, 'lease read').catch(() => null);
      const value = entry && entry.operation === 'PUT' ? entry.string() : undefined;
      slot.holder = value === undefined ? undefined : leaseHolderOf(value);
      if (!/wrong last sequence|exists/i.test(msg)) slot.lastError = msg;
      // Our own write (a create or renewal whose answer was lost): take it back by compare-and-set
      // on its revision at the next tick; only success makes it ours again. Only this process's
      // own value counts: another process with the same node id (two nodes on one host left at the
      // default id, or this node before a restart) waits for the lease to expire like any other.
      if (entry && value === this.leaseValue) slot.revision = entry.revision;
      return;
    }
    slot.lastError = msg;
    const lost = /wrong last sequence/i.test(msg);
    if (lost || this.left(slot, this.clock.now()) <= 0) {
      slot.revision = undefined;
      if (slot.running) await this.stopJob(slot, lost ? 'lease taken over' : `lease not renewed for ${this.ttl - this.safety} ms (${msg})`);
    }
  }

  private async stopJob(slot: Slot, why: string): Promise<void> {
    slot.running = false;
    this.report(`placement: ${slot.name} stops on ${this.nodeId}: ${why}`);
    await slot.job.stop();
  }
}

/**
 * Placement on /metrics: one gauge per placed job, 1 where this node runs it, 0 where it stands by
 * (with the holder it last saw), so an operator sees where each singleton runs from any node.
 */
export function renderPlacementMetrics(p: Placement): string {
  const states = p.states();
  if (states.length === 0) return '';
  const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  const name = 'pinstream_placement_running';
  const lines = states.map((s) => `${name}{job="${esc(s.name)}",node="${esc(p.nodeId)}",holder="${esc(s.holder ?? '')}"} ${s.running ? 1 : 0}`);
  return `# HELP ${name} 1 when this node runs the job (holds its lease), else 0; holder is the node last seen holding it.\n# TYPE ${name} gauge\n${lines.join('\n')}\n`;
}
