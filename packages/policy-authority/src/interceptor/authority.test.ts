import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  evaluationPhaseFields,
  type InterceptableMethod,
  type InterceptorResult,
  type JsonObject,
  OPENSHELL_SERVICE,
  type Phase,
} from '@openshell-interceptors/protocol';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OTHER_POLICY, SAMPLE_POLICY } from '../__fixtures__/policies.js';
import { PolicyDriverConnection } from '../driver/client.js';
import { definePolicyDriver, type RuntimeContext, UnknownHandleError } from '../driver/define.js';
import { type RunningPolicyDriver, servePolicyDriver } from '../driver/server.js';
import { generateSigningKey, type SigningKeyPair } from '../keys.js';
import { buildProjection, type Projection } from '../projection.js';
import { TrustStore } from '../trust-store.js';
import {
  createPolicyAuthorityInterceptor,
  DRAFT_CHUNK_METHODS,
  type PolicyAuthority,
  type PolicyAuthorityOptions,
} from './authority.js';

const silent = pino({ level: 'silent' });
const ALICE = { kind: 'user', subject: 'alice@example.com', provider: 'oidc', roles: 'dev' };

interface DriverState {
  mode: 'signed' | 'unsigned' | 'tampered' | 'none' | 'rogue';
  permitsMutation: boolean;
  held: Map<string, RuntimeContext>;
  released: string[];
}

let dir: string;
let key: SigningKeyPair;
let rogue: SigningKeyPair;
let trust: TrustStore;
let state: DriverState;
let driver: RunningPolicyDriver | undefined;
let authorities: PolicyAuthority[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pa-authority-'));
  key ??= await generateSigningKey('authority-1');
  rogue ??= await generateSigningKey('authority-1');
  trust = TrustStore.fromKeys([{ keyId: key.keyId, publicKey: key.publicKey }]);
  state = { mode: 'signed', permitsMutation: false, held: new Map(), released: [] };
  await startDriver();
});
afterEach(async () => {
  for (const a of authorities) a.close();
  authorities = [];
  await driver?.close(100);
  driver = undefined;
  await rm(dir, { recursive: true, force: true });
});

const sock = () => join(dir, 'driver.sock');

async function startDriver() {
  driver = await servePolicyDriver(
    definePolicyDriver({
      capabilities: () => ({
        supportedSurfaces: ['openshell.sandbox.v1'],
        permitsMutation: state.permitsMutation,
        driverVersion: 'test-driver/1',
      }),
      acquireHandle(ctx) {
        const h = randomUUID();
        state.held.set(h, ctx);
        return h;
      },
      getProjection(handle, surfaceId): Projection | { noVerifiedPolicy: string } {
        const ctx = state.held.get(handle);
        if (!ctx) throw new UnknownHandleError(handle);
        const audit = { bundle: 'default', user: ctx.userSubject };
        switch (state.mode) {
          case 'none':
            return { noVerifiedPolicy: 'no bundle for this caller' };
          case 'unsigned':
            return buildProjection({ surfaceId, policy: SAMPLE_POLICY, auditContext: audit });
          case 'rogue':
            return buildProjection({ surfaceId, policy: SAMPLE_POLICY, auditContext: audit, signer: rogue });
          case 'tampered': {
            const p = buildProjection({ surfaceId, policy: SAMPLE_POLICY, auditContext: audit, signer: key });
            return { ...p, body: buildProjection({ policy: OTHER_POLICY }).body };
          }
          default:
            return buildProjection({ surfaceId, policy: SAMPLE_POLICY, auditContext: audit, signer: key });
        }
      },
      releaseHandle(handle) {
        state.released.push(handle);
        return state.held.delete(handle);
      },
    }),
    { listen: `unix://${sock()}`, logger: false },
  );
}

async function authority(extra: Partial<PolicyAuthorityOptions> = {}): Promise<PolicyAuthority> {
  const a = await createPolicyAuthorityInterceptor({
    driver: `unix://${sock()}`,
    driverOptions: { deadlineMs: 2000 },
    trust,
    stateDir: join(dir, 'state'),
    logger: silent,
    ...extra,
  });
  authorities.push(a);
  return a;
}

function evaluate(
  a: PolicyAuthority,
  method: InterceptableMethod,
  phase: Phase,
  operation: JsonObject,
  principal: Record<string, string> = ALICE,
): Promise<InterceptorResult> {
  return a.interceptor.evaluate({
    interceptorName: 'policy-authority',
    bindingId: '',
    service: OPENSHELL_SERVICE,
    method,
    principal,
    ...evaluationPhaseFields(phase, operation),
  });
}

/** Apply the `add` patches the authority returns, as the gateway would. */
function applyAdds(op: JsonObject, r: InterceptorResult): JsonObject {
  const out = structuredClone(op) as Record<string, unknown>;
  for (const p of r.patches) {
    expect(p.op).toBe('add');
    const [, first, second] = p.path.split('/');
    if (second === undefined) out[first!] = p.value;
    else (out[first!] as Record<string, unknown>)[second] = p.value;
  }
  return out as JsonObject;
}

const request = (extra: JsonObject = {}): JsonObject => ({
  name: 'sb-1',
  workspace: 'team-a',
  spec: { template: { image: 'ubuntu:24.04' } },
  ...extra,
});

async function admit(a: PolicyAuthority, req: JsonObject = request()) {
  const modified = await evaluate(a, 'CreateSandbox', 'modify_operation', req);
  expect(modified.allowed, modified.reason).toBe(true);
  const op = applyAdds(req, modified);
  return { modified, op };
}

describe('modify CreateSandbox', () => {
  it('sets spec.policy to exactly the verified projection and records digest, key id, handle and audit context', async () => {
    const a = await authority();
    const { modified, op } = await admit(a);
    const spec = op.spec as JsonObject;
    expect(spec.policy).toEqual(SAMPLE_POLICY);
    expect(spec.template).toEqual({ image: 'ubuntu:24.04' });
    const ann = op.annotations as Record<string, string>;
    const handle = ann['policy.openshell.io/handle']!;
    expect(state.held.get(handle)).toEqual({
      sandboxId: 'sb-1',
      userSubject: 'alice@example.com',
      attributes: { principal_kind: 'user', workspace: 'team-a', auth_provider: 'oidc', roles: 'dev' },
    });
    expect(ann).toEqual({
      'policy.openshell.io/digest': buildProjection({ policy: SAMPLE_POLICY }).policyDigest,
      'policy.openshell.io/signature': 'verified',
      'policy.openshell.io/signing-key-id': 'authority-1',
      'policy.openshell.io/handle': handle,
      'policy.openshell.io/surface': 'openshell.sandbox.v1',
      'policy.openshell.io/audit.bundle': 'default',
      'policy.openshell.io/audit.user': 'alice@example.com',
    });
    expect(modified.logAnnotations.policy_signature).toBe('verified:authority-1');
  });

  it('replaces a caller-supplied policy as a whole and drops caller-set authority annotations', async () => {
    const a = await authority();
    const req = request({
      spec: { policy: OTHER_POLICY as JsonObject },
      annotations: { team: 'a', 'policy.openshell.io/digest': 'forged' },
    });
    const { modified, op } = await admit(a, req);
    expect((op.spec as JsonObject).policy).toEqual(SAMPLE_POLICY);
    const ann = op.annotations as Record<string, string>;
    expect(ann.team).toBe('a');
    expect(ann['policy.openshell.io/digest']).not.toBe('forged');
    expect(modified.logAnnotations.policy_replaced).toBe('true');
  });

  it('adds /spec when the request has none', async () => {
    const a = await authority();
    const { op } = await admit(a, { name: 'bare' });
    expect(op.spec).toEqual({ policy: SAMPLE_POLICY });
  });

  const refusals: [DriverState['mode'], string][] = [
    ['unsigned', 'UNSIGNED_PROJECTION'],
    ['tampered', 'DIGEST_MISMATCH'],
    ['rogue', 'BAD_SIGNATURE'],
    ['none', 'NO_VERIFIED_POLICY'],
  ];
  for (const [mode, code] of refusals) {
    it(`refuses a ${mode} projection with PERMISSION_DENIED naming ${code}, and releases the handle`, async () => {
      const a = await authority();
      state.mode = mode;
      const r = await evaluate(a, 'CreateSandbox', 'modify_operation', request());
      expect(r.allowed).toBe(false);
      expect(r.statusCode).toBe('PERMISSION_DENIED');
      expect(r.reason).toContain(code);
      expect(r.patches).toEqual([]);
      expect(r.logAnnotations.policy_refusal).toBe(code);
      await expect.poll(() => state.held.size).toBe(0);
    });
  }

  it('without a trust store an unsigned projection is admitted and marked as such', async () => {
    const a = await authority({ trust: undefined });
    state.mode = 'unsigned';
    const { op } = await admit(a);
    const ann = op.annotations as Record<string, string>;
    expect(ann['policy.openshell.io/signature']).toBe('none');
    expect(ann['policy.openshell.io/signing-key-id']).toBeUndefined();
  });

  it('a driver that is down refuses new sandboxes with UNAVAILABLE', async () => {
    const a = await authority({ driverOptions: { deadlineMs: 500 } });
    await driver?.close(100);
    const r = await evaluate(a, 'CreateSandbox', 'modify_operation', request());
    expect(r.allowed).toBe(false);
    expect(r.statusCode).toBe('UNAVAILABLE');
    expect(r.reason).toContain('policy driver is unavailable');
  });
});

describe('validate CreateSandbox', () => {
  it('allows the admitted operation, also from another instance that must ask the driver again', async () => {
    const a = await authority();
    const { op } = await admit(a);
    expect((await evaluate(a, 'CreateSandbox', 'validate', op)).allowed).toBe(true);
    const b = await authority({ stateDir: join(dir, 'state-b') });
    expect((await evaluate(b, 'CreateSandbox', 'validate', op)).allowed).toBe(true);
  });

  it('refuses a policy altered after admission, and releases the handle', async () => {
    const a = await authority();
    const { op } = await admit(a);
    const altered = structuredClone(op) as Record<string, Record<string, unknown>>;
    (altered.spec!.policy as Record<string, unknown>).version = 99;
    const r = await evaluate(a, 'CreateSandbox', 'validate', altered as JsonObject);
    expect(r.allowed).toBe(false);
    expect(r.statusCode).toBe('PERMISSION_DENIED');
    expect(r.reason).toContain('spec.policy differs from the verified projection');
    await expect.poll(() => state.held.size).toBe(0);
  });

  it('refuses altered or extra authority annotations, and a request without a handle', async () => {
    const a = await authority();
    const { op } = await admit(a);
    const forged = structuredClone(op) as Record<string, Record<string, string>>;
    forged.annotations!['policy.openshell.io/audit.bundle'] = 'other';
    forged.annotations!['policy.openshell.io/extra'] = 'x';
    const r = await evaluate(a, 'CreateSandbox', 'validate', forged as JsonObject);
    expect(r.allowed).toBe(false);
    expect(r.reason).toContain('annotation policy.openshell.io/audit.bundle');
    expect(r.reason).toContain('unexpected annotation policy.openshell.io/extra');
    const none = await evaluate(a, 'CreateSandbox', 'validate', request());
    expect(none.allowed).toBe(false);
    expect(none.reason).toContain('no policy handle');
  });
});

describe('mutation guards', () => {
  const updates: [InterceptableMethod, JsonObject][] = [
    ['UpdateConfig', { name: 'sb-1', policy: OTHER_POLICY as JsonObject }],
    [
      'UpdateConfig',
      { name: 'sb-1', mergeOperations: [{ addRule: { ruleName: 'x', rule: { name: 'x' } } }] },
    ],
    ['SubmitPolicyAnalysis', { name: 'sb-1', proposedChunks: [{ id: 'c1' }] }],
    ...DRAFT_CHUNK_METHODS.map((m): [InterceptableMethod, JsonObject] => [m, { name: 'sb-1' }]),
  ];

  it('refuses every policy-mutating RPC with PERMISSION_DENIED when the driver does not permit mutation', async () => {
    const a = await authority();
    for (const [method, op] of updates) {
      const r = await evaluate(a, method, 'validate', op);
      expect(r.allowed, method).toBe(false);
      expect(r.statusCode, method).toBe('PERMISSION_DENIED');
      expect(r.reason, method).toContain('managed by the policy driver (test-driver/1)');
    }
  });

  it('allows them when the driver permits mutation', async () => {
    state.permitsMutation = true;
    const a = await authority();
    for (const [method, op] of updates)
      expect((await evaluate(a, method, 'validate', op)).allowed, method).toBe(true);
  });

  it('lets non-policy updates through without asking the driver, even when it is down', async () => {
    const a = await authority({ driverOptions: { deadlineMs: 300 } });
    await driver?.close(100);
    expect(
      (await evaluate(a, 'UpdateConfig', 'validate', { name: 'sb-1', settingKey: 'log_level' })).allowed,
    ).toBe(true);
    expect(
      (await evaluate(a, 'SubmitPolicyAnalysis', 'validate', { name: 'sb-1', summaries: [{ host: 'x' }] }))
        .allowed,
    ).toBe(true);
    const r = await evaluate(a, 'UpdateConfig', 'validate', {
      name: 'sb-1',
      policy: OTHER_POLICY as JsonObject,
    });
    expect(r.allowed).toBe(false);
    expect(r.statusCode).toBe('UNAVAILABLE');
  });

  it('keeps refusing with the last known capabilities while the driver is down', async () => {
    const a = await authority({ capabilitiesTtlMs: 1, driverOptions: { deadlineMs: 300 } });
    expect((await evaluate(a, 'ClearDraftChunks', 'validate', { name: 'sb-1' })).statusCode).toBe(
      'PERMISSION_DENIED',
    );
    await driver?.close(100);
    expect((await evaluate(a, 'ClearDraftChunks', 'validate', { name: 'sb-1' })).statusCode).toBe(
      'PERMISSION_DENIED',
    );
  });

  it('declares fail_closed bindings for guards and creation, fail_open for delete', async () => {
    const a = await authority();
    const m = a.interceptor.manifest();
    const policy = Object.fromEntries(m.bindings.map((b) => [b.id, b.failurePolicy]));
    expect(m.failurePolicy).toBe('fail_closed');
    expect(policy['delete-sandbox']).toBe('fail_open');
    expect(policy['delete-sandbox-observe']).toBe('fail_open');
    expect(m.bindings.map((b) => b.selector?.method).sort()).toEqual(
      [
        'CreateSandbox',
        'CreateSandbox',
        'DeleteSandbox',
        'DeleteSandbox',
        'UpdateConfig',
        'SubmitPolicyAnalysis',
        ...DRAFT_CHUNK_METHODS,
      ].sort(),
    );
  });
});

describe('handles across create and delete', () => {
  async function created(a: PolicyAuthority, name: string, principal = ALICE) {
    const req = request({ name });
    const modified = await evaluate(a, 'CreateSandbox', 'modify_operation', req, principal);
    const op = applyAdds(req, modified);
    const response = {
      sandbox: { metadata: { name, workspace: 'team-a', annotations: op.annotations }, spec: op.spec },
    };
    const observed = await evaluate(a, 'CreateSandbox', 'post_commit', response as JsonObject, principal);
    expect(observed.logAnnotations.policy_journal).toBe('recorded');
    return (op.annotations as Record<string, string>)['policy.openshell.io/handle']!;
  }

  async function deleted(a: PolicyAuthority, name: string, ok = true, principal = ALICE) {
    expect(
      (await evaluate(a, 'DeleteSandbox', 'validate', { name, workspace: 'team-a' }, principal)).allowed,
    ).toBe(true);
    return evaluate(a, 'DeleteSandbox', 'post_commit', ok ? { deleted: true } : {}, principal);
  }

  it('deleting a sandbox releases its handle, also after the interceptor restarted', async () => {
    const a = await authority();
    const h1 = await created(a, 'one');
    const h2 = await created(a, 'two');
    expect(a.journal.size).toBe(2);
    const r = await deleted(a, 'one');
    expect(r.logAnnotations).toMatchObject({ policy_handle: h1, policy_release: 'released' });
    expect(state.released).toEqual([h1]);
    a.close();
    const restarted = await authority();
    expect(restarted.journal.get('team-a/two')?.handle).toBe(h2);
    await deleted(restarted, 'two');
    expect(state.released).toEqual([h1, h2]);
    expect(restarted.journal.size).toBe(0);
  });

  it('a delete that did not delete keeps the handle', async () => {
    const a = await authority();
    const h = await created(a, 'kept');
    await deleted(a, 'kept', false);
    expect(state.held.has(h)).toBe(true);
    expect(a.journal.size).toBe(1);
  });

  it('a release the driver misses is retried once it is back', async () => {
    const a = await authority({ driverOptions: { deadlineMs: 300 } });
    const h = await created(a, 'later');
    await driver?.close(100);
    const r = await deleted(a, 'later');
    expect(r.allowed).toBe(true);
    expect(r.logAnnotations.policy_release).toBe('deferred');
    expect(a.journal.get('team-a/later')?.releasing).toBe(true);
    await startDriver();
    state.held.set(h, { sandboxId: 'later', userSubject: 'alice', attributes: {} });
    // The channel reconnects with a short backoff; retry until the driver confirms.
    await expect
      .poll(
        async () => {
          await a.retryReleases();
          return a.journal.size;
        },
        { timeout: 15_000, interval: 200 },
      )
      .toBe(0);
    expect(state.held.has(h)).toBe(false);
  });
});

describe('construction', () => {
  it('refuses requireSignature without a trust store', async () => {
    await expect(
      createPolicyAuthorityInterceptor({
        driver: `unix://${sock()}`,
        requireSignature: true,
        logger: silent,
      }),
    ).rejects.toThrow(/needs a trust store/);
  });

  it('accepts an open connection and leaves it open on close', async () => {
    const conn = new PolicyDriverConnection(`unix://${sock()}`);
    const a = await createPolicyAuthorityInterceptor({ driver: conn, trust, logger: silent });
    a.close();
    expect((await conn.getCapabilities()).driverVersion).toBe('test-driver/1');
    conn.close();
  });
});
