import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  evaluationPhaseFields,
  type InterceptableMethod,
  type JsonObject,
  OPENSHELL_SERVICE,
  ROUTES,
} from '@openshell-interceptors/protocol';
import type { InterceptorEvaluation } from '@openshell-interceptors/sdk';
import {
  principals,
  RESPONSE_FIXTURES,
  type TestGateway,
  testGateway,
} from '@openshell-interceptors/testing';
import '@openshell-interceptors/testing/vitest';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type AuditRecord, auditOptionsFromEnv, auditTarget, createAuditInterceptor } from './audit.js';
import { AuditLog, type AuditSink, FileSink } from './log.js';

const here = dirname(fileURLToPath(import.meta.url));
const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'audit-test-'));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const alice = principals.user('alice@acme.example', { roles: ['dev', 'tenant:acme'], display_name: 'Alice' });
const SECRETS = ['ghp_fixtureSecretValue', 'ssh-session-fixture-token', 'rt-fixture-secret'];

function observe(method: InterceptableMethod, committed: JsonObject): InterceptorEvaluation {
  return {
    interceptorName: 'audit',
    bindingId: '',
    service: OPENSHELL_SERVICE,
    method,
    principal: alice,
    ...evaluationPhaseFields('post_commit', committed),
  };
}

function records(file: string): AuditRecord[] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as AuditRecord);
}

/** A sink whose writes never finish: a stuck disk. */
class StuckSink implements AuditSink {
  writes = 0;
  write(): Promise<void> {
    this.writes++;
    return new Promise(() => {});
  }
  async close(): Promise<void> {}
}

describe('the audit interceptor', () => {
  it('observes all 25 interceptable RPCs, post_commit only, fail_open', () => {
    const m = createAuditInterceptor({ sink: new StuckSink() }).manifest();
    expect(m.bindings).toHaveLength(25);
    expect(new Set(m.bindings.map((b) => b.selector?.method))).toEqual(new Set(ROUTES.map((r) => r.method)));
    expect(m.bindings.every((b) => b.phases.join() === '4' && b.failurePolicy === 'fail_open')).toBe(true);
  });

  it('writes who, what, when and result as one JSON line', async () => {
    const file = join(tempDir(), 'audit.log');
    const a = createAuditInterceptor({ file, now: () => new Date('2026-11-24T08:00:00.000Z') });
    const r = await a.evaluate(observe('CreateSandbox', RESPONSE_FIXTURES.CreateSandbox as JsonObject));
    expect(r).toMatchObject({ allowed: true, patches: [], logAnnotations: { audit: 'seq 1' } });
    await a.auditLog.close();
    const [rec] = records(file);
    expect(rec).toMatchObject({
      time: '2026-11-24T08:00:00.000Z',
      seq: 1,
      rpc: 'openshell.v1.OpenShell/CreateSandbox',
      who: {
        kind: 'user',
        subject: 'alice@acme.example',
        display_name: 'Alice',
        provider: 'oidc',
        roles: ['dev', 'tenant:acme'],
      },
      what: { method: 'CreateSandbox', workspace: 'team-ml', name: 'dev-alice-1', id: 'sb-7f3c2a' },
      result: { sandbox: { metadata: { name: 'dev-alice-1' } } },
    });
    expect((statSync(file).mode & 0o777).toString(8)).toBe('600');
  });

  it('names the target of responses that reference a sandbox or service', () => {
    expect(auditTarget(RESPONSE_FIXTURES.ExposeService as JsonObject)).toEqual({
      name: 'notebook',
      id: 'se-1',
      sandbox: 'dev-alice-1',
      service: 'notebook',
    });
    expect(auditTarget({ deleted: true })).toEqual({});
    expect(auditTarget({ sandboxId: 'sb-1', token: 'x' })).toEqual({ sandbox: 'sb-1' });
  });

  it('never writes a secret, even when a gateway forgets to remove it from the view', async () => {
    const file = join(tempDir(), 'audit.log');
    const a = createAuditInterceptor({ file });
    // The raw responses, secrets included: what a non-conforming gateway might send.
    await a.evaluate(observe('CreateSshSession', RESPONSE_FIXTURES.CreateSshSession as JsonObject));
    await a.evaluate(observe('CreateProvider', RESPONSE_FIXTURES.CreateProvider as JsonObject));
    await a.auditLog.close();
    const text = readFileSync(file, 'utf8');
    for (const s of SECRETS) expect(text).not.toContain(s);
    const [ssh, provider] = records(file);
    expect(ssh!.result).toMatchObject({ sandboxId: 'sb-7f3c2a', gatewayHost: 'gateway.acme.example' });
    expect(ssh!.result).not.toHaveProperty('token');
    expect(provider!.result).toMatchObject({ provider: { type: 'github', config: { org: 'acme' } } });
    expect(provider!.result?.provider).not.toHaveProperty('credentials');
  });

  it('keeps the record but not a result that is too large or not the response type', async () => {
    const file = join(tempDir(), 'audit.log');
    const a = createAuditInterceptor({ file, maxResultBytes: 100 });
    await a.evaluate(observe('CreateSandbox', RESPONSE_FIXTURES.CreateSandbox as JsonObject));
    await a.evaluate(observe('DeleteSandbox', { deleted: true, surprise: 1 }));
    await a.auditLog.close();
    const [big, odd] = records(file);
    expect(big).toMatchObject({ result: null, what: { method: 'CreateSandbox' } });
    expect(big!.result_omitted).toMatch(/^\d+ bytes, over the 100-byte limit$/);
    expect(odd!.result).toBeNull();
    expect(odd!.result_omitted).toMatch(/^not a valid openshell.v1.DeleteSandboxResponse/);
  });

  it('answers at once when the disk is stuck, dropping and counting what the queue cannot hold', async () => {
    const sink = new StuckSink();
    const a = createAuditInterceptor({ sink, maxQueue: 5 });
    const results = [];
    for (let i = 0; i < 20; i++) {
      results.push(await a.evaluate(observe('DeleteSandbox', { deleted: true })));
      // Give the writer its turn, as a busy event loop would.
      await new Promise((r) => setImmediate(r));
    }
    expect(results.every((r) => r.allowed)).toBe(true);
    // The first record's write is stuck in the sink, 5 wait behind it, the other 14 were dropped.
    expect(sink.writes).toBe(1);
    expect(a.auditLog.stats()).toEqual({ written: 0, dropped: 14, failed: 0, queued: 5 });
    expect(results.at(-1)!.logAnnotations).toEqual({ audit: 'dropped seq 20' });
  });
});

describe('AuditLog and FileSink', () => {
  it('rotates by size, keeping maxFiles old files and never splitting a line', async () => {
    const dir = tempDir();
    const file = join(dir, 'audit.log');
    const log = new AuditLog(new FileSink(file, { maxBytes: 300, maxFiles: 2 }));
    const line = (i: number) => JSON.stringify({ seq: i, pad: 'x'.repeat(60) });
    for (let i = 1; i <= 20; i++) {
      log.append(line(i));
      await log.flush();
    }
    await log.close();
    expect(readdirSync(dir).sort()).toEqual(['audit.log', 'audit.log.1', 'audit.log.2']);
    const seqs = (f: string) => records(join(dir, f)).map((r) => r.seq);
    for (const f of ['audit.log', 'audit.log.1', 'audit.log.2']) {
      expect(statSync(join(dir, f)).size).toBeLessThanOrEqual(300);
      expect(seqs(f).length).toBeGreaterThan(0);
    }
    // Newest in audit.log, older in .1, older still in .2, consecutive across files.
    const all = [...seqs('audit.log.2'), ...seqs('audit.log.1'), ...seqs('audit.log')];
    expect(all.at(-1)).toBe(20);
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => 21 - all.length + i));
  });

  it('appends to an existing file and counts lines lost to a failing sink', async () => {
    const file = join(tempDir(), 'audit.log');
    for (const seq of [1, 2]) {
      const log = new AuditLog(new FileSink(file));
      log.append(JSON.stringify({ seq }));
      await log.close();
    }
    expect(records(file).map((r) => r.seq)).toEqual([1, 2]);
    const problems: string[] = [];
    const failing = new AuditLog(
      { write: () => Promise.reject(new Error('EIO')), close: async () => {} },
      { onProblem: (p) => problems.push(p.kind) },
    );
    failing.append('a');
    failing.append('b');
    await failing.flush();
    expect(failing.stats()).toEqual({ written: 0, dropped: 0, failed: 2, queued: 0 });
    expect(problems).toEqual(['write-failed']);
    await failing.close();
    expect(failing.append('late')).toBe(false);
  });

  it('writes what is still queued when the process exits abruptly', () => {
    const file = join(tempDir(), 'audit.log');
    const r = spawnSync(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', join(here, '__fixtures__/exit-child.ts'), file],
      { encoding: 'utf8', cwd: join(here, '../../..') },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(records(file).map((x) => x.seq)).toEqual([1, 2, 3]);
  });
});

describe('configuration from the environment', () => {
  it('reads AUDIT_* variables and names the one that is wrong', () => {
    expect(
      auditOptionsFromEnv({
        AUDIT_FILE: '/var/log/openshell/audit.log',
        AUDIT_MAX_BYTES: '1048576',
        AUDIT_MAX_FILES: '3',
        AUDIT_FSYNC: 'false',
        AUDIT_MAX_QUEUE: '100',
      }),
    ).toEqual({
      file: '/var/log/openshell/audit.log',
      fileOptions: { maxBytes: 1048576, maxFiles: 3, fsync: false },
      maxQueue: 100,
    });
    expect(auditOptionsFromEnv({})).toEqual({});
    expect(() => auditOptionsFromEnv({ AUDIT_FILE: 'x', AUDIT_MAX_FILES: '0' })).toThrow(/AUDIT_MAX_FILES/);
    expect(() => auditOptionsFromEnv({ AUDIT_FILE: 'x', AUDIT_FSYNC: 'yes' })).toThrow(/AUDIT_FSYNC/);
    expect(() => auditOptionsFromEnv({ AUDIT_MAX_BYTES: '10' })).toThrow(/need AUDIT_FILE/);
  });
});

describe('behind the gateway runtime', () => {
  let gw: TestGateway | undefined;
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });

  it('logs every committed operation of all 25 RPCs, and no secret reaches the file', async () => {
    const file = join(tempDir(), 'audit.log');
    const audit = createAuditInterceptor({ file });
    gw = await testGateway({ interceptors: [audit], transport: 'grpc', principal: alice });
    for (const r of ROUTES) {
      // The request and response fixtures of each RPC, secrets included.
      const out = await gw.call(r.method as InterceptableMethod);
      expect(out).toBeAllowed();
      expect(out.evaluations.map((e) => [e.phase, e.decision])).toEqual([['post_commit', 'allow']]);
    }
    // A call that commits nothing is not audited.
    await gw.call('DeleteSandbox', undefined, { commit: false });
    await audit.auditLog.close();
    const text = readFileSync(file, 'utf8');
    for (const s of SECRETS) expect(text).not.toContain(s);
    const lines = records(file);
    expect(lines.map((l) => l.what.method)).toEqual(ROUTES.map((r) => r.method));
    expect(lines.map((l) => l.seq)).toEqual(ROUTES.map((_, i) => i + 1));
    expect(lines.every((l) => l.who.subject === 'alice@acme.example' && l.result !== null)).toBe(true);
  });
});
