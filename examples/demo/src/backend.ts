import type { GrpcCodeName, JsonObject } from '@openshell-interceptors/protocol';

/** What the OpenShell handler answers with when it refuses a request itself. */
export class BackendError extends Error {
  constructor(
    readonly code: GrpcCodeName,
    message: string,
  ) {
    super(message);
    this.name = 'BackendError';
  }
}

interface Sandbox {
  readonly id: string;
  readonly name: string;
  readonly workspace: string;
  readonly labels: Record<string, string>;
  readonly image: string;
  readonly createdAtMs: string;
  readonly services: Map<string, number>;
}

/**
 * A stand-in for the OpenShell gateway's own handlers, the "commit" that runs after
 * validate: sandboxes and services in memory, keyed by workspace and name, with the
 * errors the real handlers return (ALREADY_EXISTS, NOT_FOUND).
 */
export class DemoBackend {
  private readonly sandboxes = new Map<string, Sandbox>();
  private nextId = 1;

  constructor(private readonly now: () => number = Date.now) {}

  private key(workspace: unknown, name: unknown): string {
    return `${typeof workspace === 'string' ? workspace : ''}/${typeof name === 'string' ? name : ''}`;
  }

  private find(workspace: unknown, name: unknown): Sandbox {
    const s = this.sandboxes.get(this.key(workspace, name));
    if (!s)
      throw new BackendError(
        'NOT_FOUND',
        `sandbox "${String(name)}" not found in workspace "${String(workspace ?? '')}"`,
      );
    return s;
  }

  /** Sandboxes that exist now, as `workspace/name`. */
  list(): string[] {
    return [...this.sandboxes.keys()].sort();
  }

  private view(s: Sandbox): JsonObject {
    return {
      sandbox: {
        metadata: {
          id: s.id,
          name: s.name,
          workspace: s.workspace,
          labels: s.labels,
          createdAtMs: s.createdAtMs,
          resourceVersion: '1',
        },
        spec: { template: { image: s.image } },
        status: { sandboxName: s.name, phase: 'SANDBOX_PHASE_PROVISIONING' },
      },
    };
  }

  async createSandbox(req: JsonObject): Promise<JsonObject> {
    const name = typeof req.name === 'string' && req.name !== '' ? req.name : `sandbox-${this.nextId}`;
    const workspace = typeof req.workspace === 'string' ? req.workspace : '';
    const key = this.key(workspace, name);
    if (this.sandboxes.has(key))
      throw new BackendError(
        'ALREADY_EXISTS',
        `sandbox "${name}" already exists in workspace "${workspace}"`,
      );
    const spec = req.spec as { template?: { image?: string } } | undefined;
    const s: Sandbox = {
      id: `sb-${String(this.nextId++).padStart(4, '0')}`,
      name,
      workspace,
      labels: { ...((req.labels as Record<string, string> | undefined) ?? {}) },
      image: spec?.template?.image ?? 'ghcr.io/nvidia/openshell/base:latest',
      createdAtMs: String(this.now()),
      services: new Map(),
    };
    this.sandboxes.set(key, s);
    return this.view(s);
  }

  async deleteSandbox(req: JsonObject): Promise<JsonObject> {
    const s = this.find(req.workspace, req.name);
    this.sandboxes.delete(this.key(s.workspace, s.name));
    return { deleted: true };
  }

  async exposeService(req: JsonObject): Promise<JsonObject> {
    const s = this.find(req.workspace, req.sandbox);
    const service = String(req.service ?? '');
    const port = typeof req.targetPort === 'number' ? req.targetPort : 0;
    s.services.set(service, port);
    return {
      endpoint: {
        metadata: { id: `se-${s.id}-${service}`, name: service, workspace: s.workspace },
        sandboxId: s.id,
        sandboxName: s.name,
        serviceName: service,
        targetPort: port,
      },
      url: `https://${service}--${s.name}.${s.workspace}.openshell.local`,
    };
  }
}
