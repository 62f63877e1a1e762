/**
 * Why a projection was refused. Each code has its own error class so callers can
 * branch on `instanceof` or on `code`, and the enforcing interceptor can put the
 * code in its denial reason and audit annotations.
 */
export type VerificationFailureCode =
  | 'MALFORMED_PROJECTION'
  | 'MALFORMED_BODY'
  | 'DIGEST_MISMATCH'
  | 'UNSIGNED_PROJECTION'
  | 'UNKNOWN_KEY_ID'
  | 'BAD_SIGNATURE'
  | 'SURFACE_NOT_ACCEPTED'
  | 'NO_VERIFIED_POLICY';

/** A projection failed verification; admission must be refused. */
export class ProjectionVerificationError extends Error {
  readonly code: VerificationFailureCode;
  constructor(code: VerificationFailureCode, message: string) {
    super(message);
    this.name = 'ProjectionVerificationError';
    this.code = code;
  }
}

/** The envelope itself is not well formed (digest syntax, signature length, key id without signature...). */
export class MalformedProjectionError extends ProjectionVerificationError {
  /** The envelope field at fault, by its proto name. */
  readonly field: string;
  constructor(field: string, message: string) {
    super('MALFORMED_PROJECTION', `malformed projection: ${field}: ${message}`);
    this.name = 'MalformedProjectionError';
    this.field = field;
  }
}

/** The body is not a valid, fully understood `openshell.sandbox.v1.SandboxPolicy` encoding. */
export class MalformedBodyError extends ProjectionVerificationError {
  /** Where in the body the problem is, as a dotted field path ("" for the top level). */
  readonly at: string;
  constructor(at: string, message: string) {
    super('MALFORMED_BODY', `malformed policy body${at ? ` at ${at}` : ''}: ${message}`);
    this.name = 'MalformedBodyError';
    this.at = at;
  }
}

/** SHA-256 over the body is not the digest the envelope claims. */
export class DigestMismatchError extends ProjectionVerificationError {
  readonly expected: string;
  readonly actual: string;
  constructor(expected: string, actual: string) {
    super('DIGEST_MISMATCH', `policy digest mismatch: envelope says ${expected}, body hashes to ${actual}`);
    this.name = 'DigestMismatchError';
    this.expected = expected;
    this.actual = actual;
  }
}

/** Signatures are required (a trust store is configured) and the projection carries none. */
export class UnsignedProjectionError extends ProjectionVerificationError {
  constructor() {
    super('UNSIGNED_PROJECTION', 'unsigned projection: a signature is required by the trust store');
    this.name = 'UnsignedProjectionError';
  }
}

/** The signing key id is not in the trust store. */
export class UnknownKeyIdError extends ProjectionVerificationError {
  readonly keyId: string;
  constructor(keyId: string, known: readonly string[]) {
    super(
      'UNKNOWN_KEY_ID',
      `unknown signing key id '${keyId}' (trusted: ${known.length ? known.join(', ') : 'none'})`,
    );
    this.name = 'UnknownKeyIdError';
    this.keyId = keyId;
  }
}

/** The Ed25519 signature does not verify with the key named by the key id. */
export class BadSignatureError extends ProjectionVerificationError {
  readonly keyId: string;
  constructor(keyId: string) {
    super('BAD_SIGNATURE', `bad signature: does not verify with trusted key '${keyId}'`);
    this.name = 'BadSignatureError';
    this.keyId = keyId;
  }
}

/** The projection is for a surface the verifying side does not accept. */
export class SurfaceNotAcceptedError extends ProjectionVerificationError {
  readonly surfaceId: string;
  constructor(surfaceId: string, accepted: readonly string[]) {
    super(
      'SURFACE_NOT_ACCEPTED',
      `surface '${surfaceId}' is not accepted (accepted: ${accepted.length ? accepted.join(', ') : 'none'})`,
    );
    this.name = 'SurfaceNotAcceptedError';
    this.surfaceId = surfaceId;
  }
}

/** The driver answered "no verified policy" for the handle. */
export class NoVerifiedPolicyError extends ProjectionVerificationError {
  constructor(reason: string) {
    super('NO_VERIFIED_POLICY', `driver has no verified policy${reason ? `: ${reason}` : ''}`);
    this.name = 'NoVerifiedPolicyError';
  }
}

/** A key file, directory or JWKS could not be loaded into a trust store. */
export class TrustStoreError extends Error {
  /** The file (or directory) at fault. */
  readonly source: string;
  constructor(source: string, message: string) {
    super(`trust store ${source}: ${message}`);
    this.name = 'TrustStoreError';
    this.source = source;
  }
}
