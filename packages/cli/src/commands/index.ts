import type { Command } from '../command.js';

// Each command lives in its own module and is loaded only when invoked, so the
// CLI starts fast and one command's dependencies do not burden the others.
export interface CommandEntry {
  readonly name: string;
  readonly summary: string;
  readonly load: () => Promise<Command>;
}

export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'routes',
    summary: 'List the 25 interceptable RPCs',
    load: async () => (await import('./routes.js')).default,
  },
  {
    name: 'policy',
    summary: 'Policy authority (RFC 0005): keys, signed bundles, driver checks, the enforcing interceptor',
    load: async () => (await import('./policy.js')).default,
  },
  {
    name: 'serve',
    summary: 'Serve an interceptor module over gRPC',
    load: async () => (await import('./serve.js')).default,
  },
  {
    name: 'plan',
    summary: 'Connect to the configured interceptors and print the execution plan',
    load: async () => (await import('./plan.js')).default,
  },
  {
    name: 'evaluate',
    summary: 'Run one operation through the live interceptors and print what happened',
    load: async () => (await import('./evaluate.js')).default,
  },
  {
    name: 'describe',
    summary: "Print an interceptor service's manifest (Describe)",
    load: async () => (await import('./describe.js')).default,
  },
  {
    name: 'check',
    summary: 'Conformance-check any interceptor service before registering it',
    load: async () => (await import('./check.js')).default,
  },
  {
    name: 'test',
    summary: 'Run declarative interceptor test suites (YAML)',
    load: async () => (await import('./test.js')).default,
  },
  {
    name: 'init',
    summary: 'Scaffold a new interceptor project whose tests pass as created',
    load: async () => (await import('./init.js')).default,
  },
  { name: 'demo', summary: 'Run the end-to-end demo', load: async () => (await import('./demo.js')).default },
];
