// Load generation: a closed loop of `concurrency` callers for a bounded time and count.
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { type LatencySummary, summarize } from './stats.js';

export interface LoadOptions {
  readonly concurrency: number;
  /** Stop starting calls after this long. */
  readonly durationMs: number;
  /** Stop starting calls after this many (a bound for slow cases). */
  readonly maxCalls?: number;
  /** At least this many calls, even past durationMs (bounded by maxCalls). */
  readonly minCalls?: number;
}

export interface LoadResult extends LatencySummary {
  readonly errors: number;
  readonly firstError?: string;
  readonly elapsedMs: number;
  /** Completed calls per second. */
  readonly throughput: number;
  readonly latencies: readonly number[];
}

/** Run `call` from `concurrency` loops; each loop starts its next call when the last one settles. */
export async function closedLoop(call: () => Promise<unknown>, opts: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let started = 0;
  const maxCalls = opts.maxCalls ?? Number.POSITIVE_INFINITY;
  const minCalls = Math.min(opts.minCalls ?? 0, maxCalls);
  const t0 = performance.now();
  const stopAt = t0 + opts.durationMs;
  const more = () => started < maxCalls && (performance.now() < stopAt || started < minCalls);
  const loop = async () => {
    while (more()) {
      started++;
      const s = performance.now();
      try {
        await call();
        latencies.push(performance.now() - s);
      } catch (e) {
        errors++;
        firstError ??= e instanceof Error ? e.message : String(e);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, loop));
  const elapsedMs = performance.now() - t0;
  return {
    ...summarize(latencies),
    errors,
    ...(firstError !== undefined ? { firstError } : {}),
    elapsedMs,
    throughput: (latencies.length / elapsedMs) * 1000,
    latencies,
  };
}

/**
 * Load a side until its process is in steady state before anything is measured. A process
 * under gRPC load takes seconds (thousands of calls) to get there: V8 tiers its hot code up
 * and sizes its young generation to the allocation rate, and until then a call costs up to
 * 3× more. One unmeasured window per side was not enough, and the side with more code (the
 * SDK, the runtime) paid for it more: its first cells measured warm-up, not its cost.
 */
export async function steadyWarmup(
  call: () => Promise<unknown>,
  opts: { readonly durationMs: number; readonly concurrency?: number; readonly label?: string },
): Promise<void> {
  const r = await closedLoop(call, {
    concurrency: opts.concurrency ?? 8,
    durationMs: opts.durationMs,
    minCalls: 1,
  });
  if (r.errors > 0) throw new Error(`warm-up${opts.label ? ` (${opts.label})` : ''}: ${r.firstError}`);
}

const identity = (b: Buffer) => b;

/** A gRPC client that sends pre-encoded request bytes and keeps the reply as bytes. */
export function rawClient(address: string): grpc.Client {
  const target = address.startsWith('unix://') ? address : address.replace(/^http:\/\//, '');
  return new grpc.Client(target, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  });
}

/** The deadline every benchmark call carries, as the gateway's calls do (generous: never the limit). */
export const CALL_DEADLINE_MS = 30_000;

export function rawUnary(
  client: grpc.Client,
  path: string,
  request: Buffer,
  metadata?: grpc.Metadata,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest<Buffer, Buffer>(
      path,
      identity,
      identity,
      request,
      metadata ?? new grpc.Metadata(),
      { deadline: Date.now() + CALL_DEADLINE_MS },
      (err, res) => (err || !res ? reject(err ?? new Error('empty reply')) : resolve(res)),
    );
  });
}

export const EVALUATE_PATH = '/openshell.gateway_interceptor.v1.GatewayInterceptor/Evaluate';

/** Wait until a channel is connected (first call latency is not the benchmark's business). */
export function connect(client: grpc.Client, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) =>
    client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())),
  );
}
