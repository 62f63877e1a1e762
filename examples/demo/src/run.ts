import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { RedisQuotaStore } from '@openshell-interceptors/example-quota';
import {
  createGateway,
  type EvaluationRecord,
  type Gateway,
  type InterceptOutcome,
  loadGatewayConfig,
} from '@openshell-interceptors/gateway';
import { type GrpcCodeName, type JsonObject, parseJsonPointer } from '@openshell-interceptors/protocol';
import pino from 'pino';
import { BackendError, DemoBackend } from './backend.js';
import { type CliLauncher, type RunningService, startService } from './services.js';
import {
  CAST,
  type CallStep,
  QUOTA_PER_USER,
  SERVICES,
  type ServiceName,
  STORY,
  type Step,
} from './story.js';

const here = dirname(fileURLToPath(import.meta.url));
/** `examples/` (the demo lives in examples/demo/src or examples/demo/dist). */
const EXAMPLES = resolve(here, '../..');
const TEMPLATE = resolve(here, '../gateway.toml');
const GATEWAY_ID = 'openshell-demo';

export interface DemoOptions {
  /** How to start `openshell-interceptors serve` for each sample. */
  readonly launcher: CliLauncher;
  /** Share quota counts through this Redis (default: the quota service keeps them in memory). */
  readonly redisUrl?: string;
  /** Keep the temp directory (config, keys, audit log) instead of removing it. */
  readonly keep?: boolean;
  /** Wait this long before each step, to follow the story live (default 0). */
  readonly paceMs?: number;
  /** Abort the story (Ctrl-C): everything started is stopped. */
  readonly signal?: AbortSignal;
  readonly onEvent?: (event: DemoEvent) => void;
}

export interface ServiceInfo {
  readonly name: string;
  readonly endpoint: string;
  readonly pid: number;
  readonly transport: 'tcp' | 'unix';
  readonly note: string;
}

/** One row of the story's outcome table. */
export interface StepResult {
  readonly index: number;
  readonly kind: Step['kind'];
  /** `alice`, `bob`, or `operator` for stop steps. */
  readonly who: string;
  readonly title: string;
  /** The RPC, for calls. */
  readonly method?: string;
  /** `allowed`, `denied`, `failed` (the handler refused), or `done` for stop steps. */
  readonly outcome: 'allowed' | 'denied' | 'failed' | 'done';
  readonly code?: GrpcCodeName;
  /** Who decided: an interceptor and phase, the gateway's failure policy, or the handler. */
  readonly decidedBy: string;
  readonly why: string;
  /** Whether the outcome matched the story's expectation. */
  readonly asExpected: boolean;
  readonly expected: string;
  readonly evaluations: readonly EvaluationRecord[];
}

/** One line of the audit log, as the audit sample wrote it. */
export interface AuditLine {
  readonly time: string;
  readonly seq: number;
  readonly rpc: string;
  readonly who: { readonly kind: string; readonly subject?: string };
  readonly what: { readonly method: string } & Readonly<Record<string, string>>;
  readonly result: JsonObject | null;
}

export type DemoEvent =
  | { readonly kind: 'phase'; readonly message: string }
  | { readonly kind: 'service'; readonly service: ServiceInfo }
  | { readonly kind: 'step'; readonly index: number; readonly total: number; readonly title: string }
  | { readonly kind: 'step-done'; readonly total: number; readonly result: StepResult };

export interface DemoResult {
  readonly ok: boolean;
  readonly dir: string;
  readonly kept: boolean;
  readonly configPath: string;
  readonly quotaStore: 'memory' | 'redis';
  readonly services: readonly ServiceInfo[];
  readonly plannedBindings: number;
  readonly steps: readonly StepResult[];
  readonly audit: readonly AuditLine[];
  /** Sandboxes left in the backend at the end. */
  readonly sandboxes: readonly string[];
  /** Exit codes of the services at shutdown (0 = clean). */
  readonly shutdown: Readonly<Record<string, number | null>>;
  readonly elapsedMs: number;
}

/** Thrown when the run is aborted; everything started has been stopped. */
export class DemoAborted extends Error {
  constructor() {
    super('demo interrupted');
    this.name = 'DemoAborted';
  }
}

function describeExpectation(step: CallStep): string {
  const e = step.expect;
  if (e.outcome === 'allowed') return e.failedOpen ? `allowed, ${e.failedOpen} failing open` : 'allowed';
  return `${e.code} from ${e.failedClosed ? `${e.by} failing closed` : e.by}`;
}

/** A value of the final request at a JSON Pointer, rendered short. */
function valueAt(request: JsonObject, pointer: string): string {
  let v: unknown = request;
  for (const t of parseJsonPointer(pointer)) {
    if (typeof v !== 'object' || v === null) return '?';
    v = (v as Record<string, unknown>)[t];
  }
  if (typeof v === 'object' && v !== null && !Array.isArray(v))
    return Object.entries(v)
      .map(([k, x]) => `${k}=${String(x)}`)
      .join(',');
  return typeof v === 'string' ? v : JSON.stringify(v);
}

const ERRNO: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ENOENT: 'no socket',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'connect timed out',
};

/** A failure cause, short enough for a table cell: the gRPC code and what happened. */
export function shortCause(error: string | null): string {
  const e = error ?? 'failed';
  const code = /^([A-Z_]+):/.exec(e)?.[1];
  const errno = /\b(ECONNREFUSED|ENOENT|ECONNRESET|ETIMEDOUT)\b/.exec(e)?.[1];
  if (code && errno) return `${code} (${ERRNO[errno]})`;
  return e.length > 80 ? `${e.slice(0, 79)}…` : e;
}

/** Who decided a call's outcome and why, from its per-evaluation records. */
export function explain(
  out: InterceptOutcome | { failed: BackendError },
  evaluations: readonly EvaluationRecord[],
): { decidedBy: string; why: string } {
  const failedOpen = evaluations
    .filter((e) => e.decision === 'error' && e.failurePolicy === 'fail_open')
    .map((e) => `${e.interceptor} failed open (${e.phase}): ${shortCause(e.error)}`);
  if ('failed' in out) {
    return { decidedBy: 'OpenShell handler', why: out.failed.message };
  }
  if (out.outcome === 'denied') {
    const last = evaluations.at(-1);
    if (last?.decision === 'deny')
      return { decidedBy: `${last.interceptor} (${last.phase})`, why: out.status?.message ?? '' };
    if (last?.decision === 'error')
      return {
        decidedBy: `gateway: ${last.interceptor} failed closed`,
        why: `gateway interceptor '${last.interceptor}' failed closed (${last.phase}): ${shortCause(last.error)}`,
      };
    return { decidedBy: 'gateway', why: out.status?.message ?? '' };
  }
  const changes = evaluations
    .filter((e) => e.applied)
    .map(
      (e) =>
        `${e.interceptor} set ${e.patches.map((p) => `${p.path.slice(1)}=${valueAt(out.request, p.path)}`).join(', ')}`,
    );
  // Quota's own words: "subject:alice@… 1/2" at validate, "released <sandbox>" after a delete.
  const notes = evaluations.flatMap((e) => {
    const q = e.interceptor === 'quota' ? e.annotations.quota : undefined;
    if (!q) return [];
    if (q.startsWith('released')) return [`quota ${q}`];
    const used = / (\d+\/\d+)$/.exec(q);
    return used ? [`quota ${used[1]} in use`] : [];
  });
  const patchers = [...new Set(evaluations.filter((e) => e.applied).map((e) => e.interceptor))];
  return {
    decidedBy: patchers.length ? `allowed, patched by ${patchers.join(', ')}` : 'allowed by all',
    why: [...changes, ...notes, ...failedOpen].join('; ') || 'no change',
  };
}

function render(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{([A-Z_]+)\}\}/g, (m, k: string) => {
    const v = values[k];
    if (v === undefined) throw new Error(`gateway.toml template: no value for ${m}`);
    return v;
  });
}

/** A pino logger that keeps the gateway's warnings in memory (shown only when something goes wrong). */
function memoryLogger(lines: string[]): pino.Logger {
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      if (lines.length > 200) lines.splice(0, lines.length - 200);
      cb();
    },
  });
  return pino({ name: 'openshell-gateway', level: 'warn' }, stream);
}

/** Remove the keys this run's quota service left in a shared Redis (best effort). */
async function dropRedisKeys(url: string, prefix: string): Promise<void> {
  const store = RedisQuotaStore.connect(url, { prefix, commandTimeoutMs: 2000 });
  try {
    const keys = await store.client.keys(`${store.keyPrefix}*`);
    if (keys.length) await store.client.del(...keys);
  } catch {
    // The demo's result does not depend on it.
  } finally {
    await store.close();
  }
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new DemoAborted();
}

/**
 * Run the demo: start the four samples as real `openshell-interceptors serve` processes
 * (naming and audit on TCP, tenancy and quota on Unix sockets) with gateway token auth,
 * start the gateway runtime from a real TOML file with a fresh Ed25519 key, replay the
 * story, and stop everything. Always cleans up, also when aborted.
 */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const started = Date.now();
  const emit = (e: DemoEvent) => options.onEvent?.(e);
  const { signal } = options;
  checkAbort(signal);
  const dir = await mkdtemp(join(tmpdir(), 'openshell-demo-'));
  const services = new Map<ServiceName, RunningService>();
  const infos = new Map<ServiceName, ServiceInfo>();
  const gatewayLog: string[] = [];
  let gateway: Gateway | undefined;
  const shutdown: Record<string, number | null> = {};
  let redisPrefix: string | undefined;
  try {
    emit({ kind: 'phase', message: `generating an Ed25519 gateway key in ${dir}` });
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const runId = randomBytes(4).toString('hex');
    const keyId = `demo-${runId}`;
    redisPrefix = `openshell-demo-${runId}`;
    await writeFile(join(dir, 'gateway.key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }), {
      mode: 0o600,
    });
    const publicKeyFile = join(dir, 'gateway.pub.pem');
    await writeFile(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }));

    const redisUrl = options.redisUrl;
    const env: Record<ServiceName, Record<string, string>> = {
      naming: {},
      tenancy: {
        TENANCY_DOMAINS: Object.values(CAST)
          .map((a) => `${String(a.principal.subject).split('@')[1]}=${a.tenant}`)
          .join(','),
      },
      quota: {
        QUOTA_MAX_SANDBOXES: String(QUOTA_PER_USER),
        // The child reads REDIS_URL too: only what the demo was told may reach it.
        QUOTA_REDIS_URL: redisUrl ?? '',
        REDIS_URL: '',
        ...(redisUrl ? { QUOTA_REDIS_PREFIX: redisPrefix } : {}),
      },
      audit: { AUDIT_FILE: join(dir, 'audit.log') },
    };
    emit({ kind: 'phase', message: 'starting the sample interceptors' });
    checkAbort(signal);
    await Promise.all(
      SERVICES.map(async (s) => {
        const svc = await startService(
          {
            name: s.name,
            dir: join(EXAMPLES, s.name),
            listen: s.listen === 'unix' ? `unix://${join(dir, `${s.name}.sock`)}` : '127.0.0.1:0',
            env: env[s.name],
            publicKeyFile,
            gatewayId: GATEWAY_ID,
          },
          options.launcher,
        );
        services.set(s.name, svc);
        const note =
          s.name === 'quota'
            ? `store: ${redisUrl ? 'redis' : 'memory'}, ${QUOTA_PER_USER} sandboxes per user`
            : s.name === 'audit'
              ? 'writes audit.log'
              : s.name === 'tenancy'
                ? 'acme.example → acme, globex.example → globex'
                : 'DNS-label names';
        const info: ServiceInfo = {
          name: s.name,
          endpoint: svc.endpoint,
          pid: svc.pid,
          transport: s.listen,
          note,
        };
        infos.set(s.name, info);
        emit({ kind: 'service', service: info });
      }),
    );
    checkAbort(signal);

    const port = (name: ServiceName) => services.get(name)!.address.split(':').at(-1)!;
    const configPath = join(dir, 'gateway.toml');
    await writeFile(
      configPath,
      render(await readFile(TEMPLATE, 'utf8'), {
        DIR: dir,
        KEY_ID: keyId,
        NAMING_PORT: port('naming'),
        AUDIT_PORT: port('audit'),
      }),
    );
    emit({ kind: 'phase', message: `starting the gateway runtime from ${configPath}` });
    const config = await loadGatewayConfig(configPath);
    gateway = await createGateway(config, { logger: memoryLogger(gatewayLog) });
    const plannedBindings = gateway.plan.entries.length;

    const backend = new DemoBackend();
    const commits: Record<string, (req: JsonObject) => Promise<JsonObject>> = {
      CreateSandbox: (r) => backend.createSandbox(r),
      DeleteSandbox: (r) => backend.deleteSandbox(r),
      ExposeService: (r) => backend.exposeService(r),
    };
    const steps: StepResult[] = [];
    for (const [i, step] of STORY.entries()) {
      checkAbort(signal);
      if (options.paceMs) {
        try {
          await sleep(options.paceMs, undefined, signal ? { signal } : {});
        } catch {
          throw new DemoAborted();
        }
      }
      const index = i + 1;
      const title = step.kind === 'call' ? `${step.actor.name} ${step.title}` : step.title;
      emit({ kind: 'step', index, total: STORY.length, title });
      let result: StepResult;
      if (step.kind === 'stop') {
        const code = await services.get(step.service)!.stop();
        shutdown[step.service] = code;
        result = {
          index,
          kind: 'stop',
          who: 'operator',
          title: step.title,
          outcome: 'done',
          decidedBy: '-',
          why: `SIGTERM; ${step.service} exited with code ${code}`,
          asExpected: code === 0,
          expected: 'clean exit',
          evaluations: [],
        };
      } else {
        const commit = commits[step.method];
        if (!commit) throw new Error(`the demo backend has no handler for ${step.method}`);
        let failed: BackendError | undefined;
        let out: InterceptOutcome | undefined;
        // The gateway runs the commit; a handler refusal surfaces here as a thrown BackendError.
        const evaluations: EvaluationRecord[] = [];
        try {
          out = await gateway.intercept({
            method: step.method,
            principal: step.actor.principal,
            request: step.request,
            commit,
          });
          evaluations.push(...out.evaluations);
        } catch (err) {
          if (!(err instanceof BackendError)) throw err;
          failed = err;
        }
        const outcome = failed ? 'failed' : out!.outcome;
        const code = failed ? failed.code : out?.status?.code;
        const { decidedBy, why } = explain(failed ? { failed } : out!, evaluations);
        const e = step.expect;
        const asExpected =
          e.outcome === 'allowed'
            ? outcome === 'allowed' &&
              (!e.failedOpen ||
                evaluations.some((r) => r.interceptor === e.failedOpen && r.decision === 'error'))
            : outcome === 'denied' &&
              code === e.code &&
              evaluations.at(-1)?.interceptor === e.by &&
              evaluations.at(-1)?.decision === (e.failedClosed ? 'error' : 'deny');
        result = {
          index,
          kind: 'call',
          who: step.actor.name,
          title: step.title,
          method: step.method,
          outcome,
          ...(code ? { code } : {}),
          decidedBy,
          why,
          asExpected,
          expected: describeExpectation(step),
          evaluations,
        };
      }
      steps.push(result);
      emit({ kind: 'step-done', total: STORY.length, result });
    }

    emit({ kind: 'phase', message: 'stopping the gateway and the services' });
    await gateway.close();
    gateway = undefined;
    for (const [name, svc] of services) if (svc.running()) shutdown[name] = await svc.stop();

    const auditText = await readFile(join(dir, 'audit.log'), 'utf8').catch(() => '');
    const audit = auditText
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AuditLine);
    const ok = steps.every((s) => s.asExpected) && Object.values(shutdown).every((c) => c === 0);
    return {
      ok,
      dir,
      kept: options.keep === true,
      configPath,
      quotaStore: redisUrl ? 'redis' : 'memory',
      services: SERVICES.map((s) => infos.get(s.name)!),
      plannedBindings,
      steps,
      audit,
      sandboxes: backend.list(),
      shutdown,
      elapsedMs: Date.now() - started,
    };
  } catch (err) {
    if (err instanceof DemoAborted) throw err;
    const tails = [...services.values()]
      .map((s) => s.stderrTail().trim() && `--- ${s.name} stderr ---\n${s.stderrTail().trim()}`)
      .filter(Boolean);
    const gw = gatewayLog.length ? [`--- gateway log ---\n${gatewayLog.slice(-20).join('\n')}`] : [];
    const detail = [...tails, ...gw].join('\n');
    throw new Error(`${(err as Error).message}${detail ? `\n${detail}` : ''}`, { cause: err });
  } finally {
    await gateway?.close().catch(() => {});
    await Promise.all([...services.values()].map((s) => s.stop().catch(() => null)));
    if (options.redisUrl && redisPrefix) await dropRedisKeys(options.redisUrl, redisPrefix);
    if (!options.keep) await rm(dir, { recursive: true, force: true });
  }
}
