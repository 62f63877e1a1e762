// pnpm bench: run the comparisons, print the table (or one JSON object with --json), and
// write the results into docs/benchmarks.md.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { failureCost } from './comparisons/failure-cost.js';
import { runtimeOverhead } from './comparisons/runtime-overhead.js';
import { scale } from './comparisons/scale.js';
import { serverOverhead } from './comparisons/server-overhead.js';
import { type BenchContext, type Budget, tempDir } from './context.js';
import {
  BEGIN,
  type Comparisons,
  END,
  machine,
  markdownResults,
  type Report,
  targets,
  textReport,
} from './report.js';

const COMPARISONS = ['server', 'runtime', 'failure', 'scale'] as const;
type Name = (typeof COMPARISONS)[number];

const USAGE = `usage: pnpm bench [--json] [--quick] [--only ${COMPARISONS.join(',')}] [--no-docs] [--docs PATH] [--profile DIR] [--strict]

  --json      print exactly one JSON object with every figure on stdout (progress goes to stderr)
  --quick     short windows and fewer rounds (a smoke run; figures are noisier)
  --only      run some comparisons only (docs are then not written unless --docs is given)
  --no-docs   do not write docs/benchmarks.md
  --docs      write the results into this file instead
  --profile   write V8 CPU profiles of the interceptor server processes into DIR
  --strict    exit 1 when a target is missed`;

// Built file: bench/dist/bench/src/main.js; the repository root is five levels up.
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

const BUDGETS: Record<'full' | 'quick', Budget> = {
  full: { windowMs: 300, rounds: 5, warmup: 1, steadyMs: 2_000 },
  quick: { windowMs: 120, rounds: 3, warmup: 1, steadyMs: 400 },
};

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      'no-docs': { type: 'boolean', default: false },
      docs: { type: 'string' },
      profile: { type: 'string' },
      strict: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  let only: Name[] = [...COMPARISONS];
  if (values.only !== undefined) {
    const names = values.only.split(',').map((s) => s.trim());
    const bad = names.filter((n) => !(COMPARISONS as readonly string[]).includes(n));
    if (bad.length > 0 || names.length === 0)
      throw new Error(
        `--only: unknown comparison ${bad.map((b) => JSON.stringify(b)).join(', ')}; choose from ${COMPARISONS.join(', ')}`,
      );
    only = COMPARISONS.filter((n) => names.includes(n));
  }
  const docs = values['no-docs']
    ? undefined
    : (values.docs ?? (values.only === undefined ? resolve(ROOT, 'docs/benchmarks.md') : undefined));
  return { ...values, only, docs };
}

const SKELETON = `# Benchmarks

How much the SDK and the gateway runtime cost, measured side by side against the best
alternative on one machine. Reproduce with \`pnpm bench\` (or \`pnpm -s bench --json\`).

${BEGIN}
${END}
`;

async function writeDocs(path: string, results: string): Promise<void> {
  const current = existsSync(path) ? await readFile(path, 'utf8') : SKELETON;
  const a = current.indexOf(BEGIN);
  const b = current.indexOf(END);
  const next =
    a >= 0 && b > a
      ? `${current.slice(0, a)}${results}${current.slice(b + END.length)}`
      : `${current.trimEnd()}\n\n${results}\n`;
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, next);
}

async function main(): Promise<number> {
  let opts: ReturnType<typeof parse>;
  try {
    opts = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n${USAGE}\n`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (typeof globalThis.gc !== 'function') {
    process.stderr.write(
      'pnpm bench: run with node --expose-gc (the memory comparison forces collections)\n',
    );
    return 2;
  }
  const mode = opts.quick ? 'quick' : 'full';
  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const m = machine();
  const tmp = await tempDir();
  if (opts.profile) await mkdir(opts.profile, { recursive: true });
  const ctx: BenchContext = {
    quick: opts.quick,
    budget: BUDGETS[mode],
    dir: tmp.dir,
    progress: (line) =>
      process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${line}\n`),
    ...(opts.profile ? { cpuProfDir: resolve(opts.profile) } : {}),
  };
  const comparisons: Comparisons = {};
  try {
    const run: Record<Name, () => Promise<void>> = {
      server: async () => {
        comparisons.server = await serverOverhead(ctx);
      },
      runtime: async () => {
        comparisons.runtime = await runtimeOverhead(ctx);
      },
      failure: async () => {
        comparisons.failure = await failureCost(ctx);
      },
      scale: async () => {
        comparisons.scale = await scale(ctx);
      },
    };
    for (const name of opts.only) {
      ctx.progress(`${name}: start`);
      await run[name]();
    }
  } finally {
    await tmp.remove();
  }
  m.loadEnd = loadavg()[0] ?? 0;
  const t = targets(comparisons);
  const report: Report = {
    tool: '@openshell-interceptors/bench',
    mode,
    startedAt,
    durationSeconds: (performance.now() - t0) / 1000,
    machine: m,
    budget: BUDGETS[mode],
    comparisons,
    targets: t,
    pass: t.every((x) => x.pass),
  };
  if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  else process.stdout.write(textReport(report));
  if (opts.docs) {
    await writeDocs(opts.docs, markdownResults(report));
    ctx.progress(`wrote ${opts.docs}`);
  }
  return opts.strict && !report.pass ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`pnpm bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);
