import {
  type JsonObject,
  type JsonValue,
  operationView,
  parseProtoJson,
  ROUTES,
} from '@openshell-interceptors/protocol';
import {
  type Interceptor,
  type InterceptorBuilder,
  interceptor,
  type Principal,
  principalList,
} from '@openshell-interceptors/sdk';
import { AuditLog, type AuditSink, FileSink, type FileSinkOptions, StreamSink } from './log.js';

/** Who made the call, as the gateway authenticated them. */
export interface AuditActor {
  readonly kind: Principal['kind'];
  readonly subject?: string;
  readonly display_name?: string;
  readonly provider?: string;
  readonly roles?: readonly string[];
  readonly sandbox_id?: string;
  readonly trust_domain?: string;
}

/** The resource the committed response names, when it names one. */
export interface AuditTarget {
  readonly workspace?: string;
  readonly name?: string;
  readonly id?: string;
  readonly sandbox?: string;
  readonly service?: string;
  readonly provider?: string;
}

/** One line of the audit log: who did what, when, and what the gateway committed. */
export interface AuditRecord {
  /** When the interceptor observed the commit (ISO 8601, UTC). */
  readonly time: string;
  /** Per-process sequence number: a gap in it means a dropped record. */
  readonly seq: number;
  /** `openshell.v1.OpenShell/<Method>`. */
  readonly rpc: string;
  readonly who: AuditActor;
  readonly what: { readonly method: string } & AuditTarget;
  /** The committed response as ProtoJSON, secrets removed (null when too large or unreadable). */
  readonly result: JsonObject | null;
  /** Why `result` is null. */
  readonly result_omitted?: string;
}

export interface AuditOptions {
  /** Where lines go: a sink, or a file path with rotation (default: stdout). */
  readonly sink?: AuditSink;
  readonly file?: string;
  readonly fileOptions?: FileSinkOptions;
  /** Records waiting for the sink before new ones are dropped (default 10000). */
  readonly maxQueue?: number;
  /** Largest `result` kept, in bytes of JSON; a larger one is replaced by its size (default 64 KiB). */
  readonly maxResultBytes?: number;
  /** Interceptor name (default `audit`). */
  readonly name?: string;
  /** Clock (tests). */
  readonly now?: () => Date;
}

export interface AuditInterceptor extends Interceptor {
  /** The queue and its counters (written, dropped, failed, queued). */
  readonly auditLog: AuditLog;
}

function actor(p: Principal): AuditActor {
  switch (p.kind) {
    case 'user': {
      const roles = principalList(p.roles);
      return {
        kind: 'user',
        subject: p.subject,
        ...(p.display_name ? { display_name: p.display_name } : {}),
        ...(p.provider ? { provider: p.provider } : {}),
        ...(roles.length ? { roles } : {}),
      };
    }
    case 'sandbox':
      return {
        kind: 'sandbox',
        sandbox_id: p.sandbox_id,
        ...(p.trust_domain ? { trust_domain: p.trust_domain } : {}),
      };
    default:
      return { kind: p.kind };
  }
}

function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: JsonValue | undefined): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** The resource a response names: the `metadata` of its first resource field, plus sandbox/service references. */
export function auditTarget(view: JsonObject): AuditTarget {
  const t: { -readonly [K in keyof AuditTarget]: AuditTarget[K] } = {};
  for (const v of Object.values(view)) {
    if (!isObject(v)) continue;
    const md = v.metadata;
    if (isObject(md)) {
      t.workspace ??= str(md.workspace);
      t.name ??= str(md.name);
      t.id ??= str(md.id);
    }
    t.sandbox ??= str(v.sandboxName);
    t.service ??= str(v.serviceName);
    t.provider ??= str(v.providerName);
  }
  t.sandbox ??= str(view.sandboxId);
  for (const k of Object.keys(t) as (keyof AuditTarget)[]) if (t[k] === undefined) delete t[k];
  return t;
}

/**
 * The view again through the schema: it is already secret-free when the gateway
 * keeps the contract, and this makes sure of it (defence in depth for an audit log,
 * which is kept for years).
 */
function secretFree(responseType: string, view: JsonObject): JsonObject {
  return operationView(responseType, parseProtoJson(responseType, view));
}

/**
 * The audit interceptor: a post_commit observer of every interceptable RPC (all 25)
 * that appends one JSON line per committed operation. It never denies and never
 * waits for the disk: records go through a bounded queue, dropped and counted when
 * the queue is full.
 */
export function createAuditInterceptor(options: AuditOptions = {}): AuditInterceptor {
  const sink: AuditSink =
    options.sink ??
    (options.file ? new FileSink(options.file, options.fileOptions) : new StreamSink(process.stdout, 1));
  const maxResultBytes = options.maxResultBytes ?? 64 * 1024;
  const now = options.now ?? (() => new Date());
  let warnedAt = 0;
  const log = new AuditLog(sink, {
    ...(options.maxQueue !== undefined ? { maxQueue: options.maxQueue } : {}),
    onProblem: ({ kind, count, error }) => {
      // At most one line a minute on stderr; the counters keep the exact numbers.
      if (Date.now() - warnedAt < 60_000) return;
      warnedAt = Date.now();
      const cause = error instanceof Error ? `: ${error.message}` : '';
      process.stderr.write(
        kind === 'dropped'
          ? `audit: queue full, dropped ${count} record(s) so far\n`
          : `audit: writing ${count} record(s) failed${cause}\n`,
      );
    },
  });
  let seq = 0;
  let b: InterceptorBuilder = interceptor(options.name ?? 'audit');
  for (const r of ROUTES) {
    b = b.observe(r.method, ({ operation, principal, rpc, annotate }) => {
      const n = ++seq;
      let result: JsonObject | null = null;
      let omitted: string | undefined;
      try {
        result = secretFree(r.responseType, operation as JsonObject);
      } catch (err) {
        omitted = `not a valid ${r.responseType}: ${(err as Error).message}`;
      }
      if (result) {
        const size = Buffer.byteLength(JSON.stringify(result));
        if (size > maxResultBytes) {
          result = null;
          omitted = `${size} bytes, over the ${maxResultBytes}-byte limit`;
        }
      }
      const record: AuditRecord = {
        time: now().toISOString(),
        seq: n,
        rpc,
        who: actor(principal),
        what: { method: r.method, ...(result ? auditTarget(result) : {}) },
        result,
        ...(omitted ? { result_omitted: omitted } : {}),
      };
      annotate('audit', log.append(JSON.stringify(record)) ? `seq ${n}` : `dropped seq ${n}`);
    });
  }
  return Object.assign(b, { auditLog: log });
}

/**
 * Options from the environment, for the default export: `AUDIT_FILE` (else stdout),
 * `AUDIT_MAX_BYTES`, `AUDIT_MAX_FILES`, `AUDIT_FSYNC` (`true`/`false`), `AUDIT_MAX_QUEUE`,
 * `AUDIT_MAX_RESULT_BYTES`.
 */
export function auditOptionsFromEnv(env: NodeJS.ProcessEnv): AuditOptions {
  const int = (name: string, min: number): number | undefined => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min)
      throw new Error(`${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return n;
  };
  const fileOptions: { -readonly [K in keyof FileSinkOptions]: FileSinkOptions[K] } = {};
  const maxBytes = int('AUDIT_MAX_BYTES', 1);
  if (maxBytes !== undefined) fileOptions.maxBytes = maxBytes;
  const maxFiles = int('AUDIT_MAX_FILES', 1);
  if (maxFiles !== undefined) fileOptions.maxFiles = maxFiles;
  if (env.AUDIT_FSYNC !== undefined && env.AUDIT_FSYNC !== '') {
    if (env.AUDIT_FSYNC !== 'true' && env.AUDIT_FSYNC !== 'false')
      throw new Error(`AUDIT_FSYNC must be true or false, got ${JSON.stringify(env.AUDIT_FSYNC)}`);
    fileOptions.fsync = env.AUDIT_FSYNC === 'true';
  }
  if (!env.AUDIT_FILE && Object.keys(fileOptions).length > 0)
    throw new Error('AUDIT_MAX_BYTES, AUDIT_MAX_FILES and AUDIT_FSYNC need AUDIT_FILE');
  const maxQueue = int('AUDIT_MAX_QUEUE', 1);
  const maxResultBytes = int('AUDIT_MAX_RESULT_BYTES', 0);
  return {
    ...(env.AUDIT_FILE ? { file: env.AUDIT_FILE, fileOptions } : {}),
    ...(maxQueue !== undefined ? { maxQueue } : {}),
    ...(maxResultBytes !== undefined ? { maxResultBytes } : {}),
  };
}
