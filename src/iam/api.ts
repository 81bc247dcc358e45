// The IAM API (Query protocol, version 2010-05-08) for users, access keys, groups, inline and
// managed policies and roles, and STS (2011-06-15) GetCallerIdentity, AssumeRole and
// GetSessionToken: what `@aws-sdk/client-iam`, `-sts` and `aws iam` need to manage who may call
// Pinstream. Every action is authorized like any other API call. AWS-managed policies
// (arn:aws:iam::aws:policy/...) do not exist here: ListPolicies with Scope AWS is empty.

import type { ApiRequest } from '../http/request.js';
import { QueryError, type QueryParams, type QueryService } from '../http/query.js';
import { webIdentityContext, type Authorizer } from './authorizer.js';
import { parsePolicy, PolicyError } from './policy.js';
import {
  ADMIN_USER,
  IamStore,
  MAX_ACCESS_KEYS_PER_USER,
  MAX_ATTACHED_POLICIES,
  MAX_POLICY_VERSIONS,
  type GroupRow,
  type ManagedPolicyRow,
  type PolicyOwnerKind,
  type RoleRow,
  type UserRow,
  type WebIdentity,
} from './store.js';
import { evaluate } from './policy.js';
import type { ServiceModel } from '../models/types.js';
import { model as stsModel } from '../models/generated/sts.js';

/** IAM quotas (AWS's defaults): aggregate inline policy size per user and per role. */
export const MAX_USER_POLICY_BYTES = 2048;
export const MAX_ROLE_POLICY_BYTES = 10_240;
export const MAX_TRUST_POLICY_BYTES = 2048;
export const MAX_GROUP_POLICY_BYTES = 5120;
/** Managed policy document size (non-whitespace characters), AWS's quota. */
export const MAX_MANAGED_POLICY_BYTES = 6144;
/** Groups a user may belong to (AWS's quota). */
export const MAX_GROUPS_PER_USER = 10;
/** STS: a session policy (inline plus managed ones named by PolicyArns) packs into this many bytes at most. */
export const MAX_SESSION_POLICY_BYTES = 2048;
/** STS: managed policies a session may name (PolicyArns). */
export const MAX_SESSION_POLICY_ARNS = 10;
/** STS: a role assumed with temporary credentials (role chaining) lasts at most an hour. */
export const MAX_CHAINED_SESSION_SECONDS = 3600;
export const DEFAULT_ROLE_SESSION_SECONDS = 3600;
export const DEFAULT_SESSION_TOKEN_SECONDS = 43_200;
export const DEFAULT_MAX_ITEMS = 100;

/** An integer shape's range in AWS's model. */
const range = (m: ServiceModel, shape: string) => ({ min: m.shapes[shape].min!, max: m.shapes[shape].max! });
const ROLE_SESSION_SECONDS = range(stsModel, 'roleDurationSecondsType');
const SESSION_TOKEN_SECONDS = range(stsModel, 'durationSecondsType');
const ROLE_SESSION_NAME = range(stsModel, 'roleSessionNameType');
const EXTERNAL_ID = range(stsModel, 'externalIdType');
const ARN_LENGTH = range(stsModel, 'arnType');
const WEB_IDENTITY_TOKEN = range(stsModel, 'clientTokenType');

const NAME = /^[\w+=,.@-]+$/;

const noSuchEntity = (m: string) => new QueryError('NoSuchEntity', 404, m);
const alreadyExists = (m: string) => new QueryError('EntityAlreadyExists', 409, m);
const accessDenied = (m: string) => new QueryError('AccessDenied', 403, m);
const deleteConflict = (m: string) => new QueryError('DeleteConflict', 409, m);
const limitExceeded = (m: string) => new QueryError('LimitExceeded', 409, m);
const malformedPolicy = (m: string) => new QueryError('MalformedPolicyDocument', 400, m);
const validation = (value: string | undefined, member: string, constraint: string) =>
  new QueryError('ValidationError', 400, `1 validation error detected: Value '${value ?? 'null'}' at '${member}' failed to satisfy constraint: ${constraint}`);

/**
 * Who verifies web identity tokens for AssumeRoleWithWebIdentity (src/cognito/federation.ts):
 * Cognito's OpenID tokens and configured OIDC providers' ID tokens.
 */
export interface WebIdentityFederation {
  /** The token's verified identity and the trust policy's Federated principal; throws WebIdentityError. */
  verify(token: string): Promise<{ web: WebIdentity; principal: string; provider: string }>;
  /** After credentials were issued to a web identity (bounds a Cognito identity's sessions). */
  issued(web: WebIdentity): void;
}

/** A web identity token that is refused: STS's code (InvalidIdentityToken, ExpiredTokenException, ...) and message. */
export class WebIdentityError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function iamServices(store: IamStore, authorizer: Authorizer, federation?: WebIdentityFederation): QueryService[] {
  const acct = store.accountId;
  // Actions are authorized on the entity's ARN, path included, as GetUser/GetRole show it, so a
  // policy written against that ARN matches. Entities that do not exist (yet) have the root path.
  const userArnOf = (name: string, path?: string) => {
    const u = path === undefined ? store.getUser(name) : undefined;
    return u ? store.userArn(u) : `arn:aws:iam::${acct}:user${path ?? '/'}${name}`;
  };
  const roleArnOf = (name: string, path?: string) => {
    const r = path === undefined ? store.getRole(name) : undefined;
    return r ? store.roleArn(r) : `arn:aws:iam::${acct}:role${path ?? '/'}${name}`;
  };

  const name = (p: QueryParams, key: string, member: string, max = 64): string => {
    const v = p.get(key);
    if (v === undefined || v === '') throw validation(v, member, 'Member must not be null');
    if (v.length > max || !NAME.test(v)) throw validation(v, member, `Member must have length less than or equal to ${max} and satisfy regular expression pattern: [\\w+=,.@-]+`);
    return v;
  };
  const path = (p: QueryParams): string => {
    const v = p.get('Path') ?? '/';
    if (!/^\/([\x21-\x7e]*\/)?$/.test(v) || v.length > 512) throw validation(v, 'path', 'Member must begin and end with / and contain printable ASCII characters');
    return v;
  };
  const description = (p: QueryParams): string | undefined => {
    const v = p.get('Description');
    if (v !== undefined && (v.length > 1000 || !/^[\t\n\r\u0020-\u007E\u00A1-\u00FF]*$/.test(v))) {
      throw validation(v, 'description', 'Member must have length less than or equal to 1000 and satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u007E\\u00A1-\\u00FF]*');
    }
    return v;
  };
  const caller = (req: ApiRequest) => {
    const owner = store.keyOwner(req.caller!.accessKeyId)!;
    // A role session is no user: calls that default to "the caller's user" must name one (as AWS says).
    if (owner.kind !== 'user') throw new QueryError('ValidationError', 400, 'Must specify userName when calling with non-User credentials');
    return owner.user;
  };
  const requireUser = (n: string): UserRow => {
    const u = store.getUser(n);
    if (!u) throw noSuchEntity(`The user with name ${n} cannot be found.`);
    return u;
  };
  const requireRole = (n: string): RoleRow => {
    const r = store.getRole(n);
    if (!r) throw noSuchEntity(`The role with name ${n} cannot be found.`);
    return r;
  };
  const requireGroup = (n: string): GroupRow => {
    const g = store.getGroup(n);
    if (!g) throw noSuchEntity(`The group with name ${n} cannot be found.`);
    return g;
  };
  const groupArnOf = (name: string, path?: string) => {
    const g = path === undefined ? store.getGroup(name) : undefined;
    return g ? store.groupArn(g) : `arn:aws:iam::${acct}:group${path ?? '/'}${name}`;
  };
  const allow = (req: ApiRequest, action: string, resource: string, context?: Record<string, string>) =>
    authorizer.authorize(req, `iam:${action}`, resource, context);

  /** A PolicyArn parameter, checked against the model's length; the policy itself is looked up by exact ARN. */
  const policyArnParam = (p: QueryParams, key = 'PolicyArn', member = 'policyArn'): string => {
    const v = p.get(key);
    if (v === undefined || v === '') throw validation(v, member, 'Member must not be null');
    if (v.length < ARN_LENGTH.min || v.length > ARN_LENGTH.max) {
      throw validation(v, member, `Member must have length greater than or equal to ${ARN_LENGTH.min} and less than or equal to ${ARN_LENGTH.max}`);
    }
    return v;
  };
  const requirePolicy = (arn: string): ManagedPolicyRow => {
    const m = store.getManagedPolicy(arn);
    if (!m) throw noSuchEntity(`Policy ${arn} was not found.`);
    return m;
  };
  const versionParam = (p: QueryParams): string => {
    const v = p.get('VersionId');
    if (v === undefined || v === '') throw validation(v, 'versionId', 'Member must not be null');
    if (!/^v[1-9][0-9]{0,8}$/.test(v)) throw validation(v, 'versionId', 'Member must satisfy regular expression pattern: v[1-9][0-9]*(\\.[A-Za-z0-9-]*)?');
    return v;
  };
  const flag = (p: QueryParams, key: string, member: string): boolean => {
    const v = p.get(key);
    if (v === undefined) return false;
    if (v !== 'true' && v !== 'false') throw validation(v, member, 'Member must be true or false');
    return v === 'true';
  };
  const policyPath = (p: QueryParams, key = 'Path'): string => {
    const v = p.get(key) ?? '/';
    if (v.length > 512 || !/^((\/[A-Za-z0-9.,+@=_-]+)*)\/$/.test(v)) {
      throw validation(v, key === 'Path' ? 'path' : 'pathPrefix', 'Member must satisfy regular expression pattern: ((/[A-Za-z0-9\\.,\\+@=_-]+)*)/');
    }
    return v;
  };
  const policyShape = (m: ManagedPolicyRow, withDescription = false) => ({
    PolicyName: m.name,
    PolicyId: m.policy_id,
    Arn: m.arn,
    Path: m.path,
    DefaultVersionId: m.default_version,
    AttachmentCount: store.policyAttachments(m.arn).length,
    PermissionsBoundaryUsageCount: 0,
    IsAttachable: true,
    Description: withDescription ? (m.description ?? undefined) : undefined,
    CreateDate: m.create_date,
    UpdateDate: m.update_date,
  });
  const groupShape = (g: GroupRow) => ({ Path: g.path, GroupName: g.name, GroupId: g.group_id, Arn: store.groupArn(g), CreateDate: g.create_date });

  const userShape = (u: UserRow) => ({ Path: u.path, UserName: u.name, UserId: u.user_id, Arn: store.userArn(u), CreateDate: u.create_date });
  const roleShape = (r: RoleRow) => ({
    Path: r.path,
    RoleName: r.name,
    RoleId: r.role_id,
    Arn: store.roleArn(r),
    CreateDate: r.create_date,
    AssumeRolePolicyDocument: encodeURIComponent(r.assume_role_policy),
    Description: r.description ?? undefined,
    MaxSessionDuration: r.max_session_duration,
  });

  /**
   * Marker paging: the Marker is the last key of a page and the next page holds the keys after it,
   * which stays right when items are added or deleted between pages. That needs the items in key
   * order, so they are sorted here rather than trusted to come that way (access keys are listed
   * by creation date, which is not their id order).
   */
  const page = <T>(p: QueryParams, items: T[], key: (t: T) => string) => {
    const max = Number(p.get('MaxItems') ?? DEFAULT_MAX_ITEMS);
    if (!Number.isInteger(max) || max < 1 || max > 1000) throw validation(p.get('MaxItems'), 'maxItems', 'Member must have value between 1 and 1000');
    const marker = p.get('Marker');
    const sorted = [...items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
    const rest = marker ? sorted.filter((t) => key(t) > marker) : sorted;
    const out = rest.slice(0, max);
    const truncated = rest.length > out.length;
    return { out, IsTruncated: truncated, Marker: truncated ? key(out[out.length - 1]) : undefined };
  };

  const checkPolicy = (doc: string | undefined, kind: 'identity' | 'trust'): string => {
    if (doc === undefined || doc === '') throw validation(doc, 'policyDocument', 'Member must not be null');
    try {
      parsePolicy(doc, kind);
    } catch (e) {
      if (e instanceof PolicyError) throw malformedPolicy(e.message);
      throw e;
    }
    return doc;
  };

  const putInline = (kind: PolicyOwnerKind, owner: string, policyName: string, doc: string) => {
    const limit = kind === 'user' ? MAX_USER_POLICY_BYTES : kind === 'group' ? MAX_GROUP_POLICY_BYTES : MAX_ROLE_POLICY_BYTES;
    const others = store.listPolicies(kind, owner).filter((n) => n !== policyName);
    const total = others.reduce((sum, n) => sum + minifiedSize(store.getPolicy(kind, owner, n)!), minifiedSize(doc));
    if (total > limit) throw limitExceeded(`Maximum policy size of ${limit} bytes exceeded for ${kind} ${owner}`);
    store.putPolicy(kind, owner, policyName, doc);
  };

  const ownerOf = (kind: PolicyOwnerKind) =>
    ({
      user: { Kind: 'User', arnOf: userArnOf, require: requireUser, max: 64 },
      group: { Kind: 'Group', arnOf: groupArnOf, require: requireGroup, max: 128 },
      role: { Kind: 'Role', arnOf: roleArnOf, require: requireRole, max: 64 },
    })[kind];

  /** Put/Get/List/Delete{User,Group,Role}Policy: the same four actions for each kind of owner. */
  const inlinePolicyActions = (kind: PolicyOwnerKind): Record<string, (p: QueryParams, req: ApiRequest) => unknown> => {
    const { Kind, arnOf, require: requireOwner, max } = ownerOf(kind);
    const owner = (p: QueryParams, req: ApiRequest, action: string) => {
      const n = name(p, `${Kind}Name`, `${kind}Name`, max);
      allow(req, action, arnOf(n));
      requireOwner(n);
      return n;
    };
    const existing = (n: string, pn: string) => {
      const doc = store.getPolicy(kind, n, pn);
      if (doc === undefined) throw noSuchEntity(`The ${kind} policy with name ${pn} cannot be found.`);
      return doc;
    };
    return {
      [`Put${Kind}Policy`](p, req) {
        const n = owner(p, req, `Put${Kind}Policy`);
        putInline(kind, n, name(p, 'PolicyName', 'policyName', 128), checkPolicy(p.get('PolicyDocument'), 'identity'));
        return undefined;
      },
      [`Get${Kind}Policy`](p, req) {
        const n = owner(p, req, `Get${Kind}Policy`);
        const pn = name(p, 'PolicyName', 'policyName', 128);
        return { [`${Kind}Name`]: n, PolicyName: pn, PolicyDocument: encodeURIComponent(existing(n, pn)) };
      },
      [`List${Kind}Policies`](p, req) {
        const n = owner(p, req, `List${Kind}Policies`);
        const { out, ...rest } = page(p, store.listPolicies(kind, n), (x) => x);
        return { PolicyNames: out, ...rest };
      },
      [`Delete${Kind}Policy`](p, req) {
        const n = owner(p, req, `Delete${Kind}Policy`);
        const pn = name(p, 'PolicyName', 'policyName', 128);
        existing(n, pn);
        store.deletePolicy(kind, n, pn);
        return undefined;
      },
    };
  };

  /** Attach/Detach/ListAttached{User,Group,Role}Policies, authorized on the user, group or role as in AWS. */
  const attachedPolicyActions = (kind: PolicyOwnerKind): Record<string, (p: QueryParams, req: ApiRequest) => unknown> => {
    const { Kind, arnOf, require: requireOwner, max } = ownerOf(kind);
    const owner = (p: QueryParams, req: ApiRequest, action: string, policyArn?: string) => {
      const n = name(p, `${Kind}Name`, `${kind}Name`, max);
      allow(req, action, arnOf(n), policyArn === undefined ? undefined : { 'iam:PolicyARN': policyArn });
      requireOwner(n);
      return n;
    };
    return {
      [`Attach${Kind}Policy`](p, req) {
        const arn = policyArnParam(p);
        const n = owner(p, req, `Attach${Kind}Policy`, arn);
        if (!store.getManagedPolicy(arn)) throw noSuchEntity(`Policy ${arn} does not exist or is not attachable.`);
        const attached = store.attachedPolicies(kind, n);
        if (!attached.some((a) => a.arn === arn) && attached.length >= MAX_ATTACHED_POLICIES) {
          throw limitExceeded(`Cannot exceed quota for PoliciesPer${Kind}: ${MAX_ATTACHED_POLICIES}`);
        }
        store.attachPolicy(kind, n, arn);
        return undefined;
      },
      [`Detach${Kind}Policy`](p, req) {
        const arn = policyArnParam(p);
        const n = owner(p, req, `Detach${Kind}Policy`, arn);
        if (!store.attachedPolicies(kind, n).some((a) => a.arn === arn)) throw noSuchEntity(`Policy ${arn} was not found.`);
        store.detachPolicy(kind, n, arn);
        return undefined;
      },
      [`ListAttached${Kind}Policies`](p, req) {
        const n = owner(p, req, `ListAttached${Kind}Policies`);
        const prefix = policyPath(p, 'PathPrefix');
        const { out, ...rest } = page(p, store.attachedPolicies(kind, n).filter((a) => a.path.startsWith(prefix)), (a) => a.name);
        return { AttachedPolicies: out.map((a) => ({ PolicyName: a.name, PolicyArn: a.arn })), ...rest };
      },
    };
  };

  const managedPolicyActions: Record<string, (p: QueryParams, req: ApiRequest) => unknown> = {
    CreatePolicy(p, req) {
      const n = name(p, 'PolicyName', 'policyName', 128);
      const at = policyPath(p);
      const arn = store.managedPolicyArn(n, at);
      allow(req, 'CreatePolicy', arn);
      const doc = checkPolicy(p.get('PolicyDocument'), 'identity');
      if (minifiedSize(doc) > MAX_MANAGED_POLICY_BYTES) throw limitExceeded(`Cannot exceed quota for PolicySize: ${MAX_MANAGED_POLICY_BYTES}`);
      const desc = p.get('Description');
      if (desc !== undefined && desc.length > 1000) throw validation(desc, 'description', 'Member must have length less than or equal to 1000');
      if (store.managedPolicyNameTaken(n)) throw alreadyExists(`A policy called ${n} already exists. Duplicate names are not allowed.`);
      return { Policy: policyShape(store.createManagedPolicy(n, at, doc, desc)) };
    },
    GetPolicy(p, req) {
      const arn = policyArnParam(p);
      allow(req, 'GetPolicy', arn);
      return { Policy: policyShape(requirePolicy(arn), true) };
    },
    ListPolicies(p, req) {
      allow(req, 'ListPolicies', `arn:aws:iam::${acct}:policy/*`);
      const scope = p.get('Scope') ?? 'All';
      if (scope !== 'All' && scope !== 'AWS' && scope !== 'Local') throw validation(scope, 'scope', 'Member must satisfy enum value set: [All, AWS, Local]');
      const usage = p.get('PolicyUsageFilter');
      if (usage !== undefined && usage !== 'PermissionsPolicy' && usage !== 'PermissionsBoundary') {
        throw validation(usage, 'policyUsageFilter', 'Member must satisfy enum value set: [PermissionsPolicy, PermissionsBoundary]');
      }
      const onlyAttached = flag(p, 'OnlyAttached', 'onlyAttached');
      const prefix = policyPath(p, 'PathPrefix');
      // No AWS-managed policies exist here, and none is used as a permissions boundary.
      const all = scope === 'AWS' || usage === 'PermissionsBoundary' ? [] : store.listManagedPolicies();
      const shown = all.map((m) => policyShape(m)).filter((m) => m.Path.startsWith(prefix) && (!onlyAttached || m.AttachmentCount > 0));
      const { out, ...rest } = page(p, shown, (m) => m.PolicyName);
      return { Policies: out, ...rest };
    },
    DeletePolicy(p, req) {
      const arn = policyArnParam(p);
      allow(req, 'DeletePolicy', arn);
      const m = requirePolicy(arn);
      if (store.policyAttachments(arn).length > 0) throw deleteConflict('Cannot delete a policy attached to entities.');
      if (store.policyVersions(m).length > 1) {
        throw deleteConflict(
          "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.",
        );
      }
      store.deleteManagedPolicy(arn);
      return undefined;
    },
    CreatePolicyVersion(p, req) {
      const arn = policyArnParam(p);
      allow(req, 'CreatePolicyVersion', arn);
      const m = requirePolicy(arn);
      const doc = checkPolicy(p.get('PolicyDocument'), 'identity');
      if (minifiedSize(doc) > MAX_MANAGED_POLICY_BYTES) throw limitExceeded(`Cannot exceed quota for PolicySize: ${MAX_MANAGED_POLICY_BYTES}`);
      const setAsDefault = flag(p, 'SetAsDefault', 'setAsDefault');
      if (store.policyVersions(m).length >= MAX_POLICY_VERSIONS) {
        throw limitExceeded(`A managed policy can have up to ${MAX_POLICY_VERSIONS} versions. Before you create a new version, you must delete an existing version.`);
      }
      const v = store.createPolicyVersion(m, doc, setAsDefault);
      return { PolicyVersion: { VersionId: v.version_id, IsDefaultVersion: v.is_default, CreateDate: v.create_date } };
    },
    GetPolicyVersion(p, req) {
      const arn = policyArnParam(p);
      const id = versionParam(p);
      allow(req, 'GetPolicyVersion', arn);
      const m = store.getManagedPolicy(arn);
      const v = m && store.policyVersions(m).find((x) => x.version_id === id);
      if (!v) throw noSuchEntity(`Policy ${arn} version ${id} does not exist or is not attachable.`);
      return { PolicyVersion: { Document: encodeURIComponent(v.document), VersionId: v.version_id, IsDefaultVersion: v.is_default, CreateDate: v.create_date } };
    },
    ListPolicyVersions(p, req) {
      const arn = policyArnParam(p);
      allow(req, 'ListPolicyVersions', arn);
      const versions = store.policyVersions(requirePolicy(arn));
      // Newest first, as AWS lists them; the marker is the version number (fixed width for ordering).
      const { out, ...rest } = page(p, versions, (v) => String(1e9 - Number(v.version_id.slice(1))).padStart(10, '0'));
      return { Versions: out.map((v) => ({ VersionId: v.version_id, IsDefaultVersion: v.is_default, CreateDate: v.create_date })), ...rest };
    },
    DeletePolicyVersion(p, req) {
      const arn = policyArnParam(p);
      const id = versionParam(p);
      allow(req, 'DeletePolicyVersion', arn);
      const m = requirePolicy(arn);
      const v = store.policyVersions(m).find((x) => x.version_id === id);
      if (!v) throw noSuchEntity(`Policy ${arn} version ${id} does not exist or is not deletable.`);
      if (v.is_default) throw deleteConflict('Cannot delete the default version of a policy.');
      store.deletePolicyVersion(m, id);
      return undefined;
    },
    SetDefaultPolicyVersion(p, req) {
      const arn = policyArnParam(p);
      const id = versionParam(p);
      allow(req, 'SetDefaultPolicyVersion', arn);
      const m = requirePolicy(arn);
      if (!store.policyVersions(m).some((x) => x.version_id === id)) throw noSuchEntity(`Policy ${arn} version ${id} does not exist or is not attachable.`);
      store.setDefaultPolicyVersion(m, id);
      return undefined;
    },
    ListEntitiesForPolicy(p, req) {
      const arn = policyArnParam(p);
      allow(req, 'ListEntitiesForPolicy', arn);
      requirePolicy(arn);
      const filter = p.get('EntityFilter');
      const FILTERS = ['User', 'Role', 'Group', 'LocalManagedPolicy', 'AWSManagedPolicy'];
      if (filter !== undefined && !FILTERS.includes(filter)) throw validation(filter, 'entityFilter', `Member must satisfy enum value set: [${FILTERS.join(', ')}]`);
      const prefix = path(p.has('PathPrefix') ? new Map([['Path', p.get('PathPrefix')!]]) : new Map());
      const wanted = (k: PolicyOwnerKind) => filter === undefined || filter === 'LocalManagedPolicy' || filter.toLowerCase() === k;
      const entities = store
        .policyAttachments(arn)
        .filter((a) => wanted(a.kind))
        .map((a) => ({ ...a, row: a.kind === 'user' ? store.getUser(a.owner) : a.kind === 'group' ? store.getGroup(a.owner) : store.getRole(a.owner) }))
        .filter((a) => a.row && a.row.path.startsWith(prefix));
      const { out, ...rest } = page(p, entities, (a) => `${a.kind}\n${a.owner}`);
      const of = (k: PolicyOwnerKind) => out.filter((a) => a.kind === k);
      return {
        PolicyGroups: of('group').map((a) => ({ GroupName: a.owner, GroupId: (a.row as GroupRow).group_id })),
        PolicyUsers: of('user').map((a) => ({ UserName: a.owner, UserId: (a.row as UserRow).user_id })),
        PolicyRoles: of('role').map((a) => ({ RoleName: a.owner, RoleId: (a.row as RoleRow).role_id })),
        ...rest,
      };
    },
  };

  const groupActions: Record<string, (p: QueryParams, req: ApiRequest) => unknown> = {
    CreateGroup(p, req) {
      const n = name(p, 'GroupName', 'groupName', 128);
      const at = path(p);
      allow(req, 'CreateGroup', groupArnOf(n, at));
      if (store.groupNameTaken(n)) throw alreadyExists(`Group with name ${n} already exists.`);
      return { Group: groupShape(store.createGroup(n, at)) };
    },
    GetGroup(p, req) {
      const n = name(p, 'GroupName', 'groupName', 128);
      allow(req, 'GetGroup', groupArnOf(n));
      const g = requireGroup(n);
      const { out, ...rest } = page(p, store.groupMembers(n), (u) => u.name);
      return { Group: groupShape(g), Users: out.map(userShape), ...rest };
    },
    ListGroups(p, req) {
      allow(req, 'ListGroups', groupArnOf('*', '/'));
      const prefix = p.get('PathPrefix') ?? '/';
      const { out, ...rest } = page(p, store.listGroups().filter((g) => g.path.startsWith(prefix)), (g) => g.name);
      return { Groups: out.map(groupShape), ...rest };
    },
    DeleteGroup(p, req) {
      const n = name(p, 'GroupName', 'groupName', 128);
      allow(req, 'DeleteGroup', groupArnOf(n));
      requireGroup(n);
      if (store.groupMembers(n).length > 0) throw deleteConflict('Cannot delete entity, must remove users from group first.');
      if (store.attachedPolicies('group', n).length > 0) throw deleteConflict('Cannot delete entity, must detach all policies first.');
      if (store.listPolicies('group', n).length > 0) throw deleteConflict('Cannot delete entity, must delete policies first.');
      store.deleteGroup(n);
      return undefined;
    },
    AddUserToGroup(p, req) {
      const g = name(p, 'GroupName', 'groupName', 128);
      const u = name(p, 'UserName', 'userName');
      allow(req, 'AddUserToGroup', groupArnOf(g));
      requireGroup(g);
      requireUser(u);
      const groups = store.groupsForUser(u);
      if (!groups.some((x) => x.name === g) && groups.length >= MAX_GROUPS_PER_USER) throw limitExceeded(`Cannot exceed quota for GroupsPerUser: ${MAX_GROUPS_PER_USER}`);
      store.addUserToGroup(g, u);
      return undefined;
    },
    RemoveUserFromGroup(p, req) {
      const g = name(p, 'GroupName', 'groupName', 128);
      const u = name(p, 'UserName', 'userName');
      allow(req, 'RemoveUserFromGroup', groupArnOf(g));
      requireGroup(g);
      requireUser(u);
      if (!store.groupsForUser(u).some((x) => x.name === g)) throw noSuchEntity(`The user with name ${u} cannot be found in group ${g}.`);
      store.removeUserFromGroup(g, u);
      return undefined;
    },
    ListGroupsForUser(p, req) {
      const u = name(p, 'UserName', 'userName');
      allow(req, 'ListGroupsForUser', userArnOf(u));
      requireUser(u);
      const { out, ...rest } = page(p, store.groupsForUser(u), (g) => g.name);
      return { Groups: out.map(groupShape), ...rest };
    },
  };

  const iam: QueryService = {
    version: '2010-05-08',
    signingName: 'iam',
    xmlNamespace: 'https://iam.amazonaws.com/doc/2010-05-08/',
    actions: {
      CreateUser(p, req) {
        const n = name(p, 'UserName', 'userName');
        const at = path(p);
        allow(req, 'CreateUser', userArnOf(n, at));
        // IAM names are unique regardless of case: "Alice" would be another spelling of "alice".
        if (store.userNameTaken(n)) throw alreadyExists(`User with name ${n} already exists.`);
        return { User: userShape(store.createUser(n, at)) };
      },
      GetUser(p, req) {
        const n = p.get('UserName') ?? caller(req);
        allow(req, 'GetUser', userArnOf(n));
        return { User: userShape(requireUser(n)) };
      },
      ListUsers(p, req) {
        allow(req, 'ListUsers', userArnOf('*', '/'));
        const prefix = p.get('PathPrefix') ?? '/';
        const { out, ...rest } = page(p, store.listUsers().filter((u) => u.path.startsWith(prefix)), (u) => u.name);
        return { Users: out.map(userShape), ...rest };
      },
      DeleteUser(p, req) {
        const n = name(p, 'UserName', 'userName');
        allow(req, 'DeleteUser', userArnOf(n));
        requireUser(n);
        if (n === ADMIN_USER) throw deleteConflict('The bootstrap admin user cannot be deleted.');
        if (store.listAccessKeys(n).length > 0) throw deleteConflict('Cannot delete entity, must delete access keys first.');
        if (store.groupsForUser(n).length > 0) throw deleteConflict('Cannot delete entity, must remove user from all groups first.');
        if (store.attachedPolicies('user', n).length > 0) throw deleteConflict('Cannot delete entity, must detach all policies first.');
        if (store.listPolicies('user', n).length > 0) throw deleteConflict('Cannot delete entity, must delete policies first.');
        store.deleteUser(n);
        return undefined;
      },
      CreateAccessKey(p, req) {
        const n = p.get('UserName') ?? caller(req);
        allow(req, 'CreateAccessKey', userArnOf(n));
        requireUser(n);
        if (store.listAccessKeys(n).length >= MAX_ACCESS_KEYS_PER_USER) {
          throw limitExceeded(`Cannot exceed quota for AccessKeysPerUser: ${MAX_ACCESS_KEYS_PER_USER}`);
        }
        const k = store.createAccessKey(n);
        return { AccessKey: { UserName: n, AccessKeyId: k.accessKeyId, Status: 'Active', SecretAccessKey: k.secretAccessKey, CreateDate: k.createDate } };
      },
      ListAccessKeys(p, req) {
        const n = p.get('UserName') ?? caller(req);
        allow(req, 'ListAccessKeys', userArnOf(n));
        requireUser(n);
        const { out, ...rest } = page(p, store.listAccessKeys(n), (k) => k.access_key_id);
        return {
          AccessKeyMetadata: out.map((k) => ({ UserName: k.user_name, AccessKeyId: k.access_key_id, Status: k.status, CreateDate: k.create_date })),
          ...rest,
        };
      },
      UpdateAccessKey(p, req) {
        // Authorized before the key is looked up: otherwise NoSuchEntity versus AccessDenied would
        // tell any caller which key ids belong to which user.
        const user = p.get('UserName') ?? caller(req);
        allow(req, 'UpdateAccessKey', userArnOf(user));
        const id = accessKey(p, store, user);
        const status = p.get('Status');
        if (status !== 'Active' && status !== 'Inactive') throw validation(status, 'status', 'Member must satisfy enum value set: [Active, Inactive]');
        store.setAccessKeyStatus(id.access_key_id, status);
        return undefined;
      },
      DeleteAccessKey(p, req) {
        const user = p.get('UserName') ?? caller(req);
        allow(req, 'DeleteAccessKey', userArnOf(user));
        const id = accessKey(p, store, user);
        store.deleteAccessKey(id.access_key_id);
        return undefined;
      },
      ...inlinePolicyActions('user'),
      CreateRole(p, req) {
        const n = name(p, 'RoleName', 'roleName');
        const at = path(p);
        allow(req, 'CreateRole', roleArnOf(n, at));
        const trust = checkPolicy(p.get('AssumeRolePolicyDocument'), 'trust');
        if (minifiedSize(trust) > MAX_TRUST_POLICY_BYTES) throw limitExceeded(`Cannot exceed quota for ACLSizePerRole: ${MAX_TRUST_POLICY_BYTES}`);
        if (store.roleNameTaken(n)) throw alreadyExists(`Role with name ${n} already exists.`);
        const max = p.has('MaxSessionDuration') ? Number(p.get('MaxSessionDuration')) : undefined;
        if (max !== undefined && (!Number.isInteger(max) || max < 3600 || max > 43200)) {
          throw validation(p.get('MaxSessionDuration'), 'maxSessionDuration', 'Member must have value between 3600 and 43200');
        }
        return { Role: roleShape(store.createRole(n, trust, { path: at, description: description(p), maxSessionDuration: max })) };
      },
      GetRole(p, req) {
        const n = name(p, 'RoleName', 'roleName');
        allow(req, 'GetRole', roleArnOf(n));
        return { Role: roleShape(requireRole(n)) };
      },
      ListRoles(p, req) {
        allow(req, 'ListRoles', roleArnOf('*', '/'));
        const prefix = p.get('PathPrefix') ?? '/';
        const { out, ...rest } = page(p, store.listRoles().filter((r) => r.path.startsWith(prefix)), (r) => r.name);
        return { Roles: out.map(roleShape), ...rest };
      },
      UpdateAssumeRolePolicy(p, req) {
        const n = name(p, 'RoleName', 'roleName');
        allow(req, 'UpdateAssumeRolePolicy', roleArnOf(n));
        requireRole(n);
        const trust = checkPolicy(p.get('PolicyDocument'), 'trust');
        if (minifiedSize(trust) > MAX_TRUST_POLICY_BYTES) throw limitExceeded(`Cannot exceed quota for ACLSizePerRole: ${MAX_TRUST_POLICY_BYTES}`);
        store.updateAssumeRolePolicy(n, trust);
        return undefined;
      },
      DeleteRole(p, req) {
        const n = name(p, 'RoleName', 'roleName');
        allow(req, 'DeleteRole', roleArnOf(n));
        requireRole(n);
        if (store.attachedPolicies('role', n).length > 0) throw deleteConflict('Cannot delete entity, must detach all policies first.');
        if (store.listPolicies('role', n).length > 0) throw deleteConflict('Cannot delete entity, must delete policies first.');
        store.deleteRole(n);
        return undefined;
      },
      ...inlinePolicyActions('role'),
      ...inlinePolicyActions('group'),
      ...attachedPolicyActions('user'),
      ...attachedPolicyActions('group'),
      ...attachedPolicyActions('role'),
      ...managedPolicyActions,
      ...groupActions,
    },
  };

  /**
   * AssumeRole's session policy: the inline Policy and the default versions of the managed
   * policies named by PolicyArns, as one document (AWS evaluates them as one set). Undefined when
   * neither is given. Its packed size is checked against MAX_SESSION_POLICY_BYTES.
   */
  const sessionPolicy = (p: QueryParams): { text: string; packedPercent: number } | undefined => {
    const statements: unknown[] = [];
    const inline = p.get('Policy');
    if (inline !== undefined) {
      const doc = checkPolicy(inline, 'identity');
      const parsed = JSON.parse(doc) as { Statement: unknown };
      statements.push(...(Array.isArray(parsed.Statement) ? parsed.Statement : [parsed.Statement]));
    }
    const arns: string[] = [];
    for (let i = 1; p.has(`PolicyArns.member.${i}.arn`) && arns.length <= MAX_SESSION_POLICY_ARNS; i++) arns.push(p.get(`PolicyArns.member.${i}.arn`)!);
    if (arns.length > MAX_SESSION_POLICY_ARNS) throw validation(`[${arns.join(', ')}]`, 'policyArns', `Member must have length less than or equal to ${MAX_SESSION_POLICY_ARNS}`);
    for (const arn of arns) {
      const m = store.getManagedPolicy(arn);
      const v = m && store.policyVersions(m).find((x) => x.is_default);
      if (!v) throw new QueryError('InvalidParameterValue', 400, `Policy ${arn} does not exist or is not attachable.`);
      const parsed = JSON.parse(v.document) as { Statement: unknown };
      statements.push(...(Array.isArray(parsed.Statement) ? parsed.Statement : [parsed.Statement]));
    }
    if (inline === undefined && arns.length === 0) return undefined;
    const text = JSON.stringify({ Version: '2012-10-17', Statement: statements });
    const percent = Math.ceil((Buffer.byteLength(text) * 100) / MAX_SESSION_POLICY_BYTES);
    if (percent > 100) throw new QueryError('PackedPolicyTooLarge', 400, `Packed policy consumes ${percent}% of allotted space, please use smaller policy for session.`);
    return { text, packedPercent: percent };
  };
  const credentialsShape = (c: { accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: number }) => ({
    AccessKeyId: c.accessKeyId,
    SecretAccessKey: c.secretAccessKey,
    SessionToken: c.sessionToken,
    Expiration: isoSeconds(c.expiration),
  });

  const sts: QueryService = {
    version: '2011-06-15',
    signingName: 'sts',
    xmlNamespace: 'https://sts.amazonaws.com/doc/2011-06-15/',
    // The model's noAuth actions this service answers.
    unsignedActions: Object.values(stsModel.operations).filter((o) => o.unsigned && o.name === 'AssumeRoleWithWebIdentity').map((o) => o.name),
    actions: {
      AssumeRole(p, req) {
        const roleArn = p.get('RoleArn');
        if (roleArn === undefined || roleArn === '') throw validation(roleArn, 'roleArn', 'Member must not be null');
        if (roleArn.length < ARN_LENGTH.min || roleArn.length > ARN_LENGTH.max) {
          throw validation(roleArn, 'roleArn', `Member must have length greater than or equal to ${ARN_LENGTH.min} and less than or equal to ${ARN_LENGTH.max}`);
        }
        const session = p.get('RoleSessionName');
        if (session === undefined || session === '') throw validation(session, 'roleSessionName', 'Member must not be null');
        if (session.length < ROLE_SESSION_NAME.min || session.length > ROLE_SESSION_NAME.max || !NAME.test(session)) {
          throw validation(
            session,
            'roleSessionName',
            `Member must have length greater than or equal to ${ROLE_SESSION_NAME.min}, Member must have length less than or equal to ${ROLE_SESSION_NAME.max}, Member must satisfy regular expression pattern: [\\w+=,.@-]*`,
          );
        }
        const externalId = p.get('ExternalId');
        if (externalId !== undefined && (externalId.length < EXTERNAL_ID.min || externalId.length > EXTERNAL_ID.max || !/^[\w+=,.@:/-]*$/.test(externalId))) {
          throw validation(externalId, 'externalId', `Member must have length between ${EXTERNAL_ID.min} and ${EXTERNAL_ID.max} and satisfy regular expression pattern: [\\w+=,.@:\\/-]*`);
        }
        const duration = seconds(p, 'durationSeconds', ROLE_SESSION_SECONDS, DEFAULT_ROLE_SESSION_SECONDS);
        const policy = sessionPolicy(p);
        const owner = store.keyOwner(req.caller!.accessKeyId)!;
        // A role that does not exist is refused like one that does not trust the caller: nothing tells them apart.
        const role = store.roleByArn(roleArn);
        const context = externalId === undefined ? undefined : { 'sts:ExternalId': externalId };
        if (!role) {
          throw accessDenied(`User: ${owner.arn} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`);
        }
        authorizer.assumeRole(req, role, context);
        const chained = owner.temporary !== undefined || owner.session !== undefined;
        if (chained && duration > MAX_CHAINED_SESSION_SECONDS) {
          throw new QueryError('ValidationError', 400, `The requested DurationSeconds exceeds the ${MAX_CHAINED_SESSION_SECONDS / 3600} hour session limit for roles assumed by role chaining.`);
        }
        if (duration > role.max_session_duration) throw new QueryError('ValidationError', 400, 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
        const arn = `arn:aws:sts::${acct}:assumed-role/${role.name}/${session}`;
        const creds = store.createTemporarySession({ kind: 'role', principal: role.name, principalId: role.role_id, arn, durationSeconds: duration, policy: policy?.text, chained });
        return {
          Credentials: credentialsShape(creds),
          AssumedRoleUser: { AssumedRoleId: `${role.role_id}:${session}`, Arn: arn },
          PackedPolicySize: policy?.packedPercent,
        };
      },
      // Unsigned, as in AWS: the token is the proof, the role's trust policy the permission.
      async AssumeRoleWithWebIdentity(p) {
        if (!federation) throw new QueryError('InvalidAction', 400, 'AssumeRoleWithWebIdentity is not available');
        const roleArn = p.get('RoleArn');
        if (roleArn === undefined || roleArn === '') throw validation(roleArn, 'roleArn', 'Member must not be null');
        if (roleArn.length < ARN_LENGTH.min || roleArn.length > ARN_LENGTH.max) {
          throw validation(roleArn, 'roleArn', `Member must have length greater than or equal to ${ARN_LENGTH.min} and less than or equal to ${ARN_LENGTH.max}`);
        }
        const session = p.get('RoleSessionName');
        if (session === undefined || session === '') throw validation(session, 'roleSessionName', 'Member must not be null');
        if (session.length < ROLE_SESSION_NAME.min || session.length > ROLE_SESSION_NAME.max || !NAME.test(session)) {
          throw validation(
            session,
            'roleSessionName',
            `Member must have length greater than or equal to ${ROLE_SESSION_NAME.min}, Member must have length less than or equal to ${ROLE_SESSION_NAME.max}, Member must satisfy regular expression pattern: [\\w+=,.@-]*`,
          );
        }
        const token = p.get('WebIdentityToken');
        if (token === undefined || token === '') throw validation(token, 'webIdentityToken', 'Member must not be null');
        if (token.length < WEB_IDENTITY_TOKEN.min || token.length > WEB_IDENTITY_TOKEN.max) {
          throw validation('***', 'webIdentityToken', `Member must have length less than or equal to ${WEB_IDENTITY_TOKEN.max}`);
        }
        if (p.get('ProviderId') !== undefined) throw new QueryError('InvalidParameterValue', 400, 'ProviderId (OAuth 2.0 access tokens) is not supported; send an OpenID Connect ID token');
        const duration = seconds(p, 'durationSeconds', ROLE_SESSION_SECONDS, DEFAULT_ROLE_SESSION_SECONDS);
        const policy = sessionPolicy(p);
        let verified;
        try {
          verified = await federation.verify(token);
        } catch (e) {
          if (e instanceof WebIdentityError) throw new QueryError(e.code, e.code === 'IDPRejectedClaim' ? 403 : 400, e.message);
          throw e;
        }
        const { web, principal, provider } = verified;
        const role = store.roleByArn(roleArn);
        const trusted =
          role !== undefined &&
          evaluate([store.trustPolicy(role)], {
            action: 'sts:AssumeRoleWithWebIdentity',
            resource: roleArn,
            principal: { type: 'Federated', id: principal },
            context: webIdentityContext(web),
          }) === 'Allow';
        // A missing role is refused like an untrusting one: nothing tells them apart.
        if (!role || !trusted) throw accessDenied('Not authorized to perform sts:AssumeRoleWithWebIdentity');
        if (duration > role.max_session_duration) throw new QueryError('ValidationError', 400, 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
        const arn = `arn:aws:sts::${acct}:assumed-role/${role.name}/${session}`;
        const creds = store.createTemporarySession({ kind: 'role', principal: role.name, principalId: role.role_id, arn, durationSeconds: duration, policy: policy?.text, webIdentity: web });
        federation.issued(web);
        return {
          Credentials: credentialsShape(creds),
          SubjectFromWebIdentityToken: web.sub,
          AssumedRoleUser: { AssumedRoleId: `${role.role_id}:${session}`, Arn: arn },
          PackedPolicySize: policy?.packedPercent,
          Provider: provider,
          Audience: web.aud,
        };
      },
      // Needs no permission (AWS: policies cannot control it), but only an IAM user's long-term key may ask.
      GetSessionToken(p, req) {
        const owner = store.keyOwner(req.caller!.accessKeyId)!;
        if (owner.temporary || owner.session || owner.kind !== 'user') throw accessDenied('Cannot call GetSessionToken with session credentials');
        const duration = seconds(p, 'durationSeconds', SESSION_TOKEN_SECONDS, DEFAULT_SESSION_TOKEN_SECONDS);
        const u = requireUser(owner.user);
        const creds = store.createTemporarySession({ kind: 'user', principal: u.name, principalId: u.user_id, arn: store.userArn(u), durationSeconds: duration });
        return { Credentials: credentialsShape(creds) };
      },
      // Needs no permission, as in AWS: any valid key may ask who it is.
      GetCallerIdentity(_p, req) {
        const owner = store.keyOwner(req.caller!.accessKeyId)!;
        if (owner.kind === 'role') {
          // A session answers with the role id it was issued for, even once the role is gone (as AWS does).
          const id = owner.temporary?.principalId ?? requireRole(owner.user).role_id;
          return { UserId: `${id}:${owner.arn.slice(owner.arn.lastIndexOf('/') + 1)}`, Account: acct, Arn: owner.arn };
        }
        if (owner.temporary) return { UserId: owner.temporary.principalId, Account: acct, Arn: owner.arn };
        const u = requireUser(caller(req));
        return { UserId: u.user_id, Account: acct, Arn: store.userArn(u) };
      },
    },
  };
  return [iam, sts];
}

/** Integer parameter within the model's range, or the default when absent. */
function seconds(p: QueryParams, member: string, r: { min: number; max: number }, fallback: number): number {
  const raw = p.get('DurationSeconds');
  if (raw === undefined) return fallback;
  const v = /^-?\d{1,12}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(v)) throw validation(raw, member, 'Member must be an integer');
  if (v < r.min) throw validation(raw, member, `Member must have value greater than or equal to ${r.min}`);
  if (v > r.max) throw validation(raw, member, `Member must have value less than or equal to ${r.max}`);
  return v;
}

const isoSeconds = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function accessKey(p: QueryParams, store: IamStore, user: string) {
  const id = p.get('AccessKeyId');
  if (!id) throw validation(id, 'accessKeyId', 'Member must not be null');
  const k = store.getAccessKey(id);
  if (!k || k.user_name !== user) throw noSuchEntity(`The Access Key with id ${id} cannot be found.`);
  return k;
}

/** IAM counts policy size without whitespace. */
function minifiedSize(doc: string): number {
  try {
    return Buffer.byteLength(JSON.stringify(JSON.parse(doc)));
  } catch {
    return Buffer.byteLength(doc);
  }
}
