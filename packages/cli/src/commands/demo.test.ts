import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runCli } from '../test-util.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../../../..');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('openshell-interceptors demo', () => {
  it('replays the story end to end: outcomes, deciders, the audit trail, and a clean shutdown', async () => {
    const r = await runCli(['demo'], {});
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.stdout;
    // Four services, two on TCP and two on Unix sockets, each its own process.
    const services = [...out.matchAll(/^(naming|tenancy|quota|audit)\s+(\S+)\s+pid (\d+)/gm)];
    expect(services.map((m) => m[1])).toEqual(['naming', 'tenancy', 'quota', 'audit']);
    expect(services.map((m) => m[2]!.split(':')[0])).toEqual(['http', 'unix', 'unix', 'http']);
    // The story's rows: who decided and why.
    const row = (n: number) => out.split('\n').find((l) => l.startsWith(`${n} `)) ?? '';
    expect(row(1)).toMatch(
      /alice\s+CreateSandbox: creates a sandbox without a name\s+allowed\s+allowed, patched by naming, tenancy\s+naming set name=alice-[a-z0-9]{5}; tenancy set workspace=acme, labels=tenant=acme; quota 1\/2 in use/,
    );
    expect(row(2)).toMatch(/naming set name=notebook-gpu/);
    expect(row(3)).toMatch(
      /denied INVALID_ARGUMENT\s+naming \(validate\)\s+sandbox name "my_box" must be a DNS label .* for example "my-box"/,
    );
    expect(row(4)).toMatch(
      /denied RESOURCE_EXHAUSTED\s+quota \(validate\)\s+sandbox quota reached for alice@acme.example: 2 of 2/,
    );
    expect(row(6)).toMatch(
      /bob\s+DeleteSandbox: .*denied PERMISSION_DENIED\s+tenancy \(validate\)\s+workspace "acme" belongs to tenant "acme"/,
    );
    expect(row(8)).toMatch(/quota released acme\/notebook-gpu/);
    expect(row(9)).toMatch(/creates "my-box" again\s+allowed/);
    expect(row(10)).toMatch(/the audit service is stopped\s+stopped\s+-\s+SIGTERM; audit exited with code 0/);
    expect(row(11)).toMatch(/allowed .*audit failed open \(post_commit\): UNAVAILABLE/);
    expect(row(13)).toMatch(
      /denied PERMISSION_DENIED\s+gateway: quota failed closed\s+gateway interceptor 'quota' failed closed \(validate\): UNAVAILABLE/,
    );
    expect(row(14)).toMatch(/deletes ci-runner\s+allowed .*quota failed open \(validate\)/);
    // The audit trail holds the six commits made while the audit service ran.
    const trail = out.slice(out.indexOf('Audit trail'));
    expect(trail).toMatch(/6 lines of audit.log/);
    const lines = [...trail.matchAll(/^(\d)\s+\d\d:\d\d:\d\d\.\d{3}\s+(\S+)\s+(\w+)\s+(.+?)\s{2,}/gm)];
    expect(lines.map((m) => [m[1], m[2], m[3]])).toEqual([
      ['1', 'alice@acme.example', 'CreateSandbox'],
      ['2', 'alice@acme.example', 'CreateSandbox'],
      ['3', 'bob@globex.example', 'CreateSandbox'],
      ['4', 'bob@globex.example', 'ExposeService'],
      ['5', 'alice@acme.example', 'DeleteSandbox'],
      ['6', 'alice@acme.example', 'CreateSandbox'],
    ]);
    expect(out).toMatch(
      /Done in \d+\.\d s: 14 steps, every outcome as expected; 4 services and the gateway stopped cleanly\./,
    );
    // Nothing it started is left behind.
    for (const m of services) expect(alive(Number(m[3]))).toBe(false);
    const dir = /Gateway (\S+)\/gateway.toml/.exec(out)?.[1];
    expect(dir).toMatch(/openshell-demo-/);
    expect(existsSync(dir!)).toBe(false);
  }, 120_000);

  it('prints one JSON document with --json', async () => {
    const r = await runCli(['demo', '--json', '--keep'], {});
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      ok: boolean;
      dir: string;
      steps: { outcome: string; code?: string; asExpected: boolean }[];
      audit: unknown[];
      shutdown: Record<string, number>;
    };
    expect(doc.ok).toBe(true);
    expect(doc.steps.map((s) => s.code ?? s.outcome)).toEqual([
      'allowed',
      'allowed',
      'INVALID_ARGUMENT',
      'RESOURCE_EXHAUSTED',
      'allowed',
      'PERMISSION_DENIED',
      'allowed',
      'allowed',
      'allowed',
      'done',
      'allowed',
      'done',
      'PERMISSION_DENIED',
      'allowed',
    ]);
    expect(doc.audit).toHaveLength(6);
    expect(doc.shutdown).toEqual({ audit: 0, quota: 0, naming: 0, tenancy: 0 });
    // --keep leaves the config, the keys and the audit log for inspection.
    expect(existsSync(join(doc.dir, 'gateway.toml'))).toBe(true);
    expect(existsSync(join(doc.dir, 'audit.log'))).toBe(true);
    const { rm } = await import('node:fs/promises');
    await rm(doc.dir, { recursive: true, force: true });
  }, 120_000);

  it('refuses bad flags with exit 2', async () => {
    const r = await runCli(['demo', '--pace', 'slow'], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--pace must be a number of milliseconds/);
    expect((await runCli(['demo', 'extra'], {})).code).toBe(2);
  });

  it('stops everything it started on Ctrl-C (SIGINT) and exits 130', async () => {
    const child = spawn(
      process.execPath,
      [
        '--conditions=source',
        '--import',
        'tsx',
        join(root, 'packages/cli/src/bin.ts'),
        'demo',
        '--pace',
        '3000',
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('[1/14]')) resolve();
      });
      void exited.then((code) => reject(new Error(`demo exited early (${code}): ${err}`)));
    });
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(err).toContain('demo interrupted: every service and the gateway were stopped');
    const pids = [...out.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1]));
    expect(pids).toHaveLength(4);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    const dir = /gateway key in (\S+)/.exec(out)?.[1];
    expect(dir).toMatch(/openshell-demo-/);
    expect(existsSync(dir!)).toBe(false);
  }, 120_000);
});
