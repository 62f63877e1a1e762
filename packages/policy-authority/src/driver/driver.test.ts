import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { lstat, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SAMPLE_POLICY } from '../__fixtures__/policies.js';
import { generateSigningKey } from '../keys.js';
import { buildProjection, verifyProjection } from '../projection.js';
import { TrustStore } from '../trust-store.js';
import { DriverCallError, PolicyDriverConnection } from './client.js';
import { definePolicyDriver, PolicyDriverError, type RuntimeContext, UnknownHandleError } from './define.js';
import { parseDriverEndpoint } from './endpoint.js';
import { type RunningPolicyDriver, servePolicyDriver } from './server.js';

const silent = pino({ level: 'silent' });

function memoryDriver(opts: { signer?: Awaited<ReturnType<typeof generateSigningKey>> } = {}) {
  const handles = new Map<string, RuntimeContext>();
  const driver = definePolicyDriver({
    capabilities: {
      supportedSurfaces: ['openshell.sandbox.v1'],
      permitsMutation: false,
      driverVersion: 'test-1',
    },
    acquireHandle(ctx) {
      if (ctx.userSubject === 'blocked') throw new PolicyDriverError('PERMISSION_DENIED', 'user is blocked');
      if (ctx.userSubject === 'crash') throw new Error('secret internal detail');
      const h = randomUUID();
      handles.set(h, ctx);
      return h;
    },
    getProjection(handle, surfaceId) {
      const ctx = handles.get(handle);
      if (!ctx) throw new UnknownHandleError(handle);
      if (ctx.attributes.tenant_id === 'none') return { noVerifiedPolicy: 'no bundle for tenant none' };
      return buildProjection({
        surfaceId,
        policy: SAMPLE_POLICY,
        auditContext: { user: ctx.userSubject },
        ...(opts.signer ? { signer: opts.signer } : {}),
      });
    },
    releaseHandle(handle) {
      return handles.delete(handle);
    },
  });
  return { driver, handles };
}

let dir: string;
let running: RunningPolicyDriver[] = [];
let conns: PolicyDriverConnection[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pa-driver-'));
});
afterEach(async () => {
  for (const c of conns) c.close();
  await Promise.all(running.map((r) => r.close(100)));
  running = [];
  conns = [];
  await rm(dir, { recursive: true, force: true });
});

async function serve(driver: Parameters<typeof servePolicyDriver>[0], listen: string, extra = {}) {
  const r = await servePolicyDriver(driver, { listen, logger: silent, ...extra });
  running.push(r);
  return r;
}
function connect(address: string, opts = {}) {
  const c = new PolicyDriverConnection(address, opts);
  conns.push(c);
  return c;
}
async function callError(p: Promise<unknown>): Promise<DriverCallError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(DriverCallError);
    return err as DriverCallError;
  }
  throw new Error('expected the call to fail');
}

const ctx: RuntimeContext = { sandboxId: 'sb-1', userSubject: 'alice', attributes: { tenant_id: 'acme' } };

describe('servePolicyDriver over a unix socket', () => {
  it('serves the four RPCs and the projection verifies end to end', async () => {
    const key = await generateSigningKey('k1');
    const { driver, handles } = memoryDriver({ signer: key });
    const srv = await serve(driver, `unix://${join(dir, 'd.sock')}`);
    const c = connect(srv.address);
    expect(await c.getCapabilities()).toEqual({
      supportedSurfaces: ['openshell.sandbox.v1'],
      permitsMutation: false,
      driverVersion: 'test-1',
      features: [],
    });
    const h = await c.acquireHandle(ctx);
    expect(handles.get(h)).toEqual(ctx);
    const outcome = await c.getProjection(h, 'openshell.sandbox.v1');
    if ('noVerifiedPolicy' in outcome) throw new Error('expected a projection');
    const trust = TrustStore.fromKeys([{ keyId: 'k1', publicKey: key.publicKey }]);
    const v = verifyProjection(outcome, { trust });
    expect(v.policyJson).toEqual(SAMPLE_POLICY);
    expect(v.auditContext).toEqual({ user: 'alice' });
    expect(await c.releaseHandle(h)).toBe(true);
    expect(await c.releaseHandle(h)).toBe(false);
  });

  it('creates the socket with mode 0600 and removes it on close', async () => {
    const path = join(dir, 'm.sock');
    const srv = await serve(memoryDriver().driver, `unix://${path}`);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    await srv.close();
    await expect(stat(path)).rejects.toThrow(/ENOENT/);
  });

  it('replaces a stale socket file but refuses a live one or a regular file', async () => {
    const path = join(dir, 's.sock');
    // A socket file whose server died without cleaning up (SIGKILL leaves it behind).
    spawnSync(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    expect((await lstat(path)).isSocket()).toBe(true);
    const srv = await serve(memoryDriver().driver, `unix://${path}`);
    await expect(
      servePolicyDriver(memoryDriver().driver, { listen: `unix://${path}`, logger: silent }),
    ).rejects.toThrow(/in use by another server/);
    await srv.close();
    const file = join(dir, 'plain');
    await writeFile(file, 'x');
    await expect(
      servePolicyDriver(memoryDriver().driver, { listen: `unix://${file}`, logger: silent }),
    ).rejects.toThrow(/exists and is not a socket/);
    expect(await readFile(file, 'utf8')).toBe('x');
  });

  it('unknown handle on GetProjection is NOT_FOUND; release of an unknown handle is released=false', async () => {
    const srv = await serve(memoryDriver().driver, `unix://${join(dir, 'u.sock')}`);
    const c = connect(srv.address);
    const err = await callError(c.getProjection('nope', 'openshell.sandbox.v1'));
    expect(err.codeName).toBe('NOT_FOUND');
    expect(err.details).toContain("unknown handle 'nope'");
    expect(await c.releaseHandle('nope')).toBe(false);
    expect(await c.releaseHandle('')).toBe(false);
  });

  it('unsupported or empty surface and empty handle are INVALID_ARGUMENT', async () => {
    const srv = await serve(memoryDriver().driver, `unix://${join(dir, 'i.sock')}`);
    const c = connect(srv.address);
    const h = await c.acquireHandle(ctx);
    const e1 = await callError(c.getProjection(h, 'other.surface'));
    expect(e1.codeName).toBe('INVALID_ARGUMENT');
    expect(e1.details).toContain("surface 'other.surface' is not supported");
    expect((await callError(c.getProjection(h, ''))).codeName).toBe('INVALID_ARGUMENT');
    expect((await callError(c.getProjection('', 'openshell.sandbox.v1'))).codeName).toBe('INVALID_ARGUMENT');
  });

  it('no verified policy comes through as an outcome, not an error', async () => {
    const srv = await serve(memoryDriver().driver, `unix://${join(dir, 'n.sock')}`);
    const c = connect(srv.address);
    const h = await c.acquireHandle({ ...ctx, attributes: { tenant_id: 'none' } });
    expect(await c.getProjection(h, 'openshell.sandbox.v1')).toEqual({
      noVerifiedPolicy: 'no bundle for tenant none',
    });
  });

  it('PolicyDriverError keeps its code; other errors are INTERNAL without the detail', async () => {
    const srv = await serve(memoryDriver().driver, `unix://${join(dir, 'e.sock')}`);
    const c = connect(srv.address);
    const denied = await callError(c.acquireHandle({ ...ctx, userSubject: 'blocked' }));
    expect(denied.codeName).toBe('PERMISSION_DENIED');
    expect(denied.details).toBe('user is blocked');
    const crashed = await callError(c.acquireHandle({ ...ctx, userSubject: 'crash' }));
    expect(crashed.codeName).toBe('INTERNAL');
    expect(crashed.details).not.toContain('secret');
  });

  it('a projection for another surface than asked is refused by the SDK', async () => {
    const driver = definePolicyDriver({
      capabilities: {
        supportedSurfaces: ['openshell.sandbox.v1'],
        permitsMutation: true,
        driverVersion: 'x',
      },
      acquireHandle: () => 'h',
      getProjection: () => buildProjection({ surfaceId: 'elsewhere', policy: SAMPLE_POLICY }),
      releaseHandle: () => true,
    });
    const srv = await serve(driver, `unix://${join(dir, 'w.sock')}`);
    const err = await callError(connect(srv.address).getProjection('h', 'openshell.sandbox.v1'));
    expect(err.codeName).toBe('INTERNAL');
  });

  it('a call past its deadline fails with DEADLINE_EXCEEDED', async () => {
    let release: () => void = () => undefined;
    const driver = definePolicyDriver({
      capabilities: {
        supportedSurfaces: ['openshell.sandbox.v1'],
        permitsMutation: true,
        driverVersion: 'x',
      },
      acquireHandle: () => new Promise<string>((r) => (release = () => r('late'))),
      getProjection: () => ({ noVerifiedPolicy: '' }),
      releaseHandle: () => false,
    });
    const srv = await serve(driver, `unix://${join(dir, 'slow.sock')}`);
    const err = await callError(connect(srv.address, { deadlineMs: 200 }).acquireHandle(ctx));
    expect(err.codeName).toBe('DEADLINE_EXCEEDED');
    release();
  });

  it('a driver that is down is UNAVAILABLE', async () => {
    const err = await callError(
      connect(`unix://${join(dir, 'absent.sock')}`, { deadlineMs: 1000 }).getCapabilities(),
    );
    expect(['UNAVAILABLE', 'DEADLINE_EXCEEDED']).toContain(err.codeName);
  });
});

describe('servePolicyDriver over TCP', () => {
  it('serves plaintext on 127.0.0.1 with an ephemeral port', async () => {
    const srv = await serve(memoryDriver().driver, '127.0.0.1:0');
    expect(srv.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(srv.address).not.toBe('127.0.0.1:0');
    const c = connect(`http://${srv.address}`);
    expect((await c.getCapabilities()).driverVersion).toBe('test-1');
  });

  it('serves TLS and a client trusting the CA connects', async () => {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    );
    const pem = await readFile(cert);
    const srv = await serve(memoryDriver().driver, '127.0.0.1:0', {
      tls: { cert: pem, key: await readFile(key) },
    });
    const c = connect(`https://${srv.address}`, { tls: { ca: pem, serverName: 'localhost' } });
    expect((await c.getCapabilities()).supportedSurfaces).toEqual(['openshell.sandbox.v1']);
    // Without the CA the handshake fails.
    const untrusted = connect(`https://${srv.address}`, {
      deadlineMs: 1000,
      tls: { serverName: 'localhost' },
    });
    expect(['UNAVAILABLE', 'DEADLINE_EXCEEDED']).toContain(
      (await callError(untrusted.getCapabilities())).codeName,
    );
  });
});

describe('definePolicyDriver and endpoints', () => {
  it('refuses capabilities without surfaces', () => {
    expect(() =>
      definePolicyDriver({
        capabilities: { supportedSurfaces: [], permitsMutation: false, driverVersion: '' },
        acquireHandle: () => 'h',
        getProjection: () => ({ noVerifiedPolicy: '' }),
        releaseHandle: () => false,
      }),
    ).toThrow(/at least one surface/);
  });

  it('parses endpoints and names what is wrong', () => {
    expect(parseDriverEndpoint('unix:///run/d.sock')).toEqual({ kind: 'unix', path: '/run/d.sock' });
    expect(parseDriverEndpoint('localhost:5000')).toEqual({
      kind: 'tcp',
      host: 'localhost',
      port: 5000,
      tls: false,
    });
    expect(parseDriverEndpoint('https://[::1]:443')).toEqual({
      kind: 'tcp',
      host: '[::1]',
      port: 443,
      tls: true,
    });
    expect(() => parseDriverEndpoint('unix://relative.sock')).toThrow(/absolute path/);
    expect(() => parseDriverEndpoint('ftp://x:1')).toThrow(/scheme/);
    expect(() => parseDriverEndpoint('host')).toThrow(/host:port/);
    expect(() => parseDriverEndpoint('host:70000')).toThrow(/out of range/);
  });
});
