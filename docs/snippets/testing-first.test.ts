import naming from '@openshell-interceptors/example-naming';
import { requestFixture, testGateway } from '@openshell-interceptors/testing';
import '@openshell-interceptors/testing/vitest';
import { afterAll, beforeAll, expect, it } from 'vitest';

let gw: Awaited<ReturnType<typeof testGateway>>;
beforeAll(async () => {
  gw = await testGateway([naming]);
});
afterAll(() => gw.close());

it('lower-cases names', async () => {
  expect(await gw.call('CreateSandbox', { name: 'Team-A' })).toBePatched('/name', 'team-a');
});

it('refuses reserved names', async () => {
  const r = await gw.call('CreateSandbox', requestFixture('CreateSandbox', { name: 'admin' }));
  expect(r).toBeDenied('INVALID_ARGUMENT', /is reserved/);
});
