import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogs, configFor, deferAfterEach, type KeyFiles, makeKeys } from './__fixtures__/harness.js';
import {
  type RunningFixture,
  type ScriptSpec,
  startInterceptorServer,
} from './__fixtures__/interceptor-server.js';
import { TokenMinter } from './auth.js';
import { GatewayStartupError } from './errors.js';
import { createGateway } from './gateway.js';

const CS = 'openshell.v1.OpenShell/CreateSandbox';
const MANIFEST = { name: 'ext', bindings: [{ id: 'b', rpc: CS, phases: ['validate' as const] }] };

let keys: KeyFiles;

beforeAll(async () => {
  keys = await makeKeys('gw-key-1');
});
afterAll(async () => {
  await keys.cleanup();
});
const defer = deferAfterEach();

async function serve(script: ScriptSpec): Promise<RunningFixture> {
  const f = await startInterceptorServer(script);
  defer(() => f.close());
  return f;
}

const audience = 'urn:openshell:extension:interceptor:ext';
const issuer = 'openshell-gateway:gw-test';

describe('bearer tokens', () => {
  it('attaches a token every service can verify: EdDSA, typ, kid, iss = sub, single aud, exp, jti, caller_kind', async () => {
    const f = await serve({ manifest: MANIFEST, auth: { jwk: keys.jwk, issuer, audience } });
    const gw = await createGateway(
      configFor([{ name: 'ext', grpc_endpoint: f.endpoint }], { gateway_id: 'gw-test' }, keys),
      {
        logger: captureLogs().logger,
      },
    );
    defer(() => gw.close());
    const out = await gw.intercept({ method: 'CreateSandbox', request: { name: 'x' } });
    expect(out.outcome).toBe('allowed');
    expect(f.calls.map((c) => c.rpc)).toEqual(['Describe', 'Evaluate']);
    const t = f.calls[1]?.token;
    expect(t?.header).toEqual({ alg: 'EdDSA', typ: 'openshell-ext+jwt', kid: 'gw-key-1' });
    const c = t?.claims ?? {};
    expect(c).toMatchObject({ iss: issuer, sub: issuer, aud: audience, caller_kind: 'gateway' });
    expect(typeof c.aud).toBe('string');
    expect(Number(c.exp) - Number(c.iat)).toBe(900);
    expect(String(c.jti)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(c).not.toHaveProperty('sandbox_id');
    expect(f.calls[0]?.metadata.authorization).toBe(`Bearer ${t?.raw}`);
  });

  it('gives each interceptor a token for its own audience', async () => {
    const a = await serve({ manifest: MANIFEST });
    const b = await serve({ manifest: { ...MANIFEST, name: 'other' } });
    const gw = await createGateway(
      configFor(
        [
          { name: 'ext', grpc_endpoint: a.endpoint },
          { name: 'other', grpc_endpoint: b.endpoint, audience: 'spiffe://example/other' },
        ],
        {},
        keys,
      ),
      { logger: captureLogs().logger },
    );
    defer(() => gw.close());
    expect(a.calls[0]?.token?.claims.aud).toBe(audience);
    expect(b.calls[0]?.token?.claims.aud).toBe('spiffe://example/other');
  });

  it('is refused at startup by a service that expects another audience', async () => {
    const f = await serve({
      manifest: MANIFEST,
      auth: { jwk: keys.jwk, issuer: 'openshell-gateway:openshell', audience: 'urn:other' },
    });
    await expect(
      createGateway(configFor([{ name: 'ext', grpc_endpoint: f.endpoint }], {}, keys), {
        logger: captureLogs().logger,
      }),
    ).rejects.toThrow("interceptor 'ext': Describe failed: UNAUTHENTICATED: unauthenticated");
  });

  it('reuses a token until 4/5 of its lifetime, then mints a new one', async () => {
    const f = await serve({ manifest: MANIFEST });
    let now = Date.UTC(2030, 0, 1);
    const gw = await createGateway(
      configFor([{ name: 'ext', grpc_endpoint: f.endpoint }], { jwt_ttl: '100s' }, keys),
      {
        logger: captureLogs().logger,
        now: () => now,
      },
    );
    defer(() => gw.close());
    const call = () => gw.intercept({ method: 'CreateSandbox', request: { name: 'x' } });
    await call();
    now += 79_000;
    await call();
    now += 1_000; // 80 s: 4/5 of 100 s
    await call();
    now += 50_000;
    await call();
    const tokens = f.calls.map((c) => c.token);
    const [describe, first, reused, rotated, stillRotated] = tokens;
    expect(first?.raw).toBe(describe?.raw);
    expect(reused?.raw).toBe(first?.raw);
    expect(rotated?.raw).not.toBe(first?.raw);
    expect(rotated?.claims.jti).not.toBe(first?.claims.jti);
    expect(Number(rotated?.claims.iat) - Number(first?.claims.iat)).toBe(80);
    expect(Number(rotated?.claims.exp) - Number(rotated?.claims.iat)).toBe(100);
    expect(stillRotated?.raw).toBe(rotated?.raw);
  });

  it('checks expected_audience when authenticated', async () => {
    const f = await serve({ manifest: { ...MANIFEST, expectedAudience: 'urn:somebody-else' } });
    await expect(
      createGateway(configFor([{ name: 'ext', grpc_endpoint: f.endpoint }], {}, keys), {
        logger: captureLogs().logger,
      }),
    ).rejects.toThrow(
      `interceptor 'ext': manifest expected_audience "urn:somebody-else" does not match the configured audience "${audience}"`,
    );
    const ok = await serve({ manifest: { ...MANIFEST, expectedAudience: audience } });
    const gw = await createGateway(configFor([{ name: 'ext', grpc_endpoint: ok.endpoint }], {}, keys), {
      logger: captureLogs().logger,
    });
    defer(() => gw.close());
    expect(gw.plan.interceptors[0]?.authenticated).toBe(true);
  });

  it('allow_insecure_transport: no token, expected_audience not checked, and a warning at every start', async () => {
    const f = await serve({ manifest: { ...MANIFEST, expectedAudience: 'urn:somebody-else' } });
    const cfg = configFor(
      [{ name: 'ext', grpc_endpoint: f.endpoint, allow_insecure_transport: true }],
      {},
      keys,
    );
    const logs = captureLogs();
    for (let i = 0; i < 2; i++) {
      const gw = await createGateway(cfg, { logger: logs.logger });
      await gw.intercept({ method: 'CreateSandbox', request: { name: 'x' } });
      await gw.close();
    }
    expect(f.calls.every((c) => c.metadata.authorization === undefined)).toBe(true);
    expect(
      logs
        .messages('warn')
        .filter((m) => m.includes('allow_insecure_transport = true: no token is attached')),
    ).toHaveLength(2);
  });

  it('refuses a signing key that is not Ed25519, naming the file', async () => {
    const rsa = join(keys.dir, 'rsa.pem');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    await writeFile(rsa, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const cfg = configFor([{ name: 'ext', grpc_endpoint: 'http://127.0.0.1:1' }], {
      jwt_private_key_path: rsa,
      jwt_key_id: 'k',
    });
    const err = await createGateway(cfg, { logger: captureLogs().logger }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayStartupError);
    expect((err as Error).message).toBe(
      `JWT signing: jwt_private_key_path ${rsa} holds a rsa key; an Ed25519 key is required`,
    );
    const missing = configFor([{ name: 'ext', grpc_endpoint: 'http://127.0.0.1:1' }], {
      jwt_private_key_path: join(keys.dir, 'nope.pem'),
      jwt_key_id: 'k',
    });
    await expect(createGateway(missing, { logger: captureLogs().logger })).rejects.toThrow(
      /cannot read jwt_private_key_path .*nope\.pem/,
    );
  });
});

describe('TokenMinter', () => {
  it('refuses lifetimes over 3600 s', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    expect(() => new TokenMinter(privateKey, 'k', issuer, 3601)).toThrow(/1..3600/);
    const m = new TokenMinter(privateKey, 'k', issuer, 3600);
    expect(await m.token('a')).toBe(await m.token('a'));
    expect(m.minted).toBe(1);
  });
});
