import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type RunningFixture,
  type ScriptSpec,
  startInterceptorServer,
} from '../../../gateway/src/__fixtures__/interceptor-server.js';
import { runCli } from '../test-util.js';

const CP = 'openshell.v1.OpenShell/CreateProvider';
const CS = 'openshell.v1.OpenShell/CreateSandbox';

let dir: string;
let fixtures: RunningFixture[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cli-eval-'));
});
afterEach(async () => {
  await Promise.all(fixtures.map((f) => f.close()));
  fixtures = [];
  await rm(dir, { recursive: true, force: true });
});

async function setup(script: ScriptSpec, extra = ''): Promise<{ fixture: RunningFixture; config: string }> {
  const fixture = await startInterceptorServer(script);
  fixtures.push(fixture);
  const config = join(dir, 'gateway.toml');
  await writeFile(
    config,
    `[openshell.gateway]\n\n[[openshell.gateway.interceptors]]\nname = "${script.manifest.name}"\ngrpc_endpoint = "${fixture.endpoint}"\nallow_insecure_transport = true\n${extra}`,
  );
  return { fixture, config };
}

async function file(name: string, value: unknown): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, JSON.stringify(value));
  return p;
}

const provider = {
  provider: { metadata: { name: 'openai' }, type: 'openai', credentials: { API_KEY: 'sk-very-secret' } },
};

describe('evaluate', () => {
  it('runs the pipeline and prints one JSON document without any secret (exit 0)', async () => {
    const { fixture, config } = await setup({
      manifest: {
        name: 'tagger',
        bindings: [{ id: 'tag', rpc: CP, phases: ['modify_operation', 'validate', 'post_commit'] }],
      },
      rules: [
        {
          phase: 'modify_operation',
          result: {
            patches: [{ op: 'add', path: '/provider/config', value: { team: 'a' } }],
            annotations: { why: 'team' },
          },
        },
      ],
    });
    const op = await file('op.json', provider);
    const r = await runCli([
      'evaluate',
      '--config',
      config,
      '--rpc',
      CP,
      '--operation',
      op,
      '--principal',
      'kind=user',
      '--principal',
      'subject=alice',
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('sk-very-secret');
    const doc = JSON.parse(r.stdout);
    expect(Object.keys(doc)).toEqual(['outcome', 'status', 'operation', 'response', 'evaluations']);
    expect(doc.outcome).toBe('allowed');
    expect(doc.status).toBeNull();
    expect(doc.operation).toEqual({
      provider: { metadata: { name: 'openai' }, type: 'openai', config: { team: 'a' } },
    });
    expect(doc.response).toEqual(doc.operation);
    expect(doc.evaluations).toHaveLength(3);
    expect(Object.keys(doc.evaluations[0])).toEqual([
      'interceptor',
      'binding',
      'phase',
      'decision',
      'failurePolicy',
      'patches',
      'latencyMs',
      'error',
      'annotations',
    ]);
    expect(doc.evaluations[0]).toMatchObject({
      interceptor: 'tagger',
      binding: 'tag',
      phase: 'modify_operation',
      decision: 'allow',
      failurePolicy: 'fail_closed',
      patches: [{ op: 'add', path: '/provider/config', value: { team: 'a' } }],
      error: null,
      annotations: { why: 'team' },
    });
    // The echoed request happens to parse as a ProviderResponse: the observer sees it, secrets removed.
    expect(doc.evaluations[2]).toMatchObject({
      phase: 'post_commit',
      decision: 'allow',
      failurePolicy: 'fail_open',
    });
    expect(fixture.evaluations()[2]?.operation).toEqual(doc.operation);
    expect(fixture.evaluations()[0]?.evaluation?.principal).toEqual({ kind: 'user', subject: 'alice' });
  });

  it('hands post_commit the --response file', async () => {
    const { fixture, config } = await setup({
      manifest: { name: 'audit', bindings: [{ id: 'o', rpc: CS, phases: ['post_commit'] }] },
    });
    const op = await file('op.json', { name: 'box' });
    const resp = await file('resp.json', { sandbox: { metadata: { name: 'box', id: 'sb-9' } } });
    const r = await runCli([
      'evaluate',
      '--config',
      config,
      '--rpc',
      'CreateSandbox',
      '--operation',
      op,
      '--response',
      resp,
      '--json',
    ]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.response).toEqual({ sandbox: { metadata: { name: 'box', id: 'sb-9' } } });
    expect(doc.evaluations[0]).toMatchObject({ decision: 'allow' });
    expect(fixture.evaluations()[0]?.operation).toEqual({
      sandbox: { metadata: { name: 'box', id: 'sb-9' } },
    });
  });

  it('exits 1 on a denial, with the status', async () => {
    const { config } = await setup({
      manifest: { name: 'quota', bindings: [{ id: 'q', rpc: CS, phases: ['validate'] }] },
      rules: [{ result: { allowed: false, statusCode: 'RESOURCE_EXHAUSTED', reason: 'quota reached' } }],
    });
    const op = await file('op.json', { name: 'box' });
    const r = await runCli(['evaluate', '--config', config, '--rpc', CS, '--operation', op, '--json']);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      outcome: 'denied',
      status: { code: 'RESOURCE_EXHAUSTED', message: 'quota reached' },
      response: null,
      evaluations: [{ decision: 'deny', error: null }],
    });
  });

  it('exits 1 on a fail_closed failure, and prints a readable summary without --json', async () => {
    const { config } = await setup({
      manifest: { name: 'flaky', bindings: [{ id: 'f', rpc: CS, phases: ['validate'] }] },
      rules: [{ error: { code: 'INTERNAL', message: 'db down' } }],
    });
    const op = await file('op.json', { name: 'box' });
    const r = await runCli(['evaluate', '--config', config, '--rpc', CS, '--operation', op]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /^denied: PERMISSION_DENIED: gateway interceptor 'flaky' failed closed: INTERNAL: db down\n/,
    );
    expect(r.stdout).toMatch(/validate\s+flaky\s+f\s+error\s+fail_closed/);
    expect(r.stderr).toMatch(/failed closed/);
  });

  it('exits 0 on a fail_open failure', async () => {
    const { config } = await setup(
      {
        manifest: { name: 'flaky', bindings: [{ id: 'f', rpc: CS, phases: ['validate'] }] },
        rules: [{ error: { code: 'INTERNAL', message: 'db down' } }],
      },
      'failure_policy = "fail_open"\n',
    );
    const op = await file('op.json', { name: 'box' });
    const r = await runCli(['evaluate', '--config', config, '--rpc', CS, '--operation', op, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).evaluations[0]).toMatchObject({
      decision: 'error',
      error: 'INTERNAL: db down',
    });
  });

  it('exits 2 when the configuration or startup is refused, or on bad arguments', async () => {
    const op = await file('op.json', { name: 'box' });
    const bad = join(dir, 'bad.toml');
    await writeFile(bad, '[openshell.gateway]\nunknown = 1\n');
    const r = await runCli(['evaluate', '--config', bad, '--rpc', CS, '--operation', op]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/key 'unknown' = 1: unknown key/);
    const noListener = join(dir, 'gone.toml');
    await writeFile(
      noListener,
      '[openshell.gateway]\n[[openshell.gateway.interceptors]]\nname = "gone"\ngrpc_endpoint = "http://127.0.0.1:1"\nallow_insecure_transport = true\ndescribe_attempts = 1\n',
    );
    const r2 = await runCli(['evaluate', '--config', noListener, '--rpc', CS, '--operation', op]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/interceptor 'gone': Describe failed/);
    const { config } = await setup({ manifest: { name: 'x', bindings: [] } });
    expect(
      (
        await runCli([
          'evaluate',
          '--config',
          config,
          '--rpc',
          'openshell.v1.OpenShell/GetSandbox',
          '--operation',
          op,
        ])
      ).stderr,
    ).toMatch(/not one of the 25/);
    expect(
      (await runCli(['evaluate', '--config', config, '--rpc', CS, '--operation', op, '--principal', 'nokey']))
        .code,
    ).toBe(2);
    const wrongResp = await file('r.json', { nope: 1 });
    const r3 = await runCli([
      'evaluate',
      '--config',
      config,
      '--rpc',
      CS,
      '--operation',
      op,
      '--response',
      wrongResp,
    ]);
    expect(r3.code).toBe(2);
    expect(r3.stderr).toMatch(/--response .*r\.json: not a valid openshell.v1.SandboxResponse/);
  });

  it('reports an invalid operation as a denial with INVALID_ARGUMENT', async () => {
    const { config } = await setup({ manifest: { name: 'x', bindings: [] } });
    const op = await file('op.json', { name: 5 });
    const r = await runCli(['evaluate', '--config', config, '--rpc', CS, '--operation', op, '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).status.code).toBe('INVALID_ARGUMENT');
  });
});
