import { type InterceptableMethod, ROUTES, schema } from '@openshell-interceptors/protocol';
import {
  allow,
  deny,
  type FailurePolicy,
  type Interceptor,
  interceptor,
  type Principal,
  principalList,
} from '@openshell-interceptors/sdk';

/** A tenant name: a DNS label, so `<tenant>` and `<tenant>-<suffix>` are valid workspace names. */
export const TENANT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Every interceptable RPC whose request names a workspace (23 of the 25: all but
 * CreateSshSession and RevokeSshSession, which name a sandbox by id or carry only a token).
 */
export const WORKSPACE_RPCS: readonly InterceptableMethod[] = ROUTES.filter((r) =>
  schema.message(r.requestType).byName.has('workspace'),
).map((r) => r.method);

export interface TenancyOptions {
  /** Interceptor name (default `tenancy`). */
  readonly name?: string;
  /** Exact principal subjects → tenant (checked first). */
  readonly subjects?: Readonly<Record<string, string>>;
  /**
   * Roles that name the tenant, `<rolePrefix><tenant>` (default prefix `tenant:`, so role
   * `tenant:acme` → `acme`); `''` turns role mapping off.
   */
  readonly rolePrefix?: string;
  /** E-mail domains of user subjects → tenant (`acme.example` → `acme`). */
  readonly domains?: Readonly<Record<string, string>>;
  /** Trust domains of sandbox callers → tenant. */
  readonly trustDomains?: Readonly<Record<string, string>>;
  /** Roles that may act in any workspace (platform operators); nothing is stamped for them. */
  readonly adminRoles?: readonly string[];
  /** The label stamped with the tenant on created sandboxes and providers (default `tenant`). */
  readonly label?: string;
  /**
   * Every tenant, so a workspace is owned by the longest matching tenant name
   * (`acme-labs-ci` belongs to `acme-labs`, not `acme`). Default: the tenants the mappings name.
   */
  readonly tenants?: readonly string[];
  /** RPCs to guard (default WORKSPACE_RPCS). */
  readonly methods?: readonly InterceptableMethod[];
  readonly failurePolicy?: FailurePolicy;
}

/** The fields this interceptor reads and stamps; every guarded request has `workspace`. */
interface WorkspaceRequest {
  workspace?: string;
  labels?: Record<string, string>;
  provider?: { metadata?: { labels?: Record<string, string>; workspace?: string } };
}

/** Who the caller acts for: a tenant, an operator allowed everywhere, or nobody (with why). */
export type TenantResolution =
  | { readonly kind: 'tenant'; readonly tenant: string; readonly via: string }
  | { readonly kind: 'admin'; readonly role: string }
  | { readonly kind: 'none'; readonly problem: string };

function checkTenant(tenant: string, where: string): string {
  if (!TENANT_NAME.test(tenant) || tenant.length > 63)
    throw new Error(
      `tenancy: ${where} maps to ${JSON.stringify(tenant)}, which is not a tenant name (a DNS label)`,
    );
  return tenant;
}

function describeCaller(p: Principal): string {
  if (p.kind === 'user') return p.subject;
  if (p.kind === 'sandbox') return `sandbox ${p.sandbox_id}`;
  return `an ${p.kind} caller`;
}

/**
 * Workspaces by tenant: tenant `acme` owns workspace `acme` and every `acme-<suffix>`.
 * When tenant names nest (`acme`, `acme-labs`), the longest match owns the workspace.
 */
export function workspaceOwner(workspace: string, tenants: Iterable<string>): string | undefined {
  let owner: string | undefined;
  for (const t of tenants) {
    if ((workspace === t || workspace.startsWith(`${t}-`)) && (!owner || t.length > owner.length)) owner = t;
  }
  return owner;
}

/**
 * The tenancy interceptor. For every RPC that names a workspace, one binding with:
 * - modify: fill an empty workspace with the caller's tenant, and stamp the tenant
 *   label on created sandboxes and providers (a forged label is overwritten);
 * - validate: deny PERMISSION_DENIED unless the workspace belongs to the caller's
 *   tenant (and, on creates, the label says so); callers with an admin role pass.
 */
export function createTenancyInterceptor(options: TenancyOptions = {}): Interceptor {
  const subjects = new Map(
    Object.entries(options.subjects ?? {}).map(([s, t]) => [s, checkTenant(t, `subject ${s}`)]),
  );
  const domains = new Map(
    Object.entries(options.domains ?? {}).map(([d, t]) => [d.toLowerCase(), checkTenant(t, `domain ${d}`)]),
  );
  const trustDomains = new Map(
    Object.entries(options.trustDomains ?? {}).map(([d, t]) => [d, checkTenant(t, `trust domain ${d}`)]),
  );
  const rolePrefix = options.rolePrefix ?? 'tenant:';
  const adminRoles = new Set(options.adminRoles ?? []);
  const label = options.label ?? 'tenant';
  const known = new Set(
    (options.tenants ?? [...subjects.values(), ...domains.values(), ...trustDomains.values()]).map((t) =>
      checkTenant(t, 'tenants'),
    ),
  );
  const methods = options.methods ?? WORKSPACE_RPCS;
  for (const m of methods) {
    if (!WORKSPACE_RPCS.includes(m))
      throw new Error(`tenancy: ${m} does not name a workspace, so tenancy cannot guard it`);
  }

  const resolve = (p: Principal): TenantResolution => {
    const roles = p.kind === 'user' ? principalList(p.roles) : [];
    const admin = roles.find((r) => adminRoles.has(r));
    if (admin) return { kind: 'admin', role: admin };
    if (p.kind === 'user') {
      const bySubject = subjects.get(p.subject);
      if (bySubject) return { kind: 'tenant', tenant: bySubject, via: 'subject' };
      if (rolePrefix) {
        const fromRoles = [
          ...new Set(roles.filter((r) => r.startsWith(rolePrefix)).map((r) => r.slice(rolePrefix.length))),
        ];
        if (fromRoles.length > 1) {
          return {
            kind: 'none',
            problem: `${p.subject} holds roles of several tenants (${fromRoles.join(', ')}), so the tenant is ambiguous`,
          };
        }
        if (fromRoles.length === 1 && TENANT_NAME.test(fromRoles[0]!))
          return { kind: 'tenant', tenant: fromRoles[0]!, via: 'role' };
      }
      const at = p.subject.lastIndexOf('@');
      const byDomain = at >= 0 ? domains.get(p.subject.slice(at + 1).toLowerCase()) : undefined;
      if (byDomain) return { kind: 'tenant', tenant: byDomain, via: 'domain' };
    }
    if (p.kind === 'sandbox' && p.trust_domain) {
      const t = trustDomains.get(p.trust_domain);
      if (t) return { kind: 'tenant', tenant: t, via: 'trust_domain' };
    }
    return { kind: 'none', problem: `${describeCaller(p)} is not mapped to any tenant` };
  };

  const refuseUnmapped = (problem: string) =>
    deny('PERMISSION_DENIED', `${problem}: ask an administrator to map you to a tenant`);

  let b = interceptor(
    options.name ?? 'tenancy',
    options.failurePolicy ? { failurePolicy: options.failurePolicy } : {},
  );
  for (const method of methods) {
    b = b
      .modify(method, ({ draft, principal, annotate }) => {
        const who = resolve(principal);
        if (who.kind === 'admin') return;
        if (who.kind === 'none') return refuseUnmapped(who.problem);
        const req = draft as WorkspaceRequest;
        if (!req.workspace) {
          req.workspace = who.tenant;
          annotate('tenancy_workspace', 'defaulted');
        }
        const stamp = (labels: Record<string, string>) => {
          if (labels[label] !== undefined && labels[label] !== who.tenant)
            annotate('tenancy_label', `replaced ${labels[label]}`);
          labels[label] = who.tenant;
        };
        if (method === 'CreateSandbox') {
          req.labels ??= {};
          stamp(req.labels);
        }
        if (method === 'CreateProvider' && req.provider) {
          req.provider.metadata ??= {};
          req.provider.metadata.labels ??= {};
          stamp(req.provider.metadata.labels);
        }
      })
      .validate(method, ({ operation, principal, annotate }) => {
        const who = resolve(principal);
        if (who.kind === 'admin') {
          annotate('tenancy', `admin role ${who.role}`);
          return allow();
        }
        if (who.kind === 'none') return refuseUnmapped(who.problem);
        const caller = describeCaller(principal);
        const own = `"${who.tenant}" or "${who.tenant}-…"`;
        const req = operation as WorkspaceRequest;
        const workspaces = [req.workspace, req.provider?.metadata?.workspace].filter(
          (w): w is string => w !== undefined,
        );
        if (!req.workspace) {
          return deny(
            'PERMISSION_DENIED',
            `${method} names no workspace: ${caller} acts for tenant "${who.tenant}" and must name a workspace ${own}`,
          );
        }
        const tenants = new Set([...known, who.tenant]);
        for (const ws of workspaces) {
          const owner = workspaceOwner(ws, tenants);
          if (owner !== who.tenant) {
            const whose = owner ? `belongs to tenant "${owner}"` : 'belongs to no tenant';
            return deny(
              'PERMISSION_DENIED',
              `workspace "${ws}" ${whose}: ${caller} acts for tenant "${who.tenant}" and may only use workspaces ${own}`,
            );
          }
        }
        // What tenancy creates must say whose it is (others, like quota, count by the label).
        const labels =
          method === 'CreateSandbox'
            ? (req.labels ?? {})
            : method === 'CreateProvider' && req.provider
              ? (req.provider.metadata?.labels ?? {})
              : undefined;
        if (labels && labels[label] === undefined) {
          return deny(
            'PERMISSION_DENIED',
            `label ${label} is missing: what tenant "${who.tenant}" creates must carry ${label}=${who.tenant}`,
          );
        }
        if (labels && labels[label] !== who.tenant) {
          return deny(
            'PERMISSION_DENIED',
            `label ${label}=${JSON.stringify(labels[label])} does not name the caller's tenant "${who.tenant}"`,
          );
        }
        annotate('tenancy', `${who.tenant} via ${who.via}`);
        return allow();
      });
  }
  return b;
}

/** `a=b, c=d` → { a: 'b', c: 'd' }, naming the variable on a malformed item. */
function parseMap(text: string, variable: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of text.split(',')) {
    if (item.trim() === '') continue;
    const eq = item.lastIndexOf('=');
    const k = item.slice(0, eq).trim();
    const v = item.slice(eq + 1).trim();
    if (eq < 0 || k === '' || v === '')
      throw new Error(`${variable}: expected key=tenant, got ${JSON.stringify(item.trim())}`);
    out[k] = v;
  }
  return out;
}

/**
 * Options from the environment, for the default export:
 * `TENANCY_SUBJECTS` (`alice@x.example=acme,...`), `TENANCY_DOMAINS` (`acme.example=acme`),
 * `TENANCY_TRUST_DOMAINS`, `TENANCY_ROLE_PREFIX` (default `tenant:`; empty turns it off),
 * `TENANCY_ADMIN_ROLES` (comma-separated), `TENANCY_LABEL`, `TENANCY_TENANTS`, `TENANCY_FAILURE_POLICY`.
 */
export function tenancyOptionsFromEnv(env: NodeJS.ProcessEnv): TenancyOptions {
  const o: { -readonly [K in keyof TenancyOptions]: TenancyOptions[K] } = {};
  if (env.TENANCY_SUBJECTS) o.subjects = parseMap(env.TENANCY_SUBJECTS, 'TENANCY_SUBJECTS');
  if (env.TENANCY_DOMAINS) o.domains = parseMap(env.TENANCY_DOMAINS, 'TENANCY_DOMAINS');
  if (env.TENANCY_TRUST_DOMAINS)
    o.trustDomains = parseMap(env.TENANCY_TRUST_DOMAINS, 'TENANCY_TRUST_DOMAINS');
  if (env.TENANCY_ROLE_PREFIX !== undefined) o.rolePrefix = env.TENANCY_ROLE_PREFIX;
  if (env.TENANCY_ADMIN_ROLES)
    o.adminRoles = env.TENANCY_ADMIN_ROLES.split(',')
      .map((r) => r.trim())
      .filter(Boolean);
  if (env.TENANCY_LABEL) o.label = env.TENANCY_LABEL;
  if (env.TENANCY_TENANTS)
    o.tenants = env.TENANCY_TENANTS.split(',')
      .map((t) => t.trim())
      .filter(Boolean);
  if (env.TENANCY_FAILURE_POLICY) {
    const p = env.TENANCY_FAILURE_POLICY;
    if (p !== 'fail_closed' && p !== 'fail_open')
      throw new Error(`TENANCY_FAILURE_POLICY must be fail_closed or fail_open, got ${JSON.stringify(p)}`);
    o.failurePolicy = p;
  }
  return o;
}
