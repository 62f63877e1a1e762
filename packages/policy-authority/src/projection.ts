import { createHash, sign as cryptoSign, type KeyObject } from 'node:crypto';
import {
  canonicalize as canonicalizeMessage,
  decodeMessage,
  ProtoJsonError,
  type policyDriverV1,
  type SandboxPolicyJson,
  type sandboxV1,
  toProtoJson,
} from '@openshell-interceptors/protocol';
import jcsModule from 'canonicalize';
import { assertStrictEncoding } from './body.js';
import {
  DigestMismatchError,
  MalformedBodyError,
  MalformedProjectionError,
  SurfaceNotAcceptedError,
  UnsignedProjectionError,
} from './errors.js';
import { isValidKeyId, toEd25519PrivateKey } from './keys.js';
import type { TrustStore } from './trust-store.js';

/** The surface that carries `openshell.sandbox.v1.SandboxPolicy` bodies. */
export const SANDBOX_POLICY_SURFACE = 'openshell.sandbox.v1';
/** The protobuf type of a projection body on the sandbox policy surface. */
export const SANDBOX_POLICY_TYPE = 'openshell.sandbox.v1.SandboxPolicy';

export type Projection = policyDriverV1.Projection;

// `canonicalize` is CommonJS whose typings declare an ES default export; under
// NodeNext the default import is the function itself at run time.
const jcs = ((jcsModule as unknown as { default?: unknown }).default ?? jcsModule) as (
  input: unknown,
) => string | undefined;

const DIGEST = /^[0-9a-f]{64}$/;
const ED25519_SIGNATURE_BYTES = 64;

/** Lowercase hex SHA-256 of a body. */
export function policyDigest(body: Uint8Array): string {
  return createHash('sha256').update(body).digest('hex');
}

/** The signed fields of an envelope. */
export interface EnvelopeFields {
  readonly surfaceId: string;
  readonly policyDigest: string;
  readonly auditContext?: Readonly<Record<string, string>>;
}

/**
 * The bytes an Ed25519 signature covers: UTF-8 of the RFC 8785 (JCS) canonical JSON of
 * `{"audit_context": {...}, "policy_digest": "...", "surface_id": "..."}`. `audit_context`
 * is always present (`{}` when empty); the body is covered through the digest.
 */
export function signingPayload(fields: EnvelopeFields): Buffer {
  const text = jcs({
    audit_context: { ...(fields.auditContext ?? {}) },
    policy_digest: fields.policyDigest,
    surface_id: fields.surfaceId,
  });
  if (text === undefined) throw new Error('signing payload did not serialize');
  return Buffer.from(text, 'utf8');
}

/** A policy given to a builder is not a valid SandboxPolicy. */
export class PolicyInputError extends Error {
  /** JSON Pointer of the problem inside the policy ("" for the root). */
  readonly path: string;
  constructor(path: string, message: string) {
    super(`policy is not a valid ${SANDBOX_POLICY_TYPE}: ${path === '' ? '(root)' : path}: ${message}`);
    this.name = 'PolicyInputError';
    this.path = path;
  }
}

/**
 * Strictly parse a ProtoJSON SandboxPolicy and return its protobuf encoding
 * (the projection body). Throws `PolicyInputError` naming the JSON Pointer at fault.
 */
export function encodePolicy(policy: SandboxPolicyJson | unknown): Buffer {
  try {
    return Buffer.from(canonicalizeMessage(SANDBOX_POLICY_TYPE, policy).bytes);
  } catch (err) {
    if (err instanceof ProtoJsonError) throw new PolicyInputError(err.path, err.problem);
    throw err;
  }
}

/** Decode a body that passed the strict encoding check, as message and canonical ProtoJSON. */
export function decodePolicyBody(body: Uint8Array): {
  policy: sandboxV1.SandboxPolicy;
  policyJson: SandboxPolicyJson;
} {
  assertStrictEncoding(body, SANDBOX_POLICY_TYPE);
  let policy: sandboxV1.SandboxPolicy;
  try {
    policy = decodeMessage<sandboxV1.SandboxPolicy>(SANDBOX_POLICY_TYPE, body);
  } catch (err) {
    throw new MalformedBodyError('', (err as Error).message);
  }
  return { policy, policyJson: toProtoJson(SANDBOX_POLICY_TYPE, policy) as SandboxPolicyJson };
}

/** Signs projections: a key id and the Ed25519 private key it names. */
export interface ProjectionSigner {
  readonly keyId: string;
  /** KeyObject or PKCS#8 PEM text. */
  readonly privateKey: KeyObject | string;
}

export interface BuildProjectionInput {
  /** Defaults to `openshell.sandbox.v1`. */
  readonly surfaceId?: string;
  /** ProtoJSON SandboxPolicy (parsed strictly), or an already encoded body (checked strictly). */
  readonly policy: SandboxPolicyJson | Uint8Array;
  /** Passed through verbatim; covered by the signature. */
  readonly auditContext?: Readonly<Record<string, string>>;
  /** Omit for an unsigned projection. */
  readonly signer?: ProjectionSigner;
}

/** Ed25519 signature over the envelope's signing payload. */
export function signEnvelope(fields: EnvelopeFields, signer: ProjectionSigner): Buffer {
  if (!isValidKeyId(signer.keyId)) throw new Error(`invalid signing key id '${signer.keyId}'`);
  const key = toEd25519PrivateKey(signer.privateKey);
  return cryptoSign(null, signingPayload(fields), key);
}

/**
 * Build a projection envelope: body, digest over the body, optional audit context,
 * and (with a signer) the Ed25519 signature and key id.
 */
export function buildProjection(input: BuildProjectionInput): Projection {
  const surfaceId = input.surfaceId ?? SANDBOX_POLICY_SURFACE;
  if (surfaceId === '') throw new Error('surfaceId must not be empty');
  let body: Buffer;
  if (input.policy instanceof Uint8Array) {
    body = Buffer.from(input.policy);
    if (surfaceId === SANDBOX_POLICY_SURFACE) assertStrictEncoding(body, SANDBOX_POLICY_TYPE);
  } else {
    body = encodePolicy(input.policy);
  }
  const auditContext: Record<string, string> = { ...(input.auditContext ?? {}) };
  for (const [k, v] of Object.entries(auditContext)) {
    if (typeof v !== 'string') throw new Error(`audit context value for '${k}' must be a string`);
  }
  const digest = policyDigest(body);
  const fields = { surfaceId, policyDigest: digest, auditContext };
  return {
    surfaceId,
    policyDigest: digest,
    body,
    signature: input.signer ? signEnvelope(fields, input.signer) : Buffer.alloc(0),
    signingKeyId: input.signer?.keyId ?? '',
    auditContext,
  };
}

export interface VerifyOptions {
  /**
   * Keys held by the verifying side. With a trust store, signatures are required
   * unless `requireSignature` is explicitly false; a present signature is always checked.
   */
  readonly trust?: TrustStore;
  /** Default: true when `trust` is given. True without `trust` is a configuration error. */
  readonly requireSignature?: boolean;
  /** Surfaces accepted; default and only known: `[openshell.sandbox.v1]` (`[]` accepts none). */
  readonly surfaces?: readonly string[];
}

/** A projection that passed verification, with its body decoded. */
export interface VerifiedProjection {
  readonly surfaceId: string;
  readonly policyDigest: string;
  /** The body exactly as received. */
  readonly body: Buffer;
  readonly policy: sandboxV1.SandboxPolicy;
  /** Canonical ProtoJSON of the policy: what goes into `spec.policy`. */
  readonly policyJson: SandboxPolicyJson;
  /** Key id the signature verified with; undefined when unsigned or not checked. */
  readonly signingKeyId: string | undefined;
  /** True when a signature was present and verified against the trust store. */
  readonly signatureVerified: boolean;
  readonly auditContext: Readonly<Record<string, string>>;
}

/**
 * Verify an envelope, in this order: envelope syntax, surface accepted, digest
 * over the body, signature (key id known, Ed25519 verifies), then the body is a
 * fully understood SandboxPolicy. Each failure throws its own
 * `ProjectionVerificationError` subclass.
 */
export function verifyProjection(projection: Projection, options: VerifyOptions = {}): VerifiedProjection {
  const { trust } = options;
  const requireSignature = options.requireSignature ?? trust !== undefined;
  if (requireSignature && !trust) throw new Error('requireSignature needs a trust store');
  const surfaces = options.surfaces ?? [SANDBOX_POLICY_SURFACE];
  for (const s of surfaces) {
    // Bodies are decoded as SandboxPolicy, so that is the only surface a verifier can accept.
    if (s !== SANDBOX_POLICY_SURFACE)
      throw new Error(`cannot verify surface '${s}': only ${SANDBOX_POLICY_SURFACE}`);
  }

  if (projection.surfaceId === '') throw new MalformedProjectionError('surface_id', 'is empty');
  if (!DIGEST.test(projection.policyDigest)) {
    throw new MalformedProjectionError('policy_digest', 'must be 64 lowercase hex characters (SHA-256)');
  }
  const signature = projection.signature ?? Buffer.alloc(0);
  const keyId = projection.signingKeyId ?? '';
  if (signature.length > 0 && signature.length !== ED25519_SIGNATURE_BYTES) {
    throw new MalformedProjectionError(
      'signature',
      `an Ed25519 signature is ${ED25519_SIGNATURE_BYTES} bytes, got ${signature.length}`,
    );
  }
  if (signature.length > 0 && keyId === '') {
    throw new MalformedProjectionError('signing_key_id', 'is empty but a signature is present');
  }
  if (signature.length === 0 && keyId !== '') {
    throw new MalformedProjectionError('signature', `is empty but signing_key_id is '${keyId}'`);
  }
  if (!surfaces.includes(projection.surfaceId))
    throw new SurfaceNotAcceptedError(projection.surfaceId, surfaces);

  const body = Buffer.from(projection.body ?? Buffer.alloc(0));
  const actual = policyDigest(body);
  if (actual !== projection.policyDigest) throw new DigestMismatchError(projection.policyDigest, actual);

  const auditContext = { ...(projection.auditContext ?? {}) };
  let signatureVerified = false;
  if (signature.length === 0) {
    if (requireSignature) throw new UnsignedProjectionError();
  } else if (trust) {
    const payload = signingPayload({ surfaceId: projection.surfaceId, policyDigest: actual, auditContext });
    trust.verifySignature(payload, signature, keyId);
    signatureVerified = true;
  }

  const { policy, policyJson } = decodePolicyBody(body);
  return {
    surfaceId: projection.surfaceId,
    policyDigest: actual,
    body,
    policy,
    policyJson,
    signingKeyId: signatureVerified ? keyId : undefined,
    signatureVerified,
    auditContext,
  };
}
