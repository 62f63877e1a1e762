import { EvaluateError } from './errors.js';
import type { EvaluateContext } from './types.js';

/** How much of the remaining time a handler's signal keeps back, so its answer still arrives in time. */
function margin(remainingMs: number): number {
  return Math.min(remainingMs * 0.1, 100);
}

export interface CallScope {
  /** Aborts a little before the deadline, or when the caller cancels. */
  readonly signal: AbortSignal;
  /** Settle with `work`, or reject at the deadline (DEADLINE_EXCEEDED) or on cancel (CANCELLED). */
  race<T>(work: () => Promise<T>): Promise<T>;
  dispose(): void;
}

export function callScope(ctx: EvaluateContext | undefined): CallScope {
  const deadline = ctx?.deadline;
  const hasDeadline = deadline !== undefined && Number.isFinite(deadline);
  const outer = ctx?.signal;
  // The AbortController is made when a handler first reads the signal: most never do. Until
  // then an abort is only recorded, and the signal is born aborted with the same reason.
  let budget: AbortController | undefined;
  let aborted = false;
  let abortReason: unknown;
  const abort = (reason: unknown) => {
    if (aborted) return;
    aborted = true;
    abortReason = reason;
    budget?.abort(reason);
  };
  // One timer per call: it fires a little before the deadline, aborts the signal and only
  // then arms the rejection at the deadline itself (most calls end before either).
  let timer: NodeJS.Timeout | undefined;
  let nearDeadline = false;
  let onDeadline: (() => void) | undefined;
  const armDeadline = () => {
    if (hasDeadline && onDeadline) timer = setTimeout(onDeadline, Math.max(0, deadline - Date.now()));
  };
  if (hasDeadline) {
    const remaining = deadline - Date.now();
    timer = setTimeout(
      () => {
        nearDeadline = true;
        abort(new DOMException('the evaluation deadline is near', 'TimeoutError'));
        armDeadline();
      },
      Math.max(0, remaining - margin(remaining)),
    );
  }
  let onCancel: (() => void) | undefined;
  let onOuterAbort: (() => void) | undefined;
  if (outer) {
    if (outer.aborted) abort(outer.reason);
    else {
      onOuterAbort = () => {
        abort(outer.reason);
        onCancel?.();
      };
      outer.addEventListener('abort', onOuterAbort, { once: true });
    }
  }
  return {
    get signal(): AbortSignal {
      if (!budget) {
        budget = new AbortController();
        if (aborted) budget.abort(abortReason);
      }
      return budget.signal;
    },
    race<T>(work: () => Promise<T>): Promise<T> {
      if (hasDeadline && deadline <= Date.now()) {
        return Promise.reject(
          new EvaluateError('DEADLINE_EXCEEDED', 'deadline passed before the evaluation began'),
        );
      }
      if (outer?.aborted) return Promise.reject(new EvaluateError('CANCELLED', 'evaluation cancelled'));
      return new Promise<T>((resolve, reject) => {
        if (hasDeadline) {
          onDeadline = () =>
            reject(new EvaluateError('DEADLINE_EXCEEDED', 'the handler did not finish before the deadline'));
          if (nearDeadline) armDeadline();
        }
        if (outer) onCancel = () => reject(new EvaluateError('CANCELLED', 'evaluation cancelled'));
        work().then(resolve, reject);
      });
    },
    dispose() {
      clearTimeout(timer);
      onDeadline = undefined;
      onCancel = undefined;
      if (onOuterAbort) outer?.removeEventListener('abort', onOuterAbort);
    },
  };
}
