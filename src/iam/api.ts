// The IAM API (Query protocol, version 2010-05-08) for users, access keys, groups, inline and
// managed policies and roles, and STS (2011-06-15) GetCallerIdentity, AssumeRole and
// GetSessionToken: what `@aws-sdk/client-iam`, `-sts` and `aws iam` need to manage who may call
// Pinstream. Every action is authorized like any other API call. AWS-managed policies
// (arn:aws:iam::aws:policy/...) do not exist here: ListPolicies with Scope AWS is empty.
// Actions receive input already decoded and validated against AWS's models by the Query layer
// (names, paths, lengths, ranges, enums); what is checked here are IAM's business rules.

import type { ApiRequest } from '../http/request.js';
import { QueryError, type QueryAction, type QueryActions, type QueryService } from '../http/query.js';
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
import { model as iamModel } from '../models/generated/iam.js';
import { model as stsModel } from '../models/generated/sts.js';
import type { Inputs as IamInputs } from '../models/generated/iam-inputs.js';
import type { Inputs as StsInputs } from '../models/generated/sts-inputs.js';

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
  issued(web: WebIdentity): Promise<void>;
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

  const requirePolicy = (arn: string): ManagedPolicyRow => {
    const m = store.getManagedPolicy(arn);
    if (!m) throw noSuchEntity(`Policy ${arn} was not found.`);
    return m;
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
  const page = <T>(p: { MaxItems?: number; Marker?: string }, items: T[], key: (t: T) => string) => {
    const max = p.MaxItems ?? DEFAULT_MAX_ITEMS;
    const marker = p.Marker;
    const sorted = [...items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
    const rest = marker ? sorted.filter((t) => key(t) > marker) : sorted;
    const out = rest.slice(0, max);
    const truncated = rest.length > out.length;
    return { out, IsTruncated: truncated, Marker: truncated ? key(out[out.length - 1]) : undefined };
  };

  /**
   * A create that lost a race for its name (the name check reads this node's cache; another request
   * or node may have taken the name since) is EntityAlreadyExists, as when the check sees it.
   */
  const unlessTaken = <T>(write: Promise<T>, message: string): Promise<T> =>
    write.catch((e: unknown) => {
      throw store.isUniqueViolation(e) ? alreadyExists(message) : e;
    });

  /** A policy document's grammar (MalformedPolicyDocument); the model has checked its characters and length. */
  const checkPolicy = (doc: string, kind: 'identity' | 'trust'): string => {
    try {
      parsePolicy(doc, kind);
    } catch (e) {
      if (e instanceof PolicyError) throw malformedPolicy(e.message);
      throw e;
    }
    return doc;
  };

  const putInline = async (kind: PolicyOwnerKind, owner: string, policyName: string, doc: string) => {
    const limit = kind === 'user' ? MAX_USER_POLICY_BYTES : kind === 'group' ? MAX_GROUP_POLICY_BYTES : MAX_ROLE_POLICY_BYTES;
    const others = store.listPolicies(kind, owner).filter((n) => n !== policyName);
    const total = others.reduce((sum, n) => sum + minifiedSize(store.getPolicy(kind, owner, n)!), minifiedSize(doc));
    if (total > limit) throw limitExceeded(`Maximum policy size of ${limit} bytes exceeded for ${kind} ${owner}`);
    await store.putPolicy(kind, owner, policyName, doc);
  };

  const ownerOf = (kind: PolicyOwnerKind) =>
    ({
      user: { Kind: 'User', arnOf: userArnOf, require: requireUser },
      group: { Kind: 'Group', arnOf: groupArnOf, require: requireGroup },
      role: { Kind: 'Role', arnOf: roleArnOf, require: requireRole },
    })[kind];

  /** The input of the per-kind actions, read by member name (`UserName`, `GroupName` or `RoleName`). */
  type OwnerInput = Record<string, string | number | undefined> & { PolicyName?: string; PolicyDocument?: string; PolicyArn?: string; PathPrefix?: string; MaxItems?: number; Marker?: string };
  type OwnerActions = Record<string, QueryAction<OwnerInput>>;

  /** Put/Get/List/Delete{User,Group,Role}Policy: the same four actions for each kind of owner. */
  const inlinePolicyActions = (kind: PolicyOwnerKind): OwnerActions => {
    const { Kind, arnOf, require: requireOwner } = ownerOf(kind);
    const owner = (i: OwnerInput, req: ApiRequest, action: string) => {
      const n = i[`${Kind}Name`] as string;
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
      async [`Put${Kind}Policy`](i, req) {
        const n = owner(i, req, `Put${Kind}Policy`);
        await putInline(kind, n, i.PolicyName!, checkPolicy(i.PolicyDocument!, 'identity'));
        return undefined;
      },
      [`Get${Kind}Policy`](i, req) {
        const n = owner(i, req, `Get${Kind}Policy`);
        return { [`${Kind}Name`]: n, PolicyName: i.PolicyName, PolicyDocument: encodeURIComponent(existing(n, i.PolicyName!)) };
      },
      [`List${Kind}Policies`](i, req) {
        const n = owner(i, req, `List${Kind}Policies`);
        const { out, ...rest } = page(i, store.listPolicies(kind, n), (x) => x);
        return { PolicyNames: out, ...rest };
      },
      async [`Delete${Kind}Policy`](i, req) {
        const n = owner(i, req, `Delete${Kind}Policy`);
        existing(n, i.PolicyName!);
        await store.deletePolicy(kind, n, i.PolicyName!);
        return undefined;
      },
    };
  };

  /** Attach/Detach/ListAttached{User,Group,Role}Policies, authorized on the user, group or role as in AWS. */
  const attachedPolicyActions = (kind: PolicyOwnerKind): OwnerActions => {
    const { Kind, arnOf, require: requireOwner } = ownerOf(kind);
    const owner = (i: OwnerInput, req: ApiRequest, action: string, policyArn?: string) => {
      const n = i[`${Kind}Name`] as string;
      allow(req, action, arnOf(n), policyArn === undefined ? undefined : { 'iam:PolicyARN': policyArn });
      requireOwner(n);
      return n;
    };
    return {
      async [`Attach${Kind}Policy`](i, req) {
        const arn = i.PolicyArn!;
        const n = owner(i, req, `Attach${Kind}Policy`, arn);
        if (!store.getManagedPolicy(arn)) throw noSuchEntity(`Policy ${arn} does not exist or is not attachable.`);
        const attached = store.attachedPolicies(kind, n);
        if (!attached.some((a) => a.arn === arn) && attached.length >= MAX_ATTACHED_POLICIES) {
          throw limitExceeded(`Cannot exceed quota for PoliciesPer${Kind}: ${MAX_ATTACHED_POLICIES}`);
        }
        await store.attachPolicy(kind, n, arn);
        return undefined;
      },
      async [`Detach${Kind}Policy`](i, req) {
        const arn = i.PolicyArn!;
        const n = owner(i, req, `Detach${Kind}Policy`, arn);
        if (!store.attachedPolicies(kind, n).some((a) => a.arn === arn)) throw noSuchEntity(`Policy ${arn} was not found.`);
        await store.detachPolicy(kind, n, arn);
        return undefined;
      },
      [`ListAttached${Kind}Policies`](i, req) {
        const n = owner(i, req, `ListAttached${Kind}Policies`);
        const prefix = i.PathPrefix ?? '/';
        const { out, ...rest } = page(i, store.attachedPolicies(kind, n).filter((a) => a.path.startsWith(prefix)), (a) => a.name);
        return { AttachedPolicies: out.map((a) => ({ PolicyName: a.name, PolicyArn: a.arn })), ...rest };
      },
    };
  };

  const managedPolicyActions: QueryActions<IamInputs> = {
    async CreatePolicy(i, req) {
      const at = i.Path ?? '/';
      const arn = store.managedPolicyArn(i.PolicyName, at);
      allow(req, 'CreatePolicy', arn);
      const doc = checkPolicy(i.PolicyDocument, 'identity');
      if (minifiedSize(doc) > MAX_MANAGED_POLICY_BYTES) throw limitExceeded(`Cannot exceed quota for PolicySize: ${MAX_MANAGED_POLICY_BYTES}`);
      const taken = `A policy called ${i.PolicyName} already exists. Duplicate names are not allowed.`;
      if (store.managedPolicyNameTaken(i.PolicyName)) throw alreadyExists(taken);
      return { Policy: policyShape(await unlessTaken(store.createManagedPolicy(i.PolicyName, at, doc, i.Description), taken)) };
    },
    GetPolicy(i, req) {
      allow(req, 'GetPolicy', i.PolicyArn);
      return { Policy: policyShape(requirePolicy(i.PolicyArn), true) };
    },
    ListPolicies(i, req) {
      allow(req, 'ListPolicies', `arn:aws:iam::${acct}:policy/*`);
      const prefix = i.PathPrefix ?? '/';
      // No AWS-managed policies exist here, and none is used as a permissions boundary.
      const all = i.Scope === 'AWS' || i.PolicyUsageFilter === 'PermissionsBoundary' ? [] : store.listManagedPolicies();
      const shown = all.map((m) => policyShape(m)).filter((m) => m.Path.startsWith(prefix) && (!i.OnlyAttached || m.AttachmentCount > 0));
      const { out, ...rest } = page(i, shown, (m) => m.PolicyName);
      return { Policies: out, ...rest };
    },
    async DeletePolicy(i, req) {
      const arn = i.PolicyArn;
      allow(req, 'DeletePolicy', arn);
      const m = requirePolicy(arn);
      if (store.policyAttachments(arn).length > 0) throw deleteConflict('Cannot delete a policy attached to entities.');
      if (store.policyVersions(m).length > 1) {
        throw deleteConflict(
          "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.",
        );
      }
      await store.deleteManagedPolicy(arn);
      return undefined;
    },
    async CreatePolicyVersion(i, req) {
      allow(req, 'CreatePolicyVersion', i.PolicyArn);
      const m = requirePolicy(i.PolicyArn);
      const doc = checkPolicy(i.PolicyDocument, 'identity');
      if (minifiedSize(doc) > MAX_MANAGED_POLICY_BYTES) throw limitExceeded(`Cannot exceed quota for PolicySize: ${MAX_MANAGED_POLICY_BYTES}`);
      if (store.policyVersions(m).length >= MAX_POLICY_VERSIONS) {
        throw limitExceeded(`A managed policy can have up to ${MAX_POLICY_VERSIONS} versions. Before you create a new version, you must delete an existing version.`);
      }
      const v = await store.createPolicyVersion(m, doc, i.SetAsDefault ?? false);
      return { PolicyVersion: { VersionId: v.version_id, IsDefaultVersion: v.is_default, CreateDate: v.create_date } };
    },
    GetPolicyVersion(i, req) {
      const arn = i.PolicyArn;
      allow(req, 'GetPolicyVersion', arn);
      const m = store.getManagedPolicy(arn);
      const v = m && store.policyVersions(m).find((x) => x.version_id === i.VersionId);
      if (!v) throw noSuchEntity(`Policy ${arn} version ${i.VersionId} does not exist or is not attachable.`);
      return { PolicyVersion: { Document: encodeURIComponent(v.document), VersionId: v.version_id, IsDefaultVersion: v.is_default, CreateDate: v.create_date } };
    },
    ListPolicyVersions(i, req) {
      allow(req, 'ListPolicyVersions', i.PolicyArn);
      const versions = store.policyVersions(requirePolicy(i.PolicyArn));
      // Newest first, as AWS lists them; the marker is the version number (fixed width for ordering).
      const { out, ...rest } = page(i, versions, (v) => String(1e9 - Number(v.version_id.slice(1))).padStart(10, '0'));
      return { Versions: out.map((v) => ({ VersionId: v.version_id, IsDefaultVersion: v.is_default, CreateDate: v.create_date })), ...rest };
    },
    async DeletePolicyVersion(i, req) {
      const arn = i.PolicyArn;
      allow(req, 'DeletePolicyVersion', arn);
      const m = requirePolicy(arn);
      const v = store.policyVersions(m).find((x) => x.version_id === i.VersionId);
      if (!v) throw noSuchEntity(`Policy ${arn} version ${i.VersionId} does not exist or is not deletable.`);
      if (v.is_default) throw deleteConflict('Cannot delete the default version of a policy.');
      await store.deletePolicyVersion(m, i.VersionId);
      return undefined;
    },
    async SetDefaultPolicyVersion(i, req) {
      const arn = i.PolicyArn;
      allow(req, 'SetDefaultPolicyVersion', arn);
      const m = requirePolicy(arn);
      if (!store.policyVersions(m).some((x) => x.version_id === i.VersionId)) throw noSuchEntity(`Policy ${arn} version ${i.VersionId} does not exist or is not attachable.`);
      await store.setDefaultPolicyVersion(m, i.VersionId);
      return undefined;
    },
    ListEntitiesForPolicy(i, req) {
      const arn = i.PolicyArn;
      allow(req, 'ListEntitiesForPolicy', arn);
      requirePolicy(arn);
      const filter = i.EntityFilter;
      const prefix = i.PathPrefix ?? '/';
      const wanted = (k: PolicyOwnerKind) => filter === undefined || filter === 'LocalManagedPolicy' || filter.toLowerCase() === k;
      const entities = store
        .policyAttachments(arn)
        .filter((a) => wanted(a.kind))
        .map((a) => ({ ...a, row: a.kind === 'user' ? store.getUser(a.owner) : a.kind === 'group' ? store.getGroup(a.owner) : store.getRole(a.owner) }))
        .filter((a) => a.row && a.row.path.startsWith(prefix));
      const { out, ...rest } = page(i, entities, (a) => `${a.kind}\n${a.owner}`);
      const of = (k: PolicyOwnerKind) => out.filter((a) => a.kind === k);
      return {
        PolicyGroups: of('group').map((a) => ({ GroupName: a.owner, GroupId: (a.row as GroupRow).group_id })),
        PolicyUsers: of('user').map((a) => ({ UserName: a.owner, UserId: (a.row as UserRow).user_id })),
        PolicyRoles: of('role').map((a) => ({ RoleName: a.owner, RoleId: (a.row as RoleRow).role_id })),
        ...rest,
      };
    },
  };

  const groupActions: QueryActions<IamInputs> = {
    async CreateGroup(i, req) {
      const n = i.GroupName;
      const at = i.Path ?? '/';
      allow(req, 'CreateGroup', groupArnOf(n, at));
      const taken = `Group with name ${n} already exists.`;
      if (store.groupNameTaken(n)) throw alreadyExists(taken);
      return { Group: groupShape(await unlessTaken(store.createGroup(n, at), taken)) };
    },
    GetGroup(i, req) {
      const n = i.GroupName;
      allow(req, 'GetGroup', groupArnOf(n));
      const g = requireGroup(n);
      const { out, ...rest } = page(i, store.groupMembers(n), (u) => u.name);
      return { Group: groupShape(g), Users: out.map(userShape), ...rest };
    },
    ListGroups(i, req) {
      allow(req, 'ListGroups', groupArnOf('*', '/'));
      const prefix = i.PathPrefix ?? '/';
      const { out, ...rest } = page(i, store.listGroups().filter((g) => g.path.startsWith(prefix)), (g) => g.name);
      return { Groups: out.map(groupShape), ...rest };
    },
    async DeleteGroup(i, req) {
      const n = i.GroupName;
      allow(req, 'DeleteGroup', groupArnOf(n));
      requireGroup(n);
      if (store.groupMembers(n).length > 0) throw deleteConflict('Cannot delete entity, must remove users from group first.');
      if (store.attachedPolicies('group', n).length > 0) throw deleteConflict('Cannot delete entity, must detach all policies first.');
      if (store.listPolicies('group', n).length > 0) throw deleteConflict('Cannot delete entity, must delete policies first.');
      await store.deleteGroup(n);
      return undefined;
    },
    async AddUserToGroup(i, req) {
      const { GroupName: g, UserName: u } = i;
      allow(req, 'AddUserToGroup', groupArnOf(g));
      requireGroup(g);
      requireUser(u);
      const groups = store.groupsForUser(u);
      if (!groups.some((x) => x.name === g) && groups.length >= MAX_GROUPS_PER_USER) throw limitExceeded(`Cannot exceed quota for GroupsPerUser: ${MAX_GROUPS_PER_USER}`);
      await store.addUserToGroup(g, u);
      return undefined;
    },
    async RemoveUserFromGroup(i, req) {
      const { GroupName: g, UserName: u } = i;
      allow(req, 'RemoveUserFromGroup', groupArnOf(g));
      requireGroup(g);
      requireUser(u);
      if (!store.groupsForUser(u).some((x) => x.name === g)) throw noSuchEntity(`The user with name ${u} cannot be found in group ${g}.`);
      await store.removeUserFromGroup(g, u);
      return undefined;
    },
    ListGroupsForUser(i, req) {
      const u = i.UserName;
      allow(req, 'ListGroupsForUser', userArnOf(u));
      requireUser(u);
      const { out, ...rest } = page(i, store.groupsForUser(u), (g) => g.name);
      return { Groups: out.map(groupShape), ...rest };
    },
  };

  const iamActions: QueryActions<IamInputs> = {
    async CreateUser(i, req) {
      const n = i.UserName;
      const at = i.Path ?? '/';
      allow(req, 'CreateUser', userArnOf(n, at));
      // IAM names are unique regardless of case: "Alice" would be another spelling of "alice".
      const taken = `User with name ${n} already exists.`;
      if (store.userNameTaken(n)) throw alreadyExists(taken);
      return { User: userShape(await unlessTaken(store.createUser(n, at), taken)) };
    },
    GetUser(i, req) {
      const n = i.UserName ?? caller(req);
      allow(req, 'GetUser', userArnOf(n));
      return { User: userShape(requireUser(n)) };
    },
    ListUsers(i, req) {
      allow(req, 'ListUsers', userArnOf('*', '/'));
      const prefix = i.PathPrefix ?? '/';
      const { out, ...rest } = page(i, store.listUsers().filter((u) => u.path.startsWith(prefix)), (u) => u.name);
      return { Users: out.map(userShape), ...rest };
    },
    async DeleteUser(i, req) {
      const n = i.UserName;
      allow(req, 'DeleteUser', userArnOf(n));
      requireUser(n);
      if (n === ADMIN_USER) throw deleteConflict('The bootstrap admin user cannot be deleted.');
      if (store.listAccessKeys(n).length > 0) throw deleteConflict('Cannot delete entity, must delete access keys first.');
      if (store.groupsForUser(n).length > 0) throw deleteConflict('Cannot delete entity, must remove user from all groups first.');
      if (store.attachedPolicies('user', n).length > 0) throw deleteConflict('Cannot delete entity, must detach all policies first.');
      if (store.listPolicies('user', n).length > 0) throw deleteConflict('Cannot delete entity, must delete policies first.');
      await store.deleteUser(n);
      return undefined;
    },
    async CreateAccessKey(i, req) {
      const n = i.UserName ?? caller(req);
      allow(req, 'CreateAccessKey', userArnOf(n));
      requireUser(n);
      if (store.listAccessKeys(n).length >= MAX_ACCESS_KEYS_PER_USER) {
        throw limitExceeded(`Cannot exceed quota for AccessKeysPerUser: ${MAX_ACCESS_KEYS_PER_USER}`);
      }
      const k = await store.createAccessKey(n);
      return { AccessKey: { UserName: n, AccessKeyId: k.accessKeyId, Status: 'Active', SecretAccessKey: k.secretAccessKey, CreateDate: k.createDate } };
    },
    ListAccessKeys(i, req) {
      const n = i.UserName ?? caller(req);
      allow(req, 'ListAccessKeys', userArnOf(n));
      requireUser(n);
      const { out, ...rest } = page(i, store.listAccessKeys(n), (k) => k.access_key_id);
      return {
        AccessKeyMetadata: out.map((k) => ({ UserName: k.user_name, AccessKeyId: k.access_key_id, Status: k.status, CreateDate: k.create_date })),
        ...rest,
      };
    },
    async UpdateAccessKey(i, req) {
      // Authorized before the key is looked up: otherwise NoSuchEntity versus AccessDenied would
      // tell any caller which key ids belong to which user.
      const user = i.UserName ?? caller(req);
      allow(req, 'UpdateAccessKey', userArnOf(user));
      const id = accessKey(i.AccessKeyId, store, user);
      // The model's enum also lists Expired, which only AWS sets (on keys it retires itself).
      if (i.Status === 'Expired') throw new QueryError('InvalidInput', 400, 'Access key status can only be set to Active or Inactive.');
      await store.setAccessKeyStatus(id.access_key_id, i.Status as 'Active' | 'Inactive');
      return undefined;
    },
    async DeleteAccessKey(i, req) {
      const user = i.UserName ?? caller(req);
      allow(req, 'DeleteAccessKey', userArnOf(user));
      const id = accessKey(i.AccessKeyId, store, user);
      await store.deleteAccessKey(id.access_key_id);
      return undefined;
    },
    async CreateRole(i, req) {
      const n = i.RoleName;
      const at = i.Path ?? '/';
      allow(req, 'CreateRole', roleArnOf(n, at));
      const trust = checkPolicy(i.AssumeRolePolicyDocument, 'trust');
      if (minifiedSize(trust) > MAX_TRUST_POLICY_BYTES) throw limitExceeded(`Cannot exceed quota for ACLSizePerRole: ${MAX_TRUST_POLICY_BYTES}`);
      const taken = `Role with name ${n} already exists.`;
      if (store.roleNameTaken(n)) throw alreadyExists(taken);
      return { Role: roleShape(await unlessTaken(store.createRole(n, trust, { path: at, description: i.Description, maxSessionDuration: i.MaxSessionDuration }), taken)) };
    },
    GetRole(i, req) {
      allow(req, 'GetRole', roleArnOf(i.RoleName));
      return { Role: roleShape(requireRole(i.RoleName)) };
    },
    ListRoles(i, req) {
      allow(req, 'ListRoles', roleArnOf('*', '/'));
      const prefix = i.PathPrefix ?? '/';
      const { out, ...rest } = page(i, store.listRoles().filter((r) => r.path.startsWith(prefix)), (r) => r.name);
      return { Roles: out.map(roleShape), ...rest };
    },
    async UpdateAssumeRolePolicy(i, req) {
      const n = i.RoleName;
      allow(req, 'UpdateAssumeRolePolicy', roleArnOf(n));
      requireRole(n);
      const trust = checkPolicy(i.PolicyDocument, 'trust');
      if (minifiedSize(trust) > MAX_TRUST_POLICY_BYTES) throw limitExceeded(`Cannot exceed quota for ACLSizePerRole: ${MAX_TRUST_POLICY_BYTES}`);
      await store.updateAssumeRolePolicy(n, trust);
      return undefined;
    },
    async DeleteRole(i, req) {
      const n = i.RoleName;
      allow(req, 'DeleteRole', roleArnOf(n));
      requireRole(n);
      if (store.attachedPolicies('role', n).length > 0) throw deleteConflict('Cannot delete entity, must detach all policies first.');
      if (store.listPolicies('role', n).length > 0) throw deleteConflict('Cannot delete entity, must delete policies first.');
      await store.deleteRole(n);
      return undefined;
    },
    ...managedPolicyActions,
    ...groupActions,
  };

  const iam: QueryService = {
    version: '2010-05-08',
    signingName: 'iam',
    xmlNamespace: 'https://iam.amazonaws.com/doc/2010-05-08/',
    model: iamModel,
    actions: {
      ...iamActions,
      ...inlinePolicyActions('user'),
      ...inlinePolicyActions('role'),
      ...inlinePolicyActions('group'),
      ...attachedPolicyActions('user'),
      ...attachedPolicyActions('group'),
      ...attachedPolicyActions('role'),
    },
  };

  /**
   * AssumeRole's session policy: the inline Policy and the default versions of the managed
   * policies named by PolicyArns, as one document (AWS evaluates them as one set). Undefined when
   * neither is given. Its packed size is checked against MAX_SESSION_POLICY_BYTES.
   */
  const sessionPolicy = (inline: string | undefined, policyArns: Array<{ arn?: string } | null> | undefined): { text: string; packedPercent: number } | undefined => {
    const statements: unknown[] = [];
    if (inline !== undefined) {
      const doc = checkPolicy(inline, 'identity');
      const parsed = JSON.parse(doc) as { Statement: unknown };
      statements.push(...(Array.isArray(parsed.Statement) ? parsed.Statement : [parsed.Statement]));
    }
    // The model sets no bound on PolicyArns; AWS's quota of 10 is a business rule.
    const arns = (policyArns ?? []).map((d) => d?.arn ?? '');
    if (arns.length > MAX_SESSION_POLICY_ARNS) {
      throw validation(`[${arns.slice(0, MAX_SESSION_POLICY_ARNS + 1).join(', ')}]`, 'policyArns', `Member must have length less than or equal to ${MAX_SESSION_POLICY_ARNS}`);
    }
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

  const stsActions: QueryActions<StsInputs> = {
    async AssumeRole(i, req) {
      const { RoleArn: roleArn, RoleSessionName: session, ExternalId: externalId } = i;
      const duration = i.DurationSeconds ?? DEFAULT_ROLE_SESSION_SECONDS;
      const policy = sessionPolicy(i.Policy, i.PolicyArns);
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
      const creds = await store.createTemporarySession({ kind: 'role', principal: role.name, principalId: role.role_id, arn, durationSeconds: duration, policy: policy?.text, chained });
      return {
        Credentials: credentialsShape(creds),
        AssumedRoleUser: { AssumedRoleId: `${role.role_id}:${session}`, Arn: arn },
        PackedPolicySize: policy?.packedPercent,
      };
    },
    // Unsigned, as in AWS: the token is the proof, the role's trust policy the permission.
    async AssumeRoleWithWebIdentity(i) {
      if (!federation) throw new QueryError('InvalidAction', 400, 'AssumeRoleWithWebIdentity is not available');
      const { RoleArn: roleArn, RoleSessionName: session, WebIdentityToken: token } = i;
      if (i.ProviderId !== undefined) throw new QueryError('InvalidParameterValue', 400, 'ProviderId (OAuth 2.0 access tokens) is not supported; send an OpenID Connect ID token');
      const duration = i.DurationSeconds ?? DEFAULT_ROLE_SESSION_SECONDS;
      const policy = sessionPolicy(i.Policy, i.PolicyArns);
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
      const creds = await store.createTemporarySession({ kind: 'role', principal: role.name, principalId: role.role_id, arn, durationSeconds: duration, policy: policy?.text, webIdentity: web });
      await federation.issued(web);
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
    async GetSessionToken(i, req) {
      const owner = store.keyOwner(req.caller!.accessKeyId)!;
      if (owner.temporary || owner.session || owner.kind !== 'user') throw accessDenied('Cannot call GetSessionToken with session credentials');
      const duration = i.DurationSeconds ?? DEFAULT_SESSION_TOKEN_SECONDS;
      const u = requireUser(owner.user);
      const creds = await store.createTemporarySession({ kind: 'user', principal: u.name, principalId: u.user_id, arn: store.userArn(u), durationSeconds: duration });
      return { Credentials: credentialsShape(creds) };
    },
    // Needs no permission, as in AWS: any valid key may ask who it is.
    GetCallerIdentity(_i, req) {
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
  };

  const sts: QueryService = {
    version: '2011-06-15',
    signingName: 'sts',
    xmlNamespace: 'https://sts.amazonaws.com/doc/2011-06-15/',
    model: stsModel,
    // The model's noAuth actions this service answers.
    unsignedActions: Object.values(stsModel.operations).filter((o) => o.unsigned && o.name === 'AssumeRoleWithWebIdentity').map((o) => o.name),
    actions: stsActions,
  };
  return [iam, sts];
}

const isoSeconds = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function accessKey(id: string, store: IamStore, user: string) {
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
