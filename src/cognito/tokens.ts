// OpenID Connect ID tokens: verifying the RS256 JWTs of configured OIDC providers against their
// keys (a JWKS file or https URL), and issuing and verifying Cognito's own OpenID tokens
// (GetOpenIdToken, for the classic flow's STS AssumeRoleWithWebIdentity). Cognito's signing key is
// an RSA key made on first use and kept sealed in the metadata store's secrets table, so tokens
// survive a restart and verify on every node. Everything a token says is untrusted until its
// signature checks; every input (token, JWKS document, key count) is bounded.

import { createPublicKey, generateKeyPairSync, createPrivateKey, sign, verify, randomUUID, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Clock } from '../clock.js';
import type { OidcProviderConfig } from '../config/config.js';
import type { MetadataCache } from '../store/metadata.js';
import type { SecretBox } from '../iam/secrets.js';

/** The issuer and provider name of Cognito's tokens, as AWS's. */
export const COGNITO_ISSUER = 'https://cognito-identity.amazonaws.com';
export const COGNITO_PROVIDER = 'cognito-identity.amazonaws.com';
/** GetOpenIdToken's tokens last ten minutes (AWS's documented duration). */
export const OPENID_TOKEN_SECONDS = 600;
/** The longest token accepted: the model's IdentityProviderToken maximum. */
export const MAX_TOKEN_CHARS = 50_000;
/** A JWKS document (file or URL) larger than this is refused. */
export const MAX_JWKS_BYTES = 256 * 1024;
/** Keys used from one JWKS document at most. */
export const MAX_JWKS_KEYS = 100;
/** A JWKS URL is fetched again after this long, or sooner for an unknown key id (at most once a minute). */
export const JWKS_CACHE_MS = 10 * 60 * 1000;
export const JWKS_REFETCH_MIN_MS = 60 * 1000;
/** A JWKS URL must answer within this long. */
export const JWKS_FETCH_TIMEOUT_MS = 5000;

const COGNITO_KEY_SECRET = 'cognito-openid-signing-key';

/** A token that is not valid, with the reason (the caller picks the service's error). */
export class TokenError extends Error {
  override name = 'TokenError';
  constructor(
    message: string,
    readonly expired = false,
  ) {
    super(message);
  }
}

export interface VerifiedToken {
  iss: string;
  sub: string;
  /** The `aud` that matched. */
  aud: string;
  claims: Record<string, unknown>;
}

interface Decoded {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  signed: Buffer;
  signature: Buffer;
}

function b64json(part: string, what: string): Record<string, unknown> {
  if (!/^[A-Za-z0-9_-]*$/.test(part)) throw new TokenError(`the token's ${what} is not base64url`);
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw new TokenError(`the token's ${what} is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TokenError(`the token's ${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

/** Splits a compact JWS without trusting any of it. */
export function decodeJwt(token: string): Decoded {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS) throw new TokenError(`the token must be a string of at most ${MAX_TOKEN_CHARS} characters`);
  const parts = token.split('.');
  if (parts.length !== 3) throw new TokenError('the token is not a JWT (three dot-separated parts)');
  const header = b64json(parts[0], 'header');
  const payload = b64json(parts[1], 'payload');
  if (!/^[A-Za-z0-9_-]+$/.test(parts[2])) throw new TokenError("the token's signature is not base64url");
  return { header, payload, signed: Buffer.from(`${parts[0]}.${parts[1]}`), signature: Buffer.from(parts[2], 'base64url') };
}

/**
 * The claims checks every token gets: the issuer exactly, an audience among `audiences`, a
 * subject, and `exp` (required) and `nbf` against now. Returns the audience that matched.
 */
function checkClaims(payload: Record<string, unknown>, issuer: string, audiences: readonly string[], nowMs: number): VerifiedToken {
  if (payload.iss !== issuer) throw new TokenError(`the token's issuer is not ${issuer}`);
  if (typeof payload.sub !== 'string' || payload.sub === '') throw new TokenError('the token has no subject (sub)');
  const auds = typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud.filter((a): a is string => typeof a === 'string') : [];
  const aud = auds.find((a) => audiences.includes(a));
  if (aud === undefined) throw new TokenError("the token's audience is not one this provider accepts");
  const now = nowMs / 1000;
  if (typeof payload.exp !== 'number' || !Number.isFinite(payload.exp)) throw new TokenError('the token has no expiry (exp)');
  if (payload.exp <= now) throw new TokenError('the token is expired', true);
  if (payload.nbf !== undefined && (typeof payload.nbf !== 'number' || payload.nbf > now)) throw new TokenError('the token is not valid yet (nbf)');
  return { iss: issuer, sub: payload.sub, aud, claims: payload };
}

function verifyRs256(d: Decoded, key: KeyObject): boolean {
  try {
    return verify('RSA-SHA256', d.signed, key, d.signature);
  } catch {
    return false;
  }
}

/** A configured OIDC provider and its keys. */
export class OidcProvider {
  /** The provider's name in Logins maps, IAM ARNs and condition keys: the issuer without https://. */
  readonly name: string;
  private keys = new Map<string, KeyObject>();
  private loadedAt = -Infinity;
  private loading?: Promise<void>;

  constructor(
    readonly config: OidcProviderConfig,
    private clock: Clock,
  ) {
    this.name = config.issuer.replace(/^https:\/\//, '');
  }

  /** Verifies `token` as one of this provider's for one of `audiences`. */
  async verify(token: string, audiences: readonly string[]): Promise<VerifiedToken> {
    const d = decodeJwt(token);
    if (d.header.alg !== 'RS256') throw new TokenError('the token is not signed with RS256');
    const kid = typeof d.header.kid === 'string' ? d.header.kid : '';
    let key = await this.key(kid, false);
    if (!key) key = await this.key(kid, true);
    if (!key) throw new TokenError(`the provider ${this.name} has no key ${JSON.stringify(kid.slice(0, 100))}`);
    if (!verifyRs256(d, key)) throw new TokenError("the token's signature does not verify with the provider's key");
    return checkClaims(d.payload, this.config.issuer, audiences, this.clock.now());
  }

  private async key(kid: string, refresh: boolean): Promise<KeyObject | undefined> {
    const now = this.clock.now();
    const stale = now - this.loadedAt > JWKS_CACHE_MS;
    const mayRefresh = refresh && now - this.loadedAt > JWKS_REFETCH_MIN_MS;
    if (stale || mayRefresh) {
      this.loading ??= this.load().finally(() => (this.loading = undefined));
      await this.loading;
    }
    return this.keys.get(kid) ?? (kid === '' && this.keys.size === 1 ? [...this.keys.values()][0] : undefined);
  }

  private async load(): Promise<void> {
    const src = this.config.jwks;
    let text: string;
    try {
      if (/^https?:\/\//.test(src)) {
        const res = await fetch(src, { signal: AbortSignal.timeout(JWKS_FETCH_TIMEOUT_MS), redirect: 'error' });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const buf = Buffer.from(await res.arrayBuffer());
        if (buf.length > MAX_JWKS_BYTES) throw new Error(`larger than ${MAX_JWKS_BYTES} bytes`);
        text = buf.toString('utf8');
      } else {
        const buf = await readFile(src);
        if (buf.length > MAX_JWKS_BYTES) throw new Error(`larger than ${MAX_JWKS_BYTES} bytes`);
        text = buf.toString('utf8');
      }
    } catch (e) {
      // Keys already known keep working; the next token asks again after JWKS_REFETCH_MIN_MS.
      this.loadedAt = this.clock.now() - JWKS_CACHE_MS + JWKS_REFETCH_MIN_MS;
      console.error(`pinstream: cannot read the JWKS of OIDC provider ${this.name} (${src}): ${(e as Error).message}`);
      return;
    }
    this.keys = parseJwks(text);
    this.loadedAt = this.clock.now();
  }
}

/** The RSA signing keys of a JWKS document, by kid. Other keys (EC, encryption) are skipped. */
export function parseJwks(text: string): Map<string, KeyObject> {
  const out = new Map<string, KeyObject>();
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return out;
  }
  const keys = (doc as { keys?: unknown })?.keys;
  if (!Array.isArray(keys)) return out;
  for (const k of keys.slice(0, MAX_JWKS_KEYS)) {
    if (typeof k !== 'object' || k === null) continue;
    const jwk = k as Record<string, unknown>;
    if (jwk.kty !== 'RSA' || (jwk.use !== undefined && jwk.use !== 'sig') || typeof jwk.n !== 'string' || typeof jwk.e !== 'string') continue;
    try {
      const key = createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e }, format: 'jwk' });
      out.set(typeof jwk.kid === 'string' ? jwk.kid : '', key);
    } catch {
      // An unusable key is no key.
    }
  }
  return out;
}

/**
 * Cognito's own OpenID tokens: issued by GetOpenIdToken, accepted by AssumeRoleWithWebIdentity. The
 * signing key lives in the metadata store's `secrets` (shared by every node with PostgreSQL, so a
 * token issued by one node verifies on another); nodes making it at once agree on the first
 * stored (INSERT … ON CONFLICT DO NOTHING, then read back).
 */
export class CognitoTokens {
  private key?: Promise<{ kid: string; privateKey: KeyObject; publicKey: KeyObject }>;

  constructor(
    private meta: MetadataCache,
    private secrets: SecretBox,
    private clock: Clock,
  ) {}

  async issue(identityId: string, poolId: string, amr: string[]): Promise<string> {
    const k = await this.signingKey();
    const now = Math.floor(this.clock.now() / 1000);
    const header = { kid: k.kid, typ: 'JWS', alg: 'RS256' };
    const payload = { sub: identityId, aud: poolId, amr, iss: COGNITO_ISSUER, exp: now + OPENID_TOKEN_SECONDS, iat: now };
    const signed = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    return `${signed}.${sign('RSA-SHA256', Buffer.from(signed), k.privateKey).toString('base64url')}`;
  }

  /** Verifies a token Cognito issued, for any pool (the caller checks the pool); returns its claims. */
  async verify(token: string): Promise<VerifiedToken & { amr: string[] }> {
    const d = decodeJwt(token);
    const k = await this.signingKey();
    if (d.header.alg !== 'RS256' || d.header.kid !== k.kid || !verifyRs256(d, k.publicKey)) throw new TokenError("the token's signature does not verify");
    const aud = typeof d.payload.aud === 'string' ? d.payload.aud : '';
    const v = checkClaims(d.payload, COGNITO_ISSUER, [aud], this.clock.now());
    const amr = Array.isArray(d.payload.amr) ? d.payload.amr.filter((a): a is string => typeof a === 'string') : [];
    return { ...v, amr };
  }

  /** The public key as a JWKS document (what AWS publishes at cognito-identity.amazonaws.com/.well-known/jwks_uri). */
  async jwks(): Promise<{ keys: object[] }> {
    const k = await this.signingKey();
    return { keys: [{ ...k.publicKey.export({ format: 'jwk' }), kid: k.kid, use: 'sig', alg: 'RS256' }] };
  }

  private signingKey() {
    // A failed read is not remembered: the next call tries again.
    this.key ??= this.loadKey().catch((e: unknown) => {
      this.key = undefined;
      throw e;
    });
    return this.key;
  }

  private async loadKey() {
    const read = async () => (await this.meta.driver.all<{ value: Buffer }>('SELECT value FROM secrets WHERE name = ?', [COGNITO_KEY_SECRET]))[0];
    let row = await read();
    if (!row) {
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const fresh = { kid: randomUUID(), pem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
      await this.meta.write(
        [{ sql: 'INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT(name) DO NOTHING', params: [COGNITO_KEY_SECRET, this.secrets.seal(JSON.stringify(fresh))] }],
        [],
      );
      row = await read();
      if (!row) throw new Error('the Cognito signing key just stored cannot be read back');
    }
    const stored = JSON.parse(this.secrets.open(row.value)) as { kid: string; pem: string };
    const privateKey = createPrivateKey(stored.pem);
    return { kid: stored.kid, privateKey, publicKey: createPublicKey(privateKey) };
  }
}
