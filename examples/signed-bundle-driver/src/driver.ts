import { type FSWatcher, watch } from 'node:fs';
import {
  definePolicyDriver,
  type PolicyDriver,
  SANDBOX_POLICY_SURFACE,
  type TrustStore,
  UnknownHandleError,
} from '@openshell-interceptors/policy-authority';
import type { Logger } from 'pino';
import { type BundleSet, BundleSetError, loadBundleSet } from './bundle-set.js';
import { HandleStore } from './handle-store.js';

export const SIGNED_BUNDLE_DRIVER_VERSION = 'signed-bundle-driver/0.1.0';

export interface SignedBundleDriverOptions {
  /** Directory of bundles (`<name>.yaml|yml|json`). */
  readonly bundlesDir: string;
  /** Directory of handle records; survives restarts. */
  readonly stateDir: string;
  /** When set, bundles are verified at load and a bundle that fails refuses the (re)load. */
  readonly trust?: TrustStore;
  /** Default false. */
  readonly permitsMutation?: boolean;
  /** Quiet period after the last change before reloading, default 200 ms. */
  readonly debounceMs?: number;
  /** Watch the directory for changes, default true. */
  readonly watch?: boolean;
  readonly logger: Logger;
}

export interface SignedBundleDriver {
  readonly driver: PolicyDriver;
  readonly handles: HandleStore;
  /** The set in service. */
  bundles(): BundleSet;
  /** Reload now; false (and the last good set kept) when the directory does not load. */
  reload(): Promise<boolean>;
  /** Stop watching and cancel a pending reload. */
  close(): void;
}

/**
 * A driver serving policies from a directory of signed bundles. The first load
 * must succeed (it throws `BundleSetError` otherwise); later reloads, on change
 * (fs.watch plus a debounce) or on demand, replace the set only when the whole
 * directory loads, else log an error and keep serving the last good set.
 */
export async function openSignedBundleDriver(
  options: SignedBundleDriverOptions,
): Promise<SignedBundleDriver> {
  const log = options.logger;
  const loadOptions = options.trust ? { trust: options.trust } : {};
  let current = await loadBundleSet(options.bundlesDir, loadOptions);
  log.info({ bundles: current.names, verified: !!options.trust }, 'bundles loaded');
  if (current.size === 0)
    log.warn({ dir: options.bundlesDir }, 'no bundles: every projection is "no verified policy"');
  const handles = await HandleStore.open(options.stateDir, log);

  let running: Promise<boolean> | undefined;
  let again = false;
  const reloadOnce = async (): Promise<boolean> => {
    try {
      const next = await loadBundleSet(options.bundlesDir, loadOptions);
      current = next;
      log.info({ bundles: next.names }, 'bundles reloaded');
      return true;
    } catch (err) {
      const problems =
        err instanceof BundleSetError ? err.problems : [{ file: options.bundlesDir, error: String(err) }];
      log.error({ problems, serving: current.names }, 'bundle reload failed; keeping the last good set');
      return false;
    }
  };
  // Reloads never overlap: a change during a reload schedules one more afterwards.
  const reload = (): Promise<boolean> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      let ok = await reloadOnce();
      while (again) {
        again = false;
        ok = await reloadOnce();
      }
      running = undefined;
      return ok;
    })();
    return running;
  };

  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  if (options.watch ?? true) {
    watcher = watch(options.bundlesDir, { persistent: false }, () => {
      clearTimeout(timer);
      timer = setTimeout(() => void reload(), options.debounceMs ?? 200);
    });
    watcher.on('error', (err) => log.error({ err: err.message }, 'bundle directory watch failed'));
  }

  const driver = definePolicyDriver({
    capabilities: () => ({
      supportedSurfaces: [SANDBOX_POLICY_SURFACE],
      permitsMutation: options.permitsMutation ?? false,
      driverVersion: SIGNED_BUNDLE_DRIVER_VERSION,
      features: [...(current.allSigned ? ['signed-projections'] : []), 'persistent-handles', 'bundle-reload'],
    }),
    async acquireHandle(ctx) {
      const handle = await handles.acquire(ctx);
      log.info(
        { handle, sandbox_id: ctx.sandboxId, user: ctx.userSubject, tenant: ctx.attributes.tenant_id },
        'handle acquired',
      );
      return handle;
    },
    getProjection(handle) {
      const record = handles.get(handle);
      if (!record) throw new UnknownHandleError(handle);
      // Resolved per call, so a reloaded bundle applies to the next admission.
      const found = current.resolve(record.context);
      if ('reason' in found) return { noVerifiedPolicy: found.reason };
      log.info({ handle, bundle: found.name, digest: found.projection.policyDigest }, 'projection served');
      return found.projection;
    },
    async releaseHandle(handle) {
      const released = await handles.release(handle);
      if (released) log.info({ handle }, 'handle released');
      return released;
    },
  });

  return {
    driver,
    handles,
    bundles: () => current,
    reload,
    close() {
      clearTimeout(timer);
      watcher?.close();
    },
  };
}
