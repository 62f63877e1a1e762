import { defineConfig } from 'vitest/config';

// `pnpm soak`: the long form of the soak suite only (10,000 operations with faults).
// The short form of the same suite runs in the normal `vitest run`.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['packages/*/src/soak/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    env: { SOAK: 'long' },
    // RSS is sampled after a full collection, so "flat" means retained memory, not garbage.
    execArgv: ['--expose-gc'],
    testTimeout: 1_800_000,
    hookTimeout: 180_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
