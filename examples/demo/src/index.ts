export { BackendError, DemoBackend } from './backend.js';
export {
  type AuditLine,
  DemoAborted,
  type DemoEvent,
  type DemoOptions,
  type DemoResult,
  explain,
  runDemo,
  type ServiceInfo,
  type StepResult,
} from './run.js';
export { type CliLauncher, type RunningService, type ServiceSpec, startService } from './services.js';
export {
  type Actor,
  CAST,
  type CallStep,
  type Expectation,
  QUOTA_PER_USER,
  SERVICES,
  type ServiceName,
  STORY,
  type Step,
  type StopStep,
} from './story.js';
