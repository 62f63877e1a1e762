import { auditOptionsFromEnv, createAuditInterceptor } from './audit.js';

export {
  type AuditActor,
  type AuditInterceptor,
  type AuditOptions,
  type AuditRecord,
  type AuditTarget,
  auditOptionsFromEnv,
  auditTarget,
  createAuditInterceptor,
} from './audit.js';
export {
  AuditLog,
  type AuditLogOptions,
  type AuditLogStats,
  type AuditSink,
  FileSink,
  type FileSinkOptions,
  StreamSink,
} from './log.js';

/** The audit interceptor configured from AUDIT_* environment variables (see auditOptionsFromEnv). */
const audit = createAuditInterceptor(auditOptionsFromEnv(process.env));
export default audit;
