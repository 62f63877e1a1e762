import { verify as cryptoVerify } from 'node:crypto';
import { encodeMessage } from '@openshell-interceptors/protocol';
import { describe, expect, it } from 'vitest';
import { OTHER_POLICY, SAMPLE_POLICY } from './__fixtures__/policies.js';
import {
  BadSignatureError,
  DigestMismatchError,
  MalformedBodyError,
  MalformedProjectionError,
  ProjectionVerificationError,
  SurfaceNotAcceptedError,
  UnknownKeyIdError,
  UnsignedProjectionError,
} from './errors.js';
import { generateSigningKey } from './keys.js';
import {
  buildProjection,
  encodePolicy,
  PolicyInputError,
  type Projection,
  policyDigest,
  SANDBOX_POLICY_TYPE,
  signingPayload,
  verifyProjection,
} from './projection.js';
import { TrustStore } from './trust-store.js';

async function setup() {
  const key = await generateSigningKey('authority-2025');
  const trust = TrustStore.fromKeys([{ keyId: key.keyId, publicKey: key.publicKey }]);
  const signed = buildProjection({
    policy: SAMPLE_POLICY,
    auditContext: { bundle: 'tenant-acme', revision: '7' },
    signer: { keyId: key.keyId, privateKey: key.privateKey },
  });
  return { key, trust, signed };
}

function expectFailure(fn: () => unknown, cls: new (...a: never[]) => Error, code: string): Error {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(cls);
    expect(err).toBeInstanceOf(ProjectionVerificationError);
    expect((err as ProjectionVerificationError).code).toBe(code);
    return err as Error;
  }
  throw new Error(`expected ${cls.name}`);
}

describe('projection building', () => {
  it('digest is lowercase hex SHA-256 over the protobuf encoding of the policy', () => {
    const p = buildProjection({ policy: SAMPLE_POLICY });
    const body = encodeMessage(SANDBOX_POLICY_TYPE, encodePolicyMessage());
    expect(p.policyDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(p.policyDigest).toBe(policyDigest(body));
    expect(Buffer.compare(p.body, Buffer.from(body))).toBe(0);
    expect(p.surfaceId).toBe('openshell.sandbox.v1');
    expect(p.signature.length).toBe(0);
    expect(p.signingKeyId).toBe('');
  });

  it('signs the RFC 8785 canonical JSON of {audit_context, policy_digest, surface_id}', async () => {
    const { key, signed } = await setup();
    const expected = `{"audit_context":{"bundle":"tenant-acme","revision":"7"},"policy_digest":"${signed.policyDigest}","surface_id":"openshell.sandbox.v1"}`;
    const payload = signingPayload({
      surfaceId: signed.surfaceId,
      policyDigest: signed.policyDigest,
      auditContext: { revision: '7', bundle: 'tenant-acme' },
    });
    expect(payload.toString('utf8')).toBe(expected);
    expect(signed.signature.length).toBe(64);
    expect(signed.signingKeyId).toBe('authority-2025');
    expect(cryptoVerify(null, Buffer.from(expected), key.publicKey, signed.signature)).toBe(true);
  });

  it('signing payload carries an empty audit_context object when there is none', () => {
    expect(signingPayload({ surfaceId: 's', policyDigest: 'd' }).toString()).toBe(
      '{"audit_context":{},"policy_digest":"d","surface_id":"s"}',
    );
  });

  it('refuses a policy that is not a valid SandboxPolicy, naming the JSON Pointer', () => {
    expect(() => encodePolicy({ filesystem: { readOnly: 'nope' } })).toThrow(PolicyInputError);
    try {
      buildProjection({ policy: { version: 1, bogus: true } as never });
      throw new Error('expected a throw');
    } catch (err) {
      expect(err).toBeInstanceOf(PolicyInputError);
      expect((err as PolicyInputError).path).toBe('/bogus');
    }
  });

  it('accepts an already encoded body and refuses one with unknown fields', () => {
    const body = encodePolicy(SAMPLE_POLICY);
    expect(buildProjection({ policy: body }).policyDigest).toBe(policyDigest(body));
    const withUnknown = Buffer.concat([body, Buffer.from([0xf8, 0x01, 0x01])]); // field 31, varint 1
    expect(() => buildProjection({ policy: withUnknown })).toThrow(MalformedBodyError);
  });

  it('refuses a signer whose key is not Ed25519 private key material', () => {
    expect(() =>
      buildProjection({ policy: SAMPLE_POLICY, signer: { keyId: 'k', privateKey: 'garbage' } }),
    ).toThrow(/not a PEM private key/);
  });
});

function encodePolicyMessage(): unknown {
  // Independent route to the same bytes: ts-proto fromJSON of the sample.
  return {
    version: 1,
    filesystem: { includeWorkdir: true, readOnly: ['/usr', '/etc'], readWrite: ['/tmp'] },
    landlock: { compatibility: 'best_effort' },
    process: { runAsUser: 'sandbox', runAsGroup: 'sandbox' },
    networkPolicies: {
      github: {
        name: 'github',
        endpoints: [
          {
            host: 'api.github.com',
            port: 443,
            protocol: 'rest',
            tls: '',
            enforcement: '',
            access: '',
            rules: [],
            allowedIps: [],
            ports: [443, 8443],
            denyRules: [],
            allowEncodedSlash: false,
            persistedQueries: '',
            graphqlPersistedQueries: {},
            graphqlMaxBodyBytes: 0,
            path: '',
            websocketCredentialRewrite: false,
            requestBodyCredentialRewrite: false,
            advisorProposed: false,
            credentialSigning: '',
            signingService: '',
            signingRegion: '',
            jsonRpcMaxBodyBytes: 0,
            mcp: undefined,
            credentialBinding: undefined,
            allowUninspectedCredentials: false,
            providerCredentialed: false,
          },
        ],
        binaries: [{ path: '/usr/bin/git', harness: false }],
      },
    },
    networkMiddlewares: {
      audit: {
        name: 'audit',
        middleware: 'log',
        config: { level: 'info', sample: 0.5 },
        onError: '',
        endpoints: undefined,
        order: 2,
      },
    },
  };
}

describe('projection verification', () => {
  it('accepts a signed projection and returns the decoded policy, key id and audit context', async () => {
    const { trust, signed } = await setup();
    const v = verifyProjection(signed, { trust });
    expect(v.signatureVerified).toBe(true);
    expect(v.signingKeyId).toBe('authority-2025');
    expect(v.policyJson).toEqual(SAMPLE_POLICY);
    expect(v.auditContext).toEqual({ bundle: 'tenant-acme', revision: '7' });
    expect(v.policyDigest).toBe(signed.policyDigest);
  });

  it('accepts an unsigned projection when no trust store is configured', () => {
    const v = verifyProjection(buildProjection({ policy: OTHER_POLICY }));
    expect(v.signatureVerified).toBe(false);
    expect(v.signingKeyId).toBeUndefined();
    expect(v.policyJson).toEqual(OTHER_POLICY);
  });

  it('refuses an unsigned projection when the trust store requires signatures', async () => {
    const { trust } = await setup();
    const err = expectFailure(
      () => verifyProjection(buildProjection({ policy: SAMPLE_POLICY }), { trust }),
      UnsignedProjectionError,
      'UNSIGNED_PROJECTION',
    );
    expect(err.message).toContain('unsigned projection');
  });

  it('tampered body: digest mismatch', async () => {
    const { trust, signed } = await setup();
    const body = encodePolicy({ ...SAMPLE_POLICY, filesystem: { readWrite: ['/'] } });
    const err = expectFailure(
      () => verifyProjection({ ...signed, body }, { trust }),
      DigestMismatchError,
      'DIGEST_MISMATCH',
    );
    expect(err.message).toContain(signed.policyDigest);
  });

  it('tampered digest (recomputed for a new body): bad signature', async () => {
    const { trust, signed } = await setup();
    const body = encodePolicy(OTHER_POLICY);
    expectFailure(
      () => verifyProjection({ ...signed, body, policyDigest: policyDigest(body) }, { trust }),
      BadSignatureError,
      'BAD_SIGNATURE',
    );
  });

  it('tampered audit context: bad signature', async () => {
    const { trust, signed } = await setup();
    expectFailure(
      () =>
        verifyProjection({ ...signed, auditContext: { ...signed.auditContext, revision: '8' } }, { trust }),
      BadSignatureError,
      'BAD_SIGNATURE',
    );
  });

  it('tampered surface id is refused', async () => {
    const { trust, signed } = await setup();
    const p: Projection = { ...signed, surfaceId: 'other.surface' };
    expectFailure(() => verifyProjection(p, { trust }), SurfaceNotAcceptedError, 'SURFACE_NOT_ACCEPTED');
  });

  it('signature by a key the trust store does not hold: unknown key id', async () => {
    const { trust } = await setup();
    const rogue = await generateSigningKey('rogue');
    const p = buildProjection({ policy: SAMPLE_POLICY, signer: rogue });
    const err = expectFailure(() => verifyProjection(p, { trust }), UnknownKeyIdError, 'UNKNOWN_KEY_ID');
    expect(err.message).toContain("'rogue'");
    expect(err.message).toContain('authority-2025');
  });

  it('signature by another key under a trusted key id: bad signature', async () => {
    const { trust } = await setup();
    const rogue = await generateSigningKey('authority-2025');
    const p = buildProjection({ policy: SAMPLE_POLICY, signer: rogue });
    expectFailure(() => verifyProjection(p, { trust }), BadSignatureError, 'BAD_SIGNATURE');
  });

  it('surface not accepted', async () => {
    const { trust, signed } = await setup();
    expectFailure(
      () => verifyProjection(signed, { trust, surfaces: [] }),
      SurfaceNotAcceptedError,
      'SURFACE_NOT_ACCEPTED',
    );
  });

  it('malformed envelopes name the field', async () => {
    const { trust, signed } = await setup();
    const cases: [Projection, string][] = [
      [{ ...signed, policyDigest: signed.policyDigest.toUpperCase() }, 'policy_digest'],
      [{ ...signed, policyDigest: 'abc' }, 'policy_digest'],
      [{ ...signed, signature: signed.signature.subarray(0, 10) }, 'signature'],
      [{ ...signed, signingKeyId: '' }, 'signing_key_id'],
      [{ ...signed, signature: Buffer.alloc(0) }, 'signature'],
      [{ ...signed, surfaceId: '' }, 'surface_id'],
    ];
    for (const [p, field] of cases) {
      const err = expectFailure(
        () => verifyProjection(p, { trust }),
        MalformedProjectionError,
        'MALFORMED_PROJECTION',
      );
      expect((err as MalformedProjectionError).field).toBe(field);
    }
  });

  it('malformed body: truncated bytes, unknown fields and wrong wire types are refused', () => {
    const good = encodePolicy(SAMPLE_POLICY);
    const bodies: [Buffer, RegExp][] = [
      [good.subarray(0, good.length - 3), /malformed policy body/],
      [Buffer.concat([good, Buffer.from([0xf8, 0x01, 0x01])]), /unknown field number 31/],
      [Buffer.concat([good, Buffer.from([0x10, 0x01])]), /at filesystem: expected length-delimited/],
      [Buffer.from([0x22, 0x03, 0x0a, 0x01, 0xff]), /at process\.run_as_user: string is not valid UTF-8/],
    ];
    for (const [body, message] of bodies) {
      const p = { ...buildProjection({ policy: OTHER_POLICY }), body, policyDigest: policyDigest(body) };
      const err = expectFailure(() => verifyProjection(p), MalformedBodyError, 'MALFORMED_BODY');
      expect(err.message).toMatch(message);
    }
  });

  it('unknown fields deep inside a map value are refused with their path', () => {
    // network_policies entry whose NetworkPolicyRule carries field 15 (unknown).
    const rule = Buffer.from([0x0a, 0x01, 0x78, 0x78, 0x01]); // name="x", field 15 varint 1
    const entry = Buffer.concat([Buffer.from([0x0a, 0x01, 0x6b, 0x12, rule.length]), rule]);
    const body = Buffer.concat([Buffer.from([0x2a, entry.length]), entry]);
    const p = { ...buildProjection({ policy: OTHER_POLICY }), body, policyDigest: policyDigest(body) };
    const err = expectFailure(() => verifyProjection(p), MalformedBodyError, 'MALFORMED_BODY');
    expect((err as MalformedBodyError).at).toBe('network_policies{value}');
    expect(err.message).toContain('unknown field number 15');
  });

  it('requireSignature without a trust store is a configuration error', () => {
    expect(() =>
      verifyProjection(buildProjection({ policy: OTHER_POLICY }), { requireSignature: true }),
    ).toThrow(/needs a trust store/);
  });
});
