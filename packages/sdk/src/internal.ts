import type {
  InterceptorEvaluation,
  InterceptorResult,
  PrincipalKind,
} from '@openshell-interceptors/protocol';
import type { EvaluateContext, Interceptor } from './types.js';

/** What the per-evaluation log line, metrics and span report. */
export interface EvaluationInfo {
  readonly bindingId: string;
  readonly phase: string;
  readonly rpc: string;
  readonly subject: string;
  readonly principalKind: PrincipalKind;
  readonly decision: 'allow' | 'deny';
  /** The binding's selector did not match: allowed untouched, handler not called. */
  readonly skipped: boolean;
  readonly patchCount: number;
  readonly code?: string;
  readonly reason?: string;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface EvaluationOutcome {
  readonly result: InterceptorResult;
  readonly info: EvaluationInfo;
  /**
   * The result's wire bytes, when the contract check already encoded it (to measure it) and
   * no code outside the SDK saw the result since: serve sends these instead of encoding again.
   */
  readonly encoded?: Uint8Array;
}

/** Evaluate without the observation wrapper, returning what it decided (SDK-internal). */
export const kEvaluate: unique symbol = Symbol('openshell-interceptors.sdk.evaluate');

export interface InternalInterceptor extends Interceptor {
  [kEvaluate](ev: InterceptorEvaluation, ctx: EvaluateContext | undefined): Promise<EvaluationOutcome>;
}

export function hasInternalEvaluate(i: Interceptor): i is InternalInterceptor {
  return typeof (i as Partial<InternalInterceptor>)[kEvaluate] === 'function';
}
