import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../test-util.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const EXPECTED_FILES = [
  '.gitignore',
  'README.md',
  'gateway.toml',
  'package.json',
  'src/index.test.ts',
  'src/index.ts',
  'tests/owner-check.suite.yaml',
  'tsconfig.json',
  'vitest.config.ts',
];

/** Run a command; resolves with its exit code and output. */
function run(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; out: string }> {
  return new Promise((done) => {
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('VITEST') && k !== 'NODE_OPTIONS'),
    );
    const child = spawn(cmd, args, { cwd, env: { ...env, NO_COLOR: '1', CI: '1' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('close', (code) => done({ code, out }));
  });
}

describe('init outside a workspace', () => {
  let base: string;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'cli-init-'));
  });
  afterAll(() => rm(base, { recursive: true, force: true }));

  it('scaffolds a project on the published versions, rendering every template', async () => {
    const dir = join(base, 'Owner Check');
    const r = await runCli(['init', dir, '--name', 'owner-check', '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toEqual({
      dir,
      name: 'owner-check',
      packageName: 'owner-check',
      workspace: false,
      files: EXPECTED_FILES,
    });
    const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
    expect(pkg.dependencies).toEqual({ '@openshell-interceptors/sdk': '^0.1.0' });
    expect(pkg.devDependencies['@openshell-interceptors/testing']).toBe('^0.1.0');
    for (const f of EXPECTED_FILES) expect(await readFile(join(dir, f), 'utf8')).not.toContain('{{');
    expect(await readFile(join(dir, 'src/index.ts'), 'utf8')).toContain("interceptor('owner-check')");
    expect(await readFile(join(dir, 'vitest.config.ts'), 'utf8')).not.toContain('source');
  });

  it('derives the name from the directory and prints next steps', async () => {
    const r = await runCli(['init', 'My_Guard'], {}, base);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("created My_Guard: interceptor 'my-guard' (@openshell-interceptors/* ^0.1.0)");
    expect(r.stdout).toContain('npm install');
  });

  it('refuses a non-empty directory, a file, and a bad name (exit 2)', async () => {
    const full = join(base, 'full');
    await mkdir(full);
    await writeFile(join(full, 'keep.txt'), 'x');
    const r = await runCli(['init', full]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is not empty');
    expect(await readFile(join(full, 'keep.txt'), 'utf8')).toBe('x');
    expect((await runCli(['init', join(full, 'keep.txt')])).stderr).toContain('is not a directory');
    expect((await runCli(['init', join(base, 'x'), '--name', 'Bad Name'])).stderr).toContain(
      'must be lower-case',
    );
    expect((await runCli(['init'])).code).toBe(2);
  });
});

describe('init inside this workspace', () => {
  // Under packages/cli (ignored by git, not a pnpm workspace glob), removed afterwards.
  const dir = join(ROOT, 'packages/cli', `.tmp-init-${randomBytes(4).toString('hex')}`);
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('depends on workspace:* and its tests, typecheck and suite pass as created', {
    timeout: 240_000,
  }, async () => {
    const r = await runCli(['init', dir, '--name', 'owner-check', '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({
      workspace: true,
      packageName: '@openshell-interceptors/owner-check',
      files: EXPECTED_FILES,
    });
    const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
    expect(pkg.dependencies['@openshell-interceptors/sdk']).toBe('workspace:*');

    // What `pnpm install` would link for it.
    await mkdir(join(dir, 'node_modules/@openshell-interceptors'), { recursive: true });
    for (const p of ['sdk', 'testing', 'cli'])
      await symlink(join(ROOT, 'packages', p), join(dir, 'node_modules/@openshell-interceptors', p), 'dir');

    const tests = await run(process.execPath, [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run'], dir);
    expect(tests.out).toMatch(/Tests\s+8 passed \(8\)/);
    expect(tests.code).toBe(0);

    const types = await run(
      process.execPath,
      [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--noEmit'],
      dir,
    );
    expect(types.out).toBe('');
    expect(types.code).toBe(0);

    const suites = await runCli(['test', 'tests/owner-check.suite.yaml'], {}, dir);
    expect(suites.stdout).toContain('all cases passed');
    expect(suites.code).toBe(0);
    expect(existsSync(join(dir, '.gitignore'))).toBe(true);
  });
});
