// `pinstream identity-pool create --app APP_ID`: guest access for a project in one step (an
// identity pool whose unauthenticated role may only PutEvents and UpdateEndpoint on the project;
// src/cognito/guest.ts), through the server's POST /v1/apps/{id}/guest-access signed like any
// Pinpoint call, then prints what an app needs: pool id, region, app id, endpoint URLs and the
// aws-exports / amplify_outputs.json settings.

import { defaultEndpoint, resolveCredentials, signedCall } from './signed.js';
import type { GuestAccess } from '../cognito/guest.js';

export const IDENTITY_POOL_USAGE = `usage: pinstream identity-pool create --app APP_ID [--endpoint URL] [--json]

Creates (or repairs) the project's guest identity pool: unauthenticated identities get temporary
credentials allowed only mobiletargeting:PutEvents and mobiletargeting:UpdateEndpoint on APP_ID.
Prints the configuration an app needs (--json: the server's answer as JSON).
credentials: PINSTREAM_ADMIN_ACCESS_KEY_ID/SECRET when both are set, else the AWS SDK's chain.`;

export async function identityPool(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'create') {
    console.error(sub === undefined ? IDENTITY_POOL_USAGE : `pinstream identity-pool: unknown command "${sub}"\n\n${IDENTITY_POOL_USAGE}`);
    return 2;
  }
  let endpoint = defaultEndpoint(env);
  let app: string | undefined;
  let asJson = false;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--endpoint' || rest[i] === '--endpoint-url') endpoint = (rest[++i] ?? '').replace(/\/+$/, '');
    else if (rest[i] === '--app') app = rest[++i];
    else if (rest[i] === '--json') asJson = true;
    else {
      console.error(`pinstream identity-pool create: unknown option ${rest[i]}\n\n${IDENTITY_POOL_USAGE}`);
      return 2;
    }
  }
  if (!app) {
    console.error(`pinstream identity-pool create: --app APP_ID is required\n\n${IDENTITY_POOL_USAGE}`);
    return 2;
  }
  let credentials;
  try {
    credentials = await resolveCredentials(env);
  } catch (e) {
    console.error(`pinstream identity-pool create: no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (${(e as Error).message})`);
    return 1;
  }
  let res: Response;
  try {
    res = await signedCall(endpoint, credentials, env, { method: 'POST', path: `/v1/apps/${encodeURIComponent(app)}/guest-access`, body: {} });
  } catch (e) {
    console.error(`pinstream identity-pool create: cannot reach ${endpoint} (${(e as Error).message}); is the server running there?`);
    return 1;
  }
  const body = (await res.json()) as GuestAccess & { Message?: string };
  if (!res.ok) {
    console.error(`pinstream identity-pool create: ${res.status} ${res.headers.get('x-amzn-errortype') ?? ''}: ${body.Message ?? ''}`);
    return 1;
  }
  if (asJson) {
    console.log(JSON.stringify(body, null, 2));
    return 0;
  }
  console.log(
    [
      `identity pool   ${body.IdentityPoolId}`,
      `region          ${body.Region}`,
      `application     ${body.ApplicationId}`,
      `guest role      ${body.UnauthenticatedRoleArn} (PutEvents and UpdateEndpoint on this project only)`,
      `Pinpoint URL    ${body.Endpoints.Pinpoint}`,
      `Cognito URL     ${body.Endpoints.CognitoIdentity}`,
      ``,
      `AWS SDK v3 (browser or Node):`,
      `  credentials: fromCognitoIdentityPool({ identityPoolId: '${body.IdentityPoolId}', clientConfig: { region: '${body.Region}', endpoint: '${body.Endpoints.CognitoIdentity}' } })`,
      `  new PinpointClient({ region: '${body.Region}', endpoint: '${body.Endpoints.Pinpoint}', credentials })`,
      ``,
      `aws-exports.js (Amplify Gen 1):`,
      JSON.stringify(body.AwsExports, null, 2),
      ``,
      `amplify_outputs.json (Amplify Gen 2):`,
      JSON.stringify(body.AmplifyOutputs, null, 2),
      ``,
      `Amplify resolves its URLs from the region (cognito-identity.${body.Region}.amazonaws.com, pinpoint.${body.Region}.amazonaws.com): route those names here.`,
    ].join('\n'),
  );
  return 0;
}
