import { verify as cryptoVerify, KeyObject, type webcrypto } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { importJWK, type JWK } from 'jose';
import { BadSignatureError, TrustStoreError, UnknownKeyIdError } from './errors.js';
import { isValidKeyId, toEd25519PublicKey } from './keys.js';

/** A trusted public key and where it came from (for messages and `describe`). */
export interface TrustedKey {
  readonly keyId: string;
  readonly publicKey: KeyObject;
  readonly source: string;
}

const PEM_EXT = new Set(['.pem']);
const JSON_EXT = new Set(['.jwk', '.json', '.jwks']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One JWK → KeyObject, refusing anything that is not a public OKP Ed25519 signing key. */
async function importEd25519Jwk(jwk: unknown, where: string): Promise<KeyObject> {
  if (!isRecord(jwk)) throw new TrustStoreError(where, 'a JWK must be a JSON object');
  if (jwk.kty !== 'OKP')
    throw new TrustStoreError(where, `kty must be "OKP", got ${JSON.stringify(jwk.kty)}`);
  if (jwk.crv !== 'Ed25519') {
    throw new TrustStoreError(where, `crv must be "Ed25519", got ${JSON.stringify(jwk.crv)}`);
  }
  if ('d' in jwk)
    throw new TrustStoreError(where, 'holds a private key ("d"); a trust store takes public keys only');
  if (typeof jwk.x !== 'string' || jwk.x === '') throw new TrustStoreError(where, '"x" is missing');
  if (jwk.use !== undefined && jwk.use !== 'sig') {
    throw new TrustStoreError(where, `use must be "sig", got ${JSON.stringify(jwk.use)}`);
  }
  if (jwk.alg !== undefined && jwk.alg !== 'EdDSA' && jwk.alg !== 'Ed25519') {
    throw new TrustStoreError(where, `alg must be "EdDSA" or "Ed25519", got ${JSON.stringify(jwk.alg)}`);
  }
  let imported: unknown;
  try {
    imported = await importJWK({ kty: 'OKP', crv: 'Ed25519', x: jwk.x } as JWK, 'EdDSA');
  } catch (err) {
    throw new TrustStoreError(where, `not a valid Ed25519 JWK: ${(err as Error).message}`);
  }
  // jose gives a WebCrypto CryptoKey on Node; node:crypto verifies with KeyObjects.
  const key = imported instanceof KeyObject ? imported : KeyObject.from(imported as webcrypto.CryptoKey);
  return toEd25519PublicKey(key);
}

function checkKid(kid: unknown, where: string): string {
  if (typeof kid !== 'string' || !isValidKeyId(kid)) {
    throw new TrustStoreError(
      where,
      `invalid key id ${JSON.stringify(kid)}: printable ASCII without spaces, 1 to 200 characters`,
    );
  }
  return kid;
}

async function keysFromJson(
  text: string,
  source: string,
  fallbackKid: string | undefined,
): Promise<TrustedKey[]> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new TrustStoreError(source, `not valid JSON: ${(err as Error).message}`);
  }
  if (isRecord(doc) && 'keys' in doc) {
    if (!Array.isArray(doc.keys)) throw new TrustStoreError(source, '"keys" must be an array');
    const out: TrustedKey[] = [];
    for (const [i, jwk] of doc.keys.entries()) {
      const where = `${source}#/keys/${i}`;
      const kid = checkKid(isRecord(jwk) ? jwk.kid : undefined, where);
      out.push({ keyId: kid, publicKey: await importEd25519Jwk(jwk, where), source: where });
    }
    return out;
  }
  if (!isRecord(doc)) throw new TrustStoreError(source, 'expected a JWK or a JWKS ({"keys": [...]})');
  const kid = checkKid(doc.kid ?? fallbackKid, source);
  if (fallbackKid !== undefined && doc.kid !== undefined && doc.kid !== fallbackKid) {
    throw new TrustStoreError(
      source,
      `"kid" is '${String(doc.kid)}' but the file is named for '${fallbackKid}'`,
    );
  }
  return [{ keyId: kid, publicKey: await importEd25519Jwk(doc, source), source }];
}

function sameKey(a: KeyObject, b: KeyObject): boolean {
  return a.equals(b);
}

/**
 * Ed25519 public keys by key id, held by the verifying side. Several keys may be
 * trusted at once so an authority can rotate: sign with the new key while
 * projections signed with the old one still verify until it is removed.
 */
export class TrustStore {
  private readonly keys: ReadonlyMap<string, TrustedKey>;
  /** Where the keys came from (a directory, a JWKS file, or "inline"). */
  readonly source: string;

  private constructor(keys: Map<string, TrustedKey>, source: string) {
    this.keys = keys;
    this.source = source;
  }

  /** From explicit keys; duplicate key ids with different keys are refused. */
  static fromKeys(
    entries: Iterable<{ keyId: string; publicKey: KeyObject | string; source?: string }>,
    source = 'inline',
  ): TrustStore {
    const keys = new Map<string, TrustedKey>();
    for (const e of entries) {
      const where = e.source ?? source;
      const kid = checkKid(e.keyId, where);
      let publicKey: KeyObject;
      try {
        publicKey = toEd25519PublicKey(e.publicKey);
      } catch (err) {
        throw new TrustStoreError(where, (err as Error).message);
      }
      TrustStore.add(keys, { keyId: kid, publicKey, source: where });
    }
    if (keys.size === 0) throw new TrustStoreError(source, 'holds no keys');
    return new TrustStore(keys, source);
  }

  /** From a JWKS document (`{"keys": [...]}`), OKP/Ed25519 keys only, each with a `kid`. */
  static async fromJwks(jwks: unknown, source = 'inline JWKS'): Promise<TrustStore> {
    return TrustStore.fromKeys(await keysFromJson(JSON.stringify(jwks), source, undefined), source);
  }

  /**
   * Load a directory or a JWKS file.
   * - directory: `<kid>.pem` (SPKI public key; the key id is the file name), `<kid>.jwk`/`.json`
   *   (one JWK; `kid` inside, else the file name) and `.jwks` or `.json` JWKS files. Other files
   *   and dot-files are ignored. The same key id may appear twice only for the same key.
   * - file: a JWKS (`{"keys": [...]}`), a single JWK, or a single `<kid>.pem`.
   */
  static async load(path: string): Promise<TrustStore> {
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(path);
    } catch (err) {
      throw new TrustStoreError(path, `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const keys: TrustedKey[] = [];
    if (info.isDirectory()) {
      const names = (await readdir(path)).filter((n) => !n.startsWith('.')).sort();
      for (const name of names) {
        const ext = extname(name).toLowerCase();
        if (!PEM_EXT.has(ext) && !JSON_EXT.has(ext)) continue;
        const file = join(path, name);
        if (!(await stat(file)).isFile()) continue;
        keys.push(...(await TrustStore.readKeyFile(file)));
      }
      if (keys.length === 0) {
        throw new TrustStoreError(path, 'holds no keys (expected <kid>.pem, <kid>.jwk or a JWKS .json file)');
      }
    } else {
      keys.push(...(await TrustStore.readKeyFile(path)));
    }
    return TrustStore.fromKeys(keys, path);
  }

  private static async readKeyFile(file: string): Promise<TrustedKey[]> {
    const text = await readFile(file, 'utf8');
    const ext = extname(file).toLowerCase();
    const stem = basename(file, extname(file));
    if (PEM_EXT.has(ext)) {
      const kid = checkKid(stem, file);
      try {
        return [{ keyId: kid, publicKey: toEd25519PublicKey(text), source: file }];
      } catch (err) {
        throw new TrustStoreError(file, (err as Error).message);
      }
    }
    // A `.jwk` file is one key named by its file; `.json`/`.jwks` may be either shape.
    return keysFromJson(text, file, ext === '.jwk' ? stem : undefined);
  }

  private static add(keys: Map<string, TrustedKey>, key: TrustedKey): void {
    const prev = keys.get(key.keyId);
    if (prev && !sameKey(prev.publicKey, key.publicKey)) {
      throw new TrustStoreError(
        key.source,
        `key id '${key.keyId}' is already bound to a different key by ${prev.source}`,
      );
    }
    if (!prev) keys.set(key.keyId, key);
  }

  /** Trusted key ids, sorted. */
  get keyIds(): string[] {
    return [...this.keys.keys()].sort();
  }

  get size(): number {
    return this.keys.size;
  }

  has(keyId: string): boolean {
    return this.keys.has(keyId);
  }

  key(keyId: string): TrustedKey | undefined {
    return this.keys.get(keyId);
  }

  /**
   * Check an Ed25519 signature over `payload` with the key named `keyId`.
   * Throws `UnknownKeyIdError` or `BadSignatureError`; returns the key used.
   */
  verifySignature(payload: Uint8Array, signature: Uint8Array, keyId: string): TrustedKey {
    const key = this.keys.get(keyId);
    if (!key) throw new UnknownKeyIdError(keyId, this.keyIds);
    let ok = false;
    try {
      ok = cryptoVerify(null, payload, key.publicKey, signature);
    } catch {
      ok = false;
    }
    if (!ok) throw new BadSignatureError(keyId);
    return key;
  }
}
