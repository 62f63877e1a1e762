import type { GrpcCodeName, InterceptableMethod, JsonObject } from '@openshell-interceptors/protocol';

/** A user of the demo, as the gateway would authenticate them (OIDC). */
export interface Actor {
  readonly name: string;
  readonly tenant: string;
  readonly principal: Readonly<Record<string, string>>;
}

const user = (subject: string, tenant: string, display: string): Actor => ({
  name: subject.split('@')[0]!,
  tenant,
  principal: { kind: 'user', subject, display_name: display, provider: 'oidc', roles: 'developer' },
});

export const CAST = {
  alice: user('alice@acme.example', 'acme', 'Alice'),
  bob: user('bob@globex.example', 'globex', 'Bob'),
} as const;

/** The samples the demo starts; `listen` is how each is reached. */
export const SERVICES = [
  { name: 'naming', listen: 'tcp' },
  { name: 'tenancy', listen: 'unix' },
  { name: 'quota', listen: 'unix' },
  { name: 'audit', listen: 'tcp' },
] as const;
export type ServiceName = (typeof SERVICES)[number]['name'];

/** What a call should end in: allowed, or refused with a code by a given decider. */
export type Expectation =
  | { readonly outcome: 'allowed'; readonly failedOpen?: ServiceName }
  | {
      readonly outcome: 'denied';
      readonly code: GrpcCodeName;
      readonly by: ServiceName;
      readonly failedClosed?: true;
    };

export interface CallStep {
  readonly kind: 'call';
  readonly actor: Actor;
  /** What the user does, in words. */
  readonly title: string;
  readonly method: InterceptableMethod;
  readonly request: JsonObject;
  readonly expect: Expectation;
}

export interface StopStep {
  readonly kind: 'stop';
  readonly service: ServiceName;
  readonly title: string;
}

export type Step = CallStep | StopStep;

const { alice, bob } = CAST;

/** Per-user sandbox quota in the story. */
export const QUOTA_PER_USER = 2;

/**
 * The story: two tenants create, rename and delete sandboxes; a bad name is fixed by
 * a patch, another refused; a quota is hit and freed; a cross-tenant request is
 * refused; then services are stopped and the failure policies show what they do.
 */
export const STORY: readonly Step[] = [
  {
    kind: 'call',
    actor: alice,
    title: 'creates a sandbox without a name',
    method: 'CreateSandbox',
    request: { spec: { template: { image: 'ghcr.io/acme/agent:1.4' } } },
    expect: { outcome: 'allowed' },
  },
  {
    kind: 'call',
    actor: alice,
    title: 'creates "Notebook-GPU"',
    method: 'CreateSandbox',
    request: { name: 'Notebook-GPU', spec: { template: { image: 'ghcr.io/acme/notebook:2.0' } } },
    expect: { outcome: 'allowed' },
  },
  {
    kind: 'call',
    actor: alice,
    title: 'creates "my_box"',
    method: 'CreateSandbox',
    request: { name: 'my_box' },
    expect: { outcome: 'denied', code: 'INVALID_ARGUMENT', by: 'naming' },
  },
  {
    kind: 'call',
    actor: alice,
    title: 'creates "my-box" (a third sandbox)',
    method: 'CreateSandbox',
    request: { name: 'my-box' },
    expect: { outcome: 'denied', code: 'RESOURCE_EXHAUSTED', by: 'quota' },
  },
  {
    kind: 'call',
    actor: bob,
    title: 'creates "ci-runner"',
    method: 'CreateSandbox',
    request: { name: 'ci-runner', labels: { purpose: 'ci' } },
    expect: { outcome: 'allowed' },
  },
  {
    kind: 'call',
    actor: bob,
    title: "deletes alice's notebook-gpu in workspace acme",
    method: 'DeleteSandbox',
    request: { name: 'notebook-gpu', workspace: 'acme' },
    expect: { outcome: 'denied', code: 'PERMISSION_DENIED', by: 'tenancy' },
  },
  {
    kind: 'call',
    actor: bob,
    title: 'exposes port 8080 of ci-runner',
    method: 'ExposeService',
    request: { sandbox: 'ci-runner', service: 'dashboard', targetPort: 8080 },
    expect: { outcome: 'allowed' },
  },
  {
    kind: 'call',
    actor: alice,
    title: 'deletes notebook-gpu',
    method: 'DeleteSandbox',
    request: { name: 'notebook-gpu' },
    expect: { outcome: 'allowed' },
  },
  {
    kind: 'call',
    actor: alice,
    title: 'creates "my-box" again',
    method: 'CreateSandbox',
    request: { name: 'my-box' },
    expect: { outcome: 'allowed' },
  },
  { kind: 'stop', service: 'audit', title: 'the audit service is stopped' },
  {
    kind: 'call',
    actor: alice,
    title: 'deletes my-box',
    method: 'DeleteSandbox',
    request: { name: 'my-box' },
    expect: { outcome: 'allowed', failedOpen: 'audit' },
  },
  { kind: 'stop', service: 'quota', title: 'the quota service is stopped' },
  {
    kind: 'call',
    actor: bob,
    title: 'creates "ci-runner-2"',
    method: 'CreateSandbox',
    request: { name: 'ci-runner-2' },
    expect: { outcome: 'denied', code: 'PERMISSION_DENIED', by: 'quota', failedClosed: true },
  },
  {
    kind: 'call',
    actor: bob,
    title: 'deletes ci-runner',
    method: 'DeleteSandbox',
    request: { name: 'ci-runner' },
    expect: { outcome: 'allowed', failedOpen: 'quota' },
  },
];
