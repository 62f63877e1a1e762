import { randomUUID } from 'node:crypto';
import {
  buildProjection,
  definePolicyDriver,
  type PolicyDriver,
  type Projection,
  SANDBOX_POLICY_SURFACE,
  UnknownHandleError,
} from '@openshell-interceptors/policy-authority';
import type { SandboxPolicyJson } from '@openshell-interceptors/protocol';

/** The one policy the null driver projects: workdir plus read-only system paths, no network. */
export const NULL_POLICY: SandboxPolicyJson = {
  version: 1,
  filesystem: { includeWorkdir: true, readOnly: ['/usr', '/lib', '/etc'], readWrite: ['/tmp'] },
  landlock: { compatibility: 'best_effort' },
  process: { runAsUser: 'sandbox', runAsGroup: 'sandbox' },
};

export const NULL_DRIVER_VERSION = 'null-driver/0.1.0';

export interface NullDriverOptions {
  /** Default false: the enforcing side refuses policy changes. */
  readonly permitsMutation?: boolean;
}

/**
 * The smallest conforming policy driver: one fixed, unsigned projection for
 * every handle. Handles live in memory, so they do not survive a restart (the
 * signed-bundle driver shows persistent handles).
 */
export function createNullDriver(options: NullDriverOptions = {}): PolicyDriver {
  const handles = new Set<string>();
  // Built once: every handle gets byte-identical projections.
  const projection: Projection = buildProjection({
    surfaceId: SANDBOX_POLICY_SURFACE,
    policy: NULL_POLICY,
    auditContext: { driver: NULL_DRIVER_VERSION },
  });
  return definePolicyDriver({
    capabilities: {
      supportedSurfaces: [SANDBOX_POLICY_SURFACE],
      permitsMutation: options.permitsMutation ?? false,
      driverVersion: NULL_DRIVER_VERSION,
      features: [],
    },
    acquireHandle() {
      const handle = randomUUID();
      handles.add(handle);
      return handle;
    },
    getProjection(handle) {
      if (!handles.has(handle)) throw new UnknownHandleError(handle);
      return projection;
    },
    releaseHandle(handle) {
      return handles.delete(handle);
    },
  });
}
