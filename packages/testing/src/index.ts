// @openshell-interceptors/testing: test interceptors with exactly the gateway's semantics.
// Matchers for vitest: `import '@openshell-interceptors/testing/vitest'`.

export {
  CHECK_IDS,
  CheckError,
  type CheckId,
  type CheckOptions,
  type CheckReport,
  checkInterceptorService,
  type Finding,
  type FindingStatus,
  type LatencySummary,
} from './check.js';
export {
  type Answer,
  type CallOverrides,
  type ConnectAuth,
  type ConnectOptions,
  connectInterceptor,
  EndpointError,
  type InterceptorConnection,
  type ParsedEndpoint,
  parseEndpoint,
} from './connect.js';
export {
  type Fault,
  type FaultKind,
  type FaultScope,
  faults,
  type RawPatch,
  withFaults,
} from './faults.js';
export {
  type JsonObject,
  type Overlay,
  principals,
  REQUEST_FIXTURES,
  RESPONSE_FIXTURES,
  requestFixture,
  responseFixture,
} from './fixtures.js';
export {
  type CallOptions,
  type CallResult,
  type TestBindingEntry,
  type TestBreakerSettings,
  type TestEndpointEntry,
  type TestGateway,
  type TestGatewayInterceptor,
  type TestGatewayOptions,
  type TestInterceptorEntry,
  type TestInterceptorSettings,
  type TestTransport,
  testGateway,
} from './gateway.js';
export { type InProcessTransportOptions, inProcessTransport } from './in-process.js';
export { createTestSigningKey, type TestSigningKey } from './keys.js';
export type { LogLine } from './logs.js';
export {
  type AnnotationFilter,
  describeEvaluations,
  type InterceptorMatchers,
  interceptorMatchers,
  type MatcherContext,
  type MatcherResult,
} from './matchers.js';
export { type SpawnedInterceptor, type SpawnOptions, spawnInterceptor } from './spawn.js';
export {
  type CaseExpectation,
  type CaseResult,
  checkCase,
  type EvaluationExpectation,
  loadSuite,
  runCase,
  runSuite,
  SUITE_API_VERSION,
  SUITE_KIND,
  type SuiteCase,
  SuiteError,
  type SuiteInterceptorSpec,
  type SuiteResult,
  type SuiteSpec,
  startSuiteGateway,
} from './suite.js';
