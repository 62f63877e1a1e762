import { EvaluateError } from './errors.js';
import { type Cancellation, kCancellation, type TransportContext } from './internal.js';
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

  add(d: DueAt): void {
    this.#due.add(d);
    // A timer armed by another setTimeout (a test's fake timers, since removed) cannot be trusted.
    if (this.#timer === undefined || d.at < this.#timerAt || this.#armedWith !== setTimeout) this.#arm(d.at);
    else this.#timer.ref();
  }

  /** Whether the queue's timer keeps the process open (only while a deadline is pending). */
  holdsProcess(): boolean {
    return this.#timer?.hasRef() ?? false;
  }

  delete(d: DueAt): void {
    this.#due.delete(d);
    // ref() and unref() only flip a flag when the state changes.
    if (this.#due.size === 0) this.#timer?.unref();
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#armedWith = setTimeout;
    this.#timer = setTimeout(() => this.#sweep(), Math.min(Math.max(0, at - Date.now()), MAX_TIMER_MS));
  }

  #sweep(): void {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
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
  /** The call's deadline (epoch ms), when it has a finite one. */
  readonly deadline: number | undefined;
  /** Aborts a little before the deadline, or when the caller cancels. */
  readonly signal: AbortSignal;
  /**
   * Run `work` now, unless the deadline passed or the call was cancelled (a rejection with
   * DEADLINE_EXCEEDED or CANCELLED). What it returns synchronously comes back as is: nothing
   * interrupts synchronous code, so there is nothing to race. A promise settles with `work`,
   * or rejects at the deadline or on cancel. A synchronous throw propagates.
   */
  race<T>(work: () => T | PromiseLike<T>): T | Promise<T>;
  dispose(): void;
}

function isThenable<T>(v: T | PromiseLike<T>): v is PromiseLike<T> {
  return (
    (typeof v === 'object' || typeof v === 'function') &&
    v !== null &&
    typeof (v as PromiseLike<T>).then === 'function'
  );
}

const nearDeadline = () => new DOMException('the evaluation deadline is near', 'TimeoutError');

/**
 * A class, not an object literal with a `signal` getter: a literal's getter is a new closure
 * per call, which gives every call's object a hidden class of its own (see handler-context.ts).
 */
class Scope implements CallScope {
  readonly #deadline: number | undefined;
  readonly #nearAt: number;
  readonly #cancellation: Cancellation | undefined;
  readonly #outer: AbortSignal | undefined;
  // The AbortController is made when a handler first reads the signal: most never do. Until
  // then an abort is only recorded, and the signal is born aborted with the same reason.
  #budget: AbortController | undefined;
  #aborted = false;
  #abortReason: unknown;
  #nearTimer: NodeJS.Timeout | undefined;
  #due: DueAt | undefined;
  #onCancel: (() => void) | undefined;
  #unsubscribe: (() => void) | undefined;

  constructor(ctx: EvaluateContext | undefined) {
    const deadline = ctx?.deadline;
    this.#deadline = deadline !== undefined && Number.isFinite(deadline) ? deadline : undefined;
    // The near-deadline point is fixed now, from the time left now; its timer is armed only
    // when a handler reads the signal, the one thing it aborts.
    this.#nearAt =
      this.#deadline === undefined
        ? Number.POSITIVE_INFINITY
        : this.#deadline - margin(this.#deadline - Date.now());
    // A transport's cancellation is followed by callback: reading `ctx.signal` would make the
    // AbortSignal this scope avoids making.
    const cancellation = (ctx as TransportContext | undefined)?.[kCancellation];
    this.#cancellation = cancellation;
    const outer = cancellation ? undefined : ctx?.signal;
    this.#outer = outer;
    const cancelled = (reason: unknown) => {
      this.#abort(reason);
      this.#onCancel?.();
    };
    if (cancellation) {
      if (cancellation.aborted) this.#abort(cancellation.reason);
      else this.#unsubscribe = cancellation.onAbort(cancelled);
    } else if (outer) {
      if (outer.aborted) this.#abort(outer.reason);
      else {
        const onOuterAbort = () => cancelled(outer.reason);
        outer.addEventListener('abort', onOuterAbort, { once: true });
        this.#unsubscribe = () => outer.removeEventListener('abort', onOuterAbort);
      }
    }
  }

  get deadline(): number | undefined {
    return this.#deadline;
  }

  #abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#abortReason = reason;
    this.#budget?.abort(reason);
  }

  get signal(): AbortSignal {
    if (!this.#budget) {
      this.#budget = new AbortController();
      if (this.#aborted) this.#budget.abort(this.#abortReason);
      else if (this.#deadline !== undefined) {
        const wait = this.#nearAt - Date.now();
        if (wait <= 0) this.#abort(nearDeadline());
        else this.#nearTimer = setTimeout(() => this.#abort(nearDeadline()), Math.min(wait, MAX_TIMER_MS));
      }
    }
    return this.#budget.signal;
  }

  race<T>(work: () => T | PromiseLike<T>): T | Promise<T> {
    const deadline = this.#deadline;
    if (deadline !== undefined && deadline <= Date.now()) {
      return Promise.reject(
        new EvaluateError('DEADLINE_EXCEEDED', 'deadline passed before the evaluation began'),
      );
    }
    if (this.#cancellation ? this.#cancellation.aborted : this.#outer?.aborted === true)
      return Promise.reject(new EvaluateError('CANCELLED', 'evaluation cancelled'));
    // A cancel while `work` runs synchronously wins, as it would against a promise.
    const watching = this.#cancellation !== undefined || this.#outer !== undefined;
    let early = false;
    if (watching)
      this.#onCancel = () => {
        early = true;
      };
    let out: T | PromiseLike<T>;
    try {
      out = work();
    } catch (err) {
      if (early) return Promise.reject(new EvaluateError('CANCELLED', 'evaluation cancelled'));
      throw err;
    }
    if (early) {
      if (isThenable(out)) out.then(undefined, () => {});
      return Promise.reject(new EvaluateError('CANCELLED', 'evaluation cancelled'));
    }
    if (!isThenable(out)) return out;
    const pending = out;
    return new Promise<T>((resolve, reject) => {
      if (deadline !== undefined) {
        this.#due = {
          at: deadline,
          fire: () => {
            this.#due = undefined;
            reject(new EvaluateError('DEADLINE_EXCEEDED', 'the handler did not finish before the deadline'));
          },
        };
        deadlines.add(this.#due);
      }
      if (watching) this.#onCancel = () => reject(new EvaluateError('CANCELLED', 'evaluation cancelled'));
      pending.then(resolve, reject);
    });
  }

  dispose(): void {
    if (this.#nearTimer !== undefined) clearTimeout(this.#nearTimer);
    if (this.#due) deadlines.delete(this.#due);
    this.#due = undefined;
    this.#onCancel = undefined;
    this.#unsubscribe?.();
  }
}

export function callScope(ctx: EvaluateContext | undefined): CallScope {
  return new Scope(ctx);
}
