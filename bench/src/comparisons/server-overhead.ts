// Comparison 1: an SDK interceptor vs a bare @grpc/grpc-js server doing the same work.
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { TokenMinter } from '@openshell-interceptors/gateway';
import { defaultAudience, gatewayIssuer, InterceptorResult } from '@openshell-interceptors/protocol';
import { type Host, startHost } from '../child.js';
import { type BenchContext, makeKeys } from '../context.js';
import type { ServerSpec } from '../host.js';
import { interleave } from '../interleave.js';
import {
  closedLoop,
  connect,
  EVALUATE_PATH,
  type LoadResult,
  rawClient,
  rawUnary,
  steadyWarmup,
} from '../load.js';
import { encodeEvaluation, evaluation, jsonBytes, SIZES, sandboxRequest } from '../payload.js';
import { median, pairedRatio } from '../stats.js';

export const SERVER_TARGET = 0.95;

export interface SideFigures {
  /** Calls per second (median over rounds). */
  readonly throughput: number;
  /** Latency, ms (medians over rounds of each round's percentile). */
  readonly p50: number;
  readonly p99: number;
  /** CPU time of the server process per call, µs (median over rounds). */
  readonly serverCpuUs: number;
}

export interface ServerCell {
  readonly payload: string;
  readonly operationBytes: number;
  readonly evaluationBytes: number;
  readonly concurrency: number;
  readonly transport: 'tcp' | 'unix';
  readonly auth: boolean;
  readonly sdk: SideFigures;
  readonly bare: SideFigures;
  /** Median of per-round sdk/bare throughput ratios. */
  readonly throughputRatio: number;
  readonly cpuRatio: number;
  readonly pass: boolean;
}

export interface ServerOverhead {
  readonly target: string;
  readonly cells: readonly ServerCell[];
  readonly pass: boolean;
}

interface Run extends LoadResult {
  readonly serverCpuUs: number;
}

const NAME = 'bench';
const BINDING = 'create-sandbox';

function figures(runs: readonly Run[]): SideFigures {
  return {
    throughput: median(runs.map((r) => r.throughput)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    serverCpuUs: median(runs.map((r) => r.serverCpuUs)),
  };
}

export async function serverOverhead(ctx: BenchContext): Promise<ServerOverhead> {
  const keys = await makeKeys(ctx.dir);
  const audience = defaultAudience(NAME);
  const auth = { publicKeyPem: keys.publicKeyPem, keyId: keys.keyId, audience };
  const minter = new TokenMinter(keys.privateKey, keys.keyId, gatewayIssuer('openshell'), 900);
  const token = await minter.token(audience);

  const variants = [
    { transport: 'tcp', auth: false },
    { transport: 'tcp', auth: true },
    { transport: 'unix', auth: false },
    { transport: 'unix', auth: true },
  ] as const;
  const specs = (kind: 'sdk' | 'bare'): ServerSpec[] =>
    variants.map((v) => {
      const listen =
        v.transport === 'tcp'
          ? '127.0.0.1:0'
          : `unix://${join(ctx.dir, `${kind}-${v.auth ? 'auth' : 'open'}.sock`)}`;
      return kind === 'sdk'
        ? { kind, name: NAME, listen, ...(v.auth ? { auth } : {}) }
        : {
            kind,
            name: NAME,
            listen,
            bindings: [{ id: BINDING, phase: 'modify_operation' }],
            ...(v.auth ? { auth } : {}),
          };
    });

  const hosts: Host[] = [];
  const clients: grpc.Client[] = [];
  try {
    const opts = ctx.cpuProfDir ? { cpuProfDir: ctx.cpuProfDir } : {};
    const sdk = await startHost({ servers: specs('sdk') }, opts);
    hosts.push(sdk);
    const bare = await startHost({ servers: specs('bare') }, opts);
    hosts.push(bare);
    const target = (h: Host, i: number) => {
      const c = rawClient(h.addresses[i] as string);
      clients.push(c);
      return c;
    };
    const sides = variants.map((v, i) => ({ ...v, sdk: target(sdk, i), bare: target(bare, i) }));
    await Promise.all(clients.map((c) => connect(c)));
    const metadata = (auth: boolean) => () => {
      const m = new grpc.Metadata();
      if (auth) m.set('authorization', `Bearer ${token}`);
      return m;
    };

    const payloads = ['4KB', '256KB'] as const;
    const encoded = Object.fromEntries(
      payloads.map((p) => [
        p,
        encodeEvaluation(evaluation('modify_operation', sandboxRequest(SIZES[p]), NAME, BINDING)),
      ]),
    ) as Record<(typeof payloads)[number], Buffer>;
    // Steady state before the first cell: every server of both processes, both payloads.
    for (const v of sides) {
      const md = metadata(v.auth);
      for (const [name, c] of [
        ['sdk', v.sdk],
        ['bare', v.bare],
      ] as const) {
        const label = `${name} ${v.transport} auth=${v.auth ? 'on' : 'off'}`;
        await steadyWarmup(() => rawUnary(c, EVALUATE_PATH, encoded['4KB'], md()), {
          durationMs: ctx.budget.steadyMs,
          label,
        });
        await steadyWarmup(() => rawUnary(c, EVALUATE_PATH, encoded['256KB'], md()), {
          durationMs: ctx.budget.steadyMs / 4,
          label,
        });
      }
      ctx.progress(`server: warmed ${v.transport} auth=${v.auth ? 'on' : 'off'}`);
    }

    const cells: ServerCell[] = [];
    for (const payload of payloads) {
      const operation = sandboxRequest(SIZES[payload]);
      const bytes = encoded[payload];
      for (const concurrency of [1, 64]) {
        for (const v of sides) {
          const md = metadata(v.auth);
          // Both answer the same thing: allowed, one patch.
          for (const c of [v.sdk, v.bare]) {
            const reply = InterceptorResult.decode(await rawUnary(c, EVALUATE_PATH, bytes, md()));
            if (!reply.allowed || reply.patches.length !== 1)
              throw new Error(`server overhead: unexpected reply ${JSON.stringify(reply)}`);
          }
          const big = payload === '256KB';
          const side = (name: string, client: grpc.Client, host: Host) => ({
            name,
            async run(): Promise<Run> {
              const before = await host.usage();
              const r = await closedLoop(() => rawUnary(client, EVALUATE_PATH, bytes, md()), {
                concurrency,
                durationMs: ctx.budget.windowMs,
                minCalls: big ? 20 : 200,
                maxCalls: big ? 20_000 : 200_000,
              });
              const after = await host.usage();
              if (r.errors > 0)
                throw new Error(`server overhead (${name}): ${r.errors} errors: ${r.firstError}`);
              return { ...r, serverCpuUs: ((after.cpuMs - before.cpuMs) * 1000) / r.count };
            },
          });
          const label = `server ${payload} c=${concurrency} ${v.transport} auth=${v.auth ? 'on' : 'off'}`;
          const [sdkRuns, bareRuns] = (await interleave(
            [side('sdk', v.sdk, sdk), side('bare', v.bare, bare)],
            {
              rounds: ctx.budget.rounds,
              warmup: ctx.budget.warmup,
              label,
              progress: ctx.progress,
            },
          )) as [Run[], Run[]];
          const throughputRatio = pairedRatio(
            sdkRuns.map((r) => r.throughput),
            bareRuns.map((r) => r.throughput),
          );
          const cpuRatio = pairedRatio(
            sdkRuns.map((r) => r.serverCpuUs),
            bareRuns.map((r) => r.serverCpuUs),
          );
          cells.push({
            payload,
            operationBytes: jsonBytes(operation),
            evaluationBytes: bytes.length,
            concurrency,
            transport: v.transport,
            auth: v.auth,
            sdk: figures(sdkRuns),
            bare: figures(bareRuns),
            throughputRatio,
            cpuRatio,
            pass: throughputRatio >= SERVER_TARGET,
          });
          ctx.progress(
            `${label}: sdk/bare throughput ${throughputRatio.toFixed(3)}, server cpu ${cpuRatio.toFixed(3)}`,
          );
        }
      }
    }
    return {
      target: `SDK throughput >= ${SERVER_TARGET} x bare grpc-js, every cell`,
      cells,
      pass: cells.every((c) => c.pass),
    };
  } finally {
    for (const c of clients) c.close();
    await Promise.all(hosts.map((h) => h.close()));
  }
}
