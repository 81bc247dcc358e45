// The authorization boundary every API calls before acting: "may this caller do ACTION on
// RESOURCE?". The caller is the IAM user owning the request's access key; the bootstrap admin may
// do everything (like an account's root user), other users exactly what their inline policies
// allow. A refusal is one protocol-neutral error (AccessDeniedException, 403) that each protocol
// renders in its own shape.

import type { ApiRequest } from '../http/request.js';
import { ApiError } from '../http/errors.js';
import { evaluate, type ConditionContext } from './policy.js';
import { ADMIN_USER, type IamStore } from './store.js';

export interface Authorizer {
  /** Throws AccessDeniedException when the caller may not act. */
  authorize(req: ApiRequest, action: string, resourceArn: string, context?: ConditionContext): void;
  /** Non-throwing form, for listing only what a caller may see. */
  allowed(req: ApiRequest, action: string, resourceArn: string): boolean;
}

export class PolicyAuthorizer implements Authorizer {
  constructor(private store: IamStore) {}

  allowed(req: ApiRequest, action: string, resourceArn: string, context?: ConditionContext): boolean {
    return this.decide(req, action, resourceArn, context).decision === 'Allow';
  }

  authorize(req: ApiRequest, action: string, resourceArn: string, context?: ConditionContext): void {
    const { decision, who } = this.decide(req, action, resourceArn, context);
    if (decision === 'Allow') return;
    const why =
      decision === 'ExplicitDeny'
        ? `with an explicit deny in an identity-based policy`
        : `because no identity-based policy allows the ${action} action`;
    throw new ApiError('AccessDeniedException', 403, `User: ${who} is not authorized to perform: ${action} on resource: ${resourceArn} ${why}`);
  }

  private decide(req: ApiRequest, action: string, resource: string, context?: ConditionContext) {
    const owner = req.caller ? this.store.keyOwner(req.caller.accessKeyId) : undefined;
    if (!owner) return { decision: 'ImplicitDeny' as const, who: 'anonymous' };
    const who = owner.arn;
    if (owner.kind === 'user' && owner.user === ADMIN_USER) return { decision: 'Allow' as const, who };
    const ctx: ConditionContext = {
      'aws:username': owner.user,
      'aws:PrincipalArn': who,
      'aws:PrincipalAccount': this.store.accountId,
      'aws:SecureTransport': 'false',
      ...context,
    };
    return { decision: evaluate(this.store.policies(owner.kind, owner.user), { action, resource, context: ctx }), who };
  }
}
