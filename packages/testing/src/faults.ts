import { setTimeout as sleep } from 'node:timers/promises';
import {
  type DenialCodeName,
  evaluationPayload,
  type InterceptableMethod,
  type InterceptorEvaluation,
  type InterceptorResult,
  isGrpcCodeName,
  type JsonValue,
  type Phase,
} from '@openshell-interceptors/protocol';
import { type EvaluateContext, EvaluateError, type Interceptor } from '@openshell-interceptors/sdk';

/** Which evaluations a fault applies to; every given field must match. */
export interface FaultScope {
  readonly phase?: Phase | readonly Phase[];
  readonly method?: InterceptableMethod | readonly InterceptableMethod[];
  readonly binding?: string | readonly string[];
  /** Only the first `times` matching evaluations (default: all). */
  readonly times?: number;
}

/** A raw RFC 6902 operation as it goes on the wire (nothing checks it: that is the point). */
export interface RawPatch {
  readonly op: string;
  readonly path: string;
  readonly value?: JsonValue;
  readonly from?: string;
}

export type FaultKind =
  | { readonly kind: 'delay'; readonly ms: number }
  | { readonly kind: 'hang' }
  | { readonly kind: 'status'; readonly code: DenialCodeName; readonly message: string }
  | { readonly kind: 'oversized'; readonly bytes: number }
  | { readonly kind: 'patches'; readonly patches: readonly RawPatch[] }
  | { readonly kind: 'result'; readonly change: (result: InterceptorResult) => InterceptorResult };

/** One fault and where it applies. */
export type Fault = FaultKind & { readonly scope: FaultScope };

function list<T>(v: T | readonly T[] | undefined): readonly T[] | undefined {
  return v === undefined ? undefined : Array.isArray(v) ? (v as readonly T[]) : [v as T];
}

function positive(n: number, what: string): number {
  if (!Number.isFinite(n) || n < 0) throw new TypeError(`${what} must be a non-negative number, got ${n}`);
  return n;
}

/**
 * Fault builders. Each takes an optional scope (phase, method, binding, times).
 * Wrap an interceptor with `withFaults(interceptor, ...faults)`.
 */
export const faults = {
  /** Answer `ms` later (beyond the gateway's timeout → a `deadline` failure). */
  delay: (ms: number, scope: FaultScope = {}): Fault => ({ kind: 'delay', ms: positive(ms, 'delay'), scope }),
  /** Never answer (until the gateway gives up and cancels). */
  hang: (scope: FaultScope = {}): Fault => ({ kind: 'hang', scope }),
  /** Fail with a gRPC status instead of answering (UNAVAILABLE is what a dead backend looks like). */
  status: (code: DenialCodeName, message = 'injected fault', scope: FaultScope = {}): Fault => {
    if (!isGrpcCodeName(code) || (code as string) === 'OK')
      throw new TypeError(`faults.status: ${JSON.stringify(code)} is not a non-OK gRPC status code name`);
    return { kind: 'status', code, message, scope };
  },
  /** A transport failure: UNAVAILABLE. */
  unavailable: (scope: FaultScope = {}): Fault => ({
    kind: 'status',
    code: 'UNAVAILABLE',
    message: 'injected fault: connection refused',
    scope,
  }),
  /** Pad the result's log annotations until it encodes to at least `bytes` (default 1 MiB + 1). */
  oversized: (bytes = 1_048_577, scope: FaultScope = {}): Fault => ({
    kind: 'oversized',
    bytes: positive(bytes, 'oversized'),
    scope,
  }),
  /** Append these raw patches to the result (which is then allowed). */
  patches: (patches: readonly RawPatch[], scope: FaultScope = {}): Fault => ({
    kind: 'patches',
    patches,
    scope,
  }),
  /** A patch whose path is not a JSON Pointer (no leading '/'). */
  badPointer: (scope: FaultScope = {}): Fault => ({
    kind: 'patches',
    patches: [{ op: 'add', path: 'labels/fault', value: 'x' }],
    scope,
  }),
  /** A patch that writes a secret field (default: CreateProvider's provider credentials). */
  secretPatch: (path = '/provider/credentials/INJECTED', scope: FaultScope = {}): Fault => ({
    kind: 'patches',
    patches: [{ op: 'add', path, value: 'leaked' }],
    scope,
  }),
  /** A patch that adds a field the RPC's request type does not have: strict re-validation fails. */
  unknownField: (field = 'injectedUnknownField', scope: FaultScope = {}): Fault => ({
    kind: 'patches',
    patches: [{ op: 'add', path: `/${field}`, value: 'x' }],
    scope,
  }),
  /** `count` patches (more than max_patches → a contract failure). */
  excessPatches: (count = 33, scope: FaultScope = {}): Fault => ({
    kind: 'patches',
    patches: Array.from({ length: positive(count, 'excessPatches') }, (_, i) => ({
      op: 'add',
      path: `/labels/fault-${i}`,
      value: 'x',
    })),
    scope,
  }),
  /** Rewrite the result: e.g. `r => ({ ...r, allowed: false })` for a denial in post_commit. */
  result: (change: (result: InterceptorResult) => InterceptorResult, scope: FaultScope = {}): Fault => ({
    kind: 'result',
    change,
    scope,
  }),
} as const;

function abortable(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return sleep(ms, undefined, signal ? { signal } : {}).then(
    () => undefined,
    () => {
      throw new EvaluateError('CANCELLED', 'the call was cancelled during an injected delay');
    },
  );
}

function hangUntil(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => {
    if (!signal) return; // nothing will ever end it: exactly a hung service
    const stop = () => reject(new EvaluateError('CANCELLED', 'the call was cancelled while hanging'));
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  });
}

function pad(result: InterceptorResult, bytes: number): InterceptorResult {
  // A string field of n bytes encodes to a little more than n; aim a bit above.
  return { ...result, logAnnotations: { ...result.logAnnotations, 'fault.padding': 'x'.repeat(bytes) } };
}

/**
 * Wrap an interceptor so selected evaluations misbehave: slow, failing, oversized or with
 * invalid patches. The wrapper is an `Interceptor` too: give it to `testGateway` (in process
 * or over gRPC) or `serve` it, and prove what each failure policy does.
 */
export function withFaults(target: Interceptor, ...injected: readonly Fault[]): Interceptor {
  const counts = new Map<Fault, number>();
  const applies = (f: Fault, ev: InterceptorEvaluation): boolean => {
    const phase = evaluationPayload(ev)?.phase;
    const s = f.scope;
    const phases = list(s.phase);
    const methods = list(s.method);
    const bindings = list(s.binding);
    if (phases && (!phase || !phases.includes(phase))) return false;
    if (methods && !methods.includes(ev.method as InterceptableMethod)) return false;
    if (bindings && !bindings.includes(ev.bindingId)) return false;
    const n = counts.get(f) ?? 0;
    if (s.times !== undefined && n >= s.times) return false;
    counts.set(f, n + 1);
    return true;
  };
  return {
    name: target.name,
    manifest: () => target.manifest(),
    snapshotProviderProfiles: (ctx?: EvaluateContext) => target.snapshotProviderProfiles(ctx),
    async evaluate(ev, ctx) {
      const active = injected.filter((f) => applies(f, ev));
      for (const f of active) {
        if (f.kind === 'delay') await abortable(f.ms, ctx?.signal);
        if (f.kind === 'hang') await hangUntil(ctx?.signal);
        if (f.kind === 'status') throw new EvaluateError(f.code, f.message);
      }
      let result = await target.evaluate(ev, ctx);
      for (const f of active) {
        if (f.kind === 'oversized') result = pad(result, f.bytes);
        if (f.kind === 'patches')
          result = {
            ...result,
            allowed: true,
            patches: [
              ...result.patches,
              ...f.patches.map((p) => ({ op: p.op, path: p.path, value: p.value, from: p.from ?? '' })),
            ],
          };
        if (f.kind === 'result') result = f.change(result);
      }
      return result;
    },
  };
}
