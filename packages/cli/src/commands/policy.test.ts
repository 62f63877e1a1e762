import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  buildProjection,
  createBundle,
  definePolicyDriver,
  type RunningPolicyDriver,
  servePolicyDriver,
  UnknownHandleError,
  writeBundleFile,
} from '@openshell-interceptors/policy-authority';
import {
  evaluationPhaseFields,
  GatewayInterceptorClient,
  type InterceptorManifest,
  type InterceptorResult,
  OPENSHELL_SERVICE,
} from '@openshell-interceptors/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CliProcess } from '../__fixtures__/cli-process.js';
import { unary } from '../__fixtures__/unary.js';
import { runCli } from '../test-util.js';

const POLICY = {
  version: 1,
  filesystem: { includeWorkdir: true, readOnly: ['/usr'] },
  networkPolicies: { pypi: { name: 'pypi', endpoints: [{ host: 'pypi.org', port: 443 }] } },
};

let dir: string;
let servers: RunningPolicyDriver[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cli-policy-'));
});
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close(100)));
  servers = [];
  await rm(dir, { recursive: true, force: true });
});

const cli = (...argv: string[]) => runCli(['policy', ...argv], {}, dir);

async function keygen(kid: string, out = 'keys') {
  const r = await cli('keygen', '--out', out, '--kid', kid);
  expect(r.code).toBe(0);
  return {
    key: join(dir, out, `${kid}.key`),
    pem: join(dir, out, `${kid}.pem`),
    jwk: join(dir, out, `${kid}.jwk`),
  };
}

describe('policy keygen', () => {
  it('writes a 0600 private key and public PEM + JWK named by the key id', async () => {
    const r = await cli('keygen', '--out', 'keys', '--kid', 'authority-1', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, string>;
    expect(out.keyId).toBe('authority-1');
    expect((await stat(out.privateKey!)).mode & 0o777).toBe(0o600);
    expect(await readFile(out.privateKey!, 'utf8')).toContain('BEGIN PRIVATE KEY');
    expect(await readFile(out.publicPem!, 'utf8')).toContain('BEGIN PUBLIC KEY');
    expect(JSON.parse(await readFile(out.publicJwk!, 'utf8'))).toMatchObject({
      kty: 'OKP',
      crv: 'Ed25519',
      kid: 'authority-1',
    });
  });

  it('defaults the key id to the JWK thumbprint and refuses to overwrite a key', async () => {
    const r = await cli('keygen', '--out', 'keys', '--json');
    const kid = (JSON.parse(r.stdout) as { keyId: string }).keyId;
    expect(kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await keygen('dup');
    const again = await cli('keygen', '--out', 'keys', '--kid', 'dup');
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('refusing to overwrite');
  });

  it('needs --out', async () => {
    const r = await cli('keygen');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--out');
  });
});

describe('policy sign and verify', () => {
  it('signs a YAML policy into a bundle that verifies against the trust directory', async () => {
    const k = await keygen('k1', 'trust');
    await writeFile(join(dir, 'policy.yaml'), stringify(POLICY));
    const s = await cli('sign', 'policy.yaml', '--key', k.key, '--audit', 'ticket=SEC-9', '--out', 'b.yaml');
    expect(s.code).toBe(0);
    expect(s.stdout).toContain('key k1');
    // The trust directory holds k1.key too: private keys under .key are ignored.
    const v = await cli('verify', 'b.yaml', '--trust', 'trust');
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^OK\s+/);
    expect(v.stdout).toContain('key k1, audit ticket=SEC-9');
  });

  it('--json: one document for sign and for verify', async () => {
    const k = await keygen('k1');
    await writeFile(join(dir, 'policy.json'), JSON.stringify(POLICY));
    const s = await cli('sign', 'policy.json', '--key', k.key, '--out', 'b.json', '--json');
    const summary = JSON.parse(s.stdout) as { policyDigest: string; signingKeyId: string };
    expect(summary.signingKeyId).toBe('k1');
    const v = await cli('verify', 'b.json', '--trust', k.jwk, '--json');
    expect(v.code).toBe(0);
    const doc = JSON.parse(v.stdout) as { ok: boolean; results: { policyDigest: string }[] };
    expect(doc.ok).toBe(true);
    expect(doc.results[0]?.policyDigest).toBe(summary.policyDigest);
  });

  it('without --out the bundle goes to stdout', async () => {
    const k = await keygen('k1');
    await writeFile(join(dir, 'policy.json'), JSON.stringify(POLICY));
    const s = await cli('sign', 'policy.json', '--key', k.key, '--json');
    expect(JSON.parse(s.stdout)).toMatchObject({
      format: 'openshell.policy.bundle.v1',
      signing_key_id: 'k1',
    });
  });

  it('rotation: a trust store with the old and new keys verifies bundles signed by either', async () => {
    const oldKey = await keygen('2024', 'trust');
    const newKey = await keygen('2025', 'trust');
    await writeFile(join(dir, 'policy.json'), JSON.stringify(POLICY));
    await cli('sign', 'policy.json', '--key', oldKey.key, '--out', 'old.yaml');
    await cli('sign', 'policy.json', '--key', newKey.key, '--out', 'new.yaml');
    const v = await cli('verify', 'old.yaml', 'new.yaml', '--trust', 'trust', '--json');
    expect(v.code).toBe(0);
    const doc = JSON.parse(v.stdout) as { keyIds: string[]; results: { signingKeyId: string }[] };
    expect(doc.keyIds).toEqual(['2024', '2025']);
    expect(doc.results.map((r) => r.signingKeyId)).toEqual(['2024', '2025']);
  });

  it('exit 1 naming the failure: tampered, unsigned, unknown key, not a bundle', async () => {
    const k = await keygen('k1', 'trust');
    const rogue = await keygen('rogue', 'elsewhere');
    await writeFile(join(dir, 'policy.json'), JSON.stringify(POLICY));
    await cli('sign', 'policy.json', '--key', k.key, '--out', 'good.json');
    const good = JSON.parse(await readFile(join(dir, 'good.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(join(dir, 'audit.json'), JSON.stringify({ ...good, audit_context: { injected: 'yes' } }));
    await writeFile(join(dir, 'policy-edit.json'), JSON.stringify({ ...good, policy: { version: 9 } }));
    await writeBundleFile(join(dir, 'unsigned.yaml'), createBundle({ policy: POLICY }));
    await cli('sign', 'policy.json', '--key', rogue.key, '--out', 'rogue.yaml');
    await writeFile(join(dir, 'junk.yaml'), 'just: [text');
    const cases: [string, string][] = [
      ['audit.json', 'BAD_SIGNATURE'],
      ['policy-edit.json', 'POLICY_MISMATCH'],
      ['unsigned.yaml', 'UNSIGNED_PROJECTION'],
      ['rogue.yaml', 'UNKNOWN_KEY_ID'],
      ['junk.yaml', 'MALFORMED_BUNDLE'],
    ];
    for (const [file, code] of cases) {
      const r = await cli('verify', file, '--trust', 'trust');
      expect(r.code, file).toBe(1);
      expect(r.stdout, file).toContain(`FAILED  ${join(dir, file)}`);
      expect(r.stdout, file).toContain(`${code}:`);
    }
    const all = await cli('verify', 'good.json', 'audit.json', '--trust', 'trust', '--json');
    expect(all.code).toBe(1);
    const doc = JSON.parse(all.stdout) as { ok: boolean; results: { ok: boolean; code?: string }[] };
    expect(doc.ok).toBe(false);
    expect(doc.results.map((r) => r.code ?? 'OK')).toEqual(['OK', 'BAD_SIGNATURE']);
  });

  it('exit 2 for an invalid policy (file and pointer named), a bad key, or a bad trust store', async () => {
    const k = await keygen('k1');
    await writeFile(join(dir, 'bad.yaml'), stringify({ filesystem: { readOnly: 'not-a-list' } }));
    const bad = await cli('sign', 'bad.yaml', '--key', k.key, '--out', 'x.yaml');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(join(dir, 'bad.yaml'));
    expect(bad.stderr).toContain('/filesystem/readOnly');
    const pubAsKey = await cli('sign', 'bad.yaml', '--key', k.pem, '--kid', 'k1');
    expect(pubAsKey.code).toBe(2);
    expect(pubAsKey.stderr).toContain(k.pem);
    const noKid = await cli('sign', 'bad.yaml', '--key', k.pem);
    expect(noKid.code).toBe(2);
    expect(noKid.stderr).toContain('--kid');
    await writeFile(join(dir, 'policy.json'), JSON.stringify(POLICY));
    await cli('sign', 'policy.json', '--key', k.key, '--out', 'b.yaml');
    const noTrust = await cli('verify', 'b.yaml', '--trust', 'missing-dir');
    expect(noTrust.code).toBe(2);
    expect(noTrust.stderr).toContain('missing-dir');
    expect((await cli('verify', 'b.yaml')).code).toBe(2);
    expect((await cli('verify', 'nope.yaml', '--trust', k.pem)).code).toBe(2);
  });

  it('unknown subcommands and flags are usage errors', async () => {
    expect((await cli('frob')).code).toBe(2);
    expect((await cli()).code).toBe(2);
    expect((await cli('verify', 'x', '--bogus')).code).toBe(2);
  });
});

/** A small policy driver: one projection of POLICY per handle, on a unix socket or TCP with TLS. */
async function startDriver(
  opts: { conforming?: boolean; tls?: { cert: Buffer; key: Buffer } } = {},
): Promise<string> {
  const held = new Set<string>();
  const srv = await servePolicyDriver(
    definePolicyDriver({
      capabilities: {
        supportedSurfaces: ['openshell.sandbox.v1'],
        permitsMutation: false,
        driverVersion: 't',
      },
      acquireHandle: () => {
        const h = randomUUID();
        held.add(h);
        return h;
      },
      getProjection: (h, surfaceId) => {
        if (!held.has(h)) throw new UnknownHandleError(h);
        return buildProjection({ surfaceId, policy: POLICY });
      },
      releaseHandle: (h) => held.delete(h) || opts.conforming === false,
    }),
    opts.tls
      ? { listen: '127.0.0.1:0', tls: opts.tls, logger: false }
      : { listen: `unix://${join(dir, `${randomUUID().slice(0, 6)}.sock`)}`, logger: false },
  );
  servers.push(srv);
  return srv.address;
}

describe('policy check-driver', () => {
  const serveDriver = (conforming: boolean) => startDriver({ conforming });

  it('exit 0 and a table for a conforming driver', async () => {
    const r = await cli('check-driver', await serveDriver(true));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^CHECK\s+RESULT\s+DETAIL/);
    expect(r.stdout).toContain('release.idempotent');
    expect(r.stdout).toContain('conforms (');
  });

  it('exit 1 with --json findings for a driver whose release is not idempotent', async () => {
    const r = await cli('check-driver', await serveDriver(false), '--json');
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout) as { ok: boolean; findings: { id: string; status: string }[] };
    expect(doc.ok).toBe(false);
    expect(doc.findings.find((f) => f.id === 'release.unknown')?.status).toBe('fail');
  });

  it('exit 2 for a malformed endpoint or deadline', async () => {
    expect((await cli('check-driver', 'unix://relative')).code).toBe(2);
    expect((await cli('check-driver', '127.0.0.1:1', '--deadline', 'soon')).code).toBe(2);
  });
});

describe('policy serve', () => {
  it('exit 2 without --driver, --listen or an authentication choice, naming what is missing', async () => {
    const noDriver = await cli('serve', '--listen', 'unix:///tmp/x.sock', '--insecure');
    expect(noDriver.code).toBe(2);
    expect(noDriver.stderr).toContain('--driver');
    const noListen = await cli('serve', '--driver', 'unix:///tmp/d.sock', '--insecure');
    expect(noListen.code).toBe(2);
    expect(noListen.stderr).toContain('--listen');
    const noAuth = await cli('serve', '--driver', 'unix:///tmp/d.sock', '--listen', 'unix:///tmp/x.sock');
    expect(noAuth.code).toBe(2);
    expect(noAuth.stderr).toContain('--insecure');
    const both = await cli(
      'serve',
      '--driver',
      'unix:///tmp/d.sock',
      '--listen',
      '127.0.0.1:0',
      '--insecure',
      '--jwks',
      'x',
    );
    expect(both.code).toBe(2);
  });

  it('exit 2 for a malformed driver endpoint or an unloadable trust store', async () => {
    const bad = await cli('serve', '--driver', 'unix://relative', '--listen', '127.0.0.1:0', '--insecure');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('absolute path');
    const trust = await cli(
      'serve',
      '--driver',
      'unix:///tmp/d.sock',
      '--listen',
      '127.0.0.1:0',
      '--insecure',
      '--trust',
      'nope',
    );
    expect(trust.code).toBe(2);
    expect(trust.stderr).toContain('nope');
  });
});

describe('policy serve over TLS', () => {
  const procs: CliProcess[] = [];
  const clients: grpc.Client[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
    for (const p of procs.splice(0)) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  });

  /** A self-signed certificate for localhost and 127.0.0.1, made with the openssl CLI. */
  async function certificate(): Promise<{ certFile: string; keyFile: string; cert: Buffer; key: Buffer }> {
    const certFile = join(dir, 'tls.crt');
    const keyFile = join(dir, 'tls.key');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1']
        .concat(['-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'])
        .concat(['-keyout', keyFile, '-out', certFile]),
      { stdio: 'ignore' },
    );
    return { certFile, keyFile, cert: await readFile(certFile), key: await readFile(keyFile) };
  }

  /** `policy serve` for `driver`, without authentication, on an ephemeral port, plus `flags`. */
  const serveWith = (driver: string, ...flags: string[]) =>
    cli('serve', '--driver', driver, '--listen', '127.0.0.1:0', '--insecure', ...flags);

  it.each([
    [['--tls-cert', 'c.pem'], /--tls-cert and --tls-key go together/],
    [['--tls-client-ca', 'ca.pem'], /--tls-client-ca needs --tls-cert and --tls-key/],
    [['--driver-tls-key', 'k.pem'], /--driver-tls-cert and --driver-tls-key go together/],
  ])('refuses %j (exit 2)', async (flags, message) => {
    const r = await serveWith('https://localhost:1', ...flags);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('names an unreadable TLS file, and driver TLS flags on a driver that is not https://', async () => {
    const missing = await serveWith('https://localhost:1', '--driver-tls-ca', 'nope.pem');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--driver-tls-ca nope.pem: ENOENT');
    await writeFile(join(dir, 'ca.pem'), 'not used');
    const unix = await serveWith('unix:///tmp/d.sock', '--driver-tls-ca', 'ca.pem');
    expect(unix.code).toBe(2);
    expect(unix.stderr).toContain('https://');
  });

  it('serves the gateway over TLS and reaches an https:// driver through its CA', async () => {
    const tls = await certificate();
    const driver = await startDriver({ tls: { cert: tls.cert, key: tls.key } });
    const port = driver.split(':').pop();
    const p = new CliProcess(
      ['policy', 'serve', '--driver', `https://localhost:${port}`, '--driver-tls-ca', tls.certFile]
        .concat(['--listen', '127.0.0.1:0', '--tls-cert', tls.certFile, '--tls-key', tls.keyFile])
        .concat(['--insecure', '--state', join(dir, 'state')]),
    );
    procs.push(p);
    const address = await p.listening();
    const c = new GatewayInterceptorClient(address, grpc.credentials.createSsl(tls.cert));
    clients.push(c);
    const manifest = await unary<InterceptorManifest>((cb) => c.describe({}, cb));
    // A projection from the driver, fetched over TLS, is stamped on the new sandbox.
    const r = await unary<InterceptorResult>((cb) =>
      c.evaluate(
        {
          interceptorName: manifest.name,
          bindingId: 'create-sandbox',
          service: OPENSHELL_SERVICE,
          method: 'CreateSandbox',
          principal: { kind: 'user', subject: 'alice' },
          ...evaluationPhaseFields('modify_operation', { name: 'sb-1', spec: {} }),
        },
        cb,
      ),
    );
    expect(r.allowed).toBe(true);
    expect(JSON.stringify(r.patches)).toContain('pypi.org');
    // A plaintext client gets nowhere.
    const plain = new GatewayInterceptorClient(address, grpc.credentials.createInsecure());
    clients.push(plain);
    const refused = await unary<InterceptorManifest>((cb) =>
      plain.describe({}, new grpc.Metadata(), { deadline: Date.now() + 2000 }, cb),
    ).catch((e: grpc.ServiceError) => e);
    expect(refused).toBeInstanceOf(Error);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  });
});
