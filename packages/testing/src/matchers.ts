import type { EvaluationRecord, InterceptOutcome } from '@openshell-interceptors/gateway';
import {
  type GrpcCodeName,
  isGrpcCodeName,
  type JsonValue,
  type Phase,
  parseJsonPointer,
} from '@openshell-interceptors/protocol';

/** The part of vitest's (and jest's) matcher `this` the matchers use. */
export interface MatcherContext {
  readonly isNot: boolean;
  equals(a: unknown, b: unknown, customTesters?: unknown[], strictCheck?: boolean): boolean;
  readonly utils: {
    readonly subsetEquality: unknown;
    readonly iterableEquality: unknown;
    stringify(v: unknown): string;
  };
  readonly customTesters?: unknown[];
}

export interface MatcherResult {
  readonly pass: boolean;
  readonly message: () => string;
  readonly actual?: unknown;
  readonly expected?: unknown;
}

/** Which evaluations `toHaveAnnotations` looks at. */
export interface AnnotationFilter {
  readonly interceptor?: string;
  readonly phase?: Phase;
}

/** The matchers, as vitest sees them on `expect(outcome)`. */
export interface InterceptorMatchers<R = unknown> {
  /** The call went through (nothing denied, no fail_closed failure). */
  toBeAllowed(): R;
  /** The call was refused; optionally with this gRPC code and a reason (exact string, or a RegExp). */
  toBeDenied(code?: GrpcCodeName, reason?: string | RegExp): R;
  /** A patch was applied at (or around) `path`, and the final operation holds `value` there. */
  toBePatched(path: string, value: unknown): R;
  /** The final operation (secrets removed) matches this deep partial. */
  toHaveFinalOperation(partial: Record<string, unknown>): R;
  /** The log annotations (of all evaluations, or those matching the filter) include these. */
  toHaveAnnotations(partial: Record<string, string>, filter?: AnnotationFilter): R;
}

function isOutcome(v: unknown): v is InterceptOutcome {
  const o = v as Partial<InterceptOutcome> | null;
  return (
    typeof o === 'object' &&
    o !== null &&
    (o.outcome === 'allowed' || o.outcome === 'denied') &&
    Array.isArray(o.evaluations)
  );
}

function notAnOutcome(name: string, received: unknown): MatcherResult {
  return {
    pass: false,
    message: () =>
      `${name}: expected the result of gw.call(...) or gateway.intercept(...), received ${typeof received === 'object' ? JSON.stringify(received)?.slice(0, 200) : String(received)}`,
  };
}

function short(v: unknown, max = 160): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** One line per evaluation: what each interceptor did, so a failing assertion explains itself. */
export function describeEvaluations(evaluations: readonly EvaluationRecord[]): string {
  if (evaluations.length === 0) return '  (no interceptor evaluated this call)';
  return evaluations
    .map((e) => {
      const what =
        e.decision === 'error'
          ? `error [${e.layer}] (${e.failurePolicy}): ${e.error}`
          : e.decision === 'deny'
            ? `deny: ${e.reason}`
            : e.patches.length > 0
              ? `allow, ${e.patches.length} patch(es) ${e.applied ? 'applied' : 'not applied'}: ${short(e.patches)}`
              : 'allow';
      const ann = Object.keys(e.annotations).length > 0 ? ` annotations ${short(e.annotations)}` : '';
      return `  ${e.phase.padEnd(16)} ${e.interceptor}/${e.binding}: ${what}${ann}`;
    })
    .join('\n');
}

function describeOutcome(o: InterceptOutcome): string {
  const head =
    o.outcome === 'allowed'
      ? 'allowed'
      : `denied with ${o.status?.code}: ${JSON.stringify(o.status?.message)}`;
  return `the call was ${head}\nevaluations:\n${describeEvaluations(o.evaluations)}`;
}

/** The value at a JSON Pointer, or `absent`. */
function at(doc: unknown, pointer: string): { found: true; value: unknown } | { found: false } {
  let cur: unknown = doc;
  for (const token of parseJsonPointer(pointer)) {
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9][0-9]*)$/.test(token)) return { found: false };
      const i = Number(token);
      if (i >= cur.length) return { found: false };
      cur = cur[i];
    } else if (typeof cur === 'object' && cur !== null && Object.hasOwn(cur, token)) {
      cur = (cur as Record<string, unknown>)[token];
    } else {
      return { found: false };
    }
  }
  return { found: true, value: cur };
}

/** Whether two pointers are the same location or one contains the other. */
function related(a: string, b: string): boolean {
  return a === b || a === '' || b === '' || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
}

export function toBeAllowed(this: MatcherContext, received: unknown): MatcherResult {
  if (!isOutcome(received)) return notAnOutcome('toBeAllowed', received);
  const pass = received.outcome === 'allowed';
  return {
    pass,
    message: () =>
      pass
        ? `expected the call not to be allowed, but ${describeOutcome(received)}`
        : `expected the call to be allowed, but ${describeOutcome(received)}`,
  };
}

export function toBeDenied(
  this: MatcherContext,
  received: unknown,
  code?: GrpcCodeName,
  reason?: string | RegExp,
): MatcherResult {
  if (!isOutcome(received)) return notAnOutcome('toBeDenied', received);
  if (code !== undefined && !isGrpcCodeName(code))
    return {
      pass: false,
      message: () => `toBeDenied: ${JSON.stringify(code)} is not a gRPC status code name`,
    };
  const problems: string[] = [];
  if (received.outcome !== 'denied') problems.push('it was allowed');
  else {
    const s = received.status;
    if (code !== undefined && s?.code !== code) problems.push(`its code is ${s?.code}, not ${code}`);
    if (reason !== undefined) {
      const msg = s?.message ?? '';
      const ok = typeof reason === 'string' ? msg === reason : reason.test(msg);
      if (!ok)
        problems.push(
          `its reason ${JSON.stringify(msg)} does not ${typeof reason === 'string' ? 'equal' : 'match'} ${typeof reason === 'string' ? JSON.stringify(reason) : String(reason)}`,
        );
    }
  }
  const pass = problems.length === 0;
  const want = `denied${code ? ` with ${code}` : ''}${reason !== undefined ? ` and reason ${typeof reason === 'string' ? JSON.stringify(reason) : String(reason)}` : ''}`;
  return {
    pass,
    message: () =>
      pass
        ? `expected the call not to be ${want}, but ${describeOutcome(received)}`
        : `expected the call to be ${want}, but ${problems.join('; ')}: ${describeOutcome(received)}`,
  };
}

export function toBePatched(
  this: MatcherContext,
  received: unknown,
  path: string,
  value: unknown,
): MatcherResult {
  if (!isOutcome(received)) return notAnOutcome('toBePatched', received);
  try {
    parseJsonPointer(path);
  } catch (e) {
    return {
      pass: false,
      message: () => `toBePatched: ${JSON.stringify(path)} is not a JSON Pointer: ${(e as Error).message}`,
    };
  }
  const applied = received.evaluations.filter(
    (e) =>
      e.applied &&
      e.patches.some((p) => related(p.path, path) || (p.from !== undefined && related(p.from, path))),
  );
  const found = at(received.operation, path);
  const problems: string[] = [];
  if (applied.length === 0) problems.push(`no applied patch touched ${path}`);
  if (!found.found) problems.push(`the final operation has nothing at ${path}`);
  else if (!this.equals(found.value, value))
    problems.push(`the final operation has ${this.utils.stringify(found.value)} at ${path}`);
  const pass = problems.length === 0;
  return {
    pass,
    actual: found.found ? found.value : undefined,
    expected: value,
    message: () =>
      pass
        ? `expected ${path} not to be patched to ${this.utils.stringify(value)}, but it was: ${describeOutcome(received)}`
        : `expected ${path} to be patched to ${this.utils.stringify(value)}, but ${problems.join(' and ')}.\n${describeOutcome(received)}\nfinal operation: ${short(received.operation, 600)}`,
  };
}

function subset(ctx: MatcherContext, actual: unknown, expected: unknown): boolean {
  return ctx.equals(actual, expected, [
    ...(ctx.customTesters ?? []),
    ctx.utils.iterableEquality,
    ctx.utils.subsetEquality,
  ]);
}

export function toHaveFinalOperation(
  this: MatcherContext,
  received: unknown,
  partial: Record<string, unknown>,
): MatcherResult {
  if (!isOutcome(received)) return notAnOutcome('toHaveFinalOperation', received);
  const pass = subset(this, received.operation, partial);
  return {
    pass,
    actual: received.operation,
    expected: partial,
    message: () =>
      pass
        ? `expected the final operation not to match ${short(partial, 400)}`
        : `expected the final operation to match ${short(partial, 400)}\nfinal operation: ${short(received.operation, 800)}\n${describeOutcome(received)}`,
  };
}

export function toHaveAnnotations(
  this: MatcherContext,
  received: unknown,
  partial: Record<string, string>,
  filter: AnnotationFilter = {},
): MatcherResult {
  if (!isOutcome(received)) return notAnOutcome('toHaveAnnotations', received);
  const merged: Record<string, string> = {};
  for (const e of received.evaluations) {
    if (filter.interceptor !== undefined && e.interceptor !== filter.interceptor) continue;
    if (filter.phase !== undefined && e.phase !== filter.phase) continue;
    Object.assign(merged, e.annotations);
  }
  const pass = subset(this, merged, partial);
  const scope =
    filter.interceptor || filter.phase
      ? ` (${[filter.interceptor, filter.phase].filter(Boolean).join(', ')})`
      : '';
  return {
    pass,
    actual: merged,
    expected: partial,
    message: () =>
      pass
        ? `expected the annotations${scope} not to include ${short(partial)}`
        : `expected the annotations${scope} to include ${short(partial)}, got ${short(merged, 400)}\n${describeOutcome(received)}`,
  };
}

/** The matchers for `expect.extend`. */
export const interceptorMatchers = {
  toBeAllowed,
  toBeDenied,
  toBePatched,
  toHaveFinalOperation,
  toHaveAnnotations,
};

export type { JsonValue };
