// AWS Query protocol (IAM, STS): form-encoded `Action=…&Version=…` requests, XML responses
// `<OpResponse><OpResult>…</OpResult><ResponseMetadata/></OpResponse>`, and XML errors
// `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.
// The service is chosen by the Version parameter; errors are mapped to XML here only.

import type { Protocol } from './dispatch.js';
import { ApiError } from './errors.js';
import type { ApiRequest, ApiResponse } from './request.js';

export type QueryParams = Map<string, string>;
export type QueryAction = (params: QueryParams, req: ApiRequest) => unknown;

export interface QueryService {
  version: string;
  xmlNamespace: string;
  actions: Record<string, QueryAction>;
}

/** A Query-protocol error with the service's own code (e.g. NoSuchEntity) and status. */
export class QueryError extends ApiError {}

export function queryProtocol(signingServices: readonly string[], services: QueryService[]): Protocol {
  const byVersion = new Map(services.map((s) => [s.version, s]));
  const pick = (params: QueryParams) => byVersion.get(params.get('Version') ?? '') ?? services[0];
  return {
    signingServices,
    async handle(req) {
      const params = new URLSearchParams(req.body.toString('utf8'));
      const map: QueryParams = new Map(params);
      for (const [k, v] of req.query) if (!map.has(k)) map.set(k, v);
      const action = map.get('Action') ?? '';
      const service = pick(map);
      const fn = Object.hasOwn(service.actions, action) ? service.actions[action] : undefined;
      if (!fn) throw new QueryError('InvalidAction', 400, `Could not find operation ${action || '(no Action parameter)'} for version ${map.get('Version') ?? ''}`);
      const result = await fn(map, req);
      const inner = result === undefined ? '' : `<${action}Result>${toXml(result)}</${action}Result>`;
      return xml(
        200,
        `<${action}Response xmlns="${service.xmlNamespace}">${inner}<ResponseMetadata><RequestId>${req.requestId}</RequestId></ResponseMetadata></${action}Response>`,
      );
    },
    error(err, req) {
      const service = pick(new Map(new URLSearchParams(req.body.toString('utf8'))));
      const type = err.status >= 500 ? 'Receiver' : 'Sender';
      return xml(
        err.status,
        `<ErrorResponse xmlns="${service.xmlNamespace}"><Error><Type>${type}</Type><Code>${esc(queryCode(err.code))}</Code>` +
          `<Message>${esc(err.message)}</Message></Error><RequestId>${req.requestId}</RequestId></ErrorResponse>`,
      );
    },
  };
}

/** Protocol-neutral codes raised outside the IAM handlers, in the Query protocol's spelling. */
function queryCode(code: string): string {
  if (code === 'AccessDeniedException') return 'AccessDenied';
  if (code === 'BadRequestException') return 'InvalidInput';
  if (code === 'InternalServerErrorException') return 'ServiceFailure';
  return code;
}

function xml(status: number, body: string): ApiResponse {
  return { status, headers: { 'content-type': 'text/xml' }, body: `<?xml version="1.0" encoding="UTF-8"?>\n${body}` };
}

/** Objects become elements, arrays become <member> lists, undefined members are left out. */
export function toXml(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.map((x) => `<member>${toXml(x)}</member>`).join('');
  if (v instanceof Date) return v.toISOString();
  if (typeof v === 'object') {
    let out = '';
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out += `<${k}>${toXml(x)}</${k}>`;
    return out;
  }
  return esc(String(v));
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}
