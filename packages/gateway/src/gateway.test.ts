import type { JsonObject } from '@openshell-interceptors/protocol';
import { propagation, type TextMapPropagator } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { captureLogs, configFor, deferAfterEach } from './__fixtures__/harness.js';
import {
  type RunningFixture,
  type ScriptSpec,
  startInterceptorServer,
} from './__fixtures__/interceptor-server.js';
import { createGateway } from './gateway.js';

const CS = 'openshell.v1.OpenShell/CreateSandbox';
const CP = 'openshell.v1.OpenShell/CreateProvider';

const defer = deferAfterEach();

async function serve(script: ScriptSpec): Promise<RunningFixture> {
  const f = await startInterceptorServer(script);
  defer(() => f.close());
  return f;
}

async function start(interceptors: Record<string, unknown>[], gatewayKeys: Record<string, unknown> = {}) {
  const logs = captureLogs();
  const gw = await createGateway(configFor(interceptors, gatewayKeys), { logger: logs.logger });
  defer(() => gw.close());
  return { gw, logs };
}

const sandboxRequest = (): JsonObject => ({ name: 'Team-A', spec: { template: { image: 'ubuntu:24.04' } } });
const sandboxResponse = (name: string): JsonObject => ({ sandbox: { metadata: { name, id: 'sb-1' } } });

describe('intercept: phases and patches', () => {
  it('runs modify → validate → commit → post_commit, applying patches and showing each phase the right view', async () => {
    const f = await serve({
      manifest: {
        name: 'naming',
        bindings: [{ id: 'lower', rpc: CS, phases: ['modify_operation', 'validate', 'post_commit'] }],
      },
      rules: [
        {
          phase: 'modify_operation',
          result: {
            patches: [
              { op: 'replace', path: '/name', value: 'team-a' },
              { op: 'add', path: '/labels', value: { team: 'a' } },
            ],
            annotations: { rule: 'lowercase' },
          },
        },
      ],
    });
    const { gw, logs } = await start([{ name: 'naming', grpc_endpoint: f.endpoint }]);
    const committed: JsonObject[] = [];
    const out = await gw.intercept({
      method: 'CreateSandbox',
      principal: { kind: 'user', subject: 'alice' },
      request: sandboxRequest(),
      commit: async (req) => {
        committed.push(req);
        return sandboxResponse(String(req.name));
      },
    });
    expect(out.outcome).toBe('allowed');
    expect(out.status).toBeNull();
    expect(out.request).toEqual({
      name: 'team-a',
      labels: { team: 'a' },
      spec: { template: { image: 'ubuntu:24.04' } },
    });
    expect(committed).toEqual([out.request]);
    expect(out.response).toEqual(sandboxResponse('team-a'));
    expect(out.evaluations.map((e) => [e.phase, e.decision, e.applied])).toEqual([
      ['modify_operation', 'allow', true],
      ['validate', 'allow', false],
      ['post_commit', 'allow', false],
    ]);
    expect(out.evaluations[0]?.annotations).toEqual({ rule: 'lowercase' });
    const [m, v, p] = f.evaluations();
    expect(m?.operation).toEqual(sandboxRequest());
    expect(v?.operation).toEqual(out.request);
    expect(p?.operation).toEqual(sandboxResponse('team-a'));
    expect(m?.evaluation).toMatchObject({
      interceptorName: 'naming',
      bindingId: 'lower',
      service: 'openshell.v1.OpenShell',
      method: 'CreateSandbox',
      principal: { kind: 'user', subject: 'alice' },
    });
    const events = logs.lines.filter((l) => l.msg === 'interceptor evaluation');
    expect(events).toHaveLength(3);
    expect(events[0]).toMatchObject({
      interceptor: 'naming',
      binding_id: 'lower',
      phase: 'modify_operation',
      service: 'openshell.v1.OpenShell',
      method: 'CreateSandbox',
      decision: 'allow',
      patch_count: 2,
      log_annotations: { rule: 'lowercase' },
      principal_subject: 'alice',
      principal_kind: 'user',
      failure_policy: 'fail_closed',
      layer: null,
    });
    expect(typeof events[0]?.latency_ms).toBe('number');
  });

  it('refuses an invalid request with INVALID_ARGUMENT before any interceptor runs', async () => {
    const f = await serve({
      manifest: { name: 'a', bindings: [{ id: 'b', rpc: CS, phases: ['validate'] }] },
    });
    const { gw } = await start([{ name: 'a', grpc_endpoint: f.endpoint }]);
    const out = await gw.intercept({ method: 'CreateSandbox', request: { name: 'x', colour: 'red' } });
    expect(out.outcome).toBe('denied');
    expect(out.status?.code).toBe('INVALID_ARGUMENT');
    expect(out.status?.message).toMatch(/unknown field "colour"/);
    expect(f.evaluations()).toHaveLength(0);
  });

  it('maps a denial to the named status code and reason, ignores its patches and stops the chain', async () => {
    const f = await serve({
      manifest: {
        name: 'quota',
        bindings: [
          { id: 'deny', rpc: CS, phases: ['modify_operation'] },
          { id: 'later', rpc: CS, phases: ['validate'] },
        ],
      },
      rules: [
        {
          binding: 'deny',
          result: {
            allowed: false,
            statusCode: ' resource_exhausted ',
            reason: 'quota of 3 sandboxes reached',
            patches: [{ op: 'replace', path: '/name', value: 'ignored' }],
          },
        },
      ],
    });
    const { gw } = await start([{ name: 'quota', grpc_endpoint: f.endpoint }]);
    let committed = false;
    const out = await gw.intercept({
      method: 'CreateSandbox',
      request: sandboxRequest(),
      commit: async () => {
        committed = true;
        return undefined;
      },
    });
    expect(out).toMatchObject({
      outcome: 'denied',
      status: { code: 'RESOURCE_EXHAUSTED', message: 'quota of 3 sandboxes reached' },
      request: sandboxRequest(),
      response: null,
    });
    expect(out.evaluations).toHaveLength(1);
    expect(out.evaluations[0]).toMatchObject({
      decision: 'deny',
      applied: false,
      reason: 'quota of 3 sandboxes reached',
    });
    expect(committed).toBe(false);
    expect(f.evaluations()).toHaveLength(1);
  });

  it.each([
    ['', '', 'PERMISSION_DENIED', 'operation denied by gateway interceptor'],
    ['NOT_A_CODE', '  ', 'PERMISSION_DENIED', 'operation denied by gateway interceptor'],
    ['OK', 'no', 'PERMISSION_DENIED', 'no'],
    ['invalid_argument', 'bad name', 'INVALID_ARGUMENT', 'bad name'],
  ])('a denial with status_code %j and reason %j becomes %s', async (statusCode, reason, code, message) => {
    const f = await serve({
      manifest: { name: 'd', bindings: [{ id: 'b', rpc: CS, phases: ['validate'] }] },
      rules: [{ result: { allowed: false, statusCode, reason } }],
    });
    const { gw } = await start([{ name: 'd', grpc_endpoint: f.endpoint }]);
    const out = await gw.intercept({ method: 'CreateSandbox', request: sandboxRequest() });
    expect(out.status).toEqual({ code, message });
  });

  it('orders bindings by order, then name byte-wise, then manifest declaration order', async () => {
    const seen: string[] = [];
    const mk = async (name: string, ids: string[]) => {
      const f = await startInterceptorServer(
        { manifest: { name, bindings: ids.map((id) => ({ id, rpc: CS, phases: ['validate' as const] })) } },
        {
          evaluate: (ev) => {
            seen.push(`${ev.interceptorName}/${ev.bindingId}`);
            return { result: { allowed: true } };
          },
        },
      );
      defer(() => f.close());
      return f;
    };
    // 'B' < 'a' byte-wise (0x42 < 0x61), though a locale sort would say otherwise.
    const a = await mk('a', ['a2', 'a1']);
    const b = await mk('B', ['b1']);
    const z = await mk('z', ['z1']);
    const { gw } = await start([
      { name: 'a', grpc_endpoint: a.endpoint },
      { name: 'B', grpc_endpoint: b.endpoint },
      { name: 'z', grpc_endpoint: z.endpoint, order: -1 },
    ]);
    await gw.intercept({ method: 'CreateSandbox', request: sandboxRequest() });
    expect(seen).toEqual(['z/z1', 'B/b1', 'a/a2', 'a/a1']);
    expect(
      gw.plan.bindings('openshell.v1.OpenShell', 'CreateSandbox', 'validate').map((b) => b.bindingId),
    ).toEqual(['z1', 'b1', 'a2', 'a1']);
  });

  it('calls a binding with several phases once per phase and skips RPCs it does not select', async () => {
    const f = await serve({
      manifest: { name: 'a', bindings: [{ id: 'b', rpc: CS, phases: ['modify_operation', 'validate'] }] },
    });
    const { gw } = await start([{ name: 'a', grpc_endpoint: f.endpoint }]);
    await gw.intercept({ method: 'CreateSandbox', request: sandboxRequest() });
    expect(f.evaluations().map((c) => c.phase)).toEqual(['modify_operation', 'validate']);
    await gw.intercept({ method: 'DeleteSandbox', request: { name: 'x' } });
    expect(f.evaluations()).toHaveLength(2);
  });
});

describe('intercept: patches against the full request', () => {
  const providerRequest = (): JsonObject => ({
    provider: { metadata: { name: 'openai' }, type: 'openai', credentials: { API_KEY: 'sk-secret' } },
  });

  it('never shows secrets to interceptors, but keeps them in the request a patch is applied to', async () => {
    const f = await serve({
      manifest: { name: 'p', bindings: [{ id: 'b', rpc: CP, phases: ['modify_operation'] }] },
      rules: [{ result: { patches: [{ op: 'add', path: '/provider/config', value: { region: 'eu' } }] } }],
    });
    const { gw } = await start([{ name: 'p', grpc_endpoint: f.endpoint }]);
    const out = await gw.intercept({ method: 'CreateProvider', request: providerRequest() });
    expect(f.evaluations()[0]?.operation).toEqual({
      provider: { metadata: { name: 'openai' }, type: 'openai' },
    });
    expect(out.request).toEqual({
      provider: {
        metadata: { name: 'openai' },
        type: 'openai',
        credentials: { API_KEY: 'sk-secret' },
        config: { region: 'eu' },
      },
    });
    expect(out.operation).toEqual({
      provider: { metadata: { name: 'openai' }, type: 'openai', config: { region: 'eu' } },
    });
    expect(JSON.stringify(out.operation)).not.toContain('sk-secret');
  });

  it.each([
    ['a secret field', { op: 'replace', path: '/provider/credentials/API_KEY', value: 'stolen' }],
    ['below a secret', { op: 'add', path: '/provider/credentials/NEW', value: 'x' }],
    ['a message holding a secret', { op: 'replace', path: '/provider', value: { type: 'x' } }],
    ['the root of a type with secrets', { op: 'replace', path: '', value: {} }],
    ['a secret as move source', { op: 'move', from: '/provider/credentials', path: '/provider/config' }],
    [
      'a secret as copy source',
      { op: 'copy', from: '/provider/credentials/API_KEY', path: '/provider/type' },
    ],
  ])('refuses a patch touching %s, as a failure, leaving the request unchanged', async (_label, patch) => {
    const f = await serve({
      manifest: { name: 'p', bindings: [{ id: 'b', rpc: CP, phases: ['modify_operation'] }] },
      rules: [{ result: { patches: [{ op: 'add', path: '/provider/config', value: { a: '1' } }, patch] } }],
    });
    const { gw } = await start([{ name: 'p', grpc_endpoint: f.endpoint, failure_policy: 'fail_open' }]);
    const out = await gw.intercept({ method: 'CreateProvider', request: providerRequest() });
    expect(out.outcome).toBe('allowed');
    expect(out.request).toEqual(providerRequest());
    expect(out.evaluations[0]).toMatchObject({ decision: 'error', layer: 'patch', applied: false });
    expect(out.evaluations[0]?.error).toMatch(/touches a secret field/);
  });

  it('is all or nothing: a failing test op after good ops leaves the operation as before the binding', async () => {
    const f = await serve({
      manifest: {
        name: 'p',
        bindings: [
          { id: 'first', rpc: CS, phases: ['modify_operation'] },
          { id: 'second', rpc: CS, phases: ['modify_operation'] },
        ],
      },
      rules: [
        { binding: 'first', result: { patches: [{ op: 'add', path: '/workspace', value: 'ws-1' }] } },
        {
          binding: 'second',
          result: {
            patches: [
              { op: 'replace', path: '/name', value: 'changed' },
              { op: 'add', path: '/labels', value: { a: 'b' } },
              { op: 'test', path: '/name', value: 'Team-A' },
            ],
          },
        },
      ],
    });
    const { gw } = await start([{ name: 'p', grpc_endpoint: f.endpoint, failure_policy: 'fail_open' }]);
    const out = await gw.intercept({ method: 'CreateSandbox', request: sandboxRequest() });
    expect(out.outcome).toBe('allowed');
    expect(out.request).toEqual({ ...sandboxRequest(), workspace: 'ws-1' });
    expect(out.evaluations[1]).toMatchObject({
      binding: 'second',
      decision: 'error',
      layer: 'patch',
      applied: false,
    });
    expect(out.evaluations[1]?.error).toMatch(/patch #2 \(test \/name\) failed: .*TEST_OPERATION_FAILED/);
  });

  it('supports all six operations, test included, applied in order', async () => {
    const f = await serve({
      manifest: { name: 'p', bindings: [{ id: 'b', rpc: CS, phases: ['modify_operation'] }] },
      rules: [
        {
          result: {
            patches: [
              { op: 'test', path: '/name', value: 'Team-A' },
              { op: 'add', path: '/labels', value: { a: '1', b: '2' } },
              { op: 'copy', from: '/name', path: '/workspace' },
              { op: 'move', from: '/labels/a', path: '/labels/c' },
              { op: 'remove', path: '/labels/b' },
              { op: 'replace', path: '/spec/template/image', value: 'debian' },
            ],
          },
        },
      ],
    });
    const { gw } = await start([{ name: 'p', grpc_endpoint: f.endpoint }]);
    const out = await gw.intercept({ method: 'CreateSandbox', request: sandboxRequest() });
    expect(out.request).toEqual({
      name: 'Team-A',
      workspace: 'Team-A',
      labels: { c: '1' },
      spec: { template: { image: 'debian' } },
    });
  });

  it.each([
    ['an unknown field', { op: 'add', path: '/colour', value: 'red' }, /unknown field "colour"/],
    ['a type mismatch', { op: 'replace', path: '/name', value: 42 }, /\/name/],
    ['a wrong map value type', { op: 'add', path: '/labels', value: { a: 1 } }, /\/labels\/a/],
  ])('re-validates the patched request strictly: %s is a failure', async (_label, patch, message) => {
    const f = await serve({
      manifest: { name: 'p', bindings: [{ id: 'b', rpc: CS, phases: ['modify_operation'] }] },
      rules: [{ result: { patches: [patch] } }],
    });
    const { gw } = await start([{ name: 'p', grpc_endpoint: f.endpoint }]);
    const out = await gw.intercept({ method: 'CreateSandbox', request: sandboxRequest() });
    expect(out.outcome).toBe('denied');
    expect(out.status?.code).toBe('PERMISSION_DENIED');
    expect(out.status?.message).toMatch(
      /^gateway interceptor 'p' failed closed: patched operation is not a valid openshell.v1.CreateSandboxRequest/,
    );
    expect(out.evaluations[0]).toMatchObject({ layer: 'revalidate' });
    expect(out.evaluations[0]?.error).toMatch(message);
    expect(out.request).toEqual(sandboxRequest());
  });

  it('re-validates a oneof: two members set by patches is a failure', async () => {
    const f = await serve({
      manifest: {
        name: 'p',
        bindings: [{ id: 'b', rpc: 'openshell.v1.OpenShell/UpdateConfig', phases: ['modify_operation'] }],
      },
      rules: [
        {
          result: {
            patches: [{ op: 'add', path: '/settingValue', value: { stringValue: 'a', boolValue: true } }],
          },
        },
      ],
    });
    const { gw } = await start([{ name: 'p', grpc_endpoint: f.endpoint, failure_policy: 'fail_open' }]);
    const out = await gw.intercept({ method: 'UpdateConfig', request: {} });
    expect(out.evaluations[0]?.decision).toBe('error');
    expect(out.evaluations[0]?.layer).toBe('revalidate');
    expect(out.evaluations[0]?.error).toMatch(/oneof/);
  });

  it('canonicalises an applied patch (defaults dropped)', async () => {
    const f = await serve({
      manifest: { name: 'p', bindings: [{ id: 'b', rpc: CS, phases: ['modify_operation'] }] },
      rules: [
        {
          result: {
            patches: [
              { op: 'add', path: '/workspace', value: '' },
              { op: 'add', path: '/labels', value: {} },
            ],
          },
        },
      ],
    });
    const { gw } = await start([{ name: 'p', grpc_endpoint: f.endpoint }]);
    const out = await gw.intercept({ method: 'CreateSandbox', request: sandboxRequest() });
    expect(out.request).toEqual(sandboxRequest());
    expect(out.evaluations[0]?.applied).toBe(true);
  });
});

describe('intercept: post_commit', () => {
  it('never changes the committed response, whatever the observer answers', async () => {
    const f = await serve({
      manifest: {
        name: 'audit',
        bindings: [
          { id: 'deny', rpc: CS, phases: ['post_commit'] },
          { id: 'patch', rpc: CS, phases: ['post_commit'] },
          { id: 'crash', rpc: CS, phases: ['post_commit'] },
          { id: 'ok', rpc: CS, phases: ['post_commit'] },
        ],
      },
      rules: [
        { binding: 'deny', result: { allowed: false, reason: 'nope' } },
        {
          binding: 'patch',
          result: { patches: [{ op: 'replace', path: '/sandbox/metadata/name', value: 'evil' }] },
        },
        { binding: 'crash', error: { code: 'INTERNAL', message: 'boom' } },
        { binding: 'ok', result: { annotations: { seen: 'yes' } } },
      ],
    });
    const { gw, logs } = await start([{ name: 'audit', grpc_endpoint: f.endpoint }]);
    const response = sandboxResponse('Team-A');
    const out = await gw.intercept({
      method: 'CreateSandbox',
      request: sandboxRequest(),
      commit: async () => response,
    });
    expect(out.outcome).toBe('allowed');
    expect(out.status).toBeNull();
    expect(out.response).toBe(response);
    expect(out.response).toEqual(sandboxResponse('Team-A'));
    expect(out.evaluations.map((e) => [e.binding, e.decision, e.layer, e.failurePolicy])).toEqual([
      ['deny', 'error', 'contract', 'fail_open'],
      ['patch', 'error', 'contract', 'fail_open'],
      ['crash', 'error', 'status', 'fail_open'],
      ['ok', 'allow', null, 'fail_open'],
    ]);
    expect(logs.messages('warn').filter((m) => m.includes('failed open'))).toHaveLength(3);
    const metrics = await gw.registry.getSingleMetricAsString(
      'openshell_gateway_interceptor_post_commit_observation_failures_total',
    );
    expect(metrics).toMatch(/stage="contract"} 2/);
    expect(metrics).toMatch(/stage="status"} 1/);
  });

  it('gives observers the response view without secrets, and skips post_commit when nothing was committed', async () => {
    const f = await serve({
      manifest: { name: 'audit', bindings: [{ id: 'o', rpc: CP, phases: ['post_commit'] }] },
    });
    const { gw } = await start([{ name: 'audit', grpc_endpoint: f.endpoint }]);
    const req = { provider: { metadata: { name: 'x' }, type: 't' } };
    const resp = { provider: { metadata: { name: 'x' }, type: 't', credentials: { K: 'secret-value' } } };
    const out = await gw.intercept({ method: 'CreateProvider', request: req, commit: async () => resp });
    expect(out.response).toEqual(resp);
    expect(f.evaluations()[0]?.operation).toEqual({ provider: { metadata: { name: 'x' }, type: 't' } });
    await gw.intercept({ method: 'CreateProvider', request: req });
    expect(f.evaluations()).toHaveLength(1);
  });

  it('records an uncommittable response as a struct failure and still returns it', async () => {
    const f = await serve({
      manifest: { name: 'audit', bindings: [{ id: 'o', rpc: CS, phases: ['post_commit'] }] },
    });
    const { gw } = await start([{ name: 'audit', grpc_endpoint: f.endpoint }]);
    const out = await gw.intercept({
      method: 'CreateSandbox',
      request: sandboxRequest(),
      commit: async (r) => r,
    });
    expect(out.response).toEqual(sandboxRequest());
    expect(out.evaluations[0]).toMatchObject({ decision: 'error', layer: 'struct' });
    expect(out.evaluations[0]?.error).toMatch(/cannot be turned into a Struct/);
    expect(f.evaluations()).toHaveLength(0);
  });
});

describe('tracing', () => {
  it('injects trace context into the Evaluate metadata through the registered propagator', async () => {
    const probe: TextMapPropagator = {
      inject: (_ctx, carrier, setter) => setter.set(carrier, 'x-trace-probe', 'propagated'),
      extract: (ctx) => ctx,
      fields: () => ['x-trace-probe'],
    };
    propagation.setGlobalPropagator(probe);
    try {
      const f = await serve({
        manifest: { name: 't', bindings: [{ id: 'b', rpc: CS, phases: ['validate'] }] },
      });
      const { gw } = await start([{ name: 't', grpc_endpoint: f.endpoint }]);
      await gw.intercept({ method: 'CreateSandbox', request: sandboxRequest() });
      expect(f.evaluations()[0]?.metadata['x-trace-probe']).toBe('propagated');
    } finally {
      propagation.disable();
    }
  });
});
