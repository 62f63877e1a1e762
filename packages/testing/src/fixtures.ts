import type {
  InterceptableMethod,
  InterceptableRpcTypes,
  JsonObject,
  PrincipalMap,
} from '@openshell-interceptors/protocol';

type Requests = { [M in InterceptableMethod]: InterceptableRpcTypes[M]['request'] };
type Responses = { [M in InterceptableMethod]: InterceptableRpcTypes[M]['response'] };

const WORKSPACE = 'team-ml';

const policy = {
  version: 1,
  filesystem: { includeWorkdir: true, readOnly: ['/usr', '/etc'], readWrite: ['/workspace', '/tmp'] },
  process: { runAsUser: 'sandbox', runAsGroup: 'sandbox' },
  networkPolicies: {
    pypi: {
      name: 'pypi',
      endpoints: [{ host: 'pypi.org', port: 443, protocol: 'rest', access: 'read-only' }],
      binaries: [{ path: '/usr/bin/pip' }],
    },
  },
};

const sandbox = {
  metadata: {
    id: 'sb-7f3c2a',
    name: 'dev-alice-1',
    createdAtMs: '1764000000000',
    labels: { team: 'ml' },
    resourceVersion: '3',
    workspace: WORKSPACE,
  },
  spec: { template: { image: 'ghcr.io/acme/agent:1.2' }, policy, providers: ['github'] },
  status: {
    sandboxName: 'dev-alice-1',
    phase: 'SANDBOX_PHASE_PROVISIONING' as const,
    currentPolicyVersion: 1,
  },
};

const provider = {
  metadata: { id: 'pv-91', name: 'github', workspace: WORKSPACE },
  type: 'github',
  credentials: { GITHUB_TOKEN: 'ghp_fixtureSecretValue' },
  config: { org: 'acme' },
};

const profile = {
  id: 'acme-llm',
  displayName: 'Acme LLM',
  description: 'Inference endpoint of the Acme model gateway',
  category: 'PROVIDER_PROFILE_CATEGORY_INFERENCE' as const,
  credentials: [{ name: 'ACME_API_KEY' }],
  endpoints: [{ host: 'llm.acme.example', port: 443, protocol: 'rest' }],
  inferenceCapable: true,
};

const refreshStatus = {
  providerName: 'github',
  credentialKey: 'GITHUB_TOKEN',
  strategy: 'PROVIDER_CREDENTIAL_REFRESH_STRATEGY_OAUTH2_REFRESH_TOKEN' as const,
  status: 'scheduled',
  expiresAtMs: '1764003600000',
  nextRefreshAtMs: '1764003000000',
};

const rule = {
  name: 'github-api',
  endpoints: [{ host: 'api.github.com', port: 443, protocol: 'rest', access: 'read-write' }],
  binaries: [{ path: '/usr/bin/gh' }],
};

/** A valid, realistic request for each of the 25 interceptable RPCs (full ProtoJSON, secrets included). */
export const REQUEST_FIXTURES: Requests = {
  CreateSandbox: {
    name: 'dev-alice-1',
    labels: { team: 'ml' },
    workspace: WORKSPACE,
    spec: { template: { image: 'ghcr.io/acme/agent:1.2' }, policy, providers: ['github'], command: ['bash'] },
  },
  AttachSandboxProvider: {
    sandboxName: 'dev-alice-1',
    providerName: 'github',
    expectedResourceVersion: '3',
    workspace: WORKSPACE,
  },
  DetachSandboxProvider: {
    sandboxName: 'dev-alice-1',
    providerName: 'github',
    expectedResourceVersion: '4',
    workspace: WORKSPACE,
  },
  DeleteSandbox: { name: 'dev-alice-1', workspace: WORKSPACE },
  CreateSshSession: { sandboxId: 'sb-7f3c2a' },
  ExposeService: { sandbox: 'dev-alice-1', service: 'notebook', targetPort: 8888, workspace: WORKSPACE },
  DeleteService: { sandbox: 'dev-alice-1', service: 'notebook', workspace: WORKSPACE },
  RevokeSshSession: { token: 'ssh-session-fixture-token' },
  CreateProvider: { provider, workspace: WORKSPACE },
  ImportProviderProfiles: { profiles: [{ profile, source: 'catalog' }], workspace: WORKSPACE },
  UpdateProviderProfiles: {
    profile: { profile, source: 'catalog' },
    id: 'acme-llm',
    expectedResourceVersion: '2',
    workspace: WORKSPACE,
  },
  UpdateProvider: {
    provider,
    credentialExpiresAtMs: { GITHUB_TOKEN: '1764003600000' },
    workspace: WORKSPACE,
  },
  ConfigureProviderRefresh: {
    provider: 'github',
    credentialKey: 'GITHUB_TOKEN',
    strategy: 'PROVIDER_CREDENTIAL_REFRESH_STRATEGY_OAUTH2_REFRESH_TOKEN',
    material: { refresh_token: 'rt-fixture-secret', client_id: 'acme-app' },
    secretMaterialKeys: ['refresh_token'],
    expiresAtMs: '1764003600000',
    workspace: WORKSPACE,
  },
  RotateProviderCredential: { provider: 'github', credentialKey: 'GITHUB_TOKEN', workspace: WORKSPACE },
  DeleteProviderRefresh: { provider: 'github', credentialKey: 'GITHUB_TOKEN', workspace: WORKSPACE },
  DeleteProvider: { name: 'github', workspace: WORKSPACE },
  DeleteProviderProfile: { id: 'acme-llm', workspace: WORKSPACE },
  UpdateConfig: { name: 'dev-alice-1', policy, expectedResourceVersion: '3', workspace: WORKSPACE },
  SubmitPolicyAnalysis: {
    name: 'dev-alice-1',
    analysisMode: 'auto',
    summaries: [{ host: 'api.github.com', port: 443, binary: '/usr/bin/gh', count: 4 }],
    proposedChunks: [
      {
        id: 'chunk-1',
        ruleName: 'github-api',
        proposedRule: rule,
        rationale: 'gh needs the API',
        confidence: 0.875,
      },
    ],
    workspace: WORKSPACE,
  },
  ApproveDraftChunk: {
    name: 'dev-alice-1',
    chunkId: 'chunk-1',
    reviewToken: 'review-1',
    workspace: WORKSPACE,
  },
  RejectDraftChunk: { name: 'dev-alice-1', chunkId: 'chunk-1', reason: 'too broad', workspace: WORKSPACE },
  ApproveAllDraftChunks: { name: 'dev-alice-1', workspace: WORKSPACE },
  EditDraftChunk: { name: 'dev-alice-1', chunkId: 'chunk-1', proposedRule: rule, workspace: WORKSPACE },
  UndoDraftChunk: { name: 'dev-alice-1', chunkId: 'chunk-1', workspace: WORKSPACE },
  ClearDraftChunks: { name: 'dev-alice-1', workspace: WORKSPACE },
};

/** A valid, realistic committed response for each of the 25 interceptable RPCs (what post_commit sees, before secret removal). */
export const RESPONSE_FIXTURES: Responses = {
  CreateSandbox: { sandbox },
  AttachSandboxProvider: { sandbox, attached: true },
  DetachSandboxProvider: { sandbox, detached: true },
  DeleteSandbox: { deleted: true },
  CreateSshSession: {
    sandboxId: 'sb-7f3c2a',
    token: 'ssh-session-fixture-token',
    gatewayHost: 'gateway.acme.example',
    gatewayPort: 2222,
    gatewayScheme: 'ssh',
    expiresAtMs: '1764003600000',
  },
  ExposeService: {
    endpoint: {
      metadata: { id: 'se-1', name: 'notebook' },
      sandboxId: 'sb-7f3c2a',
      sandboxName: 'dev-alice-1',
      serviceName: 'notebook',
      targetPort: 8888,
    },
    url: 'https://notebook--dev-alice-1.acme.example',
  },
  DeleteService: { deleted: true },
  RevokeSshSession: { revoked: true },
  CreateProvider: { provider },
  ImportProviderProfiles: { profiles: [profile], imported: true },
  UpdateProviderProfiles: { profile, updated: true },
  UpdateProvider: { provider },
  ConfigureProviderRefresh: { status: refreshStatus },
  RotateProviderCredential: { status: refreshStatus },
  DeleteProviderRefresh: { deleted: true },
  DeleteProvider: { deleted: true },
  DeleteProviderProfile: { deleted: true },
  UpdateConfig: { version: 2, policyHash: 'sha256:5d41402abc4b2a76b9719d911017c592', settingsRevision: '7' },
  SubmitPolicyAnalysis: { acceptedChunks: 1, acceptedChunkIds: ['chunk-1'] },
  ApproveDraftChunk: { policyVersion: 2, policyHash: 'sha256:7d793037a0760186574b0282f2f435e7' },
  RejectDraftChunk: {},
  ApproveAllDraftChunks: {
    policyVersion: 2,
    policyHash: 'sha256:7d793037a0760186574b0282f2f435e7',
    chunksApproved: 1,
  },
  EditDraftChunk: {},
  UndoDraftChunk: { policyVersion: 1, policyHash: 'sha256:5d41402abc4b2a76b9719d911017c592' },
  ClearDraftChunks: { chunksCleared: 1 },
};

/** A deep copy of a JSON value (fixtures are shared; callers get their own). */
function clone<T>(v: T): T {
  return structuredClone(v);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Merge `patch` into `base`: objects merge key by key, anything else (arrays included) replaces; `undefined` removes. */
function merge(base: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete out[k];
    else if (isObject(v) && isObject(out[k])) out[k] = merge(out[k] as Record<string, unknown>, v);
    else out[k] = clone(v);
  }
  return out;
}

/** A deep-partial overlay of a ProtoJSON shape; `undefined` removes a field. */
export type Overlay<T> = {
  [K in keyof T]?: T[K] extends readonly unknown[] ? T[K] : T[K] extends object ? Overlay<T[K]> : T[K];
};

type Vary<T> = Overlay<T> | ((draft: T) => void);

function vary<T>(base: T, change?: Vary<T>): T {
  if (change === undefined) return clone(base);
  if (typeof change === 'function') {
    const draft = clone(base);
    change(draft);
    return draft;
  }
  return merge(base as Record<string, unknown>, change as Record<string, unknown>) as T;
}

/**
 * A valid request of `method`, optionally varied by a deep-merge overlay or a function that edits a copy:
 * `requestFixture('CreateSandbox', { name: 'Team-A' })`, `requestFixture('CreateSandbox', (r) => { delete r.name; })`.
 */
export function requestFixture<M extends InterceptableMethod>(
  method: M,
  change?: Vary<InterceptableRpcTypes[M]['request']>,
): InterceptableRpcTypes[M]['request'] {
  return vary(REQUEST_FIXTURES[method], change);
}

/** A valid committed response of `method`, optionally varied like `requestFixture`. */
export function responseFixture<M extends InterceptableMethod>(
  method: M,
  change?: Vary<InterceptableRpcTypes[M]['response']>,
): InterceptableRpcTypes[M]['response'] {
  return vary(RESPONSE_FIXTURES[method], change);
}

/** Principal maps as the gateway sends them. */
export const principals = {
  /** An OIDC user. `roles` and `scopes` are comma-joined on the wire. */
  user(
    subject = 'alice',
    extra: { roles?: string[]; scopes?: string[]; display_name?: string; provider?: string } = {},
  ): PrincipalMap {
    const p: Record<string, string> = { kind: 'user', subject, provider: extra.provider ?? 'oidc' };
    if (extra.display_name !== undefined) p.display_name = extra.display_name;
    if (extra.roles?.length) p.roles = extra.roles.join(',');
    if (extra.scopes?.length) p.scopes = extra.scopes.join(',');
    return p;
  },
  /** A sandbox calling the gateway with its own identity. */
  sandbox(sandboxId = 'sb-7f3c2a', extra: { source?: string; trust_domain?: string } = {}): PrincipalMap {
    const p: Record<string, string> = {
      kind: 'sandbox',
      sandbox_id: sandboxId,
      source: extra.source ?? 'mtls',
    };
    if (extra.trust_domain !== undefined) p.trust_domain = extra.trust_domain;
    return p;
  },
  anonymous(): PrincipalMap {
    return { kind: 'anonymous' };
  },
  /** What the gateway sends when it has no principal. */
  unknown(): PrincipalMap {
    return { kind: 'unknown' };
  },
};

export type { JsonObject };
