import { describe, expect, it } from 'vitest';
import { captureLogs, configFor, deferAfterEach } from './__fixtures__/harness.js';
import {
  type ManifestSpec,
  type RunningFixture,
  type ScriptSpec,
  startInterceptorServer,
} from './__fixtures__/interceptor-server.js';
import { GatewayStartupError } from './errors.js';
import { createGateway, type Gateway } from './gateway.js';

const CS = 'openshell.v1.OpenShell/CreateSandbox';
const DS = 'openshell.v1.OpenShell/DeleteSandbox';

const defer = deferAfterEach();

async function serve(script: ScriptSpec | ManifestSpec): Promise<RunningFixture> {
  const f = await startInterceptorServer('manifest' in script ? script : { manifest: script });
  defer(() => f.close());
  return f;
}

async function start(interceptors: Record<string, unknown>[], gateway: Record<string, unknown> = {}) {
  const logs = captureLogs();
  const gw = await createGateway(configFor(interceptors, gateway), { logger: logs.logger });
  defer(() => gw.close());
  return { gw, logs };
}

async function refusal(
  interceptors: Record<string, unknown>[],
  gateway: Record<string, unknown> = {},
): Promise<string> {
  try {
    const { gw } = await start(interceptors, gateway);
    throw new Error(`started with plan ${JSON.stringify(gw.plan.entries)}`);
  } catch (e) {
    if (!(e instanceof GatewayStartupError)) throw e;
    return e.message;
  }
}

const TWO_BINDINGS: ManifestSpec = {
  name: 'ext',
  bindings: [
    { id: 'create', rpc: CS, phases: ['modify_operation', 'validate'] },
    { id: 'delete', service: 'openshell.v1.OpenShell', method: 'DeleteSandbox', phases: ['validate'] },
  ],
};

const rows = (gw: Gateway) =>
  gw.plan.entries.map((e) => `${e.method}:${e.phase}:${e.interceptor}/${e.bindingId}:${e.failurePolicy}`);

describe('startup: manifest checks', () => {
  it.each([
    [
      'phase 0',
      { id: 'b', rpc: CS, phases: [0] },
      /binding 'b' declares phase 0, which is not a known phase/,
    ],
    ['unused phase 1', { id: 'b', rpc: CS, phases: [1] }, /declares phase 1/],
    ['unknown phase 9', { id: 'b', rpc: CS, phases: ['validate', 9] }, /declares phase 9/],
    ['no phases', { id: 'b', rpc: CS, phases: [] }, /declares no phases/],
    [
      'a non-interceptable RPC',
      { id: 'b', rpc: 'openshell.v1.OpenShell/GetSandbox', phases: ['validate'] },
      /GetSandbox, which is not one of the 25/,
    ],
    [
      'another service',
      { id: 'b', rpc: 'other.Svc/CreateSandbox', phases: ['validate'] },
      /not one of the 25/,
    ],
    [
      'an invalid rpc selector',
      { id: 'b', rpc: 'CreateSandbox', phases: ['validate'] },
      /invalid rpc selector "CreateSandbox"/,
    ],
    ['an empty selector', { id: 'b', phases: ['validate'] }, /selector without rpc/],
    ['an empty id', { id: '', rpc: CS, phases: ['validate'] }, /binding #1 has an empty id/],
    [
      'a bad failure policy',
      { id: 'b', rpc: CS, phases: ['validate'], failurePolicy: 'sometimes' },
      /failure_policy "sometimes"/,
    ],
  ])('refuses a manifest binding with %s, naming the interceptor', async (_l, binding, message) => {
    const f = await serve({ name: 'ext', bindings: [binding as ManifestSpec['bindings'][number]] });
    const m = await refusal([{ name: 'ext', grpc_endpoint: f.endpoint }]);
    expect(m).toMatch(/^interceptor 'ext': /);
    expect(m).toMatch(message);
  });

  it('refuses duplicate binding ids in a manifest', async () => {
    const f = await serve({
      name: 'ext',
      bindings: [
        { id: 'b', rpc: CS, phases: ['validate'] },
        { id: 'b', rpc: DS, phases: ['validate'] },
      ],
    });
    expect(await refusal([{ name: 'ext', grpc_endpoint: f.endpoint }])).toMatch(
      /declares binding id 'b' twice/,
    );
  });

  it('uses the rpc selector when both rpc and service+method are set', async () => {
    const f = await serve({
      name: 'ext',
      bindings: [
        {
          id: 'b',
          rpc: CS,
          service: 'openshell.v1.OpenShell',
          method: 'DeleteSandbox',
          phases: ['validate'],
        },
      ],
    });
    const { gw } = await start([{ name: 'ext', grpc_endpoint: f.endpoint }]);
    expect(rows(gw)).toEqual(['CreateSandbox:validate:ext/b:fail_closed']);
  });

  it('refuses to start when one interceptor among good ones is broken', async () => {
    const good = await serve(TWO_BINDINGS);
    const bad = await serve({ name: 'bad', bindings: [{ id: 'x', rpc: CS, phases: [0] }] });
    const m = await refusal([
      { name: 'good', grpc_endpoint: good.endpoint },
      { name: 'bad', grpc_endpoint: bad.endpoint },
    ]);
    expect(m).toMatch(/^interceptor 'bad'/);
  });
});

describe('startup: failure policy resolution', () => {
  it('applies our phase defaults: fail_closed for modify/validate, fail_open for post_commit', async () => {
    const f = await serve({
      name: 'ext',
      bindings: [{ id: 'b', rpc: CS, phases: ['modify_operation', 'validate', 'post_commit'] }],
    });
    const { gw } = await start([{ name: 'ext', grpc_endpoint: f.endpoint }]);
    expect(gw.plan.entries.map((e) => [e.phase, e.failurePolicy, e.failurePolicySource])).toEqual([
      ['modify_operation', 'fail_closed', 'phase_default'],
      ['validate', 'fail_closed', 'phase_default'],
      ['post_commit', 'fail_open', 'phase_default'],
    ]);
  });

  it('dynamic: config entry, then manifest binding, then config interceptor, then manifest, then default', async () => {
    const f = await serve({
      name: 'ext',
      failurePolicy: 'fail_open',
      bindings: [
        { id: 'entry', rpc: CS, phases: ['validate'], failurePolicy: 'fail_open' },
        { id: 'mbinding', rpc: CS, phases: ['validate'], failurePolicy: 'fail_closed' },
        { id: 'interceptor', rpc: CS, phases: ['validate'] },
      ],
    });
    const { gw } = await start([
      {
        name: 'ext',
        grpc_endpoint: f.endpoint,
        failure_policy: 'fail_closed',
        bindings: [{ id: 'entry', failure_policy: 'fail_closed' }],
      },
    ]);
    expect(gw.plan.entries.map((e) => [e.bindingId, e.failurePolicy, e.failurePolicySource])).toEqual([
      ['entry', 'fail_closed', 'config_binding'],
      ['mbinding', 'fail_closed', 'manifest_binding'],
      ['interceptor', 'fail_closed', 'config_interceptor'],
    ]);
    const f2 = await serve({
      name: 'ext2',
      failurePolicy: 'fail_open',
      bindings: [{ id: 'm', rpc: CS, phases: ['validate'] }],
    });
    const { gw: gw2 } = await start([{ name: 'ext2', grpc_endpoint: f2.endpoint }]);
    expect(gw2.plan.entries.map((e) => [e.failurePolicy, e.failurePolicySource])).toEqual([
      ['fail_open', 'manifest'],
    ]);
  });

  it('strict modes ignore the manifest policies: config entry, then config interceptor, then default', async () => {
    const f = await serve({
      name: 'ext',
      failurePolicy: 'fail_open',
      bindings: [
        { id: 'a', rpc: CS, phases: ['validate'], failurePolicy: 'fail_open' },
        { id: 'b', rpc: DS, phases: ['validate'], failurePolicy: 'fail_open' },
      ],
    });
    const { gw } = await start([
      {
        name: 'ext',
        grpc_endpoint: f.endpoint,
        binding_policy: 'allowlist',
        bindings: [
          { rpc: CS, phases: ['validate'], failure_policy: 'fail_open' },
          { rpc: DS, phases: ['validate'] },
        ],
      },
    ]);
    expect(gw.plan.entries.map((e) => [e.bindingId, e.failurePolicy, e.failurePolicySource])).toEqual([
      ['a', 'fail_open', 'config_binding'],
      ['b', 'fail_closed', 'phase_default'],
    ]);
  });

  it.each([
    ['the manifest binding', { failurePolicy: 'fail_closed' }, {}, /from manifest binding/],
    ['the manifest', {}, {}, /from manifest\)/, 'fail_closed'],
    ['the config interceptor', {}, { failure_policy: 'fail_closed' }, /from config interceptor/],
    [
      'a config entry',
      {},
      { bindings: [{ id: 'obs', failure_policy: 'fail_closed' }] },
      /from config binding/,
    ],
  ])(
    'refuses a post_commit binding whose policy resolves to fail_closed via %s',
    async (_l, mb, cfg, message, manifestPolicy?) => {
      const f = await serve({
        name: 'ext',
        ...(manifestPolicy ? { failurePolicy: manifestPolicy } : {}),
        bindings: [{ id: 'obs', rpc: CS, phases: ['post_commit'], ...mb }],
      });
      const m = await refusal([{ name: 'ext', grpc_endpoint: f.endpoint, ...cfg }]);
      expect(m).toMatch(/binding 'obs' includes post_commit but its failure policy resolves to fail_closed/);
      expect(m).toMatch(message);
    },
  );

  it('accepts a post_commit binding when the config makes it fail_open over a fail_closed manifest', async () => {
    const f = await serve({
      name: 'ext',
      failurePolicy: 'fail_closed',
      bindings: [{ id: 'obs', rpc: CS, phases: ['post_commit'] }],
    });
    const { gw } = await start([
      { name: 'ext', grpc_endpoint: f.endpoint, bindings: [{ id: 'obs', failure_policy: 'fail_open' }] },
    ]);
    expect(rows(gw)).toEqual(['CreateSandbox:post_commit:ext/obs:fail_open']);
  });
});

describe('startup: binding_policy', () => {
  it('dynamic: runs every manifest binding and warns that the manifest decides', async () => {
    const f = await serve(TWO_BINDINGS);
    const { gw, logs } = await start([{ name: 'ext', grpc_endpoint: f.endpoint }]);
    expect(rows(gw)).toEqual([
      'CreateSandbox:modify_operation:ext/create:fail_closed',
      'CreateSandbox:validate:ext/create:fail_closed',
      'DeleteSandbox:validate:ext/delete:fail_closed',
    ]);
    expect(
      logs.messages('warn').some((m) => m.includes('binding_policy = dynamic: the manifest decides')),
    ).toBe(true);
  });

  it('dynamic: an entry may disable a binding or narrow its phases, matched by id or selector', async () => {
    const f = await serve(TWO_BINDINGS);
    const { gw } = await start([
      {
        name: 'ext',
        grpc_endpoint: f.endpoint,
        bindings: [
          { rpc: CS, phases: ['validate'] },
          { id: 'delete', disabled: true },
        ],
      },
    ]);
    expect(rows(gw)).toEqual(['CreateSandbox:validate:ext/create:fail_closed']);
    expect(gw.plan.interceptors[0]?.ignored).toEqual([
      { bindingId: 'delete', reason: "disabled by bindings[1] (id 'delete')" },
    ]);
  });

  it.each([
    [
      'add a phase',
      [{ id: 'delete', phases: ['validate', 'modify_operation'] }],
      /adds phase\(s\) \[modify_operation\] that manifest binding 'delete' does not declare \[validate\]; an override may only narrow phases/,
    ],
    [
      'change the selector of an id',
      [{ id: 'delete', rpc: CS }],
      /names openshell.v1.OpenShell\/CreateSandbox but manifest binding 'delete' selects openshell.v1.OpenShell\/DeleteSandbox; an override may not change or widen a selector/,
    ],
    [
      'select an RPC the manifest does not',
      [{ rpc: 'openshell.v1.OpenShell/ExposeService', phases: ['validate'] }],
      /selects openshell.v1.OpenShell\/ExposeService, which no manifest binding selects/,
    ],
    [
      'name an unknown id',
      [{ id: 'nope', disabled: true }],
      /bindings\[0\] \(id 'nope'\) matches no manifest binding \(manifest ids: create, delete\)/,
    ],
  ])('dynamic: refuses an override that tries to %s', async (_l, bindings, message) => {
    const f = await serve(TWO_BINDINGS);
    expect(await refusal([{ name: 'ext', grpc_endpoint: f.endpoint, bindings }])).toMatch(message);
  });

  it('allowlist: only configured selectors and phases run, in configured order; extras are ignored and logged', async () => {
    const f = await serve({
      name: 'ext',
      bindings: [
        { id: 'create', rpc: CS, phases: ['modify_operation', 'validate'] },
        { id: 'create2', rpc: CS, phases: ['validate'] },
        { id: 'delete', rpc: DS, phases: ['validate'] },
      ],
    });
    const { gw, logs } = await start([
      {
        name: 'ext',
        grpc_endpoint: f.endpoint,
        binding_policy: 'allowlist',
        bindings: [
          { rpc: CS, phases: ['validate'], id: 'create2' },
          { rpc: CS, phases: ['modify_operation'] },
        ],
      },
    ]);
    expect(rows(gw)).toEqual([
      'CreateSandbox:modify_operation:ext/create:fail_closed',
      'CreateSandbox:validate:ext/create2:fail_closed',
    ]);
    expect(gw.plan.interceptors[0]?.ignored).toEqual([
      { bindingId: 'delete', reason: 'not in the allowlist' },
    ]);
    expect(
      logs.lines.some((l) => l.msg === 'manifest binding not planned' && l.binding_id === 'delete'),
    ).toBe(true);
    await gw.intercept({ method: 'DeleteSandbox', request: { name: 'x' } });
    expect(f.evaluations()).toHaveLength(0);
  });

  it('allowlist: refuses a selector matching no binding, or several, or one whose phases do not include the configured ones', async () => {
    const f = await serve({
      name: 'ext',
      bindings: [
        { id: 'v1', rpc: CS, phases: ['validate'] },
        { id: 'v2', rpc: CS, phases: ['validate'] },
        { id: 'd', rpc: DS, phases: ['validate'] },
      ],
    });
    const base = { name: 'ext', grpc_endpoint: f.endpoint, binding_policy: 'allowlist' };
    expect(await refusal([{ ...base, bindings: [{ rpc: CS, phases: ['validate'] }] }])).toMatch(
      /bindings\[0\] must match exactly one manifest binding, but 2 of the manifest bindings for openshell.v1.OpenShell\/CreateSandbox \('v1' \[validate\], 'v2' \[validate\]\) have phases including \[validate\]/,
    );
    expect(await refusal([{ ...base, bindings: [{ rpc: DS, phases: ['modify_operation'] }] }])).toMatch(
      /0 of the manifest bindings for openshell.v1.OpenShell\/DeleteSandbox/,
    );
    expect(
      await refusal([
        { ...base, bindings: [{ rpc: 'openshell.v1.OpenShell/ExposeService', phases: ['validate'] }] },
      ]),
    ).toMatch(/no manifest binding selects openshell.v1.OpenShell\/ExposeService/);
  });

  it('exact: phase sets must be equal and any extra manifest binding is an error', async () => {
    const f = await serve(TWO_BINDINGS);
    const base = { name: 'ext', grpc_endpoint: f.endpoint, binding_policy: 'exact' };
    const { gw } = await start([
      {
        ...base,
        bindings: [
          { rpc: DS, phases: ['validate'] },
          { rpc: CS, phases: ['validate', 'modify_operation'] },
        ],
      },
    ]);
    expect(rows(gw)).toEqual([
      'CreateSandbox:modify_operation:ext/create:fail_closed',
      'CreateSandbox:validate:ext/create:fail_closed',
      'DeleteSandbox:validate:ext/delete:fail_closed',
    ]);
    expect(
      await refusal([
        {
          ...base,
          bindings: [
            { rpc: DS, phases: ['validate'] },
            { rpc: CS, phases: ['validate'] },
          ],
        },
      ]),
    ).toMatch(/have exactly the phases \[validate\]/);
    expect(await refusal([{ ...base, bindings: [{ rpc: DS, phases: ['validate'] }] }])).toMatch(
      /manifest binding 'create' \(openshell.v1.OpenShell\/CreateSandbox\) is not in the configuration; binding_policy "exact" refuses extra manifest bindings/,
    );
  });

  it('exact: a disabled entry keeps its binding out of the plan without making it an extra', async () => {
    const f = await serve(TWO_BINDINGS);
    const { gw } = await start([
      {
        name: 'ext',
        grpc_endpoint: f.endpoint,
        binding_policy: 'exact',
        bindings: [
          { rpc: DS, phases: ['validate'] },
          { rpc: CS, phases: ['modify_operation', 'validate'], disabled: true },
        ],
      },
    ]);
    expect(rows(gw)).toEqual(['DeleteSandbox:validate:ext/delete:fail_closed']);
  });
});

describe('startup: Describe', () => {
  it('retries Describe with backoff until the service answers', async () => {
    const f = await serve({
      manifest: TWO_BINDINGS,
      describe: { failTimes: 2, error: { code: 'UNAVAILABLE' } },
    });
    const { gw, logs } = await start([{ name: 'ext', grpc_endpoint: f.endpoint, describe_backoff: '10ms' }]);
    expect(gw.plan.entries).toHaveLength(3);
    expect(f.calls.filter((c) => c.rpc === 'Describe')).toHaveLength(3);
    expect(logs.lines.filter((l) => l.msg === 'Describe failed; retrying').map((l) => l.retry_in_ms)).toEqual(
      [10, 20],
    );
  });

  it('gives up after describe_attempts, naming the interceptor and the cause', async () => {
    const f = await serve({
      manifest: TWO_BINDINGS,
      describe: { failTimes: 5, error: { code: 'UNAVAILABLE', message: 'warming up' } },
    });
    const m = await refusal([
      { name: 'ext', grpc_endpoint: f.endpoint, describe_attempts: 2, describe_backoff: '1ms' },
    ]);
    expect(m).toBe("interceptor 'ext': Describe failed after 2 attempt(s): UNAVAILABLE: warming up");
  });

  it('does not retry a status that will not change (UNAUTHENTICATED)', async () => {
    const f = await serve({
      manifest: TWO_BINDINGS,
      describe: { error: { code: 'UNAUTHENTICATED', message: 'who are you' } },
    });
    const m = await refusal([{ name: 'ext', grpc_endpoint: f.endpoint, describe_backoff: '1ms' }]);
    expect(m).toBe("interceptor 'ext': Describe failed: UNAUTHENTICATED: who are you");
    expect(f.calls).toHaveLength(1);
  });

  it('refuses a Describe that exceeds the timeout', async () => {
    const f = await serve({ manifest: TWO_BINDINGS, describe: { delayMs: 400 } });
    const m = await refusal([
      { name: 'ext', grpc_endpoint: f.endpoint, timeout: '50ms', describe_attempts: 1 },
    ]);
    expect(m).toMatch(/Describe failed after 1 attempt\(s\): no answer within 50ms/);
  });

  it('refuses an endpoint nobody listens on after the retries', async () => {
    const f = await serve(TWO_BINDINGS);
    const endpoint = f.endpoint;
    await f.close();
    const m = await refusal([
      { name: 'gone', grpc_endpoint: endpoint, describe_attempts: 2, describe_backoff: '1ms' },
    ]);
    expect(m).toMatch(/^interceptor 'gone': Describe failed after 2 attempt\(s\): UNAVAILABLE/);
  });

  it('refuses a manifest larger than max_response_bytes', async () => {
    const f = await serve({
      name: 'ext',
      bindings: Array.from({ length: 40 }, (_, i) => ({
        id: `binding-${i}-${'x'.repeat(40)}`,
        rpc: CS,
        phases: ['validate' as const],
      })),
    });
    const m = await refusal([{ name: 'ext', grpc_endpoint: f.endpoint, max_response_bytes: 512 }]);
    expect(m).toMatch(/^interceptor 'ext': Describe failed: response too large/);
  });

  it('refuses an interceptor source that does not advertise provider_profiles', async () => {
    const f = await serve(TWO_BINDINGS);
    const m = await refusal([{ name: 'ext', grpc_endpoint: f.endpoint }], {
      provider_profile_sources: [{ type: 'interceptor', name: 'ext' }],
    });
    expect(m).toMatch(
      /listed in provider_profile_sources but its manifest does not advertise provider_profiles/,
    );
  });

  it('refuses an interceptor that would get no token when the gateway has no signing key', async () => {
    const f = await serve(TWO_BINDINGS);
    const m = await refusal([{ name: 'ext', grpc_endpoint: f.endpoint, allow_insecure_transport: false }]);
    expect(m).toMatch(/no token to attach: configure jwt_private_key_path/);
  });
});

describe('the plan', () => {
  it('is immutable and lists bindings in run order with their limits', async () => {
    const f = await serve({
      name: 'ext',
      bindings: [
        { id: 'obs', rpc: DS, phases: ['post_commit'] },
        { id: 'create', rpc: CS, phases: ['post_commit', 'validate', 'modify_operation'] },
      ],
    });
    const { gw } = await start([{ name: 'ext', grpc_endpoint: f.endpoint, timeout: '2s', max_patches: 4 }]);
    expect(rows(gw)).toEqual([
      'CreateSandbox:modify_operation:ext/create:fail_closed',
      'CreateSandbox:validate:ext/create:fail_closed',
      'CreateSandbox:post_commit:ext/create:fail_open',
      'DeleteSandbox:post_commit:ext/obs:fail_open',
    ]);
    expect(gw.plan.entries[0]).toMatchObject({
      timeoutMs: 2000,
      maxPatches: 4,
      maxResponseBytes: 1048576,
      rpc: CS,
    });
    expect(Object.isFrozen(gw.plan)).toBe(true);
    expect(Object.isFrozen(gw.plan.entries)).toBe(true);
    expect(Object.isFrozen(gw.plan.entries[0])).toBe(true);
    expect(() => (gw.plan.entries as unknown as unknown[]).push({})).toThrow();
    expect(JSON.parse(JSON.stringify(gw.plan)).entries).toHaveLength(4);
  });
});
