import { chmod, lstat, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import {
  type handleUnaryCall,
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceError,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js';
import { policyDriverV1 } from '@openshell-interceptors/protocol';
import { type Logger, pino } from 'pino';
import {
  definePolicyDriver,
  isNoVerifiedPolicy,
  type PolicyDriver,
  type PolicyDriverDefinition,
  PolicyDriverError,
} from './define.js';
import { type DriverEndpoint, EndpointError, formatEndpoint, parseDriverEndpoint } from './endpoint.js';

type PemInput = string | Buffer;

export interface ServeTlsOptions {
  /** PEM certificate chain served to clients. */
  readonly cert: PemInput;
  /** PEM private key for `cert`. */
  readonly key: PemInput;
  /** PEM CA bundle to verify client certificates (mutual TLS). */
  readonly clientCa?: PemInput;
  /** With `clientCa`: refuse clients without a valid certificate. Default true when clientCa is set. */
  readonly requireClientCert?: boolean;
}

export interface ServePolicyDriverOptions {
  /** `unix:///abs/path.sock` or `host:port` (port 0 picks a free port). */
  readonly listen: string;
  /** TLS for TCP listeners. Unix sockets rely on file permissions instead. */
  readonly tls?: ServeTlsOptions;
  /** Unix socket file mode, default 0o600 (only the driver's user may connect). */
  readonly socketMode?: number;
  /** A pino logger; `false` for none. Default: pino to stdout at info. */
  readonly logger?: Logger | false;
}

/** A running driver service. */
export interface RunningPolicyDriver {
  /** What clients dial: `unix:///path` or `host:port` with the bound port. */
  readonly address: string;
  readonly endpoint: DriverEndpoint;
  /** Stop accepting calls, let in-flight calls finish for up to `graceMs`, then cut them. */
  close(graceMs?: number): Promise<void>;
}

function isPolicyDriver(d: PolicyDriver | PolicyDriverDefinition): d is PolicyDriver {
  return typeof (d as PolicyDriver).resolveCapabilities === 'function';
}

function serviceError(code: status, details: string): Partial<ServiceError> {
  return { code, details, message: details };
}

/** A socket file left by a dead process is removed; one a live server answers on is an error. */
async function clearStaleSocket(path: string): Promise<void> {
  let info: Awaited<ReturnType<typeof lstat>>;
  try {
    info = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!info.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
  const live = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (live) throw new Error(`${path} is in use by another server`);
  await unlink(path);
}

function bind(server: Server, target: string, creds: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(target, creds, (err, port) => (err ? reject(err) : resolve(port)));
  });
}

/**
 * Serve a policy driver over gRPC. Requests are checked before the driver sees
 * them (runtime context present, handle and surface non-empty, surface declared
 * in the capabilities); driver answers are checked before they are sent (a
 * non-empty handle, a projection for the surface asked). `PolicyDriverError`s map
 * to their status code; any other error is INTERNAL, logged, and not echoed.
 */
export async function servePolicyDriver(
  driverOrDefinition: PolicyDriver | PolicyDriverDefinition,
  options: ServePolicyDriverOptions,
): Promise<RunningPolicyDriver> {
  const driver = isPolicyDriver(driverOrDefinition)
    ? driverOrDefinition
    : definePolicyDriver(driverOrDefinition);
  const endpoint = parseDriverEndpoint(options.listen);
  if (endpoint.kind === 'tcp' && endpoint.tls) {
    throw new EndpointError(options.listen, 'listen on host:port and pass `tls` options for TLS');
  }
  if (endpoint.kind === 'unix' && options.tls) {
    throw new EndpointError(
      options.listen,
      'TLS applies to TCP listeners; a unix socket is protected by its file mode',
    );
  }
  const log =
    options.logger === false
      ? pino({ level: 'silent' })
      : (options.logger ?? pino({ name: 'policy-driver' }));

  function unary<Req, Res>(rpc: string, fn: (req: Req) => Promise<Res>): handleUnaryCall<Req, Res> {
    return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      fn(call.request).then(
        (res) => callback(null, res),
        (err: unknown) => {
          if (err instanceof PolicyDriverError) {
            log.debug({ rpc, code: err.code, err: err.message }, 'driver refused');
            callback(serviceError(err.grpcStatus, err.message));
          } else {
            log.error({ rpc, err }, 'driver failed');
            callback(serviceError(status.INTERNAL, `${rpc}: internal driver error`));
          }
        },
      );
    };
  }

  const impl: policyDriverV1.PolicyDriverServer = {
    getCapabilities: unary('GetCapabilities', async () => {
      const c = await driver.resolveCapabilities();
      return {
        supportedSurfaces: [...c.supportedSurfaces],
        permitsMutation: c.permitsMutation,
        driverVersion: c.driverVersion,
        features: [...(c.features ?? [])],
      };
    }),
    acquireHandle: unary('AcquireHandle', async (req: policyDriverV1.AcquireHandleRequest) => {
      const rc = req.runtimeContext;
      if (!rc) throw new PolicyDriverError('INVALID_ARGUMENT', 'runtime_context is required');
      const handle = await driver.acquireHandle({
        sandboxId: rc.sandboxId,
        userSubject: rc.userSubject,
        attributes: { ...rc.attributes },
      });
      if (typeof handle !== 'string' || handle === '')
        throw new Error('acquireHandle returned an empty handle');
      return { handle };
    }),
    getProjection: unary('GetProjection', async (req: policyDriverV1.GetProjectionRequest) => {
      if (req.handle === '') throw new PolicyDriverError('INVALID_ARGUMENT', 'handle is required');
      if (req.surfaceId === '') throw new PolicyDriverError('INVALID_ARGUMENT', 'surface_id is required');
      const caps = await driver.resolveCapabilities();
      if (!caps.supportedSurfaces.includes(req.surfaceId)) {
        throw new PolicyDriverError(
          'INVALID_ARGUMENT',
          `surface '${req.surfaceId}' is not supported (supported: ${caps.supportedSurfaces.join(', ')})`,
        );
      }
      const outcome = await driver.getProjection(req.handle, req.surfaceId);
      if (isNoVerifiedPolicy(outcome)) return { noVerifiedPolicy: { reason: outcome.noVerifiedPolicy } };
      if (outcome.surfaceId !== req.surfaceId) {
        throw new Error(`getProjection returned surface '${outcome.surfaceId}' for '${req.surfaceId}'`);
      }
      return { projection: outcome };
    }),
    releaseHandle: unary('ReleaseHandle', async (req: policyDriverV1.ReleaseHandleRequest) => {
      // Idempotent by contract: an empty or unknown handle is simply not released.
      if (req.handle === '') return { released: false };
      return { released: (await driver.releaseHandle(req.handle)) === true };
    }),
  };

  const server = new Server();
  server.addService(policyDriverV1.PolicyDriverService, impl);

  let address: string;
  if (endpoint.kind === 'unix') {
    try {
      await lstat(dirname(endpoint.path));
    } catch {
      throw new Error(
        `cannot listen on ${options.listen}: directory ${dirname(endpoint.path)} does not exist`,
      );
    }
    await clearStaleSocket(endpoint.path);
    await bind(server, `unix://${endpoint.path}`, ServerCredentials.createInsecure());
    await chmod(endpoint.path, options.socketMode ?? 0o600);
    address = `unix://${endpoint.path}`;
  } else {
    const creds = options.tls
      ? ServerCredentials.createSsl(
          options.tls.clientCa ? Buffer.from(options.tls.clientCa) : null,
          [{ cert_chain: Buffer.from(options.tls.cert), private_key: Buffer.from(options.tls.key) }],
          options.tls.clientCa ? (options.tls.requireClientCert ?? true) : false,
        )
      : ServerCredentials.createInsecure();
    const port = await bind(server, `${endpoint.host}:${endpoint.port}`, creds);
    address = `${endpoint.host}:${port}`;
  }
  const bound: DriverEndpoint =
    endpoint.kind === 'unix'
      ? endpoint
      : { ...endpoint, port: Number(address.slice(address.lastIndexOf(':') + 1)), tls: !!options.tls };
  log.info({ address: formatEndpoint(bound) }, 'policy driver listening');

  let closing: Promise<void> | undefined;
  return {
    address,
    endpoint: bound,
    close(graceMs = 5000) {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, graceMs);
          server.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        if (endpoint.kind === 'unix') await unlink(endpoint.path).catch(() => undefined);
      })();
      return closing;
    },
  };
}
