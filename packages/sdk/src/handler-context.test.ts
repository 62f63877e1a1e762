// The handler's `operation` and `draft` are copies of the view made on first use; these
// tests pin what that must never change: the caller's evaluation stays untouched, the
// operation is the original even after draft edits, and patch checks still apply.
import type { JsonObject } from '@openshell-interceptors/protocol';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { evaluation } from './__fixtures__/evaluations.js';
import { EvaluateError } from './errors.js';
import { interceptor } from './interceptor.js';
import { patch } from './results.js';

const silent = pino({ level: 'silent' });
const request = (): JsonObject => ({ name: 'Box', labels: { team: 'ml' }, spec: { command: ['bash'] } });

describe('handler context: operation and draft', () => {
  it("never freezes or changes the caller's evaluation", async () => {
    const ev = evaluation('CreateSandbox', 'modify_operation', request());
    const before = structuredClone(ev);
    const i = interceptor('n').modify('CreateSandbox', ({ operation, draft }) => {
      draft.name = String(operation.name).toLowerCase();
      return [patch.add('/labels/owner', 'alice')];
    });
    const r = await i.evaluate(ev);
    expect(r.patches.map((p) => p.path)).toEqual(['/name', '/labels/owner']);
    expect(ev).toEqual(before);
    const op = ev.modifyOperation?.proposedOperation as JsonObject;
    expect(Object.isFrozen(op)).toBe(false);
    expect(Object.isFrozen(op.labels)).toBe(false);
  });

  it('shows the original operation even when read after the draft was changed', async () => {
    let seen: unknown;
    const i = interceptor('n').modify('CreateSandbox', (ctx) => {
      ctx.draft.name = 'changed';
      seen = ctx.operation.name;
      expect(ctx.draft).toBe(ctx.draft); // one draft per call
      expect(Object.isFrozen(ctx.operation)).toBe(true);
    });
    const r = await i.evaluate(evaluation('CreateSandbox', 'modify_operation', request()));
    expect(seen).toBe('Box');
    expect(r.patches.map((p) => [p.op, p.path, p.value])).toEqual([['replace', '/name', 'changed']]);
  });

  it('gives validate and observe handlers no draft', async () => {
    const keys: string[][] = [];
    const i = interceptor('n')
      .validate('CreateSandbox', (ctx) => {
        keys.push(Object.keys(ctx));
      })
      .observe('CreateSandbox', (ctx) => {
        keys.push(Object.keys(ctx));
      });
    await i.evaluate(evaluation('CreateSandbox', 'validate', request()));
    await i.evaluate(evaluation('CreateSandbox', 'post_commit', { sandbox: { metadata: { name: 'b' } } }));
    for (const k of keys) {
      expect(k).toContain('operation');
      expect(k).not.toContain('draft');
    }
  });

  it('still refuses a patch that makes the operation invalid, without reading the operation', async () => {
    const i = interceptor('n', { logger: silent, strict: false }).modify('CreateSandbox', () => [
      patch.add('/labels/bad', 5 as never),
    ]);
    const err = await i.evaluate(evaluation('CreateSandbox', 'modify_operation', request())).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EvaluateError);
    expect((err as EvaluateError).code).toBe('INTERNAL');
  });

  it('lets a patch through when the view holds fields this SDK does not know (a newer gateway)', async () => {
    const i = interceptor('n', { logger: silent, strict: true }).modify('CreateSandbox', () => [
      patch.add('/labels/x', 5 as never),
    ]);
    const r = await i.evaluate(
      evaluation('CreateSandbox', 'modify_operation', { ...request(), fieldFromTheFuture: true }),
    );
    expect(r.patches.map((p) => p.path)).toEqual(['/labels/x']);
  });
});
