// `openshell-interceptors check` against each sample, served the way an operator would
// serve it (`openshell-interceptors serve <dir> --public-key …`), token checks included.
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliLauncher, type RunningService, startService } from './services.js';
import { SERVICES } from './story.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const launcher: CliLauncher = {
  execPath: process.execPath,
  args: ['--conditions=source', '--import', 'tsx', join(root, 'packages/cli/src/bin.ts')],
  cwd: root,
};
const GATEWAY_ID = 'samples-check';

interface Report {
  passed: boolean;
  interceptor: string;
  summary: { pass: number; warn: number; fail: number };
  findings: { id: string; status: string; subject?: string; detail: string }[];
}

/** `openshell-interceptors check … --json` as a separate process. */
function check(args: string[]): Promise<{ code: number | null; report: Report | undefined; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(launcher.execPath, [...launcher.args, 'check', ...args, '--json'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.once('exit', (code) => {
      let report: Report | undefined;
      try {
        report = JSON.parse(out) as Report;
      } catch {
        report = undefined;
      }
      resolve({ code, report, stderr: err });
    });
  });
}

describe('openshell-interceptors check on every served sample', () => {
  let dir: string;
  const services = new Map<string, RunningService>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'samples-check-'));
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    await writeFile(join(dir, 'gateway.key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }), {
      mode: 0o600,
    });
    await writeFile(join(dir, 'gateway.pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    const env: Record<string, Record<string, string>> = {
      naming: {},
      tenancy: { TENANCY_DOMAINS: 'example.com=acme' },
      quota: { QUOTA_REDIS_URL: '', REDIS_URL: '' },
      audit: { AUDIT_FILE: join(dir, 'audit.log') },
    };
    await Promise.all(
      SERVICES.map(async (s) => {
        const svc = await startService(
          {
            name: s.name,
            dir: join(root, 'examples', s.name),
            listen: s.listen === 'unix' ? `unix://${join(dir, `${s.name}.sock`)}` : '127.0.0.1:0',
            env: env[s.name] ?? {},
            publicKeyFile: join(dir, 'gateway.pub.pem'),
            gatewayId: GATEWAY_ID,
          },
          launcher,
        );
        services.set(s.name, svc);
      }),
    );
  }, 120_000);

  afterAll(async () => {
    const codes = await Promise.all([...services.values()].map((s) => s.stop()));
    await rm(dir, { recursive: true, force: true });
    expect(codes).toEqual([0, 0, 0, 0]);
  });

  for (const { name } of SERVICES) {
    it(`${name}: every check passes, bad tokens are refused`, async () => {
      const svc = services.get(name)!;
      const r = await check([
        svc.endpoint,
        '--private-key',
        join(dir, 'gateway.key.pem'),
        '--kid',
        'samples-check-key',
        '--audience',
        `urn:openshell:extension:interceptor:${name}`,
        '--gateway-id',
        GATEWAY_ID,
        // The samples run from TypeScript sources here, on a shared 2-core machine.
        '--timeout',
        '2s',
      ]);
      expect(r.report, r.stderr).toBeDefined();
      const report = r.report!;
      const bad = report.findings.filter((f) => f.status !== 'pass');
      expect(bad, JSON.stringify(bad, null, 2)).toEqual([]);
      expect(report).toMatchObject({ passed: true, interceptor: name });
      expect(r.code).toBe(0);
      const ids = new Set(report.findings.map((f) => f.id));
      for (const id of [
        'auth.no-token',
        'auth.wrong-audience',
        'auth.expired',
        'auth.wrong-key',
        'evaluate.answers',
      ])
        expect(ids).toContain(id);
    }, 120_000);
  }
});
