import type { FailurePolicy, JsonObject } from '@openshell-interceptors/protocol';
import { describe, expect, it } from 'vitest';
import { captureLogs, configFor, deferAfterEach } from './__fixtures__/harness.js';
import { type RuleSpec, startInterceptorServer } from './__fixtures__/interceptor-server.js';
import { createGateway } from './gateway.js';
import type { InterceptorTransport } from './transport.js';

const CS = 'openshell.v1.OpenShell/CreateSandbox';

const defer = deferAfterEach();

const request = (): JsonObject => ({ name: 'box', labels: { team: 'a' } });

interface Cause {
  label: string;
  phase?: 'modify_operation' | 'validate';
  rule?: RuleSpec;
  config?: Record<string, unknown>;
  /** Close the service after startup. */
  closeAfterStart?: boolean;
  layer: string;
  cause: RegExp;
}

const CAUSES: Cause[] = [
  {
    label: 'a timeout',
    rule: { delayMs: 400 },
    config: { timeout: '50ms' },
    layer: 'deadline',
    cause: /no answer within 50ms/,
  },
  { label: 'a transport error', closeAfterStart: true, layer: 'transport', cause: /UNAVAILABLE/ },
  {
    label: 'a non-OK status',
    rule: { error: { code: 'INTERNAL', message: 'db down' } },
    layer: 'status',
    cause: /^INTERNAL: db down$/,
  },
  {
    label: 'a status the service invents',
    rule: { error: { code: 'NOT_FOUND', message: 'x' } },
    layer: 'status',
    cause: /^NOT_FOUND: x$/,
  },
  {
    label: 'a response over max_response_bytes',
    rule: { result: { padBytes: 4000 } },
    config: { max_response_bytes: 1024 },
    layer: 'size',
    cause: /response too large/,
  },
  {
    label: 'more patches than max_patches',
    rule: { result: { patches: [1, 2, 3].map((i) => ({ op: 'add', path: `/labels/k${i}`, value: 'v' })) } },
    config: { max_patches: 2 },
    layer: 'contract',
    cause: /returned 3 patches, more than max_patches 2/,
  },
  {
    label: 'too many patches on a denial (a contract failure, not a denial)',
    rule: {
      result: {
        allowed: false,
        reason: 'no',
        patches: [1, 2].map((i) => ({ op: 'add', path: `/labels/k${i}`, value: 'v' })),
      },
    },
    config: { max_patches: 1 },
    layer: 'contract',
    cause: /returned 2 patches, more than max_patches 1/,
  },
  {
    label: 'patches in validate',
    phase: 'validate',
    rule: { result: { patches: [{ op: 'add', path: '/workspace', value: 'w' }] } },
    layer: 'contract',
    cause: /returned patches in the validate phase; only modify_operation may patch/,
  },
  {
    label: 'an invalid JSON Pointer',
    rule: { result: { patches: [{ op: 'replace', path: 'name', value: 'x' }] } },
    layer: 'patch',
    cause: /patch #0 \(replace\): path invalid JSON Pointer "name"/,
  },
  {
    label: 'an invalid pointer escape',
    rule: { result: { patches: [{ op: 'add', path: '/labels/a~2b', value: 'x' }] } },
    layer: 'patch',
    cause: /"~" at offset/,
  },
  {
    label: 'a patch on a missing parent',
    rule: { result: { patches: [{ op: 'add', path: '/spec/template/image', value: 'x' }] } },
    layer: 'patch',
    cause: /patch #0 \(add \/spec\/template\/image\) failed/,
  },
  {
    label: 'an unknown op',
    rule: { result: { patches: [{ op: 'merge', path: '/name', value: 'x' }] } },
    layer: 'patch',
    cause: /OPERATION_OP_INVALID/,
  },
  {
    label: 'an invalid patched operation',
    rule: { result: { patches: [{ op: 'add', path: '/unknownField', value: 1 }] } },
    layer: 'revalidate',
    cause: /patched operation is not a valid openshell.v1.CreateSandboxRequest: \/unknownField/,
  },
];

describe.each(['fail_closed', 'fail_open'] as FailurePolicy[])('each failure cause under %s', (policy) => {
  it.each(CAUSES)('$label', async (c) => {
    const phase = c.phase ?? 'modify_operation';
    const f = await startInterceptorServer({
      manifest: { name: 'ext', bindings: [{ id: 'b', rpc: CS, phases: [phase] }] },
      rules: c.rule ? [c.rule] : [],
    });
    defer(() => f.close());
    const logs = captureLogs();
    const gw = await createGateway(
      configFor([{ name: 'ext', grpc_endpoint: f.endpoint, failure_policy: policy, ...c.config }]),
      { logger: logs.logger },
    );
    defer(() => gw.close());
    if (c.closeAfterStart) await f.close();
    let commits = 0;
    const out = await gw.intercept({
      method: 'CreateSandbox',
      request: request(),
      commit: async (r) => {
        commits++;
        return { sandbox: { metadata: { name: String(r.name) } } };
      },
    });
    const ev = out.evaluations[0];
    expect(ev).toMatchObject({ decision: 'error', layer: c.layer, failurePolicy: policy, applied: false });
    expect(ev?.error).toMatch(c.cause);
    expect(out.request).toEqual(request());
    const metric = await gw.registry.getSingleMetricAsString(`openshell_gateway_interceptor_${policy}_total`);
    expect(metric).toMatch(/interceptor="ext"} 1/);
    const evals = await gw.registry.getSingleMetricAsString(
      'openshell_gateway_interceptor_evaluations_total',
    );
    expect(evals).toMatch(/decision="error",interceptor="ext",binding_id="b"} 1/);
    const warn = logs.lines.find(
      (l) => l.level === 40 && String(l.msg).includes(`failed ${policy.slice(5)}`),
    );
    expect(warn).toMatchObject({
      interceptor: 'ext',
      binding_id: 'b',
      decision: 'error',
      layer: c.layer,
      failure_policy: policy,
    });
    if (policy === 'fail_closed') {
      expect(out.outcome).toBe('denied');
      expect(out.status?.code).toBe('PERMISSION_DENIED');
      expect(out.status?.message.startsWith("gateway interceptor 'ext' failed closed: ")).toBe(true);
      expect(out.status?.message).toMatch(
        c.cause.source.startsWith('^') ? new RegExp(c.cause.source.slice(1)) : c.cause,
      );
      expect(out.response).toBeNull();
      expect(commits).toBe(0);
    } else {
      expect(out.outcome).toBe('allowed');
      expect(out.status).toBeNull();
      expect(commits).toBe(1);
      expect(out.response).toEqual({ sandbox: { metadata: { name: 'box' } } });
    }
  });
});

describe('limits', () => {
  it('accepts exactly max_patches patches (only strictly more is a failure)', async () => {
    const f = await startInterceptorServer({
      manifest: { name: 'ext', bindings: [{ id: 'b', rpc: CS, phases: ['modify_operation'] }] },
      rules: [{ result: { patches: [1, 2].map((i) => ({ op: 'add', path: `/labels/k${i}`, value: 'v' })) } }],
    });
    defer(() => f.close());
    const gw = await createGateway(configFor([{ name: 'ext', grpc_endpoint: f.endpoint, max_patches: 2 }]), {
      logger: captureLogs().logger,
    });
    defer(() => gw.close());
    const out = await gw.intercept({ method: 'CreateSandbox', request: request() });
    expect(out.outcome).toBe('allowed');
    expect(out.request.labels).toEqual({ team: 'a', k1: 'v', k2: 'v' });
  });

  it('checks encodedBytes from any transport against max_response_bytes', async () => {
    const transport: InterceptorTransport = {
      describe: async () => ({
        name: 'ext',
        failurePolicy: '',
        providerProfiles: false,
        expectedAudience: '',
        bindings: [
          { id: 'b', selector: { rpc: CS, service: '', method: '' }, phases: [3], failurePolicy: '' },
        ],
      }),
      evaluate: async () => ({
        result: { allowed: true, reason: '', statusCode: '', patches: [], logAnnotations: {} },
        encodedBytes: 5000,
      }),
      snapshotProviderProfiles: async () => {
        throw new Error('unused');
      },
      close: async () => {},
    };
    const gw = await createGateway(
      configFor([
        {
          name: 'ext',
          grpc_endpoint: 'http://127.0.0.1:1',
          max_response_bytes: 4096,
          allow_insecure_transport: false,
        },
      ]),
      { transport: () => transport, logger: captureLogs().logger },
    );
    defer(() => gw.close());
    const out = await gw.intercept({ method: 'CreateSandbox', request: request() });
    expect(out.status?.message).toBe(
      "gateway interceptor 'ext' failed closed: result of 5000 bytes exceeds max_response_bytes 4096",
    );
    expect(out.evaluations[0]?.layer).toBe('size');
  });

  it('sends the deadline on the wire as grpc-timeout', async () => {
    const f = await startInterceptorServer({
      manifest: { name: 'ext', bindings: [{ id: 'b', rpc: CS, phases: ['validate'] }] },
    });
    defer(() => f.close());
    const gw = await createGateway(configFor([{ name: 'ext', grpc_endpoint: f.endpoint, timeout: '3s' }]), {
      logger: captureLogs().logger,
    });
    defer(() => gw.close());
    await gw.intercept({ method: 'CreateSandbox', request: request() });
    const left = f.evaluations()[0]?.deadlineRemainingMs ?? Number.NaN;
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(3000);
  });
});

describe('fail_open keeps earlier work', () => {
  it('skips only the failing binding: patches from the bindings around it stay applied', async () => {
    const f = await startInterceptorServer({
      manifest: {
        name: 'ext',
        bindings: [
          { id: 'one', rpc: CS, phases: ['modify_operation'] },
          { id: 'broken', rpc: CS, phases: ['modify_operation'], failurePolicy: 'fail_open' },
          { id: 'three', rpc: CS, phases: ['modify_operation'] },
        ],
      },
      rules: [
        { binding: 'one', result: { patches: [{ op: 'add', path: '/labels/one', value: '1' }] } },
        { binding: 'broken', error: { code: 'UNKNOWN', message: 'bug' } },
        { binding: 'three', result: { patches: [{ op: 'add', path: '/labels/three', value: '3' }] } },
      ],
    });
    defer(() => f.close());
    const gw = await createGateway(configFor([{ name: 'ext', grpc_endpoint: f.endpoint }]), {
      logger: captureLogs().logger,
    });
    defer(() => gw.close());
    const out = await gw.intercept({ method: 'CreateSandbox', request: request() });
    expect(out.outcome).toBe('allowed');
    expect(out.request.labels).toEqual({ team: 'a', one: '1', three: '3' });
    expect(f.evaluations()[2]?.operation).toEqual({ name: 'box', labels: { team: 'a', one: '1' } });
  });
});
