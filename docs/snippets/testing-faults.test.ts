import naming from '@openshell-interceptors/example-naming';
import { faults, testGateway, withFaults } from '@openshell-interceptors/testing';
import '@openshell-interceptors/testing/vitest';
import { expect, it } from 'vitest';

it('skips a binding that times out under fail_open', async () => {
  const slow = withFaults(naming, faults.delay(5_000, { phase: 'modify_operation' }));
  const gw = await testGateway([
    { interceptor: slow, failurePolicy: 'fail_open', timeout: '100ms', breaker: false },
  ]);
  const r = await gw.call('CreateSandbox', { name: 'team-b' });
  expect(r).toBeAllowed(); // fail_open: the binding is skipped
  expect(r.evaluations[0]).toMatchObject({ decision: 'error', layer: 'deadline' });
  await gw.close();
});
