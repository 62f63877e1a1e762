// Pieces of the soak suite: sample interceptors as real processes, a fake backend that
// commits sandboxes and watches the quota from the outside, a seeded random source.
import { type ChildProcess, spawn } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JsonObject } from '@openshell-interceptors/protocol';

const ENTRY = fileURLToPath(new URL('./serve-sample.ts', import.meta.url));
/** The repository root (packages/gateway/src/soak/__fixtures__ → five levels up). */
export const REPO_ROOT = join(dirname(ENTRY), '..', '..', '..', '..', '..');

export const sampleModule = (name: string) => join(REPO_ROOT, 'examples', name, 'src', 'index.ts');

/** Write the SPKI PEM public key of the gateway's signing key next to it. */
export async function publicKeyFileFor(privateKeyPath: string): Promise<string> {
  const pem = createPublicKey(await readFile(privateKeyPath)).export({ type: 'spki', format: 'pem' });
  const path = join(dirname(privateKeyPath), 'gateway.pub.pem');
  await writeFile(path, pem);
  return path;
}

/** A sample interceptor served by the SDK in its own process, on a unix socket. */
export class SampleProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  /** How many times the process was started. */
  starts = 0;
  stderr = '';

  constructor(
    readonly name: string,
    private readonly module: string,
    readonly socketPath: string,
    private readonly publicKeyFile: string,
    private readonly env: Readonly<Record<string, string>> = {},
  ) {}

  get endpoint(): string {
    return `unix://${this.socketPath}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Start the process; resolves once it listens. */
  start(): Promise<void> {
    if (this.running) return Promise.reject(new Error(`${this.name} is already running`));
    this.starts++;
    const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', ENTRY], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        ...this.env,
        SOAK_MODULE: this.module,
        SOAK_LISTEN: `unix://${this.socketPath}`,
        SOAK_PUBLIC_KEY: this.publicKeyFile,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.exited = new Promise((r) => child.once('exit', () => r()));
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    return new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${this.name} did not start in time: ${this.stderr}`));
      }, 60_000);
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('READY ')) {
          clearTimeout(timer);
          child.stdout?.removeAllListeners('data');
          child.stdout?.resume();
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${code ?? signal}) before listening: ${this.stderr}`));
      });
    });
  }

  /** SIGKILL: a crash, with no chance to finish calls or remove its socket. */
  async kill(): Promise<void> {
    if (this.running) this.child?.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM: a graceful shutdown (in-flight calls finish, the audit log is flushed). */
  async stop(): Promise<void> {
    if (this.running) this.child?.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

export interface User {
  readonly subject: string;
  readonly tenant: string | undefined;
}

export function principalOf(u: User | undefined): Record<string, string> {
  return u ? { kind: 'user', subject: u.subject, provider: 'oidc' } : { kind: 'anonymous' };
}

/**
 * The system of record behind the gateway: commits creates and deletes, and checks from
 * the outside that no caller or tenant ever has more sandboxes than the quota allows.
 */
export class FakeBackend {
  /** `<workspace>/<name>` → owner subject and tenant label. */
  readonly sandboxes = new Map<string, { owner: string; tenant: string }>();
  /** Keys a delete is in flight for, so no two deletes race on one sandbox. */
  readonly deleting = new Set<string>();
  readonly maxPerSubject = new Map<string, number>();
  readonly maxPerTenant = new Map<string, number>();
  creates = 0;
  deletes = 0;

  count(by: 'owner' | 'tenant', value: string): number {
    let n = 0;
    for (const s of this.sandboxes.values()) if (s[by] === value) n++;
    return n;
  }

  create(owner: string, req: JsonObject): JsonObject {
    const name = String(req.name ?? '');
    const workspace = String(req.workspace ?? '');
    const key = `${workspace}/${name}`;
    if (name === '') throw new Error('backend: create without a name reached the commit');
    if (this.sandboxes.has(key)) throw new Error(`backend: ${key} already exists`);
    const labels = (req.labels ?? {}) as Record<string, string>;
    const tenant = labels.tenant ?? '';
    this.sandboxes.set(key, { owner, tenant });
    this.creates++;
    this.maxPerSubject.set(owner, Math.max(this.maxPerSubject.get(owner) ?? 0, this.count('owner', owner)));
    this.maxPerTenant.set(tenant, Math.max(this.maxPerTenant.get(tenant) ?? 0, this.count('tenant', tenant)));
    return { sandbox: { metadata: { name, workspace, labels, id: `sb-${this.creates}` } } };
  }

  delete(req: JsonObject): JsonObject {
    const key = `${String(req.workspace ?? '')}/${String(req.name ?? '')}`;
    if (!this.sandboxes.delete(key)) throw new Error(`backend: ${key} does not exist`);
    this.deletes++;
    return { deleted: true };
  }

  /** Sandboxes of `owner` that no delete is in flight for. */
  deletable(owner: string): string[] {
    return [...this.sandboxes.entries()]
      .filter(([k, s]) => s.owner === owner && !this.deleting.has(k))
      .map(([k]) => k);
  }
}

/** A small seeded PRNG (mulberry32), so a failing soak can be replayed with SOAK_SEED. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
