// The one listening socket. HTTP/1.1 and cleartext HTTP/2 (prior knowledge, as the AWS SDK v3
// Kinesis client and the Java SDK v2 speak it) share the port: the first bytes of each connection
// decide which parser gets the socket. Bodies are read whole (capped) and handed to the dispatcher.
// Responses are whole bodies, or a Readable streamed as produced (event streams).

import net from 'node:net';
import http from 'node:http';
import http2 from 'node:http2';
import { Readable } from 'node:stream';
import type { ApiResponse } from './request.js';

/** Largest request body read at all; protocol limits below it are checked by each handler. */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export interface RawRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** True when the body exceeded MAX_BODY_BYTES and was cut. */
  tooLarge: boolean;
}

export type RawHandler = (req: RawRequest) => Promise<ApiResponse>;

export interface RunningServer {
  port: number;
  url: string;
  close(): Promise<void>;
}

type CompatRequest = http.IncomingMessage | http2.Http2ServerRequest;
type CompatResponse = http.ServerResponse | http2.Http2ServerResponse;

export async function listen(handler: RawHandler, host: string, port: number): Promise<RunningServer> {
  const onRequest = (req: CompatRequest, res: CompatResponse) => serve(handler, req, res);
  const h1 = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 120_000 }, onRequest);
  const h2 = http2.createServer({ maxSessionMemory: 64 }, onRequest);
  const sockets = new Set<net.Socket>();
  const h2Sessions = new Set<http2.ServerHttp2Session>();
  h2.on('session', (s) => {
    h2Sessions.add(s);
    s.on('close', () => h2Sessions.delete(s));
  });

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.unshift(first);
      const n = Math.min(first.length, H2_PREFACE.length);
      const isH2 = first.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      // HTTP/2 replays the unshifted bytes into its native session itself; resuming the socket
      // would hand them to a 'data' listener no one has. The HTTP/1.1 parser needs the resume.
      (isH2 ? h2 : h1).emit('connection', socket);
      if (!isH2) socket.resume();
    });
    socket.on('error', () => socket.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actualPort = (server.address() as net.AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    port: actualPort,
    url: `http://${shownHost}:${actualPort}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of h2Sessions) s.close();
        h1.closeIdleConnections();
        // Give in-flight responses a moment, then cut whatever is left (clients retry).
        setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, 200).unref();
      }),
  };
}

function serve(handler: RawHandler, req: CompatRequest, res: CompatResponse): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  req.on('data', (chunk: Buffer) => {
    if (tooLarge) return;
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      tooLarge = true;
      chunks.length = 0;
      return;
    }
    chunks.push(chunk);
  });
  req.on('error', () => {});
  req.on('end', () => {
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
    handler({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body, tooLarge }).then(
      (out) => send(res, out, tooLarge),
      (err) => {
        // The dispatcher maps every error; reaching here is a bug, answered without detail.
        console.error('pinstream: unhandled error in request handler', err);
        send(res, { status: 500, body: '' }, true);
      },
    );
  });
}

function send(res: CompatResponse, out: ApiResponse, closeAfter: boolean): void {
  if (out.body instanceof Readable) return sendStream(res, out, out.body);
  if (res.writableEnded || res.destroyed) return;
  const headers: Record<string, string> = { ...out.headers };
  const body = out.body ?? '';
  headers['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.length);
  if (closeAfter && res instanceof http.ServerResponse) headers['connection'] = 'close';
  (res as http.ServerResponse).writeHead(out.status, headers);
  (res as http.ServerResponse).end(body);
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
