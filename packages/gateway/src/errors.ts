import type { GrpcCodeName } from '@openshell-interceptors/protocol';

/**
 * Which part of the call path failed, as logged and recorded: the layers (deadline,
 * shed, breaker), the wire (transport: no answer; status: a non-OK answer; size), and
 * the checks on the answer (contract, patch, revalidate, struct).
 */
export type FailureLayer =
  | 'deadline'
  | 'shed'
  | 'breaker'
  | 'transport'
  | 'status'
  | 'size'
  | 'contract'
  | 'patch'
  | 'revalidate'
  | 'struct'
  | 'cancelled';

/**
 * A failed interceptor call, carrying the gRPC code name (the status the service
 * returned, or the one the failing layer stands for) and the layer.
 */
export class TransportError extends Error {
  constructor(
    readonly code: GrpcCodeName,
    message: string,
    readonly layer: FailureLayer = 'transport',
  ) {
    super(message);
    this.name = 'TransportError';
  }
}

/** The gateway refuses to start: names the interceptor (when one is at fault) and the problem. */
export class GatewayStartupError extends Error {
  constructor(
    readonly problem: string,
    readonly interceptor?: string,
  ) {
    super(interceptor === undefined ? problem : `interceptor '${interceptor}': ${problem}`);
    this.name = 'GatewayStartupError';
  }
}

/** CONTRACT section 9: UNAVAILABLE (transport) or FAILED_PRECONDITION (invalid snapshot). */
export class ProviderProfileError extends Error {
  constructor(
    readonly code: 'UNAVAILABLE' | 'FAILED_PRECONDITION',
    message: string,
    readonly source?: string,
  ) {
    super(message);
    this.name = 'ProviderProfileError';
  }
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
