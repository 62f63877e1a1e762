import {
  GatewayInterceptorPhase,
  type InterceptorEvaluation,
  type InterceptorResult,
} from '@openshell-interceptors/protocol';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { evaluation, USER } from './__fixtures__/evaluations.js';
import { ContractViolationError, EvaluateError } from './errors.js';
import { interceptor } from './interceptor.js';
import { allow, deny, patch } from './results.js';

const silent = pino({ level: 'silent' });

async function rejection(p: Promise<unknown>): Promise<EvaluateError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof EvaluateError)) throw new Error(`expected an EvaluateError, got ${String(err)}`);
  return err;
}

function patchesOf(r: InterceptorResult) {
  return r.patches.map((p) => ({
    op: p.op,
    path: p.path,
    ...(p.value !== undefined ? { value: p.value } : {}),
  }));
}

describe('manifest', () => {
  it('is derived from the handlers: one binding per method, phases in order, observers apart and fail_open', () => {
    const i = interceptor('naming')
      .validate('CreateSandbox', () => allow())
      .modify('CreateSandbox', () => undefined, { failurePolicy: 'fail_closed' })
      .observe('CreateSandbox', () => undefined)
      .validate('UpdateConfig', () => allow(), { id: 'config-guard', failurePolicy: 'fail_open' });
    expect(i.manifest()).toEqual({
      name: 'naming',
      bindings: [
        {
          id: 'create-sandbox',
          selector: {
            rpc: 'openshell.v1.OpenShell/CreateSandbox',
            service: 'openshell.v1.OpenShell',
            method: 'CreateSandbox',
          },
          phases: [
            GatewayInterceptorPhase.GATEWAY_INTERCEPTOR_PHASE_MODIFY_OPERATION,
            GatewayInterceptorPhase.GATEWAY_INTERCEPTOR_PHASE_VALIDATE,
          ],
          failurePolicy: 'fail_closed',
        },
        {
          id: 'create-sandbox-observe',
          selector: {
            rpc: 'openshell.v1.OpenShell/CreateSandbox',
            service: 'openshell.v1.OpenShell',
            method: 'CreateSandbox',
          },
          phases: [GatewayInterceptorPhase.GATEWAY_INTERCEPTOR_PHASE_POST_COMMIT],
          failurePolicy: 'fail_open',
        },
        {
          id: 'config-guard',
          selector: {
            rpc: 'openshell.v1.OpenShell/UpdateConfig',
            service: 'openshell.v1.OpenShell',
            method: 'UpdateConfig',
          },
          phases: [GatewayInterceptorPhase.GATEWAY_INTERCEPTOR_PHASE_VALIDATE],
          failurePolicy: 'fail_open',
        },
      ],
      failurePolicy: '',
      providerProfiles: false,
      expectedAudience: 'urn:openshell:extension:interceptor:naming',
    });
  });

  it('carries the interceptor-wide policy and audience, and provider_profiles once a provider is registered', () => {
    const i = interceptor('catalog', {
      failurePolicy: 'fail_open',
      expectedAudience: 'urn:x',
    }).providerProfiles(() => [{ id: 'github' }]);
    const m = i.manifest();
    expect(m.failurePolicy).toBe('fail_open');
    expect(m.expectedAudience).toBe('urn:x');
    expect(m.providerProfiles).toBe(true);
    expect(m.bindings).toEqual([]);
  });

  it('refuses registrations that would make an invalid or ambiguous manifest, naming the problem', () => {
    const i = interceptor('x');
    expect(() => i.modify('Frobnicate' as 'CreateSandbox', () => undefined)).toThrow(
      /not one of the 25 interceptable/,
    );
    i.modify('CreateSandbox', () => undefined);
    expect(() => i.modify('CreateSandbox', () => undefined)).toThrow(
      /already has a modify handler.*pass \{ id \}/,
    );
    expect(() => i.validate('DeleteSandbox', () => undefined, { id: 'create-sandbox' })).toThrow(
      /already selects CreateSandbox/,
    );
    expect(() => i.observe('CreateSandbox', () => undefined, { id: 'create-sandbox' })).toThrow(
      /observers need their own fail_open binding/,
    );
    expect(() => i.observe('DeleteSandbox', () => undefined, { failurePolicy: 'fail_closed' })).toThrow(
      /post_commit bindings must be fail_open/,
    );
    i.validate('UpdateConfig', () => undefined, { failurePolicy: 'fail_open' });
    expect(() => i.modify('UpdateConfig', () => undefined, { failurePolicy: 'fail_closed' })).toThrow(
      /already has failure policy fail_open/,
    );
    expect(() => interceptor('has space')).toThrow(/without whitespace/);
    expect(() => i.validate('DeleteSandbox', () => undefined, { when: { roles: [''] } })).toThrow(
      /roles must be non-empty strings/,
    );
  });
});

describe('modify: the draft diff', () => {
  it('adds a field absent from the view with add, and replaces a present one', async () => {
    const i = interceptor('n').modify('CreateSandbox', ({ draft }) => {
      draft.name = 'generated';
      draft.workspace = (draft.workspace ?? '').toLowerCase();
    });
    const r = await i.evaluate(evaluation('CreateSandbox', 'modify_operation', { workspace: 'TeamA' }));
    expect(r.allowed).toBe(true);
    expect(patchesOf(r)).toEqual([
      { op: 'replace', path: '/workspace', value: 'teama' },
      { op: 'add', path: '/name', value: 'generated' },
    ]);
  });

  it('never removes what the handler did not touch, including fields the typed model does not know', async () => {
    const i = interceptor('n').modify('CreateSandbox', ({ draft }) => {
      draft.labels = { ...draft.labels, team: 'a' };
    });
    const view = { name: 'x', labels: { env: 'dev' }, futureField: { nested: [1, 2] } };
    const r = await i.evaluate(evaluation('CreateSandbox', 'modify_operation', view));
    expect(patchesOf(r)).toEqual([{ op: 'add', path: '/labels/team', value: 'a' }]);
  });

  it('creates a missing parent with one add and escapes keys in paths', async () => {
    const i = interceptor('n').modify('CreateSandbox', ({ draft }) => {
      draft.annotations = { 'example.com/owner': 'alice', 'a~b': 'c' };
    });
    const r = await i.evaluate(evaluation('CreateSandbox', 'modify_operation', {}));
    expect(patchesOf(r)).toEqual([
      { op: 'add', path: '/annotations', value: { 'example.com/owner': 'alice', 'a~b': 'c' } },
    ]);
    const j = interceptor('n').modify('CreateSandbox', ({ draft }) => {
      draft.annotations!['example.com/owner'] = 'bob';
    });
    const r2 = await j.evaluate(
      evaluation('CreateSandbox', 'modify_operation', { annotations: { 'example.com/owner': 'alice' } }),
    );
    expect(patchesOf(r2)).toEqual([{ op: 'replace', path: '/annotations/example.com~1owner', value: 'bob' }]);
  });

  it('removes a deleted field and appends to lists', async () => {
    const i = interceptor('n').modify('CreateSandbox', ({ draft }) => {
      delete draft.workspace;
      draft.spec!.providers!.push('github');
    });
    const r = await i.evaluate(
      evaluation('CreateSandbox', 'modify_operation', { workspace: 'w', spec: { providers: ['anthropic'] } }),
    );
    expect(patchesOf(r)).toEqual([
      { op: 'add', path: '/spec/providers/1', value: 'github' },
      { op: 'remove', path: '/workspace' },
    ]);
  });

  it('sends no patches when the draft is unchanged', async () => {
    const i = interceptor('n').modify('CreateSandbox', ({ draft }) => {
      draft.name = 'same';
    });
    const r = await i.evaluate(evaluation('CreateSandbox', 'modify_operation', { name: 'same' }));
    expect(r).toEqual({ allowed: true, reason: '', statusCode: '', patches: [], logAnnotations: {} });
  });

  it('appends explicit patches (returned, or in allow()) after the draft diff', async () => {
    const i = interceptor('n').modify('CreateSandbox', ({ draft }) => {
      draft.name = 'n';
      return [patch.add(['labels'], { 'team/x': 'a' })];
    });
    const r = await i.evaluate(evaluation('CreateSandbox', 'modify_operation', {}));
    expect(patchesOf(r)).toEqual([
      { op: 'add', path: '/name', value: 'n' },
      { op: 'add', path: '/labels', value: { 'team/x': 'a' } },
    ]);
    const j = interceptor('n').modify('CreateSandbox', () =>
      allow({
        patches: [patch.add(['labels'], {}), patch.add(['labels', 'a/b'], 'c')],
        annotations: { why: 'x' },
      }),
    );
    const r2 = await j.evaluate(evaluation('CreateSandbox', 'modify_operation', {}));
    expect(r2.patches.map((p) => p.path)).toEqual(['/labels', '/labels/a~1b']);
    expect(r2.logAnnotations).toEqual({ why: 'x' });
  });

  it('gives the handler a frozen operation, so mutating it instead of the draft fails loudly', async () => {
    const i = interceptor('n', { logger: silent }).modify('CreateSandbox', ({ operation }) => {
      (operation as { name?: string }).name = 'x';
    });
    const err = await rejection(i.evaluate(evaluation('CreateSandbox', 'modify_operation', { name: 'a' })));
    expect(err.code).toBe('INTERNAL');
    expect(err.cause).toBeInstanceOf(TypeError);
  });

  it('drops the draft on a denial', async () => {
    const i = interceptor('n').modify('CreateSandbox', ({ draft }) => {
      draft.name = 'x';
      return deny('FAILED_PRECONDITION', 'quota exhausted: delete a sandbox first');
    });
    const r = await i.evaluate(evaluation('CreateSandbox', 'modify_operation', {}));
    expect(r).toEqual({
      allowed: false,
      reason: 'quota exhausted: delete a sandbox first',
      statusCode: 'FAILED_PRECONDITION',
      patches: [],
      logAnnotations: {},
    });
  });
});

describe('validate and observe', () => {
  it('validate denies with the named code and reason, and collects annotations', async () => {
    const i = interceptor('n').validate('CreateSandbox', ({ operation, annotate }) => {
      annotate('checked', 'name');
      if (!operation.name)
        return deny('INVALID_ARGUMENT', 'set a sandbox name', { annotations: { rule: 'name' } });
    });
    const r = await i.evaluate(evaluation('CreateSandbox', 'validate', {}));
    expect(r).toEqual({
      allowed: false,
      reason: 'set a sandbox name',
      statusCode: 'INVALID_ARGUMENT',
      patches: [],
      logAnnotations: { checked: 'name', rule: 'name' },
    });
    const ok = await i.evaluate(evaluation('CreateSandbox', 'validate', { name: 'a' }));
    expect(ok).toEqual({
      allowed: true,
      reason: '',
      statusCode: '',
      patches: [],
      logAnnotations: { checked: 'name' },
    });
  });

  it('observe sees the committed response and answers allowed = true', async () => {
    const seen: unknown[] = [];
    const i = interceptor('n').observe('DeleteSandbox', ({ operation, annotate }) => {
      seen.push(operation);
      annotate('deleted', String(operation.deleted));
    });
    const r = await i.evaluate(evaluation('DeleteSandbox', 'post_commit', { deleted: true }));
    expect(r.allowed).toBe(true);
    expect(r.logAnnotations).toEqual({ deleted: 'true' });
    expect(seen).toEqual([{ deleted: true }]);
  });

  it('hands the handler rpc, method, phase, binding id and the typed principal', async () => {
    const ctxs: unknown[] = [];
    const i = interceptor('n').validate(
      'DeleteSandbox',
      (ctx) => {
        ctxs.push({
          rpc: ctx.rpc,
          method: ctx.method,
          phase: ctx.phase,
          bindingId: ctx.bindingId,
          principal: ctx.principal,
          interceptor: ctx.interceptor,
        });
      },
      { id: 'guard' },
    );
    await i.evaluate(evaluation('DeleteSandbox', 'validate', { name: 'a' }));
    expect(ctxs).toEqual([
      {
        rpc: 'openshell.v1.OpenShell/DeleteSandbox',
        method: 'DeleteSandbox',
        phase: 'validate',
        bindingId: 'guard',
        principal: USER,
        interceptor: 'n',
      },
    ]);
  });
});

describe('routing and protocol errors', () => {
  const i = interceptor('r', { logger: silent })
    .validate('CreateSandbox', () => allow())
    .validate('DeleteSandbox', () => allow(), { id: 'a' })
    .validate('DeleteSandbox', () => deny('PERMISSION_DENIED', 'b says no'), { id: 'b' });

  it('answers INVALID_ARGUMENT for an evaluation without a phase', async () => {
    const ev: InterceptorEvaluation = { ...evaluation('CreateSandbox', 'validate', {}), validate: undefined };
    const err = await rejection(i.evaluate(ev));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatch(/no phase/);
  });

  it('answers INVALID_ARGUMENT for an RPC that is not interceptable', async () => {
    const err = await rejection(i.evaluate(evaluation('ListSandboxes', 'validate', {})));
    expect(err.code).toBe('INVALID_ARGUMENT');
    const err2 = await rejection(
      i.evaluate(evaluation('CreateSandbox', 'validate', {}, { service: 'other.Svc' })),
    );
    expect(err2.message).toMatch(/other\.Svc\/CreateSandbox is not an interceptable RPC/);
  });

  it('answers UNIMPLEMENTED for an RPC or phase nobody handles', async () => {
    const err = await rejection(i.evaluate(evaluation('CreateSandbox', 'modify_operation', {})));
    expect(err.code).toBe('UNIMPLEMENTED');
    expect(err.message).toMatch(/no binding for openshell.v1.OpenShell\/CreateSandbox in modify_operation/);
  });

  it('routes by binding id, and refuses an unknown id or one that selects another RPC', async () => {
    const r = await i.evaluate(evaluation('DeleteSandbox', 'validate', {}, { bindingId: 'b' }));
    expect(r.reason).toBe('b says no');
    expect(
      (await rejection(i.evaluate(evaluation('DeleteSandbox', 'validate', {}, { bindingId: 'zz' })))).code,
    ).toBe('NOT_FOUND');
    expect(
      (await rejection(i.evaluate(evaluation('CreateSandbox', 'validate', {}, { bindingId: 'a' })))).code,
    ).toBe('INVALID_ARGUMENT');
  });

  it('asks for a binding id when several bindings handle the same RPC and phase', async () => {
    const err = await rejection(i.evaluate(evaluation('DeleteSandbox', 'validate', {})));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatch(/'a', 'b' all handle/);
  });

  it('turns a thrown error into INTERNAL with a generic message (never a denial), logging it', async () => {
    const logs: string[] = [];
    const logger = pino({ level: 'error' }, { write: (s: string) => logs.push(s) });
    const boom = new Error('database password is hunter2');
    const j = interceptor('t', { logger }).validate('CreateSandbox', () => {
      throw boom;
    });
    const err = await rejection(j.evaluate(evaluation('CreateSandbox', 'validate', {})));
    expect(err.code).toBe('INTERNAL');
    expect(err.message).toBe('interceptor handler failed');
    expect(err.cause).toBe(boom);
    expect(logs.join('')).toContain('interceptor handler threw');
  });

  it('lets a handler choose the status by throwing an EvaluateError', async () => {
    const j = interceptor('t', { logger: silent }).validate('CreateSandbox', () => {
      throw new EvaluateError('UNAVAILABLE', 'quota store unreachable');
    });
    const err = await rejection(j.evaluate(evaluation('CreateSandbox', 'validate', {})));
    expect(err.code).toBe('UNAVAILABLE');
  });
});

describe('selectors (when)', () => {
  const calls = vi.fn();
  const i = interceptor('s')
    .modify(
      'CreateSandbox',
      ({ draft }) => {
        calls();
        draft.name = 'admin-sandbox';
      },
      { when: { kind: 'user', roles: ['admin', 'ops'], labels: { tier: ['gold', 'silver'], team: true } } },
    )
    .validate('DeleteSandbox', () => deny('PERMISSION_DENIED', 'bob may not delete'), {
      when: { subject: /^bob@/, match: ({ operation }) => operation.name !== 'scratch' },
    });

  it('runs the handler when every condition matches', async () => {
    const r = await i.evaluate(
      evaluation('CreateSandbox', 'modify_operation', { labels: { tier: 'gold', team: 'a' } }),
    );
    expect(r.patches).toHaveLength(1);
    expect(calls).toHaveBeenCalledTimes(1);
  });

  it('allows untouched without calling the handler when any condition fails', async () => {
    calls.mockClear();
    const cases = [
      { principal: { kind: 'sandbox', sandbox_id: 'sb-1' }, labels: { tier: 'gold', team: 'a' } },
      { principal: { kind: 'user', subject: 'a', roles: 'dev' }, labels: { tier: 'gold', team: 'a' } },
      { principal: { ...USER }, labels: { tier: 'bronze', team: 'a' } },
      { principal: { ...USER }, labels: { tier: 'gold' } },
    ] as { principal: Record<string, string>; labels: Record<string, string> }[];
    for (const c of cases) {
      const r = await i.evaluate(evaluation('CreateSandbox', 'modify_operation', { labels: c.labels }, c));
      expect(r).toEqual({ allowed: true, reason: '', statusCode: '', patches: [], logAnnotations: {} });
    }
    expect(calls).not.toHaveBeenCalled();
  });

  it('matches subjects by RegExp and custom predicates', async () => {
    const bob = { kind: 'user', subject: 'bob@example.com' };
    expect(
      (await i.evaluate(evaluation('DeleteSandbox', 'validate', { name: 'x' }, { principal: bob }))).allowed,
    ).toBe(false);
    expect(
      (await i.evaluate(evaluation('DeleteSandbox', 'validate', { name: 'scratch' }, { principal: bob })))
        .allowed,
    ).toBe(true);
    expect((await i.evaluate(evaluation('DeleteSandbox', 'validate', { name: 'x' }))).allowed).toBe(true);
  });

  it('reads labels from metadata of the first object field when the operation has none at the top', async () => {
    const j = interceptor('s').observe('CreateProvider', ({ annotate }) => annotate('hit', 'yes'), {
      when: { labels: { team: 'a' } },
    });
    const r = await j.evaluate(
      evaluation('CreateProvider', 'post_commit', { provider: { metadata: { labels: { team: 'a' } } } }),
    );
    expect(r.logAnnotations).toEqual({ hit: 'yes' });
  });
});

describe('deadline and cancellation', () => {
  it('aborts the handler signal before the deadline', async () => {
    let reason: unknown;
    const i = interceptor('d').validate(
      'CreateSandbox',
      ({ signal }) =>
        new Promise<undefined>((resolve) => {
          signal.addEventListener('abort', () => {
            reason = signal.reason;
            resolve(undefined);
          });
        }),
    );
    const r = await i.evaluate(evaluation('CreateSandbox', 'validate', {}), { deadline: Date.now() + 300 });
    expect(r.allowed).toBe(true);
    expect((reason as DOMException).name).toBe('TimeoutError');
  });

  it('answers DEADLINE_EXCEEDED when a handler ignores its signal past the deadline', async () => {
    let release: () => void = () => {};
    const i = interceptor('d').validate(
      'CreateSandbox',
      () => new Promise<undefined>((r) => (release = () => r(undefined))),
    );
    const err = await rejection(
      i.evaluate(evaluation('CreateSandbox', 'validate', {}), { deadline: Date.now() + 100 }),
    );
    release();
    expect(err.code).toBe('DEADLINE_EXCEEDED');
  });

  it('answers CANCELLED and aborts the handler when the caller cancels', async () => {
    const ac = new AbortController();
    let aborted = false;
    const i = interceptor('d').validate(
      'CreateSandbox',
      ({ signal }) =>
        new Promise<undefined>((resolve) => {
          signal.addEventListener('abort', () => {
            aborted = true;
            resolve(undefined);
          });
          ac.abort();
        }),
    );
    const err = await rejection(
      i.evaluate(evaluation('CreateSandbox', 'validate', {}), { signal: ac.signal }),
    );
    expect(err.code).toBe('CANCELLED');
    expect(aborted).toBe(true);
  });
});

describe('contract safety', () => {
  const cases = [
    {
      rule: 'post-commit-denial',
      make: () =>
        interceptor('c', { strict: true }).observe('DeleteSandbox', () => deny('ABORTED', 'no') as never),
      ev: evaluation('DeleteSandbox', 'post_commit', {}),
    },
    {
      rule: 'patches-outside-modify',
      make: () =>
        interceptor('c', { strict: true }).validate('CreateSandbox', () =>
          allow({ patches: [patch.add('/name', 'x')] }),
        ),
      ev: evaluation('CreateSandbox', 'validate', {}),
    },
    {
      rule: 'unknown-status-code',
      make: () =>
        interceptor('c', { strict: true }).validate('CreateSandbox', () => deny('NOPE' as 'ABORTED', 'x')),
      ev: evaluation('CreateSandbox', 'validate', {}),
    },
    {
      rule: 'secret-patch',
      make: () =>
        interceptor('c', { strict: true }).modify('CreateProvider', ({ draft }) => {
          draft.provider = { ...draft.provider, credentials: { token: 'x' } } as never;
        }),
      ev: evaluation('CreateProvider', 'modify_operation', { provider: { type: 'github' } }),
    },
    {
      rule: 'too-many-patches',
      make: () =>
        interceptor('c', { strict: true, maxPatches: 2 }).modify('CreateSandbox', ({ draft }) => {
          draft.labels = { a: '1', b: '2', c: '3' };
        }),
      ev: evaluation('CreateSandbox', 'modify_operation', { labels: { z: '0' } }),
    },
    {
      rule: 'invalid-patch',
      make: () =>
        interceptor('c', { strict: true }).modify('CreateSandbox', () => [patch.replace('/name', 'x')]),
      ev: evaluation('CreateSandbox', 'modify_operation', {}),
    },
    {
      rule: 'invalid-patched-operation',
      make: () =>
        interceptor('c', { strict: true }).modify('CreateSandbox', ({ draft }) => {
          (draft as { name: unknown }).name = 5;
        }),
      ev: evaluation('CreateSandbox', 'modify_operation', {}),
    },
    {
      rule: 'result-too-large',
      make: () =>
        interceptor('c', { strict: true, maxResultBytes: 64 }).validate('CreateSandbox', () =>
          allow({ annotations: { big: 'x'.repeat(100) } }),
        ),
      ev: evaluation('CreateSandbox', 'validate', {}),
    },
    {
      rule: 'invalid-return',
      make: () => interceptor('c', { strict: true }).validate('CreateSandbox', () => true as never),
      ev: evaluation('CreateSandbox', 'validate', {}),
    },
  ] as const;

  for (const c of cases) {
    it(`strict mode rejects ${c.rule} with ContractViolationError naming the rule`, async () => {
      const err = await c
        .make()
        .evaluate(c.ev)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(ContractViolationError);
      expect((err as ContractViolationError).rule).toBe(c.rule);
      expect((err as Error).message).toContain(`(${c.rule})`);
    });
  }

  it('is strict by default under vitest', async () => {
    const err = await interceptor('c')
      .validate('CreateSandbox', () => deny('NOPE' as 'ABORTED', 'x'))
      .evaluate(evaluation('CreateSandbox', 'validate', {}))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ContractViolationError);
  });

  describe('outside strict mode: logged, and a safe result instead', () => {
    const logs: string[] = [];
    const logger = pino({ level: 'error' }, { write: (s: string) => logs.push(s) });
    const lax = () => interceptor('c', { strict: false, logger, maxPatches: 2, maxResultBytes: 200 });

    it('a post_commit denial becomes allowed = true', async () => {
      const r = await lax()
        .observe('DeleteSandbox', () => deny('ABORTED', 'no') as never)
        .evaluate(evaluation('DeleteSandbox', 'post_commit', {}));
      expect(r.allowed).toBe(true);
      expect(r.reason).toBe('');
      expect(logs.pop()).toContain('post-commit-denial');
    });

    it('patches outside modify are dropped', async () => {
      const r = await lax()
        .validate('CreateSandbox', () => allow({ patches: [patch.add('/name', 'x')] }))
        .evaluate(evaluation('CreateSandbox', 'validate', {}));
      expect(r).toEqual({ allowed: true, reason: '', statusCode: '', patches: [], logAnnotations: {} });
      expect(logs.pop()).toContain('patches-outside-modify');
    });

    it('an unknown status code becomes PERMISSION_DENIED, the denial stands', async () => {
      const r = await lax()
        .validate('CreateSandbox', () => deny('NOPE' as 'ABORTED', 'because'))
        .evaluate(evaluation('CreateSandbox', 'validate', {}));
      expect(r).toMatchObject({ allowed: false, statusCode: 'PERMISSION_DENIED', reason: 'because' });
      expect(logs.pop()).toContain('unknown-status-code');
    });

    it('accepts a status code in any case with spaces, as the gateway reads it', async () => {
      const r = await lax()
        .validate('CreateSandbox', () => deny(' not_found ' as 'NOT_FOUND', 'x'))
        .evaluate(evaluation('CreateSandbox', 'validate', {}));
      expect(r.statusCode).toBe('NOT_FOUND');
    });

    it('secret, excess, invalid and oversize results fail the call with INTERNAL, never half-applied', async () => {
      const secret = lax().modify('CreateProvider', ({ draft }) => {
        draft.provider = { ...draft.provider, credentials: { token: 'x' } } as never;
      });
      const many = lax().modify('CreateSandbox', ({ draft }) => {
        draft.labels = { a: '1', b: '2', c: '3' };
      });
      const invalid = lax().modify('CreateSandbox', () => [patch.replace('/name', 'x')]);
      const big = lax().validate('CreateSandbox', () => allow({ annotations: { big: 'x'.repeat(300) } }));
      const runs = [
        () =>
          secret.evaluate(evaluation('CreateProvider', 'modify_operation', { provider: { type: 'github' } })),
        () => many.evaluate(evaluation('CreateSandbox', 'modify_operation', { labels: { z: '0' } })),
        () => invalid.evaluate(evaluation('CreateSandbox', 'modify_operation', {})),
        () => big.evaluate(evaluation('CreateSandbox', 'validate', {})),
      ];
      for (const run of runs) {
        const err = await rejection(run());
        expect(err.code).toBe('INTERNAL');
        expect(err.message).toBe('the interceptor produced an invalid result');
      }
      const text = logs.join('');
      for (const rule of ['secret-patch', 'too-many-patches', 'invalid-patch', 'result-too-large']) {
        expect(text).toContain(rule);
      }
    });
  });
});

describe('integrator properties', () => {
  it('a property an integrator attaches (log, options, settings) cannot break the interceptor', async () => {
    const i = interceptor('decorated').validate('DeleteSandbox', () => deny('FAILED_PRECONDITION', 'busy'));
    Object.assign(i, { log: () => 'mine', options: {}, settings: {}, bindings: 'x', register: 1 });
    const r = await i.evaluate(evaluation('DeleteSandbox', 'validate', { name: 'sb' }));
    expect(r).toMatchObject({ allowed: false, statusCode: 'FAILED_PRECONDITION', reason: 'busy' });
    expect(i.manifest().bindings).toHaveLength(1);
  });
});
