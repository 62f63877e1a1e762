import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OTHER_POLICY, SAMPLE_POLICY } from './__fixtures__/policies.js';
import {
  BUNDLE_FORMAT,
  BundleError,
  createBundle,
  formatBundle,
  type PolicyBundle,
  parseBundle,
  readBundleFile,
  verifyBundle,
  writeBundleFile,
} from './bundle.js';
import { BadSignatureError, DigestMismatchError, UnsignedProjectionError } from './errors.js';
import { FileFormatError } from './files.js';
import { generateSigningKey } from './keys.js';
import { encodePolicy, policyDigest } from './projection.js';
import { TrustStore } from './trust-store.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pa-bundle-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function signed() {
  const key = await generateSigningKey('k1');
  const trust = TrustStore.fromKeys([{ keyId: 'k1', publicKey: key.publicKey }]);
  const bundle = createBundle({ policy: SAMPLE_POLICY, auditContext: { ticket: 'SEC-1' }, signer: key });
  return { key, trust, bundle };
}

function bundleError(fn: () => unknown): BundleError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BundleError);
    return err as BundleError;
  }
  throw new Error('expected a BundleError');
}

describe('bundles', () => {
  it('carry the envelope, the readable policy and the signed body', async () => {
    const { bundle } = await signed();
    expect(bundle.format).toBe(BUNDLE_FORMAT);
    expect(bundle.surface_id).toBe('openshell.sandbox.v1');
    expect(bundle.policy).toEqual(SAMPLE_POLICY);
    expect(Buffer.from(bundle.body, 'base64')).toEqual(encodePolicy(SAMPLE_POLICY));
    expect(bundle.policy_digest).toBe(policyDigest(encodePolicy(SAMPLE_POLICY)));
    expect(bundle.signing_key_id).toBe('k1');
    expect(Buffer.from(bundle.signature!, 'base64')).toHaveLength(64);
    expect(bundle.audit_context).toEqual({ ticket: 'SEC-1' });
  });

  it('round-trip through YAML and JSON files and still verify', async () => {
    const { trust, bundle } = await signed();
    for (const name of ['b.yaml', 'b.json']) {
      const file = join(dir, name);
      await writeBundleFile(file, bundle);
      const text = await readFile(file, 'utf8');
      expect(text.startsWith(name.endsWith('.json') ? '{' : '# OpenShell policy bundle')).toBe(true);
      const back = await readBundleFile(file);
      expect(back).toEqual(bundle);
      expect(verifyBundle(back, { trust }).signingKeyId).toBe('k1');
    }
  });

  it('tampered readable policy: POLICY_MISMATCH', async () => {
    const { trust, bundle } = await signed();
    const err = bundleError(() => verifyBundle({ ...bundle, policy: OTHER_POLICY }, { trust }));
    expect(err.code).toBe('POLICY_MISMATCH');
  });

  it('tampered body: DIGEST_MISMATCH; tampered digest with body: BAD_SIGNATURE; tampered audit: BAD_SIGNATURE', async () => {
    const { trust, bundle } = await signed();
    const body = encodePolicy(OTHER_POLICY);
    const b64 = body.toString('base64');
    expect(() => verifyBundle({ ...bundle, body: b64, policy: OTHER_POLICY }, { trust })).toThrow(
      DigestMismatchError,
    );
    expect(() =>
      verifyBundle(
        { ...bundle, body: b64, policy: OTHER_POLICY, policy_digest: policyDigest(body) },
        { trust },
      ),
    ).toThrow(BadSignatureError);
    expect(() => verifyBundle({ ...bundle, audit_context: { ticket: 'SEC-2' } }, { trust })).toThrow(
      BadSignatureError,
    );
  });

  it('an unsigned bundle is refused by a trust store', async () => {
    const { trust } = await signed();
    const unsigned = createBundle({ policy: SAMPLE_POLICY });
    expect(unsigned.signature).toBeUndefined();
    expect(unsigned.signing_key_id).toBeUndefined();
    expect(() => verifyBundle(unsigned, { trust })).toThrow(UnsignedProjectionError);
    expect(verifyBundle(unsigned).signatureVerified).toBe(false);
  });

  it('shape errors name the key', async () => {
    const { bundle } = await signed();
    const doc = JSON.parse(JSON.stringify(bundle)) as Record<string, unknown>;
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ ...doc, extra: 1 }, 'extra', /unknown key/],
      [{ ...doc, format: 'v0' }, 'format', /must be 'openshell\.policy\.bundle\.v1'/],
      [{ ...doc, body: 'not base64!' }, 'body', /base64/],
      [{ ...doc, signature: undefined }, 'signature', /go together/],
      [{ ...doc, audit_context: { n: 1 } }, 'audit_context.n', /must be a string/],
      [{ ...doc, policy: undefined }, 'policy', /is required/],
      [{ ...doc, policy_digest: 7 }, 'policy_digest', /must be a string/],
    ];
    for (const [d, field, message] of cases) {
      const err = bundleError(() => parseBundle(d));
      expect(err.code).toBe('MALFORMED_BUNDLE');
      expect(err.field).toBe(field);
      expect(err.message).toMatch(message);
    }
  });

  it('an invalid readable policy is MALFORMED_BUNDLE naming the pointer', async () => {
    const { trust, bundle } = await signed();
    const err = bundleError(() =>
      verifyBundle(
        { ...bundle, policy: { ...SAMPLE_POLICY, bogus: 1 } as PolicyBundle['policy'] },
        { trust },
      ),
    );
    expect(err.code).toBe('MALFORMED_BUNDLE');
    expect(err.message).toContain('/bogus');
  });

  it('unparseable files and duplicate keys are FileFormatErrors naming the file', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'format: a\nformat: b\n');
    await expect(readBundleFile(file)).rejects.toThrow(FileFormatError);
    await expect(readBundleFile(file)).rejects.toThrow(file);
  });

  it('formatBundle yaml is re-readable and marks the content as signed', async () => {
    const { bundle } = await signed();
    expect(formatBundle(bundle, 'yaml')).toContain('do not edit');
  });
});
