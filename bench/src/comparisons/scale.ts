// Comparison 4: how the cost of an API call grows with the number of interceptors and with
// the size of the operation (fitted slope, growth exponent), and memory over many calls.
import { join } from 'node:path';
import type { Gateway } from '@openshell-interceptors/gateway';
import type { JsonObject } from '@openshell-interceptors/protocol';
import { type Host, startHost } from '../child.js';
import type { BenchContext } from '../context.js';
import { interceptorEntry, startGateway } from '../gateway-setup.js';
import { interleave } from '../interleave.js';
import { closedLoop, connect, type LoadResult, rawClient, steadyWarmup } from '../load.js';
import { jsonBytes, PRINCIPAL, SIZES, sandboxRequest, sandboxResponse } from '../payload.js';
import { rawApiCall } from '../raw-gateway.js';
import { growthExponent, linearFit, median } from '../stats.js';

/** A growth exponent above this is worse than linear (the fit's noise allowance). */
export const LINEAR_EXPONENT_LIMIT = 1.15;
export const MEMORY_GROWTH_LIMIT = 0.1;

export interface ScalePoint {
  readonly x: number;
  readonly label: string;
  /** ms per API call (median over rounds of each round's p50). */
  readonly p50: number;
  /** CPU time of the gateway process per API call, µs (median over rounds). */
  readonly cpuUs: number;
}

export interface ScaleSeries {
  readonly what: string;
  readonly unit: string;
  readonly points: readonly ScalePoint[];
  /** Least-squares fit of p50 latency: ms per unit. */
  readonly slopeMs: number;
  readonly interceptMs: number;
  readonly r2: number;
  /** Growth exponent of the marginal latency and CPU between the two largest points (1 = linear). */
  readonly exponent: number;
  readonly cpuExponent: number;
  readonly pass: boolean;
  /**
   * The same API calls as three raw grpc-js calls with the generated codec (size series
   * only): how the transport alone grows over the same points, for reference.
   */
  readonly raw?: {
    readonly points: readonly ScalePoint[];
    readonly exponent: number;
    readonly cpuExponent: number;
  };
}

export interface MemoryFigures {
  readonly calls: number;
  readonly gateway: {
    readonly rssBefore: number;
    readonly rssAfter: number;
    readonly growth: number;
    readonly heapBefore: number;
    readonly heapAfter: number;
  };
  readonly interceptor: { readonly rssBefore: number; readonly rssAfter: number; readonly growth: number };
  readonly pass: boolean;
}

export interface Scale {
  readonly target: string;
  readonly interceptors: ScaleSeries;
  readonly size: ScaleSeries;
  readonly memory: MemoryFigures;
  readonly pass: boolean;
}

interface Run extends LoadResult {
  readonly cpuUs: number;
}

/** p50 latency and gateway CPU per call over one window. */
async function measure(call: () => Promise<unknown>, windowMs: number, minCalls: number): Promise<Run> {
  const before = process.cpuUsage();
  const r = await closedLoop(call, { concurrency: 1, durationMs: windowMs, minCalls });
  const u = process.cpuUsage(before);
  if (r.errors > 0) throw new Error(`scale: ${r.firstError}`);
  return { ...r, cpuUs: (u.user + u.system) / r.count };
}

function series(what: string, unit: string, xs: number[], labels: string[], runs: Run[][]): ScaleSeries {
  const points = xs.map((x, i) => ({
    x,
    label: labels[i] as string,
    p50: median((runs[i] as Run[]).map((r) => r.p50)),
    cpuUs: median((runs[i] as Run[]).map((r) => r.cpuUs)),
  }));
  const fit = linearFit(
    points.map((p) => p.x),
    points.map((p) => p.p50),
  );
  const exponent = growthExponent(
    points.map((p) => p.x),
    points.map((p) => p.p50),
  );
  const cpuExponent = growthExponent(
    points.map((p) => p.x),
    points.map((p) => p.cpuUs),
  );
  return {
    what,
    unit,
    points,
    slopeMs: fit.slope,
    interceptMs: fit.intercept,
    r2: fit.r2,
    exponent,
    cpuExponent,
    pass: exponent <= LINEAR_EXPONENT_LIMIT && cpuExponent <= LINEAR_EXPONENT_LIMIT,
  };
}

async function byInterceptors(ctx: BenchContext, host: Host): Promise<ScaleSeries> {
  const counts = [1, 4, 16];
  const request = sandboxRequest(SIZES['4KB']);
  const gateways: Gateway[] = [];
  try {
    for (const n of counts) {
      gateways.push(
        await startGateway(
          Array.from({ length: n }, (_, i) => interceptorEntry(`v${i}`, host.addresses[i] as string)),
        ),
      );
    }
    for (const [i, gw] of gateways.entries())
      await steadyWarmup(() => gw.intercept({ method: 'CreateSandbox', principal: PRINCIPAL, request }), {
        durationMs: ctx.budget.steadyMs / 2,
        concurrency: 4,
        label: `${counts[i]} interceptors`,
      });
    const runs = await interleave(
      gateways.map((gw, i) => ({
        name: `${counts[i]}`,
        run: () =>
          measure(
            () => gw.intercept({ method: 'CreateSandbox', principal: PRINCIPAL, request }),
            ctx.budget.windowMs,
            30,
          ),
      })),
      {
        rounds: ctx.budget.rounds,
        warmup: ctx.budget.warmup,
        label: 'scale interceptors',
        progress: ctx.progress,
      },
    );
    for (const [i, gw] of gateways.entries()) {
      const out = await gw.intercept({ method: 'CreateSandbox', principal: PRINCIPAL, request });
      if (out.evaluations.length !== counts[i] || out.evaluations.some((e) => e.decision !== 'allow'))
        throw new Error(`scale: expected ${counts[i]} allowed evaluations`);
    }
    return series(
      'validate interceptors per API call (4KB operation)',
      'interceptor',
      counts,
      counts.map(String),
      runs,
    );
  } finally {
    await Promise.all(gateways.map((g) => g.close()));
  }
}

async function bySize(ctx: BenchContext, host: Host): Promise<ScaleSeries> {
  const labels = (
    ctx.quick ? ['1KB', '16KB', '256KB', '1MB'] : ['1KB', '4KB', '16KB', '64KB', '256KB', '1MB']
  ) as (keyof typeof SIZES)[];
  const requests = labels.map((l) => sandboxRequest(SIZES[l]));
  const base = 16; // modifier, validator, observer are servers 16..18
  const addresses = [0, 1, 2].map((i) => host.addresses[base + i] as string);
  const gw = await startGateway(
    ['modifier', 'validator', 'observer'].map((n, i) =>
      interceptorEntry(n, addresses[i] as string, {
        timeout: '5s',
        max_response_bytes: 4_194_304,
      }),
    ),
  );
  const clients = addresses.map((a) => rawClient(a));
  try {
    await Promise.all(clients.map((c) => connect(c)));
    const commit = async (req: JsonObject) => sandboxResponse(req);
    const raws = await Promise.all(requests.map((r) => rawApiCall(gw, clients, r, commit, 5_000)));
    for (const [i, request] of requests.entries()) {
      await steadyWarmup(
        () => gw.intercept({ method: 'CreateSandbox', principal: PRINCIPAL, request, commit }),
        {
          durationMs: ctx.budget.steadyMs / 4,
          concurrency: 2,
          label: `gateway ${labels[i]}`,
        },
      );
      await steadyWarmup(raws[i] as () => Promise<unknown>, {
        durationMs: ctx.budget.steadyMs / 4,
        concurrency: 2,
        label: `raw ${labels[i]}`,
      });
    }
    const runs = await interleave(
      [
        ...requests.map((request, i) => ({
          name: labels[i] as string,
          run: () =>
            measure(
              () => gw.intercept({ method: 'CreateSandbox', principal: PRINCIPAL, request, commit }),
              ctx.budget.windowMs,
              3,
            ),
        })),
        ...raws.map((raw, i) => ({
          name: `raw ${labels[i]}`,
          run: () => measure(raw, ctx.budget.windowMs, 3),
        })),
      ],
      { rounds: ctx.budget.rounds, warmup: 1, label: 'scale size', progress: ctx.progress },
    );
    const out = await gw.intercept({
      method: 'CreateSandbox',
      principal: PRINCIPAL,
      request: requests.at(-1) as JsonObject,
      commit,
    });
    if (out.evaluations.length !== 3 || out.evaluations.some((e) => e.decision !== 'allow'))
      throw new Error(
        `scale: the largest operation was not evaluated: ${JSON.stringify(out.evaluations.map((e) => e.error))}`,
      );
    const kb = requests.map((r) => jsonBytes(r) / 1024);
    const ours = series('operation size (modify + validate + post_commit)', 'KB', kb, labels, runs);
    const raw = series('raw', 'KB', kb, labels, runs.slice(requests.length));
    return {
      ...ours,
      raw: { points: raw.points, exponent: raw.exponent, cpuExponent: raw.cpuExponent },
    };
  } finally {
    for (const c of clients) c.close();
    await gw.close();
  }
}

async function memory(ctx: BenchContext, host: Host): Promise<MemoryFigures> {
  const calls = ctx.quick ? 20_000 : 100_000;
  const request = sandboxRequest(SIZES['1KB']);
  const gw = await startGateway([interceptorEntry('sdk', host.addresses.at(-1) as string)]);
  try {
    const run = async (n: number) => {
      const r = await closedLoop(
        () => gw.intercept({ method: 'CreateSandbox', principal: PRINCIPAL, request }),
        {
          concurrency: 64,
          durationMs: 0,
          minCalls: n,
          maxCalls: n,
        },
      );
      if (r.errors > 0) throw new Error(`memory: ${r.firstError}`);
      ctx.progress(`memory: ${n} calls at ${r.throughput.toFixed(0)}/s`);
    };
    const settle = async () => {
      globalThis.gc?.();
      globalThis.gc?.();
      await new Promise((r) => setTimeout(r, 200));
      globalThis.gc?.();
      return process.memoryUsage();
    };
    // Warm up at the same concurrency so the heap has grown to its working size before the baseline.
    await run(Math.round(calls / 5));
    const before = await settle();
    const ibefore = await host.usage(true);
    await run(calls);
    const after = await settle();
    const iafter = await host.usage(true);
    const growth = after.rss / before.rss - 1;
    const igrowth = iafter.rss / ibefore.rss - 1;
    return {
      calls,
      gateway: {
        rssBefore: before.rss,
        rssAfter: after.rss,
        growth,
        heapBefore: before.heapUsed,
        heapAfter: after.heapUsed,
      },
      interceptor: { rssBefore: ibefore.rss, rssAfter: iafter.rss, growth: igrowth },
      pass: growth <= MEMORY_GROWTH_LIMIT && igrowth <= MEMORY_GROWTH_LIMIT,
    };
  } finally {
    await gw.close();
  }
}

export async function scale(ctx: BenchContext): Promise<Scale> {
  if (typeof globalThis.gc !== 'function') throw new Error('scale: run node with --expose-gc');
  const sock = (name: string) => `unix://${join(ctx.dir, `${name}.sock`)}`;
  const host = await startHost(
    {
      servers: [
        ...Array.from({ length: 16 }, (_, i) => ({
          kind: 'bare' as const,
          name: `v${i}`,
          listen: sock(`v${i}`),
          bindings: [{ id: `cs-v${i}`, phase: 'validate' as const }],
        })),
        ...(['modifier', 'validator', 'observer'] as const).map((name, i) => ({
          kind: 'bare' as const,
          name,
          listen: sock(name),
          bindings: [
            {
              id: `cs-${name}`,
              phase: (['modify_operation', 'validate', 'post_commit'] as const)[i] as 'validate',
            },
          ],
        })),
        { kind: 'sdk' as const, name: 'sdk', listen: sock('sdk'), validateOnly: true },
      ],
    },
    ctx.cpuProfDir ? { cpuProfDir: ctx.cpuProfDir } : {},
  );
  try {
    const interceptors = await byInterceptors(ctx, host);
    ctx.progress(
      `scale interceptors: slope ${(interceptors.slopeMs * 1000).toFixed(0)} µs/interceptor, exponent ${interceptors.exponent.toFixed(2)}`,
    );
    const size = await bySize(ctx, host);
    ctx.progress(
      `scale size: slope ${(size.slopeMs * 1000).toFixed(1)} µs/KB, exponent ${size.exponent.toFixed(2)}`,
    );
    const mem = await memory(ctx, host);
    ctx.progress(
      `memory: gateway rss ${(mem.gateway.growth * 100).toFixed(1)}%, interceptor rss ${(mem.interceptor.growth * 100).toFixed(1)}%`,
    );
    return {
      target: `cost grows linearly or better (growth exponent <= ${LINEAR_EXPONENT_LIMIT}); RSS growth over ${mem.calls} calls <= ${MEMORY_GROWTH_LIMIT * 100}%`,
      interceptors,
      size,
      memory: mem,
      pass: interceptors.pass && size.pass && mem.pass,
    };
  } finally {
    await host.close();
  }
}
