// Comparison 2: the gateway runtime calling three interceptors (modify, validate,
// post_commit) vs three raw grpc-js calls of the same messages; and the per-binding
// "operation view + patch + re-validation" step vs raw fast-json-patch + one protobuf round trip.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import type { Gateway } from '@openshell-interceptors/gateway';
import {
  canonicalize,
  InterceptorEvaluation,
  InterceptorResult,
  type JsonObject,
  openshellV1,
  operationView,
  route,
} from '@openshell-interceptors/protocol';
import fjp, { type Operation } from 'fast-json-patch';
import { type Host, startHost } from '../child.js';
import type { BenchContext } from '../context.js';
import { interceptorEntry, startGateway } from '../gateway-setup.js';
import { interleave } from '../interleave.js';
import { closedLoop, connect, EVALUATE_PATH, type LoadResult, rawClient } from '../load.js';
import { BENCH_PATCH, evaluation, jsonBytes, SIZES, sandboxRequest, sandboxResponse } from '../payload.js';
import { median, pairedRatio } from '../stats.js';

export const RUNTIME_P50_TARGET = 1.05;
export const STEP_TARGET = 1.2;

const CS = route('CreateSandbox');
const PRINCIPAL = { kind: 'user', subject: 'alice', provider: 'oidc' };

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

    // The raw side sends what the gateway sends: the same three evaluations, built once.
    const first = await gateway.intercept({ method: 'CreateSandbox', principal: PRINCIPAL, request, commit });
    if (first.outcome !== 'allowed' || first.evaluations.length !== 3 || !first.evaluations[0]?.applied)
      throw new Error(`runtime overhead: unexpected outcome ${JSON.stringify(first.evaluations)}`);
    const view = operationView(CS.requestType, canonicalize(CS.requestType, request).message);
    const patched = first.operation;
    const response = first.response as JsonObject;
    const committed = operationView(CS.responseType, canonicalize(CS.responseType, response).message);
    const evs = [
      evaluation('modify_operation', view, 'modifier', 'cs-modifier'),
      evaluation('validate', patched, 'validator', 'cs-validator'),
      evaluation('post_commit', committed, 'observer', 'cs-observer'),
    ];
    const raws = host.addresses.map((a) => {
      const c = rawClient(a);
      clients.push(c);
      return c;
    });
    await Promise.all(raws.map((c) => connect(c)));
    const rawCall = (c: grpc.Client, ev: InterceptorEvaluation) =>
      new Promise<InterceptorResult>((resolve, reject) => {
        c.makeUnaryRequest<InterceptorEvaluation, InterceptorResult>(
          EVALUATE_PATH,
          (m) => Buffer.from(InterceptorEvaluation.encode(m).finish()),
          (b) => InterceptorResult.decode(b),
          ev,
          new grpc.Metadata(),
          { deadline: Date.now() + 500 },
          (err, res) => (err || !res ? reject(err ?? new Error('empty')) : resolve(res)),
        );
      });
    const rawThree = async () => {
      await rawCall(raws[0] as grpc.Client, evs[0] as InterceptorEvaluation);
      await rawCall(raws[1] as grpc.Client, evs[1] as InterceptorEvaluation);
      await commit(request);
      await rawCall(raws[2] as grpc.Client, evs[2] as InterceptorEvaluation);
    };
    const viaGateway = async () => {
      const out = await gateway.intercept({ method: 'CreateSandbox', principal: PRINCIPAL, request, commit });
      if (out.outcome !== 'allowed') throw new Error(`denied: ${out.status?.message}`);
    };
    // JIT warm-up of both paths before the measured rounds.
    await closedLoop(viaGateway, { concurrency: 1, durationMs: 0, minCalls: 300, maxCalls: 300 });
    await closedLoop(rawThree, { concurrency: 1, durationMs: 0, minCalls: 300, maxCalls: 300 });
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
    };
  } finally {
    for (const c of clients) c.close();
    await gw?.close();
    await Promise.all(hosts.map((h) => h.close()));
  }
}
