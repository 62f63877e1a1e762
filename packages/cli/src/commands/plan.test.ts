import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
// The gateway's scriptable interceptor service: a real gRPC server, not a mock.
import {
  type RunningFixture,
  type ScriptSpec,
  startInterceptorServer,
} from '../../../gateway/src/__fixtures__/interceptor-server.js';
import { runCli } from '../test-util.js';

const CS = 'openshell.v1.OpenShell/CreateSandbox';
const DS = 'openshell.v1.OpenShell/DeleteSandbox';

let dir: string;
let fixtures: RunningFixture[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cli-plan-'));
});
afterEach(async () => {
  await Promise.all(fixtures.map((f) => f.close()));
  fixtures = [];
  await rm(dir, { recursive: true, force: true });
});

async function serve(script: ScriptSpec) {
  const f = await startInterceptorServer(script);
  fixtures.push(f);
  return f;
}

async function config(body: string): Promise<string> {
  const path = join(dir, 'gateway.toml');
  await writeFile(path, `[openshell.gateway]\n\n${body}`);
  return path;
}

describe('plan', () => {
  it('prints the plan in run order with policies, timeouts and limits', async () => {
    const a = await serve({
      manifest: {
        name: 'naming',
        bindings: [
          { id: 'obs', rpc: DS, phases: ['post_commit'] },
          { id: 'name', rpc: CS, phases: ['validate', 'modify_operation'] },
        ],
      },
    });
    const b = await serve({
      manifest: { name: 'quota', bindings: [{ id: 'q', rpc: CS, phases: ['validate'] }] },
    });
    const path = await config(`
[[openshell.gateway.interceptors]]
name = "quota"
grpc_endpoint = "${b.endpoint}"
allow_insecure_transport = true
order = -1
timeout = "2s"

[[openshell.gateway.interceptors]]
name = "naming"
grpc_endpoint = "${a.endpoint}"
allow_insecure_transport = true
max_patches = 4
`);
    const r = await runCli(['plan', '--config', path]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(
      /^PHASE\s+RPC\s+INTERCEPTOR\s+BINDING\s+FAILURE POLICY\s+TIMEOUT\s+MAX BYTES\s+MAX PATCHES$/,
    );
    expect(lines.slice(2).map((l) => l.split(/\s+/).slice(0, 4).join(' '))).toEqual([
      `modify_operation ${CS} naming name`,
      `validate ${CS} quota q`,
      `validate ${CS} naming name`,
      `post_commit ${DS} naming obs`,
    ]);
    expect(lines[3]).toMatch(/fail_closed \(phase default\)\s+2000ms\s+1048576\s+32$/);
    expect(lines[5]).toMatch(/fail_open \(phase default\)\s+500ms\s+1048576\s+4$/);
    expect(r.stderr).toMatch(/allow_insecure_transport = true/);
  });

  it('prints one JSON document with --json', async () => {
    const a = await serve({
      manifest: { name: 'ext', bindings: [{ id: 'b', rpc: CS, phases: ['validate'] }] },
    });
    const path = await config(
      `[[openshell.gateway.interceptors]]\nname = "ext"\ngrpc_endpoint = "${a.endpoint}"\nallow_insecure_transport = true\n`,
    );
    const r = await runCli(['plan', '--config', path, '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.bindings).toEqual([
      {
        phase: 'validate',
        rpc: CS,
        interceptor: 'ext',
        binding: 'b',
        failurePolicy: 'fail_closed',
        failurePolicySource: 'phase_default',
        timeoutMs: 500,
        maxResponseBytes: 1048576,
        maxPatches: 32,
      },
    ]);
    expect(doc.interceptors[0]).toMatchObject({
      name: 'ext',
      authenticated: false,
      bindingPolicy: 'dynamic',
    });
  });

  it('exits 2 with the reason on stderr when the configuration is refused', async () => {
    const path = await config(
      '[[openshell.gateway.interceptors]]\nname = "ext"\ngrpc_endpoint = "http://x:1"\ntimeout = "5m"\n',
    );
    const r = await runCli(['plan', '--config', path]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${path}: interceptor 'ext': key 'timeout' = "5m"`);
  });

  it('exits 2 when startup is refused', async () => {
    const a = await serve({ manifest: { name: 'ext', bindings: [{ id: 'b', rpc: CS, phases: [0] }] } });
    const path = await config(
      `[[openshell.gateway.interceptors]]\nname = "ext"\ngrpc_endpoint = "${a.endpoint}"\nallow_insecure_transport = true\n`,
    );
    const r = await runCli(['plan', '--config', path]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/interceptor 'ext': manifest binding 'b' declares phase 0/);
  });

  it('exits 2 on usage errors', async () => {
    expect((await runCli(['plan'])).code).toBe(2);
    expect((await runCli(['plan', '--config'])).code).toBe(2);
    expect((await runCli(['plan', '--config', join(dir, 'missing.toml')])).stderr).toMatch(
      /missing\.toml: cannot read/,
    );
  });
});
