// Comparison 2: the gateway runtime calling three interceptors (modify, validate,
// post_commit) vs three raw grpc-js calls of the same messages; and the per-binding
// "operation view + patch + re-validation" step vs raw fast-json-patch + one protobuf round trip.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type * as grpc from '@grpc/grpc-js';
import {
  createGateway,
  createGrpcTransport,
  type Gateway,
  gatewayConfigFromObject,
  type InterceptorTransport,
} from '@openshell-interceptors/gateway';
import {
  canonicalize,
  decodeEvaluation,
  encodeEvaluation,
  InterceptorEvaluation,
  type JsonObject,
  openshellV1,
  operationView,
  route,
} from '@openshell-interceptors/protocol';
import fjp, { type Operation } from 'fast-json-patch';
import { type Host, startHost } from '../child.js';
import type { BenchContext } from '../context.js';
import { interceptorEntry, nullLogger, startGateway } from '../gateway-setup.js';
import { interleave } from '../interleave.js';
import { closedLoop, connect, type LoadResult, rawClient, steadyWarmup } from '../load.js';
import {
  BENCH_PATCH,
  evaluation,
  jsonBytes,
  PRINCIPAL,
  SIZES,
  sandboxRequest,
  sandboxResponse,
} from '../payload.js';
import { rawApiCall } from '../raw-gateway.js';
import { median, pairedRatio } from '../stats.js';

export const RUNTIME_P50_TARGET = 1.05;
export const STEP_TARGET = 1.2;

const CS = route('CreateSandbox');

export interface RuntimeOverhead {
  readonly target: string;
  readonly payload: string;
  readonly operationBytes: number;
  readonly gateway: { readonly p50: number; readonly p99: number; readonly throughput: number };
  readonly raw: { readonly p50: number; readonly p99: number; readonly throughput: number };
  /** Median of per-round gateway/raw p50 ratios. */
  readonly p50Ratio: number;
  /** (gateway p50 − raw p50), ms: what the runtime adds per API call. */
  readonly addedMs: number;
  readonly pass: boolean;
  readonly step: StepFigures;
  readonly anatomy: Anatomy;
  readonly codec: readonly CodecFigures[];
}

/**
 * Where an API call's time goes inside the runtime: each Evaluate timed by a wrapping
 * transport, and the runtime's own work between them (medians, µs), once with the real
 * transports ("in situ") and once with transports that answer at once with the same results
 * ("isolated": the same code, with nothing else on the CPU).
 */
export interface Anatomy {
  /** Runtime work before the first call, between the calls (commit included), after the last. */
  readonly inSitu: { readonly ownWorkUs: readonly number[]; readonly evaluateUs: readonly number[] };
  readonly isolated: { readonly ownWorkUs: readonly number[] };
}

/** The Evaluate request codecs, in process: ts-proto's generated code vs the protocol's. */
export interface CodecFigures {
  readonly payload: string;
  readonly bytes: number;
  readonly generatedEncodeUs: number;
  readonly oursEncodeUs: number;
  readonly generatedDecodeUs: number;
  readonly oursDecodeUs: number;
}

export interface StepFigures {
  readonly target: string;
  readonly payload: string;
  readonly operationBytes: number;
  /** µs per step, medians over rounds. */
  readonly oursUs: number;
  readonly rawUs: number;
  readonly ratio: number;
  readonly pass: boolean;
}

/** The gateway's per-binding step, from its built modules (not exported publicly). */
interface GatewayStep {
  applyPatches(
    typeName: string,
    request: JsonObject,
    patches: readonly { op: string; path: string; value?: unknown; from?: string }[],
  ): { json: JsonObject; message: unknown };
  /** Present once the gateway reuses the canonical JSON as the view of secret-free types. */
  viewOf?: (typeName: string, state: { json: JsonObject; message: unknown }) => JsonObject;
}

async function gatewayStep(): Promise<GatewayStep> {
  const url = new URL('patch.js', import.meta.resolve('@openshell-interceptors/gateway'));
  return (await import(url.href)) as GatewayStep;
}

/** Mean µs per call of `fn` over a window (after the loop has run at least `min` times). */
function timeLoop(fn: () => void, windowMs: number, min = 50): number {
  let n = 0;
  const t0 = performance.now();
  const stop = t0 + windowMs;
  while (n < min || performance.now() < stop) {
    fn();
    n++;
  }
  return ((performance.now() - t0) * 1000) / n;
}

export async function stepBenchmark(ctx: BenchContext, size = SIZES['4KB']): Promise<StepFigures> {
  const step = await gatewayStep();
  const request = canonicalize(CS.requestType, sandboxRequest(size)).json;
  const state = canonicalize(CS.requestType, request);
  const patches = [{ ...BENCH_PATCH }];
  const codec = openshellV1.CreateSandboxRequest;

  // Raw: what a hand-written gateway would minimally do.
  const raw = () => {
    const doc = fjp.applyPatch(structuredClone(request), patches as Operation[], false, true).newDocument;
    codec.decode(codec.encode(codec.fromJSON(doc)).finish());
  };
  // Ours: the operation view sent to the interceptor, the patch applied to the full request
  // (pointer checks, all-or-nothing) and the strict re-validation to canonical JSON.
  const ours = () => {
    if (step.viewOf) step.viewOf(CS.requestType, state);
    else operationView(CS.requestType, state.message);
    step.applyPatches(CS.requestType, state.json, patches);
  };
  // Same answer from both: the patched request.
  const a = step.applyPatches(CS.requestType, state.json, patches).json;
  const b = codec.toJSON(
    codec.decode(
      codec
        .encode(codec.fromJSON(fjp.applyPatch(structuredClone(request), patches as Operation[]).newDocument))
        .finish(),
    ),
  );
  if (JSON.stringify(a.labels) !== JSON.stringify((b as { labels?: unknown }).labels))
    throw new Error('step: ours and raw disagree');

  const windowMs = Math.max(100, ctx.budget.windowMs / 2);
  const [o, r] = (await interleave(
    [
      { name: 'ours', run: async () => timeLoop(ours, windowMs) },
      { name: 'raw', run: async () => timeLoop(raw, windowMs) },
    ],
    { rounds: ctx.budget.rounds + 2, warmup: 1, label: 'step', progress: ctx.progress },
  )) as [number[], number[]];
  const ratio = pairedRatio(o, r);
  return {
    target: `view + patch + re-validation <= ${STEP_TARGET} x (deep clone + fast-json-patch + ts-proto fromJSON + encode + decode)`,
    payload: `${Math.round(size / 1024)}KB`,
    operationBytes: jsonBytes(request),
    oursUs: median(o),
    rawUs: median(r),
    ratio,
    pass: ratio <= STEP_TARGET,
  };
}

export async function codecBenchmark(ctx: BenchContext): Promise<CodecFigures[]> {
  const out: CodecFigures[] = [];
  for (const payload of ['4KB', '256KB'] as const) {
    const view = canonicalize(CS.requestType, sandboxRequest(SIZES[payload])).json;
    const ev = evaluation('modify_operation', view, 'modifier', 'cs-modifier');
    const bytes = InterceptorEvaluation.encode(ev).finish();
    if (!encodeEvaluation(ev).equals(Buffer.from(bytes))) throw new Error('codec: the encoders disagree');
    const windowMs = Math.max(100, ctx.budget.windowMs / 2);
    const sides = [
      () => InterceptorEvaluation.encode(ev).finish(),
      () => encodeEvaluation(ev),
      () => InterceptorEvaluation.decode(bytes),
      () => decodeEvaluation(bytes),
    ];
    const times = (await interleave(
      sides.map((fn, i) => ({ name: `codec-${i}`, run: async () => timeLoop(fn, windowMs, 5) })),
      { rounds: ctx.budget.rounds, warmup: 1, label: `codec ${payload}`, progress: ctx.progress },
    )) as number[][];
    const [ge, oe, gd, od] = times.map(median) as [number, number, number, number];
    out.push({
      payload,
      bytes: bytes.length,
      generatedEncodeUs: ge,
      oursEncodeUs: oe,
      generatedDecodeUs: gd,
      oursDecodeUs: od,
    });
  }
  return out;
}

/** A transport that records when each Evaluate starts and ends. */
function timed(
  inner: (ev: InterceptorEvaluation) => Promise<EvalAnswer>,
  marks: number[],
  base: InterceptorTransport,
) {
  const t: InterceptorTransport = {
    describe: (c) => base.describe(c),
    evaluate: async (ev) => {
      marks.push(performance.now());
      const a = await inner(ev);
      marks.push(performance.now());
      return a;
    },
    snapshotProviderProfiles: (c) => base.snapshotProviderProfiles(c),
    close: () => base.close(),
  };
  return t;
}

type EvalAnswer = Awaited<ReturnType<InterceptorTransport['evaluate']>>;

/** Per-segment medians (µs) of intercept() split at the Evaluate starts and ends. */
async function segments(marks: number[], call: () => Promise<unknown>, calls: number): Promise<number[]> {
  const seg: number[][] = [];
  for (let i = 0; i < calls; i++) {
    marks.length = 0;
    const t0 = performance.now();
    await call();
    const m = [t0, ...marks, performance.now()];
    m.slice(1).forEach((t, k) => {
      seg[k] ??= [];
      seg[k]?.push((t - (m[k] as number)) * 1000);
    });
  }
  return seg.map((x) => median(x));
}

async function anatomy(
  ctx: BenchContext,
  addresses: readonly string[],
  names: readonly string[],
  request: JsonObject,
  commit: (r: JsonObject) => Promise<JsonObject>,
): Promise<Anatomy> {
  const config = gatewayConfigFromObject({
    interceptors: names.map((n, i) => interceptorEntry(n, addresses[i] as string)),
  });
  const real = await Promise.all(config.interceptors.map((ic) => createGrpcTransport(ic)));
  const answers: EvalAnswer[] = [];
  const marks: number[] = [];
  const index = (name: string) => names.indexOf(name);
  const gateways: Gateway[] = [];
  try {
    const inSitu = await createGateway(config, {
      logger: nullLogger(),
      transport: (ic) => {
        const t = real[index(ic.name)] as InterceptorTransport;
        return timed(
          async (ev) => {
            const a = await t.evaluate(ev, {
              signal: new AbortController().signal,
              deadline: Date.now() + ic.timeoutMs,
              metadata: {},
              maxResponseBytes: ic.maxResponseBytes,
            });
            answers[index(ic.name)] = a;
            return a;
          },
          marks,
          t,
        );
      },
    });
    gateways.push(inSitu);
    const isolated = await createGateway(config, {
      logger: nullLogger(),
      transport: (ic) => {
        const t = real[index(ic.name)] as InterceptorTransport;
        return timed(async () => answers[index(ic.name)] as EvalAnswer, marks, t);
      },
    });
    gateways.push(isolated);
    const call = (gw: Gateway) => async () => {
      const out = await gw.intercept({ method: 'CreateSandbox', principal: PRINCIPAL, request, commit });
      if (out.outcome !== 'allowed') throw new Error(`anatomy: denied: ${out.status?.message}`);
    };
    const calls = ctx.quick ? 300 : 1000;
    await segments(marks, call(inSitu), 200);
    await segments(marks, call(isolated), 200);
    const a = await segments(marks, call(inSitu), calls);
    const b = await segments(marks, call(isolated), calls);
    const own = (x: number[]) => x.filter((_, k) => k % 2 === 0);
    const evaluate = (x: number[]) => x.filter((_, k) => k % 2 === 1);
    return { inSitu: { ownWorkUs: own(a), evaluateUs: evaluate(a) }, isolated: { ownWorkUs: own(b) } };
  } finally {
    await Promise.all(gateways.map((g) => g.close()));
    await Promise.all(real.map((t) => t.close()));
  }
}

export async function runtimeOverhead(ctx: BenchContext): Promise<RuntimeOverhead> {
  const payload = '4KB';
  const request = sandboxRequest(SIZES[payload]);
  const hosts: Host[] = [];
  const clients: grpc.Client[] = [];
  let gw: Gateway | undefined;
  try {
    const names = ['modifier', 'validator', 'observer'] as const;
    const phases = { modifier: 'modify_operation', validator: 'validate', observer: 'post_commit' } as const;
    const host = await startHost(
      {
        servers: names.map((name) => ({
          kind: 'bare',
          name,
          listen: `unix://${join(ctx.dir, `${name}.sock`)}`,
          bindings: [{ id: `cs-${name}`, phase: phases[name] }],
        })),
      },
      ctx.cpuProfDir ? { cpuProfDir: ctx.cpuProfDir } : {},
    );
    hosts.push(host);
    gw = await startGateway(names.map((n, i) => interceptorEntry(n, host.addresses[i] as string)));
    const gateway = gw;
    const commit = async (req: JsonObject) => sandboxResponse(req);

    const raws = host.addresses.map((a) => {
      const c = rawClient(a);
      clients.push(c);
      return c;
    });
    await Promise.all(raws.map((c) => connect(c)));
    // The raw side sends what the gateway sends: the same three evaluations, built once.
    const rawThree = await rawApiCall(gateway, raws, request, commit, 500);
    const viaGateway = async () => {
      const out = await gateway.intercept({ method: 'CreateSandbox', principal: PRINCIPAL, request, commit });
      if (out.outcome !== 'allowed') throw new Error(`denied: ${out.status?.message}`);
    };
    // Steady state of both paths (and of the servers) before the measured rounds.
    await steadyWarmup(viaGateway, { durationMs: ctx.budget.steadyMs, concurrency: 4, label: 'gateway' });
    await steadyWarmup(rawThree, { durationMs: ctx.budget.steadyMs, concurrency: 4, label: 'raw' });
    const load = { concurrency: 1, durationMs: ctx.budget.windowMs, minCalls: 100 };
    const [g, r] = (await interleave(
      [
        { name: 'gateway', run: () => closedLoop(viaGateway, load) },
        { name: 'raw', run: () => closedLoop(rawThree, load) },
      ],
      { rounds: ctx.budget.rounds + 2, warmup: ctx.budget.warmup, label: 'runtime', progress: ctx.progress },
    )) as [LoadResult[], LoadResult[]];
    for (const x of [...g, ...r]) if (x.errors > 0) throw new Error(`runtime overhead: ${x.firstError}`);
    const fig = (rs: LoadResult[]) => ({
      p50: median(rs.map((x) => x.p50)),
      p99: median(rs.map((x) => x.p99)),
      throughput: median(rs.map((x) => x.throughput)),
    });
    const p50Ratio = pairedRatio(
      g.map((x) => x.p50),
      r.map((x) => x.p50),
    );
    const gateFig = fig(g);
    const rawFig = fig(r);
    ctx.progress(`runtime: gateway/raw p50 ${p50Ratio.toFixed(3)}`);
    const step = await stepBenchmark(ctx);
    ctx.progress(`step: ours/raw ${step.ratio.toFixed(3)}`);
    const parts = await anatomy(ctx, host.addresses, names, request, commit);
    const sum = (x: readonly number[]) => x.reduce((p, q) => p + q, 0);
    ctx.progress(
      `anatomy: runtime's own work ${sum(parts.inSitu.ownWorkUs).toFixed(0)} µs in situ, ${sum(parts.isolated.ownWorkUs).toFixed(0)} µs isolated`,
    );
    const codec = await codecBenchmark(ctx);
    return {
      target: `gateway p50 <= ${RUNTIME_P50_TARGET} x three raw grpc-js calls; step <= ${STEP_TARGET} x raw`,
      payload,
      operationBytes: jsonBytes(request),
      gateway: gateFig,
      raw: rawFig,
      p50Ratio,
      addedMs: gateFig.p50 - rawFig.p50,
      pass: p50Ratio <= RUNTIME_P50_TARGET,
      step,
      anatomy: parts,
      codec,
    };
  } finally {
    for (const c of clients) c.close();
    await gw?.close();
    await Promise.all(hosts.map((h) => h.close()));
  }
}
