// Wire codecs (ts-proto) and grpc-js service definitions, under their proto names.

export {
  CALLER_KIND,
  DEFAULT_GATEWAY_ID,
  DEFAULT_TOKEN_TTL_SECONDS,
  defaultAudience,
  type FailurePolicy,
  gatewayIssuer,
  isFailurePolicy,
  MAX_TOKEN_TTL_SECONDS,
  TOKEN_ALGORITHM,
  TOKEN_REUSE_FRACTION,
  TOKEN_TYPE,
} from './auth.js';
export { decodeEvaluation, encodeEvaluation, encodeResult } from './evaluation-codec.js';
export { ListValue, Struct, Value } from './gen/google/protobuf/struct.js';
// ProtoJSON shapes of every message (`XJson`, and `XView` without secrets).
export * from './gen/json.js';
export * as datamodelV1 from './gen/openshell/datamodel/v1/datamodel.js';
export * from './gen/openshell/gateway_interceptor/v1/gateway_interceptor.js';
export * as policyDriverV1 from './gen/openshell/policy/driver/v1/policy_driver.js';
export * as sandboxV1 from './gen/openshell/sandbox/v1/sandbox.js';
export * as openshellV1 from './gen/openshell/v1/openshell.js';
export {
  type EvaluationPayload,
  evaluationPayload,
  evaluationPhaseFields,
  isPhase,
  PHASES,
  type Phase,
  phaseFromWire,
  phaseToWire,
} from './phase.js';
export {
  type CopyAlongOptions,
  copyAlongPointer,
  copyForPatchOperation,
  escapePointerToken,
  formatJsonPointer,
  JsonPointerError,
  parseJsonPointer,
  pointerTouchesSecret,
} from './pointer.js';
export {
  type AnonymousPrincipal,
  type Principal,
  type PrincipalKind,
  type PrincipalMap,
  principalList,
  principalSubject,
  readPrincipal,
  type SandboxPrincipal,
  type UnknownPrincipal,
  type UserAuthProvider,
  type UserPrincipal,
} from './principal.js';
export { ProtoJsonError, type ToJsonOptions } from './protojson.js';
export {
  normalizeProfileId,
  PROVIDER_PROFILE_SNAPSHOT_TAG,
  providerProfileRevision,
} from './provider-profiles.js';
export {
  findRoute,
  type InterceptableMethod,
  isInterceptableMethod,
  OPENSHELL_SERVICE,
  type OpenShellService,
  parseRpcSelector,
  ROUTES,
  type Route,
  RpcSelectorError,
  type RpcTypes,
  resolveRoute,
  route,
} from './routes.js';
export type { CompiledField, CompiledMessage } from './schema.js';
export { LIST_VALUE, Schema, STRUCT, schema, VALUE } from './schema.js';
export type { FieldSchema, MessageCodec, MessageSchema, ScalarType, SchemaTable } from './schema-types.js';
export {
  DEFAULT_DENIAL_CODE,
  DEFAULT_DENIAL_MESSAGE,
  type DenialCodeName,
  denialStatus,
  GRPC_CODE_NAMES,
  type GrpcCodeName,
  grpcCodeName,
  grpcCodeNumber,
  isGrpcCodeName,
  normalizeStatusCode,
} from './status.js';
export {
  type Canonical,
  canonicalize,
  canonicalJson,
  checkChangedProtoJson,
  codecFor,
  decodeMessage,
  emptyMessage,
  encodeMessage,
  operationView,
  parseProtoJson,
  toProtoJson,
} from './view.js';
