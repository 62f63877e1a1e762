import { createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';

/** Key ids name keys in files and envelopes: printable ASCII, no spaces. */
const KEY_ID = /^[\x21-\x7e]{1,200}$/;

export function isValidKeyId(kid: string): boolean {
  return KEY_ID.test(kid);
}

/** A key pair for signing projections. */
export interface SigningKeyPair {
  readonly keyId: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/**
 * A fresh Ed25519 key pair. Without `keyId`, the key id is the RFC 7638 JWK
 * thumbprint of the public key, so it is stable and collision-free.
 */
export async function generateSigningKey(keyId?: string): Promise<SigningKeyPair> {
  if (keyId !== undefined && !isValidKeyId(keyId)) {
    throw new Error(`invalid key id '${keyId}': printable ASCII without spaces, 1 to 200 characters`);
  }
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const kid = keyId ?? (await calculateJwkThumbprint(publicKey.export({ format: 'jwk' }) as JWK));
  return { keyId: kid, privateKey, publicKey };
}

/** The public JWK of an Ed25519 key, with its key id, `alg` and `use` set. */
export function publicJwk(publicKey: KeyObject, keyId: string): JWK {
  const jwk = publicKey.export({ format: 'jwk' }) as JWK;
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, kid: keyId, alg: 'EdDSA', use: 'sig' };
}

/**
 * An Ed25519 private key from a KeyObject or PKCS#8 PEM text. Throws naming the
 * problem when the material is not an Ed25519 private key.
 */
export function toEd25519PrivateKey(key: KeyObject | string): KeyObject {
  let obj: KeyObject;
  if (key instanceof KeyObject) obj = key;
  else {
    try {
      obj = createPrivateKey(key);
    } catch (err) {
      throw new Error(`not a PEM private key: ${(err as Error).message}`);
    }
  }
  if (obj.type !== 'private') throw new Error(`expected a private key, got a ${obj.type} key`);
  if (obj.asymmetricKeyType !== 'ed25519') {
    throw new Error(`expected an Ed25519 key, got ${obj.asymmetricKeyType ?? 'an unknown key type'}`);
  }
  return obj;
}

/** An Ed25519 public key from a KeyObject or SPKI PEM text (private keys are refused). */
export function toEd25519PublicKey(key: KeyObject | string): KeyObject {
  let obj: KeyObject;
  if (key instanceof KeyObject) obj = key;
  else {
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) {
      throw new Error('holds a private key; a trust store takes public keys only');
    }
    try {
      obj = createPublicKey(key);
    } catch (err) {
      throw new Error(`not a PEM public key: ${(err as Error).message}`);
    }
  }
  if (obj.type !== 'public') throw new Error(`expected a public key, got a ${obj.type} key`);
  if (obj.asymmetricKeyType !== 'ed25519') {
    throw new Error(`expected an Ed25519 key, got ${obj.asymmetricKeyType ?? 'an unknown key type'}`);
  }
  return obj;
}
