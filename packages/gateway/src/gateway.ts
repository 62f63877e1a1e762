import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  canonicalJson,
  denialStatus,
  evaluationPhaseFields,
  findRoute,
  type GrpcCodeName,
  type InterceptableMethod,
  type InterceptorEvaluation,
  InterceptorManifest,
  type InterceptorResult,
  type JsonObject,
  OPENSHELL_SERVICE,
  type openshellV1,
  operationView,
  type Phase,
  parseProtoJson,
  principalSubject,
  type Route,
} from '@openshell-interceptors/protocol';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type CircuitBreaker from 'opossum';
import pLimit, { type LimitFunction } from 'p-limit';
import pino from 'pino';
import { Registry } from 'prom-client';
import { TokenMinter } from './auth.js';
import type { GatewayConfig, InterceptorConfig } from './config.js';
import { errorMessage, type FailureLayer, GatewayStartupError, TransportError } from './errors.js';
import {
  type BreakerState,
  breakerGateLayer,
  breakerLayer,
  breakerState,
  bulkheadLayer,
  compose,
  createBreaker,
  deadlineLayer,
  type Layer,
  type Step,
} from './layers.js';
import { BREAKER_STATE_VALUE, createMetrics, type GatewayMetrics } from './observability.js';
import { applyPatches, type PatchFailure, type PatchOp, recordPatch, viewOf } from './patch.js';
import {
  buildPlan,
  byOrderThenName,
  type ExecutionPlan,
  type NormalizedBinding,
  normalizeBindings,
  PlanError,
  type PlannedBinding,
  type PlannedInterceptor,
} from './plan.js';
import {
  aggregateProviderProfiles,
  type ProviderProfileCatalog,
  type ProviderProfileInputs,
} from './profiles.js';
import { checkUnixSocket, SocketTrustError } from './socket-trust.js';
import {
  createGrpcTransport,
  type InterceptorTransport,
  type TransportCall,
  toTransportError,
} from './transport.js';

type ProviderProfile = openshellV1.ProviderProfile;

export interface GatewayOptions {
  /** Per-interceptor transport override (in-process harnesses); undefined → the gRPC client. */
  readonly transport?: (interceptor: InterceptorConfig) => InterceptorTransport | undefined;
  /** Default: pino to stderr at info. */
  readonly logger?: pino.Logger;
  /** Default: a fresh registry (see `gateway.registry`). */
  readonly registry?: Registry;
  /** Clock for token minting (epoch ms); tests move it to prove rotation. */
  readonly now?: () => number;
  /** The gateway's own catalogs for the `builtin` and `user` provider profile sources. */
  readonly providerProfiles?: ProviderProfileInputs;
}

export type Decision = 'allow' | 'deny' | 'error';

/** What happened in one binding's evaluation in one phase. */
export interface EvaluationRecord {
  readonly interceptor: string;
  readonly binding: string;
  readonly phase: Phase;
  readonly decision: Decision;
  readonly failurePolicy: PlannedBinding['failurePolicy'];
  /** The RFC 6902 operations the interceptor returned. */
  readonly patches: readonly PatchOp[];
  /** Whether they were applied to the operation. */
  readonly applied: boolean;
  readonly latencyMs: number;
  /** The failure's cause; null unless decision = error. */
  readonly error: string | null;
  /** The denial's message (the reason, or the gateway's default); null unless decision = deny. */
  readonly reason: string | null;
  /** Which layer failed; null unless decision = error. */
  readonly layer: FailureLayer | null;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface InterceptOutcome {
  readonly outcome: 'allowed' | 'denied';
  readonly status: null | { readonly code: GrpcCodeName; readonly message: string };
  /** The final full request (secrets included). */
  readonly request: JsonObject;
  /**
   * The final request's operation view (secrets removed). For a request type without secrets
   * it is the same object as `request` (rendered once): treat both as read-only.
   */
  readonly operation: JsonObject;
  /** What the commit returned, unchanged by post_commit; null when there was no commit. */
  readonly response: JsonObject | null;
  readonly evaluations: readonly EvaluationRecord[];
}

export interface InterceptCall<M extends InterceptableMethod = InterceptableMethod> {
  readonly method: M;
  /** Default `openshell.v1.OpenShell`. */
  readonly service?: string;
  /** The principal map sent to interceptors; default `{ kind: 'unknown' }`. */
  readonly principal?: Readonly<Record<string, string>>;
  /** The full ProtoJSON request, secrets included. */
  readonly request: JsonObject;
  /**
   * The handler: receives the final request, returns the response ProtoJSON. The request is
   * this call's own rendering (never the caller's `request` object) and is the object
   * returned as `outcome.request`.
   */
  readonly commit?: (finalRequest: JsonObject) => Promise<JsonObject | undefined>;
  readonly signal?: AbortSignal;
}

export interface Gateway {
  readonly plan: ExecutionPlan;
  readonly registry: Registry;
  intercept<M extends InterceptableMethod>(call: InterceptCall<M>): Promise<InterceptOutcome>;
  /** CONTRACT section 9: the provider profile catalog over `provider_profile_sources`. */
  providerProfiles(): Promise<ProviderProfileCatalog>;
  /** The circuit breaker state of an interceptor ('closed' when it has no breaker). */
  breakerState(interceptor: string): BreakerState;
  /** In-flight calls finish, then channels close and timers stop. Idempotent. */
  close(): Promise<void>;
}

type EvalAnswer = { result: InterceptorResult; encodedBytes: number };

interface Runtime {
  readonly config: InterceptorConfig;
  readonly transport: InterceptorTransport;
  readonly authenticated: boolean;
  readonly limit: LimitFunction;
  readonly breaker?: CircuitBreaker<[TransportCall, Step<EvalAnswer>], EvalAnswer>;
  readonly layers: readonly Layer<EvalAnswer>[];
}

/**
 * The signal of API calls made without one. Every Evaluate in flight listens to it for a
 * moment (the deadline layer), so it has no listener limit.
 */
const NEVER_ABORTED = new AbortController().signal;
setMaxListeners(0, NEVER_ABORTED);

/** Spans are no-ops unless the application registers an OpenTelemetry SDK. */
const tracer = trace.getTracer('@openshell-interceptors/gateway');

const RETRYABLE: ReadonlySet<string> = new Set([
  'UNAVAILABLE',
  'DEADLINE_EXCEEDED',
  'RESOURCE_EXHAUSTED',
  'ABORTED',
]);
const MAX_BACKOFF_MS = 5_000;

function defaultLogger(): pino.Logger {
  return pino({ name: 'openshell-gateway' }, pino.destination({ dest: 2, sync: true }));
}

/** A pino logger for the runtime writing JSON lines to `stream` (the CLI passes its stderr). */
export function gatewayLogger(
  stream: NodeJS.WritableStream,
  level: pino.LevelWithSilent = 'info',
): pino.Logger {
  return pino({ name: 'openshell-gateway', level }, stream);
}

async function metadataFor(
  ic: InterceptorConfig,
  authenticated: boolean,
  minter: TokenMinter | undefined,
): Promise<Record<string, string>> {
  if (!authenticated || !minter) return {};
  return { authorization: `Bearer ${await minter.token(ic.audience)}` };
}

/** Describe with bounded retry and exponential backoff (the only call ever retried). */
async function describeWithRetry(
  ic: InterceptorConfig,
  transport: InterceptorTransport,
  custom: boolean,
  metadata: () => Promise<Record<string, string>>,
  logger: pino.Logger,
): Promise<InterceptorManifest> {
  let last = '';
  for (let attempt = 1; attempt <= ic.describeAttempts; attempt++) {
    try {
      if (!custom && ic.endpoint.kind === 'unix')
        await checkUnixSocket(
          ic.endpoint.path,
          ic.unixSocketUid !== undefined ? { expectedUid: ic.unixSocketUid } : {},
        );
      const step = compose<InterceptorManifest>([deadlineLayer(ic.timeoutMs)], (c) => transport.describe(c));
      const manifest = await step({
        signal: new AbortController().signal,
        deadline: Date.now() + ic.timeoutMs,
        metadata: await metadata(),
        maxResponseBytes: ic.maxResponseBytes,
      });
      const size = InterceptorManifest.encode(manifest).finish().length;
      if (size > ic.maxResponseBytes)
        throw new GatewayStartupError(
          `manifest of ${size} bytes exceeds max_response_bytes ${ic.maxResponseBytes}`,
          ic.name,
        );
      return manifest;
    } catch (e) {
      if (e instanceof GatewayStartupError) throw e;
      if (e instanceof SocketTrustError) {
        if (e.check !== 'exists') throw new GatewayStartupError(`${e.message} (check: ${e.check})`, ic.name);
        last = e.message;
      } else {
        const t = toTransportError(e, ic.timeoutMs);
        last = t.message;
        if (!RETRYABLE.has(t.code) || t.layer === 'size')
          throw new GatewayStartupError(`Describe failed: ${t.message}`, ic.name);
      }
      if (attempt < ic.describeAttempts) {
        const wait = Math.min(MAX_BACKOFF_MS, ic.describeBackoffMs * 2 ** (attempt - 1));
        logger.info(
          { interceptor: ic.name, attempt, retry_in_ms: wait, cause: last },
          'Describe failed; retrying',
        );
        await sleep(wait);
      }
    }
  }
  throw new GatewayStartupError(`Describe failed after ${ic.describeAttempts} attempt(s): ${last}`, ic.name);
}

/**
 * Start a gateway runtime (CONTRACT section 6): mint tokens, check sockets, Describe
 * every interceptor in `(order, name)` order with bounded retry, check the manifests,
 * normalise bindings by `binding_policy` and build the immutable plan. Any problem
 * refuses to start with a GatewayStartupError naming the interceptor and the problem.
 */
export async function createGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const logger = options.logger ?? defaultLogger();
  const registry = options.registry ?? new Registry();
  const metrics = createMetrics(registry);
  const sorted = [...config.interceptors].sort(byOrderThenName);
  const opened: InterceptorTransport[] = [];
  const closeOpened = async () => {
    await Promise.allSettled(opened.map((t) => t.close()));
  };

  let minter: TokenMinter | undefined;
  if (config.jwt) {
    try {
      minter = await TokenMinter.fromKeyFile(
        config.jwt.privateKeyPath,
        config.jwt.keyId,
        config.issuer,
        config.jwt.ttlSeconds,
        options.now,
      );
    } catch (e) {
      throw new GatewayStartupError(`JWT signing: ${errorMessage(e)}`);
    }
  }

  const started: {
    config: InterceptorConfig;
    transport: InterceptorTransport;
    authenticated: boolean;
    planned: PlannedInterceptor;
    bindings: readonly NormalizedBinding[];
  }[] = [];
  try {
    for (const ic of sorted) {
      const override = options.transport?.(ic);
      const authenticated = !ic.allowInsecureTransport && minter !== undefined;
      if (ic.allowInsecureTransport) {
        logger.warn(
          { interceptor: ic.name },
          `interceptor '${ic.name}': allow_insecure_transport = true: no token is attached, so the service cannot tell this gateway from any other caller`,
        );
      } else if (!minter && !override) {
        throw new GatewayStartupError(
          'no token to attach: configure jwt_private_key_path and jwt_key_id in [openshell.gateway], or set allow_insecure_transport = true',
          ic.name,
        );
      }
      let transport: InterceptorTransport;
      try {
        transport = override ?? (await createGrpcTransport(ic));
      } catch (e) {
        throw new GatewayStartupError(errorMessage(e), ic.name);
      }
      opened.push(transport);
      const metadata = () => metadataFor(ic, authenticated, minter);
      try {
        await metadata();
      } catch (e) {
        throw new GatewayStartupError(`cannot mint a token: ${errorMessage(e)}`, ic.name);
      }
      const manifest = await describeWithRetry(ic, transport, override !== undefined, metadata, logger);
      if (authenticated && manifest.expectedAudience !== '' && manifest.expectedAudience !== ic.audience) {
        throw new GatewayStartupError(
          `manifest expected_audience ${JSON.stringify(manifest.expectedAudience)} does not match the configured audience ${JSON.stringify(ic.audience)}`,
          ic.name,
        );
      }
      if (
        !manifest.providerProfiles &&
        config.providerProfileSources.some((s) => s.type === 'interceptor' && s.name === ic.name)
      ) {
        throw new GatewayStartupError(
          'is listed in provider_profile_sources but its manifest does not advertise provider_profiles',
          ic.name,
        );
      }
      let normalized: ReturnType<typeof normalizeBindings>;
      try {
        normalized = normalizeBindings(ic, manifest);
      } catch (e) {
        if (e instanceof PlanError) throw new GatewayStartupError(e.message, ic.name);
        throw e;
      }
      if (ic.bindingPolicy === 'dynamic') {
        logger.warn(
          { interceptor: ic.name },
          `interceptor '${ic.name}': binding_policy = dynamic: the manifest decides which RPCs and phases it sees`,
        );
      }
      for (const ig of normalized.ignored) {
        logger.info(
          { interceptor: ic.name, binding_id: ig.bindingId, reason: ig.reason },
          'manifest binding not planned',
        );
      }
      if (manifest.name !== '' && manifest.name !== ic.name) {
        logger.info(
          { interceptor: ic.name, manifest_name: manifest.name },
          'manifest name differs from the configured name',
        );
      }
      started.push({
        config: ic,
        transport,
        authenticated,
        bindings: normalized.bindings,
        planned: {
          name: ic.name,
          endpoint: ic.grpcEndpoint,
          audience: ic.audience,
          authenticated,
          order: ic.order,
          bindingPolicy: ic.bindingPolicy,
          providerProfiles: manifest.providerProfiles,
          manifestName: manifest.name,
          timeoutMs: ic.timeoutMs,
          maxResponseBytes: ic.maxResponseBytes,
          maxPatches: ic.maxPatches,
          maxConcurrency: ic.maxConcurrency,
          maxQueue: ic.maxQueue,
          breaker: ic.breaker,
          ignored: normalized.ignored,
        },
      });
    }
  } catch (e) {
    await closeOpened();
    throw e;
  }

  const plan = buildPlan(started);
  const runtimes = new Map<string, Runtime>();
  for (const s of started)
    runtimes.set(s.config.name, makeRuntime(s.config, s.transport, s.authenticated, metrics, logger));
  logger.info(
    { interceptors: plan.interceptors.map((i) => i.name), bindings: plan.entries.length },
    'gateway interceptor plan ready',
  );
  return new GatewayRuntime(
    config,
    plan,
    runtimes,
    metrics,
    registry,
    logger,
    minter,
    options.providerProfiles,
  );
}

function makeRuntime(
  ic: InterceptorConfig,
  transport: InterceptorTransport,
  authenticated: boolean,
  metrics: GatewayMetrics,
  logger: pino.Logger,
): Runtime {
  const limit = pLimit(ic.maxConcurrency);
  const shed = () => metrics.shed.inc({ interceptor: ic.name });
  const layers: Layer<EvalAnswer>[] = [deadlineLayer(ic.timeoutMs)];
  let breaker: Runtime['breaker'];
  if (ic.breaker.enabled) {
    breaker = createBreaker<EvalAnswer>(ic.name, ic.breaker);
    const report = (state: BreakerState) => {
      metrics.breakerState.set({ interceptor: ic.name }, BREAKER_STATE_VALUE[state]);
      const line = { interceptor: ic.name, breaker_state: state };
      if (state === 'open') logger.warn(line, `circuit breaker for '${ic.name}' opened`);
      else logger.info(line, `circuit breaker for '${ic.name}' is ${state.replace('_', '-')}`);
    };
    breaker.on('open', () => report('open'));
    breaker.on('halfOpen', () => report('half_open'));
    breaker.on('close', () => report('closed'));
    metrics.breakerState.set({ interceptor: ic.name }, BREAKER_STATE_VALUE.closed);
    layers.push(breakerGateLayer(breaker, ic.name, ic.breaker));
  }
  layers.push(bulkheadLayer(limit, ic.maxQueue, shed));
  if (breaker) layers.push(breakerLayer(breaker, ic.name, ic.breaker));
  return { config: ic, transport, authenticated, limit, ...(breaker ? { breaker } : {}), layers };
}

type BindingResult =
  | { kind: 'allow'; record: EvaluationRecord; next?: { json: JsonObject; message: unknown } }
  | { kind: 'deny'; record: EvaluationRecord; status: { code: GrpcCodeName; message: string } }
  | { kind: 'failure'; record: EvaluationRecord; cause: string };

class Failure extends Error {
  constructor(
    readonly layer: FailureLayer,
    message: string,
  ) {
    super(message);
  }
}

class GatewayRuntime implements Gateway {
  private closing = false;
  private closed?: Promise<void>;
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(
    private readonly config: GatewayConfig,
    readonly plan: ExecutionPlan,
    private readonly runtimes: ReadonlyMap<string, Runtime>,
    private readonly metrics: GatewayMetrics,
    readonly registry: Registry,
    private readonly logger: pino.Logger,
    private readonly minter: TokenMinter | undefined,
    private readonly profileInputs: ProviderProfileInputs | undefined,
  ) {}

  breakerState(interceptor: string): BreakerState {
    const b = this.runtimes.get(interceptor)?.breaker;
    return b ? breakerState(b) : 'closed';
  }

  intercept<M extends InterceptableMethod>(call: InterceptCall<M>): Promise<InterceptOutcome> {
    if (this.closing) {
      return Promise.resolve({
        outcome: 'denied',
        status: { code: 'UNAVAILABLE', message: 'gateway is shutting down' },
        request: call.request,
        operation: {},
        response: null,
        evaluations: [],
      });
    }
    const p = this.run(call);
    this.inflight.add(p);
    const done = () => this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  private async run<M extends InterceptableMethod>(call: InterceptCall<M>): Promise<InterceptOutcome> {
    const service = call.service ?? OPENSHELL_SERVICE;
    const route = findRoute(service, call.method);
    if (!route) throw new TypeError(`${service}/${call.method} is not an interceptable RPC`);
    const principal = call.principal ?? { kind: 'unknown' };
    const evaluations: EvaluationRecord[] = [];

    let state: { json: JsonObject; message: unknown };
    try {
      state = canonicalJson(route.requestType, call.request);
    } catch (e) {
      return {
        outcome: 'denied',
        status: { code: 'INVALID_ARGUMENT', message: `invalid ${route.requestType}: ${errorMessage(e)}` },
        request: call.request,
        operation: {},
        response: null,
        evaluations,
      };
    }
    let view: JsonObject | undefined;
    const currentView = () => {
      view ??= viewOf(route.requestType, state);
      return view;
    };
    const refuse = (code: GrpcCodeName, message: string): InterceptOutcome => ({
      outcome: 'denied',
      status: { code, message },
      request: state.json,
      operation: currentView(),
      response: null,
      evaluations,
    });

    for (const phase of ['modify_operation', 'validate'] as const) {
      for (const pb of this.plan.bindings(route.service, route.method, phase)) {
        if (call.signal?.aborted) return refuse('CANCELLED', 'the API call was cancelled');
        const r = await this.evaluateBinding(
          route,
          pb,
          principal,
          () => currentView(),
          state.json,
          call.signal,
        );
        evaluations.push(r.record);
        if (call.signal?.aborted) return refuse('CANCELLED', 'the API call was cancelled');
        if (r.kind === 'deny') return refuse(r.status.code, r.status.message);
        if (r.kind === 'failure') {
          if (pb.failurePolicy === 'fail_closed')
            return refuse(
              'PERMISSION_DENIED',
              `gateway interceptor '${pb.interceptor}' failed closed: ${r.cause}`,
            );
          continue;
        }
        if (r.next) {
          state = r.next;
          view = undefined;
        }
      }
    }

    if (call.signal?.aborted) return refuse('CANCELLED', 'the API call was cancelled');
    const finalRequest = state.json;
    const operation = currentView();
    if (!call.commit) {
      return {
        outcome: 'allowed',
        status: null,
        request: finalRequest,
        operation,
        response: null,
        evaluations,
      };
    }
    // No copy: the final request is this call's own rendering, never shared with the caller's input.
    const response = (await call.commit(finalRequest)) ?? null;
    const observers = this.plan.bindings(route.service, route.method, 'post_commit');
    if (response !== null && observers.length > 0) {
      // The observers get a canonical, secret-free copy; the caller gets `response` untouched.
      let committed: JsonObject | Failure;
      try {
        // A strict parse is all the view needs: the encode/decode round trip of canonicalize
        // could only change what the Struct encoding on the wire changes the same way.
        committed = operationView(route.responseType, parseProtoJson(route.responseType, response));
      } catch (e) {
        committed = new Failure(
          'struct',
          `committed response cannot be turned into a Struct: not a valid ${route.responseType}: ${errorMessage(e)}`,
        );
      }
      for (const pb of observers) {
        const r = await this.evaluateBinding(route, pb, principal, () => committed, response, undefined);
        evaluations.push(r.record);
      }
    }
    return { outcome: 'allowed', status: null, request: finalRequest, operation, response, evaluations };
  }

  /** One binding in one phase: layers → Evaluate → checks of CONTRACT section 4 → record. */
  private async evaluateBinding(
    route: Route,
    pb: PlannedBinding,
    principal: Readonly<Record<string, string>>,
    operation: () => JsonObject | Failure,
    fullRequest: JsonObject,
    signal: AbortSignal | undefined,
  ): Promise<BindingResult> {
    const rt = this.runtimes.get(pb.interceptor) as Runtime;
    const started = performance.now();
    const span = tracer.startSpan(`interceptor ${pb.interceptor} ${pb.phase}`, {
      kind: SpanKind.CLIENT,
      attributes: {
        'rpc.system': 'grpc',
        'rpc.service': 'openshell.gateway_interceptor.v1.GatewayInterceptor',
        'rpc.method': 'Evaluate',
        'openshell.interceptor': pb.interceptor,
        'openshell.binding_id': pb.bindingId,
        'openshell.phase': pb.phase,
        'openshell.operation': `${route.service}/${route.method}`,
      },
    });
    let result: InterceptorResult | undefined;
    let patches: PatchOp[] = [];
    let applied = false;
    let outcome: BindingResult;
    const finish = (
      decision: EvaluationRecord['decision'],
      error: string | null,
      layer: FailureLayer | null,
      reason: string | null = null,
    ): EvaluationRecord => ({
      interceptor: pb.interceptor,
      binding: pb.bindingId,
      phase: pb.phase,
      decision,
      failurePolicy: pb.failurePolicy,
      patches,
      applied,
      latencyMs: performance.now() - started,
      error,
      reason,
      layer,
      annotations: { ...(result?.logAnnotations ?? {}) },
    });
    try {
      // Views are rendered by the protocol package: always plain JSON that fits a Struct.
      const op = operation();
      if (op instanceof Failure) throw op;
      const ev: InterceptorEvaluation = {
        interceptorName: pb.interceptor,
        bindingId: pb.bindingId,
        service: route.service,
        method: route.method,
        principal: { ...principal },
        ...evaluationPhaseFields(pb.phase, op),
      };
      const metadata = rt.authenticated ? await metadataFor(rt.config, true, this.minter) : {};
      // W3C trace context (when a propagator is registered) travels with the call.
      propagation.inject(trace.setSpan(context.active(), span), metadata);
      let answer: EvalAnswer;
      try {
        const step = compose(rt.layers, (c) => rt.transport.evaluate(ev, c));
        // The deadline layer derives the call's own signal from this one.
        answer = await step({
          signal: signal ?? NEVER_ABORTED,
          deadline: Date.now() + pb.timeoutMs,
          metadata,
          maxResponseBytes: pb.maxResponseBytes,
        });
      } catch (e) {
        const t = toTransportError(e, pb.timeoutMs);
        throw new Failure(t.layer, t.message);
      }
      result = answer.result;
      patches = answer.result.patches.map(recordPatch);
      if (answer.encodedBytes > pb.maxResponseBytes)
        throw new Failure(
          'size',
          `result of ${answer.encodedBytes} bytes exceeds max_response_bytes ${pb.maxResponseBytes}`,
        );
      // CONTRACT 4.1: contract checks are failures, even on a denial.
      if (patches.length > pb.maxPatches)
        throw new Failure(
          'contract',
          `returned ${patches.length} patches, more than max_patches ${pb.maxPatches}`,
        );
      if (pb.phase !== 'modify_operation' && patches.length > 0)
        throw new Failure(
          'contract',
          `returned patches in the ${pb.phase} phase; only modify_operation may patch`,
        );
      if (pb.phase === 'post_commit' && !result.allowed)
        throw new Failure(
          'contract',
          'returned allowed = false in post_commit; an observer must answer allowed = true',
        );
      if (!result.allowed) {
        const status = denialStatus(result.statusCode, result.reason);
        outcome = { kind: 'deny', record: finish('deny', null, null, status.message), status };
      } else if (patches.length > 0) {
        let next: { json: JsonObject; message: unknown };
        try {
          next = applyPatches(route.requestType, fullRequest, patches);
        } catch (e) {
          const pf = e as PatchFailure;
          throw new Failure(pf.layer ?? 'patch', pf.message);
        }
        applied = true;
        outcome = { kind: 'allow', record: finish('allow', null, null), next };
      } else {
        outcome = { kind: 'allow', record: finish('allow', null, null) };
      }
    } catch (e) {
      const f = e instanceof Failure ? e : new Failure('transport', errorMessage(e));
      outcome = { kind: 'failure', record: finish('error', f.message, f.layer), cause: f.message };
    }
    span.setAttribute('openshell.decision', outcome.record.decision);
    if (outcome.kind === 'failure') {
      span.setAttribute('openshell.failed_layer', outcome.record.layer ?? 'unknown');
      span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.cause });
    }
    span.end();
    this.observe(route, pb, principal, outcome, result);
    return outcome;
  }

  private observe(
    route: Route,
    pb: PlannedBinding,
    principal: Readonly<Record<string, string>>,
    r: BindingResult,
    result: InterceptorResult | undefined,
  ): void {
    const rec = r.record;
    const labels = { interceptor: pb.interceptor, binding_id: pb.bindingId };
    this.metrics.evaluations.inc({ decision: rec.decision, ...labels });
    this.metrics.latency.observe({ interceptor: pb.interceptor, phase: pb.phase }, rec.latencyMs / 1000);
    if (rec.applied) this.metrics.patches.inc(labels, rec.patches.length);
    const fields = {
      interceptor: pb.interceptor,
      binding_id: pb.bindingId,
      phase: pb.phase,
      service: route.service,
      method: route.method,
      decision: rec.decision,
      patch_count: rec.patches.length,
      patches_applied: rec.applied,
      log_annotations: rec.annotations,
      principal_subject: principalSubject(principal),
      principal_kind: principal.kind ?? 'unknown',
      reason: result?.reason ?? '',
      latency_ms: Math.round(rec.latencyMs * 1000) / 1000,
      failure_policy: pb.failurePolicy,
      layer: rec.layer,
    };
    if (r.kind !== 'failure') {
      this.logger.info(fields, 'interceptor evaluation');
      return;
    }
    if (pb.phase === 'post_commit') this.metrics.postCommitFailures.inc({ stage: rec.layer ?? 'unknown' });
    if (pb.failurePolicy === 'fail_closed') {
      this.metrics.failClosed.inc({ interceptor: pb.interceptor });
      this.logger.warn(
        { ...fields, cause: r.cause },
        `gateway interceptor '${pb.interceptor}' failed closed: ${r.cause}`,
      );
    } else {
      this.metrics.failOpen.inc({ interceptor: pb.interceptor });
      this.logger.warn(
        { ...fields, cause: r.cause },
        `gateway interceptor '${pb.interceptor}' failed open: ${r.cause}`,
      );
    }
  }

  async providerProfiles(): Promise<ProviderProfileCatalog> {
    return aggregateProviderProfiles(this.config.providerProfileSources, this.profileInputs, async (name) => {
      const rt = this.runtimes.get(name);
      if (!rt) throw new TransportError('UNAVAILABLE', `interceptor '${name}' is not running`);
      const step = compose<{ snapshot: ProviderProfileSnapshotLike; encodedBytes: number }>(
        [deadlineLayer(rt.config.timeoutMs)],
        (c) => rt.transport.snapshotProviderProfiles(c),
      );
      const r = await step({
        signal: new AbortController().signal,
        deadline: Date.now() + rt.config.timeoutMs,
        metadata: await metadataFor(rt.config, rt.authenticated, this.minter),
        maxResponseBytes: rt.config.maxResponseBytes,
      });
      if (r.encodedBytes > rt.config.maxResponseBytes)
        throw new TransportError(
          'RESOURCE_EXHAUSTED',
          `snapshot of ${r.encodedBytes} bytes exceeds max_response_bytes ${rt.config.maxResponseBytes}`,
          'size',
        );
      return r.snapshot;
    });
  }

  close(): Promise<void> {
    if (this.closed) return this.closed;
    this.closing = true;
    this.closed = (async () => {
      await Promise.allSettled([...this.inflight]);
      for (const rt of this.runtimes.values()) rt.breaker?.shutdown();
      await Promise.allSettled([...this.runtimes.values()].map((rt) => rt.transport.close()));
    })();
    return this.closed;
  }
}

type ProviderProfileSnapshotLike = { revision: string; profiles: ProviderProfile[] };
