import { randomUUID } from 'node:crypto';
import { DriverCallError, type PolicyDriverConnection } from './driver/client.js';
import { isNoVerifiedPolicy, type ProjectionOutcome, type RuntimeContext } from './driver/define.js';
import { ProjectionVerificationError } from './errors.js';
import { SANDBOX_POLICY_SURFACE, verifyProjection } from './projection.js';
import type { TrustStore } from './trust-store.js';

export type FindingStatus = 'pass' | 'fail' | 'warn' | 'skip';

/** One check of the conformance run. */
export interface ConformanceFinding {
  /** Stable id, e.g. `release.idempotent`. */
  readonly id: string;
  readonly status: FindingStatus;
  readonly detail: string;
}

export interface ConformanceReport {
  /** False when any finding failed. */
  readonly ok: boolean;
  readonly findings: readonly ConformanceFinding[];
  readonly counts: Readonly<Record<FindingStatus, number>>;
}

export interface ConformanceOptions {
  /** With a trust store, projections must be signed by one of its keys. */
  readonly trust?: TrustStore;
  /** The surface to project, default `openshell.sandbox.v1`. */
  readonly surfaceId?: string;
  /** The runtime context to acquire handles for (a caller the driver has a policy for). */
  readonly runtimeContext?: Partial<RuntimeContext>;
}

/** A surface no driver should claim. */
const BOGUS_SURFACE = 'openshell.conformance.unsupported.v0';

function describeError(err: unknown): string {
  if (err instanceof DriverCallError) return `${err.codeName}: ${err.details}`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Exercise a driver's contract through a connection: the four RPCs, distinct
 * handles, the projection (surface, digest, signature, body), unknown handles,
 * unsupported surfaces, and idempotent release. Never throws for driver
 * behaviour; every observation is a finding.
 */
export async function runDriverConformance(
  conn: PolicyDriverConnection,
  options: ConformanceOptions = {},
): Promise<ConformanceReport> {
  const findings: ConformanceFinding[] = [];
  const add = (id: string, status: FindingStatus, detail: string) => findings.push({ id, status, detail });
  const surface = options.surfaceId ?? SANDBOX_POLICY_SURFACE;
  const run = randomUUID().slice(0, 8);
  const ctx = (n: number): RuntimeContext => ({
    sandboxId: options.runtimeContext?.sandboxId
      ? `${options.runtimeContext.sandboxId}-${n}`
      : `conformance-${run}-${n}`,
    userSubject: options.runtimeContext?.userSubject ?? 'conformance-check',
    attributes: { ...(options.runtimeContext?.attributes ?? {}), session_id: `conformance-${run}` },
  });
  const report = (): ConformanceReport => {
    const counts = { pass: 0, fail: 0, warn: 0, skip: 0 };
    for (const f of findings) counts[f.status]++;
    return { ok: counts.fail === 0, findings, counts };
  };

  // 1. Capabilities.
  try {
    const caps = await conn.getCapabilities();
    add(
      'capabilities.rpc',
      'pass',
      `driver_version '${caps.driverVersion}', permits_mutation ${caps.permitsMutation}`,
    );
    if (caps.supportedSurfaces.length === 0)
      add('capabilities.surfaces', 'fail', 'supported_surfaces is empty');
    else if (!caps.supportedSurfaces.includes(surface)) {
      add(
        'capabilities.surfaces',
        'fail',
        `'${surface}' not in supported_surfaces (${caps.supportedSurfaces.join(', ')})`,
      );
    } else add('capabilities.surfaces', 'pass', `supports ${caps.supportedSurfaces.join(', ')}`);
    if (caps.driverVersion === '') add('capabilities.version', 'warn', 'driver_version is empty');
    if (options.trust && !caps.features.includes('signed-projections')) {
      add(
        'capabilities.features',
        'warn',
        "a trust store is given but the driver does not advertise 'signed-projections'",
      );
    }
  } catch (err) {
    add('capabilities.rpc', 'fail', `GetCapabilities failed: ${describeError(err)}`);
    return report();
  }

  // 2. Handles.
  let handle: string | undefined;
  let second: string | undefined;
  try {
    handle = await conn.acquireHandle(ctx(1));
    add('acquire.rpc', 'pass', 'AcquireHandle returned a handle');
  } catch (err) {
    add('acquire.rpc', 'fail', `AcquireHandle failed: ${describeError(err)}`);
    return report();
  }
  try {
    second = await conn.acquireHandle(ctx(2));
    if (second === handle) add('acquire.distinct', 'fail', 'two sandboxes got the same handle');
    else add('acquire.distinct', 'pass', 'distinct sandboxes get distinct handles');
  } catch (err) {
    add('acquire.distinct', 'fail', `second AcquireHandle failed: ${describeError(err)}`);
  }

  // 3. Projection.
  let first: ProjectionOutcome | undefined;
  try {
    first = await conn.getProjection(handle, surface);
  } catch (err) {
    add('projection.rpc', 'fail', `GetProjection failed: ${describeError(err)}`);
  }
  if (first && isNoVerifiedPolicy(first)) {
    add(
      'projection.rpc',
      'warn',
      `no verified policy for the test context (${first.noVerifiedPolicy || 'no reason'}); pass a runtime context the driver has a policy for`,
    );
    add('projection.verify', 'skip', 'no projection to verify');
  } else if (first) {
    add(
      'projection.rpc',
      'pass',
      `projection for '${first.surfaceId}', digest ${first.policyDigest.slice(0, 12)}…`,
    );
    add(
      'projection.surface',
      first.surfaceId === surface ? 'pass' : 'fail',
      first.surfaceId === surface
        ? 'surface_id matches the request'
        : `asked '${surface}', got '${first.surfaceId}'`,
    );
    try {
      const v = verifyProjection(first, {
        surfaces: [first.surfaceId],
        ...(options.trust ? { trust: options.trust } : {}),
      });
      add('projection.digest', 'pass', 'policy_digest is the SHA-256 of the body; the body decodes strictly');
      if (v.signatureVerified)
        add('projection.signature', 'pass', `signature verifies with key '${v.signingKeyId}'`);
      else if (first.signature.length > 0) {
        add(
          'projection.signature',
          'skip',
          `signed with key '${first.signingKeyId}'; pass a trust store to verify it`,
        );
      } else add('projection.signature', 'skip', 'unsigned projection (no trust store given)');
    } catch (err) {
      const code = err instanceof ProjectionVerificationError ? err.code : 'ERROR';
      const id =
        code === 'UNSIGNED_PROJECTION' || code === 'UNKNOWN_KEY_ID' || code === 'BAD_SIGNATURE'
          ? 'projection.signature'
          : 'projection.digest';
      add(id, 'fail', `${code}: ${describeError(err)}`);
    }
    try {
      const again = await conn.getProjection(handle, surface);
      if (isNoVerifiedPolicy(again))
        add('projection.stable', 'warn', 'a second GetProjection had no verified policy');
      else if (again.policyDigest !== first.policyDigest) {
        add('projection.stable', 'warn', 'a second GetProjection returned a different digest');
      } else add('projection.stable', 'pass', 'the same handle projects the same policy');
    } catch (err) {
      add('projection.stable', 'fail', `second GetProjection failed: ${describeError(err)}`);
    }
  }

  // 4. Unknown handle and unsupported surface.
  const unknown = `conformance-unknown-${randomUUID()}`;
  try {
    await conn.getProjection(unknown, surface);
    add(
      'projection.unknown_handle',
      'fail',
      'GetProjection for an unknown handle succeeded; expected NOT_FOUND',
    );
  } catch (err) {
    const ok = err instanceof DriverCallError && err.codeName === 'NOT_FOUND';
    add(
      'projection.unknown_handle',
      ok ? 'pass' : 'fail',
      ok ? 'NOT_FOUND' : `expected NOT_FOUND, got ${describeError(err)}`,
    );
  }
  try {
    const o = await conn.getProjection(handle, BOGUS_SURFACE);
    if (isNoVerifiedPolicy(o))
      add('projection.unsupported_surface', 'warn', 'answered no_verified_policy; expected INVALID_ARGUMENT');
    else
      add(
        'projection.unsupported_surface',
        'fail',
        `returned a projection for undeclared surface '${BOGUS_SURFACE}'`,
      );
  } catch (err) {
    const code = err instanceof DriverCallError ? err.codeName : 'ERROR';
    const ok = code === 'INVALID_ARGUMENT' || code === 'UNIMPLEMENTED' || code === 'NOT_FOUND';
    add(
      'projection.unsupported_surface',
      ok ? 'pass' : 'warn',
      ok ? code : `expected INVALID_ARGUMENT, got ${describeError(err)}`,
    );
  }

  // 5. Release: true once, then false; the released handle is gone.
  try {
    const r1 = await conn.releaseHandle(handle);
    add(
      'release.rpc',
      r1 ? 'pass' : 'fail',
      r1 ? 'released=true for a held handle' : 'released=false for a held handle',
    );
    const r2 = await conn.releaseHandle(handle);
    add(
      'release.idempotent',
      r2 ? 'fail' : 'pass',
      r2 ? 'released=true twice for one handle' : 'second release is OK with released=false',
    );
  } catch (err) {
    add('release.idempotent', 'fail', `ReleaseHandle failed: ${describeError(err)}`);
  }
  try {
    await conn.getProjection(handle, surface);
    add('release.forgotten', 'fail', 'GetProjection still answers for a released handle');
  } catch (err) {
    const ok = err instanceof DriverCallError && err.codeName === 'NOT_FOUND';
    add(
      'release.forgotten',
      ok ? 'pass' : 'fail',
      ok ? 'released handle is NOT_FOUND' : `expected NOT_FOUND, got ${describeError(err)}`,
    );
  }
  try {
    const r = await conn.releaseHandle(unknown);
    add(
      'release.unknown',
      r ? 'fail' : 'pass',
      r ? 'released=true for a handle never issued' : 'unknown handle: OK, released=false',
    );
  } catch (err) {
    add(
      'release.unknown',
      'fail',
      `ReleaseHandle of an unknown handle failed: ${describeError(err)}; it must be idempotent`,
    );
  }
  if (second !== undefined && second !== handle) await conn.releaseHandle(second).catch(() => undefined);
  return report();
}
