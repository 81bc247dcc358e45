// The listening sockets. Without TLS one port serves HTTP/1.1 and cleartext HTTP/2 (prior knowledge,
// as the AWS SDK v3 Kinesis client and the Java SDK v2 speak it): the first bytes of each connection
// decide which parser gets the socket. With TLS configured that port speaks only TLS, and ALPN
// (h2, http/1.1) decides; an optional second port (httpPort) then speaks plain HTTP as above. Both
// ports share every bound below: one connection count, one reserve, one unverified-body budget.
// This module owns every resource bound of the front door:
//
// - time: the first bytes (with TLS: the whole handshake) and the headers must arrive within
//   headersTimeoutMs each, a body within
//   bodyTimeoutMs of its headers, and idle connections (HTTP/1.1 keep-alive, HTTP/2 sessions
//   without streams) close after keepAliveTimeoutMs;
// - size: a body longer than its protocol allows (the front door says how long, from the headers)
//   is refused before it is read, and header blocks are capped at MAX_HEADER_BYTES;
// - memory: every body byte held before its request's signature is verified counts against one
//   budget for the whole server; a request that would exceed it is refused with a retryable error;
// - connections: at most maxConnections, below the file-descriptor limit. At the cap a new
//   connection pushes out the one idle longest (no request in flight: silent, sending headers, or
//   kept alive); requests in flight may hold all but OPERATOR_RESERVE_CONNECTIONS of the
//   connections, so /health and /metrics are always answered.
//
// The front door (dispatch.ts) decides from the request's head; this module reads the body and
// sends what the front door answers (whole bodies, or a Readable streamed as produced).

import net from 'node:net';
import http from 'node:http';
import http2 from 'node:http2';
import tls from 'node:tls';
import { Readable } from 'node:stream';
import { OPERATOR_RESERVE_CONNECTIONS, type Config } from '../config/config.js';
import type { ApiResponse } from './request.js';
import { MAX_HEADER_BYTES, NODE_REQUEST_TIMEOUT_SLACK_MS, REFUSED_BODY_DRAIN_BYTES } from './limits.js';
import { ALPN_PROTOCOLS, secureContextOptions, type TlsMaterial } from './tls.js';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** The front door's settings, as validated in Config; `maxConnections` resolved (never 0, see resolveMaxConnections). */
export type ServerLimits = Pick<
  Config,
  'headersTimeoutMs' | 'bodyTimeoutMs' | 'keepAliveTimeoutMs' | 'maxConnections' | 'maxUnverifiedBodyBytes' | 'http2MaxConcurrentStreams' | 'http2MaxSessionMemoryMb'
>;

/** A request as far as it is known before its body. */
export interface RequestHead {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /**
   * Requests in flight already hold every connection but the operator reserve: only operator
   * routes (/health, /metrics) may be served; anything else gets a retryable refusal.
   */
  overloaded: boolean;
}

export type BodyRefusal =
  | { reason: 'too-large'; limit: number; declared?: number }
  | { reason: 'busy'; budget: number }
  | { reason: 'timeout'; timeoutMs: number };

/** The front door's verdict on a request head. */
export interface Admission {
  /** An answer that needs no body (refusals, open routes); the body is drained or the connection closed. */
  response?: Promise<ApiResponse>;
  /** Close the connection after that answer (HTTP/1.1), e.g. when refusing for lack of connections. */
  closeConnection?: boolean;
  /** Otherwise: the longest body this request may have. */
  maxBodyBytes: number;
  /**
   * Runs the request with its whole body. `verified` is called once the signature is checked: from
   * then on the body's bytes are no longer counted as unverified.
   */
  finish(body: Buffer, verified: () => void): Promise<ApiResponse>;
  /** The protocol's answer when the server gives up on the body. */
  refuse(r: BodyRefusal): ApiResponse;
}

export type FrontDoor = (head: RequestHead) => Admission;

/** Where to listen. */
export interface ListenOptions {
  host: string;
  /** HTTPS when `tls` is given, else plain HTTP (HTTP/1.1 and h2c). */
  port: number;
  tls?: TlsMaterial;
  /** With `tls`: a second port that speaks plain HTTP (0 picks a free one). */
  httpPort?: number;
}

export interface RunningServer {
  port: number;
  /** `https://…` when TLS is configured, else `http://…`. */
  url: string;
  /** The plain-HTTP port beside HTTPS, when configured. */
  httpPort?: number;
  httpUrl?: string;
  /** Serves new TLS connections with this material; connections already open keep theirs. */
  reloadTls(m: TlsMaterial): void;
  /** Live counters, for tests and metrics. */
  stats(): ServerStats;
  close(): Promise<void>;
}

export interface ServerStats {
  connections: number;
  busyConnections: number;
  unverifiedBodyBytes: number;
}

type CompatRequest = http.IncomingMessage | http2.Http2ServerRequest;
type CompatResponse = http.ServerResponse | http2.Http2ServerResponse;

/** One accepted TCP connection, whichever protocol it turns out to speak. */
interface Conn {
  /** The TCP socket: what the connection count and its close are about. */
  socket: net.Socket;
  /** Over TLS, once the handshake is done: the socket the HTTP parsers read (it carries CONN). */
  tls?: tls.TLSSocket;
  kind: 'pending' | 'h1' | 'h2';
  /** Requests (HTTP/1.1) or streams (HTTP/2) being served. */
  active: number;
  session?: http2.ServerHttp2Session;
  /** Pending: the first bytes' (TLS: the handshake's) deadline; HTTP/2: the idle-session deadline. */
  timer?: NodeJS.Timeout;
}

const CONN = Symbol('pinstream.conn');

/** Body bytes held before verification, over all requests. */
class ByteBudget {
  used = 0;
  constructor(readonly limit: number) {}
  take(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }
  give(n: number): void {
    this.used -= n;
  }
}

/**
 * A plain-HTTP request line sent to the TLS port, as OpenSSL recognizes it (GET, POST, HEAD, PUT):
 * answered in plain HTTP, so the client learns why. Anything else that is not TLS is just closed.
 */
const PLAIN_HTTP_ON_TLS_PORT = 'ERR_SSL_HTTP_REQUEST';

export async function listen(frontDoor: FrontDoor, where: ListenOptions, limits: ServerLimits): Promise<RunningServer> {
  const { host } = where;
  const conns = new Map<net.Socket, Conn>();
  /** Connections with nothing in flight, longest idle first (a Set iterates in insertion order). */
  const idle = new Set<Conn>();
  let busy = 0;
  const busyLimit = limits.maxConnections - OPERATOR_RESERVE_CONNECTIONS;
  const budget = new ByteBudget(limits.maxUnverifiedBodyBytes);

  const setIdle = (c: Conn) => {
    idle.delete(c);
    idle.add(c);
    if (c.kind === 'h2') armSessionTimer(c, limits.keepAliveTimeoutMs);
  };
  const begin = (c: Conn): boolean => {
    const wasBusy = c.active > 0;
    c.active++;
    if (!wasBusy) {
      busy++;
      idle.delete(c);
      clearTimeout(c.timer);
    }
    return !wasBusy && busy > busyLimit;
  };
  const end = (c: Conn) => {
    c.active--;
    if (c.active === 0) {
      busy--;
      if (conns.has(c.socket)) setIdle(c);
    }
  };
  const armSessionTimer = (c: Conn, ms: number) => {
    clearTimeout(c.timer);
    c.timer = setTimeout(() => {
      if (c.active === 0) c.session?.destroy();
    }, ms);
    c.timer.unref();
  };

  const onRequest = (req: CompatRequest, res: CompatResponse, expectContinue = false) => {
    const socket = connSocket(req);
    const conn = socket ? (socket as unknown as Record<symbol, Conn | undefined>)[CONN] : undefined;
    if (!conn) {
      res.destroy();
      return;
    }
    serve({ frontDoor, budget, limits, begin, end }, conn, req, res, expectContinue);
  };

  const h1 = http.createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.headersTimeoutMs + limits.bodyTimeoutMs + NODE_REQUEST_TIMEOUT_SLACK_MS,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node checks both timeouts on this interval (default 30 s, far coarser than the timeouts).
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4))),
      maxHeaderSize: MAX_HEADER_BYTES,
    },
    (req, res) => onRequest(req, res),
  );
  h1.on('checkContinue', (req, res) => onRequest(req, res, true));
  h1.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => clientError(err, socket));
  // Node tracks connections for headersTimeout/requestTimeout only from 'listening' on, and this
  // server never listens itself: it gets its sockets by emit('connection').
  h1.emit('listening');

  const h2 = http2.createServer(
    {
      maxSessionMemory: limits.http2MaxSessionMemoryMb,
      settings: { maxConcurrentStreams: limits.http2MaxConcurrentStreams, maxHeaderListSize: MAX_HEADER_BYTES },
    },
    (req, res) => onRequest(req, res),
  );
  h2.on('checkContinue', (req, res) => onRequest(req, res, true));
  h2.on('session', (s) => {
    const c = (s.socket as unknown as Record<symbol, Conn | undefined>)[CONN];
    if (!c) {
      s.destroy();
      return;
    }
    c.session = s;
    // The first stream must come as soon as headers would have to.
    if (c.active === 0) armSessionTimer(c, limits.headersTimeoutMs);
    s.on('error', () => {});
  });

  /** Admits a TCP connection under the cap (pushing out the longest idle one), or refuses it. */
  const admit = (socket: net.Socket): Conn | undefined => {
    if (conns.size >= limits.maxConnections) {
      const oldest = idle.values().next().value as Conn | undefined;
      if (!oldest) {
        socket.destroy();
        return undefined;
      }
      evict(oldest);
    }
    const c: Conn = { socket, kind: 'pending', active: 0 };
    conns.set(socket, c);
    idle.add(c);
    socket.on('close', () => {
      conns.delete(socket);
      idle.delete(c);
      clearTimeout(c.timer);
      if (handshaking.get(peerKey(socket)) === c) handshaking.delete(peerKey(socket));
    });
    socket.on('error', () => socket.destroy());
    return c;
  };

  const plain = net.createServer((socket) => {
    const c = admit(socket);
    if (!c) return;
    (socket as unknown as Record<symbol, Conn>)[CONN] = c;
    detectProtocol(c);
  });

  // The TLS layer: fed the TCP sockets the listener accepted (so the cap and the reserve count
  // them), it hands each finished handshake to the parser ALPN chose. tls.Server, not a bare
  // TLSSocket: Node's HTTP/2 session only works on the sockets tls.Server releases to it.
  let tlsServer: tls.Server | undefined;
  /** TLS connections in their handshake, by peer address: the TLS socket names its TCP one by that alone. */
  const handshaking = new Map<string, Conn>();
  if (where.tls) {
    tlsServer = tls.createServer({ ...secureContextOptions(where.tls), ALPNProtocols: ALPN_PROTOCOLS });
    tlsServer.on('secureConnection', (t: tls.TLSSocket) => {
      const key = peerKey(t);
      const c = handshaking.get(key);
      handshaking.delete(key);
      if (!c || !conns.has(c.socket)) {
        t.destroy();
        return;
      }
      clearTimeout(c.timer);
      c.timer = undefined;
      c.tls = t;
      (t as unknown as Record<symbol, Conn>)[CONN] = c;
      t.on('error', () => t.destroy());
      // No ALPN at all is an HTTP/1.1 client (RFC 9113 §3.2: HTTP/2 over TLS is negotiated by ALPN).
      c.kind = t.alpnProtocol === 'h2' ? 'h2' : 'h1';
      (c.kind === 'h2' ? h2 : h1).emit('connection', t);
    });
    tlsServer.on('tlsClientError', (err: NodeJS.ErrnoException, t: tls.TLSSocket) => {
      const key = peerKey(t);
      const c = handshaking.get(key);
      handshaking.delete(key);
      if (!c) return t.destroy();
      if (err.code === PLAIN_HTTP_ON_TLS_PORT && c.socket.writable) {
        // The TCP socket still writes: a short answer goes out in one write, before the TLS
        // socket's teardown closes it.
        c.socket.end(rawAnswer(plainError(400, 'BadRequestException', 'This port speaks HTTPS (TLS); plain HTTP is refused here')));
      }
      t.destroy();
      c.socket.destroySoon();
    });
  }
  const secure = where.tls
    ? net.createServer((socket) => {
        const c = admit(socket);
        if (!c) return;
        // The handshake must finish within the time the first bytes would have had.
        c.timer = setTimeout(() => socket.destroy(), limits.headersTimeoutMs);
        c.timer.unref();
        handshaking.set(peerKey(socket), c);
        tlsServer!.emit('connection', socket);
      })
    : undefined;

  // accept() failing (EMFILE when files took the descriptors meant for connections) must not take
  // the process down; say so once a minute at most.
  let lastAcceptError = 0;
  const acceptError = (e: Error) => {
    if (Date.now() - lastAcceptError > 60_000) {
      lastAcceptError = Date.now();
      console.error(`pinstream: accepting a connection failed: ${e.message}`);
    }
  };

  const evict = (c: Conn) => {
    idle.delete(c);
    if (c.session) c.session.destroy();
    else (c.tls ?? c.socket).destroy();
  };

  /**
   * Waits for enough bytes to tell the HTTP/2 preface from an HTTP/1.1 request line: all 24 bytes of
   * the preface, or a byte that differs from it. A lone `P` could be either.
   */
  const detectProtocol = (c: Conn) => {
    const { socket } = c;
    const seen: Buffer[] = [];
    let length = 0;
    c.timer = setTimeout(() => socket.destroy(), limits.headersTimeoutMs);
    c.timer.unref();
    const onData = (chunk: Buffer) => {
      seen.push(chunk);
      length += chunk.length;
      const first = seen.length === 1 ? chunk : Buffer.concat(seen, length);
      const n = Math.min(first.length, H2_PREFACE.length);
      const isPrefix = first.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (isPrefix && n < H2_PREFACE.length) return;
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
      clearTimeout(c.timer);
      c.timer = undefined;
      socket.pause();
      socket.unshift(first);
      c.kind = isPrefix ? 'h2' : 'h1';
      // HTTP/2 replays the unshifted bytes into its native session itself; resuming the socket
      // would hand them to a 'data' listener no one has. The HTTP/1.1 parser needs the resume.
      (isPrefix ? h2 : h1).emit('connection', socket);
      if (!isPrefix) socket.resume();
    };
    const onEnd = () => socket.destroy();
    socket.on('data', onData);
    socket.on('end', onEnd);
  };

  const main = secure ?? plain;
  const servers = [main];
  if (secure && where.httpPort !== undefined) servers.push(plain);
  try {
    await bind(main, host, where.port);
    if (servers.length > 1) await bind(plain, host, where.httpPort!);
  } catch (e) {
    main.close();
    throw e;
  }
  for (const s of servers) s.on('error', acceptError);
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const mainPort = (main.address() as net.AddressInfo).port;
  const httpPort = servers.length > 1 ? (plain.address() as net.AddressInfo).port : undefined;
  return {
    port: mainPort,
    url: `${secure ? 'https' : 'http'}://${shownHost}:${mainPort}`,
    httpPort,
    httpUrl: httpPort === undefined ? undefined : `http://${shownHost}:${httpPort}`,
    reloadTls: (m) => {
      if (!tlsServer) throw new Error('TLS is not configured');
      tlsServer.setSecureContext(secureContextOptions(m));
    },
    stats: () => ({ connections: conns.size, busyConnections: busy, unverifiedBodyBytes: budget.used }),
    close: () =>
      new Promise<void>((resolve) => {
        let open = servers.length;
        for (const s of servers) s.close(() => --open === 0 && resolve());
        for (const c of conns.values()) {
          if (c.kind === 'pending') c.socket.destroy();
          else if (c.session) c.session.close();
        }
        // Stops Node's timeout checker too.
        h1.close(() => {});
        // Give in-flight responses a moment, then cut whatever is left (clients retry).
        setTimeout(() => {
          for (const s of conns.keys()) s.destroy();
        }, 200).unref();
      }),
  };
}

function bind(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
}

/** A TCP connection's peer, which its TLS socket reports the same (both read the one descriptor). */
function peerKey(s: net.Socket): string {
  return `${s.remoteAddress}|${s.remotePort}`;
}

function connSocket(req: CompatRequest): net.Socket | undefined {
  // HTTP/2: the session's socket is a proxy of the TCP socket; reading a property passes through.
  return 'stream' in req ? (req.stream.session?.socket as net.Socket | undefined) : req.socket;
}

interface ServeContext {
  frontDoor: FrontDoor;
  budget: ByteBudget;
  limits: ServerLimits;
  begin(c: Conn): boolean;
  end(c: Conn): void;
}

function serve(ctx: ServeContext, conn: Conn, req: CompatRequest, res: CompatResponse, expectContinue: boolean): void {
  const overloaded = ctx.begin(conn);
  let finished = false;
  let charged = 0;
  let timer: NodeJS.Timeout | undefined;
  const release = () => {
    ctx.budget.give(charged);
    charged = 0;
  };
  res.on('close', () => {
    clearTimeout(timer);
    release();
    if (!finished) {
      finished = true;
      ctx.end(conn);
    }
  });
  req.on('error', () => {});

  const isH2 = 'stream' in req;
  if (isH2 && headerListBytes(req.rawHeaders) > MAX_HEADER_BYTES) {
    // nghttp2 advertises the limit but does not enforce it on a peer that ignores it.
    drain(req);
    send(res, plainError(431, 'RequestHeaderFieldsTooLarge', `Request headers exceed ${MAX_HEADER_BYTES} bytes`), false);
    return;
  }

  let adm: Admission;
  try {
    adm = ctx.frontDoor({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, overloaded });
  } catch (e) {
    console.error('pinstream: front door failed', e);
    drain(req);
    send(res, plainError(500, 'InternalFailure', 'Internal server error'), true);
    return;
  }

  const declared = contentLength(req.headers);
  // HTTP/1.1: no Content-Length and no Transfer-Encoding means no body; HTTP/2: END_STREAM on HEADERS.
  const hasBody = isH2 ? !(req as http2.Http2ServerRequest).stream.endAfterHeaders : declared !== undefined ? declared > 0 : req.headers['transfer-encoding'] !== undefined;
  const drainable = declared !== undefined && declared <= REFUSED_BODY_DRAIN_BYTES;
  /** Answers without (the rest of) the body: drains a short declared body, else closes after answering. */
  const answerEarly = (out: ApiResponse | Promise<ApiResponse>, closeConnection = false) => {
    drain(req);
    // An HTTP/2 stream is left to finish its body (thrown away) or time out; HTTP/1.1 closes unless
    // the rest is short enough to read (a client that asked to continue will not send it at all).
    const close = closeConnection || (hasBody && (!drainable || expectContinue));
    if (hasBody) stopStream(req, res, ctx.limits.bodyTimeoutMs, (t) => (timer = t));
    Promise.resolve(out).then(
      (r) => send(res, r, close),
      (err) => {
        console.error('pinstream: unhandled error in request handler', err);
        send(res, plainError(500, 'InternalFailure', 'Internal server error'), true);
      },
    );
  };

  if (adm.response) return answerEarly(adm.response, adm.closeConnection);
  if (declared !== undefined && declared > adm.maxBodyBytes) {
    return answerEarly(adm.refuse({ reason: 'too-large', limit: adm.maxBodyBytes, declared }));
  }
  if (expectContinue) (res as http.ServerResponse).writeContinue();

  const body = new BodyCollector(declared);
  let reading = true;
  /** Stops reading: answers now, closes the connection (HTTP/1.1) or lets the stream run out. */
  const giveUp = (r: BodyRefusal) => {
    reading = false;
    body.clear();
    release();
    clearTimeout(timer);
    drain(req);
    send(res, adm.refuse(r), true);
    if (!req.readableEnded) stopStream(req, res, ctx.limits.bodyTimeoutMs, (t) => (timer = t));
  };
  timer = setTimeout(() => giveUp({ reason: 'timeout', timeoutMs: ctx.limits.bodyTimeoutMs }), ctx.limits.bodyTimeoutMs);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    if (!reading) return;
    if (body.size + chunk.length > adm.maxBodyBytes) return giveUp({ reason: 'too-large', limit: adm.maxBodyBytes });
    if (!ctx.budget.take(chunk.length)) return giveUp({ reason: 'busy', budget: ctx.budget.limit });
    charged += chunk.length;
    body.append(chunk);
  });
  req.on('end', () => {
    if (!reading) return;
    reading = false;
    clearTimeout(timer);
    adm.finish(body.take(), release).then(
      (out) => {
        release();
        send(res, out, false);
      },
      (err) => {
        release();
        console.error('pinstream: unhandled error in request handler', err);
        send(res, plainError(500, 'InternalFailure', 'Internal server error'), true);
      },
    );
  });
}

/** Body blocks start at this size and double up to BODY_BLOCK_MAX_BYTES. */
const BODY_BLOCK_MIN_BYTES = 16 * 1024;
const BODY_BLOCK_MAX_BYTES = 1024 * 1024;

/**
 * Holds a body as it arrives, copied into blocks of its own. A chunk as read is often a view into a
 * larger buffer (HTTP/2 hands out slices of its socket reads, shared between streams), and keeping
 * the view keeps all of it: holding views made memory three times the bytes counted. Blocks grow
 * geometrically (and stop at the declared length), so the copy costs one memcpy and the unused
 * tail of the last block is never written, hence never resident.
 */
class BodyCollector {
  private blocks: Buffer[] = [];
  private current: Buffer | undefined;
  private used = 0;
  size = 0;

  constructor(private readonly declared: number | undefined) {}

  append(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (!this.current || this.used === this.current.length) this.grow(chunk.length - at);
      const n = chunk.copy(this.current!, this.used, at);
      this.used += n;
      at += n;
    }
    this.size += chunk.length;
  }

  private grow(need: number): void {
    if (this.current) this.blocks.push(this.current);
    const next = Math.min(BODY_BLOCK_MAX_BYTES, Math.max(BODY_BLOCK_MIN_BYTES, this.size));
    const left = this.declared !== undefined && this.declared > this.size ? this.declared - this.size : Math.max(next, need);
    this.current = Buffer.allocUnsafeSlow(Math.min(next, left) || need);
    this.used = 0;
  }

  take(): Buffer {
    const last = this.current ? this.current.subarray(0, this.used) : Buffer.alloc(0);
    const out = this.blocks.length === 0 ? last : Buffer.concat([...this.blocks, last], this.size);
    this.clear();
    return out;
  }

  clear(): void {
    this.blocks = [];
    this.current = undefined;
    this.used = 0;
  }
}

/** Reads and throws away whatever body is left (bounded by the caller's deadline). */
function drain(req: CompatRequest): void {
  req.removeAllListeners('data');
  req.on('data', () => {});
  req.resume();
}

/**
 * After an early answer on HTTP/2, the rest of the body is not wanted: once the answer is out the
 * stream is reset with NO_ERROR, which RFC 9113 §8.1 provides for exactly this ("a complete
 * response prior to the client sending an entire request"); the client stops sending. Should the
 * answer not get out (a peer that does not read), the stream is cancelled after `ms`.
 */
function stopStream(req: CompatRequest, res: CompatResponse, ms: number, setTimer: (t: NodeJS.Timeout) => void): void {
  if (!('stream' in req)) return;
  const stream = req.stream;
  res.once('finish', () => {
    if (!stream.destroyed && !req.readableEnded) stream.close(http2.constants.NGHTTP2_NO_ERROR);
  });
  const t = setTimeout(() => {
    if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
  }, ms);
  t.unref();
  setTimer(t);
}

function contentLength(headers: http.IncomingHttpHeaders): number | undefined {
  const v = headers['content-length'];
  if (v === undefined || !/^\d{1,16}$/.test(v)) return undefined;
  return Number(v);
}

/** HPACK's accounting (RFC 7541 §4.1): name + value + 32 per field. */
function headerListBytes(raw: string[]): number {
  let n = 0;
  for (const s of raw) n += s.length;
  return n + (raw.length / 2) * 32;
}

/**
 * An error before any protocol is known (bad request line, headers too large or too slow): the
 * status, x-amzn-ErrorType and a JSON body that the restJson1 and awsJson parsers of the SDKs read.
 */
function plainError(status: number, type: string, message: string): ApiResponse {
  return {
    status,
    headers: { 'content-type': 'application/json', 'x-amzn-errortype': type },
    body: JSON.stringify({ __type: type, message }),
  };
}

/** HTTP/1.1 errors raised by Node's parser or its timeouts, before a request exists. */
function clientError(err: NodeJS.ErrnoException, socket: net.Socket): void {
  const inFlight = (socket as net.Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, type, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'RequestTimeoutException', 'The request did not arrive in time']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'RequestHeaderFieldsTooLarge', `Request line and headers exceed ${MAX_HEADER_BYTES} bytes`]
        : [400, 'BadRequestException', 'Malformed HTTP request'];
  socket.end(rawAnswer(plainError(status, type, message)));
  socket.destroySoon?.();
}

/** A plainError as HTTP/1.1 bytes, with `connection: close`, for sockets no parser owns. */
function rawAnswer(out: ApiResponse): string {
  const body = out.body as string;
  let head = `HTTP/1.1 ${out.status} ${http.STATUS_CODES[out.status]}\r\n`;
  for (const [k, v] of Object.entries(out.headers!)) head += `${k}: ${v}\r\n`;
  head += `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n`;
  return head + body;
}

function validStatus(s: unknown): s is number {
  return typeof s === 'number' && Number.isInteger(s) && s >= 200 && s <= 599;
}

function send(res: CompatResponse, out: ApiResponse, closeAfter: boolean): void {
  try {
    if (!out || typeof out !== 'object' || !validStatus(out.status)) {
      // A handler answered something that is not a response: a bug, answered without detail.
      console.error('pinstream: a handler returned an invalid response', out);
      out = plainError(500, 'InternalFailure', 'Internal server error');
      closeAfter = true;
    }
    if (out.body instanceof Readable) return sendStream(res, out, out.body);
    if (res.headersSent || res.writableEnded || res.destroyed) return;
    const headers: Record<string, string> = { ...out.headers };
    const body = out.body ?? '';
    headers['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.length);
    if (closeAfter && res instanceof http.ServerResponse) headers['connection'] = 'close';
    (res as http.ServerResponse).writeHead(out.status, headers);
    (res as http.ServerResponse).end(body);
  } catch (e) {
    // Never let one response take the process down (invalid header values and the like).
    console.error('pinstream: sending a response failed', e);
    res.destroy();
  }
}

/**
 * Streams a body with backpressure and no content-length (HTTP/1.1 goes chunked, HTTP/2 just sends
 * DATA frames). When the response closes for any reason (client reset or disconnect, normal end)
 * the source is destroyed: that is the producer's signal to stop and release what it holds.
 */
function sendStream(res: CompatResponse, out: ApiResponse, body: Readable): void {
  // Both compat response classes share this surface; the HTTP/1.1 type is the one to name.
  const w = res as http.ServerResponse;
  if (w.writableEnded || w.destroyed) {
    body.destroy();
    return;
  }
  w.on('close', () => body.destroy());
  w.writeHead(out.status, { ...out.headers });
  body.on('data', (chunk: Buffer) => {
    if (!w.write(chunk)) body.pause();
  });
  w.on('drain', () => body.resume());
  body.on('end', () => w.end());
  body.on('error', (err) => {
    // Producers report expected failures inside the stream; an error here is a bug. Resetting the
    // stream (not ending it cleanly) tells the client the body is incomplete.
    console.error('pinstream: streaming response failed', err);
    w.destroy();
  });
}
