import naming from '@openshell-interceptors/example-naming';
import { allow, deny, EvaluateError, interceptor, patch, serve } from '@openshell-interceptors/sdk';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { principals, requestFixture } from './fixtures.js';
import { type TestGateway, type TestTransport, testGateway } from './gateway.js';
import { createTestSigningKey } from './keys.js';
import './vitest.js';

const open: TestGateway[] = [];
async function start(...args: Parameters<typeof testGateway>): Promise<TestGateway> {
  const gw = await testGateway(...args);
  open.push(gw);
  return gw;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((g) => g.close()));
});

const labeller = interceptor('labeller').modify('CreateSandbox', ({ draft }) => {
  draft.labels = { ...draft.labels, owner: 'platform' };
});

// Denies when the first interceptor has not run yet: proves ordering.
const needsLabel = interceptor('needs-label').validate('CreateSandbox', ({ operation }) =>
  operation.labels?.owner === 'platform'
    ? allow({ annotations: { checked: 'yes' } })
    : deny('FAILED_PRECONDITION', 'no owner label'),
);

for (const transport of ['in-process', 'grpc'] as TestTransport[]) {
  describe(`testGateway (${transport})`, () => {
    it('runs the naming example: lower-cases a name with one patch', async () => {
      const gw = await start({ interceptors: [naming], transport });
      const r = await gw.call('CreateSandbox', { name: 'Team-A' });
      expect(r).toBeAllowed();
      expect(r).toBePatched('/name', 'team-a');
      expect(r).toHaveAnnotations({ naming: 'lower-cased' });
      expect(r.request).toMatchObject({ name: 'team-a' });
    });

    it('denies a reserved name with the interceptor code and reason', async () => {
      const gw = await start({ interceptors: [naming], transport });
      const r = await gw.call('CreateSandbox', requestFixture('CreateSandbox', { name: 'admin' }));
      expect(r).toBeDenied('INVALID_ARGUMENT', /is reserved/);
      expect(r).not.toBeAllowed();
    });

    it('fills a missing name from the principal, running the fixture request by default', async () => {
      const gw = await start({ interceptors: [naming], transport });
      const r = await gw.call('CreateSandbox', requestFixture('CreateSandbox', { name: undefined }), {
        principal: principals.user('Bob.Jones@example.com'),
      });
      expect(r).toBeAllowed();
      expect(r.operation.name).toMatch(/^bob-jones-[a-z0-9]{5}$/);
      const plain = await gw.call('CreateSandbox');
      expect(plain).toBeAllowed();
      expect(plain).toHaveFinalOperation({ name: 'dev-alice-1', labels: { team: 'ml' } });
    });

    it('runs several interceptors in (order, name) order like a configured gateway', async () => {
      const gw = await start({
        interceptors: [
          { interceptor: needsLabel, order: 1 },
          { interceptor: labeller, order: 2 },
          { interceptor: naming, order: 0 },
        ],
        transport,
      });
      expect(gw.plan.interceptors.map((i) => i.name)).toEqual(['naming', 'needs-label', 'labeller']);
      // Every modify runs before every validate, whatever the order.
      const r = await gw.call('CreateSandbox', { name: 'X' });
      expect(r).toBeAllowed();
      expect(r).toHaveFinalOperation({ name: 'x', labels: { owner: 'platform' } });
      expect(r).toHaveAnnotations({ checked: 'yes' }, { interceptor: 'needs-label' });
      expect(r.evaluations.map((e) => `${e.phase}:${e.interceptor}`)).toEqual([
        'modify_operation:naming',
        'modify_operation:labeller',
        'validate:naming',
        'validate:needs-label',
      ]);
    });

    it('applies configured binding overrides (a disabled binding does not run)', async () => {
      const gw = await start({
        interceptors: [
          { interceptor: labeller, bindings: [{ id: 'create-sandbox', disabled: true }] },
          needsLabel,
        ],
        transport,
      });
      expect(await gw.call('CreateSandbox')).toBeDenied('FAILED_PRECONDITION', 'no owner label');
    });

    it('observes the committed response in post_commit, and the response is the fixture or the given one', async () => {
      const seen: string[] = [];
      const observer = interceptor('observer').observe('CreateSandbox', ({ operation, annotate }) => {
        seen.push(operation.sandbox?.metadata?.name ?? '');
        annotate('observed', 'true');
      });
      const gw = await start({ interceptors: [observer], transport });
      const r = await gw.call('CreateSandbox');
      expect(r).toHaveAnnotations({ observed: 'true' }, { phase: 'post_commit' });
      expect(r.response).toMatchObject({ sandbox: { metadata: { name: 'dev-alice-1' } } });
      await gw.call(
        'CreateSandbox',
        { name: 'given' },
        { response: (req) => ({ sandbox: { metadata: { name: req.name } } }) },
      );
      expect(seen).toEqual(['dev-alice-1', 'given']);
      const none = await gw.call('CreateSandbox', undefined, { commit: false });
      expect(none.response).toBeNull();
      expect(seen).toHaveLength(2);
    });

    it('maps an EvaluateError to the failure policy like a gRPC status', async () => {
      const down = interceptor('down').validate('DeleteSandbox', () => {
        throw new EvaluateError('UNAVAILABLE', 'backing store down');
      });
      const closed = await start({
        interceptors: [{ interceptor: down, failurePolicy: 'fail_closed' }],
        transport,
      });
      const r = await closed.call('DeleteSandbox');
      expect(r).toBeDenied(
        'PERMISSION_DENIED',
        /^gateway interceptor 'down' failed closed: UNAVAILABLE: backing store down/,
      );
      expect(r.evaluations[0]?.layer).toBe('transport');
      const openGw = await start({
        interceptors: [{ interceptor: down, failurePolicy: 'fail_open' }],
        transport,
      });
      expect(await openGw.call('DeleteSandbox')).toBeAllowed();
    });

    it('enforces max_patches and max_response_bytes from the configuration', async () => {
      const many = interceptor('many').modify('CreateSandbox', () => [
        patch.add(['labels', 'a'], '1'),
        patch.add(['labels', 'b'], '2'),
        patch.add(['labels', 'c'], '3'),
      ]);
      const gw = await start({ interceptors: [{ interceptor: many, maxPatches: 2 }], transport });
      expect(await gw.call('CreateSandbox')).toBeDenied('PERMISSION_DENIED', /more than max_patches 2/);
      const big = interceptor('big').validate('CreateSandbox', () =>
        allow({ annotations: { blob: 'x'.repeat(4000) } }),
      );
      const small = await start({
        interceptors: [{ interceptor: big, maxResponseBytes: 1024, failurePolicy: 'fail_closed' }],
        transport,
      });
      const r = await small.call('CreateSandbox');
      expect(r).toBeDenied('PERMISSION_DENIED', /failed closed/);
      expect(r.evaluations[0]?.layer).toBe('size');
    });
  });
}

describe('testGateway provider profiles', () => {
  for (const transport of ['in-process', 'grpc'] as TestTransport[]) {
    it(`aggregates an interceptor's snapshot with the gateway's own catalog (${transport})`, async () => {
      const catalog = interceptor('catalog').providerProfiles(() => [
        { id: 'Acme-LLM', displayName: 'Acme' },
      ]);
      const gw = await start({
        interceptors: [catalog],
        transport,
        providerProfileSources: ['builtin', 'catalog'],
        providerProfiles: { builtin: [] },
      });
      const cat = await gw.gateway.providerProfiles();
      expect(cat.sources.map((s) => s.source)).toEqual(['builtin', 'interceptor:catalog']);
      expect(cat.profiles.map((p) => p.id)).toEqual(['Acme-LLM']);
      expect(cat.revision).toMatch(/^sha256:[0-9a-f]{64}$/);
    });
  }

  it('refuses a profile source that names an interceptor without profiles', async () => {
    await expect(testGateway({ interceptors: [naming], providerProfileSources: ['naming'] })).rejects.toThrow(
      /does not advertise provider_profiles/,
    );
  });
});

describe('testGateway auth', () => {
  it('signs tokens and the SDK verifies them over gRPC (auth is on by default there)', async () => {
    const gw = await start({ interceptors: [naming], transport: 'grpc' });
    expect(gw.plan.interceptors[0]?.authenticated).toBe(true);
    expect(await gw.call('CreateSandbox', { name: 'ok' })).toBeAllowed();
  });

  it('verifies tokens in process when asked', async () => {
    const gw = await start({ interceptors: [naming], auth: true });
    expect(gw.plan.interceptors[0]?.authenticated).toBe(true);
    expect(await gw.call('CreateSandbox', { name: 'Up' })).toBePatched('/name', 'up');
  });

  it('serves on a unix socket in a private temp dir when asked', async () => {
    const gw = await start({ interceptors: [naming], transport: 'grpc', listen: 'unix' });
    expect(gw.addresses.naming).toMatch(/^unix:\/\/\/.+\.sock$/);
    expect(await gw.call('CreateSandbox', { name: 'Up' })).toBePatched('/name', 'up');
  });

  it('calls a running endpoint with tokens from a given key, and refuses an audience mismatch at startup', async () => {
    const key = await createTestSigningKey('k1');
    const server = await serve(naming, {
      listen: '127.0.0.1:0',
      logger: pino({ level: 'silent' }),
      auth: { publicKey: key.publicKey, keyId: 'k1', audience: 'urn:acme:naming' },
    });
    try {
      const gw = await start({
        interceptors: [{ name: 'remote', endpoint: `http://${server.address}`, audience: 'urn:acme:naming' }],
        signingKey: key,
        auth: true,
      });
      expect(gw.plan.interceptors[0]?.authenticated).toBe(true);
      expect(await gw.call('CreateSandbox', { name: 'Remote' })).toBePatched('/name', 'remote');
      // The same key also signs for SDK interceptors run by the test gateway (auth on by default with a key).
      const mixed = await start({
        interceptors: [
          { name: 'remote', endpoint: `http://${server.address}`, audience: 'urn:acme:naming' },
          labeller,
        ],
        signingKey: key,
      });
      expect(mixed.plan.interceptors.every((i) => i.authenticated)).toBe(true);
      expect(await mixed.call('CreateSandbox', { name: 'Mixed' })).toHaveFinalOperation({
        name: 'mixed',
        labels: { owner: 'platform' },
      });
      await expect(
        testGateway({
          interceptors: [
            { name: 'remote', endpoint: `http://${server.address}`, audience: 'urn:acme:other' },
          ],
          signingKey: key,
          auth: true,
        }),
      ).rejects.toThrow(/interceptor 'remote'.*(expected_audience|UNAUTHENTICATED)/);
    } finally {
      await server.close({ graceMs: 100 });
      await key.cleanup();
    }
  });
});
