// The Cognito Identity API (awsJson 1.1, X-Amz-Target AWSCognitoIdentityService.*, signing name
// cognito-identity) on the shared port: identity pools, their roles, identities, and what devices
// call without a signature (GetId, GetCredentialsForIdentity, GetOpenIdToken, UnlinkIdentity; the
// model's noAuth operations). GetCredentialsForIdentity is Cognito's enhanced flow: it assumes
// the pool's unauthenticated or authenticated role for the identity, as STS
// AssumeRoleWithWebIdentity would (the role's trust policy must allow the Federated principal
// cognito-identity.amazonaws.com with sts:AssumeRoleWithWebIdentity for this pool's aud and the
// identity's amr), and answers ASIA… temporary credentials (one hour) through the same session
// machinery as STS. Authenticated identities come from OpenID Connect providers configured on the
// server (config oidcProviders) and named on the pool (OpenIdConnectProviderARNs or
// SupportedLoginProviders). Signed operations are authorized as cognito-identity:<Operation> on
// the pool's ARN. RoleMappings and developer-authenticated identities are not supported (refused,
// saying so). Input shapes (types, required members, lengths, patterns, the Logins and Roles maps'
// keys and sizes) are the model's, checked before a handler runs (src/models/validate.ts), which
// never echoes a login token (a sensitive shape); the handlers keep Cognito's business rules.

import { ServiceError, type JsonRpcService, type Operations } from '../http/awsjson.js';
import type { Authorizer } from '../iam/authorizer.js';
import { evaluate } from '../iam/policy.js';
import type { IamStore, RoleRow, WebIdentity } from '../iam/store.js';
import { model } from '../models/generated/cognito-identity.js';
import type { Inputs } from '../models/generated/cognito-identity-inputs.js';
import { COGNITO_PROVIDER, TokenError, type CognitoTokens, type OidcProvider } from './tokens.js';
import { LimitError, type Identity, type IdentityPools, type Pool, type PoolConfig } from './pools.js';

export const COGNITO_TARGET_PREFIX = model.metadata.targetPrefix!;
export const COGNITO_SIGNING_NAME = model.metadata.signingName ?? model.metadata.endpointPrefix;
/** Credentials from GetCredentialsForIdentity last an hour, as Cognito's. */
export const IDENTITY_CREDENTIALS_SECONDS = 3600;
/** The session name AWS gives Cognito's role sessions (assumed-role/ROLE/CognitoIdentityCredentials). */
export const COGNITO_SESSION_NAME = 'CognitoIdentityCredentials';
/** Cognito Identity's requests are small: the largest is a Logins map of ten 50,000-character tokens. */
export const MAX_COGNITO_REQUEST_BYTES = 1024 * 1024;
export const UNAUTHENTICATED = 'unauthenticated';
export const AUTHENTICATED = 'authenticated';

/** The operations AWS answers without a signature, from the model. */
export const UNSIGNED_OPERATIONS = Object.values(model.operations)
  .filter((o) => o.unsigned)
  .map((o) => o.name);

const err = (code: string, message: string) => new ServiceError(code, message);
const notFound = (m: string) => err('ResourceNotFoundException', m);
const notAuthorized = (m: string) => err('NotAuthorizedException', m);
const invalidParameter = (m: string) => err('InvalidParameterException', m);
const badPoolConfig = () => err('InvalidIdentityPoolConfigurationException', 'Invalid identity pool configuration. Check assigned IAM roles for this pool.');
const poolNotFound = (id: string) => notFound(`IdentityPool '${id}' not found.`);
const identityNotFound = (id: string) => notFound(`Identity '${id}' not found.`);

export interface CognitoDeps {
  pools: IdentityPools;
  iam: IamStore;
  authorizer: Authorizer;
  tokens: CognitoTokens;
  /** Configured OIDC providers by name (issuer without https://). */
  oidc: ReadonlyMap<string, OidcProvider>;
}

/** What a pool's Logins map proved: the subject per provider and the identity's amr. */
interface VerifiedLogins {
  subjects: Record<string, string>;
  amr: string[];
}

export function cognitoService(d: CognitoDeps): JsonRpcService {
  const { pools, iam, authorizer, tokens, oidc } = d;
  const acct = iam.accountId;

  const requirePool = (id: string): Pool => {
    const p = pools.getPool(id);
    if (!p) throw poolNotFound(id);
    return p;
  };
  const requireIdentity = async (id: string): Promise<Identity> => {
    const i = await pools.getIdentity(id);
    if (!i) throw identityNotFound(id);
    return i;
  };
  const limited = async <T>(f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      if (e instanceof LimitError) throw err(e.code, e.message);
      throw e;
    }
  };

  /** The pool's audiences for a login provider name, or why it cannot be used. */
  const providerFor = (pool: Pool, name: string): { provider: OidcProvider; audiences: string[] } => {
    const provider = oidc.get(name);
    let audiences: string[] | undefined;
    if (pool.SupportedLoginProviders && Object.hasOwn(pool.SupportedLoginProviders, name)) {
      audiences = pool.SupportedLoginProviders[name].split(',').map((a) => a.trim()).filter((a) => a !== '');
    } else if (pool.OpenIdConnectProviderARNs?.includes(`arn:aws:iam::${acct}:oidc-provider/${name}`)) {
      audiences = provider?.config.clientIds;
    }
    if (audiences === undefined) throw notAuthorized(`Invalid login token. The identity pool ${pool.IdentityPoolId} has no login provider ${name}.`);
    if (!provider) throw notAuthorized(`Invalid login token. No OpenID Connect provider ${name} is configured on this server (oidcProviders).`);
    return { provider, audiences };
  };

  const verifyLogins = async (pool: Pool, logins: Record<string, string>): Promise<VerifiedLogins> => {
    const subjects: Record<string, string> = Object.create(null);
    for (const [name, token] of Object.entries(logins)) {
      const { provider, audiences } = providerFor(pool, name);
      try {
        subjects[name] = (await provider.verify(token, audiences)).sub;
      } catch (e) {
        if (!(e instanceof TokenError)) throw e;
        throw notAuthorized(e.expired ? `Invalid login token. Token expired: ${name}` : `Invalid login token. ${capitalize(e.message)}.`);
      }
    }
    const names = Object.keys(subjects);
    return { subjects, amr: names.length === 0 ? [UNAUTHENTICATED] : [AUTHENTICATED, ...names] };
  };

  /**
   * Makes sure an identity's logins are its own: each verified login is linked to it already, or
   * to no identity (then it is linked now); a login of another identity is a conflict. An
   * identity with logins needs at least one of them to act authenticated.
   */
  const claim = async (identity: Identity, v: VerifiedLogins): Promise<boolean> => {
    const fresh: Record<string, string> = Object.create(null);
    for (const [provider, subject] of Object.entries(v.subjects)) {
      const owner = await pools.identityForLogin(identity.poolId, provider, subject);
      if (owner !== undefined && owner !== identity.id) throw err('ResourceConflictException', `Logins don't match. The login for ${provider} belongs to another identity.`);
      if (owner === undefined) fresh[provider] = subject;
    }
    await pools.link(identity, fresh);
    return Object.keys(v.subjects).length > 0;
  };

  const poolShape = (p: Pool) => ({
    IdentityPoolId: p.IdentityPoolId,
    IdentityPoolName: p.IdentityPoolName,
    AllowUnauthenticatedIdentities: p.AllowUnauthenticatedIdentities,
    AllowClassicFlow: p.AllowClassicFlow,
    SupportedLoginProviders: p.SupportedLoginProviders,
    DeveloperProviderName: p.DeveloperProviderName,
    OpenIdConnectProviderARNs: p.OpenIdConnectProviderARNs,
    IdentityPoolTags: p.IdentityPoolTags,
  });

  const identityShape = (i: Identity) => ({
    IdentityId: i.id,
    Logins: Object.keys(i.logins),
    CreationDate: new Date(i.createDate),
    LastModifiedDate: new Date(i.lastModified),
  });

  /** CreateIdentityPool's and UpdateIdentityPool's configuration members, checked against what this server supports. */
  const poolConfig = (input: Inputs['CreateIdentityPool'], previous?: Pool): PoolConfig => {
    for (const unsupported of ['CognitoIdentityProviders', 'SamlProviderARNs'] as const) {
      if ((input[unsupported]?.length ?? 0) > 0) {
        throw invalidParameter(`${unsupported} are not supported by Pinstream; use OpenIdConnectProviderARNs or SupportedLoginProviders with a configured OIDC provider`);
      }
    }
    const developer = input.DeveloperProviderName;
    if (developer !== undefined && developer !== previous?.DeveloperProviderName) {
      throw invalidParameter('Developer-authenticated identities (DeveloperProviderName) are not supported by Pinstream');
    }
    const oidcArns = input.OpenIdConnectProviderARNs;
    for (const arn of oidcArns ?? []) {
      const m = /^arn:aws:iam::(\d{12}):oidc-provider\/(.+)$/.exec(arn);
      if (!m || m[1] !== acct) throw invalidParameter(`${arn} is not an OpenID Connect provider ARN of this account (arn:aws:iam::${acct}:oidc-provider/NAME)`);
      if (!oidc.has(m[2])) throw invalidParameter(`No OpenID Connect provider ${m[2]} is configured on this server (oidcProviders)`);
    }
    const logins = input.SupportedLoginProviders;
    for (const name of Object.keys(logins ?? {})) {
      if (!oidc.has(name)) throw invalidParameter(`No OpenID Connect provider ${name} is configured on this server (oidcProviders); SupportedLoginProviders must name one`);
    }
    return {
      AllowUnauthenticatedIdentities: input.AllowUnauthenticatedIdentities,
      AllowClassicFlow: input.AllowClassicFlow,
      SupportedLoginProviders: logins,
      DeveloperProviderName: developer,
      OpenIdConnectProviderARNs: oidcArns,
      IdentityPoolTags: input.IdentityPoolTags,
      Roles: previous?.Roles,
    };
  };

  /** The role a pool gives an identity (authenticated or not), and the checks of its trust policy. */
  const roleFor = (pool: Pool, web: WebIdentity): RoleRow => {
    const arn = pool.Roles?.[web.amr?.[0] === AUTHENTICATED ? AUTHENTICATED : UNAUTHENTICATED];
    const role = arn === undefined ? undefined : iam.roleByArn(arn);
    if (!role) throw badPoolConfig();
    const decision = evaluate([iam.trustPolicy(role)], {
      action: 'sts:AssumeRoleWithWebIdentity',
      resource: iam.roleArn(role),
      principal: { type: 'Federated', id: COGNITO_PROVIDER },
      context: { [`${COGNITO_PROVIDER}:aud`]: web.aud, [`${COGNITO_PROVIDER}:sub`]: web.sub, [`${COGNITO_PROVIDER}:amr`]: web.amr },
    });
    if (decision !== 'Allow') throw badPoolConfig();
    return role;
  };

  /** Resolves the identity and its logins for the unsigned operations; returns the web identity. */
  const actAs = async (input: { IdentityId: string; Logins?: Record<string, string> }): Promise<{ identity: Identity; pool: Pool; web: WebIdentity }> => {
    const id = input.IdentityId;
    const identity = await requireIdentity(id);
    const pool = requirePool(identity.poolId);
    const verified = await verifyLogins(pool, input.Logins ?? {});
    const authenticated = await claim(identity, verified);
    if (!authenticated) {
      if (Object.keys(identity.logins).length > 0) throw notAuthorized(`Access to Identity '${id}' is forbidden.`);
      if (!pool.AllowUnauthenticatedIdentities) throw notAuthorized('Unauthenticated access is not supported for this identity pool.');
    }
    return { identity, pool, web: { provider: COGNITO_PROVIDER, sub: identity.id, aud: pool.IdentityPoolId, amr: verified.amr, poolId: pool.IdentityPoolId } };
  };

  const operations: Operations<Inputs> = {
    async CreateIdentityPool(input) {
      const config = poolConfig(input);
      return poolShape(await limited(() => pools.createPool(input.IdentityPoolName, config)));
    },
    DescribeIdentityPool(input) {
      return poolShape(requirePool(input.IdentityPoolId));
    },
    ListIdentityPools(input, req) {
      const max = input.MaxResults;
      const after = input.NextToken ?? '';
      // Only the pools the caller may describe: a list is no way to learn another tenant's pools.
      const page = pools.listPools(after, max + 1);
      const more = page.length > max;
      const shown = page.slice(0, max);
      return {
        IdentityPools: shown
          .filter((p) => authorizer.allowed(req, 'cognito-identity:DescribeIdentityPool', pools.arn(p.IdentityPoolId)))
          .map((p) => ({ IdentityPoolId: p.IdentityPoolId, IdentityPoolName: p.IdentityPoolName })),
        NextToken: more ? shown[shown.length - 1].IdentityPoolId : undefined,
      };
    },
    async UpdateIdentityPool(input) {
      const previous = requirePool(input.IdentityPoolId);
      const updated: Pool = { IdentityPoolId: previous.IdentityPoolId, IdentityPoolName: input.IdentityPoolName, ...poolConfig(input, previous) };
      await pools.updatePool(updated);
      return poolShape(updated);
    },
    async DeleteIdentityPool(input) {
      const p = requirePool(input.IdentityPoolId);
      await pools.deletePool(p.IdentityPoolId);
      return undefined;
    },
    async SetIdentityPoolRoles(input, req) {
      const pool = requirePool(input.IdentityPoolId);
      // The model's key pattern, (un)?authenticated, has admitted only the two role types.
      const roles = input.Roles;
      for (const arn of Object.values(roles)) {
        if (!iam.roleByArn(arn)) throw invalidParameter(`Role ${arn} does not exist in account ${acct}`);
        // As in AWS: whoever gives a pool a role passes it to Cognito, so another tenant's role
        // cannot become the guest role of one's own pool.
        authorizer.passRole(req, arn, COGNITO_PROVIDER);
      }
      if (Object.keys(input.RoleMappings ?? {}).length > 0) throw invalidParameter('RoleMappings are not supported by Pinstream');
      await pools.updatePool({ ...pool, Roles: { ...roles } });
      return undefined;
    },
    GetIdentityPoolRoles(input) {
      const pool = requirePool(input.IdentityPoolId);
      return { IdentityPoolId: pool.IdentityPoolId, Roles: pool.Roles ?? {} };
    },
    async GetId(input) {
      const pool = requirePool(input.IdentityPoolId);
      if (input.AccountId !== undefined && input.AccountId !== acct) throw poolNotFound(pool.IdentityPoolId);
      const verified = await verifyLogins(pool, input.Logins ?? {});
      const providers = Object.entries(verified.subjects);
      if (providers.length === 0) {
        if (!pool.AllowUnauthenticatedIdentities) throw notAuthorized('Unauthenticated access is not supported for this identity pool.');
        return { IdentityId: (await limited(() => pools.createIdentity(pool.IdentityPoolId, {}))).id };
      }
      // The same login is the same identity, on any device.
      const found = await Promise.all(providers.map(([p, s]) => pools.identityForLogin(pool.IdentityPoolId, p, s)));
      const owners = new Set(found.filter((x): x is string => x !== undefined));
      if (owners.size > 1) throw err('ResourceConflictException', 'Logins belong to different identities of this identity pool.');
      if (owners.size === 1) {
        const identity = await requireIdentity([...owners][0]);
        await claim(identity, verified);
        return { IdentityId: identity.id };
      }
      return { IdentityId: (await limited(() => pools.createIdentity(pool.IdentityPoolId, verified.subjects))).id };
    },
    async GetCredentialsForIdentity(input) {
      const custom = input.CustomRoleArn;
      const { identity, pool, web } = await actAs(input);
      const role = roleFor(pool, web);
      // A custom role is chosen through role mappings (not supported): only the pool's own role may be named.
      if (custom !== undefined && custom !== iam.roleArn(role)) throw invalidParameter('CustomRoleArn must be the identity pool\'s role for this identity: Pinstream does not support role mappings');
      const creds = await iam.createTemporarySession({
        kind: 'role',
        principal: role.name,
        principalId: role.role_id,
        arn: `arn:aws:sts::${acct}:assumed-role/${role.name}/${COGNITO_SESSION_NAME}`,
        durationSeconds: IDENTITY_CREDENTIALS_SECONDS,
        webIdentity: web,
      });
      await iam.trimIdentitySessions(identity.id, pools.limits.maxSessionsPerIdentity);
      return {
        IdentityId: identity.id,
        Credentials: { AccessKeyId: creds.accessKeyId, SecretKey: creds.secretAccessKey, SessionToken: creds.sessionToken, Expiration: new Date(creds.expiration) },
      };
    },
    async GetOpenIdToken(input) {
      const { identity, pool, web } = await actAs(input);
      // AWS refuses only when the pool says false; a pool created without the flag still answers.
      if (pool.AllowClassicFlow === false) throw invalidParameter('Basic (classic) flow is not enabled, please use enhanced flow.');
      return { IdentityId: identity.id, Token: await tokens.issue(identity.id, pool.IdentityPoolId, web.amr!) };
    },
    async UnlinkIdentity(input) {
      const { identity, web } = await actAs(input);
      // Unlinking needs proof of a login of the identity: an unauthenticated caller has none.
      if (web.amr?.[0] !== AUTHENTICATED) throw notAuthorized(`Access to Identity '${identity.id}' is forbidden.`);
      await pools.unlink(identity, input.LoginsToRemove);
      return undefined;
    },
    async DescribeIdentity(input, req) {
      // Authorized here, once the identity is read: an identity that does not exist is authorized
      // as one of a pool the caller cannot name, so a caller refused on another tenant's identity
      // learns no more from a missing one.
      const identity = await pools.getIdentity(input.IdentityId);
      authorizer.authorize(req, 'cognito-identity:DescribeIdentity', identity ? pools.arn(identity.poolId) : pools.collectionArn());
      if (!identity) throw identityNotFound(input.IdentityId);
      return identityShape(identity);
    },
    async ListIdentities(input) {
      const pool = requirePool(input.IdentityPoolId);
      const max = input.MaxResults;
      const after = input.NextToken ?? '';
      const page = await pools.listIdentities(pool.IdentityPoolId, after, max + 1);
      const more = page.length > max;
      const shown = page.slice(0, max);
      return { IdentityPoolId: pool.IdentityPoolId, Identities: shown.map(identityShape), NextToken: more ? shown[shown.length - 1].id : undefined };
    },
    async DeleteIdentities(input, req) {
      const ids = input.IdentityIdsToDelete;
      const unprocessed: Array<{ IdentityId: string; ErrorCode: string }> = [];
      for (const id of ids) {
        const identity = await pools.getIdentity(id);
        // Refused alike whether it exists or not, so the answer tells a caller nothing of other pools.
        if (!authorizer.allowed(req, 'cognito-identity:DeleteIdentities', identity ? pools.arn(identity.poolId) : pools.collectionArn())) {
          unprocessed.push({ IdentityId: id, ErrorCode: 'AccessDenied' });
          continue;
        }
        // One that does not exist is gone already.
        if (identity) await pools.deleteIdentity(id);
      }
      return { UnprocessedIdentityIds: unprocessed };
    },
  };

  const unsigned = new Set(UNSIGNED_OPERATIONS);
  return {
    targetPrefix: COGNITO_TARGET_PREFIX,
    signingServices: [COGNITO_SIGNING_NAME],
    maxRequestBytes: MAX_COGNITO_REQUEST_BYTES,
    model,
    operations,
    unsignedOperations: UNSIGNED_OPERATIONS.filter((o) => Object.hasOwn(operations, o)),
    authorize(op, input, req) {
      if (unsigned.has(op)) return;
      const action = `cognito-identity:${op}`;
      switch (op) {
        case 'CreateIdentityPool':
        case 'ListIdentityPools':
          authorizer.authorize(req, action, pools.collectionArn());
          return;
        case 'DeleteIdentities':
          // Per identity, in the operation: refused ones come back as UnprocessedIdentityIds.
          return;
        case 'DescribeIdentity':
          // In the operation, once the identity is read (the store is async).
          return;
        default: {
          const id = typeof input.IdentityPoolId === 'string' ? input.IdentityPoolId : '';
          authorizer.authorize(req, action, pools.arn(id));
        }
      }
    },
  };
}

const capitalize = (s: string) => s[0].toUpperCase() + s.slice(1);

