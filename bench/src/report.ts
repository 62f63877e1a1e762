// The report: one JSON object with every figure, aligned text tables, and the generated part
// of docs/benchmarks.md.
import { cpus, loadavg, totalmem } from 'node:os';
import type { FailureCost } from './comparisons/failure-cost.js';
import type { RuntimeOverhead } from './comparisons/runtime-overhead.js';
import type { Scale } from './comparisons/scale.js';
import type { ServerOverhead } from './comparisons/server-overhead.js';

export interface Machine {
  readonly cpuModel: string;
  readonly cores: number;
  readonly node: string;
  readonly platform: string;
  readonly memoryGiB: number;
  /** 1-minute load average at the start and at the end of the run (others share the machine). */
  readonly loadStart: number;
  loadEnd: number;
}

export function machine(): Machine {
  const c = cpus();
  return {
    cpuModel: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    loadStart: loadavg()[0] ?? 0,
    loadEnd: Number.NaN,
  };
}

export interface Comparisons {
  server?: ServerOverhead;
  runtime?: RuntimeOverhead;
  failure?: FailureCost;
  scale?: Scale;
}

export interface Target {
  readonly id: string;
  readonly description: string;
  readonly measured: string;
  readonly limit: string;
  readonly pass: boolean;
}

export interface Report {
  readonly tool: '@openshell-interceptors/bench';
  readonly mode: 'full' | 'quick';
  readonly startedAt: string;
  readonly durationSeconds: number;
  readonly machine: Machine;
  readonly budget: {
    readonly windowMs: number;
    readonly rounds: number;
    readonly warmup: number;
    readonly steadyMs: number;
  };
  readonly comparisons: Comparisons;
  readonly targets: readonly Target[];
  readonly pass: boolean;
}

const f = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
const pct = (n: number) => `${n >= 0 ? '+' : ''}${(n * 100).toFixed(1)}%`;
const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

export function targets(c: Comparisons): Target[] {
  const out: Target[] = [];
  if (c.server) {
    for (const cell of c.server.cells) {
      out.push({
        id: `server.${cell.payload}.c${cell.concurrency}.${cell.transport}.auth-${cell.auth ? 'on' : 'off'}`,
        description: `SDK vs bare throughput, ${cell.payload} c=${cell.concurrency} ${cell.transport} auth ${cell.auth ? 'on' : 'off'}`,
        measured: `${f(cell.throughputRatio, 3)}x`,
        limit: '>= 0.95x',
        pass: cell.pass,
      });
    }
  }
  if (c.runtime) {
    out.push({
      id: 'runtime.p50',
      description: 'gateway (modify+validate+post_commit) vs three raw grpc-js calls, p50',
      measured: `${f(c.runtime.p50Ratio, 3)}x (${pct(c.runtime.p50Ratio - 1)})`,
      limit: '<= 1.05x',
      pass: c.runtime.pass,
    });
    out.push({
      id: 'runtime.step',
      description: `view + patch + re-validation vs fast-json-patch + protobuf round trip (${c.runtime.step.payload})`,
      measured: `${f(c.runtime.step.ratio, 3)}x`,
      limit: '<= 1.2x',
      pass: c.runtime.step.pass,
    });
  }
  if (c.failure) {
    const b = c.failure.breaker;
    out.push({
      id: 'failure.breaker',
      description: `fail_open call to a hung interceptor, breaker open (closed: ${f(b.closedP99, 1)} ms)`,
      measured: `p99 ${f(b.openP99, 3)} ms`,
      limit: '<= 1 ms',
      pass: b.pass,
    });
    for (const s of c.failure.shedding.filter((x) => x.target)) {
      out.push({
        id: 'failure.shedding',
        description: `admitted p99 under a ${s.burst}-call burst (limit ${s.maxConcurrency}, queue ${s.maxQueue}) vs unloaded`,
        measured: `${f(s.ratio, 2)}x`,
        limit: '<= 2x',
        pass: s.pass,
      });
    }
  }
  if (c.scale) {
    for (const s of [c.scale.interceptors, c.scale.size]) {
      out.push({
        id: `scale.${s.unit === 'KB' ? 'size' : 'interceptors'}`,
        description: `growth of cost per call with ${s.what}`,
        measured: `CPU exponent ${f(s.cpuExponent)}, latency exponent ${f(s.exponent)}${s.raw ? ` (three raw calls: ${f(s.raw.cpuExponent)}, ${f(s.raw.exponent)})` : ''}`,
        limit: '<= 1.15 (linear)',
        pass: s.pass,
      });
    }
    const m = c.scale.memory;
    out.push({
      id: 'scale.memory',
      description: `RSS growth over ${m.calls} calls (gateway; SDK interceptor)`,
      measured: `${pct(m.gateway.growth)}; ${pct(m.interceptor.growth)}`,
      limit: '<= +10%',
      pass: m.pass,
    });
  }
  return out;
}

/** Aligned text table (a header row, a rule, then the rows). */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** A markdown table (numbers right-aligned). */
export function markdownTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const numeric = headers.map(
    (_, i) => rows.length > 0 && rows.every((r) => /^[-+]?[0-9.]/.test(r[i] ?? '')),
  );
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${headers.map(esc).join(' | ')} |`,
    `|${numeric.map((n) => (n ? '---:' : '---')).join('|')}|`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

interface Section {
  readonly title: string;
  readonly headers: readonly string[];
  readonly rows: readonly (readonly string[])[];
  readonly note?: string;
}

export function sections(r: Report): Section[] {
  const c = r.comparisons;
  const out: Section[] = [];
  out.push({
    title: 'Targets',
    headers: ['target', 'measured', 'limit', 'result'],
    rows: r.targets.map((t) => [t.description, t.measured, t.limit, t.pass ? 'pass' : 'MISS']),
  });
  if (c.server) {
    out.push({
      title: '1. Server overhead: SDK interceptor vs bare @grpc/grpc-js',
      headers: [
        'payload',
        'conc',
        'transport',
        'auth',
        'SDK req/s',
        'bare req/s',
        'ratio',
        'SDK p50/p99 ms',
        'bare p50/p99 ms',
        'server CPU µs/call SDK/bare',
      ],
      rows: c.server.cells.map((x) => [
        x.payload,
        String(x.concurrency),
        x.transport,
        x.auth ? 'on' : 'off',
        f(x.sdk.throughput, 0),
        f(x.bare.throughput, 0),
        f(x.throughputRatio, 3),
        `${f(x.sdk.p50)} / ${f(x.sdk.p99)}`,
        `${f(x.bare.p50)} / ${f(x.bare.p99)}`,
        `${f(x.sdk.serverCpuUs, 0)} / ${f(x.bare.serverCpuUs, 0)}`,
      ]),
      note: 'ratio: median over rounds of SDK/bare throughput measured side by side in each round.',
    });
  }
  if (c.runtime) {
    const x = c.runtime;
    out.push({
      title: `2. Runtime overhead: gateway runtime vs three raw grpc-js calls (${x.payload}, concurrency 1)`,
      headers: ['side', 'p50 ms', 'p99 ms', 'calls/s'],
      rows: [
        [
          'gateway runtime (modify, validate, post_commit)',
          f(x.gateway.p50, 3),
          f(x.gateway.p99, 3),
          f(x.gateway.throughput, 0),
        ],
        ['three raw grpc-js calls', f(x.raw.p50, 3), f(x.raw.p99, 3), f(x.raw.throughput, 0)],
        ['ratio (p50, paired by round)', f(x.p50Ratio, 3), '', ''],
        ['added per API call (p50)', f(x.addedMs, 3), '', ''],
      ],
    });
    out.push({
      title: `2b. Per modify binding: operation view + patch + re-validation (${x.step.payload})`,
      headers: ['step', 'µs'],
      rows: [
        ['ours: view, patch on the full request, strict parse and canonical render', f(x.step.oursUs, 1)],
        ['raw: deep clone + fast-json-patch + ts-proto fromJSON + encode + decode', f(x.step.rawUs, 1)],
        ['ratio (paired by round)', f(x.step.ratio, 3)],
      ],
    });
    const a = x.anatomy;
    const sum = (v: readonly number[]) => v.reduce((p, q) => p + q, 0);
    const own = [
      'before the first Evaluate',
      'between modify and validate',
      'between validate and post_commit (commit included)',
      'after the last Evaluate',
    ];
    out.push({
      title: `2c. Inside one API call (${x.payload}): the runtime's own work and its three Evaluate calls`,
      headers: ['segment', 'in situ µs', 'isolated µs'],
      rows: [
        ...own.map((label, k) => [
          `runtime: ${label}`,
          f(a.inSitu.ownWorkUs[k] ?? 0, 0),
          f(a.isolated.ownWorkUs[k] ?? 0, 0),
        ]),
        ['runtime: total own work', f(sum(a.inSitu.ownWorkUs), 0), f(sum(a.isolated.ownWorkUs), 0)],
        ['the three Evaluate calls (transport)', f(sum(a.inSitu.evaluateUs), 0), ''],
      ],
      note: 'Medians per segment, timed by a wrapping transport. In situ: over the real channels, as in table 2. Isolated: the same gateway code with transports that answer at once with the same results.',
    });
    out.push({
      title: '2d. The Evaluate request codec (in process)',
      headers: ['payload', 'bytes', 'encode µs generated / ours', 'decode µs generated / ours'],
      rows: x.codec.map((c) => [
        c.payload,
        String(c.bytes),
        `${f(c.generatedEncodeUs, 1)} / ${f(c.oursEncodeUs, 1)}`,
        `${f(c.generatedDecodeUs, 1)} / ${f(c.oursDecodeUs, 1)}`,
      ]),
      note: "generated: ts-proto's InterceptorEvaluation (what the raw and bare sides use). ours: the protocol package's encodeEvaluation (the gateway) and decodeEvaluation (the SDK): the same bytes and values.",
    });
  }
  if (c.failure) {
    const b = c.failure.breaker;
    out.push({
      title: `3. Failure cost: fail_open to a hung interceptor (timeout ${b.timeoutMs} ms)`,
      headers: ['breaker', 'p50 ms', 'p99 ms'],
      rows: [
        ['open', f(b.openP50, 3), f(b.openP99, 3)],
        ['closed (every call waits for the timeout)', f(b.closedP50, 1), f(b.closedP99, 1)],
      ],
    });
    out.push({
      title: '3b. Load shedding: a burst of 10x the concurrency limit (interceptor service time 20 ms)',
      headers: [
        'max_concurrency',
        'max_queue',
        'burst',
        'admitted/burst',
        'shed/burst',
        'unloaded p99 ms',
        'admitted p99 ms',
        'ratio',
        'shed p99 ms',
      ],
      rows: c.failure.shedding.map((s) => [
        String(s.maxConcurrency),
        String(s.maxQueue),
        String(s.burst),
        f(s.admittedPerBurst, 0),
        f(s.shedPerBurst, 0),
        f(s.unloadedP99, 1),
        f(s.admittedP99, 1),
        f(s.ratio, 2),
        f(s.shedP99, 1),
      ]),
    });
  }
  if (c.scale) {
    for (const s of [c.scale.interceptors, c.scale.size]) {
      const raw = s.raw;
      out.push({
        title: `4. Scale: ${s.what}`,
        headers: [
          s.unit === 'KB' ? 'operation' : 'interceptors',
          'p50 ms',
          'gateway CPU µs/call',
          ...(raw ? ['three raw calls: p50 ms', 'CPU µs/call'] : []),
        ],
        rows: [
          ...s.points.map((p, i) => [
            p.label,
            f(p.p50, 3),
            f(p.cpuUs, 0),
            ...(raw
              ? [f(raw.points[i]?.p50 ?? Number.NaN, 3), f(raw.points[i]?.cpuUs ?? Number.NaN, 0)]
              : []),
          ]),
          [`fit: ms per ${s.unit}`, f(s.slopeMs, 4), `r² ${f(s.r2, 3)}`, ...(raw ? ['', ''] : [])],
          [
            'growth exponent (1 = linear)',
            `latency ${f(s.exponent)}`,
            `CPU ${f(s.cpuExponent)}`,
            ...(raw ? [`latency ${f(raw.exponent)}`, `CPU ${f(raw.cpuExponent)}`] : []),
          ],
        ],
        ...(raw
          ? {
              note: 'Three raw calls: the same evaluations sent with the generated codec over their own channels to the same servers, measured in the same rounds (no target; it shows how the transport alone grows).',
            }
          : {}),
      });
    }
    const m = c.scale.memory;
    out.push({
      title: `4b. Memory over ${m.calls} calls (after warm-up, forced GC before and after)`,
      headers: ['process', 'RSS before', 'RSS after', 'growth'],
      rows: [
        ['gateway', mib(m.gateway.rssBefore), mib(m.gateway.rssAfter), pct(m.gateway.growth)],
        [
          'gateway heap used',
          mib(m.gateway.heapBefore),
          mib(m.gateway.heapAfter),
          pct(m.gateway.heapAfter / m.gateway.heapBefore - 1),
        ],
        [
          'SDK interceptor',
          mib(m.interceptor.rssBefore),
          mib(m.interceptor.rssAfter),
          pct(m.interceptor.growth),
        ],
      ],
    });
  }
  return out;
}

export function textReport(r: Report): string {
  const head = `openshell-interceptors benchmarks (${r.mode}) — ${r.machine.cpuModel}, ${r.machine.cores} cores, Node ${r.machine.node}, ${r.durationSeconds.toFixed(0)} s`;
  return [
    head,
    '',
    ...sections(r).flatMap((s) => [s.title, table(s.headers, s.rows), ...(s.note ? [s.note] : []), '']),
    r.pass ? 'All targets hold.' : 'Some targets are missed: see docs/benchmarks.md for the analysis.',
    '',
  ].join('\n');
}

export const BEGIN = '<!-- bench:results:begin (generated by pnpm bench; edit outside these markers) -->';
export const END = '<!-- bench:results:end -->';

/** The generated part of docs/benchmarks.md. */
export function markdownResults(r: Report): string {
  const m = r.machine;
  return [
    BEGIN,
    '',
    `Last run: ${r.startedAt} (${r.mode} mode, ${r.durationSeconds.toFixed(0)} s). Machine: ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}; 1-minute load average ${f(m.loadStart)} at the start, ${f(m.loadEnd)} at the end (the machine is shared). Each side under load for about ${(r.budget.steadyMs / 1000).toFixed(1)} s before its first cell (steady state), then per cell ${r.budget.warmup} warm-up window and ${r.budget.rounds} rounds of ${r.budget.windowMs} ms windows.`,
    '',
    ...sections(r).flatMap((s) => [
      `### ${s.title}`,
      '',
      markdownTable(s.headers, s.rows),
      ...(s.note ? ['', s.note] : []),
      '',
    ]),
    END,
  ].join('\n');
}
