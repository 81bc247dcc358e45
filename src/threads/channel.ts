// The request/response channel of the long-lived worker threads (analytics, consumers, Firehose,
// Firehose build; the PutEvents prepare pool and the loader's parse thread post plain messages):
// typed calls in both directions over one MessagePort-like endpoint (a
// Worker on the main thread, `parentPort` in the thread). Owns call ids, per-call timeouts,
// carrying errors across (an ApiError stays an ApiError, so the KPI routes still answer 400/404),
// and failing every open call at once when the other side is gone. It knows nothing of what the
// threads do: each side names its methods. src/threads/ is the shared thread kit: this channel,
// supervised-thread.ts (restart on death), transfer.ts (what may be transferred), priority.ts.

import { ApiError } from '../http/errors.js';

/** The subset of MessagePort / Worker / parentPort the channel uses. */
export interface Endpoint {
  postMessage(value: unknown, transfer?: readonly ArrayBuffer[]): void;
  on(event: 'message', listener: (value: unknown) => void): unknown;
}

/** A handler's answer: a plain value, or a value with buffers to transfer rather than copy. */
export type Reply = unknown | Transferable;
export class Transferable {
  constructor(
    readonly value: unknown,
    readonly transfer: ArrayBuffer[],
  ) {}
}

export type Handlers = Record<string, (args: any) => Promise<Reply> | Reply>;

interface CallMessage {
  t: 'call';
  id: number;
  method: string;
  args: unknown;
}
interface ReplyMessage {
  t: 'reply';
  id: number;
  ok: boolean;
  value?: unknown;
  error?: WireError;
}
interface WireError {
  message: string;
  name?: string;
  api?: { code: string; status: number };
}

/** The call did not get its answer in time (the other side may still be working on it). */
export class ChannelTimeoutError extends Error {
  override name = 'ChannelTimeoutError';
}

function toWire(e: unknown): WireError {
  if (e instanceof ApiError) return { message: e.message, name: e.name, api: { code: e.code, status: e.status } };
  if (e instanceof Error) return { message: e.message, name: e.name };
  return { message: String(e) };
}

function fromWire(w: WireError | undefined): Error {
  if (w?.api) return new ApiError(w.api.code, w.api.status, w.message);
  const e = new Error(w?.message ?? 'unknown error');
  if (w?.name && w.name !== 'Error') e.name = w.name;
  return e;
}

export class Channel {
  private nextId = 1;
  private readonly open = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout | undefined }>();
  private failed: Error | undefined;

  constructor(
    private readonly port: Endpoint,
    private readonly handlers: Handlers,
    /** What a call answers when it times out, e.g. "analytics thread". */
    private readonly peer: string,
  ) {
    port.on('message', (m) => this.receive(m as CallMessage | ReplyMessage));
  }

  /** Open calls (tests; health). */
  get pending(): number {
    return this.open.size;
  }

  /** Calls `method` on the other side; rejects after `timeoutMs` (0: no timeout) or when the channel fails. */
  call<T>(method: string, args: unknown, timeoutMs: number, transfer: readonly ArrayBuffer[] = []): Promise<T> {
    if (this.failed) return Promise.reject(this.failed);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              this.open.delete(id);
              reject(new ChannelTimeoutError(`${this.peer} did not answer ${method} within ${timeoutMs} ms`));
            }, timeoutMs)
          : undefined;
      this.open.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      try {
        this.port.postMessage({ t: 'call', id, method, args } satisfies CallMessage, transfer);
      } catch (e) {
        this.settle(id, false, undefined, toWire(e));
      }
    });
  }

  /** Rejects every open and future call with `error` (the other side is gone). */
  fail(error: Error): void {
    this.failed = error;
    for (const [id, c] of this.open) {
      clearTimeout(c.timer);
      this.open.delete(id);
      c.reject(error);
    }
  }

  private receive(m: CallMessage | ReplyMessage): void {
    if (m.t === 'reply') {
      this.settle(m.id, m.ok, m.value, m.error);
      return;
    }
    const handler = Object.hasOwn(this.handlers, m.method) ? this.handlers[m.method] : undefined;
    const answer = (ok: boolean, value: unknown, error?: WireError) => {
      let transfer: ArrayBuffer[] = [];
      if (value instanceof Transferable) {
        transfer = value.transfer;
        value = value.value;
      }
      try {
        this.port.postMessage({ t: 'reply', id: m.id, ok, value, error } satisfies ReplyMessage, transfer);
      } catch (e) {
        this.port.postMessage({ t: 'reply', id: m.id, ok: false, error: toWire(e) } satisfies ReplyMessage);
      }
    };
    if (!handler) {
      answer(false, undefined, { message: `no method ${m.method}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(m.args))
      .then(
        (v) => answer(true, v),
        (e) => answer(false, undefined, toWire(e)),
      );
  }

  private settle(id: number, ok: boolean, value: unknown, error: WireError | undefined): void {
    const c = this.open.get(id);
    if (!c) return; // timed out already
    this.open.delete(id);
    clearTimeout(c.timer);
    if (ok) c.resolve(value);
    else c.reject(fromWire(error));
  }
}
