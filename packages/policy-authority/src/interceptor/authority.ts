import { isDeepStrictEqual } from 'node:util';
import {
  type InterceptableMethod,
  type JsonObject,
  type JsonValue,
  type Principal,
  principalSubject,
} from '@openshell-interceptors/protocol';
import {
  allow,
  type DenyDecision,
  deny,
  type InterceptorBuilder,
  interceptor,
} from '@openshell-interceptors/sdk';
import { type Logger, pino } from 'pino';
import { DriverCallError, type DriverConnectionOptions, PolicyDriverConnection } from '../driver/client.js';
import { isNoVerifiedPolicy, type PolicyDriverCapabilities, type RuntimeContext } from '../driver/define.js';
import { NoVerifiedPolicyError, ProjectionVerificationError } from '../errors.js';
import { SANDBOX_POLICY_SURFACE, type VerifiedProjection, verifyProjection } from '../projection.js';
import type { TrustStore } from '../trust-store.js';
import { HandleJournal, sandboxKey } from './journal.js';

/** Sandbox annotations the authority records (and owns: callers cannot set them). */
export const POLICY_ANNOTATION_PREFIX = 'policy.openshell.io/';
export const POLICY_ANNOTATIONS = {
  /** Lowercase hex SHA-256 of the projected body. */
  digest: 'policy.openshell.io/digest',
  /** The key id the signature verified with (absent when unsigned). */
  keyId: 'policy.openshell.io/signing-key-id',
  /** `verified` or `none`. */
  signature: 'policy.openshell.io/signature',
  /** The driver handle this sandbox holds. */
  handle: 'policy.openshell.io/handle',
  surface: 'policy.openshell.io/surface',
  /** `policy.openshell.io/audit.<key>` = each audit context entry, verbatim. */
  auditPrefix: 'policy.openshell.io/audit.',
} as const;

/** The RPCs that change policy when the driver does not permit mutation. */
export const DRAFT_CHUNK_METHODS = [
  'ApproveDraftChunk',
  'RejectDraftChunk',
  'ApproveAllDraftChunks',
  'EditDraftChunk',
  'UndoDraftChunk',
  'ClearDraftChunks',
] as const satisfies readonly InterceptableMethod[];

export interface PolicyAuthorityOptions {
  /** Interceptor name (default `policy-authority`). */
  readonly name?: string;
  /** The driver: an endpoint (`unix:///path`, `host:port`, `https://host:port`) or an open connection. */
  readonly driver: string | PolicyDriverConnection;
  /** Options for a connection opened from an endpoint (per-call deadline default 2000 ms, TLS). */
  readonly driverOptions?: DriverConnectionOptions;
  /**
   * Keys the projections must be signed with. Without a trust store only digests
   * and bodies are checked (the `authentic` guarantee needs one).
   */
  readonly trust?: TrustStore;
  /** Default true with a trust store. */
  readonly requireSignature?: boolean;
  /** The surface to project (default `openshell.sandbox.v1`). */
  readonly surface?: string;
  /** Where the handle journal lives; without it, handles are remembered in memory only. */
  readonly stateDir?: string;
  /**
   * The tenant of a CreateSandbox caller, sent as the `tenant_id` attribute. Take it
   * from the authenticated principal, not from fields the caller controls.
   */
  readonly tenantOf?: (principal: Principal, request: Readonly<JsonObject>) => string | undefined;
  /** How long driver capabilities are cached (default 30 s); the last known value is kept while the driver is down. */
  readonly capabilitiesTtlMs?: number;
  /** How long a DeleteSandbox waits for its commit to pair with its post_commit (default 60 s). */
  readonly pendingDeleteTtlMs?: number;
  readonly logger?: Logger;
}

export interface PolicyAuthority {
  /** The interceptor, ready for `serve` (or `evaluate` in tests). */
  readonly interceptor: InterceptorBuilder;
  readonly connection: PolicyDriverConnection;
  readonly journal: HandleJournal;
  /** Retry releases the driver has not confirmed; resolves when the queue was tried once. */
  retryReleases(): Promise<void>;
  /** Stop timers; close the driver connection when it was opened here. */
  close(): void;
}

interface Admitted {
  readonly verified: VerifiedProjection;
  readonly at: number;
}

const ADMITTED_MAX = 10_000;

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The annotations recorded for a verified projection. */
export function policyAnnotations(v: VerifiedProjection, handle: string): Record<string, string> {
  const out: Record<string, string> = {
    [POLICY_ANNOTATIONS.digest]: v.policyDigest,
    [POLICY_ANNOTATIONS.signature]: v.signatureVerified ? 'verified' : 'none',
    [POLICY_ANNOTATIONS.handle]: handle,
    [POLICY_ANNOTATIONS.surface]: v.surfaceId,
  };
  if (v.signingKeyId !== undefined) out[POLICY_ANNOTATIONS.keyId] = v.signingKeyId;
  for (const [k, val] of Object.entries(v.auditContext)) out[`${POLICY_ANNOTATIONS.auditPrefix}${k}`] = val;
  return out;
}

/**
 * The RFC 0005 enforcing side as a gateway interceptor. The driver is the
 * authority for sandbox policy; the gateway stays the system of record.
 *
 * - modify CreateSandbox: acquire a handle for the caller, fetch and verify the
 *   projection, set `spec.policy` to exactly the projected policy and record
 *   digest, key id, handle and audit context as annotations (callers' own
 *   `policy.openshell.io/` annotations are dropped);
 * - validate CreateSandbox: the policy and annotations about to be stored must
 *   be exactly the verified projection's;
 * - validate UpdateConfig (policy changes), SubmitPolicyAnalysis (with proposals)
 *   and the six draft-chunk RPCs: PERMISSION_DENIED unless the driver permits mutation;
 * - post_commit CreateSandbox: journal the sandbox's handle; post_commit
 *   DeleteSandbox: release it.
 *
 * A driver that is down or a projection that does not verify refuses new
 * sandboxes (an explicit denial, whatever the failure policy); deletes and
 * non-policy updates never call the driver.
 */
export async function createPolicyAuthorityInterceptor(
  options: PolicyAuthorityOptions,
): Promise<PolicyAuthority> {
  const name = options.name ?? 'policy-authority';
  const log = options.logger ?? pino({ name });
  const surface = options.surface ?? SANDBOX_POLICY_SURFACE;
  const ownConnection = typeof options.driver === 'string';
  const conn =
    typeof options.driver === 'string'
      ? new PolicyDriverConnection(options.driver, options.driverOptions ?? {})
      : options.driver;
  const verifyOptions = {
    surfaces: [surface],
    ...(options.trust ? { trust: options.trust } : {}),
    ...(options.requireSignature !== undefined ? { requireSignature: options.requireSignature } : {}),
  };
  // Fail at construction, not on the first sandbox, when the options cannot verify anything.
  if (verifyOptions.requireSignature && !verifyOptions.trust) {
    throw new Error('createPolicyAuthorityInterceptor: requireSignature needs a trust store');
  }
  const journal = await HandleJournal.open(options.stateDir, log);
  const capabilitiesTtl = options.capabilitiesTtlMs ?? 30_000;
  const pendingTtl = options.pendingDeleteTtlMs ?? 60_000;

  // Verified projections between modify and validate of one CreateSandbox, by handle.
  const admitted = new Map<string, Admitted>();
  // DeleteSandbox calls between validate and post_commit, oldest first, by caller.
  const pendingDeletes = new Map<string, { key: string; at: number }[]>();
  let caps: { value: PolicyDriverCapabilities; at: number } | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let retryDelay = 1000;

  function remember(handle: string, verified: VerifiedProjection): void {
    if (admitted.size >= ADMITTED_MAX) {
      const oldest = admitted.keys().next().value;
      if (oldest !== undefined) admitted.delete(oldest);
    }
    admitted.set(handle, { verified, at: Date.now() });
  }

  async function capabilities(
    signal: AbortSignal,
    deadline: number | undefined,
  ): Promise<PolicyDriverCapabilities> {
    if (caps && Date.now() - caps.at < capabilitiesTtl) return caps.value;
    try {
      const value = await conn.getCapabilities({ signal, ...(deadline ? { deadline } : {}) });
      caps = { value, at: Date.now() };
      return value;
    } catch (err) {
      if (caps) {
        log.warn({ err: describe(err) }, 'driver capabilities unavailable; using the last known ones');
        return caps.value;
      }
      throw err;
    }
  }

  /** Fetch and verify the projection of a handle; a refusal is a denial value. */
  async function project(
    handle: string,
    signal: AbortSignal,
    deadline: number | undefined,
  ): Promise<VerifiedProjection | DenyDecision> {
    try {
      const outcome = await conn.getProjection(handle, surface, {
        signal,
        ...(deadline ? { deadline } : {}),
      });
      if (isNoVerifiedPolicy(outcome)) throw new NoVerifiedPolicyError(outcome.noVerifiedPolicy);
      return verifyProjection(outcome, verifyOptions);
    } catch (err) {
      return refusal(err);
    }
  }

  function refusal(err: unknown): DenyDecision {
    if (err instanceof ProjectionVerificationError) {
      return deny(
        'PERMISSION_DENIED',
        `policy authority refused the sandbox policy: ${err.code}: ${err.message}`,
        {
          annotations: { policy_refusal: err.code },
        },
      );
    }
    if (err instanceof DriverCallError) {
      return deny(
        'UNAVAILABLE',
        `policy authority: the policy driver is unavailable (${err.rpc}: ${err.codeName}); new sandboxes are refused until it answers`,
        { annotations: { policy_refusal: `DRIVER_${err.codeName}` } },
      );
    }
    log.error({ err: describe(err) }, 'policy authority failure');
    return deny('UNAVAILABLE', 'policy authority: internal error while checking the sandbox policy', {
      annotations: { policy_refusal: 'INTERNAL' },
    });
  }

  async function release(handle: string, key: string | undefined): Promise<boolean> {
    try {
      await conn.releaseHandle(handle);
      if (key !== undefined) await journal.remove(key);
      return true;
    } catch (err) {
      log.warn({ handle, key, err: describe(err) }, 'handle release failed; will retry');
      if (key !== undefined) {
        const e = journal.get(key);
        if (e && !e.releasing) await journal.put({ ...e, releasing: true }).catch(() => undefined);
      }
      scheduleRetry();
      return false;
    }
  }

  async function retryReleases(): Promise<void> {
    for (const e of journal.all().filter((x) => x.releasing)) {
      try {
        await conn.releaseHandle(e.handle);
        await journal.remove(e.key);
        log.info({ handle: e.handle, key: e.key }, 'deferred handle release done');
      } catch (err) {
        log.debug({ handle: e.handle, err: describe(err) }, 'deferred handle release failed again');
      }
    }
  }

  function scheduleRetry(): void {
    if (retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void retryReleases().then(() => {
        if (journal.all().some((e) => e.releasing)) {
          retryDelay = Math.min(retryDelay * 2, 30_000);
          scheduleRetry();
        } else retryDelay = 1000;
      });
    }, retryDelay);
    retryTimer.unref();
  }

  function notPermitted(
    what: string,
  ): (ctx: { signal: AbortSignal; deadline: number | undefined }) => Promise<DenyDecision | undefined> {
    return async (ctx) => {
      let c: PolicyDriverCapabilities;
      try {
        c = await capabilities(ctx.signal, ctx.deadline);
      } catch (err) {
        return deny(
          'UNAVAILABLE',
          `policy authority: ${what} needs the policy driver's permission and the driver is unavailable (${describe(err)})`,
          { annotations: { policy_refusal: 'DRIVER_UNAVAILABLE' } },
        );
      }
      if (c.permitsMutation) return undefined;
      return deny(
        'PERMISSION_DENIED',
        `policy authority: ${what} is not permitted; sandbox policy is managed by the policy driver (${c.driverVersion || 'unnamed'}), change it there`,
        { annotations: { policy_refusal: 'MUTATION_NOT_PERMITTED' } },
      );
    };
  }

  const i = interceptor(name, { failurePolicy: 'fail_closed', logger: log })
    .modify('CreateSandbox', async (ctx) => {
      const req = ctx.operation as unknown as JsonObject;
      const principal = ctx.principal;
      const workspace = str(req.workspace);
      const attributes: Record<string, string> = { principal_kind: principal.kind };
      if (workspace) attributes.workspace = workspace;
      if (principal.kind === 'user') {
        if (principal.provider) attributes.auth_provider = principal.provider;
        if (principal.roles) attributes.roles = principal.roles;
      }
      const tenant = options.tenantOf?.(principal, req);
      if (tenant) attributes.tenant_id = tenant;
      const rc: RuntimeContext = {
        sandboxId: str(req.name),
        userSubject: principalSubject(principal),
        attributes,
      };

      let handle: string;
      try {
        handle = await conn.acquireHandle(rc, {
          signal: ctx.signal,
          ...(ctx.deadline ? { deadline: ctx.deadline } : {}),
        });
      } catch (err) {
        return refusal(err);
      }
      const verified = await project(handle, ctx.signal, ctx.deadline);
      if ('decision' in verified) {
        void release(handle, undefined);
        return verified;
      }
      remember(handle, verified);

      const spec = obj(req.spec);
      const userAnnotations = obj(req.annotations) ?? {};
      const annotations: Record<string, JsonValue> = {};
      for (const [k, v] of Object.entries(userAnnotations)) {
        if (!k.startsWith(POLICY_ANNOTATION_PREFIX)) annotations[k] = v as JsonValue;
      }
      Object.assign(annotations, policyAnnotations(verified, handle));
      const policy = verified.policyJson as unknown as JsonObject;
      const logAnnotations: Record<string, string> = {
        policy_digest: verified.policyDigest,
        policy_handle: handle,
        policy_signature: verified.signatureVerified ? `verified:${verified.signingKeyId}` : 'none',
      };
      if (spec?.policy !== undefined && !isDeepStrictEqual(spec.policy, policy)) {
        logAnnotations.policy_replaced = 'true';
      }
      return allow({
        annotations: logAnnotations,
        patches: [
          spec
            ? { op: 'add', path: '/spec/policy', value: policy }
            : { op: 'add', path: '/spec', value: { policy } },
          { op: 'add', path: '/annotations', value: annotations },
        ],
      });
    })
    .validate('CreateSandbox', async (ctx) => {
      const req = ctx.operation as unknown as JsonObject;
      const ann = obj(req.annotations) ?? {};
      const handle = str(ann[POLICY_ANNOTATIONS.handle]);
      if (!handle) {
        return deny(
          'PERMISSION_DENIED',
          'policy authority: the sandbox carries no policy handle (the authority did not admit this request)',
          { annotations: { policy_refusal: 'NO_HANDLE' } },
        );
      }
      let verified = admitted.get(handle)?.verified;
      if (!verified) {
        // Another replica, or a restart, between the phases: ask the driver again.
        const v = await project(handle, ctx.signal, ctx.deadline);
        if ('decision' in v) return v;
        verified = v;
      }
      const expected = policyAnnotations(verified, handle);
      const problems: string[] = [];
      const policy = obj(obj(req.spec)?.policy) ?? {};
      if (!isDeepStrictEqual(policy, verified.policyJson))
        problems.push('spec.policy differs from the verified projection');
      for (const [k, v] of Object.entries(expected)) {
        if (ann[k] !== v)
          problems.push(
            `annotation ${k} is ${JSON.stringify(ann[k] ?? null)}, expected ${JSON.stringify(v)}`,
          );
      }
      for (const k of Object.keys(ann)) {
        if (k.startsWith(POLICY_ANNOTATION_PREFIX) && !(k in expected))
          problems.push(`unexpected annotation ${k}`);
      }
      if (problems.length) {
        admitted.delete(handle);
        void release(handle, undefined);
        return deny(
          'PERMISSION_DENIED',
          `policy authority: the sandbox about to be stored is not the verified projection: ${problems.join('; ')}`,
          {
            annotations: { policy_refusal: 'ALTERED_AFTER_ADMISSION', policy_digest: verified.policyDigest },
          },
        );
      }
      return allow({ annotations: { policy_digest: verified.policyDigest, policy_handle: handle } });
    })
    .observe('CreateSandbox', async (ctx) => {
      const sandbox = obj(obj(ctx.operation as unknown)?.sandbox);
      const meta = obj(sandbox?.metadata) ?? {};
      const ann = obj(meta.annotations) ?? {};
      const handle = str(ann[POLICY_ANNOTATIONS.handle]);
      const sandboxName = str(meta.name);
      if (!handle || !sandboxName) {
        log.warn(
          { sandbox: sandboxName },
          'committed sandbox without a policy handle annotation; nothing to journal',
        );
        return allow({ annotations: { policy_journal: 'skipped' } });
      }
      admitted.delete(handle);
      const key = sandboxKey(str(meta.workspace), sandboxName);
      await journal.put({
        key,
        workspace: str(meta.workspace),
        name: sandboxName,
        handle,
        policyDigest: str(ann[POLICY_ANNOTATIONS.digest]),
        recordedAt: new Date().toISOString(),
      });
      return allow({ annotations: { policy_handle: handle, policy_journal: 'recorded' } });
    })
    .validate(
      'DeleteSandbox',
      (ctx) => {
        const req = ctx.operation as unknown as JsonObject;
        const key = sandboxKey(str(req.workspace), str(req.name));
        if (!journal.get(key)) return allow();
        const who = principalSubject(ctx.principal);
        const now = Date.now();
        const list = (pendingDeletes.get(who) ?? []).filter((p) => now - p.at < pendingTtl);
        list.push({ key, at: now });
        pendingDeletes.set(who, list);
        return allow({ annotations: { policy_handle: journal.get(key)?.handle ?? '' } });
      },
      // Never in the way of a delete.
      { failurePolicy: 'fail_open' },
    )
    .observe('DeleteSandbox', async (ctx) => {
      const who = principalSubject(ctx.principal);
      const now = Date.now();
      const list = (pendingDeletes.get(who) ?? []).filter((p) => now - p.at < pendingTtl);
      // The post_commit view carries only `deleted`, so the call is paired with this
      // caller's oldest pending DeleteSandbox (see docs/policy-authority.md).
      const next = list.shift();
      if (list.length) pendingDeletes.set(who, list);
      else pendingDeletes.delete(who);
      if (!next) return allow();
      const deleted = (ctx.operation as unknown as JsonObject).deleted === true;
      const entry = journal.get(next.key);
      if (!deleted || !entry) return allow({ annotations: { policy_release: 'not-deleted' } });
      const ok = await release(entry.handle, entry.key);
      return allow({
        annotations: { policy_handle: entry.handle, policy_release: ok ? 'released' : 'deferred' },
      });
    });

  i.validate('UpdateConfig', async (ctx) => {
    const req = ctx.operation as unknown as JsonObject;
    const changesPolicy =
      req.policy !== undefined || (Array.isArray(req.mergeOperations) && req.mergeOperations.length > 0);
    if (!changesPolicy) return allow();
    return (await notPermitted('changing sandbox policy with UpdateConfig')(ctx)) ?? allow();
  });
  i.validate('SubmitPolicyAnalysis', async (ctx) => {
    const req = ctx.operation as unknown as JsonObject;
    if (!(Array.isArray(req.proposedChunks) && req.proposedChunks.length > 0)) return allow();
    return (await notPermitted('submitting policy proposals')(ctx)) ?? allow();
  });
  for (const method of DRAFT_CHUNK_METHODS) {
    i.validate(method, async (ctx) => (await notPermitted(`${method}`)(ctx)) ?? allow());
  }

  if (journal.all().some((e) => e.releasing)) scheduleRetry();

  return {
    interceptor: i,
    connection: conn,
    journal,
    retryReleases,
    close() {
      clearTimeout(retryTimer);
      retryTimer = undefined;
      if (ownConnection) conn.close();
    },
  };
}
