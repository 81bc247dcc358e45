// Operator endpoints, outside every AWS protocol: `GET /health` (open, for load balancers and
// supervisors: it must never say anything about tenants) and `GET /metrics` (Prometheus text,
// which names apps and destinations, so it needs the configured bearer token; Prometheus sends one
// with `authorization: {credentials: …}` in a scrape config). Both are answered even when the
// server is at its connection limit (see server.ts).

import { createHash, timingSafeEqual } from 'node:crypto';
import { json, type ApiRequest, type ApiResponse } from './request.js';

export interface OperatorOptions {
  /** PINSTREAM_METRICS_TOKEN; unset = /metrics is refused to everyone. */
  metricsToken?: string;
  /** Prometheus exposition text. */
  metrics: () => string;
  /** The /health document: process-wide facts only, no app ids, ARNs or other tenant names. */
  health: () => object;
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4';

export function operatorRoutes(o: OperatorOptions): (req: ApiRequest) => ApiResponse | undefined {
  const expected = o.metricsToken === undefined ? undefined : digest(o.metricsToken);
  return (req) => {
    if (req.method !== 'GET') return undefined;
    if (req.rawPath === '/health') return json(200, o.health());
    if (req.rawPath !== '/metrics') return undefined;
    const presented = bearer(req.headers.authorization);
    if (expected === undefined || presented === undefined || !timingSafeEqual(digest(presented), expected)) {
      return {
        status: 401,
        // The front door's own error shape (as for an unknown path): x-amzn-ErrorType and Message.
        headers: { 'content-type': 'application/json', 'x-amzn-errortype': 'UnauthorizedException', 'www-authenticate': 'Bearer realm="pinstream-metrics"' },
        body: JSON.stringify({
          Message:
            expected === undefined
              ? 'Metrics are not enabled: set PINSTREAM_METRICS_TOKEN and send it as a bearer token'
              : 'Metrics need the bearer token configured in PINSTREAM_METRICS_TOKEN',
        }),
      };
    }
    return { status: 200, headers: { 'content-type': METRICS_CONTENT_TYPE }, body: o.metrics() };
  };
}

/** The front door's own gauges, appended to /metrics. */
export function httpMetrics(s: { connections: number; busyConnections: number; unverifiedBodyBytes: number }): string {
  const gauge = (name: string, help: string, v: number) => `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name} ${v}\n`;
  return (
    gauge('pinstream_http_connections', 'Open client connections (HTTP/1.1, HTTP/2, or not yet known).', s.connections) +
    gauge('pinstream_http_busy_connections', 'Connections with a request or stream in flight.', s.busyConnections) +
    gauge('pinstream_http_unverified_body_bytes', 'Request-body bytes held before their signature is verified.', s.unverifiedBodyBytes)
  );
}

function bearer(v: string | undefined): string | undefined {
  const m = v === undefined ? null : /^Bearer +(\S+) *$/i.exec(v);
  return m ? m[1] : undefined;
}

/** Compared as digests: equal lengths for timingSafeEqual, and nothing learnt from timing. */
function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
