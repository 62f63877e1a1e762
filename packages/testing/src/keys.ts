import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, type JWK } from 'jose';

/** A throwaway Ed25519 gateway signing key: the private half on disk (the runtime reads a PEM file). */
export interface TestSigningKey {
  readonly keyId: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** PKCS#8 PEM file of the private key, in a private temporary directory. */
  readonly privateKeyPath: string;
  /** SPKI PEM text of the public key. */
  readonly publicKeyPem: string;
  /** The public key as a JWK (kid, alg EdDSA, use sig). */
  readonly publicJwk: JWK;
  /** Remove the temporary directory. Idempotent. */
  cleanup(): Promise<void>;
}

/** Generate a fresh Ed25519 key pair for gateway tokens (tests only: the key lives in a temp dir). */
export async function createTestSigningKey(keyId = 'test-gateway-key'): Promise<TestSigningKey> {
  const dir = await mkdtemp(join(tmpdir(), 'openshell-test-key-'));
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const privateKeyPath = join(dir, 'gateway-signing.pem');
  await writeFile(privateKeyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid: keyId, alg: 'EdDSA', use: 'sig' };
  return {
    keyId,
    privateKey,
    publicKey,
    privateKeyPath,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    publicJwk,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
