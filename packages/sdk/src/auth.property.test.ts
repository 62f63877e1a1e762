// Property: the gateway token verifier (CONTRACT section 7) refuses every mutated token.
// Starting from a token it accepts, any change to the bytes of a segment, to its
// characters, or to the segment structure is refused with AuthError, whose message
// quotes nothing of the token.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { runs } from '../../protocol/src/__fixtures__/arbitrary.js';
import { mint, type TestKey, testKey } from './__fixtures__/tokens.js';
import { AuthError, createTokenVerifier, type TokenVerifier } from './auth.js';

const AUD = 'urn:openshell:extension:interceptor:svc';
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

let key: TestKey;
let otherKey: TestKey;
let verifier: TokenVerifier;
let token: string;
let sameKeyOtherToken: string;
let otherKeyToken: string;

beforeAll(async () => {
  key = await testKey('k1');
  otherKey = await testKey('k1');
  verifier = await createTokenVerifier({ audience: AUD, jwks: { keys: [key.publicJwk] } });
  token = await mint(key);
  sameKeyOtherToken = await mint(key, { claims: { caller_kind: 'gateway', extra: 'x' } });
  otherKeyToken = await mint(otherKey);
});

/** The verifier refuses with AuthError and echoes nothing of the token. */
async function expectRefused(candidate: string): Promise<void> {
  const err = await verifier.verify(`Bearer ${candidate}`).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err === undefined) throw new Error(`a mutated token was accepted: ${candidate}`);
  expect(err).toBeInstanceOf(AuthError);
  const message = (err as Error).message;
  expect(message).toMatch(/^gateway token rejected: [a-z-]+$/);
  for (const seg of candidate.split('.')) if (seg.length >= 8) expect(message).not.toContain(seg);
}

const segments = () => token.split('.') as [string, string, string];
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');

/** A change to the decoded bytes of one segment, re-encoded canonically. */
const byteMutation = fc
  .record({
    segment: fc.integer({ min: 0, max: 2 }),
    kind: fc.constantFrom('flip', 'set', 'insert', 'delete', 'truncate'),
    at: fc.nat(),
    bit: fc.integer({ min: 0, max: 7 }),
    byte: fc.integer({ min: 0, max: 255 }),
  })
  .map((m) => {
    const segs = segments();
    const bytes = [...Buffer.from(segs[m.segment] as string, 'base64url')];
    const i = m.at % Math.max(bytes.length, 1);
    if (m.kind === 'flip') bytes[i] = (bytes[i] ?? 0) ^ (1 << m.bit);
    else if (m.kind === 'set') bytes[i] = bytes[i] === m.byte ? (m.byte + 1) % 256 : m.byte;
    else if (m.kind === 'insert') bytes.splice(i, 0, m.byte);
    else if (m.kind === 'delete') bytes.splice(i, 1);
    else bytes.length = i;
    segs[m.segment] = b64(Uint8Array.from(bytes));
    return segs.join('.');
  });

/** One character of the encoded token replaced by another base64url character (or '.'). */
const charMutation = fc
  .record({
    // Segment ends are where encodings hide spare bits, so they get extra weight.
    at: fc.oneof(fc.nat(), fc.constantFrom('end-of-header', 'end-of-payload', 'end-of-signature')),
    char: fc.constantFrom(...B64URL, '.', '=', '+', '/'),
  })
  .map(({ at, char }) => {
    const [h, p] = segments();
    const ends = {
      'end-of-header': h.length - 1,
      'end-of-payload': h.length + p.length,
      'end-of-signature': token.length - 1,
    };
    const i = typeof at === 'number' ? at % token.length : ends[at];
    const c = token[i] === char ? (char === 'A' ? 'B' : 'A') : char;
    return token.slice(0, i) + c + token.slice(i + 1);
  })
  .filter((t) => t !== token);

/** Claims or header re-encoded with a change, signature kept (a forgery attempt). */
const claimMutation = fc
  .record({
    segment: fc.constantFrom(0, 1),
    field: fc.constantFrom(
      'alg',
      'typ',
      'kid',
      'iss',
      'sub',
      'aud',
      'exp',
      'iat',
      'caller_kind',
      'jti',
      'sandbox_id',
    ),
    value: fc.oneof(
      fc.constantFrom(
        'none',
        'HS256',
        'EdDSA',
        'openshell-ext+jwt',
        AUD,
        [AUD],
        'gateway',
        0,
        9_999_999_999,
        null,
      ),
      fc.string({ maxLength: 8 }),
    ),
  })
  .map(({ segment, field, value }) => {
    const segs = segments();
    const obj = JSON.parse(Buffer.from(segs[segment] as string, 'base64url').toString()) as Record<
      string,
      unknown
    >;
    obj[field] = value;
    segs[segment] = Buffer.from(JSON.stringify(obj)).toString('base64url');
    return segs.join('.');
  })
  .filter((t) => t !== token);

/** Structural changes: missing, extra, swapped, borrowed or decorated segments. */
const structureMutation = fc
  .constantFrom(
    'drop-signature',
    'empty-signature',
    'drop-header',
    'two-segments',
    'four-segments',
    'swap-header-payload',
    'borrow-signature',
    'borrow-payload',
    'other-key-signature',
    'other-key-payload',
    'doubled',
    'padded',
    'spaces-inside',
    'trailing-dot',
    'leading-dot',
  )
  .map((kind) => {
    const [h, p, s] = segments();
    const [oh, op, os] = sameKeyOtherToken.split('.') as [string, string, string];
    const [, kp, ks] = otherKeyToken.split('.') as [string, string, string];
    switch (kind) {
      case 'drop-signature':
        return `${h}.${p}`;
      case 'empty-signature':
        return `${h}.${p}.`;
      case 'drop-header':
        return `${p}.${s}`;
      case 'two-segments':
        return `${h}.${s}`;
      case 'four-segments':
        return `${h}.${p}.${s}.${s}`;
      case 'swap-header-payload':
        return `${p}.${h}.${s}`;
      case 'borrow-signature':
        return `${h}.${p}.${os}`;
      case 'borrow-payload':
        return `${h}.${op}.${s}`;
      case 'other-key-signature':
        return `${h}.${p}.${ks}`;
      case 'other-key-payload':
        return `${oh}.${kp}.${s}`;
      case 'doubled':
        return `${token}${token}`;
      case 'padded':
        return `${h}.${p}.${s}==`;
      case 'spaces-inside':
        return `${h}. ${p}.${s}`;
      case 'trailing-dot':
        return `${token}.`;
      default:
        return `.${token}`;
    }
  });

describe('gateway token verifier (property)', () => {
  it('accepts the unmutated token (the baseline every mutation starts from)', async () => {
    await expect(verifier.verify(`Bearer ${token}`)).resolves.toMatchObject({ keyId: 'k1' });
    await expect(verifier.verify(`Bearer ${sameKeyOtherToken}`)).resolves.toBeDefined();
  });

  it('refuses every change to the bytes of the header, payload or signature', async () => {
    await fc.assert(fc.asyncProperty(byteMutation, expectRefused), { numRuns: runs(200) });
  });

  it('refuses every change to a character of the encoded token', async () => {
    await fc.assert(fc.asyncProperty(charMutation, expectRefused), { numRuns: runs(200) });
  });

  it('refuses every edited claim or header field under the original signature', async () => {
    await fc.assert(fc.asyncProperty(claimMutation, expectRefused), { numRuns: runs(100) });
  });

  it('refuses every structural change: missing, extra, swapped or borrowed segments', async () => {
    await fc.assert(fc.asyncProperty(structureMutation, expectRefused), { numRuns: runs(50) });
  });

  it('refuses every other spelling of the last signature character (no token malleability)', async () => {
    const [h, p, s] = segments();
    for (const c of B64URL) {
      const variant = `${h}.${p}.${s.slice(0, -1)}${c}`;
      if (variant !== token) await expectRefused(variant);
    }
  });
});
