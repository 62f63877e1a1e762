// `import '@openshell-interceptors/testing/vitest'` (or list it in vitest `setupFiles`)
// registers the interceptor matchers on vitest's `expect` and types them.
import { expect } from 'vitest';
import { type InterceptorMatchers, interceptorMatchers } from './matchers.js';

declare module 'vitest' {
  // biome-ignore lint/suspicious/noExplicitAny: must repeat vitest's own declaration to merge with it.
  interface Matchers<T = any> extends InterceptorMatchers<T> {}
}

/** Register the matchers on vitest's `expect` (done on import; calling again is harmless). */
export function setupMatchers(): void {
  expect.extend(interceptorMatchers);
}

setupMatchers();

export { type AnnotationFilter, type InterceptorMatchers, interceptorMatchers } from './matchers.js';
