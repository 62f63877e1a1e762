// Comparison 3: what a failing interceptor costs the API call.
// (a) fail_open to an interceptor that is down (accepts, never answers): breaker open vs
//     breaker closed (every call waits for the timeout).
// (b) load shedding: a burst of 10x the concurrency limit; the admitted calls' p99 vs unloaded.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Gateway, InterceptOutcome } from '@openshell-interceptors/gateway';
import type { JsonObject } from '@openshell-interceptors/protocol';
import { type Host, startHost } from '../child.js';
import type { BenchContext } from '../context.js';
import { interceptorEntry, startGateway } from '../gateway-setup.js';
import { interleave } from '../interleave.js';
import { closedLoop, type LoadResult } from '../load.js';
import { PRINCIPAL, SIZES, sandboxRequest } from '../payload.js';
import { median, percentile, ratio } from '../stats.js';

export const BREAKER_P99_TARGET_MS = 1;
export const SHED_TARGET = 2;

const TIMEOUT_MS = 100;
const SERVICE_MS = 20;
const LIMIT = 8;

export interface FailureCost {
  readonly target: string;
  readonly breaker: {
    readonly timeoutMs: number;
    /** ms, medians over rounds. */
    readonly openP50: number;
    readonly openP99: number;
    readonly closedP50: number;
    readonly closedP99: number;
    readonly pass: boolean;
  };
  readonly shedding: readonly ShedFigures[];
  readonly pass: boolean;
}

export interface ShedFigures {
  readonly maxConcurrency: number;
  readonly maxQueue: number;
  readonly burst: number;
  readonly serviceMs: number;
  /** ms, medians over rounds. */
  readonly unloadedP99: number;
  readonly admittedP99: number;
  /** Calls per burst: admitted (evaluated) and shed (failed at once). */
  readonly admittedPerBurst: number;
  readonly shedPerBurst: number;
  readonly shedP99: number;
  readonly ratio: number;
  /** Whether this row carries the target (the others show the bound a queue adds). */
  readonly target: boolean;
  readonly pass: boolean;
}

function interceptOnce(gw: Gateway, request: JsonObject): Promise<InterceptOutcome> {
  return gw.intercept({ method: 'CreateSandbox', principal: PRINCIPAL, request });
}

async function breakerPart(ctx: BenchContext, host: Host): Promise<FailureCost['breaker']> {
  const request = sandboxRequest(SIZES['1KB']);
  const entry = (breaker: Record<string, unknown>) =>
    interceptorEntry('down', host.addresses[0] as string, {
      timeout: `${TIMEOUT_MS}ms`,
      failure_policy: 'fail_open',
      breaker,
    });
  const open = await startGateway([
    entry({ enabled: true, volume_threshold: 5, error_threshold_percentage: 50, reset_timeout: '120s' }),
  ]);
  const closed = await startGateway([entry({ enabled: false })]);
  try {
    // Trip the breaker: enough failures in the window.
    await Promise.all(Array.from({ length: 10 }, () => interceptOnce(open, request)));
    if (open.breakerState('down') !== 'open') throw new Error('failure cost: the breaker did not open');
    const check = (o: InterceptOutcome) => {
      if (o.outcome !== 'allowed' || o.evaluations[0]?.decision !== 'error')
        throw new Error(`failure cost: expected a fail_open failure, got ${JSON.stringify(o.evaluations)}`);
    };
    const [o, c] = (await interleave(
      [
        {
          name: 'open',
          run: () =>
            closedLoop(async () => check(await interceptOnce(open, request)), {
              concurrency: 1,
              durationMs: ctx.budget.windowMs / 2,
              // Enough calls that the p99 of one window is not one unlucky scheduling slice.
              minCalls: ctx.quick ? 500 : 1000,
            }),
        },
        {
          name: 'closed',
          run: () =>
            closedLoop(async () => check(await interceptOnce(closed, request)), {
              concurrency: 8,
              durationMs: TIMEOUT_MS,
              maxCalls: 16,
            }),
        },
      ],
      { rounds: ctx.budget.rounds, warmup: 1, label: 'breaker', progress: ctx.progress },
    )) as [LoadResult[], LoadResult[]];
    if (open.breakerState('down') !== 'open')
      throw new Error('failure cost: the breaker closed during the run');
    for (const r of [...o, ...c]) if (r.errors > 0) throw new Error(`failure cost: ${r.firstError}`);
    const openP99 = median(o.map((r) => r.p99));
    return {
      timeoutMs: TIMEOUT_MS,
      openP50: median(o.map((r) => r.p50)),
      openP99,
      closedP50: median(c.map((r) => r.p50)),
      closedP99: median(c.map((r) => r.p99)),
      pass: openP99 <= BREAKER_P99_TARGET_MS,
    };
  } finally {
    await Promise.all([open.close(), closed.close()]);
  }
}

interface BurstRun {
  readonly admitted: number[];
  readonly shed: number[];
  readonly bursts: number;
}

async function sheddingPart(ctx: BenchContext, host: Host, maxQueue: number): Promise<ShedFigures> {
  const request = sandboxRequest(SIZES['1KB']);
  const gw = await startGateway([
    interceptorEntry('slow', host.addresses[1] as string, {
      timeout: '2s',
      failure_policy: 'fail_open',
      max_concurrency: LIMIT,
      max_queue: maxQueue,
      breaker: { enabled: false },
    }),
  ]);
  const burst = LIMIT * 10;
  try {
    const unloaded = () =>
      closedLoop(() => interceptOnce(gw, request), {
        concurrency: 1,
        durationMs: ctx.budget.windowMs,
        minCalls: 20,
      });
    const bursts = async (): Promise<BurstRun> => {
      const admitted: number[] = [];
      const shed: number[] = [];
      let n = 0;
      const stop = performance.now() + ctx.budget.windowMs;
      while (n < 3 || performance.now() < stop) {
        n++;
        await Promise.all(
          Array.from({ length: burst }, async () => {
            const t = performance.now();
            const out = await interceptOnce(gw, request);
            const ms = performance.now() - t;
            const ev = out.evaluations[0];
            if (ev?.decision === 'allow') admitted.push(ms);
            else if (ev?.layer === 'shed') shed.push(ms);
            else throw new Error(`shedding: unexpected ${JSON.stringify(ev)}`);
          }),
        );
      }
      return { admitted, shed, bursts: n };
    };
    const [u, b] = (await interleave<LoadResult | BurstRun>(
      [
        { name: 'unloaded', run: unloaded },
        { name: 'burst', run: bursts },
      ],
      { rounds: ctx.budget.rounds, warmup: 1, label: `shedding queue=${maxQueue}`, progress: ctx.progress },
    )) as [LoadResult[], BurstRun[]];
    const unloadedP99 = median(u.map((r) => r.p99));
    const admittedP99 = median(b.map((r) => percentile(r.admitted, 0.99)));
    const r = ratio(admittedP99, unloadedP99);
    const isTarget = maxQueue === 0;
    return {
      maxConcurrency: LIMIT,
      maxQueue,
      burst,
      serviceMs: SERVICE_MS,
      unloadedP99,
      admittedP99,
      admittedPerBurst: median(b.map((x) => x.admitted.length / x.bursts)),
      shedPerBurst: median(b.map((x) => x.shed.length / x.bursts)),
      shedP99: median(b.map((x) => percentile(x.shed, 0.99))),
      ratio: r,
      target: isTarget,
      pass: isTarget ? r <= SHED_TARGET : true,
    };
  } finally {
    await gw.close();
  }
}

export async function failureCost(ctx: BenchContext): Promise<FailureCost> {
  const host = await startHost(
    {
      servers: [
        {
          kind: 'bare',
          name: 'down',
          listen: `unix://${join(ctx.dir, 'down.sock')}`,
          bindings: [{ id: 'cs-down', phase: 'validate' }],
          hang: true,
        },
        {
          kind: 'bare',
          name: 'slow',
          listen: `unix://${join(ctx.dir, 'slow.sock')}`,
          bindings: [{ id: 'cs-slow', phase: 'validate' }],
          delayMs: SERVICE_MS,
        },
      ],
    },
    ctx.cpuProfDir ? { cpuProfDir: ctx.cpuProfDir } : {},
  );
  try {
    const breaker = await breakerPart(ctx, host);
    ctx.progress(
      `breaker: open p99 ${breaker.openP99.toFixed(3)} ms, closed p99 ${breaker.closedP99.toFixed(1)} ms`,
    );
    const shedding: ShedFigures[] = [];
    for (const q of [0, LIMIT]) {
      const s = await sheddingPart(ctx, host, q);
      ctx.progress(`shedding queue=${q}: admitted p99 / unloaded p99 = ${s.ratio.toFixed(3)}`);
      shedding.push(s);
    }
    return {
      target: `breaker open: p99 <= ${BREAKER_P99_TARGET_MS} ms; under a 10x burst: admitted p99 <= ${SHED_TARGET} x unloaded (max_queue = 0)`,
      breaker,
      shedding,
      pass: breaker.pass && shedding.every((s) => s.pass),
    };
  } finally {
    await host.close();
  }
}
