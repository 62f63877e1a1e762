import { generateKeyPairSync, type KeyObject, randomUUID, sign } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  evaluationPhaseFields,
  GatewayInterceptorClient,
  type InterceptorManifest,
  type InterceptorResult,
  OPENSHELL_SERVICE,
} from '@openshell-interceptors/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CliProcess, ROOT } from '../__fixtures__/cli-process.js';
import { unary } from '../__fixtures__/unary.js';
import { runCli } from '../test-util.js';

describe('serve: usage and startup errors (exit 2)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cli-serve-'));
    writeFileSync(join(dir, 'not-an-interceptor.mjs'), 'export default 42;\n');
    mkdirSync(join(dir, 'unbuilt'));
    writeFileSync(
      join(dir, 'unbuilt', 'package.json'),
      JSON.stringify({
        name: 'unbuilt',
        exports: { '.': { source: './src/missing.ts', default: './dist/index.js' } },
      }),
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const usage: [string[], RegExp][] = [
    [['--listen', '127.0.0.1:0', '--insecure'], /exactly one module/],
    [['x.js', '--insecure'], /--listen is required/],
    [['x.js', '--listen', '127.0.0.1:0'], /authentication needs --jwks, --jwks-url or --public-key/],
    [['x.js', '--listen', '127.0.0.1:0', '--jwks', 'a', '--public-key', 'b'], /only one of/],
    [['x.js', '--listen', '127.0.0.1:0', '--insecure', '--audience', 'a'], /--insecure cannot be combined/],
    [
      ['x.js', '--listen', '127.0.0.1:0', '--insecure', '--tls-cert', 'c'],
      /--tls-cert and --tls-key go together/,
    ],
    [['x.js', '--listen', '127.0.0.1:0', '--insecure', '--grace-ms', 'soon'], /--grace-ms must be/],
    [['x.js', '--listen', '127.0.0.1:0', '--insecure', '--bogus'], /Unknown option/],
  ];
  for (const [args, message] of usage) {
    it(`refuses ${args.join(' ')}`, async () => {
      const r = await runCli(['serve', ...args], {}, dir);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toContain('Usage: openshell-interceptors serve');
    });
  }

  it('names a missing module, a module without an Interceptor, and an unbuilt package', async () => {
    const missing = await runCli(['serve', 'nope.js', '--listen', '127.0.0.1:0', '--insecure'], {}, dir);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('nope.js: no such file or directory');
    const wrong = await runCli(
      ['serve', 'not-an-interceptor.mjs', '--listen', '127.0.0.1:0', '--insecure'],
      {},
      dir,
    );
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/does not default-export an Interceptor .*got number/);
    const unbuilt = await runCli(['serve', 'unbuilt', '--listen', '127.0.0.1:0', '--insecure'], {}, dir);
    expect(unbuilt.code).toBe(2);
    expect(unbuilt.stderr).toMatch(/cannot find the entry module of unbuilt .*looks unbuilt/);
  });

  it('reports a bad listen address and a missing key file as startup errors', async () => {
    const naming = join(ROOT, 'examples/naming');
    const bad = await runCli(['serve', naming, '--listen', 'nowhere', '--insecure'], {}, dir);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/listen address "nowhere"/);
    const key = await runCli(
      ['serve', naming, '--listen', '127.0.0.1:0', '--public-key', 'missing.pem'],
      {},
      dir,
    );
    expect(key.code).toBe(2);
    expect(key.stderr).toMatch(/missing\.pem/);
  });
});

function b64(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

/** A gateway token signed with node:crypto (the CLI has no JWT library of its own). */
function gatewayToken(key: KeyObject, audience: string): string {
  const now = Math.floor(Date.now() / 1000);
  const iss = 'openshell-gateway:openshell';
  const input = `${b64({ alg: 'EdDSA', typ: 'openshell-ext+jwt', kid: 'k1' })}.${b64({
    iss,
    sub: iss,
    aud: audience,
    iat: now,
    exp: now + 900,
    jti: randomUUID(),
    caller_kind: 'gateway',
  })}`;
  return `${input}.${sign(null, Buffer.from(input), key).toString('base64url')}`;
}

describe('serve as a real process', () => {
  const procs: CliProcess[] = [];
  const clients: grpc.Client[] = [];
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cli-serve-proc-'));
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
    for (const p of procs.splice(0)) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('serves examples/naming, answers the gateway calls, and exits 0 on SIGTERM', async () => {
    const p = new CliProcess(['serve', 'examples/naming', '--listen', '127.0.0.1:0', '--insecure']);
    procs.push(p);
    const address = await p.listening();
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(p.stdout.trim().split('\n')).toEqual([`listening on ${address}`]);
    expect(p.stderr).toContain('authentication is disabled (insecure)');
    const c = new GatewayInterceptorClient(address, grpc.credentials.createInsecure());
    clients.push(c);
    const m = await unary<InterceptorManifest>((cb) => c.describe({}, cb));
    expect(m.name).toBe('naming');
    const r = await unary<InterceptorResult>((cb) =>
      c.evaluate(
        {
          interceptorName: 'naming',
          bindingId: 'create-sandbox',
          service: OPENSHELL_SERVICE,
          method: 'CreateSandbox',
          principal: { kind: 'user', subject: 'bob@example.com' },
          ...evaluationPhaseFields('modify_operation', {}),
        },
        cb,
      ),
    );
    expect(r.patches[0]!.value).toMatch(/^bob-[a-z0-9]{5}$/);
    expect(p.stderr).toContain('"msg":"evaluation"');
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(p.stderr).toContain('interceptor stopped');
  });

  it('verifies gateway tokens with --public-key', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const pem = join(dir, 'gateway.pem');
    writeFileSync(pem, publicKey.export({ type: 'spki', format: 'pem' }));
    const p = new CliProcess(['serve', 'examples/naming', '--listen', '127.0.0.1:0', '--public-key', pem]);
    procs.push(p);
    const address = await p.listening();
    const c = new GatewayInterceptorClient(address, grpc.credentials.createInsecure());
    clients.push(c);
    const refused = await unary<InterceptorManifest>((cb) => c.describe({}, cb)).catch(
      (e: grpc.ServiceError) => e,
    );
    expect((refused as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
    const md = new grpc.Metadata();
    md.set(
      'authorization',
      `Bearer ${gatewayToken(privateKey, 'urn:openshell:extension:interceptor:naming')}`,
    );
    const m = await unary<InterceptorManifest>((cb) => c.describe({}, md, cb));
    expect(m.expectedAudience).toBe('urn:openshell:extension:interceptor:naming');
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  });
});
