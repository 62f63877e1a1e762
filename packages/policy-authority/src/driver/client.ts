import {
  type ChannelCredentials,
  type ClientUnaryCall,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import { type GrpcCodeName, grpcCodeName, policyDriverV1 } from '@openshell-interceptors/protocol';
import type { Projection } from '../projection.js';
import type { PolicyDriverCapabilities, ProjectionOutcome, RuntimeContext } from './define.js';
import { type DriverEndpoint, EndpointError, grpcTarget, parseDriverEndpoint } from './endpoint.js';

type PemInput = string | Buffer;

export interface DriverConnectionOptions {
  /** Per-call deadline in milliseconds, default 2000. */
  readonly deadlineMs?: number;
  /**
   * Wait (within the deadline) for a driver that is reconnecting instead of failing
   * at once, so the first call after a driver restart succeeds. Default true.
   */
  readonly waitForReady?: boolean;
  /** For `https://` endpoints: CA bundle (default: platform roots) and an optional client certificate. */
  readonly tls?: {
    readonly ca?: PemInput;
    readonly cert?: PemInput;
    readonly key?: PemInput;
    /** Override the name checked against the server certificate. */
    readonly serverName?: string;
  };
}

/** Per-call limits on top of the connection's deadline. */
export interface DriverCallOptions {
  /** Epoch milliseconds; the earlier of this and the connection deadline applies. */
  readonly deadline?: number;
  /** Cancels the call (it then fails with CANCELLED). */
  readonly signal?: AbortSignal;
}

/** A driver call that did not succeed: transport, deadline, or a status the driver returned. */
export class DriverCallError extends Error {
  readonly rpc: string;
  /** Numeric gRPC status. */
  readonly code: number;
  readonly codeName: GrpcCodeName;
  /** The status details, as the driver sent them. */
  readonly details: string;
  constructor(rpc: string, code: number, details: string) {
    const codeName = grpcCodeName(code) ?? 'UNKNOWN';
    super(`policy driver ${rpc} failed: ${codeName}: ${details}`);
    this.name = 'DriverCallError';
    this.rpc = rpc;
    this.code = code;
    this.codeName = codeName;
    this.details = details;
  }
}

function isServiceError(e: unknown): e is ServiceError {
  return e instanceof Error && typeof (e as ServiceError).code === 'number';
}

/**
 * A client of one policy driver, for the enforcing side and the CLI: every call
 * has its own deadline, and failures are `DriverCallError`s carrying the status.
 * Dials `unix:///path`, `host:port` / `http://host:port` (plaintext) or
 * `https://host:port` (TLS).
 */
export class PolicyDriverConnection {
  readonly endpoint: DriverEndpoint;
  readonly deadlineMs: number;
  private readonly waitForReady: boolean;
  private readonly client: policyDriverV1.PolicyDriverClient;

  constructor(endpoint: string, options: DriverConnectionOptions = {}) {
    this.endpoint = parseDriverEndpoint(endpoint);
    if (options.tls && !(this.endpoint.kind === 'tcp' && this.endpoint.tls)) {
      throw new EndpointError(endpoint, 'tls options need an https:// endpoint');
    }
    this.deadlineMs = options.deadlineMs ?? 2000;
    if (!(this.deadlineMs > 0)) throw new Error('deadlineMs must be positive');
    this.waitForReady = options.waitForReady ?? true;
    let creds: ChannelCredentials;
    const channelOptions: Record<string, string | number> = {
      // A driver restart must not leave the connection in a long backoff.
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 1000,
    };
    if (this.endpoint.kind === 'tcp' && this.endpoint.tls) {
      const t = options.tls ?? {};
      creds = credentials.createSsl(
        t.ca ? Buffer.from(t.ca) : null,
        t.key ? Buffer.from(t.key) : null,
        t.cert ? Buffer.from(t.cert) : null,
      );
      if (t.serverName) channelOptions['grpc.ssl_target_name_override'] = t.serverName;
    } else {
      creds = credentials.createInsecure();
    }
    this.client = new policyDriverV1.PolicyDriverClient(grpcTarget(this.endpoint), creds, channelOptions);
  }

  private call<Req, Res>(
    rpc: string,
    method: (
      req: Req,
      md: Metadata,
      opts: { deadline: Date },
      cb: (err: ServiceError | null, res: Res) => void,
    ) => ClientUnaryCall,
    req: Req,
    opts: DriverCallOptions = {},
  ): Promise<Res> {
    const deadline = Math.min(Date.now() + this.deadlineMs, opts.deadline ?? Number.POSITIVE_INFINITY);
    return new Promise((resolve, reject) => {
      if (opts.signal?.aborted) {
        reject(new DriverCallError(rpc, status.CANCELLED, 'cancelled before the call'));
        return;
      }
      const onAbort = () => call.cancel();
      const call = method.call(
        this.client,
        req,
        // waitForReady is a metadata option in grpc-js, not a call option.
        new Metadata({ waitForReady: this.waitForReady }),
        { deadline: new Date(deadline) },
        (err, res) => {
          opts.signal?.removeEventListener('abort', onAbort);
          if (err) reject(isServiceError(err) ? new DriverCallError(rpc, err.code, err.details) : err);
          else resolve(res);
        },
      );
      opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async getCapabilities(
    opts?: DriverCallOptions,
  ): Promise<PolicyDriverCapabilities & { features: string[] }> {
    const r = await this.call<policyDriverV1.GetCapabilitiesRequest, policyDriverV1.GetCapabilitiesResponse>(
      'GetCapabilities',
      this.client.getCapabilities,
      {},
      opts,
    );
    return {
      supportedSurfaces: r.supportedSurfaces,
      permitsMutation: r.permitsMutation,
      driverVersion: r.driverVersion,
      features: r.features,
    };
  }

  async acquireHandle(ctx: RuntimeContext, opts?: DriverCallOptions): Promise<string> {
    const r = await this.call<policyDriverV1.AcquireHandleRequest, policyDriverV1.AcquireHandleResponse>(
      'AcquireHandle',
      this.client.acquireHandle,
      {
        runtimeContext: {
          sandboxId: ctx.sandboxId,
          userSubject: ctx.userSubject,
          attributes: { ...ctx.attributes },
        },
      },
      opts,
    );
    if (r.handle === '')
      throw new DriverCallError('AcquireHandle', status.INTERNAL, 'driver returned an empty handle');
    return r.handle;
  }

  /** The projection, or `{ noVerifiedPolicy: reason }`. Nothing is verified here: see `verifyProjection`. */
  async getProjection(
    handle: string,
    surfaceId: string,
    opts?: DriverCallOptions,
  ): Promise<ProjectionOutcome> {
    const r = await this.call<policyDriverV1.GetProjectionRequest, policyDriverV1.GetProjectionResponse>(
      'GetProjection',
      this.client.getProjection,
      { handle, surfaceId },
      opts,
    );
    if (r.projection) return r.projection as Projection;
    if (r.noVerifiedPolicy) return { noVerifiedPolicy: r.noVerifiedPolicy.reason };
    throw new DriverCallError(
      'GetProjection',
      status.INTERNAL,
      'driver answered with neither a projection nor a reason',
    );
  }

  /** True when the driver held the handle; false when unknown or already released. */
  async releaseHandle(handle: string, opts?: DriverCallOptions): Promise<boolean> {
    const r = await this.call<policyDriverV1.ReleaseHandleRequest, policyDriverV1.ReleaseHandleResponse>(
      'ReleaseHandle',
      this.client.releaseHandle,
      { handle },
      opts,
    );
    return r.released;
  }

  close(): void {
    this.client.close();
  }
}
