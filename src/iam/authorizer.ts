// The authorization boundary every API calls before acting: "may this caller do ACTION on
// RESOURCE?". The caller is the principal owning the request's access key: the bootstrap admin may
// do everything (like an account's root user), other users what their policies allow (inline,
// attached managed policies, and those of their groups: IamStore.policies gathers them), roles
// the same with their own. A service acting as a role (a role session) may do what the role's
// policies allow, and only while the role's trust policy still lets that service assume it for the
// same source. STS temporary credentials act as their user or assumed role, narrowed by a session
// policy when one was given (both must allow), and only while that user or role (the same one,
// by id) exists; web-identity sessions (Cognito, OIDC) carry their claims as condition keys. Explicit deny wins everywhere. A refusal is one protocol-neutral error
// (AccessDeniedException, 403) that each protocol renders in its own shape. Naming a role for a
// service to use needs iam:PassRole on it (passRole); assuming a role through STS needs its trust
// policy (assumeRole). A resource's own
// resource-based policy (a Kinesis stream's or consumer's, from the sources services register with
// addResourcePolicies) is evaluated with the identity policies: either may allow, an explicit Deny
// in either denies.

import type { ApiRequest } from '../http/request.js';
import { ApiError } from '../http/errors.js';
import { evaluate, evaluateResourcePolicy, type ConditionContext, type Decision, type PolicyDocument } from './policy.js';
import { trustProblem } from './roles.js';
import { ADMIN_USER, type IamStore, type KeyOwner, type RoleRow, type WebIdentity } from './store.js';

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
  /**
   * sts:AssumeRole of `role` by the caller (STS AssumeRole): the trust policy must name the caller
   * (its ARN, or for a role session its role's ARN), or name the account while the caller's own
   * policies allow sts:AssumeRole on the role. An explicit deny in either refuses.
   */
  assumeRole(req: ApiRequest, role: RoleRow, context?: ConditionContext): void;
}

const denied = (who: string, action: string, resource: string, because: string) =>
  new ApiError('AccessDeniedException', 403, `User: ${who} is not authorized to perform: ${action} on resource: ${resource} ${because}`);

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
    throw denied(who, action, resourceArn, because);
  }

  passRole(req: ApiRequest, roleArn: string, service: string): void {
    this.authorize(req, 'iam:PassRole', roleArn, { 'iam:PassedToService': service });
  }

  assumeRole(req: ApiRequest, role: RoleRow, context?: ConditionContext): void {
    const action = 'sts:AssumeRole';
    const roleArn = this.store.roleArn(role);
    const identity = this.decide(req, action, roleArn, context);
    const owner = this.owner(req);
    if (!owner) throw denied(identity.who, action, roleArn, 'because the caller is unknown');
    const invalid = this.invalidTemporary(owner);
    if (invalid) throw denied(owner.arn, action, roleArn, invalid);
    if (identity.decision === 'ExplicitDeny') throw denied(identity.who, action, roleArn, identity.why ?? 'with an explicit deny in an identity-based policy');
    const direct = owner.kind === 'role' ? [owner.arn, this.roleArnOf(owner.user)] : [owner.arn];
    const account = [`arn:aws:iam::${this.store.accountId}:root`, this.store.accountId];
    const trust = (ids: string[]) =>
      evaluate([this.store.trustPolicy(role)], { action, resource: roleArn, principal: { type: 'AWS', id: ids }, context: { ...this.context(owner), ...context } });
    const all = trust([...direct, ...account]);
    if (all === 'ExplicitDeny') throw denied(owner.arn, action, roleArn, 'with an explicit deny in a resource-based policy');
    if (trust(direct) === 'Allow') return;
    if (all === 'Allow' && identity.decision === 'Allow') return;
    throw denied(owner.arn, action, roleArn, all === 'Allow' ? `because no identity-based policy allows the ${action} action` : 'because no resource-based policy allows the sts:AssumeRole action');
  }

  private owner(req: ApiRequest): KeyOwner | undefined {
    return req.caller ? this.store.keyOwner(req.caller.accessKeyId) : undefined;
  }

  private context(owner: KeyOwner): ConditionContext {
    return {
      'aws:username': owner.kind === 'user' ? owner.user : undefined,
      'aws:PrincipalArn': owner.kind === 'user' ? owner.arn : this.roleArnOf(owner.user),
      'aws:PrincipalAccount': this.store.accountId,
      'aws:SecureTransport': 'false',
      ...(owner.session ? { 'aws:SourceArn': owner.session.sourceArn, 'aws:SourceAccount': owner.session.sourceAccount } : {}),
      ...(owner.temporary?.webIdentity ? webIdentityContext(owner.temporary.webIdentity) : {}),
    };
  }

  private decide(req: ApiRequest, action: string, resource: string, context?: ConditionContext): { decision: Decision; who: string; why?: string } {
    const owner = this.owner(req);
    if (!owner) return { decision: 'ImplicitDeny', who: 'anonymous' };
    const who = owner.arn;
    const temp = owner.temporary;
    const invalid = this.invalidTemporary(owner);
    if (invalid) return { decision: 'ImplicitDeny', who, why: invalid };
    // AWS: GetSessionToken credentials without MFA cannot call IAM (Pinstream has no MFA).
    if (temp && owner.kind === 'user' && action.toLowerCase().startsWith('iam:')) {
      return { decision: 'ImplicitDeny', who, why: 'because credentials from GetSessionToken cannot call IAM API operations unless MFA authentication information is included' };
    }
    if (owner.kind === 'user' && owner.user === ADMIN_USER) return { decision: 'Allow', who };
    if (owner.session) {
      // A session lasts only while the role (still) trusts the service for the same source.
      const role = this.store.getRole(owner.user);
      const problem = role ? trustProblem(this.store, role, owner.session) : `role ${owner.user} no longer exists`;
      if (problem) return { decision: 'ImplicitDeny', who, why: `because the role session is no longer valid: ${problem}` };
    }
    const request = { action, resource, context: { ...this.context(owner), ...context } };
    let identity = evaluate(this.store.policies(owner.kind, owner.user), request);
    if (temp?.policy && identity !== 'ExplicitDeny') {
      // A session policy only narrows: the session may do what both allow.
      const session = evaluate([temp.policy], request);
      if (session === 'ExplicitDeny') return { decision: 'ExplicitDeny', who, why: 'with an explicit deny in a session policy' };
      if (identity === 'Allow' && session !== 'Allow') return { decision: 'ImplicitDeny', who, why: `because no session policy allows the ${action} action` };
    }
    const attached = this.resourcePolicyOf(resource);
    if (!attached || identity === 'ExplicitDeny') return { decision: identity, who };
    const callers = owner.kind === 'user' ? [who] : [who, request.context['aws:PrincipalArn'] as string];
    const byResource = evaluateResourcePolicy(attached, request, callers, this.store.accountId);
    if (byResource === 'ExplicitDeny') return { decision: 'ExplicitDeny', who, why: 'with an explicit deny in a resource-based policy' };
    identity = identity === 'Allow' || byResource === 'Allow' ? 'Allow' : 'ImplicitDeny';
    return { decision: identity, who };
  }

  /** Why temporary credentials no longer act for anyone: their user or role is gone (or is another one by now). */
  private invalidTemporary(owner: KeyOwner): string | undefined {
    if (!owner.temporary) return undefined;
    const current = owner.kind === 'role' ? this.store.getRole(owner.user)?.role_id : this.store.getUser(owner.user)?.user_id;
    return current === owner.temporary.principalId ? undefined : `because the ${owner.kind} ${owner.user} these temporary credentials were issued for no longer exists`;
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

/**
 * The condition keys (and so policy variables) of a web identity, as AWS names them: the provider's
 * name then `:sub`, `:aud` and, for Cognito, `:amr` (a list: "unauthenticated", or "authenticated"
 * and the login providers).
 */
export function webIdentityContext(w: WebIdentity): ConditionContext {
  return {
    [`${w.provider}:sub`]: w.sub,
    [`${w.provider}:aud`]: w.aud,
    ...(w.amr ? { [`${w.provider}:amr`]: w.amr } : {}),
  };
}
