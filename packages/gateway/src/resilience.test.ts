import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { spawnFixture } from './__fixtures__/child.js';
import { captureLogs, configFor, deferAfterEach } from './__fixtures__/harness.js';
import {
  type RunningFixture,
  type ScriptSpec,
  startInterceptorServer,
} from './__fixtures__/interceptor-server.js';
import { createGateway, type Gateway } from './gateway.js';

const CS = 'openshell.v1.OpenShell/CreateSandbox';
const MANIFEST = { name: 'ext', bindings: [{ id: 'b', rpc: CS, phases: ['validate' as const] }] };

const defer = deferAfterEach();

async function serve(script: ScriptSpec): Promise<RunningFixture> {
  const f = await startInterceptorServer(script);
  defer(() => f.close());
  return f;
}

async function start(ic: Record<string, unknown>) {
  const logs = captureLogs();
  const gw = await createGateway(configFor([{ name: 'ext', ...ic }]), { logger: logs.logger });
  defer(() => gw.close());
  return { gw, logs };
}

const call = (gw: Gateway) => gw.intercept({ method: 'CreateSandbox', request: { name: 'x' } });
const BREAKER = { volume_threshold: 3, error_threshold_percentage: 50, reset_timeout: '150ms' };

describe('circuit breaker (real gRPC)', () => {
  it('opens after failures, fails open calls without reaching the service, half-opens, then closes on a good probe', async () => {
    const f = await serve({
      manifest: MANIFEST,
      rules: [{ error: { code: 'INTERNAL', message: 'broken' }, times: 3 }],
    });
    const { gw, logs } = await start({
      grpc_endpoint: f.endpoint,
      failure_policy: 'fail_open',
      timeout: '3s',
      breaker: BREAKER,
    });
    for (let i = 0; i < 3; i++) expect((await call(gw)).evaluations[0]?.layer).toBe('status');
    expect(gw.breakerState('ext')).toBe('open');
    // The service is now slow; an open breaker must not wait for it or the 3 s timeout.
    f.setScript({ manifest: MANIFEST, rules: [{ delayMs: 10_000 }] });
    const fast = await call(gw);
    expect(fast.outcome).toBe('allowed');
    expect(fast.evaluations[0]).toMatchObject({ decision: 'error', layer: 'breaker' });
    expect(fast.evaluations[0]?.error).toMatch(/circuit breaker for 'ext' is open/);
    expect(fast.evaluations[0]?.latencyMs).toBeLessThan(3000);
    expect(f.evaluations()).toHaveLength(3);
    f.setScript({ manifest: MANIFEST });
    await vi.waitFor(() => expect(gw.breakerState('ext')).toBe('half_open'), {
      timeout: 10_000,
      interval: 20,
    });
    const probe = await call(gw);
    expect(probe.evaluations[0]).toMatchObject({ decision: 'allow' });
    expect(gw.breakerState('ext')).toBe('closed');
    expect((await call(gw)).evaluations[0]?.decision).toBe('allow');
    expect(f.evaluations()).toHaveLength(5);
    const gauge = await gw.registry.getSingleMetricAsString('openshell_gateway_interceptor_breaker_state');
    expect(gauge).toMatch(/interceptor="ext"} 0/);
    expect(logs.messages('warn')).toContain("circuit breaker for 'ext' opened");
    expect(logs.messages('info')).toContain("circuit breaker for 'ext' is half-open");
    expect(logs.messages('info')).toContain("circuit breaker for 'ext' is closed");
  });

  it('under fail_closed, an open breaker refuses the call at once', async () => {
    const f = await serve({ manifest: MANIFEST, rules: [{ error: { code: 'UNAVAILABLE', message: 'x' } }] });
    const { gw } = await start({ grpc_endpoint: f.endpoint, breaker: { ...BREAKER, reset_timeout: '60s' } });
    for (let i = 0; i < 3; i++) await call(gw);
    const out = await call(gw);
    expect(out.status?.code).toBe('PERMISSION_DENIED');
    expect(out.status?.message).toMatch(
      /^gateway interceptor 'ext' failed closed: circuit breaker for 'ext' is open/,
    );
    expect(f.evaluations()).toHaveLength(3);
    const gauge = await gw.registry.getSingleMetricAsString('openshell_gateway_interceptor_breaker_state');
    expect(gauge).toMatch(/interceptor="ext"} 2/);
  });

  it('a failed half-open probe opens the breaker again', async () => {
    const f = await serve({ manifest: MANIFEST, rules: [{ error: { code: 'INTERNAL' } }] });
    const { gw } = await start({ grpc_endpoint: f.endpoint, failure_policy: 'fail_open', breaker: BREAKER });
    for (let i = 0; i < 3; i++) await call(gw);
    await vi.waitFor(() => expect(gw.breakerState('ext')).toBe('half_open'), {
      timeout: 10_000,
      interval: 20,
    });
    expect((await call(gw)).evaluations[0]?.layer).toBe('status');
    expect(gw.breakerState('ext')).toBe('open');
    expect((await call(gw)).evaluations[0]?.layer).toBe('breaker');
    expect(f.evaluations()).toHaveLength(4);
  });

  it('can be disabled: every call then reaches the service', async () => {
    const f = await serve({ manifest: MANIFEST, rules: [{ error: { code: 'INTERNAL' } }] });
    const { gw } = await start({
      grpc_endpoint: f.endpoint,
      failure_policy: 'fail_open',
      breaker: { ...BREAKER, enabled: false },
    });
    for (let i = 0; i < 6; i++) await call(gw);
    expect(f.evaluations()).toHaveLength(6);
    expect(gw.breakerState('ext')).toBe('closed');
  });

  it('opens when an interceptor process dies and closes again once it is back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gw-breaker-'));
    defer(() => rm(dir, { recursive: true, force: true }));
    const sock = join(dir, 'ext.sock');
    const script: ScriptSpec = { manifest: MANIFEST, rules: [{ result: { annotations: { pid: 'child' } } }] };
    const first = await spawnFixture(script, { unixPath: sock });
    defer(() => first.kill());
    const { gw } = await start({
      grpc_endpoint: first.endpoint,
      failure_policy: 'fail_open',
      breaker: BREAKER,
    });
    expect((await call(gw)).evaluations[0]?.annotations).toEqual({ pid: 'child' });
    await first.kill();
    // One success then two transport failures: 2 of 3 calls failed, over the 50% threshold.
    for (let i = 0; i < 2; i++) {
      const out = await call(gw);
      expect(out.outcome).toBe('allowed');
      expect(out.evaluations[0]?.layer).toBe('transport');
    }
    expect(gw.breakerState('ext')).toBe('open');
    expect((await call(gw)).evaluations[0]?.layer).toBe('breaker');
    await rm(sock, { force: true });
    const second = await spawnFixture(script, { unixPath: sock });
    defer(() => second.kill());
    // Probes pass once the breaker half-opens and the channel has reconnected.
    await vi.waitFor(
      async () => {
        const out = await call(gw);
        expect(out.evaluations[0]?.decision).toBe('allow');
      },
      { timeout: 20_000, interval: 100 },
    );
    expect(gw.breakerState('ext')).toBe('closed');
  });
});

describe('load shedding (real gRPC)', () => {
  it('sheds a burst beyond max_concurrency + max_queue at once; the failure policy decides', async () => {
    const f = await serve({ manifest: MANIFEST, rules: [{ delayMs: 300 }] });
    const { gw } = await start({
      grpc_endpoint: f.endpoint,
      failure_policy: 'fail_open',
      timeout: '10s',
      max_concurrency: 2,
      max_queue: 3,
      breaker: { enabled: false },
    });
    const outs = await Promise.all(Array.from({ length: 10 }, () => call(gw)));
    const layers = outs.map((o) => o.evaluations[0]?.layer ?? 'ok');
    expect(layers.filter((l) => l === 'shed')).toHaveLength(5);
    expect(layers.filter((l) => l === 'ok')).toHaveLength(5);
    expect(outs.every((o) => o.outcome === 'allowed')).toBe(true);
    expect(f.maxActive).toBe(2);
    expect(f.evaluations()).toHaveLength(5);
    const shed = outs.find((o) => o.evaluations[0]?.layer === 'shed')?.evaluations[0];
    expect(shed?.error).toMatch(
      /load shed: 2 calls in flight \(max_concurrency 2\) and 3 queued \(max_queue 3\)/,
    );
    expect(await gw.registry.getSingleMetricAsString('openshell_gateway_interceptor_shed_total')).toMatch(
      /interceptor="ext"} 5/,
    );
  });

  it('under fail_closed, shed calls are refused', async () => {
    const f = await serve({ manifest: MANIFEST, rules: [{ delayMs: 200 }] });
    const { gw } = await start({
      grpc_endpoint: f.endpoint,
      max_concurrency: 1,
      max_queue: 0,
      breaker: { enabled: false },
      timeout: '10s',
    });
    const outs = await Promise.all([call(gw), call(gw), call(gw)]);
    expect(outs.map((o) => o.outcome).sort()).toEqual(['allowed', 'denied', 'denied']);
    expect(outs.filter((o) => o.status?.message.includes('failed closed: load shed'))).toHaveLength(2);
  });
});

describe('close', () => {
  it('lets in-flight calls finish, then refuses new ones', async () => {
    const f = await serve({
      manifest: MANIFEST,
      rules: [{ delayMs: 200, result: { annotations: { done: 'yes' } } }],
    });
    const { gw } = await start({ grpc_endpoint: f.endpoint, timeout: '5s' });
    const inflight = call(gw);
    await vi.waitFor(() => expect(f.active).toBe(1), { timeout: 5_000, interval: 5 });
    const closing = gw.close();
    const late = await call(gw);
    expect(late.status).toEqual({ code: 'UNAVAILABLE', message: 'gateway is shutting down' });
    const out = await inflight;
    expect(out.outcome).toBe('allowed');
    expect(out.evaluations[0]?.annotations).toEqual({ done: 'yes' });
    await closing;
    await gw.close();
    expect(f.evaluations()).toHaveLength(1);
  });

  it('a call cancelled by its caller stops with CANCELLED before the commit', async () => {
    const f = await serve({ manifest: MANIFEST, rules: [{ delayMs: 5_000 }] });
    const { gw } = await start({ grpc_endpoint: f.endpoint, timeout: '10s' });
    const ac = new AbortController();
    let committed = false;
    const p = gw.intercept({
      method: 'CreateSandbox',
      request: { name: 'x' },
      signal: ac.signal,
      commit: async () => {
        committed = true;
        return undefined;
      },
    });
    await vi.waitFor(() => expect(f.active).toBe(1), { timeout: 5_000, interval: 5 });
    ac.abort();
    const out = await p;
    expect(out.status).toEqual({ code: 'CANCELLED', message: 'the API call was cancelled' });
    expect(committed).toBe(false);
  });

  it('many calls in flight without a signal raise no listener-leak warning', async () => {
    const f = await serve({ manifest: MANIFEST, rules: [{ delayMs: 50 }] });
    const { gw } = await start({ grpc_endpoint: f.endpoint, max_concurrency: 64 });
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const outs = await Promise.all(Array.from({ length: 40 }, () => call(gw)));
      expect(outs.every((o) => o.outcome === 'allowed')).toBe(true);
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.map((w) => w.message)).toEqual([]);
    expect(f.evaluations()).toHaveLength(40);
  });
});
