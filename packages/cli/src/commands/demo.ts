import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { CliLauncher, DemoEvent, DemoResult, StepResult } from '@openshell-interceptors/example-demo';
import { type Command, type CommandContext, EXIT, StartupError, UsageError } from '../command.js';
import { colourizer, formatTable, printJson } from '../output.js';

const USAGE = `openshell-interceptors demo [--keep] [--json] [--redis-url <url>] [--pace <ms>]

Starts the sample interceptors (naming, tenancy, quota, audit) as real gRPC services,
the gateway runtime in front of them with JWT auth and a real TOML config, and replays
a story of two tenants: names fixed or refused, a quota hit and freed, a cross-tenant
request refused, services stopped to show the failure policies. Prints each operation's
outcome, who decided and why, then the audit trail. Exit 0 when every outcome is the
expected one. Runs from a checkout of the repository (after 'pnpm build').

  --keep             keep the temp directory (gateway.toml, keys, audit.log)
  --json             print one JSON document instead of the tables
  --redis-url <url>  share quota counts through Redis (default: $REDIS_URL, else in memory)
  --pace <ms>        pause before each step, to follow the story live (default 0)

Ctrl-C stops every service and the gateway it started, and removes its temp directory.`;

/** Running from TypeScript sources (tsx, vitest): children run from sources too. */
const FROM_SOURCE = import.meta.url.endsWith('.ts');

function launcher(): CliLauncher {
  const here = dirname(fileURLToPath(import.meta.url));
  const bin = join(here, FROM_SOURCE ? '../bin.ts' : '../bin.js');
  return {
    execPath: process.execPath,
    args: FROM_SOURCE ? ['--conditions=source', '--import', 'tsx', bin] : [bin],
    cwd: join(here, '../..'),
  };
}

type DemoModule = typeof import('@openshell-interceptors/example-demo');

async function loadDemo(): Promise<DemoModule> {
  try {
    return await import('@openshell-interceptors/example-demo');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND') {
      throw new StartupError(
        'the demo runs from a checkout of the openshell-interceptors repository: clone it, then `pnpm install && pnpm demo`',
      );
    }
    throw new StartupError(`cannot load the demo: ${(err as Error).message} (run 'pnpm build' first)`);
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

/** Progress: one line rewritten in place on a terminal, plain lines otherwise. */
function progress(out: CommandContext['stdout']) {
  const live = out.isTTY === true;
  let shown = false;
  return {
    live,
    line(text: string) {
      if (live) {
        out.write(`\r\u001b[K${clip(text, ((out as { columns?: number }).columns || 100) - 1)}`);
        shown = true;
      } else out.write(`${text}\n`);
    },
    done() {
      if (live && shown) out.write('\r\u001b[K');
      shown = false;
    },
  };
}

function outcomeCell(s: StepResult, c: ReturnType<typeof colourizer>): string {
  if (s.outcome === 'allowed') return c('green', 'allowed');
  if (s.outcome === 'done') return c('yellow', 'stopped');
  return c('red', `${s.outcome === 'failed' ? 'failed' : 'denied'} ${s.code ?? ''}`.trim());
}

function auditWhat(what: Record<string, string>): string {
  const ws = what.workspace ? `${what.workspace}/` : '';
  if (what.sandbox && what.service) return `${ws}${what.sandbox}:${what.service}`;
  return what.name ? `${ws}${what.name}` : '(not in the response)';
}

function auditResult(r: Record<string, unknown> | null): string {
  if (!r) return '(omitted)';
  const sb = r.sandbox as { metadata?: { id?: string }; status?: { phase?: string } } | undefined;
  if (sb?.metadata?.id)
    return `sandbox ${sb.metadata.id} ${sb.status?.phase?.replace('SANDBOX_PHASE_', '').toLowerCase() ?? ''}`.trim();
  if (typeof r.url === 'string') return r.url;
  const keys = Object.keys(r);
  if (keys.length === 1 && r[keys[0]!] === true) return keys[0]!;
  return clip(JSON.stringify(r), 60);
}

function report(result: DemoResult, ctx: CommandContext): void {
  const c = colourizer(ctx.stdout, ctx.env);
  const out = ctx.stdout;
  out.write(`\n${c('bold', 'Story')} (each operation through the gateway runtime; who decided and why)\n`);
  out.write(
    formatTable(
      ['#', 'who', 'operation', 'outcome', 'decided by', 'why'],
      result.steps.map((s) => [
        String(s.index),
        s.who,
        s.method ? `${s.method}: ${s.title}` : s.title,
        outcomeCell(s, c),
        s.decidedBy,
        s.asExpected ? s.why : `${s.why} ${c('red', `[expected ${s.expected}]`)}`,
      ]),
    ),
  );
  const stopped = result.steps.find((s) => s.kind === 'stop' && s.title.startsWith('the audit'));
  out.write(
    `\n${c('bold', 'Audit trail')} (${result.audit.length} lines of audit.log, written by the audit service` +
      `${stopped ? `; it was stopped at step ${stopped.index}, so later commits are not in it` : ''})\n`,
  );
  out.write(
    formatTable(
      ['seq', 'time', 'who', 'operation', 'what', 'result'],
      result.audit.map((a) => [
        String(a.seq),
        a.time.slice(11, 23),
        a.who.subject ?? a.who.kind,
        a.what.method,
        auditWhat(a.what),
        auditResult(a.result),
      ]),
    ),
  );
  const unexpected = result.steps.filter((s) => !s.asExpected);
  const unclean = Object.entries(result.shutdown).filter(([, code]) => code !== 0);
  out.write('\n');
  if (result.sandboxes.length) out.write(`Sandboxes left: ${result.sandboxes.join(', ')}\n`);
  if (result.kept) out.write(`Kept ${result.dir} (gateway.toml, keys, audit.log).\n`);
  if (result.ok) {
    out.write(
      c(
        'green',
        `Done in ${seconds(result.elapsedMs)}: ${result.steps.length} steps, every outcome as expected; ` +
          `${result.services.length} services and the gateway stopped cleanly.`,
      ) + '\n',
    );
  } else {
    for (const s of unexpected)
      out.write(
        c('red', `step ${s.index} (${s.who} ${s.title}): expected ${s.expected}, got ${s.outcome}\n`),
      );
    for (const [name, code] of unclean) out.write(c('red', `${name} exited with code ${code} at shutdown\n`));
  }
}

const command: Command = {
  name: 'demo',
  summary: 'Run the end-to-end demo',
  usage: USAGE,
  async run(argv, ctx) {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        keep: { type: 'boolean' },
        json: { type: 'boolean' },
        'redis-url': { type: 'string' },
        pace: { type: 'string' },
      },
    });
    const paceMs = values.pace === undefined ? 0 : Number(values.pace);
    if (!Number.isInteger(paceMs) || paceMs < 0 || paceMs > 60_000)
      throw new UsageError(`--pace must be a number of milliseconds from 0 to 60000, got '${values.pace}'`);
    const demo = await loadDemo();
    const redisUrl = values['redis-url'] || ctx.env.REDIS_URL || undefined;
    const json = values.json === true;
    const c = colourizer(ctx.stdout, ctx.env);
    // Progress goes where it cannot spoil the JSON document.
    const p = progress(json ? ctx.stderr : ctx.stdout);
    if (!json) {
      ctx.stdout.write(
        `${c('bold', 'openshell-interceptors demo')}: four sample interceptors behind the gateway runtime\n\n`,
      );
    }
    const onEvent = (e: DemoEvent) => {
      if (e.kind === 'phase') p.line(`… ${e.message}`);
      else if (e.kind === 'service') {
        p.line(`… ${e.service.name} listening on ${e.service.endpoint} (pid ${e.service.pid})`);
      } else if (e.kind === 'step') {
        if (p.live) p.line(`[${e.index}/${e.total}] ${e.title} …`);
      } else {
        const r = e.result;
        const what = r.outcome === 'allowed' || r.outcome === 'done' ? r.outcome : `${r.outcome} ${r.code}`;
        p.line(`[${r.index}/${e.total}] ${r.kind === 'call' ? `${r.who} ${r.title}` : r.title}: ${what}`);
      }
    };

    const ac = new AbortController();
    const onSigint = () => ac.abort();
    process.once('SIGINT', onSigint);
    let result: DemoResult;
    try {
      result = await demo.runDemo({
        launcher: launcher(),
        ...(redisUrl ? { redisUrl } : {}),
        keep: values.keep === true,
        paceMs,
        signal: ac.signal,
        onEvent,
      });
    } catch (err) {
      p.done();
      if (err instanceof demo.DemoAborted) {
        ctx.stderr.write('demo interrupted: every service and the gateway were stopped\n');
        return 130;
      }
      ctx.stderr.write(`demo failed: ${(err as Error).message}\n`);
      return EXIT.failed;
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
    p.done();
    if (json) {
      printJson(ctx.stdout, result);
      return result.ok ? EXIT.ok : EXIT.failed;
    }
    ctx.stdout.write(
      `\n${c('bold', 'Services')} (real gRPC servers, one process each, gateway token auth)\n`,
    );
    ctx.stdout.write(
      formatTable(
        ['service', 'endpoint', 'process', 'notes'],
        result.services.map((s) => [s.name, s.endpoint, `pid ${s.pid}`, s.note]),
      ),
    );
    ctx.stdout.write(
      `\n${c('bold', 'Gateway')} ${result.configPath}: ${result.services.length} interceptors, ` +
        `${result.plannedBindings} planned evaluations (binding × phase), EdDSA tokens (fresh key)\n`,
    );
    report(result, ctx);
    return result.ok ? EXIT.ok : EXIT.failed;
  },
};
export default command;
