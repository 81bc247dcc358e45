// A browser app as the migration guide tells one to write it (docs/migration.md, "Browser apps
// with the AWS SDK v3"): guest credentials from the Cognito identity pool through
// fromCognitoIdentityPool with the Cognito client's endpoint set, and a PinpointClient with its
// endpoint set, sending UpdateEndpoint and PutEvents. Bundled for the browser by
// test/browser-sdk.test.ts (esbuild); the test calls window.runApp with the server's settings.

import { CognitoIdentityClient } from '@aws-sdk/client-cognito-identity';
import { fromCognitoIdentityPool } from '@aws-sdk/credential-providers';
import { GetEndpointCommand, PinpointClient, PutEventsCommand, UpdateEndpointCommand } from '@aws-sdk/client-pinpoint';

let pinpoint;
let credentials;

/** The settings are what `pinstream identity-pool create` prints (Endpoints, IdentityPoolId, Region). */
window.runApp = async ({ cognitoEndpoint, pinpointEndpoint, region, identityPoolId, appId, endpointId, userId, eventType, eventIds }) => {
  credentials = fromCognitoIdentityPool({
    client: new CognitoIdentityClient({ region, endpoint: cognitoEndpoint }),
    identityPoolId,
  });
  pinpoint = new PinpointClient({ region, endpoint: pinpointEndpoint, credentials });
  const creds = await credentials();
  const update = await pinpoint.send(
    new UpdateEndpointCommand({
      ApplicationId: appId,
      EndpointId: endpointId,
      EndpointRequest: {
        Attributes: { browser: [navigator.userAgent.includes('Chrome') ? 'Chrome' : 'other'] },
        Demographic: { Platform: 'Web' },
        User: { UserId: userId },
      },
    }),
  );
  const now = new Date().toISOString();
  const put = await pinpoint.send(
    new PutEventsCommand({
      ApplicationId: appId,
      EventsRequest: {
        BatchItem: {
          [endpointId]: {
            Endpoint: {},
            Events: Object.fromEntries(eventIds.map((id, i) => [id, { EventType: eventType, Timestamp: now, Attributes: { n: String(i) } }])),
          },
        },
      },
    }),
  );
  return {
    identityId: creds.identityId,
    accessKeyId: creds.accessKeyId,
    hasSessionToken: typeof creds.sessionToken === 'string' && creds.sessionToken.length > 0,
    updateStatus: update.$metadata.httpStatusCode,
    updateMessage: update.MessageBody?.Message,
    putStatus: put.$metadata.httpStatusCode,
    results: put.EventsResponse?.Results,
  };
};
/** A call the guest role may not make: the error as the SDK in the page parsed it. */
window.tryGetEndpoint = async (appId, endpointId) => {
  try {
    await pinpoint.send(new GetEndpointCommand({ ApplicationId: appId, EndpointId: endpointId }));
    return { allowed: true };
  } catch (e) {
    return { allowed: false, name: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
  }
};

/** The page's guest credentials, so the test can make the same call from Node and compare. */
window.guestCredentials = async () => {
  const c = await credentials();
  return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken };
};

window.appReady = true;
