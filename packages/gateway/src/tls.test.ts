import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogs, configFor } from './__fixtures__/harness.js';
import { type RunningFixture, startInterceptorServer } from './__fixtures__/interceptor-server.js';
import { GatewayStartupError } from './errors.js';
import { createGateway } from './gateway.js';

// A private CA and a server certificate for "localhost", made with the openssl CLI.
function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const MANIFEST = {
  name: 'ext',
  bindings: [{ id: 'b', rpc: 'openshell.v1.OpenShell/CreateSandbox', phases: ['validate' as const] }],
};

describe.skipIf(!hasOpenssl())('https endpoints', () => {
  let dir: string;
  let fixture: RunningFixture;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gw-tls-'));
    const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    run(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      '/CN=test-ca',
    );
    run(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
      '-subj',
      '/CN=localhost',
    );
    await writeFile(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost\n');
    run(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.pem',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
    );
    fixture = await startInterceptorServer(
      { manifest: MANIFEST },
      {
        tls: { cert: await readFile(join(dir, 'server.pem')), key: await readFile(join(dir, 'server.key')) },
      },
    );
  });
  afterAll(async () => {
    await fixture?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('verifies the server against tls_ca_cert_path', async () => {
    const gw = await createGateway(
      configFor([{ name: 'ext', grpc_endpoint: fixture.endpoint, tls_ca_cert_path: join(dir, 'ca.pem') }]),
      { logger: captureLogs().logger },
    );
    const out = await gw.intercept({ method: 'CreateSandbox', request: { name: 'x' } });
    await gw.close();
    expect(out.outcome).toBe('allowed');
  });

  it('refuses a server the platform roots do not trust', async () => {
    const err = await createGateway(
      configFor([{ name: 'ext', grpc_endpoint: fixture.endpoint, describe_attempts: 1 }]),
      { logger: captureLogs().logger },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayStartupError);
    expect((err as Error).message).toMatch(
      /^interceptor 'ext': Describe failed.*unable to verify the first certificate/,
    );
  });

  it('still verifies the host name with a private CA', async () => {
    const port = new URL(fixture.endpoint).port;
    const err = await createGateway(
      configFor([
        {
          name: 'ext',
          grpc_endpoint: `https://127.0.0.1:${port}`,
          tls_ca_cert_path: join(dir, 'ca.pem'),
          describe_attempts: 1,
        },
      ]),
      { logger: captureLogs().logger },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayStartupError);
    expect((err as Error).message).toMatch(/does not match certificate's altnames/);
  });

  it('names a missing CA file', async () => {
    const missing = join(dir, 'nope.pem');
    await expect(
      createGateway(
        configFor([{ name: 'ext', grpc_endpoint: fixture.endpoint, tls_ca_cert_path: missing }]),
        {
          logger: captureLogs().logger,
        },
      ),
    ).rejects.toThrow(`interceptor 'ext': cannot read tls_ca_cert_path ${missing}`);
  });
});
