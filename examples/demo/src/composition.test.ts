import { defineSuiteTests } from '@openshell-interceptors/testing/vitest';
import { expect, it } from 'vitest';
import { auditLines } from './__fixtures__/samples.js';

// The composition suite: naming → tenancy → quota → audit behind one gateway runtime.
defineSuiteTests(new URL('./__fixtures__/composition.suite.yaml', import.meta.url));

it('audits only what committed: the create and the delete', async () => {
  // The suite's cases run first (vitest runs tests in definition order).
  await new Promise((r) => setImmediate(r));
  const methods = auditLines.map((l) => (JSON.parse(l) as { what: { method: string } }).what.method);
  expect(methods).toEqual(['CreateSandbox', 'DeleteSandbox']);
});
