import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createBundle,
  DriverCallError,
  generateSigningKey,
  isNoVerifiedPolicy,
  PolicyDriverConnection,
  type RuntimeContext,
  runDriverConformance,
  type SigningKeyPair,
  TrustStore,
  verifyProjection,
  writeBundleFile,
} from '@openshell-interceptors/policy-authority';
import type { SandboxPolicyJson } from '@openshell-interceptors/protocol';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type DriverProcess, spawnDriver } from './process.test-util.js';

const MAIN = new URL('./main.ts', import.meta.url);
const SURFACE = 'openshell.sandbox.v1';

const policy = (version: number): SandboxPolicyJson => ({
  version,
  filesystem: { readOnly: [`/v${version}`] },
});
const ctx = (user: string, tenant?: string, sandbox = `sb-${user}`): RuntimeContext => ({
  sandboxId: sandbox,
  userSubject: user,
  attributes: tenant ? { tenant_id: tenant } : {},
});

let key: SigningKeyPair;
let trust: TrustStore;
let dir: string;
let paths: { bundles: string; state: string; trust: string; sock: string };
let procs: DriverProcess[] = [];
let conns: PolicyDriverConnection[] = [];

beforeAll(async () => {
  key = await generateSigningKey('authority-2025');
  trust = TrustStore.fromKeys([{ keyId: key.keyId, publicKey: key.publicKey }]);
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bundle-driver-'));
  paths = {
    bundles: join(dir, 'bundles'),
    state: join(dir, 'state'),
    trust: join(dir, 'trust'),
    sock: join(dir, 'd.sock'),
  };
  await mkdir(paths.bundles);
  await mkdir(paths.trust);
  await writeFile(
    join(paths.trust, `${key.keyId}.pem`),
    key.publicKey.export({ type: 'spki', format: 'pem' }),
  );
  await bundle('default', 1);
  await bundle('tenant-acme', 2);
  await bundle('user-bob', 3);
});
afterEach(async () => {
  for (const c of conns) c.close();
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  procs = [];
  conns = [];
  await rm(dir, { recursive: true, force: true });
});

async function bundle(name: string, version: number, signed = true) {
  await writeBundleFile(
    join(paths.bundles, `${name}.yaml`),
    createBundle({
      policy: policy(version),
      auditContext: { bundle: name },
      ...(signed ? { signer: key } : {}),
    }),
  );
}

async function start(...extra: string[]) {
  const p = spawnDriver(MAIN, [
    '--listen',
    `unix://${paths.sock}`,
    '--bundles',
    paths.bundles,
    '--state',
    paths.state,
    '--debounce-ms',
    '50',
    ...extra,
  ]);
  procs.push(p);
  await p.waitForLog((l) => l.msg === 'policy driver listening', 'listening');
  const conn = new PolicyDriverConnection(`unix://${paths.sock}`, { deadlineMs: 5000 });
  conns.push(conn);
  return { p, conn };
}

async function projected(conn: PolicyDriverConnection, handle: string) {
  const o = await conn.getProjection(handle, SURFACE);
  if (isNoVerifiedPolicy(o)) throw new Error(`no verified policy: ${o.noVerifiedPolicy}`);
  return verifyProjection(o, { trust });
}

/** The next log line with `msg`, logged after this call. */
function nextLog(p: DriverProcess, msg: string) {
  const mark = p.logs.length;
  return p.waitForLog((l) => p.logs.indexOf(l) >= mark && l.msg === msg, msg);
}

describe('signed-bundle driver (real process)', () => {
  it('maps tenant, then user, then default, and every projection verifies against the trust store', async () => {
    const { conn } = await start('--trust', paths.trust);
    const acme = await projected(conn, await conn.acquireHandle(ctx('bob', 'acme')));
    expect(acme.policyJson).toEqual(policy(2));
    expect(acme.auditContext).toEqual({ bundle: 'tenant-acme' });
    expect(acme.signingKeyId).toBe('authority-2025');
    expect((await projected(conn, await conn.acquireHandle(ctx('bob', 'globex')))).policyJson).toEqual(
      policy(3),
    );
    expect((await projected(conn, await conn.acquireHandle(ctx('carol')))).policyJson).toEqual(policy(1));
  });

  it('passes the conformance run with the trust store and advertises signed projections', async () => {
    const { conn } = await start('--trust', paths.trust);
    const report = await runDriverConformance(conn, { trust });
    expect(report.findings.filter((f) => f.status !== 'pass')).toEqual([]);
    expect((await conn.getCapabilities()).features).toEqual([
      'signed-projections',
      'persistent-handles',
      'bundle-reload',
    ]);
  });

  it('answers no verified policy when no bundle matches', async () => {
    await rm(join(paths.bundles, 'default.yaml'));
    const { conn } = await start();
    const h = await conn.acquireHandle(ctx('dave', 'initech'));
    expect(await conn.getProjection(h, SURFACE)).toEqual({
      noVerifiedPolicy: "no bundle for tenant 'initech', user 'dave' and no default bundle",
    });
  });

  it('reloads on change, and a failed reload keeps the last good set', async () => {
    const { p, conn } = await start();
    const h = await conn.acquireHandle(ctx('bob', 'acme'));
    expect((await projected(conn, h)).policyJson).toEqual(policy(2));

    let reloaded = nextLog(p, 'bundles reloaded');
    await bundle('tenant-acme', 5);
    await reloaded;
    expect((await projected(conn, h)).policyJson).toEqual(policy(5));

    const failed = nextLog(p, 'bundle reload failed; keeping the last good set');
    await writeFile(join(paths.bundles, 'tenant-acme.yaml'), 'format: [broken\n');
    const line = await failed;
    expect(JSON.stringify(line.problems)).toContain('tenant-acme.yaml');
    expect((await projected(conn, h)).policyJson).toEqual(policy(5));

    reloaded = nextLog(p, 'bundles reloaded');
    await bundle('tenant-acme', 6);
    await reloaded;
    expect((await projected(conn, h)).policyJson).toEqual(policy(6));
  });

  it('a crash and restart keeps every handle; released handles stay released', async () => {
    const first = await start();
    const kept = await first.conn.acquireHandle(ctx('bob', 'acme'));
    const other = await first.conn.acquireHandle(ctx('carol'));
    const gone = await first.conn.acquireHandle(ctx('erin'));
    expect(await first.conn.releaseHandle(gone)).toBe(true);
    const before = (await projected(first.conn, kept)).policyDigest;
    expect(await first.p.stop('SIGKILL')).toBe('SIGKILL');
    expect((await readdir(paths.state)).sort()).toEqual([`${kept}.json`, `${other}.json`].sort());

    const second = await start();
    expect((await projected(second.conn, kept)).policyDigest).toBe(before);
    expect((await projected(second.conn, other)).policyJson).toEqual(policy(1));
    await expect(second.conn.getProjection(gone, SURFACE)).rejects.toMatchObject({ codeName: 'NOT_FOUND' });
    expect(await second.conn.releaseHandle(kept)).toBe(true);
    expect(await second.conn.releaseHandle(kept)).toBe(false);
    await expect(second.conn.getProjection(kept, SURFACE)).rejects.toBeInstanceOf(DriverCallError);
  });

  it('SIGTERM shuts down cleanly', async () => {
    const { p } = await start();
    expect(await p.stop('SIGTERM')).toBe(0);
    expect(p.logs.some((l) => l.msg === 'stopped')).toBe(true);
  });

  it('refuses to start when the bundles do not load, naming the file and the failure', async () => {
    await bundle('user-mallory', 9, false);
    const p = spawnDriver(MAIN, [
      '--listen',
      `unix://${paths.sock}`,
      '--bundles',
      paths.bundles,
      '--state',
      paths.state,
      '--trust',
      paths.trust,
    ]);
    procs.push(p);
    expect(await p.stop('SIGCONT')).toBe(2);
    expect(p.stderr()).toContain('user-mallory.yaml');
    expect(p.stderr()).toContain('UNSIGNED_PROJECTION');
  });

  it('exits 2 when a required flag is missing', async () => {
    const p = spawnDriver(MAIN, ['--listen', `unix://${paths.sock}`]);
    procs.push(p);
    expect(await p.stop('SIGCONT')).toBe(2);
    expect(p.stderr()).toContain('--bundles is required');
  });
});
