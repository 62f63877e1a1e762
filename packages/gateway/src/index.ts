export { TokenMinter } from './auth.js';
export {
  type BindingEntry,
  type BindingPolicy,
  type BreakerConfig,
  DEFAULTS,
  type Endpoint,
  type GatewayConfig,
  GatewayConfigError,
  gatewayConfigFromObject,
  type InterceptorConfig,
  type JwtSigningConfig,
  loadGatewayConfig,
  type ProviderProfileSource,
  parseDuration,
  parseGatewayConfig,
  type Selector,
} from './config.js';
export {
  type FailureLayer,
  GatewayStartupError,
  ProviderProfileError,
  TransportError,
} from './errors.js';
export {
  createGateway,
  type Decision,
  type EvaluationRecord,
  type Gateway,
  type GatewayOptions,
  gatewayLogger,
  type InterceptCall,
  type InterceptOutcome,
} from './gateway.js';
export type { BreakerState } from './layers.js';
export type { PatchOp } from './patch.js';
export {
  type ExecutionPlan,
  type IgnoredBinding,
  PHASE_DEFAULT_POLICY,
  type PlannedBinding,
  type PlannedInterceptor,
  type PolicySource,
} from './plan.js';
export type {
  ProviderProfileCatalog,
  ProviderProfileInputs,
  ProviderProfileSourceSnapshot,
} from './profiles.js';
export {
  checkUnixSocket,
  type SocketCheck,
  SocketTrustError,
  type SocketTrustOptions,
} from './socket-trust.js';
export {
  createGrpcTransport,
  type InterceptorTransport,
  statusFailureLayer,
  type TransportCall,
} from './transport.js';
