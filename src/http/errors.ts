// Typed API errors. Handlers throw these (or return per-item results); each protocol adapter turns
// them into its own wire shape in exactly one place (restjson.ts, awsjson.ts, query.ts).

export class ApiError extends Error {
  constructor(
    /** The AWS error type, e.g. BadRequestException; becomes x-amzn-ErrorType / __type. */
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const badRequest = (message: string) => new ApiError('BadRequestException', 400, message);
export const notFound = (message: string) => new ApiError('NotFoundException', 404, message);
export const forbidden = (message: string) => new ApiError('ForbiddenException', 403, message);
export const methodNotAllowed = (message: string) => new ApiError('MethodNotAllowedException', 405, message);
export const payloadTooLarge = (message: string) => new ApiError('PayloadTooLargeException', 413, message);
export const internalError = (message: string) => new ApiError('InternalServerErrorException', 500, message);

/**
 * An authentication failure (SigV4), raised before any operation runs. It keeps the type names real
 * AWS front doors use, so SDKs react the same way (clock-skew correction, no retry); the status and
 * body differ per protocol and are set by each protocol's error(): 400 for the JSON RPC services,
 * 403 from Pinpoint's API-Gateway front, 403 (400 for IncompleteSignature) for Query services.
 */
export class AuthError extends ApiError {}

export const authError = (code: string, message: string) => new AuthError(code, 403, message);

/**
 * A Pinpoint operation in AWS's model that Pinstream does not implement. MethodNotAllowedException
 * (405) is one of the operation's modeled errors, so SDKs raise it typed and do not retry it, and
 * Pinstream raises it for nothing else but a wrong method: code that catches NotFoundException
 * ("no such resource"), BadRequestException ("fix the input") or ForbiddenException ("not
 * allowed") is not misled. README "Operations Pinstream does not support" explains the choice.
 */
export const unsupportedOperation = (service: string, operation: string, method: string, requestUri: string) =>
  methodNotAllowed(`Pinstream does not support the ${service} operation ${operation} (${method} ${requestUri}); see "Operations Pinstream does not support" in its README`);
