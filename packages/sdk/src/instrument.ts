import {
  evaluationPayload,
  findRoute,
  type InterceptorEvaluation,
  type InterceptorResult,
  principalSubject,
  readPrincipal,
} from '@openshell-interceptors/protocol';
import { SpanStatusCode, type Tracer, type TracerProvider, trace } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { ContractViolationError, EvaluateError } from './errors.js';
import { type EvaluationInfo, type EvaluationOutcome, hasInternalEvaluate, kEvaluate } from './internal.js';
import type { EvaluateContext, Interceptor } from './types.js';

const TRACER_NAME = '@openshell-interceptors/sdk';

let tracerSource: TracerProvider | undefined;
let sdkTracer: Tracer | undefined;

/**
 * The SDK's tracer from the global provider, looked up once per provider rather than per
 * call (without a registered provider every look-up allocates a proxy). The proxy tracer
 * follows a provider registered later; `trace.disable()` swaps the provider, so we look again.
 */
function globalTracer(): Tracer {
  const provider = trace.getTracerProvider();
  if (provider !== tracerSource || !sdkTracer) {
    tracerSource = provider;
    sdkTracer = provider.getTracer(TRACER_NAME);
  }
  return sdkTracer;
}

function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/** Prometheus metrics of a serving interceptor; registered once per Registry. */
export class EvaluationMetrics {
  readonly evaluations: Counter<'interceptor' | 'binding_id' | 'phase' | 'decision'>;
  readonly latency: Histogram<'interceptor' | 'binding_id' | 'phase'>;
  readonly patches: Counter<'interceptor' | 'binding_id'>;
  readonly inflight: Gauge<'interceptor'>;
  readonly authFailures: Counter<'reason'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.evaluations = metric(
      registry,
      'openshell_interceptor_evaluations_total',
      () =>
        new Counter({
          name: 'openshell_interceptor_evaluations_total',
          help: 'Evaluations answered, by decision (allow, deny, skip, error)',
          labelNames: ['interceptor', 'binding_id', 'phase', 'decision'] as const,
          registers,
        }),
    );
    this.latency = metric(
      registry,
      'openshell_interceptor_evaluation_duration_seconds',
      () =>
        new Histogram({
          name: 'openshell_interceptor_evaluation_duration_seconds',
          help: 'Time spent answering one evaluation',
          labelNames: ['interceptor', 'binding_id', 'phase'] as const,
          buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
          registers,
        }),
    );
    this.patches = metric(
      registry,
      'openshell_interceptor_patches_total',
      () =>
        new Counter({
          name: 'openshell_interceptor_patches_total',
          help: 'Patches sent in allowed modify results',
          labelNames: ['interceptor', 'binding_id'] as const,
          registers,
        }),
    );
    this.inflight = metric(
      registry,
      'openshell_interceptor_inflight_evaluations',
      () =>
        new Gauge({
          name: 'openshell_interceptor_inflight_evaluations',
          help: 'Evaluations being answered now',
          labelNames: ['interceptor'] as const,
          registers,
        }),
    );
    this.authFailures = metric(
      registry,
      'openshell_interceptor_auth_failures_total',
      () =>
        new Counter({
          name: 'openshell_interceptor_auth_failures_total',
          help: 'Calls refused as UNAUTHENTICATED, by reason',
          labelNames: ['reason'] as const,
          registers,
        }),
    );
  }
}

export interface Instrumentation {
  readonly logger: Logger;
  readonly metrics?: EvaluationMetrics;
  readonly tracer?: Tracer;
}

/** Best-effort facts from the request alone, for calls that failed before routing. */
function infoFromRequest(
  ev: InterceptorEvaluation,
): Pick<EvaluationInfo, 'bindingId' | 'phase' | 'rpc' | 'subject' | 'principalKind'> {
  const p = readPrincipal(ev.principal);
  const payload = evaluationPayload(ev);
  const route = findRoute(ev.service, ev.method);
  return {
    bindingId: ev.bindingId,
    phase: payload?.phase ?? 'none',
    rpc: route?.rpc ?? `${ev.service}/${ev.method}`,
    subject: principalSubject(p),
    principalKind: p.kind,
  };
}

/** Evaluate and report what was decided; for interceptors built outside the SDK the facts come from the result. */
export function evaluateWithInfo(
  target: Interceptor,
  ev: InterceptorEvaluation,
  ctx: EvaluateContext | undefined,
): Promise<EvaluationOutcome> {
  // The SDK's own promise, not wrapped in another (an async function returning a promise
  // costs three more microtask turns).
  if (hasInternalEvaluate(target)) return target[kEvaluate](ev, ctx);
  return evaluateForeign(target, ev, ctx);
}

async function evaluateForeign(
  target: Interceptor,
  ev: InterceptorEvaluation,
  ctx: EvaluateContext | undefined,
): Promise<EvaluationOutcome> {
  const result = await target.evaluate(ev, ctx);
  const info: EvaluationInfo = {
    ...infoFromRequest(ev),
    decision: result.allowed ? 'allow' : 'deny',
    skipped: false,
    patchCount: result.patches.length,
    ...(result.allowed ? {} : { code: result.statusCode, reason: result.reason }),
    annotations: result.logAnnotations,
  };
  return { result, info };
}

/**
 * One evaluation with its span, metrics and log line (interceptor, binding,
 * phase, rpc, principal, decision, patch count, latency).
 */
export async function instrumentedEvaluate(
  target: Interceptor,
  ev: InterceptorEvaluation,
  ctx: EvaluateContext | undefined,
  inst: Instrumentation,
): Promise<InterceptorResult> {
  return (await instrumentedOutcome(target, ev, ctx, inst)).result;
}

/** `instrumentedEvaluate`, keeping the outcome (with the encoded result when there is one). */
export function instrumentedOutcome(
  target: Interceptor,
  ev: InterceptorEvaluation,
  ctx: EvaluateContext | undefined,
  inst: Instrumentation,
): Promise<EvaluationOutcome> {
  const tracer = inst.tracer ?? globalTracer();
  const started = process.hrtime.bigint();
  const phaseName = evaluationPayload(ev)?.phase ?? 'none';
  return tracer.startActiveSpan(
    `openshell.interceptor.evaluate ${ev.method}`,
    {
      attributes: {
        'openshell.interceptor': target.name,
        'openshell.rpc.method': ev.method,
        'openshell.phase': phaseName,
      },
    },
    async (span) => {
      inst.metrics?.inflight.inc({ interceptor: target.name });
      const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
      try {
        const outcome = await evaluateWithInfo(target, ev, ctx);
        const info = outcome.info;
        const latency = seconds();
        const decision = info.skipped ? 'skip' : info.decision;
        span.setAttributes({
          'openshell.interceptor.binding_id': info.bindingId,
          'openshell.interceptor.decision': decision,
          'openshell.interceptor.patch_count': info.patchCount,
        });
        inst.metrics?.evaluations.inc({
          interceptor: target.name,
          binding_id: info.bindingId,
          phase: info.phase,
          decision,
        });
        inst.metrics?.latency.observe(
          { interceptor: target.name, binding_id: info.bindingId, phase: info.phase },
          latency,
        );
        if (info.patchCount > 0)
          inst.metrics?.patches.inc(
            { interceptor: target.name, binding_id: info.bindingId },
            info.patchCount,
          );
        // The line is built only when it will be written (per-call cost at level warn and above: none).
        if (inst.logger.isLevelEnabled('info'))
          inst.logger.info(
            {
              interceptor: target.name,
              binding_id: info.bindingId,
              phase: info.phase,
              rpc: info.rpc,
              principal_subject: info.subject,
              principal_kind: info.principalKind,
              decision,
              patch_count: info.patchCount,
              latency_ms: Math.round(latency * 1e6) / 1e3,
              ...(info.code ? { code: info.code } : {}),
              ...(info.reason ? { reason: info.reason } : {}),
              ...(Object.keys(info.annotations).length > 0 ? { annotations: info.annotations } : {}),
            },
            'evaluation',
          );
        return outcome;
      } catch (err) {
        const latency = seconds();
        const base = infoFromRequest(ev);
        const code =
          err instanceof EvaluateError
            ? err.code
            : err instanceof ContractViolationError
              ? 'INTERNAL'
              : 'UNKNOWN';
        span.recordException(err instanceof Error ? err : String(err));
        span.setStatus({ code: SpanStatusCode.ERROR, message: code });
        inst.metrics?.evaluations.inc({
          interceptor: target.name,
          binding_id: base.bindingId,
          phase: base.phase,
          decision: 'error',
        });
        inst.metrics?.latency.observe(
          { interceptor: target.name, binding_id: base.bindingId, phase: base.phase },
          latency,
        );
        inst.logger.warn(
          {
            interceptor: target.name,
            binding_id: base.bindingId,
            phase: base.phase,
            rpc: base.rpc,
            principal_subject: base.subject,
            principal_kind: base.principalKind,
            decision: 'error',
            code,
            error: err instanceof Error ? err.message : String(err),
            latency_ms: Math.round(latency * 1e6) / 1e3,
          },
          'evaluation failed',
        );
        throw err;
      } finally {
        inst.metrics?.inflight.dec({ interceptor: target.name });
        span.end();
      }
    },
  );
}
