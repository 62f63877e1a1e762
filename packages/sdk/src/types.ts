import type {
  FailurePolicy,
  InterceptableMethod,
  InterceptableRpcTypes,
  InterceptorEvaluation,
  InterceptorManifest,
  InterceptorResult,
  JsonObject,
  OpenShellService,
  Phase,
  Principal,
  PrincipalKind,
  ProviderProfileJson,
  ProviderProfileSnapshot,
} from '@openshell-interceptors/protocol';
import type { Logger } from 'pino';
import type { AllowDecision, Decision, Patch } from './results.js';

/** A deeply read-only view of a JSON shape. */
export type DeepReadonly<T> = T extends (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** The ProtoJSON operation view of an RPC's request (secrets removed). */
export type RequestView<M extends InterceptableMethod> = InterceptableRpcTypes[M]['requestView'];
/** The ProtoJSON view of an RPC's response (secrets removed), as post_commit sees it. */
export type ResponseView<M extends InterceptableMethod> = InterceptableRpcTypes[M]['responseView'];

/** What every handler gets. */
export interface HandlerContextBase<M extends InterceptableMethod> {
  /** The interceptor (definition) name. */
  readonly interceptor: string;
  readonly service: OpenShellService;
  readonly method: M;
  /** `openshell.v1.OpenShell/<Method>`. */
  readonly rpc: `${OpenShellService}/${M}`;
  readonly phase: Phase;
  readonly bindingId: string;
  /** Who called the API, as the gateway authenticated them. */
  readonly principal: Principal;
  /**
   * Aborted shortly before the gateway's deadline (or when the call is cancelled):
   * pass it to fetch, database clients and timers so a slow dependency ends the
   * handler instead of the gateway's timeout.
   */
  readonly signal: AbortSignal;
  /** The call deadline in epoch milliseconds, when the caller set one. */
  readonly deadline: number | undefined;
  /** Add a log annotation (non-secret; logged by the gateway, never shown to the API caller). */
  annotate(key: string, value: string): void;
}

export interface ModifyContext<M extends InterceptableMethod> extends HandlerContextBase<M> {
  readonly phase: 'modify_operation';
  /** The operation exactly as received. */
  readonly operation: DeepReadonly<RequestView<M>>;
  /** A mutable deep copy of `operation`: change it and the SDK sends the difference as patches. */
  readonly draft: RequestView<M>;
}

export interface ValidateContext<M extends InterceptableMethod> extends HandlerContextBase<M> {
  readonly phase: 'validate';
  /** The operation after every accepted modify patch. */
  readonly operation: DeepReadonly<RequestView<M>>;
  /** Defined by the wire but never set by the shipped gateway. */
  readonly currentState: DeepReadonly<JsonObject> | undefined;
}

export interface ObserveContext<M extends InterceptableMethod> extends HandlerContextBase<M> {
  readonly phase: 'post_commit';
  /** The committed response. */
  readonly operation: DeepReadonly<ResponseView<M>>;
}

/** What a handler may return, now or later (an async handler that returns nothing is `Promise<void>`). */
// biome-ignore lint/suspicious/noConfusingVoidType: see above
export type HandlerReturn<T> = T | undefined | void | Promise<T | undefined | void>;

/** A modify handler: change `draft`, or return explicit patches, `allow(...)` or `deny(...)`. */
export type ModifyHandler<M extends InterceptableMethod> = (
  ctx: ModifyContext<M>,
) => HandlerReturn<Decision | readonly Patch[]>;

/** A validate handler: return `deny(...)` to refuse; nothing or `allow()` lets the call through. */
export type ValidateHandler<M extends InterceptableMethod> = (
  ctx: ValidateContext<M>,
) => HandlerReturn<Decision>;

/** A post_commit observer: it cannot change or refuse anything, only annotate. */
export type ObserveHandler<M extends InterceptableMethod> = (
  ctx: ObserveContext<M>,
) => HandlerReturn<AllowDecision>;

/** Where a label selector reads labels from, and what the other selector fields see. */
export interface SelectorInput {
  readonly principal: Principal;
  readonly operation: DeepReadonly<JsonObject>;
  readonly labels: Readonly<Record<string, string>>;
  readonly method: InterceptableMethod;
  readonly phase: Phase;
}

/**
 * Scope a handler beyond the wire's RPC selector, evaluated in the service: every
 * given field must match (a list matches any of its items). A non-matching
 * evaluation is allowed untouched without calling the handler.
 */
export interface Selector {
  /** Principal kind(s). */
  readonly kind?: PrincipalKind | readonly PrincipalKind[];
  /** Subject(s): the user subject or the sandbox id; a RegExp is tested against it. */
  readonly subject?: string | readonly string[] | RegExp;
  /** The principal holds at least one of these roles. */
  readonly roles?: string | readonly string[];
  /**
   * Request labels: `true` = the key is present, a string = equal, a list = any of.
   * Labels are read from the operation's `labels`, else `metadata.labels`, else the
   * `metadata.labels` of its first object-valued field (e.g. `provider.metadata.labels`).
   */
  readonly labels?: Readonly<Record<string, string | readonly string[] | true>>;
  /** Any further predicate. */
  readonly match?: (input: SelectorInput) => boolean;
}

export interface BindingOptions {
  /** Binding id in the manifest (default: from the method, e.g. `create-sandbox`). */
  readonly id?: string;
  /** This binding's failure policy (observe bindings are always `fail_open`). */
  readonly failurePolicy?: FailurePolicy;
  readonly when?: Selector;
}

export interface InterceptorOptions {
  /** Manifest-wide failure policy (bindings may override). */
  readonly failurePolicy?: FailurePolicy;
  /** Advertised `expected_audience` (default `urn:openshell:extension:interceptor:<name>`; `''` to advertise none). */
  readonly expectedAudience?: string;
  /**
   * Contract violations reject `evaluate` with `ContractViolationError` instead of
   * being logged and replaced by a safe result. Default: on under vitest or NODE_ENV=test.
   */
  readonly strict?: boolean;
  /** Most patches one result may carry (default 32, the gateway's default `max_patches`). */
  readonly maxPatches?: number;
  /** Largest encoded result in bytes (default 1 MiB, the gateway's default `max_response_bytes`). */
  readonly maxResultBytes?: number;
  /** pino logger for contract violations and handler errors (and per-evaluation lines from `evaluate`). */
  readonly logger?: Logger;
}

/** A provider profile in ProtoJSON (strictly checked against `openshell.v1.ProviderProfile`). */
export type ProviderProfileInput = ProviderProfileJson;

export interface ProviderProfilesResult {
  /** Leave empty to get the stable content digest (CONTRACT section 9). */
  readonly revision?: string;
  readonly profiles: readonly ProviderProfileInput[];
}

export type ProviderProfilesProvider = (ctx: {
  readonly signal: AbortSignal;
}) =>
  | readonly ProviderProfileInput[]
  | ProviderProfilesResult
  | Promise<readonly ProviderProfileInput[] | ProviderProfilesResult>;

export interface ProviderProfilesOptions {
  /** A fixed revision; by default the content digest, so it changes only when the profiles do. */
  readonly revision?: string;
}

/** How a caller hands a deadline and cancellation to an evaluation. */
export interface EvaluateContext {
  readonly signal?: AbortSignal;
  /** Epoch milliseconds. */
  readonly deadline?: number;
}

/** A complete interceptor service definition, independent of transport and auth. */
export interface Interceptor {
  readonly name: string;
  /** The Describe answer, derived from the registered handlers. */
  manifest(): InterceptorManifest;
  /**
   * One Evaluate call without transport or auth: route, selectors, handler, draft
   * diff, contract checks. Protocol failures reject with `EvaluateError` (a gRPC
   * code name and message), exactly what a gRPC client would see.
   */
  evaluate(ev: InterceptorEvaluation, ctx?: EvaluateContext): Promise<InterceptorResult>;
  /** The SnapshotProviderProfiles answer (UNIMPLEMENTED when no provider is registered). */
  snapshotProviderProfiles(ctx?: EvaluateContext): Promise<ProviderProfileSnapshot>;
}
