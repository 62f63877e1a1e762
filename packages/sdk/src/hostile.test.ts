// Hostile neighbours, interceptor side (docs/security.md): `serve` on a unix socket never
// takes over, follows or deletes something a neighbour planted, and the socket it creates
// keeps other local users out. Each refusal has its own message and leaves the planted
// thing untouched.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  chmod,
  chown,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { interceptorClient } from './__fixtures__/grpc.js';
import { interceptor } from './interceptor.js';
import { allow } from './results.js';
import { type RunningServer, serve } from './serve.js';

const silent = pino({ level: 'silent' });
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
const canDropToNobody = (() => {
  if (!isRoot) return false;
  try {
    execFileSync('setpriv', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

let dir: string;
const cleanups: (() => Promise<void> | void)[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sdk-hostile-'));
  await chmod(dir, 0o755);
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const svc = () => interceptor('svc', { logger: silent }).validate('CreateSandbox', () => allow());

async function start(path: string): Promise<RunningServer> {
  const s = await serve(svc(), { listen: `unix://${path}`, insecure: true, logger: silent });
  cleanups.push(() => s.close({ graceMs: 0 }));
  return s;
}

async function refusal(path: string): Promise<string> {
  const err = await start(path).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err === undefined) throw new Error(`serve took over ${path}; it should have refused`);
  return (err as Error).message;
}

/** Run a Node script as uid/gid `nobody`; resolves when it prints its first line. */
async function asNobody(script: string, args: string[]): Promise<{ child: ChildProcess; firstLine: string }> {
  const child = spawn(
    'setpriv',
    [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '-e', script, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const firstLine = await new Promise<string>((resolve, reject) => {
    let err = '';
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout?.once('data', (d: Buffer) => resolve(d.toString().trim()));
    child.once('exit', (code) => reject(new Error(`script as nobody exited with ${code}: ${err}`)));
  });
  return { child, firstLine };
}

const LISTEN =
  "require('net').createServer((s) => { s.on('error', () => {}); s.end('squatter'); }).listen(process.argv[1], () => console.log('up'))";

describe('hostile neighbours: serving on a unix socket', () => {
  it("refuses a path where another user's server is listening, and leaves the squatter alone", async (ctx) => {
    ctx.skip(!canDropToNobody, 'needs root and setpriv to act as another user (nobody)');
    const d = join(dir, 'squat');
    await mkdir(d);
    await chmod(d, 0o777);
    const path = join(d, 'svc.sock');
    await asNobody(LISTEN, [path]);
    expect((await lstat(path)).uid).toBe(NOBODY);
    expect(await refusal(path)).toBe(`unix socket ${path}: another process is listening on it`);
    // Still the squatter's socket, still answering: nothing was unlinked or rebound.
    expect((await lstat(path)).uid).toBe(NOBODY);
    const answer = await new Promise<string>((resolve) => {
      const s = connect({ path });
      let got = '';
      s.on('data', (b) => {
        got += b.toString();
      });
      s.on('error', (e) => resolve(`error: ${e.message}`));
      s.on('close', () => resolve(got));
    });
    expect(answer).toBe('squatter');
  });

  it('refuses a regular file at the path and never deletes it', async () => {
    const path = join(dir, 'planted-file');
    await writeFile(path, 'precious');
    expect(await refusal(path)).toBe(
      `unix socket ${path}: the path exists and is not a socket; refusing to remove it`,
    );
    expect(await readFile(path, 'utf8')).toBe('precious');
  });

  it('refuses a symlink planted at the path (it would redirect the bind or the unlink)', async () => {
    const target = join(dir, 'victim');
    await writeFile(target, 'do not touch');
    const path = join(dir, 'link.sock');
    await symlink(target, path);
    expect(await refusal(path)).toBe(
      `unix socket ${path}: the path is a symbolic link; refusing to follow it`,
    );
    expect(await readlink(path)).toBe(target);
    expect(await readFile(target, 'utf8')).toBe('do not touch');
  });

  it('refuses a path through a symlinked directory', async () => {
    const real = join(dir, 'real');
    await mkdir(real);
    const linked = join(dir, 'linked');
    await symlink(real, linked);
    const path = join(linked, 'svc.sock');
    expect(await refusal(path)).toBe(`unix socket ${path}: ${linked} is a symbolic link; use the real path`);
  });

  it('replaces a dead socket another user left behind, and the new socket is ours with mode 0600', async (ctx) => {
    ctx.skip(!canDropToNobody, 'needs root and setpriv to act as another user (nobody)');
    const d = join(dir, 'stale');
    await mkdir(d);
    await chmod(d, 0o777);
    const path = join(d, 'svc.sock');
    const { child } = await asNobody(LISTEN, [path]);
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await exited;
    expect((await lstat(path)).uid).toBe(NOBODY);
    const s = await start(path);
    const st = await lstat(path);
    expect(st.uid).toBe(process.getuid?.());
    expect(st.mode & 0o777).toBe(0o600);
    const c = interceptorClient(s.address);
    cleanups.push(() => c.close());
    expect((await c.describe()).name).toBe('svc');
  });

  it('keeps other local users out: the socket mode refuses their connect', async (ctx) => {
    ctx.skip(!canDropToNobody, 'needs root and setpriv to act as another user (nobody)');
    const d = join(dir, 'private');
    await mkdir(d, { mode: 0o755 });
    await chown(d, process.getuid?.() ?? 0, process.getgid?.() ?? 0);
    const path = join(d, 'svc.sock');
    await start(path);
    const { firstLine } = await asNobody(
      "const s = require('net').connect({ path: process.argv[1] }); s.on('connect', () => { console.log('connected'); process.exit(0); }); s.on('error', (e) => { console.log(e.code); process.exit(0); });",
      [path],
    );
    expect(firstLine).toBe('EACCES');
  });
});
