import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { spawnFixture } from './__fixtures__/child.js';
import { captureLogs, configFor, deferAfterEach } from './__fixtures__/harness.js';
import { type RunningFixture, startInterceptorServer } from './__fixtures__/interceptor-server.js';
import { GatewayStartupError } from './errors.js';
import { createGateway } from './gateway.js';
import { checkUnixSocket, SocketTrustError } from './socket-trust.js';

const MANIFEST = {
  name: 'ext',
  bindings: [{ id: 'b', rpc: 'openshell.v1.OpenShell/CreateSandbox', phases: ['validate' as const] }],
};

let dir: string;
const defer = deferAfterEach();

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gw-sock-'));
  const made = dir;
  defer(() => rm(made, { recursive: true, force: true }));
});

async function socketAt(path: string): Promise<RunningFixture> {
  const f = await startInterceptorServer({ manifest: MANIFEST }, { unixPath: path });
  defer(() => f.close());
  return f;
}

async function refusedWith(path: string, extra: Record<string, unknown> = {}): Promise<string> {
  const cfg = configFor([{ name: 'ext', grpc_endpoint: `unix://${path}`, describe_attempts: 1, ...extra }]);
  const err = await createGateway(cfg, { logger: captureLogs().logger }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(GatewayStartupError);
  return (err as Error).message;
}

describe('unix socket trust checks', () => {
  it('dials a socket that passes every check', async () => {
    const path = join(dir, 'ext.sock');
    const f = await socketAt(path);
    const gw = await createGateway(configFor([{ name: 'ext', grpc_endpoint: `unix://${path}` }]), {
      logger: captureLogs().logger,
    });
    const out = await gw.intercept({ method: 'CreateSandbox', request: { name: 'x' } });
    await gw.close();
    expect(out.outcome).toBe('allowed');
    expect(f.evaluations()).toHaveLength(1);
  });

  it('dials a socket owned by another process (a separate interceptor process)', async () => {
    const path = join(dir, 'child.sock');
    const child = await spawnFixture(
      { manifest: MANIFEST, rules: [{ result: { allowed: false, reason: 'from child' } }] },
      { unixPath: path },
    );
    defer(() => child.kill());
    const gw = await createGateway(configFor([{ name: 'ext', grpc_endpoint: child.endpoint }]), {
      logger: captureLogs().logger,
    });
    const out = await gw.intercept({ method: 'CreateSandbox', request: { name: 'x' } });
    await gw.close();
    expect(out.status).toEqual({ code: 'PERMISSION_DENIED', message: 'from child' });
  });

  it('refuses a symlink to a socket, naming the check', async () => {
    const real = join(dir, 'real.sock');
    await socketAt(real);
    const link = join(dir, 'link.sock');
    await symlink(real, link);
    expect(await refusedWith(link)).toBe(
      `interceptor 'ext': unix socket ${link}: path component ${link} is a symlink (check: symlink)`,
    );
  });

  it('refuses a symlinked directory anywhere in the path', async () => {
    const realDir = join(dir, 'real');
    await mkdir(realDir, { mode: 0o700 });
    await socketAt(join(realDir, 'ext.sock'));
    const linkDir = join(dir, 'linked');
    await symlink(realDir, linkDir);
    expect(await refusedWith(join(linkDir, 'ext.sock'))).toMatch(`path component ${linkDir} is a symlink`);
  });

  it('refuses a socket writable by others', async () => {
    const path = join(dir, 'ext.sock');
    await socketAt(path);
    await chmod(path, 0o777);
    expect(await refusedWith(path)).toBe(
      `interceptor 'ext': unix socket ${path}: writable by others (mode 0777) (check: socket-mode)`,
    );
  });

  it.each([
    [0o777, 'world'],
    [0o770, 'group'],
  ])('refuses a socket in a %s-writable directory (%s)', async (mode) => {
    const sub = join(dir, 'shared');
    await mkdir(sub);
    const path = join(sub, 'ext.sock');
    await socketAt(path);
    await chmod(sub, mode);
    expect(await refusedWith(path)).toMatch(
      `unix socket ${path}: directory ${sub} is group- or world-writable (mode 0${mode.toString(8)}) (check: directory-mode)`,
    );
  });

  it('refuses a path that is not a socket', async () => {
    const path = join(dir, 'plain-file');
    await writeFile(path, 'not a socket');
    expect(await refusedWith(path)).toMatch(`unix socket ${path}: not a socket (check: socket)`);
  });

  it('refuses a socket owned by an unexpected uid', async () => {
    const path = join(dir, 'ext.sock');
    await socketAt(path);
    const me = process.getuid?.() ?? 0;
    expect(await refusedWith(path, { unix_socket_uid: me + 4242 })).toMatch(
      `unix socket ${path}: owned by uid ${me}, expected uid ${me + 4242} (check: owner)`,
    );
  });

  it('retries a socket that does not exist yet, then refuses naming the missing path', async () => {
    const path = join(dir, 'later.sock');
    expect(await refusedWith(path, { describe_attempts: 2, describe_backoff: '1ms' })).toBe(
      `interceptor 'ext': Describe failed after 2 attempt(s): unix socket ${path}: ${path} does not exist`,
    );
  });

  it('refuses abstract names and relative paths without touching the filesystem', async () => {
    await expect(checkUnixSocket('@abstract')).rejects.toMatchObject({ check: 'absolute' });
    await expect(checkUnixSocket('relative.sock')).rejects.toBeInstanceOf(SocketTrustError);
  });
});
