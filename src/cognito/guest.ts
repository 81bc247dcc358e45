// Guest access for a project in one step (CLI `pinstream identity-pool create --app`, the console's
// button, the extension route POST /v1/apps/{id}/guest-access): an identity pool allowing
// unauthenticated identities, its unauthenticated role trusting Cognito for that pool only (as
// Cognito's console writes it), and a role policy allowing nothing but mobiletargeting:PutEvents
// and mobiletargeting:UpdateEndpoint on the project (Amplify's generated policy:
// arn:aws:mobiletargeting:REGION:ACCT:apps/APP_ID*). Running it again repairs the same pool and
// role. The caller must be allowed each step and the two actions themselves: the role can do no
// more than its maker. The answer is the configuration an app needs.

import type { ApiRequest } from '../http/request.js';
import type { Authorizer } from '../iam/authorizer.js';
import type { IamStore } from '../iam/store.js';
import { AUTHENTICATED, UNAUTHENTICATED } from './api.js';
import type { IdentityPools, Pool } from './pools.js';
import { COGNITO_PROVIDER } from './tokens.js';

export const GUEST_POLICY_NAME = 'PinpointGuestEventsPolicy';
/** What a device may do with guest credentials, as Amplify's generated unauthenticated policy. */
export const GUEST_ACTIONS = ['mobiletargeting:PutEvents', 'mobiletargeting:UpdateEndpoint'] as const;

export const guestPoolName = (appId: string) => `pinstream-guest-${appId}`;
export const guestRoleName = (appId: string) => `pinstream-guest-${appId}`.slice(0, 64);

export interface GuestAccess {
  IdentityPoolId: string;
  Region: string;
  ApplicationId: string;
  UnauthenticatedRoleArn: string;
  Endpoints: { Pinpoint: string; CognitoIdentity: string };
  /** Amplify Gen 1 (aws-exports.js) settings. */
  AwsExports: Record<string, string>;
  /** Amplify Gen 2 (amplify_outputs.json) analytics and auth sections. */
  AmplifyOutputs: object;
}

export function guestTrustPolicy(poolId: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Federated: COGNITO_PROVIDER },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: {
          StringEquals: { [`${COGNITO_PROVIDER}:aud`]: poolId },
          'ForAnyValue:StringLike': { [`${COGNITO_PROVIDER}:amr`]: UNAUTHENTICATED },
        },
      },
    ],
  });
}

export function guestPolicy(region: string, accountId: string, appId: string): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: [...GUEST_ACTIONS], Resource: [`arn:aws:mobiletargeting:${region}:${accountId}:apps/${appId}*`] }],
  });
}

export async function createGuestAccess(
  d: { pools: IdentityPools; iam: IamStore; authorizer: Authorizer; appArn: (appId: string) => string },
  req: ApiRequest,
  appId: string,
  publicUrl: string,
): Promise<GuestAccess> {
  const { pools, iam, authorizer } = d;
  const region = pools.region;
  const roleName = guestRoleName(appId);
  const roleArn = `arn:aws:iam::${iam.accountId}:role/${roleName}`;
  for (const action of GUEST_ACTIONS) authorizer.authorize(req, action, d.appArn(appId));
  authorizer.authorize(req, 'cognito-identity:CreateIdentityPool', pools.collectionArn());
  authorizer.authorize(req, 'iam:CreateRole', roleArn);
  authorizer.authorize(req, 'iam:PutRolePolicy', roleArn);
  authorizer.passRole(req, roleArn, COGNITO_PROVIDER);

  const name = guestPoolName(appId);
  let pool: Pool | undefined = findPool(pools, name);
  if (pool) authorizer.authorize(req, 'cognito-identity:UpdateIdentityPool', pools.arn(pool.IdentityPoolId));
  else pool = await pools.createPool(name, { AllowUnauthenticatedIdentities: true, AllowClassicFlow: false });
  authorizer.authorize(req, 'cognito-identity:SetIdentityPoolRoles', pools.arn(pool.IdentityPoolId));

  const trust = guestTrustPolicy(pool.IdentityPoolId);
  if (iam.getRole(roleName)) await iam.updateAssumeRolePolicy(roleName, trust);
  else await iam.createRole(roleName, trust, { description: `Guest (unauthenticated) identities of identity pool ${pool.IdentityPoolId}: events of project ${appId} only` });
  await iam.putPolicy('role', roleName, GUEST_POLICY_NAME, guestPolicy(region, iam.accountId, appId));
  const roles: Record<string, string> = { ...(pool.Roles ?? {}), [UNAUTHENTICATED]: roleArn };
  if (roles[AUTHENTICATED] === undefined) delete roles[AUTHENTICATED];
  await pools.updatePool({ ...pool, AllowUnauthenticatedIdentities: true, Roles: roles });

  return {
    IdentityPoolId: pool.IdentityPoolId,
    Region: region,
    ApplicationId: appId,
    UnauthenticatedRoleArn: roleArn,
    Endpoints: { Pinpoint: publicUrl, CognitoIdentity: publicUrl },
    AwsExports: {
      aws_project_region: region,
      aws_cognito_identity_pool_id: pool.IdentityPoolId,
      aws_cognito_region: region,
      aws_mobile_analytics_app_id: appId,
      aws_mobile_analytics_app_region: region,
    },
    AmplifyOutputs: {
      version: '1.3',
      auth: { aws_region: region, identity_pool_id: pool.IdentityPoolId, unauthenticated_identities_enabled: true },
      analytics: { amazon_pinpoint: { aws_region: region, app_id: appId } },
    },
  };
}

function findPool(pools: IdentityPools, name: string): Pool | undefined {
  let after = '';
  for (;;) {
    const page = pools.listPools(after, 100);
    const hit = page.find((p) => p.IdentityPoolName === name);
    if (hit || page.length < 100) return hit;
    after = page[page.length - 1].IdentityPoolId;
  }
}
