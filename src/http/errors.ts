// Typed API errors. Handlers throw these (or return per-item results); each protocol adapter turns
// them into its own wire shape in exactly one place (restjson.ts, awsjson.ts).

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

/** Authentication failures keep the type names real AWS front doors use, so SDKs react the same way. */
export const authError = (code: string, message: string) => new ApiError(code, 403, message);
