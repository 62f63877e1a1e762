// Hostile neighbours, gateway side (docs/security.md): the runtime dials only an interceptor
// it has reason to trust. Each hostile set-up below is refused at startup with its own
// message, and a positive control shows the refusal is caused by the hostile part alone.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allow, interceptor, type RunningServer, serve } from '@openshell-interceptors/sdk';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogs, configFor, deferAfterEach } from './__fixtures__/harness.js';
import { type RunningFixture, startInterceptorServer } from './__fixtures__/interceptor-server.js';
import { GatewayConfigError } from './config.js';
import { GatewayStartupError } from './errors.js';
import { createGateway } from './gateway.js';

const CS = 'openshell.v1.OpenShell/CreateSandbox';
const MANIFEST = { name: 'ext', bindings: [{ id: 'b', rpc: CS, phases: ['validate' as const] }] };
const silent = pino({ level: 'silent' });
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

function has(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const canDropToNobody = isRoot && has('setpriv', ['--version']);
const hasOpenssl = has('openssl', ['version']);

let dir: string;
const defer = deferAfterEach();
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gw-hostile-'));
  await chmod(dir, 0o755);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A real SDK interceptor serving on a unix socket (mode 0600, as the SDK sets it). */
async function sdkInterceptor(path: string): Promise<RunningServer> {
  const i = interceptor('ext', { logger: silent }).validate('CreateSandbox', () => allow());
  const s = await serve(i, { listen: `unix://${path}`, insecure: true, logger: silent });
  defer(() => s.close({ graceMs: 0 }));
  return s;
}

/** Start a gateway for one interceptor; resolve with its refusal message (or fail if it starts). */
async function refusal(endpoint: string, extra: Record<string, unknown> = {}): Promise<string> {
  const cfg = configFor([
    { name: 'ext', grpc_endpoint: endpoint, describe_attempts: 1, timeout: '3s', ...extra },
  ]);
  const err = await createGateway(cfg, { logger: captureLogs().logger }).then(
    async (gw) => {
      await gw.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  if (err === undefined) throw new Error(`the gateway dialed ${endpoint}; it should have refused`);
  expect(err).toBeInstanceOf(GatewayStartupError);
  return (err as Error).message;
}

/** The gateway starts against this endpoint and a call reaches the interceptor. */
async function dials(endpoint: string, extra: Record<string, unknown> = {}): Promise<void> {
  const gw = await createGateway(
    configFor([{ name: 'ext', grpc_endpoint: endpoint, timeout: '3s', ...extra }]),
    {
      logger: captureLogs().logger,
    },
  );
  try {
    const out = await gw.intercept({ method: 'CreateSandbox', request: { name: 'x' } });
    expect(out.outcome).toBe('allowed');
    expect(out.evaluations).toHaveLength(1);
    expect(out.evaluations[0]?.decision).toBe('allow');
  } finally {
    await gw.close();
  }
}

/** Run the fixture interceptor as uid/gid `nobody` (a different local user). */
async function serveAsNobody(path: string): Promise<ChildProcess> {
  const entry = fileURLToPath(new URL('./__fixtures__/child-server.ts', import.meta.url));
  const child = spawn(
    'setpriv',
    [
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      '--clear-groups',
      process.execPath,
      '--conditions=source',
      '--import',
      'tsx',
      entry,
    ],
    {
      env: { ...process.env, FIXTURE_SCRIPT: JSON.stringify({ manifest: MANIFEST }), FIXTURE_UNIX: path },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  defer(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`nobody's interceptor did not start: ${err}`)), 25_000);
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('READY')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`nobody's interceptor exited with ${code}: ${err}`));
    });
  });
  return child;
}

describe('hostile neighbours: unix sockets the gateway dials', () => {
  it('dials a real SDK interceptor in an operator-only directory (the control for every case below)', async () => {
    const d = join(dir, 'ok');
    await mkdir(d, { mode: 0o700 });
    await sdkInterceptor(join(d, 'ext.sock'));
    await dials(`unix://${join(d, 'ext.sock')}`);
  });

  it('refuses a squatter: another local user serving at the configured path (socket owner check)', async (ctx) => {
    ctx.skip(!canDropToNobody, 'needs root and setpriv to run a server as another user (nobody)');
    const d = join(dir, 'squatted');
    await mkdir(d, { mode: 0o755 });
    await chown(d, NOBODY, NOBODY);
    const path = join(d, 'ext.sock');
    await serveAsNobody(path);
    expect(await refusal(`unix://${path}`)).toBe(
      `interceptor 'ext': unix socket ${path}: owned by uid ${NOBODY}, expected uid 0 (check: owner)`,
    );
    // The same socket is dialed when the operator names that user: the owner was the only problem.
    await dials(`unix://${path}`, { unix_socket_uid: NOBODY });
  });

  it('refuses a regular file squatting the socket path', async () => {
    const d = join(dir, 'file-squat');
    await mkdir(d, { mode: 0o755 });
    const path = join(d, 'ext.sock');
    await writeFile(path, 'not a socket');
    expect(await refusal(`unix://${path}`)).toBe(
      `interceptor 'ext': unix socket ${path}: not a socket (check: socket)`,
    );
  });

  it('refuses a symlink planted at the socket path, even when it points at a real interceptor', async () => {
    const d = join(dir, 'link');
    await mkdir(d, { mode: 0o755 });
    const real = join(d, 'real.sock');
    await sdkInterceptor(real);
    const link = join(d, 'ext.sock');
    await symlink(real, link);
    expect(await refusal(`unix://${link}`)).toBe(
      `interceptor 'ext': unix socket ${link}: path component ${link} is a symlink (check: symlink)`,
    );
    await dials(`unix://${real}`);
  });

  it('refuses a symlinked parent directory anywhere in the path', async () => {
    const realDir = join(dir, 'real-dir');
    await mkdir(realDir, { mode: 0o755 });
    await sdkInterceptor(join(realDir, 'ext.sock'));
    const linkDir = join(dir, 'linked-dir');
    await symlink(realDir, linkDir);
    const path = join(linkDir, 'ext.sock');
    expect(await refusal(`unix://${path}`)).toBe(
      `interceptor 'ext': unix socket ${path}: path component ${linkDir} is a symlink (check: symlink)`,
    );
  });

  it.each([
    ['world-writable', 0o777],
    ['world-writable with the sticky bit (like /tmp)', 0o1777],
    ['group-writable', 0o775],
  ])('refuses a socket in a %s directory, where anyone could replace it', async (_, mode) => {
    const d = join(dir, `shared-${mode.toString(8)}`);
    await mkdir(d);
    const path = join(d, 'ext.sock');
    await sdkInterceptor(path);
    await chmod(d, mode);
    expect(await refusal(`unix://${path}`)).toBe(
      `interceptor 'ext': unix socket ${path}: directory ${d} is group- or world-writable (mode ${(mode & 0o777).toString(8).padStart(4, '0')}) (check: directory-mode)`,
    );
    await chmod(d, 0o755);
    await dials(`unix://${path}`);
  });

  it('refuses a socket any local user can write to', async () => {
    const d = join(dir, 'open-socket');
    await mkdir(d, { mode: 0o755 });
    const path = join(d, 'ext.sock');
    await sdkInterceptor(path);
    await chmod(path, 0o666);
    expect(await refusal(`unix://${path}`)).toBe(
      `interceptor 'ext': unix socket ${path}: writable by others (mode 0666) (check: socket-mode)`,
    );
  });

  it('refuses abstract socket names in the configuration (they have no owner or mode to check)', () => {
    expect(() => configFor([{ name: 'ext', grpc_endpoint: 'unix://@openshell-ext' }])).toThrow(
      GatewayConfigError,
    );
    expect(() => configFor([{ name: 'ext', grpc_endpoint: 'unix://@openshell-ext' }])).toThrow(
      /abstract unix socket names are not allowed/,
    );
  });

  it('refuses a plain socket listener that is not an interceptor (no Describe answer)', async () => {
    const d = join(dir, 'not-grpc');
    await mkdir(d, { mode: 0o755 });
    const path = join(d, 'ext.sock');
    const conns = new Set<Socket>();
    const server: Server = createServer((s) => {
      conns.add(s);
      s.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    });
    await new Promise<void>((r) => server.listen(path, r));
    defer(
      () =>
        new Promise<void>((r) => {
          for (const c of conns) c.destroy();
          server.close(() => r());
        }),
    );
    expect(await refusal(`unix://${path}`)).toMatch(/^interceptor 'ext': Describe failed/);
  });
});

describe.skipIf(!hasOpenssl)(
  'hostile neighbours: TLS endpoints with the wrong certificate (needs the openssl CLI)',
  () => {
    let pki: string;
    const fixtures: RunningFixture[] = [];
    let good: RunningFixture;

    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: pki, stdio: 'pipe' });
    const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

    function makeCa(name: string): void {
      openssl(
        'req',
        '-x509',
        ...ecKey,
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.pem`,
        '-days',
        '2',
        '-subj',
        `/CN=${name}`,
      );
    }

    /** A server certificate for `host`, signed by `ca`; `dates` gives a validity window for an expired one. */
    async function makeLeaf(name: string, host: string, ca: string, dates?: [string, string]): Promise<void> {
      openssl('req', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${host}`);
      await writeFile(join(pki, `${name}.ext`), `subjectAltName=DNS:${host}\n`);
      if (!dates) {
        openssl(
          'x509',
          '-req',
          '-in',
          `${name}.csr`,
          '-CA',
          `${ca}.pem`,
          '-CAkey',
          `${ca}.key`,
          '-CAcreateserial',
          '-out',
          `${name}.pem`,
          '-days',
          '2',
          '-extfile',
          `${name}.ext`,
        );
        return;
      }
      // `openssl ca` is the one that takes explicit start and end dates.
      await writeFile(join(pki, 'index.txt'), '');
      await writeFile(join(pki, 'serial'), '1000\n');
      await writeFile(
        join(pki, 'ca.cnf'),
        [
          '[ca]',
          'default_ca = d',
          '[d]',
          'database = index.txt',
          'new_certs_dir = .',
          'serial = serial',
          'default_md = sha256',
          'policy = p',
          '[p]',
          'commonName = supplied',
        ].join('\n'),
      );
      openssl(
        'ca',
        '-batch',
        '-config',
        'ca.cnf',
        '-cert',
        `${ca}.pem`,
        '-keyfile',
        `${ca}.key`,
        '-in',
        `${name}.csr`,
        '-out',
        `${name}.pem`,
        '-notext',
        '-startdate',
        dates[0],
        '-enddate',
        dates[1],
        '-extfile',
        `${name}.ext`,
      );
    }

    async function tlsFixture(name: string): Promise<RunningFixture> {
      const f = await startInterceptorServer(
        { manifest: MANIFEST },
        {
          tls: {
            cert: await readFile(join(pki, `${name}.pem`)),
            key: await readFile(join(pki, `${name}.key`)),
          },
        },
      );
      fixtures.push(f);
      return f;
    }

    beforeAll(async () => {
      pki = await mkdtemp(join(tmpdir(), 'gw-hostile-pki-'));
      makeCa('trusted-ca');
      makeCa('rogue-ca');
      await makeLeaf('good', 'localhost', 'trusted-ca');
      await makeLeaf('rogue', 'localhost', 'rogue-ca');
      await makeLeaf('wrong-host', 'evil.example', 'trusted-ca');
      await makeLeaf('expired', 'localhost', 'trusted-ca', ['20200101000000Z', '20200102000000Z']);
      openssl(
        'req',
        '-x509',
        ...ecKey,
        '-keyout',
        'self.key',
        '-out',
        'self.pem',
        '-days',
        '2',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost',
      );
      good = await tlsFixture('good');
    });
    afterAll(async () => {
      // After a refused TLS handshake the fixture's graceful close may never call back; it
      // force-shuts down after 200 ms anyway, so do not wait for the callback longer than that.
      await Promise.all(
        fixtures.map((f) => Promise.race([f.close(), new Promise((r) => setTimeout(r, 1000))])),
      );
      await rm(pki, { recursive: true, force: true });
    });

    const trusted = () => ({ tls_ca_cert_path: join(pki, 'trusted-ca.pem') });

    it('dials the interceptor whose certificate the configured CA signed for its host name (the control)', async () => {
      await dials(good.endpoint, trusted());
    });

    it('refuses a self-signed certificate', async () => {
      const f = await tlsFixture('self');
      expect(await refusal(f.endpoint, trusted())).toMatch(
        /^interceptor 'ext': Describe failed.*self[- ]signed certificate/,
      );
    });

    it('refuses a certificate from another CA, valid for the right host name', async () => {
      const f = await tlsFixture('rogue');
      expect(await refusal(f.endpoint, trusted())).toMatch(
        /^interceptor 'ext': Describe failed.*unable to (verify the first certificate|get local issuer certificate)/,
      );
    });

    it('refuses a certificate from the right CA for another host name', async () => {
      const f = await tlsFixture('wrong-host');
      expect(await refusal(f.endpoint, trusted())).toMatch(
        /^interceptor 'ext': Describe failed.*Hostname\/IP does not match certificate's altnames/,
      );
    });

    it('refuses an expired certificate from the right CA', async () => {
      const f = await tlsFixture('expired');
      expect(await refusal(f.endpoint, trusted())).toMatch(
        /^interceptor 'ext': Describe failed.*certificate has expired/,
      );
    });

    it('refuses an https endpoint that answers in plaintext (no TLS at all)', async () => {
      const f = await startInterceptorServer({ manifest: MANIFEST });
      fixtures.push(f);
      const port = new URL(f.endpoint).port;
      expect(await refusal(`https://localhost:${port}`, trusted())).toMatch(
        /^interceptor 'ext': Describe failed/,
      );
    });
  },
);
