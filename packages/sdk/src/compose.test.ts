import { GatewayInterceptorPhase } from '@openshell-interceptors/protocol';
import { describe, expect, it } from 'vitest';
import { evaluation } from './__fixtures__/evaluations.js';
import { compose } from './compose.js';
import type { EvaluateError } from './errors.js';
import { interceptor } from './interceptor.js';
import { allow, deny } from './results.js';
import type { Interceptor } from './types.js';

const naming = interceptor('naming', { failurePolicy: 'fail_closed' }).modify(
  'CreateSandbox',
  ({ draft }) => {
    draft.name = 'named';
  },
);
const quota = interceptor('quota')
  .validate('CreateSandbox', () => deny('RESOURCE_EXHAUSTED', 'quota reached: delete a sandbox first'), {
    id: 'quota-create',
  })
  .observe('DeleteSandbox', ({ annotate }) => annotate('freed', '1'));

describe('compose', () => {
  const svc = compose('platform', naming, quota);

  it('merges the manifests, moving each part-wide policy onto its bindings', () => {
    const m = svc.manifest();
    expect(m.name).toBe('platform');
    expect(m.expectedAudience).toBe('urn:openshell:extension:interceptor:platform');
    expect(m.bindings.map((b) => [b.id, b.phases, b.failurePolicy])).toEqual([
      ['create-sandbox', [GatewayInterceptorPhase.GATEWAY_INTERCEPTOR_PHASE_MODIFY_OPERATION], 'fail_closed'],
      ['quota-create', [GatewayInterceptorPhase.GATEWAY_INTERCEPTOR_PHASE_VALIDATE], ''],
      [
        'delete-sandbox-observe',
        [GatewayInterceptorPhase.GATEWAY_INTERCEPTOR_PHASE_POST_COMMIT],
        'fail_open',
      ],
    ]);
  });

  it('routes each evaluation to the part that owns the binding, by id or by RPC and phase', async () => {
    const m = await svc.evaluate(
      evaluation('CreateSandbox', 'modify_operation', {}, { bindingId: 'create-sandbox' }),
    );
    expect(m.patches.map((p) => p.path)).toEqual(['/name']);
    const v = await svc.evaluate(evaluation('CreateSandbox', 'validate', { name: 'x' }));
    expect(v).toMatchObject({ allowed: false, statusCode: 'RESOURCE_EXHAUSTED' });
    const o = await svc.evaluate(evaluation('DeleteSandbox', 'post_commit', { deleted: true }));
    expect(o.logAnnotations).toEqual({ freed: '1' });
  });

  it('answers like a single interceptor for unknown bindings, missing phases and unhandled RPCs', async () => {
    const codes = await Promise.all(
      [
        evaluation('CreateSandbox', 'validate', {}, { bindingId: 'nope' }),
        { ...evaluation('CreateSandbox', 'validate', {}), validate: undefined },
        evaluation('UpdateConfig', 'validate', {}),
      ].map((ev) =>
        svc.evaluate(ev).then(
          () => 'OK',
          (e: EvaluateError) => e.code,
        ),
      ),
    );
    expect(codes).toEqual(['NOT_FOUND', 'INVALID_ARGUMENT', 'UNIMPLEMENTED']);
  });

  it('refuses duplicate binding ids, naming both definitions', () => {
    const other = interceptor('other').validate('CreateSandbox', () => allow());
    expect(() => compose('svc', naming, other)).toThrow(
      "compose('svc'): binding id 'create-sandbox' is declared by both 'naming' and 'other'",
    );
  });

  it('refuses two provider profile sources and anything that is not an interceptor', () => {
    const a = interceptor('a').providerProfiles(() => [{ id: 'x' }]);
    const b = interceptor('b').providerProfiles(() => [{ id: 'y' }]);
    expect(() => compose('svc', a, b)).toThrow(/only one part may serve provider profiles/);
    expect(() => compose('svc', {} as Interceptor)).toThrow(/part 0 is not an Interceptor/);
  });

  it('serves the provider profiles of the part that has them', async () => {
    const a = interceptor('a').providerProfiles(() => ({ revision: 'r1', profiles: [{ id: 'github' }] }));
    const svc2 = compose('svc', a, quota);
    expect(svc2.manifest().providerProfiles).toBe(true);
    expect((await svc2.snapshotProviderProfiles()).revision).toBe('r1');
    await expect(svc.snapshotProviderProfiles()).rejects.toMatchObject({ code: 'UNIMPLEMENTED' });
  });
});
