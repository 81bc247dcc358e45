// restJson1 (AWS's REST-JSON protocol, used by Pinpoint): path routing with {labels}, JSON bodies,
// and the error shape the AWS SDKs parse: status + x-amzn-ErrorType + {"Message","RequestID"}.
// The router also knows every operation of the service's AWS model (method and requestUri), so a
// request for one Pinstream does not implement is told so by name instead of "no such path".

import { ApiError, AuthError, badRequest, methodNotAllowed, notFound, payloadTooLarge, unsupportedOperation } from './errors.js';
import type { OperationModel } from '../models/types.js';
import { nestingExceeds, nestingMessage } from '../nesting.js';
import type { ApiRequest, ApiResponse } from './request.js';
import { parseJsonBytes } from './json-bytes.js';

export type RouteHandler = (req: ApiRequest, params: Record<string, string>) => Promise<ApiResponse> | ApiResponse;

export interface Route {
  method: string;
  /** e.g. '/v1/apps/{application-id}/endpoints/{endpoint-id}'; a final '{name+}' takes the rest. */
  path: string;
  handler: RouteHandler;
  /** The longest body the operation accepts, when it differs from the router's default. */
  maxBodyBytes?: number;
}

interface Template {
  segments: string[];
  greedy: boolean;
}

interface CompiledRoute extends Route, Template {}

interface CompiledOperation extends Template {
  op: OperationModel;
}

/** The service's AWS model, for the operations no route implements. */
export interface RestJsonModel {
  /** The name used in messages, e.g. 'Pinpoint'. */
  service: string;
  operations: Record<string, OperationModel>;
}

const compile = (path: string): Template => {
  const segments = path.split('/').slice(1);
  return { segments, greedy: segments[segments.length - 1]?.endsWith('+}') ?? false };
};

/** `/v1/apps/{application-id}` and `/v1/tags/{resource-arn+}` → one comparable shape, labels unnamed. */
const shapeOf = (method: string, path: string) => `${method} ${path.replace(/\{[^}]*\}/g, '{}')}`;

/**
 * The model's operations that no route implements (same method, same path shape; a route's greedy
 * label stands for the model's plain one), in model order. `routes` as `METHOD /path` strings.
 */
export function unimplementedOperations(routes: readonly string[], operations: Record<string, OperationModel>): OperationModel[] {
  const implemented = new Set(routes.map((r) => {
    const [method, path] = r.split(' ');
    return shapeOf(method, path);
  }));
  return Object.values(operations).filter((op) => !implemented.has(shapeOf(op.http.method, op.http.requestUri)));
}

export class RestJsonRouter {
  private routes: CompiledRoute[];
  private unimplemented: CompiledOperation[];
  /**
   * `defaultMaxBodyBytes`: the longest body of routes that name none (and of unknown paths).
   * `model`: the service's AWS operations; those without a route answer as unsupported.
   */
  constructor(
    routes: Route[],
    private readonly defaultMaxBodyBytes: number,
    private readonly model?: RestJsonModel,
  ) {
    this.routes = routes.map((r) => ({ ...r, ...compile(r.path) }));
    const ops = model ? unimplementedOperations(routes.map((r) => `${r.method} ${r.path}`), model.operations) : [];
    this.unimplemented = ops.map((op) => ({ op, ...compile(op.http.requestUri) }));
  }

  /** The longest body the request's route accepts, from its method and path alone. */
  maxBodyBytes(req: ApiRequest): number {
    const found = this.find(req);
    return found.route?.maxBodyBytes ?? this.defaultMaxBodyBytes;
  }

  async handle(req: ApiRequest): Promise<ApiResponse> {
    const { route, params, pathMatched } = this.find(req);
    if (route) return route.handler(req, params!);
    const parts = pathParts(req.rawPath);
    let best: CompiledOperation | undefined;
    let modelPathMatched = false;
    for (const o of this.unimplemented) {
      if (!match(o, parts)) continue;
      modelPathMatched = true;
      if (o.op.http.method === req.method && (!best || moreSpecific(o, best))) best = o;
    }
    if (best) throw unsupportedOperation(this.model!.service, best.op.name, best.op.http.method, best.op.http.requestUri);
    if (pathMatched || modelPathMatched) throw methodNotAllowed(`Method ${req.method} is not allowed on ${req.rawPath}`);
    throw notFound(`Unknown resource path ${req.rawPath}`);
  }

  private find(req: ApiRequest): { route?: CompiledRoute; params?: Record<string, string>; pathMatched: boolean } {
    const parts = pathParts(req.rawPath);
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

function pathParts(rawPath: string): string[] {
  const parts = rawPath.split('/').slice(1);
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/**
 * API Gateway's precedence when two templates match: a literal segment beats a label at the first
 * place they differ (`/jobs/export` before `/jobs/{job-id}`).
 */
function moreSpecific(a: Template, b: Template): boolean {
  for (let i = 0; i < Math.min(a.segments.length, b.segments.length); i++) {
    const al = !a.segments[i].startsWith('{');
    const bl = !b.segments[i].startsWith('{');
    if (al !== bl) return al;
  }
  return false;
}

function match(r: Template, parts: string[]): Record<string, string> | undefined {
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
  if (err instanceof AuthError) {
    // Pinpoint sits behind API Gateway, whose authentication failures are all 403 with a body of
    // just {"message"} (API Gateway's gateway-response shape, not Pinpoint's MessageBody).
    return {
      status: 403,
      headers: { 'content-type': 'application/json', 'x-amzn-errortype': err.code },
      body: JSON.stringify({ message: err.message }),
    };
  }
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
  return parseJsonObject(req.body, maxBytes, what);
}

/**
 * jsonBody on the bytes alone, so a worker thread can run it (src/pinpoint/parallel/): the same
 * checks, in the same order, with the same messages.
 */
export function parseJsonObject(body: Uint8Array, maxBytes: number, what = 'Request body'): Record<string, unknown> {
  if (body.length > maxBytes) {
    throw payloadTooLarge(`${what} is ${body.length} bytes; the maximum is ${maxBytes} bytes`);
  }
  if (body.length === 0) return {};
  let v: unknown;
  try {
    v = parseJsonBytes(Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength));
  } catch (e) {
    throw badRequest(`${what} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badRequest(`${what} must be a JSON object`);
  if (nestingExceeds(v)) throw badRequest(nestingMessage(what));
  return v as Record<string, unknown>;
}
