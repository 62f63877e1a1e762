import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type BindingPolicy,
  createGateway,
  type ExecutionPlan,
  type Gateway,
  type GatewayConfig,
  gatewayConfigFromObject,
  type InterceptOutcome,
  type InterceptorTransport,
  type ProviderProfileInputs,
} from '@openshell-interceptors/gateway';
import {
  DEFAULT_GATEWAY_ID,
  defaultAudience,
  type FailurePolicy,
  type InterceptableMethod,
  type InterceptableRpcTypes,
  type JsonObject,
  type Phase,
  type PrincipalMap,
  route,
} from '@openshell-interceptors/protocol';
import {
  createTokenVerifier,
  type Interceptor,
  type RunningServer,
  serve,
} from '@openshell-interceptors/sdk';
import type pino from 'pino';
import { principals, requestFixture, responseFixture } from './fixtures.js';
import { inProcessTransport } from './in-process.js';
import { createTestSigningKey, type TestSigningKey } from './keys.js';
import { type LogLine, memoryLogger, silentLogger } from './logs.js';

/** A configured binding entry (the `bindings = [...]` of the gateway TOML, in camelCase). */
export interface TestBindingEntry {
  readonly id?: string;
  /** `service/method`, or just the method name of an OpenShell RPC. */
  readonly rpc?: string;
  readonly phases?: readonly Phase[];
  readonly disabled?: boolean;
  readonly failurePolicy?: FailurePolicy;
}

/** Circuit breaker settings; `false` turns the breaker off. */
export type TestBreakerSettings =
  | false
  | {
      readonly enabled?: boolean;
      readonly errorThresholdPercentage?: number;
      readonly volumeThreshold?: number;
      /** `<n>ms` or `<n>s`, or milliseconds. */
      readonly resetTimeout?: string | number;
      readonly rollingWindow?: string | number;
    };

/** The gateway settings of one interceptor: the keys of `[[openshell.gateway.interceptors]]`. */
export interface TestInterceptorSettings {
  /** The configured name (default: the interceptor's own name). */
  readonly name?: string;
  readonly order?: number;
  readonly failurePolicy?: FailurePolicy;
  /** `<n>ms` or `<n>s`, or milliseconds (default 500ms). */
  readonly timeout?: string | number;
  readonly maxResponseBytes?: number;
  readonly maxPatches?: number;
  readonly bindingPolicy?: BindingPolicy;
  readonly bindings?: readonly TestBindingEntry[];
  /** Default `urn:openshell:extension:interceptor:<name>`. */
  readonly audience?: string;
  readonly maxConcurrency?: number;
  readonly maxQueue?: number;
  readonly breaker?: TestBreakerSettings;
}

/** An SDK interceptor run by the test gateway (in process, or served on loopback gRPC). */
export interface TestInterceptorEntry extends TestInterceptorSettings {
  readonly interceptor: Interceptor;
}

/** An interceptor service that is already running somewhere (any language). */
export interface TestEndpointEntry extends TestInterceptorSettings {
  readonly name: string;
  /** `http://host:port`, `https://host:port` or `unix:///absolute/path`. */
  readonly endpoint: string;
  /** https only: PEM CA file that replaces the platform roots. */
  readonly tlsCaCertPath?: string;
}

export type TestGatewayInterceptor = Interceptor | TestInterceptorEntry | TestEndpointEntry;

export type TestTransport = 'in-process' | 'grpc';

export interface TestGatewayOptions {
  readonly interceptors: readonly TestGatewayInterceptor[];
  /**
   * `in-process` (default): the runtime calls each SDK interceptor directly through the
   * protobuf codecs. `grpc`: each one is served with the SDK's `serve` on loopback and the
   * runtime dials it with its real gRPC client.
   */
  readonly transport?: TestTransport;
  /** Where `grpc` serves: TCP on 127.0.0.1 (default) or a unix socket in a private temp dir. */
  readonly listen?: 'tcp' | 'unix';
  /**
   * Sign gateway tokens with a fresh Ed25519 key and verify them in every SDK interceptor
   * (default: true with `grpc` or a `signingKey`, false otherwise). Endpoint entries get
   * tokens only when `signingKey` is given; otherwise the runtime calls them without a token.
   */
  readonly auth?: boolean;
  /** Use this key instead of a fresh one (e.g. the key an external service trusts). */
  readonly signingKey?: Pick<TestSigningKey, 'privateKeyPath' | 'keyId'>;
  /** Default `openshell`. */
  readonly gatewayId?: string;
  /** The principal of `call` when none is given (default: `principals.user()`). */
  readonly principal?: PrincipalMap;
  /** Runtime logs go here; by default they are kept in `gateway.logs`. */
  readonly logger?: pino.Logger;
  /**
   * `[openshell.gateway] provider_profile_sources`, in order: `'builtin'`, `'user'`, or the
   * (configured) name of an interceptor that serves provider profiles.
   */
  readonly providerProfileSources?: readonly string[];
  /** The gateway's own `builtin` and `user` catalogs. */
  readonly providerProfiles?: ProviderProfileInputs;
}

export interface CallOptions<M extends InterceptableMethod> {
  /** The principal map sent to interceptors (default: the gateway's default principal). */
  readonly principal?: PrincipalMap;
  /**
   * What the commit returns (ProtoJSON of the RPC's response type), or a function of the
   * final request. Default: the response fixture of the RPC.
   */
  readonly response?:
    | InterceptableRpcTypes[M]['response']
    | ((finalRequest: InterceptableRpcTypes[M]['request']) => InterceptableRpcTypes[M]['response']);
  /** `false`: stop after validate (no commit, no post_commit). Default true. */
  readonly commit?: boolean;
  readonly signal?: AbortSignal;
}

/** What one call did: the runtime's outcome plus the RPC it was for. */
export interface CallResult extends InterceptOutcome {
  readonly method: InterceptableMethod;
}

export interface TestGateway {
  /**
   * Run one API call through modify_operation, validate, the commit and post_commit.
   * The request defaults to the RPC's fixture and is used as given (no merge): vary a
   * fixture with `requestFixture(method, overlay)`.
   */
  call<M extends InterceptableMethod>(
    method: M,
    request?: InterceptableRpcTypes[M]['request'],
    options?: CallOptions<M>,
  ): Promise<CallResult>;
  /** The runtime itself (plan, registry, breaker state, provider profiles). */
  readonly gateway: Gateway;
  readonly plan: ExecutionPlan;
  readonly config: GatewayConfig;
  /** The runtime's log lines (empty when a logger was given). */
  readonly logs: readonly LogLine[];
  /** Where each SDK interceptor is served (`grpc` only), by configured name. */
  readonly addresses: Readonly<Record<string, string>>;
  /** Stop the runtime, the servers and remove temp files. Idempotent. */
  close(): Promise<void>;
}

function isInterceptor(v: unknown): v is Interceptor {
  const i = v as Partial<Interceptor> | null;
  return (
    typeof i === 'object' &&
    i !== null &&
    typeof i.name === 'string' &&
    typeof i.manifest === 'function' &&
    typeof i.evaluate === 'function' &&
    typeof i.snapshotProviderProfiles === 'function'
  );
}

function isEndpointEntry(v: TestGatewayInterceptor): v is TestEndpointEntry {
  return typeof (v as Partial<TestEndpointEntry>).endpoint === 'string';
}

function duration(v: string | number | undefined): string | undefined {
  if (v === undefined) return undefined;
  return typeof v === 'number' ? `${v}ms` : v;
}

function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** Settings → the TOML keys of one interceptor table (the runtime's own parser checks them). */
export function settingsToToml(s: TestInterceptorSettings): Record<string, unknown> {
  let breaker: Record<string, unknown> | undefined;
  if (s.breaker === false) breaker = { enabled: false };
  else if (s.breaker)
    breaker = defined({
      enabled: s.breaker.enabled,
      error_threshold_percentage: s.breaker.errorThresholdPercentage,
      volume_threshold: s.breaker.volumeThreshold,
      reset_timeout: duration(s.breaker.resetTimeout),
      rolling_window: duration(s.breaker.rollingWindow),
    });
  return defined({
    order: s.order,
    failure_policy: s.failurePolicy,
    timeout: duration(s.timeout),
    max_response_bytes: s.maxResponseBytes,
    max_patches: s.maxPatches,
    binding_policy: s.bindingPolicy,
    audience: s.audience,
    max_concurrency: s.maxConcurrency,
    max_queue: s.maxQueue,
    breaker,
    bindings: s.bindings?.map((b) =>
      defined({
        id: b.id,
        rpc: b.rpc === undefined ? undefined : b.rpc.includes('/') ? b.rpc : route(rpcMethod(b.rpc)).rpc,
        phases: b.phases,
        disabled: b.disabled,
        failure_policy: b.failurePolicy,
      }),
    ),
  });
}

function rpcMethod(name: string): InterceptableMethod {
  try {
    route(name as InterceptableMethod);
  } catch {
    throw new TypeError(`binding rpc ${JSON.stringify(name)} is not an OpenShell RPC; use service/method`);
  }
  return name as InterceptableMethod;
}

interface Prepared {
  readonly name: string;
  readonly table: Record<string, unknown>;
  readonly interceptor?: Interceptor;
}

/**
 * Start a gateway runtime over the given interceptors, configured like a real gateway
 * (order, failure policies, timeouts, limits, binding policies), in process or over
 * loopback gRPC with token authentication.
 *
 * ```ts
 * const gw = await testGateway([naming]);
 * expect(await gw.call('CreateSandbox', { name: 'Team-A' })).toBePatched('/name', 'team-a');
 * await gw.close();
 * ```
 */
export async function testGateway(
  input: readonly TestGatewayInterceptor[] | TestGatewayOptions,
): Promise<TestGateway> {
  const options: TestGatewayOptions = Array.isArray(input)
    ? { interceptors: input as readonly TestGatewayInterceptor[] }
    : (input as TestGatewayOptions);
  const mode: TestTransport = options.transport ?? 'in-process';
  if (mode !== 'in-process' && mode !== 'grpc')
    throw new TypeError(`testGateway: transport must be 'in-process' or 'grpc', got ${JSON.stringify(mode)}`);
  if (options.interceptors.length === 0) throw new TypeError('testGateway: give at least one interceptor');
  const auth = options.auth ?? (mode === 'grpc' || options.signingKey !== undefined);
  const gatewayId = options.gatewayId ?? DEFAULT_GATEWAY_ID;
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    cleanups.length = 0;
  };

  try {
    const prepared: Prepared[] = options.interceptors.map((raw, i) => {
      if (isInterceptor(raw)) return { name: raw.name, table: {}, interceptor: raw };
      if (isEndpointEntry(raw)) {
        const { endpoint, tlsCaCertPath, name, ...settings } = raw;
        return {
          name,
          table: defined({
            ...settingsToToml(settings),
            grpc_endpoint: endpoint,
            tls_ca_cert_path: tlsCaCertPath,
          }),
        };
      }
      const entry = raw as TestInterceptorEntry;
      if (!isInterceptor(entry.interceptor))
        throw new TypeError(
          `testGateway: interceptors[${i}] is neither an Interceptor, { interceptor, ... } nor { endpoint, name, ... }`,
        );
      const { interceptor, name, ...settings } = entry;
      return { name: name ?? interceptor.name, table: settingsToToml(settings), interceptor };
    });

    let key: Pick<TestSigningKey, 'privateKeyPath' | 'keyId'> | undefined = options.signingKey;
    let publicKey: TestSigningKey['publicKey'] | undefined;
    if (auth && !key) {
      const k = await createTestSigningKey();
      cleanups.push(k.cleanup);
      key = k;
      publicKey = k.publicKey;
    }
    if (auth && key && !publicKey && prepared.some((p) => p.interceptor)) {
      // SDK interceptors verify with the public half of the given key.
      publicKey = createPublicKey(createPrivateKey(await readFile(key.privateKeyPath, 'utf8')));
    }

    const transports = new Map<string, InterceptorTransport>();
    const addresses: Record<string, string> = {};
    let sockDir: string | undefined;
    const tables: Record<string, unknown>[] = [];
    for (const p of prepared) {
      const audience = (p.table.audience as string | undefined) ?? defaultAudience(p.name);
      const secure = auth && (p.interceptor !== undefined || options.signingKey !== undefined);
      const table: Record<string, unknown> = { name: p.name, ...p.table, allow_insecure_transport: !secure };
      if (p.interceptor) {
        const verifier =
          secure && publicKey
            ? await createTokenVerifier({ audience, gatewayId, publicKey, keyId: key?.keyId })
            : undefined;
        if (mode === 'in-process') {
          table.grpc_endpoint = 'http://in-process.invalid:1';
          transports.set(p.name, inProcessTransport(p.interceptor, verifier ? { verifier } : {}));
        } else {
          let listen = '127.0.0.1:0';
          if (options.listen === 'unix') {
            if (!sockDir) {
              const dir = await mkdtemp(join(tmpdir(), 'openshell-gw-'));
              cleanups.push(() => rm(dir, { recursive: true, force: true }));
              sockDir = dir;
            }
            listen = `unix://${join(sockDir, `${tables.length}.sock`)}`;
          }
          const server: RunningServer = await serve(p.interceptor, {
            listen,
            logger: silentLogger(),
            ...(secure && publicKey
              ? { auth: { audience, gatewayId, publicKey, ...(key ? { keyId: key.keyId } : {}) } }
              : { insecure: true }),
          });
          cleanups.push(() => server.close({ graceMs: 1000 }));
          addresses[p.name] = server.address;
          table.grpc_endpoint = server.address.startsWith('unix://')
            ? server.address
            : `http://${server.address}`;
        }
      }
      tables.push(table);
    }

    const gw: Record<string, unknown> = { gateway_id: gatewayId, interceptors: tables };
    if (options.providerProfileSources)
      gw.provider_profile_sources = options.providerProfileSources.map((s) =>
        s === 'builtin' || s === 'user' ? { type: s } : { type: 'interceptor', name: s },
      );
    if (auth && key) {
      gw.jwt_private_key_path = key.privateKeyPath;
      gw.jwt_key_id = key.keyId;
    }
    const config = gatewayConfigFromObject(gw, { source: 'testGateway' });
    const memory = options.logger ? undefined : memoryLogger();
    const runtime = await createGateway(config, {
      transport: (ic) => transports.get(ic.name),
      logger: options.logger ?? (memory as { logger: pino.Logger }).logger,
      ...(options.providerProfiles ? { providerProfiles: options.providerProfiles } : {}),
    });
    cleanups.push(() => runtime.close());

    const defaultPrincipal = options.principal ?? principals.user();
    let closed: Promise<void> | undefined;
    return {
      gateway: runtime,
      plan: runtime.plan,
      config,
      logs: memory?.lines ?? [],
      addresses,
      async call(method, request, callOptions = {}) {
        const r = route(method);
        const req = (request ?? requestFixture(method)) as JsonObject;
        const respond = callOptions.response;
        const outcome = await runtime.intercept({
          method,
          service: r.service,
          principal: callOptions.principal ?? defaultPrincipal,
          request: req,
          ...(callOptions.signal ? { signal: callOptions.signal } : {}),
          ...(callOptions.commit === false
            ? {}
            : {
                commit: async (finalRequest: JsonObject) => {
                  if (typeof respond === 'function')
                    return respond(
                      finalRequest as InterceptableRpcTypes[typeof method]['request'],
                    ) as JsonObject;
                  return (respond ?? responseFixture(method)) as JsonObject;
                },
              }),
        });
        return { ...outcome, method };
      },
      close() {
        closed ??= cleanup();
        return closed;
      },
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
