// An Amplify JS v6 app as it was written for Pinpoint (docs/migration.md, "Amplify JS"): Auth with
// a Cognito identity pool allowing guest access, Analytics with a Pinpoint app id and region,
// `identifyUser` and `record`. Nothing in it names Pinstream: Amplify resolves
// cognito-identity.REGION.amazonaws.com and pinpoint.REGION.amazonaws.com from the region, and
// test/browser-amplify.test.ts routes those names to Pinstream as DNS would. Bundled for the
// browser by that test (esbuild); the test drives it through the window.* functions.

import { Amplify } from 'aws-amplify';
import { fetchAuthSession } from 'aws-amplify/auth';
import { flushEvents, identifyUser, record } from 'aws-amplify/analytics';

/** `outputs` is amplify_outputs.json as `pinstream identity-pool create --json` prints it. */
window.configureApp = (outputs) => {
  Amplify.configure(outputs);
  const c = Amplify.getConfig();
  return { auth: c.Auth?.Cognito, analytics: c.Analytics?.Pinpoint };
};

window.guestSession = async () => {
  const s = await fetchAuthSession();
  return { identityId: s.identityId, accessKeyId: s.credentials?.accessKeyId, hasSessionToken: Boolean(s.credentials?.sessionToken) };
};

window.identify = (userId, email) =>
  identifyUser({ userId, userProfile: { email, name: 'Browser Tester', customProperties: { plan: ['trial'] } } });

window.recordEvents = (name, count) => {
  for (let i = 0; i < count; i++) record({ name, attributes: { n: String(i) }, metrics: { position: i } });
};

window.flush = () => flushEvents();
window.appReady = true;
