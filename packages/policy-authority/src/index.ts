// RFC 0005 policy authority on interceptors: signed projections, the trust store
// that verifies them, the PolicyDriver SDK and the enforcing interceptor.

export {
  BUNDLE_FORMAT,
  BundleError,
  type BundleErrorCode,
  bundleToProjection,
  createBundle,
  formatBundle,
  type PolicyBundle,
  parseBundle,
  projectionToBundle,
  readBundleFile,
  verifyBundle,
  writeBundleFile,
} from './bundle.js';
export {
  type ConformanceFinding,
  type ConformanceOptions,
  type ConformanceReport,
  type FindingStatus,
  runDriverConformance,
} from './conformance.js';
export {
  DriverCallError,
  type DriverCallOptions,
  type DriverConnectionOptions,
  PolicyDriverConnection,
} from './driver/client.js';
export {
  definePolicyDriver,
  isNoVerifiedPolicy,
  type NoVerifiedPolicy,
  type PolicyDriver,
  type PolicyDriverCapabilities,
  type PolicyDriverDefinition,
  PolicyDriverError,
  type ProjectionOutcome,
  type RuntimeContext,
  UnknownHandleError,
} from './driver/define.js';
export {
  type DriverEndpoint,
  EndpointError,
  formatEndpoint,
  parseDriverEndpoint,
} from './driver/endpoint.js';
export {
  type RunningPolicyDriver,
  type ServePolicyDriverOptions,
  type ServeTlsOptions,
  servePolicyDriver,
} from './driver/server.js';
export {
  BadSignatureError,
  DigestMismatchError,
  MalformedBodyError,
  MalformedProjectionError,
  NoVerifiedPolicyError,
  ProjectionVerificationError,
  SurfaceNotAcceptedError,
  TrustStoreError,
  UnknownKeyIdError,
  UnsignedProjectionError,
  type VerificationFailureCode,
} from './errors.js';
export { FileFormatError, parseStructured, writeFileAtomic } from './files.js';
export {
  createPolicyAuthorityInterceptor,
  DRAFT_CHUNK_METHODS,
  POLICY_ANNOTATION_PREFIX,
  POLICY_ANNOTATIONS,
  type PolicyAuthority,
  type PolicyAuthorityOptions,
  policyAnnotations,
} from './interceptor/authority.js';
export { HandleJournal, type JournalEntry, sandboxKey } from './interceptor/journal.js';
export {
  generateSigningKey,
  isValidKeyId,
  publicJwk,
  type SigningKeyPair,
  toEd25519PrivateKey,
  toEd25519PublicKey,
} from './keys.js';
export {
  type BuildProjectionInput,
  buildProjection,
  decodePolicyBody,
  type EnvelopeFields,
  encodePolicy,
  PolicyInputError,
  type Projection,
  type ProjectionSigner,
  policyDigest,
  SANDBOX_POLICY_SURFACE,
  SANDBOX_POLICY_TYPE,
  signEnvelope,
  signingPayload,
  type VerifiedProjection,
  type VerifyOptions,
  verifyProjection,
} from './projection.js';
export { type TrustedKey, TrustStore } from './trust-store.js';
