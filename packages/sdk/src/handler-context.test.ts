// The handler's `operation` and `draft` are copies of the view made on first use; these
// tests pin what that must never change: the caller's evaluation stays untouched, the
// operation is the original even after draft edits, and patch checks still apply.
import { setFlagsFromString } from 'node:v8';
import type { JsonObject } from '@openshell-interceptors/protocol';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { evaluation } from './__fixtures__/evaluations.js';
import { callScope } from './deadline.js';
import { EvaluateError } from './errors.js';
import { interceptor } from './interceptor.js';
import { Cancellation, transportContext } from './internal.js';
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
    const seen: { operation: boolean; draft: boolean }[] = [];
    const i = interceptor('n')
      .validate('CreateSandbox', (ctx) => {
        seen.push({ operation: 'operation' in ctx, draft: 'draft' in ctx });
      })
      .observe('CreateSandbox', (ctx) => {
        seen.push({ operation: 'operation' in ctx, draft: 'draft' in ctx });
      });
    await i.evaluate(evaluation('CreateSandbox', 'validate', request()));
    await i.evaluate(evaluation('CreateSandbox', 'post_commit', { sandbox: { metadata: { name: 'b' } } }));
    expect(seen).toEqual([
      { operation: true, draft: false },
      { operation: true, draft: false },
    ]);
  });

  it('gives validate handlers the current state, frozen, and the call facts', async () => {
    const ev = evaluation('CreateSandbox', 'validate', request());
    if (ev.validate) ev.validate.currentState = { name: 'Old', labels: { team: 'ml' } };
    let seen: Record<string, unknown> = {};
    const i = interceptor('n').validate('CreateSandbox', (ctx) => {
      const { interceptor: name, method, rpc, phase, bindingId, principal, deadline, currentState } = ctx;
      seen = { name, method, rpc, phase, bindingId, subject: principal.subject, deadline, currentState };
      expect(Object.isFrozen(currentState)).toBe(true);
      expect(Object.isFrozen(currentState?.labels)).toBe(true);
    });
    const deadline = Date.now() + 60_000;
    await i.evaluate(ev, { deadline });
    expect(seen).toEqual({
      name: 'n',
      method: 'CreateSandbox',
      rpc: 'openshell.v1.OpenShell/CreateSandbox',
      phase: 'validate',
      bindingId: 'create-sandbox',
      subject: 'alice@example.com',
      deadline,
      currentState: { name: 'Old', labels: { team: 'ml' } },
    });
  });

  it('shows no deadline when the caller gave none or an infinite one', async () => {
    const seen: unknown[] = [];
    const i = interceptor('n').validate('CreateSandbox', ({ deadline }) => {
      seen.push(deadline);
    });
    await i.evaluate(evaluation('CreateSandbox', 'validate', request()));
    await i.evaluate(evaluation('CreateSandbox', 'validate', request()), {
      deadline: Number.POSITIVE_INFINITY,
    });
    expect(seen).toEqual([undefined, undefined]);
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

describe('handler context: one hidden class for every call', () => {
  // V8's own view of the objects. A getter written in an object literal makes the object a
  // dictionary, and a getter added with defineProperty gives it a hidden class of its own
  // per call: long-lived hidden classes that kept every call's objects alive through
  // young-generation collections (megabytes copied per collection under load).
  setFlagsFromString('--allow-natives-syntax');
  const sameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;
  const fast = new Function('a', 'return %HasFastProperties(a)') as (a: object) => boolean;

  const contexts = async (phase: 'modify_operation' | 'validate' | 'post_commit') => {
    const seen: object[] = [];
    const record = (ctx: object) => {
      seen.push(ctx);
    };
    const i = interceptor('n')
      .modify('CreateSandbox', record)
      .validate('CreateSandbox', record)
      .observe('CreateSandbox', record, { id: 'observer' });
    const op = phase === 'post_commit' ? { sandbox: { metadata: { name: 'b' } } } : request();
    for (let n = 0; n < 2; n++)
      await i.evaluate(
        evaluation('CreateSandbox', phase, op, phase === 'post_commit' ? { bindingId: 'observer' } : {}),
        { deadline: Date.now() + 60_000 },
      );
    return seen;
  };

  it.each(['modify_operation', 'validate', 'post_commit'] as const)('%s contexts', async (phase) => {
    const [a, b] = await contexts(phase);
    expect(fast(a as object)).toBe(true);
    expect(sameMap(a as object, b as object)).toBe(true);
  });

  it("the call scope and serve's call context", () => {
    const scopes = [
      callScope({ deadline: Date.now() + 60_000 }),
      callScope({ deadline: Date.now() + 60_000 }),
    ];
    const calls = [
      transportContext(new Cancellation(), Date.now() + 60_000),
      transportContext(new Cancellation(), Date.now() + 60_000),
    ];
    for (const [a, b] of [scopes, calls] as [object, object][]) {
      expect(fast(a)).toBe(true);
      expect(sameMap(a, b)).toBe(true);
    }
    for (const s of scopes) s.dispose();
  });
});
