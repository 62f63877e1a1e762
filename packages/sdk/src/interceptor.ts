import {
  defaultAudience,
  type FailurePolicy,
  type InterceptableMethod,
  type InterceptorBinding,
  type InterceptorEvaluation,
  type InterceptorManifest,
  type InterceptorResult,
  isFailurePolicy,
  isInterceptableMethod,
  type JsonObject,
  PHASES,
  type Phase,
  type ProviderProfileSnapshot,
  phaseToWire,
  principalSubject,
  type Route,
  readPrincipal,
  route,
} from '@openshell-interceptors/protocol';
import type { Logger } from 'pino';
import {
  type CheckedResult,
  type ContractSettings,
  checkResult,
  DEFAULT_MAX_PATCHES,
  DEFAULT_MAX_RESULT_BYTES,
  diffDraft,
  INVALID_RESULT_MESSAGE,
  type RawOutcome,
} from './contract.js';
import { callScope } from './deadline.js';
import { ContractViolationError, EvaluateError } from './errors.js';
import { handlerContext, madeDraft } from './handler-context.js';
import { instrumentedEvaluate } from './instrument.js';
import {
  type EvaluationInfo,
  type EvaluationOutcome,
  type InternalInterceptor,
  kEvaluate,
} from './internal.js';
import { defaultLogger, isTestEnvironment } from './log.js';
import { snapshotFromProvider } from './provider-profiles.js';
import type { Patch } from './results.js';
import { routeEvaluation } from './routing.js';
import { checkSelector, operationLabels, selectorMatches } from './selector.js';
import type {
  BindingOptions,
  EvaluateContext,
  Interceptor,
  InterceptorOptions,
  ModifyHandler,
  ObserveHandler,
  ProviderProfilesOptions,
  ProviderProfilesProvider,
  Selector,
  ValidateHandler,
} from './types.js';

/** An interceptor under construction; it is already a complete `Interceptor`. */
export interface InterceptorBuilder extends Interceptor {
  /** Change the proposed request (modify_operation): mutate `draft`, or return patches, allow or deny. */
  modify<M extends InterceptableMethod>(method: M, handler: ModifyHandler<M>, opts?: BindingOptions): this;
  /** Allow or deny the (possibly modified) request (validate). */
  validate<M extends InterceptableMethod>(
    method: M,
    handler: ValidateHandler<M>,
    opts?: BindingOptions,
  ): this;
  /** Observe the committed response (post_commit); always its own `fail_open` binding. */
  observe<M extends InterceptableMethod>(method: M, handler: ObserveHandler<M>, opts?: BindingOptions): this;
  /** Serve provider profiles to the gateway catalog; sets `provider_profiles` in the manifest. */
  providerProfiles(provider: ProviderProfilesProvider, opts?: ProviderProfilesOptions): this;
}

type AnyHandler = (ctx: never) => unknown;

interface HandlerEntry {
  readonly handler: AnyHandler;
  readonly when: Selector | undefined;
}

interface BindingDef {
  readonly id: string;
  readonly route: Route;
  readonly observe: boolean;
  failurePolicy: FailurePolicy | undefined;
  readonly handlers: Map<Phase, HandlerEntry>;
}

const PHASE_VERB: Record<Phase, string> = {
  modify_operation: 'modify',
  validate: 'validate',
  post_commit: 'observe',
};

/** `CreateSandbox` → `create-sandbox`. */
export function defaultBindingId(method: string, phase: Phase): string {
  const base = method.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
  return phase === 'post_commit' ? `${base}-observe` : base;
}

function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.trim() === '' || /[\s\p{Cc}]/u.test(name)) {
    throw new TypeError(
      `interceptor name must be a non-empty string without whitespace, got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

function positiveInt(v: number | undefined, fallback: number, what: string): number {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v < 1) throw new TypeError(`${what} must be a positive integer, got ${v}`);
  return v;
}

function isPatchArray(v: unknown): v is readonly Patch[] {
  return Array.isArray(v);
}

/**
 * The report of a checked result, written out field by field: object spreads with a
 * conditional member are slow in V8, and this runs on every evaluation.
 */
function checkedInfo(
  base: Pick<EvaluationInfo, 'bindingId' | 'phase' | 'rpc' | 'subject' | 'principalKind'>,
  checked: CheckedResult,
): EvaluationInfo {
  const { bindingId, phase, rpc, subject, principalKind } = base;
  const { decision, patchCount } = checked;
  const annotations = checked.result.logAnnotations;
  if (decision === 'deny') {
    const { code } = checked;
    const reason = checked.result.reason;
    return {
      bindingId,
      phase,
      rpc,
      subject,
      principalKind,
      decision,
      skipped: false,
      patchCount,
      code,
      reason,
      annotations,
    };
  }
  return { bindingId, phase, rpc, subject, principalKind, decision, skipped: false, patchCount, annotations };
}

class Builder implements InterceptorBuilder, InternalInterceptor {
  readonly name: string;
  readonly #options: InterceptorOptions;
  readonly #bindings = new Map<string, BindingDef>();
  #provider: { fn: ProviderProfilesProvider; opts: ProviderProfilesOptions } | undefined;
  readonly #settings: ContractSettings;
  #logger: Logger | undefined;

  constructor(name: string, options: InterceptorOptions) {
    this.name = checkName(name);
    if (options.failurePolicy !== undefined && !isFailurePolicy(options.failurePolicy)) {
      throw new TypeError(`interceptor '${name}': failurePolicy must be fail_closed or fail_open`);
    }
    if (options.expectedAudience !== undefined && /[\s\p{Cc}]/u.test(options.expectedAudience)) {
      throw new TypeError(
        `interceptor '${name}': expectedAudience must not contain whitespace or control characters`,
      );
    }
    this.#options = options;
    this.#logger = options.logger;
    const self = this;
    this.#settings = {
      strict: options.strict ?? isTestEnvironment(),
      maxPatches: positiveInt(options.maxPatches, DEFAULT_MAX_PATCHES, 'maxPatches'),
      maxResultBytes: positiveInt(options.maxResultBytes, DEFAULT_MAX_RESULT_BYTES, 'maxResultBytes'),
      get logger() {
        return self.#log();
      },
    };
  }

  #log(): Logger {
    this.#logger ??= defaultLogger(this.name);
    return this.#logger;
  }

  modify<M extends InterceptableMethod>(method: M, handler: ModifyHandler<M>, opts?: BindingOptions): this {
    return this.#register('modify_operation', method, handler as AnyHandler, opts);
  }

  validate<M extends InterceptableMethod>(
    method: M,
    handler: ValidateHandler<M>,
    opts?: BindingOptions,
  ): this {
    return this.#register('validate', method, handler as AnyHandler, opts);
  }

  observe<M extends InterceptableMethod>(method: M, handler: ObserveHandler<M>, opts?: BindingOptions): this {
    return this.#register('post_commit', method, handler as AnyHandler, opts);
  }

  providerProfiles(provider: ProviderProfilesProvider, opts: ProviderProfilesOptions = {}): this {
    if (typeof provider !== 'function')
      throw new TypeError(`interceptor '${this.name}': providerProfiles needs a function`);
    if (this.#provider)
      throw new Error(`interceptor '${this.name}': a provider profile source is already registered`);
    this.#provider = { fn: provider, opts };
    return this;
  }

  #register(phase: Phase, method: string, handler: AnyHandler, opts: BindingOptions = {}): this {
    const verb = PHASE_VERB[phase];
    const where = `interceptor '${this.name}' ${verb}('${method}')`;
    if (!isInterceptableMethod(method)) {
      throw new TypeError(
        `${where}: '${method}' is not one of the 25 interceptable openshell.v1.OpenShell RPCs`,
      );
    }
    if (typeof handler !== 'function') throw new TypeError(`${where}: the handler must be a function`);
    const id = opts.id ?? defaultBindingId(method, phase);
    if (typeof id !== 'string' || id === '' || /\s/.test(id)) {
      throw new TypeError(`${where}: binding id must be a non-empty string without whitespace`);
    }
    const policy = opts.failurePolicy;
    if (policy !== undefined && !isFailurePolicy(policy)) {
      throw new TypeError(
        `${where}: failurePolicy must be fail_closed or fail_open, got ${JSON.stringify(policy)}`,
      );
    }
    if (phase === 'post_commit' && policy === 'fail_closed') {
      throw new Error(
        `${where}: post_commit bindings must be fail_open (the gateway refuses fail_closed observers)`,
      );
    }
    if (opts.when !== undefined) checkSelector(opts.when, where);

    const observe = phase === 'post_commit';
    let b = this.#bindings.get(id);
    if (!b) {
      b = { id, route: route(method), observe, failurePolicy: undefined, handlers: new Map() };
      this.#bindings.set(id, b);
    } else {
      if (b.route.method !== method) {
        throw new Error(`${where}: binding id '${id}' already selects ${b.route.method}; choose another id`);
      }
      if (b.observe !== observe) {
        throw new Error(
          `${where}: binding '${id}' mixes post_commit with other phases; observers need their own fail_open binding (pass another id)`,
        );
      }
      if (b.handlers.has(phase)) {
        throw new Error(
          `${where}: binding '${id}' already has a ${verb} handler; pass { id } to register another binding`,
        );
      }
      if (policy !== undefined && b.failurePolicy !== undefined && b.failurePolicy !== policy) {
        throw new Error(
          `${where}: binding '${id}' already has failure policy ${b.failurePolicy}, not ${policy}`,
        );
      }
    }
    if (policy !== undefined) b.failurePolicy = policy;
    b.handlers.set(phase, { handler, when: opts.when });
    return this;
  }

  manifest(): InterceptorManifest {
    const bindings: InterceptorBinding[] = [...this.#bindings.values()].map((b) => ({
      id: b.id,
      selector: { rpc: b.route.rpc, service: b.route.service, method: b.route.method },
      phases: PHASES.filter((p) => b.handlers.has(p)).map(phaseToWire),
      failurePolicy: b.observe ? 'fail_open' : (b.failurePolicy ?? ''),
    }));
    return {
      name: this.name,
      bindings,
      failurePolicy: this.#options.failurePolicy ?? '',
      providerProfiles: this.#provider !== undefined,
      expectedAudience: this.#options.expectedAudience ?? defaultAudience(this.name),
    };
  }

  evaluate(ev: InterceptorEvaluation, ctx?: EvaluateContext): Promise<InterceptorResult> {
    return instrumentedEvaluate(this, ev, ctx, { logger: this.#log() });
  }

  async snapshotProviderProfiles(ctx?: EvaluateContext): Promise<ProviderProfileSnapshot> {
    if (!this.#provider) {
      throw new EvaluateError('UNIMPLEMENTED', `interceptor '${this.name}' does not serve provider profiles`);
    }
    return snapshotFromProvider(this.name, this.#provider.fn, this.#provider.opts, ctx, this.#settings);
  }

  #selectBinding(ev: InterceptorEvaluation, phase: Phase, r: Route): BindingDef {
    if (ev.bindingId !== '') {
      const b = this.#bindings.get(ev.bindingId);
      if (!b)
        throw new EvaluateError('NOT_FOUND', `interceptor '${this.name}' has no binding '${ev.bindingId}'`);
      if (b.route.method !== r.method) {
        throw new EvaluateError('INVALID_ARGUMENT', `binding '${b.id}' selects ${b.route.rpc}, not ${r.rpc}`);
      }
      if (!b.handlers.has(phase)) {
        throw new EvaluateError(
          'UNIMPLEMENTED',
          `binding '${b.id}' of interceptor '${this.name}' does not handle ${phase}`,
        );
      }
      return b;
    }
    const candidates = [...this.#bindings.values()].filter(
      (b) => b.route.method === r.method && b.handlers.has(phase),
    );
    if (candidates.length === 0) {
      throw new EvaluateError(
        'UNIMPLEMENTED',
        `interceptor '${this.name}' has no binding for ${r.rpc} in ${phase}`,
      );
    }
    if (candidates.length > 1) {
      throw new EvaluateError(
        'INVALID_ARGUMENT',
        `bindings ${candidates.map((c) => `'${c.id}'`).join(', ')} all handle ${r.rpc} in ${phase}; set binding_id`,
      );
    }
    return candidates[0]!;
  }

  async [kEvaluate](ev: InterceptorEvaluation, ctx: EvaluateContext | undefined): Promise<EvaluationOutcome> {
    const { payload, route: r } = routeEvaluation(ev);
    const phase = payload.phase;
    const b = this.#selectBinding(ev, phase, r);
    const entry = b.handlers.get(phase)!;
    const view: JsonObject = (payload.operation ?? {}) as JsonObject;
    const principal = readPrincipal(ev.principal);
    const base = {
      bindingId: b.id,
      phase,
      rpc: r.rpc,
      subject: principalSubject(principal),
      principalKind: principal.kind,
    };

    if (entry.when) {
      const input = { principal, operation: view, labels: operationLabels(view), method: r.method, phase };
      if (!selectorMatches(entry.when, input)) {
        const result: InterceptorResult = {
          allowed: true,
          reason: '',
          statusCode: '',
          patches: [],
          logAnnotations: {},
        };
        return {
          result,
          info: { ...base, decision: 'allow', skipped: true, patchCount: 0, annotations: {} },
        };
      }
    }

    const scope = callScope(ctx);
    const annotations: Record<string, string> = {};
    const handlerCtx = handlerContext(
      {
        interceptor: this.name,
        service: r.service,
        method: r.method,
        rpc: r.rpc,
        phase,
        bindingId: b.id,
        principal,
        deadline: scope.deadline,
      },
      scope,
      view,
      annotations,
      payload.phase === 'validate' ? (payload.currentState as JsonObject | undefined) : undefined,
    );

    let returned: unknown;
    try {
      // A synchronous handler's answer is used as is: no promise, no deadline bookkeeping.
      const out = scope.race(() => entry.handler(handlerCtx as never));
      returned = out instanceof Promise ? await out : out;
    } catch (err) {
      if (err instanceof EvaluateError || err instanceof ContractViolationError) throw err;
      this.#log().error(
        { err, interceptor: this.name, binding_id: b.id, phase, rpc: r.rpc },
        'interceptor handler threw; answering INTERNAL (a thrown error is not a denial: use deny())',
      );
      throw new EvaluateError('INTERNAL', 'interceptor handler failed', { cause: err });
    } finally {
      scope.dispose();
    }

    const raw = this.#normalize(returned, view, madeDraft(handlerCtx), { bindingId: b.id, phase });
    const allAnnotations = { ...annotations, ...raw.annotations };
    const checked = checkResult(
      { ...raw, annotations: allAnnotations },
      view,
      { interceptor: this.name, bindingId: b.id, phase, requestType: r.requestType },
      this.#settings,
    );
    return {
      result: checked.result,
      encoded: checked.bytes,
      info: checkedInfo(base, checked),
    };
  }

  /** A handler's return value → decision, patches (draft diff first, then explicit) and annotations. */
  #normalize(
    returned: unknown,
    view: JsonObject,
    draft: JsonObject | undefined,
    at: { bindingId: string; phase: Phase },
  ): Omit<RawOutcome, 'annotations'> & { annotations: Record<string, string> } {
    const diff = (): Patch[] => (draft ? diffDraft(view, draft) : []);
    if (returned === undefined) return { decision: 'allow', annotations: {}, patches: diff() };
    if (isPatchArray(returned))
      return { decision: 'allow', annotations: {}, patches: [...diff(), ...returned] };
    if (typeof returned === 'object' && returned !== null) {
      const d = returned as {
        decision?: unknown;
        annotations?: unknown;
        patches?: unknown;
        code?: unknown;
        reason?: unknown;
      };
      const annotations: Record<string, string> = {};
      if (typeof d.annotations === 'object' && d.annotations !== null) {
        for (const [k, v] of Object.entries(d.annotations)) annotations[k] = String(v);
      }
      if (d.decision === 'allow') {
        const explicit = Array.isArray(d.patches) ? (d.patches as Patch[]) : [];
        return { decision: 'allow', annotations, patches: [...diff(), ...explicit] };
      }
      if (d.decision === 'deny') {
        return {
          decision: 'deny',
          annotations,
          patches: [],
          code: String(d.code ?? ''),
          reason: typeof d.reason === 'string' ? d.reason : String(d.reason ?? ''),
        };
      }
    }
    const err = new ContractViolationError(
      'invalid-return',
      `the handler returned ${JSON.stringify(returned)}; return allow(), deny(...), patches or nothing`,
      { interceptor: this.name, bindingId: at.bindingId },
    );
    if (this.#settings.strict) throw err;
    this.#log().error(
      { rule: err.rule, interceptor: this.name, binding_id: at.bindingId, phase: at.phase },
      err.message,
    );
    throw new EvaluateError('INTERNAL', INVALID_RESULT_MESSAGE, { cause: err });
  }
}

/**
 * Start an interceptor definition. Register handlers with `.modify`, `.validate`
 * and `.observe`; the result is an `Interceptor` whose manifest is derived from them.
 */
export function interceptor(name: string, options: InterceptorOptions = {}): InterceptorBuilder {
  return new Builder(name, options);
}
