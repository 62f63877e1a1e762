import { createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mint, type TestKey, testKey, unsignedToken } from './__fixtures__/tokens.js';
import { AuthError, type AuthFailureReason, createTokenVerifier, type TokenVerifier } from './auth.js';

const AUD = 'urn:openshell:extension:interceptor:svc';

async function reason(v: TokenVerifier, header: string | undefined): Promise<AuthFailureReason> {
  const err = await v.verify(header).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof AuthError)) throw new Error(`expected AuthError, got ${String(err)}`);
  // Nothing of the token is echoed.
  if (header && header.length > 20) expect(err.message).not.toContain(header.slice(7, 27));
  return err.reason;
}

describe('token verifier', () => {
  let k1: TestKey;
  let k2: TestKey;
  let stranger: TestKey;
  let dir: string;
  beforeAll(async () => {
    k1 = await testKey('k1');
    k2 = await testKey('k2');
    stranger = await testKey('k-stranger');
    dir = mkdtempSync(join(tmpdir(), 'sdk-auth-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('accepts a well-formed gateway token and reports its claims', async () => {
    const v = await createTokenVerifier({ audience: AUD, publicKey: k1.publicPem });
    const t = await v.verify(`Bearer ${await mint(k1)}`);
    expect(t).toMatchObject({ issuer: 'openshell-gateway:openshell', keyId: 'k1' });
  });

  it('refuses every case of the matrix with a fixed reason', async () => {
    const v = await createTokenVerifier({ audience: AUD, jwks: { keys: [k1.publicJwk, k2.publicJwk] } });
    const now = Math.floor(Date.now() / 1000);
    const cases: [string | undefined, AuthFailureReason][] = [
      [undefined, 'missing'],
      ['', 'missing'],
      ['Basic dXNlcjpwYXNz', 'malformed'],
      ['Bearer garbage', 'malformed'],
      ['Bearer eyJub3QiOiJqc29uIn0.e30.c2ln', 'algorithm'],
      [`Bearer ${unsignedToken()}`, 'algorithm'],
      [`Bearer ${await mint(k1, { typ: 'JWT' })}`, 'type'],
      [`Bearer ${await mint(k1, { typ: 'application/openshell-ext+jwt' })}`, 'type'],
      [`Bearer ${await mint(k1, { audience: 'urn:other' })}`, 'audience'],
      [`Bearer ${await mint(k1, { audience: [AUD] })}`, 'audience'],
      [`Bearer ${await mint(k1, { audience: [AUD, 'urn:other'] })}`, 'audience'],
      [`Bearer ${await mint(k1, { issuer: 'openshell-gateway:evil' })}`, 'issuer'],
      [`Bearer ${await mint(k1, { iat: now - 2000, exp: now - 1000 })}`, 'expired'],
      [`Bearer ${await mint(k1, { iat: now - 10, exp: now - 10 + 3601 })}`, 'lifetime'],
      [`Bearer ${await mint(k1, { iat: now + 600, exp: now + 900 })}`, 'not-yet-valid'],
      [`Bearer ${await mint(k1, { claims: { caller_kind: 'supervisor' } })}`, 'caller-kind'],
      [`Bearer ${await mint(k1, { claims: { caller_kind: undefined } })}`, 'caller-kind'],
      [`Bearer ${await mint(stranger)}`, 'unknown-key'],
      [`Bearer ${await mint(stranger, { kid: 'k1' })}`, 'signature'],
    ];
    const got = [];
    for (const [header] of cases) got.push(await reason(v, header));
    expect(got).toEqual(cases.map((c) => c[1]));
  });

  it('allows a small clock skew and exactly an hour of lifetime', async () => {
    const v = await createTokenVerifier({
      audience: AUD,
      publicKey: k1.publicPem,
      clockToleranceSeconds: 30,
    });
    const now = Math.floor(Date.now() / 1000);
    await expect(
      v.verify(`Bearer ${await mint(k1, { iat: now - 3600, exp: now - 5 })}`),
    ).resolves.toBeDefined();
    await expect(
      v.verify(`Bearer ${await mint(k1, { iat: now + 10, exp: now + 900 })}`),
    ).resolves.toBeDefined();
  });

  it('checks a configured gateway id and key id', async () => {
    const v = await createTokenVerifier({
      audience: AUD,
      gatewayId: 'prod',
      publicKey: createPublicKey(k1.publicPem),
      keyId: 'k1',
    });
    expect(await reason(v, `Bearer ${await mint(k1)}`)).toBe('issuer');
    await expect(
      v.verify(`Bearer ${await mint(k1, { issuer: 'openshell-gateway:prod' })}`),
    ).resolves.toBeDefined();
    expect(await reason(v, `Bearer ${await mint(k1, { issuer: 'openshell-gateway:prod', kid: 'k9' })}`)).toBe(
      'unknown-key',
    );
  });

  it('reads keys from a PEM file and a JWKS file', async () => {
    const pem = join(dir, 'key.pem');
    const jwks = join(dir, 'jwks.json');
    writeFileSync(pem, k1.publicPem);
    writeFileSync(jwks, JSON.stringify({ keys: [k2.publicJwk] }));
    const a = await createTokenVerifier({ audience: AUD, publicKeyFile: pem });
    await expect(a.verify(`Bearer ${await mint(k1)}`)).resolves.toBeDefined();
    const b = await createTokenVerifier({ audience: AUD, jwksFile: jwks });
    await expect(b.verify(`Bearer ${await mint(k2)}`)).resolves.toBeDefined();
    expect(await reason(b, `Bearer ${await mint(k1)}`)).toBe('unknown-key');
  });

  it('refetches an https JWKS when an unknown kid appears (key rotation)', async () => {
    let served = [k1.publicJwk];
    const fetched: string[] = [];
    const v = await createTokenVerifier({
      audience: AUD,
      jwksUrl: 'https://gateway.test/.well-known/jwks.json',
      jwksRefresh: { cooldownMs: 0 },
      fetch: async (url) => {
        fetched.push(String(url));
        return new Response(JSON.stringify({ keys: served }), {
          headers: { 'content-type': 'application/json' },
        });
      },
    });
    await expect(v.verify(`Bearer ${await mint(k1)}`)).resolves.toBeDefined();
    served = [k1.publicJwk, k2.publicJwk];
    await expect(v.verify(`Bearer ${await mint(k2)}`)).resolves.toBeDefined();
    expect(fetched).toEqual([
      'https://gateway.test/.well-known/jwks.json',
      'https://gateway.test/.well-known/jwks.json',
    ]);
  });

  it('refuses bad configuration with a message naming the problem', async () => {
    await expect(createTokenVerifier({ audience: AUD })).rejects.toThrow(/exactly one of .* \(got none\)/);
    await expect(
      createTokenVerifier({ audience: AUD, publicKey: k1.publicPem, jwks: { keys: [] } }),
    ).rejects.toThrow(/got publicKey, jwks/);
    await expect(createTokenVerifier({ audience: AUD, jwksUrl: 'http://gateway.test/jwks' })).rejects.toThrow(
      /must use https/,
    );
    await expect(createTokenVerifier({ audience: AUD, jwks: { keys: [] } })).rejects.toThrow(/no Ed25519/);
    await expect(createTokenVerifier({ audience: AUD, publicKey: 'not a pem' })).rejects.toThrow(
      /not an Ed25519/,
    );
    await expect(createTokenVerifier({ audience: 'a b', publicKey: k1.publicPem })).rejects.toThrow(
      /audience/,
    );
    await expect(createTokenVerifier({ audience: AUD, jwksFile: join(dir, 'missing.json') })).rejects.toThrow(
      /cannot read jwksFile/,
    );
  });
});
