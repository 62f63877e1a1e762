import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { main } from '../main.js';
import { runCli } from '../test-util.js';

const FIXTURES = fileURLToPath(new URL('../__fixtures__/suites/', import.meta.url));
const suite = (name: string) => `${FIXTURES}${name}`;

describe('test', () => {
  it('runs a suite: a line per case, a summary table, exit 0', async () => {
    const r = await runCli(['test', 'pass.suite.yaml'], {}, FIXTURES);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^owner label pass\.suite\.yaml$/m);
    expect(r.stdout).toMatch(/^ {2}PASS fills the owner \(CreateSandbox, \d+ms\)$/m);
    expect(r.stdout).toMatch(/^ {2}PASS refuses anonymous callers/m);
    expect(r.stdout).toMatch(/SUITES\s+CASES\s+PASSED\s+FAILED\s+ERRORS\n[- ]+\n1\s+2\s+2\s+0\s+0/);
    expect(r.stdout).toContain('all cases passed');
    expect(r.stdout).not.toContain('\r');
  });

  it('reports each failed expectation and the evaluations, exit 1', async () => {
    const r = await runCli(['test', suite('pass.suite.yaml'), suite('fail.suite.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAIL expects the wrong owner/);
    expect(r.stdout).toContain('✗ patched /labels/owner: expected "dave", got "carol"');
    expect(r.stdout).toMatch(/modify_operation\s+owner-label\/create-sandbox: allow, 1 patch\(es\) applied/);
    expect(r.stdout).toMatch(/PASS passes/);
    expect(r.stdout).toMatch(/2\s+4\s+3\s+1\s+0/);
  });

  it('--json prints one document with every suite and case', async () => {
    const r = await runCli(['test', suite('pass.suite.yaml'), suite('fail.suite.yaml'), '--json']);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout);
    expect(doc.passed).toBe(false);
    expect(doc.summary).toEqual({ suites: 2, cases: 4, passed: 3, failed: 1, errors: 0 });
    expect(doc.suites[0]).toMatchObject({ name: 'owner label', passed: true, error: null });
    expect(doc.suites[1].cases[0]).toMatchObject({
      name: 'expects the wrong owner',
      rpc: 'CreateSandbox',
      passed: false,
      outcome: 'allowed',
      status: null,
      failures: ['patched /labels/owner: expected "dave", got "carol"'],
    });
  });

  it('refuses an invalid suite before running anything, naming the file and key (exit 2)', async () => {
    const r = await runCli(['test', suite('pass.suite.yaml'), suite('invalid.suite.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/invalid\.suite\.yaml: cases\[0\]\.expect\.anotations: unknown key/);
    const j = await runCli(['test', suite('invalid.suite.yaml'), '--json']);
    expect(JSON.parse(j.stdout).suites[0].error).toContain('anotations');
  });

  it('a suite whose module cannot load is an error (exit 2), the others still run', async () => {
    const r = await runCli(['test', suite('missing-module.suite.yaml'), suite('pass.suite.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/ERROR .*interceptors\[0\]\.module: cannot load/);
    expect(r.stdout).toMatch(/PASS fills the owner/);
  });

  it('shows a live progress line per case on a terminal', async () => {
    const stdout = Object.assign(new PassThrough(), { isTTY: true });
    let out = '';
    stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const code = await main(['test', suite('pass.suite.yaml')], {
      stdout,
      stderr: new PassThrough(),
      env: {},
      cwd: FIXTURES,
    });
    expect(code).toBe(0);
    expect(out).toContain('RUN ');
    expect(out).toContain('\r\u001b[K');
    expect(out).toContain('\u001b[32mPASS\u001b[0m');
  });

  it('needs at least one suite', async () => {
    const r = await runCli(['test']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('give at least one suite file');
  });
});
