import { openshellV1, providerProfileRevision } from '@openshell-interceptors/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogs, configFor, deferAfterEach, type KeyFiles, makeKeys } from './__fixtures__/harness.js';
import {
  type RunningFixture,
  type ScriptSpec,
  startInterceptorServer,
} from './__fixtures__/interceptor-server.js';
import { ProviderProfileError } from './errors.js';
import { createGateway, type Gateway } from './gateway.js';

const profile = (id: string): openshellV1.ProviderProfile =>
  openshellV1.ProviderProfile.fromPartial({ id, displayName: id });

const manifest = (name: string) => ({ name, bindings: [], providerProfiles: true });

let keys: KeyFiles;
beforeAll(async () => {
  keys = await makeKeys();
});
afterAll(async () => {
  await keys.cleanup();
});
const defer = deferAfterEach();

async function serve(script: ScriptSpec) {
  const f = await startInterceptorServer(script);
  defer(() => f.close());
  return f;
}

async function gatewayWith(
  snapshots: Record<string, ScriptSpec['snapshot']>,
  sources: Record<string, unknown>[],
) {
  const ics: Record<string, unknown>[] = [];
  const fs: Record<string, RunningFixture> = {};
  for (const [name, snapshot] of Object.entries(snapshots)) {
    fs[name] = await serve({ manifest: manifest(name), ...(snapshot ? { snapshot } : {}) });
    ics.push({ name, grpc_endpoint: fs[name].endpoint });
  }
  const gw = await createGateway(configFor(ics, { provider_profile_sources: sources }, keys), {
    logger: captureLogs().logger,
    providerProfiles: { builtin: [profile('anthropic')], user: async () => [profile('My-Proxy')] },
  });
  defer(() => gw.close());
  return { gw, fs };
}

async function failure(gw: Gateway): Promise<ProviderProfileError> {
  const e = await gw.providerProfiles().catch((x: unknown) => x);
  expect(e).toBeInstanceOf(ProviderProfileError);
  return e as ProviderProfileError;
}

describe('provider profile snapshots', () => {
  it('aggregates sources in configured order, only on demand, with the interceptor token', async () => {
    const { gw, fs } = await gatewayWith({ ext: { revision: 'rev-7', profiles: [{ id: 'corp-llm' }] } }, [
      { type: 'user' },
      { type: 'interceptor', name: 'ext' },
      { type: 'builtin' },
    ]);
    expect(fs.ext?.calls.map((c) => c.rpc)).toEqual(['Describe']);
    const cat = await gw.providerProfiles();
    expect(cat.sources.map((s) => [s.source, s.profiles.map((p) => p.id)])).toEqual([
      ['user', ['My-Proxy']],
      ['interceptor:ext', ['corp-llm']],
      ['builtin', ['anthropic']],
    ]);
    expect(cat.sources[1]?.revision).toBe('rev-7');
    expect(cat.profiles.map((p) => p.id)).toEqual(['My-Proxy', 'corp-llm', 'anthropic']);
    const snap = fs.ext?.calls[1];
    expect(snap?.rpc).toBe('SnapshotProviderProfiles');
    expect(snap?.token?.claims.aud).toBe('urn:openshell:extension:interceptor:ext');
  });

  it('replaces a blank revision with the stable digest, unchanged while the content is unchanged', async () => {
    const { gw } = await gatewayWith({ ext: { revision: '  ', profiles: [{ id: 'b' }, { id: 'a' }] } }, [
      { type: 'interceptor', name: 'ext' },
    ]);
    const one = await gw.providerProfiles();
    const two = await gw.providerProfiles();
    const expected = providerProfileRevision([profile('a'), profile('b')]);
    expect(one.sources[0]?.revision).toBe(expected);
    expect(two.sources[0]?.revision).toBe(expected);
    expect(one.revision).toBe(two.revision);
  });

  it('refuses an empty snapshot as FAILED_PRECONDITION', async () => {
    const { gw } = await gatewayWith({ ext: { profiles: [] } }, [{ type: 'interceptor', name: 'ext' }]);
    const e = await failure(gw);
    expect(e.code).toBe('FAILED_PRECONDITION');
    expect(e.message).toBe('interceptor:ext: snapshot holds no profiles');
  });

  it('refuses ids that collide after normalisation, within and across sources', async () => {
    const within = await gatewayWith({ ext: { profiles: [{ id: 'A' }, { id: ' a ' }] } }, [
      { type: 'interceptor', name: 'ext' },
    ]);
    expect((await failure(within.gw)).message).toBe("interceptor:ext: profile id 'a' appears twice");
    const across = await gatewayWith({ ext: { profiles: [{ id: 'Anthropic' }] } }, [
      { type: 'builtin' },
      { type: 'interceptor', name: 'ext' },
    ]);
    const e = await failure(across.gw);
    expect(e.code).toBe('FAILED_PRECONDITION');
    expect(e.message).toBe("interceptor:ext: profile id 'anthropic' is already provided by builtin");
  });

  it('surfaces a failing or unreachable interceptor as UNAVAILABLE', async () => {
    const { gw, fs } = await gatewayWith(
      { ext: { error: { code: 'INTERNAL', message: 'catalog broken' } } },
      [{ type: 'interceptor', name: 'ext' }],
    );
    const e = await failure(gw);
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toMatch(/interceptor:ext: SnapshotProviderProfiles failed: INTERNAL: catalog broken/);
    await fs.ext?.close();
    expect((await failure(gw)).code).toBe('UNAVAILABLE');
  });
});
