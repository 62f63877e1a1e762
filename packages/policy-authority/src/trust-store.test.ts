import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SAMPLE_POLICY } from './__fixtures__/policies.js';
import { BadSignatureError, TrustStoreError, UnknownKeyIdError } from './errors.js';
import { generateSigningKey, publicJwk } from './keys.js';
import { buildProjection, verifyProjection } from './projection.js';
import { TrustStore } from './trust-store.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pa-trust-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const spki = (k: { publicKey: import('node:crypto').KeyObject }) =>
  k.publicKey.export({ type: 'spki', format: 'pem' }).toString();

async function loadError(path: string): Promise<TrustStoreError> {
  try {
    await TrustStore.load(path);
  } catch (err) {
    expect(err).toBeInstanceOf(TrustStoreError);
    return err as TrustStoreError;
  }
  throw new Error('expected TrustStore.load to fail');
}

describe('TrustStore.load', () => {
  it('loads <kid>.pem and <kid>.jwk files from a directory, ignoring other files', async () => {
    const a = await generateSigningKey('key-a');
    const b = await generateSigningKey('key-b');
    await writeFile(join(dir, 'key-a.pem'), spki(a));
    await writeFile(join(dir, 'key-b.jwk'), JSON.stringify(publicJwk(b.publicKey, 'key-b')));
    await writeFile(join(dir, 'README.txt'), 'not a key');
    await writeFile(join(dir, '.hidden.pem'), 'ignored');
    const trust = await TrustStore.load(dir);
    expect(trust.keyIds).toEqual(['key-a', 'key-b']);
    expect(trust.key('key-a')?.publicKey.equals(a.publicKey)).toBe(true);
    expect(trust.key('key-b')?.source).toBe(join(dir, 'key-b.jwk'));
  });

  it('loads a JWKS file', async () => {
    const a = await generateSigningKey('one');
    const b = await generateSigningKey('two');
    const file = join(dir, 'jwks.json');
    await writeFile(
      file,
      JSON.stringify({ keys: [publicJwk(a.publicKey, 'one'), publicJwk(b.publicKey, 'two')] }),
    );
    const trust = await TrustStore.load(file);
    expect(trust.keyIds).toEqual(['one', 'two']);
  });

  it('rotation: projections signed with the old and the new key both verify', async () => {
    const oldKey = await generateSigningKey('2024-q4');
    const newKey = await generateSigningKey('2025-q1');
    await writeFile(join(dir, '2024-q4.pem'), spki(oldKey));
    await writeFile(join(dir, '2025-q1.jwk'), JSON.stringify(publicJwk(newKey.publicKey, '2025-q1')));
    const trust = await TrustStore.load(dir);
    for (const k of [oldKey, newKey]) {
      const v = verifyProjection(buildProjection({ policy: SAMPLE_POLICY, signer: k }), { trust });
      expect(v.signingKeyId).toBe(k.keyId);
    }
    // Retiring the old key: its projections stop verifying, the new one's still do.
    await rm(join(dir, '2024-q4.pem'));
    const rotated = await TrustStore.load(dir);
    expect(() =>
      verifyProjection(buildProjection({ policy: SAMPLE_POLICY, signer: oldKey }), { trust: rotated }),
    ).toThrow(UnknownKeyIdError);
    expect(
      verifyProjection(buildProjection({ policy: SAMPLE_POLICY, signer: newKey }), { trust: rotated })
        .signatureVerified,
    ).toBe(true);
  });

  it('the same key id from a PEM and a JWK is fine when it is the same key', async () => {
    const a = await generateSigningKey('same');
    await writeFile(join(dir, 'same.pem'), spki(a));
    await writeFile(join(dir, 'same.jwk'), JSON.stringify(publicJwk(a.publicKey, 'same')));
    expect((await TrustStore.load(dir)).keyIds).toEqual(['same']);
  });

  it('refuses one key id bound to two different keys', async () => {
    const a = await generateSigningKey('dup');
    const b = await generateSigningKey('dup');
    await writeFile(join(dir, 'dup.pem'), spki(a));
    await writeFile(join(dir, 'dup.jwk'), JSON.stringify(publicJwk(b.publicKey, 'dup')));
    const err = await loadError(dir);
    expect(err.message).toContain("key id 'dup' is already bound to a different key");
  });

  it('refuses a private key in the trust store (PEM and JWK)', async () => {
    const a = await generateSigningKey('priv');
    await writeFile(join(dir, 'priv.pem'), a.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    expect((await loadError(dir)).message).toContain('public keys only');
    await rm(join(dir, 'priv.pem'));
    await writeFile(
      join(dir, 'priv.jwk'),
      JSON.stringify({ ...a.privateKey.export({ format: 'jwk' }), kid: 'priv' }),
    );
    expect((await loadError(dir)).message).toContain('("d")');
  });

  it('refuses keys that are not Ed25519', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(join(dir, 'ec.pem'), ec.publicKey.export({ type: 'spki', format: 'pem' }).toString());
    const err = await loadError(dir);
    expect(err.source).toBe(join(dir, 'ec.pem'));
    expect(err.message).toContain('expected an Ed25519 key, got ec');
    await rm(join(dir, 'ec.pem'));
    await writeFile(
      join(dir, 'ec.jwk'),
      JSON.stringify({ ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec' }),
    );
    expect((await loadError(dir)).message).toContain('kty must be "OKP"');
    await writeFile(join(dir, 'ec.jwk'), JSON.stringify({ kty: 'OKP', crv: 'X25519', x: 'AAAA', kid: 'ec' }));
    expect((await loadError(dir)).message).toContain('crv must be "Ed25519"');
  });

  it('refuses a JWKS entry without a kid, naming the entry', async () => {
    const a = await generateSigningKey('x');
    const { kid: _kid, ...noKid } = publicJwk(a.publicKey, 'x');
    const file = join(dir, 'keys.json');
    await writeFile(file, JSON.stringify({ keys: [noKid] }));
    const err = await loadError(file);
    expect(err.source).toBe(`${file}#/keys/0`);
    expect(err.message).toContain('invalid key id');
  });

  it('refuses a .jwk whose kid disagrees with its file name', async () => {
    const a = await generateSigningKey('x');
    await writeFile(join(dir, 'name.jwk'), JSON.stringify(publicJwk(a.publicKey, 'other')));
    expect((await loadError(dir)).message).toContain("file is named for 'name'");
  });

  it('refuses an empty directory, a missing path and invalid JSON', async () => {
    expect((await loadError(dir)).message).toContain('holds no keys');
    expect((await loadError(join(dir, 'missing'))).message).toContain('ENOENT');
    await writeFile(join(dir, 'bad.json'), '{not json');
    expect((await loadError(join(dir, 'bad.json'))).message).toContain('not valid JSON');
  });
});

describe('TrustStore.verifySignature', () => {
  it('names an unknown key id and a bad signature', async () => {
    const a = await generateSigningKey('a');
    const trust = TrustStore.fromKeys([{ keyId: 'a', publicKey: a.publicKey }]);
    expect(() => trust.verifySignature(Buffer.from('x'), Buffer.alloc(64), 'b')).toThrow(UnknownKeyIdError);
    expect(() => trust.verifySignature(Buffer.from('x'), Buffer.alloc(64), 'a')).toThrow(BadSignatureError);
  });

  it('fromJwks accepts an in-memory JWKS', async () => {
    const a = await generateSigningKey('mem');
    const trust = await TrustStore.fromJwks({ keys: [publicJwk(a.publicKey, 'mem')] });
    expect(trust.has('mem')).toBe(true);
    expect(trust.size).toBe(1);
  });
});
