import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  isNoVerifiedPolicy,
  PolicyDriverConnection,
  runDriverConformance,
  verifyProjection,
} from '@openshell-interceptors/policy-authority';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NULL_POLICY } from './index.js';
import { type DriverProcess, spawnDriver } from './process.test-util.js';

const MAIN = new URL('./main.ts', import.meta.url);
let dir: string;
let proc: DriverProcess | undefined;
let conn: PolicyDriverConnection | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'null-driver-'));
});
afterEach(async () => {
  conn?.close();
  await proc?.stop('SIGKILL');
  proc = undefined;
  conn = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function start(...extra: string[]) {
  const sock = join(dir, 'null.sock');
  proc = spawnDriver(MAIN, ['--listen', `unix://${sock}`, ...extra]);
  await proc.waitForLog((l) => l.msg === 'policy driver listening', 'listening');
  conn = new PolicyDriverConnection(`unix://${sock}`, { deadlineMs: 5000 });
  return { sock, conn };
}

describe('null driver (real process)', () => {
  it('passes the conformance run', async () => {
    const { conn } = await start();
    const report = await runDriverConformance(conn);
    expect(report.findings.filter((f) => f.status === 'fail')).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it('projects one fixed unsigned policy and does not permit mutation by default', async () => {
    const { conn } = await start();
    expect((await conn.getCapabilities()).permitsMutation).toBe(false);
    const a = await conn.getProjection(
      await conn.acquireHandle({ sandboxId: 'a', userSubject: 'u', attributes: {} }),
      'openshell.sandbox.v1',
    );
    const b = await conn.getProjection(
      await conn.acquireHandle({ sandboxId: 'b', userSubject: 'v', attributes: {} }),
      'openshell.sandbox.v1',
    );
    if (isNoVerifiedPolicy(a) || isNoVerifiedPolicy(b)) throw new Error('expected projections');
    expect(a.signature.length).toBe(0);
    expect(a.policyDigest).toBe(b.policyDigest);
    expect(verifyProjection(a).policyJson).toEqual(NULL_POLICY);
  });

  it('--permits-mutation is advertised', async () => {
    const { conn } = await start('--permits-mutation');
    expect((await conn.getCapabilities()).permitsMutation).toBe(true);
  });

  it('shuts down cleanly on SIGTERM and removes its socket', async () => {
    const { sock } = await start();
    expect((await stat(sock)).isSocket()).toBe(true);
    expect(await proc!.stop('SIGTERM')).toBe(0);
    await expect(stat(sock)).rejects.toThrow(/ENOENT/);
  });

  it('exits 2 without --listen', async () => {
    proc = spawnDriver(MAIN, []);
    expect(await proc.stop('SIGCONT')).toBe(2);
    expect(proc.stderr()).toContain('--listen is required');
  });
});
