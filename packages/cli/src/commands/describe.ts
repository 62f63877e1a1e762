import { parseArgs } from 'node:util';
import { InterceptorManifest, phaseFromWire } from '@openshell-interceptors/protocol';
import {
  connectInterceptor,
  EndpointError,
  type ParsedEndpoint,
  parseEndpoint,
} from '@openshell-interceptors/testing';
import { type Command, EXIT, StartupError, UsageError } from '../command.js';
import {
  DEFAULT_KID,
  durationFlag,
  ENDPOINT_FLAGS,
  ENDPOINT_USAGE,
  endpointOptions,
} from '../endpoint-options.js';
import { colourizer, formatTable, printJson } from '../output.js';

const USAGE = `openshell-interceptors describe <endpoint> [--private-key <file> --audience <aud> [--kid <id>] [--gateway-id <id>]] [--ca <file>] [--timeout 5s] [--json]

${ENDPOINT_USAGE}
  --timeout <d>          how long to wait for the answer (default 5s)
  --json                 print one JSON document: { endpoint, manifest (ProtoJSON), bindings (phase names) }

Calls Describe and prints the manifest: name, failure policy, audience and each binding.
Exit 0 answered, 1 the service answered with an error status, 2 usage or unreachable.
(Default --kid: ${DEFAULT_KID}.)`;

/** A wire phase number as its name, or `unknown(<n>)`. */
function phaseName(n: number): string {
  return phaseFromWire(n) ?? `unknown(${n})`;
}

const command: Command = {
  name: 'describe',
  summary: "Print an interceptor service's manifest (Describe)",
  usage: USAGE,
  async run(argv, ctx) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: { ...ENDPOINT_FLAGS, timeout: { type: 'string' }, json: { type: 'boolean' } },
    });
    if (positionals.length !== 1) throw new UsageError('give exactly one endpoint');
    let ep: ParsedEndpoint;
    try {
      ep = parseEndpoint(positionals[0]!);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const opts = endpointOptions(values, ctx.cwd);
    const timeoutMs = durationFlag('--timeout', values.timeout, 5_000);
    let conn: Awaited<ReturnType<typeof connectInterceptor>>;
    try {
      conn = await connectInterceptor(ep, { ...opts, timeoutMs });
    } catch (e) {
      if (e instanceof EndpointError) throw new StartupError(e.message);
      throw e;
    }
    let answer: Awaited<ReturnType<typeof conn.describe>>;
    try {
      answer = await conn.describe();
    } finally {
      conn.close();
    }
    if (!answer.ok) {
      const msg = `${ep.endpoint}: Describe failed: ${answer.code}: ${answer.details}`;
      if (answer.code === 'UNAVAILABLE' || answer.code === 'DEADLINE_EXCEEDED') throw new StartupError(msg);
      if (values.json)
        printJson(ctx.stdout, {
          endpoint: ep.endpoint,
          error: { code: answer.code, message: answer.details },
        });
      else ctx.stderr.write(`openshell-interceptors describe: ${msg}\n`);
      return EXIT.failed;
    }
    const m = answer.message;
    const bindings = m.bindings.map((b) => ({
      id: b.id,
      rpc: b.selector ? b.selector.rpc || `${b.selector.service}/${b.selector.method}` : '',
      phases: b.phases.map(phaseName),
      failurePolicy: b.failurePolicy,
    }));
    if (values.json) {
      printJson(ctx.stdout, { endpoint: ep.endpoint, manifest: InterceptorManifest.toJSON(m), bindings });
      return EXIT.ok;
    }
    const c = colourizer(ctx.stdout, ctx.env);
    const none = c('dim', '(none)');
    ctx.stdout.write(
      [
        `${c('bold', m.name || '(no name)')}  ${ep.endpoint}`,
        `failure_policy     ${m.failurePolicy || none}`,
        `expected_audience  ${m.expectedAudience || none}`,
        `provider_profiles  ${m.providerProfiles}`,
        '',
        '',
      ].join('\n'),
    );
    ctx.stdout.write(
      bindings.length === 0
        ? 'no bindings\n'
        : formatTable(
            ['BINDING', 'RPC', 'PHASES', 'FAILURE POLICY'],
            bindings.map((b) => [
              b.id || c('red', '(empty)'),
              b.rpc,
              b.phases.map((p) => (p.startsWith('unknown') ? c('red', p) : p)).join(', '),
              b.failurePolicy || none,
            ]),
          ),
    );
    return EXIT.ok;
  },
};

export default command;
