import { describe, expect, expectTypeOf, it } from 'vitest';
import { interceptor } from './interceptor.js';
import { allow, deny } from './results.js';
import type { ModifyContext, ObserveContext, ValidateContext } from './types.js';

// Compile-time checks: `tsc -p tsconfig.json` type-checks this file, so a wrong
// type here fails the typecheck in CI. The runtime test only makes it a suite.
function typeChecks(): void {
  interceptor('t')
    .modify('CreateSandbox', (ctx) => {
      expectTypeOf(ctx).toEqualTypeOf<ModifyContext<'CreateSandbox'>>();
      expectTypeOf(ctx.draft.name).toEqualTypeOf<string | undefined>();
      expectTypeOf(ctx.principal.kind).toEqualTypeOf<'user' | 'sandbox' | 'anonymous' | 'unknown'>();
      // @ts-expect-error the received operation is read-only
      ctx.operation.name = 'x';
      ctx.draft.name = 'x';
    })
    .validate('UpdateConfig', (ctx) => {
      expectTypeOf(ctx).toEqualTypeOf<ValidateContext<'UpdateConfig'>>();
      return deny('FAILED_PRECONDITION', 'no');
    })
    .observe('CreateSshSession', (ctx) => {
      expectTypeOf(ctx).toEqualTypeOf<ObserveContext<'CreateSshSession'>>();
      // @ts-expect-error secret fields are not in the view
      void ctx.operation.token;
      void ctx.operation.sandboxId;
      return allow();
    });
  // Async handlers that return nothing compile in every phase.
  interceptor('t')
    .modify('CreateSandbox', async ({ draft }) => {
      await Promise.resolve();
      draft.name = 'x';
    })
    .validate('CreateSandbox', async () => {})
    .observe('CreateSandbox', async () => {});
  // @ts-expect-error only the 25 interceptable RPCs compile
  interceptor('t').modify('ListSandboxes', () => undefined);
  // @ts-expect-error observers cannot deny
  interceptor('t').observe('DeleteSandbox', () => deny('ABORTED', 'no'));
  // @ts-expect-error a denial needs a canonical code other than OK
  deny('OK', 'no');
  // @ts-expect-error validate gets no draft
  interceptor('t').validate('CreateSandbox', ({ draft }) => draft);
}

describe('types', () => {
  it('are checked at compile time by tsc (this file is in the typecheck)', () => {
    expect(typeof typeChecks).toBe('function');
  });
});
