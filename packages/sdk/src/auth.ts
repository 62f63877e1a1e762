import type { KeyObject, webcrypto } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  CALLER_KIND,
  DEFAULT_GATEWAY_ID,
  gatewayIssuer,
  MAX_TOKEN_TTL_SECONDS,
  TOKEN_ALGORITHM,
  TOKEN_TYPE,
} from '@openshell-interceptors/protocol';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  errors,
  type FetchImplementation,
  importSPKI,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose';

/** Why a token was refused. Fixed words: nothing of the token is ever echoed. */
export type AuthFailureReason =
  | 'missing'
  | 'malformed'
  | 'algorithm'
  | 'type'
  | 'unknown-key'
  | 'signature'
  | 'issuer'
  | 'audience'
  | 'expired'
  | 'not-yet-valid'
  | 'lifetime'
  | 'caller-kind';

/** A refused token; `serve` answers UNAUTHENTICATED with `message`, which never quotes the token. */
export class AuthError extends Error {
  readonly reason: AuthFailureReason;
  constructor(reason: AuthFailureReason) {
    super(`gateway token rejected: ${reason}`);
    this.name = 'AuthError';
    this.reason = reason;
  }
}

/** How the service checks the gateway's bearer token (CONTRACT section 7). Exactly one key source. */
export interface TokenVerifierOptions {
  /** The audience this service accepts, exactly (a token with an `aud` list is refused). */
  readonly audience: string;
  /** The gateway identity; `iss` must be `openshell-gateway:<gatewayId>` (default `openshell`). */
  readonly gatewayId?: string;
  /** An Ed25519 public key: a KeyObject or SPKI PEM text. */
  readonly publicKey?: KeyObject | string;
  /** A file holding an Ed25519 SPKI PEM public key. */
  readonly publicKeyFile?: string;
  /** With `publicKey`/`publicKeyFile`: the only `kid` accepted (default: any). */
  readonly keyId?: string;
  /** A JWKS document; the key is selected by `kid`. */
  readonly jwks?: JSONWebKeySet;
  /** A file holding a JWKS document. */
  readonly jwksFile?: string;
  /**
   * An https URL serving the gateway's JWKS, fetched and refreshed (an unknown `kid`
   * triggers a refetch after a cooldown). Trust comes from operator configuration:
   * use it only for a gateway you already trust, and only over https.
   */
  readonly jwksUrl?: string | URL;
  /** Refresh tuning for `jwksUrl`. */
  readonly jwksRefresh?: {
    readonly cooldownMs?: number;
    readonly cacheMaxAgeMs?: number;
    readonly timeoutMs?: number;
  };
  /** fetch used for `jwksUrl` (tests, proxies). */
  readonly fetch?: FetchImplementation;
  /** Allowed clock skew in seconds for exp/iat (default 30). */
  readonly clockToleranceSeconds?: number;
}

/** The claims of an accepted token. */
export interface VerifiedToken {
  readonly issuer: string;
  readonly subject: string | undefined;
  readonly keyId: string;
  readonly expiresAt: number;
  readonly tokenId: string | undefined;
}

export interface TokenVerifier {
  readonly audience: string;
  readonly issuer: string;
  /** Check an `authorization` metadata value; rejects with `AuthError`. */
  verify(authorization: string | undefined): Promise<VerifiedToken>;
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const DEFAULT_CLOCK_TOLERANCE_SECONDS = 30;

/**
 * The last character of a base64url segment can carry unused bits; decoders ignore them,
 * so one signed token would have many spellings. Only the canonical one is accepted.
 */
function isCanonicalBase64url(segment: string): boolean {
  return Buffer.from(segment, 'base64url').toString('base64url') === segment;
}

type KeySource =
  | { kind: 'key'; key: KeyObject | Uint8Array | webcrypto.CryptoKey; keyId: string | undefined }
  | { kind: 'set'; getKey: JWTVerifyGetKey };

async function keySource(o: TokenVerifierOptions): Promise<KeySource> {
  const given = (['publicKey', 'publicKeyFile', 'jwks', 'jwksFile', 'jwksUrl'] as const).filter(
    (k) => o[k] !== undefined,
  );
  if (given.length !== 1) {
    throw new Error(
      `token verifier: give exactly one of publicKey, publicKeyFile, jwks, jwksFile, jwksUrl (got ${given.length === 0 ? 'none' : given.join(', ')})`,
    );
  }
  if (o.publicKey !== undefined || o.publicKeyFile !== undefined) {
    let key: KeyObject | Uint8Array | webcrypto.CryptoKey;
    if (typeof o.publicKey === 'object') {
      if (o.publicKey.type !== 'public' || o.publicKey.asymmetricKeyType !== 'ed25519') {
        throw new Error('token verifier: publicKey must be an Ed25519 public key');
      }
      key = o.publicKey;
    } else {
      const pem = o.publicKey ?? (await readFile(o.publicKeyFile as string, 'utf8'));
      const where = o.publicKeyFile ? `publicKeyFile ${o.publicKeyFile}` : 'publicKey';
      try {
        key = await importSPKI(pem, TOKEN_ALGORITHM);
      } catch (err) {
        throw new Error(
          `token verifier: ${where} is not an Ed25519 SPKI PEM public key (${(err as Error).message})`,
        );
      }
    }
    return { kind: 'key', key, keyId: o.keyId };
  }
  if (o.jwks !== undefined || o.jwksFile !== undefined) {
    let doc: unknown = o.jwks;
    if (o.jwksFile !== undefined) {
      try {
        doc = JSON.parse(await readFile(o.jwksFile, 'utf8'));
      } catch (err) {
        throw new Error(`token verifier: cannot read jwksFile ${o.jwksFile}: ${(err as Error).message}`);
      }
    }
    const keys = (doc as { keys?: unknown } | null)?.keys;
    if (
      !Array.isArray(keys) ||
      !keys.some(
        (k) =>
          (k as { kty?: unknown; crv?: unknown }).kty === 'OKP' && (k as { crv?: unknown }).crv === 'Ed25519',
      )
    ) {
      throw new Error(
        `token verifier: ${o.jwksFile ? `jwksFile ${o.jwksFile}` : 'jwks'} holds no Ed25519 (OKP) key`,
      );
    }
    return { kind: 'set', getKey: createLocalJWKSet(doc as JSONWebKeySet) };
  }
  const url = new URL(String(o.jwksUrl));
  if (url.protocol !== 'https:')
    throw new Error(`token verifier: jwksUrl must use https, got ${url.protocol}`);
  const r = o.jwksRefresh ?? {};
  const remote = createRemoteJWKSet(url, {
    ...(r.cooldownMs !== undefined ? { cooldownDuration: r.cooldownMs } : {}),
    ...(r.cacheMaxAgeMs !== undefined ? { cacheMaxAge: r.cacheMaxAgeMs } : {}),
    ...(r.timeoutMs !== undefined ? { timeoutDuration: r.timeoutMs } : {}),
    ...(o.fetch ? { [customFetch]: o.fetch } : {}),
  });
  return { kind: 'set', getKey: remote };
}

function reasonOf(err: unknown): AuthFailureReason {
  if (err instanceof AuthError) return err.reason;
  if (err instanceof errors.JWTExpired) return 'expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'iss') return 'issuer';
    if (err.claim === 'aud') return 'audience';
    if (err.claim === 'nbf' || err.claim === 'iat') return 'not-yet-valid';
    if (err.claim === 'typ') return 'type';
    return 'malformed';
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'signature';
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys)
    return 'unknown-key';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'algorithm';
  return 'malformed';
}

/**
 * Build the check of CONTRACT section 7: alg pinned to EdDSA, typ exactly
 * `openshell-ext+jwt`, signature by the key chosen by kid, iss = the gateway
 * identity, aud exactly the audience (a list is refused), exp in the future,
 * exp - iat at most 3600 s, caller_kind = gateway; a small clock skew allowed.
 */
export async function createTokenVerifier(options: TokenVerifierOptions): Promise<TokenVerifier> {
  const audience = options.audience;
  if (typeof audience !== 'string' || audience === '' || /[\s\p{Cc}]/u.test(audience)) {
    throw new Error('token verifier: audience must be a non-empty string without whitespace');
  }
  const issuer = gatewayIssuer(options.gatewayId ?? DEFAULT_GATEWAY_ID);
  const skew = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  if (!(skew >= 0)) throw new Error('token verifier: clockToleranceSeconds must be >= 0');
  const source = await keySource(options);

  return {
    audience,
    issuer,
    async verify(authorization) {
      try {
        if (authorization === undefined || authorization.trim() === '') throw new AuthError('missing');
        const m = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
        if (!m || !JWT_SHAPE.test(m[1]!)) throw new AuthError('malformed');
        const token = m[1]!;
        if (!token.split('.').every(isCanonicalBase64url)) throw new AuthError('malformed');
        let header: ReturnType<typeof decodeProtectedHeader>;
        try {
          header = decodeProtectedHeader(token);
        } catch {
          throw new AuthError('malformed');
        }
        if (header.alg !== TOKEN_ALGORITHM) throw new AuthError('algorithm');
        if (header.typ !== TOKEN_TYPE) throw new AuthError('type');
        if (typeof header.kid !== 'string' || header.kid === '') throw new AuthError('unknown-key');
        if (source.kind === 'key' && source.keyId !== undefined && header.kid !== source.keyId) {
          throw new AuthError('unknown-key');
        }
        const verifyOptions = {
          algorithms: [TOKEN_ALGORITHM],
          issuer,
          audience,
          clockTolerance: skew,
          requiredClaims: ['iss', 'aud', 'exp', 'iat'],
        };
        const { payload } =
          source.kind === 'key'
            ? await jwtVerify(token, source.key, verifyOptions)
            : await jwtVerify(token, source.getKey, verifyOptions);
        checkClaims(payload, skew);
        return {
          issuer,
          subject: payload.sub,
          keyId: header.kid,
          expiresAt: payload.exp as number,
          tokenId: payload.jti,
        };
      } catch (err) {
        throw err instanceof AuthError ? err : new AuthError(reasonOf(err));
      }
    },
  };
}

function checkClaims(payload: JWTPayload, skew: number): void {
  if (typeof payload.aud !== 'string') throw new AuthError('audience');
  const { iat, exp } = payload;
  if (typeof iat !== 'number' || typeof exp !== 'number') throw new AuthError('malformed');
  if (exp - iat > MAX_TOKEN_TTL_SECONDS || exp <= iat) throw new AuthError('lifetime');
  if (iat > Date.now() / 1000 + skew) throw new AuthError('not-yet-valid');
  if (payload.caller_kind !== CALLER_KIND) throw new AuthError('caller-kind');
}
