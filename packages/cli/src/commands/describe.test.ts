import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gatewayLogger } from '@openshell-interceptors/gateway';
import { type RunningServer, serve } from '@openshell-interceptors/sdk';
import { createTestSigningKey, type TestSigningKey } from '@openshell-interceptors/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ownerLabel from '../__fixtures__/owner-label.js';
import { runCli } from '../test-util.js';

const AUDIENCE = 'urn:openshell:extension:interceptor:owner-label';
let key: TestSigningKey;
let server: RunningServer;
let insecure: RunningServer;

beforeAll(async () => {
  key = await createTestSigningKey('k1');
  const logger = gatewayLogger(new PassThrough(), 'silent');
  server = await serve(ownerLabel, {
    listen: '127.0.0.1:0',
    logger,
    auth: { publicKey: key.publicKey, audience: AUDIENCE },
  });
  insecure = await serve(ownerLabel, { listen: '127.0.0.1:0', logger, insecure: true });
});
afterAll(async () => {
  await server.close({ graceMs: 100 });
  await insecure.close({ graceMs: 100 });
  await key.cleanup();
});

const authFlags = () => ['--private-key', key.privateKeyPath, '--kid', 'k1', '--audience', AUDIENCE];

describe('describe', () => {
  it('prints the manifest as an aligned table', async () => {
    const r = await runCli(['describe', insecure.address]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`owner-label  http://${insecure.address}`);
    expect(r.stdout).toMatch(/expected_audience\s+urn:openshell:extension:interceptor:owner-label/);
    expect(r.stdout).toMatch(/BINDING\s+RPC\s+PHASES\s+FAILURE POLICY/);
    expect(r.stdout).toMatch(
      /create-sandbox\s+openshell\.v1\.OpenShell\/CreateSandbox\s+modify_operation, validate\s+\(none\)/,
    );
    expect(r.stdout).not.toContain('\u001b[');
  });

  it('--json prints the manifest as ProtoJSON plus phase names, with a gateway token', async () => {
    const r = await runCli(['describe', `http://${server.address}`, ...authFlags(), '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.endpoint).toBe(`http://${server.address}`);
    expect(doc.manifest).toMatchObject({
      name: 'owner-label',
      expectedAudience: AUDIENCE,
      bindings: [
        {
          id: 'create-sandbox',
          phases: ['GATEWAY_INTERCEPTOR_PHASE_MODIFY_OPERATION', 'GATEWAY_INTERCEPTOR_PHASE_VALIDATE'],
        },
      ],
    });
    expect(doc.bindings).toEqual([
      {
        id: 'create-sandbox',
        rpc: 'openshell.v1.OpenShell/CreateSandbox',
        phases: ['modify_operation', 'validate'],
        failurePolicy: '',
      },
    ]);
  });

  it('exits 1 when the service refuses (no token), with the status', async () => {
    const r = await runCli(['describe', server.address]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Describe failed: UNAUTHENTICATED');
    const j = await runCli(['describe', server.address, '--json']);
    expect(JSON.parse(j.stdout).error.code).toBe('UNAUTHENTICATED');
  });

  it('reaches a unix socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-describe-'));
    const sock = await serve(ownerLabel, {
      listen: `unix://${join(dir, 'owner.sock')}`,
      logger: gatewayLogger(new PassThrough(), 'silent'),
      insecure: true,
    });
    try {
      const r = await runCli(['describe', sock.address]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`owner-label  ${sock.address}`);
    } finally {
      await sock.close({ graceMs: 100 });
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('speaks https with --ca (the private CA replaces the platform roots)', async () => {
    // The SDK's test certificates: a private CA and a server certificate for localhost.
    const tls = fileURLToPath(new URL('../../../sdk/src/__fixtures__/tls/', import.meta.url));
    const secure = await serve(ownerLabel, {
      listen: '127.0.0.1:0',
      logger: gatewayLogger(new PassThrough(), 'silent'),
      insecure: true,
      tls: { cert: readFileSync(`${tls}server.crt`), key: readFileSync(`${tls}server.key`) },
    });
    try {
      const endpoint = `https://localhost:${secure.port}`;
      const r = await runCli(['describe', endpoint, '--ca', `${tls}ca.crt`, '--json']);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).manifest.name).toBe('owner-label');
      const wrongCa = await runCli(['describe', endpoint, '--ca', `${tls}other-ca.crt`, '--timeout', '2s']);
      expect(wrongCa.code).toBe(2);
      expect((await runCli(['describe', insecure.address, '--ca', `${tls}ca.crt`])).stderr).toContain(
        'only used with an https:// endpoint',
      );
    } finally {
      await secure.close({ graceMs: 100 });
    }
  });

  it('exits 2 on usage errors and an unreachable endpoint', async () => {
    expect((await runCli(['describe'])).code).toBe(2);
    expect((await runCli(['describe', 'not an endpoint'])).stderr).toContain('expected host:port');
    const noAud = await runCli(['describe', server.address, '--private-key', key.privateKeyPath]);
    expect(noAud.code).toBe(2);
    expect(noAud.stderr).toContain('--audience is required with --private-key');
    const down = await runCli(['describe', '127.0.0.1:1', '--timeout', '2s']);
    expect(down.code).toBe(2);
    expect(down.stderr).toContain('Describe failed: UNAVAILABLE');
  });
});
