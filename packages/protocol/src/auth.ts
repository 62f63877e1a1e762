/** Facts of the gateway → interceptor bearer token (CONTRACT section 7). */
export const TOKEN_TYPE = 'openshell-ext+jwt';
export const TOKEN_ALGORITHM = 'EdDSA';
export const CALLER_KIND = 'gateway';
export const DEFAULT_GATEWAY_ID = 'openshell';
/** Default token lifetime, seconds. */
export const DEFAULT_TOKEN_TTL_SECONDS = 900;
/** Longest lifetime a service accepts, seconds. */
export const MAX_TOKEN_TTL_SECONDS = 3600;
/** Tokens are reused until this fraction of their lifetime has passed, then re-minted. */
export const TOKEN_REUSE_FRACTION = 0.8;

/** `iss` (and `sub`) for a gateway id: `openshell-gateway:<gateway_id>`. */
export function gatewayIssuer(gatewayId: string = DEFAULT_GATEWAY_ID): string {
  return `openshell-gateway:${gatewayId}`;
}

/** The default audience of an interceptor: `urn:openshell:extension:interceptor:<name>`. */
export function defaultAudience(interceptorName: string): string {
  return `urn:openshell:extension:interceptor:${interceptorName}`;
}

/** The failure policies a manifest or configuration may name. */
export type FailurePolicy = 'fail_closed' | 'fail_open';

export function isFailurePolicy(s: string): s is FailurePolicy {
  return s === 'fail_closed' || s === 'fail_open';
}
