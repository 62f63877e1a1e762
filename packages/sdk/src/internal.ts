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

/**
 * A call's cancellation as a transport hands it to the SDK (SDK-internal). A signal is an
 * EventTarget, and making one plus a listener on it costs more per call than the rest of
 * the bookkeeping; most handlers never read theirs. So the AbortController is made on the
 * first read of `signal`, and the SDK's own scope subscribes with a plain callback.
 */
export class Cancellation {
  #aborted = false;
  #reason: unknown;
  #controller: AbortController | undefined;
  #listeners: ((reason: unknown) => void)[] | undefined;

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  /** An AbortSignal for code outside the SDK: born aborted when the call already was. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (listeners) for (const l of listeners) l(reason);
  }

  /** Call `listener` once on abort (not when already aborted: check `aborted` first); returns the unsubscribe. */
  onAbort(listener: (reason: unknown) => void): () => void {
    this.#listeners ??= [];
    this.#listeners.push(listener);
    return () => {
      const i = this.#listeners?.indexOf(listener) ?? -1;
      if (i >= 0) this.#listeners?.splice(i, 1);
    };
  }
}

/** The context a transport passes, carrying its Cancellation beside the (lazy) signal. */
export const kCancellation: unique symbol = Symbol('openshell-interceptors.sdk.cancellation');

export interface TransportContext extends EvaluateContext {
  readonly [kCancellation]?: Cancellation;
}

/**
 * The context serve passes for a call: `signal` is a prototype getter (a literal's getter would
 * give each call's context a hidden class of its own; see handler-context.ts). A spread copy
 * keeps `deadline` and the cancellation, not `signal`.
 */
class CallContext implements TransportContext {
  readonly [kCancellation]: Cancellation;
  declare readonly deadline?: number;

  constructor(cancellation: Cancellation, deadline: number | undefined) {
    this[kCancellation] = cancellation;
    if (deadline !== undefined) (this as { deadline?: number }).deadline = deadline;
  }

  /** Made on first read. */
  get signal(): AbortSignal {
    return this[kCancellation].signal;
  }
}

/** An EvaluateContext whose `signal` is made only if something reads it. */
export function transportContext(cancellation: Cancellation, deadline: number | undefined): TransportContext {
  return new CallContext(cancellation, deadline);
}
