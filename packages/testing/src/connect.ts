import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { TokenMinter } from '@openshell-interceptors/gateway';
import {
  DEFAULT_GATEWAY_ID,
  DEFAULT_TOKEN_TTL_SECONDS,
  DescribeRequest,
  type GrpcCodeName,
  gatewayIssuer,
  grpcCodeName,
  InterceptorEvaluation,
  InterceptorManifest,
  InterceptorResult,
  ProviderProfileSnapshot,
  ProviderProfileSnapshotRequest,
} from '@openshell-interceptors/protocol';

const SERVICE = '/openshell.gateway_interceptor.v1.GatewayInterceptor';

/** Where an interceptor service listens, as a gateway `grpc_endpoint` and a grpc-js target. */
export interface ParsedEndpoint {
  readonly kind: 'http' | 'https' | 'unix';
  /** The gateway form: `http://host:port`, `https://host:port` or `unix:///path`. */
  readonly endpoint: string;
  /** The grpc-js target: `host:port` or `unix:///path`. */
  readonly target: string;
}

/** A bad endpoint string (a usage error). */
export class EndpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EndpointError';
  }
}

/** Parse `host:port`, `http://host:port`, `https://host:port` or `unix:///absolute/path`. */
export function parseEndpoint(text: string): ParsedEndpoint {
  const m = /^(http|https|unix):\/\/(.*)$/.exec(text);
  if (m?.[1] === 'unix') {
    const path = m[2] ?? '';
    if (!isAbsolute(path) || path === '/')
      throw new EndpointError(`endpoint ${JSON.stringify(text)}: unix:// needs an absolute socket path`);
    return { kind: 'unix', endpoint: `unix://${path}`, target: `unix://${path}` };
  }
  const scheme = (m?.[1] ?? 'http') as 'http' | 'https';
  const rest = m ? (m[2] ?? '') : text;
  const hp = /^(\[[0-9A-Fa-f:.]+\]|[^:/[\]\s]+):(\d{1,5})\/?$/.exec(rest);
  if (!hp || Number(hp[2]) > 65535 || Number(hp[2]) === 0)
    throw new EndpointError(
      `endpoint ${JSON.stringify(text)}: expected host:port, http://host:port, https://host:port or unix:///path`,
    );
  const authority = `${hp[1]}:${hp[2]}`;
  return { kind: scheme, endpoint: `${scheme}://${authority}`, target: authority };
}

/** How to authenticate as the gateway: an Ed25519 private key (PKCS#8 PEM file) and the token's claims. */
export interface ConnectAuth {
  readonly privateKeyPath: string;
  readonly keyId: string;
  /** The interceptor's audience (exactly what the service accepts). */
  readonly audience: string;
  /** Default `openshell`. */
  readonly gatewayId?: string;
}

export interface ConnectOptions {
  /** https only: a PEM CA file that replaces the platform roots. */
  readonly caPath?: string;
  readonly auth?: ConnectAuth;
  /** Per-call deadline (default 5 s). */
  readonly timeoutMs?: number;
  /** Receive limit (default 64 MiB, so an oversized answer can still be measured). */
  readonly maxReceiveBytes?: number;
}

/** A call's answer: the decoded message and its encoded size, or the status it failed with. */
export type Answer<T> =
  | { readonly ok: true; readonly message: T; readonly bytes: number; readonly ms: number }
  | { readonly ok: false; readonly code: GrpcCodeName; readonly details: string; readonly ms: number };

export interface CallOverrides {
  /** Replace the metadata (e.g. a forged token); `{}` sends none. Default: a good token when auth is set. */
  readonly metadata?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

/** A low-level client of one interceptor service, for conformance checks and `describe`. */
export interface InterceptorConnection {
  readonly endpoint: ParsedEndpoint;
  /** A valid gateway token (minted from the given key), or undefined without auth. */
  token(): Promise<string | undefined>;
  describe(o?: CallOverrides): Promise<Answer<InterceptorManifest>>;
  evaluate(ev: InterceptorEvaluation, o?: CallOverrides): Promise<Answer<InterceptorResult>>;
  snapshotProviderProfiles(o?: CallOverrides): Promise<Answer<ProviderProfileSnapshot>>;
  /** Send arbitrary bytes as a method's request (bad-input checks). */
  raw(
    method: 'Describe' | 'Evaluate' | 'SnapshotProviderProfiles',
    body: Buffer,
    o?: CallOverrides,
  ): Promise<Answer<Buffer>>;
  close(): void;
}

/** Open a gRPC channel to an interceptor service. */
export async function connectInterceptor(
  endpoint: string | ParsedEndpoint,
  options: ConnectOptions = {},
): Promise<InterceptorConnection> {
  const ep = typeof endpoint === 'string' ? parseEndpoint(endpoint) : endpoint;
  let creds = grpc.credentials.createInsecure();
  if (ep.kind === 'https') {
    let ca: Buffer | null = null;
    if (options.caPath !== undefined) {
      try {
        ca = await readFile(options.caPath);
      } catch (e) {
        throw new EndpointError(`cannot read the CA file ${options.caPath}: ${(e as Error).message}`);
      }
    }
    creds = grpc.credentials.createSsl(ca);
  } else if (options.caPath !== undefined) {
    throw new EndpointError('a CA file is only used with an https:// endpoint');
  }
  let minter: TokenMinter | undefined;
  const auth = options.auth;
  if (auth) {
    try {
      minter = await TokenMinter.fromKeyFile(
        auth.privateKeyPath,
        auth.keyId,
        gatewayIssuer(auth.gatewayId ?? DEFAULT_GATEWAY_ID),
        DEFAULT_TOKEN_TTL_SECONDS,
      );
    } catch (e) {
      throw new EndpointError((e as Error).message);
    }
  }
  const client = new grpc.Client(ep.target, creds, {
    'grpc.max_receive_message_length': options.maxReceiveBytes ?? 64 * 1024 * 1024,
    'grpc.enable_retries': 0,
  });
  const token = async () => (minter && auth ? minter.token(auth.audience) : undefined);

  async function call(method: string, body: Buffer, o: CallOverrides = {}): Promise<Answer<Buffer>> {
    const md = new grpc.Metadata();
    const metadata = o.metadata ?? (minter ? { authorization: `Bearer ${await token()}` } : {});
    for (const [k, v] of Object.entries(metadata)) md.set(k, v);
    const started = performance.now();
    return new Promise((resolve) => {
      client.makeUnaryRequest<Buffer, Buffer>(
        `${SERVICE}/${method}`,
        (b) => b,
        (b) => b,
        body,
        md,
        { deadline: new Date(Date.now() + (o.timeoutMs ?? options.timeoutMs ?? 5_000)) },
        (err, res) => {
          const ms = performance.now() - started;
          if (err || !res)
            resolve({
              ok: false,
              code: grpcCodeName(err?.code ?? grpc.status.UNKNOWN) ?? 'UNKNOWN',
              details: err?.details || err?.message || 'no response',
              ms,
            });
          else resolve({ ok: true, message: res, bytes: res.length, ms });
        },
      );
    });
  }

  function typed<T>(a: Answer<Buffer>, decode: (b: Uint8Array) => T): Answer<T> {
    if (!a.ok) return a;
    try {
      return { ...a, message: decode(a.message) };
    } catch (e) {
      return {
        ok: false,
        code: 'INTERNAL',
        details: `the answer does not decode: ${(e as Error).message}`,
        ms: a.ms,
      };
    }
  }

  return {
    endpoint: ep,
    token,
    async describe(o) {
      const a = await call('Describe', Buffer.from(DescribeRequest.encode({}).finish()), o);
      return typed(a, (b) => InterceptorManifest.decode(b));
    },
    async evaluate(ev, o) {
      const a = await call('Evaluate', Buffer.from(InterceptorEvaluation.encode(ev).finish()), o);
      return typed(a, (b) => InterceptorResult.decode(b));
    },
    async snapshotProviderProfiles(o) {
      const a = await call(
        'SnapshotProviderProfiles',
        Buffer.from(ProviderProfileSnapshotRequest.encode({}).finish()),
        o,
      );
      return typed(a, (b) => ProviderProfileSnapshot.decode(b));
    },
    raw: (method, body, o) => call(method, body, o),
    close: () => client.close(),
  };
}
