import { type GrpcCodeName, grpcCodeNumber } from '@openshell-interceptors/protocol';
import type { Projection } from '../projection.js';

/** What a driver answers to GetCapabilities. */
export interface PolicyDriverCapabilities {
  /** Surface ids the driver projects, e.g. `openshell.sandbox.v1`. At least one. */
  readonly supportedSurfaces: readonly string[];
  /** False: the enforcing side refuses every policy-mutating RPC. */
  readonly permitsMutation: boolean;
  readonly driverVersion: string;
  /** Optional feature names, e.g. `signed-projections`. */
  readonly features?: readonly string[];
}

/** One sandbox of one caller, as the enforcing side describes it to AcquireHandle. */
export interface RuntimeContext {
  readonly sandboxId: string;
  readonly userSubject: string;
  /** Open attributes: tenant_id, session_id, ... */
  readonly attributes: Readonly<Record<string, string>>;
}

/** The driver has no policy it can vouch for this handle and surface. */
export interface NoVerifiedPolicy {
  readonly noVerifiedPolicy: string;
}

export type ProjectionOutcome = Projection | NoVerifiedPolicy;

export function isNoVerifiedPolicy(o: ProjectionOutcome): o is NoVerifiedPolicy {
  return typeof (o as NoVerifiedPolicy).noVerifiedPolicy === 'string';
}

type MaybePromise<T> = T | Promise<T>;

/** What a driver author implements. Handles are opaque, non-empty strings. */
export interface PolicyDriverDefinition {
  /** Static, or computed per call (e.g. from a reloaded configuration). */
  readonly capabilities: PolicyDriverCapabilities | (() => MaybePromise<PolicyDriverCapabilities>);
  /** Bind a runtime context to a new handle. Throw `PolicyDriverError` to refuse. */
  acquireHandle(ctx: RuntimeContext): MaybePromise<string>;
  /**
   * The projection for a handle on a surface the driver declared. Throw
   * `UnknownHandleError` for a handle it does not hold (NOT_FOUND on the wire).
   */
  getProjection(handle: string, surfaceId: string): MaybePromise<ProjectionOutcome>;
  /** Forget a handle; true when it was held, false when unknown or already released. */
  releaseHandle(handle: string): MaybePromise<boolean>;
}

/**
 * A driver failure with the gRPC status it maps to. Anything else a driver
 * throws is INTERNAL, with the detail logged and not sent.
 */
export class PolicyDriverError extends Error {
  readonly code: GrpcCodeName;
  constructor(code: GrpcCodeName, message: string) {
    super(message);
    this.name = 'PolicyDriverError';
    this.code = code;
  }

  get grpcStatus(): number {
    return grpcCodeNumber(this.code);
  }
}

/** GetProjection for a handle the driver does not hold: NOT_FOUND. */
export class UnknownHandleError extends PolicyDriverError {
  readonly handle: string;
  constructor(handle: string) {
    super('NOT_FOUND', `unknown handle '${handle}'`);
    this.name = 'UnknownHandleError';
    this.handle = handle;
  }
}

function checkCapabilities(c: PolicyDriverCapabilities, where: string): PolicyDriverCapabilities {
  if (!Array.isArray(c.supportedSurfaces) || c.supportedSurfaces.length === 0) {
    throw new Error(`${where}: supportedSurfaces must list at least one surface`);
  }
  for (const s of c.supportedSurfaces) {
    if (typeof s !== 'string' || s.trim() === '')
      throw new Error(`${where}: surface ids must be non-empty strings`);
  }
  if (typeof c.permitsMutation !== 'boolean') throw new Error(`${where}: permitsMutation must be a boolean`);
  if (typeof c.driverVersion !== 'string') throw new Error(`${where}: driverVersion must be a string`);
  return c;
}

/** A validated driver definition with its capabilities resolved per call. */
export interface PolicyDriver extends PolicyDriverDefinition {
  resolveCapabilities(): Promise<PolicyDriverCapabilities>;
}

/**
 * Check a driver definition and return it ready for `servePolicyDriver`. Static
 * capabilities are validated now; computed ones on every call.
 */
export function definePolicyDriver(def: PolicyDriverDefinition): PolicyDriver {
  const { capabilities } = def;
  if (typeof capabilities !== 'function') checkCapabilities(capabilities, 'definePolicyDriver');
  for (const fn of ['acquireHandle', 'getProjection', 'releaseHandle'] as const) {
    if (typeof def[fn] !== 'function') throw new Error(`definePolicyDriver: ${fn} must be a function`);
  }
  return {
    capabilities,
    acquireHandle: (ctx) => def.acquireHandle(ctx),
    getProjection: (handle, surfaceId) => def.getProjection(handle, surfaceId),
    releaseHandle: (handle) => def.releaseHandle(handle),
    async resolveCapabilities() {
      return typeof capabilities === 'function'
        ? checkCapabilities(await capabilities(), 'capabilities()')
        : capabilities;
    },
  };
}
