import { createPrivateKey, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  createGateway,
  createGrpcTransport,
  type EvaluationRecord,
  type GatewayConfig,
  gatewayConfigFromObject,
  type InterceptorTransport,
  TransportError,
} from '@openshell-interceptors/gateway';
import {
  CALLER_KIND,
  canonicalize,
  DEFAULT_GATEWAY_ID,
  defaultAudience,
  evaluationPhaseFields,
  findRoute,
  gatewayIssuer,
  type InterceptableMethod,
  type InterceptorBinding,
  type InterceptorEvaluation,
  type InterceptorManifest,
  type InterceptorResult,
  isFailurePolicy,
  isGrpcCodeName,
  type JsonObject,
  normalizeProfileId,
  normalizeStatusCode,
  OPENSHELL_SERVICE,
  operationView,
  PHASES,
  type Phase,
  parseJsonPointer,
  parseRpcSelector,
  phaseFromWire,
  phaseToWire,
  pointerTouchesSecret,
  type Route,
  route,
  schema,
  TOKEN_ALGORITHM,
  TOKEN_TYPE,
} from '@openshell-interceptors/protocol';
import { generateKeyPair, SignJWT } from 'jose';
import {
  type Answer,
  type ConnectAuth,
  connectInterceptor,
  type InterceptorConnection,
  type ParsedEndpoint,
  parseEndpoint,
} from './connect.js';
import { principals, requestFixture, responseFixture } from './fixtures.js';
import { silentLogger } from './logs.js';

export type FindingStatus = 'pass' | 'warn' | 'fail';

/** One conformance finding: which check, its verdict, what it looked at and why. */
export interface Finding {
  /** Stable check id, e.g. `manifest.selectors`, `result.post-commit-allows`, `auth.expired`. */
  readonly id: string;
  readonly status: FindingStatus;
  /** What was checked, e.g. `binding 'create-sandbox' validate` (absent for whole-service checks). */
  readonly subject?: string;
  readonly detail: string;
}

export interface LatencySummary {
  readonly samples: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly timeoutMs: number;
}

export interface CheckReport {
  /** The endpoint as a gateway `grpc_endpoint`. */
  readonly endpoint: string;
  /** The manifest's name (empty when it has none). */
  readonly interceptor: string;
  /** No finding failed. */
  readonly passed: boolean;
  readonly summary: { readonly pass: number; readonly warn: number; readonly fail: number };
  readonly latency: LatencySummary | null;
  readonly findings: readonly Finding[];
}

export interface CheckOptions {
  /** https only: PEM CA file. */
  readonly caPath?: string;
  /** Authenticate as the gateway; enables the bad-token checks. */
  readonly auth?: ConnectAuth;
  /** The gateway timeout to hold the service to (default 500 ms). */
  readonly timeoutMs?: number;
  /** Default 1 MiB, the gateway default. */
  readonly maxResponseBytes?: number;
  /** Default 32, the gateway default. */
  readonly maxPatches?: number;
  /** Parallel evaluations in the concurrency check (default 16). */
  readonly concurrency?: number;
  /** Sequential evaluations measured for latency (default 50). */
  readonly latencySamples?: number;
}

/** The service cannot be reached or asked at all (a usage/startup problem, not a finding). */
export class CheckError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckError';
  }
}

/** The check ids, in report order. */
export const CHECK_IDS = [
  'describe.answers',
  'manifest.name',
  'manifest.bindings',
  'manifest.binding-ids',
  'manifest.selectors',
  'manifest.phases',
  'manifest.failure-policy',
  'manifest.post-commit-fail-open',
  'manifest.audience',
  'manifest.provider-profiles',
  'evaluate.answers',
  'result.patches-outside-modify',
  'result.post-commit-allows',
  'result.status-code',
  'result.deny-reason',
  'result.patch-pointers',
  'result.patch-apply',
  'result.patched-operation',
  'result.size',
  'result.patch-budget',
  'bad-input.no-phase',
  'bad-input.garbage',
  'bad-input.unknown-rpc',
  'bad-input.still-serving',
  'concurrency',
  'latency',
  'auth.good-token',
  'auth.no-token',
  'auth.wrong-audience',
  'auth.audience-list',
  'auth.expired',
  'auth.long-lifetime',
  'auth.wrong-issuer',
  'auth.wrong-type',
  'auth.alg-none',
  'auth.wrong-key',
  'auth.caller-kind',
  'auth.no-echo',
] as const;

export type CheckId = (typeof CHECK_IDS)[number];

class Findings {
  readonly list: Finding[] = [];
  add(id: CheckId, status: FindingStatus, detail: string, subject?: string): void {
    this.list.push({ id, status, detail, ...(subject !== undefined ? { subject } : {}) });
  }
  pass(id: CheckId, detail: string, subject?: string) {
    this.add(id, 'pass', detail, subject);
  }
  warn(id: CheckId, detail: string, subject?: string) {
    this.add(id, 'warn', detail, subject);
  }
  fail(id: CheckId, detail: string, subject?: string) {
    this.add(id, 'fail', detail, subject);
  }
  /** A pass for `id` unless it already has a finding. */
  passUnlessFound(id: CheckId, detail: string) {
    if (!this.list.some((f) => f.id === id)) this.pass(id, detail);
  }
}

interface ValidBinding {
  readonly binding: InterceptorBinding;
  readonly route: Route;
  readonly phases: readonly Phase[];
}

const WS_OR_CONTROL = /[\s\p{Cc}]/u;

/** Manifest checks; returns the bindings that can be evaluated. */
function checkManifest(m: InterceptorManifest, f: Findings, audience: string | undefined): ValidBinding[] {
  if (m.name === '' || WS_OR_CONTROL.test(m.name))
    f.fail('manifest.name', `name ${JSON.stringify(m.name)} must be non-empty, without whitespace`);
  else f.pass('manifest.name', `name "${m.name}"`);

  if (m.bindings.length === 0)
    f.warn('manifest.bindings', 'declares no bindings: the gateway will never call it');
  else f.pass('manifest.bindings', `${m.bindings.length} binding(s)`);

  const seen = new Set<string>();
  for (const [i, b] of m.bindings.entries()) {
    if (b.id === '') f.fail('manifest.binding-ids', `binding #${i + 1} has an empty id`);
    else if (seen.has(b.id)) f.fail('manifest.binding-ids', `binding id '${b.id}' is declared twice`);
    seen.add(b.id);
  }
  f.passUnlessFound('manifest.binding-ids', 'every binding has a unique, non-empty id');

  const valid: ValidBinding[] = [];
  for (const [i, b] of m.bindings.entries()) {
    const subject = b.id === '' ? `binding #${i + 1}` : `binding '${b.id}'`;
    let r: Route | undefined;
    const s = b.selector;
    if (!s) f.fail('manifest.selectors', 'has no selector', subject);
    else if (s.rpc !== '') {
      try {
        const sel = parseRpcSelector(s.rpc);
        r = findRoute(sel.service, sel.method);
        if (!r)
          f.fail('manifest.selectors', `selects ${s.rpc}, not one of the 25 interceptable RPCs`, subject);
        else if ((s.service !== '' && s.service !== r.service) || (s.method !== '' && s.method !== r.method))
          f.warn(
            'manifest.selectors',
            `rpc ${s.rpc} and service/method ${s.service}/${s.method} disagree (rpc wins)`,
            subject,
          );
      } catch {
        f.fail(
          'manifest.selectors',
          `rpc selector ${JSON.stringify(s.rpc)} is not "service/method"`,
          subject,
        );
      }
    } else if (s.service === '' || s.method === '') {
      f.fail('manifest.selectors', 'selector has neither rpc nor both service and method', subject);
    } else {
      r = findRoute(s.service, s.method);
      if (!r)
        f.fail(
          'manifest.selectors',
          `selects ${s.service}/${s.method}, not one of the 25 interceptable RPCs`,
          subject,
        );
    }

    const phases: Phase[] = [];
    let phasesOk = true;
    if (b.phases.length === 0) {
      f.fail('manifest.phases', 'declares no phases', subject);
      phasesOk = false;
    }
    for (const n of b.phases) {
      const p = phaseFromWire(n);
      if (!p) {
        f.fail(
          'manifest.phases',
          `phase ${n} is not a known phase (2 modify_operation, 3 validate, 4 post_commit)`,
          subject,
        );
        phasesOk = false;
      } else if (phases.includes(p)) f.warn('manifest.phases', `phase ${p} is listed twice`, subject);
      else phases.push(p);
    }

    if (b.failurePolicy !== '' && !isFailurePolicy(b.failurePolicy))
      f.fail(
        'manifest.failure-policy',
        `failure_policy ${JSON.stringify(b.failurePolicy)}; expected fail_closed or fail_open`,
        subject,
      );
    if (phases.includes('post_commit')) {
      // Dynamic resolution without configuration: manifest binding, manifest, phase default.
      const resolved =
        b.failurePolicy !== '' ? b.failurePolicy : m.failurePolicy !== '' ? m.failurePolicy : 'fail_open';
      if (resolved !== 'fail_open')
        f.fail(
          'manifest.post-commit-fail-open',
          `includes post_commit but its failure policy resolves to ${resolved}; the gateway refuses to start`,
          subject,
        );
    }
    if (r && phasesOk) valid.push({ binding: b, route: r, phases });
  }
  if (m.failurePolicy !== '' && !isFailurePolicy(m.failurePolicy))
    f.fail(
      'manifest.failure-policy',
      `manifest failure_policy ${JSON.stringify(m.failurePolicy)}; expected fail_closed or fail_open`,
    );
  f.passUnlessFound('manifest.selectors', 'every binding selects one of the 25 interceptable RPCs');
  f.passUnlessFound('manifest.phases', 'every binding declares known phases');
  f.passUnlessFound('manifest.failure-policy', 'failure policies are empty, fail_closed or fail_open');
  f.passUnlessFound('manifest.post-commit-fail-open', 'post_commit bindings resolve to fail_open');

  const ea = m.expectedAudience;
  if (ea !== '' && WS_OR_CONTROL.test(ea))
    f.fail(
      'manifest.audience',
      `expected_audience ${JSON.stringify(ea)} contains whitespace or control characters`,
    );
  else if (ea === '')
    f.warn(
      'manifest.audience',
      'advertises no expected_audience: the gateway cannot catch an audience mix-up',
    );
  else if (audience !== undefined && ea !== audience)
    f.fail(
      'manifest.audience',
      `expected_audience "${ea}" differs from the audience "${audience}": the gateway refuses to start`,
    );
  else f.pass('manifest.audience', `expected_audience "${ea}"`);
  return valid;
}

function phaseLabel(b: InterceptorBinding, p: Phase): string {
  return `binding '${b.id}' ${p}`;
}

/** A wire evaluation of the fixture for one binding and phase (the operation view, as the gateway sends). */
function fixtureEvaluation(name: string, vb: ValidBinding, phase: Phase): InterceptorEvaluation {
  return {
    interceptorName: name,
    bindingId: vb.binding.id,
    service: vb.route.service,
    method: vb.route.method,
    principal: { ...principals.user('alice', { roles: ['developer'] }) },
    ...evaluationPhaseFields(
      phase,
      phase === 'post_commit' ? responseView(vb.route.method) : requestView(vb.route.method),
    ),
  };
}

function requestView(m: InterceptableMethod): JsonObject {
  const r = route(m);
  return operationView(r.requestType, canonicalize(r.requestType, requestFixture(m) as JsonObject).message);
}

function responseView(m: InterceptableMethod): JsonObject {
  const r = route(m);
  return operationView(
    r.responseType,
    canonicalize(r.responseType, responseFixture(m) as JsonObject).message,
  );
}

interface Recorded {
  result?: InterceptorResult;
  encodedBytes?: number;
  error?: TransportError;
}

/** A transport that answers Describe with a one-binding manifest and records the real Evaluate answer. */
function probeTransport(
  real: InterceptorTransport,
  manifest: InterceptorManifest,
  rec: Recorded,
): InterceptorTransport {
  return {
    describe: async () => manifest,
    async evaluate(ev, call) {
      try {
        const a = await real.evaluate(ev, call);
        rec.result = a.result;
        rec.encodedBytes = a.encodedBytes;
        return a;
      } catch (e) {
        if (e instanceof TransportError) rec.error = e;
        throw e;
      }
    },
    snapshotProviderProfiles: (call) => real.snapshotProviderProfiles(call),
    close: async () => {},
  };
}

const SIX_OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

interface EvalContext {
  readonly config: GatewayConfig;
  readonly real: InterceptorTransport;
  readonly name: string;
  readonly maxResponseBytes: number;
  readonly maxPatches: number;
}

/** Evaluate one binding in one phase through the gateway runtime, so patches get exactly its treatment. */
async function evaluateBinding(
  ctx: EvalContext,
  vb: ValidBinding,
  phase: Phase,
  f: Findings,
): Promise<{ ok: boolean; result?: InterceptorResult }> {
  const subject = phaseLabel(vb.binding, phase);
  const rec: Recorded = {};
  const manifest: InterceptorManifest = {
    name: ctx.name,
    bindings: [
      {
        id: vb.binding.id,
        selector: { rpc: vb.route.rpc, service: '', method: '' },
        phases: [phaseToWire(phase)],
        failurePolicy: 'fail_open',
      },
    ],
    failurePolicy: '',
    providerProfiles: false,
    expectedAudience: '',
  };
  const gw = await createGateway(ctx.config, {
    transport: () => probeTransport(ctx.real, manifest, rec),
    logger: silentLogger(),
  });
  let record: EvaluationRecord | undefined;
  try {
    const out = await gw.intercept({
      method: vb.route.method,
      service: vb.route.service,
      principal: principals.user('alice', { roles: ['developer'] }),
      request: requestFixture(vb.route.method) as JsonObject,
      commit: async () => responseFixture(vb.route.method) as JsonObject,
    });
    record = out.evaluations[0];
  } finally {
    await gw.close();
  }
  if (!record) {
    f.fail('evaluate.answers', 'the gateway did not evaluate it (internal error of the check)', subject);
    return { ok: false };
  }
  const r = rec.result;
  if (!r) {
    const e = rec.error;
    if (e?.layer === 'size')
      f.fail(
        'result.size',
        `the answer exceeds max_response_bytes ${ctx.maxResponseBytes}: ${e.message}`,
        subject,
      );
    else f.fail('evaluate.answers', record.error ?? e?.message ?? 'no answer', subject);
    return { ok: false };
  }
  const decision = r.allowed
    ? `allow${r.patches.length ? `, ${r.patches.length} patch(es)` : ''}`
    : `deny ${r.statusCode || '(no code)'}`;
  f.pass('evaluate.answers', decision, subject);

  if (phase !== 'modify_operation' && r.patches.length > 0)
    f.fail(
      'result.patches-outside-modify',
      `returned ${r.patches.length} patch(es) in ${phase}; only modify_operation may patch`,
      subject,
    );
  if (phase === 'post_commit' && !r.allowed)
    f.fail(
      'result.post-commit-allows',
      'answered allowed = false in post_commit; an observer must allow',
      subject,
    );
  if (!r.allowed && phase !== 'post_commit') {
    const n = normalizeStatusCode(r.statusCode);
    if (r.statusCode === '') {
      // Empty is allowed: the gateway uses PERMISSION_DENIED.
    } else if (n === undefined)
      f.fail(
        'result.status-code',
        `status_code ${JSON.stringify(r.statusCode)} is not a gRPC code name; the gateway replaces it with PERMISSION_DENIED`,
        subject,
      );
    else if (n === 'OK')
      f.fail(
        'result.status-code',
        'a denial with status_code "OK"; the gateway replaces it with PERMISSION_DENIED',
        subject,
      );
    else if (r.statusCode !== n)
      f.fail(
        'result.status-code',
        `status_code ${JSON.stringify(r.statusCode)} is not canonical; write "${n}"`,
        subject,
      );
    if (r.reason.trim() === '')
      f.warn(
        'result.deny-reason',
        'a denial without a reason: the caller only reads "operation denied by gateway interceptor"',
        subject,
      );
  }
  if (r.allowed && r.statusCode !== '' && !isGrpcCodeName(r.statusCode.trim().toUpperCase()))
    f.fail(
      'result.status-code',
      `status_code ${JSON.stringify(r.statusCode)} is not a gRPC code name`,
      subject,
    );

  let pointersOk = true;
  for (const [i, p] of r.patches.entries()) {
    const problems: string[] = [];
    if (!SIX_OPS.has(p.op)) problems.push(`op ${JSON.stringify(p.op)} is not an RFC 6902 operation`);
    for (const [key, ptr] of [
      ['path', p.path],
      ['from', p.from],
    ] as const) {
      if (key === 'from' && ptr === '') continue;
      try {
        parseJsonPointer(ptr);
        if (pointerTouchesSecret(schema, vb.route.requestType, ptr))
          problems.push(`${key} ${ptr} touches a secret field`);
      } catch {
        problems.push(`${key} ${JSON.stringify(ptr)} is not a JSON Pointer`);
      }
    }
    if (problems.length > 0) {
      pointersOk = false;
      f.fail('result.patch-pointers', `patch #${i + 1}: ${problems.join('; ')}`, subject);
    }
  }
  if (r.patches.length > ctx.maxPatches)
    f.fail(
      'result.patch-budget',
      `returned ${r.patches.length} patches, more than max_patches ${ctx.maxPatches}`,
      subject,
    );
  const bytes = rec.encodedBytes ?? 0;
  if (bytes > ctx.maxResponseBytes)
    f.fail(
      'result.size',
      `the answer is ${bytes} bytes, more than max_response_bytes ${ctx.maxResponseBytes}`,
      subject,
    );
  if (
    phase === 'modify_operation' &&
    r.allowed &&
    r.patches.length > 0 &&
    r.patches.length <= ctx.maxPatches &&
    pointersOk
  ) {
    if (record.layer === 'patch')
      f.fail('result.patch-apply', record.error ?? 'the patches do not apply', subject);
    else if (record.layer === 'revalidate')
      f.fail('result.patched-operation', record.error ?? 'the patched request is not valid', subject);
  }
  return { ok: true, result: r };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

const round = (n: number) => Math.round(n * 100) / 100;

/** Forged tokens: each must be refused with UNAUTHENTICATED. */
async function authChecks(conn: InterceptorConnection, auth: ConnectAuth, f: Findings): Promise<void> {
  const good = await conn.describe();
  if (good.ok) f.pass('auth.good-token', 'a valid gateway token is accepted');
  else f.fail('auth.good-token', `a valid gateway token is refused: ${good.code}: ${good.details}`);

  const key = createPrivateKey(await readFile(auth.privateKeyPath, 'utf8'));
  const other = (await generateKeyPair('EdDSA')).privateKey;
  const issuer = gatewayIssuer(auth.gatewayId ?? DEFAULT_GATEWAY_ID);
  const now = Math.floor(Date.now() / 1000);
  const mint = (o: {
    aud?: string | string[];
    iss?: string;
    typ?: string;
    iat?: number;
    exp?: number;
    kind?: string;
    signWith?: Parameters<SignJWT['sign']>[0];
  }) =>
    new SignJWT({ caller_kind: o.kind ?? CALLER_KIND })
      .setProtectedHeader({ alg: TOKEN_ALGORITHM, typ: o.typ ?? TOKEN_TYPE, kid: auth.keyId })
      .setIssuer(o.iss ?? issuer)
      .setSubject(o.iss ?? issuer)
      .setAudience(o.aud ?? auth.audience)
      .setIssuedAt(o.iat ?? now)
      .setExpirationTime(o.exp ?? (o.iat ?? now) + 600)
      .setJti(randomUUID())
      .sign(o.signWith ?? key);
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const unsigned = `${b64({ alg: 'none', typ: TOKEN_TYPE, kid: auth.keyId })}.${b64({
    iss: issuer,
    sub: issuer,
    aud: auth.audience,
    iat: now,
    exp: now + 600,
    caller_kind: CALLER_KIND,
  })}.`;
  const cases: [CheckId, string, string | undefined][] = [
    ['auth.no-token', 'no token', undefined],
    ['auth.wrong-audience', 'a token for another audience', await mint({ aud: `${auth.audience}:other` })],
    ['auth.audience-list', 'a token whose aud is a list', await mint({ aud: [auth.audience, 'urn:other'] })],
    ['auth.expired', 'an expired token', await mint({ iat: now - 1200, exp: now - 600 })],
    ['auth.long-lifetime', 'a token living longer than 3600 s', await mint({ exp: now + 7200 })],
    [
      'auth.wrong-issuer',
      'a token from another gateway',
      await mint({ iss: gatewayIssuer(`${auth.gatewayId ?? DEFAULT_GATEWAY_ID}-other`) }),
    ],
    ['auth.wrong-type', 'a token with typ JWT', await mint({ typ: 'JWT' })],
    ['auth.alg-none', 'an unsigned (alg none) token', unsigned],
    ['auth.wrong-key', 'a token signed by another key under the same kid', await mint({ signWith: other })],
    ['auth.caller-kind', 'a token with caller_kind sandbox', await mint({ kind: 'sandbox' })],
  ];
  const echoed: string[] = [];
  for (const [id, what, token] of cases) {
    const a = await conn.describe({
      metadata: token === undefined ? {} : { authorization: `Bearer ${token}` },
    });
    if (a.ok) f.fail(id, `${what} is accepted`);
    else if (a.code !== 'UNAUTHENTICATED')
      f.fail(id, `${what} is refused with ${a.code}, expected UNAUTHENTICATED`);
    else f.pass(id, `${what} is refused with UNAUTHENTICATED`);
    if (!a.ok && token !== undefined) {
      const [, payload, sig] = token.split('.');
      if (
        a.details.includes(token) ||
        (payload && a.details.includes(payload)) ||
        (sig && sig.length > 8 && a.details.includes(sig))
      )
        echoed.push(id);
    }
  }
  if (echoed.length > 0) f.fail('auth.no-echo', `refusals quote the token: ${echoed.join(', ')}`);
  else f.pass('auth.no-echo', 'refusals never quote the token');
}

/**
 * Conformance run against any interceptor service, in any language: the manifest, every
 * declared binding and phase on realistic fixtures through the gateway runtime's own checks,
 * the result contract, bad input, concurrency, latency against the timeout and, with a key,
 * token refusal. Throws CheckError only when the service cannot be reached or described.
 */
export async function checkInterceptorService(
  endpoint: string | ParsedEndpoint,
  options: CheckOptions = {},
): Promise<CheckReport> {
  const ep = typeof endpoint === 'string' ? parseEndpoint(endpoint) : endpoint;
  const timeoutMs = options.timeoutMs ?? 500;
  const maxResponseBytes = options.maxResponseBytes ?? 1_048_576;
  const maxPatches = options.maxPatches ?? 32;
  const f = new Findings();
  const conn = await connectInterceptor(ep, {
    ...(options.caPath ? { caPath: options.caPath } : {}),
    ...(options.auth ? { auth: options.auth } : {}),
    timeoutMs: Math.max(timeoutMs * 4, 2_000),
  });
  let real: InterceptorTransport | undefined;
  try {
    const d = await conn.describe();
    if (!d.ok) {
      if (d.code === 'UNAVAILABLE' || d.code === 'DEADLINE_EXCEEDED')
        throw new CheckError(`cannot reach ${ep.endpoint}: ${d.code}: ${d.details}`);
      if (d.code === 'UNAUTHENTICATED' && !options.auth)
        throw new CheckError(
          `${ep.endpoint} refuses calls without a gateway token (${d.details}): pass --private-key, --kid and --audience`,
        );
      f.fail('describe.answers', `Describe failed: ${d.code}: ${d.details}`);
      return report(ep, '', f, null);
    }
    f.pass('describe.answers', `Describe answered in ${round(d.ms)}ms`);
    const manifest = d.message;
    const valid = checkManifest(manifest, f, options.auth?.audience);

    if (manifest.providerProfiles) {
      const s = await conn.snapshotProviderProfiles();
      if (!s.ok)
        f.fail(
          'manifest.provider-profiles',
          `advertises provider_profiles but SnapshotProviderProfiles failed: ${s.code}: ${s.details}`,
        );
      else if (s.message.profiles.length === 0)
        f.fail('manifest.provider-profiles', 'the snapshot holds no profile (at least one is required)');
      else {
        const ids = s.message.profiles.map((p) => normalizeProfileId(p.id));
        const dup = ids.find((id, i) => id === '' || ids.indexOf(id) !== i);
        if (dup !== undefined)
          f.fail('manifest.provider-profiles', `profile id ${JSON.stringify(dup)} is empty or not unique`);
        else
          f.pass(
            'manifest.provider-profiles',
            `${ids.length} profile(s), revision ${s.message.revision || '(digest)'}`,
          );
      }
    } else f.pass('manifest.provider-profiles', 'does not serve provider profiles');

    // Every valid binding and phase, through the runtime's own result handling.
    const name =
      manifest.name !== '' && !WS_OR_CONTROL.test(manifest.name) ? manifest.name : 'interceptor-under-check';
    const audience = options.auth?.audience ?? defaultAudience(name);
    const gwTable: Record<string, unknown> = {
      gateway_id: options.auth?.gatewayId ?? DEFAULT_GATEWAY_ID,
      interceptors: [
        {
          name,
          grpc_endpoint: ep.endpoint,
          audience,
          allow_insecure_transport: !options.auth,
          failure_policy: 'fail_open',
          timeout: `${timeoutMs}ms`,
          max_response_bytes: maxResponseBytes,
          max_patches: maxPatches,
          breaker: { enabled: false },
          describe_attempts: 1,
          ...(options.caPath ? { tls_ca_cert_path: options.caPath } : {}),
        },
      ],
    };
    if (options.auth) {
      gwTable.jwt_private_key_path = options.auth.privateKeyPath;
      gwTable.jwt_key_id = options.auth.keyId;
    }
    const config = gatewayConfigFromObject(gwTable, { source: 'check' });
    real = await createGrpcTransport(config.interceptors[0]!);
    const ctx: EvalContext = { config, real, name, maxResponseBytes, maxPatches };
    const answered: { vb: ValidBinding; phase: Phase; result: InterceptorResult }[] = [];
    for (const vb of valid)
      for (const phase of PHASES.filter((p) => vb.phases.includes(p))) {
        const r = await evaluateBinding(ctx, vb, phase, f);
        if (r.ok && r.result) answered.push({ vb, phase, result: r.result });
      }
    const total = valid.reduce((n, vb) => n + vb.phases.length, 0);
    if (total === 0) f.warn('evaluate.answers', 'no valid binding to evaluate');
    for (const id of [
      'result.patches-outside-modify',
      'result.post-commit-allows',
      'result.status-code',
      'result.deny-reason',
      'result.patch-pointers',
      'result.patch-apply',
      'result.patched-operation',
      'result.size',
      'result.patch-budget',
    ] as const)
      f.passUnlessFound(id, answered.length > 0 ? `all ${answered.length} answer(s)` : 'nothing to check');

    // Bad input.
    const sample = answered[0];
    const base: InterceptorEvaluation = sample
      ? fixtureEvaluation(name, sample.vb, sample.phase)
      : fixtureEvaluation(
          name,
          {
            binding: { id: '', selector: undefined, phases: [], failurePolicy: '' },
            route: route('CreateSandbox'),
            phases: ['validate'],
          },
          'validate',
        );
    const { modifyOperation: _m, validate: _v, postCommit: _p, ...noPhase } = base;
    const np = await conn.evaluate(noPhase);
    if (np.ok)
      f.fail(
        'bad-input.no-phase',
        'an evaluation without a phase was answered OK; expected INVALID_ARGUMENT',
      );
    else if (np.code !== 'INVALID_ARGUMENT')
      f.warn('bad-input.no-phase', `refused with ${np.code}; expected INVALID_ARGUMENT`);
    else f.pass('bad-input.no-phase', 'refused with INVALID_ARGUMENT');
    const garbage = await conn.raw(
      'Evaluate',
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a, 0xff, 0x01, 0x07]),
    );
    if (garbage.ok)
      f.fail('bad-input.garbage', 'undecodable bytes were answered OK; expected an error status');
    else f.pass('bad-input.garbage', `refused with ${garbage.code}`);
    const unknown = await conn.evaluate({
      ...base,
      service: OPENSHELL_SERVICE,
      method: 'NotAnInterceptableRpc',
      bindingId: '',
    });
    if (unknown.ok)
      f.warn('bad-input.unknown-rpc', 'an evaluation of an RPC no binding selects was answered OK');
    else f.pass('bad-input.unknown-rpc', `refused with ${unknown.code}`);
    const after = await conn.describe();
    if (after.ok) f.pass('bad-input.still-serving', 'still answers Describe after bad input');
    else f.fail('bad-input.still-serving', `Describe fails after bad input: ${after.code}: ${after.details}`);

    // Concurrency and latency, on the answered evaluations.
    let latency: LatencySummary | null = null;
    if (answered.length === 0) {
      f.warn('concurrency', 'not checked: no evaluation answered');
      f.warn('latency', 'not checked: no evaluation answered');
    } else {
      const n = options.concurrency ?? 16;
      const ref = answered[0]!;
      const ev = fixtureEvaluation(name, ref.vb, ref.phase);
      const answers = await Promise.all(
        Array.from({ length: n }, () => conn.evaluate(ev, { timeoutMs: Math.max(timeoutMs * 4, 2_000) })),
      );
      const same = (a: Answer<InterceptorResult>) =>
        a.ok &&
        a.message.allowed === ref.result.allowed &&
        a.message.statusCode === ref.result.statusCode &&
        a.message.patches.length === ref.result.patches.length;
      const bad = answers.filter((a) => !same(a));
      if (bad.length === 0)
        f.pass('concurrency', `${n} parallel evaluations all answered like the first one`);
      else {
        const first = bad[0]!;
        const what = first.ok
          ? `allowed=${first.message.allowed} status_code=${JSON.stringify(first.message.statusCode)} patches=${first.message.patches.length}`
          : `${first.code}: ${first.details}`;
        f.fail(
          'concurrency',
          `${bad.length} of ${n} parallel evaluations answered differently (e.g. ${what})`,
          phaseLabel(ref.vb.binding, ref.phase),
        );
      }

      const samples = options.latencySamples ?? 50;
      const times: number[] = [];
      let errors = 0;
      for (let i = 0; i < samples; i++) {
        const a = answered[i % answered.length]!;
        const r = await conn.evaluate(fixtureEvaluation(name, a.vb, a.phase), {
          timeoutMs: Math.max(timeoutMs * 4, 2_000),
        });
        times.push(r.ms);
        if (!r.ok) errors++;
      }
      times.sort((a, b) => a - b);
      latency = {
        samples,
        p50Ms: round(percentile(times, 50)),
        p95Ms: round(percentile(times, 95)),
        p99Ms: round(percentile(times, 99)),
        maxMs: round(times[times.length - 1] ?? 0),
        timeoutMs,
      };
      const detail = `p50 ${latency.p50Ms}ms, p95 ${latency.p95Ms}ms, p99 ${latency.p99Ms}ms over ${samples} evaluations (timeout ${timeoutMs}ms)`;
      if (errors > 0) f.fail('latency', `${errors} of ${samples} evaluations failed; ${detail}`);
      else if (latency.p99Ms >= timeoutMs) f.fail('latency', `p99 is at or over the timeout: ${detail}`);
      else if (latency.p95Ms >= timeoutMs / 2)
        f.warn('latency', `p95 uses half the timeout or more: ${detail}`);
      else f.pass('latency', detail);
    }

    if (options.auth) await authChecks(conn, options.auth, f);
    else {
      f.warn(
        'auth.no-token',
        'token checks skipped (no --private-key): the service answered without a gateway token',
      );
    }
    return report(ep, manifest.name, f, latency);
  } finally {
    await real?.close();
    conn.close();
  }
}

function report(ep: ParsedEndpoint, name: string, f: Findings, latency: LatencySummary | null): CheckReport {
  const order = new Map<string, number>(CHECK_IDS.map((id, i) => [id, i]));
  const findings = f.list
    .map((x, i) => ({ x, i }))
    .sort((a, b) => (order.get(a.x.id) ?? 0) - (order.get(b.x.id) ?? 0) || a.i - b.i)
    .map(({ x }) => x);
  const count = (s: FindingStatus) => findings.filter((x) => x.status === s).length;
  const summary = { pass: count('pass'), warn: count('warn'), fail: count('fail') };
  return { endpoint: ep.endpoint, interceptor: name, passed: summary.fail === 0, summary, latency, findings };
}
