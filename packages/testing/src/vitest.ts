// `import '@openshell-interceptors/testing/vitest'` (or list it in vitest `setupFiles`)
// registers the interceptor matchers on vitest's `expect` and types them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestGateway } from './gateway.js';
import { type InterceptorMatchers, interceptorMatchers } from './matchers.js';
import { loadSuite, runCase, startSuiteGateway } from './suite.js';

declare module 'vitest' {
  // biome-ignore lint/suspicious/noExplicitAny: must repeat vitest's own declaration to merge with it.
  interface Matchers<T = any> extends InterceptorMatchers<T> {}
}

/** Register the matchers on vitest's `expect` (done on import; calling again is harmless). */
export function setupMatchers(): void {
  expect.extend(interceptorMatchers);
}

setupMatchers();

/**
 * Declare one vitest test per case of a YAML suite (`describe` named after the suite).
 * The file is read and checked now; its gateway starts in `beforeAll` and stops in `afterAll`.
 */
export function defineSuiteTests(path: string | URL): void {
  const spec = loadSuite(path);
  describe(spec.name, () => {
    let gw: TestGateway | undefined;
    beforeAll(async () => {
      gw = await startSuiteGateway(spec);
    });
    afterAll(async () => {
      await gw?.close();
    });
    for (const c of spec.cases) {
      it(c.name, async () => {
        if (!gw) throw new Error(`the gateway of ${spec.file} did not start`);
        const r = await runCase(gw, c);
        if (!r.passed) throw new Error(`${r.failures.join('\n')}\nevaluations:\n${r.evaluations}`);
      });
    }
  });
}

export { type AnnotationFilter, type InterceptorMatchers, interceptorMatchers } from './matchers.js';
