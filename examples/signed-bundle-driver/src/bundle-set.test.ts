import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createBundle,
  generateSigningKey,
  type RuntimeContext,
  TrustStore,
  writeBundleFile,
} from '@openshell-interceptors/policy-authority';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BundleSetError, bundleNameFor, loadBundleSet } from './bundle-set.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bundles-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ctx = (user: string, tenant?: string): RuntimeContext => ({
  sandboxId: 's',
  userSubject: user,
  attributes: tenant ? { tenant_id: tenant } : {},
});

describe('bundleNameFor', () => {
  const names = new Set(['tenant-acme', 'user-bob', 'default']);
  const has = (n: string) => names.has(n);
  it('prefers the tenant bundle, then the user bundle, then default', () => {
    expect(bundleNameFor(ctx('bob', 'acme'), has)).toBe('tenant-acme');
    expect(bundleNameFor(ctx('bob', 'globex'), has)).toBe('user-bob');
    expect(bundleNameFor(ctx('bob'), has)).toBe('user-bob');
    expect(bundleNameFor(ctx('carol'), has)).toBe('default');
    expect(bundleNameFor(ctx(''), (n) => n === 'user-')).toBeUndefined();
    expect(bundleNameFor(ctx('carol'), () => false)).toBeUndefined();
  });
});

describe('loadBundleSet', () => {
  it('loads yaml and json bundles by file name and ignores other files', async () => {
    await writeBundleFile(join(dir, 'default.yaml'), createBundle({ policy: { version: 1 } }));
    await writeBundleFile(join(dir, 'tenant-acme.json'), createBundle({ policy: { version: 2 } }));
    await writeFile(join(dir, 'notes.txt'), 'x');
    await writeFile(join(dir, '.default.yaml.swp'), 'x');
    const set = await loadBundleSet(dir);
    expect(set.names).toEqual(['default', 'tenant-acme']);
    const r = set.resolve(ctx('x', 'acme'));
    expect('name' in r && r.name).toBe('tenant-acme');
    expect(set.resolve(ctx('x', 'nobody'))).toMatchObject({ name: 'default' });
  });

  it('explains a context without a bundle', async () => {
    await writeBundleFile(join(dir, 'tenant-acme.yaml'), createBundle({ policy: { version: 1 } }));
    expect((await loadBundleSet(dir)).resolve(ctx('dave', 'globex'))).toEqual({
      reason: "no bundle for tenant 'globex', user 'dave' and no default bundle",
    });
  });

  it('fails as a whole on a malformed file or a duplicate name, naming each file', async () => {
    await writeBundleFile(join(dir, 'default.yaml'), createBundle({ policy: { version: 1 } }));
    await writeBundleFile(join(dir, 'default.json'), createBundle({ policy: { version: 1 } }));
    await writeFile(join(dir, 'broken.yaml'), 'format: nope\n');
    try {
      await loadBundleSet(dir);
      throw new Error('expected a BundleSetError');
    } catch (err) {
      expect(err).toBeInstanceOf(BundleSetError);
      const files = (err as BundleSetError).problems.map((p) => p.file);
      expect(files).toEqual([join(dir, 'broken.yaml'), join(dir, 'default.yaml')]);
      expect((err as BundleSetError).problems[0]?.error).toContain('MALFORMED_BUNDLE');
    }
  });

  it('with a trust store, an unsigned or foreign-signed bundle fails the load', async () => {
    const key = await generateSigningKey('k');
    const trust = TrustStore.fromKeys([{ keyId: 'k', publicKey: key.publicKey }]);
    await writeBundleFile(join(dir, 'default.yaml'), createBundle({ policy: { version: 1 }, signer: key }));
    expect((await loadBundleSet(dir, { trust })).allSigned).toBe(true);
    await writeBundleFile(join(dir, 'user-x.yaml'), createBundle({ policy: { version: 1 } }));
    await expect(loadBundleSet(dir, { trust })).rejects.toThrow(/UNSIGNED_PROJECTION/);
    // Without a trust store it is served as is, for the enforcing side to refuse.
    const set = await loadBundleSet(dir);
    expect(set.allSigned).toBe(false);
    expect(set.size).toBe(2);
  });
});
