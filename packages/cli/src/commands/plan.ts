import { parseArgs } from 'node:util';
import {
  createGateway,
  type Gateway,
  GatewayConfigError,
  GatewayStartupError,
  gatewayLogger,
  loadGatewayConfig,
} from '@openshell-interceptors/gateway';
import { type Command, type CommandContext, EXIT, StartupError, UsageError } from '../command.js';
import { formatTable, printJson } from '../output.js';

const USAGE = `openshell-interceptors plan --config <gateway.toml> [--json]

  --config <file>   gateway configuration ([openshell.gateway] and its interceptors)
  --json            print the plan as one JSON document

Connects to every interceptor, runs the startup checks (Describe, audiences,
binding_policy, failure policies) and prints the execution plan in run order.
Exit 2 when the configuration or startup is refused (reason on stderr).`;

/** Load the config and start a gateway; config and startup refusals become StartupError (exit 2). */
export async function startGateway(configPath: string, ctx: CommandContext): Promise<Gateway> {
  try {
    const config = await loadGatewayConfig(configPath);
    return await createGateway(config, { logger: gatewayLogger(ctx.stderr, 'warn') });
  } catch (e) {
    if (e instanceof GatewayConfigError || e instanceof GatewayStartupError)
      throw new StartupError(e.message);
    throw e;
  }
}

const command: Command = {
  name: 'plan',
  summary: 'Connect to the configured interceptors and print the execution plan',
  usage: USAGE,
  async run(argv, ctx) {
    const { values } = parseArgs({
      args: argv,
      options: { config: { type: 'string' }, json: { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    });
    if (!values.config) throw new UsageError('--config <gateway.toml> is required');
    const gw = await startGateway(values.config, ctx);
    try {
      const bindings = gw.plan.entries.map((e) => ({
        phase: e.phase,
        rpc: e.rpc,
        interceptor: e.interceptor,
        binding: e.bindingId,
        failurePolicy: e.failurePolicy,
        failurePolicySource: e.failurePolicySource,
        timeoutMs: e.timeoutMs,
        maxResponseBytes: e.maxResponseBytes,
        maxPatches: e.maxPatches,
      }));
      const interceptors = gw.plan.interceptors.map((i) => ({
        name: i.name,
        endpoint: i.endpoint,
        audience: i.audience,
        authenticated: i.authenticated,
        order: i.order,
        bindingPolicy: i.bindingPolicy,
        providerProfiles: i.providerProfiles,
        maxConcurrency: i.maxConcurrency,
        maxQueue: i.maxQueue,
        breaker: i.breaker,
        ignored: i.ignored,
      }));
      if (values.json) {
        printJson(ctx.stdout, { interceptors, bindings });
        return EXIT.ok;
      }
      if (bindings.length === 0) ctx.stdout.write('No bindings: no RPC is intercepted.\n');
      else
        ctx.stdout.write(
          formatTable(
            [
              'PHASE',
              'RPC',
              'INTERCEPTOR',
              'BINDING',
              'FAILURE POLICY',
              'TIMEOUT',
              'MAX BYTES',
              'MAX PATCHES',
            ],
            bindings.map((b) => [
              b.phase,
              b.rpc,
              b.interceptor,
              b.binding,
              `${b.failurePolicy} (${b.failurePolicySource.replace('_', ' ')})`,
              `${b.timeoutMs}ms`,
              String(b.maxResponseBytes),
              String(b.maxPatches),
            ]),
          ),
        );
      for (const i of interceptors) {
        for (const ig of i.ignored) ctx.stdout.write(`ignored: ${i.name}/${ig.bindingId}: ${ig.reason}\n`);
      }
      return EXIT.ok;
    } finally {
      await gw.close();
    }
  },
};
export default command;
