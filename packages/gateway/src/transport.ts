import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import {
  DescribeRequest,
  encodeEvaluation,
  type GrpcCodeName,
  grpcCodeName,
  type InterceptorEvaluation,
  InterceptorManifest,
  InterceptorResult,
  ProviderProfileSnapshot,
  ProviderProfileSnapshotRequest,
} from '@openshell-interceptors/protocol';
import type { InterceptorConfig } from './config.js';
import { TransportError } from './errors.js';

/** What every call to an interceptor carries. */
export interface TransportCall {
  readonly signal: AbortSignal;
  /** Absolute deadline, epoch ms; sent as `grpc-timeout` too. */
  readonly deadline: number;
  /** gRPC metadata, e.g. `authorization: Bearer <jwt>`. */
  readonly metadata: Readonly<Record<string, string>>;
  /** The receive limit; a larger answer is a failure. */
  readonly maxResponseBytes: number;
}

/**
 * How the runtime talks to one interceptor. The default is a gRPC client; tests and the
 * in-process harness supply their own. Failures reject with a `TransportError` (or any
 * error with a gRPC `code` name).
 */
export interface InterceptorTransport {
  describe(call: TransportCall): Promise<InterceptorManifest>;
  evaluate(
    ev: InterceptorEvaluation,
    call: TransportCall,
  ): Promise<{ result: InterceptorResult; encodedBytes: number }>;
  snapshotProviderProfiles(
    call: TransportCall,
  ): Promise<{ snapshot: ProviderProfileSnapshot; encodedBytes: number }>;
  close(): Promise<void>;
}

const SERVICE = '/openshell.gateway_interceptor.v1.GatewayInterceptor';

interface Sized<T> {
  readonly message: T;
  readonly encodedBytes: number;
}

function sized<T>(decode: (b: Uint8Array) => T): (b: Buffer) => Sized<T> {
  return (b) => ({ message: decode(b), encodedBytes: b.length });
}

/**
 * The failure layer of a status a call ended with: grpc-js reports connection problems
 * (refused, reset, closed) as UNAVAILABLE or CANCELLED; any other status is the service's answer.
 */
export function statusFailureLayer(code: GrpcCodeName): 'transport' | 'status' {
  return code === 'UNAVAILABLE' || code === 'CANCELLED' ? 'transport' : 'status';
}

/** A grpc-js ServiceError (or anything else) as a TransportError with a code name. */
export function toTransportError(e: unknown, timeoutMs?: number): TransportError {
  if (e instanceof TransportError) return e;
  const err = e as Partial<grpc.ServiceError> & { message?: string };
  if (typeof err.code === 'number') {
    const code = grpcCodeName(err.code) ?? 'UNKNOWN';
    const details = err.details || err.message || code;
    if (code === 'DEADLINE_EXCEEDED')
      return new TransportError(
        code,
        `no answer within ${timeoutMs ?? '?'}ms (DEADLINE_EXCEEDED)`,
        'deadline',
      );
    if (code === 'RESOURCE_EXHAUSTED' && /larger than max/i.test(details))
      return new TransportError(code, `response too large: ${details}`, 'size');
    return new TransportError(code, `${code}: ${details}`, statusFailureLayer(code));
  }
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && /^[A-Z_]+$/.test(code))
    return new TransportError(code as GrpcCodeName, `${code}: ${err.message ?? ''}`, 'status');
  return new TransportError('UNKNOWN', `transport error: ${err.message ?? String(e)}`, 'transport');
}

/** Channel credentials and options for an interceptor endpoint (CA file read here). */
async function channelFor(
  ic: InterceptorConfig,
): Promise<{ creds: grpc.ChannelCredentials; options: grpc.ChannelOptions }> {
  const options: grpc.ChannelOptions = {
    'grpc.max_receive_message_length': ic.maxResponseBytes,
    // Never retry an Evaluate, not even transparently (CONTRACT section 6, ours).
    'grpc.enable_retries': 0,
    // Reconnect soon after an interceptor restarts; the breaker, not the channel, paces probes.
    'grpc.initial_reconnect_backoff_ms': 250,
    'grpc.max_reconnect_backoff_ms': 5_000,
  };
  if (ic.endpoint.kind !== 'https') return { creds: grpc.credentials.createInsecure(), options };
  let ca: Buffer | null = null;
  if (ic.tlsCaCertPath !== undefined) {
    try {
      ca = await readFile(ic.tlsCaCertPath);
    } catch (e) {
      throw new Error(`cannot read tls_ca_cert_path ${ic.tlsCaCertPath}: ${(e as Error).message}`);
    }
  }
  // With a CA the platform roots are replaced; the host name is still verified by grpc-js.
  return { creds: grpc.credentials.createSsl(ca), options };
}

/** The default transport: one gRPC channel per interceptor. */
export async function createGrpcTransport(ic: InterceptorConfig): Promise<InterceptorTransport> {
  const { creds, options } = await channelFor(ic);
  const client = new grpc.Client(ic.endpoint.target, creds, options);
  const timeoutMs = ic.timeoutMs;

  function unary<Req, Res>(
    method: string,
    serialize: (r: Req) => Buffer,
    decode: (b: Uint8Array) => Res,
    request: Req,
    call: TransportCall,
  ): Promise<Sized<Res>> {
    return new Promise((resolve, reject) => {
      if (call.signal.aborted) {
        reject(new TransportError('CANCELLED', 'cancelled before the call started', 'cancelled'));
        return;
      }
      const md = new grpc.Metadata();
      for (const [k, v] of Object.entries(call.metadata)) md.set(k, v);
      const onAbort = () => c.cancel();
      const c = client.makeUnaryRequest<Req, Sized<Res>>(
        `${SERVICE}/${method}`,
        serialize,
        sized(decode),
        request,
        md,
        { deadline: new Date(call.deadline) },
        (err, res) => {
          call.signal.removeEventListener('abort', onAbort);
          if (err || !res) reject(toTransportError(err ?? new Error('empty response'), timeoutMs));
          else resolve(res);
        },
      );
      call.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  return {
    async describe(call) {
      const r = await unary(
        'Describe',
        (m: DescribeRequest) => Buffer.from(DescribeRequest.encode(m).finish()),
        (b) => InterceptorManifest.decode(b),
        {},
        call,
      );
      return r.message;
    },
    async evaluate(ev, call) {
      const r = await unary('Evaluate', encodeEvaluation, (b) => InterceptorResult.decode(b), ev, call);
      return { result: r.message, encodedBytes: r.encodedBytes };
    },
    async snapshotProviderProfiles(call) {
      const r = await unary(
        'SnapshotProviderProfiles',
        (m: ProviderProfileSnapshotRequest) => Buffer.from(ProviderProfileSnapshotRequest.encode(m).finish()),
        (b) => ProviderProfileSnapshot.decode(b),
        {},
        call,
      );
      return { snapshot: r.message, encodedBytes: r.encodedBytes };
    },
    async close() {
      client.close();
    },
  };
}
