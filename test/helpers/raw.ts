// Raw HTTP/1.1 over a TCP socket, for what no client library will send: a request line split
// anywhere, headers that never end, a body that stops half way, a Content-Length and no body at
// all. Requests can be signed exactly as the SDK signs them (headers only: the body, when there is
// one, is declared UNSIGNED-PAYLOAD, so nothing about it has to exist yet).

import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Waits for `cond` with a bound; resolves false when the bound passes first. */
export async function until(cond: () => boolean, timeoutMs: number, everyMs = 20): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return true;
}

export class RawConnection {
  private buf = Buffer.alloc(0);
  closed = false;
  /** When the server closed (or reset) the connection, ms since the epoch. */
  closedAt?: number;
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.closedAt = Date.now();
      this.wake();
    });
  }

  static open(url: string): Promise<RawConnection> {
    const u = new URL(url);
    return new Promise((resolve, reject) => {
      const s = net.connect(Number(u.port), u.hostname, () => resolve(new RawConnection(s)));
      s.setNoDelay(true);
      s.once('error', reject);
    });
  }

  /** A TLS connection (handshake done) to an https:// URL, with the given client options (ca, ALPN…). */
  static openTls(url: string, opts: tls.ConnectionOptions): Promise<RawConnection> {
    const u = new URL(url);
    return new Promise((resolve, reject) => {
      const s = tls.connect({ port: Number(u.port), host: u.hostname, ...opts }, () => resolve(new RawConnection(s)));
      s.setNoDelay(true);
      s.once('error', reject);
    });
  }

  private wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private changed(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.write(data, () => resolve());
    });
  }

  /** Everything received and not yet consumed by response(). */
  received(): Buffer {
    return this.buf;
  }

  /** The next whole response (Content-Length framed); rejects when none arrives within the bound. */
  async response(timeoutMs = 10_000): Promise<RawResponse> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const headEnd = this.buf.indexOf('\r\n\r\n');
      if (headEnd >= 0) {
        const lines = this.buf.subarray(0, headEnd).toString('latin1').split('\r\n');
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(lines[0])?.[1]);
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        // 1xx answers have no body and precede the final one.
        const length = status < 200 ? 0 : Number(headers['content-length'] ?? 0);
        if (this.buf.length >= headEnd + 4 + length) {
          const body = this.buf.subarray(headEnd + 4, headEnd + 4 + length);
          this.buf = this.buf.subarray(headEnd + 4 + length);
          return { status, headers, body };
        }
      }
      if (this.closed) throw new Error(`connection closed before a whole response; got ${JSON.stringify(this.buf.toString('latin1').slice(0, 200))}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no whole response within ${timeoutMs} ms; got ${JSON.stringify(this.buf.toString('latin1').slice(0, 200))}`);
      await this.changed(left);
    }
  }

  /** Resolves true once the server has closed the connection, false if it is still open after the bound. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (!this.closed) {
      const left = end - Date.now();
      if (left <= 0) return false;
      await this.changed(left);
    }
    return true;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export interface SignedHeadOptions {
  method?: string;
  path: string;
  service: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  headers?: Record<string, string>;
  /** The declared body length; the body itself is sent (or not) separately. */
  contentLength?: number;
  signingDate?: Date;
}

/** The request line and headers of a request signed as the SDK signs it, body declared UNSIGNED-PAYLOAD. */
export async function signedHead(url: string, o: SignedHeadOptions): Promise<string> {
  const u = new URL(url);
  const signer = new SignatureV4({ service: o.service, region: 'us-east-1', credentials: o.credentials, sha256: Sha256 });
  const headers: Record<string, string> = { host: u.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...o.headers };
  if (o.contentLength !== undefined) headers['content-length'] = String(o.contentLength);
  const signed = await signer.sign(
    { method: o.method ?? 'POST', protocol: 'http:', hostname: u.hostname, port: Number(u.port), path: o.path, query: {}, headers },
    { signingDate: o.signingDate },
  );
  let head = `${o.method ?? 'POST'} ${o.path} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(signed.headers)) head += `${k}: ${v}\r\n`;
  return head + '\r\n';
}

/**
 * Resets the peak resident set (VmHWM) to the current one (Linux: 5 to /proc/PID/clear_refs), so a
 * later peak measures only what came after. Returns false where the kernel does not allow it.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Reads /proc/PID/status: resident set now and its peak, in bytes (Linux). */
export function rssOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}
