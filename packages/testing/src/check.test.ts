import naming from '@openshell-interceptors/example-naming';
import { type RunningServer, serve } from '@openshell-interceptors/sdk';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BrokenService, type Defect, startBrokenService } from './__fixtures__/broken-service.js';
import { CheckError, type CheckOptions, type CheckReport, checkInterceptorService } from './check.js';
import { createTestSigningKey, type TestSigningKey } from './keys.js';

const AUDIENCE = 'urn:openshell:extension:interceptor:broken';
let key: TestSigningKey;
beforeAll(async () => {
  key = await createTestSigningKey('check-key');
});
afterAll(() => key.cleanup());

const failed = (r: CheckReport) =>
  [...new Set(r.findings.filter((f) => f.status === 'fail').map((f) => f.id))].sort();
const withAuth = (): CheckOptions => ({
  auth: { privateKeyPath: key.privateKeyPath, keyId: 'check-key', audience: AUDIENCE },
});

async function checkBroken(
  defects: Defect[],
  options: CheckOptions = {},
  auth = false,
): Promise<CheckReport> {
  const svc: BrokenService = await startBrokenService({
    defects,
    ...(auth ? { publicKey: key.publicKey, audience: AUDIENCE } : {}),
  });
  try {
    return await checkInterceptorService(svc.endpoint, {
      timeoutMs: 1000,
      latencySamples: 20,
      concurrency: 8,
      ...(auth ? withAuth() : {}),
      ...options,
    });
  } finally {
    await svc.close();
  }
}

describe('check passes correct services', () => {
  it('a correct hand-written service (no SDK) passes every check, with and without auth', async () => {
    const plain = await checkBroken([]);
    expect(failed(plain)).toEqual([]);
    expect(plain.passed).toBe(true);
    expect(plain.interceptor).toBe('broken');
    // Every binding and phase was evaluated.
    expect(plain.findings.filter((f) => f.id === 'evaluate.answers').map((f) => f.subject)).toEqual([
      "binding 'modify' modify_operation",
      "binding 'check' validate",
      "binding 'observe' post_commit",
      "binding 'provider' modify_operation",
    ]);
    expect(plain.latency?.samples).toBe(20);
    const authed = await checkBroken([], {}, true);
    expect(failed(authed)).toEqual([]);
    expect(authed.findings.filter((f) => f.id.startsWith('auth.')).every((f) => f.status === 'pass')).toBe(
      true,
    );
    expect(authed.findings.filter((f) => f.id.startsWith('auth.'))).toHaveLength(12);
  });

  it('the naming example served by the SDK passes, with gateway tokens', async () => {
    const server: RunningServer = await serve(naming, {
      listen: '127.0.0.1:0',
      logger: pino({ level: 'silent' }),
      auth: {
        publicKey: key.publicKey,
        keyId: 'check-key',
        audience: 'urn:openshell:extension:interceptor:naming',
      },
    });
    try {
      const r = await checkInterceptorService(server.address, {
        latencySamples: 20,
        auth: {
          privateKeyPath: key.privateKeyPath,
          keyId: 'check-key',
          audience: 'urn:openshell:extension:interceptor:naming',
        },
      });
      expect(failed(r)).toEqual([]);
      // Only a loaded machine could make latency a warning; nothing else may be.
      expect(r.findings.filter((f) => f.status === 'warn' && f.id !== 'latency')).toEqual([]);
      expect(r.interceptor).toBe('naming');
      expect(r.findings.find((f) => f.id === 'bad-input.no-phase')?.detail).toBe(
        'refused with INVALID_ARGUMENT',
      );
    } finally {
      await server.close({ graceMs: 100 });
    }
  });
});

// Each planted defect → exactly the findings that must fail.
const PLANTED: [Defect, string[], boolean?][] = [
  ['empty-name', ['manifest.name']],
  ['duplicate-id', ['manifest.binding-ids']],
  ['unknown-rpc-selector', ['manifest.selectors']],
  ['bad-phase', ['manifest.phases']],
  ['bad-failure-policy', ['manifest.failure-policy']],
  ['post-commit-fail-closed', ['manifest.post-commit-fail-open']],
  ['audience-mismatch', ['manifest.audience'], true],
  ['patch-in-validate', ['result.patches-outside-modify']],
  ['deny-in-post-commit', ['result.post-commit-allows']],
  ['lowercase-status', ['result.status-code']],
  ['bad-pointer', ['result.patch-pointers']],
  ['secret-pointer', ['result.patch-pointers']],
  ['unapplicable-patch', ['result.patch-apply']],
  ['unknown-field-patch', ['result.patched-operation']],
  ['too-many-patches', ['result.patch-budget']],
  ['oversized', ['result.size']],
  ['no-phase-ok', ['bad-input.no-phase']],
  ['garbage-ok', ['bad-input.garbage']],
  ['wedged-by-garbage', ['bad-input.garbage', 'bad-input.still-serving', 'concurrency', 'latency']],
  ['racy', ['concurrency']],
  ['degrades', ['latency']],
  ['accepts-no-token', ['auth.no-token'], true],
  ['ignores-audience', ['auth.audience-list', 'auth.wrong-audience'], true],
  ['ignores-expiry', ['auth.expired'], true],
  ['ignores-lifetime', ['auth.long-lifetime'], true],
  ['skips-signature', ['auth.alg-none', 'auth.wrong-key'], true],
  ['ignores-typ', ['auth.wrong-type'], true],
  ['ignores-issuer', ['auth.wrong-issuer'], true],
  ['ignores-caller-kind', ['auth.caller-kind'], true],
  [
    'wrong-auth-code',
    [
      'auth.alg-none',
      'auth.audience-list',
      'auth.caller-kind',
      'auth.expired',
      'auth.long-lifetime',
      'auth.no-token',
      'auth.wrong-audience',
      'auth.wrong-issuer',
      'auth.wrong-key',
      'auth.wrong-type',
    ],
    true,
  ],
  ['echoes-token', ['auth.no-echo'], true],
];

describe('check finds every planted defect', () => {
  for (const [defect, ids, auth] of PLANTED) {
    it(`${defect} → ${ids.join(', ')}`, async () => {
      const r = await checkBroken(
        [defect],
        defect === 'degrades' ? { latencySamples: 30, timeoutMs: 200 } : {},
        auth === true,
      );
      expect(failed(r)).toEqual([...ids].sort());
      expect(r.passed).toBe(false);
    });
  }

  it('finds all of them at once in one badly broken service', async () => {
    const manifestAndResults: Defect[] = [
      'duplicate-id',
      'bad-phase',
      'post-commit-fail-closed',
      'patch-in-validate',
      'deny-in-post-commit',
      'secret-pointer',
      'too-many-patches',
      'no-phase-ok',
    ];
    const r = await checkBroken(manifestAndResults);
    expect(failed(r)).toEqual(
      [
        'manifest.binding-ids',
        'manifest.phases',
        'manifest.post-commit-fail-open',
        'result.patches-outside-modify',
        'result.post-commit-allows',
        'result.patch-pointers',
        'result.patch-budget',
        'bad-input.no-phase',
      ].sort(),
    );
  });
});

describe('check refuses to run when it cannot ask', () => {
  it('an unreachable endpoint is a CheckError, not a report', async () => {
    const svc = await startBrokenService();
    const endpoint = svc.endpoint;
    await svc.close();
    await expect(checkInterceptorService(endpoint, { timeoutMs: 200 })).rejects.toThrow(CheckError);
  });

  it('a service that needs a token, checked without a key, says which flags to pass', async () => {
    const svc = await startBrokenService({ publicKey: key.publicKey });
    try {
      await expect(checkInterceptorService(svc.endpoint)).rejects.toThrow(
        /refuses calls without a gateway token.*--private-key/,
      );
    } finally {
      await svc.close();
    }
  });
});
