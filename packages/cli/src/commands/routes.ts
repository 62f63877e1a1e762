import { parseArgs } from 'node:util';
import { ROUTES } from '@openshell-interceptors/protocol';
import type { Command } from '../command.js';
import { formatTable, printJson } from '../output.js';

const command: Command = {
  name: 'routes',
  summary: 'List the 25 interceptable RPCs',
  usage: 'openshell-interceptors routes [--json]',
  async run(argv, ctx) {
    const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean' } }, strict: true });
    const rows = ROUTES.map((r) => ({ rpc: r.rpc, request: r.requestType, response: r.responseType }));
    if (values.json) printJson(ctx.stdout, rows);
    else
      ctx.stdout.write(
        formatTable(
          ['RPC', 'REQUEST', 'RESPONSE'],
          rows.map((r) => [r.rpc, r.request, r.response]),
        ),
      );
    return 0;
  },
};
export default command;
