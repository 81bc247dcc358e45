// The authorization boundary every API calls before acting: "may this caller do ACTION on
// RESOURCE?". Today every access key belongs to the bootstrap admin, which may do everything;
// IAM users and policy evaluation plug in behind this interface without touching the services.

import type { ApiRequest } from '../http/request.js';
import { ApiError } from '../http/errors.js';

export interface Authorizer {
  /** Throws the protocol-neutral AccessDenied ApiError when the caller may not act. */
  authorize(req: ApiRequest, action: string, resourceArn: string): void;
}

/** Admits any caller whose signature verified; correct while only admin keys exist. */
export const adminOnlyAuthorizer: Authorizer = {
  authorize(req, action, resourceArn) {
    if (!req.caller) throw new ApiError('ForbiddenException', 403, `Not authorized to perform ${action} on ${resourceArn}`);
  },
};
