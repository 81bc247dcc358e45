// STS AssumeRoleWithWebIdentity's token check (the classic flow): a Cognito OpenID token (from
// GetOpenIdToken, issuer https://cognito-identity.amazonaws.com) for an identity that still exists,
// or an ID token of a configured OIDC provider for one of its client ids. Says which Federated
// principal the role's trust policy must name: cognito-identity.amazonaws.com, or the IAM OIDC
// provider ARN arn:aws:iam::ACCT:oidc-provider/NAME.

import { WebIdentityError, type WebIdentityFederation } from '../iam/api.js';
import type { IamStore, WebIdentity } from '../iam/store.js';
import type { IdentityPools } from './pools.js';
import { COGNITO_ISSUER, COGNITO_PROVIDER, decodeJwt, TokenError, type CognitoTokens, type OidcProvider } from './tokens.js';

const NOT_A_JWT = 'The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)';

export function webIdentityFederation(d: { tokens: CognitoTokens; oidc: ReadonlyMap<string, OidcProvider>; pools: IdentityPools; iam: IamStore }): WebIdentityFederation {
  const byIssuer = new Map([...d.oidc.values()].map((p) => [p.config.issuer, p]));
  const refuse = (e: unknown): never => {
    if (!(e instanceof TokenError)) throw e;
    if (e.expired) throw new WebIdentityError('ExpiredTokenException', 'Token expired: the web identity token is past its expiration time (exp)');
    throw new WebIdentityError('InvalidIdentityToken', `The web identity token could not be verified: ${e.message}`);
  };
  return {
    async verify(token) {
      let iss: unknown;
      try {
        iss = decodeJwt(token).payload.iss;
      } catch {
        throw new WebIdentityError('InvalidIdentityToken', NOT_A_JWT);
      }
      if (iss === COGNITO_ISSUER) {
        let v;
        try {
          v = await d.tokens.verify(token);
        } catch (e) {
          return refuse(e);
        }
        // A token outlives nothing it was issued for: its identity must still exist in its pool.
        const identity = await d.pools.getIdentity(v.sub);
        if (!identity || identity.poolId !== v.aud) throw new WebIdentityError('InvalidIdentityToken', `The identity ${v.sub} of the token no longer exists in identity pool ${v.aud}`);
        const web: WebIdentity = { provider: COGNITO_PROVIDER, sub: v.sub, aud: v.aud, amr: v.amr, poolId: v.aud };
        return { web, principal: COGNITO_PROVIDER, provider: COGNITO_PROVIDER };
      }
      const provider = typeof iss === 'string' ? byIssuer.get(iss) : undefined;
      if (!provider) throw new WebIdentityError('InvalidIdentityToken', `No OpenID Connect provider found in your account for ${String(iss).slice(0, 200)}`);
      let v;
      try {
        v = await provider.verify(token, provider.config.clientIds);
      } catch (e) {
        if (e instanceof TokenError && /audience/.test(e.message)) throw new WebIdentityError('InvalidIdentityToken', 'Incorrect token audience');
        return refuse(e);
      }
      const web: WebIdentity = { provider: provider.name, sub: v.sub, aud: v.aud };
      return { web, principal: `arn:aws:iam::${d.iam.accountId}:oidc-provider/${provider.name}`, provider: provider.name };
    },
    async issued(web) {
      if (web.poolId !== undefined) await d.iam.trimIdentitySessions(web.sub, d.pools.limits.maxSessionsPerIdentity);
    },
  };
}
