import { PassThrough } from 'node:stream';
import { gatewayLogger } from '@openshell-interceptors/gateway';
import { type Interceptor, type RunningServer, serve } from '@openshell-interceptors/sdk';
import {
  createTestSigningKey,
  faults,
  type TestSigningKey,
  withFaults,
} from '@openshell-interceptors/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ownerLabel from '../__fixtures__/owner-label.js';
import { runCli } from '../test-util.js';

const AUDIENCE = 'urn:openshell:extension:interceptor:owner-label';
let key: TestSigningKey;
const servers: RunningServer[] = [];
const logger = gatewayLogger(new PassThrough(), 'silent');

beforeAll(async () => {
  key = await createTestSigningKey('k1');
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close({ graceMs: 100 })));
  await key.cleanup();
});

async function start(target: Interceptor = ownerLabel, auth = false): Promise<string> {
  const s = await serve(target, {
    listen: '127.0.0.1:0',
    logger,
    ...(auth ? { auth: { publicKey: key.publicKey, audience: AUDIENCE } } : { insecure: true }),
  });
  servers.push(s);
  return s.address;
}

describe('check', () => {
  it('passes a correct interceptor, with every token check, and prints an aligned report', async () => {
    const addr = await start(ownerLabel, true);
    const r = await runCli([
      'check',
      addr,
      '--private-key',
      key.privateKeyPath,
      '--kid',
      'k1',
      '--audience',
      AUDIENCE,
      '--samples',
      '10',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/CHECK\s+RESULT\s+SUBJECT\s+DETAIL/);
    expect(r.stdout).toMatch(
      /auth\.alg-none\s+pass\s+an unsigned \(alg none\) token is refused with UNAUTHENTICATED/,
    );
    expect(r.stdout).toMatch(/evaluate\.answers\s+pass\s+binding 'create-sandbox' modify_operation\s+allow/);
    expect(r.stdout).toMatch(/^passed: \d+ passed, \d+ warning\(s\), 0 failed$/m);
  });

  it('--json prints the report; a planted defect fails with its finding id and exit 1', async () => {
    const broken = withFaults(
      ownerLabel,
      faults.patches([{ op: 'add', path: '/labels/late', value: 'x' }], { phase: 'validate' }),
    );
    const addr = await start(broken);
    const r = await runCli(['check', addr, '--json', '--samples', '10', '--concurrency', '4']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ endpoint: `http://${addr}`, interceptor: 'owner-label', passed: false });
    expect(report.summary.fail).toBe(1);
    expect(report.findings.filter((f: { status: string }) => f.status === 'fail')).toEqual([
      {
        id: 'result.patches-outside-modify',
        status: 'fail',
        subject: "binding 'create-sandbox' validate",
        detail: 'returned 1 patch(es) in validate; only modify_operation may patch',
      },
    ]);
    expect(report.latency).toMatchObject({ samples: 10, timeoutMs: 500 });
    // Without a key the token checks are a warning, not a pass.
    expect(report.findings).toContainEqual(expect.objectContaining({ id: 'auth.no-token', status: 'warn' }));
  });

  it('holds the service to --timeout', async () => {
    const slow = withFaults(ownerLabel, faults.delay(3_000, { phase: 'validate' }));
    const addr = await start(slow);
    const r = await runCli([
      'check',
      addr,
      '--timeout',
      '500ms',
      '--json',
      '--samples',
      '5',
      '--concurrency',
      '2',
    ]);
    expect(r.code).toBe(1);
    const fails = JSON.parse(r.stdout).findings.filter((f: { status: string }) => f.status === 'fail');
    expect(fails).toEqual([
      expect.objectContaining({
        id: 'evaluate.answers',
        subject: "binding 'create-sandbox' validate",
        detail: expect.stringMatching(/no answer within 500ms/),
      }),
    ]);
  });

  it('exits 2 on usage errors and an unreachable endpoint', async () => {
    expect((await runCli(['check'])).code).toBe(2);
    expect((await runCli(['check', '127.0.0.1:1', '--timeout', 'soon'])).stderr).toContain(
      '--timeout expects',
    );
    const down = await runCli(['check', '127.0.0.1:1']);
    expect(down.code).toBe(2);
    expect(down.stderr).toContain('cannot reach http://127.0.0.1:1');
    const needsKey = await runCli(['check', await start(ownerLabel, true)]);
    expect(needsKey.code).toBe(2);
    expect(needsKey.stderr).toContain('refuses calls without a gateway token');
  });
});
