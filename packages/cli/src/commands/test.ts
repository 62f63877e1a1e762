import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type CaseResult,
  loadSuite,
  runCase,
  type SuiteCase,
  SuiteError,
  type SuiteSpec,
  startSuiteGateway,
} from '@openshell-interceptors/testing';
import { type Command, EXIT, UsageError } from '../command.js';
import { colourizer, formatTable, printJson } from '../output.js';

const USAGE = `openshell-interceptors test <suite.yaml>... [--json]

  <suite.yaml>   declarative test suites (apiVersion: openshell-interceptors/v1alpha1,
                 kind: InterceptorTestSuite); see docs/testing.md
  --json         print one JSON document: { passed, summary, suites: [{ file, name, passed, error, cases }] }

Each suite starts its own gateway runtime with the listed interceptors (modules or endpoints)
and settings, runs its cases in order and stops. Prints a line per case (a live progress
line on a terminal) and a summary.
Exit 0 every case passed, 1 a case failed, 2 usage or a suite that cannot be read or started.`;

interface SuiteReport {
  readonly file: string;
  readonly name: string;
  readonly passed: boolean;
  /** Why the suite could not run (unreadable, invalid, gateway refused to start); null when it ran. */
  readonly error: string | null;
  readonly cases: readonly (Omit<CaseResult, 'durationMs'> & { durationMs: number })[];
}

const command: Command = {
  name: 'test',
  summary: 'Run declarative interceptor test suites (YAML)',
  usage: USAGE,
  async run(argv, ctx) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: { json: { type: 'boolean' } },
    });
    if (positionals.length === 0) throw new UsageError('give at least one suite file');
    const c = colourizer(ctx.stdout, ctx.env);
    const live = !values.json && ctx.stdout.isTTY === true;
    const out = (s: string) => {
      if (!values.json) ctx.stdout.write(s);
    };
    const show = (file: string) => relative(ctx.cwd, file) || file;

    // Read every suite first: a bad file stops the run before any gateway starts.
    const specs: SuiteSpec[] = [];
    const reports: SuiteReport[] = [];
    for (const p of positionals) {
      try {
        specs.push(loadSuite(resolve(ctx.cwd, p)));
      } catch (e) {
        if (!(e instanceof SuiteError)) throw e;
        reports.push({ file: e.file, name: e.file, passed: false, error: e.message, cases: [] });
      }
    }
    if (reports.length > 0) {
      if (values.json) printJson(ctx.stdout, summaryOf(reports));
      else for (const r of reports) ctx.stderr.write(`openshell-interceptors test: ${r.error}\n`);
      return EXIT.usage;
    }

    // Like other test runners: SDK interceptors then check results strictly and log only errors.
    process.env.NODE_ENV ??= 'test';
    await enableTypeScript(specs, ctx.cwd);
    let startFailed = false;
    for (const spec of specs) {
      out(
        `${c('bold', spec.name === spec.file ? show(spec.file) : spec.name)} ${c('dim', show(spec.file))}\n`,
      );
      let gw: Awaited<ReturnType<typeof startSuiteGateway>>;
      try {
        gw = await startSuiteGateway(spec);
      } catch (e) {
        startFailed = true;
        const message = e instanceof Error ? e.message : String(e);
        out(`  ${c('red', 'ERROR')} ${message}\n`);
        if (!values.json) ctx.stderr.write(`openshell-interceptors test: ${message}\n`);
        reports.push({ file: spec.file, name: spec.name, passed: false, error: message, cases: [] });
        continue;
      }
      const cases: CaseResult[] = [];
      try {
        for (const sc of spec.cases as SuiteCase[]) {
          if (live) ctx.stdout.write(`  ${c('dim', 'RUN ')} ${sc.name}`);
          const r = await runCase(gw, sc);
          cases.push(r);
          if (live) ctx.stdout.write('\r\u001b[K');
          const mark = r.passed ? c('green', 'PASS') : c('red', 'FAIL');
          out(`  ${mark} ${r.name} ${c('dim', `(${sc.method}, ${r.durationMs.toFixed(0)}ms)`)}\n`);
          if (!r.passed) {
            for (const f of r.failures) out(`       ${c('red', '✗')} ${f}\n`);
            out(`       ${c('dim', 'evaluations:')}\n${r.evaluations.replace(/^/gm, '     ')}\n`);
          }
        }
      } finally {
        await gw.close();
      }
      reports.push({
        file: spec.file,
        name: spec.name,
        passed: cases.every((x) => x.passed),
        error: null,
        cases: cases.map((x) => ({ ...x, durationMs: Math.round(x.durationMs * 1000) / 1000 })),
      });
    }

    const doc = summaryOf(reports);
    if (values.json) printJson(ctx.stdout, doc);
    else {
      const s = doc.summary;
      ctx.stdout.write(
        `\n${formatTable(
          ['SUITES', 'CASES', 'PASSED', 'FAILED', 'ERRORS'],
          [[String(s.suites), String(s.cases), String(s.passed), String(s.failed), String(s.errors)]],
        )}${doc.passed ? c('green', 'all cases passed') : c('red', 'some cases failed')}\n`,
      );
    }
    if (startFailed) return EXIT.usage;
    return doc.passed ? EXIT.ok : EXIT.failed;
  },
};

/**
 * Suites usually name TypeScript modules. Plain Node 20 cannot import them, so when the CLI
 * runs from built JS and tsx is installed next to the suites (the init template has it), its
 * loader is registered; otherwise loading fails with a hint.
 */
async function enableTypeScript(specs: readonly SuiteSpec[], cwd: string): Promise<void> {
  if (import.meta.url.endsWith('.ts')) return; // already under a TypeScript runner
  const ts = specs.flatMap((s) => s.interceptors).some((i) => i.module && /\.[cm]?tsx?$/.test(i.module));
  if (!ts) return;
  for (const base of [join(cwd, 'noop.js'), ...specs.map((s) => s.file)]) {
    try {
      // The ESM entry of tsx/esm/api, from tsx's own package.json (require.resolve would pick the CJS one).
      const pkgPath = createRequire(base).resolve('tsx/package.json');
      const pkg = JSON.parse(await readFile(pkgPath, 'utf8')) as {
        exports?: Record<string, { import?: { default?: string } | string }>;
      };
      const entry = pkg.exports?.['./esm/api']?.import;
      const file = typeof entry === 'string' ? entry : entry?.default;
      if (!file) continue;
      const mod = (await import(pathToFileURL(join(dirname(pkgPath), file)).href)) as {
        register?: () => unknown;
      };
      mod.register?.();
      return;
    } catch {
      // not resolvable from here; try the next place
    }
  }
}

function summaryOf(suites: readonly SuiteReport[]) {
  const cases = suites.flatMap((s) => s.cases);
  const passed = cases.filter((x) => x.passed).length;
  const errors = suites.filter((s) => s.error !== null).length;
  return {
    passed: errors === 0 && passed === cases.length,
    summary: { suites: suites.length, cases: cases.length, passed, failed: cases.length - passed, errors },
    suites,
  };
}

export default command;
