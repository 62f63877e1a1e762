import { EvaluateError } from './errors.js';
import { kCancellation, type TransportContext } from './internal.js';
import type { EvaluateContext } from './types.js';

/** How much of the remaining time a handler's signal keeps back, so its answer still arrives in time. */
function margin(remainingMs: number): number {
  return Math.min(remainingMs * 0.1, 100);
}

/** Longest delay a Node timer takes (longer ones fire at once): later deadlines are re-armed on the way. */
const MAX_TIMER_MS = 0x7fffffff;

export interface DueAt {
  readonly at: number;
  readonly fire: () => void;
}

/**
 * The hard deadlines of running evaluations, served by one timer armed for the earliest.
 * A timer per call (made, then cleared when the call ends well before its deadline, as
 * nearly all do) cost more than the rest of the SDK's bookkeeping for a short call. The timer
 * holds the process open only while a deadline is pending, as a timer per call would.
 */
export class DeadlineQueue {
  readonly #due = new Set<DueAt>();
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #armedWith: typeof setTimeout | undefined;
  #refed = false;

  add(d: DueAt): void {
    this.#due.add(d);
    // A timer armed by another setTimeout (a test's fake timers, since removed) cannot be trusted.
    if (this.#timer === undefined || d.at < this.#timerAt || this.#armedWith !== setTimeout) this.#arm(d.at);
    else if (!this.#refed) {
      this.#timer.ref();
      this.#refed = true;
    }
  }

  /** Whether the queue's timer keeps the process open (only while a deadline is pending). */
  holdsProcess(): boolean {
    return this.#timer?.hasRef() ?? false;
  }

  delete(d: DueAt): void {
    this.#due.delete(d);
    if (this.#due.size === 0 && this.#refed) {
      this.#timer?.unref();
      this.#refed = false;
    }
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#armedWith = setTimeout;
    this.#timer = setTimeout(() => this.#sweep(), Math.min(Math.max(0, at - Date.now()), MAX_TIMER_MS));
    this.#refed = true;
  }

  #sweep(): void {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    this.#refed = false;
    const now = Date.now();
    const fired: DueAt[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const d of this.#due) {
      if (d.at <= now) fired.push(d);
      else if (d.at < next) next = d.at;
    }
    for (const d of fired) this.#due.delete(d);
    if (next !== Number.POSITIVE_INFINITY) this.#arm(next);
    for (const d of fired) d.fire();
  }
}

const deadlines = new DeadlineQueue();

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
  // The near-deadline point is fixed now, from the time left now; its timer is armed only
  // when a handler reads the signal, the one thing it aborts.
  const nearAt = hasDeadline ? deadline - margin(deadline - Date.now()) : Number.POSITIVE_INFINITY;
  // A transport's cancellation is followed by callback: reading `ctx.signal` would make the
  // AbortSignal this scope avoids making.
  const cancellation = (ctx as TransportContext | undefined)?.[kCancellation];
  const outer = cancellation ? undefined : ctx?.signal;
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
  const nearDeadline = () => new DOMException('the evaluation deadline is near', 'TimeoutError');
  let nearTimer: NodeJS.Timeout | undefined;
  let due: DueAt | undefined;
  let onCancel: (() => void) | undefined;
  let unsubscribe: (() => void) | undefined;
  const cancelled = (reason: unknown) => {
    abort(reason);
    onCancel?.();
  };
  if (cancellation) {
    if (cancellation.aborted) abort(cancellation.reason);
    else unsubscribe = cancellation.onAbort(cancelled);
  } else if (outer) {
    if (outer.aborted) abort(outer.reason);
    else {
      const onOuterAbort = () => cancelled(outer.reason);
      outer.addEventListener('abort', onOuterAbort, { once: true });
      unsubscribe = () => outer.removeEventListener('abort', onOuterAbort);
    }
  }
  const isCancelled = () => (cancellation ? cancellation.aborted : outer?.aborted === true);
  return {
    get signal(): AbortSignal {
      if (!budget) {
        budget = new AbortController();
        if (aborted) budget.abort(abortReason);
        else if (hasDeadline) {
          const wait = nearAt - Date.now();
          if (wait <= 0) abort(nearDeadline());
          else nearTimer = setTimeout(() => abort(nearDeadline()), Math.min(wait, MAX_TIMER_MS));
        }
      }
      return budget.signal;
    },
    race<T>(work: () => Promise<T>): Promise<T> {
      if (hasDeadline && deadline <= Date.now()) {
        return Promise.reject(
          new EvaluateError('DEADLINE_EXCEEDED', 'deadline passed before the evaluation began'),
        );
      }
      if (isCancelled()) return Promise.reject(new EvaluateError('CANCELLED', 'evaluation cancelled'));
      return new Promise<T>((resolve, reject) => {
        if (hasDeadline) {
          due = {
            at: deadline,
            fire: () => {
              due = undefined;
              reject(
                new EvaluateError('DEADLINE_EXCEEDED', 'the handler did not finish before the deadline'),
              );
            },
          };
          deadlines.add(due);
        }
        if (cancellation || outer)
          onCancel = () => reject(new EvaluateError('CANCELLED', 'evaluation cancelled'));
        work().then(resolve, reject);
      });
    },
    dispose() {
      if (nearTimer !== undefined) clearTimeout(nearTimer);
      if (due) deadlines.delete(due);
      due = undefined;
      onCancel = undefined;
      unsubscribe?.();
    },
  };
}
