import type { JsonObject } from '@openshell-interceptors/protocol';
import { evaluationPhaseFields, OPENSHELL_SERVICE, type Phase } from '@openshell-interceptors/protocol';
import type { InterceptorEvaluation } from '@openshell-interceptors/sdk';
import {
  principals,
  requestFixture,
  responseFixture,
  type TestGateway,
  testGateway,
} from '@openshell-interceptors/testing';
import '@openshell-interceptors/testing/vitest';
import { afterEach, describe, expect, it } from 'vitest';
import { createQuotaInterceptor, quotaOptionsFromEnv } from './quota.js';
import { MemoryQuotaStore } from './store.js';

const alice = principals.user('alice@acme.example');
const bob = principals.user('bob@acme.example');

function ev(
  method: 'CreateSandbox' | 'DeleteSandbox',
  phase: Phase,
  operation: JsonObject,
  principal: Record<string, string> = alice,
): InterceptorEvaluation {
  return {
    interceptorName: 'quota',
    bindingId: '',
    service: OPENSHELL_SERVICE,
    method,
    principal,
    ...evaluationPhaseFields(phase, operation),
  };
}

const create = (name: string, labels?: Record<string, string>) =>
  ({ name, workspace: 'acme', ...(labels ? { labels } : {}) }) as JsonObject;
const created = (name: string, labels?: Record<string, string>) =>
  ({ sandbox: { metadata: { name, workspace: 'acme', ...(labels ? { labels } : {}) } } }) as JsonObject;

describe('the quota interceptor, evaluation by evaluation', () => {
  it('declares a fail_open DeleteSandbox check so bookkeeping never blocks a delete', () => {
    const m = createQuotaInterceptor({ store: new MemoryQuotaStore() }).manifest();
    expect(m.bindings.map((b) => [b.id, b.phases, b.failurePolicy])).toEqual([
      ['create-sandbox', [3], ''],
      ['create-sandbox-observe', [4], 'fail_open'],
      ['delete-sandbox', [3], 'fail_open'],
      ['delete-sandbox-observe', [4], 'fail_open'],
    ]);
  });

  it('denies RESOURCE_EXHAUSTED past the limit, stating the limit and the count', async () => {
    const q = createQuotaInterceptor({ store: new MemoryQuotaStore(), limit: 2 });
    expect((await q.evaluate(ev('CreateSandbox', 'validate', create('a')))).allowed).toBe(true);
    const second = await q.evaluate(ev('CreateSandbox', 'validate', create('b')));
    expect(second.logAnnotations).toEqual({ quota: 'subject:alice@acme.example 2/2' });
    const r = await q.evaluate(ev('CreateSandbox', 'validate', create('c')));
    expect(r).toMatchObject({ allowed: false, statusCode: 'RESOURCE_EXHAUSTED' });
    expect(r.reason).toBe(
      'sandbox quota reached for alice@acme.example: 2 of 2 sandboxes in use (running or being created; limit 2): delete a sandbox before creating another',
    );
    // Another caller has a quota of their own.
    expect((await q.evaluate(ev('CreateSandbox', 'validate', create('c'), bob))).allowed).toBe(true);
  });

  it('frees a slot when a delete commits, found by the name recorded at create time', async () => {
    const q = createQuotaInterceptor({ store: new MemoryQuotaStore(), limit: 1 });
    await q.evaluate(ev('CreateSandbox', 'validate', create('a')));
    await q.evaluate(ev('CreateSandbox', 'post_commit', created('a')));
    expect((await q.evaluate(ev('CreateSandbox', 'validate', create('b')))).allowed).toBe(false);
    // An admin deletes alice's sandbox: the response only says `deleted`.
    const admin = principals.user('root@acme.example', { roles: ['admin'] });
    await q.evaluate(ev('DeleteSandbox', 'validate', { name: 'a', workspace: 'acme' }, admin));
    const obs = await q.evaluate(ev('DeleteSandbox', 'post_commit', { deleted: true }, admin));
    expect(obs.logAnnotations).toEqual({ quota: 'released acme/a' });
    expect((await q.evaluate(ev('CreateSandbox', 'validate', create('b')))).allowed).toBe(true);
  });

  it('lets a reservation without a commit expire, so a failed create never leaks quota', async () => {
    let now = 0;
    const q = createQuotaInterceptor({
      store: new MemoryQuotaStore(() => now),
      limit: 1,
      reservationTtlMs: 10_000,
    });
    expect((await q.evaluate(ev('CreateSandbox', 'validate', create('a')))).allowed).toBe(true);
    expect((await q.evaluate(ev('CreateSandbox', 'validate', create('b')))).allowed).toBe(false);
    now += 10_001;
    expect((await q.evaluate(ev('CreateSandbox', 'validate', create('b')))).allowed).toBe(true);
  });

  it('counts a tenant across its callers through the tenant label', async () => {
    const q = createQuotaInterceptor({ store: new MemoryQuotaStore(), limit: 5, tenantLimit: 2 });
    const acme = { tenant: 'acme' };
    await q.evaluate(ev('CreateSandbox', 'validate', create('a', acme)));
    await q.evaluate(ev('CreateSandbox', 'validate', create('b', acme), bob));
    const r = await q.evaluate(ev('CreateSandbox', 'validate', create('c', acme)));
    expect(r.reason).toMatch(/^sandbox quota reached for tenant 'acme': 2 of 2 sandboxes in use/);
    // Without the label only the caller's own quota applies.
    expect((await q.evaluate(ev('CreateSandbox', 'validate', create('c')))).allowed).toBe(true);
  });

  it('applies per-subject limits, and refuses anonymous callers', async () => {
    const q = createQuotaInterceptor({
      store: new MemoryQuotaStore(),
      limit: 5,
      subjectLimits: { 'alice@acme.example': 0 },
    });
    expect((await q.evaluate(ev('CreateSandbox', 'validate', create('a')))).reason).toMatch(/0 of 0/);
    const anon = await q.evaluate(ev('CreateSandbox', 'validate', create('a'), principals.anonymous()));
    expect(anon).toMatchObject({ allowed: false, statusCode: 'PERMISSION_DENIED' });
  });

  it('reads QUOTA_* variables and names the one that is wrong', () => {
    expect(
      quotaOptionsFromEnv({
        QUOTA_MAX_SANDBOXES: '4',
        QUOTA_SUBJECT_LIMITS: 'ci@acme.example=20, alice=1',
        QUOTA_TENANT_MAX_SANDBOXES: '10',
        QUOTA_TENANT_LABEL: 'org',
        QUOTA_RESERVATION_TTL: '45s',
        QUOTA_FAILURE_POLICY: 'fail_open',
        REDIS_URL: 'redis://127.0.0.1:6379',
      }),
    ).toEqual({
      limit: 4,
      subjectLimits: { 'ci@acme.example': 20, alice: 1 },
      tenantLimit: 10,
      tenantLabel: 'org',
      reservationTtlMs: 45_000,
      failurePolicy: 'fail_open',
      redisUrl: 'redis://127.0.0.1:6379',
    });
    expect(() => quotaOptionsFromEnv({ QUOTA_MAX_SANDBOXES: 'many' })).toThrow(/QUOTA_MAX_SANDBOXES/);
    expect(() => quotaOptionsFromEnv({ QUOTA_SUBJECT_LIMITS: 'alice' })).toThrow(/expected subject=limit/);
    expect(() => quotaOptionsFromEnv({ QUOTA_RESERVATION_TTL: '1m' })).toThrow(/QUOTA_RESERVATION_TTL/);
    expect(() => quotaOptionsFromEnv({ QUOTA_FAILURE_POLICY: 'x' })).toThrow(/QUOTA_FAILURE_POLICY/);
    expect(() => createQuotaInterceptor({ store: new MemoryQuotaStore(), limit: -1 })).toThrow(/limit/);
  });
});

describe('the quota interceptor behind the gateway runtime (loopback gRPC, gateway tokens)', () => {
  let gw: TestGateway | undefined;
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });

  it('refuses the third create, frees a slot on delete, and never leaks a failed create', async () => {
    let now = 0;
    const store = new MemoryQuotaStore(() => now);
    gw = await testGateway({
      interceptors: [createQuotaInterceptor({ store, limit: 2 })],
      transport: 'grpc',
      listen: 'unix',
      principal: alice,
    });
    // A stand-in for the OpenShell handler: sandboxes by workspace/name.
    const sandboxes = new Set<string>();
    let failNext = false;
    const createAs = (name: string) =>
      gw!.call('CreateSandbox', requestFixture('CreateSandbox', { name, workspace: 'acme' }), {
        response: (req) => {
          if (failNext) {
            failNext = false;
            throw new Error('UNAVAILABLE: the compute driver is down');
          }
          sandboxes.add(`${req.workspace}/${req.name}`);
          return responseFixture('CreateSandbox', {
            sandbox: { metadata: { name: req.name ?? '', workspace: req.workspace ?? '' } },
          });
        },
      });
    await expect(createAs('one')).resolves.toBeAllowed();
    await expect(createAs('two')).resolves.toBeAllowed();
    const third = await createAs('three');
    expect(third).toBeDenied('RESOURCE_EXHAUSTED', /2 of 2 sandboxes in use/);
    expect(third.evaluations.map((e) => [e.interceptor, e.phase, e.decision])).toEqual([
      ['quota', 'validate', 'deny'],
    ]);

    const del = await gw.call(
      'DeleteSandbox',
      { name: 'one', workspace: 'acme' },
      {
        response: (req) => {
          sandboxes.delete(`${req.workspace}/${req.name}`);
          return { deleted: true };
        },
      },
    );
    expect(del).toBeAllowed();
    expect(del).toHaveAnnotations({ quota: 'released acme/one' }, { phase: 'post_commit' });

    // The commit fails after validate reserved a slot: no post_commit, the slot is held...
    failNext = true;
    await expect(createAs('three')).rejects.toThrow(/compute driver is down/);
    expect(await createAs('four')).toBeDenied('RESOURCE_EXHAUSTED');
    // ...until the reservation expires.
    now += 30_001;
    expect(await createAs('four')).toBeAllowed();
    expect([...sandboxes].sort()).toEqual(['acme/four', 'acme/two']);
    expect(await store.usage('subject:alice@acme.example')).toEqual({ running: 2, reserved: 0 });
  });
});
