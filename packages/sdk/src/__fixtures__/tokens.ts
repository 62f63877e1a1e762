import { randomUUID, type webcrypto } from 'node:crypto';
import { exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from 'jose';

export interface TestKey {
  readonly kid: string;
  readonly privateKey: webcrypto.CryptoKey;
  readonly publicPem: string;
  readonly publicJwk: JWK;
}

/** A fresh Ed25519 signing key (tests only). */
export async function testKey(kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' };
  return { kid, privateKey, publicPem: await exportSPKI(publicKey), publicJwk };
}

export interface MintOptions {
  readonly audience?: string | string[];
  readonly issuer?: string;
  readonly typ?: string;
  readonly kid?: string;
  readonly iat?: number;
  readonly exp?: number;
  readonly claims?: Record<string, unknown>;
}

/** Mint a gateway token the way the gateway does, with overrides for the failure cases. */
export async function mint(key: TestKey, o: MintOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const iat = o.iat ?? now;
  const iss = o.issuer ?? 'openshell-gateway:openshell';
  return new SignJWT({ caller_kind: 'gateway', ...o.claims })
    .setProtectedHeader({ alg: 'EdDSA', typ: o.typ ?? 'openshell-ext+jwt', kid: o.kid ?? key.kid })
    .setIssuer(iss)
    .setSubject(iss)
    .setAudience(o.audience ?? 'urn:openshell:extension:interceptor:svc')
    .setIssuedAt(iat)
    .setExpirationTime(o.exp ?? iat + 900)
    .setJti(randomUUID())
    .sign(key.privateKey);
}

/** An unsigned `alg: none` token with otherwise valid claims. */
export function unsignedToken(audience = 'urn:openshell:extension:interceptor:svc'): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const iss = 'openshell-gateway:openshell';
  return `${b64({ alg: 'none', typ: 'openshell-ext+jwt', kid: 'k1' })}.${b64({
    iss,
    sub: iss,
    aud: audience,
    iat: now,
    exp: now + 900,
    caller_kind: 'gateway',
  })}.`;
}
