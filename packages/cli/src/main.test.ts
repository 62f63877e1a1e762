import { describe, expect, it } from 'vitest';
import { runCli } from './test-util.js';

describe('openshell-interceptors', () => {
  it('lists commands on --help and exits 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('routes');
  });

  it('exits 2 with the command list when no command is given', async () => {
    const r = await runCli([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage:');
  });

  it('exits 2 and names an unknown command', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
  });

  it('exits 2 on an unknown flag, with the usage', async () => {
    const r = await runCli(['routes', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: openshell-interceptors routes');
  });

  it('routes --json prints the 25 RPCs as one JSON array', async () => {
    const r = await runCli(['routes', '--json']);
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout) as { rpc: string }[];
    expect(rows).toHaveLength(25);
    expect(rows[0]).toEqual({
      rpc: 'openshell.v1.OpenShell/CreateSandbox',
      request: 'openshell.v1.CreateSandboxRequest',
      response: 'openshell.v1.SandboxResponse',
    });
  });

  it('routes prints an aligned table without colour when not on a TTY', async () => {
    const r = await runCli(['routes']);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(27);
    expect(lines[0]).toMatch(/^RPC\s+REQUEST\s+RESPONSE$/);
    expect(r.stdout).not.toContain('\u001b[');
    const col = lines[0]!.indexOf('REQUEST');
    expect(lines.slice(2).every((l) => l[col - 1] === ' ' && l[col] !== ' ')).toBe(true);
  });
});
