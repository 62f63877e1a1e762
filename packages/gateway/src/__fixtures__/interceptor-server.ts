// A small scriptable interceptor service on raw @grpc/grpc-js: the tests' stand-in for
// a real interceptor. Not a mock of the runtime: the gateway talks to it over real
// sockets with the real wire. The same declarative script drives it in-process and
// as a child process (child-server.ts).
import * as grpc from '@grpc/grpc-js';
import {
  evaluationPayload,
  GatewayInterceptorService,
  type GrpcCodeName,
  grpcCodeNumber,
  type InterceptorEvaluation,
  type InterceptorManifest,
  type InterceptorResult,
  openshellV1,
  type Phase,
  type ProviderProfileSnapshot,
  phaseToWire,
} from '@openshell-interceptors/protocol';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, type JWK, jwtVerify } from 'jose';

export interface BindingSpec {
  id: string;
  rpc?: string;
  service?: string;
  method?: string;
  /** Phase names, or raw wire numbers to script invalid manifests. */
  phases: (Phase | number)[];
  failurePolicy?: string;
}

export interface ManifestSpec {
  name: string;
  bindings: BindingSpec[];
  failurePolicy?: string;
  providerProfiles?: boolean;
  expectedAudience?: string;
}

export interface PatchSpec {
  op: string;
  path: string;
  value?: unknown;
  from?: string;
}

export interface RuleSpec {
  /** Match on binding id, phase and/or method; absent = any. */
  binding?: string;
  phase?: Phase;
  method?: string;
  result?: {
    allowed?: boolean;
    reason?: string;
    statusCode?: string;
    patches?: PatchSpec[];
    annotations?: Record<string, string>;
    /** Pads an annotation so the encoded result grows by about this many bytes. */
    padBytes?: number;
  };
  /** Answer with this gRPC status instead of a result. */
  error?: { code: GrpcCodeName; message?: string };
  /** Wait before answering. */
  delayMs?: number;
  /** Apply to this many calls only, then fall through to later rules. */
  times?: number;
}

export interface AuthSpec {
  /** Public JWK (OKP Ed25519) of the gateway. */
  jwk: JWK;
  issuer: string;
  audience: string;
}

export interface ScriptSpec {
  manifest: ManifestSpec;
  rules?: RuleSpec[];
  describe?: { error?: { code: GrpcCodeName; message?: string }; failTimes?: number; delayMs?: number };
  snapshot?: {
    revision?: string;
    profiles?: { id: string; displayName?: string }[];
    error?: { code: GrpcCodeName; message?: string };
  };
  /** Verify the bearer token on every call; refuse UNAUTHENTICATED otherwise. */
  auth?: AuthSpec;
}

export interface RecordedCall {
  rpc: 'Describe' | 'Evaluate' | 'SnapshotProviderProfiles';
  metadata: Record<string, string>;
  evaluation?: InterceptorEvaluation;
  phase?: Phase;
  operation?: Record<string, unknown>;
  /** Milliseconds left until the deadline the caller sent (Infinity when none). */
  deadlineRemainingMs: number;
  /** Decoded claims and header of the bearer token, when one was sent. */
  token?: { raw: string; header: Record<string, unknown>; claims: Record<string, unknown> };
}

type Answer = { error: { code: GrpcCodeName; message?: string } } | { result: Partial<InterceptorResult> };

export interface FixtureOptions {
  /** `unix:///abs/path` or omitted for 127.0.0.1 on a free port. */
  unixPath?: string;
  /** Serve TLS with this certificate chain and key (PEM); listens on localhost. */
  tls?: { cert: Buffer; key: Buffer };
  /** Replace the scripted Evaluate (in-process tests that need code). */
  evaluate?: (ev: InterceptorEvaluation, call: RecordedCall) => Promise<Answer> | Answer;
}

export interface RunningFixture {
  /** `http://127.0.0.1:<port>` or `unix:///path`. */
  readonly endpoint: string;
  readonly calls: RecordedCall[];
  evaluations(): RecordedCall[];
  setScript(script: ScriptSpec): void;
  /** Calls currently being handled (concurrency observed by the service). */
  readonly active: number;
  readonly maxActive: number;
  close(): Promise<void>;
}

function manifestOf(m: ManifestSpec): InterceptorManifest {
  return {
    name: m.name,
    failurePolicy: m.failurePolicy ?? '',
    providerProfiles: m.providerProfiles ?? false,
    expectedAudience: m.expectedAudience ?? '',
    bindings: m.bindings.map((b) => ({
      id: b.id,
      selector: { rpc: b.rpc ?? '', service: b.service ?? '', method: b.method ?? '' },
      phases: b.phases.map((p) => (typeof p === 'number' ? p : phaseToWire(p))),
      failurePolicy: b.failurePolicy ?? '',
    })),
  };
}

function profileOf(p: { id: string; displayName?: string }): openshellV1.ProviderProfile {
  return openshellV1.ProviderProfile.fromPartial({ id: p.id, displayName: p.displayName ?? p.id });
}

function statusError(code: GrpcCodeName, message?: string): grpc.ServiceError {
  const e = new Error(message ?? code) as grpc.ServiceError;
  e.code = grpcCodeNumber(code);
  e.details = message ?? code;
  e.metadata = new grpc.Metadata();
  return e;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function metadataOf(md: grpc.Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(md.getMap())) out[k] = String(v);
  return out;
}

/** Start the fixture; resolves once it listens. */
export async function startInterceptorServer(
  initial: ScriptSpec,
  opts: FixtureOptions = {},
): Promise<RunningFixture> {
  let script = initial;
  let describeFailures = 0;
  const ruleUses = new Map<RuleSpec, number>();
  const calls: RecordedCall[] = [];
  let active = 0;
  let maxActive = 0;

  async function authenticate(call: RecordedCall): Promise<string | undefined> {
    const auth = call.metadata.authorization;
    if (auth?.startsWith('Bearer ')) {
      const raw = auth.slice('Bearer '.length);
      try {
        call.token = {
          raw,
          header: decodeProtectedHeader(raw) as Record<string, unknown>,
          claims: decodeJwt(raw) as Record<string, unknown>,
        };
      } catch {
        // recorded without token details
      }
    }
    const spec = script.auth;
    if (!spec) return undefined;
    if (!call.token) return 'missing bearer token';
    try {
      await jwtVerify(call.token.raw, createLocalJWKSet({ keys: [spec.jwk] }), {
        algorithms: ['EdDSA'],
        typ: 'openshell-ext+jwt',
        issuer: spec.issuer,
        audience: spec.audience,
        maxTokenAge: 3600,
      });
    } catch {
      return 'token rejected';
    }
    if (call.token.claims.caller_kind !== 'gateway') return 'caller_kind is not gateway';
    return undefined;
  }

  function pick(ev: InterceptorEvaluation, phase: Phase | undefined): RuleSpec | undefined {
    for (const r of script.rules ?? []) {
      if (r.binding !== undefined && r.binding !== ev.bindingId) continue;
      if (r.phase !== undefined && r.phase !== phase) continue;
      if (r.method !== undefined && r.method !== ev.method) continue;
      const used = ruleUses.get(r) ?? 0;
      if (r.times !== undefined && used >= r.times) continue;
      ruleUses.set(r, used + 1);
      return r;
    }
    return undefined;
  }

  async function scripted(ev: InterceptorEvaluation, phase: Phase | undefined): Promise<Answer> {
    const rule = pick(ev, phase);
    if (rule?.delayMs) await sleep(rule.delayMs);
    if (rule?.error) return { error: rule.error };
    const r = rule?.result ?? {};
    const annotations = { ...(r.annotations ?? {}) };
    if (r.padBytes) annotations.pad = 'x'.repeat(r.padBytes);
    return {
      result: {
        allowed: r.allowed ?? true,
        reason: r.reason ?? '',
        statusCode: r.statusCode ?? '',
        patches: (r.patches ?? []).map((p) => ({
          op: p.op,
          path: p.path,
          value: p.value,
          from: p.from ?? '',
        })),
        logAnnotations: annotations,
      },
    };
  }

  const full = (r: Partial<InterceptorResult>): InterceptorResult => ({
    allowed: r.allowed ?? false,
    reason: r.reason ?? '',
    statusCode: r.statusCode ?? '',
    patches: r.patches ?? [],
    logAnnotations: r.logAnnotations ?? {},
  });

  function track<Req, Res>(
    rpc: RecordedCall['rpc'],
    body: (req: Req, rec: RecordedCall) => Promise<Res>,
  ): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      const d = call.getDeadline();
      const deadlineRemainingMs = d instanceof Date ? d.getTime() - Date.now() : d - Date.now();
      const rec: RecordedCall = { rpc, metadata: metadataOf(call.metadata), deadlineRemainingMs };
      calls.push(rec);
      active++;
      maxActive = Math.max(maxActive, active);
      (async () => {
        const problem = await authenticate(rec);
        if (problem) throw statusError('UNAUTHENTICATED', 'unauthenticated');
        return body(call.request, rec);
      })().then(
        (res) => {
          active--;
          callback(null, res);
        },
        (e: unknown) => {
          active--;
          callback(e as grpc.ServiceError);
        },
      );
    };
  }

  const server = new grpc.Server();
  server.addService(GatewayInterceptorService, {
    describe: track<unknown, InterceptorManifest>('Describe', async () => {
      const d = script.describe;
      if (d?.delayMs) await sleep(d.delayMs);
      if (d?.failTimes !== undefined && describeFailures < d.failTimes) {
        describeFailures++;
        throw statusError(d.error?.code ?? 'UNAVAILABLE', d.error?.message ?? 'not ready yet');
      }
      if (d?.error && d.failTimes === undefined) throw statusError(d.error.code, d.error.message);
      return manifestOf(script.manifest);
    }),
    evaluate: track<InterceptorEvaluation, InterceptorResult>('Evaluate', async (ev, rec) => {
      const payload = evaluationPayload(ev);
      rec.evaluation = ev;
      if (payload) {
        rec.phase = payload.phase;
        if (payload.operation) rec.operation = payload.operation;
      }
      const answer = opts.evaluate ? await opts.evaluate(ev, rec) : await scripted(ev, rec.phase);
      if ('error' in answer) throw statusError(answer.error.code, answer.error.message);
      return full(answer.result);
    }),
    snapshotProviderProfiles: track<unknown, ProviderProfileSnapshot>(
      'SnapshotProviderProfiles',
      async () => {
        const s = script.snapshot ?? {};
        if (s.error) throw statusError(s.error.code, s.error.message);
        return { revision: s.revision ?? '', profiles: (s.profiles ?? []).map(profileOf) };
      },
    ),
  });

  const bindAddress = opts.unixPath ? `unix://${opts.unixPath}` : opts.tls ? 'localhost:0' : '127.0.0.1:0';
  const creds = opts.tls
    ? grpc.ServerCredentials.createSsl(
        null,
        [{ private_key: opts.tls.key, cert_chain: opts.tls.cert }],
        false,
      )
    : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(bindAddress, creds, (err, p) => (err ? reject(err) : resolve(p)));
  });
  const endpoint = opts.unixPath
    ? `unix://${opts.unixPath}`
    : opts.tls
      ? `https://localhost:${port}`
      : `http://127.0.0.1:${port}`;
  return {
    endpoint,
    calls,
    evaluations: () => calls.filter((c) => c.rpc === 'Evaluate'),
    setScript(s) {
      script = s;
      ruleUses.clear();
    },
    get active() {
      return active;
    },
    get maxActive() {
      return maxActive;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        // Do not wait for slow scripted handlers.
        setTimeout(() => server.forceShutdown(), 200).unref();
      }),
  };
}
