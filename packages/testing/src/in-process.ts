import {
  type InterceptorTransport,
  statusFailureLayer,
  type TransportCall,
  TransportError,
} from '@openshell-interceptors/gateway';
import {
  decodeEvaluation,
  encodeEvaluation,
  InterceptorManifest,
  InterceptorResult,
  isGrpcCodeName,
  ProviderProfileSnapshot,
} from '@openshell-interceptors/protocol';
import {
  AuthError,
  ContractViolationError,
  type Interceptor,
  type TokenVerifier,
} from '@openshell-interceptors/sdk';

export interface InProcessTransportOptions {
  /** Check the gateway's bearer token on every call, as `serve` does. */
  readonly verifier?: TokenVerifier;
}

function causeOf(e: Error): string {
  const cause = (e as { cause?: unknown }).cause;
  return cause instanceof Error ? ` (cause: ${cause.message})` : '';
}

/**
 * What a gRPC client would have received for a rejection of the interceptor, as the
 * runtime's TransportError. In-process, the message keeps the contract violation or the
 * handler's error as the cause, so a failing test says why.
 */
export function asTransportError(e: unknown): TransportError {
  if (e instanceof TransportError) return e;
  if (e instanceof AuthError)
    return new TransportError('UNAUTHENTICATED', `UNAUTHENTICATED: ${e.message}`, 'status');
  if (e instanceof ContractViolationError)
    return new TransportError('INTERNAL', `INTERNAL: ${e.message}`, 'status');
  const code = (e as { code?: unknown }).code;
  if (e instanceof Error && typeof code === 'string' && isGrpcCodeName(code) && code !== 'OK')
    return new TransportError(code, `${code}: ${e.message}${causeOf(e)}`, statusFailureLayer(code));
  const message = e instanceof Error ? e.message : String(e);
  return new TransportError('INTERNAL', `INTERNAL: internal error: ${message}`, 'status');
}

/** Run `work`, but give up with CANCELLED when the call's signal aborts (as a cancelled RPC would). */
function cancellable<T>(call: TransportCall, work: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () =>
      reject(new TransportError('CANCELLED', 'CANCELLED: the call was cancelled', 'cancelled'));
    if (call.signal.aborted) {
      onAbort();
      return;
    }
    call.signal.addEventListener('abort', onAbort, { once: true });
    work().then(
      (v) => {
        call.signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        call.signal.removeEventListener('abort', onAbort);
        reject(asTransportError(e));
      },
    );
  });
}

/**
 * An InterceptorTransport that calls an SDK Interceptor directly: no sockets, but every
 * message goes through the protobuf codecs both ways, so the interceptor sees exactly what
 * arrives over gRPC and the runtime measures the encoded result against max_response_bytes.
 */
export function inProcessTransport(
  target: Interceptor,
  options: InProcessTransportOptions = {},
): InterceptorTransport {
  const { verifier } = options;
  const authenticate = async (call: TransportCall) => {
    if (verifier) await verifier.verify(call.metadata.authorization);
  };
  const ctx = (call: TransportCall) => ({ signal: call.signal, deadline: call.deadline });
  return {
    describe(call) {
      return cancellable(call, async () => {
        await authenticate(call);
        const m = target.manifest();
        const manifest = verifier ? { ...m, expectedAudience: verifier.audience } : m;
        return InterceptorManifest.decode(InterceptorManifest.encode(manifest).finish());
      });
    },
    evaluate(ev, call) {
      return cancellable(call, async () => {
        await authenticate(call);
        const received = decodeEvaluation(encodeEvaluation(ev));
        const result = await target.evaluate(received, ctx(call));
        const bytes = InterceptorResult.encode(result).finish();
        return { result: InterceptorResult.decode(bytes), encodedBytes: bytes.length };
      });
    },
    snapshotProviderProfiles(call) {
      return cancellable(call, async () => {
        await authenticate(call);
        const snapshot = await target.snapshotProviderProfiles(ctx(call));
        const bytes = ProviderProfileSnapshot.encode(snapshot).finish();
        return { snapshot: ProviderProfileSnapshot.decode(bytes), encodedBytes: bytes.length };
      });
    },
    async close() {},
  };
}
