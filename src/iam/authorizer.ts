// The authorization boundary every API calls before acting: "may this caller do ACTION on
// RESOURCE?". The caller is the IAM user owning the request's access key; the bootstrap admin may
// do everything (like an account's root user), other users exactly what their inline policies
// allow. A service acting as a role (a role session) may do what the role's policies allow, and
// only while the role's trust policy still lets that service assume it for the same source. A
// resource's own resource-based policy (a Kinesis stream's or consumer's, from the sources services
// register with addResourcePolicies) is evaluated with the identity policies: either may allow,
// an explicit Deny in either denies. A
// refusal is one protocol-neutral error (AccessDeniedException, 403) that each protocol renders
// in its own shape. Naming a role for a service to use needs iam:PassRole on it (passRole).

import type { ApiRequest } from '../http/request.js';
import { ApiError } from '../http/errors.js';
import { evaluate, evaluateResourcePolicy, type ConditionContext, type Decision, type PolicyDocument } from './policy.js';
import { trustProblem } from './roles.js';
import { ADMIN_USER, type IamStore } from './store.js';

export interface Authorizer {
  /** Throws AccessDeniedException when the caller may not act. */
  authorize(req: ApiRequest, action: string, resourceArn: string, context?: ConditionContext): void;
  /** Non-throwing form, for listing only what a caller may see. */
  allowed(req: ApiRequest, action: string, resourceArn: string): boolean;
  /**
   * iam:PassRole on `roleArn` with iam:PassedToService `service`, as AWS checks it when an API
   * call names a role a service will assume (PutEventStream, CreateDeliveryStream, ...).
   */
  passRole(req: ApiRequest, roleArn: string, service: string): void;
}

/** The resource-based policy attached to a resource ARN, if that source owns it and it has one. */
export type ResourcePolicySource = (resourceArn: string) => PolicyDocument | undefined;

export class PolicyAuthorizer implements Authorizer {
  private resourcePolicySources: ResourcePolicySource[] = [];

  constructor(private store: IamStore) {}

  /** A service's resource-based policies, evaluated for every request on its resources. */
  addResourcePolicies(source: ResourcePolicySource): void {
    this.resourcePolicySources.push(source);
  }

  allowed(req: ApiRequest, action: string, resourceArn: string, context?: ConditionContext): boolean {
    return this.decide(req, action, resourceArn, context).decision === 'Allow';
  }

  authorize(req: ApiRequest, action: string, resourceArn: string, context?: ConditionContext): void {
    const { decision, who, why } = this.decide(req, action, resourceArn, context);
    if (decision === 'Allow') return;
    const because =
      why ?? (decision === 'ExplicitDeny' ? `with an explicit deny in an identity-based policy` : `because no identity-based policy allows the ${action} action`);
    throw new ApiError('AccessDeniedException', 403, `User: ${who} is not authorized to perform: ${action} on resource: ${resourceArn} ${because}`);
  }

  passRole(req: ApiRequest, roleArn: string, service: string): void {
    this.authorize(req, 'iam:PassRole', roleArn, { 'iam:PassedToService': service });
  }

  private decide(req: ApiRequest, action: string, resource: string, context?: ConditionContext): { decision: Decision; who: string; why?: string } {
    const owner = req.caller ? this.store.keyOwner(req.caller.accessKeyId) : undefined;
    if (!owner) return { decision: 'ImplicitDeny', who: 'anonymous' };
    const who = owner.arn;
    if (owner.kind === 'user' && owner.user === ADMIN_USER) return { decision: 'Allow', who };
    if (owner.session) {
      // A session lasts only while the role (still) trusts the service for the same source.
      const role = this.store.getRole(owner.user);
      const problem = role ? trustProblem(this.store, role, owner.session) : `role ${owner.user} no longer exists`;
      if (problem) return { decision: 'ImplicitDeny', who, why: `because the role session is no longer valid: ${problem}` };
    }
    const ctx: ConditionContext = {
      'aws:username': owner.kind === 'user' ? owner.user : undefined,
      'aws:PrincipalArn': owner.kind === 'user' ? who : this.roleArnOf(owner.user),
      'aws:PrincipalAccount': this.store.accountId,
      'aws:SecureTransport': 'false',
      ...(owner.session ? { 'aws:SourceArn': owner.session.sourceArn, 'aws:SourceAccount': owner.session.sourceAccount } : {}),
      ...context,
    };
    const request = { action, resource, context: ctx };
    const identity = evaluate(this.store.policies(owner.kind, owner.user), request);
    const attached = this.resourcePolicyOf(resource);
    if (!attached || identity === 'ExplicitDeny') return { decision: identity, who };
    const callers = owner.kind === 'user' ? [who] : [who, ctx['aws:PrincipalArn'] as string];
    const byResource = evaluateResourcePolicy(attached, request, callers, this.store.accountId);
    if (byResource === 'ExplicitDeny') return { decision: 'ExplicitDeny', who, why: 'with an explicit deny in a resource-based policy' };
    return { decision: identity === 'Allow' || byResource === 'Allow' ? 'Allow' : 'ImplicitDeny', who };
  }

  private resourcePolicyOf(resource: string): PolicyDocument | undefined {
    for (const source of this.resourcePolicySources) {
      const p = source(resource);
      if (p) return p;
    }
    return undefined;
  }

  private roleArnOf(name: string): string {
    const r = this.store.getRole(name);
    return r ? this.store.roleArn(r) : `arn:aws:iam::${this.store.accountId}:role/${name}`;
  }
}
