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
  const budget = new AbortController();
  const timers: NodeJS.Timeout[] = [];
  const cleanups: (() => void)[] = [];
  const deadline = ctx?.deadline;
  const hasDeadline = deadline !== undefined && Number.isFinite(deadline);
  if (hasDeadline) {
    const remaining = deadline - Date.now();
    const t = setTimeout(
      () => budget.abort(new DOMException('the evaluation deadline is near', 'TimeoutError')),
      Math.max(0, remaining - margin(remaining)),
    );
    timers.push(t);
  }
  const outer = ctx?.signal;
  if (outer) {
    if (outer.aborted) budget.abort(outer.reason);
    else {
      const onAbort = () => budget.abort(outer.reason);
      outer.addEventListener('abort', onAbort, { once: true });
      cleanups.push(() => outer.removeEventListener('abort', onAbort));
    }
  }
  return {
    signal: budget.signal,
    race<T>(work: () => Promise<T>): Promise<T> {
      if (hasDeadline && deadline <= Date.now()) {
        return Promise.reject(
          new EvaluateError('DEADLINE_EXCEEDED', 'deadline passed before the evaluation began'),
        );
      }
      if (outer?.aborted) return Promise.reject(new EvaluateError('CANCELLED', 'evaluation cancelled'));
      return new Promise<T>((resolve, reject) => {
        if (hasDeadline) {
          timers.push(
            setTimeout(
              () =>
                reject(
                  new EvaluateError('DEADLINE_EXCEEDED', 'the handler did not finish before the deadline'),
                ),
              Math.max(0, deadline - Date.now()),
            ),
          );
        }
        if (outer) {
          const onAbort = () => reject(new EvaluateError('CANCELLED', 'evaluation cancelled'));
          outer.addEventListener('abort', onAbort, { once: true });
          cleanups.push(() => outer.removeEventListener('abort', onAbort));
        }
        work().then(resolve, reject);
      });
    },
    dispose() {
      for (const t of timers) clearTimeout(t);
      for (const c of cleanups) c();
    },
  };
}
