import { readFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import type { SandboxPolicyJson } from '@openshell-interceptors/protocol';
import { stringify } from 'yaml';
import { parseStructured, writeFileAtomic } from './files.js';
import {
  type BuildProjectionInput,
  buildProjection,
  decodePolicyBody,
  encodePolicy,
  PolicyInputError,
  type Projection,
  type VerifiedProjection,
  type VerifyOptions,
  verifyProjection,
} from './projection.js';

/** The `format` value of every bundle this toolkit writes and reads. */
export const BUNDLE_FORMAT = 'openshell.policy.bundle.v1';

/**
 * A signed policy bundle: a projection envelope at rest. `body` carries the exact
 * signed bytes; `policy` is the same policy as readable ProtoJSON and must decode
 * to the same value, so editing either is detected.
 */
export interface PolicyBundle {
  readonly format: typeof BUNDLE_FORMAT;
  readonly surface_id: string;
  /** Lowercase hex SHA-256 over the decoded `body`. */
  readonly policy_digest: string;
  /** Absent for an unsigned bundle. */
  readonly signing_key_id?: string;
  /** Base64 of the 64-byte Ed25519 signature; absent for an unsigned bundle. */
  readonly signature?: string;
  readonly audit_context: Readonly<Record<string, string>>;
  /** The policy as ProtoJSON, for people; must equal the decoded body. */
  readonly policy: SandboxPolicyJson;
  /** Base64 of the protobuf encoding of the policy: the signed body. */
  readonly body: string;
}

export type BundleErrorCode = 'MALFORMED_BUNDLE' | 'POLICY_MISMATCH';

/** A bundle that is not well formed, or whose readable policy disagrees with its body. */
export class BundleError extends Error {
  readonly code: BundleErrorCode;
  /** The bundle key at fault. */
  readonly field: string;
  constructor(code: BundleErrorCode, field: string, message: string) {
    super(`${code === 'POLICY_MISMATCH' ? 'policy mismatch' : 'malformed bundle'}: ${field}: ${message}`);
    this.name = 'BundleError';
    this.code = code;
    this.field = field;
  }
}

const KEYS = new Set([
  'format',
  'surface_id',
  'policy_digest',
  'signing_key_id',
  'signature',
  'audit_context',
  'policy',
  'body',
]);
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function base64(field: string, value: string): Buffer {
  if (value.length % 4 !== 0 || !BASE64.test(value)) {
    throw new BundleError('MALFORMED_BUNDLE', field, 'must be padded standard base64');
  }
  return Buffer.from(value, 'base64');
}

/** Check the shape of a parsed bundle document; unknown keys are refused. */
export function parseBundle(doc: unknown): PolicyBundle {
  if (!isRecord(doc)) throw new BundleError('MALFORMED_BUNDLE', '(root)', 'a bundle is a mapping');
  for (const k of Object.keys(doc)) {
    if (!KEYS.has(k)) throw new BundleError('MALFORMED_BUNDLE', k, 'unknown key');
  }
  if (doc.format !== BUNDLE_FORMAT) {
    throw new BundleError(
      'MALFORMED_BUNDLE',
      'format',
      `must be '${BUNDLE_FORMAT}', got ${JSON.stringify(doc.format)}`,
    );
  }
  const str = (k: string, required: boolean): string | undefined => {
    const v = doc[k];
    if (v === undefined || v === null) {
      if (required) throw new BundleError('MALFORMED_BUNDLE', k, 'is required');
      return undefined;
    }
    if (typeof v !== 'string') throw new BundleError('MALFORMED_BUNDLE', k, 'must be a string');
    return v;
  };
  const surface = str('surface_id', true)!;
  const digest = str('policy_digest', true)!;
  const keyId = str('signing_key_id', false);
  const signature = str('signature', false);
  const body = str('body', true)!;
  base64('body', body);
  if (signature !== undefined) base64('signature', signature);
  if ((keyId === undefined) !== (signature === undefined)) {
    throw new BundleError(
      'MALFORMED_BUNDLE',
      keyId === undefined ? 'signing_key_id' : 'signature',
      'signature and signing_key_id go together',
    );
  }
  const audit = doc.audit_context ?? {};
  if (!isRecord(audit))
    throw new BundleError('MALFORMED_BUNDLE', 'audit_context', 'must be a mapping of strings');
  for (const [k, v] of Object.entries(audit)) {
    if (typeof v !== 'string')
      throw new BundleError('MALFORMED_BUNDLE', `audit_context.${k}`, 'must be a string');
  }
  if (!isRecord(doc.policy))
    throw new BundleError('MALFORMED_BUNDLE', 'policy', 'is required (a SandboxPolicy mapping)');
  return {
    format: BUNDLE_FORMAT,
    surface_id: surface,
    policy_digest: digest,
    ...(keyId !== undefined ? { signing_key_id: keyId } : {}),
    ...(signature !== undefined ? { signature } : {}),
    audit_context: audit as Record<string, string>,
    policy: doc.policy as SandboxPolicyJson,
    body,
  };
}

/** The bundle of a projection, with the readable policy decoded from its body. */
export function projectionToBundle(p: Projection): PolicyBundle {
  const { policyJson } = decodePolicyBody(p.body);
  const signed = p.signature.length > 0;
  return {
    format: BUNDLE_FORMAT,
    surface_id: p.surfaceId,
    policy_digest: p.policyDigest,
    ...(signed
      ? { signing_key_id: p.signingKeyId, signature: Buffer.from(p.signature).toString('base64') }
      : {}),
    audit_context: { ...p.auditContext },
    policy: policyJson,
    body: Buffer.from(p.body).toString('base64'),
  };
}

/** Build (and sign, with a signer) a bundle from a ProtoJSON policy. */
export function createBundle(input: BuildProjectionInput): PolicyBundle {
  return projectionToBundle(buildProjection(input));
}

/** The projection envelope a bundle carries (no checks beyond base64; see `verifyBundle`). */
export function bundleToProjection(bundle: PolicyBundle): Projection {
  return {
    surfaceId: bundle.surface_id,
    policyDigest: bundle.policy_digest,
    body: base64('body', bundle.body),
    signature: bundle.signature !== undefined ? base64('signature', bundle.signature) : Buffer.alloc(0),
    signingKeyId: bundle.signing_key_id ?? '',
    auditContext: { ...bundle.audit_context },
  };
}

/**
 * Verify a bundle: every projection check first (so a tampered body, digest,
 * audit context or signature fails with its own code), then the readable
 * `policy` must parse strictly and equal the verified body (`POLICY_MISMATCH`).
 */
export function verifyBundle(bundle: PolicyBundle, options: VerifyOptions = {}): VerifiedProjection {
  const verified = verifyProjection(bundleToProjection(bundle), options);
  let readable: unknown;
  try {
    readable = decodePolicyBody(encodePolicy(bundle.policy)).policyJson;
  } catch (err) {
    if (err instanceof PolicyInputError) throw new BundleError('MALFORMED_BUNDLE', 'policy', err.message);
    throw err;
  }
  if (!isDeepStrictEqual(readable, verified.policyJson)) {
    throw new BundleError(
      'POLICY_MISMATCH',
      'policy',
      'the readable policy differs from the signed body; edit the source policy and sign it again',
    );
  }
  return verified;
}

/** Read a bundle file (YAML or JSON). Parse errors throw `FileFormatError`, shape errors `BundleError`. */
export async function readBundleFile(path: string): Promise<PolicyBundle> {
  return parseBundle(parseStructured(await readFile(path, 'utf8'), path));
}

/** A bundle as text: JSON, or YAML with a header comment. */
export function formatBundle(bundle: PolicyBundle, format: 'yaml' | 'json'): string {
  if (format === 'json') return `${JSON.stringify(bundle, null, 2)}\n`;
  return `# OpenShell policy bundle (${BUNDLE_FORMAT}). Signed content: do not edit, sign again.\n${stringify(bundle, { lineWidth: 0 })}`;
}

/** Write a bundle atomically; `.json` files get JSON, anything else YAML. */
export async function writeBundleFile(path: string, bundle: PolicyBundle): Promise<void> {
  await writeFileAtomic(path, formatBundle(bundle, path.toLowerCase().endsWith('.json') ? 'json' : 'yaml'));
}
