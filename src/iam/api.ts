// The IAM API (Query protocol, version 2010-05-08) for users, access keys, inline policies and
// roles, and STS GetCallerIdentity (2011-06-15): what `@aws-sdk/client-iam` and `aws iam` need to
// manage who may call Pinstream. Every action is authorized like any other API call.

import type { ApiRequest } from '../http/request.js';
import { QueryError, type QueryParams, type QueryService } from '../http/query.js';
import type { Authorizer } from './authorizer.js';
import { parsePolicy, PolicyError } from './policy.js';
import { ADMIN_USER, IamStore, MAX_ACCESS_KEYS_PER_USER, type RoleRow, type UserRow } from './store.js';

/** IAM quotas (AWS's defaults): aggregate inline policy size per user and per role. */
export const MAX_USER_POLICY_BYTES = 2048;
export const MAX_ROLE_POLICY_BYTES = 10_240;
export const MAX_TRUST_POLICY_BYTES = 2048;
export const DEFAULT_MAX_ITEMS = 100;

const NAME = /^[\w+=,.@-]+$/;

const noSuchEntity = (m: string) => new QueryError('NoSuchEntity', 404, m);
const alreadyExists = (m: string) => new QueryError('EntityAlreadyExists', 409, m);
const deleteConflict = (m: string) => new QueryError('DeleteConflict', 409, m);
const limitExceeded = (m: string) => new QueryError('LimitExceeded', 409, m);
const malformedPolicy = (m: string) => new QueryError('MalformedPolicyDocument', 400, m);
const validation = (value: string | undefined, member: string, constraint: string) =>
  new QueryError('ValidationError', 400, `1 validation error detected: Value '${value ?? 'null'}' at '${member}' failed to satisfy constraint: ${constraint}`);

export function iamServices(store: IamStore, authorizer: Authorizer): QueryService[] {
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
  const allow = (req: ApiRequest, action: string, resource: string) => authorizer.authorize(req, `iam:${action}`, resource);

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

  const putInline = (kind: 'user' | 'role', owner: string, policyName: string, doc: string) => {
    const limit = kind === 'user' ? MAX_USER_POLICY_BYTES : MAX_ROLE_POLICY_BYTES;
    const others = store.listPolicies(kind, owner).filter((n) => n !== policyName);
    const total = others.reduce((sum, n) => sum + minifiedSize(store.getPolicy(kind, owner, n)!), minifiedSize(doc));
    if (total > limit) throw limitExceeded(`Maximum policy size of ${limit} bytes exceeded for ${kind} ${owner}`);
    store.putPolicy(kind, owner, policyName, doc);
  };

  /** Put/Get/List/Delete{User,Role}Policy: the same four actions for both kinds of owner. */
  const inlinePolicyActions = (kind: 'user' | 'role'): Record<string, (p: QueryParams, req: ApiRequest) => unknown> => {
    const Kind = kind === 'user' ? 'User' : 'Role';
    const arnOf = kind === 'user' ? userArnOf : roleArnOf;
    const requireOwner = kind === 'user' ? requireUser : requireRole;
    const owner = (p: QueryParams, req: ApiRequest, action: string) => {
      const n = name(p, `${Kind}Name`, `${kind}Name`);
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
        if (store.listPolicies('role', n).length > 0) throw deleteConflict('Cannot delete entity, must delete policies first.');
        store.deleteRole(n);
        return undefined;
      },
      ...inlinePolicyActions('role'),
    },
  };

  const sts: QueryService = {
    version: '2011-06-15',
    signingName: 'sts',
    xmlNamespace: 'https://sts.amazonaws.com/doc/2011-06-15/',
    actions: {
      // Needs no permission, as in AWS: any valid key may ask who it is.
      GetCallerIdentity(_p, req) {
        const owner = store.keyOwner(req.caller!.accessKeyId)!;
        if (owner.kind === 'role') {
          const r = requireRole(owner.user);
          return { UserId: `${r.role_id}:${owner.arn.slice(owner.arn.lastIndexOf('/') + 1)}`, Account: acct, Arn: owner.arn };
        }
        const u = requireUser(caller(req));
        return { UserId: u.user_id, Account: acct, Arn: store.userArn(u) };
      },
    },
  };
  return [iam, sts];
}

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
