import '@openshell-interceptors/testing/vitest'; // expect.extend(...) + typings for vitest's expect
