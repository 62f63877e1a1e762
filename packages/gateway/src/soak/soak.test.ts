// Soak with faults (issue 9). Operations go through the gateway runtime, at concurrency 64,
// to the four samples (tenancy, naming, quota, audit: each a real SDK process on a unix
// socket, with gateway tokens) and two scripted interceptors (a slow multi-patch stamper and
// a brittle patcher whose lists are sometimes invalid), while naming is SIGKILLed and
// restarted and the stamper is made slow. Checked: every operation ends allowed or denied
// per its failure policy, none hangs past its deadline, none is half-patched, the quota is
// never exceeded and does not leak, the audit trail loses nothing, and RSS stays flat.
//
// Short form (CI, the normal `vitest run`): 1,000 operations. Long form (`pnpm soak`,
// SOAK=long): 10,000 operations and more kill/restart cycles. SOAK_OPS and SOAK_SEED override.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import {
  evaluationPayload,
  type InterceptorEvaluation,
  type InterceptorResult,
  type JsonObject,
} from '@openshell-interceptors/protocol';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFor, type KeyFiles, makeKeys } from '../__fixtures__/harness.js';
import { type RunningFixture, startInterceptorServer } from '../__fixtures__/interceptor-server.js';
import type { EvaluationRecord, Gateway, InterceptOutcome } from '../gateway.js';
import { createGateway } from '../gateway.js';
import {
  FakeBackend,
  median,
  principalOf,
  publicKeyFileFor,
  SampleProcess,
  sampleModule,
  seeded,
  type User,
} from './__fixtures__/soak-harness.js';

const LONG = process.env.SOAK === 'long';
const OPS = Number(process.env.SOAK_OPS ?? (LONG ? 10_000 : 1_000));
const SEED = Number(process.env.SOAK_SEED ?? 20_260_421);
const CONCURRENCY = 64;
const CYCLES = LONG ? 5 : 2;
const SUBJECT_LIMIT = 3;
const TENANT_LIMIT = 5;
const RESERVATION_TTL_MS = 2_000;

const USERS: User[] = [
  { subject: 'alice@acme.example', tenant: 'acme' },
  { subject: 'bob@acme.example', tenant: 'acme' },
  { subject: 'carol@globex.example', tenant: 'globex' },
  { subject: 'dave@globex.example', tenant: 'globex' },
];
const MALLORY: User = { subject: 'mallory@evil.example', tenant: undefined };

/** Interceptor timeouts (ms), as configured below; the per-operation deadline is derived from them. */
const TIMEOUT = { tenancy: 3_000, naming: 2_000, stamper: 250, brittle: 2_000, quota: 3_000, audit: 3_000 };
/** Bindings per interceptor and RPC kind that can run for one operation. */
const CREATE_BINDINGS = { tenancy: 2, naming: 2, stamper: 1, brittle: 1, quota: 2, audit: 1 };
const OP_DEADLINE_MS =
  Object.entries(CREATE_BINDINGS).reduce((s, [k, n]) => s + n * TIMEOUT[k as keyof typeof TIMEOUT], 0) +
  5_000;
/** How far past its own timeout one evaluation may finish on a loaded 2-core machine. */
const EVAL_SLACK_MS = 1_500;

const STAMP = { 'soak-a': '1', 'soak-b': '2', 'soak-c': '3' };
const OK_PATCHES = { 'ok-1': 'x', 'ok-2': 'y' };
const FAIL_OPEN = new Set(['stamper', 'brittle', 'audit']);

let work: string;
let keys: KeyFiles;
let samples: Record<'tenancy' | 'naming' | 'quota' | 'audit', SampleProcess>;
let stamper: RunningFixture;
let brittle: RunningFixture;
let gw: Gateway;
let slow = false;
const rand = seeded(SEED);
/** The scripted interceptors' own dice, so the operation sequence stays the same for a seed. */
const dice = seeded(SEED + 1);
const warnings = { failedClosed: 0, failedOpen: 0 };

const CS = 'openshell.v1.OpenShell/CreateSandbox';

function modifyOnly(ev: InterceptorEvaluation): boolean {
  return evaluationPayload(ev)?.phase === 'modify_operation';
}

const allowWith = (
  patches: { op: string; path: string; value?: unknown }[],
): { result: Partial<InterceptorResult> } => ({
  result: {
    allowed: true,
    patches: patches.map((p) => ({ op: p.op, path: p.path, value: p.value, from: '' })),
  },
});

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'gw-soak-'));
  keys = await makeKeys('soak');
  const pub = await publicKeyFileFor(keys.privateKeyPath);
  const sock = (n: string) => join(work, `${n}.sock`);
  samples = {
    tenancy: new SampleProcess('tenancy', sampleModule('tenancy'), sock('tenancy'), pub, {
      TENANCY_DOMAINS: 'acme.example=acme,globex.example=globex',
    }),
    naming: new SampleProcess('naming', sampleModule('naming'), sock('naming'), pub),
    quota: new SampleProcess('quota', sampleModule('quota'), sock('quota'), pub, {
      QUOTA_MAX_SANDBOXES: String(SUBJECT_LIMIT),
      QUOTA_TENANT_MAX_SANDBOXES: String(TENANT_LIMIT),
      QUOTA_RESERVATION_TTL: `${RESERVATION_TTL_MS}ms`,
      QUOTA_REDIS_URL: '',
      REDIS_URL: '',
    }),
    audit: new SampleProcess('audit', sampleModule('audit'), sock('audit'), pub, {
      AUDIT_FILE: join(work, 'audit.log'),
    }),
  };
  await Promise.all(Object.values(samples).map((s) => s.start()));

  // A stamper adding three labels in one list; slow (often past its 250 ms timeout) when `slow`.
  stamper = await startInterceptorServer(
    { manifest: { name: 'stamper', bindings: [{ id: 'stamp', rpc: CS, phases: ['modify_operation'] }] } },
    {
      unixPath: sock('stamper'),
      evaluate: async (ev) => {
        const delay = slow ? dice() * 500 : dice() * 10;
        await new Promise((r) => setTimeout(r, delay));
        if (!modifyOnly(ev)) return { result: { allowed: true } };
        return allowWith(
          Object.entries(STAMP).map(([k, v]) => ({ op: 'add', path: `/labels/${k}`, value: v })),
        );
      },
    },
  );
  // A brittle patcher: a valid two-patch list, or lists that fail at their last patch or
  // break max_patches. The gateway must apply the valid ones whole and the others not at all.
  brittle = await startInterceptorServer(
    { manifest: { name: 'brittle', bindings: [{ id: 'brittle', rpc: CS, phases: ['modify_operation'] }] } },
    {
      unixPath: sock('brittle'),
      evaluate: (ev) => {
        if (!modifyOnly(ev)) return { result: { allowed: true } };
        const r = dice();
        if (r < 0.5)
          return allowWith(
            Object.entries(OK_PATCHES).map(([k, v]) => ({ op: 'add', path: `/labels/${k}`, value: v })),
          );
        if (r < 0.7)
          return allowWith([
            { op: 'add', path: '/labels/broken-1', value: 'b' },
            { op: 'add', path: '/labels/broken-2', value: 'b' },
            { op: 'add', path: '/spec/noSuchField', value: 1 },
          ]);
        if (r < 0.85)
          return allowWith([
            { op: 'add', path: '/labels/broken-3', value: 'b' },
            { op: 'replace', path: '/no/such/parent', value: 'b' },
          ]);
        return allowWith(
          Array.from({ length: 40 }, (_, i) => ({ op: 'add', path: `/labels/broken-many-${i}`, value: 'b' })),
        );
      },
    },
  );

  const logStream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const text = chunk.toString();
      if (text.includes('failed closed')) warnings.failedClosed++;
      if (text.includes('failed open')) warnings.failedOpen++;
      cb();
    },
  });
  const config = configFor(
    [
      { name: 'tenancy', grpc_endpoint: samples.tenancy.endpoint, order: 0, timeout: `${TIMEOUT.tenancy}ms` },
      {
        name: 'naming',
        grpc_endpoint: samples.naming.endpoint,
        order: 1,
        timeout: `${TIMEOUT.naming}ms`,
        breaker: { enabled: true, volume_threshold: 5, reset_timeout: '500ms' },
      },
      {
        name: 'stamper',
        grpc_endpoint: stamper.endpoint,
        order: 2,
        timeout: `${TIMEOUT.stamper}ms`,
        failure_policy: 'fail_open',
        breaker: { enabled: false },
      },
      {
        name: 'brittle',
        grpc_endpoint: brittle.endpoint,
        order: 3,
        timeout: `${TIMEOUT.brittle}ms`,
        failure_policy: 'fail_open',
        breaker: { enabled: false },
      },
      { name: 'quota', grpc_endpoint: samples.quota.endpoint, order: 5, timeout: `${TIMEOUT.quota}ms` },
      { name: 'audit', grpc_endpoint: samples.audit.endpoint, order: 9, timeout: `${TIMEOUT.audit}ms` },
    ],
    {},
    keys,
  );
  gw = await createGateway(config, { logger: pino({ level: 'warn' }, logStream) });
}, 120_000);

afterAll(async () => {
  await gw?.close();
  await Promise.all([stamper?.close(), brittle?.close()]);
  await Promise.all(Object.values(samples ?? {}).map((s) => s.kill()));
  await keys?.cleanup();
  if (work) await rm(work, { recursive: true, force: true });
}, 60_000);

type Op =
  | { kind: 'create'; user: User | undefined; request: JsonObject }
  | { kind: 'delete'; user: User; key: string; request: JsonObject };

const backend = new FakeBackend();

function pick<T>(xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)] as T;
}

function nextOp(i: number): Op {
  const r = rand();
  const user = r < 0.9 ? pick(USERS) : r < 0.95 ? MALLORY : undefined;
  if (user?.tenant && rand() < 0.5) {
    const mine = backend.deletable(user.subject);
    if (mine.length > 0) {
      const key = pick(mine);
      const [workspace, name] = key.split('/') as [string, string];
      return { kind: 'delete', user, key, request: { name, workspace } };
    }
  }
  const n = rand();
  const name = n < 0.5 ? `sb-${i}` : n < 0.7 ? `SB-${i}` : n < 0.9 ? '' : 'admin';
  const w = rand();
  const own = user?.tenant ?? 'acme';
  const workspace = w < 0.7 ? '' : w < 0.9 ? own : own === 'acme' ? 'globex' : 'acme';
  const labels: Record<string, string> = { team: `t${i % 7}` };
  if (rand() < 0.1) labels.tenant = 'forged';
  return {
    kind: 'create',
    user,
    request: {
      ...(name ? { name } : {}),
      ...(workspace ? { workspace } : {}),
      labels,
      spec: { template: { image: 'ubuntu:24.04' } },
    },
  };
}

/** All of a patch list's labels, or none of them. */
function allOrNone(labels: Record<string, string>, expected: Record<string, string>, what: string): boolean {
  const present = Object.keys(expected).filter((k) => k in labels);
  if (present.length !== 0 && present.length !== Object.keys(expected).length)
    throw new Error(
      `half-patched by ${what}: has ${present.join(', ')} of ${Object.keys(expected).join(', ')}`,
    );
  for (const k of present)
    if (labels[k] !== expected[k]) throw new Error(`${what} label ${k} has the wrong value`);
  return present.length > 0;
}

interface Tally {
  allowed: number;
  denied: Map<string, number>;
  stamped: number;
  okPatched: number;
  evalErrors: Map<string, number>;
  maxOpMs: number;
  auditSeq: number;
}

const tally: Tally = {
  allowed: 0,
  denied: new Map(),
  stamped: 0,
  okPatched: 0,
  evalErrors: new Map(),
  maxOpMs: 0,
  auditSeq: 0,
};
const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

/** Every invariant of one finished operation. */
function check(op: Op, out: InterceptOutcome, committed: JsonObject | undefined): void {
  const pre = out.evaluations.filter((e) => e.phase !== 'post_commit');
  for (const e of out.evaluations) checkEvaluation(e);
  if (out.outcome === 'denied') {
    bump(tally.denied, `${out.status?.code}`);
    const last = pre.at(-1) as EvaluationRecord;
    expect(last, 'a denial comes from an evaluation').toBeDefined();
    if (last.decision === 'deny') {
      expect(out.status?.message).toBe(last.reason);
    } else {
      expect(last.decision).toBe('error');
      expect(last.failurePolicy).toBe('fail_closed');
      expect(out.status).toEqual({
        code: 'PERMISSION_DENIED',
        message: `gateway interceptor '${last.interceptor}' failed closed: ${last.error}`,
      });
    }
    // Nothing before the last evaluation stopped the call.
    for (const e of pre.slice(0, -1))
      expect(e.decision === 'allow' || e.failurePolicy === 'fail_open').toBe(true);
    expect(committed).toBeUndefined();
  } else {
    tally.allowed++;
    for (const e of pre)
      expect(e.decision === 'allow' || e.failurePolicy === 'fail_open', JSON.stringify(e)).toBe(true);
    expect(committed).toEqual(out.request);
  }

  if (op.kind === 'create') {
    const labels = (out.request.labels ?? {}) as Record<string, string>;
    if (allOrNone(labels, STAMP, 'the stamper')) tally.stamped++;
    if (allOrNone(labels, OK_PATCHES, 'the brittle patcher')) tally.okPatched++;
    for (const k of Object.keys(labels))
      expect(k.startsWith('broken'), `an invalid list left ${k}`).toBe(false);
    if (out.outcome === 'allowed') {
      // What the samples guarantee for an allowed create.
      expect(op.user?.tenant).toBeDefined();
      expect(out.request.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      expect(out.request.name).not.toBe('admin');
      expect(labels.tenant).toBe(op.user?.tenant);
      expect(out.request.workspace).toBe(op.user?.tenant);
    }
  }
  if (op.user === undefined || op.user === MALLORY) expect(out.outcome).toBe('denied');
  countAudit(out);
}

/** Records the audit sample acknowledged as queued for its file. */
function countAudit(out: InterceptOutcome): void {
  for (const e of out.evaluations)
    if (e.interceptor === 'audit' && e.decision === 'allow' && e.annotations.audit?.startsWith('seq '))
      tally.auditSeq++;
}

function checkEvaluation(e: EvaluationRecord): void {
  const timeout = TIMEOUT[e.interceptor as keyof typeof TIMEOUT];
  expect(e.latencyMs, `${e.interceptor} ${e.phase} ran past its deadline`).toBeLessThanOrEqual(
    timeout + EVAL_SLACK_MS,
  );
  if (e.decision === 'error') bump(tally.evalErrors, `${e.interceptor}:${e.layer}`);
  if (FAIL_OPEN.has(e.interceptor) || e.phase === 'post_commit') expect(e.failurePolicy).toBe('fail_open');
}

async function runOne(op: Op): Promise<void> {
  let committed: JsonObject | undefined;
  const started = performance.now();
  const call = gw.intercept({
    method: op.kind === 'create' ? 'CreateSandbox' : 'DeleteSandbox',
    principal: principalOf(op.user),
    request: op.request,
    commit: async (req) => {
      committed = req;
      return op.kind === 'create' ? backend.create(op.user?.subject ?? '', req) : backend.delete(req);
    },
  });
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<'hang'>((r) => {
    timer = setTimeout(() => r('hang'), OP_DEADLINE_MS);
  });
  const out = await Promise.race([call, hang]);
  clearTimeout(timer);
  if (out === 'hang') throw new Error(`operation hung past ${OP_DEADLINE_MS} ms: ${JSON.stringify(op)}`);
  tally.maxOpMs = Math.max(tally.maxOpMs, performance.now() - started);
  if (op.kind === 'delete') backend.deleting.delete(op.key);
  check(op, out, committed);
}

/** Create through the gateway until one is allowed (naming back up, breaker closed again). */
async function waitUntilServing(): Promise<void> {
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    const out = await gw.intercept({
      method: 'CreateSandbox',
      principal: principalOf(USERS[0]),
      request: { name: 'admin' },
    });
    // 'admin' is reserved: naming's own INVALID_ARGUMENT shows naming answers again.
    if (out.status?.code === 'INVALID_ARGUMENT') return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('naming did not come back');
}

describe(`soak: ${OPS} operations at concurrency ${CONCURRENCY} with faults`, () => {
  it(
    'ends every operation allowed or denied per its failure policy, never hung or half-patched; the quota holds and does not leak; nothing is lost; RSS stays flat',
    async () => {
      const inflight = new Set<Promise<void>>();
      const failures: unknown[] = [];
      const rss: number[] = [];
      const heap: number[] = [];
      let chaos: Promise<void> = Promise.resolve();
      const windowSize = Math.floor(OPS / CYCLES);
      const gc = (globalThis as { gc?: () => void }).gc;

      for (let i = 0; i < OPS; i++) {
        const inWindow = i % windowSize;
        if (inWindow === Math.floor(windowSize * 0.2)) chaos = chaos.then(() => samples.naming.kill());
        // Operations keep flowing while naming is down; at 45% of the window dispatch waits
        // for the restart (and the breaker to close), so the outage covers a quarter of each
        // window, not the whole run: denials are fast, and would otherwise swamp it.
        if (inWindow === Math.floor(windowSize * 0.45)) {
          chaos = chaos.then(() => samples.naming.start());
          await chaos;
          await waitUntilServing();
        }
        if (i === Math.floor(OPS * 0.3)) slow = true;
        if (i === Math.floor(OPS * 0.8)) slow = false;
        if (i % Math.max(1, Math.floor(OPS / 50)) === 0) {
          // The scripted fixtures record every call they answer; drop those records so the
          // samples measure what the runtime keeps, not the test's own bookkeeping.
          stamper.calls.length = 0;
          brittle.calls.length = 0;
          gc?.();
          const m = process.memoryUsage();
          rss.push(m.rss);
          heap.push(m.heapUsed);
        }
        const op = nextOp(i);
        if (op.kind === 'delete') backend.deleting.add(op.key);
        const p = runOne(op).catch((e: unknown) => {
          failures.push(e);
        });
        inflight.add(p);
        void p.then(() => inflight.delete(p));
        if (inflight.size >= CONCURRENCY) await Promise.race(inflight);
        if (failures.length > 0) break;
      }
      await Promise.all(inflight);
      await chaos;
      if (failures.length > 0) throw failures[0];

      // The faults really happened, and both failure policies were exercised.
      expect(samples.naming.starts).toBe(CYCLES + 1);
      // (while naming is down its calls fail at the transport, or at once once its breaker opens)
      expect([...tally.evalErrors.keys()].some((k) => k.startsWith('naming:'))).toBe(true);
      expect([...tally.evalErrors.keys()].some((k) => k.startsWith('stamper:'))).toBe(true);
      expect(warnings.failedClosed).toBeGreaterThan(0);
      expect(warnings.failedOpen).toBeGreaterThan(0);
      expect(tally.stamped).toBeGreaterThan(0);
      expect(tally.okPatched).toBeGreaterThan(0);
      expect(tally.denied.get('RESOURCE_EXHAUSTED') ?? 0).toBeGreaterThan(0);
      // The healthy fail_closed samples never failed.
      for (const k of tally.evalErrors.keys()) expect(k).toMatch(/^(naming|stamper|brittle):/);

      // The quota was never exceeded, seen from the backend.
      for (const [subject, n] of backend.maxPerSubject) expect(n, subject).toBeLessThanOrEqual(SUBJECT_LIMIT);
      for (const [tenant, n] of backend.maxPerTenant) expect(n, tenant).toBeLessThanOrEqual(TENANT_LIMIT);

      // No leak: once reservations expire and every sandbox is deleted, each caller gets
      // exactly its full quota again (subject limit, within the tenant's limit).
      await waitUntilServing();
      await new Promise((r) => setTimeout(r, RESERVATION_TTL_MS + 500));
      for (const [key, s] of [...backend.sandboxes]) {
        const [workspace, name] = key.split('/') as [string, string];
        const user = USERS.find((u) => u.subject === s.owner);
        const out = await gw.intercept({
          method: 'DeleteSandbox',
          principal: principalOf(user),
          request: { name, workspace },
          commit: async (req) => backend.delete(req),
        });
        expect(out.outcome, `delete ${key}`).toBe('allowed');
        countAudit(out);
      }
      expect(backend.sandboxes.size).toBe(0);
      const perTenant = new Map<string, number>();
      for (const u of USERS) {
        const tenantUsed = perTenant.get(u.tenant as string) ?? 0;
        const expected = Math.min(SUBJECT_LIMIT, TENANT_LIMIT - tenantUsed);
        let allowed = 0;
        for (let k = 0; k <= SUBJECT_LIMIT; k++) {
          const out = await gw.intercept({
            method: 'CreateSandbox',
            principal: principalOf(u),
            request: { name: `final-${k}-${u.subject.split('@')[0]}` },
            commit: async (req) => backend.create(u.subject, req),
          });
          countAudit(out);
          if (out.outcome === 'allowed') allowed++;
          else expect(out.status?.code, JSON.stringify(out.status)).toBe('RESOURCE_EXHAUSTED');
        }
        expect(allowed, `${u.subject} gets exactly its quota back`).toBe(expected);
        perTenant.set(u.tenant as string, tenantUsed + allowed);
      }

      // Nothing lost: every record the audit sample acknowledged is in its file.
      await samples.audit.stop();
      const lines = (await readFile(join(work, 'audit.log'), 'utf8')).split('\n').filter((l) => l !== '');
      expect(tally.auditSeq).toBe(backend.creates + backend.deletes);
      expect(lines.length).toBe(tally.auditSeq);
      for (const l of lines.slice(0, 50)) expect(JSON.parse(l)).toHaveProperty('rpc');

      // RSS stays flat: the late samples are not far above the early ones (after warm-up).
      const window = (xs: number[], from: number, to: number) =>
        median(xs.slice(Math.floor(xs.length * from), Math.floor(xs.length * to)));
      const early = window(rss, 0.2, 0.4);
      const late = window(rss, 0.8, 1);
      const heapEarly = window(heap, 0.2, 0.4);
      const heapLate = window(heap, 0.8, 1);
      const mb = (n: number) => Math.round(n / 1048576);
      console.log(
        `soak: ${OPS} ops, ${tally.allowed} allowed, denied ${JSON.stringify(Object.fromEntries(tally.denied))}, ` +
          `evaluation errors ${JSON.stringify(Object.fromEntries(tally.evalErrors))}, stamped ${tally.stamped}, ` +
          `brittle applied ${tally.okPatched}, audit lines ${lines.length}, slowest op ${Math.round(tally.maxOpMs)} ms, ` +
          `rss early ${mb(early)} MB late ${mb(late)} MB, heap early ${mb(heapEarly)} MB late ${mb(heapLate)} MB` +
          `${gc ? ' (after gc)' : ''}`,
      );
      expect(late).toBeLessThanOrEqual(early * 1.25 + 64 * 1048576);
      // With a collection before each sample (the long form), retained heap must not climb.
      if (gc) expect(heapLate).toBeLessThanOrEqual(heapEarly * 1.2 + 16 * 1048576);
    },
    LONG ? 1_800_000 : 180_000,
  );
});
