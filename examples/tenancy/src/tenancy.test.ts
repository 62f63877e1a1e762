import { createNamingInterceptor } from '@openshell-interceptors/example-naming';
import { evaluationPhaseFields, type JsonObject, OPENSHELL_SERVICE } from '@openshell-interceptors/protocol';
import type { InterceptableMethod, InterceptorEvaluation, Phase } from '@openshell-interceptors/sdk';
import { principals, requestFixture, type TestGateway, testGateway } from '@openshell-interceptors/testing';
import '@openshell-interceptors/testing/vitest';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createTenancyInterceptor,
  tenancyOptionsFromEnv,
  WORKSPACE_RPCS,
  workspaceOwner,
} from './tenancy.js';

const alice = principals.user('alice@acme.example');
const bob = principals.user('bob@globex.example');
const carol = principals.user('carol@contractor.example', { roles: ['dev', 'tenant:initech'] });
const ops = principals.user('ops@platform.example', { roles: ['platform-admin'] });

const tenancy = createTenancyInterceptor({
  domains: { 'acme.example': 'acme', 'globex.example': 'globex' },
  trustDomains: { 'acme.sandboxes': 'acme' },
  adminRoles: ['platform-admin'],
  tenants: ['acme', 'acme-labs', 'globex'],
});

function ev(
  method: InterceptableMethod,
  phase: Phase,
  operation: JsonObject,
  principal: Record<string, string> = alice,
): InterceptorEvaluation {
  return {
    interceptorName: 'tenancy',
    bindingId: '',
    service: OPENSHELL_SERVICE,
    method,
    principal,
    ...evaluationPhaseFields(phase, operation),
  };
}

describe('which RPCs and workspaces', () => {
  it('guards the 23 RPCs whose request names a workspace', () => {
    expect(WORKSPACE_RPCS).toHaveLength(23);
    expect(WORKSPACE_RPCS).not.toContain('CreateSshSession');
    expect(WORKSPACE_RPCS).not.toContain('RevokeSshSession');
    expect(WORKSPACE_RPCS).toEqual(
      expect.arrayContaining(['CreateSandbox', 'DeleteSandbox', 'ExposeService']),
    );
    const m = tenancy.manifest();
    expect(m.bindings).toHaveLength(23);
    expect(m.bindings.every((b) => b.phases.join() === '2,3')).toBe(true);
  });

  it('gives a workspace to the longest tenant name it starts with', () => {
    const tenants = ['acme', 'acme-labs', 'globex'];
    expect(workspaceOwner('acme', tenants)).toBe('acme');
    expect(workspaceOwner('acme-dev', tenants)).toBe('acme');
    expect(workspaceOwner('acme-labs-ci', tenants)).toBe('acme-labs');
    expect(workspaceOwner('acmecorp', tenants)).toBeUndefined();
    expect(workspaceOwner('default', tenants)).toBeUndefined();
  });

  it('refuses to guard an RPC that names no workspace, and a mapping to a non-tenant name', () => {
    expect(() => createTenancyInterceptor({ methods: ['CreateSshSession'] })).toThrow(
      /names no workspace|does not name a workspace/,
    );
    expect(() => createTenancyInterceptor({ domains: { 'x.example': 'Not A Tenant' } })).toThrow(
      /domain x.example maps to "Not A Tenant", which is not a tenant name/,
    );
  });
});

describe('modify: stamping the tenant', () => {
  it('fills an empty workspace and stamps the tenant label on a created sandbox', async () => {
    const r = await tenancy.evaluate(ev('CreateSandbox', 'modify_operation', { name: 'box' }));
    expect(r.patches).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ op: 'add', path: '/workspace', value: 'acme' }),
        expect.objectContaining({ op: 'add', path: '/labels', value: { tenant: 'acme' } }),
      ]),
    );
    expect(r.logAnnotations).toEqual({ tenancy_workspace: 'defaulted' });
  });

  it('overwrites a forged tenant label and says so in the log annotations', async () => {
    const r = await tenancy.evaluate(
      ev('CreateSandbox', 'modify_operation', {
        name: 'box',
        workspace: 'acme',
        labels: { tenant: 'globex' },
      }),
    );
    expect(r.patches).toEqual([{ op: 'replace', path: '/labels/tenant', value: 'acme', from: '' }]);
    expect(r.logAnnotations).toEqual({ tenancy_label: 'replaced globex' });
  });

  it('leaves a request that already names a workspace alone (except creates)', async () => {
    const r = await tenancy.evaluate(
      ev('DeleteSandbox', 'modify_operation', { name: 'box', workspace: 'globex' }, alice),
    );
    expect(r).toMatchObject({ allowed: true, patches: [] });
  });

  it('maps by subject, role, e-mail domain and sandbox trust domain', async () => {
    const t = createTenancyInterceptor({
      subjects: { 'alice@acme.example': 'acme-labs' },
      domains: { 'acme.example': 'acme' },
      trustDomains: { 'acme.sandboxes': 'acme' },
    });
    const ws = async (p: Record<string, string>) =>
      (await t.evaluate(ev('DeleteSandbox', 'modify_operation', { name: 'x' }, p))).patches[0]?.value;
    expect(await ws(alice)).toBe('acme-labs');
    expect(await ws(principals.user('dave@acme.example'))).toBe('acme');
    expect(await ws(carol)).toBe('initech');
    expect(await ws(principals.sandbox('sb-1', { trust_domain: 'acme.sandboxes' }))).toBe('acme');
  });

  it('denies callers without a tenant, or with roles of several', async () => {
    const none = await tenancy.evaluate(
      ev('CreateSandbox', 'modify_operation', {}, principals.user('eve@elsewhere.example')),
    );
    expect(none).toMatchObject({ allowed: false, statusCode: 'PERMISSION_DENIED' });
    expect(none.reason).toBe(
      'eve@elsewhere.example is not mapped to any tenant: ask an administrator to map you to a tenant',
    );
    const both = principals.user('x@y.example', { roles: ['tenant:acme', 'tenant:globex'] });
    expect((await tenancy.evaluate(ev('CreateSandbox', 'modify_operation', {}, both))).reason).toMatch(
      /holds roles of several tenants \(acme, globex\)/,
    );
    const anon = await tenancy.evaluate(ev('DeleteSandbox', 'validate', {}, principals.anonymous()));
    expect(anon.reason).toMatch(/^an anonymous caller is not mapped to any tenant/);
  });
});

describe("validate: another tenant's resources", () => {
  it('allows the tenant workspace and its suffixed workspaces', async () => {
    for (const workspace of ['acme', 'acme-dev']) {
      const r = await tenancy.evaluate(ev('ExposeService', 'validate', { sandbox: 'box', workspace }));
      expect(r.allowed).toBe(true);
      expect(r.logAnnotations).toEqual({ tenancy: 'acme via domain' });
    }
  });

  it("denies naming another tenant's workspace with PERMISSION_DENIED, saying which workspaces are allowed", async () => {
    const r = await tenancy.evaluate(
      ev('DeleteSandbox', 'validate', { name: 'alice-box', workspace: 'acme' }, bob),
    );
    expect(r).toMatchObject({ allowed: false, statusCode: 'PERMISSION_DENIED' });
    expect(r.reason).toBe(
      'workspace "acme" belongs to tenant "acme": bob@globex.example acts for tenant "globex" and may only use workspaces "globex" or "globex-…"',
    );
    const nested = await tenancy.evaluate(
      ev('UpdateConfig', 'validate', { name: 'x', workspace: 'acme-labs-ci' }),
    );
    expect(nested.reason).toMatch(/^workspace "acme-labs-ci" belongs to tenant "acme-labs"/);
    const nobody = await tenancy.evaluate(
      ev('DeleteProvider', 'validate', { name: 'x', workspace: 'default' }),
    );
    expect(nobody.reason).toMatch(/^workspace "default" belongs to no tenant/);
  });

  it("denies a provider whose own metadata names another tenant's workspace", async () => {
    const op = {
      workspace: 'acme',
      provider: { metadata: { name: 'gh', workspace: 'globex', labels: { tenant: 'acme' } } },
    };
    const r = await tenancy.evaluate(ev('CreateProvider', 'validate', op));
    expect(r.reason).toMatch(/^workspace "globex" belongs to tenant "globex"/);
  });

  it('denies a request without a workspace and a create whose label names another tenant', async () => {
    expect((await tenancy.evaluate(ev('DeleteSandbox', 'validate', { name: 'x' }))).reason).toMatch(
      /DeleteSandbox names no workspace: alice@acme.example acts for tenant "acme"/,
    );
    const forged = await tenancy.evaluate(
      ev('CreateSandbox', 'validate', { name: 'x', workspace: 'acme', labels: { tenant: 'globex' } }),
    );
    expect(forged.reason).toBe('label tenant="globex" does not name the caller\'s tenant "acme"');
    const unlabelled = await tenancy.evaluate(
      ev('CreateSandbox', 'validate', { name: 'x', workspace: 'acme' }),
    );
    expect(unlabelled.reason).toBe(
      'label tenant is missing: what tenant "acme" creates must carry tenant=acme',
    );
  });

  it('lets an admin role act in any workspace', async () => {
    const r = await tenancy.evaluate(
      ev('DeleteSandbox', 'validate', { name: 'x', workspace: 'globex' }, ops),
    );
    expect(r).toMatchObject({ allowed: true, logAnnotations: { tenancy: 'admin role platform-admin' } });
  });
});

describe('configuration from the environment', () => {
  it('reads TENANCY_* variables', async () => {
    const o = tenancyOptionsFromEnv({
      TENANCY_SUBJECTS: 'alice@acme.example=acme',
      TENANCY_DOMAINS: 'globex.example=globex, initech.example=initech',
      TENANCY_ROLE_PREFIX: '',
      TENANCY_ADMIN_ROLES: 'platform-admin, sre',
      TENANCY_LABEL: 'org',
      TENANCY_FAILURE_POLICY: 'fail_closed',
    });
    expect(o).toEqual({
      subjects: { 'alice@acme.example': 'acme' },
      domains: { 'globex.example': 'globex', 'initech.example': 'initech' },
      rolePrefix: '',
      adminRoles: ['platform-admin', 'sre'],
      label: 'org',
      failurePolicy: 'fail_closed',
    });
    const t = createTenancyInterceptor(o);
    // Role mapping is off: carol's tenant:initech role no longer counts.
    expect(
      (await t.evaluate(ev('DeleteSandbox', 'validate', { name: 'x', workspace: 'initech' }, carol))).allowed,
    ).toBe(false);
  });

  it('names the variable that is wrong', () => {
    expect(() => tenancyOptionsFromEnv({ TENANCY_DOMAINS: 'acme.example' })).toThrow(
      /TENANCY_DOMAINS: expected key=tenant/,
    );
    expect(() => tenancyOptionsFromEnv({ TENANCY_FAILURE_POLICY: 'open' })).toThrow(/TENANCY_FAILURE_POLICY/);
  });
});

describe('behind the gateway runtime, composed with naming', () => {
  let gw: TestGateway | undefined;
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });

  it("stamps a create, lets the owner delete, and refuses another tenant's delete", async () => {
    gw = await testGateway({
      interceptors: [
        { interceptor: createNamingInterceptor({ randomSuffix: (n) => 'x'.repeat(n) }), order: 10 },
        { interceptor: tenancy, order: 20 },
      ],
      transport: 'grpc',
    });
    const created = await gw.call(
      'CreateSandbox',
      requestFixture('CreateSandbox', (r) => {
        delete r.name;
        delete r.workspace;
        r.labels = { team: 'ml', tenant: 'globex' };
      }),
      { principal: alice },
    );
    expect(created).toBeAllowed();
    expect(created).toHaveFinalOperation({
      name: 'alice-xxxxx',
      workspace: 'acme',
      labels: { team: 'ml', tenant: 'acme' },
    });
    const cross = await gw.call(
      'DeleteSandbox',
      { name: 'alice-xxxxx', workspace: 'acme' },
      { principal: bob },
    );
    expect(cross).toBeDenied(
      'PERMISSION_DENIED',
      'workspace "acme" belongs to tenant "acme": bob@globex.example acts for tenant "globex" and may only use workspaces "globex" or "globex-…"',
    );
    // Without a workspace, bob's delete is scoped to his own tenant's workspace.
    const scoped = await gw.call('DeleteSandbox', { name: 'alice-xxxxx' }, { principal: bob });
    expect(scoped).toBeAllowed();
    expect(scoped).toBePatched('/workspace', 'globex');
  });

  it('stamps the label of a provider without touching its secret credentials', async () => {
    gw = await testGateway({ interceptors: [tenancy], transport: 'grpc', listen: 'unix' });
    const r = await gw.call(
      'CreateProvider',
      requestFixture('CreateProvider', (p) => {
        p.workspace = 'acme';
        delete p.provider!.metadata!.workspace;
      }),
      { principal: alice },
    );
    expect(r).toBeAllowed();
    expect(r.evaluations.map((e) => [e.phase, e.decision, e.applied])).toEqual([
      ['modify_operation', 'allow', true],
      ['validate', 'allow', false],
    ]);
    expect(r.request).toMatchObject({
      provider: {
        metadata: { labels: { tenant: 'acme' } },
        credentials: { GITHUB_TOKEN: 'ghp_fixtureSecretValue' },
      },
    });
  });
});
