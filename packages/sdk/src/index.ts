// @openshell-interceptors/sdk: write OpenShell gateway interceptor services.

export type {
  DenialCodeName,
  FailurePolicy,
  GrpcCodeName,
  InterceptableMethod,
  InterceptableRpcTypes,
  InterceptorEvaluation,
  InterceptorManifest,
  InterceptorResult,
  JsonObject,
  JsonValue,
  Phase,
  Principal,
  PrincipalKind,
  ProviderProfileSnapshot,
} from '@openshell-interceptors/protocol';
export { principalList, principalSubject } from '@openshell-interceptors/protocol';
export {
  AuthError,
  type AuthFailureReason,
  createTokenVerifier,
  type TokenVerifier,
  type TokenVerifierOptions,
  type VerifiedToken,
} from './auth.js';
export { compose } from './compose.js';
export { type ContractRule, ContractViolationError, EvaluateError } from './errors.js';
export { defaultBindingId, type InterceptorBuilder, interceptor } from './interceptor.js';
export {
  type AllowDecision,
  type AllowOptions,
  type Annotations,
  allow,
  type Decision,
  type DenyDecision,
  deny,
  type Patch,
  type PatchOp,
  type PathInput,
  patch,
  pointer,
} from './results.js';
export { operationLabels } from './selector.js';
export {
  type RunningServer,
  type ServeAuthOptions,
  type ServeOptions,
  type ServeTlsOptions,
  serve,
} from './serve.js';
export type {
  BindingOptions,
  DeepReadonly,
  EvaluateContext,
  HandlerContextBase,
  HandlerReturn,
  Interceptor,
  InterceptorOptions,
  ModifyContext,
  ModifyHandler,
  ObserveContext,
  ObserveHandler,
  ProviderProfileInput,
  ProviderProfilesOptions,
  ProviderProfilesProvider,
  ProviderProfilesResult,
  RequestView,
  ResponseView,
  Selector,
  SelectorInput,
  ValidateContext,
  ValidateHandler,
} from './types.js';
