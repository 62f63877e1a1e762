/** The 17 canonical gRPC status code names, indexed by their numbers. */
export const GRPC_CODE_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;

export type GrpcCodeName = (typeof GRPC_CODE_NAMES)[number];
/** Codes a denial may carry: every canonical code but OK (a refusal cannot succeed). */
export type DenialCodeName = Exclude<GrpcCodeName, 'OK'>;

const BY_NAME = new Map<string, number>(GRPC_CODE_NAMES.map((n, i) => [n, i]));

export function isGrpcCodeName(name: string): name is GrpcCodeName {
  return BY_NAME.has(name);
}

export function grpcCodeNumber(name: GrpcCodeName): number {
  return BY_NAME.get(name) as number;
}

export function grpcCodeName(code: number): GrpcCodeName | undefined {
  return GRPC_CODE_NAMES[code];
}

/** `status_code` as the gateway reads it: trimmed and upper-cased; undefined when not a canonical name. */
export function normalizeStatusCode(statusCode: string): GrpcCodeName | undefined {
  const n = statusCode.trim().toUpperCase();
  return isGrpcCodeName(n) ? n : undefined;
}

export const DEFAULT_DENIAL_CODE: DenialCodeName = 'PERMISSION_DENIED';
export const DEFAULT_DENIAL_MESSAGE = 'operation denied by gateway interceptor';

/**
 * The status an API caller sees for a denial: the named code (empty, unknown or OK →
 * PERMISSION_DENIED) and the reason (blank → the gateway's generic message).
 */
export function denialStatus(statusCode: string, reason: string): { code: DenialCodeName; message: string } {
  const n = normalizeStatusCode(statusCode);
  return {
    code: n === undefined || n === 'OK' ? DEFAULT_DENIAL_CODE : n,
    message: reason.trim() === '' ? DEFAULT_DENIAL_MESSAGE : reason,
  };
}
