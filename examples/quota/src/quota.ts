import { randomUUID } from 'node:crypto';
import {
  allow,
  deny,
  type FailurePolicy,
  type Interceptor,
  interceptor,
  type Principal,
} from '@openshell-interceptors/sdk';
import { ANONYMOUS_RESERVATION, type Bucket, type QuotaStore } from './store.js';

export interface QuotaOptions {
  /** Where counts live: `MemoryQuotaStore` for one replica, `RedisQuotaStore` for several. */
  readonly store: QuotaStore;
  /** Interceptor name (default `quota`). */
  readonly name?: string;
  /** Most running sandboxes per caller (principal subject; default 3). */
  readonly limit?: number;
  /** Per-subject exceptions to `limit`, e.g. `{ 'ci-bot@acme.example': 20 }`. */
  readonly subjectLimits?: Readonly<Record<string, number>>;
  /** Most running sandboxes per tenant, counted across its callers; off when unset. */
  readonly tenantLimit?: number;
  /**
   * The request label naming the tenant (default `tenant`, the label the tenancy
   * sample stamps). A create without it is counted per caller only.
   */
  readonly tenantLabel?: string;
  /** How long a reservation taken in validate waits for its commit (default 30 s). */
  readonly reservationTtlMs?: number;
  /** How long a requested delete waits for its commit (default 30 s). */
  readonly deleteTtlMs?: number;
  /** Failure policy of the CreateSandbox check (the gateway's default for validate is fail_closed). */
  readonly failurePolicy?: FailurePolicy;
}

/** `<workspace>/<name>`: how the quota store identifies a sandbox (names are unique per workspace). */
export function sandboxKey(workspace: string | undefined, name: string): string {
  return `${workspace ?? ''}/${name}`;
}

function checkLimit(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`quota: ${what} must be an integer >= 0, got ${v}`);
  return v;
}

/** The caller a quota is counted for: the user subject or the sandbox id; undefined for anonymous callers. */
function callerOf(p: Principal): string | undefined {
  if (p.kind === 'user' && p.subject) return p.subject;
  if (p.kind === 'sandbox' && p.sandbox_id) return `sandbox:${p.sandbox_id}`;
  return undefined;
}

function plural(n: number): string {
  return n === 1 ? 'sandbox' : 'sandboxes';
}

/**
 * The quota interceptor. Bindings:
 * - `create-sandbox` (validate): reserve a slot in the caller's bucket (and the
 *   tenant's) or deny RESOURCE_EXHAUSTED stating the limit and the count;
 * - `create-sandbox-observe` (post_commit): the create committed, so the
 *   reservation becomes a running sandbox (an uncommitted one expires);
 * - `delete-sandbox` (validate, fail_open: bookkeeping must never block deletes):
 *   remember which sandbox the caller is deleting;
 * - `delete-sandbox-observe` (post_commit): the delete committed (its response
 *   only says `deleted`), so free the sandbox remembered in validate.
 */
export function createQuotaInterceptor(options: QuotaOptions): Interceptor {
  const { store } = options;
  const limit = checkLimit(options.limit ?? 3, 'limit');
  const subjectLimits = new Map<string, number>();
  for (const [s, n] of Object.entries(options.subjectLimits ?? {}))
    subjectLimits.set(s, checkLimit(n, `subjectLimits['${s}']`));
  const tenantLimit =
    options.tenantLimit === undefined ? undefined : checkLimit(options.tenantLimit, 'tenantLimit');
  const tenantLabel = options.tenantLabel ?? 'tenant';
  const reservationTtlMs = options.reservationTtlMs ?? 30_000;
  const deleteTtlMs = options.deleteTtlMs ?? 30_000;
  if (!(reservationTtlMs > 0) || !(deleteTtlMs > 0))
    throw new RangeError('quota: reservationTtlMs and deleteTtlMs must be positive');

  const bucketsFor = (caller: string, labels: Readonly<Record<string, string>> | undefined): Bucket[] => {
    const subject = caller.startsWith('sandbox:') ? caller : `subject:${caller}`;
    const buckets: Bucket[] = [{ key: subject, limit: subjectLimits.get(caller) ?? limit }];
    const tenant = labels?.[tenantLabel];
    if (tenantLimit !== undefined && tenant) buckets.push({ key: `tenant:${tenant}`, limit: tenantLimit });
    return buckets;
  };

  return interceptor(
    options.name ?? 'quota',
    options.failurePolicy ? { failurePolicy: options.failurePolicy } : {},
  )
    .validate('CreateSandbox', async ({ operation, principal, annotate }) => {
      const caller = callerOf(principal);
      if (!caller) {
        return deny(
          'PERMISSION_DENIED',
          'sandbox quotas are counted per caller: an anonymous caller cannot create sandboxes',
        );
      }
      const buckets = bucketsFor(caller, operation.labels);
      const id = operation.name
        ? sandboxKey(operation.workspace, operation.name)
        : `${ANONYMOUS_RESERVATION}${randomUUID()}`;
      const r = await store.reserve(buckets, id, reservationTtlMs);
      if (!r.ok) {
        const isTenant = r.bucket.key.startsWith('tenant:');
        const who = isTenant ? `tenant '${r.bucket.key.slice('tenant:'.length)}'` : caller;
        annotate('quota', `exhausted ${r.bucket.key} ${r.count}/${r.bucket.limit}`);
        return deny(
          'RESOURCE_EXHAUSTED',
          `sandbox quota reached for ${who}: ${r.count} of ${r.bucket.limit} ${plural(r.bucket.limit)} in use ` +
            `(running or being created; limit ${r.bucket.limit}): delete a sandbox before creating another`,
        );
      }
      annotate('quota', buckets.map((b, i) => `${b.key} ${r.counts[i]}/${b.limit}`).join(', '));
      return allow();
    })
    .observe('CreateSandbox', async ({ operation, principal, annotate }) => {
      const caller = callerOf(principal);
      const md = operation.sandbox?.metadata;
      if (!caller || !md?.name) return;
      const buckets = bucketsFor(caller, md.labels);
      const key = sandboxKey(md.workspace, md.name);
      await store.commit(
        buckets.map((b) => b.key),
        key,
        key,
      );
      annotate('quota', `counted ${key}`);
    })
    .validate(
      'DeleteSandbox',
      async ({ operation, principal }) => {
        const caller = callerOf(principal);
        if (caller && operation.name)
          await store.markDelete(caller, sandboxKey(operation.workspace, operation.name), deleteTtlMs);
      },
      { failurePolicy: 'fail_open' },
    )
    .observe('DeleteSandbox', async ({ operation, principal, annotate }) => {
      const caller = callerOf(principal);
      if (!caller || !operation.deleted) return;
      const released = await store.confirmDelete(caller);
      if (released) annotate('quota', `released ${released.sandbox}`);
    });
}

/** Parse `30s`, `500ms` or a bare number of milliseconds. */
function parseMs(text: string, variable: string): number {
  const m = /^([0-9]+)(ms|s)?$/.exec(text.trim());
  const n = m ? Number(m[1]) * (m[2] === 's' ? 1000 : 1) : Number.NaN;
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new Error(`${variable} must be a duration such as 30s or 500ms, got ${JSON.stringify(text)}`);
  return n;
}

function parseCount(text: string, variable: string): number {
  const n = Number(text.trim());
  if (text.trim() === '' || !Number.isInteger(n) || n < 0)
    throw new Error(`${variable} must be an integer >= 0, got ${JSON.stringify(text)}`);
  return n;
}

/** The settings of `QuotaOptions` that come from the environment (the store is chosen by the caller). */
export type QuotaEnvOptions = Omit<QuotaOptions, 'store'> & {
  /** `QUOTA_REDIS_URL`, else `REDIS_URL`: use the Redis store. */
  readonly redisUrl?: string;
  readonly redisPrefix?: string;
};

/**
 * Options from the environment, for the default export:
 * `QUOTA_MAX_SANDBOXES` (per caller), `QUOTA_SUBJECT_LIMITS` (`alice@x=5,bob@y=1`),
 * `QUOTA_TENANT_MAX_SANDBOXES`, `QUOTA_TENANT_LABEL`, `QUOTA_RESERVATION_TTL`,
 * `QUOTA_FAILURE_POLICY`, `QUOTA_REDIS_URL` (else `REDIS_URL`), `QUOTA_REDIS_PREFIX`.
 */
export function quotaOptionsFromEnv(env: NodeJS.ProcessEnv): QuotaEnvOptions {
  const o: { -readonly [K in keyof QuotaEnvOptions]: QuotaEnvOptions[K] } = {};
  if (env.QUOTA_MAX_SANDBOXES) o.limit = parseCount(env.QUOTA_MAX_SANDBOXES, 'QUOTA_MAX_SANDBOXES');
  if (env.QUOTA_SUBJECT_LIMITS) {
    const limits: Record<string, number> = {};
    for (const item of env.QUOTA_SUBJECT_LIMITS.split(',')) {
      if (item.trim() === '') continue;
      const at = item.lastIndexOf('=');
      const subject = item.slice(0, at).trim();
      if (at < 0 || subject === '')
        throw new Error(`QUOTA_SUBJECT_LIMITS: expected subject=limit, got ${JSON.stringify(item.trim())}`);
      limits[subject] = parseCount(item.slice(at + 1), `QUOTA_SUBJECT_LIMITS (${subject})`);
    }
    o.subjectLimits = limits;
  }
  if (env.QUOTA_TENANT_MAX_SANDBOXES)
    o.tenantLimit = parseCount(env.QUOTA_TENANT_MAX_SANDBOXES, 'QUOTA_TENANT_MAX_SANDBOXES');
  if (env.QUOTA_TENANT_LABEL) o.tenantLabel = env.QUOTA_TENANT_LABEL;
  if (env.QUOTA_RESERVATION_TTL)
    o.reservationTtlMs = parseMs(env.QUOTA_RESERVATION_TTL, 'QUOTA_RESERVATION_TTL');
  if (env.QUOTA_FAILURE_POLICY) {
    const p = env.QUOTA_FAILURE_POLICY;
    if (p !== 'fail_closed' && p !== 'fail_open')
      throw new Error(`QUOTA_FAILURE_POLICY must be fail_closed or fail_open, got ${JSON.stringify(p)}`);
    o.failurePolicy = p;
  }
  const url = env.QUOTA_REDIS_URL || env.REDIS_URL;
  if (url) o.redisUrl = url;
  if (env.QUOTA_REDIS_PREFIX) o.redisPrefix = env.QUOTA_REDIS_PREFIX;
  return o;
}
