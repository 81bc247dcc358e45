// AWS Query protocol (IAM, STS): form-encoded `Action=…&Version=…` requests, XML responses
// `<OpResponse><OpResult>…</OpResult><ResponseMetadata/></OpResponse>`, and XML errors
// `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.
// The service is chosen by the Version parameter; errors are mapped to XML here only.
// Every action's parameters are decoded into its input structure and validated against the
// service's model before the action runs, in AWS's order: a value that is not of its type
// (InvalidInput), the model's constraints (one ValidationError listing them, Coral's texts), then
// the action (authorization, existence, business rules), which receives the typed input.

import type { Protocol } from './dispatch.js';
import { ApiError, AuthError } from './errors.js';
import type { ApiRequest, ApiResponse } from './request.js';
import type { ServiceModel } from '../models/types.js';
import { ModelValidator } from '../models/validate.js';
import { QueryDecoder } from '../models/query-input.js';

export type QueryParams = Map<string, string>;
/** An action over its validated input (`I`: the generated input type, src/models/generated/<service>-inputs.ts). */
export type QueryAction<I = Record<string, unknown>> = (input: I, req: ApiRequest) => unknown;
/** An action table typed per action by a generated `Inputs` map. */
export type QueryActions<M> = { [K in keyof M]?: QueryAction<M[K]> };

export interface QueryService {
  version: string;
  /** The SigV4 signing name, which tells services apart when the Version is not known yet. */
  signingName: string;
  xmlNamespace: string;
  /** The service's generated model: every action's parameters are decoded and validated against it. */
  model: ServiceModel;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  actions: Record<string, QueryAction<any> | undefined>;
  /** Actions answered without a signature (the model's noAuth); they run without a caller. */
  unsignedActions?: readonly string[];
}

/** A Query-protocol error with the service's own code (e.g. NoSuchEntity) and status. */
export class QueryError extends ApiError {}

/**
 * The longest Query request body: IAM's largest parameter, a policy document of 131,072 characters,
 * is at most 9 bytes a character once UTF-8 and percent-encoded (1.1 MiB), plus the other parameters.
 */
export const MAX_QUERY_REQUEST_BYTES = 2 * 1024 * 1024;

export function queryProtocol(signingServices: readonly string[], services: QueryService[]): Protocol {
  const byVersion = new Map(services.map((s) => [s.version, s]));
  // Action names come from the client: Maps of own entries only, never inherited members.
  const actions = new Map(services.map((s) => [s, new Map(Object.entries(s.actions).filter(([, f]) => f !== undefined))]));
  const decoders = new Map(services.map((s) => [s, new QueryDecoder(new ModelValidator(s.model))]));
  const bySigningName = new Map(services.map((s) => [s.signingName, s]));
  const pick = (params: QueryParams) => byVersion.get(params.get('Version') ?? '') ?? services[0];
  // Errors found before the body is read (authentication) know no Version unless the URL has one;
  // the credential scope then names the service, else the first one answers.
  const pickForError = (req: ApiRequest) => {
    const params = readParams(req);
    return byVersion.get(params.get('Version') ?? '') ?? bySigningName.get(scopeService(req) ?? '') ?? services[0];
  };
  const unsigned = new Map(services.map((s) => [s, new Set(s.unsignedActions ?? [])]));
  const anyUnsigned = services.some((s) => (s.unsignedActions ?? []).length > 0);
  return {
    signingServices,
    // The action is in the body: an unsigned request is read, then run only if it names one of these.
    unsigned: anyUnsigned
      ? {
          head: (req) => req.method === 'POST',
          body: (req) => {
            const params = readParams(req);
            return unsigned.get(pick(params))!.has(params.get('Action') ?? '');
          },
        }
      : undefined,
    maxBodyBytes: () => MAX_QUERY_REQUEST_BYTES,
    async handle(req) {
      const map = readParams(req);
      const action = map.get('Action') ?? '';
      const service = pick(map);
      const fn = actions.get(service)!.get(action);
      if (!fn) throw new QueryError('InvalidAction', 400, `Could not find operation ${action || '(no Action parameter)'} for version ${map.get('Version') ?? ''}`);
      const input = decoders.get(service)!.decode(action, map);
      if (!input.ok) {
        // Coral's deserialization failure has no Query code of its own: IAM's model names
        // InvalidInput ("an invalid or out-of-range value was supplied for an input parameter").
        const code = input.error.code === 'ValidationException' ? 'ValidationError' : 'InvalidInput';
        throw new QueryError(code, 400, input.error.message);
      }
      const result = await fn!(input.value, req);
      const inner = result === undefined ? '' : `<${action}Result>${toXml(result)}</${action}Result>`;
      return xml(
        200,
        `<${action}Response xmlns="${service.xmlNamespace}">${inner}<ResponseMetadata><RequestId>${req.requestId}</RequestId></ResponseMetadata></${action}Response>`,
      );
    },
    error(err, req) {
      const service = pickForError(req);
      const type = err.status >= 500 ? 'Receiver' : 'Sender';
      // A handler's own QueryError keeps its code (STS ExpiredTokenException for a web token).
      const code = err instanceof QueryError ? err.code : queryCode(err.code);
      // AWS's common errors of Query services: IncompleteSignature is 400; MissingAuthenticationToken,
      // InvalidClientTokenId and SignatureDoesNotMatch are 403.
      const status = err instanceof AuthError ? (code === 'IncompleteSignature' ? 400 : 403) : err.status;
      return xml(
        status,
        `<ErrorResponse xmlns="${service.xmlNamespace}"><Error><Type>${type}</Type><Code>${esc(code)}</Code>` +
          `<Message>${esc(err.message)}</Message></Error><RequestId>${req.requestId}</RequestId></ErrorResponse>`,
      );
    },
  };
}

/** Form body parameters, then those of the URL query (both are allowed; the body wins). */
function readParams(req: ApiRequest): QueryParams {
  const map: QueryParams = new Map(new URLSearchParams(req.body.toString('utf8')));
  for (const [k, v] of req.query) if (!map.has(k)) map.set(k, v);
  return map;
}

/** The service of the SigV4 credential scope (AKID/date/region/SERVICE/aws4_request), if any. */
function scopeService(req: ApiRequest): string | undefined {
  const auth = req.headers.authorization;
  const credential = typeof auth === 'string' ? /Credential=([^,\s]+)/.exec(auth)?.[1] : (req.query.get('X-Amz-Credential') ?? undefined);
  return credential?.split('/')[3];
}

/**
 * Protocol-neutral codes raised outside the IAM handlers, in the Query protocol's spelling. IAM and
 * STS name authentication failures differently from the JSON services (InvalidClientTokenId, not
 * UnrecognizedClientException), and `aws iam` users and SDK retry/skew logic look for those names.
 */
const QUERY_CODES: ReadonlyMap<string, string> = new Map([
  ['AccessDeniedException', 'AccessDenied'],
  ['BadRequestException', 'InvalidInput'],
  ['InternalServerErrorException', 'ServiceFailure'],
  ['UnrecognizedClientException', 'InvalidClientTokenId'],
  ['ExpiredTokenException', 'ExpiredToken'],
  ['InvalidSignatureException', 'SignatureDoesNotMatch'],
  ['IncompleteSignatureException', 'IncompleteSignature'],
  ['MissingAuthenticationTokenException', 'MissingAuthenticationToken'],
  // AWS's common errors for every Query API.
  ['ServiceUnavailableException', 'ServiceUnavailable'],
  ['RequestTimeoutException', 'RequestTimeout'],
]);

/** Codes a Query handler raises (QueryError) are already the service's own, e.g. STS's ExpiredTokenException for a web identity token. */
function queryCode(code: string): string {
  return QUERY_CODES.get(code) ?? code;
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

/**
 * Escapes text for XML. Characters XML 1.0 cannot carry at all (most C0 controls, unpaired
 * surrogates), e.g. from a rejected value echoed in a validation message, become U+FFFD: strict
 * parsers such as botocore's reject the whole response otherwise.
 */
function esc(s: string): string {
  return s
    .replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!)
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD');
}
