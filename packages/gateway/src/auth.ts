import { createPrivateKey, type KeyObject, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  CALLER_KIND,
  MAX_TOKEN_TTL_SECONDS,
  TOKEN_ALGORITHM,
  TOKEN_REUSE_FRACTION,
  TOKEN_TYPE,
} from '@openshell-interceptors/protocol';
import { SignJWT } from 'jose';

interface Cached {
  readonly token: string;
  /** Epoch ms after which a new token is minted. */
  readonly renewAt: number;
}

/**
 * Mints the gateway → interceptor bearer tokens of CONTRACT section 7, one per
 * audience, reused until 4/5 of their lifetime has passed.
 */
export class TokenMinter {
  private readonly cache = new Map<string, Promise<Cached>>();
  /** How many tokens were minted (for tests and metrics). */
  minted = 0;

  constructor(
    private readonly key: KeyObject,
    readonly keyId: string,
    readonly issuer: string,
    readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
  ) {
    if (key.asymmetricKeyType !== 'ed25519')
      throw new Error('the JWT signing key must be an Ed25519 private key');
    if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0 || ttlSeconds > MAX_TOKEN_TTL_SECONDS)
      throw new Error(`token lifetime must be 1..${MAX_TOKEN_TTL_SECONDS} seconds`);
  }

  /** Read a PEM (PKCS#8) Ed25519 private key file. Errors name the file and the problem. */
  static async fromKeyFile(
    path: string,
    keyId: string,
    issuer: string,
    ttlSeconds: number,
    now?: () => number,
  ): Promise<TokenMinter> {
    let pem: string;
    try {
      pem = await readFile(path, 'utf8');
    } catch (e) {
      throw new Error(`cannot read jwt_private_key_path ${path}: ${(e as Error).message}`);
    }
    let key: KeyObject;
    try {
      key = createPrivateKey(pem);
    } catch {
      throw new Error(`jwt_private_key_path ${path} is not a PEM private key`);
    }
    if (key.asymmetricKeyType !== 'ed25519')
      throw new Error(
        `jwt_private_key_path ${path} holds a ${key.asymmetricKeyType} key; an Ed25519 key is required`,
      );
    return new TokenMinter(key, keyId, issuer, ttlSeconds, now);
  }

  /** A valid token for `audience`: the cached one until its reuse window ends, then a new one. */
  async token(audience: string): Promise<string> {
    const now = this.now();
    const hit = this.cache.get(audience);
    if (hit) {
      const c = await hit;
      if (now < c.renewAt) return c.token;
      if (this.cache.get(audience) !== hit) return this.token(audience);
    }
    const next = this.mint(audience, now);
    this.cache.set(audience, next);
    next.catch(() => this.cache.delete(audience));
    return (await next).token;
  }

  private async mint(audience: string, nowMs: number): Promise<Cached> {
    const iat = Math.floor(nowMs / 1000);
    const exp = iat + this.ttlSeconds;
    const token = await new SignJWT({ caller_kind: CALLER_KIND })
      .setProtectedHeader({ alg: TOKEN_ALGORITHM, typ: TOKEN_TYPE, kid: this.keyId })
      .setIssuer(this.issuer)
      .setSubject(this.issuer)
      .setAudience(audience)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(this.key);
    this.minted++;
    return { token, renewAt: (iat + this.ttlSeconds * TOKEN_REUSE_FRACTION) * 1000 };
  }
}
