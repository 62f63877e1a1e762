import type { SandboxPolicyJson } from '@openshell-interceptors/protocol';

/** A policy touching every kind of field: nested messages, maps, packed repeated numbers, a Struct. */
export const SAMPLE_POLICY: SandboxPolicyJson = {
  version: 1,
  filesystem: { includeWorkdir: true, readOnly: ['/usr', '/etc'], readWrite: ['/tmp'] },
  landlock: { compatibility: 'best_effort' },
  process: { runAsUser: 'sandbox', runAsGroup: 'sandbox' },
  networkPolicies: {
    github: {
      name: 'github',
      endpoints: [{ host: 'api.github.com', port: 443, ports: [443, 8443], protocol: 'rest' }],
      binaries: [{ path: '/usr/bin/git' }],
    },
  },
  networkMiddlewares: {
    audit: { name: 'audit', middleware: 'log', config: { level: 'info', sample: 0.5 }, order: 2 },
  },
};

/** A smaller, different policy. */
export const OTHER_POLICY: SandboxPolicyJson = {
  version: 2,
  filesystem: { readOnly: ['/'] },
};
