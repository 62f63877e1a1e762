import { parseArgs } from 'node:util';
import {
  CheckError,
  type CheckReport,
  checkInterceptorService,
  EndpointError,
  type FindingStatus,
  type ParsedEndpoint,
  parseEndpoint,
} from '@openshell-interceptors/testing';
import { type Command, EXIT, StartupError, UsageError } from '../command.js';
import {
  durationFlag,
  ENDPOINT_FLAGS,
  ENDPOINT_USAGE,
  endpointOptions,
  intFlag,
} from '../endpoint-options.js';
import { type Colour, colourizer, formatTable, printJson } from '../output.js';

const USAGE = `openshell-interceptors check <endpoint> [--private-key <file> --audience <aud> [--kid <id>] [--gateway-id <id>]]
       [--ca <file>] [--timeout 500ms] [--max-response-bytes N] [--max-patches N] [--concurrency N] [--samples N] [--json]

${ENDPOINT_USAGE}
  --timeout <d>              the gateway timeout to hold the service to (default 500ms)
  --max-response-bytes <n>   the gateway's max_response_bytes (default 1048576)
  --max-patches <n>          the gateway's max_patches (default 32)
  --concurrency <n>          parallel evaluations in the concurrency check (default 16)
  --samples <n>              sequential evaluations measured for latency (default 50)
  --json                     print the report as one JSON document

A conformance run against any interceptor service, in any language: manifest validity,
every declared binding and phase evaluated with realistic fixtures and checked exactly as
the gateway runtime checks results, bad input, concurrency, latency percentiles against the
timeout and, with --private-key, that forged or wrong tokens are refused (UNAUTHENTICATED).
Exit 0 every check passed (warnings allowed), 1 a check failed, 2 usage or unreachable.`;

const MARK: Record<FindingStatus, [Colour, string]> = {
  pass: ['green', 'pass'],
  warn: ['yellow', 'warn'],
  fail: ['red', 'FAIL'],
};

const command: Command = {
  name: 'check',
  summary: 'Conformance-check any interceptor service before registering it',
  usage: USAGE,
  async run(argv, ctx) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        ...ENDPOINT_FLAGS,
        timeout: { type: 'string' },
        'max-response-bytes': { type: 'string' },
        'max-patches': { type: 'string' },
        concurrency: { type: 'string' },
        samples: { type: 'string' },
        json: { type: 'boolean' },
      },
    });
    if (positionals.length !== 1) throw new UsageError('give exactly one endpoint');
    let ep: ParsedEndpoint;
    try {
      ep = parseEndpoint(positionals[0]!);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const opts = endpointOptions(values, ctx.cwd);
    let report: CheckReport;
    try {
      report = await checkInterceptorService(ep, {
        ...opts,
        timeoutMs: durationFlag('--timeout', values.timeout, 500),
        maxResponseBytes: intFlag('--max-response-bytes', values['max-response-bytes'], 1_048_576),
        maxPatches: intFlag('--max-patches', values['max-patches'], 32, 0),
        concurrency: intFlag('--concurrency', values.concurrency, 16),
        latencySamples: intFlag('--samples', values.samples, 50),
      });
    } catch (e) {
      if (e instanceof CheckError || e instanceof EndpointError) throw new StartupError(e.message);
      throw e;
    }
    const code = report.passed ? EXIT.ok : EXIT.failed;
    if (values.json) {
      printJson(ctx.stdout, report);
      return code;
    }
    const c = colourizer(ctx.stdout, ctx.env);
    ctx.stdout.write(`${c('bold', report.interceptor || '(no name)')}  ${report.endpoint}\n\n`);
    ctx.stdout.write(
      formatTable(
        ['CHECK', 'RESULT', 'SUBJECT', 'DETAIL'],
        report.findings.map((f) => {
          const [colour, word] = MARK[f.status];
          return [f.id, c(colour, word), f.subject ?? '', f.detail];
        }),
      ),
    );
    const s = report.summary;
    ctx.stdout.write(
      `\n${report.passed ? c('green', 'passed') : c('red', 'failed')}: ${s.pass} passed, ${s.warn} warning(s), ${s.fail} failed\n`,
    );
    return code;
  },
};

export default command;
