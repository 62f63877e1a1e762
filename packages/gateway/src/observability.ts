import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The shipped metric names (CONTRACT section 8), plus ours: breaker state, shed calls, queue depth. */
export interface GatewayMetrics {
  readonly evaluations: Counter<'decision' | 'interceptor' | 'binding_id'>;
  readonly patches: Counter<'interceptor' | 'binding_id'>;
  readonly failOpen: Counter<'interceptor'>;
  readonly failClosed: Counter<'interceptor'>;
  readonly latency: Histogram<'interceptor' | 'phase'>;
  readonly postCommitFailures: Counter<'stage'>;
  readonly breakerState: Gauge<'interceptor'>;
  readonly shed: Counter<'interceptor'>;
  readonly inFlight: Gauge<'interceptor'>;
}

/** Breaker state as a gauge value. */
export const BREAKER_STATE_VALUE = { closed: 0, half_open: 1, open: 2 } as const;

/**
 * Register the metrics, or reuse them when this registry already has them (several
 * gateways in one process may share a registry).
 */
export function createMetrics(registry: Registry): GatewayMetrics {
  const registers = [registry];
  const reuse = <T>(name: string, make: () => T): T =>
    (registry.getSingleMetric(name) as T | undefined) ?? make();
  return {
    evaluations: reuse(
      'openshell_gateway_interceptor_evaluations_total',
      () =>
        new Counter({
          name: 'openshell_gateway_interceptor_evaluations_total',
          help: 'Interceptor evaluations by decision (allow, deny, error)',
          labelNames: ['decision', 'interceptor', 'binding_id'],
          registers,
        }),
    ),
    patches: reuse(
      'openshell_gateway_interceptor_patches_total',
      () =>
        new Counter({
          name: 'openshell_gateway_interceptor_patches_total',
          help: 'JSON patch operations applied to operations',
          labelNames: ['interceptor', 'binding_id'],
          registers,
        }),
    ),
    failOpen: reuse(
      'openshell_gateway_interceptor_fail_open_total',
      () =>
        new Counter({
          name: 'openshell_gateway_interceptor_fail_open_total',
          help: 'Interceptor failures skipped under fail_open',
          labelNames: ['interceptor'],
          registers,
        }),
    ),
    failClosed: reuse(
      'openshell_gateway_interceptor_fail_closed_total',
      () =>
        new Counter({
          name: 'openshell_gateway_interceptor_fail_closed_total',
          help: 'Interceptor failures that refused the call under fail_closed',
          labelNames: ['interceptor'],
          registers,
        }),
    ),
    latency: reuse(
      'openshell_gateway_interceptor_latency_seconds',
      () =>
        new Histogram({
          name: 'openshell_gateway_interceptor_latency_seconds',
          help: 'Latency of one interceptor evaluation, layers included',
          labelNames: ['interceptor', 'phase'],
          buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
          registers,
        }),
    ),
    postCommitFailures: reuse(
      'openshell_gateway_interceptor_post_commit_observation_failures_total',
      () =>
        new Counter({
          name: 'openshell_gateway_interceptor_post_commit_observation_failures_total',
          help: 'post_commit observations that failed, by the stage that failed',
          labelNames: ['stage'],
          registers,
        }),
    ),
    breakerState: reuse(
      'openshell_gateway_interceptor_breaker_state',
      () =>
        new Gauge({
          name: 'openshell_gateway_interceptor_breaker_state',
          help: 'Circuit breaker state per interceptor: 0 closed, 1 half-open, 2 open (ours)',
          labelNames: ['interceptor'],
          registers,
        }),
    ),
    shed: reuse(
      'openshell_gateway_interceptor_shed_total',
      () =>
        new Counter({
          name: 'openshell_gateway_interceptor_shed_total',
          help: 'Evaluations shed at once because the wait queue was full (ours)',
          labelNames: ['interceptor'],
          registers,
        }),
    ),
    inFlight: reuse(
      'openshell_gateway_interceptor_in_flight',
      () =>
        new Gauge({
          name: 'openshell_gateway_interceptor_in_flight',
          help: 'Evaluations in flight or queued per interceptor (ours)',
          labelNames: ['interceptor'],
          registers,
        }),
    ),
  };
}
