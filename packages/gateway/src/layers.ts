import CircuitBreaker from 'opossum';
import type { LimitFunction } from 'p-limit';
import type { BreakerConfig } from './config.js';
import { TransportError } from './errors.js';
import type { TransportCall } from './transport.js';

/**
 * The Evaluate call path as small composable layers (CONTRACT section 6, ours). A step
 * takes the call (signal, deadline, metadata, limits) and returns the answer; a layer
 * wraps a step. Composition, outermost first:
 *   deadline → breaker gate → bulkhead (bounded queue, shed when full) → breaker → transport
 */
export type Step<T> = (call: TransportCall) => Promise<T>;
export type Layer<T> = (next: Step<T>) => Step<T>;

export function compose<T>(layers: readonly Layer<T>[], inner: Step<T>): Step<T> {
  return layers.reduceRight<Step<T>>((next, layer) => layer(next), inner);
}

/**
 * Deadline: the whole call (queue wait included) must finish by `call.deadline`; at the
 * deadline the inner call is aborted and the step fails with DEADLINE_EXCEEDED. The
 * deadline also travels on the wire as `grpc-timeout` (the transport sends it).
 */
export function deadlineLayer<T>(timeoutMs: number): Layer<T> {
  return (next) => (call) =>
    new Promise<T>((resolve, reject) => {
      const expired = () =>
        new TransportError('DEADLINE_EXCEEDED', `no answer within ${timeoutMs}ms (timeout)`, 'deadline');
      const remaining = call.deadline - Date.now();
      if (remaining <= 0) {
        reject(expired());
        return;
      }
      const ac = new AbortController();
      const onParentAbort = () => {
        ac.abort();
        reject(new TransportError('CANCELLED', 'the API call was cancelled', 'cancelled'));
      };
      if (call.signal.aborted) {
        onParentAbort();
        return;
      }
      call.signal.addEventListener('abort', onParentAbort, { once: true });
      const timer = setTimeout(() => {
        // Stop listening now, not when the inner call settles: an inner call that ignores
        // its signal must not keep a listener on a long-lived parent signal.
        call.signal.removeEventListener('abort', onParentAbort);
        ac.abort();
        reject(expired());
      }, remaining);
      next({ ...call, signal: ac.signal }).then(
        (v) => {
          clearTimeout(timer);
          call.signal.removeEventListener('abort', onParentAbort);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          call.signal.removeEventListener('abort', onParentAbort);
          reject(e);
        },
      );
    });
}

/**
 * Bulkhead: at most `limit.concurrency` calls in flight and at most `maxQueue` waiting.
 * p-limit's own queue is unbounded, so a full queue is checked here and the call is shed
 * at once (RESOURCE_EXHAUSTED); the failure policy then decides. A queued call whose
 * deadline passed is dropped when its turn comes.
 */
export function bulkheadLayer<T>(limit: LimitFunction, maxQueue: number, onShed: () => void): Layer<T> {
  return (next) => (call) => {
    if (limit.activeCount >= limit.concurrency && limit.pendingCount >= maxQueue) {
      onShed();
      return Promise.reject(
        new TransportError(
          'RESOURCE_EXHAUSTED',
          `load shed: ${limit.activeCount} calls in flight (max_concurrency ${limit.concurrency}) and ${limit.pendingCount} queued (max_queue ${maxQueue})`,
          'shed',
        ),
      );
    }
    return limit(() => {
      if (call.signal.aborted)
        return Promise.reject(new TransportError('CANCELLED', 'gave up while queued', 'cancelled'));
      return next(call);
    });
  };
}

export type BreakerState = 'closed' | 'open' | 'half_open';

export function breakerState(b: CircuitBreaker): BreakerState {
  if (b.opened) return 'open';
  if (b.halfOpen) return 'half_open';
  return 'closed';
}

/** One opossum breaker per interceptor; the timeout is the deadline layer's job, not opossum's. */
export function createBreaker<T>(
  name: string,
  cfg: BreakerConfig,
): CircuitBreaker<[TransportCall, Step<T>], T> {
  return new CircuitBreaker<[TransportCall, Step<T>], T>((call, next) => next(call), {
    name,
    timeout: false,
    errorThresholdPercentage: cfg.errorThresholdPercentage,
    volumeThreshold: cfg.volumeThreshold,
    resetTimeout: cfg.resetTimeoutMs,
    rollingCountTimeout: cfg.rollingWindowMs,
    rollingCountBuckets: 10,
  });
}

function openError(name: string, cfg: BreakerConfig): TransportError {
  return new TransportError(
    'UNAVAILABLE',
    `circuit breaker for '${name}' is open (recent calls failed; next probe within ${cfg.resetTimeoutMs}ms)`,
    'breaker',
  );
}

/** Breaker: every answer (or its failure) is counted; an open breaker fails at once. */
export function breakerLayer<T>(
  breaker: CircuitBreaker<[TransportCall, Step<T>], T>,
  name: string,
  cfg: BreakerConfig,
): Layer<T> {
  return (next) => (call) =>
    breaker.fire(call, next).catch((e: unknown) => {
      if ((e as { code?: unknown }).code === 'EOPENBREAKER') throw openError(name, cfg);
      throw e;
    });
}

/**
 * Breaker gate, in front of the bulkhead: while the breaker is open (or half-open with its
 * probe already taken) the call fails in microseconds instead of waiting for a queue slot
 * or the timeout.
 */
export function breakerGateLayer<T>(
  breaker: CircuitBreaker<[TransportCall, Step<T>], T>,
  name: string,
  cfg: BreakerConfig,
): Layer<T> {
  return (next) => (call) => {
    if (!breaker.closed && !breaker.pendingClose) {
      return Promise.reject(openError(name, cfg));
    }
    return next(call);
  };
}
