// restJson1 (AWS's REST-JSON protocol, used by Pinpoint): path routing with {labels}, JSON bodies,
// and the error shape the AWS SDKs parse: status + x-amzn-ErrorType + {"Message","RequestID"}.

import { ApiError, badRequest, methodNotAllowed, notFound, payloadTooLarge } from './errors.js';
import { nestingExceeds, nestingMessage } from '../nesting.js';
import type { ApiRequest, ApiResponse } from './request.js';

export type RouteHandler = (req: ApiRequest, params: Record<string, string>) => Promise<ApiResponse> | ApiResponse;

export interface Route {
  method: string;
  /** e.g. '/v1/apps/{application-id}/endpoints/{endpoint-id}'; a final '{name+}' takes the rest. */
  path: string;
  handler: RouteHandler;
  /** The longest body the operation accepts, when it differs from the router's default. */
  maxBodyBytes?: number;
}

interface CompiledRoute extends Route {
  segments: string[];
  greedy: boolean;
}

export class RestJsonRouter {
  private routes: CompiledRoute[];
  /** `defaultMaxBodyBytes`: the longest body of routes that name none (and of unknown paths). */
  constructor(
    routes: Route[],
    private readonly defaultMaxBodyBytes: number,
  ) {
    this.routes = routes.map((r) => {
      const segments = r.path.split('/').slice(1);
      return { ...r, segments, greedy: segments[segments.length - 1]?.endsWith('+}') ?? false };
    });
  }

  /** The longest body the request's route accepts, from its method and path alone. */
  maxBodyBytes(req: ApiRequest): number {
    const found = this.find(req);
    return found.route?.maxBodyBytes ?? this.defaultMaxBodyBytes;
  }

  async handle(req: ApiRequest): Promise<ApiResponse> {
    const { route, params, pathMatched } = this.find(req);
    if (route) return route.handler(req, params!);
    if (pathMatched) throw methodNotAllowed(`Method ${req.method} is not allowed on ${req.rawPath}`);
    throw notFound(`Unknown resource path ${req.rawPath}`);
  }

  private find(req: ApiRequest): { route?: CompiledRoute; params?: Record<string, string>; pathMatched: boolean } {
    const parts = req.rawPath.split('/').slice(1);
    if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
    let pathMatched = false;
    for (const r of this.routes) {
      const params = match(r, parts);
      if (!params) continue;
      pathMatched = true;
      if (r.method === req.method) return { route: r, params, pathMatched };
    }
    return { pathMatched };
  }
}

function match(r: CompiledRoute, parts: string[]): Record<string, string> | undefined {
  const n = r.segments.length;
  if (r.greedy ? parts.length < n : parts.length !== n) return undefined;
  // Path labels are client text: a null prototype keeps `__proto__` an ordinary label value.
  const params: Record<string, string> = Object.create(null);
  for (let i = 0; i < n; i++) {
    const seg = r.segments[i];
    if (seg.startsWith('{')) {
      const greedyHere = i === n - 1 && r.greedy;
      const raw = greedyHere ? parts.slice(i).join('/') : parts[i];
      if (raw === '') return undefined;
      let value: string;
      try {
        value = decodeURIComponent(raw);
      } catch {
        return undefined;
      }
      params[seg.slice(1, greedyHere ? -2 : -1)] = value;
    } else if (seg !== parts[i]) {
      return undefined;
    }
  }
  return params;
}

export function restJsonError(err: ApiError, req: ApiRequest): ApiResponse {
  // Pinpoint models authorization failures as its own ForbiddenException (403).
  const code = err.code === 'AccessDeniedException' ? 'ForbiddenException' : err.code;
  return {
    status: err.status,
    headers: { 'content-type': 'application/json', 'x-amzn-errortype': code },
    body: JSON.stringify({ Message: err.message, RequestID: req.requestId }),
  };
}

/** Parses a JSON object body; an empty body is {}. */
export function jsonBody(req: ApiRequest, maxBytes: number, what = 'Request body'): Record<string, unknown> {
  if (req.body.length > maxBytes) {
    throw payloadTooLarge(`${what} is ${req.body.length} bytes; the maximum is ${maxBytes} bytes`);
  }
  if (req.body.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(req.body.toString('utf8'));
  } catch (e) {
    throw badRequest(`${what} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badRequest(`${what} must be a JSON object`);
  if (nestingExceeds(v)) throw badRequest(nestingMessage(what));
  return v as Record<string, unknown>;
}
