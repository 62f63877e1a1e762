import { readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import {
  bundleToProjection,
  type PolicyBundle,
  type Projection,
  type RuntimeContext,
  readBundleFile,
  type TrustStore,
  verifyBundle,
} from '@openshell-interceptors/policy-authority';

const BUNDLE_EXT = new Set(['.yaml', '.yml', '.json']);

/** One bundle file, ready to serve. */
export interface LoadedBundle {
  /** File name without its extension: what the mapping rule matches. */
  readonly name: string;
  readonly file: string;
  readonly bundle: PolicyBundle;
  readonly projection: Projection;
}

/** A directory that could not be loaded as a whole; `problems` names every bad file. */
export class BundleSetError extends Error {
  readonly problems: readonly { file: string; error: string }[];
  constructor(dir: string, problems: { file: string; error: string }[]) {
    super(`${dir}: ${problems.map((p) => `${p.file}: ${p.error}`).join('; ')}`);
    this.name = 'BundleSetError';
    this.problems = problems;
  }
}

/**
 * The mapping rule from a runtime context to a bundle name, first match wins:
 * 1. `tenant-<tenant_id>` when the `tenant_id` attribute is set and that bundle exists;
 * 2. `user-<user_subject>` when the subject is set and that bundle exists;
 * 3. `default` when it exists.
 * Otherwise there is no bundle, and the driver answers "no verified policy".
 */
export function bundleNameFor(ctx: RuntimeContext, has: (name: string) => boolean): string | undefined {
  const tenant = ctx.attributes.tenant_id ?? '';
  if (tenant !== '' && has(`tenant-${tenant}`)) return `tenant-${tenant}`;
  if (ctx.userSubject !== '' && has(`user-${ctx.userSubject}`)) return `user-${ctx.userSubject}`;
  if (has('default')) return 'default';
  return undefined;
}

/** An immutable set of bundles by name; a reload builds a new one. */
export class BundleSet {
  private readonly byName: ReadonlyMap<string, LoadedBundle>;
  constructor(bundles: Iterable<LoadedBundle>) {
    this.byName = new Map([...bundles].map((b) => [b.name, b]));
  }

  get names(): string[] {
    return [...this.byName.keys()].sort();
  }

  get size(): number {
    return this.byName.size;
  }

  /** Every bundle carries a signature (advertised as the `signed-projections` feature). */
  get allSigned(): boolean {
    return this.size > 0 && [...this.byName.values()].every((b) => b.projection.signature.length > 0);
  }

  get(name: string): LoadedBundle | undefined {
    return this.byName.get(name);
  }

  resolve(ctx: RuntimeContext): LoadedBundle | { reason: string } {
    const name = bundleNameFor(ctx, (n) => this.byName.has(n));
    if (name !== undefined) return this.byName.get(name)!;
    const tenant = ctx.attributes.tenant_id;
    return {
      reason: `no bundle for ${tenant ? `tenant '${tenant}', ` : ''}user '${ctx.userSubject}' and no default bundle`,
    };
  }
}

/**
 * Load every `*.yaml|*.yml|*.json` bundle of a directory (dot-files and other
 * names are ignored). All or nothing: any unreadable, malformed or (with a trust
 * store) unverifiable bundle, or two files with one name, fails the whole load.
 * Without a trust store bundles are served as they are, for the enforcing side to verify.
 */
export async function loadBundleSet(dir: string, options: { trust?: TrustStore } = {}): Promise<BundleSet> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => !n.startsWith('.') && BUNDLE_EXT.has(extname(n))).sort();
  } catch (err) {
    throw new BundleSetError(dir, [
      { file: dir, error: `cannot read: ${(err as NodeJS.ErrnoException).code}` },
    ]);
  }
  const problems: { file: string; error: string }[] = [];
  const loaded = new Map<string, LoadedBundle>();
  for (const n of names) {
    const file = join(dir, n);
    const name = n.slice(0, -extname(n).length);
    const prev = loaded.get(name);
    if (prev) {
      problems.push({ file, error: `bundle name '${name}' is also used by ${prev.file}` });
      continue;
    }
    try {
      const bundle = await readBundleFile(file);
      if (options.trust) verifyBundle(bundle, { trust: options.trust });
      loaded.set(name, { name, file, bundle, projection: bundleToProjection(bundle) });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      problems.push({
        file,
        error: `${typeof code === 'string' ? `${code}: ` : ''}${(err as Error).message}`,
      });
    }
  }
  if (problems.length) throw new BundleSetError(dir, problems);
  return new BundleSet(loaded.values());
}
