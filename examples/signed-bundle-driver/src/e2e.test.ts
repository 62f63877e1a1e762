// End to end, as issue 7 asks: the signed-bundle driver and the enforcing
// interceptor (`openshell-interceptors policy serve`) run as real processes; the
// gateway runtime calls the interceptor over a unix socket for every API call.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGateway, type Gateway, parseGatewayConfig } from '@openshell-interceptors/gateway';
import {
  createBundle,
  encodePolicy,
  generateSigningKey,
  type PolicyBundle,
  type SigningKeyPair,
  writeBundleFile,
} from '@openshell-interceptors/policy-authority';
import type { JsonObject, SandboxPolicyJson } from '@openshell-interceptors/protocol';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DriverProcess, spawnDriver } from './process.test-util.js';

const DRIVER_MAIN = new URL('./main.ts', import.meta.url);
const CLI_BIN = new URL('../../../packages/cli/src/bin.ts', import.meta.url);

const DEFAULT_POLICY: SandboxPolicyJson = {
  version: 1,
  filesystem: { readOnly: ['/usr'], readWrite: ['/tmp'] },
};
const BOB_POLICY: SandboxPolicyJson = {
  version: 2,
  filesystem: { readOnly: ['/usr'] },
  networkPolicies: { pypi: { name: 'pypi', endpoints: [{ host: 'pypi.org', port: 443 }] } },
};
const WIDE_OPEN: SandboxPolicyJson = { version: 1, filesystem: { readWrite: ['/'] } };

const user = (subject: string) => ({ kind: 'user', subject, provider: 'oidc' });

let dir: string;
let oldKey: SigningKeyPair;
let newKey: SigningKeyPair;
let driver: DriverProcess;
let authority: DriverProcess;
let gateway: Gateway;
let paths: Record<
  'bundles' | 'driverState' | 'authorityState' | 'trust' | 'driverSock' | 'authoritySock',
  string
>;
/** The gateway's system of record, as the commits see it. */
const sandboxes = new Map<string, JsonObject>();
const commits: string[] = [];

function startDriver(): Promise<DriverProcess> {
  const p = spawnDriver(DRIVER_MAIN, [
    '--listen',
    `unix://${paths.driverSock}`,
    '--bundles',
    paths.bundles,
    '--state',
    paths.driverState,
  ]);
  return p.waitForLog((l) => l.msg === 'policy driver listening', 'listening').then(() => p);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'policy-e2e-'));
  paths = {
    bundles: join(dir, 'bundles'),
    driverState: join(dir, 'driver-state'),
    authorityState: join(dir, 'authority-state'),
    trust: join(dir, 'trust'),
    driverSock: join(dir, 'driver.sock'),
    authoritySock: join(dir, 'authority.sock'),
  };
  await mkdir(paths.bundles);
  await mkdir(paths.trust);
  // Rotation: the trust store holds last year's key and this year's.
  oldKey = await generateSigningKey('authority-2024');
  newKey = await generateSigningKey('authority-2025');
  for (const k of [oldKey, newKey]) {
    await writeFile(join(paths.trust, `${k.keyId}.pem`), k.publicKey.export({ type: 'spki', format: 'pem' }));
  }
  await writeBundleFile(
    join(paths.bundles, 'default.yaml'),
    createBundle({
      policy: DEFAULT_POLICY,
      auditContext: { bundle: 'default', ticket: 'SEC-100' },
      signer: oldKey,
    }),
  );
  await writeBundleFile(
    join(paths.bundles, 'user-bob.yaml'),
    createBundle({ policy: BOB_POLICY, auditContext: { bundle: 'user-bob' }, signer: newKey }),
  );
  await writeBundleFile(join(paths.bundles, 'user-mallory.yaml'), createBundle({ policy: WIDE_OPEN }));
  // Signed, then its body swapped for a wider policy (the readable copy edited to match).
  const signed = createBundle({ policy: DEFAULT_POLICY, signer: newKey });
  const tampered: PolicyBundle = {
    ...signed,
    policy: WIDE_OPEN,
    body: encodePolicy(WIDE_OPEN).toString('base64'),
  };
  await writeBundleFile(join(paths.bundles, 'user-eve.yaml'), tampered);

  // The driver serves bundles as they are (no --trust): refusing them is the enforcing side's job.
  driver = await startDriver();
  authority = spawnDriver(CLI_BIN, [
    'policy',
    'serve',
    '--driver',
    `unix://${paths.driverSock}`,
    '--listen',
    `unix://${paths.authoritySock}`,
    '--trust',
    paths.trust,
    '--state',
    paths.authorityState,
    '--driver-deadline',
    '1000',
    '--insecure',
  ]);
  await authority.waitForLog((l) => String(l.msg).startsWith('listening on'), 'listening');

  const toml = [
    '[openshell.gateway]',
    '',
    '[[openshell.gateway.interceptors]]',
    'name = "policy-authority"',
    `grpc_endpoint = "unix://${paths.authoritySock}"`,
    'allow_insecure_transport = true',
    'timeout = "5s"',
  ].join('\n');
  gateway = await createGateway(parseGatewayConfig(toml, { source: 'e2e.toml' }), {
    logger: pino({ level: 'silent' }),
  });
});

afterAll(async () => {
  await gateway?.close();
  await authority?.stop('SIGTERM');
  await driver?.stop('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

function createSandbox(name: string, subject: string, policy: SandboxPolicyJson = WIDE_OPEN) {
  return gateway.intercept({
    method: 'CreateSandbox',
    principal: user(subject),
    request: { name, spec: { template: { image: 'ubuntu:24.04' }, policy: policy as JsonObject } },
    commit: async (req) => {
      commits.push(`create ${name}`);
      const sandbox = {
        metadata: { id: `id-${name}`, name, annotations: req.annotations ?? {} },
        spec: req.spec ?? {},
      } as JsonObject;
      sandboxes.set(name, sandbox);
      return { sandbox };
    },
  });
}

function deleteSandbox(name: string, subject: string) {
  return gateway.intercept({
    method: 'DeleteSandbox',
    principal: user(subject),
    request: { name },
    commit: async () => {
      commits.push(`delete ${name}`);
      return { deleted: sandboxes.delete(name) };
    },
  });
}

function annotationsOf(name: string): Record<string, string> {
  const sandbox = sandboxes.get(name);
  if (!sandbox) throw new Error(`no sandbox '${name}' was committed`);
  return (sandbox.metadata as { annotations: Record<string, string> }).annotations;
}

async function driverHandles(): Promise<string[]> {
  return (await readdir(paths.driverState)).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5));
}

describe('policy authority end to end (driver and interceptor as processes, behind the gateway runtime)', () => {
  it('stamps a valid bundle as issued, replacing the caller policy, and records its annotations', async () => {
    const out = await createSandbox('alice-1', 'alice');
    expect(out.outcome, JSON.stringify(out.status)).toBe('allowed');
    const stored = sandboxes.get('alice-1')!;
    expect((stored.spec as JsonObject).policy).toEqual(DEFAULT_POLICY);
    const ann = annotationsOf('alice-1');
    expect(ann['policy.openshell.io/signing-key-id']).toBe('authority-2024');
    expect(ann['policy.openshell.io/signature']).toBe('verified');
    expect(ann['policy.openshell.io/digest']).toMatch(/^[0-9a-f]{64}$/);
    expect(ann['policy.openshell.io/audit.ticket']).toBe('SEC-100');
    expect(await driverHandles()).toContain(ann['policy.openshell.io/handle']);
  });

  it('a bundle signed with the rotated-in key verifies too', async () => {
    const out = await createSandbox('bob-1', 'bob');
    expect(out.outcome).toBe('allowed');
    expect((sandboxes.get('bob-1')!.spec as JsonObject).policy).toEqual(BOB_POLICY);
    expect(annotationsOf('bob-1')['policy.openshell.io/signing-key-id']).toBe('authority-2025');
  });

  it('refuses an unsigned bundle and a tampered one before anything is committed', async () => {
    const before = commits.length;
    const unsigned = await createSandbox('mallory-1', 'mallory');
    expect(unsigned.outcome).toBe('denied');
    expect(unsigned.status?.code).toBe('PERMISSION_DENIED');
    expect(unsigned.status?.message).toContain('UNSIGNED_PROJECTION');
    const tampered = await createSandbox('eve-1', 'eve');
    expect(tampered.outcome).toBe('denied');
    expect(tampered.status?.message).toContain('DIGEST_MISMATCH');
    expect(commits.length).toBe(before);
  });

  it('refuses policy updates and draft-chunk approvals; other updates pass', async () => {
    const update = await gateway.intercept({
      method: 'UpdateConfig',
      principal: user('alice'),
      request: { name: 'alice-1', policy: WIDE_OPEN as JsonObject },
      commit: async () => ({}),
    });
    expect(update.outcome).toBe('denied');
    expect(update.status?.code).toBe('PERMISSION_DENIED');
    expect(update.status?.message).toContain('managed by the policy driver');
    const approve = await gateway.intercept({
      method: 'ApproveAllDraftChunks',
      principal: user('alice'),
      request: { name: 'alice-1' },
      commit: async () => ({}),
    });
    expect(approve.status?.code).toBe('PERMISSION_DENIED');
    const setting = await gateway.intercept({
      method: 'UpdateConfig',
      principal: user('alice'),
      request: { name: 'alice-1', settingKey: 'log_level', settingValue: { stringValue: 'debug' } },
      commit: async () => ({}),
    });
    expect(setting.outcome).toBe('allowed');
  });

  it('a driver restart keeps handles, and deleting a sandbox releases its handle', async () => {
    const aliceHandle = annotationsOf('alice-1')['policy.openshell.io/handle']!;
    const bobHandle = annotationsOf('bob-1')['policy.openshell.io/handle']!;
    expect(await driver.stop('SIGKILL')).toBe('SIGKILL');
    driver = await startDriver();
    expect(await driverHandles()).toEqual(expect.arrayContaining([aliceHandle, bobHandle]));

    const out = await deleteSandbox('alice-1', 'alice');
    expect(out.outcome).toBe('allowed');
    expect(sandboxes.has('alice-1')).toBe(false);
    // Released right away, or by the authority's retry while its channel reconnects.
    await expect.poll(driverHandles, { timeout: 20_000, interval: 200 }).not.toContain(aliceHandle);
    expect(await driverHandles()).toContain(bobHandle);
    expect(existsSync(paths.authorityState)).toBe(true);
  });

  it('with the driver down new sandboxes fail closed while deletes and other calls go on', async () => {
    await driver.stop('SIGKILL');
    const before = commits.length;
    const out = await createSandbox('carol-1', 'carol');
    expect(out.outcome).toBe('denied');
    expect(out.status?.code).toBe('UNAVAILABLE');
    expect(out.status?.message).toContain('policy driver is unavailable');
    expect(commits.length).toBe(before);
    const bobHandle = annotationsOf('bob-1')['policy.openshell.io/handle']!;
    const del = await deleteSandbox('bob-1', 'bob');
    expect(del.outcome, JSON.stringify(del.status)).toBe('allowed');
    expect(commits.at(-1)).toBe('delete bob-1');
    driver = await startDriver();
    // The authority's channel reconnects with a backoff of up to a second after the restart,
    // so new sandboxes are admitted again within a bounded time, not necessarily at once.
    await expect
      .poll(async () => (await createSandbox('carol-2', 'carol')).outcome, { timeout: 15_000, interval: 300 })
      .toBe('allowed');
    // The release that found the driver down is retried once it is back.
    await expect.poll(driverHandles, { timeout: 20_000, interval: 250 }).not.toContain(bobHandle);
  });

  it('the interceptor shuts down cleanly on SIGTERM', async () => {
    expect(await authority.stop('SIGTERM')).toBe(0);
    expect(existsSync(paths.authoritySock)).toBe(false);
  });
});
