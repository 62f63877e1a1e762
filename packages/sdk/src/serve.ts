import { chmod } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import {
  type DescribeRequest,
  decodeEvaluation,
  GatewayInterceptorService,
  grpcCodeNumber,
  type InterceptorEvaluation,
  type InterceptorManifest,
  type InterceptorResult,
  type ProviderProfileSnapshot,
  type ProviderProfileSnapshotRequest,
} from '@openshell-interceptors/protocol';
import type { Tracer } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { AuthError, createTokenVerifier, type TokenVerifier, type TokenVerifierOptions } from './auth.js';
import { INVALID_RESULT_MESSAGE } from './contract.js';
import { ContractViolationError, EvaluateError } from './errors.js';
import { HealthService, HealthState, ServingStatus } from './health.js';
import { EvaluationMetrics, instrumentedOutcome } from './instrument.js';
import { Cancellation, transportContext } from './internal.js';
import { formatTcpAddress, parseListenAddress, prepareSocketPath, removeSocket } from './listen.js';
import { defaultLogger } from './log.js';
import type { EvaluateContext, Interceptor } from './types.js';

const INTERCEPTOR_SERVICE = 'openshell.gateway_interceptor.v1.GatewayInterceptor';
const DEFAULT_MAX_RECEIVE_BYTES = 4 * 1024 * 1024;
const DEFAULT_GRACE_MS = 10_000;

/** Token checks for `serve`; the audience defaults to the interceptor's expected audience. */
export type ServeAuthOptions = Omit<TokenVerifierOptions, 'audience'> & { readonly audience?: string };

export interface ServeTlsOptions {
  /** PEM certificate chain. */
  readonly cert: string | Buffer;
  /** PEM private key. */
  readonly key: string | Buffer;
  /** PEM CA bundle: when set, clients must present a certificate it signed (mTLS). */
  readonly clientCa?: string | Buffer;
}

export interface ServeOptions {
  /** `host:port` (port 0 picks a free one), `[ipv6]:port`, or `unix:///absolute/path`. */
  readonly listen: string;
  readonly tls?: ServeTlsOptions;
  /** Verify the gateway's bearer token on every call (CONTRACT section 7). */
  readonly auth?: ServeAuthOptions;
  /** Serve without authentication: required when `auth` is absent; logs a warning at start. */
  readonly insecure?: boolean;
  /** File mode of a unix socket (default 0o600). */
  readonly socketMode?: number;
  /** Largest request accepted, bytes (default 4 MiB). */
  readonly maxReceiveBytes?: number;
  readonly logger?: Logger;
  /** Register Prometheus metrics here. */
  readonly metrics?: Registry;
  /** OpenTelemetry tracer (default: the global one, a no-op unless a provider is registered). */
  readonly tracer?: Tracer;
  /** SIGTERM/SIGINT start a graceful shutdown (a second signal forces it). */
  readonly handleSignals?: boolean;
  /** How long in-flight calls may take to finish on shutdown before they are cancelled (default 10 s). */
  readonly shutdownGraceMs?: number;
  /** Report NOT_SERVING this long before refusing new calls, so load balancers notice (default 0). */
  readonly notServingDelayMs?: number;
}

export interface RunningServer {
  /** Where it listens: `host:port` with the real port, or `unix:///path`. */
  readonly address: string;
  /** The bound TCP port (absent for unix sockets). */
  readonly port?: number;
  /** Report NOT_SERVING, stop accepting, let in-flight calls finish within `graceMs`, then cancel the rest. */
  close(opts?: { graceMs?: number }): Promise<void>;
  /** Settles when the server has shut down (by `close` or a signal). */
  readonly closed: Promise<void>;
}

function toBuffer(v: string | Buffer): Buffer {
  return typeof v === 'string' ? Buffer.from(v) : v;
}

function credentials(tls: ServeTlsOptions | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  return grpc.ServerCredentials.createSsl(
    tls.clientCa ? toBuffer(tls.clientCa) : null,
    [{ cert_chain: toBuffer(tls.cert), private_key: toBuffer(tls.key) }],
    tls.clientCa !== undefined,
  );
}

function bind(server: grpc.Server, address: string, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port)));
  });
}

function deadlineOf(call: grpc.ServerUnaryCall<unknown, unknown>): number | undefined {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : d;
  return Number.isFinite(ms) ? ms : undefined;
}

/** A result already encoded by the contract check: sent as is rather than encoded a second time. */
class EncodedResult {
  constructor(readonly bytes: Buffer) {}
}

const evaluateMethod = GatewayInterceptorService.evaluate;
/**
 * The service with Evaluate answering either a result or its bytes, and reading the request
 * with the protocol's evaluation codec (the generated decode's value, without its wrappers).
 */
const SERVICE: grpc.ServiceDefinition = {
  ...GatewayInterceptorService,
  evaluate: {
    ...evaluateMethod,
    requestDeserialize: decodeEvaluation,
    responseSerialize: (value: InterceptorResult | EncodedResult): Buffer =>
      value instanceof EncodedResult ? value.bytes : evaluateMethod.responseSerialize(value),
  },
};

/** An error as the status a gRPC client gets: EvaluateError keeps its code; anything else is a generic INTERNAL. */
function toStatus(err: unknown): Partial<grpc.StatusObject> {
  if (err instanceof EvaluateError) return { code: grpcCodeNumber(err.code), details: err.message };
  if (err instanceof AuthError) return { code: grpc.status.UNAUTHENTICATED, details: err.message };
  if (err instanceof ContractViolationError)
    return { code: grpc.status.INTERNAL, details: INVALID_RESULT_MESSAGE };
  return { code: grpc.status.INTERNAL, details: 'internal error' };
}

/**
 * Serve an interceptor over gRPC: the GatewayInterceptor service (Describe,
 * Evaluate, SnapshotProviderProfiles) behind the gateway token check, plus
 * `grpc.health.v1.Health` (unauthenticated, for probes).
 */
export async function serve(interceptor: Interceptor, options: ServeOptions): Promise<RunningServer> {
  const logger = options.logger ?? defaultLogger(interceptor.name);
  const target = parseListenAddress(options.listen);
  if (options.auth && options.insecure)
    throw new Error('serve: give either auth or insecure: true, not both');
  if (!options.auth && options.insecure !== true) {
    throw new Error(
      'serve: authentication is required: pass auth (a public key or JWKS for the gateway token), or insecure: true to run without it',
    );
  }
  const maxReceive = options.maxReceiveBytes ?? DEFAULT_MAX_RECEIVE_BYTES;
  if (!Number.isInteger(maxReceive) || maxReceive < 1)
    throw new Error('serve: maxReceiveBytes must be a positive integer');
  const manifest = interceptor.manifest();
  let verifier: TokenVerifier | undefined;
  if (options.auth) {
    const audience = options.auth.audience ?? (manifest.expectedAudience || undefined);
    if (!audience) throw new Error('serve: auth needs an audience (the manifest advertises none)');
    verifier = await createTokenVerifier({ ...options.auth, audience });
  }
  const metrics = options.metrics ? new EvaluationMetrics(options.metrics) : undefined;
  const inst = {
    logger,
    ...(metrics ? { metrics } : {}),
    ...(options.tracer ? { tracer: options.tracer } : {}),
  };
  // Describe advertises the audience this server verifies, so the gateway's check agrees with ours.
  const describe = (): InterceptorManifest => {
    const m = interceptor.manifest();
    return verifier ? { ...m, expectedAudience: verifier.audience } : m;
  };

  const inflight = new Set<Cancellation>();
  const authenticate = async (call: grpc.ServerUnaryCall<unknown, unknown>): Promise<void> => {
    if (!verifier) return;
    const values = call.metadata.get('authorization');
    try {
      if (values.length > 1) throw new AuthError('malformed');
      const v = values[0];
      await verifier.verify(typeof v === 'string' ? v : undefined);
    } catch (err) {
      const reason = err instanceof AuthError ? err.reason : 'malformed';
      metrics?.authFailures.inc({ reason });
      logger.warn(
        { reason, method: call.getPath(), peer: call.getPeer() },
        'refused a call: gateway token rejected',
      );
      throw err instanceof AuthError ? err : new AuthError('malformed');
    }
  };

  /** Auth, then the work with a signal tied to the call's deadline, cancellation and forced shutdown. */
  function unary<Req, Res>(
    work: (req: Req, ctx: EvaluateContext) => Promise<Res>,
  ): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      const cancellation = new Cancellation();
      inflight.add(cancellation);
      const onCancel = () => cancellation.abort(new DOMException('the call was cancelled', 'AbortError'));
      call.once('cancelled', onCancel);
      const ctx = transportContext(cancellation, deadlineOf(call as grpc.ServerUnaryCall<unknown, unknown>));
      const done = () => {
        inflight.delete(cancellation);
        call.removeListener('cancelled', onCancel);
      };
      // Without a verifier the work starts at once: no extra promise hop per call.
      let pending: Promise<Res>;
      try {
        pending = verifier
          ? authenticate(call as grpc.ServerUnaryCall<unknown, unknown>).then(() => work(call.request, ctx))
          : work(call.request, ctx);
      } catch (err) {
        pending = Promise.reject(err);
      }
      pending.then(
        (res) => {
          done();
          callback(null, res);
        },
        (err: unknown) => {
          if (
            !(err instanceof EvaluateError) &&
            !(err instanceof AuthError) &&
            !(err instanceof ContractViolationError)
          ) {
            logger.error({ err, method: call.getPath() }, 'unexpected failure while answering a call');
          }
          done();
          callback(toStatus(err));
        },
      );
    };
  }

  const server = new grpc.Server({
    'grpc.max_receive_message_length': maxReceive,
  });
  server.addService(SERVICE, {
    describe: unary<DescribeRequest, InterceptorManifest>(async () => describe()),
    evaluate: unary<InterceptorEvaluation, InterceptorResult | EncodedResult>((req, ctx) =>
      instrumentedOutcome(interceptor, req, ctx, inst).then(({ result, encoded }) =>
        encoded
          ? new EncodedResult(Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength))
          : result,
      ),
    ),
    snapshotProviderProfiles: unary<ProviderProfileSnapshotRequest, ProviderProfileSnapshot>((_req, ctx) =>
      interceptor.snapshotProviderProfiles(ctx),
    ),
  });
  const health = new HealthState();
  server.addService(HealthService, health.implementation());

  if (target.kind === 'unix') await prepareSocketPath(target.path);
  const bindAddress =
    target.kind === 'unix' ? `unix://${target.path}` : formatTcpAddress(target.host, target.port);
  let port: number;
  try {
    port = await bind(server, bindAddress, credentials(options.tls));
  } catch (err) {
    server.forceShutdown();
    throw new Error(`serve: cannot listen on ${options.listen}: ${(err as Error).message}`);
  }
  const address = target.kind === 'unix' ? `unix://${target.path}` : formatTcpAddress(target.host, port);
  if (target.kind === 'unix') {
    try {
      await chmod(target.path, options.socketMode ?? 0o600);
    } catch (err) {
      server.forceShutdown();
      await removeSocket(target.path);
      throw new Error(`serve: cannot set the mode of ${target.path}: ${(err as Error).message}`);
    }
  }
  health.set('', ServingStatus.SERVING);
  health.set(INTERCEPTOR_SERVICE, ServingStatus.SERVING);

  if (!verifier) {
    logger.warn(
      { interceptor: interceptor.name, address },
      'authentication is disabled (insecure): this service cannot tell the gateway from any other caller',
    );
  }
  logger.info(
    {
      interceptor: interceptor.name,
      address,
      tls: options.tls ? (options.tls.clientCa ? 'mtls' : 'tls') : 'none',
      auth: verifier ? { issuer: verifier.issuer, audience: verifier.audience } : 'none',
      bindings: manifest.bindings.map((b) => b.id),
    },
    'interceptor serving',
  );

  let resolveClosed: () => void = () => {};
  const closed = new Promise<void>((r) => {
    resolveClosed = r;
  });
  let closing: Promise<void> | undefined;
  let forceNow: (() => void) | undefined;
  const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

  const onSignal = (sig: NodeJS.Signals) => {
    if (closing) {
      logger.warn({ signal: sig }, 'second signal: cancelling in-flight calls now');
      forceNow?.();
      return;
    }
    logger.info({ signal: sig }, 'shutting down');
    void close();
  };

  function close(opts: { graceMs?: number } = {}): Promise<void> {
    closing ??= (async () => {
      const grace = opts.graceMs ?? options.shutdownGraceMs ?? DEFAULT_GRACE_MS;
      health.setAll(ServingStatus.NOT_SERVING);
      health.endWatches();
      if (options.notServingDelayMs) await new Promise((r) => setTimeout(r, options.notServingDelayMs));
      await new Promise<void>((done) => {
        let finished = false;
        const force = () => {
          if (finished) return;
          if (inflight.size > 0)
            logger.warn({ inflight: inflight.size }, 'grace period over: cancelling in-flight calls');
          for (const c of inflight) c.abort(new DOMException('the server is shutting down', 'AbortError'));
          server.forceShutdown();
          finish();
        };
        const timer = setTimeout(force, Math.max(0, grace));
        const finish = () => {
          if (finished) return;
          finished = true;
          clearTimeout(timer);
          forceNow = undefined;
          done();
        };
        forceNow = force;
        server.tryShutdown(() => finish());
      });
      if (target.kind === 'unix') await removeSocket(target.path);
      if (options.handleSignals) for (const s of signals) process.removeListener(s, onSignal);
      logger.info({ interceptor: interceptor.name, address }, 'interceptor stopped');
      resolveClosed();
    })();
    return closing;
  }

  if (options.handleSignals) for (const s of signals) process.on(s, onSignal);

  return { address, ...(target.kind === 'tcp' ? { port } : {}), close, closed };
}
