import { fileURLToPath } from 'node:url';
import naming from '@openshell-interceptors/example-naming';
import type { FailureLayer } from '@openshell-interceptors/gateway';
import type { FailurePolicy } from '@openshell-interceptors/protocol';
import { interceptor } from '@openshell-interceptors/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { type Fault, faults, withFaults } from './faults.js';
import { requestFixture } from './fixtures.js';
import { type TestGateway, type TestTransport, testGateway } from './gateway.js';
import { type SpawnedInterceptor, spawnInterceptor } from './spawn.js';
import './vitest.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((g) => g.close()));
});

async function gateway(
  fault: Fault,
  failurePolicy: FailurePolicy,
  transport: TestTransport,
): Promise<TestGateway> {
  const gw = await testGateway({
    interceptors: [
      { interceptor: withFaults(naming, fault), failurePolicy, timeout: '300ms', breaker: false },
    ],
    transport,
  });
  open.push(gw);
  return gw;
}

// Each fault hits naming's modify_operation binding on a call whose name needs lower-casing.
const modify = { phase: 'modify_operation' } as const;
const CASES: { name: string; fault: Fault; layer: FailureLayer; cause: RegExp }[] = [
  {
    name: 'a delay beyond the timeout',
    fault: faults.delay(5_000, modify),
    layer: 'deadline',
    cause: /no answer within 300ms/,
  },
  { name: 'a hung service', fault: faults.hang(modify), layer: 'deadline', cause: /no answer within 300ms/ },
  {
    name: 'a transport failure (UNAVAILABLE)',
    fault: faults.unavailable(modify),
    layer: 'transport',
    cause: /UNAVAILABLE/,
  },
  {
    name: 'an error status',
    fault: faults.status('INTERNAL', 'boom', modify),
    layer: 'status',
    cause: /INTERNAL: boom/,
  },
  {
    name: 'an oversized result',
    fault: faults.oversized(2_000_000, modify),
    layer: 'size',
    cause: /max_response_bytes|too large/,
  },
  {
    name: 'a patch path that is not a JSON Pointer',
    fault: faults.badPointer(modify),
    layer: 'patch',
    cause: /pointer/i,
  },
  {
    name: 'a patch of an unknown field',
    fault: faults.unknownField('bogus', modify),
    layer: 'revalidate',
    cause: /bogus/,
  },
  {
    name: 'more patches than max_patches',
    fault: faults.excessPatches(33, modify),
    layer: 'contract',
    cause: /more than max_patches 32/,
  },
];

for (const transport of ['in-process', 'grpc'] as TestTransport[]) {
  describe(`fault injection (${transport})`, () => {
    for (const c of CASES) {
      it(`${c.name}: fail_closed refuses the call with PERMISSION_DENIED before the commit`, async () => {
        const gw = await gateway(c.fault, 'fail_closed', transport);
        const r = await gw.call('CreateSandbox', { name: 'Team-A' });
        expect(r).toBeDenied('PERMISSION_DENIED', /^gateway interceptor 'naming' failed closed: /);
        expect(r.status?.message).toMatch(c.cause);
        expect(r.evaluations[0]).toMatchObject({
          decision: 'error',
          layer: c.layer,
          phase: 'modify_operation',
        });
        expect(r.response).toBeNull();
      });

      it(`${c.name}: fail_open skips the binding and the call goes on unchanged`, async () => {
        const gw = await gateway(c.fault, 'fail_open', transport);
        const r = await gw.call('CreateSandbox', { name: 'team-b' });
        expect(r).toBeAllowed();
        expect(r).toHaveFinalOperation({ name: 'team-b' });
        expect(r.evaluations[0]).toMatchObject({ decision: 'error', layer: c.layer, applied: false });
        // The validate binding still ran after the skipped modify.
        expect(r.evaluations[1]).toMatchObject({ phase: 'validate', decision: 'allow' });
        expect(
          gw.logs.some((l) => String(l.msg).startsWith("gateway interceptor 'naming' failed open")),
        ).toBe(true);
      });
    }

    it('a patch of a secret field is refused and the operation stays as it was', async () => {
      const provider = interceptor('prov').modify('CreateProvider', () => undefined);
      for (const failurePolicy of ['fail_closed', 'fail_open'] as const) {
        const gw = await testGateway({
          interceptors: [{ interceptor: withFaults(provider, faults.secretPatch()), failurePolicy }],
          transport,
        });
        open.push(gw);
        const r = await gw.call('CreateProvider');
        expect(r.evaluations[0]).toMatchObject({ decision: 'error', layer: 'patch' });
        expect(r.evaluations[0]?.error).toMatch(/secret/);
        if (failurePolicy === 'fail_closed') expect(r).toBeDenied('PERMISSION_DENIED');
        else {
          expect(r).toBeAllowed();
          expect(r.request).toEqual(requestFixture('CreateProvider'));
        }
      }
    });

    it('a denial in post_commit is a contract failure that never changes the committed response', async () => {
      const observer = interceptor('observer').observe('DeleteSandbox', () => undefined);
      const gw = await testGateway({
        interceptors: [
          withFaults(
            observer,
            faults.result((r) => ({ ...r, allowed: false, reason: 'no' })),
          ),
        ],
        transport,
      });
      open.push(gw);
      const r = await gw.call('DeleteSandbox');
      expect(r).toBeAllowed();
      expect(r.response).toEqual({ deleted: true });
      expect(r.evaluations[0]).toMatchObject({ phase: 'post_commit', decision: 'error', layer: 'contract' });
    });
  });
}

describe('faults are scoped', () => {
  it('only the matching phase, method and count misbehave', async () => {
    const gw = await testGateway({
      interceptors: [
        {
          interceptor: withFaults(naming, faults.unavailable({ phase: 'validate', times: 1 })),
          failurePolicy: 'fail_closed',
        },
      ],
    });
    open.push(gw);
    expect(await gw.call('CreateSandbox', { name: 'Ok' })).toBeDenied('PERMISSION_DENIED', /UNAVAILABLE/);
    // The second validate is past `times: 1`.
    expect(await gw.call('CreateSandbox', { name: 'Ok' })).toBePatched('/name', 'ok');
  });

  it('refuses a status fault with a code that is not a failure', () => {
    expect(() => faults.status('OK' as never)).toThrow(/not a non-OK gRPC status code name/);
    expect(() => faults.delay(-1)).toThrow(/non-negative/);
  });
});

describe('a crashed interceptor process', () => {
  const module = fileURLToPath(new URL('./__fixtures__/naming-module.ts', import.meta.url));
  let child: SpawnedInterceptor | undefined;
  afterEach(async () => {
    await child?.kill();
  });

  for (const failurePolicy of ['fail_closed', 'fail_open'] as const) {
    it(`${failurePolicy}: a SIGKILLed service is a transport failure and the policy decides`, async () => {
      child = await spawnInterceptor(module);
      const gw = await testGateway({
        interceptors: [
          { name: 'naming', endpoint: child.endpoint, failurePolicy, timeout: '2s', breaker: false },
        ],
      });
      open.push(gw);
      expect(await gw.call('CreateSandbox', { name: 'Up' })).toBePatched('/name', 'up');
      await child.kill();
      const r = await gw.call('CreateSandbox', { name: 'down' });
      expect(r.evaluations[0]).toMatchObject({ decision: 'error', layer: 'transport' });
      if (failurePolicy === 'fail_closed')
        expect(r).toBeDenied('PERMISSION_DENIED', /failed closed: UNAVAILABLE/);
      else expect(r).toBeAllowed();
    });
  }
});
