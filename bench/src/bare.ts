// The baseline: a GatewayInterceptor service written directly on @grpc/grpc-js, doing only
// what the benchmark needs (decode the evaluation, answer a fixed result), plus the same
// gateway-token check as the SDK, written directly on jose.
import { chmod } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import {
  CALLER_KIND,
  DEFAULT_GATEWAY_ID,
  type DescribeRequest,
  GatewayInterceptorService,
  gatewayIssuer,
  type InterceptorEvaluation,
  type InterceptorManifest,
  type InterceptorResult,
  MAX_TOKEN_TTL_SECONDS,
  type Phase,
  type ProviderProfileSnapshot,
  type ProviderProfileSnapshotRequest,
  phaseToWire,
  TOKEN_ALGORITHM,
  TOKEN_TYPE,
} from '@openshell-interceptors/protocol';
import { decodeProtectedHeader, importSPKI, jwtVerify } from 'jose';
import { ALLOW, ALLOW_WITH_PATCH } from './payload.js';

export interface BareAuth {
  readonly publicKeyPem: string;
  readonly keyId: string;
  readonly audience: string;
}

export interface BareSpec {
  readonly name: string;
  /** `host:port` or `unix:///path`. */
  readonly listen: string;
  /** Bindings on CreateSandbox advertised by Describe (id → phase). */
  readonly bindings?: readonly { readonly id: string; readonly phase: Phase }[];
  /** Wait this long before answering Evaluate (an interceptor doing I/O). */
  readonly delayMs?: number;
  /** Never answer Evaluate (a hung interceptor): the caller's deadline decides. */
  readonly hang?: boolean;
  readonly auth?: BareAuth;
  readonly failurePolicy?: string;
}

export interface RunningBare {
  readonly address: string;
  close(): Promise<void>;
}

class Unauthenticated extends Error {}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/**
 * The SDK's checks (CONTRACT section 7) on jose, with the same caching as the SDK: the key
 * is imported once, every token is verified on every call.
 */
async function bareVerifier(auth: BareAuth): Promise<(authorization: string | undefined) => Promise<void>> {
  const key = await importSPKI(auth.publicKeyPem, TOKEN_ALGORITHM);
  const issuer = gatewayIssuer(DEFAULT_GATEWAY_ID);
  const options = {
    algorithms: [TOKEN_ALGORITHM],
    issuer,
    audience: auth.audience,
    clockTolerance: 30,
    requiredClaims: ['iss', 'aud', 'exp', 'iat'],
  };
  return async (authorization) => {
    const m = authorization === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
    const token = m?.[1];
    if (!token || !JWT_SHAPE.test(token)) throw new Unauthenticated('malformed');
    const header = decodeProtectedHeader(token);
    if (header.alg !== TOKEN_ALGORITHM || header.typ !== TOKEN_TYPE || header.kid !== auth.keyId)
      throw new Unauthenticated('header');
    const { payload } = await jwtVerify(token, key, options);
    const { iat, exp } = payload;
    if (typeof payload.aud !== 'string' || typeof iat !== 'number' || typeof exp !== 'number')
      throw new Unauthenticated('claims');
    if (exp - iat > MAX_TOKEN_TTL_SECONDS || exp <= iat) throw new Unauthenticated('lifetime');
    if (iat > Date.now() / 1000 + 30) throw new Unauthenticated('not-yet-valid');
    if (payload.caller_kind !== CALLER_KIND) throw new Unauthenticated('caller_kind');
  };
}

function bind(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    );
  });
}

export async function startBare(spec: BareSpec): Promise<RunningBare> {
  const verify = spec.auth ? await bareVerifier(spec.auth) : undefined;
  const phases = new Map((spec.bindings ?? []).map((b) => [b.id, b.phase]));
  const manifest: InterceptorManifest = {
    name: spec.name,
    bindings: (spec.bindings ?? []).map((b) => ({
      id: b.id,
      selector: { rpc: 'openshell.v1.OpenShell/CreateSandbox', service: '', method: '' },
      phases: [phaseToWire(b.phase)],
      failurePolicy: '',
    })),
    failurePolicy: spec.failurePolicy ?? '',
    providerProfiles: false,
    expectedAudience: spec.auth?.audience ?? '',
  };
  const hung = new Set<() => void>();

  const server = new grpc.Server();
  server.addService(GatewayInterceptorService, {
    describe(
      _call: grpc.ServerUnaryCall<DescribeRequest, InterceptorManifest>,
      cb: grpc.sendUnaryData<InterceptorManifest>,
    ) {
      cb(null, manifest);
    },
    evaluate(
      call: grpc.ServerUnaryCall<InterceptorEvaluation, InterceptorResult>,
      cb: grpc.sendUnaryData<InterceptorResult>,
    ) {
      const answer = () => {
        const ev = call.request;
        if (!ev.modifyOperation && !ev.validate && !ev.postCommit) {
          cb({ code: grpc.status.INVALID_ARGUMENT, details: 'no phase' });
          return;
        }
        const phase = phases.get(ev.bindingId);
        cb(null, ev.modifyOperation && phase !== 'validate' ? ALLOW_WITH_PATCH : ALLOW);
      };
      if (spec.hang) {
        // Answer CANCELLED when the caller gives up, so the server can close.
        const release = () => {
          hung.delete(release);
          cb({ code: grpc.status.CANCELLED, details: 'released' });
        };
        hung.add(release);
        call.once('cancelled', release);
        return;
      }
      const run = () => (spec.delayMs ? setTimeout(answer, spec.delayMs) : answer());
      if (!verify) {
        run();
        return;
      }
      const v = call.metadata.get('authorization')[0];
      verify(typeof v === 'string' ? v : undefined).then(run, () =>
        cb({ code: grpc.status.UNAUTHENTICATED, details: 'gateway token rejected' }),
      );
    },
    snapshotProviderProfiles(
      _call: grpc.ServerUnaryCall<ProviderProfileSnapshotRequest, ProviderProfileSnapshot>,
      cb: grpc.sendUnaryData<ProviderProfileSnapshot>,
    ) {
      cb({ code: grpc.status.UNIMPLEMENTED, details: 'no provider profiles' });
    },
  } satisfies grpc.UntypedServiceImplementation);
  const port = await bind(server, spec.listen);
  let address = spec.listen;
  if (spec.listen.startsWith('unix://')) await chmod(spec.listen.slice('unix://'.length), 0o600);
  else address = `${spec.listen.slice(0, spec.listen.lastIndexOf(':'))}:${port}`;
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        for (const r of [...hung]) r();
        server.tryShutdown(() => resolve());
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2_000).unref();
      }),
  };
}
